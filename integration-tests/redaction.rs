//! Issue 6: fail-closed redaction through the real binary: profiles, encodings, refusals, the
//! streamed export's memory, and an aborted stream.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::citizen_flow::{OUTBOX_POLICY, get_auth, sign_in};
use crate::harness::pki::Leaf;
use crate::harness::upstream::Documents;
use crate::harness::*;

const PROFILES: &str = "profiles:
  masked:
    default: deny
    rules:
      - {path: 'beneficiaries[*].beneficiary_reference_id', action: keep}
      - {path: 'beneficiaries[*].mobile_number', action: mask, keep_last: 4, format: 'XXXXXX####'}
      - {path: 'beneficiaries[*].photo_id_number', action: mask, keep_last: 4, format: 'XXXX-XXXX-####'}
      - {path: 'beneficiaries[*].birth_year', action: keep}
      - {path: 'beneficiaries[*].dose1_date', action: generalize}
  watch:
    default: deny
    dry_run: true
    rules:
      - {path: 'beneficiaries[*].birth_year', action: keep}
";

#[tokio::test]
async fn citizen_answers_are_redacted_and_anything_unredactable_is_refused() {
    let docs = Documents::start().await;
    let gateway =
        format!("{PROFILES}citizens:\n  otp:\n{OUTBOX_POLICY}\nupstreams:\n  docs: {{url: '{}'}}\n", docs.url());
    let mut routes = String::from(
        "routes:
  - {name: gen, methods: [POST], path: /api/v2/auth/public/generateOTP, access: public, handler: otp_generate}
  - {name: conf, methods: [POST], path: /api/v2/auth/public/confirmOTP, access: public, handler: otp_confirm}
",
    );
    for (path, profile) in [
        ("records", "masked"),
        ("records-gzip", "masked"),
        ("records-zstd", "masked"),
        ("html", "masked"),
        ("broken", "masked"),
        ("dry", "watch"),
    ] {
        routes.push_str(&format!(
            "  - {{name: {path}, methods: [GET], path: /{path}, access: citizen, upstream: docs, personal: true, redact: {{citizen: {profile}}}, ownership: {{request: [{{param: mobile, kind: mobile}}]}}}}\n"
        ));
    }
    let dir = policy_dir(&gateway, &routes);
    let gw = Gateway::serve(dir.path(), &[]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000001").await;

    for path in ["/records", "/records-gzip"] {
        let r = get_auth(http, &format!("{path}?mobile=9000000001"), &token).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(!r.headers.contains_key("content-encoding"), "{path}: decoded, redacted, sent plain");
        let v = r.json();
        let first = &v["beneficiaries"][0];
        assert_eq!(first["mobile_number"], "XXXXXX0001", "{path}");
        assert_eq!(first["photo_id_number"], "XXXX-XXXX-1234", "{path}");
        assert_eq!(first["dose1_date"], "2021", "{path}: generalized to the year");
        assert_eq!(first["birth_year"], "1980");
        let text = r.text();
        for secret in ["Secret Person", "aadhaarNo", "999988887777", "234512341234", "9000000001"] {
            assert!(!text.contains(secret), "{path}: {secret} leaked");
        }
    }
    for path in ["/records-zstd", "/html", "/broken"] {
        let r = get_auth(http, &format!("{path}?mobile=9000000001"), &token).await;
        assert_eq!((r.status, r.error_code().as_str()), (502, "GWY5022"), "{path}: fail closed");
        assert!(!r.text().contains("Secret"), "{path}");
    }
    // Dry run: the answer is unchanged, what would have gone is reported in the audit trail.
    let r = get_auth(http, "/dry?mobile=9000000001", &token).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Secret Person 0"), "dry run changes nothing");
    let log = std::fs::read_to_string(gw.data_path("audit.log")).unwrap();
    let dry = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["route"] == "dry")
        .unwrap();
    assert!(!dry["fields_redacted"].as_array().unwrap().is_empty(), "dry run reports: {dry}");
    let m = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert!(metric(&m, "otpgate_redacted_values_total", &[("profile", "watch"), ("mode", "dry_run")]) > 0.0, "{m}");
    assert!(metric(&m, "otpgate_redacted_values_total", &[("profile", "masked"), ("mode", "applied")]) > 0.0);
    assert_eq!(metric(&m, "otpgate_redacted_values_total", &[("profile", "watch"), ("mode", "applied")]), 0.0);
}

