-- tollgate shared rate limits: admission, version 1 (redis_admit.v1.lua).
--
-- Admits one request over every subject it has (key, team, client IP, route) or none of
-- them, in one round trip, on the Redis server's clock (TIME), so instances with skewed
-- clocks still share one bucket. Mirrors the local limiter (crates/gateway/src/limits.rs):
-- token buckets of capacity N refilled at N per minute, and concurrency counted as leases.
--
-- KEYS, for each subject i = 1..n (n = #KEYS / 2):
--   KEYS[2i-1]  hash <prefix>:b:<scope>:<id>  rl, rt: requests level and when (ms);
--                                             tl, tt: tokens level and when (ms)
--   KEYS[2i]    zset <prefix>:c:<scope>:<id>  member: lease id; score: lease expiry (ms)
-- ARGV:
--   ARGV[1]       tokens to reserve (prompt estimate + max_tokens; 0 when no tpm applies)
--   ARGV[2]       this request's lease id (unique)
--   ARGV[3]       lease TTL in ms: a lease not released by then (its instance died) is dropped
--   ARGV[3i+1]    subject i's requests per minute (0: no limit)
--   ARGV[3i+2]    subject i's tokens per minute (0: no limit)
--   ARGV[3i+3]    subject i's concurrency (0: no limit)
-- Returns:
--   admitted  {1, req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms}
--             the tightest request and token limits (limit 0: none applied)
--   refused   {0, i, kind, retry_after_ms}; kind 1 = requests, 2 = tokens, 3 = concurrency
-- Bucket hashes expire once they would be full again, lease sets a TTL after their last lease:
-- idle subjects cost nothing.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS / 2
local need = tonumber(ARGV[1])
local lease = ARGV[2]
local ttl = tonumber(ARGV[3])

local function level(key, lf, tf, cap)
  local v = redis.call('HMGET', key, lf, tf)
  local l, at = tonumber(v[1]), tonumber(v[2])
  if l == nil or at == nil then
    return cap
  end
  local dt = now - at
  if dt < 0 then
    dt = 0
  end
  return math.min(cap, l + dt * cap / 60000)
end

-- First pass: would every subject admit it?
local rl, tl = {}, {}
for i = 1, n do
  local rpm = tonumber(ARGV[3 * i + 1])
  local tpm = tonumber(ARGV[3 * i + 2])
  local conc = tonumber(ARGV[3 * i + 3])
  local b, c = KEYS[2 * i - 1], KEYS[2 * i]
  if rpm > 0 then
    local l = level(b, 'rl', 'rt', rpm)
    if l < 1 then
      return {0, i, 1, math.ceil((1 - l) * 60000 / rpm)}
    end
    rl[i] = l
  end
  if tpm > 0 then
    local l = level(b, 'tl', 'tt', tpm)
    -- A request larger than the whole budget could never pass: bound it by the capacity.
    local want = math.min(need, tpm)
    if l < want then
      return {0, i, 2, math.ceil((want - l) * 60000 / tpm)}
    end
    tl[i] = l
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', c, '-inf', now)
    if redis.call('ZCARD', c) >= conc then
      return {0, i, 3, 1000}
    end
  end
end

-- Second pass: take.
local res = {1, 0, 0, 0, 0, 0, 0}
for i = 1, n do
  local rpm = tonumber(ARGV[3 * i + 1])
  local tpm = tonumber(ARGV[3 * i + 2])
  local conc = tonumber(ARGV[3 * i + 3])
  local b, c = KEYS[2 * i - 1], KEYS[2 * i]
  local idle = 0
  if rpm > 0 then
    local l = rl[i] - 1
    redis.call('HSET', b, 'rl', tostring(l), 'rt', tostring(now))
    local full = (rpm - l) * 60000 / rpm
    local left = math.max(0, math.floor(l))
    if res[2] == 0 or left < res[3] then
      res[2], res[3], res[4] = rpm, left, math.ceil(full)
    end
    idle = math.max(idle, full)
  end
  if tpm > 0 then
    local l = tl[i] - need
    redis.call('HSET', b, 'tl', tostring(l), 'tt', tostring(now))
    local full = (tpm - l) * 60000 / tpm
    local left = math.max(0, math.floor(l))
    if res[5] == 0 or left < res[6] then
      res[5], res[6], res[7] = tpm, left, math.ceil(full)
    end
    idle = math.max(idle, full)
  end
  if idle > 0 then
    redis.call('PEXPIRE', b, math.ceil(idle) + 1000)
  end
  if conc > 0 then
    redis.call('ZADD', c, now + ttl, lease)
    redis.call('PEXPIRE', c, ttl + 1000)
  end
end
return res
