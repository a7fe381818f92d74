//! The audit trail as the gateway holds it: the durable log, the identifier hasher and the
//! citizens' access index, opened together and written together.
//!
//! With a shared store the access index lives there (a capped list per subject), so a citizen's
//! `my-access-log` lists accesses served by any replica; each replica's log stays its own file
//! (ARCHITECTURE.md, "Where state lives"). The log is the record of truth: an entry the shared
//! index misses while the store is away is still in the log, verifiable and queryable.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::index::{DEFAULT_PER_SUBJECT, entries};
use super::{
    AccessEntry, AccessIndex, AuditError, AuditLog, AuditRecord, ChainKey, Hasher, HeadRef, LogOptions, Refusals,
};
use crate::store::{RedisStore, StoreError};

/// How long a subject's shared access list lives after its last entry.
const SHARED_INDEX_TTL: Duration = Duration::from_secs(400 * 86_400);

pub struct Trail {
    pub log: AuditLog,
    pub hasher: Hasher,
    index: AccessIndex,
    shared: Option<Arc<RedisStore>>,
    /// Refusals before identification, counted until the next summary (see `refusals`).
    pub refusals: Refusals,
}

impl Trail {
    /// Open the log in `dir` (recovering a torn tail), its chain keyed by a key derived from `key`
    /// (`audit.key`, which also keys the identifier hasher), and index it for citizens' access logs.
    pub async fn open(dir: &Path, key: &[u8], options: LogOptions) -> Result<Trail, AuditError> {
        let log = AuditLog::open(dir, &ChainKey::derive(key), options).await?;
        let index = AccessIndex::build(log.path())?;
        Ok(Trail { log, hasher: Hasher::new(key), index, shared: None, refusals: Refusals::default() })
    }

    /// Keep the access index in the shared store.
    pub fn sharing(mut self, store: Arc<RedisStore>) -> Trail {
        self.shared = Some(store);
        self
    }

    /// Append durably, then index it for citizens' access logs. Resolves with the record's line: its
    /// seq and MAC, an anchor of the chain (for the request's span).
    pub async fn write(&self, record: &AuditRecord) -> Result<HeadRef, AuditError> {
        let line = self.log.append_head(record).await?;
        let Some(store) = &self.shared else {
            self.index.add(record);
            return Ok(line);
        };
        for (subject, entry) in entries(record) {
            let Ok(json) = serde_json::to_string(&entry) else { continue };
            if let Err(e) = store.list_push(subject, &json, DEFAULT_PER_SUBJECT, SHARED_INDEX_TTL).await {
                tracing::warn!(error = %e, request_id = record.request_id, "access index entry not shared");
            }
        }
        Ok(line)
    }

    /// The newest durable line of the chain: its seq and lowercase hex MAC (`None` before the first line).
    /// For span attributes and anything else that ships the head off the host.
    pub fn head(&self) -> Option<(u64, String)> {
        self.log.head().map(|h| (h.seq, h.mac_hex()))
    }

    /// Writes what is queued and a `close` checkpoint, then stops the writer (clean shutdown).
    pub async fn close(&self) {
        self.log.close().await;
    }

    /// Write the summary records of the refusals counted since the last call.
    pub async fn flush_refusals(&self, time: &str, policy_version: &str) -> Result<usize, AuditError> {
        let records = self.refusals.take(time, policy_version);
        for record in &records {
            self.log.append(record).await?;
        }
        Ok(records.len())
    }

    /// The accesses to `subject`'s records (a keyed hash of the mobile), newest first.
    pub async fn accesses(&self, subject: &str) -> Result<Vec<AccessEntry>, StoreError> {
        let Some(store) = &self.shared else {
            return Ok(self.index.for_subject(subject));
        };
        let raw = store.list(subject, DEFAULT_PER_SUBJECT).await?;
        Ok(raw.iter().filter_map(|j| serde_json::from_str(j).ok()).collect())
    }
}
