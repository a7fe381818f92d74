//! Several logs at once: each replica keeps its own chain (`DATA_DIR/audit/<replica>/`), and the
//! security team verifies or queries them together — any mix of log files and directories; a
//! directory holds a log itself and/or logs in its subdirectories.

use std::path::{Path, PathBuf};

use super::control::head_path;
use super::files::{list, locate};
use super::{AuditError, AuditRecord, Filter, LOG_FILE, query};
use crate::clock::parse_rfc3339_ms;

/// The logs (each one chain) named by `paths`: a file is one log; a directory is its own log if it
/// has one (log files, or only the head file of a log whose files are gone), plus every log found in
/// its subdirectories (one level per replica, any depth).
pub fn find_logs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AuditError> {
    let mut logs = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut logs)?;
        } else {
            logs.push(path.clone());
        }
    }
    logs.sort();
    logs.dedup();
    if logs.is_empty() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no audit log files");
        return Err(AuditError::Io {
            path: paths.first().cloned().unwrap_or_default(),
            what: "finding the logs",
            source,
        });
    }
    Ok(logs)
}

fn collect(dir: &Path, logs: &mut Vec<PathBuf>) -> Result<(), AuditError> {
    let io = |source| AuditError::Io { path: dir.to_path_buf(), what: "listing the logs", source };
    let (dir_of, base) = locate(dir);
    // A head file without log files is a log whose files were deleted: `verify` must see it.
    if !list(&dir_of, &base).map_err(io)?.is_empty() || head_path(&dir_of, &base).is_file() {
        logs.push(dir.join(LOG_FILE));
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect(&path, logs)?;
        }
    }
    Ok(())
}

/// The records of every log that pass `filter`, merged by time (oldest first; records of one
/// log keep their order).
pub fn query_many(logs: &[PathBuf], filter: &Filter, now_ms: u64) -> Result<Vec<AuditRecord>, AuditError> {
    let mut all = Vec::new();
    for log in logs {
        all.extend(query(log, filter, now_ms)?);
    }
    all.sort_by_key(|r| parse_rfc3339_ms(&r.time).unwrap_or(0));
    Ok(all)
}
