//! Issue 17: every metric the shipped Grafana dashboard and alert rules use is exported by the real
//! binary after a scenario that exercises them, so no panel stays empty and no alert watches a name
//! that does not exist (a renamed metric fails here, not in production).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::citizen_flow::{confirm, generate, get_auth, sign_in};
use crate::harness::pki::{Leaf, connect};
use crate::harness::*;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/otpgate/files/monitoring")
}

/// Every `otpgate_…` name in a PromQL expression.
fn names_in(expr: &str, out: &mut BTreeSet<String>) {
    for (i, _) in expr.match_indices("otpgate_") {
        let name: String =
            expr[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        out.insert(name);
    }
}

/// The metric names the dashboard's queries and variables and the alert rules use, by file.
fn used() -> Vec<(&'static str, BTreeSet<String>)> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring().join("otpgate-dashboard.json")).unwrap()).unwrap();
    let mut panels = BTreeSet::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            names_in(target["expr"].as_str().unwrap(), &mut panels);
            queries += 1;
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        names_in(var["definition"].as_str().unwrap_or_default(), &mut panels);
    }
    assert!(queries >= 30, "the dashboard has its panels ({queries} queries)");
    let rules: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(monitoring().join("otpgate-rules.yaml")).unwrap()).unwrap();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            names_in(rule["expr"].as_str().unwrap(), &mut alerts);
        }
    }
    vec![("otpgate-dashboard.json", panels), ("otpgate-rules.yaml", alerts)]
}

/// Names of the samples in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}

/// The demo partner's search over mTLS on the demo's HTTPS listener.
async fn partner_search(gw: &Gateway, mobile: &str) -> Resp {
    let read = |f: &str| std::fs::read_to_string(gw.data_path(f)).unwrap();
    let icmr = Leaf { cert_pem: read("partner-icmr.pem"), key_pem: read("partner-icmr-key.pem") };
    let stream = connect(gw.addr("https"), &read("ca.pem"), Some(&icmr)).await.unwrap();
    let req = Request::post("/api/v2/partner/beneficiaries/search")
        .header("host", "localhost")
        .header("x-api-key", read("partner-icmr.apikey").trim())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(r#"{{"mobile":"{mobile}"}}"#))))
        .unwrap();
    h1(stream, req).await
}

/// Citizens, partners, refusals and the audit trail on the demo.
async fn demo_scenario() -> String {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let http = gw.addr("http");
    let token = sign_in(http, &gw.data_path("otp-outbox.jsonl"), "9000000001").await;
    assert_eq!(get_auth(http, "/api/v2/appointment/beneficiaries", &token).await.status, 200);
    let txn = generate(http, "9000000002").await.json()["txnId"].as_str().unwrap().to_string();
    assert_eq!(confirm(http, &txn, "000000").await.status, 401, "a wrong OTP");
    assert_eq!(partner_search(&gw, "9000000001").await.status, 200);
    assert_eq!(partner_search(&gw, "9000000003").await.status, 200);
    // A citizen route hammered past its per-session limit.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(get_auth(http, "/api/v2/appointment/beneficiaries", &token).await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let text = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert_eq!(metric(&text, "otpgate_otp_events_total", &[("event", "wrong_otp")]), 1.0, "{text}");
    assert_eq!(metric(&text, "otpgate_otp_events_total", &[("event", "confirmed")]), 1.0);
    assert_eq!(metric(&text, "otpgate_partner_subjects_today", &[("partner", "icmr")]), 2.0);
    assert_eq!(metric(&text, "otpgate_partner_subjects_new_total", &[("partner", "icmr")]), 2.0);
    assert_eq!(metric(&text, "otpgate_partner_requests_total", &[("partner", "icmr"), ("status", "200")]), 2.0);
    assert!(metric(&text, "otpgate_audit_write_seconds_count", &[]) >= 1.0);
    text
}

/// A replica whose shared store and upstream are both down.
async fn broken_scenario() -> String {
    let routes = "upstreams:\n  down: {url: 'http://127.0.0.1:1'}\nroutes:\n  - {name: down, methods: [GET], path: /down, access: public, upstream: down, limits: [{key: ip, rate: [{limit: 100, per: 1m}]}]}\n";
    let dir = policy_dir(crate::foundation::GATEWAY, routes);
    let gw = Gateway::serve(dir.path(), &["--store", "redis://127.0.0.1:1"]);
    for _ in 0..5 {
        assert_eq!(get_h1(gw.addr("http"), "/down").await.status, 502);
    }
    assert_eq!(get_h1(gw.addr("http"), "/down").await.status, 503, "its circuit breaker open");
    let text = get_h1(gw.addr("admin"), "/metrics").await.text();
    assert_eq!(metric(&text, "otpgate_store_up", &[]), 0.0, "{text}");
    text
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() {
    let mut names = exported(&demo_scenario().await);
    names.extend(exported(&broken_scenario().await));
    for (file, used) in used() {
        let missing: Vec<&String> = used.difference(&names).collect();
        assert!(missing.is_empty(), "{file} uses metrics the binary does not export: {missing:?}");
    }
}

#[test]
fn the_checker_reads_names_out_of_promql() {
    let mut out = BTreeSet::new();
    names_in("sum by (le) (rate(otpgate_audit_write_seconds_bucket{job=~\"$job\"}[5m])) / otpgate_x_total", &mut out);
    assert_eq!(out.into_iter().collect::<Vec<_>>(), ["otpgate_audit_write_seconds_bucket", "otpgate_x_total"]);
    let text = "# HELP otpgate_a A\notpgate_a_total{k=\"v\"} 1\notpgate_b 2\n";
    assert_eq!(exported(text).into_iter().collect::<Vec<_>>(), ["otpgate_a_total", "otpgate_b"]);
}
