//! The audit log's writer thread and its queue. The thread takes every pending record, writes them with
//! one `write`, syncs once (group commit), then answers every waiter; rotates by size; on any failure
//! answers everyone with an error and stops for good.
//!
//! Closed-loop callers come back right after their answer, so a batch taken at once would hold only those
//! that arrived during the previous sync (about half of them). When the queue holds fewer records than the
//! previous batch, the writer waits a moment — at most [`super::LogOptions::gather`], and never longer than
//! the last sync took — for the rest, which roughly doubles records per sync under load and costs a lone
//! caller nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::{Semaphore, oneshot};

use super::files::rotated_name;
use super::{AuditError, LOG_FILE, line};

/// A serialized record and who waits for its seq.
pub(crate) struct Pending {
    pub body: Vec<u8>,
    pub done: oneshot::Sender<Result<u64, AuditError>>,
}

/// The queue between appenders and the writer thread.
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Free places (backpressure for appenders); closed when the writer stops.
    pub space: Semaphore,
}

#[derive(Default)]
struct State {
    items: Vec<Pending>,
    /// No more pushes: the writer drains what is queued, then stops.
    closed: bool,
    /// The writer has stopped.
    stopped: bool,
    /// Queue length at which a push wakes the writer (`usize::MAX` while it is not waiting).
    wanted: usize,
    close_waiters: Vec<oneshot::Sender<()>>,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State { wanted: usize::MAX, ..State::default() }),
            ready: Condvar::new(),
            space: Semaphore::new(capacity),
        }
    }

    /// Queues a record; gives it back when the writer no longer accepts records.
    pub fn push(&self, pending: Pending) -> Result<(), Pending> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(pending);
        }
        st.items.push(pending);
        let wake = st.items.len() >= st.wanted;
        drop(st);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Stops accepting records; the writer finishes what is queued, releases its files, then answers
    /// `reply` (at once if it has already stopped).
    pub fn close(&self, reply: Option<oneshot::Sender<()>>) {
        let mut st = self.state.lock();
        st.closed = true;
        match reply {
            Some(reply) if st.stopped => {
                let _ = reply.send(());
            }
            Some(reply) => st.close_waiters.push(reply),
            None => {}
        }
        drop(st);
        self.ready.notify_one();
    }
}

/// The writer's state: the open file and the chain tail. Owned by the writer thread alone.
pub(crate) struct Writer {
    pub dir: PathBuf,
    pub file: File,
    /// Held for the writer's lifetime: one writer per directory.
    pub _lock: File,
    pub file_len: u64,
    /// Length of the current file up to its last synced batch.
    pub durable_len: u64,
    /// Seq of the first line in the current file (names the file when it is rotated).
    pub file_first_seq: u64,
    pub next_seq: u64,
    pub prev: [u8; 32],
    pub rotate_bytes: u64,
    pub max_batch: usize,
    pub gather: Duration,
    pub healthy: Arc<AtomicBool>,
    pub fsyncs: Arc<AtomicU64>,
    /// Tests: fail every batch after this many successful ones.
    pub fail_after_batches: Option<u64>,
    pub batches: u64,
    pub buf: Vec<u8>,
}

impl Writer {
    /// The thread body: runs until the log is closed (or every handle dropped) or a write fails.
    pub fn run(mut self, queue: Arc<Queue>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(self.max_batch);
        let mut prev_batch = 0usize;
        let mut last_sync = Duration::ZERO;
        loop {
            if !self.take_batch(&queue, &mut batch, prev_batch, last_sync) {
                break;
            }
            queue.space.add_permits(batch.len());
            let started = crate::clock::monotonic();
            match self.write_batch(&batch) {
                Ok(first_seq) => {
                    last_sync = started.elapsed();
                    prev_batch = batch.len();
                    for (i, p) in batch.drain(..).enumerate() {
                        let _ = p.done.send(Ok(first_seq + i as u64));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit log write failed; refusing further records");
                    self.healthy.store(false, Ordering::SeqCst);
                    // Cut a torn or unsynced batch away: the file keeps only durable records, so it
                    // still verifies and the next start resumes cleanly.
                    if self.file.set_len(self.durable_len).is_ok() {
                        let _ = self.file.sync_data();
                    }
                    for p in batch.drain(..) {
                        let _ = p.done.send(Err(AuditError::Write(e.to_string())));
                    }
                    break;
                }
            }
        }
        self.healthy.store(false, Ordering::SeqCst);
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

    /// Waits for records and moves up to `max_batch` of them into `batch`; false when closed and drained.
    fn take_batch(&self, queue: &Queue, batch: &mut Vec<Pending>, prev_batch: usize, last_sync: Duration) -> bool {
        let mut st = queue.state.lock();
        while st.items.is_empty() && !st.closed {
            st.wanted = 1;
            queue.ready.wait(&mut st);
        }
        if st.items.is_empty() {
            return false;
        }
        let target = prev_batch.min(self.max_batch);
        let window = self.gather.min(last_sync);
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
        let take = st.items.len().min(self.max_batch);
        batch.extend(st.items.drain(..take));
        true
    }

    /// Writes every body as a chained line and syncs once; returns the first line's seq.
    fn write_batch(&mut self, batch: &[Pending]) -> io::Result<u64> {
        if self.fail_after_batches.is_some_and(|n| self.batches >= n) {
            return Err(io::Error::other("injected write fault"));
        }
        let first_seq = self.next_seq;
        self.buf.clear();
        for p in batch {
            let start = self.buf.len();
            let hash = line::encode(&mut self.buf, self.next_seq, &self.prev, &p.body);
            self.buf.push(b'\n');
            let line_len = (self.buf.len() - start) as u64;
            let before = self.file_len + start as u64;
            if before > 0 && before + line_len > self.rotate_bytes {
                self.file.write_all(&self.buf[..start])?;
                self.file_len += start as u64;
                self.rotate()?;
                self.buf.drain(..start);
            }
            self.prev = hash;
            self.next_seq += 1;
        }
        self.file.write_all(&self.buf)?;
        self.file_len += self.buf.len() as u64;
        self.file.sync_data()?;
        self.durable_len = self.file_len;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.batches += 1;
        Ok(first_seq)
    }

    /// Seals the current file under its first seq and starts an empty `audit.log`; the next line written
    /// (seq `next_seq`) is the new file's first.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let current = self.dir.join(LOG_FILE);
        let sealed = self.dir.join(rotated_name(LOG_FILE, self.file_first_seq));
        if sealed.exists() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already exists", sealed.display())));
        }
        std::fs::rename(&current, &sealed)?;
        self.file = OpenOptions::new().read(true).append(true).create_new(true).open(&current)?;
        File::open(&self.dir)?.sync_all()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        tracing::info!(sealed = %sealed.display(), "audit log rotated");
        self.file_len = 0;
        self.durable_len = 0;
        self.file_first_seq = self.next_seq;
        Ok(())
    }
}
