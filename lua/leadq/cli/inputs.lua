-- leadq.cli.inputs: what the scoring commands (score, explain, demo) share to read their input: the
-- options they all take, the rule files named the short way, map files, the locale flags, and the
-- rules, leads and events loaded with progress and timings.
local cli = require("leadq.cli")
local util = require("leadq.util")

local format = string.format
local concat = table.concat
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local fail = cli.fail
local thousands = util.thousands   -- 1234567 -> "1,234,567"
-- "a.lua,b.lua" (or a list of them, when the flag was repeated) -> { "a.lua", "b.lua" }
local split_list = util.split_list

-- The flags score and explain both take (each adds its own beside it).
_M.options = {
  rules = { type = "list", help = "rule files, comma-separated or repeated (or shipped models: mql,sql)" },
  leads = { type = "string", help = "the leads CSV, or gzip of it ('-': standard input)" },
  events = { type = "string", help = "an events CSV for behaviour rules, or gzip of it ('-': standard input); score"
    .. " streams a plain file through the feature pass, never holding it" },
  map = { type = "string", help = "a mapping script (rules/README.md) or a CSV 'column,field' renaming CRM columns"
    .. " to the rules' fields" },
  ["events-map"] = { type = "string", help = "a mapping script for the events file" },
  decimal = { type = "string", help = "the decimal mark of numbers: . (default) or ," },
  thousands = { type = "string", help = "the thousands separator: , . ' (a space) or none (default: . with"
    .. " --decimal , and , otherwise)" },
  ["date-format"] = { type = "string", help = "dates like %m/%d/%Y or %d.%m.%Y %H:%M (ISO 8601 is always read)" },
  tz = { type = "string", help = "the UTC offset of times written without one, e.g. +02:00" },
  ["as-of"] = { type = "string", help = "the date scores are computed for, e.g. 2026-11-01" },
  threads = { type = "integer", help = "threads that read the files, fold the events, score and write (the same"
    .. " answers for any number)" },
  strict = { type = "flag", help = "a field the rules read that no column holds is an error (default: read as"
    .. " missing, with a warning)" },
}

-- The shared options with a command's own added (or replacing a shared one's help).
function _M.options_with(extra)
  local t = {}
  for k, v in pairs(_M.options) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

-- --rules and --accounts name files, or shipped models the short way ("mql,sql"): the files.
function _M.resolve_rule_files(opts)
  if opts.rules then opts.rules = cli.rule_files(opts.rules) end
  if opts.accounts then opts.accounts = cli.rule_file(opts.accounts) end
  return opts
end

