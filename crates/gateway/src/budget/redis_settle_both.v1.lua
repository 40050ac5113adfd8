-- tollgate shared settlement: budget settlement and rate settlement together, version 1
-- (redis_settle_both.v1.lua).
--
-- Ends a request admitted by redis_admit_reserve.v1.lua in ONE round trip: settles its
-- budget reservation with the actual cost and its token reservation with the tokens used,
-- and releases its concurrency lease. The script text sent to Redis is built by the gateway
-- (crates/gateway/src/budget/shared.rs, SETTLE_BOTH_SCRIPT) from the unchanged bodies of
-- redis_budget_settle.v1.lua and crates/gateway/src/limits/redis_settle.v1.lua, wrapped as
-- local functions `settle_budget` and `settle_rate` (KEYS, ARGV); this file is the
-- dispatcher that follows them.
--
-- KEYS:
--   KEYS[1 .. ARGV[1]]        the budget keys, as KEYS of redis_budget_settle.v1.lua
--   KEYS[ARGV[1]+1 ..]        the rate limit keys, as KEYS of redis_settle.v1.lua
-- ARGV:
--   ARGV[1]                   how many KEYS are the budgets' (2 per budget)
--   ARGV[2]                   how many of the following ARGV are the budgets' (3)
--   ARGV[3 .. ARGV[2]+2]      ARGV of redis_budget_settle.v1.lua
--   ARGV[ARGV[2]+3 ..]        ARGV of redis_settle.v1.lua
-- Returns {budget_reply, released}: budget_reply as redis_budget_settle.v1.lua answers,
-- released as redis_settle.v1.lua answers.

local bkeys, akeys, bargv, aargv = split(KEYS, ARGV)
return {settle_budget(bkeys, bargv), settle_rate(akeys, aargv)}
