-- leadq.util: the small helpers every module needs, written once: "did you mean" for a mistyped
-- name, errors raised in the caller's terms, options checked against the names a function takes,
-- numbers for people (1,234,567; 5.6 MB) and for CSV, and lists given as "a,b" or as a Lua list.
local format, lower = string.format, string.lower
local floor = math.floor
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = { _VERSION = "0.1.0" }
local error, getinfo, sort = error, debug.getinfo, table.sort

-- Suggestions are for typing slips: no word longer than this gets one, and the work stays small
-- whatever a request or a file hands in (a 16 KB JSON key once cost a worker 0.23 s).
local SUGGEST_MAX = 64
_M.SUGGEST_MAX = SUGGEST_MAX

-- Edit distance with adjacent transpositions (so "scroe" is one step from "score"). Exact up to 3;
-- past that, for lengths that differ by more than 3 or a string longer than SUGGEST_MAX, a number
-- above 3 without the quadratic work (every caller asks for 3 or less).
local function distance(a, b)
  local la, lb = #a, #b
  if la - lb > 3 or lb - la > 3 then return la > lb and la - lb or lb - la end
  if la > SUGGEST_MAX or lb > SUGGEST_MAX then return SUGGEST_MAX end
  a, b = lower(a), lower(b)
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev2, prev = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local v = prev[j] + 1
      if cur[j - 1] + 1 < v then v = cur[j - 1] + 1 end
      if prev[j - 1] + cost < v then v = prev[j - 1] + cost end
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb and prev2[j - 2] + 1 < v then
        v = prev2[j - 2] + 1
      end
      cur[j] = v
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end
_M.distance = distance

-- Words people reach for in a rule script, and the key we mean by them.
local ALIASES = {
  score = "points", scores = "points", pts = "points", weight = "points", value = "points", point = "points",
  condition = "when", conditions = "when", ["if"] = "when", match = "when", where = "when",
  name = "label", title = "label", desc = "description",
  max = "cap", maximum = "cap", limit = "cap", min = "floor", minimum = "floor",
  equal = "equals", is = "equals", eq = "equals", ne = "not_equals", ["in"] = "one_of", any_of = "one_of",
  none_of = "not_one_of", not_in = "not_one_of", gte = "at_least", min_value = "at_least", lte = "at_most",
  gt = "above", greater_than = "above", more_than = "above", lt = "below", less_than = "below",
  range = "between", has = "contains", includes = "contains", startswith = "starts_with",
  endswith = "ends_with", pattern = "matches", regex = "matches", has_word = "word", words = "word",
  last_days = "within_days", in_last_days = "within_days", since_days = "within_days",
  status = "thresholds", threshold = "thresholds", rule = "rules", group = "groups", grade = "grades",
  disqualify = "disqualifiers", disqualifier = "disqualifiers", list = "lists", feature = "features",
}

-- The best of `candidates` (an array of strings) for a mistyped `word`, or nil.
local function suggest(word, candidates)
  if type(word) ~= "string" or #word > SUGGEST_MAX then return nil end
  local best, best_d
  local lw = lower(word)
  local alias = ALIASES[lw]
  for _, c in ipairs(candidates) do
    if alias == c then return c end
  end
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    local limit = #c <= 3 and 1 or (#c <= 6 and 2 or 3)
    if d <= limit and (best_d == nil or d < best_d) then best, best_d = c, d end
  end
  if best == nil then   -- a mistyped alias: "scroe" -> "score" -> "points"
    for a, target in pairs(ALIASES) do
      if #a > 3 and distance(lw, a) <= 1 then
        for _, c in ipairs(candidates) do
          if c == target then return c end
        end
      end
    end
    for _, c in ipairs(candidates) do   -- a prefix or a case slip: "employee" for "employees"
      local lc = lower(c)
      if #lw >= 4 and (lc:sub(1, #lw) == lw or lw:sub(1, #lc) == lc) then return c end
    end
  end
  return best
end
_M.suggest = suggest

-- " (did you mean 'x'?)" for a mistyped word, or "".
function _M.did_you_mean(word, candidates)
  local s = suggest(word, candidates)
  if s then return format(" (did you mean '%s'?)", s) end
  return ""
