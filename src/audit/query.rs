//! `otpgate audit query`: streams a log's records through a [`Filter`], and renders them as a table.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::files::{locate, scan_records};
use super::{AuditError, AuditRecord, Decision};

/// Which records [`query`] returns; every field set must match (AND), unset fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// A [`super::Hasher::mobile`] token: records that released this citizen's records (`subjects`) or
    /// that this citizen made (`caller_id`).
    pub subject: Option<String>,
    /// A partner id or citizen token (`caller_id`), or a client address (`client`), matched exactly.
    pub client: Option<String>,
    /// A [`super::Hasher::record`] token: records that released this record.
    pub record: Option<String>,
    /// Only records no older than this before `now_ms`.
    pub since: Option<Duration>,
    pub decision: Option<Decision>,
}

impl Filter {
    /// Whether `r` passes, at wall-clock time `now_ms` (unix ms). A record whose time does not parse
    /// fails a `since` filter.
    pub fn matches(&self, r: &AuditRecord, now_ms: u64) -> bool {
        if let Some(s) = &self.subject
            && r.caller_id != *s
            && !r.subjects.iter().any(|x| x == s)
        {
            return false;
        }
        if let Some(c) = &self.client
            && r.caller_id != *c
            && r.client != *c
        {
            return false;
        }
        if let Some(rec) = &self.record
            && !r.records.iter().any(|x| x == rec)
        {
            return false;
        }
        if let Some(d) = self.decision
            && r.decision != d
        {
            return false;
        }
        if let Some(since) = self.since {
            let cutoff = now_ms.saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
            if parse_rfc3339_ms(&r.time).is_none_or(|t| t < cutoff) {
                return false;
            }
        }
        true
    }
}

/// The records of the log at `path` (file or directory; rotated files included, oldest first) that pass
/// `filter`. Reads line by line; only matches are kept. No log at `path` is an error.
pub fn query(path: &Path, filter: &Filter, now_ms: u64) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    let files = scan_records(path, |r| {
        if filter.matches(&r, now_ms) {
            out.push(r);
        }
    })?;
    if files == 0 {
        let (dir, _) = locate(path);
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no audit log files");
        return Err(AuditError::Io { path: dir, what: "finding the log", source });
    }
    Ok(out)
}

/// A duration like `30s`, `15m`, `24h`, `7d` or `2w` (the CLI's `--since`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(unit_at);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::from_secs)
}

/// Unix ms of an RFC 3339 time (`2026-11-23T03:19:12.345Z`, or with a `±HH:MM` offset).
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        ms = (0..3).fold(0, |acc, k| acc * 10 + if k < digits { i64::from(b[i + 1 + k] - b'0') } else { 0 });
        i += 1 + digits;
    }
    let offset_min = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A plain-text table: time, decision, status, caller, route, record count, request id. Control
/// characters in values are escaped, so a crafted value cannot rewrite the terminal.
pub fn render_table(records: &[AuditRecord]) -> String {
    const HEAD: [&str; 7] = ["TIME", "DECISION", "STATUS", "CALLER", "ROUTE", "RECORDS", "REQUEST_ID"];
    let rows: Vec<[String; 7]> = records
        .iter()
        .map(|r| {
            let caller = if r.caller_id.is_empty() {
                r.caller_kind.clone()
            } else {
                format!("{}:{}", r.caller_kind, r.caller_id)
            };
            [
                escape(&r.time),
                r.decision.to_string(),
                r.status.to_string(),
                escape(&caller),
                format!("{} {}", escape(&r.method), escape(&r.route)),
                r.record_count.to_string(),
                escape(&r.request_id),
            ]
        })
        .collect();
    let mut widths = HEAD.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: [&str; 7]| {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                let _ = writeln!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
    };
    push_row(HEAD);
    for row in &rows {
        push_row(row.each_ref().map(String::as_str));
    }
    out
}

fn escape(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}
