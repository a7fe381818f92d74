//! The Lua scripts of the shared store. Each runs atomically on the server and touches one key,
//! except the GCRA script, whose keys share a hash tag (one cluster slot) by construction.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1] txn; ARGV mobile, mac (hex), expires_at_ms, ttl_ms.
pub static TXN_PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'mac', ARGV[2], 'exp', ARGV[3], 'a', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1",
    )
});

/// KEYS[1] txn; ARGV now_ms. The mobile of a live transaction, or nil.
pub static TXN_MOBILE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('HMGET', KEYS[1], 'm', 'exp')
if not t[1] or tonumber(t[2]) <= tonumber(ARGV[1]) then return false end
return t[1]",
    )
});

/// KEYS[1] txn; ARGV candidate mac (hex), max_attempts, now_ms.
/// {'invalid'} | {'verified', mobile} | {'wrong', '0'|'1' (burned)}. The MACs are compared in
/// constant time; a correct OTP consumes the transaction (single use), the last wrong one burns it.
pub static TXN_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('HMGET', KEYS[1], 'm', 'mac', 'exp', 'a')
if not t[1] then return {'invalid'} end
local exp, a, max = tonumber(t[3]), tonumber(t[4]), tonumber(ARGV[2])
if exp <= tonumber(ARGV[3]) or a >= max then
  redis.call('DEL', KEYS[1])
  return {'invalid'}
end
local mac, cand = t[2], ARGV[1]
local diff = 0
if #mac ~= #cand then diff = 1 end
for i = 1, math.min(#mac, #cand) do
  diff = bit.bor(diff, bit.bxor(string.byte(mac, i), string.byte(cand, i)))
end
if diff == 0 then
  redis.call('DEL', KEYS[1])
  return {'verified', t[1]}
end
a = redis.call('HINCRBY', KEYS[1], 'a', 1)
if a >= max then
  redis.call('DEL', KEYS[1])
  return {'wrong', '1'}
end
return {'wrong', '0'}",
    )
});

/// KEYS[1] window (a sorted set of event times); ARGV now_ms, window_ms, limit, record (0|1),
/// unique member. 0 when allowed (and recorded if asked), else the milliseconds until the
/// oldest event leaves the window.
pub static WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, win, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local retry = tonumber(oldest[2]) + win - now
  if retry < 1 then retry = 1 end
  return retry
end
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], win)
end
return 0",
    )
});

/// KEYS[1] set; ARGV member, limit, ttl_ms. {1, count} when added, {0, count} when already in, {-1, count}
/// when the set is full.
pub static DISTINCT_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('SCARD', KEYS[1])
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {0, n} end
if n >= tonumber(ARGV[2]) then return {-1, n} end
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, n + 1}",
    )
});

/// KEYS[1] session; ARGV mobile, created_ms, last_seen_ms, ttl_ms.
pub static SESSION_PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'c', ARGV[2], 'l', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1",
    )
});

/// KEYS[1] session; ARGV now_ms, idle_ms, absolute_ms. {mobile, created, last_seen} of a live
/// session (its last-seen time moved to now), or nil (unknown, revoked, idle or too old).
pub static SESSION_TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local s = redis.call('HMGET', KEYS[1], 'm', 'c', 'l')
if not s[1] then return false end
local now, idle, abs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local c, l = tonumber(s[2]), tonumber(s[3])
if now - l > idle or now - c > abs then
  redis.call('DEL', KEYS[1])
  return false
end
if now > l then
  l = now
  redis.call('HSET', KEYS[1], 'l', l)
end
local ttl = math.min(idle, abs - (now - c))
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {s[1], tostring(c), tostring(l)}",
    )
});

/// KEYS[1] list; ARGV entry, max_entries, ttl_ms. Newest first.
pub static LIST_PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1",
    )
});

/// GCRA over several windows at once, on the server's clock. KEYS: one per window (theoretical
/// arrival time, microseconds); ARGV: per key, the emission interval (µs) and the burst. Every
/// window is checked first; only when all allow is each charged (all or nothing). Returns per key
/// {1, remaining} or {0, retry_after_us} (flattened).
pub static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, tats, denied = {}, {}, false
for i = 1, #KEYS do
  local emission, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + emission
  local over = new - now - emission * burst
  if over > 0 then
    denied = true
    out[2 * i - 1], out[2 * i] = 0, over
  else
    out[2 * i - 1], out[2 * i] = 1, math.floor((emission * burst - (new - now)) / emission)
  end
  tats[i] = new
end
if not denied then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return out",
    )
});

/// Give back one cell of each window (KEYS; ARGV: per key its emission interval, µs): a request
/// charged on some cluster slots but refused on another is not charged at all.
pub static GCRA_REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > 0 then
      redis.call('SET', KEYS[i], string.format('%.0f', tat - tonumber(ARGV[i])), 'PX', ttl)
    end
  end
end
return 1",
    )
});
