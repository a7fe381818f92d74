//! Issue 16 (faults): an upstream that keeps failing trips its circuit breaker (refused at once,
//! one probe when half open, closed again by the probe's success), and a request the upstream
//! dropped is never sent twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::foundation::GATEWAY;
use crate::harness::*;

#[derive(Clone, Copy)]
enum Mode {
    /// Answer 200 `ok` to each request.
    Answer,
    /// Read the request, then close the connection without a word.
    Hangup,
}

/// A raw HTTP/1.1 upstream on `listener`; counts the requests it read.
fn upstream(listener: TcpListener, mode: Mode) -> Arc<AtomicUsize> {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                if read_head(&mut sock).await.is_none() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                match mode {
                    Mode::Answer => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .await;
                    }
                    Mode::Hangup => drop(sock),
                }
            });
        }
    });
    seen
}

/// An address where nothing listens (yet).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn gateway(upstream: SocketAddr, breaker: &str) -> (tempfile::TempDir, Gateway) {
    let routes = format!(
        "upstreams:\n  flaky: {{url: 'http://{upstream}', breaker: {breaker}}}\nroutes:\n  - {{name: flaky, methods: [GET, POST], path: /flaky, access: public, upstream: flaky}}\n"
    );
    let dir = policy_dir(GATEWAY, &routes);
    let gw = Gateway::serve(dir.path(), &[]);
    (dir, gw)
}

async fn breaker_metrics(gw: &Gateway) -> (f64, f64) {
    let text = get_h1(gw.addr("admin"), "/metrics").await.text();
    let labels = [("upstream", "flaky")];
    (
        metric(&text, "otpgate_upstream_breaker_state", &labels),
        metric(&text, "otpgate_upstream_breaker_opened_total", &labels),
    )
}

#[tokio::test]
async fn a_failing_upstream_trips_its_breaker_and_one_probe_closes_it() {
    let addr = free_addr();
    let (_dir, gw) = gateway(addr, "{failures: 3, open_for: 400ms}");
    let http = gw.addr("http");
    for i in 0..3 {
        let r = get_h1(http, "/flaky").await;
        assert_eq!((r.status, r.error_code().as_str()), (502, "GWY5021"), "failure {i}: connection refused");
    }
    let r = get_h1(http, "/flaky").await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "GWY5034"), "open: refused at once");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(breaker_metrics(&gw).await, (1.0, 1.0));

    // The upstream comes back; while the breaker is open it is still not contacted.
    let seen = upstream(TcpListener::bind(addr).await.unwrap(), Mode::Answer);
    assert_eq!(get_h1(http, "/flaky").await.status, 503);
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing sent while open");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let probe = get_h1(http, "/flaky").await;
    assert_eq!((probe.status, probe.text().as_str()), (200, "ok"), "half open: the probe goes through");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(breaker_metrics(&gw).await, (0.0, 1.0), "closed again");
    assert_eq!(get_h1(http, "/flaky").await.status, 200);
    assert!(gw.stderr().contains("upstream circuit breaker opened"), "{}", gw.stderr());
}

#[tokio::test]
async fn a_breaker_with_zero_failures_never_opens() {
    let (_dir, gw) = gateway(free_addr(), "{failures: 0}");
    for _ in 0..8 {
        assert_eq!(get_h1(gw.addr("http"), "/flaky").await.status, 502);
    }
}

#[tokio::test]
async fn a_post_the_upstream_dropped_is_not_sent_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = upstream(listener, Mode::Hangup);
    let (_dir, gw) = gateway(addr, "{failures: 5}");
    let req = Request::post("/flaky")
        .header("host", "x")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"book":"seat"}"#)))
        .unwrap();
    let r = h1(tcp(gw.addr("http")).await, req).await;
    assert_eq!(r.status, 502, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1, "sent once, never retried");
}
