//! HTTP/2 abuse over h2c prior knowledge, frame by frame ([`super::h2wire`]): rapid reset,
//! CONTINUATION and empty-DATA floods, more streams than allowed, a window that never opens,
//! and requests that HTTP/2 forbids (injected CR/LF/NUL, uppercase or connection-specific
//! names, a lying `content-length`), plus identity headers in trailers.

use std::time::{Duration, Instant};

use super::Adv;
use super::h2wire::*;
use crate::harness::*;

/// Memory a flood may add to the gateway's peak RSS.
const RSS_SLACK: u64 = 48 << 20;

/// Another client is served promptly while (or right after) an attack runs.
async fn others_are_served(s: &Adv, marker: &str) {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(3), get_h1(s.http(), &format!("/echo?other={marker}")))
        .await
        .expect("another client waited more than 3 s");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut h = H2::open(s.http(), &[]).await;
    h.request(1, "GET", &format!("/echo?other-h2={marker}"), &[], true).await;
    let end = h.finish(1, Duration::from_secs(3)).await;
    assert_eq!(end.status, Some(200), "another HTTP/2 client: {end:?}");
}

fn count(s: &Adv, marker: &str) -> usize {
    s.targets().iter().filter(|t| t.contains(marker)).count()
}

#[tokio::test]
async fn adversarial_h2_plain_request_control() {
    // The raw client itself works: a request, its answer and what the upstream saw.
    let s = Adv::new().await;
    let mut h = H2::open(s.http(), &[]).await;
    h.request(1, "GET", "/echo?h2=control", &[(b"x-plain", b"yes")], true).await;
    let end = h.finish(1, Duration::from_secs(3)).await;
    assert_eq!(end.status, Some(200), "{end:?}");
    let seen: serde_json::Value = serde_json::from_slice(&end.body).unwrap();
    assert_eq!(seen["target"], "/echo?h2=control");
    assert_eq!(seen["headers"]["x-plain"], serde_json::json!(["yes"]));
    h.request(3, "GET", "/nope", &[], true).await;
    assert_eq!(h.finish(3, Duration::from_secs(3)).await.status, Some(404));
    h.request(5, "DELETE", "/echo", &[], true).await;
    assert_eq!(h.finish(5, Duration::from_secs(3)).await.status, Some(405), "a Huffman-coded status");
}

#[tokio::test]
async fn adversarial_h2_rapid_reset_is_cut_off_with_goaway_and_bounded() {
    let s = Adv::new().await;
    s.control("rapid-reset").await;
    let rss = s.gw.peak_rss();
    let mut h = H2::open(s.http(), &[]).await;
    const STREAMS: u32 = 5_000;
    let mut burst = Vec::new();
    for i in 0..STREAMS {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &request("GET", &format!("/echo?rr={i}"), &[])));
        burst.extend(rst_stream(id, CANCEL));
    }
    let started = Instant::now();
    for piece in burst.chunks(64 << 10) {
        if !h.send(piece).await {
            break;
        }
    }
    h.drain(Duration::from_secs(2)).await;
    let goaway = h.goaway.clone();
    let code = goaway.as_ref().and_then(Frame::error_code);
    assert_eq!(code, Some(ENHANCE_YOUR_CALM), "the connection survived {STREAMS} rapid resets (eof: {})", h.eof);
    assert!(started.elapsed() < Duration::from_secs(8));
    let reached = count(&s, "rr=");
    assert!(reached < 200, "{reached} of {STREAMS} reset requests reached the upstream (goaway: {goaway:?})");
    others_are_served(&s, "rapid-reset").await;
    let grown = s.gw.peak_rss().saturating_sub(rss);
    assert!(grown < RSS_SLACK, "peak RSS grew by {} MiB", grown >> 20);
}

