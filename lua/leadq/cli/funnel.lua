-- `leadq funnel`: funnel volumes, conversion, velocity, hand-off SLA and cost from transitions logs
-- (lua/leadq/funnel.lua), or from partial results written by --part and merged by --merge.
local cli = require("leadq.cli")

local format = string.format

local _M = { _VERSION = "0.1.0" }

local options = {
  transitions = { type = "list", help = "a log lead_id,stage,at[,reason,owner] (required unless --merge)" },
  map = { type = "list", help = "columns of the n-th --transitions: lead=COL,stage=COL,at=COL,reason=COL,owner=COL,"
    .. " or stage_is=STAGE when every row of that file is one stage" },
  leads = { type = "string", help = "a leads CSV with the dimensions, joined on --id" },
  id = { type = "string", help = "the leads' id column (default id)" },
  by = { type = "string", help = "dimensions, comma-separated: leads columns, <stage>_month, <stage>_week, owner" },
  spend = { type = "string", help = "a spend CSV source,month,spend: adds cost per mql, sql and customer" },
  format = { type = "string", help = "table (default: tables with a total row, within 100 columns), wide (every"
    .. " column in one table), csv or json" },
  stages = { type = "string", help = "the chain of stages (default lead,mql,sal,sql,opportunity,customer)" },
  ["sla-days"] = { type = "number", help = "days the mql to sales hand-off may take (default 2; 0: no SLA)" },
  reactions = { type = "string", help = "a reactions script: its sla { ... } times the hand-offs (working hours in"
    .. " its time zone), as the service does" },
  ["no-implied"] = { type = "flag", help = "count a stage only when the lead entered it itself" },
  part = { type = "string", help = "write the partial result to this file instead of a report (for leads split by"
    .. " lead across runs)" },
  merge = { type = "string", help = "partial results to merge and report, comma-separated (no --transitions)" },
  rejects = { type = "string", help = "write every rejected transition row to this CSV"
    .. " (file,line,lead,stage,at,message)" },
  threads = { type = "integer", help = "threads that read the files, check the log and aggregate (default: the"
    .. " machine's processors; the answer is the same for any)" },
}

local MAP_KEYS = { lead = true, stage = true, at = true, reason = true, owner = true, stage_is = true }

-- "lead=mql_id,at=won_date,stage_is=customer" -> { lead = "mql_id", ... }, or nil, message
function _M.parse_map(spec)
  local map = {}
  for item in tostring(spec):gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not k or v == "" then return nil, format("bad column mapping '%s' (expected name=column)", item) end
    if not MAP_KEYS[k] then
      return nil, format("unknown mapping key '%s' (expected lead, stage, at, reason, owner, stage_is)", k)
    end
    map[k] = v
  end
  return map
end

-- Runs and prints: the report on out.print, rejected rows (the first 20) on out.error.
-- Returns 0, or nil and a message.
local function print_run(run_opts, rejects_path, out)
  local funnel = require("leadq.funnel")
  local text, tab_or_err, rejects = funnel.run(run_opts)
  if not text then return nil, tab_or_err end
  if run_opts.part then text = text .. "; merge the parts with --merge FILE,FILE..." end
  out.print((text:gsub("\n$", "")))
  if rejects_path then
    local fh, err = io.open(rejects_path, "wb")
    if not fh then return nil, err end
    fh:write(funnel.rejects_csv(rejects or {}))
    fh:close()
  end
  if rejects and #rejects > 0 then
    out.error(format("leadq funnel: %d transition rows rejected (not counted)%s:", #rejects,
      rejects_path and (", all listed in " .. rejects_path) or ""))
    for k = 1, math.min(#rejects, 20) do
      local r = rejects[k]
      out.error(format("  %s:%s: %s%s", r.file or "?", r.line or "?", r.lead and ("lead " .. r.lead .. ": ") or "",
        r.message))
    end
    if #rejects > 20 then out.error(format("  ... and %d more", #rejects - 20)) end
  end
  return 0
end

-- --transitions and --map are repeatable: the n-th --map maps the n-th --transitions. A mapping
-- that does not parse is bad usage (status 2), as an unknown flag is.
local function run(opts, out)
  local paths, maps = opts.transitions or {}, opts.map or {}
  if #maps > 0 and #maps ~= #paths then
    return cli.fail(out, format("%d --transitions but %d --map: give one --map per --transitions, in the same"
      .. " order", #paths, #maps), 2)
  end
  local inputs = {}
  for i, path in ipairs(paths) do
    local map, err
    if maps[i] then
      map, err = _M.parse_map(maps[i])
      if not map then return cli.fail(out, err, 2) end
    end
    inputs[i] = { path = path, map = map }
  end
  local sla = opts["sla-days"]
  if sla == 0 then sla = false end
  -- the service's SLA: the funnel then counts the breaches the service sent
  local working
  if opts.reactions then
    if opts["sla-days"] ~= nil then return cli.fail(out, "--reactions and --sla-days both set the SLA: give one", 2) end
    local r, problems = require("leadq.reactions").load(opts.reactions)
    if not r then return nil, table.concat(problems, "\n") end
    local from_script = r:funnel_sla()
    if not from_script then return nil, opts.reactions .. ": declares no sla { ... } to time the hand-offs with" end
    sla, working = from_script.sla_days, from_script.sla_working
  end
  if #inputs == 0 and not opts.merge then return nil, "missing --transitions (or --merge)" end
  local core = require("leadq.core")
  -- the command's process ends with the run: memory freed (the transitions table after the load) is
  -- kept for the leads table and the funnel's arrays, which would fault fresh pages again;
  -- LEADQ_PAGE_POOL=0 keeps big blocks on the C heap (leadq.core's page pool off)
  core.keep_freed_memory(os.getenv("LEADQ_PAGE_POOL") ~= "0")
  local threads = opts.threads or core.cpus()
  if threads < 1 or threads > 256 then return cli.fail(out, "--threads must be 1 to 256", 2) end
  if #inputs > 0 and opts.merge then
    return nil, "--merge reads partial results, not --transitions: give one or the other"
  end
  return print_run({ transitions = inputs, leads = opts.leads, id = opts.id, by = opts.by, spend = opts.spend,
    format = opts.format, stages = opts.stages, sla_days = sla, sla_working = working, implied = not opts["no-implied"],
    part = opts.part, merge = opts.merge, threads = threads }, opts.rejects, out)
end

cli.commands.funnel = {
  summary = "funnel volumes, conversion, velocity, hand-off SLA and cost by lead dimensions and cohorts",
  usage = "funnel --transitions CSV [--map SPEC] [--leads CSV [--id COL]] [--by DIM,...] [--spend CSV]"
    .. " [--format table|wide|csv|json] [--stages a,b,...] [--sla-days N | --reactions FILE] [--no-implied]"
    .. " [--part FILE | --merge FILE,...] [--rejects CSV] [--threads N]",
  options = options,
  run = run,
}

return _M
