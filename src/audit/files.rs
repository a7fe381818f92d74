//! Finding a log's files in chain order, and reading them line by line without loading them whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{AuditError, AuditRecord, LOG_FILE};

/// One file of a log, in chain order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogFile {
    pub path: PathBuf,
    /// The first seq its name promises (rotated files); `None` for the current file.
    pub name_seq: Option<u64>,
}

/// The directory and base name for `path`: a directory means `DIR/audit.log`, a file means itself.
pub(crate) fn locate(path: &Path) -> (PathBuf, String) {
    if path.is_dir() {
        return (path.to_path_buf(), LOG_FILE.to_owned());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path.file_name().map_or_else(|| LOG_FILE.to_owned(), |n| n.to_string_lossy().into_owned());
    (dir, base)
}

/// The name of the rotated file whose first record is `first_seq`.
pub(crate) fn rotated_name(base: &str, first_seq: u64) -> String {
    format!("{base}.{first_seq:020}")
}

/// Rotated files `base.<digits>` in seq order, then `base` itself if it exists.
pub(crate) fn list(dir: &Path, base: &str) -> io::Result<Vec<LogFile>> {
    let mut rotated = Vec::new();
    let prefix = format!("{base}.");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_prefix(&prefix) else { continue };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(seq) = digits.parse::<u64>() {
            rotated.push(LogFile { path: entry.path(), name_seq: Some(seq) });
        }
    }
    rotated.sort_by_key(|f| f.name_seq);
    let current = dir.join(base);
    if current.is_file() {
        rotated.push(LogFile { path: current, name_seq: None });
    }
    Ok(rotated)
}

/// A buffered line reader that reports line numbers and whether a line ended with a newline.
pub(crate) struct Lines {
    reader: BufReader<File>,
    buf: Vec<u8>,
    number: u64,
}

/// One line read by [`Lines`].
pub(crate) struct Line<'a> {
    /// 1-based line number within the file.
    pub number: u64,
    /// The bytes without the newline.
    pub bytes: &'a [u8],
    /// Whether a newline ended it (only a file's last line can lack one).
    pub complete: bool,
}

impl Lines {
    pub fn open(path: &Path) -> io::Result<Lines> {
        Ok(Lines { reader: BufReader::with_capacity(256 * 1024, File::open(path)?), buf: Vec::new(), number: 0 })
    }

    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = self.buf.last() == Some(&b'\n');
        let bytes = if complete { &self.buf[..self.buf.len() - 1] } else { &self.buf[..] };
        Ok(Some(Line { number: self.number, bytes, complete }))
    }
}

/// Calls `f` with every record of the log at `path` (file or directory), oldest first, streaming. The
/// chain is not checked (that is [`super::verify`]); control lines are skipped, and so is a last line
/// without a newline (being written right now, or torn). Returns how many files were read (0 when there
/// is no log).
pub(crate) fn scan_records(path: &Path, mut f: impl FnMut(AuditRecord)) -> Result<usize, AuditError> {
    let (dir, base) = locate(path);
    let io_err = |what, source| AuditError::Io { path: dir.clone(), what, source };
    let files = match list(&dir, &base) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("listing log files", e)),
    };
    for file in &files {
        let io_err = |what, source| AuditError::Io { path: file.path.clone(), what, source };
        let mut lines = Lines::open(&file.path).map_err(|e| io_err("opening", e))?;
        while let Some(line) = lines.next_line().map_err(|e| io_err("reading", e))? {
            if !line.complete {
                break;
            }
            if super::line::is_control(line.bytes) {
                continue;
            }
            let record = serde_json::from_slice::<AuditRecord>(line.bytes).map_err(|e| AuditError::Corrupt {
                path: file.path.clone(),
                line: line.number,
                detail: e.to_string(),
            })?;
            f(record);
        }
    }
    Ok(files.len())
}
