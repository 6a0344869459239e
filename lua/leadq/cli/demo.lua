-- `leadq demo`: generate sample leads, load them, score them with the shipped rules, explain one
-- MQL and backtest the score on the sample's own funnel: the tour of leadq in one command.
local cli = require("leadq.cli")
local inputs = require("leadq.cli.inputs")
local util = require("leadq.util")

local format = string.format

local _M = { _VERSION = "0.1.0" }

local thousands = util.thousands   -- 1234567 -> "1,234,567"
local normalize = cli.normalize    -- "./build/../rules/mql.lua" -> "rules/mql.lua": shorter paths printed
local column_values = inputs.column_values

-- The scoring half: scores dir/leads.csv and its events with rules/mql.lua then rules/sql.lua,
-- prints the summary, explains one MQL, then backtests the score on dir/transitions.csv.
function _M.score_sample(dir, out, root)
  root = root or "."
  dir = normalize(dir)
  local o = {
    rules = normalize(root .. "/rules/mql.lua") .. "," .. normalize(root .. "/rules/sql.lua"),
    leads = dir .. "/leads.csv",
    events = dir .. "/events.csv",
    out = dir .. "/scored.csv",
    ["as-of"] = "2026-11-01",
  }
  local input, code = inputs.load_inputs(o, out)
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
    local mql = assert(require("leadq").load_model(normalize(root .. "/rules/mql.lua")))
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

local DEMO_LEADS, DEMO_SEED = 20000, 42

local function run_demo(opts, out)
  local rules = cli.shipped_rules()
  if not rules then return nil, "demo: the shipped rules (rules/mql.lua) are not beside the leadq modules" end
  local root = normalize(rules .. "/..")              -- the folder holding rules/
  local source_tree = rules == normalize(cli.project_root() .. "/rules")
  local dir = opts.out or (source_tree and normalize(root .. "/build/demo") or "leadq-demo")
  local n = opts.leads or DEMO_LEADS
  local gen = require("leadq.gen")
  out.print(format("leadq demo: %s synthetic leads (seed %d) into %s", thousands(n), DEMO_SEED, dir))
  local summary, err = gen.generate { leads = n, seed = DEMO_SEED, out = dir }
  if not summary then return nil, err end
  require("leadq.cli.gen").print_summary(out, summary, dir)
  out.print("")
  local status, lerr = require("leadq.cli.load").run({ leads = dir .. "/leads.csv", events = dir .. "/events.csv",
    show = 5 }, out)
  if status ~= 0 then return status, lerr end
  return _M.score_sample(dir, out, root)
end

cli.commands.demo = {
  summary = "generate sample leads, score them with the shipped rules and explain one MQL",
  usage = "demo [--leads N] [--out DIR]",
  options = {
    leads = { type = "integer", help = "how many leads (default 20000)" },
    out = { type = "string", help = "where to write (default build/demo in a source tree, else ./leadq-demo)" },
  },
  run = run_demo,
}

return _M
