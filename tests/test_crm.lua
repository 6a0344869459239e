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
    local _
    status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", leads, "--strict" }
    lu.assertEquals(status, 1)
    lu.assertStrContains(err, "unknown field 'country'")
  end)
end

---------------------------------------------------------------------------------------------------
-- exports as CRMs and trackers write them (tests/data/crm): the shipped rules, unchanged, score
-- each through a mapping script as they score the same leads in leadq's own format
---------------------------------------------------------------------------------------------------

local TestCrmFixtures = {}

local CRM = helpers.data("crm") .. "/"
local AS_OF = "2026-11-01"

local function scores(tbl, events)
  local model = assert(leadq.load_model("rules/mql.lua"))
  local result = assert(model:score(tbl, events, { as_of = AS_OF }))
  local by_id, ids = {}, tbl:column("id")
  for i = 1, #tbl do
    local r = result:row(i)
    by_id[ids[i]] = { total = r.total, status = r.status, grade = r.grade, reason = r.reason }
  end
  return by_id
end

local function own_scores()
  return scores(assert(leadq.read_csv(CRM .. "leads_leadq.csv")), assert(leadq.read_events(CRM .. "events_leadq.csv")))
end

local function through(script, file)
  local m = assert(require("leadq.mapping").load(CRM .. script))
  local t = assert(m:read_csv(CRM .. file))
  lu.assertEquals(t:reject_count(), 0, file)
  return t
end

function TestCrmFixtures.test_own_format_scores_vary()   -- so that equal scores below mean something
  local want = own_scores()
  local statuses = {}
  for _, s in pairs(want) do statuses[s.status] = true end
  lu.assertEquals(statuses, { mql = true, nurture = true, disqualified = true })
  lu.assertEquals(want["C-101"].status, "mql")
end

function TestCrmFixtures.test_hubspot_contacts_export()
  lu.assertEquals(scores(through("hubspot.lua", "hubspot_contacts.csv"),
    assert(leadq.read_events(CRM .. "events_leadq.csv"))), own_scores())
end

function TestCrmFixtures.test_hubspot_export_gzipped()
  lu.assertEquals(scores(through("hubspot.lua", "hubspot_contacts.csv.gz"),
    assert(leadq.read_events(CRM .. "events_leadq.csv"))), own_scores())
end

function TestCrmFixtures.test_salesforce_report_with_us_dates_and_country_names()
  lu.assertEquals(scores(through("salesforce.lua", "salesforce_report.csv"),
    assert(leadq.read_events(CRM .. "events_leadq.csv"))), own_scores())
end

function TestCrmFixtures.test_german_locale_file()
  local t = through("german.lua", "leads_de.csv")
  lu.assertEquals(t:column("budget"), { 30000, nil, 8000, 1200.5, 50000, nil })
  lu.assertEquals(scores(t, assert(leadq.read_events(CRM .. "events_leadq.csv"))), own_scores())
end

function TestCrmFixtures.test_segment_track_events()
  local m = assert(require("leadq.mapping").load(CRM .. "segment.lua"))
  local events, report = assert(require("leadq.track_events").read(CRM .. "segment_events.ndjson", m))
  lu.assertEquals(report.skipped, { identify = 1 })
  lu.assertEquals(#report.rejects, 0)
  lu.assertEquals(scores(assert(leadq.read_csv(CRM .. "leads_leadq.csv")), events), own_scores())
end

function TestCrmFixtures.test_the_command_end_to_end_equals_the_own_format_run()
  local dir = helpers.tmpdir()
  local status, text, err = main { "score", "--rules", "rules/mql.lua", "--leads", CRM .. "hubspot_contacts.csv.gz",
    "--map", CRM .. "hubspot.lua", "--events", CRM .. "segment_events.ndjson", "--events-map", CRM .. "segment.lua",
    "--as-of", AS_OF, "--out", dir .. "/crm.csv", "--export", dir .. "/import.csv" }
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "tracker messages: 10 read from " .. CRM .. "segment_events.ndjson; skipped (not "
    .. "events): identify 1")
  local _
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", CRM .. "leads_leadq.csv", "--events",
    CRM .. "events_leadq.csv", "--as-of", AS_OF, "--out", dir .. "/own.csv" }
  lu.assertEquals(status, 0, err)
  local function read(path)
    local f = assert(io.open(path, "rb"))
    local t = f:read("*a")
    f:close()
    return t
  end
  lu.assertEquals(read(dir .. "/crm.csv"), read(dir .. "/own.csv"))
  local import = read(dir .. "/import.csv")
  lu.assertStrContains(import, "Record ID,hs_lead_status,leadq_grade,leadq_score\n")
  lu.assertStrContains(import, "\nC-101,OPEN,A1,")
  lu.assertStrContains(import, "\nC-106,IN_PROGRESS,B2,")
  helpers.remove_dir(dir)
end

function TestCrmFixtures.test_bad_values_in_an_export_are_rejects_with_file_line_and_column()
  local text = assert(io.open(CRM .. "hubspot_contacts.csv", "rb")):read("*a")
  text = text:gsub('"30,000.00"', '"30,00.00"', 1):gsub("2026%-06%-15 11:30", "15/06/2026", 1)
  helpers.with_file(text, function(path)
    local m = assert(require("leadq.mapping").load(CRM .. "hubspot.lua"))
    local t = assert(m:read_csv(path))
    lu.assertEquals(#t, 4)
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 2)
    lu.assertStrContains(rejects[1].message, path .. ":2: column 'budget' (")
    lu.assertStrContains(rejects[1].message, "'30,00.00' is not a number written with '.' as the decimal mark and ','"
      .. " between thousands (the file's column 15, 'Budget')")
    lu.assertStrContains(rejects[2].message, path .. ":4: column 'created_at' (")
    lu.assertStrContains(rejects[2].message, "'15/06/2026' is not a date in the format '%Y-%m-%d %H:%M' (or ISO "
      .. "8601) (the file's column 14, 'Create Date')")
  end)
end

return {
  TestMissingColumn = TestMissingColumn,
  TestCrmFixtures = TestCrmFixtures,
}
