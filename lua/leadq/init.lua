-- leadq: lead qualification for marketing and revenue operations.
--
-- The data layer (this part): leads and events live in columnar tables in C.
--   leadq.read_csv(path [, options])     -> table | nil, message   (cannot open or read the file)
--   leadq.parse_csv(text [, options])    -> table                  (the same, from a string)
--   leadq.read_events(path [, options])  -> table | nil, message   (lead_id, type, at, value, ...)
--   leadq.table(records [, schema])      -> table                  (from Lua records)
--   leadq.parse_time(text)               -> seconds | nil, message (ISO 8601, UTC unless an offset)
--   leadq.format_time(seconds)           -> "2024-03-01T10:20:30Z"
--   leadq.is_table(value)                -> boolean
--   leadq.save_snapshot(path, { leads = t, events = e }) -> true | nil, message   (or one table)
--   leadq.read_snapshot(path [, opts])   -> { leads = t, events = e } | nil, message
--       opts.columns = { leads = { names }, events = { names } }: only these columns of these tables
--       opts.map = true: the file mapped, its columns used in place (the command line's way; a file
--       truncated in place while mapped kills the process), opts.threads: threads for its checksums
--   leadq.is_snapshot(path)              -> boolean (by the file's first bytes)
-- A snapshot is the loaded tables in a binary columnar file: read back without parsing, many times
-- faster than the CSV, for repeated runs on the same export. Every section is checked: a damaged,
-- truncated, foreign or newer file gives nil and a message naming the file, never wrong data.
-- Options (unknown keys raise, with a suggestion):
--   separator = ","|";"|"\t"|any one char  (default: the most frequent of , ; tab on the first line)
--   header = true          false: columns are column_1, column_2, ...
--   map = { ["Lead Source"] = "source" }   header names -> our field names
--   schema = { employees = "number", tags = "tags" }  (names after map; or a list like t:schema())
--            types: number, category, boolean, time, text, tags; the rest is inferred
--   infer_rows = 10000     rows sampled to infer types (math.huge: all)
--   tag_separator = ";"    inside a tags field
--   strict = false         true: the first bad row raises "file:line: column 'x' (n): reason"
--   threads = 1            a plain file on N threads: cut at line starts, joined where its records
--                          really meet; rows, category codes and rejects as on one. gzip, "-"
--                          (standard input) and parse_csv's strings are read on one
--   columns = { "id", "email" }  keep only these (and the required ones: read_events' lead_id,
--                          type, at), in the file's order; the others are never parsed
--   columns_optional = false  true: a name in columns the file lacks is skipped, not an error
--                          (what model:event_columns() lists: what the rules could read)
-- Inference: numbers (not with a leading zero like 02134), then booleans (true/false, yes/no, t/f,
-- y/n), then ISO 8601 times, else text when >90% of values are distinct (or an id-like name with
-- unique values: id, lead_id, leadId), else category. Id-like columns are never numbers.
-- Missing: an empty field is missing in every type ("" quoted is the empty string in a text
-- column). A row that does not fit is rejected and listed by t:rejects(); the load goes on.
-- Misuse (wrong argument types, unknown options, a schema naming no column) raises; so does the
-- first bad row in strict mode. A file that cannot be read gives nil, message.
--
-- A table t (userdata "leadq.Table"):
--   #t, t:row(i) -> record (missing fields absent; times as epoch seconds; tags as arrays) or nil
--   t:rows() -> iterator i, record     t:column(name) -> values (nil where missing), #t
--   t:schema() -> { {name=, type=}, ... }   t:names()   t:type(name)   t:has(name)
--   t:rejects() -> { {file=, line=, record=, column=, column_number=, reason=, message=}, ... }
--   t:reject_count()   t:append(record or { records })   t:is_events()   t:memory() -> bytes
--   t:categories(name) -> a category or tags column's values in code order (first seen)
--   t:counts(name) -> how many rows hold each value of a category column ({ value = n, ["(none)"] = n })
--   t:rows_above(name, x) -> the rows whose number or time in column name is above x, in order
--   t:read_chunks() -> chunks the file was read in, joined past a cut, read again (1, 0, 0: one thread)
--   t:close() (also __close and __gc; later calls raise), tostring(t): schema and first rows
local core = require("leadq.core")

-- Lua files and the C module come from one build (csrc/core.c says why the number changes). Under
-- nginx a reload runs new Lua files against the core.so loaded at start: this refuses the reload
-- (the running workers go on) instead of letting new Lua call C functions that are not there.
local INTERFACE = 13
if core.interface ~= INTERFACE then
  error(string.format("leadq: the C module (leadq/core.so, interface %s) does not match these Lua files " ..
    "(interface %d): install both from one build; under nginx a new core.so needs a full restart, " ..
    "a reload keeps the old one", tostring(core.interface), INTERFACE), 0)
end

local _M = { _VERSION = "0.1.0" }

-- Rows and reject lists print readably in the REPL; leadq.help() lists what the module offers.
local display = require("leadq.display")
function _M.help()
  print(display.help(_M._VERSION))
end

-- The C functions themselves, so that argument errors blame the caller's line.
_M.read_csv = core.read_csv
_M.parse_csv = core.parse_csv
_M.read_events = core.read_events
_M.table = core.table
_M.parse_time = core.parse_time
_M.format_time = core.format_time
_M.is_table = core.is_table
_M.save_snapshot = core.save_snapshot
_M.read_snapshot = core.read_snapshot
_M.is_snapshot = core.is_snapshot

-- Event features (lua/leadq/features.lua): declarations -> a FeatureSet computing them in bulk
-- (fs:compute(leads, events, { as_of = })) and in real time (fs:state(), state:observe(event)).
--   leadq.features(specs [, options])   -> FeatureSet (raises on a bad declaration, naming it)
--   leadq.decode_state(fs, s)           -> state | nil, message
function _M.features(specs, options)
  return require("leadq.features").new(specs, options)
end

function _M.decode_state(fs, s)
  return require("leadq.features").decode_state(fs, s)
end

-- Scoring (lua/leadq/dsl.lua, compiler.lua, model.lua): rule scripts compiled for the C core.
--   leadq.load_model(path [, options])  -> model | nil, message (every problem, one a line)
--   leadq.model(spec)                   -> model from leadq.dsl.model "name" { ... } (raises)
--   leadq.check(path)                   -> true | false, problems
--   leadq.load_models{ path, ... }      -> a run of models, the later reading the earlier's results
--   leadq.dsl                           -> the constructors (model, rule, disqualify, list, file, feature)
_M.dsl = require("leadq.dsl")

function _M.load_model(path, options)
  if type(path) ~= "string" then error("load_model: expects the path of a rule script, got " .. type(path), 2) end
  if options ~= nil and type(options) ~= "table" then
    error("load_model: options must be a table, got " .. type(options), 2)
  end
  local m, problems = require("leadq.model").load(path, options)
  if not m then return nil, table.concat(problems, "\n") end
  return m
end

function _M.model(spec)
  if type(spec) ~= "table" then error("model: expects model \"name\" { ... }, got " .. type(spec), 2) end
  return require("leadq.model").from_table(spec)
end

function _M.check(path, options)
  if type(path) ~= "string" then error("check: expects the path of a rule script, got " .. type(path), 2) end
  local m, problems = require("leadq.model").load(path, options)
  if not m then return false, problems end
  return true
end

function _M.load_models(paths, options)
  if type(paths) ~= "table" or #paths == 0 then
    error("load_models: expects a list of rule script paths { \"a.lua\", \"b.lua\" }", 2)
  end
  local models, problems = {}, {}
  for i, p in ipairs(paths) do
    local m, err
    if type(p) == "string" then
      m, err = require("leadq.model").load(p, options)
    elseif type(p) == "table" and getmetatable(p) == require("leadq.model").Model then
      m = p
    else
      error(string.format("load_models: item %d must be a path or a model, got %s", i, type(p)), 2)
    end
    if m then models[#models + 1] = m else for _, e in ipairs(err) do problems[#problems + 1] = e end end
  end
  if #problems > 0 then return nil, table.concat(problems, "\n") end
  return require("leadq.model").new_run(models)
end


-- Funnel analytics (lua/leadq/funnel.lua, aggregation in csrc/funnel.c).
--   leadq.funnel([options])               -> Funnel: f:add, f:load, f:add_status, f:join, f:rejects, f:aggregate
--   leadq.funnel_report(result [, opts])  -> a plain table (opts.spend: cost per mql, sql, customer)
--   leadq.funnel_format(report, fmt)      -> text: "table", "csv" or "json"
--   leadq.funnel_merge(parts)             -> one result from serialized parts | nil, message
function _M.funnel(options)
  local f = require("leadq.funnel").new(options)
  return f
end

function _M.funnel_report(result, opts)
  return require("leadq.funnel").report(result, opts)
end

function _M.funnel_format(report, fmt)
  return require("leadq.funnel").format(report, fmt)
end

function _M.funnel_merge(parts)
  return require("leadq.funnel").merge(parts)
end


-- Outcomes (lua/leadq/outcome.lua), evaluation and comparison (lua/leadq/evaluate.lua, compare.lua,
-- statistics in csrc/evaluate.c).
--   leadq.outcome_labels(leads, spec)   -> labels (a byte a lead: 0, 1, 255 left out), info
--   leadq.evaluate(model, leads [, events], spec)   -> result (AUC, deciles, statuses, rules; tostring: text)
--   leadq.compare(old, new, leads [, events] [, spec])   -> result (status matrix, changes, AUC side by side)
function _M.outcome_labels(leads, spec)
  return require("leadq.outcome").labels(leads, spec)
end

function _M.evaluate(model, leads, events, spec)
  return require("leadq.evaluate").evaluate(model, leads, events, spec)
end

function _M.compare(old, new, leads, events, spec)
  return require("leadq.compare").compare(old, new, leads, events, spec)
end

-- Profiling and fitting (lua/leadq/profile.lua, fit.lua; bins and boosting in csrc/bins.c, fit.c).
--   leadq.profile(leads, spec)           -> report (columns ranked by information value, bins with rates)
--   leadq.fit(leads [, events], spec)    -> rule script text, report (thresholds, totals, fit figures)
function _M.profile(leads, spec)
  return require("leadq.profile").profile(leads, spec)
end

function _M.fit(leads, events, spec)
  if spec == nil and type(events) == "table" and not _M.is_table(events) then events, spec = nil, events end
  return require("leadq.fit").fit(leads, events, spec)
end


-- Accounts (lua/leadq/accounts.lua, rollups in csrc/accounts.c): leads grouped into accounts,
-- duplicates merged, contacts' scores rolled up for the account model (rules/aql.lua).
--   leadq.account_map(leads [, options])      -> map table (account, account_source), report
--   leadq.dedupe_leads(leads [, events] [, options]) -> leads, events, merges
--   leadq.account_rollup(sources, options)    -> leadq.Table, one row per account
--   leadq.accounts                            -> the module (build, personas, contacts, explain ...)
function _M.account_map(leads, options)
  return require("leadq.accounts").map(leads, options)
end

function _M.dedupe_leads(leads, events, options)
  return require("leadq.accounts").dedupe(leads, events, options)
end

function _M.account_rollup(sources, options)
  return require("leadq.accounts").rollup(sources, options)
end

_M.accounts = setmetatable({}, { __index = function(_, k) return require("leadq.accounts")[k] end })


return _M
