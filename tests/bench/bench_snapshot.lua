-- Snapshots: leadq.read_snapshot of the 1M generated leads (and of leads with their 8.8M events, read
-- and mapped) against leadq.read_csv of the same files, runs interleaved, the least of 3 wall times each.
local report = require("report")
local leadq = require("leadq")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42                  -- the same files as bench_score.lua: generated once, shared
local DIR = "build/bench"
assert(report.sample(DIR, N, SEED), "bench_snapshot needs leadq.gen for its sample")

local wall = report.wall

-- Interleaved A/B: a CSV read then a snapshot read, `runs` times; the least of each.
local function interleaved(runs, read_csv, read_snapshot)
  local best_csv, best_snapshot = math.huge, math.huge
  for _ = 1, runs do
    collectgarbage()
    local t0 = wall()
    local a = read_csv()
    local t1 = wall()
    for _, t in pairs(a) do t:close() end
    collectgarbage()
    local t2 = wall()
    local b = read_snapshot()
    local t3 = wall()
    for _, t in pairs(b) do t:close() end
    best_csv = math.min(best_csv, t1 - t0)
    best_snapshot = math.min(best_snapshot, t3 - t2)
  end
  return best_csv, best_snapshot
end

local leads_path, events_path = DIR .. "/leads.csv", DIR .. "/events.csv"
local snapshot_leads = DIR .. "/bench_snapshot_leads.lqs"
local snapshot_both = DIR .. "/bench_snapshot_both.lqs"

local leads = assert(leadq.read_csv(leads_path))
local events = assert(leadq.read_events(events_path))
assert(leadq.save_snapshot(snapshot_leads, { leads = leads }))
assert(leadq.save_snapshot(snapshot_both, { leads = leads, events = events }))
-- what is read back is what was loaded
local check = assert(leadq.read_snapshot(snapshot_both))
assert(#check.leads == #leads and #check.events == #events, "the snapshot's row counts differ")
for _, c in ipairs(leads:schema()) do
  local a, b = leads:column(c.name), check.leads:column(c.name)
  for i = 1, #leads, 997 do assert(a[i] == b[i] or type(a[i]) == "table", "column " .. c.name .. " differs") end
end
check.leads:close()
check.events:close()
leads:close()
events:close()

local csv_s, snapshot_s = interleaved(3,
  function() return { assert(leadq.read_csv(leads_path)) } end,
  function() local s = assert(leadq.read_snapshot(snapshot_leads)); return { s.leads } end)
report.line(string.format("read %dk leads: snapshot vs CSV", math.floor(N / 1000)), snapshot_s * 1000, "ms",
  "read_csv", csv_s * 1000, "ms", false)

csv_s, snapshot_s = interleaved(2,
  function() return { assert(leadq.read_csv(leads_path)), assert(leadq.read_events(events_path)) } end,
  function() local s = assert(leadq.read_snapshot(snapshot_both)); return { s.leads, s.events } end)
report.line(string.format("read %dk leads with their events: snapshot vs CSV", math.floor(N / 1000)),
  snapshot_s * 1000, "ms", "read_csv + read_events", csv_s * 1000, "ms", false)

-- mapped, as the command line reads it: every column, its checksums on 2 threads, no copy
csv_s, snapshot_s = interleaved(2,
  function() return { assert(leadq.read_csv(leads_path)), assert(leadq.read_events(events_path)) } end,
  function()
    local s = assert(leadq.read_snapshot(snapshot_both, { map = true, threads = 2 }))
    return { s.leads, s.events }
  end)
report.line(string.format("read %dk leads with their events: snapshot mapped vs CSV", math.floor(N / 1000)),
  snapshot_s * 1000, "ms", "read_csv + read_events", csv_s * 1000, "ms", false)

os.remove(snapshot_leads)
os.remove(snapshot_both)
