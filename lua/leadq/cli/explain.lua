-- `leadq explain`: one lead's score, which rules fired and the points each gave; or, with
-- --accounts, one account's (leadq.cli.accounts).
local cli = require("leadq.cli")
local inputs = require("leadq.cli.inputs")

local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local fail = cli.fail
local column_values = inputs.column_values
local load_inputs = inputs.load_inputs

local function find_row(tbl, id)
  local ids = column_values(tbl, "id")
  if not ids then return nil end
  for i = 1, #tbl do
    if ids[i] == id or tostring(ids[i]) == id then return i end
  end
  return nil
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
  -- a run of several models finds the lead's own events in the table as a single model does
  local ok, explanation, err = pcall(input.model.explain, input.model, input.tbl, row, input.events, input.options)
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
