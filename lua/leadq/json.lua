-- leadq.json: a small strict JSON (RFC 8259) decoder and encoder, for the OpenResty service and
-- tools; no C module needed (Debian's nginx Lua module does not bundle cjson).
--
--   json.decode(text [, max_depth]) -> value, or nil, message   (malformed input is expected: no raise)
--   json.encode(value)              -> text                     (a value JSON cannot hold raises)
--   json.null                       -> the value of a JSON null (nil cannot live in a table)
--   json.array(t)                   -> t, marked to encode as an array even when empty
--   json.encode_parts(value)        -> the text as an array of strings (table.concat gives encode's)
--   json.quote(s), json.number(n)   -> the text of one string, of one number
--
-- Strict: one value and nothing but white space after it, no trailing commas, no leading zeros,
-- no control characters or invalid UTF-8 in strings, no lone surrogates, no duplicate keys,
-- nesting bounded. Objects are encoded with their keys sorted, so answers are reproducible.
local byte, sub, find, char, format = string.byte, string.sub, string.find, string.char, string.format
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge
local type, pairs, tonumber, error, setmetatable, getmetatable, rawequal =
  type, pairs, tonumber, error, setmetatable, getmetatable, rawequal

local _M = { _VERSION = "0.1.0" }

-- LuaJIT makes a table with room for n keys in one call; elsewhere an empty table grows as it fills.
local has_new_tab, new_tab = pcall(require, "table.new")
if not has_new_tab then new_tab = function() return {} end end

local null = setmetatable({}, { __tostring = function() return "json.null" end, __newindex = function()
  error("json.null is read-only", 2)
end })
_M.null = null

local array_mt = { __name = "leadq.json.array" }
function _M.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("bad argument #1 to 'array' (table expected, got " .. type(t) .. ")", 2) end
  return setmetatable(t, array_mt)
end

local DEFAULT_DEPTH = 64

---------------------------------------------------------------------------------------------------
-- Decoder: recursive descent over byte positions; every failure is `nil, message` naming the byte.
---------------------------------------------------------------------------------------------------

local escapes = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r",
  [116] = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- The position of the first byte of s[i..j] that breaks UTF-8 (overlongs and surrogates included), or nil.
local function bad_utf8(s, i, j)
  while i <= j do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local n
      local lo, hi = 0x80, 0xBF
      if c >= 0xC2 and c <= 0xDF then n = 1
      elseif c == 0xE0 then n, lo = 2, 0xA0
      elseif c == 0xED then n, hi = 2, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then n = 2
      elseif c == 0xF0 then n, lo = 3, 0x90
      elseif c >= 0xF1 and c <= 0xF3 then n = 3
      elseif c == 0xF4 then n, hi = 3, 0x8F
      else return i end
      if i + n > j then return i end
      local c1 = byte(s, i + 1)
      if c1 < lo or c1 > hi then return i end
      for k = i + 2, i + n do
        local ck = byte(s, k)
        if ck < 0x80 or ck > 0xBF then return i end
      end
      i = i + n + 1
    end
  end
  return nil
end

local decode_value   -- forward: (s, pos, depth, max_depth) -> value, next_pos | nil, message

local function fail(pos, what)
  return nil, format("malformed JSON at byte %d: %s", pos, what)
end

local function skip_space(s, pos)
  local _, e = find(s, "^[ \t\r\n]+", pos)
  if e then return e + 1 end
  return pos
end

local function decode_string(s, pos)   -- pos is at the opening quote
  local start = pos + 1
  -- RFC 8259 refuses U+0000 to U+001F unescaped, not DEL (127), which %c would take in too
  local _, stop = find(s, '^[^"\\%z\1-\31\127-\255]*"', start)
  if stop then return sub(s, start, stop - 1), stop + 1 end   -- the common case: plain ASCII, no escapes
  local parts, n, i = {}, 0, start
  while true do
    local run_end = find(s, '["\\%z\1-\31]', i)
    if not run_end then return fail(#s + 1, "unterminated string") end
    local c = byte(s, run_end)
    if run_end > i then
      local bad = bad_utf8(s, i, run_end - 1)
      if bad then return fail(bad, "invalid UTF-8 in string") end
      n = n + 1; parts[n] = sub(s, i, run_end - 1)
    end
    if c == 34 then
      return concat(parts), run_end + 1
    elseif c == 92 then
      local e = byte(s, run_end + 1)
      if e == 117 then
        local hex = sub(s, run_end + 2, run_end + 5)
        if not find(hex, "^%x%x%x%x$") then return fail(run_end, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        local next_pos = run_end + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local hex2 = sub(s, next_pos, next_pos + 5)
          local lo = find(hex2, "^\\u%x%x%x%x$") and tonumber(sub(hex2, 3), 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then
            return fail(run_end, "lone surrogate in \\u escape")
          end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          next_pos = next_pos + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          return fail(run_end, "lone surrogate in \\u escape")
        end
        n = n + 1; parts[n] = utf8_char(cp)
        i = next_pos
      else
        local ch = escapes[e]
        if not ch then return fail(run_end, "bad escape in string") end
        n = n + 1; parts[n] = ch
        i = run_end + 2
      end
    else
      return fail(run_end, "control character in string")
    end
  end
end

local function decode_number(s, pos)
  local _, e = find(s, "^-?%d+", pos)
  if not e then return fail(pos, "unexpected character") end
  local int_start = byte(s, pos) == 45 and pos + 1 or pos
  if e > int_start and byte(s, int_start) == 48 then return fail(pos, "leading zero in number") end
  local _, fe = find(s, "^%.%d+", e + 1)
  if fe then e = fe elseif byte(s, e + 1) == 46 then return fail(e + 1, "digits expected after '.'") end
  local _, ee = find(s, "^[eE][+-]?%d+", e + 1)
  if ee then e = ee elseif find(s, "^[eE]", e + 1) then return fail(e + 1, "digits expected in exponent") end
  local v = tonumber(sub(s, pos, e))
  if v == huge or v == -huge then return fail(pos, "number out of range") end
  return v, e + 1
end

local function decode_array(s, pos, depth, max_depth)
  local t, n = {}, 0
  pos = skip_space(s, pos + 1)
  if byte(s, pos) == 93 then return _M.array(t), pos + 1 end
  while true do
    local v, p = decode_value(s, pos, depth, max_depth)
    if v == nil then return nil, p end
    n = n + 1; t[n] = v
    pos = skip_space(s, p)
    local c = byte(s, pos)
    if c == 93 then return _M.array(t), pos + 1 end
    if c ~= 44 then return fail(pos, "expected ',' or ']' in array") end
    pos = skip_space(s, pos + 1)
  end
end

local function decode_object(s, pos, depth, max_depth)
  local t = {}
  pos = skip_space(s, pos + 1)
  if byte(s, pos) == 125 then return t, pos + 1 end
  while true do
    if byte(s, pos) ~= 34 then return fail(pos, "expected a string key in object") end
    local key_pos = pos
    local k, p = decode_string(s, pos)
    if k == nil then return nil, p end
    if t[k] ~= nil then return fail(key_pos, format("duplicate key '%s' in object", k)) end
    pos = skip_space(s, p)
    if byte(s, pos) ~= 58 then return fail(pos, "expected ':' after object key") end
    local v
    v, p = decode_value(s, skip_space(s, pos + 1), depth, max_depth)
    if v == nil then return nil, p end
    t[k] = v
    pos = skip_space(s, p)
    local c = byte(s, pos)
    if c == 125 then return t, pos + 1 end
    if c ~= 44 then return fail(pos, "expected ',' or '}' in object") end
    pos = skip_space(s, pos + 1)
  end
end

function decode_value(s, pos, depth, max_depth)
  local c = byte(s, pos)
  if c == 34 then return decode_string(s, pos) end
  if c == 123 or c == 91 then
    if depth >= max_depth then return fail(pos, format("nested deeper than %d levels", max_depth)) end
    if c == 123 then return decode_object(s, pos, depth + 1, max_depth) end
    return decode_array(s, pos, depth + 1, max_depth)
  end
  if c == 116 then
    if sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  elseif c == 102 then
    if sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  elseif c == 110 then
    if sub(s, pos, pos + 3) == "null" then return null, pos + 4 end
  elseif c == nil then
    return fail(pos, "unexpected end of input")
  else
    return decode_number(s, pos)
  end
  return fail(pos, "unexpected character")
end

-- The usual request body, a compact flat object of plain strings and whole numbers; nil for anything
-- else (space, nesting, escapes, non-ASCII, other values, a duplicate key, a mistake), which the
-- general decoder then reads, so the value is the same either way. With no escape, control
-- character or non-ASCII byte anywhere (plain_text, below), every quote ends a string, found by
-- plain finds, which LuaJIT compiles.
-- Keys repeat from body to body: the last key of each length and first byte is kept, and a key equal
-- to it (bytes compared in place, by a plain find) is that string: no new one to hash and look up
-- in the string table, a cache miss in a busy server.
local seen_keys = {}

-- Printable ASCII but the backslash: under LuaJIT a loop over the bytes, compiled into the trace;
-- elsewhere one pattern match (the class is one range, one comparison a byte) and one plain find.
local plain_text
if jit then
  plain_text = function(s)
    for i = 1, #s do
      local b = byte(s, i)
      if b < 32 or b > 126 or b == 92 then return false end
    end
    return true
  end
else
  plain_text = function(s)
    return not (find(s, "[^ -~]") or find(s, "\\", 1, true))
  end
end

local function decode_flat_object(s)
  if not plain_text(s) then return nil end
  local t, pos, last = new_tab(0, 4), 2, #s   -- room for the usual event's keys: no rehash as it fills
  while true do
    if byte(s, pos) ~= 34 then return nil end
    local key_end = find(s, '"', pos + 1, true)
    if not key_end or byte(s, key_end + 1) ~= 58 then return nil end
    local slot = (key_end - pos) * 256 + (byte(s, pos + 1) or 0)
    local k = seen_keys[slot]
    if not (k and find(s, k, pos + 1, true) == pos + 1) then
      k = sub(s, pos + 1, key_end - 1)
      if key_end - pos <= 64 then seen_keys[slot] = k end
    end
    if t[k] ~= nil then return nil end
    local start = key_end + 2
    local v, stop
    if byte(s, start) == 34 then
      stop = find(s, '"', start + 1, true)
      if not stop then return nil end
      v = sub(s, start + 1, stop - 1)
    else   -- a whole number: the text up to the next ',' or '}', if it reads back as written
      local comma, brace = find(s, ",", start, true), find(s, "}", start, true)
      stop = comma and brace and (comma < brace and comma or brace) or comma or brace
      if not stop then return nil end
      stop = stop - 1
      local text = sub(s, start, stop)
      v = tonumber(text)
      if not v or v % 1 ~= 0 or v >= 2^53 or v <= -2^53 or format("%d", v) ~= text then return nil end
    end
    t[k] = v
    local c = byte(s, stop + 1)
    if c == 125 then
      if stop + 1 == last then return t end
      return nil
    end
    if c ~= 44 then return nil end
    pos = stop + 2
  end
end

function _M.decode(text, max_depth)
  if type(text) ~= "string" then
    error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
  end
  if max_depth ~= nil and (type(max_depth) ~= "number" or max_depth < 1) then
    error("bad argument #2 to 'decode' (positive number expected)", 2)
  end
  if byte(text, 1) == 123 then
    local flat = decode_flat_object(text)
    if flat then return flat end
  end
  local v, pos = decode_value(text, skip_space(text, 1), 0, max_depth or DEFAULT_DEPTH)
  if v == nil then return nil, pos end
  pos = skip_space(text, pos)
  if pos <= #text then return fail(pos, "unexpected data after the value") end
  return v
end

---------------------------------------------------------------------------------------------------
-- Encoder: raises on what JSON cannot say (functions, NaN, cycles, mixed tables).
---------------------------------------------------------------------------------------------------

local escape_map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }
for b = 0, 31 do
  local ch = char(b)
  if not escape_map[ch] then escape_map[ch] = format("\\u%04x", b) end
end
escape_map["\127"] = "\\u007f"

local function encode_string(s)
  if find(s, '[%c"\\]') then s = s:gsub('[%c"\\]', escape_map) end
  return '"' .. s .. '"'
end

-- Object keys repeat from answer to answer: their quoted form is kept (a bounded cache).
local quoted_keys, quoted_count = {}, 0
local function quote_key(k)
  local q = quoted_keys[k]
  if q then return q end
  q = encode_string(k) .. ":"
  if quoted_count >= 4096 then quoted_keys, quoted_count = {}, 0 end
  quoted_keys[k], quoted_count = q, quoted_count + 1
  return q
end

local math_type = math.type   -- nil before Lua 5.3: every number is a double there

local function encode_number(v)
  -- an integer subtype as its digits: past 2^53 the double it would pass through is another number
  if math_type and math_type(v) == "integer" then return format("%d", v) end
  if v ~= v then error("json.encode: cannot encode NaN", 0) end
  if v == huge or v == -huge then error("json.encode: cannot encode an infinite number", 0) end
  if floor(v) == v and v >= -2^53 and v <= 2^53 then return format("%d", v) end
  local short = format("%.14g", v)   -- shortest of the usual forms that reads back the same double
  if tonumber(short) == v then return short end
  return format("%.17g", v)
end

-- The JSON text of one string, and of one number (raises on NaN and infinities): for writers that
-- lay out a known shape themselves.
_M.quote = encode_string
_M.number = encode_number

local MAX_DEPTH = 100   -- deeper is a cycle or a mistake

local encode_into   -- forward: (v, out, n, depth) -> n, the last index used in out

local function is_array(t)
  if getmetatable(t) == array_mt then return true, #t end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or floor(k) ~= k then return false end
    if k > n then n = k end
  end
  if n == 0 then return false end   -- {} is an object unless marked with json.array
  for i = 1, n do
    if t[i] == nil then error("json.encode: sparse array (index " .. i .. " is nil)", 0) end
  end
  return true, n
end

function encode_into(v, out, n, depth)
  local tv = type(v)
  if tv == "string" then
    n = n + 1; out[n] = encode_string(v)
  elseif tv == "number" then
    n = n + 1; out[n] = encode_number(v)
  elseif tv == "boolean" then
    n = n + 1; out[n] = v and "true" or "false"
  elseif tv == "table" then
    if rawequal(v, null) then
      n = n + 1; out[n] = "null"
      return n
    end
    if depth >= MAX_DEPTH then error("json.encode: nested deeper than " .. MAX_DEPTH .. " levels (a cycle?)", 0) end
    local arr, len = is_array(v)
    if arr then
      if len == 0 then
        n = n + 1; out[n] = "[]"
        return n
      end
      for i = 1, len do
        n = n + 1; out[n] = i == 1 and "[" or ","
        n = encode_into(v[i], out, n, depth + 1)
      end
      n = n + 1; out[n] = "]"
    else
      local keys, nk = {}, 0
      for k in pairs(v) do
        if type(k) ~= "string" then
          error("json.encode: object key must be a string, got " .. type(k), 0)
        end
        nk = nk + 1; keys[nk] = k
      end
      if nk == 0 then
        n = n + 1; out[n] = "{}"
        return n
      end
      if nk > 1 then sort(keys) end
      for i = 1, nk do
        local k = keys[i]
        n = n + 1; out[n] = i == 1 and "{" or ","
        n = n + 1; out[n] = quote_key(k)
        n = encode_into(v[k], out, n, depth + 1)
      end
      n = n + 1; out[n] = "}"
    end
  elseif v == nil then
    n = n + 1; out[n] = "null"
  else
    error("json.encode: cannot encode a " .. tv, 0)
  end
  return n
end

function _M.encode(value)
  local out = {}
  local ok, err = pcall(encode_into, value, out, 0, 0)
  if not ok then error(err, 2) end
  return concat(out)
end

-- The text as an array of pieces, unjoined: for writers that take them as they are (ngx.print).
function _M.encode_parts(value)
  local out = {}
  local ok, err = pcall(encode_into, value, out, 0, 0)
  if not ok then error(err, 2) end
  return out
end

return _M
