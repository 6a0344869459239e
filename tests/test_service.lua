-- leadq.service: the request handlers (every Lua), and the OpenResty service itself (LuaJIT variant:
-- nginx runs LuaJIT) started on 127.0.0.1 at a free port from tests/nginx/nginx.conf.tmpl.
local lu = require("luaunit")
local json = require("leadq.json")
local service = require("leadq.service")
local harness = require("nginx.harness")

local M = {}

local RULES = "tests/nginx/rules/engagement.lua"
local NOW = 1795000000   -- 2026-11-18T11:06:40Z: a fixed clock for the pure tests

local function load_model(path)
  return assert(require("leadq").load_model(path or RULES))
end

local function new_service(opts)
  opts = opts or {}
  return service.new{ model = opts.model or load_model(), store = opts.store or service.memory_store(),
    locks = opts.locks, clock = function() return NOW end }
end

local VP = '{"seniority":"VP","employees":800,"email_domain":"acme.com"}'

---------------------------------------------------------------------------------------------------
-- The handlers, without nginx
---------------------------------------------------------------------------------------------------

M.TestServiceHandlers = {}

function M.TestServiceHandlers.test_profile_then_score_and_explain()
  local svc = new_service()
  local status, answer = svc:handle("POST", "/leads/L-1", VP)
  lu.assertEquals(status, 201)
  lu.assertEquals(answer.lead, "L-1")
  lu.assertEquals(answer.total, 35)
  lu.assertEquals(answer.status, "nurture")
  lu.assertEquals(answer.grade, "A4")
  status, answer = svc:handle("POST", "/leads/L-1", '{"employees":50}')   -- merged, not replaced
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.total, 20)
  status, answer = svc:handle("GET", "/leads/L-1")
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.total, 20)
  lu.assertEquals(answer.status, "cold")
  lu.assertEquals(answer.grade, "B4")
  lu.assertEquals(answer.profile.seniority, "VP")
  lu.assertEquals(answer.profile.employees, 50)
  lu.assertEquals(answer.model, nil)   -- no info given to service.new
  lu.assertEquals(answer.groups.fit, 20)
  lu.assertEquals(answer.explain.rules[1].id, "SENIORITY_VP")
  lu.assertEquals(answer.explain.rules[1].points, 20)
  lu.assertStrContains(answer.explanation, "SENIORITY_VP")
  json.encode(answer)   -- every answer is plain JSON
end

function M.TestServiceHandlers.test_score_answers_are_laid_out_as_json_encode_does()
  local svc = new_service()
  local _, created = svc:handle("POST", "/leads/L-1", VP)
  local _, scored = svc:handle("POST", "/events", '{"lead":"L-1","type":"email_click"}')
  local _, detailed = svc:handle("GET", "/leads/L-1")
  local _, refused = svc:handle("GET", "/leads/nobody")
  scored.note = 'a "quoted" note'
  for _, answer in ipairs({ created, scored, detailed, refused }) do
    lu.assertEquals(table.concat(svc:encode_answer(answer)), json.encode(answer))
  end
  lu.assertStrContains(table.concat(svc:encode_answer(scored)), '"email_clicks_decayed":1,')
end

function M.TestServiceHandlers.test_a_reused_answer_says_what_a_new_one_says()
  local fresh, reused = new_service(), new_service()
  for _, svc in ipairs({ fresh, reused }) do
    svc:handle("POST", "/leads/L-1", VP)
    svc:handle("POST", "/leads/L-2", '{"seniority":"VP","employees":800,"email_domain":"gmail.com"}')
  end
  local events = { '{"lead":"L-1","type":"email_click"}', '{"lead":"L-2","type":"pricing_view"}',
    '{"lead":"L-1","type":"unsubscribe"}', '{"lead":"L-2","type":"webinar_attended"}' }
  for _, body in ipairs(events) do
    local status, answer = fresh:handle("POST", "/events", body)
    local reused_status, reused_answer = reused:handle("POST", "/events", body, true)
    lu.assertEquals(reused_status, status)
    lu.assertEquals(table.concat(reused:encode_answer(reused_answer)), table.concat(fresh:encode_answer(answer)))
    lu.assertEquals(json.encode(reused_answer), json.encode(answer))
  end
end

function M.TestServiceHandlers.test_null_removes_a_field()
  local svc = new_service()
  svc:handle("POST", "/leads/L-1", VP)
  local status, answer = svc:handle("POST", "/leads/L-1", '{"seniority":null}')
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.total, 15)
  local _, lead = svc:handle("GET", "/leads/L-1")
  lu.assertNil(lead.profile.seniority)
