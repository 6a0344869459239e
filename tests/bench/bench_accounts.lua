-- Account rollup: 1M scored leads rolled up into 100k accounts (contacts, engaged contacts, sum,
-- max and best contact, mean of the top 3, four buying-committee personas present and engaged),
-- against the same rollup in plain Lua over Lua arrays. One core (os.clock), best of 3 each; building
-- the inputs is not timed. LEADQ_BENCH_ACCOUNT_LEADS / _ACCOUNTS set other sizes.
local report = require("report")
local core = require("leadq.core")
local leadq = require("leadq")

local LEADS = tonumber(os.getenv("LEADQ_BENCH_ACCOUNT_LEADS")) or 1000000
local ACCOUNTS = tonumber(os.getenv("LEADQ_BENCH_ACCOUNT_ACCOUNTS")) or 100000
local TOP_K, ENGAGED_AT = 3, 25
local PERSONAS = { "champion", "decision_maker", "finance", "technical_evaluator" }

-- inputs: account names (5% of leads without one), scores (2% missing), persona bit masks
local accs, scores, masks, ids = {}, {}, {}, {}
math.randomseed(42)
local random = math.random
local function rand(m) return random(0, m - 1) end
for i = 1, LEADS do
  accs[i] = rand(20) ~= 0 and ("acct" .. rand(ACCOUNTS) .. ".com") or nil
  scores[i] = rand(50) ~= 0 and (rand(121) - 20) or nil
  masks[i] = rand(4) == 0 and (1 << rand(4)) or 0
  ids[i] = "L" .. i
end
local tbl = leadq.table({}, { id = "text", account = "category", score = "number", personas = "number" })
local CHUNK = 50000
for first = 1, LEADS, CHUNK do
  local recs = {}
  for i = first, math.min(LEADS, first + CHUNK - 1) do
    recs[#recs + 1] = { id = ids[i], account = accs[i], score = scores[i], personas = masks[i] }
  end
  tbl:append(recs)
end

local spec = { account = "account", score = "score", top_k = TOP_K, engaged_at = ENGAGED_AT, personas = "personas",
               persona_names = PERSONAS, id = "id" }

local function lua_rollup()
  local by, order = {}, {}
  for i = 1, LEADS do
    local a = accs[i]
    if a ~= nil then
      local r = by[a]
      if r == nil then
        r = { contacts = 0, scored = 0, engaged = 0, sum = 0, max = nil, best = nil, present = 0, engaged_bits = 0,
              t1 = nil, t2 = nil, t3 = nil }
        by[a] = r
        order[#order + 1] = a
      end
      r.contacts = r.contacts + 1
      local bits = masks[i]
      r.present = r.present | bits
      local s = scores[i]
      if s ~= nil then
        r.scored = r.scored + 1
        r.sum = r.sum + s
        if s >= ENGAGED_AT then
          r.engaged = r.engaged + 1
          r.engaged_bits = r.engaged_bits | bits
        end
        if r.max == nil or s > r.max then r.max, r.best = s, ids[i] end
        if r.t1 == nil or s > r.t1 then r.t1, r.t2, r.t3 = s, r.t1, r.t2
        elseif r.t2 == nil or s > r.t2 then r.t2, r.t3 = s, r.t2
        elseif r.t3 == nil or s > r.t3 then r.t3 = s end
      end
    end
  end
  local out = {}
  for n, a in ipairs(order) do
    local r = by[a]
    local k = math.min(r.scored, TOP_K)
    local top = (r.t1 or 0) + (r.t2 or 0) + (r.t3 or 0)
    local present, engaged = 0, 0
    for p = 0, #PERSONAS - 1 do
      present = present + ((r.present >> p) & 1)
      engaged = engaged + ((r.engaged_bits >> p) & 1)
    end
    out[n] = { account = a, contacts = r.contacts, engaged_contacts = r.engaged, score_sum = r.sum, score_max = r.max,
               best_contact = r.best, top_sum = top, top_mean = k > 0 and top / k or nil,
               personas_present = present, personas_engaged = engaged }
  end
  return out
end

local function best_of(n, f)
  local best, result = math.huge, nil
  for _ = 1, n do
    collectgarbage()
    local t0 = report.clock()
    result = f()
    local t = report.clock() - t0
    if t < best then best = t end
  end
  return best, result
end

local c_time, acc = best_of(3, function() return core.account_rollup({ tbl }, spec) end)
local lua_time, plain = best_of(3, lua_rollup)

-- the two agree (same accounts in the same order, same figures)
assert(#acc == #plain, string.format("rollup: %d accounts in C, %d in Lua", #acc, #plain))
local cols = {}
for _, name in ipairs({ "account", "contacts", "engaged_contacts", "score_sum", "score_max", "best_contact", "top_sum",
                        "personas_present", "personas_engaged" }) do
  cols[name] = acc:column(name)
end
for i = 1, #plain, 97 do
  for name, values in pairs(cols) do
    assert(values[i] == plain[i][name], string.format("rollup: account %d, %s: C %s, Lua %s", i, name,
      tostring(values[i]), tostring(plain[i][name])))
  end
end

report.line(string.format("account rollup, %dk leads into %dk accounts", LEADS // 1000, #acc // 1000),
  c_time * 1000, "ms", "plain Lua", lua_time * 1000, "ms", false)
tbl:close()
acc:close()

-- Dedupe: generated leads and their events (the generator's duplicates), the kept leads and moved
-- events copied in C (accounts.dedupe), against the same copies made row by row in Lua tables (what
-- dedupe did before). The merges are found the same way in both (timed in both). LEADQ_BENCH_DEDUPE_LEADS.
local accounts = require("leadq.accounts")
local DEDUPE_LEADS = tonumber(os.getenv("LEADQ_BENCH_DEDUPE_LEADS")) or 50000
local dir = os.tmpname()
os.remove(dir)
assert(require("leadq.gen").generate { leads = DEDUPE_LEADS, seed = 5, out = dir })
local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
local events = assert(leadq.read_events(dir .. "/events.csv"))
for _, name in ipairs(require("leadq.gen").files) do os.remove(dir .. "/" .. name .. ".csv") end
os.remove(dir)

local function lua_dedupe()
  local _, _, merges = accounts.dedupe(leads)          -- the merges, and a copy of the leads in C ...
  local merged, survivor = {}, {}
  for _, m in ipairs(merges) do merged[m.merged_row], survivor[tostring(m.merged)] = true, m.kept end
  local recs = {}                                      -- ... then the copies row by row, as before
  for i = 1, #leads do if not merged[i] then recs[#recs + 1] = leads:row(i) end end
  local evs = {}
  for i = 1, #events do
    local e = events:row(i)
    e.lead_id = survivor[tostring(e.lead_id)] or e.lead_id
    evs[i] = e
  end
  return core.table(recs, leads:schema()), core.table(evs, events:schema()), merges
end

local dedupe_c, kept_c = best_of(3, function() return (accounts.dedupe(leads, events)) end)
local dedupe_lua, kept_lua = best_of(1, lua_dedupe)
assert(#kept_c == #kept_lua, string.format("dedupe: %d leads kept in C, %d in Lua", #kept_c, #kept_lua))
report.line(string.format("dedupe, %dk leads + %dk events", DEDUPE_LEADS // 1000, #events // 1000),
  dedupe_c * 1000, "ms", "row by row in Lua", dedupe_lua * 1000, "ms", false)
