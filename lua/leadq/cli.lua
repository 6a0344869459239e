-- leadq.cli: the frame of the command-line tool: option parsing, help, usage errors and the helpers
-- commands share. build/leadq calls require("leadq.cli").main(arg), which returns the exit status:
-- 0 done, 1 failed (a plain sentence on stderr: "leadq: ..."), 2 bad usage.
--
-- Each command is a file, lua/leadq/cli/NAME.lua (named in COMMAND_MODULES, below), that
-- adds its table to cli.commands, its flags beside its code:
--
--   cli.commands.funnel = {
--     summary = "funnel volumes and conversion by stage",        -- one line for `leadq help`
--     usage = "funnel --transitions CSV [--by FIELD]",
--     options = {                                               -- every flag the command takes
--       transitions = { type = "string", required = true, help = "the transitions CSV" },
--       by = "list",                                            -- shorthand: just the type
--     },
--     args = "FILE...",          -- optional: positional arguments allowed (opts.args), named so
--     run = function(opts, out)  -- opts.transitions, opts.by = { ... }, opts.args = { ... }
--       out.print("...")          -- a line to stdout; out.error(line) writes one to stderr
--       return 0                  -- exit status; or nil, "message" -> "leadq: message", status 1
--     end,
--   }
--
-- Option types: "string", "number", "integer", "flag" (takes no value: true when given) and
-- "list" (may be repeated: a list of the values in order). Flags are written --name value or
-- --name=value; "--" ends the flags. Unknown flags, missing values, wrong types, a flag given twice
-- and missing required flags are usage errors (status 2) reported before run is called.

local format = string.format
local concat = table.concat
local floor = math.floor
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local xpcall, require, next = xpcall, require, next

local _M = { _VERSION = "0.1.0", commands = {} }

local OPTION_TYPES = { string = true, number = true, integer = true, flag = true, list = true }
local SPEC_KEYS = { summary = true, usage = true, options = true, args = true, run = true, help = true,
                    hidden = true }

---------------------------------------------------------------------------------------------
-- Helpers commands may share

local util = require("leadq.util")
local thousands = util.thousands   -- 1234567 -> "1,234,567"
_M.thousands = thousands

_M.megabytes = util.megabytes   -- 1234 -> "1.2 kB", 5600000 -> "5.6 MB"

-- A failed run's message on stderr; returns status 1 (a run that failed) unless told 2 (bad usage).
-- A message of many lines (every problem of a model) is shown once per distinct line, at most 25.
local MAX_LINES = 25

function _M.fail(out, message, status)
  local seen, lines = {}, {}
  if not os.getenv("LEADQ_DEBUG") then message = _M.without_internal_position(tostring(message)) end
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

local distance = util.distance   -- for "did you mean"

local function closest(word, candidates)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    if d <= 2 and d < #c and (not best_d or d < best_d or (d == best_d and c < best)) then
      best, best_d = c, d
    end
  end
  return best
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function command_names()
  local names = {}
  for name, spec in pairs(_M.commands) do
    if not spec.hidden then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- A file's size in bytes, or nil when it cannot be opened.
function _M.file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size
end

-- "./build/../x/" -> "x": fewer surprises in what we print.
local function normalize(path)
  local absolute = path:sub(1, 1) == "/"
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  local out = concat(parts, "/")
  if absolute then return "/" .. out end
  return out == "" and "." or out
end
_M.normalize = normalize

-- The folder holding lua/ and rules/: two levels above this file.
local function project_root()
  local source = debug.getinfo(1, "S").source
  local path = source:sub(1, 1) == "@" and source:sub(2) or "lua/leadq/cli.lua"
  local dir = path:match("^(.*)/lua/leadq/[^/]*$")
  if dir then return normalize(dir) end
  return "."
end
_M.project_root = project_root

local function readable(path)
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  return true
end

