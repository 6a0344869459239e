-- The shipped rule scripts: they load, `check` passes on them, a broken script gives the expected
-- messages, the MQL model ranks good leads above poor ones on generated data, and the SQL model
-- reads the MQL model's results in a two-model run.
local lu = require("luaunit")

local leadq = require("leadq")
local gen = require("leadq.gen")
local helpers = require("helpers")
local tmpdir, write = helpers.tmpdir, helpers.write

local AS_OF = "2026-11-01"
local SMALL = (LEADQ_VARIANT == "asan") and 1500 or 4000

local function has_line(problems, pattern)
  for _, p in ipairs(problems) do
    if p:find(pattern) then return true end
  end
  return false
end

-- Generated sample, made once for all the tests of this file.
local sample
local function get_sample()
  if sample then return sample end
  local dir = tmpdir()
  assert(gen.generate { leads = SMALL, seed = 11, out = dir })
  local tbl = assert(leadq.read_csv(dir .. "/leads.csv"))
  sample = { dir = dir, tbl = tbl }
  -- the generator's history: which leads went on to sql / opportunity / customer
  local converted = {}
  local first = true
  for line in io.lines(dir .. "/transitions.csv") do
    if first then
      first = false
    else
      local id, stage = line:match("^([^,]*),([^,]*),")
      if stage == "sql" or stage == "opportunity" or stage == "customer" then converted[id] = true end
    end
  end
  sample.converted = converted
  return sample
end

---------------------------------------------------------------------------------------------------

local TestShippedRules = {}

function TestShippedRules.test_mql_loads_and_is_declarative()
  local model, err = leadq.load_model("rules/mql.lua")
  lu.assertNotNil(model, err)
  local info = model:info()
  lu.assertTrue(info.rules >= 20, "mql has " .. tostring(info.rules) .. " rules")
  lu.assertEquals(info.functions, {})
end

function TestShippedRules.test_sql_loads()
  local model, err = leadq.load_model("rules/sql.lua")
  lu.assertNotNil(model, err)
end

function TestShippedRules.test_check_passes_on_shipped_files()
  for _, path in ipairs { "rules/mql.lua", "rules/sql.lua" } do
    local ok, problems = leadq.check(path)
    lu.assertTrue(ok, path .. ": " .. table.concat(problems or {}, "\n"))
  end
end

function TestShippedRules.test_lists_from_files_are_read()
  local model = assert(leadq.load_model("rules/mql.lua"))
  local r = model:score_one({ id = "X1", email_domain = "LeadLyft.io", title = "VP Marketing" }, nil,
    { as_of = AS_OF })
  lu.assertEquals(r.status, "disqualified")
  lu.assertEquals(r.reason, "competitor")
  r = model:score_one({ id = "X2", email_domain = "gmail.com", company = "Acme" }, nil, { as_of = AS_OF })
  lu.assertEquals(r.groups.negative, -15)
end

function TestShippedRules.test_a_good_lead_beats_a_poor_one()
  local model = assert(leadq.load_model("rules/mql.lua"))
  local good = model:score_one({
    id = "G", title = "VP of Marketing", seniority = "vp", department = "marketing", company = "Acme",
    employees = 800, industry = "Software", country = "US", source = "referral", email_domain = "acme.com",
    created_at = "2026-10-20T10:00:00Z", budget = 40000, timeline = "0-3 months",
  }, nil, { as_of = AS_OF })
  local poor = model:score_one({
    id = "P", title = "Marketing Assistant", seniority = "entry", department = "marketing",
    employees = 4, country = "BR", source = "paid_social", email_domain = "gmail.com",
    created_at = "2026-01-20T10:00:00Z", timeline = "no plans",
  }, nil, { as_of = AS_OF })
  -- fit: 18 + 8 + 15 + 10 + 5 + 10 = 66, capped at 50; engagement 10 + 20 + 15 = 45
  lu.assertEquals(good.groups.fit, 50)
  lu.assertEquals(good.groups.engagement, 45)
  lu.assertEquals(good.total, 95)
  lu.assertEquals(good.status, "mql")
  lu.assertEquals(good.grade, "A1")
  -- fit 8; negative: -15 personal, -10 tiny, -10 no company, -10 no plans, -5 stale = -50
  lu.assertEquals(poor.total, 8 - 50)
  lu.assertEquals(poor.status, "cold")
  lu.assertEquals(poor.grade, "D4")
