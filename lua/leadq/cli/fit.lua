-- `leadq fit`: learn a rule script from outcomes (lua/leadq/fit.lua does the work).
local cli = require("leadq.cli")
local outcome = require("leadq.outcome")
local outcome_flags = require("leadq.cli.outcome")

local format = string.format

local options = {
  leads = { type = "string", required = true, help = "the leads CSV" },
  events = { type = "string", help = "an events CSV: the script declares and fits event features" },
  exclude = { type = "list", help = "columns to leave out, comma-separated (e.g. known only after the outcome)" },
  map = { type = "string", help = "a CSV column,field renaming the leads' columns, as score takes it" },
  out = { type = "string", required = true, help = "the rule script to write (.lua)" },
  ["mql-share"] = { type = "number", help = "the share of leads that should be mql (default 0.1)" },
  ["mql-precision"] = { type = "number", help = "or the share of mql leads that should convert" },
  interactions = { type = "integer", help = "pairs of columns that may add points together (default 3)" },
  base = { type = "string", help = "a rule script whose rules to keep: only their points are fitted" },
  seed = { type = "integer", help = "the seed of the inner validation split (default 1)" },
  name = { type = "string", help = "the model's name (default fitted)" },
}
for name, spec in pairs(outcome_flags.options) do options[name] = spec end

local function plain(message)
  return (tostring(message):gsub("^[^\n]-%.lua:%d+: ", ""))
end

local function run(opts, out)
  local leadq = require("leadq")
  local fit = require("leadq.fit")
  local spec = outcome_flags.spec_of(opts)
  if not outcome.given(spec) then return nil, "fit needs an outcome: --outcome COLUMN[=VALUE] or --transitions " ..
    "FILE --reached STAGE" end
  if opts["mql-share"] and opts["mql-precision"] then return nil, "give --mql-share or --mql-precision, not both" end
  local read_options
  if opts.map then
    local map, err = require("leadq.cli.inputs").read_map(opts.map)
    if not map then return nil, err end
    read_options = { map = map }
  end
  local started = require("leadq.core").now()
  local leads, err = leadq.read_csv(opts.leads, read_options)
  if not leads then return nil, err end
  local events
  if opts.events then
    events, err = leadq.read_events(opts.events)
    if not events then return nil, err end
  end
  if opts.exclude then
    local list = {}
    for _, item in ipairs(opts.exclude) do
      for part in item:gmatch("[^,]+") do list[#list + 1] = part:match("^%s*(.-)%s*$") end
    end
    spec.exclude = list
  end
  spec.mql_share = opts["mql-share"]
  spec.mql_precision = opts["mql-precision"]
  spec.interactions = opts.interactions
  spec.base = opts.base
  spec.seed = opts.seed
  spec.name = opts.name
  local ok, text, report = pcall(fit.fit, leads, events, spec)
  if not ok then return nil, plain(text) end
  local f, ferr = io.open(opts.out, "wb")
  if not f then return nil, format("cannot write %s: %s", opts.out, (tostring(ferr):gsub("^[^:]*: ", ""))) end
  f:write(text)
  local closed, cerr = f:close()
  if not closed then return nil, format("cannot write %s: %s", opts.out, tostring(cerr)) end
  local seconds = require("leadq.core").now() - started
  out.print(format("fitted %s leads (%s converted: %s) over %d columns in %.2f s", cli.thousands(report.leads),
    cli.thousands(report.positives), report.description, report.columns, seconds))
  out.print(format("wrote %s: %d rules, %d points = odds x2, mql at %d points (%s of training leads, %s of " ..
    "them converted)", opts.out, report.rules, report.points_per_double, report.thresholds.mql,
    fit.pct(report.mql_leads / report.leads), fit.pct(report.mql_leads > 0 and
      report.mql_positives / report.mql_leads or 0)))
  return 0
end

cli.commands.fit = {
  summary = "learn a rule script's rules and points from outcomes (an additive model, written as rules)",
  usage = "fit --leads CSV [--events CSV] --outcome COL[=VALUE] | --transitions CSV --reached STAGE "
    .. "[--exclude COL,...] [--map FILE] --out FILE.lua [--mql-share S | --mql-precision P] [--interactions N] "
    .. "[--base FILE.lua] [--seed N]",
  options = options,
  run = run,
}

return cli.commands.fit
