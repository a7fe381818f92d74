//! Fail-closed redaction of upstream answers.
//!
//! Small bodies (citizen answers, partner searches) are read, decoded and redacted whole. Large
//! ones (the partner export) are redacted as they flow: a task reads the upstream body, decodes it
//! (identity, gzip, deflate, br), redacts it chunk by chunk and hands the output to the client
//! through a bounded channel, so memory does not grow with the body. A body that is not JSON, is
//! malformed, too large or in an encoding that cannot be decoded is never released: before the
//! first byte it is a 502; after it, the stream is aborted so a truncated document cannot look
//! complete.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};

use crate::app::Runtime;
use crate::body::{Body, BoxError, full};
use crate::error::GatewayError;
use crate::redact::{DecodeLimits, Limits, Profile, Redactor, Report};

/// Largest body redacted whole; larger or unknown-length bodies stream.
pub const MAX_BUFFERED: u64 = 8 << 20;
/// Output chunk handed to the client while streaming.
const CHUNK: usize = 64 << 10;

fn bad_upstream(why: &str) -> GatewayError {
    tracing::warn!(reason = why, "upstream body refused by redaction");
    GatewayError::UpstreamBadResponse
}

/// Is the upstream's content type JSON (`application/json`, `…+json`)?
pub fn is_json(headers: &http::HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    })
}

fn encoding(headers: &http::HeaderMap) -> Result<Option<String>, GatewayError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_string())).map_err(|_| bad_upstream("content-encoding")),
    }
}

/// Read a whole JSON body, decoding it, within `max` decoded bytes and `deadline` (an upstream
/// that trickles its body must not hold the request: 504).
pub async fn read_json(
    resp: Response<Incoming>,
    max: u64,
    deadline: std::time::Duration,
) -> Result<(http::response::Parts, Bytes), GatewayError> {
    tokio::time::timeout(deadline, read_json_now(resp, max)).await.map_err(|_| {
        tracing::warn!("upstream body not received in time");
        GatewayError::UpstreamTimeout
    })?
}

async fn read_json_now(resp: Response<Incoming>, max: u64) -> Result<(http::response::Parts, Bytes), GatewayError> {
    let (mut head, mut body) = resp.into_parts();
    if !is_json(&head.headers) {
        return Err(bad_upstream("not JSON"));
    }
    let limits = DecodeLimits { max_output: max, ..DecodeLimits::default() };
    let mut decoder =
        crate::redact::decoder(encoding(&head.headers)?.as_deref(), limits).map_err(|_| bad_upstream("encoding"))?;
    let mut out = Vec::new();
    let mut raw = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| bad_upstream("body read"))?;
        if let Ok(data) = frame.into_data() {
            raw += data.len() as u64;
            if raw > max {
                return Err(bad_upstream("too large"));
            }
            decoder
                .feed(&data, |chunk| {
                    out.extend_from_slice(chunk);
                    Ok(())
                })
                .map_err(|_| bad_upstream("decode"))?;
        }
    }
    decoder
        .finish(|chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .map_err(|_| bad_upstream("decode"))?;
    head.headers.remove(header::CONTENT_ENCODING);
    head.headers.remove(header::CONTENT_LENGTH);
    Ok((head, Bytes::from(out)))
}

/// Redact a whole document.
pub fn redact_whole(profile: &Profile, doc: &[u8]) -> Result<(Vec<u8>, Report), GatewayError> {
    crate::redact::redact(profile, doc).map_err(|_| bad_upstream("invalid JSON"))
}

/// A response with a redacted body of known length.
pub fn with_body(mut head: http::response::Parts, body: Vec<u8>) -> Response<Body> {
    head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(head, full(body))
}

#[derive(Debug, thiserror::Error)]
#[error("response aborted: the upstream body could not be redacted")]
struct Aborted;

/// How a streamed body ended, for the audit trail's completion record.
#[derive(Debug)]
pub struct StreamEnd {
    /// `stream_complete`, `stream_aborted` (the upstream body failed or was not valid JSON; the
    /// client's response was aborted) or `client_closed` (the client stopped reading).
    pub reason: &'static str,
    /// What was redacted and how many records went out; `None` unless complete.
    pub report: Option<Report>,
}

/// Redact a body as it flows. `rt` keeps the profile alive for the task's whole life. The
/// receiver learns how the stream ended.
pub fn streamed(
    resp: Response<Incoming>,
    rt: Arc<Runtime>,
    profile: String,
    counter: prometheus_client::metrics::family::Family<
        crate::metrics::RedactionLabels,
        prometheus_client::metrics::counter::Counter,
    >,
) -> Result<(Response<Body>, tokio::sync::oneshot::Receiver<StreamEnd>), GatewayError> {
    const ABORTED: &str = "stream_aborted";
    const CLIENT_CLOSED: &str = "client_closed";
    let (mut head, mut body) = resp.into_parts();
    if !is_json(&head.headers) {
        return Err(bad_upstream("not JSON"));
    }
    let enc = encoding(&head.headers)?;
    // Fail before the first byte on an encoding we cannot decode.
    crate::redact::decoder(enc.as_deref(), DecodeLimits::default()).map_err(|_| bad_upstream("encoding"))?;
    head.headers.remove(header::CONTENT_ENCODING);
    head.headers.remove(header::CONTENT_LENGTH);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(4);
    let (done, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Some(profile) = rt.profiles.get(&profile) else {
            let _ = tx.send(Err(Box::new(Aborted))).await;
            let _ = done.send(StreamEnd { reason: ABORTED, report: None });
            return;
        };
        let result: Result<Report, &'static str> = async {
            let mut decoder = crate::redact::decoder(enc.as_deref(), DecodeLimits::default()).map_err(|_| ABORTED)?;
            let mut redactor = Redactor::new(profile, Limits::default());
            let mut out = Vec::with_capacity(CHUNK * 2);
            while let Some(frame) = body.frame().await {
                let data = match frame.map_err(|_| ABORTED)?.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                };
                decoder.feed(&data, |chunk| redactor.feed(chunk, &mut out)).map_err(|_| ABORTED)?;
                if out.len() >= CHUNK {
                    let chunk = Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(CHUNK * 2)));
                    tx.send(Ok(chunk)).await.map_err(|_| CLIENT_CLOSED)?;
                }
            }
            decoder.finish(|chunk| redactor.feed(chunk, &mut out)).map_err(|_| ABORTED)?;
            let report = redactor.finish(&mut out).map_err(|_| ABORTED)?;
            if !out.is_empty() {
                tx.send(Ok(Bytes::from(out))).await.map_err(|_| CLIENT_CLOSED)?;
            }
            Ok(report)
        }
        .await;
        let end = match result {
            Ok(report) => {
                let mode = if profile.dry_run() { "dry_run" } else { "applied" };
                let labels = crate::metrics::RedactionLabels { profile: profile.name().to_string(), mode: mode.into() };
                counter.get_or_create(&labels).inc_by(report.redacted());
                StreamEnd { reason: "stream_complete", report: Some(report) }
            }
            Err(reason) => {
                if reason == ABORTED {
                    tracing::warn!("streamed redaction failed; response aborted");
                    let _ = tx.send(Err(Box::new(Aborted))).await;
                }
                StreamEnd { reason, report: None }
            }
        };
        let _ = done.send(end);
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))));
    Ok((Response::from_parts(head, http_body_util::StreamBody::new(stream).boxed_unsync()), ended))
}