#[tokio::test]
async fn adversarial_h2_continuation_floods_are_cut_off() {
    let s = Adv::new().await;
    s.control("continuation").await;
    let rss = s.gw.peak_rss();
    // A HEADERS without END_HEADERS, then CONTINUATION frames that never end it: full ones (the
    // header list grows) and empty ones (it does not, only the frame count does).
    for (variant, piece_len) in [("full", 16_000usize), ("empty", 0)] {
        let mut h = H2::open(s.http(), &[]).await;
        let first = request("GET", &format!("/echo?flood={variant}"), &[]);
        h.send(&frame(HEADERS, END_STREAM, 1, &first)).await;
        let piece =
            if piece_len == 0 { Vec::new() } else { hpack(&[(b"x-flood", "a".repeat(piece_len - 20).as_bytes())]) };
        let one = frame(CONTINUATION, 0, 1, &piece);
        let started = Instant::now();
        let mut sent = 0usize;
        let mut cut = false;
        // Up to 64 MiB (full) or a million frames (empty), or until the gateway hangs up.
        for _ in 0..if piece_len == 0 { 1_000_000 / 256 } else { 4096 / 16 } {
            let batch: Vec<u8> =
                one.iter().copied().cycle().take(one.len() * if piece_len == 0 { 256 } else { 16 }).collect();
            match tokio::time::timeout(Duration::from_secs(5), h.send(&batch)).await {
                Ok(true) => sent += batch.len(),
                _ => {
                    cut = true;
                    break;
                }
            }
        }
        if !cut {
            h.drain(Duration::from_secs(2)).await;
            cut = h.eof || h.goaway.is_some();
        }
        assert!(cut, "{variant}: {sent} bytes of CONTINUATION accepted without the connection being cut");
        // What the gateway read, plus what loopback socket buffers hold.
        assert!(sent < 8 << 20, "{variant}: {sent} bytes accepted before the cut");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(count(&s, &format!("flood={variant}")), 0, "{variant}: a flooded request reached the upstream");
    }
    others_are_served(&s, "continuation").await;
    let grown = s.gw.peak_rss().saturating_sub(rss);
    assert!(grown < RSS_SLACK, "peak RSS grew by {} MiB", grown >> 20);
}

