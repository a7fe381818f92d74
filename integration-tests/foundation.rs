//! Issue 2: server, limits, TLS, forwarding, drain, admin, demo, registry-sim.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::harness::upstream::{Blackhole, Echo};
use crate::harness::*;

pub const GATEWAY: &str = "gateway:
  timeouts:
    header_read: 1s
    upstream_connect: 500ms
    route: 1s
    keep_alive: 2s
    drain: 10s
  limits:
    citizen_body: 1KiB
citizens:
  otp:
    delivery: {outbox: {path: otp-outbox.jsonl}}
";

pub fn routes(extra: &str) -> String {
    format!(
        "upstreams:
  test: {{url: 'http://127.0.0.1:1'}}
  hole: {{url: 'http://127.0.0.1:1'}}
  closed: {{url: 'http://127.0.0.1:1'}}
routes:
  - {{name: echo, methods: [GET, POST], path: /echo, access: public, upstream: test}}
  - {{name: echo-id, methods: [GET], path: '/echo/{{id}}', access: public, upstream: test}}
  - {{name: slow, methods: [GET], path: /slow, access: public, upstream: test, timeout: 5s}}
  - {{name: timeout, methods: [GET], path: /timeout, access: public, upstream: test}}
  - {{name: hole, methods: [GET], path: /hole, access: public, upstream: hole}}
  - {{name: closed, methods: [GET], path: /closed, access: public, upstream: closed}}
  - {{name: private, methods: [GET], path: /private, access: citizen, upstream: test}}
{extra}"
    )
}

/// A gateway (`serve`) in front of an echo upstream, with the test policy.
pub struct Setup {
    pub gw: Gateway,
    pub echo: Echo,
    pub dir: tempfile::TempDir,
    _hole: Blackhole,
}

impl Setup {
    pub async fn new() -> Setup {
        let echo = Echo::start().await;
        let hole = Blackhole::start().await;
        let dir = policy_dir(GATEWAY, &routes(""));
        let test = format!("test={}", echo.url());
        let hole_up = format!("hole=http://{}", hole.addr);
        let gw = Gateway::serve(dir.path(), &["--upstream", &test, "--upstream", &hole_up]);
        Setup { gw, echo, dir, _hole: hole }
    }

    pub fn http(&self) -> std::net::SocketAddr {
        self.gw.addr("http")
    }

    pub async fn metrics(&self) -> String {
        get_h1(self.gw.addr("admin"), "/metrics").await.text()
    }
}

#[test]
fn required_top_level_layout_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in ["Cargo.toml", "src", "policies", "certs", "integration-tests", "helm", "README.md", ".ci/run"] {
        assert!(root.join(entry).exists(), "{entry} is missing");
    }
}

#[tokio::test]
async fn http1_and_http2_share_the_plain_port() {
    let s = Setup::new().await;
    let r1 = get_h1(s.http(), "/echo").await;
    assert_eq!((r1.status, r1.version), (200, http::Version::HTTP_11));
    let r2 = h2(tcp(s.http()).await, get(&format!("http://{}/echo", s.http()))).await;
    assert_eq!((r2.status, r2.version), (200, http::Version::HTTP_2));
    assert_eq!(r2.json()["method"], "GET");
}

