//! `otpgate audit verify`: walks every file of a log in chain order and reports the first line that is not
//! an intact, correctly linked line under the chain key — and every place where the chain does not go on as
//! one writer left it: files missing at the start (beyond what retention removed), in the middle or at the
//! end, and restarted segments (a writer that found `audit.log` deleted, the log cut short, or its head file
//! gone).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::AuditRecord;
use super::control::{self, Control, HeadRead, Start, Why};
use super::files::{Lines, list, locate};
use super::line::{self, ChainKey, Format, GENESIS_PREV, LineFault};

/// How [`verify_with`] checks the lines' MACs.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// Every MAC recomputed under the chain key: a verification.
    Keyed(&'a ChainKey),
    /// Layout, seqs and links only, each `mac` taken as written. Not a verification: anyone with write
    /// access to the log can write one that passes. For a first look where the key is not at hand.
    StructureOnly,
}

/// A line the chain must hold, kept elsewhere (a shipped checkpoint, a sample of
/// `otpgate_audit_head_mac48`): its seq and its MAC, or at least the first 6 bytes of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub mac_prefix: Vec<u8>,
}

impl FromStr for Anchor {
    type Err = String;

    /// `SEQ:HEX`, HEX being 12 to 64 hex digits of the line's MAC (an even number).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, mac) = s.split_once(':').ok_or("expected SEQ:MAC (MAC: 12 to 64 hex digits)")?;
        let seq = seq.trim().parse::<u64>().map_err(|_| format!("{seq:?} is not a seq"))?;
        let mac = mac.trim().to_ascii_lowercase();
        if !(12..=64).contains(&mac.len()) || mac.len() % 2 != 0 {
            return Err("the MAC must be 12 to 64 hex digits (an even number)".into());
        }
        let mac_prefix = hex::decode(&mac).map_err(|_| format!("{mac:?} is not hex"))?;
        Ok(Anchor { seq, mac_prefix })
    }
}

/// Something a successful verification reports that is not a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The seq it is about (`None`: the log as a whole).
    pub seq: Option<u64>,
    pub text: String,
}

/// What a successful verification saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether MACs were checked under the key (false: structure only — not a verification).
    pub keyed: bool,
    /// Files walked (rotated files, then `audit.log`).
    pub files: usize,
    /// Audit records (lines that are not control lines).
    pub records: u64,
    /// Every line: records and control lines.
    pub lines: u64,
    /// Seq of the first line (above 0 when retention removed older files).
    pub first_seq: Option<u64>,
    /// Seq of the last line (`None` for an empty log).
    pub last_seq: Option<u64>,
    /// Hex MAC of the last line (what the next line's `prev` will be; 64 zeros for an empty log). A head: keep
    /// copies elsewhere to detect a log later cut short.
    pub last_mac: String,
    /// The log's id, as its control lines name it.
    pub log_id: Option<String>,
    /// The replica its control lines name.
    pub replica: Option<String>,
    /// Unkeyed (legacy) lines at the start, written before the chain was keyed.
    pub legacy_lines: u64,
    /// Anchors found in the chain.
    pub anchors_matched: usize,
    /// Restarts after a crash, retention, an upgrade, what could not be checked.
    pub notes: Vec<Note>,
}

/// The first problem found: where, and what is wrong.
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

/// What is wrong.
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
    #[error("missing segment: lines {from}..={to} are not in the log (a file was removed or cut short)")]
    MissingLines { from: u64, to: u64 },
    #[error(
        "restarted segment: {}{}",
        start.describe(),
        lost.map(|(a, b)| format!(" (lines {a}..={b} are gone)")).unwrap_or_default()
    )]
    RestartedSegment { start: Start, lost: Option<(u64, u64)> },
    #[error(
        "the log starts at seq {first}, but no retention line says the files before it were removed: they were deleted"
    )]
    UnexplainedStart { first: u64 },
    #[error("head file {0}")]
    HeadFile(String),
    #[error(
        "audit.log is missing (deleted): {}, but its head file names seq {head}",
        last.map_or_else(|| "no line is left".to_string(), |l| format!("the log ends at seq {l}"))
    )]
    CurrentMissing { last: Option<u64>, head: u64 },
    #[error("anchor seq {seq}: {detail}")]
    Anchor { seq: u64, detail: String },
    #[error("an unkeyed (legacy) line after keyed ones")]
    LegacyAfterKeyed,
    #[error(
        "no keyed line: the log was written before the chain was keyed, so anyone with write access could have rewritten it (start the gateway on it once to key it from there on)"
    )]
    NotKeyed,
    #[error("a control line of another log (log {found}, this log is {expected})")]
    ForeignLog { expected: String, found: String },
    #[error("control line: {0}")]
    Control(String),
}

