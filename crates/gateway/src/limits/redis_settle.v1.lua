-- tollgate shared rate limits: settlement and release, version 1 (redis_settle.v1.lua).
--
-- Ends one admitted request in one call: gives back (or takes more of) the tokens reserved
-- by redis_admit.v1.lua now that the call's usage is known, and releases its concurrency
-- lease. Runs on the Redis server's clock (TIME).
--
-- KEYS, for each subject i = 1..n (n = #KEYS / 2), as in redis_admit.v1.lua:
--   KEYS[2i-1]  hash <prefix>:b:<scope>:<id>  tl, tt: tokens level and when (ms)
--   KEYS[2i]    zset <prefix>:c:<scope>:<id>  concurrency leases
-- ARGV:
--   ARGV[1]       tokens to give back: reserved - used (negative when the call used more)
--   ARGV[2]       the request's lease id
--   ARGV[2i+1]    subject i's tokens per minute (0: no token limit)
--   ARGV[2i+2]    subject i's concurrency (0: no lease to release)
-- Returns the number of leases released.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS / 2
local delta = tonumber(ARGV[1])
local lease = ARGV[2]
local released = 0
for i = 1, n do
  local tpm = tonumber(ARGV[2 * i + 1])
  local conc = tonumber(ARGV[2 * i + 2])
  local b, c = KEYS[2 * i - 1], KEYS[2 * i]
  if tpm > 0 and delta ~= 0 then
    local v = redis.call('HMGET', b, 'tl', 'tt')
    local l, at = tonumber(v[1]), tonumber(v[2])
    -- A bucket that expired is full again: nothing to give back or take.
    if l ~= nil and at ~= nil then
      local dt = math.max(0, now - at)
      l = math.min(tpm, math.min(tpm, l + dt * tpm / 60000) + delta)
      redis.call('HSET', b, 'tl', tostring(l), 'tt', tostring(now))
      local full = (tpm - l) * 60000 / tpm
      local cur = redis.call('PTTL', b)
      if full + 1000 > cur then
        redis.call('PEXPIRE', b, math.ceil(full) + 1000)
      end
    end
  end
  if conc > 0 then
    released = released + redis.call('ZREM', c, lease)
  end
end
return released
