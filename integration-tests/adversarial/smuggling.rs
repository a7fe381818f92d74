//! Request smuggling: framing that two HTTP parsers could read differently. The gateway must
//! refuse it (400, or close the connection), or read it one way and send the upstream one
//! request framed by itself — never a second request hidden in a body.

use std::time::Duration;

use super::{Adv, exchange};

/// What the gateway must do with one framing.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// A 400 (or no answer at all), the connection closed, nothing upstream.
    Refused,
    /// Exactly one request upstream, carrying this body, framed by the gateway (a
    /// `Content-Length`, or none for an empty body; no `Transfer-Encoding`); then the connection is closed, so whatever
    /// followed is never read as a request (RFC 9112 §6.1 for Content-Length with
    /// Transfer-Encoding).
    OneThenClosed(String),
    /// Exactly one request upstream with this body, framed by the gateway.
    One(String),
}
use Expect::*;

/// A complete second request, hidden where another parser would read it as a request: it names
/// a real route, so were the gateway to read it, the upstream would record it.
fn smuggled(case: &str) -> String {
    format!("GET /echo/smuggled?case={case} HTTP/1.1\r\nHost: x\r\n\r\n")
}

fn post(case: &str, version: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("POST /echo?case={case} {version}\r\nHost: x\r\n{headers}\r\n{body}").into_bytes()
}

fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let s = smuggled;
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n0\r\n\r\n", data.len());
    // A body that is empty when read as chunked and a whole request when read by length.
    let zero_then = |case: &str| format!("0\r\n\r\n{}", s(case));
    let cl_te = |case: &'static str, te: &str, expect: Expect| {
        let body = zero_then(case);
        (case, post(case, "HTTP/1.1", &format!("Content-Length: {}\r\n{te}", body.len()), &body), expect)
    };
    let te = |case: &'static str, body: String, expect: Expect| {
        (case, post(case, "HTTP/1.1", "Transfer-Encoding: chunked\r\n", &body), expect)
    };
    let cl = |case: &'static str, value: String, expect: Expect| {
        (case, post(case, "HTTP/1.1", &format!("Content-Length: {value}\r\n"), &s(case)), expect)
    };
    let n = |case: &str| s(case).len();
    vec![
        // Content-Length and Transfer-Encoding together, in both orders and odd spellings.
        cl_te("cl-te", "Transfer-Encoding: chunked\r\n", OneThenClosed(String::new())),
        {
            let body = zero_then("te-cl");
            let headers = format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n", body.len());
            ("te-cl", post("te-cl", "HTTP/1.1", &headers, &body), OneThenClosed(String::new()))
        },
        {
            // By length (4) the body is just the chunk-size line and the hidden request follows;
            // by chunks the hidden request is the body's data.
            let body = chunk(&s("cl-te-data"));
            (
                "cl-te-data",
                post("cl-te-data", "HTTP/1.1", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &body),
                OneThenClosed(s("cl-te-data")),
            )
        },
        cl_te("te-extra-space", "Transfer-Encoding:   chunked\r\n", OneThenClosed(String::new())),
        cl_te("te-tab", "Transfer-Encoding:\tchunked\r\n", OneThenClosed(String::new())),
        cl_te("te-upper", "Transfer-Encoding: CHUNKED\r\n", OneThenClosed(String::new())),
        cl_te(
            "te-second-line",
            "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
            OneThenClosed(String::new()),
        ),
        cl_te("te-chunked-identity", "Transfer-Encoding: chunked, identity\r\n", Refused),
        cl_te("te-second-line-identity", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", Refused),
        cl_te("te-xchunked", "Transfer-Encoding: xchunked\r\n", Refused),
        cl_te("te-chunked-x", "Transfer-Encoding: chunked-x\r\n", Refused),
        cl_te("te-quoted", "Transfer-Encoding: \"chunked\"\r\n", Refused),
        cl_te("te-obs-fold", "Transfer-Encoding:\r\n Chunked\r\n", Refused),
        cl_te("te-obs-fold-tab", "Transfer-Encoding: identity\r\n\tchunked\r\n", Refused),
        cl_te("te-space-before-colon", "Transfer-Encoding : chunked\r\n", Refused),
        cl_te("te-nul", "Transfer-Encoding: chunked\0\r\n", Refused),
        // Other spellings of the framing headers are no framing for the gateway's parser: the body
        // is read by Content-Length, and the look-alike must not reach an upstream that reads
        // `_` as `-` (CGI and WSGI do: both become HTTP_TRANSFER_ENCODING).
        {
            let headers = format!("Content-Length: {}\r\nTransfer_Encoding: chunked\r\n", n("te-underscore"));
            ("te-underscore", post("te-underscore", "HTTP/1.1", &headers, &s("te-underscore")), One(s("te-underscore")))
        },
        {
            let headers = format!("Content-Length: {}\r\nTransfer.Encoding: chunked\r\n", n("te-dot"));
            ("te-dot", post("te-dot", "HTTP/1.1", &headers, &s("te-dot")), One(s("te-dot")))
        },
        {
            let headers = format!("Content-Length: {}\r\nContent_Length: 0\r\n", n("cl-underscore"));
            ("cl-underscore", post("cl-underscore", "HTTP/1.1", &headers, &s("cl-underscore")), One(s("cl-underscore")))
        },
        {
            let body = zero_then("te-http10");
            let headers = format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", body.len());
            ("te-http10", post("te-http10", "HTTP/1.0", &headers, &body), Refused)
        },
        // Content-Length alone, malformed or repeated.
        {
            let headers = format!("Content-Length: 0\r\nContent-Length: {}\r\n", n("cl-cl-differ"));
            ("cl-cl-differ", post("cl-cl-differ", "HTTP/1.1", &headers, &s("cl-cl-differ")), Refused)
        },
        cl("cl-list", format!("{0}, {0}", n("cl-list")), Refused),
        cl("cl-list-differ", format!("0, {}", n("cl-list-differ")), Refused),
        cl("cl-plus", format!("+{}", n("cl-plus")), Refused),
        cl("cl-minus", "-1".into(), Refused),
        cl("cl-hex", format!("0x{:x}", n("cl-hex")), Refused),
        cl("cl-inner-space", "4 5".into(), Refused),
        cl("cl-empty", String::new(), Refused),
        cl("cl-overflow", "99999999999999999999999".into(), Refused),
        // Chunk sizes and extensions.
        te("chunk-negative", format!("-1\r\n{}", s("chunk-negative")), Refused),
        te("chunk-overflow", format!("1ffffffffffffffff\r\n{}", s("chunk-overflow")), Refused),
        te("chunk-0x", format!("0x2d\r\n{}", s("chunk-0x")), Refused),
        te("chunk-leading-space", format!(" 5\r\nhello\r\n0\r\n\r\n{}", s("chunk-leading-space")), Refused),
        te("chunk-empty-size", format!("\r\nhello\r\n0\r\n\r\n{}", s("chunk-empty-size")), Refused),
        te("chunk-ext-lf", format!("5;a\nb\r\nhello\r\n0\r\n\r\n{}", s("chunk-ext-lf")), Refused),
        te("chunk-data-overrun", format!("5\r\nhelloEXTRA\r\n0\r\n\r\n{}", s("chunk-data-overrun")), Refused),
        te("chunk-ext-junk", "5;a=\"b;c\";;=x\r\nhello\r\n0;y\r\n\r\n".into(), One("hello".into())),
        te("chunk-trailing-space", "5 \r\nhello\r\n0\r\n\r\n".into(), One("hello".into())),
        te("chunk-upper-hex", "A\r\n0123456789\r\n0\r\n\r\n".into(), One("0123456789".into())),
        // obs-fold in any header.
        (
            "obs-fold-other",
            post(
                "obs-fold-other",
                "HTTP/1.1",
                &format!("X-Note: a\r\n folded\r\nContent-Length: {}\r\n", n("obs-fold-other")),
                &s("obs-fold-other"),
            ),
            Refused,
        ),
    ]
}

