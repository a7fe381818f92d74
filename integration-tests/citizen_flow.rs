//! Issue 3: the OTP flow, sessions and token attacks, against the real binary.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::harness::upstream::{Echo, SmsProvider};
use crate::harness::*;

pub fn sha(otp: &str) -> String {
    hex::encode(Sha256::digest(otp.as_bytes()))
}

pub async fn post(addr: std::net::SocketAddr, path: &str, body: &str, token: Option<&str>) -> Resp {
    let mut req = Request::post(path).header("host", "x").header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    h1(tcp(addr).await, req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

pub async fn get_auth(addr: std::net::SocketAddr, path: &str, token: &str) -> Resp {
    let req = Request::get(path).header("host", "x").header("authorization", format!("Bearer {token}"));
    h1(tcp(addr).await, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// The OTP the outbox holds for `txn`.
pub fn outbox_otp(outbox: &Path, txn: &str) -> String {
    let text = std::fs::read_to_string(outbox).expect("outbox");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["txnId"] == txn)
        .map(|v| v["otp"].as_str().unwrap().to_string())
        .expect("an outbox line for the transaction")
}

pub async fn generate(addr: std::net::SocketAddr, mobile: &str) -> Resp {
    post(addr, "/api/v2/auth/public/generateOTP", &format!(r#"{{"mobile":"{mobile}"}}"#), None).await
}

pub async fn confirm(addr: std::net::SocketAddr, txn: &str, otp: &str) -> Resp {
    let body = format!(r#"{{"otp":"{}","txnId":"{txn}"}}"#, sha(otp));
    post(addr, "/api/v2/auth/public/confirmOTP", &body, None).await
}

/// Full sign-in: generate, read the outbox, confirm with the SHA-256; the token.
pub async fn sign_in(addr: std::net::SocketAddr, outbox: &Path, mobile: &str) -> String {
    sign_in_from("127.0.0.1", addr, outbox, mobile).await
}

/// `sign_in` from the loopback source address `src` (OTP sends are limited per source).
pub async fn sign_in_from(src: &str, addr: std::net::SocketAddr, outbox: &Path, mobile: &str) -> String {
    let json = |path: &str, body: String| {
        let req = Request::post(path).header("host", "x").header("content-type", "application/json");
        req.body(Full::new(Bytes::from(body))).unwrap()
    };
    let g =
        h1(tcp_from(src, addr).await, json("/api/v2/auth/public/generateOTP", format!(r#"{{"mobile":"{mobile}"}}"#)))
            .await;
    assert_eq!(g.status, 200, "{}", g.text());
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let body = format!(r#"{{"otp":"{}","txnId":"{txn}"}}"#, sha(&outbox_otp(outbox, &txn)));
    let c = h1(tcp_from(src, addr).await, json("/api/v2/auth/public/confirmOTP", body)).await;
    assert_eq!(c.status, 200, "{}", c.text());
    c.json()["token"].as_str().unwrap().to_string()
}

/// A `serve` policy with citizens in front of an echo upstream; `otp` replaces the OTP section.
pub fn citizen_policy(upstream: &str, otp: &str, session: &str) -> tempfile::TempDir {
    let gateway =
        format!("citizens:\n  otp:\n{otp}\n  session:\n{session}\nupstreams:\n  test: {{url: '{upstream}'}}\n");
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: logout, methods: [POST], path: /api/v2/auth/logout, access: citizen, handler: logout}
  - {name: mine, methods: [GET], path: /mine, access: citizen, upstream: test}
";
    policy_dir(&gateway, routes)
}

pub const OUTBOX_POLICY: &str = "    delivery: {outbox: {path: otp-outbox.jsonl}}";

#[tokio::test]
async fn cowin_client_flow_works_against_demo_over_https() {
    let gw = Gateway::demo(&[]);
    let ca = gw.data_path("ca.pem");
    let https = gw.addr("https");
    let call = |req: Request<Full<Bytes>>| {
        let ca = ca.clone();
        async move { h2(tls(https, &ca, &[b"h2"]).await, req).await }
    };
    let url = |p: &str| format!("https://localhost:{}{p}", https.port());
    let json_post = |p: &str, body: String| {
        Request::post(url(p)).header("content-type", "application/json").body(Full::new(Bytes::from(body))).unwrap()
    };

    let g = call(json_post("/api/v2/auth/generateMobileOTP", r#"{"mobile":"9000000003"}"#.into())).await;
    assert_eq!(g.status, 200);
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let otp = outbox_otp(&gw.data_path("otp-outbox.jsonl"), &txn);
    let c = call(json_post("/api/v2/auth/validateMobileOtp", format!(r#"{{"otp":"{}","txnId":"{txn}"}}"#, sha(&otp))))
        .await;
    assert_eq!(c.status, 200, "{}", c.text());
    let token = c.json()["token"].as_str().unwrap().to_string();

    let authed = |p: &str| {
        Request::get(url(p)).header("authorization", format!("Bearer {token}")).body(Full::new(Bytes::new())).unwrap()
    };
    let b = call(authed("/api/v2/appointment/beneficiaries")).await;
    assert_eq!(b.status, 200, "{}", b.text());
    let list = b.json()["beneficiaries"].as_array().unwrap().clone();
    assert!(!list.is_empty());
    assert!(list.iter().all(|r| r["mobile_number"] == "XXXXXX0003"), "mobiles masked by the citizen profile");
    for r in &list {
        let id = r["photo_id_number"].as_str().unwrap();
        assert!(id.starts_with("XXXX-XXXX-") && id.len() == 14, "Aadhaar masked as UIDAI does: {id}");
    }
    assert!(!b.text().contains("9000000003"));
    let expected = otpgate::demo::Dataset::new(1, 10_000).beneficiaries_of_mobile(9_000_000_003).len();
    assert_eq!(list.len(), expected, "all of the caller's beneficiaries");

    let reference = list[0]["beneficiary_reference_id"].as_str().unwrap();
    let pdf =
        call(authed(&format!("/api/v2/registration/certificate/public/download?beneficiary_reference_id={reference}")))
            .await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"), "a PDF certificate");
    assert!(gw.stderr().find(&token).is_none(), "the token never reaches the logs");
}

#[tokio::test]
async fn registered_and_unregistered_numbers_look_the_same_and_both_path_pairs_work() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let a = generate(http, "9000000001").await;
    let b = generate(http, "9100000000").await;
    assert_eq!((a.status, b.status), (200, 200));
    let names = |r: &Resp| {
        let mut v: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&a), names(&b));
    assert_eq!(a.headers["content-length"], b.headers["content-length"]);
    let keys = |r: &Resp| r.json().as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(keys(&a), ["txnId"]);
    // The unregistered number can sign in too; it simply owns no records.
    let outbox = gw.data_path("otp-outbox.jsonl");
    let token = sign_in(http, &outbox, "9100000001").await;
    let r = get_auth(http, "/api/v2/appointment/beneficiaries", &token).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "GWY4042"));
    // The other path pair.
    let g = post(http, "/api/v2/auth/generateMobileOTP", r#"{"mobile":"9000000009"}"#, None).await;
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let body = format!(r#"{{"otp":"{}","txnId":"{txn}"}}"#, sha(&outbox_otp(&outbox, &txn)));
    let c = post(http, "/api/v2/auth/validateMobileOtp", &body, None).await;
    assert_eq!(c.status, 200);
    assert!(c.json()["token"].is_string());
}

#[tokio::test]
async fn two_concurrent_confirms_give_exactly_one_token() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let g = generate(http, "9000000004").await;
    let txn = g.json()["txnId"].as_str().unwrap().to_string();
    let otp = outbox_otp(&gw.data_path("otp-outbox.jsonl"), &txn);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (txn, otp) = (txn.clone(), otp.clone());
            tokio::spawn(async move { confirm(http, &txn, &otp).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
}

#[tokio::test]
async fn otp_rules_hold_over_http() {
    let echo = Echo::start().await;
    let otp = format!(
        "    validity: 2s\n    max_attempts: 3\n    resend_after: 1s\n    send_limits: [{{limit: 3, window: 1h}}]\n    failure_limit: {{limit: 4, window: 1h}}\n{OUTBOX_POLICY}"
    );
    let dir = citizen_policy(&echo.url(), &otp, "    token_ttl: 15m");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");

    for bad in ["+14155550100", "12345", "5000000001", "abcdefghij"] {
        let r = generate(http, bad).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "USRAUT0002"), "{bad}");
    }
    let r = post(http, "/api/v2/auth/public/generateOTP", "mobile=9000000001", None).await;
    assert_eq!(r.status, 400, "not JSON");

    // Resend cooldown.
    let t1 = generate(http, "9000000011").await.json()["txnId"].as_str().unwrap().to_string();
    let r = generate(http, "9000000011").await;
    assert_eq!((r.status, r.error_code().as_str()), (429, "USRAUT0005"));
    assert_eq!(r.headers["retry-after"], "1");

    // Wrong tries burn the transaction (max_attempts 3).
    for _ in 0..3 {
        assert_eq!(confirm(http, &t1, "000000x").await.status, 401);
    }
    let right = outbox_otp(&outbox, &t1);
    let r = confirm(http, &t1, &right).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0004"), "burned");

    // Failures are counted per mobile across resends (limit 4: three above, one more).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t2 = generate(http, "9000000011").await.json()["txnId"].as_str().unwrap().to_string();
    assert_eq!(confirm(http, &t2, "000000x").await.status, 401);
    let r = confirm(http, &t2, &outbox_otp(&outbox, &t2)).await;
    assert_eq!((r.status, r.error_code().as_str()), (429, "USRAUT0005"), "locked across resends");
    assert!(r.headers.contains_key("retry-after"));

    // Expiry (validity 2 s).
    let t3 = generate(http, "9000000012").await.json()["txnId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = confirm(http, &t3, &outbox_otp(&outbox, &t3)).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0004"), "expired");

    // Send cap (3 per hour): two more sends pass, the fourth is throttled.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(generate(http, "9000000012").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = generate(http, "9000000012").await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 3000, "the hour-long window: {retry}");
    let log = gw.stderr();
    assert!(!log.contains("9000000011") && !log.contains(&right), "no mobile or OTP in the logs");
}

#[tokio::test]
async fn webhook_delivery_and_provider_failure() {
    let echo = Echo::start().await;
    for (status, delay, want) in [(200, 0, 200), (500, 0, 503), (200, 2000, 503)] {
        let sms = SmsProvider::start(status, Duration::from_millis(delay)).await;
        let otp = format!("    delivery: {{webhook: {{url: 'http://{}/send', timeout: 500ms}}}}", sms.addr);
        let dir = citizen_policy(&echo.url(), &otp, "    token_ttl: 15m");
        let gw = Gateway::serve(dir.path(), &[]);
        let http = gw.addr("http");
        let r = generate(http, "9000000021").await;
        assert_eq!(r.status, want, "provider {status} after {delay} ms");
        let sent = sms.received.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["to"], "+919000000021");
        let message = sent[0]["message"].as_str().unwrap();
        let code: String = message.chars().take_while(|c| c.is_ascii_digit()).collect();
        assert_eq!(code.len(), 6, "{message}");
        let txn = sent[0]["txnId"].as_str().unwrap();
        let c = confirm(http, txn, &code).await;
        if want == 200 {
            assert_eq!(c.status, 200, "delivered OTP confirms");
        } else {
            assert_eq!(r.error_code(), "USRAUT0006");
            assert_eq!((c.status, c.error_code().as_str()), (401, "USRAUT0004"), "an undelivered OTP is unusable");
        }
    }
}

#[tokio::test]
async fn sessions_end_on_logout_idle_and_absolute_limits() {
    let echo = Echo::start().await;
    let dir = citizen_policy(&echo.url(), OUTBOX_POLICY, "    token_ttl: 4s\n    idle: 2s\n    absolute: 4s");
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let outbox = gw.data_path("otp-outbox.jsonl");

    let token = sign_in(http, &outbox, "9000000031").await;
    assert_eq!(get_auth(http, "/mine", &token).await.status, 200);
    let r = post(http, "/api/v2/auth/logout", "", Some(&token)).await;
    assert_eq!(r.status, 200);
    let r = get_auth(http, "/mine", &token).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0007"), "revoked");

    let token = sign_in(http, &outbox, "9000000032").await;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(get_auth(http, "/mine", &token).await.status, 401, "idle too long");

    let token = sign_in(http, &outbox, "9000000033").await;
    for _ in 0..4 {
        assert_eq!(get_auth(http, "/mine", &token).await.status, 200, "activity keeps it alive");
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get_auth(http, "/mine", &token).await.status, 401, "absolute limit");
    let seen = echo.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(seen >= 1);
}