end

function M.TestServiceHandlers.test_events_update_the_engagement_state_and_the_score()
  local svc = new_service()
  svc:handle("POST", "/leads/L-1", VP)
  local status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"webinar_attended","time":"' ..
    os.date("!%Y-%m-%dT%H:%M:%SZ", NOW - 86400) .. '"}')
  lu.assertEquals(status, 200, answer.error)
  lu.assertEquals(answer.total, 45)
  local totals = {}
  for i = 1, 3 do
    status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
    lu.assertEquals(status, 200, answer.error)
    totals[i] = answer.total
  end
  lu.assertEquals(totals, { 55, 55, 70 })   -- +10 at the first view, +15 more at the third
  lu.assertEquals(answer.status, "mql")
  lu.assertEquals(answer.grade, "A2")
  lu.assertEquals(answer.groups.engagement, 35)
  -- Events come in time order per lead: one older than the lead's latest is refused, and counts for nothing.
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view","time":' .. (NOW - 60) .. '}')
  lu.assertEquals(status, 422)
  lu.assertStrContains(answer.error, "event rejected: ")
  lu.assertStrContains(answer.error, "rejected as late")
  -- An event older than the window counts for nothing now.
  status = svc:handle("POST", "/events", '{"lead":"L-2","type":"pricing_view"}')
  lu.assertEquals(status, 404)
  svc:handle("POST", "/leads/L-2", VP)
  status, answer = svc:handle("POST", "/events", '{"lead":"L-2","type":"pricing_view","time":' .. (NOW - 90 * 86400) ..
    '}')
  lu.assertEquals(status, 200, answer.error)
  lu.assertEquals(answer.total, 35)
  local _, lead = svc:handle("GET", "/leads/L-1")
  lu.assertEquals(lead.features.pricing_views_30d, 3)
  lu.assertEquals(lead.features.webinars_90d, 1)
  lu.assertEquals(lead.total, 70)
end

function M.TestServiceHandlers.test_event_keys_set_to_null_are_absent_and_unknown_keys_refused()
  local svc = new_service()
  svc:handle("POST", "/leads/L-1", VP)
  local status, answer = svc:handle("POST", "/events",
    '{"lead":"L-1","type":"pricing_view","time":null,"value":null,"page":null}')
  lu.assertEquals(status, 200, answer.error)
  lu.assertEquals(answer.features.pricing_views_30d, 1)
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view","time":null,"colour":"red"}')
  lu.assertEquals(status, 400)
  lu.assertStrContains(answer.error, "unknown key 'colour' in event")
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view","colour":null}')
  lu.assertEquals(status, 400)
  lu.assertStrContains(answer.error, "unknown key 'colour' in event")
end

function M.TestServiceHandlers.test_a_burst_of_events_at_one_instant_keeps_the_state_small()
  local store = service.memory_store()
  local svc = new_service{ store = store }   -- its clock stands still at NOW
  svc:handle("POST", "/leads/L-1", VP)
  local sizes = {}
  for i = 1, 200 do
    local status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
    lu.assertEquals(status, 200, answer.error)
    lu.assertEquals(answer.features.page_views_7d, i)
    if i == 10 or i == 200 then sizes[#sizes + 1] = #store:get("s:L-1") end
  end
  -- Stamped a microsecond apart: folded, not kept waiting (only the stamp's digits may grow).
  lu.assertTrue(sizes[2] - sizes[1] <= 4, sizes[1] .. " bytes after 10 events, " .. sizes[2] .. " after 200")
end

function M.TestServiceHandlers.test_a_full_store_or_a_held_lock_is_refused_plainly()
  local store = service.memory_store()
  local svc = new_service{ store = store }
  svc:handle("POST", "/leads/L-1", VP)
  store:add("l:L-1", true, 60)   -- another worker holds the lead
  local status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 409)
  lu.assertEquals(answer.error, "lead 'L-1' is busy, try again")
  store:delete("l:L-1")
  function store.safe_set() return nil, "no memory" end
  function store.safe_add() return nil, "no memory" end
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 507)
  lu.assertEquals(answer.error, "lead store full: no memory")
end

