-- Rule scripts: loading, strict validation, messages with file, line, rule id and suggestions.
local lu = require("luaunit")
local leadq = require("leadq")
local dsl = require("leadq.dsl")
local helpers = require("helpers")
local write = helpers.write

local function problems_of(text, name)
  local spec, problems = dsl.load_string(text, name or "t.lua")
  lu.assertNil(spec)
  return problems
end

local function has(problems, expected)
  for _, p in ipairs(problems) do
    if p == expected then return true end
  end
  error("expected the problem\n  " .. expected .. "\namong\n  " .. table.concat(problems, "\n  "), 2)
end

local function has_match(problems, pattern)
  for _, p in ipairs(problems) do
    if p:find(pattern) then return true end
  end
  error("expected a problem matching\n  " .. pattern .. "\namong\n  " .. table.concat(problems, "\n  "), 2)
end

local GOOD = [[
return model "m" {
  groups = { fit = { cap = 50 } },
  lists = { big = { "Software", "Retail" } },
  rules = {
    rule "A" { group = "fit", points = 10, when = { industry = { one_of = list "big" } } },
  },
  thresholds = { hot = 10, otherwise = "cold" },
}
]]

local TestDslLoad = {}

function TestDslLoad:test_good_script_loads()
  local spec, problems = dsl.load_string(GOOD, "good.lua")
  lu.assertNotNil(spec, table.concat(problems or {}, "\n"))
  lu.assertEquals(spec.name, "m")
  lu.assertEquals(#spec.rules, 1)
  lu.assertEquals(spec.rules[1].line, 5)
  lu.assertEquals(spec.lists.big, { "Software", "Retail" })
end

function TestDslLoad:test_unknown_key_with_suggestion_names_file_line_rule()
  local p = problems_of([[
return model "m" {
  groups = { fit = { cap = 50 } },
  rules = {
    rule "PRICING" {
      group = "fit",
      scroe = 10,
      when = { views = { at_least = 3 } },
    },
  },
}
]], "rules/mql.lua")
  has(p, "rules/mql.lua:6: rule 'PRICING': unknown key 'scroe' (did you mean 'points'?)")
  has(p, "rules/mql.lua:4: rule 'PRICING': missing key 'points'")
end

function TestDslLoad:test_wrong_types()
  local p = problems_of([[
return model "m" {
  rules = {
    rule "A" { points = "ten", when = { x = 1 } },
    rule "B" { points = 1, when = "x" },
    rule "C" { points = 1, when = { x = { at_least = "3" } } },
  },
  thresholds = { hot = "high" },
}
]])
  has(p, "t.lua:3: rule 'A': points must be a number or a function, got string")
  has(p, "t.lua:4: rule 'B': a condition must be a table or a function, got string")
  has(p, "t.lua:5: rule 'C': field 'x': at_least must be a number, got string")
  has(p, "t.lua:7: thresholds: threshold 'hot' must be a number, got string")
end

function TestDslLoad:test_every_problem_at_once()
  local p = problems_of([[
return model "m" {
  groups = { fit = { cpa = 3 } },
  rules = {
    rule "A" { points = 1, group = "fitt", when = { x = { betwen = { 1, 2 } } } },
    rule "A" { points = 1, when = { x = { between = { 5, 1 } } } },
    rule "B" { points = 1, when = { x = { one_of = list "nope" } } },
    rule "C" { points = 1, when = { x = { one_of = {} } } },
  },
}
]])
  has(p, "t.lua:2: group 'fit': unknown key 'cpa' (did you mean 'cap'?)")
  has(p, "t.lua:4: rule 'A': unknown group 'fitt' (did you mean 'fit'?)")
  has(p, "t.lua:4: rule 'A': field 'x': unknown test 'betwen' (did you mean 'between'?)")
  has(p, "t.lua:5: rule 'A': duplicate id (also used at line 4)")
  has(p, "t.lua:6: rule 'B': field 'x': unknown list 'nope'")
  has(p, "t.lua:7: rule 'C': field 'x': one_of needs at least one value")
  lu.assertTrue(#p >= 6)
end

-- A group whose name is refused, used by a rule: said, and no crash while ordering the groups.
function TestDslLoad:test_a_refused_group_name_used_by_a_rule()
  local p = problems_of([[
return model "m" {
  groups = { ["top fit"] = { cap = 3 } },
  rules = { rule "A" { points = 1, group = "top fit", when = { x = true } } },
}
]])
  has_match(p, "group names must be words, got 'top fit'")
end

function TestDslLoad:test_between_low_above_high()
  local p = problems_of([[
return model "m" { rules = { rule "A" { points = 1, when = { x = { between = { 9, 1 } } } } } }
]])
  has(p, "t.lua:1: rule 'A': field 'x': between has its low end 9 above its high end 1")
end

-- string.find reports a pattern's mistake only when the match reaches it: "a%" passed a trial
-- match on "" and then failed on the first lead with an 'a' (a 500 in the service).
function TestDslLoad:test_matches_patterns_are_read_in_full_at_load()
  local cases = {
    { "a%", "it ends with '%'" },
    { "[abc", "a '[' set is not closed with ']'" },
    { "x[%]", "a '[' set is not closed with ']'" },
    { "%bx", "'%b' needs two characters after it" },
    { "%fx", "'%f' must be followed by a '[' set" },
    { "(a)%2", "'%2' refers to no closed capture" },
    { "(a", "a '(' is not closed with ')'" },
    { "a)", "a ')' closes no '('" },
    { string.rep("a", 201), "it is longer than 200 bytes" },
  }
  for _, case in ipairs(cases) do
    local p = problems_of('return model "m" {\n  rules = {\n    rule "A" { points = 1, when = { title = ' ..
      string.format("{ matches = %q }", case[1]) .. ' } },\n  },\n}\n')
    lu.assertEquals(p, { string.format("t.lua:3: rule 'A': field 'title': matches: bad pattern '%s': %s",
      case[1], case[2]) })
  end
  for _, good in ipairs({ "^head of", "vp.-sales", "[]x]", "[^]]", "%b()", "%f[%w]cto%f[%W]", "(a)%1", "()x$",
      "a$b", "[%]]" }) do
    lu.assertNil(dsl.pattern_problem(good), good)
    lu.assertTrue(pcall(string.find, "head of (sales) cto a$b ]", good), good)
  end
end

-- Points that add up to infinity were stored, and every answer for that lead was a 500.
function TestDslLoad:test_points_are_bounded()
  local p = problems_of('return model "m" {\n  rules = {\n    rule "A" { points = 1e308, when = { x = 1 } },\n' ..
    '    rule "B" { points = -2e9, when = { x = 1 } },\n    rule "C" { points = 1e9, when = { x = 1 } },\n  },\n}\n')
  lu.assertEquals(p, { "t.lua:3: rule 'A': points must be between -1000000000 and 1000000000, got 1e+308",
    "t.lua:4: rule 'B': points must be between -1000000000 and 1000000000, got -2000000000" })
end

function TestDslLoad:test_points_functions_are_bounded_when_they_run()
  local m = leadq.model(dsl.model "m" {
    rules = {
      dsl.rule "BIG" { points = function(lead) return lead.n end, when = { n = "present" } },
      dsl.rule "ONE" { points = 1, when = { n = "present" } },
    },
  })
  local res, errs = m:score(leadq.table({ { id = "A", n = 5 }, { id = "B", n = 1e300 }, { id = "C", n = -1e10 } }))
  lu.assertEquals(res:column("total"), { 6, 1, 1 })
  lu.assertEquals(errs.count, 2)
  lu.assertEquals(errs[1], "rule 'BIG' failed for lead 'B' (row 2): the points function returned 1e+300, " ..
    "outside -1000000000 to 1000000000")
  lu.assertStrContains(errs[2], "rule 'BIG' failed for lead 'C' (row 3): the points function returned -1e+10")
end

-- check promises every problem at once, but a feature's mistakes came only once the rules had none.
function TestDslLoad:test_feature_mistakes_come_with_the_rules_mistakes()
  local p = problems_of([[
return model "b" {
  features = {
    views = feature { count = "page_view", within_dayz = 30 },
    clicks = feature { count = "email_click", half_life_days = 3 },
  },
  rules = {
    rule "A" { points = 5, when = { title = { contain = "x" } } },
  },
}
]])
  lu.assertEquals(p, {
    "t.lua:7: rule 'A': field 'title': unknown test 'contain' (did you mean 'contains'?)",
    "t.lua:4: feature 'clicks': 'half_life_days' does not apply to 'count'",
    "t.lua:3: feature 'views': unknown key 'within_dayz' (did you mean 'within_days'?)",
  })
  p = problems_of([[
return model "b" {
  features = { views = feature { count = "page_view", within_days = 30 } },
  events = { noise = { page_types = "page_view" } },
  rules = { rule "A" { points = 5, when = { title = { contain = "x" } } } },
}
]])
  lu.assertEquals(p, {
    "t.lua:4: rule 'A': field 'title': unknown test 'contain' (did you mean 'contains'?)",
    "t.lua:3: events: noise: page_types needs min_page_seconds",
  })
end

function TestDslLoad:test_syntax_error_is_a_sentence_with_file_and_line()
  local p = problems_of("return model \"m\" {\n  rules = {\n    rule \"A\" { points = 1 when = {} }\n  }\n}\n",
    "rules/bad.lua")
  lu.assertEquals(#p, 1)
  lu.assertStrContains(p[1], "rules/bad.lua:3: syntax error: ")
  lu.assertStrContains(p[1], "'}' expected")
end

function TestDslLoad:test_unknown_name_suggests()
  local p = problems_of("return modle \"m\" {}\n", "x.lua")
  lu.assertEquals(p, { "x.lua:1: the script failed: unknown name 'modle' (did you mean 'model'?)" })
end

function TestDslLoad:test_must_return_a_model()
  local p = problems_of("local x = 1\n", "x.lua")
  lu.assertStrContains(p[1], "x.lua:")
  lu.assertStrContains(p[1], "the script must return a model")
end

function TestDslLoad:test_rule_without_id()
  local p = problems_of("return model \"m\" { rules = { rule { points = 1, when = { x = 1 } } } }\n")
  has(p, "t.lua:1: rule needs an id: rule \"ID\" { ... }")
end

function TestDslLoad:test_grades_and_thresholds_validated()
  local p = problems_of([[
return model "m" {
  groups = { fit = {} },
  rules = { rule "A" { group = "fit", points = 1, when = { x = 1 } } },
  thresholds = { a = 10, b = 10, otherwise = "c" },
  grades = { fitt = { group = "fit", A = 1, otherwise = "B" } },
}
]])
  has_match(p, "thresholds 'a' and 'b' are both 10")
  has_match(p, "unknown grade 'fitt' %(did you mean 'fit'%?%)")
end

local TestDslFiles = {}

function TestDslFiles:setUp()
  self.dir = os.tmpname()
  os.remove(self.dir)
  assert(os.execute("mkdir -p " .. self.dir .. "/lists"))
end

function TestDslFiles:tearDown()
  os.execute("rm -rf " .. self.dir)
end

function TestDslFiles:test_list_file_read_next_to_the_script()
  write(self.dir .. "/lists/free.txt", "# personal mail\ngmail.com\n\n  yahoo.com  \n")
  write(self.dir .. "/m.lua", [[
return model "m" {
  lists = { free = file "lists/free.txt" },
  rules = { rule "FREE" { points = -5, when = { domain = { one_of = list "free" } } } },
}
]])
  local m, err = leadq.load_model(self.dir .. "/m.lua")
  lu.assertNotNil(m, err)
  lu.assertEquals(m.spec.lists.free, { "gmail.com", "yahoo.com" })
  local r = m:score_one({ domain = "YAHOO.com" })
  lu.assertEquals(r.total, -5)
end

function TestDslFiles:test_missing_list_file_and_check_reports_all()
  write(self.dir .. "/m.lua", [[
return model "m" {
  lists = { free = file "lists/none.txt", up = file "../escape.txt" },
  rules = { rule "A" { points = 1, when = { d = { one_of = list "free" } }, label = 3 } },
}
]])
  local ok, problems = leadq.check(self.dir .. "/m.lua")
  lu.assertFalse(ok)
  has_match(problems, "m%.lua:2: list 'free': cannot read list file 'lists/none%.txt'")
  has_match(problems, "list 'up': file '%.%./escape%.txt' must be a path next to the script")
  has_match(problems, "m%.lua:3: rule 'A': label must be a text, got number")
  local m, err = leadq.load_model(self.dir .. "/m.lua")
  lu.assertNil(m)
  lu.assertStrContains(err, "cannot read list file")
end

function TestDslFiles:test_check_ok_and_missing_file()
  write(self.dir .. "/m.lua", GOOD)
  lu.assertEquals(leadq.check(self.dir .. "/m.lua"), true)
  local ok, problems = leadq.check(self.dir .. "/nope.lua")
  lu.assertFalse(ok)
  lu.assertStrContains(problems[1], "nope.lua: cannot read the rule script")
end

function TestDslFiles:test_shipped_rules_load()
  for _, path in ipairs({ "rules/mql.lua", "rules/sql.lua" }) do
    local f = io.open(path)
    if f then
      f:close()
      local ok, problems = leadq.check(path)
      lu.assertTrue(ok, path .. ": " .. table.concat(problems or {}, "\n"))
    end
  end
end

local TestDslSchema = {}

function TestDslSchema:test_unknown_field_at_score_time_names_rule_line_and_suggests()
  local m = leadq.model(dsl.model "m" {
    rules = { dsl.rule "SIZE" { points = 5, when = { employee = { at_least = 10 } } } },
  })
  local tbl = leadq.table({ { employees = 50, title = "x" } })
  local res, err = m:score(tbl, { strict = true })
  lu.assertNil(res)
  lu.assertStrContains(err, "rule 'SIZE': unknown field 'employee' (did you mean 'employees'?)")
  lu.assertStrMatches(err, "^.-:%d+: rule 'SIZE'.*")
end

function TestDslSchema:test_field_of_the_wrong_type()
  local m = leadq.model(dsl.model "m" {
    rules = { dsl.rule "T" { points = 5, when = { title = { at_least = 10 } } } },
  })
  local res, err = m:score(leadq.table({ { title = "VP" } }, { title = "category" }))
  lu.assertNil(res)
  lu.assertStrContains(err, "rule 'T': field 'title' is a category field; 'at_least' compares numbers")
end

function TestDslSchema:test_model_from_repl_constructors_raises()
  lu.assertErrorMsgContains("unknown key 'pionts' (did you mean 'points'?)", function()
    leadq.model(dsl.model "m" { rules = { dsl.rule "A" { pionts = 1, when = { x = 1 } } } })
  end)
end

function TestDslSchema:test_suggest()
  lu.assertEquals(dsl.suggest("scroe", { "label", "points", "when" }), "points")
  lu.assertEquals(dsl.suggest("employe", { "employees", "title" }), "employees")
  lu.assertNil(dsl.suggest("zzzzzz", { "employees", "title" }))
end

-- An unknown key of any length once went through the whole quadratic edit distance against every
-- candidate: a 16 KB JSON key cost a service worker 0.23 s.
function TestDslSchema:test_suggestions_are_bounded()
  lu.assertEquals(dsl.distance("scroe", "score"), 1)
  lu.assertEquals(dsl.distance("emp", "employees"), 6)          -- lengths 3 and 9: the difference
  local long = string.rep("employees", 8)                         -- 72 bytes
  lu.assertEquals(dsl.distance(long, long .. "s"), dsl.SUGGEST_MAX)  -- one edit, but past the bound
  lu.assertEquals(dsl.distance(long:sub(1, 64), long:sub(1, 63) .. "x"), 1)
  local word = string.rep("a", dsl.SUGGEST_MAX) .. "s"
  lu.assertNil(dsl.suggest(word, { string.rep("a", dsl.SUGGEST_MAX) }))
  lu.assertEquals(dsl.suggest(word:sub(2), { string.rep("a", dsl.SUGGEST_MAX) }), string.rep("a", dsl.SUGGEST_MAX))
  lu.assertEquals(dsl.did_you_mean(string.rep("x", 16384), { "lead", "type", "at", "value" }), "")
end

function TestDslSchema:test_parse_time()
  lu.assertEquals(dsl.parse_time("1970-01-02"), 86400)
  lu.assertEquals(dsl.parse_time("2026-01-01T00:00:00Z"), 1767225600)
  lu.assertEquals(dsl.parse_time("2026-01-01T01:00:00+01:00"), 1767225600)
  lu.assertNil(dsl.parse_time("2026-13-01"))
end

local _ = helpers
return { TestDslLoad = TestDslLoad, TestDslFiles = TestDslFiles, TestDslSchema = TestDslSchema }
