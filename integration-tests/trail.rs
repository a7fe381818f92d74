//! Issue 7: the audit trail of a full demo scenario — durable records, `audit verify` catching a
//! flipped byte, `audit query` by mobile, the citizen's access log — and a scan of everything the
//! gateway wrote (logs, audit files, spans received) for personal data, OTPs and tokens.
//! Issue 13: the keyed chain end to end — `audit verify` needs the key, heads exported as metrics
//! verify as anchors, restarts of the real binary (clean: nothing to report; `audit.log` deleted
//! meanwhile: a restarted segment) — and a full disk that the gateway survives: 503 while it is
//! full, records again once space returns, without a restart.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::citizen_flow::{get_auth, sign_in};
use crate::harness::pki::Leaf;
use crate::harness::*;

fn otpgate(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn a_demo_scenario_leaves_a_verifiable_trail_and_no_personal_data_anywhere() {
    let collector = crate::telemetry::Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--log-format",
        "json",
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--listen-plain",
        "127.0.0.1:0",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.path().display().to_string()])
    .collect();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{}", collector.grpc)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTPGATE_LOG", "debug".into()),
    ];
    let gw = Gateway::spawn_with_env(&args, &["registry", "https", "http", "admin"], &env);
    let data = |f: &str| dir.path().join(f);
    let http = gw.addr("http");
    let dataset = otpgate::demo::Dataset::new(1, 10_000);

    // A citizen signs in, reads their records, tries someone else's, downloads a certificate.
    let token = sign_in(http, &data("otp-outbox.jsonl"), "9000000001").await;
    assert_eq!(get_auth(http, "/api/v2/appointment/beneficiaries", &token).await.status, 200);
    assert_eq!(get_auth(http, "/api/v2/appointment/beneficiaries/search?mobile=9000000002", &token).await.status, 403);
    let mine = dataset.beneficiaries_of_mobile(9_000_000_001);
    let reference = mine[0].reference_id_string();
    let cert = format!("/api/v2/registration/certificate/public/download?beneficiary_reference_id={reference}");
    assert_eq!(get_auth(http, &cert, &token).await.status, 200);

    // The partner looks the citizen up.
    let read = |f: &str| std::fs::read_to_string(data(f)).unwrap();
    let icmr = Leaf { cert_pem: read("partner-icmr.pem"), key_pem: read("partner-icmr-key.pem") };
    let api_key = read("partner-icmr.apikey").trim().to_string();
    let stream = crate::harness::pki::connect(gw.addr("https"), &read("ca.pem"), Some(&icmr)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/api/v2/partner/beneficiaries/search")
        .header("host", "localhost")
        .header("x-api-key", &api_key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"mobile":"9000000001"}"#)))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let partner_body = resp.into_body().collect().await.unwrap().to_bytes();

    // The citizen sees who accessed their records.
    let r = get_auth(http, "/api/v2/otpgate/my-access-log", &token).await;
    assert_eq!(r.status, 200);
    let accesses = r.json()["accesses"].as_array().unwrap().clone();
    assert!(
        accesses.iter().any(|a| a["accessedBy"]["id"] == "icmr" && a["route"] == "partner-search"),
        "the partner's lookup is listed: {accesses:?}"
    );
    assert!(accesses.iter().any(|a| a["accessedBy"]["id"] == "you"));

    // The trail verifies under the key (the demo keeps its keys in the data dir); without the key
    // there is no verification, and a structure-only check says it is not one.
    let log = data("audit.log");
    let log_s = log.display().to_string();
    let keys = dir.path().display().to_string();
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s, "--keys-dir", &keys]);
    assert!(ok && out.contains("keyed chain intact"), "{out}");
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s]);
    assert!(!ok && out.contains("needs --keys-dir"), "{out}");
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s, "--structure-only"]);
    assert!(ok && out.contains("NOT VERIFIED") && !out.contains("ok:"), "{out}");
    // The head the metrics export is an anchor the chain must hold.
    let m = get_h1(gw.addr("admin"), "/metrics").await.text();
    let (seq, mac48) = (metric(&m, "otpgate_audit_head_seq", &[]), metric(&m, "otpgate_audit_head_mac48", &[]));
    assert!(seq >= 4.0, "{m}");
    assert_eq!(metric(&m, "otpgate_audit_up", &[]), 1.0);
    assert!(metric(&m, "otpgate_audit_free_bytes", &[]) > 0.0);
    let anchor = format!("{}:{:012x}", seq as u64, mac48 as u64);
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s, "--keys-dir", &keys, "--anchor", &anchor]);
    assert!(ok && out.contains("1 anchor(s) matched"), "{anchor}: {out}");
    let wrong = format!("{}:{:012x}", seq as u64, (mac48 as u64) ^ 1);
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s, "--keys-dir", &keys, "--anchor", &wrong]);
    assert!(!ok && out.contains("anchor"), "{out}");
    let ready = get_h1(gw.addr("admin"), "/readyz").await;
    assert!(ready.json()["audit_free_bytes"].as_u64().is_some_and(|f| f > 0), "{}", ready.text());
    let (ok, out) = otpgate(&[
        "audit",
        "query",
        "--log",
        &log_s,
        "--keys-dir",
        &keys,
        "--subject",
        "9000000001",
        "--format",
        "json",
    ]);
    assert!(ok, "{out}");
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let routes: Vec<&str> = rows.iter().map(|r| r["route"].as_str().unwrap()).collect();
    for want in ["beneficiaries", "beneficiary-search", "certificate", "partner-search"] {
        assert!(routes.contains(&want), "{want} in {routes:?}");
    }
    let denied = rows.iter().find(|r| r["route"] == "beneficiary-search").unwrap();
    assert_eq!((denied["decision"].as_str(), denied["status"].as_u64()), (Some("deny"), Some(403)));
    let (ok, out) = otpgate(&["audit", "query", "--log", &log_s, "--client", "icmr"]);
    assert!(ok && out.contains("partner-search"), "{out}");

    // Everything written: logs, audit files, spans. No mobile, ID number, name, OTP or token.
    let admin = gw.addr("admin");
    assert!(
        eventually(Duration::from_secs(10), || async move {
            metric(&get_h1(admin, "/metrics").await.text(), "otpgate_spans_exported_total", &[]) >= 7.0
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = [gw.stderr(), std::fs::read_to_string(&log).unwrap(), collector.output()];
    let records = written[1].lines().filter(|l| !l.contains(",\"event\":\"")).count();
    assert_eq!(records, 4, "one record per personal-data request");
    assert!(written[0].contains("audit checkpoint"), "checkpoints are logged for shipping");
    assert!(written[2].contains("otpgate.request_id"), "spans were received");
    assert!(
        written[2].contains("otpgate.audit.seq") && written[2].contains("otpgate.audit.mac"),
        "an audited request's span carries its place in the keyed chain"
    );
    let outbox = read("otp-outbox.jsonl");
    let otps: Vec<String> = outbox
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["otp"].as_str().unwrap().to_string())
        .collect();
    let mut secrets: Vec<String> = vec!["9000000001".into(), "9000000002".into(), token.clone(), api_key.clone()];
    for b in mine.iter().chain(dataset.beneficiaries_of_mobile(9_000_000_002).iter()) {
        secrets.push(b.photo_id_string());
        secrets.push(b.reference_id_string());
        secrets.push(b.name());
    }
    for (what, text) in ["logs", "audit log", "spans"].iter().zip(&written) {
        for (i, s) in secrets.iter().enumerate() {
            if let Some(at) = text.find(s.as_str()) {
                let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
                let line: String = text[start..].lines().next().unwrap_or("").chars().take(300).collect();
                panic!("{what} contain secret #{i} (0-1 mobiles, 2 token, 3 api key, then id/ref/name): {line}");
            }
        }
        for otp in &otps {
            assert!(
                !text.contains(&format!("\"{otp}\"")) && !text.contains(&format!("OTP is {otp}")),
                "{what} contain an OTP"
            );
        }
    }
    assert!(!String::from_utf8_lossy(&partner_body).contains("Pooja"), "the partner sees no names");

    // Tampering with one byte of one record is caught, naming the line.
    let mut bytes = std::fs::read(&log).unwrap();
    let second_line = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let target = second_line + 40;
    bytes[target] = if bytes[target] == b'a' { b'b' } else { b'a' };
    std::fs::write(&log, &bytes).unwrap();
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s, "--keys-dir", &keys]);
    assert!(!ok, "a flipped byte must fail verification: {out}");
    assert!(out.contains("line 2") || out.contains("seq 1"), "names the broken record: {out}");
}

