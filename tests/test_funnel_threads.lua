-- leadq.funnel on threads: checking the log, each lead's stage times and the aggregation run on parts of
-- the leads (at least 1024 leads a part), and the answer must be the same bytes for any number of
-- threads: the serialized result, the CSV, JSON and text reports, and the rejected rows in their order.
local lu = require("luaunit")
local funnel = require("leadq.funnel")
local core = require("leadq.core")
local cli = require("leadq.cli")
local helpers = require("helpers")

local M = {}

local DAY = 86400
local T0 = 1704067200   -- 2024-01-01 00:00:00 UTC
local THREADS = { 1, 2, 3, 7 }
-- 7 parts need 7 * 1024 leads: fewer under the sanitizers, where 3 parts still differ from one
local N = helpers.size(9000, 3100)

-- n leads walking the funnel, with rows the check rejects (a repeated stage, a step back, a start in
-- nurture, disqualified without a reason), recycling, owners and disqualification reasons.
local function log_rows(n)
  local r = helpers.rng(7)
  local chain = { "lead", "mql", "sal", "sql", "opportunity", "customer" }
  local owners = { "ann", "bob", "cy", "" }
  local rows = { "lead_id,stage,at,reason,owner" }
  local function row(id, stage, t, reason, owner)
    rows[#rows + 1] = string.format("%s,%s,%s,%s,%s", id, stage, os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)),
      reason or "", owner or "")
  end
  for i = 1, n do
    local id = "L" .. i
    local t = T0 + r(300) * DAY + r(86400)
    local owner = owners[r(4)]
    local kind = r(20)
    if kind == 1 then row(id, "nurture", t) end            -- rejected: a lead cannot start there
    for s = r(2), 6 do
      row(id, chain[s], t, nil, owner)
      if kind == 2 and s == 3 then row(id, "mql", t + DAY) end   -- rejected: out of order
      if kind == 3 then row(id, chain[s], t + 60) end             -- rejected: already there
      if r() < 0.25 then
        local u = r()
        if u < 0.4 then row(id, "disqualified", t + r(5) * DAY, ({ "student", "competitor", "spam" })[r(3)])
        elseif u < 0.5 then row(id, "disqualified", t + DAY)      -- rejected: no reason
        else
          row(id, "nurture", t + r(5) * DAY)
          if r() < 0.5 then row(id, "mql", t + r(40) * DAY + 10 * DAY, nil, owners[r(4)]) end   -- recycled
        end
        break
      end
      t = t + r(30) * DAY * r() + r(3600)
    end
  end
  return table.concat(rows, "\n") .. "\n"
end

local function leads_csv(n)
  local r = helpers.rng(11)
  local lines = { "id,source,country" }
  for i = 1, n, 1 do
    if i % 50 ~= 0 then   -- some leads of the log are not in the leads file
      lines[#lines + 1] = string.format("L%d,%s,%s", i, ({ "web", "ads", "event", "" })[r(4)],
        ({ "US", "DE", "FR" })[r(3)])
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

local LOG, LEADS = log_rows(N), leads_csv(N)