-- The folder of the shipped rules (rules/*.lua and rules/lists/), found from this file's place:
-- installed (luarocks or make install), they sit beside the modules as leadq/rules/, on the Lua
-- path like any module; in a source tree they are rules/ beside lua/. Nil when neither is there.
local function shipped_rules()
  local source = debug.getinfo(1, "S").source
  local path = source:sub(1, 1) == "@" and source:sub(2) or "lua/leadq/cli.lua"
  local here = path:match("^(.*)/[^/]*$") or "."
  for _, dir in ipairs { here .. "/rules", here .. "/../../rules" } do
    if readable(dir .. "/mql.lua") then return normalize(dir) end
  end
  return nil
end
_M.shipped_rules = shipped_rules

-- A rule file as given, or a shipped model named the short way from any folder: "mql", "mql.lua"
-- or "rules/mql.lua" that names no file here is the shipped rules/mql.lua. A file that exists wins.
local function rule_file(given)
  if readable(given) then return given end
  local name = given:match("^rules/([%w_]+)%.lua$") or given:match("^([%w_]+)%.lua$") or given:match("^([%w_]+)$")
  local dir = name and shipped_rules()
  if dir and readable(dir .. "/" .. name .. ".lua") then return dir .. "/" .. name .. ".lua" end
  return given
end
_M.rule_file = rule_file

-- --rules as given ("mql,sql", or the flag repeated): the rule files, shipped models found by name.
function _M.rule_files(value)
  local files = {}
  for i, item in ipairs(util.split_list(value) or {}) do files[i] = rule_file(item) end
  return files
end

---------------------------------------------------------------------------------------------
-- Option parsing

local function option_spec(spec, name)
  local o = spec.options and spec.options[name]
  if o == nil then return nil end
  if type(o) == "string" then return { type = o } end
  return o
end

local function option_names(spec)
  return sorted_keys(spec.options or {})
end

-- Checks a command table once, so a mistake in it shows up as a clear message.
local function check_spec(name, spec)
  if type(spec) ~= "table" then return format("command '%s' is not a table", name) end
  for k in pairs(spec) do
    if not SPEC_KEYS[k] then return format("command '%s': unknown key '%s'", name, tostring(k)) end
  end
  if type(spec.run) ~= "function" then return format("command '%s' has no run function", name) end
  for oname in pairs(spec.options or {}) do
    local o = option_spec(spec, oname)
    if type(o) ~= "table" or not OPTION_TYPES[o.type] then
      return format("command '%s': option '%s' needs a type (string, number, integer, flag or list)",
        name, tostring(oname))
    end
  end
  return nil
end

local function convert(name, kind, value)
  if kind == "number" or kind == "integer" then
    local n = tonumber(value)
    if not n or n ~= n or n == 1 / 0 or n == -1 / 0 then
      return nil, format("--%s expects a %s, got '%s'", name, kind == "integer" and "whole number" or "number",
        value)
    end
    if kind == "integer" and n ~= floor(n) then
      return nil, format("--%s expects a whole number, got '%s'", name, value)
    end
    return n
  end
  return value
end

-- argv: the words after the command. Returns opts (with opts.args) or nil, message, wants_help.
function _M.parse_options(spec, argv, first)
  local opts, args = {}, {}
  local i, n = first or 1, #argv
  local only_args = false
  while i <= n do
    local word = argv[i]
    if only_args or word == "-" or word:sub(1, 1) ~= "-" then
      args[#args + 1] = word
    elseif word == "--" then
      only_args = true
    elseif word == "-h" or word == "--help" then
      return nil, nil, true
    else
      local name, value = word:match("^%-%-([^=]+)=(.*)$")
      if not name then name = word:match("^%-%-(.+)$") end
      if not name then
        return nil, format("'%s' is not an option: options are written --name", word)
      end
      local o = option_spec(spec, name)
      if not o then
        local guess = closest(name, option_names(spec))
        if guess then return nil, format("unknown option --%s (did you mean --%s?)", name, guess) end
        if not spec.options or next(spec.options) == nil then
          return nil, format("unknown option --%s: this command takes no options", name)
        end
        return nil, format("unknown option --%s", name)
      end
      if o.type == "flag" then
        if value ~= nil then return nil, format("--%s takes no value", name) end
        value = true
      elseif value == nil then
        local nxt = argv[i + 1]
        if nxt == nil or (nxt:sub(1, 2) == "--" and #nxt > 2) then
          return nil, format("--%s needs a value", name)
        end
        value = nxt
        i = i + 1
      end
      local converted, err = convert(name, o.type, value)
      if converted == nil then return nil, err end
      if o.type == "list" then
        opts[name] = opts[name] or {}
        opts[name][#opts[name] + 1] = converted
      elseif opts[name] ~= nil then
        return nil, format("--%s is given twice", name)
      else
        opts[name] = converted
      end
    end
    i = i + 1
  end
  if #args > 0 and not spec.args then
    return nil, format("unexpected argument '%s'", args[1])
  end
  for _, oname in ipairs(option_names(spec)) do
    local o = option_spec(spec, oname)
    if opts[oname] == nil then
      if o.required then return nil, format("missing --%s", oname) end
      if o.default ~= nil then opts[oname] = o.default end
    end
  end
  opts.args = args
  return opts
end

---------------------------------------------------------------------------------------------
-- Help

local function overview()
  local lines = {
    "usage: leadq COMMAND [options]",
    "",
    "commands:",
  }
  local names = command_names()
  local width = 0
  for _, name in ipairs(names) do if #name > width then width = #name end end
  for _, name in ipairs(names) do
    lines[#lines + 1] = format("  %-" .. width .. "s  %s", name, _M.commands[name].summary or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'leadq help COMMAND' (or 'leadq COMMAND --help') describes one command."
  return lines
end

local function command_help(name, spec)
  local lines = { "usage: leadq " .. (spec.usage or name) }
  if spec.summary then
    lines[#lines + 1] = ""
    lines[#lines + 1] = spec.summary
  end
  if spec.help then
    lines[#lines + 1] = ""
    for line in (spec.help .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  end
  local names = option_names(spec)
  if #names > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "options:"
    local width = 0
    for _, oname in ipairs(names) do if #oname > width then width = #oname end end
    for _, oname in ipairs(names) do
      local o = option_spec(spec, oname)
      local notes = {}
      if o.help then notes[#notes + 1] = o.help end
      if o.required then notes[#notes + 1] = "(required)" end
      if o.default ~= nil then notes[#notes + 1] = "(default " .. tostring(o.default) .. ")" end
      if o.type == "list" then notes[#notes + 1] = "(may be repeated)" end
      lines[#lines + 1] = format("  --%-" .. width .. "s  %s", oname, concat(notes, " "))
    end
  end
  return lines
end

local function print_lines(write, lines)
  for _, line in ipairs(lines) do write(line) end
end

---------------------------------------------------------------------------------------------
-- main

local function default_out()
  return {
    print = function(line) io.stdout:write(line, "\n") end,
    error = function(line) io.stderr:write(line, "\n") end,
  }
end

local function usage_error(out, name, spec, message)
  out.error(format("leadq: %s%s", name and (name .. ": ") or "", message))
  if spec then
    out.error("usage: leadq " .. (spec.usage or name))
    out.error(format("'leadq help %s' for more.", name))
  else
    out.error("'leadq help' lists the commands.")
  end
  return 2
end

-- "…/lua/leadq/model.lua:300: score: …" -> "score: …": where in leadq's own files an error was
-- raised says nothing to a user (LEADQ_DEBUG=1 shows it). A rule file's position stays.
local function without_internal_position(message)
  local path, rest = message:match("^([^\n:]*%.lua):%d+: (.*)$")
  if path and util.is_internal(path) then return rest end   -- leadq's modules, as util.raise sees them
  return message
end
_M.without_internal_position = without_internal_position

local function traceback(err)
  if type(err) ~= "string" then err = tostring(err) end
  if os.getenv("LEADQ_DEBUG") then return debug.traceback(err, 2) end
  return without_internal_position(err)
end

-- The commands, each a file lua/leadq/cli/NAME.lua that adds itself to _M.commands. Loaded by main,
-- not while this module loads: a command module requires leadq.cli, and may be required first (a
-- test, a script) without the two loading each other in a loop (an error under Lua 5.1 and LuaJIT).
local COMMAND_MODULES = { "version", "gen", "load", "demo", "score", "explain", "check", "funnel", "evaluate",
                          "compare", "fit", "profile", "report", "state" }

function _M.load_commands()
  for _, name in ipairs(COMMAND_MODULES) do require("leadq.cli." .. name) end
  return _M.commands
end

-- main(argv [, out]): argv as the launcher's `arg` (argv[1] is the command); out = { print = f,
-- error = f } receives whole lines (defaults: stdout and stderr). Returns the exit status.
function _M.main(argv, out)
  argv = argv or {}
  out = out or default_out()
  _M.load_commands()
  local words = {}
  for i = 1, #argv do words[i] = tostring(argv[i]) end
  local name = words[1]

  if name == nil then
    print_lines(out.error, overview())
    return 2
  end
  if name == "help" or name == "--help" or name == "-h" then
    local topic = words[2]
    if topic == nil then
      print_lines(out.print, overview())
      return 0
    end
    local spec = _M.commands[topic]
    if not spec then
      local guess = closest(topic, command_names())
      return usage_error(out, nil, nil, format("unknown command '%s'%s", topic,
        guess and format(" (did you mean '%s'?)", guess) or ""))
    end
    print_lines(out.print, command_help(topic, spec))
    return 0
  end
  if name == "--version" then name = "version" end
  local spec = _M.commands[name]
  if not spec then
    if name:sub(1, 1) == "-" then
      return usage_error(out, nil, nil, format("'%s' is not a command: the command comes first", name))
    end
    local guess = closest(name, command_names())
    return usage_error(out, nil, nil, format("unknown command '%s'%s", name,
      guess and format(" (did you mean '%s'?)", guess) or ""))
  end
  local bad_spec = check_spec(name, spec)
  if bad_spec then
    out.error("leadq: " .. bad_spec)
    return 1
  end

  local opts, err, wants_help = _M.parse_options(spec, words, 2)
  if wants_help then
    print_lines(out.print, command_help(name, spec))
    return 0
  end
  if not opts then return usage_error(out, name, spec, err) end

  local ok, status, message = xpcall(spec.run, traceback, opts, out)
  if not ok then
    out.error("leadq: " .. tostring(status))
    return 1
  end
  if status == nil or status == false then
    if message ~= nil then out.error("leadq: " .. tostring(message)) end
    return 1
  end
  if status == true then return 0 end
  if type(status) ~= "number" then return 0 end
  return floor(status)
end

return _M