#[tokio::test]
async fn demo_answers_over_https_with_both_alpns_and_over_plain() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let ca = gw.data_path("ca.pem");
    let path = "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=1&date=01-06-2021";
    let https = gw.addr("https");

    let stream = tls(https, &ca, &[b"h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let r = h2(stream, get(&format!("https://localhost:{}{path}", https.port()))).await;
    assert_eq!((r.status, r.version), (200, http::Version::HTTP_2));
    assert!(!r.json()["centers"].as_array().unwrap().is_empty());

    let stream = tls(https, &ca, &[b"http/1.1"]).await;
    let req = Request::get(path).header("host", "localhost").body(Full::new(Bytes::new())).unwrap();
    let r = h1(stream, req).await;
    assert_eq!((r.status, r.version), (200, http::Version::HTTP_11));
    assert!(!r.json()["centers"].as_array().unwrap().is_empty());

    let plain = get_h1(gw.addr("http"), path).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.json(), r.json(), "same answer on both listeners");

    for file in ["ca.pem", "partner-icmr.pem", "partner-icmr-key.pem"] {
        assert!(gw.data_path(file).is_file(), "{file}");
    }
    // Personal-data routes are closed until they have their protection.
    let r = get_h1(gw.addr("http"), "/api/v2/appointment/beneficiaries").await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn header_limits_answer_431_in_the_json_shape() {
    let s = Setup::new().await;
    let mut req = Request::get("/echo").header("host", "x");
    for i in 0..101 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let r = h1(tcp(s.http()).await, req.body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(r.status, 431);
    assert_eq!(r.error_code(), "GWY4311");

    let req = Request::get("/echo").header("host", "x").header("x-big", "a".repeat(33 << 10));
    let r = h1(tcp(s.http()).await, req.body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(r.status, 431);
    assert_eq!(r.error_code(), "GWY4311");

    // Exactly 100 headers (Host, Connection and 98 more) pass.
    let mut raw_req = String::from("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..98 {
        raw_req.push_str(&format!("x-h{i}: v\r\n"));
    }
    raw_req.push_str("\r\n");
    let resp = raw(s.http(), raw_req.as_bytes()).await;
    let r = Resp {
        status: raw_status(&resp),
        headers: Default::default(),
        body: Default::default(),
        version: http::Version::HTTP_11,
    };
    assert_eq!(r.status, 200, "100 headers are allowed");
}

#[tokio::test]
async fn body_and_uri_limits() {
    let s = Setup::new().await;
    let post = |body: Vec<u8>| Request::post("/echo").header("host", "x").body(Full::new(Bytes::from(body))).unwrap();
    let r = h1(tcp(s.http()).await, post(vec![b'a'; 1024])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_len"], 1024);
    let r = h1(tcp(s.http()).await, post(vec![b'a'; 1025])).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "GWY4131");

    // Chunked, no Content-Length: the limit holds while streaming.
    let chunk = format!("{:x}\r\n{}\r\n", 800, "b".repeat(800));
    let raw_req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let resp = raw(s.http(), raw_req.as_bytes()).await;
    assert_eq!(raw_status(&resp), 413, "{resp}");

    let long = format!("/echo?q={}", "x".repeat(9000));
    let r = get_h1(s.http(), &long).await;
    assert_eq!(r.status, 414);
    assert_eq!(r.error_code(), "GWY4141");
}

#[tokio::test]
async fn slow_headers_are_cut_off_at_the_header_read_timeout() {
    let s = Setup::new().await;
    let started = Instant::now();
    // Headers never finish: the connection must be closed after `header_read` (1 s here).
    let out = raw(s.http(), b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "closed after {took:?}: {out:?}");
    assert!(!out.contains("200 OK"));
}

#[tokio::test]
async fn idle_http2_connections_are_closed_after_keep_alive() {
    let s = Setup::new().await;
    let io = hyper_util::rt::TokioIo::new(tcp(s.http()).await);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let resp = send.send_request(get(&format!("http://{}/echo", s.http()))).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    // keep_alive is 2 s: the server ends the idle connection soon after.
    let ended = tokio::time::timeout(Duration::from_secs(6), conn).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection was not closed");
}

#[tokio::test]
async fn a_stream_the_client_cancels_does_not_keep_its_connection_open() {
    let s = Setup::new().await;
    let io = hyper_util::rt::TokioIo::new(tcp(s.http()).await);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    // A request to a slow upstream, reset by the client (RST_STREAM) while the gateway waits:
    // hyper drops the request's future, which must still count as the request ending.
    let pending = send.send_request(get(&format!("http://{}/slow?sleep_ms=3000", s.http())));
    assert!(tokio::time::timeout(Duration::from_millis(300), pending).await.is_err(), "still waiting");
    // keep_alive is 2 s: the idle connection is ended (before the fix it stayed open for good).
    let ended = tokio::time::timeout(Duration::from_secs(6), conn).await;
    assert!(ended.is_ok(), "a connection whose only stream was cancelled was never closed as idle");
}

#[tokio::test]
async fn beyond_max_connections_new_clients_wait_for_a_free_connection() {
    let echo = Echo::start().await;
    let gateway = GATEWAY.replace("  limits:\n", "  limits:\n    max_connections: 2\n");
    let dir = policy_dir(&gateway, &routes(""));
    let test = format!("test={}", echo.url());
    let gw = Gateway::serve(dir.path(), &["--upstream", &test]);
    let addr = gw.addr("http");
    // Two connections busy for 1.5 s (closing after their answers), then a third client.
    let slow = b"GET /slow?sleep_ms=1500 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let busy: Vec<_> = (0..2).map(|_| tokio::spawn(async move { (raw(addr, slow).await, Instant::now()) })).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = raw(addr, b"GET /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    let third_done = Instant::now();
    assert_eq!(raw_status(&third), 200, "served once a connection is free: {third}");
    let mut first_free = None;
    for b in busy {
        let (resp, done) = b.await.unwrap();
        assert_eq!(raw_status(&resp), 200);
        first_free = Some(first_free.map_or(done, |f: Instant| f.min(done)));
    }
    assert!(first_free.is_some_and(|f| f <= third_done), "the third client was served before a slot was free");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_refuses_new_ones() {
    let mut s = Setup::new().await;
    let addr = s.http();
    let slow = tokio::spawn(async move { get_h1(addr, "/slow?sleep_ms=1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.gw.signal("TERM");
    let admin = s.gw.addr("admin");
    let not_ready =
        eventually(Duration::from_secs(3), || async move { get_h1(admin, "/readyz").await.status == 503 }).await;
    assert!(not_ready, "/readyz must turn false while draining");
    let refused =
        eventually(Duration::from_secs(3), || async move { tokio::net::TcpStream::connect(addr).await.is_err() }).await;
    assert!(refused, "new connections must be refused while draining");
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request finishes");
    let status = s.gw.wait_exit(Duration::from_secs(8)).expect("exits after draining");
    assert!(status.success());
}

#[tokio::test]
async fn forwarding_cleans_and_adds_headers_both_ways() {
    let s = Setup::new().await;
    let req = Request::get("/echo")
        .header("host", "gw.example")
        .header("connection", "keep-alive, x-hop-listed")
        .header("x-hop-listed", "secret")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("x-otpgate-identity", "forged")
        .header("x_otpgate_identity", "forged")
        .header("X-User-Mobile", "forged")
        .header("x.user.id", "forged")
        .header("x-forwarded-client-cert", "forged")
        .header("x-forwarded-for", "6.6.6.6")
        .header("authorization", "Bearer not-for-upstream")
        .header("x-request-id", "client-chosen")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = h1(tcp(s.http()).await, req).await;
    assert_eq!(r.status, 200);
    let seen = r.json();
    let h = seen["headers"].as_object().unwrap();
    for gone in [
        "x-hop-listed",
        "keep-alive",
        "te",
        "x-otpgate-identity",
        "x_otpgate_identity",
        "x-user-mobile",
        "x.user.id",
        "x-forwarded-client-cert",
        "authorization",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream: {seen}");
    }
    assert_eq!(h["x-forwarded-for"], serde_json::json!(["127.0.0.1"]), "untrusted XFF replaced");
    assert_eq!(h["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(h["x-forwarded-host"], serde_json::json!(["gw.example"]));
    let rid = h["x-request-id"][0].as_str().unwrap();
    assert_ne!(rid, "client-chosen");
    assert_eq!(r.headers["x-request-id"], rid, "the client sees the id the upstream saw");
    let tp = h["traceparent"][0].as_str().unwrap();
    assert!(tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "trace continued: {tp}");
    assert!(!tp.contains("b7ad6b7169203331"));
    assert!(!r.headers.contains_key("x-otpgate-internal"), "internal upstream headers do not leak");
    assert!(!r.headers.contains_key("x-upstream-hop"), "upstream's Connection-listed header removed");
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let s = Setup::new().await;
    let a = get_h1(s.http(), "/echo").await.json()["conn"].clone();
    let b = get_h1(s.http(), "/echo").await.json()["conn"].clone();
    assert_eq!(a, b, "two client connections, one kept-alive upstream connection");
}

#[tokio::test]
async fn upstream_failures_are_502_and_504() {
    let s = Setup::new().await;
    let r = get_h1(s.http(), "/closed").await;
    assert_eq!((r.status, r.error_code().as_str()), (502, "GWY5021"));
    let started = Instant::now();
    let r = get_h1(s.http(), "/hole").await;
    assert_eq!((r.status, r.error_code().as_str()), (504, "GWY5041"), "connect timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = get_h1(s.http(), "/timeout?sleep_ms=3000").await;
    assert_eq!((r.status, r.error_code().as_str()), (504, "GWY5041"), "route timeout");
    let m = s.metrics().await;
    assert_eq!(metric(&m, "otpgate_upstream_errors_total", &[("route", "closed"), ("kind", "connect")]), 1.0);
    assert_eq!(metric(&m, "otpgate_upstream_errors_total", &[("route", "hole"), ("kind", "connect_timeout")]), 1.0);
    assert_eq!(metric(&m, "otpgate_upstream_errors_total", &[("route", "timeout"), ("kind", "route_timeout")]), 1.0);
}

#[tokio::test]
async fn admin_listener_reports_health_readiness_and_metrics() {
    let s = Setup::new().await;
    let admin = s.gw.addr("admin");
    let h = get_h1(admin, "/healthz").await;
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));
    let r = get_h1(admin, "/readyz").await;
    assert_eq!((r.status, r.json()["ready"].as_bool()), (200, Some(true)));
    get_h1(s.http(), "/echo").await;
    get_h1(s.http(), "/nope").await;
    let m = s.metrics().await;
    assert_eq!(metric(&m, "otpgate_requests_total", &[("route", "echo"), ("status", "200")]), 1.0);
    assert_eq!(metric(&m, "otpgate_requests_total", &[("route", "unmatched"), ("status", "404")]), 1.0);
    assert!(metric(&m, "otpgate_request_duration_seconds_bucket", &[("route", "echo"), ("le", "+Inf")]) >= 1.0);
    assert_eq!(metric(&m, "otpgate_policy_reloads_total", &[("result", "failure")]), 0.0);
    assert!(
        m.contains("otpgate_policy_reloads_total{result=\"failure\"} 0"),
        "reload counters exist from the start: {m}"
    );
    assert_eq!(get_h1(admin, "/other").await.status, 404);
}

#[tokio::test]
async fn registry_sim_runs_alone_and_is_deterministic() {
    let args: Vec<String> = ["registry-sim", "--listen", "127.0.0.1:0", "--seed", "7", "--beneficiaries", "500"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let a = Gateway::spawn(&args, &["registry"]);
    let b = Gateway::spawn(&args, &["registry"]);
    let path = "/api/v2/appointment/sessions/public/calendarByDistrict?district_id=3&date=01-06-2021";
    let ra = get_h1(a.addr("registry"), path).await;
    let rb = get_h1(b.addr("registry"), path).await;
    assert_eq!(ra.status, 200);
    assert_eq!(ra.body, rb.body, "same seed, same data");
    let states = get_h1(a.addr("registry"), "/api/v2/admin/location/states").await;
    assert!(states.json()["states"].as_array().unwrap().len() > 30);
    let r = get_h1(a.addr("registry"), "/api/v2/appointment/beneficiaries/search?mobile=9000000001").await;
    assert_eq!(r.status, 401, "no personal data without a gateway identity assertion");
}
