//! The invariant the fuzz target `headers` (`fuzz/fuzz_targets/headers.rs`) and the corpus replay
//! test check on one set of client (or upstream) headers. Not part of the gateway's API.
//!
//! Input: a first byte of flags (bit 0 the peer is a trusted proxy, bit 1 TLS, bit 2 ask upstream
//! for `identity`, bit 3 a personal route's allowlist), then `name:value` lines; lines `http`
//! refuses as a header are skipped (hyper refuses them before the gateway sees them).
//!
//! On the way up ([`upstream_request_headers`]):
//! - no hop-by-hop header and no name listed in any `Connection` value survives;
//! - no identity, credential or forwarding header the client sent survives in any spelling: the
//!   ones the gateway sets itself appear once, with exactly the gateway's value;
//! - with an allowlist, nothing else the client sent is forwarded; without one, every other
//!   client header is forwarded unchanged;
//! - no CR, LF or NUL anywhere.
//!
//! On the way down: [`client_response_headers`] leaves no hop-by-hop, listed or `x-otpgate-*`
//! header and one `x-request-id`; [`personal_response_headers`] leaves only its safe names and
//! `cache-control: no-store`.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{
    Forwarding, TraceContext, client_response_headers, is_hop_by_hop, is_stripped_request_header,
    personal_response_headers, upstream_request_headers,
};
use crate::config::Sources;
use crate::policy::{self, Policy, normalize_header_name};

const POLICY: &str = "gateway:
  trusted_proxies: [10.0.0.0/8]
  strip_headers: [x-tenant-id]
upstreams:
  r: {url: 'http://127.0.0.1:1'}
routes:
  - {name: a, methods: [GET], path: /a, access: public, upstream: r}
";

/// Names a personal route's allowlist carries in the fixture.
const ALLOW: [&str; 3] = ["accept", "content-type", "x-api-key"];
const REQUEST_ID: &str = "rid-1";

/// The policy the invariant runs under (compile once, check many).
pub struct Fixture {
    policy: Policy,
    trace: TraceContext,
    allow: Vec<String>,
}

/// The names a `Connection` header lists, read from its raw bytes (a value that is not visible
/// ASCII still names hop-by-hop headers to the next reader).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|n| String::from_utf8_lossy(n.trim_ascii()).to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn parse(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..]))
        else {
            continue;
        };
        headers.append(name, value);
    }
    headers
}

fn clean(headers: &HeaderMap, side: &str) -> Result<(), String> {
    for (name, value) in headers {
        if value.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(format!("{side}: {name} carries CR, LF or NUL"));
        }
        if is_hop_by_hop(name.as_str()) {
            return Err(format!("{side}: hop-by-hop {name} survived"));
        }
    }
    Ok(())
}

fn values(headers: &HeaderMap, name: &str) -> Vec<Vec<u8>> {
    headers.get_all(name).iter().map(|v| v.as_bytes().to_vec()).collect()
}

impl Fixture {
    /// Compile the fixture's policy.
    pub fn new() -> Result<Fixture, String> {
        let sources = Sources { files: vec![("p.yaml".into(), POLICY.into())], base: None };
        let policy = policy::load(&sources, &Vec::new(), &[0; 32]).map_err(|e| format!("policy: {e:?}"))?;
        let trace = TraceContext {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            flags: "01".into(),
        };
        Ok(Fixture { policy, trace, allow: ALLOW.iter().map(|s| s.to_string()).collect() })
    }

    /// Check the invariant on one input; `Err` describes the violation.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        let flags = data.first().copied().unwrap_or(0);
        let incoming = parse(data.get(1..).unwrap_or_default());
        let trusted = flags & 1 != 0;
        let peer: IpAddr = if trusted { [10, 1, 2, 3].into() } else { [203, 0, 113, 9].into() };
        let fwd = Forwarding {
            peer,
            peer_trusted: trusted,
            tls: flags & 2 != 0,
            request_id: REQUEST_ID,
            trace: &self.trace,
            identity_encoding: flags & 4 != 0,
            allow: (flags & 8 != 0).then_some(self.allow.as_slice()),
        };
        let out = upstream_request_headers(incoming.clone(), &fwd, &self.policy);
        self.check_upstream(&incoming, &fwd, &out)?;

