//! The shared store: Redis, or Redis Cluster, for many replicas that behave as one gateway.
//!
//! Every operation is one Lua script (see `scripts`), atomic on the server, with its keys under
//! one hash tag so it runs on one cluster slot; every call has a timeout. Connections are made
//! lazily and re-made in the background after a failure, so the gateway starts while Redis is
//! away and recovers by itself when it returns. Keys are `PREFIX{kind:id}…`; ids are opaque
//! (transaction and session ids) or keyed hashes — never a raw mobile or ID number.

mod contest;
mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Script};

use super::{Attempt, Distinct, OtpTxn, Session, SessionLimits, StoreError, Window, ms};
use crate::metrics::StoreCounters;

/// Where the shared store is, parsed from `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://host:port/db` or `rediss://…` (TLS).
    Single(String),
    /// `redis+cluster://host:port,host:port…` (or `rediss+cluster://…`): seed nodes.
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("`{url}` is not a store URL"))?;
        match scheme {
            "redis" | "rediss" => {
                redis::parse_redis_url(url).ok_or_else(|| format!("`{url}` is not a valid Redis URL"))?;
                Ok(RedisTarget::Single(url.to_string()))
            }
            "redis+cluster" | "rediss+cluster" => {
                let plain = scheme.trim_end_matches("+cluster");
                let hosts = rest.trim_end_matches('/');
                let nodes: Vec<String> = hosts
                    .split(',')
                    .filter(|h| !h.trim().is_empty())
                    .map(|h| format!("{plain}://{}", h.trim()))
                    .collect();
                if nodes.is_empty() || nodes.iter().any(|n| redis::parse_redis_url(n).is_none()) {
                    return Err(format!("`{url}`: give seed nodes as redis+cluster://host:port,host:port"));
                }
                Ok(RedisTarget::Cluster(nodes))
            }
            other => {
                Err(format!("unknown store scheme `{other}` (memory, redis, rediss, redis+cluster, rediss+cluster)"))
            }
        }
    }
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

pub struct RedisStore {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    healthy: Arc<AtomicBool>,
    counters: StoreCounters,
    cluster: bool,
}

/// One argument of a script.
pub type Arg = Vec<u8>;

