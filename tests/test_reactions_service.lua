-- The service's reactions across workers and over a lead's lifecycle: two workers recording changes
-- of one lead keep its order and each change is said by the answer that made it; a recycle that
-- resets engagement starts the lead's features afresh, as bulk features of the later events give.
local lu = require("luaunit")
local core = require("leadq.core")
local json = require("leadq.json")
local leadq = require("leadq")
local outbox = require("leadq.outbox")
local reactions = require("leadq.reactions")
local reactor = require("leadq.reactor")
local service = require("leadq.service")

local M = {}

local T0 = 1767225600   -- 2026-01-01T00:00:00Z, a Thursday
local DAY = 86400

local REACTIONS = [[
webhook "crm" { url = "http://127.0.0.1:9/hooks" }
on { model = "engagement", to = "mql", webhook = "crm", assign = true, transition = "mql" }
on { model = "engagement", from = "mql", webhook = "crm" }
route { owner = "anna" }
recycle { not_accepted_days = 14, reason = "not worked", reset_engagement = %s }
]]

-- Two workers of one server: their own service and reactor (per-worker caches), one leads store,
-- one lock store and one outbox store between them, as the shared dicts are in nginx.
local function two_workers(clock, reset)
  local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(REACTIONS:format(reset and "true" or "false"), "reactions.lua"))
  local leads, locks, box = service.memory_store(), service.memory_store(), service.memory_store()
  local workers = {}
  for i = 1, 2 do
    local ob = outbox.new{ store = box, clock = clock }
    local rx = reactor.new{ reactions = r, outbox = ob, model = "engagement", clock = clock }
    workers[i] = service.new{ model = model, store = leads, locks = locks, clock = clock, reactor = rx }
  end
  return workers, outbox.new{ store = box, clock = clock }, locks
end

local function view(svc, id)
  local status, answer = svc:handle("POST", "/events", json.encode({ lead = id, type = "pricing_view" }))
  lu.assertEquals(status, 200)
  return answer
end

M.TestReactionsAcrossWorkers = {}

-- Worker A's event crosses the threshold; worker B's event of the same lead runs the moment A lets
-- the lead's lock go. The change is A's: A's answer says it, B's does not, and the outbox holds
-- exactly one fact, stamped with A's time.
function M.TestReactionsAcrossWorkers.test_the_answer_that_crosses_says_so_when_another_worker_follows()
  local now = T0
  local clock = function() return now end
  local workers, ob, locks = two_workers(clock, false)
  local a, b = workers[1], workers[2]
  lu.assertEquals(a:handle("POST", "/leads/L", '{"seniority":"VP","employees":900}'), 201)
  now = now + 60
  view(a, "L")
  now = now + 60
  view(b, "L")
  -- A's third view; B's fourth runs inside A's unlock (the instant A lets go), a few ms later
  local delete, b_answer = locks.delete, nil
  locks.delete = function(store, key)
    delete(store, key)
    if key == "l:L" and b_answer == nil then
      b_answer = false
      local saved = now
      now = now + 0.004
      b_answer = view(b, "L")
      now = saved
    end
  end
  now = now + 60
  local crossing = view(a, "L")
  locks.delete = delete
  lu.assertEquals(crossing.status, "mql")
  lu.assertEquals(crossing.changed, { model = "engagement", from = "nurture", to = "mql", at = now })
  lu.assertEquals(b_answer.status, "mql")
  lu.assertNil(b_answer.changed)
  local facts = ob:pending()
  lu.assertEquals(#facts, 1)
  local body = json.decode(facts[1].body)
  lu.assertEquals({ body.from, body.to, body.at, body.owner }, { "nurture", "mql", leadq.format_time(now), "anna" })
end

-- A worker that finds the lead's reaction lock taken (another worker records a change of it) waits
-- for it and records its own change in its own answer: it does not leave it to a later answer.
function M.TestReactionsAcrossWorkers.test_a_taken_reaction_lock_is_waited_for()
  local now = T0
  local clock = function() return now end
  local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(REACTIONS:format("false"), "reactions.lua"))
  local box = service.memory_store()
  local waited = 0
  local rx = reactor.new{ reactions = r, outbox = outbox.new{ store = box, clock = clock }, model = "engagement",
    clock = clock, sleep = function(s)
      waited = waited + 1
      now = now + s
      if waited == 3 then box:delete("x:l:L") end   -- the other worker is done
    end }
  local svc = service.new{ model = model, store = service.memory_store(), clock = clock, reactor = rx }
  box:safe_add("x:l:L", true, 2)   -- another worker holds the lead's reaction lock
  local status, answer = svc:handle("POST", "/leads/L", '{"seniority":"VP","employees":900}')
  lu.assertEquals(status, 201)
  lu.assertEquals(waited, 3)
  lu.assertEquals(answer.changed, { model = "engagement", to = "nurture", at = now })
  -- the next answer has nothing left to say late
  lu.assertNil(select(2, svc:handle("GET", "/leads/L")).changed)
