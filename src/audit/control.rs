//! Control lines: what the writer records about the chain itself, in the chain, under the same MAC as the
//! records — so a host attacker without `audit.key` can neither forge nor remove one without breaking the
//! chain.
//!
//! - `open`: the first line every writer writes after it starts. It says how it found the log (`start`):
//!   a new chain, a clean restart after a `close`, a restart after a crash, an upgrade of an unkeyed log —
//!   or a log that does not reach the head it had (`missing`, `truncated`, `no_head`), which `audit verify`
//!   reports as a restarted segment.
//! - `checkpoint`: commits to the head (its `seq` and `prev`), the time, the log id and the replica. Written
//!   every [`super::LogOptions::checkpoint_interval`] or [`super::LogOptions::checkpoint_records`] records
//!   (`interval`), as the first line of each new file (`rotate`), when the writer recovers from a failed
//!   write (`recovered`) and at a clean shutdown (`close`). Each is also logged (`audit checkpoint`), for
//!   shipping off the host.
//! - `retention`: a rotated file is about to be removed by retention; the chain now starts at `next_seq`.
//!
//! The newest control line is also kept in `audit.log.head` beside the log (see [`HeadFile`]): the writer
//! compares it with the log when it starts, and `audit verify` checks the log reaches it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::line::{self, ChainKey};

/// Largest head file read (one control line).
const MAX_HEAD_FILE: u64 = 64 * 1024;

/// A control line's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Control {
    /// A writer started; `start` says how it found the log.
    Open {
        time: String,
        /// The log's id: random, chosen when the chain starts, kept by every later control line.
        log: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<String>,
        start: Start,
        /// The head recorded in `audit.log.head` when the writer started, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head: Option<HeadRef>,
        /// The seq of the last line the writer found in the log (`None`: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<u64>,
    },
    /// A signed checkpoint of the head: this line's `prev` is the head's MAC, `seq - 1` its seq.
    Checkpoint {
        time: String,
        log: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<String>,
        why: Why,
        /// `recovered`: when writing started to fail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_since: Option<String>,
        /// `recovered`: how many writes failed meanwhile (retries included).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_writes: Option<u32>,
    },
    /// The rotated file `removed` (seqs `first_seq..next_seq`) is removed by retention right after this
    /// line is durable: from now on the chain may start at `next_seq`.
    Retention {
        time: String,
        log: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<String>,
        removed: String,
        first_seq: u64,
        next_seq: u64,
        /// `count` (`--audit-keep-files`) or `age` (`--audit-keep-days`).
        reason: String,
    },
}

impl Control {
    /// The log id the line names.
    pub fn log(&self) -> &str {
        match self {
            Control::Open { log, .. } | Control::Checkpoint { log, .. } | Control::Retention { log, .. } => log,
        }
    }

    /// The replica the line names.
    pub fn replica(&self) -> Option<&str> {
        match self {
            Control::Open { replica, .. }
            | Control::Checkpoint { replica, .. }
            | Control::Retention { replica, .. } => replica.as_deref(),
        }
    }

    /// `open`, `checkpoint` or `retention`.
    pub fn event(&self) -> &'static str {
        match self {
            Control::Open { .. } => "open",
            Control::Checkpoint { .. } => "checkpoint",
            Control::Retention { .. } => "retention",
        }
    }

    /// Whether this is the checkpoint of a clean shutdown.
    pub fn is_close(&self) -> bool {
        matches!(self, Control::Checkpoint { why: Why::Close, .. })
    }
}

/// How a writer found the log when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// No log and no head file: a new chain (seq 0).
    New,
    /// The log ends with the `close` checkpoint the head file names: the previous writer shut down cleanly.
    Clean,
    /// The log reaches the head file's checkpoint but does not end with a `close`: the previous writer
    /// stopped without one (a crash, a kill, power loss). Lines after its last checkpoint cannot be proven
    /// complete without a head kept elsewhere.
    Crash,
    /// The log ended with an unkeyed (legacy) line: the chain is keyed from here on.
    Upgrade,
    /// `audit.log` was missing or empty although rotated files or a head file were there: the current
    /// file was deleted (or emptied). A restarted segment.
    Missing,
    /// The log ends before the head file's checkpoint (or differs there): lines were removed from its end.
    /// A restarted segment.
    Truncated,
    /// A keyed log without its head file (or with one that does not verify). A restarted segment.
    NoHead,
}

