-- leadq.evaluate: does a model's score predict the outcome? From the same scoring pass that `score`
-- runs (the rules that fired come from the compiled program, never re-evaluated in Lua), against
-- labels from leadq.outcome, with the statistics computed in C (csrc/evaluate.c).
--
--   local r = leadq.evaluate(model_or_run, leads [, events], spec)
--   print(r)                          -- readable text; r.auc, r.deciles, r.statuses, r.rules, ...
--   require("leadq.json").encode(evaluate.to_json(r))
--
-- spec: the outcome (leadq.outcome: outcome = COLUMN | "COL=VALUE", or transitions =, reached =,
-- within_days =; as_of =, id =, created =, stages =) and these options:
--   threads = N         scoring threads
--   model = "mql"       with a run of several models: the one to evaluate (default the first)
--   bands = 10          calibration bands (1 to 20)
--   often = 0.2         a rule firing for at least this share of leads and predicting nothing is flagged
--   labels = s, info = t   labels already made (outcome.labels): the outcome keys are then not read
--
-- The result: leads, positives, negatives, rate, auc, auc_low, auc_high (DeLong 95%), deciles (1 = top
-- scores: leads, positives, rate, lift, cumulative_recall, lo, hi), bands (calibration: lo, hi, rate,
-- rate_low, rate_high: a 95% Wilson interval), statuses and grades (name, leads, share, positives,
-- precision, recall, lift), rules (id, label, group, points, fired, share, rate_fired, rate_not_fired,
-- lift, ratio, ratio_low, ratio_high, note), outcome (the description), left_out (a sentence or nil).
local core = require("leadq.core")
local outcome = require("leadq.outcome")

local type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable =
  type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable
local format, rep = string.format, string.rep
local concat, sort = table.concat, table.sort
local floor, abs = math.floor, math.abs

local _M = { _VERSION = "0.1.0" }

local OUTCOME_KEYS = { outcome = true, transitions = true, reached = true, within_days = true, as_of = true,
                       id = true, created = true, stages = true }
local OPTION_KEYS = { threads = true, model = true, bands = true, often = true, labels = true, info = true }
_M.OPTION_KEYS = OPTION_KEYS

local DEFAULT_OFTEN = 0.2
local FLAT_LIFT = 0.1      -- |lift - 1| under this predicts nothing, whatever the interval says

local Result = {}
Result.__index = Result
_M.Result = Result

-- "file.lua:12: message" -> "message": errors re-raised in our caller's terms.
local function bare(err)
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""))
end
_M.bare = bare

local raise = require("leadq.util").raise   -- errors in the caller's terms: no level to pass on

