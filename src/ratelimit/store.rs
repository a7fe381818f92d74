//! Where rate-limit state lives. [`LocalStore`] keeps it in process with governor's keyed GCRA
//! limiters; a shared store (Redis, for many replicas) implements the same two traits with an
//! atomic GCRA script, so routes, keys, headers and metrics do not change with the store.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// The outcome of charging one cell to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Allowed { remaining: u32 },
    Denied { retry_after: Duration },
}

pub type ChargeFuture<'a> = Pin<Box<dyn Future<Output = Charge> + Send + 'a>>;

/// Makes the state of a window (a GCRA quota of `limit` per `per`).
pub trait LimitStore: Send + Sync {
    /// `signature` names the window stably (route, key kind, quota), for shared stores' key names.
    fn window(&self, signature: &str, limit: NonZeroU32, per: Duration) -> Option<Box<dyn WindowState>>;
}

/// The buckets of one window, by hashed key.
pub trait WindowState: Send + Sync {
    fn charge(&self, key: u64) -> ChargeFuture<'_>;
    /// Keys held in this process (0 for a shared store).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drop buckets that are full again.
    fn evict(&self);
}

/// Governor's keyed limiters, in process, on the monotonic clock `C` (the system's; governor's
/// `FakeRelativeClock` in tests, so no test waits for a bucket to refill).
#[derive(Default)]
pub struct LocalStore<C = DefaultClock> {
    clock: C,
}

impl<C> LocalStore<C> {
    pub fn with_clock(clock: C) -> LocalStore<C> {
        LocalStore { clock }
    }
}

struct Local<C: Clock> {
    limiter: RateLimiter<u64, DashMapStateStore<u64>, C, StateInformationMiddleware>,
    clock: C,
}

impl<C> LimitStore for LocalStore<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn window(&self, _signature: &str, limit: NonZeroU32, per: Duration) -> Option<Box<dyn WindowState>> {
        let quota = Quota::with_period(per / limit.get())?.allow_burst(limit);
        let limiter =
            RateLimiter::dashmap_with_clock(quota, self.clock.clone()).with_middleware::<StateInformationMiddleware>();
        Some(Box::new(Local { limiter, clock: self.clock.clone() }))
    }
}

impl<C> WindowState for Local<C>
where
    C: Clock + Send + Sync,
    C::Instant: Send + Sync,
{
    fn charge(&self, key: u64) -> ChargeFuture<'_> {
        let charge = match self.limiter.check_key(&key) {
            Ok(snapshot) => Charge::Allowed { remaining: snapshot.remaining_burst_capacity() },
            Err(not_until) => Charge::Denied { retry_after: not_until.wait_time_from(self.clock.now()) },
        };
        Box::pin(std::future::ready(charge))
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }

    fn evict(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
