-- leadq.fit: learn a rule script's points from outcomes.
--
--   local text, report = require("leadq.fit").fit(leads, events, spec)   -- leadq.fit(leads, events, spec)
--
-- spec: the outcome (as leadq.outcome takes it: outcome = "y=yes", or transitions =, reached =,
-- within_days =, as_of =, id =, created =) and these options (unknown keys raise):
--   exclude = { "duration" }   columns to leave out (each must name a column of the leads)
--   interactions = 3           pairs of columns that may add points together (0: none)
--   mql_share = 0.1 | mql_precision = 0.3   how the mql threshold is chosen on the training leads
--   base = "rules/mine.lua"    keep that script's rules and conditions; fit only their points
--   seed = 1, name = "fitted"
--   tuning (defaults as measured best on the bank and Olist files): max_bins = 32 (quantile bins of a
--   number), min_count = 5 and max_values = 250 (a category value's own bin), min_samples = 5 (rows a
--   bin needs to move), l2 = 2, learning_rate = 0.1, max_rounds = 400, patience = 20, pair_bins = 6
-- text: the rule script (`leadq check` accepts it; `leadq score` scores it); report: { leads,
-- positives, rules, thresholds, totals (per labelled row, in row order), rows (their row numbers),
-- labels, as_of, fit (what the C engine says: rounds, losses), points_per_double, inputs (the
-- columns fitted: { table, name } each, event features in a table of their own) }.
--
-- The model: an additive model of binned columns (lua/leadq/core: bins.c, fit.c) fitted by cyclic
-- boosting, written as rules: a rule per run of bins with the same points, points = log-odds scaled
-- so that 10 points double the odds. The script's calibration table turns a total into a
-- probability. Nothing else scores it: the script is the model.
local core = require("leadq.core")
local dsl = require("leadq.dsl")

local type, pairs, ipairs, tostring, tonumber, pcall = type, pairs, ipairs, tostring, tonumber, pcall
local format = string.format
local concat, sort = table.concat, table.sort
local floor, log, exp = math.floor, math.log, math.exp

local _M = { _VERSION = "0.1.0" }

local POINTS_PER_DOUBLE = 10
local SCALE = POINTS_PER_DOUBLE / log(2)         -- points per unit of log-odds
_M.POINTS_PER_DOUBLE = POINTS_PER_DOUBLE
-- Adjacent number bins within this many points of their run's mean are one rule (odds x1.23): on the
-- bank split, 191 rules -> 152 for the same held-out AUC (0.7888 -> 0.7893); at 5, the AUC falls.
local MERGE_POINTS = 3
_M.MIN_POSITIVES = 20

local OUTCOME_KEYS = { outcome = true, transitions = true, reached = true, within_days = true, as_of = true,
  id = true, created = true, stages = true }
local FIT_KEYS = { exclude = true, interactions = true, mql_share = true, mql_precision = true, base = true,
  seed = true, name = true, max_bins = true, min_count = true, max_values = true, max_rounds = true,
  min_samples = true, l2 = true, learning_rate = true, patience = true, pair_bins = true }
_M.FIT_KEYS = FIT_KEYS
_M.OUTCOME_KEYS = OUTCOME_KEYS

local LUA_KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then " ..
    "true until while"):gmatch("%a+") do LUA_KEYWORDS[w] = true end

---------------------------------------------------------------------------------------------------
-- shared with profile: checking the spec, labels, the columns worth binning
---------------------------------------------------------------------------------------------------

local raise = require("leadq.util").raise   -- errors in the caller's terms: no level to pass on

