-- leadq.model: a loaded model, and runs of several models. Scoring in bulk and one lead at a time,
-- explanations, info.
--
--   model:score(tbl [, events] [, { threads =, as_of =, errors = "report"|"raise", id = "id", into = results,
--                                    fired = {} }])
--       (into: an earlier result of this model over the same rows, written again in place: no new memory;
--        fired: a table filled with which rules fired for each lead, from the same pass: fired.bits, a
--        string of one bit set per rule then per disqualifier, each fired.words 64-bit words, bit i of
--        set k at byte (k * fired.words * 8 + floor(i / 8)), bit i % 8; fired.ids, fired.nrules, fired.ndisq,
--        fired.rows; a run fills fired[model name] with one such table per model)
--       (events: a table from leadq.read_events, or the path of an events CSV, streamed through the
--        feature pass and never held; see FeatureSet:compute)
--       -> results table, errors (nil when no rule function failed), events report (with events:
--          what the features made of them: read, used, unknown leads listed, noise) | nil, message
--   model:score_one(record [, events] [, { as_of =, errors =, into = t }])
--       -> { total, status, grade, groups, reason, ... } (t itself, filled in place, when into is given)
--   model:explain(tbl, row [, events] [, options]) / model:explain(record [, events] [, options])
--       -> explanation (tostring gives readable text)
--   model:state([lead]) -> engagement state (state:observe(event), state:encode()); model:decode_state(s)
--       score_one(record, state) scores a state like bulk scoring scores the same events
--   model:rules(), model:info(), tostring(model)
local _M = { _VERSION = "0.1.0" }

local core = require("leadq.core")
local dsl = require("leadq.dsl")
local compiler = require("leadq.compiler")
local raise = require("leadq.util").raise   -- errors blame the first caller outside leadq

local type, pairs, ipairs, tostring, error, setmetatable = type, pairs, ipairs, tostring, error, setmetatable
local string_format = string.format
local table_concat, table_sort = table.concat, table.sort
local math_floor = math.floor

local Model = {}
Model.__index = Model
local Run = {}
Run.__index = Run
local Explanation = {}
Explanation.__index = Explanation

local OPTION_KEYS = { as_of = true, threads = true, errors = true, id = true }
-- score and score_one also take `into`: an earlier result to fill again instead of a new one
local ONE_OPTION_KEYS = { as_of = true, threads = true, errors = true, id = true, into = true }
-- bulk scoring also tells which rules fired (`fired`)
-- `strict`: a field no column holds is an error, not a missing value; `warnings`: a list to fill
-- with one line per such field (the rules that read it)
local SCORE_OPTION_KEYS = { as_of = true, threads = true, errors = true, id = true, into = true, fired = true,
  strict = true, warnings = true }
local RUN_OPTION_KEYS = { as_of = true, threads = true, errors = true, id = true, fired = true, strict = true,
  warnings = true }

local function is_table(v)
  return core.is_table(v)
end

---------------------------------------------------------------------------------------------------
-- arguments
---------------------------------------------------------------------------------------------------

-- Events are a leadq table (bulk) or a list of event records (one lead); anything else is options.
local function looks_like_options(t)
  return type(t) == "table" and not is_table(t) and t[1] == nil
end

-- (events, options) in either order of omission: f(x), f(x, opts), f(x, events), f(x, events, opts).
local function split_args(events, options)
  if options == nil and looks_like_options(events) then return nil, events end
  return events, options
end

local function check_options(options, fname, allowed)
  if options == nil then return {} end
  if type(options) ~= "table" then
    raise(string_format("%s: options must be a table, got %s", fname, type(options)))
  end
  for k in pairs(options) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table_sort(names)
      raise(string_format("%s: unknown option '%s'%s", fname, tostring(k), dsl.did_you_mean(k, names)))
    end
  end
  return options
end

local function parse_as_of(v, fname)
  if v == nil then return os.time() end
  if type(v) == "number" and v == v then return v end
  if type(v) == "string" then
    local t = dsl.parse_time(v)
    if t then return t end
    raise(string_format("%s: as_of %q is not a date (write \"2026-01-31\" or epoch seconds)", fname, v))
  end
  raise(string_format("%s: as_of must be epoch seconds or an ISO date, got %s", fname, type(v)))
end
_M.parse_time = dsl.parse_time

---------------------------------------------------------------------------------------------------
-- programs: one per table shape (bulk), one in record mode (one lead)
---------------------------------------------------------------------------------------------------

local RESULT_TYPES = { total = "number", status = "category", grade = "category", reason = "category",
  disqualified_by = "category" }

-- The fields another model's results give a later model: "icp.total", "icp.status", ...
local function result_fields(spec, prefix, out)
  out[prefix .. "total"] = "number"
  out[prefix .. "status"] = "category"
  if #spec.grades > 0 then out[prefix .. "grade"] = "category" end
  for _, g in ipairs(spec.groups) do out[prefix .. g.name] = "number" end
  out[prefix .. "reason"] = "category"
  out[prefix .. "disqualified_by"] = "category"
  return out
end
_M.RESULT_TYPES = RESULT_TYPES

local function feature_set(self)
  if self._fs == nil then
    local specs = {}
    for name, f in pairs(self.spec.features) do specs[name] = f.spec end
    self._fs = require("leadq.features").new(specs, self.spec.events)
  end
  return self._fs
end

