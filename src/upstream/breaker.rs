//! A circuit breaker per upstream (ARCHITECTURE.md, "Failure policy").
//!
//! A registry that stops answering should not be sent every request of a surge, each one holding a
//! connection and a client for the whole route timeout. After `failures` consecutive failures
//! (connect errors, connect and route timeouts; an answer of any status is a success) the breaker
//! opens: requests are refused at once (503 `GWY5034`, `Retry-After`) for `open_for`. Then it is
//! half open: exactly one request goes through as a probe while the others are still refused; the
//! probe's success closes the breaker, its failure opens it again. A probe whose request is dropped
//! before it ends (the client went away) gives the next request the probe's place.
//!
//! State is per replica, kept in `App` across policy reloads, keyed by upstream name; time is the
//! app's clock, so tests move it by hand.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::policy::BreakerRules;

/// One breaker's state, as `otpgate_upstream_breaker_state` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// The metric's value: 0 closed, 1 open, 2 half open.
    pub fn value(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    /// Set while open: until when requests are refused.
    open_until_ms: Option<u64>,
    /// A probe is in flight (half open).
    probing: bool,
}

impl Breaker {
    fn state(&self, now_ms: u64) -> State {
        match self.open_until_ms {
            None => State::Closed,
            Some(until) if now_ms < until => State::Open,
            Some(_) => State::HalfOpen,
        }
    }
}

/// Why a request was not let through: the breaker is open for about this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

/// What happened to a breaker when a result was recorded, for the metrics and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

/// The breakers of every upstream.
#[derive(Debug, Default, Clone)]
pub struct Breakers {
    inner: Arc<Mutex<HashMap<String, Breaker>>>,
}

/// Leave to send one request upstream; report its result with [`Breakers::record`]. Dropped
/// without a result (the request was cancelled), a probe gives its place to the next request.
#[must_use]
pub struct Admission {
    breakers: Breakers,
    upstream: String,
    probe: bool,
    done: bool,
}

impl Admission {
    /// Whether this request is the half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.probe && !self.done {
            self.breakers.with(&self.upstream, |b| b.probing = false);
        }
    }
}

impl Breakers {
    fn with<T>(&self, upstream: &str, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut map = self.inner.lock();
        if let Some(b) = map.get_mut(upstream) {
            return f(b);
        }
        f(map.entry(upstream.to_string()).or_default())
    }

    /// May a request go to `upstream` now?
    pub fn admit(&self, upstream: &str, rules: BreakerRules, now_ms: u64) -> Result<Admission, Refused> {
        let probe = self.with(upstream, |b| match b.state(now_ms) {
            State::Closed => Ok(false),
            State::Open => Err(Refused { retry_after: until(b.open_until_ms, now_ms) }),
            State::HalfOpen if b.probing => Err(Refused { retry_after: rules.open_for.min(Duration::from_secs(1)) }),
            State::HalfOpen => {
                b.probing = true;
                Ok(true)
            }
        })?;
        Ok(Admission { breakers: self.clone(), upstream: upstream.to_string(), probe, done: false })
    }

    /// The result of an admitted request: `ok` when the upstream answered (any status).
    pub fn record(&self, mut admission: Admission, rules: BreakerRules, ok: bool, now_ms: u64) -> Transition {
        admission.done = true;
        let probe = admission.probe;
        self.with(&admission.upstream, |b| {
            if probe {
                b.probing = false;
            }
            if ok {
                b.failures = 0;
                let was_open = b.open_until_ms.take().is_some();
                return if was_open { Transition::Closed } else { Transition::None };
            }
            b.failures = b.failures.saturating_add(1);
            let trips = rules.failures > 0 && (probe || b.failures >= rules.failures);
            if trips && (probe || b.open_until_ms.is_none()) {
                let open_for = u64::try_from(rules.open_for.as_millis()).unwrap_or(u64::MAX);
                b.open_until_ms = Some(now_ms.saturating_add(open_for));
                return Transition::Opened;
            }
            Transition::None
        })
    }

    /// Every breaker's state now, by upstream name.
    pub fn states(&self, now_ms: u64) -> Vec<(String, State)> {
        self.inner.lock().iter().map(|(name, b)| (name.clone(), b.state(now_ms))).collect()
    }
}

fn until(open_until_ms: Option<u64>, now_ms: u64) -> Duration {
    Duration::from_millis(open_until_ms.unwrap_or(now_ms).saturating_sub(now_ms).max(1))
}

#[cfg(test)]
mod tests;
