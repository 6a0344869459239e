-- Event features in bulk: declarations, windows, caps, decay, noise, the join to leads, replay.
local lu = require("luaunit")
local core = require("leadq.core")
local features = require("leadq.features")

local M = {}
M.TestFeatures = {}
local T = M.TestFeatures

local DAY = 86400
local T0 = 1780012800   -- 2026-05-29T00:00:00Z, a midnight: day windows are easy to read

local EVENT_SCHEMA = { lead_id = "category", type = "category", at = "time", value = "number", page = "category",
  campaign = "category" }

local function events(list)
  return core.table(list, EVENT_SCHEMA)
end

local function leads(ids)
  local recs = {}
  for i, id in ipairs(ids) do recs[i] = type(id) == "table" and id or { id = id } end
  return core.table(recs)
end

local function ev(lead, ty, at, value, page, campaign)
  return { lead_id = lead, type = ty, at = at, value = value, page = page or "/", campaign = campaign or "none" }
end

local function compute1(specs, list, as_of, options)
  local fs = features.new(specs, options)
  local tbl, report = fs:compute(leads({ "a" }), events(list), { as_of = as_of or T0 })
  lu.assertNotNil(tbl, report)
  return tbl:row(1), report, tbl
end

-- ---- declarations ----

local function assert_decl_error(specs, options, fragment)
  local ok, err = pcall(features.new, specs, options)
  lu.assertFalse(ok)
  lu.assertStrContains(err, fragment)
end

function T.test_declaration_errors_name_the_feature_and_suggest()
  assert_decl_error({ v = { count = "page_view", withn_days = 30 } }, nil,
    "feature 'v': unknown key 'withn_days' (did you mean 'within_days'?)")
  assert_decl_error({ v = { cont = "page_view" } }, nil, "feature 'v': say what to measure")
  assert_decl_error({ v = { count = "a", sum = "b" } }, nil, "'count' and 'sum' both given")
  assert_decl_error({ v = { sum = "a", points = 3 } }, nil, "feature 'v': 'points' does not apply to 'sum'")
  assert_decl_error({ v = { count = "a", cap = 3 } }, nil, "'cap' needs 'points'")
  assert_decl_error({ v = { count = "a", within_days = -1 } }, nil, "within_days must be a positive number, got -1")
  assert_decl_error({ v = { count = "a", within_days = 1.5 } }, nil, "whole number of days")
  assert_decl_error({ v = { decayed = "a" } }, nil, "needs 'half_life_days'")
  assert_decl_error({ v = { decayed = "a", half_life_days = 3, of = "valeu" } }, nil, "of must be \"value\"")
  assert_decl_error({ v = { count = 42 } }, nil, "count must be a string or a list of strings, got 42")
  assert_decl_error({ v = { decayed = "a", half_life_days = 0 } }, nil,
    "half_life_days must be a positive number, got 0")
  assert_decl_error({ v = { count = {} } }, nil, "count must not be an empty list")
  assert_decl_error({ v = { count = "a", page = { start_with = "/x" } } }, nil,
    "page: unknown test 'start_with' (did you mean 'starts_with'?)")
  assert_decl_error({ ["bad name"] = { count = "a" } }, nil, "feature names must be words")
  assert_decl_error({ v = "count" }, nil, "write feature { count = \"type\", within_days = 30 }")
  assert_decl_error({ v = { count = "a" } }, { latness_seconds = 3 },
    "unknown key 'latness_seconds' (did you mean 'lateness_seconds'?)")
  assert_decl_error({ v = { count = "a" } }, { noise = { min_page_second = 3 } }, "did you mean 'min_page_seconds'?")
  assert_decl_error({ v = { count = "a" } }, { noise = { click_types = "x" } }, "need scanner_click_seconds")
end

