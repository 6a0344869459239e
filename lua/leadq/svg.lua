-- leadq.svg: the report's small chart writer. Each function takes plain numbers and returns one
-- <svg> element as a string: bars (grouped or stacked, with marker lines), lines (ROC, calibration)
-- and a heat map. No script, no font or file from the network: the report opens offline.
--
-- Colours: the Okabe-Ito palette, told apart by people with the common colour-vision deficiencies.
-- Every chart has its natural width in pixels and a viewBox: it shrinks to a narrower page (A4 when
-- printed) and never grows past the size its text was laid out for.
local _M = { _VERSION = "0.1.0" }

local format, concat = string.format, table.concat
local floor, ceil, log, max, min, abs = math.floor, math.ceil, math.log, math.max, math.min, math.abs
local ipairs, tostring = ipairs, tostring

_M.palette = { "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000" }

local function escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                                         ["'"] = "&#39;" }))
end
_M.escape = escape

-- "1234567.8" -> "1,234,567.8"
local group_digits = require("leadq.util").group_digits

function _M.number(x, decimals)
  if x == nil or x ~= x then return "–" end
  if x == math.huge then return "∞" end
  if decimals then return group_digits(format("%." .. decimals .. "f", x)) end
  local a = abs(x)
  if a >= 100 or x == floor(x) then return group_digits(format("%.0f", x)) end
  if a >= 10 then return format("%.1f", x) end
  return format("%.2f", x)
end

function _M.percent(x, decimals)
  if x == nil or x ~= x then return "–" end
  return format("%." .. (decimals or 1) .. "f%%", x * 100)
end

