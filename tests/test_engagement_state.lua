-- The real-time engagement state: observe / values / encode / decode, lateness, and the property
-- that incremental and batch computations agree on generated event streams.
local lu = require("luaunit")
local core = require("leadq.core")
local features = require("leadq.features")

local M = {}
M.TestEngagementState = {}
local T = M.TestEngagementState

local DAY = 86400
local T0 = 1780000000   -- 2026-05-28T20:26:40Z

-- A deterministic PRNG in doubles (Park-Miller), so every Lua, LuaJIT included, draws the same stream.
local function prng(seed)
  local x = seed % 2147483647
  if x <= 0 then x = x + 2147483646 end
  local r = {}
  function r.next()
    x = (16807 * x) % 2147483647
    return x / 2147483647
  end
  function r.int(lo, hi) return lo + math.floor(r.next() * (hi - lo + 1)) end
  function r.pick(list) return list[r.int(1, #list)] end
  return r
end

local function slow() return LEADQ_VARIANT == "asan" end

local SPECS = {
  views_7d = { count = "page_view", within_days = 7 },
  views_30d = { count = "page_view", within_days = 30 },
  pricing_30d = { count = "page_view", page = { starts_with = "/pricing" }, within_days = 30 },
  docs_any = { count = { "page_view", "download" }, page = { contains = "docs" } },
  email_pts = { count = { "email_open", "email_click" }, points = 3, cap = 40, cap_per_day = 7 },
  email_pts_30d = { count = { "email_open", "email_click" }, points = 2, cap = 25, cap_per_day = 5,
    within_days = 30 },
  careers = { count = "page_view", page = "/careers", points = -5, cap = 15 },
  time_on_page = { sum = "page_view", within_days = 14 },
  time_all = { sum = "page_view" },
  heat = { decayed = "webinar", half_life_days = 10 },
  heat_value = { decayed = { "page_view", "download" }, half_life_days = 3, of = "value" },
  first_seen = { first = "*" },
  last_seen = { last = "*" },
  since_visit = { days_since_last = "page_view" },
  active_30d = { active_days = "*", within_days = 30 },
  active_all = { active_days = { "page_view", "email_click" } },
  sessions_30d = { sessions = "page_view", within_days = 30, gap_minutes = 30 },
  sessions_all = { sessions = "page_view", gap_minutes = 45 },
  demo = { count = "demo_request" },
}
local OPTIONS = { lateness_seconds = 6 * 3600,
  noise = { min_page_seconds = 5, scanner_click_seconds = 20, leads = { internal = true } } }

local TYPES = { "page_view", "page_view", "page_view", "email_send", "email_open", "email_click", "email_click",
  "download", "webinar", "demo_request", "other" }
local PAGES = { "/", "/pricing", "/pricing/enterprise", "/docs/api", "/Docs/start", "/careers", "/blog/x" }

-- One lead's stream: bursts of activity over ~90 days, some clicks right after their send.
local function stream(r, lead, n)
  local evs, t = {}, T0 - 90 * DAY + r.int(0, 5 * DAY)
  for _ = 1, n do
    local gap = r.next() < 0.6 and r.int(1, 1200) or r.int(3600, 6 * DAY)
    t = t + gap
    local ty = r.pick(TYPES)
    local e = { lead_id = lead, type = ty, at = t, page = r.pick(PAGES) }
    if ty == "page_view" or ty == "download" then e.value = r.int(0, 300) end
    evs[#evs + 1] = e
    if ty == "email_send" and r.next() < 0.5 then
      t = t + r.int(0, 40)
      evs[#evs + 1] = { lead_id = lead, type = "email_click", at = t, page = "/" }
    end
  end
  return evs
end

local function close_enough(a, b)
  if a == nil or b == nil then return a == b end
  if a == b then return true end
  return math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a), math.abs(b))
end

local function assert_same(expected, got, where)
  for name in pairs(SPECS) do
    if not close_enough(expected[name], got[name]) then
      lu.fail(string.format("%s: feature %s: batch %s, incremental %s", where, name, tostring(expected[name]),
        tostring(got[name])))
    end
  end
end

function T.test_incremental_equals_batch_on_generated_streams()
  local fs = features.new(SPECS, OPTIONS)
  local r = prng(20260522)
  local nleads = slow() and 6 or 40
  local leads, all, per_lead = {}, {}, {}
  for i = 1, nleads do
    local id = "L" .. i
    leads[i] = { id = id, internal = (i % 9 == 0) }
    per_lead[i] = stream(r, id, r.int(0, slow() and 40 or 120))
    for _, e in ipairs(per_lead[i]) do all[#all + 1] = e end
  end
  -- batch input in a shuffled order: the bulk pass must not care
  for i = #all, 2, -1 do
    local j = r.int(1, i)
    all[i], all[j] = all[j], all[i]
  end
  local lead_tbl = core.table(leads)
  local ev_tbl = core.table(all, { lead_id = "category", type = "category", at = "time", page = "category",
    value = "number" })
  local as_ofs = {}
  for k = 1, (slow() and 3 or 8) do as_ofs[k] = T0 - 80 * DAY + k * 11 * DAY + r.int(0, DAY) end
  -- the same events grouped by lead (the one-pass path) must give the same table
  local grouped = {}
  for i = 1, nleads do for _, e in ipairs(per_lead[i]) do grouped[#grouped + 1] = e end end
  local grouped_tbl = core.table(grouped, { lead_id = "category", type = "category", at = "time",
    page = "category", value = "number" })
  local batch = {}
  for k, as_of in ipairs(as_ofs) do
    local tbl, report = assert(fs:compute(lead_tbl, ev_tbl, { as_of = as_of }))
    lu.assertEquals(report.unknown_leads, 0)
    batch[k] = tbl
    local other, report2 = assert(fs:compute(lead_tbl, grouped_tbl, { as_of = as_of }))
    lu.assertEquals(report2.noise, report.noise)
    lu.assertEquals(report2.used, report.used)
    for i = 1, nleads do assert_same(tbl:row(i), other:row(i), "grouped input, lead " .. i) end
  end
  for i = 1, nleads do
    -- arrival order: each event late by up to the lateness, never more
    local arrivals = {}
    for j, e in ipairs(per_lead[i]) do
      arrivals[j] = { e = e, key = e.at + r.next() * (OPTIONS.lateness_seconds - 1) }
    end
    table.sort(arrivals, function(a, b) return a.key < b.key end)
    local st = fs:state(leads[i])
    local pos = 0
    for k, as_of in ipairs(as_ofs) do
      -- feed until every event up to as_of has arrived
      local last_needed = 0
      for j, a in ipairs(arrivals) do if a.e.at <= as_of then last_needed = j end end
      while pos < last_needed do
        pos = pos + 1
        local ok, err = st:observe(arrivals[pos].e)
        lu.assertTrue(ok, err)
      end
      local got = assert(st:values(as_of))
      local expected = batch[k]:row(i)
      assert_same(expected, got, string.format("lead %d as of day %d", i, k))
      -- a state survives encoding midway
      if k % 2 == 0 then st = assert(fs:decode(st:encode())) end
    end
    lu.assertEquals(st:stats().late, 0)
  end
end

function T.test_observe_and_values()
  local fs = features.new({
    views = { count = "page_view", within_days = 30 },
    last_seen = { last = "page_view" },
    since = { days_since_last = "page_view" },
  })
  local st = fs:state()
  lu.assertEquals(st:values(T0), { views = 0 })   -- counts are 0, times are missing
  lu.assertTrue(st:observe({ type = "page_view", at = T0 - 2 * DAY, value = 12 }))
  lu.assertTrue(st:observe({ type = "page_view", at = T0 - DAY }))
  lu.assertTrue(st:observe({ type = "unrelated", at = T0 - DAY }))
  local v = st:values(T0)
  lu.assertEquals(v.views, 2)
  lu.assertEquals(v.last_seen, T0 - DAY)
  lu.assertEquals(v.since, 1)
  lu.assertEquals(st:values(T0 + 40 * DAY).views, 0)
  lu.assertStrContains(tostring(st), "leadq.EngagementState: 3 events observed")
  local s = st:stats()
  lu.assertEquals(s.observed, 3)
  lu.assertEquals(s.late, 0)
end

-- observe(type, at, value, attributes) is observe{...} without the table: the same state, byte for
-- byte, on a generated stream with page filters, values and noise rules.
function T.test_observe_with_arguments_equals_observe_with_a_table()
  local fs = features.new(SPECS, OPTIONS)
  local by_table, by_args = fs:state(), fs:state()
  lu.assertNil(by_args:latest())
  local latest
  for _, e in ipairs(stream(prng(99), "L1", slow() and 60 or 300)) do
    local ok1, err1 = by_table:observe(e)
    local ok2, err2 = by_args:observe(e.type, e.at, e.value, { page = e.page })
    lu.assertEquals(ok2, ok1)
    lu.assertEquals(err2, err1)
    if ok1 and (latest == nil or e.at > latest) then latest = e.at end
  end
  lu.assertEquals(by_args:encode(), by_table:encode())
  lu.assertEquals(by_args:latest(), latest)
  assert_same(by_table:values(latest + DAY), by_args:values(latest + DAY), "arguments")
  -- attributes are optional: an event without them matches no page filter
  local st = fs:state()
  lu.assertTrue(st:observe("page_view", T0, 30))
  lu.assertEquals(st:values(T0).pricing_30d, 0)
  lu.assertEquals(st:values(T0).time_all, 30)
  lu.assertErrorMsgContains("'at' must be a number", st.observe, st, "page_view", "soon")
  lu.assertErrorMsgContains("'value' must be a number", st.observe, st, "page_view", T0, "x")
end

-- values(as_of, into) fills the given table: every feature set again, a missing one to nil.
function T.test_values_into_a_table()
  local fs = features.new({ views = { count = "page_view" }, last_seen = { last = "page_view" } })
  local st = fs:state()
  local into = { last_seen = 123, views = 9 }
  lu.assertIs(st:values(T0, into), into)
  lu.assertEquals(into, { views = 0 })
  st:observe("page_view", T0 - 10)
  lu.assertIs(st:values(T0, into), into)
  lu.assertEquals(into, st:values(T0))
  lu.assertEquals(into, { views = 1, last_seen = T0 - 10 })
  lu.assertErrorMsgContains("table expected", st.values, st, T0, "x")
end

function T.test_late_events_are_counted_and_rejected()
  local fs = features.new({ n = { count = "page_view" } }, { lateness_seconds = 3600 })
  local st = fs:state()
  lu.assertTrue(st:observe({ type = "page_view", at = T0 }))
  lu.assertTrue(st:observe({ type = "page_view", at = T0 - 3600 }))     -- exactly the lateness: kept
  local ok, err = st:observe({ type = "page_view", at = T0 - 3601 })
  lu.assertNil(ok)
  lu.assertStrContains(err, "rejected as late")
  lu.assertEquals(st:stats().late, 1)
  lu.assertEquals(st:values(T0).n, 2)
end

function T.test_values_before_folded_events_is_an_error_but_pending_ones_replay()
  local fs = features.new({ n = { count = "page_view" } }, { lateness_seconds = DAY })
  local st = fs:state()
  for k = 0, 4 do st:observe({ type = "page_view", at = T0 + k * DAY }) end
  -- events within the lateness are still pending: as_of among them replays exactly
  lu.assertEquals(st:values(T0 + 4 * DAY - 1).n, 4)
  lu.assertEquals(st:values(T0 + 4 * DAY).n, 5)
  local v, err = st:values(T0)
  lu.assertNil(v)
  lu.assertStrContains(err, "is before events already folded into the state")
end

function T.test_observe_misuse_raises()
  local fs = features.new({ n = { count = "page_view" }, t = { sum = "page_view" } })
  local st = fs:state()
  lu.assertErrorMsgContains("'type' must be a string", st.observe, st, { at = T0 })
  lu.assertErrorMsgContains("'at' must be a number", st.observe, st, { type = "page_view", at = "2026-01-01" })
  lu.assertErrorMsgContains("'value' must be a number", st.observe, st, { type = "page_view", at = T0, value = "x" })
  lu.assertErrorMsgContains("'at' is not a time", st.observe, st, { type = "page_view", at = 0 / 0 })
  lu.assertErrorMsgContains("'at' is not a time", st.observe, st, { type = "page_view", at = 1e300 })
  lu.assertErrorMsgContains("bad self", fs.state, {})
  st:close()
  lu.assertErrorMsgContains("closed engagement state", st.observe, st, { type = "page_view", at = T0 })
  lu.assertEquals(tostring(st), "leadq.EngagementState (closed)")
  st:close()   -- twice is fine
end

function T.test_states_outlive_their_feature_set()
  local fs = features.new({ n = { count = "page_view" } })
  local st = fs:state()
  fs:close()
  st:observe({ type = "page_view", at = T0 })
  lu.assertEquals(st:values(T0).n, 1)
  lu.assertErrorMsgContains("closed feature set", fs.state, fs)
  st = nil   -- luacheck: ignore 311
  collectgarbage()
end

-- A feature set and a state that has observed n events of one lead's generated stream.
local function observed(seed, lead, n)
  local fs = features.new(SPECS, OPTIONS)
  local st = fs:state()
  for _, e in ipairs(stream(prng(seed), lead, n)) do st:observe(e) end
  return fs, st
end

function T.test_encode_decode_round_trip_and_errors()
  local fs, st = observed(7, "x", 60)
  local s = st:encode()
  lu.assertEquals(s:byte(1), 2)    -- the version byte: 2 ends with a check of the bytes before it
  local back = assert(features.decode_state(fs, s))
  lu.assertEquals(back:values(T0), st:values(T0))
  lu.assertEquals(back:encode(), s)
  local v, err = fs:decode(s:sub(1, #s - 3))
  lu.assertNil(v)
  lu.assertStrContains(err, "damaged or truncated")
  v, err = fs:decode(string.char(99) .. s:sub(2))
  lu.assertNil(v)
  lu.assertStrContains(err, "newer version")
  local relabeled = {}
  for k, spec in pairs(SPECS) do
    relabeled[k] = {}
    for kk, vv in pairs(spec) do relabeled[k][kk] = vv end
    relabeled[k].label = "now with a label"
  end
  lu.assertNotNil(features.new(relabeled, OPTIONS):decode(s))   -- labels do not change what a state holds
  local other = features.new({ n = { count = "page_view" } })
  v, err = other:decode(s)
  lu.assertNil(v)
  lu.assertStrContains(err, "different feature set")
  lu.assertErrorMsgContains("expects the string", fs.decode, fs, 42)
end

-- Version 2 ends with a check of the bytes before it: a changed byte anywhere is refused, and a
-- version 1 state (stored by an earlier build, without the check) still reads the same.
function T.test_state_check_and_version_1()
  local fs, st = observed(9, "z", 50)
  local s = st:encode()
  local mid = math.floor(#s / 2)
  local flipped = s:sub(1, mid - 1) .. string.char((s:byte(mid) + 1) % 256) .. s:sub(mid + 1)
  local v, err = fs:decode(flipped)
  lu.assertNil(v)
  lu.assertStrContains(err, "damaged or truncated")
  local v1 = string.char(1) .. s:sub(2, #s - 4)
  local old = assert(fs:decode(v1))
  lu.assertEquals(old:values(T0 + 400 * DAY), st:values(T0 + 400 * DAY))
  lu.assertEquals(old:encode(), s)   -- written back as version 2
end

-- A counter of 2^64 - 1 decodes as the double 2^64, which no uint64_t holds: the encoder's cast was
-- undefined and wrote 0, so a stored count went to 0 on the next write. (v1: no check to redo.)
function T.test_huge_counters_survive_a_round_trip()
  local fs = features.new(SPECS, OPTIONS)
  local plain = fs:state():encode()
  local nslots_bytes = 1   -- version, fingerprint (4), slot count (a varint), flags, the counters
  while plain:byte(5 + nslots_bytes) >= 128 do nslots_bytes = nslots_bytes + 1 end
  local max = string.rep("\255", 9) .. "\1"
  for _, counter in ipairs({ max, "\128\128\128\128\128\128\128\128\128\1" }) do   -- 2^64 - 1, 2^63
    local v1 = string.char(1) .. plain:sub(2, 6 + nslots_bytes) .. counter .. plain:sub(8 + nslots_bytes, #plain - 4)
    local st = assert(fs:decode(v1))
    local count = st:stats().observed
    lu.assertTrue(count >= 2 ^ 63, tostring(count))
    local again = assert(fs:decode(st:encode()))
    lu.assertEquals(again:stats().observed, count)
    lu.assertEquals(again:encode(), st:encode())
  end
end

-- state:encode(prefix) and state:decode(s, init): a host's header before the encoding, with no
-- second string made for it either way.
function T.test_encode_with_a_prefix_and_decode_from_an_offset()
  local fs, st = observed(10, "w", 30)
  local plain = st:encode()
  local stored = st:encode("1764000000.5:")
  lu.assertEquals(stored, "1764000000.5:" .. plain)
  local kept = fs:state()
  lu.assertTrue(kept:decode(stored, #"1764000000.5:" + 1))
  lu.assertEquals(kept:encode(), plain)
  lu.assertTrue(kept:decode(plain, 1))
  local ok, err = kept:decode(stored, 2)
  lu.assertNil(ok)
  lu.assertNotNil(err)
  lu.assertErrorMsgContains("init is outside the string", kept.decode, kept, plain, #plain + 2)
  lu.assertErrorMsgContains("init is outside the string", kept.decode, kept, plain, 0)
end

-- state:decode(s): an existing state becomes the one s encodes (the service keeps one per worker).
function T.test_decode_into_an_existing_state()
  local fs = features.new(SPECS, OPTIONS)
  local a, b = fs:state(), fs:state()
  for _, e in ipairs(stream(prng(7), "x", 60)) do a:observe(e) end
  for _, e in ipairs(stream(prng(8), "y", 40)) do b:observe(e) end
  local sa, sb = a:encode(), b:encode()
  local kept = fs:state()
  for _ = 1, 2 do
    lu.assertTrue(kept:decode(sa))
    lu.assertEquals(kept:values(T0 + 400 * DAY), a:values(T0 + 400 * DAY))
    lu.assertEquals(kept:encode(), sa)
    lu.assertTrue(kept:decode(sb))   -- a shorter state after a longer one: nothing of the first is left
    lu.assertEquals(kept:encode(), sb)
    lu.assertEquals(kept:values(T0 + 400 * DAY), b:values(T0 + 400 * DAY))
  end
  local ok, err = kept:decode(sa:sub(1, #sa - 3))
  lu.assertNil(ok)
  lu.assertStrContains(err, "damaged or truncated")
  lu.assertEquals(kept:encode(), fs:state():encode())   -- a failed decode leaves the state empty
  ok, err = features.new({ n = { count = "page_view" } }):state():decode(sa)
  lu.assertNil(ok)
  lu.assertStrContains(err, "different feature set")
  kept:close()
  lu.assertErrorMsgContains("closed engagement state", kept.decode, kept, sa)
end

function T.test_damaged_strings_never_crash()
  local fs = features.new(SPECS, OPTIONS)
  local st = fs:state()
  for _, e in ipairs(stream(prng(11), "x", 30)) do st:observe(e) end
  local good = st:encode()
  local r = prng(99)
  for _ = 1, slow() and 300 or 3000 do
    local bytes = { good:byte(1, -1) }
    for _ = 1, r.int(1, 4) do
      local k = r.int(6, #bytes)      -- keep version and fingerprint: reach the decoder proper
      bytes[k] = r.int(0, 255)
    end
    if r.next() < 0.3 then for _ = 1, r.int(1, 20) do table.remove(bytes) end end
    local s = string.char(table.unpack and table.unpack(bytes) or unpack(bytes))  -- luacheck: ignore 143
    local back, err = fs:decode(s)
    if back then
      back:values(T0 + 400 * DAY)   -- whatever it holds, reading it is safe
      back:observe({ type = "page_view", at = T0 + 500 * DAY })
    else
      lu.assertStrContains(err, "state")
    end
  end
end

-- Encoded by the first format (v1). Whatever the format becomes, this string must keep decoding.
local V1_SPECS = {
  views = { count = "page_view", within_days = 30 },
  pts = { count = "email_click", points = 2, cap = 10, cap_per_day = 4 },
  heat = { decayed = "webinar", half_life_days = 7 },
  last_seen = { last = "*" },
}
-- (events: a webinar, page views, four e-mail clicks over two days, the last page view still pending)
local V1_HEX = "01bd728b5b4a03000000402986da41000000e0d485da410700000000ff0e000000000c000000000000000000f03f"
  .. "000000000000f03f000000a0da83da410000000000001840000000a0da83da41000000e0d485da410000000000001040"
  .. "000000000000104000000000001ed440000000000000f03f000000000000f03f00000000801dd440000000000000f03f"
  .. "01000000402986da4100000000000034400200"
local V1_AS_OF = T0 + DAY
local V1_VALUES = { views = 2, pts = 6, heat = 0.45286183213195336, last_seen = T0 }

local function from_hex(h)
  return (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

function T.test_decodes_a_v1_state()
  local fs = features.new(V1_SPECS, { lateness_seconds = 600 })
  local st = assert(fs:decode(from_hex(V1_HEX)))
  local v = assert(st:values(V1_AS_OF))
  for k, x in pairs(V1_VALUES) do lu.assertTrue(close_enough(x, v[k]), k) end
  for k in pairs(v) do lu.assertNotNil(V1_VALUES[k], k) end
  lu.assertEquals(st:stats().pending, 1)
  -- and it keeps going
  lu.assertTrue(st:observe({ type = "page_view", at = V1_AS_OF }))
  lu.assertEquals(st:values(V1_AS_OF).views, V1_VALUES.views + 1)
end

return M