-- One line per field the rules read that no column holds: the rules that read it, which read it
-- as missing (as score_one reads a record without it).
local function missing_lines(spec, missing, names, source)
  local readers = {}
  local function note(kind, item)
    compiler.walk(item.when, function(leaf)
      local f = leaf.field
      if f and missing[f] then
        local list = readers[f] or { seen = {} }
        readers[f] = list
        local text = string_format("%s '%s' (line %s)", kind, item.id, tostring(item.line))
        if not list.seen[text] then list.seen[text], list[#list + 1] = true, text end
      end
    end)
  end
  for _, r in ipairs(spec.rules) do note("rule", r) end
  for _, d in ipairs(spec.disqualifiers) do note("disqualifier", d) end
  local lines = {}
  for _, f in ipairs(dsl.sorted_keys(missing)) do
    lines[#lines + 1] = string_format("%s: no column '%s' in %s%s: read as missing by %s", spec.path or spec.name,
      f, source, dsl.did_you_mean(f, names), readers[f] and table_concat(readers[f], ", ") or "the model")
  end
  return lines
end

-- Which of the program's leaves each test of the spec is (the same for every program of one spec):
-- explain reads the facts of a test by it.
local function keep_leaf_index(self, desc)
  if self._leaf_index then return end
  local index = {}
  for i, node in ipairs(desc.leaf_nodes) do index[node] = i end
  self._leaf_index = index
end

-- The program for this lead table (and features / earlier results), compiled once per shape.
-- A field no column holds reads as missing (the third result lists the warnings), unless strict.
local function table_program(self, tbl, features_tbl, upstream, strict)
  local spec = self.spec
  local lead_types = {}
  for _, c in ipairs(tbl:schema()) do lead_types[c.name] = c.type end
  local feat_types = {}
  if features_tbl then
    for _, c in ipairs(features_tbl:schema()) do feat_types[c.name] = c.type end
  end
  local declared = {}
  for _, name in ipairs(spec.feature_names) do declared[name] = true end
  local function resolve(field)
    if declared[field] and feat_types[field] then
      return { type = feat_types[field], source = "features", column = field }
    end
    if lead_types[field] then return { type = lead_types[field], source = "lead", column = field } end
    if upstream and upstream[field] then return { type = upstream[field], source = "results", column = field } end
    if declared[field] then return { type = "number", source = "absent", column = field } end
    return nil
  end
  local key, missing, any_missing = { strict and "strict" or "" }, {}, false
  for _, f in ipairs(dsl.sorted_keys(spec.fields)) do
    local r = resolve(f)
    key[#key + 1] = r and (f .. "=" .. r.source .. ":" .. r.type) or (f .. "=?")
    if not r then missing[f], any_missing = true, true end
  end
  key = table_concat(key, "\n")
  local names = {}
  for n in pairs(lead_types) do names[#names + 1] = n end
  for n in pairs(declared) do names[#names + 1] = n end
  for n in pairs(upstream or {}) do names[#names + 1] = n end
  table_sort(names)
  local warnings = any_missing and not strict and missing_lines(spec, missing, names, "the leads") or nil
  local prog = self._progs[key]
  if prog then return prog, nil, warnings end
  local lookup = resolve
  if not strict then
    lookup = function(field)
      if missing[field] then return { type = "number", source = "absent", column = field } end
      return resolve(field)
    end
  end
  local desc, problems = compiler.compile(spec, lookup, names)
  if not desc then return nil, table_concat(problems, "\n") end
  prog = core.program(desc)
  keep_leaf_index(self, desc)
  self._progs[key] = prog
  return prog, nil, warnings
end

local function record_program(self)
  local prog = self._one
  if prog then return prog end
  local desc, problems = compiler.compile(self.spec, nil)
  if not desc then raise(table_concat(problems, "\n")) end
  prog = core.program(desc)
  keep_leaf_index(self, desc)
  self._one = prog
  -- From now on model:score_one is found on the model itself: a C function whose usual call goes
  -- straight to the program, and which hands every other call to Model.score_one (one_scorer in
  -- csrc/program_one.c).
  self.score_one = core.one_scorer(prog, Model.score_one)
  return prog
end

-- Feature values for one lead from its events: an array of event records, a real-time engagement
-- state (model:state(), fed by state:observe), or nil.
local function one_lead_features(self, record, events, as_of)
  if events == nil or #self.spec.feature_names == 0 then return nil end
  if type(events) == "userdata" and type(events.values) == "function" then
    return events:values(as_of)
  end
  if type(events) ~= "table" then
    raise(string_format("events must be a list of event records, got %s", type(events)))
  end
  -- the feature set sorts the events and leaves out those after as_of: the same numbers as bulk
  local values, err = feature_set(self):evaluate(record, events, as_of)
  if not values then raise("events: " .. tostring(err)) end
  return values
end

---------------------------------------------------------------------------------------------------
-- a model
---------------------------------------------------------------------------------------------------

function _M.new(spec)
  local self = setmetatable({ spec = spec, name = spec.name, _progs = {} }, Model)
  return self
end

-- model:state([lead]) -> a real-time engagement state for one lead: state:observe(event) in O(1),
-- then model:score_one(record, state) scores it as bulk scoring would score the same events.
function Model:state(lead)
  if #self.spec.feature_names == 0 then
    error(string_format("state: model '%s' declares no features, so it reads no events", self.name), 2)
  end
  return feature_set(self):state(lead)
end

-- model:decode_state(s) -> the state that state:encode() gave, or nil, message
function Model:decode_state(s)
  return feature_set(self):decode(s)
end

local function check_model(self, method)
  if getmetatable(self) ~= Model then
    raise(string_format("bad self to '%s' (a model expected, got %s); use model:%s(...)", method, type(self),
      method))
  end
end

-- Bulk scoring; `results`/`prefix`/`upstream` are for runs of several models.
local function score_into(self, tbl, features_tbl, options, results, prefix, upstream, as_of, fired)
  local prog, err, warnings = table_program(self, tbl, features_tbl, upstream, options.strict)
  if not prog then return nil, err end
  if warnings and options.warnings then
    for _, w in ipairs(warnings) do options.warnings[#options.warnings + 1] = w end
  end
  local threads = options.threads or 1
  local id = options.id
  if id == nil then
    id = (tbl:has("id") and "id") or (tbl:has("lead_id") and "lead_id") or nil
  end
  local refill = false
  if results == nil and options.into ~= nil then results, refill = options.into, true end
  if fired == nil then
    return prog:score(tbl, features_tbl, results, prefix or "", as_of, threads, options.errors == "raise", id, refill)
  end
  local out, errors, bits = prog:score(tbl, features_tbl, results, prefix or "", as_of, threads,
    options.errors == "raise", id, refill, true)
  if out == nil then return nil, errors end
  local ids = {}
  for i, r in ipairs(self.spec.rules) do ids[i] = r.id end
  for _, d in ipairs(self.spec.disqualifiers) do ids[#ids + 1] = d.id end
  fired.bits, fired.ids, fired.rows = bits, ids, #tbl
  fired.nrules, fired.ndisq, fired.words = #self.spec.rules, #self.spec.disqualifiers, math_floor((#tbl + 63) / 64)
  return out, errors
end

local function check_score_options(options, fname, keys)
  options = check_options(options, fname, keys or OPTION_KEYS)
  if options.threads ~= nil and (type(options.threads) ~= "number" or options.threads < 1 or
      options.threads ~= math_floor(options.threads)) then
    raise(string_format("%s: threads must be a whole number of at least 1, got %s", fname,
      tostring(options.threads)))
  end
  if options.errors ~= nil and options.errors ~= "report" and options.errors ~= "raise" then
    raise(string_format("%s: errors must be \"report\" or \"raise\", got %s", fname, tostring(options.errors)))
  end
  if options.id ~= nil and type(options.id) ~= "string" then
    raise(string_format("%s: id must be a column name, got %s", fname, type(options.id)))
  end
  if options.fired ~= nil and type(options.fired) ~= "table" then
    raise(string_format("%s: fired must be a table to fill, got %s", fname, type(options.fired)))
  end
  if options.warnings ~= nil and type(options.warnings) ~= "table" then
    raise(string_format("%s: warnings must be a table to fill, got %s", fname, type(options.warnings)))
  end
  return options
end

local function compute_features(self, tbl, events, as_of, options)
  if events == nil or #self.spec.feature_names == 0 then return nil end
  if not is_table(events) and type(events) ~= "string" then
    raise(string_format("events must be a leadq table (leadq.read_events) or the path of an events CSV, got %s",
      type(events)))
  end
  -- The features are read by the rules and dropped: the last pass's table is filled again when it is
  -- still there and fits. Held weakly, so no longer than an unreferenced table waits for the collector
  -- anyway; what it saves is the kernel zeroing fresh memory for every pass (big blocks go back to it).
  local scratch, into = nil, nil
  if type(events) ~= "string" then
    scratch = self._features_scratch
    if scratch == nil then
      scratch = setmetatable({}, { __mode = "v" })
      self._features_scratch = scratch
    end
    into = scratch[1]
    if into ~= nil and #into ~= #tbl then into = nil end
  end
  local ftbl, report = feature_set(self):compute(tbl, events, { as_of = as_of, id = options.id,
    threads = options.threads, into = into })
  if not ftbl then return nil, report end
  if scratch then scratch[1] = ftbl end
  return ftbl, nil, report
end

function Model:score(tbl, events, options)
  check_model(self, "score")
  events, options = split_args(events, options)
  if not is_table(tbl) then
    error(string_format("score: expects a leadq table (leadq.read_csv, leadq.table), got %s", type(tbl)), 2)
  end
  options = check_score_options(options, "score", SCORE_OPTION_KEYS)
  if options.into ~= nil and (not is_table(options.into) or options.into == tbl) then
    error(string_format("score: into must be an earlier result of this model, got %s",
      options.into == tbl and "the leads table" or type(options.into)), 2)
  end
  local as_of = parse_as_of(options.as_of, "score")
  local ftbl, ferr, events_report = compute_features(self, tbl, events, as_of, options)
  if ferr then return nil, ferr end
  local results, errors = score_into(self, tbl, ftbl, options, nil, "", nil, as_of, options.fired)
  return results, errors, events_report
end

local function slow_score_one(self, record, events, options, explain)
  events, options = split_args(events, options)
  local fname = explain and "explain" or "score_one"
  if type(record) ~= "table" then
    raise(string_format("%s: expects a lead record (a table of field = value), got %s", fname, type(record)))
  end
  options = check_options(options, fname, explain and OPTION_KEYS or ONE_OPTION_KEYS)
  if options.into ~= nil and type(options.into) ~= "table" then
    raise(string_format("%s: into must be a table to fill, got %s", fname, type(options.into)))
  end
  local as_of = parse_as_of(options.as_of, fname)
  local extra = one_lead_features(self, record, events, as_of)
  local prog = record_program(self)
  local opts = { as_of = as_of, errors = options.errors, into = options.into }
  if explain then return prog:explain_one(record, opts, extra) end
  return prog:score_one(record, opts, extra)
end

-- The hot path: a record, maybe options with a numeric as_of; everything else goes the slow way.
function Model:score_one(record, events, options)
  local prog = self._one
  if prog ~= nil and events == nil and type(record) == "table" and
      (options == nil or type(options.as_of) ~= "string") then
    return prog:score_one(record, options)
  end
  check_model(self, "score_one")
  if prog == nil then record_program(self) end
  return slow_score_one(self, record, events, options, false)
end

---------------------------------------------------------------------------------------------------
-- explain
---------------------------------------------------------------------------------------------------

local DAY = 86400

local function quote(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = quote(x) end
    return "{" .. table_concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

local function fmt_number(x)
  if x == math_floor(x) and x > -1e15 and x < 1e15 then return string_format("%d", x) end
  return string_format("%.6g", x)
end

local function fmt_date(t)
  local ok, s = pcall(core.format_time, t)
  if ok and type(s) == "string" then return s:match("^(%d+%-%d+%-%d+)") or s end
  return fmt_number(t)
end

local function list_text(leaf)
  if leaf.list then return "the list '" .. leaf.list .. "'" end
  local vals = leaf.values
  local shown = {}
  for i = 1, math.min(#vals, 5) do shown[i] = "'" .. vals[i] .. "'" end
  if #vals > 5 then shown[#shown + 1] = string_format("... (%d in all)", #vals) end
  return table_concat(shown, ", ")
end

-- One test of a condition, in a sentence. Whether it held, and what decided it (the number it
-- compared, the needle it found and in which value), come from the C program's own pass over this
-- lead (fact: facts.leaves[i]); the lead's values only show what the lead holds.
local function leaf_sentence(leaf, fact, lead, as_of)
  local f = leaf.field
  local holds = fact.holds
  if leaf.t == "fn" then return holds, "the rule's Lua function" end
  local v = lead[f]
  if leaf.t == "present" then
    if leaf.negate then return holds, f .. " is missing" end
    return holds, string_format("%s is given (%s)", f, quote(v))
  elseif leaf.t == "bool" then
    return holds, string_format("%s is %s", f, tostring(leaf.value))
  elseif leaf.t == "num" or leaf.t == "time" or leaf.t == "date" then
    local x = fact.number
    if x == nil then return holds, f .. " is missing" end
    local arg = leaf.arg
    if leaf.t == "num" then
      local what = ({ at_least = "at least", at_most = "at most", above = "above", below = "below",
        equals = "equal to", not_equals = "not equal to" })[leaf.test]
      if leaf.test == "between" then
        return holds, string_format("%s %s is between %s and %s", f, fmt_number(x), fmt_number(arg[1]),
          fmt_number(arg[2]))
      end
      return holds, string_format("%s %s is %s %s", f, fmt_number(x), what or leaf.test, fmt_number(arg))
    end
    local days = (as_of - x) / DAY
    local ago = days >= 0 and string_format("%s days ago", fmt_number(math_floor(days * 10 + 0.5) / 10))
      or string_format("in %s days", fmt_number(math_floor(-days * 10 + 0.5) / 10))
    if leaf.test == "within_days" then
      return holds, string_format("%s %s is %s (within %s days)", f, fmt_date(x), ago, fmt_number(arg))
    elseif leaf.test == "older_than_days" then
      return holds, string_format("%s %s is %s (more than %s days)", f, fmt_date(x), ago, fmt_number(arg))
    elseif leaf.test == "days_between" then
      return holds, string_format("%s %s is %s (between %s and %s days)", f, fmt_date(x), ago,
        fmt_number(arg[1]), fmt_number(arg[2]))
    end
    return holds, string_format("%s %s is %s %s", f, fmt_date(x), leaf.test, arg)
  elseif leaf.t == "str" then
    if fact.missing then return holds, f .. " is missing" end
    local n = fact.needle and leaf.values[fact.needle]
    if n == nil then
      if leaf.negate then return holds, string_format("%s %s is not one of %s", f, quote(v), list_text(leaf)) end
      return holds, string_format("%s %s does not match", f, quote(v))
    end
    local shown = quote(type(v) == "table" and v or tostring(v))
    if leaf.negate then return holds, string_format("%s %s is one of %s", f, shown, list_text(leaf)) end
    if leaf.mode == "word" then return holds, string_format("%s %s has the word '%s'", f, shown, n) end
    if leaf.mode == "contains" then return holds, string_format("%s %s contains '%s'", f, shown, n) end
    if leaf.mode == "starts" then return holds, string_format("%s %s starts with '%s'", f, shown, n) end
    if leaf.mode == "ends" then return holds, string_format("%s %s ends with '%s'", f, shown, n) end
    if leaf.mode == "matches" then return holds, string_format("%s %s matches '%s'", f, shown, n) end
    if #leaf.values == 1 and not leaf.list then return holds, string_format("%s is %s", f, shown) end
    return holds, string_format("%s %s is one of %s", f, shown, list_text(leaf))
  end
  return holds, "?"
end

-- (holds, sentence) of a condition: its leaves' results from the C program (seen.facts, by the
-- index the compiler gave each leaf), combined as the condition combines them, and the sentence of
-- the part that decided it.
local function condition_sentence(node, seen)
  if node == nil then return false, "" end
  if node.op == nil then
    return leaf_sentence(node, seen.facts[seen.leaf_index[node]], seen.lead, seen.as_of)
  end
  if node.op == "not" then
    local ok, why = condition_sentence(node.args[1], seen)
    return not ok, "not (" .. why .. ")"
  end
  if node.op == "all" then
    local reasons = {}
    for _, a in ipairs(node.args) do
      local ok, why = condition_sentence(a, seen)
      if not ok then return false, why end
      reasons[#reasons + 1] = why
    end
    return true, table_concat(reasons, " and ")
  end
  -- any / none: the first part that holds decides
  local last
  for _, a in ipairs(node.args) do
    local ok, why = condition_sentence(a, seen)
    if ok then
      if node.op == "any" then return true, why end
      return false, why
    end
    last = why
  end
  if node.op == "any" then return false, last or "" end
  return true, "none of its conditions holds"
end

local function explanation(self, res, lead, as_of)
  local spec = self.spec
  local facts = res.facts
  local seen = { facts = facts.leaves, leaf_index = self._leaf_index, lead = lead, as_of = as_of }
  local ex = setmetatable({ model = spec.name, total = res.total, status = res.status, grade = res.grade,
    reason = res.reason, groups = {}, rules = {}, thresholds = {}, errors = res.errors }, Explanation)
  for i, g in ipairs(spec.groups) do
    local gf = facts.groups[i]
    ex.groups[g.name] = { label = g.label, points = gf.points, raw = gf.raw, cap = g.cap, floor = g.floor }
  end
  ex.group_order = {}
  for i, g in ipairs(spec.groups) do ex.group_order[i] = g.name end
  for i, r in ipairs(spec.rules) do
    local rf = facts.rules[i]
    if rf.fired then
      local _, why = condition_sentence(r.when, seen)
      if r.uses_function and (why == nil or why == "" or why:find("Lua function", 1, true)) then
        why = "its Lua function says so"
      end
      ex.rules[#ex.rules + 1] = { id = r.id, label = r.label, group = r.group, points = rf.points, raw = rf.raw,
        detail = why }
    end
  end
  for i, d in ipairs(spec.disqualifiers) do
    if facts.disqualifiers[i] then
      local _, why = condition_sentence(d.when, seen)
      ex.disqualified = ex.disqualified or { id = d.id, reason = d.reason, label = d.label, detail = why }
    end
  end
  for i = #spec.thresholds, 1, -1 do
    local t = spec.thresholds[i]
    ex.thresholds[#ex.thresholds + 1] = { status = t.status, at = t.at }
  end
  ex.otherwise = spec.otherwise
  -- the next threshold above the total (none for a disqualified lead: no points lift it)
  for i = 1, ex.disqualified and 0 or #spec.thresholds do
    local t = spec.thresholds[i]
    if res.total < t.at then
      ex.next = { status = t.status, at = t.at, needs = t.at - res.total }
      break
    end
  end
  return ex
end

local function lead_record(tbl, row, ftbl)
  local rec = tbl:row(row)
  if ftbl then
    for k, v in pairs(ftbl:row(row)) do if rec[k] == nil then rec[k] = v end end
  end
  return rec
end

function Model:explain(a, b, c, d)
  check_model(self, "explain")
  if is_table(a) then
    local tbl, row, events, options = a, b, c, d
    events, options = split_args(events, options)
    if type(row) ~= "number" or row ~= math_floor(row) or row < 1 or row > #tbl then
      error(string_format("explain: row must be a row number from 1 to %d, got %s", #tbl, tostring(row)), 2)
    end
    options = check_score_options(options, "explain")
    local as_of = parse_as_of(options.as_of, "explain")
    local ftbl, ferr = compute_features(self, tbl, events, as_of, options)
    if ferr then return nil, ferr end
    local prog, err = table_program(self, tbl, ftbl, nil)
    if not prog then return nil, err end
    local id = options.id or (tbl:has("id") and "id") or (tbl:has("lead_id") and "lead_id") or nil
    local res = prog:explain_row(tbl, ftbl, nil, row, as_of, id)
    return explanation(self, res, lead_record(tbl, row, ftbl), as_of)
  end
  if type(a) ~= "table" then
    error(string_format("explain: expects a leadq table and a row, or a lead record, got %s", type(a)), 2)
  end
  local record, events, options = a, b, c
  events, options = split_args(events, options)
  if self._one == nil then record_program(self) end
  local res, err = slow_score_one(self, record, events, options, true)
  if not res then return nil, err end
  local ev_opts = type(options) == "table" and options or {}
  local as_of = parse_as_of(ev_opts.as_of, "explain")
  local lead = record
  local extra = one_lead_features(self, record, events, as_of)
  if extra then
    lead = {}
    for k, v in pairs(extra) do lead[k] = v end
    for k, v in pairs(record) do lead[k] = v end
  end
  return explanation(self, res, lead, as_of)
end

local function pts(x)
  if x == nil then return "-" end
  local s = fmt_number(x)
  if x > 0 then s = "+" .. s end
  return s
end

Explanation.__tostring = function(ex)
  local out = {}
  local head = string_format("%s: %s points, status %s", ex.model, fmt_number(ex.total), tostring(ex.status))
  if ex.grade then head = head .. ", grade " .. ex.grade end
  out[#out + 1] = head
  if ex.disqualified then
    out[#out + 1] = string_format("  disqualified by %s (%s): %s", ex.disqualified.id, ex.disqualified.reason,
      ex.disqualified.detail or "")
  end
  local idw, pw, shown = 4, 3, {}
  for i, r in ipairs(ex.rules) do
    local p = pts(r.points)
    if r.raw ~= r.points then p = string_format("%s of %s", pts(r.points), pts(r.raw)) end
    shown[i] = p
    if #r.id > idw then idw = #r.id end
    if #p > pw then pw = #p end
  end
  local function rule_line(i, r)
    return string_format("    %-" .. idw .. "s  %" .. pw .. "s  %s: %s", r.id, shown[i], r.label, r.detail or "")
  end
  for _, name in ipairs(ex.group_order or {}) do
    local g = ex.groups[name]
    local bounds = {}
    if g.cap then bounds[#bounds + 1] = "cap " .. fmt_number(g.cap) end
    if g.floor then bounds[#bounds + 1] = "floor " .. fmt_number(g.floor) end
    local line = string_format("  %s: %s", g.label ~= name and string_format("%s (%s)", name, g.label) or name,
      pts(g.points))
    if g.raw ~= g.points then
      line = line .. string_format(" (%s before the %s)", pts(g.raw), table_concat(bounds, ", "))
    elseif #bounds > 0 then
      line = line .. " (" .. table_concat(bounds, ", ") .. ")"
    end
    out[#out + 1] = line
    for i, r in ipairs(ex.rules) do
      if r.group == name then out[#out + 1] = rule_line(i, r) end
    end
  end
  local loose = {}
  for i, r in ipairs(ex.rules) do
    if r.group == nil then loose[#loose + 1] = rule_line(i, r) end
  end
  if #loose > 0 then
    out[#out + 1] = "  (no group):"
    for _, l in ipairs(loose) do out[#out + 1] = l end
  end
  if #ex.rules == 0 then out[#out + 1] = "  no rule fired" end
  if #ex.thresholds > 0 then
    local parts = {}
    for _, t in ipairs(ex.thresholds) do parts[#parts + 1] = string_format("%s at %s", t.status, fmt_number(t.at)) end
    parts[#parts + 1] = "else " .. tostring(ex.otherwise)
    out[#out + 1] = "  thresholds: " .. table_concat(parts, ", ")
  end
  if ex.next then
    out[#out + 1] = string_format("  next: %s needs %s more point%s", ex.next.status, fmt_number(ex.next.needs),
      ex.next.needs == 1 and "" or "s")
  end
  if ex.errors then
    for _, e in ipairs(ex.errors) do out[#out + 1] = "  error: " .. e end
  end
  return table_concat(out, "\n")
end

---------------------------------------------------------------------------------------------------
-- describing a model
---------------------------------------------------------------------------------------------------

function Model:rules()
  check_model(self, "rules")
  local out = {}
  for i, r in ipairs(self.spec.rules) do
    out[i] = { id = r.id, label = r.label, group = r.group, points = r.points, line = r.line,
      uses_function = r.uses_function or false, kind = "rule" }
  end
  for _, d in ipairs(self.spec.disqualifiers) do
    out[#out + 1] = { id = d.id, label = d.label, reason = d.reason, line = d.line,
      uses_function = d.uses_function or false, kind = "disqualifier" }
  end
  return out
end

-- model:event_columns() -> the events columns this model's features read (read_events' columns
-- option), or nil when it declares no features.
function Model:event_columns()
  check_model(self, "event_columns")
  if #self.spec.feature_names == 0 then return nil end
  return feature_set(self):event_columns()
end

-- model:lead_columns() -> the leads columns this model reads (its rules' fields and its features'
-- noise rules), or nil when a rule's Lua function may read any of them. A reader may keep only these
-- and the id (read_csv's columns option).
function Model:lead_columns()
  check_model(self, "lead_columns")
  if #self.spec.functions > 0 then return nil end
  local features, seen, out = {}, {}, {}
  for _, name in ipairs(self.spec.feature_names) do features[name] = true end
  for _, f in ipairs(dsl.sorted_keys(self.spec.fields)) do
    if not features[f] then seen[f] = true; out[#out + 1] = f end
  end
  if #self.spec.feature_names > 0 then
    for _, c in ipairs(feature_set(self):lead_columns()) do
      if not seen[c] then seen[c] = true; out[#out + 1] = c end
    end
  end
  return out
end

function Model:info()
  check_model(self, "info")
  local spec = self.spec
  local groups = {}
  for i, g in ipairs(spec.groups) do groups[i] = { name = g.name, label = g.label, cap = g.cap, floor = g.floor } end
  local thresholds = {}
  for i = #spec.thresholds, 1, -1 do
    thresholds[#thresholds + 1] = { status = spec.thresholds[i].status, at = spec.thresholds[i].at }
  end
  local functions = {}
  for i, id in ipairs(spec.functions) do functions[i] = id end
  return {
    name = spec.name, description = spec.description, path = spec.path,
    rules = #spec.rules, disqualifiers = #spec.disqualifiers, groups = groups, thresholds = thresholds,
    otherwise = spec.otherwise, functions = functions, fields = dsl.sorted_keys(spec.fields),
    features = spec.feature_names,
    grades = #spec.grades > 0 and (function()
      local g = {}
      for i, gr in ipairs(spec.grades) do g[i] = { name = gr.name, group = gr.group } end
      return g
    end)() or nil,
  }
end

-- model:probability(total) -> the probability of converting its calibration table gives a total
-- (the last band whose `from` the total reaches; below the first, the first), or nil without one.
-- model:probabilities(results) -> one per row of a score result, or nil without a calibration table.
function Model:probability(total)
  local cal = self.spec.calibration
  if cal == nil or type(total) ~= "number" then return nil end
  local p = cal[1].probability
  for i = 2, #cal do
    if total < cal[i].from then break end
    p = cal[i].probability
  end
  return p
end

function Model:probabilities(results)
  if self.spec.calibration == nil then return nil end
  local totals, out = results:column("total"), {}
  for i = 1, #results do out[i] = self:probability(totals[i]) end
  return out
end

Model.__tostring = function(self)
  local spec = self.spec
  local gnames = {}
  for i, g in ipairs(spec.groups) do gnames[i] = g.name end
  local s = string_format("leadq model '%s': %d rule%s, %d disqualifier%s, groups %s", spec.name, #spec.rules,
    #spec.rules == 1 and "" or "s", #spec.disqualifiers, #spec.disqualifiers == 1 and "" or "s",
    #gnames > 0 and table_concat(gnames, ", ") or "(none)")
  if #spec.functions > 0 then
    s = s .. string_format("; %d call%s Lua per lead (%s)", #spec.functions, #spec.functions == 1 and "s" or "",
      table_concat(spec.functions, ", "))
  end
  return s
end

_M.Model = Model

---------------------------------------------------------------------------------------------------
-- runs of several models: each may read the results of those before it ("icp.total")
---------------------------------------------------------------------------------------------------

function _M.new_run(models)
  local seen = {}
  for _, m in ipairs(models) do
    if seen[m.name] then return nil, string_format("two models are named '%s' in one run", m.name) end
    seen[m.name] = true
  end
  return setmetatable({ models = models }, Run)
end

local function check_run(self, method)
  if getmetatable(self) ~= Run then
    raise(string_format("bad self to '%s' (a run of models expected, got %s); use run:%s(...)", method, type(self),
      method))
  end
end

function Run:score(tbl, events, options)
  check_run(self, "score")
  events, options = split_args(events, options)
  if not is_table(tbl) then
    error(string_format("score: expects a leadq table (leadq.read_csv, leadq.table), got %s", type(tbl)), 2)
  end
  options = check_score_options(options, "score", RUN_OPTION_KEYS)
  local as_of = parse_as_of(options.as_of, "score")
  local results, all_errors, events_report = nil, nil, nil
  local upstream = {}
  for _, m in ipairs(self.models) do
    local ftbl, ferr, report = compute_features(m, tbl, events, as_of, options)
    if ferr then return nil, ferr end
    if events_report and report then   -- every model reads the same events: one report, each model's pass timed
      events_report.seconds = (events_report.seconds or 0) + (report.seconds or 0)
    end
    events_report = events_report or report
    local fired = nil
    if options.fired then
      fired = {}
      options.fired[m.name] = fired
    end
    local out, errs = score_into(m, tbl, ftbl, options, results, m.name .. ".", upstream, as_of, fired)
    if out == nil then return nil, errs end
    results = out
    if errs then
      all_errors = all_errors or { count = 0 }
      for _, e in ipairs(errs) do all_errors[#all_errors + 1] = e end
      all_errors.count = all_errors.count + (errs.count or #errs)
    end
    result_fields(m.spec, m.name .. ".", upstream)
  end
  return results, all_errors, events_report
end

-- Earlier results as the fields a later model reads.
local function upstream_values(name, res, extra)
  extra[name .. ".total"] = res.total
  extra[name .. ".status"] = res.status
  extra[name .. ".grade"] = res.grade
  extra[name .. ".reason"] = res.reason
  extra[name .. ".disqualified_by"] = res.disqualified_by
  for g, v in pairs(res.groups or {}) do extra[name .. "." .. g] = v end
end

local function run_one(self, record, events, options, explain)
  events, options = split_args(events, options)
  local fname = explain and "explain" or "score_one"
  if type(record) ~= "table" then
    raise(string_format("%s: expects a lead record (a table of field = value), got %s", fname, type(record)))
  end
  options = check_options(options, fname, OPTION_KEYS)
  local as_of = parse_as_of(options.as_of, fname)
  local out, extra = {}, {}
  for _, m in ipairs(self.models) do
    local prog = record_program(m)
    local feats = one_lead_features(m, record, events, as_of)
    local merged = {}
    for k, v in pairs(extra) do merged[k] = v end
    for k, v in pairs(feats or {}) do merged[k] = v end
    local opts = { as_of = as_of, errors = options.errors }
    local res, err
    if explain then res, err = prog:explain_one(record, opts, merged)
    else res, err = prog:score_one(record, opts, merged) end
    if not res then return nil, err end
    if explain then
      local lead = {}
      for k, v in pairs(merged) do lead[k] = v end
      for k, v in pairs(record) do lead[k] = v end
      out[m.name] = explanation(m, res, lead, as_of)
    else
      out[m.name] = res
    end
    upstream_values(m.name, res, extra)
  end
  return out
end

function Run:score_one(record, events, options)
  check_run(self, "score_one")
  return run_one(self, record, events, options, false)
end

local RunExplanation = {}
RunExplanation.__tostring = function(ex)
  local parts = {}
  for _, name in ipairs(ex._order) do parts[#parts + 1] = tostring(ex[name]) end
  return table_concat(parts, "\n\n")
end

-- One lead's events from a table of everyone's (leadq.read_events), as a list of event records.
local function events_of_lead(events, id)
  local names = events:names()
  local lead_col = events:has("lead_id") and "lead_id" or "lead"
  local leads, cols, list = events:column(lead_col), {}, {}
  for _, n in ipairs(names) do cols[n] = events:column(n) end
  for r = 1, #events do
    if tostring(leads[r]) == id then
      local e = {}
      for _, n in ipairs(names) do e[n] = cols[n][r] end
      list[#list + 1] = e
    end
  end
  return list
end

function Run:explain(a, b, c, d)
  check_run(self, "explain")
  local order = {}
  for i, m in ipairs(self.models) do order[i] = m.name end
  if is_table(a) then
    -- one row of a table: score the run for that row's record, so later models see earlier results
    if type(b) ~= "number" or b ~= math_floor(b) or b < 1 or b > #a then
      error(string_format("explain: row must be a row number from 1 to %d, got %s", #a, tostring(b)), 2)
    end
    local events, options = split_args(c, d)
    if is_table(events) then   -- a table of everyone's events: this lead's, as the records run_one reads
      local id_col = type(options) == "table" and options.id or (a:has("id") and "id") or
        (a:has("lead_id") and "lead_id") or nil
      if not id_col then
        error("explain: the leads have no id column (id or lead_id) to find the lead's events by", 2)
      end
      events = events_of_lead(events, tostring(a:row(b)[id_col]))
    end
    local out, err = run_one(self, a:row(b), events, options, true)
    if not out then return nil, err end
    out._order = order
    return setmetatable(out, RunExplanation)
  end
  local out, err = run_one(self, a, b, c, true)
  if not out then return nil, err end
  out._order = order
  return setmetatable(out, RunExplanation)
end

function Run:rules()
  check_run(self, "rules")
  local out = {}
  for _, m in ipairs(self.models) do
    for _, r in ipairs(m:rules()) do
      r.model = m.name
      out[#out + 1] = r
    end
  end
  return out
end

-- run:event_columns() -> the events columns any of its models' features read, or nil when none
-- declares features.
function Run:event_columns()
  check_run(self, "event_columns")
  local seen, out = {}, nil
  for _, m in ipairs(self.models) do
    for _, c in ipairs(m:event_columns() or {}) do
      if not seen[c] then seen[c] = true; out = out or {}; out[#out + 1] = c end
    end
  end
  return out
end

-- run:lead_columns() -> the leads columns any of its models reads, or nil when one may read any
-- (a later model's fields named as an earlier one's results are listed too: a leads column of that
-- name would be read first).
function Run:lead_columns()
  check_run(self, "lead_columns")
  local seen, out = {}, {}
  for _, m in ipairs(self.models) do
    local cols = m:lead_columns()
    if cols == nil then return nil end
    for _, c in ipairs(cols) do
      if not seen[c] then seen[c] = true; out[#out + 1] = c end
    end
  end
  return out
end

function Run:info()
  check_run(self, "info")
  local out = { models = {} }
  for i, m in ipairs(self.models) do out.models[i] = m:info() end
  return out
end

Run.__tostring = function(self)
  local parts = {}
  for i, m in ipairs(self.models) do parts[i] = tostring(m) end
  return "leadq run of " .. #self.models .. " models:\n  " .. table_concat(parts, "\n  ")
end

_M.Run = Run

---------------------------------------------------------------------------------------------------
-- loading
---------------------------------------------------------------------------------------------------

-- Feature declarations are checked by the events module when the model loads.
local function check_features(spec)
  if #spec.feature_names == 0 then return nil end
  local specs = {}
  for name, f in pairs(spec.features) do specs[name] = f.spec end
  local ok, err = pcall(function() return require("leadq.features").new(specs, spec.events) end)
  if ok then return nil end
  err = tostring(err):gsub("^[^\n]-:%d+: ", "")
  local name = err:match("feature '([^']+)'")
  local line = name and spec.features[name] and spec.features[name].line or spec.events_line or spec.line
  return string_format("%s:%s: %s", spec.path, tostring(line), err)
end

-- A fingerprint of the rule files' bytes: two polynomial hashes mod primes below 2^32 (exact in a
-- double under every Lua), as 16 hex digits. It tells runs of different rules apart; it is no
-- cryptographic digest.
function _M.rules_hash(files)
  local a, b = 0, 0
  for _, path in ipairs(files) do
    local f = io.open(path, "rb")
    local text = f and f:read("*a") or path
    if f then f:close() end
    for i = 1, #text do
      local c = text:byte(i)
      a = (a * 131 + c) % 4294967291
      b = (b * 257 + c) % 4294967279
    end
    a = (a * 131 + 10) % 4294967291
    b = (b * 257 + 10) % 4294967279
  end
  return string_format("%08x%08x", a, b)
end

function _M.load(path, options)
  local spec, problems = dsl.load_file(path, options)
  if not spec then return nil, problems end
  local fp = check_features(spec)
  if fp then return nil, { fp } end
  -- compile once without a table: catches fields tested as a number here and text there
  local desc, cproblems = compiler.compile(spec, nil)
  if not desc then return nil, cproblems end
  return _M.new(spec)
end

function _M.from_table(obj)
  local spec, problems = dsl.validate(obj, {})
  if not spec then raise(table_concat(problems, "\n")) end
  local fp = check_features(spec)
  if fp then raise(fp) end
  local desc, cproblems = compiler.compile(spec, nil)
  if not desc then raise(table_concat(cproblems, "\n")) end
  return _M.new(spec)
end

return _M
