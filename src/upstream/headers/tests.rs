use super::*;
use crate::config::Sources;
use crate::policy::{self, Policy};

fn policy(trusted: &[&str], strip: &[&str]) -> Policy {
    let gateway = format!(
        "gateway:\n  trusted_proxies: [{}]\n  strip_headers: [{}]\nupstreams:\n  r: {{url: 'http://127.0.0.1:1'}}\nroutes:\n  - {{name: a, methods: [GET], path: /a, access: public, upstream: r}}\n",
        trusted.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", "),
        strip.join(", ")
    );
    policy::load(&Sources { files: vec![("p.yaml".into(), gateway)], base: None }, &Vec::new(), &[0; 32]).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn trace() -> TraceContext {
    TraceContext {
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        span_id: "b7ad6b7169203331".into(),
        flags: "01".into(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn hop_by_hop_and_connection_listed_names_are_removed() {
    let mut h = headers(&[
        ("connection", "keep-alive, X-Secret-Hop"),
        ("connection", "other-hop"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("proxy-connection", "keep-alive"),
        ("x-secret-hop", "1"),
        ("other-hop", "1"),
        ("accept", "application/json"),
    ]);
    remove_hop_by_hop(&mut h);
    let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(left, ["accept"]);
}

/// Found by the `headers` fuzz invariant (on a seed): a `Connection` value with a byte outside
/// visible ASCII was skipped whole, so the names it listed were forwarded.
#[test]
fn names_listed_in_a_connection_value_with_non_ascii_bytes_are_removed() {
    let mut h = HeaderMap::new();
    h.append("connection", HeaderValue::from_bytes(b"foo\xff, bar").unwrap());
    h.append("bar", HeaderValue::from_static("1"));
    h.append("accept", HeaderValue::from_static("*/*"));
    remove_hop_by_hop(&mut h);
    let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(left, ["accept"]);
}

#[test]
fn identity_headers_are_stripped_in_every_spelling() {
    let p = policy(&[], &["x-tenant_id"]);
    let trace = trace();
    let fwd = Forwarding {
        peer: ip("203.0.113.9"),
        peer_trusted: false,
        tls: true,
        request_id: "rid",
        trace: &trace,
        identity_encoding: true,
        allow: None,
    };
    let incoming = headers(&[
        ("x-otpgate-identity", "forged"),
        ("x_otpgate_identity", "forged"),
        ("x.otpgate.identity", "forged"),
        ("X-OTPGATE-Mobile", "forged"),
        ("x-user-mobile", "forged"),
        ("x_user", "forged"),
        ("x-forwarded-client-cert", "forged"),
        ("x_forwarded_client_cert", "forged"),
        ("client-cert", "forged"),
        ("x-ssl-client-s-dn", "forged"),
        ("x.ssl.client.verify", "forged"),
        ("x-tenant-id", "forged"),
        ("x.tenant.id", "forged"),
        ("authorization", "Bearer secret"),
        ("x-api-key", "secret"),
        ("cookie", "s=1"),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-real-ip", "1.2.3.4"),
        ("forwarded", "for=1.2.3.4"),
        ("x-request-id", "client-chosen"),
        ("X-HTTP-Method-Override", "forged"),
        ("x_http_method", "forged"),
        ("x.method.override", "forged"),
        ("transfer_encoding", "forged"),
        ("content.length", "forged"),
        ("keep_alive", "forged"),
        ("host", "gw.example"),
        ("accept-encoding", "gzip"),
        ("accept", "application/json"),
    ]);
    let out = upstream_request_headers(incoming.clone(), &fwd, &p);
    for (name, value) in &out {
        assert_ne!(value, "forged", "{name} survived");
        assert_ne!(value, "secret", "{name} survived");
    }
    assert!(!out.contains_key("cookie") && !out.contains_key("authorization") && !out.contains_key("forwarded"));
    assert_eq!(out["x-forwarded-for"], "203.0.113.9", "an untrusted peer's XFF is replaced");
    assert_eq!(out["x-forwarded-proto"], "https");
    assert_eq!(out["x-forwarded-host"], "gw.example");
    assert_eq!(out["x-request-id"], "rid");
    assert_eq!(out["accept-encoding"], "identity");
    assert_eq!(out["accept"], "application/json");
    assert!(!out.contains_key("host"), "the client sets Host for the upstream");
    assert_eq!(out["traceparent"], trace.header().as_str());
}

#[test]
fn trusted_proxy_chain_is_kept_and_extended() {
    let p = policy(&["10.0.0.0/8"], &[]);
    let trace = trace();
    let fwd = Forwarding {
        peer: ip("10.1.1.1"),
        peer_trusted: true,
        tls: false,
        request_id: "rid",
        trace: &trace,
        identity_encoding: false,
        allow: None,
    };
    let incoming =
        headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https"), ("accept-encoding", "gzip")]);
    let out = upstream_request_headers(incoming.clone(), &fwd, &p);
    assert_eq!(out["x-forwarded-for"], "198.51.100.7, 10.1.1.1");
    assert_eq!(out["x-forwarded-proto"], "https");
    assert_eq!(out["accept-encoding"], "gzip", "only redacted routes force identity");
}

#[test]
fn client_ip_is_rightmost_untrusted_hop() {
    let p = policy(&["10.0.0.0/8"], &[]);
    let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
    assert_eq!(client_ip(ip("10.0.0.1"), &h, &p), ip("198.51.100.7"));
    assert_eq!(client_ip(ip("203.0.113.1"), &h, &p), ip("203.0.113.1"), "untrusted peer: XFF ignored");
    let h = headers(&[("x-forwarded-for", "junk, 10.0.0.3")]);
    assert_eq!(client_ip(ip("10.0.0.1"), &h, &p), ip("10.0.0.3"), "garbage never becomes an identity");
    let h = headers(&[("x-forwarded-for", "10.0.0.5")]);
    assert_eq!(client_ip(ip("10.0.0.1"), &h, &p), ip("10.0.0.5"));
    assert_eq!(client_ip(ip("10.0.0.1"), &HeaderMap::new(), &p), ip("10.0.0.1"));
}

#[test]
fn response_headers_lose_hop_by_hop_and_internal_names() {
    let mut h = headers(&[
        ("connection", "close"),
        ("x-otpgate-debug", "1"),
        ("x_otpgate_x", "1"),
        ("content-type", "application/json"),
    ]);
    client_response_headers(&mut h, "rid");
    assert!(!h.contains_key("connection") && !h.contains_key("x-otpgate-debug") && !h.contains_key("x_otpgate_x"));
    assert_eq!(h["x-request-id"], "rid");
}

#[test]
fn personal_answers_keep_only_safe_upstream_headers() {
    let upstream = [
        ("content-type", "application/json"),
        ("cache-control", "max-age=60, x-ref=\"10000000000001\""),
        ("location", "/beneficiary/10000000000001"),
        ("etag", "\"9000000001\""),
        ("set-cookie", "who=9000000001"),
        ("x-beneficiary-id", "10000000000001"),
        ("content-disposition", "attachment; filename=certificate-10000000000001.pdf"),
    ];
    let mut h = headers(&upstream);
    personal_response_headers(&mut h, false);
    let mut left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["cache-control", "content-type"]);
    assert_eq!(h["cache-control"], "no-store", "the upstream's caching words are replaced");
    let mut pdf = headers(&upstream);
    personal_response_headers(&mut pdf, true);
    assert!(pdf.contains_key("content-disposition"), "the certificate's file name, where no profile applies");
    assert!(!pdf.contains_key("x-beneficiary-id") && !pdf.contains_key("location"));
}

#[test]
fn personal_routes_forward_only_their_allowlist() {
    let p = policy(&[], &[]);
    let trace = trace();
    let allow: Vec<String> = ["accept", "content-type", "x-app-version"].iter().map(|s| s.to_string()).collect();
    let fwd = Forwarding {
        peer: ip("203.0.113.9"),
        peer_trusted: false,
        tls: true,
        request_id: "rid",
        trace: &trace,
        identity_encoding: true,
        allow: Some(&allow),
    };
    let incoming = headers(&[
        ("accept", "application/json"),
        ("x-app-version", "1"),
        ("content_type", "application/x-www-form-urlencoded"),
        ("x-remote-user", "9000000002"),
        ("remote-user", "9000000002"),
        ("x-auth-request-user", "9000000002"),
        ("true-client-ip", "1.2.3.4"),
        ("cf-connecting-ip", "1.2.3.4"),
        ("x-something-nobody-thought-of", "9000000002"),
    ]);
    let out = upstream_request_headers(incoming.clone(), &fwd, &p);
    let mut names: Vec<&str> = out.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "accept-encoding",
            "traceparent",
            "x-app-version",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-request-id"
        ],
        "the allowlist (exactly as spelled: no `content_type` a server might read as Content-Type), then what the gateway adds"
    );
    let open = Forwarding { allow: None, ..fwd };
    let out = upstream_request_headers(incoming.clone(), &open, &p);
    for name in ["x-remote-user", "remote-user", "x-auth-request-user", "true-client-ip", "cf-connecting-ip"] {
        assert!(!out.contains_key(name), "{name} is an identity header everywhere");
    }
}

/// The committed corpus of the `headers` fuzz target, replayed (what CI runs; fuzzing is not).
#[test]
fn fuzz_corpus_replays_clean() {
    let fixture = super::fuzzing::Fixture::new().unwrap();
    let files = crate::redact::fuzzing::replay("headers", |data| fixture.check(data));
    assert!(files >= 20, "only {files} corpus files");
}

#[test]
fn peer_addresses_are_written_as_std_writes_them() {
    for ip in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.3.4", "::1", "2001:db8::7", "::ffff:1.2.3.4"] {
        let ip: IpAddr = ip.parse().unwrap();
        let mut out = String::new();
        super::push_ip(&mut out, ip);
        assert_eq!(out, ip.to_string());
    }
}
