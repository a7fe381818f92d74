//! How a log is written ([`LogOptions`]) and what its writer thread publishes ([`Status`]): shared
//! by the log's handles and its writer, which import this file and not each other.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use parking_lot::Mutex;

use super::control::HeadRef;
use crate::clock::Clock;

/// How the log is written.
#[derive(Clone, Debug)]
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
    /// Longest time between checkpoints while records arrive (default 10 s). An idle log writes none.
    pub checkpoint_interval: Duration,
    /// Most records between checkpoints (default 100,000).
    pub checkpoint_records: u64,
    /// Retention: keep at most this many rotated files, removing the oldest (0: no count limit; default).
    pub keep_files: usize,
    /// Retention: remove rotated files last written longer ago than this (`None`: keep; default).
    pub keep_for: Option<Duration>,
    /// This replica's name, recorded in control lines (default none: a single gateway).
    pub replica: Option<String>,
    /// First wait before retrying after a failed write (default 100 ms); doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest wait between retries (default 2 s).
    pub retry_max: Duration,
    /// Below this many free bytes on the log's filesystem the log reports itself low on space (`/readyz`
    /// degraded). Default: two rotation sizes — room to finish the current file and start the next one.
    pub low_free_bytes: Option<u64>,
    /// Time of control lines and the age of rotated files.
    pub clock: Clock,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            rotate_bytes: 64 * 1024 * 1024,
            max_batch: 4096,
            gather: Duration::from_micros(200),
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_records: 100_000,
            keep_files: 0,
            keep_for: None,
            replica: None,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            low_free_bytes: None,
            clock: Clock::system(),
        }
    }
}

impl LogOptions {
    /// The free-space threshold below which the log is low on space.
    pub fn low_free_threshold(&self) -> u64 {
        self.low_free_bytes.unwrap_or(self.rotate_bytes.saturating_mul(2))
    }
}

/// State the writer thread publishes and every handle reads.
pub(crate) struct Status {
    pub healthy: AtomicBool,
    pub fsyncs: AtomicU64,
    pub write_errors: AtomicU64,
    pub files_removed: AtomicU64,
    pub checkpoints: AtomicU64,
    pub head: Mutex<Option<HeadRef>>,
    /// Seconds each write-and-sync took.
    pub write_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            healthy: AtomicBool::default(),
            fsyncs: AtomicU64::default(),
            write_errors: AtomicU64::default(),
            files_removed: AtomicU64::default(),
            checkpoints: AtomicU64::default(),
            head: Mutex::default(),
            write_seconds: crate::metrics::audit_write_histogram(),
        }
    }
}
