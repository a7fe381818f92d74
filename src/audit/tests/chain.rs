//! The line format and `verify`: an intact chain verifies; any changed byte, removed, reordered or inserted
//! line is reported at the line where it is.

use super::super::line::{self, ChainKey, Format, GENESIS_PREV, LineFault};
use super::super::{Anchor, Mode, Problem, verify_with};
use super::{AUDIT_KEY, join_lines, key, lines_of, read_files, rec, rotating, tiny, verify, write_closed};
use crate::audit::LogOptions;

fn hmac(key: &[u8], bytes: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(bytes);
    m.finalize().into_bytes().into()
}

#[test]
fn the_chain_key_is_an_hmac_of_a_label_under_the_audit_key() {
    let derived = hmac(AUDIT_KEY, b"otpgate audit chain v1");
    assert_eq!(key().mac(b"x"), hmac(&derived, b"x"));
    assert_ne!(ChainKey::derive(b"another audit key, also long enough").mac(b"x"), key().mac(b"x"));
    assert_eq!(format!("{:?}", key()), "ChainKey(<key>)", "no key material in Debug");
}

#[test]
fn encode_lays_out_seq_prev_body_and_a_mac_of_everything_before_it() {
    let body = serde_json::to_vec(&tiny(0)).unwrap();
    let mut out = Vec::new();
    let mac = line::encode(&mut out, &key(), 0, &GENESIS_PREV, &body);
    let text = String::from_utf8(out.clone()).unwrap();
    let head = format!("{{\"seq\":0,\"prev\":\"{}\",", "0".repeat(64));
    assert!(text.starts_with(&head), "{text}");
    assert!(text.contains(std::str::from_utf8(&body[1..body.len() - 1]).unwrap()));
    let (covered, tail) = text.rsplit_once(",\"mac\":\"").unwrap();
    assert_eq!(mac, key().mac(covered.as_bytes()));
    assert_eq!(tail, format!("{}\"}}", hex::encode(mac)));
    // The line is one JSON object holding the record and the chain fields.
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((v["seq"].as_u64(), v["request_id"].as_str()), (Some(0), Some("q0")));
    let parsed = line::check(&key(), &out).unwrap();
    assert_eq!((parsed.seq, parsed.link, parsed.format, parsed.control), (0, mac, Format::Keyed, false));
    // Under another key the same line does not verify.
    assert_eq!(line::check(&ChainKey::derive(b"not the key"), &out), Err(LineFault::MacMismatch));
}

#[test]
fn check_refuses_upper_case_hex_and_an_empty_body_still_parses() {
    let mut out = Vec::new();
    line::encode(&mut out, &key(), 7, &[0xab; 32], b"{}");
    assert_eq!(line::check(&key(), &out).unwrap().prev, [0xab; 32]);
    assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
    let n = out.len();
    let mut upper = out.clone();
    upper[n - 66..n - 2].make_ascii_uppercase();
    assert_ne!(upper, out, "the mac has letters");
    assert_eq!(line::check(&key(), &upper), Err(LineFault::NoMac));
    assert_eq!(line::check(&key(), b"{\"seq\":1}"), Err(LineFault::NoMac));
}

#[test]
fn legacy_lines_are_read_and_checked_by_their_sha256() {
    let mut out = Vec::new();
    let link = line::encode_legacy(&mut out, 3, &[1; 32], br#"{"a":1}"#);
    let parsed = line::check(&key(), &out).unwrap();
    assert_eq!((parsed.seq, parsed.format, parsed.link), (3, Format::Legacy, link));
    let mut changed = out.clone();
    changed[25] ^= 1;
    assert_eq!(line::check(&key(), &changed), Err(LineFault::HashMismatch));
}

#[tokio::test]
async fn a_written_chain_verifies_from_file_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..5).map(rec)).await;
    let report = verify(&path).unwrap();
    // An open line, five records, the close checkpoint.
    assert_eq!((report.files, report.records, report.lines, report.last_seq), (1, 5, 7, Some(6)));
    assert!(report.keyed && report.notes.is_empty(), "{report:?}");
    let lines = lines_of(&std::fs::read(&path).unwrap());
    assert_eq!(report.last_mac, hex::encode(line::check(&key(), lines.last().unwrap()).unwrap().link));
    assert_eq!(verify(dir.path()).unwrap(), report);
    // Each line links to the previous one's MAC.
    for pair in lines.windows(2) {
        assert_eq!(line::check(&key(), &pair[1]).unwrap().prev, line::check(&key(), &pair[0]).unwrap().link);
    }
}

