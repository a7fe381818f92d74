//! The audit log's writer thread and its queue. The thread takes every pending record, writes them with
//! one `write`, syncs once (group commit), then answers every waiter; rotates by size; writes checkpoints;
//! applies retention. After a failed write or sync it cuts the file back to its last synced length, answers
//! the batch with an error, refuses records (fast, at the caller) and retries with backoff until a line can
//! be written again — then takes records again, without a restart.
//!
//! Closed-loop callers come back right after their answer, so a batch taken at once would hold only those
//! that arrived during the previous sync (about half of them). When the queue holds fewer records than the
//! previous batch, the writer waits a moment — at most [`super::LogOptions::gather`], and never longer than
//! the last sync took — for the rest, which roughly doubles records per sync under load and costs a lone
//! caller nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::{Semaphore, oneshot};

use super::control::{self, Control, HeadRef, Why};
use super::files::{self, rotated_name};
use super::line::{self, ChainKey};
use super::options::{LogOptions, Status};
use super::{AuditError, LOG_FILE};

/// The files of a log directory the writer touches.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    pub dir: PathBuf,
    /// `audit.log`.
    pub current: PathBuf,
    /// `audit.log.next`: the next file while a rotation prepares it.
    pub next: PathBuf,
    /// `audit.log.head`: the newest control line.
    pub head: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path, base: &str) -> Paths {
        Paths {
            dir: dir.to_path_buf(),
            current: dir.join(base),
            next: dir.join(format!("{base}.next")),
            head: control::head_path(dir, base),
        }
    }
}

/// Everything [`Writer::new`] needs.
pub(crate) struct Setup {
    pub paths: Paths,
    pub file: File,
    pub lock: File,
    pub file_len: u64,
    pub file_head_len: u64,
    pub file_first_seq: u64,
    pub next_seq: u64,
    pub prev: [u8; 32],
    pub key: ChainKey,
    pub log_id: String,
    pub options: LogOptions,
    pub status: Arc<Status>,
    pub fault: Option<Fault>,
}

/// A line to write: a record (whose waiter is answered when it is durable) or a control line.
enum Entry<'a> {
    Record(&'a [u8]),
    Control(Vec<u8>),
}

/// Retrying after a failure.
struct Failing {
    since_ms: u64,
    attempts: u32,
    next_try: Instant,
    delay: Duration,
}

/// What the writer wakes up for.
enum Wake {
    Batch,
    Tick,
    Closed,
}

/// The writer's state: the open file and the chain tail. Owned by the writer thread alone.
pub(crate) struct Writer {
    paths: Paths,
    file: File,
    /// Held for the writer's lifetime: one writer per directory.
    _lock: File,
    /// Length of the current file up to its last synced write (every acknowledged line is before it).
    durable_len: u64,
    /// Length of the current file's first line: a file holding only that is never rotated.
    file_head_len: u64,
    /// Seq of the first line in the current file (names the file when it is rotated).
    file_first_seq: u64,
    next_seq: u64,
    prev: [u8; 32],
    key: ChainKey,
    log_id: String,
    options: LogOptions,
    status: Arc<Status>,
    /// The `open` line, until it is written.
    open: Option<Vec<u8>>,
    records_since_checkpoint: u64,
    last_checkpoint: Instant,
    last_retention: Instant,
    failing: Option<Failing>,
    /// A rotation happened: apply retention once the write is done.
    retention_due: bool,
    fault: Option<Fault>,
    writes: u64,
    buf: Vec<u8>,
    durable: Vec<(usize, HeadRef)>,
}

/// How often retention by age looks at the rotated files.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

impl Writer {
    pub fn new(s: Setup) -> Writer {
        let now = crate::clock::monotonic();
        Writer {
            paths: s.paths,
            file: s.file,
            _lock: s.lock,
            durable_len: s.file_len,
            file_head_len: s.file_head_len,
            file_first_seq: s.file_first_seq,
            next_seq: s.next_seq,
            prev: s.prev,
            key: s.key,
            log_id: s.log_id,
            options: s.options,
            status: s.status,
            open: None,
            records_since_checkpoint: 0,
            last_checkpoint: now,
            last_retention: now,
            failing: None,
            retention_due: false,
            fault: s.fault,
            writes: 0,
            buf: Vec::new(),
            durable: Vec::new(),
        }
    }

