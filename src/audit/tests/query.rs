//! `query` filters (alone and combined), streaming across files, times and durations, the table.

use std::io::Write;
use std::time::Duration;

use proptest::prelude::*;

use super::super::{AuditError, AuditRecord, Decision, Filter, LogOptions, query, render_table};
use super::{T0, read_files, rec, rotating, write_closed};
use crate::clock::{parse_rfc3339_ms, rfc3339};
use crate::config::units::parse_duration;

const NOW: u64 = T0 + 10 * 86_400_000;
const MIN: u64 = 60_000;

/// a: partner icmr released S1/R1 10 min ago; b: partner other denied, 2 h ago; c: citizen S1 read their
/// own record 3 days ago; d: anonymous denied 8 days ago.
fn sample() -> Vec<AuditRecord> {
    let mut a = rec(1);
    (a.time, a.subjects, a.records, a.client) =
        (rfc3339(NOW - 10 * MIN), vec!["m:s1".into()], vec!["r:r1".into()], "10.0.0.1".into());
    let mut b = rec(2);
    (b.time, b.caller_id, b.decision, b.status) = (rfc3339(NOW - 120 * MIN), "other".into(), Decision::Deny, 403);
    (b.subjects, b.records, b.client) = (vec!["m:s2".into()], vec!["r:r2".into()], "10.0.0.2".into());
    let mut c = rec(3);
    (c.time, c.caller_kind, c.caller_id) = (rfc3339(NOW - 3 * 1440 * MIN), "citizen".into(), "m:s1".into());
    (c.subjects, c.records, c.client) = (vec!["m:s1".into()], vec!["r:r3".into()], "10.0.0.3".into());
    let mut d = rec(4);
    (d.time, d.caller_kind, d.caller_id, d.decision) =
        (rfc3339(NOW - 8 * 1440 * MIN), "anonymous".into(), String::new(), Decision::Deny);
    (d.subjects, d.records, d.client) = (vec![], vec![], "10.0.0.1".into());
    vec![a, b, c, d]
}

fn ids(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.request_id.as_str()).collect()
}

#[tokio::test]
async fn each_filter_alone_and_combined() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_closed(dir.path(), LogOptions::default(), sample()).await;
    let q = |f: Filter| ids(&query(&path, &f, NOW).unwrap()).join(",");
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(q(Filter::default()), "req-1,req-2,req-3,req-4");
    assert_eq!(q(Filter { subject: s("m:s1"), ..Filter::default() }), "req-1,req-3");
    assert_eq!(q(Filter { subject: s("m:s2"), ..Filter::default() }), "req-2");
    assert_eq!(q(Filter { client: s("icmr"), ..Filter::default() }), "req-1");
    assert_eq!(q(Filter { client: s("10.0.0.1"), ..Filter::default() }), "req-1,req-4");
    assert_eq!(q(Filter { record: s("r:r2"), ..Filter::default() }), "req-2");
    assert_eq!(q(Filter { record: s("r:nope"), ..Filter::default() }), "");
    assert_eq!(q(Filter { decision: Some(Decision::Deny), ..Filter::default() }), "req-2,req-4");
    assert_eq!(q(Filter { decision: Some(Decision::Allow), ..Filter::default() }), "req-1,req-3");
    let since = |d: &str| parse_duration(d).ok();
    assert_eq!(q(Filter { since: since("1h"), ..Filter::default() }), "req-1");
    assert_eq!(q(Filter { since: since("24h"), ..Filter::default() }), "req-1,req-2");
    assert_eq!(q(Filter { since: since("7d"), ..Filter::default() }), "req-1,req-2,req-3");
    assert_eq!(q(Filter { subject: s("m:s1"), since: since("1h"), ..Filter::default() }), "req-1");
    assert_eq!(q(Filter { subject: s("m:s1"), decision: Some(Decision::Deny), ..Filter::default() }), "");
    assert_eq!(q(Filter { client: s("10.0.0.1"), decision: Some(Decision::Deny), ..Filter::default() }), "req-4");
    let all = Filter {
        subject: s("m:s1"),
        client: s("icmr"),
        record: s("r:r1"),
        since: since("15m"),
        decision: Some(Decision::Allow),
    };
    assert_eq!(q(all), "req-1");
    // Records come back whole.
    assert_eq!(query(&path, &Filter::default(), NOW).unwrap(), sample());
}

