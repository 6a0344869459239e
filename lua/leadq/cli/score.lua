-- `leadq score`: score leads with rule models, summarise the result, and write it (CSV or JSON lines,
-- a CRM export, changes, the account scores). The input is read as leadq.cli.inputs says.
local cli = require("leadq.cli")
local inputs = require("leadq.cli.inputs")
local util = require("leadq.util")

local format = string.format
local concat = table.concat
local floor = math.floor

local _M = { _VERSION = "0.1.0" }

local fail = cli.fail
local thousands = util.thousands   -- 1234567 -> "1,234,567"
local column_values, column_names, rejects_of = inputs.column_values, inputs.column_names, inputs.rejects_of
local load_inputs = inputs.load_inputs

local csv_escape = util.csv_field   -- one CSV field: numbers as people write them, text quoted as needed

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

-- Clocks for leads/s: CPU time on one thread; wall time with several (CPU time adds the threads up).
local function clock_for(threads)
  if (threads or 1) > 1 then return require("leadq.core").now end
  return os.clock
end

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
local function write_csv(path, tbl, result, extra, fmt, prefix, threads)
  local names = output_columns(result)
  if (fmt or "csv") == "csv" and path ~= "-" and not (extra and (extra.name or #extra > 0)) then
    -- the plain case, written by the core straight from the tables: the same bytes as write_rows
    local cols = { tbl:has("id") and { name = "id", table = tbl, column = "id" } or { name = "id", row = true } }
    for _, n in ipairs(names) do cols[#cols + 1] = { name = (prefix or "") .. n, table = result, column = n } end
    return require("leadq.core").write_csv_columns(path, #tbl, cols, threads)
  end
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
-- leadq.model is loaded when a command scores, not by `leadq help`.
local function rules_hash(files)
  return require("leadq.model").rules_hash(files)
end
_M.rules_hash = rules_hash

-- --stamp: which rules made each row, as columns a CRM import keeps beside the score.
local function stamp_columns(input, n)
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
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
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
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
  local letters, digits = util.grade_axes(counts)
  if not letters or #letters < 2 or #digits < 2 then return nil end
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

-- A result column's counts: from the core for a category column (no column of a million strings made
-- in Lua to count them), else tallied here; nil when the result has no such column.
local function column_counts(result, name, n)
  if result:has(name) and result:type(name) == "category" and #result == n then return result:counts(name) end
  local ok, values = pcall(column_values, result, name)
  if not ok or not values then return nil end
  return tally(values, n)
end

-- The lines of the summary: per model, leads by status and by grade.
function _M.summary_lines(result, n, models)
  local lines = {}
  for _, m in ipairs(models) do
    local prefix = m.prefix
    local status = column_counts(result, prefix .. "status", n)
    if status then
      lines[#lines + 1] = format("%s: leads by status", m.name)
      for _, l in ipairs(_M.count_lines("status", status, n, m.order)) do lines[#lines + 1] = l end
    end
    local counts = column_counts(result, prefix .. "grade", n)
    if counts then
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

-- rejects: a table's (rejects_of), or a list of the same records.
local function reject_lines(rejects, limit, what)
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
  -- a streamed file has no table: a file the stream declined was read as one, its rejects in the report
  local rejects = type(events) == "string" and (report.rejects or {}) or rejects_of(events) or {}
  for _, l in ipairs((reject_lines(rejects, limit, "event rows"))) do lines[#lines + 1] = l end
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
  if events_report then
    parts[#parts + 1] = format(events_report.streamed and "events read and features %.3f s" or "features %.3f s",
      features)
  end
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
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
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
    local written, werr = write_csv(o.out, input.tbl, result, extra, o.format, column_prefix(input, o), threads)
    if not written then return fail(out, werr) end
    write_seconds = require("leadq.core").now() - write_started
  end
  out.print(format("scored %s leads from %s with %s in %.3f s (%s leads/s, %d thread%s)%s",
    thousands(n), o.leads, concat(input.files, ", "), seconds, rate_text(n / math.max(seconds, 1e-9)),
    threads, threads == 1 and "" or "s", o.out and (", wrote " .. (o.out == "-" and "standard output" or o.out)) or ""))
  local summary = _M.summary_lines(result, n, model_list(input))   -- within the run's time
  if input.timings then out.print(timing_line(input.timings, score_seconds, events_report, write_seconds)) end
  for _, l in ipairs(summary) do out.print(l) end
  local lines = reject_lines(rejects_of(input.tbl) or {}, 5)
  for _, l in ipairs(lines) do out.print(l) end
  for _, l in ipairs(events_lines(input.events, events_report, o.events or o.leads, 5)) do out.print(l) end
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
    local change_lines, cerr = require("leadq.cli.changes").score_outputs(co, { tbl = input.tbl, result = result,
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
    local acc_lines, aerr = require("leadq.cli.accounts").score_run({ rules = o.accounts, leads = input.tbl,
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
  local leadq = require("leadq")   -- the core: loaded when a command runs, not for help
  local tbl, as_of = input.tbl, input.options.as_of
  if as_of == nil or not tbl:has("created_at") then return end
  local kind = tbl:type("created_at")
  if kind ~= "time" and kind ~= "number" then return end
  local rows = tbl:rows_above("created_at", as_of)
  if #rows == 0 then return end
  input.tbl = require("leadq.core").dedupe_tables(tbl, rows)
  out.print(format("left out %s leads created after %s (created_at): they were not leads yet",
    thousands(#rows), leadq.format_time(as_of)))
end

_M.run_score = run_score   -- demo scores its sample the same way

function _M.score(o, out)
  if o.out == "-" or o.export == "-" then out = { print = out.error, error = out.error } end   -- stdout: data only
  if o.quiet then out = { print = function() end, error = out.error } end    -- errors and warnings only
  if o.format ~= nil and not ROW_FORMATS[o.format] then
    return fail(out, format("--format: expected csv or jsonl, got '%s'", tostring(o.format)), 2)
  end
  if o.format ~= nil and not o.out then
    return fail(out, "--format needs --out FILE (or --out - for standard output)", 2)
  end
  local input, code = load_inputs(o, out, { score = true })
  if not input then return code end
  created_by(input, out)
  return (run_score(input, o, out))
end

cli.commands.score = {
  summary = "score leads with rule models and summarise (or write) the result",
  usage = "score --rules FILE[,FILE...] --leads CSV [--events CSV] [--map FILE] [--out CSV] [--as-of DATE]"
    .. " [--threads N] [--accounts AQL.lua [--accounts-out CSV] [--account-score COLUMN]] [--dedupe"
    .. " [--merges-out CSV]] [--fail-on-errors] [--transitions-out CSV] [--previous CSV --changes CSV]"
    .. " [--reactions FILE]",
  options = inputs.options_with { out = { type = "string", help = "write the scores to this file ('-': standard"
      .. " output, and every message goes to standard error)" },
    format = { type = "string", help = "with --out: csv (default) or jsonl (one JSON object a lead)" },
    stamp = { type = "flag", help = "with --out: add the model, its version, a hash of the rule files and the"
      .. " as-of time to every row" },
    ["prefix-columns"] = { type = "flag", help = "name one model's columns as a run of several does (mql.total):"
      .. " a second --rules then leaves them as they are" },
    export = { type = "string", help = "write a CRM import: the id and the properties of the --map script's"
      .. " export section (with --previous, only the leads whose values changed)" },
    quiet = { type = "flag", help = "print no summary (errors and warnings still go to standard error)" },
    progress = { type = "flag", help = "show the progress of loading on standard error even when it is not a"
      .. " terminal (on a terminal it is shown anyway)" },
    ["as-of"] = { type = "string", help = "the date scores are computed for, e.g. 2026-11-01: events after it"
      .. " are not used, and leads created after it (created_at) are left out" },
    accounts = { type = "string", help = "an account model (rules/aql.lua) scoring the leads' accounts" },
    ["accounts-out"] = { type = "string", help = "write the account scores to this CSV" },
    ["account-score"] = { type = "string", help = "the lead score rolled up (default: the first model's total)" },
    dedupe = { type = "flag", help = "merge leads with the same e-mail first (the earliest created is kept)" },
    ["merges-out"] = { type = "string", help = "with --dedupe: write every merge to this CSV" },
    ["fail-on-errors"] = { type = "flag", help = "exit 1 when a rule's Lua function failed for a lead" },
    ["transitions-out"] = { type = "string", help = "write the lifecycle transitions the statuses imply (the"
      .. " log leadq funnel --transitions reads)" },
    previous = { type = "string", help = "a previous run's --out CSV: with --changes, what changed since" },
    changes = { type = "string", help = "write the leads whose status or grade changed since --previous" },
    reactions = { type = "string", help = "a reactions script (rules/reactions.lua): owners by its routes" } },
  run = function(opts, out) return _M.score(inputs.resolve_rule_files(opts), out) end,
}

return _M