impl RedisStore {
    /// A store on `target` (connected lazily), keys under `prefix`, each call bounded by `timeout`.
    pub fn new(
        target: &RedisTarget,
        prefix: &str,
        timeout: Duration,
        counters: StoreCounters,
    ) -> Result<RedisStore, StoreError> {
        let bad = |e: redis::RedisError| StoreError(format!("store configuration: {e}"));
        let conn = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(bad)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Conn::Single(ConnectionManager::new_lazy_with_config(client, config).map_err(bad)?)
            }
            RedisTarget::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1)
                    .build()
                    .map_err(bad)?;
                let config =
                    redis::cluster::ClusterConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout);
                Conn::Cluster(client.get_pending_async_connection_with_config(config))
            }
        };
        Ok(RedisStore {
            cluster: matches!(target, RedisTarget::Cluster(_)),
            conn,
            prefix: prefix.to_string(),
            timeout,
            healthy: Arc::new(AtomicBool::new(true)),
            counters,
        })
    }

    /// The store's error counters (registered with the metrics).
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }

    /// Whether the last call reached the store.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Whether keys of one request may live on different nodes (Redis Cluster).
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// `PREFIX{kind:id}`: the hash tag keeps every key of one operation in one cluster slot.
    pub fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{{{kind}:{id}}}", self.prefix)
    }

    /// Run `script` (named `op` in metrics) with `keys` and `args`, within the timeout.
    pub async fn run<T: FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[String],
        args: &[Arg],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        for a in args {
            invocation.arg(a);
        }
        let call = async {
            match self.conn.clone() {
                Conn::Single(mut c) => invocation.invoke_async::<T>(&mut c).await,
                Conn::Cluster(mut c) => invocation.invoke_async::<T>(&mut c).await,
            }
        };
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError(format!("{op}: {e}"))),
            Err(_) => Err(StoreError(format!("{op}: no answer within {:?}", self.timeout))),
        };
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        self.counters.set_up(result.is_ok());
        if result.is_err() {
            self.counters.error(op);
        }
        result
    }

    /// Ask the store whether it is there (the readiness probe's view): a `PING`, so probes are
    /// told apart from work in the server's command statistics.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let cmd = redis::cmd("PING");
        let call = async {
            match self.conn.clone() {
                Conn::Single(mut c) => cmd.query_async::<String>(&mut c).await,
                Conn::Cluster(mut c) => cmd.query_async::<String>(&mut c).await,
            }
        };
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError(format!("ping: {e}"))),
            Err(_) => Err(StoreError(format!("ping: no answer within {:?}", self.timeout))),
        };
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        self.counters.set_up(result.is_ok());
        result
    }

    pub async fn txn_put(&self, id: &str, txn: &OtpTxn, ttl: Duration) -> Result<(), StoreError> {
        let args = [s(&txn.mobile), s(&hex::encode(txn.mac)), n(txn.expires_at_ms), n(ms(ttl).max(1))];
        self.run::<i64>("txn_put", &scripts::TXN_PUT, &[self.key("otp", id)], &args).await.map(drop)
    }

    pub async fn txn_mobile(&self, id: &str, now_ms: u64) -> Result<Option<String>, StoreError> {
        self.run("txn_mobile", &scripts::TXN_MOBILE, &[self.key("otp", id)], &[n(now_ms)]).await
    }

    pub async fn txn_attempt(
        &self,
        id: &str,
        candidate: &[u8; 32],
        max: u32,
        now_ms: u64,
    ) -> Result<Attempt, StoreError> {
        let args = [s(&hex::encode(candidate)), n(u64::from(max)), n(now_ms)];
        let out: Vec<String> = self.run("txn_attempt", &scripts::TXN_ATTEMPT, &[self.key("otp", id)], &args).await?;
        Ok(match out.as_slice() {
            [v, mobile] if v == "verified" => Attempt::Verified(mobile.clone()),
            [v, burned] if v == "wrong" => Attempt::Wrong { burned: burned == "1" },
            _ => Attempt::Invalid,
        })
    }

    pub async fn txn_burn(&self, id: &str) -> Result<(), StoreError> {
        static DEL: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new("return redis.call('DEL', KEYS[1])"));
        self.run::<i64>("txn_burn", &DEL, &[self.key("otp", id)], &[]).await.map(drop)
    }

    pub async fn window(
        &self,
        key: &str,
        now_ms: u64,
        window: Duration,
        limit: u32,
        record: bool,
    ) -> Result<Window, StoreError> {
        let member = format!("{now_ms}-{:016x}", rand::random::<u64>());
        let args = [n(now_ms), n(ms(window)), n(u64::from(limit)), s(if record { "1" } else { "0" }), s(&member)];
        let retry: u64 = self.run("window", &scripts::WINDOW, &[self.key("w", key)], &args).await?;
        Ok(match retry {
            0 => Window::Allowed,
            ms => Window::Denied { retry_after: Duration::from_millis(ms) },
        })
    }

    pub async fn distinct_add(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Distinct, StoreError> {
        let args = [s(member), n(u64::from(limit)), n(ms(ttl).max(1))];
        let (added, count): (i64, u64) =
            self.run("distinct_add", &scripts::DISTINCT_ADD, &[self.key("q", key)], &args).await?;
        Ok(if added < 0 { Distinct::Full } else { Distinct::Counted { new: added == 1, count } })
    }

    pub async fn session_put(&self, id: &str, session: &Session, limits: SessionLimits) -> Result<(), StoreError> {
        let ttl = ms(limits.idle.min(limits.absolute)).max(1);
        let args = [s(&session.mobile), n(session.created_ms), n(session.last_seen_ms), n(ttl)];
        self.run::<i64>("session_put", &scripts::SESSION_PUT, &[self.key("s", id)], &args).await.map(drop)
    }

    pub async fn session_touch(
        &self,
        id: &str,
        now_ms: u64,
        limits: SessionLimits,
    ) -> Result<Option<Session>, StoreError> {
        let args = [n(now_ms), n(ms(limits.idle)), n(ms(limits.absolute))];
        let out: Option<Vec<String>> =
            self.run("session_touch", &scripts::SESSION_TOUCH, &[self.key("s", id)], &args).await?;
        Ok(out.and_then(|v| match v.as_slice() {
            [mobile, created, last] => Some(Session {
                mobile: mobile.clone(),
                created_ms: created.parse().ok()?,
                last_seen_ms: last.parse().ok()?,
            }),
            _ => None,
        }))
    }

    pub async fn session_revoke(&self, id: &str) -> Result<(), StoreError> {
        static DEL: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new("return redis.call('DEL', KEYS[1])"));
        self.run::<i64>("session_revoke", &DEL, &[self.key("s", id)], &[]).await.map(drop)
    }

    /// Push `entry` on the list `key` (newest first), keeping `max` entries for `ttl`.
    pub async fn list_push(&self, key: &str, entry: &str, max: usize, ttl: Duration) -> Result<(), StoreError> {
        let args = [s(entry), n(max as u64), n(ms(ttl).max(1))];
        self.run::<i64>("list_push", &scripts::LIST_PUSH, &[self.key("ax", key)], &args).await.map(drop)
    }

    /// The list `key`, newest first.
    pub async fn list(&self, key: &str, max: usize) -> Result<Vec<String>, StoreError> {
        static RANGE: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new("return redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)"));
        self.run("list", &RANGE, &[self.key("ax", key)], &[n(max as u64)]).await
    }

    /// GCRA over the windows `keys` (each `(key, emission interval µs, burst)`, all under one hash
    /// tag), all or nothing: per key, `Ok(remaining)` or `Err(retry after µs)`.
    pub async fn gcra(&self, keys: &[(String, u64, u32)]) -> Result<Vec<Result<u32, u64>>, StoreError> {
        let names: Vec<String> = keys.iter().map(|(k, _, _)| k.clone()).collect();
        let args: Vec<Arg> = keys.iter().flat_map(|(_, e, b)| [n(*e), n(u64::from(*b))]).collect();
        let flat: Vec<i64> = self.run("gcra", &scripts::GCRA, &names, &args).await?;
        Ok(flat
            .chunks(2)
            .map(|c| match c {
                [1, remaining] => Ok(u32::try_from(*remaining).unwrap_or(0)),
                [_, retry] => Err(u64::try_from(*retry).unwrap_or(1).max(1)),
                _ => Err(1),
            })
            .collect())
    }

    /// Give back the cell `gcra` charged to each of `keys` (`(key, emission interval µs)`).
    pub async fn gcra_refund(&self, keys: &[(String, u64)]) -> Result<(), StoreError> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let args: Vec<Arg> = keys.iter().map(|(_, e)| n(*e)).collect();
        self.run::<i64>("gcra_refund", &scripts::GCRA_REFUND, &names, &args).await.map(drop)
    }
}

fn s(v: &str) -> Arg {
    v.as_bytes().to_vec()
}

fn n(v: u64) -> Arg {
    v.to_string().into_bytes()
}

#[cfg(test)]
mod tests;
