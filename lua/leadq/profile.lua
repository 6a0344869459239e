-- leadq.profile: which columns tell whether a lead converts, and how.
--
--   local report = require("leadq.profile").profile(leads, spec)      -- leadq.profile(leads, spec)
--   local text = require("leadq.profile").format(report, "table" | "csv" | "json")
--
-- spec: the outcome (as leadq.outcome takes it: outcome = "y=yes", or transitions =, reached =, ...)
-- and: exclude = { "col", ... }, max_bins = 10 (quantile bins of numbers and times), min_count = 30
-- (rows a category value needs for a line of its own; the rest are "other"). Unknown keys raise.
-- report: { description, leads, positives, rate, measure = "information value", skipped = { ... },
--   columns = { { name, type, iv, bins = { { label, leads, positives, rate, lift, low, high, missing,
--   other }, ... } }, ... } } with columns ranked by information value, highest first.
-- Binning and counting are done in C (csrc/bins.c) in one pass per column; missing values are always
-- a line of their own. The interval is Wilson's 95% interval of the rate.
local core = require("leadq.core")
local fit = require("leadq.fit")

local type, ipairs, tostring = type, ipairs, tostring
local format = string.format
local concat, sort = table.concat, table.sort
local floor, log, sqrt = math.floor, math.log, math.sqrt

local _M = { _VERSION = "0.1.0" }

local PROFILE_KEYS = { exclude = true, max_bins = true, min_count = true }

local Z = 1.959963984540054          -- the normal quantile of 97.5%

-- Wilson's score interval for k of n.
local function wilson(k, n)
  if n == 0 then return 0, 1 end
  local p = k / n
  local z2 = Z * Z
  local centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  local half = Z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
  local lo, hi = centre - half, centre + half
  if lo < 0 then lo = 0 end
  if hi > 1 then hi = 1 end
  return lo, hi
end
_M.wilson = wilson

local function day(t)
  return require("leadq").format_time(t):sub(1, 10)
end

-- The words for one bin of a column: "27 to 29", "up to 26", "management", "(missing)".
local function bin_label(info, b)
  local bin = info.bins[b]
  if bin.missing then return "(missing)" end
  if bin.other then return "(other values)" end
  if info.kind == "boolean" then return bin.value and "yes" or "no" end
  if info.kind == "category" then return bin.value end
  local show = info.type == "time" and day or fit.num
  if bin.lo ~= nil and bin.lo == bin.hi then return show(bin.lo) end     -- one value seen
  if info.type ~= "time" and info.integral then
    local lo = bin.above and floor(bin.above) + 1 or nil
    local hi = bin.upper and floor(bin.upper) or nil
    if lo and hi then return lo == hi and show(lo) or (show(lo) .. " to " .. show(hi)) end
    if lo then return show(lo) .. " or more" end
    if hi then return "up to " .. show(hi) end
    return "any"
  end
  if bin.above and bin.upper then return "above " .. show(bin.above) .. ", up to " .. show(bin.upper) end
  if bin.above then return "above " .. show(bin.above) end
  if bin.upper then return "up to " .. show(bin.upper) end
  return "any"
end

