-- leadq.changes: the change facts of a scoring run. Which leads changed status or grade since a
-- previous scored file (what a nightly CRM sync sends), and the lifecycle transitions the scores
-- imply, in the log format `leadq funnel` reads (lead_id,stage,at,reason,owner).
--
-- A run is described as columns: { ids = { id, ... }, column = function(name) -> values by row }
-- (a scored table, or a scored CSV read back); models: { { name =, prefix = }, ... } (prefix "" for
-- a run of one model, "mql." for a model of several).
local type, ipairs, pairs, tostring, error = type, ipairs, pairs, tostring, error
local format, concat = string.format, table.concat

local _M = { _VERSION = "0.1.0" }

_M.CHANGES_HEADER = { "id", "model", "status_from", "status_to", "grade_from", "grade_to", "owner", "reason", "at" }
_M.TRANSITIONS_HEADER = { "lead_id", "stage", "at", "reason", "owner" }

-- The funnel's chain (leadq.funnel's default) and the statuses that are stages of it.
local CHAIN = { "lead", "mql", "sal", "sql", "opportunity", "customer" }

local function text(v)
  if v == nil or v ~= v then return nil end
  if v == "" then return nil end
  return tostring(v)
end

local function column_or_empty(run, name)
  return run.column(name) or {}
end