impl Start {
    /// Whether `audit verify` fails on a restart of this kind.
    pub fn is_restarted_segment(self) -> bool {
        matches!(self, Start::Missing | Start::Truncated | Start::NoHead)
    }

    /// What it means, for `audit verify`.
    pub fn describe(self) -> &'static str {
        match self {
            Start::New => "a new chain",
            Start::Clean => "a clean restart",
            Start::Crash => {
                "a restart after the previous writer stopped without a clean shutdown (crash or kill): lines \
                 after its last checkpoint cannot be proven complete without a head kept elsewhere"
            }
            Start::Upgrade => "the chain is keyed from here on; the lines before are plain SHA-256",
            Start::Missing => "audit.log was missing or empty at start although the log had a head: it was deleted",
            Start::Truncated => "the log ended before its last checkpoint at start: lines were removed from its end",
            Start::NoHead => "the log's head file (audit.log.head) was missing or invalid at start",
        }
    }
}

/// Why a checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// Periodic (time or record count).
    Interval,
    /// The first line of a new file after a rotation.
    Rotate,
    /// The first line after a failed write, once writing works again.
    Recovered,
    /// A clean shutdown: the last line the writer wrote.
    Close,
}

/// A line of the chain, by seq and MAC: a head, an anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRef {
    pub seq: u64,
    #[serde(with = "hex_mac")]
    pub mac: [u8; 32],
}

impl HeadRef {
    /// The MAC in lowercase hex.
    pub fn mac_hex(&self) -> String {
        line::hex32(&self.mac)
    }
}

mod hex_mac {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::line::hex32(mac))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// The control line kept in `audit.log.head`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadFile {
    pub at: HeadRef,
    pub control: Control,
    /// The line itself (without newline).
    pub line: Vec<u8>,
}

/// `DIR/<base>.head`.
pub fn head_path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.head"))
}

/// What reading a head file found.
#[derive(Debug)]
pub enum HeadRead {
    Absent,
    /// Present but not a control line that verifies (under `key`, when given): why.
    Invalid(String),
    Valid(HeadFile),
}

/// Reads and checks the head file at `path` (its MAC under `key`; without a key, its layout only).
pub fn read_head(path: &Path, key: Option<&ChainKey>) -> io::Result<HeadRead> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HeadRead::Absent),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_HEAD_FILE).read_to_end(&mut bytes)?;
    let Some(line) = bytes.strip_suffix(b"\n") else {
        return Ok(HeadRead::Invalid("not one complete line".into()));
    };
    let parsed = match key {
        Some(key) => line::check(key, line),
        None => line::parse(line),
    };
    let parsed = match parsed {
        Ok(p) if p.control && p.format == line::Format::Keyed => p,
        Ok(_) => return Ok(HeadRead::Invalid("not a keyed control line".into())),
        Err(fault) => return Ok(HeadRead::Invalid(fault.to_string())),
    };
    match serde_json::from_slice::<Control>(line) {
        Ok(control) => Ok(HeadRead::Valid(HeadFile {
            at: HeadRef { seq: parsed.seq, mac: parsed.link },
            control,
            line: line.to_vec(),
        })),
        Err(e) => Ok(HeadRead::Invalid(e.to_string())),
    }
}

/// Replaces the head file with `line` (a durable control line): written to a temporary file, synced, then
/// renamed over the old one, so a crash leaves the old head or the new one, never a mix. The directory is
/// not synced: a rename lost to a power cut leaves the previous (older) head, which is still true.
pub fn write_head(path: &Path, line: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("head.tmp");
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(line)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
