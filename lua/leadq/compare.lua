-- leadq.compare: the preview before publishing a rule change. Scores the leads with the old and the
-- new rules (the same pass as `score`), and tells how the statuses move; with an outcome, how well
-- each version ranks and qualifies the leads that converted.
--
--   local c = leadq.compare(old, new, leads [, events] [, spec])
--   print(c)         -- readable text; c.matrix[old_status][new_status], c.changed, c.changes, c.old, c.new
--
-- old, new: models, runs of models or rule script paths. spec: optionally an outcome (as
-- leadq.outcome: outcome = | transitions =, reached =, within_days =), as_of = (the scoring date:
-- leads created after it are left out when the leads have a creation column), id =, created =, and
-- threads =, model = (in runs: the model to compare, default the first), show = (changes listed,
-- default 20).
--
-- The result: leads (compared), statuses (every status, best first), matrix, changed (leads whose status
-- changes), up and down (leads moved to a better or worse status), changes (the first `show`: id,
-- old, new, old_total, new_total), and with an outcome: outcome (its description), old.evaluation and
-- new.evaluation (as leadq.evaluate gives: auc, auc_low, auc_high, statuses with precision and recall).
local core = require("leadq.core")
local outcome = require("leadq.outcome")
local evaluate = require("leadq.evaluate")

local type, pairs, ipairs, tostring, pcall, setmetatable = type, pairs, ipairs, tostring, pcall, setmetatable
local format = string.format
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local KEYS = { outcome = true, transitions = true, reached = true, within_days = true, as_of = true, id = true,
               created = true, stages = true, threads = true, model = true, show = true }
