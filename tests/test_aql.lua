-- rules/aql.lua: the account-qualified model on the account rollups (accounts.build), with
-- account-level intent events, and explanations naming the rules and the contacts.
local lu = require("luaunit")
local leadq = require("leadq")
local accounts = require("leadq.accounts")

local M = {}
M.TestAql = {}
local T = M.TestAql

local DAY = 86400
local AS_OF = 1780012800

local LEAD_SCHEMA = { id = "text", email = "text", title = "text", seniority = "category", department = "category",
                      employees = "number", industry = "category", country = "category" }

-- acme.com: a full committee, three engaged; beta.io: one lukewarm contact; a competitor; a gmail lead.
local function leads_and_scores()
  local leads = leadq.table({
    { id = "a1", email = "ceo@acme.com", title = "CEO", seniority = "c_level", department = "executive",
      employees = 900, industry = "Software", country = "US" },
    { id = "a2", email = "dir@acme.com", title = "Marketing Director", seniority = "director",
      department = "marketing" },
    { id = "a3", email = "eng@acme.com", title = "Staff Engineer", seniority = "individual",
      department = "engineering" },
    { id = "a4", email = "ctl@acme.com", title = "Controller", seniority = "manager", department = "finance" },
    { id = "b1", email = "x@beta.io", title = "Analyst", seniority = "individual", department = "sales",
      employees = 40, industry = "Retail", country = "FR" },
    { id = "c1", email = "spy@leadlyft.io", title = "VP Sales", seniority = "vp", department = "sales",
      employees = 300, industry = "Software", country = "US" },
    { id = "g1", email = "me@gmail.com", title = "CEO", seniority = "c_level" },
  }, LEAD_SCHEMA)
  local scores = leadq.table({ { total = 80 }, { total = 65 }, { total = 40 }, { total = 30 }, { total = 20 },
                               { total = 90 }, { total = 99 } })
  return leads, scores
end

