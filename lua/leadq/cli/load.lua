-- `leadq load`: load leads and events CSV files and show what came in: rows, columns and their
-- types, memory, rejected rows, speed.
local cli = require("leadq.cli")
local util = require("leadq.util")

local format = string.format

local _M = { _VERSION = "0.1.0" }

local thousands = util.thousands   -- 1234567 -> "1,234,567"
local megabytes, file_size = cli.megabytes, cli.file_size

-- Wall time (a threaded reader's CPU time adds the threads up).
local function clock()
  return require("leadq.core").now()
end

-- Loads one CSV and prints what came in: rows, columns and types, rejected rows, speed.
local function describe_load(out, label, path, reader, limit)
  local size = file_size(path)
  if not size then return nil, format("cannot open %s", path) end
  local started = clock()
  local t, err = reader(path)
  local seconds = clock() - started
  if not t then return nil, err end
  local schema = t:schema()
  local rate = seconds > 0 and format("%.1f MB/s", size / 1e6 / seconds) or "too fast to time"
  out.print(format("%s %s: %s rows, %d columns, %s in %.2f s (%s)", label, path, thousands(#t), #schema,
    megabytes(size), seconds, rate))
  local width = 0
  for _, c in ipairs(schema) do if #c.name > width then width = #c.name end end
  for _, c in ipairs(schema) do
    -- padded by hand: string.format refuses widths of 100 and more
    out.print("  " .. c.name .. string.rep(" ", width - #c.name) .. "  " .. c.type)
  end
  if t.memory then
    local ok, bytes = pcall(t.memory, t)
    if ok and type(bytes) == "number" then out.print(format("  in memory: %s", megabytes(bytes))) end
  end
  local rejects = t:rejects()
  if #rejects == 0 then
    out.print("  rejected rows: none")
  else
    out.print(format("  rejected rows: %s (the first %d below)", thousands(#rejects),
      #rejects < limit and #rejects or limit))
    for i = 1, #rejects < limit and #rejects or limit do
      local r = rejects[i]
      out.print("    " .. tostring(r.message or r.reason))
    end
  end
  return t
end

-- A reader of one table that takes a snapshot too (told by its first bytes): its table of that name.
local function reader_of(read_csv, name)
  local leadq = require("leadq")
  return function(path)
    if path == "-" or not leadq.is_snapshot(path) then return read_csv(path) end
    local s, err = leadq.read_snapshot(path)
    if not s then return nil, err end
    if not s[name] then return nil, format("%s: the snapshot holds no %s table", path, name) end
    return s[name]
  end
end

-- opts as the flags give them: leads, events (paths), show (how many rejected rows to list) and
-- save (a snapshot to write what was loaded into).
function _M.run(opts, out)
  local leadq = require("leadq")
  if not opts.leads and not opts.events then
    return nil, "load: give --leads CSV, --events CSV or both"
  end
  local limit = opts.show or 5
  local loaded = {}
  if opts.leads then
    local t, err = describe_load(out, "leads", opts.leads, reader_of(leadq.read_csv, "leads"), limit)
    if not t then return nil, err end
    loaded.leads = t
  end
  if opts.events then
    local t, err = describe_load(out, "events", opts.events, reader_of(leadq.read_events, "events"), limit)
    if not t then return nil, err end
    loaded.events = t
  end
  if opts.save then
    local started = clock()
    local ok, err = leadq.save_snapshot(opts.save, loaded)
    if not ok then return nil, err end
    out.print(format("saved %s to the snapshot %s (%s) in %.2f s: give it as --leads to read it back without parsing",
      loaded.leads and loaded.events and "leads and events" or (loaded.leads and "leads" or "events"), opts.save,
      megabytes(file_size(opts.save) or 0), clock() - started))
  end
  return 0
end

cli.commands.load = {
  summary = "load leads and events CSV files and show what came in",
  usage = "load --leads CSV [--events CSV] [--show N] [--save FILE]",
  options = {
    leads = { type = "string", help = "a leads CSV file (or a snapshot)" },
    events = { type = "string", help = "an events CSV file (lead_id, type, at, ...)" },
    save = { type = "string", help = "write the loaded tables to a snapshot FILE, which score --leads reads back "
      .. "many times faster than the CSV (for repeated runs on the same export)" },
    show = { type = "integer", help = "how many rejected rows to list", default = 5 },
  },
  run = _M.run,
}

return _M