-- The models of a scored file from its header: "mql.status" -> mql (prefix "mql."); a bare
-- "status" -> the one model (named `single`, the model's own name).
function _M.models_of_header(names, single)
  local models, seen = {}, {}
  for _, n in ipairs(names) do
    local m = n:match("^(.-)%.status$")
    if m and not seen[m] then
      seen[m] = true
      models[#models + 1] = { name = m, prefix = m .. "." }
    elseif n == "status" and not seen[""] then
      seen[""] = true
      models[#models + 1] = { name = single or "model", prefix = "" }
    end
  end
  return models
end

-- The leads whose status or grade changed from `previous` to `current` (runs as above), in the
-- current run's order, then those the previous run had and this one lost (to = nil: gone).
-- opts: at (epoch seconds the changes are stamped with), owner_of(id, row, change) -> owner or nil,
-- reason_of(change) -> reason or nil. Each change: { id, model, from, to, grade_from, grade_to,
-- owner, reason, at, row }. Leads new in this run change from nothing (from = nil).
function _M.diff(previous, current, models, opts)
  if type(previous) ~= "table" or type(current) ~= "table" or type(models) ~= "table" then
    error("changes.diff: expects previous, current and models tables", 2)
  end
  opts = opts or {}
  local out = {}
  local prev_row = {}
  for i, id in ipairs(previous.ids) do prev_row[tostring(id)] = i end
  for _, m in ipairs(models) do
    local pstatus = column_or_empty(previous, m.prefix .. "status")
    local pgrade = column_or_empty(previous, m.prefix .. "grade")
    local cstatus = column_or_empty(current, m.prefix .. "status")
    local cgrade = column_or_empty(current, m.prefix .. "grade")
    local creason = column_or_empty(current, m.prefix .. "reason")
    local seen = {}
    for r, raw in ipairs(current.ids) do
      local id = tostring(raw)
      seen[id] = true
      local p = prev_row[id]
      local from, to = p and text(pstatus[p]), text(cstatus[r])
      local gfrom, gto = p and text(pgrade[p]), text(cgrade[r])
      if from ~= to or gfrom ~= gto then
        local c = { id = id, model = m.name, from = from, to = to, grade_from = gfrom, grade_to = gto,
          at = opts.at, row = r, reason = text(creason[r]) }
        if opts.reason_of then c.reason = opts.reason_of(c) or c.reason end
        if opts.owner_of then c.owner = opts.owner_of(id, r, c) end
        out[#out + 1] = c
      end
    end
    for p, raw in ipairs(previous.ids) do
      local id = tostring(raw)
      if not seen[id] and text(pstatus[p]) then
        out[#out + 1] = { id = id, model = m.name, from = text(pstatus[p]), grade_from = text(pgrade[p]),
          at = opts.at, reason = "not in this run" }
      end
    end
  end
  return out
end

-- The lifecycle transitions a run's statuses imply, per lead: `lead` at its creation (created_at,
-- when given and not after `at`), then the chain stages its models' statuses name (mql first:
-- a later stage only once a model says mql, so the funnel's mql count is the scores'), or
-- `disqualified` with its reason: by the first model, or by a later one for a lead past mql.
-- opts: at (required), created (values by row or nil), owner_of(id, row) -> owner.
-- Returns rows { lead, stage, at, reason, owner }.
function _M.transitions(current, models, opts)
  if type(opts) ~= "table" or type(opts.at) ~= "number" then
    error("changes.transitions: opts.at is required", 2)
  end
  local statuses, reasons = {}, {}
  for i, m in ipairs(models) do
    statuses[i] = column_or_empty(current, m.prefix .. "status")
    reasons[i] = column_or_empty(current, m.prefix .. "reason")
  end
  local created = opts.created or {}
  local rows = {}
  for r, raw in ipairs(current.ids) do
    local id = tostring(raw)
    local born = created[r]
    if type(born) ~= "number" or born ~= born or born > opts.at then born = opts.at end
    rows[#rows + 1] = { id, "lead", born }
    local named, disq = {}, nil
    for i = 1, #models do
      local s = text(statuses[i][r])
      if s == "disqualified" then
        disq = disq or { i, text(reasons[i][r]) or ("disqualified by " .. models[i].name) }
      elseif s then
        named[s] = true
      end
    end
    if disq and disq[1] == 1 then   -- marketing's model disqualifies a lead
      rows[#rows + 1] = { id, "disqualified", opts.at, disq[2] }
    elseif named.mql then
      local owner = opts.owner_of and opts.owner_of(id, r) or nil
      for k = 2, #CHAIN do
        if named[CHAIN[k]] then rows[#rows + 1] = { id, CHAIN[k], opts.at, nil, owner } end
      end
      -- a later model (sales) disqualifies only a lead handed to it
      if disq then rows[#rows + 1] = { id, "disqualified", opts.at, disq[2], owner } end
    end
  end
  return rows
end

local csv_escape = require("leadq.util").csv_field   -- one CSV field

local function write_rows(path, header, rows)
  local f, err = io.open(path, "w")
  if not f then return nil, format("cannot write %s: %s", path, (tostring(err):gsub("^[^:]*: ", ""))) end
  f:write(concat(header, ","), "\n")
  local line = {}
  for _, row in ipairs(rows) do
    for i = 1, #header do line[i] = csv_escape(row[i]) end
    f:write(concat(line, ",", 1, #header), "\n")
  end
  local ok, cerr = f:close()
  if not ok then return nil, format("cannot write %s: %s", path, tostring(cerr)) end
  return true
end

-- time: epoch seconds -> "2026-11-01T00:00:00Z" (leadq.format_time)
function _M.write_changes(path, changes, format_time)
  local rows = {}
  for i, c in ipairs(changes) do
    rows[i] = { c.id, c.model, c.from, c.to, c.grade_from, c.grade_to, c.owner, c.reason,
      c.at and format_time(c.at) or nil }
  end
  return write_rows(path, _M.CHANGES_HEADER, rows)
end

function _M.write_transitions(path, rows, format_time)
  local out = {}
  for i, t in ipairs(rows) do out[i] = { t[1], t[2], format_time(t[3]), t[4], t[5] } end
  return write_rows(path, _M.TRANSITIONS_HEADER, out)
end

-- Counts of changes by model and from -> to, for the summary: lines of text.
function _M.summary_lines(changes)
  local counts, order = {}, {}
  for _, c in ipairs(changes) do
    local key = format("%s: %s -> %s", c.model, c.from or "(new)", c.to or "(gone)")
    if c.from == c.to then key = format("%s: grade %s -> %s", c.model, c.grade_from or "-", c.grade_to or "-") end
    if not counts[key] then order[#order + 1] = key end
    counts[key] = (counts[key] or 0) + 1
  end
  local lines = {}
  for _, key in ipairs(order) do lines[#lines + 1] = format("  %-40s %d", key, counts[key]) end
  return lines
end

-- Reads what is needed of a scored CSV as a run (see the top of this file): nil, message when it
-- cannot be read. read_csv: leadq.read_csv.
function _M.read_run(path, read_csv)
  local tbl, err = read_csv(path)
  if not tbl then return nil, err end
  if not tbl:has("id") then return nil, format("%s: no id column (a file of scores, as leadq score writes)", path) end
  local cache = {}
  local run = { ids = tbl:column("id"), names = tbl:names() }
  run.column = function(name)
    if cache[name] == nil then cache[name] = tbl:has(name) and tbl:column(name) or false end
    return cache[name] or nil
  end
  run.tbl = tbl
  return run
end

-- The run of a scored table (the result of model:score) for the leads table it scored.
function _M.result_run(tbl, result)
  local ids = tbl:has("id") and tbl:column("id") or nil
  if not ids then
    ids = {}
    for r = 1, #tbl do ids[r] = r end   -- the row numbers score writes for a file without ids
  end
  local cache = {}
  return { ids = ids, column = function(name)
    if cache[name] == nil then cache[name] = result:has(name) and result:column(name) or false end
    return cache[name] or nil
  end }
end

-- Who owns each lead: the reactions' routing (for leads a reaction assigns), else the owner column
-- of the leads, else of the previous run. Returns owner_of(id, row, change).
function _M.owners(reactions, tbl, previous)
  local fields = {}
  if reactions then
    for _, route in ipairs(reactions.routes) do
      for name in pairs(route.when or {}) do fields[name] = true end
      if route.account_owner then fields[route.account_owner] = true end
    end
  end
  local columns = {}
  for name in pairs(fields) do
    if tbl:has(name) then columns[name] = tbl:column(name) end
  end
  local given = tbl:has("owner") and tbl:column("owner") or nil
  local prev_owner, prev_row = previous and previous.column("owner"), {}
  if prev_owner then for i, id in ipairs(previous.ids) do prev_row[tostring(id)] = i end end
  local routed = {}
  return function(id, row, change)
    if routed[id] then return routed[id] end
    local assigns = reactions ~= nil and change == nil
    if reactions and change then
      for _, r in ipairs(reactions:on_change({ model = change.model, from = change.from, to = change.to,
          grade_from = change.grade_from, grade_to = change.grade_to })) do
        if r.assign then assigns = true end
      end
    end
    if assigns then
      local record = {}
      for name, values in pairs(columns) do record[name] = values[row] end
      local owner = reactions:route(record)
      if owner then
        routed[id] = owner
        return owner
      end
    end
    if given and text(given[row]) then return text(given[row]) end
    if prev_owner and prev_row[id] then return text(prev_owner[prev_row[id]]) end
    return nil
  end
end

return _M
