-- The command-line frame (leadq.cli): dispatch, the shared option parser, gen, load, version.
local lu = require("luaunit")
local cli = require("leadq.cli")
local gen = require("leadq.gen")
local helpers = require("helpers")
local tmpdir, read, remove_dir = helpers.tmpdir, helpers.read, helpers.remove_dir

-- Runs main with its output captured: status, stdout text, stderr text.
local function run(argv)
  local printed, errors = {}, {}
  local status = cli.main(argv, {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  })
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

-- status and stderr text only
local function run_err(argv)
  local status, _, err = run(argv)
  return status, err
end

-- Adds a command for one test and always takes it away again.
local function with_command(name, spec, fn)
  cli.commands[name] = spec
  local ok, err = pcall(fn)
  cli.commands[name] = nil
  if not ok then error(err, 0) end
end

---------------------------------------------------------------------------------------------

local TestDispatch = {}

function TestDispatch.test_no_command_shows_usage_on_stderr()
  local status, out, err = run({})
  lu.assertEquals(status, 2)
  lu.assertEquals(out, "")
  lu.assertStrContains(err, "usage: leadq COMMAND [options]")
  lu.assertStrContains(err, "gen ")
end

function TestDispatch.test_help_lists_commands()
  local status, out = run({ "help" })
  lu.assertEquals(status, 0)
  for _, name in ipairs({ "gen", "load", "demo", "version" }) do
    lu.assertStrContains(out, "\n  " .. name .. " ")
  end
  local s2, out2 = run({ "--help" })
  lu.assertEquals(s2, 0)
  lu.assertEquals(out2, out)
end

function TestDispatch.test_help_for_one_command()
  local status, out = run({ "help", "gen" })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "usage: leadq gen --leads N [--seed S] --out DIR")
  lu.assertStrContains(out, "--leads   how many leads (required)")
  lu.assertStrContains(out, "--seed    the random seed (default 1)")
  lu.assertStrContains(out, "--intent  add account intent events")
  local s2, out2 = run({ "gen", "--help" })
  lu.assertEquals(s2, 0)
  lu.assertEquals(out2, out)
end

