//! The audit stage: one record per request on a personal route, allowed or denied, made durable
//! before the response is released. If the log cannot be written, the answer is 503 and nothing of
//! the upstream's answer leaves the gateway.

use std::sync::Arc;

use crate::app::App;
use crate::audit::{AccessIndex, AuditLog, AuditRecord, Decision, Hasher};

use super::Outcome;
use super::redaction::StreamEnd;

/// The durable log, the identifier hasher and the citizens' access index.
pub struct Audit {
    pub log: AuditLog,
    pub hasher: Hasher,
    pub index: AccessIndex,
}

/// What the request looked like from outside the pipeline.
pub struct Finished<'a> {
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub method: &'a http::Method,
    pub status: u16,
    pub reason: &'a str,
    pub policy_version: &'a str,
}

impl Audit {
    /// The caller as the audit trail names it: partner id, or a keyed hash of the mobile.
    pub fn caller_id(&self, outcome: &Outcome) -> String {
        match &outcome.citizen_mobile {
            Some(m) => self.hasher.mobile(m.as_str()),
            None => outcome.caller_id.clone(),
        }
    }

    pub fn record(&self, outcome: &Outcome, f: &Finished<'_>) -> AuditRecord {
        let allowed = f.status < 400;
        let mut records: Vec<String> = outcome.released_refs.iter().map(|r| self.hasher.record(r)).collect();
        records.sort();
        records.dedup();
        let mut subjects: Vec<String> = outcome.released_owners.iter().map(|m| self.hasher.mobile(m)).collect();
        subjects.sort();
        subjects.dedup();
        AuditRecord {
            time: crate::clock::rfc3339(crate::clock::now_ms()),
            request_id: f.request_id.to_string(),
            trace_id: f.trace_id.to_string(),
            caller_kind: outcome.caller_kind.to_string(),
            caller_id: self.caller_id(outcome),
            route: outcome.route.clone(),
            method: f.method.to_string(),
            decision: if allowed { Decision::Allow } else { Decision::Deny },
            reason: f.reason.to_string(),
            status: f.status,
            record_count: if allowed { outcome.record_count.unwrap_or(records.len() as u64) } else { 0 },
            records: if allowed { records } else { Vec::new() },
            subjects: if allowed { subjects } else { Vec::new() },
            fields_redacted: outcome.fields_redacted.clone(),
            policy_version: f.policy_version.to_string(),
            upstream_ms: outcome.upstream_ms,
            client: outcome.client.clone(),
        }
    }

    /// Append durably; index it for citizens' access logs.
    pub async fn write(&self, record: &AuditRecord) -> Result<(), crate::audit::AuditError> {
        self.log.append(record).await?;
        self.index.add(record);
        Ok(())
    }
}

/// A streamed answer (the partner export) is audited twice: before its first byte (the decision,
/// as every request) and when it ends, by this second record with the same request and trace id:
/// reason `stream_complete` with the number of records released and the fields redacted,
/// `stream_aborted` (the upstream body went bad; the client's response was aborted) or
/// `client_closed`. Bytes already sent cannot be withheld, so a failure to write this record is
/// logged and counted, not answered.
pub async fn stream_completion(app: Arc<App>, first: AuditRecord, ended: tokio::sync::oneshot::Receiver<StreamEnd>) {
    let Some(audit) = &app.audit else { return };
    let end = ended.await.unwrap_or(StreamEnd { reason: "stream_aborted", report: None });
    let report = end.report.unwrap_or_default();
    let record = AuditRecord {
        time: crate::clock::rfc3339(crate::clock::now_ms()),
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
