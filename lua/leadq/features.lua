-- leadq.features: event features declared as Lua tables, computed by the C core.
--
--   local fs = leadq.features({
--     pricing_views_30d = { count = "page_view", page = { starts_with = "/pricing" }, within_days = 30 },
--     email_points      = { count = { "email_open", "email_click" }, points = 2, cap = 20, cap_per_day = 6 },
--     webinar_heat      = { decayed = "webinar_attended", half_life_days = 14 },
--     days_since_visit  = { days_since_last = "page_view" },
--   }, { lateness_seconds = 3600, noise = { min_page_seconds = 5, scanner_click_seconds = 10,
--                                           leads = { is_internal = true } } })
--   local tbl, report = fs:compute(leads, events, { as_of = "2026-06-30" })  -- bulk, one pass in C
--   local st = fs:state(lead_record); st:observe{ type = "page_view", at = t, value = 42, page = "/pricing" }
--   st:observe("page_view", t, 42, { page = "/pricing" })  -- the same event, no event table needed
--   st:values(as_of [, into]) -- the same numbers as the bulk row of that lead (into: a table filled
--                             -- again, absent values set to nil); st:encode() / fs:decode(s)
--   st:decode(s [, init]) -- true | nil, message: st becomes the state s encodes from byte init on
--                         -- (reuse one state per worker); st:encode(prefix) gives prefix .. encoding
--   st:latest() -- the time of the latest event observed (nil before the first)
--   An encoding ends with a check of its bytes: a damaged one is refused (earlier ones still read).
--
-- Windows are whole UTC days: `within_days = n` counts the events of the n days ending on the
-- as-of day (that day included), never events after as_of.
local _M = { _VERSION = "0.1.0" }

local core = require("leadq.core")

local type, pairs, ipairs, tostring, error, setmetatable, getmetatable = type, pairs, ipairs, tostring, error,
  setmetatable, getmetatable
local string_format, string_byte, string_lower = string.format, string.byte, string.lower
local table_concat, table_sort = table.concat, table.sort
local math_floor, math_huge = math.floor, math.huge

-- ---- messages ----

local util = require("leadq.util")
local suggest = util.did_you_mean   -- " (did you mean 'x'?)" or ""
local raise = util.raise            -- errors in the caller's terms: no level to pass on

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table_sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- A value as a message shows it: a string quoted, a number or boolean as written, else its type.
local function describe(v)
  if type(v) == "string" then return string_format("%q", v) end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return type(v)
end

-- Every problem raises one sentence naming where it is: "feature 'x': ..." (plus file:line when known).
local function raiser(where)
  return function(fmt, ...)
    raise(where .. ": " .. string_format(fmt, ...))
  end
end

-- ---- declarations ----

local MEASURES = { "count", "sum", "active_days", "sessions", "decayed", "first", "last", "days_since_last" }
local MEASURE_SET = {}
for _, m in ipairs(MEASURES) do MEASURE_SET[m] = true end
local FILTER_KEYS = { page = true, asset = true, campaign = true }

