-- Explanations: every rule that fired with its points after caps and a sentence, group totals,
-- thresholds and the distance to the next one; as a table and as text.
local lu = require("luaunit")
local leadq = require("leadq")
local dsl = leadq.dsl
local h = require("helpers")

local AS_OF = dsl.parse_time("2026-03-01")

local function model()
  return leadq.model(dsl.model "mql" {
    lists = { targets = { "Software", "Retail" } },
    groups = { fit = { label = "ICP fit", cap = 30 }, neg = { label = "Negative", floor = -10 } },
    rules = {
      dsl.rule "VP_TITLE" { label = "VP title", group = "fit", points = 20,
        when = { title = { word = { "vp", "vice president" } } } },
      dsl.rule "INDUSTRY" { label = "Target industry", group = "fit", points = 15,
        when = { industry = { one_of = dsl.list "targets" } } },
      dsl.rule "MID" { label = "Mid-market", group = "fit", points = 10,
        when = { employees = { between = { 200, 5000 } } } },
      dsl.rule "RECENT" { label = "New lead", points = 5, when = { created_at = { within_days = 30 } } },
      dsl.rule "GMAIL" { label = "Personal e-mail", group = "neg", points = -15,
        when = { email = { ends_with = "@gmail.com" } } },
      dsl.rule "NO_PHONE" { label = "No phone", group = "neg", points = -2, when = { phone = "missing" } },
    },
    disqualifiers = {
      dsl.disqualify "COMPETITOR" { reason = "competitor", when = { company = { one_of = { "Rival Inc" } } } },
    },
    thresholds = { mql = 40, nurture = 20, otherwise = "cold" },
  })
end

local LEAD = { title = "VP Marketing", industry = "software", employees = 500, created_at = AS_OF - 3 * 86400,
  email = "jo@gmail.com" }

local TestExplain = {}

