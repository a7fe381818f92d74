//! The `log` phase, run after success and failure alike: the `RateLimit` headers, the audit
//! record of a personal route (made durable before the response is released: if the log cannot
//! be written, the answer is 503 and nothing of the upstream's answer leaves the gateway), the
//! span's attributes, the metrics and the access log line. Nothing here carries raw personal
//! data: callers are partner ids or keyed hashes.

use std::sync::Arc;

use http::Response;

use super::context::{Outcome, RequestCtx};
use super::redaction::StreamEnd;
use crate::audit::{AuditRecord, Decision, Trail};
use crate::body::Body;
use crate::error::GatewayError;
use crate::runtime::App;

/// Finish a request: its answer (or error, rendered in the JSON error shape) goes out only after
/// its audit record is durable.
pub async fn finish(
    app: &Arc<App>,
    mut cx: RequestCtx,
    result: Result<Response<Body>, GatewayError>,
) -> Response<Body> {
    let (mut resp, mut reason) = match result {
        Ok(resp) => (resp, "ok"),
        Err(err) => {
            if let GatewayError::Internal = err {
                tracing::error!(request_id = cx.request_id, route = %cx.outcome.route, "internal error");
            }
            (err.render(&cx.request_id), err.code())
        }
    };
    if let Some(h) = &cx.outcome.rate_headers
        && let (Ok(p), Ok(s)) = (http::HeaderValue::from_str(&h.policy), http::HeaderValue::from_str(&h.state))
    {
        resp.headers_mut().insert("ratelimit-policy", p);
        if !h.state.is_empty() {
            resp.headers_mut().insert("ratelimit", s);
        }
    }
    let mut status = resp.status().as_u16();
    let mut caller_id = cx.outcome.caller_id.clone();
    if cx.outcome.personal
        && cx.outcome.unidentified
        && let Some(audit) = &app.audit
    {
        // Nobody was identified and nothing was released: counted, summarised per interval.
        audit.refusals.add(&crate::ratelimit::keys::ip_key(cx.client), &cx.outcome.route, status);
    } else if cx.outcome.personal
        && let Some(audit) = &app.audit
    {
        // One keyed hash of the caller, for the record and the span alike.
        caller_id = caller_name(audit, &cx.outcome);
        let record = record(audit, &cx, &caller_id, app.clock.now_ms(), status, reason);
        match audit.write(&record).await {
            Err(e) => {
                tracing::error!(request_id = cx.request_id, error = %e, "audit record not written; response withheld");
                app.metrics.audit_failure();
                let err = GatewayError::AuditUnavailable;
                resp = err.render(&cx.request_id);
                status = resp.status().as_u16();
                reason = err.code();
            }
            Ok(line) => {
                // The record's place in the keyed chain: the span carries the head it made.
                cx.span.record("otpgate.audit.seq", i64::try_from(line.seq).unwrap_or(i64::MAX));
                cx.span.record("otpgate.audit.mac", line.mac_hex().as_str());
                if let Some(ended) = cx.outcome.stream_end.take() {
                    app.tasks.spawn(stream_completion(app.clone(), record, ended));
                }
            }
        }
    }
    let elapsed = cx.started.elapsed();
    let decision = if status < 400 { "allow" } else { "deny" };
    let (o, method) = (&cx.outcome, &cx.method);
    if !cx.span.is_disabled() {
        record_span(&cx, &caller_id, status, decision, reason);
    }
    app.metrics.request(&o.route, method, status, elapsed);
    if o.caller_kind == "partner" {
        // Partner ids come from the policy: a bounded label.
        app.metrics.partner_request(&o.caller_id, status);
    }
    tracing::info!(
        target: crate::telemetry::ACCESS_TARGET,
        request_id = cx.request_id,
        route = o.route.as_str(),
        method = method.as_str(),
        status,
        caller = o.caller_kind,
        decision,
        reason,
        // Microsecond precision: `0.438`, not `0.43803800000000004`.
        latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        policy = cx.rt.policy.version.as_str(),
    );
    // Browsers must not guess an answer's type; HTTPS clients are told to stay on HTTPS.
    let h = resp.headers_mut();
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    if cx.tls
        && let Some(hsts) = &cx.rt.policy.hsts
    {
        h.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    resp
}

/// The span's attributes (only when an exporter wants spans: formatting them costs).
fn record_span(cx: &RequestCtx, caller_id: &str, status: u16, decision: &str, reason: &str) {
    let (o, span, method) = (&cx.outcome, &cx.span, &cx.method);
    span.record("otel.name", format!("{method} {}", o.route));
    span.record("http.route", o.route.as_str());
    span.record("http.response.status_code", i64::from(status));
    span.record("otpgate.request_id", cx.request_id.as_str());
    span.record("otpgate.caller.kind", o.caller_kind);
    span.record("otpgate.caller.id", caller_id);
    span.record("otpgate.decision", decision);
    span.record("otpgate.reason", reason);
    span.record("otpgate.policy_version", cx.rt.policy.version.as_str());
    span.record("client.address", cx.client.to_string().as_str());
    if let Some(n) = o.record_count {
        span.record("otpgate.record_count", i64::try_from(n).unwrap_or(i64::MAX));
    }
    if !o.fields_redacted.is_empty() {
        span.record("otpgate.fields_redacted", o.fields_redacted.join(",").as_str());
    }
    if let Some(ms) = o.upstream_ms {
        span.record("otpgate.upstream_ms", ms);
    }
}

/// The caller as the audit trail names it: partner id, or a keyed hash of the mobile.
fn caller_name(audit: &Trail, outcome: &Outcome) -> String {
    match &outcome.citizen_mobile {
        Some(m) => audit.hasher.mobile(m.as_str()),
        None => outcome.caller_id.clone(),
    }
}

fn record(audit: &Trail, cx: &RequestCtx, caller_id: &str, now_ms: u64, status: u16, reason: &str) -> AuditRecord {
    let outcome = &cx.outcome;
    let allowed = status < 400;
    let mut records: Vec<String> = outcome.released_refs.iter().map(|r| audit.hasher.record(r)).collect();
    records.sort();
    records.dedup();
    let mut subjects: Vec<String> = outcome.released_owners.iter().map(|m| audit.hasher.mobile(m)).collect();
    subjects.sort();
    subjects.dedup();
    AuditRecord {
        time: crate::clock::rfc3339(now_ms),
        request_id: cx.request_id.clone(),
        trace_id: cx.trace.trace_id.clone(),
        caller_kind: outcome.caller_kind.to_string(),
        caller_id: caller_id.to_string(),
        route: outcome.route.clone(),
        method: cx.method.to_string(),
        decision: if allowed { Decision::Allow } else { Decision::Deny },
        reason: reason.to_string(),
        status,
        record_count: if allowed { outcome.record_count.unwrap_or(records.len() as u64) } else { 0 },
        records: if allowed { records } else { Vec::new() },
        subjects: if allowed { subjects } else { Vec::new() },
        fields_redacted: outcome.fields_redacted.clone(),
        policy_version: cx.rt.policy.version.clone(),
        upstream_ms: outcome.upstream_ms,
        client: cx.client.to_string(),
        count: None,
        waiting_room: outcome.waiting_room.clone(),
        draw: None,
    }
}

/// A streamed answer (the partner export) is audited twice: before its first byte (the decision,
/// as every request) and when it ends, by this second record with the same request and trace id:
/// reason `stream_complete` with the number of records released and the fields redacted,
/// `stream_aborted` (the upstream body went bad; the client's response was aborted) or
/// `client_closed`. Bytes already sent cannot be withheld, so a failure to write this record is
/// logged and counted, not answered.
async fn stream_completion(app: Arc<App>, first: AuditRecord, ended: tokio::sync::oneshot::Receiver<StreamEnd>) {
    let Some(audit) = &app.audit else { return };
    let end = ended.await.unwrap_or(StreamEnd { reason: "stream_aborted", report: None });
    let report = end.report.unwrap_or_default();
    let record = AuditRecord {
        time: crate::clock::rfc3339(app.clock.now_ms()),
        reason: end.reason.to_string(),
        record_count: report.records,
        records: Vec::new(),
        subjects: Vec::new(),
        fields_redacted: report.fields.into_keys().collect(),
        ..first
    };
    if let Err(e) = audit.write(&record).await {
        tracing::error!(request_id = record.request_id, error = %e, "stream completion audit record not written");
        app.metrics.audit_failure();
    }
}
