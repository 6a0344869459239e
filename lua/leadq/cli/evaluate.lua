-- `leadq evaluate`: does a model's score predict the outcome? AUC, deciles, statuses, grades,
-- calibration and per-rule numbers (lua/leadq/evaluate.lua), as text or JSON.
local cli = require("leadq.cli")
local outcome = require("leadq.outcome")
local outcome_flags = require("leadq.cli.outcome")

local format = string.format

local _M = { _VERSION = "0.1.0" }

local options = {
  rules = { type = "list", required = true,
    help = "rule files, comma-separated or repeated (a run: --model names the one evaluated)" },
  leads = { type = "string", required = true, help = "the leads CSV" },
  events = { type = "string", help = "an events CSV for behaviour rules" },
  map = { type = "string", help = "a CSV 'column,field' renaming CRM columns to the rules' fields" },
  model = { type = "string", help = "with several rule files: the model to evaluate (default the first)" },
  threads = { type = "integer", help = "threads for scoring" },
  format = { type = "string", help = "table (default) or json" },
  bands = { type = "integer", help = "calibration bands, 1 to 20 (default 10)" },
  id = { type = "string", help = "the leads' id column, joined to the transitions (default id)" },
}
for name, spec in pairs(outcome_flags.options) do options[name] = spec end
_M.options = options

local split = require("leadq.util").split_list   -- rule files: "a.lua,b.lua", or the flag repeated
_M.split = split

-- A model (one file) or a run (several), or nil, message. Shipped models may be named the short way.
function _M.load_rules(files)
  local leadq = require("leadq")
  if #files == 0 then return nil, "--rules: no file given" end
  files = cli.rule_files(files)
  if #files == 1 then return leadq.load_model(files[1]) end
  return leadq.load_models(files)
end

-- The leads (with --map) and events, or nil, message.
function _M.load_data(opts)
  local leadq = require("leadq")
  local map
  if opts.map then
    local err
    map, err = require("leadq.cli.inputs").read_map(opts.map)
    if not map then return nil, err end
  end
  local leads, err = leadq.read_csv(opts.leads, map and { map = map } or nil)
  if not leads then return nil, err end
  local events
  if opts.events then
    events, err = leadq.read_events(opts.events)
    if not events then return nil, err end
  end
  return leads, events
end

-- The outcome spec of the flags, checked for what the flags alone can tell.
function _M.spec_of(opts, required)
  local spec = outcome_flags.spec_of(opts)
  spec.id = opts.id
  if required and not outcome.given(spec) then
    return nil, "give the outcome: --outcome COLUMN (or COLUMN=VALUE), or --transitions CSV --reached STAGE"
  end
  if spec.reached and not spec.transitions then return nil, "--reached needs --transitions CSV" end
  if spec.transitions and not spec.reached then
    return nil, "--transitions needs --reached STAGE: the stage that counts as converted (e.g. customer)"
  end
  if spec.within_days and not spec.transitions then
    return nil, "--within-days goes with --transitions and --reached"
  end
  return spec
end

local function run(opts, out)
  local evaluate = require("leadq.evaluate")
  local fmt = opts.format or "table"
  if fmt ~= "table" and fmt ~= "json" then return nil, format("--format: expected table or json, got '%s'", fmt) end
  local spec, serr = _M.spec_of(opts, true)
  if not spec then return nil, serr end
  local model, merr = _M.load_rules(split(opts.rules))
  if not model then return nil, merr end
  local leads, events = _M.load_data(opts)
  if not leads then return nil, events end
  spec.threads, spec.model, spec.bands = opts.threads, opts.model, opts.bands
  local started = require("leadq.core").now()
  local ok, r = pcall(evaluate.evaluate, model, leads, events, spec)
  if not ok then return nil, evaluate.bare(r) end
  if fmt == "json" then
    out.print(require("leadq.json").encode(evaluate.to_json(r)))
  else
    out.print(tostring(r))
    out.print("")
    out.print(format("(scored and evaluated in %.2f s)", require("leadq.core").now() - started))
  end
  return 0
end

cli.commands.evaluate = {
  summary = "how well a model's score predicts an outcome: AUC, deciles, statuses, calibration, rules",
  usage = "evaluate --rules FILE --leads CSV [--events CSV] (--outcome COL[=VALUE] | --transitions CSV"
    .. " --reached STAGE [--within-days N]) [--as-of DATE] [--format table|json]",
  help = "The outcome is a column of the leads (1/true/yes positive, or COLUMN=VALUE), or reaching a stage\n"
    .. "in a transitions log (as `leadq funnel` reads it). --as-of makes it a backtest: leads created after\n"
    .. "the date are left out, events after it are not used, and the outcome is reaching the stage after it.",
  options = options,
  run = run,
}

-- The end of `leadq demo`: the shipped MQL model against what the demo's leads went on to do, as a
-- backtest three months before the end of the data.
function _M.demo(dir, out, root)
  local rules = cli.normalize(root .. "/rules/mql.lua")
  local args = { rules = { rules }, leads = dir .. "/leads.csv", events = dir .. "/events.csv",
                 transitions = dir .. "/transitions.csv", reached = "sql", ["within-days"] = 90,
                 ["as-of"] = "2026-08-01" }
  out.print("")
  out.print(format("does the MQL score predict who becomes an SQL? (build/leadq evaluate --rules %s --leads %s "
    .. "--events %s --transitions %s --reached sql --within-days 90 --as-of 2026-08-01)", rules, args.leads,
    args.events, args.transitions))
  local status, err = run(args, out)
  if status ~= 0 then return nil, err end
  return 0
end

return _M
