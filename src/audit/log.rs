//! [`AuditLog`]: opening (and recovering) a log directory, and appending records durably.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::control::{self, Control, HeadFile, HeadRead, HeadRef, Start};
use super::files::{self, LogFile};
use super::line::{self, ChainKey, Format, GENESIS_PREV, Parsed};
pub use super::options::LogOptions;
use super::options::Status;
use super::writer::{Fault, Paths, Pending, Queue, Writer};
use super::{AuditError, AuditRecord, LOG_FILE};

/// The durable, keyed, hash-chained audit log of one directory. Cheap to clone (one `Arc`); all clones feed
/// the same writer thread, which runs until [`AuditLog::close`] or the last clone is dropped. After a failed
/// write the writer keeps retrying (with backoff) and takes records again once writing works.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    status: Arc<Status>,
    path: PathBuf,
    dir: PathBuf,
    truncated_bytes: u64,
    next_seq_at_open: u64,
    start: Start,
    log_id: String,
    low_free: u64,
}

impl Drop for Inner {
    /// The last handle is gone: the writer finishes what is queued, writes its `close` checkpoint and stops.
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

/// Free space of the log's filesystem, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// Bytes available to the gateway (`None`: the filesystem could not be asked).
    pub free_bytes: Option<u64>,
    /// The threshold below which the log is low on space.
    pub low_threshold: u64,
}

impl Headroom {
    /// Whether free space is known to be below the threshold.
    pub fn is_low(&self) -> bool {
        self.free_bytes.is_some_and(|f| f < self.low_threshold)
    }
}

impl AuditLog {
    /// Opens (creating) `dir/audit.log` and starts its writer thread. `key` keys the chain
    /// ([`ChainKey::derive`] of `audit.key`).
    ///
    /// Recovery: leftovers of a rotation cut short are undone; a torn last line (no newline: a crash
    /// mid-write; never acknowledged) is truncated away and reported (a warning, and
    /// [`AuditLog::truncated_at_open`]); the tail is compared with the head file (`audit.log.head`) to tell
    /// a clean restart from a crash, a deleted `audit.log` or a cut log. A last complete line that does not
    /// verify under `key` is [`AuditError::CorruptTail`]: the log refuses to start. A directory already open
    /// in another process is [`AuditError::Locked`]. The writer then writes its `open` line; if that fails
    /// (a full disk) the log starts unhealthy and keeps retrying.
    pub async fn open(dir: &Path, key: &ChainKey, options: LogOptions) -> Result<AuditLog, AuditError> {
        Self::open_inner(dir, key, options, None).await
    }

    /// [`AuditLog::open`] whose writer fails writes as `fault` says.
    #[cfg(test)]
    pub(crate) async fn open_faulty(
        dir: &Path,
        key: &ChainKey,
        options: LogOptions,
        fault: Fault,
    ) -> Result<AuditLog, AuditError> {
        Self::open_inner(dir, key, options, Some(fault)).await
    }

    async fn open_inner(
        dir: &Path,
        key: &ChainKey,
        options: LogOptions,
        fault: Option<Fault>,
    ) -> Result<AuditLog, AuditError> {
        let (dir, key) = (dir.to_path_buf(), key.clone());
        let joined = tokio::task::spawn_blocking(move || open_blocking(dir, key, options, fault)).await;
        joined.map_err(|e| AuditError::Io {
            path: PathBuf::new(),
            what: "recovery task",
            source: io::Error::other(e),
        })?
    }

    /// Appends `record` and resolves with its seq once its line is written and synced. Concurrent appends
    /// share one write and one sync. `Err` means the record may not be durable: release nothing. While the
    /// log cannot be written (a failed write, until a retry succeeds) appends fail fast with
    /// [`AuditError::Failed`].
    pub async fn append(&self, record: &AuditRecord) -> Result<u64, AuditError> {
        self.append_head(record).await.map(|h| h.seq)
    }

    /// [`AuditLog::append`], resolving with the record's line: its seq and MAC (an anchor of the chain).
    pub async fn append_head(&self, record: &AuditRecord) -> Result<HeadRef, AuditError> {
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

    /// Whether appends can succeed now: false while a failed write is being retried, and after
    /// [`AuditLog::close`].
    pub fn is_healthy(&self) -> bool {
        self.inner.status.healthy.load(Ordering::SeqCst)
    }

    /// The newest durable line: its seq and MAC (`None` before the first line is written).
    pub fn head(&self) -> Option<HeadRef> {
        *self.inner.status.head.lock()
    }

    /// How many `fdatasync`/`fsync` calls the writer has made (one per batch, more per rotation);
    /// `records / fsync_count` is the group-commit factor. For metrics and tests.
    pub fn fsync_count(&self) -> u64 {
        self.inner.status.fsyncs.load(Ordering::Relaxed)
    }

    /// Failed writes or syncs (each failed retry counts).
    pub fn write_errors(&self) -> u64 {
        self.inner.status.write_errors.load(Ordering::Relaxed)
    }

    /// Rotated files removed by retention.
    pub fn files_removed(&self) -> u64 {
        self.inner.status.files_removed.load(Ordering::Relaxed)
    }

    /// Checkpoint lines written (every reason, `close` included).
    pub fn checkpoints(&self) -> u64 {
        self.inner.status.checkpoints.load(Ordering::Relaxed)
    }

    /// Free space of the log's filesystem (asked now) and the low-space threshold.
    pub fn headroom(&self) -> Headroom {
        let free_bytes = rustix::fs::statvfs(&self.inner.dir).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize));
        Headroom { free_bytes, low_threshold: self.inner.low_free }
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

