//! The writer: group commit, concurrency, rotation, reopening, torn-line recovery, one writer per directory.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use super::super::{AuditError, AuditLog, LogOptions, Start};
use super::{append_all, append_concurrently, controls_of, key, open, read_files, rec, rotating, verify, write_closed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_seqs_and_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    let first = log.next_seq_at_open() + 1;
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
    assert_eq!(seqs.len(), 1000);
    assert!(seqs.iter().all(|&s| s >= first), "records come after the open line");
    let fsyncs = log.fsync_count();
    assert!(fsyncs * 4 <= 1000, "group commit: {fsyncs} syncs for 1000 records");
    log.close().await;
    let report = verify(log.path()).unwrap();
    assert_eq!(report.records, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_exceeds_max_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions { max_batch: 8, ..LogOptions::default() }).await;
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
    let log = open(dir.path(), LogOptions::default()).await;
    let before = log.fsync_count();
    append_all(&log, (0..5).map(rec)).await;
    assert_eq!(log.fsync_count() - before, 5, "an acknowledged record has been synced");
    // Durable before the reply: the line is in the file when append resolves (after the open line).
    let content = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(content.lines().count(), 6);
}

#[tokio::test]
async fn reopening_resumes_seq_and_prev() {
    let dir = tempfile::tempdir().unwrap();
    // open (0), three records (1-3), close (4).
    write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!((log.next_seq_at_open(), log.start()), (5, Start::Clean));
    assert_eq!(log.append(&rec(3)).await.unwrap(), 6);
    assert_eq!(log.append(&rec(4)).await.unwrap(), 7);
    log.close().await;
    let report = verify(log.path()).unwrap();
    assert_eq!((report.records, report.last_seq), (5, Some(8)));
    assert!(report.notes.is_empty(), "a clean restart: {:?}", report.notes);
}

#[tokio::test]
async fn a_torn_last_line_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    append_all(&log, (0..3).map(rec)).await;
    log.crash().await;
    let path = log.path().to_path_buf();
    let full = std::fs::read(&path).unwrap();
    let torn = b"{\"seq\":4,\"prev\":\"ab";
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(torn).unwrap();
    assert!(verify(&path).is_err(), "verify reports the torn line");
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!((log.truncated_at_open(), log.start()), (torn.len() as u64, Start::Crash));
    assert!(std::fs::read(&path).unwrap().starts_with(&full), "the torn bytes are gone");
    assert_eq!(log.append(&rec(3)).await.unwrap(), 5);
    log.close().await;
    let report = verify(&path).unwrap();
    assert_eq!(report.records, 4);
    assert!(report.notes.iter().any(|n| n.text.contains("crash")), "{:?}", report.notes);

    // A file holding only a torn line becomes empty and the chain starts at genesis.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.log"), b"{\"seq\":0,").unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!((log.truncated_at_open(), log.next_seq_at_open(), log.start()), (9, 0, Start::New));
    log.close().await;
    assert!(verify(dir.path()).is_ok());
}

#[tokio::test]
async fn a_corrupt_complete_tail_or_another_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let other = super::super::ChainKey::derive(b"a different audit key, 32 bytes or more");
    let err = AuditLog::open(dir.path(), &other, LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuditError::CorruptTail { .. }), "{err}");
    assert!(err.to_string().contains("audit.key"), "names the likely cause: {err}");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = AuditLog::open(dir.path(), &key(), LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuditError::CorruptTail { .. }), "{err}");
    assert!(err.to_string().contains("audit verify"), "{err}");
    std::fs::write(&path, b"not a record\n").unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), &key(), LogOptions::default()).await,
        Err(AuditError::CorruptTail { .. })
    ));
}

