-- tollgate shared scripts: the KEYS/ARGV split of the two-part scripts, version 1
-- (redis_split.v1.lua). Not a script on its own: crates/gateway/src/budget/shared.rs puts
-- it before the dispatchers of redis_admit_reserve.v1.lua and redis_settle_both.v1.lua,
-- which both send the budget part first, then the rate-limit part:
--   ARGV[1]  how many KEYS are the budget part's; ARGV[2]  how many ARGV after these two are
-- Returns the budget part's KEYS, the rate part's KEYS, the budget part's ARGV, the rate
-- part's ARGV.
local function split(KEYS, ARGV)
  local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
  local bkeys, akeys, bargv, aargv = {}, {}, {}, {}
  for i = 1, #KEYS do
    if i <= nk then
      bkeys[#bkeys + 1] = KEYS[i]
    else
      akeys[#akeys + 1] = KEYS[i]
    end
  end
  for i = 3, #ARGV do
    if i - 2 <= na then
      bargv[#bargv + 1] = ARGV[i]
    else
      aargv[#aargv + 1] = ARGV[i]
    end
  end
  return bkeys, akeys, bargv, aargv
end
