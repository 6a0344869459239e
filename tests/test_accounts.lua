-- Accounts: leads mapped to accounts (account id, e-mail or website domain, never a personal
-- domain), duplicate leads merged by the declared policy, and the rollup in C checked against the
-- same rollup written in plain Lua.
local lu = require("luaunit")
local leadq = require("leadq")
local accounts = require("leadq.accounts")

local M = {}
M.TestAccounts = {}
local T = M.TestAccounts

function T.test_normalize_email()
  lu.assertEquals(accounts.normalize_email("  Jane.Doe+news@Acme.COM "), "jane.doe@acme.com")
  lu.assertEquals(accounts.normalize_email("j.a.n.e+x@gmail.com"), "jane@gmail.com")
  lu.assertEquals(accounts.normalize_email("JANE@googlemail.com"), "jane@gmail.com")
  lu.assertNil(accounts.normalize_email("not an address"))
  lu.assertNil(accounts.normalize_email("+tag@acme.com"))
  lu.assertNil(accounts.normalize_email(nil))
end

function T.test_normalize_domain()
  lu.assertEquals(accounts.normalize_domain("https://www.Acme.com/pricing?x=1"), "acme.com")
  lu.assertEquals(accounts.normalize_domain("acme.co.uk."), "acme.co.uk")
  lu.assertEquals(accounts.normalize_domain("jane@Acme.com"), "acme.com")
  lu.assertEquals(accounts.normalize_domain("http://shop.acme.com:8080"), "shop.acme.com")
  lu.assertNil(accounts.normalize_domain("localhost"))
  lu.assertNil(accounts.normalize_domain("n/a"))
end

local function lead_table()
  return leadq.table({
    { id = "L1", email = "ann@acme.com", website = "acme.com", created_at = 300 },
    { id = "L2", email = "bob@gmail.com", website = "https://www.Beta.io/", created_at = 200 },
    { id = "L3", email = "cy@yahoo.com", created_at = 100 },
    { id = "L4", email = "dee@Acme.com", account_id = "ACC-9", created_at = 50 },
    { id = "L5", website = "gmail.com", created_at = 10 },
    { id = "L6", email = "ANN+promo@acme.com ", created_at = 100 },
  }, { id = "text", email = "text", website = "text", account_id = "category", created_at = "number" })
end

function T.test_map_by_id_email_and_website()
  local map, report = accounts.map(lead_table())
  lu.assertEquals(map:column("account"), { "acme.com", "beta.io", nil, "ACC-9", nil, "acme.com" })
  lu.assertEquals(map:column("account_source"), { "email", "website", nil, "account_id", nil, "email" })
  lu.assertEquals(report.email, 2)
  lu.assertEquals(report.website, 1)
  lu.assertEquals(report.account_id, 1)
  lu.assertEquals(report.personal, 2)      -- yahoo.com e-mail; gmail.com as a website
  lu.assertEquals(report.none, 0)
end

