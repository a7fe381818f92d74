//! The vocabulary of redaction: the raw profile as written in the policy files (serde,
//! `deny_unknown_fields`), the actions, and a validated rule. Every other file of `redact` builds
//! on these; this file imports none of them.

use hmac::Hmac;
use serde::Deserialize;
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

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
