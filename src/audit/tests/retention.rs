//! Retention: the oldest rotated files go (by count or by age), each after a retention line in the chain,
//! so `audit verify` accepts the log's later start — and still catches a file removed by anyone else.

use std::time::Duration;

use super::super::{LogOptions, Problem};
use super::{controls_of, open, read_files, rec, verify, write_closed};
use crate::clock::Clock;

fn keeping(files: usize) -> LogOptions {
    LogOptions { rotate_bytes: 1500, keep_files: files, ..LogOptions::default() }
}

fn rotated(dir: &std::path::Path) -> Vec<String> {
    read_files(dir).into_iter().map(|(name, _)| name).filter(|n| n != "audit.log").collect()
}

#[tokio::test]
async fn keep_files_removes_the_oldest_and_verify_accepts_the_new_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), keeping(2)).await;
    super::append_all(&log, (0..20).map(rec)).await;
    let removed = log.files_removed();
    log.close().await;
    let left = rotated(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(removed >= 3, "{removed}");
    // Each removal is in the chain, naming the file, and says where the chain may now start (older
    // retention lines went with the files that held them).
    let lines: Vec<serde_json::Value> =
        controls_of(dir.path()).into_iter().filter(|c| c["event"] == "retention").collect();
    let newest = lines.last().expect("a retention line is left");
    assert_eq!(newest["reason"], "count");
    let report = verify(dir.path()).unwrap();
    let first = report.first_seq.unwrap();
    assert!(first > 0);
    assert_eq!(left[0], format!("audit.log.{first:020}"));
    assert_eq!(newest["next_seq"], first);
    assert_eq!(newest["removed"], format!("audit.log.{:020}", newest["first_seq"].as_u64().unwrap()));
    assert!(report.notes.iter().any(|n| n.text.contains("removed by retention")), "{:?}", report.notes);
    // Restarting keeps applying it.
    let log = open(dir.path(), keeping(1)).await;
    assert!(log.files_removed() >= 1, "{}", log.files_removed());
    log.close().await;
    assert_eq!(rotated(dir.path()).len(), 1);
    assert!(verify(dir.path()).is_ok());
}

#[tokio::test]
async fn a_file_removed_by_anyone_but_retention_is_still_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), keeping(3), (0..20).map(rec)).await;
    let left = rotated(dir.path());
    assert_eq!(left.len(), 3);
    verify(dir.path()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let copy = |skip: &str| {
        for entry in std::fs::read_dir(scratch.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() != skip {
                std::fs::copy(&path, scratch.path().join(path.file_name().unwrap())).unwrap();
            }
        }
    };
    // The oldest file retention kept: the chain starts where no retention line says it may.
    copy(&left[0]);
    let err = verify(scratch.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::UnexplainedStart { .. }), "{err}");
    // A file from the middle.
    copy(&left[1]);
    let err = verify(scratch.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::MissingLines { .. }), "{err}");
    assert_eq!(err.file, scratch.path().join(&left[2]));
}

#[tokio::test]
async fn keep_for_removes_files_last_written_longer_ago() {
    let dir = tempfile::tempdir().unwrap();
    let now = crate::clock::system_now_ms();
    let day = Duration::from_secs(86_400);
    let options = |clock: Clock| LogOptions { rotate_bytes: 1500, keep_for: Some(day), clock, ..LogOptions::default() };
    write_closed(dir.path(), options(Clock::manual(now)), (0..10).map(rec)).await;
    let before = rotated(dir.path());
    assert!(before.len() >= 3, "nothing is a day old yet: {before:?}");
    // Two days later, every rotated file is older than a day: all go when the gateway starts.
    let later = Clock::manual(now);
    later.advance(2 * day);
    let log = open(dir.path(), options(later)).await;
    // (The retention lines themselves may fill a file, which is then just as "old" by this clock.)
    let removed = log.files_removed();
    assert!(removed >= before.len() as u64, "{removed}");
    log.close().await;
    let reasons: Vec<String> = controls_of(dir.path())
        .iter()
        .filter(|c| c["event"] == "retention")
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(!reasons.is_empty() && reasons.iter().all(|r| r == "age"), "{reasons:?}");
    for name in &before {
        assert!(!dir.path().join(name).exists(), "{name}");
    }
    let report = verify(dir.path()).unwrap();
    assert!(report.first_seq.unwrap() > 0);
}

#[tokio::test]
async fn without_retention_nothing_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), LogOptions { rotate_bytes: 1500, ..LogOptions::default() }, (0..10).map(rec)).await;
    assert_eq!(verify(dir.path()).unwrap().first_seq, Some(0));
    assert!(controls_of(dir.path()).iter().all(|c| c["event"] != "retention"));
}
