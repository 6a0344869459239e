-- Mapping scripts (leadq.mapping): a CRM's columns and values into the rules' fields, compiled to
-- the column plan the C reader applies; every mistake with its file and line.
local lu = require("luaunit")

local leadq = require("leadq")
local mapping = require("leadq.mapping")
local helpers = require("helpers")

local function with_script(text, fn)
  local dir = helpers.tmpdir()
  local path = dir .. "/crm.lua"
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  local ok, err = pcall(fn, path, dir)
  helpers.remove_dir(dir)
  if not ok then error(err, 0) end
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local CONTACTS = table.concat({
  "Record ID,Email,Job Title,Number of Employees,Country/Region,Marketing opt-in,Create Date,"
    .. "Company Name,Associated Company,Interests,Lifecycle Stage",
  '101,Jane.Doe@Acme.COM,VP Sales,"5,000",United States,Yes,9/5/2026 3:04 PM,,Acme Corp,pricing;demo,'
    .. "marketingqualifiedlead",
  "102,bob@gmail.com,n/a,12,germany,No,10/1/2026 11:00 AM,Bobco,,-,lead",
  "103,carl@x.io,CTO,(none),UNITED STATES,,12/31/2026 12:00 AM,NULL,Xio,webinar,salesqualifiedlead",
}, "\n") .. "\n"

local SCRIPT = [[
-- HubSpot contacts -> leadq
return mapping "hubspot" {
  null = { "n/a", "-", "NULL", "(none)" },
  fields = {
    id = "Record ID",
    email = { from = "Email", take = "lower" },
    email_domain = { from = "Email", take = "domain" },
    title = "Job Title",
    employees = { from = "Number of Employees", type = "number" },
    country = { from = "Country/Region", values = { ["United States"] = "US", Germany = "DE" }, any_case = true },
    opted_in = { from = "Marketing opt-in", values = { Yes = true, No = false } },
    created_at = { from = "Create Date", format = "%m/%d/%Y %I:%M %p" },
    company = { first_of = { "Company Name", "Associated Company" } },
    interests = { from = "Interests", split = ";" },
    stage = { from = "Lifecycle Stage", values = { marketingqualifiedlead = "mql", salesqualifiedlead = "sql",
      lead = "lead" } },
  },
}
]]

local TestMappingLoad = {}

