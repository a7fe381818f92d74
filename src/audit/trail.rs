//! The audit trail as the gateway holds it: the durable log, the identifier hasher and the
//! citizens' access index, opened together and written together.

use std::path::Path;

use super::{AccessIndex, AuditError, AuditLog, AuditRecord, Hasher, LogOptions};

/// The durable log, the identifier hasher and the citizens' access index.
pub struct Trail {
    pub log: AuditLog,
    pub hasher: Hasher,
    pub index: AccessIndex,
}

impl Trail {
    /// Open the log in `dir` (recovering a torn tail) and index it for citizens' access logs.
    pub async fn open(dir: &Path, key: &[u8]) -> Result<Trail, AuditError> {
        let log = AuditLog::open(dir, LogOptions::default()).await?;
        let index = AccessIndex::build(log.path())?;
        Ok(Trail { log, hasher: Hasher::new(key), index })
    }

    /// Append durably; index it for citizens' access logs.
    pub async fn write(&self, record: &AuditRecord) -> Result<(), AuditError> {
        self.log.append(record).await?;
        self.index.add(record);
        Ok(())
    }
}
