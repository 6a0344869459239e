-- The synthetic data generator (leadq.gen) and the PRNG under it (leadq.core.random).
local lu = require("luaunit")
local core = require("leadq.core")
local gen = require("leadq.gen")
local helpers = require("helpers")
local tmpdir, read, remove_dir, error_of = helpers.tmpdir, helpers.read, helpers.remove_dir, helpers.error_of

local floor = math.floor
local N = (LEADQ_VARIANT == "asan") and 800 or 2000
local SEED = 11

-- One CSV record: the command line's own splitter (the generator writes no line breaks in fields).
local function fields_of(line)
  return assert(require("leadq.cli.inputs").csv_fields(line))
end

-- text -> header, { {field=value...}, ... }
local function parse(text)
  local header, rows = nil, {}
  for line in text:gmatch("([^\n]*)\n") do
    local f = fields_of(line)
    if not header then
      header = f
    else
      assert(#f == #header, "wrong field count in: " .. line)
      local row = {}
      for i, name in ipairs(header) do row[name] = f[i] end
      rows[#rows + 1] = row
    end
  end
  return header, rows
end

-- The in-memory sample every test reads (generated once).
local sample
local function get_sample()
  if sample then return sample end
  local s = assert(gen.generate { leads = N, seed = SEED })
  sample = { summary = s, csv = s.csv }
  sample.leads_header, sample.leads = parse(s.csv.leads)
  sample.events_header, sample.events = parse(s.csv.events)
  sample.transitions_header, sample.transitions = parse(s.csv.transitions)
  sample.spend_header, sample.spend = parse(s.csv.spend)
  sample.by_id = {}
  for _, l in ipairs(sample.leads) do sample.by_id[l.id] = l end
  return sample
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

---------------------------------------------------------------------------------------------

local TestRandom = {}

function TestRandom.test_known_answers()
  -- xoshiro256** seeded by splitmix64(0), as in the reference C code
  local r = core.random(0)
  lu.assertEquals(r:next_hex(), "99ec5f36cb75f2b4")
  lu.assertEquals(r:next_hex(), "bf6e1f784956452a")
end

function TestRandom.test_same_seed_same_stream()
  local a, b = core.random(123), core.random(123)
  for _ = 1, 100 do lu.assertEquals(a:uniform(), b:uniform()) end
  lu.assertEquals(core.random("lead"):next_hex(), core.random("lead"):next_hex())
  lu.assertNotEquals(core.random("lead"):next_hex(), core.random("leads"):next_hex())
  lu.assertNotEquals(core.random(1):next_hex(), core.random(2):next_hex())
end

function TestRandom.test_ranges()
  local r = core.random(7)
  local seen = {}
  for _ = 1, 2000 do
    local u = r:uniform()
    lu.assertTrue(u >= 0 and u < 1)
    local k = r:int(-2, 3)
    lu.assertTrue(k >= -2 and k <= 3 and k == floor(k))
    seen[k] = true
    lu.assertTrue(r:exponential(5) >= 0)
    lu.assertTrue(r:pareto(2, 1.5) >= 2)
    lu.assertTrue(r:lognormal(100, 1) > 0)
  end
  for k = -2, 3 do lu.assertTrue(seen[k], "int never drew " .. k) end
  lu.assertEquals(r:int(5, 5), 5)
  lu.assertEquals(string.format("%d", r:int(7, 7)), "7")
  lu.assertEquals(r:int(7, 7) .. "", "7")      -- an integer under 5.3+, so no "7.0"
end

function TestRandom.test_moments()
  local r = core.random(99)
  local n, sum, sq = 20000, 0, 0
  for _ = 1, n do
    local x = r:normal(10, 2)
    sum, sq = sum + x, sq + x * x
  end
  local mean = sum / n
  local var = sq / n - mean * mean
  lu.assertTrue(math.abs(mean - 10) < 0.1, "mean " .. mean)
  lu.assertTrue(math.abs(var - 4) < 0.2, "variance " .. var)
  local below = 0
  for _ = 1, n do if r:lognormal(50, 1) < 50 then below = below + 1 end end
  lu.assertTrue(math.abs(below / n - 0.5) < 0.02, "lognormal median")
end

function TestRandom.test_sampler()
  local r = core.random(3)
  local s = core.sampler({ 1, 0, 3 })
  lu.assertEquals(#s, 3)
  lu.assertStrContains(tostring(s), "leadq.Sampler (3 weights)")
  local counts = { 0, 0, 0 }
  for _ = 1, 8000 do
    local k = s:draw(r)
    counts[k] = counts[k] + 1
  end
  lu.assertEquals(counts[2], 0)
  lu.assertTrue(math.abs(counts[3] / 8000 - 0.75) < 0.03)
end

function TestRandom.test_fork_is_independent_and_deterministic()
  local a = core.random(5)
  local f1 = a:fork()
  local b = core.random(5)
  local f2 = b:fork()
  lu.assertEquals(f1:next_hex(), f2:next_hex())
  lu.assertNotEquals(a:next_hex(), f1:next_hex())
end

function TestRandom.test_misuse_raises_plain_sentences()
  local r = core.random(1)
  lu.assertStrContains(error_of(r.int, r, 5, 1), "empty range: upper bound is below lower bound")
  lu.assertStrContains(error_of(r.int, r, 1.5, 3), "lower bound must be a whole number")
  lu.assertStrContains(error_of(core.random, 0.5), "seed must be a whole number")
  lu.assertStrContains(error_of(core.random, {}), "seed must be a whole number or a string")
  lu.assertStrContains(error_of(core.sampler, {}), "weights must be a non-empty list")
  lu.assertStrContains(error_of(core.sampler, { 1, -1 }), "weight 2 must be a finite number >= 0")
  lu.assertStrContains(error_of(core.sampler, { 0, 0 }), "weights must not all be 0")
  lu.assertStrContains(error_of(core.sampler, { 1, "x" }), "weight 2 is not a number")
  lu.assertStrContains(error_of(r.pareto, r, 1, 0), "shape must be above 0")
end

function TestRandom.test_event_engine_checks_its_config_and_arguments()
  lu.assertStrContains(error_of(core.event_engine, {}), "event engine: config.types must be a table")
  lu.assertStrContains(error_of(core.event_engine, { types = { "a" } }), "config.types must name 11 types")
  local engine = gen.event_engine()
  lu.assertStrContains(tostring(engine), "leadq.EventEngine (365 days")
  local r = core.random(1)
  lu.assertStrContains(error_of(engine.lead, engine, r, "L1", -5, 1, 0.5, 0.5, 2, nil, false),
    "created must be a whole number of seconds within the calendar")
  lu.assertStrContains(error_of(engine.lead, engine, r, "L1", 0, 9, 0.5, 0.5, 2, nil, false),
    "persona must be 1 to 7")
  local rows, _, _, _, bytes = engine:lead(r, "L1", 0, 1, 0.9, 0.9, 2, nil, false)
  lu.assertTrue(rows >= 1 and bytes > 0)
  local text = engine:take()
  lu.assertEquals(#text, bytes)
  lu.assertStrMatches(text, "L1,[a-z_]+,2025%-11%-01T00:00:00Z,.*")
  lu.assertEquals(engine:take(), "")
end

---------------------------------------------------------------------------------------------

local TestGenerate = {}

function TestGenerate.test_same_seed_same_bytes()
  local s = get_sample()
  local again = assert(gen.generate { leads = N, seed = SEED })
  for _, name in ipairs(gen.files) do
    lu.assertTrue(s.csv[name] == again.csv[name], name .. ".csv differs between two runs")
  end
end

function TestGenerate.test_different_seed_different_data()
  local s = get_sample()
  local other = assert(gen.generate { leads = N, seed = SEED + 1 })
  for _, name in ipairs({ "leads", "events", "transitions" }) do
    lu.assertFalse(s.csv[name] == other.csv[name], name .. ".csv is the same for two seeds")
  end
end

function TestGenerate.test_files_match_memory()
  local dir = tmpdir()
  local summary = assert(gen.generate { leads = N, seed = SEED, out = dir })
  local s = get_sample()
  for _, name in ipairs(gen.files) do
    lu.assertEquals(summary.files[name], dir .. "/" .. name .. ".csv")
    local text = read(summary.files[name])
    lu.assertTrue(text == s.csv[name], name .. ".csv on disk differs from the in-memory text")
    lu.assertNil(read(summary.files[name] .. ".tmp"))
    lu.assertEquals(summary[name], s.summary[name])
  end
  remove_dir(dir)
end

-- Same bytes under every Lua: run the other interpreters on their own builds (Lua 5.4 run only).
function TestGenerate.test_same_bytes_under_every_lua()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the Lua 5.4 run compares the other Luas' bytes with its own") end
  local build = os.getenv("LEADQ_BUILD") or "build"
  local s = get_sample()
  local compared = 0
  for _, lua in ipairs({ "lua5.3", "luajit" }) do
    local lib = build .. "/lib/" .. lua .. "/leadq/core.so"
    local has_lua = os.execute("command -v " .. lua .. " >/dev/null 2>&1")
    if read(lib) and (has_lua == true or has_lua == 0) then
      local dir = tmpdir()
      local script = string.format(
        "package.path='lua/?.lua;lua/?/init.lua;'..package.path; package.cpath='%s/lib/%s/?.so';"
        .. "assert(require('leadq.gen').generate{leads=%d, seed=%d, out='%s'})", build, lua, N, SEED, dir)
      local ok = os.execute(lua .. " -e \"" .. script .. "\"")
      lu.assertTrue(ok == true or ok == 0, lua .. " failed to generate")
      for _, name in ipairs(gen.files) do
        lu.assertTrue(read(dir .. "/" .. name .. ".csv") == s.csv[name], name .. ".csv differs under " .. lua)
      end
      remove_dir(dir)
      compared = compared + 1
    end
  end
  lu.assertTrue(compared > 0, "no other Lua build to compare with (make variants)")
end

function TestGenerate.test_headers_and_counts()
  local s = get_sample()
  lu.assertEquals(s.leads_header, gen.columns.leads)
  lu.assertEquals(s.events_header, gen.columns.events)
  lu.assertEquals(s.transitions_header, gen.columns.transitions)
  lu.assertEquals(s.spend_header, gen.columns.spend)
  lu.assertEquals(#s.leads, N)
  lu.assertEquals(s.summary.leads, N)
  lu.assertEquals(s.summary.events, #s.events)
  lu.assertEquals(s.summary.transitions, #s.transitions)
  lu.assertEquals(s.summary.spend, 9 * 12)
  lu.assertTrue(#gen.columns.leads >= 14 and #gen.columns.leads <= 16)
end

function TestGenerate.test_leads_fields()
  local s = get_sample()
  local seen_id = {}
  local seniorities = set_of({ "", "c_level", "vp", "director", "manager", "individual", "entry", "student" })
  local sources = set_of(gen.sources)
  for i, l in ipairs(s.leads) do
    lu.assertEquals(l.id, string.format("L%07d", i))
    lu.assertNil(seen_id[l.id])
    seen_id[l.id] = true
    lu.assertEquals(l.email:match("@(.+)$"), l.email_domain, l.email)
    lu.assertTrue(seniorities[l.seniority], "seniority " .. l.seniority)
    lu.assertTrue(sources[l.source], "source " .. l.source)
    lu.assertStrMatches(l.created_at, "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ")
    lu.assertTrue(l.created_at >= "2025-11-01T00:00:00Z" and l.created_at <= "2026-10-31T23:59:59Z")
    if l.employees ~= "" then lu.assertStrMatches(l.employees, "%d+") end
    if l.budget ~= "" then lu.assertStrMatches(l.budget, "%d+") end
    lu.assertTrue(l.title ~= nil and l.company ~= nil)
  end
end

function TestGenerate.test_events_belong_to_leads_and_follow_creation()
  local s = get_sample()
  local types = set_of(gen.event_types)
  for _, e in ipairs(s.events) do
    local lead = s.by_id[e.lead_id]
    lu.assertNotNil(lead, "event of unknown lead " .. e.lead_id)
    lu.assertTrue(types[e.type], "event type " .. e.type)
    lu.assertTrue(e.at >= lead.created_at, e.lead_id .. ": event at " .. e.at .. " before " .. lead.created_at)
    lu.assertTrue(e.at <= "2026-10-31T23:59:59Z")
    lu.assertStrMatches(e.at, "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ")
    if e.type == "page_view" or e.type == "pricing_view" or e.type == "careers_view"
      or e.type == "webinar_attended" then
      lu.assertStrMatches(e.value, "%d+")
    else
      lu.assertEquals(e.value, "")
    end
    if e.type == "content_download" then lu.assertTrue(e.asset ~= "") end
    if e.type == "email_open" or e.type == "email_click" then lu.assertTrue(e.campaign ~= "") end
  end
end

function TestGenerate.test_events_heavy_tailed()
  local s = get_sample()
  local per = {}
  for _, e in ipairs(s.events) do per[e.lead_id] = (per[e.lead_id] or 0) + 1 end
  local counts = {}
  for _, l in ipairs(s.leads) do counts[#counts + 1] = per[l.id] or 0 end
  table.sort(counts)
  local mean = #s.events / #s.leads
  local median, top = counts[floor(#counts / 2)], counts[#counts]
  lu.assertTrue(mean >= 5 and mean <= 15, "events per lead " .. mean)
  lu.assertTrue(median < mean, "median " .. median .. " below the mean " .. mean)
  lu.assertTrue(top >= 10 * median, "the busiest lead has " .. top .. " events")
end

function TestGenerate.test_noise_is_there()
  local s = get_sample()
  local short, scanner = 0, 0
  local last_open = {}
  for _, e in ipairs(s.events) do
    if e.type == "page_view" and tonumber(e.value) <= 2 then short = short + 1 end
    if e.type == "email_open" then last_open[e.lead_id] = e.at end
    if e.type == "email_click" and last_open[e.lead_id] and e.at:sub(1, 17) == last_open[e.lead_id]:sub(1, 17) then
      scanner = scanner + 1
    end
  end
  lu.assertTrue(short > 0, "no very short page views")
  lu.assertTrue(scanner > 0, "no clicks within seconds of an open")
end

local NEXT = {
  lead = set_of({ "mql", "sal", "sql", "disqualified" }),
  mql = set_of({ "sal", "disqualified", "nurture" }),
  sal = set_of({ "sql", "disqualified", "nurture" }),
  sql = set_of({ "opportunity", "disqualified", "nurture" }),
  opportunity = set_of({ "customer", "disqualified", "nurture" }),
  nurture = set_of({ "mql" }),
  customer = {},
  disqualified = {},
}

function TestGenerate.test_transitions_in_order_and_allowed()
  local s = get_sample()
  local last = {}
  local skipped = 0
  for _, t in ipairs(s.transitions) do
    local lead = s.by_id[t.lead_id]
    lu.assertNotNil(lead)
    local prev = last[t.lead_id]
    if not prev then
      lu.assertEquals(t.stage, "lead")
      lu.assertEquals(t.at, lead.created_at)
    else
      lu.assertTrue(NEXT[prev.stage][t.stage], t.lead_id .. ": " .. prev.stage .. " -> " .. t.stage)
      lu.assertTrue(t.at > prev.at, t.lead_id .. ": " .. t.stage .. " at " .. t.at .. " not after " .. prev.at)
      if prev.stage == "lead" and (t.stage == "sql" or t.stage == "sal") then skipped = skipped + 1 end
    end
    if t.stage == "disqualified" or t.stage == "nurture" then lu.assertTrue(t.reason ~= "") end
    if t.stage == "sal" or t.stage == "sql" or t.stage == "opportunity" or t.stage == "customer" then
      lu.assertTrue(t.owner ~= "", t.stage .. " without an owner")
    end
    lu.assertTrue(t.at <= "2026-10-31T23:59:59Z")
    last[t.lead_id] = t
  end
  for _, l in ipairs(s.leads) do lu.assertNotNil(last[l.id], l.id .. " has no transitions") end
  lu.assertTrue(skipped > 0, "no lead skips a stage")
end

function TestGenerate.test_spend()
  local s = get_sample()
  local seen = {}
  for _, r in ipairs(s.spend) do
    lu.assertStrMatches(r.month, "20%d%d%-%d%d")
    lu.assertStrMatches(r.spend, "%d+%.%d%d")
    seen[r.source .. " " .. r.month] = true
  end
  lu.assertTrue(seen["paid_search 2025-11"] and seen["event 2026-10"])
  lu.assertEquals(s.spend[1].month, "2025-11")
  lu.assertEquals(s.spend[12].month, "2026-10")
end

function TestGenerate.test_negative_signals_present()
  local s = get_sample()
  local personal = set_of(gen.personal_domains)
  local competitor = set_of(gen.competitor_domains)
  local n_personal, n_competitor, n_student, n_internal = 0, 0, 0, 0
  for _, l in ipairs(s.leads) do
    if personal[l.email_domain] then n_personal = n_personal + 1 end
    if competitor[l.email_domain] then n_competitor = n_competitor + 1 end
    if l.seniority == "student" then n_student = n_student + 1 end
    if l.email_domain == gen.internal_domain then n_internal = n_internal + 1 end
  end
  local share = n_personal / #s.leads
  lu.assertTrue(share > 0.08 and share < 0.35, "personal e-mail share " .. share)
  lu.assertTrue(n_competitor > 0 and n_student > 0 and n_internal > 0)
  local reasons = {}
  for _, t in ipairs(s.transitions) do reasons[t.reason] = true end
  for _, r in ipairs({ "competitor", "student", "job_seeker", "bad_data", "no_budget" }) do
    lu.assertTrue(reasons[r], "no disqualification for " .. r)
  end
end

function TestGenerate.test_some_people_come_twice()
  local s = get_sample()
  local seen, twice = {}, {}
  for _, l in ipairs(s.leads) do
    local key = l.email
    if seen[key] and l.email_domain ~= "test.com" and not key:find("@mailinator.com", 1, true)
      and l.first_name == seen[key].first_name then
      twice[#twice + 1] = l
    end
    seen[key] = seen[key] or l
  end
  lu.assertTrue(#twice >= 2, #twice .. " repeated e-mail addresses")
  lu.assertTrue(#twice < #s.leads * 0.05)
  local merged = 0
  for _, t in ipairs(s.transitions) do
    if t.stage == "disqualified" and t.reason == "duplicate" then merged = merged + 1 end
  end
  lu.assertTrue(merged > 0, "no duplicate merged")
end

-- Leads that fit the profile reach SQL far more often: a scoring model has something to find.
function TestGenerate.test_fit_converts_more()
  local s = get_sample()
  local personal = set_of(gen.personal_domains)
  local reached = {}
  for _, t in ipairs(s.transitions) do
    if t.stage == "sql" or t.stage == "opportunity" or t.stage == "customer" then reached[t.lead_id] = true end
  end
  local high, high_sql, low, low_sql = 0, 0, 0, 0
  for _, l in ipairs(s.leads) do
    local employees = tonumber(l.employees) or 0
    local senior = l.seniority == "c_level" or l.seniority == "vp" or l.seniority == "director"
    if senior and employees >= 200 and employees <= 5000 and not personal[l.email_domain] then
      high = high + 1
      if reached[l.id] then high_sql = high_sql + 1 end
    elseif l.seniority == "student" or l.seniority == "entry" or personal[l.email_domain] or employees < 10 then
      low = low + 1
      if reached[l.id] then low_sql = low_sql + 1 end
    end
  end
  lu.assertTrue(high >= 30 and low >= 100, "groups too small")
  lu.assertTrue(high_sql / high > 2 * (low_sql / low),
    string.format("high fit %.3f vs low fit %.3f", high_sql / high, low_sql / low))
end

function TestGenerate.test_loads_in_the_columnar_table()
  local leadq = require("leadq")
  local s = get_sample()
  local t = leadq.parse_csv(s.csv.leads)
  lu.assertEquals(#t, N)
  lu.assertEquals(#t:rejects(), 0)
  local types = {}
  for _, c in ipairs(t:schema()) do types[c.name] = c.type end
  lu.assertEquals(types.employees, "number")
  lu.assertEquals(types.budget, "number")
  lu.assertEquals(types.created_at, "time")
  lu.assertEquals(types.industry, "category")
end

function TestGenerate.test_bad_options()
  lu.assertStrContains(error_of(gen.generate, { leads = 0 }), "leads must be a whole number from 1")
  lu.assertStrContains(error_of(gen.generate, { leads = 2.5 }), "leads must be a whole number")
  lu.assertStrContains(error_of(gen.generate, { leads = 10, sede = 1 }), "unknown option 'sede'")
  lu.assertStrContains(error_of(gen.generate, { leads = 10, seed = -1 }), "seed must be a whole number from 0")
  lu.assertStrContains(error_of(gen.generate, "x"), "generate expects a table of options")
  local summary, err = gen.generate { leads = 5, seed = 1, out = "/proc/leadq-cannot-write-here" }
  lu.assertNil(summary)
  lu.assertStrContains(err, "cannot create or write to directory '/proc/leadq-cannot-write-here'")
end

function TestGenerate.test_string_seed_and_small_runs()
  local a = assert(gen.generate { leads = 1, seed = "campaign" })
  local b = assert(gen.generate { leads = 1, seed = "campaign" })
  lu.assertEquals(a.csv.leads, b.csv.leads)
  lu.assertEquals(a.leads, 1)
end

return { TestRandom = TestRandom, TestGenerate = TestGenerate }
