//! Object keys as a case-folding reader sees them, so the response filter reads a document the
//! way the redactor after it does.
//!
//! The redactor matches keys case-insensitively on their decoded form (ASCII lowercase; Unicode
//! lowercase for a key that is not ASCII, so `Beneficiaries`, `BENEFICIARIES` and `boo\u{212A}ings`
//! with a Kelvin sign all reach rules written `beneficiaries` and `bookings`). A filter that looked
//! a key up exactly would leave a second array under another spelling unfiltered, and the redactor
//! would release it. So wherever the filter reads a key, a key that is not exactly the name but
//! that a case-folding reader could take for it makes the document ambiguous, and it is refused.
//! Escapes are not a spelling: JSON keys are compared decoded (`"\u0062eneficiaries"` is
//! `beneficiaries` to every reader), and two keys that decode to the same string are a duplicate,
//! refused by [`super::parse_strict`].

use serde_json::{Map, Value};

/// Could a reader that ignores case take `key` for `name`?
///
/// True when they are equal, when they fold alike the way the redactor folds keys (ASCII
/// lowercase; Unicode lowercase when not ASCII, so the Kelvin sign U+212A is `k`), or when they fold
/// alike through upper case (`ſ` is `s`, `ı` is `i`): a superset of the redactor's reading, so a key
/// that the redactor, or a reader folding a little more than it does, could match is never missed.
pub fn same_key(key: &str, name: &str) -> bool {
    // ASCII on both sides (nearly every key): every folding below is ASCII case folding, so this
    // is the same answer without the three allocations per comparison.
    if key.is_ascii() && name.is_ascii() {
        return key.eq_ignore_ascii_case(name);
    }
    key == name || fold(key) == fold(name) || key.to_uppercase().to_lowercase() == name.to_uppercase().to_lowercase()
}

/// The redactor's folding of a decoded key: ASCII lowercase, or Unicode lowercase when not ASCII.
fn fold(key: &str) -> String {
    if key.is_ascii() { key.to_ascii_lowercase() } else { key.to_lowercase() }
}

/// The member `name` of `object`, refusing a document that also spells it another way.
///
/// `Ok(None)` when no key is `name` or another spelling of it; `Ok(Some(value))` for the member
/// spelled exactly `name` when it is the only one; [`Spelling`] when any key other than `name` is
/// [`same_key`] as it (whether or not `name` itself is present).
pub fn unique_member<'m>(object: &'m Map<String, Value>, name: &str) -> Result<Option<&'m Value>, Spelling> {
    if object.keys().any(|k| k != name && same_key(k, name)) {
        return Err(Spelling);
    }
    Ok(object.get(name))
}

/// An object holds a key that is another spelling of a name the caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spelling;