end

-- The change times of one lead never go back, even from a worker whose clock is behind.
function M.TestReactionsAcrossWorkers.test_change_times_of_a_lead_never_go_back()
  local now = T0
  local skew = { 0, -0.005 }   -- worker 2's cached clock is 5 ms behind worker 1's
  local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(REACTIONS:format("false"), "reactions.lua"))
  local leads, box = service.memory_store(), service.memory_store()
  local workers = {}
  for i = 1, 2 do
    local clock = function() return now + skew[i] end
    local rx = reactor.new{ reactions = r, outbox = outbox.new{ store = box, clock = clock }, model = "engagement",
      clock = clock }
    workers[i] = service.new{ model = model, store = leads, clock = clock, reactor = rx }
  end
  local first = select(2, workers[1]:handle("POST", "/leads/L", '{"seniority":"VP"}'))
  lu.assertEquals(first.changed.at, now)
  now = now + 0.001
  local second = select(2, workers[2]:handle("POST", "/leads/L", '{"seniority":"VP","employees":900}'))
  lu.assertEquals({ second.changed.from, second.changed.to }, { "cold", "nurture" })
  lu.assertEquals(second.changed.at, first.changed.at)   -- not 4 ms before the change it follows
end

M.TestRecycleResetsEngagement = {}

local function engagement_of(answer)
  return { answer.features.pricing_views_30d, answer.groups.engagement }
end

-- Recycled with reset_engagement: the views before the recycle no longer count, and the lead's
-- features equal bulk features computed from its events after the recycle. Without reset, they count.
function M.TestRecycleResetsEngagement.test_features_restart_after_a_recycle_and_agree_with_bulk()
  for _, reset in ipairs({ true, false }) do
    local now = T0
    local clock = function() return now end
    local workers, ob = two_workers(clock, reset)
    local svc = workers[1]
    local rx = svc.reactor
    svc:handle("POST", "/leads/L", '{"seniority":"VP","employees":900}')
    for _ = 1, 3 do
      now = now + 3600
      view(svc, "L")
    end
    lu.assertEquals((rx:lifecycle("L")), "mql")
    -- 14 days unaccepted: the timer recycles the lead (timers run from the delivering worker)
    now = now + 14 * DAY
    rx.timers:round(function(f) return rx:timer(f) end)
    lu.assertEquals((rx:lifecycle("L")), "nurture")
    lu.assertEquals(ob:metric("recycles"), 1)
    local recycled_at = now
    now = now + 3600
    local after = {}
    local answer = view(workers[2], "L")   -- another worker: the reset is in the shared store
    after[1] = { lead_id = "L", type = "pricing_view", at = now }
    if reset then
      lu.assertEquals(engagement_of(answer), { 1, 10 })   -- the new view only
      lu.assertEquals(answer.status, "nurture")
      -- bulk: the features of the events after the recycle, as of the answer's time
      local fs = svc.features
      local leads = core.table({ { id = "L" } })
      local events = core.table(after, { lead_id = "category", type = "category", at = "time" })
      local bulk = assert(fs:compute(leads, events, { as_of = now }))
      for _, name in ipairs(fs:names()) do
        lu.assertEquals(answer.features[name], bulk:column(name)[1], name)
      end
      lu.assertTrue(recycled_at < after[1].at)
    else
      lu.assertEquals(engagement_of(answer), { 0 + 4, 25 })   -- the 3 views before the recycle count on
    end
  end
end

-- The same on a compare-and-set store (Redis, through hiredis): the recycle writes an empty state
-- over the lead's, and the worker's cached stamp is dropped.
function M.TestRecycleResetsEngagement.test_on_a_redis_store_too()
  local redis_server = require("nginx.redis_server")
  local ok, err = redis_server.install_deps()
  if not ok then lu.fail(err) end
  local available, why = redis_server.available()
  if not available then lu.fail(why) end
  local redis = assert(redis_server.start())
  local passed, failure = pcall(function()
    local st = require("leadq.store").redis{ port = redis.port, db = 1, client = "hiredis", timeout = 2 }
    assert(st.client:call("flushdb"))
    local now = T0
    local clock = function() return now end
    local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
    local r = assert(reactions.load_string(REACTIONS:format("true"), "reactions.lua"))
    local rx = reactor.new{ reactions = r, outbox = outbox.new{ store = service.memory_store(), clock = clock },
      model = "engagement", clock = clock }
    local svc = service.new{ model = model, store = st, clock = clock, reactor = rx }
    svc:handle("POST", "/leads/L", '{"seniority":"VP","employees":900}')
    for _ = 1, 3 do
      now = now + 60
      view(svc, "L")
    end
    now = now + 14 * DAY
    rx.timers:round(function(f) return rx:timer(f) end)
    lu.assertEquals((rx:lifecycle("L")), "nurture")
    now = now + 60
    lu.assertEquals(engagement_of(view(svc, "L")), { 1, 10 })
    -- another worker reads the lead from Redis: the same
    local other = service.new{ model = model, store = st, clock = clock }
    lu.assertEquals(engagement_of(select(2, other:handle("GET", "/leads/L"))), { 1, 10 })
  end)
  redis:remove()
  if not passed then error(failure, 0) end
