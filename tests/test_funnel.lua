-- leadq.funnel: stages, validation of the transition log, aggregation, merging, outputs.
local lu = require("luaunit")
local funnel = require("leadq.funnel")
local core = require("leadq.core")
local cli = require("leadq.cli")
local json = require("leadq.json")
local helpers = require("helpers")
local rng = helpers.rng

local M = {}

local DAY = 86400
local T0 = 1704067200   -- 2024-01-01 00:00:00 UTC

-- Park-Miller: exact in doubles, so the same stream under every Lua.
local function small_funnel(options)
  local f = funnel.new(options)
  assert(f:add("L1", "lead", "2024-01-01"))
  assert(f:add("L1", "mql", "2024-01-03"))
  assert(f:add("L1", "sql", "2024-01-04 12:00:00"))
  assert(f:add("L2", "mql", "2024-01-05"))
  assert(f:add("L2", "disqualified", "2024-01-06", "student"))
  assert(f:add("L3", "mql", "2024-02-05"))
  assert(f:add("L3", "customer", "2024-03-05"))
  return f
end

M.TestFunnelStages = {}

function M.TestFunnelStages.test_default_stages()
  local cfg = funnel.config()
  lu.assertEquals(cfg.stages, { "lead", "mql", "sal", "sql", "opportunity", "customer", "disqualified", "nurture" })
  lu.assertEquals(cfg.nchain, 6)
  lu.assertEquals(cfg.mql, "mql")
  lu.assertEquals(cfg.sla_days, 2)
  lu.assertTrue(cfg.implied)
  lu.assertStrContains(tostring(funnel.new()), "leadq.Funnel (8 stages, 0 transitions")
end