-- Checks spec keys against the allowed sets; returns the outcome part and the rest.
function _M.split_spec(spec, allowed, fname)
  if type(spec) ~= "table" then
    raise(format("%s: expects a spec table { outcome = ... }, got %s", fname, type(spec)))
  end
  local out_spec, rest, names = {}, {}, {}
  for k in pairs(OUTCOME_KEYS) do names[#names + 1] = k end
  for k in pairs(allowed) do names[#names + 1] = k end
  sort(names)
  for k, v in pairs(spec) do
    if OUTCOME_KEYS[k] then out_spec[k] = v
    elseif allowed[k] then rest[k] = v
    else
      raise(format("%s: unknown option '%s'%s", fname, tostring(k), dsl.did_you_mean(tostring(k), names)))
    end
  end
  return out_spec, rest
end

-- The labels of the leads for this outcome; outcome's own errors are raised again in the caller's
-- terms without its position (they name the column or file themselves).
function _M.labels(leads, out_spec)
  local outcome = require("leadq.outcome")
  local ok, labels, info = pcall(outcome.labels, leads, out_spec)
  if not ok then raise((tostring(labels):gsub("^[^\n]-%.lua:%d+: ", ""))) end
  return labels, info
end

-- The leads' id column: spec.id, else id, else lead_id.
function _M.id_column(leads, out_spec)
  if out_spec.id then return out_spec.id end
  if leads:has("id") then return "id" end
  if leads:has("lead_id") then return "lead_id" end
  return nil
end

-- The column an outcome = "y=yes" or "Converted" reads.
function _M.outcome_column(out_spec)
  if type(out_spec.outcome) ~= "string" then return nil end
  return out_spec.outcome:match("^([^=]+)=") or out_spec.outcome
end

local function list_of(v, what, fname)
  if v == nil then return {} end
  if type(v) == "string" then return require("leadq.util").split_list(v) end
  if type(v) ~= "table" then raise(format("%s: %s must be a list of column names, got %s", fname, what, type(v))) end
  return v
end

-- Checks that every excluded name is a column; returns the set.
function _M.excluded(leads, v, fname)
  local set = {}
  local names = leads:names()
  for _, name in ipairs(list_of(v, "exclude", fname)) do
    if not leads:has(name) then
      raise(format("%s: exclude names no column of the leads: '%s'%s", fname, tostring(name),
        dsl.did_you_mean(tostring(name), names)))
    end
    set[name] = true
  end
  return set
end

---------------------------------------------------------------------------------------------------
-- writing Lua
---------------------------------------------------------------------------------------------------

local function num(v)
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  for _, f in ipairs({ "%.6g", "%.10g", "%.15g" }) do
    local s = format(f, v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end
_M.num = num

local function quote(s)
  return (format("%q", s):gsub("\\\n", "\\n"))
end

local function key(name)
  if name:match("^[%a_][%w_]*$") and not LUA_KEYWORDS[name] then return name end
  return "[" .. quote(name) .. "]"
end

local thousands = require("leadq.util").thousands
_M.thousands = thousands

local function pct(x)
  if x >= 0.1 then return format("%.1f%%", x * 100) end
  return format("%.2f%%", x * 100)
end
_M.pct = pct

local function rule_id(name)
  local s = name:gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", ""):upper()
  if s == "" then s = "COLUMN" end
  return s
end

---------------------------------------------------------------------------------------------------
-- conditions and labels for bins
---------------------------------------------------------------------------------------------------

-- A run of value bins first..last of a number column: its test and its words.
local function number_test(info, first, last)
  local bins = info.bins
  local nv = info.missing - 1
  local lo_cut = first > 1 and bins[first].above or nil
  local hi_cut = last < nv and bins[last].upper or nil
  local name = info.name
  if info.integral then
    local lo = lo_cut and floor(lo_cut) + 1 or nil
    local hi = hi_cut and floor(hi_cut) or nil
    if lo and hi then
      if lo == hi then return num(lo), format("%s is %s", name, num(lo)) end
      return format("{ between = { %s, %s } }", num(lo), num(hi)), format("%s %s to %s", name, num(lo), num(hi))
    elseif lo then
      return format("{ at_least = %s }", num(lo)), format("%s %s or more", name, num(lo))
    elseif hi then
      return format("{ at_most = %s }", num(hi)), format("%s %s or less", name, num(hi))
    end
    return '"present"', format("%s given", name)
  end
  if lo_cut and hi_cut then
    return format("{ above = %s, at_most = %s }", num(lo_cut), num(hi_cut)),
      format("%s above %s, up to %s", name, num(lo_cut), num(hi_cut))
  elseif lo_cut then
    return format("{ above = %s }", num(lo_cut)), format("%s above %s", name, num(lo_cut))
  elseif hi_cut then
    return format("{ at_most = %s }", num(hi_cut)), format("%s up to %s", name, num(hi_cut))
  end
  return '"present"', format("%s given", name)
end

local function value_list(values)
  local q = {}
  for i, v in ipairs(values) do q[i] = quote(v) end
  return "{ " .. concat(q, ", ") .. " }"
end

-- The test for a set of bins of one column (1-based bin numbers, sorted): a run of number bins,
-- category values (with or without "other"), a boolean, or missing. nil when it cannot be said.
local function bins_test(info, set)
  local name = info.name
  if #set == 1 and set[1] == info.missing then return '"missing"', name .. " missing" end
  for _, b in ipairs(set) do if b == info.missing then return nil end end
  if info.kind == "number" then
    for i = 2, #set do if set[i] ~= set[i - 1] + 1 then return nil end end
    return number_test(info, set[1], set[#set])
  elseif info.kind == "boolean" then
    if #set ~= 1 then return nil end
    local v = info.bins[set[1]].value
    return tostring(v), format("%s is %s", name, v and "yes" or "no")
  end
  local values, has_other = {}, false
  for _, b in ipairs(set) do
    if b == info.other then has_other = true else values[#values + 1] = info.bins[b].value end
  end
  if not has_other then
    if #values == 1 then return quote(values[1]), format("%s is %s", name, values[1]) end
    return format("{ one_of = %s }", value_list(values)), format("%s is %s", name, concat(values, ", "))
  end
  -- "other": every value not given a bin of its own, except those named in this set
  local inset, others = {}, {}
  for _, v in ipairs(values) do inset[v] = true end
  for b = 1, info.missing - 1 do
    if b ~= info.other and not inset[info.bins[b].value] then others[#others + 1] = info.bins[b].value end
  end
  if #others == 0 then return '"present"', name .. " given" end
  return format("{ not_one_of = %s }", value_list(others)), format("%s is none of %s", name, concat(others, ", "))
end
_M.bins_test = bins_test

---------------------------------------------------------------------------------------------------
-- from shapes to rules
---------------------------------------------------------------------------------------------------

local function round(x)
  return floor(x + 0.5)
end

-- Bins of one column grouped into rules: { bins = { ... }, points = n }, and the points per bin.
local function column_rules(info, shape, leads)
  local nb = info.nbins
  local per_bin = {}
  for b = 1, nb do per_bin[b] = 0 end
  local groups = {}
  if info.kind == "number" then
    -- runs of adjacent value bins whose points stay within MERGE_POINTS of the run's mean
    local nv = info.missing - 1
    local run, wsum, psum = {}, 0, 0
    local function close()
      if #run == 0 then return end
      local p = wsum > 0 and round(psum / wsum) or round(shape[run[1]] * SCALE)
      groups[#groups + 1] = { bins = run, points = p }
      run, wsum, psum = {}, 0, 0
    end
    for b = 1, nv do
      local p = shape[b] * SCALE
      local w = leads[b]
      if #run > 0 and w > 0 and wsum > 0 and math.abs(p - psum / wsum) > MERGE_POINTS then close() end
      run[#run + 1] = b
      if w > 0 then
        wsum = wsum + w
        psum = psum + p * w
      end
    end
    close()
  else
    -- value bins (and other) with the same points share a rule
    local by_points, order = {}, {}
    for b = 1, nb - 1 do
      if leads[b] > 0 or b == info.other then
        local p = round(shape[b] * SCALE)
        if b == info.other then
          groups[#groups + 1] = { bins = { b }, points = p }
        else
          if not by_points[p] then
            by_points[p] = { bins = {}, points = p }
            order[#order + 1] = p
          end
          local g = by_points[p]
          g.bins[#g.bins + 1] = b
        end
      end
    end
    for _, p in ipairs(order) do groups[#groups + 1] = by_points[p] end
  end
  groups[#groups + 1] = { bins = { info.missing }, points = round(shape[info.missing] * SCALE) }
  local out = {}
  for _, g in ipairs(groups) do
    for _, b in ipairs(g.bins) do per_bin[b] = g.points end
    if g.points ~= 0 then out[#out + 1] = g end
  end
  return out, per_bin
end

-- The fine bins of a column that map to each coarse bin of a pair.
local function coarse_sets(coarse, ncoarse)
  local sets = {}
  for c = 1, ncoarse do sets[c] = {} end
  for b, c in ipairs(coarse) do sets[c][#sets[c] + 1] = b end
  return sets
end

---------------------------------------------------------------------------------------------------
-- thresholds and calibration from the training totals
---------------------------------------------------------------------------------------------------

-- The training totals as a histogram: the distinct totals, highest first, with leads and positives
-- at each (totals are whole points: a few hundred values, where a sort of a million would be slow).
local function histogram(totals, y)
  local leads, pos, values = {}, {}, {}
  for i = 1, #totals do
    local t = totals[i]
    local n = leads[t]
    if n == nil then
      values[#values + 1] = t
      leads[t], pos[t] = 1, y[i]
    else
      leads[t], pos[t] = n + 1, pos[t] + y[i]
    end
  end
  sort(values, function(a, b) return a > b end)
  local hist = {}
  for k, t in ipairs(values) do hist[k] = { total = t, leads = leads[t], positives = pos[t] } end
  return hist
end

local function choose_thresholds(hist, n, opts, fname)
  local function at_share(share)            -- the total at which ceil(share * n) leads are at or above
    local want, cum = math.max(1, math.ceil(share * n)), 0
    for _, b in ipairs(hist) do
      cum = cum + b.leads
      if cum >= want then return b.total end
    end
    return hist[#hist].total
  end
  local mql, how
  if opts.mql_precision then
    local p = opts.mql_precision
    local pos, cnt, best_at, best_prec = 0, 0, nil, 0
    for _, b in ipairs(hist) do
      cnt = cnt + b.leads
      pos = pos + b.positives
      local prec = pos / cnt
      if prec > best_prec then best_prec = prec end
      if prec >= p then best_at = b.total end
    end
    if not best_at then
      raise(format("%s: no score reaches a precision of %s on the training leads (the best is %s)", fname, pct(p),
        pct(best_prec)))
    end
    mql = best_at
    how = format("the lowest score at which %s or more of the training leads at or above it converted", pct(p))
  else
    local s = opts.mql_share or 0.1
    mql = at_share(s)
    how = format("about %s of the training leads score at or above it", pct(s))
  end
  local above = 0
  for _, b in ipairs(hist) do if b.total >= mql then above = above + b.leads end end
  local nurture = at_share(math.min(0.9, 3 * above / n))
  if nurture >= mql then nurture = mql - 1 end
  return mql, nurture, how
end

-- Bands of the total (about ten, by quantile) with the rate observed in each, made non-decreasing.
local function calibration(hist, n)
  local froms, cum, k = {}, 0, 1
  for i = #hist, 1, -1 do                   -- lowest total first
    local b = hist[i]
    -- the band starting at quantile k / 10 starts at this total when it holds that position
    while k <= 10 and floor((k - 1) * n / 10) + 1 <= cum + b.leads do
      if #froms == 0 or b.total > froms[#froms] then froms[#froms + 1] = b.total end
      k = k + 1
    end
    cum = cum + b.leads
  end
  local bands = {}
  for j = 1, #froms do bands[j] = { from = froms[j], leads = 0, positives = 0 } end
  local j = 1
  for i = #hist, 1, -1 do
    local b = hist[i]
    while j < #froms and froms[j + 1] <= b.total do j = j + 1 end
    bands[j].leads = bands[j].leads + b.leads
    bands[j].positives = bands[j].positives + b.positives
  end
  -- pool adjacent bands whose rate falls (pool adjacent violators), keeping the first band's from
  local blocks = {}
  for _, b in ipairs(bands) do
    blocks[#blocks + 1] = { from = b.from, leads = b.leads, positives = b.positives }
    while #blocks > 1 do
      local last, prev = blocks[#blocks], blocks[#blocks - 1]
      if (prev.positives + 1) / (prev.leads + 2) <= (last.positives + 1) / (last.leads + 2) then break end
      prev.leads = prev.leads + last.leads
      prev.positives = prev.positives + last.positives
      blocks[#blocks] = nil
    end
  end
  for _, b in ipairs(blocks) do b.probability = (b.positives + 1) / (b.leads + 2) end
  return blocks
end

---------------------------------------------------------------------------------------------------
-- event features the script declares for itself
---------------------------------------------------------------------------------------------------

local function event_features(events)
  local types = {}
  local seen = {}
  local col = events:column("type")
  for i = 1, #events do
    local t = col[i]
    if t ~= nil and not seen[t] then
      seen[t] = true
      types[#types + 1] = t
    end
  end
  sort(types)
  local specs, lines, order = {}, {}, {}
  for _, t in ipairs(types) do
    local w = t:gsub("[^%w_]+", "_"):lower()
    local list = {
      { w .. "_30d", { count = t, within_days = 30 }, format("feature { count = %s, within_days = 30 }", quote(t)) },
      { w .. "_90d", { count = t, within_days = 90 }, format("feature { count = %s, within_days = 90 }", quote(t)) },
      { "days_since_" .. w, { days_since_last = t }, format("feature { days_since_last = %s }", quote(t)) },
    }
    for _, f in ipairs(list) do
      if not specs[f[1]] then
        specs[f[1]] = f[2]
        lines[f[1]] = f[3]
        order[#order + 1] = f[1]
      end
    end
  end
  return specs, lines, order
end

local function latest_event(events)
  local at = events:column("at")
  local latest
  for i = 1, #events do
    local t = at[i]
    if t and (latest == nil or t > latest) then latest = t end
  end
  return latest
end

---------------------------------------------------------------------------------------------------
-- --base: a script's own rules, their points fitted
---------------------------------------------------------------------------------------------------

-- One 0/1 column per rule of the base script (1 where the rule fires), as a leadq table.
local function base_indicators(base_path, leads, events, as_of, fname)
  local model = require("leadq.model")
  local m, problems = model.load(base_path)
  if not m then raise(format("%s: the base script has problems:\n%s", fname, concat(problems, "\n"))) end
  local fp = io.open(base_path, "rb")
  local text = fp:read("*a")
  fp:close()
  local spec = m.spec
  local columns = {}
  local rows = #leads
  local values = {}
  for k, r in ipairs(spec.rules) do
    -- the rule alone, one point, no cap: its total is 1 where it fires
    local single = {}
    for key2, v in pairs(spec) do single[key2] = v end
    single.rules = { {} }
    for key2, v in pairs(r) do single.rules[1][key2] = v end
    single.rules[1].points = 1
    single.groups = { { name = r.group, label = r.group } }
    single.group_index = { [r.group] = 1 }
    single.disqualifiers = {}
    single.grades = {}
    local one = model.new(single)
    local res, err = one:score(leads, events, { as_of = as_of })
    if not res then raise(format("%s: scoring base rule '%s': %s", fname, r.id, tostring(err))) end
    local totals = res:column("total")
    local col = {}
    for i = 1, rows do col[i] = (totals[i] or 0) > 0 end
    columns[k] = r.id
    values[k] = col
  end
  local records = {}
  for i = 1, rows do
    local rec = {}
    for k = 1, #columns do rec["r" .. k] = values[k][i] end
    records[i] = rec
  end
  local schema = {}
  for k = 1, #columns do schema["r" .. k] = "boolean" end
  local tbl = core.table(records, schema)
  return tbl, spec, text
end

-- The base script's text with each rule's points replaced (the first `points = n` from its line).
local function rewrite_points(text, spec, points)
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  if lines[#lines] == "" then lines[#lines] = nil end
  for k, r in ipairs(spec.rules) do
    for ln = r.line, #lines do
      local before, after = lines[ln]:match("^(.-points%s*=%s*)%-?[%d%.]+(.*)$")
      if before then
        lines[ln] = before .. format("%d", points[k]) .. after
        break
      end
    end
  end
  return concat(lines, "\n") .. "\n"
end

---------------------------------------------------------------------------------------------------
-- fit
---------------------------------------------------------------------------------------------------

function _M.fit(leads, events, spec)
  local fname = "fit"
  if not core.is_table(leads) then
    raise(format("fit: expects a leadq table of leads (leadq.read_csv), got %s", type(leads)))
  end
  if events ~= nil and not core.is_table(events) then
    raise(format("fit: events must be a leadq table (leadq.read_events), got %s", type(events)))
  end
  local out_spec, opts = _M.split_spec(spec, FIT_KEYS, fname)
  if opts.mql_share ~= nil and opts.mql_precision ~= nil then
    raise("fit: give mql_share or mql_precision, not both")
  end
  for _, k in ipairs({ "mql_share", "mql_precision" }) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or not (v > 0 and v < 1)) then
      raise(format("fit: %s must be a number between 0 and 1, got %s", k, tostring(v)))
    end
  end
  local interactions = opts.interactions or 3
  if type(interactions) ~= "number" or interactions < 0 or interactions ~= floor(interactions) then
    raise(format("fit: interactions must be a whole number of 0 or more, got %s", tostring(interactions)))
  end
  local exclude = _M.excluded(leads, opts.exclude, fname)
  local labels, info = _M.labels(leads, out_spec)
  if info.positives < _M.MIN_POSITIVES or info.negatives < _M.MIN_POSITIVES then
    raise(format("fit: %s: %d positive and %d negative leads: fit needs at least %d of each", info.description,
      info.positives, info.negatives, _M.MIN_POSITIVES))
  end
  local name = opts.name or "fitted"
  local as_of = info.as_of
  if type(out_spec.as_of) == "string" or type(out_spec.as_of) == "number" then
    as_of = as_of or (type(out_spec.as_of) == "number" and out_spec.as_of or core.parse_time(out_spec.as_of))
  end

  -- the columns: the leads' (not the id, the outcome, excluded ones, text, tags or times) and, with
  -- events, one count per event type in 30 and 90 days and the days since the last one
  local id = _M.id_column(leads, out_spec)
  local outcome_col = _M.outcome_column(out_spec)
  local cols, groups_of, left_out = {}, {}, {}
  local feature_lines, feature_order, ftbl
  local base_spec, base_text
  if events ~= nil and as_of == nil then as_of = latest_event(events) end
  if opts.base then
    local tbl
    tbl, base_spec, base_text = base_indicators(opts.base, leads, events, as_of, fname)
    for k = 1, #base_spec.rules do
      cols[#cols + 1] = { tbl, "r" .. k }
      groups_of[#cols] = base_spec.rules[k].group
    end
  else
    for _, c in ipairs(leads:schema()) do
      local n = c.name
      if n == id or n == outcome_col then -- luacheck: ignore 542
      elseif exclude[n] then left_out[#left_out + 1] = n .. " (excluded)"
      elseif c.type == "text" or c.type == "tags" then left_out[#left_out + 1] = n .. " (" .. c.type .. ")"
      elseif c.type == "time" then left_out[#left_out + 1] = n .. " (a date: its meaning moves with time)"
      else
        cols[#cols + 1] = { leads, n }
        groups_of[#cols] = "fit"
      end
    end
    if events ~= nil then
      local fspecs
      fspecs, feature_lines, feature_order = event_features(events)
      if #feature_order > 0 then
        local fs = require("leadq.features").new(fspecs)
        local err
        ftbl, err = fs:compute(leads, events, { as_of = as_of, id = id })
        if not ftbl then raise(format("fit: events: %s", tostring(err))) end
        for _, f in ipairs(feature_order) do
          cols[#cols + 1] = { ftbl, f }
          groups_of[#cols] = "engagement"
        end
      end
    end
  end
  if #cols == 0 then raise("fit: no column left to fit (every column is the id, the outcome, excluded or text)") end

  local bins, infos = core.bin_columns(cols, { max_bins = opts.max_bins or 32, min_count = opts.min_count or 5,
    max_values = opts.max_values or 250 })
  local counts = bins:counts(labels)
  local result, ferr = bins:fit(labels, { interactions = opts.base and 0 or interactions, seed = opts.seed or 1,
    max_rounds = opts.max_rounds, min_samples = opts.min_samples or 5, l2 = opts.l2, learning_rate = opts.learning_rate,
    patience = opts.patience, pair_bins = opts.pair_bins })
  if not result then raise("fit: " .. tostring(ferr)) end

  -- the labelled rows, in order, and their outcomes
  local rows, y = {}, {}
  for i = 1, #labels do
    local b = labels:byte(i)
    if b <= 1 then
      rows[#rows + 1] = i
      y[#y + 1] = b
    end
  end
  local n, npos = #rows, info.positives
  local base_rate = npos / n

  local rules_text, points, pair_points = {}, {}, {}
  local nrules = 0
  local function comment(leads_n, pos_n)
    local rate = leads_n > 0 and pos_n / leads_n or 0
    return format("%s leads (%s) in training, %s converted (lift %.2f)", thousands(leads_n), pct(leads_n / n),
      pct(rate), base_rate > 0 and rate / base_rate or 0)
  end
  local used_ids = {}
  local function unique_id(s)
    local idn, k = s, 2
    while used_ids[idn] do
      idn = s .. "_" .. k
      k = k + 1
    end
    used_ids[idn] = true
    return idn
  end

  if base_spec then
    local fitted = {}
    for k = 1, #cols do
      local shape = result.shapes[k]
      local p = round((shape[2] - shape[1]) * SCALE)    -- bin 2: fired (true), bin 1: not
      fitted[k] = p
      local per_bin = { 0, p, 0 }
      points[k] = per_bin
      nrules = nrules + 1
    end
    base_text = rewrite_points(base_text, base_spec, fitted)
  else
    for j = 1, #cols do
      local info_j = infos[j]
      local groups, per_bin = column_rules(info_j, result.shapes[j], counts[j].leads)
      points[j] = per_bin
      local k = 0
      for _, g in ipairs(groups) do
        local test, words = bins_test(info_j, g.bins)
        if test then
          k = k + 1
          local ln, pn = 0, 0
          for _, b in ipairs(g.bins) do
            ln = ln + counts[j].leads[b]
            pn = pn + counts[j].positives[b]
          end
          local suffix = g.bins[1] == info_j.missing and "MISSING" or tostring(k)
          rules_text[#rules_text + 1] = format(
            "    -- %s\n    rule %s {\n      label = %s, group = %q, points = %d,\n      when = { %s = %s },\n    },",
            comment(ln, pn), quote(unique_id(rule_id(info_j.name) .. "_" .. suffix)), quote(words), groups_of[j],
            g.points, key(info_j.name), test)
          nrules = nrules + 1
        else
          for _, b in ipairs(g.bins) do per_bin[b] = 0 end
        end
      end
    end
    -- pairs: a rule per cell whose points are not 0
    for _, p in ipairs(result.pairs) do
      local ia, ib = infos[p.a], infos[p.b]
      local sa, sb = coarse_sets(p.coarse_a, p.na), coarse_sets(p.coarse_b, p.nb)
      local cell_leads, cell_pos = bins:pair_counts(p, labels)
      local cells = {}
      local group = (groups_of[p.a] == "fit" and groups_of[p.b] == "fit") and "fit" or "engagement"
      local k = 0
      for a = 1, p.na do
        for b = 1, p.nb do
          local c = (a - 1) * p.nb + b
          local pts = round(p.score[c] * SCALE)
          local ta, wa = bins_test(ia, sa[a])
          local tb, wb = bins_test(ib, sb[b])
          if pts ~= 0 and ta and tb and cell_leads[c] > 0 then
            k = k + 1
            rules_text[#rules_text + 1] = format(
              "    -- %s\n    rule %s {\n      label = %s, group = %q, points = %d,\n" ..
              "      when = { %s = %s, %s = %s },\n    },",
              comment(cell_leads[c], cell_pos[c]),
              quote(unique_id(rule_id(ia.name) .. "_X_" .. rule_id(ib.name) .. "_" .. k)),
              quote(wa .. " and " .. wb), group, pts, key(ia.name), ta, key(ib.name), tb)
            nrules = nrules + 1
            cells[c] = pts
          else
            cells[c] = 0
          end
        end
      end
      pair_points[#pair_points + 1] = { a = p.a, b = p.b, na = p.na, nb = p.nb, coarse_a = p.coarse_a,
        coarse_b = p.coarse_b, points = cells }
    end
  end

  local totals
  if base_spec then
    -- the base script's own totals (its groups' caps and floors apply): score the rewritten script
    local bspec, problems = dsl.load_string(base_text, opts.base, { dir = opts.base:match("^(.*/)[^/]*$") or "" })
    if not bspec then raise(format("%s: %s", fname, concat(problems, "\n"))) end
    local res, err = require("leadq.model").new(bspec):score(leads, events, { as_of = as_of })
    if not res then raise(format("%s: scoring the base script: %s", fname, tostring(err))) end
    local all = res:column("total")
    totals = {}
    for k, row in ipairs(rows) do totals[k] = all[row] end
  else
    totals = bins:totals(points, pair_points, labels)
  end
  local hist = histogram(totals, y)
  local mql, nurture, how = choose_thresholds(hist, n, opts, fname)
  local bands = calibration(hist, n)
  local mql_leads, mql_pos = 0, 0
  for _, b in ipairs(hist) do
    if b.total >= mql then
      mql_leads = mql_leads + b.leads
      mql_pos = mql_pos + b.positives
    end
  end
  bins:close()

  local cal = {}
  for _, b in ipairs(bands) do
    cal[#cal + 1] = format("    { from = %s, probability = %.4f },   -- %s leads, %s converted", num(b.from),
      b.probability, thousands(b.leads), thousands(b.positives))
  end
  local thresholds_text = format("  -- mql at %d points: %s.\n  -- In training %s of leads are mql and %s of " ..
    "those converted.\n  thresholds = { mql = %d, nurture = %d, otherwise = \"cold\" },", mql, how, pct(mql_leads / n),
    pct(mql_leads > 0 and mql_pos / mql_leads or 0), mql, nurture)
  local calibration_text =
    "  -- A total's probability of converting: the rate observed on the training leads in its\n" ..
    "  -- band (the last band whose `from` it reaches), smoothed and never falling as the total rises.\n" ..
    "  calibration = {\n" .. concat(cal, "\n") .. "\n  },"

  local text
  if base_spec then
    -- the base script with fitted points, its mql and nurture thresholds moved as chosen, and a
    -- calibration table (unless it has one) before the model's closing brace
    text = base_text
    local has = {}
    for _, t in ipairs(base_spec.thresholds) do has[t.status] = true end
    local lines = {}
    for l in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    for i, l in ipairs(lines) do
      if l:find("thresholds%s*=%s*{") then
        if has.mql then l = l:gsub("(mql%s*=%s*)%-?[%d%.]+", "%1" .. format("%d", mql)) end
        if has.nurture then l = l:gsub("(nurture%s*=%s*)%-?[%d%.]+", "%1" .. format("%d", nurture)) end
        lines[i] = l
      end
    end
    text = concat(lines, "\n") .. "\n"
    if not base_spec.calibration then
      local head, tail = text:match("^(.*)(}[%s]*)$")
      if head then text = head .. "\n" .. calibration_text .. "\n" .. tail end
    end
  else
    local header = {
      format("-- %s.lua: written by `leadq fit`: an additive model of the leads' columns, as rules.", name),
      format("-- Outcome: %s; %s leads in training, %s converted (%s).", info.description, thousands(n),
        thousands(npos), pct(base_rate)),
      format("-- Points: %d points = odds x2 (each point multiplies the odds of converting by %.3f); 0 is",
        POINTS_PER_DOUBLE, exp(1 / SCALE)),
      "-- the average lead. A rule's comment gives its support and observed rate in training.",
      format("-- Fitted by cyclic boosting over %d binned column%s and %d pair%s of columns (%d round%s, chosen",
        #cols, #cols == 1 and "" or "s", #result.pairs, #result.pairs == 1 and "" or "s", result.best_round,
        result.best_round == 1 and "" or "s"),
      format("-- on a validation split drawn with seed %d: log loss %.4f there). Edit freely, then run", opts.seed or 1,
        result.validation_loss),
      "-- `leadq check` on this file.",
    }
    if #left_out > 0 then header[#header + 1] = "-- Left out: " .. concat(left_out, ", ") .. "." end
    if ftbl then
      local day = require("leadq").format_time(as_of):sub(1, 10)
      header[#header + 1] = format("-- Event features as of %s: score with --as-of %s to get the training totals.", day,
        day)
    end
    local parts = { concat(header, "\n"), "", format("return model %s {", quote(name)),
      format("  description = %s,", quote("Fitted to " .. info.description)),
      "",
      "  groups = {",
      "    fit        = { label = \"Profile\" },",
      "    engagement = { label = \"Engagement\" },",
      "  },",
      "",
      "  rules = {",
      concat(rules_text, "\n"),
      "  },",
      "",
      thresholds_text,
      "",
      calibration_text,
    }
    if ftbl then
      local fl = {}
      for _, f in ipairs(feature_order) do fl[#fl + 1] = format("    %s = %s,", key(f), feature_lines[f]) end
      parts[#parts + 1] = ""
      parts[#parts + 1] = "  features = {"
      parts[#parts + 1] = concat(fl, "\n")
      parts[#parts + 1] = "  },"
    end
    parts[#parts + 1] = "}"
    text = concat(parts, "\n") .. "\n"
  end
  local report = {
    leads = n, positives = npos, rules = nrules, totals = totals, rows = rows, labels = labels, as_of = as_of,
    thresholds = { mql = mql, nurture = nurture }, calibration = bands, fit = result,
    points_per_double = POINTS_PER_DOUBLE, description = info.description, columns = #cols,
    mql_leads = mql_leads, mql_positives = mql_pos, inputs = cols,
  }
  return text, report
end

return _M
