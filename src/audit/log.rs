//! [`AuditLog`]: opening (and recovering) a log directory, and appending records durably.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use super::files::{self, LogFile};
use super::line::{self, GENESIS_PREV};
use super::writer::{Pending, Queue, Writer};
use super::{AuditError, AuditRecord, LOG_FILE};

/// How the log is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// A file that would grow beyond this is rotated first (default 64 MiB). A single larger line still
    /// goes into a file of its own.
    pub rotate_bytes: u64,
    /// Most records written under one sync (default 4096). The queue holds twice this; appends wait
    /// (backpressure) when it is full.
    pub max_batch: usize,
    /// Longest the writer waits for a batch to fill up to the previous batch's size (default 200 µs,
    /// never longer than the last sync took; zero turns it off). A lone appender never waits.
    pub gather: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { rotate_bytes: 64 * 1024 * 1024, max_batch: 4096, gather: Duration::from_micros(200) }
    }
}

/// The durable, hash-chained audit log of one directory. Cheap to clone (one `Arc`); all clones feed the
/// same writer thread, which runs until [`AuditLog::close`], the last clone is dropped, or a write fails.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    healthy: Arc<AtomicBool>,
    fsyncs: Arc<AtomicU64>,
    path: PathBuf,
    truncated_bytes: u64,
    next_seq_at_open: u64,
}

impl Drop for Inner {
    /// The last handle is gone: the writer finishes what is queued and stops.
    fn drop(&mut self) {
        self.queue.close(None);
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.inner.path)
            .field("healthy", &self.is_healthy())
            .field("fsyncs", &self.fsync_count())
            .finish()
    }
}

/// The chain tail found in existing files.
struct Tail {
    next_seq: u64,
    prev: [u8; 32],
}

impl AuditLog {
    /// Opens (creating) `dir/audit.log` and starts its writer thread.
    ///
    /// The chain tail (next seq, prev) is recovered from the last complete line of `audit.log`, or of the
    /// newest rotated file when `audit.log` is empty or missing. A torn last line (no newline: a crash
    /// mid-write; it was never acknowledged) is truncated away and reported (a warning, and
    /// [`AuditLog::truncated_at_open`]). A last complete line that is not an intact chained record is
    /// [`AuditError::CorruptTail`]: the log refuses to start. A directory already open in another
    /// process is [`AuditError::Locked`].
    pub async fn open(dir: &Path, options: LogOptions) -> Result<AuditLog, AuditError> {
        Self::open_inner(dir, options, None).await
    }

    /// [`AuditLog::open`] whose writer fails every batch after `ok_batches` successful ones.
    #[cfg(test)]
    pub(crate) async fn open_failing_after(
        dir: &Path,
        options: LogOptions,
        ok_batches: u64,
    ) -> Result<AuditLog, AuditError> {
        Self::open_inner(dir, options, Some(ok_batches)).await
    }

    async fn open_inner(dir: &Path, options: LogOptions, fault: Option<u64>) -> Result<AuditLog, AuditError> {
        let dir = dir.to_path_buf();
        let joined = tokio::task::spawn_blocking(move || open_blocking(dir, options, fault)).await;
        joined.map_err(|e| AuditError::Io {
            path: PathBuf::new(),
            what: "recovery task",
            source: io::Error::other(e),
        })?
    }

    /// Appends `record` and resolves with its seq once its line is written and synced. Concurrent appends
    /// share one write and one sync. `Err` means the record may not be durable: release nothing. After
    /// the first failed write every append fails fast with [`AuditError::Failed`].
    pub async fn append(&self, record: &AuditRecord) -> Result<u64, AuditError> {
        if !self.is_healthy() {
            return Err(AuditError::Failed);
        }
        let body = serde_json::to_vec(record).map_err(|e| AuditError::Serialize(e.to_string()))?;
        let queue = &self.inner.queue;
        queue.space.acquire().await.map_err(|_| AuditError::Failed)?.forget();
        let (done, wait) = oneshot::channel();
        queue.push(Pending { body, done }).map_err(|_| AuditError::Failed)?;
        wait.await.map_err(|_| AuditError::Failed)?
    }

    /// Whether appends can succeed: false after a failed write or sync, or after [`AuditLog::close`].
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::SeqCst)
    }

    /// How many `fdatasync`/`fsync` calls the writer has made (one per batch, plus two per rotation);
    /// `records / fsync_count` is the group-commit factor. For metrics and tests.
    pub fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    /// The file being appended to (`dir/audit.log`); pass it to [`super::verify`], [`super::query`] or
    /// [`super::AccessIndex::build`].
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes of a torn last line removed when the log was opened (0 normally).
    pub fn truncated_at_open(&self) -> u64 {
        self.inner.truncated_bytes
    }

    /// The seq the first record appended after opening gets.
    pub fn next_seq_at_open(&self) -> u64 {
        self.inner.next_seq_at_open
    }

    /// Writes everything queued before this call, then stops the writer and releases the files (so the
    /// directory can be opened again); later appends, through any clone, fail with [`AuditError::Failed`].
    pub async fn close(&self) {
        let (reply, wait) = oneshot::channel();
        self.inner.queue.close(Some(reply));
        let _ = wait.await;
    }
}

