-- leadq.outcome: labels from an outcome column or a transitions log, the backtest date, bad input.
local lu = require("luaunit")
local leadq = require("leadq")
local outcome = require("leadq.outcome")
local helpers = require("helpers")

local M = {}

local function bytes_of(labels)
  local out = {}
  for i = 1, #labels do out[i] = labels:byte(i) end
  return out
end

local LEADS = table.concat({
  "id,created_at,Converted,y,stage_text,score",
  "A,2026-01-01,yes,yes,won,1",
  "B,2026-01-05,no,no,lost,0",
  "C,2026-02-01,1,no,won,1",
  "D,2026-03-01,,yes,,",
  "E,2026-04-01,0,no,open,0",
  "F,2026-06-01,true,maybe,won,1",
}, "\n") .. "\n"

local function leads()
  return leadq.parse_csv(LEADS, { schema = { Converted = "category", y = "category" } })
end

M.TestOutcomeColumn = {}

function M.TestOutcomeColumn.test_yes_no_values_and_missing()
  local t = leads()
  local labels, info = outcome.labels(t, { outcome = "Converted" })
  lu.assertEquals(#labels, 6)
  lu.assertEquals(bytes_of(labels), { 1, 0, 1, 255, 0, 1 })
  lu.assertEquals(info.positives, 3)
  lu.assertEquals(info.negatives, 2)
  lu.assertEquals(info.leads, 5)
  lu.assertEquals(info.left_out, 1)
  lu.assertEquals(info.missing, 1)
  lu.assertEquals(info.description, "Converted")
end

function M.TestOutcomeColumn.test_column_equals_value()
  local labels, info = outcome.labels(leads(), { outcome = "y=yes" })
  lu.assertEquals(bytes_of(labels), { 1, 0, 0, 1, 0, 0 })
  lu.assertEquals(info.description, "y = yes")
  -- any case; a missing value is left out
  labels = outcome.labels(leads(), { outcome = "stage_text=WON" })
  lu.assertEquals(bytes_of(labels), { 1, 0, 1, 255, 0, 1 })
end

function M.TestOutcomeColumn.test_boolean_and_number_columns()
  local t = leadq.parse_csv("id,b,n\n1,true,1\n2,false,0\n3,true,0\n4,,\n")
  lu.assertEquals(t:type("b"), "boolean")
  lu.assertEquals(bytes_of((outcome.labels(t, { outcome = "b" }))), { 1, 0, 1, 255 })
  lu.assertEquals(bytes_of((outcome.labels(t, { outcome = "b=yes" }))), { 1, 0, 1, 255 })
  lu.assertEquals(bytes_of((outcome.labels(t, { outcome = "b=no" }))), { 0, 1, 0, 255 })
  lu.assertEquals(bytes_of((outcome.labels(t, { outcome = "n" }))), { 1, 0, 0, 255 })
  lu.assertEquals(bytes_of((outcome.labels(t, { outcome = "n=0" }))), { 0, 1, 1, 255 })
end

function M.TestOutcomeColumn.test_missing_column_is_named_with_a_suggestion()
  local err = helpers.error_of(outcome.labels, leads(), { outcome = "converted" })
  lu.assertStrContains(err, "no column 'converted'")
  lu.assertStrContains(err, "did you mean 'Converted'?")
  err = helpers.error_of(outcome.labels, leads(), { outcome = "Convrted=yes" })
  lu.assertStrContains(err, "no column 'Convrted'")
  lu.assertStrContains(err, "did you mean 'Converted'?")
end

function M.TestOutcomeColumn.test_constant_and_not_binary_are_named()
  local t = leadq.parse_csv("id,c,k\n1,yes,a\n2,yes,b\n3,,c\n")
  local err = helpers.error_of(outcome.labels, t, { outcome = "c" })
  lu.assertStrContains(err, "column 'c' is constant")
  err = helpers.error_of(outcome.labels, t, { outcome = "k" })
  lu.assertStrContains(err, "column 'k' is not binary")
  lu.assertStrContains(err, "'a' (1)")
  err = helpers.error_of(outcome.labels, leads(), { outcome = "stage_text" })
  lu.assertStrContains(err, "column 'stage_text' is not binary")
  lu.assertStrContains(err, "'won' (3)")
  err = helpers.error_of(outcome.labels, t, { outcome = "k=zzz" })
  lu.assertStrContains(err, "no lead has k = 'zzz'")
end

function M.TestOutcomeColumn.test_errors_blame_the_caller()
  local ok, err = pcall(function() outcome.labels(leads(), { outcome = "nope" }) end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_outcome.lua:")
  lu.assertErrorMsgContains("unknown option 'outcom'", outcome.labels, leads(), { outcom = "x" })
  lu.assertErrorMsgContains("no outcome", outcome.labels, leads(), {})
  lu.assertErrorMsgContains("expects a leadq table", outcome.labels, {}, { outcome = "y" })
end

function M.TestOutcomeColumn.test_as_of_leaves_out_leads_created_after()
  local labels, info = outcome.labels(leads(), { outcome = "Converted", as_of = "2026-02-15" })
  lu.assertEquals(bytes_of(labels), { 1, 0, 1, 255, 255, 255 })
  lu.assertEquals(info.created_after, 3)
  lu.assertEquals(info.left_out, 3)
  lu.assertEquals(info.leads, 3)
  -- epoch seconds work too
  local labels2 = outcome.labels(leads(), { outcome = "Converted", as_of = leadq.parse_time("2026-02-15") })
  lu.assertEquals(labels2, labels)
  lu.assertErrorMsgContains("is not a date", outcome.labels, leads(), { outcome = "Converted", as_of = "soon" })
end

M.TestOutcomeTransitions = {}

local LOG = table.concat({
  "lead_id,stage,at,reason,owner",
  "A,lead,2026-01-01,,",
  "A,mql,2026-01-10,,",
  "A,sql,2026-03-01,,",
  "A,customer,2026-05-01,,",
  "B,lead,2026-01-05,,",
  "B,mql,2026-02-01,,",
  "B,disqualified,2026-02-02,no_budget,",
  "C,lead,2026-02-01,,",
  "C,opportunity,2026-02-20,,",
  "E,lead,2026-04-01,,",
  "E,sql,2026-09-01,,",
  "F,lead,2026-06-01,,",
  "F,customer,2026-06-05,,",
}, "\n") .. "\n"

function M.TestOutcomeTransitions.test_reached_a_stage()
  helpers.with_file(LOG, function(path)
    local labels, info = outcome.labels(leads(), { transitions = path, reached = "customer" })
    lu.assertEquals(bytes_of(labels), { 1, 0, 0, 0, 0, 1 })
    lu.assertEquals(info.description, "reached customer")
    -- implied stages: C jumped to opportunity, so it reached sql on the way
    labels = outcome.labels(leads(), { transitions = path, reached = "sql" })
    lu.assertEquals(bytes_of(labels), { 1, 0, 1, 0, 1, 1 })
    -- a leadq table works as well as a path
    local log = leadq.parse_csv(LOG)
    lu.assertEquals((outcome.labels(leads(), { transitions = log, reached = "sql" })), labels)
  end)
end

-- The report's funnel, loaded once, answers the outcome too: the same labels as the log read again,
-- with as_of and within_days, and the funnel stays open for its owner.
function M.TestOutcomeTransitions.test_loaded_funnel_gives_the_same_labels()
  local funnel = require("leadq.funnel")
  local f = funnel.new({})
  f:load(leadq.parse_csv(LOG), { lead = "lead_id", stage = "stage", at = "at" })
  for _, spec in ipairs({ { reached = "customer" }, { reached = "sql", within_days = 60 },
                          { reached = "opportunity", as_of = "2026-03-15" } }) do
    local from_log = { transitions = leadq.parse_csv(LOG) }
    local from_funnel = { transitions = f }
    for k, v in pairs(spec) do from_log[k], from_funnel[k] = v, v end
    local want, want_info = outcome.labels(leads(), from_log)
    local got, got_info = outcome.labels(leads(), from_funnel)
    lu.assertEquals(bytes_of(got), bytes_of(want))
    lu.assertEquals(got_info.description, want_info.description)
    lu.assertEquals(got_info.already_reached, want_info.already_reached)
  end
  lu.assertEquals(#f, 12)   -- still open
  local err = helpers.error_of(outcome.labels, leads(), { transitions = f, reached = "custmer" })
  lu.assertStrContains(err, "unknown stage 'custmer'")
  f:close()
end

function M.TestOutcomeTransitions.test_within_days_of_creation()
  helpers.with_file(LOG, function(path)
    -- A reached sql 59 days after creation, C 19, E 153, F 4 (customer implies sql)
    local labels = outcome.labels(leads(), { transitions = path, reached = "sql", within_days = 60 })
    lu.assertEquals(bytes_of(labels), { 1, 0, 1, 0, 0, 1 })
  end)
end

function M.TestOutcomeTransitions.test_backtest_as_of()
  helpers.with_file(LOG, function(path)
    -- as of 2026-02-15: D, E, F were created after (left out); A reaches sql after (03-01), C too (implied by
    -- opportunity on 02-20), B never does
    local labels, info = outcome.labels(leads(), { transitions = path, reached = "sql", as_of = "2026-02-15" })
    lu.assertEquals(bytes_of(labels), { 1, 0, 1, 255, 255, 255 })
    lu.assertEquals(info.created_after, 3)
    lu.assertEquals(info.already_reached, 0)
    lu.assertEquals(info.description, "reached sql after 2026-02-15 (leads created by 2026-02-15)")
    -- within 10 days of as_of: only C (5 days; A took 14)
    labels = outcome.labels(leads(), { transitions = path, reached = "sql", as_of = "2026-02-15", within_days = 10 })
    lu.assertEquals(bytes_of(labels), { 0, 0, 1, 255, 255, 255 })
    -- as of 2026-03-15, opportunity: C was there already (left out: nothing left to predict), A gets there
    -- (customer on 05-01), B and D do not
    labels, info = outcome.labels(leads(), { transitions = path, reached = "opportunity", as_of = "2026-03-15" })
    lu.assertEquals(bytes_of(labels), { 1, 0, 255, 0, 255, 255 })
    lu.assertEquals(info.already_reached, 1)
    lu.assertStrContains(outcome.left_out_text(info), "1 that had already reached the stage")
    lu.assertStrContains(outcome.left_out_text(info), "2 created after 2026-03-15")
  end)
end

function M.TestOutcomeTransitions.test_bad_files_and_stages()
  helpers.with_file(LOG, function(path)
    local err = helpers.error_of(outcome.labels, leads(), { transitions = path, reached = "custmer" })
    lu.assertStrContains(err, "unknown stage 'custmer'")
    lu.assertStrContains(err, "did you mean 'customer'?")
    lu.assertErrorMsgContains("need reached = STAGE", outcome.labels, leads(), { transitions = path })
  end)
  local bad = LOG .. "B,sql,not a time,,\nC,wonderland,2026-03-01,,\n"
  helpers.with_file(bad, function(path)
    local err = helpers.error_of(outcome.labels, leads(), { transitions = path, reached = "sql" })
    lu.assertStrContains(err, path .. ":15:")
    lu.assertStrContains(err, "and 1 more unreadable row")
  end)
  helpers.with_file("lead,stage,at\nA,lead,2026-01-01\n", function(path)
    local err = helpers.error_of(outcome.labels, leads(), { transitions = path, reached = "sql" })
    lu.assertStrContains(err, path .. ": no column 'lead_id'")
  end)
  lu.assertErrorMsgContains("cannot read the transitions", outcome.labels, leads(),
    { transitions = "/nonexistent/t.csv", reached = "sql" })
end

M.TestOutcomeCli = {}

function M.TestOutcomeCli.test_flags_to_spec()
  local outcome_flags = require("leadq.cli.outcome")
  local spec = outcome_flags.spec_of({ transitions = "t.csv", reached = "customer", ["within-days"] = 90,
    ["as-of"] = "2026-06-01" })
  lu.assertEquals(spec, { transitions = "t.csv", reached = "customer", within_days = 90, as_of = "2026-06-01" })
  lu.assertTrue(outcome.given(spec))
  lu.assertFalse(outcome.given(outcome_flags.spec_of({ ["as-of"] = "2026-06-01" })))
  for _, k in ipairs({ "outcome", "transitions", "reached", "within-days", "as-of" }) do
    lu.assertNotNil(outcome_flags.options[k], k)
  end
end

return M
