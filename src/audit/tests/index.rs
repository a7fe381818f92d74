//! `AccessIndex`: who accessed a subject's records, newest first, bounded per subject and in total.

use std::sync::Arc;

use super::super::{AccessIndex, Decision, LogOptions};
use super::{rec, write_closed};
use crate::clock::rfc3339;

#[test]
fn allowed_releases_are_listed_per_subject_newest_first() {
    let index = AccessIndex::default();
    let mut first = rec(1);
    first.subjects = vec!["m:a".into(), "m:b".into(), "m:a".into()];
    index.add(&first);
    let mut second = rec(2);
    second.subjects = vec!["m:a".into()];
    second.caller_id = "other".into();
    index.add(&second);
    let mut denied = rec(3);
    denied.subjects = vec!["m:a".into()];
    denied.decision = Decision::Deny;
    index.add(&denied);

    let a = index.for_subject("m:a");
    assert_eq!(a.len(), 2, "a repeated subject counts once; a denial is not an access");
    assert_eq!((a[0].caller_id.as_str(), a[0].time.as_str()), ("other", second.time.as_str()));
    assert_eq!(a[1].caller_id, "icmr");
    assert_eq!(a[1].fields, first.fields_redacted);
    assert_eq!(a[1].route, first.route);
    assert_eq!(index.for_subject("m:b").len(), 1);
    assert!(index.for_subject("m:c").is_empty());
}

#[test]
fn each_subject_keeps_its_most_recent_entries() {
    let index = AccessIndex::new(10_000, 10);
    for i in 0..25 {
        let mut r = rec(i);
        r.subjects = vec!["m:a".into()];
        index.add(&r);
    }
    let a = index.for_subject("m:a");
    assert_eq!(a.len(), 10);
    assert_eq!(a[0].time, rec(24).time);
    assert_eq!(a[9].time, rec(15).time);
}

#[test]
fn the_total_number_of_entries_is_bounded() {
    let index = AccessIndex::new(100, 1000);
    for s in 0..50 {
        for i in 0..10 {
            let mut r = rec(i);
            r.subjects = vec![format!("m:{s}")];
            index.add(&r);
        }
    }
    let entries = index.entry_count();
    assert!(entries <= 100, "{entries}");
    assert!(index.subject_count() < 50);
}

#[test]
fn concurrent_adds_are_all_kept() {
    let index = Arc::new(AccessIndex::default());
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let index = index.clone();
            scope.spawn(move || {
                for i in 0..100 {
                    let mut r = rec(t * 1000 + i);
                    r.subjects = vec!["m:shared".into()];
                    index.add(&r);
                }
            });
        }
    });
    assert_eq!(index.for_subject("m:shared").len(), 800);
    let times: Vec<String> = index.for_subject("m:shared").into_iter().map(|e| e.time).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn build_reads_the_existing_log() {
    let dir = tempfile::tempdir().unwrap();
    assert!(AccessIndex::build(dir.path()).unwrap().for_subject(&rec(0).subjects[0]).is_empty());
    write_closed(dir.path(), LogOptions::default(), (0..5).map(rec)).await;
    let index = AccessIndex::build(&dir.path().join("audit.log")).unwrap();
    for i in 0..5 {
        let entries = index.for_subject(&rec(i).subjects[0]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].time, rfc3339(super::T0 + i * 1000));
    }
}
