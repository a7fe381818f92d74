//! `otpgate audit verify`: walks every file of a log in chain order and reports the first line that is not
//! an intact, correctly linked record.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::AuditRecord;
use super::files::{Lines, list, locate};
use super::line::{self, GENESIS_PREV, LineFault};

/// What a successful verification saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Files walked (rotated files, then `audit.log`).
    pub files: usize,
    /// Records verified.
    pub records: u64,
    /// Seq of the last record (`None` for an empty log).
    pub last_seq: Option<u64>,
    /// Hex SHA-256 of the last line (the next `prev`; 64 zeros for an empty log). Keep a copy elsewhere to
    /// detect a log later cut short after a complete line, which no chain can show by itself.
    pub last_hash: String,
}

/// The first broken line: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The file holding the broken line (the log path itself when no file could be read).
    pub file: PathBuf,
    /// 1-based line number in that file (0 when the problem is not one line).
    pub line: u64,
    /// The seq this line should have had: its place in the chain (`None` when not about a line).
    pub seq: Option<u64>,
    pub problem: Problem,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// What is wrong with the first broken line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("no audit log files found")]
    NoFiles,
    #[error("cannot read: {0}")]
    Io(String),
    #[error("the last line is cut short (no newline)")]
    Torn,
    #[error("{0}")]
    Line(LineFault),
    #[error("not a valid audit record: {0}")]
    Malformed(String),
    #[error("seq is {found}, expected {expected}: a line was removed, reordered or inserted")]
    SeqGap { expected: u64, found: u64 },
    #[error("prev does not match the previous line: the previous line was changed, removed or reordered")]
    PrevMismatch,
    #[error("the file name says its first seq is {named}, but it is {found}")]
    FileName { named: u64, found: u64 },
    #[error("a rotated file is empty")]
    EmptyRotated,
}

/// Verifies the whole chain of the log at `path`: `DIR/audit.log` (its rotated siblings
/// `audit.log.<seq>` are found next to it) or a directory holding one. The first record must be seq 0
/// with a zero `prev`; every line must be intact (its `hash`), count up by one and link to the one before
/// across files. Stops at the first broken line.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let (dir, base) = locate(path);
    let whole = |problem| VerifyError { file: path.to_path_buf(), line: 0, seq: None, problem };
    let files = list(&dir, &base).map_err(|e| whole(Problem::Io(e.to_string())))?;
    if files.is_empty() {
        return Err(whole(Problem::NoFiles));
    }
    let mut expected = 0u64;
    let mut prev = GENESIS_PREV;
    for file in &files {
        let at = |line, seq, problem| VerifyError { file: file.path.clone(), line, seq, problem };
        let io = |e: std::io::Error| at(0, None, Problem::Io(e.to_string()));
        let mut lines = Lines::open(&file.path).map_err(io)?;
        let mut first = true;
        while let Some(l) = lines.next_line().map_err(io)? {
            let fail = |problem| at(l.number, Some(expected), problem);
            if !l.complete {
                return Err(fail(Problem::Torn));
            }
            let checked = line::check(l.bytes).map_err(|f| fail(Problem::Line(f)))?;
            if checked.seq != expected {
                return Err(fail(Problem::SeqGap { expected, found: checked.seq }));
            }
            if checked.prev != prev {
                return Err(fail(Problem::PrevMismatch));
            }
            if let (true, Some(named)) = (first, file.name_seq)
                && named != checked.seq
            {
                return Err(fail(Problem::FileName { named, found: checked.seq }));
            }
            serde_json::from_slice::<AuditRecord>(l.bytes).map_err(|e| fail(Problem::Malformed(e.to_string())))?;
            prev = checked.line_hash;
            expected += 1;
            first = false;
        }
        if first && file.name_seq.is_some() {
            return Err(at(0, Some(expected), Problem::EmptyRotated));
        }
    }
    Ok(VerifyReport {
        files: files.len(),
        records: expected,
        last_seq: expected.checked_sub(1),
        last_hash: line::hex32(&prev),
    })
}
