-- `leadq profile`: conversion by value for every column, columns ranked by what they tell
-- (lua/leadq/profile.lua does the work).
local cli = require("leadq.cli")
local outcome = require("leadq.outcome")
local outcome_flags = require("leadq.cli.outcome")

local options = {
  leads = { type = "string", required = true, help = "the leads CSV" },
  exclude = { type = "list", help = "columns to leave out, comma-separated" },
  map = { type = "string", help = "a CSV column,field renaming the leads' columns, as score takes it" },
  format = { type = "string", help = "table (default), csv or json" },
  bins = { type = "integer", help = "quantile bins for numbers and times (default 10)" },
  ["min-count"] = { type = "integer", help = "leads a value needs for a line of its own (default 30)" },
}
for name, spec in pairs(outcome_flags.options) do options[name] = spec end

local function run(opts, out)
  local leadq = require("leadq")
  local profile = require("leadq.profile")
  local spec = outcome_flags.spec_of(opts)
  if not outcome.given(spec) then
    return nil, "profile needs an outcome: --outcome COLUMN[=VALUE] or --transitions FILE --reached STAGE"
  end
  local fmt = opts.format or "table"
  if fmt ~= "table" and fmt ~= "csv" and fmt ~= "json" then
    return nil, string.format("--format must be table, csv or json, got '%s'", fmt)
  end
  if opts.bins ~= nil and (opts.bins < 2 or opts.bins > 250) then
    return nil, string.format("--bins must be from 2 to 250, got %d", opts.bins)
  end
  if opts["min-count"] ~= nil and opts["min-count"] < 1 then
    return nil, string.format("--min-count must be 1 or more, got %d", opts["min-count"])
  end
  local read_options
  if opts.map then
    local map, err = require("leadq.cli.inputs").read_map(opts.map)
    if not map then return nil, err end
    read_options = { map = map }
  end
  local leads, err = leadq.read_csv(opts.leads, read_options)
  if not leads then return nil, err end
  if opts.exclude then
    local list = {}
    for _, item in ipairs(opts.exclude) do
      for part in item:gmatch("[^,]+") do list[#list + 1] = part:match("^%s*(.-)%s*$") end
    end
    spec.exclude = list
  end
  spec.max_bins = opts.bins
  spec.min_count = opts["min-count"]
  local ok, report = pcall(profile.profile, leads, spec)
  if not ok then return nil, (tostring(report):gsub("^[^\n]-%.lua:%d+: ", "")) end
  local text = profile.format(report, fmt)
  for line in text:gmatch("([^\n]*)\n") do out.print(line) end
  return 0
end

cli.commands.profile = {
  summary = "conversion by value for every column, columns ranked by how much they tell",
  usage = "profile --leads CSV --outcome COL[=VALUE] | --transitions CSV --reached STAGE [--exclude COL,...] "
    .. "[--map FILE] [--bins N] [--min-count N] [--format table|csv|json]",
  options = options,
  run = run,
}

return cli.commands.profile
