-- Funnel aggregation: 10M generated transitions grouped by three lead dimensions (source, country,
-- seniority), against sqlite3 running the same GROUP BY on the same rows.
--
-- Data: the generator's output for LEADQ_BENCH_FUNNEL_LEADS leads (default 1M, about 1.9M
-- transitions), written COPIES times under distinct lead ids until there are >= 10M transitions;
-- cached in build/bench/funnel/ (delete it to make it again; LEADQ_BENCH_FUNNEL_TARGET and _LEADS
-- set other sizes, cached apart). The leads file keeps id and the three dimensions. Loading (CSV
-- into tables, the log, SQLite's import and index) is not timed.
--
-- Timed, on one core (os.clock, CPU time of this process; sqlite3's own user + sys time):
--   counts      f:aggregate{ by = 3 dims, velocity = false, sla = false } on a checked log:
--               leads reaching each stage, so every conversion, per group; sqlite3: the same
--               counts from its per-lead GROUP BY joined to the leads, with an index on both.
--   checked     the same plus f:prepare (sorting each lead's rows by time and checking every
--               transition against the allowed ones), against the same sqlite3 query.
--   full        counts plus velocity (15 sketches per group), SLA and disqualification reasons.
local report = require("report")
local core = require("leadq.core")
local funnel = require("leadq.funnel")

local TARGET = tonumber(os.getenv("LEADQ_BENCH_FUNNEL_TARGET")) or 10000000
local LEADS = tonumber(os.getenv("LEADQ_BENCH_FUNNEL_LEADS")) or 1000000
local DIR = "build/bench/funnel"
if TARGET ~= 10000000 or LEADS ~= 1000000 then DIR = string.format("%s-%d-%d", DIR, LEADS, TARGET) end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function make_data()
  if exists(DIR .. "/transitions.csv") and exists(DIR .. "/leads.csv") and exists(DIR .. "/funnel.db") then return end
  assert(sh("mkdir -p " .. DIR .. "/gen"))
  io.stderr:write(string.format("bench_funnel: generating %d leads (once, cached in %s)\n", LEADS, DIR))
  local gen = require("leadq.gen")
  local summary = gen.generate{ leads = LEADS, seed = 11, out = DIR .. "/gen" }
  local copies = math.ceil(TARGET / summary.transitions)
  -- transitions: COPIES times, each copy's ids suffixed -k
  local written = 0
  do   -- its lines are let go at the end of the block
    local out = assert(io.open(DIR .. "/transitions.csv.tmp", "wb"))
    out:write("lead_id,stage,at,reason,owner\n")
    local lines = {}
    local first = true
    for line in io.lines(DIR .. "/gen/transitions.csv") do
      if not first then lines[#lines + 1] = line end
      first = false
  end
  for k = 1, copies do
    local buf = {}
    for i = 1, #lines do
      local comma = lines[i]:find(",", 1, true)
      buf[#buf + 1] = lines[i]:sub(1, comma - 1) .. "-" .. k .. lines[i]:sub(comma)
      if #buf == 100000 then out:write(table.concat(buf, "\n"), "\n"); buf = {} end
    end
    if #buf > 0 then out:write(table.concat(buf, "\n"), "\n") end
    written = written + #lines
  end
  out:close()
  end
  -- leads: id and the three dimensions, read with the CSV reader (fields may be quoted)
  local lt = assert(core.read_csv(DIR .. "/gen/leads.csv"))
  local ids, src, cty, sen = lt:column("id"), lt:column("source"), lt:column("country"), lt:column("seniority")
  local n = #lt
  lt:close()
  local out = assert(io.open(DIR .. "/leads.csv.tmp", "wb"))
  out:write("id,source,country,seniority\n")
  for k = 1, copies do
    local buf = {}
    for i = 1, n do
      buf[#buf + 1] = ids[i] .. "-" .. k .. "," .. (src[i] or "") .. "," .. (cty[i] or "") .. "," .. (sen[i] or "")
      if #buf == 100000 then out:write(table.concat(buf, "\n"), "\n"); buf = {} end
    end
    if #buf > 0 then out:write(table.concat(buf, "\n"), "\n") end
  end
  out:close()
  assert(os.rename(DIR .. "/transitions.csv.tmp", DIR .. "/transitions.csv"))
  assert(os.rename(DIR .. "/leads.csv.tmp", DIR .. "/leads.csv"))
  io.stderr:write(string.format("bench_funnel: %d transitions (%d copies); importing into sqlite3\n", written, copies))
  os.remove(DIR .. "/funnel.db")
  local script = assert(io.open(DIR .. "/import.sql", "wb"))
  script:write([[
CREATE TABLE transitions(lead_id TEXT, stage TEXT, at TEXT, reason TEXT, owner TEXT);
CREATE TABLE leads(id TEXT PRIMARY KEY, source TEXT, country TEXT, seniority TEXT);
.mode csv
.import --skip 1 ]] .. DIR .. [[/transitions.csv transitions
.import --skip 1 ]] .. DIR .. [[/leads.csv leads
CREATE INDEX transitions_lead ON transitions(lead_id, stage);
ANALYZE;
]])
  script:close()
  assert(sh("sqlite3 " .. DIR .. "/funnel.db.tmp < " .. DIR .. "/import.sql"), "sqlite3 import failed")
  assert(os.rename(DIR .. "/funnel.db.tmp", DIR .. "/funnel.db"))
  for _, name in ipairs(gen.files) do os.remove(DIR .. "/gen/" .. name .. ".csv") end   -- events alone are 0.5 GB
end

-- The same counts in SQL: each lead's furthest chain stage (reaching one passes the ones before),
-- whether it was disqualified or nurtured, joined to its dimensions, grouped.
local QUERY = [[
SELECT l.source, l.country, l.seniority, COUNT(*) AS leads,
  SUM(p.top >= 1) AS lead, SUM(p.top >= 2) AS mql, SUM(p.top >= 3) AS sal, SUM(p.top >= 4) AS sql,
  SUM(p.top >= 5) AS opportunity, SUM(p.top >= 6) AS customer, SUM(p.dq) AS disqualified, SUM(p.nu) AS nurture,
  1.0 * SUM(p.top >= 4) / SUM(p.top >= 2) AS mql_to_sql, 1.0 * SUM(p.top >= 6) / SUM(p.top >= 2) AS mql_to_customer
FROM (SELECT lead_id,
        MAX(CASE stage WHEN 'lead' THEN 1 WHEN 'mql' THEN 2 WHEN 'sal' THEN 3 WHEN 'sql' THEN 4
                       WHEN 'opportunity' THEN 5 WHEN 'customer' THEN 6 ELSE 0 END) AS top,
        MAX(stage = 'disqualified') AS dq, MAX(stage = 'nurture') AS nu
      FROM transitions GROUP BY lead_id) p
JOIN leads l ON l.id = p.lead_id
GROUP BY 1, 2, 3;
]]

local function sqlite_run()
  local q = assert(io.open(DIR .. "/query.sql", "wb"))
  q:write(".timer on\n.mode csv\n.output " .. DIR .. "/sqlite_out.csv\n" .. QUERY)
  q:close()
  local p = assert(io.popen("sqlite3 " .. DIR .. "/funnel.db < " .. DIR .. "/query.sql 2>&1"))
  local text = p:read("*a")
  p:close()
  local real, user, sys = text:match("Run Time: real ([%d.]+) user ([%d.]+) sys ([%d.]+)")
  assert(real, "sqlite3 gave no timing: " .. text)
  local rows = {}
  for line in io.lines(DIR .. "/sqlite_out.csv") do
    local plain = line:gsub('"', "")   -- sqlite3 quotes empty values
    local s, c, n, leads, mql, customer = plain:match("^([^,]*),([^,]*),([^,]*),(%d+),%d+,(%d+),%d+,%d+,%d+,(%d+)")
    if s then rows[s .. "|" .. c .. "|" .. n] = { leads = tonumber(leads), mql = tonumber(mql),
      customer = tonumber(customer) } end
  end
  return (tonumber(user) + tonumber(sys)) * 1000, tonumber(real) * 1000, rows
end

if not sh("command -v sqlite3 >/dev/null 2>&1") then
  print("bench: funnel: skipped (no sqlite3: .ci/install-deps bench)")
  return
end
make_data()

local tr = assert(core.read_csv(DIR .. "/transitions.csv"))
local leads = assert(core.read_csv(DIR .. "/leads.csv"))
local f = funnel.new()
f:load(tr, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
local ntrans = #f
tr:close()
collectgarbage()
local by = { "source", "country", "seniority" }

local t0 = report.clock()
local rejected = f:prepare()
local t_prepare = (report.clock() - t0) * 1000
f:join(leads, "id")
if rejected > 0 then   -- sqlite3 counts every row: the answers will differ by these
  print(string.format("bench: funnel: note: %d transition rows rejected by the checks", rejected))
end

local function best_of(n, fn)
  local best = math.huge
  for _ = 1, n do
    local t = report.clock()
    fn()
    best = math.min(best, (report.clock() - t) * 1000)
  end
  return best
end

local result
local t_counts = best_of(3, function() result = f:aggregate{ by = by, velocity = false, sla = false } end)
local t_full = best_of(1, function() f:aggregate{ by = by } end)
local sq_cpu, sq_real, sq_rows = sqlite_run()

-- same answers: every group's leads, mql and customer counts
local tab = result:totable()
local groups, mismatches = 0, 0
for _, g in ipairs(tab.groups) do
  local key = (g.key.source or "") .. "|" .. (g.key.country or "") .. "|" .. (g.key.seniority or "")
  local s = sq_rows[key]
  groups = groups + 1
  if not s or s.leads ~= g.leads or s.mql ~= g.reached.mql or s.customer ~= g.reached.customer then
    mismatches = mismatches + 1
  end
end
local label = string.format("%.1fM transitions, %d groups of 3 dims", ntrans / 1e6, groups)
report.line("funnel counts+conversions, " .. label, t_counts, "ms", "sqlite3", sq_cpu, "ms", false)
report.line("funnel check+counts (prepare+aggregate), " .. label, t_prepare + t_counts, "ms", "sqlite3",
  sq_cpu, "ms", false)
report.line("funnel full (counts, velocity p50/p90, SLA, reasons), " .. label, t_full, "ms", "sqlite3 counts",
  sq_cpu, "ms", false)
print(string.format("bench: funnel: sqlite3 wall %.0f ms; answers %s (%d of %d groups differ)",
  sq_real, mismatches == 0 and "agree" or "DIFFER", mismatches, groups))