function T.test_map_free_domains_list_and_errors()
  local map = accounts.map(lead_table(), { free_domains = { "acme.com" } })
  lu.assertEquals(map:column("account")[1], nil)
  lu.assertEquals(map:column("account")[3], "yahoo.com")
  local ok, err = pcall(accounts.map, lead_table(), { emial = "email" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "map: unknown option 'emial' (did you mean 'email'?)")
  ok, err = pcall(accounts.map, lead_table(), { website = "web_site" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "map: no column 'web_site' in the leads (did you mean 'website'?)")
  local none, msg = accounts.map(lead_table(), { free_domains = "/nonexistent/free.txt" })
  lu.assertNil(none)
  lu.assertStrContains(msg, "cannot read the free-domain list")
end

function T.test_dedupe_earliest_created_wins_events_unioned()
  local events = leadq.table({
    { lead_id = "L1", type = "page_view", at = 1000 },
    { lead_id = "L6", type = "demo_request", at = 2000 },
    { lead_id = "L2", type = "page_view", at = 3000 },
  }, { lead_id = "category", type = "category", at = "time" })
  local leads, evs, merges = accounts.dedupe(lead_table(), events)
  lu.assertEquals(merges.count, 1)
  lu.assertEquals(merges[1].kept, "L6")              -- created at 100, before L1 (300)
  lu.assertEquals(merges[1].merged, "L1")
  lu.assertEquals(merges[1].email, "ann@acme.com")
  lu.assertEquals(#leads, 5)
  lu.assertEquals(leads:column("id"), { "L2", "L3", "L4", "L5", "L6" })
  lu.assertEquals(evs:column("lead_id"), { "L6", "L6", "L2" })
  local ok, err = pcall(accounts.dedupe, lead_table(), { policy = "earliest_create" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "dedupe: unknown policy 'earliest_create' (did you mean 'earliest_created'?)")
end

function T.test_dedupe_gmail_dots_and_three_copies()
  local t = leadq.table({
    { id = "a", email = "jo.hn@gmail.com", created_at = 30 },
    { id = "b", email = "john+x@gmail.com", created_at = 20 },
    { id = "c", email = "JOHN@googlemail.com", created_at = 10 },
    { id = "d", email = "other@acme.com" },
  }, { id = "text", email = "text", created_at = "number" })
  local leads, _, merges = accounts.dedupe(t)
  lu.assertEquals(leads:column("id"), { "c", "d" })
  lu.assertEquals(merges.count, 2)
  lu.assertEquals({ merges[1].merged, merges[1].kept }, { "a", "c" })
  lu.assertEquals({ merges[2].merged, merges[2].kept }, { "b", "c" })
end

-- the same rollup in plain Lua, to check the C one (and for the bench)
local function lua_rollup(accs, scores, k, engaged_at)
  local by = {}
  for i = 1, #accs do
    local a = accs[i]
    if a ~= nil then
      local r = by[a]
      if not r then r = { contacts = 0, scored = 0, engaged = 0, sum = 0, top = {} }; by[a] = r end
      r.contacts = r.contacts + 1
      local s = scores[i]
      if s ~= nil then
        r.scored, r.sum = r.scored + 1, r.sum + s
        if s >= engaged_at then r.engaged = r.engaged + 1 end
        if r.max == nil or s > r.max then r.max = s end
        r.top[#r.top + 1] = s
      end
    end
  end
  for _, r in pairs(by) do
    table.sort(r.top, function(x, y) return x > y end)
    local sum, n = 0, math.min(k, #r.top)
    for j = 1, n do sum = sum + r.top[j] end
    r.top_sum, r.top_mean = sum, n > 0 and sum / n or nil
  end
  return by
end

function T.test_rollup_matches_plain_lua()
  local n = LEADQ_VARIANT == "asan" and 3000 or 30000
  local seed = 7
  local function rand(m) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % m end
  local recs = {}
  for i = 1, n do
    local a = rand(10) == 0 and nil or ("acc" .. rand(math.floor(n / 8)))
    local s = rand(20) == 0 and nil or rand(101) - 10
    recs[i] = { id = "L" .. i, account = a, score = s }
  end
  local t = leadq.table(recs, { id = "text", account = "category", score = "number" })
  local acc = accounts.rollup(t, { score = "score", top_k = 3, engaged_at = 50 })
  local want = lua_rollup(t:column("account"), t:column("score"), 3, 50)
  local seen = 0
  for _, r in acc:rows() do
    local w = want[r.account]
    seen = seen + 1
    lu.assertEquals(r.contacts, w.contacts)
    lu.assertEquals(r.scored_contacts, w.scored)
    lu.assertEquals(r.engaged_contacts, w.engaged)
    lu.assertEquals(r.score_sum, w.sum)
    lu.assertEquals(r.score_max, w.max)
    lu.assertEquals(r.top_sum, w.top_sum)
    lu.assertAlmostEquals(r.top_mean or -1, w.top_mean or -1, 1e-9)
  end
  local count = 0
  for _ in pairs(want) do count = count + 1 end
  lu.assertEquals(seen, count)
end

local PERSONAS = {
  decision_maker = { seniority = { one_of = { "C-level", "VP" } } },
  champion = { seniority = "Director" },
  technical_evaluator = { department = "Engineering" },
  finance = { department = "Finance" },
}

local function company()
  return leadq.table({
    { id = "c1", account = "acme", title = "CTO", seniority = "C-level", department = "Engineering", score = 70,
      employees = 800, industry = "Software" },
    { id = "c2", account = "acme", title = "Director Ops", seniority = "Director", department = "Operations",
      score = 20, employees = 750 },
    { id = "c3", account = "acme", title = "Controller", seniority = "Manager", department = "Finance", score = 55 },
    { id = "c4", account = "beta", title = "Analyst", seniority = "Individual", department = "Finance", score = 10,
      industry = "Retail" },
    { id = "c5", title = "Freelancer", score = 99 },
  }, { id = "text", account = "category", title = "text", seniority = "category", department = "category",
       score = "number", employees = "number", industry = "category" })
end

function T.test_rollup_personas_best_contact_and_carry()
  local acc = accounts.rollup(company(), { score = "score", engaged_at = 50, top_k = 2, personas = PERSONAS,
                                           carry = { "employees", "industry" } })
  lu.assertEquals(#acc, 2)
  local a = acc:row(1)
  lu.assertEquals(a.account, "acme")
  lu.assertEquals({ a.contacts, a.engaged_contacts, a.score_max, a.top_sum, a.top_mean }, { 3, 2, 70, 125, 62.5 })
  lu.assertEquals(a.best_contact, "c1")
  lu.assertEquals({ a.decision_maker_present, a.decision_maker_engaged }, { true, true })
  lu.assertEquals({ a.technical_evaluator_present, a.technical_evaluator_engaged }, { true, true })
  lu.assertEquals({ a.champion_present, a.champion_engaged }, { true, false })
  lu.assertEquals({ a.finance_present, a.finance_engaged }, { true, true })
  lu.assertEquals({ a.personas_present, a.personas_engaged }, { 4, 3 })
  lu.assertEquals({ a.employees, a.industry }, { 800, "Software" })
  local b = acc:row(2)
  lu.assertEquals({ b.account, b.contacts, b.engaged_contacts, b.personas_present, b.personas_engaged },
                  { "beta", 1, 0, 1, 0 })
  lu.assertEquals({ b.employees, b.industry }, { nil, "Retail" })
end

function T.test_contacts_best_first()
  local list = accounts.contacts(company(), "acme", { score = "score", engaged_at = 50 })
  lu.assertEquals(#list, 3)
  lu.assertEquals({ list[1].id, list[2].id, list[3].id }, { "c1", "c3", "c2" })
  lu.assertEquals({ list[1].engaged, list[3].engaged }, { true, false })
end

function T.test_rollup_misuse_raises()
  local t = company()
  local function err_of(...)
    local ok, e = pcall(accounts.rollup, ...)
    lu.assertFalse(ok)
    return e
  end
  lu.assertStrContains(err_of(t, { score = "score", topk = 2 }),
                       "rollup: unknown option 'topk' (did you mean 'top_k'?)")
  lu.assertStrContains(err_of(t, { score = "scor" }), "rollup: no column 'scor' (score) (did you mean 'score'?)")
  lu.assertStrContains(err_of(t, {}), "rollup: missing option 'score'")
  lu.assertStrContains(err_of(t, { score = "title" }), "rollup: column 'title' must be a number, not text")
  lu.assertStrContains(err_of(t, { score = "score", top_k = 0 }), "rollup: top_k must be a whole number from 1 to 64")
  lu.assertStrContains(err_of(t, { score = "score", account = "title" }), "column 'title' must be a category")
  lu.assertStrContains(err_of({ t, leadq.table({ { x = 1 } }) }, { score = "score" }), "source 2 has 1 rows, not 5")
  -- a field no column holds reads as missing (as in scoring): a persona on it matches no one
  local acc = accounts.rollup(t, { score = "score", personas = { boss = { titel = "CTO" } } })
  for _, present in ipairs(acc:column("boss_present")) do lu.assertFalse(present) end
end

function T.test_rollup_from_several_tables()
  local leads = leadq.table({ { id = "a", email = "a@acme.com" }, { id = "b", email = "b@acme.com" },
                              { id = "c", email = "c@gmail.com" } })
  local map = accounts.map(leads)
  local scores = leadq.table({ { total = 10 }, { total = 30 }, { total = 90 } })
  local acc = accounts.rollup({ leads, map, scores }, { score = "total" })
  lu.assertEquals(#acc, 1)
  lu.assertEquals(acc:row(1), { account = "acme.com", contacts = 2, scored_contacts = 2, engaged_contacts = 2,
    score_sum = 40, score_max = 30, top_sum = 40, top_mean = 20, best_contact = "b", personas_present = 0,
    personas_engaged = 0 })
end

function T.test_funnel_by_account()
  local leads = leadq.table({
    { id = "L1", email = "a@acme.com", source = "web" }, { id = "L2", email = "b@acme.com", source = "event" },
    { id = "L3", email = "c@beta.io", source = "web" }, { id = "L4", email = "d@gmail.com", source = "web" },
  }, { id = "text", email = "text", source = "category" })
  local dims = accounts.dimension(leads, (accounts.map(leads)))
  local funnel = require("leadq.funnel")
  local f = funnel.new()
  assert(f:add("L1", "mql", "2024-01-03"))
  assert(f:add("L1", "sql", "2024-01-05"))
  assert(f:add("L2", "mql", "2024-01-04"))
  assert(f:add("L3", "mql", "2024-01-04"))
  assert(f:add("L4", "mql", "2024-01-04"))
  f:join(dims, "id")
  local t = funnel.report(f:aggregate{ by = { "account" } })
  lu.assertEquals(#t.groups, 3)
  lu.assertEquals(t.groups[1].key, {})                  -- the gmail.com lead: no account
  lu.assertEquals(t.groups[2].key, { account = "acme.com" })
  lu.assertEquals({ t.groups[2].leads, t.groups[2].reached.mql, t.groups[2].reached.sql }, { 2, 2, 1 })
  lu.assertEquals(t.groups[3].key, { account = "beta.io" })
  t = funnel.report(f:aggregate{ by = { "account", "source" } })  -- the leads' own dimensions come along
  lu.assertEquals(t.groups[2].key, { account = "acme.com", source = "event" })
  lu.assertErrorMsgContains("dimension: the map has 1 rows, the leads 4", accounts.dimension, leads,
    (accounts.map(leadq.table({ { id = "x" } }))))
end


function T.test_leadq_entry_points()
  local leads = leadq.table({ { id = "a", email = "A@Acme.com" }, { id = "b", email = "a@acme.com", created_at = 1 } },
    { id = "text", email = "text", created_at = "number" })
  local map = leadq.account_map(leads)
  lu.assertEquals(map:column("account"), { "acme.com", "acme.com" })
  local kept, _, merges = leadq.dedupe_leads(leads)
  lu.assertEquals({ #kept, merges[1].kept, merges[1].merged }, { 1, "b", "a" })
  local acc = leadq.account_rollup({ leads, map, leadq.table({ { s = 1 }, { s = 2 } }) }, { score = "s" })
  lu.assertEquals(acc:row(1).top_mean, 1.5)
  lu.assertEquals(leadq.accounts.normalize_email(" X+y@B.com"), "x@b.com")
end


-- many copies of one address, each created earlier than the last: linear, and the last row wins
function T.test_dedupe_many_copies()
  local n = LEADQ_VARIANT == "asan" and 2000 or 20000
  local recs = {}
  for i = 1, n do recs[i] = { id = "L" .. i, email = "same@acme.com", created_at = n - i } end
  local kept, _, merges = accounts.dedupe(leadq.table(recs, { id = "text", email = "text", created_at = "number" }))
  lu.assertEquals(#kept, 1)
  lu.assertEquals(kept:row(1).id, "L" .. n)
  lu.assertEquals(merges.count, n - 1)
  lu.assertEquals({ merges[1].merged, merges[1].kept, merges[n - 1].merged }, { "L1", "L" .. n, "L" .. (n - 1) })
end


-- The same dedupe done row by row in Lua (the way it was before the copies moved to C).
local function dedupe_reference(leads, events, merges)
  local merged, survivor = {}, {}
  for _, m in ipairs(merges) do
    merged[m.merged_row] = true
    survivor[tostring(m.merged)] = m.kept
  end
  local recs = {}
  for i = 1, #leads do if not merged[i] then recs[#recs + 1] = leads:row(i) end end
  local evs = {}
  for i = 1, #events do
    local e = events:row(i)
    e.lead_id = survivor[tostring(e.lead_id)] or e.lead_id
    evs[i] = e
  end
  return leadq.table(recs, leads:schema()), leadq.table(evs, events:schema())
end

local function assert_same_table(a, b, what)
  lu.assertEquals(#a, #b, what)
  lu.assertEquals(a:schema(), b:schema(), what)
  for _, n in ipairs(a:names()) do lu.assertEquals(a:column(n), b:column(n), what .. " " .. n) end
end

function T.test_dedupe_in_c_matches_the_row_by_row_copy()
  local helpers = require("helpers")
  local dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = LEADQ_VARIANT == "asan" and 800 or 5000, seed = 3, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
  local events = assert(leadq.read_events(dir .. "/events.csv"))
  helpers.remove_dir(dir)
  local kept, evs, merges = accounts.dedupe(leads, events)
  lu.assertTrue(merges.count > 10, "merges: " .. merges.count)
  local want_leads, want_events = dedupe_reference(leads, events, merges)
  assert_same_table(kept, want_leads, "leads")
  assert_same_table(evs, want_events, "events")
  lu.assertTrue(evs:is_events())
  lu.assertEquals(#events, #evs)                      -- events unioned: none lost
  -- every column type (text, tags, boolean, time, number, category, missing values) survives the copy
  local t = leadq.table({
    { id = "a", email = "x@acme.com", tags = "p;q", ok = true, at = 5, n = 1.5, c = "u" },
    { id = "b", email = "X@acme.com", created_at = 1, ok = false, c = "v" },
    { id = "c", email = "y@acme.com", tags = "", n = 2 },
  }, { id = "text", email = "text", tags = "tags", ok = "boolean", at = "time", n = "number", c = "category",
       created_at = "number" })
  local ev = leadq.table({ { lead_id = "a", type = "t", at = 1 }, { lead_id = "c", type = "t", at = 2 } },
    { lead_id = "category", type = "category", at = "time" })
  kept, evs, merges = accounts.dedupe(t, ev)
  want_leads, want_events = dedupe_reference(t, ev, merges)
  assert_same_table(kept, want_leads, "small leads")
  assert_same_table(evs, want_events, "small events")
  lu.assertEquals(evs:column("lead_id"), { "b", "c" })
  lu.assertEquals(kept:row(2).tags, {})
  -- the events' id column must be a category
  local text_ids = leadq.table({ { lead_id = "a", type = "t", at = 1 } },
    { lead_id = "text", type = "category", at = "time" })
  local ok, err = pcall(accounts.dedupe, t, text_ids)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "dedupe: the events' column 'lead_id' must be a category, not text")
end

function T.test_rollup_edges()
  local empty = leadq.table({}, { account = "category", score = "number" })
  local acc = accounts.rollup(empty, { score = "score" })
  lu.assertEquals(#acc, 0)
  lu.assertEquals(acc:names()[1], "account")
  -- no lead has an account, or no score: contacts counted, figures missing
  acc = accounts.rollup(leadq.table({ { score = 5 }, { account = "a" } }, { account = "category", score = "number" }),
    { score = "score" })
  lu.assertEquals(acc:row(1), { account = "a", contacts = 1, scored_contacts = 0, engaged_contacts = 0, score_sum = 0,
    top_sum = 0, personas_present = 0, personas_engaged = 0 })
  -- from a CSV file's columns
  local csv = leadq.parse_csv("id,email,score\nL1,a@acme.com,10\nL2,b@ACME.com,30\nL3,c@beta.io,\n")
  acc = accounts.rollup({ csv, (accounts.map(csv)) }, { score = "score", top_k = 1 })
  lu.assertEquals({ acc:row(1).account, acc:row(1).top_mean, acc:row(1).best_contact }, { "acme.com", 30, "L2" })
  lu.assertEquals({ acc:row(2).account, acc:row(2).contacts, acc:row(2).top_mean }, { "beta.io", 1, nil })
end


function T.test_funnel_command_by_account()
  local helpers = require("helpers")
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/leads.csv", "id,email,source\nL1,a@acme.com,web\nL2,b@Acme.com,event\nL3,c@gmail.com,web\n")
  helpers.write(dir .. "/log.csv", "lead_id,stage,at\nL1,mql,2024-01-03\nL1,sql,2024-01-05\nL2,mql,2024-01-04\n"
    .. "L3,mql,2024-01-04\n")
  local text, report = require("leadq.funnel").run({ transitions = dir .. "/log.csv", leads = dir .. "/leads.csv",
    by = "account", format = "csv" })
  lu.assertNotNil(text, report)
  lu.assertEquals(#report.groups, 2)
  lu.assertEquals(report.groups[1].key, {})               -- the gmail.com lead
  lu.assertEquals(report.groups[2].key, { account = "acme.com" })
  lu.assertEquals({ report.groups[2].leads, report.groups[2].reached.sql }, { 2, 1 })
  lu.assertStrContains(text, "acme.com")
end

-- The free-domain list was read from rules/lists/ under the current folder: --accounts and funnel
-- --by account failed anywhere but the repository's root (after the lead results were written).
function T.test_accounts_and_funnel_by_account_from_another_folder()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the launcher runs Lua 5.4: tested in the lua5.4 run") end
  local root = io.popen("pwd"):read("*l")
  local build = root .. "/" .. (os.getenv("LEADQ_BUILD") or "build")
  local dir = require("helpers").tmpdir()
  assert(require("leadq.gen").generate { leads = 60, seed = 3, out = dir })
  local function run(args)
    local p = io.popen("cd " .. dir .. " && " .. build .. "/leadq " .. args .. " 2>&1; echo \"exit=$?\"")
    local text = p:read("*a")
    p:close()
    return text
  end
  local text = run("score --rules mql --leads leads.csv --accounts " .. root .. "/rules/aql.lua")
  lu.assertStrContains(text, "exit=0")
  lu.assertStrMatches(text, ".*accounts: %d+ from 60 leads %(.-; [1-9]%d* personal domains.*")
  text = run("funnel --transitions transitions.csv --leads leads.csv --by account")
  lu.assertStrContains(text, "exit=0")
  lu.assertStrContains(text, "leads reaching each stage")
  local set = assert(accounts.free_domains())
  lu.assertTrue(set["gmail.com"])
  os.execute("rm -rf " .. dir)
end

return M