local KEY_LIST = {}
for k in pairs(KEYS) do KEY_LIST[#KEY_LIST + 1] = k end
table.sort(KEY_LIST)

local DEFAULT_SHOW = 20

local Result = {}
Result.__index = Result
_M.Result = Result

local raise = require("leadq.util").raise   -- errors in the caller's terms

local function load(m, which)
  if type(m) == "string" then
    local loaded, err = require("leadq").load_model(m)
    if not loaded then raise(format("compare: the %s rules: %s", which, err)) end
    return loaded
  end
  if not evaluate.is_model(m) then
    raise(format("compare: the %s rules must be a model, a run or a rule script path, got %s", which, type(m)))
  end
  return m
end

-- Rows in scope: not created after as_of (when there is a creation column): a string of 0/1 bytes.
local function in_scope(leads, spec, n)
  if spec.as_of == nil then return nil end
  local as_of = outcome.parse_as_of(spec.as_of)
  local name = spec.created or (leads:has("created_at") and "created_at") or nil
  if name == nil or not leads:has(name) then return nil end
  local created = leads:column(name)
  local keep, out = {}, 0
  for i = 1, n do
    local c = created[i]
    if type(c) == "number" and c > as_of then keep[i] = "\0"; out = out + 1 else keep[i] = "\1" end
  end
  return concat(keep), out
end

-- The statuses some lead has, in the model's order, then any others by name.
local function in_order(order, seen)
  local out, listed = {}, {}
  for _, st in ipairs(order) do
    if seen[st] then out[#out + 1] = st; listed[st] = true end
  end
  local rest = {}
  for st in pairs(seen) do if not listed[st] then rest[#rest + 1] = st end end
  sort(rest)
  for _, st in ipairs(rest) do out[#out + 1] = st end
  return out
end

function _M.compare(old, new, leads, events, spec)
  old, new = load(old, "old"), load(new, "new")
  if not core.is_table(leads) then
    raise("compare: expects a leadq table of leads (leadq.read_csv), got " .. type(leads))
  end
  if spec == nil and type(events) == "table" and not core.is_table(events) then events, spec = nil, events end
  if events ~= nil and not core.is_table(events) then
    raise("compare: events must be a leadq table (leadq.read_events), got " .. type(events))
  end
  spec = spec or {}
  if type(spec) ~= "table" then raise("compare: the spec must be a table, got " .. type(spec)) end
  for k in pairs(spec) do
    if not KEYS[k] then
      raise(format("compare: unknown option '%s'%s", tostring(k),
        require("leadq.dsl").did_you_mean(tostring(k), KEY_LIST)))
    end
  end
  local show = spec.show or DEFAULT_SHOW
  local n = #leads
  local out_spec = { as_of = spec.as_of, id = spec.id, created = spec.created, stages = spec.stages,
    outcome = spec.outcome, transitions = spec.transitions, reached = spec.reached, within_days = spec.within_days }
  local labels, info
  if outcome.given(out_spec) then
    local ok, l, i = pcall(outcome.labels, leads, out_spec)
    if not ok then raise("compare: " .. evaluate.bare(l)) end
    labels, info = l, i
  end
  local scope, left_out = in_scope(leads, out_spec, n)
  local sides = {}
  for which, m in pairs({ old = old, new = new }) do
    local picked, prefix = evaluate.pick(m, spec.model, "compare")
    local results = evaluate.score(m, leads, events, spec.as_of, spec.threads, picked, "compare")
    local side = { model = picked.name, path = picked:info().path, prefix = prefix, results = results,
                   order = evaluate.status_order(picked:info()) }
    if labels then
      local ok, r = pcall(evaluate.compute, results, prefix, labels, picked, nil, {})
      if not ok then raise("compare: " .. evaluate.bare(r)) end
      side.evaluation = r
    end
    sides[which] = side
  end
  -- the status matrix, in Lua over the two status columns
  local os_, ns = sides.old.results:column(sides.old.prefix .. "status"),
    sides.new.results:column(sides.new.prefix .. "status")
  local ot, nt = sides.old.results:column(sides.old.prefix .. "total"),
    sides.new.results:column(sides.new.prefix .. "total")
  local ids = leads:has(spec.id or "id") and leads:column(spec.id or "id") or nil
  local statuses, seen = {}, {}
  for _, list in ipairs({ sides.new.order, sides.old.order }) do
    for _, s in ipairs(list) do
      if not seen[s] then seen[s] = true; statuses[#statuses + 1] = s end
    end
  end
  -- better or worse: a status's place within its own model's order (0 best, 1 the last threshold's
  -- fallback, disqualified past them all), so two models with other statuses (hot/warm/cold against
  -- mql/nurture/cold) still compare by rank
  local function places(order)
    local place, levels = {}, {}
    for _, st in ipairs(order) do if st ~= "disqualified" then levels[#levels + 1] = st end end
    for i, st in ipairs(levels) do place[st] = #levels > 1 and (i - 1) / (#levels - 1) or 0 end
    place.disqualified = 2
    return place
  end
  local old_place, new_place = places(sides.old.order), places(sides.new.order)
  local matrix, changes, changed, up, down, count = {}, {}, 0, 0, 0, 0
  local old_seen, new_seen = {}, {}
  for i = 1, n do
    if scope == nil or scope:byte(i) == 1 then
      local a, b = os_[i] or "(none)", ns[i] or "(none)"
      if not seen[a] then seen[a] = true; statuses[#statuses + 1] = a end
      if not seen[b] then seen[b] = true; statuses[#statuses + 1] = b end
      old_seen[a], new_seen[b] = true, true
      local row = matrix[a]
      if not row then row = {}; matrix[a] = row end
      row[b] = (row[b] or 0) + 1
      count = count + 1
      if a ~= b then
        changed = changed + 1
        local pa, pb = old_place[a] or 3, new_place[b] or 3
        if pb < pa then up = up + 1 elseif pb > pa then down = down + 1 end
        if #changes < show then
          changes[#changes + 1] = { id = ids and ids[i] or i, old = a, new = b, old_total = ot[i], new_total = nt[i] }
        end
      end
    end
  end
  sides.old.results:close()
  sides.new.results:close()
  sides.old.results, sides.new.results = nil, nil
  return setmetatable({
    old = sides.old, new = sides.new, leads = count, left_out = left_out or 0, statuses = statuses,
    matrix = matrix, changed = changed, up = up, down = down, changes = changes, show = show,
    old_statuses = in_order(sides.old.order, old_seen), new_statuses = in_order(sides.new.order, new_seen),
    outcome = info and info.description or nil, outcome_info = info, as_of = spec.as_of, by_row = ids == nil,
  }, Result)
end

---------------------------------------------------------------------------------------------------
-- text

local thousands, pct, num, aligned = evaluate.thousands, evaluate.pct, evaluate.num, evaluate.aligned

local function name_of(side)
  return format("'%s'%s", tostring(side.model), side.path and (" (" .. side.path .. ")") or "")
end

function _M.text(c)
  local out = {}
  local function add(line) out[#out + 1] = line end
  add(format("compare: old %s -> new %s on %s leads", name_of(c.old), name_of(c.new), thousands(c.leads)))
  if c.left_out > 0 then
    add(format("  %s leads created after %s left out", thousands(c.left_out), outcome.date_text(
      outcome.parse_as_of(c.as_of))))
  end
  local level = c.changed - c.up - c.down   -- between models with other status names: same rank
  add(format("  %s leads (%s) change status: %s to a better one, %s to a worse one%s", thousands(c.changed),
    pct(c.leads > 0 and c.changed / c.leads or 0), thousands(c.up), thousands(c.down),
    level > 0 and format(", %s to one of the same rank in the new model's order", thousands(level)) or ""))
  add("")
  add("status matrix (rows: old status, columns: new status)")
  local header = { "old \\ new" }
  for _, st in ipairs(c.new_statuses) do header[#header + 1] = st end
  header[#header + 1] = "total"
  local rows, col_totals = {}, {}
  for _, a in ipairs(c.old_statuses) do
    local row, total = { a }, 0
    for j, b in ipairs(c.new_statuses) do
      local v = c.matrix[a] and c.matrix[a][b] or 0
      row[#row + 1] = thousands(v)
      total = total + v
      col_totals[j] = (col_totals[j] or 0) + v
    end
    row[#row + 1] = thousands(total)
    rows[#rows + 1] = row
  end
  local last = { "total" }
  for j = 1, #c.new_statuses do last[#last + 1] = thousands(col_totals[j] or 0) end
  last[#last + 1] = thousands(c.leads)
  rows[#rows + 1] = last
  for _, l in ipairs(aligned(header, rows)) do add(l) end
  if #c.changes > 0 then
    add("")
    add(format("leads that change status (%s of %s)", thousands(#c.changes), thousands(c.changed)))
    rows = {}
    for _, ch in ipairs(c.changes) do
      rows[#rows + 1] = { tostring(ch.id), ch.old, ch.new, num(ch.old_total), num(ch.new_total) }
    end
    for _, l in ipairs(aligned({ c.by_row and "row" or "id", "old", "new", "old total", "new total" }, rows,
      { true, true, true })) do add(l) end
  end
  local eo, en = c.old.evaluation, c.new.evaluation
  if eo and en then
    add("")
    add(format("against the outcome: %s (%s leads, %s positive)", tostring(c.outcome), thousands(eo.leads),
      thousands(eo.positives)))
    if c.outcome_info and outcome.left_out_text(c.outcome_info) then
      add("  " .. outcome.left_out_text(c.outcome_info))
    end
    rows = { { "AUC", format("%s (%s-%s)", num(eo.auc, 3), num(eo.auc_low, 3), num(eo.auc_high, 3)),
      format("%s (%s-%s)", num(en.auc, 3), num(en.auc_low, 3), num(en.auc_high, 3)) } }
    local by_old, by_new = {}, {}
    for _, s in ipairs(eo.statuses or {}) do by_old[s.name] = s end
    for _, s in ipairs(en.statuses or {}) do by_new[s.name] = s end
    local function cell(s)
      if not s then return "-" end
      return format("%s leads, precision %s, recall %s", thousands(s.leads), pct(s.precision), pct(s.recall))
    end
    for _, s in ipairs(c.statuses) do
      if by_old[s] or by_new[s] then rows[#rows + 1] = { s, cell(by_old[s]), cell(by_new[s]) } end
    end
    for _, l in ipairs(aligned({ "", "old", "new" }, rows, { true, true, true })) do add(l) end
  end
  return concat(out, "\n")
end

Result.__tostring = _M.text

function _M.to_json(c)
  local json = require("leadq.json")
  local function strip(side)
    local e = side.evaluation
    return { model = side.model, path = side.path, auc = e and e.auc, auc_low = e and e.auc_low,
             auc_high = e and e.auc_high, statuses = e and json.array(e.statuses or {}) or nil }
  end
  return { old = strip(c.old), new = strip(c.new), leads = c.leads, left_out = c.left_out,
           statuses = json.array(c.statuses), matrix = c.matrix, changed = c.changed, up = c.up, down = c.down,
           changes = json.array(c.changes), outcome = c.outcome }
end

return _M
