-- Runs every tests/test_*.lua with LuaUnit under the Lua running this file.
-- Usage: <lua> tests/run.lua VARIANT [pattern]
-- Prints "VARIANT: N passed, N failed" last.
local variant = assert(arg[1], "usage: run.lua VARIANT [pattern]")
local only = arg[2]
package.path = "lua/?.lua;lua/?/init.lua;tests/?.lua;" .. package.path
-- VARIANT "installed" (luarocks test): the core this Lua finds where it was installed.
if variant ~= "installed" then
  package.cpath = (os.getenv("LEADQ_BUILD") or "build") .. "/lib/" .. variant .. "/?.so"
end
LEADQ_VARIANT = variant  -- read by suites that size their work (sanitizers are slow)

local lu = require("luaunit")

local files = {}
local ls = io.popen("ls tests/test_*.lua 2>/dev/null")
for name in ls:lines() do
  if not only or name:find(only, 1, true) then files[#files + 1] = name end
end
ls:close()
table.sort(files)

-- A suite that fails to load counts as one failure; the others still run.
local suites = {}
local load_failures = 0
for _, file in ipairs(files) do
  local chunk, err = loadfile(file)
  local ok, suite = false, err
  if chunk then ok, suite = pcall(chunk) end
  if ok and type(suite) == "table" then
    for name, value in pairs(suite) do
      if type(name) == "string" and name:match("^Test") then
        suites[#suites + 1] = { name, value }
      end
    end
  else
    print(string.format("%s: could not load: %s", file, tostring(suite)))
    load_failures = load_failures + 1
  end
end
table.sort(suites, function(a, b) return a[1] < b[1] end)

-- Nothing leadq does may leave a global behind: compare _G before and after the run.
local globals_before = {}
for k in pairs(_G) do globals_before[k] = true end
globals_before.testNames = true   -- LuaUnit's own runner leaks this one, not us

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
runner:runSuiteByInstances(suites)
local r = runner.result
local failed = r.failureCount + r.errorCount
local passed = r.runCount - failed   -- LuaUnit's runCount already leaves skipped tests out
failed = failed + load_failures
local leaked = {}
for k in pairs(_G) do
  if not globals_before[k] then leaked[#leaked + 1] = tostring(k) end
end
if #leaked > 0 then
  table.sort(leaked)
  print("globals left behind by the run: " .. table.concat(leaked, ", "))
  failed = failed + 1
else
  passed = passed + 1   -- the globals check is a test of its own
end
print(string.format("%s: %d passed, %d failed", variant, passed, failed))
os.exit(failed == 0 and 0 or 1)
