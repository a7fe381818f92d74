//! The chained line format of the audit log, keyed.
//!
//! Each entry is one line: a JSON object with two fields put in front and one at the end, written in
//! exactly this byte layout (no spaces):
//!
//! ```text
//! {"seq":42,"prev":"<64 hex>","time":"…",…,"client":"…","mac":"<64 hex>"}\n
//! ```
//!
//! - `seq` counts lines from 0, globally, across rotated files (records and control lines alike).
//! - `mac` is the lowercase hex HMAC-SHA256, under the chain key, of every byte of the line before
//!   `,"mac":"`.
//! - `prev` is the previous line's `mac`; the first line of a chain has 64 zeros.
//! - The chain key is `HMAC-SHA256(audit.key, "otpgate audit chain v1")`: derived from the key that
//!   already pseudonymises identifiers, so the keys directory gains no file, and separated from the
//!   identifier tokens (which hash `mobile:…` and `record:…` under `audit.key` itself).
//!
//! Why every byte is covered: the bytes before `,"mac":"` are covered by the line's own `mac`; the last 74
//! bytes (`,"mac":"`, 64 hex digits, `"}`) are compared literally with what the covered bytes imply, so a
//! changed digit, case or quote fails on that same line; the newline is covered by line splitting. Each
//! line's `mac` is the next line's `prev`, and `seq` counts up by one, so removing, reordering or inserting
//! lines is caught. Without the key nobody can compute a `mac`, so a line cannot be changed and the chain
//! "recomputed" after it — the weakness of the plain SHA-256 chain this format replaces.
//!
//! Lines written before the chain was keyed ("legacy" lines) end with `,"hash":"<hex SHA-256 of the
//! covered bytes>"}` and link by the SHA-256 of the whole previous line. They are read (and verified as
//! far as SHA-256 allows) so that an old log keeps working; the first keyed line after them — the writer's
//! `open` record — has as `prev` the SHA-256 of the last legacy line, which puts that prefix under the key
//! from then on. A legacy line after a keyed one is never accepted.
//!
//! A line whose body starts with `"event":` is a control line ([`super::control`]); every other line is an
//! [`super::AuditRecord`].

use std::fmt;
use std::io::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// `prev` of the first line of a chain: 32 zero bytes (64 `0`s in hex).
pub const GENESIS_PREV: [u8; 32] = [0; 32];

/// Label the chain key is derived under (domain separation from the identifier tokens).
const CHAIN_KEY_LABEL: &[u8] = b"otpgate audit chain v1";

const HEAD_SEQ: &[u8] = b"{\"seq\":";
const HEAD_PREV: &[u8] = b",\"prev\":\"";
const MAC_KEY: &[u8] = b",\"mac\":\"";
const LEGACY_HASH_KEY: &[u8] = b",\"hash\":\"";
const TAIL: &[u8] = b"\"}";
const CONTROL: &[u8] = b",\"event\":\"";
/// Length of `,"mac":"<64 hex>"}`.
const SUFFIX_LEN: usize = MAC_KEY.len() + 64 + TAIL.len();
/// Length of `,"hash":"<64 hex>"}`.
const LEGACY_SUFFIX_LEN: usize = LEGACY_HASH_KEY.len() + 64 + TAIL.len();

/// The key of the chain's MACs. Cheap to clone; `Debug` shows no key material.
#[derive(Clone)]
pub struct ChainKey {
    keyed: HmacSha256,
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<key>)")
    }
}

impl ChainKey {
    /// The chain key derived from the audit key (`audit.key`, any length; it is ≥ 32 random bytes).
    pub fn derive(audit_key: &[u8]) -> ChainKey {
        let mut kdf = new_hmac(audit_key);
        kdf.update(CHAIN_KEY_LABEL);
        let derived = kdf.finalize().into_bytes();
        ChainKey { keyed: new_hmac(&derived) }
    }

    /// HMAC-SHA256 of `bytes` under the chain key.
    pub fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// Whether `mac` is the MAC of `bytes` (constant time).
    fn verifies(&self, bytes: &[u8], mac: &[u8; 32]) -> bool {
        let mut m = self.keyed.clone();
        m.update(bytes);
        m.verify_slice(mac).is_ok()
    }
}

fn new_hmac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// How a line is chained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// HMAC-SHA256 under the chain key (`mac` field).
    Keyed,
    /// Plain SHA-256, written before the chain was keyed (`hash` field).
    Legacy,
}

/// What [`parse`] (or [`check`]) learns from a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub seq: u64,
    /// The line's `prev`, decoded.
    pub prev: [u8; 32],
    /// What the next line's `prev` must be: the `mac` of a keyed line, the SHA-256 of a whole legacy line.
    pub link: [u8; 32],
    pub format: Format,
    /// A control line (its body starts with `"event":`), not a record.
    pub control: bool,
}

