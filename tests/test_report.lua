-- leadq report: the numbers in the HTML equal the CLI's outputs, the page needs nothing from the
-- network, stays small, and renders in a real browser (headless Chromium) with every section drawn
-- and nothing past the width of an A4 page.
local lu = require("luaunit")
local leadq = require("leadq")
local report = require("leadq.report")
local svg = require("leadq.svg")
local json = require("leadq.json")
local gen = require("leadq.gen")
local h = require("helpers")

local M = {}

local BUILD = os.getenv("LEADQ_BUILD") or "build"
local N = h.size(4000, 1500)

local sample   -- generated once for the suite: leads, events, transitions, spend
local function get_sample()
  if sample then return sample end
  local dir = h.tmpdir()
  assert(gen.generate({ leads = N, seed = 11, out = dir }))
  sample = { dir = dir, leads = dir .. "/leads.csv", events = dir .. "/events.csv",
             transitions = dir .. "/transitions.csv", spend = dir .. "/spend.csv" }
  return sample
end

-- The report's options on the sample; extra's keys replace them, false removes one.
local function options(extra)
  local s = get_sample()
  local o = { rules = { "rules/mql.lua" }, leads = s.leads, events = s.events, transitions = s.transitions,
              spend = s.spend, by = "source", as_of = "2026-11-01" }
  for k, v in pairs(extra or {}) do
    if v == false then o[k] = nil else o[k] = v end
  end
  return o
end

local function data_block(html)
  local text = html:match('<script type="application/json" id="leadq%-data">(.-)</script>')
  lu.assertNotNil(text, "the report has no data block")
  return assert(json.decode((text:gsub("<\\/", "</"))))
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  return out
end

M.TestReport = {}

