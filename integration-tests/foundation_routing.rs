//! Issue 2: routing, ambiguous paths, policy check and hot reload.

use std::process::Command;
use std::time::Duration;

use crate::foundation::{GATEWAY, Setup, routes};
use crate::harness::*;

#[tokio::test]
async fn ambiguous_paths_are_refused_with_400() {
    let s = Setup::new().await;
    let before = s.echo.connections.load(std::sync::atomic::Ordering::SeqCst);
    for path in [
        "/echo/%2f",
        "/echo/a%2Fb",
        "/echo/%5c",
        "/echo/..",
        "/echo/./x",
        "/echo/x/../../echo",
        "/echo/%2e%2e",
        "/ech%6F",
        "/echo/%252e",
        "/echo;a=b",
        "/echo/a;b",
        "//echo",
        "/echo/",
        "/echo/%00",
        "/echo/%zz",
    ] {
        let resp =
            raw(s.http(), format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(raw_status(&resp), 400, "{path}: {resp}");
        assert!(resp.contains("\"errorCode\":\"GWY4001\""), "{path}: {resp}");
    }
    // Raw bytes that are not even valid in a URI are refused by the HTTP parser itself.
    for path in ["/echo\\x", "/echo/a\0b"] {
        let resp = raw(s.http(), format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await;
        assert_eq!(raw_status(&resp), 400, "{path:?}: {resp}");
    }
    let after = s.echo.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, after, "nothing ambiguous reached the upstream");
}

#[tokio::test]
async fn the_bytes_authorized_are_the_bytes_forwarded() {
    let s = Setup::new().await;
    for target in ["/echo/a%20b?q=%41&x=1&x=2", "/echo/%E0%A4%85?m=9000000001", "/echo?"] {
        let r = get_h1(s.http(), target).await;
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.json()["target"], target);
    }
}

#[tokio::test]
async fn unknown_routes_404_and_wrong_methods_405_in_json() {
    let s = Setup::new().await;
    let r = get_h1(s.http(), "/nothing/here").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "GWY4041"));
    let r = get_h1(s.http(), "/ECHO").await;
    assert_eq!(r.status, 404, "paths are case-sensitive");
    let req = http::Request::delete("/echo")
        .header("host", "x")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = h1(tcp(s.http()).await, req).await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "GWY4051"));
    assert_eq!(r.headers["allow"], "GET, POST");
}

#[tokio::test]
async fn citizen_routes_are_closed_without_a_session() {
    let s = Setup::new().await;
    let before = s.echo.connections.load(std::sync::atomic::Ordering::SeqCst);
    let req = http::Request::get("/private")
        .header("host", "x")
        .header("authorization", "Bearer eyJhbGciOiJub25lIn0.e30.")
        .header("x-otpgate-identity", "forged")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = h1(tcp(s.http()).await, req).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0007"), "a forged token");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"otpgate\", error=\"invalid_token\"");
    assert!(!r.text().contains("eyJ"), "the token is never echoed");
    let r = get_h1(s.http(), "/private").await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "USRAUT0001"), "no token at all");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"otpgate\"");
    assert_eq!(before, s.echo.connections.load(std::sync::atomic::Ordering::SeqCst));
}

fn check(dir: &std::path::Path) -> (bool, String, String) {
    check_policy(dir, &[])
}

fn check_with(dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> (bool, String, String) {
    check_policy(dir, extra)
}

/// `check` compiles the policy exactly as `serve` does, keys and server certificate included, so a
/// policy it accepts with the same flags is one `serve` starts with.
#[test]
fn check_runs_the_key_and_tls_checks_that_serve_runs() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (ok, stdout, _) = check(&shipped);
    assert!(ok && stdout.contains("note: keys not checked"), "without --keys-dir it says so: {stdout}");

    let keys = tempfile::tempdir().unwrap();
    let flag = |s: &'static str| std::ffi::OsStr::new(s);
    let (ok, _, stderr) = check_with(&shipped, &[flag("--keys-dir"), keys.path().as_os_str()]);
    assert!(!ok, "an empty keys directory is refused, as serve refuses it");
    assert!(stderr.contains(&keys.path().display().to_string()), "{stderr}");
    let made = Command::new(BIN).args(["keys", "generate", "--dir"]).arg(keys.path()).output().unwrap();
    assert!(made.status.success());
    let (ok, stdout, stderr) = check_with(&shipped, &[flag("--keys-dir"), keys.path().as_os_str()]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("keys not checked"), "{stdout}");

    // A server certificate with another pair's key: serve would not start, so check fails too.
    let ca = pki::Ca::new("check-ca");
    let certs = tempfile::tempdir().unwrap();
    let (cert, _) = ca.leaf("localhost", true, (2020, 2090), 1).write(certs.path(), "a");
    let (_, other_key) = ca.leaf("localhost", true, (2020, 2090), 2).write(certs.path(), "b");
    let tls = [flag("--tls-cert"), cert.as_os_str(), flag("--tls-key"), other_key.as_os_str()];
    let (ok, _, stderr) = check_with(&shipped, &tls);
    assert!(!ok, "a key that does not match the certificate is refused");
    assert!(stderr.contains(&cert.display().to_string()), "{stderr}");
}

