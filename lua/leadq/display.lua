-- leadq.display: how leadq's values print for a person in the REPL. A row (t:row(i)) prints as its
-- fields by name, one a line, a reject list (t:rejects()) as one line per rejected row, and
-- leadq.help() lists what the module offers. Loaded by require("leadq"); the values stay plain
-- tables (their metatables only add __tostring).
local core = require("leadq.core")

local format, concat, sort, rep = string.format, table.concat, table.sort, string.rep
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = { _VERSION = "0.1.0" }

local MAX_REJECTS = 20   -- lines a reject list prints; the rest are counted

local function value_text(v)
  if type(v) == "string" then return format("%q", v) end
  return tostring(v)
end

local function row_text(r)
  local keys = {}
  for k in pairs(r) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local width = 0
  for _, k in ipairs(keys) do width = math.max(width, #tostring(k)) end
  local lines = { format("row (%d fields; missing ones are absent)", #keys) }
  for _, k in ipairs(keys) do
    lines[#lines + 1] = format("  %s%s  %s", tostring(k), rep(" ", width - #tostring(k)), value_text(r[k]))
  end
  return concat(lines, "\n")
end

local function rejects_text(list)
  if #list == 0 then return "no rejected rows" end
  local lines = { format("%d rejected row%s", #list, #list == 1 and "" or "s") }
  for i = 1, math.min(#list, MAX_REJECTS) do lines[#lines + 1] = "  " .. tostring(list[i].message) end
  if #list > MAX_REJECTS then lines[#lines + 1] = format("  ... and %d more (each is r[i]: file, line, "
    .. "column, reason)", #list - MAX_REJECTS) end
  return concat(lines, "\n")
end

local row_mt, rejects_mt = core.display()
row_mt.__tostring = row_text
rejects_mt.__tostring = rejects_text

local HELP = [[
leadq %s: lead qualification. Values print readably; each function says more in its errors.

Data
  leadq.read_csv(path [, { schema =, map =, strict =, header = }])   leads -> table (t:row(i), t:rejects())
  leadq.parse_csv(text [, options])        the same from a string
  leadq.read_events(path)                  events: lead_id, type, at, value, page, asset, campaign
  leadq.parse_time(s), leadq.format_time(t)
Models
  leadq.load_model(path)                   a rule script -> model | nil, "file:line: ..."
  leadq.load_models{ a, b }                a run: later models read earlier results
  leadq.check(path)                        true | false, problems
  model:score(t [, events] [, { as_of =, threads = }])   bulk -> results table
  model:score_one(record [, events])       one lead, in real time
  model:explain(t, row [, events])         which rules fired, and their points
Outcomes
  leadq.outcome_labels(t, spec)            spec: { outcome = "y=yes" } or { transitions =, reached = }
  leadq.evaluate(model, t [, events], spec)    AUC, deciles, calibration, each rule's lift
  leadq.compare(old, new, t [, events] [, spec])   what a rule change does
  leadq.profile(t, spec), leadq.fit(t [, events], spec)   when present: conversion by column, a learned model
Funnel and accounts
  leadq.funnel([options])                  f:load(t, cols), f:aggregate{ by = }, leadq.funnel_report(r)
  leadq.account_map(t), leadq.dedupe_leads(t [, events]), leadq.account_rollup(...)
Real time
  leadq.features(specs), fs:state(), state:observe(type, at, value)
  require("leadq.service")                 the OpenResty service (README: In OpenResty)
Reports
  require("leadq.report").write(options, "report.html")   the HTML report (leadq help report)
Command line: leadq help]]

function _M.help(version)
  return format(HELP, version or "")
end

return _M
