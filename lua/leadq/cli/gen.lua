-- `leadq gen`: synthetic leads, events, funnel transitions and spend as CSV files (leadq.gen).
local cli = require("leadq.cli")
local util = require("leadq.util")

local format = string.format
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local thousands = util.thousands   -- 1234567 -> "1,234,567"

-- What was written: the totals, then each file with its rows and size (demo prints the same).
function _M.print_summary(out, summary, dir)
  out.print(format("wrote %s leads, %s events, %s transitions and %s spend rows to %s in %.1f s",
    thousands(summary.leads), thousands(summary.events), thousands(summary.transitions),
    thousands(summary.spend), dir, summary.seconds))
  local gen = require("leadq.gen")
  local width = 0
  for _, name in ipairs(gen.files) do width = math.max(width, #summary.files[name]) end
  for _, name in ipairs(gen.files) do
    local path = summary.files[name]
    local size = cli.file_size(path)
    out.print(format("  %-" .. width .. "s %12s rows  %10s", path, thousands(summary[name]),
      size and cli.megabytes(size) or "?"))
  end
end

local function run_gen(opts, out)
  local gen = require("leadq.gen")
  local n = opts.leads
  if n < 1 or n > 99999999 then return nil, "gen: --leads must be from 1 to 99,999,999" end
  if opts.seed < 0 or opts.seed > 9007199254740992 then return nil, "gen: --seed must be from 0 to 2^53" end
  local progress
  if n >= 1000000 then
    local step = floor(n / 10)
    progress = function(done, total)
      if done % step < 100000 then
        out.error(format("gen: %s of %s leads", thousands(done), thousands(total)))
      end
    end
  end
  local summary, err = gen.generate { leads = n, seed = opts.seed, out = opts.out, progress = progress,
                                      product = opts.usage or nil, intent = opts.intent or nil }
  if not summary then return nil, err end
  _M.print_summary(out, summary, opts.out)
  return 0
end

cli.commands.gen = {
  summary = "write synthetic leads, events, funnel transitions and spend as CSV files",
  usage = "gen --leads N [--seed S] --out DIR [--usage] [--intent]",
  help = "Writes DIR/leads.csv, events.csv, transitions.csv and spend.csv: twelve months of data\n"
    .. "ending 2026-10-31. The same seed gives the same bytes, under every Lua.",
  options = {
    leads = { type = "integer", required = true, help = "how many leads" },
    seed = { type = "integer", default = 1, help = "the random seed" },
    out = { type = "string", required = true, help = "the folder to write into (created if missing)" },
    usage = { type = "flag", help = "add product-usage events (trials, active days...) for rules/pql.lua" },
    intent = { type = "flag", help = "add account intent events (keyed by the company's domain) for rules/aql.lua" },
  },
  run = run_gen,
}

return _M