local function account_events()
  local list = {}
  for d = 1, 3 do list[#list + 1] = { lead_id = "acme.com", type = "intent_surge", at = AS_OF - d * 5 * DAY } end
  list[#list + 1] = { lead_id = "beta.io", type = "account_visit", at = AS_OF - DAY }
  return leadq.table(list, { lead_id = "category", type = "category", at = "time" })
end

local function scored()
  local leads, scores = leads_and_scores()
  local acc, map, report = accounts.build(leads, scores, { score = "total" })
  lu.assertNotNil(acc, map)
  local model = assert(leadq.load_model("rules/aql.lua"))
  local res, errs = model:score(acc, account_events(), { as_of = AS_OF, id = "account" })
  lu.assertNotNil(res, errs)
  return acc, res, model, { leads, map, scores }, report
end

function T.test_accounts_from_leads()
  local acc, _, _, _, report = scored()
  lu.assertEquals(acc:column("account"), { "acme.com", "beta.io", "leadlyft.io" })
  lu.assertEquals(report.personal, 1)
  local a = acc:row(1)
  lu.assertEquals({ a.contacts, a.engaged_contacts, a.top_mean, a.best_contact }, { 4, 3, 185 / 3, "a1" })
  lu.assertEquals({ a.decision_maker_engaged, a.champion_engaged, a.technical_evaluator_engaged, a.finance_engaged },
                  { true, true, true, false })      -- the controller's 30 is below the engaged bar, 40
  lu.assertTrue(a.finance_present)
  lu.assertEquals({ a.employees, a.industry, a.country }, { 900, "Software", "US" })
end

function T.test_statuses_and_points()
  local _, res = scored()
  lu.assertEquals(res:column("status"), { "aql", "aware", "disqualified" })
  -- acme: engagement 10+15+10 = 35, committee 15+10+10+5 = 40 -> 35, intent 15+10 = 25, fit 15+10+5 = 30 -> 25
  lu.assertEquals(res:row(1).total, 120)
  local r = res:row(1)
  lu.assertEquals({ r.engagement, r.committee, r.intent, r.fit }, { 35, 35, 25, 25 })
  -- beta: no engaged contact (20 < 40), one visit (below 5), single-threaded
  lu.assertEquals(res:row(2).total, -10)
  lu.assertEquals(res:row(2).reason, "SINGLE_THREADED")
  lu.assertEquals(res:row(3).reason, "competitor")
end

function T.test_explain_names_rules_and_contacts()
  local acc, _, model, sources = scored()
  local ex = accounts.explain(model, acc, 1, sources, { score = "total", engaged_at = 40 }, account_events(),
                              { as_of = AS_OF, id = "account" })
  lu.assertEquals(ex.status, "aql")
  local fired = {}
  for _, r in ipairs(ex.rules) do fired[r.id] = r.points end
  lu.assertEquals(fired.DECISION_MAKER_ENGAGED, 15)
  lu.assertEquals(fired.INTENT_SURGE, 15)
  lu.assertEquals(#ex.contacts, 4)
  lu.assertEquals({ ex.contacts[1].id, ex.contacts[1].score, ex.contacts[4].id }, { "a1", 80, "a4" })
  local text = tostring(ex)
  lu.assertStrContains(text, "DECISION_MAKER_ENGAGED")
  lu.assertStrContains(text, "contacts of acme.com (best first):")
  lu.assertStrContains(text, "a1  80  engaged")
end

function T.test_without_account_events()
  local leads, scores = leads_and_scores()
  local acc = accounts.build(leads, scores, { score = "total" })
  local model = assert(leadq.load_model("rules/aql.lua"))
  local res = model:score(acc, { as_of = AS_OF, id = "account" })
  lu.assertEquals(res:row(1).intent, 0)
  lu.assertEquals(res:row(1).status, "aql")
end

function T.test_build_misuse()
  local leads, scores = leads_and_scores()
  local ok, err = pcall(accounts.build, leads, scores, { score = "total", engaged = 10 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "build: unknown option 'engaged' (did you mean 'engaged_at'?)")
  ok, err = pcall(accounts.build, leads, scores, { score = "totl" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "rollup: no column 'totl' (score) (did you mean 'total'?)")
end

function T.test_the_script_checks_clean()
  lu.assertTrue(leadq.check("rules/aql.lua"))
end

-- `leadq score` with MQL and PQL on generated leads and events, and the account model on top.
local function run_score(arg)
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  local status = require("leadq.cli.score").score(arg, out)
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

function T.test_score_command_writes_lead_and_account_results()
  local dir = require("helpers").tmpdir()
  local n = LEADQ_VARIANT == "asan" and 300 or 1500
  assert(require("leadq.gen").generate { leads = n, seed = 11, out = dir })
  local status, text, err = run_score({ rules = "rules/mql.lua,rules/pql.lua", leads = dir .. "/leads.csv",
    events = dir .. "/events.csv", ["as-of"] = "2026-11-01", out = dir .. "/scored.csv", accounts = "rules/aql.lua",
    ["accounts-out"] = dir .. "/accounts.csv" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "mql: leads by status")
  lu.assertStrContains(text, "pql: leads by status")
  lu.assertStrContains(text, "rolled up on mql.total, wrote " .. dir .. "/accounts.csv")
  lu.assertStrContains(text, "aql: accounts by status")
  local f = assert(io.open(dir .. "/accounts.csv"))
  local header = f:read("l")
  lu.assertEquals(header, "account,contacts,engaged_contacts,score_max,top_mean,best_contact,personas_present,"
    .. "personas_engaged,total,status,engagement,committee,intent,fit,negative,reason")
  local rows, contacts = 0, 0
  for line in f:lines() do
    rows = rows + 1
    contacts = contacts + tonumber(line:match("^[^,]*,(%d+),"))
    lu.assertNotStrContains(line:match("^[^,]*"), "gmail.com")
  end
  f:close()
  local accounts_line = text:match("accounts: (%d+) from (%d+) leads")
  lu.assertEquals(tonumber(accounts_line), rows)
  local personal = tonumber(text:match("(%d+) personal domains"))
  local none = tonumber(text:match("(%d+) without one"))
  lu.assertEquals(contacts + personal + none, n)     -- every lead is in one account or said to be in none
  -- --dedupe: the generator's duplicate leads merged first, every merge in --merges-out
  status, text, err = run_score({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", dedupe = true,
    ["merges-out"] = dir .. "/merges.csv" })
  lu.assertEquals(status, 0, err)
  local merged, left = text:match("duplicates: (%d+) leads merged into the earliest created lead with the same "
    .. "e%-mail, (%d+) leads left, wrote ")
  lu.assertNotNil(merged, text)
  lu.assertEquals(tonumber(merged) + tonumber(left), n)
  lu.assertStrContains(text, "scored " .. require("leadq.util").thousands(tonumber(left)) .. " leads")
  local lines = 0
  for _ in io.lines(dir .. "/merges.csv") do lines = lines + 1 end
  lu.assertEquals(lines, tonumber(merged) + 1)
  -- explain one account: its rules and its contacts, best first
  local fh = assert(io.open(dir .. "/accounts.csv"))
  local first_account = fh:read("*a"):match("\n([^,]+),")
  fh:close()
  local explain_cli = require("leadq.cli.explain")
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  status = explain_cli.explain({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", events = dir .. "/events.csv",
    ["as-of"] = "2026-11-01", accounts = "rules/aql.lua", account = first_account }, out)
  lu.assertEquals(status, 0, table.concat(errors, "\n"))
  text = table.concat(printed, "\n")
  lu.assertStrContains(text, "aql: ")
  lu.assertStrContains(text, "thresholds: aql at 60, engaged at 30, else aware")
  lu.assertStrContains(text, "contacts of " .. first_account .. " (best first):")
  status = explain_cli.explain({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", accounts = "rules/aql.lua",
    account = "nowhere.example" }, out)
  lu.assertEquals(status, 1)
  lu.assertStrContains(errors[#errors], "no account 'nowhere.example' among the ")
  status = explain_cli.explain({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", account = "x.com" }, out)
  lu.assertEquals(status, 2)
  lu.assertStrContains(errors[#errors],
    "explaining an account needs --accounts FILE (the account model) and --account NAME")
  local _
  status, _, err = run_score({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", ["accounts-out"] = "x.csv" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "--accounts-out and --account-score need --accounts FILE")
  status, _, err = run_score({ rules = "rules/mql.lua", leads = dir .. "/leads.csv", accounts = "rules/aql.lua",
    ["account-score"] = "totl" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "--account-score: no column 'totl' in the lead results (did you mean 'total'?)")
end

-- The generator's account intent (generate{ intent = true }): events keyed by the account's domain,
-- only added lines (leads, transitions and the other events the same bytes), and rules/aql.lua's
-- intent rules fire on them.
function T.test_generated_intent_events()
  local helpers = require("helpers")
  local gen = require("leadq.gen")
  local function read_all(path)
    local f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    return text
  end
  local n = 2000
  local plain, intent = helpers.tmpdir(), helpers.tmpdir()
  assert(gen.generate { leads = n, seed = 5, out = plain })
  assert(gen.generate { leads = n, seed = 5, out = intent, intent = true })
  lu.assertEquals(read_all(intent .. "/leads.csv"), read_all(plain .. "/leads.csv"))
  lu.assertEquals(read_all(intent .. "/transitions.csv"), read_all(plain .. "/transitions.csv"))
  local kept, added = {}, { intent_surge = 0, account_visit = 0 }
  for line in read_all(intent .. "/events.csv"):gmatch("[^\n]+") do
    local id, ty = line:match("^([^,]*),([^,]*),")
    if added[ty] then
      added[ty] = added[ty] + 1
      lu.assertNotNil(accounts.normalize_domain(id), line)     -- keyed by a domain, not a lead id
      lu.assertNotStrContains(id, "gmail.com")
    else
      kept[#kept + 1] = line
    end
  end
  lu.assertEquals(table.concat(kept, "\n") .. "\n", read_all(plain .. "/events.csv"))
  lu.assertTrue(added.intent_surge > 0 and added.account_visit > 0)
  -- the same bytes again, and with product usage too the intent lines are the same ones
  local again, both = helpers.tmpdir(), helpers.tmpdir()
  assert(gen.generate { leads = n, seed = 5, out = again, intent = true })
  lu.assertEquals(read_all(again .. "/events.csv"), read_all(intent .. "/events.csv"))
  assert(gen.generate { leads = n, seed = 5, out = both, intent = true, product = true })
  local surges = 0
  for _ in read_all(both .. "/events.csv"):gmatch("\n[^,\n]*,intent_surge,") do surges = surges + 1 end
  lu.assertEquals(surges, added.intent_surge)

  local leads = assert(leadq.read_csv(intent .. "/leads.csv"))
  local events = assert(leadq.read_events(intent .. "/events.csv"))
  local as_of = "2026-11-01"
  local scores = assert(leadq.load_model("rules/mql.lua"):score(leads, events, { as_of = as_of }))
  local acc = accounts.build(leads, scores, { score = "total" })
  local res = assert(leadq.load_model("rules/aql.lua"):score(acc, events, { as_of = as_of, id = "account" }))
  local fired = 0
  for _, g in ipairs(res:column("intent")) do if g > 0 then fired = fired + 1 end end
  lu.assertTrue(fired > 0, "accounts with intent points: " .. fired)
  lu.assertTrue(fired < #acc / 2, "accounts with intent points: " .. fired .. " of " .. #acc)
  local ok, err = pcall(gen.generate, { leads = 1, intent = "yes" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "intent must be true or false")
  for _, d in ipairs({ plain, intent, again, both }) do helpers.remove_dir(d) end
end

return M
