-- A model reading events: its `events` key (noise, lateness) reaches the features, and what the
-- features made of the event log (unknown leads, noise, rejects) comes back to the caller and the
-- command line, never dropped in silence.
local lu = require("luaunit")
local leadq = require("leadq")
local score_cli = require("leadq.cli.score")
local helpers = require("helpers")

local AS_OF = "2026-11-01"

local LEADS = "id,title\nA,VP Marketing\nB,Analyst\n"
local EVENTS = table.concat({
  "lead_id,type,at,value",
  "A,page_view,2026-10-20T10:00:00Z,2",      -- a 2-second page view: noise for the model below
  "A,page_view,2026-10-21T10:00:00Z,40",
  "B,page_view,2026-10-22T10:00:00Z,60",
  "GHOST,page_view,2026-10-23T10:00:00Z,60", -- no such lead
  "A,page_view,not a time,60",               -- a bad row
}, "\n") .. "\n"

local MODEL = [[
return model "m" {
  groups = { engagement = { cap = 100 } },
  rules = {
    rule "VISITS" { group = "engagement", points = 10, when = { visits_30d = { at_least = 1 } } },
  },
  thresholds = { mql = 10, otherwise = "cold" },
  features = { visits_30d = feature { count = "page_view", within_days = 30 } },
  events = { noise = { min_page_seconds = 5 } },
}
]]

local function fixture()
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/leads.csv", LEADS)
  helpers.write(dir .. "/events.csv", EVENTS)
  helpers.write(dir .. "/m.lua", MODEL)
  return dir
end

local TestModelEvents = {}

function TestModelEvents:setUp() self.dir = fixture() end
function TestModelEvents:tearDown() helpers.remove_dir(self.dir) end

function TestModelEvents:test_noise_declared_in_the_model_is_ignored_and_counted()
  local model = assert(leadq.load_model(self.dir .. "/m.lua"))
  local leads = assert(leadq.read_csv(self.dir .. "/leads.csv"))
  local events = assert(leadq.read_events(self.dir .. "/events.csv"))
  local results, errors, report = model:score(leads, events, { as_of = AS_OF })
  lu.assertNotNil(results, errors)
  lu.assertNil(errors)
  lu.assertEquals(report.noise.short_page_view, 1)
  lu.assertEquals(report.unknown_leads, 1)
  lu.assertEquals(report.unknown[1].lead_id, "GHOST")
  lu.assertEquals(events:reject_count(), 1)
  -- A has one page view left after the noise, B one: both score, and the same as one at a time
  lu.assertEquals(results:row(1).total, 10)
  lu.assertEquals(results:row(2).total, 10)
  local one = model:score_one({ id = "A", title = "VP Marketing" },
    { { type = "page_view", at = "2026-10-20T10:00:00Z", value = 2 } }, { as_of = AS_OF })
  lu.assertEquals(one.total, 0)   -- the short view alone is noise
end

function TestModelEvents:test_events_key_without_features_is_a_problem_with_its_line()
  helpers.write(self.dir .. "/bad.lua", [[
return model "bad" {
  rules = { rule "R" { points = 1, when = { title = "present" } } },
  thresholds = { mql = 1, otherwise = "cold" },
  events = { noise = { min_page_seconds = 5 } },
}
]])
  local ok, problems = leadq.check(self.dir .. "/bad.lua")
  lu.assertFalse(ok)
  lu.assertStrContains(problems[1], "bad.lua:4:")
  lu.assertStrContains(problems[1], "events says how features read events, but the model declares no features")
end

function TestModelEvents:test_a_misspelt_noise_option_names_the_line()
  helpers.write(self.dir .. "/typo.lua", (MODEL:gsub("min_page_seconds", "min_page_second")))
  local model, err = leadq.load_model(self.dir .. "/typo.lua")
  lu.assertNil(model)
  lu.assertStrContains(err, "typo.lua:")
  lu.assertStrContains(err, "min_page_second")
  lu.assertStrContains(err, "did you mean 'min_page_seconds'")