end

-- Errors in the caller's terms. The one rule: a public function that is handed something wrong
-- raises with error(message, 2); a check deeper inside leadq (a helper, a shared validator) calls
-- raise(message), which blames the first function outside leadq's own modules, however deep the
-- check ran, so no function counts frames. leadq's modules are lua files right in a leadq/ or
-- leadq/cli/ folder (as leadq.cli strips from messages); rule scripts (rules/, leadq/rules/) and C
-- functions (pcall) are the caller's. raise never returns: call it as a statement.
local function is_internal(source)
  return source:find("leadq/[%w_]+%.lua$") ~= nil or source:find("leadq/cli/[%w_]+%.lua$") ~= nil
end
_M.is_internal = is_internal

function _M.raise(message)
  local level = 2
  while true do
    local info = getinfo(level, "S")
    if not info or not is_internal(info.source) then break end
    level = level + 1
  end
  error(message, level)
end

-- A function's options table checked against the names it takes (a set { name = true }): nil is
-- {}, a name not taken is an error with the closest one suggested (luaposix's strictness: "scroe"
-- is caught, not ignored). fname names the function in the message. Returns the options.
function _M.check_options(options, allowed, fname)
  if options == nil then return {} end
  if type(options) ~= "table" then
    _M.raise(format("%s: options must be a table, got %s", fname, type(options)))
  end
  for k in pairs(options) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      sort(names)
      _M.raise(format("%s: unknown option '%s'%s", fname, tostring(k), _M.did_you_mean(tostring(k), names)))
    end
  end
  return options
end

-- "-1234567.89" -> "-1,234,567.89": the digits before the point in groups of three.
local function group_digits(s)
  local sign, digits, rest = s:match("^(-?)(%d+)(.*)$")
  if not digits then return s end
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. digits .. rest
end
_M.group_digits = group_digits

-- 1234567.4 -> "1,234,567": rounded to a whole number, digits in groups of three.
function _M.thousands(n)
  return group_digits(format("%d", floor(n + 0.5)))
end

-- 1234 -> "1.2 kB", 5600000 -> "5.6 MB": a size in bytes for people.
function _M.megabytes(bytes)
  if bytes < 1e6 then return format("%.1f kB", bytes / 1e3) end
  return format("%.1f MB", bytes / 1e6)
end

-- One CSV field: nil and NaN empty, whole numbers without a point, other numbers to 6 digits, text
-- quoted when it holds a comma, a quote or a line break.
function _M.csv_field(v)
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

-- Whether t is a table holding a sequence 1..n and nothing else (a list, not a record).
function _M.is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- "a, b,c" or { "a", "b,c" } (a flag given twice) -> { "a", "b", "c" }: items trimmed, empty ones
-- dropped; nil stays nil (an option not given).
function _M.split_list(value)
  if value == nil then return nil end
  local items = {}
  for _, v in ipairs(type(value) == "table" and value or { value }) do
    for item in tostring(v):gmatch("[^,]+") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then items[#items + 1] = item end
    end
  end
  return items
end

-- The axes of grades made of a letter and a digit ("A1".."D4", counts = { grade = leads }): the
-- letters sorted (rows), the digits in number order (columns); nil when a grade is not of that form.
function _M.grade_axes(counts)
  local letters, digits, seen_l, seen_d = {}, {}, {}, {}
  for k in pairs(counts) do
    local l, d = tostring(k):match("^(%a+)(%d+)$")
    if not l then return nil end
    if not seen_l[l] then seen_l[l], letters[#letters + 1] = true, l end
    if not seen_d[d] then seen_d[d], digits[#digits + 1] = true, d end
  end
  sort(letters)
  sort(digits, function(a, b) return tonumber(a) < tonumber(b) end)
  return letters, digits
end

-- The whole of a file's bytes, or nil and io.open's message.
function _M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

-- How many times each value stands in values[1..n]: { value = count }; a missing value counts as
-- "(none)".
function _M.tally(values, n)
  local counts = {}
  for i = 1, n do
    local v = values[i]
    if v == nil then v = "(none)" end
    counts[v] = (counts[v] or 0) + 1
  end
  return counts
end

return _M
