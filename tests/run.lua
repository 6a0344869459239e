-- Runs every tests/test_*.lua with LuaUnit under the Lua running this file.
-- Usage: <lua> tests/run.lua VARIANT [pattern]
-- Prints "VARIANT: N passed, N failed" last.
local variant = assert(arg[1], "usage: run.lua VARIANT [pattern]")
local only = arg[2]
package.path = "lua/?.lua;lua/?/init.lua;tests/?.lua;" .. package.path
package.cpath = "build/lib/" .. variant .. "/?.so"
LEADQ_VARIANT = variant  -- read by suites that size their work (sanitizers are slow)

local lu = require("luaunit")

local files = {}
local ls = io.popen("ls tests/test_*.lua 2>/dev/null")
for name in ls:lines() do
  if not only or name:find(only, 1, true) then files[#files + 1] = name end
end
ls:close()
table.sort(files)

local suites = {}
for _, file in ipairs(files) do
  local chunk = assert(loadfile(file))
  local suite = chunk()
  for name, value in pairs(suite) do
    if type(name) == "string" and name:match("^Test") then
      suites[#suites + 1] = { name, value }
    end
  end
end
table.sort(suites, function(a, b) return a[1] < b[1] end)

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
runner:runSuiteByInstances(suites)
local r = runner.result
local failed = r.failureCount + r.errorCount
local passed = r.runCount - failed - (r.skippedCount or 0)
print(string.format("%s: %d passed, %d failed", variant, passed, failed))
os.exit(failed == 0 and 0 or 1)
