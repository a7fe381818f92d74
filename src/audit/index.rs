//! The citizen access index behind `GET /api/v2/otpgate/my-access-log`: for each subject (a hashed mobile),
//! the most recent accesses that released their records. Built from the log at start, fed by every
//! allowed record afterwards; bounded in subjects and in entries.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use moka::sync::Cache;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::files::scan_records;
use super::{AuditError, AuditRecord, Decision};

/// Most recent accesses kept per subject by default.
pub const DEFAULT_PER_SUBJECT: usize = 1000;
/// Entries kept in total by default (all subjects together; least recently used subjects go first).
pub const DEFAULT_MAX_ENTRIES: u64 = 200_000;

/// One access to a citizen's records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub time: String,
    /// `citizen`, `partner` or `anonymous`.
    pub caller_kind: String,
    /// Partner id, or the citizen's own token.
    pub caller_id: String,
    pub route: String,
    /// Names of fields redacted from what was released (the record's `fields_redacted`).
    pub fields: Vec<String>,
    /// Records released by that request (all subjects together).
    pub record_count: u64,
}

type List = Arc<Mutex<VecDeque<AccessEntry>>>;

/// What `record` adds to the index: one entry per distinct subject of an allowed release (denied
/// requests released nothing, so they are not accesses).
pub fn entries(record: &AuditRecord) -> Vec<(&str, AccessEntry)> {
    if record.decision != Decision::Allow {
        return Vec::new();
    }
    let mut out: Vec<(&str, AccessEntry)> = Vec::new();
    for subject in &record.subjects {
        if out.iter().any(|(s, _)| s == subject) {
            continue;
        }
        let entry = AccessEntry {
            time: record.time.clone(),
            caller_kind: record.caller_kind.clone(),
            caller_id: record.caller_id.clone(),
            route: record.route.clone(),
            fields: record.fields_redacted.clone(),
            record_count: record.record_count,
        };
        out.push((subject.as_str(), entry));
    }
    out
}

/// Subject token → its most recent accesses. Thread-safe and cheap to clone (shared inside).
#[derive(Clone)]
pub struct AccessIndex {
    /// Weighed by list length, so `max_capacity` bounds the total number of entries.
    lists: Cache<String, List>,
    per_subject: usize,
}

impl std::fmt::Debug for AccessIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessIndex").field("subjects", &self.lists.entry_count()).finish()
    }
}

impl Default for AccessIndex {
    fn default() -> Self {
        AccessIndex::new(DEFAULT_MAX_ENTRIES, DEFAULT_PER_SUBJECT)
    }
}

impl AccessIndex {
    /// An empty index keeping at most `per_subject` entries per subject and about `max_entries` in total.
    pub fn new(max_entries: u64, per_subject: usize) -> Self {
        let lists = Cache::builder()
            .max_capacity(max_entries)
            .weigher(|_: &String, list: &List| u32::try_from(list.lock().len()).unwrap_or(u32::MAX).max(1))
            .build();
        AccessIndex { lists, per_subject: per_subject.max(1) }
    }

    /// An index with the default bounds, filled from every file of the log at `path` (file or directory).
    /// No log yet gives an empty index.
    pub fn build(path: &Path) -> Result<Self, AuditError> {
        let index = AccessIndex::default();
        index.load(path)?;
        Ok(index)
    }

    /// Adds every record of the log at `path`, oldest first.
    pub fn load(&self, path: &Path) -> Result<(), AuditError> {
        scan_records(path, |r| self.add(&r)).map(|_| ())
    }

    /// Records `record` under each of its subjects, if it allowed a release (denied requests released
    /// nothing, so they are not accesses). Call it after the record was appended.
    pub fn add(&self, record: &AuditRecord) {
        for (subject, entry) in entries(record) {
            let list = self.lists.get_with_by_ref(subject, List::default);
            let grew = {
                let mut l = list.lock();
                let full = l.len() >= self.per_subject;
                if full {
                    l.pop_front();
                }
                l.push_back(entry);
                !full
            };
            if grew {
                // Re-insert so the cache re-weighs the longer list.
                self.lists.insert(subject.to_string(), list);
            }
        }
    }

    /// The subject's recorded accesses, newest first.
    pub fn for_subject(&self, subject_hash: &str) -> Vec<AccessEntry> {
        let Some(list) = self.lists.get(subject_hash) else { return Vec::new() };
        let mut entries: Vec<AccessEntry> = list.lock().iter().rev().cloned().collect();
        entries.sort_by(|a, b| b.time.cmp(&a.time));
        entries
    }

    /// Entries held in total (after pending evictions run); for metrics and tests.
    pub fn entry_count(&self) -> u64 {
        self.lists.run_pending_tasks();
        self.lists.weighted_size()
    }

    /// Subjects held (after pending evictions run).
    pub fn subject_count(&self) -> u64 {
        self.lists.run_pending_tasks();
        self.lists.entry_count()
    }
}
