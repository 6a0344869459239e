-- leadq.evaluate and csrc/evaluate.c: AUC against independent counts, DeLong, deciles, calibration,
-- statuses and rules against plain Lua counts, the rules that fired from the scoring pass, real data.
local lu = require("luaunit")
local leadq = require("leadq")
local core = require("leadq.core")
local outcome = require("leadq.outcome")
local helpers = require("helpers")

local M = {}

-- A results-like table with a number column `total` from a list of scores.
local function scores_table(scores)
  local records = {}
  for i, s in ipairs(scores) do records[i] = { total = s } end
  return leadq.table(records, { total = "number" })
end

-- The AUC as the share of (positive, negative) pairs the score orders right, ties counting half:
-- every pair, one by one.
local function pair_auc(scores, labels)
  local wins, pairs_ = 0, 0
  for i = 1, #scores do
    if labels[i] == 1 then
      for j = 1, #scores do
        if labels[j] == 0 then
          pairs_ = pairs_ + 1
          if scores[i] > scores[j] then wins = wins + 1 elseif scores[i] == scores[j] then wins = wins + 0.5 end
        end
      end
    end
  end
  return wins / pairs_
end

M.TestEvaluateAuc = {}

function M.TestEvaluateAuc.test_auc_equals_the_pair_count_with_ties()
  local rng = helpers.rng(11)
  for round = 1, 5 do
    local n = 200 + round * 37
    local scores, labels = {}, {}
    for i = 1, n do
      scores[i] = math.floor(rng() * (3 + round * 4)) * 5 - 20   -- few distinct values: many ties
      if round == 5 then scores[i] = scores[i] + rng() * 0.001 end
      labels[i] = rng() < 0.15 + 0.02 * (scores[i] + 20) / 5 and 1 or 0
    end
    labels[1], labels[2] = 1, 0
    local r = core.evaluate(scores_table(scores), "total", outcome.from_list(labels))
    lu.assertAlmostEquals(r.auc, pair_auc(scores, labels), 1e-12)
    lu.assertEquals(r.leads, n)
  end
end

function M.TestEvaluateAuc.test_left_out_and_missing_scores_count_nowhere()
  local scores = { 5, 4, 3, 2, 1, 0 / 0, 9 }
  local labels = outcome.from_list({ 1, 0, 1, 0, 0, 1, nil }, 7)
  local r = core.evaluate(leadq.table({ { total = 5 }, { total = 4 }, { total = 3 }, { total = 2 }, { total = 1 },
    {}, { total = 9 } }, { total = "number" }), "total", labels)
  lu.assertEquals(r.leads, 5)
  lu.assertEquals(r.left_out, 1)
  lu.assertEquals(r.no_score, 1)
  lu.assertAlmostEquals(r.auc, pair_auc({ 5, 4, 3, 2, 1 }, { 1, 0, 1, 0, 0 }), 1e-12)
  lu.assertNotNil(scores)
end

-- Positives 4, 3, 2 and negatives 3, 1. By hand: U = 1 + 1 + 0.5 + 1 + 0 + 1 = 4.5 of 6 pairs, AUC 0.75.
-- DeLong: V10 = 1, 0.75, 0.5 (S10 = 0.125 / 2 = 0.0625); V01 = 0.5, 1 (S01 = 0.125 / 1);
-- var = 0.0625 / 3 + 0.125 / 2 = 1/12; se = 0.288675; interval 0.75 -+ 1.959964 * se = 0.184 to 1 (clipped).
function M.TestEvaluateAuc.test_delong_interval_by_hand()
  local r = core.evaluate(scores_table({ 4, 3, 2, 3, 1 }), "total", outcome.from_list({ 1, 1, 1, 0, 0 }))
  lu.assertAlmostEquals(r.auc, 0.75, 1e-12)
  lu.assertAlmostEquals(r.auc_se, math.sqrt(1 / 12), 1e-12)
  lu.assertAlmostEquals(r.auc_low, 0.75 - 1.959963984540054 * math.sqrt(1 / 12), 1e-9)
  lu.assertEquals(r.auc_high, 1)
  -- a perfect score: AUC 1, no spread between the pairs
  r = core.evaluate(scores_table({ 9, 8, 1, 2, 3 }), "total", outcome.from_list({ 1, 1, 0, 0, 0 }))
  lu.assertEquals(r.auc, 1)
  lu.assertEquals(r.auc_se, 0)
