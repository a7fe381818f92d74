//! The invariant the fuzz target `normalize` (`fuzz/fuzz_targets/normalize.rs`) and the corpus
//! replay test check on one request target. Not part of the gateway's API.
//!
//! The input is the request target as a client sends it (bytes that `http::Uri` refuses never reach
//! the normaliser and are skipped). When [`path_segments`] accepts it:
//! - no segment is empty, `.` or `..`, and none holds `/`, `\`, `;`, `%`, a control byte or NUL;
//! - the raw path holds none of the spellings that two parsers could read differently (`%2f`,
//!   `%5c`, `%25`, `%2e`, `%3b`, an encoded control byte, an encoded unreserved character, `//`,
//!   dot segments, backslashes) and is within the URI limit;
//! - the segments are exactly what one independent percent-decoding of each raw segment gives;
//! - normalising is idempotent: the segments, encoded again minimally, are accepted and give the
//!   same segments, and that encoding is a fixpoint.

use http::Uri;

use super::path_segments;
use crate::policy::Limits;

/// The limits the invariant runs under (the shipped URI limit; header limits do not apply here).
fn limits() -> Limits {
    Limits {
        unidentified: Vec::new(),
        max_headers: 100,
        max_header_bytes: 32 * 1024,
        max_uri_bytes: 8 * 1024,
        citizen_body: 0,
        partner_body: 0,
        max_connections: 1,
    }
}

/// Characters a path segment may carry unencoded and that the normaliser leaves as they are:
/// RFC 3986 unreserved, sub-delims but `;`, `:` and `@`.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

/// The minimal encoding of decoded segments: everything but [`plain`] as `%XX`.
fn encode(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        for &b in s.as_bytes() {
            if plain(b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn segments_of(uri: &Uri, limits: &Limits) -> Result<Vec<String>, crate::error::GatewayError> {
    path_segments(uri, limits).map(|v| v.into_iter().map(|c| c.into_owned()).collect())
}

/// Spellings an accepted raw path must not contain (compared lowercased).
const AMBIGUOUS: [&str; 10] = ["%2f", "%5c", "%25", "%2e", "%3b", "%00", "%7f", "//", "\\", "%7e"];

/// Check the invariant on one request target; `Err` describes the violation.
pub fn check(data: &[u8]) -> Result<(), String> {
    let Ok(uri) = Uri::try_from(data) else {
        return Ok(());
    };
    let limits = limits();
    let Ok(segments) = segments_of(&uri, &limits) else {
        return Ok(());
    };
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(format!("accepted a target of {target_len} bytes"));
    }
    for s in &segments {
        if s.is_empty() || s == "." || s == ".." {
            return Err(format!("accepted segment {s:?}"));
        }
        if s.bytes().any(|b| matches!(b, b'/' | b'\\' | b';' | b'%' | 0..=0x1f | 0x7f)) {
            return Err(format!("segment {s:?} holds a separator, `%`, `;` or a control byte"));
        }
    }
    let raw = uri.path();
    let lower = raw.to_ascii_lowercase();
    if let Some(bad) = AMBIGUOUS.iter().find(|bad| lower.contains(**bad)) {
        return Err(format!("accepted {raw:?}, which holds {bad:?}"));
    }
    if lower.split('/').skip(1).any(|s| s == "." || s == "..") {
        return Err(format!("accepted dot segments in {raw:?}"));
    }
    let encoded_unreserved = lower.split('%').skip(1).any(|rest| {
        let hex = rest.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok());
        hex.is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b) || b < 0x20)
    });
    if encoded_unreserved {
        return Err(format!("accepted an encoded unreserved or control character in {raw:?}"));
    }
    // One independent decoding of each raw segment.
    let independent: Vec<String> = if raw == "/" {
        Vec::new()
    } else {
        raw.split('/')
            .skip(1)
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("accepted {raw:?}, which does not decode to UTF-8"))?
    };
    if independent != segments {
        return Err(format!("{raw:?} decoded to {segments:?}, an independent decoder reads {independent:?}"));
    }
    // Idempotent: the minimal encoding of the segments normalises to the same segments.
    let again = encode(&segments);
    let uri2 = Uri::try_from(again.as_str()).map_err(|e| format!("re-encoded {again:?} is not a URI: {e}"))?;
    let segments2 = segments_of(&uri2, &limits).map_err(|e| format!("re-encoded {again:?} refused: {e:?}"))?;
    if segments2 != segments {
        return Err(format!("re-encoded {again:?} gave {segments2:?}, not {segments:?}"));
    }
    if encode(&segments2) != again {
        return Err(format!("encoding {again:?} is not a fixpoint"));
    }
    Ok(())
}
