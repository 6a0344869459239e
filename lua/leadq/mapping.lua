-- Mapping scripts: how a CRM's export becomes the fields the rules read. A script is Lua, run in
-- the rules' sandbox, and says for each field which column it comes from (or the first non-empty of
-- several), what part of the value to take (lower case, an e-mail's domain), which values map to
-- which (United States -> US, Yes -> true), its type, and the locale of its numbers and dates; and
-- which values mean missing. It is compiled into a column plan the C reader applies to every row
-- (csrc/column_plan.c): loading through a mapping calls no Lua per value.
--
--   local mapping = require("leadq.mapping")
--   local m = assert(mapping.load("crm/hubspot.lua"))       -- nil, problems (file:line each)
--   local leads = assert(m:read_csv("contacts.csv.gz"))     -- or m:read_events(path)
local dsl = require("leadq.dsl")

local format = string.format
local concat = table.concat
local sort = table.sort

local _M = { _VERSION = "0.1.0" }

local Mapping = {}
Mapping.__index = Mapping

local TYPES = { number = true, category = true, boolean = true, time = true, text = true, tags = true }
local TAKES = { value = true, lower = true, upper = true, domain = true, ["local"] = true }
local FIELD_KEYS = { "from", "first_of", "take", "values", "fn", "any_case", "type", "format", "decimal", "thousands",
  "tz", "split" }
local TOP_KEYS = { "fields", "null", "keep", "decimal", "thousands", "date_format", "tz", "export", "description" }
local EXPORT_KEYS = { "id", "fields", "values" }
local DECIMALS = { ["."] = true, [","] = true }
local THOUSANDS = { [","] = true, ["."] = true, [" "] = true, ["'"] = true, none = true }

local is_list = require("leadq.util").is_list

local function set_of(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- "+02:00", "-0500", "UTC", "Z" -> minutes east of UTC, or nil and why.
local function tz_minutes(tz)
  if type(tz) ~= "string" then return nil, format("a UTC offset like \"+02:00\" expected, got %s", type(tz)) end
  if tz == "UTC" or tz == "Z" or tz == "GMT" then return 0 end
  local sign, h, m = tz:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then
    return nil, format("'%s' is not a UTC offset: write it like \"+02:00\" or \"-05:00\" (named time zones such "
      .. "as Europe/Berlin are not read: their offset changes with the season)", tz)
  end
  h, m = tonumber(h), tonumber(m)
  if h > 14 or m > 59 then return nil, format("'%s' is not a UTC offset (hours up to 14, minutes up to 59)", tz) end
  return (sign == "-" and -1 or 1) * (h * 60 + m)
end
_M.tz_minutes = tz_minutes

-- The line of `name =` (or ["name"] =) in the script, for messages about a field: the first after `after`.
local function line_of(lines, name, after)
  local plain = name:gsub("%p", "%%%0")
  for i = after or 1, #lines do
    local l = lines[i]
    if l:find("^%s*" .. plain .. "%s*=") or l:find("[{,]%s*" .. plain .. "%s*=") or
        l:find("%[%s*[\"']" .. plain .. "[\"']%s*%]%s*=") then
      return i
    end
  end
  return after or 1
end

---------------------------------------------------------------------------------------------------
-- loading and checking
---------------------------------------------------------------------------------------------------

local function environment(found)
  local env = dsl.environment()
  env.mapping = function(name)
    if type(name) ~= "string" then error(format("mapping: a name expected, got %s", type(name)), 2) end
    return function(body)
      if type(body) ~= "table" then error(format("mapping '%s': a table { fields = ... } expected", name), 2) end
      found.mapping = { name = name, body = body }
      return found.mapping
    end
  end
  return env
end

-- Every mistake of a script, each with its file and line.
local function validate(spec, path, lines)
  local problems = {}
  local function problem(line, fmt, ...)
    problems[#problems + 1] = format("%s:%d: ", path, line) .. format(fmt, ...)
  end
  local body = spec.body
  local fields_line = line_of(lines, "fields")
  for k in pairs(body) do
    if type(k) ~= "string" or not set_of(TOP_KEYS)[k] then
      problem(line_of(lines, tostring(k)), "mapping '%s': unknown key '%s'%s", spec.name, tostring(k),
        dsl.did_you_mean(tostring(k), TOP_KEYS))
    end
  end
  local function check_locale(where, line, t, decimal_key)
    if t[decimal_key] ~= nil and not DECIMALS[t[decimal_key]] then
      problem(line, "%s: %s must be \".\" or \",\", got %s", where, decimal_key, tostring(t[decimal_key]))
    end
    if t.thousands ~= nil and not THOUSANDS[t.thousands] then
      problem(line, "%s: thousands must be \",\", \".\", \" \", \"'\" or \"none\", got %s", where,
        tostring(t.thousands))
    end
    if t.thousands ~= nil and t.thousands == (t[decimal_key] or ".") then
      problem(line, "%s: the decimal mark and the thousands separator are both '%s'", where, t.thousands)
    end
    if t.tz ~= nil then
      local _, why = tz_minutes(t.tz)
      if why then problem(line, "%s: tz: %s", where, why) end
    end
  end
  check_locale(format("mapping '%s'", spec.name), line_of(lines, "decimal"), body, "decimal")
  if body.date_format ~= nil and type(body.date_format) ~= "string" and not is_list(body.date_format) then
    problem(line_of(lines, "date_format"), "date_format must be a format like \"%%m/%%d/%%Y\" or a list of them")
  end
  if body.null ~= nil and not is_list(body.null) then
    problem(line_of(lines, "null"), "null must be a list of the values that mean missing, e.g. { \"n/a\", \"-\" }")
  end
  if body.fields == nil then
    problem(#lines > 0 and 1 or 1, "mapping '%s': no fields: give fields = { field = \"Column\", ... }", spec.name)
  elseif type(body.fields) ~= "table" then
    problem(fields_line, "fields must be a table { field = \"Column\" or { from = ... } }")
  else
    for name, f in pairs(body.fields) do
      local line = line_of(lines, tostring(name), fields_line)
      local where = format("field '%s'", tostring(name))
      if type(name) ~= "string" then
        problem(line, "field names must be strings, got %s", type(name))
      elseif type(f) == "string" then  -- a rename
        if f == "" then problem(line, "%s: the column name is empty", where) end
      elseif type(f) ~= "table" then
        problem(line, "%s: a column name or a table { from = \"Column\", ... } expected, got %s", where, type(f))
      else
        for k in pairs(f) do
          if type(k) ~= "string" or not set_of(FIELD_KEYS)[k] then
            problem(line, "%s: unknown key '%s'%s", where, tostring(k), dsl.did_you_mean(tostring(k), FIELD_KEYS))
          end
        end
        if f.from == nil and f.first_of == nil then
          problem(line, "%s: say where it comes from: from = \"Column\" or first_of = { \"A\", \"B\" }", where)
        elseif f.from ~= nil and f.first_of ~= nil then
          problem(line, "%s: from and first_of together; give one", where)
        elseif f.from ~= nil and type(f.from) ~= "string" then
          problem(line, "%s: from must be a column name, got %s", where, type(f.from))
        elseif f.first_of ~= nil and (not is_list(f.first_of) or #f.first_of == 0 or #f.first_of > 8) then
          problem(line, "%s: first_of must be a list of 1 to 8 column names", where)
        end
        if f.take ~= nil and not TAKES[f.take] then
          problem(line, "%s: take must be one of value, lower, upper, domain, local; got %s%s", where, tostring(f.take),
            dsl.did_you_mean(tostring(f.take), { "value", "lower", "upper", "domain", "local" }))
        end
        if f.type ~= nil and not TYPES[f.type] then
          problem(line, "%s: unknown type '%s'%s; the types are number, category, boolean, time, text, tags", where,
            tostring(f.type), dsl.did_you_mean(tostring(f.type), { "number", "category", "boolean", "time", "text",
              "tags" }))
        end
        if f.fn ~= nil and type(f.fn) ~= "function" then
          problem(line, "%s: fn must be a function(value) returning the field's value, got %s", where, type(f.fn))
        elseif f.fn ~= nil and f.values ~= nil then
          problem(line, "%s: fn and values together; map the values inside fn", where)
        end
        if f.values ~= nil then
          if type(f.values) ~= "table" then
            problem(line, "%s: values must be a table { [\"CRM value\"] = our value }", where)
          else
            for k, v in pairs(f.values) do
              if type(k) ~= "string" then
                problem(line, "%s: values: the CRM's values are strings, got %s", where, type(k))
              elseif type(v) ~= "string" and type(v) ~= "boolean" and type(v) ~= "number" then
                problem(line, "%s: values: '%s' maps to a %s; a string, number or boolean expected", where, k, type(v))
              end
            end
          end
        end
        if f.format ~= nil and type(f.format) ~= "string" and not is_list(f.format) then
          problem(line, "%s: format must be a date format like \"%%m/%%d/%%Y\" or a list of them", where)
        end
        if f.format ~= nil and f.type ~= nil and f.type ~= "time" then
          problem(line, "%s: a date format on a %s field; format is for times", where, f.type)
        end
        if f.split ~= nil and (type(f.split) ~= "string" or #f.split ~= 1) then
          problem(line, "%s: split must be one character, e.g. \";\"", where)
        end
        if f.split ~= nil and f.type ~= nil and f.type ~= "tags" then
          problem(line, "%s: split makes tags, but the type is %s", where, f.type)
        end
        check_locale(where, line, f, "decimal")
      end
    end
  end
  if body.export ~= nil then
    local line = line_of(lines, "export")
    if type(body.export) ~= "table" then
      problem(line, "export must be a table { id = \"CRM id column\", fields = { property = \"total\" } }")
    else
      for k in pairs(body.export) do
        if not set_of(EXPORT_KEYS)[k] then
          problem(line, "export: unknown key '%s'%s", tostring(k), dsl.did_you_mean(tostring(k), EXPORT_KEYS))
        end
      end
      if body.export.fields ~= nil and type(body.export.fields) ~= "table" then
        problem(line, "export: fields must be a table { [\"CRM property\"] = \"result column\" }")
      end
      if body.export.id ~= nil and type(body.export.id) ~= "string" then
        problem(line, "export: id must be the name of the CRM's id column")
      end
    end
  end
  sort(problems)
  return problems
end

local read_file = require("leadq.util").read_file

-- Is this text a mapping script (rather than rules)?
function _M.is_mapping_text(text)
  if type(text) ~= "string" then return false end
  for line in text:gmatch("[^\n]+") do
    if not line:find("^%s*%-%-") and not line:find("^%s*$") then
      return line:find("^%s*return%s+mapping[%s\"'(]") ~= nil
    end
  end
  return false
end

function _M.is_mapping_file(path)
  return _M.is_mapping_text(read_file(path))
end

-- A mapping from script text: the mapping, or nil and the problems (file:line each).
function _M.load_string(text, path)
  local found = {}
  local ok, result = dsl.run_sandboxed(text, path, environment(found))
  if not ok then return nil, { result } end
  if type(result) ~= "table" or result ~= found.mapping then
    return nil, { format("%s: a mapping script returns mapping \"name\" { fields = ... }, got %s", path,
      type(result)) }
  end
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local problems = validate(result, path, lines)
  if #problems > 0 then return nil, problems end
  return setmetatable({ name = result.name, path = path, spec = result.body, lines = lines }, Mapping)
end

function _M.load(path)
  local text, err = read_file(path)
  if not text then
    return nil, { format("%s: cannot read the mapping script: %s", path, (tostring(err):gsub("^[^:]*: ", ""))) }
  end
  return _M.load_string(text, path)
end

-- leadq check on a mapping script: true, or false and the problems.
function _M.check(path)
  local m, problems = _M.load(path)
  if m then return true, {} end
  return false, problems
end

---------------------------------------------------------------------------------------------------
-- the column plan
---------------------------------------------------------------------------------------------------

-- Date formats for the plan: a list, or a string with '|' between formats.
local function formats_of(f)
  if f == nil then return nil end
  if type(f) == "string" then return (f:gsub("|", "\n")) end
  return concat(f, "\n")
end

-- The locale of numbers: thousands follows the decimal mark unless given ("," -> ".", "." -> ",").
local function locale(decimal, thousands)
  decimal = decimal or "."
  if thousands == nil then thousands = decimal == "," and "." or "," end
  if thousands == "none" then thousands = nil end
  return decimal, thousands
end

-- The plan and schema for read_csv. `defaults`: the command line's decimal, thousands,
-- date_format, tz (they override the script's own file-wide ones; a field's own settings win).
function Mapping:plan(defaults)
  defaults = defaults or {}
  local spec = self.spec
  local file_decimal = defaults.decimal or spec.decimal
  local file_thousands = defaults.thousands or spec.thousands
  local file_formats = formats_of(defaults.date_format or spec.date_format)
  local file_tz = defaults.tz or spec.tz
  local names = {}
  for name in pairs(spec.fields) do names[#names + 1] = name end
  sort(names, function(a, b)
    if (a == "id") ~= (b == "id") then return a == "id" end
    return a < b
  end)
  local columns, schema = {}, {}
  for _, name in ipairs(names) do
    local f = spec.fields[name]
    if type(f) == "string" then f = { from = f } end
    local c = { name = name, sources = f.first_of or { f.from } }
    if f.take and f.take ~= "value" then c.take = f.take end
    local kind = f.type or (f.split and "tags") or nil
    if f.values then
      local from, to, all_bool = {}, {}, true
      local keys = {}
      for k in pairs(f.values) do keys[#keys + 1] = k end
      sort(keys)
      for _, k in ipairs(keys) do
        local v = f.values[k]
        if type(v) ~= "boolean" then all_bool = false end
        from[#from + 1] = k
        to[#to + 1] = type(v) == "number" and format("%.17g", v) or tostring(v)
      end
      c.map_from, c.map_to, c.fold = from, to, f.any_case and true or false
      if all_bool and kind == nil then kind = "boolean" end
    end
    if f.split then c.tag_separator = f.split end
    local explicit_locale = f.decimal or f.thousands or file_decimal or file_thousands
    if kind == "number" or (kind == nil and explicit_locale) then
      c.numeric = true
      c.decimal, c.thousands = locale(f.decimal or file_decimal, f.thousands or file_thousands)
    end
    if kind == "time" or kind == nil then
      c.date_formats = formats_of(f.format) or file_formats
      local tz = f.tz or file_tz
      if tz then c.tz_minutes = assert(tz_minutes(tz)) end
      if f.format and kind == nil then kind = "time" end
    end
    if kind then schema[name] = kind end
    columns[#columns + 1] = c
  end
  local plan = { columns = columns, keep_rest = spec.keep ~= false, nulls = spec.null }
  local rest = {}
  if file_decimal or file_thousands then
    rest.numeric = true
    rest.decimal, rest.thousands = locale(file_decimal, file_thousands)
  end
  rest.date_formats = file_formats
  if file_tz then rest.tz_minutes = assert(tz_minutes(file_tz)) end
  if next(rest) then plan.rest = rest end
  return plan, schema
end

-- A mapping made of today's two-column map ({ [CRM column] = field }): renames, other columns kept.
function _M.from_renames(renames, path)
  local fields = {}
  for column, field in pairs(renames) do fields[field] = column end
  return setmetatable({ name = "renames", path = path, spec = { fields = fields }, lines = {} }, Mapping)
end

-- The plan for a file with no mapping script, only the command line's locale: every column as it
-- is, numbers and dates read in that locale. nil when there is nothing to apply.
function _M.locale_plan(defaults)
  if not (defaults.decimal or defaults.thousands or defaults.date_format or defaults.tz) then return nil end
  local m = setmetatable({ name = "locale", path = "(command line)", spec = { fields = {} } }, Mapping)
  return (m:plan(defaults))
end

-- Fields with a Lua function: the function runs once per distinct value of the field's source (as
-- a rule's matches test does), never per row. A first read takes those columns' values; the
-- function's answers become value maps, and the C reader applies them in the real read.
-- Returns { field = { [value] = answer } }, or nil and a message.
local MISSING = {}   -- a function's nil: the field is missing for that value

local function function_maps(self, path, opts)
  local fields = {}
  for name, f in pairs(self.spec.fields) do
    if type(f) == "table" and f.fn then fields[#fields + 1] = name end
  end
  if #fields == 0 then return {} end
  if path == "-" then
    return nil, format("%s: a mapping with functions reads its input twice, so not from standard input (fields %s)",
      self.path, concat(fields, ", "))
  end
  local plan = opts.plan
  local first = { columns = {}, keep_rest = false, nulls = plan.nulls }
  for _, c in ipairs(plan.columns) do
    if self.spec.fields[c.name].fn then
      first.columns[#first.columns + 1] = { name = c.name, sources = c.sources, take = c.take }
    end
  end
  local o = { plan = first, schema = {} }
  for _, c in ipairs(first.columns) do o.schema[c.name] = "category" end
  for k, v in pairs(opts) do if k ~= "plan" and k ~= "schema" and k ~= "progress" then o[k] = v end end
  local ok, t, err = pcall(require("leadq").read_csv, path, o)
  if not ok then return nil, tostring(t) end
  if not t then return nil, err end
  local maps = {}
  for _, name in ipairs(fields) do
    local fn, seen, map = self.spec.fields[name].fn, {}, {}
    local values = t:column(name)
    for r = 1, #t do
      local v = values[r]
      if v ~= nil and not seen[v] then
        seen[v] = true
        local fok, answer = pcall(fn, v)
        if not fok then
          return nil, format("%s:%d: field '%s': its fn failed for the value '%s': %s", self.path,
            line_of(self.lines or {}, name), name, v, tostring(answer))
        end
        local at = type(answer)
        if answer ~= nil and at ~= "string" and at ~= "number" and at ~= "boolean" then
          return nil, format("%s:%d: field '%s': its fn returned a %s for the value '%s'; a string, number, "
            .. "boolean or nil expected", self.path, line_of(self.lines or {}, name), name, at, v)
        end
        if answer == nil then answer = MISSING end
        map[v] = answer
      end
    end
    maps[name] = map
  end
  t:close()
  return maps
end

local function read_with(self, reader, path, options, defaults)
  local plan, schema = self:plan(defaults)
  local opts = { plan = plan, schema = schema }
  for k, v in pairs(options or {}) do
    if k == "schema" then
      for name, kind in pairs(v) do schema[name] = kind end
    else
      opts[k] = v
    end
  end
  local maps, merr = function_maps(self, path, opts)
  if not maps then return nil, merr end
  for _, c in ipairs(plan.columns) do
    local map = maps[c.name]
    if map then   -- the function's answers as the column's value map (nil: missing)
      local from, to, all_bool = {}, {}, true
      for v, answer in pairs(map) do
        from[#from + 1] = v
        if type(answer) ~= "boolean" then all_bool = false end
        to[#to + 1] = answer == MISSING and "" or (type(answer) == "number" and format("%.17g", answer) or
          tostring(answer))
      end
      c.map_from, c.map_to, c.fold = from, to, false
      if all_bool and #from > 0 and schema[c.name] == nil then schema[c.name] = "boolean" end
    end
  end
  local ok, t, err = pcall(reader, path, opts)
  if not ok then
    local message = tostring(t)
    local field, rest = message:match("^[^\n]-: field '([^']+)' (reads column .*)$")
    if field then   -- a source no column holds: the script's line, and the file
      return nil, format("%s:%d: field '%s' %s", self.path, line_of(self.lines or {}, field), field,
        (rest:gsub(", which is not in the header", ", which is not in the header of " .. (opts.source or path))))
    end
    return nil, message
  end
  if not t then return nil, err end
  return t
end

-- mapping:read_csv(path [, options [, defaults]]) -> table | nil, message
function Mapping:read_csv(path, options, defaults)
  return read_with(self, require("leadq").read_csv, path, options, defaults)
end

function Mapping:read_events(path, options, defaults)
  return read_with(self, require("leadq").read_events, path, options, defaults)
end

-- The export section: { id = CRM id column, fields = { property = result column }, values = ... } or nil.
function Mapping:export()
  return self.spec.export
end

_M.Mapping = Mapping

return _M
