//! Redaction profiles: the raw policy form (serde, `deny_unknown_fields`, merged by the lead into
//! the policy files under `profiles:`) and [`compile`], which validates a profile once into an
//! immutable [`Profile`] (path NFA, mask formats, the pre-keyed HMAC).

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::actions;
use super::dfa::Dfa;
use super::pattern::{self, Matcher};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Most rules a profile may have.
const MAX_RULES: usize = 512;
/// Most characters a mask may reveal, and the longest mask format.
const MAX_KEEP_LAST: u32 = 16;
const MAX_FORMAT: usize = 64;
/// Shortest HMAC key accepted when a profile has `hmac` rules.
const MIN_KEY: usize = 16;

/// What happens to a value no rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Allowlist: unnamed leaves are dropped; a container is kept (as a skeleton) only if some
    /// rule can match beneath it.
    #[default]
    Deny,
    /// Unnamed values pass unchanged.
    Allow,
}

/// What a rule does to the value at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Emit unchanged; on a container, the whole subtree except where a rule matches directly.
    Keep,
    /// Remove the member (in an array: the element; at the root: emit `null`).
    Drop,
    /// Replace a string or number by `format` with its last `keep_last` characters.
    Mask,
    /// Replace a string or number by `"h:<32 hex>"`: HMAC-SHA256 under the profile key, 16 bytes.
    Hmac,
    /// Reduce a date to its year (`"01-06-2021"` → `"2021"`).
    Generalize,
    /// Replace by `null`.
    Null,
}

/// One profile as written in the policy files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// `deny` (default) or `allow`.
    #[serde(default)]
    pub default: DefaultPolicy,
    /// Report what would be redacted, but pass the body through unchanged.
    #[serde(default)]
    pub dry_run: bool,
    /// The rules, in order (among equally specific matches the later one wins).
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One rule as written in the policy files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Path from the document root, e.g. `beneficiaries[*].photo_id_number` or `**.aadhaar*`.
    pub path: String,
    /// What to do with the value at `path`.
    pub action: Action,
    /// `mask` only: how many trailing characters to reveal (default 0).
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// `mask` only: output template; each `#` is a revealed character (right-aligned), every
    /// other character is literal. Default: `XXXXXX` followed by `keep_last` `#`.
    #[serde(default)]
    pub format: Option<String>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) path: String,
    pub(crate) action: Action,
    pub(crate) keep_last: usize,
    /// The mask format as JSON string content (see `actions::format_json`).
    pub(crate) format: Box<[u8]>,
}

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
