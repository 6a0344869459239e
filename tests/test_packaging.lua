-- Packaging: the rockspec lists what the Makefile builds and installs, one version everywhere.
-- tests/test_install.lua installs for real (luarocks make, make install) and runs what it installed.
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

-- Every Lua file under lua/leadq/, subfolders too, is a module of the rock, and the rock lists only
-- modules of leadq whose file is there (no top-level helper such as the command's script).
function TestPackaging:test_rockspec_installs_every_lua_module()
  local spec = rockspec()
  local files = lines_of("find lua/leadq -name '*.lua' | sort")
  lu.assertTrue(#files > 10, "found " .. #files .. " Lua files")
  for _, path in ipairs(files) do
    local name = path:match("^lua/(.-)%.lua$"):gsub("/", "."):gsub("%.init$", "")
    lu.assertEquals(spec.build.modules[name], path,
      "rockspec/leadq-scm-1.rockspec does not install " .. path .. " as module " .. name)
  end
  for name, src in pairs(spec.build.modules) do
    lu.assertTrue(name == "leadq" or name:sub(1, 6) == "leadq.", "rockspec: module " .. name .. " is not leadq's")
    if type(src) == "string" then
      lu.assertNotNil(io.open(src), "rockspec/leadq-scm-1.rockspec lists a missing file " .. src)
    end
  end
end

-- The command and every shipped rule and list are installed, the rules as leadq/rules/ beside the
-- modules (where the command finds them).
function TestPackaging:test_rockspec_installs_the_command_and_the_shipped_rules()
  local spec = rockspec()
  lu.assertEquals(spec.build.install.bin, { leadq = "lua/leadq/cli/leadq" })
  local listed = {}
  for name, src in pairs(spec.build.install.lua) do
    local expected = "leadq.rules." .. src:match("^rules/(.-)%.[^./]*$"):gsub("/", ".")
    lu.assertEquals(name, expected, "rockspec: install.lua name of " .. src)
    lu.assertNotNil(io.open(src), "rockspec/leadq-scm-1.rockspec lists a missing file " .. src)
    listed[src] = true
  end
  local files = lines_of("ls rules/*.lua rules/lists/*")
  lu.assertTrue(#files >= 6, "found " .. #files .. " shipped rule files")
  for _, src in ipairs(files) do
    lu.assertTrue(listed[src], "rockspec/leadq-scm-1.rockspec does not install " .. src)
  end
end

function TestPackaging:test_rockspec_bounds_lua_and_runs_the_suite()
  local spec = rockspec()
  lu.assertEquals(spec.rockspec_format, "3.0")
  lu.assertEquals(spec.dependencies, { "lua >= 5.1, < 5.5" })
  lu.assertEquals(spec.test, { type = "command", script = "tests/run.lua", flags = { "installed" } })
  lu.assertEquals(spec.description.license, "MIT")
  lu.assertStrContains(read("LICENSE"), "MIT License\n\nCopyright (c) 2026 the leadq authors\n")
end

-- One version: every module's _VERSION, the core's, the newest CHANGELOG entry, the rockspec's base
-- (or scm, the checkout's own rockspec).
function TestPackaging:test_one_version_everywhere()
  local version = require("leadq")._VERSION
  lu.assertStrMatches(version, "%d+%.%d+%.%d+")
  lu.assertEquals(require("leadq.core").version, version, "csrc/core.c's version")
  local checked = 0
  for _, path in ipairs(lines_of("find lua/leadq -name '*.lua' | sort")) do
    local text = read(path)
    for v in text:gmatch("_VERSION%s*=%s*\"([^\"]*)\"") do
      lu.assertEquals(v, version, path .. "'s _VERSION")
      checked = checked + 1
    end
    if text:find("\nlocal _M = {") then
      lu.assertStrContains(text, "_VERSION", path .. ": a module table without _VERSION")
    end
  end
  lu.assertTrue(checked >= 10, checked .. " versions found")
  lu.assertEquals(read("CHANGELOG.md"):match("\n## (%d[^\n]*)"), version, "the newest version in CHANGELOG.md")
  local base = rockspec().version:match("^(.*)%-%d+$")
  lu.assertTrue(base == "scm" or base == version, "rockspec version " .. rockspec().version)
end

-- The CLI finds the shipped rules from its own file (in a checkout: rules/ beside lua/), and takes
-- a shipped model by name where no such file is: "mql", "mql.lua", "rules/mql.lua".
function TestPackaging:test_cli_finds_the_shipped_rules()
  local cli = require("leadq.cli")
  lu.assertEquals(cli.shipped_rules(), "rules")
  lu.assertEquals(cli.rule_file("mql"), "rules/mql.lua")
  lu.assertEquals(cli.rule_file("aql.lua"), "rules/aql.lua")
  lu.assertEquals(cli.rule_file("rules/sql.lua"), "rules/sql.lua")
  lu.assertEquals(cli.rule_files({ "mql, sql", "rules/aql.lua" }),
    { "rules/mql.lua", "rules/sql.lua", "rules/aql.lua" })
  lu.assertEquals(cli.rule_file("nope"), "nope")                    -- not shipped: left as given
  lu.assertEquals(cli.rule_file("other/mql.lua"), "other/mql.lua")  -- only rules/ means the shipped folder
  local dir = require("helpers").tmpdir()
  local mine = dir .. "/mql"
  local f = assert(io.open(mine, "w"))
  f:write("-- a file of the user's\n")
  f:close()
  lu.assertEquals(cli.rule_file(mine), mine)                        -- a file that exists wins
  require("helpers").remove_dir(dir)
  local out = {}
  local status = cli.main({ "check", "pql" }, { print = function(l) out[#out + 1] = l end, error = print })
  lu.assertEquals(status, 0)
  lu.assertEquals(out, { "rules/pql.lua: ok" })
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
