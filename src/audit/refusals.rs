//! Requests refused before any caller was identified (no token; a bad, expired or revoked
//! token; wrong partner credentials) are not audited one durable record each — one client could
//! fill the disk with them — but counted per source, route and status, and written as one
//! chained summary record per combination per interval. The counts live in a bounded map: past
//! its cap, further combinations are counted under the source `other`.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{AuditRecord, Decision};

/// Combinations (source, route, status) counted per interval before `other` takes the rest.
const MAX_KEYS: usize = 10_000;

#[derive(Default)]
pub struct Refusals {
    counts: Mutex<HashMap<(String, String, u16), u64>>,
}

impl Refusals {
    /// Count one refusal of `source` (the client address) on `route` with `status`.
    pub fn add(&self, source: &str, route: &str, status: u16) {
        let mut counts = self.counts.lock();
        let key = (source.to_string(), route.to_string(), status);
        let key = if counts.len() >= MAX_KEYS && !counts.contains_key(&key) {
            ("other".to_string(), route.to_string(), status)
        } else {
            key
        };
        *counts.entry(key).or_default() += 1;
    }

    /// The summary records of everything counted since the last call (sorted, so the trail is
    /// deterministic), and the counts reset.
    pub fn take(&self, time: &str, policy_version: &str) -> Vec<AuditRecord> {
        let mut taken: Vec<_> = std::mem::take(&mut *self.counts.lock()).into_iter().collect();
        taken.sort();
        taken
            .into_iter()
            .map(|((client, route, status), count)| AuditRecord {
                time: time.to_string(),
                request_id: format!("summary-{}", uuid::Uuid::new_v4()),
                trace_id: String::new(),
                caller_kind: "anonymous".into(),
                caller_id: String::new(),
                route,
                method: String::new(),
                decision: Decision::Deny,
                reason: "unidentified_refusals".into(),
                status,
                records: Vec::new(),
                record_count: 0,
                subjects: Vec::new(),
                fields_redacted: Vec::new(),
                policy_version: policy_version.to_string(),
                upstream_ms: None,
                client,
                count: Some(count),
                waiting_room: None,
                draw: None,
            })
            .collect()
    }
}
