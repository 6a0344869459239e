-- leadq.funnel: lifecycle stages, the transition log, funnel aggregation and its outputs.
--
--   local funnel = require("leadq.funnel")
--   local f = funnel.new()                       -- the default stages, or funnel.new{ stages = ... }
--   f:add("L1", "mql", "2024-01-03")             -- one transition: true, or nil, why it was rejected
--   f:load(tbl, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
--                                                -- a leadq.Table; stage_is = "mql" when it has no stage;
--                                                -- a third argument, threads: text lead ids interned
--                                                -- on a thread of their own (the same log)
--   f:add_status(ids, statuses, at)              -- a model's verdicts: leads that pass reach mql at `at`
--   f:add_status(results, at)                    -- the same from model:score's results (id, status)
--   f:join(leads_tbl, "id")                      -- lead dimensions, joined once and kept
--   f:prepare(), f:rejects()                     -- every rejected row: file, line, lead, stage, at, message
--   f:seal()                                     -- checked, and what only loading read freed: no more rows
--   local r = f:aggregate{ by = { "source", "mql_month" } }   -- also leads =, id =, velocity =, sla =
--   local s = r:serialize(); r2:merge(s)         -- partial results of leads split across processes
--   local t = funnel.report(r, { spend = spend_rows })   -- a plain Lua table
--   print(funnel.format(t, "csv"))              -- "csv", "json" or "table" (aligned text)
--
-- Options of funnel.new (unknown keys raise): stages (the chain, in order; default lead, mql, sal,
-- sql, opportunity, customer), disqualified and nurture (side stages; false drops them), mql,
-- transitions ({ start = {...}, stage = { allowed next stages } }, replacing the default: forward
-- along the chain, skipping allowed; any open stage to disqualified or nurture; nurture back into
-- the chain), implied (default true: reaching a stage counts the chain stages before it),
-- sla_days (default 2: the mql to first-sales-stage hand-off).
--
-- Checking: each lead's rows are put in time order (ties in log order) and walked; a row is
-- rejected, with its file and line, when its stage or time is unknown, disqualified has no
-- reason, or the move is not allowed ("out of order" when it goes back along the chain). Rejected
-- rows count nowhere. Lines are counted as records (a quoted line break would shift them).
--
-- Dimensions: columns (category or boolean) of the joined leads table, <stage>_month and
-- <stage>_week (the cohort: month, or the Monday of the week, the lead first entered that stage),
-- and owner (the lead's latest owner in the log; the SLA charges each hand-off to its own owner).
--
-- Measures, per group: leads reaching each stage; conversion a -> b (leads that reached both / that
-- reached a); velocity, the median and p90 days from a's first entry to b's, over leads that entered
-- both themselves (times to the second); the SLA per hand-off (each MQL episode, a recycled lead's
-- again, timed from its own mql to its first later chain stage: handed off within, late, still
-- waiting past it, the breaches listed); disqualification reasons; leads recycled to nurture; cost per mql, sql and
-- customer from spend (source x month) when grouped by source (and at most one _month cohort).
--
-- The aggregation runs in C (csrc/funnel.c). Counts and conversions are exact. Median and p90 are
-- exact for a group of up to 256 durations (interpolated between ranks, as a spreadsheet, pandas or
-- DuckDB's quantile_cont give them; velocity's `exact` is true); past that they come from a log-bucket
-- sketch, within 1% of the value at rank floor(q * (n - 1)). Results of parts split by lead merge into
-- exactly the whole's result, sketches and exact values included.
local core = require("leadq.core")
local json = require("leadq.json")
local raise = require("leadq.util").raise   -- errors blame the first caller outside leadq

local type, pairs, ipairs, error, tostring, tonumber, setmetatable = type, pairs, ipairs, error, tostring, tonumber,
  setmetatable
local getmetatable, math_floor, math_max = getmetatable, math.floor, math.max
local concat, sort = table.concat, table.sort
local format, rep = string.format, string.rep

local _M = { _VERSION = "0.1.0" }

_M.DEFAULT_STAGES = { "lead", "mql", "sal", "sql", "opportunity", "customer" }
_M.DEFAULT_SLA_DAYS = 2

local OPTIONS = {
  stages = "a list of stage names, in funnel order",
  disqualified = "the name of the disqualified stage, or false",
  nurture = "the name of the nurture (recycled) stage, or false",
  transitions = "a table from stage (or 'start') to the list of stages it may move to",
  implied = "true (default): reaching a stage counts the stages before it",
  mql = "the stage that counts as MQL",
  sla_days = "days from mql to the first later stage that the hand-off may take, or false",
  sla_working = "the reactions' SLA in working hours (reactions:funnel_sla()): { hours =, calendar = }",
}

local is_list = require("leadq.util").is_list

local function check_name(name, what)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") or #name > 47 then
    raise(format("%s: a stage name is a word of letters, digits and '_' (got %s)", what, tostring(name)))
  end
  if name == "start" then
    raise(format("%s: 'start' is reserved (transitions.start lists the stages a lead may start at)", what))
  end
  return name
end

-- The allowed transitions when none are declared: a lead starts at any chain stage or disqualified
-- (junk removed at intake); forward along the chain (skipping is fine), any open stage to
-- disqualified or nurture, nurture back into the chain, disqualified to nurture.
local function default_transitions(chain, disq, nurture)
  local t = { start = { disq or nil } }
  for i, s in ipairs(chain) do
    t.start[#t.start + 1] = s
    local to = {}
    for j = i + 1, #chain do to[#to + 1] = chain[j] end
    if i < #chain then
      if disq then to[#to + 1] = disq end
      if nurture then to[#to + 1] = nurture end
    end
    t[s] = to
  end
  if nurture then
    local to = {}
    for i = 1, #chain - 1 do to[#to + 1] = chain[i] end
    if disq then to[#to + 1] = disq end
    t[nurture] = to
  end
  if disq then t[disq] = nurture and { nurture } or {} end
  return t
end

-- The stage declarations, checked, as the C core takes them.
function _M.config(options)
  options = options or {}
  if type(options) ~= "table" then raise("funnel options must be a table") end
  for k in pairs(options) do
    if not OPTIONS[k] then raise(format("unknown funnel option '%s'", tostring(k))) end
  end
  local chain = options.stages or _M.DEFAULT_STAGES
  if not is_list(chain) or #chain == 0 then raise("funnel option 'stages' must be " .. OPTIONS.stages) end
  if #chain > 10 then raise("funnel option 'stages': at most 10 stages in the chain") end
  local known, stages = {}, {}
  local function declare(name, what)
    check_name(name, what)
    if known[name] then raise(format("%s: stage '%s' is declared twice", what, name)) end
    known[name] = #stages + 1
    stages[#stages + 1] = name
  end
  for _, s in ipairs(chain) do declare(s, "stages") end
  local disq, nurture = options.disqualified, options.nurture
  if disq == nil then disq = "disqualified" end
  if nurture == nil then nurture = "nurture" end
  if disq then declare(disq, "disqualified") end
  if nurture then declare(nurture, "nurture") end
  local mql = options.mql
  if mql == nil then mql = known.mql and "mql" or nil end
  if mql and (not known[mql] or known[mql] > #chain) then
    raise(format("funnel option 'mql': '%s' is not a stage of the chain", tostring(mql)))
  end
  local sla = options.sla_days
  if sla == nil then sla = _M.DEFAULT_SLA_DAYS end
  if sla and (type(sla) ~= "number" or sla <= 0) then raise("funnel option 'sla_days' must be a positive number") end
  -- working hours (leadq.reactions' sla): the service's clock, so that both count the same breaches
  local working = options.sla_working
  if working ~= nil then
    if options.sla_days ~= nil then raise("funnel options 'sla_days' and 'sla_working' exclude each other") end
    if type(working) ~= "table" or type(working.hours) ~= "number" or working.hours <= 0 or
        working.calendar == nil then
      raise("funnel option 'sla_working' must be " .. OPTIONS.sla_working)
    end
    sla = working.hours / 24
  end
  local transitions = options.transitions or default_transitions(chain, disq, nurture)
  if type(transitions) ~= "table" then raise("funnel option 'transitions' must be " .. OPTIONS.transitions) end
  local allowed = {}
  for from, list in pairs(transitions) do
    if from ~= "start" and not known[from] then
      raise(format("funnel option 'transitions': unknown stage '%s'", tostring(from)))
    end
    if not is_list(list) then
      raise(format("funnel option 'transitions': '%s' must map to a list of stages", from))
    end
    for _, to in ipairs(list) do
      if not known[to] then
        raise(format("funnel option 'transitions': '%s' to unknown stage '%s'", from, tostring(to)))
      end
      allowed[#allowed + 1] = { from == "start" and "" or from, to }
    end
  end
  local implied = options.implied
  if implied == nil then implied = true end
  return {
    stages = stages, nchain = #chain, allowed = allowed, implied = implied and true or false,
    disqualified = disq or nil, nurture = nurture or nil, mql = mql, sla_days = sla or nil,
    sla_calendar = working and working.calendar or nil,
  }
end

-- A model's verdicts move leads: every lead whose status passes reaches `opts.stage` (mql by
-- default) at `at` (one time, or a list with one per lead). A status passes when it is true, the
-- stage's name, or a number >= opts.threshold. Either lists:
--   f:add_status(ids, statuses, at [, { stage =, threshold = }])
-- or the results table of model:score (a leadq.Table; opts.id and opts.status name its columns):
--   f:add_status(results, at [, { stage =, threshold =, id = "id", status = "status" }])
-- Returns how many transitions were added and how many of those were rejected.
local STATUS_OPTIONS = { stage = true, threshold = true, id = true, status = true }

local function add_status(f, ids, statuses, at, opts)
  local n
  if core.is_table(ids) then
    local results
    results, at, opts = ids, statuses, at
    opts = opts or {}
    if type(opts) ~= "table" then error("add_status(results, at[, opts]): opts must be a table", 2) end
    local id_col, status_col = opts.id or "id", opts.status or "status"
    if not results:has(id_col) then error(format("add_status: the results have no column '%s'", id_col), 2) end
    if not results:has(status_col) then
      error(format("add_status: the results have no column '%s'", status_col), 2)
    end
    ids, n = results:column(id_col)
    statuses = results:column(status_col)
  else
    if type(ids) ~= "table" or type(statuses) ~= "table" then
      error("add_status(ids, statuses, at[, opts]): ids and statuses must be lists", 2)
    end
    if #ids ~= #statuses then
      error(format("add_status: %d ids but %d statuses", #ids, #statuses), 2)
    end
    n = #ids
    opts = opts or {}
    if type(opts) ~= "table" then error("add_status(ids, statuses, at[, opts]): opts must be a table", 2) end
  end
  for k in pairs(opts) do
    if not STATUS_OPTIONS[k] then error(format("add_status: unknown option '%s'", tostring(k)), 2) end
  end
  local stage = opts.stage or "mql"
  local threshold = opts.threshold
  local per_lead = type(at) == "table"
  if at == nil then error("add_status: the time of the scoring is missing", 2) end
  local added, rejected = 0, 0
  for i = 1, n do
    local s = statuses[i]
    local pass = s == true or s == stage
    if type(s) == "number" then
      if not threshold then error("add_status: numeric statuses need opts.threshold", 2) end
      pass = s >= threshold
    end
    if pass then
      local ok = f:add(ids[i], stage, per_lead and at[i] or at)
      added = added + 1
      if not ok then rejected = rejected + 1 end
    end
  end
  return added, rejected
end

do   -- Lua methods join the C ones
  local index = getmetatable(core.funnel_new{ stages = { "lead" }, allowed = {} }).__index
  index.add_status = add_status
end

function _M.new(options)
  return core.funnel_new(_M.config(options))
end

local FUNNEL_META = getmetatable(core.funnel_new{ stages = { "lead" }, allowed = {} })
function _M.is_funnel(x)
  return type(x) == "userdata" and getmetatable(x) == FUNNEL_META
end

_M.parse = core.funnel_parse   -- a result from r:serialize(), or nil, message

-- Merges a list of serialized results (strings) or results into one.
function _M.merge(parts)
  if type(parts) ~= "table" or #parts == 0 then error("merge(parts): a non-empty list of results", 2) end
  local whole, err
  for i, p in ipairs(parts) do
    if type(p) == "string" then
      p, err = core.funnel_parse(p)
      if not p then return nil, format("part %d: %s", i, err) end
    end
    if not whole then whole = p:copy()
    else
      local ok
      ok, err = whole:merge(p)
      if not ok then return nil, format("part %d: %s", i, err) end
    end
  end
  return whole
end

local function month_of(v)
  if type(v) == "number" then return os.date("!%Y-%m", math_floor(v)) end
  return tostring(v):match("^(%d%d%d%d%-%d%d)")
end

-- Cost per MQL, SQL and customer from spend rows {source=, month=, spend=}. Spend is attributable
-- when the grouping is by the spend key (source) and at most one <stage>_month cohort; other
-- dimensions would split spend in ways the data cannot say, so those groups get no cost.
function _M.add_costs(tab, spend, opts)
  opts = opts or {}
  local key = opts.key or "source"
  local month_dim, other = nil, false
  for _, d in ipairs(tab.dims) do
    if d ~= key then
      if d:match("_month$") and not month_dim then month_dim = d else other = true end
    end
  end
  if other then return tab end
  local by_source, total = {}, 0
  for i, row in ipairs(spend) do
    local amount = tonumber(row.spend)
    local m = month_of(row.month)
    if amount == nil or row.source == nil or m == nil then
      raise(format("spend row %d: needs source, month (YYYY-MM) and spend", i))
    end
    local s = tostring(row.source)
    by_source[s] = by_source[s] or {}
    by_source[s][m] = (by_source[s][m] or 0) + amount
    total = total + amount
  end
  local has_key = false
  for _, d in ipairs(tab.dims) do if d == key then has_key = true end end
  for _, g in ipairs(tab.groups) do
    local amount = 0
    local src = g.key[key]
    local mon = month_dim and g.key[month_dim]
    for s, months in pairs(by_source) do
      if not has_key or s == src then
        for m, v in pairs(months) do
          if not month_dim or m == mon then amount = amount + v end
        end
      end
    end
    if not has_key and not month_dim then amount = total end
    g.spend = amount
    g.cost = {}
    for _, stage in ipairs({ "mql", "sql", "customer" }) do
      local n = g.reached[stage]
      if n and n > 0 then g.cost["cost_per_" .. stage] = amount / n end
    end
  end
  tab.costs = { "cost_per_mql", "cost_per_sql", "cost_per_customer" }
  return tab
end

-- A report prints as the text tables (in the REPL: leadq.funnel_report(r) shows them).
local REPORT_MT = { __tostring = function(tab) return _M.to_text(tab) end }

-- The plain table of a result; opts.spend adds costs.
function _M.report(result, opts)
  opts = opts or {}
  local tab = result:totable()
  for _, list in ipairs({ tab.stages, tab.chain, tab.dims, tab.pairs, tab.groups, tab.breaches }) do
    json.array(list)   -- stays a list in JSON even when empty
  end
  for _, g in ipairs(tab.groups) do
    sort(g.disqualified, function(a, b)
      if a.count ~= b.count then return a.count > b.count end
      return a.reason < b.reason
    end)
    json.array(g.disqualified)
  end
  if opts.spend then _M.add_costs(tab, opts.spend, { key = opts.spend_key }) end
  return setmetatable(tab, REPORT_MT)
end

-- Columns of the CSV: dimensions, a count per stage, then per pair conversion, median and p90 days.
function _M.columns(tab)
  local cols = {}
  for _, d in ipairs(tab.dims) do cols[#cols + 1] = d end
  for _, s in ipairs(tab.stages) do cols[#cols + 1] = s end
  for _, p in ipairs(tab.pairs) do
    cols[#cols + 1] = p.name
    cols[#cols + 1] = p.name .. "_median_days"
    cols[#cols + 1] = p.name .. "_p90_days"
  end
  for _, c in ipairs(tab.costs or {}) do cols[#cols + 1] = c end
  return cols
end

local function num(v, fmt)
  if v == nil then return nil end
  if v == math_floor(v) and v < 2 ^ 53 and v > -2 ^ 53 then return format("%d", v) end
  return format(fmt or "%.6g", v)
end

-- One row of values (strings, nil for missing), in the order of _M.columns.
local function row_values(tab, g, text)
  local vals, n = {}, 0
  local function put(v) n = n + 1; vals[n] = v end
  for _, d in ipairs(tab.dims) do put(g.key[d]) end
  for _, s in ipairs(tab.stages) do put(num(g.reached[s])) end
  for _, p in ipairs(tab.pairs) do
    local c, v = g.conversion[p.name], g.velocity[p.name]
    if text then put(c and format("%.1f%%", c * 100)) else put(c and format("%.4f", c)) end
    put(v and format(text and "%.1f" or "%.2f", v.median_days))
    put(v and format(text and "%.1f" or "%.2f", v.p90_days))
  end
  for _, c in ipairs(tab.costs or {}) do
    local v = g.cost and g.cost[c]
    put(v and format("%.2f", v))
  end
  return vals, n
end

local function csv_field(v)
  if v == nil then return "" end
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function _M.to_csv(tab)
  local cols = _M.columns(tab)
  local lines = {}
  local head = {}
  for i, c in ipairs(cols) do head[i] = csv_field(c) end
  lines[1] = concat(head, ",")
  for _, g in ipairs(tab.groups) do
    local vals, n = row_values(tab, g, false)
    local out = {}
    for i = 1, n do out[i] = csv_field(vals[i]) end
    lines[#lines + 1] = concat(out, ",")
  end
  return concat(lines, "\n") .. "\n"
end

function _M.to_json(tab)
  return json.encode(tab) .. "\n"
end

local function aligned(header, rows)
  local widths = {}
  for i, h in ipairs(header) do widths[i] = #h end
  for _, r in ipairs(rows) do
    for i = 1, #header do widths[i] = math_max(widths[i], #(r[i] or "")) end
  end
  local lines = {}
  local function line(r, left_cols)
    local parts = {}
    for i = 1, #header do
      local v = r[i] or ""
      local pad = rep(" ", widths[i] - #v)
      parts[i] = i <= left_cols and v .. pad or pad .. v
    end
    lines[#lines + 1] = (concat(parts, "  "):gsub("%s+$", ""))
  end
  line(header, #header)
  local dashes = {}
  for i = 1, #header do dashes[i] = rep("-", widths[i]) end
  lines[#lines + 1] = concat(dashes, "  ")
  return lines, line
end

-- The total of a grouped report: counts summed over the groups (they split the leads), conversions
-- from the summed counts of leads that reached both stages, velocity from tab.total (an aggregation
-- without dimensions, which run adds) when there is one: quantiles do not add up.
local function total_group(tab)
  if #tab.dims == 0 then return tab.groups[1] end
  local t = { key = {}, reached = {}, conversion = {}, velocity = (tab.total or {}).velocity or {}, leads = 0 }
  local both, from = {}, {}
  for _, g in ipairs(tab.groups) do
    t.leads = t.leads + (g.leads or 0)
    for s, v in pairs(g.reached) do t.reached[s] = (t.reached[s] or 0) + v end
    for _, p in ipairs(tab.pairs) do
      local c, a = g.conversion[p.name], g.reached[p.from] or 0
      if c then
        both[p.name] = (both[p.name] or 0) + c * a
        from[p.name] = (from[p.name] or 0) + a
      end
    end
  end
  for name, b in pairs(both) do
    if from[name] > 0 then t.conversion[name] = b / from[name] end
  end
  return t
end
_M.total_group = total_group

local function group_label(tab, g)
  local parts = {}
  for _, d in ipairs(tab.dims) do parts[#parts + 1] = g.key[d] or "(missing)" end
  return #parts > 0 and concat(parts, " / ") or "all"
end

-- The steps shown in the narrow table: along the chain, then the first stage after lead to the last.
local function chain_steps(tab)
  local steps, by_name = {}, {}
  for _, p in ipairs(tab.pairs) do by_name[p.name] = p end
  for i = 1, #tab.chain - 1 do
    local p = by_name[tab.chain[i] .. "_to_" .. tab.chain[i + 1]]
    if p then steps[#steps + 1] = p end
  end
  local first, last = tab.chain[2], tab.chain[#tab.chain]
  local across = first and by_name[first .. "_to_" .. last]
  if across and #tab.chain > 3 then steps[#steps + 1] = across end
  if #steps == 0 then steps = tab.pairs end
  return steps
end

-- Narrow tables (each within 100 columns for the default stages): leads reaching each stage,
-- conversion per step, and days per step (median, then p90), a row per group and a total.
local function narrow_tables(tab)
  local lines = {}
  local total = total_group(tab)
  local groups = {}
  for _, g in ipairs(tab.groups) do groups[#groups + 1] = g end
  if #tab.dims > 0 then groups[#groups + 1] = total end
  local first_col = #tab.dims > 0 and concat(tab.dims, " / ") or "group"
  local function label(g) return g == total and #tab.dims > 0 and "total" or group_label(tab, g) end
  local function block(title, header, cell)
    local rows = {}
    for _, g in ipairs(groups) do
      local r = { label(g) }
      for i = 2, #header do r[i] = cell(g, i - 1) or "-" end
      rows[#rows + 1] = r
    end
    if #lines > 0 then lines[#lines + 1] = "" end
    lines[#lines + 1] = title
    local bl, bline = aligned(header, rows)
    for k, r in ipairs(rows) do
      if k == #rows and #tab.dims > 0 and groups[k] == total then bl[#bl + 1] = bl[2] end   -- a rule above the total
      bline(r, 1)
    end
    for _, l in ipairs(bl) do lines[#lines + 1] = l end
  end
  local header = { first_col }
  for _, st in ipairs(tab.stages) do header[#header + 1] = st end
  block("leads reaching each stage", header, function(g, i) return num(g.reached[tab.stages[i]] or 0) end)
  local steps = chain_steps(tab)
  header = { first_col }
  for _, p in ipairs(steps) do header[#header + 1] = p.from .. "->" .. p.to end
  block("conversion: leads that reached both stages / leads that reached the first", header, function(g, i)
    local c = g.conversion[steps[i].name]
    return c and format("%.1f%%", c * 100)
  end)
  for _, q in ipairs({ { "median", "median_days" }, { "p90", "p90_days" } }) do
    block(format("days per step, %s (first entry to first entry; exact up to 256 leads a cell, within 1%% "
      .. "past)", q[1]), header,
      function(g, i)
        local v = g.velocity and g.velocity[steps[i].name]
        return v and v[q[2]] and format("%.1f", v[q[2]])
      end)
  end
  local costs = tab.costs and #tab.costs > 0 and tab.groups[1] and tab.groups[1].cost
  if costs then
    header = { first_col, "spend" }
    for _, c in ipairs(tab.costs) do header[#header + 1] = (c:gsub("_", " ")) end
    local saved = groups
    groups = tab.groups   -- costs are per group: no total row
    block("cost per lead reaching the stage", header, function(g, i)
      if i == 1 then return g.spend and format("%.2f", g.spend) end
      local v = g.cost and g.cost[tab.costs[i - 1]]
      return v and v > 0 and format("%.2f", v) or nil
    end)
    groups = saved
  end
  return lines
end

-- The SLA, disqualification reasons and recycling, after the main tables.
local function detail_lines(tab, lines)
  local function label(g) return group_label(tab, g) end
  if tab.sla_days then
    local out = {}
    for _, g in ipairs(tab.groups) do
      local s = g.sla
      if s and (s.handed_off > 0 or s.overdue > 0) then
        out[#out + 1] = { label(g), num(s.handed_off), num(s.within), num(s.late), num(s.overdue),
          s.share_within and format("%.1f%%", s.share_within * 100) or "",
          s.median_days and format("%.1f", s.median_days) or "" }
      end
    end
    if #out > 0 then
      lines[#lines + 1] = ""
      lines[#lines + 1] = format("hand-off SLA: each mql to its first sales stage within %s days (%d breaches)",
        num(tab.sla_days), #tab.breaches)
      local sl, sline = aligned({ "group", "handed_off", "within", "late", "overdue", "share_within", "median_days" },
        out)
      for _, r in ipairs(out) do sline(r, 1) end
      for _, l in ipairs(sl) do lines[#lines + 1] = l end
    end
  end
  local reasons = {}
  for _, g in ipairs(tab.groups) do   -- the five most frequent per group; the rest summed
    local rest = 0
    for k, r in ipairs(g.disqualified) do
      if k <= 5 then reasons[#reasons + 1] = { label(g), r.reason, num(r.count) } else rest = rest + r.count end
    end
    if rest > 0 then reasons[#reasons + 1] = { label(g), "(other reasons)", num(rest) } end
  end
  if #reasons > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "disqualification reasons"
    local rl, rline = aligned({ "group", "reason", "leads" }, reasons)
    for _, r in ipairs(reasons) do rline(r, 2) end
    for _, l in ipairs(rl) do lines[#lines + 1] = l end
  end
  local recycled = {}
  for _, g in ipairs(tab.groups) do
    if g.recycled > 0 then recycled[#recycled + 1] = { label(g), num(g.recycled), num(g.recycled_transitions) } end
  end
  if #recycled > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "recycled to nurture"
    local cl, cline = aligned({ "group", "leads", "transitions" }, recycled)
    for _, r in ipairs(recycled) do cline(r, 1) end
    for _, l in ipairs(cl) do lines[#lines + 1] = l end
  end
  return lines
end

-- Aligned text tables that fit 100 columns: stages, conversion and velocity as three tables with a
-- total row, then the SLA, disqualification reasons and recycling.
function _M.to_text(tab)
  return concat(detail_lines(tab, narrow_tables(tab)), "\n") .. "\n"
end

-- One wide table of every CSV column (a row per group, then the total's counts), then the details.
function _M.to_wide_text(tab)
  local header = _M.columns(tab)
  local rows = {}
  for _, g in ipairs(tab.groups) do rows[#rows + 1] = (row_values(tab, g, true)) end
  if #tab.dims > 0 then
    local t = total_group(tab)
    t.key = {}
    local r = row_values(tab, t, true)
    r[1] = "total"
    for i = 2, #tab.dims do r[i] = "" end
    rows[#rows + 1] = r
  end
  local lines, line = aligned(header, rows)
  for _, r in ipairs(rows) do line(r, #tab.dims) end
  return concat(detail_lines(tab, lines), "\n") .. "\n"
end

local TEXT_FORMATS = { table = true, text = true, wide = true }
local FORMATS = { csv = _M.to_csv, json = _M.to_json, table = _M.to_text, text = _M.to_text,
                  wide = _M.to_wide_text }

function _M.format(tab, fmt)
  local f = FORMATS[fmt or "table"]
  if not f then error(format("unknown format '%s' (expected table, wide, csv or json)", tostring(fmt)), 2) end
  return f(tab)
end

-- Seconds since the epoch of "YYYY-MM-DD[ hh:mm[:ss]]" (UTC), or nil.
function _M.parse_time(s)
  return core.funnel_parse_time(s)
end


---------------------------------------------------------------------------------------------
-- Reports from files: transitions logs (or partial results) in, a report out

local util = require("leadq.util")
local list_of = util.split_list   -- "a,b" or { "a", "b" } -> { "a", "b" }

local RUN_OPTIONS = { transitions = true, leads = true, id = true, by = true, spend = true, format = true,
                      stages = true, implied = true, sla_days = true, sla_working = true, part = true,
                      merge = true }

local read_file = util.read_file

RUN_OPTIONS.threads = true   -- read_csv's: the transitions and leads files parsed on N threads

-- The funnel of the transitions files, loaded and checked once: f, or nil and a message.
local function load_logs(opts)
  local inputs = opts.transitions
  if type(inputs) == "string" then inputs = { { path = inputs } } end
  if type(inputs) ~= "table" or #inputs == 0 then return nil, "no transitions log to read" end
  local ok, f = pcall(_M.new, { stages = list_of(opts.stages), implied = opts.implied, sla_days = opts.sla_days,
    sla_working = opts.sla_working })
  if not ok then return nil, (tostring(f):gsub("^[^:]*:%d+: ", "")) end
  for _, input in ipairs(inputs) do
    local map = input.map or {}
    local tbl = input.table   -- a table already read (the caller closes it), or the file
    if not tbl then
      -- lead ids as text: a category would build a dictionary of every lead only for the funnel to
      -- intern them again (a third of the file's read); only the columns the log keeps (an export's
      -- others are never made into values); the file read as it comes when the lead's column is
      -- missing, which the check below then names
      local wanted, seen = {}, {}
      for _, c in ipairs({ map.lead or "lead_id", not map.stage_is and (map.stage or "stage") or false,
                           map.at or "at", map.reason or "reason", map.owner or "owner" }) do
        if c and not seen[c] then wanted[#wanted + 1], seen[c] = c, true end
      end
      local rok, t, err = pcall(core.read_csv, input.path, { threads = opts.threads, columns = wanted,
        columns_optional = true, schema = { [map.lead or "lead_id"] = "text" } })
      if rok then tbl = t
      else tbl, err = core.read_csv(input.path, opts.threads and { threads = opts.threads } or nil) end
      if not tbl then return nil, err end
    end
    local cols = { lead = map.lead or "lead_id", stage = map.stage or "stage", at = map.at or "at",
                   stage_is = map.stage_is, source = input.path }
    if map.reason or tbl:has("reason") then cols.reason = map.reason or "reason" end
    if map.owner or tbl:has("owner") then cols.owner = map.owner or "owner" end
    for _, k in ipairs({ "lead", "stage", "at", "reason", "owner" }) do
      local c = cols[k]
      if c and not (k == "stage" and cols.stage_is) and not tbl:has(c) then
        return nil, format("%s: no column '%s' for the %s (map it: %s=COLUMN)", input.path, c, k, k)
      end
    end
    if cols.stage_is then cols.stage = nil end
    local lok, lerr = pcall(f.load, f, tbl, cols, opts.threads)
    if not input.table then tbl:close() end
    if not lok then return nil, format("%s: %s", input.path, (tostring(lerr):gsub("^[^:]*:%d+: ", ""))) end
  end
  -- checked now, and what only loading and checking read is freed: the aggregations take its pages
  local sok, serr = pcall(f.seal, f, opts.threads)
  if not sok then return nil, (tostring(serr):gsub("^[^:]*:%d+: ", "")) end
  return f
end

-- The leads file's id and dimension columns only: the others are most of the file, and reading them
-- was most of a funnel's time. The whole file when a dimension is no column of it (a cohort, the
-- owner, the account mapping, which reads e-mails and companies), as read_csv says by raising.
local function read_leads(path, id, by, threads)
  local wanted, seen = { id }, { [id] = true }
  local whole = threads and { threads = threads } or nil
  for _, d in ipairs(by) do
    if d == "account" then return core.read_csv(path, whole) end
    if not seen[d] then wanted[#wanted + 1], seen[d] = d, true end
  end
  -- ids as text, as the transitions' lead ids are read: the same string matches the same lead
  local ok, t, err = pcall(core.read_csv, path, { columns = wanted, threads = threads, schema = { [id] = "text" } })
  if ok then return t, err end
  return core.read_csv(path, whole)
end

-- One aggregation of a loaded funnel, grouped by `by` (a list or "a,b"), joined to the leads: a
-- leadq table already read (leads_tbl), or opts.leads read here. result, or nil and a message.
local function aggregate(f, opts, by, leads_tbl)
  local query = { by = list_of(by) or {} }
  local leads, own = leads_tbl, false
  if not leads and opts.leads then
    local err
    leads, err = read_leads(opts.leads, opts.id or "id", query.by, opts.threads)
    if not leads then return nil, err end
    own = true
  end
  if leads then
    query.leads, query.id = leads, opts.id or "id"
    if not leads:has(query.id) then
      local message = format("%s: no column '%s' for the lead id%s", opts.leads or "the leads", query.id,
        util.did_you_mean(query.id, leads:names()))
      if own then leads:close() end
      return nil, message
    end
    for _, d in ipairs(query.by) do
      if d == "account" and not leads:has("account") then   -- the account mapping (leadq.accounts)
        local accounts = require("leadq.accounts")
        local map, merr = accounts.map(leads)
        if not map then return nil, merr end
        local dims = accounts.dimension(leads, map, query.id)
        if own then leads:close() end
        map:close()
        leads, query.leads, own = dims, dims, true
        break
      end
    end
  end
  query.threads = opts.threads
  local aok, result = pcall(f.aggregate, f, query)
  if own then leads:close() end
  if not aok then return nil, (tostring(result):gsub("^[^:]*:%d+: ", "")) end
  return result
end

-- The result of the transitions files (and their rejects), as opts says.
local function result_of_logs(opts)
  local f, err = load_logs(opts)
  if not f then return nil, err end
  local result
  result, err = aggregate(f, opts, opts.by)
  if not result then return nil, err end
  return result, f:rejects(), f
end

-- Several report tables of one set of logs, read and checked once (opts.transitions: a path, or a list
-- of { path =, map =, table = a leadq table already read }): one per grouping in `groupings`
-- (each a list of dimensions, or {} for the whole), joined to leads_tbl (a leadq table, or nil to
-- read opts.leads). opts as for run; spend (rows of source, month, spend) adds costs to groupings by
-- source. Returns the list of tables, the rejected rows and the loaded funnel (for more questions of
-- the same log, e.g. outcome labels), or nil and a message.
function _M.reports(opts, groupings, leads_tbl, spend)
  local f, err = load_logs(opts)
  if not f then return nil, err end
  local tabs = {}
  for i, by in ipairs(groupings) do
    local result
    result, err = aggregate(f, opts, by, leads_tbl)
    if not result then return nil, err end
    local dims = list_of(by) or {}
    local ok, tab = pcall(_M.report, result, { spend = #dims == 1 and dims[1] == "source" and spend or nil })
    if not ok then return nil, (tostring(tab):gsub("^[^:]*:%d+: ", "")) end
    tabs[i] = tab
  end
  return tabs, f:rejects(), f
end

-- A stand-in for _M.report(result): the table is made on the first read of any of its fields (or
-- pairs over it), then the stand-in holds its fields and metatable as if it had been made at once.
local function lazy_report(result, total)
  local proxy = {}
  local function materialise()
    local tab = _M.report(result)
    if total then tab.total = _M.report(total).groups[1] end
    setmetatable(proxy, nil)
    for k, v in pairs(tab) do rawset(proxy, k, v) end
    return setmetatable(proxy, getmetatable(tab))
  end
  return setmetatable(proxy, {
    __index = function(_, k) return materialise()[k] end,
    __pairs = function() return next, materialise(), nil end,
    __tostring = function() return tostring(materialise()) end,
  })
end

-- Runs a whole report from files. opts.transitions: a path, or a list of { path = , map = {...} };
-- or opts.merge: a list of files written by opts.part (partial results of leads split by lead).
-- opts.threads: the files are parsed on that many threads (the answer is the same for any).
-- Returns the text, the report table (nil when writing a part) and the rejected rows; or nil and a
-- message.
function _M.run(opts)
  if type(opts) ~= "table" then error("run(opts): opts must be a table", 2) end
  for k in pairs(opts) do
    if not RUN_OPTIONS[k] then error(format("run: unknown option '%s'", tostring(k)), 2) end
  end
  local threads = opts.threads
  if threads ~= nil and (type(threads) ~= "number" or threads ~= math_floor(threads) or threads < 1 or
      threads > 256) then
    error(format("run: option 'threads' must be a whole number from 1 to 256, got %s", tostring(threads)), 2)
  end
  local fmt = opts.format or "table"
  if not FORMATS[fmt] then
    return nil, format("unknown format '%s' (expected table, wide, csv or json)", tostring(fmt))
  end
  local result, rejects, loaded
  if opts.merge then
    local has_logs = type(opts.transitions) == "string" or (type(opts.transitions) == "table" and #opts.transitions > 0)
    if has_logs then return nil, "merge reads partial results, not transitions logs: give one or the other" end
    local parts = {}
    for _, path in ipairs(list_of(opts.merge)) do
      local text, err = read_file(path)
      if not text then return nil, err end
      parts[#parts + 1] = text
    end
    if #parts == 0 then return nil, "merge needs the files of partial results" end
    local err
    result, err = _M.merge(parts)
    if not result then return nil, err end
    rejects = {}
  else
    result, rejects, loaded = result_of_logs(opts)
    if not result then return nil, rejects end
  end
  if opts.part then
    local fh, err = io.open(opts.part, "wb")
    if not fh then return nil, err end
    fh:write(result:serialize())
    fh:close()
    return format("wrote the partial result to %s: %d groups", opts.part,
      #result:totable().groups), nil, rejects
  end
  local spend
  if opts.spend then
    local st, err = core.read_csv(opts.spend)
    if not st then return nil, err end
    for _, c in ipairs({ "source", "month", "spend" }) do
      if not st:has(c) then return nil, format("%s: no column '%s' (expected source, month, spend)", opts.spend, c) end
    end
    spend = {}
    for _, row in st:rows() do spend[#spend + 1] = row end
    st:close()
  end
  -- CSV and JSON without costs come whole from the core (groups sorted and formatted in C, as to_csv
  -- and to_json write them); the report table is made only when something reads it (in the REPL, say)
  if fmt == "csv" and not spend then
    return result:csv(), lazy_report(result), rejects
  end
  if fmt == "json" and not spend then
    return result:json(), lazy_report(result), rejects
  end
  -- the text tables likewise, their total row's velocity from an aggregation of all leads
  if (fmt == "table" or fmt == "text") and not spend then
    local total
    if loaded and #(list_of(opts.by) or {}) > 0 then total = aggregate(loaded, opts, nil) end
    return result:text(total), lazy_report(result, total), rejects
  end
  local tok, tab = pcall(_M.report, result, { spend = spend })
  if not tok then return nil, (tostring(tab):gsub("^[^:]*:%d+: ", "")) end
  -- the text tables' total row: velocity of all leads needs an aggregation of its own
  if loaded and TEXT_FORMATS[fmt] and #tab.dims > 0 then
    local total = aggregate(loaded, opts, nil)
    if total then tab.total = _M.report(total).groups[1] end
  end
  return _M.format(tab, fmt), tab, rejects
end

-- The rejected rows as CSV: file,line,lead,stage,at,message (at as YYYY-MM-DD hh:mm:ss, UTC).
function _M.rejects_csv(rejects)
  local lines = { "file,line,lead,stage,at,message" }
  for _, r in ipairs(rejects) do
    lines[#lines + 1] = concat({ csv_field(r.file), csv_field(r.line and format("%d", r.line)), csv_field(r.lead),
      csv_field(r.stage), csv_field(r.at and os.date("!%Y-%m-%d %H:%M:%S", math_floor(r.at))),
      csv_field(r.message) }, ",")
  end
  return concat(lines, "\n") .. "\n"
end

return _M
