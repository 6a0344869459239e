-- leadq.util: errors in the caller's terms, options checked by name, numbers for people and CSV.
local lu = require("luaunit")
local util = require("leadq.util")
local core = require("leadq.core")

local M = {}
M.TestUtil = {}

local LEADS = "id,email\n1,a@acme.com\n2,b@acme.com\n"

-- A Lua frame of this file that calls f (no tail call: the frame stays on the stack to be blamed).
local function call_here(f, ...)
  local result = f(...)
  return result
end

function M.TestUtil.test_raise_blames_the_first_caller_outside_leadq()
  local leads = core.parse_csv(LEADS)
  local accounts = require("leadq.accounts")
  -- accounts.map -> util.check_options -> util.raise: two leadq frames deep, blamed on this file
  local ok, err = pcall(call_here, accounts.map, leads, { emial = "email" })
  lu.assertFalse(ok)
  lu.assertStrMatches(err, "^tests/test_util%.lua:%d+: map: unknown option 'emial' %(did you mean 'email'%?%)$")
  -- a public function's own check (error(message, 2)) blames the same frame
  ok, err = pcall(call_here, accounts.map, "leads")
  lu.assertFalse(ok)
  lu.assertStrMatches(err, "^tests/test_util%.lua:%d+: map: expects a leadq table of leads, got string$")
  -- through pcall straight away, the caller is C: no position at all, as error(message, 2) gives
  ok, err = pcall(accounts.map, leads, { emial = "email" })
  lu.assertFalse(ok)
  lu.assertEquals(err, "map: unknown option 'emial' (did you mean 'email'?)")
  leads:close()
end

-- The model's and the funnel's checks sit one to three leadq frames deep: each names the caller's line.
function M.TestUtil.test_model_errors_name_the_callers_line()
  local leadq = require("leadq")
  local funnel = require("leadq.funnel")
  local m = leadq.load_model("rules/mql.lua")
  local t = core.parse_csv("id,title\nL1,CTO\n")
  local cases = {
    { function() return m:score(t, nil, { bogus = 1 }) end, "score: unknown option 'bogus'" },
    { function() return m:score(t, nil, { as_of = "nope" }) end, "score: as_of \"nope\" is not a date" },
    { function() return m:score_one(5) end, "score_one: expects a lead record" },
    { function() return m.score(5) end, "bad self to 'score'" },
    { function() return leadq.model({}) end, "the script must return a model" },
    { function() return m:explain(t, 1, nil, { threads = 0 }) end, "explain: threads must be a whole number" },
    -- the funnel's declarations, checked two and three frames down from funnel.new
    { function() return funnel.new("stages") end, "funnel options must be a table" },
    { function() return funnel.new({ stages = { "lead", "two words" } }) end, "stages: a stage name is a word" },
    { function() return funnel.new({ stages = { "lead", "lead" } }) end, "stage 'lead' is declared twice" },
    { function() return funnel.new({ sla_days = -1 }) end, "funnel option 'sla_days' must be a positive number" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(call_here, c[1])
    lu.assertFalse(ok)
    lu.assertStrContains(err, c[2])
    lu.assertStrMatches(err, "^tests/test_util%.lua:%d+: .*")
  end
  t:close()
end

function M.TestUtil.test_raise_leaves_rule_scripts_and_tests_outside_leadq()
  lu.assertTrue(util.is_internal("@lua/leadq/accounts.lua"))
  lu.assertTrue(util.is_internal("@/usr/share/lua/5.4/leadq/cli/score.lua"))
  lu.assertFalse(util.is_internal("@rules/mql.lua"))
  lu.assertFalse(util.is_internal("@/usr/share/lua/5.4/leadq/rules/mql.lua"))
  lu.assertFalse(util.is_internal("@tests/test_util.lua"))
  lu.assertFalse(util.is_internal("=[C]"))
end

function M.TestUtil.test_check_options()
  local allowed = { score = true, top_k = true }
  lu.assertEquals(util.check_options(nil, allowed, "f"), {})
  local opts = { score = "total" }
  lu.assertIs(util.check_options(opts, allowed, "f"), opts)
  lu.assertErrorMsgContains("f: unknown option 'scroe' (did you mean 'score'?)", util.check_options,
    { scroe = 1 }, allowed, "f")
  lu.assertErrorMsgContains("f: options must be a table, got string", util.check_options, "x", allowed, "f")
end

function M.TestUtil.test_numbers_for_people_and_csv()
  lu.assertEquals(util.thousands(1234567.4), "1,234,567")
  lu.assertEquals(util.thousands(-999.5), "-999")
  lu.assertEquals(util.group_digits("-1234567.891"), "-1,234,567.891")
  lu.assertEquals(util.group_digits("n/a"), "n/a")
  lu.assertEquals(util.megabytes(1234), "1.2 kB")
  lu.assertEquals(util.megabytes(5600000), "5.6 MB")
  lu.assertEquals(util.csv_field(nil), "")
  lu.assertEquals(util.csv_field(0 / 0), "")
  lu.assertEquals(util.csv_field(12), "12")
  lu.assertEquals(util.csv_field(2 / 3), "0.666667")
  lu.assertEquals(util.csv_field('a,"b"'), '"a,""b"""')
  lu.assertEquals(util.csv_field("line\nbreak"), '"line\nbreak"')
end

function M.TestUtil.test_grade_axes()
  local letters, digits = util.grade_axes({ B10 = 1, A2 = 3, B2 = 4, A10 = 0 })
  lu.assertEquals(letters, { "A", "B" })
  lu.assertEquals(digits, { "2", "10" })   -- in number order, not text order
  lu.assertNil(util.grade_axes({ A1 = 1, hot = 2 }))
end

return M
