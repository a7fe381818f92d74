//! Log lines to stderr without a system call per line and without ever making a request wait
//! for stderr (issue 15: the access log's `write` was one syscall in five on a proxied request).
//!
//! Every line is appended to one shared buffer; a flusher thread writes the buffer out when it
//! holds [`FLUSH_AT`] bytes or [`FLUSH_EVERY`] has passed, so under load one `write` carries many
//! lines and when idle a line is out within 20 ms. Warnings and errors are written through at
//! once, after the lines before them (an operator tailing the log sees a problem when it
//! happens, in order). When stderr does not keep up (a full pipe nobody reads), the buffer stops
//! at [`CAP`]: further lines are dropped and counted, and the count is written as a line of its
//! own once there is room — the durable record of personal-data access is the audit trail, not
//! this log, so dropping here never loses an audit record.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// A buffer this full is written out at once.
pub const FLUSH_AT: usize = 32 << 10;
/// A line waits at most this long for the next write.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Beyond this many bytes waiting for stderr, lines are dropped (and counted).
pub const CAP: usize = 8 << 20;

struct State {
    buf: Vec<u8>,
    dropped: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the flusher early (a full buffer, a close).
    wake: Condvar,
    /// Serialises writes to the output, so lines leave in the order they were appended.
    out: Mutex<Box<dyn Write + Send>>,
}

/// The sink: a `MakeWriter` for the fmt layer. Clones share one buffer.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

impl LogSink {
    /// A sink writing to stderr, with its flusher thread.
    pub fn stderr() -> LogSink {
        LogSink::to(Box::new(std::io::stderr()))
    }

    /// A sink writing to `out` (tests), with its flusher thread.
    pub fn to(out: Box<dyn Write + Send>) -> LogSink {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { buf: Vec::with_capacity(FLUSH_AT * 2), dropped: 0, closed: false }),
            wake: Condvar::new(),
            out: Mutex::new(out),
        });
        let flusher = shared.clone();
        let spawned = std::thread::Builder::new().name("otpgate-log".into()).spawn(move || flush_loop(&flusher));
        if spawned.is_err() {
            // No thread: every line is written through (slower, never lost).
            shared.state.lock().closed = true;
        }
        LogSink { shared }
    }

    /// Write out everything buffered (at exit, and after a warning or an error).
    pub fn flush(&self) {
        drain(&self.shared, self.shared.state.lock());
    }

    /// Flush and stop the flusher; later lines are written through.
    pub fn close(&self) {
        self.shared.state.lock().closed = true;
        self.shared.wake.notify_one();
        self.flush();
    }

    fn append(&self, line: &[u8], urgent: bool) {
        let mut state = self.shared.state.lock();
        if state.buf.len() + line.len() > CAP {
            state.dropped += 1;
            return;
        }
        state.buf.extend_from_slice(line);
        if urgent || state.closed {
            drain(&self.shared, state);
        } else if state.buf.len() >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
    }
}

/// The buffered bytes, followed by a line saying how many were dropped since the last write. The
/// buffer left behind starts at its usual size (one allocation per batch, not a growth series).
fn take(state: &mut State) -> Vec<u8> {
    if state.buf.is_empty() && state.dropped == 0 {
        return Vec::new();
    }
    let mut taken = std::mem::replace(&mut state.buf, Vec::with_capacity(FLUSH_AT * 2));
    if state.dropped > 0 {
        let notice = format!("otpgate: {} log lines dropped: stderr did not keep up\n", state.dropped);
        taken.extend_from_slice(notice.as_bytes());
        state.dropped = 0;
    }
    taken
}

/// Write out what `state` holds. The output is locked before the buffer is let go, so bytes
/// leave in the order they were taken; the write itself happens outside the buffer's lock, so
/// requests keep appending meanwhile.
fn drain(shared: &Shared, mut state: parking_lot::MutexGuard<'_, State>) {
    let taken = take(&mut state);
    if taken.is_empty() {
        return;
    }
    let mut out = shared.out.lock();
    drop(state);
    // Nowhere to report a failing stderr; the lines are gone either way.
    let _ = out.write_all(&taken).and_then(|()| out.flush());
}

fn flush_loop(shared: &Shared) {
    loop {
        let mut state = shared.state.lock();
        if state.buf.len() < FLUSH_AT && !state.closed {
            shared.wake.wait_for(&mut state, FLUSH_EVERY);
        }
        let closed = state.closed;
        drain(shared, state);
        if closed {
            return;
        }
    }
}

/// One event's writer: the fmt layer formats a whole line and hands it over in one `write`.
pub struct LineWriter<'a> {
    sink: &'a LogSink,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.sink.append(line, self.urgent);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { sink: self, urgent: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter<'a> {
        LineWriter { sink: self, urgent: *meta.level() <= tracing::Level::WARN }
    }
}

#[cfg(test)]
pub(super) mod tests;