end

function M.TestEvaluateAuc.test_intervals()
  -- Wilson: 0 of 10 -> 0 to 0.2775; 5 of 10 -> 0.2366 to 0.7634
  local lo, hi = core.wilson(0, 10)
  lu.assertEquals(lo, 0)
  lu.assertAlmostEquals(hi, 0.27753, 1e-5)
  lo, hi = core.wilson(5, 10)
  lu.assertAlmostEquals(lo, 0.23659, 1e-5)
  lu.assertAlmostEquals(hi, 0.76341, 1e-5)
  -- rate ratio 20/100 vs 10/100 = 2, log interval: se = sqrt(1/20 - 1/100 + 1/10 - 1/100) = 0.3464
  local r, rlo, rhi = core.rate_ratio(20, 100, 10, 100)
  lu.assertAlmostEquals(r, 2, 1e-12)
  lu.assertAlmostEquals(rlo, 2 * math.exp(-1.959963984540054 * math.sqrt(0.13)), 1e-9)
  lu.assertAlmostEquals(rhi, 2 * math.exp(1.959963984540054 * math.sqrt(0.13)), 1e-9)
  r, rlo = core.rate_ratio(0, 50, 10, 100)
  lu.assertEquals(r, 0)
  lu.assertEquals(rlo, 0)
end

