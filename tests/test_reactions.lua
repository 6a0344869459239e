-- leadq.reactions: the reactions script (status and grade changes, routing, SLA, recycling), its
-- checks with file and line, and `leadq check` on it.
local lu = require("luaunit")
local reactions = require("leadq.reactions")
local helpers = require("helpers")

local M = {}
local BUILD = os.getenv("LEADQ_BUILD") or "build"

local function load(text)
  local r, problems = reactions.load_string(text, "r.lua")
  lu.assertNotNil(r, problems and table.concat(problems, "\n"))
  return r
end

local function problems_of(text)
  local r, problems = reactions.load_string(text, "r.lua")
  lu.assertNil(r)
  return problems
end

M.TestReactionsScript = {}

function M.TestReactionsScript.test_shipped_example_loads()
  local r, problems = reactions.load("rules/reactions.lua")
  lu.assertNotNil(r, problems and table.concat(problems, "\n"))
  lu.assertEquals(r.webhook_names, { "crm", "manager" })
  lu.assertEquals(r.sla.hours, 24)
  lu.assertEquals(r.sla.calendar:zone(), "Europe/Berlin")
  -- Friday 2026-07-03 16:00 in Berlin (14:00Z, summer time): 1 h Friday, 8 Monday, 8 Tuesday, 7 Wednesday
  lu.assertEquals(r:sla_deadline(1783087200), 1783087200 + 5 * 86400)   -- Wednesday 16:00 CEST
  lu.assertTrue(r.recycle.reset_engagement)
  lu.assertTrue(r:watches("mql"))
  lu.assertFalse(r:watches("pql"))
end

function M.TestReactionsScript.test_mistakes_name_file_line_and_key()
  local problems = problems_of(table.concat({
    'webhook "crm" { url = "ftp://example.com" }',
    'on { model = "mql", to = "mql", webhok = "crm" }',
    'route { team = "emae" }',
    'team "emea" { owners = { "a" }, capacity = -1 }',
    'sla { accept_within_hours = 24, working_hours = { days = { "mon", "fry" } } }',
    'recycle { reason = "x" }',
    'on { model = "mql", to = "mql", webhook = "slack" }',
  }, "\n"))
  lu.assertEquals(problems, {
    "r.lua:1: webhook 'crm': 'url' must be an http:// or https:// address, got ftp://example.com",
    "r.lua:2: on: unknown key 'webhok' (did you mean 'webhook'?) (expected model, from, to, grade, webhook, "
      .. "assign, transition, description)",
    "r.lua:2: on: does nothing: give a webhook, assign = true or a transition",
    "r.lua:4: team 'emea': 'capacity' must be a positive number of open leads per owner",
    "r.lua:5: sla: 'working_hours.days': unknown day 'fry' (did you mean 'fri'?)",
    "r.lua:6: recycle: give 'not_accepted_days', 'not_progressing_days' or both",
    "r.lua:7: on: unknown webhook 'slack' (declared: crm)",
    "r.lua:3: route: unknown team 'emae' (did you mean 'emea'?) (declared: emea)",
  })
end

function M.TestReactionsScript.test_syntax_and_sandbox_errors()
  lu.assertStrContains(problems_of('on { model = "mql"')[1], "r.lua:1: syntax error: '}' expected near")
  local p = problems_of('\nlocal f = io.open("/etc/passwd")')
  lu.assertStrContains(p[1], "r.lua:2: the script failed:")
  lu.assertStrContains(p[1], "'io' is not available in rule scripts")
  p = problems_of('model "mql" { }')
  lu.assertStrContains(p[1], "'model' belongs in a model's rule script, not in a reactions script")
  lu.assertEquals(problems_of("-- nothing\n"), { "r.lua:1: declares no reaction (expected webhook, on, team, route, "
    .. "sla, recycle)" })
  lu.assertEquals(problems_of('on { model = "mql", to = "mql", assign = true }'),
    { "r.lua:1: on: assign = true, but no route { ... } says who gets the lead" })
end

function M.TestReactionsScript.test_check_command_reads_reactions_scripts()
  local bad = helpers.temp_file('webhook "a" { url = "http://127.0.0.1:1/x" }\n\non { model = "mql", to = "mql", '
    .. 'webhook = "b" }\n')
  local p = io.popen(BUILD .. "/leadq check rules/reactions.lua rules/mql.lua " .. bad .. " 2>&1; echo \"exit=$?\"")
  local text = p:read("*a")
  p:close()
  helpers.remove(bad)
  lu.assertStrContains(text, "rules/reactions.lua: ok\nrules/mql.lua: ok\n")
  lu.assertStrContains(text, bad .. ":3: on: unknown webhook 'b' (did you mean 'a'?) (declared: a)\n")
  lu.assertStrContains(text, "1 of 3 files with problems\nexit=1")
end

