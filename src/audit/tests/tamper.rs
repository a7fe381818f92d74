//! What a host attacker without `audit.key` can do to the log, and what `audit verify` says: an edited
//! record with every later line "recomputed", a deleted `audit.log`, a rotated file removed from the
//! middle, a cut file, a fresh log started where one was — each fails, before and after the gateway
//! restarts on it. A clean restart verifies cleanly; a crash restart verifies with a note.

use super::super::line::{self, ChainKey, GENESIS_PREV};
use super::super::{Mode, Problem, Start, verify_with};
use super::{append_all, join_lines, lines_of, open, read_files, rec, rotating, verify, write_closed};
use crate::audit::LogOptions;

/// Re-chains `lines[from..]` as an attacker would: each line's body kept (the edit included), seq and
/// prev fixed up, and a MAC under a key of the attacker's own.
fn rechain(lines: &[Vec<u8>], from: usize, with: &ChainKey) -> Vec<Vec<u8>> {
    let mut out = lines[..from].to_vec();
    let mut prev = if from == 0 { GENESIS_PREV } else { line::parse(&lines[from - 1]).unwrap().link };
    for (i, l) in lines.iter().enumerate().skip(from) {
        let v: serde_json::Value = serde_json::from_slice(l).unwrap();
        let mut body = v.as_object().unwrap().clone();
        for field in ["seq", "prev", "mac"] {
            body.remove(field);
        }
        let mut encoded = Vec::new();
        prev = line::encode(&mut encoded, with, i as u64, &prev, &serde_json::to_vec(&body).unwrap());
        out.push(encoded);
    }
    out
}

#[tokio::test]
async fn an_edited_record_with_every_later_line_recomputed_without_the_key_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..6).map(rec)).await;
    let mut lines = lines_of(&std::fs::read(&path).unwrap());
    let edited = String::from_utf8(lines[3].clone()).unwrap().replace("\"icmr\"", "\"nobody\"");
    lines[3] = edited.into_bytes();
    let attacker = ChainKey::derive(b"the attacker's guess at the key, long");
    let forged = rechain(&lines, 3, &attacker);
    std::fs::write(&path, join_lines(&forged)).unwrap();
    // The head file too, to the forged last line.
    std::fs::write(dir.path().join("audit.log.head"), [forged.last().unwrap().as_slice(), b"\n"].concat()).unwrap();
    let err = verify(&path).unwrap_err();
    assert_eq!((err.line, &err.problem), (4, &Problem::Line(line::LineFault::MacMismatch)), "{err}");
    // A structure-only check passes the forgery — which is why it is never called a verification.
    let structure = verify_with(&path, Mode::StructureOnly, &[]).unwrap();
    assert!(!structure.keyed);
    assert!(structure.notes.iter().any(|n| n.text.contains("not a verification")), "{:?}", structure.notes);
    // Re-chained the old way (plain SHA-256, which needs no key): an unkeyed line after keyed ones.
    let mut downgraded = lines[..3].to_vec();
    let mut prev = line::parse(&lines[2]).unwrap().link;
    for (i, l) in lines.iter().enumerate().skip(3) {
        let v: serde_json::Value = serde_json::from_slice(l).unwrap();
        let mut body = v.as_object().unwrap().clone();
        body.retain(|k, _| !["seq", "prev", "mac"].contains(&k.as_str()));
        let mut encoded = Vec::new();
        prev = line::encode_legacy(&mut encoded, i as u64, &prev, &serde_json::to_vec(&body).unwrap());
        downgraded.push(encoded);
    }
    std::fs::write(&path, join_lines(&downgraded)).unwrap();
    let err = verify(&path).unwrap_err();
    assert_eq!((err.line, &err.problem), (4, &Problem::LegacyAfterKeyed), "{err}");
}

#[tokio::test]
async fn a_deleted_audit_log_is_reported_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..8).map(rec)).await;
    let last = verify(dir.path()).unwrap().last_seq.unwrap();
    std::fs::remove_file(dir.path().join("audit.log")).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::CurrentMissing { head, .. } if head == last), "{err}");
    // The gateway restarts: it resumes after the head it had, and says what it found.
    let log = open(dir.path(), rotating(1500)).await;
    assert_eq!((log.start(), log.next_seq_at_open()), (Start::Missing, last + 1));
    append_all(&log, (8..10).map(rec)).await;
    log.close().await;
    let err = verify(dir.path()).unwrap_err();
    assert!(
        matches!(err.problem, Problem::RestartedSegment { start: Start::Missing, lost: Some((_, to)) } if to == last),
        "{err}"
    );
    assert!(err.to_string().contains("restarted segment"), "{err}");
}

#[tokio::test]
async fn a_rotated_file_removed_from_the_middle_is_a_missing_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..8).map(rec)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 4);
    std::fs::remove_file(dir.path().join(&files[1].0)).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::MissingLines { .. }), "{err}");
    assert_eq!(err.file, dir.path().join(&files[2].0));
    assert!(err.to_string().contains("missing segment"), "{err}");
}

