//! Waiting-room contests in the shared store: one Lua script per operation, mirroring
//! `store::contest::Contest` (read that first). A contest is five keys under one hash tag,
//! `PREFIX{wr:ID}:m|t|o|r|w` — meta (open, close, frozen, turn, since, drawn, recorded), tickets
//! (person → ticket), order (people by rank), ranks (person → latest rank), withdrawn (people) —
//! so every script runs on one cluster slot. Every call renews the keys' expiry; the contest's
//! keys are deleted when the turn has passed everyone (`skip`).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{RedisStore, ms, n, s};
use crate::store::StoreError;
use crate::store::contest::{Entered, EntryKind, View};

/// The functions every contest script shares (`freeze`, `skip`, `meta`: the meta fields, the draw
/// frozen once the window has passed; `touch`).
const COMMON: &str = r"
local M, T, O, R, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function freeze(now)
  local flat = redis.call('HGETALL', T)
  local entries = {}
  for i = 1, #flat, 2 do entries[#entries + 1] = {flat[i + 1], flat[i]} end
  table.sort(entries, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  redis.call('DEL', O, R)
  for i, e in ipairs(entries) do
    redis.call('RPUSH', O, e[2])
    redis.call('HSET', R, e[2], i - 1)
  end
  redis.call('HSET', M, 'frozen', '1', 'drawn', #entries, 'since', now)
end
local function skip(now, timeout)
  local turn = tonumber(redis.call('HGET', M, 'turn'))
  local since = tonumber(redis.call('HGET', M, 'since'))
  local len = redis.call('LLEN', O)
  local moved = false
  while turn < len do
    local holder = redis.call('LINDEX', O, turn)
    if redis.call('SISMEMBER', W, holder) == 0 and (now - since) < timeout then break end
    turn = turn + 1
    since = now
    moved = true
  end
  if moved then redis.call('HSET', M, 'turn', turn, 'since', since) end
  if turn >= len then
    redis.call('DEL', M, T, O, R, W)
    return -1
  end
  return turn
end
local function meta(now)
  local m = redis.call('HMGET', M, 'open', 'close', 'frozen')
  if m[3] ~= '1' and now >= tonumber(m[2]) then
    freeze(now)
    m[3] = '1'
  end
  return m, m[3] == '1'
end
local function touch(ttl)
  for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}{body}"))
}

/// ARGV person, ticket, now_ms, close_ms (if this entry opens it), ttl_ms.
/// {kind ('held'|'ranked'|'dup'), open, close, rank (-1 if none)}.
static ENTER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local person, ticket, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5]
if redis.call('EXISTS', M) == 0 then
  redis.call('HSET', M, 'open', ARGV[3], 'close', ARGV[4], 'frozen', '0', 'turn', '0', 'since', ARGV[3], 'drawn', '0')
end
local m, frozen = meta(now)
local kind, rank = 'dup', -1
if not frozen then
  if redis.call('HSETNX', T, person, ticket) == 1 or redis.call('SREM', W, person) == 1 then kind = 'held' end
else
  local r = redis.call('HGET', R, person)
  local turn = tonumber(redis.call('HGET', M, 'turn'))
  if r and tonumber(r) >= turn then
    if redis.call('SREM', W, person) == 1 then
      kind, rank = 'ranked', tonumber(r)
    end
  else
    rank = redis.call('RPUSH', O, person) - 1
    redis.call('HSET', R, person, rank)
    redis.call('SREM', W, person)
    kind = 'ranked'
  end
end
touch(ttl)
return {kind, m[1], m[2], tostring(rank)}",
    )
});

/// ARGV person, now_ms, turn_timeout_ms, ttl_ms. nil (no such contest, or it just ended), or
/// {open, close, frozen, turn, rank, drawn}.
static POLL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', M) == 0 then return false end
local now = tonumber(ARGV[2])
local m, frozen = meta(now)
local turn = 0
if frozen then
  turn = skip(now, tonumber(ARGV[3]))
  if turn < 0 then return false end
end
local rank = redis.call('HGET', R, ARGV[1]) or '-1'
touch(ARGV[4])
return {m[1], m[2], frozen and '1' or '0', tostring(turn), rank, redis.call('HGET', M, 'drawn')}",
    )
});

