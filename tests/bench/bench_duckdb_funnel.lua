-- DuckDB as the funnel's baseline: `leadq funnel --format csv` by 3 lead dimensions (source, country,
-- seniority) from the generated transitions and leads files, against one SQL query that computes the
-- same from the same two files: per group, the leads that reached each stage (a chain stage counts
-- the ones before it, as the funnel's `implied` default), the conversion of each reported pair, and
-- the median and p90 days between first entries. DuckDB (@duckdb/node-api from npm, run by node) is
-- installed into the build folder as bench_duckdb.lua installs it.
--
-- The SQL takes every row as valid: the funnel's walk of each lead's rows against the allowed
-- transitions is a state machine SQL has no plain form for, so the bench first checks that leadq
-- rejects no row of this sample. Then, before any ratio, every group's counts and conversions must
-- equal leadq's, and its velocity too: to the printed digit where leadq's quantiles are exact (a
-- cell of up to 256 leads); past that leadq's come from its sketch, and only their presence is
-- compared.
-- Timed: leadq's command, wall time of the whole process; DuckDB's COPY (query) TO a CSV file, the
-- time inside DuckDB. 1 and 2 threads, runs interleaved, the least of 3 each.
local report = require("report")
local core = require("leadq.core")
local funnel = require("leadq.funnel")

local BUILD = os.getenv("LEADQ_BUILD") or "build"
local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local DIR = BUILD .. "/bench"   -- the sample of this build folder (bench_score.lua makes build/bench)
local PREFIX = BUILD .. "/duckdb"
local RUNS = 3
local BY = { "source", "country", "seniority" }
local CHAIN = funnel.DEFAULT_STAGES
local EXACT = 256   -- leadq's quantiles are exact up to this many durations a cell (LQ_SKETCH_EXACT)


local function skip(why)
  print("bench: duckdb funnel: skipped (" .. why .. ")")
end

-- The pairs leadq reports (lq_funnel_output_pairs): consecutive chain stages, then mql to each later
-- (0-based chain indices).
local function pairs_of(chain)
  local out = {}
  for i = 1, #chain - 1 do out[#out + 1] = { i - 1, i } end
  for j = 3, #chain - 1 do out[#out + 1] = { 1, j } end   -- mql to sal is consecutive already
  return out
end

local function funnel_sql(transitions, leads)
  local stage_rank, firsts = {}, {}
  for i, s in ipairs(CHAIN) do
    stage_rank[#stage_rank + 1] = string.format("WHEN '%s' THEN %d", s, i - 1)
    firsts[#firsts + 1] = string.format("floor(min(t) FILTER (WHERE stage = '%s')) AS t%d", s, i - 1)
  end
  local measures = {}
  for i, s in ipairs(CHAIN) do
    measures[#measures + 1] = string.format('count(*) FILTER (WHERE top >= %d) AS "%s"', i - 1, s)
  end
  measures[#measures + 1] = "count(*) FILTER (WHERE disq) AS disqualified"
  measures[#measures + 1] = "count(*) FILTER (WHERE nurt) AS nurture"
  local outer = { "source", "country", "seniority" }
  for _, s in ipairs(CHAIN) do outer[#outer + 1] = '"' .. s .. '"' end
  outer[#outer + 1] = "disqualified"
  outer[#outer + 1] = "nurture"
  for _, p in ipairs(pairs_of(CHAIN)) do
    local a, b = p[1], p[2]
    local name = CHAIN[a + 1] .. "_to_" .. CHAIN[b + 1]
    -- with implied stages, the leads that reached both are those that reached the later one
    measures[#measures + 1] = string.format("count(*) FILTER (WHERE top >= %d) / "
      .. "nullif(count(*) FILTER (WHERE top >= %d), 0) AS %s", b, a, name)
    measures[#measures + 1] = string.format("quantile_cont((t%d - t%d) / 86400, [0.5, 0.9]) "
      .. "FILTER (WHERE t%d >= t%d) AS q_%s", b, a, b, a, name)
    measures[#measures + 1] = string.format("count(*) FILTER (WHERE t%d >= t%d) AS n_%s", b, a, name)
    outer[#outer + 1] = name
    outer[#outer + 1] = string.format("q_%s[1] AS %s_median_days", name, name)
    outer[#outer + 1] = string.format("q_%s[2] AS %s_p90_days", name, name)
    outer[#outer + 1] = "n_" .. name
  end
  return table.concat({
    "WITH tr AS (SELECT lead_id, stage, epoch(\"at\") AS t FROM " .. transitions .. "),",
    "p AS (SELECT lead_id, max(CASE stage " .. table.concat(stage_rank, " ") .. " END) AS top,",
    "  bool_or(stage = 'disqualified') AS disq, bool_or(stage = 'nurture') AS nurt,",
    "  " .. table.concat(firsts, ",\n  "),
    "  FROM tr GROUP BY lead_id),",
    "g AS (SELECT l.source, l.country, l.seniority,",
    "  " .. table.concat(measures, ",\n  "),
    "  FROM p LEFT JOIN (SELECT id, source, country, seniority FROM " .. leads .. ") AS l ON l.id = p.lead_id",
    "  GROUP BY l.source, l.country, l.seniority)",
    "SELECT " .. table.concat(outer, ", ") .. " FROM g",
  }, "\n")
end

-- A CSV without quoted fields (the sample's values have no commas) as rows of fields.
local function read_rows(path)
  local rows = {}
  for line in io.lines(path) do
    assert(not line:find('"', 1, true), path .. ": a quoted field, which this reader does not take")
    local row = {}
    for v in (line .. ","):gmatch("([^,]*),") do row[#row + 1] = v end
    rows[#rows + 1] = row
  end
  return rows
end

-- Rows by their dimensions' values, each a map from column name to text.
local function by_group(rows)
  local header, out, n = rows[1], {}, 0
  for k = 2, #rows do
    local rec = {}
    for i, name in ipairs(header) do rec[name] = rows[k][i] end
    local key = {}
    for i, d in ipairs(BY) do key[i] = rec[d] end
    out[table.concat(key, "\0")] = rec
    n = n + 1
  end
  return out, n, header
end

local function check_answers(mine_path, theirs_path)
  local mine, nmine, header = by_group(read_rows(mine_path))
  local theirs, ntheirs = by_group(read_rows(theirs_path))
  assert(nmine == ntheirs, string.format("leadq gave %d groups, DuckDB %d", nmine, ntheirs))
  local want = { "source", "country", "seniority" }
  for _, s in ipairs(CHAIN) do want[#want + 1] = s end
  for _, s in ipairs({ "disqualified", "nurture" }) do want[#want + 1] = s end
  local pair_names = {}
  for _, p in ipairs(pairs_of(CHAIN)) do
    local name = CHAIN[p[1] + 1] .. "_to_" .. CHAIN[p[2] + 1]
    pair_names[#pair_names + 1] = name
    for _, c in ipairs({ name, name .. "_median_days", name .. "_p90_days" }) do want[#want + 1] = c end
  end
  assert(table.concat(header, ",") == table.concat(want, ","), "leadq's columns are not the ones the SQL computes: "
    .. table.concat(header, ","))
  local compared, sketched = 0, 0
  for key, m in pairs(mine) do
    local t = theirs[key]
    local where = key:gsub("%z", "/")
    assert(t, "DuckDB has no group " .. where)
    for i = 4, 3 + #CHAIN + 2 do
      local c = header[i]
      assert(m[c] == t[c], string.format("group %s, %s: leadq %s, DuckDB %s", where, c, m[c], t[c]))
    end
    for _, name in ipairs(pair_names) do
      local conv = t[name] ~= "" and string.format("%.4f", tonumber(t[name])) or ""
      assert(m[name] == conv, string.format("group %s, %s: leadq %s, DuckDB %s", where, name, m[name], conv))
      local n = tonumber(t["n_" .. name])
      for _, q in ipairs({ "_median_days", "_p90_days" }) do
        local mv, tv = tonumber(m[name .. q]), tonumber(t[name .. q])
        assert((mv == nil) == (tv == nil), string.format("group %s, %s%s: leadq %s, DuckDB %s", where, name, q,
          m[name .. q], t[name .. q]))
        if mv then
          -- exact: the same to the printed digit (0.005 either way of rounding). Sketched: leadq's is within
          -- 1% of the value at rank floor(q * (n - 1)), DuckDB's interpolates towards the next rank, which
          -- in a sparse tail lies several percent away: no bound between the two (test_funnel.lua holds
          -- the sketch to its own)
          if n <= EXACT then
            assert(math.abs(mv - tv) <= 0.0051, string.format("group %s, %s%s (%d leads): leadq %s, DuckDB %.4f",
              where, name, q, n, m[name .. q], tv))
            compared = compared + 1
          else
            sketched = sketched + 1
          end
        end
      end
    end
  end
  return nmine, compared, sketched
end

local function run_bench()
  local installed, why = report.duckdb_installed(PREFIX)
  if not installed then return skip(why) end
  assert(report.sample(DIR, N, 42), "leadq.gen is needed to make the sample")
  local transitions_csv, leads_csv = DIR .. "/transitions.csv", DIR .. "/leads.csv"

  -- the SQL's one assumption: no row of this log breaks the funnel's rules
  do
    local f = funnel.new()
    local tr = assert(core.read_csv(transitions_csv))
    f:load(tr, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
    tr:close()
    f:prepare()
    local rejected = #f:rejects()
    f:close()
    if rejected > 0 then return skip(rejected .. " transition rows rejected, which the SQL would count") end
  end

  local read_transitions = string.format("read_csv('%s', types = { 'lead_id': 'VARCHAR', 'stage': 'VARCHAR', "
    .. "'at': 'TIMESTAMPTZ' })", transitions_csv)
  local read_leads = string.format("read_csv('%s', types = { 'id': 'VARCHAR', 'source': 'VARCHAR', "
    .. "'country': 'VARCHAR', 'seniority': 'VARCHAR' })", leads_csv)
  local sql = funnel_sql(read_transitions, read_leads)

  -- node run.mjs with a job: the least seconds of the timed statement
  local job_path, duck_out, mine_out = os.tmpname(), os.tmpname(), os.tmpname()
  local function duckdb(threads)
    local function js(s) return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"' end
    local f = assert(io.open(job_path, "w"))
    f:write(string.format('{"threads":%d,"setup":[%s],"timed":[{"name":"funnel","sql":%s,"runs":1}]}', threads,
      js("SET TimeZone = 'UTC'"), js(string.format("COPY (%s) TO '%s' (HEADER, DELIMITER ',')", sql, duck_out))))
    f:close()
    local p = assert(io.popen(string.format("node tests/bench/duckdb/run.mjs '%s' '%s'", PREFIX, job_path)))
    local line = p:read("*a")
    p:close()
    local t = tonumber(line:match('"funnel":([%d.e+-]+)'))
    assert(t, "DuckDB's run printed no time: " .. line)
    return t
  end
  local function leadq_funnel(threads)
    local t0 = report.wall()
    assert(os.execute(string.format("%s/leadq funnel --transitions '%s' --leads '%s' --by %s --format csv "
      .. "--threads %d > '%s'", BUILD, transitions_csv, leads_csv, table.concat(BY, ","), threads, mine_out)))
    return report.wall() - t0
  end

  -- the same answers first
  duckdb(2)
  leadq_funnel(2)
  local groups, exact, sketched = check_answers(mine_out, duck_out)
  print(string.format("bench: DuckDB agrees with leadq on the funnel of all %d groups by %s: every stage's count "
    .. "and conversion, and the %d exact velocity quantiles to the digit (%d more from leadq's sketch, not compared)",
    groups, table.concat(BY, ","), exact, sketched))

  local best_mine, best_duck = { math.huge, math.huge }, { math.huge, math.huge }
  for _ = 1, RUNS do
    for threads = 1, 2 do
      best_duck[threads] = math.min(best_duck[threads], duckdb(threads))
      best_mine[threads] = math.min(best_mine[threads], leadq_funnel(threads))
    end
  end
  for threads = 1, 2 do
    local size = N % 1000000 == 0 and string.format("%dM", N // 1000000) or string.format("%dk", N // 1000)
    report.line(string.format("funnel CSV -> CSV by 3 dims, %s leads, %d thread%s", size, threads,
      threads == 1 and "" or "s"), best_mine[threads], "s", "DuckDB", best_duck[threads], "s", false)
  end
  os.remove(job_path)
  os.remove(duck_out)
  os.remove(mine_out)
end

run_bench()