#[tokio::test]
async fn cut_files_are_caught_before_and_after_a_restart() {
    // A rotated file cut short at a line end.
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..8).map(rec)).await;
    let files = read_files(dir.path());
    let lines = lines_of(&files[1].1);
    std::fs::write(dir.path().join(&files[1].0), join_lines(&lines[..lines.len() - 1])).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::MissingLines { .. }), "{err}");

    // The current file cut short at a line end, the gateway stopped.
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..6).map(rec)).await;
    let lines = lines_of(&std::fs::read(&path).unwrap());
    std::fs::write(&path, join_lines(&lines[..4])).unwrap();
    let err = verify(&path).unwrap_err();
    assert!(matches!(&err.problem, Problem::HeadFile(d) if d.contains("removed from its end")), "{err}");
    // … then restarted on: a restarted segment, after the head it had.
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!((log.start(), log.next_seq_at_open()), (Start::Truncated, lines.len() as u64));
    log.append(&rec(9)).await.unwrap();
    log.close().await;
    let err = verify(&path).unwrap_err();
    assert!(matches!(err.problem, Problem::RestartedSegment { start: Start::Truncated, lost: Some((4, 7)) }), "{err}");

    // The current file cut under a running gateway: its next line does not follow.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogOptions::default()).await;
    append_all(&log, (0..4).map(rec)).await;
    let lines = lines_of(&std::fs::read(log.path()).unwrap());
    std::fs::write(log.path(), join_lines(&lines[..2])).unwrap();
    log.append(&rec(4)).await.unwrap();
    log.close().await;
    let err = verify(log.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::SeqGap { expected: 2, found: 5 }), "{err}");
}

#[tokio::test]
async fn a_fresh_log_where_one_was_is_a_restarted_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..8).map(rec)).await;
    let old = verify(dir.path()).unwrap();
    for (name, _) in read_files(dir.path()) {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    // Only the head file is left: the directory is still a log to `verify`, one whose files are gone.
    assert_eq!(crate::audit::find_logs(&[dir.path().to_path_buf()]).unwrap(), [dir.path().join("audit.log")]);
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::CurrentMissing { last: None, .. }), "{err}");
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!(log.start(), Start::Missing, "the head file remembers the log");
    assert_eq!(log.log_id(), old.log_id.as_deref().unwrap());
    log.append(&rec(0)).await.unwrap();
    log.close().await;
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::RestartedSegment { start: Start::Missing, .. }), "{err}");

    // With the head file gone as well the directory is indistinguishable from a new one: a new
    // chain, with a new log id — only heads kept elsewhere (anchors, the head metrics) show it.
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let old = verify(dir.path()).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    write_closed(dir.path(), LogOptions::default(), (0..1).map(rec)).await;
    let new = verify(dir.path()).unwrap();
    assert_ne!(new.log_id, old.log_id);
    let anchor = format!("{}:{}", old.last_seq.unwrap(), old.last_mac).parse().unwrap();
    assert!(verify_with(dir.path(), Mode::Keyed(&super::key()), &[anchor]).is_err());
}

#[tokio::test]
async fn a_removed_or_invalid_head_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), LogOptions::default(), (0..3).map(rec)).await;
    let head = dir.path().join("audit.log.head");
    std::fs::write(&head, b"{\"seq\":4}\n").unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(&err.problem, Problem::HeadFile(d) if d.contains("does not verify")), "{err}");
    std::fs::remove_file(&head).unwrap();
    assert!(verify(dir.path()).is_ok(), "a copy without its head file verifies, with a note");
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!(log.start(), Start::NoHead);
    log.close().await;
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::RestartedSegment { start: Start::NoHead, .. }), "{err}");
}

#[tokio::test]
async fn a_clean_restart_verifies_cleanly_and_a_crash_restart_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let log = open(dir.path(), rotating(1500)).await;
        assert_eq!(log.start(), if round == 0 { Start::New } else { Start::Clean });
        append_all(&log, (round * 5..round * 5 + 5).map(rec)).await;
        log.close().await;
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.records, 15);
    assert!(report.notes.is_empty(), "{:?}", report.notes);

    let log = open(dir.path(), rotating(1500)).await;
    log.append(&rec(15)).await.unwrap();
    log.crash().await;
    let log = open(dir.path(), rotating(1500)).await;
    assert_eq!(log.start(), Start::Crash);
    log.append(&rec(16)).await.unwrap();
    log.close().await;
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.records, 17);
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert!(report.notes[0].text.contains("crash"));
}

#[tokio::test]
async fn an_unkeyed_log_is_keyed_from_its_end_and_its_prefix_comes_under_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut prev = GENESIS_PREV;
    let mut legacy = Vec::new();
    for i in 0..3 {
        let mut l = Vec::new();
        prev = line::encode_legacy(&mut l, i, &prev, &serde_json::to_vec(&rec(i)).unwrap());
        legacy.push(l);
    }
    std::fs::write(&path, join_lines(&legacy)).unwrap();
    let err = verify(&path).unwrap_err();
    assert_eq!(err.problem, Problem::NotKeyed);
    let log = open(dir.path(), LogOptions::default()).await;
    assert_eq!((log.start(), log.next_seq_at_open()), (Start::Upgrade, 3));
    log.append(&rec(3)).await.unwrap();
    log.close().await;
    let report = verify(&path).unwrap();
    assert_eq!((report.records, report.legacy_lines), (4, 3));
    assert!(report.notes.iter().any(|n| n.text.contains("unkeyed")), "{:?}", report.notes);
    // The unkeyed prefix is now committed to by the keyed open line: rewriting it (anyone can recompute
    // SHA-256) breaks the link to the keyed part.
    let mut lines = lines_of(&std::fs::read(&path).unwrap());
    let mut prev = GENESIS_PREV;
    for (i, l) in lines.iter_mut().enumerate().take(3) {
        let mut r = rec(i as u64);
        r.caller_id = "rewritten".into();
        let mut encoded = Vec::new();
        prev = line::encode_legacy(&mut encoded, i as u64, &prev, &serde_json::to_vec(&r).unwrap());
        *l = encoded;
    }
    std::fs::write(&path, join_lines(&lines)).unwrap();
    let err = verify(&path).unwrap_err();
    assert_eq!((err.line, &err.problem), (4, &Problem::PrevMismatch), "{err}");
}