function M.TestFunnelStages.test_misuse_raises_with_the_callers_line()
  lu.assertErrorMsgContains("unknown funnel option 'stagse'", funnel.new, { stagse = {} })
  lu.assertErrorMsgContains("stage 'mql' is declared twice", funnel.new, { stages = { "mql", "mql" } })
  lu.assertErrorMsgContains("a stage name is a word", funnel.new, { stages = { "m ql" } })
  lu.assertErrorMsgContains("'start' is reserved", funnel.new, { stages = { "start", "mql" } })
  lu.assertErrorMsgContains("'transitions': unknown stage 'sqll'", funnel.new, { transitions = { sqll = {} } })
  lu.assertErrorMsgContains("'mql' to unknown stage 'won'", funnel.new, { transitions = { mql = { "won" } } })
  lu.assertErrorMsgContains("'sla_days' must be a positive number", funnel.new, { sla_days = -1 })
  local ok, err = pcall(function() local f = funnel.new{ bogus = 1 }; return f end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_funnel.lua")   -- blamed on the caller
  local f = funnel.new()
  lu.assertErrorMsgContains("a time must be a number", f.add, f, "L1", "mql", {})
  lu.assertErrorMsgContains("unknown dimension 'country'", f.aggregate, f, { by = { "country" } })
end

function M.TestFunnelStages.test_declared_transitions_replace_the_default()
  local f = funnel.new{ stages = { "mql", "won" }, disqualified = false, nurture = false,
                        transitions = { start = { "mql" }, mql = { "won" } } }
  lu.assertTrue(f:add("A", "mql", "2024-01-01"))
  lu.assertTrue(f:add("A", "won", "2024-01-02"))
  lu.assertTrue(f:add("B", "won", "2024-01-02"))
  lu.assertEquals(f:prepare(), 1)
  lu.assertEquals(f:rejects()[1].message, "a lead cannot start at 'won'")
end

M.TestFunnelValidation = {}

function M.TestFunnelValidation.test_bad_rows_are_rejected_with_a_reason()
  local f = funnel.new()
  local ok, err = f:add("L1", "mqll", "2024-01-01")
  lu.assertNil(ok)
  lu.assertEquals(err, "unknown stage 'mqll'")
  lu.assertEquals(select(2, f:add("L1", "mql", "2024-02-30")),
    "bad time '2024-02-30' (expected YYYY-MM-DD or YYYY-MM-DD hh:mm:ss)")
  lu.assertEquals(select(2, f:add(nil, "mql", "2024-01-01")), "missing lead id")
  lu.assertEquals(select(2, f:add("L1", "mql", nil)), "missing time")
  lu.assertEquals(select(2, f:add("L1", "disqualified", "2024-01-01")), "'disqualified' without a reason")
  lu.assertEquals(#f, 0)
  lu.assertEquals(#f:rejects(), 5)
end

function M.TestFunnelValidation.test_transitions_are_checked_in_time_order()
  local f = funnel.new()
  -- written out of time order: sorted per lead before checking, so this lead is fine
  assert(f:add("A", "sql", "2024-01-05"))
  assert(f:add("A", "mql", "2024-01-02"))
  -- moving back is out of order, staying is a duplicate, leaving customer is not allowed
  assert(f:add("B", "sql", "2024-01-02"))
  assert(f:add("B", "mql", "2024-01-03"))
  assert(f:add("B", "sql", "2024-01-04"))
  assert(f:add("C", "customer", "2024-01-02"))
  assert(f:add("C", "nurture", "2024-01-03"))
  lu.assertEquals(f:prepare(), 3)
  local msgs = {}
  for _, r in ipairs(f:rejects()) do msgs[#msgs + 1] = r.lead .. ": " .. r.message end
  lu.assertEquals(msgs, {
    "B: out of order: 'mql' comes before 'sql' in the funnel",
    "B: lead is already at 'sql'",
    "C: transition from 'customer' to 'nurture' is not allowed",
  })
  local t = funnel.report(f:aggregate())
  lu.assertEquals(t.groups[1].reached.sql, 3)
  lu.assertEquals(t.groups[1].reached.customer, 1)
  lu.assertEquals(t.groups[1].reached.nurture, 0)
end

function M.TestFunnelValidation.test_rejects_are_recomputed_after_more_rows()
  local f = funnel.new()
  assert(f:add("A", "sql", "2024-01-05"))
  assert(f:add("A", "mql", "2024-01-06"))
  lu.assertEquals(f:prepare(), 1)
  f:add("A", "bogus", "2024-01-07")
  lu.assertEquals(f:prepare(), 2)
  lu.assertEquals(#f:rejects(), 2)
  f:add("A", "customer", "2100-01-01")
  lu.assertErrorMsgContains("the transition times span more than 68 years", f.prepare, f)
  lu.assertErrorMsgContains("the transition times span more than 68 years", f.aggregate, f)
end

function M.TestFunnelValidation.test_rejected_rows_of_new_leads_after_a_check()
  local f = funnel.new()
  assert(f:add("A", "mql", "2024-01-01"))
  funnel.report(f:aggregate())
  for i = 1, 50 do f:add("N" .. i, "bogus", "2024-01-02") end   -- new leads, every row rejected
  local t = funnel.report(f:aggregate())
  lu.assertEquals(t.groups[1].leads, 1)
  lu.assertEquals(#f:rejects(), 50)
end

-- f:seal checks the log and frees what only loading and checking read (each row's lead, reason and
-- line): every answer after it is the one an unsealed funnel gives, and it takes no more rows.
function M.TestFunnelValidation.test_a_sealed_funnel_answers_the_same_and_takes_no_more_rows()
  local function fill(f)
    assert(f:add("A", "lead", "2024-01-01"))
    assert(f:add("A", "mql", "2024-01-03", nil, "ann"))
    assert(f:add("A", "sql", "2024-01-09"))
    f:add("A", "mql", "2024-01-10")   -- rejected: back to mql
    assert(f:add("B", "lead", "2024-01-02"))
    assert(f:add("B", "disqualified", "2024-01-04", "student"))
    f:add("C", "bogus", "2024-01-05")  -- rejected: no such stage
    assert(f:add("C", "mql", "2024-02-01", nil, "bob"))
    return f
  end
  local open, sealed = fill(funnel.new({ sla_days = 2 })), fill(funnel.new({ sla_days = 2 }))
  lu.assertIs(sealed:seal(), sealed)
  local q = { by = { "owner" }, sla = true }
  lu.assertEquals(sealed:aggregate(q):serialize(), open:aggregate(q):serialize())
  lu.assertEquals(sealed:rejects(), open:rejects())
  lu.assertEquals(#sealed:rejects(), 2)
  local leads = core.table({ { id = "A" }, { id = "B" }, { id = "C" } })
  lu.assertEquals(sealed:entered("sql", leads), open:entered("sql", leads))
  lu.assertErrorMsgContains("sealed", sealed.add, sealed, "D", "lead", "2024-03-01")
  local t = core.table({ { lead_id = "D", stage = "lead", at = "2024-03-01" } })
  lu.assertErrorMsgContains("takes no more rows", sealed.load, sealed, t,
    { lead = "lead_id", stage = "stage", at = "at" })
  lu.assertEquals(sealed:aggregate(q):serialize(), open:aggregate(q):serialize())
end

function M.TestFunnelValidation.test_times()
  lu.assertEquals(funnel.parse_time("2024-01-01"), T0)
  lu.assertEquals(funnel.parse_time("2024-01-01T01:02:03Z"), T0 + 3723)
  lu.assertEquals(funnel.parse_time("2024-01-01 01:02:03+01:00"), T0 + 123)
  lu.assertEquals(funnel.parse_time("2024-02-29"), T0 + 59 * DAY)
  lu.assertNil(funnel.parse_time("2023-02-29"))
  lu.assertNil(funnel.parse_time("2024-1-01"))
  lu.assertNil(funnel.parse_time("2024-01-01x"))
end

M.TestFunnelAggregate = {}

function M.TestFunnelAggregate.test_counts_conversion_velocity()
  local t = funnel.report(small_funnel():aggregate())
  local g = t.groups[1]
  lu.assertEquals(#t.groups, 1)
  lu.assertEquals(g.leads, 3)
  -- reaching a stage counts the stages before it
  lu.assertEquals(g.reached, { lead = 3, mql = 3, sal = 2, sql = 2, opportunity = 1, customer = 1,
                               disqualified = 1, nurture = 0 })
  lu.assertAlmostEquals(g.conversion.mql_to_sql, 2 / 3, 1e-12)
  lu.assertAlmostEquals(g.conversion.mql_to_customer, 1 / 3, 1e-12)
  lu.assertAlmostEquals(g.conversion.sql_to_opportunity, 0.5, 1e-12)
  -- velocity: only between stages a lead entered itself, within the sketch's 1%
  lu.assertEquals(g.velocity.mql_to_sql.n, 1)
  lu.assertAlmostEquals(g.velocity.mql_to_sql.median_days, 1.5, 0.015)
  lu.assertAlmostEquals(g.velocity.mql_to_customer.p90_days, 29, 0.29)
  lu.assertNil(g.velocity.mql_to_sal)
  lu.assertEquals(g.disqualified, { { reason = "student", count = 1 } })
end

function M.TestFunnelAggregate.test_implied_stages_can_be_turned_off()
  local g = funnel.report(small_funnel{ implied = false }:aggregate()).groups[1]
  lu.assertEquals(g.reached, { lead = 1, mql = 3, sal = 0, sql = 1, opportunity = 0, customer = 1,
                               disqualified = 1, nurture = 0 })
  lu.assertAlmostEquals(g.conversion.mql_to_sql, 1 / 3, 1e-12)
end

function M.TestFunnelAggregate.test_pairs_follow_the_stages_reached()
  local f = funnel.new{ stages = { "lead", "mql", "sal", "sql", "opportunity", "customer" }, implied = false }
  assert(f:add("A", "lead", "2024-01-01"))
  assert(f:add("A", "mql", "2024-01-02"))
  assert(f:add("A", "customer", "2024-01-09"))
  local t = funnel.report(f:aggregate())
  local names = {}
  for _, p in ipairs(t.pairs) do names[#names + 1] = p.name end
  lu.assertEquals(names, { "lead_to_mql", "mql_to_customer" })
end

function M.TestFunnelAggregate.test_cohorts_and_owner()
  local f = funnel.new()
  assert(f:add("A", "mql", "2024-01-30", nil, "ann"))
  assert(f:add("A", "sal", "2024-02-01", nil, "bob"))
  assert(f:add("B", "mql", "2024-02-02", nil, "ann"))
  assert(f:add("C", "lead", "2024-02-03"))
  local t = funnel.report(f:aggregate{ by = { "mql_month", "owner" } })
  lu.assertEquals(#t.groups, 3)
  lu.assertEquals(t.groups[1].key, {})              -- C: no mql, no owner (missing sorts first)
  lu.assertEquals(t.groups[2].key, { mql_month = "2024-01", owner = "bob" })
  lu.assertEquals(t.groups[3].key, { mql_month = "2024-02", owner = "ann" })
  -- a fresh funnel asked for counts only still finds its cohorts
  local g = funnel.new()
  assert(g:add("A", "mql", "2024-01-30"))
  assert(g:add("B", "mql", "2024-02-02"))
  local counts = funnel.report(g:aggregate{ by = { "mql_week" }, velocity = false, sla = false })
  lu.assertEquals(counts.groups[1].key, { mql_week = "2024-01-29" })
  lu.assertEquals(counts.groups[1].leads, 2)
  t = funnel.report(f:aggregate{ by = { "mql_week" } })
  lu.assertEquals(t.groups[2].key, { mql_week = "2024-01-29" })   -- the Monday
  lu.assertEquals(t.groups[2].leads, 2)
end

function M.TestFunnelAggregate.test_sla_of_the_hand_off()
  local f = funnel.new{ sla_days = 1 }
  assert(f:add("fast", "mql", T0))
  assert(f:add("fast", "sal", T0 + 3600))
  assert(f:add("slow", "mql", T0))
  assert(f:add("slow", "sql", T0 + 3 * DAY))
  assert(f:add("waiting", "mql", T0))
  assert(f:add("parked", "mql", T0))
  assert(f:add("parked", "nurture", T0 + 3600))
  assert(f:add("fresh", "mql", T0 + 9 * DAY))
  assert(f:add("last", "lead", T0 + 10 * DAY))
  local t = funnel.report(f:aggregate())
  local s = t.groups[1].sla
  lu.assertEquals({ s.handed_off, s.within, s.late, s.overdue }, { 2, 1, 1, 1 })
  lu.assertAlmostEquals(s.share_within, 1 / 3, 1e-12)
  lu.assertEquals(#t.breaches, 2)
  lu.assertEquals(t.breaches[1].lead, "slow")
  lu.assertAlmostEquals(t.breaches[1].days, 3, 1e-9)
  lu.assertEquals(t.breaches[2].lead, "waiting")
  lu.assertNil(t.breaches[2].handoff_at)
  lu.assertEquals(t.sla_days, 1)
end

-- Each MQL episode has its own clock and its own owner: a lead recycled to nurture and handed off
-- again is timed from its second MQL, and charged to who had it then.
function M.TestFunnelAggregate.test_sla_per_hand_off_of_a_recycled_lead()
  local f = funnel.new{ sla_days = 2 }
  -- R: its first MQL was never handed off (recycled), the second was, in 2 hours
  assert(f:add("R", "mql", T0, nil, "anna"))
  assert(f:add("R", "nurture", T0 + 30 * DAY))
  assert(f:add("R", "mql", T0 + 59 * DAY, nil, "ben"))
  assert(f:add("R", "sal", T0 + 59 * DAY + 7200, nil, "ben"))
  -- S: handed off late by anna, recycled, handed off in an hour by ben
  assert(f:add("S", "mql", T0, nil, "anna"))
  assert(f:add("S", "sal", T0 + 3 * DAY, nil, "anna"))
  assert(f:add("S", "nurture", T0 + 10 * DAY))
  assert(f:add("S", "mql", T0 + 20 * DAY, nil, "ben"))
  assert(f:add("S", "sal", T0 + 20 * DAY + 3600))
  local t = funnel.report(f:aggregate())
  local s = t.groups[1].sla
  lu.assertEquals({ s.handed_off, s.within, s.late, s.overdue }, { 3, 2, 1, 0 })
  lu.assertEquals(#t.breaches, 1)
  lu.assertEquals(t.breaches[1].lead, "S")
  lu.assertAlmostEquals(t.breaches[1].days, 3, 1e-9)
  local by = funnel.report(f:aggregate{ by = { "owner" } })
  local sla = {}
  for _, g in ipairs(by.groups) do
    sla[g.key.owner or "-"] = { g.sla.handed_off, g.sla.within, g.sla.late, g.leads }
  end
  -- both leads end with ben; anna's late hand-off of S is hers, in a group with no lead of its own
  lu.assertEquals(sla, { ben = { 2, 2, 0, 2 }, anna = { 1, 0, 1, 0 } })
  lu.assertEquals(by.breaches[1].key, { owner = "anna" })
  -- a recycled MQL still waiting past the SLA is overdue from its own MQL, not the first
  local w = funnel.new{ sla_days = 2 }
  assert(w:add("W", "mql", T0, nil, "anna"))
  assert(w:add("W", "nurture", T0 + DAY))
  assert(w:add("W", "mql", T0 + 40 * DAY, nil, "ben"))
  assert(w:add("X", "lead", T0 + 41 * DAY))
  s = funnel.report(w:aggregate()).groups[1].sla
  lu.assertEquals({ s.handed_off, s.overdue }, { 0, 0 })   -- one day since its MQL: within the SLA
  assert(w:add("X", "mql", T0 + 45 * DAY))
  local r = funnel.report(w:aggregate())
  lu.assertEquals(r.groups[1].sla.overdue, 1)                -- W, 5 days after its second MQL
  lu.assertEquals(r.breaches[1].lead, "W")
  lu.assertEquals(r.breaches[1].mql_at, T0 + 40 * DAY)
end

function M.TestFunnelAggregate.test_recycling_and_reasons()
  local f = funnel.new()
  assert(f:add("A", "mql", "2024-01-01"))
  assert(f:add("A", "sal", "2024-01-02"))
  assert(f:add("A", "nurture", "2024-01-03"))
  assert(f:add("A", "mql", "2024-02-01"))
  assert(f:add("A", "nurture", "2024-02-03"))
  assert(f:add("B", "mql", "2024-01-01"))
  assert(f:add("B", "disqualified", "2024-01-02", "competitor"))
  assert(f:add("C", "sal", "2024-01-01"))
  assert(f:add("C", "disqualified", "2024-01-02", "no budget"))
  assert(f:add("D", "lead", "2024-01-01"))
  assert(f:add("D", "disqualified", "2024-01-02", "no budget"))
  lu.assertEquals(f:prepare(), 0)
  local g = funnel.report(f:aggregate()).groups[1]
  lu.assertEquals(g.recycled, 1)
  lu.assertEquals(g.recycled_transitions, 2)
  lu.assertEquals(g.disqualified, { { reason = "no budget", count = 2 }, { reason = "competitor", count = 1 } })
  lu.assertEquals(g.reached.disqualified, 3)
end

function M.TestFunnelAggregate.test_add_status_moves_leads()
  local f = funnel.new()
  assert(f:add("A", "lead", "2024-01-01"))
  assert(f:add("B", "lead", "2024-01-01"))
  assert(f:add("C", "lead", "2024-01-01"))
  lu.assertEquals({ f:add_status({ "A", "B", "C" }, { true, false, "mql" }, "2024-01-05") }, { 2, 0 })
  lu.assertEquals({ f:add_status({ "A", "B" }, { 80, 95 }, "2024-01-06", { stage = "sal", threshold = 90 }) },
    { 1, 0 })
  local g = funnel.report(f:aggregate()).groups[1]
  lu.assertEquals(g.reached.mql, 3)   -- B reached mql through sal
  lu.assertEquals(g.reached.sal, 1)
  lu.assertErrorMsgContains("numeric statuses need opts.threshold", f.add_status, f, { "A" }, { 1 }, 0)
  -- the results table of a model: its id and status columns
  local results = require("leadq.core").parse_csv("id,total,status\nC,75,mql\nD,20,cold\nE,61,mql\n")
  lu.assertEquals({ f:add_status(results, "2024-01-07") }, { 2, 0 })
  lu.assertEquals(funnel.report(f:aggregate()).groups[1].reached.mql, 4)
  lu.assertErrorMsgContains("the results have no column 'score'", f.add_status, f, results, 0, { status = "score" })
  lu.assertErrorMsgContains("2 ids but 1 statuses", f.add_status, f, { "A", "B" }, { true }, 0)
end

-- A generated log: n leads walking the default funnel with random drop-offs and delays.
local function generate(n, seed)
  local r = rng(seed)
  local rows = {}
  local chain = { "lead", "mql", "sal", "sql", "opportunity", "customer" }
  local owners = { "ann", "bob", "cy" }
  for i = 1, n do
    local id = "L" .. i
    local t = T0 + r(200) * DAY + r(86400)
    local owner = owners[r(3)]
    for s = r(2), 6 do
      rows[#rows + 1] = { id, chain[s], t, nil, owner }
      if r() < 0.3 then
        if r() < 0.5 then rows[#rows + 1] = { id, "disqualified", t + r(5) * DAY, ({ "student", "competitor" })[r(2)] }
        else rows[#rows + 1] = { id, "nurture", t + r(5) * DAY } end
        break
      end
      t = t + r(30) * DAY * r() + r(3600)
    end
  end
  return rows
end

local function load_rows(f, rows, from, to)
  for i = from or 1, to or #rows do
    local row = rows[i]
    assert(f:add(row[1], row[2], row[3], row[4], row[5]))
  end
  return f
end

-- The first n rows (all) as a transitions CSV file, times in ISO form: its path (os.remove it).
local function write_transitions(rows, n)
  local path = os.tmpname()
  local fh = assert(io.open(path, "wb"))
  fh:write("lead_id,stage,at,reason,owner\n")
  for k = 1, n or #rows do
    local row = rows[k]
    fh:write(string.format("%s,%s,%s,%s,%s\n", row[1], row[2], os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row[3])),
      row[4] or "", row[5] or ""))
  end
  fh:close()
  return path
end

M.TestFunnelMerge = {}

function M.TestFunnelMerge.test_merged_parts_equal_the_whole()
  local n = LEADQ_VARIANT == "asan" and 300 or 2000
  local rows = generate(n, 42)
  local by = { by = { "owner", "mql_month" } }
  local whole = funnel.report(load_rows(funnel.new(), rows):aggregate(by))
  -- split by lead (each lead's rows in one part): rows of one lead are adjacent
  local parts, cut1, cut2 = {}, math.floor(#rows / 3), math.floor(2 * #rows / 3)
  while rows[cut1 + 1][1] == rows[cut1][1] do cut1 = cut1 + 1 end
  while rows[cut2 + 1][1] == rows[cut2][1] do cut2 = cut2 + 1 end
  for _, range in ipairs({ { 1, cut1 }, { cut1 + 1, cut2 }, { cut2 + 1, #rows } }) do
    parts[#parts + 1] = load_rows(funnel.new(), rows, range[1], range[2]):aggregate(by):serialize()
  end
  local merged = funnel.report(assert(funnel.merge(parts)))
  lu.assertEquals(merged, whole)
  -- in any order, and through the method too
  local r = assert(funnel.parse(parts[3]))
  assert(r:merge(parts[1]))
  assert(r:merge(assert(funnel.parse(parts[2]))))
  lu.assertEquals(funnel.report(r), whole)
  lu.assertTrue(#whole.groups > 10)
end

-- Exact quantiles are the values a sort gives, interpolated between ranks floor(h) and floor(h) + 1:
-- durations of every count up to 256, in any order, many of them tied.
function M.TestFunnelMerge.test_exact_quantiles_are_those_of_the_sorted_durations()
  local r = rng(12345)
  for _, n in ipairs({ 1, 2, 3, 7, 64, 255, 256 }) do
    local f, hours = funnel.new(), {}
    for i = 1, n do
      hours[i] = r(i % 3 == 0 and 4 or 500)   -- a third of them among four values
      assert(f:add("Q" .. i, "mql", 0))
      assert(f:add("Q" .. i, "sql", hours[i] * 3600))
    end
    table.sort(hours)
    local function quantile(q)
      local h = q * (n - 1)
      local lo = math.floor(h)
      local v = hours[lo + 1]
      if lo + 1 < n then v = v + (h - lo) * (hours[lo + 2] - v) end
      return v / 24
    end
    local v = funnel.report(f:aggregate()).groups[1].velocity.mql_to_sql
    lu.assertTrue(v.exact)
    lu.assertAlmostEquals(v.median_days, quantile(0.5), 1e-9, n .. " durations: median")
    lu.assertAlmostEquals(v.p90_days, quantile(0.9), 1e-9, n .. " durations: p90")
    f:close()
  end
end

-- Velocity is exact (interpolated) while a group holds at most 256 durations, from the sketch past
-- that; either way merged parts give the whole's answer, and the result says which it is.
function M.TestFunnelMerge.test_exact_quantiles_small_groups_sketch_large_ones()
  local f = funnel.new()
  local days = { 1, 2, 4, 10 }
  for i, d in ipairs(days) do
    assert(f:add("S" .. i, "mql", 0))
    assert(f:add("S" .. i, "sql", d * DAY))
  end
  local v = funnel.report(f:aggregate()).groups[1].velocity.mql_to_sql
  lu.assertTrue(v.exact)
  lu.assertAlmostEquals(v.median_days, 3, 1e-9)         -- between 2 and 4
  lu.assertAlmostEquals(v.p90_days, 4 + 0.7 * 6, 1e-9)  -- h = 2.7: 4 + 0.7 * (10 - 4)
  local big, parts = funnel.new(), {}
  for p = 1, 2 do
    local part = funnel.new()
    for i = 1, 200 do
      local id = p .. "-" .. i
      for _, g in ipairs({ big, part }) do
        assert(g:add(id, "mql", 0))
        assert(g:add(id, "sql", (i + p * 0.5) * 3600))
      end
    end
    parts[p] = part:aggregate():serialize()
  end
  local whole = funnel.report(big:aggregate())
  lu.assertFalse(whole.groups[1].velocity.mql_to_sql.exact)   -- 400 durations: the sketch
  lu.assertTrue(funnel.report(assert(funnel.parse(parts[1]))).groups[1].velocity.mql_to_sql.exact)
  lu.assertEquals(funnel.report(assert(funnel.merge(parts))), whole)
  lu.assertEquals({ funnel.parse("leadq-funnel 1\n0\n") },
    { nil, "a funnel result of an older leadq (write its parts again with this one)" })
end

function M.TestFunnelMerge.test_serialize_round_trip_and_damage()
  local r = small_funnel():aggregate{ by = { "mql_month" } }
  local s = r:serialize()
  lu.assertEquals(assert(funnel.parse(s)):serialize(), s)
  lu.assertEquals({ funnel.parse("hello") }, { nil, "not a serialized funnel result" })
  lu.assertEquals({ funnel.parse(s:sub(1, -10)) }, { nil, "not a serialized funnel result (the text is damaged)" })
  local other = small_funnel():aggregate{ by = { "owner" } }
  lu.assertEquals({ r:merge(other) }, { nil, "cannot merge results grouped by different dimensions" })
  local other_stages = funnel.new{ stages = { "mql", "sql" } }:aggregate{ by = { "mql_month" } }
  lu.assertEquals({ r:merge(other_stages) }, { nil, "cannot merge results with different stages" })
  lu.assertErrorMsgContains("cannot merge a result into itself", r.merge, r, r)
end

function M.TestFunnelMerge.test_quantiles_within_one_percent()
  local r = rng(7)
  local f = funnel.new{ stages = { "mql", "customer" } }
  local n = LEADQ_VARIANT == "asan" and 500 or 5000
  local days = {}
  for i = 1, n do
    local d = r() ^ 3 * 200 + 0.01
    days[i] = d
    assert(f:add("L" .. i, "mql", T0))
    assert(f:add("L" .. i, "customer", T0 + d * DAY))
  end
  table.sort(days)
  local v = funnel.report(f:aggregate()).groups[1].velocity.mql_to_customer
  lu.assertEquals(v.n, n)
  local median, p90 = days[math.floor(0.5 * (n - 1)) + 1], days[math.floor(0.9 * (n - 1)) + 1]
  lu.assertTrue(math.abs(v.median_days - median) <= 0.01 * median, v.median_days .. " vs " .. median)
  lu.assertTrue(math.abs(v.p90_days - p90) <= 0.01 * p90, v.p90_days .. " vs " .. p90)
end

function M.TestFunnelMerge.test_damaged_text_never_crashes()
  local rows = generate(LEADQ_VARIANT == "asan" and 40 or 120, 5)
  local s = load_rows(funnel.new(), rows):aggregate{ by = { "owner" } }:serialize()
  local r = rng(9)
  local tries = LEADQ_VARIANT == "asan" and 300 or 1500
  local parsed = 0
  for _ = 1, tries do
    local pos = r(#s)
    local damaged
    local how = r(3)
    if how == 1 then damaged = s:sub(1, pos - 1) .. string.char(r(256) - 1) .. s:sub(pos + 1)
    elseif how == 2 then damaged = s:sub(1, pos)
    else damaged = s:sub(1, pos - 1) .. s:sub(pos + 1 + r(20)) end
    local res, err = funnel.parse(damaged)
    if res then
      parsed = parsed + 1
      funnel.report(res)   -- whatever it read must be usable
    else
      lu.assertStrContains(err, "not a serialized funnel result")
    end
  end
  lu.assertTrue(parsed < tries)
end

M.TestFunnelOutput = {}

function M.TestFunnelOutput.test_csv_columns()
  local f = funnel.new{ stages = { "mql", "sql", "customer" }, nurture = false }
  assert(f:add("A", "mql", "2024-01-01"))
  assert(f:add("A", "sql", "2024-01-03"))
  assert(f:add("B", "mql", "2024-02-01"))
  local csv = funnel.format(funnel.report(f:aggregate{ by = { "mql_month" } }), "csv")
  lu.assertEquals(csv,
    "mql_month,mql,sql,customer,disqualified,mql_to_sql,mql_to_sql_median_days,mql_to_sql_p90_days\n" ..
    "2024-01,1,1,0,0,1.0000,2.00,2.00\n" ..
    "2024-02,1,0,0,0,0.0000,,\n")
end

-- The CSV the core writes (result:csv()) is the bytes to_csv writes from the report table, for
-- groups by cohorts, by lead columns with missing values and values to quote, none at all, a merge
-- of parts, and an empty result; funnel.run's CSV comes from the core and its report table is
-- still there, made when read.
function M.TestFunnelOutput.test_csv_from_the_core_is_to_csv_byte_for_byte()
  local leadq = require("leadq")
  -- LuaJIT's string.format rounds a tie (0.53125 to 4 places) up where C's printf, and so PUC Lua's,
  -- rounds it to even; the core writes C's everywhere. Under LuaJIT: field by field, within a unit
  -- of the last place.
  local printf_rounding = string.format("%.4f", 0.53125) == "0.5312"
  local function agree(a, b)
    if printf_rounding then return lu.assertEquals(a, b) end
    local la, lb = {}, {}
    for l in a:gmatch("[^\n]*\n") do la[#la + 1] = l end
    for l in b:gmatch("[^\n]*\n") do lb[#lb + 1] = l end
    lu.assertEquals(#la, #lb)
    for i = 1, #la do
      if la[i] ~= lb[i] then
        local fa, fb = {}, {}
        for v in la[i]:gmatch("[^,]+") do fa[#fa + 1] = v end
        for v in lb[i]:gmatch("[^,]+") do fb[#fb + 1] = v end
        lu.assertEquals(#fa, #fb, la[i])
        for k = 1, #fa do
          if fa[k] ~= fb[k] then lu.assertAlmostEquals(tonumber(fa[k]), tonumber(fb[k]), 1.0001e-4) end
        end
      end
    end
  end
  local function same(result)
    local text = result:csv()
    agree(text, funnel.to_csv(funnel.report(result)))
    return text
  end
  local rows = generate(LEADQ_VARIANT == "asan" and 300 or 1500, 9)
  local f = load_rows(funnel.new(), rows)
  same(f:aggregate())
  same(f:aggregate{ by = { "owner", "mql_month" } })
  same(f:aggregate{ by = { "mql_week" }, velocity = false })
  local sources = { "web", "a, b", 'say "hi"', "", "line\nbreak" }
  local lines = { "id,source,country" }
  for i = 1, 1500 do
    local src = sources[i % #sources + 1]
    if src:find('[,"\n]') then src = '"' .. src:gsub('"', '""') .. '"' end
    lines[#lines + 1] = string.format("L%d,%s,%s", i, src, i % 3 == 0 and "" or ("C" .. i % 4))
  end
  local leads = leadq.parse_csv(table.concat(lines, "\n") .. "\n", { schema = { source = "category" } })
  local text = same(f:aggregate{ by = { "source", "country" }, leads = leads, id = "id" })
  lu.assertStrContains(text, '\n"a, b",')
  lu.assertStrContains(text, '\n"say ""hi""",')
  lu.assertStrContains(text, '\n"line\nbreak",')
  -- merged parts: the CSV of the whole
  local cut = math.floor(#rows / 2)
  while rows[cut + 1][1] == rows[cut][1] do cut = cut + 1 end
  local by = { by = { "owner" } }
  local merged = assert(funnel.merge({ load_rows(funnel.new(), rows, 1, cut):aggregate(by):serialize(),
    load_rows(funnel.new(), rows, cut + 1, #rows):aggregate(by):serialize() }))
  lu.assertEquals(same(merged), f:aggregate(by):csv())
  same(funnel.new():aggregate())
  -- through funnel.run, from a file
  local path = write_transitions(rows)
  local csv, tab = funnel.run{ transitions = path, by = "owner", format = "csv" }
  local table_text, lua_tab = funnel.run{ transitions = path, by = "owner", format = "table" }
  os.remove(path)
  lu.assertNotNil(csv, tab)
  agree(csv, funnel.to_csv(lua_tab))
  lu.assertStrContains(table_text, "leads reaching each stage")
  lu.assertEquals(#tab.groups, #lua_tab.groups)
  lu.assertEquals(tab.groups, lua_tab.groups)
  local keys = {}
  for k in pairs(tab) do keys[#keys + 1] = k end
  lu.assertTrue(#keys >= 6)
end

-- The JSON the core writes is funnel.to_json(funnel.report(r)): keys sorted, numbers and strings as
-- leadq.json writes them, reasons and breaches in the report's order. Under LuaJIT, whose
-- string.format may round a tie otherwise, the two decode to the same values.
function M.TestFunnelOutput.test_json_from_the_core_is_to_json_byte_for_byte()
  local leadq = require("leadq")
  local exact_printf = string.format("%.4f", 0.53125) == "0.5312"
  local function same(result, what)
    local text, lua_text = result:json(), funnel.to_json(funnel.report(result))
    if exact_printf then
      lu.assertTrue(text == lua_text, what .. ": the core's JSON differs from to_json's:\n" .. text .. "\n" .. lua_text)
    else
      lu.assertEquals(json.decode(text), json.decode(lua_text), what)
    end
    return text
  end
  local rows = generate(LEADQ_VARIANT == "asan" and 300 or 1500, 9)
  -- reasons and owners JSON must escape, tied reason counts, a lead never handed off (overdue)
  rows[#rows + 1] = { "Q1", "lead", T0 }
  rows[#rows + 1] = { "Q1", "disqualified", T0 + DAY, 'said "no"\tthanks\\' }
  rows[#rows + 1] = { "Q2", "lead", T0, nil, "zo\195\171 \1" }
  rows[#rows + 1] = { "Q2", "disqualified", T0 + DAY, "b-tie" }
  rows[#rows + 1] = { "Q3", "lead", T0 }
  rows[#rows + 1] = { "Q3", "disqualified", T0 + DAY, "a-tie" }
  rows[#rows + 1] = { "Q4", "mql", T0 + 2 * DAY, nil, "ann" }
  local f = load_rows(funnel.new(), rows)
  same(f:aggregate(), "all leads")
  same(f:aggregate{ by = { "owner", "mql_month" } }, "by owner and mql_month")
  same(f:aggregate{ by = { "mql_week" }, velocity = false, sla = false }, "no velocity, no SLA")
  same(load_rows(funnel.new{ sla_days = false }, rows):aggregate{ by = { "owner" } }, "no SLA declared")
  same(load_rows(funnel.new{ stages = { "mql", "sql" }, nurture = false }, { { "A", "mql", T0 },
    { "A", "sql", T0 + 3 * DAY } }):aggregate(), "two stages")
  local lines = { "id,source,country" }
  local sources = { "web", "a, b", 'say "hi"', "", "line\nbreak" }
  for i = 1, 1500 do
    local src = sources[i % #sources + 1]
    if src:find('[,"\n]') then src = '"' .. src:gsub('"', '""') .. '"' end
    lines[#lines + 1] = string.format("L%d,%s,%s", i, src, i % 3 == 0 and "" or ("C" .. i % 4))
  end
  local leads = leadq.parse_csv(table.concat(lines, "\n") .. "\n", { schema = { source = "category" } })
  local text = same(f:aggregate{ by = { "source", "country" }, leads = leads, id = "id" }, "by source and country")
  lu.assertStrContains(text, '"source":"say \\"hi\\""')
  lu.assertStrContains(text, '"source":"line\\nbreak"')
  local whole = same(f:aggregate{ by = { "owner" } }, "by owner")
  lu.assertStrContains(whole, '"reason":"said \\"no\\"\\tthanks\\\\"')
  lu.assertStrContains(whole, '"owner":"zo\195\171 \\u0001"')
  same(funnel.new():aggregate(), "an empty funnel")
  -- through funnel.run: the core's text, the report table when asked for
  local path = write_transitions(rows, 200)
  local out, tab = funnel.run{ transitions = path, by = "owner", format = "json" }
  os.remove(path)
  lu.assertNotNil(out, tab)
  lu.assertTrue(#tab.groups > 1)   -- a field read makes the table (LuaJIT's pairs knows no __pairs)
  lu.assertEquals(json.decode(out), json.decode(funnel.to_json(tab)))
end

-- The text tables the core writes are funnel.to_text of the report table (its total row's velocity
-- from the funnel without dimensions), byte for byte; under LuaJIT, line for line in shape.
function M.TestFunnelOutput.test_text_from_the_core_is_to_text_byte_for_byte()
  local exact_printf = string.format("%.4f", 0.53125) == "0.5312"
  local function same(f, query, what)
    local r = f:aggregate(query)
    local grouped = query and query.by and #query.by > 0
    local total = grouped and f:aggregate{ velocity = query.velocity, sla = query.sla } or nil
    local tab = funnel.report(r)
    if total then tab.total = funnel.report(total).groups[1] end
    local text, lua_text = r:text(total), funnel.to_text(tab)
    if exact_printf then
      lu.assertTrue(text == lua_text, what .. ": the core's text differs from to_text's:\n" .. text .. "\n" .. lua_text)
    else
      lu.assertEquals(select(2, text:gsub("\n", "")), select(2, lua_text:gsub("\n", "")), what)
    end
    return text
  end
  local rows = generate(LEADQ_VARIANT == "asan" and 300 or 1500, 9)
  for k = 1, 7 do   -- a group with more than five reasons
    rows[#rows + 1] = { "R" .. k, "lead", T0, nil, "dee" }
    rows[#rows + 1] = { "R" .. k, "disqualified", T0 + DAY, "reason " .. (k % 6), "dee" }
  end
  rows[#rows + 1] = { "Q4", "mql", T0 + 2 * DAY, nil, "ann" }
  local f = load_rows(funnel.new(), rows)
  local text = same(f, nil, "all leads")
  lu.assertStrContains(text, "leads reaching each stage\ngroup  lead")
  text = same(f, { by = { "owner", "mql_month" } }, "by owner and mql_month")
  lu.assertStrContains(text, "\ntotal ")
  lu.assertStrContains(text, "(other reasons)")
  lu.assertStrContains(text, "recycled to nurture")
  lu.assertStrContains(text, "hand-off SLA: each mql to its first sales stage within 2 days")
  same(f, { by = { "mql_week" }, velocity = false, sla = false }, "no velocity, no SLA")
  same(load_rows(funnel.new{ sla_days = 0.5 }, rows), { by = { "owner" } }, "half a day's SLA")
  same(load_rows(funnel.new{ sla_days = false }, rows), { by = { "owner" } }, "no SLA declared")
  same(load_rows(funnel.new{ stages = { "mql", "sql" }, nurture = false }, { { "A", "mql", T0 },
    { "A", "sql", T0 + 3 * DAY } }), nil, "two stages")
  same(funnel.new(), nil, "an empty funnel")
  same(funnel.new(), { by = { "owner" } }, "an empty funnel by owner")
  -- funnel.run's table format: the core's text with the whole's velocity in the total row
  local path = write_transitions(rows, 300)
  local out, tab = funnel.run{ transitions = path, by = "owner", format = "table" }
  os.remove(path)
  lu.assertNotNil(out, tab)
  lu.assertTrue(#tab.groups > 1)   -- a field read makes the table
  if exact_printf then lu.assertEquals(out, funnel.to_text(tab)) end
end

-- funnel.run reads only the id and dimension columns of --leads; a dimension that is no column (a
-- cohort, the owner) reads the whole file as before. Either way the answer is the whole table's.
function M.TestFunnelOutput.test_run_reads_the_leads_columns_it_groups_by()
  local leadq = require("leadq")
  local rows = generate(LEADQ_VARIANT == "asan" and 200 or 800, 5)
  local dir = helpers.tmpdir()
  local fh = assert(io.open(dir .. "/t.csv", "wb"))
  fh:write("lead_id,stage,at,reason,owner\n")
  for _, row in ipairs(rows) do
    fh:write(string.format("%s,%s,%d,%s,%s\n", row[1], row[2], math.floor(row[3]), row[4] or "", row[5] or ""))
  end
  fh:close()
  local lines = { "id,email,source,country,employees" }
  for i = 1, 800 do
    lines[#lines + 1] = string.format("L%d,u%d@x.com,%s,%s,%d", i, i, ({ "web", "ads", "" })[i % 3 + 1],
      ({ "US", "DE" })[i % 2 + 1], i)
  end
  fh = assert(io.open(dir .. "/leads.csv", "wb"))
  fh:write(table.concat(lines, "\n"), "\n")
  fh:close()
  local whole = leadq.read_csv(dir .. "/leads.csv")
  local f = funnel.new()
  f:load(leadq.read_csv(dir .. "/t.csv"), { lead = "lead_id", stage = "stage", at = "at", reason = "reason",
    owner = "owner" })
  -- what funnel.run asks read_csv for, seen through the core's table
  local read_csv, asked = core.read_csv, {}
  core.read_csv = function(path, options)
    if path == dir .. "/leads.csv" then asked[#asked + 1] = options and options.columns or "all" end
    return read_csv(path, options)
  end
  local passed, failure = pcall(function() for _, by in ipairs({ "source,country", "source,mql_month", "owner" }) do
    asked = {}
    local ok, text, err = pcall(funnel.run, { transitions = dir .. "/t.csv", leads = dir .. "/leads.csv", by = by,
      format = "csv" })
    lu.assertTrue(ok, text)
    lu.assertNotNil(text, err)
    if by == "source,country" then lu.assertEquals(asked, { { "id", "source", "country" } }) end
    if by == "owner" then lu.assertEquals(asked, { { "id", "owner" }, "all" }) end
    asked = {}
    local dims = {}
    for d in by:gmatch("[^,]+") do dims[#dims + 1] = d end
    lu.assertEquals(text, f:aggregate{ by = dims, leads = whole, id = "id" }:csv())
    -- on two threads: the same bytes
    lu.assertEquals(funnel.run{ transitions = dir .. "/t.csv", leads = dir .. "/leads.csv", by = by, format = "csv",
      threads = 2 }, text)
  end end)
  core.read_csv = read_csv   -- whatever happened
  helpers.remove_dir(dir)
  if not passed then error(failure, 0) end
  lu.assertErrorMsgContains("run: option 'threads' must be a whole number from 1 to 256, got 0", funnel.run,
    { transitions = "t.csv", threads = 0 })
end

function M.TestFunnelOutput.test_json_and_text()
  local t = funnel.report(small_funnel():aggregate{ by = { "mql_month" } })
  local back = assert(json.decode(funnel.format(t, "json")))
  lu.assertEquals(back.groups[1].key.mql_month, "2024-01")
  lu.assertEquals(back.groups[2].reached.customer, 1)
  lu.assertEquals(back.breaches[1].lead, "L3")
  local text = funnel.format(t, "table")
  local lines = {}
  for l in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  lu.assertEquals(lines[1], "leads reaching each stage")
  lu.assertStrContains(lines[2], "mql_month  lead  mql  sal")
  lu.assertStrContains(lines[4], "2024-01       2    2")
  lu.assertStrMatches(lines[7], "total%s+%d+%s+%d+.*")   -- after the groups and a rule
  lu.assertStrContains(text, "conversion: leads that reached both stages")
  lu.assertStrContains(text, "days per step, median")
  local wide = funnel.format(t, "wide")
  lu.assertStrContains(wide:match("^[^\n]*"), "mql_month  lead  mql  sal")
  lu.assertStrContains(text, "disqualification reasons")
  lu.assertErrorMsgContains("unknown format 'xml'", funnel.format, t, "xml")
end

-- The text tables' total row: counts and conversions from the groups equal an aggregation of all leads.
function M.TestFunnelOutput.test_total_row_equals_the_whole()
  local f = small_funnel()
  local grouped = funnel.report(f:aggregate{ by = { "mql_month" } })
  local whole = funnel.report(f:aggregate()).groups[1]
  local total = funnel.total_group(grouped)
  lu.assertEquals(total.reached, whole.reached)
  for name, c in pairs(whole.conversion) do lu.assertAlmostEquals(total.conversion[name], c, 1e-12) end
  lu.assertEquals(funnel.total_group(funnel.report(f:aggregate())), whole)
end

function M.TestFunnelOutput.test_lifecycle_of_objects()
  local f = small_funnel()
  local r = f:aggregate()
  lu.assertStrContains(tostring(r), "leadq.FunnelResult (1 groups")
  r:close()
  r:close()   -- twice is fine
  lu.assertEquals(tostring(r), "leadq.FunnelResult (closed)")
  lu.assertErrorMsgContains("the funnel result is closed", r.serialize, r)
  f:close()
  lu.assertErrorMsgContains("the funnel is closed", f.add, f, "A", "mql", 0)
  -- Lua 5.4: to-be-closed variables (the chunk does not compile under older Luas)
  local chunk = load("local funnel = ...; local g; do local f <close> = funnel.new(); g = f end; return tostring(g)")
  if chunk then lu.assertEquals(chunk(funnel), "leadq.Funnel (closed)") end
end

function M.TestFunnelOutput.test_the_leadq_module_api()
  local leadq = require("leadq")
  local f = leadq.funnel{ stages = { "mql", "sql" } }
  assert(f:add("A", "mql", "2024-01-01"))
  assert(f:add("A", "sql", "2024-01-02"))
  local part = f:aggregate():serialize()
  local whole = assert(leadq.funnel_merge({ part, part }))
  local t = leadq.funnel_report(whole)
  lu.assertEquals(t.groups[1].reached.sql, 2)
  lu.assertStrContains(leadq.funnel_format(t, "csv"), "mql,sql,disqualified,nurture,mql_to_sql")
  lu.assertErrorMsgContains("unknown funnel option 'stage'", leadq.funnel, { stage = {} })
end

function M.TestFunnelOutput.test_partial_results_through_the_command()
  local rows = generate(LEADQ_VARIANT == "asan" and 100 or 400, 3)
  local function write(path, from, to)
    local fh = assert(io.open(path, "wb"))
    fh:write("lead_id,stage,at,reason,owner\n")
    for i = from, to do
      local r = rows[i]
      local at = os.date("!%Y-%m-%d %H:%M:%S", math.floor(r[3]))
      fh:write(r[1], ",", r[2], ",", at, ",", r[4] or "", ",", r[5] or "", "\n")
    end
    fh:close()
  end
  local cut = math.floor(#rows / 2)
  while rows[cut + 1][1] == rows[cut][1] do cut = cut + 1 end
  local whole, a, b = os.tmpname(), os.tmpname(), os.tmpname()
  local pa, pb = os.tmpname(), os.tmpname()
  write(whole, 1, #rows)
  write(a, 1, cut)
  write(b, cut + 1, #rows)
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  local by = { "--by", "owner,mql_month", "--format", "csv" }
  local function run(args)
    printed = {}
    for _, x in ipairs(by) do args[#args + 1] = x end
    lu.assertEquals(cli.main(args, out), 0)
    return table.concat(printed, "\n")
  end
  local expected = run({ "funnel", "--transitions", whole })
  lu.assertStrContains(run({ "funnel", "--transitions", a, "--part", pa }), "wrote the partial result to " .. pa)
  run({ "funnel", "--transitions", b, "--part", pb })
  lu.assertEquals(run({ "funnel", "--merge", pb .. "," .. pa }), expected)
  lu.assertEquals(cli.main({ "funnel", "--merge", pa, "--transitions", a }, out), 1)
  lu.assertEquals(errors[#errors],
    "leadq: --merge reads partial results, not --transitions: give one or the other")
  for _, p in ipairs({ whole, a, b, pa, pb }) do os.remove(p) end
end

M.TestFunnelTables = {}

local LOG = table.concat({
  "lead_id,stage,at,reason,owner",
  "A,lead,2024-01-01,,",
  "A,mql,2024-01-02,,",
  "A,sql,2024-01-03,,ann",
  "B,mql,2024-01-05,,",
  "B,mqll,2024-01-06,,",
  "C,sql,2024-01-05,,bob",
  "C,mql,2024-01-07,,bob",
  "D,disqualified,2024-01-07,student,",
}, "\n") .. "\n"

local LEADS = "id,source,country\nA,web,US\nB,web,DE\nC,event,US\nX,event,FR\n"

function M.TestFunnelTables.test_load_reports_rows_with_file_and_line()
  local f = funnel.new()
  local tr = core.parse_csv(LOG)
  lu.assertEquals({ f:load(tr, { lead = "lead_id", stage = "stage", at = "at", reason = "reason",
                                 owner = "owner", source = "log.csv" }) }, { 7, 1 })
  lu.assertEquals(f:prepare(), 2)
  local rejects = f:rejects()
  lu.assertEquals(rejects[1], { file = "log.csv", line = 6, lead = "B", message = "unknown stage 'mqll'",
                                at = funnel.parse_time("2024-01-06") })
  lu.assertEquals(rejects[2].line, 8)
  lu.assertEquals(rejects[2].message, "out of order: 'mql' comes before 'sql' in the funnel")
  lu.assertErrorMsgContains("columns.at: no column 'when' in the table", f.load, f, tr,
    { lead = "lead_id", stage = "stage", at = "when" })
  lu.assertErrorMsgContains("columns.stage_is: unknown stage 'won'", f.load, f, tr,
    { lead = "lead_id", stage_is = "won", at = "at" })
end

-- The log keeps a row's file and line as runs of rows from one load: rows checked after several loads
-- (one file twice, its lines from the start again) and rows added by hand between them each name
-- their own.
function M.TestFunnelTables.test_rejects_name_the_file_and_line_of_each_load()
  local f = funnel.new()
  local cols = { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" }
  local function load(prefix, source)
    local t = core.parse_csv((LOG:gsub("\n(%u),", "\n" .. prefix .. "%1,")))
    cols.source = source
    f:load(t, cols)
    t:close()
  end
  load("p", "a.csv")
  lu.assertTrue(f:add("q", "mql", "2024-01-02"))
  lu.assertTrue(f:add("q", "lead", "2024-01-03"))   -- a step back: rejected by the check
  load("r", "b.csv")
  load("s", "a.csv")
  lu.assertEquals(f:prepare(), 7)
  local got = {}
  for _, r in ipairs(f:rejects()) do
    got[#got + 1] = string.format("%s:%s %s %s", r.file or "-", r.line or "-", r.lead, r.message:match("^%S+ %S+"))
  end
  lu.assertEquals(got, {
    "a.csv:6 pB unknown stage", "b.csv:6 rB unknown stage", "a.csv:6 sB unknown stage",
    "a.csv:8 pC out of", "-:- q out of", "b.csv:8 rC out of", "a.csv:8 sC out of",
  })
end

-- funnel.run reads only the log's columns it keeps: an export's other columns are never made into values,
-- so a value there that fits no type the reader inferred (past its 10000 sampled rows) rejects no row,
-- and the report is the one of the funnel's columns alone.
function M.TestFunnelTables.test_run_reads_only_the_log_columns_it_keeps()
  local dir = helpers.tmpdir()
  local wide, narrow = { "note,lead_id,amount,stage,at,reason,owner" }, { "lead_id,stage,at,reason,owner" }
  for i = 1, 10200 do
    local amount = i == 10100 and "n/a" or tostring(i)   -- a number in the 10000 rows sampled, then not
    local stage, reason = ({ "lead", "mql", "disqualified" })[i % 3 + 1], ""
    if stage == "disqualified" then reason = "spam" end
    local at = string.format("2024-%02d-%02d", i % 12 + 1, i % 28 + 1)
    wide[#wide + 1] = string.format("n%d,L%d,%s,%s,%s,%s,o%d", i, math.floor(i / 2), amount, stage, at, reason, i % 5)
    narrow[#narrow + 1] = string.format("L%d,%s,%s,%s,o%d", math.floor(i / 2), stage, at, reason, i % 5)
  end
  helpers.write(dir .. "/wide.csv", table.concat(wide, "\n") .. "\n")
  helpers.write(dir .. "/narrow.csv", table.concat(narrow, "\n") .. "\n")
  local read_csv, asked = core.read_csv, {}
  core.read_csv = function(path, options)
    if path == dir .. "/wide.csv" then asked[#asked + 1] = options and options.columns or "all" end
    return read_csv(path, options)
  end
  local ok, text, _, rejects = pcall(funnel.run, { transitions = dir .. "/wide.csv", by = "owner", format = "csv" })
  core.read_csv = read_csv
  lu.assertTrue(ok, text)
  lu.assertEquals(asked, { { "lead_id", "stage", "at", "reason", "owner" } })
  local want, _, want_rejects = funnel.run({ transitions = dir .. "/narrow.csv", by = "owner", format = "csv" })
  lu.assertEquals(#want_rejects, #rejects)
  lu.assertEquals(text, want)
  -- the whole file, read as it comes, loses that row
  local whole = read_csv(dir .. "/wide.csv")
  lu.assertEquals(#whole:rejects(), 1)
  whole:close()
  helpers.remove_dir(dir)
end

function M.TestFunnelTables.test_rows_the_reader_rejected_are_kept()
  local f = funnel.new()
  local tr = core.parse_csv("lead_id,stage,at\nA,mql,2024-01-01\nB,mql,2024-01-02,extra\nC,mql,2024-01-03\n")
  local logged, rejected = f:load(tr, { lead = "lead_id", stage = "stage", at = "at", source = "x.csv" })
  lu.assertEquals(logged, 2)
  lu.assertEquals(rejected, 1)
  local r = f:rejects()[1]
  lu.assertEquals(r.file, "x.csv")
  lu.assertEquals(r.line, 3)
end

function M.TestFunnelTables.test_dimensions_from_a_leads_table()
  local f = funnel.new()
  f:load(core.parse_csv(LOG), { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
  local leads = core.parse_csv(LEADS)
  local t = funnel.report(f:aggregate{ by = { "source" }, leads = leads })
  lu.assertEquals(#t.groups, 3)
  lu.assertEquals(t.groups[1].key, {})          -- D is not in the leads table
  lu.assertEquals(t.groups[1].leads, 1)
  lu.assertEquals(t.groups[2].key, { source = "event" })
  lu.assertEquals(t.groups[2].reached.sql, 1)
  lu.assertEquals(t.groups[3].key, { source = "web" })
  lu.assertEquals(t.groups[3].reached.mql, 2)
  -- a stored join gives the same answer, and keeps its table alive
  f:join(leads, "id")
  local joined = funnel.report(f:aggregate{ by = { "source" } })
  lu.assertEquals(joined, t)
  t = funnel.report(f:aggregate{ by = { "source", "country" } })
  lu.assertEquals(t.groups[4].key, { source = "web", country = "US" })
  lu.assertErrorMsgContains("dimension 'id' must be a category or boolean column (it is text)",
    f.aggregate, f, { by = { "id" } })
  lu.assertErrorMsgContains("unknown query key 'bye'", f.aggregate, f, { bye = { "source" } })
  leads:close()
  lu.assertErrorMsgContains("attempt to use a closed leadq table", f.aggregate, f, { by = { "source" } })
end

function M.TestFunnelTables.test_costs_from_spend()
  local f = funnel.new()
  f:load(core.parse_csv(LOG), { lead = "lead_id", stage = "stage", at = "at", reason = "reason" })
  local leads = core.parse_csv(LEADS)
  local spend = { { source = "web", month = "2024-01", spend = 100 }, { source = "web", month = "2024-02", spend = 50 },
                  { source = "event", month = "2024-01", spend = 300 } }
  local t = funnel.report(f:aggregate{ by = { "source" }, leads = leads }, { spend = spend })
  lu.assertEquals(t.groups[3].spend, 150)
  lu.assertEquals(t.groups[3].cost.cost_per_mql, 75)
  lu.assertEquals(t.groups[2].cost.cost_per_sql, 300)
  local csv = funnel.format(t, "csv")
  lu.assertStrContains(csv:match("^[^\n]*"), ",cost_per_mql,cost_per_sql,cost_per_customer")
  lu.assertStrContains(csv, "\nweb,")
  -- by source and mql month: spend of that month only
  t = funnel.report(f:aggregate{ by = { "source", "mql_month" }, leads = leads }, { spend = spend })
  lu.assertEquals(t.groups[#t.groups].key, { source = "web", mql_month = "2024-01" })
  lu.assertEquals(t.groups[#t.groups].cost.cost_per_mql, 50)
  -- by a dimension spend cannot be split on: no cost
  t = funnel.report(f:aggregate{ by = { "country" }, leads = leads }, { spend = spend })
  lu.assertNil(t.costs)
end

return M