-- Which keys each measure takes, besides its own, the attribute filters and label/description.
local ALLOWED = {
  count = { within_days = true, points = true, cap = true, cap_per_day = true },
  sum = { within_days = true },
  active_days = { within_days = true },
  sessions = { within_days = true, gap_minutes = true },
  decayed = { half_life_days = true, of = true },
  first = {}, last = {}, days_since_last = {},
}
local ALL_KEYS = { "label", "description", "where", "page", "asset", "campaign" }
for _, m in ipairs(MEASURES) do
  ALL_KEYS[#ALL_KEYS + 1] = m
  for k in pairs(ALLOWED[m]) do ALL_KEYS[#ALL_KEYS + 1] = k end
end
table_sort(ALL_KEYS)
do  -- unique
  local u, seen = {}, {}
  for _, k in ipairs(ALL_KEYS) do if not seen[k] then seen[k] = true; u[#u + 1] = k end end
  ALL_KEYS = u
end

local TEST_KEYS = { "equals", "one_of", "starts_with", "contains", "ends_with" }
local TEST_OP = { equals = "equals", one_of = "equals", starts_with = "starts_with", contains = "contains",
  ends_with = "ends_with" }

local function string_list(v, what, fail)
  if type(v) == "string" then
    if v == "" then fail("%s must not be empty", what) end
    return { v }
  end
  if type(v) ~= "table" then fail("%s must be a string or a list of strings, got %s", what, describe(v)) end
  local out = {}
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > #v or k ~= math_floor(k) then
      fail("%s must be a list of strings, got a key %s", what, describe(k))
    end
  end
  for i = 1, #v do
    if type(v[i]) ~= "string" or v[i] == "" then fail("%s must be a list of strings, got %s", what, describe(v[i])) end
    out[i] = v[i]
  end
  if #out == 0 then fail("%s must not be an empty list", what) end
  return out
end

-- A text test: "x", { "x", "y" }, { starts_with = "/pricing" }, { one_of = {...}, contains = "x" }; for lead
-- flags also `true`. Returns clauses { { op =, needles = { lowercased } } }, all of which must hold.
local function parse_test(test, what, fail, allow_true)
  if test == true and allow_true then return { { op = "true", needles = {} } } end
  if type(test) == "string" or (type(test) == "table" and test[1] ~= nil) then
    local list = string_list(test, what, fail)
    for i = 1, #list do list[i] = string_lower(list[i]) end
    return { { op = "equals", needles = list } }
  end
  if type(test) ~= "table" then
    fail("%s must be a string, a list of strings or a table of tests (%s), got %s", what,
      table_concat(TEST_KEYS, ", "), describe(test))
  end
  local clauses = {}
  for _, k in ipairs(sorted_keys(test)) do
    if type(k) ~= "string" or not TEST_OP[k] then
      fail("%s: unknown test '%s'%s", what, tostring(k), suggest(tostring(k), TEST_KEYS))
    end
    local list = string_list(test[k], what .. " " .. k, fail)
    for i = 1, #list do list[i] = string_lower(list[i]) end
    clauses[#clauses + 1] = { op = TEST_OP[k], needles = list }
  end
  if #clauses == 0 then fail("%s: empty test", what) end
  return clauses
end

local function positive(v, key, fail, integer)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math_huge then
    fail("%s must be a positive number, got %s", key, describe(v))
  end
  if integer and v ~= math_floor(v) then fail("%s must be a whole number of days, got %s", key, tostring(v)) end
  return v
end

-- validate(name, spec [, where]) -> the normalized feature; raises naming the feature.
-- spec may be a plain table or what the rule DSL's `feature {...}` made ({ spec =, line =, source = }).
function _M.validate(name, spec, where)
  local prefix = ""
  if type(spec) == "table" and type(spec.spec) == "table" and (spec.line or spec.kind == "feature") then
    if spec.source and spec.line then prefix = string_format("%s:%d: ", tostring(spec.source), spec.line)
    elseif spec.line then prefix = string_format("line %d: ", spec.line) end
    spec = spec.spec
  end
  local fail = raiser(prefix .. (where or "") .. "feature '" .. tostring(name) .. "'")
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    fail("feature names must be words (letters, digits, _), got %s", describe(name))
  end
  if type(spec) ~= "table" then
    fail("write feature { count = \"type\", within_days = 30 }, got %s", describe(spec))
  end
  local measure
  for _, k in ipairs(sorted_keys(spec)) do
    if MEASURE_SET[k] then
      if measure then fail("'%s' and '%s' both given: a feature measures one thing", measure, k) end
      measure = k
    end
  end
  if not measure then
    fail("say what to measure: one of %s", table_concat(MEASURES, ", "))
  end
  for _, k in ipairs(sorted_keys(spec)) do
    if type(k) ~= "string" then fail("unknown key %s", describe(k)) end
    if not (k == measure or ALLOWED[measure][k] or FILTER_KEYS[k] or k == "where" or k == "label"
        or k == "description") then
      local known = false
      for _, kk in ipairs(ALL_KEYS) do if kk == k then known = true end end
      if known then
        fail("'%s' does not apply to '%s'", k, measure)
      end
      fail("unknown key '%s'%s", k, suggest(k, ALL_KEYS))
    end
  end
  local f = { name = name, kind = measure, window_days = 0, filters = {} }
  local types = string_list(spec[measure], measure, fail)
  f.types = types
  for _, k in ipairs({ "label", "description" }) do
    if spec[k] ~= nil and type(spec[k]) ~= "string" then fail("%s must be a string, got %s", k, describe(spec[k])) end
  end
  f.label = spec.label
  if spec.within_days ~= nil then
    f.window_days = positive(spec.within_days, "within_days", fail, true)
    if f.window_days > 3660 then fail("within_days must be at most 3660, got %s", tostring(f.window_days)) end
  end
  if measure == "count" then
    if spec.points ~= nil then
      if type(spec.points) ~= "number" or spec.points ~= spec.points or spec.points == 0 then
        fail("points must be a non-zero number, got %s", describe(spec.points))
      end
      f.kind = "points"
      f.points = spec.points
      if spec.cap ~= nil then f.cap = positive(spec.cap, "cap", fail) end
      if spec.cap_per_day ~= nil then f.cap_per_day = positive(spec.cap_per_day, "cap_per_day", fail) end
    elseif spec.cap ~= nil or spec.cap_per_day ~= nil then
      fail("'%s' needs 'points' (points per event, then capped)", spec.cap ~= nil and "cap" or "cap_per_day")
    end
  elseif measure == "decayed" then
    if spec.half_life_days == nil then fail("a decayed sum needs 'half_life_days'") end
    f.half_life = positive(spec.half_life_days, "half_life_days", fail) * 86400
    if spec.of ~= nil and spec.of ~= "value" and spec.of ~= "events" then
      fail("of must be \"value\" (decay the events' values) or \"events\" (decay 1 per event), got %s",
        describe(spec.of))
    end
    f.of_value = spec.of == "value"
  elseif measure == "sessions" then
    f.session_gap = (spec.gap_minutes ~= nil and positive(spec.gap_minutes, "gap_minutes", fail) or 30) * 60
  end
  -- attribute filters: page / asset / campaign, or any events column through `where`
  local tests = {}
  for k in pairs(FILTER_KEYS) do
    if spec[k] ~= nil then tests[k] = spec[k] end
  end
  if spec.where ~= nil then
    if type(spec.where) ~= "table" then
      fail("where must be a table { column = test }, got %s", describe(spec.where))
    end
    for k, v in pairs(spec.where) do
      if type(k) ~= "string" then fail("where: column names must be strings, got %s", describe(k)) end
      if tests[k] ~= nil then fail("'%s' given twice (directly and in where)", k) end
      tests[k] = v
    end
  end
  for _, attr in ipairs(sorted_keys(tests)) do
    f.filters[#f.filters + 1] = { attr = attr, clauses = parse_test(tests[attr], attr, fail) }
  end
  return f
end

-- ---- the set ----

local NOISE_KEYS = { "min_page_seconds", "page_types", "scanner_click_seconds", "click_types", "send_types", "leads" }
local OPTION_KEYS = { "lateness_seconds", "noise" }

local function check_keys(t, known, fail, what)
  for _, k in ipairs(sorted_keys(t)) do
    local ok = false
    for _, kk in ipairs(known) do if kk == k then ok = true end end
    if not ok then fail("%sunknown key '%s'%s", what, tostring(k), suggest(tostring(k), known)) end
  end
end

-- A stable text of the normalized declarations, hashed into the fingerprint of encoded states.
local function canonical(v, out)
  local tv = type(v)
  if tv == "table" then
    out[#out + 1] = "{"
    for _, k in ipairs(sorted_keys(v)) do
      out[#out + 1] = tostring(k) .. "="
      canonical(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif tv == "number" then
    out[#out + 1] = string_format("%.17g", v)
  else
    out[#out + 1] = tostring(v)
  end
  return out
end

local function hash32(s)
  local h = 2166136261
  for i = 1, #s do
    h = (h * 31 + string_byte(s, i)) % 4294967296   -- exact in doubles: every Lua agrees
  end
  return h
end

local function filter_key(f)
  return table_concat(canonical(f, {}))
end

local FeatureSet = {}
FeatureSet.__index = FeatureSet

local function check_set(self, method)
  if getmetatable(self) ~= FeatureSet then
    raise(string_format("bad self to '%s' (a feature set expected, got %s); use fs:%s(...)", method,
      type(self), method))
  end
end

-- new(specs [, options]) -> FeatureSet. specs: { name = { ... } or feature {...}, ... }.
function _M.new(specs, options)
  local fail = raiser("leadq.features")
  if type(specs) ~= "table" then fail("expects a table of features { name = { count = ... } }, got %s", type(specs)) end
  options = options or {}
  if type(options) ~= "table" then fail("options must be a table, got %s", type(options)) end
  check_keys(options, OPTION_KEYS, fail, "options: ")
  local desc = { features = {}, filters = {}, lead_filters = {}, send_types = {}, click_types = {}, page_types = {} }
  if options.lateness_seconds ~= nil then
    if type(options.lateness_seconds) ~= "number" or options.lateness_seconds < 0
        or options.lateness_seconds ~= options.lateness_seconds or options.lateness_seconds == math_huge then
      fail("lateness_seconds must be a number >= 0, got %s", describe(options.lateness_seconds))
    end
    desc.lateness = options.lateness_seconds
  end
  local noise = options.noise
  if noise ~= nil then
    if type(noise) ~= "table" then fail("noise must be a table, got %s", type(noise)) end
    check_keys(noise, NOISE_KEYS, fail, "noise: ")
    local nfail = raiser("leadq.features: noise")
    if noise.min_page_seconds ~= nil then
      desc.min_page_seconds = positive(noise.min_page_seconds, "min_page_seconds", nfail)
      desc.page_types = string_list(noise.page_types or "page_view", "page_types", nfail)
    elseif noise.page_types ~= nil then
      nfail("page_types needs min_page_seconds")
    end
    if noise.scanner_click_seconds ~= nil then
      local s = noise.scanner_click_seconds
      if type(s) ~= "number" or s < 0 or s ~= s then
        nfail("scanner_click_seconds must be a number >= 0, got %s", describe(s))
      end
      desc.scanner_seconds = s
      desc.click_types = string_list(noise.click_types or "email_click", "click_types", nfail)
      desc.send_types = string_list(noise.send_types or { "email_send", "email_open" }, "send_types", nfail)
    elseif noise.click_types ~= nil or noise.send_types ~= nil then
      nfail("click_types and send_types need scanner_click_seconds")
    end
    if noise.leads ~= nil then
      if type(noise.leads) ~= "table" then
        nfail("leads must be a table { column = test }, got %s", type(noise.leads))
      end
      for _, col in ipairs(sorted_keys(noise.leads)) do
        if type(col) ~= "string" then nfail("leads: column names must be strings, got %s", describe(col)) end
        desc.lead_filters[#desc.lead_filters + 1] = { attr = col,
          clauses = parse_test(noise.leads[col], "leads " .. col, nfail, true) }
      end
    end
  end
  local names = sorted_keys(specs)
  local filter_index = {}
  for _, name in ipairs(names) do
    local f = _M.validate(name, specs[name], nil)
    local idx = {}
    for _, flt in ipairs(f.filters) do
      local key = filter_key(flt)
      if not filter_index[key] then
        desc.filters[#desc.filters + 1] = flt
        filter_index[key] = #desc.filters
        if #desc.filters > 32 then fail("more than 32 different attribute filters in one feature set") end
      end
      idx[#idx + 1] = filter_index[key]
    end
    f.filters = idx
    desc.features[#desc.features + 1] = f
  end
  -- labels are words for people: changing one must not orphan the states stored under the set
  local labels = {}
  for _, f in ipairs(desc.features) do labels[f.name], f.label = f.label, nil end
  desc.fingerprint = hash32(table_concat(canonical(desc, {})))
  for _, f in ipairs(desc.features) do f.label = labels[f.name] end
  local ud = core.feature_set(desc)
  local self = setmetatable({ _core = ud, _names = names, _desc = desc, lateness = desc.lateness or 0 }, FeatureSet)
  return self
end

local function parse_as_of(v, fail)
  if v == nil then return os.time() end
  if type(v) == "number" then
    if v ~= v then fail("as_of is NaN") end
    return v
  end
  if type(v) == "string" then
    local t, err = core.parse_time(v)
    if not t then fail("as_of: %s", err) end
    return t
  end
  fail("as_of must be epoch seconds or an ISO date string, got %s", type(v))
end

-- An events CSV by its path: streamed through the pass when the stream takes the file (the file is
-- never held: only the events the features count, folded lead by lead as they are read), else read
-- as a table of the columns the features read, whose rejects the report then lists. The same values
-- and report either way; report.streamed says which, report.read_as_table why not streamed.
local function compute_file(self, leads, path, as_of, id, max_unknown, threads)
  local tbl, report = self._core:_compute_file(leads, path, as_of, id, max_unknown, threads)
  if tbl ~= false then
    if tbl then report.streamed = true end
    return tbl, report
  end
  local why = report
  -- the attributes the filters test as text, as the stream reads them (a column of numbers included);
  -- the reader raises on a file it cannot read as events (no at column...): here that is the answer
  local schema = {}
  for _, flt in ipairs(self._desc.filters) do schema[flt.attr] = "category" end
  local ok, events, err = pcall(core.read_events, path, { columns = self:event_columns(), columns_optional = true,
    threads = threads, schema = schema })
  if not ok then return nil, (tostring(events):gsub("^[^\n]-:%d+: ", "")) end
  if not events then return nil, err end
  tbl, report = self._core:_compute(leads, events, as_of, id, max_unknown, threads)
  if tbl then
    report.read_as_table = why
    report.rejects = events:rejects()
  end
  events:close()
  return tbl, report
end

-- fs:compute(leads, events [, { as_of =, id = "id", max_unknown = 1000, threads = 1, into = }])
--   -> table, report | nil, message
-- events: a table (leadq.read_events), or the path of an events CSV (see compute_file).
-- threads: how many threads read and fold (the same values and report for any number).
-- into: an earlier result of this set for as many leads, filled again in place and given back (events
-- as a table only): repeated passes then take no new memory for their result.
-- report.seconds: how long the pass took (wall time). report.join (events as a table): "merge" when the
-- events' lead ids and the leads' ids both came sorted (exports usually do: no hashing), else "hash".
function FeatureSet:compute(leads, events, opts)
  check_set(self, "compute")
  local fail = raiser("compute")
  if not core.is_table(leads) then fail("leads must be a leadq table, got %s", type(leads)) end
  if not core.is_table(events) and type(events) ~= "string" then
    fail("events must be a leadq table (leadq.read_events) or the path of an events CSV, got %s", type(events))
  end
  opts = opts or {}
  if type(opts) ~= "table" then fail("options must be a table, got %s", type(opts)) end
  check_keys(opts, { "as_of", "id", "max_unknown", "threads", "into" }, fail, "options: ")
  local as_of = parse_as_of(opts.as_of, raiser("compute"))
  if opts.id ~= nil and type(opts.id) ~= "string" then fail("id must be a column name, got %s", type(opts.id)) end
  if opts.max_unknown ~= nil and type(opts.max_unknown) ~= "number" then
    fail("max_unknown must be a number, got %s", type(opts.max_unknown))
  end
  local threads = opts.threads
  if threads ~= nil and (type(threads) ~= "number" or threads < 1 or threads ~= math_floor(threads)) then
    fail("threads must be a whole number of at least 1, got %s", tostring(threads))
  end
  local into = opts.into
  if into ~= nil then
    if not core.is_table(into) or into == leads or into == events then
      fail("into must be an earlier result of this feature set, got %s",
        (into == leads and "the leads table") or (into == events and "the events table") or type(into))
    end
    if type(events) == "string" then fail("into takes events as a table, not the path of a file") end
  end
  local started = core.now()
  local tbl, report
  if type(events) == "string" then
    tbl, report = compute_file(self, leads, events, as_of, opts.id or "id", opts.max_unknown or 1000, threads or 1)
  else
    tbl, report = self._core:_compute(leads, events, as_of, opts.id or "id", opts.max_unknown or 1000, threads or 1,
      into)
  end
  if not tbl then return nil, report end
  report.as_of = as_of
  report.seconds = core.now() - started   -- wall time: with threads, CPU time would add them up
  return tbl, report
end

-- fs:event_columns() -> the events columns the features read: lead_id, type, at, value (when a sum,
-- a decayed sum of values or min_page_seconds reads it) and each attribute a filter tests (sorted).
-- A reader may keep only these (read_events' columns option).
function FeatureSet:event_columns()
  check_set(self, "event_columns")
  local seen, out = {}, {}
  local reads_value = (self._desc.min_page_seconds or 0) > 0
  for _, f in ipairs(self._desc.features) do
    if f.kind == "sum" or (f.kind == "decayed" and f.of_value) then reads_value = true end
  end
  for _, c in ipairs({ "lead_id", "type", "at", reads_value and "value" or nil }) do
    seen[c] = true
    out[#out + 1] = c
  end
  local attrs = {}
  for _, flt in ipairs(self._desc.filters) do
    if not seen[flt.attr] then seen[flt.attr] = true; attrs[#attrs + 1] = flt.attr end
  end
  table.sort(attrs)
  for _, c in ipairs(attrs) do out[#out + 1] = c end
  return out
end

-- fs:lead_columns() -> the leads columns the set's noise rules test (noise = { leads = ... }), sorted.
function FeatureSet:lead_columns()
  check_set(self, "lead_columns")
  local out = {}
  for _, flt in ipairs(self._desc.lead_filters) do out[#out + 1] = flt.attr end
  table.sort(out)
  return out
end

-- fs:state([lead]) -> a real-time engagement state; the lead record decides the noise flag.
function FeatureSet:state(lead)
  check_set(self, "state")
  if lead ~= nil and type(lead) ~= "table" then
    error("state: lead must be a record (table) or nil, got " .. type(lead), 2)
  end
  return self._core:state(lead)
end

-- fs:decode(s) -> state | nil, message
function FeatureSet:decode(s)
  check_set(self, "decode")
  if type(s) ~= "string" then error("decode: expects the string of state:encode(), got " .. type(s), 2) end
  return self._core:decode(s)
end

-- fs:evaluate(lead, events [, as_of]) -> { feature = value } | nil, message: one lead's values from a list
-- of event records in any order (times as epoch seconds or ISO strings), the same as its bulk row.
-- Events after as_of are left out, as in bulk; the events are sorted first, so no lateness applies.
function FeatureSet:evaluate(lead, events, as_of)
  check_set(self, "evaluate")
  local fail = raiser("evaluate")
  if lead ~= nil and type(lead) ~= "table" then fail("lead must be a record (table) or nil, got %s", type(lead)) end
  if type(events) ~= "table" then fail("events must be a list of event records, got %s", type(events)) end
  as_of = parse_as_of(as_of, raiser("evaluate"))
  local list = {}
  for i = 1, #events do
    local e = events[i]
    if type(e) ~= "table" then fail("event %d must be a table, got %s", i, type(e)) end
    local at = e.at
    if type(at) == "string" then
      local t, err = core.parse_time(at)
      if not t then return nil, string_format("event %d: %s", i, err) end
      local copy = {}
      for k, v in pairs(e) do copy[k] = v end
      copy.at = t
      e, at = copy, t
    elseif type(at) ~= "number" then
      fail("event %d: 'at' must be a number or an ISO date string, got %s", i, type(at))
    end
    if at <= as_of then list[#list + 1] = { e = e, at = at, i = i } end
  end
  table_sort(list, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return a.i < b.i
  end)
  local st = self._core:state(lead)
  for k = 1, #list do
    local ok, err = st:observe(list[k].e)
    if not ok then
      st:close()
      return nil, err
    end
  end
  local values, err = st:values(as_of)
  st:close()
  return values, err
end

function FeatureSet:names()
  check_set(self, "names")
  local out = {}
  for i, n in ipairs(self._names) do out[i] = n end
  return out
end

-- Each feature's normalized declaration, by name.
function FeatureSet:info()
  check_set(self, "info")
  local out = {}
  for _, f in ipairs(self._desc.features) do
    out[f.name] = { kind = f.kind, types = f.types, window_days = f.window_days ~= 0 and f.window_days or nil,
      label = f.label }
  end
  return out
end

function FeatureSet:close()
  check_set(self, "close")
  self._core:close()
end

FeatureSet.__close = FeatureSet.close
FeatureSet.__tostring = function(self)
  return string_format("leadq.FeatureSet: %d feature%s (%s)", #self._names, #self._names == 1 and "" or "s",
    table_concat(self._names, ", "))
end

_M.FeatureSet = FeatureSet

function _M.decode_state(fs, s)
  if getmetatable(fs) ~= FeatureSet then error("decode_state: expects a feature set first, got " .. type(fs), 2) end
  return fs:decode(s)
end

return _M
