//! Reading a raw query string the way the most permissive backend might, so nothing slips past.
//!
//! Pairs are separated by `&` and also by `;` (older frameworks split on both). Names and values are
//! percent-decoded once with `+` as space; invalid percent-encoding, a decoded `%` (double encoding), an
//! encoded delimiter (`&`, `=`, `;`) or a second raw `=` in a pair is refused, because a backend that
//! decodes twice or decodes before splitting would read a different parameter list.

use super::OwnershipError;

/// One `name=value` pair: the name normalized (see [`normalize_name`]), the value decoded once.
pub(crate) struct Pair {
    pub(crate) name: String,
    pub(crate) value: Vec<u8>,
}

/// The pairs of `query` in order, empty pairs (`a=1&&b=2`) skipped; an error for the first bad pair.
pub(crate) fn pairs(query: &str) -> impl Iterator<Item = Result<Pair, OwnershipError>> + '_ {
    query.split(['&', ';']).filter(|raw| !raw.is_empty()).map(|raw| {
        let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
        if value.contains('=') {
            return Err(OwnershipError::Ambiguous("'=' inside a query value"));
        }
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        Ok(Pair { name: normalize_name(&name)?, value })
    })
}

/// Percent-decode one name or value (`+` → space), refusing anything a second reader could split or decode
/// differently.
fn decode_component(raw: &str) -> Result<Vec<u8>, OwnershipError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_digit);
                let lo = bytes.get(i + 2).copied().and_then(hex_digit);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(OwnershipError::Ambiguous("invalid percent-encoding"));
                };
                out.push((hi << 4) | lo);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    if out.contains(&b'%') {
        return Err(OwnershipError::Ambiguous("double percent-encoding"));
    }
    if out.iter().any(|b| matches!(b, b'&' | b'=' | b';')) {
        return Err(OwnershipError::Ambiguous("encoded delimiter in query"));
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The name a backend is most likely to read from `raw` (already percent-decoded): ASCII-lowercased,
/// cut at the first `[` (`mobile[]`, `mobile[0]`, `mobile[a][b]` all name `mobile`), trimmed of spaces and
/// `+`, and with `.`, space, `+` and `-` read as `_` (PHP turns `photo.id` into `photo_id`).
///
/// Names with non-ASCII or control bytes are refused: a backend could case-fold `K` (Kelvin) to `k` or stop at
/// a NUL, and legitimate clients of these routes do not send them.
pub(crate) fn normalize_name(raw: &[u8]) -> Result<String, OwnershipError> {
    if raw.iter().any(|b| !b.is_ascii() || b.is_ascii_control()) {
        return Err(OwnershipError::Ambiguous("parameter name is not plain ASCII"));
    }
    let cut = raw.iter().position(|&b| b == b'[').map_or(raw, |i| &raw[..i]);
    // A decoded `+` is a space to a backend that decodes twice.
    let blank = |b: &u8| b.is_ascii_whitespace() || *b == b'+';
    let start = cut.iter().position(|b| !blank(b)).unwrap_or(cut.len());
    let end = cut.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    Ok(cut[start..end]
        .iter()
        .map(|&b| match b {
            b'.' | b' ' | b'+' | b'-' => '_',
            other => char::from(other.to_ascii_lowercase()),
        })
        .collect())
}