-- Deciles, bands and statuses recomputed in plain Lua from the scores and labels.
local function plain_groups(scores, labels, parts, ascending)
  local items = {}
  for i = 1, #scores do
    if labels[i] == 0 or labels[i] == 1 then items[#items + 1] = { scores[i], labels[i] } end
  end
  table.sort(items, function(a, b) if ascending then return a[1] < b[1] end return a[1] > b[1] end)
  local m = #items
  local groups = {}
  for p = 1, parts do groups[p] = { leads = 0, positives = 0 } end
  local i = 1
  while i <= m do
    local j = i
    while j < m and items[j + 1][1] == items[i][1] do j = j + 1 end
    local p = math.floor(((i - 1) + (j - i + 1) / 2) * parts / m) + 1
    if p > parts then p = parts end
    for k = i, j do
      groups[p].leads = groups[p].leads + 1
      groups[p].positives = groups[p].positives + items[k][2]
    end
    i = j + 1
  end
  return groups
end

function M.TestEvaluateAuc.test_deciles_and_bands_against_plain_counts()
  local rng = helpers.rng(5)
  local scores, labels = {}, {}
  for i = 1, 1000 do
    scores[i] = math.floor(rng() * 60)
    labels[i] = rng() < scores[i] / 80 and 1 or 0
  end
  local r = core.evaluate(scores_table(scores), "total", outcome.from_list(labels), { bands = 20 })
  local want = plain_groups(scores, labels, 10)
  local cum = 0
  for d = 1, 10 do
    lu.assertEquals(r.deciles[d].leads, want[d].leads, "decile " .. d)
    lu.assertEquals(r.deciles[d].positives, want[d].positives, "decile " .. d)
    cum = cum + want[d].positives
    lu.assertAlmostEquals(r.deciles[d].cumulative_recall, cum / r.positives, 1e-12)
    lu.assertAlmostEquals(r.deciles[d].lift, (want[d].positives / want[d].leads) / (r.positives / r.leads), 1e-12)
  end
  -- bands low to high, 20 quantile parts (the empty ones dropped)
  local bands = plain_groups(scores, labels, 20, true)
  local k = 1
  for p = 1, 20 do
    if bands[p].leads > 0 then
      lu.assertEquals(r.bands[k].leads, bands[p].leads)
      lu.assertEquals(r.bands[k].positives, bands[p].positives)
      local lo, hi = core.wilson(bands[p].positives, bands[p].leads)
      lu.assertAlmostEquals(r.bands[k].rate_low, lo, 1e-12)
      lu.assertAlmostEquals(r.bands[k].rate_high, hi, 1e-12)
      k = k + 1
    end
  end
  lu.assertEquals(k, #r.bands + 1)
  -- few distinct scores: one band each
  r = core.evaluate(scores_table({ 1, 1, 2, 3, 3, 3 }), "total", outcome.from_list({ 1, 0, 0, 1, 1, 0 }))
  lu.assertEquals(#r.bands, 3)
  lu.assertEquals({ r.bands[1].lo, r.bands[1].leads, r.bands[3].leads, r.bands[3].positives }, { 1, 2, 3, 2 })
end

function M.TestEvaluateAuc.test_misuse()
  local t = scores_table({ 1, 2 })
  lu.assertErrorMsgContains("2 labels for", core.evaluate, scores_table({ 1, 2, 3 }), "total", "\0\1")
  lu.assertErrorMsgContains("no column 'score'", core.evaluate, t, "score", "\0\1")
  lu.assertErrorMsgContains("bands must be from 1 to 20", core.evaluate, t, "total", "\0\1", { bands = 50 })
  lu.assertErrorMsgContains("do not fit", core.evaluate, t, "total", "\0\1", { fired = "x", nsets = 1, words = 1 })
end

---------------------------------------------------------------------------------------------------
-- A model on generated data: statuses and rules against plain Lua counts, fired bits against explain

local DIR
local function sample()
  if DIR then return DIR end
  DIR = os.tmpname()
  os.remove(DIR)
  assert(require("leadq.gen").generate({ leads = helpers.size(3000, 800), seed = 12, out = DIR }))
  return DIR
end

local function bit_of(fired, k, row)
  local byte = fired.bits:byte((k - 1) * fired.words * 8 + math.floor((row - 1) / 8) + 1)
  return math.floor(byte / 2 ^ ((row - 1) % 8)) % 2
end

M.TestEvaluateModel = {}

function M.TestEvaluateModel.test_fired_bits_equal_explain()
  local dir = sample()
  local t = assert(leadq.read_csv(dir .. "/leads.csv"))
  local ev = assert(leadq.read_events(dir .. "/events.csv"))
  local m = assert(leadq.load_model("rules/mql.lua"))
  local fired = {}
  local r = m:score(t, ev, { as_of = "2026-09-01", fired = fired, threads = 2 })
  lu.assertEquals(#fired.ids, fired.nrules + fired.ndisq)
  lu.assertEquals(fired.words, math.floor((#t + 63) / 64))
  lu.assertEquals(#fired.bits, #fired.ids * fired.words * 8)
  local statuses = r:column("status")
  local checked = 0
  for row = 1, #t, 23 do
    local ex = m:explain(t, row, ev, { as_of = "2026-09-01" })
    local set = {}
    for _, x in ipairs(ex.rules) do set[x.id] = true end
    for k = 1, fired.nrules do
      lu.assertEquals(bit_of(fired, k, row) == 1, set[fired.ids[k]] == true, fired.ids[k] .. " row " .. row)
    end
    -- a disqualifier that held makes the lead disqualified
    local any = false
    for k = fired.nrules + 1, #fired.ids do any = any or bit_of(fired, k, row) == 1 end
    lu.assertEquals(any, statuses[row] == "disqualified")
    checked = checked + 1
  end
  lu.assertTrue(checked > 30)
  -- the same scores with and without the bits
  local plain = m:score(t, ev, { as_of = "2026-09-01" })
  lu.assertEquals(plain:column("total"), r:column("total"))
  -- bad option
  lu.assertErrorMsgContains("fired must be a table", m.score, m, t, ev, { fired = true })
end

function M.TestEvaluateModel.test_statuses_and_rules_against_plain_counts()
  local dir = sample()
  local t = assert(leadq.read_csv(dir .. "/leads.csv"))
  local ev = assert(leadq.read_events(dir .. "/events.csv"))
  local m = assert(leadq.load_model("rules/mql.lua"))
  local spec = { transitions = dir .. "/transitions.csv", reached = "sal", as_of = "2026-07-01", within_days = 120 }
  local r = leadq.evaluate(m, t, ev, spec)
  local labels = outcome.labels(t, spec)
  local fired = {}
  local res = m:score(t, ev, { as_of = "2026-07-01", fired = fired })
  local totals, statuses = res:column("total"), res:column("status")
  local n, pos, by_status = 0, 0, {}
  local rule_fired, rule_pos = {}, {}
  local sc, lb = {}, {}
  for i = 1, #t do
    local l = labels:byte(i)
    if l <= 1 then
      n, pos = n + 1, pos + l
      local s = by_status[statuses[i]] or { leads = 0, positives = 0 }
      by_status[statuses[i]] = s
      s.leads, s.positives = s.leads + 1, s.positives + l
      for k = 1, #fired.ids do
        if bit_of(fired, k, i) == 1 then
          rule_fired[k] = (rule_fired[k] or 0) + 1
          rule_pos[k] = (rule_pos[k] or 0) + l
        end
      end
      sc[#sc + 1], lb[#lb + 1] = totals[i], l
    end
  end
  lu.assertEquals(r.leads, n)
  lu.assertEquals(r.positives, pos)
  for _, s in ipairs(r.statuses) do
    lu.assertEquals(s.leads, by_status[s.name].leads, s.name)
    lu.assertEquals(s.positives, by_status[s.name].positives, s.name)
    lu.assertAlmostEquals(s.recall, by_status[s.name].positives / pos, 1e-12)
  end
  lu.assertEquals(r.statuses[1].name, "mql")   -- best first
  for k, rr in ipairs(r.rules) do
    lu.assertEquals(rr.id, fired.ids[k])
    lu.assertEquals(rr.fired, rule_fired[k] or 0, rr.id)
    lu.assertEquals(rr.positives, rule_pos[k] or 0, rr.id)
    if (rule_fired[k] or 0) > 0 and (rule_fired[k] or 0) < n then
      lu.assertAlmostEquals(rr.rate_fired, rule_pos[k] / rule_fired[k], 1e-12)
      lu.assertAlmostEquals(rr.rate_not_fired, (pos - rule_pos[k]) / (n - rule_fired[k]), 1e-12)
    end
  end
  lu.assertAlmostEquals(r.auc, pair_auc(sc, lb), 1e-9)
  local text = tostring(r)
  lu.assertStrContains(text, "AUC ")
  lu.assertStrContains(text, "by score decile")
  lu.assertStrContains(text, "calibration")
  lu.assertStrContains(text, "SENIORITY_EXEC")
  lu.assertStrContains(text, "left out")
end

-- A backtest reads only what was known on its date: an event after as_of fires no rule, and the
-- evaluation leaves out the leads created after it.
function M.TestEvaluateModel.test_backtest_ignores_later_events_and_leads()
  local dir = sample()
  local t = assert(leadq.read_csv(dir .. "/leads.csv"))
  local ev = assert(leadq.read_events(dir .. "/events.csv"))
  local m = assert(leadq.load_model("rules/mql.lua"))
  -- a lead's first demo request, some days after it was created
  local ids, created = t:column("id"), t:column("created_at")
  local row_of = {}
  for i = 1, #t do row_of[ids[i]] = i end
  local lead_ids, types, ats = ev:column("lead_id"), ev:column("type"), ev:column("at")
  local row, at
  for k = 1, #ev do
    local i = row_of[lead_ids[k]]
    if types[k] == "demo_request" and i and ats[k] - created[i] > 2 * 86400 then
      local first = true
      for j = 1, #ev do
        if lead_ids[j] == lead_ids[k] and types[j] == "demo_request" and ats[j] < ats[k] then first = false end
      end
      if first then row, at = i, ats[k] break end
    end
  end
  lu.assertNotNil(row, "a demo request in the sample")
  local k_demo
  local fired_before, fired_after = {}, {}
  m:score(t, ev, { as_of = at - 3600, fired = fired_before })
  m:score(t, ev, { as_of = at + 3600, fired = fired_after })
  for k, id in ipairs(fired_before.ids) do if id == "DEMO_REQUEST" then k_demo = k end end
  lu.assertEquals(bit_of(fired_before, k_demo, row), 0)   -- the request was still to come
  lu.assertEquals(bit_of(fired_after, k_demo, row), 1)
  -- evaluate as of that time: the leads created later are left out, the rest evaluated
  local spec = { transitions = dir .. "/transitions.csv", reached = "sal", as_of = at - 3600 }
  local labels, info = outcome.labels(t, spec)
  local later = 0
  for i = 1, #t do if created[i] > at - 3600 then later = later + 1; lu.assertEquals(labels:byte(i), 255) end end
  lu.assertEquals(info.created_after, later)
  local r = leadq.evaluate(m, t, ev, spec)
  lu.assertEquals(r.leads, info.leads)
  lu.assertEquals(r.left_out, info.left_out)
end

function M.TestEvaluateModel.test_misuse_blames_the_caller()
  local t = leadq.parse_csv("id,y\n1,yes\n2,no\n")
  local m = assert(leadq.load_model("rules/mql.lua"))
  lu.assertErrorMsgContains("unknown option 'thread'", leadq.evaluate, m, t, { outcome = "y", thread = 2 })
  lu.assertErrorMsgContains("no column 'yy'", leadq.evaluate, m, t, { outcome = "yy" })
  lu.assertErrorMsgContains("expects a model", leadq.evaluate, {}, t, { outcome = "y" })
  lu.assertErrorMsgContains("model 'sql' is not this model", leadq.evaluate, m, t, { outcome = "y", model = "sql" })
  local run = assert(leadq.load_models({ "rules/mql.lua", "rules/sql.lua" }))
  lu.assertErrorMsgContains("no model 'pql' in the run", leadq.evaluate, run, t, { outcome = "y", model = "pql" })
end

---------------------------------------------------------------------------------------------------
-- Real data: a hand-written model on the UCI Bank Marketing file (no `duration`)

M.TestEvaluateBank = {}

function M.TestEvaluateBank.test_bank_model_auc_is_sane_and_independent()
  local t = assert(leadq.read_csv(helpers.data("uci_bank_marketing/bank-full.csv")))
  local m = assert(leadq.load_model("tests/rules/bank_term_deposit.lua"))
  for _, f in ipairs(m:info().fields) do lu.assertNotEquals(f, "duration") end
  local r = leadq.evaluate(m, t, { outcome = "y=yes" })
  lu.assertEquals(r.leads, 45211)
  lu.assertEquals(r.positives, 5289)
  lu.assertTrue(r.auc > 0.70 and r.auc < 0.85, "AUC " .. r.auc)
  lu.assertTrue(r.auc_low < r.auc and r.auc < r.auc_high)
  -- independently: pairs counted through a histogram of the (whole-number) scores
  local totals = m:score(t):column("total")
  local y = t:column("y")
  local pos, neg = {}, {}
  local values = {}
  for i = 1, #t do
    local s = totals[i]
    if not pos[s] then pos[s], neg[s] = 0, 0; values[#values + 1] = s end
    if y[i] then pos[s] = pos[s] + 1 else neg[s] = neg[s] + 1 end
  end
  local wins, P, N = 0, 0, 0
  for _, a in ipairs(values) do
    P, N = P + pos[a], N + neg[a]
    for _, b in ipairs(values) do
      if a > b then wins = wins + pos[a] * neg[b] elseif a == b then wins = wins + pos[a] * neg[b] / 2 end
    end
  end
  lu.assertAlmostEquals(r.auc, wins / (P * N), 1e-12)
  -- the month rules carry weight; the model's statuses order the rate
  local rates = {}
  for _, s in ipairs(r.statuses) do rates[#rates + 1] = s.precision end
  lu.assertTrue(rates[1] > rates[2] and rates[2] > rates[3])
  lu.assertEquals(r.deciles[1].decile, 1)
  lu.assertTrue(r.deciles[1].lift > 2)
end

return M