function TestMappingLoad.test_a_crm_export_becomes_the_rules_fields()
  with_script(SCRIPT, function(path, dir)
    write(dir .. "/contacts.csv", CONTACTS)
    local m = assert(mapping.load(path))
    local t = assert(m:read_csv(dir .. "/contacts.csv"))
    lu.assertEquals(t:reject_count(), 0)
    lu.assertEquals(#t, 3)
    lu.assertEquals(t:type("employees"), "number")
    lu.assertEquals(t:type("opted_in"), "boolean")
    lu.assertEquals(t:type("created_at"), "time")
    lu.assertEquals(t:type("interests"), "tags")
    local r1, r2, r3 = t:row(1), t:row(2), t:row(3)
    lu.assertEquals({ r1.id, r1.email, r1.email_domain, r1.employees, r1.country, r1.opted_in, r1.company, r1.stage },
      { "101", "jane.doe@acme.com", "acme.com", 5000, "US", true, "Acme Corp", "mql" })
    lu.assertEquals(r1.created_at, leadq.parse_time("2026-09-05T15:04:00Z"))
    lu.assertEquals(r1.interests, { "pricing", "demo" })
    lu.assertEquals({ r2.title, r2.country, r2.opted_in, r2.company, r2.interests, r2.stage },
      { nil, "DE", false, "Bobco", nil, "lead" })
    lu.assertEquals({ r3.employees, r3.country, r3.opted_in, r3.company, r3.stage },
      { nil, "US", nil, "Xio", "sql" })
    lu.assertEquals(r3.created_at, leadq.parse_time("2026-12-31T00:00:00Z"))
  end)
end

function TestMappingLoad.test_columns_it_does_not_name_come_as_they_are_unless_keep_false()
  with_script('return mapping "m" { fields = { id = "Record ID" } }', function(path, dir)
    write(dir .. "/c.csv", "Record ID,Other\n1,x\n")
    local t = assert(assert(mapping.load(path)):read_csv(dir .. "/c.csv"))
    lu.assertEquals(t:names(), { "id", "Other" })
  end)
  with_script('return mapping "m" { keep = false, fields = { id = "Record ID" } }', function(path, dir)
    write(dir .. "/c.csv", "Record ID,Other\n1,x\n")
    local t = assert(assert(mapping.load(path)):read_csv(dir .. "/c.csv"))
    lu.assertEquals(t:names(), { "id" })
  end)
end

function TestMappingLoad.test_a_column_the_file_lacks_names_the_script_line()
  with_script(SCRIPT, function(path, dir)
    write(dir .. "/c.csv", (CONTACTS:gsub("Job Title", "Jobtitle")))
    local t, err = assert(mapping.load(path)):read_csv(dir .. "/c.csv")
    lu.assertNil(t)
    lu.assertEquals(err, path .. ":8: field 'title' reads column 'Job Title', which is not in the header of "
      .. dir .. "/c.csv (did you mean 'Jobtitle'?)")
  end)
end

function TestMappingLoad.test_every_mistake_with_file_and_line()
  with_script([[
return mapping "bad" {
  nul = { "n/a" },
  fields = {
    id = "Record ID",
    title = { form = "Job Title" },
    email_domain = { from = "Email", take = "domian" },
    employees = { from = "Employees", type = "numbr" },
    created = { from = "Created", type = "number", format = "%d.%m.%Y" },
    amount = { from = "Amount", decimal = ",", thousands = "," },
    tags = { from = "Tags", split = ";;" },
  },
  tz = "Europe/Berlin",
}
]], function(path)
    local m, problems = mapping.load(path)
    lu.assertNil(m)
    local text = table.concat(problems, "\n")
    lu.assertStrContains(text, path .. ":2: mapping 'bad': unknown key 'nul' (did you mean 'null'?)")
    lu.assertStrContains(text, path .. ":5: field 'title': unknown key 'form' (did you mean 'from'?)")
    lu.assertStrContains(text, path .. ":6: field 'email_domain': take must be one of value, lower, upper, domain, "
      .. "local; got domian (did you mean 'domain'?)")
    lu.assertStrContains(text, path .. ":7: field 'employees': unknown type 'numbr' (did you mean 'number'?)")
    lu.assertStrContains(text, path .. ":8: field 'created': a date format on a number field; format is for times")
    lu.assertStrContains(text, path .. ":9: field 'amount': the decimal mark and the thousands separator are both ','")
    lu.assertStrContains(text, path .. ":10: field 'tags': split must be one character")
    lu.assertStrContains(text, "tz: 'Europe/Berlin' is not a UTC offset")
  end)
end

function TestMappingLoad.test_the_sandbox_of_the_rules()
  with_script('local f = io.open("/etc/passwd")\nreturn mapping "m" { fields = {} }\n', function(path)
    local m, problems = mapping.load(path)
    lu.assertNil(m)
    lu.assertStrContains(problems[1], path .. ":1:")
    lu.assertStrContains(problems[1], "'io' is not available")
  end)
end

function TestMappingLoad.test_check_reads_a_mapping_script_as_one()
  with_script(SCRIPT, function(path)
    local cli = require("leadq.cli.check")
    local printed = {}
    local status = cli.check({ path }, { print = function(s) printed[#printed + 1] = s end, error = print })
    lu.assertEquals(status, 0)
    lu.assertEquals(printed[1], path .. ": ok")
  end)
  with_script('return mapping "m" { fields = { id = { from = "x", take = "upper", typ = "text" } } }\n',
    function(path)
      local cli = require("leadq.cli.check")
      local printed = {}
      local status = cli.check({ path }, { print = function(s) printed[#printed + 1] = s end, error = print })
      lu.assertEquals(status, 1)
      lu.assertEquals(printed[1], path .. ":1: field 'id': unknown key 'typ' (did you mean 'type'?)")
    end)
end

function TestMappingLoad.test_bad_values_are_counted_rejects_with_line_and_column()
  with_script('return mapping "m" { fields = { id = "ID", employees = { from = "Employees", type = "number" },\n'
    .. '  created_at = { from = "Created", format = "%m/%d/%Y" } } }\n', function(path, dir)
    write(dir .. "/c.csv", 'ID,Employees,Created\n1,"1,200",9/5/2026\n2,"1,20",9/6/2026\n3,7,31/12/2026\n')
    local t = assert(assert(mapping.load(path)):read_csv(dir .. "/c.csv"))
    lu.assertEquals(#t, 1)
    lu.assertEquals(t:row(1).employees, 1200)
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 2)
    lu.assertEquals(rejects[1].message, dir .. "/c.csv:3: column 'employees' (3): '1,20' is not a number written "
      .. "with '.' as the decimal mark and ',' between thousands (the file's column 2, 'Employees')")
    lu.assertEquals(rejects[2].message, dir .. "/c.csv:4: column 'created_at' (2): '31/12/2026' is not a date in "
      .. "the format '%m/%d/%Y' (or ISO 8601) (the file's column 3, 'Created')")
  end)
end

function TestMappingLoad.test_events_through_a_mapping()
  with_script('return mapping "segment" { fields = { lead_id = { first_of = { "userId", "anonymousId" } },\n'
    .. '  type = "event", at = "timestamp" } }\n', function(path, dir)
    write(dir .. "/e.csv", "userId,anonymousId,event,timestamp\nL1,,demo_request,2026-10-01T10:00:00Z\n"
      .. ",anon-9,page_view,2026-10-02T10:00:00Z\n")
    local ev = assert(assert(mapping.load(path)):read_events(dir .. "/e.csv"))
    lu.assertEquals(ev:column("lead_id"), { "L1", "anon-9" })
    lu.assertEquals(ev:column("type"), { "demo_request", "page_view" })
  end)
end

---------------------------------------------------------------------------------------------------
-- numbers and dates in the user's locale
---------------------------------------------------------------------------------------------------

local TestLocale = {}

local GERMAN = "id;employees;budget;created_at\nL1;1.200;25.000,50;05.09.2026\nL2;12;1.2;31.12.2026 14:30\n"
  .. "L3;7;3,5;2026-10-01T08:00:00\nL4;1.234.567;0,5;2026-10-01T08:00:00Z\n"

function TestLocale.test_decimal_comma_reads_dot_as_thousands_and_rejects_what_does_not_fit()
  helpers.with_file(GERMAN, function(path)
    local plan = mapping.locale_plan({ decimal = ",", date_format = "%d.%m.%Y|%d.%m.%Y %H:%M", tz = "+01:00" })
    local t = assert(leadq.read_csv(path, { plan = plan }))
    lu.assertEquals(t:type("budget"), "number")
    lu.assertEquals(t:column("id"), { "L1", "L3", "L4" })
    lu.assertEquals(t:column("employees"), { 1200, 7, 1234567 })
    lu.assertEquals(t:column("budget"), { 25000.5, 3.5, 0.5 })
    lu.assertEquals(t:column("created_at"), { leadq.parse_time("2026-09-04T23:00:00Z"),
      leadq.parse_time("2026-10-01T07:00:00Z"), leadq.parse_time("2026-10-01T08:00:00Z") })
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 1)
    lu.assertStrContains(rejects[1].message, path .. ":3: column 'budget' (3): '1.2' is not a number written with "
      .. "',' as the decimal mark and '.' between thousands")
  end)
end

function TestLocale.test_a_declared_number_takes_thousands_commas_and_never_reads_another_number()
  with_script('return mapping "m" { fields = { id = "ID", n = { from = "N", type = "number" },\n'
    .. '  m = { from = "M", type = "number", thousands = "none" } } }\n', function(path, dir)
    write(dir .. "/c.csv", 'ID,N,M\n1,"5,000",7\n2,"1,5",8\n3,"1,234,567.25","1,200"\n4,12.5,3.25\n')
    local t = assert(assert(mapping.load(path)):read_csv(dir .. "/c.csv"))
    lu.assertEquals(t:column("id"), { "1", "4" })
    lu.assertEquals(t:column("n"), { 5000, 12.5 })
    lu.assertEquals(t:column("m"), { 7, 3.25 })
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 2)
    lu.assertStrContains(rejects[1].message, ":3: column 'n' (3): '1,5' is not a number written with '.' as the "
      .. "decimal mark and ',' between thousands (the file's column 2, 'N')")
    lu.assertStrContains(rejects[2].message, ":4: column 'm' (2): '1,200' is not a number written with '.' as the "
      .. "decimal mark (the file's column 3, 'M')")
  end)
end

function TestLocale.test_us_dates_and_12_hour_clocks_at_an_offset()
  with_script('return mapping "m" { tz = "-05:00", fields = { id = "ID",\n'
    .. '  at = { from = "When", format = { "%m/%d/%Y %I:%M %p", "%m/%d/%Y" } } } }\n', function(path, dir)
    write(dir .. "/c.csv", "ID,When\n1,9/5/2026 3:04 PM\n2,12/31/2026\n3,2026-01-02T00:00:00Z\n4,13/1/2026\n"
      .. "5,2/30/2026\n")
    local t = assert(assert(mapping.load(path)):read_csv(dir .. "/c.csv"))
    lu.assertEquals(t:column("at"), { leadq.parse_time("2026-09-05T20:04:00Z"),
      leadq.parse_time("2026-12-31T05:00:00Z"), leadq.parse_time("2026-01-02T00:00:00Z") })
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 2)
    lu.assertStrContains(rejects[1].message, ":5: column 'at' (2): '13/1/2026' is not a date in the format "
      .. "'%m/%d/%Y %I:%M %p', '%m/%d/%Y' (or ISO 8601)")
    lu.assertStrContains(rejects[2].message, ":6: column 'at' (2): '2/30/2026' is not a date")
  end)
end

function TestLocale.test_the_command_line_flags_are_checked()
  local cli = require("leadq.cli")
  local function run(argv)
    local errors = {}
    local status = cli.main(argv, { print = function() end, error = function(l) errors[#errors + 1] = l end })
    return status, table.concat(errors, "\n")
  end
  helpers.with_file(GERMAN, function(path)
    local base = { "score", "--rules", "rules/mql.lua", "--leads", path }
    local function with(...)
      local argv = {}
      for i, v in ipairs(base) do argv[i] = v end
      for _, v in ipairs({ ... }) do argv[#argv + 1] = v end
      return argv
    end
    local status, err = run(with("--decimal", ";"))
    lu.assertEquals(status, 2)
    lu.assertEquals(err, "leadq: --decimal: expected . or , got ';'")
    status, err = run(with("--tz", "Europe/Berlin"))
    lu.assertEquals(status, 2)
    lu.assertStrContains(err, "leadq: --tz: 'Europe/Berlin' is not a UTC offset")
    status, err = run(with("--decimal", ",", "--thousands", ","))
    lu.assertEquals(status, 2)
    lu.assertEquals(err, "leadq: --thousands: ',' is the decimal mark too")
    status, err = run(with("--decimal", ",", "--date-format", "%d.%m.%Y|%d.%m.%Y %H:%M", "--as-of", "2026-11-01"))
    lu.assertEquals(status, 0, err)
  end)
end

function TestMappingLoad.test_a_function_runs_once_per_distinct_value()
  with_script([[
return mapping "m" { fields = {
  id = "ID",
  region = { from = "Country", fn = function(v)
    if v == "US" or v == "CA" then return "NA" end
    if v == "??" then return nil end
    return "EMEA"
  end },
  big = { from = "Size", fn = function(v) return tonumber(v) ~= nil and tonumber(v) >= 1000 end },
  broken = { from = "Note", fn = function(v) if v == "boom" then error("no such note") end return v end },
} }
]], function(path, dir)
    write(dir .. "/c.csv", "ID,Country,Size,Note\n1,US,5000,a\n2,DE,10,b\n3,??,1000,c\n4,US,7,a\n")
    local m = assert(mapping.load(path))
    local t = assert(m:read_csv(dir .. "/c.csv"))
    lu.assertEquals(t:column("region"), { "NA", "EMEA", nil, "NA" })
    lu.assertEquals(t:type("big"), "boolean")
    lu.assertEquals(t:column("big"), { true, false, true, false })
    write(dir .. "/d.csv", "ID,Country,Size,Note\n1,US,5000,boom\n")
    local none, err = m:read_csv(dir .. "/d.csv")
    lu.assertNil(none)
    lu.assertStrContains(err, path .. ":9: field 'broken': its fn failed for the value 'boom': ")
    lu.assertStrContains(err, "no such note")
  end)
  with_script('return mapping "m" { fields = { x = { from = "X", fn = "lower" } } }\n', function(path)
    local m, problems = mapping.load(path)
    lu.assertNil(m)
    lu.assertEquals(problems[1], path .. ":1: field 'x': fn must be a function(value) returning the field's value, "
      .. "got string")
  end)
end

-- rules/README.md's mapping example is a script the loader accepts, and does what the page says.
function TestMappingLoad.test_the_cheat_sheet_example_loads()
  local f = assert(io.open("rules/README.md", "rb"))
  local text = f:read("*a")
  f:close()
  local code = text:match("## Mapping scripts.-```lua\n(.-)```")
  lu.assertNotNil(code)
  local m, problems = mapping.load_string(code, "rules/README.md")
  lu.assertNotNil(m, table.concat(problems or {}, "\n"))
  lu.assertEquals(m:export().fields.hs_lead_status, "status")
  helpers.with_file(CONTACTS, function(path)
    local t = assert(m:read_csv(path))
    lu.assertEquals(t:reject_count(), 0)
    lu.assertEquals(t:column("email_domain"), { "acme.com", "gmail.com", "x.io" })
    lu.assertEquals(t:column("country"), { "US", "DE", "US" })
    lu.assertEquals(t:column("opted_in"), { true, false, nil })
    lu.assertEquals(t:column("stage"), { "mql", "lead", "salesqualifiedlead" })
    lu.assertEquals(t:column("company"), { "Acme Corp", "Bobco", "Xio" })
    lu.assertEquals(t:column("created_at")[1], leadq.parse_time("2026-09-05T13:04:00Z"))   -- at +02:00
  end)
end

return {
  TestMappingLoad = TestMappingLoad,
  TestLocale = TestLocale,
}
