-- DuckDB as the baseline: rules/mql.lua with its event features, written as one SQL query, against
-- leadq on the same generated files. DuckDB (@duckdb/node-api from npm, run by node) is installed
-- into the build folder by this bench only. The answers are checked first: every lead's total,
-- status and grade from DuckDB must equal leadq's before any ratio is printed.
-- Then, at LEADQ_BENCH_DUCKDB_LEADS (1M) leads, wall time, the least of 3 runs:
--   scoring with event features in memory (both sides hold the loaded tables), 1 and 2 threads;
--   end to end, leads.csv and events.csv in, scored CSV out, 1 and 2 threads;
--   the same from a snapshot of both files (leadq load --save), against DuckDB from the CSV files.
local report = require("report")
local leadq = require("leadq")

local BUILD = os.getenv("LEADQ_BUILD") or "build"
local N = tonumber(os.getenv("LEADQ_BENCH_DUCKDB_LEADS")) or 1000000
local DIR = string.format("%s/bench-flat-%d", BUILD, N)   -- the sample bench_features makes too
local PREFIX = BUILD .. "/duckdb"
local AS_OF = "2026-11-01T00:00:00Z"
local RUNS = 3


local function skip(why)
  print("bench: duckdb: skipped (" .. why .. ")")
end

local function run_bench()
  local installed, why = report.duckdb_installed(PREFIX)
  if not installed then return skip(why) end
  assert(report.sample(DIR, N, 42), "leadq.gen is needed to make the sample")
  local as_of = leadq.parse_time(AS_OF)

  -- ---- rules/mql.lua as SQL (tests/bench/mql_plain.lua is the same model in plain Lua) ----
  local function read_list(path)
    local out = {}
    for line in io.lines(path) do
      local value = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
      if value ~= "" then out[#out + 1] = value:lower() end
    end
    return out
  end
  local function quoted(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = "'" .. v:lower():gsub("'", "''") .. "'" end
    return "(" .. table.concat(out, ", ") .. ")"
  end
  local NONWORD = "[^a-z0-9\\x{80}-\\x{10ffff}]"
  local function words(col, list)   -- a whole word, as leadq's `word` test
    return string.format("regexp_matches(%s, '(^|%s)(%s)($|%s)')", col, NONWORD, table.concat(list, "|"), NONWORD)
  end
  local function contains_any(col, list)
    local out = {}
    for i, v in ipairs(list) do out[i] = string.format("contains(%s, '%s')", col, v) end
    return "(" .. table.concat(out, " OR ") .. ")"
  end
  local today = math.floor(as_of / 86400)
  local function within(days) return string.format("d > %d", today - days) end
  local lists = {
    industries = { "Software", "IT Services", "Financial Services", "Professional Services", "Telecommunications",
      "Media" },
    countries = { "US", "GB", "CA", "AU", "DE", "NL", "IE", "SE", "DK", "NO", "CH" },
    free = read_list("rules/lists/free_email_domains.txt"),
    competitors = read_list("rules/lists/competitors.txt"),
    competitor_names = { "ScoreForce", "LeadLyft", "FunnelWise", "PipelinePro", "QualifyHQ" },
    fake = { "mailinator.com", "example.com", "test.com", "asdf.com", "fake.com", "xxx.com", "none.com", "a.com" },
    junk = { "n/a", "na", "none", "-", "test", "asdf", "xxx", "self" },
  }
  local function query(leads_src, events_src)
    return table.concat({
      "WITH e AS (SELECT lead_id, type, epoch(\"at\") AS t, floor(epoch(\"at\") / 86400) AS d FROM " .. events_src,
      string.format("  WHERE epoch(\"at\") <= %d),", as_of),
      "f AS (SELECT lead_id,",
      "  count(*) FILTER (WHERE type = 'demo_request' AND " .. within(30) .. ") AS demo_requests_30d,",
      "  count(*) FILTER (WHERE type = 'pricing_view' AND " .. within(30) .. ") AS pricing_views_30d,",
      "  count(*) FILTER (WHERE type = 'webinar_attended' AND " .. within(90) .. ") AS webinars_90d,",
      "  least(2 * count(*) FILTER (WHERE type IN ('email_open', 'email_click') AND " .. within(90) .. "), 20)",
      "    AS email_points_90d,",
      string.format("  sum(CASE WHEN type IN ('pricing_view', 'demo_request') THEN pow(2, -(%d - t) / %d) ELSE 0 END)",
        as_of, 14 * 86400),
      "    AS buying_heat,",
      "  count(*) FILTER (WHERE type = 'careers_view' AND " .. within(30) .. ") AS careers_views_30d,",
      "  count(*) FILTER (WHERE type = 'unsubscribe') AS unsubscribes",
      "  FROM e GROUP BY lead_id),",
      "l AS (SELECT id, lower(title) AS ti, lower(seniority) AS se, lower(email_domain) AS dom,",
      "  lower(company) AS co, lower(department) AS dep, lower(source) AS src, lower(timeline) AS tl,",
      "  lower(industry) AS ind, lower(country) AS ctry, employees AS emp, budget AS bud,",
      string.format("  (%d - epoch(created_at)) / 86400 AS days,", as_of),
      "  coalesce(demo_requests_30d, 0) AS demo, coalesce(pricing_views_30d, 0) AS pricing,",
      "  coalesce(webinars_90d, 0) AS webinars, coalesce(email_points_90d, 0) AS email,",
      "  coalesce(buying_heat, 0) AS heat, coalesce(careers_views_30d, 0) AS careers,",
      "  coalesce(unsubscribes, 0) AS unsubs",
      "  FROM " .. leads_src .. " AS leads LEFT JOIN f ON f.lead_id = leads.id),",
      "s AS (SELECT id,",
      "  least(",
      "    (CASE WHEN se = 'c_level' OR (se IS NULL AND " .. words("ti", { "chief", "ceo", "cmo", "cro", "founder",
        "owner" }) .. ") THEN 20 ELSE 0 END)",
      "  + (CASE WHEN se = 'vp' OR (se IS NULL AND " .. words("ti", { "vp", "svp", "vice president" })
        .. ") THEN 18 ELSE 0 END)",
      "  + (CASE WHEN se = 'director' OR (se IS NULL AND " .. words("ti", { "director", "head of" })
        .. ") THEN 12 ELSE 0 END)",
      "  + (CASE WHEN se = 'manager' THEN 6 ELSE 0 END)",
      "  + (CASE WHEN dep IN ('marketing', 'sales', 'executive') OR (dep IS NULL AND "
        .. words("ti", { "marketing", "demand generation", "growth", "revenue", "sales" }) .. ") THEN 8 ELSE 0 END)",
      "  + (CASE WHEN emp BETWEEN 200 AND 4999 THEN 15 ELSE 0 END) + (CASE WHEN emp >= 5000 THEN 10 ELSE 0 END)",
      "  + (CASE WHEN emp BETWEEN 50 AND 199 THEN 5 ELSE 0 END)",
      "  + (CASE WHEN ind IN " .. quoted(lists.industries) .. " THEN 10 ELSE 0 END)",
      "  + (CASE WHEN ctry IN " .. quoted(lists.countries) .. " THEN 5 ELSE 0 END)",
      "  + (CASE WHEN bud >= 25000 THEN 10 ELSE 0 END) + (CASE WHEN bud >= 5000 AND bud < 25000 THEN 5 ELSE 0 END),",
      "  50) AS fit,",
      "  least(",
      "    (CASE WHEN days >= 0 AND days <= 30 THEN 10 ELSE 0 END)",
      "  + (CASE WHEN src IN ('referral', 'partner') THEN 20 ELSE 0 END)",
      "  + (CASE WHEN src IN ('event', 'webinar') THEN 10 ELSE 0 END)",
      "  + (CASE WHEN tl IN ('0-3 months', '3-6 months') THEN 15 ELSE 0 END)",
      "  + (CASE WHEN demo >= 1 THEN 30 ELSE 0 END) + (CASE WHEN pricing >= 3 THEN 15 ELSE 0 END)",
      "  + (CASE WHEN webinars >= 1 THEN 10 ELSE 0 END) + (CASE WHEN email >= 10 THEN 10 ELSE 0 END)",
      "  + (CASE WHEN heat >= 1 THEN 10 ELSE 0 END),",
      "  60) AS engagement,",
      "  greatest(",
      "    (CASE WHEN careers >= 1 THEN -10 ELSE 0 END)",
      "  + (CASE WHEN dom IN " .. quoted(lists.free) .. " THEN -15 ELSE 0 END)",
      "  + (CASE WHEN " .. contains_any("ti", { "job seeker", "seeking", "looking for", "open to work", "unemployed",
        "between jobs", "career changer", "recent graduate" }) .. " THEN -30 ELSE 0 END)",
      "  + (CASE WHEN emp < 10 THEN -10 ELSE 0 END) + (CASE WHEN co IS NULL THEN -10 ELSE 0 END)",
      "  + (CASE WHEN co IN " .. quoted(lists.junk) .. " THEN -20 ELSE 0 END)",
      "  + (CASE WHEN tl = 'no plans' THEN -10 ELSE 0 END) + (CASE WHEN days > 180 THEN -5 ELSE 0 END),",
      "  -60) AS negative,",
      "  (dom IN " .. quoted(lists.competitors) .. " OR co IN " .. quoted(lists.competitor_names) .. ")",
      "  OR (se = 'student' OR " .. words("ti", { "student", "intern", "phd candidate" }) .. ")",
      "  OR dom = 'helixrev.com' OR dom IN " .. quoted(lists.fake) .. " OR unsubs >= 1 AS disqualified",
      "  FROM l)",
      "SELECT id, fit + engagement + negative AS total,",
      "  CASE WHEN coalesce(disqualified, false) THEN 'disqualified' WHEN fit + engagement + negative >= 60 THEN 'mql'",
      "    WHEN fit + engagement + negative >= 30 THEN 'nurture' ELSE 'cold' END AS status,",
      "  (CASE WHEN fit >= 40 THEN 'A' WHEN fit >= 28 THEN 'B' WHEN fit >= 15 THEN 'C' ELSE 'D' END)",
      "  || (CASE WHEN engagement >= 35 THEN '1' WHEN engagement >= 20 THEN '2' WHEN engagement >= 10 THEN '3'",
      "    ELSE '4' END) AS grade",
      "FROM s",
    }, "\n")
  end

  local leads_csv, events_csv = DIR .. "/leads.csv", DIR .. "/events.csv"
  local read_leads = string.format("read_csv('%s')", leads_csv)
  local read_events = string.format("read_csv('%s', types = { 'lead_id': 'VARCHAR', 'at': 'TIMESTAMPTZ' })",
    events_csv)
  local LOAD = { "SET TimeZone = 'UTC'", "CREATE TABLE leads AS SELECT * FROM " .. read_leads,
    "CREATE TABLE events AS SELECT * FROM " .. read_events }

  -- node run.mjs with a job; its one JSON line of timings as a Lua table
  local job_path = os.tmpname()
  local function duckdb(threads, setup, timed)
    local function js(s) return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"' end
    local parts = {}
    for i, s in ipairs(setup) do parts[i] = js(s) end
    local items = {}
    for i, t in ipairs(timed) do
      local before = {}
      for k, s in ipairs(t.before or {}) do before[k] = js(s) end
      items[i] = string.format('{"name":%s,"sql":%s,"runs":%d,"before":[%s]}', js(t.name), js(t.sql), t.runs or 1,
        table.concat(before, ","))
    end
    local f = assert(io.open(job_path, "w"))
    f:write(string.format('{"threads":%d,"setup":[%s],"timed":[%s]}', threads, table.concat(parts, ","),
      table.concat(items, ",")))
    f:close()
    local p = assert(io.popen(string.format("node tests/bench/duckdb/run.mjs '%s' '%s'", PREFIX, job_path)))
    local line = p:read("*a")
    p:close()
    local out = {}
    for name, v in line:gmatch('"([^"]+)":([%d.e+-]+)') do out[name] = tonumber(v) end
    return out
  end

  -- ---- the same answers ----
  local duck_out = os.tmpname()
  duckdb(2, LOAD, { { name = "write", sql = string.format("COPY (%s ORDER BY id) TO '%s' (HEADER, DELIMITER ',')",
    query("leads", "events"), duck_out) } })
  local leads = assert(leadq.read_csv(leads_csv))
  local events = assert(leadq.read_events(events_csv))
  local model = assert(leadq.load_model("rules/mql.lua"))
  local mine = assert(model:score(leads, events, { as_of = AS_OF }))
  local theirs = assert(leadq.read_csv(duck_out, { schema = { id = "text", status = "text", grade = "text" } }))
  os.remove(duck_out)
  assert(#theirs == #leads, string.format("DuckDB scored %d leads, leadq %d", #theirs, #leads))
  local row_of, ids = {}, leads:column("id")
  for i = 1, #ids do row_of[ids[i]] = i end
  local t_id, t_total, t_status, t_grade = theirs:column("id"), theirs:column("total"), theirs:column("status"),
    theirs:column("grade")
  local m_total, m_status, m_grade = mine:column("total"), mine:column("status"), mine:column("grade")
  local statuses = {}
  for k = 1, #theirs do
    local r = assert(row_of[t_id[k]], "DuckDB gave a lead leadq does not have: " .. tostring(t_id[k]))
    if t_total[k] ~= m_total[r] or t_status[k] ~= m_status[r] or t_grade[k] ~= m_grade[r] then
      error(string.format("DuckDB and leadq disagree on lead %s: %s %s %s against %s %s %s", t_id[k],
        tostring(t_total[k]), t_status[k], t_grade[k], tostring(m_total[r]), m_status[r], m_grade[r]))
    end
    statuses[t_status[k]] = (statuses[t_status[k]] or 0) + 1
  end
  print(string.format("bench: DuckDB agrees with leadq on the total, status and grade of all %d leads "
    .. "(mql %d, nurture %d, cold %d, disqualified %d)", #theirs, statuses.mql or 0, statuses.nurture or 0,
    statuses.cold or 0, statuses.disqualified or 0))
  theirs:close()
  mine:close()

  -- ---- scoring in memory, with event features ----
  -- leadq's runs are short: 1 and 2 threads interleaved, the least of 7 each, so that a busy moment of
  -- the machine does not fall on one of them only
  local function leadq_score()
    local best = { math.huge, math.huge }
    for _ = 1, 7 do
      for threads = 1, 2 do
        local t0 = report.wall()
        local res = assert(model:score(leads, events, { as_of = AS_OF, threads = threads }))
        best[threads] = math.min(best[threads], report.wall() - t0)
        res:close()
      end
    end
    return best[1], best[2]
  end
  local duck_mem = {}
  for _, th in ipairs({ 1, 2 }) do
    duck_mem[th] = duckdb(th, LOAD, { { name = "score", runs = RUNS, before = { "DROP TABLE IF EXISTS scored" },
      sql = "CREATE TABLE scored AS " .. query("leads", "events") } }).score
  end
  local mem1, mem2 = leadq_score()
  local nev = #events
  events:close()
  leads:close()
  collectgarbage("collect")
  local what = string.format("score %d leads + %d events in memory (rules/mql.lua), ", N, nev)
  report.line(what .. "1 thread", N / mem1 / 1e6, "M leads/s", "DuckDB 1 thread", N / duck_mem[1] / 1e6,
    "M leads/s", true)
  report.line(what .. "2 threads", N / mem2 / 1e6, "M leads/s", "DuckDB 2 threads", N / duck_mem[2] / 1e6,
    "M leads/s", true)
  report.line(what .. "2 threads against 1", N / mem2 / 1e6, "M leads/s", "leadq 1 thread", N / mem1 / 1e6,
    "M leads/s", true)

  -- ---- end to end: CSV files in, scored CSV out ----
  local out_csv = os.tmpname()
  local function leadq_e2e(threads)
    return report.best_of(RUNS, function()
      local t0 = report.wall()
      assert(os.execute(string.format("%s/leadq score --rules rules/mql.lua --leads '%s' --events '%s' --as-of %s "
        .. "--threads %d --out '%s' >/dev/null", BUILD, leads_csv, events_csv, AS_OF, threads, out_csv)))
      return report.wall() - t0
    end)
  end
  local duck_e2e = {}
  for _, th in ipairs({ 1, 2 }) do
    local duck = duckdb(th, { "SET TimeZone = 'UTC'" }, { { name = "e2e", runs = RUNS,
      sql = string.format("COPY (%s) TO '%s' (HEADER, DELIMITER ',')", query(read_leads, read_events), out_csv) } })
    duck_e2e[th] = duck.e2e
    local mine_s = leadq_e2e(th)
    local plural = th == 1 and "" or "s"
    report.line(string.format("CSV in, scored CSV out, %d leads with events, %d thread%s", N, th, plural),
      mine_s, "s", string.format("DuckDB %d thread%s", th, plural), duck.e2e, "s", false)
  end
  -- the same run from a snapshot of the export (leadq load --save, written once, not timed), against
  -- DuckDB's run from the CSV files: a repeated run on the same export
  local snap = out_csv .. ".lqs"
  assert(os.execute(string.format("%s/leadq load --leads '%s' --events '%s' --save '%s' >/dev/null", BUILD, leads_csv,
    events_csv, snap)))
  for _, th in ipairs({ 1, 2 }) do
    local mine_s = report.best_of(RUNS, function()
      local t0 = report.wall()
      assert(os.execute(string.format("%s/leadq score --rules rules/mql.lua --leads '%s' --as-of %s --threads %d "
        .. "--out '%s' >/dev/null", BUILD, snap, AS_OF, th, out_csv)))
      return report.wall() - t0
    end)
    local plural = th == 1 and "" or "s"
    report.line(string.format("snapshot in, scored CSV out, %d leads with events, %d thread%s", N, th, plural),
      mine_s, "s", string.format("DuckDB from the CSV files, %d thread%s", th, plural), duck_e2e[th], "s", false)
  end
  os.remove(snap)
  os.remove(out_csv)
  os.remove(job_path)
end

run_bench()
