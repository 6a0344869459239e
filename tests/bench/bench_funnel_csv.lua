-- The funnel from CSV files to a CSV report, by 3 lead dimensions, on the 1M generated leads (the
-- sample bench_score.lua shares): funnel.run as the command runs it, against the same run the way
-- it was made before (every column of the leads file read, the report table built and formatted
-- in Lua), runs interleaved, the least of 3 wall times each; the same run on 2 threads against 1;
-- the result's part alone: the CSV, JSON and text written by the core against the report table in
-- Lua, beside the aggregation it reports on; and the preparation (check and sort, join) against the
-- aggregation, on 1 and 2 threads.
local report = require("report")
local core = require("leadq.core")
local funnel = require("leadq.funnel")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42
local DIR = (os.getenv("LEADQ_BUILD") or "build") .. "/bench"   -- the sample of this build folder
assert(report.sample(DIR, N, SEED), "bench_funnel_csv needs leadq.gen for its sample")
local TRANSITIONS, LEADS = DIR .. "/transitions.csv", DIR .. "/leads.csv"
local BY = { "source", "country", "seniority" }
local wall = report.wall

-- The run as it was: the whole leads file, the report table in Lua, to_csv in Lua.
local function run_before()
  local f = funnel.new()
  local tr = assert(core.read_csv(TRANSITIONS))
  f:load(tr, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
  tr:close()
  local leads = assert(core.read_csv(LEADS))
  local result = f:aggregate{ by = BY, leads = leads, id = "id" }
  leads:close()
  return funnel.to_csv(funnel.report(result))
end

local function run_now(threads)
  return assert(funnel.run{ transitions = TRANSITIONS, leads = LEADS, by = table.concat(BY, ","), format = "csv",
    threads = threads })
end

local best_now, best_before, text_now, text_before = math.huge, math.huge, nil, nil
for _ = 1, 3 do
  collectgarbage()
  local t0 = wall()
  text_now = run_now()
  local t1 = wall()
  collectgarbage()
  local t2 = wall()
  text_before = run_before()
  local t3 = wall()
  best_now, best_before = math.min(best_now, t1 - t0), math.min(best_before, t3 - t2)
end
-- the same answer (LuaJIT's string.format rounds ties otherwise: compare under PUC Lua only)
if string.format("%.4f", 0.53125) == "0.5312" then assert(text_now == text_before, "the two runs' CSV differ") end

-- the files parsed on 2 threads against 1, interleaved
local best_one, best_two = math.huge, math.huge
for _ = 1, 3 do
  collectgarbage()
  local t0 = wall()
  local one = run_now(1)
  local t1 = wall()
  collectgarbage()
  local t2 = wall()
  local two = run_now(2)
  local t3 = wall()
  assert(one == two, "the CSV of 2 threads differs from 1's")
  best_one, best_two = math.min(best_one, t1 - t0), math.min(best_two, t3 - t2)
end

-- the preparation (the log's check and sort by lead and time, the join to the leads) against the
-- aggregation (stage times, counts, velocity, SLA), on 1 and 2 threads: wall time, least of 3, each
-- on a funnel loaded afresh
local leads = assert(core.read_csv(LEADS, { columns = { "id", "source", "country", "seniority" } }))
local function phases(threads)
  local g = funnel.new()
  local log = assert(core.read_csv(TRANSITIONS, { schema = { lead_id = "text" } }))
  g:load(log, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
  log:close()
  local t0 = wall()
  g:prepare(threads)
  local t1 = wall()
  g:join(leads, "id", threads)
  local t2 = wall()
  g:aggregate{ by = BY, threads = threads }:close()   -- the stored join
  local t3 = wall()
  g:close()
  collectgarbage()
  return t1 - t0, t2 - t1, t3 - t2
end
local best = { { math.huge, math.huge, math.huge }, { math.huge, math.huge, math.huge } }
for _ = 1, 3 do
  for threads = 1, 2 do
    local times = { phases(threads) }
    for k = 1, 3 do best[threads][k] = math.min(best[threads][k], times[k]) end
  end
end

-- the result's part alone, CPU time, least of 3
local f = funnel.new()
local tr = assert(core.read_csv(TRANSITIONS))
f:load(tr, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
tr:close()
f:join(leads, "id")
local result
-- The least of 3 CPU times of fn().
local function cpu_best(fn)
  return report.best_of(3, function()
    local t = report.clock()
    fn()
    return report.clock() - t
  end)
end
local t_aggregate = cpu_best(function()
  result = f:aggregate{ by = BY, leads = leads, id = "id" }
end)
local t_c = cpu_best(function()
  local _ = result:csv()
end)
local t_lua = cpu_best(function()
  local _ = funnel.to_csv(funnel.report(result))
end)
local groups = #result:totable().groups
-- the JSON and text reports: the core's against the report table in Lua (the text's total row from
-- an aggregation without dimensions, as funnel.run adds it)
local total = f:aggregate()
local t_json_c = cpu_best(function()
  local _ = result:json()
end)
local t_json_lua = cpu_best(function()
  local _ = funnel.to_json(funnel.report(result))
end)
local t_text_c = cpu_best(function()
  local _ = result:text(total)
end)
local t_text_lua = cpu_best(function()
  local tab = funnel.report(result)
  tab.total = funnel.report(total).groups[1]
  local _ = funnel.to_text(tab)
end)

local label = string.format("%dk leads by 3 dims (%d groups)", math.floor(N / 1000), groups)
report.line("funnel CSV -> CSV, " .. label, best_now * 1000, "ms", "the run before (all columns, Lua result)",
  best_before * 1000, "ms", false)
report.line("funnel CSV -> CSV on 2 threads, " .. label, best_two * 1000, "ms", "1 thread", best_one * 1000, "ms",
  false)
report.line("funnel result as CSV, " .. label, t_c * 1000, "ms", "report + to_csv in Lua", t_lua * 1000, "ms", false)
report.line("funnel result as CSV against its aggregation, " .. label, t_c * 1000, "ms", "aggregate",
  t_aggregate * 1000, "ms", false)
report.line("funnel result as JSON, " .. label, t_json_c * 1000, "ms", "report + to_json in Lua",
  t_json_lua * 1000, "ms", false)
report.line("funnel result as text tables, " .. label, t_text_c * 1000, "ms", "report + to_text in Lua",
  t_text_lua * 1000, "ms", false)
for threads = 1, 2 do
  local on = string.format(", %s, %d thread%s", label, threads, threads == 1 and "" or "s")
  report.line("funnel check and sort by lead and time against the aggregation" .. on, best[threads][1] * 1000, "ms",
    "aggregate", best[threads][3] * 1000, "ms", false)
  report.line("funnel join to the leads against the aggregation" .. on, best[threads][2] * 1000, "ms", "aggregate",
    best[threads][3] * 1000, "ms", false)
end
