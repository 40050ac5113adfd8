-- tollgate shared rate limits: concurrency lease renewal, version 1 (redis_renew.v1.lua).
--
-- Keeps an admitted request's concurrency leases (taken by redis_admit.v1.lua) alive while
-- the request is still in flight: the instance serving it calls this every third of the
-- lease TTL, so a stream longer than the TTL keeps its slot, while the leases of an instance
-- that died (and so stopped renewing) still expire one TTL after its last renewal. A lease
-- that is already gone (it expired while Redis was unreachable, and its slot may have been
-- given to another request since) is not re-created: that would admit one request too many.
-- Runs on the Redis server's clock (TIME).
--
-- KEYS, for each subject i = 1..n with a concurrency limit:
--   KEYS[i]  zset <prefix>:c:<scope>:<id>  member: lease id; score: lease expiry (ms)
-- ARGV:
--   ARGV[1]  the request's lease id
--   ARGV[2]  lease TTL in ms, from now
-- Returns the number of leases renewed (#KEYS when every lease was still held).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local lease = ARGV[1]
local ttl = tonumber(ARGV[2])
local renewed = 0
for i = 1, #KEYS do
  local c = KEYS[i]
  if redis.call('ZSCORE', c, lease) then
    redis.call('ZADD', c, 'XX', now + ttl, lease)
    -- Every lease in the set expires by now + ttl at the latest, so this never shortens
    -- the set's life below one of its leases.
    redis.call('PEXPIRE', c, math.ceil(ttl) + 1000)
    renewed = renewed + 1
  end
end
return renewed
