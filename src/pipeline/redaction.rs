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
use hyper::body::Frame;

use crate::authz::Plan;
use crate::body::{Body, BoxError, full};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::redact::{DecodeLimits, Limits, Redactor, Report};
use crate::upstream::PooledBody;

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

/// Read a whole JSON body, decoding it, within `max` decoded bytes, by `deadline` (the route's
/// timeout from when the request was sent: an upstream that trickles its body must not hold the
/// request; 504).
pub async fn read_json(
    resp: Response<PooledBody>,
    max: u64,
    deadline: tokio::time::Instant,
) -> Result<(http::response::Parts, Bytes), GatewayError> {
    tokio::time::timeout_at(deadline, read_json_now(resp, max)).await.map_err(|_| {
        tracing::warn!("upstream body not received in time");
        GatewayError::UpstreamTimeout
    })?
}

async fn read_json_now(resp: Response<PooledBody>, max: u64) -> Result<(http::response::Parts, Bytes), GatewayError> {
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

/// A whole document through a permit's redaction plan (`None`: passed as is): the response, and
/// the fields the profile redacted.
pub fn whole(
    plan: Option<&Plan>,
    head: http::response::Parts,
    doc: Vec<u8>,
    metrics: &Metrics,
) -> Result<(Response<Body>, Vec<String>), GatewayError> {
    let Some(profile) = plan.map(Plan::profile) else {
        return Ok((with_body(head, doc), Vec::new()));
    };
    let (out, report) = crate::redact::redact(profile, &doc).map_err(|_| bad_upstream("invalid JSON"))?;
    metrics.redacted(profile.name(), profile.dry_run(), report.redacted());
    Ok((with_body(head, out), report.fields.into_keys().collect()))
}

/// A response with a body of known length.
fn with_body(mut head: http::response::Parts, body: Vec<u8>) -> Response<Body> {
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
    /// `stream_complete`, `stream_aborted` (the upstream body failed, stalled or was not valid
    /// JSON; the client's response was aborted) or `client_closed` (the client stopped reading).
    pub reason: &'static str,
    /// What was redacted and how many records were released — for a stream that did not
    /// complete, up to where it stopped (records redacted but not yet sent are counted too).
    pub report: Option<Report>,
}

/// Redact a body as it flows, by a permit's plan. `idle` (the route's timeout) is the longest
/// the upstream may take to send its next piece, or the client to take the next piece of output. The receiver learns how the stream ended. The client's body ends
/// cleanly only when the whole document was redacted; any other end (including a panic) aborts
/// it.
pub fn streamed(
    resp: Response<PooledBody>,
    plan: &Plan,
    idle: std::time::Duration,
    counter: prometheus_client::metrics::family::Family<
        crate::metrics::RedactionLabels,
        prometheus_client::metrics::counter::Counter,
    >,
) -> Result<(Response<Body>, tokio::sync::oneshot::Receiver<StreamEnd>), GatewayError> {
    let profile = plan.profile().clone();
    const ABORTED: &str = "stream_aborted";
    const CLIENT_CLOSED: &str = "client_closed";
    let (mut head, mut body) = resp.into_parts();
    if !is_json(&head.headers) {
        return Err(bad_upstream("not JSON"));
    }
    let enc = encoding(&head.headers)?;
    // Fail before the first byte on an encoding we cannot decode.
    let mut decoder =
        crate::redact::decoder(enc.as_deref(), DecodeLimits::default()).map_err(|_| bad_upstream("encoding"))?;
    head.headers.remove(header::CONTENT_ENCODING);
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(4);
    let (done, ended) = tokio::sync::oneshot::channel();
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let completed = complete.clone();
    tokio::spawn(async move {
        let mut redactor = Redactor::new(&profile, Limits::default());
        let mut out = Vec::with_capacity(CHUNK * 2);
        let send = |chunk: Bytes| async {
            match tokio::time::timeout(idle, tx.send(Ok(chunk))).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) | Err(_) => Err(CLIENT_CLOSED),
            }
        };
        let result: Result<Report, &'static str> = async {
            loop {
                let frame = tokio::select! {
                    frame = tokio::time::timeout(idle, body.frame()) => frame.map_err(|_| ABORTED)?,
                    _ = tx.closed() => return Err(CLIENT_CLOSED),
                };
                let Some(frame) = frame else { break };
                let Ok(data) = frame.map_err(|_| ABORTED)?.into_data() else { continue };
                decoder.feed(&data, |chunk| redactor.feed(chunk, &mut out)).map_err(|_| ABORTED)?;
                if out.len() >= CHUNK {
                    send(Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(CHUNK * 2)))).await?;
                }
            }
            decoder.finish(|chunk| redactor.feed(chunk, &mut out)).map_err(|_| ABORTED)?;
            let report = redactor.finish(&mut out).map_err(|_| ABORTED)?;
            if !out.is_empty() {
                send(Bytes::from(std::mem::take(&mut out))).await?;
            }
            Ok(report)
        }
        .await;
        let end = match result {
            Ok(report) => {
                let mode = if profile.dry_run() { "dry_run" } else { "applied" };
                let labels = crate::metrics::RedactionLabels { profile: profile.name().to_string(), mode: mode.into() };
                counter.get_or_create(&labels).inc_by(report.redacted());
                completed.store(true, std::sync::atomic::Ordering::Release);
                StreamEnd { reason: "stream_complete", report: Some(report) }
            }
            // What was redacted up to where it stopped.
            Err(reason) => StreamEnd { reason, report: Some(redactor.progress()) },
        };
        if end.reason == ABORTED {
            tracing::warn!("streamed redaction failed; response aborted");
        }
        drop(tx);
        let _ = done.send(end);
    });
    // The body the client reads: the task's chunks, then a clean end only if it completed.
    let mut closed = false;
    let stream = futures_util::stream::poll_fn(move |cx| {
        if closed {
            return std::task::Poll::Ready(None);
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(None) => {
                closed = true;
                if complete.load(std::sync::atomic::Ordering::Acquire) {
                    std::task::Poll::Ready(None)
                } else {
                    std::task::Poll::Ready(Some(Err(Box::new(Aborted) as BoxError)))
                }
            }
            other => other.map(|o| o.map(|r| r.map(Frame::data))),
        }
    });
    Ok((Response::from_parts(head, http_body_util::StreamBody::new(stream).boxed_unsync()), ended))
}
