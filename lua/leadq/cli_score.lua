-- The scoring commands of the command-line tool: score, explain, check, and the scoring half of demo.
-- Each command is a function(options, out) returning an exit status; `out` is { print = f, error = f }.
local leadq = require("leadq")

local format = string.format
local concat = table.concat
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

-- A message on stderr; status 1 (a run that failed) unless told 2 (bad usage). A message of many
-- lines (every problem of a model) is shown once per distinct line, at most 25 of them.
local MAX_LINES = 25

local function fail(out, message, status)
  local seen, lines = {}, {}
  if not os.getenv("LEADQ_DEBUG") then message = require("leadq.cli").without_internal_position(tostring(message)) end
  for line in (tostring(message) .. "\n"):gmatch("([^\n]*)\n") do
    if line ~= "" and not seen[line] then
      seen[line] = true
      lines[#lines + 1] = line
    end
  end
  for i = 1, math.min(#lines, MAX_LINES) do out.error((i == 1 and "leadq: " or "  ") .. lines[i]) end
  if #lines > MAX_LINES then out.error(format("  ... and %d more", #lines - MAX_LINES)) end
  return status or 1
end

local util = require("leadq.util")
-- "a.lua,b.lua" (or a list of them, when the flag was repeated) -> { "a.lua", "b.lua" }
local split_list = util.split_list
_M.split_list = split_list

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

local function csv_escape(v)
  if v == nil then return "" end
  if type(v) == "number" then
    if v ~= v then return "" end
    if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
    return format("%.6g", v)
  end
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end
_M.csv_escape = csv_escape

local thousands = util.thousands   -- 1234567 -> "1,234,567"
_M.thousands = thousands

local function rate_text(per_second)
  if per_second >= 1e6 then return format("%.1fM", per_second / 1e6) end
  if per_second >= 1e3 then return format("%.1fk", per_second / 1e3) end
  return format("%.0f", per_second)
end

-- Counts of one category column, as an aligned table of value, leads and share, largest first
-- (statuses and grades in the order given by `order` when given).
function _M.count_lines(title, counts, total, order)
  local keys = {}
  if order then
    for _, k in ipairs(order) do if counts[k] then keys[#keys + 1] = k end end
    local listed = {}
    for _, k in ipairs(keys) do listed[k] = true end
    local rest = {}
    for k in pairs(counts) do if not listed[k] then rest[#rest + 1] = k end end
    table.sort(rest)
    for _, k in ipairs(rest) do keys[#keys + 1] = k end
  else
    for k in pairs(counts) do keys[#keys + 1] = k end
    table.sort(keys)
  end
  local width, count_width = #title, #"leads"
  for _, k in ipairs(keys) do
    width = math.max(width, #k)
    count_width = math.max(count_width, #thousands(counts[k]))
  end
  local lines = { format("  %-" .. width .. "s  %" .. count_width .. "s  %6s", title, "leads", "share") }
  for _, k in ipairs(keys) do
    local share = total > 0 and counts[k] * 100 / total or 0
    lines[#lines + 1] = format("  %-" .. width .. "s  %" .. count_width .. "s  %5.1f%%", k,
      thousands(counts[k]), share)
  end
  return lines
end

---------------------------------------------------------------------------------------------------
-- Adapters to the table API (lua/leadq/init.lua): the only places that know its shape.
---------------------------------------------------------------------------------------------------

-- A leads or events file through its map: a mapping script, today's two-column CSV (renames), or
-- none; defaults are the command line's locale (--decimal, --thousands, --date-format, --tz).
local function load_table(path, map, defaults, events, progress)
  local mapping = require("leadq.mapping")
  local reader = events and leadq.read_events or leadq.read_csv
  local options = progress and { progress = progress } or nil
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

-- Clocks for leads/s: CPU time on one thread; wall time with several (CPU time adds the threads up).
local function clock_for(threads)
  if (threads or 1) > 1 then return require("leadq.core").now end
  return os.clock
end

---------------------------------------------------------------------------------------------------
-- check
---------------------------------------------------------------------------------------------------

function _M.check(files, out)
  if #files == 0 then return fail(out, "check: give one or more rule files", 2) end
  local bad = 0
  for _, path in ipairs(files) do
    local reactions = require("leadq.reactions")   -- a reactions script is checked as one
    local mapping = require("leadq.mapping")       -- and a mapping script as one
    local check = reactions.is_reactions_file(path) and reactions.check or
      (mapping.is_mapping_file(path) and mapping.check) or leadq.check
    local ok, problems = check(path)
    if ok then
      out.print(path .. ": ok")
    else
      bad = bad + 1
      for _, p in ipairs(problems) do out.print(p) end
    end
  end
  if bad > 0 then
    out.print(format("%d of %d file%s with problems", bad, #files, #files == 1 and "" or "s"))
    return 1
  end
  return 0
end

---------------------------------------------------------------------------------------------------
-- what score and explain share
---------------------------------------------------------------------------------------------------

local function scoring_options(o, out)
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

local function load_inputs(o, out)
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
  tbl, err = load_table(o.leads, map, defaults, false, update)
  if finish then finish(tbl and #tbl + tbl:reject_count() or 0) end
  if not tbl then return nil, fail(out, err) end
  local leads_seconds = require("leadq.core").now() - load_started
  local events
  if o.events then
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
      events, err = load_table(o.events, events_map, defaults, true, eupdate)
      if efinish then efinish(events and #events + events:reject_count() or 0) end
      if not events then return nil, fail(out, err) end
    end
  end
  local load_seconds = require("leadq.core").now() - load_started
  if o.dedupe or o["merges-out"] then  -- one lead per person (same e-mail), before any model reads them
    local lines
    tbl, events, lines = require("leadq.accounts").dedupe_run(tbl, events, o["merges-out"])
    if not tbl then return nil, fail(out, events) end
    for _, l in ipairs(lines) do out.print(l) end
  end
  return { model = model, tbl = tbl, events = events, files = rule_files, options = options,
           multi = #rule_files > 1, load_seconds = load_seconds, map = map,
           timings = { started = run_started, rules = load_started - run_started, leads = leads_seconds,
                       events = events and (load_seconds - leads_seconds) or nil } }
end

---------------------------------------------------------------------------------------------------
-- score
---------------------------------------------------------------------------------------------------

-- The result columns to write, in order: id first, then per model total, status, grade, groups, reason.
local function output_columns(result)
  local names = column_names(result)
  local order = {}
  for _, n in ipairs(names) do
    if n ~= "disqualified_by" and not n:find("%.disqualified_by$") then order[#order + 1] = n end
  end
  return order
end

-- A value as JSON: numbers as numbers (whole ones without a point), the rest as strings.
local function json_value(v)
  if type(v) == "number" then
    if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
    return format("%.17g", v)
  end
  if type(v) == "boolean" then return tostring(v) end
  return require("leadq.json").quote(tostring(v))
end

-- Rows as CSV (a header line, then one line a lead) or as JSON lines (one object a lead, the same
-- names as keys, missing values as null).
local ROW_FORMATS = {
  csv = { header = function(names)
            local h = {}
            for i, n in ipairs(names) do h[i] = csv_escape(n) end
            return concat(h, ",")
          end,
          value = csv_escape, missing = "", join = ",", before = "", after = "" },
  jsonl = { value = json_value, missing = "null", join = ",", before = "{", after = "}" },
}

-- path "-" writes to standard output.
local function open_output(path)
  if path == "-" then return io.stdout end
  local f, err = io.open(path, "w")
  if not f then return nil, format("cannot write %s: %s", path, (tostring(err):gsub("^[^:]*: ", ""))) end
  return f
end
_M.open_output = open_output

-- Rows of named columns: names[1] the id, columns[c][r] the values; fmt "csv" (default) or "jsonl".
local function write_rows(path, names, columns, nrows, fmt)
  local f, err = open_output(path)
  if not f then return nil, err end
  local style = ROW_FORMATS[fmt or "csv"]
  local ncols = #names
  local prefix = {}           -- jsonl: each value's key
  for c = 1, ncols do
    prefix[c] = style.header and "" or (require("leadq.json").quote(names[c]) .. ":")
  end
  if style.header then f:write(style.header(names), "\n") end
  local row, buf, nbuf = {}, {}, 0
  local texts = {}            -- per column: value -> its text (few distinct values: statuses, points)
  local missing = {}
  for c = 1, ncols do texts[c], missing[c] = {}, prefix[c] .. style.missing end
  local value, id_prefix, ids = style.value, prefix[1], columns[1]
  local before, after, join = style.before, style.after, style.join
  local bare = before == "" and after == ""
  for r = 1, nrows do
    local id = ids[r]         -- ids are all different: no cache
    if id == nil or id ~= id then row[1] = missing[1] else row[1] = id_prefix .. value(id) end
    for c = 2, ncols do
      local v = columns[c][r]
      if v == nil or v ~= v then
        row[c] = missing[c]
      else
        local text = texts[c][v]
        if text == nil then
          text = prefix[c] .. value(v)
          texts[c][v] = text
        end
        row[c] = text
      end
    end
    nbuf = nbuf + 1
    if bare then
      buf[nbuf] = concat(row, join, 1, ncols)
    else
      buf[nbuf] = before .. concat(row, join, 1, ncols) .. after
    end
    if nbuf == 4096 then
      f:write(concat(buf, "\n", 1, nbuf), "\n")
      nbuf = 0
    end
  end
  if nbuf > 0 then f:write(concat(buf, "\n", 1, nbuf), "\n") end
  if f == io.stdout then
    local ok, ferr = f:flush()
    if not ok then return nil, format("cannot write to standard output: %s", tostring(ferr)) end
    return true
  end
  local ok, cerr = f:close()
  if not ok then return nil, format("cannot write %s: %s", path, tostring(cerr)) end
  return true
end
_M.write_rows = write_rows

-- The scores: id, then the result columns, then extra columns ({ name =, values = }, or a list of
-- them), as CSV or JSON lines.
local function write_csv(path, tbl, result, extra, fmt, prefix)
  local names = output_columns(result)
  local cols = {}
  for i, n in ipairs(names) do cols[i + 1] = column_values(result, n) end
  if prefix then   -- one model's columns named as in a run of several: "mql.total"
    for i, n in ipairs(names) do names[i] = prefix .. n end
  end
  table.insert(names, 1, "id")
  if extra and extra.name then extra = { extra } end
  for _, e in ipairs(extra or {}) do
    names[#names + 1] = e.name
    cols[#names] = e.values
  end
  local n = #tbl
  if tbl:has("id") then
    cols[1] = column_values(tbl, "id")
  else
    local rows = {}
    for r = 1, n do rows[r] = r end
    cols[1] = rows
  end
  return write_rows(path, names, cols, n, fmt)
end
_M.write_csv = write_csv

-- A fingerprint of the rule files (leadq.model.rules_hash: the report's header shows the same).
local rules_hash = require("leadq.model").rules_hash
_M.rules_hash = rules_hash

-- --stamp: which rules made each row, as columns a CRM import keeps beside the score.
local function stamp_columns(input, n)
  local infos = {}
  local ok, info = pcall(input.model.info, input.model)
  if ok and type(info) == "table" then infos = input.multi and (info.models or {}) or { info } end
  local names, versions = {}, {}
  for i, path in ipairs(input.files) do
    local m = infos[i] or {}
    names[i] = m.name or path:match("([^/]+)%.lua$") or path
    versions[i] = m.version ~= nil and tostring(m.version) or ""
  end
  local as_of = leadq.format_time(input.options.as_of or os.time())
  local function constant(v)
    return setmetatable({}, { __index = function() return v end, __len = function() return n end })
  end
  return {
    { name = "model", values = constant(concat(names, "+")) },
    { name = "model_version", values = constant(concat(versions, "+")) },
    { name = "rules_hash", values = constant(rules_hash(input.files)) },
    { name = "as_of", values = constant(as_of) },
  }
end

-- --export: the CRM's id column, then the properties the mapping's export section names, each
-- from a result column (or a lead column), through its value map; with --previous (a former
-- --out), only the leads whose exported values changed, or are new.
local function write_export(path, input, result, o, prefix)
  local map = input.map
  local export = map and type(map.export) == "function" and map:export() or nil
  if not export or type(export.fields) ~= "table" then
    return nil, "--export needs --map with a mapping script that has an export section (rules/README.md)"
  end
  local n = #input.tbl
  local props = {}
  for prop in pairs(export.fields) do props[#props + 1] = prop end
  table.sort(props)
  local function source_values(name)
    local ok, values = pcall(column_values, result, name)
    if ok and values then return values, "result" end
    if prefix and not name:find(".", 1, true) then
      ok, values = pcall(column_values, result, prefix .. name)
      if ok and values then return values, "result" end
    end
    if input.tbl:has(name) then return column_values(input.tbl, name), "lead" end
    return nil
  end
  local cols, names, kinds = {}, { export.id or "id" }, {}
  cols[1] = input.tbl:has("id") and column_values(input.tbl, "id") or nil
  if not cols[1] then return nil, "--export: the leads have no 'id' column to name each lead by" end
  for i, prop in ipairs(props) do
    local values, kind = source_values(export.fields[prop])
    if not values then
      return nil, format("--export: property '%s' reads '%s', which is neither a result nor a lead column",
        prop, tostring(export.fields[prop]))
    end
    local vmap = type(export.values) == "table" and export.values[prop] or nil
    if vmap then
      local mapped = {}
      for r = 1, n do
        local v = values[r]
        if v ~= nil and vmap[v] ~= nil then v = vmap[v] end
        mapped[r] = v
      end
      values = mapped
    end
    names[i + 1], cols[i + 1], kinds[i + 1] = prop, values, kind
  end
  local rows = n
  if o.previous then
    local prev, err = leadq.read_csv(o.previous, { schema = { id = "text" } })
    if not prev then return nil, "--previous: " .. tostring(err) end
    local by_id = {}
    local prev_ids = column_values(prev, "id") or {}
    for r = 1, #prev do by_id[tostring(prev_ids[r])] = r end
    local prev_cols = {}
    for i, prop in ipairs(props) do
      local src = export.fields[prop]
      if kinds[i + 1] == "result" then
        local ok, values = pcall(column_values, prev, src)
        if not (ok and values) and prefix then ok, values = pcall(column_values, prev, prefix .. src) end
        prev_cols[i + 1] = ok and values or nil
      end
    end
    local keep = {}
    for r = 1, n do
      local pr = by_id[tostring(cols[1][r])]
      local changed = pr == nil
      for c = 2, #names do
        if changed then break end
        local pv = prev_cols[c] and prev_cols[c][pr]
        local vmap = type(export.values) == "table" and export.values[names[c]] or nil
        if pv ~= nil and vmap and vmap[pv] ~= nil then pv = vmap[pv] end
        if prev_cols[c] and tostring(pv) ~= tostring(cols[c][r]) then changed = true end
      end
      if changed then keep[#keep + 1] = r end
    end
    for c = 1, #names do
      local sub = {}
      for i, r in ipairs(keep) do sub[i] = cols[c][r] end
      cols[c] = sub
    end
    rows = #keep
  end
  local ok, err = write_rows(path, names, cols, rows, "csv")
  if not ok then return nil, err end
  return rows
end

local tally = util.tally

-- Statuses best first (thresholds high to low, then `otherwise`, then disqualified), from a
-- model's info(); nil when it does not say.
local function status_order(info)
  if type(info) ~= "table" or type(info.thresholds) ~= "table" then return nil end
  local levels = {}
  for k, v in pairs(info.thresholds) do
    if type(v) == "table" and v.status and v.at then
      levels[#levels + 1] = { v.status, v.at }                 -- { { at =, status = }, ... }
    elseif type(k) == "string" and type(v) == "number" then
      levels[#levels + 1] = { k, v }                           -- { mql = 60, ... }
    end
  end
  table.sort(levels, function(a, b) return a[2] > b[2] end)
  local order = {}
  for _, l in ipairs(levels) do order[#order + 1] = l[1] end
  local otherwise = info.otherwise or info.thresholds.otherwise
  if type(otherwise) == "string" then order[#order + 1] = otherwise end
  order[#order + 1] = "disqualified"
  return order
end

-- Grades made of a letter and a digit ("A1".."D4") as a table: letters down, digits across, each
-- cell the count and the share. nil when the grades are not all letter-then-digit.
function _M.grade_matrix_lines(counts, total, dims)
  local letters, digits, seen_l, seen_d = {}, {}, {}, {}
  for k in pairs(counts) do
    local l, d = tostring(k):match("^(%a+)(%d+)$")
    if not l then return nil end
    if not seen_l[l] then seen_l[l], letters[#letters + 1] = true, l end
    if not seen_d[d] then seen_d[d], digits[#digits + 1] = true, d end
  end
  if #letters < 2 or #digits < 2 then return nil end
  table.sort(letters)
  table.sort(digits, function(a, b) return tonumber(a) < tonumber(b) end)
  local cells, width = {}, 0
  for _, l in ipairs(letters) do
    cells[l] = {}
    for _, d in ipairs(digits) do
      local c = counts[l .. d] or 0
      local text = format("%s %5.1f%%", thousands(c), total > 0 and c * 100 / total or 0)
      cells[l][d] = text
      if #text > width then width = #text end
    end
  end
  local head = { "  " .. string.rep(" ", 5) }
  for _, d in ipairs(digits) do head[#head + 1] = format("%" .. width .. "s", d) end
  local lines = { concat(head, "  ") }
  for _, l in ipairs(letters) do
    local row = { format("  %-5s", l) }
    for _, d in ipairs(digits) do row[#row + 1] = format("%" .. width .. "s", cells[l][d]) end
    lines[#lines + 1] = concat(row, "  ")
  end
  local down, across = "letter", "digit"
  if type(dims) == "table" and dims[1] and dims[2] then
    down, across = tostring(dims[1].group or dims[1].name), tostring(dims[2].group or dims[2].name)
  end
  lines.title = format("%s letter down, %s digit across", down, across)
  return lines
end

-- The lines of the summary: per model, leads by status and by grade.
function _M.summary_lines(result, n, models)
  local lines = {}
  for _, m in ipairs(models) do
    local prefix = m.prefix
    local status = column_values(result, prefix .. "status")
    if status then
      lines[#lines + 1] = format("%s: leads by status", m.name)
      for _, l in ipairs(_M.count_lines("status", tally(status, n), n, m.order)) do lines[#lines + 1] = l end
    end
    local ok, grade = pcall(column_values, result, prefix .. "grade")
    if ok and grade then
      local counts = tally(grade, n)
      local matrix = _M.grade_matrix_lines(counts, n, m.grade_dims)
      if matrix then
        lines[#lines + 1] = format("%s: leads by grade (%s)", m.name, matrix.title)
        for _, l in ipairs(matrix) do lines[#lines + 1] = l end
      else
        lines[#lines + 1] = format("%s: leads by grade", m.name)
        for _, l in ipairs(_M.count_lines("grade", counts, n)) do lines[#lines + 1] = l end
      end
    end
  end
  return lines
end

local function reject_lines(tbl, limit, what)
  local rejects = rejects_of(tbl) or {}
  local lines = {}
  if #rejects == 0 then return lines, 0 end
  lines[1] = format("rejected %s: %s (not scored)", what or "rows", thousands(#rejects))
  for i = 1, math.min(limit, #rejects) do
    local r = rejects[i]
    local text = r.message or format("%s:%s: %s", tostring(r.file), tostring(r.line), tostring(r.reason))
    lines[#lines + 1] = "  " .. text
  end
  if #rejects > limit then lines[#lines + 1] = format("  ... and %s more", thousands(#rejects - limit)) end
  return lines, #rejects
end

-- What the features made of the events: nothing dropped in silence (unknown leads, noise, rejects).
local function events_lines(events, report, path, limit)
  local lines = {}
  if not report then return lines end
  lines[1] = format("events: %s read from %s: %s read by the features, %s of types they do not count, "
    .. "%s after the as-of time", thousands(report.events or 0), path, thousands(report.used or 0),
    thousands(report.ignored or 0), thousands(report.after_as_of or 0))
  local noise = report.noise or {}
  local noisy = (noise.short_page_view or 0) + (noise.scanner_click or 0) + (noise.flagged_lead or 0)
  if noisy > 0 then
    lines[#lines + 1] = format("  noise ignored: %s short page views, %s scanner clicks, %s from flagged leads",
      thousands(noise.short_page_view or 0), thousands(noise.scanner_click or 0), thousands(noise.flagged_lead or 0))
  end
  if (report.unknown_leads or 0) > 0 then
    lines[#lines + 1] = format("  events of unknown leads: %s (no lead with that id; not scored)",
      thousands(report.unknown_leads))
    local unknown = report.unknown or {}
    for i = 1, math.min(limit, #unknown) do
      lines[#lines + 1] = format("    lead '%s' (loaded event %s)", tostring(unknown[i].lead_id),
        tostring(unknown[i].row))
    end
    if report.unknown_leads > limit then
      lines[#lines + 1] = format("    ... and %s more", thousands(report.unknown_leads - limit))
    end
  end
  for _, l in ipairs((reject_lines(events, limit, "event rows"))) do lines[#lines + 1] = l end
  return lines
end

local function model_list(input)
  local ok, info = pcall(input.model.info, input.model)
  if not ok or type(info) ~= "table" then info = {} end
  local infos = input.multi and (info.models or {}) or { info }
  local models = {}
  for i, path in ipairs(input.files) do
    local m = infos[i] or {}
    local name = m.name or path:match("([^/]+)%.lua$") or path
    models[i] = { name = name, prefix = input.multi and (name .. ".") or "", order = status_order(m),
                  grade_dims = m.grades }
  end
  return models
end

-- The phases of a run in wall time, from loading the rules to the last byte written: what a user
-- waits for, of which scoring is a small part. score_seconds holds the feature pass (events_report).
local function timing_line(t, score_seconds, events_report, write_seconds)
  local features = events_report and events_report.seconds or 0
  local parts = { format("load rules %.3f s", t.rules), format("load leads %.3f s", t.leads) }
  if t.events then parts[#parts + 1] = format("load events %.3f s", t.events) end
  if events_report then parts[#parts + 1] = format("features %.3f s", features) end
  parts[#parts + 1] = format("rules %.3f s", math.max(score_seconds - features, 0))
  if write_seconds then parts[#parts + 1] = format("write %.3f s", write_seconds) end
  return format("time: %.3f s in all: %s", require("leadq.core").now() - t.started, concat(parts, ", "))
end

-- --prefix-columns: a single model's columns named "mql.total", as they are in a run of several,
-- so adding a second --rules leaves the first model's columns as they were.
local function column_prefix(input, o)
  if not o["prefix-columns"] or input.multi then return nil end
  return model_list(input)[1].name .. "."
end

-- Score the loaded input; prints the summary. Returns the exit status and the result table.
local function run_score(input, o, out)
  local n = #input.tbl
  local threads = input.options.threads or 1
  local clock = clock_for(threads)
  local started = clock()
  local options, warnings = {}, {}
  for k, v in pairs(input.options) do options[k] = v end
  options.warnings, options.strict = warnings, o.strict and true or nil
  local score_started = require("leadq.core").now()
  local ok, result, err, events_report =
    pcall(input.model.score, input.model, input.tbl, input.events, options)
  local seconds = clock() - started
  local score_seconds = require("leadq.core").now() - score_started
  if not ok then return fail(out, tostring(result)) end
  if not result then return fail(out, tostring(err)) end
  for _, w in ipairs(warnings) do out.error("leadq: warning: " .. w .. " (--strict makes this an error)") end
  local write_seconds
  if o.out then
    local write_started = require("leadq.core").now()
    local probs = not input.multi and input.model:probabilities(result)   -- a script with a calibration table
    local extra = probs and { { name = "probability", values = probs } } or {}
    if o.stamp then
      for _, c in ipairs(stamp_columns(input, #input.tbl)) do extra[#extra + 1] = c end
    end
    local written, werr = write_csv(o.out, input.tbl, result, extra, o.format, column_prefix(input, o))
    if not written then return fail(out, werr) end
    write_seconds = require("leadq.core").now() - write_started
  end
  out.print(format("scored %s leads from %s with %s in %.3f s (%s leads/s, %d thread%s)%s",
    thousands(n), o.leads, concat(input.files, ", "), seconds, rate_text(n / math.max(seconds, 1e-9)),
    threads, threads == 1 and "" or "s", o.out and (", wrote " .. (o.out == "-" and "standard output" or o.out)) or ""))
  if input.timings then out.print(timing_line(input.timings, score_seconds, events_report, write_seconds)) end
  for _, l in ipairs(_M.summary_lines(result, n, model_list(input))) do out.print(l) end
  local lines = reject_lines(input.tbl, 5)
  for _, l in ipairs(lines) do out.print(l) end
  for _, l in ipairs(events_lines(input.events, events_report, o.events, 5)) do out.print(l) end
  if o.export then   -- the CRM import: id and the mapping's export properties (changed ones with --previous)
    local rows, xerr = write_export(o.export, input, result, o, column_prefix(input, o))
    if not rows then return fail(out, xerr) end
    out.print(format("exported %s lead%s to %s%s", thousands(rows), rows == 1 and "" or "s", o.export,
      o.previous and (" (changed since " .. o.previous .. ")") or ""))
  end
  local co = o
  if o.export and o.previous and not o.changes then   -- --previous serves the export alone
    co = {}
    for k, v in pairs(o) do co[k] = v end
    co.previous = nil
  end
  if co["transitions-out"] or co.previous or co.changes or co.reactions then   -- the change facts
    local change_lines, cerr = require("leadq.changes").score_outputs(co, { tbl = input.tbl, result = result,
      models = model_list(input), at = input.options.as_of or os.time(), read_csv = leadq.read_csv,
      format_time = leadq.format_time })
    if not change_lines then return fail(out, cerr) end
    for _, l in ipairs(change_lines) do out.print(l) end
  end
  local nerrors = type(err) == "table" and (err.count or #err) or 0
  if nerrors > 0 then   -- a rule's Lua function failed for some leads: those rules gave them no points
    out.print(format("rule errors: %s (a rule's Lua function failed for a lead, and gave it no points; the first %d "
      .. "below)", thousands(nerrors), math.min(#err, 5)))
    for i = 1, math.min(#err, 5) do out.print("  " .. tostring(err[i])) end
  end
  if o.accounts then           -- the account model (rules/aql.lua) on the leads' results rolled up
    local acc_lines, aerr = require("leadq.accounts").score_run({ rules = o.accounts, leads = input.tbl,
      results = result, events = input.events, score = o["account-score"], as_of = input.options.as_of,
      out = o["accounts-out"] })
    if not acc_lines then return fail(out, aerr) end
    for _, l in ipairs(acc_lines) do out.print(l) end
  elseif o["accounts-out"] or o["account-score"] then
    return fail(out, "--accounts-out and --account-score need --accounts FILE (the account model)", 2)
  end
  if nerrors > 0 and o["fail-on-errors"] then
    return fail(out, format("%s rule error%s (--fail-on-errors)", thousands(nerrors), nerrors == 1 and "" or "s")),
      result
  end
  return 0, result
end

-- --as-of scores the leads as they were on that date: a lead created after it (created_at) was not a
-- lead yet, and is left out (events after the date are already left out by the features).
local function created_by(input, out)
  local tbl, as_of = input.tbl, input.options.as_of
  if as_of == nil or not tbl:has("created_at") then return end
  local kind = tbl:type("created_at")
  if kind ~= "time" and kind ~= "number" then return end
  local created, rows = column_values(tbl, "created_at"), {}
  for i = 1, #tbl do
    local c = created[i]
    if c ~= nil and c > as_of then rows[#rows + 1] = i end
  end
  if #rows == 0 then return end
  input.tbl = require("leadq.core").dedupe_tables(tbl, rows)
  out.print(format("left out %s leads created after %s (created_at): they were not leads yet",
    thousands(#rows), leadq.format_time(as_of)))
end

function _M.score(o, out)
  if o.out == "-" or o.export == "-" then out = { print = out.error, error = out.error } end   -- stdout: data only
  if o.quiet then out = { print = function() end, error = out.error } end    -- errors and warnings only
  if o.format ~= nil and not ROW_FORMATS[o.format] then
    return fail(out, format("--format: expected csv or jsonl, got '%s'", tostring(o.format)), 2)
  end
  if o.format ~= nil and not o.out then
    return fail(out, "--format needs --out FILE (or --out - for standard output)", 2)
  end
  local input, code = load_inputs(o, out)
  if not input then return code end
  created_by(input, out)
  return (run_score(input, o, out))
end

---------------------------------------------------------------------------------------------------
-- explain
---------------------------------------------------------------------------------------------------

local function find_row(tbl, id)
  local ids = column_values(tbl, "id")
  if not ids then return nil end
  for i = 1, #tbl do
    if ids[i] == id or tostring(ids[i]) == id then return i end
  end
  return nil
end

-- One lead's events as a list of records: a run of several models explains a record with its own
-- events (Run:explain passes a table's events on as they are, which its models cannot read).
local function lead_events(events, id)
  local names = column_names(events)
  local lead_col = events:has("lead_id") and "lead_id" or "lead"
  local leads, cols, list = column_values(events, lead_col), {}, {}
  for _, n in ipairs(names) do cols[n] = column_values(events, n) end
  for r = 1, #events do
    if tostring(leads[r]) == id then
      local e = {}
      for _, n in ipairs(names) do e[n] = cols[n][r] end
      list[#list + 1] = e
    end
  end
  return list
end

function _M.explain(o, out)
  if o.account or o.accounts then    -- an account: the account model on the leads' results rolled up
    if not (o.account and o.accounts) then
      return fail(out, "explaining an account needs --accounts FILE (the account model) and --account NAME", 2)
    end
    local input, code = load_inputs(o, out)
    if not input then return code end
    local result, err = input.model:score(input.tbl, input.events, input.options)
    if not result then return fail(out, tostring(err)) end
    local text, aerr = require("leadq.accounts").explain_run({ rules = o.accounts, account = o.account,
      leads = input.tbl, results = result, events = input.events, score = o["account-score"],
      as_of = input.options.as_of })
    if not text then return fail(out, aerr) end
    out.print(text)
    return 0
  end
  if not o.id then return fail(out, "missing --id ID", 2) end
  local input, code = load_inputs(o, out)
  if not input then return code end
  local row
  if input.tbl:has("id") then
    row = find_row(input.tbl, tostring(o.id))
    if not row then return fail(out, format("no lead with id '%s' in %s", tostring(o.id), o.leads)) end
  else   -- the ids score writes for a file with no id column: row numbers
    local n = tonumber(o.id)
    if not n or n ~= floor(n) or n < 1 or n > #input.tbl then
      return fail(out, format("%s has no 'id' column: give a row number from 1 to %d (the id score writes), or "
        .. "name the id column with --map (e.g. a line 'Lead ID,id')", o.leads, #input.tbl))
    end
    row = n
  end
  local ok, explanation, err
  if input.multi and input.events then
    ok, explanation, err = pcall(input.model.explain, input.model, input.tbl:row(row),
      lead_events(input.events, tostring(o.id)), input.options)
  else
    ok, explanation, err = pcall(input.model.explain, input.model, input.tbl, row, input.events, input.options)
  end
  if not ok then return fail(out, tostring(explanation)) end
  if not explanation then return fail(out, tostring(err)) end
  out.print(tostring(explanation))
  return 0
end

---------------------------------------------------------------------------------------------------
-- demo: the scoring half (the frame generates the sample into dir first)
---------------------------------------------------------------------------------------------------

-- "./build/../rules/mql.lua" -> "rules/mql.lua": shorter paths in what the demo prints.
local function tidy(path)
  local prev
  repeat
    prev = path
    path = path:gsub("/%./", "/"):gsub("([^/]+)/%.%./", function(seg)
      if seg == ".." then return nil end
      return ""
    end, 1)
  until path == prev
  return (path:gsub("^%./", ""))
end
_M.tidy = tidy

-- Scores dir/leads.csv and its events with rules/mql.lua then rules/sql.lua, prints the summary,
-- explains one MQL.
function _M.demo(dir, out, root)
  root = root or "."
  dir = tidy(dir)
  local o = {
    rules = tidy(root .. "/rules/mql.lua") .. "," .. tidy(root .. "/rules/sql.lua"),
    leads = dir .. "/leads.csv",
    events = dir .. "/events.csv",
    out = dir .. "/scored.csv",
    ["as-of"] = "2026-11-01",
  }
  local input, code = load_inputs(o, out)
  if not input then return code end
  out.print("")
  local status, result = run_score(input, o, out)
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
    local mql = assert(leadq.load_model(tidy(root .. "/rules/mql.lua")))
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

return _M