end

-- rules/mql.lua reads behaviour from events: with events.csv, engagement rises for many leads, and
-- explain shows the counts behind the event-driven points.
function TestShippedRules.test_mql_scores_events()
  local model = assert(leadq.load_model("rules/mql.lua"))
  lu.assertTrue(model:info().rules >= 28)
  local s = get_sample()
  local events = assert(leadq.read_events(s.dir .. "/events.csv"))
  local with, werr = model:score(s.tbl, events, { as_of = AS_OF })
  lu.assertNotNil(with, werr)
  local base = assert(model:score(s.tbl, nil, { as_of = AS_OF }))
  local engaged, a, b = 0, with:column("engagement"), base:column("engagement")
  local first
  for i = 1, #s.tbl do
    if a[i] > b[i] then
      engaged = engaged + 1
      first = first or i
    end
  end
  lu.assertTrue(engaged > #s.tbl / 20, "event rules raised engagement for " .. engaged .. " leads")
  local text = tostring(model:explain(s.tbl, first, events, { as_of = AS_OF }))
  local found = false
  for _, feature in ipairs { "demo_requests_30d", "pricing_views_30d", "webinars_90d", "email_points_90d",
                             "buying_heat" } do
    if text:find(feature .. " [%d.]+ is at least", 1) then found = true end
  end
  lu.assertTrue(found, "explain names the event count behind the points:\n" .. text)
end

---------------------------------------------------------------------------------------------------

local TestBrokenScript = {}

function TestBrokenScript.test_every_problem_with_its_line()
  local dir = tmpdir()
  local path = dir .. "/broken.lua"
  write(path, table.concat({
    'return model "broken" {',                                                         -- 1
    '  groups = { fit = { cap = 50 } },',                                               -- 2
    '  rules = {',                                                                      -- 3
    '    rule "A" { group = "fit", scroe = 10, when = { title = "x" } },',              -- 4
    '    rule "B" { group = "fitt", points = 5, when = { title = "y" } },',             -- 5
    '    rule "C" { group = "fit", points = 5,',                                        -- 6
    '      when = { employees = { between = { 5000, 200 } } } },',                      -- 7
    '    rule "D" { group = "fit", points = 5, when = { industry = { one_of = list "nope" } } },', -- 8
    '    rule "A" { group = "fit", points = 1, when = { title = "z" } },',              -- 9
    '  },',
    '  thresholds = { mql = "high", otherwise = "cold" },',                             -- 11
    '}',
  }, "\n") .. "\n")
  local ok, problems = leadq.check(path)
  lu.assertFalse(ok)
  local text = table.concat(problems, "\n")
  lu.assertTrue(has_line(problems, "broken%.lua:4: rule 'A': unknown key 'scroe' %(did you mean 'points'%?%)"), text)
  lu.assertTrue(has_line(problems, "broken%.lua:5: rule 'B': unknown group 'fitt' %(did you mean 'fit'%?%)"), text)
  lu.assertTrue(has_line(problems, "broken%.lua:%d: rule 'C':.*between"), text)
  lu.assertTrue(has_line(problems, "broken%.lua:8: rule 'D':.*unknown list 'nope'"), text)
  lu.assertTrue(has_line(problems, "broken%.lua:9: rule 'A': duplicate id %(also used at line 4%)"), text)
  lu.assertTrue(has_line(problems, "broken%.lua:%d+: .*threshold.*mql"), text)
  lu.assertNil(leadq.load_model(path))
  os.remove(path)
  os.remove(dir)
end

function TestBrokenScript.test_unknown_field_is_named_at_score_time_when_strict()
  local dir = tmpdir()
  local path = dir .. "/typo.lua"
  write(path, 'return model "typo" { groups = { fit = {} }, rules = {\n'
    .. '  rule "SIZE" { group = "fit", points = 5, when = { employee = { at_least = 10 } } },\n'
    .. '}, thresholds = { ok = 1, otherwise = "no" } }\n')
  local model = assert(leadq.load_model(path))
  local s = get_sample()
  local ok, result, err = pcall(model.score, model, s.tbl, nil, { as_of = AS_OF, strict = true })
  if ok then   -- an expected failure: nil and the message
    lu.assertNil(result)
  else
    err = result
  end
  lu.assertStrContains(tostring(err), "typo.lua:2: rule 'SIZE': unknown field 'employee'")
  lu.assertStrContains(tostring(err), "did you mean 'employees'")
  lu.assertStrContains(tostring(err), "SIZE")
  os.remove(path)
  os.remove(dir)
end

---------------------------------------------------------------------------------------------------

local TestMqlOnGeneratedData = {}

function TestMqlOnGeneratedData.test_leads_that_converted_score_higher()
  local s = get_sample()
  local model = assert(leadq.load_model("rules/mql.lua"))
  local result = model:score(s.tbl, nil, { as_of = AS_OF })
  local ids, totals = s.tbl:column("id"), result:column("total")
  local conv, rest = {}, {}
  for i = 1, #s.tbl do
    if s.converted[ids[i]] then conv[#conv + 1] = totals[i] else rest[#rest + 1] = totals[i] end
  end
  lu.assertTrue(#conv >= 20, "too few converted leads in the sample: " .. #conv)
  -- Probability that a converted lead outranks one that did not (the AUC), on a grid of pairs.
  local wins, pairs_ = 0, 0
  local step_c, step_r = math.max(1, math.floor(#conv / 200)), math.max(1, math.floor(#rest / 200))
  for i = 1, #conv, step_c do
    for j = 1, #rest, step_r do
      pairs_ = pairs_ + 1
      if conv[i] > rest[j] then wins = wins + 1 elseif conv[i] == rest[j] then wins = wins + 0.5 end
    end
  end
  local auc = wins / pairs_
  lu.assertTrue(auc > 0.65, string.format("mql total ranks converted leads first with AUC %.3f", auc))
end

function TestMqlOnGeneratedData.test_high_fit_profiles_rank_above_low_fit()
  local s = get_sample()
  local model = assert(leadq.load_model("rules/mql.lua"))
  local result = model:score(s.tbl, nil, { as_of = AS_OF })
  local sen, emp, totals = s.tbl:column("seniority"), s.tbl:column("employees"), result:column("total")
  local hi, hn, lo, ln = 0, 0, 0, 0
  for i = 1, #s.tbl do
    local e = emp[i]
    if (sen[i] == "c_level" or sen[i] == "vp") and e and e >= 200 and e < 5000 then
      hi, hn = hi + totals[i], hn + 1
    elseif (sen[i] == "entry" or sen[i] == "individual") and (e == nil or e < 50) then
      lo, ln = lo + totals[i], ln + 1
    end
  end
  lu.assertTrue(hn > 5 and ln > 5)
  lu.assertTrue(hi / hn > lo / ln + 15, string.format("high fit %.1f vs low fit %.1f", hi / hn, lo / ln))
end

function TestMqlOnGeneratedData.test_plain_lua_baseline_agrees()
  package.path = "tests/bench/?.lua;" .. package.path
  local plain = require("mql_plain")
  local s = get_sample()
  local model = assert(leadq.load_model("rules/mql.lua"))
  local as_of = leadq.parse_time and leadq.parse_time(AS_OF) or require("leadq.dsl").parse_time(AS_OF)
  local result = model:score(s.tbl, nil, { as_of = as_of })
  local score = plain.new("rules", as_of)
  local fields = { "title", "seniority", "department", "email_domain", "company", "employees", "industry",
                   "country", "budget", "created_at", "source", "timeline" }
  local cols = {}
  for _, f in ipairs(fields) do cols[f] = s.tbl:column(f) end
  local totals, statuses, grades = result:column("total"), result:column("status"), result:column("grade")
  for i = 1, #s.tbl do
    local lead = {}
    for _, f in ipairs(fields) do lead[f] = cols[f][i] end
    local total, status, grade = score(lead)
    if total ~= totals[i] or status ~= statuses[i] or grade ~= grades[i] then
      lu.fail(string.format("row %d: plain %s %s %s, leadq %s %s %s", i, total, status, grade,
        tostring(totals[i]), tostring(statuses[i]), tostring(grades[i])))
    end
  end
end

---------------------------------------------------------------------------------------------------

local TestSqlReadsMql = {}

function TestSqlReadsMql.test_two_model_run()
  local s = get_sample()
  local run = assert(leadq.load_models { "rules/mql.lua", "rules/sql.lua" })
  local result = run:score(s.tbl, nil, { as_of = AS_OF })
  local mql_status, sql_status = result:column("mql.status"), result:column("sql.status")
  local mql_total = result:column("mql.total")
  local seen_sql = 0
  for i = 1, #s.tbl do
    if mql_status[i] == "disqualified" then
      lu.assertEquals(sql_status[i], "disqualified")
    elseif mql_total[i] < 10 then
      lu.assertEquals(sql_status[i], "disqualified")
    end
    if sql_status[i] == "sql" then seen_sql = seen_sql + 1 end
  end
  lu.assertTrue(seen_sql > 0, "no lead reached sql")
end

function TestSqlReadsMql.test_mql_status_gives_timing_points()
  local run = assert(leadq.load_models { "rules/mql.lua", "rules/sql.lua" })
  local lead = {
    id = "G", title = "VP of Marketing", seniority = "vp", department = "marketing", company = "Acme",
    employees = 800, industry = "Software", country = "US", source = "referral", email_domain = "acme.com",
    created_at = "2026-10-20T10:00:00Z", budget = 40000,
  }
  local r = run:score_one(lead, nil, { as_of = AS_OF })
  local sql = r.sql or r
  -- mql: fit 50 + engagement 30 = 80 -> mql; sql: budget 25, authority 25, need 20 + 5, timing 10
  lu.assertEquals(sql.groups.timing, 10)
  lu.assertEquals(sql.groups.need, 25)
  lu.assertEquals(sql.total, 85)
  lu.assertEquals(sql.status, "sql")
end

---------------------------------------------------------------------------------------------------

-- rules/README.md is the marketing-ops cheat-sheet: its examples must be what the engine accepts.
local TestCheatSheet = {}

local function readme()
  local f = assert(io.open("rules/README.md"))
  local text = f:read("a")
  f:close()
  return text
end

function TestCheatSheet.test_every_when_example_loads()
  local whens = {}
  for line in readme():gmatch("[^\n]+") do
    if line:match("^| ") then
      local example = line:match("`(when = [^`]+)` |%s*$")
      if example and not example:find("function", 1, true) then whens[#whens + 1] = example end
    end
  end
  lu.assertTrue(#whens >= 35, "found " .. #whens .. " examples")
  local dir = tmpdir()
  local rules = {}
  for i, w in ipairs(whens) do
    rules[#rules + 1] = string.format('    rule "R%d" { group = "g", points = 1, %s },', i, w)
  end
  local path = dir .. "/examples.lua"
  write(path, 'return model "examples" {\n'
    .. '  lists = { target_industries = { "Software" }, competitors = { "x.com" } },\n'
    .. '  groups = { g = {} },\n  rules = {\n' .. table.concat(rules, "\n") .. '\n  },\n'
    .. '  thresholds = { ok = 1, otherwise = "no" },\n}\n')
  local ok, problems = leadq.check(path)
  lu.assertTrue(ok, table.concat(problems or {}, "\n"))
  os.remove(path)
  os.remove(dir)
end

function TestCheatSheet.test_the_whole_small_model_and_its_arithmetic()
  local code = readme():match("### A whole small model.-```lua\n(.-)```")
  lu.assertNotNil(code)
  local dir = tmpdir()
  local path = dir .. "/webinar.lua"
  write(path, code)
  local model, err = leadq.load_model(path)
  lu.assertNotNil(model, err)
  local vp = { id = "1", seniority = "VP", employees = 1000, country = "CA", email_domain = "acme.com" }
  local r = model:score_one(vp, nil, { as_of = AS_OF })
  lu.assertEquals(r.total, 40)
  lu.assertEquals(r.status, "call")
  vp.email_domain = "gmail.com"
  r = model:score_one(vp, nil, { as_of = AS_OF })
  lu.assertEquals(r.total, 20)
  lu.assertEquals(r.status, "email")
  os.remove(path)
  os.remove(dir)
end

function TestCheatSheet.test_the_escape_hatch_examples_load()
  local code = readme():match("### The Lua%-function escape hatch and its cost.-```lua\n(.-)```")
  lu.assertNotNil(code)
  local dir = tmpdir()
  local path = dir .. "/hatch.lua"
  write(path, 'return model "hatch" {\n  groups = { fit = {}, negative = {} },\n  rules = {\n' .. code
    .. '  },\n  thresholds = { ok = 1, otherwise = "no" },\n}\n')
  local model, err = leadq.load_model(path)
  lu.assertNotNil(model, err)
  local info = model:info()
  lu.assertEquals(#info.functions, 2)
  local r = model:score_one({ id = "1", title = string.rep("x", 70), employees = 450 }, nil, { as_of = AS_OF })
  lu.assertEquals(r.groups.fit, 4)
  lu.assertEquals(r.groups.negative, -2)
  os.remove(path)
  os.remove(dir)
end

-- The PQL and AQL section's commands run as written (build/leadq ... on data/), and print what it shows.
function TestCheatSheet.test_the_pql_and_aql_commands_run_and_print_what_is_shown()
  local section = readme():match("\n## PQL and AQL.-\n(.-)\n## Worked examples")
  lu.assertNotNil(section)
  local commands, shown, fence = {}, {}, nil
  for line in section:gmatch("[^\n]+") do
    if line:match("^```") then
      if fence then fence = nil else fence = line:match("^```(.*)$") end
    elseif fence == "sh" then
      lu.assertStrContains(line, "build/leadq ")
      commands[#commands + 1] = line
    elseif fence == "" and not line:find("...", 1, true) then
      shown[#shown + 1] = line
    end
  end
  lu.assertEquals(#commands, 4)
  lu.assertTrue(#shown >= 15, "shown lines: " .. #shown)
  local dir = tmpdir()
  local cli = require("leadq.cli")
  local printed = {}
  for _, command in ipairs(commands) do
    local argv = {}
    for word in command:gsub("^build/leadq ", ""):gmatch("%S+") do
      if word == "data" then word = dir end
      argv[#argv + 1] = (word:gsub("^data/", dir .. "/"))
    end
    local errors = {}
    local status = cli.main(argv, {
      print = function(s) printed[#printed + 1] = s end,
      error = function(s) errors[#errors + 1] = s end,
    })
    lu.assertEquals(status, 0, command .. "\n" .. table.concat(errors, "\n"))
  end
  local text = table.concat(printed, "\n"):gsub(dir:gsub("%p", "%%%0"), "data")
  for _, line in ipairs(shown) do lu.assertStrContains(text, line) end
  local f = assert(io.open(dir .. "/merges.csv"))
  lu.assertEquals(f:read("l"), "merged,kept,email")
  f:close()
  f = assert(io.open(dir .. "/accounts.csv"))
  lu.assertStrContains(f:read("l"), "account,contacts,engaged_contacts,score_max,top_mean,best_contact,"
    .. "personas_present,personas_engaged,total,status")
  f:close()
  helpers.remove_dir(dir)
end

return {
  TestCheatSheet = TestCheatSheet,
  TestShippedRules = TestShippedRules,
  TestBrokenScript = TestBrokenScript,
  TestMqlOnGeneratedData = TestMqlOnGeneratedData,
  TestSqlReadsMql = TestSqlReadsMql,
}
