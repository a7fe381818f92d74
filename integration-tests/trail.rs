//! Issue 7: the audit trail of a full demo scenario — durable records, `audit verify` catching a
//! flipped byte, `audit query` by mobile, the citizen's access log — and a scan of everything the
//! gateway wrote (logs, audit files, spans received) for personal data, OTPs and tokens.

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

    // The trail verifies; a security team queries it by mobile.
    let log = data("audit.log");
    let log_s = log.display().to_string();
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s]);
    assert!(ok, "{out}");
    let keys = dir.path().display().to_string();
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
    assert_eq!(written[1].lines().count(), 4, "one record per personal-data request");
    assert!(written[2].contains("otpgate.request_id"), "spans were received");
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
    let (ok, out) = otpgate(&["audit", "verify", "--log", &log_s]);
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

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_is_released() {
    let Some(disk) = TinyDisk::mount(256 << 10) else {
        // Mounting needs root, which CI on this project's machines has.
        panic!("cannot mount a tmpfs (run the suite as root, as CI does)");
    };
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
    let (ok, out) = otpgate(&["keys", "generate", "--dir", &keys.path().display().to_string()]);
    assert!(ok, "{out}");
    let args: Vec<String> =
        ["serve", "--listen-plain", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--insecure-otp-outbox"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--config".into(), dir.path().display().to_string()])
            .chain(["--keys-dir".into(), keys.path().display().to_string()])
            .chain(["--data-dir".into(), disk.dir.path().display().to_string()])
            .collect();
    let gw = Gateway::spawn(&args, &["http", "admin"]);
    let http = gw.addr("http");
    let token = sign_in(http, &outbox_file, "9000000001").await;
    let mut released = 0;
    let mut refused = 0;
    for _ in 0..2000 {
        let r = get_auth(http, "/records?mobile=9000000001", &token).await;
        match r.status {
            200 => {
                assert_eq!(refused, 0, "nothing is released once the log has failed");
                released += 1;
            }
            503 => {
                assert_eq!(r.error_code(), "GWY5033");
                assert!(!r.text().contains("Secret"), "the withheld answer does not leak");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(released > 10 && refused >= 5, "released {released}, refused {refused}");
    let m = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert!(metric(&m, "otpgate_audit_failures_total", &[]) >= 5.0, "{m}");
    drop(gw);
    // What was written before the disk filled still verifies.
    let (ok, out) = otpgate(&["audit", "verify", "--log", &disk.dir.path().join("audit.log").display().to_string()]);
    assert!(ok, "{out}");
}
