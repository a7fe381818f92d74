//! Issue 16, item 1: the gateway under attack, over raw sockets, where an ordinary client would
//! have normalised the request. Every test asserts what reached the upstream (the recording
//! [`Echo`]), not only the status, and first shows that the same upstream does see a normal
//! request, so "the upstream saw nothing" can fail.
//!
//! - `smuggling`: Content-Length / Transfer-Encoding disagreements, chunk sizes and extensions;
//! - `heads`: CR/LF/NUL in header names and values, obs-fold, oversized heads, URIs and bodies,
//!   slowloris on headers and bodies;
//! - `http2`: hand-written frames ([`h2wire`]): rapid reset, CONTINUATION and empty-DATA floods,
//!   stream and window exhaustion, header injection and trailers;
//! - `targets`: absolute- and authority-form targets, `Host`, TRACE/CONNECT, method overrides, a
//!   path-normalisation corpus, identity-header spoofing in every spelling.

mod h2wire;
mod heads;
mod http2;
mod smuggling;
mod targets;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::foundation::routes;
use crate::harness::upstream::Echo;
use crate::harness::*;

/// Short timeouts, so each attack is cut off within seconds: headers 1 s, a request body 2 s.
pub const GATEWAY: &str = "gateway:
  timeouts:
    header_read: 1s
    upstream_connect: 500ms
    route: 2s
    request: 2s
    keep_alive: 3s
    drain: 5s
  limits:
    citizen_body: 1KiB
citizens:
  otp:
    delivery: {outbox: {path: otp-outbox.jsonl}}
";

/// A gateway (`serve`, plain listener: HTTP/1.1 and h2c) in front of a recording echo upstream.
/// Routes are `foundation::routes`: `GET|POST /echo`, `GET /echo/{id}`, `GET /slow` (5 s), a
/// citizen route `/private`, …
pub struct Adv {
    pub gw: Gateway,
    pub echo: Echo,
    _dir: tempfile::TempDir,
}

impl Adv {
    pub async fn new() -> Adv {
        Adv::with_gateway(GATEWAY).await
    }

    /// The same with another `gateway.yaml`.
    pub async fn with_gateway(gateway: &str) -> Adv {
        let echo = Echo::start().await;
        let dir = policy_dir(gateway, &routes(""));
        let test = format!("test={}", echo.url());
        let gw = Gateway::serve(dir.path(), &["--upstream", &test]);
        Adv { gw, echo, _dir: dir }
    }

    pub fn http(&self) -> SocketAddr {
        self.gw.addr("http")
    }

    /// Request targets the upstream has received, in order.
    pub fn targets(&self) -> Vec<String> {
        self.echo.received().iter().map(|r| r["target"].as_str().unwrap_or_default().to_string()).collect()
    }

    /// The control: a plain request reaches the upstream and is recorded there, so an empty
    /// record later means the gateway held something back, not that recording is broken.
    pub async fn control(&self, marker: &str) {
        let target = format!("/echo?control={marker}");
        let r = get_h1(self.http(), &target).await;
        assert_eq!(r.status, 200, "control request");
        assert!(self.targets().contains(&target), "the upstream records what it receives: {:?}", self.targets());
    }
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What came back on a raw connection: the responses in order, and whether the gateway closed
/// the connection (rather than keeping it open for more requests).
#[derive(Debug)]
pub struct Exchange {
    pub responses: Vec<RawResp>,
    pub closed: bool,
    pub raw: String,
}

impl Exchange {
    pub fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|r| r.status).collect()
    }
}

/// Write `bytes` on a new connection (a write the gateway cuts short is not an error) and read
/// until the gateway closes it or stays quiet for `quiet`.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> Exchange {
    let mut s = tcp(addr).await;
    let _ = s.write_all(bytes).await;
    let (buf, closed) = read_until_quiet(&mut s, quiet).await;
    let responses = parse_responses(&buf);
    Exchange { responses, closed, raw: String::from_utf8_lossy(&buf).into_owned() }
}

/// Read until EOF (or a reset: `true`) or until nothing arrives for `quiet` (`false`).
pub async fn read_until_quiet(s: &mut tokio::net::TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        match tokio::time::timeout(quiet, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (buf, true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (buf, false),
        }
    }
}

/// Split a byte stream into HTTP/1.1 responses (Content-Length or chunked bodies).
pub fn parse_responses(mut buf: &[u8]) -> Vec<RawResp> {
    let mut out = Vec::new();
    while let Some(end) = find(buf, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let lower = head.to_ascii_lowercase();
        let mut rest = &buf[end + 4..];
        let body;
        if let Some(len) =
            lower.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok())
        {
            let len = len.min(rest.len());
            body = rest[..len].to_vec();
            rest = &rest[len..];
        } else if lower.contains("transfer-encoding: chunked") {
            let mut b = Vec::new();
            while let Some(line_end) = find(rest, b"\r\n") {
                let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16).unwrap_or(0);
                rest = &rest[line_end + 2..];
                if size == 0 {
                    rest = rest.get(2..).unwrap_or_default();
                    break;
                }
                let take = size.min(rest.len());
                b.extend_from_slice(&rest[..take]);
                rest = rest.get(take + 2..).unwrap_or_default();
            }
            body = b;
        } else {
            body = rest.to_vec();
            rest = &[];
        }
        out.push(RawResp { status, body });
        buf = rest;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