/// Verifies the log at `path` under `key`, with no anchors: see [`verify_with`].
pub fn verify(path: &Path, key: &ChainKey) -> Result<VerifyReport, VerifyError> {
    verify_with(path, Mode::Keyed(key), &[])
}

/// Walks the whole chain of the log at `path`: `DIR/audit.log` (its rotated siblings `audit.log.<seq>` and
/// head file `audit.log.head` are found next to it) or a directory holding one. Every line must be intact
/// (its MAC under the key, in [`Mode::Keyed`]), count up by one and link to the one before, across files;
/// the chain starts at seq 0 with a zero `prev`, or where a retention line says older files were removed;
/// the log reaches its head file's line and every anchor. Stops at the first problem.
pub fn verify_with(path: &Path, mode: Mode<'_>, anchors: &[Anchor]) -> Result<VerifyReport, VerifyError> {
    let (dir, base) = locate(path);
    let whole = |problem| VerifyError { file: path.to_path_buf(), line: 0, seq: None, problem };
    let key = match mode {
        Mode::Keyed(k) => Some(k),
        Mode::StructureOnly => None,
    };
    let head_path = control::head_path(&dir, &base);
    let head = control::read_head(&head_path, key).map_err(|e| whole(Problem::Io(e.to_string())))?;
    let files = list(&dir, &base).map_err(|e| whole(Problem::Io(e.to_string())))?;
    if files.is_empty() {
        return Err(whole(match &head {
            HeadRead::Valid(h) => Problem::CurrentMissing { last: None, head: h.at.seq },
            _ => Problem::NoFiles,
        }));
    }
    let mut walk = Walk::new(key.is_some(), anchors);
    for file in &files {
        let at = |line, seq, problem| VerifyError { file: file.path.clone(), line, seq, problem };
        let io = |e: std::io::Error| at(0, None, Problem::Io(e.to_string()));
        let mut lines = Lines::open(&file.path).map_err(io)?;
        let mut first = true;
        while let Some(l) = lines.next_line().map_err(io)? {
            let fail = |seq, problem| at(l.number, seq, problem);
            if !l.complete {
                return Err(fail(walk.expected, Problem::Torn));
            }
            let parsed = match key {
                Some(k) => line::check(k, l.bytes),
                None => line::parse(l.bytes),
            };
            let parsed = parsed.map_err(|f| fail(walk.expected, Problem::Line(f)))?;
            if let (true, Some(named)) = (first, file.name_seq)
                && named != parsed.seq
                && walk.expected.is_none_or(|e| e == parsed.seq)
            {
                return Err(fail(Some(parsed.seq), Problem::FileName { named, found: parsed.seq }));
            }
            walk.line(l.bytes, parsed, first).map_err(|p| fail(Some(walk.expected.unwrap_or(parsed.seq)), p))?;
            if let HeadRead::Valid(h) = &head
                && h.at.seq == parsed.seq
                && h.at.mac != parsed.link
            {
                let detail = format!("{}: the line at seq {} differs from it", head_path.display(), h.at.seq);
                return Err(fail(Some(parsed.seq), Problem::HeadFile(detail)));
            }
            first = false;
        }
        if first && file.name_seq.is_some() {
            return Err(at(0, walk.expected, Problem::EmptyRotated));
        }
    }
    let last_file = files.last().map_or_else(|| path.to_path_buf(), |f| f.path.clone());
    if let HeadRead::Valid(h) = &head
        && files.last().is_some_and(|f| f.name_seq.is_some())
    {
        let problem = Problem::CurrentMissing { last: walk.expected.and_then(|e| e.checked_sub(1)), head: h.at.seq };
        return Err(VerifyError { file: dir.join(&base), line: 0, seq: None, problem });
    }
    walk.finish(&head, &head_path).map_err(|problem| VerifyError { file: last_file, line: 0, seq: None, problem })?;
    Ok(walk.report(files.len()))
}

