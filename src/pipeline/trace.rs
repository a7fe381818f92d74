//! One span per request. Its trace continues a valid incoming `traceparent`, and the
//! `traceparent` sent upstream names this span, so the registry's spans join the same trace.
//! The incoming header is read by OpenTelemetry's own propagator, the one parser of it.

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rand::Rng;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::SPAN_TARGET;
use crate::upstream::headers::{TRACEPARENT, TraceContext};

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace, when its `traceparent` is valid.
fn incoming(headers: &HeaderMap) -> Option<SpanContext> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// A new request span (continuing the caller's trace) and the trace context to forward.
pub fn start(headers: &HeaderMap, method: &http::Method) -> (tracing::Span, TraceContext) {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        http.request.method = %method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        otpgate.request_id = tracing::field::Empty,
        otpgate.caller.kind = tracing::field::Empty,
        otpgate.caller.id = tracing::field::Empty,
        otpgate.decision = tracing::field::Empty,
        otpgate.reason = tracing::field::Empty,
        otpgate.record_count = tracing::field::Empty,
        otpgate.fields_redacted = tracing::field::Empty,
        otpgate.policy_version = tracing::field::Empty,
        otpgate.upstream_ms = tracing::field::Empty,
        otpgate.audit.seq = tracing::field::Empty,
        otpgate.audit.mac = tracing::field::Empty,
        client.address = tracing::field::Empty,
    );
    let parent = incoming(headers);
    if let Some(parent) = &parent {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone()));
    }
    let ours = span.context().span().span_context().clone();
    let trace = if ours.is_valid() {
        TraceContext {
            trace_id: ours.trace_id().to_string(),
            span_id: ours.span_id().to_string(),
            flags: format!("{:02x}", ours.trace_flags().to_u8()),
        }
    } else {
        // No exporter installed: still propagate a well-formed trace, ours or the caller's.
        let mut rng = rand::rng();
        let span_id = hex(&rng.random::<[u8; 8]>());
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id().to_string(),
                span_id,
                flags: format!("{:02x}", p.trace_flags().to_u8()),
            },
            None => TraceContext { trace_id: hex(&rng.random::<[u8; 16]>()), span_id, flags: "01".into() },
        }
    };
    (span, trace)
}

/// Lowercase hex of an id, written into one buffer (`hex::encode` collects a char at a time, and
/// this runs per request).
fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // Cannot fail: the output is exactly twice the input, and hex digits are UTF-8.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests;