#[test]
fn check_reports_every_error_with_file_and_field_path() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (ok, stdout, stderr) = check(&shipped);
    assert!(ok, "the shipped policy is valid: {stderr}");
    assert!(stdout.starts_with("ok:"));

    let dir = policy_dir(
        "gateway:\n  limits:\n    max_headers: 0\n  trusted_proxies: ['300.1.1.1']\n",
        "upstreams:\n  r: {url: 'http://127.0.0.1:1'}\nroutes:\n  - {name: a, methods: [GET], path: /a, access: public, upstream: r}\n  - {name: a, methods: [YANK], path: /b, access: public, upstream: r}\n  - {name: c, methods: [GET], path: /c, access: public, upstream: missing, personal: true}\n",
    );
    std::fs::write(
        dir.path().join("zz.yaml"),
        "routes:\n  - {name: z, methods: [GET], path: /z, access: sometimes, upstream: r}\n",
    )
    .unwrap();
    let (ok, _, stderr) = check(dir.path());
    assert!(!ok);
    for want in [
        "gateway.yaml: gateway.limits.max_headers:",
        "gateway.yaml: gateway.trusted_proxies[0]:",
        "routes.yaml: routes[1].name: duplicate route name",
        "routes.yaml: routes[1].methods[0]:",
        "routes.yaml: routes[2].upstream:",
        "routes.yaml: routes[2].personal:",
        "zz.yaml: routes[0].access:",
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
    assert!(stderr.contains("7 error(s)"), "{stderr}");
}

const NEW_ROUTE: &str = "  - {name: added, methods: [GET], path: /added, access: public, upstream: test}\n";

#[tokio::test]
async fn sighup_swaps_a_valid_policy_and_keeps_the_old_one_on_error() {
    let s = Setup::new().await;
    assert_eq!(get_h1(s.http(), "/added").await.status, 404);
    std::fs::write(s.dir.path().join("routes.yaml"), routes(NEW_ROUTE)).unwrap();
    s.gw.signal("HUP");
    let http = s.http();
    assert!(eventually(Duration::from_secs(5), || async move { get_h1(http, "/added").await.status == 200 }).await);

    std::fs::write(s.dir.path().join("routes.yaml"), "routes: [this is not a route]\n").unwrap();
    s.gw.signal("HUP");
    let admin = s.gw.addr("admin");
    let counted = eventually(Duration::from_secs(5), || async move {
        metric(&get_h1(admin, "/metrics").await.text(), "otpgate_policy_reloads_total", &[("result", "failure")]) >= 1.0
    })
    .await;
    assert!(counted, "a rejected reload is counted");
    assert_eq!(get_h1(s.http(), "/added").await.status, 200, "the previous policy keeps serving");
    assert_eq!(get_h1(s.http(), "/echo").await.status, 200);
    let m = s.metrics().await;
    assert!(metric(&m, "otpgate_policy_reloads_total", &[("result", "success")]) >= 1.0);
    assert!(s.gw.stderr().contains("policy rejected"), "the rejection is logged");
}

#[tokio::test]
async fn a_changed_file_is_reloaded_without_a_signal() {
    let s = Setup::new().await;
    std::fs::write(s.dir.path().join("routes.yaml"), routes(NEW_ROUTE)).unwrap();
    let http = s.http();
    assert!(eventually(Duration::from_secs(6), || async move { get_h1(http, "/added").await.status == 200 }).await);
}

#[tokio::test]
async fn requests_in_flight_keep_their_policy_snapshot() {
    let s = Setup::new().await;
    let http = s.http();
    let slow = tokio::spawn(async move { get_h1(http, "/slow?sleep_ms=2000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let without_slow = routes("")
        .replace("  - {name: slow, methods: [GET], path: /slow, access: public, upstream: test, timeout: 5s}\n", "");
    assert_ne!(without_slow, routes(""));
    std::fs::write(s.dir.path().join("gateway.yaml"), GATEWAY).unwrap();
    std::fs::write(s.dir.path().join("routes.yaml"), without_slow).unwrap();
    s.gw.signal("HUP");
    assert!(eventually(Duration::from_secs(5), || async move { get_h1(http, "/slow").await.status == 404 }).await);
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the request that started under the old policy completes under it");
}
