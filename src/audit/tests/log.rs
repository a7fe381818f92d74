//! The writer: group commit, concurrency, rotation, reopening, torn-line recovery, failure semantics.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use super::super::{AuditError, AuditLog, LogOptions, verify};
use super::{append_all, append_concurrently, read_files, rec, rotating, write_closed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_seqs_and_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for t in 0..50u64 {
        let (log, start) = (log.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut seqs = Vec::new();
            for i in 0..20 {
                seqs.push(log.append(&rec(t * 100 + i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        for s in task.await.unwrap() {
            assert!(seqs.insert(s), "seq {s} given twice");
        }
    }
    assert_eq!(seqs, (0..1000).collect());
    let fsyncs = log.fsync_count();
    assert!(fsyncs * 4 <= 1000, "group commit: {fsyncs} syncs for 1000 records");
    log.close().await;
    let report = verify(log.path()).unwrap();
    assert_eq!(report.records, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_exceeds_max_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), LogOptions { max_batch: 8, ..LogOptions::default() }).await.unwrap();
    for r in append_concurrently(&log, 0..200).await {
        r.unwrap();
    }
    assert!(log.fsync_count() >= 200 / 8, "{}", log.fsync_count());
    log.close().await;
    assert_eq!(verify(log.path()).unwrap().records, 200);
}

#[tokio::test]
async fn sequential_appends_sync_each_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    append_all(&log, (0..5).map(rec)).await;
    assert_eq!(log.fsync_count(), 5, "an acknowledged record has been synced");
    // Durable before the reply: the line is in the file when append resolves.
    let content = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(content.lines().count(), 5);
}

#[tokio::test]
async fn reopening_resumes_seq_and_prev() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert_eq!(log.next_seq_at_open(), 3);
    assert_eq!(log.append(&rec(3)).await.unwrap(), 3);
    assert_eq!(log.append(&rec(4)).await.unwrap(), 4);
    log.close().await;
    let report = verify(log.path()).unwrap();
    assert_eq!((report.records, report.last_seq), (5, Some(4)));
}

#[tokio::test]
async fn a_torn_last_line_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let full = std::fs::read(&path).unwrap();
    let torn = b"{\"seq\":3,\"prev\":\"ab";
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(torn).unwrap();
    assert!(verify(&path).is_err(), "verify reports the torn line");
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert_eq!(log.truncated_at_open(), torn.len() as u64);
    assert_eq!(std::fs::read(&path).unwrap(), full);
    assert_eq!(log.append(&rec(3)).await.unwrap(), 3);
    log.close().await;
    assert_eq!(verify(&path).unwrap().records, 4);

    // A file holding only a torn line becomes empty and the chain starts at genesis.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.log"), b"{\"seq\":0,").unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert_eq!((log.truncated_at_open(), log.next_seq_at_open()), (9, 0));
    log.close().await;
}

#[tokio::test]
async fn a_corrupt_complete_tail_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuditError::CorruptTail { .. }), "{err}");
    assert!(err.to_string().contains("audit verify"), "{err}");
    std::fs::write(&path, b"not a record\n").unwrap();
    assert!(matches!(AuditLog::open(dir.path(), LogOptions::default()).await, Err(AuditError::CorruptTail { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 2000;
    write_closed(dir.path(), rotating(limit), (0..20).map(rec)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 5, "{} files", files.len());
    assert_eq!(files.last().unwrap().0, "audit.log");
    for (name, bytes) in &files {
        assert!(bytes.len() as u64 <= limit, "{name} has {} bytes", bytes.len());
        if let Some(seq) = name.strip_prefix("audit.log.") {
            let first: serde_json::Value =
                serde_json::from_slice(bytes.split(|&b| b == b'\n').next().unwrap()).unwrap();
            assert_eq!(first["seq"], seq.parse::<u64>().unwrap(), "{name} is named after its first seq");
        }
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.records), (files.len(), 20));

    // Reopen and keep going, with concurrent appends rotating inside a batch.
    let log = AuditLog::open(dir.path(), rotating(limit)).await.unwrap();
    assert_eq!(log.next_seq_at_open(), 20);
    for r in append_concurrently(&log, 20..60).await {
        r.unwrap();
    }
    log.close().await;
    assert_eq!(verify(dir.path()).unwrap().records, 60);
}

#[tokio::test]
async fn a_crash_between_rename_and_create_resumes_from_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    std::fs::rename(&path, dir.path().join(format!("audit.log.{:020}", 0))).unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert_eq!(log.next_seq_at_open(), 3);
    assert_eq!(log.append(&rec(3)).await.unwrap(), 3);
    log.close().await;
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.records), (2, 4));
}

#[tokio::test]
async fn a_failing_disk_fails_the_append_and_then_everything_fast() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("audit.log")).unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert!(log.is_healthy());
    let err = log.append(&rec(0)).await.unwrap_err();
    assert!(matches!(err, AuditError::Write(_)), "{err}");
    assert!(!log.is_healthy());
    assert!(matches!(log.append(&rec(1)).await, Err(AuditError::Failed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_fault_fails_every_waiter_of_the_batch_and_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_failing_after(dir.path(), LogOptions::default(), 1).await.unwrap();
    assert_eq!(log.append(&rec(0)).await.unwrap(), 0);
    for r in append_concurrently(&log, 1..30).await {
        assert!(matches!(r, Err(AuditError::Write(_) | AuditError::Failed)), "{r:?}");
    }
    assert!(!log.is_healthy());
    assert!(matches!(log.append(&rec(99)).await, Err(AuditError::Failed)));
    // Closing a failed log returns at once.
    tokio::time::timeout(std::time::Duration::from_secs(5), log.close()).await.unwrap();
    // What was acknowledged is intact.
    assert_eq!(verify(log.path()).unwrap().records, 1);
}

#[tokio::test]
async fn one_writer_per_directory_and_close_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    let err = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    log.append(&rec(0)).await.unwrap();
    let clone = log.clone();
    log.close().await;
    assert!(!clone.is_healthy());
    assert!(matches!(clone.append(&rec(1)).await, Err(AuditError::Failed)));
    let again = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    assert_eq!(again.next_seq_at_open(), 1);
    again.close().await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_writer_and_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), LogOptions::default()).await.unwrap();
    log.append(&rec(0)).await.unwrap();
    drop(log);
    let mut reopened = None;
    for _ in 0..200 {
        match AuditLog::open(dir.path(), LogOptions::default()).await {
            Ok(log) => {
                reopened = Some(log);
                break;
            }
            Err(AuditError::Locked { .. }) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let log = reopened.expect("the writer released the lock");
    assert_eq!(log.append(&rec(1)).await.unwrap(), 1);
    log.close().await;
}
