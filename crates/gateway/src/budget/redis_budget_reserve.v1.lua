-- tollgate shared budgets: reservation, version 1 (redis_budget_reserve.v1.lua).
--
-- Reserves one call's largest possible cost in every budget that applies to it (key, team,
-- global) or in none of them, in one round trip, so calls on any number of instances
-- together never reserve past a limit. The check mirrors the store's atomic UPDATE
-- (crates/store/src/budget.rs): refuse when spent >= limit or spent + reserved + amount >
-- limit. Runs on the Redis server's clock (TIME).
--
-- Reservations are leases: each has an expiry (server time + ARGV[3]) in a sorted set and
-- its amount in the budget's hash, and every script that touches the budget first drops the
-- expired ones from the hash's `reserved` sum. A call in flight renews its lease
-- (redis_budget_renew.v1.lua); an instance that dies stops renewing, so what it reserved is
-- given back one TTL later instead of leaking for the rest of the period.
--
-- Redis keeps nothing on disk here: the store's ledger is the durable record of spend. A
-- budget whose hash has no `spent` field is unseeded (new period, idle keys expired, or Redis
-- lost its data): the script then changes nothing and answers which budgets need a seed;
-- the caller reads their spend from the store and calls again with it in ARGV. The first
-- seed wins, and names the counters' generation (`gen`). Settlements that land while a
-- budget is unseeded are kept in `pending` and added to the seed (see
-- redis_budget_settle.v1.lua).
--
-- An instance that settled calls in the store alone (Redis was unreachable to it, under
-- `limits.redis_unavailable = "local"`) passes that spend as a catch-up, tagged with the
-- generation it last saw: it is added only to that same generation, since counters seeded
-- since then read it from the store already.
--
-- KEYS, for each budget i = 1..n (n = #KEYS / 2):
--   KEYS[2i-1]  hash <prefix>:g:<budget>:<period>
--               spent     settled nano-USD (absent: unseeded)
--               reserved  sum of the live reservations' amounts, nano-USD
--               gen       generation: set when seeded
--               pending   nano-USD settled while unseeded (added to the seed)
--               a:<hold>  amount of reservation <hold>
--   KEYS[2i]    zset <prefix>:gr:<budget>:<period>  member: hold id; score: lease expiry (ms)
-- ARGV:
--   ARGV[1]       amount to reserve, nano-USD (integer >= 0; 0 refuses only a spent budget)
--   ARGV[2]       this call's hold id (unique)
--   ARGV[3]       lease TTL in ms
--   ARGV[4]       how long untouched keys live, ms (> lease TTL; they are reseeded after)
--   ARGV[3i+2]    budget i's limit, nano-USD
--   ARGV[3i+3]    budget i's spend in the store, nano-USD, or '-' when not read
--   ARGV[3i+4]    budget i's catch-up 'GEN:NANOS' ('-': none)
-- Returns (every element a string):
--   reserved  {'1', gen_1, ..., gen_n}
--   refused   {'0', i, spent, reserved, gen_1, ..., gen_n}  budget i has no room; nothing
--             was reserved (seeds and catch-ups were applied)
--   unseeded  {'2', i, j, ...}  these budgets need a seed; nothing was changed
-- Amounts are compared as Lua numbers: exact up to 2^53 nano-USD (about 9 million USD);
-- they are stored and added with HINCRBY, exact as 64-bit integers.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS / 2
local amount = ARGV[1]
local hold = ARGV[2]
local ttl = tonumber(ARGV[3])
local idle = tonumber(ARGV[4])

-- Give back the reservations whose lease ran out.
local function purge(h, z)
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
end

-- First pass: can every budget be counted? Nothing changes unless so.
local unseeded = {'2'}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i - 1], 'spent') == 0 and ARGV[3 * i + 3] == '-' then
    unseeded[#unseeded + 1] = tostring(i)
  end
end
if #unseeded > 1 then
  return unseeded
end

-- Second pass: seed, catch up, drop expired leases.
local gens = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local seed = ARGV[3 * i + 3]
  if redis.call('HEXISTS', h, 'spent') == 0 then
    local pending = redis.call('HGET', h, 'pending')
    redis.call('HSET', h, 'spent', seed, 'reserved', '0', 'gen', t[1] .. t[2] .. ':' .. hold)
    if pending then
      redis.call('HINCRBY', h, 'spent', pending)
      redis.call('HDEL', h, 'pending')
    end
    -- Leases without their amounts (the hash was lost) count for nothing.
    redis.call('DEL', z)
    redis.call('PEXPIRE', h, idle)
  else
    local gen, nanos = string.match(ARGV[3 * i + 4], '^(.+):(%d+)$')
    if gen and gen == redis.call('HGET', h, 'gen') and nanos ~= '0' then
      redis.call('HINCRBY', h, 'spent', nanos)
    end
    purge(h, z)
  end
  gens[i] = redis.call('HGET', h, 'gen')
end

-- Third pass: would every budget take it?
local need = tonumber(amount)
for i = 1, n do
  local h = KEYS[2 * i - 1]
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local limit = tonumber(ARGV[3 * i + 2])
  if spent >= limit or spent + reserved + need > limit then
    local out = {'0', tostring(i), v[1] or '0', v[2] or '0'}
    for j = 1, n do
      out[#out + 1] = gens[j]
    end
    return out
  end
end

-- Fourth pass: take.
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if amount ~= '0' then
    redis.call('HINCRBY', h, 'reserved', amount)
    redis.call('HSET', h, 'a:' .. hold, amount)
    redis.call('ZADD', z, now + ttl, hold)
  end
  -- The hash and the set always get the same expiry, so that leases never vanish while
  -- their amounts stay counted in `reserved`.
  redis.call('PEXPIRE', h, idle)
  redis.call('PEXPIRE', z, idle)
end
local out = {'1'}
for i = 1, n do
  out[#out + 1] = gens[i]
end
return out
