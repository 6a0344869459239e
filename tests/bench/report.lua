-- The one line format of make bench, and a clock for both sides of a comparison.
local M = {}

M.clock = os.clock   -- CPU time of this process: what "one core" means here

-- Wall time, for multi-threaded runs (CPU time would add the threads up).
function M.wall()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

-- higher_is_better: true for rates (leads/s), false for durations (ms); the ratio is always
-- "how many times better leadq is", so > 1 means leadq wins.
function M.line(name, value, unit, baseline, base_value, base_unit, higher_is_better)
  local ratio
  if higher_is_better then ratio = value / base_value else ratio = base_value / value end
  local function fmt(v)
    if v >= 100 then return string.format("%.0f", v) end
    if v >= 10 then return string.format("%.1f", v) end
    return string.format("%.3g", v)
  end
  local text = string.format("bench: %s: leadq %s %s, %s %s %s, ratio %.2f",
    name, fmt(value), unit, baseline, fmt(base_value), base_unit or unit, ratio)
  print(text)
  io.stdout:flush()
  return ratio
end

return M