async fn partner_get(gw: &Gateway, path: &str) -> http::Response<hyper::body::Incoming> {
    let read = |f: &str| std::fs::read_to_string(gw.data_path(f)).unwrap();
    let icmr = Leaf { cert_pem: read("partner-icmr.pem"), key_pem: read("partner-icmr-key.pem") };
    let stream = crate::harness::pki::connect(gw.addr("https"), &read("ca.pem"), Some(&icmr)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "localhost")
        .header("x-api-key", read("partner-icmr.apikey").trim())
        .body(Full::new(Bytes::new()))
        .unwrap();
    send.send_request(req).await.unwrap()
}

#[tokio::test]
async fn the_partner_export_streams_through_the_research_profile_in_bounded_memory() {
    const N: usize = 200_000;
    let gw = Gateway::demo(&["--beneficiaries", &N.to_string()]);
    let resp = partner_get(&gw, "/api/v2/partner/beneficiaries/export?district_id=0").await;
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("content-length"), "streamed");
    let body = resp.into_body().collect().await.expect("complete body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
    let list = v["beneficiaries"].as_array().unwrap();
    assert_eq!(list.len(), N);
    let first = &list[0];
    assert!(first.get("name").is_none(), "research drops names: {first}");
    for field in ["mobile_number", "photo_id_number", "beneficiary_reference_id"] {
        let token = first[field].as_str().unwrap();
        assert!(!token.chars().all(|c| c.is_ascii_digit()), "{field} is a keyed token: {token}");
    }
    assert!(first["birth_year"].is_string());
    let peak = gw.peak_rss();
    println!("export of {} MB, gateway+registry peak RSS {} MiB", body.len() >> 20, peak >> 20);
    assert!(body.len() > 40 << 20, "a large document: {} bytes", body.len());
    assert!(peak < 64 << 20, "peak RSS {} MiB does not grow with the body", peak >> 20);
    // Audited twice: the decision before the first byte, and how the stream ended.
    let [first, last] = stream_records(&gw, "partner-export").await;
    assert_eq!((first["reason"].as_str(), first["record_count"].as_u64()), (Some("ok"), Some(0)), "{first}");
    assert_eq!(last["reason"], "stream_complete", "{last}");
    assert_eq!(last["record_count"].as_u64(), Some(N as u64), "{last}");
    assert_eq!((last["caller_id"].as_str(), last["decision"].as_str()), (Some("icmr"), Some("allow")));
    let fields: Vec<&str> = last["fields_redacted"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(fields.contains(&"beneficiaries[*].photo_id_number"), "{fields:?}");
    assert!(fields.contains(&"<unnamed>"), "names were dropped: {fields:?}");
}

#[tokio::test]
async fn an_export_the_client_abandons_is_audited_as_such() {
    let gw = Gateway::demo(&["--beneficiaries", "200000"]);
    let resp = partner_get(&gw, "/api/v2/partner/beneficiaries/export?district_id=0").await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.expect("a first frame").expect("data");
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    drop(body); // hang up mid-document
    let [_, last] = stream_records(&gw, "partner-export").await;
    assert_eq!(last["reason"], "client_closed", "{last}");
    let n = last["record_count"].as_u64().unwrap();
    assert!(n > 0 && n < 200_000, "what went out before the hang-up is counted: {last}");
}

#[tokio::test]
async fn sigterm_lets_an_export_in_flight_finish_and_audits_its_end() {
    const N: usize = 50_000;
    let mut gw = Gateway::demo(&["--beneficiaries", &N.to_string()]);
    let resp = partner_get(&gw, "/api/v2/partner/beneficiaries/export?district_id=0").await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.expect("a first frame").expect("data").into_data().unwrap();
    gw.signal("TERM");
    let rest = body.collect().await.expect("the stream is finished, not cut").to_bytes();
    let whole = [first, rest].concat();
    let v: serde_json::Value = serde_json::from_slice(&whole).expect("one valid document");
    assert_eq!(v["beneficiaries"].as_array().unwrap().len(), N);
    let status = gw.wait_exit(std::time::Duration::from_secs(20)).expect("exits once the stream is done");
    assert!(status.success());
    let [_, last] = stream_records(&gw, "partner-export").await;
    assert_eq!((last["reason"].as_str(), last["record_count"].as_u64()), (Some("stream_complete"), Some(N as u64)));
}

/// The two audit records of the one streamed request on `route` (waiting for the second, which is
/// written when the stream ends), same request and trace id.
async fn stream_records(gw: &Gateway, route: &str) -> [serde_json::Value; 2] {
    for _ in 0..100 {
        let log = std::fs::read_to_string(gw.data_path("audit.log")).unwrap_or_default();
        let mine: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["route"] == route)
            .collect();
        if let [first, last] = mine.as_slice() {
            assert_eq!(first["request_id"], last["request_id"]);
            assert_eq!(first["trace_id"], last["trace_id"]);
            return [first.clone(), last.clone()];
        }
        assert!(mine.len() < 2, "{mine:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no completion record for {route}");
}

#[tokio::test]
async fn a_stream_that_goes_bad_midway_is_aborted_not_truncated() {
    let (gw, mut send, _keep) = nic_gateway("routes:
  - {name: stream, methods: [GET], path: /truncated-stream, access: partner, upstream: test, personal: true, redact: {partner: open}, stream: true, scopes: [beneficiaries:export]}
").await;
    let req = nic_get("/truncated-stream");
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "the head went out before the garbage arrived");
    let body = resp.into_body().collect().await;
    assert!(body.is_err(), "the client sees an aborted body, never a complete-looking one");
    let [first, last] = stream_records(&gw, "stream").await;
    assert_eq!(first["reason"], "ok");
    assert_eq!(last["reason"], "stream_aborted", "{last}");
    // The records redacted before the garbage went out (or were about to): counted, not zero.
    assert!(last["record_count"].as_u64().is_some_and(|n| n > 0), "{last}");
}

#[tokio::test]
async fn a_partner_answer_without_a_length_is_read_whole_and_itemised() {
    let (gw, mut send, _keep) = nic_gateway("routes:
  - {name: chunked, methods: [GET], path: /records-chunked, access: partner, upstream: test, personal: true, redact: {partner: open}, scopes: [beneficiaries:export]}
").await;
    let req = nic_get("/records-chunked");
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("content-length"), "read whole, not streamed");
    let _ = resp.into_body().collect().await.expect("body");
    let log = std::fs::read_to_string(gw.data_path("audit.log")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["route"] == "chunked")
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["record_count"], 3);
    assert_eq!(records[0]["records"].as_array().map(Vec::len), Some(3), "every record named (as keyed hashes)");
    assert!(!records[0]["subjects"].as_array().unwrap().is_empty(), "the citizens whose records went out");
}