#[tokio::test]
async fn adversarial_smuggling_corpus_never_puts_a_second_request_upstream() {
    let s = Adv::new().await;
    s.control("smuggling").await;
    let addr = s.http();
    let corpus = corpus();
    let runs = corpus.iter().map(|(case, bytes, _)| {
        let bytes = bytes.clone();
        async move { (*case, exchange(addr, &bytes, Duration::from_millis(1500)).await) }
    });
    let results = futures_util::future::join_all(runs).await;
    let received = s.echo.received();
    let mut wrong = Vec::new();
    for ((case, _, expect), (_, ex)) in corpus.iter().zip(&results) {
        let upstream: Vec<&serde_json::Value> = received
            .iter()
            .filter(|r| {
                let t = r["target"].as_str().unwrap_or_default();
                t.ends_with(&format!("case={case}"))
            })
            .collect();
        let targets: Vec<&str> = upstream.iter().map(|r| r["target"].as_str().unwrap_or_default()).collect();
        let ok = match expect {
            Refused => {
                upstream.is_empty() && ex.closed && ex.statuses().iter().all(|s| *s == 400) && ex.responses.len() <= 1
            }
            OneThenClosed(body) | One(body) => {
                let one = upstream.len() == 1 && targets == [format!("/echo?case={case}")];
                let framed = upstream.first().is_some_and(|r| {
                    // No framing header in another spelling either.
                    let spelled = |want: &str| {
                        r["headers"].as_object().unwrap().keys().filter(|k| k.replace(['_', '.'], "-") == want).count()
                    };
                    r["body"] == body.as_str()
                        && spelled("transfer-encoding") == 0
                        && spelled("content-length") <= 1
                        && (r["headers"]["content-length"] == serde_json::json!([body.len().to_string()])
                            || (body.is_empty() && r["headers"].get("content-length").is_none()))
                });
                let closed = !matches!(expect, OneThenClosed(_)) || ex.closed;
                one && framed && closed && ex.statuses() == [200]
            }
        };
        if !ok {
            wrong.push(format!(
                "{case}: expected {expect:?}; client got {:?} (closed: {}); upstream got {:?}\n  {}",
                ex.statuses(),
                ex.closed,
                upstream,
                ex.raw.lines().next().unwrap_or_default()
            ));
        }
    }
    let smuggled: Vec<String> = s.targets().into_iter().filter(|t| t.contains("smuggled")).collect();
    assert!(smuggled.is_empty(), "a hidden request reached the upstream: {smuggled:?}");
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), corpus.len(), wrong.join("\n"));
}
