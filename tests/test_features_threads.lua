-- The bulk feature pass on several threads: every value and every count of the report equal to one
-- thread's, on generated leads and events in file order, shuffled, and in time order.
local lu = require("luaunit")
local core = require("leadq.core")
local leadq = require("leadq")
local features = require("leadq.features")
local helpers = require("helpers")

local M = {}
M.TestFeaturesThreads = {}
local T = M.TestFeaturesThreads

local AS_OF = "2026-11-01T00:00:00Z"
local THREADS = { 2, 3, 4, 7 }
local EVENT_SCHEMA = { lead_id = "category", type = "category", at = "time", value = "number", page = "category",
  asset = "category", campaign = "category" }

local SPECS, OPTIONS = helpers.every_feature()   -- every feature, attribute filters, every noise rule

local generated   -- leads and the events as Lua records, made once for the suite

local function sample()
  generated = generated or helpers.generated_events(helpers.size(4000, 1500), 77)
  return generated
end

local shuffled = helpers.shuffled

local function time_ordered(list)
  local idx = {}
  for i = 1, #list do idx[i] = i end
  table.sort(idx, function(a, b)
    if list[a].at ~= list[b].at then return list[a].at < list[b].at end
    return a < b
  end)
  local out = {}
  for k, i in ipairs(idx) do out[k] = list[i] end
  return out
end

local function assert_same(fs, one, other, nrows, what)
  helpers.assert_same_features(fs, one, other, nrows, what, "on one thread")
end
local assert_same_report = helpers.assert_same_report

