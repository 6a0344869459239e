-- leadq.report: one self-contained HTML file with the funnel, the scores and the model's quality.
--
--   local report = require("leadq.report")
--   local data = report.collect{ rules = { "rules/mql.lua" }, leads = "leads.csv", events = "events.csv",
--                                transitions = "transitions.csv", spend = "spend.csv", by = "source",
--                                as_of = "2026-11-01", outcome = { transitions = ..., reached = "customer" } }
--   local html = report.html(data)             -- a string: inline SVG and CSS, no script, no network
--   report.write(options, "report.html")       -- both, into a file; returns data
--
-- Every number the page shows is also in a JSON block (<script type="application/json"
-- id="leadq-data">), which is data, not code: a test reads it back and compares it with the CLI's
-- outputs. The charts come from leadq.svg, our own small writer: a report must open offline, on a
-- machine with no network, years later; a chart library would be a script to inline and to keep.
--
-- Size: the page holds aggregates only (counts per status, grade, score band, funnel group, decile,
-- rule), never a row per lead, so it stays small whatever the number of leads: funnel groups and
-- rules are capped (the largest first) and the rest counted in the text.
local leadq = require("leadq")
local svg = require("leadq.svg")
local json = require("leadq.json")
local funnel = require("leadq.funnel")
local outcome = require("leadq.outcome")

local format, concat, sort = string.format, table.concat, table.sort
local floor, max, min, huge = math.floor, math.max, math.min, math.huge
local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall

local _M = { _VERSION = "0.1.0" }

local MAX_GROUPS = 24      -- funnel groups drawn (largest first); the rest are summed in "(other)"
local MAX_RULES = 40       -- rules listed in the outcome section
local MAX_ROC_POINTS = 200 -- the ROC polyline is thinned to this many points (the AUC is exact)

local escape, number, percent = svg.escape, svg.number, svg.percent
local function whole_percent(x) return percent(x, 0) end   -- axis ticks of rates from 0 to 1

local OPTIONS = { rules = true, leads = true, events = true, transitions = true, spend = true, by = true,
                  as_of = true, outcome = true, title = true, map = true, id = true, sla_days = true,
                  threads = true }

---------------------------------------------------------------------------------------------------
-- collecting the numbers
---------------------------------------------------------------------------------------------------

-- The rule files' fingerprint: the one `leadq score --stamp` writes beside each row.
local rule_hash = require("leadq.model").rules_hash
_M.rule_hash = rule_hash

local function column(tbl, name)
  if not tbl:has(name) then return nil end
  return (tbl:column(name))
end

local util = require("leadq.util")
local tally = util.tally
local raise = util.raise   -- errors in the caller's terms

