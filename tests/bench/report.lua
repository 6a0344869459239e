-- The one line format of make bench, and a clock for both sides of a comparison.
local M = {}

M.clock = os.clock   -- CPU time of this process: what "one core" means here

-- Wall time, for multi-threaded runs (CPU time would add the threads up): the core's monotonic clock.
function M.wall()
  return require("leadq.core").now()
end

-- The generated sample in dir holds n leads of this seed: made again whenever it holds anything else
-- (one marker file says what it holds, so a run with another LEADQ_BENCH_LEADS never leaves the
-- next run a sample of the wrong size). false when leadq.gen cannot be loaded.
function M.sample(dir, n, seed)
  local want = string.format("%d %d", n, seed)
  local marker = io.open(dir .. "/.generated", "r")
  local held = marker and marker:read("*l")
  if marker then marker:close() end
  local leads = io.open(dir .. "/leads.csv", "r")
  if leads then leads:close() end
  if held == want and leads then return true end
  local ok, gen = pcall(require, "leadq.gen")
  if not ok then return false end
  assert(gen.generate { leads = n, seed = seed, out = dir })
  marker = assert(io.open(dir .. "/.generated", "w"))
  marker:write(want, "\n")
  marker:close()
  return true
end

-- The least of `runs` values of fn() (each a time it measured itself): the run least disturbed by
-- the rest of the machine.
function M.best_of(runs, fn)
  local best = math.huge
  for _ = 1, runs do
    local t = fn()
    if t < best then best = t end
  end
  return best
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

-- DuckDB (@duckdb/node-api, run by node) in prefix, installed there by npm the first time, for the
-- benches that compare with it: true, or nil and why it cannot be had.
function M.duckdb_installed(prefix)
  local f = io.open(prefix .. "/node_modules/@duckdb/node-api/package.json", "r")
  if f then
    f:close()
    return true
  end
  if not os.execute("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") then
    return nil, "node and npm are needed"
  end
  if not os.execute(string.format("npm install --silent --no-audit --no-fund --prefix '%s' @duckdb/node-api "
      .. ">/dev/null 2>&1", prefix)) then
    return nil, "npm install @duckdb/node-api failed"
  end
  return true
end

return M