-- Statuses and grades as model:score gives them, counted the plain way.
function M.TestReport.test_status_and_grade_counts_equal_scoring()
  local d = report.collect(options())
  local s = get_sample()
  local t = assert(leadq.read_csv(s.leads))
  local ev = assert(leadq.read_events(s.events))
  local m = assert(leadq.load_model("rules/mql.lua"))
  local r = assert(m:score(t, ev, { as_of = "2026-11-01" }))
  local status, n = r:column("status")
  local grade = r:column("grade")
  local total = r:column("total")
  local counts, grades = {}, {}
  local lo = math.huge
  for i = 1, n do
    counts[status[i]] = (counts[status[i]] or 0) + 1
    grades[grade[i]] = (grades[grade[i]] or 0) + 1
    lo = math.min(lo, total[i])
  end
  lu.assertEquals(d.leads, n)
  local sum = 0
  for _, row in ipairs(d.statuses) do
    lu.assertEquals(row.leads, counts[row.status], row.status)
    sum = sum + row.leads
  end
  lu.assertEquals(sum, n)
  lu.assertEquals({ d.statuses[1].status, d.statuses[#d.statuses].status }, { "mql", "disqualified" })
  for r_i, letter in ipairs(d.grades.rows) do
    for c_i, digit in ipairs(d.grades.columns) do
      lu.assertEquals(d.grades.counts[r_i][c_i], grades[letter .. digit] or 0, letter .. digit)
    end
  end
  -- every lead in exactly one score band, the first band holding the lowest score
  local banded = 0
  for k = 1, #d.scores.statuses do for _, c in ipairs(d.scores.counts[k]) do banded = banded + c end end
  lu.assertEquals(banded, n)
  lu.assertTrue(d.scores.from[1] <= lo and lo < d.scores.from[1] + d.scores.width)
  r:close(); t:close(); ev:close()
end

-- The funnel section holds what `leadq funnel --format json` prints, for the total and by source.
-- Threads change how the files are read and scored, never a number of the report.
function M.TestReport.test_same_numbers_on_two_threads()
  local one = report.collect(options({ as_of = false,
    outcome = { transitions = get_sample().transitions, reached = "customer" } }))
  local two = report.collect(options({ threads = 2, as_of = false,
    outcome = { transitions = get_sample().transitions, reached = "customer" } }))
  lu.assertNotNil(one.outcome)
  lu.assertEquals(two, one)
end

function M.TestReport.test_funnel_numbers_equal_the_funnel_command()
  local s = get_sample()
  local d = report.collect(options())
  local out = run(string.format("%s/leadq funnel --transitions %s --leads %s --by source --spend %s --format json",
    BUILD, s.transitions, s.leads, s.spend))
  lu.assertStrContains(out, "exit=0")
  local cli = assert(json.decode(out:match("^(.-)\nexit=")))
  lu.assertEquals(#d.funnel.groups, #cli.groups)
  local by_key = {}
  for _, g in ipairs(cli.groups) do by_key[g.key.source] = g end
  local totals = {}
  for _, g in ipairs(d.funnel.groups) do
    local c = by_key[g.key.source]
    lu.assertNotNil(c, g.key.source)
    lu.assertEquals(g.reached, c.reached)
    for name, v in pairs(c.cost) do lu.assertAlmostEquals(g.cost[name], v, 1e-9 * math.max(1, v)) end
    for stage, v in pairs(g.reached) do totals[stage] = (totals[stage] or 0) + v end
  end
  lu.assertEquals(d.funnel.total.reached, totals)   -- the total row is the sum of the groups
  lu.assertEquals(d.funnel.other_leads, 0)
end

-- The ROC curve's AUC is the Mann-Whitney statistic: check it against a plain pair count.
function M.TestReport.test_roc_auc_equals_a_pair_count()
  local s = get_sample()
  local d = report.collect(options({ as_of = false, outcome = { transitions = s.transitions, reached = "customer" } }))
  local roc = d.outcome.roc
  lu.assertNotNil(roc)
  local t = assert(leadq.read_csv(s.leads))
  local ev = assert(leadq.read_events(s.events))
  local m = assert(leadq.load_model("rules/mql.lua"))
  local r = assert(m:score(t, ev))
  local outcome = require("leadq.outcome")
  local labels = outcome.labels(t, { transitions = s.transitions, reached = "customer" })
  local total, n = r:column("total")
  local pos, neg = {}, {}
  for i = 1, n do
    local l = labels:byte(i)
    if l == 1 then pos[#pos + 1] = total[i] elseif l == 0 then neg[#neg + 1] = total[i] end
  end
  table.sort(neg)
  -- for each positive, the negatives below it and tied with it (binary search in the sorted list)
  local function count_below(v, strict)
    local lo, hi = 1, #neg + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if (strict and neg[mid] < v) or (not strict and neg[mid] <= v) then lo = mid + 1 else hi = mid end
    end
    return lo - 1
  end
  local wins = 0
  for _, v in ipairs(pos) do
    local below, upto = count_below(v, true), count_below(v, false)
    wins = wins + below + (upto - below) / 2
  end
  lu.assertEquals(roc.positives, #pos)
  lu.assertEquals(roc.negatives, #neg)
  lu.assertAlmostEquals(roc.auc, wins / (#pos * #neg), 1e-12)
  lu.assertEquals(roc.points[1], { 0, 0 })
  lu.assertEquals(roc.points[#roc.points], { 1, 1 })
  r:close(); t:close(); ev:close()
end

-- On real outcomes (UCI bank marketing, y = yes): the report's AUC and deciles are evaluate's, and
-- its ROC curve's exact AUC agrees with them.
function M.TestReport.test_real_outcomes_on_the_bank_data()
  local bank = h.data("uci_bank_marketing/bank-full.csv")
  local d = report.collect({ rules = { "tests/rules/bank_term_deposit.lua" }, leads = bank,
                             outcome = { outcome = "y=yes" } })
  local t = assert(leadq.read_csv(bank))
  local ev = leadq.evaluate("tests/rules/bank_term_deposit.lua", t, { outcome = "y=yes" })
  lu.assertEquals(d.leads, 45211)
  lu.assertEquals(d.outcome.positives, 5289)
  lu.assertAlmostEquals(d.outcome.roc.auc, ev.auc, 1e-12)
  lu.assertAlmostEquals(d.outcome.evaluate.auc_high, ev.auc_high, 1e-12)
  lu.assertTrue(ev.auc > 0.7 and ev.auc < 0.8, "AUC " .. ev.auc)
  for i, dcl in ipairs(ev.deciles) do lu.assertEquals(d.outcome.evaluate.deciles[i].positives, dcl.positives) end
  t:close()
end

function M.TestReport.test_page_is_self_contained_and_small()
  local html = report.html(report.collect(options()))
  lu.assertStrContains(html, "<!DOCTYPE html>")
  -- nothing fetched: no external script, stylesheet, font or image; the only URL is SVG's namespace
  for url in html:gmatch("https?://[^\"' <>]+") do lu.assertEquals(url, "http://www.w3.org/2000/svg") end
  lu.assertNil(html:find("<script src", 1, true))
  lu.assertNil(html:find("<link", 1, true))
  lu.assertNil(html:find("@import", 1, true))
  lu.assertNil(html:find("<img", 1, true))
  for _, id in ipairs({ "status", "grades", "scores", "funnel", "velocity", "cost", "disqualification" }) do
    lu.assertStrContains(html, 'data-section="' .. id .. '"')
  end
  lu.assertTrue(#html < 2e6, "report of " .. #html .. " bytes")
  local d = data_block(html)
  lu.assertEquals(d.leads, N)
  lu.assertEquals(d.model.name, "mql")
  lu.assertStrMatches(d.model.hash, "%x+")
  lu.assertEquals(#d.model.hash, 16)
  -- the fingerprint `leadq score --stamp` writes beside each row
  lu.assertEquals(d.model.hash, require("leadq.cli.score").rules_hash({ "rules/mql.lua" }))
end

-- However many groups, the page holds at most MAX_GROUPS of them and the rest as one number.
function M.TestReport.test_many_groups_stay_bounded()
  local dir = h.tmpdir()
  local leads, trans = { "id,created_at,company" }, { "lead_id,stage,at" }
  for i = 1, 3000 do
    leads[#leads + 1] = string.format("L%d,2026-01-01,c%d", i, i % 100)
    trans[#trans + 1] = string.format("L%d,lead,2026-01-01T00:00:00Z", i)
  end
  h.write(dir .. "/leads.csv", table.concat(leads, "\n") .. "\n")
  h.write(dir .. "/t.csv", table.concat(trans, "\n") .. "\n")
  h.write(dir .. "/m.lua", 'return model "m" { rules = { rule "C1" { points = 10, when = { company = "c1" } } },'
    .. ' thresholds = { mql = 10, otherwise = "cold" } }')
  local d = report.collect({ rules = { dir .. "/m.lua" }, leads = dir .. "/leads.csv", transitions = dir .. "/t.csv",
                             by = "company", as_of = "2026-11-01" })
  lu.assertEquals(#d.funnel.groups, 24)
  lu.assertEquals(d.funnel.other_leads, 3000 - 24 * 30)
  lu.assertEquals(d.funnel.total.reached.lead, 3000)
  lu.assertTrue(#report.html(d) < 2e5)
  h.remove_dir(dir)
end

function M.TestReport.test_bad_input_is_a_plain_sentence()
  lu.assertStrContains(h.error_of(report.collect, { leads = "x.csv" }), "option 'rules' is required")
  lu.assertStrContains(h.error_of(report.collect, { rules = "rules/mql.lua", leads = "x.csv", colour = 1 }),
    "unknown option 'colour'")
  local err = h.error_of(report.collect, { rules = "rules/mql.lua", leads = "no/such/file.csv" })
  lu.assertStrContains(err, "no/such/file.csv")
  err = h.error_of(report.collect, options({ outcome = { outcome = "no_such_column" } }))
  lu.assertStrContains(err, "no_such_column")
  lu.assertNil(err:find("report.lua", 1, true), err)
end

-- The SVG writer: text escaped, round ticks, percentages and thousands for people.
function M.TestReport.test_svg_writer()
  local s = svg.bars({ title = "a<b", categories = { "x&y" }, series = { { name = "n", values = { 5 } } } })
  lu.assertStrContains(s, "a&lt;b")
  lu.assertStrContains(s, "x&amp;y")
  lu.assertNil(s:find("x&y", 1, true))
  lu.assertEquals((svg.ticks(0, 97, 5)), { 0, 20, 40, 60, 80, 100 })
  lu.assertEquals(svg.number(1234567), "1,234,567")
  lu.assertEquals(svg.number(-1234.5, 1), "-1,234.5")
  lu.assertEquals(svg.percent(0.1234), "12.3%")
  lu.assertEquals(svg.number(0 / 0), "–")
  local hm = svg.heatmap({ rows = { "A" }, columns = { "1", "2" }, values = { { 0, 10 } } })
  lu.assertStrContains(hm, "#0072B2")   -- the largest cell takes the full colour
  lu.assertStrContains(hm, "#FFFFFF")   -- an empty cell is white
end

-- The command writes the file and says so; its JSON block holds what the page shows.
function M.TestReport.test_command()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the launcher runs Lua 5.4: tested in the lua5.4 run") end
  local s = get_sample()
  local out_file = s.dir .. "/report.html"
  local out = run(string.format("%s/leadq report --rules rules/mql.lua --leads %s --events %s --transitions %s "
    .. "--spend %s --reached customer --out %s", BUILD, s.leads, s.events, s.transitions, s.spend, out_file))
  lu.assertStrContains(out, "exit=0")
  lu.assertStrContains(out, "wrote " .. out_file)
  -- every processor by default, as many as --threads says otherwise
  local cpus = require("leadq.core").cpus()
  lu.assertStrContains(out, string.format("on %d thread%s", cpus, cpus == 1 and "" or "s"))
  local d = data_block(h.read(out_file))
  lu.assertTrue(d.outcome.roc.auc > 0.5)
  -- the outcome section's numbers are `leadq evaluate`'s, and its exact ROC agrees with evaluate's AUC
  out = run(string.format("%s/leadq evaluate --rules rules/mql.lua --leads %s --events %s --transitions %s "
    .. "--reached customer --format json", BUILD, s.leads, s.events, s.transitions))
  lu.assertStrContains(out, "exit=0")
  local ev = assert(json.decode(out:match("^(.-)\nexit=")))
  lu.assertAlmostEquals(d.outcome.roc.auc, ev.auc, 1e-12)
  lu.assertAlmostEquals(d.outcome.evaluate.auc_low, ev.auc_low, 1e-12)
  lu.assertEquals(#d.outcome.evaluate.deciles, #ev.deciles)
  for i, dcl in ipairs(ev.deciles) do
    lu.assertEquals(d.outcome.evaluate.deciles[i].leads, dcl.leads)
    lu.assertEquals(d.outcome.evaluate.deciles[i].positives, dcl.positives)
  end
  for i, r in ipairs(ev.rules) do
    lu.assertEquals(d.outcome.evaluate.rules[i].id, r.id)
    lu.assertEquals(d.outcome.evaluate.rules[i].fired, r.fired)
  end
  out = run(string.format("%s/leadq report --rules rules/mql.lua --leads %s --out %s --threads 1", BUILD, s.leads,
    out_file))
  lu.assertStrContains(out, " s on 1 thread\n")
  out = run(string.format("%s/leadq report --rules rules/mql.lua --leads %s --out %s --reached customer", BUILD,
    s.leads, out_file))
  lu.assertStrContains(out, "--reached needs --transitions")
  lu.assertStrContains(out, "exit=1")
end

local CHROMIUM_FLAGS = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
  .. "--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars "
  .. "--window-size=794,1123"   -- an A4 page at 96 dpi

-- Measures the page from inside the browser: each section's charts drawn (elements, a size), and
-- nothing wider than the page. The result is written into the DOM, which --dump-dom prints.
local PROBE = [[
<script>
addEventListener("load", function () {
  var out = { width: innerWidth, scroll: document.documentElement.scrollWidth, sections: [] };
  document.querySelectorAll("section").forEach(function (s) {
    var r = s.getBoundingClientRect(), svgs = [];
    s.querySelectorAll("svg").forEach(function (g) {
      var b = g.getBoundingClientRect();
      svgs.push({ shapes: g.querySelectorAll("rect,polyline,circle,line").length, width: b.width, height: b.height,
                  right: b.right });
    });
    var clipped = 0;   // a table wider than its box (it would scroll on screen and be cut in print)
    s.querySelectorAll(".wide").forEach(function (w) { if (w.scrollWidth > w.clientWidth + 1) clipped++; });
    out.sections.push({ id: s.id, right: r.right, height: r.height, svgs: svgs, clipped: clipped,
                        tables: s.querySelectorAll("table").length });
  });
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
]]

function M.TestReport.test_renders_in_chromium()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the browser check runs once, in the lua5.4 run") end
  local has = os.execute("command -v chromium >/dev/null 2>&1")
  lu.assertTrue(has == true or has == 0, "chromium is not installed (.ci/install-deps report)")
  local s = get_sample()
  local html = report.html(report.collect(options({ as_of = false,
    outcome = { transitions = s.transitions, reached = "customer" } })))
  os.execute("mkdir -p " .. BUILD .. "/report")
  local page = BUILD .. "/report/report.html"
  h.write(page, html)
  local probe_page = s.dir .. "/probe.html"
  h.write(probe_page, (html:gsub("</body>", function() return PROBE .. "</body>" end)))
  local profile = h.tmpdir()
  -- a screenshot for a person to look at, kept under build/report
  local shot = BUILD .. "/report/report.png"
  os.remove(shot)
  local cwd = io.popen("pwd"):read("*l")
  run(string.format("chromium %s --user-data-dir=%s --screenshot=%s file://%s/%s", CHROMIUM_FLAGS, profile, shot,
    cwd, page))
  local png = h.read(shot)
  lu.assertNotNil(png, "no screenshot written")
  lu.assertEquals(png:sub(2, 4), "PNG")
  local dom = run(string.format("chromium %s --user-data-dir=%s --virtual-time-budget=5000 --dump-dom file://%s",
    CHROMIUM_FLAGS, profile, probe_page))
  h.remove_dir(profile)
  local probe = dom:match('<pre id="probe">(.-)</pre>')
  lu.assertNotNil(probe, "the page did not finish loading in chromium:\n" .. dom:sub(1, 500))
  probe = assert(json.decode((probe:gsub("&quot;", '"'):gsub("&amp;", "&"))))
  lu.assertTrue(probe.scroll <= probe.width, string.format("page %d px wide in a %d px window", probe.scroll,
    probe.width))
  local seen = {}
  for _, sec in ipairs(probe.sections) do
    seen[sec.id] = true
    lu.assertTrue(sec.right <= probe.width, sec.id .. " runs past the page")
    lu.assertTrue(#sec.svgs >= 1, sec.id .. " has no chart")
    lu.assertTrue(sec.tables >= 1, sec.id .. " has no table")
    lu.assertEquals(sec.clipped, 0, sec.id .. ": a table wider than the page")
    for _, g in ipairs(sec.svgs) do
      lu.assertTrue(g.shapes > 0, sec.id .. ": an empty chart")
      lu.assertTrue(g.width > 100 and g.height > 50, sec.id .. ": a chart of no size")
      lu.assertTrue(g.right <= probe.width, sec.id .. ": a chart past the page")
    end
  end
  for _, id in ipairs({ "status", "grades", "scores", "funnel", "velocity", "cost", "outcomes", "disqualification" }) do
    lu.assertTrue(seen[id], "section " .. id .. " missing")
  end
end

return M
