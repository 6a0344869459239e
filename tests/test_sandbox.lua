-- The rule-script sandbox: nothing of the host is in reach, and loading never touches _G.
local lu = require("luaunit")
local leadq = require("leadq")
local dsl = require("leadq.dsl")

local function load(text, opts)
  return dsl.load_string(text, "s.lua", opts)
end

local function refused(name, expr)
  local spec, problems = load("local x = " .. expr .. "\nreturn model 'm' {}\n")
  lu.assertNil(spec, name .. " should be out of reach")
  lu.assertEquals(problems, { "s.lua:1: the script failed: '" .. name .. "' is not available in rule scripts" })
end

local TestSandbox = {}

for _, name in ipairs({ "os", "io", "load", "loadstring", "loadfile", "dofile", "debug", "setmetatable",
  "getmetatable", "rawset", "rawget", "collectgarbage", "_G", "package", "print" }) do
  TestSandbox["test_no_" .. name] = function() refused(name, name) end
end

function TestSandbox:test_require_outside_the_allow_list()
  local spec, problems = load("local s = require('os')\nreturn model 'm' {}\n")
  lu.assertNil(spec)
  lu.assertEquals(problems, { "s.lua:1: the script failed: module 'os' is not on the allow-list of rule scripts" })
end

function TestSandbox:test_require_on_the_allow_list()
  local spec = load("local j = require('leadq.json')\nreturn model 'm' { description = type(j) }\n",
    { allow = { "leadq.json" } })
  lu.assertNotNil(spec)
  lu.assertEquals(spec.description, "table")
end

function TestSandbox:test_libraries_are_copies()
  local spec = load([[
string.upper = nil
table.insert = nil
math.floor = nil
return model "m" { description = string.lower("OK") .. (string.dump == nil and "-nodump" or "") }
]])
  lu.assertNotNil(spec)
  lu.assertEquals(spec.description, "ok-nodump")
  lu.assertNotNil(string.upper)
  lu.assertNotNil(table.insert)
  lu.assertNotNil(math.floor)
end

function TestSandbox:test_script_globals_stay_in_the_sandbox()
  local before = {}
  for k, v in pairs(_G) do before[k] = v end
  local spec = load([[
helper_value = 41
function helper_fn() return helper_value + 1 end
return model "m" { description = tostring(helper_fn()) }
]])
  lu.assertNotNil(spec)
  lu.assertEquals(spec.description, "42")
  lu.assertNil(rawget(_G, "helper_value"))
  lu.assertNil(rawget(_G, "helper_fn"))
  for k, v in pairs(_G) do lu.assertIs(before[k], v, "global " .. tostring(k) .. " changed") end
  for k in pairs(before) do lu.assertNotNil(rawget(_G, k), "global " .. tostring(k) .. " removed") end
end

function TestSandbox:test_loading_a_file_does_not_touch_G()
  local before = {}
  for k, v in pairs(_G) do before[k] = v end
  local ok = leadq.check("rules/mql.lua")
  lu.assertTrue(ok ~= nil)
  for k, v in pairs(_G) do lu.assertIs(before[k], v, "global " .. tostring(k) .. " changed") end
end

function TestSandbox:test_bytecode_is_refused()
  local spec, problems = dsl.load_string(string.dump(function() return 1 end), "b.lua")
  lu.assertNil(spec)
  lu.assertStrContains(problems[1], "b.lua")
end