-- Everything a run can say, on `threads` threads.
-- A funnel with the log loaded (its lead ids read as text, as the command reads them, and interned
-- beside the load on threads > 1), and the log and leads tables (each closed by the caller).
local function loaded(threads)
  local f, log, leads = funnel.new(), core.parse_csv(LOG, { schema = { lead_id = "text" } }), core.parse_csv(LEADS)
  f:load(log, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" }, threads)
  return f, log, leads
end

local function answers(threads, by)
  local f, log, leads = loaded(threads)
  local r = f:aggregate{ by = by, leads = leads, id = "id", threads = threads }
  local tab = funnel.report(r)
  local out = {
    serialized = r:serialize(), csv = r:csv(), json = funnel.format(tab, "json"), text = funnel.format(tab, "table"),
    rejects = funnel.rejects_csv(f:rejects()), nrejects = #f:rejects(),
  }
  r:close()
  f:close()
  log:close()
  leads:close()
  return out
end

-- a == b, or a failure naming where they part (LuaUnit's diff of two long texts takes minutes)
local function assert_same(a, b, what)
  if a == b then return end
  local i = 1
  while a:sub(i, i) == b:sub(i, i) do i = i + 1 end
  lu.fail(string.format("%s: differs at byte %d: %q against %q", what, i, a:sub(i, i + 60), b:sub(i, i + 60)))
end

M.TestFunnelThreads = {}

function M.TestFunnelThreads.test_any_number_of_threads_gives_the_same_bytes()
  for _, by in ipairs({ { "source", "country" }, { "owner", "mql_month" }, {} }) do
    local one = answers(1, by)
    lu.assertTrue(one.nrejects > 0, "the log has rows to reject")
    lu.assertStrContains(one.text, "disqualification reasons")
    lu.assertStrContains(one.text, "recycled to nurture")
    for _, threads in ipairs(THREADS) do
      local other = answers(threads, by)
      for _, k in ipairs({ "serialized", "csv", "json", "text", "rejects" }) do
        assert_same(other[k], one[k], string.format("%s by %s on %d threads", k, table.concat(by, ","), threads))
      end
    end
  end
end

function M.TestFunnelThreads.test_prepare_and_join_take_threads()
  local function run(threads)
    local f, log, leads = loaded(threads)
    local nrejects = f:prepare(threads)
    f:join(leads, "id", threads)
    local r = f:aggregate{ by = { "source", "country" } }   -- the stored join
    local out = { nrejects = nrejects, rejects = funnel.rejects_csv(f:rejects()), serialized = r:serialize() }
    r:close()
    f:close()
    log:close()
    leads:close()
    return out
  end
  local one = run(1)
  lu.assertTrue(one.nrejects > 0)
  for _, threads in ipairs({ 2, 3, 7 }) do
    local other = run(threads)
    lu.assertEquals(other.nrejects, one.nrejects)
    assert_same(other.rejects, one.rejects, "rejects checked on " .. threads .. " threads")
    assert_same(other.serialized, one.serialized, "joined on " .. threads .. " threads")
  end
  local f = funnel.new()
  lu.assertErrorMsgContains("prepare: threads must be a whole number from 1 to 256", f.prepare, f, 0)
  local log = core.parse_csv(LOG)
  lu.assertErrorMsgContains("load: threads must be a whole number from 1 to 256", f.load, f, log,
    { lead = "lead_id", stage = "stage", at = "at" }, 1.5)
  log:close()
  local leads = core.parse_csv(LEADS)
  lu.assertErrorMsgContains("join: threads must be a whole number from 1 to 256", f.join, f, leads, "id", 300)
  leads:close()
end

function M.TestFunnelThreads.test_parts_merged_equal_the_whole()
  -- the same rows split by lead into two logs, each aggregated on threads, merged: the whole's result
  local header, body = LOG:match("^([^\n]*\n)(.*)$")
  local rows = {}
  for line in body:gmatch("[^\n]+") do rows[#rows + 1] = line end
  local cut = math.floor(#rows / 2)
  while rows[cut + 1]:match("^[^,]*") == rows[cut]:match("^[^,]*") do cut = cut + 1 end
  local function result(from, to, threads)
    local f = funnel.new()
    local t = core.parse_csv(header .. table.concat(rows, "\n", from, to) .. "\n")
    f:load(t, { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" })
    local r = f:aggregate{ by = { "owner" }, threads = threads }
    t:close()
    return r
  end
  local whole = result(1, #rows, 1)
  local merged = assert(funnel.merge({ result(1, cut, 3):serialize(), result(cut + 1, #rows, 2):serialize() }))
  -- (the CSV: a part's SLA is timed to its own latest transition, the whole's to the whole's)
  assert_same(merged:csv(), whole:csv(), "merged parts against the whole")
end

-- The log's leads are interned three ways: text ids a row at a time with their slots asked for ahead
-- (the command's read), a category's dictionary once per code, and lq_funnel_add one row at a time
-- (the keys grown and rehashed as they fill). Ids of every length (the hash reads 8 bytes at a time)
-- and a lead's rows apart from each other: each way gives the same leads in the same order, so the
-- same result, joined to the same leads, on any threads.
function M.TestFunnelThreads.test_leads_interned_any_way_give_the_same_result()
  local header, body = LOG:match("^([^\n]*\n)(.*)$")
  local rows = {}
  for line in body:gmatch("[^\n]+") do
    local id, rest = line:match("^([^,]*)(.*)$")
    local n = tonumber(id:sub(2))
    -- ids 1 to 40 bytes long, unique per lead
    rows[#rows + 1] = (n % 5 == 0 and id or id .. string.rep("x", n % 37)) .. rest
  end
  -- every seventh row moved to the end: a lead's rows no longer side by side
  local moved, kept = {}, {}
  for i, row in ipairs(rows) do
    if i % 7 == 0 then moved[#moved + 1] = row else kept[#kept + 1] = row end
  end
  for _, row in ipairs(moved) do kept[#kept + 1] = row end
  local log_text = header .. table.concat(kept, "\n") .. "\n"
  local leads_lines = { "id,source,country" }
  for line in body:gmatch("[^\n]+") do
    local id = line:match("^([^,]*)")
    local n = tonumber(id:sub(2))
    if n % 50 ~= 0 then
      leads_lines[#leads_lines + 1] = string.format("%s,%s,%s", n % 5 == 0 and id or id .. string.rep("x", n % 37),
        ({ "web", "ads", "event" })[n % 3 + 1], ({ "US", "DE" })[n % 2 + 1])
    end
  end
  local leads_text = table.concat(leads_lines, "\n") .. "\n"
  local cols = { lead = "lead_id", stage = "stage", at = "at", reason = "reason", owner = "owner" }
  local function result(how, threads)
    local f = funnel.new()
    if how == "rows" then
      local t = core.parse_csv(log_text, { schema = { lead_id = "text" } })
      for _, row in t:rows() do f:add(row.lead_id, row.stage, row.at, row.reason, row.owner) end
      t:close()
    else
      local t = core.parse_csv(log_text, { schema = { lead_id = how } })
      f:load(t, cols, threads)
      t:close()
    end
    local leads = core.parse_csv(leads_text, { schema = { id = "text" } })
    local r = f:aggregate{ by = { "source", "country" }, leads = leads, id = "id", threads = threads }
    local rejects = {}   -- each reject's lead, as the loads interned it (the row by row one has no line)
    for i, rej in ipairs(f:rejects()) do rejects[i] = string.format("%s %s %s", rej.lead, rej.stage, rej.message) end
    local out = { serialized = r:serialize(), nrejects = #f:rejects(), nleads = #f,
                  rejects = table.concat(rejects, "\n") }
    r:close()
    f:close()
    leads:close()
    return out
  end
  local want = result("text", 1)
  lu.assertTrue(want.nrejects > 0)
  for _, how in ipairs({ "text", "category", "rows" }) do
    for _, threads in ipairs(THREADS) do
      local got = result(how, threads)
      local what = string.format("leads interned from %s, %d threads", how, threads)
      lu.assertEquals(got.nrejects, want.nrejects, what)
      lu.assertEquals(got.nleads, want.nleads, what)
      assert_same(got.serialized, want.serialized, what)
      assert_same(got.rejects, want.rejects, what)
    end
  end
end

function M.TestFunnelThreads.test_the_command_takes_threads()
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/t.csv", LOG)
  helpers.write(dir .. "/leads.csv", LEADS)
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  local function run(threads, fmt)
    printed = {}
    lu.assertEquals(cli.main({ "funnel", "--transitions", dir .. "/t.csv", "--leads", dir .. "/leads.csv", "--by",
      "source,country", "--format", fmt, "--threads", tostring(threads) }, out), 0)
    return table.concat(printed, "\n")
  end
  for _, fmt in ipairs({ "csv", "json", "table" }) do
    local one = run(1, fmt)
    assert_same(run(2, fmt), one, fmt .. " on 2 threads")
    assert_same(run(7, fmt), one, fmt .. " on 7 threads")
  end
  lu.assertEquals(cli.main({ "funnel", "--transitions", dir .. "/t.csv", "--threads", "0" }, out), 2)
  lu.assertEquals(errors[#errors], "leadq: --threads must be 1 to 256")
  helpers.remove_dir(dir)
  local f = funnel.new()
  lu.assertErrorMsgContains("query.threads must be a whole number from 1 to 256", f.aggregate, f, { threads = 0 })
  lu.assertErrorMsgContains("query.threads must be a whole number from 1 to 256", f.aggregate, f, { threads = 1.5 })
end

return M