function M.TestReactionsScript.test_the_cheat_sheet_examples_load()
  local text = assert(helpers.read("rules/README.md"))
  local section = text:match("## Reactions: what happens when a status changes(.-)\n## ")
  lu.assertNotNil(section)
  local script, rule = section:match("```lua\n(.-)```.-```lua\n(.-)```")
  local r, problems = reactions.load_string(script, "cheat-sheet")
  lu.assertNotNil(r, problems and table.concat(problems, "\n"))
  lu.assertEquals(#r.reactions, 4)
  lu.assertEquals(#r.routes, 3)
  local path = os.tmpname()
  helpers.write(path, 'return model "life" {\n  groups = { engagement = {} },\n  rules = {\n' .. rule
    .. '  },\n  thresholds = { ok = 1, otherwise = "no" },\n}\n')
  local ok, errs = require("leadq").check(path)
  os.remove(path)
  lu.assertTrue(ok, table.concat(errs or {}, "\n"))
end

M.TestReactionsDecide = {}

local SCRIPT = [[
webhook "crm" { url = "http://127.0.0.1:9/hooks" }
on { model = "mql", to = "mql", webhook = "crm", assign = true, transition = "mql" }
on { model = "mql", from = "mql", to = "nurture", webhook = "crm", transition = "nurture" }
on { model = "mql", to = "disqualified", transition = "disqualified" }
on { model = "mql", grade = true, webhook = "crm" }
team "dach" { owners = { "anna", "bernd" }, capacity = 2 }
team "rest" { owners = { zoe = 1 } }
route { account_owner = true }
route { when = { country = { one_of = { "DE", "AT" } }, employees = { at_least = 50 } }, team = "dach", why = "DACH" }
route { when = { industry = "Healthcare" }, owner = "hana" }
route { team = "rest" }
sla { accept_within_hours = 24, working_hours = { from = 9, to = 17 } }
recycle { not_accepted_days = 14, not_progressing_days = 45, reset_engagement = true }
]]

function M.TestReactionsDecide.test_status_and_grade_changes()
  local r = load(SCRIPT)
  local up = r:on_change{ model = "mql", from = "nurture", to = "mql", grade_from = "B2", grade_to = "A1" }
  lu.assertEquals(#up, 2)
  lu.assertEquals(up[1].transition, "mql")
  lu.assertTrue(up[1].assign)
  lu.assertTrue(up[2].grade)
  local down = r:on_change{ model = "mql", from = "mql", to = "nurture", grade_from = "A1", grade_to = "A1" }
  lu.assertEquals(#down, 1)
  lu.assertEquals(down[1].transition, "nurture")
  -- cold to nurture: no reaction says from = cold
  lu.assertEquals(#r:on_change{ model = "mql", from = "cold", to = "nurture", grade_from = "C", grade_to = "C" }, 0)
  lu.assertEquals(#r:on_change{ model = "sql", from = "sal", to = "sql" }, 0)
end

function M.TestReactionsDecide.test_routing_explains_why()
  local r = load(SCRIPT)
  local counters = reactions.memory_counters()
  local owner, team, why = r:route({ country = "DE", employees = 80, account_owner = "olga" }, counters)
  lu.assertEquals({ owner, team }, { "olga" })
  lu.assertEquals(why, "the account's owner olga (account_owner) by the route at r.lua:8")
  owner, team, why = r:route({ country = "DE", employees = 80 }, counters)
  lu.assertEquals({ owner, team }, { "anna", "dach" })
  lu.assertEquals(why, "team dach by the route at r.lua:9 (DACH: country is one of DE, AT and employees is 80 "
    .. "(at least 50)); round-robin: anna, 1 open lead of 2")
  lu.assertEquals((r:route({ country = "AT", employees = 60 }, counters)), "bernd")
  lu.assertEquals((r:route({ country = "AT", employees = 60 }, counters)), "anna")
  lu.assertEquals((r:route({ country = "AT", employees = 60 }, counters)), "bernd")
  -- both at capacity (2): the next route that matches takes the lead
  lu.assertEquals({ r:route({ country = "AT", employees = 60 }, counters) }, { "zoe", "rest",
    "team rest by the route at r.lua:11 (every lead); round-robin: zoe, 1 open lead of 1" })
  owner, team, why = r:route({ country = "AT", employees = 60 }, counters)
  lu.assertNil(owner)
  lu.assertNil(team)
  lu.assertEquals(why, "no owner: r.lua:8: the lead's account has no owner; r.lua:9: every owner of team dach is "
    .. "at capacity; r.lua:11: every owner of team rest is at capacity")
  r:release("anna", counters)
  lu.assertEquals((r:route({ country = "DE", employees = 60 }, counters)), "anna")
  owner, team, why = r:route({ country = "US", industry = "Healthcare" }, counters)
  lu.assertEquals({ owner, team }, { "hana" })
  lu.assertEquals(why, "owner hana by the route at r.lua:10 (industry is 'Healthcare')")
end

function M.TestReactionsDecide.test_sla_counts_working_hours()
  local r = load(SCRIPT)
  local friday_4pm = 1764950400   -- 2025-12-05 16:00 UTC, a Friday
  -- 1 h on Friday, 8 on Monday, 8 on Tuesday, the last 7 on Wednesday: 16:00 Wednesday
  lu.assertEquals(r:sla_deadline(friday_4pm), 1764950400 + 5 * 86400)
  local saturday = friday_4pm + 86400
  lu.assertEquals(r:sla_deadline(saturday), friday_4pm + 5 * 86400 + 3600)   -- 8 h Monday to Wednesday
  local clock = load('sla { accept_within_hours = 24 }')
  lu.assertEquals(clock:sla_deadline(friday_4pm), friday_4pm + 86400)
end

-- Working hours on a zone's wall clock (tzdata, read by the C core), daylight saving included.
function M.TestReactionsDecide.test_sla_working_hours_in_a_time_zone_across_dst()
  local function deadline(hours, wh, at)
    local r = load(string.format("sla { accept_within_hours = %s, working_hours = %s }", hours, wh))
    return os.date("!%Y-%m-%dT%H:%M:%SZ", r:sla_deadline(at))
  end
  local paris = '{ from = 9, to = 17, zone = "Europe/Paris" }'
  -- Friday 2026-03-27 15:00 CET (14:00Z): 2 h on Friday, then Monday opens at 09:00 CEST (07:00Z)
  lu.assertEquals(deadline(4, paris, 1774620000), "2026-03-30T09:00:00Z")
  -- the same in UTC's hours: Monday opens at 09:00Z
  lu.assertEquals(deadline(4, '{ from = 9, to = 17 }', 1774620000), "2026-03-30T10:00:00Z")
  -- Friday 2026-10-23 15:00 CEST (13:00Z): Monday 26th opens at 09:00 CET (08:00Z)
  lu.assertEquals(deadline(4, paris, 1792760400), "2026-10-26T10:00:00Z")
  -- the spring-forward night itself: Sundays 01:00 to 04:00 local are 2 real hours on 29 March
  -- (02:00 to 03:00 does not exist), 3 on other Sundays
  local sundays = '{ from = 1, to = 4, days = { "sun" }, zone = "Europe/Paris" }'
  lu.assertEquals(deadline(2, sundays, 1774742400 - 3600), "2026-03-29T02:00:00Z")   -- 04:00 CEST
  lu.assertEquals(deadline(3, sundays, 1774742400 - 3600), "2026-04-05T00:00:00Z")   -- 1 h more a week on
  -- the fall-back night: 01:00 CEST to 04:00 CET are 4 real hours on 25 October
  lu.assertEquals(deadline(4, sundays, 1792879200), "2026-10-25T03:00:00Z")   -- from Saturday 24:00 CEST
  -- another hemisphere, and a fixed offset
  local sydney = '{ from = 9, to = 17, zone = "Australia/Sydney" }'
  lu.assertEquals(deadline(1, sydney, 1767225600), "2026-01-01T01:00:00Z")   -- 11:00 to 12:00 AEDT (+11)
  lu.assertEquals(deadline(1, sydney, 1782864000), "2026-07-01T01:00:00Z")   -- 10:00 to 11:00 AEST (+10)
  lu.assertEquals(deadline(1, '{ from = 9, to = 17, zone = "+05:30" }', 1767225600), "2026-01-01T04:30:00Z")
  -- a time that is no number of seconds has no deadline (the C core computes no day from it)
  local cal = require("leadq.core").calendar("Europe/Paris", 9, 17, 62)
  lu.assertNil(cal:deadline(0 / 0, 3600))
  lu.assertNil(cal:deadline(1e300, 3600))
  lu.assertEquals(cal:offset(0 / 0), 3600)
  -- years past the file's transitions follow its POSIX rule (CET-1CEST,M3.5.0,M10.5.0/3)
  lu.assertEquals(deadline(1, paris, 4110480000), "2100-04-05T08:00:00Z")    -- Monday 5 April 2100, CEST
end

function M.TestReactionsScript.test_an_unknown_zone_is_refused_with_file_and_line()
  local problems = problems_of('webhook "m" { url = "http://127.0.0.1:9/x" }\n' ..
    'sla { accept_within_hours = 8, working_hours = { zone = "Europe/Pariss" }, webhook = "m" }\n' ..
    'sla { accept_within_hours = 8, working_hours = { zone = "+25:00", tz = 1 } }\n')
  lu.assertEquals(problems, {
    "r.lua:2: sla: 'working_hours.zone': unknown time zone 'Europe/Pariss' (not in /usr/share/zoneinfo: is the "
      .. "tzdata package installed?)",
    "r.lua:3: sla: declared twice (first at line 2)",
    "r.lua:3: sla: 'working_hours': unknown key 'tz' (did you mean 'to'?) (expected from, to, days, zone)",
    "r.lua:3: sla: 'working_hours.zone': bad UTC offset '+25:00' (expected +HH:MM or -HH:MM, at most 14 hours)",
  })
end

function M.TestReactionsDecide.test_recycling()
  local r = load(SCRIPT)
  local day = 86400
  lu.assertNil(r:recycle_due("mql", 0, 13 * day, false))
  lu.assertEquals(r:recycle_due("mql", 0, 14 * day, false), "not accepted within 14 days")
  lu.assertNil(r:recycle_due("sal", 0, 20 * day, true))
  lu.assertEquals(r:recycle_due("sal", 0, 45 * day, true), "no progress from sal within 45 days")
end

return M
