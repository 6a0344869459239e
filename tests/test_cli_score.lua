-- The scoring commands of the command line: score, explain, check (lua/leadq/cli/NAME.lua, through the
-- CLI frame's main and, under Lua 5.4, through the launcher build/leadq).
local lu = require("luaunit")

local gen = require("leadq.gen")
local score_cli = require("leadq.cli.score")
local helpers = require("helpers")
local tmpdir, write, read = helpers.tmpdir, helpers.write, helpers.read

local LEADS = (LEADQ_VARIANT == "asan") and 300 or 1000

-- Runs a scoring command with its output captured: status, printed text, error text.
local function run(command, arg)
  local printed, errors = {}, {}
  local out = {
    print = function(s) printed[#printed + 1] = s end,
    error = function(s) errors[#errors + 1] = s end,
  }
  local status = require("leadq.cli." .. command)[command](arg, out)
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

local sample
local function get_sample()
  if sample then return sample end
  local dir = tmpdir()
  assert(gen.generate { leads = LEADS, seed = 5, out = dir })
  sample = { dir = dir, leads = dir .. "/leads.csv" }
  return sample
end

local function first_line(text)
  return text:match("^([^\n]*)")
end

---------------------------------------------------------------------------------------------------

local TestCheckCommand = {}

function TestCheckCommand.test_shipped_files_pass()
  local status, text = run("check", { "rules/mql.lua", "rules/sql.lua" })
  lu.assertEquals(status, 0)
  lu.assertStrContains(text, "rules/mql.lua: ok")
  lu.assertStrContains(text, "rules/sql.lua: ok")
end

function TestCheckCommand.test_every_problem_of_every_file()
  local dir = tmpdir()
  write(dir .. "/a.lua", 'return model "a" { groups = { fit = {} }, rules = {\n'
    .. '  rule "X" { group = "fit", scroe = 5, when = { title = "x" } },\n'
    .. '}, thresholds = { ok = 1, otherwise = "no" } }\n')
  write(dir .. "/b.lua", 'return model "b" { groups = { fit = {} }, rules = {\n'
    .. '  rule "Y" { group = "fitt", points = 5, when = { title = "x" } },\n'
    .. '}, thresholds = { ok = 1, otherwise = "no" } }\n')
  local status, text = run("check", { dir .. "/a.lua", "rules/mql.lua", dir .. "/b.lua", dir .. "/none.lua" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(text, dir .. "/a.lua:2: rule 'X': unknown key 'scroe' (did you mean 'points'?)")
  lu.assertStrContains(text, dir .. "/b.lua:2: rule 'Y': unknown group 'fitt' (did you mean 'fit'?)")
  lu.assertStrContains(text, dir .. "/none.lua")
  lu.assertStrContains(text, "rules/mql.lua: ok")
  lu.assertStrContains(text, "3 of 4 files with problems")
end

function TestCheckCommand.test_an_endless_loop_fails_cleanly()
  -- with the default limits: the check ends, names the file and line, and goes on to the next file
  local dir = tmpdir()
  write(dir .. "/spin.lua", 'local m = model "s" { rules = {} }\nwhile true do end\nreturn m\n')
  local status, text = run("check", { dir .. "/spin.lua", "rules/mql.lua" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(text, dir .. "/spin.lua:2: the script failed: it ran past its limit of 20000000 Lua " ..
    "instructions while loading (an endless loop?)")
  lu.assertStrContains(text, "rules/mql.lua: ok")
  lu.assertStrContains(text, "1 of 2 files with problems")
end

function TestCheckCommand.test_no_file()
  local status, _, err = run("check", {})
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "give one or more rule files")
end

---------------------------------------------------------------------------------------------------

local TestScoreCommand = {}

function TestScoreCommand.test_one_model_writes_rows_and_summary()
  local s = get_sample()
  local out = s.dir .. "/scored.csv"
  local status, text, err = run("score", { rules = "rules/mql.lua", leads = s.leads, out = out,
    ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "scored " .. (LEADS >= 1000 and "1,000" or tostring(LEADS)) .. " leads")
  lu.assertStrContains(text, "leads/s")
  lu.assertStrContains(text, "mql: leads by status")
  lu.assertStrContains(text, "mql: leads by grade")
  lu.assertStrMatches(text, ".*\n  mql +[%d,]+ +%d+%.%d%%\n.*")
  local csv = assert(read(out))
  local header = first_line(csv)
  lu.assertStrContains(header, "id,total,status,grade")
  lu.assertStrContains(header, "fit")
  lu.assertStrContains(header, "engagement")
  local rows = select(2, csv:gsub("\n", "\n"))
  lu.assertEquals(rows, LEADS + 1)
  lu.assertStrMatches(csv, "^[^\n]*\nL0000001,%-?%d+,[a-z]+,[A-D][1-4],.*")
end

function TestScoreCommand.test_two_models_prefix_columns()
  local s = get_sample()
  local out = s.dir .. "/scored2.csv"
  local status, text, err = run("score", { rules = "rules/mql.lua,rules/sql.lua", leads = s.leads, out = out,
    ["as-of"] = "2026-11-01", threads = "2" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "2 threads")
  lu.assertStrContains(text, "sql: leads by status")
  local header = first_line(assert(read(out)))
  lu.assertStrContains(header, "id,mql.total,mql.status,mql.grade")
  lu.assertStrContains(header, "sql.total")
  lu.assertStrContains(header, "sql.status")
end

function TestScoreCommand.test_map_file_renames_crm_columns()
  local s = get_sample()
  local text = assert(read(s.leads))
  local header = first_line(text)
  local crm = header:gsub("title", "Job Title"):gsub("employees", "Company Size")
  local path = s.dir .. "/crm.csv"
  write(path, crm .. text:sub(#header + 1))
  write(s.dir .. "/map.csv", "column,field\nJob Title,title\nCompany Size,employees\n")
  local a_out, b_out = s.dir .. "/a.csv", s.dir .. "/b.csv"
  local status, _, err = run("score", { rules = "rules/mql.lua", leads = path, map = s.dir .. "/map.csv",
    out = a_out, ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  status, _, err = run("score", { rules = "rules/mql.lua", leads = s.leads, out = b_out, ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  lu.assertEquals(read(a_out), read(b_out))
end

function TestScoreCommand.test_bad_map_file()
  local s = get_sample()
  write(s.dir .. "/badmap.csv", "column,field\nJob Title\n")
  local status, _, err = run("score", { rules = "rules/mql.lua", leads = s.leads, map = s.dir .. "/badmap.csv" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "badmap.csv:2: expected 2 columns (column,field), got 1")
  status, _, err = run("score", { rules = "rules/mql.lua", leads = s.leads, map = s.dir .. "/nomap.csv" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "cannot open map file")
end

function TestScoreCommand.test_rejected_rows_are_listed()
  local s = get_sample()
  local text = assert(read(s.leads))
  local header = first_line(text)
  local lines = { header }
  for line in text:sub(#header + 2):gmatch("[^\n]+") do
    lines[#lines + 1] = line
    if #lines == 6 then break end
  end
  lines[4] = lines[4] .. ",one,too,many"
  local path = s.dir .. "/bad_rows.csv"
  write(path, table.concat(lines, "\n") .. "\n")
  local status, out, err = run("score", { rules = "rules/mql.lua", leads = path, ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "rejected rows: 1")
  lu.assertStrContains(out, "bad_rows.csv:4")
end

function TestScoreCommand.test_bad_flags_and_missing_files()
  local s = get_sample()
  local status, _, err = run("score", { leads = s.leads })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "missing --rules")
  status, _, err = run("score", { rules = "rules/mql.lua" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "missing --leads")
  status, _, err = run("score", { rules = "rules/mql.lua", leads = s.leads, threads = "many" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "--threads: expected a whole number from 1 to 256, got 'many'")
  status, _, err = run("score", { rules = "rules/mql.lua", leads = s.leads, ["as-of"] = "yesterday" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "--as-of: expected a date like 2026-11-01")
  status, _, err = run("score", { rules = "rules/nope.lua", leads = s.leads })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "rules/nope.lua")
  status, _, err = run("score", { rules = "rules/mql.lua", leads = s.dir .. "/none.csv" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "none.csv")
end

-- The errors of Lua-function rules were dropped by bulk score: 0 points, exit 0, no count.
function TestScoreCommand.test_rule_function_errors_are_reported()
  local dir = tmpdir()
  write(dir .. "/fn.lua", 'return model "fn" { rules = {\n'
    .. '  rule "LONG" { points = 2, when = function(lead) return #lead.title > 10 end },\n'
    .. '  rule "ANY" { points = 1, when = { id = "present" } },\n} }\n')
  write(dir .. "/leads.csv", "id,title\nA1,Head of Demand Generation\nA2,\nA3,CTO\nA4,\n")
  local status, text, err = run("score", { rules = dir .. "/fn.lua", leads = dir .. "/leads.csv" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "rule errors: 2 (a rule's Lua function failed for a lead, and gave it no points; " ..
    "the first 2 below)\n  rule 'LONG' failed for lead 'A2' (row 2): ")
  lu.assertStrContains(text, "\n  rule 'LONG' failed for lead 'A4' (row 4): ")
  status, text, err = run("score", { rules = dir .. "/fn.lua", leads = dir .. "/leads.csv", ["fail-on-errors"] = true })
  lu.assertEquals(status, 1)
  lu.assertStrContains(text, "rule errors: 2")
  lu.assertEquals(err, "leadq: 2 rule errors (--fail-on-errors)")
  -- no error, no line
  status, text = run("score", { rules = "rules/mql.lua", leads = get_sample().leads, ["fail-on-errors"] = true })
  lu.assertEquals(status, 0)
  lu.assertNil(text:find("rule errors", 1, true))
end

-- --as-of a date before some leads were created: those leads are left out (they were not leads yet),
-- the others scored.
function TestScoreCommand.test_as_of_leaves_out_leads_created_after()
  local leadq = require("leadq")
  local s = get_sample()
  local leads = assert(leadq.read_csv(s.leads))
  local created, times = leads:column("created_at"), {}
  for i = 1, #leads do times[#times + 1] = created[i] end
  table.sort(times)
  local cut = times[math.floor(#times / 2)]
  local later = 0
  for i = 1, #leads do if created[i] > cut then later = later + 1 end end
  local n = #leads
  leads:close()
  local out = s.dir .. "/as_of.csv"
  local status, text, err = run("score", { rules = "rules/mql.lua", leads = s.leads, out = out,
    ["as-of"] = leadq.format_time(cut) })
  lu.assertEquals(status, 0, err)
  lu.assertTrue(later > 0 and later < n)
  lu.assertStrContains(text, string.format("left out %s leads created after", later >= 1000 and
    string.format("%d,%03d", math.floor(later / 1000), later % 1000) or tostring(later)))
  local lines = 0
  for _ in assert(read(out)):gmatch("\n") do lines = lines + 1 end
  lu.assertEquals(lines, 1 + n - later)
end

---------------------------------------------------------------------------------------------------

local TestExplainCommand = {}

function TestExplainCommand.test_one_lead()
  local s = get_sample()
  local status, text, err = run("explain", { rules = "rules/mql.lua", leads = s.leads, id = "L0000003",
    ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  lu.assertTrue(#text > 40, text)
  lu.assertStrMatches(text, "^mql: %-?%d+ points, status [a-z]+, grade.*")
  lu.assertStrContains(text, "fit")
end

-- With several models and --events, explain handed the events table to a run that reads one
-- lead's list of events: "events must be a list of event records, got userdata".
function TestExplainCommand.test_two_models_with_events_agree_with_score()
  local s = get_sample()
  local events = s.dir .. "/events.csv"
  local out_csv = s.dir .. "/two_models.csv"
  local status, _, err = run("score", { rules = "rules/mql.lua,rules/sql.lua", leads = s.leads, events = events,
    out = out_csv, ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  local header, checked = nil, 0
  for line in io.lines(out_csv) do
    local cells = {}
    for cell in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = cell end
    if not header then
      header = {}
      for i, name in ipairs(cells) do header[name] = i end
    elseif tonumber(cells[header["mql.engagement"]]) > 0 and checked < 3 then
      local text
      status, text, err = run("explain", { rules = "rules/mql.lua,rules/sql.lua", leads = s.leads, events = events,
        id = cells[1], ["as-of"] = "2026-11-01" })
      lu.assertEquals(status, 0, err)
      lu.assertStrContains(text, "mql: " .. cells[header["mql.total"]] .. " points, status " ..
        cells[header["mql.status"]])
      lu.assertStrContains(text, "sql: " .. cells[header["sql.total"]] .. " points, status " ..
        cells[header["sql.status"]])
      checked = checked + 1
    end
  end
  lu.assertEquals(checked, 3)
end

-- score writes row numbers as the ids of a file with no id column; explain refused them.
function TestExplainCommand.test_row_number_ids_of_a_file_without_ids()
  local dir = tmpdir()
  local text = {}
  for line in io.lines(get_sample().leads) do   -- the sample without its id column (the first)
    if #text < 31 then text[#text + 1] = line:gsub("^[^,]*,", "") end
  end
  write(dir .. "/leads.csv", table.concat(text, "\n") .. "\n")
  local out_csv = dir .. "/out.csv"
  local status, _, err = run("score", { rules = "rules/mql.lua", leads = dir .. "/leads.csv", out = out_csv,
    ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, err)
  local lines = {}
  for line in io.lines(out_csv) do lines[#lines + 1] = line end
  for row = 1, 2 do
    local id, total = lines[row + 1]:match("^([^,]*),([^,]*)")
    lu.assertEquals(id, tostring(row))
    local explained
    status, explained, err = run("explain", { rules = "rules/mql.lua", leads = dir .. "/leads.csv", id = id,
      ["as-of"] = "2026-11-01" })
    lu.assertEquals(status, 0, err)
    lu.assertStrContains(explained, "mql: " .. total .. " points")
  end
  status, _, err = run("explain", { rules = "rules/mql.lua", leads = dir .. "/leads.csv", id = "31" })
  lu.assertEquals(status, 1)
  lu.assertEquals(err, "leadq: " .. dir .. "/leads.csv has no 'id' column: give a row number from 1 to 30 (the id " ..
    "score writes), or name the id column with --map (e.g. a line 'Lead ID,id')")
end

function TestExplainCommand.test_unknown_id_and_missing_id()
  local s = get_sample()
  local status, _, err = run("explain", { rules = "rules/mql.lua", leads = s.leads, id = "NOPE" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "no lead with id 'NOPE' in " .. s.leads)
  status, _, err = run("explain", { rules = "rules/mql.lua", leads = s.leads })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "missing --id")
end

---------------------------------------------------------------------------------------------------

local TestSummaryFormat = {}

function TestSummaryFormat.test_counts_are_aligned()
  local lines = score_cli.count_lines("status", { mql = 1234, nurture = 56, cold = 7890123 }, 7891413,
    { "mql", "nurture", "cold" })
  lu.assertEquals(lines, {
    "  status       leads   share",
    "  mql          1,234    0.0%",
    "  nurture         56    0.0%",
    "  cold     7,890,123  100.0%",
  })
end

function TestSummaryFormat.test_grades_as_a_table()
  local lines = score_cli.grade_matrix_lines({ A1 = 10, A2 = 1230, B1 = 6, B2 = 0, C2 = 755 }, 2000,
    { { group = "fit" }, { group = "engagement" } })
  lu.assertEquals(lines.title, "fit letter down, engagement digit across")
  lu.assertEquals({ lines[1], lines[2], lines[3], lines[4] }, {
    "                    1             2",
    "  A         10   0.5%  1,230  61.5%",
    "  B          6   0.3%      0   0.0%",
    "  C          0   0.0%    755  37.8%",
  })
  lu.assertNil(score_cli.grade_matrix_lines({ A = 3, B = 4 }, 7))
  lu.assertNil(score_cli.grade_matrix_lines({ hot = 3, A1 = 4 }, 7))
end

function TestSummaryFormat.test_csv_escape()
  lu.assertEquals(require("leadq.util").csv_field('a,"b"'), '"a,""b"""')
  lu.assertEquals(require("leadq.util").csv_field(12), "12")
  lu.assertEquals(require("leadq.util").csv_field(0 / 0), "")
  lu.assertEquals(require("leadq.util").csv_field(nil), "")
end

---------------------------------------------------------------------------------------------------

local TestDemoScoring = {}

function TestDemoScoring.test_scores_the_sample_and_explains_an_mql()
  local s = get_sample()
  local printed, errors = {}, {}
  local out = {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  }
  local status = require("leadq.cli.demo").score_sample(s.dir, out, ".")
  local text = table.concat(printed, "\n")
  lu.assertEquals(status, 0, table.concat(errors, "\n"))
  lu.assertStrContains(text, "with rules/mql.lua, rules/sql.lua")
  lu.assertStrContains(text, "mql: leads by status")
  lu.assertStrContains(text, "mql: leads by grade")
  lu.assertStrContains(text, "sql: leads by status")
  lu.assertStrMatches(text, ".*why lead L%d+ is an MQL.*\nmql: %d+ points, status mql, grade [A-D][1-4]\n.*")
  lu.assertNotNil(read(s.dir .. "/scored.csv"))
end

---------------------------------------------------------------------------------------------------

-- Through the CLI frame's main, as the launcher calls it.
local TestThroughMain = {}

local function main(argv)
  local cli = require("leadq.cli")
  local printed, errors = {}, {}
  local status = cli.main(argv, {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  })
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

function TestThroughMain.test_check()
  local status, text = main { "check", "rules/mql.lua", "rules/sql.lua" }
  lu.assertEquals(status, 0)
  lu.assertStrContains(text, "rules/sql.lua: ok")
  local _
  status, _, text = main { "check" }
  lu.assertEquals(status, 2)
  lu.assertStrContains(text, "give one or more rule files")
end

function TestThroughMain.test_score_and_explain()
  local s = get_sample()
  local status, text, err = main { "score", "--rules", "rules/mql.lua", "--rules", "rules/sql.lua",
    "--leads", s.leads, "--as-of", "2026-11-01", "--threads", "2" }
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "sql: leads by status")
  status, text, err = main { "explain", "--rules", "rules/mql.lua", "--leads", s.leads, "--id", "L0000002",
    "--as-of=2026-11-01" }
  lu.assertEquals(status, 0, err)
  lu.assertStrMatches(text, "^mql: %-?%d+ points.*")
end

function TestThroughMain.test_bad_flags()
  local s = get_sample()
  local status, _, err = main { "score", "--rulez", "rules/mql.lua", "--leads", s.leads }
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "unknown option --rulez (did you mean --rules?)")
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", s.leads, "--threads", "two" }
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "--threads expects a whole number, got 'two'")
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads" }
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "--leads needs a value")
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", s.dir .. "/missing.csv" }
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "missing.csv")
end

---------------------------------------------------------------------------------------------------

local TestLauncher = {}

-- End to end through build/leadq (it runs Lua 5.4 with the lua5.4 build).
function TestLauncher.test_check_and_score()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the launcher runs Lua 5.4: tested in the lua5.4 run") end
  local leadq_command = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq"
  local p = io.popen(leadq_command .. " check rules/mql.lua rules/sql.lua 2>&1; echo \"exit=$?\"")
  local text = p:read("a")
  p:close()
  lu.assertStrContains(text, "rules/mql.lua: ok")
  lu.assertStrContains(text, "exit=0")
  local s = get_sample()
  p = io.popen(leadq_command .. " score --rules rules/mql.lua --leads " .. s.leads
    .. " --as-of 2026-11-01 --threads 1 2>&1; echo \"exit=$?\"")
  text = p:read("a")
  p:close()
  lu.assertStrContains(text, "leads by status")
  lu.assertStrContains(text, "exit=0")
  p = io.popen(leadq_command .. " score --rules rules/mql.lua 2>&1; echo \"exit=$?\"")
  text = p:read("a")
  p:close()
  lu.assertStrContains(text, "missing --leads")
  lu.assertNotStrContains(text, "exit=0")
end

return {
  TestCheckCommand = TestCheckCommand,
  TestScoreCommand = TestScoreCommand,
  TestExplainCommand = TestExplainCommand,
  TestSummaryFormat = TestSummaryFormat,
  TestLauncher = TestLauncher,
  TestDemoScoring = TestDemoScoring,
  TestThroughMain = TestThroughMain,
}