    /// The seq of the writer's `open` line (the first line it writes).
    pub fn next_seq_at_open(&self) -> u64 {
        self.inner.next_seq_at_open
    }

    /// How the writer found the log when it opened.
    pub fn start(&self) -> Start {
        self.inner.start
    }

    /// The log's id (named by every control line).
    pub fn log_id(&self) -> &str {
        &self.inner.log_id
    }

    /// Writes everything queued before this call and a `close` checkpoint, then stops the writer and
    /// releases the files (so the directory can be opened again); later appends, through any clone, fail
    /// with [`AuditError::Failed`].
    pub async fn close(&self) {
        let (reply, wait) = oneshot::channel();
        self.inner.queue.close(Some(reply));
        let _ = wait.await;
    }

    /// Stops the writer without a `close` checkpoint, as a crash would (tests).
    #[cfg(test)]
    pub(crate) async fn crash(&self) {
        self.inner.queue.crash();
        self.close().await;
    }
}

impl crate::metrics::AuditSource for AuditLog {
    fn sample(&self) -> crate::metrics::AuditSample {
        let head = self.head();
        crate::metrics::AuditSample {
            head_seq: head.map(|h| h.seq),
            head_mac48: head.map_or(0, |h| mac48(&h.mac)),
            up: self.is_healthy(),
            free_bytes: self.headroom().free_bytes,
            write_errors: self.write_errors(),
            files_removed: self.files_removed(),
            checkpoints: self.checkpoints(),
        }
    }

    fn write_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.inner.status.write_seconds.clone()
    }
}

/// The first 48 bits of a MAC as an integer: exact in a Prometheus sample (a float), short enough to read,
/// and still a 2^-48 guess for anyone without the key. `audit verify --anchor SEQ:HEX` takes its 12 hex
/// digits (`printf '%012x' VALUE`).
pub fn mac48(mac: &[u8; 32]) -> u64 {
    mac[..6].iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> AuditError + 'a {
    move |source| AuditError::Io { path: path.to_path_buf(), what, source }
}

/// One log file's ends: its last complete line, checked, and its first line (the file's first seq, and
/// what it says when it is an intact control line — only that: a damaged first line is for `audit verify`
/// to report, not a reason to refuse records).
struct Ends {
    first_seq: u64,
    /// The first line when it is an intact control line.
    first_control: Option<Control>,
    first_line_len: u64,
    last: Parsed,
}