-- Statuses best first (evaluate's order: thresholds high to low, the fallback, disqualified), then
-- any other status some lead has, by name; only those some lead has.
local function status_order(info, counts)
  local order, seen = {}, {}
  for _, st in ipairs(require("leadq.evaluate").status_order(info)) do
    if counts[st] and not seen[st] then seen[st] = true; order[#order + 1] = st end
  end
  local rest = {}
  for st in pairs(counts) do if not seen[st] then rest[#rest + 1] = st end end
  sort(rest)
  for _, st in ipairs(rest) do order[#order + 1] = st end
  return order
end

local function statuses_of(status, n, info)
  local counts = tally(status, n)
  local rows = {}
  for _, s in ipairs(status_order(info, counts)) do
    rows[#rows + 1] = { status = s, leads = counts[s], share = n > 0 and counts[s] / n or 0 }
  end
  return rows
end

-- Grades of a letter and a digit ("A1") as a matrix: letters down (fit), digits across (engagement).
local function grade_matrix(grade, n)
  local counts = tally(grade, n)
  local letters, digits = util.grade_axes(counts)
  if not letters or #letters == 0 then return nil end
  local cells = {}
  for r, l in ipairs(letters) do
    cells[r] = {}
    for c, d in ipairs(digits) do cells[r][c] = counts[l .. d] or 0 end
  end
  return { rows = letters, columns = digits, counts = cells }
end

-- Leads per score band and status; bands of a round width covering every score.
local function score_bands(total, status, n, order)
  local lo, hi = huge, -huge
  for i = 1, n do
    local v = total[i]
    if v then lo, hi = min(lo, v), max(hi, v) end
  end
  if lo == huge then return nil end
  local span = max(1, hi - lo)
  local width = 1
  for _, w in ipairs({ 1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000 }) do
    width = w
    if span / w <= 24 then break end
  end
  local first = floor(lo / width) * width
  local count = floor((hi - first) / width) + 1
  local index = {}
  for k, s in ipairs(order) do index[s] = k end
  local cells = {}
  for k = 1, #order do cells[k] = {} for b = 1, count do cells[k][b] = 0 end end
  for i = 1, n do
    local v, s = total[i], status[i]
    local k = index[s or "(none)"]
    if v and k then
      local b = floor((v - first) / width) + 1
      cells[k][b] = cells[k][b] + 1
    end
  end
  local bands = {}
  for b = 1, count do bands[b] = first + (b - 1) * width end
  return { width = width, from = bands, counts = cells, statuses = order }
end

-- The exact ROC curve and AUC from the scores of the labelled leads: one point per distinct score,
-- ties as one diagonal step (the Mann-Whitney AUC, the same as evaluate's).
local function roc_of(total, labels, n)
  local pos, neg = {}, {}
  local np, nn = 0, 0
  for i = 1, n do
    local l, v = labels:byte(i), total[i]
    if v and l == 1 then pos[v] = (pos[v] or 0) + 1; np = np + 1
    elseif v and l == 0 then neg[v] = (neg[v] or 0) + 1; nn = nn + 1 end
  end
  if np == 0 or nn == 0 then return nil end
  local values, seen = {}, {}
  for v in pairs(pos) do seen[v] = true; values[#values + 1] = v end
  for v in pairs(neg) do if not seen[v] then values[#values + 1] = v end end
  sort(values, function(a, b) return a > b end)
  local points = { { 0, 0 } }
  local tp, fp, area = 0, 0, 0
  for _, v in ipairs(values) do
    local p, q = pos[v] or 0, neg[v] or 0
    area = area + q * (tp + p / 2)
    tp, fp = tp + p, fp + q
    points[#points + 1] = { fp / nn, tp / np }
  end
  if #points > MAX_ROC_POINTS then   -- thin the drawing, keeping both ends
    local thin, step = { points[1] }, (#points - 1) / (MAX_ROC_POINTS - 1)
    for k = 1, MAX_ROC_POINTS - 2 do thin[#thin + 1] = points[floor(1 + k * step + 0.5)] end
    thin[#thin + 1] = points[#points]
    points = thin
  end
  return { auc = area / (np * nn), points = points, positives = np, negatives = nn }
end

local function time_range(tbl, name, n)
  local col = column(tbl, name)
  if not col then return nil end
  local lo, hi = huge, -huge
  for i = 1, n do
    local v = col[i]
    if type(v) == "number" then lo, hi = min(lo, v), max(hi, v) end
  end
  if lo == huge then return nil end
  return { from = leadq.format_time(lo):sub(1, 10), to = leadq.format_time(hi):sub(1, 10) }
end

local function key_text(key, dims)
  local parts = {}
  for _, d in ipairs(dims) do parts[#parts + 1] = tostring(key[d] == nil and "(none)" or key[d]) end
  return #parts > 0 and concat(parts, " / ") or "all leads"
end

-- The largest groups first, at most MAX_GROUPS; the rest summed into one "(other)" count.
local function top_groups(tab)
  local groups, names = {}, {}
  for i, g in ipairs(tab.groups) do
    groups[i] = g
    names[g] = key_text(g.key, tab.dims)
  end
  sort(groups, function(a, b)
    if a.leads ~= b.leads then return a.leads > b.leads end
    return names[a] < names[b]
  end)
  local shown, rest = {}, 0
  for i, g in ipairs(groups) do
    if i <= MAX_GROUPS then shown[#shown + 1] = g else rest = rest + g.leads end
  end
  return shown, rest
end

local function check_options(opts)
  if type(opts) ~= "table" then raise("report: options must be a table") end
  util.check_options(opts, OPTIONS, "report")
  if type(opts.rules) == "string" then opts.rules = { opts.rules } end
  if type(opts.rules) ~= "table" or #opts.rules == 0 then raise("report: option 'rules' is required") end
  if type(opts.leads) ~= "string" then raise("report: option 'leads' (a CSV path) is required") end
end

-- All the numbers of a report, as a plain table (what the JSON block holds). Raises on bad input
-- with a plain sentence.
-- The spend CSV as rows { source =, month =, spend = }.
local function spend_rows(path)
  local st, err = leadq.read_csv(path)
  if not st then error(err, 0) end
  for _, c in ipairs({ "source", "month", "spend" }) do
    if not st:has(c) then error(format("%s: no column '%s' (expected source, month, spend)", path, c), 0) end
  end
  local rows = {}
  for _, row in st:rows() do rows[#rows + 1] = row end
  st:close()
  return rows
end

local function bare(err)
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

-- All the numbers of a report, as a plain table (what the JSON block holds). Each input is read
-- once and the leads are scored once: the funnel's groupings share one load of the transitions, and
-- the outcome's statistics come from the same scoring pass (with the rules that fired). Raises on
-- bad input with a plain sentence.
function _M.collect(opts)
  check_options(opts)
  local evaluate = require("leadq.evaluate")
  local model, err
  if #opts.rules == 1 then
    model, err = leadq.load_model(opts.rules[1])
  else
    model, err = leadq.load_models(opts.rules)
  end
  if not model then error(err, 0) end
  local first = model.models and model.models[1] or model
  local prefix = model.models and (first.name .. ".") or ""
  local info = first:info()
  local leads
  -- the files are read on the threads the scoring takes (a plain file is split; gzip reads on one)
  local threads = opts.threads
  leads, err = leadq.read_csv(opts.leads, { map = opts.map, threads = threads })
  if not leads then error(err, 0) end
  local events
  if opts.events then
    -- only the columns the models' features read: the others are never parsed
    events, err = leadq.read_events(opts.events, { threads = threads, columns = model:event_columns(),
      columns_optional = true })
    if not events then error(err, 0) end
  end
  local as_of = opts.as_of
  local ok, result, fired = pcall(evaluate.score, model, leads, events, as_of, opts.threads, first, "report", 1)
  if not ok then error(bare(result), 0) end
  local n = #leads
  local data = {
    title = opts.title or format("Lead qualification report: %s", info.name),
    model = { name = info.name, description = info.description, version = info.version,
              rules = info.rules, files = opts.rules, hash = rule_hash(opts.rules) },
    leadq_version = leadq._VERSION,
    leads = n,
    as_of = type(as_of) == "string" and as_of or (as_of and leadq.format_time(as_of):sub(1, 10)) or nil,
    created = time_range(leads, "created_at", n),
    rejected_leads = leads:reject_count(),
    thresholds = info.thresholds,
  }
  local status = column(result, prefix .. "status")
  local total = column(result, prefix .. "total")
  data.statuses = statuses_of(status, n, info)
  local grade = column(result, prefix .. "grade")
  if grade then data.grades = grade_matrix(grade, n) end
  local order = {}
  for k, s in ipairs(data.statuses) do order[k] = s.status end
  data.scores = score_bands(total, status, n, order)
  local dq = column(result, prefix .. "disqualified_by")
  if dq then
    local counts = tally(dq, n)
    counts["(none)"] = nil
    local rows = {}
    for k, v in pairs(counts) do rows[#rows + 1] = { reason = k, leads = v } end
    sort(rows, function(a, b) if a.leads ~= b.leads then return a.leads > b.leads end return a.reason < b.reason end)
    data.disqualified_by_rule = rows
  end

  local transitions, loaded   -- the log as read, and as the funnel loaded it
  if opts.transitions then
    local by = opts.by or "source"
    local groupings = { {}, { by } }
    if by ~= "owner" then groupings[3] = { "owner" } end
    -- the log is read once: the funnel's groupings and the outcome's labels both take the table
    transitions, err = leadq.read_csv(opts.transitions, { threads = threads })
    if not transitions then error(err, 0) end
    local tabs, rejects
    tabs, rejects, loaded = funnel.reports({ transitions = { { path = opts.transitions, table = transitions } },
      id = opts.id, sla_days = opts.sla_days }, groupings, leads, opts.spend and spend_rows(opts.spend) or nil)
    if not tabs then error("funnel: " .. tostring(rejects), 0) end
    local total_tab, by_tab = tabs[1], tabs[2]
    data.funnel = { chain = total_tab.chain, pairs = total_tab.pairs, by = by, sla_days = total_tab.sla_days,
                    total = total_tab.groups[1], rejected_transitions = #rejects }
    data.funnel.groups, data.funnel.other_leads = top_groups(by_tab)
    data.funnel.costs = by_tab.costs
    if tabs[3] then data.funnel.owners = (top_groups(tabs[3])) end
  end

  if opts.outcome and outcome.given(opts.outcome) then
    local spec = {}
    for k, v in pairs(opts.outcome) do spec[k] = v end
    if spec.as_of == nil then spec.as_of = as_of end
    -- the same log with the funnel's stages: its loaded funnel answers who reached the stage when
    if loaded and spec.transitions == opts.transitions and spec.stages == nil then spec.transitions = loaded
    elseif transitions and spec.transitions == opts.transitions then spec.transitions = transitions end
    local lok, labels, linfo = pcall(outcome.labels, leads, spec)
    if not lok then error(bare(labels), 0) end
    local roc = roc_of(total, labels, n)
    data.outcome = { description = linfo.description, leads = linfo.leads, positives = linfo.positives,
                     left_out = linfo.left_out, roc = roc }
    -- deciles, calibration bands and each rule's lift: evaluate's statistics of this same scoring pass
    local eok, ev = pcall(evaluate.compute, result, prefix, labels, first, fired, {})
    if not eok then error(bare(ev), 0) end
    ev.outcome = linfo.description
    data.outcome.evaluate = evaluate.to_json(ev)
  end
  result:close()
  leads:close()
  if events then events:close() end
  if transitions then transitions:close() end
  if loaded then loaded:close() end
  return data
end

---------------------------------------------------------------------------------------------------
-- the page
---------------------------------------------------------------------------------------------------

local CSS = [[
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: sans-serif; color: #222; margin: 0 auto; max-width: 186mm; padding: 8px; font-size: 12px; }
h1 { font-size: 20px; margin: 8px 0 2px; }
h2 { font-size: 15px; margin: 0 0 6px; border-bottom: 2px solid #0072B2; padding-bottom: 2px; }
.meta { color: #555; margin-bottom: 10px; }
section { margin: 14px 0 18px; break-inside: avoid; page-break-inside: avoid; overflow: hidden; }
svg { display: block; max-width: 100%; height: auto; margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0; font-size: 11px; max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; white-space: normal; }
tr.total td { font-weight: bold; border-top: 1px solid #999; }
.note { color: #555; font-size: 11px; }
.wide { overflow-x: auto; }
]]

-- A table; text_column (an index) is left-aligned and may wrap, for sentences.
local function table_html(headers, rows, total_row, text_column)
  local out = { '<div class="wide"><table><thead><tr>' }
  for i, h in ipairs(headers) do
    out[#out + 1] = (i == text_column and '<th class="text">' or "<th>") .. escape(h) .. "</th>"
  end
  out[#out + 1] = "</tr></thead><tbody>"
  local function row(r, class)
    out[#out + 1] = class and ('<tr class="' .. class .. '">') or "<tr>"
    for i, v in ipairs(r) do
      out[#out + 1] = (i == text_column and '<td class="text">' or "<td>") .. escape(v) .. "</td>"
    end
    out[#out + 1] = "</tr>"
  end
  for _, r in ipairs(rows) do row(r) end
  if total_row then row(total_row, "total") end
  out[#out + 1] = "</tbody></table></div>"
  return concat(out)
end

local function section(id, title, body, note)
  return format('<section id="%s" data-section="%s"><h2>%s</h2>%s%s</section>', id, id, escape(title), body,
    note and ('<p class="note">' .. escape(note) .. "</p>") or "")
end

local function status_section(d)
  local cats, values, rows = {}, {}, {}
  for i, s in ipairs(d.statuses) do
    cats[i], values[i] = s.status, s.leads
    rows[i] = { s.status, number(s.leads), percent(s.share) }
  end
  local chart = svg.bars({ title = "Leads by status", categories = cats,
    series = { { name = "leads", values = values } },
    x_label = "status", y_label = "leads", height = 240 })
  return section("status", "Leads by status", chart .. table_html({ "status", "leads", "share" }, rows,
    { "total", number(d.leads), percent(1) }))
end

local function grade_section(d)
  local g = d.grades
  if not g then return "" end
  local chart = svg.heatmap({ title = "Leads by grade", rows = g.rows, columns = g.columns, values = g.counts,
    row_label = "fit (A best)", column_label = "engagement (1 most engaged)" })
  local rows = {}
  for r, l in ipairs(g.rows) do
    local row = { l }
    for c = 1, #g.columns do row[#row + 1] = number(g.counts[r][c]) end
    rows[#rows + 1] = row
  end
  local headers = { "fit \\ engagement" }
  for _, c in ipairs(g.columns) do headers[#headers + 1] = c end
  return section("grades", "Fit × engagement grades", chart .. table_html(headers, rows))
end

local function score_section(d)
  local s = d.scores
  if not s then return "" end
  local cats = {}
  for b, from in ipairs(s.from) do cats[b] = number(from) end
  local series = {}
  for k, st in ipairs(s.statuses) do series[k] = { name = st, values = s.counts[k] } end
  local markers = {}
  for _, t in ipairs(d.thresholds or {}) do
    markers[#markers + 1] = { at = (t.at - s.from[1]) / s.width + 0.5,
                              label = format("%s ≥ %s", t.status, number(t.at)) }
  end
  local chart = svg.bars({ title = "Score distribution by status", categories = cats, series = series, stacked = true,
    markers = markers, x_label = format("total score (points; bands of %s)", number(s.width)), y_label = "leads" })
  local headers, rows = { "band" }, {}
  for _, st in ipairs(s.statuses) do headers[#headers + 1] = st end
  for b, from in ipairs(s.from) do
    local row = { format("%s to %s", number(from), number(from + s.width)) }
    for k = 1, #s.statuses do row[#row + 1] = number(s.counts[k][b]) end
    rows[#rows + 1] = row
  end
  return section("scores", "Score distribution", chart .. table_html(headers, rows),
    "Dashed lines: the model's thresholds. A band holds scores from its start up to (not including) the next.")
end

local function funnel_section(d)
  local f = d.funnel
  if not f then return "" end
  local stages = f.chain
  local counts, rows = {}, {}
  for i, st in ipairs(stages) do
    counts[i] = f.total.reached[st] or 0
    local prev = i > 1 and (f.total.reached[stages[i - 1]] or 0) or nil
    rows[i] = { st, number(counts[i]), prev and prev > 0 and percent(counts[i] / prev) or "–",
                percent(counts[1] > 0 and counts[i] / counts[1] or 0) }
  end
  local chart = svg.bars({ title = "Funnel by stage", categories = stages,
    series = { { name = "leads", values = counts } },
    x_label = "stage", y_label = "leads that reached it", height = 240 })
  local body = chart .. table_html({ "stage", "leads", "from the step before", "from lead" }, rows)
  -- by the dimension: stacked bars of each group's stage counts, then the table with a total row
  local cats, series = {}, {}
  for k, st in ipairs(stages) do series[k] = { name = st, values = {} } end
  local grows = {}
  for i, g in ipairs(f.groups) do
    cats[i] = key_text(g.key, { f.by })
    local row = { cats[i] }
    for k, st in ipairs(stages) do
      series[k].values[i] = g.reached[st] or 0
      row[#row + 1] = number(g.reached[st] or 0)
    end
    local mql, last = g.reached[stages[2]] or 0, g.reached[stages[#stages]] or 0
    row[#row + 1] = mql > 0 and percent(last / mql) or "–"
    grows[i] = row
  end
  local headers = { f.by }
  for _, st in ipairs(stages) do headers[#headers + 1] = st end
  headers[#headers + 1] = format("%s → %s", stages[2] or "", stages[#stages] or "")
  local total_row = { "total" }
  for _, st in ipairs(stages) do total_row[#total_row + 1] = number(f.total.reached[st] or 0) end
  local tm = f.total.reached[stages[2]] or 0
  total_row[#total_row + 1] = tm > 0 and percent((f.total.reached[stages[#stages]] or 0) / tm) or "–"
  local by_chart = svg.bars({ title = "Funnel by " .. f.by, categories = cats, series = series,
    x_label = f.by, y_label = "leads that reached the stage" })
  body = body .. "<h3>By " .. escape(f.by) .. "</h3>" .. by_chart .. table_html(headers, grows, total_row)
  local note = f.other_leads > 0 and format("%s leads in smaller groups are not drawn (they are in the total).",
    number(f.other_leads)) or nil
  return section("funnel", "Funnel", body, note)
end

local function velocity_section(d)
  local f = d.funnel
  if not f then return "" end
  local cats, med, p90, rows = {}, {}, {}, {}
  for _, p in ipairs(f.pairs) do
    local v = f.total.velocity and f.total.velocity[p.name]
    if v and v.n and v.n > 0 then
      cats[#cats + 1] = p.from .. " → " .. p.to
      med[#med + 1], p90[#p90 + 1] = v.median_days, v.p90_days
      rows[#rows + 1] = { cats[#cats], number(v.n), number(v.median_days, 1), number(v.p90_days, 1) }
    end
  end
  if #cats == 0 then return "" end
  local chart = svg.bars({ title = "Days per step", categories = cats, series = { { name = "median", values = med },
    { name = "p90", values = p90 } }, x_label = "step", y_label = "days" })
  local body = chart .. table_html({ "step", "leads", "median days", "p90 days" }, rows)
  local sla = f.total.sla
  if sla then
    body = body .. format("<h3>Hand-off SLA (%s days)</h3>", number(f.sla_days))
    local orows = {}
    local ocats, late = {}, {}
    for _, g in ipairs(f.owners or {}) do
      local s = g.sla or {}
      if (s.handed_off or 0) + (s.overdue or 0) > 0 then
        local name = key_text(g.key, { "owner" })
        ocats[#ocats + 1], late[#late + 1] = name, (s.late or 0) + (s.overdue or 0)
        orows[#orows + 1] = { name, number(s.handed_off or 0), number(s.within or 0), number(s.late or 0),
                              number(s.overdue or 0), percent(s.share_within or 0) }
      end
    end
    if #ocats > 0 then
      body = body .. svg.bars({ title = "SLA breaches per owner", categories = ocats,
        series = { { name = "late or overdue", values = late } }, x_label = "owner", y_label = "hand-offs past the SLA",
        height = 260 })
    end
    body = body .. table_html({ "owner", "handed off", "within SLA", "late", "overdue", "share within" }, orows,
      { "total", number(sla.handed_off or 0), number(sla.within or 0), number(sla.late or 0), number(sla.overdue or 0),
        percent(sla.share_within or 0) })
  end
  return section("velocity", "Velocity and hand-off", body,
    "Median and p90: days from a lead's first entry into a stage to its first entry into the next.")
end

local function cost_section(d)
  local f = d.funnel
  if not f or not f.costs or f.by ~= "source" then return "" end
  local cats, series, rows = {}, {}, {}
  for k, c in ipairs(f.costs) do series[k] = { name = c:gsub("_", " "), values = {} } end
  for i, g in ipairs(f.groups) do
    cats[i] = key_text(g.key, { "source" })
    local row = { cats[i], number(g.spend or 0, 0) }
    for k, c in ipairs(f.costs) do
      local v = g.cost and g.cost[c]
      series[k].values[i] = v
      row[#row + 1] = v and v > 0 and number(v, 2) or "–"
    end
    rows[i] = row
  end
  local headers = { "source", "spend" }
  for _, c in ipairs(f.costs) do headers[#headers + 1] = c:gsub("_", " ") end
  local chart = svg.bars({ title = "Cost per stage by source", categories = cats, series = series,
    x_label = "source", y_label = "cost per lead reaching the stage" })
  return section("cost", "Cost by source", chart .. table_html(headers, rows),
    "Spend divided by the leads of that source that reached the stage; sources without spend show –.")
end

local function outcome_section(d)
  local o = d.outcome
  if not o then return "" end
  local body = {}
  local roc, ev = o.roc, o.evaluate
  if roc then
    body[#body + 1] = svg.lines({ title = format("ROC curve (AUC %.3f)", roc.auc), diagonal = true,
      series = { { name = "model", points = roc.points } }, x_label = "false positive rate",
      y_label = "true positive rate", x_format = whole_percent, y_format = whole_percent })
    body[#body + 1] = format("<p>AUC <b>%.3f</b>%s over %s leads (%s converted, %s). 0.5 is chance, 1 is "
      .. "perfect.</p>", roc.auc, ev and ev.auc_low and format(" (95%% interval %.3f to %.3f)", ev.auc_low,
      ev.auc_high) or "", number(roc.positives + roc.negatives), number(roc.positives), percent(roc.positives
      / (roc.positives + roc.negatives)))
  end
  if ev and ev.deciles and #ev.deciles > 0 then
    local cats, conv, rows = {}, {}, {}
    for i, dcl in ipairs(ev.deciles) do
      cats[i], conv[i] = tostring(i), dcl.rate
      rows[i] = { tostring(i), format("%s to %s", number(dcl.lo), number(dcl.hi)), number(dcl.leads),
                  number(dcl.positives), percent(dcl.rate or 0), number(dcl.lift or 0, 2),
                  percent(dcl.cumulative_recall or 0) }
    end
    body[#body + 1] = "<h3>Conversion by score decile</h3>" .. svg.bars({ title = "Conversion by score decile",
      categories = cats, series = { { name = "conversion", values = conv } },
      x_label = "score decile (1 = highest scores)", y_label = "conversion", value_format = percent, height = 240 })
    body[#body + 1] = table_html({ "decile", "scores", "leads", "converted", "conversion", "lift",
                                   "converted leads found so far" }, rows)
  end
  if ev and ev.bands and #ev.bands > 0 then
    local pts, low, high, rows = {}, {}, {}, {}
    local x0, x1, y1 = huge, -huge, 0
    for _, band in ipairs(ev.bands) do
      if band.leads and band.leads > 0 and band.rate then
        local mid = (band.lo + band.hi) / 2
        pts[#pts + 1] = { mid, band.rate }
        low[#low + 1], high[#high + 1] = { mid, band.rate_low or band.rate }, { mid, band.rate_high or band.rate }
        x0, x1, y1 = min(x0, band.lo), max(x1, band.hi), max(y1, band.rate_high or band.rate)
      end
      rows[#rows + 1] = { format("%s to %s", number(band.lo), number(band.hi)), number(band.leads or 0),
        percent(band.rate or 0), format("%s to %s", percent(band.rate_low or 0), percent(band.rate_high or 0)) }
    end
    if #pts > 1 and x1 > x0 then
      local _, _, top = svg.ticks(0, y1, 5)
      body[#body + 1] = "<h3>Calibration</h3>" .. svg.lines({ title = "Observed conversion by score band",
        series = { { name = "observed", points = pts, dots = true }, { name = "95% interval, low", points = low },
                   { name = "95% interval, high", points = high } },
        x_range = { x0, x1 }, y_range = { 0, top }, x_label = "score (points)", y_label = "observed conversion",
        y_format = whole_percent, width = 560 })
    else
      body[#body + 1] = "<h3>Calibration</h3>"
    end
    body[#body + 1] = table_html({ "score band", "leads", "observed conversion", "95% interval" }, rows)
  end
  if ev and ev.rules and #ev.rules > 0 then
    local rules = {}
    for _, r in ipairs(ev.rules) do rules[#rules + 1] = r end
    sort(rules, function(a, b)
      if (a.fired or 0) ~= (b.fired or 0) then return (a.fired or 0) > (b.fired or 0) end
      return tostring(a.id) < tostring(b.id)
    end)
    local cats, lifts, rows = {}, {}, {}
    for i = 1, min(#rules, MAX_RULES) do
      local r = rules[i]
      cats[i], lifts[i] = tostring(r.id), r.lift
      rows[i] = { cats[i], number(r.fired or 0), percent(r.share or 0), percent(r.rate_fired or 0),
                  percent(r.rate_not_fired or 0), r.lift and number(r.lift, 2) or "–", r.note or "" }
    end
    body[#body + 1] = "<h3>Rules: lift and support</h3>" .. svg.hbars({ title = "Lift by rule", categories = cats,
      values = lifts, reference = 1, value_format = function(v) return number(v, 1) end,
      x_label = "lift: conversion when the rule fired / overall (dashed: 1, no better than overall)" })
    body[#body + 1] = table_html({ "rule", "fired", "support", "conversion fired", "conversion not fired", "lift",
                                   "note" }, rows, nil, 7)
    if #rules > MAX_RULES then
      body[#body + 1] = format('<p class="note">%d rules that fired least are not listed.</p>', #rules - MAX_RULES)
    end
  end
  return section("outcomes", "Scores against outcomes: " .. tostring(o.description or ""), concat(body))
end

local function dq_section(d)
  local rows, cats, counts = {}, {}, {}
  local source
  if d.funnel and d.funnel.total and d.funnel.total.disqualified and #d.funnel.total.disqualified > 0 then
    source = "the transitions log"
    for i, r in ipairs(d.funnel.total.disqualified) do
      if i > 15 then break end
      cats[i], counts[i] = r.reason, r.count
      rows[i] = { r.reason, number(r.count) }
    end
  elseif d.disqualified_by_rule and #d.disqualified_by_rule > 0 then
    source = "the model's disqualifiers"
    for i, r in ipairs(d.disqualified_by_rule) do
      if i > 15 then break end
      cats[i], counts[i] = r.reason, r.leads
      rows[i] = { r.reason, number(r.leads) }
    end
  else
    return ""
  end
  local chart = svg.bars({ title = "Top reasons for disqualification", categories = cats,
    series = { { name = "leads", values = counts } }, x_label = "reason", y_label = "leads", height = 260 })
  return section("disqualification", "Top reasons for disqualification",
    chart .. table_html({ "reason", "leads" }, rows),
    "From " .. source .. ".")
end

-- The page for the numbers collect() gathered.
function _M.html(d)
  local meta = { format("Model <b>%s</b>", escape(d.model.name)) }
  if d.model.version then meta[#meta + 1] = "version " .. escape(d.model.version) end
  meta[#meta + 1] = "rules " .. escape(concat(d.model.files, ", ")) .. " (hash " .. escape(d.model.hash) .. ")"
  meta[#meta + 1] = number(d.leads) .. " leads"
  if d.created then meta[#meta + 1] = format("created %s to %s", escape(d.created.from), escape(d.created.to)) end
  if d.as_of then meta[#meta + 1] = "scored as of " .. escape(d.as_of) end
  meta[#meta + 1] = "leadq " .. escape(d.leadq_version)
  local data = json.encode(d):gsub("</", "<\\/")
  return concat({
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    "<title>", escape(d.title), "</title><style>", CSS, "</style></head><body>",
    "<h1>", escape(d.title), "</h1><div class=\"meta\">", concat(meta, " · "), "</div>",
    status_section(d), grade_section(d), score_section(d), funnel_section(d), velocity_section(d), cost_section(d),
    outcome_section(d), dq_section(d),
    '<script type="application/json" id="leadq-data">', data, "</script>",
    "</body></html>\n" })
end

-- collect + html, written to path. Returns the data.
function _M.write(opts, path)
  local d = _M.collect(opts)
  local f, err = io.open(path, "wb")
  if not f then error(err, 0) end
  f:write(_M.html(d))
  f:close()
  return d
end

return _M
