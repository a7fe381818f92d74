//! One span per request. Its trace continues a valid incoming `traceparent`, and the
//! `traceparent` sent upstream names this span, so the registry's spans join the same trace.
//! Attributes carry no personal data: the caller is a partner id or a keyed hash.

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::upstream::headers::TraceContext;

/// Target of request spans; only these go to the OTLP exporter.
pub const SPAN_TARGET: &str = "otpgate::span";

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
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
        client.address = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let sc = span.context().span().span_context().clone();
    let trace = if sc.is_valid() {
        TraceContext {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
            flags: format!("{:02x}", sc.trace_flags().to_u8()),
        }
    } else {
        // No exporter installed: still propagate a well-formed trace.
        TraceContext::from_incoming(headers)
    };
    (span, trace)
}