-- One CSV record from a line (quotes with "" escapes; no line breaks inside a field).
local function csv_fields(line)
  local fields, i, n = {}, 1, #line
  while i <= n + 1 do
    if line:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = line:find('"', j, true)
        if not q then return nil, "unclosed quote" end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      fields[#fields + 1] = concat(buf)
      if i <= n and line:sub(i, i) ~= "," then return nil, "text after a closing quote" end
      i = i + 1
    else
      local comma = line:find(",", i, true) or (n + 1)
      fields[#fields + 1] = line:sub(i, comma - 1)
      i = comma + 1
    end
  end
  return fields
end
_M.csv_fields = csv_fields

-- The column map: a CSV file `column,field`, one line per CRM column to rename.
-- Returns { [crm column] = field name } or nil, message naming the file and line.
function _M.read_map(path)
  local f, err = io.open(path, "r")
  if not f then return nil, format("cannot open map file: %s", err) end
  local map, seen_field, line_no = {}, {}, 0
  local problems = {}
  for line in f:lines() do
    line_no = line_no + 1
    line = line:gsub("\r$", "")
    if line:match("^%s*$") or line:match("^%s*#") then goto continue end
    do
      local fields, why = csv_fields(line)
      if not fields then
        problems[#problems + 1] = format("%s:%d: %s", path, line_no, why)
      elseif #fields ~= 2 then
        problems[#problems + 1] = format("%s:%d: expected 2 columns (column,field), got %d", path, line_no, #fields)
      else
        local column = fields[1]:match("^%s*(.-)%s*$")
        local field = fields[2]:match("^%s*(.-)%s*$")
        if line_no == 1 and column:lower() == "column" and field:lower() == "field" then goto continue end
        if column == "" or field == "" then
          problems[#problems + 1] = format("%s:%d: empty column or field name", path, line_no)
        elseif map[column] then
          problems[#problems + 1] = format("%s:%d: column '%s' is mapped twice", path, line_no, column)
        elseif seen_field[field] then
          problems[#problems + 1] = format("%s:%d: field '%s' is the target of two columns", path, line_no, field)
        else
          map[column] = field
          seen_field[field] = true
        end
      end
    end
    ::continue::
  end
  f:close()
  if #problems > 0 then return nil, concat(problems, "\n") end
  return map
end

---------------------------------------------------------------------------------------------------
-- Adapters to the table API (lua/leadq/init.lua): the only places that know its shape.
---------------------------------------------------------------------------------------------------

-- A leads or events file through its map: a mapping script, today's two-column CSV (renames), or
-- none; defaults are the command line's locale (--decimal, --thousands, --date-format, --tz).
-- threads: --threads, which a plain CSV file is read on too.
-- columns: the columns the run reads (others are never parsed), or nil for all; sibling: those of a
-- snapshot's other table (its events beside its leads; {} when the run does not use them, nil for all).
local function load_table(path, map, defaults, events, progress, threads, columns, sibling)
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
  local mapping = require("leadq.mapping")
  -- a snapshot (leadq load --save), told by its first bytes: its tables as they were loaded, and for
  -- the leads also its events table, which stands in for --events when none is given
  if path ~= "-" and leadq.is_snapshot(path) then
    if map ~= nil or defaults ~= nil then
      return nil, format("%s is a snapshot, loaded already: --map, --events-map and the locale options apply "
        .. "to CSV files", path)
    end
    -- mapped, not read: its columns' pages are used in place, and those the run skips never touched
    local want, other = events and "events" or "leads", events and "leads" or "events"
    local s, err = leadq.read_snapshot(path, { map = true, columns = { [want] = columns, [other] = sibling },
      threads = threads or require("leadq.core").cpus() })
    if not s then return nil, err end
    if not s[want] then return nil, format("%s: the snapshot holds no %s table", path, want) end
    return s[want], nil, not events and s.events or nil
  end
  local reader = events and leadq.read_events or leadq.read_csv
  local options = (progress or threads) and { progress = progress, threads = threads } or nil
  if columns and (map == nil or getmetatable(map) ~= mapping.Mapping) then
    options = options or {}
    options.columns, options.columns_optional = columns, true
  end
  if map == nil then
    local plan = defaults and mapping.locale_plan(defaults)
    if plan then options = options or {}; options.plan = plan end
    return reader(path, options)
  end
  if getmetatable(map) ~= mapping.Mapping then   -- renames
    if not defaults then
      options = options or {}
      options.map = map
      return reader(path, options)
    end
    map = mapping.from_renames(map, "--map")
  end
  if events then return map:read_events(path, options, defaults) end
  return map:read_csv(path, options, defaults)
end

-- Progress of a long load on standard error: on a terminal (or with --progress) and not --quiet.
-- A terminal sees one line redrawn (bytes, rows, rate, time left); elsewhere a line every 2 s.
-- Returns the function read_csv calls after each read, and the one that ends the display.
local function progress_display(o, out, path)
  if o.quiet or path == "-" then return nil end
  local terminal = false
  if not o.progress then
    local r = os.execute("test -t 2")
    terminal = r == true or r == 0
    if not terminal then return nil end
  end
  local now = require("leadq.core").now
  local started, shown, width = now(), -1, 0
  local last = { 0, -1, 0 }
  local function line(bytes, size, rows)
    local elapsed = math.max(now() - started, 1e-9)
    local rate = bytes / elapsed
    local text = format("leadq: reading %s: %.1f MB%s, %s rows, %.0f MB/s", path, bytes / 1e6,
      size > 0 and format(" of %.1f MB (%d%%)", size / 1e6, math.floor(bytes * 100 / size)) or "",
      thousands(rows), rate / 1e6)
    if size > 0 and rate > 0 then text = text .. format(", %.1f s left", math.max(size - bytes, 0) / rate) end
    return text
  end
  local function update(bytes, size, rows)
    last = { bytes, size, rows }
    local t = now() - started
    if terminal then
      if t - shown < 0.1 then return end
      shown = t
      local text = line(bytes, size, rows)
      io.stderr:write("\r", text, string.rep(" ", math.max(width - #text, 0)))
      width = #text
    elseif t - shown >= 2 then
      shown = t
      out.error(line(bytes, size, rows))
    end
  end
  local function finish(rows)
    if terminal then io.stderr:write("\r", string.rep(" ", width), "\r") end
    if not terminal then
      out.error(format("leadq: read %s rows from %s (%.1f MB) in %.3f s", thousands(rows), path, last[1] / 1e6,
        now() - started))
    end
  end
  return update, finish
end

-- A map file: a mapping script (Lua), or today's two-column CSV as { [column] = field }.
local function read_any_map(path)
  local mapping = require("leadq.mapping")
  if mapping.is_mapping_file(path) then
    local m, problems = mapping.load(path)
    if not m then return nil, concat(problems, "\n") end
    return m
  end
  return _M.read_map(path)
end
_M.read_any_map = read_any_map

-- --decimal, --thousands, --date-format, --tz: nil when none is given; nil, message when one is bad.
local function locale_defaults(o)
  local d = { decimal = o.decimal, thousands = o.thousands, date_format = o["date-format"], tz = o.tz }
  if not next(d) then return nil end
  if d.decimal ~= nil and d.decimal ~= "." and d.decimal ~= "," then
    return nil, format("--decimal: expected . or , got '%s'", tostring(d.decimal))
  end
  local ok_th = { [","] = true, ["."] = true, [" "] = true, ["'"] = true, none = true }
  if d.thousands ~= nil and not ok_th[d.thousands] then
    return nil, format("--thousands: expected , . ' (a space) ' or none, got '%s'", tostring(d.thousands))
  end
  if d.thousands ~= nil and d.thousands == (d.decimal or ".") then
    return nil, format("--thousands: '%s' is the decimal mark too", d.thousands)
  end
  if d.tz ~= nil then
    local _, why = require("leadq.mapping").tz_minutes(d.tz)
    if why then return nil, "--tz: " .. why end
  end
  if d.date_format ~= nil and not tostring(d.date_format):find("%%") then
    return nil, format("--date-format: expected a format like %%m/%%d/%%Y, got '%s'", tostring(d.date_format))
  end
  return d
end

local function column_values(tbl, name)
  return (tbl:column(name))
end

local function column_names(tbl)
  return tbl:names()
end

local function rejects_of(tbl)
  return tbl:rejects()
end

_M.column_values, _M.column_names, _M.rejects_of = column_values, column_names, rejects_of

---------------------------------------------------------------------------------------------------
-- what score and explain share
---------------------------------------------------------------------------------------------------

local function scoring_options(o, out)
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
  local options = { errors = "report" }
  if o.threads ~= nil then
    local n = tonumber(o.threads)
    if not n or n < 1 or n ~= floor(n) or n > 256 then
      return nil, fail(out, format("--threads: expected a whole number from 1 to 256, got '%s'",
        tostring(o.threads)), 2)
    end
    options.threads = n
  end
  local as_of = o["as-of"] or o.as_of
  if as_of ~= nil then
    local parse = leadq.parse_time or require("leadq.dsl").parse_time
    local t = parse(tostring(as_of))
    if not t then
      return nil, fail(out, format("--as-of: expected a date like 2026-11-01 (or 2026-11-01T12:00:00Z), got '%s'",
        tostring(as_of)), 2)
    end
    options.as_of = t
  end
  return options
end

-- Whether `leadq score` hands the events file's path to the model, which streams it through the
-- feature pass (FeatureSet:compute): a plain file (not standard input, a snapshot or tracker messages),
-- read as it is (no mapping, no locale options), by one model that declares features, and wanted by
-- nothing else (accounts and dedupe read the events table).
local function streams_events(o, model, rule_files, events_map, defaults)
  local leadq = require("leadq")
  if not o.events or o.events == "-" or events_map or defaults or #rule_files ~= 1 then return false end
  if o.accounts or o.dedupe or o["merges-out"] or not model:event_columns() then return false end
  if leadq.is_snapshot(o.events) or require("leadq.track_events").is_ndjson_file(o.events) then return false end
  return true
end

-- The leads columns `leadq score` reads: the id, created_at (--as-of leaves out leads created after
-- it) and what the models read, when nothing else reads the others (a mapping, an export, accounts,
-- dedupe, the change facts' owners); nil for every column.
local function score_lead_columns(o, model, map)
  if map or o.export or o.accounts or o.dedupe or o["merges-out"] or o["transitions-out"] or o.previous
    or o.changes or o.reactions then
    return nil
  end
  local cols = model:lead_columns()
  if not cols then return nil end
  local out, seen = { "id", "created_at" }, { id = true, created_at = true }
  for _, c in ipairs(cols) do
    if not seen[c] then seen[c] = true; out[#out + 1] = c end
  end
  return out
end

-- how: { score = true } for `leadq score`: the events stream (see streams_events): input.events is then
-- the file's path, and its load is timed within the feature pass; the leads file is read for the
-- columns the run needs (score_lead_columns).
local function load_inputs(o, out, how)
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
  if not o.rules then return nil, fail(out, "missing --rules FILE[,FILE...]", 2) end
  if not o.leads then return nil, fail(out, "missing --leads CSV", 2) end
  if o.leads == "-" and o.events == "-" then
    return nil, fail(out, "--leads and --events cannot both read standard input ('-')", 2)
  end
  local rule_files = split_list(o.rules)
  if #rule_files == 0 then return nil, fail(out, "--rules: no file given", 2) end
  local options, code = scoring_options(o, out)
  if not options then return nil, code end
  local map, events_map, defaults
  do
    local err
    defaults, err = locale_defaults(o)
    if err then return nil, fail(out, err, 2) end
    if o.map then
      map, err = read_any_map(o.map)
      if not map then return nil, fail(out, err) end
    end
    if o["events-map"] then
      if not o.events then return nil, fail(out, "--events-map needs --events FILE", 2) end
      events_map, err = read_any_map(o["events-map"])
      if not events_map then return nil, fail(out, err) end
    end
  end
  local run_started = require("leadq.core").now()
  local model, err
  if #rule_files == 1 then
    model, err = leadq.load_model(rule_files[1])
  else
    model, err = leadq.load_models(rule_files)
  end
  if not model then return nil, fail(out, err) end
  local tbl
  local load_started = require("leadq.core").now()
  local update, finish = progress_display(o, out, o.leads)
  local snapshot_events
  -- only what the models' features read; an accounts model or dedupe may read the rest
  local event_columns = not (o.accounts or o.dedupe or o["merges-out"]) and model:event_columns() or nil
  local lead_columns = how and how.score and not defaults and score_lead_columns(o, model, map) or nil
  -- a snapshot's events stand in for --events only when it is not given
  local snapshot_event_columns = event_columns
  if o.events then snapshot_event_columns = {} end
  tbl, err, snapshot_events = load_table(o.leads, map, defaults, false, update, options.threads, lead_columns,
    snapshot_event_columns)
  if finish then finish(tbl and #tbl + tbl:reject_count() or 0) end
  if not tbl then return nil, fail(out, err) end
  local leads_seconds = require("leadq.core").now() - load_started
  local events = not o.events and snapshot_events or nil
  local streamed = how and how.score and streams_events(o, model, rule_files, events_map, defaults)
  if streamed then
    events = o.events
  elseif o.events then
    local track = require("leadq.track_events")
    if track.is_ndjson_file(o.events) then   -- tracker messages (Segment, RudderStack), one a line
      local report
      if events_map and getmetatable(events_map) ~= require("leadq.mapping").Mapping then
        events_map = require("leadq.mapping").from_renames(events_map, o["events-map"])
      end
      events, report = track.read(o.events, events_map, defaults)
      if not events then return nil, fail(out, report) end
      for _, l in ipairs(track.report_lines(report, o.events, 5)) do out.print(l) end
    else
      local eupdate, efinish = progress_display(o, out, o.events)
      events, err = load_table(o.events, events_map, defaults, true, eupdate, options.threads, event_columns, {})
      if efinish then efinish(events and #events + events:reject_count() or 0) end
      if not events then return nil, fail(out, err) end
    end
  end
  local load_seconds = require("leadq.core").now() - load_started
  if o.dedupe or o["merges-out"] then  -- one lead per person (same e-mail), before any model reads them
    local lines
    tbl, events, lines = require("leadq.cli.accounts").dedupe_run(tbl, events, o["merges-out"])
    if not tbl then return nil, fail(out, events) end
    for _, l in ipairs(lines) do out.print(l) end
  end
  return { model = model, tbl = tbl, events = events, files = rule_files, options = options,
           multi = #rule_files > 1, load_seconds = load_seconds, map = map,
           timings = { started = run_started, rules = load_started - run_started, leads = leads_seconds,
                       events = events and not streamed and (load_seconds - leads_seconds) or nil } }
end
_M.load_inputs = load_inputs

return _M
