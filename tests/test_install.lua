-- Installing for real, the two ways the README gives: `luarocks make --tree TMP` and
-- `make install DESTDIR=TMP PREFIX=/usr`. Each installed `leadq` then runs from an empty folder
-- with the Lua paths and PATH naming that tree only, so nothing of the checkout can be found.
-- Under the lua5.4 variant only (one compile of the core by luarocks, a few seconds at -O0).
local lu = require("luaunit")
local h = require("helpers")

local format = string.format

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs a shell command; returns whether it exited 0, and its output (stdout and stderr).
local function run(command)
  local log = os.tmpname()
  local status = os.execute("(" .. command .. ") >" .. log .. " 2>&1")
  local output = read(log) or ""
  os.remove(log)
  return status == true or status == 0, output
end

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function have(command)
  return (run("command -v " .. command))
end

-- A command run in a new empty folder, with nothing but the tree on the Lua paths and PATH.
local function in_tree(tree, command)
  local cwd = h.tmpdir()
  local share, lib = tree.share, tree.lib
  local ok, output = run(format("cd %s && env -i HOME=%s PATH=%s LUA_PATH=%s LUA_CPATH=%s sh -c %s",
    q(cwd), q(cwd), q(tree.bin .. ":/usr/bin:/bin"),
    q(share .. "/?.lua;" .. share .. "/?/init.lua"), q(lib .. "/?.so"), q(command)))
  return ok, output, cwd
end

local repo = io.popen("pwd"):read("*l")
local version = require("leadq")._VERSION

-- What every installed tree must do: say its version, check a shipped rule by name and by the
-- README's path, run the demo, all from its own files.
local function check_installed(tree, how)
  local ok, out = in_tree(tree, "lua5.4 -e \"print(package.searchpath('leadq.cli', package.path)); "
    .. "print(package.searchpath('leadq.core', package.cpath))\"")
  lu.assertTrue(ok, how .. ": " .. out)
  lu.assertEquals(out, tree.share .. "/leadq/cli.lua\n" .. tree.lib .. "/leadq/core.so\n")

  ok, out = in_tree(tree, "leadq --version && leadq version")
  lu.assertTrue(ok, how .. ": leadq --version: " .. out)
  local line = format("leadq %s (core %s, Lua 5.4)\n", version, version)
  lu.assertEquals(out, line .. line)

  ok, out = in_tree(tree, "leadq check mql rules/aql.lua")
  lu.assertTrue(ok, how .. ": leadq check: " .. out)
  lu.assertEquals(out, tree.share .. "/leadq/rules/mql.lua: ok\n" .. tree.share .. "/leadq/rules/aql.lua: ok\n")

  local cwd
  ok, out, cwd = in_tree(tree, "leadq demo --leads 300")
  lu.assertTrue(ok, how .. ": leadq demo: " .. out)
  lu.assertStrContains(out, "leadq demo: 300 synthetic leads (seed 42) into leadq-demo\n")
  lu.assertStrContains(out, "mql: leads by status")
  lu.assertStrContains(out, "sql: leads by status")
  lu.assertStrContains(out, "is an MQL")
  lu.assertNotStrContains(out, repo .. "/")
  local scored = read(cwd .. "/leadq-demo/scored.csv")
  h.remove_dir(cwd)
  lu.assertNotNil(scored, how .. ": the demo wrote no leadq-demo/scored.csv in its folder")
  lu.assertStrMatches(scored, "^id,.*")
end

-- Only luaopen_leadq_core: everything else in the core is internal.
local function exported(so)
  local ok, out = run("nm -D --defined-only " .. q(so))
  lu.assertTrue(ok, out)
  local names = {}
  for name in out:gmatch("%x+ [A-Za-z] ([^\n]+)") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local TestInstall = {}

function TestInstall:setUp()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("installs once, under the lua5.4 variant") end
  self.dir = h.tmpdir()
end

function TestInstall:tearDown()
  if self.dir then h.remove_dir(self.dir) end
end

function TestInstall:test_luarocks_make_and_test()
  if not have("luarocks") then lu.skip("luarocks is not installed (.ci/install-deps core installs it)") end
  -- luarocks builds in the folder it is given: a copy, so no object file lands in the checkout.
  local src, rock = self.dir .. "/src", self.dir .. "/rock"
  local ok, out = run(format("mkdir -p %s/tests && cp -r csrc lua rockspec rules LICENSE README.md CHANGELOG.md %s"
    .. " && cp tests/*.lua %s/tests", q(src), q(src), q(src)))
  lu.assertTrue(ok, out)
  ok, out = run(format("cd %s && luarocks --lua-version 5.4 make --tree %s rockspec/leadq-scm-1.rockspec"
    .. " CFLAGS='-O0 -fPIC'", q(src), q(rock)))
  lu.assertTrue(ok, "luarocks make failed:\n" .. out)
  local tree = { bin = rock .. "/bin", share = rock .. "/share/lua/5.4", lib = rock .. "/lib/lua/5.4" }
  lu.assertEquals(exported(tree.lib .. "/leadq/core.so"), { "luaopen_leadq_core" })
  -- the builtin build copies all of lua/ too: leadq's modules only, no top-level script
  lu.assertEquals(select(2, run("ls " .. q(tree.share))), "leadq\n")
  check_installed(tree, "luarocks make")

  -- luarocks test runs tests/run.lua with the installed core (here one suite, named after --).
  ok, out = run(format("cd %s && LUA_CPATH=%s luarocks --lua-version 5.4 --tree %s test"
    .. " rockspec/leadq-scm-1.rockspec -- test_json", q(src), q(tree.lib .. "/?.so"), q(rock)))
  lu.assertTrue(ok, "luarocks test failed:\n" .. out)
  lu.assertStrMatches(out, ".*\ninstalled: %d+ passed, 0 failed\n.*")
