-- tollgate shared budgets: reservation renewal, version 1 (redis_budget_renew.v1.lua).
--
-- Keeps a call's budget reservations (redis_budget_reserve.v1.lua) alive while the call is
-- in flight: the instance serving it calls this every third of the lease TTL, so a long
-- stream keeps its reservation, while the reservations of an instance that died (and so
-- stopped renewing) are given back one TTL after its last renewal. A lease already gone is
-- not re-created: its amount was given back and may have been reserved by another call.
-- Runs on the Redis server's clock (TIME).
--
-- KEYS, for each budget i = 1..n (n = #KEYS / 2), as in redis_budget_reserve.v1.lua:
--   KEYS[2i-1]  hash <prefix>:g:<budget>:<period>
--   KEYS[2i]    zset <prefix>:gr:<budget>:<period>  member: hold id; score: expiry (ms)
-- ARGV:
--   ARGV[1]  the hold id
--   ARGV[2]  lease TTL in ms, from now
--   ARGV[3]  how long untouched keys live, ms
-- Returns the number of reservations renewed (n when every one was still held).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 2
local hold = ARGV[1]
local ttl = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local renewed = 0
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  -- Only a lease that has not expired yet: an expired one may still be listed until the
  -- next purge, but its amount no longer holds room.
  local exp = redis.call('ZSCORE', z, hold)
  if exp and tonumber(exp) > now then
    redis.call('ZADD', z, 'XX', now + ttl, hold)
    redis.call('PEXPIRE', h, idle)
    redis.call('PEXPIRE', z, idle)
    renewed = renewed + 1
  end
end
return renewed
