-- The bulk feature pass into an earlier result (fs:compute's into, what model:score uses between its
-- passes): every value and count equal to a new result's, whatever the earlier result held, for each
-- way the pass folds (runs in file order, the scatter, threads), and refused when it does not fit.
local lu = require("luaunit")
local core = require("leadq.core")
local features = require("leadq.features")
local helpers = require("helpers")

local M = {}
M.TestFeaturesInto = {}
local T = M.TestFeaturesInto

local AS_OF = "2026-11-01T00:00:00Z"
local EVENT_SCHEMA = { lead_id = "category", type = "category", at = "time", value = "number", page = "category",
  asset = "category", campaign = "category" }
local SPECS, OPTIONS = helpers.every_feature()

local generated

local function sample()
  generated = generated or helpers.generated_events(helpers.size(3000, 1200), 31)
  return generated
end

local shuffled = helpers.shuffled

-- The events of every other lead only: the leads left without events must lose their earlier values.
local function half(list)
  local out, keep, last = {}, false, nil
  for _, e in ipairs(list) do
    if e.lead_id ~= last then
      keep, last = not keep, e.lead_id
    end
    if keep then out[#out + 1] = e end
  end
  return out
end

-- A result of all the events, then filled again with `list`: the same as a new result of `list`.
local function check_into(fs, leads, list, what, opts)
  local all = core.table(sample().list, EVENT_SCHEMA)
  local events = core.table(list, EVENT_SCHEMA)
  local o = { as_of = AS_OF }
  for k, v in pairs(opts or {}) do o[k] = v end
  local want, want_report = fs:compute(leads, events, o)
  lu.assertNotNil(want, want_report)
  local earlier = assert(fs:compute(leads, all, { as_of = AS_OF }))
  o.into = earlier
  local got, report = fs:compute(leads, events, o)
  lu.assertNotNil(got, report)
  lu.assertTrue(rawequal(got, earlier), what .. ": into is given back")
  helpers.assert_same_features(fs, want, got, #leads, what, "in a new result, into it")
  helpers.assert_same_report(want_report, report, what)
  all:close()
  events:close()
  want:close()
  return got
end

function T.test_into_in_file_order_equals_a_new_result()
  local s = sample()
  local fs = features.new(SPECS, OPTIONS)
  local got = check_into(fs, s.leads, half(s.list), "every other lead's events, file order")
  -- what the check relies on: some leads had values before and have none now, some keep theirs
  local views, quiet, busy = got:column("views_30d"), 0, 0
  for r = 1, #s.leads do
    if views[r] > 0 then busy = busy + 1 else quiet = quiet + 1 end
  end
  lu.assertTrue(quiet > 0 and busy > 0)
end

function T.test_into_with_shuffled_events_equals_a_new_result()
  local s = sample()
  check_into(features.new(SPECS, OPTIONS), s.leads, shuffled(half(s.list), 99), "every other lead's, shuffled")
end

function T.test_into_on_threads_equals_a_new_result()
  local s = sample()
  local fs = features.new(SPECS, OPTIONS)
  check_into(fs, s.leads, half(s.list), "file order, 2 threads", { threads = 2 })
  check_into(fs, s.leads, shuffled(s.list, 5), "shuffled, 3 threads", { threads = 3 })
end

function T.test_into_with_no_events_gives_every_lead_the_empty_values()
  local s = sample()
  check_into(features.new(SPECS, OPTIONS), s.leads, {}, "no events")
end

function T.test_into_must_be_this_sets_result_for_as_many_leads()
  local fs = features.new({ n = { count = "page_view" }, last = { last = "*" } })
  local lead_tbl = core.table({ { id = "a" }, { id = "b" } })
  local evs = core.table({ { lead_id = "a", type = "page_view", at = 1780012800 } }, EVENT_SCHEMA)
  local first = assert(fs:compute(lead_tbl, evs, { as_of = 1780012800 }))
  local fewer = assert(fs:compute(core.table({ { id = "a" } }), evs, { as_of = 1780012800 }))
  local other = assert(features.new({ n = { count = "email_open" }, first = { first = "*" } }):compute(lead_tbl, evs,
    { as_of = 1780012800 }))
  local tbl, err = fs:compute(lead_tbl, evs, { as_of = 1780012800, into = fewer })
  lu.assertNil(tbl)
  lu.assertStrContains(err, "into holds 1 rows and 2 columns, not this set's 2 features of 2 leads")
  tbl, err = fs:compute(lead_tbl, evs, { as_of = 1780012800, into = other })
  lu.assertNil(tbl)
  lu.assertStrContains(err, "into is not a result of this feature set")
  lu.assertStrContains(helpers.error_of(fs.compute, fs, lead_tbl, evs, { as_of = 1780012800, into = lead_tbl }),
    "into must be an earlier result of this feature set, got the leads table")
  lu.assertStrContains(helpers.error_of(fs.compute, fs, lead_tbl, evs, { as_of = 1780012800, into = {} }),
    "into must be an earlier result of this feature set, got table")
  lu.assertStrContains(helpers.error_of(fs.compute, fs, lead_tbl, "events.csv", { as_of = 1780012800, into = first }),
    "into takes events as a table")
  -- the refused result is untouched and still fills again
  lu.assertEquals(first:column("n"), { 1, 0 })
  local again = assert(fs:compute(lead_tbl, core.table({ { lead_id = "b", type = "page_view", at = 1780012800 },
    { lead_id = "b", type = "page_view", at = 1780012801 } }, EVENT_SCHEMA), { as_of = 1780012800, into = first }))
  lu.assertEquals(again:column("n"), { 0, 1 })   -- the second view is after as_of
  lu.assertNil(again:row(1).last)                 -- lead a's earlier last view is gone
  lu.assertEquals(again:row(2).last, 1780012800)
end

return M