-- With a lock store of its own, the leads' locks live there: a lock held in it makes the lead busy,
-- one left in the leads store does not, and the leads store keeps no lock key after an event.
function M.TestServiceHandlers.test_locks_in_a_store_of_their_own()
  local store, locks = service.memory_store(), service.memory_store()
  local svc = new_service{ store = store, locks = locks }
  svc:handle("POST", "/leads/L-1", VP)
  locks:add("l:L-1", true, 60)
  local status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 409)
  lu.assertEquals(answer.error, "lead 'L-1' is busy, try again")
  locks:delete("l:L-1")
  store:add("l:L-1", true, 60)   -- not where this service locks
  status = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 200)
  store:delete("l:L-1")
  status = svc:handle("POST", "/leads/L-1", '{"employees":900}')
  lu.assertEquals(status, 200)
  for key in pairs(store.data) do lu.assertNotEquals(key:sub(1, 2), "l:") end
  for key in pairs(locks.data) do lu.fail("lock left behind: " .. key) end
  function locks.safe_add() return nil, "no memory" end
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 507)
  lu.assertEquals(answer.error, "lock store full: no memory")
  lu.assertErrorMsgContains("option 'locks' must be a store", service.new, { model = load_model(), store = store,
    locks = "leadq_locks" })
end

-- The profile's version rides on the stored state: a worker whose cached profile has the state's
-- version reads no profile for an event; a profile changed by another worker is seen at once; data
-- stored without versions (flags) still reads.
function M.TestServiceHandlers.test_events_read_the_profile_only_when_its_version_changed()
  local store = service.memory_store()
  local model = load_model()
  local a, b = new_service{ store = store, model = model }, new_service{ store = store, model = model }
  a:handle("POST", "/leads/L-1", '{"seniority":"VP","employees":800}')
  local get, profile_reads = store.get, 0
  function store.get(st, key)
    if key:sub(1, 2) == "p:" then profile_reads = profile_reads + 1 end
    return get(st, key)
  end
  a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')   -- first: no state yet, reads it
  profile_reads = 0
  local _, first = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(profile_reads, 0)
  b:handle("POST", "/leads/L-1", '{"employees":5}')   -- another worker changes the profile
  profile_reads = 0
  local _, after = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(profile_reads, 1)
  local _, fresh = b:handle("GET", "/leads/L-1")
  lu.assertEquals(after.total, fresh.total)
  lu.assertTrue(after.groups.fit < first.groups.fit, "the smaller company scores less fit")
  -- a store that loses flags (a host's own): found out, its events read the profile every time
  local bare = service.memory_store()
  function bare.get(st, key) return (service.memory_store().get(st, key)) end
  local d, e = new_service{ store = bare, model = model }, new_service{ store = bare, model = model }
  lu.assertFalse(d.versions)
  lu.assertTrue(a.versions)
  d:handle("POST", "/leads/L-2", '{"seniority":"VP","employees":800}')
  d:handle("POST", "/events", '{"lead":"L-2","type":"page_view"}')
  e:handle("POST", "/leads/L-2", '{"employees":5}')
  local _, seen = d:handle("POST", "/events", '{"lead":"L-2","type":"page_view"}')
  lu.assertEquals(seen.groups.fit, after.groups.fit)
  lu.assertNil(bare.data["leadq:flags-probe"])
  -- the same data stored without flags (an older version's), read by a new worker
  local old = service.memory_store()
  for key, value in pairs(store.data) do old.data[key] = value end
  local c = new_service{ store = old, model = model }
  local status, again = c:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 200)
  lu.assertEquals(again.groups.fit, after.groups.fit)
  lu.assertEquals(again.features.page_views_7d, after.features.page_views_7d + 1)
end

function M.TestServiceHandlers.test_two_services_on_one_store_see_the_same_leads()
  local store = service.memory_store()
  local model = load_model()
  local a, b = new_service{ store = store, model = model }, new_service{ store = store, model = model }
  a:handle("POST", "/leads/L-1", VP)
  b:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
  local _, answer = a:handle("GET", "/leads/L-1")
  lu.assertEquals(answer.total, 45)
end

function M.TestServiceHandlers.test_a_state_of_other_feature_declarations_starts_afresh()
  local store = service.memory_store()
  local a = new_service{ store = store }
  a:handle("POST", "/leads/L-1", VP)
  a:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
  -- The same rules with another pricing window: the encoded state cannot be read by them.
  local path = os.tmpname()
  local text = assert(harness.read_file(RULES))
  local edited = text:gsub('count = "pricing_view", within_days = 30', 'count = "pricing_view", within_days = 7')
  lu.assertNotEquals(edited, text)
  harness.write_file(path, edited)
  local ok, model = pcall(load_model, path)
  os.remove(path)
  if not ok then error(model, 0) end
  local b = new_service{ store = store, model = model }
  local status, answer = b:handle("GET", "/leads/L-1")
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.features.pricing_views_30d, 0)
  lu.assertEquals(answer.note, "engagement state started afresh (the state was encoded by a different feature set)")
  status, answer = b:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.features.pricing_views_30d, 1)
  lu.assertStrContains(answer.note, "started afresh")   -- this event replaced the old state
  answer = select(2, b:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}'))
  lu.assertEquals(answer.features.pricing_views_30d, 2)
  lu.assertNil(answer.note)
