//! Shared state behind one interface: OTP transactions, sliding-window counters (OTP send caps,
//! resend cooldown, failures per mobile) and server-side sessions.
//!
//! `Store` is an enum rather than a trait object so that its async methods stay plain `async fn`:
//! the in-memory variant serves one replica; the Redis variant (Redis or Redis Cluster) lets many
//! replicas behave as one gateway, with the same operations, each atomic on the server. Keys never
//! contain raw personal data: callers pass keyed hashes or opaque ids.

pub mod contest;
mod expiring;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

pub use contest::{Entered, EntryKind, View};
pub use memory::MemoryStore;
pub use redis::{RedisStore, RedisTarget};

use crate::metrics::StoreCounters;

/// A stored OTP transaction. The OTP itself is never stored, only a keyed MAC of its SHA-256.
#[derive(Clone)]
pub struct OtpTxn {
    /// Canonical 10-digit mobile the OTP was sent to.
    pub mobile: String,
    pub mac: [u8; 32],
    /// Unix milliseconds.
    pub expires_at_ms: u64,
    pub attempts: u32,
}

impl std::fmt::Debug for OtpTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpTxn").field("attempts", &self.attempts).finish_non_exhaustive()
    }
}

/// Result of one confirm attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Correct: the transaction is consumed (single use); the verified mobile.
    Verified(String),
    /// Wrong OTP; `burned` when this was the last allowed try.
    Wrong { burned: bool },
    /// Unknown, expired, already used or burned.
    Invalid,
}

/// A sliding-window decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Allowed,
    Denied { retry_after: Duration },
}

/// A server-side session behind a citizen token.
#[derive(Clone)]
pub struct Session {
    pub mobile: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub last_seen_ms: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("created_ms", &self.created_ms).finish_non_exhaustive()
    }
}

/// Session lifetime limits.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StoreError(pub String);

/// A duration in whole milliseconds, saturating (store deadlines and TTLs are unix ms).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What [`Store::distinct_add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distinct {
    /// The member is in the set (`new`: added just now), which holds `count` members.
    Counted { new: bool, count: u64 },
    /// The set is full and the member is not in it.
    Full,
}

/// The state store: in process (one replica), or shared through Redis (many replicas).
#[derive(Clone)]
pub enum Store {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

/// Each call to a shared store gives up after this long (the request then fails closed, or a
/// rate limit falls back to local windows).
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

impl Store {
    pub fn memory() -> Store {
        Store::Memory(Arc::new(MemoryStore::new()))
    }

    /// The store `url` names: `memory`, `redis://host:port/db`, `rediss://…` (TLS), or a Redis
    /// Cluster as `redis+cluster://host:port,host:port…` (`rediss+cluster://…`). Keys go under
    /// `prefix`. A shared store connects lazily: the gateway starts while it is away.
    pub fn open(url: &str, prefix: &str, counters: StoreCounters) -> Result<Store, StoreError> {
        if url == "memory" {
            return Ok(Store::memory());
        }
        let target = RedisTarget::parse(url).map_err(StoreError)?;
        Ok(Store::Redis(Arc::new(RedisStore::new(&target, prefix, STORE_TIMEOUT, counters)?)))
    }

    /// The counters of the shared store (fresh ones for the memory store).
    pub fn counters(&self) -> StoreCounters {
        self.shared().map(|r| r.counters().clone()).unwrap_or_default()
    }

    /// The shared store, when there is one.
    pub fn shared(&self) -> Option<&Arc<RedisStore>> {
        match self {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r),
        }
    }