    /// Writes the `open` line (and applies retention). On failure the writer starts unhealthy and retries.
    pub fn start(&mut self, open: Control) {
        match serde_json::to_vec(&open) {
            Ok(body) => self.open = Some(body),
            Err(e) => tracing::error!(error = %e, "audit log: open line not serializable"),
        }
        match self.write_open() {
            Ok(()) => {
                self.status.healthy.store(true, Ordering::SeqCst);
                self.retention_due = true;
                self.after_write();
            }
            Err(e) => self.failed(&e, "writing the open line"),
        }
    }

    fn write_open(&mut self) -> io::Result<()> {
        let Some(body) = self.open.clone() else { return Ok(()) };
        self.append(&[Entry::Control(body)])?;
        self.open = None;
        Ok(())
    }

    /// The thread body: runs until the log is closed (or every handle dropped).
    pub fn run(mut self, queue: Arc<Queue>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(self.options.max_batch.max(1));
        let mut prev_batch = 0usize;
        let mut last_sync = Duration::ZERO;
        let crashed = loop {
            if self.failing.is_some() {
                if !self.retry(&queue) {
                    break queue.state.lock().crashed;
                }
                continue;
            }
            match self.take_batch(&queue, &mut batch, prev_batch, last_sync) {
                Wake::Closed => break queue.state.lock().crashed,
                Wake::Tick => self.tick(),
                Wake::Batch => {
                    queue.space.add_permits(batch.len());
                    let started = crate::clock::monotonic();
                    let taken = batch.len();
                    self.write_batch(&mut batch);
                    last_sync = started.elapsed();
                    prev_batch = taken;
                }
            }
        };
        if !crashed && self.failing.is_none() {
            // Retention a last rotation made due goes first: the close checkpoint is the last line (a
            // rotation it causes itself is left to the next start's retention pass).
            let close = self.control_body(Why::Close);
            for _ in 0..3 {
                self.after_write();
                if !self.would_rotate(&close) {
                    break;
                }
                if let Err(e) = self.rotate() {
                    tracing::error!(error = %e, "audit log: rotation before the close checkpoint failed");
                    break;
                }
            }
            if let Err(e) = self.append(&[Entry::Control(close)]) {
                tracing::error!(error = %e, "audit log: close checkpoint not written");
            }
        }
        self.status.healthy.store(false, Ordering::SeqCst);
        let (rest, waiters) = {
            let mut st = queue.state.lock();
            (st.closed, st.stopped) = (true, true);
            (std::mem::take(&mut st.items), std::mem::take(&mut st.close_waiters))
        };
        queue.space.close();
        drop(self);
        for p in rest {
            let _ = p.done.send(Err(AuditError::Failed));
        }
        for reply in waiters {
            let _ = reply.send(());
        }
    }

