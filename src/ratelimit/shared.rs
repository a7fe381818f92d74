//! Rate-limit windows kept in the shared store, so a limit holds across every replica: GCRA on
//! Redis's clock, every window of a request checked and charged in one round trip, all or nothing.
//!
//! Keys are `PREFIX{rl:<keyed hash of the identity>}:<window>`: all windows of one identity share
//! a hash tag (one cluster slot). On one Redis node a request's windows go in one script call; on a
//! cluster, one call per identity, concurrently, and a request refused on one identity gives back
//! the cells it took from the others (so a refused request is charged nowhere).

use std::sync::Arc;

use futures_util::future::join_all;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Window;
use crate::store::{RedisStore, StoreError};

/// The shared store and the key that hashes identities into key names.
pub struct Shared {
    store: Arc<RedisStore>,
    /// Keyed with the gateway's OTP key, so every replica names an identity alike and no key
    /// name carries an address, a session id or a mobile.
    mac: Hmac<Sha256>,
}

/// One cell to charge: the window and the identity's value.
pub struct Cell<'a> {
    pub window: &'a Window,
    pub value: &'a str,
}

/// Per cell, in order: `Ok(remaining)` or `Err(retry after µs)` — when one is refused, none is
/// charged.
pub type Outcome = Vec<Result<u32, u64>>;

impl Shared {
    pub fn new(store: Arc<RedisStore>, key: &[u8]) -> Result<Shared, String> {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Shared { store, mac })
    }

    /// The counters of the store, for fallbacks.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    fn identity(&self, window: &Window, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(window.key.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    fn cell_key(&self, cell: &Cell<'_>) -> (String, String) {
        let tag = self.identity(cell.window, cell.value);
        let sig = hex::encode(&Sha256::digest(cell.window.signature.as_bytes())[..8]);
        (tag.clone(), format!("{}:{sig}", self.store.key("rl", &tag)))
    }

    /// Check and charge every cell, all or nothing.
    pub async fn charge(&self, cells: &[Cell<'_>]) -> Result<Outcome, StoreError> {
        let keyed: Vec<(String, String, u64, u32)> = cells
            .iter()
            .map(|c| {
                let (tag, key) = self.cell_key(c);
                let emission = u64::try_from(c.window.per.as_micros() / u128::from(c.window.limit)).unwrap_or(u64::MAX);
                (tag, key, emission.max(1), c.window.limit)
            })
            .collect();
        // One group on a single node; one per hash tag on a cluster.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, (tag, ..)) in keyed.iter().enumerate() {
            let tag = if self.store.is_cluster() { tag.as_str() } else { "" };
            match groups.iter_mut().find(|(t, _)| t == tag) {
                Some((_, members)) => members.push(i),
                None => groups.push((tag.to_string(), vec![i])),
            }
        }
        let calls = groups.iter().map(|(_, members)| {
            let args: Vec<(String, u64, u32)> =
                members.iter().map(|&i| (keyed[i].1.clone(), keyed[i].2, keyed[i].3)).collect();
            async move { self.store.gcra(&args).await }
        });
        let answers = join_all(calls).await;
        let mut out: Outcome = vec![Ok(0); cells.len()];
        let mut charged: Vec<Vec<(String, u64)>> = Vec::new();
        let mut refused = false;
        let mut failure = None;
        for ((_, members), answer) in groups.iter().zip(answers) {
            match answer {
                Ok(results) => {
                    let all_allowed = results.iter().all(Result::is_ok);
                    refused |= !all_allowed;
                    if all_allowed {
                        charged.push(members.iter().map(|&i| (keyed[i].1.clone(), keyed[i].2)).collect());
                    }
                    for (&i, r) in members.iter().zip(results) {
                        out[i] = r;
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        if (refused || failure.is_some()) && groups.len() > 1 {
            // One refund per hash tag (a script's keys must share a slot). Best effort: a failed
            // refund leaves the cells to expire on their own.
            join_all(charged.iter().map(|keys| self.store.gcra_refund(keys))).await;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
