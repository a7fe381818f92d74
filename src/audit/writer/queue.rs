//! The queue between the log's appenders and its writer thread: bounded (appends wait when it is
//! full), closed once to stop the writer; and the faults tests inject into writes.

use super::*;

/// A serialized record and who waits for its line.
pub(crate) struct Pending {
    pub body: Vec<u8>,
    pub done: oneshot::Sender<Result<HeadRef, AuditError>>,
}

/// The queue between appenders and the writer thread.
pub(crate) struct Queue {
    pub(super) state: Mutex<State>,
    pub(super) ready: Condvar,
    /// Free places (backpressure for appenders); closed when the writer stops.
    pub space: Semaphore,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) items: Vec<Pending>,
    /// No more pushes: the writer drains what is queued, then stops.
    pub(super) closed: bool,
    /// Stop without the `close` checkpoint (tests: a crash).
    pub(super) crashed: bool,
    /// The writer has stopped.
    pub(super) stopped: bool,
    /// Queue length at which a push wakes the writer (`usize::MAX` while it is not waiting).
    pub(super) wanted: usize,
    pub(super) close_waiters: Vec<oneshot::Sender<()>>,
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

    /// Stops accepting records; the writer finishes what is queued, writes its `close` checkpoint, releases
    /// its files, then answers `reply` (at once if it has already stopped).
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

    /// The next [`Queue::close`] stops the writer without its `close` checkpoint.
    #[cfg(test)]
    pub fn crash(&self) {
        self.state.lock().crashed = true;
    }
}

/// Test faults: which writes fail, and how.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fault {
    /// Writes (each write+sync of the log file) that succeed before the faults begin.
    pub ok_writes: u64,
    /// How many writes fail after that (`u64::MAX`: all of them).
    pub failing_writes: u64,
    /// A failing write first writes half its bytes (a torn line), as a full disk does.
    pub torn: bool,
}
