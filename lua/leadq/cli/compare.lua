-- `leadq compare`: the preview before publishing a rule change (lua/leadq/compare.lua).
local cli = require("leadq.cli")
local outcome_flags = require("leadq.cli.outcome")

local format = string.format

local options = {
  rules = { type = "list", required = true,
    help = "given twice: the old rules, then the new (each FILE or FILE,FILE for a run)" },
  leads = { type = "string", required = true, help = "the leads CSV" },
  events = { type = "string", help = "an events CSV for behaviour rules" },
  map = { type = "string", help = "a CSV 'column,field' renaming CRM columns to the rules' fields" },
  model = { type = "string", help = "with runs of several rule files: the model compared (default the first)" },
  threads = { type = "integer", help = "threads for scoring" },
  show = { type = "integer", help = "how many leads that change status to list (default 20)" },
  format = { type = "string", help = "table (default) or json" },
  id = { type = "string", help = "the leads' id column (default id)" },
}
for name, spec in pairs(outcome_flags.options) do options[name] = spec end

local function run(opts, out)
  local ev_cli = require("leadq.cli.evaluate")
  local compare = require("leadq.compare")
  local fmt = opts.format or "table"
  if fmt ~= "table" and fmt ~= "json" then return nil, format("--format: expected table or json, got '%s'", fmt) end
  if #opts.rules ~= 2 then
    return nil, format("compare needs --rules twice: the old rules, then the new (got %d)", #opts.rules)
  end
  local spec, serr = ev_cli.spec_of(opts, false)
  if not spec then return nil, serr end
  local old, oerr = ev_cli.load_rules(ev_cli.split({ opts.rules[1] }))
  if not old then return nil, oerr end
  local new, nerr = ev_cli.load_rules(ev_cli.split({ opts.rules[2] }))
  if not new then return nil, nerr end
  local leads, events = ev_cli.load_data(opts)
  if not leads then return nil, events end
  spec.threads, spec.model, spec.show = opts.threads, opts.model, opts.show
  local ok, c = pcall(compare.compare, old, new, leads, events, spec)
  if not ok then return nil, require("leadq.evaluate").bare(c) end
  if fmt == "json" then out.print(require("leadq.json").encode(compare.to_json(c)))
  else out.print(tostring(c)) end
  return 0
end

cli.commands.compare = {
  summary = "preview a rule change: how statuses move from old rules to new, and which ranks outcomes better",
  usage = "compare --rules OLD.lua --rules NEW.lua --leads CSV [--events CSV] [--outcome COL[=VALUE] |"
    .. " --transitions CSV --reached STAGE [--within-days N]] [--as-of DATE] [--show N] [--format table|json]",
  options = options,
  run = run,
}

return {}
