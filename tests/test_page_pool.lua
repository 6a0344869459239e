-- The page pool (csrc/page_pool.c), which a command's process turns on (core.keep_freed_memory): big
-- blocks cut from one reserved range, freed pages handed to the next block, growth by moving pages.
-- It is process-wide, so each case runs in a process of its own, the same work with the pool on and
-- off (keep_freed_memory(false)): the answers must be the same bytes, and the pool's process must
-- need less memory at its peak. tests/fuzz/fuzz_pool.c checks the pool's own bookkeeping.
local lu = require("luaunit")
local gen = require("leadq.gen")
local helpers = require("helpers")

local M = {}

local BUILD = os.getenv("LEADQ_BUILD") or "build"
local INTERPRETER = { ["lua5.4"] = "lua5.4", ["lua5.3"] = "lua5.3", luajit = "luajit" }

-- The body runs after the pool is set (POOL: true or false) with the core of this variant; what it
-- returns is written to OUT, then the process's peak memory (kB) is printed. -> text, peak.
local function in_process(body, pool)
  local lua = INTERPRETER[LEADQ_VARIANT]
  if not lua then lu.skip("the pool is off under the sanitizers (their heap watches the big blocks)") end
  local dir = helpers.tmpdir()
  local script, out = dir .. "/run.lua", dir .. "/out"
  helpers.write(script, string.format([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = %q .. "/lib/%s/?.so;" .. package.cpath
local core = require("leadq.core")
assert(core.keep_freed_memory(%s) or not %s, "the pool did not turn on")
local OUT = %q
local text = (function() %s end)()
local f = assert(io.open(OUT, "wb"))
f:write(text)
f:close()
print(io.open("/proc/self/status"):read("a"):match("VmHWM:%%s*(%%d+)"))
]], BUILD, LEADQ_VARIANT, tostring(pool), tostring(pool), out, body))
  local p = assert(io.popen(lua .. " " .. script .. " 2>&1"))
  local printed = p:read("a")
  p:close()
  local peak = tonumber(printed:match("^(%d+)%s*$"))
  lu.assertNotNil(peak, "the run failed: " .. printed)
  local text = helpers.read(out)
  helpers.remove_dir(dir)
  return text, peak
end

local function linux_only()
  local f = io.open("/proc/self/status")
  if not f then lu.skip("no /proc: the pool is Linux's (mremap)") end
  f:close()
end

local sample
local function get_sample()
  if sample then return sample end
  local dir = helpers.tmpdir()
  assert(gen.generate { leads = 100000, seed = 3, out = dir })
  sample = dir
  return sample
end

M.TestPagePool = {}

-- The funnel from CSV files frees the transitions table after its load: the leads table and the
-- funnel's arrays take its pages. Same bytes, and a lower peak.
function M.TestPagePool.test_funnel_same_answer_less_memory()
  linux_only()
  local dir = get_sample()
  local body = string.format([[
return assert(require("leadq.funnel").run({ transitions = %q, leads = %q, by = "source,country,seniority",
  format = "csv", threads = 2 }))]], dir .. "/transitions.csv", dir .. "/leads.csv")
  local with_pool, peak_with = in_process(body, true)
  local without, peak_without = in_process(body, false)
  lu.assertTrue(#with_pool > 1000)
  lu.assertEquals(with_pool, without)
  -- under LuaJIT the state's allocator is LuaJIT's own, whose arenas hand the freed table's blocks on
  -- at this size already: the same peak there (the command line runs Lua 5.4, on the C heap)
  if LEADQ_VARIANT ~= "luajit" then
    lu.assertTrue(peak_with < peak_without * 0.93,
      string.format("peak with the pool %d kB, without %d kB", peak_with, peak_without))
  end
end

-- Columns that grow (a read whose first rows made the row estimate low, tables appended to), are
-- closed and made again: every value as the C heap's blocks hold them.
function M.TestPagePool.test_grown_columns_keep_their_values()
  linux_only()
  local dir = helpers.tmpdir()
  local lines = { "id,name,score,at" }
  for i = 1, 60000 do   -- long names first: the estimate from the sampled rows is far too few rows
    local name = i <= 10000 and string.rep("n", 200) .. i or "n" .. (i % 97)
    lines[#lines + 1] = string.format("L%d,%s,%d,2026-01-%02dT10:00:00Z", i, name, i * 7 % 1000, i % 28 + 1)
  end
  local path = dir .. "/grow.csv"
  helpers.write(path, table.concat(lines, "\n") .. "\n")
  local body = string.format([[
local core = require("leadq.core")
local parts = {}
for round = 1, 3 do
  local t = core.read_csv(%q)
  local rows = {}
  for i = 1, 20000 * round do rows[i] = t:row(i) end
  t:append(rows)   -- grown past what the read made
  t:append(rows)
  for _, name in ipairs(t:names()) do
    local col = t:column(name)
    local acc, n = 0, #col
    for i = 1, n, 997 do acc = (acc * 31 + #tostring(col[i]) + i) %% 1000000007 end
    parts[#parts + 1] = string.format("%%s %%d %%s %%s %%d", name, n, tostring(col[1]), tostring(col[n]), acc)
  end
  t:close()
  collectgarbage()
end
return table.concat(parts, "\n")]], path)
  local with_pool = in_process(body, true)
  local without = in_process(body, false)
  helpers.remove_dir(dir)
  lu.assertStrContains(with_pool, "id 100000 L1 L20000")
  lu.assertEquals(with_pool, without)
end

return M
