-- leadq score shows how long each phase of the run took, from loading the rules to writing the
-- result, and the whole run: a user's wait is mostly loading and writing, not scoring.
local lu = require("luaunit")

local gen = require("leadq.gen")
local score_cli = require("leadq.cli.score")
local helpers = require("helpers")

local M = {}
M.TestScoreTimings = {}
local T = M.TestScoreTimings

local function run(arg)
  local printed, errors = {}, {}
  local out = {
    print = function(s) printed[#printed + 1] = s end,
    error = function(s) errors[#errors + 1] = s end,
  }
  local status = score_cli.score(arg, out)
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

local dir
local function sample()
  if dir then return dir end
  dir = helpers.tmpdir()
  -- big enough that reading and folding its events takes more than the millisecond a phase is shown to
  assert(gen.generate { leads = helpers.size(4000, 200), seed = 9, out = dir })
  return dir
end

-- The phases of the time line, in order, as { name, seconds }, and the total.
local function phases(text)
  local line = text:match("\n(time: [^\n]*)")
  lu.assertNotNil(line, "no time line in:\n" .. text)
  local total, rest = line:match("^time: ([%d.]+) s in all: (.*)$")
  lu.assertNotNil(total, line)
  local list = {}
  for name, s in rest:gmatch("([%a ]+) ([%d.]+) s") do list[#list + 1] = { name:match("^%s*(.-)%s*$"), tonumber(s) } end
  return list, tonumber(total), line
end

local function names(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p[1] end
  return out
end

function T.test_every_phase_of_a_run_with_events_and_output()
  local d = sample()
  local status, text, errors = run({ rules = "rules/mql.lua", leads = d .. "/leads.csv", events = d .. "/events.csv",
    out = d .. "/scored.csv", ["as-of"] = "2026-11-01", threads = "2" })
  lu.assertEquals(status, 0, errors)
  local list, total, line = phases(text)
  -- the events file is streamed through the feature pass: one phase reads and folds it
  lu.assertEquals(names(list), { "load rules", "load leads", "events read and features", "rules", "write" })
  local sum = 0
  for _, p in ipairs(list) do
    lu.assertTrue(p[2] >= 0, line)
    sum = sum + p[2]
  end
  -- the phases are parts of the whole (each rounded to a millisecond)
  lu.assertTrue(sum <= total + 0.006, line)
  lu.assertTrue(list[3][2] > 0, line)   -- the core writes this small file in well under a millisecond
  -- the line follows the scored line
  lu.assertStrContains(text, "2 threads), wrote " .. d .. "/scored.csv\ntime: ")
end

function T.test_without_events_or_output_no_such_phases()
  local d = sample()
  local status, text, errors = run({ rules = "rules/mql.lua", leads = d .. "/leads.csv", ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, errors)
  local list = phases(text)
  lu.assertEquals(names(list), { "load rules", "load leads", "rules" })
end

function T.test_several_models_time_every_feature_pass()
  local d = sample()
  local status, text, errors = run({ rules = "rules/mql.lua,rules/sql.lua", leads = d .. "/leads.csv",
    events = d .. "/events.csv", ["as-of"] = "2026-11-01" })
  lu.assertEquals(status, 0, errors)
  lu.assertEquals(names((phases(text))), { "load rules", "load leads", "load events", "features", "rules" })
end

return M