fn open_blocking(dir: PathBuf, options: LogOptions, fault: Option<u64>) -> Result<AuditLog, AuditError> {
    let io_err = |path: &Path, what, source| AuditError::Io { path: path.to_path_buf(), what, source };
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "creating directory", e))?;
    let lock_path = dir.join("audit.lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| io_err(&lock_path, "opening lock file", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: dir.clone() }),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "locking", e)),
    }
    let path = dir.join(LOG_FILE);
    let file =
        OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| io_err(&path, "opening", e))?;
    // Make the file's existence durable before anything is acknowledged in it.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| io_err(&dir, "syncing directory", e))?;

    let (truncated_bytes, current) = recover_current(&file, &path)?;
    let file_len = file.metadata().map_err(|e| io_err(&path, "reading metadata", e))?.len();
    let (tail, file_first_seq) = match current {
        Some((tail, first)) => (tail, first),
        None => {
            let tail = tail_of_rotated(&dir)?;
            let first = tail.next_seq;
            (tail, first)
        }
    };

    let healthy = Arc::new(AtomicBool::new(true));
    let fsyncs = Arc::new(AtomicU64::new(0));
    let max_batch = options.max_batch.max(1);
    let writer = Writer {
        dir: dir.clone(),
        file,
        _lock: lock,
        file_len,
        durable_len: file_len,
        file_first_seq,
        next_seq: tail.next_seq,
        prev: tail.prev,
        rotate_bytes: options.rotate_bytes.max(1),
        max_batch,
        gather: options.gather,
        healthy: healthy.clone(),
        fsyncs: fsyncs.clone(),
        fail_after_batches: fault,
        batches: 0,
        buf: Vec::new(),
    };
    let queue = Arc::new(Queue::new(max_batch.saturating_mul(2)));
    let for_writer = queue.clone();
    std::thread::Builder::new()
        .name("otpgate-audit".into())
        .spawn(move || writer.run(for_writer))
        .map_err(|e| io_err(&dir, "starting writer thread", e))?;
    tracing::info!(path = %path.display(), next_seq = tail.next_seq, "audit log open");
    let inner = Inner { queue, healthy, fsyncs, path, truncated_bytes, next_seq_at_open: tail.next_seq };
    Ok(AuditLog { inner: Arc::new(inner) })
}

/// Truncates a torn last line of the current file, then reads its last line (the tail) and the seq of its
/// first line. `None` when the file is (now) empty.
fn recover_current(file: &File, path: &Path) -> Result<(u64, Option<(Tail, u64)>), AuditError> {
    let io_err = |what, source| AuditError::Io { path: path.to_path_buf(), what, source };
    let len = file.metadata().map_err(|e| io_err("reading metadata", e))?.len();
    let end = last_newline(file, len).map_err(|e| io_err("reading", e))?.map_or(0, |nl| nl + 1);
    let torn = len - end;
    if torn > 0 {
        file.set_len(end).map_err(|e| io_err("truncating a torn line", e))?;
        file.sync_all().map_err(|e| io_err("syncing", e))?;
        tracing::warn!(path = %path.display(), bytes = torn, "audit log: removed a torn last line (crash mid-write)");
    }
    if end == 0 {
        return Ok((torn, None));
    }
    let tail = read_tail(file, path, end)?;
    let head = read_range(file, 0, end.min(64)).map_err(|e| io_err("reading", e))?;
    let first = line::peek_seq(&head)
        .ok_or_else(|| AuditError::CorruptTail { path: path.to_path_buf(), detail: "first line has no seq".into() })?;
    Ok((torn, Some((tail, first))))
}

/// The chain tail from the newest rotated file, or genesis when there is none.
fn tail_of_rotated(dir: &Path) -> Result<Tail, AuditError> {
    let io_err = |what, source| AuditError::Io { path: dir.to_path_buf(), what, source };
    let rotated: Vec<LogFile> = files::list(dir, LOG_FILE).map_err(|e| io_err("listing log files", e))?;
    let Some(newest) = rotated.iter().rev().find(|f| f.name_seq.is_some()) else {
        return Ok(Tail { next_seq: 0, prev: GENESIS_PREV });
    };
    let path = &newest.path;
    let file = File::open(path).map_err(|e| AuditError::Io { path: path.clone(), what: "opening", source: e })?;
    let len =
        file.metadata().map_err(|e| AuditError::Io { path: path.clone(), what: "reading metadata", source: e })?.len();
    let corrupt = |detail: &str| AuditError::CorruptTail { path: path.clone(), detail: detail.into() };
    if len == 0 {
        return Err(corrupt("rotated file is empty"));
    }
    let nl = last_newline(&file, len).map_err(|e| AuditError::Io { path: path.clone(), what: "reading", source: e })?;
    if nl != Some(len - 1) {
        return Err(corrupt("rotated file does not end with a newline"));
    }
    read_tail(&file, path, len)
}

/// Checks the line ending at `end` (exclusive; `end - 1` is its newline) and returns the tail after it.
fn read_tail(file: &File, path: &Path, end: u64) -> Result<Tail, AuditError> {
    let io_err = |source| AuditError::Io { path: path.to_path_buf(), what: "reading", source };
    let line_end = end - 1;
    let start = last_newline(file, line_end).map_err(io_err)?.map_or(0, |nl| nl + 1);
    let bytes = read_range(file, start, line_end - start).map_err(io_err)?;
    let checked = line::check(&bytes)
        .map_err(|fault| AuditError::CorruptTail { path: path.to_path_buf(), detail: format!("last line: {fault}") })?;
    Ok(Tail { next_seq: checked.seq + 1, prev: checked.line_hash })
}

/// Offset of the last `\n` before `end`, reading backwards in chunks.
fn last_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = read_range(file, lo, hi - lo)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

fn read_range(mut file: &File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}
