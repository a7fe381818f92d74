//! Issue 7: request spans reach a real OpenTelemetry collector (`rotel`, from PyPI) over OTLP
//! gRPC and HTTP, with their attributes; a full export queue drops and counts spans.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// The `rotel-agent` binary that `pip install rotel` ships (scripts/test.sh installs it).
fn rotel_agent() -> PathBuf {
    if let Ok(p) = std::env::var("ROTEL_AGENT") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))"])
        .output()
        .expect("python3");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.is_file(), "rotel-agent not found: run `pip install rotel` (scripts/test.sh does)");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Collector {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    pub grpc: u16,
    pub http: u16,
}

impl Collector {
    pub fn start() -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rotel.log");
        let (grpc, http) = (free_port(), free_port());
        let child = Command::new(rotel_agent())
            .args(["start", "--exporter", "blackhole", "--debug-log", "traces", "--debug-log-verbosity", "detailed"])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--pid-file", &dir.path().join("rotel.pid").display().to_string()])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rotel-agent");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", grpc)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Collector { child, log, _dir: dir, grpc, http }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_exporting(env: &[(&str, String)]) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> =
        ["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--listen-plain", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.push("--data-dir".into());
    args.push(dir.path().display().to_string());
    let mut gw = Gateway::spawn_with_env(&args, &["registry", "https", "http", "admin"], env);
    gw.data_dir = Some(dir);
    gw
}

#[tokio::test]
async fn spans_with_their_attributes_reach_a_real_collector_over_grpc_and_http() {
    let collector = Collector::start();
    for (protocol, endpoint) in [
        ("grpc", format!("http://127.0.0.1:{}", collector.grpc)),
        ("http/protobuf", format!("http://127.0.0.1:{}", collector.http)),
    ] {
        let gw = demo_exporting(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_SERVICE_NAME", format!("otpgate-test-{}", protocol.replace('/', "-"))),
        ]);
        let http = gw.addr("http");
        let trace_id =
            if protocol == "grpc" { "4bf92f3577b34da6a3ce929d0e0e4736" } else { "5bf92f3577b34da6a3ce929d0e0e4737" };
        let req = http::Request::get("/api/v2/admin/location/states")
            .header("host", "x")
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = h1(tcp(http).await, req).await;
        assert_eq!(r.status, 200);
        assert_eq!(get_h1(http, "/api/v2/appointment/beneficiaries").await.status, 401);
        let found = eventually(Duration::from_secs(10), || async {
            let out = collector.output();
            out.contains(trace_id)
                && out.contains(&format!("otpgate-test-{}", protocol.replace('/', "-")))
                && out.matches("http.route: Str(beneficiaries)").count() >= if protocol == "grpc" { 1 } else { 2 }
        })
        .await;
        let out = collector.output();
        assert!(found, "{protocol}: spans did not arrive:\n{out}");
        for attribute in [
            "http.route: Str(states)",
            "http.route: Str(beneficiaries)",
            "otpgate.decision: Str(deny)",
            "otpgate.reason: Str(USRAUT0001)",
            "otpgate.caller.kind: Str(anonymous)",
            "otpgate.policy_version",
            "otpgate.request_id",
            "http.response.status_code: Int(401)",
        ] {
            assert!(out.contains(attribute), "{protocol}: missing {attribute}");
        }
        let admin = gw.addr("admin");
        let counted = eventually(Duration::from_secs(5), || async move {
            metric(&get_h1(admin, "/metrics").await.text(), "otpgate_spans_exported_total", &[]) >= 2.0
        })
        .await;
        let m = get_h1(admin, "/metrics").await.text();
        assert!(counted, "{m}");
        assert_eq!(metric(&m, "otpgate_spans_dropped_total", &[]), 0.0);
    }
}

#[tokio::test]
async fn a_full_export_queue_drops_and_counts_spans_without_slowing_requests() {
    // A collector that never answers: connect succeeds, nothing comes back.
    let hole = crate::harness::upstream::Blackhole::start().await;
    let gw = demo_exporting(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", hole.addr)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "2".into()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1".into()),
    ]);
    let http = gw.addr("http");
    for _ in 0..20 {
        assert_eq!(get_h1(http, "/api/v2/admin/location/states").await.status, 200);
    }
    let admin = gw.addr("admin");
    let dropped = eventually(Duration::from_secs(5), || async move {
        metric(&get_h1(admin, "/metrics").await.text(), "otpgate_spans_dropped_total", &[]) >= 10.0
    })
    .await;
    assert!(dropped, "{}", get_h1(admin, "/metrics").await.text());
}

#[tokio::test]
async fn a_collector_that_is_down_loses_spans_not_audit_records() {
    // Nothing listens at the endpoint: every export fails at once.
    let port = free_port();
    let gw = demo_exporting(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ]);
    let http = gw.addr("http");
    let token = crate::citizen_flow::sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000001").await;
    let r = crate::citizen_flow::get_auth(http, "/api/v2/appointment/beneficiaries", &token).await;
    assert_eq!(r.status, 200, "personal data is served while the collector is down");
    let admin = gw.addr("admin");
    let counted = eventually(Duration::from_secs(10), || async move {
        let text = get_h1(admin, "/metrics").await.text();
        metric(&text, "otpgate_spans_dropped_total", &[]) >= 3.0 && metric(&text, "otpgate_audit_head_seq", &[]) >= 1.0
    })
    .await;
    let text = get_h1(admin, "/metrics").await.text();
    assert!(counted, "spans of the failed exports counted as dropped, the audit chain durable: {text}");
    assert_eq!(metric(&text, "otpgate_spans_exported_total", &[]), 0.0);
    assert_eq!(metric(&text, "otpgate_audit_up", &[]), 1.0);
}
