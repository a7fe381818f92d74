//! Issue 13: abuse resistance, tried as an attacker would against the real binary. "Another
//! address" is another loopback source (127.0.0.2 for the stranger, 127.0.0.3 for the owner).

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::citizen_flow::{outbox_otp, sha};
use crate::harness::upstream::Echo;
use crate::harness::*;

const STRANGER: &str = "127.0.0.2";
const OWNER: &str = "127.0.0.3";

async fn send(src: &str, addr: std::net::SocketAddr, req: http::request::Builder, body: &str) -> Resp {
    let req = req.header("host", "x").body(Full::new(Bytes::from(body.to_string()))).unwrap();
    h1(tcp_from(src, addr).await, req).await
}

async fn generate(src: &str, addr: std::net::SocketAddr, mobile: &str) -> Resp {
    let req = Request::post("/api/v2/auth/public/generateOTP").header("content-type", "application/json");
    send(src, addr, req, &format!(r#"{{"mobile":"{mobile}"}}"#)).await
}

async fn confirm(src: &str, addr: std::net::SocketAddr, txn: &str, otp: &str) -> Resp {
    let req = Request::post("/api/v2/auth/public/confirmOTP").header("content-type", "application/json");
    send(src, addr, req, &format!(r#"{{"otp":"{}","txnId":"{txn}"}}"#, sha(otp))).await
}

/// A gateway with OTP sign-in (1 s resend cooldown so a test can exhaust the caps), a personal
/// citizen route and a public one, in front of an echo upstream.
fn citizen_gateway(echo: &Echo, extra: &[&str]) -> Gateway {
    let otp = "    resend_after: 1s\n    delivery: {outbox: {path: otp-outbox.jsonl}}";
    let gateway = format!(
        "citizens:\n  otp:\n{otp}\n  session: {{}}\nupstreams:\n  test: {{url: '{}'}}\n\
         profiles:\n  open: {{default: allow}}\n",
        echo.url()
    );
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: mine, methods: [GET, POST], path: /mine, access: citizen, upstream: test, personal: true, redact: {citizen: open}, ownership: {request: [{param: mobile, kind: mobile}]}, forward_headers: [x-app-version]}
  - {name: open, methods: [GET], path: /open, access: public, upstream: test}
";
    let dir = policy_dir(&gateway, routes);
    let gw = Gateway::serve(dir.path(), extra);
    // The policy directory must outlive the process: keep it with the data dir.
    std::mem::forget(dir);
    gw
}

/// Property 1: a stranger at one address cannot stop the owner signing in from another — not
/// with wrong OTPs, not with sends, not with the cooldown.
#[tokio::test]
async fn a_stranger_at_one_address_cannot_lock_the_owner_out() {
    let echo = Echo::start().await;
    let gw = citizen_gateway(&echo, &[]);
    let (http, outbox) = (gw.addr("http"), gw.data_path("otp-outbox.jsonl"));
    let victim = "9000000031";
    let mut wrong_tries = 0;
    let mut refused = false;
    for _ in 0..6 {
        let g = generate(STRANGER, http, victim).await;
        if g.status == 429 {
            refused = true;
            break;
        }
        assert_eq!(g.status, 200, "{}", g.text());
        let txn = g.json()["txnId"].as_str().unwrap().to_string();
        let right = outbox_otp(&outbox, &txn);
        let wrong = if right == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let c = confirm(STRANGER, http, &txn, wrong).await;
            assert!(c.status == 401 || c.status == 429, "{}", c.text());
            wrong_tries += 1;
        }
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    assert!(refused && wrong_tries >= 10, "the stranger used up their own budget ({wrong_tries} wrong OTPs)");
    // The owner, from another address, at once: an OTP, and a session.
    let g = generate(OWNER, http, victim).await;
    assert_eq!(g.status, 200, "the owner is not locked out: {}", g.text());
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let c = confirm(OWNER, http, &txn, &outbox_otp(&outbox, &txn)).await;
    assert_eq!(c.status, 200, "the owner signs in: {}", c.text());
}

/// Property 2: refusals before anyone is identified are limited per source and per credential
/// (429 with Retry-After) and summarised in the audit trail, never one durable record each.
#[tokio::test]
async fn refusals_before_identification_are_limited_and_summarised() {
    let echo = Echo::start().await;
    let mut gw = citizen_gateway(&echo, &[]);
    let http = gw.addr("http");
    let revoked = "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln";
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r =
            send(STRANGER, http, Request::get("/mine?mobile=9000000031").header("authorization", revoked), "").await;
        if r.status == 429 {
            assert!(r.headers.contains_key("retry-after"), "429 says when");
            assert_eq!(r.error_code(), "GWY4291");
        }
        statuses.push(r.status);
    }
    let unauthorised = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(unauthorised, 10, "ten refusals per credential per minute, then 429: {statuses:?}");
    for _ in 0..5 {
        let r = send(OWNER, http, Request::get("/mine?mobile=9000000031"), "").await;
        assert_eq!(r.status, 401, "another source without a token is refused, not limited");
    }
    // A token in the query string is such a refusal too (summarised, limited per source).
    for _ in 0..3 {
        let r = send(OWNER, http, Request::get("/mine?mobile=9000000031&token=eyJx.eyJ.c2ln"), "").await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some());
    let log = std::fs::read_to_string(gw.data_path("audit.log")).unwrap();
    // Records only: the chain's own control lines (open, checkpoints, close) carry an `event`.
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r.get("event").is_none())
        .collect();
    assert!(records.len() <= 3, "three summaries, not 48 records: {records:#?}");
    let count = |client: &str, status: u16| {
        records
            .iter()
            .filter(|r| r["client"] == client && r["status"] == status && r["reason"] == "unidentified_refusals")
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        (count(STRANGER, 401), count(STRANGER, 429), count(OWNER, 401)),
        (10, 30, 8),
        "{:?}",
        records
            .iter()
            .map(|r| (r["client"].clone(), r["status"].clone(), r["count"].clone(), r["reason"].clone()))
            .collect::<Vec<_>>()
    );
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--log"])
        .arg(gw.data_path("audit.log"))
        .arg("--keys-dir")
        .arg(gw.data_path("keys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "summaries are chained: {}", String::from_utf8_lossy(&out.stderr));
}

/// Property 5: a personal route forwards only its allowlist of request headers; a compressed
/// body the gateway would read is refused before the upstream sees anything.
#[tokio::test]
async fn personal_routes_forward_only_allowlisted_headers_and_refuse_compressed_bodies() {
    let echo = Echo::start().await;
    let gw = citizen_gateway(&echo, &[]);
    let http = gw.addr("http");
    let g = generate(OWNER, http, "9000000032").await;
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let c = confirm(OWNER, http, &txn, &outbox_otp(&gw.data_path("otp-outbox.jsonl"), &txn)).await;
    let token = c.json()["token"].as_str().unwrap().to_string();
    let spoofed = [
        ("x-remote-user", "9000000002"),
        ("remote-user", "9000000002"),
        ("x-auth-request-email", "someone@example.org"),
        ("true-client-ip", "203.0.113.1"),
        ("x-client-ip", "203.0.113.1"),
        ("cf-connecting-ip", "203.0.113.1"),
        ("x-nobody-thought-of-this", "9000000002"),
        ("x-app-version", "7"),
        ("x_app_version", "8"),
        ("content_type", "application/x-www-form-urlencoded"),
        ("accept", "application/json"),
    ];
    let mut req = Request::get("/mine?mobile=9000000032").header("authorization", format!("Bearer {token}"));
    for (n, v) in spoofed {
        req = req.header(n, v);
    }
    let r = send(OWNER, http, req, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json()["headers"].as_object().unwrap().clone();
    let mut names: Vec<&str> = seen.keys().map(String::as_str).collect();
    names.sort_unstable();
    for name in &names {
        assert!(
            [
                "accept",
                "accept-encoding",
                "host",
                "traceparent",
                "x-app-version",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
                "x-otpgate-identity",
                "x-request-id"
            ]
            .contains(name),
            "`{name}` reached the registry: {names:?}"
        );
    }
    assert!(names.contains(&"x-app-version"), "the route's own allowlist entry is forwarded");
    assert_eq!(seen["x-app-version"], serde_json::json!(["7"]), "as spelled in the allowlist, not another spelling");

    let before = echo.connections.load(std::sync::atomic::Ordering::SeqCst);
    let gz = Request::post("/api/v2/auth/public/generateOTP")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip");
    let r = send(OWNER, http, gz, "\u{1f}\u{8b}not really gzip").await;
    assert_eq!((r.status, r.error_code().as_str()), (415, "GWY4151"), "{}", r.text());
    let post = Request::post("/mine?mobile=9000000032")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("content-encoding", "deflate");
    let r = send(OWNER, http, post, "{}").await;
    assert_eq!(r.status, 415, "a personal route never forwards a body it could not read: {}", r.text());
    assert_eq!(before, echo.connections.load(std::sync::atomic::Ordering::SeqCst), "the upstream saw nothing");
}

/// Property 6: a flood of new keys beyond the store's cap never resets a live counter: new keys
/// are refused (503), the victim's cooldown still holds.
#[tokio::test]
async fn a_key_flood_beyond_the_cap_never_resets_a_counter() {
    let echo = Echo::start().await;
    let gw = citizen_gateway(&echo, &["--memory-counter-cap", "400"]);
    let http = gw.addr("http");
    // The owner's three sends: the send cap (3 per 15 min per source) is now spent.
    for _ in 0..3 {
        assert_eq!(generate(OWNER, http, "9000000033").await.status, 200);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    let mut unavailable = 0;
    for i in 0..400u64 {
        let src = format!("127.0.{}.{}", 1 + i / 250, 2 + i % 250);
        match generate(&src, http, &format!("{}", 9_100_000_000u64 + i)).await.status {
            200 | 429 => {}
            503 => unavailable += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unavailable > 0, "beyond the cap new keys are refused, failing closed");
    let again = generate(OWNER, http, "9000000033").await;
    // 429: the spent cap is still there; 503: a new key (the expired cooldown) could not be
    // kept. Never 200: nothing was forgotten into an open door.
    assert!(matches!(again.status, 429 | 503), "the spent send cap was not forgotten: {}", again.text());
}

/// Property 7: `serve` refuses a plain-text OTP outbox unless told loudly; the file is 0600.
#[tokio::test]
async fn plain_text_otps_only_when_asked_for_and_only_for_the_owner_of_the_file() {
    let otp = "    delivery: {outbox: {path: otp-outbox.jsonl}}";
    let gateway = format!("citizens:\n  otp:\n{otp}\n  session: {{}}\n");
    let routes = "routes:\n  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}\n";
    let dir = policy_dir(&gateway, routes);
    let keys = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new(BIN)
            .args(["keys", "generate", "--dir"])
            .arg(keys.path())
            .status()
            .unwrap()
            .success()
    );
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen-plain", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--config"])
        .arg(dir.path())
        .arg("--keys-dir")
        .arg(keys.path())
        .arg("--data-dir")
        .arg(keys.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--insecure-otp-outbox"), "{stderr}");
    let (ok, _, stderr) = {
        let out = std::process::Command::new(BIN).args(["check", "--config"]).arg(dir.path()).output().unwrap();
        (out.status.success(), String::new(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert!(!ok && stderr.contains("citizens.otp.delivery.outbox"), "check says so too: {stderr}");

    let gw = Gateway::serve(dir.path(), &[]);
    let r = generate(OWNER, gw.addr("http"), "9000000034").await;
    assert_eq!(r.status, 200);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(gw.data_path("otp-outbox.jsonl")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the gateway's user can read the OTPs");
}

/// Property 3: one budget per identity, whatever the route: routes that name one budget share
/// its buckets, and the RateLimit headers name the budget.
#[tokio::test]
async fn one_budget_per_identity_whatever_the_route() {
    let echo = Echo::start().await;
    let gateway = format!(
        "citizens:\n  otp:\n    delivery: {{outbox: {{path: otp-outbox.jsonl}}}}\n  session: {{}}\n\
         upstreams:\n  test: {{url: '{}'}}\n\
         budgets:\n  search: {{key: session, rate: [{{limit: 3, per: 15m}}]}}\n  public: {{key: ip, rate: [{{limit: 4, per: 5m}}]}}\n",
        echo.url()
    );
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: by-district, methods: [GET], path: /by-district, access: citizen, upstream: test, limits: [{budget: search}]}
  - {name: by-pin, methods: [GET], path: /by-pin, access: citizen, upstream: test, limits: [{budget: search}]}
  - {name: pub-a, methods: [GET], path: /pub-a, access: public, upstream: test, limits: [{budget: public}]}
  - {name: pub-b, methods: [GET], path: /pub-b, access: public, upstream: test, limits: [{budget: public}]}
";
    let dir = policy_dir(&gateway, routes);
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let g = generate(OWNER, http, "9000000035").await;
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let c = confirm(OWNER, http, &txn, &outbox_otp(&gw.data_path("otp-outbox.jsonl"), &txn)).await;
    let token = c.json()["token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {token}");
    for (i, path) in ["/by-district", "/by-pin", "/by-district", "/by-pin"].iter().enumerate() {
        let r = send(OWNER, http, Request::get(*path).header("authorization", &auth), "").await;
        assert_eq!(r.status, if i < 3 { 200 } else { 429 }, "search {} across both routes", i + 1);
        assert_eq!(r.headers["ratelimit-policy"], "\"search-15m\";q=3;w=900");
    }
    for (i, path) in ["/pub-a", "/pub-b", "/pub-a", "/pub-b", "/pub-a"].iter().enumerate() {
        let r = send(STRANGER, http, Request::get(*path), "").await;
        assert_eq!(r.status, if i < 4 { 200 } else { 429 }, "public call {} across both routes", i + 1);
    }
}
