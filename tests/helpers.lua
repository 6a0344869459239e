-- Shared test helpers: temporary files, the shared data sets, sizes for slow builds.
local M = {}

-- The real data sets (tests/data, each with its SOURCE.md), relative to the repository root.
M.data_dir = "tests/data"

function M.data(path)
  return M.data_dir .. "/" .. path
end

-- Sanitizer builds are many times slower: suites shrink their work there.
function M.slow_build()
  return LEADQ_VARIANT == "asan"
end

-- n, or small under the sanitizers.
function M.size(n, small)
  if M.slow_build() then return small or math.max(1, math.floor(n / 10)) end
  return n
end

-- Write bytes to a new temporary file; returns its name. Remove it with M.remove.
function M.temp_file(bytes)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(bytes)
  f:close()
  return name
end

function M.remove(name)
  os.remove(name)
end

-- Run fn(name) with a temporary file holding bytes; the file is removed whatever happens.
function M.with_file(bytes, fn)
  local name = M.temp_file(bytes)
  local ok, a, b = pcall(fn, name)
  os.remove(name)
  if not ok then error(a, 0) end
  return a, b
end

-- The message of the error raised by fn(...), or nil when it did not raise.
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return nil end
  return tostring(err)
end

-- Does text contain every one of the plain strings?
function M.contains(text, ...)
  for i = 1, select("#", ...) do
    if not string.find(text, (select(i, ...)), 1, true) then return false end
  end
  return true
end

-- Park-Miller generator: exact in doubles, so the same stream under every Lua.
function M.rng(seed)
  local x = seed
  return function(n)
    x = (16807 * x) % 2147483647
    if n then return x % n + 1 end
    return x / 2147483647
  end
end

-- A new empty temporary folder; M.remove_dir removes it with all it holds.
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  return dir
end

function M.remove_dir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

-- The bytes of a file, or nil when it cannot be read.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- Creates or replaces a file with text.
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Every feature the engine has, filters on event attributes and every kind of noise: the specs and the
-- options of leadq.features.new, made afresh for each caller.
function M.every_feature()
  return {
    views_30d = { count = "page_view", within_days = 30 },
    product_views = { count = "page_view", page = { starts_with = "/product" }, within_days = 60 },
    pricing_points = { count = "pricing_view", points = 5, cap = 40, cap_per_day = 10, within_days = 90 },
    email_points = { count = { "email_open", "email_click" }, points = 2, cap = 20, cap_per_day = 6 },
    seconds = { sum = "page_view", within_days = 14 },
    heat = { decayed = { "pricing_view", "demo_request" }, half_life_days = 14 },
    minutes = { decayed = "webinar_attended", half_life_days = 30, of = "value" },
    first_seen = { first = "*" },
    last_seen = { last = "*" },
    quiet_days = { days_since_last = "*" },
    active = { active_days = "*", within_days = 30 },
    visits = { sessions = { "page_view", "pricing_view" }, gap_minutes = 30 },
    webinar_campaigns = { count = "webinar_registered", campaign = { contains = "webinar" } },
  }, { noise = { min_page_seconds = 5, scanner_click_seconds = 10, leads = { seniority = "student" } } }
end

-- Two feature tables equal as the engine wrote them: NaN (missing) equals NaN, numbers to the last
-- bit; what names the comparison, against names the first table's origin in the message.
function M.assert_same_features(fs, one, other, nrows, what, against)
  local lu = require("luaunit")
  for _, name in ipairs(fs:names()) do
    local a, b = one:column(name), other:column(name)
    for r = 1, nrows do
      local x, y = a[r], b[r]
      if not (x == y or (x ~= x and y ~= y)) then
        lu.fail(string.format("%s: feature %s of lead %d: %s %s, %s", what, name, r, tostring(x), against,
          tostring(y)))
      end
    end
  end
end

-- Two reports of the bulk feature pass equal: every count, the noise and the unknown leads listed.
function M.assert_same_report(one, other, what)
  local lu = require("luaunit")
  for _, key in ipairs({ "events", "used", "after_as_of", "no_time", "ignored", "unknown_leads", "duplicate_ids" }) do
    lu.assertEquals(other[key], one[key], what .. ": report." .. key)
  end
  lu.assertEquals(other.noise, one.noise, what .. ": report.noise")
  lu.assertEquals(other.unknown, one.unknown, what .. ": report.unknown")
end

-- A copy of list in a fixed pseudo-random order (a seed gives the same order on every Lua).
function M.shuffled(list, seed)
  local out, x = {}, seed
  for i = 1, #list do out[i] = list[i] end
  for i = #out, 2, -1 do
    x = (16807 * x) % 2147483647
    local j = x % i + 1
    out[i], out[j] = out[j], out[i]
  end
  return out
end

-- n generated leads (ids as categories) and their events as Lua records, in the file's order.
function M.generated_events(n, seed)
  local leadq = require("leadq")
  local dir = M.tmpdir()
  assert(require("leadq.gen").generate { leads = n, seed = seed, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv", { schema = { id = "category" } }))
  local events = assert(leadq.read_events(dir .. "/events.csv"))
  local list = {}
  for i = 1, #events do list[i] = events:row(i) end
  events:close()
  M.remove_dir(dir)
  return { leads = leads, list = list }
end

return M