/// A tiny tmpfs, unmounted on drop.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    fn mount(bytes: usize) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyDisk { dir })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Polls `f` every 50 ms until it holds (at most 15 s).
async fn within(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 15 s");
}

/// Every record of the log in `dir` (control lines left out), as JSON.
fn records_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    text.lines().filter(|l| !l.contains(",\"event\":\"")).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The control lines of the log in `dir`, as JSON.
fn controls_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    text.lines().filter(|l| l.contains(",\"event\":\"")).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn when_the_audit_disk_fills_nothing_is_released_and_the_gateway_recovers_when_space_returns() {
    let Some(disk) = TinyDisk::mount(256 << 10) else {
        // Mounting needs root, which CI on this project's machines has.
        panic!("cannot mount a tmpfs (run the suite as root, as CI does)");
    };
    // Something else on the volume takes half of it; removing it later is the operator freeing space.
    let ballast = disk.dir.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 128 << 10]).unwrap();
    let docs = crate::harness::upstream::Documents::start().await;
    let outbox = tempfile::tempdir().unwrap();
    let outbox_file = outbox.path().join("otp-outbox.jsonl");
    let gateway = format!(
        "profiles:\n  open: {{default: allow}}\ncitizens:\n  otp:\n    delivery: {{outbox: {{path: '{}'}}}}\nupstreams:\n  docs: {{url: '{}'}}\n",
        outbox_file.display(),
        docs.url()
    );
    let routes = "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
  - {name: records, methods: [GET], path: /records, access: citizen, upstream: docs, personal: true, redact: {citizen: open}, ownership: {request: [{param: mobile, kind: mobile}]}}