    /// Waits for records, a due checkpoint or retention pass, or the end; moves up to `max_batch` records
    /// into `batch`.
    fn take_batch(&self, queue: &Queue, batch: &mut Vec<Pending>, prev_batch: usize, last_sync: Duration) -> Wake {
        let mut st = queue.state.lock();
        let tick = self.next_tick();
        while st.items.is_empty() && !st.closed {
            st.wanted = 1;
            match tick {
                Some(at) => {
                    if queue.ready.wait_until(&mut st, at).timed_out() && st.items.is_empty() {
                        st.wanted = usize::MAX;
                        return Wake::Tick;
                    }
                }
                None => queue.ready.wait(&mut st),
            }
        }
        if st.items.is_empty() {
            return Wake::Closed;
        }
        let max_batch = self.options.max_batch.max(1);
        let target = prev_batch.min(max_batch);
        let window = self.options.gather.min(last_sync);
        if st.items.len() < target && !window.is_zero() {
            let deadline = crate::clock::monotonic() + window;
            st.wanted = target;
            while st.items.len() < target && !st.closed {
                if queue.ready.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
        }
        st.wanted = usize::MAX;
        let take = st.items.len().min(max_batch);
        batch.extend(st.items.drain(..take));
        Wake::Batch
    }

    /// When the writer must wake without records: a checkpoint of records not yet checkpointed, or a
    /// retention pass by age.
    fn next_tick(&self) -> Option<Instant> {
        let checkpoint =
            (self.records_since_checkpoint > 0).then(|| self.last_checkpoint + self.options.checkpoint_interval);
        let retention = self.options.keep_for.map(|_| self.last_retention + RETENTION_EVERY);
        match (checkpoint, retention) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self) {
        let now = crate::clock::monotonic();
        if self.records_since_checkpoint > 0 && now >= self.last_checkpoint + self.options.checkpoint_interval {
            let body = self.control_body(Why::Interval);
            if let Err(e) = self.append(&[Entry::Control(body)]) {
                self.failed(&e, "writing a checkpoint");
                return;
            }
            self.after_write();
        }
        if self.options.keep_for.is_some() && now >= self.last_retention + RETENTION_EVERY {
            self.retention();
        }
    }

    /// Writes a batch of records (and a checkpoint, when one is due) and answers every waiter: `Ok` for
    /// each line made durable, an error for the rest.
    fn write_batch(&mut self, batch: &mut Vec<Pending>) {
        let due = self.records_since_checkpoint + batch.len() as u64 >= self.options.checkpoint_records
            || crate::clock::monotonic() >= self.last_checkpoint + self.options.checkpoint_interval;
        let result = {
            let mut entries: Vec<Entry<'_>> = batch.iter().map(|p| Entry::Record(&p.body)).collect();
            if due {
                entries.push(Entry::Control(self.control_body(Why::Interval)));
            }
            self.append(&entries)
        };
        let mut heads: Vec<Option<HeadRef>> = vec![None; batch.len()];
        for &(i, head) in &self.durable {
            if let Some(slot) = heads.get_mut(i) {
                *slot = Some(head);
            }
        }
        self.durable.clear();
        // Refuse further appends before anyone hears of the failure.
        let message = match &result {
            Ok(()) => String::new(),
            Err(e) => {
                self.failed(e, "writing records");
                e.to_string()
            }
        };
        for (p, head) in batch.drain(..).zip(heads) {
            let answer = head.ok_or_else(|| AuditError::Write(message.clone()));
            let _ = p.done.send(answer);
        }
        if result.is_ok() {
            self.after_write();
        }
    }

    /// Work a write made due: retention after a rotation (again if its own lines rotated the file).
    fn after_write(&mut self) {
        while std::mem::take(&mut self.retention_due) && self.failing.is_none() {
            self.retention();
        }
    }

    /// Writes `entries` as chained lines — rotating first whenever the next line would overflow the
    /// current file — with one write and one sync per file. Every line made durable is listed in
    /// `self.durable` (its index in `entries`, its seq and MAC). On error the current file is cut back to
    /// its last synced length and the chain state is that of the last durable line.
    fn append(&mut self, entries: &[Entry<'_>]) -> io::Result<()> {
        self.durable.clear();
        let mut i = 0;
        let mut controls: Vec<usize> = Vec::new();
        while i < entries.len() {
            self.buf.clear();
            controls.clear();
            let (mut seq, mut prev, mut len) = (self.next_seq, self.prev, self.durable_len);
            let first_line_of_file = self.durable_len == 0;
            let mut head_len = self.file_head_len;
            let chunk_start = self.durable.len();
            let chunk_first = i;
            let mut rotate = false;
            while let Some(entry) = entries.get(i) {
                let mark = self.buf.len();
                let body = match entry {
                    Entry::Record(b) => *b,
                    Entry::Control(b) => b.as_slice(),
                };
                let mac = line::encode(&mut self.buf, &self.key, seq, &prev, body);
                self.buf.push(b'\n');
                let line_len = (self.buf.len() - mark) as u64;
                if len > head_len && len + line_len > self.options.rotate_bytes {
                    self.buf.truncate(mark);
                    rotate = true;
                    break;
                }
                if first_line_of_file && len == 0 {
                    head_len = line_len;
                }
                if matches!(entry, Entry::Control(_)) {
                    controls.push(mark);
                }
                self.durable.push((i, HeadRef { seq, mac }));
                (prev, seq, len, i) = (mac, seq + 1, len + line_len, i + 1);
            }
            if !self.buf.is_empty() {
                if let Err(e) = self.write_buf() {
                    self.durable.truncate(chunk_start);
                    self.cut_back();
                    return Err(e);
                }
                let records = entries[chunk_first..i].iter().filter(|e| matches!(e, Entry::Record(_))).count() as u64;
                self.commit(seq, prev, len, head_len);
                self.records_since_checkpoint += records;
                let lines = std::mem::take(&mut self.buf);
                for &mark in &controls {
                    let end = lines[mark..].iter().position(|&b| b == b'\n').map_or(lines.len(), |p| mark + p);
                    self.control_written(&lines[mark..end]);
                }
                self.buf = lines;
            }
            if rotate {
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// Whether a line with `body`, appended now, would rotate the file first.
    fn would_rotate(&self, body: &[u8]) -> bool {
        let mut scratch = Vec::new();
        line::encode(&mut scratch, &self.key, self.next_seq, &self.prev, body);
        let len = scratch.len() as u64 + 1;
        self.durable_len > self.file_head_len && self.durable_len + len > self.options.rotate_bytes
    }

    /// One write of `buf` and one sync.
    fn write_buf(&mut self) -> io::Result<()> {
        self.writes += 1;
        if let Some(f) = self.fault
            && self.writes > f.ok_writes
            && self.writes - f.ok_writes <= f.failing_writes
        {
            if f.torn {
                let _ = self.file.write_all(&self.buf[..self.buf.len() / 2]);
            }
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected write fault"));
        }
        let started = crate::clock::monotonic();
        self.file.write_all(&self.buf)?;
        self.file.sync_data()?;
        self.status.write_seconds.observe(started.elapsed().as_secs_f64());
        self.status.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn commit(&mut self, seq: u64, prev: [u8; 32], len: u64, head_len: u64) {
        (self.next_seq, self.prev, self.durable_len, self.file_head_len) = (seq, prev, len, head_len);
        *self.status.head.lock() = seq.checked_sub(1).map(|s| HeadRef { seq: s, mac: prev });
    }

    /// Cuts a torn or unsynced write away: the file keeps only durable lines, so the chain goes on from the
    /// last of them and the file still verifies.
    fn cut_back(&mut self) {
        let cut = self.file.set_len(self.durable_len).and_then(|()| self.file.sync_all());
        if let Err(e) = cut {
            tracing::error!(error = %e, "audit log: cannot cut back a failed write yet; will retry");
        }
    }

    /// A control line is durable: count it, keep it as the head file, log it for shipping.
    fn control_written(&mut self, line_bytes: &[u8]) {
        let Ok(parsed) = line::parse(line_bytes) else { return };
        let Ok(control) = serde_json::from_slice::<Control>(line_bytes) else { return };
        let why = match &control {
            Control::Checkpoint { why, .. } => Some(format!("{why:?}").to_lowercase()),
            Control::Open { .. } => Some("open".to_string()),
            Control::Retention { .. } => None,
        };
        if let Some(why) = why {
            self.records_since_checkpoint = 0;
            self.last_checkpoint = crate::clock::monotonic();
            let is_checkpoint = matches!(control, Control::Checkpoint { .. });
            self.status.checkpoints.fetch_add(u64::from(is_checkpoint), Ordering::Relaxed);
            tracing::info!(
                target: "otpgate::audit",
                seq = parsed.seq,
                mac = %line::hex32(&parsed.link),
                log = %self.log_id,
                replica = self.options.replica.as_deref().unwrap_or(""),
                why,
                line = %String::from_utf8_lossy(line_bytes),
                "audit checkpoint"
            );
        }
        if let Err(e) = control::write_head(&self.paths.head, line_bytes) {
            tracing::warn!(error = %e, path = %self.paths.head.display(), "audit log: head file not updated");
        }
    }

    fn control_body(&self, why: Why) -> Vec<u8> {
        let c = Control::Checkpoint {
            time: crate::clock::rfc3339(self.options.clock.now_ms()),
            log: self.log_id.clone(),
            replica: self.options.replica.clone(),
            why,
            failed_since: None,
            failed_writes: None,
        };
        serde_json::to_vec(&c).unwrap_or_default()
    }

    /// A write failed: refuse records and retry from now on.
    fn failed(&mut self, e: &io::Error, what: &str) {
        self.status.write_errors.fetch_add(1, Ordering::Relaxed);
        let was_healthy = self.status.healthy.swap(false, Ordering::SeqCst);
        let delay = self.failing.as_ref().map_or(self.options.retry_min, |f| f.delay);
        let now = crate::clock::monotonic();
        match &mut self.failing {
            Some(f) => {
                f.attempts += 1;
                f.delay = (f.delay * 2).min(self.options.retry_max.max(self.options.retry_min));
                f.next_try = now + f.delay;
            }
            None => {
                self.failing =
                    Some(Failing { since_ms: self.options.clock.now_ms(), attempts: 1, next_try: now + delay, delay });
            }
        }
        if was_healthy || self.open.is_some() {
            tracing::error!(
                error = %e, what,
                "audit log write failed: personal routes answer 503 until it can be written again (retrying)"
            );
        }
    }

    /// While failing: answers queued records with an error until the next try, then tries to cut the file
    /// back and write a line (the pending `open` line, or a `recovered` checkpoint). False when the log is
    /// closed meanwhile.
    fn retry(&mut self, queue: &Queue) -> bool {
        let Some(next_try) = self.failing.as_ref().map(|f| f.next_try) else { return true };
        {
            let mut st = queue.state.lock();
            loop {
                let refused: Vec<Pending> = std::mem::take(&mut st.items);
                if !refused.is_empty() {
                    drop(st);
                    queue.space.add_permits(refused.len());
                    for p in refused {
                        let _ = p.done.send(Err(AuditError::Failed));
                    }
                    st = queue.state.lock();
                    continue;
                }
                if st.closed {
                    return false;
                }
                st.wanted = 1;
                let timed_out = queue.ready.wait_until(&mut st, next_try).timed_out();
                st.wanted = usize::MAX;
                if timed_out && st.items.is_empty() {
                    break;
                }
            }
        }
        let cut = self.file.set_len(self.durable_len).and_then(|()| self.file.sync_all());
        let result = cut.and_then(|()| {
            if self.open.is_some() {
                self.write_open()
            } else {
                let body = Control::Checkpoint {
                    time: crate::clock::rfc3339(self.options.clock.now_ms()),
                    log: self.log_id.clone(),
                    replica: self.options.replica.clone(),
                    why: Why::Recovered,
                    failed_since: self.failing.as_ref().map(|f| crate::clock::rfc3339(f.since_ms)),
                    failed_writes: self.failing.as_ref().map(|f| f.attempts),
                };
                let body = serde_json::to_vec(&body).unwrap_or_default();
                self.append(&[Entry::Control(body)])
            }
        });
        match result {
            Ok(()) => {
                let attempts = self.failing.take().map_or(0, |f| f.attempts);
                self.status.healthy.store(true, Ordering::SeqCst);
                tracing::info!(failed_writes = attempts, "audit log writable again: taking records");
                self.retention_due = true;
                self.after_write();
            }
            Err(e) => self.failed(&e, "retrying"),
        }
        true
    }
}

mod queue;
mod rotation;

pub(crate) use queue::{Fault, Pending, Queue};