#[tokio::test]
async fn query_streams_across_rotated_files_and_skips_a_line_being_written() {
    let dir = tempfile::tempdir().unwrap();
    // Smaller than one line: each record gets a file of its own (after the file's first line, a control
    // line), and the close checkpoint one more.
    let path = write_closed(dir.path(), rotating(400), sample()).await;
    assert_eq!(read_files(dir.path()).len(), 5);
    assert_eq!(query(dir.path(), &Filter::default(), NOW).unwrap().len(), 4);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"seq\":4,\"pr").unwrap();
    assert_eq!(query(&path, &Filter::default(), NOW).unwrap().len(), 4);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"\n").unwrap();
    let err = query(&path, &Filter::default(), NOW).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
    assert!(query(&dir.path().join("nothing-here"), &Filter::default(), NOW).is_err());
}

#[test]
fn durations() {
    let d = |s| parse_duration(s).ok();
    assert_eq!(d("15m"), Some(Duration::from_secs(900)));
    assert_eq!(d("24h"), Some(Duration::from_secs(86_400)));
    assert_eq!(d("7d"), Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(d("30s"), Some(Duration::from_secs(30)));
    assert_eq!(d("2w"), Some(Duration::from_secs(14 * 86_400)));
    for bad in ["", "m", "15", "15x", "-1h", "1.5h", "h15", "99999999999999999999d"] {
        assert_eq!(d(bad), None, "{bad}");
    }
}

#[test]
fn times() {
    assert_eq!(parse_rfc3339_ms("2026-11-23T03:19:12.345Z"), Some(T0));
    assert_eq!(parse_rfc3339_ms("2026-11-23T08:49:12.345+05:30"), Some(T0));
    assert_eq!(parse_rfc3339_ms("2026-11-23T03:19:12Z"), Some(T0 - 345));
    assert_eq!(parse_rfc3339_ms("2026-11-23T03:19:12.3456789Z"), Some(T0));
    for bad in [
        "",
        "2026-11-23",
        "2026-11-23T03:19:12",
        "2026-13-23T03:19:12Z",
        "2026-11-23T03:19:12.Z",
        "x026-11-23T03:19:12Z",
    ] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
    }
}

proptest! {
    #[test]
    fn rfc3339_round_trips(ms in 0u64..4_102_444_800_000) {
        prop_assert_eq!(parse_rfc3339_ms(&rfc3339(ms)), Some(ms));
    }
}

#[test]
fn the_table_has_one_row_per_record_and_escapes_control_characters() {
    let mut records = sample();
    records[0].request_id = "evil\u{1b}[2J".into();
    let table = render_table(&records);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 5);
    for h in ["TIME", "DECISION", "STATUS", "CALLER", "ROUTE", "RECORDS", "REQUEST_ID"] {
        assert!(rows[0].contains(h), "{h}");
    }
    assert!(rows[1].contains("allow") && rows[1].contains("partner:icmr") && rows[1].contains("POST /api/v2/partner"));
    assert!(rows[2].contains("deny") && rows[2].contains("403"));
    assert!(rows[4].contains("anonymous "));
    assert!(!table.contains('\u{1b}') && table.contains("evil\\u{1b}[2J"));
    // Columns line up: the decision column starts at the same offset in every row.
    let at = rows[0].find("DECISION").unwrap();
    assert!(rows[1..].iter().all(|r| r[at..].starts_with("allow") || r[at..].starts_with("deny")));
    assert_eq!(render_table(&[]).lines().count(), 1);
}
