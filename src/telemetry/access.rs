//! The access log line (one per request, target [`ACCESS_TARGET`]) formatted directly, in the
//! same layout as every other line: tracing's general formatter went through `Debug` for each
//! field, character by character, and cost a sixth of a proxied request's instructions
//! (BENCHMARKS.md, issue 15). Every other event goes to tracing's own formatter unchanged.
//!
//! Text: `2026-11-30T14:43:55.327598Z  INFO otpgate::access: request_id="…" route="…" status=200 …`
//! — strings quoted and escaped as Rust's `Debug` does (control characters never reach the
//! terminal). JSON: `{"timestamp":"…","level":"INFO","request_id":"…",…,"target":"otpgate::access"}`
//! — strings escaped as JSON.

use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Target of the access log line.
pub const ACCESS_TARGET: &str = "otpgate::access";

/// Formats access lines itself and hands every other event to `inner`.
pub struct Fast<F> {
    inner: F,
    json: bool,
}

impl<F> Fast<F> {
    pub fn text(inner: F) -> Fast<F> {
        Fast { inner, json: false }
    }

    pub fn json(inner: F) -> Fast<F> {
        Fast { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for Fast<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != ACCESS_TARGET {
            return self.inner.format_event(ctx, w, event);
        }
        let level = meta.level().as_str();
        // `write_str` throughout: `write!` costs a trip through `fmt::write` per call.
        let now_us = crate::clock::system_now_us();
        if self.json {
            w.write_str("{\"timestamp\":\"")?;
            timestamp(&mut w, now_us)?;
            w.write_str("\",\"level\":\"")?;
            w.write_str(level)?;
            w.write_str("\"")?;
        } else {
            timestamp(&mut w, now_us)?;
            // Right-aligned in five columns, as tracing prints levels.
            w.write_str(&"      "[..6usize.saturating_sub(level.len())])?;
            w.write_str(level)?;
            w.write_str(" ")?;
            w.write_str(ACCESS_TARGET)?;
            w.write_str(": ")?;
        }
        let mut fields = Fields { w: &mut w, json: self.json, first: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        if self.json {
            w.write_str(",\"target\":\"")?;
            w.write_str(ACCESS_TARGET)?;
            w.write_str("\"}")?;
        }
        w.write_str("\n")
    }
}

/// `2026-11-30T14:43:55.327598Z`. The part up to the seconds changes once a second: each thread
/// keeps it.
fn timestamp(w: &mut Writer<'_>, us: u64) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = us / 1_000_000;
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            let ts =
                jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
            *text = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            *cached = secs;
        }
        w.write_str(text)
    })?;
    let mut frac = *b".000000Z";
    let mut rest = us % 1_000_000;
    for digit in frac[1..7].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    w.write_str(std::str::from_utf8(&frac).map_err(|_| fmt::Error)?)
}

/// Writes each field as `name=value` (text, space-separated) or `,"name":value` (JSON, after the
/// level).
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    json: bool,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        let name = field.name();
        if self.json {
            self.w.write_str(",\"")?;
            self.w.write_str(name)?;
            self.w.write_str("\":")
        } else {
            if !std::mem::take(&mut self.first) {
                self.w.write_str(" ")?;
            }
            self.w.write_str(name)?;
            self.w.write_str("=")
        }
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) -> fmt::Result {
        self.name(field)?;
        self.w.write_str(itoa::Buffer::new().format(value))
    }

    fn string(&mut self, field: &Field, value: &str) -> fmt::Result {
        self.name(field)?;
        if self.json { json_string(self.w, value) } else { debug_string(self.w, value) }
    }

    fn keep(&mut self, r: fmt::Result) {
        if self.result.is_ok() {
            self.result = r;
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let r = self.string(field, value);
        self.keep(r);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let r = self.integer(field, value);
        self.keep(r);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let r = self.integer(field, value);
        self.keep(r);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let r = self.name(field).and_then(|()| self.w.write_str(if value { "true" } else { "false" }));
        self.keep(r);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let r = self.name(field).and_then(|()| match (self.json, value.is_finite()) {
            (true, true) => write!(self.w, "{value}"),
            (true, false) => self.w.write_str("null"),
            (false, _) => write!(self.w, "{value:?}"),
        });
        self.keep(r);
    }

    /// Anything else is rendered with `Debug` first, then escaped like a string.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let rendered = format!("{value:?}");
        let r = self.string(field, &rendered);
        self.keep(r);
    }
}

/// Quoted, escaped as Rust's `Debug` escapes a `str`; plain printable ASCII is copied as is.
fn debug_string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        w.write_str("\"")?;
        w.write_str(s)?;
        w.write_str("\"")
    } else {
        write!(w, "{s:?}")
    }
}

/// Quoted, escaped as JSON; strings that need no escape are copied as they are.
fn json_string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        w.write_str("\"")?;
        w.write_str(s)?;
        w.write_str("\"")
    } else {
        let escaped = serde_json::to_string(s).map_err(|_| fmt::Error)?;
        w.write_str(&escaped)
    }
}

#[cfg(test)]
mod tests;
