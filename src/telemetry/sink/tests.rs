use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{CAP, FLUSH_EVERY, LineWriter, LogSink};

/// An output the test can read, and hold shut (a stderr nobody reads). Shared by the telemetry
/// tests.
#[derive(Clone, Default)]
pub(crate) struct Out {
    bytes: Arc<Mutex<Vec<u8>>>,
    pub(crate) gate: Arc<Mutex<()>>,
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let _open = self.gate.lock();
        self.bytes.lock().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Out {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock()).into_owned()
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }
}

fn line(sink: &LogSink, text: &str, urgent: bool) {
    let mut w = LineWriter { sink, urgent };
    w.write_all(text.as_bytes()).unwrap();
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what} did not happen within 2 s");
}

#[test]
fn lines_are_batched_and_still_leave_within_the_flush_interval() {
    let out = Out::default();
    let sink = LogSink::to(Box::new(out.clone()));
    let held = out.gate.lock();
    line(&sink, "one\n", false);
    line(&sink, "two\n", false);
    std::thread::sleep(FLUSH_EVERY * 3);
    // The flusher took both lines in one go and waits on the (held) output.
    assert_eq!(out.text(), "");
    drop(held);
    eventually("the batch reaching the output", || out.text() == "one\ntwo\n");
}

#[test]
fn a_warning_is_written_through_after_the_lines_before_it() {
    let out = Out::default();
    let sink = LogSink::to(Box::new(out.clone()));
    for i in 0..100 {
        line(&sink, &format!("info {i}\n"), false);
    }
    line(&sink, "WARN trouble\n", true);
    // Written by the appending thread itself, before it returns.
    let text = out.text();
    assert!(text.ends_with("info 99\nWARN trouble\n"), "{text}");
    assert_eq!(text.lines().count(), 101);
}

#[test]
fn a_stderr_that_does_not_keep_up_loses_lines_counted_never_blocks_the_caller() {
    let out = Out::default();
    let sink = LogSink::to(Box::new(out.clone()));
    let held = out.gate.lock();
    // The flusher takes a first line and is stuck writing it.
    line(&sink, "first\n", false);
    eventually("the flusher taking the first line", || sink.shared.state.lock().buf.is_empty());
    let text = "x".repeat(1023) + "\n";
    let started = crate::clock::monotonic();
    // Twice the cap meanwhile: appends return at once, what does not fit is dropped.
    for _ in 0..(2 * CAP / 1024) {
        line(&sink, &text, false);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "appending blocked on the output");
    drop(held);
    sink.flush();
    let written = out.text();
    assert!(written.starts_with("first\n"));
    assert_eq!(written.lines().filter(|l| l.starts_with('x')).count(), CAP / 1024, "a full buffer is kept");
    let notice = written.lines().find(|l| l.contains("dropped")).unwrap();
    assert_eq!(notice, format!("otpgate: {} log lines dropped: stderr did not keep up", CAP / 1024));
}

#[test]
fn close_writes_everything_and_later_lines_go_straight_through() {
    let out = Out::default();
    let sink = LogSink::to(Box::new(out.clone()));
    line(&sink, "before\n", false);
    sink.close();
    assert_eq!(out.text(), "before\n");
    line(&sink, "after\n", false);
    assert_eq!(out.text(), "before\nafter\n");
}

#[test]
fn through_tracing_info_is_buffered_and_a_warning_is_written_at_once() {
    let out = Out::default();
    let sink = LogSink::to(Box::new(out.clone()));
    let subscriber = tracing_subscriber::fmt().with_writer(sink.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, || {
        let held = out.gate.lock();
        // Returns while the output is held shut: buffered, not written.
        tracing::info!("routine");
        assert_eq!(out.text(), "");
        drop(held);
        tracing::warn!("trouble");
        // Written through before `warn!` returned, after the line before it.
        let text = out.text();
        let (routine, trouble) = (text.find("routine").unwrap(), text.find("trouble").unwrap());
        assert!(routine < trouble, "{text}");
    });
}
