//! A map whose entries expire and are never evicted while alive: the home of every counter that
//! guards a limit (send caps, failure counts, partner quotas). A size-capped cache would forget a
//! live counter when a flood of new keys fills it — a limit reset anyone can trigger. Here memory
//! is bounded by expiry, and when the hard cap is reached with every entry still alive, a new key
//! is refused (the caller fails closed) rather than an old one forgotten.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;

use super::StoreError;

const SHARDS: usize = 16;

type Shard<V> = HashMap<String, (u64, Arc<Mutex<V>>)>;

pub struct Expiring<V> {
    shards: Vec<Mutex<Shard<V>>>,
    per_shard: usize,
    hasher: std::hash::RandomState,
}

impl<V: Default> Expiring<V> {
    /// A map holding at most about `cap` live entries.
    pub fn new(cap: usize) -> Expiring<V> {
        Expiring {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: cap.div_ceil(SHARDS).max(1),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard<V>> {
        let i = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// The live entry `key`, if any.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<Arc<Mutex<V>>> {
        let shard = self.shard(key).lock();
        shard.get(key).filter(|(expires, _)| *expires > now_ms).map(|(_, v)| v.clone())
    }

    /// The entry `key` (a fresh one if absent or expired), alive at least until `expires_ms`.
    /// Refused when the map is full of live entries.
    pub fn entry(&self, key: &str, now_ms: u64, expires_ms: u64) -> Result<Arc<Mutex<V>>, StoreError> {
        let mut shard = self.shard(key).lock();
        if let Some((expires, value)) = shard.get_mut(key) {
            if *expires > now_ms {
                *expires = (*expires).max(expires_ms);
                return Ok(value.clone());
            }
            *expires = expires_ms;
            *value = Arc::default();
            return Ok(value.clone());
        }
        if shard.len() >= self.per_shard {
            shard.retain(|_, (expires, _)| *expires > now_ms);
            shard.shrink_to(self.per_shard);
            if shard.len() >= self.per_shard {
                return Err(StoreError("the in-memory state store is full of live counters; refusing new keys".into()));
            }
        }
        let value: Arc<Mutex<V>> = Arc::default();
        shard.insert(key.to_string(), (expires_ms, value.clone()));
        Ok(value)
    }

    /// Live entries (expired ones still held are not counted).
    pub fn len(&self, now_ms: u64) -> usize {
        self.shards.iter().map(|s| s.lock().values().filter(|(e, _)| *e > now_ms).count()).sum()
    }
}
