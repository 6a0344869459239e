-- Real CRM data in: a model reading a column the file does not have, exports of HubSpot,
-- Salesforce and trackers through mapping scripts, scored with the shipped rules unchanged.
local lu = require("luaunit")

local leadq = require("leadq")
local dsl = require("leadq.dsl")
local helpers = require("helpers")

-- Runs the command through the CLI frame's main: status, printed text, error text.
local function main(argv)
  local cli = require("leadq.cli")
  local printed, errors = {}, {}
  local status = cli.main(argv, {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  })
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

---------------------------------------------------------------------------------------------------
-- a field no column holds: missing in bulk as in score_one
---------------------------------------------------------------------------------------------------

local TestMissingColumn = {}

local function reader_model()
  return leadq.model(dsl.model "m" {
    rules = {
      dsl.rule "SIZE" { points = 5, when = { employee = { at_least = 10 } } },
      dsl.rule "NOT_FR" { points = 3, when = { country = { not_one_of = { "FR" } } } },
      dsl.rule "NO_COUNTRY" { points = 7, when = { country = "missing" } },
      dsl.rule "TITLE" { points = 11, when = { title = { contains = { "vp" } } } },
    },
  })
end

local RECORDS = {
  { employees = 50, title = "VP Sales" },
  { employees = 5, title = "intern" },
  { employees = 5000 },
}

function TestMissingColumn.test_bulk_reads_it_as_missing_as_score_one_does()
  local m = reader_model()
  local warnings = {}
  local res = assert(m:score(leadq.table(RECORDS), { warnings = warnings }))
  local totals = res:column("total")
  for i, r in ipairs(RECORDS) do
    lu.assertEquals(totals[i], m:score_one(r).total, "lead " .. i)
  end
  lu.assertEquals(totals, { 18, 7, 7 })
end

function TestMissingColumn.test_one_warning_per_column_naming_the_rules_that_read_it()
  local m = reader_model()
  local warnings = {}
  assert(m:score(leadq.table(RECORDS), { warnings = warnings }))
  lu.assertEquals(#warnings, 2)
  lu.assertStrMatches(warnings[1], ".-: no column 'country' in the leads: read as missing by "
    .. "rule 'NOT_FR' %(line %d+%), rule 'NO_COUNTRY' %(line %d+%)")
  lu.assertStrMatches(warnings[2], ".-: no column 'employee' in the leads %(did you mean 'employees'%?%): read as "
    .. "missing by rule 'SIZE' %(line %d+%)")
end

function TestMissingColumn.test_strict_makes_it_an_error()
  local m = reader_model()
  local res, err = m:score(leadq.table(RECORDS), { strict = true })
  lu.assertNil(res)
  lu.assertStrContains(err, "rule 'SIZE': unknown field 'employee' (did you mean 'employees'?)")
  lu.assertStrContains(err, "rule 'NO_COUNTRY': unknown field 'country'")
  lu.assertErrorMsgContains("warnings must be a table to fill, got string", m.score, m, leadq.table(RECORDS),
    { warnings = "x" })
end

function TestMissingColumn.test_the_command_warns_once_and_strict_fails()
  helpers.with_file("id,title,employees\nL1,VP Sales,300\nL2,intern,3\n", function(leads)
    local status, text, err = main { "score", "--rules", "rules/mql.lua", "--leads", leads, "--as-of", "2026-11-01" }
    lu.assertEquals(status, 0, err)
    lu.assertStrContains(text, "scored 2 leads")
    lu.assertStrContains(err, "leadq: warning: rules/mql.lua: no column 'country' in the leads: read as missing by "
      .. "rule 'TARGET_COUNTRY' (line ")
    local _, count = err:gsub("no column 'country'", "")
    lu.assertEquals(count, 1)
    status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", leads, "--strict" }
    lu.assertEquals(status, 1)
    lu.assertStrContains(err, "unknown field 'country'")
  end)
end

return {
  TestMissingColumn = TestMissingColumn,
}
