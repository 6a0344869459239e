-- leadq.dsl: the rule-script language. Constructors (model, rule, disqualify, list, file, feature),
-- the sandbox scripts run in, and the strict validation that turns what a script built into a
-- normalized model spec, every problem a plain sentence with file, line and rule id.
local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, next, select, tostring, tonumber = type, pairs, ipairs, next, select, tostring, tonumber
local error, pcall, setmetatable, getmetatable, rawget = error, pcall, setmetatable, getmetatable, rawget
local string_format, string_find = string.format, string.find
local table_sort, math_huge, math_floor = table.sort, math.huge, math.floor
local debug_getinfo = debug.getinfo
local load, loadstring, setfenv = load, rawget(_G, "loadstring"), rawget(_G, "setfenv")
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- Objects made by the constructors, by kind. Weak keys: they go away with the scripts' tables,
-- and a script cannot forge one (it never sees this table).
local made = setmetatable({}, { __mode = "k" })

local function where_called(level)
  local info = debug_getinfo(level + 1, "Sl")
  if info == nil then return "?", 0 end
  local src = info.source or "?"
  if src:sub(1, 1) == "@" or src:sub(1, 1) == "=" then src = src:sub(2) end
  return src, info.currentline or 0
end

---------------------------------------------------------------------------------------------------
-- Suggestions: "did you mean"
---------------------------------------------------------------------------------------------------

-- "Did you mean" lives in leadq.util; the rule language's callers reach it here too.
local util = require("leadq.util")
local did_you_mean = util.did_you_mean
_M.SUGGEST_MAX, _M.distance, _M.suggest, _M.did_you_mean = util.SUGGEST_MAX, util.distance, util.suggest,
  did_you_mean

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table_sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  return keys
end
_M.sorted_keys = sorted_keys

local function describe_value(v)
  if type(v) == "string" then return string_format("'%s'", v) end
  return tostring(v)
end

local function type_name(v)
  local k = made[v]
  if type(v) == "table" and k then return k end
  return type(v)
end

---------------------------------------------------------------------------------------------------
-- Constructors. They only record what they were given and where; validation comes later, so a
-- script with many mistakes still runs to the end and `check` can report them all.
---------------------------------------------------------------------------------------------------

local function named(kind, level)
  return function(id, extra)
    local src, line = where_called(level or 2)
    if extra ~= nil then
      local obj = { kind = kind, line = line, source = src, bad_call = true }
      made[obj] = kind
      return obj
    end
    if type(id) == "table" and made[id] == nil then
      -- `rule { ... }` without an id: record it so the validator can say so.
      local obj = { kind = kind, line = line, source = src, body = id, missing_id = true }
      made[obj] = kind
      return obj
    end
    return function(body, more)
      local obj = { kind = kind, id = id, body = body, line = line, source = src, bad_call = more ~= nil }
      made[obj] = kind
      return obj
    end
  end
end

_M.model = named("model")
_M.rule = named("rule")
_M.disqualify = named("disqualifier")

-- list "name", file "path", feature { ... }: a marked value that remembers where it was written.
local function marker(kind, key)
  return function(value)
    local src, line = where_called(2)
    local obj = { kind = kind, [key] = value, line = line, source = src }
    made[obj] = kind
    return obj
  end
end

_M.list = marker("list", "name")
_M.file = marker("file", "path")
_M.feature = marker("feature", "spec")

function _M.kind_of(v)
  return made[v]
end

---------------------------------------------------------------------------------------------------
-- Bounds: a script's load and each call of its functions run only so many Lua instructions, and
-- the load grows the heap only so much. An endless loop in a rule must not hang `leadq check`, an
-- nginx reload (the master would wedge) or a worker scoring a lead.
---------------------------------------------------------------------------------------------------

local debug_sethook, debug_gethook = debug.sethook, debug.gethook
local collectgarbage = collectgarbage
local jit = rawget(_G, "jit")

