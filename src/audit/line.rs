//! The chained line format of the audit log.
//!
//! Each record is one line: the record's JSON object with two fields put in front and one at the end,
//! written in exactly this byte layout (no spaces):
//!
//! ```text
//! {"seq":42,"prev":"<64 hex>","time":"…",…,"client":"…","hash":"<64 hex>"}\n
//! ```
//!
//! - `seq` counts records from 0, globally, across rotated files.
//! - `prev` is the lowercase hex SHA-256 of the previous line's exact bytes without its newline (the whole
//!   line, its `hash` included); the first record's `prev` is 64 zeros.
//! - `hash` is the lowercase hex SHA-256 of every byte of the line before `,"hash":"`.
//!
//! Why every byte is covered: the bytes before `,"hash":"` are covered by the line's own `hash`; the last
//! 75 bytes (`,"hash":"`, 64 hex digits, `"}`) are compared literally with what the covered bytes imply,
//! so a changed digit, a changed case or a changed quote fails on that same line; the newline is covered
//! by line splitting (changing it merges two lines, adding one splits a line; either breaks a line's
//! structure and hash). On top, each whole line is covered by the next line's `prev`, and `seq` must
//! count up by one, so deleting, reordering or inserting lines is caught. So the line holding a changed
//! byte is itself the first line that fails, the last line included. What a chain alone cannot show is a
//! log cut after a complete line; compare `last_seq`/`last_hash` from [`super::verify`] with a copy kept
//! elsewhere (exported spans, metrics, a ticket) for that.

use std::io::Write as _;

use sha2::{Digest, Sha256};

/// `prev` of the first record: 32 zero bytes (64 `0`s in hex).
pub const GENESIS_PREV: [u8; 32] = [0; 32];

const HEAD_SEQ: &[u8] = b"{\"seq\":";
const HEAD_PREV: &[u8] = b",\"prev\":\"";
const HASH_KEY: &[u8] = b",\"hash\":\"";
const TAIL: &[u8] = b"\"}";
/// Length of `,"hash":"<64 hex>"}`.
const SUFFIX_LEN: usize = HASH_KEY.len() + 64 + TAIL.len();

/// What [`check`] learns from a line whose own bytes are intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub seq: u64,
    /// The line's `prev`, decoded.
    pub prev: [u8; 32],
    /// SHA-256 of the whole line: the next line's `prev`.
    pub line_hash: [u8; 32],
}

/// Why a line is not an intact chained record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// The line does not end in `,"hash":"<64 hex>"}`.
    #[error("line does not end with a hash field")]
    NoHash,
    /// The line's content does not hash to its `hash` field: the line was changed.
    #[error("hash does not match the line's content")]
    HashMismatch,
    /// The line does not start with `{"seq":N,"prev":"<64 hex>"`.
    #[error("line does not start with seq and prev fields")]
    BadHead,
}

/// Appends the chained line for `body` (a serialized JSON object) to `out`, without a newline, and returns
/// the line's SHA-256 (the next `prev`).
pub fn encode(out: &mut Vec<u8>, seq: u64, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let start = out.len();
    out.extend_from_slice(HEAD_SEQ);
    let _ = write!(out, "{seq}");
    out.extend_from_slice(HEAD_PREV);
    push_hex(out, prev);
    out.push(b'"');
    let inner = body.strip_prefix(b"{").and_then(|b| b.strip_suffix(b"}")).unwrap_or(b"");
    if !inner.iter().all(u8::is_ascii_whitespace) {
        out.push(b',');
        out.extend_from_slice(inner);
    }
    // One pass over the content: the line hash continues from the state that gave the own hash.
    let mut hasher = Sha256::new();
    hasher.update(&out[start..]);
    let own: [u8; 32] = hasher.clone().finalize().into();
    let suffix_start = out.len();
    out.extend_from_slice(HASH_KEY);
    push_hex(out, &own);
    out.extend_from_slice(TAIL);
    hasher.update(&out[suffix_start..]);
    hasher.finalize().into()
}

/// Checks a line's own integrity (its `hash`, and the layout of `seq`/`prev`) and returns its chain
/// fields. Linking (`seq` + 1, `prev` = previous line's hash) is the caller's part.
pub fn check(line: &[u8]) -> Result<Checked, LineFault> {
    let n = line.len();
    if n < SUFFIX_LEN + HEAD_SEQ.len() {
        return Err(LineFault::NoHash);
    }
    let (covered, suffix) = line.split_at(n - SUFFIX_LEN);
    if !suffix.starts_with(HASH_KEY) || !suffix.ends_with(TAIL) {
        return Err(LineFault::NoHash);
    }
    let mut hasher = Sha256::new();
    hasher.update(covered);
    let own: [u8; 32] = hasher.clone().finalize().into();
    let mut own_hex = [0u8; 64];
    hex_into(&own, &mut own_hex);
    if suffix[HASH_KEY.len()..HASH_KEY.len() + 64] != own_hex {
        return Err(LineFault::HashMismatch);
    }
    let (seq, prev) = parse_head(covered).ok_or(LineFault::BadHead)?;
    hasher.update(suffix);
    Ok(Checked { seq, prev, line_hash: hasher.finalize().into() })
}

/// `{"seq":N,"prev":"<hex>"` followed by `,` or the end of the covered part.
fn parse_head(covered: &[u8]) -> Option<(u64, [u8; 32])> {
    let rest = covered.strip_prefix(HEAD_SEQ)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let seq = std::str::from_utf8(&rest[..digits]).ok()?.parse::<u64>().ok()?;
    let rest = rest[digits..].strip_prefix(HEAD_PREV)?;
    let (hex_part, rest) = (rest.get(..64)?, rest.get(64..)?);
    if !hex_part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut prev = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut prev).ok()?;
    match rest {
        [b'"'] => Some((seq, prev)),
        [b'"', b',', ..] => Some((seq, prev)),
        _ => None,
    }
}

/// The `seq` of a line, read from its head only (no hash check): for naming files.
pub fn peek_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(HEAD_SEQ)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    let mut buf = [0u8; 64];
    hex_into(bytes, &mut buf);
    out.extend_from_slice(&buf);
}

fn hex_into(bytes: &[u8; 32], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex of a 32-byte hash.
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    hex_into(bytes, &mut buf);
    buf.iter().map(|&b| char::from(b)).collect()
}