fn open_blocking(
    dir: PathBuf,
    key: ChainKey,
    options: LogOptions,
    fault: Option<Fault>,
) -> Result<AuditLog, AuditError> {
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating directory"))?;
    let lock_path = dir.join("audit.lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err(&lock_path, "opening lock file"))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: dir.clone() }),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "locking")(e)),
    }
    let paths = Paths::new(&dir, LOG_FILE);
    undo_cut_rotation(&paths)?;
    let rotated: Vec<LogFile> = files::list(&dir, LOG_FILE)
        .map_err(io_err(&dir, "listing log files"))?
        .into_iter()
        .filter(|f| f.name_seq.is_some())
        .collect();
    let path = paths.current.clone();
    let file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io_err(&path, "opening"))?;
    // Make the file's existence durable before anything is acknowledged in it.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err(&dir, "syncing directory"))?;

    let (truncated_bytes, current) = recover_current(&file, &path, &key)?;
    let newest_rotated = match (&current, rotated.last()) {
        (None, Some(f)) => Some(rotated_ends(&f.path, &key)?),
        _ => None,
    };
    let head = control::read_head(&paths.head, Some(&key)).map_err(io_err(&paths.head, "reading"))?;
    let plan = plan_start(current.as_ref(), newest_rotated.as_ref(), !rotated.is_empty(), &head);
    let file_len = file.metadata().map_err(io_err(&path, "reading metadata"))?.len();
    let file_head_len = current.as_ref().map_or(0, |c| c.first_line_len + 1);
    let file_first_seq = current.as_ref().map_or(plan.next_seq, |c| c.first_seq);
    let log_id = log_id_of(&head, current.as_ref().or(newest_rotated.as_ref()));
    let replica = options.replica.clone();
    let open = Control::Open {
        time: crate::clock::rfc3339(options.clock.now_ms()),
        log: log_id.clone(),
        replica: replica.clone(),
        start: plan.start,
        head: match &head {
            HeadRead::Valid(h) => Some(h.at),
            _ => None,
        },
        found: plan.found,
    };
    if plan.start.is_restarted_segment() {
        tracing::error!(
            path = %path.display(), start = ?plan.start, found = ?plan.found, next_seq = plan.next_seq,
            "audit log: {}; recording a restarted segment (audit verify will report it)", plan.start.describe()
        );
    }

    let status = Arc::new(Status::default());
    let low_free = options.low_free_threshold();
    let max_batch = options.max_batch.max(1);
    let mut writer = Writer::new(super::writer::Setup {
        paths,
        file,
        lock,
        file_len,
        file_head_len,
        file_first_seq,
        next_seq: plan.next_seq,
        prev: plan.prev,
        key,
        log_id: log_id.clone(),
        options,
        status: status.clone(),
        fault,
    });
    *status.head.lock() = plan.tail;
    writer.start(open);
    let queue = Arc::new(Queue::new(max_batch.saturating_mul(2)));
    let for_writer = queue.clone();
    std::thread::Builder::new()
        .name("otpgate-audit".into())
        .spawn(move || writer.run(for_writer))
        .map_err(io_err(&dir, "starting writer thread"))?;
    tracing::info!(
        path = %path.display(), next_seq = plan.next_seq, start = ?plan.start, log = %log_id, replica = ?replica,
        "audit log open"
    );
    let inner = Inner {
        queue,
        status,
        path,
        dir,
        truncated_bytes,
        next_seq_at_open: plan.next_seq,
        start: plan.start,
        log_id,
        low_free,
    };
    Ok(AuditLog { inner: Arc::new(inner) })
}

/// Where the chain continues and how the writer found it.
struct Plan {
    start: Start,
    next_seq: u64,
    prev: [u8; 32],
    /// The last line found (its seq), for the `open` line.
    found: Option<u64>,
    /// The head before the `open` line.
    tail: Option<HeadRef>,
}

/// Compares the log's tail with the head file. `current` is `audit.log` (when it holds lines),
/// `newest_rotated` the newest rotated file's ends (when `audit.log` holds none).
fn plan_start(current: Option<&Ends>, newest_rotated: Option<&Ends>, any_rotated: bool, head: &HeadRead) -> Plan {
    let tail = current.or(newest_rotated).map(|e| e.last);
    let head_ref = match head {
        HeadRead::Valid(h) => Some(h.at),
        _ => None,
    };
    let after = |at: Option<HeadRef>| match at {
        Some(h) => (h.seq + 1, h.mac),
        None => (0, GENESIS_PREV),
    };
    let tail_ref = tail.map(|t| HeadRef { seq: t.seq, mac: t.link });
    // Continue after whichever is further on: a head file ahead of the log makes the gap explicit.
    let further = match (tail_ref, head_ref) {
        (Some(t), Some(h)) if h.seq > t.seq => Some(h),
        (Some(t), _) => Some(t),
        (None, h) => h,
    };
    let (next_seq, prev) = after(further);
    let plan = |start| Plan { start, next_seq, prev, found: tail.map(|t| t.seq), tail: tail_ref };
    let Some(tail) = tail else {
        let nothing_before = !any_rotated && matches!(head, HeadRead::Absent);
        return plan(if nothing_before { Start::New } else { Start::Missing });
    };
    if tail.format == Format::Legacy {
        return plan(Start::Upgrade);
    }
    if current.is_none() {
        return plan(Start::Missing);
    }
    match head {
        // The window between a writer's first `open` line and its first head file.
        HeadRead::Absent if tail.control && is_open_line(current) => plan(Start::Crash),
        HeadRead::Absent | HeadRead::Invalid(_) => plan(Start::NoHead),
        HeadRead::Valid(h) => plan(compare_with_head(tail, h)),
    }
}

fn compare_with_head(tail: Parsed, h: &HeadFile) -> Start {
    if tail.seq < h.at.seq || (tail.seq == h.at.seq && tail.link != h.at.mac) {
        Start::Truncated
    } else if tail.seq == h.at.seq && h.control.is_close() {
        Start::Clean
    } else {
        Start::Crash
    }
}

/// Whether the current file holds nothing but an `open` line.
fn is_open_line(current: Option<&Ends>) -> bool {
    current.is_some_and(|c| c.last.seq == c.first_seq && matches!(c.first_control, Some(Control::Open { .. })))
}

