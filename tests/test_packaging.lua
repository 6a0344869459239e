-- Packaging: the rockspec builds what the Makefile builds, and installs with `luarocks make`.
local lu = require("luaunit")

local function lines_of(command)
  local out = {}
  local p = io.popen(command)
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- A rockspec is Lua assigning globals: run it with its own environment (5.1 and 5.2+ ways).
local function rockspec()
  local env = {}
  local src = read("rockspec/leadq-scm-1.rockspec")
  local chunk
  if setfenv then
    chunk = assert(loadstring(src, "rockspec"))
    setfenv(chunk, env)
  else
    chunk = assert(load(src, "rockspec", "t", env))
  end
  chunk()
  return env
end

local TestPackaging = {}

function TestPackaging:test_rockspec_compiles_every_c_source()
  local spec = rockspec()
  local listed = {}
  for _, src in ipairs(spec.build.modules["leadq.core"].sources) do listed[src] = true end
  for _, src in ipairs(lines_of("ls csrc/*.c")) do
    lu.assertTrue(listed[src], "rockspec/leadq-scm-1.rockspec does not compile " .. src)
  end
  for src in pairs(listed) do
    lu.assertNotNil(io.open(src), "rockspec/leadq-scm-1.rockspec lists a missing file " .. src)
  end
end

function TestPackaging:test_rockspec_installs_every_lua_module()
  local spec = rockspec()
  for _, path in ipairs(lines_of("ls lua/leadq/*.lua")) do
    local name = path:match("^lua/(.-)%.lua$"):gsub("/", ".")
    if name == "leadq.init" then name = "leadq" end
    lu.assertEquals(spec.build.modules[name], path, "rockspec: module " .. name)
  end
end

-- The real thing, once, under Lua 5.4: luarocks builds and installs into a private tree.
function TestPackaging:test_luarocks_make_installs_a_working_module()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("luarocks runs once, under the lua5.4 variant") end
  if os.execute("command -v luarocks >/dev/null 2>&1") ~= true then lu.fail("luarocks is not installed") end
  local tree = os.tmpname()
  os.remove(tree)
  local log = tree .. ".log"
  -- luarocks builds in the folder it is given: a copy, so no object file lands in the checkout.
  local ok = os.execute(string.format(
    "mkdir -p %s/src && cp -r csrc lua rockspec %s/src && cd %s/src && " ..
    "luarocks --lua-version 5.4 make --tree %s rockspec/leadq-scm-1.rockspec >%s 2>&1",
    tree, tree, tree, tree, log))
  local output = read(log)
  os.remove(log)
  lu.assertTrue(ok == true, "luarocks make failed:\n" .. output)
  local probe = lines_of(string.format(
    "lua5.4 -e 'package.path=\"%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua\"; " ..
    "package.cpath=\"%s/lib/lua/5.4/?.so\"; local l = require(\"leadq\"); " ..
    "print(type(l.read_csv), require(\"leadq.core\").version)' 2>&1", tree, tree, tree))
  os.execute("rm -rf " .. tree)
  lu.assertEquals(probe[1], "function\t" .. require("leadq.core").version)
end

-- Lua files load only with the C module of their own build (an nginx reload keeps the old core.so):
-- a module of another interface makes require("leadq") raise, saying what to do.
function TestPackaging:test_lua_files_refuse_a_c_module_of_another_build()
  local core = require("leadq.core")
  local saved_core, saved_leadq = package.loaded["leadq.core"], package.loaded["leadq"]
  package.loaded["leadq.core"] = setmetatable({ interface = core.interface - 1 }, { __index = core })
  package.loaded["leadq"] = nil
  local ok, err = pcall(require, "leadq")
  package.loaded["leadq.core"], package.loaded["leadq"] = saved_core, saved_leadq
  lu.assertFalse(ok)
  lu.assertStrContains(err, "does not match these Lua files")
  lu.assertStrContains(err, "full restart")
  lu.assertEquals(require("leadq").table, core.table)   -- the real one is back
end

-- core.now: a monotonic wall clock finer than a millisecond (the CLI's and the bench's timings of
-- several threads), which goes on while the process sleeps, unlike os.clock.
function TestPackaging:test_core_now_is_a_fine_monotonic_wall_clock()
  local core = require("leadq.core")
  local t0 = core.now()
  lu.assertEquals(type(t0), "number")
  local last, steps = t0, 0
  for _ = 1, 100000 do
    local t = core.now()
    lu.assertTrue(t >= last, "the clock went back")
    if t > last then steps = steps + 1 end
    last = t
  end
  lu.assertTrue(steps > 10, "no step finer than the loop: " .. steps)
  local c0 = os.clock()
  os.execute("sleep 0.2")
  local slept, cpu = core.now() - last, os.clock() - c0
  lu.assertTrue(slept >= 0.19 and slept < 5, "slept " .. slept .. " s")
  lu.assertTrue(cpu < slept)
end

return { TestPackaging = TestPackaging }
