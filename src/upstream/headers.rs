//! Header hygiene between client and upstream: hop-by-hop removal (RFC 9110 §7.6.1, including
//! names listed in `Connection`), removal of client-sent identity and credential headers in every
//! spelling, forwarding headers, client-address resolution and the W3C `traceparent` sent on.

use std::net::IpAddr;

use crate::policy::{Policy, normalize_header_name as normalize_name};
use http::{HeaderMap, HeaderName, HeaderValue, header};

#[doc(hidden)]
pub mod fuzzing;

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the old `Keep-Alive`/`Proxy-Connection`), as header
/// names: removing by name skips parsing a string per request.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.as_str() == name)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C trace context header (read by the pipeline, replaced on the way upstream).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Remove hop-by-hop headers, including every name listed in `Connection`. The list is read from
/// the value's bytes: a value with a non-ASCII byte (which `HeaderValue::to_str` refuses) still
/// names its other hop-by-hop headers to the next reader, so they are removed too.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names instead of a lookup per hop-by-hop name; most messages carry none
    // or only `Connection`. A name listed in `Connection` comes with a `Connection` header.
    let present: Vec<HeaderName> = headers.keys().filter(|n| HOP_BY_HOP.contains(n)).cloned().collect();
    if present.is_empty() {
        return;
    }
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|n| String::from_utf8_lossy(n.trim_ascii()).to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in present {
        headers.remove(name);
    }
    for name in &listed {
        headers.remove(name.as_str());
    }
}

/// Headers by which many frameworks let a client replace the request method: the upstream could
/// run a method the route does not allow (a `GET` the policy permits obeyed as a `DELETE`).
const METHOD_OVERRIDES: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// Client-sent headers that could claim an identity, carry a credential meant for the gateway,
/// forge forwarding information or override the method authorized. Matched on the normalized
/// name, so every spelling is caught.
pub fn is_stripped_request_header(normalized: &str, extra: &[String]) -> bool {
    crate::policy::identity_header(normalized)
        || METHOD_OVERRIDES.contains(&normalized)
        || extra.iter().any(|e| e == normalized)
        || normalized == "x-request-id"
        || normalized == "traceparent"
        || normalized == "tracestate"
}

/// A header spelled like a framing or hop-by-hop header with `_` or `.` for `-`
/// (`Transfer_Encoding`, `content.length`): no framing to the gateway's parser, but the same CGI
/// variable (`HTTP_TRANSFER_ENCODING`) to an upstream that maps names that way.
fn framing_look_alike(name: &str, normalized: &str) -> bool {
    name != normalized && (is_hop_by_hop(normalized) || normalized == "content-length" || normalized == "host")
}

/// The address of the real client: the socket peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` hop that is not itself a trusted proxy. Unparseable hops end the
/// walk (the hop before them is the last one vouched for), so random values open no new identity.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, policy: &Policy) -> IpAddr {
    let peer = crate::policy::cidr::canonical(peer);
    if !policy.is_trusted_proxy(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut current = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            return current;
        };
        let ip = crate::policy::cidr::canonical(ip);
        if !policy.is_trusted_proxy(ip) {
            return ip;
        }
        current = ip;
    }
    current
}

/// A W3C trace context for the upstream hop (built by the pipeline's trace stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl TraceContext {
    /// The `traceparent` header naming this hop.
    pub fn header(&self) -> String {
        let mut h = String::with_capacity(6 + self.trace_id.len() + self.span_id.len() + self.flags.len());
        for part in ["00-", &self.trace_id, "-", &self.span_id, "-", &self.flags] {
            h.push_str(part);
        }
        h
    }
}

/// What the gateway adds on the way upstream.
pub struct Forwarding<'a> {
    /// The socket peer; appended to a trusted `X-Forwarded-For` chain, or the whole chain.
    pub peer: IpAddr,
    pub peer_trusted: bool,
    pub tls: bool,
    pub request_id: &'a str,
    pub trace: &'a TraceContext,
    pub identity_encoding: bool,
    /// Personal-data routes: only these client headers (normalized names) are forwarded.
    pub allow: Option<&'a [String]>,
}

