-- leadq.changes: status and grade changes between two scoring runs (score --previous --changes) and
-- the lifecycle transitions a run implies (score --transitions-out), read back by leadq funnel.
local lu = require("luaunit")
local changes = require("leadq.changes")
local helpers = require("helpers")
local json = require("leadq.json")

local M = {}
local BUILD = os.getenv("LEADQ_BUILD") or "build"

local function run_of(ids, columns)
  return { ids = ids, column = function(name) return columns[name] end }
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local text = p:read("*a")
  p:close()
  return text
end

local function csv_rows(path)
  local rows = {}
  local text = assert(helpers.read(path))
  local header
  for line in text:gmatch("([^\n]*)\n") do
    local fields = {}
    for f in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = f end
    if not header then header = fields else
      local row = {}
      for i, name in ipairs(header) do row[name] = fields[i] end
      rows[#rows + 1] = row
    end
  end
  return rows
end

M.TestChangesDiff = {}

function M.TestChangesDiff.test_only_changed_leads_with_from_and_to()
  local models = { { name = "mql", prefix = "mql." } }
  local prev = run_of({ "a", "b", "c", "gone" }, {
    ["mql.status"] = { "nurture", "mql", "cold", "mql" }, ["mql.grade"] = { "B2", "A1", "C3", "A2" } })
  local cur = run_of({ "a", "b", "c", "new" }, {
    ["mql.status"] = { "mql", "mql", "cold", "disqualified" }, ["mql.grade"] = { "B1", "A1", "C2", "D4" },
    ["mql.reason"] = { "DEMO_REQUEST", "SENIORITY_VP", "SIZE_SMALL", "competitor" } })
  local list = changes.diff(prev, cur, models,
    { at = 100, owner_of = function(id) return id == "a" and "anna" or nil end })
  local seen = {}
  for i, c in ipairs(list) do
    seen[i] = { c.id, c.from or "-", c.to or "-", c.grade_from or "-", c.grade_to or "-", c.owner or "-",
      c.reason or "-" }
  end
  lu.assertEquals(seen, {
    { "a", "nurture", "mql", "B2", "B1", "anna", "DEMO_REQUEST" },
    { "c", "cold", "cold", "C3", "C2", "-", "SIZE_SMALL" },
    { "new", "-", "disqualified", "-", "D4", "-", "competitor" },
    { "gone", "mql", "-", "A2", "-", "-", "not in this run" },
  })
  lu.assertEquals(list[1].at, 100)
end

function M.TestChangesDiff.test_header_names_the_models()
  lu.assertEquals(changes.models_of_header({ "id", "mql.total", "mql.status", "sql.status", "sql.reason" }),
    { { name = "mql", prefix = "mql." }, { name = "sql", prefix = "sql." } })
  lu.assertEquals(changes.models_of_header({ "id", "total", "status" }, "pql"), { { name = "pql", prefix = "" } })
end

function M.TestChangesDiff.test_transitions_from_statuses()
  local models = { { name = "mql", prefix = "mql." }, { name = "sql", prefix = "sql." } }
  local cur = run_of({ "a", "b", "c", "d" }, {
    ["mql.status"] = { "mql", "disqualified", "nurture", "mql" },
    ["mql.reason"] = { "X", "student", "Y", "Z" },
    ["sql.status"] = { "sql", "disqualified", "sal", "disqualified" },
    ["sql.reason"] = { "B", "disqualified by marketing", "C", "no budget" } })
  local rows = changes.transitions(cur, models, { at = 1000, created = { 10, 20, 2000 },
    owner_of = function(id) return "o-" .. id end })
  lu.assertEquals(rows, {
    { "a", "lead", 10 }, { "a", "mql", 1000, nil, "o-a" }, { "a", "sql", 1000, nil, "o-a" },
    { "b", "lead", 20 }, { "b", "disqualified", 1000, "student" },
    { "c", "lead", 1000 },                                   -- created after `at`: a lead at `at`; sal needs mql
    { "d", "lead", 1000 }, { "d", "mql", 1000, nil, "o-d" }, { "d", "disqualified", 1000, "no budget", "o-d" },
  })
  lu.assertErrorMsgContains("changes.transitions: opts.at is required", changes.transitions, cur, models, {})
end

M.TestChangesCommand = {}

function M.TestChangesCommand.setUp()
  M.dir = helpers.tmpdir()
  local out = sh(BUILD .. "/leadq gen --leads 300 --seed 5 --out " .. M.dir)
  lu.assertStrContains(out, "exit=0")
end

function M.TestChangesCommand.tearDown()
  helpers.remove_dir(M.dir)
end

local function score(args)
  return sh(BUILD .. "/leadq score --rules mql,sql --leads " .. M.dir .. "/leads.csv --events " .. M.dir
    .. "/events.csv " .. args)
end

local function status_count(summary, model, status)
  local block = summary:match(model .. ": leads by status\n(.-)\n%S")
    or summary:match(model .. ": leads by status\n(.*)")
  return tonumber(block:match("\n%s+" .. status .. "%s+(%d+)"))
end

function M.TestChangesCommand.test_funnel_of_transitions_out_agrees_with_the_scores()
  local d = M.dir
  local out = score("--as-of 2026-11-01 --transitions-out " .. d .. "/tr.csv --reactions rules/reactions.lua")
  lu.assertStrContains(out, "exit=0")
  lu.assertStrContains(out, "transitions to " .. d .. "/tr.csv")
  local funnel_out = sh(BUILD .. "/leadq funnel --transitions " .. d .. "/tr.csv --format json --by owner")
  lu.assertStrContains(funnel_out, "exit=0")
  local report = assert(json.decode((funnel_out:gsub("exit=0%s*$", ""))))
  local reached, disq, owners = 0, 0, 0
  for _, g in ipairs(report.groups) do
    reached = reached + g.reached.mql
    disq = disq + g.reached.disqualified
    if type(g.key.owner) == "string" and g.key.owner ~= "" then owners = owners + 1 end
  end
  lu.assertEquals(reached, status_count(out, "mql", "mql"))
  lu.assertEquals(disq, status_count(out, "mql", "disqualified"))
  lu.assertTrue(reached > 0 and disq > 0)
  lu.assertTrue(owners > 0)   -- the routing's owners ride along with the mql transitions
  -- every lead of the run is there, once, as a lead
  local leads = 0
  for _, row in ipairs(csv_rows(d .. "/tr.csv")) do if row.stage == "lead" then leads = leads + 1 end end
  lu.assertEquals(leads, 300)
end

function M.TestChangesCommand.test_previous_and_changes()
  local d = M.dir
  lu.assertStrContains(score("--as-of 2026-09-01 --out " .. d .. "/prev.csv"), "exit=0")
  local out = score("--as-of 2026-11-01 --out " .. d .. "/cur.csv --previous " .. d .. "/prev.csv --changes " .. d
    .. "/changes.csv")
  lu.assertStrContains(out, "exit=0")
  -- what changed, found here from the two scored files
  local prev = {}
  for _, r in ipairs(csv_rows(d .. "/prev.csv")) do prev[r.id] = r end
  local expected = {}
  for _, r in ipairs(csv_rows(d .. "/cur.csv")) do
    local p = prev[r.id] or {}
    for _, m in ipairs({ "mql", "sql" }) do
      if (p[m .. ".status"] or "") ~= r[m .. ".status"] or (p[m .. ".grade"] or "") ~= (r[m .. ".grade"] or "") then
        expected[#expected + 1] = r.id .. " " .. m .. " " .. (p[m .. ".status"] or "") .. ">" .. r[m .. ".status"]
      end
    end
  end
  local got = {}
  for _, c in ipairs(csv_rows(d .. "/changes.csv")) do
    got[#got + 1] = c.id .. " " .. c.model .. " " .. c.status_from .. ">" .. c.status_to
    lu.assertEquals(c.at, "2026-11-01T00:00:00Z")
  end
  table.sort(expected)
  table.sort(got)
  lu.assertTrue(#expected > 10)
  lu.assertEquals(got, expected)
  lu.assertStrContains(out, "changes since " .. d .. "/prev.csv: " .. #expected .. ", wrote " .. d .. "/changes.csv")
  lu.assertStrContains(sh("head -1 " .. d .. "/changes.csv"),
    "id,model,status_from,status_to,grade_from,grade_to,owner,reason,at\n")
end

function M.TestChangesCommand.test_previous_needs_changes()
  local out = score("--previous " .. M.dir .. "/nothing.csv")
  lu.assertStrContains(out, "--previous and --changes go together")
  lu.assertStrContains(out, "exit=1")
  out = score("--previous " .. M.dir .. "/nothing.csv --changes " .. M.dir .. "/c.csv")
  lu.assertStrContains(out, M.dir .. "/nothing.csv")
  lu.assertStrContains(out, "exit=1")
end

return M