/// The state of a walk along the chain.
struct Walk<'a> {
    keyed_mode: bool,
    /// The seq the next line must have (`None` before the first line).
    expected: Option<u64>,
    prev: [u8; 32],
    first_seq: Option<u64>,
    records: u64,
    lines: u64,
    legacy: u64,
    keyed_seen: bool,
    /// A close checkpoint came, and no open line since (rotation checkpoints may come between).
    after_close: bool,
    prev_legacy: bool,
    log_id: Option<String>,
    replica: Option<String>,
    /// Seqs retention lines say the chain may start at.
    declared_starts: BTreeSet<u64>,
    /// Anchors not reached yet, by seq.
    anchors: Vec<&'a Anchor>,
    anchors_matched: usize,
    notes: Vec<Note>,
}

impl<'a> Walk<'a> {
    fn new(keyed_mode: bool, anchors: &'a [Anchor]) -> Walk<'a> {
        let mut anchors: Vec<&Anchor> = anchors.iter().collect();
        anchors.sort_by_key(|a| a.seq);
        Walk {
            keyed_mode,
            expected: None,
            prev: GENESIS_PREV,
            first_seq: None,
            records: 0,
            lines: 0,
            legacy: 0,
            keyed_seen: false,
            after_close: false,
            prev_legacy: false,
            log_id: None,
            replica: None,
            declared_starts: BTreeSet::new(),
            anchors,
            anchors_matched: 0,
            notes: Vec::new(),
        }
    }

    fn note(&mut self, seq: Option<u64>, text: impl Into<String>) {
        self.notes.push(Note { seq, text: text.into() });
    }

    /// One line, checked on its own already: its place in the chain, its body, what a control line says.
    fn line(&mut self, bytes: &[u8], parsed: line::Parsed, first_in_file: bool) -> Result<(), Problem> {
        let seq = parsed.seq;
        if parsed.format == Format::Legacy && self.keyed_seen {
            return Err(Problem::LegacyAfterKeyed);
        }
        let control = if parsed.control {
            Some(serde_json::from_slice::<Control>(bytes).map_err(|e| Problem::Malformed(e.to_string()))?)
        } else {
            serde_json::from_slice::<AuditRecord>(bytes).map_err(|e| Problem::Malformed(e.to_string()))?;
            None
        };
        let restarted = match &control {
            Some(Control::Open { start, .. }) if start.is_restarted_segment() => Some(*start),
            _ => None,
        };
        match self.expected {
            None => {
                self.first_seq = Some(seq);
                if seq == 0 && parsed.prev != GENESIS_PREV {
                    return Err(Problem::PrevMismatch);
                }
                if let Some(start) = restarted {
                    return Err(Problem::RestartedSegment { start, lost: None });
                }
            }
            Some(expected) => {
                if seq > expected {
                    if let Some(start) = restarted {
                        return Err(Problem::RestartedSegment { start, lost: Some((expected, seq - 1)) });
                    }
                    if first_in_file {
                        return Err(Problem::MissingLines { from: expected, to: seq - 1 });
                    }
                }
                if seq != expected {
                    return Err(Problem::SeqGap { expected, found: seq });
                }
                if parsed.prev != self.prev {
                    return Err(Problem::PrevMismatch);
                }
                if let Some(start) = restarted {
                    return Err(Problem::RestartedSegment { start, lost: None });
                }
            }
        }
        let rotation = matches!(control, Some(Control::Checkpoint { why: Why::Rotate, .. }));
        if self.after_close && !rotation && !matches!(control, Some(Control::Open { .. })) {
            return Err(Problem::Control("a line after a close checkpoint that is not a writer's open line".into()));
        }
        if let Some(c) = &control {
            self.control(c, seq, first_in_file)?;
        }
        while let Some(a) = self.anchors.first().copied().filter(|a| a.seq <= seq) {
            self.anchors.remove(0);
            if a.seq < seq {
                let text = format!("anchor seq {} is before the log's first line (removed by retention)", a.seq);
                self.note(Some(a.seq), text);
                continue;
            }
            if !parsed.link.starts_with(&a.mac_prefix) {
                let detail = format!(
                    "the line's MAC is {}, the anchor says {}…: the log was rewritten or cut and written again",
                    line::hex32(&parsed.link),
                    hex::encode(&a.mac_prefix)
                );
                return Err(Problem::Anchor { seq, detail });
            }
            self.anchors_matched += 1;
        }
        self.prev = parsed.link;
        self.expected = Some(seq + 1);
        self.lines += 1;
        self.records += u64::from(control.is_none());
        self.legacy += u64::from(parsed.format == Format::Legacy);
        self.keyed_seen |= parsed.format == Format::Keyed;
        self.after_close = match &control {
            Some(c) if c.is_close() => true,
            Some(Control::Checkpoint { why: Why::Rotate, .. }) => self.after_close,
            _ => false,
        };
        self.prev_legacy = parsed.format == Format::Legacy;
        Ok(())
    }

    /// What a control line claims, checked against the chain around it.
    fn control(&mut self, c: &Control, seq: u64, first_in_file: bool) -> Result<(), Problem> {
        if let Control::Open { start, .. } = c {
            match start {
                Start::New if seq != 0 => {
                    return Err(Problem::Control(format!("a new chain's open line at seq {seq}")));
                }
                Start::Clean if !self.after_close => {
                    return Err(Problem::Control(
                        "a clean restart, but the line before is not a close checkpoint".into(),
                    ));
                }
                Start::Upgrade if !self.prev_legacy => {
                    return Err(Problem::Control("an upgrade, but the line before is not an unkeyed line".into()));
                }
                Start::Crash => self.note(Some(seq), start.describe()),
                Start::Upgrade => {
                    let text = format!("lines before seq {seq} are unkeyed (plain SHA-256), keyed from here on");
                    self.note(Some(seq), text);
                }
                _ => {}
            }
        }
        match &self.log_id {
            Some(id) if id != c.log() => {
                return Err(Problem::ForeignLog { expected: id.clone(), found: c.log().to_string() });
            }
            Some(_) => {}
            None => self.log_id = Some(c.log().to_string()),
        }
        if self.replica.is_none() {
            self.replica = c.replica().map(str::to_string);
        }
        match c {
            Control::Checkpoint { why: Why::Rotate, .. } if !first_in_file => {
                Err(Problem::Control("a rotation checkpoint that does not start a file".into()))
            }
            Control::Retention { next_seq, .. } => {
                self.declared_starts.insert(*next_seq);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Checks of the whole: where the chain starts, that it is keyed, that it reaches its head file's line
    /// and every anchor.
    fn finish(&mut self, head: &HeadRead, head_path: &Path) -> Result<(), Problem> {
        let last = self.expected.and_then(|e| e.checked_sub(1));
        if let Some(first) = self.first_seq.filter(|&f| f > 0) {
            if !self.declared_starts.contains(&first) {
                return Err(Problem::UnexplainedStart { first });
            }
            self.note(Some(first), format!("lines 0..{first} were removed by retention (a retention line says so)"));
        }
        if self.lines > 0 && !self.keyed_seen {
            return Err(Problem::NotKeyed);
        }
        match head {
            HeadRead::Valid(h) => {
                if last.is_none_or(|l| l < h.at.seq) {
                    let ends = last.map_or_else(|| "is empty".to_string(), |l| format!("ends at seq {l}"));
                    return Err(Problem::HeadFile(format!(
                        "{}: the log {ends}, before the line it names (seq {}): lines were removed from its end",
                        head_path.display(),
                        h.at.seq
                    )));
                }
                if self.log_id.as_deref().is_some_and(|id| id != h.control.log()) {
                    return Err(Problem::HeadFile(format!("{}: names another log", head_path.display())));
                }
            }
            HeadRead::Invalid(why) => {
                return Err(Problem::HeadFile(format!("{}: does not verify: {why}", head_path.display())));
            }
            HeadRead::Absent if self.lines > 0 && self.keyed_seen => {
                let text = format!(
                    "no head file ({}) beside the log: its end is not checked against its last checkpoint",
                    head_path.display()
                );
                self.note(None, text);
            }
            HeadRead::Absent => {}
        }
        if let Some(a) = self.anchors.first() {
            let ends = last.map_or_else(|| "is empty".to_string(), |l| format!("ends at seq {l}"));
            return Err(Problem::Anchor {
                seq: a.seq,
                detail: format!("the log {ends}, before it: lines were removed"),
            });
        }
        if !self.keyed_mode {
            self.note(None, "STRUCTURE ONLY: no MAC was checked (no key); this is not a verification");
        }
        Ok(())
    }

    fn report(self, files: usize) -> VerifyReport {
        VerifyReport {
            keyed: self.keyed_mode,
            files,
            records: self.records,
            lines: self.lines,
            first_seq: self.first_seq,
            last_seq: self.expected.and_then(|e| e.checked_sub(1)),
            last_mac: line::hex32(&self.prev),
            log_id: self.log_id,
            replica: self.replica,
            legacy_lines: self.legacy,
            anchors_matched: self.anchors_matched,
            notes: self.notes,
        }
    }
}