_M.LIMITS = {
  load_instructions = 2e7,     -- a rule script's run when it loads (well under a second)
  load_memory_kb = 128 * 1024, -- heap growth while it loads
  call_instructions = 1e6,     -- one call of a rule's function, for one lead
  rep_bytes = 16 * 1024 * 1024,-- string.rep in a script: one allocation no hook can interrupt
  pattern_text = 1024,         -- bytes of a text a `matches` pattern sees (the service's value bound)
}

-- A limit's error: a script's own pcall hands it on (see the sandbox's pcall).
local LIMIT_MT = { __tostring = function(e) return e.message end }

local THIS_FILE = debug_getinfo(1, "S").source

-- Raised from a hook: names the file and line the script was running (its nearest Lua frame that
-- is not this file's, such as the sandbox's pcall).
local function over_limit(what, as_string)
  local src, line = "?", 0
  for level = 3, 40 do
    local info = debug_getinfo(level, "Sl")
    if info == nil then break end
    if info.what ~= "C" and info.source ~= THIS_FILE then
      src, line = info.source or "?", info.currentline or 0
      break
    end
  end
  if src:sub(1, 1) == "@" or src:sub(1, 1) == "=" then src = src:sub(2) end
  local message = string_format("%s:%d: %s", src, line, what)
  if as_string then error(message, 0) end   -- for the scorer, which reports strings
  error(setmetatable({ message = message }, LIMIT_MT), 0)
end

local function is_limit(e) return getmetatable(e) == LIMIT_MT end

-- the rule-function call being bounded (see call_guard); call_stopping: it is being stopped
local call_active, call_number, call_seen, call_stopping = false, 0, -1, false

local function restore_hook(fn, mask, count)
  -- a host's hook set from C reads back as the string "external hook", which cannot be set again
  if type(fn) == "function" then debug_sethook(fn, mask, count) else debug_sethook() end
end

-- fn() under the load limits: true, result or false, error (a limit's error is a string).
local function run_bounded(fn, limits)
  local every = 16  -- few instructions between heap checks: a doubling string outgrows them fast
  local budget, memory = limits.load_instructions, limits.load_memory_kb
  local spent, base = 0, collectgarbage("count")
  call_stopping = false   -- left set by a rule function stopped while scoring, it is no script's
  local function hook()
    local why
    spent = spent + every
    if spent > budget then
      why = string_format("it ran past its limit of %.0f Lua instructions while loading (an endless loop?)", budget)
    elseif collectgarbage("count") - base > memory then
      collectgarbage("collect")
      if collectgarbage("count") - base > memory then
        why = string_format("it grew the heap past its limit of %s while loading",
          memory >= 1024 and string_format("%g MB", memory / 1024) or string_format("%g kB", memory))
      end
    end
    -- raised in this file's code (the pcall around the script and what follows it), the error would
    -- escape that pcall and leave the hook set: the garbage of a script over the heap limit is
    -- still there when its pcall returns
    if why and debug_getinfo(2, "S").source ~= THIS_FILE then over_limit(why) end
  end
  if jit then jit.off(fn, true) end  -- compiled code calls no hooks; rule functions stay interpreted too
  local hook_fn, hook_mask, hook_count = debug_gethook()
  debug_sethook(hook, "", every)
  local ok, result = pcall(fn)
  restore_hook(hook_fn, hook_mask, hook_count)
  if not ok and is_limit(result) then result = result.message end
  return ok, result
end

-- Each call of a rule's function is bounded by one count hook that stays set, not by a hook set
-- and cleared around every call (that cost twice the call itself: 0.3 -> 0.7 us a lead). A call
-- marks itself (active, a call number); the hook, firing every call_instructions, stops a call
-- that was already running at its previous firing, so a call runs one to two times that budget.
-- A host's own hook is never replaced: with one set, each call sets and restores ours around it.
local call_budget = nil   -- the count the hook was set with
local wrappers = setmetatable({}, { __mode = "k" })

local function in_rule_function()
  for level = 3, 60 do
    local info = debug_getinfo(level, "f")
    if info == nil then return false end
    if wrappers[info.func] then return true end
  end
  return false
end

local function call_guard()
  if not call_active then return end
  if call_number ~= call_seen then   -- another call since the last firing: this one may run on
    call_seen = call_number
    return
  end
  -- not in this file's code, where the error would escape the scorer's protection of the call
  if debug_getinfo(2, "S").source == THIS_FILE then return end
  if not in_rule_function() then   -- a call that raised left its mark: no call is running
    call_active = false
    return
  end
  call_stopping = true   -- the function's own pcall hands this on (see the sandbox's pcall)
  over_limit(string_format("the function ran past its limit of %.0f Lua instructions for one lead " ..
    "(an endless loop?)", call_budget), true)
end

local function finish_call(...)
  call_active, call_stopping = false, false
  return ...
end

local function pack(...) return { n = select("#", ...), ... } end

-- With a host's hook set: ours around the call, theirs set back after.
local function call_under_host_hook(fn, ...)
  local hook_fn, hook_mask, hook_count = debug_gethook()
  local budget = _M.LIMITS.call_instructions
  debug_sethook(call_guard, "", budget)
  call_budget, call_active, call_stopping, call_number = budget, true, false, call_number + 1
  local results = pack(pcall(fn, ...))
  call_active, call_stopping = false, false
  restore_hook(hook_fn, hook_mask, hook_count)
  call_budget = nil
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, results.n)
end
wrappers[call_under_host_hook] = true   -- the wrapper's tail call leaves this frame, not its own

-- A rule's function, bounded per call; the scorer names the rule and the lead around its errors.
local function bounded_function(fn)
  -- compiled code calls no hooks: a model made from tables (no script load) keeps it interpreted too
  if jit then pcall(jit.off, fn, true) end
  local wrapper = function(...)
    local hook = debug_gethook()
    if hook ~= call_guard or call_budget ~= _M.LIMITS.call_instructions then
      if hook ~= nil and hook ~= call_guard then return call_under_host_hook(fn, ...) end
      call_budget = _M.LIMITS.call_instructions
      debug_sethook(call_guard, "", call_budget)
    end
    call_active, call_stopping, call_number = true, false, call_number + 1
    return finish_call(fn(...))
  end
  wrappers[wrapper] = true
  return wrapper
end
_M.bounded_function = bounded_function

-- Points a rule may give or take: sums of them stay finite and exact (a total once overflowed to
-- infinity, was stored, and every answer for that lead was a 500).
_M.POINTS_MAX = 1e9

local function checked_points(v, ...)
  if type(v) == "number" and (v > _M.POINTS_MAX or v < -_M.POINTS_MAX) and v == v then
    error(string_format("the points function returned %.10g, outside -%.0f to %.0f", v, _M.POINTS_MAX,
      _M.POINTS_MAX), 0)
  end
  return v, ...
end

-- A points function: bounded as any rule function, and its points within POINTS_MAX (NaN and other
-- values that are no number are the scorer's to refuse).
local function bounded_points(fn)
  local bounded = bounded_function(fn)
  return function(...) return checked_points(bounded(...)) end
end

-- The sandbox's pcall: a limit's error goes on up, or `while true do pcall(f) end` would outlast it.
local function pass_limit(ok, ...)
  if not ok and (call_stopping or is_limit((...))) then error((...), 0) end
  return ok, ...
end
local function sandbox_pcall(f, ...)
  return pass_limit(pcall(f, ...))
end

---------------------------------------------------------------------------------------------------
-- The sandbox
---------------------------------------------------------------------------------------------------

local function copy_library(lib, without)
  local c = {}
  for k, v in pairs(lib) do
    if not (without and without[k]) then c[k] = v end
  end
  return c
end

local SANDBOX_NAMES = {
  "model", "rule", "disqualify", "list", "file", "feature", "string", "table", "math", "pairs", "ipairs",
  "next", "select", "type", "tostring", "tonumber", "error", "assert", "pcall", "unpack", "require",
}
_M.SANDBOX_NAMES = SANDBOX_NAMES

local NOT_AVAILABLE = {
  os = true, io = true, load = true, loadstring = true, loadfile = true, dofile = true, debug = true,
  setmetatable = true, getmetatable = true, rawset = true, rawget = true, rawequal = true, rawlen = true,
  collectgarbage = true, _G = true, package = true, coroutine = true, xpcall = true, print = true,
  setfenv = true, getfenv = true, module = true, newproxy = true, jit = true, ffi = true, bit = true,
  utf8 = true, _ENV = true,
}

-- A fresh environment per script. `allow` lists the modules `require` may load (none by default).
function _M.environment(allow)
  local allowed = {}
  for _, name in ipairs(allow or {}) do allowed[name] = true end
  local bounded_string = copy_library(string, { dump = true })
  local string_rep = string.rep
  bounded_string.rep = function(text, n, sep)
    local size = (#tostring(text) + #tostring(sep or "")) * (tonumber(n) or 0)
    if size > _M.LIMITS.rep_bytes then
      error(string_format("string.rep would make %.0f bytes, more than the %.0f a rule script may", size,
        _M.LIMITS.rep_bytes), 2)
    end
    return string_rep(text, n, sep)
  end
  local env = {
    model = _M.model, rule = _M.rule, disqualify = _M.disqualify, list = _M.list, file = _M.file,
    feature = _M.feature,
    string = bounded_string,
    table = copy_library(table),
    math = copy_library(math),
    pairs = pairs, ipairs = ipairs, next = next, select = select, type = type, tostring = tostring,
    tonumber = tonumber, error = error, pcall = sandbox_pcall, unpack = unpack,
    assert = function(v, msg, ...)   -- the host's assert, without handing out its identity
      if not v then error(msg or "assertion failed!", 2) end
      return v, msg, ...
    end,
    require = function(name)
      if type(name) == "string" and allowed[name] then return require(name) end
      error(string_format("module '%s' is not on the allow-list of rule scripts", tostring(name)), 2)
    end,
  }
  env.table.unpack = env.table.unpack or unpack
  setmetatable(env, {
    __index = function(_, k)
      if NOT_AVAILABLE[k] then
        error(string_format("'%s' is not available in rule scripts", tostring(k)), 2)
      end
      error(string_format("unknown name '%s'%s", tostring(k), did_you_mean(k, SANDBOX_NAMES)), 2)
    end,
    __metatable = false,
  })
  return env
end

local read_file = util.read_file

-- Compile script text in the sandbox; text only (bytecode is refused).
local function compile_chunk(text, chunkname, env)
  if text:byte(1) == 27 then return nil, "is a compiled chunk, not a rule script" end
  if setfenv and loadstring then
    local fn, err = loadstring(text, chunkname)
    if not fn then return nil, err end
    setfenv(fn, env)
    return fn
  end
  return load(text, chunkname, "t", env)
end

-- Lua's own messages, as a sentence: "rules/x.lua:3: syntax error: '}' expected near 'rule'".
local function syntax_problem(path, err)
  local line, msg = tostring(err):match("^[^\n]-:(%d+): (.*)$")
  if line then
    return string_format("%s:%s: syntax error: %s", path, line, msg)
  end
  return string_format("%s: syntax error: %s", path, tostring(err))
end

local function runtime_problem(path, err)
  local text = tostring(err)
  local src, line, msg = text:match("^([^\n]-):(%d+): (.*)$")
  if src and (src == path or src:find(path, 1, true) or path:find(src, 1, true)) then
    return string_format("%s:%s: the script failed: %s", path, line, msg)
  end
  return string_format("%s: the script failed: %s", path, text)
end

---------------------------------------------------------------------------------------------------
-- Validation
---------------------------------------------------------------------------------------------------

local MODEL_KEYS = { "description", "label", "version", "lists", "groups", "rules", "disqualifiers", "thresholds",
  "grades", "features", "events", "name", "calibration" }
local RULE_KEYS = { "label", "description", "group", "points", "when" }
local DISQ_KEYS = { "label", "description", "reason", "when" }
local GROUP_KEYS = { "label", "description", "cap", "floor" }
local GRADE_NAMES = { "fit", "engagement" }
local TEST_KEYS = { "equals", "not_equals", "at_least", "at_most", "above", "below", "between", "one_of",
  "not_one_of", "contains", "starts_with", "ends_with", "word", "matches", "within_days", "older_than_days",
  "days_between", "before", "after", "missing", "present" }
local LOGICAL = { all = true, any = true, none = true, ["not"] = true }
local RESERVED_COLUMNS = { total = true, status = true, grade = true, reason = true, disqualified_by = true }
_M.TEST_KEYS = TEST_KEYS

local DAY = 86400

-- Days from 1970-01-01 of a civil date (proleptic Gregorian), without os.time and its time zone.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math_floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math_floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- "2026-01-05", "2026-01-05T10:30:00Z", "2026-01-05 10:30", offsets -> epoch seconds (UTC), or nil.
-- The C core's reader, the one the CSV reader, the features and the service use: a time means one
-- thing everywhere ("2026-02-31" is no date, not 3 March). The Lua reader is left for a VM with no
-- core (the rule language alone).
local has_core, core = pcall(require, "leadq.core")
function _M.parse_time(s)
  if type(s) ~= "string" then return nil end
  if has_core then return (core.parse_time(s)) end
  local y, mo, d, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  local secs = 0
  if rest ~= "" then
    local h, mi, se, tz = rest:match("^[T ](%d%d):(%d%d):?(%d?%d?%.?%d*)(.*)$")
    if not h then return nil end
    h, mi, se = tonumber(h), tonumber(mi), tonumber(se) or 0
    if h > 23 or mi > 59 or se >= 61 then return nil end
    secs = h * 3600 + mi * 60 + se
    if tz ~= "" and tz ~= "Z" then
      local sign, th, tm = tz:match("^([+-])(%d%d):?(%d%d)$")
      if not sign then return nil end
      local off = tonumber(th) * 3600 + tonumber(tm) * 60
      secs = sign == "+" and secs - off or secs + off
    end
  end
  return days_from_civil(y, mo, d) * DAY + secs
end

-- A problem collector for one model: each problem names file, line and what it is about.
local function new_report(path)
  local r = { path = path, problems = {} }
  function r.add(line, context, msg, ...)
    local text = select("#", ...) > 0 and string_format(msg, ...) or msg
    local prefix = string_format("%s:%s: ", r.path, tostring(line or 0))
    if context then prefix = prefix .. context .. ": " end
    r.problems[#r.problems + 1] = prefix .. text
  end
  return r
end

-- Lines of the script, to point at the key itself rather than the rule that holds it.
local function key_line(lines, from, to, key)
  if not lines or type(key) ~= "string" or from == nil then return from end
  local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%f[^%w_]%s*%]?%s*="
  local last = to or (from + 200)
  for i = from, math.min(last, #lines) do
    if string_find(lines[i], pat) then return i end
  end
  return from
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then return false end
  end
  return true
end

local function finite(x)
  return type(x) == "number" and x == x and x ~= math_huge and x ~= -math_huge
end

-- The first mistake in a Lua pattern, or nil. string.find reports a mistake only when the matcher
-- reaches it ("a%" against "" never does, "a%" against "ab" does), so a pattern that passed a
-- trial match could still fail on a lead: here it is read in full, as lstrlib.c reads it.
local MAX_PATTERN = 200
local function pattern_problem(p)
  local n, i, captures = #p, 1, {}  -- captures[k]: the k-th '(' is closed
  local function at(j) return p:sub(j, j) end
  local function class_end(j)  -- the index after the single-character class at j, or nil, why
    local c = at(j)
    j = j + 1
    if c == "%" then
      if j > n then return nil, "it ends with '%'" end
      return j + 1
    elseif c == "[" then
      if at(j) == "^" then j = j + 1 end
      repeat  -- the first character is a member, even ']'
        if j > n then return nil, "a '[' set is not closed with ']'" end
        local ch = at(j)
        j = j + 1
        if ch == "%" and j <= n then j = j + 1 end
      until at(j) == "]"
      return j + 1
    end
    return j
  end
  if at(1) == "^" then i = 2 end
  while i <= n do
    local c, nxt = at(i), at(i + 1)
    local e, why
    if c == "(" then
      if #captures >= 32 then return "it has more than 32 captures" end
      captures[#captures + 1] = nxt == ")"
      e = nxt == ")" and i + 2 or i + 1
    elseif c == ")" then
      local open
      for k = #captures, 1, -1 do if not captures[k] then open = k break end end
      if not open then return "a ')' closes no '('" end
      captures[open] = true
      e = i + 1
    elseif c == "$" and i == n then
      e = i + 1
    elseif c == "%" and nxt == "b" then
      if i + 3 > n then return "'%b' needs two characters after it" end
      e = i + 4
    elseif c == "%" and nxt == "f" then
      if at(i + 2) ~= "[" then return "'%f' must be followed by a '[' set" end
      e, why = class_end(i + 2)
    elseif c == "%" and nxt:find("^%d$") then
      local k = tonumber(nxt)
      if k == 0 or not captures[k] then return string_format("'%%%d' refers to no closed capture", k) end
      e = i + 2
    else
      e, why = class_end(i)
      if e and (at(e) == "?" or at(e) == "+" or at(e) == "*" or at(e) == "-") then e = e + 1 end
    end
    if not e then return why end
    i = e
  end
  for k = 1, #captures do
    if not captures[k] then return "a '(' is not closed with ')'" end
  end
  return nil
end
_M.pattern_problem = pattern_problem

-- Normalize one test on one field into leaves: { t = kind, field = name, ... }.
local function test_leaves(ctx, field, test, out)
  local add = ctx.add
  local function leaf(l)
    l.field = field
    out[#out + 1] = l
    return l
  end
  local tt = type(test)
  if tt == "string" then
    if test == "present" or test == "missing" then
      leaf({ t = "present", negate = test == "missing", test = test })
    else
      leaf({ t = "str", mode = "equals", values = { test }, test = "equals", arg = test })
    end
    return
  elseif tt == "number" then
    if not finite(test) then return add("field '%s': %s is not a usable number", field, tostring(test)) end
    leaf({ t = "num", lo = test, hi = test, test = "equals", arg = test })
    return
  elseif tt == "boolean" then
    leaf({ t = "bool", value = test, test = "equals", arg = test })
    return
  elseif tt == "function" then
    leaf({ t = "fn", fn = bounded_function(test), test = "function" })
    return
  elseif tt ~= "table" or made[test] then
    return add("field '%s': a test must be a string, number, boolean or table, got %s", field, type_name(test))
  end
  if next(test) == nil then return add("field '%s': the test is empty", field) end

  local function strings(key, v, allow_refs)
    if allow_refs and made[v] == "list" then
      local name = v.name
      local l = ctx.lists[name]
      if type(name) ~= "string" then
        add("field '%s': list \"name\" needs a string, got %s", field, type(name))
        return nil
      elseif l == nil then
        add("field '%s': unknown list '%s'%s", field, name, did_you_mean(name, sorted_keys(ctx.lists)))
        return nil
      end
      return l, name
    elseif allow_refs and made[v] == "file" then
      return ctx.read_list_file(v, string_format("field '%s'", field))
    elseif type(v) == "string" then
      if v == "" then add("field '%s': %s needs a non-empty text", field, key) return nil end
      return { v }
    elseif is_array(v) and not made[v] then
      if #v == 0 then add("field '%s': %s needs at least one value", field, key) return nil end
      local vals = {}
      for i, s in ipairs(v) do
        if type(s) == "number" then s = tostring(s) end
        if type(s) ~= "string" then
          add("field '%s': %s value %d must be a text, got %s", field, key, i, type_name(s))
          return nil
        elseif s == "" then
          add("field '%s': %s value %d is an empty text", field, key, i)
          return nil
        end
        vals[#vals + 1] = s
      end
      return vals
    end
    add("field '%s': %s needs a text or a list of texts%s, got %s", field, key,
      allow_refs and " (or list \"name\")" or "", type_name(v))
    return nil
  end

  local function number(key, v)
    if not finite(v) then
      add("field '%s': %s must be a number, got %s", field, key, type(v) == "number" and tostring(v) or type_name(v))
      return nil
    end
    return v
  end

  local function pair(key, v)
    if type(v) ~= "table" or made[v] or not is_array(v) or #v ~= 2 or not finite(v[1]) or not finite(v[2]) then
      add("field '%s': %s needs two numbers { low, high }", field, key)
      return nil
    end
    if v[1] > v[2] then
      add("field '%s': %s has its low end %s above its high end %s", field, key, tostring(v[1]), tostring(v[2]))
      return nil
    end
    return v[1], v[2]
  end

  for _, key in ipairs(sorted_keys(test)) do
    local v = test[key]
    if type(key) ~= "string" then
      add("field '%s': unexpected value %s in the test (tests are keys such as at_least = 10)", field,
        describe_value(v))
    elseif key == "equals" or key == "not_equals" then
      local neg = key == "not_equals"
      if type(v) == "number" and finite(v) then
        leaf({ t = "num", lo = v, hi = v, negate = neg, test = key, arg = v })
      elseif type(v) == "string" then
        leaf({ t = "str", mode = "equals", values = { v }, negate = neg, test = key, arg = v })
      elseif type(v) == "boolean" then
        leaf({ t = "bool", value = (v ~= neg), test = key, arg = v })
      else
        add("field '%s': %s needs a number or a text, got %s", field, key, type_name(v))
      end
    elseif key == "at_least" or key == "at_most" or key == "above" or key == "below" then
      local n = number(key, v)
      if n then
        local l = { t = "num", lo = -math_huge, hi = math_huge, test = key, arg = n }
        if key == "at_least" then l.lo = n
        elseif key == "above" then l.lo, l.lo_open = n, true
        elseif key == "at_most" then l.hi = n
        else l.hi, l.hi_open = n, true end
        leaf(l)
      end
    elseif key == "between" then
      local lo, hi = pair(key, v)
      if lo then leaf({ t = "num", lo = lo, hi = hi, test = key, arg = { lo, hi } }) end
    elseif key == "one_of" or key == "not_one_of" then
      local vals, list_name = strings(key, v, true)
      if vals then
        leaf({ t = "str", mode = "equals", values = vals, negate = key == "not_one_of", test = key, arg = vals,
          list = list_name })
      end
    elseif key == "contains" or key == "starts_with" or key == "ends_with" or key == "word" then
      local vals, list_name = strings(key, v, true)
      local mode = key == "starts_with" and "starts" or key == "ends_with" and "ends" or key
      if vals then leaf({ t = "str", mode = mode, values = vals, test = key, arg = vals, list = list_name }) end
    elseif key == "matches" then
      local vals = strings(key, v, false)
      if vals then
        for _, pat in ipairs(vals) do
          local ok, err = pcall(string_find, "", pat)
          local why = pattern_problem(pat) or (not ok and tostring(err):gsub("^.-:%d+: ", ""))
          if #pat > MAX_PATTERN then why = string_format("it is longer than %d bytes", MAX_PATTERN) end
          if why then
            add("field '%s': matches: bad pattern '%s': %s", field, pat, why)
            vals = nil
            break
          end
        end
        if vals then leaf({ t = "str", mode = "matches", values = vals, test = key, arg = vals }) end
      end
    elseif key == "within_days" or key == "older_than_days" then
      local n = number(key, v)
      if n and n < 0 then add("field '%s': %s must be 0 or more, got %s", field, key, tostring(n)) n = nil end
      if n then
        if key == "within_days" then
          leaf({ t = "time", lo = -n * DAY, hi = 0, test = key, arg = n })
        else
          leaf({ t = "time", lo = -math_huge, hi = -n * DAY, hi_open = true, test = key, arg = n })
        end
      end
    elseif key == "days_between" then
      local a, b = pair(key, v)
      if a then leaf({ t = "time", lo = -b * DAY, hi = -a * DAY, test = key, arg = { a, b } }) end
    elseif key == "before" or key == "after" then
      local at = _M.parse_time(v)
      if at == nil then
        add("field '%s': %s needs a date like \"2026-01-31\", got %s", field, key, describe_value(v))
      elseif key == "before" then
        leaf({ t = "date", lo = -math_huge, hi = at, hi_open = true, test = key, arg = v })
      else
        -- "after 2026-01-31" starts once that day is over (a date with a time: right after it).
        local from = v:match("^%d%d%d%d%-%d%d%-%d%d$") and at + DAY or at
        leaf({ t = "date", lo = from, hi = math_huge, lo_open = from == at, test = key, arg = v })
      end
    elseif key == "missing" or key == "present" then
      if type(v) ~= "boolean" then
        add("field '%s': %s must be true or false, got %s", field, key, type_name(v))
      else
        leaf({ t = "present", negate = (key == "missing") == v, test = v == (key == "present") and "present"
          or "missing" })
      end
    else
      add("field '%s': unknown test '%s'%s", field, key, did_you_mean(key, TEST_KEYS))
    end
  end
end

-- A condition: a field-test table, a logical form, a function. Returns a tree of
--   { op = "all"|"any"|"none"|"not", args = {...} } and leaves.
local function condition(ctx, c, depth)
  local add = ctx.add
  if depth > 50 then add("the condition is nested too deeply") return nil end
  if type(c) == "function" then return { t = "fn", fn = bounded_function(c), test = "function" } end
  if type(c) ~= "table" or made[c] then
    add("a condition must be a table or a function, got %s", type_name(c))
    return nil
  end
  if next(c) == nil then add("the condition is empty") return nil end
  if is_array(c) then
    add("a condition is { field = test, ... } or { all = { ... } }; to require several, write { all = { ... } }")
    return nil
  end
  local parts = {}
  for _, key in ipairs(sorted_keys(c)) do
    local v = c[key]
    if type(key) ~= "string" then
      add("a condition's keys are field names, got %s", describe_value(key))
    elseif LOGICAL[key] then
      if key == "not" then
        local sub = condition(ctx, v, depth + 1)
        if sub then parts[#parts + 1] = { op = "not", args = { sub } } end
      elseif type(v) ~= "table" or made[v] or not is_array(v) or #v == 0 then
        add("'%s' needs a list of conditions { {...}, {...} }, got %s", key, type_name(v))
      else
        local args = {}
        for _, sub in ipairs(v) do
          local s = condition(ctx, sub, depth + 1)
          if s then args[#args + 1] = s end
        end
        if #args == #v then parts[#parts + 1] = { op = key, args = args } end
      end
    else
      local leaves = {}
      test_leaves(ctx, key, v, leaves)
      ctx.fields[key] = ctx.fields[key] or ctx.line
      for _, l in ipairs(leaves) do parts[#parts + 1] = l end
    end
  end
  if #parts == 0 then return nil end
  if #parts == 1 then return parts[1] end
  return { op = "all", args = parts }
end

local function check_keys(ctx, body, known, what, lines, from, to)
  for _, k in ipairs(sorted_keys(body)) do
    if type(k) ~= "string" then
      ctx.add_at(from, "unexpected value %s in %s (keys are names, e.g. points = 10)", describe_value(body[k]), what)
    elseif not known[k] then
      local kl = key_line(lines, from, to, k)
      local list = {}
      for name in pairs(known) do list[#list + 1] = name end
      table_sort(list)
      ctx.add_at(kl, "unknown key '%s'%s", k, did_you_mean(k, list))
    end
  end
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local MODEL_SET, RULE_SET, DISQ_SET, GROUP_SET = set_of(MODEL_KEYS), set_of(RULE_KEYS), set_of(DISQ_KEYS),
  set_of(GROUP_KEYS)

local function valid_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_%-%.]*$") ~= nil
end

local function valid_id(s)
  return type(s) == "string" and s:match("^[%w_][%w_%-%.:]*$") ~= nil
end

-- Validating a model: validate(obj, opts) runs the steps below in order over one record, the
-- model being checked: the object, its body, the spec being built, the script's lines, the
-- report of problems (madd adds one with its line and context) and what earlier steps found
-- (declared groups and lists before the rules that name them). Each step reports what is
-- wrong and adds what is sound to the spec, so one pass lists every problem.

-- The object the script returned, checked to be a model with a body: the record the steps work on,
-- with section (a top-level key of the body checked to be a list or a map) and read_list_file
-- (a `file "lists/x.txt"` list, read next to the script). nil and the problems when there is no
-- model to look into.
local function model_record(obj, opts)
  opts = opts or {}
  local path = opts.path or (type(obj) == "table" and obj.source) or "model"
  local report = new_report(path)
  local lines = opts.lines
  local spec = {
    path = path, groups = {}, group_index = {}, rules = {}, disqualifiers = {}, thresholds = {},
    grades = {}, features = {}, feature_names = {}, lists = {}, fields = {}, functions = {},
  }

  if made[obj] ~= "model" then
    if type(obj) == "table" and made[obj] == nil and type(obj.name) == "string" then
      obj = { kind = "model", id = obj.name, body = obj, line = 0, source = path }   -- a plain table
    else
      report.add(opts.line or 0, nil, "the script must return a model: return model \"name\" { ... }, got %s",
        type_name(obj))
      return nil, report.problems
    end
  end
  local model_line = obj.line
  local mctx = "model '" .. tostring(obj.id) .. "'"
  if obj.missing_id or obj.bad_call then
    report.add(model_line, nil, "model needs a name and a table: model \"name\" { ... }")
    return nil, report.problems
  end
  if not valid_name(obj.id) then
    report.add(model_line, nil, "the model's name must be a word (letters, digits, _), got %s",
      describe_value(obj.id))
  end
  local body = obj.body
  if type(body) ~= "table" or made[body] then
    report.add(model_line, mctx, "the model needs a table: model \"name\" { ... }, got %s", type_name(body))
    return nil, report.problems
  end
  spec.name = obj.id
  spec.line = model_line
  local function madd(line, context, ...) report.add(line, context, ...) end


  local function section(key, want)
    local v = body[key]
    if v == nil then return nil end
    if type(v) ~= "table" or made[v] or (want == "array" and not is_array(v)) or
        (want == "map" and next(v) ~= nil and is_array(v)) then
      madd(key_line(lines, model_line, nil, key), mctx, "%s must be %s, got %s", key,
        want == "array" and "a list { ... }" or "a table of name = value", type_name(v))
      return nil
    end
    return v
  end

  -- lists in files
  local dir = opts.dir
  local function read_list_file(ref, context)
    local line = ref.line
    if type(ref.path) ~= "string" or ref.path == "" then
      madd(line, context, "file needs a path: file \"lists/name.txt\"")
      return nil
    end
    local p = ref.path
    if p:sub(1, 1) == "/" or p:find("%.%.") then
      madd(line, context, "file '%s' must be a path next to the script (no '/' at the start, no '..')", p)
      return nil
    end
    if dir == nil then
      madd(line, context, "file '%s' can only be read by a script loaded from a file", p)
      return nil
    end
    local text, err = read_file(dir .. p)
    if not text then
      madd(line, context, "cannot read list file '%s': %s", p, tostring(err):gsub("^[^:]*: ", ""))
      return nil
    end
    local vals = {}
    for l in text:gmatch("[^\r\n]+") do
      l = l:match("^%s*(.-)%s*$")
      if l ~= "" and l:sub(1, 1) ~= "#" then vals[#vals + 1] = l end
    end
    if #vals == 0 then
      madd(line, context, "list file '%s' is empty", p)
      return nil
    end
    return vals
  end

  return { obj = obj, opts = opts, body = body, spec = spec, lines = lines, model_line = model_line,
           mctx = mctx, report = report, madd = madd, section = section, read_list_file = read_list_file }
end

-- The model's own keys: none unknown, the name given once, description, label and version texts.
local function check_model_keys(model_check)
  local obj, body, spec = model_check.obj, model_check.body, model_check.spec
  local lines, model_line, mctx = model_check.lines, model_check.model_line, model_check.mctx
  local madd = model_check.madd
  local top = { add_at = function(l, ...) madd(l, mctx, ...) end }
  check_keys(top, body, MODEL_SET, "the model", lines, model_line, nil)
  if body.name ~= nil and body.name ~= obj.id and made[obj] then
    madd(model_line, mctx, "the name is given by model \"%s\"; remove name = %s", tostring(obj.id),
      describe_value(body.name))
  end
  for _, k in ipairs({ "description", "label", "version" }) do
    if body[k] ~= nil and type(body[k]) ~= "string" and not (k == "version" and type(body[k]) == "number") then
      madd(key_line(lines, model_line, nil, k), mctx, "%s must be a text, got %s", k, type_name(body[k]))
    end
  end
  spec.description = type(body.description) == "string" and body.description or nil
  spec.label = type(body.label) == "string" and body.label or spec.description
end

-- lists = { name = { "a", "b" } or file "path" }: named lists of values the conditions test against.
local function read_lists(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local madd, section, read_list_file = model_check.madd, model_check.section, model_check.read_list_file
  local lists = section("lists", "map") or {}
  for _, name in ipairs(sorted_keys(lists)) do
    local v = lists[name]
    local lline = key_line(lines, model_line, nil, name)
    local lctx = "list '" .. tostring(name) .. "'"
    if not valid_name(name) then
      madd(lline, nil, "list names must be words, got %s", describe_value(name))
    elseif made[v] == "file" then
      spec.lists[name] = read_list_file(v, lctx)
    elseif type(v) == "table" and not made[v] and is_array(v) then
      if #v == 0 then
        madd(lline, lctx, "the list is empty")
      else
        local vals, ok = {}, true
        for i, s in ipairs(v) do
          if type(s) == "number" then s = tostring(s) end
          if type(s) ~= "string" or s == "" then
            madd(lline, lctx, "value %d must be a non-empty text, got %s", i, describe_value(v[i]))
            ok = false
            break
          end
          vals[i] = s
        end
        if ok then spec.lists[name] = vals end
      end
    else
      madd(lline, lctx, "a list is { \"a\", \"b\", ... } or file \"path\", got %s", type_name(v))
    end
  end
end

-- groups = { name = { label, cap, floor } }: declared groups, kept in the record (and their names)
-- for the rules and grades that name them.
local function read_groups(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local madd, section = model_check.madd, model_check.section
  local groups = section("groups", "map") or {}
  for _, name in ipairs(sorted_keys(groups)) do
    local g = groups[name]
    local gline = key_line(lines, model_line, nil, name)
    local gctx = "group '" .. tostring(name) .. "'"
    if not valid_name(name) then
      madd(gline, nil, "group names must be words, got %s", describe_value(name))
    elseif RESERVED_COLUMNS[name] then
      madd(gline, gctx, "'%s' is a result column; choose another group name", name)
    elseif type(g) ~= "table" or made[g] then
      madd(gline, gctx, "a group is { label = ..., cap = ..., floor = ... }, got %s", type_name(g))
    else
      check_keys({ add_at = function(l, ...) madd(l, gctx, ...) end }, g, GROUP_SET, "the group", lines, gline,
        gline + 3)
      local ok = true
      for _, k in ipairs({ "cap", "floor" }) do
        if g[k] ~= nil and not finite(g[k]) then
          madd(gline, gctx, "%s must be a number, got %s", k, type_name(g[k]))
          ok = false
        end
      end
      if g.label ~= nil and type(g.label) ~= "string" then
        madd(gline, gctx, "label must be a text, got %s", type_name(g.label))
      end
      if ok and g.cap and g.cap < 0 then
        madd(gline, gctx, "cap must be 0 or more (a group that only takes points away uses floor), got %s",
          tostring(g.cap))
        ok = false
      end
      if ok and g.floor and g.floor > 0 then
        madd(gline, gctx, "floor must be 0 or less (the most a group can take away), got %s", tostring(g.floor))
        ok = false
      end
      local grp = { name = name, label = type(g.label) == "string" and g.label or name, cap = ok and g.cap or nil,
        floor = ok and g.floor or nil, line = gline }
      spec.groups[#spec.groups + 1] = grp
    end
  end
  -- Declared order is not kept by Lua tables: groups follow the order their first rule appears in.
  local group_names = {}
  for _, g in ipairs(spec.groups) do group_names[#group_names + 1] = g.name end
  model_check.groups, model_check.group_names = groups, group_names
end

-- The rules and disqualifiers lists, their ids seen so far, and where each one's text ends
-- (next_line: the line before the next rule), so a key's problem points at its own line.
local function rule_ranges(model_check)
  local section = model_check.section
  local ids = {}
  local rule_lines = {}
  local rules = section("rules", "array") or {}
  local disqs = section("disqualifiers", "array") or {}
  for _, r in ipairs(rules) do rule_lines[#rule_lines + 1] = type(r) == "table" and r.line or nil end
  for _, r in ipairs(disqs) do rule_lines[#rule_lines + 1] = type(r) == "table" and r.line or nil end
  table_sort(rule_lines)
  local function next_line(line)
    for _, l in ipairs(rule_lines) do
      if l > line then return l - 1 end
    end
    return nil
  end
  model_check.rules, model_check.disqs = rules, disqs
  model_check.ids, model_check.next_line = ids, next_line
end

-- What a rule and a disqualifier share: made with rule/disqualify "ID" { ... }, a unique id, known
-- keys, texts that are texts, and a `when` condition compiled to its tree. Returns the checked
-- part, the context for messages and the rule's last line; nil when it cannot be read further.
local function rule_common(model_check, r, i, kind, what, known)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local mctx, madd, read_list_file = model_check.mctx, model_check.madd, model_check.read_list_file
  local ids, next_line = model_check.ids, model_check.next_line
  if made[r] ~= kind then
    madd(model_line, mctx, "%s %d must be made with %s \"ID\" { ... }, got %s", what, i,
      kind == "rule" and "rule" or "disqualify", type_name(r))
    return nil
  end
  local line = r.line
  if r.missing_id then
    madd(line, nil, "%s needs an id: %s \"ID\" { ... }", kind == "rule" and "rule" or "disqualify",
      kind == "rule" and "rule" or "disqualify")
    return nil
  end
  if r.bad_call then
    madd(line, nil, "write %s \"ID\" { ... }: an id, then one table", kind == "rule" and "rule" or "disqualify")
    return nil
  end
  local rctx = string_format("%s '%s'", kind == "rule" and "rule" or "disqualifier", tostring(r.id))
  if not valid_id(r.id) then
    madd(line, nil, "a %s id must be a word (letters, digits, _), got %s", kind, describe_value(r.id))
    return nil
  end
  if ids[r.id] then
    madd(line, rctx, "duplicate id (also used at line %d)", ids[r.id])
    return nil
  end
  ids[r.id] = line
  if type(r.body) ~= "table" or made[r.body] then
    madd(line, rctx, "needs a table { ... }, got %s", type_name(r.body))
    return nil
  end
  local to = next_line(line)
  check_keys({ add_at = function(l, ...) madd(l, rctx, ...) end }, r.body, known, "the " .. kind, lines, line, to)
  for _, k in ipairs({ "label", "description" }) do
    if r.body[k] ~= nil and type(r.body[k]) ~= "string" then
      madd(key_line(lines, line, to, k), rctx, "%s must be a text, got %s", k, type_name(r.body[k]))
    end
  end
  local cond
  local when = r.body.when
  local wline = key_line(lines, line, to, "when")
  local cctx = {
    lists = spec.lists, fields = spec.fields, line = line, read_list_file = read_list_file,
    add = function(...) madd(wline, rctx, ...) end,
  }
  if when == nil then
    madd(line, rctx, "missing key 'when' (the condition)")
  else
    cond = condition(cctx, when, 0)
  end
  return { id = r.id, line = line, label = type(r.body.label) == "string" and r.body.label or r.id,
    description = type(r.body.description) == "string" and r.body.description or nil, when = cond }, rctx, to
end

-- rules = { rule "ID" { when, points, group } }: points a number in range or a function, a group
-- that is declared; whether the rule calls Lua (a function condition or points).
local function read_rules(model_check)
  local spec, lines, madd = model_check.spec, model_check.lines, model_check.madd
  local groups, group_names, rules = model_check.groups, model_check.group_names, model_check.rules
  for i, r in ipairs(rules) do
    local out, rctx, to = rule_common(model_check, r, i, "rule", "rule", RULE_SET)
    if out then
      local b = r.body
      local pts = b.points
      if type(pts) == "function" then
        out.points_fn = bounded_points(pts)
      elseif finite(pts) and (pts > _M.POINTS_MAX or pts < -_M.POINTS_MAX) then
        madd(key_line(lines, r.line, to, "points"), rctx, "points must be between -%.0f and %.0f, got %.10g",
          _M.POINTS_MAX, _M.POINTS_MAX, pts)
      elseif finite(pts) then
        out.points = pts
      elseif pts == nil then
        madd(r.line, rctx, "missing key 'points'")
      else
        madd(key_line(lines, r.line, to, "points"), rctx, "points must be a number or a function, got %s",
          type(pts) == "number" and tostring(pts) or type_name(pts))
      end
      if b.group ~= nil then
        if type(b.group) ~= "string" then
          madd(key_line(lines, r.line, to, "group"), rctx, "group must be a group's name, got %s", type_name(b.group))
        elseif groups[b.group] == nil then
          madd(key_line(lines, r.line, to, "group"), rctx, "unknown group '%s'%s", b.group,
            did_you_mean(b.group, group_names))
        else
          out.group = b.group
        end
      end
      out.uses_function = out.points_fn ~= nil
      local function scan(c)
        if c == nil then return end
        if c.t == "fn" then out.uses_function = true end
        if c.args then for _, a in ipairs(c.args) do scan(a) end end
      end
      scan(out.when)
      spec.rules[#spec.rules + 1] = out
      if out.uses_function then spec.functions[#spec.functions + 1] = out.id end
    end
  end
end

-- disqualifiers = { disqualify "ID" { when, reason } }: the reason a text (the id when none).
local function read_disqualifiers(model_check)
  local spec, lines, madd = model_check.spec, model_check.lines, model_check.madd
  local disqs = model_check.disqs
  for i, d in ipairs(disqs) do
    local out, rctx, to = rule_common(model_check, d, i, "disqualifier", "disqualifier", DISQ_SET)
    if out then
      local reason = d.body.reason
      if reason == nil then
        out.reason = d.id
      elseif type(reason) ~= "string" or reason == "" then
        madd(key_line(lines, d.line, to, "reason"), rctx, "reason must be a text, got %s", type_name(reason))
      else
        out.reason = reason
      end
      local function scan(c)
        if c == nil then return end
        if c.t == "fn" then out.uses_function = true end
        if c.args then for _, a in ipairs(c.args) do scan(a) end end
      end
      scan(out.when)
      spec.disqualifiers[#spec.disqualifiers + 1] = out
      if out.uses_function then spec.functions[#spec.functions + 1] = out.id end
    end
  end
end

-- rules = {} says nothing: an empty list is a mistake worth naming.
local function check_rules_given(model_check)
  local body, lines, model_line = model_check.body, model_check.lines, model_check.model_line
  local mctx, madd, section = model_check.mctx, model_check.madd, model_check.section
  local rules = model_check.rules
  if #rules == 0 and body.rules ~= nil and section("rules", "array") then
    madd(key_line(lines, model_line, nil, "rules"), mctx, "rules is empty")
  end
end

-- Groups in the order rules use them, then unused ones by name (Lua tables keep no declared
-- order); each gets its index.
local function order_groups(model_check)
  local spec, group_names = model_check.spec, model_check.group_names
  local order, seen = {}, {}
  local by_name = {}
  for _, g in ipairs(spec.groups) do by_name[g.name] = g end
  for _, r in ipairs(spec.rules) do   -- a rule naming a group that is not declared was reported above
    if r.group and by_name[r.group] and not seen[r.group] then seen[r.group] = true order[#order + 1] = r.group end
  end
  for _, name in ipairs(group_names) do
    if not seen[name] then order[#order + 1] = name end
  end
  spec.groups = {}
  for i, name in ipairs(order) do
    local g = by_name[name]
    g.index = i
    spec.groups[i] = g
    spec.group_index[name] = i
  end
end

-- thresholds = { status = points, otherwise = status }: distinct statuses at distinct points, sorted
-- low to high; 'disqualified' is taken.
local function read_thresholds(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local madd, section = model_check.madd, model_check.section
  local th = section("thresholds", "map")
  spec.otherwise = "none"
  if th then
    local tline = key_line(lines, model_line, nil, "thresholds")
    local tctx = "thresholds"
    local at = {}
    for _, k in ipairs(sorted_keys(th)) do
      local v = th[k]
      if k == "otherwise" then
        if type(v) ~= "string" or not valid_name(v) then
          madd(tline, tctx, "otherwise must be a status name (a word), got %s", describe_value(v))
        else
          spec.otherwise = v
        end
      elseif not valid_name(k) then
        madd(tline, tctx, "a threshold is status = points, got key %s", describe_value(k))
      elseif k == "disqualified" then
        madd(tline, tctx, "'disqualified' is the status of disqualified leads; choose another name")
      elseif not finite(v) then
        madd(tline, tctx, "threshold '%s' must be a number, got %s", k, type(v) == "number" and tostring(v)
          or type_name(v))
      elseif at[v] then
        madd(tline, tctx, "thresholds '%s' and '%s' are both %s", at[v], k, tostring(v))
      else
        at[v] = k
        spec.thresholds[#spec.thresholds + 1] = { status = k, at = v }
      end
    end
    if th.otherwise ~= nil and th[th.otherwise] ~= nil then
      madd(tline, tctx, "otherwise '%s' is also a threshold's name", tostring(th.otherwise))
    end
    if spec.otherwise == "disqualified" then
      madd(tline, tctx, "'disqualified' is the status of disqualified leads; choose another name")
    end
  end
  table_sort(spec.thresholds, function(a, b) return a.at < b.at end)
end

-- grades = { fit = { group, A = 35, ..., otherwise = "D" }, engagement = ... }: a declared group and
-- levels at distinct points, sorted high to low.
local function read_grades(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local madd, section, groups = model_check.madd, model_check.section, model_check.groups
  local group_names = model_check.group_names
  local gr = section("grades", "map")
  if gr then
    local gline = key_line(lines, model_line, nil, "grades")
    for _, k in ipairs(sorted_keys(gr)) do
      if k ~= "fit" and k ~= "engagement" then
        madd(key_line(lines, gline, nil, tostring(k)), "grades", "unknown grade '%s'%s (grades are fit and engagement)",
          tostring(k), did_you_mean(k, GRADE_NAMES))
      end
    end
    for _, name in ipairs(GRADE_NAMES) do
      local g = gr[name]
      if g ~= nil then
        local l = key_line(lines, gline, nil, name)
        local gctx = "grade '" .. name .. "'"
        if type(g) ~= "table" or made[g] then
          madd(l, gctx, "a grade is { group = \"name\", A = 35, ..., otherwise = \"D\" }, got %s", type_name(g))
        else
          local grade = { name = name, levels = {} }
          if type(g.group) ~= "string" or groups[g.group] == nil then
            madd(l, gctx, "group must name a group%s", type(g.group) == "string"
              and string_format(": unknown group '%s'%s", g.group, did_you_mean(g.group, group_names)) or "")
          else
            grade.group = g.group
          end
          if type(g.otherwise) ~= "string" or g.otherwise == "" then
            madd(l, gctx, "otherwise must be the grade below every level (a text), got %s", describe_value(g.otherwise))
          else
            grade.otherwise = g.otherwise
          end
          local seen_at = {}
          for _, k in ipairs(sorted_keys(g)) do
            local v = g[k]
            if k ~= "group" and k ~= "otherwise" then
              if type(k) ~= "string" or k == "" then
                madd(l, gctx, "a level is name = points, got key %s", describe_value(k))
              elseif not finite(v) then
                madd(l, gctx, "level '%s' must be a number of points, got %s", k, type_name(v))
              elseif seen_at[v] then
                madd(l, gctx, "levels '%s' and '%s' are both %s", seen_at[v], k, tostring(v))
              else
                seen_at[v] = k
                grade.levels[#grade.levels + 1] = { name = k, at = v }
              end
            end
          end
          table_sort(grade.levels, function(a, b) return a.at > b.at end)
          if #grade.levels == 0 then madd(l, gctx, "needs at least one level, e.g. A = 35") end
          spec.grades[#spec.grades + 1] = grade
        end
      end
    end
  end
end

-- features = { name = feature { ... } }: names the events module fills in, each checked by it now so
-- a check lists its problems with the rules'; the record notes when one is unsound.
local function read_features(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local madd, section = model_check.madd, model_check.section
  local fe = section("features", "map") or {}
  local features_unsound = false
  for _, name in ipairs(sorted_keys(fe)) do
    local f = fe[name]
    local l = key_line(lines, model_line, nil, tostring(name))
    if not valid_name(name) then
      madd(l, nil, "feature names must be words, got %s", describe_value(name))
    elseif made[f] ~= "feature" or type(f.spec) ~= "table" then
      madd(l, "feature '" .. name .. "'", "write feature { count = \"type\", within_days = 30 }, got %s",
        type_name(made[f] == "feature" and f.spec or f))
    else
      spec.features[name] = { name = name, spec = f.spec, line = f.line }
      spec.feature_names[#spec.feature_names + 1] = name
      -- its own keys now, so that a check lists them with the rules' problems, not after them
      local ok, ferr = pcall(require("leadq.features").validate, name, f.spec)
      if not ok then
        madd(l, nil, "%s", (tostring(ferr):gsub("^[^\n]-%.lua:%d+: ", "")))
        features_unsound = true
      end
    end
  end
  model_check.features_unsound = features_unsound
end

-- events = { noise, lateness_seconds }: how the features read the event log, only with features, and
-- checked by the events module once the features are sound.
local function read_events(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local mctx, madd, section = model_check.mctx, model_check.madd, model_check.section
  local features_unsound = model_check.features_unsound
  local ev = section("events", "map")
  if ev ~= nil then
    if #spec.feature_names == 0 then
      madd(key_line(lines, model_line, nil, "events"), mctx,
        "events says how features read events, but the model declares no features")
    else
      spec.events = ev
      spec.events_line = key_line(lines, model_line, nil, "events")
      if not features_unsound then   -- the features are sound: how they read events, now too
        local specs = {}
        for name, f in pairs(spec.features) do specs[name] = f.spec end
        local ok, eerr = pcall(require("leadq.features").new, specs, ev)
        if not ok then
          eerr = tostring(eerr):gsub("^[^\n]-%.lua:%d+: ", ""):gsub("^leadq%.features: ", "")
          madd(spec.events_line, nil, "events: %s", eerr)
        end
      end
    end
  end
end

-- calibration = { { from = total, probability = p }, ... }: bands rising by total, each a total's
-- probability of converting.
local function read_calibration(model_check)
  local spec, lines, model_line = model_check.spec, model_check.lines, model_check.model_line
  local mctx, madd, section = model_check.mctx, model_check.madd, model_check.section
  local cal = section("calibration", "array")
  if cal ~= nil then
    local cline = key_line(lines, model_line, nil, "calibration")
    local function band_ok(b)
      if type(b) ~= "table" or made[b] then return false end
      for k in pairs(b) do if k ~= "from" and k ~= "probability" then return false end end
      return finite(b.from) and finite(b.probability) and b.probability >= 0 and b.probability <= 1
    end
    spec.calibration = {}
    for i, band in ipairs(cal) do
      if not band_ok(band) then
        madd(cline, mctx, "calibration band %d must be { from = total, probability = 0..1 }", i)
      elseif i > 1 and type(cal[i - 1]) == "table" and finite(cal[i - 1].from) and band.from <= cal[i - 1].from then
        madd(cline, mctx, "calibration band %d must start above band %d (from %s, then %s)", i, i - 1,
          tostring(cal[i - 1].from), tostring(band.from))
      else
        spec.calibration[#spec.calibration + 1] = { from = band.from, probability = band.probability }
      end
    end
    if #cal == 0 then madd(cline, mctx, "calibration needs at least one band { from = total, probability = p }") end
  end
end

-- Validate a model object into a spec. `opts.path` names the file in messages, `opts.dir` is
-- where `file "..."` lists are read from, `opts.lines` the script's lines. Returns spec, problems.
function _M.validate(obj, opts)
  local model_check, problems = model_record(obj, opts)
  if not model_check then return nil, problems end
  check_model_keys(model_check)
  read_lists(model_check)
  read_groups(model_check)
  rule_ranges(model_check)
  read_rules(model_check)
  read_disqualifiers(model_check)
  check_rules_given(model_check)
  order_groups(model_check)
  read_thresholds(model_check)
  read_grades(model_check)
  read_features(model_check)
  read_events(model_check)
  read_calibration(model_check)
  local report = model_check.report
  if #report.problems > 0 then return nil, report.problems end
  return model_check.spec, {}
end

-- Load a rule script in the sandbox and validate it: spec, or nil and the problems (strings).
function _M.load_file(path, opts)
  opts = opts or {}
  local text, err = read_file(path)
  if not text then
    return nil, { string_format("%s: cannot read the rule script: %s", path, tostring(err):gsub("^[^:]*: ", "")) }
  end
  local env = _M.environment(opts.allow)
  local fn, serr = compile_chunk(text, "@" .. path, env)
  if not fn then return nil, { syntax_problem(path, serr) } end
  local ok, result = run_bounded(fn, opts.limits or _M.LIMITS)
  if not ok then return nil, { runtime_problem(path, result) } end
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local dir = path:match("^(.*/)[^/]*$") or ""
  return _M.validate(result, { path = path, dir = dir, lines = lines, line = #lines })
end

-- Script text of another kind (reactions) run in a sandbox env the caller made, under the load
-- limits: true, the chunk's result, or nil and the problem as a sentence with file and line.
function _M.run_sandboxed(text, path, env)
  local fn, serr = compile_chunk(text, "@" .. path, env)
  if not fn then return nil, syntax_problem(path, serr) end
  local ok, result = run_bounded(fn, _M.LIMITS)
  if not ok then return nil, runtime_problem(path, result) end
  return true, result
end

-- Run script text (not a file) in the sandbox: for tests and the REPL.
function _M.load_string(text, name, opts)
  opts = opts or {}
  name = name or "script"
  local env = _M.environment(opts.allow)
  local fn, serr = compile_chunk(text, "@" .. name, env)
  if not fn then return nil, { syntax_problem(name, serr) } end
  local ok, result = run_bounded(fn, opts.limits or _M.LIMITS)
  if not ok then return nil, { runtime_problem(name, result) } end
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return _M.validate(result, { path = name, dir = opts.dir, lines = lines, line = #lines })
end

return _M
