-- tollgate shared abuse counting, version 1 (redis_abuse.v1.lua).
--
-- Counts one abuse event (a guard block or a denial) of a key across every instance, over a
-- sliding window on the Redis server's clock (TIME), and says whether this event is the one
-- that reached the threshold: exactly one caller, on one instance, gets 1 for each crossing,
-- so the suspension is written and alerted once. The events are then forgotten, and for
-- ARGV[4] ms further events of the key are not counted: they are the ones that raced the
-- suspension to the other instances (which see it within a second), not a new campaign.
--
-- KEYS:
--   KEYS[1]  zset <prefix>:a:<kind>:<key id>  member: event id; score: when (ms)
--   KEYS[2]  string <prefix>:s:<key id>       set while a fresh suspension settles
-- ARGV:
--   ARGV[1]  the sliding window, ms
--   ARGV[2]  events within the window that suspend the key (>= 1)
--   ARGV[3]  this event's id (unique)
--   ARGV[4]  how long after a suspension events are not counted, ms (>= 1)
-- Returns 1 when this event suspends the key, else 0.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local window = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window) + 1000)
if redis.call('ZCARD', KEYS[1]) >= threshold then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', math.ceil(tonumber(ARGV[4])))
  return 1
end
return 0
