//! The one rule for spelling an Indian mobile number, and constant-time comparisons of subject values.

use std::collections::HashSet;

use subtle::{Choice, ConstantTimeEq};

/// Canonical 10-digit Indian mobile, or `None`.
///
/// Accepted spellings, and nothing else (no spaces, hyphens, brackets or other separators, no surrounding
/// whitespace — every extra spelling is one more way to read a value differently from a backend):
///
/// - `NNNNNNNNNN`: 10 ASCII digits, the first 6–9 (the national significant number);
/// - `+91NNNNNNNNNN`: the E.164 form;
/// - `91NNNNNNNNNN`: the E.164 form without `+` (12 digits);
/// - `0NNNNNNNNNN`: the domestic trunk prefix (11 digits).
///
/// Masked values such as `XXXXXX0001` are not mobiles and give `None`, so a masked owner never matches.
pub fn canonical_mobile(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let national = match b.len() {
        10 => b,
        11 if b[0] == b'0' => &b[1..],
        12 if b.starts_with(b"91") => &b[2..],
        13 if b.starts_with(b"+91") => &b[3..],
        _ => return None,
    };
    let valid = matches!(national.first(), Some(b'6'..=b'9')) && national.iter().all(u8::is_ascii_digit);
    // `national` is ASCII digits only here, so it is valid UTF-8.
    valid.then(|| String::from_utf8_lossy(national).into_owned())
}

/// `a == b` in time that depends only on the lengths.
pub(super) fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `set` holds `value`, comparing with every member in constant time (the sets are a few entries).
pub(super) fn ct_contains(set: &HashSet<String>, value: &str) -> bool {
    let found = set.iter().fold(Choice::from(0), |acc, member| acc | member.as_bytes().ct_eq(value.as_bytes()));
    bool::from(found)
}
