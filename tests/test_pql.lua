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

-- The generator's product-usage events (generate{ product = true }) scored by rules/pql.lua; without
-- the option the files are the same bytes, the usage rows being the only difference.
local USAGE = { trial_started = true, active_day = true, key_feature_used = true, seat_invited = true,
                usage_limit_hit = true, upgrade_page_viewed = true }

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function T.test_generated_usage_events()
  local helpers = require("helpers")
  local gen = require("leadq.gen")
  local n = 3000           -- enough trials for every status (the same size under the sanitizers: it is quick)
  local plain, product = helpers.tmpdir(), helpers.tmpdir()
  assert(gen.generate { leads = n, seed = 21, out = plain })
  assert(gen.generate { leads = n, seed = 21, out = product, product = true })
  lu.assertEquals(read_all(product .. "/leads.csv"), read_all(plain .. "/leads.csv"))
  lu.assertEquals(read_all(product .. "/transitions.csv"), read_all(plain .. "/transitions.csv"))
  local kept, usage = {}, {}
  for line in read_all(product .. "/events.csv"):gmatch("[^\n]+") do
    local ty = line:match("^[^,]*,([^,]*),")
    if USAGE[ty] then usage[ty] = (usage[ty] or 0) + 1 else kept[#kept + 1] = line end
  end
  lu.assertEquals(table.concat(kept, "\n") .. "\n", read_all(plain .. "/events.csv"))
  for ty in pairs(USAGE) do lu.assertTrue((usage[ty] or 0) > 0, ty) end

  local leads = assert(leadq.read_csv(product .. "/leads.csv"))
  local events = assert(leadq.read_events(product .. "/events.csv"))
  local res = assert(model():score(leads, events, { as_of = "2026-11-01" }))
  local counts = {}
  for _, st in ipairs(res:column("status")) do counts[st] = (counts[st] or 0) + 1 end
  -- most leads never try the product; of those who do, the keen ones become PQLs
  lu.assertTrue(counts.disqualified > n / 2)
  lu.assertTrue((counts.pql or 0) > 0)
  lu.assertTrue((counts.activated or 0) > 0)
  lu.assertTrue((counts.trial or 0) > 0)
  lu.assertTrue(usage.trial_started < n / 2)
  local ok, err = pcall(gen.generate, { leads = 1, product = "yes" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "product must be true or false")
end


return M
