//! Audit trail: one record per request on personal routes, kept in a durable, hash-chained log.
//!
//! - [`AuditRecord`] is what is recorded; identifiers in it are keyed HMACs made by [`Hasher`], never raw
//!   mobiles or reference numbers.
//! - [`AuditLog`] appends records to `DIR/audit.log` as JSON lines chained by HMAC-SHA256 under a key
//!   derived from `audit.key` ([`ChainKey`]), with group commit (many appends share one `fdatasync`) and
//!   size-based rotation that keeps the chain across files. An append resolves only once its line is
//!   durable. After a write or sync failure the log refuses records (the gateway answers 503 and releases
//!   nothing) and retries with backoff until it can write again — no restart needed. Rotated files are
//!   removed by retention ([`LogOptions::keep_files`], [`LogOptions::keep_for`]).
//! - Control lines in the chain ([`control`]) record each writer's start, periodic signed checkpoints of the
//!   head, rotations, recoveries, retention and a clean shutdown; `audit.log.head` keeps the newest.
//! - [`verify`] walks every file of a log and reports the first broken line, missing segment or restarted
//!   segment; [`query`] streams records through a [`Filter`]; [`AccessIndex`] answers "who accessed my
//!   records" for a citizen.
//!
//! The line format and why every byte is covered are described in [`line`].

pub mod control;
mod files;
mod hasher;
mod index;
pub mod line;
mod log;
mod many;
mod options;
mod query;
mod refusals;
mod trail;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use control::{HeadRef, Start};
pub use hasher::Hasher;
pub use index::{AccessEntry, AccessIndex};
pub use line::ChainKey;
pub use log::{AuditLog, Headroom, LogOptions, mac48};
pub use many::{find_logs, query_many};
pub use query::{Filter, query, render_table};
pub use refusals::Refusals;
pub use trail::Trail;
pub use verify::{Anchor, Mode, Note, Problem, VerifyError, VerifyReport, verify, verify_with};

/// The name of the file being appended to; rotated files are `audit.log.<first seq, 20 digits>`.
pub const LOG_FILE: &str = "audit.log";

/// Whether the gateway let the request through.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// `"allow"` or `"deny"`, as in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = String;

    /// Parses `allow` or `deny` (the CLI's `--decision`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            other => Err(format!("decision must be allow or deny, not {other:?}")),
        }
    }
}

/// One audit record: one request on a personal route, allowed or denied.
///
/// In the log each record is one JSON line with `seq`, `prev` and `mac` added (see [`line`]); unknown
/// fields are ignored when reading, so those three do not disturb deserialization.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    /// RFC 3339 time of the decision (`crate::clock::rfc3339`).
    pub time: String,
    pub request_id: String,
    pub trace_id: String,
    /// `citizen`, `partner` or `anonymous`.
    pub caller_kind: String,
    /// The partner id, or [`Hasher::mobile`] of the citizen; never a raw number.
    pub caller_id: String,
    /// The matched route (pattern, not the raw path).
    pub route: String,
    pub method: String,
    pub decision: Decision,
    /// Reason code: `ok`, `not_owned`, `rate_limited`, a registry error code …
    pub reason: String,
    pub status: u16,
    /// [`Hasher::record`] of every record released.
    pub records: Vec<String>,
    pub record_count: u64,
    /// [`Hasher::mobile`] of every citizen whose records were released (the citizen access log).
    pub subjects: Vec<String>,
    /// Names of fields redacted from what was released.
    pub fields_redacted: Vec<String>,
    pub policy_version: String,
    /// Upstream latency in milliseconds, when the request reached the upstream.
    pub upstream_ms: Option<f64>,
    /// Client address.
    pub client: String,
    /// A summary of refusals before any caller was identified: how many such requests from
    /// `client` on `route` with `status` in the interval ending at `time` (none for a record of
    /// one request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// A request forwarded in a waiting room's drawn order: its contest and rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<ContestTurn>,
    /// A waiting room's draw (one record per contest, by the replica that closed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<Draw>,
}

/// Where a request stood in a waiting-room contest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContestTurn {
    pub contest: String,
    /// 0 is the first forwarded.
    pub rank: u64,
    /// How long the request was held.
    pub waited_ms: u64,
}

/// The draw of one waiting-room contest: who was in it, in the order drawn (lowest ticket
/// first), each as [`Hasher::mobile`] — checkable later against the requests' own records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Draw {
    pub contest: String,
    pub entrants: u64,
    pub order: Vec<String>,
}

/// What can go wrong opening, appending to or reading an audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An I/O operation on `path` failed (opening, reading, locking, recovering).
    #[error("audit log {}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The existing log cannot be continued: its last complete line is not a valid chained line under the
    /// key (changed, or written under another `audit.key`).
    #[error("audit log {} is corrupt at its tail ({detail}); refusing to start — run `otpgate audit verify`", path.display())]
    CorruptTail { path: PathBuf, detail: String },
    /// Another process holds the log's lock.
    #[error("audit log {} is locked by another process", path.display())]
    Locked { path: PathBuf },
    /// Writing or syncing this batch failed; the log refuses records until a retry succeeds.
    #[error("audit log write failed: {0}")]
    Write(String),
    /// The log cannot be written right now (a failed write, retrying) or was shut down.
    #[error("audit log cannot be written (retrying after a failed write) or is closed")]
    Failed,
    /// A record could not be serialized.
    #[error("audit record serialization: {0}")]
    Serialize(String),
    /// A line could not be read back as a record (query, index build).
    #[error("{}:{line}: unreadable audit line: {detail}", path.display())]
    Corrupt { path: PathBuf, line: u64, detail: String },
}
