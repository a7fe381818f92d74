//! The in-process store: one small lock per entry for the read-modify-write steps (so two racing
//! confirms cannot both succeed). OTP transactions and sessions live in size-capped caches
//! (losing one fails closed: the OTP or the session is simply gone); every counter that guards a
//! limit lives in an [`Expiring`] map, which never forgets a live counter (see `expiring`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::contest::{Contest, Entered, View};
use super::expiring::Expiring;
use super::{Attempt, Distinct, OtpTxn, Session, SessionLimits, StoreError, Window, ms};

/// Live counters held at most (sliding windows; distinct-subject sets).
pub const WINDOW_CAP: usize = 2_000_000;
pub const SET_CAP: usize = 100_000;
/// Live waiting-room contests held at most.
pub const CONTEST_CAP: usize = 100_000;

pub struct MemoryStore {
    txns: Cache<String, Arc<Mutex<Option<OtpTxn>>>>,
    windows: Expiring<VecDeque<u64>>,
    sessions: Cache<String, Arc<Mutex<Session>>>,
    sets: Expiring<std::collections::HashSet<String>>,
    contests: Expiring<Contest>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_caps(WINDOW_CAP, SET_CAP)
    }

    /// A store holding at most `windows` live sliding windows and `sets` live sets.
    pub fn with_caps(windows: usize, sets: usize) -> Self {
        MemoryStore {
            // OTPs live at most 10 minutes (ARCHITECTURE.md, "Defaults and their sources").
            txns: Cache::builder().max_capacity(1_000_000).time_to_live(Duration::from_secs(600)).build(),
            windows: Expiring::new(windows),
            sessions: Cache::builder().max_capacity(2_000_000).time_to_live(Duration::from_secs(86_400)).build(),
            sets: Expiring::new(sets),
            contests: Expiring::new(CONTEST_CAP),
        }
    }

    pub fn txn_put(&self, id: &str, txn: OtpTxn) {
        self.txns.insert(id.to_string(), Arc::new(Mutex::new(Some(txn))));
    }

    pub fn txn_mobile(&self, id: &str, now_ms: u64) -> Option<String> {
        let entry = self.txns.get(id)?;
        let guard = entry.lock();
        guard.as_ref().filter(|t| t.expires_at_ms > now_ms).map(|t| t.mobile.clone())
    }

    pub fn txn_attempt(&self, id: &str, candidate: &[u8; 32], max_attempts: u32, now_ms: u64) -> Attempt {
        let Some(entry) = self.txns.get(id) else {
            return Attempt::Invalid;
        };
        let mut guard = entry.lock();
        let Some(txn) = guard.as_mut() else {
            return Attempt::Invalid;
        };
        if txn.expires_at_ms <= now_ms || txn.attempts >= max_attempts {
            *guard = None;
            return Attempt::Invalid;
        }
        if bool::from(txn.mac.ct_eq(candidate)) {
            let mobile = txn.mobile.clone();
            *guard = None; // single use
            drop(guard);
            self.txns.invalidate(id);
            return Attempt::Verified(mobile);
        }
        txn.attempts += 1;
        let burned = txn.attempts >= max_attempts;
        if burned {
            *guard = None;
        }
        Attempt::Wrong { burned }
    }

    pub fn txn_burn(&self, id: &str) {
        if let Some(entry) = self.txns.get(id) {
            *entry.lock() = None;
        }
        self.txns.invalidate(id);
    }

    pub fn window(
        &self,
        key: &str,
        now_ms: u64,
        window: Duration,
        limit: u32,
        record: bool,
    ) -> Result<Window, StoreError> {
        let window_ms = ms(window);
        let entry = match (record, self.windows.get(key, now_ms)) {
            (_, Some(entry)) => entry,
            // Checking a window nobody recorded in: allowed, and nothing to keep.
            (false, None) if limit > 0 => return Ok(Window::Allowed),
            _ => self.windows.entry(key, now_ms, now_ms.saturating_add(window_ms))?,
        };
        let mut events = entry.lock();
        while events.front().is_some_and(|&t| t.saturating_add(window_ms) <= now_ms) {
            events.pop_front();
        }
        if events.len() >= limit as usize {
            let oldest = events.front().copied().unwrap_or(now_ms);
            let retry_ms = oldest.saturating_add(window_ms).saturating_sub(now_ms);
            return Ok(Window::Denied { retry_after: Duration::from_millis(retry_ms.max(1)) });
        }
        if record {
            events.push_back(now_ms);
            drop(events);
            // The counter lives as long as its newest event counts.
            self.windows.entry(key, now_ms, now_ms.saturating_add(window_ms))?;
        }
        Ok(Window::Allowed)
    }

    pub fn distinct_add(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<Distinct, StoreError> {
        let ttl_ms = ms(ttl);
        let entry = match self.sets.get(key, now_ms) {
            Some(entry) => entry,
            None => self.sets.entry(key, now_ms, now_ms.saturating_add(ttl_ms))?,
        };
        let mut set = entry.lock();
        let count = |set: &std::collections::HashSet<String>| set.len() as u64;
        if set.contains(member) {
            return Ok(Distinct::Counted { new: false, count: count(&set) });
        }
        if set.len() >= limit as usize {
            return Ok(Distinct::Full);
        }
        set.insert(member.to_string());
        Ok(Distinct::Counted { new: true, count: count(&set) })
    }

    /// Live counters held (windows, sets), for tests and memory checks.
    pub fn counters(&self, now_ms: u64) -> (usize, usize) {
        (self.windows.len(now_ms), self.sets.len(now_ms))
    }

    pub fn session_put(&self, id: &str, session: Session, _limits: SessionLimits) {
        self.sessions.insert(id.to_string(), Arc::new(Mutex::new(session)));
    }

    pub fn session_touch(&self, id: &str, now_ms: u64, limits: SessionLimits) -> Option<Session> {
        let entry = self.sessions.get(id)?;
        let mut s = entry.lock();
        let idle_ms = ms(limits.idle);
        let absolute_ms = ms(limits.absolute);
        let expired =
            now_ms.saturating_sub(s.last_seen_ms) > idle_ms || now_ms.saturating_sub(s.created_ms) > absolute_ms;
        if expired {
            drop(s);
            self.sessions.invalidate(id);
            return None;
        }
        s.last_seen_ms = s.last_seen_ms.max(now_ms);
        Some(s.clone())
    }

    pub fn session_revoke(&self, id: &str) {
        self.sessions.invalidate(id);
    }

    /// The contest `key`, alive until `ttl` from now (a fresh one when absent or expired).
    fn contest(&self, key: &str, now_ms: u64, ttl: Duration) -> Result<Arc<Mutex<Contest>>, StoreError> {
        let ttl_ms = ms(ttl);
        self.contests.entry(key, now_ms, now_ms.saturating_add(ttl_ms))
    }

    pub fn contest_enter(
        &self,
        key: &str,
        person: &str,
        ticket: &str,
        now_ms: u64,
        window: Duration,
        ttl: Duration,
    ) -> Result<Entered, StoreError> {
        let window_ms = ms(window);
        Ok(self.contest(key, now_ms, ttl)?.lock().enter(person, ticket, now_ms, window_ms))
    }

    pub fn contest_poll(
        &self,
        key: &str,
        person: &str,
        now_ms: u64,
        turn_timeout: Duration,
        ttl: Duration,
    ) -> Option<View> {
        let timeout_ms = ms(turn_timeout);
        self.contests.get(key, now_ms)?;
        let entry = self.contest(key, now_ms, ttl).ok()?;
        let mut contest = entry.lock();
        contest.poll(person, now_ms, timeout_ms)
    }

    pub fn contest_advance(&self, key: &str, rank: u64, now_ms: u64) {
        if let Some(entry) = self.contests.get(key, now_ms) {
            entry.lock().advance(rank, now_ms);
        }
    }

    pub fn contest_withdraw(&self, key: &str, person: &str, now_ms: u64) {
        if let Some(entry) = self.contests.get(key, now_ms) {
            entry.lock().withdraw(person, now_ms);
        }
    }

    pub fn contest_order(&self, key: &str, now_ms: u64) -> Vec<String> {
        self.contests.get(key, now_ms).map(|e| e.lock().drawn_order()).unwrap_or_default()
    }

    pub fn contest_claim(&self, key: &str, now_ms: u64) -> bool {
        self.contests.get(key, now_ms).is_some_and(|e| e.lock().claim())
    }
}

#[cfg(test)]
mod tests;
