//! Tests of the audit module: line format and verification (`chain`), tampering and restarts as
//! `audit verify` sees them (`tamper`), the writer (`log`), checkpoints and recovery (`recovery`),
//! `retention`, `query`, the access `index` and the `hasher`.

mod chain;
mod hasher;
mod index;
mod log;
mod query;
mod recovery;
mod retention;
mod tamper;

use std::path::{Path, PathBuf};

use super::{AuditLog, AuditRecord, ChainKey, Decision, LogOptions, VerifyError, VerifyReport};
use crate::clock::rfc3339;

/// The audit key of these tests.
pub(super) const AUDIT_KEY: &[u8] = b"test audit key: 32 bytes or more, random in production";

/// The chain key of these tests.
pub(super) fn key() -> ChainKey {
    ChainKey::derive(AUDIT_KEY)
}

/// `verify` under the tests' key.
pub(super) fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    super::verify(path, &key())
}

/// Opens a log in `dir` under the tests' key.
pub(super) async fn open(dir: &Path, options: LogOptions) -> AuditLog {
    AuditLog::open(dir, &key(), options).await.unwrap()
}

/// A fixed instant (2026-11-23T03:19:12.345Z) records are dated from.
pub(super) const T0: u64 = 1_795_403_952_345;

/// A realistic partner record, distinct per `i`.
pub(super) fn rec(i: u64) -> AuditRecord {
    AuditRecord {
        time: rfc3339(T0 + i * 1000),
        request_id: format!("req-{i}"),
        trace_id: format!("{i:032x}"),
        caller_kind: "partner".into(),
        caller_id: "icmr".into(),
        route: "/api/v2/partner/beneficiaries/search".into(),
        method: "POST".into(),
        decision: Decision::Allow,
        reason: "ok".into(),
        status: 200,
        records: vec![format!("r:{i:032x}")],
        record_count: 1,
        subjects: vec![format!("m:{i:032x}")],
        fields_redacted: vec!["name".into(), "photo_id_number".into()],
        policy_version: "v1".into(),
        upstream_ms: Some(1.5),
        client: "10.0.0.1".into(),
        count: None,
        waiting_room: None,
        draw: None,
    }
}

/// A small record, to keep byte-by-byte tampering loops short.
pub(super) fn tiny(i: u64) -> AuditRecord {
    AuditRecord {
        time: rfc3339(T0 + i),
        request_id: format!("q{i}"),
        trace_id: String::new(),
        caller_kind: "anonymous".into(),
        caller_id: String::new(),
        route: "/r".into(),
        method: "GET".into(),
        decision: if i.is_multiple_of(2) { Decision::Allow } else { Decision::Deny },
        reason: "ok".into(),
        status: 200,
        records: vec![],
        record_count: 0,
        subjects: vec![],
        fields_redacted: vec![],
        policy_version: "1".into(),
        upstream_ms: None,
        client: "c".into(),
        count: None,
        waiting_room: None,
        draw: None,
    }
}

/// Options with a rotation size.
pub(super) fn rotating(rotate_bytes: u64) -> LogOptions {
    LogOptions { rotate_bytes, ..LogOptions::default() }
}

/// Appends `records` one after another, checking that their seqs count up (by one, or more where the
/// writer put control lines in between: a checkpoint, a rotation, retention).
pub(super) async fn append_all(log: &AuditLog, records: impl IntoIterator<Item = AuditRecord>) {
    let mut last = None;
    for r in records {
        let seq = log.append(&r).await.unwrap();
        assert!(last.is_none_or(|l| seq > l), "seqs count up");
        last = Some(seq);
    }
}

/// Appends `rec(i)` for every `i` from concurrent tasks; each task's result, in `i` order.
pub(super) async fn append_concurrently(
    log: &AuditLog,
    indices: std::ops::Range<u64>,
) -> Vec<Result<u64, super::AuditError>> {
    let tasks: Vec<_> = indices
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(&rec(i)).await })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

/// Writes `records` into a (fresh) log in `dir` and closes it; returns the path of `audit.log`.
pub(super) async fn write_closed(
    dir: &Path,
    options: LogOptions,
    records: impl IntoIterator<Item = AuditRecord>,
) -> PathBuf {
    let log = open(dir, options).await;
    append_all(&log, records).await;
    log.close().await;
    log.path().to_path_buf()
}

/// The files of the log in `dir` in chain order (file name, bytes).
pub(super) fn read_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    super::files::list(dir, super::LOG_FILE)
        .unwrap()
        .into_iter()
        .map(|f| (f.path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&f.path).unwrap()))
        .collect()
}

/// The control lines of the log in `dir`, in chain order (as JSON values).
pub(super) fn controls_of(dir: &Path) -> Vec<serde_json::Value> {
    read_files(dir)
        .iter()
        .flat_map(|(_, bytes)| lines_of(bytes))
        .filter(|l| super::line::is_control(l))
        .map(|l| serde_json::from_slice(&l).unwrap())
        .collect()
}

/// Lines of `bytes` (without newlines).
pub(super) fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// Joins lines back into a file, each with its newline.
pub(super) fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n'))).collect()
}
