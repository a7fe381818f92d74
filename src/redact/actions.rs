//! The value transforms (`mask`, `hmac`, `generalize`) applied to one buffered scalar, and the JSON
//! string decoding/encoding they need. Every transform writes one complete JSON value; a value a
//! transform does not apply to becomes `null` (fail closed), never the original.

use hmac::Mac;

use super::rule::{Action, HmacSha256, Rule};

/// What kind of scalar the buffered token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Raw string content (validated, no quotes); `escaped` if it contains escapes to decode.
    Str { escaped: bool },
    /// Number text.
    Num,
    /// `true`, `false` or `null`.
    Lit,
}

/// The last input and token of one `hmac` rule. Records of one person are often adjacent (a
/// mobile with several beneficiaries) and equal inputs give equal tokens, so a repeat costs a
/// comparison instead of two SHA-256 blocks. Inputs longer than 64 bytes are not kept.
#[derive(Default)]
pub(crate) struct Memo {
    input: Vec<u8>,
    hex: Option<[u8; 32]>,
}

/// Write the transform of `raw` under `rule` to `out`. `scratch` is reused for decoding; `memo`
/// is this rule's.
pub(crate) fn apply(
    rule: &Rule,
    mac: Option<&HmacSha256>,
    kind: Kind,
    raw: &[u8],
    scratch: &mut Vec<u8>,
    memo: Option<&mut Memo>,
    out: &mut Vec<u8>,
) {
    let text: &[u8] = match kind {
        Kind::Lit => return out.extend_from_slice(b"null"),
        Kind::Num | Kind::Str { escaped: false } => raw,
        Kind::Str { escaped: true } => {
            scratch.clear();
            decode(raw, scratch);
            scratch
        }
    };
    match rule.action {
        Action::Mask => mask(&rule.format, rule.keep_last, text, out),
        Action::Hmac => match (mac, memo) {
            (Some(_), Some(Memo { input, hex: Some(hex) })) if input.as_slice() == text => token(hex, out),
            (Some(mac), memo) => {
                let hex = hmac(mac, text);
                if let Some(memo) = memo.filter(|_| text.len() <= 64) {
                    memo.input.clear();
                    memo.input.extend_from_slice(text);
                    memo.hex = Some(hex);
                }
                token(&hex, out);
            }
            (None, _) => out.extend_from_slice(b"null"),
        },
        Action::Generalize => match (kind, year(text)) {
            (Kind::Num, Some(y)) if y.len() == text.len() => out.extend_from_slice(y),
            (Kind::Str { .. }, Some(y)) => {
                out.push(b'"');
                out.extend_from_slice(y);
                out.push(b'"');
            }
            _ => out.extend_from_slice(b"null"),
        },
        Action::Keep | Action::Drop | Action::Null => out.extend_from_slice(b"null"),
    }
}

/// A mask format as JSON string content (escaped, no quotes); `#` stays as the placeholder.
pub(crate) fn format_json(format: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(format.len());
    format.chars().for_each(|c| write_char(&mut out, c));
    out.into()
}

/// The mask `format` (as from [`format_json`]) with each `#` replaced, right-aligned, by the last
/// `keep_last` characters of `value` (decoded UTF-8). A value of at most `keep_last` characters
/// reveals nothing (every `#` becomes `X`).
pub(crate) fn mask(format: &[u8], keep_last: usize, value: &[u8], out: &mut Vec<u8>) {
    out.reserve(format.len() + 2 + 6 * keep_last);
    out.push(b'"');
    if value.is_ascii() {
        let reveal = if value.len() > keep_last { keep_last } else { 0 };
        let mut kept = value[value.len() - reveal..].iter();
        for &b in format {
            match b {
                b'#' => match kept.next() {
                    Some(&k) => write_char(out, char::from(k)),
                    None => out.push(b'X'),
                },
                b => out.push(b),
            }
        }
    } else {
        // Validated input, so this cannot fail; if it did, reveal nothing.
        let value = std::str::from_utf8(value).unwrap_or("");
        let total = value.chars().count();
        let reveal = if total > keep_last { keep_last } else { 0 };
        let mut kept = value.chars().skip(total - reveal);
        for &b in format {
            match b {
                b'#' => write_char(out, kept.next().unwrap_or('X')),
                b => out.push(b),
            }
        }
    }
    out.push(b'"');
}

/// `"h:" + hex(first 16 bytes of HMAC-SHA256(key, value))`.
pub(crate) fn hmac(mac: &HmacSha256, value: &[u8]) -> [u8; 32] {
    let mut m = mac.clone();
    m.update(value);
    let tag = m.finalize().into_bytes();
    let mut hex = [0u8; 32];
    for (pair, b) in hex.chunks_exact_mut(2).zip(&tag[..16]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        pair.copy_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
    }
    hex
}

/// Write an HMAC token `"h:<hex>"`.
fn token(hex: &[u8; 32], out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"h:");
    out.extend_from_slice(hex);
    out.push(b'"');
}

/// The year of a date: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (also with `/`, and ISO date-times
/// `YYYY-MM-DDT…` / `YYYY-MM-DD …`), `DD-MM-YYYY`, `DD/MM/YYYY`. Anything else: `None`.
pub(crate) fn year(b: &[u8]) -> Option<&[u8]> {
    let num = |from: usize, len: usize| -> Option<u32> {
        let d = b.get(from..from + len)?;
        d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0, |n, &c| n * 10 + u32::from(c - b'0')))
    };
    let month = |m: Option<u32>| m.is_some_and(|m| (1..=12).contains(&m));
    let day = |d: Option<u32>| d.is_some_and(|d| (1..=31).contains(&d));
    let sep = |i: usize| matches!(b.get(i), Some(b'-' | b'/'));
    // Year first.
    if num(0, 4).is_some() {
        let ok = match b.len() {
            4 => true,
            7 => sep(4) && month(num(5, 2)),
            n if n >= 10 => {
                sep(4)
                    && b.get(7) == b.get(4)
                    && month(num(5, 2))
                    && day(num(8, 2))
                    && (n == 10 || matches!(b.get(10), Some(b'T' | b' ')))
            }
            _ => false,
        };
        return ok.then(|| b.get(..4)).flatten();
    }
    // Day first.
    let ok = b.len() == 10 && sep(2) && b.get(5) == b.get(2) && day(num(0, 2)) && month(num(3, 2));
    (ok && num(6, 4).is_some()).then(|| b.get(6..)).flatten()
}

/// Decode validated raw string content (escapes, surrogate pairs) into UTF-8 bytes.
pub(crate) fn decode(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = raw[i..].iter().position(|&b| b == b'\\') else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        out.extend_from_slice(&raw[i..i + off]);
        i += off + 1;
        let c = match raw.get(i) {
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = hex4(raw, i + 1);
                i += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(raw, i + 3);
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF))
                        .unwrap_or('\u{FFFD}')
                } else {
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
            Some(&b) => char::from(b),
            None => return,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += 1;
    }
}

fn hex4(raw: &[u8], at: usize) -> u32 {
    raw.get(at..at + 4).map_or(0xFFFD, |h| h.iter().fold(0, |n, &c| n << 4 | (c as char).to_digit(16).unwrap_or(0)))
}

/// Write one character of a JSON string's content, escaped as needed.
#[inline]
fn write_char(out: &mut Vec<u8>, c: char) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\0'..='\u{1f}' => {
            let b = c as u8;
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
        }
        c if c.is_ascii() => out.push(c as u8),
        c => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
    }
}