#[tokio::test]
async fn a_damaged_first_line_does_not_stop_the_log_but_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..2).map(rec)).await;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!(log.start(), Start::Clean);
    log.append(&rec(2)).await.unwrap();
    log.close().await;
    let err = verify(&path).unwrap_err();
    assert_eq!(err.line, 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 2000;
    write_closed(dir.path(), rotating(limit), (0..20).map(rec)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 5, "{} files", files.len());
    assert_eq!(files.last().unwrap().0, "audit.log");
    for (i, (name, bytes)) in files.iter().enumerate() {
        assert!(bytes.len() as u64 <= limit, "{name} has {} bytes", bytes.len());
        let first: serde_json::Value = serde_json::from_slice(bytes.split(|&b| b == b'\n').next().unwrap()).unwrap();
        if let Some(seq) = name.strip_prefix("audit.log.") {
            assert_eq!(first["seq"], seq.parse::<u64>().unwrap(), "{name} is named after its first seq");
        }
        // Every file after the first starts with a rotation checkpoint.
        let expected = if i == 0 { ("open", None) } else { ("checkpoint", Some("rotate")) };
        assert_eq!((first["event"].as_str().unwrap(), first["why"].as_str()), expected, "{name}");
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.records), (files.len(), 20));

    // Reopen and keep going, with concurrent appends rotating inside a batch.
    let log = open(dir.path(), rotating(limit)).await;
    assert_eq!(log.start(), Start::Clean);
    for r in append_concurrently(&log, 20..60).await {
        r.unwrap();
    }
    log.close().await;
    assert_eq!(verify(dir.path()).unwrap().records, 60);
}

#[tokio::test]
async fn a_rotation_cut_short_by_a_crash_is_undone_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    // Crashed after linking the sealed name and preparing the next file, before the rename.
    let sealed = dir.path().join(format!("audit.log.{:020}", 0));
    std::fs::hard_link(&path, &sealed).unwrap();
    std::fs::write(dir.path().join("audit.log.next"), b"{\"seq\":5,\"prev\":\"half").unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    assert!(!sealed.exists() && !dir.path().join("audit.log.next").exists());
    assert_eq!((log.start(), log.next_seq_at_open()), (Start::Clean, 5));
    log.append(&rec(3)).await.unwrap();
    log.close().await;
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.records), (1, 4));
}

#[tokio::test]
async fn every_writer_writes_an_open_line_and_a_close_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { replica: Some("pod-a".into()), ..LogOptions::default() };
    write_closed(dir.path(), options.clone(), (0..2).map(rec)).await;
    write_closed(dir.path(), options, (2..3).map(rec)).await;
    let controls = controls_of(dir.path());
    let kinds: Vec<(&str, &str)> = controls
        .iter()
        .map(|c| (c["event"].as_str().unwrap(), c["start"].as_str().or(c["why"].as_str()).unwrap()))
        .collect();
    assert_eq!(kinds, [("open", "new"), ("checkpoint", "close"), ("open", "clean"), ("checkpoint", "close")]);
    let log = controls[0]["log"].as_str().unwrap();
    assert_eq!(log.len(), 32, "a random log id: {log}");
    for c in &controls {
        assert_eq!((c["log"].as_str(), c["replica"].as_str()), (Some(log), Some("pod-a")), "{c}");
        assert!(crate::clock::parse_rfc3339_ms(c["time"].as_str().unwrap()).is_some(), "{c}");
    }
    // The head file holds the newest control line.
    let head = std::fs::read(dir.path().join("audit.log.head")).unwrap();
    let last_line = std::fs::read(dir.path().join("audit.log")).unwrap();
    assert!(last_line.ends_with(&head), "the head file is the last line");
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.log_id.as_deref(), report.replica.as_deref()), (Some(log), Some("pod-a")));
}

#[tokio::test]
async fn one_writer_per_directory_and_close_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    let err = AuditLog::open(dir.path(), &key(), LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    log.append(&rec(0)).await.unwrap();
    let clone = log.clone();
    log.close().await;
    assert!(!clone.is_healthy());
    assert!(matches!(clone.append(&rec(1)).await, Err(AuditError::Failed)));
    let again = open(dir.path(), LogOptions::default()).await;
    assert_eq!((again.next_seq_at_open(), again.start()), (3, Start::Clean));
    again.close().await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_writer_and_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    log.append(&rec(0)).await.unwrap();
    drop(log);
    let mut reopened = None;
    for _ in 0..200 {
        match AuditLog::open(dir.path(), &key(), LogOptions::default()).await {
            Ok(log) => {
                reopened = Some(log);
                break;
            }
            Err(AuditError::Locked { .. }) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let log = reopened.expect("the writer released the lock");
    assert_eq!(log.start(), Start::Clean, "dropping the last handle closes cleanly");
    assert_eq!(log.append(&rec(1)).await.unwrap(), 4);
    log.close().await;
}