end

M.TestSlaBreachesInTheFunnel = {}

local SLA_REACTIONS = [[
webhook "crm" { url = "http://127.0.0.1:9/hooks" }
webhook "manager" { url = "http://127.0.0.1:9/sla" }
on { model = "engagement", to = "mql", webhook = "crm", assign = true, transition = "mql" }
route { owner = "anna" }
sla { accept_within_hours = 4, working_hours = { from = 9, to = 17, zone = "%s" }, webhook = "manager" }
]]

-- The breaches the service's timers send are the breaches the funnel counts from the transitions
-- the service logged, timed by the same working hours in the same zone (Paris, across the March
-- change to summer time); a funnel timing them in UTC's hours would count fewer.
function M.TestSlaBreachesInTheFunnel.test_the_service_and_the_funnel_count_the_same_breaches()
  local funnel = require("leadq.funnel")
  local now = 1774620000   -- Friday 2026-03-27 14:00Z, 15:00 in Paris: the SLA ends Monday 09:00Z
  local clock = function() return now end
  local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(SLA_REACTIONS:format("Europe/Paris"), "reactions.lua"))
  local ob = outbox.new{ store = service.memory_store(), clock = clock }
  local rx = reactor.new{ reactions = r, outbox = ob, model = "engagement", clock = clock }
  local svc = service.new{ model = model, store = service.memory_store(), clock = clock, reactor = rx }
  for _, id in ipairs({ "A", "B", "C" }) do
    svc:handle("POST", "/leads/" .. id, '{"seniority":"VP","employees":900}')
    for _ = 1, 3 do view(svc, id) end
  end
  local function timers() rx.timers:round(function(f) return rx:timer(f) end) end
  now = 1774859400   -- Monday 08:30Z: A accepted in time
  assert(rx:accept("A", now))
  timers()
  now = 1774861200 + 1   -- Monday 09:00:01Z: past B's and C's deadline
  timers()
  now = 1774863000   -- 09:30Z: B accepted late; C never
  assert(rx:accept("B", now))
  now = 1774872000   -- 12:00Z: a new lead, the log's latest time (the funnel's as of)
  svc:handle("POST", "/leads/Z", '{"seniority":"VP"}')
  local sent = {}
  for _, f in ipairs(ob:pending()) do
    local body = json.decode(f.body)
    if body.event == "lead.sla_breached" then sent[#sent + 1] = body.lead end
  end
  table.sort(sent)
  lu.assertEquals(sent, { "B", "C" })
  -- the service's transitions, as GET /.leadq/transitions gives them
  local text, last = rx:transitions_csv()
  lu.assertStrContains(text, "lead_id,stage,at,reason,owner\nA,lead,2026-03-27T14:00:00Z,,\n")
  lu.assertStrContains(text, "A,mql,2026-03-27T14:00:00Z,,anna\n")
  lu.assertStrContains(text, "B,sal,2026-03-30T09:30:00Z,,anna\n")
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  local function funnel_breaches(reactions_object)
    local opts = reactions_object:funnel_sla()
    local _, tab, rejects = assert(funnel.run{ transitions = path, format = "json", sla_working = opts.sla_working,
      sla_days = opts.sla_days })
    lu.assertEquals(#rejects, 0)
    local leads = {}
    for _, b in ipairs(tab.breaches) do leads[#leads + 1] = b.lead end
    table.sort(leads)
    return leads
  end
  lu.assertEquals(funnel_breaches(r), { "B", "C" })
  local utc = assert(reactions.load_string(SLA_REACTIONS:format("UTC"), "reactions.lua"))
  lu.assertEquals(funnel_breaches(utc), { "C" })   -- B's 09:30Z is within UTC's hours (deadline 10:00Z)
  -- the command: leadq funnel --reactions takes the script's SLA
  local script = os.tmpname()
  f = assert(io.open(script, "w"))
  f:write(SLA_REACTIONS:format("Europe/Paris"))
  f:close()
  local p = io.popen(string.format("%s/leadq funnel --transitions %s --reactions %s --format json 2>&1",
    os.getenv("LEADQ_BUILD") or "build", path, script))
  local out = p:read("*a")
  p:close()
  os.remove(script)
  local report = json.decode(out)
  lu.assertNotNil(report, out)
  local leads = {}
  for _, breach in ipairs(report.breaches) do leads[#leads + 1] = breach.lead end
  table.sort(leads)
  lu.assertEquals(leads, { "B", "C" })
  os.remove(path)
  -- an export forgets what it took; later rows come after
  lu.assertEquals(rx:forget_transitions(last), 9)   -- 4 leads seen, 3 hand-offs, 2 accepted
  lu.assertEquals(rx:transitions_csv(), "lead_id,stage,at,reason,owner\n")
end

return M
