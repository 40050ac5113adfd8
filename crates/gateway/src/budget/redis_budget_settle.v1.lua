-- tollgate shared budgets: settlement, version 1 (redis_budget_settle.v1.lua).
--
-- Ends one call's reservation (made by redis_budget_reserve.v1.lua) in every budget it holds,
-- in one call: releases the reservation and adds the call's actual cost to the spend. The
-- caller has already added the cost to the store's ledger (the durable record), so Redis is
-- never ahead of the store by a settlement that could be lost. Also drops expired leases,
-- so with an empty hold id and a zero cost it is a plain read of the budgets.
-- Runs on the Redis server's clock (TIME).
--
-- A budget that is unseeded (its hash has no `spent`: Redis lost it, or it expired idle)
-- keeps the cost in `pending`, added to the seed when the budget is seeded: a settlement
-- racing a seed is then counted twice (the seed read it from the store too) rather than not
-- at all, so the shared figure errs towards refusing, never towards overshooting.
--
-- KEYS, for each budget i = 1..n (n = #KEYS / 2), as in redis_budget_reserve.v1.lua:
--   KEYS[2i-1]  hash <prefix>:g:<budget>:<period>
--   KEYS[2i]    zset <prefix>:gr:<budget>:<period>
-- ARGV:
--   ARGV[1]  the hold id ('' for none: only read)
--   ARGV[2]  the call's actual cost, nano-USD (integer >= 0)
--   ARGV[3]  how long untouched keys live, ms
-- Returns {spent_1, reserved_1, spent_2, reserved_2, ...}; -1, -1 for an unseeded budget.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 2
local hold = ARGV[1]
local actual = ARGV[2]
local idle = tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HEXISTS', h, 'spent') == 1 then
    local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
    for _, id in ipairs(gone) do
      local a = redis.call('HGET', h, 'a:' .. id)
      if a then
        redis.call('HDEL', h, 'a:' .. id)
        if a ~= '0' then
          redis.call('HINCRBY', h, 'reserved', '-' .. a)
        end
      end
    end
    if #gone > 0 then
      redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    end
    if hold ~= '' then
      -- Gone when its lease expired first: then it was given back above or before.
      local a = redis.call('HGET', h, 'a:' .. hold)
      if a then
        redis.call('HDEL', h, 'a:' .. hold)
        redis.call('ZREM', z, hold)
        if a ~= '0' then
          redis.call('HINCRBY', h, 'reserved', '-' .. a)
        end
      end
    end
    if actual ~= '0' then
      redis.call('HINCRBY', h, 'spent', actual)
    end
    if hold ~= '' or actual ~= '0' then
      redis.call('PEXPIRE', h, idle)
      redis.call('PEXPIRE', z, idle)
    end
    local v = redis.call('HMGET', h, 'spent', 'reserved')
    out[#out + 1] = tonumber(v[1]) or 0
    out[#out + 1] = tonumber(v[2]) or 0
  else
    if actual ~= '0' then
      redis.call('HINCRBY', h, 'pending', actual)
      redis.call('PEXPIRE', h, idle)
    end
    out[#out + 1] = -1
    out[#out + 1] = -1
  end
end
return out
