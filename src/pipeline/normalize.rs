//! The request target, proven unambiguous before anything looks at it.
//!
//! A path that two parsers could read differently is refused with `400`, never guessed: encoded
//! slashes, backslashes or dots, needless encodings of unreserved characters, double encoding,
//! dot segments, empty segments, `;` parameters, control bytes and NUL, and Unicode look-alikes of
//! the delimiters (which NFKC or Windows "best fit" turn into them). What is accepted is then
//! forwarded byte for byte, so the path that was authorized is the path the upstream sees.

use std::borrow::Cow;

use http::{HeaderMap, Uri};

use crate::error::{GatewayError, PathProblem};
use crate::policy::Limits;

#[doc(hidden)]
pub mod fuzzing;

/// Enforce the header count and header block size limits (`431`).
pub fn check_headers(headers: &HeaderMap, uri: &Uri, limits: &Limits) -> Result<(), GatewayError> {
    if headers.len() > limits.max_headers {
        return Err(GatewayError::HeadersTooLarge);
    }
    // Request line + each "name: value\r\n".
    let block: usize = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>();
    if block > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    // Headers the gateway reads and the upstream reads again must mean one thing to both: a
    // second `Content-Type` could make the upstream parse a body the ownership check read as JSON
    // as a form, a second credential could be the one the upstream believes.
    for name in &SINGLE {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(GatewayError::BadRequest("a header that may appear once appears more than once"));
        }
    }
    Ok(())
}

/// Headers refused when repeated (as names: looked up per request without parsing a string).
const SINGLE: [http::HeaderName; 5] = [
    http::header::CONTENT_TYPE,
    http::header::AUTHORIZATION,
    http::HeaderName::from_static("x-api-key"),
    http::header::HOST,
    crate::upstream::headers::TRACEPARENT,
];

/// Does the query string carry a credential? Tokens in URLs end up in logs, caches and
/// `Referer` headers, so such requests are refused (and the query is never logged).
pub fn query_carries_token(query: Option<&str>) -> bool {
    const NAMES: [&str; 7] = ["token", "access_token", "id_token", "jwt", "bearer", "authorization", "auth"];
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().to_ascii_lowercase();
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            NAMES.contains(&name.trim_end_matches("[]")) || (value.starts_with("eyJ") && value.contains('.'))
        })
    })
}

/// Check the request target and return the decoded path segments.
pub fn path_segments<'u>(uri: &'u Uri, limits: &Limits) -> Result<Vec<Cow<'u, str>>, GatewayError> {
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(GatewayError::UriTooLong);
    }
    let path = uri.path();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(GatewayError::AmbiguousPath(PathProblem::NotOriginForm));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/').map(segment).collect::<Result<_, _>>().map_err(GatewayError::AmbiguousPath)
}

fn segment(raw: &str) -> Result<Cow<'_, str>, PathProblem> {
    if raw.is_empty() {
        return Err(PathProblem::EmptySegment);
    }
    if raw == "." || raw == ".." {
        return Err(PathProblem::DotSegment);
    }
    for &b in raw.as_bytes() {
        match b {
            b'\\' => return Err(PathProblem::Backslash),
            b';' => return Err(PathProblem::Semicolon),
            0..=0x1f | 0x7f => return Err(PathProblem::ControlOrNul),
            0x80..=0xff => return Err(PathProblem::NotUtf8),
            _ => {}
        }
    }
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(PathProblem::BadPercentEncoding)?;
        let hex = std::str::from_utf8(hex).map_err(|_| PathProblem::BadPercentEncoding)?;
        let decoded = u8::from_str_radix(hex, 16).map_err(|_| PathProblem::BadPercentEncoding)?;
        match decoded {
            b'/' | b'\\' => return Err(PathProblem::EncodedSeparator),
            b'%' => return Err(PathProblem::DoubleEncoding),
            b';' => return Err(PathProblem::Semicolon),
            0..=0x1f | 0x7f => return Err(PathProblem::ControlOrNul),
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                return Err(PathProblem::EncodedUnreserved);
            }
            b => out.push(b),
        }
        i += 3;
    }
    let decoded = String::from_utf8(out).map_err(|_| PathProblem::NotUtf8)?;
    if decoded.chars().any(|c| LOOK_ALIKES.contains(&c)) {
        return Err(PathProblem::LookAlike);
    }
    Ok(Cow::Owned(decoded))
}

/// Characters that a backend normalising its path (NFKC, or Windows "best fit" mapping) reads as
/// `.`, `/`, `\`, `%`, `;`, `?` or `#`: `a／..／b` would be one segment here and three there.
/// (Raw non-ASCII bytes are refused above, so they can only arrive percent-encoded.)
const LOOK_ALIKES: [char; 19] = [
    '\u{2024}', '\u{2025}', '\u{2026}', '\u{FE52}',
    '\u{FF0E}', // one and two dot leaders, ellipsis, small and fullwidth full stops
    '\u{FF0F}', '\u{2215}', '\u{2044}', // fullwidth solidus, division and fraction slashes
    '\u{FF3C}', '\u{FE68}', '\u{2216}', // fullwidth and small reverse solidus, set minus
    '\u{FF05}', '\u{FE6A}', // fullwidth and small percent signs
    '\u{FF1B}', '\u{FE54}', // fullwidth and small semicolons
    '\u{FF1F}', '\u{FE56}', // fullwidth and small question marks
    '\u{FF03}', '\u{FE5F}', // fullwidth and small number signs
];

#[cfg(test)]
mod tests;
