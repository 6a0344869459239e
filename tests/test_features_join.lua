-- The join of the events' lead ids to the leads: by merge when both come sorted, else by hashing.
-- Ids that order differently by their first bytes, their length or their high bytes; ids of no lead;
-- leads of no event: leads in id order (the merge, on one thread and several) and shuffled (hashing)
-- give every lead the same values.
local lu = require("luaunit")
local core = require("leadq.core")
local features = require("leadq.features")

local M = {}
M.TestFeaturesJoin = {}
local T = M.TestFeaturesJoin

local T0 = 1780012800
local EVENT_SCHEMA = { lead_id = "category", type = "category", at = "time" }

-- Ids close in byte order: prefixes of each other, equal for their first 8 or 16 bytes, with bytes
-- past 0x7f (which sort after ASCII), of 1 to 20 bytes.
local function ids()
  local out, seen = {}, {}
  local function add(s)
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  for i = 1, 300 do
    add("L" .. i)
    add(string.format("customer-%08d-x", i))
    add(string.format("customer-%08d-y", i))
    add(string.format("customer-%08d", i))
    add(string.format("account-1234567890-%d", i))
    add("\xc3\xa9" .. i)
    add("Z" .. i .. "\xff")
  end
  add("a")
  add("\xff")
  table.sort(out)   -- byte order, as the merge reads it
  return out
end

local function events_for(list, n)
  local recs, x, named = {}, 7, {}
  for i, id in ipairs(list) do if i % 5 ~= 0 then named[#named + 1] = id end end   -- a lead in 5 has none
  for k = 1, n do
    x = (16807 * x) % 2147483647
    local id = (x % 9 == 0) and ("nobody-" .. x % 50) or named[x % #named + 1]   -- some ids no lead has
    recs[k] = { lead_id = id, type = (k % 2 == 0) and "page_view" or "email_open", at = T0 - (x % 5000) * 60 }
  end
  table.sort(recs, function(a, b) return a.lead_id < b.lead_id end)   -- sorted dictionary codes
  return core.table(recs, EVENT_SCHEMA)
end

local function leads_of(list)
  local recs = {}
  for i, id in ipairs(list) do recs[i] = { id = id } end
  return core.table(recs, { id = "category" })
end

function T.test_merge_and_hash_joins_agree_on_close_ids()
  local list = ids()
  local fs = features.new({ views = { count = "page_view" }, opens = { count = "email_open" }, last = { last = "*" } })
  local evs = events_for(list, 30000)
  local shuffled, x = {}, 3
  for i, id in ipairs(list) do shuffled[i] = id end
  for i = #shuffled, 2, -1 do
    x = (16807 * x) % 2147483647
    local j = x % i + 1
    shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
  end
  local by_hash, hash_report = assert(fs:compute(leads_of(shuffled), evs, { as_of = T0 }))
  lu.assertEquals(hash_report.join, "hash")
  local want = {}
  for i, id in ipairs(shuffled) do want[id] = by_hash:row(i) end
  for _, threads in ipairs({ 1, 2, 3 }) do
    local by_merge, report = assert(fs:compute(leads_of(list), evs, { as_of = T0, threads = threads }))
    for i, id in ipairs(list) do
      local got, w = by_merge:row(i), want[id]
      lu.assertEquals(got.views, w.views, string.format("lead %q, %d threads", id, threads))
      lu.assertEquals(got.opens, w.opens, string.format("lead %q, %d threads", id, threads))
      lu.assertEquals(got.last, w.last, string.format("lead %q, %d threads", id, threads))
    end
    lu.assertEquals(report.join, "merge")
    lu.assertEquals(report.unknown_leads, hash_report.unknown_leads)
    lu.assertEquals(report.used, hash_report.used)
  end
  -- what the check relies on: ids of no lead among the events, leads with no event
  lu.assertTrue(hash_report.unknown_leads > 0)
  local quiet = 0
  for _, id in ipairs(list) do if want[id].views == 0 and want[id].opens == 0 then quiet = quiet + 1 end end
  lu.assertTrue(quiet > 0 and quiet < #list)
end

return M
