//! Wall-clock time. [`Clock`] is the one source of "now" for request handling (OTP expiry,
//! sessions, quotas by day, audit times): the system clock in the gateway, a manual clock in
//! tests, so no test waits for time to pass. `.clippy.toml` bans reading the system clock
//! anywhere else (ARCHITECTURE.md, "Invariants").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where "now" comes from.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock; else a manual clock's current time (unix ms).
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands still at `start_ms` until [`Clock::advance`] moves it.
    pub fn manual(start_ms: u64) -> Clock {
        Clock { manual: Some(Arc::new(AtomicU64::new(start_ms))) }
    }

    /// Move a manual clock forward (a system clock ignores this).
    pub fn advance(&self, by: Duration) {
        if let Some(now) = &self.manual {
            now.fetch_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
        }
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(now) => now.load(Ordering::SeqCst),
            None => system_now_ms(),
        }
    }
}

/// Unix time in milliseconds from the system clock (commands that are not the gateway: the
/// audit query's `--since`).
pub fn system_now_ms() -> u64 {
    system_now_us() / 1000
}

/// Unix time in microseconds from the system clock (log line timestamps).
#[allow(clippy::disallowed_methods)] // the one reading of the system clock
pub fn system_now_us() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A reading of the monotonic clock for code that must wait on a standard `Instant` (the audit
/// writer's thread); async code uses `tokio::time::Instant`.
#[allow(clippy::disallowed_methods)] // the one reading of std's monotonic clock
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// `2026-11-23T03:19:12.345Z` for a unix time in milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Unix ms of an RFC 3339 time (`2026-11-23T03:19:12Z`, `…+05:30`, fractions allowed).
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    u64::try_from(ts.as_millisecond()).ok()
}

#[cfg(test)]
mod tests;
