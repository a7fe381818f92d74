//! Failures and checkpoints: a failed write fails its batch and every append until the writer, retrying
//! with backoff, can write again — then it takes records again by itself, with a torn partial line cut
//! away; periodic checkpoints by record count and by time; the head every write publishes.

use std::time::Duration;

use super::super::writer::Fault;
use super::super::{AuditError, AuditLog, LogOptions, Start};
use super::{append_all, append_concurrently, controls_of, key, open, rec, verify};
use crate::audit::line;

fn quick_retries() -> LogOptions {
    LogOptions { retry_min: Duration::from_millis(5), retry_max: Duration::from_millis(20), ..LogOptions::default() }
}

/// Waits (at most 5 s) until the log takes records again.
async fn until_healthy(log: &AuditLog) {
    for _ in 0..500 {
        if log.is_healthy() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the log did not recover");
}

#[tokio::test]
async fn a_failed_write_is_cut_back_and_the_writer_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    // Write 1 is the open line, write 2 the first record; writes 3-5 fail, each leaving half a line.
    let fault = Fault { ok_writes: 2, failing_writes: 3, torn: true };
    let log = AuditLog::open_faulty(dir.path(), &key(), quick_retries(), fault).await.unwrap();
    assert_eq!(log.append(&rec(0)).await.unwrap(), 1);
    let err = log.append(&rec(1)).await.unwrap_err();
    assert!(matches!(err, AuditError::Write(_)), "{err}");
    // While failing, appends fail fast (the gateway answers 503 and releases nothing).
    if !log.is_healthy() {
        assert!(matches!(log.append(&rec(2)).await, Err(AuditError::Failed | AuditError::Write(_))));
    }
    until_healthy(&log).await;
    assert!(log.write_errors() >= 3, "{}", log.write_errors());
    let seq = log.append(&rec(3)).await.unwrap();
    log.close().await;
    // The torn halves were cut away: the chain goes on from the last durable line.
    let report = verify(log.path()).unwrap();
    assert_eq!(report.records, 2, "rec 0 and rec 3");
    assert_eq!(seq, 3, "the recovered checkpoint is seq 2, then the record");
    let recovered: Vec<serde_json::Value> =
        controls_of(dir.path()).into_iter().filter(|c| c["why"] == "recovered").collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(recovered[0]["failed_writes"].as_u64().unwrap() >= 3, "{}", recovered[0]);
    assert!(recovered[0]["failed_since"].is_string());
}

#[tokio::test]
async fn a_disk_full_at_start_leaves_the_log_refusing_until_it_can_write() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Fault { ok_writes: 0, failing_writes: 2, torn: true };
    let log = AuditLog::open_faulty(dir.path(), &key(), quick_retries(), fault).await.unwrap();
    assert!(!log.is_healthy(), "the open line could not be written");
    assert!(matches!(log.append(&rec(0)).await, Err(AuditError::Failed)));
    until_healthy(&log).await;
    assert_eq!(log.append(&rec(1)).await.unwrap(), 1, "the open line (seq 0) went first");
    log.close().await;
    let report = verify(log.path()).unwrap();
    assert_eq!((report.records, report.lines), (1, 3));
    assert_eq!(controls_of(dir.path())[0]["start"], "new");
}

#[tokio::test]
async fn a_device_that_is_always_full_fails_fast_and_closes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("audit.log")).unwrap();
    let log = open(dir.path(), quick_retries()).await;
    assert!(!log.is_healthy());
    assert!(matches!(log.append(&rec(0)).await, Err(AuditError::Failed)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(log.write_errors() >= 2, "it keeps retrying: {}", log.write_errors());
    tokio::time::timeout(Duration::from_secs(5), log.close()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_fault_fails_every_waiter_of_the_batch_and_appends_until_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Fault { ok_writes: 2, failing_writes: u64::MAX, torn: false };
    let log = AuditLog::open_faulty(dir.path(), &key(), quick_retries(), fault).await.unwrap();
    assert_eq!(log.append(&rec(0)).await.unwrap(), 1);
    for r in append_concurrently(&log, 1..30).await {
        assert!(matches!(r, Err(AuditError::Write(_) | AuditError::Failed)), "{r:?}");
    }
    assert!(!log.is_healthy());
    assert!(matches!(log.append(&rec(99)).await, Err(AuditError::Failed)));
    // Closing a failing log returns at once.
    tokio::time::timeout(Duration::from_secs(5), log.close()).await.unwrap();
    // What was acknowledged is intact (no close checkpoint: it could not be written).
    let report = verify(log.path()).unwrap();
    assert_eq!(report.records, 1);
    let reopened = open(dir.path(), LogOptions::default()).await;
    assert_eq!(reopened.start(), Start::Crash);
    reopened.close().await;
}

#[tokio::test]
async fn checkpoints_come_every_n_records_and_after_an_interval() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        checkpoint_records: 3,
        checkpoint_interval: Duration::from_secs(3600),
        replica: Some("r1".into()),
        ..LogOptions::default()
    };
    let log = open(dir.path(), options).await;
    append_all(&log, (0..7).map(rec)).await;
    assert_eq!(log.checkpoints(), 2, "after records 3 and 6");
    let lines = super::lines_of(&std::fs::read(log.path()).unwrap());
    let kinds: Vec<&str> = lines.iter().map(|l| if line::is_control(l) { "c" } else { "r" }).collect();
    assert_eq!(kinds.concat(), "crrrcrrrcr", "open, 3 records, checkpoint (same sync), …");
    // The checkpoint commits to the head before it: its prev is that line's MAC.
    let cp = line::check(&key(), &lines[4]).unwrap();
    assert_eq!(cp.prev, line::check(&key(), &lines[3]).unwrap().link);
    log.close().await;

    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { checkpoint_interval: Duration::from_millis(30), ..LogOptions::default() };
    let log = open(dir.path(), options).await;
    log.append(&rec(0)).await.unwrap();
    for _ in 0..300 {
        if log.checkpoints() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.checkpoints(), 1, "one checkpoint of the record, none while idle");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(log.checkpoints(), 1, "an idle log writes no checkpoints");
    let head = std::fs::read_to_string(dir.path().join("audit.log.head")).unwrap();
    assert!(head.contains("\"why\":\"interval\""), "{head}");
    log.close().await;
    assert!(verify(log.path()).is_ok());
}

#[tokio::test]
async fn the_head_is_the_newest_durable_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!(log.head().map(|h| h.seq), Some(0), "the open line");
    let written = log.append_head(&rec(0)).await.unwrap();
    assert_eq!(log.head(), Some(written));
    let last = super::lines_of(&std::fs::read(log.path()).unwrap()).pop().unwrap();
    assert_eq!(written.mac, line::check(&key(), &last).unwrap().link);
    assert_eq!(written.mac_hex(), hex::encode(written.mac));
    let sample = crate::metrics::AuditSource::sample(&log);
    assert_eq!((sample.head_seq, sample.up), (Some(1), true));
    assert_eq!(format!("{:012x}", sample.head_mac48), written.mac_hex()[..12]);
    assert!(sample.free_bytes.is_some_and(|f| f > 0));
    log.close().await;
}