end

function TestInstall:test_make_install_and_uninstall()
  local build = os.getenv("LEADQ_BUILD") or "build"
  local staged = self.dir .. "/staged"
  local make = format("make --no-print-directory -s BUILD=%s LUA=lua5.4 DESTDIR=%s PREFIX=/usr ", q(build), q(staged))
  local ok, out = run(make .. "install")
  lu.assertTrue(ok, "make install failed:\n" .. out)
  local usr = staged .. "/usr"
  local tree = { bin = usr .. "/bin", share = usr .. "/share/lua/5.4", lib = usr .. "/lib/lua/5.4" }
  lu.assertEquals(exported(tree.lib .. "/leadq/core.so"), { "luaopen_leadq_core" })
  lu.assertStrMatches(read(tree.bin .. "/leadq"), "#!/usr/bin/env lua5%.4\n.*")
  -- every Lua file, subfolders too, and the lists the rules read
  local _, files = run("cd lua && find leadq -name '*.lua'; cd ../rules && ls *.lua lists/* | sed 's|^|leadq/rules/|'")
  for path in files:gmatch("[^\n]+") do
    lu.assertNotNil(read(tree.share .. "/" .. path), "make install did not install " .. path)
  end
  check_installed(tree, "make install")

  -- A new install writes a new file (a new inode): a running nginx keeps its mapped core.so whole.
  -- A second name holds the old inode (as a mapping would), so its number cannot be reused.
  local so = tree.lib .. "/leadq/core.so"
  local function inode(path) return select(2, run("stat -c %i " .. q(path))) end
  ok, out = run(format("ln %s %s.old", q(so), q(so)))
  lu.assertTrue(ok, out)
  ok, out = run(make .. "install")
  lu.assertTrue(ok, out)
  lu.assertNotEquals(inode(so), inode(so .. ".old"))
  os.remove(so .. ".old")

  ok, out = run(make .. "uninstall")
  lu.assertTrue(ok, "make uninstall failed:\n" .. out)
  local _, left = run("find " .. q(staged) .. " -type f")
  lu.assertEquals(left, "")
end

-- LuaJIT reads Lua 5.1's folders: make install LUA=luajit installs there (a dry run: no build).
function TestInstall:test_make_install_folders_for_luajit()
  local ok, out = run(format("make --no-print-directory -n LUA=luajit DESTDIR=%s PREFIX=/opt/lq install",
    q(self.dir)))
  lu.assertTrue(ok, out)
  lu.assertStrContains(out, self.dir .. "/opt/lq/lib/lua/5.1/leadq/core.so")
  lu.assertStrContains(out, self.dir .. "/opt/lq/share/lua/5.1/leadq/rules/")
  lu.assertStrContains(out, "#!/usr/bin/env luajit")
  lu.assertStrContains(out, "install -m 755 build/leadq-luajit.installed " .. self.dir .. "/opt/lq/bin/leadq")
  lu.assertNotStrContains(out, "lua/jit")
  lu.assertNotStrContains(out, "cp ")
end

-- make rock packs a source rock of the clone's HEAD (luarocks pack needs a URL it can clone).
function TestInstall:test_make_rock_packs_a_source_rock()
  if not have("luarocks") then lu.skip("luarocks is not installed (.ci/install-deps core installs it)") end
  if not have("unzip") then lu.skip("unzip is not installed: cannot list the rock") end
  if not run("git rev-parse --git-dir") then lu.skip("not a git clone: make rock packs a clone's HEAD") end
  local ok, out = run(format("make --no-print-directory -s BUILD=%s rock", q(self.dir)))
  lu.assertTrue(ok, "make rock failed:\n" .. out)
  ok, out = run("unzip -l " .. q(self.dir .. "/rock/leadq-scm-1.src.rock"))
  lu.assertTrue(ok, out)
  for _, name in ipairs { " leadq-scm-1.rockspec\n", "/csrc/core.c\n", "/lua/leadq/cli/leadq\n",
                          "/rules/lists/target_countries.txt\n", "/LICENSE\n" } do
    lu.assertStrContains(out, name)
  end
end

return { TestInstall = TestInstall }