function TestSandbox:test_rule_functions_run_in_the_sandbox()
  local spec = load([[
return model "m" {
  rules = {
    rule "ESCAPE" { points = 5, when = function(lead) return os.time() > 0 end },
    rule "WRITE" { points = 5, when = function(lead) lead.title = "x"; return true end },
    rule "OK" { points = 1, when = function(lead) return lead.title ~= nil and #lead.title > 3 end },
  },
}
]])
  lu.assertNotNil(spec)
  local m = require("leadq.model").new(spec)
  local r = m:score_one({ title = "Head of Growth" })
  lu.assertEquals(r.total, 1)
  lu.assertEquals(#r.errors, 2)
  lu.assertStrContains(r.errors[1], "rule 'ESCAPE' failed for lead given: ")
  lu.assertStrContains(r.errors[1], "'os' is not available in rule scripts")
  lu.assertStrContains(r.errors[2], "rule 'WRITE' failed for lead given: ")
  lu.assertStrContains(r.errors[2], "a lead is read-only")
end

-- Small limits, so the tests are quick; the defaults are checked through `leadq check`.
local SMALL = { load_instructions = 1e5, load_memory_kb = 8 * 1024, call_instructions = 1e4, rep_bytes = 1e6 }

function TestSandbox:test_an_endless_loop_at_load_is_stopped_at_its_line()
  local limits = SMALL
  local before = debug.gethook()
  local spec, problems = load("local n = 0\nwhile true do n = n + 1 end\n", { limits = limits })
  lu.assertNil(spec)
  lu.assertEquals(problems, { "s.lua:2: the script failed: it ran past its limit of 100000 Lua instructions " ..
    "while loading (an endless loop?)" })
  -- the script's own pcall cannot catch it and go on
  spec, problems = load("while true do pcall(function() while true do end end) end\n", { limits = limits })
  lu.assertNil(spec)
  lu.assertStrContains(problems[1], "s.lua:1: the script failed: it ran past its limit of 100000")
  -- nor does the load's hook outlive it
  lu.assertEquals(debug.gethook(), before)
end

function TestSandbox:test_heap_growth_at_load_is_bounded()
  -- small: a freed block of megabytes would raise glibc's mmap threshold, and test_table's
  -- resident-memory check would then see freed tables stay resident
  local limits = { load_instructions = 1e9, load_memory_kb = 64 }
  local before = debug.gethook()
  local spec, problems = load("local t = {}\nfor i = 1, 1e8 do t[i] = { i } end\n", { limits = limits })
  lu.assertNil(spec)
  lu.assertEquals(problems, { "s.lua:2: the script failed: it grew the heap past its limit of 64 kB while loading" })
  spec, problems = load("local s = 'x'\nfor _ = 1, 40 do s = s .. s end\n", { limits = limits })
  lu.assertNil(spec)
  lu.assertEquals(problems, { "s.lua:2: the script failed: it grew the heap past its limit of 64 kB while loading" })
  -- the script's garbage outlives its pcall: the hook that saw it must not raise after, nor stay set
  lu.assertEquals(debug.gethook(), before)
  lu.assertNotNil(load("return model 'm' {}\n", { limits = limits }))
  collectgarbage()
end

function TestSandbox:test_string_rep_is_bounded()
  local _, problems = load("local s = string.rep('ab', 1e9)\n")
  lu.assertEquals(problems, { "s.lua:1: the script failed: string.rep would make 2000000000 bytes, more than " ..
    "the 16777216 a rule script may" })
  local spec = load("local s = string.rep('ab', 3, ',')\nreturn model 'm' { description = s }\n")
  lu.assertNotNil(spec)
end

function TestSandbox:test_a_rule_function_that_loops_is_stopped_for_that_lead()
  local spec = load([[
return model "m" {
  rules = {
    rule "SPIN" { points = 2, when = function(lead)
      if lead.title == "loop" then
        while true do end
      end
      return true
    end },
    rule "HEAVY" { points = function(lead) local n = 0; for _ = 1, 1e9 do n = n + 1 end; return n end,
      when = { title = "heavy" } },
  },
}
]])
  lu.assertNotNil(spec)
  local saved = dsl.LIMITS.call_instructions
  dsl.LIMITS.call_instructions = SMALL.call_instructions
  local ok, err = pcall(function()
    local m = require("leadq.model").new(spec)
    local res, errs = m:score(leadq.table({ { id = "A1", title = "ok" }, { id = "A2", title = "loop" },
      { id = "A3", title = "heavy" } }))
    lu.assertEquals(res:column("total"), { 2, 0, 2 })
    lu.assertEquals(errs.count, 2)
    lu.assertEquals(errs[1], "rule 'SPIN' failed for lead 'A2' (row 2): s.lua:5: the function ran past its " ..
      "limit of 10000 Lua instructions for one lead (an endless loop?)")
    lu.assertEquals(errs[2], "rule 'HEAVY' failed for lead 'A3' (row 3): s.lua:9: the function ran past its " ..
      "limit of 10000 Lua instructions for one lead (an endless loop?)")
    local r = m:score_one({ title = "loop" })
    lu.assertStrContains(r.errors[1], "rule 'SPIN' failed for lead given: s.lua:5: the function ran past")
    lu.assertEquals(m:score_one({ title = "ok" }).total, 2)
    -- the bound is for rule functions only: other code, after a call that was stopped, runs on
    local n = 0
    for i = 1, 1e6 do n = n + i end
    lu.assertEquals(n, 500000500000)
    -- a host's own hook stays the host's, and the calls are bounded still
    local function host_hook() end
    debug.sethook(host_hook, "", 1e9)
    local hooked, herrs = m:score(leadq.table({ { id = "B1", title = "loop" } }))
    local host_after = debug.gethook()
    debug.sethook()
    lu.assertEquals(hooked:column("total"), { 0 })
    lu.assertStrContains(herrs[1], "rule 'SPIN' failed for lead 'B1' (row 1): s.lua:5: the function ran past")
    lu.assertIs(host_after, host_hook)
  end)
  dsl.LIMITS.call_instructions = saved
  if not ok then error(err, 0) end
end

-- A model made from tables, with no script load: under LuaJIT its function was compiled, and
-- compiled code calls no hooks, so the loop ran on for ever.
function TestSandbox:test_a_looping_function_of_a_model_made_from_tables_is_stopped()
  local saved = dsl.LIMITS.call_instructions
  dsl.LIMITS.call_instructions = SMALL.call_instructions
  local ok, err = pcall(function()
    local m = leadq.model(dsl.model "m" { rules = { dsl.rule "SPIN" { points = 1, when = function(lead)
      local n = 0
      if lead.t == "loop" then while true do n = n + 1 end end
      return true
    end } } })
    local res, errs = m:score(leadq.table({ { t = "a" }, { t = "loop" } }))
    lu.assertEquals(res:column("total"), { 1, 0 })
    lu.assertStrContains(errs[1], "rule 'SPIN' failed for lead at row 2: ")
    lu.assertStrContains(errs[1], "the function ran past its limit of 10000 Lua instructions for one lead")
  end)
  dsl.LIMITS.call_instructions = saved
  if not ok then error(err, 0) end
end

function TestSandbox:test_environment_has_the_listed_names_only()
  local env = dsl.environment()
  for _, name in ipairs(dsl.SANDBOX_NAMES) do lu.assertNotNil(rawget(env, name), name) end
  lu.assertErrorMsgContains("'os' is not available in rule scripts", function() return env.os end)
  lu.assertErrorMsgContains("unknown name 'pars' (did you mean 'pairs'?)", function() return env.pars end)
end

return { TestSandbox = TestSandbox }