function TestDispatch.test_unknown_command()
  local status, out, err = run({ "gne" })
  lu.assertEquals(status, 2)
  lu.assertEquals(out, "")
  lu.assertStrContains(err, "leadq: unknown command 'gne' (did you mean 'gen'?)")
  status, err = run_err({ "frobnicate" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "leadq: unknown command 'frobnicate'\n")
  status, err = run_err({ "help", "nope" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "leadq: unknown command 'nope'")
  status, err = run_err({ "--leads", "5" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "leadq: '--leads' is not a command: the command comes first")
end

function TestDispatch.test_version()
  local status, out = run({ "version" })
  lu.assertEquals(status, 0)
  lu.assertStrMatches(out, "leadq 0%.1%.0 %(core [^,]+, .+%)")
  local s2, out2 = run({ "--version" })
  lu.assertEquals(s2, 0)
  lu.assertEquals(out2, out)
end

function TestDispatch.test_usage_errors_are_sentences_with_usage()
  local cases = {
    { { "gen", "--leads" }, "leadq: gen: --leads needs a value" },
    { { "gen", "--leads", "--out", "x" }, "leadq: gen: --leads needs a value" },
    { { "gen", "--leads=abc", "--out", "x" }, "leadq: gen: --leads expects a whole number, got 'abc'" },
    { { "gen", "--leads", "2.5", "--out", "x" }, "leadq: gen: --leads expects a whole number, got '2.5'" },
    { { "gen", "--lead", "5" }, "leadq: gen: unknown option --lead (did you mean --leads?)" },
    { { "gen", "--colour", "red" }, "leadq: gen: unknown option --colour" },
    { { "gen", "--leads", "5" }, "leadq: gen: missing --out" },
    { { "gen", "--out", "x" }, "leadq: gen: missing --leads" },
    { { "gen", "--leads", "5", "--leads", "6", "--out", "x" }, "leadq: gen: --leads is given twice" },
    { { "gen", "--leads", "5", "--out", "x", "extra" }, "leadq: gen: unexpected argument 'extra'" },
    { { "gen", "-x" }, "leadq: gen: '-x' is not an option: options are written --name" },
    { { "version", "--verbose" }, "leadq: version: unknown option --verbose: this command takes no options" },
  }
  for _, case in ipairs(cases) do
    local status, out, err = run(case[1])
    lu.assertEquals(status, 2, table.concat(case[1], " "))
    lu.assertEquals(out, "")
    lu.assertStrContains(err, case[2])
    lu.assertStrContains(err, "usage: leadq ")
  end
end

---------------------------------------------------------------------------------------------

local TestOptions = {}

local SPEC = {
  options = {
    name = "string",
    count = { type = "integer", default = 3 },
    ratio = "number",
    verbose = "flag",
    rules = "list",
    need = { type = "string", required = true },
  },
  args = "FILE...",
  run = function() return 0 end,
}

function TestOptions.test_both_spellings_and_types()
  local o = assert(cli.parse_options(SPEC, { "--name", "a b", "--ratio=0.25", "--verbose", "--need=x", "f1" }))
  lu.assertEquals(o.name, "a b")
  lu.assertEquals(o.ratio, 0.25)
  lu.assertEquals(o.verbose, true)
  lu.assertEquals(o.need, "x")
  lu.assertEquals(o.count, 3)
  lu.assertEquals(o.args, { "f1" })
end

function TestOptions.test_list_repeats_and_empty_value()
  local o = assert(cli.parse_options(SPEC, { "--rules", "a.lua", "--rules=b.lua", "--need=", "--name", "-" }))
  lu.assertEquals(o.rules, { "a.lua", "b.lua" })
  lu.assertEquals(o.need, "")
  lu.assertEquals(o.name, "-")
end

function TestOptions.test_double_dash_ends_options()
  local o = assert(cli.parse_options(SPEC, { "--need", "x", "--", "--not-a-flag", "-y" }))
  lu.assertEquals(o.args, { "--not-a-flag", "-y" })
end

function TestOptions.test_errors()
  local _, err = cli.parse_options(SPEC, { "--need", "x", "--verbose=yes" })
  lu.assertEquals(err, "--verbose takes no value")
  _, err = cli.parse_options(SPEC, { "--need", "x", "--count", "1e400" })
  lu.assertEquals(err, "--count expects a whole number, got '1e400'")
  _, err = cli.parse_options(SPEC, { "--need", "x", "--ratio", "x" })
  lu.assertEquals(err, "--ratio expects a number, got 'x'")
  _, err = cli.parse_options(SPEC, {})
  lu.assertEquals(err, "missing --need")
  local opts, none = cli.parse_options(SPEC, { "--bogus", "-h" })
  lu.assertNil(opts)
  lu.assertNotNil(none)   -- the unknown flag comes first
  local wants_help
  opts, none, wants_help = cli.parse_options(SPEC, { "-h", "--bogus" })
  lu.assertNil(opts)
  lu.assertNil(none)
  lu.assertTrue(wants_help)
end

---------------------------------------------------------------------------------------------

local TestExtending = {}

function TestExtending.test_a_new_command_is_a_few_lines()
  local seen
  with_command("hello", {
    summary = "say hello",
    usage = "hello --name NAME",
    options = { name = { type = "string", required = true } },
    run = function(opts, out)
      seen = opts
      out.print("hello " .. opts.name)
      return 0
    end,
  }, function()
    local status, out = run({ "hello", "--name", "ops" })
    lu.assertEquals(status, 0)
    lu.assertEquals(out, "hello ops")
    lu.assertEquals(seen.name, "ops")
    local _, help = run({ "help" })
    lu.assertStrContains(help, "  hello ")
    lu.assertStrContains(help, "say hello")
  end)
  lu.assertNil(cli.commands.hello)
end

function TestExtending.test_failures_become_leadq_sentences()
  with_command("failing", {
    options = { how = "string" },
    run = function(opts)
      if opts.how == "return" then return nil, "the rules file has no model" end
      if opts.how == "status" then return 3 end
      if opts.how == "true" then return true end
      error("cannot open rules/x.lua", 0)
    end,
  }, function()
    local status, out, err = run({ "failing", "--how", "return" })
    lu.assertEquals(status, 1)
    lu.assertEquals(out, "")
    lu.assertEquals(err, "leadq: the rules file has no model")
    status, err = run_err({ "failing", "--how", "raise" })
    lu.assertEquals(status, 1)
    lu.assertEquals(err, "leadq: cannot open rules/x.lua")
    lu.assertEquals((run({ "failing", "--how", "status" })), 3)
    lu.assertEquals((run({ "failing", "--how", "true" })), 0)
  end)
end

function TestExtending.test_a_broken_command_table_is_named()
  with_command("broken", { summary = "no run" }, function()
    local status, _, err = run({ "broken" })
    lu.assertEquals(status, 1)
    lu.assertStrContains(err, "leadq: command 'broken' has no run function")
  end)
  with_command("typo", { run = function() return 0 end, optoins = {} }, function()
    local _, _, err = run({ "typo" })
    lu.assertStrContains(err, "command 'typo': unknown key 'optoins'")
  end)
  with_command("untyped", { run = function() return 0 end, options = { x = "text" } }, function()
    local _, _, err = run({ "untyped" })
    lu.assertStrContains(err, "command 'untyped': option 'x' needs a type")
  end)
end

---------------------------------------------------------------------------------------------

local TestGenCommand = {}

function TestGenCommand.test_writes_the_four_files()
  local dir = tmpdir()
  local status, out, err = run({ "gen", "--leads", "150", "--seed", "4", "--out", dir })
  lu.assertEquals(status, 0, err)
  lu.assertEquals(err, "")
  lu.assertStrContains(out, "wrote 150 leads, ")
  lu.assertStrContains(out, dir .. "/leads.csv")
  local mem = assert(gen.generate { leads = 150, seed = 4 })
  for _, name in ipairs(gen.files) do
    lu.assertTrue(read(dir .. "/" .. name .. ".csv") == mem.csv[name], name .. ".csv")
  end
  remove_dir(dir)
end

function TestGenCommand.test_bad_values()
  local status, _, err = run({ "gen", "--leads", "0", "--out", "/tmp/x" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "leadq: gen: --leads must be from 1 to 99,999,999")
  status, _, err = run({ "gen", "--leads", "3", "--out", "/proc/leadq-no" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "leadq: cannot create or write to directory '/proc/leadq-no'")
end

local TestLoadCommand = {}

function TestLoadCommand.test_prints_what_loaded()
  local dir = tmpdir()
  assert(gen.generate { leads = 120, seed = 9, out = dir })
  local status, out, err = run({ "load", "--leads", dir .. "/leads.csv", "--events", dir .. "/events.csv" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "leads " .. dir .. "/leads.csv: 120 rows, 16 columns")
  lu.assertStrContains(out, "MB/s")
  lu.assertStrMatches(out, ".*\n  employees +number\n.*")
  lu.assertStrMatches(out, ".*\n  created_at +time\n.*")
  lu.assertStrContains(out, "rejected rows: none")
  lu.assertStrContains(out, "events " .. dir .. "/events.csv: ")
  remove_dir(dir)
end

function TestLoadCommand.test_lists_rejects()
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write("id,employees\nL1,10\nL2,20,extra\nL3,30\n")
  f:close()
  local status, out = run({ "load", "--leads", path })
  os.remove(path)
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "2 rows, 2 columns")
  lu.assertStrContains(out, "rejected rows: 1 (the first 1 below)")
end

function TestLoadCommand.test_long_column_names()
  -- string.format's width stops at 99: a column name of 100 bytes or more failed the listing
  local long = string.rep("c", 300)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(long .. ",n\nx,1\n")
  f:close()
  local status, out, err = run({ "load", "--leads", path })
  os.remove(path)
  lu.assertEquals(err, "")
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "\n  " .. long .. "  category\n  n" .. string.rep(" ", 299) .. "  number\n")
end

-- A user once read "leadq: build/../lua/leadq/cli_score.lua:274: events.csv has no column 'lead_id'; name
-- yours with options.map": a position in leadq's own files, and an option of the Lua API.
function TestLoadCommand.test_errors_name_no_internal_file_or_api_option()
  local dir = tmpdir()
  gen.generate { leads = 20, seed = 1, out = dir }
  local events = dir .. "/crm_events.csv"
  local f = assert(io.open(events, "wb"))
  f:write("who,type,at\nx,page_view,2026-01-01\n")
  f:close()
  local status, err = run_err({ "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv",
    "--events", events })
  remove_dir(dir)
  lu.assertEquals(status, 1)
  lu.assertEquals(err, "leadq: " .. events .. " has no column 'lead_id': rename the column that holds it, or map " ..
    "it to 'lead_id'")
  local strip = cli.without_internal_position
  lu.assertEquals(strip("build/../lua/leadq/cli/inputs.lua:274: x has no column"), "x has no column")
  lu.assertEquals(strip("/usr/local/share/lua/5.4/leadq/cli/fit.lua:3: bad"), "bad")
  lu.assertEquals(strip("rules/mql.lua:3: rule 'A': bad"), "rules/mql.lua:3: rule 'A': bad")
  local shipped = "/usr/share/lua/5.4/leadq/rules/mql.lua:3: bad"
  lu.assertEquals(strip(shipped), shipped)
end

function TestLoadCommand.test_missing_file_and_no_input()
  local status, _, err = run({ "load", "--leads", "/nonexistent/leads.csv" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "leadq: cannot open /nonexistent/leads.csv")
  status, _, err = run({ "load" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "leadq: load: give --leads CSV, --events CSV or both")
end

local TestDemoCommand = {}

function TestDemoCommand.test_generates_and_loads()
  local dir = tmpdir()
  local status, out, err = run({ "demo", "--leads", "150", "--out", dir })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "leadq demo: 150 synthetic leads (seed 42) into " .. dir)
  lu.assertStrContains(out, "wrote 150 leads, ")
  lu.assertStrContains(out, "leads " .. dir .. "/leads.csv: 150 rows, 16 columns")
  lu.assertStrContains(out, "rejected rows: none")
  for _, name in ipairs({ "scored" }) do os.remove(dir .. "/" .. name .. ".csv") end
  remove_dir(dir)
end

function TestDemoCommand.test_paths_are_shown_tidy()
  lu.assertEquals(cli.normalize("./build/../build/demo"), "build/demo")
  lu.assertEquals(cli.normalize("/a/b/../c/./d"), "/a/c/d")
  lu.assertEquals(cli.normalize("../x"), "../x")
  lu.assertEquals(cli.normalize("./build/.."), ".")
  lu.assertEquals(cli.project_root(), ".")     -- the tests run from the repository root
end

-- End to end through the launcher (it runs Lua 5.4 on the lua5.4 build).
local TestLauncher = {}

function TestLauncher.test_exit_codes_and_streams()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the launcher runs Lua 5.4: tested in the lua5.4 run") end
  local build = os.getenv("LEADQ_BUILD") or "build"
  lu.assertNotNil(read(build .. "/leadq"), build .. "/leadq is not built")
  local dir = tmpdir()
  local p = io.popen(build .. "/leadq gen --leads 40 --seed 2 --out " .. dir .. " 2>/dev/null; echo \"exit=$?\"")
  local text = p:read("*a")
  p:close()
  lu.assertStrContains(text, "wrote 40 leads")
  lu.assertStrContains(text, "exit=0")
  lu.assertNotNil(read(dir .. "/transitions.csv"))
  remove_dir(dir)
  p = io.popen(build .. "/leadq nope 2>&1 >/dev/null; echo \"exit=$?\"")
  text = p:read("*a")
  p:close()
  lu.assertStrContains(text, "leadq: unknown command 'nope'")
  lu.assertStrContains(text, "exit=2")
  p = io.popen(build .. "/leadq load --leads /nonexistent.csv 2>&1 >/dev/null; echo \"exit=$?\"")
  text = p:read("*a")
  p:close()
  lu.assertStrContains(text, "leadq: cannot open /nonexistent.csv")
  lu.assertStrContains(text, "exit=1")
end

return {
  TestDispatch = TestDispatch,
  TestOptions = TestOptions,
  TestExtending = TestExtending,
  TestGenCommand = TestGenCommand,
  TestLoadCommand = TestLoadCommand,
  TestDemoCommand = TestDemoCommand,
  TestLauncher = TestLauncher,
}