/// Build the upstream request headers from the client's (taken, and cleaned in place).
pub fn upstream_request_headers(mut out: HeaderMap, fwd: &Forwarding<'_>, policy: &Policy) -> HeaderMap {
    // Read as the client sent them, before anything is removed.
    let trusted_proto = fwd.peer_trusted.then(|| out.get(X_FORWARDED_PROTO).cloned()).flatten();
    // A trusted proxy's chain as it came, then the peer.
    let mut xff = String::new();
    if fwd.peer_trusted {
        for hop in out.get_all(X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
            xff.push_str(hop);
            xff.push_str(", ");
        }
    }
    push_ip(&mut xff, crate::policy::cidr::canonical(fwd.peer));
    remove_hop_by_hop(&mut out);
    let host = out.remove(header::HOST);
    let doomed: Vec<HeaderName> = out
        .keys()
        .filter(|n| {
            // The allowlist takes names exactly as spelled (a `content_type` is not a
            // `content-type` here, though some servers would read it as one); the denylist
            // catches every spelling.
            let normalized = normalize_name(n.as_str());
            is_stripped_request_header(&normalized, &policy.strip_headers)
                || framing_look_alike(n.as_str(), &normalized)
                || fwd.allow.is_some_and(|allow| !allow.iter().any(|a| a == n.as_str()))
        })
        .cloned()
        .collect();
    for name in doomed {
        out.remove(name);
    }
    if let Ok(v) = HeaderValue::try_from(xff) {
        out.insert(X_FORWARDED_FOR, v);
    }
    let proto = trusted_proto.unwrap_or_else(|| HeaderValue::from_static(if fwd.tls { "https" } else { "http" }));
    out.insert(X_FORWARDED_PROTO, proto);
    if let Some(h) = host {
        out.insert(X_FORWARDED_HOST, h);
    }
    if let Ok(v) = HeaderValue::from_str(fwd.request_id) {
        out.insert(X_REQUEST_ID, v);
    }
    if let Ok(v) = HeaderValue::try_from(fwd.trace.header()) {
        out.insert(TRACEPARENT, v);
    }
    if fwd.identity_encoding {
        out.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    out
}

/// `ip` as text; IPv4 (the common case) without the formatting machinery.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
        }
        IpAddr::V6(_) => out.push_str(&ip.to_string()),
    }
}

/// Clean an upstream response's headers before they go to the client.
pub fn client_response_headers(headers: &mut HeaderMap, request_id: &str) {
    remove_hop_by_hop(headers);
    let internal: Vec<HeaderName> =
        headers.keys().filter(|n| normalize_name(n.as_str()).starts_with("x-otpgate-")).cloned().collect();
    for name in internal {
        headers.remove(name);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
}

/// On a personal-data route, the upstream's response headers that may reach the client: headers
/// carry no redaction, so any other (`Location`, `ETag`, `Set-Cookie`, a custom `X-Beneficiary-*`,
/// free-form `Cache-Control` extensions) could carry an identifier past the profile.
/// `Content-Disposition` (a file name) is kept only where no profile applies (the certificate
/// PDF, whose ownership was checked on the request). Personal data is never stored by caches:
/// `Cache-Control: no-store`.
pub fn personal_response_headers(headers: &mut HeaderMap, keep_disposition: bool) {
    const SAFE: [&str; 5] = ["content-type", "content-length", "content-encoding", "date", "vary"];
    let kept =
        |n: &HeaderName| SAFE.contains(&n.as_str()) || (keep_disposition && n == http::header::CONTENT_DISPOSITION);
    let drop: Vec<HeaderName> = headers.keys().filter(|n| !kept(n)).cloned().collect();
    for name in drop {
        headers.remove(name);
    }
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests;
