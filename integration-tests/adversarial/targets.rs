//! What a request names: absolute- and authority-form targets, `Host`, TRACE and CONNECT,
//! method-override headers, paths two parsers could read differently, and identity headers in
//! every spelling.

use std::time::Duration;

use super::h2wire::*;
use super::{Adv, exchange};
use crate::harness::upstream::Echo;
use crate::harness::*;

const QUIET: Duration = Duration::from_millis(1500);

fn seen_for<'a>(received: &'a [serde_json::Value], marker: &str) -> Vec<&'a serde_json::Value> {
    received.iter().filter(|r| r["target"].as_str().is_some_and(|t| t.contains(marker))).collect()
}

#[tokio::test]
async fn adversarial_absolute_and_authority_form_targets_never_choose_the_upstream() {
    let s = Adv::new().await;
    s.control("forms").await;
    // Another server the attacker names: it must never hear from the gateway.
    let evil = Echo::start().await;
    let e = evil.addr;
    let addr = s.http();
    // Absolute-form, which a server must accept (RFC 9112 §3.2.2): routed by its path, sent to
    // the route's upstream in origin-form, or refused; never sent to the authority it names.
    for (case, req) in [
        ("absolute", format!("GET http://{e}/echo?form=absolute HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
        (
            "absolute-https",
            format!("GET https://{e}/echo?form=absolute-https HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ),
        (
            "absolute-userinfo",
            format!("GET http://user@{e}/echo?form=absolute-userinfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ),
    ] {
        let ex = exchange(addr, req.as_bytes(), QUIET).await;
        match ex.statuses().as_slice() {
            [200] => {
                let seen: serde_json::Value = serde_json::from_slice(&ex.responses[0].body).unwrap();
                assert_eq!(seen["target"], format!("/echo?form={case}"), "{case}: {seen}");
                assert_eq!(seen["headers"]["host"], serde_json::json!([s.echo.addr.to_string()]), "{case}: {seen}");
                assert_eq!(
                    seen["headers"]["x-forwarded-proto"],
                    serde_json::json!(["http"]),
                    "{case}: not the client's scheme"
                );
            }
            [400] => {}
            other => panic!("{case}: {other:?} {}", ex.raw),
        }
    }
    // Targets that name no path on the gateway, and CONNECT (with a request for the "tunnel"
    // right behind it): refused, never a tunnel.
    for (case, req) in [
        ("absolute-no-path", format!("GET http://{e} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
        ("asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string()),
        (
            "connect",
            format!(
                "CONNECT {e} HTTP/1.1\r\nHost: {e}\r\n\r\nGET /echo?form=tunnelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
        ),
        ("connect-443", "CONNECT registry.example:443 HTTP/1.1\r\nHost: registry.example:443\r\n\r\n".to_string()),
    ] {
        let ex = exchange(addr, req.as_bytes(), QUIET).await;
        let first = ex.statuses().first().copied();
        assert!(first.is_none_or(|st| (400..500).contains(&st)), "{case}: {}", ex.raw);
        if case.starts_with("connect") {
            assert_eq!(first, Some(400), "{case}: {}", ex.raw);
        }
    }
    // CONNECT over HTTP/2: no :scheme or :path, an :authority to tunnel to.
    let mut h = H2::open(addr, &[]).await;
    let block = hpack(&[(b":method", b"CONNECT"), (b":authority", e.to_string().as_bytes())]);
    h.send(&frame(HEADERS, END_HEADERS, 1, &block)).await;
    let end = h.finish(1, Duration::from_secs(3)).await;
    assert_eq!(end.status, Some(400), "h2 CONNECT: {end:?}");
    // h2 with an :authority naming the other server: routed by path to the route's upstream.
    let mut h = H2::open(addr, &[]).await;
    let block = hpack(&[
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", e.to_string().as_bytes()),
        (b":path", b"/echo?form=h2-authority"),
    ]);
    h.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block)).await;
    assert_eq!(h.finish(1, Duration::from_secs(3)).await.status, Some(200));
    assert_eq!(seen_for(&s.echo.received(), "form=h2-authority").len(), 1);
    assert!(evil.received().is_empty(), "the gateway connected where the client asked: {:?}", evil.received());
    // The bytes after a refused CONNECT are no tunnel: at most an ordinary request, routed by path.
    let received = s.echo.received();
    let tunnelled = seen_for(&received, "form=tunnelled");
    assert!(tunnelled.len() <= 1 && tunnelled.iter().all(|r| r["target"] == "/echo?form=tunnelled"), "{tunnelled:?}");
}

#[tokio::test]
async fn adversarial_host_headers_and_methods() {
    let s = Adv::new().await;
    s.control("host").await;
    let addr = s.http();
    let ask = |req: &str| {
        let req = req.to_string();
        async move { exchange(addr, req.as_bytes(), QUIET).await }
    };
    // An unknown Host is served (the gateway routes by path alone) and passed on only as
    // X-Forwarded-Host; the upstream's own Host is its configured authority.
    let ex = ask("GET /echo?host=unknown HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n").await;
    assert_eq!(ex.statuses(), [200], "{}", ex.raw);
    let seen: serde_json::Value = serde_json::from_slice(&ex.responses[0].body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-host"], serde_json::json!(["evil.example"]));
    assert_eq!(seen["headers"]["host"], serde_json::json!([s.echo.addr.to_string()]), "{seen}");
    // Without a Host the request is still routed by its path alone (RFC 9112 §3.2 asks for a 400;
    // the gateway never reads Host, so nothing depends on it) and no X-Forwarded-Host is invented.
    let ex = ask("GET /echo?host=missing HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(ex.statuses(), [200], "{}", ex.raw);
    let seen: serde_json::Value = serde_json::from_slice(&ex.responses[0].body).unwrap();
    assert!(seen["headers"].get("x-forwarded-host").is_none(), "{seen}");
    let mut wrong = Vec::new();
    for (case, req, want) in [
        ("duplicate", "GET /echo?host=duplicate HTTP/1.1\r\nHost: x\r\nHost: evil.example\r\n\r\n", 400),
        ("duplicate-case", "GET /echo?host=duplicate-case HTTP/1.1\r\nHost: x\r\nhOST: evil.example\r\n\r\n", 400),
        ("trace", "TRACE /echo?host=trace HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("trace-asterisk", "TRACE * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("track", "TRACK /echo?host=track HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("lowercase-get", "get /echo?host=lowercase HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    ] {
        let ex = ask(req).await;
        if ex.statuses() != [want] {
            wrong.push(format!(
                "{case}: want {want}, got {:?} {}",
                ex.statuses(),
                ex.raw.lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let reached: Vec<String> = s
        .targets()
        .into_iter()
        .filter(|t| t.contains("host=") && !t.contains("unknown") && !t.contains("missing"))
        .collect();
    assert!(reached.is_empty(), "{reached:?}");
}

#[tokio::test]
async fn adversarial_method_override_headers_change_nothing_upstream() {
    let s = Adv::new().await;
    let addr = s.http();
    let overrides = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "x_http_method_override"];
    for (method, expect) in [("GET", 200u16), ("POST", 200)] {
        for (i, name) in overrides.iter().enumerate() {
            let marker = format!("override={method}-{i}-");
            let req = format!(
                "{method} /echo?{marker}x HTTP/1.1\r\nHost: x\r\n{name}: DELETE\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let ex = exchange(addr, req.as_bytes(), QUIET).await;
            assert_eq!(ex.statuses(), [expect], "{marker}: {}", ex.raw);
            let received = s.echo.received();
            let seen = seen_for(&received, &marker);
            assert_eq!(seen.len(), 1, "{marker}");
            assert_eq!(seen[0]["method"], method, "{marker}: the method authorized is the method forwarded");
            let leaked: Vec<&String> = seen[0]["headers"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.replace(['_', '.'], "-").contains("method"))
                .collect();
            assert!(leaked.is_empty(), "{marker}: an override the upstream could obey was forwarded: {leaked:?}");
        }
    }
    // The method the policy refuses stays refused, whatever the override says.
    let ex = exchange(
        addr,
        b"DELETE /echo?override=delete HTTP/1.1\r\nHost: x\r\nX-HTTP-Method-Override: GET\r\nConnection: close\r\n\r\n",
        QUIET,
    )
    .await;
    assert_eq!(ex.statuses(), [405]);
    assert!(seen_for(&s.echo.received(), "override=delete").is_empty());
}

/// Paths that are refused (400, nothing upstream) and paths that pass byte for byte.
const REFUSED_PATHS: [&str; 31] = [
    // Overlong UTF-8 for '/' and '.', and IIS-style %u escapes.
    "/echo/%c0%af",
    "/echo/%C0%AF",
    "/echo/%c0%ae%c0%ae",
    "/echo/%e0%80%af",
    "/echo/%f0%80%80%af",
    "/echo/%u002e%u002e",
    "/echo/%u2215",
    // Mixed-case and partial encodings of dots and separators.
    "/echo/%2E%2e",
    "/echo/.%2E",
    "/echo/%2e.",
    "/echo/a%2fb",
    "/echo/a%5Cb",
    "/echo/%252F",
    "/echo/%%32%66",
    "/echo/%2",
    "/echo/%",
    // Raw separators two parsers split differently.
    "/echo/a\\b",
    "/echo\\..\\private",
    "/echo/./",
    "/echo/a/..",
    "/echo//a",
    "////echo",
    "/echo/a;jsessionid=1",
    "/echo/%3B",
    // Unicode look-alikes of '.', '/', '\' and '%' that NFKC or "best fit" turn into them.
    "/echo/%e2%80%a4%e2%80%a4",
    "/echo/%ef%bc%8e%ef%bc%8e",
    "/echo/a%ef%bc%8f..%ef%bc%8fprivate",
    "/echo/a%e2%88%95b",
    "/echo/a%ef%bc%bcb",
    "/echo/%ef%bc%852e",
    "/echo/%e2%80%a5",
];

const PASSING_PATHS: [&str; 4] = ["/echo/%C3%A9t%C3%A9", "/echo/a%20b", "/echo/%E2%82%B9", "/echo/a-b.c_d~e"];

#[tokio::test]
async fn adversarial_path_normalisation_corpus() {
    let s = Adv::new().await;
    let addr = s.http();
    for path in PASSING_PATHS {
        let r = get_h1(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["target"], path, "forwarded byte for byte");
    }
    let before = s.echo.received().len();
    let runs = REFUSED_PATHS.iter().map(|path| async move {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        (*path, exchange(addr, req.as_bytes(), QUIET).await)
    });
    let mut wrong = Vec::new();
    for (path, ex) in futures_util::future::join_all(runs).await {
        if ex.statuses() != [400] {
            wrong.push(format!("{path}: {:?} {}", ex.statuses(), ex.raw.lines().next().unwrap_or_default()));
        }
    }
    // A fragment is not part of the target: whatever the parser keeps, the upstream sees no '#'.
    let ex = exchange(addr, b"GET /echo#/../private HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", QUIET).await;
    let fragment_ok = match ex.statuses().as_slice() {
        [400] => true,
        [200] => serde_json::from_slice::<serde_json::Value>(&ex.responses[0].body).unwrap()["target"] == "/echo",
        _ => false,
    };
    assert!(fragment_ok, "fragment: {}", ex.raw);
    // Very many segments: no route, or too long, never forwarded.
    let deep = format!("/echo{}", "/a".repeat(4000));
    assert!([404, 414].contains(&get_h1(addr, &deep).await.status));
    // The same corpus over HTTP/2, where no HTTP/1 parser stands in the way.
    let mut h = H2::open(addr, &[]).await;
    for (i, path) in REFUSED_PATHS.iter().enumerate() {
        let id = 2 * u32::try_from(i).unwrap() + 1;
        h.request(id, "GET", path, &[], true).await;
        let end = h.finish(id, Duration::from_secs(3)).await;
        if !(end.status == Some(400) || end.reset.is_some()) {
            wrong.push(format!("h2 {path}: {end:?}"));
        }
        if end.goaway.is_some() || end.closed {
            h = H2::open(addr, &[]).await;
        }
    }
    let after = s.echo.received();
    let leaked: Vec<&serde_json::Value> = after[before..].iter().filter(|r| r["target"] != "/echo").collect();
    assert!(leaked.is_empty(), "ambiguous paths reached the upstream: {leaked:?}");
    assert!(wrong.is_empty(), "not refused with 400:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn adversarial_identity_headers_in_every_spelling_never_reach_the_upstream() {
    let s = Adv::new().await;
    let addr = s.http();
    let spellings = [
        "X-Otpgate-Identity",
        "x-otpgate-identity",
        "X-OTPGATE-IDENTITY",
        "x_otpgate_identity",
        "X.Otpgate.Identity",
        "x-otpgate_identity",
        "X_Otpgate.IDENTITY",
        "x-otpgate-identity-extra",
        "X-User-Mobile",
        "x_user_id",
    ];
    let mut headers: String = spellings.iter().map(|n| format!("{n}: forged\r\n")).collect();
    headers.push_str("X-Otpgate-Identity: forged-again\r\nX-Kept: yes\r\n");
    let req = format!("GET /echo?ident=headers HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    let ex = exchange(addr, req.as_bytes(), QUIET).await;
    assert_eq!(ex.statuses(), [200], "{}", ex.raw);
    // In chunked trailers, which the gateway reads with the body.
    let trailers: String = spellings.iter().map(|n| format!("{n}: forged\r\n")).collect();
    let req = format!(
        "POST /echo?ident=trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Otpgate-Identity\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n{trailers}\r\n"
    );
    let ex = exchange(addr, req.as_bytes(), QUIET).await;
    assert_eq!(ex.statuses(), [200], "{}", ex.raw);
    let received = s.echo.received();
    let seen = seen_for(&received, "ident=");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["headers"]["x-kept"], serde_json::json!(["yes"]), "the control header passes");
    assert_eq!(seen[1]["body"], "hi");
    for r in seen {
        for name in r["headers"].as_object().unwrap().keys() {
            let norm = name.replace(['_', '.'], "-");
            assert!(
                !norm.starts_with("x-otpgate-") && !norm.starts_with("x-user") && norm != "trailer",
                "{name} reached the upstream: {r}"
            );
        }
    }
}