#[tokio::test]
async fn adversarial_h2_empty_data_flood_is_cut_off() {
    let s = Adv::new().await;
    s.control("empty-data").await;
    let rss = s.gw.peak_rss();
    let mut h = H2::open(s.http(), &[]).await;
    h.request(1, "POST", "/echo?empty-data=1", &[], false).await;
    let empty = frame(DATA, 0, 1, &[]);
    let batch: Vec<u8> = empty.iter().copied().cycle().take(empty.len() * 10_000).collect();
    let started = Instant::now();
    // 300,000 empty DATA frames, as fast as the gateway takes them. h2 counts small DATA frames
    // and ends such a connection (GOAWAY ENHANCE_YOUR_CALM); failing that, the request timeout
    // (2 s) would answer 408.
    for _ in 0..30 {
        match tokio::time::timeout(Duration::from_secs(3), h.send(&batch)).await {
            Ok(true) if started.elapsed() < Duration::from_secs(4) => {}
            _ => break,
        }
    }
    let end = h.finish(1, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(
        end.status == Some(408) || end.goaway == Some(ENHANCE_YOUR_CALM),
        "the stream was neither answered 408 nor the connection calmed: {end:?}"
    );
    assert!(took < Duration::from_secs(8), "cut off after {took:?}");
    assert_eq!(count(&s, "empty-data=1"), 0, "a body that never ended was forwarded");
    others_are_served(&s, "empty-data").await;
    let grown = s.gw.peak_rss().saturating_sub(rss);
    assert!(grown < RSS_SLACK, "peak RSS grew by {} MiB", grown >> 20);
}

#[tokio::test]
async fn adversarial_h2_streams_beyond_the_limit_are_refused() {
    let s = Adv::new().await;
    let mut h = H2::open(s.http(), &[]).await;
    // 100 streams are allowed (`http2.max_concurrent_streams`); each waits 1.5 s upstream.
    const OPEN: u32 = 130;
    let mut burst = Vec::new();
    for i in 0..OPEN {
        burst.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            2 * i + 1,
            &request("GET", &format!("/echo?sleep_ms=1500&many={i}"), &[]),
        ));
    }
    h.send(&burst).await;
    let mut ok = 0;
    let mut refused = 0;
    let mut other = Vec::new();
    for i in 0..OPEN {
        let end = h.finish(2 * i + 1, Duration::from_secs(6)).await;
        match (end.status, end.reset) {
            (Some(200), None) => ok += 1,
            (None, Some(REFUSED_STREAM)) => refused += 1,
            _ => other.push((i, end)),
        }
    }
    assert!(other.is_empty(), "streams neither answered nor refused: {other:?}");
    assert_eq!((ok, refused), (100, OPEN - 100), "served and refused streams");
    assert_eq!(count(&s, "many="), 100, "only the streams allowed reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_h2_a_window_that_never_opens_holds_no_large_buffers() {
    let s = Adv::new().await;
    s.control("zero-window").await;
    let rss = s.gw.peak_rss();
    // The client grants no flow-control window to streams and never sends WINDOW_UPDATE, while
    // every answer is 1 MiB: 48 MiB the gateway must not buffer.
    let mut h = H2::open(s.http(), &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
    const STREAMS: u32 = 48;
    for i in 0..STREAMS {
        h.request(2 * i + 1, "GET", &format!("/echo?pad=1048576&zw={i}"), &[], true).await;
    }
    let mut data = 0usize;
    let mut answered = 0;
    let mut statuses = Vec::new();
    let waited = Instant::now();
    while answered < STREAMS && waited.elapsed() < Duration::from_secs(6) {
        let Some(f) = h.next(Duration::from_millis(500)).await else { continue };
        match f.kind {
            DATA => data += f.payload.len(),
            HEADERS => {
                answered += 1;
                statuses.push(status(&f.payload));
            }
            _ => {}
        }
    }
    // A moment more for DATA that should not come.
    while let Some(f) = h.next(Duration::from_millis(300)).await {
        if f.kind == DATA {
            data += f.payload.len();
        }
    }
    assert_eq!(data, 0, "DATA was sent without a window");
    assert_eq!(answered, STREAMS, "every response head arrived (heads need no window)");
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    assert_eq!(count(&s, "zw="), STREAMS as usize, "every request was forwarded");
    others_are_served(&s, "zero-window").await;
    let grown = s.gw.peak_rss().saturating_sub(rss);
    assert!(grown < 32 << 20, "peak RSS grew by {} MiB with 48 MiB of answers held back", grown >> 20);
    // Once the window opens, the answer flows: the stall was flow control, not a lost stream.
    h.send(&window_update(1, 2 << 20)).await;
    h.send(&window_update(0, 2 << 20)).await;
    let end = h.finish(1, Duration::from_secs(5)).await;
    assert!(end.ended && end.body.len() > 1 << 20, "stream 1 after WINDOW_UPDATE: {} bytes", end.body.len());
    // The other answers still wait for a window. After `timeouts.request` (2 s) without the
    // client taking any of them, the connection is closed, and with it the upstream connections
    // behind the stalled answers — even though the client keeps answering PINGs.
    let waited = Instant::now();
    h.drain(Duration::from_secs(6)).await;
    assert!(h.eof, "a connection whose answers never move was kept open");
    assert!(waited.elapsed() < Duration::from_secs(5), "closed after {:?}", waited.elapsed());
    let text = get_h1(s.gw.addr("admin"), "/metrics").await.text();
    assert_eq!(metric(&text, "otpgate_connections_stalled_closed_total", &[]), 1.0, "counted");
}

#[tokio::test]
async fn adversarial_answers_taken_promptly_keep_their_connection() {
    // The guard against stalled answers must not close connections whose answers were taken:
    // idle for longer than `timeouts.request` (1 s here), shorter than `keep_alive` and (for
    // HTTP/1.1, which waits for the next head that long) `header_read`, they serve the next
    // request.
    let gateway = super::GATEWAY
        .replace("header_read: 1s", "header_read: 5s")
        .replace("request: 2s", "request: 1s")
        .replace("keep_alive: 3s", "keep_alive: 6s");
    let s = Adv::with_gateway(&gateway).await;
    let io = hyper_util::rt::TokioIo::new(tcp(s.http()).await);
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut h = H2::open(s.http(), &[]).await;
    for round in 0..2u32 {
        let req = http::Request::get(format!("/echo?pad=200000&keep={round}"))
            .header("host", "x")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        send.ready().await.expect("the HTTP/1.1 connection is still open");
        let resp = send.send_request(req).await.expect("the HTTP/1.1 connection is still open");
        assert_eq!(resp.status(), 200);
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        assert!(body.len() > 200_000);
        h.request(2 * round + 1, "GET", &format!("/echo?pad=20000&keep-h2={round}"), &[], true).await;
        let end = h.finish(2 * round + 1, Duration::from_secs(3)).await;
        assert_eq!(end.status, Some(200), "the HTTP/2 connection is still open: {end:?}");
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(2600)).await;
        }
    }
    let text = get_h1(s.gw.addr("admin"), "/metrics").await.text();
    assert_eq!(metric(&text, "otpgate_connections_stalled_closed_total", &[]), 0.0, "none closed");
}

