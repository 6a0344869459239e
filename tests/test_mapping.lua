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
    local cli = require("leadq.cli_score")
    local printed = {}
    local status = cli.check({ path }, { print = function(s) printed[#printed + 1] = s end, error = print })
    lu.assertEquals(status, 0)
    lu.assertEquals(printed[1], path .. ": ok")
  end)
  with_script('return mapping "m" { fields = { id = { from = "x", take = "upper", typ = "text" } } }\n',
    function(path)
      local cli = require("leadq.cli_score")
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

return {
  TestMappingLoad = TestMappingLoad,
}