/// ARGV rank, now_ms, ttl_ms. The turn after (-1 if the contest is gone or just ended).
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', M) == 0 then return -1 end
local m = redis.call('HMGET', M, 'frozen', 'turn')
local turn = tonumber(m[2])
if m[1] == '1' and turn == tonumber(ARGV[1]) then
  redis.call('HSET', M, 'turn', turn + 1, 'since', ARGV[2])
  turn = skip(tonumber(ARGV[2]), math.huge)
end
touch(ARGV[3])
return turn",
    )
});

/// ARGV person, now_ms, ttl_ms.
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', M) == 0 then return 0 end
redis.call('SADD', W, ARGV[1])
if redis.call('HGET', M, 'frozen') == '1' then skip(tonumber(ARGV[2]), math.huge) end
touch(ARGV[3])
return 1",
    )
});

/// The drawn people, in order.
static ORDER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local drawn = tonumber(redis.call('HGET', M, 'drawn') or '0')
if drawn < 1 then return {} end
return redis.call('LRANGE', O, 0, drawn - 1)",
    )
});

/// 1 for the first caller only (the draw is recorded once).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('EXISTS', M) == 0 then return 0 end
return redis.call('HSETNX', M, 'recorded', '1')",
    )
});

fn parse_u64(v: &str) -> Result<u64, StoreError> {
    v.parse().map_err(|_| StoreError(format!("contest: unexpected value `{v}`")))
}

impl RedisStore {
    fn contest_keys(&self, key: &str) -> Vec<String> {
        let base = self.key("wr", key);
        ["m", "t", "o", "r", "w"].iter().map(|k| format!("{base}:{k}")).collect()
    }

    pub async fn contest_enter(
        &self,
        key: &str,
        person: &str,
        ticket: &str,
        now_ms: u64,
        window: Duration,
        ttl: Duration,
    ) -> Result<Entered, StoreError> {
        let args = [s(person), s(ticket), n(now_ms), n(now_ms.saturating_add(ms(window))), n(ms(ttl).max(1))];
        let out: Vec<String> = self.run("contest_enter", &ENTER, &self.contest_keys(key), &args).await?;
        let [kind, open, close, rank] = out.as_slice() else {
            return Err(StoreError("contest_enter: unexpected answer".into()));
        };
        let kind = match kind.as_str() {
            "held" => EntryKind::Held,
            "ranked" => EntryKind::Ranked(parse_u64(rank)?),
            _ => EntryKind::Duplicate,
        };
        Ok(Entered { opened_ms: parse_u64(open)?, close_ms: parse_u64(close)?, kind })
    }

    pub async fn contest_poll(
        &self,
        key: &str,
        person: &str,
        now_ms: u64,
        turn_timeout: Duration,
        ttl: Duration,
    ) -> Result<Option<View>, StoreError> {
        let args = [s(person), n(now_ms), n(ms(turn_timeout)), n(ms(ttl).max(1))];
        let out: Option<Vec<String>> = self.run("contest_poll", &POLL, &self.contest_keys(key), &args).await?;
        let Some(out) = out else { return Ok(None) };
        let [open, close, frozen, turn, rank, drawn] = out.as_slice() else {
            return Err(StoreError("contest_poll: unexpected answer".into()));
        };
        Ok(Some(View {
            opened_ms: parse_u64(open)?,
            close_ms: parse_u64(close)?,
            frozen: frozen == "1",
            turn: parse_u64(turn)?,
            rank: rank.parse::<u64>().ok(),
            drawn: parse_u64(drawn)?,
        }))
    }

    pub async fn contest_advance(&self, key: &str, rank: u64, now_ms: u64, ttl: Duration) -> Result<(), StoreError> {
        let args = [n(rank), n(now_ms), n(ms(ttl).max(1))];
        self.run::<i64>("contest_advance", &ADVANCE, &self.contest_keys(key), &args).await.map(drop)
    }

    pub async fn contest_withdraw(
        &self,
        key: &str,
        person: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let args = [s(person), n(now_ms), n(ms(ttl).max(1))];
        self.run::<i64>("contest_withdraw", &WITHDRAW, &self.contest_keys(key), &args).await.map(drop)
    }

    pub async fn contest_order(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.run("contest_order", &ORDER, &self.contest_keys(key), &[]).await
    }

    pub async fn contest_claim(&self, key: &str) -> Result<bool, StoreError> {
        self.run::<i64>("contest_claim", &CLAIM, &self.contest_keys(key), &[]).await.map(|v| v == 1)
    }
}
