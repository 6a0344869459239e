-- `leadq explain`: one lead's score, which rules fired and the points each gave; or, with
-- --accounts, one account's (leadq.cli.accounts).
local cli = require("leadq.cli")
local inputs = require("leadq.cli.inputs")

local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local fail = cli.fail
local column_values, column_names = inputs.column_values, inputs.column_names
local load_inputs = inputs.load_inputs

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
    local text, aerr = require("leadq.cli.accounts").explain_run({ rules = o.accounts, account = o.account,
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

cli.commands.explain = {
  summary = "explain one lead's score: which rules fired and the points each gave",
  usage = "explain --rules FILE[,FILE...] --leads CSV (--id ID | --accounts AQL.lua --account NAME) [--events CSV]"
    .. " [--map FILE] [--as-of DATE]",
  options = inputs.options_with { id = { type = "string", help = "the lead's id" },
    accounts = { type = "string", help = "an account model (rules/aql.lua): explain an account instead" },
    account = { type = "string", help = "with --accounts: the account (e.g. acme.com) to explain" },
    ["account-score"] = { type = "string", help = "the lead score rolled up (default: the first model's total)" } },
  run = function(opts, out) return _M.explain(inputs.resolve_rule_files(opts), out) end,
}

return _M
