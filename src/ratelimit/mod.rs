//! Per-identity rate limits with governor (GCRA).
//!
//! A route declares limits, each keyed on one verified identity (client IP, the mobile an OTP is
//! requested for, citizen session, subject, beneficiary, partner) with one or more windows.
//! `limit` per `per` is a GCRA quota: a burst of `limit`, refilled one cell every `per / limit`.
//! Every window of a route is checked in one pass; the request is refused (429) when any refuses,
//! having been charged to the windows checked before it.
//!
//! Limiter state lives in [`Limiters`], outside the policy: a reload that keeps a window's route,
//! key and quota keeps its buckets (a bot cannot reset its limits by waiting for a reload). Keys
//! are 64-bit keyed hashes, so memory per key is a few dozen bytes; keys whose bucket is full
//! again are evicted periodically (`evict`), so memory stays bounded under key flooding.

pub mod keys;
pub mod shared;
pub mod store;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::policy::Limit;
pub use keys::LimitKey;
pub use store::{Charge, LimitStore, LocalStore, WindowState};

/// One window of one limit, with its state in the store.
pub struct Window {
    /// Shown in `RateLimit` headers: `session-15m`.
    pub name: String,
    /// Route, key kind and quota: names the window stably (across replicas, for the shared store).
    pub signature: String,
    pub key: LimitKey,
    pub limit: u32,
    pub per: Duration,
    state: Box<dyn WindowState>,
}

impl Window {
    /// Number of keys held (for tests and the memory bound).
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// Every limiter of the process, by (route, key, quota), surviving policy reloads.
pub struct Limiters {
    store: Box<dyn LimitStore>,
    /// The shared store's windows, when replicas share one; the local ones answer when it does not.
    shared: Option<shared::Shared>,
    fallbacks: crate::metrics::StoreCounters,
    windows: Mutex<HashMap<String, Arc<Window>>>,
    hasher: std::hash::RandomState,
}

impl Default for Limiters {
    fn default() -> Self {
        Limiters::with_store(Box::new(LocalStore::<governor::clock::DefaultClock>::default()))
    }
}

/// The windows of one route.
#[derive(Clone, Default)]
pub struct RouteLimits {
    pub windows: Vec<Arc<Window>>,
    /// The `RateLimit-Policy` value, built once.
    policy: Arc<str>,
}

/// What the checked windows say, for the `RateLimit-Policy` and `RateLimit` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub policy: Arc<str>,
    pub state: String,
    /// Requests left in the tightest window checked (`u32::MAX` when none was).
    pub remaining: u32,
}

impl Headers {
    /// The headers of two checks of one request: the tighter window's state.
    pub fn merge(self, other: Headers) -> Headers {
        if other.remaining < self.remaining { other } else { self }
    }
}

/// A refusal: wait this long; the headers to send with the 429; the key kind that refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub headers: Headers,
    pub key: LimitKey,
}