/// The log id: the head file's, else the one the newest file's first line names, else a new one.
fn log_id_of(head: &HeadRead, newest: Option<&Ends>) -> String {
    if let HeadRead::Valid(h) = head {
        return h.control.log().to_string();
    }
    if let Some(c) = newest.and_then(|e| e.first_control.as_ref()) {
        return c.log().to_string();
    }
    uuid::Uuid::new_v4().simple().to_string()
}

/// Undoes a rotation that a crash cut short (see `Writer::rotate`): a new file not yet renamed into place
/// is removed; a rotated name that is still a second link to `audit.log` is removed.
fn undo_cut_rotation(paths: &Paths) -> Result<(), AuditError> {
    match std::fs::remove_file(&paths.next) {
        Ok(()) => {
            tracing::warn!(path = %paths.next.display(), "audit log: removed a new file a rotation left unfinished")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&paths.next, "removing")(e)),
    }
    let Ok(current) = std::fs::metadata(&paths.current) else { return Ok(()) };
    let rotated = files::list(&paths.dir, LOG_FILE).map_err(io_err(&paths.dir, "listing log files"))?;
    if let Some(newest) = rotated.iter().rev().find(|f| f.name_seq.is_some())
        && let Ok(meta) = std::fs::metadata(&newest.path)
        && (meta.dev(), meta.ino()) == (current.dev(), current.ino())
    {
        std::fs::remove_file(&newest.path).map_err(io_err(&newest.path, "removing"))?;
        tracing::warn!(path = %newest.path.display(), "audit log: undid a rotation a crash cut short");
    }
    Ok(())
}

/// Truncates a torn last line of the current file, then checks its first and last lines. `None` when the
/// file is (now) empty.
fn recover_current(file: &File, path: &Path, key: &ChainKey) -> Result<(u64, Option<Ends>), AuditError> {
    let len = file.metadata().map_err(io_err(path, "reading metadata"))?.len();
    let end = last_newline(file, len).map_err(io_err(path, "reading"))?.map_or(0, |nl| nl + 1);
    let torn = len - end;
    if torn > 0 {
        file.set_len(end).map_err(io_err(path, "truncating a torn line"))?;
        file.sync_all().map_err(io_err(path, "syncing"))?;
        tracing::warn!(path = %path.display(), bytes = torn, "audit log: removed a torn last line (crash mid-write)");
    }
    if end == 0 {
        return Ok((torn, None));
    }
    Ok((torn, Some(ends(file, path, end, key)?)))
}

/// The ends of a rotated file (which must end with a newline).
fn rotated_ends(path: &Path, key: &ChainKey) -> Result<Ends, AuditError> {
    let file = File::open(path).map_err(io_err(path, "opening"))?;
    let len = file.metadata().map_err(io_err(path, "reading metadata"))?.len();
    let corrupt = |detail: &str| AuditError::CorruptTail { path: path.to_path_buf(), detail: detail.into() };
    if len == 0 {
        return Err(corrupt("rotated file is empty"));
    }
    if last_newline(&file, len).map_err(io_err(path, "reading"))? != Some(len - 1) {
        return Err(corrupt("rotated file does not end with a newline"));
    }
    ends(&file, path, len, key)
}

/// Checks the line ending at `end` (exclusive; `end - 1` is its newline) and reads the first line.
fn ends(file: &File, path: &Path, end: u64, key: &ChainKey) -> Result<Ends, AuditError> {
    let corrupt = |which: &str, fault: line::LineFault| AuditError::CorruptTail {
        path: path.to_path_buf(),
        detail: format!("{which} line: {fault}"),
    };
    let line_end = end - 1;
    let start = last_newline(file, line_end).map_err(io_err(path, "reading"))?.map_or(0, |nl| nl + 1);
    let last_bytes = read_range(file, start, line_end - start).map_err(io_err(path, "reading"))?;
    let last = line::check(key, &last_bytes).map_err(|f| corrupt("last", f))?;
    let first_end = first_newline(file, end).map_err(io_err(path, "reading"))?.unwrap_or(line_end);
    let first_line = read_range(file, 0, first_end).map_err(io_err(path, "reading"))?;
    let first_seq = line::peek_seq(&first_line)
        .ok_or_else(|| AuditError::CorruptTail { path: path.to_path_buf(), detail: "first line has no seq".into() })?;
    let first_control = match line::check(key, &first_line) {
        Ok(p) if p.control => serde_json::from_slice(&first_line).ok(),
        _ => None,
    };
    Ok(Ends { first_seq, first_control, first_line_len: first_line.len() as u64, last })
}

/// Offset of the first `\n` before `end`.
fn first_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut lo = 0;
    while lo < end {
        let chunk = read_range(file, lo, CHUNK.min(end - lo))?;
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        lo += chunk.len() as u64;
    }
    Ok(None)
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
