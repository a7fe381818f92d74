//! Redaction profiles: [`compile`] validates a raw profile (see `rule`) once into an
//! immutable [`Profile`] (path NFA, mask formats, the pre-keyed HMAC).

use std::collections::HashMap;
use std::fmt;

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::actions;
use super::dfa::Dfa;
use super::pattern::{self, Matcher};
use super::rule::{Action, DefaultPolicy, HmacSha256, RawProfile, RawRule, Rule};

/// Most rules a profile may have.
const MAX_RULES: usize = 512;
/// Most characters a mask may reveal, and the longest mask format.
const MAX_KEEP_LAST: u32 = 16;
const MAX_FORMAT: usize = 64;
/// Shortest HMAC key accepted when a profile has `hmac` rules.
const MIN_KEY: usize = 16;

/// A compiled, immutable redaction profile; share it (`&Profile`) across all bodies.
#[derive(Clone)]
pub struct Profile {
    name: String,
    default: DefaultPolicy,
    dry_run: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) matcher: Matcher,
    /// The warm transition cache every body starts from.
    pub(crate) dfa: Dfa,
    pub(crate) mac: Option<HmacSha256>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("default", &self.default)
            .field("dry_run", &self.dry_run)
            .field("rules", &self.rules)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Profile {
    /// The profile's name (as given to [`compile`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `deny` or `allow` for unnamed values.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default
    }

    /// Whether this profile only reports (the body passes unchanged).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The rules' paths and actions, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, Action)> {
        self.rules.iter().map(|r| (r.path.as_str(), r.action))
    }
}

/// Validate `raw` into a [`Profile`]. `key` is the profile's HMAC key (see [`derive_key`]); it may
/// be empty when the profile has no `hmac` rule. Every problem is returned, each with the field
/// path inside the profile (`rules[2].path`), for the caller to prefix with file and profile.
pub fn compile(name: &str, raw: &RawProfile, key: &[u8]) -> Result<Profile, Vec<(String, String)>> {
    let mut errors = Vec::new();
    if raw.rules.len() > MAX_RULES {
        errors.push(("rules".to_string(), format!("at most {MAX_RULES} rules per profile")));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(raw.rules.len());
    let mut paths = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.iter().enumerate() {
        let at = |field: &str| format!("rules[{i}].{field}");
        match pattern::parse(&r.path) {
            Ok(segs) => paths.push(segs),
            Err(msg) => {
                errors.push((at("path"), msg));
                paths.push(Vec::new());
            }
        }
        if let Some(j) = seen.insert(r.path.to_lowercase(), i) {
            errors.push((at("path"), format!("same path as rules[{j}] (paths are case-insensitive)")));
        }
        let (keep_last, format) = match r.action {
            Action::Mask => mask_spec(r, &at, &mut errors),
            _ => {
                if r.keep_last.is_some() {
                    errors.push((at("keep_last"), "only for action: mask".into()));
                }
                if r.format.is_some() {
                    errors.push((at("format"), "only for action: mask".into()));
                }
                (0, Box::default())
            }
        };
        if r.action == Action::Hmac && key.len() < MIN_KEY {
            errors.push((at("action"), format!("hmac needs a profile key of at least {MIN_KEY} bytes")));
        }
        rules.push(Rule { path: r.path.clone(), action: r.action, keep_last, format });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let ranks = paths.iter().enumerate().map(|(i, segs)| pattern::rank(segs, i)).collect();
    let actions = rules.iter().map(|r| r.action).collect();
    let mac = if key.is_empty() { None } else { HmacSha256::new_from_slice(key).ok() };
    let matcher = Matcher { paths, ranks, actions };
    Ok(Profile {
        name: name.to_string(),
        default: raw.default,
        dry_run: raw.dry_run,
        rules,
        dfa: Dfa::warm(&matcher),
        matcher,
        mac,
    })
}

/// Check a mask rule's `keep_last` and `format`; returns them (or placeholders after an error).
fn mask_spec(r: &RawRule, at: &dyn Fn(&str) -> String, errors: &mut Vec<(String, String)>) -> (usize, Box<[u8]>) {
    let n = r.keep_last.unwrap_or(0);
    if n > MAX_KEEP_LAST {
        errors.push((at("keep_last"), format!("at most {MAX_KEEP_LAST}")));
    }
    let format = r.format.clone().unwrap_or_else(|| format!("XXXXXX{}", "#".repeat(n as usize)));
    let hashes = format.chars().filter(|&c| c == '#').count();
    if hashes != n as usize {
        errors.push((at("format"), format!("has {hashes} '#' but keep_last is {n}: they must be equal")));
    }
    if format.is_empty() || format.chars().count() > MAX_FORMAT {
        errors.push((at("format"), format!("must have 1 to {MAX_FORMAT} characters")));
    }
    if format.chars().any(char::is_control) {
        errors.push((at("format"), "control characters are not allowed".into()));
    }
    (n as usize, actions::format_json(&format))
}

/// Derive a profile's HMAC key from a master secret: HMAC-SHA256(master, "otpgate-redact-v1\0" ‖
/// profile name). Distinct profiles get unlinkable tokens; rotating the master rotates them all.
pub fn derive_key(master: &[u8], profile: &str) -> [u8; 32] {
    let label = [b"otpgate-redact-v1\0".as_slice(), profile.as_bytes()];
    match HmacSha256::new_from_slice(master) {
        Ok(mut mac) => {
            label.iter().for_each(|part| mac.update(part));
            mac.finalize().into_bytes().into()
        }
        // HMAC accepts keys of any length; this arm exists only to avoid a panic path.
        Err(_) => Sha256::new().chain_update(master).chain_update(label.concat()).finalize().into(),
    }
}
