//! Request heads no ordinary client sends: CR, LF and NUL in header names and values; heads,
//! targets and bodies over the limits; and clients that send them one byte at a time.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::h2wire::*;
use super::{Adv, exchange, read_until_quiet};
use crate::harness::*;

#[tokio::test]
async fn adversarial_cr_lf_nul_in_header_names_and_values_are_refused() {
    let s = Adv::new().await;
    s.control("crlf").await;
    let addr = s.http();
    let cases: [(&str, &[u8]); 11] = [
        ("value-nul", b"X-A: a\0b"),
        ("value-cr", b"X-A: a\rb"),
        ("value-cr-identity", b"X-A: a\rX-Otpgate-Identity: forged"),
        ("value-del", b"X-A: a\x7fb"),
        ("value-vt", b"X-A: a\x0bb"),
        ("name-cr", b"X\rA: b"),
        ("name-nul", b"X\0A: b"),
        ("name-space", b"X A: b"),
        ("name-empty", b": b"),
        ("name-non-ascii", b"X-\xc3\xa9: b"),
        ("name-trailing-space", b"X-Otpgate-Identity : forged"),
    ];
    let runs = cases.iter().map(|(case, line)| async move {
        let mut req = format!("GET /echo?hdr={case} HTTP/1.1\r\nHost: x\r\n").into_bytes();
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        (*case, exchange(addr, &req, Duration::from_millis(1500)).await)
    });
    for (case, ex) in futures_util::future::join_all(runs).await {
        assert_eq!(ex.statuses(), [400], "{case}: {}", ex.raw);
        assert!(ex.closed, "{case}: the connection is closed after a malformed head");
    }
    // A bare LF ends a header line for the gateway's parser: the line after it is a header of its
    // own, and an identity header there is removed like any other.
    let ex = exchange(
        addr,
        b"GET /echo?hdr=value-lf HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Otpgate-Identity: forged\r\nConnection: close\r\n\r\n",
        Duration::from_millis(1500),
    )
    .await;
    let lf_ok = match ex.statuses().as_slice() {
        [400] => true,
        [200] => {
            let seen: serde_json::Value = serde_json::from_slice(&ex.responses[0].body).unwrap();
            seen["headers"]["x-a"] == serde_json::json!(["a"]) && seen["headers"].get("x-otpgate-identity").is_none()
        }
        _ => false,
    };
    assert!(lf_ok, "value-lf: {}", ex.raw);
    let reached: Vec<String> =
        s.targets().into_iter().filter(|t| t.contains("hdr=") && !t.contains("value-lf")).collect();
    assert!(reached.is_empty(), "malformed heads reached the upstream: {reached:?}");
}

