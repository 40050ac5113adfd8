-- tollgate shared admission: budget reservation and rate admission together, version 1
-- (redis_admit_reserve.v1.lua).
--
-- A request under both shared budgets and shared rate limits is admitted in ONE round trip,
-- all or nothing. The script text sent to Redis is built by the gateway
-- (crates/gateway/src/budget/shared.rs, ADMIT_RESERVE_SCRIPT) from the unchanged bodies of
-- redis_budget_reserve.v1.lua, crates/gateway/src/limits/redis_admit.v1.lua and
-- redis_budget_settle.v1.lua, each wrapped as a local function `reserve`, `admit` and
-- `release` (KEYS, ARGV); this file is the dispatcher that follows them. Each piece of
-- logic lives in one file only.
--
-- Order: reserve the budgets first, then admit under the rate limits, and if admission
-- refuses, give the budget hold back (with `release`, the settle script with a zero cost)
-- inside this same call. Redis runs a script atomically, so no other call ever sees the
-- hold that was given back. A budget that refuses (or needs a seed) stops the script before
-- admission: no rate token and no concurrency slot is taken. Seeds and catch-ups the
-- reservation applied stay applied (they are facts about the spend, not this request's).
--
-- Seeding: when the budget script answers "unseeded", nothing at all has changed (admission
-- did not run); the caller reads the spend from the store and calls this script again with
-- the seeds. That rare case (new period, idle keys expired, Redis lost its data) costs a
-- second round trip.
--
-- KEYS:
--   KEYS[1 .. ARGV[1]]        the budget keys, as KEYS of redis_budget_reserve.v1.lua
--   KEYS[ARGV[1]+1 ..]        the rate limit keys, as KEYS of redis_admit.v1.lua
-- ARGV:
--   ARGV[1]                   how many KEYS are the budgets' (2 per budget)
--   ARGV[2]                   how many of the following ARGV are the budgets' (4 + 3 per budget)
--   ARGV[3 .. ARGV[2]+2]      ARGV of redis_budget_reserve.v1.lua
--   ARGV[ARGV[2]+3 ..]        ARGV of redis_admit.v1.lua
-- Returns {reserve_reply, admit_reply}: reserve_reply as redis_budget_reserve.v1.lua
-- answers; admit_reply as redis_admit.v1.lua answers, or empty when the budgets did not
-- reserve (refused or unseeded), so admission was not tried. A reserve_reply of '1' with a
-- refused admit_reply means the hold was given back: nothing is held.

local bkeys, akeys, bargv, aargv = split(KEYS, ARGV)
local r = reserve(bkeys, bargv)
if r[1] ~= '1' then
  return {r, {}}
end
local a = admit(akeys, aargv)
if a[1] ~= 1 then
  -- The hold id, no cost, the keys' idle lifetime: as redis_budget_settle.v1.lua takes them.
  release(bkeys, {bargv[2], '0', bargv[4]})
end
return {r, a}