        let mut down = incoming.clone();
        client_response_headers(&mut down, REQUEST_ID);
        clean(&down, "response")?;
        let listed = connection_listed(&incoming);
        for name in down.keys() {
            if listed.iter().any(|l| l == name.as_str()) && name != "x-request-id" {
                return Err(format!("response: {name}, listed in Connection, survived"));
            }
            if normalize_header_name(name.as_str()).starts_with("x-otpgate-") {
                return Err(format!("response: internal {name} survived"));
            }
        }
        if values(&down, "x-request-id") != [REQUEST_ID.as_bytes()] {
            return Err("response: x-request-id is not the gateway's, once".into());
        }
        let mut personal = incoming;
        personal_response_headers(&mut personal, flags & 16 != 0);
        for name in personal.keys() {
            let safe = ["content-type", "content-length", "content-encoding", "date", "vary", "cache-control"];
            let disposition = flags & 16 != 0 && name == http::header::CONTENT_DISPOSITION;
            if !safe.contains(&name.as_str()) && !disposition {
                return Err(format!("personal response: {name} survived"));
            }
        }
        if values(&personal, "cache-control") != [b"no-store".as_slice()] {
            return Err("personal response: cache-control is not no-store, once".into());
        }
        Ok(())
    }

    fn check_upstream(&self, incoming: &HeaderMap, fwd: &Forwarding<'_>, out: &HeaderMap) -> Result<(), String> {
        clean(out, "upstream")?;
        let listed = connection_listed(incoming);
        let scheme: &[u8] = if fwd.tls { b"https" } else { b"http" };
        // The trusted chain's readable values, then the peer; an untrusted peer's chain is dropped.
        let mut xff: Vec<u8> = Vec::new();
        if fwd.peer_trusted {
            for v in incoming.get_all("x-forwarded-for").iter().filter(|v| v.to_str().is_ok()) {
                xff.extend_from_slice(v.as_bytes());
                xff.extend_from_slice(b", ");
            }
        }
        xff.extend_from_slice(fwd.peer.to_string().as_bytes());
        let proto = match incoming.get("x-forwarded-proto") {
            Some(p) if fwd.peer_trusted => p.as_bytes(),
            _ => scheme,
        };
        let mut set: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("x-forwarded-proto", vec![proto.to_vec()]),
            ("x-request-id", vec![REQUEST_ID.as_bytes().to_vec()]),
            ("traceparent", vec![self.trace.header().into_bytes()]),
            // The client's `Host` (unless its `Connection` header named it hop-by-hop).
            (
                "x-forwarded-host",
                incoming
                    .get("host")
                    .filter(|_| !listed.iter().any(|l| l == "host"))
                    .map(|h| h.as_bytes().to_vec())
                    .into_iter()
                    .collect(),
            ),
            ("x-forwarded-for", vec![xff]),
        ];
        if fwd.identity_encoding {
            set.push(("accept-encoding", vec![b"identity".to_vec()]));
        }
        for (n, want) in &set {
            if values(out, n) != *want {
                return Err(format!("upstream: {n} is not exactly the gateway's value"));
            }
        }
        for name in out.keys() {
            let n = name.as_str();
            if set.iter().any(|(s, _)| *s == n) {
                continue;
            }
            if listed.iter().any(|l| l == n) {
                return Err(format!("upstream: {n}, listed in Connection, survived"));
            }
            if is_stripped_request_header(&normalize_header_name(n), &self.policy.strip_headers) {
                return Err(format!("upstream: identity or credential header {n} survived"));
            }
            if n == "host" {
                return Err("upstream: the client's host header survived".into());
            }
            if fwd.allow.is_some_and(|allow| !allow.iter().any(|a| a == n)) {
                return Err(format!("upstream: {n} is not on the route's allowlist"));
            }
            if values(out, n) != values(incoming, n) {
                return Err(format!("upstream: {n} was changed on the way"));
            }
        }
        // Every client header that may pass does.
        for name in incoming.keys() {
            let n = name.as_str();
            let removed = is_hop_by_hop(n)
                || listed.iter().any(|l| l == n)
                || n == "host"
                || is_stripped_request_header(&normalize_header_name(n), &self.policy.strip_headers)
                || fwd.allow.is_some_and(|allow| !allow.iter().any(|a| a == n));
            if !removed && !set.iter().any(|(s, _)| *s == n) && !out.contains_key(name) {
                return Err(format!("upstream: {n} was dropped though nothing removes it"));
            }
        }
        Ok(())
    }
}

/// [`Fixture::check`] with a fixture compiled for this one call.
pub fn check(data: &[u8]) -> Result<(), String> {
    Fixture::new()?.check(data)
}
