//! The line format and `verify`: an intact chain verifies; any changed byte, removed, reordered or inserted
//! line is reported at the line where it is.

use sha2::{Digest, Sha256};

use super::super::line::{self, GENESIS_PREV, LineFault};
use super::super::{Problem, verify};
use super::{join_lines, lines_of, read_files, rec, rotating, tiny, write_closed};
use crate::audit::LogOptions;

#[test]
fn encode_lays_out_seq_prev_body_and_a_hash_of_everything_before_it() {
    let body = serde_json::to_vec(&tiny(0)).unwrap();
    let mut out = Vec::new();
    let line_hash = line::encode(&mut out, 0, &GENESIS_PREV, &body);
    let text = String::from_utf8(out.clone()).unwrap();
    let head = format!("{{\"seq\":0,\"prev\":\"{}\",", "0".repeat(64));
    assert!(text.starts_with(&head), "{text}");
    assert!(text.contains(std::str::from_utf8(&body[1..body.len() - 1]).unwrap()));
    let (covered, hash) = text.rsplit_once(",\"hash\":\"").unwrap();
    assert_eq!(hash, format!("{}\"}}", hex::encode(Sha256::digest(covered.as_bytes()))));
    assert_eq!(line_hash, <[u8; 32]>::from(Sha256::digest(&out)));
    // The line is one JSON object holding the record and the chain fields.
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["seq"], 0);
    assert_eq!(v["request_id"], "q0");
    assert_eq!(line::check(&out).unwrap().seq, 0);
}

#[test]
fn check_refuses_upper_case_hex_and_an_empty_body_still_parses() {
    let mut out = Vec::new();
    line::encode(&mut out, 7, &[0xab; 32], b"{}");
    assert_eq!(line::check(&out).unwrap().prev, [0xab; 32]);
    assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
    let n = out.len();
    let mut upper = out.clone();
    upper[n - 66..n - 2].make_ascii_uppercase();
    assert_ne!(upper, out, "the hash has letters");
    assert_eq!(line::check(&upper), Err(LineFault::HashMismatch));
    assert_eq!(line::check(b"{\"seq\":1}"), Err(LineFault::NoHash));
}

#[tokio::test]
async fn a_written_chain_verifies_from_file_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..5).map(rec)).await;
    let report = verify(&path).unwrap();
    assert_eq!((report.files, report.records, report.last_seq), (1, 5, Some(4)));
    let last = lines_of(&std::fs::read(&path).unwrap()).pop().unwrap();
    assert_eq!(report.last_hash, hex::encode(Sha256::digest(&last)));
    assert_eq!(verify(dir.path()).unwrap(), report);
    // Each line links to the previous one.
    let lines = lines_of(&std::fs::read(&path).unwrap());
    for pair in lines.windows(2) {
        let prev = line::check(&pair[1]).unwrap().prev;
        assert_eq!(prev, <[u8; 32]>::from(Sha256::digest(&pair[0])));
    }
}

#[tokio::test]
async fn empty_and_missing_logs() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(verify(dir.path()).unwrap_err().problem, Problem::NoFiles);
    let path = write_closed(dir.path(), LogOptions::default(), []).await;
    let report = verify(&path).unwrap();
    assert_eq!((report.records, report.last_seq), (0, None));
    assert_eq!(report.last_hash, "0".repeat(64));
}

/// Flips every byte of every file (with each mask) and checks verify fails at that file and line.
fn flip_every_byte(files: &[(String, Vec<u8>)], masks: &[u8]) -> usize {
    let scratch = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(scratch.path().join(name), bytes).unwrap();
    }
    assert!(verify(scratch.path()).is_ok(), "the copy verifies before tampering");
    let mut cases = 0;
    for (name, bytes) in files {
        let target = scratch.path().join(name);
        for pos in 0..bytes.len() {
            let line_no = 1 + bytes[..pos].iter().filter(|&&b| b == b'\n').count() as u64;
            for &mask in masks {
                let mut changed = bytes.clone();
                changed[pos] ^= mask;
                std::fs::write(&target, &changed).unwrap();
                let err = verify(scratch.path()).expect_err(&format!("{name} byte {pos} ^ {mask:#x} undetected"));
                assert_eq!(err.file, target, "byte {pos} of {name}: {err}");
                assert_eq!(err.line, line_no, "byte {pos} of {name}: {err}");
                cases += 1;
            }
        }
        std::fs::write(&target, bytes).unwrap();
    }
    cases
}

#[tokio::test]
async fn every_single_byte_change_is_caught_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), LogOptions::default(), (0..4).map(tiny)).await;
    let files = read_files(dir.path());
    assert_eq!(files.len(), 1);
    let cases = flip_every_byte(&files, &[0x01, 0x20, 0x80]);
    assert!(cases > 3 * 4 * 300, "{cases}");
}

#[tokio::test]
async fn every_single_byte_change_is_caught_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    // About two tiny lines per file.
    write_closed(dir.path(), rotating(900), (0..6).map(tiny)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 3, "{:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
    flip_every_byte(&files, &[0x01]);
}

#[tokio::test]
async fn removed_reordered_inserted_and_cut_lines_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..6).map(rec)).await;
    let original = std::fs::read(&path).unwrap();
    let lines = lines_of(&original);
    let anchor = verify(&path).unwrap();
    let check = |content: Vec<u8>, line: u64, what: &str| {
        std::fs::write(&path, content).unwrap();
        let err = verify(&path).expect_err(what);
        assert_eq!(err.line, line, "{what}: {err}");
        err
    };
    for k in 0..lines.len() - 1 {
        let mut v = lines.clone();
        v.remove(k);
        let err = check(join_lines(&v), k as u64 + 1, "removed line");
        assert_eq!(err.problem, Problem::SeqGap { expected: k as u64, found: k as u64 + 1 });
        let mut v = lines.clone();
        v.swap(k, k + 1);
        check(join_lines(&v), k as u64 + 1, "swapped lines");
        let mut v = lines.clone();
        v.insert(k + 1, lines[k].clone());
        check(join_lines(&v), k as u64 + 2, "duplicated line");
    }
    // Cut anywhere inside a line: the cut line is reported.
    for cut in 1..original.len() {
        if original[cut - 1] == b'\n' {
            continue;
        }
        let line_no = 1 + original[..cut].iter().filter(|&&b| b == b'\n').count() as u64;
        check(original[..cut].to_vec(), line_no, "cut mid-line");
    }
    // Cut after a complete line: the chain is a valid prefix, but the anchor no longer matches.
    std::fs::write(&path, join_lines(&lines[..5])).unwrap();
    let shorter = verify(&path).unwrap();
    assert_eq!(shorter.last_seq, Some(4));
    assert_ne!(shorter.last_hash, anchor.last_hash);
    // A blank line is not a record.
    let mut v = original.clone();
    v.extend_from_slice(b"\n");
    check(v, 7, "blank line");
}

#[tokio::test]
async fn a_log_that_does_not_start_at_genesis_or_a_misnamed_file_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..6).map(rec)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 3);
    assert_eq!(files[0].0, format!("audit.log.{:020}", 0));
    // Removing the first file: the chain no longer starts at seq 0.
    std::fs::remove_file(dir.path().join(&files[0].0)).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::SeqGap { expected: 0, .. }), "{err}");
    std::fs::write(dir.path().join(&files[0].0), &files[0].1).unwrap();
    // Renaming a rotated file out of place.
    std::fs::rename(dir.path().join(&files[1].0), dir.path().join(format!("audit.log.{:020}", 99))).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::SeqGap { .. } | Problem::PrevMismatch | Problem::FileName { .. }), "{err}");
}