impl Limiters {
    /// Limiters whose state lives in `store`.
    pub fn with_store(store: Box<dyn LimitStore>) -> Limiters {
        Limiters {
            store,
            shared: None,
            fallbacks: Default::default(),
            windows: Mutex::new(HashMap::new()),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Keep the windows in the shared store (local windows answer while it is unreachable; each
    /// such answer is counted in `counters`).
    pub fn sharing(mut self, shared: shared::Shared, counters: crate::metrics::StoreCounters) -> Limiters {
        self.shared = Some(shared);
        self.fallbacks = counters;
        self
    }

    /// The windows for a route's limits, reusing existing limiters with the same signature.
    pub fn for_route(&self, route: &str, limits: &[Limit]) -> RouteLimits {
        let mut all = self.windows.lock();
        let mut windows = Vec::new();
        for Limit { key, windows: rates, budget } in limits {
            for (limit, per) in rates {
                // A budget's windows are the same buckets on every route that names it.
                let (owner, label) = match budget {
                    Some(b) => (format!("budget:{b}"), b.as_str()),
                    None => (route.to_string(), key.as_str()),
                };
                let sig = format!("{owner}|{}|{limit}|{}", key.as_str(), per.as_millis());
                if windows.iter().any(|w: &Arc<Window>| w.signature == sig) {
                    continue;
                }
                let window = match all.get(&sig) {
                    Some(w) => Some(w.clone()),
                    None => self.store.window(&sig, *limit, *per).map(|state| {
                        let name = format!("{label}-{}", human(*per));
                        Arc::new(Window {
                            name,
                            signature: sig.clone(),
                            key: *key,
                            limit: limit.get(),
                            per: *per,
                            state,
                        })
                    }),
                };
                if let Some(w) = window {
                    all.insert(sig, w.clone());
                    windows.push(w);
                }
            }
        }
        let policy = windows
            .iter()
            .map(|w| format!("\"{}\";q={};w={}", w.name, w.limit, w.per.as_secs().max(1)))
            .collect::<Vec<_>>()
            .join(", ")
            .into();
        RouteLimits { windows, policy }
    }

    /// Drop keys whose buckets are full again, and limiters no route uses any more.
    pub fn evict(&self) {
        let mut all = self.windows.lock();
        all.retain(|_, w| Arc::strong_count(w) > 1);
        for w in all.values() {
            w.state.evict();
        }
    }

    fn hash(&self, key: LimitKey, value: &str) -> u64 {
        self.hasher.hash_one((key.as_str(), value))
    }

    /// Check every window of a route against the request's identities (`values` per key kind;
    /// a window whose key has no value — e.g. no beneficiary named — is not charged).
    ///
    /// Windows keyed on the caller come first. In the shared store a request is charged to all
    /// its windows or to none; in local windows it is charged up to the first that refuses (so a
    /// caller refused on its own window has not spent the windows of the people it names).
    pub async fn check(
        &self,
        limits: &RouteLimits,
        values: &[(LimitKey, Vec<String>)],
    ) -> Result<Option<Headers>, Throttled> {
        if limits.windows.is_empty() {
            return Ok(None);
        }
        let ordered = limits.windows.iter().filter(|w| !w.key.names_others());
        let cells: Vec<(&Window, &str)> = ordered
            .chain(limits.windows.iter().filter(|w| w.key.names_others()))
            .flat_map(|w| {
                let vals = values.iter().find(|(k, _)| *k == w.key).map_or(&[][..], |(_, v)| v.as_slice());
                vals.iter().map(move |v| (w.as_ref(), v.as_str()))
            })
            .collect();
        let charges = match &self.shared {
            Some(shared) if !cells.is_empty() => {
                let shared_cells: Vec<shared::Cell<'_>> =
                    cells.iter().map(|(window, value)| shared::Cell { window, value }).collect();
                match shared.charge(&shared_cells).await {
                    Ok(out) => out
                        .into_iter()
                        .map(|r| match r {
                            Ok(remaining) => Charge::Allowed { remaining },
                            Err(us) => Charge::Denied { retry_after: Duration::from_micros(us) },
                        })
                        .collect(),
                    Err(_) => {
                        self.fallbacks.fallback();
                        self.charge_local(&cells).await
                    }
                }
            }
            _ => self.charge_local(&cells).await,
        };
        let policy = limits.policy.clone();
        let mut tightest: Option<(u32, u64, &str)> = None;
        for ((w, _), charge) in cells.iter().zip(charges) {
            match charge {
                Charge::Allowed { remaining } => {
                    let per_cell = w.per.as_secs_f64() / f64::from(w.limit);
                    let reset = (f64::from(w.limit - remaining.min(w.limit)) * per_cell).ceil() as u64;
                    if tightest.is_none_or(|(r, _, _)| remaining < r) {
                        tightest = Some((remaining, reset, &w.name));
                    }
                }
                Charge::Denied { retry_after } => {
                    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                    let state = format!("\"{}\";r=0;t={}", w.name, secs.max(1));
                    let headers = Headers { policy, state, remaining: 0 };
                    return Err(Throttled { retry_after, headers, key: w.key });
                }
            }
        }
        let state = tightest.map(|(r, t, name)| format!("\"{name}\";r={r};t={t}")).unwrap_or_default();
        Ok(Some(Headers { policy, state, remaining: tightest.map_or(u32::MAX, |(r, _, _)| r) }))
    }

    /// Charge the local windows in order, up to and including the first that refuses.
    async fn charge_local(&self, cells: &[(&Window, &str)]) -> Vec<Charge> {
        let mut out = Vec::with_capacity(cells.len());
        for (w, v) in cells {
            let charge = w.state.charge(self.hash(w.key, v)).await;
            out.push(charge);
            if matches!(charge, Charge::Denied { .. }) {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
