-- leadq.outcome: what happened to each lead, as labels for evaluate, compare, profile and fit.
--
--   local outcome = require("leadq.outcome")
--   local labels, info = outcome.labels(leads, spec)
--
-- spec (unknown keys raise, with a suggestion):
--   outcome = "Converted"       a column of the leads: 1/true/yes positive, 0/false/no negative
--   outcome = "y=yes"           COLUMN=VALUE: positive where the column is VALUE (any case), else negative
--   transitions = PATH | table  or a transitions log (lead_id,stage,at[,reason,owner]: what `leadq funnel`
--   reached = "customer"          reads, through the same funnel), with the stage that counts as converted;
--                                 or a funnel loaded with that log already (leadq.funnel; its stages)
--   within_days = N               and optionally how soon: within N days of as_of (or, without as_of, of
--                                 the lead's creation)
--   as_of = epoch | "YYYY-MM-DD"  the backtest date: leads created after it are left out; with
--                                 transitions, the outcome is reaching the stage after it (leads that had
--                                 reached it by then are left out: nothing left to predict)
--   id = "id"                     the leads' id column (default id, else lead_id), joined to the log
--   created = "created_at"        the leads' creation column (default created_at when there is one)
--   stages = { ... } or "a,b,c"   the funnel's chain of stages (default lead,mql,sal,sql,opportunity,customer)
--
-- labels: a Lua string of #leads bytes: "\0" negative, "\1" positive, "\255" left out (created after
-- as_of, no outcome value, or already reached the stage at as_of).
-- info: { leads = used, positives =, negatives =, left_out =, description = "y = yes",
--         created_after =, missing =, already_reached =, as_of =, transitions = { rows =, rejected = } }
--
-- Bad input raises an error in the caller's terms: a missing outcome column (named, with "did you mean"), a
-- constant or non-binary one (named, with a few of its values), a transitions file that cannot be
-- read or has unreadable rows (file:line), an unknown stage.
--
-- outcome.given(spec) -> whether it names an outcome (the commands' flags give one: leadq.cli.outcome).
local core = require("leadq.core")
local dsl = require("leadq.dsl")

local type, pairs, ipairs, tostring, tonumber, pcall = type, pairs, ipairs, tostring, tonumber, pcall
local format, lower = string.format, string.lower
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local DAY = 86400
local NEG, POS, OUT = "\0", "\1", "\255"
_M.NEGATIVE, _M.POSITIVE, _M.LEFT_OUT = 0, 1, 255

local SPEC_KEYS = { "outcome", "transitions", "reached", "within_days", "as_of", "id", "created", "stages" }
local SPEC_SET = {}
for _, k in ipairs(SPEC_KEYS) do SPEC_SET[k] = true end

-- Values of an outcome column read as yes / no (any case).
local YES = { ["1"] = true, ["true"] = true, yes = true, y = true, t = true }
local NO = { ["0"] = true, ["false"] = true, no = true, n = true, f = true }

-- Errors in the caller's terms (leadq.util.raise): the first function outside leadq is blamed.
local raise = require("leadq.util").raise

-- A few distinct values of a column, most frequent first: "'no' (39922), 'yes' (5289)".
local function some_values(values, n, limit)
  local counts, order = {}, {}
  for i = 1, n do
    local v = values[i]
    if v ~= nil then
      local k = tostring(v)
      if not counts[k] then order[#order + 1] = k; counts[k] = 0 end
      counts[k] = counts[k] + 1
    end
  end
  sort(order, function(a, b) if counts[a] ~= counts[b] then return counts[a] > counts[b] end return a < b end)
  local shown = {}
  for i = 1, math.min(limit or 5, #order) do shown[i] = format("'%s' (%d)", order[i], counts[order[i]]) end
  if #order > (limit or 5) then shown[#shown + 1] = format("... %d distinct values in all", #order) end
  return concat(shown, ", "), #order
end

local function parse_as_of(v)
  if v == nil then return nil end
  if type(v) == "number" and v == v then return v end
  if type(v) == "string" then
    local t = dsl.parse_time(v)
    if t then return t end
    raise(format("outcome: as_of %q is not a date (write \"2026-01-31\" or epoch seconds)", v))
  end
  raise(format("outcome: as_of must be epoch seconds or a date \"YYYY-MM-DD\", got %s", type(v)))
end

local function date_text(t)
  local ok, s = pcall(core.format_time, t)
  if ok and type(s) == "string" then
    if s:match("T00:00:00Z$") then return s:sub(1, 10) end
    return s
  end
  return tostring(t)
end
_M.date_text = date_text

local function check_spec(spec)
  if type(spec) ~= "table" then raise("outcome: the spec must be a table { outcome = ... } or { transitions = ..., "
    .. "reached = ... }, got " .. type(spec)) end
  for k in pairs(spec) do
    if not SPEC_SET[k] then
      raise(format("outcome: unknown option '%s'%s", tostring(k), dsl.did_you_mean(tostring(k), SPEC_KEYS)))
    end
  end
  if spec.outcome ~= nil and spec.transitions ~= nil then
    raise("outcome: give an outcome column or a transitions log, not both")
  end
  if spec.outcome == nil and spec.transitions == nil then
    raise("outcome: no outcome: give outcome = COLUMN (or COLUMN=VALUE), or transitions = FILE with reached = STAGE")
  end
  if spec.outcome ~= nil and (type(spec.outcome) ~= "string" or spec.outcome == "") then
    raise("outcome: outcome must be a column name or COLUMN=VALUE, got " .. type(spec.outcome))
  end
  if spec.transitions ~= nil then
    if type(spec.transitions) ~= "string" and not core.is_table(spec.transitions)
      and not require("leadq.funnel").is_funnel(spec.transitions) then
      raise("outcome: transitions must be the path of a transitions CSV, a leadq table or a loaded funnel, got "
        .. type(spec.transitions))
    end
    if type(spec.reached) ~= "string" or spec.reached == "" then
      raise("outcome: transitions need reached = STAGE (the stage that counts as converted, e.g. customer)")
    end
  elseif spec.reached ~= nil then
    raise("outcome: reached = STAGE goes with transitions = FILE (a transitions log)")
  end
  local w = spec.within_days
  if w ~= nil and (type(w) ~= "number" or w ~= w or w <= 0 or w == math.huge) then
    raise("outcome: within_days must be a positive number of days, got " .. tostring(w))
  end
  if w ~= nil and spec.transitions == nil then
    raise("outcome: within_days goes with transitions = FILE and reached = STAGE")
  end
  for _, k in ipairs({ "id", "created" }) do
    if spec[k] ~= nil and type(spec[k]) ~= "string" then
      raise(format("outcome: %s must be a column name, got %s", k, type(spec[k])))
    end
  end
end

local function column_names(leads)
  local names = {}
  for _, c in ipairs(leads:schema()) do names[#names + 1] = c.name end
  return names
end

local function missing_column(leads, name, what)
  local names = column_names(leads)
  local hint = dsl.did_you_mean(name, names)
  if hint == "" then
    local lname = lower(name)
    for _, c in ipairs(names) do
      if lower(c) == lname then hint = format(" (did you mean '%s'?)", c) break end
    end
  end
  raise(format("outcome: the leads have no column '%s'%s%s (columns: %s)", name, what or "", hint,
    concat(names, ", ")))
end

---------------------------------------------------------------------------------------------------
-- creation times, for as_of

local function creation_times(leads, spec)
  local name = spec.created
  if name == nil then
    if leads:has("created_at") then name = "created_at" else return nil end
  elseif not leads:has(name) then
    missing_column(leads, name, " for the creation time")
  end
  local kind = leads:type(name)
  if kind ~= "time" and kind ~= "number" then
    raise(format("outcome: column '%s' holds %s values, not times: it cannot say when a lead was created", name,
      kind))
  end
  return (leads:column(name)), name
end

---------------------------------------------------------------------------------------------------
-- an outcome column

local function column_outcome(leads, spec, n)
  local text = spec.outcome
  local name, wanted = text, nil
  if not leads:has(text) then
    local c, v = text:match("^(.-)%s*=%s*(.*)$")
    if c and c ~= "" then name, wanted = c, v end
  end
  if not leads:has(name) then missing_column(leads, name, " for the outcome") end
  local values = leads:column(name)
  local kind = leads:type(name)
  local flags = {}   -- per row: true, false or nil (missing)
  local description
  if wanted ~= nil then
    local lw, wn = lower(wanted), tonumber(wanted)
    local hits, present = 0, 0
    for i = 1, n do
      local v = values[i]
      if v ~= nil then
        local yes
        if type(v) == "number" then yes = wn ~= nil and v == wn
        elseif type(v) == "boolean" then   -- yes/no columns load as booleans: y=yes means y is true
          if YES[lw] then yes = v elseif NO[lw] then yes = not v else yes = false end
        elseif type(v) == "table" then
          yes = false
          for _, x in ipairs(v) do if lower(tostring(x)) == lw then yes = true break end end
        else yes = lower(tostring(v)) == lw end
        flags[i] = yes
        present = present + 1
        if yes then hits = hits + 1 end
      end
    end
    local shown = some_values(values, n, 5)
    if present == 0 then
      raise(format("outcome: column '%s' has no values: no lead has an outcome", name))
    elseif hits == 0 then
      raise(format("outcome: no lead has %s = '%s': the outcome would be constant (its values: %s)", name, wanted,
        shown))
    elseif hits == present then
      raise(format("outcome: every lead with a value has %s = '%s': the outcome is constant (its values: %s)", name,
        wanted, shown))
    end
    description = format("%s = %s", name, wanted)
  else
    if kind == "tags" then
      raise(format("outcome: column '%s' holds tags: name the value that counts (%s=VALUE)", name, name))
    end
    local bad, present, yes = nil, 0, 0
    for i = 1, n do
      local v = values[i]
      if v ~= nil then
        local f
        if type(v) == "boolean" then f = v
        else
          local s = type(v) == "number" and (v == 1 and "1" or v == 0 and "0" or "?") or lower(tostring(v))
          if YES[s] then f = true elseif NO[s] then f = false end
        end
        if f == nil then bad = bad or v
        else
          flags[i] = f
          present = present + 1
          if f then yes = yes + 1 end
        end
      end
    end
    local shown, distinct = some_values(values, n, 5)
    if bad ~= nil then
      raise(format("outcome: column '%s' is not binary (%d distinct values: %s): use 1/0, true/false or yes/no, "
        .. "or name the value that counts (%s=VALUE)", name, distinct, shown, name))
    end
    if present == 0 then
      raise(format("outcome: column '%s' has no values: no lead has an outcome", name))
    end
    if yes == 0 or yes == present then
      raise(format("outcome: column '%s' is constant (every lead with a value has %s): nothing to predict", name,
        shown))
    end
    description = name
  end
  return flags, description
end

---------------------------------------------------------------------------------------------------
-- a transitions log

local stage_list = require("leadq.util").split_list   -- "a,b" or { "a", "b" } -> { "a", "b" }

local function id_column(leads, spec)
  local id = spec.id
  if id == nil then
    id = (leads:has("id") and "id") or (leads:has("lead_id") and "lead_id") or nil
    if not id then
      raise(format("outcome: the leads have no 'id' column to join to the transitions (columns: %s); name it: "
        .. "id = COLUMN", concat(column_names(leads), ", ")))
    end
  elseif not leads:has(id) then
    missing_column(leads, id, " for the lead id")
  end
  return id
end

-- The funnel of the log (the reader and checks of `leadq funnel`), loaded; raises on a bad file.
-- A funnel the caller loaded already (the report's, of the same log) is used as it is, not closed.
local function load_funnel(spec)
  local funnel = require("leadq.funnel")
  if funnel.is_funnel(spec.transitions) then
    local f = spec.transitions
    return f, funnel, { rows = #f, logged = #f, rejected = #f:rejects() }, true
  end
  local ok, f = pcall(funnel.new, { stages = stage_list(spec.stages) })
  if not ok then raise("outcome: " .. (tostring(f):gsub("^[^\n]-:%d+: ", ""))) end
  local tbl, path, own = spec.transitions, "(transitions table)", false
  if type(tbl) == "string" then
    path = tbl
    local err
    tbl, err = core.read_csv(path)
    if not tbl then raise(format("outcome: cannot read the transitions: %s", tostring(err))) end
    own = true
  end
  local cols = { lead = "lead_id", stage = "stage", at = "at", source = own and path or nil }
  if tbl:has("reason") then cols.reason = "reason" end
  if tbl:has("owner") then cols.owner = "owner" end
  for _, k in ipairs({ "lead", "stage", "at" }) do
    if not tbl:has(cols[k]) then
      local names = column_names(tbl)
      if own then tbl:close() end
      raise(format("outcome: %s: no column '%s' (a transitions log has lead_id,stage,at[,reason,owner]; its columns: "
        .. "%s)", path, cols[k], concat(names, ", ")))
    end
  end
  local rows = #tbl
  local lok, logged, rejected = pcall(f.load, f, tbl, cols)
  if own then tbl:close() end
  if not lok then raise(format("outcome: %s: %s", path, (tostring(logged):gsub("^[^\n]-:%d+: ", "")))) end
  local rejects = f:rejects()
  if rejected > 0 then   -- rows that could not be read at all: the first ones listed are those
    local r = rejects[1]
    raise(format("outcome: %s:%s: %s%s", tostring(r.file or path), tostring(r.line or "?"), tostring(r.message),
      rejected > 1 and format(" (and %d more unreadable rows)", rejected - 1) or ""))
  end
  return f, funnel, { rows = rows, logged = logged, rejected = #rejects }
end

local function transitions_outcome(leads, spec, n, as_of, created)
  local f, funnel, tinfo, borrowed = load_funnel(spec)
  local stages = stage_list(spec.stages) or funnel.DEFAULT_STAGES
  local known = {}
  for _, s in ipairs(stages) do known[#known + 1] = s end
  known[#known + 1] = "disqualified"
  known[#known + 1] = "nurture"
  local reached = spec.reached
  local found = false
  for _, s in ipairs(known) do if s == reached then found = true end end
  if not found then
    if not borrowed then f:close() end
    raise(format("outcome: unknown stage '%s'%s (the stages: %s)", reached, dsl.did_you_mean(reached, known),
      concat(known, ", ")))
  end
  local id = id_column(leads, spec)
  local times = f:entered(reached, leads, id)
  if not borrowed then f:close() end
  local within = spec.within_days and spec.within_days * DAY or nil
  if within and not as_of and not created then
    raise("outcome: within_days counts from as_of, or from each lead's creation: give as_of, or a creation column "
      .. "(created = COLUMN)")
  end
  local flags, already = {}, {}
  for i = 1, n do
    local t = times[i]
    if as_of then
      if t ~= nil and t <= as_of then
        already[i] = true
      else
        flags[i] = t ~= nil and (within == nil or t <= as_of + within)
      end
    else
      local c = created and created[i]
      if within and c == nil then
        flags[i] = nil   -- no creation time: "within N days" cannot be told
      else
        flags[i] = t ~= nil and (within == nil or t <= c + within)
      end
    end
  end
  local description = format("reached %s", reached)
  if as_of then description = description .. " after " .. date_text(as_of) end
  if spec.within_days then
    description = description .. format(" within %s days%s", tostring(spec.within_days),
      as_of and "" or " of creation")
  end
  return flags, description, already, tinfo
end

---------------------------------------------------------------------------------------------------

-- outcome.labels(leads, spec) -> labels (a string of #leads bytes), info
function _M.labels(leads, spec)
  if not core.is_table(leads) then
    raise("outcome.labels: expects a leadq table of leads (leadq.read_csv), got " .. type(leads))
  end
  check_spec(spec)
  local n = #leads
  local as_of = parse_as_of(spec.as_of)
  local created, created_name = creation_times(leads, spec)
  local flags, description, already, tinfo
  if spec.transitions ~= nil then
    flags, description, already, tinfo = transitions_outcome(leads, spec, n, as_of, created)
  else
    flags, description = column_outcome(leads, spec, n)
    already = {}
  end
  local bytes, pos, neg, after, missing = {}, 0, 0, 0, 0
  for i = 1, n do
    local c = created and created[i]
    local b
    if as_of and c ~= nil and c > as_of then
      b = OUT
      after = after + 1
    elseif already[i] then
      b = OUT
    else
      local fl = flags[i]
      if fl == true then b = POS; pos = pos + 1
      elseif fl == false then b = NEG; neg = neg + 1
      else b = OUT; missing = missing + 1 end
    end
    bytes[i] = b
  end
  -- an already-reached lead created after as_of counts once, as created after
  local already_left = 0
  for i in pairs(already) do
    local c = created and created[i]
    if not (as_of and c ~= nil and c > as_of) then already_left = already_left + 1 end
  end
  local labels = concat(bytes)
  if as_of and created_name then
    description = description .. format(" (leads created by %s)", date_text(as_of))
  end
  if pos == 0 or neg == 0 then
    raise(format("outcome: %s: %d positive and %d negative leads once %d are left out: nothing to evaluate",
      description, pos, neg, n - pos - neg))
  end
  local info = {
    leads = pos + neg, positives = pos, negatives = neg, left_out = n - pos - neg, description = description,
    created_after = after, missing = missing, already_reached = already_left, as_of = as_of,
    created = created_name, transitions = tinfo,
  }
  return labels, info
end

-- A labels string from a Lua list of booleans (nil: left out): for tests and the REPL.
function _M.from_list(list, n)
  local bytes = {}
  for i = 1, n or #list do
    local v = list[i]
    bytes[i] = v == true and POS or v == false and NEG or (v == 1 and POS) or (v == 0 and NEG) or OUT
  end
  return concat(bytes)
end

-- Counts of a labels string: positives, negatives, left out.
function _M.counts(labels)
  local _, pos = labels:gsub(POS, "")
  local _, neg = labels:gsub("%z", "")
  return pos, neg, #labels - pos - neg
end

-- One sentence on what was left out, or nil.
function _M.left_out_text(info)
  if not info or (info.left_out or 0) == 0 then return nil end
  local parts = {}
  if (info.created_after or 0) > 0 then
    parts[#parts + 1] = format("%d created after %s", info.created_after, date_text(info.as_of))
  end
  if (info.already_reached or 0) > 0 then
    parts[#parts + 1] = format("%d that had already reached the stage by then", info.already_reached)
  end
  if (info.missing or 0) > 0 then parts[#parts + 1] = format("%d without an outcome value", info.missing) end
  return format("%d leads left out: %s", info.left_out, concat(parts, ", "))
end

-- epoch seconds of an as_of (a date or seconds); raises on anything else
_M.parse_as_of = parse_as_of

-- Does the spec name an outcome (a column or a transitions log)?
function _M.given(spec)
  return type(spec) == "table" and (spec.outcome ~= nil or spec.transitions ~= nil or spec.reached ~= nil
    or spec.within_days ~= nil)
end

return _M
