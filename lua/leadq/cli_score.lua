-- The scoring commands of the command-line tool: explain, check, and the scoring half of demo
-- (score is leadq.cli.score). Each command is a function(options, out) returning an exit status;
-- `out` is { print = f, error = f }.
local leadq = require("leadq")
local cli = require("leadq.cli")
local inputs = require("leadq.cli.inputs")

local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local fail = cli.fail
local column_values, column_names = inputs.column_values, inputs.column_names
local load_inputs = inputs.load_inputs

---------------------------------------------------------------------------------------------------
-- check
---------------------------------------------------------------------------------------------------

function _M.check(files, out)
  if #files == 0 then return fail(out, "check: give one or more rule files", 2) end
  local bad = 0
  for _, path in ipairs(files) do
    local reactions = require("leadq.reactions")   -- a reactions script is checked as one
    local mapping = require("leadq.mapping")       -- and a mapping script as one
    local check = reactions.is_reactions_file(path) and reactions.check or
      (mapping.is_mapping_file(path) and mapping.check) or leadq.check
    local ok, problems = check(path)
    if ok then
      out.print(path .. ": ok")
    else
      bad = bad + 1
      for _, p in ipairs(problems) do out.print(p) end
    end
  end
  if bad > 0 then
    out.print(format("%d of %d file%s with problems", bad, #files, #files == 1 and "" or "s"))
    return 1
  end
  return 0
end

---------------------------------------------------------------------------------------------------
-- explain
---------------------------------------------------------------------------------------------------

local function find_row(tbl, id)
  local ids = column_values(tbl, "id")
  if not ids then return nil end
  for i = 1, #tbl do
    if ids[i] == id or tostring(ids[i]) == id then return i end
  end
  return nil
end

-- One lead's events as a list of records: a run of several models explains a record with its own
-- events (Run:explain passes a table's events on as they are, which its models cannot read).
local function lead_events(events, id)
  local names = column_names(events)
  local lead_col = events:has("lead_id") and "lead_id" or "lead"
  local leads, cols, list = column_values(events, lead_col), {}, {}
  for _, n in ipairs(names) do cols[n] = column_values(events, n) end
  for r = 1, #events do
    if tostring(leads[r]) == id then
      local e = {}
      for _, n in ipairs(names) do e[n] = cols[n][r] end
      list[#list + 1] = e
    end
  end
  return list
end

function _M.explain(o, out)
  if o.account or o.accounts then    -- an account: the account model on the leads' results rolled up
    if not (o.account and o.accounts) then
      return fail(out, "explaining an account needs --accounts FILE (the account model) and --account NAME", 2)
    end
    local input, code = load_inputs(o, out)
    if not input then return code end
    local result, err = input.model:score(input.tbl, input.events, input.options)
    if not result then return fail(out, tostring(err)) end
    local text, aerr = require("leadq.accounts").explain_run({ rules = o.accounts, account = o.account,
      leads = input.tbl, results = result, events = input.events, score = o["account-score"],
      as_of = input.options.as_of })
    if not text then return fail(out, aerr) end
    out.print(text)
    return 0
  end
  if not o.id then return fail(out, "missing --id ID", 2) end
  local input, code = load_inputs(o, out)
  if not input then return code end
  local row
  if input.tbl:has("id") then
    row = find_row(input.tbl, tostring(o.id))
    if not row then return fail(out, format("no lead with id '%s' in %s", tostring(o.id), o.leads)) end
  else   -- the ids score writes for a file with no id column: row numbers
    local n = tonumber(o.id)
    if not n or n ~= floor(n) or n < 1 or n > #input.tbl then
      return fail(out, format("%s has no 'id' column: give a row number from 1 to %d (the id score writes), or "
        .. "name the id column with --map (e.g. a line 'Lead ID,id')", o.leads, #input.tbl))
    end
    row = n
  end
  local ok, explanation, err
  if input.multi and input.events then
    ok, explanation, err = pcall(input.model.explain, input.model, input.tbl:row(row),
      lead_events(input.events, tostring(o.id)), input.options)
  else
    ok, explanation, err = pcall(input.model.explain, input.model, input.tbl, row, input.events, input.options)
  end
  if not ok then return fail(out, tostring(explanation)) end
  if not explanation then return fail(out, tostring(err)) end
  out.print(tostring(explanation))
  return 0
end

---------------------------------------------------------------------------------------------------
-- demo: the scoring half (the frame generates the sample into dir first)
---------------------------------------------------------------------------------------------------

-- "./build/../rules/mql.lua" -> "rules/mql.lua": shorter paths in what the demo prints.
local function tidy(path)
  local prev
  repeat
    prev = path
    path = path:gsub("/%./", "/"):gsub("([^/]+)/%.%./", function(seg)
      if seg == ".." then return nil end
      return ""
    end, 1)
  until path == prev
  return (path:gsub("^%./", ""))
end
_M.tidy = tidy

-- Scores dir/leads.csv and its events with rules/mql.lua then rules/sql.lua, prints the summary,
-- explains one MQL.
function _M.demo(dir, out, root)
  root = root or "."
  dir = tidy(dir)
  local o = {
    rules = tidy(root .. "/rules/mql.lua") .. "," .. tidy(root .. "/rules/sql.lua"),
    leads = dir .. "/leads.csv",
    events = dir .. "/events.csv",
    out = dir .. "/scored.csv",
    ["as-of"] = "2026-11-01",
  }
  local input, code = load_inputs(o, out)
  if not input then return code end
  out.print("")
  local status, result = require("leadq.cli.score").run_score(input, o, out)
  if status ~= 0 then return status end
  -- one lead the MQL model calls an MQL, best grade first
  local mql_status = column_values(result, "mql.status")
  local grades = column_values(result, "mql.grade")
  local row
  for _, wanted in ipairs { "A1", "A2", "B1", "A3", "B2" } do
    for i = 1, #input.tbl do
      if mql_status[i] == "mql" and grades[i] == wanted then row = i break end
    end
    if row then break end
  end
  if not row then
    for i = 1, #input.tbl do
      if mql_status[i] == "mql" then row = i break end
    end
  end
  if row then
    local mql = assert(leadq.load_model(tidy(root .. "/rules/mql.lua")))
    local id = column_values(input.tbl, "id")[row]
    out.print("")
    out.print(format("why lead %s is an MQL "
      .. "(build/leadq explain --rules rules/mql.lua --leads %s --events %s --id %s --as-of %s):",
      tostring(id), o.leads, o.events, tostring(id), o["as-of"]))
    out.print(tostring(mql:explain(input.tbl, row, input.events, input.options)))
  end
  -- last: does the score predict what the leads went on to do? (a backtest on the demo's transitions)
  return require("leadq.cli.evaluate").demo(dir, out, root)
end

return _M