function TestExplain:test_fired_rules_with_points_after_caps_and_details()
  local ex = model():explain(LEAD, { as_of = AS_OF })
  lu.assertEquals(ex.total, 30 + 5 - 10)
  lu.assertEquals(ex.status, "nurture")
  local by = {}
  for _, r in ipairs(ex.rules) do by[r.id] = r end
  lu.assertEquals(by.VP_TITLE.points, 20)
  lu.assertEquals(by.VP_TITLE.detail, "title 'VP Marketing' has the word 'vp'")
  lu.assertEquals(by.INDUSTRY.points, 10)
  lu.assertEquals(by.INDUSTRY.raw, 15)
  lu.assertEquals(by.INDUSTRY.detail, "industry 'software' is one of the list 'targets'")
  lu.assertEquals(by.MID.points, 0)
  lu.assertEquals(by.MID.raw, 10)
  lu.assertEquals(by.MID.detail, "employees 500 is between 200 and 5000")
  lu.assertEquals(by.RECENT.detail, "created_at 2026-02-26 is 3 days ago (within 30 days)")
  lu.assertEquals(by.GMAIL.points, -10)
  lu.assertEquals(by.GMAIL.detail, "email 'jo@gmail.com' ends with '@gmail.com'")
  lu.assertEquals(by.NO_PHONE.points, 0)
  lu.assertEquals(by.NO_PHONE.detail, "phone is missing")
  lu.assertEquals(#ex.rules, 6)
  lu.assertEquals(ex.groups.fit, { label = "ICP fit", points = 30, raw = 45, cap = 30 })
  lu.assertEquals(ex.groups.neg, { label = "Negative", points = -10, raw = -17, floor = -10 })
  lu.assertEquals(ex.thresholds, { { status = "mql", at = 40 }, { status = "nurture", at = 20 } })
  lu.assertEquals(ex.next, { status = "mql", at = 40, needs = 15 })
  lu.assertNil(ex.disqualified)
end

function TestExplain:test_text()
  local text = tostring(model():explain(LEAD, { as_of = AS_OF }))
  lu.assertStrContains(text, "mql: 25 points, status nurture")
  lu.assertStrContains(text, "fit (ICP fit): +30 (+45 before the cap 30)")
  lu.assertStrContains(text,
    "    INDUSTRY  +10 of +15  Target industry: industry 'software' is one of the list 'targets'")
  lu.assertStrContains(text, "  (no group):\n    RECENT            +5  New lead: ")
  lu.assertStrContains(text, "thresholds: mql at 40, nurture at 20, else cold")
  lu.assertStrContains(text, "next: mql needs 15 more points")
end

function TestExplain:test_table_row_and_record_agree()
  local m = model()
  local recs = { LEAD, { title = "Intern", company = "Rival Inc", phone = "1" } }
  local tbl = leadq.table(recs, { title = "text", industry = "category", employees = "number",
    created_at = "time", email = "text", phone = "text", company = "category" })
  for i, rec in ipairs(recs) do
    local a = m:explain(tbl, i, { as_of = AS_OF })
    local b = m:explain(rec, { as_of = AS_OF })
    lu.assertEquals(a.total, b.total)
    lu.assertEquals(a.status, b.status)
    lu.assertEquals(a.rules, b.rules)
    lu.assertEquals(tostring(a), tostring(b))
  end
end

function TestExplain:test_disqualified()
  local ex = model():explain({ company = "rival inc", phone = "1" }, { as_of = AS_OF })
  lu.assertEquals(ex.status, "disqualified")
  lu.assertEquals(ex.disqualified.id, "COMPETITOR")
  lu.assertEquals(ex.disqualified.reason, "competitor")
  lu.assertEquals(ex.disqualified.detail, "company is 'rival inc'")
  lu.assertStrContains(tostring(ex), "disqualified by COMPETITOR (competitor)")
  -- no points lift a disqualified lead: its explanation names no next threshold
  lu.assertNil(ex.next)
  lu.assertNil(tostring(ex):find("next:", 1, true))
end

-- A `matches` pattern sees the first 1024 bytes of a text, in bulk and for one lead alike: hostile text
-- (11 KB of "vp sales ") costs a bounded search, and a match past the bound is no match.
function TestExplain:test_patterns_see_a_bounded_text()
  local m = leadq.model(dsl.model "p" {
    rules = { dsl.rule "EMEA" { points = 1, when = { title = { matches = "vp.-sales.-emea" } } } },
    thresholds = { hit = 1, otherwise = "miss" },
  })
  local hostile = string.rep("VP Sales ", 1250)
  local late = string.rep("x", 1100) .. "vp sales emea"
  local t = assert(leadq.parse_csv("title\n" .. hostile .. "\n" .. late .. "\nvp sales emea\n"))
  local started = os.clock()
  local r = assert(m:score(t))
  local status = r:column("status")
  lu.assertEquals({ status[1], status[2], status[3] }, { "miss", "miss", "hit" })
  lu.assertEquals(m:score_one({ title = late }).status, "miss")
  lu.assertEquals(m:explain({ title = hostile }).status, "miss")
  lu.assertTrue(os.clock() - started < 2, "pattern search took " .. (os.clock() - started) .. " s")
  r:close()
  t:close()
end

function TestExplain:test_bad_row()
  local m = model()
  local tbl = leadq.table({ LEAD })
  lu.assertErrorMsgContains("explain: row must be a row number from 1 to 1, got 2", function() m:explain(tbl, 2) end)
end

function TestExplain:test_model_description()
  local m = model()
  lu.assertStrContains(tostring(m), "leadq model 'mql': 6 rules, 1 disqualifier, groups fit, neg")
  local info = m:info()
  lu.assertEquals(info.rules, 6)
  lu.assertEquals(info.functions, {})
  lu.assertEquals(info.thresholds[1], { status = "mql", at = 40 })
  lu.assertEquals(#m:rules(), 7)
  lu.assertEquals(m:rules()[1].id, "VP_TITLE")
end

-- What a test said of a lead comes from the C program: "y" is true to the core (as in a CSV file), so
-- the first part of this `any` decides, and the sentence names it, not the title that did not match.
function TestExplain:test_each_test_result_comes_from_the_core()
  local m = leadq.model(dsl.model "optin" {
    rules = { dsl.rule "ASKED" { points = 10, when = { any = { { optin = true }, { title = { word = "vp" } } } } },
              dsl.rule "NOT_STUDENT" { points = 5, when = { title = { not_one_of = { "student", "intern" } } } } },
    thresholds = { yes = 10, otherwise = "no" },
  })
  for _, ex in ipairs({ m:explain({ optin = "y", title = "Intern" }, { as_of = AS_OF }),
                        m:explain(assert(leadq.parse_csv("optin,title\ny,Intern\n")), 1, { as_of = AS_OF }) }) do
    lu.assertEquals(ex.total, 10)
    lu.assertEquals(#ex.rules, 1)
    lu.assertEquals(ex.rules[1].detail, "optin is true")
  end
  local ex = m:explain({ optin = "no", title = "VP Sales" }, { as_of = AS_OF })
  lu.assertEquals(ex.rules[1].detail, "title 'VP Sales' has the word 'vp'")
  lu.assertEquals(ex.rules[2].detail, "title 'VP Sales' is not one of 'student', 'intern'")
end

-- A condition's test results, put together as the condition puts them, give the rule's fired bit,
-- for every rule and disqualifier of the shipped models on every generated lead (its numbers and
-- yes/no values given as text, as a form sends them); each test that held names what decided it;
-- the explanation of the lead as a record and as a row of the same file says the same.
function TestExplain:test_test_results_agree_with_fired_rules_on_generated_leads()
  local gen = require("leadq.gen")
  local compiler = require("leadq.compiler")
  local core = require("leadq.core")
  local n = h.size(600, 150)
  local dir = h.tmpdir()
  assert(gen.generate({ leads = n, seed = 31, out = dir }))
  local as_of = dsl.parse_time("2026-11-01")
  local checked = 0
  for _, rules in ipairs({ "rules/mql.lua", "rules/sql.lua", "rules/pql.lua" }) do
    local m = assert(leadq.load_model(rules))
    local desc = assert(compiler.compile(m.spec, nil))
    local prog = core.program(desc)
    local index = {}
    for i, node in ipairs(desc.leaf_nodes) do index[node] = i end
    local tbl = assert(leadq.read_csv(dir .. "/leads.csv"))
    local function combine(node, leaves)
      if node.op == nil then return leaves[index[node]].holds end
      if node.op == "not" then return not combine(node.args[1], leaves) end
      local any = false
      for _, a in ipairs(node.args) do
        local v = combine(a, leaves)
        if node.op == "all" and not v then return false end
        any = any or v
      end
      if node.op == "all" then return true end
      if node.op == "any" then return any end
      return not any
    end
    for row = 1, #tbl do
      local record = {}
      for k, v in pairs(tbl:row(row)) do
        record[k] = (type(v) == "number" or type(v) == "boolean") and tostring(v) or v
      end
      local facts = assert(prog:explain_one(record, { as_of = as_of })).facts
      for i, r in ipairs(m.spec.rules) do
        lu.assertEquals(combine(r.when, facts.leaves), facts.rules[i].fired, rules .. " row " .. row .. " " .. r.id)
      end
      for i, d in ipairs(m.spec.disqualifiers) do
        lu.assertEquals(combine(d.when, facts.leaves), facts.disqualifiers[i], rules .. " row " .. row .. " " .. d.id)
      end
      for i, node in ipairs(desc.leaf_nodes) do
        local f = facts.leaves[i]
        if f.holds and node.t == "str" and not node.negate then lu.assertNotNil(f.needle, node.field) end
        if f.holds and (node.t == "num" or node.t == "time" or node.t == "date") and not node.negate then
          lu.assertNotNil(f.number, node.field)
        end
      end
      local as_record = m:explain(record, { as_of = as_of })
      local as_row = m:explain(tbl, row, { as_of = as_of })
      lu.assertEquals(#as_record.rules, #as_row.rules, rules .. " row " .. row)
      for k, r in ipairs(as_record.rules) do
        lu.assertEquals(r.id, as_row.rules[k].id)
        lu.assertNotEquals(r.detail, "?")
      end
      checked = checked + 1
    end
    tbl:close()
  end
  lu.assertEquals(checked, 3 * n)
  h.remove_dir(dir)
end

return { TestExplain = TestExplain }