#[tokio::test]
async fn adversarial_h2_forbidden_requests_never_reach_the_upstream() {
    let s = Adv::new().await;
    let mut h = H2::open(s.http(), &[]).await;
    h.request(1, "GET", "/echo?forbidden=control", &[], true).await;
    assert_eq!(h.finish(1, Duration::from_secs(3)).await.status, Some(200));
    assert_eq!(count(&s, "forbidden=control"), 1);
    let cases: [(&str, &[u8], &[u8]); 10] = [
        ("value-crlf", b"x-a", b"a\r\nx-otpgate-identity: forged"),
        ("value-lf", b"x-a", b"a\nb"),
        ("value-nul", b"x-a", b"a\0b"),
        ("name-upper", b"X-Otpgate-Identity", b"forged"),
        ("name-colon", b"x-a:b", b"c"),
        ("name-space", b"x a", b"c"),
        ("connection", b"connection", b"keep-alive"),
        ("transfer-encoding", b"transfer-encoding", b"chunked"),
        ("te-gzip", b"te", b"gzip"),
        ("upgrade", b"upgrade", b"websocket"),
    ];
    for (i, (case, name, value)) in cases.iter().enumerate() {
        // A fresh connection each, since a malformed block may end the whole connection.
        let mut h = H2::open(s.http(), &[]).await;
        h.request(1, "GET", &format!("/echo?forbidden={case}"), &[(*name, *value)], true).await;
        let end = h.finish(1, Duration::from_secs(3)).await;
        assert!(
            end.status.is_none_or(|st| st == 400)
                && (end.reset.is_some() || end.goaway.is_some() || end.status == Some(400)),
            "{i} {case}: {end:?}"
        );
        assert_eq!(count(&s, &format!("forbidden={case}")), 0, "{case} reached the upstream");
    }
    // A content-length that does not match the DATA sent: the HTTP/2 twin of CL smuggling.
    for (case, declared, sent) in [("cl-short", "2", "hello"), ("cl-long", "50", "hello")] {
        let mut h = H2::open(s.http(), &[]).await;
        let block = request("POST", &format!("/echo?forbidden={case}"), &[(b"content-length", declared.as_bytes())]);
        h.send(&frame(HEADERS, END_HEADERS, 1, &block)).await;
        h.send(&frame(DATA, END_STREAM, 1, sent.as_bytes())).await;
        let end = h.finish(1, Duration::from_secs(4)).await;
        assert!(end.status != Some(200), "{case}: {end:?}");
        assert_eq!(count(&s, &format!("forbidden={case}")), 0, "{case} reached the upstream");
    }
}

#[tokio::test]
async fn adversarial_h2_identity_headers_in_headers_or_trailers_never_reach_the_upstream() {
    let s = Adv::new().await;
    let mut h = H2::open(s.http(), &[]).await;
    let spoofs: [(&[u8], &[u8]); 4] = [
        (b"x-otpgate-identity", b"forged"),
        (b"x_otpgate_identity", b"forged"),
        (b"x.otpgate.identity", b"forged"),
        (b"x-user-mobile", b"9000000002"),
    ];
    let mut extra = spoofs.to_vec();
    extra.push((b"x-otpgate-identity", b"forged-twice"));
    extra.push((b"x-kept", b"yes"));
    h.request(1, "GET", "/echo?spoof=headers", &extra, true).await;
    let end = h.finish(1, Duration::from_secs(3)).await;
    assert_eq!(end.status, Some(200), "{end:?}");
    // Trailers after a body: HEADERS, DATA, then a trailer block ending the stream.
    let block = request("POST", "/echo?spoof=trailers", &[]);
    h.send(&frame(HEADERS, END_HEADERS, 3, &block)).await;
    h.send(&frame(DATA, 0, 3, b"hi")).await;
    h.send(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &hpack(&spoofs))).await;
    let end = h.finish(3, Duration::from_secs(3)).await;
    assert_eq!(end.status, Some(200), "{end:?}");
    let received = s.echo.received();
    let seen: Vec<&serde_json::Value> =
        received.iter().filter(|r| r["target"].as_str().is_some_and(|t| t.contains("spoof="))).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["headers"]["x-kept"], serde_json::json!(["yes"]), "ordinary headers pass");
    assert_eq!(seen[1]["body"], "hi", "the body passes");
    for r in seen {
        let names: Vec<&String> = r["headers"].as_object().unwrap().keys().collect();
        for n in &names {
            let norm = n.replace(['_', '.'], "-");
            assert!(!norm.starts_with("x-otpgate-") && !norm.starts_with("x-user"), "{n} reached the upstream: {r}");
        }
    }
}