-- Round numbers for an axis from lo to hi: about `count` ticks at 1, 2 or 5 times a power of ten.
local function ticks(lo, hi, count)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / (count or 5)
  local p = 10 ^ floor(log(raw) / log(10))
  local step = p
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    step = m * p
    if step >= raw then break end
  end
  local out = {}
  local first = floor(lo / step + 1e-9) * step
  local last = ceil(hi / step - 1e-9) * step
  for v = first, last + step / 2, step do out[#out + 1] = abs(v) < step * 1e-9 and 0 or v end
  return out, first, last
end
_M.ticks = ticks

local function open_svg(width, height, label)
  return { format('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" '
    .. 'style="max-width:100%%;height:auto" role="img" aria-label="%s" font-family="sans-serif" font-size="11">',
    width, height, width, height, escape(label or "")),
    format('<title>%s</title>', escape(label or "")) }
end

local function text(parts, x, y, s, anchor, extra)
  parts[#parts + 1] = format('<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>', x, y, anchor or "middle",
    extra or "", escape(s))
end

local function legend(parts, names, x, y)
  for i, name in ipairs(names) do
    local ly = y + (i - 1) * 16
    parts[#parts + 1] = format('<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>', x, ly - 9,
      _M.palette[(i - 1) % #_M.palette + 1])
    text(parts, x + 14, ly, name, "start")
  end
end

-- Bars: spec = { title, categories = { "a", ... }, series = { { name =, values = { ... } }, ... },
--   x_label, y_label, stacked = bool, value_format = fn(v) -> text, markers = { { at = category index
--   (may be fractional), label = } }, width, height }. Bars of several series stand side by side
-- unless stacked. Values may be nil (drawn as nothing).
function _M.bars(spec)
  local width, height = spec.width or 640, spec.height or 300
  local cats, series = spec.categories, spec.series
  local longest = 0
  for _, c in ipairs(cats) do longest = max(longest, #tostring(c)) end
  local right = #series > 1 and 130 or 16
  -- labels that do not fit under their bar are written at 45 degrees, with room below for them
  local rotate = longest * 6.5 > (width - 64 - right) / max(1, #cats) * 0.95
  local left, top, bottom = 64, 24, rotate and min(130, 40 + floor(longest * 4.8)) or 44
  height = height + (bottom - 44)
  local plot_w, plot_h = width - left - right, height - top - bottom
  local hi, lo = 0, 0
  for i = 1, #cats do
    local stack_pos, stack_neg = 0, 0
    for _, s in ipairs(series) do
      local v = s.values[i]
      if v and v == v then
        if spec.stacked then
          if v >= 0 then stack_pos = stack_pos + v else stack_neg = stack_neg + v end
        else
          hi, lo = max(hi, v), min(lo, v)
        end
      end
    end
    hi, lo = max(hi, stack_pos), min(lo, stack_neg)
  end
  local ts, t0, t1 = ticks(lo, hi, 5)
  local function y_of(v) return top + plot_h - (v - t0) / (t1 - t0) * plot_h end
  local parts = open_svg(width, height, spec.title)
  local fmt = spec.value_format or _M.number
  for _, t in ipairs(ts) do
    local y = y_of(t)
    parts[#parts + 1] = format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>', left, y,
      left + plot_w, y)
    text(parts, left - 6, y + 4, fmt(t), "end")
  end
  local slot = plot_w / max(1, #cats)
  local groups = spec.stacked and 1 or #series
  local bar_w = slot * 0.8 / groups
  for i, cat in ipairs(cats) do
    local x0 = left + (i - 1) * slot + slot * 0.1
    local base_pos, base_neg = 0, 0
    for k, s in ipairs(series) do
      local v = s.values[i]
      if v and v == v then
        local a, b
        if spec.stacked then
          if v >= 0 then
            a, b = base_pos, base_pos + v
            base_pos = b
          else
            a, b = base_neg + v, base_neg
            base_neg = a
          end
        else
          a, b = min(0, v), max(0, v)
        end
        local x = x0 + (spec.stacked and 0 or (k - 1) * bar_w)
        local y1, y2 = y_of(b), y_of(a)
        parts[#parts + 1] = format('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
          .. '<title>%s: %s</title></rect>', x, y1, max(0.5, bar_w - 1), max(0, y2 - y1),
          _M.palette[(k - 1) % #_M.palette + 1], escape(s.name .. ", " .. tostring(cat)), escape(fmt(v)))
      end
    end
    local label = tostring(cat)
    if rotate then
      parts[#parts + 1] = format('<text x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-45 %.1f %.1f)">'
        .. '%s</text>', x0 + slot * 0.4, top + plot_h + 12, x0 + slot * 0.4, top + plot_h + 12, escape(label))
    else
      text(parts, x0 + slot * 0.4, top + plot_h + 14, label)
    end
  end
  for k, m in ipairs(spec.markers or {}) do
    local x = left + (m.at - 1) * slot + slot * 0.5
    parts[#parts + 1] = format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-dasharray="4 3"/>',
      x, top, x, top + plot_h)
    -- each marker's label a line lower than the one before: close thresholds stay readable
    text(parts, x + 3, top + 10 + (k - 1) * 13, m.label, "start", ' font-weight="bold"')
  end
  parts[#parts + 1] = format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>', left, y_of(0),
    left + plot_w, y_of(0))
  if spec.x_label then text(parts, left + plot_w / 2, height - 6, spec.x_label) end
  if spec.y_label then
    parts[#parts + 1] = format('<text x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>',
      top + plot_h / 2, top + plot_h / 2, escape(spec.y_label))
  end
  if #series > 1 then
    local names = {}
    for i, s in ipairs(series) do names[i] = s.name end
    legend(parts, names, left + plot_w + 14, top + 12)
  end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

-- Lines on x and y axes from 0 to 1 (or x_range / y_range): spec = { title, series = { { name,
-- points = { { x, y }, ... }, dots = bool } }, x_label, y_label, diagonal = bool (the y = x line),
-- x_format, y_format, width, height }.
function _M.lines(spec)
  local width, height = spec.width or 420, spec.height or 340
  local left, right, top, bottom = 58, 16, 20, 46
  local plot_w, plot_h = width - left - right, height - top - bottom
  local x0, x1 = (spec.x_range or { 0, 1 })[1], (spec.x_range or { 0, 1 })[2]
  local y0, y1 = (spec.y_range or { 0, 1 })[1], (spec.y_range or { 0, 1 })[2]
  local function px(x) return left + (x - x0) / (x1 - x0) * plot_w end
  local function py(y) return top + plot_h - (y - y0) / (y1 - y0) * plot_h end
  local parts = open_svg(width, height, spec.title)
  local xf, yf = spec.x_format or _M.number, spec.y_format or _M.number
  for _, t in ipairs((ticks(x0, x1, 5))) do
    if t >= x0 - 1e-12 and t <= x1 + 1e-12 then
      parts[#parts + 1] = format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>', px(t), top, px(t),
        top + plot_h)
      text(parts, px(t), top + plot_h + 14, xf(t))
    end
  end
  for _, t in ipairs((ticks(y0, y1, 5))) do
    if t >= y0 - 1e-12 and t <= y1 + 1e-12 then
      parts[#parts + 1] = format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>', left, py(t),
        left + plot_w, py(t))
      text(parts, left - 6, py(t) + 4, yf(t), "end")
    end
  end
  parts[#parts + 1] = format('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', left, top,
    plot_w, plot_h)
  if spec.diagonal then
    parts[#parts + 1] = format('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" '
      .. 'stroke-dasharray="4 3"/>', px(x0), py(y0), px(min(x1, y1)), py(min(x1, y1)))
  end
  for k, s in ipairs(spec.series) do
    local colour = _M.palette[(k - 1) % #_M.palette + 1]
    local pts = {}
    for _, p in ipairs(s.points) do pts[#pts + 1] = format("%.1f,%.1f", px(p[1]), py(p[2])) end
    if #pts > 0 then
      parts[#parts + 1] = format('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', colour,
        concat(pts, " "))
    end
    if s.dots then
      for _, p in ipairs(s.points) do
        parts[#parts + 1] = format('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>', px(p[1]), py(p[2]), colour)
      end
    end
  end
  if spec.x_label then text(parts, left + plot_w / 2, height - 8, spec.x_label) end
  if spec.y_label then
    parts[#parts + 1] = format('<text x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>',
      top + plot_h / 2, top + plot_h / 2, escape(spec.y_label))
  end
  if #spec.series > 1 then
    local names = {}
    for i, s in ipairs(spec.series) do names[i] = s.name end
    legend(parts, names, left + 12, top + 16)
  end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

-- Horizontal bars, one series, for long category names (rules): spec = { title, categories, values,
-- x_label, value_format, reference = a value drawn as a dashed line (e.g. lift 1), width }.
function _M.hbars(spec)
  local cats, values = spec.categories, spec.values
  local longest = 0
  for _, c in ipairs(cats) do longest = max(longest, #tostring(c)) end
  local width = spec.width or 640
  local left, right, top, row_h = min(260, 16 + floor(longest * 6.6)), 24, 10, 16
  local plot_w, plot_h = width - left - right, row_h * #cats
  local height = top + plot_h + 42
  local hi, lo = 0, 0
  for i = 1, #cats do
    local v = values[i]
    if v and v == v and v ~= math.huge then hi, lo = max(hi, v), min(lo, v) end
  end
  if spec.reference then hi = max(hi, spec.reference) end
  local ts, t0, t1 = ticks(lo, hi, 5)
  local function x_of(v) return left + (v - t0) / (t1 - t0) * plot_w end
  local parts = open_svg(width, height, spec.title)
  local fmt = spec.value_format or _M.number
  for _, t in ipairs(ts) do
    parts[#parts + 1] = format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>', x_of(t), top, x_of(t),
      top + plot_h)
    text(parts, x_of(t), top + plot_h + 14, fmt(t))
  end
  for i, cat in ipairs(cats) do
    local y = top + (i - 1) * row_h
    local v = values[i]
    text(parts, left - 6, y + row_h - 4, cat, "end")
    if v and v == v and v ~= math.huge then
      local a, b = x_of(min(0, v)), x_of(max(0, v))
      parts[#parts + 1] = format('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: %s</title>'
        .. '</rect>', a, y + 2, max(0.5, b - a), row_h - 4, _M.palette[1], escape(cat), escape(fmt(v)))
    end
  end
  if spec.reference then
    local x = x_of(spec.reference)
    parts[#parts + 1] = format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-dasharray="4 3"/>',
      x, top, x, top + plot_h)
  end
  parts[#parts + 1] = format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>', x_of(0), top, x_of(0),
    top + plot_h)
  if spec.x_label then text(parts, left + plot_w / 2, height - 8, spec.x_label) end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

-- A heat map: spec = { title, rows = { labels }, columns = { labels }, values = { [r] = { [c] = n } },
-- row_label, column_label, value_format }. Darker is more; each cell also prints its number.
function _M.heatmap(spec)
  local rows, cols = spec.rows, spec.columns
  local cell_w, cell_h = 72, 34
  local left, top = 96, 40
  local width, height = left + cell_w * #cols + 16, top + cell_h * #rows + 16
  local hi = 0
  for r = 1, #rows do for c = 1, #cols do hi = max(hi, (spec.values[r] or {})[c] or 0) end end
  local parts = open_svg(width, height, spec.title)
  local fmt = spec.value_format or _M.number
  for c, label in ipairs(cols) do text(parts, left + (c - 0.5) * cell_w, top - 8, label) end
  if spec.column_label then
    text(parts, left + cell_w * #cols / 2, 14, spec.column_label, nil, ' font-weight="bold"')
  end
  for r, label in ipairs(rows) do
    text(parts, left - 8, top + (r - 0.5) * cell_h + 4, label, "end")
    for c = 1, #cols do
      local v = (spec.values[r] or {})[c] or 0
      local share = hi > 0 and v / hi or 0
      -- a single-hue ramp from white to the palette's blue, in sRGB steps
      local function mix(a) return floor(255 - (255 - a) * share + 0.5) end
      local fill = format("#%02X%02X%02X", mix(0x00), mix(0x72), mix(0xB2))
      parts[#parts + 1] = format('<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="%s" stroke="#fff">'
        .. '<title>%s %s: %s</title></rect>', left + (c - 1) * cell_w, top + (r - 1) * cell_h, cell_w, cell_h, fill,
        escape(label), escape(cols[c]), escape(fmt(v)))
      text(parts, left + (c - 0.5) * cell_w, top + (r - 0.5) * cell_h + 4, fmt(v), nil,
        share > 0.55 and ' fill="#fff"' or "")
    end
  end
  if spec.row_label then
    parts[#parts + 1] = format('<text x="12" y="%.1f" text-anchor="middle" font-weight="bold" '
      .. 'transform="rotate(-90 12 %.1f)">%s</text>', top + cell_h * #rows / 2, top + cell_h * #rows / 2,
      escape(spec.row_label))
  end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

return _M