-- The list as an events table, computed on one thread and on each of THREADS: all the same.
local function check_every_threads(fs, leads, list, what, opts)
  local events = core.table(list, EVENT_SCHEMA)
  local base = { as_of = AS_OF }
  for k, v in pairs(opts or {}) do base[k] = v end
  local one, one_report = fs:compute(leads, events, base)
  lu.assertNotNil(one, one_report)
  for _, n in ipairs(THREADS) do
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    o.threads = n
    local got, report = fs:compute(leads, events, o)
    lu.assertNotNil(got, report)
    assert_same(fs, one, got, #leads, string.format("%s, %d threads", what, n))
    assert_same_report(one_report, report, string.format("%s, %d threads", what, n))
    got:close()
  end
  events:close()
  return one, one_report
end

function T.test_generated_events_in_file_order()
  local s = sample()
  local fs = features.new(SPECS, OPTIONS)
  local one, report = check_every_threads(fs, s.leads, s.list, "file order")
  -- the sample exercises what it claims to: events used, noise met, leads with and without values
  lu.assertTrue(report.used > 10000)
  lu.assertTrue(report.noise.short_page_view > 0)
  lu.assertTrue(report.noise.flagged_lead > 0)
  local views, with = one:column("views_30d"), 0
  for r = 1, #s.leads do if views[r] > 0 then with = with + 1 end end
  lu.assertTrue(with > 0 and with < #s.leads)
end

function T.test_generated_events_shuffled()
  local s = sample()
  check_every_threads(features.new(SPECS, OPTIONS), s.leads, shuffled(s.list, 4242), "shuffled")
end

function T.test_generated_events_in_time_order()
  local s = sample()
  check_every_threads(features.new(SPECS, OPTIONS), s.leads, time_ordered(s.list), "time order")
end

-- Events of unknown leads among the others, events after as_of, without a time, of types no feature
-- reads; two leads sharing an id; the first unknown rows listed in file order whichever thread met them.
function T.test_left_out_events_and_unknown_rows_agree()
  local s = sample()
  local list, x = {}, 99
  for i, e in ipairs(s.list) do
    list[#list + 1] = e
    x = (16807 * x) % 2147483647
    local kind = x % 40
    if kind == 0 then
      list[#list + 1] = { lead_id = "nobody" .. (x % 300), type = "page_view", at = e.at, value = 60 }
    elseif kind == 1 then
      list[#list + 1] = { lead_id = e.lead_id, type = "pricing_view", at = e.at + 400 * 86400, value = 60 }
    elseif kind == 2 then
      list[#list + 1] = { lead_id = e.lead_id, type = "page_view", value = 60 }
    elseif kind == 3 then
      list[#list + 1] = { lead_id = e.lead_id, type = "chat_started", at = e.at }
    end
    if i % 5000 == 0 then list[#list + 1] = { type = "page_view", at = e.at } end   -- no lead_id
  end
  local recs = {}
  for r = 1, #s.leads do recs[r] = s.leads:row(r) end
  recs[#recs + 1] = recs[7]   -- a second lead with the id of lead 7
  local leads = core.table(recs, { id = "category" })
  local fs = features.new(SPECS, OPTIONS)
  for _, order in ipairs({ { "file order", list }, { "shuffled", shuffled(list, 7) } }) do
    local _, report = check_every_threads(fs, leads, order[2], order[1] .. " with left-out events",
      { max_unknown = 25 })
    lu.assertEquals(#report.unknown, 25)
    lu.assertTrue(report.unknown_leads > 25)
    lu.assertTrue(report.after_as_of > 0 and report.no_time > 0)
    lu.assertEquals(report.duplicate_ids, 1)
    -- a set without wildcards ignores the types it does not read (chat_started, form_fill...)
    local _, narrow = check_every_threads(features.new({ views = SPECS.views_30d, heat = SPECS.heat }), leads,
      order[2], order[1] .. ", two features", { max_unknown = 25 })
    lu.assertTrue(narrow.ignored > 0)
  end
  leads:close()
end

-- More leads per thread than events go straight to their lead's slice (65,536): each thread scatters
-- in two steps.
function T.test_two_step_scatter_on_each_thread()
  local n = 140000
  local ids = { "id" }
  for i = 1, n do ids[#ids + 1] = string.format("lead%06d", (i * 7919) % n) end
  local lead_tbl = core.parse_csv(table.concat(ids, "\n") .. "\n", { schema = { id = "category" } })
  local fs = features.new({ n = { count = "page_view", within_days = 3 }, s = { sessions = "*" },
    d = { decayed = "*", half_life_days = 1 } })
  local t0 = leadq.parse_time(AS_OF)
  local x, list = 12345, {}
  for k = 1, helpers.size(30000, 12000) do
    x = (16807 * x) % 2147483647
    list[k] = { lead_id = string.format("lead%06d", x % n), type = (k % 3 == 0) and "email_open" or "page_view",
      at = t0 - (x % 1000) * 600 }
  end
  local one = check_every_threads(fs, lead_tbl, list, "140,000 leads")
  local counted, c = 0, one:column("n")
  for r = 1, n do counted = counted + c[r] end
  lu.assertTrue(counted > 0)
end

-- A lead with more events than a thread folds while it reads (4,096): the pass folds again with room
-- for it, and the values are still one thread's.
function T.test_a_lead_with_very_many_events()
  local s = sample()
  local list = {}
  local t0 = leadq.parse_time(AS_OF)
  local middle = math.floor(#s.list / 2)
  while s.list[middle].lead_id == s.list[middle + 1].lead_id do middle = middle + 1 end
  for i, e in ipairs(s.list) do
    list[#list + 1] = e
    if i == middle then   -- between two leads in the middle of the file, a run of 6,000 events of one lead
      for k = 1, 6000 do
        list[#list + 1] = { lead_id = "busy", type = (k % 4 == 0) and "pricing_view" or "page_view",
          at = t0 - (k * 7919) % (120 * 86400), value = k % 50, page = (k % 3 == 0) and "/product/x" or "/" }
      end
    end
  end
  local recs = {}
  for r = 1, #s.leads do recs[r] = s.leads:row(r) end
  recs[#recs + 1] = { id = "busy" }
  local leads = core.table(recs, { id = "category" })
  local one = check_every_threads(features.new(SPECS, OPTIONS), leads, list, "a lead with 6,000 events")
  lu.assertTrue(one:row(#recs).views_30d > 0)
  leads:close()
end

function T.test_model_score_with_threads_scores_as_one_thread()
  local s = sample()
  local events = core.table(shuffled(s.list, 11), EVENT_SCHEMA)
  local model = assert(leadq.load_model("rules/mql.lua"))
  local one = assert(model:score(s.leads, events, { as_of = AS_OF }))
  local two = assert(model:score(s.leads, events, { as_of = AS_OF, threads = 2 }))
  local mqls = 0
  for r = 1, #s.leads do
    local a, b = one:row(r), two:row(r)
    lu.assertEquals(b.total, a.total)
    lu.assertEquals(b.status, a.status)
    lu.assertEquals(b.grade, a.grade)
    if a.status == "mql" then mqls = mqls + 1 end
  end
  lu.assertTrue(mqls > 0)
  events:close()
end

function T.test_threads_option_is_checked()
  local fs = features.new({ v = { count = "page_view" } })
  local leads = core.table({ { id = "a" } })
  local events = core.table({ { lead_id = "a", type = "page_view", at = 1 } }, EVENT_SCHEMA)
  for _, bad in ipairs({ 0, 1.5, "2", -1 }) do
    local ok, err = pcall(fs.compute, fs, leads, events, { as_of = 10, threads = bad })
    lu.assertFalse(ok)
    lu.assertStrContains(err, "compute: threads must be a whole number of at least 1, got " .. tostring(bad))
  end
  -- more threads than events: the same single value
  local tbl = assert(fs:compute(leads, events, { as_of = 10, threads = 64 }))
  lu.assertEquals(tbl:row(1), { v = 1 })
end

return M