function T.test_validate_reads_dsl_feature_objects_with_their_line()
  local ok, err = pcall(features.validate, "pricing", { kind = "feature", line = 12, source = "rules/mql.lua",
    spec = { count = "pricing_view", scroe = 1 } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "rules/mql.lua:12: feature 'pricing': unknown key 'scroe'")
  local f = features.validate("pricing", { count = { "a", "b" }, within_days = 30, page = "/pricing" })
  lu.assertEquals(f.kind, "count")
  lu.assertEquals(f.types, { "a", "b" })
  lu.assertEquals(f.window_days, 30)
end

function T.test_feature_set_object()
  local fs = features.new({ b = { count = "x" }, a = { last = "y" } })
  lu.assertEquals(fs:names(), { "a", "b" })
  lu.assertEquals(tostring(fs), "leadq.FeatureSet: 2 features (a, b)")
  lu.assertEquals(fs:info().a.kind, "last")
  lu.assertErrorMsgContains("bad self to 'compute'", fs.compute, {}, nil, nil)
  lu.assertErrorMsgContains("leads must be a leadq table", fs.compute, fs, {}, events({}))
  lu.assertErrorMsgContains("unknown key 'asof'", fs.compute, fs, leads({ "a" }), events({}), { asof = 1 })
  lu.assertErrorMsgContains("as_of", fs.compute, fs, leads({ "a" }), events({}), { as_of = "yesterday" })
end

-- ---- semantics ----

function T.test_counts_in_day_windows_and_missing_versus_zero()
  local row = compute1({
    v7 = { count = "page_view", within_days = 7 },
    v1 = { count = "page_view", within_days = 1 },
    all = { count = { "page_view", "download" } },
    none = { count = "demo_request" },
    last_demo = { last = "demo_request" },
    since_demo = { days_since_last = "demo_request" },
  }, {
    ev("a", "page_view", T0 + 3600),          -- today (as_of is noon)
    ev("a", "page_view", T0 - 1),             -- yesterday, last second
    ev("a", "page_view", T0 - 6 * DAY),       -- the 7th day back counting today: in
    ev("a", "page_view", T0 - 6 * DAY - 1),   -- the 8th: out
    ev("a", "download", T0 - 100 * DAY),
    ev("a", "page_view", T0 + 13 * 3600),     -- after as_of: never counted
  }, T0 + 12 * 3600)
  lu.assertEquals(row.v7, 3)
  lu.assertEquals(row.v1, 1)
  lu.assertEquals(row.all, 5)
  lu.assertEquals(row.none, 0)                -- a count with no events is 0
  lu.assertNil(row.last_demo)                 -- a time with no events is missing
  lu.assertNil(row.since_demo)
end

function T.test_points_with_caps_per_day_and_per_feature()
  local list = {}
  for d = 0, 5 do
    for k = 1, 4 do list[#list + 1] = ev("a", "email_click", T0 - d * DAY + k * 60) end
  end
  local row = compute1({
    raw = { count = "email_click", points = 2 },
    daily = { count = "email_click", points = 2, cap_per_day = 5 },
    capped = { count = "email_click", points = 2, cap_per_day = 5, cap = 22 },
    window = { count = "email_click", points = 2, cap_per_day = 5, within_days = 3 },
    negative = { count = "email_click", points = -3, cap = 10 },
  }, list, T0 + DAY - 1)
  lu.assertEquals(row.raw, 48)       -- 24 clicks x 2
  lu.assertEquals(row.daily, 30)     -- 6 days x min(8, 5)
  lu.assertEquals(row.capped, 22)
  lu.assertEquals(row.window, 15)    -- 3 days x 5
  lu.assertEquals(row.negative, -10) -- the cap bounds the magnitude
end

function T.test_sums_decay_first_last_active_days_sessions()
  local row = compute1({
    time_on_page = { sum = "page_view" },
    decayed = { decayed = "webinar", half_life_days = 2 },
    decayed_value = { decayed = "page_view", half_life_days = 1, of = "value" },
    first = { first = "*" },
    last = { last = "*" },
    since = { days_since_last = "*" },
    days = { active_days = "*" },
    days_3 = { active_days = "*", within_days = 3 },
    sessions = { sessions = "page_view", gap_minutes = 30 },
  }, {
    ev("a", "page_view", T0 - 4 * DAY, 10),
    ev("a", "page_view", T0 - 4 * DAY + 29 * 60, 20),     -- same session
    ev("a", "page_view", T0 - 4 * DAY + 60 * 60, 30),     -- 31 minutes later: a new one
    ev("a", "webinar", T0 - 2 * DAY),
    ev("a", "webinar", T0 - 4 * DAY),
    ev("a", "page_view", T0 - DAY, 40),
    ev("a", "page_view", T0 - DAY + 10, nil),             -- no value: adds nothing to sums
  }, T0)
  lu.assertEquals(row.time_on_page, 100)
  lu.assertAlmostEquals(row.decayed, 0.5 + 0.25, 1e-12)
  lu.assertAlmostEquals(row.decayed_value, 10 / 16 + 20 / 16 * 2 ^ (29 / 1440) + 30 / 16 * 2 ^ (60 / 1440)
    + 40 / 2, 1e-9)
  lu.assertEquals(row.first, T0 - 4 * DAY)
  lu.assertEquals(row.last, T0 - DAY + 10)
  lu.assertAlmostEquals(row.since, (DAY - 10) / DAY, 1e-12)
  lu.assertEquals(row.days, 3)
  lu.assertEquals(row.days_3, 2)
  lu.assertEquals(row.sessions, 3)
end

function T.test_attribute_filters()
  local row = compute1({
    pricing = { count = "page_view", page = { starts_with = "/pricing" } },
    docs = { count = "page_view", page = { contains = "DOCS" } },
    exact = { count = "page_view", page = "/Careers" },
    either = { count = "page_view", page = { "/a", "/b" } },
    both = { count = "page_view", page = { starts_with = "/pricing", ends_with = "/enterprise" } },
    spring = { count = "page_view", where = { campaign = { one_of = { "spring", "summer" } } } },
  }, {
    ev("a", "page_view", T0 - 10, 1, "/pricing"),
    ev("a", "page_view", T0 - 9, 1, "/PRICING/enterprise", "Spring"),
    ev("a", "page_view", T0 - 8, 1, "/docs/api", "summer"),
    ev("a", "page_view", T0 - 7, 1, "/careers"),
    ev("a", "page_view", T0 - 6, 1, "/b"),
  })
  lu.assertEquals(row.pricing, 2)
  lu.assertEquals(row.docs, 1)
  lu.assertEquals(row.exact, 1)
  lu.assertEquals(row.either, 1)
  lu.assertEquals(row.both, 1)
  lu.assertEquals(row.spring, 2)
end

function T.test_noise_is_ignored_and_counted()
  local fs = features.new({
    views = { count = "page_view" },
    clicks = { count = "email_click" },
  }, { noise = { min_page_seconds = 5, scanner_click_seconds = 10, leads = { is_bot = true,
    email_domain = { "ourco.com" } } } })
  local lead_tbl = core.table({
    { id = "a", is_bot = false, email_domain = "x.com" },
    { id = "bot", is_bot = true, email_domain = "x.com" },
    { id = "staff", is_bot = false, email_domain = "OurCo.com" },
  })
  local tbl, report = fs:compute(lead_tbl, events({
    ev("a", "page_view", T0 - 100, 4),     -- too short
    ev("a", "page_view", T0 - 90, 5),
    ev("a", "page_view", T0 - 80, nil),    -- no duration: kept
    ev("a", "email_send", T0 - 70),
    ev("a", "email_click", T0 - 62),       -- 8 s after the send: a scanner
    ev("a", "email_click", T0 - 50),
    ev("bot", "page_view", T0 - 50, 100),
    ev("staff", "email_click", T0 - 50),
  }), { as_of = T0 })
  lu.assertEquals(tbl:row(1), { views = 2, clicks = 1 })
  lu.assertEquals(tbl:row(2), { views = 0, clicks = 0 })
  lu.assertEquals(tbl:row(3), { views = 0, clicks = 0 })
  lu.assertEquals(report.noise, { short_page_view = 1, scanner_click = 1, flagged_lead = 2 })
  -- the real-time state flags the same leads from their records
  local st = fs:state({ id = "staff", email_domain = "ourco.com" })
  st:observe({ type = "email_click", at = T0 })
  lu.assertEquals(st:values(T0).clicks, 0)
  lu.assertEquals(st:stats().pending, 1)   -- the latest second can still get company: not folded in yet
  st:observe({ type = "email_click", at = T0 + 1 })
  lu.assertEquals(st:stats().noise.flagged_lead, 1)
  lu.assertTrue(st:stats().flagged)
end

function T.test_unknown_leads_are_counted_and_listed()
  local fs = features.new({ n = { count = "page_view" } })
  local tbl, report = fs:compute(leads({ "a", "b" }), events({
    ev("a", "page_view", T0 - 3),
    ev("ghost", "page_view", T0 - 2),
    ev("b", "page_view", T0 - 1),
    ev("ghost", "page_view", T0),
    ev("x", "other_type", T0),
  }), { as_of = T0, max_unknown = 1 })
  lu.assertEquals(tbl:column("n"), { 1, 1 })
  lu.assertEquals(report.unknown_leads, 2)
  lu.assertEquals(report.unknown, { { row = 2, lead_id = "ghost" } })
  lu.assertEquals(report.events, 5)
  lu.assertEquals(report.used, 2)
  lu.assertEquals(report.ignored, 1)
end

function T.test_sorted_ids_join_by_merge()
  -- leads and events both in id order: the merge join, with an unknown id and a lead without events
  local fs = features.new({ n = { count = "page_view" } })
  local tbl, report = fs:compute(leads({ "a", "b", "c", "d" }), events({
    ev("a", "page_view", T0), ev("a", "page_view", T0), ev("bb", "page_view", T0), ev("c", "page_view", T0),
    ev("e", "page_view", T0),
  }), { as_of = T0 })
  lu.assertEquals(tbl:column("n"), { 2, 0, 1, 0 })
  lu.assertEquals(report.unknown_leads, 2)
  lu.assertEquals(report.unknown, { { row = 3, lead_id = "bb" }, { row = 5, lead_id = "e" } })
end

function T.test_replay_as_of_a_past_time()
  local fs = features.new({ n = { count = "page_view", within_days = 30 }, last = { last = "page_view" } })
  local list = {}
  for d = 0, 9 do list[#list + 1] = ev("a", "page_view", T0 - d * DAY) end
  local evt = events(list)
  local now = fs:compute(leads({ "a" }), evt, { as_of = T0 })
  local past, report = fs:compute(leads({ "a" }), evt, { as_of = T0 - 5 * DAY })
  lu.assertEquals(now:row(1), { n = 10, last = T0 })
  lu.assertEquals(past:row(1), { n = 5, last = T0 - 5 * DAY })
  lu.assertEquals(report.after_as_of, 5)
  local iso = fs:compute(leads({ "a" }), evt, { as_of = "2026-05-24T00:00:00Z" })
  lu.assertEquals(iso:row(1).n, 5)
end

function T.test_sorted_or_not_gives_the_same_answer()
  local fs = features.new({
    s = { sessions = "page_view" }, d = { decayed = "page_view", half_life_days = 3 },
    c = { count = "email_click", points = 1, cap_per_day = 2, within_days = 10 },
  }, { noise = { scanner_click_seconds = 5 } })
  local list = {}
  for k = 1, 50 do
    local who = (k % 3 == 0) and "b" or "a"
    list[#list + 1] = ev(who, (k % 4 == 0) and "email_send" or (k % 4 == 1) and "email_click" or "page_view",
      T0 - k * 7777)
  end
  local sorted = fs:compute(leads({ "a", "b" }), events(list), { as_of = T0 })
  local reversed = {}
  for i = #list, 1, -1 do reversed[#reversed + 1] = list[i] end
  local other = fs:compute(leads({ "a", "b" }), events(reversed), { as_of = T0 })
  for r = 1, 2 do
    local x, y = sorted:row(r), other:row(r)
    lu.assertEquals(x.s, y.s)
    lu.assertEquals(x.c, y.c)
    lu.assertAlmostEquals(x.d, y.d, 1e-12)
  end
end

function T.test_many_leads_scattered_events_equal_grouped()
  -- more leads than the direct scatter takes (65,536): the two-step scatter must give the grouped answer
  local n = 70000
  local ids = { "id" }
  for i = 1, n do ids[#ids + 1] = string.format("lead%06d", (i * 7919) % n) end
  local lead_tbl = core.parse_csv(table.concat(ids, "\n") .. "\n", { schema = { id = "category" } })
  local fs = features.new({ n = { count = "page_view", within_days = 3 }, s = { sessions = "*" },
    d = { decayed = "*", half_life_days = 1 } })
  local x, list = 12345, {}
  for k = 1, 3000 do
    x = (16807 * x) % 2147483647
    list[k] = ev(string.format("lead%06d", x % 500 * 131), (k % 3 == 0) and "email_open" or "page_view",
      T0 - (x % 1000) * 600)
  end
  local scattered = assert(fs:compute(lead_tbl, events(list), { as_of = T0 }))
  table.sort(list, function(a, b) return a.lead_id < b.lead_id end)
  local grouped = assert(fs:compute(lead_tbl, events(list), { as_of = T0 }))
  for _, name in ipairs({ "n", "s", "d" }) do
    local a, b = scattered:column(name), grouped:column(name)
    for i = 1, n do
      if math.abs(a[i] - b[i]) > 1e-9 then lu.fail(string.format("%s, lead %d: %s vs %s", name, i, a[i], b[i])) end
    end
  end
end

function T.test_join_on_numeric_ids_and_duplicates()
  local fs = features.new({ n = { count = "page_view" } })
  local lead_tbl = core.table({ { lead = 7 }, { lead = 12 }, { lead = 7 } })
  local tbl, report = fs:compute(lead_tbl, events({ ev("7", "page_view", T0), ev("12", "page_view", T0) }),
    { as_of = T0, id = "lead" })
  lu.assertEquals(tbl:column("n"), { 1, 1, 0 })
  lu.assertEquals(report.duplicate_ids, 1)
end

function T.test_data_problems_return_nil_and_a_message()
  local fs = features.new({ n = { count = "page_view", page = "/x" } })
  local tbl, err = fs:compute(leads({ "a" }), events({ ev("a", "page_view", T0) }), { as_of = T0, id = "lead_id" })
  lu.assertNil(tbl)
  lu.assertEquals(err, "leads have no column 'lead_id' to join events on")
  local no_page = core.table({ { lead_id = "a", type = "page_view", at = T0 } },
    { lead_id = "category", type = "category", at = "time" })
  tbl, err = fs:compute(leads({ "a" }), no_page, { as_of = T0 })
  lu.assertNil(tbl)
  lu.assertEquals(err, "events have no column 'page'")
  local flagged = features.new({ n = { count = "x" } }, { noise = { leads = { is_bot = true } } })
  tbl, err = flagged:compute(leads({ "a" }), no_page, { as_of = T0 })
  lu.assertNil(tbl)
  lu.assertStrContains(err, "leads have no column 'is_bot'")
end

function T.test_evaluate_one_lead_equals_its_bulk_row()
  local fs = features.new({
    n = { count = "page_view", within_days = 7 }, d = { decayed = "page_view", half_life_days = 2 },
    s = { sessions = "page_view" }, l = { last = "*" },
  }, { noise = { leads = { internal = true } } })
  local list = {
    ev("a", "page_view", T0 - 3 * DAY), ev("a", "page_view", T0 - 10 * DAY), ev("a", "email_open", T0 - DAY),
    ev("a", "page_view", T0 - 3 * DAY + 60), ev("a", "page_view", T0 + DAY),
  }
  local bulk = assert(fs:compute(leads({ { id = "a", internal = false } }), events(list), { as_of = T0 }))
  local one = assert(fs:evaluate({ id = "a" }, list, T0))   -- out of order, one after as_of: no matter
  local row = bulk:row(1)
  for k, v in pairs(row) do lu.assertAlmostEquals(one[k], v, 1e-12) end
  list[1] = { type = "page_view", at = "2026-05-26T00:00:00Z" }
  lu.assertEquals(assert(fs:evaluate(nil, list, T0)).n, 2)
  lu.assertEquals(assert(fs:evaluate({ internal = true }, list, T0)).n, 0)
  local v, err = fs:evaluate(nil, { { type = "x", at = "soon" } }, T0)
  lu.assertNil(v)
  lu.assertStrContains(err, "event 1:")
  lu.assertErrorMsgContains("events must be a list", fs.evaluate, fs, nil, "x")
end

function T.test_result_is_a_leadq_table()
  local _, _, tbl = compute1({ n = { count = "page_view" }, f = { first = "page_view" } },
    { ev("a", "page_view", T0 - 10) })
  lu.assertTrue(core.is_table(tbl))
  lu.assertEquals(#tbl, 1)
  lu.assertEquals(tbl:type("f"), "time")
  lu.assertEquals(tbl:type("n"), "number")
  lu.assertStrContains(tostring(tbl), "leadq.Table: 1 row, 2 columns")
end

-- The events columns a feature set reads: lead_id, type and at, value when something reads it, then
-- the attributes its filters test; reading only those gives the same features as reading every column.
function M.TestFeatures.test_event_columns_read_alone_give_the_same_features()
  local leadq = require("leadq")
  local fs = features.new({
    pricing = { count = "page_view", page = { starts_with = "/pricing" }, within_days = 30 },
    webinars = { count = "webinar_attended", where = { campaign = "webinar_2025_12" } },
    opens = { count = "email_open" },
  })
  lu.assertEquals(fs:event_columns(), { "lead_id", "type", "at", "campaign", "page" })
  local text = "lead_id,type,at,value,page,asset,campaign\n"
    .. "L1,page_view,2026-01-10T10:00:00Z,,/pricing/team,,\n"
    .. "L1,webinar_attended,2026-01-11T10:00:00Z,,,,webinar_2025_12\n"
    .. "L2,email_open,2026-01-12T10:00:00Z,,,deck.pdf,\n"
    .. "L2,page_view,2026-01-12T11:00:00Z,,/blog,,\n"
  local lead_tbl = leadq.parse_csv("id\nL1\nL2\n")
  local all = leadq.parse_csv(text, { schema = { at = "time", value = "number" } })
  local some = leadq.parse_csv(text, { schema = { at = "time", value = "number" }, columns = fs:event_columns(),
    columns_optional = true })
  lu.assertEquals(#some:names(), 5)
  local a = fs:compute(lead_tbl, all, { as_of = "2026-01-20" })
  local b = fs:compute(lead_tbl, some, { as_of = "2026-01-20" })
  for _, name in ipairs({ "pricing", "webinars", "opens" }) do
    lu.assertEquals(b:column(name), a:column(name))
  end
  lu.assertEquals(a:column("pricing"), { 1, 0 })
  lu.assertEquals(a:column("webinars"), { 1, 0 })
end

-- value is read by a sum, a decayed sum of values and min_page_seconds, and by nothing else.
function M.TestFeatures.test_event_columns_name_value_only_when_it_is_read()
  local leadq = require("leadq")
  local text = "lead_id,type,at,value\nL1,page_view,2026-01-10T10:00:00Z,7\nL1,purchase,2026-01-11T10:00:00Z,40\n"
    .. "L2,page_view,2026-01-12T10:00:00Z,2\n"
  local lead_tbl = leadq.parse_csv("id\nL1\nL2\n")
  local sets = {
    { { spent = { sum = "purchase" } } },
    { { heat = { decayed = "purchase", half_life_days = 7, of = "value" } } },
    { { views = { count = "page_view" } }, { noise = { min_page_seconds = 5 } } },
  }
  for _, s in ipairs(sets) do
    local fs = features.new(s[1], s[2])
    lu.assertEquals(fs:event_columns(), { "lead_id", "type", "at", "value" })
    local all = leadq.parse_csv(text, { schema = { at = "time", value = "number" } })
    local some = leadq.parse_csv(text, { schema = { at = "time", value = "number" }, columns = fs:event_columns() })
    local a = fs:compute(lead_tbl, all, { as_of = "2026-01-20" })
    local b = fs:compute(lead_tbl, some, { as_of = "2026-01-20" })
    for _, name in ipairs(a:names()) do lu.assertEquals(b:column(name), a:column(name)) end
  end
  lu.assertEquals(features.new({ heat = { decayed = "purchase", half_life_days = 7 } }):event_columns(),
    { "lead_id", "type", "at" })
end

return M

