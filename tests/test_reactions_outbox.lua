-- The service's reactions outside nginx: the outbox (order per lead, backoff, dead letters, replay),
-- the reactor (status changes recorded once, `changed` in the answer, facts signed) and the webhook
-- client's request text against a real socket server.
local lu = require("luaunit")
local json = require("leadq.json")
local outbox = require("leadq.outbox")
local reactions = require("leadq.reactions")
local reactor = require("leadq.reactor")
local service = require("leadq.service")
local webhook = require("leadq.webhook")
local leadq = require("leadq")

local M = {}

local function new_outbox(clock, opts)
  opts = opts or {}
  return outbox.new{ store = service.memory_store(), clock = clock, max_attempts = opts.max_attempts or 3,
    backoff = 10, max_backoff = 15, lanes = opts.lanes }
end

M.TestOutbox = {}

function M.TestOutbox.test_in_order_per_lead_with_backoff_and_dead_letters()
  local now = 1000
  local ob = new_outbox(function() return now end)
  for i = 1, 3 do
    assert(ob:put{ lead = "A", webhook = "crm", body = "a" .. i })
    assert(ob:put{ lead = "B", webhook = "crm", body = "b" .. i })
  end
  local sent, down = {}, { A = true }
  local function send(fact)
    sent[#sent + 1] = fact.body
    if down[fact.lead] then return false, "connection refused" end
    return true
  end
  lu.assertEquals({ ob:round(send) }, { 3, 1 })
  -- A's first failed: its later facts wait behind it; B's all went, in order
  lu.assertEquals(sent, { "a1", "b1", "b2", "b3" })
  lu.assertEquals(ob:size(), 3)
  sent = {}
  now = now + 9   -- backoff 10 s: not due yet
  lu.assertEquals({ ob:round(send) }, { 0, 0 })
  now = now + 1
  lu.assertEquals({ ob:round(send) }, { 0, 1 })
  lu.assertEquals(sent, { "a1" })
  local pending = ob:pending()
  lu.assertEquals(pending[1].attempts, 2)
  lu.assertEquals(pending[1].next_at, now + 15)   -- 10 * 2, at most 15
  lu.assertEquals(pending[1].error, "connection refused")
  now = now + 15
  lu.assertEquals({ ob:round(send) }, { 0, 1 })   -- the third attempt: a dead letter
  local dead = ob:dead_letters()
  lu.assertEquals(#dead, 1)
  lu.assertEquals({ dead[1].lead, dead[1].body, dead[1].key, dead[1].attempts }, { "A", "a1", "A-1", 3 })
  -- the lead's next facts go on
  down.A = nil
  sent = {}
  lu.assertEquals({ ob:round(send) }, { 2, 0 })
  lu.assertEquals(sent, { "a2", "a3" })
  -- replayed: delivered again with its idempotency key
  lu.assertEquals(ob:replay(), 1)
  lu.assertEquals(#ob:dead_letters(), 0)
  local keys = {}
  lu.assertEquals({ ob:round(function(fact) keys[#keys + 1] = fact.key; return true end) }, { 1, 0 })
  lu.assertEquals(keys, { "A-1" })
  lu.assertEquals(ob:size(), 0)
  lu.assertEquals({ ob:metric("deliveries"), ob:metric("retries"), ob:metric("dead_letters") }, { 6, 2, 1 })
  local text = ob:metrics_lines()
  lu.assertStrContains(text, "# TYPE leadq_deliveries_total counter\nleadq_deliveries_total 6\n")
  lu.assertStrContains(text, "leadq_dead_letters_total 1\n")
  lu.assertStrContains(text, "leadq_outbox_waiting 0\n")
end

function M.TestOutbox.test_a_round_with_nothing_due_does_not_scan_again()
  local now = 1000
  local ob = new_outbox(function() return now end)
  for i = 1, 50 do assert(ob:put{ lead = "L" .. i, webhook = "crm", body = "x", not_before = 2000 }) end
  local store = ob.store
  local get, gets = store.get, 0
  store.get = function(...) gets = gets + 1; return get(...) end
  lu.assertEquals({ ob:round(function() return true end) }, { 0, 0 })
  lu.assertTrue(gets >= 50)           -- the first round looked at every fact
  gets = 0
  now = 1500
  lu.assertEquals({ ob:round(function() return true end) }, { 0, 0 })
  lu.assertEquals(gets, 1)            -- the tail only: nothing new, nothing due before 2000
  assert(ob:put{ lead = "new", webhook = "crm", body = "y" })
  lu.assertEquals({ ob:round(function() return true end) }, { 1, 0 })   -- a new fact: scanned again
  now = 2000
  lu.assertEquals({ ob:round(function() return true end) }, { 50, 0 })
end

-- Another worker has taken the next number and not written its fact yet: a round in between neither
-- moves the head past that slot nor stops looking; the fact goes out once it is written. A slot whose
-- write never comes is passed after a while, so the outbox does not stall behind it.
function M.TestOutbox.test_a_slot_taken_but_not_written_yet_is_not_lost()
  local now = 1000
  local ob = new_outbox(function() return now end)
  assert(ob:put{ lead = "A", webhook = "crm", body = "a" })
  local store = ob.store
  local seq = store:incr(ob.k.tail, 1, 0)   -- a put in another worker, between its two writes
  local sent = {}
  local function send(fact) sent[#sent + 1] = fact.body; return true end
  lu.assertEquals({ ob:round(send) }, { 1, 0 })
  lu.assertEquals({ ob:round(send) }, { 0, 0 })
  lu.assertEquals(store:get(ob.k.head), 1)   -- past a's slot, not past the one being written
  assert(store:safe_set(ob.k.item .. seq, json.encode({ lead = "B", webhook = "crm", body = "b", seq = seq,
    attempts = 0, next_at = 0, key = "B-" .. seq })))
  lu.assertEquals({ ob:round(send) }, { 1, 0 })
  lu.assertEquals(sent, { "a", "b" })
  -- a slot whose write never comes: passed once it has stayed empty a while
  store:incr(ob.k.tail, 1, 0)
  assert(ob:put{ lead = "C", webhook = "crm", body = "c" })
  lu.assertEquals({ ob:round(send) }, { 1, 0 })
  ob:round(send)
  now = now + 60
  ob:round(send)
  lu.assertEquals(store:get(ob.k.head), store:get(ob.k.tail))
  lu.assertEquals(ob:size(), 0)
end

function M.TestOutbox.test_options_are_checked()
  lu.assertErrorMsgContains("outbox.new: option 'store' is required", outbox.new, {})
  lu.assertErrorMsgContains("outbox.new: unknown option 'lanse'", outbox.new,
    { store = service.memory_store(), lanse = 2 })
end

M.TestReactor = {}

local REACTIONS = [[
webhook "crm" { url = "http://127.0.0.1:9/hooks", secret_env = "LEADQ_TEST_UNSET_SECRET" }
on { model = "engagement", to = "mql", webhook = "crm", assign = true }
on { model = "engagement", from = "mql", webhook = "crm" }
team "sales" { owners = { "anna", "ben" }, capacity = 10 }
route { team = "sales", why = "everyone" }
]]

local function new_service(clock)
  local model = assert(leadq.load_model("tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(REACTIONS, "reactions.lua"))
  local store = service.memory_store()
  local ob = outbox.new{ store = service.memory_store(), clock = clock }
  local rx = reactor.new{ reactions = r, outbox = ob, model = "engagement", clock = clock,
    secrets = { crm = "s3cret" } }
  return service.new{ model = model, store = store, clock = clock, reactor = rx }, ob
end

function M.TestReactor.test_a_threshold_crossing_is_said_and_put_in_the_outbox()
  local now = 1767225600   -- 2026-01-01
  local clock = function() return now end
  local svc, ob = new_service(clock)
  local status, answer = svc:handle("POST", "/leads/L-1", '{"seniority":"VP","employees":900}')
  lu.assertEquals(status, 201)
  lu.assertEquals(answer.status, "nurture")
  lu.assertEquals(answer.changed, { model = "engagement", to = "nurture", at = now })   -- first seen
  lu.assertEquals(ob:size(), 0)                                                        -- no reaction to that
  local answers = {}
  for i = 1, 3 do
    now = now + 60
    local s, a = svc:handle("POST", "/events", json.encode({ lead = "L-1", type = "pricing_view" }))
    lu.assertEquals(s, 200)
    answers[i] = { a.status, a.changed and a.changed.to }
    if a.changed then lu.assertEquals(a.changed.from, "nurture") end
  end
  -- the first view moved the grade (a change, said), the third crossed into mql
  lu.assertEquals(answers, { { "nurture", "nurture" }, { "nurture" }, { "mql", "mql" } })
  local text = svc:answer_text(select(2, svc:handle("GET", "/leads/L-1")))
  lu.assertNil(text:find('"changed"', 1, true))   -- nothing changed since
  local facts = ob:pending()
  lu.assertEquals(#facts, 1)
  local body = json.decode(facts[1].body)
  lu.assertEquals({ body.event, body.lead, body.model, body.from, body.to, body.owner },
    { "lead.status_changed", "L-1", "engagement", "nurture", "mql", "anna" })
  lu.assertStrContains(body.why, "team sales by the route at reactions.lua:5 (everyone: every lead); round-robin: anna")
  lu.assertEquals(facts[1].key, "L-1-engagement-1")
  lu.assertEquals(body.key, facts[1].key)
  -- the delivery's headers: signed over "<t>.<body>" by libcrypto, checked as a receiver would
  local headers = webhook.headers("s3cret", facts[1].key, now, facts[1].body)
  lu.assertTrue(webhook.verify("s3cret", headers["X-Leadq-Signature"], facts[1].body, now, 300))
  lu.assertEquals({ webhook.verify("s3cret", headers["X-Leadq-Signature"], facts[1].body .. " ", now, 300) },
    { false, "bad signature" })
  lu.assertEquals({ webhook.verify("s3cret", headers["X-Leadq-Signature"], facts[1].body, now + 301, 300) },
    { false, "stale signature" })
  -- the encoded answer of a change carries it first, as json.encode would
  now = now + 40 * 86400   -- the views age out of the 30-day window: back to nurture
  local s, a = svc:handle("GET", "/leads/L-1")
  lu.assertEquals(s, 200)
  lu.assertEquals(a.changed, { model = "engagement", from = "mql", to = "nurture", at = now })
  lu.assertEquals(#ob:pending(), 2)
end

function M.TestReactor.test_fast_answer_text_says_changed()
  local now = 1767225600
  local svc = new_service(function() return now end)
  local _, answer = svc:handle("POST", "/leads/L-2", '{"seniority":"VP"}', true)
  local text = svc:answer_text(answer)
  lu.assertEquals(text:sub(1, 62), '{"changed":{"at":1767225600,"model":"engagement","to":"cold"},')
  lu.assertEquals(json.decode(text).changed.to, "cold")
end

M.TestLifecycle = {}

local LIFECYCLE = [[
webhook "crm" { url = "http://127.0.0.1:9/hooks" }
webhook "manager" { url = "http://127.0.0.1:9/sla" }
on { model = "engagement", to = "mql", webhook = "crm", assign = true, transition = "mql" }
route { owner = "anna" }
sla { accept_within_hours = 24, webhook = "manager" }
recycle { not_accepted_days = 14, not_progressing_days = 30, reason = "not worked", webhook = "crm" }
]]

local function lifecycle_service(clock, model_path)
  local model = assert(leadq.load_model(model_path or "tests/nginx/rules/engagement.lua"))
  local r = assert(reactions.load_string(LIFECYCLE, "reactions.lua"))
  local ob = outbox.new{ store = service.memory_store(), clock = clock }
  local rx = reactor.new{ reactions = r, outbox = ob, model = model.name, clock = clock,
    fields = model:info().fields }
  return service.new{ model = model, store = service.memory_store(), clock = clock, reactor = rx }, ob, rx
end

local function to_mql(svc, id)
  svc:handle("POST", "/leads/" .. id, '{"seniority":"VP","employees":900}')
  for _ = 1, 3 do svc:handle("POST", "/events", json.encode({ lead = id, type = "pricing_view" })) end
end

local function events_of(ob)
  local out = {}
  for _, f in ipairs(ob:pending()) do
    local b = json.decode(f.body)
    out[#out + 1] = b.event .. " " .. b.lead .. " " .. f.webhook
  end
  return out
end

function M.TestLifecycle.test_sla_breach_unless_accepted_then_recycling()
  local now = 1767225600
  local clock = function() return now end
  local svc, ob, rx = lifecycle_service(clock)
  to_mql(svc, "A")
  to_mql(svc, "B")
  lu.assertEquals({ rx:lifecycle("A") }, { "mql", now, 1 })
  lu.assertEquals(rx.timers:size(), 4)   -- each: its SLA and its recycling
  now = now + 3600
  lu.assertTrue(rx:accept("B", now))
  lu.assertEquals((rx:lifecycle("B")), "accepted")
  lu.assertEquals({ rx:accept("nobody", now) }, { nil, "lead 'nobody' was never handed off" })
  local function timers() return rx.timers:round(function(f) return rx:timer(f) end) end
  now = now + 22 * 3600   -- 23 h: within the SLA
  lu.assertEquals(timers(), 0)
  now = now + 3600 + 1
  timers()
  lu.assertEquals(events_of(ob), { "lead.status_changed A crm", "lead.status_changed B crm",
    "lead.sla_breached A manager" })   -- B was accepted in time
  local breach = json.decode(ob:pending()[3].body)
  lu.assertEquals({ breach.owner, breach.stage, breach.deadline }, { "anna", "mql", "2026-01-02T00:00:00Z" })
  now = 1767225600 + 14 * 86400
  timers()
  lu.assertEquals((rx:lifecycle("A")), "nurture")      -- not accepted in 14 days
  lu.assertEquals((rx:lifecycle("B")), "accepted")     -- accepted: 30 days to progress
  now = 1767225600 + 3600 + 30 * 86400
  timers()
  lu.assertEquals((rx:lifecycle("B")), "nurture")
  local recycled = json.decode(ob:pending()[#ob:pending()].body)
  lu.assertEquals({ recycled.event, recycled.lead, recycled.from, recycled.reason },
    { "lead.recycled", "B", "accepted", "not worked" })
  lu.assertEquals({ ob:metric("sla_breaches"), ob:metric("recycles"), ob:metric("accepted") }, { 1, 2, 1 })
  lu.assertEquals(rx.store:get("load:anna"), 0)   -- both recycled: anna's capacity is free again
  lu.assertEquals(rx.timers:size(), 0)
end

function M.TestLifecycle.test_rules_read_the_stage_and_days_in_it()
  local dir = os.tmpname()
  local f = assert(io.open(dir, "w"))
  f:write([[
return model "life" {
  groups = { fit = { cap = 100 } },
  rules = {
    rule "VP" { group = "fit", points = 70, when = { seniority = "VP" } },
    rule "STALE_MQL" { group = "fit", points = -30,
      when = { lifecycle_stage = "mql", days_in_stage = { at_least = 10 } } },
  },
  thresholds = { mql = 60, otherwise = "cold" },
}
]])
  f:close()
  local now = 1767225600
  local r = assert(reactions.load_string([[
on { model = "life", to = "mql", transition = "mql" }
]], "r.lua"))
  local model = assert(leadq.load_model(dir))
  os.remove(dir)
  local ob = outbox.new{ store = service.memory_store(), clock = function() return now end }
  local rx = reactor.new{ reactions = r, outbox = ob, model = "life", clock = function() return now end,
    fields = model:info().fields }
  local svc = service.new{ model = model, store = service.memory_store(), clock = function() return now end,
    reactor = rx }
  local _, a = svc:handle("POST", "/leads/L", '{"seniority":"VP"}')
  lu.assertEquals({ a.status, a.changed.to }, { "mql", "mql" })
  now = now + 9 * 86400
  lu.assertEquals(select(2, svc:handle("GET", "/leads/L")).total, 70)
  now = now + 86400   -- ten days an MQL nobody moved on
  _, a = svc:handle("GET", "/leads/L")
  lu.assertEquals({ a.total, a.status, a.changed.from, a.changed.to }, { 40, "cold", "mql", "cold" })
end

M.TestSeveralModels = {}

function M.TestSeveralModels.test_mql_sql_and_pql_in_one_service()
  local now = 1767225600
  local clock = function() return now end
  local model = assert(service.load_model({ "rules/mql.lua", "rules/sql.lua", "rules/pql.lua" }))
  lu.assertEquals(model.name, "mql+sql+pql")
  local r = assert(reactions.load_string([[
webhook "crm" { url = "http://127.0.0.1:9/hooks" }
on { model = "sql", to = "sql", webhook = "crm" }
on { model = "sql", from = "sql", webhook = "crm" }
on { model = "pql", to = "pql", webhook = "crm" }
]], "r.lua"))
  local ob = outbox.new{ store = service.memory_store(), clock = clock }
  local rx = reactor.new{ reactions = r, outbox = ob, model = model.name, clock = clock }
  local svc = service.new{ model = model, store = service.memory_store(), clock = clock, reactor = rx }
  local status, a = svc:handle("POST", "/leads/L1", json.encode({ seniority = "vp", employees = 900,
    email_domain = "acme.com", country = "US", industry = "Software", budget = 90000 }))
  lu.assertEquals(status, 201)
  -- the first model's answer, and each model's
  lu.assertEquals({ a.status, a.models.mql.status, a.models.sql.status, a.models.pql.status },
    { "nurture", "nurture", "sql", "disqualified" })
  lu.assertEquals(a.changed, { model = "mql", to = "nurture", at = now })   -- the first model's change first
  lu.assertEquals(json.decode(svc:answer_text(a)).models.sql.total, a.models.sql.total)
  local facts = ob:pending()
  lu.assertEquals(#facts, 1)
  lu.assertEquals({ json.decode(facts[1].body).model, json.decode(facts[1].body).to }, { "sql", "sql" })
  -- the budget goes: only the sales model changes, and the answer says so
  now = now + 60
  status, a = svc:handle("POST", "/leads/L1", '{"budget": null}')
  lu.assertEquals(status, 200)
  lu.assertEquals({ a.changed.model, a.changed.from }, { "sql", "sql" })
  lu.assertNotEquals(a.models.sql.status, "sql")
  lu.assertEquals(#ob:pending(), 2)
  -- two models declaring one event feature differently cannot share a lead's state
  local dir = os.tmpname()
  local f = assert(io.open(dir, "w"))
  f:write('return model "other" { groups = { g = {} }, rules = { rule "R" { group = "g", points = 1, ' ..
    'when = { pricing_views_30d = { at_least = 1 } } } }, thresholds = { ok = 1, otherwise = "no" }, ' ..
    'features = { pricing_views_30d = feature { count = "pricing_view", within_days = 7 } } }\n')
  f:close()
  local bad, err = service.load_model({ "rules/mql.lua", dir })
  os.remove(dir)
  lu.assertNil(bad)
  lu.assertStrContains(err, "models 'mql' and 'other' declare the event feature 'pricing_views_30d' differently")
end

M.TestWebhookClient = {}

function M.TestWebhookClient.test_parse_url()
  lu.assertEquals({ webhook.parse_url("http://127.0.0.1:8080/hooks/x?a=1") },
    { "127.0.0.1", 8080, "/hooks/x?a=1", false })
  lu.assertEquals({ webhook.parse_url("http://crm.example.com") }, { "crm.example.com", 80, "/", false })
  lu.assertEquals({ webhook.parse_url("https://crm.example.com/x") }, { "crm.example.com", 443, "/x", true })
  lu.assertEquals({ webhook.parse_url("https://localhost:8443") }, { "localhost", 8443, "/", true })
  lu.assertEquals({ webhook.parse_url("ftp://x") }, { nil, "not an http:// or https:// url: ftp://x" })
end

-- Outside nginx (LuaSocket, no TLS): an https webhook is refused with why, never sent in the clear.
function M.TestWebhookClient.test_https_without_tls_sockets_says_so()
  local sent = false
  local client = webhook.client{ tcp = function()
    return { settimeout = function() end, connect = function() return true end, close = function() end,
      send = function() sent = true; return true end }
  end }
  lu.assertEquals({ client:post("https://127.0.0.1:9/hooks", "{}", {}) },
    { nil, "https needs TLS sockets (nginx's ngx.socket.tcp): https://127.0.0.1:9/hooks" })
  lu.assertFalse(sent)
end

return M
