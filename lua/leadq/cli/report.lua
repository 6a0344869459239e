-- `leadq report`: one self-contained HTML file with the funnel, the scores and the model's quality.
local cli = require("leadq.cli")
local outcome = require("leadq.outcome")
local outcome_flags = require("leadq.cli.outcome")

local format = string.format

local options = {
  rules = { type = "list", required = true, help = "rule files, comma-separated or repeated (the first is reported)" },
  leads = { type = "string", required = true, help = "the leads CSV" },
  events = { type = "string", help = "an events CSV for behaviour rules" },
  spend = { type = "string", help = "a spend CSV source,month,spend: cost per mql, sql and customer by source" },
  by = { type = "string", help = "the funnel's dimension (default source)" },
  id = { type = "string", help = "the leads' id column, joined to the transitions (default id)" },
  ["sla-days"] = { type = "number", help = "days the mql to sales hand-off may take (default 2)" },
  title = { type = "string", help = "the report's title" },
  threads = { type = "integer", help = "threads that read the files and score (default: the machine's processors)" },
  out = { type = "string", required = true, help = "the HTML file to write" },
}
for name, spec in pairs(outcome_flags.options) do options[name] = spec end
options.transitions = { type = "string",
  help = "a transitions log lead_id,stage,at[,reason,owner]: the funnel, and with --reached the outcome" }

cli.commands.report = {
  summary = "write one HTML report: statuses, grades, scores, funnel, velocity, cost, outcomes",
  usage = "report --rules FILE[,FILE] --leads CSV [--events CSV] [--transitions CSV] [--spend CSV]"
    .. " [--outcome COL[=VALUE] | --reached STAGE [--within-days N]] [--by DIM] [--as-of DATE] [--threads N]"
    .. " --out FILE.html",
  options = options,
  run = function(opts, out)
    local report = require("leadq.report")
    local spec = outcome_flags.spec_of(opts)
    if spec.reached and not opts.transitions then return nil, "--reached needs --transitions" end
    local core = require("leadq.core")
    local threads = opts.threads or core.cpus()
    if threads < 1 or threads > 256 then return nil, "--threads must be 1 to 256" end
    local t0 = core.now()
    local ok, data = pcall(report.write, {
      rules = cli.rule_files(opts.rules), leads = opts.leads, events = opts.events, transitions = opts.transitions,
      spend = opts.spend, by = opts.by, id = opts.id, title = opts.title, as_of = spec.as_of,
      sla_days = opts["sla-days"] == 0 and false or opts["sla-days"], threads = threads,
      outcome = outcome.given(spec) and spec or nil }, opts.out)
    if not ok then return nil, tostring(data) end
    local f = io.open(opts.out, "rb")
    local size = f and f:seek("end") or 0
    if f then f:close() end
    out.print(format("wrote %s (%s, %s leads, model %s, rules hash %s) in %.2f s on %d thread%s", opts.out,
      size >= 1e6 and format("%.1f MB", size / 1e6) or format("%.0f kB", size / 1e3), cli.thousands(data.leads),
      data.model.name, data.model.hash, core.now() - t0, threads, threads == 1 and "" or "s"))
    return 0
  end,
}

return cli.commands.report
