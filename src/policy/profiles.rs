//! Redaction profiles, compiled once with their keys: each profile's HMAC key is derived from the
//! master redaction key and the profile's name, so tokens of two profiles never link.

use std::collections::HashMap;
use std::sync::Arc;

use super::NO_REDACTION;
use crate::config::{ConfigError, Merged};
use crate::redact::Profile;

/// Compile every profile; problems go to `errors` with their file and field path.
pub fn compile(m: &Merged, master_key: &[u8], errors: &mut Vec<ConfigError>) -> HashMap<String, Arc<Profile>> {
    let mut profiles = HashMap::new();
    for (at, name, raw) in &m.profiles {
        if name == NO_REDACTION {
            errors.push(at.err("", format!("`{NO_REDACTION}` is reserved")));
            continue;
        }
        let key = crate::redact::derive_key(master_key, name);
        match crate::redact::compile(name, raw, &key) {
            Ok(p) => {
                profiles.insert(name.clone(), Arc::new(p));
            }
            Err(problems) => {
                for (field, message) in problems {
                    errors.push(at.err(&field, message));
                }
            }
        }
    }
    profiles
}
