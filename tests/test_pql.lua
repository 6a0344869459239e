-- rules/pql.lua: the product-qualified-lead model on product-usage events, which feed features like
-- any other events. The usage events are generated here, per kind of trial user, deterministically.
local lu = require("luaunit")
local leadq = require("leadq")

local M = {}
M.TestPql = {}
local T = M.TestPql

local DAY = 86400
local AS_OF = 1780012800 + 12 * 3600   -- 2026-05-29T12:00:00Z
local SCHEMA = { lead_id = "category", type = "category", at = "time", value = "number" }

local function model()
  local m, err = leadq.load_model("rules/pql.lua")
  lu.assertNotNil(m, err)
  return m
end

-- A small deterministic generator (an LCG: the same numbers under every Lua) of trial users:
--   power    trial 5 days ago, active 4-5 days, key feature, 1-4 invites, hits a limit: a PQL
--   solo     trial 6 days ago, active 3 days, key feature, no invite: activated, not yet a PQL
--   lurker   trial 10 days ago, one active day at the start: gone quiet
--   none     no usage at all: disqualified (not a product lead)
local KINDS = { "power", "solo", "lurker", "none" }

local function generate(n)
  local seed = 12345
  local function rand(k)            -- 1..k
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % k + 1
  end
  local leads, events, kinds = {}, {}, {}
  local function add(id, ty, days_ago, value)
    events[#events + 1] = { lead_id = id, type = ty, at = AS_OF - days_ago * DAY + rand(3600), value = value }
  end
  for i = 1, n do
    local id = string.format("U%05d", i)
    local kind = KINDS[(i - 1) % #KINDS + 1]
    leads[i], kinds[i] = { id = id }, kind
    if kind == "power" then
      add(id, "trial_started", 5)
      for d = 5, 5 - 3 - rand(2), -1 do add(id, "active_day", d) end
      for _ = 1, rand(6) do add(id, "key_feature_used", rand(4), 1) end
      for _ = 1, rand(4) do add(id, "seat_invited", rand(4)) end
      add(id, "usage_limit_hit", 1)
    elseif kind == "solo" then
      add(id, "trial_started", 6)
      for d = 6, 4, -1 do add(id, "active_day", d) end
      add(id, "key_feature_used", 5, 1)
    elseif kind == "lurker" then
      add(id, "trial_started", 20)
      add(id, "active_day", 20)
    end
  end
  -- events arrive shuffled, as from a product log merged from several servers
  for i = #events, 2, -1 do
    local j = rand(i)
    events[i], events[j] = events[j], events[i]
  end
  return leadq.table(leads), leadq.table(events, SCHEMA), kinds
end

function T.test_statuses_by_kind_of_user()
  local n = LEADQ_VARIANT == "asan" and 200 or 2000
  local leads, events, kinds = generate(n)
  local res, errs = model():score(leads, events, { as_of = AS_OF })
  lu.assertNotNil(res, errs)
  lu.assertNil(errs)
  local status, total, reason = res:column("status"), res:column("total"), res:column("reason")
  local want = { power = "pql", solo = "activated", lurker = "trial", none = "disqualified" }
  for i = 1, n do
    if status[i] ~= want[kinds[i]] then
      lu.fail(string.format("lead %d (%s): status %s, total %s", i, kinds[i], tostring(status[i]), tostring(total[i])))
    end
  end
  lu.assertEquals(reason[4], "no product usage")
  lu.assertEquals(reason[1], "ACTIVE_FIRST_WEEK")
  lu.assertEquals(reason[3], "GONE_QUIET")
end

function T.test_power_user_explained()
  local leads, events = generate(4)
  local ex = model():explain(leads, 1, events, { as_of = AS_OF })
  local fired = {}
  for _, r in ipairs(ex.rules) do fired[r.id] = r.points end
  lu.assertEquals(fired.ACTIVE_FIRST_WEEK, 30)
  lu.assertEquals(fired.KEY_FEATURE, 20)
  lu.assertEquals(fired.TEAM_INVITE, 20)
  lu.assertEquals(fired.HIT_LIMIT, 15)
  lu.assertEquals(ex.status, "pql")
  lu.assertEquals(ex.groups.activation.cap, 50)
end

function T.test_bulk_and_one_lead_agree()
  local leads, events = generate(8)
  local m = model()
  local res = m:score(leads, events, { as_of = AS_OF })
  local all = {}
  for i = 1, #events do all[i] = events:row(i) end
  for row = 1, 8 do
    local id = leads:row(row).id
    local mine = {}
    for _, e in ipairs(all) do if e.lead_id == id then mine[#mine + 1] = e end end
    local one = m:score_one({ id = id }, mine, { as_of = AS_OF })
    lu.assertEquals(one.total, res:row(row).total, id)
    lu.assertEquals(one.status, res:row(row).status, id)
  end
end

-- "three active days in the first week": the third day makes the difference.
function T.test_first_week_needs_three_active_days()
  local m = model()
  local function status_with(days)
    local ev = { { lead_id = "a", type = "trial_started", at = AS_OF - 6 * DAY } }
    for d = 1, days do ev[#ev + 1] = { lead_id = "a", type = "active_day", at = AS_OF - d * DAY } end
    ev[#ev + 1] = { lead_id = "a", type = "key_feature_used", at = AS_OF - DAY, value = 1 }
    ev[#ev + 1] = { lead_id = "a", type = "seat_invited", at = AS_OF - DAY }
    local r = m:score_one({ id = "a" }, ev, { as_of = AS_OF })
    return r.status, r.total
  end
  lu.assertEquals({ status_with(2) }, { "activated", 40 })
  lu.assertEquals({ status_with(3) }, { "pql", 70 })
end

function T.test_the_script_checks_clean()
  lu.assertTrue(leadq.check("rules/pql.lua"))
end

return M
