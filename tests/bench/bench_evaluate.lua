-- Evaluation speed: leadq's evaluate (csrc/evaluate.c: AUC with its DeLong interval, deciles,
-- calibration, statuses, grades and every rule's counts) over 1M generated leads scored by
-- rules/mql.lua, against the same AUC and deciles computed in plain Lua (table.sort of the pairs,
-- then one walk): the baseline a Lua user would write. The two AUCs are checked equal first.
-- Also timed: the whole leadq.evaluate (labels from the transitions, scoring with the rules that
-- fired, the statistics), the goal being <= 1 s for 1M leads.
local report = require("report")
local leadq = require("leadq")
local core = require("leadq.core")
local outcome = require("leadq.outcome")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42
local DIR = "build/bench"
assert(report.sample(DIR, N, SEED), "leadq.gen cannot be loaded")

local tbl = assert(leadq.read_csv(DIR .. "/leads.csv"))
local model = assert(leadq.load_model("rules/mql.lua"))
local spec = { transitions = DIR .. "/transitions.csv", reached = "sql" }
local labels, info = outcome.labels(tbl, spec)
local fired = {}
local results = model:score(tbl, nil, { as_of = "2026-11-01", fired = fired })
local options = { status = "status", grade = "grade", fired = fired.bits, nsets = #fired.ids, words = fired.words }

-- plain Lua: the pairs sorted by score, ties ranked together, deciles by position of each tie block
local totals = results:column("total")
local function plain()
  local items, n = {}, 0
  for i = 1, #tbl do
    local l = labels:byte(i)
    if l <= 1 then n = n + 1; items[n] = { totals[i], l } end
  end
  table.sort(items, function(a, b) return a[1] < b[1] end)
  local u, below, P, N0 = 0, 0, 0, 0
  local deciles = {}
  for d = 1, 10 do deciles[d] = { 0, 0 } end
  local i = 1
  while i <= n do
    local j, pos, neg = i, 0, 0
    while j <= n and items[j][1] == items[i][1] do
      if items[j][2] == 1 then pos = pos + 1 else neg = neg + 1 end
      j = j + 1
    end
    u = u + pos * (below + neg / 2)
    below = below + neg
    P, N0 = P + pos, N0 + neg
    local d = 10 - math.min(9, math.floor(((n - j + 1) + (j - i) / 2) * 10 / n))
    deciles[d][1], deciles[d][2] = deciles[d][1] + pos + neg, deciles[d][2] + pos
    i = j
  end
  return u / (P * N0), deciles
end

local r = core.evaluate(results, "total", labels, options)
local auc_plain = plain()
assert(math.abs(r.auc - auc_plain) < 1e-12, string.format("AUC: leadq %.15f, plain Lua %.15f", r.auc, auc_plain))
print(string.format("bench: evaluate agrees with plain Lua on the AUC of %d leads (%d positive): %.4f "
  .. "(95%% %.4f to %.4f)", info.leads, info.positives, r.auc, r.auc_low, r.auc_high))

local c_time = report.best_of(5, function()
  local t0 = report.clock()
  core.evaluate(results, "total", labels, options)
  return report.clock() - t0
end)
local plain_time = report.best_of(1, function()
  local t0 = report.clock()
  plain()
  return report.clock() - t0
end)
report.line(string.format("evaluate %dk leads (AUC, DeLong, deciles, calibration, statuses, grades, %d rules)",
  math.floor(#tbl / 1000), #fired.ids), c_time * 1000, "ms", "plain Lua AUC + deciles", plain_time * 1000, "ms", false)

-- the whole of leadq.evaluate, from the leads table: labels, scoring with the rules that fired, statistics
local whole = report.best_of(2, function()
  local t0 = report.wall()
  leadq.evaluate(model, tbl, { transitions = spec.transitions, reached = "sql", as_of = nil })
  return report.wall() - t0
end)
print(string.format("bench: leadq.evaluate of %dk leads end to end (transitions read, labels, scoring, statistics): "
  .. "%.0f ms (goal <= 1000 ms)", math.floor(#tbl / 1000), whole * 1000))
results:close()