#[tokio::test]
async fn adversarial_oversized_heads_targets_and_bodies_never_reach_the_upstream() {
    let s = Adv::new().await;
    let addr = s.http();
    // At the limits, requests pass: 1 KiB of body, 100 headers, an 8 KiB target.
    let body = "a".repeat(1024);
    let ok = format!(
        "POST /echo?big=ok-body HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{body}"
    );
    assert_eq!(exchange(addr, ok.as_bytes(), Duration::from_secs(2)).await.statuses(), [200]);
    let target = format!("/echo?big=ok-uri&q={}", "x".repeat(8192 - "/echo?big=ok-uri&q=".len()));
    assert_eq!(get_h1(addr, &target).await.status, 200);
    assert_eq!(s.targets().iter().filter(|t| t.contains("big=ok-")).count(), 2);

    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, String, u16)> = vec![
        ("headers-count", format!("GET /echo?big=headers-count HTTP/1.1\r\nHost: x\r\n{many}\r\n"), 431),
        (
            "header-33k",
            format!("GET /echo?big=header-33k HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(33 << 10)),
            431,
        ),
        (
            "header-200k",
            format!("GET /echo?big=header-200k HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200 << 10)),
            431,
        ),
        ("uri-9k", format!("GET /echo?big=uri-9k&q={} HTTP/1.1\r\nHost: x\r\n\r\n", "x".repeat(9 << 10)), 414),
        // Beyond what hyper buffers for a head (64 KiB), it answers a bare 431 itself.
        ("uri-100k", format!("GET /echo?big=uri-100k&q={} HTTP/1.1\r\nHost: x\r\n\r\n", "x".repeat(100 << 10)), 431),
        (
            "body-1025",
            format!("POST /echo?big=body-1025 HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n{body}a"),
            413,
        ),
        // Declared, never sent: refused on the declaration, without waiting for a body.
        (
            "body-declared",
            "POST /echo?big=body-declared HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n".into(),
            413,
        ),
        (
            "body-chunked",
            format!(
                "POST /echo?big=body-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n{body}\r\n1\r\na\r\n0\r\n\r\n"
            ),
            413,
        ),
    ];
    let runs = cases.iter().map(|(case, req, want)| async move {
        let started = Instant::now();
        let ex = exchange(addr, req.as_bytes(), Duration::from_millis(1500)).await;
        (*case, *want, ex, started.elapsed())
    });
    for (case, want, ex, took) in futures_util::future::join_all(runs).await {
        let got = ex.statuses();
        // hyper answers a head it will not even buffer with a bare 431 or 414 (or closes).
        assert!(got == [want] || (got.is_empty() && ex.closed && case.ends_with("00k")), "{case}: {got:?} {}", ex.raw);
        assert!(took < Duration::from_secs(3), "{case}: answered after {took:?}");
    }
    // The same over HTTP/2.
    let mut h = H2::open(addr, &[]).await;
    let big = "a".repeat(40 << 10);
    h.request(1, "GET", "/echo?big=h2-header", &[(b"x-big", big.as_bytes())], true).await;
    let header = h.finish(1, Duration::from_secs(3)).await;
    let mut h = H2::open(addr, &[]).await;
    h.request(1, "GET", &format!("/echo?big=h2-uri&q={}", "x".repeat(9 << 10)), &[], true).await;
    assert_eq!(h.finish(1, Duration::from_secs(3)).await.status, Some(414));
    h.request(3, "POST", "/echo?big=h2-body", &[], false).await;
    h.send(&frame(DATA, 0, 3, body.as_bytes())).await;
    h.send(&frame(DATA, END_STREAM, 3, b"a")).await;
    let h2_body = h.finish(3, Duration::from_secs(3)).await;
    assert!(header.status == Some(431) || header.reset.is_some() || header.goaway.is_some(), "{header:?}");
    assert!(h2_body.status == Some(413) || h2_body.status == Some(400), "{h2_body:?}");
    let reached: Vec<String> =
        s.targets().into_iter().filter(|t| t.contains("big=") && !t.contains("big=ok-")).collect();
    assert!(reached.is_empty(), "oversized requests reached the upstream: {reached:?}");
}

/// Write `head` and then `drip` one byte every 100 ms until the gateway answers or hangs up;
/// return what it answered and when.
async fn trickle(addr: std::net::SocketAddr, head: &[u8], drip: &[u8]) -> (String, Duration) {
    let mut s = tcp(addr).await;
    s.write_all(head).await.unwrap();
    let started = Instant::now();
    for b in drip.iter().cycle().take(100) {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        // A response (or a close) ends the drip.
        let (got, closed) = read_until_quiet(&mut s, Duration::from_millis(100)).await;
        if closed || !got.is_empty() {
            let mut all = got;
            all.extend(read_until_quiet(&mut s, Duration::from_millis(300)).await.0);
            return (String::from_utf8_lossy(&all).into_owned(), started.elapsed());
        }
    }
    (String::new(), started.elapsed())
}

#[tokio::test]
async fn adversarial_slowloris_heads_and_bodies_are_cut_off() {
    let s = Adv::new().await;
    s.control("slowloris").await;
    let addr = s.http();
    let runs = [
        // A head that keeps coming, one byte at a time: `header_read` (1 s) bounds the whole head.
        trickle(addr, b"GET /echo?slow=head HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
        // A body of 1,000 declared bytes, trickled: the request timeout (2 s) bounds the body.
        trickle(addr, b"POST /echo?slow=body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", b"a"),
        // The same with one-byte chunks.
        trickle(
            addr,
            b"POST /echo?slow=chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\na\r\n",
        ),
        // An HTTP/2 preface that never completes.
        trickle(addr, b"PRI * HTTP/2.0\r\n", b"\r"),
    ];
    let [head, body, chunks, preface] = futures_util::future::join_all(runs).await.try_into().unwrap();
    assert!(head.1 < Duration::from_secs(3) && !head.0.contains(" 200 "), "head: {head:?}");
    for (name, (got, took)) in [("body", &body), ("chunks", &chunks)] {
        assert_eq!(raw_status(got), 408, "{name}: {got}");
        assert!(*took >= Duration::from_millis(1800) && *took < Duration::from_secs(4), "{name}: after {took:?}");
    }
    assert!(preface.1 < Duration::from_secs(5) && !preface.0.contains(" 200 "), "preface: {preface:?}");
    // HTTP/2: a body trickled in one-byte DATA frames.
    let mut h = H2::open(addr, &[]).await;
    h.request(1, "POST", "/echo?slow=h2-body", &[], false).await;
    let started = Instant::now();
    let mut end = None;
    while started.elapsed() < Duration::from_secs(6) {
        h.send(&frame(DATA, 0, 1, b"a")).await;
        let e = h.finish(1, Duration::from_millis(100)).await;
        if e.ended || e.closed || e.status.is_some() {
            end = Some(e);
            break;
        }
    }
    let end = end.expect("an HTTP/2 body trickled for 6 s was never cut off");
    assert_eq!(end.status, Some(408), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // HTTP/2: a header block that is never finished (no END_HEADERS, no CONTINUATION). There is no
    // stream yet, so the connection is idle: closed at `keep_alive` (3 s).
    let mut h = H2::open(addr, &[]).await;
    let block = request("GET", "/echo?slow=h2-head", &[]);
    h.send(&frame(HEADERS, END_STREAM, 1, &block)).await;
    let started = Instant::now();
    h.drain(Duration::from_secs(6)).await;
    assert!(h.eof && started.elapsed() < Duration::from_secs(5), "h2 head: open after {:?}", started.elapsed());
    let reached: Vec<String> = s.targets().into_iter().filter(|t| t.contains("slow=")).collect();
    assert!(reached.is_empty(), "trickled requests reached the upstream: {reached:?}");
}