local function all_keys()
  local names = {}
  for k in pairs(OUTCOME_KEYS) do names[#names + 1] = k end
  for k in pairs(OPTION_KEYS) do names[#names + 1] = k end
  sort(names)
  return names
end

-- Splits spec into the outcome's part and the options; raises on an unknown key.
function _M.split_spec(spec, fname)
  if spec == nil then spec = {} end
  if type(spec) ~= "table" then raise(format("%s: the spec must be a table, got %s", fname, type(spec))) end
  local out_spec, opts = {}, {}
  for k, v in pairs(spec) do
    if OUTCOME_KEYS[k] then out_spec[k] = v
    elseif OPTION_KEYS[k] then opts[k] = v
    else
      raise(format("%s: unknown option '%s'%s", fname, tostring(k),
        require("leadq.dsl").did_you_mean(tostring(k), all_keys())))
    end
  end
  return out_spec, opts
end

local function is_run(m)
  local model = require("leadq.model")
  return getmetatable(m) == model.Run
end

local function is_model(m)
  local model = require("leadq.model")
  return getmetatable(m) == model.Model or getmetatable(m) == model.Run
end
_M.is_model = is_model

-- The model to evaluate, its column prefix in the results and its info.
function _M.pick(m, name, fname)
  if not is_run(m) then
    if name ~= nil and name ~= m.name then
      raise(format("%s: model '%s' is not this model ('%s')", fname, tostring(name), tostring(m.name)))
    end
    return m, ""
  end
  local names = {}
  for _, x in ipairs(m.models) do
    names[#names + 1] = x.name
    if name == nil or x.name == name then return x, x.name .. "." end
  end
  raise(format("%s: no model '%s' in the run (models: %s)", fname, tostring(name), concat(names, ", ")))
end

-- Scores leads once, with the rules that fired: results, fired (of the picked model), events report.
function _M.score(m, leads, events, as_of, threads, picked, fname)
  local fired = {}
  local ok, results, errs, report = pcall(m.score, m, leads, events, { as_of = as_of, threads = threads,
    fired = fired })
  if not ok then raise(format("%s: %s", fname, bare(results))) end
  if not results then raise(format("%s: %s", fname, bare(errs))) end
  if is_run(m) then fired = fired[picked.name] end
  return results, fired, report, errs
end

-- Statuses best first: thresholds high to low, then otherwise, then disqualified.
function _M.status_order(info)
  local order = {}
  for _, t in ipairs(info.thresholds or {}) do order[#order + 1] = t.status end
  if info.otherwise then order[#order + 1] = info.otherwise end
  order[#order + 1] = "disqualified"
  return order
end

local function sort_by(list, order)
  local rank = {}
  for i, name in ipairs(order) do rank[name] = i end
  sort(list, function(a, b)
    local ra, rb = rank[a.name] or 1e9, rank[b.name] or 1e9
    if ra ~= rb then return ra < rb end
    return tostring(a.name) < tostring(b.name)
  end)
end

-- What the rules' numbers say, as a short note (nil when nothing to say).
local function rule_note(r, often)
  if (r.fired or 0) == 0 then return "never fired" end
  if r.ratio_low then
    local covers = r.ratio_low <= 1 and (r.ratio_high == nil or r.ratio_high >= 1)
    local flat = r.lift and abs(r.lift - 1) < FLAT_LIFT
    if r.share >= often and (covers or flat) then return "fires often, predicts nothing" end
    if type(r.points) == "number" and r.kind == "rule" then
      if r.points > 0 and r.ratio_high and r.ratio_high < 1 then return "positive points, converts less" end
      if r.points < 0 and r.ratio_low > 1 then return "negative points, converts more" end
    end
  end
  return nil
end

-- The statistics of one scored result against labels (the C pass), with the model's rules attached.
function _M.compute(results, prefix, labels, m, fired, opts)
  local has_grade = results:has(prefix .. "grade")
  local options = { status = prefix .. "status", grade = has_grade and (prefix .. "grade") or nil,
                    bands = opts.bands }
  if fired and fired.bits then
    options.fired, options.nsets, options.words = fired.bits, #fired.ids, fired.words
  end
  local r = core.evaluate(results, prefix .. "total", labels, options)
  local info = m:info()
  r.model = info.name
  r.path = info.path
  sort_by(r.statuses or {}, _M.status_order(info))
  if r.grades then sort(r.grades, function(a, b) return tostring(a.name) < tostring(b.name) end) end
  if r.rules then
    local often = opts.often or DEFAULT_OFTEN
    local described = m:rules()
    for i, rr in ipairs(r.rules) do
      local d = described[i] or {}
      rr.id, rr.label, rr.group, rr.kind, rr.line = d.id, d.label, d.group, d.kind, d.line
      rr.points = type(d.points) == "number" and d.points or nil
      rr.note = rule_note(rr, often)
    end
    r.flagged = {}
    for _, rr in ipairs(r.rules) do
      if rr.note == "fires often, predicts nothing" then r.flagged[#r.flagged + 1] = rr.id end
    end
  end
  return r
end

-- leadq.evaluate(model_or_run, leads [, events], spec)
function _M.evaluate(m, leads, events, spec)
  if type(m) == "string" then
    local loaded, err = require("leadq").load_model(m)
    if not loaded then raise("evaluate: " .. err) end
    m = loaded
  end
  if not is_model(m) then
    raise("evaluate: expects a model or a run of models (leadq.load_model), got " .. type(m))
  end
  if not core.is_table(leads) then
    raise("evaluate: expects a leadq table of leads (leadq.read_csv), got " .. type(leads))
  end
  if spec == nil and type(events) == "table" and not core.is_table(events) then events, spec = nil, events end
  if events ~= nil and not core.is_table(events) then
    raise("evaluate: events must be a leadq table (leadq.read_events), got " .. type(events))
  end
  local out_spec, opts = _M.split_spec(spec, "evaluate")
  local picked, prefix = _M.pick(m, opts.model, "evaluate")
  local labels, info = opts.labels, opts.info
  if labels == nil then
    local ok, l, i = pcall(outcome.labels, leads, out_spec)
    if not ok then raise("evaluate: " .. bare(l)) end
    labels, info = l, i
  elseif type(labels) ~= "string" or #labels ~= #leads then
    raise(format("evaluate: labels must be a string of %d bytes (outcome.labels)", #leads))
  end
  local results, fired, report = _M.score(m, leads, events, out_spec.as_of, opts.threads, picked, "evaluate", 2)
  local ok, r = pcall(_M.compute, results, prefix, labels, picked, fired, opts)
  results:close()
  if not ok then raise("evaluate: " .. bare(r)) end
  r.outcome = info and info.description or nil
  r.left_out_text = outcome.left_out_text(info)
  r.no_created = info ~= nil and info.as_of ~= nil and info.created == nil
  r.as_of = out_spec.as_of
  r.events = report
  return setmetatable(r, Result)
end

---------------------------------------------------------------------------------------------------
-- text

local thousands = require("leadq.util").thousands
_M.thousands = thousands

local function pct(x)
  if x == nil then return "-" end
  if x > 0 and x < 0.001 then return format("%.2f%%", x * 100) end
  return format("%.1f%%", x * 100)
end
_M.pct = pct

local function num(x, digits)
  if x == nil then return "-" end
  if x == floor(x) and abs(x) < 1e15 then return format("%d", x) end
  return format("%." .. (digits or 2) .. "f", x)
end
_M.num = num

local function range_text(lo, hi)
  if lo == nil then return "-" end
  if lo == hi then return num(lo) end
  return num(lo) .. " to " .. num(hi)
end

-- Rows of cells as aligned text; numbers right-aligned, the first column left.
local function aligned(header, rows, left)
  left = left or { [1] = true }
  local widths = {}
  for i, h in ipairs(header) do widths[i] = #h end
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do if #c > (widths[i] or 0) then widths[i] = #c end end
  end
  local function line(cells)
    local parts = {}
    for i, c in ipairs(cells) do
      local w = widths[i]
      parts[i] = left[i] and (c .. rep(" ", w - #c)) or (rep(" ", w - #c) .. c)
    end
    return "  " .. concat(parts, "  "):gsub("%s+$", "")
  end
  local lines = { line(header) }
  for _, row in ipairs(rows) do lines[#lines + 1] = line(row) end
  return lines
end
_M.aligned = aligned

function _M.code_lines(list, what)
  local rows = {}
  for _, s in ipairs(list) do
    rows[#rows + 1] = { tostring(s.name), thousands(s.leads), pct(s.share), thousands(s.positives), pct(s.precision),
      format("%s-%s", pct(s.precision_low), pct(s.precision_high)), pct(s.recall), num(s.lift) }
  end
  return aligned({ what, "leads", "share", "positives", "precision", "95% interval", "recall", "lift" }, rows)
end

function _M.text(r)
  local out = {}
  local function add(line) out[#out + 1] = line end
  add(format("evaluate: model '%s'%s: %s leads, %s positive (%s)%s", tostring(r.model),
    r.path and (" (" .. r.path .. ")") or "", thousands(r.leads), thousands(r.positives), pct(r.rate),
    r.outcome and (": " .. r.outcome) or ""))
  if r.left_out_text then add("  " .. r.left_out_text) end
  if r.no_created then
    add("  the leads have no creation column (created_at): none was left out for being created later")
  end
  if (r.no_score or 0) > 0 then add(format("  %s leads without a score left out", thousands(r.no_score))) end
  add(format("AUC %s (95%% interval %s to %s, DeLong): %s", num(r.auc, 3), num(r.auc_low, 3), num(r.auc_high, 3),
    r.auc == nil and "-" or r.auc >= 0.8 and "the score ranks converters well"
      or r.auc >= 0.7 and "the score ranks converters fairly well"
      or r.auc >= 0.6 and "the score ranks converters weakly"
      or r.auc > 0.5 and "the score hardly ranks converters above the rest"
      or "the score does not rank converters above the rest"))
  add("")
  add("by score decile (1 = the top scores; equal scores stay in one decile, so sizes vary)")
  local rows = {}
  for _, d in ipairs(r.deciles or {}) do
    rows[#rows + 1] = { tostring(d.decile), range_text(d.lo, d.hi), thousands(d.leads), thousands(d.positives),
      pct(d.rate), num(d.lift), pct(d.cumulative_recall) }
  end
  for _, l in ipairs(aligned({ "decile", "scores", "leads", "positives", "rate", "lift", "cumulative recall" }, rows,
    { [1] = false })) do add(l) end
  if r.statuses and #r.statuses > 0 then
    add("")
    add("by status (precision: the rate among its leads; recall: its share of all positives)")
    for _, l in ipairs(_M.code_lines(r.statuses, "status")) do add(l) end
  end
  if r.grades and #r.grades > 0 then
    add("")
    add("by grade")
    for _, l in ipairs(_M.code_lines(r.grades, "grade")) do add(l) end
  end
  add("")
  add("calibration (score band -> observed rate, 95% Wilson interval)")
  rows = {}
  for _, b in ipairs(r.bands or {}) do
    rows[#rows + 1] = { range_text(b.lo, b.hi), thousands(b.leads), thousands(b.positives), pct(b.rate),
      format("%s-%s", pct(b.rate_low), pct(b.rate_high)) }
  end
  for _, l in ipairs(aligned({ "score", "leads", "positives", "rate", "95% interval" }, rows)) do add(l) end
  if r.rules then
    add("")
    add("rules (share: of these leads; conversion when it fired and when not; lift: when fired / overall;")
    add("       vs not: the ratio of the two rates, 95% interval)")
    rows = {}
    for _, rr in ipairs(r.rules) do
      rows[#rows + 1] = { tostring(rr.id), rr.kind == "disqualifier" and "disq." or num(rr.points),
        thousands(rr.fired), pct(rr.share), pct(rr.rate_fired), pct(rr.rate_not_fired), num(rr.lift),
        rr.ratio_low and format("%s (%s-%s)", rr.ratio and num(rr.ratio) or "inf", num(rr.ratio_low),
          rr.ratio_high and num(rr.ratio_high) or "inf") or "-",
        rr.note or "" }
    end
    for _, l in ipairs(aligned({ "rule", "points", "fired", "share", "conv. fired", "conv. not", "lift",
      "vs not (95%)", "note" }, rows, { [1] = true, [9] = true })) do add(l) end
    if #r.flagged > 0 then
      add("")
      add(format("fire often and predict nothing (%d): %s: they move many leads' scores without telling converters "
        .. "apart; give them fewer points or a sharper condition", #r.flagged, concat(r.flagged, ", ")))
    end
  end
  return concat(out, "\n")
end

Result.__tostring = _M.text

-- The result as plain data for JSON (the keys the command documents).
function _M.to_json(r)
  local json = require("leadq.json")
  local function list(t)
    local out = {}
    for i, v in ipairs(t or {}) do out[i] = v end
    return json.array(out)
  end
  return {
    model = r.model, path = r.path, outcome = r.outcome, left_out = r.left_out_text, as_of = r.as_of,
    leads = r.leads, positives = r.positives, negatives = r.negatives, rate = r.rate,
    auc = r.auc, auc_low = r.auc_low, auc_high = r.auc_high, auc_se = r.auc_se,
    deciles = list(r.deciles), bands = list(r.bands), statuses = list(r.statuses), grades = list(r.grades),
    rules = list(r.rules), flagged = list(r.flagged),
  }
end

return _M
