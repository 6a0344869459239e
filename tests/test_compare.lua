-- leadq.compare and the evaluate / compare commands: the status matrix, the leads that move, the
-- outcome side by side, and the command line's answers.
local lu = require("luaunit")
local leadq = require("leadq")
local helpers = require("helpers")

local M = {}

local BANK = helpers.data("uci_bank_marketing/bank-full.csv")
local RULES = "tests/rules/bank_term_deposit.lua"

-- The bank model with other thresholds and a heavier May: a rule change to preview.
local function variant()
  local f = assert(io.open(RULES, "r"))
  local src = f:read("*a")
  f:close()
  src = src:gsub("hot = 30", "hot = 20"):gsub('points = %-5,(%s+when = { month = "may" })', "points = -15,%1")
  return helpers.temp_file(src)
end

local bank
local function leads()
  bank = bank or assert(leadq.read_csv(BANK))
  return bank
end

M.TestCompare = {}

-- Two models with other status names compare by each status's rank in its own model's order.
function M.TestCompare.test_other_status_names_compare_by_rank()
  local t = assert(leadq.parse_csv("id,n\nA,1\nB,2\nC,3\nD,4\n"))
  local old = helpers.temp_file('return model "old" { rules = { rule "N" { points = 1, '
    .. 'when = { n = { at_least = 3 } } } }, thresholds = { hot = 1, otherwise = "cold" } }')
  local new = helpers.temp_file('return model "new" { rules = { rule "N" { points = 1, '
    .. 'when = { n = { at_least = 2 } } }, rule "M" { points = 1, when = { n = 4 } } }, '
    .. 'thresholds = { mql = 2, nurture = 1, otherwise = "lost" } }')
  local c = leadq.compare(old, new, t)
  helpers.remove(old)
  helpers.remove(new)
  -- A: cold -> lost (same rank: last), B: cold -> nurture (better), C: hot -> nurture (worse), D: hot -> mql
  lu.assertEquals(c.changed, 4)
  lu.assertEquals(c.up, 1)
  lu.assertEquals(c.down, 1)
  lu.assertEquals(c.old_statuses, { "hot", "cold" })
  lu.assertEquals(c.new_statuses, { "mql", "nurture", "lost" })
  local text = tostring(c)
  lu.assertStrContains(text, "4 leads (100.0%) change status: 1 to a better one, 1 to a worse one, 2 to one of "
    .. "the same rank in the new model's order")
  lu.assertStrContains(text, "old \\ new  mql  nurture  lost  total")
end

function M.TestCompare.test_matrix_sums_to_the_leads_and_lists_the_moves()
  local path = variant()
  local t = leads()
  local c = leadq.compare(RULES, path, t, { outcome = "y=yes", show = 7 })
  helpers.remove(path)
  local sum, changed = 0, 0
  for a, row in pairs(c.matrix) do
    for b, v in pairs(row) do
      sum = sum + v
      if a ~= b then changed = changed + v end
    end
  end
  lu.assertEquals(sum, #t)
  lu.assertEquals(c.leads, #t)
  lu.assertEquals(changed, c.changed)
  lu.assertEquals(c.up + c.down, c.changed)
  lu.assertTrue(c.changed > 0)
  lu.assertEquals(#c.changes, 7)
  -- each listed move, checked against the two models' own scores
  local old = assert(leadq.load_model(RULES)):score(t)
  local os_, ids = old:column("status"), t:has("id") and t:column("id") or nil
  local row_of = {}
  if ids then for i = 1, #t do row_of[ids[i]] = i end end
  for _, ch in ipairs(c.changes) do
    lu.assertNotEquals(ch.old, ch.new)
    local i = row_of[ch.id] or ch.id
    lu.assertEquals(os_[i], ch.old)
  end
  -- nothing moves the other way from hot: the new threshold is lower
  for b, v in pairs(c.matrix.hot or {}) do if b ~= "hot" then lu.assertEquals(v, 0) end end
  lu.assertNotNil(c.old.evaluation.auc)
  lu.assertNotNil(c.new.evaluation.auc)
  local text = tostring(c)
  lu.assertStrContains(text, "status matrix")
  lu.assertStrContains(text, "change status")
  lu.assertStrContains(text, "AUC")
end

function M.TestCompare.test_same_rules_change_nothing_and_as_of_leaves_out()
  local t = leadq.parse_csv(table.concat({
    "id,created_at,age,job,education,balance,housing,loan,contact,campaign,month,previous,poutcome",
    "A,2026-01-01,61,retired,tertiary,2000,no,no,cellular,1,oct,1,success",
    "B,2026-03-01,35,admin.,secondary,10,yes,yes,unknown,5,may,0,unknown",
    "C,2026-05-01,30,student,tertiary,100,no,no,cellular,1,mar,0,unknown",
  }, "\n") .. "\n")
  local c = leadq.compare(RULES, RULES, t, { as_of = "2026-04-01" })
  lu.assertEquals(c.leads, 2)
  lu.assertEquals(c.left_out, 1)
  lu.assertEquals(c.changed, 0)
  lu.assertNil(c.old.evaluation)
  lu.assertErrorMsgContains("unknown option 'shwo'", leadq.compare, RULES, RULES, t, { shwo = 1 })
  lu.assertErrorMsgContains("the new rules", leadq.compare, RULES, "nope.lua", t)
end

M.TestEvaluateCommands = {}

local function leadq_cmd(args)
  local cmd = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq " .. args .. " 2>&1; echo exit=$?"
  local p = assert(io.popen(cmd))
  local text = p:read("*a")
  p:close()
  return text
end

function M.TestEvaluateCommands.test_evaluate_json_and_errors()
  local text = leadq_cmd("evaluate --rules " .. RULES .. " --leads " .. BANK .. " --outcome y=yes --format json")
  lu.assertStrContains(text, "exit=0")
  local data = assert(require("leadq.json").decode(text:match("^(.-)\nexit=")))
  for _, k in ipairs({ "auc", "auc_low", "auc_high", "leads", "positives", "statuses", "deciles", "rules" }) do
    lu.assertNotNil(data[k], k)
  end
  lu.assertEquals(data.leads, 45211)
  lu.assertEquals(#data.deciles, 10)
  text = leadq_cmd("evaluate --rules " .. RULES .. " --leads " .. BANK .. " --outcome Y")
  lu.assertStrContains(text, "no column 'Y'")
  lu.assertStrContains(text, "did you mean 'y'?")
  lu.assertStrContains(text, "exit=1")
  text = leadq_cmd("evaluate --rules " .. RULES .. " --leads " .. BANK)
  lu.assertStrContains(text, "give the outcome")
  text = leadq_cmd("evaluate --rules " .. RULES .. " --leads " .. BANK .. " --outcome job")
  lu.assertStrContains(text, "column 'job' is not binary")
end

function M.TestEvaluateCommands.test_compare_command()
  local path = variant()
  local text = leadq_cmd("compare --rules " .. RULES .. " --rules " .. path .. " --leads " .. BANK
    .. " --outcome y=yes --show 3")
  helpers.remove(path)
  lu.assertStrContains(text, "exit=0")
  lu.assertStrContains(text, "status matrix")
  lu.assertStrContains(text, "leads that change status (3 of")
  text = leadq_cmd("compare --rules " .. RULES .. " --leads " .. BANK)
  lu.assertStrContains(text, "--rules twice")
end

return M