/// Why a line is not an intact chained line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// The line does not end in `,"mac":"<64 hex>"}` (nor in a legacy `,"hash":"<64 hex>"}`).
    #[error("line does not end with a mac field")]
    NoMac,
    /// The line's content does not give its `mac` under the key: the line was changed, or was written under
    /// another key.
    #[error("mac does not match the line's content under audit.key: the line was changed (or another key wrote it)")]
    MacMismatch,
    /// A legacy line's content does not hash to its `hash` field.
    #[error("hash does not match the line's content")]
    HashMismatch,
    /// The line does not start with `{"seq":N,"prev":"<64 hex>"`.
    #[error("line does not start with seq and prev fields")]
    BadHead,
}

/// Appends the chained line for `body` (a serialized JSON object) to `out`, without a newline, and returns
/// its `mac` (the next `prev`).
pub fn encode(out: &mut Vec<u8>, key: &ChainKey, seq: u64, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
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
    let mac = key.mac(&out[start..]);
    out.extend_from_slice(MAC_KEY);
    push_hex(out, &mac);
    out.extend_from_slice(TAIL);
    mac
}

/// Checks a line's own integrity — its `mac` under `key` (a legacy line: its SHA-256 `hash`) and the layout
/// of `seq`/`prev` — and returns its chain fields. Linking (`seq` + 1, `prev` = previous line's link) is the
/// caller's part.
pub fn check(key: &ChainKey, line: &[u8]) -> Result<Parsed, LineFault> {
    let parsed = parse(line)?;
    if parsed.format == Format::Keyed && !key.verifies(&line[..line.len() - SUFFIX_LEN], &parsed.link) {
        return Err(LineFault::MacMismatch);
    }
    Ok(parsed)
}

/// Reads a line's layout without the key: keyed lines' `mac` is taken as written (anyone can write a line
/// that passes this), legacy lines' SHA-256 is checked. For structure-only checks and [`check`].
pub fn parse(line: &[u8]) -> Result<Parsed, LineFault> {
    let n = line.len();
    let (covered, format, link) = if let Some(mac) = suffix_hex(line, MAC_KEY, SUFFIX_LEN) {
        (&line[..n - SUFFIX_LEN], Format::Keyed, mac)
    } else if let Some(hash) = suffix_hex(line, LEGACY_HASH_KEY, LEGACY_SUFFIX_LEN) {
        let covered = &line[..n - LEGACY_SUFFIX_LEN];
        if <[u8; 32]>::from(Sha256::digest(covered)) != hash {
            return Err(LineFault::HashMismatch);
        }
        (covered, Format::Legacy, Sha256::digest(line).into())
    } else {
        return Err(LineFault::NoMac);
    };
    let (seq, prev, head_len) = parse_head(covered).ok_or(LineFault::BadHead)?;
    let control = covered[head_len..].starts_with(CONTROL);
    Ok(Parsed { seq, prev, link, format, control })
}

/// The 32 bytes of a `<key><64 lowercase hex>"}` suffix of `suffix_len` bytes, if the line ends so.
fn suffix_hex(line: &[u8], key: &[u8], suffix_len: usize) -> Option<[u8; 32]> {
    if line.len() < suffix_len + HEAD_SEQ.len() {
        return None;
    }
    let suffix = &line[line.len() - suffix_len..];
    let hex_part = suffix.strip_prefix(key)?.strip_suffix(TAIL)?;
    if !hex_part.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// `{"seq":N,"prev":"<hex>"` followed by `,` or the end of the covered part: seq, prev and the head's length.
fn parse_head(covered: &[u8]) -> Option<(u64, [u8; 32], usize)> {
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
    let head_len = HEAD_SEQ.len() + digits + HEAD_PREV.len() + 64 + 1;
    match rest {
        [b'"'] | [b'"', b',', ..] => Some((seq, prev, head_len)),
        _ => None,
    }
}

/// Whether a line (checked or not) is a control line: for readers that skip them without checking.
pub fn is_control(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(HEAD_SEQ) else { return false };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let at = digits + HEAD_PREV.len() + 64 + 1;
    rest.get(at..).is_some_and(|r| r.starts_with(CONTROL))
}

/// The `seq` of a line, read from its head only (no check).
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

/// Lowercase hex of a 32-byte MAC or hash.
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    hex_into(bytes, &mut buf);
    buf.iter().map(|&b| char::from(b)).collect()
}

/// A legacy (plain SHA-256) line, as the writer before keying made it: for tests of the upgrade path.
#[cfg(test)]
pub fn encode_legacy(out: &mut Vec<u8>, seq: u64, prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let start = out.len();
    out.extend_from_slice(HEAD_SEQ);
    let _ = write!(out, "{seq}");
    out.extend_from_slice(HEAD_PREV);
    push_hex(out, prev);
    out.push(b'"');
    let inner = body.strip_prefix(b"{").and_then(|b| b.strip_suffix(b"}")).unwrap_or(b"");
    if !inner.is_empty() {
        out.push(b',');
        out.extend_from_slice(inner);
    }
    let own: [u8; 32] = Sha256::digest(&out[start..]).into();
    out.extend_from_slice(LEGACY_HASH_KEY);
    push_hex(out, &own);
    out.extend_from_slice(TAIL);
    Sha256::digest(&out[start..]).into()
}