#[tokio::test]
async fn an_upstream_that_stops_sending_its_body_is_a_504() {
    let (gw, mut send, _keep) = nic_gateway("routes:
  - {name: trickle, methods: [GET], path: /trickle, access: partner, upstream: test, personal: true, redact: {partner: open}, scopes: [beneficiaries:export], timeout: 1s}
  - {name: trickle-stream, methods: [GET], path: /trickle-stream, access: partner, upstream: test, personal: true, redact: {partner: open}, stream: true, scopes: [beneficiaries:export], timeout: 1s}
").await;
    let req = nic_get("/trickle");
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), send.send_request(req))
        .await
        .expect("answered within the route's timeout, not held by the upstream")
        .unwrap();
    assert_eq!(resp.status(), 504);
    // Streamed, the head has gone out: the body is aborted once the upstream stalls that long.
    let req = nic_get("/trickle-stream");
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), resp.into_body().collect()).await;
    assert!(body.expect("ended within the route's timeout").is_err(), "aborted, not a complete-looking body");
    let [_, last] = stream_records(&gw, "trickle-stream").await;
    assert_eq!(last["reason"], "stream_aborted", "{last}");
}

/// A gateway (`serve`) with the partner test PKI in front of the `Documents` upstream and these
/// routes, and a connection as partner `nic`; keep the third value alive for the test's length.
async fn nic_gateway(
    routes: &str,
) -> (Gateway, hyper::client::conn::http1::SendRequest<Full<Bytes>>, (crate::partner::Pki, Documents, tempfile::TempDir))
{
    let pki = crate::partner::Pki::new();
    let docs = Documents::start().await;
    let (g, _) = pki.policy_for(&docs.url());
    let dir = policy_dir(&g, routes);
    let gw = pki.gateway(dir.path());
    let stream = crate::harness::pki::connect(gw.addr("https"), &pki.server_ca.pem, Some(&pki.nic)).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    (gw, send, (pki, docs, dir))
}

/// A GET as partner `nic`.
fn nic_get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .header("x-api-key", crate::partner::KEY_NIC)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The README's copy of the shipped profiles is the shipped file's (parsed, so comments and
/// layout may differ, rules may not).
#[test]
fn the_readme_shows_the_shipped_profiles() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let shipped = std::fs::read_to_string(format!("{root}/policies/profiles.yaml")).expect("profiles.yaml");
    let after = readme.split_once("The shipped profiles, as in").expect("README names the shipped profiles").1;
    let block = after.split_once("```yaml\n").expect("a yaml block").1.split_once("```").expect("closed").0;
    let parse = |text: &str| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).expect("YAML");
    assert_eq!(parse(block), parse(&shipped), "README.md's profiles differ from policies/profiles.yaml");
}