#[tokio::test]
async fn empty_and_missing_logs() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(verify(dir.path()).unwrap_err().problem, Problem::NoFiles);
    let path = write_closed(dir.path(), LogOptions::default(), []).await;
    let report = verify(&path).unwrap();
    assert_eq!((report.records, report.lines, report.last_seq), (0, 2, Some(1)), "open and close");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("audit.log"), b"").unwrap();
    let report = verify(empty.path()).unwrap();
    assert_eq!((report.records, report.last_seq, report.last_mac), (0, None, "0".repeat(64)));
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
    assert_eq!(lines.len(), 8, "open, six records, close");
    let anchor = verify(&path).unwrap();
    let check = |content: Vec<u8>, line: u64, what: &str| {
        std::fs::write(&path, content).unwrap();
        let err = verify(&path).expect_err(what);
        assert_eq!(err.line, line, "{what}: {err}");
        err
    };
    for k in 1..lines.len() - 1 {
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
    // The first line removed: the chain starts at seq 1, and nothing says why.
    let err = check(join_lines(&lines[1..]), 0, "removed first line");
    assert_eq!(err.problem, Problem::UnexplainedStart { first: 1 });
    // Cut anywhere inside a line: the cut line is reported.
    for cut in 1..original.len() {
        if original[cut - 1] == b'\n' {
            continue;
        }
        let line_no = 1 + original[..cut].iter().filter(|&&b| b == b'\n').count() as u64;
        check(original[..cut].to_vec(), line_no, "cut mid-line");
    }
    // Cut after a complete line: the chain is a valid prefix, but it does not reach its head file.
    let err = check(join_lines(&lines[..5]), 0, "cut at a line end");
    assert!(matches!(&err.problem, Problem::HeadFile(d) if d.contains("ends at seq 4")), "{err}");
    // Without the head file a prefix verifies; a head kept elsewhere (an anchor) still catches it.
    std::fs::remove_file(dir.path().join("audit.log.head")).unwrap();
    let shorter = verify(&path).unwrap();
    assert_eq!(shorter.last_seq, Some(4));
    assert_ne!(shorter.last_mac, anchor.last_mac);
    assert!(shorter.notes.iter().any(|n| n.text.contains("no head file")), "{:?}", shorter.notes);
    let kept: Anchor = format!("7:{}", &anchor.last_mac[..12]).parse().unwrap();
    let err = verify_with(&path, Mode::Keyed(&key()), &[kept]).unwrap_err();
    assert!(matches!(&err.problem, Problem::Anchor { seq: 7, .. }), "{err}");
    // A blank line is not a line of the chain.
    let mut v = original.clone();
    v.extend_from_slice(b"\n");
    check(v, 9, "blank line");
}

#[tokio::test]
async fn anchors_must_match_the_line_at_their_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), (0..4).map(rec)).await;
    let lines = lines_of(&std::fs::read(&path).unwrap());
    let mac_of = |i: usize| hex::encode(line::check(&key(), &lines[i]).unwrap().link);
    let anchors: Vec<Anchor> =
        [format!("2:{}", &mac_of(2)[..12]), format!("5:{}", mac_of(5))].iter().map(|a| a.parse().unwrap()).collect();
    assert_eq!(verify_with(&path, Mode::Keyed(&key()), &anchors).unwrap().anchors_matched, 2);
    let wrong: Anchor = format!("3:{}", &mac_of(2)[..12]).parse().unwrap();
    let err = verify_with(&path, Mode::Keyed(&key()), &[wrong]).unwrap_err();
    assert!(matches!(err.problem, Problem::Anchor { seq: 3, .. }), "{err}");
    for bad in ["3", "x:abcdefabcdef", "3:abc", "3:zzzzzzzzzzzz", "3:abcdefabcdefa"] {
        assert!(bad.parse::<Anchor>().is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_log_that_does_not_start_at_genesis_or_a_misnamed_file_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_closed(dir.path(), rotating(1500), (0..6).map(rec)).await;
    let files = read_files(dir.path());
    assert!(files.len() >= 3);
    assert_eq!(files[0].0, format!("audit.log.{:020}", 0));
    // Removing the first file: the chain no longer starts at seq 0, and no retention line says why.
    std::fs::remove_file(dir.path().join(&files[0].0)).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err.problem, Problem::UnexplainedStart { .. }), "{err}");
    std::fs::write(dir.path().join(&files[0].0), &files[0].1).unwrap();
    // Renaming a rotated file out of place.
    std::fs::rename(dir.path().join(&files[1].0), dir.path().join(format!("audit.log.{:020}", 99))).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(
        matches!(err.problem, Problem::MissingLines { .. } | Problem::PrevMismatch | Problem::FileName { .. }),
        "{err}"
    );
}