";
    let dir = policy_dir(&gateway, routes);
    let keys = tempfile::tempdir().unwrap();
    let keys_s = keys.path().display().to_string();
    let (ok, out) = otpgate(&["keys", "generate", "--dir", &keys_s]);
    assert!(ok, "{out}");
    let args: Vec<String> =
        ["serve", "--listen-plain", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--insecure-otp-outbox"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--config".into(), dir.path().display().to_string()])
            .chain(["--keys-dir".into(), keys_s.clone()])
            .chain(["--data-dir".into(), disk.dir.path().display().to_string()])
            .collect();
    let mut gw = Gateway::spawn(&args, &["http", "admin"]);
    let (http, admin) = (gw.addr("http"), gw.addr("admin"));
    let token = sign_in(http, &outbox_file, "9000000001").await;
    let personal = || get_auth(http, "/records?mobile=9000000001", &token);
    let withheld = |r: &Resp| {
        assert_eq!(r.error_code(), "GWY5033");
        assert!(!r.text().contains("Secret"), "the withheld answer does not leak");
    };

    // The disk fills: records until then, 503 (nothing released) from then on.
    let (mut released, mut refused) = (0, 0);
    for _ in 0..2000 {
        let r = personal().await;
        match r.status {
            200 => released += 1,
            503 => {
                withheld(&r);
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(released > 10 && refused >= 5, "released {released}, refused {refused}");
    // Once not even a checkpoint fits, the log stays refusing: /readyz and the metrics say so.
    within("readyz reports the audit log failing", async || {
        let ready = get_h1(admin, "/readyz").await;
        ready.status == 200 && ready.text().contains("audit log cannot be written")
    })
    .await;
    let r = personal().await;
    assert_eq!(r.status, 503);
    withheld(&r);
    let ready = get_h1(admin, "/readyz").await.json();
    assert!(ready["audit_free_bytes"].as_u64().is_some_and(|f| f < 16 << 10), "{ready}");
    assert_eq!(ready["ready"], true, "degraded, still serving public routes");
    let m = get_h1(admin, "/metrics").await.text();
    assert!(metric(&m, "otpgate_audit_failures_total", &[]) >= 5.0, "{m}");
    assert!(metric(&m, "otpgate_audit_write_errors_total", &[]) >= 1.0, "{m}");
    assert_eq!(metric(&m, "otpgate_audit_up", &[]), 0.0, "{m}");

    // Space returns: the gateway records and releases again by itself, without a restart.
    std::fs::remove_file(&ballast).unwrap();
    within("personal routes answer again", async || personal().await.status == 200).await;
    released += 1;
    for _ in 0..5 {
        assert_eq!(personal().await.status, 200);
        released += 1;
    }
    assert!(!get_h1(admin, "/readyz").await.text().contains("cannot be written"));
    let m = get_h1(admin, "/metrics").await.text();
    assert_eq!(metric(&m, "otpgate_audit_up", &[]), 1.0, "{m}");
    assert!(metric(&m, "otpgate_audit_free_bytes", &[]) > 64.0 * 1024.0, "{m}");

    // A clean stop; the whole log verifies: the outage is in it, torn writes are not, and every
    // answer released has its record.
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()), "{}", gw.stderr());
    let log = disk.dir.path().join("audit.log").display().to_string();
    let (ok, out) = otpgate(&["audit", "verify", "--keys-dir", &keys_s, "--log", &log]);
    assert!(ok && out.contains("keyed chain intact"), "{out}");
    let allowed = records_in(disk.dir.path()).iter().filter(|r| r["status"] == 200).count();
    assert_eq!(allowed, released, "one record per released answer");
    let controls = controls_in(disk.dir.path());
    assert!(controls.iter().any(|c| c["why"] == "recovered"), "{controls:?}");
    assert_eq!(controls.last().unwrap()["why"], "close", "a clean shutdown closes the chain");
}

