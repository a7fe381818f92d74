//! `otpgate audit query`: streams a log's records through a [`Filter`], and renders them as a table.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::files::{locate, scan_records};
use super::{AuditError, AuditRecord, Decision};
use crate::clock::parse_rfc3339_ms;

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