end

function M.TestServiceHandlers.test_the_shipped_mql_rules_score_profiles()
  local svc = new_service{ model = load_model("rules/mql.lua") }
  local status, answer = svc:handle("POST", "/leads/R-1", '{"seniority":"VP","employees":300}')
  lu.assertEquals(status, 201, answer.error)
  lu.assertTrue(answer.groups.fit > 0)   -- the points are marketing ops' to change: only their shape here
  status, answer = svc:handle("GET", "/leads/R-1")
  lu.assertEquals(status, 200)
  lu.assertTrue(#answer.explain.rules > 0)
  lu.assertEquals(answer.explain.model, "mql")
  -- its event rules read features: a demo request moves the score
  local before = answer.total
  status, answer = svc:handle("POST", "/events", '{"lead":"R-1","type":"demo_request"}')
  lu.assertEquals(status, 200, answer.error)
  lu.assertEquals(answer.features.demo_requests_30d, 1)
  lu.assertTrue(answer.total > before, "a demo request raised the score")
end

-- method, path, body, status, error text
local bad_requests = {
  { "POST", "/events", '{"lead":"L-1",', 400, "malformed JSON at byte 15: expected a string key in object" },
  { "POST", "/events", "", 400, "request body required (a JSON object)" },
  { "POST", "/events", "[1,2]", 400, "request body must be a JSON object" },
  { "POST", "/events", '{"lead":"L-1","type":"pricing_view","tpye":"x"}', 400,
    "unknown key 'tpye' in event (did you mean 'type'?) (expected lead, type, time, value, page, asset, campaign)" },
  { "POST", "/events", '{"type":"pricing_view"}', 400, "event: 'lead' is required" },
  { "POST", "/events", '{"lead":"L-1"}', 400, "event: 'type' is required (a string)" },
  { "POST", "/events", '{"lead":"L-1","type":"tweet"}', 400,
    "unknown event type 'tweet' (the model counts: email_click, page_view, pricing_view, webinar_attended)" },
  { "POST", "/events", '{"lead":"L-1","type":"pricing_view","time":"yesterday"}', 400,
    "event: 'time' must be epoch seconds or an ISO 8601 date-time, got 'yesterday'" },
  { "POST", "/events", '{"lead":"L-1","type":"pricing_view","value":"3"}', 400, "event: 'value' must be a number" },
  { "POST", "/events", '{"lead":"nobody","type":"pricing_view"}', 404,
    "unknown lead 'nobody': POST /leads/nobody its profile first" },
  { "POST", "/events", '{"lead":"a b","type":"pricing_view"}', 400,
    "bad lead id 'a b': 1 to 128 letters, digits or - _ . : @ +" },
  { "POST", "/events", string.rep(" ", 16385), 413, "request body too large" },
  { "GET", "/events", nil, 405, "method GET not allowed on /events (use POST)" },
  { "DELETE", "/leads/L-1", nil, 405, "method DELETE not allowed on /leads/<id> (use GET or POST)" },
  { "GET", "/leads/nobody", nil, 404, "unknown lead 'nobody'" },
  { "GET", "/leads/", nil, 400, "bad lead id '': 1 to 128 letters, digits or - _ . : @ +" },
  { "GET", "/nothing", nil, 404, "no such endpoint: /nothing (POST /events, GET or POST /leads/<id>)" },
  { "POST", "/leads/L-1", '{"employees":{"n":1}}', 400,
    "field 'employees': a value must be a string, number, boolean, null or an array of strings" },
  { "POST", "/leads/L-1", '{"seniority":["a",1]}', 400, "field 'seniority': an array may only hold strings" },
  -- a pattern of the rules sees no more than 1024 bytes of a value
  { "POST", "/leads/L-1", '{"seniority":"' .. string.rep("VP Sales ", 114) .. '"}', 400,
    "field 'seniority': a value of more than 1024 bytes" },
  { "POST", "/leads/L-1", '{"seniority":["' .. string.rep("x", 1025) .. '"]}', 400,
    "field 'seniority': a value of more than 1024 bytes" },
  { "POST", "/leads/L-1", '{"1st":1}', 400, "bad field name '1st': letters, digits and _, starting with a letter" },
  { "POST", "/leads/L-1", '"VP"', 400, "request body must be a JSON object" },
  { "POST", "/leads/L-1", '{"employees":"lots"}', 400,
    "cannot score lead 'L-1': field 'employees': cannot read 'lots' as a number" },
  { "POST", "/leads/L-1", '{"employes":500}', 400, "unknown field 'employes' (did you mean 'employees'?) " ..
    "(the model reads: email_domain, employees, seniority, unsubscribed)" },
  { "POST", "/leads/L-1", '{"pricing_views_30d":5}', 400,
    "field 'pricing_views_30d' is an event feature: POST /events to change it" },
  { "POST", "/events", '{"lead":"L-1","type":"pricing_veiw"}', 400, "unknown event type 'pricing_veiw' " ..
    "(did you mean 'pricing_view'?) (the model counts: email_click, page_view, pricing_view, webinar_attended)" },
}

-- A total past the largest double was stored, and then every answer for that lead was a 500. Rules
-- cannot give such points any more (dsl.POINTS_MAX); a model made while the bound was lifted can.
function M.TestServiceHandlers.test_a_total_that_is_not_finite_is_refused_and_never_stored()
  local dsl = require("leadq.dsl")
  local saved = dsl.POINTS_MAX
  dsl.POINTS_MAX = math.huge
  local ok, m = pcall(require("leadq").model, dsl.model "huge" {
    rules = { dsl.rule "A" { points = 1e308, when = { seniority = "VP" } },
              dsl.rule "B" { points = 1e308, when = { employees = "present" } } },
  })
  dsl.POINTS_MAX = saved
  lu.assertTrue(ok, m)
  local svc = new_service({ model = m })
  local status, answer = svc:handle("POST", "/leads/L-1", '{"seniority":"VP","employees":800}')
  lu.assertEquals(status, 400)
  lu.assertEquals(answer.error, "cannot score lead 'L-1': its total is inf, not a finite number")
  lu.assertEquals(svc:handle("GET", "/leads/L-1"), 404)
  status = svc:handle("POST", "/leads/L-1", '{"seniority":"VP"}')
  lu.assertEquals(status, 201)
end

-- Error answers quote what the request sent: any bytes, any length. Every answer is valid UTF-8,
-- cut on a character boundary, and shows no heap address.
function M.TestServiceHandlers.test_error_answers_are_short_valid_utf8()
  local svc = new_service()
  svc:handle("POST", "/leads/L-1", VP)
  local status, answer = svc:handle("GET", "/leads/a\255")
  lu.assertEquals(status, 400)
  lu.assertEquals(answer.error, "bad lead id 'a?': 1 to 128 letters, digits or - _ . : @ +")
  status, answer = svc:handle("GET", "/x\255\254\n")
  lu.assertEquals(status, 404)
  lu.assertEquals(answer.error, "no such endpoint: /x??? (POST /events, GET or POST /leads/<id>)")
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"' .. string.rep("\195\169", 300) .. '"}')
  lu.assertEquals(status, 400)
  lu.assertEquals(answer.error, "unknown event type '" .. string.rep("\195\169", 138) .. "...")
  lu.assertEquals(#answer.error, 299)
  -- a 16 KB key: no suggestion, and the answer is cut
  status, answer = svc:handle("POST", "/events", '{"lead":"L-1","' .. string.rep("x", 16000) .. '":1}')
  lu.assertEquals(status, 400)
  lu.assertEquals(answer.error, "unknown key '" .. string.rep("x", 284) .. "...")
  -- every answer encodes as JSON that is valid UTF-8
  lu.assertNotNil(json.decode(json.encode(answer)))
  lu.assertEquals(service.readable("leadq: table: 0x55d0c3a8f2b0 is not a lead"), "leadq: table: 0x... is not a lead")
  lu.assertEquals(service.readable("a\0b\127c\237\160\128d\244\144\128\128e\192\175f"), "a?b?c???d????e??f")
end

function M.TestServiceHandlers.test_bad_requests_get_a_4xx_and_say_why()
  local svc = new_service()
  svc:handle("POST", "/leads/L-1", VP)
  for _, case in ipairs(bad_requests) do
    local status, answer, headers = svc:handle(case[1], case[2], case[3])
    lu.assertEquals(status, case[4], case[1] .. " " .. case[2] .. " " .. tostring(case[3]))
    lu.assertEquals(answer.error, case[5])
    if status == 405 then lu.assertNotNil(headers.Allow) end
  end
  -- and nothing changed the lead
  local _, answer = svc:handle("GET", "/leads/L-1")
  lu.assertEquals(answer.total, 35)
end

function M.TestServiceHandlers.test_times()
  lu.assertEquals(service.parse_time("2026-11-18T11:06:40Z"), NOW)
  lu.assertEquals(service.parse_time("2026-11-18 11:06:40.5"), NOW + 0.5)
  lu.assertEquals(service.parse_time("2026-11-18"), NOW - (11 * 3600 + 6 * 60 + 40))
  lu.assertEquals(service.parse_time(NOW), NOW)
  local t, err = service.parse_time("2026-13-01")
  lu.assertNil(t)
  lu.assertEquals(err, "must be epoch seconds or an ISO 8601 date-time, got '2026-13-01'")
  -- one reader of times, the core's, as the CSV reader's: no 31 February, and the forms a file may use
  lu.assertNil(service.parse_time("2026-02-31"))
  lu.assertNil(require("leadq.dsl").parse_time("2026-02-31"))
  lu.assertNil((require("leadq.core").parse_time("2026-02-31")))
  for _, text in ipairs({ "2026-11-18T12:06:40+01:00", "2026-11-18T11:06:40+0000", "2026-11-18 11:06:40Z" }) do
    lu.assertEquals(service.parse_time(text), NOW, text)
    lu.assertEquals(require("leadq.dsl").parse_time(text), NOW, text)
  end
  lu.assertEquals(service.parse_time("2026-11-18T11:06"), NOW - 40)
  local leads = require("leadq").parse_csv("id,at\nA,2026-11-18T11:06\nB,2026-11-18T12:06:40+01:00\n",
    { schema = { at = "time" } })
  lu.assertEquals(leads:column("at"), { NOW - 40, NOW })
end

function M.TestServiceHandlers.test_misuse_raises()
  lu.assertErrorMsgContains("bad argument #1 to 'new' (table expected, got nil)", service.new)
  lu.assertErrorMsgContains("service.new: option 'model' is required", service.new, {})
  lu.assertErrorMsgContains("service.new: unknown option 'modle'", service.new, { modle = 1 })
  lu.assertErrorMsgContains("option 'store' is required", service.new, { model = load_model() })
end

function M.TestServiceHandlers.test_memory_store_has_the_shared_dict_semantics()
  local store = service.memory_store()
  lu.assertTrue(store:add("k", "v"))
  local ok, err = store:add("k", "w")
  lu.assertFalse(ok)
  lu.assertEquals(err, "exists")
  lu.assertEquals(store:get("k"), "v")
  store:delete("k")
  lu.assertNil(store:get("k"))
  lu.assertEquals(store:incr("n", 1, 0), 1)
  lu.assertEquals(store:incr("n", 2), 3)
end

---------------------------------------------------------------------------------------------------
-- nginx: master + 2 workers on 127.0.0.1, always stopped at the end of the class
---------------------------------------------------------------------------------------------------

M.TestServiceNginx = {}

local server, server_err

-- nginx runs LuaJIT: only the luajit variant of `make test` runs these (the others skip them).
local function nginx_server()
  if LEADQ_VARIANT ~= "luajit" then lu.skip("the nginx service runs under the luajit variant") end
  if server then return server end
  if server_err then lu.fail(server_err) end
  local ok, err = harness.install_deps()
  if not ok then server_err = err; lu.fail(err) end
  local available, why = harness.available()
  if not available then server_err = why; lu.fail(why) end
  local root = harness.root()
  local lib_dir = root .. "/" .. (os.getenv("LEADQ_BUILD") or "build") .. "/lib/luajit"
  -- The rules live in the server's own folder, so the reload test can edit them.
  local rules_dir = os.tmpname()
  os.remove(rules_dir)
  assert(os.execute("mkdir -p " .. harness.quote(rules_dir)))
  local rules = rules_dir .. "/engagement.lua"
  harness.write_file(rules, assert(harness.read_file(RULES)))
  server, server_err = harness.start{ rules = rules, root = root, lib_dir = lib_dir }
  if not server then lu.fail("nginx did not start: " .. tostring(server_err)) end
  server.rules, server.rules_dir = rules, rules_dir
  return server
end

function M.TestServiceNginx.teardownClass()
  if server then
    server:stop()
    os.execute("rm -rf " .. harness.quote(server.rules_dir))
  end
end

local function post(s, path, body) return s:request("POST", path, body) end

function M.TestServiceNginx.test_1_two_workers_see_the_same_leads()
  local s = nginx_server()
  lu.assertEquals(#s:workers(), 2)
  local res = post(s, "/leads/N-1", VP)
  lu.assertEquals(res.status, 201, res.body)
  lu.assertEquals(res.json.total, 35)
  -- Events from whichever worker answers: every answer counts every earlier event.
  local seen, n = {}, 0
  for i = 1, 40 do
    res = post(s, "/events", '{"lead":"N-1","type":"page_view"}')
    lu.assertEquals(res.status, 200, res.body)
    lu.assertEquals(res.json.features.page_views_7d, i)
    local pid = res.headers["x-worker-pid"]
    if not seen[pid] then seen[pid] = true; n = n + 1 end
    if n == 2 and i >= 4 then break end
  end
  lu.assertEquals(n, 2, "only one worker answered 40 requests")
  -- Reads: until both workers have answered, every answer is the same lead.
  seen, n = {}, 0
  for _ = 1, 100 do
    res = s:request("GET", "/leads/N-1")
    lu.assertEquals(res.status, 200, res.body)
    lu.assertEquals(res.json.total, 35)
    lu.assertEquals(res.json.profile.email_domain, "acme.com")
    local pid = res.headers["x-worker-pid"]
    lu.assertTrue(s:owns(pid))
    if not seen[pid] then seen[pid] = true; n = n + 1 end
    if n == 2 then break end
  end
  lu.assertEquals(n, 2, "only one worker answered 100 requests")
end

function M.TestServiceNginx.test_1b_concurrent_events_on_one_lead_are_all_counted()
  local s = nginx_server()
  lu.assertEquals(post(s, "/leads/N-1b", VP).status, 201)
  local counts = s:flood("POST", "/events", '{"lead":"N-1b","type":"page_view"}', 60, 12)
  local seen = {}
  for code, n in pairs(counts) do seen[#seen + 1] = code .. " x" .. n end
  lu.assertEquals(counts[200], 60, "answers by status: " .. table.concat(seen, ", "))
  local res = s:request("GET", "/leads/N-1b")
  lu.assertEquals(res.json.features.page_views_7d, 60)   -- the lock across workers lost none
end

function M.TestServiceNginx.test_2_events_move_the_score_and_get_explains()
  local s = nginx_server()
  lu.assertEquals(post(s, "/leads/N-2", VP).status, 201)
  local totals = {}
  for i = 1, 3 do
    local res = post(s, "/events", '{"lead":"N-2","type":"pricing_view"}')
    lu.assertEquals(res.status, 200, res.body)
    lu.assertEquals(res.headers["content-type"], "application/json")
    totals[i] = res.json.total
  end
  lu.assertEquals(totals, { 45, 45, 60 })
  local res = s:request("GET", "/leads/N-2")
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res.json.status, "mql")
  lu.assertEquals(res.json.grade, "A2")
  lu.assertEquals(res.json.groups.engagement, 25)
  lu.assertStrContains(res.json.explanation, "PRICING_VIEWS")
  lu.assertEquals(res.json.model.name, "engagement")
end

function M.TestServiceNginx.test_3_bad_requests_get_a_json_4xx_and_no_worker_dies()
  local s = nginx_server()
  local workers = s:workers()
  lu.assertEquals(post(s, "/leads/N-3", VP).status, 201)
  for _, case in ipairs(bad_requests) do
    local res = s:request(case[1], case[2], case[3])
    local what = case[1] .. " " .. case[2] .. " " .. tostring(case[3]):sub(1, 60)
    lu.assertTrue(res.status >= 400 and res.status < 500, what .. ": " .. res.status)
    lu.assertEquals(res.headers["content-type"], "application/json", what)
    lu.assertNotNil(res.json, what .. ": " .. res.body)
    if case[4] == 413 then
      lu.assertEquals(res.status, 413)   -- nginx refuses it before Lua runs
      lu.assertEquals(res.json.error, "request body too large (limit 16k)")
    else
      lu.assertEquals(res.status, case[4], what)
      lu.assertEquals(res.json.error, case[5], what)
    end
  end
  -- A body far over the limit, and chunked without a length.
  local res = s:request("POST", "/events", string.rep("x", 100000))
  lu.assertEquals(res.status, 413)
  res = s:request("POST", "/events", string.rep(" ", 20000), { headers = { ["Transfer-Encoding"] = "chunked" } })
  lu.assertEquals(res.status, 413)
  lu.assertNotNil(res.json)
  -- What nginx refuses before any Lua runs: JSON answers too.
  for _, case in ipairs({
    { "GET", "/leads/%00", nil, 400, "bad request" },
    { "GET", "/leads/" .. string.rep("a", 9000), nil, 414, "request line too long" },
    { "GET", "/leads/N-3", nil, 400, "request headers too large", { ["X-Big"] = string.rep("b", 9000) } },
    { "GET", "/.leadq/500", nil, 404, "no such endpoint (POST /events, GET or POST /leads/<id>)" },
    { "TRACE", "/leads/N-3", nil, 405, "method not allowed (POST /events, GET or POST /leads/<id>)" },
    { "CONNECT", "/leads/N-3", nil, 405, "method not allowed (POST /events, GET or POST /leads/<id>)" },
  }) do
    res = s:request(case[1], case[2], case[3], { headers = case[6] })
    lu.assertEquals(res.status, case[4], case[2]:sub(1, 40))
    lu.assertEquals(res.headers["content-type"], "application/json")
    lu.assertEquals(res.json.error, case[5])
  end
  lu.assertEquals(s:workers(), workers)   -- no worker crashed and was replaced
  local log = s:error_log()
  lu.assertNil(log:find("[alert]", 1, true), log)
  lu.assertNil(log:find("exited on signal", 1, true), log)
  lu.assertNil(log:find("internal error", 1, true), log)
end

function M.TestServiceNginx.test_4_reload_keeps_state_and_refuses_broken_rules()
  local s = nginx_server()
  lu.assertEquals(post(s, "/leads/N-4", VP).status, 201)
  lu.assertEquals(post(s, "/events", '{"lead":"N-4","type":"pricing_view"}').json.total, 45)
  local generation = s:request("GET", "/leads/N-4").json.model.generation

  -- New points for a rule: after HUP, the same lead state scores with the new rules.
  local text = harness.read_file(s.rules)
  local edited = text:gsub('label = "Viewed pricing %(30 days%)", group = "engagement", points = 10',
    'label = "Viewed pricing (30 days)", group = "engagement", points = 12')
  lu.assertNotEquals(edited, text)
  harness.write_file(s.rules, edited)
  lu.assertTrue(s:reload(), "nginx -s reload did not replace the workers")
  local res = s:request("GET", "/leads/N-4")
  lu.assertEquals(res.status, 200, res.body)
  lu.assertEquals(res.json.model.generation, generation + 1)
  lu.assertEquals(res.json.total, 47)
  lu.assertEquals(res.json.features.pricing_views_30d, 1)   -- the state survived the reload
  lu.assertEquals(post(s, "/events", '{"lead":"N-4","type":"pricing_view"}').json.features.pricing_views_30d, 2)

  -- A rule script with an error: refused, logged with its line, the running model keeps serving.
  local workers = s:workers()
  harness.write_file(s.rules, edited:gsub('points = 12', 'points = "twelve"', 1))
  os.execute(s:nginx_cmd(" -s reload 2>/dev/null"))
  lu.assertTrue(s:wait_log("leadq: rules refused, the running model keeps serving: "), s:error_log())
  local log = s:error_log()
  lu.assertStrContains(log, "engagement.lua:")
  lu.assertStrContains(log, "PRICING_VIEWED")
  lu.assertEquals(s:workers(), workers)
  res = s:request("GET", "/leads/N-4")
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res.json.total, 47)
  lu.assertEquals(res.json.model.generation, generation + 1)
  lu.assertEquals(res.json.features.pricing_views_30d, 2)

  -- Fixed: the next reload serves it.
  harness.write_file(s.rules, text)
  lu.assertTrue(s:reload())
  res = s:request("GET", "/leads/N-4")
  lu.assertEquals(res.json.total, 45)
  lu.assertEquals(res.json.model.generation, generation + 2)
end

-- A rule script that never ends once hung the master on reload until kill -9.
function M.TestServiceNginx.test_5_reload_refuses_a_rule_script_that_never_ends()
  local s = nginx_server()
  local text = harness.read_file(s.rules)
  local workers = s:workers()
  harness.write_file(s.rules, "while true do end\n" .. text)
  os.execute(s:nginx_cmd(" -s reload 2>/dev/null"))
  lu.assertTrue(s:wait_log("engagement.lua:1: the script failed: it ran past its limit of 20000000 Lua " ..
    "instructions while loading (an endless loop?)"), s:error_log())
  lu.assertEquals(s:workers(), workers)
  lu.assertEquals(s:request("GET", "/leads/N-4").status, 200)
  -- the master is free: the fixed file reloads
  harness.write_file(s.rules, text)
  lu.assertTrue(s:reload())
  lu.assertEquals(s:request("GET", "/leads/N-4").status, 200)
end

return M