/// `otpgate demo` on `data`, with a plain listener.
fn demo_on(data: &std::path::Path, extra: &[&str]) -> Gateway {
    let args: Vec<String> =
        ["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--listen-plain", "127.0.0.1:0"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .chain(["--data-dir".into(), data.display().to_string()])
            .collect();
    Gateway::spawn(&args, &["registry", "https", "http", "admin"])
}

/// One personal request on a fresh session, then SIGTERM and a clean exit.
async fn serve_once_and_stop(mut gw: Gateway, data: &std::path::Path) {
    let http = gw.addr("http");
    let token = sign_in(http, &data.join("otp-outbox.jsonl"), "9000000001").await;
    assert_eq!(get_auth(http, "/api/v2/appointment/beneficiaries", &token).await.status, 200);
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()), "{}", gw.stderr());
}

#[tokio::test]
async fn restarts_of_the_gateway_keep_one_chain_and_a_deleted_log_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let keys = data.display().to_string();
    let log = data.join("audit.log").display().to_string();
    let verify = || otpgate(&["audit", "verify", "--keys-dir", &keys, "--log", &log]);
    let retention = ["--audit-keep-files", "5", "--audit-keep-days", "30"];
    serve_once_and_stop(demo_on(data, &retention), data).await;
    serve_once_and_stop(demo_on(data, &retention), data).await;
    // Two clean restarts: one chain, nothing to report.
    let (ok, out) = verify();
    assert!(ok && out.contains("keyed chain intact") && !out.contains("note:"), "{out}");
    let opens: Vec<String> = controls_in(data)
        .iter()
        .filter(|c| c["event"] == "open")
        .map(|c| c["start"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(opens, ["new", "clean"]);

    // audit.log deleted while the gateway is down: reported as it is, and after the next start.
    std::fs::remove_file(data.join("audit.log")).unwrap();
    let (ok, out) = verify();
    assert!(!ok && out.contains("audit.log is missing"), "{out}");
    serve_once_and_stop(demo_on(data, &[]), data).await;
    let (ok, out) = verify();
    assert!(!ok && out.contains("restarted segment"), "{out}");
}