end

function TestModelEvents:test_score_command_reports_what_happened_to_the_events()
  local printed = {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) printed[#printed + 1] = s end }
  local status = score_cli.score({ rules = self.dir .. "/m.lua", leads = self.dir .. "/leads.csv",
    events = self.dir .. "/events.csv", ["as-of"] = AS_OF }, out)
  lu.assertEquals(status, 0)
  local text = table.concat(printed, "\n")
  lu.assertStrContains(text, "events: 4 read from " .. self.dir .. "/events.csv: 3 read by the features, "
    .. "0 of types they do not count, 0 after the as-of time")
  lu.assertStrContains(text, "noise ignored: 1 short page views")
  lu.assertStrContains(text, "events of unknown leads: 1 (no lead with that id; not scored)")
  lu.assertStrContains(text, "lead 'GHOST'")
  lu.assertStrContains(text, "rejected event rows: 1 (not scored)")
  lu.assertStrContains(text, "events.csv:6: column 'at' (3)")
end

-- Batch and incremental agree: every generated lead scored in bulk with events.csv, and again from
-- a real-time state fed its events one at a time (through an encode/decode half way), gives the
-- same total, status and grade with the shipped rules/mql.lua.
local TestIncrementalScoring = {}

function TestIncrementalScoring:test_state_fed_event_by_event_scores_as_bulk()
  local gen = require("leadq.gen")
  local dir = helpers.tmpdir()
  local n = helpers.size(600, 150)
  assert(gen.generate { leads = n, seed = 23, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
  local events = assert(leadq.read_events(dir .. "/events.csv"))
  local model = assert(leadq.load_model("rules/mql.lua"))
  local bulk = assert(model:score(leads, events, { as_of = AS_OF }))
  local without = assert(model:score(leads, nil, { as_of = AS_OF }))
  -- each lead's events, in time order (the real-time path sees them as they happen)
  local by_lead = {}
  for i = 1, #events do
    local e = events:row(i)
    local list = by_lead[e.lead_id]
    if not list then list = {}; by_lead[e.lead_id] = list end
    list[#list + 1] = e
  end
  local checked, engaged = 0, 0
  for i = 1, #leads do
    local record = leads:row(i)
    local list = by_lead[record.id] or {}
    table.sort(list, function(a, b) return a.at < b.at end)
    local state = model:state(record)
    for k, e in ipairs(list) do
      assert(state:observe(e))
      if k == math.floor(#list / 2) then
        state = assert(model:decode_state(state:encode()))
      end
    end
    local one = assert(model:score_one(record, state, { as_of = AS_OF }))
    local row = bulk:row(i)
    lu.assertEquals(one.total, row.total, "lead " .. record.id)
    lu.assertEquals(one.status, row.status, "lead " .. record.id)
    lu.assertEquals(one.grade, row.grade, "lead " .. record.id)
    if row.total ~= without:row(i).total then engaged = engaged + 1 end
    checked = checked + 1
  end
  helpers.remove_dir(dir)
  lu.assertEquals(checked, n)
  lu.assertTrue(engaged >= math.max(3, n / 40), "leads whose events changed the score: " .. engaged)
end

function TestIncrementalScoring:test_a_model_without_features_has_no_state()
  local m = leadq.model(leadq.dsl.model "plain" {
    rules = { leadq.dsl.rule "R" { points = 1, when = { title = "present" } } },
    thresholds = { mql = 1, otherwise = "cold" },
  })
  lu.assertErrorMsgContains("state: model 'plain' declares no features, so it reads no events",
    m.state, m)
end

-- A run of several models explains a table's row with that lead's events, as bulk scoring scores it.
function TestModelEvents.test_run_explains_a_row_with_its_events()
  local dir = fixture()
  helpers.write(dir .. "/s.lua", 'return model "s" { rules = { rule "HOT" { points = 1, when = { ["m.total"] = '
    .. '{ at_least = 10 } } } }, thresholds = { sql = 1, otherwise = "no" } }')
  local run = assert(leadq.load_models({ dir .. "/m.lua", dir .. "/s.lua" }))
  local t = assert(leadq.read_csv(dir .. "/leads.csv"))
  local ev = assert(leadq.read_events(dir .. "/events.csv"))
  local r = assert(run:score(t, ev, { as_of = AS_OF }))
  local totals, statuses = r:column("m.total"), r:column("s.status")
  for row = 1, #t do
    local ex = assert(run:explain(t, row, ev, { as_of = AS_OF }))
    lu.assertEquals(ex.m.total, totals[row], "row " .. row)
    lu.assertEquals(ex.s.status, statuses[row], "row " .. row)
  end
  lu.assertEquals(totals[1], 10)   -- A's one page view past the noise bound counts
  r:close(); t:close(); ev:close()
  helpers.remove_dir(dir)
end

-- A model's passes over events reuse the last pass's feature table: scoring again (other events, other
-- leads, a run of models) gives what a model scoring for the first time gives, and leaves the results
-- already given alone.
function TestModelEvents.test_scoring_again_scores_as_a_new_model()
  local dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = helpers.size(1500, 600), seed = 5, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
  local all = assert(leadq.read_events(dir .. "/events.csv"))
  local list = {}
  for i = 1, #all do
    local e = all:row(i)
    if i % 3 ~= 0 then list[#list + 1] = e end
  end
  local some = leadq.table(list, { lead_id = "category", type = "category", at = "time", value = "number",
    page = "category", asset = "category", campaign = "category" })
  local head = {}
  for line in io.lines(dir .. "/leads.csv") do
    head[#head + 1] = line
    if #head == 101 then break end
  end
  helpers.write(dir .. "/fewer.csv", table.concat(head, "\n") .. "\n")
  local fewer = assert(leadq.read_csv(dir .. "/fewer.csv"))
  local function fresh(tbl, events)
    return assert(assert(leadq.load_model("rules/mql.lua")):score(tbl, events, { as_of = AS_OF }))
  end
  local function same(a, b, n, what)
    for _, c in ipairs({ "total", "status", "grade", "engagement", "reason" }) do
      local x, y = a:column(c), b:column(c)
      for r = 1, n do lu.assertEquals(y[r], x[r], string.format("%s: %s of row %d", what, c, r)) end
    end
  end
  local model = assert(leadq.load_model("rules/mql.lua"))
  local first = assert(model:score(leads, all, { as_of = AS_OF }))
  local want_first = fresh(leads, all)
  local second = assert(model:score(leads, some, { as_of = AS_OF }))
  same(fresh(leads, some), second, #leads, "scored again with two events in three")
  same(want_first, first, #leads, "the first results after the second pass")
  local engaged, differ = first:column("engagement"), 0
  for r, v in ipairs(second:column("engagement")) do if v ~= engaged[r] then differ = differ + 1 end end
  lu.assertTrue(differ > 0, "the two passes must differ for the check to mean anything")
  same(fresh(fewer, all), assert(model:score(fewer, all, { as_of = AS_OF })), #fewer, "fewer leads")
  local third = assert(model:score(leads, all, { as_of = "2026-10-01" }))
  same(assert(assert(leadq.load_model("rules/mql.lua")):score(leads, all, { as_of = "2026-10-01" })), third, #leads,
    "an earlier as_of")
  local run = assert(leadq.load_models({ "rules/mql.lua" }))
  local r1 = assert(run:score(leads, all, { as_of = AS_OF }))
  local r2 = assert(run:score(leads, some, { as_of = AS_OF }))
  lu.assertEquals(r1:column("mql.total"), want_first:column("total"))
  lu.assertEquals(r2:column("mql.total"), second:column("total"))
  helpers.remove_dir(dir)
end

return { TestModelEvents = TestModelEvents, TestIncrementalScoring = TestIncrementalScoring }