function _M.profile(leads, spec)
  if not core.is_table(leads) then
    error(format("profile: expects a leadq table of leads (leadq.read_csv), got %s", type(leads)), 2)
  end
  local out_spec, opts = fit.split_spec(spec, PROFILE_KEYS, "profile")
  local exclude = fit.excluded(leads, opts.exclude, "profile")
  local labels, info = fit.labels(leads, out_spec)
  local id = fit.id_column(leads, out_spec)
  local outcome_col = fit.outcome_column(out_spec)
  local cols, skipped = {}, {}
  for _, c in ipairs(leads:schema()) do
    local n = c.name
    if n == id or n == outcome_col then -- luacheck: ignore 542
    elseif exclude[n] then skipped[#skipped + 1] = n .. " (excluded)"
    elseif c.type == "text" or c.type == "tags" then skipped[#skipped + 1] = n .. " (" .. c.type .. ")"
    else cols[#cols + 1] = { leads, n } end
  end
  local report = { description = info.description, leads = info.leads, positives = info.positives,
    rate = info.positives / info.leads, measure = "information value", columns = {}, skipped = skipped }
  if #cols == 0 then return report end
  local bins, infos = core.bin_columns(cols, { max_bins = opts.max_bins or 10, min_count = opts.min_count or 30,
    max_values = 40 })
  local counts = bins:counts(labels)
  bins:close()
  local P, N = info.positives, info.leads - info.positives
  for j, ci in ipairs(infos) do
    local col = { name = ci.name, type = ci.type, bins = {}, iv = 0 }
    for b = 1, ci.nbins do
      local n, k = counts[j].leads[b], counts[j].positives[b]
      if n > 0 then
        local rate = k / n
        local lo, hi = wilson(k, n)
        col.bins[#col.bins + 1] = { label = bin_label(ci, b), leads = n, positives = k, rate = rate,
          lift = rate / report.rate, low = lo, high = hi, missing = b == ci.missing or nil,
          other = ci.bins[b].other or nil }
        -- information value, with half a lead where a side is empty
        local pp, pn = (k + 0.5) / (P + 0.5), (n - k + 0.5) / (N + 0.5)
        col.iv = col.iv + (pp - pn) * log(pp / pn)
      end
    end
    report.columns[#report.columns + 1] = col
  end
  sort(report.columns, function(a, b)
    if a.iv ~= b.iv then return a.iv > b.iv end
    return a.name < b.name
  end)
  return report
end

local function pct(x)
  return format("%.1f%%", x * 100)
end

local function strength(iv)
  if iv < 0.02 then return "tells little" end
  if iv < 0.1 then return "weak" end
  if iv < 0.3 then return "medium" end
  return "strong"
end

local function csv_field(s)
  s = tostring(s)
  if s:find('[,"\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

function _M.format(report, fmt)
  fmt = fmt or "table"
  if fmt == "json" then
    local json = require("leadq.json")
    local cols = {}
    for i, c in ipairs(report.columns) do
      local bins = {}
      for k, b in ipairs(c.bins) do
        bins[k] = { label = b.label, leads = b.leads, positives = b.positives, rate = b.rate, lift = b.lift,
          low = b.low, high = b.high, missing = b.missing or false, other = b.other or false }
      end
      cols[i] = { name = c.name, type = c.type, rank = i, information_value = c.iv, bins = json.array(bins) }
    end
    return json.encode({ outcome = report.description, leads = report.leads, positives = report.positives,
      rate = report.rate, ranked_by = report.measure, columns = json.array(cols),
      skipped = json.array(report.skipped) }) .. "\n"
  elseif fmt == "csv" then
    local lines = { "rank,column,type,information_value,bin,leads,positives,rate,lift,low,high" }
    for i, c in ipairs(report.columns) do
      for _, b in ipairs(c.bins) do
        lines[#lines + 1] = concat({ i, csv_field(c.name), c.type, format("%.4f", c.iv), csv_field(b.label),
          format("%d", b.leads), format("%d", b.positives), format("%.4f", b.rate), format("%.3f", b.lift),
          format("%.4f", b.low), format("%.4f", b.high) }, ",")
      end
    end
    return concat(lines, "\n") .. "\n"
  elseif fmt ~= "table" then
    error(format("profile: format must be table, csv or json, got %s", tostring(fmt)), 2)
  end
  local th = fit.thousands
  local out = {
    format("Outcome: %s; %s leads, %s converted (%s).", report.description, th(report.leads),
      th(report.positives), pct(report.rate)),
    "Columns ranked by information value (IV: how far apart the column's values put converted and other",
    "leads; under 0.02 tells little, 0.02-0.1 weak, 0.1-0.3 medium, above 0.3 strong). Interval: 95% (Wilson).",
  }
  if #report.skipped > 0 then out[#out + 1] = "Not profiled: " .. concat(report.skipped, ", ") .. "." end
  for i, c in ipairs(report.columns) do
    out[#out + 1] = ""
    out[#out + 1] = format("%d. %s (%s): IV %.3f, %s", i, c.name, c.type, c.iv, strength(c.iv))
    local width = 5
    for _, b in ipairs(c.bins) do if #b.label > width then width = #b.label end end
    if width > 40 then width = 40 end
    out[#out + 1] = format("   %-" .. width .. "s %10s %7s %10s %7s %6s  %s", "value", "leads", "share", "converted",
      "rate", "lift", "95% interval")
    for _, b in ipairs(c.bins) do
      local label = #b.label > 40 and (b.label:sub(1, 37) .. "...") or b.label
      out[#out + 1] = format("   %-" .. width .. "s %10s %7s %10s %7s %6.2f  %s - %s", label, th(b.leads),
        pct(b.leads / report.leads), th(b.positives), pct(b.rate), b.lift, pct(b.low), pct(b.high))
    end
  end
  return concat(out, "\n") .. "\n"
end

return _M