    /// Create a transaction that lives `ttl` (until its `expires_at_ms`).
    pub async fn txn_put(&self, id: &str, txn: OtpTxn, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.txn_put(id, txn);
                Ok(())
            }
            Store::Redis(r) => r.txn_put(id, &txn, ttl).await,
        }
    }

    /// The mobile of a live transaction, without touching it.
    pub async fn txn_mobile(&self, id: &str, now_ms: u64) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.txn_mobile(id, now_ms)),
            Store::Redis(r) => r.txn_mobile(id, now_ms).await,
        }
    }

    /// Compare `candidate` with the stored MAC (constant time) and consume or count the try,
    /// atomically: of two racing correct confirms, exactly one is `Verified`.
    pub async fn txn_attempt(
        &self,
        id: &str,
        candidate: &[u8; 32],
        max_attempts: u32,
        now_ms: u64,
    ) -> Result<Attempt, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.txn_attempt(id, candidate, max_attempts, now_ms)),
            Store::Redis(r) => r.txn_attempt(id, candidate, max_attempts, now_ms).await,
        }
    }

    /// Make a transaction unusable.
    pub async fn txn_burn(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.txn_burn(id);
                Ok(())
            }
            Store::Redis(r) => r.txn_burn(id).await,
        }
    }

    /// Sliding window: record one event at `now_ms` if fewer than `limit` happened in the last
    /// `window`; otherwise say when the oldest one leaves the window.
    pub async fn window_hit(&self, key: &str, now_ms: u64, window: Duration, limit: u32) -> Result<Window, StoreError> {
        self.window(key, now_ms, window, limit, true).await
    }

    /// Like `window_hit` without recording anything.
    pub async fn window_check(
        &self,
        key: &str,
        now_ms: u64,
        window: Duration,
        limit: u32,
    ) -> Result<Window, StoreError> {
        self.window(key, now_ms, window, limit, false).await
    }

    /// Record one event unconditionally (e.g. a failed OTP).
    pub async fn window_record(&self, key: &str, now_ms: u64, window: Duration) -> Result<(), StoreError> {
        self.window(key, now_ms, window, u32::MAX, true).await.map(drop)
    }

    async fn window(
        &self,
        key: &str,
        now_ms: u64,
        window: Duration,
        limit: u32,
        record: bool,
    ) -> Result<Window, StoreError> {
        match self {
            Store::Memory(m) => m.window(key, now_ms, window, limit, record),
            Store::Redis(r) => r.window(key, now_ms, window, limit, record).await,
        }
    }

    /// Add `member` to the set `key` unless the set already holds `limit` others. Sets live for
    /// `ttl` from their first member.
    pub async fn distinct_add(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<Distinct, StoreError> {
        match self {
            Store::Memory(m) => m.distinct_add(key, member, limit, ttl, now_ms),
            Store::Redis(r) => r.distinct_add(key, member, limit, ttl).await,
        }
    }

    pub async fn session_put(&self, id: &str, session: Session, limits: SessionLimits) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.session_put(id, session, limits);
                Ok(())
            }
            Store::Redis(r) => r.session_put(id, &session, limits).await,
        }
    }

    /// The live session `id`, its last-seen time moved to `now_ms`; `None` when it is unknown,
    /// revoked, idle for longer than `limits.idle` or older than `limits.absolute`.
    pub async fn session_touch(
        &self,
        id: &str,
        now_ms: u64,
        limits: SessionLimits,
    ) -> Result<Option<Session>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.session_touch(id, now_ms, limits)),
            Store::Redis(r) => r.session_touch(id, now_ms, limits).await,
        }
    }

    pub async fn session_revoke(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.session_revoke(id);
                Ok(())
            }
            Store::Redis(r) => r.session_revoke(id).await,
        }
    }

    /// Enter `person` (a keyed hash) in the waiting-room contest `key` with `ticket` (kept only
    /// if they hold none); the first entry opens the contest for `window`. See `contest`.
    pub async fn contest_enter(
        &self,
        key: &str,
        person: &str,
        ticket: &str,
        now_ms: u64,
        window: Duration,
        ttl: Duration,
    ) -> Result<Entered, StoreError> {
        match self {
            Store::Memory(m) => m.contest_enter(key, person, ticket, now_ms, window, ttl),
            Store::Redis(r) => r.contest_enter(key, person, ticket, now_ms, window, ttl).await,
        }
    }

    /// The contest as `person` sees it (`None`: it is gone); freezes it at its window's end and
    /// moves the turn past withdrawn requests and one stalled for `turn_timeout`.
    pub async fn contest_poll(
        &self,
        key: &str,
        person: &str,
        now_ms: u64,
        turn_timeout: Duration,
        ttl: Duration,
    ) -> Result<Option<View>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.contest_poll(key, person, now_ms, turn_timeout, ttl)),
            Store::Redis(r) => r.contest_poll(key, person, now_ms, turn_timeout, ttl).await,
        }
    }

    /// The holder of `rank` is done: the turn moves on if it was theirs.
    pub async fn contest_advance(&self, key: &str, rank: u64, now_ms: u64, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.contest_advance(key, rank, now_ms);
                Ok(())
            }
            Store::Redis(r) => r.contest_advance(key, rank, now_ms, ttl).await,
        }
    }

    /// `person`'s waiting request went away: their turn is skipped (their ticket stays theirs).
    pub async fn contest_withdraw(
        &self,
        key: &str,
        person: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.contest_withdraw(key, person, now_ms);
                Ok(())
            }
            Store::Redis(r) => r.contest_withdraw(key, person, now_ms, ttl).await,
        }
    }

    /// The people in the draw of contest `key`, in drawn order (empty before it freezes).
    pub async fn contest_order(&self, key: &str, now_ms: u64) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.contest_order(key, now_ms)),
            Store::Redis(r) => r.contest_order(key).await,
        }
    }

    /// True for the first caller only, on every replica: who records the draw.
    pub async fn contest_claim(&self, key: &str, now_ms: u64) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.contest_claim(key, now_ms)),
            Store::Redis(r) => r.contest_claim(key).await,
        }
    }
}
