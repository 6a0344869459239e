-- leadq.store (the Redis store, export and import), `leadq state`, and the service on Redis: plain Lua
-- hosts (hiredis, every variant) against a redis-server this suite starts (127.0.0.1, a free port, its
-- config and AOF under /tmp), and two nginx nodes of two workers each on that Redis (luajit variant).
local lu = require("luaunit")
local helpers = require("helpers")
local json = require("leadq.json")
local store = require("leadq.store")
local service = require("leadq.service")
local harness = require("nginx.harness")
local redis_server = require("nginx.redis_server")

local M = {}

local RULES = "tests/nginx/rules/engagement.lua"
local VP = '{"seniority":"VP","employees":800,"email_domain":"acme.com"}'
local NOW = 1795000000

local model_cache
local function load_model()
  model_cache = model_cache or assert(require("leadq").load_model(RULES))
  return model_cache
end

local function new_service(st, clock)
  return service.new{ model = load_model(), store = st, clock = clock or function() return NOW end }
end

local function collect()
  local lines = {}
  return lines, function(line) lines[#lines + 1] = line end
end

local function iterate(list)
  local i = 0
  return function() i = i + 1; return list[i] end
end

---------------------------------------------------------------------------------------------------
-- Without Redis: the format, the options, the memory store
---------------------------------------------------------------------------------------------------

M.TestStoreFormat = {}

function M.TestStoreFormat.test_parse_url()
  lu.assertEquals(store.parse_url("redis://127.0.0.1:6380/2"), { host = "127.0.0.1", port = 6380, db = 2 })
  lu.assertEquals(store.parse_url("redis://:secret@cache.local"),
    { host = "cache.local", port = 6379, password = "secret" })
  lu.assertEquals(store.parse_url("redis://"), { host = "127.0.0.1", port = 6379 })
  lu.assertEquals(store.parse_url("unix:///run/redis/redis.sock"), { path = "/run/redis/redis.sock" })
  lu.assertEquals(store.parse_url("unix://:secret@/tmp/r.sock?db=3"),
    { path = "/tmp/r.sock", db = 3, password = "secret" })
  local ok, err = store.parse_url("http://x")
  lu.assertNil(ok)
  lu.assertEquals(err, "store 'http://x': expected redis://[:password@]host[:port][/db] or "
    .. "unix://[:password@]/path/to/redis.sock[?db=N]")
  lu.assertStrContains(select(2, store.parse_url("unix://relative.sock")), "expected redis://")
  lu.assertEquals(select(2, store.parse_url("unix:///tmp/r.sock?database=2")),
    "store 'unix:///tmp/r.sock?database=2': the only option of a unix:// store is ?db=N")
end

function M.TestStoreFormat.test_bad_options_raise_at_the_caller()
  local ok, err = pcall(function() store.redis{ hots = "x" } end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_redis.lua")
  lu.assertStrContains(err, "store.redis: unknown option 'hots'")
  err = select(2, pcall(store.redis, { timeout = 0 }))
  lu.assertStrContains(err, "store.redis: option 'timeout' must be above 0 and at most 60 seconds")
  err = select(2, pcall(store.redis, { port = "6379" }))
  lu.assertStrContains(err, "store.redis: option 'port' must be a number")
  err = select(2, pcall(store.redis, { path = "/run/redis.sock", port = 6379 }))
  lu.assertStrContains(err, "store.redis: option 'path' (a Unix socket) goes without 'host' and 'port'")
  err = select(2, pcall(store.redis, { path = "" }))
  lu.assertStrContains(err, "store.redis: option 'path' must name a Unix socket")
end

function M.TestStoreFormat.test_a_line_says_what_it_was_given()
  local state = "1795000000:\0\1\2\255binary"
  local line = store.lead_line("L-1", '{"seniority":"VP"}', 7, state)
  lu.assertEquals(json.decode(line).profile, { seniority = "VP" })
  local id, profile, version, back = store.parse_line(line, 2)
  lu.assertEquals({ id, json.decode(profile), version, back }, { "L-1", { seniority = "VP" }, 7, state })
  id, profile = store.parse_line('{"lead":"L-2","profile":{}}', 3)
  lu.assertEquals({ id, profile }, { "L-2", "{}" })
  lu.assertEquals({ store.parse_line('{"lead":"L-3","profile":{},"state":"abc"}', 9) },
    { nil, "line 9: lead 'L-3': 'state' must be hex digits" })
  lu.assertEquals({ store.parse_line('[1]', 4) }, { nil, "line 4: 'lead' must be a lead id" })
  lu.assertEquals({ store.parse_line('{"lead":"L-4","profile":3}', 5) },
    { nil, "line 5: lead 'L-4': 'profile' must be an object" })
end

-- The core reads an export line without decoding its profile: whatever it takes, the JSON reader
-- takes too and reads the same; what the JSON reader refuses, the core never takes (it leaves a line
-- to the long way, which words the error with the line's number).
function M.TestStoreFormat.test_the_core_reads_a_line_as_the_json_reader_does()
  local core = require("leadq.core")
  local function agrees(line)
    local id, profile, version, state = core.state_line(line)
    if id == nil then return false end
    local value = json.decode(line)
    lu.assertNotNil(value, line)
    lu.assertEquals({ id, json.decode(profile), version, state },
      { value.lead, value.profile, value.version, value.state and core.hex_decode(value.state) or false }, line)
    return true
  end
  local taken = {
    '{"lead":"L-1","profile":{},"version":0}',
    '{"lead":"a.b:c@d+e_f-1","profile":{"s":"VP","n":-12.5e3,"t":true,"f":false,"z":null},"version":42,'
      .. '"state":"00ff10AB"}',
    '{"lead":"L-2","profile":{ "k" : "\\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00" , "x":0},"version":7}',
    '{"lead":"L-3","profile":{"name":"Zoë 日本 😀","a":"","b":1E+2},"version":123456789012345,"state":""}',
  }
  for _, line in ipairs(taken) do lu.assertTrue(agrees(line), line) end
  local refused = {   -- each refused by the JSON reader: the core must not take it
    '{"lead":"L-1","profile":{"a":1,"a":2},"version":1}',          -- a key twice
    '{"lead":"L-1","profile":{"a":"\1"},"version":1}',             -- a control character
    '{"lead":"L-1","profile":{"a":"\255"},"version":1}',           -- not UTF-8
    '{"lead":"L-1","profile":{"a":"\237\160\128"},"version":1}',   -- an encoded surrogate
    '{"lead":"L-1","profile":{"a":"\\ud83d"},"version":1}',        -- a lone surrogate
    '{"lead":"L-1","profile":{"a":"\\x"},"version":1}',            -- no such escape
    '{"lead":"L-1","profile":{"a":01},"version":1}',               -- a leading zero
    '{"lead":"L-1","profile":{"a":1.},"version":1}',
    '{"lead":"L-1","profile":{"a":1e999},"version":1}',            -- out of range
    '{"lead":"L-1","profile":{"a":tru},"version":1}',
    '{"lead":"L-1","profile":{"a":1,},"version":1}',
    '{"lead":"L-1","profile":{"a" 1},"version":1}',
    '{"lead":"L-1","profile":{"a":"b},"version":1}',
    '{"lead":"L-1","profile":{"a":1},"version":1,"state":"abc"}',  -- odd hex
    '{"lead":"L-1","profile":{"a":1},"version":1,"state":"zz"}',
    '{"lead":"L-1","profile":{"a":1},"version":1}x',
  }
  for _, line in ipairs(refused) do
    lu.assertNil(core.state_line(line), line)
    local id, err = store.parse_line(line, 12)
    lu.assertNil(id, line)
    lu.assertStrContains(err, "line 12: ", line)
  end
  -- left to the long way, yet good: nested values, escaped keys, another order of the fields
  for _, line in ipairs({ '{"lead":"L-1","profile":{"a":[1,{"b":2}]},"version":1}',
      '{"lead":"L-1","profile":{"\\u0061":1},"version":1}', '{"profile":{},"lead":"L-1","version":1}' }) do
    lu.assertNil(core.state_line(line), line)
    lu.assertEquals(store.parse_line(line, 2), "L-1")
  end
  -- damaged copies of a good line, from a fixed seed: whatever the core takes, the JSON reader reads alike
  local good = '{"lead":"L-9","profile":{"s":"V\\u00e9P","e":800,"d":"acme.com","b":true},"version":31,"state":"0a1b"}'
  local alphabet = '{}[]",:\\ue0123456789.-+Etrfalsn \1\127\195\169\255'
  local seed, taken_count = 7, 0
  local function random(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
  for _ = 1, 3000 do
    local line = good
    for _ = 1, random(3) do
      local at, k = random(#line), random(#alphabet)
      local op = random(3)
      if op == 1 then line = line:sub(1, at - 1) .. alphabet:sub(k, k) .. line:sub(at + 1)
      elseif op == 2 then line = line:sub(1, at - 1) .. line:sub(at + 1)
      else line = line:sub(1, at) .. alphabet:sub(k, k) .. line:sub(at + 1) end
    end
    if agrees(line) then taken_count = taken_count + 1 end
  end
  lu.assertTrue(taken_count > 100, "too few damaged lines still good for the comparison to say something")
end

function M.TestStoreFormat.test_hex_and_the_long_way()
  local core = require("leadq.core")
  local bytes = "\0\1\127\128\255" .. string.rep("ab", 600)
  lu.assertEquals(core.hex_encode("\0\255A"), "00ff41")
  lu.assertEquals(core.hex_decode(core.hex_encode(bytes)), bytes)
  lu.assertEquals(core.hex_decode("00FF"), "\0\255")
  lu.assertNil(core.hex_decode("abc"))
  lu.assertNil(core.hex_decode("0g"))
  -- a profile whose text holds what ends a line is read the long way, to the same result
  local profile = '{"note":"},\\"version\\":1}"}'
  local line = store.lead_line("L-1", profile, 4, "xy")
  local id, text, version, state = store.parse_line(line, 2)
  lu.assertEquals({ id, json.decode(text), version, state }, { "L-1", { note = '},"version":1}' }, 4, "xy" })
  -- ids that need quoting are quoted
  lu.assertEquals(json.decode(store.lead_line('a"b', "{}", 0, false)).lead, 'a"b')
end

function M.TestStoreFormat.test_memory_store_export_import_keeps_scores()
  local from = service.memory_store()
  local svc = new_service(from)
  svc:handle("POST", "/leads/L-1", VP)
  svc:handle("POST", "/leads/L-2", '{"seniority":"VP","employees":50}')
  for _ = 1, 3 do svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}') end
  local lines, write = collect()
  lu.assertEquals(store.export(from, write), 2)
  lu.assertEquals(lines[1], store.HEADER)
  local into = service.memory_store()
  lu.assertEquals(store.import(into, iterate(lines)), 2)
  local restored = new_service(into)
  for _, id in ipairs({ "L-1", "L-2" }) do
    local _, want = svc:handle("GET", "/leads/" .. id)
    local _, got = restored:handle("GET", "/leads/" .. id)
    lu.assertEquals(got.total, want.total)
    lu.assertEquals(got.features, want.features)
  end
  -- the versions came along: an event on the restored store skips the profile read as before
  local status, answer = restored:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.features.pricing_views_30d, 4)
end

-- An imported lead takes its version from the dict's counter: a profile written later never reuses
-- it, so no worker keeps a stale profile.
function M.TestStoreFormat.test_a_dict_import_takes_versions_from_the_dict()
  local mem = service.memory_store()
  local svc = new_service(mem)
  svc:handle("POST", "/leads/A", VP)
  lu.assertEquals(store.import(mem, iterate({ store.HEADER, store.lead_line("B", VP, 3, false) })), 1)
  local status, answer = svc:handle("POST", "/events", '{"lead":"B","type":"pricing_view"}')
  lu.assertEquals({ status, answer.total }, { 200, 45 })
  svc:handle("POST", "/leads/B", '{"employees":50}')
  status, answer = svc:handle("POST", "/events", '{"lead":"B","type":"pricing_view"}')
  lu.assertEquals({ status, answer.total }, { 200, 30 })   -- the new profile: no mid-market points
end

function M.TestStoreFormat.test_import_refuses_what_is_not_an_export()
  local st = service.memory_store()
  lu.assertEquals({ store.import(st, iterate({ '{"a":1}' })) },
    { nil, 'line 1: not a leadq state export (its first line must be {"format":1,"leadq":"state"})' })
  lu.assertEquals({ store.import(st, iterate({ '{"format":2,"leadq":"state"}' })) },
    { nil, "line 1: format 2 is not known (1 is)" })
  lu.assertEquals({ store.import(st, iterate({ store.HEADER, '{"lead":"L-1","profile":{}}', "nope" })) },
    { nil, "line 3: not a JSON object (malformed JSON at byte 1: unexpected character)" })
end

---------------------------------------------------------------------------------------------------
-- A redis-server of the suite's own, and plain Lua hosts on it (hiredis)
---------------------------------------------------------------------------------------------------

local redis, redis_err
local function redis_up()
  if redis then return redis end
  if redis_err then lu.fail(redis_err) end
  local ok, err = redis_server.install_deps()
  if not ok then redis_err = err; lu.fail(err) end
  local available, why = redis_server.available()
  if not available then redis_err = why; lu.fail(why) end
  redis, redis_err = redis_server.start()
  if not redis then lu.fail("redis-server did not start: " .. tostring(redis_err)) end
  return redis
end

local db_count = 0
local function fresh_store(opts)
  local r = redis_up()
  db_count = db_count % 3 + 1   -- databases 1 to 3 for these tests, emptied first
  opts = opts or {}
  local st = store.redis{ port = r.port, db = opts.db or db_count, client = "hiredis", timeout = 2 }
  assert(st.client:call("flushdb"))
  return st
end

M.TestRedisStore = {}

function M.TestRedisStore.teardownClass()
  if redis then redis:remove(); redis = nil end
end

function M.TestRedisStore.test_events_and_profiles_on_redis()
  local st = fresh_store()
  local svc = new_service(st)
  local status, answer = svc:handle("POST", "/leads/L-1", VP)
  lu.assertEquals(status, 201)
  lu.assertEquals(answer.total, 35)
  for i = 1, 3 do
    status, answer = svc:handle("POST", "/events", '{"lead":"L-1","type":"pricing_view"}')
    lu.assertEquals(status, 200)
    lu.assertEquals(answer.features.pricing_views_30d, i)
  end
  lu.assertEquals(answer.total, 60)
  status, answer = svc:handle("POST", "/leads/L-1", '{"employees":50}')
  lu.assertEquals(status, 200)
  lu.assertEquals(answer.total, 45)
  status, answer = svc:handle("GET", "/leads/L-1")
  lu.assertEquals({ status, answer.total, answer.features.pricing_views_30d }, { 200, 45, 3 })
  lu.assertEquals(answer.profile, { seniority = "VP", employees = 50, email_domain = "acme.com" })
  status, answer = svc:handle("POST", "/events", '{"lead":"L-9","type":"pricing_view"}')
  lu.assertEquals({ status, answer.error }, { 404, "unknown lead 'L-9': POST /leads/L-9 its profile first" })
  -- one hash per lead, its id in a hash tag
  lu.assertEquals(st.client:call("keys", "*"), { "leadq:{L-1}" })
end

-- A Redis on the same host through its Unix socket: the same leads as through TCP, and a socket that
-- is not there is an unavailable store, named.
function M.TestRedisStore.test_a_unix_socket_reaches_the_same_leads()
  local st = fresh_store()
  local over_socket = store.redis{ path = redis.socket, db = st.cfg.db, client = "hiredis", timeout = 2 }
  lu.assertEquals(over_socket.description, "redis unix:" .. redis.socket .. "/" .. st.cfg.db)
  local tcp_node, socket_node = new_service(st), new_service(over_socket)
  lu.assertEquals(tcp_node:handle("POST", "/leads/L-1", VP), 201)
  for i = 1, 4 do
    local status, answer = (i % 2 == 0 and tcp_node or socket_node):handle("POST", "/events",
      '{"lead":"L-1","type":"pricing_view"}')
    lu.assertEquals({ status, answer.features.pricing_views_30d }, { 200, i })
  end
  local _, _, _, stamp = st:read_lead("L-1", false)
  lu.assertEquals(stamp, "5")
  over_socket:close()
  local missing = store.redis{ path = redis.dir .. "/no.sock", client = "hiredis" }
  local profile, err = missing:read_lead("L-1", true)
  lu.assertNil(profile)
  lu.assertStrContains(err, "redis: cannot connect to " .. redis.dir .. "/no.sock: ")
end

function M.TestRedisStore.test_a_stale_stamp_writes_nothing()
  local st = fresh_store()
  local svc = new_service(st)
  svc:handle("POST", "/leads/L-1", VP)
  local profile, version, state, stamp = st:read_lead("L-1", true)
  lu.assertEquals({ json.decode(profile).seniority, version, state, stamp }, { "VP", 1, false, "1" })
  lu.assertEquals(st:write_state("L-1", "1", "x"), "2")
  -- another writer came first: nothing written, and the lead as it is now, for the retry
  lu.assertEquals({ st:write_state("L-1", "1", "y") }, { false, "2", "x", 1 })
  lu.assertEquals(st:write_profile("L-1", "1", "{}"), false)
  lu.assertEquals(select(3, st:read_lead("L-1")), "x")
  lu.assertEquals({ st:write_state("L-2", "0", "z") }, { false })   -- no lead, no state
  lu.assertEquals(st.client:call("exists", "leadq:{L-2}"), 0)
end

-- Two services (two nodes) on one Redis, their writes interleaved between another's read and write:
-- the one that lost the race reads again and counts both events.
function M.TestRedisStore.test_two_nodes_racing_lose_no_event()
  local st = fresh_store()
  local a, b = new_service(st), new_service(store.redis{ port = redis.port, db = st.cfg.db, client = "hiredis" })
  a:handle("POST", "/leads/L-1", VP)
  local raced = 0
  local write_state = st.write_state
  st.write_state = function(self, id, stamp, state)
    if raced < 3 then   -- node b takes an event for the same lead just before a's write
      raced = raced + 1
      local status = b:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
      lu.assertEquals(status, 200)
    end
    return write_state(self, id, stamp, state)
  end
  local status, answer = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 200)
  lu.assertEquals(raced, 3)
  lu.assertEquals(answer.features.page_views_7d, 4)
  st.write_state = nil
  -- a profile changed on b: a's cached profile is stale, its next event reads the new one
  b:handle("POST", "/leads/L-1", '{"seniority":"Manager"}')
  status, answer = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals({ status, answer.total, answer.features.page_views_7d }, { 200, 15, 5 })
end

-- Two workers of one node (two services, each its own connection, one shared cache): events for one
-- lead taken by each in turn are written in one script call each, none refused; a cache entry that is
-- stale or wrong costs a refused write, never a lost or doubled event; a profile changed by the other
-- worker is read again.
function M.TestRedisStore.test_workers_sharing_a_cache_write_in_one_call()
  local st = fresh_store()
  local cache = service.memory_store()
  local function worker() return store.redis{ port = redis.port, db = st.cfg.db, client = "hiredis", cache = cache } end
  local a, b = new_service(worker()), new_service(worker())
  a:handle("POST", "/leads/L-1", VP)
  for _ = 1, 2 do   -- both know the lead (profile cached) before counting
    a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
    b:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  end
  local function script_calls()
    local stats = st.client:call("info", "commandstats")
    return tonumber(stats:match("cmdstat_evalsha:calls=(%d+)") or 0)
  end
  local before = script_calls()
  local status, answer
  for i = 1, 10 do
    status, answer = (i % 2 == 1 and a or b):handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
    lu.assertEquals(status, 200)
  end
  lu.assertEquals(answer.features.page_views_7d, 14)
  lu.assertEquals(script_calls() - before, 10)
  -- without the shared cache the same turns are refused and retried: the cache is what saves them
  local c, d = new_service(store.redis{ port = redis.port, db = st.cfg.db, client = "hiredis" }),
    new_service(store.redis{ port = redis.port, db = st.cfg.db, client = "hiredis" })
  c:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  d:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  before = script_calls()
  for _ = 1, 10 do c:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}'); c, d = d, c end
  lu.assertEquals(script_calls() - before, 20)
  -- a wrong entry (an old stamp with another state) is refused by Redis and replaced
  local key = "leadq:{L-1}"
  local entry = cache:get(key)
  cache:set(key, "3 1 1795000000:garbage")
  status, answer = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals({ status, answer.features.page_views_7d }, { 200, 27 })
  lu.assertNotEquals(cache:get(key), entry)
  lu.assertEquals(select(2, a.store:known("L-1")), 1)
  -- b changes the profile: a's next event reads it (the scores differ by the mid-market points)
  local total_before = answer.total
  b:handle("POST", "/leads/L-1", '{"employees":50}')
  b:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  status, answer = a:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals({ status, answer.features.page_views_7d }, { 200, 29 })
  local _, want = b:handle("GET", "/leads/L-1")
  lu.assertEquals(want.profile, { seniority = "VP", employees = 50, email_domain = "acme.com" })
  lu.assertEquals(answer.total, want.total)
  lu.assertNotEquals(answer.total, total_before)
  -- an unknown shared dict is refused by name
  local ok, err = pcall(store.redis, { cache = "nope" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "store.redis: option 'cache': no lua_shared_dict named 'nope'")
end

function M.TestRedisStore.test_redis_down_is_a_503_and_writes_nothing()
  local r = redis_up()
  local st = fresh_store()
  local svc = new_service(st)
  svc:handle("POST", "/leads/L-1", VP)
  svc:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  local closed = store.redis{ port = r.port == 65535 and 65534 or r.port + 1, client = "hiredis", timeout = 0.2 }
  local down = new_service(closed)
  local status, answer, headers = down:handle("POST", "/events", '{"lead":"L-1","type":"page_view"}')
  lu.assertEquals(status, 503)
  lu.assertEquals(headers, { ["Retry-After"] = "1" })
  lu.assertStrContains(answer.error, "lead store unavailable, try again: redis: cannot connect to 127.0.0.1:")
  status = down:handle("POST", "/leads/L-2", VP)
  lu.assertEquals(status, 503)
  local ok, err = pcall(down.handle, down, "GET", "/leads/L-1")
  lu.assertFalse(ok)
  lu.assertTrue(store.is_unavailable(err))
  lu.assertStrContains(tostring(err), "lead store unavailable: redis: cannot connect")
  -- the store it failed to reach is unchanged
  status, answer = svc:handle("GET", "/leads/L-1")
  lu.assertEquals({ status, answer.features.page_views_7d }, { 200, 1 })
end

function M.TestRedisStore.test_export_then_import_into_another_database()
  local from = fresh_store()
  local svc = new_service(from)
  for i = 1, 25 do
    svc:handle("POST", "/leads/L-" .. i, VP)
    for _ = 1, i % 4 do svc:handle("POST", "/events", '{"lead":"L-' .. i .. '","type":"pricing_view"}') end
  end
  local lines, write = collect()
  lu.assertEquals(store.export(from, write), 25)
  -- the lines the core makes are the lines lead_line makes; an id that needs quoting, a version that
  -- is no plain number and a lead without a state included (written straight into Redis)
  assert(from.client:call("hset", 'leadq:{q"1}', "p", '{"seniority":"VP"}', "v", "4", "n", "4"))
  assert(from.client:call("hset", "leadq:{odd-version}", "p", "{}", "v", "x7", "s", "\0\1", "n", "2"))
  assert(from.client:call("hset", "leadq:{no-profile}", "s", "\0\1", "n", "2"))
  local lead_lines, by_lead = collect()
  local batch_lines, by_batch = collect()
  lu.assertEquals(store.export(from, by_lead), 27)
  local batch_count = store.export(from, by_batch, function(text)
    lu.assertEquals(text:sub(-1), "\n")
    for line in text:gmatch("[^\n]+") do by_batch(line) end
  end)
  lu.assertEquals(batch_count, 27)
  table.sort(lead_lines)
  table.sort(batch_lines)
  lu.assertEquals(batch_lines, lead_lines)
  local text = table.concat(lead_lines, "\n")
  lu.assertStrContains(text, '{"lead":"odd-version","profile":{},"version":0,"state":"0001"}')
  lu.assertStrContains(text, '{"lead":"q\\"1","profile":{"seniority":"VP"},"version":4}')
  for _, key in ipairs({ 'leadq:{q"1}', "leadq:{odd-version}", "leadq:{no-profile}" }) do
    assert(from.client:call("del", key))
  end
  -- a few keys a round trip: every lead once, over many overlapped batches
  local seen, count = {}, 0
  assert(from:each_lead(function(id) if not seen[id] then seen[id], count = true, count + 1 end end, 2))
  lu.assertEquals(count, 25)
  local into = fresh_store()
  lu.assertEquals(store.import(into, iterate(lines), 7), 25)
  local restored = new_service(into)
  for i = 1, 25 do
    local _, want = svc:handle("GET", "/leads/L-" .. i)
    local _, got = restored:handle("GET", "/leads/L-" .. i)
    lu.assertEquals({ got.total, got.features }, { want.total, want.features })
  end
  -- a lead imported again over one a service holds: the new profile is read, not the cached one
  restored:handle("POST", "/events", '{"lead":"L-2","type":"pricing_view"}')   -- cached, with its stamp
  local changed = {}
  for i, line in ipairs(lines) do
    changed[i] = line:find('"lead":"L-2"', 1, true) and line:gsub('"employees":800', '"employees":50') or line
  end
  lu.assertEquals(store.import(into, iterate(changed)), 25)
  local status, answer = restored:handle("POST", "/events", '{"lead":"L-2","type":"pricing_view"}')
  lu.assertEquals({ status, answer.total }, { 200, 45 })   -- 20 fit (no mid-market now) + 25 engagement
  -- and into a memory store (what a shared dict is given by the service's state location)
  local mem = service.memory_store()
  lu.assertEquals(store.import(mem, iterate(lines)), 25)
  local _, got = new_service(mem):handle("GET", "/leads/L-3")
  lu.assertEquals(got.features.pricing_views_30d, 3)
end

-- An import writes a hundred leads a script call (one call each on a Redis Cluster): the stored
-- leads are those of one call each, and a lead Redis refuses is named, the ones before it written.
function M.TestRedisStore.test_grouped_import_writes_what_one_at_a_time_writes()
  local lines = { store.HEADER }
  for i = 1, 250 do
    lines[#lines + 1] = store.lead_line("G-" .. i, '{"employees":' .. i .. '}', i, i % 3 == 0 and "\0\1" or false)
  end
  local grouped, single = fresh_store(), fresh_store()
  single.cluster = true   -- as on a Redis Cluster: a script call per lead
  lu.assertEquals(store.import(grouped, iterate(lines), 120), 250)
  lu.assertEquals(store.import(single, iterate(lines), 120), 250)
  lu.assertFalse(grouped.cluster)
  for _, i in ipairs({ 1, 99, 100, 101, 120, 121, 200, 250 }) do
    local key = "leadq:{G-" .. i .. "}"
    lu.assertEquals(grouped.client:call("hmget", key, "p", "v", "s", "n"),
      single.client:call("hmget", key, "p", "v", "s", "n"))
  end
  -- lead G-150 is a string in Redis, not a hash: the import stops there, naming it
  local into = fresh_store()
  assert(into.client:call("set", "leadq:{G-150}", "not a hash"))
  local count, err = store.import(into, iterate(lines), 120)
  lu.assertNil(count)
  lu.assertStrContains(err, "redis: lead 'G-150': WRONGTYPE")
  lu.assertEquals(into.client:call("hget", "leadq:{G-149}", "p"), '{"employees":149}')
  lu.assertEquals(into.client:call("get", "leadq:{G-150}"), "not a hash")
  lu.assertFalse(into.client:call("hget", "leadq:{G-151}", "p"))
end

---------------------------------------------------------------------------------------------------
-- `leadq state`: in this process, as the command runs it
---------------------------------------------------------------------------------------------------

local function leadq(argv)
  local cli = require("leadq.cli")
  local printed, errors = {}, {}
  local code = cli.main(argv, { print = function(l) printed[#printed + 1] = l end,
    error = function(l) errors[#errors + 1] = l end })
  return code, table.concat(printed, "\n"), table.concat(errors, "\n")
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. harness.quote(dir)))
  return dir
end

M.TestStateCommand = {}

function M.TestStateCommand.teardownClass()
  if redis then redis:remove(); redis = nil end
end

function M.TestStateCommand.test_usage_errors()
  local code, _, err = leadq({ "state" })
  lu.assertEquals(code, 1)
  lu.assertEquals(err, "leadq: state needs an action: export, import or load")
  code, _, err = leadq({ "state", "backup", "--store", "redis://" })
  lu.assertEquals({ code, err }, { 1, "leadq: state: unknown action 'backup' (export, import or load)" })
  code, _, err = leadq({ "state", "export", "--store", "mysql://x", "--out", "/tmp/x" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "leadq: --store 'mysql://x': expected redis://")
  code, _, err = leadq({ "state", "export", "--out", "/tmp/x" })
  lu.assertEquals({ code, err }, { 1, "leadq: state export needs --store" })
end

-- Warm-up: the service then scores every lead as `leadq score` does on the same data.
function M.TestStateCommand.test_load_then_the_service_scores_as_score_does()
  local r = redis_up()
  local dir = tmpdir()
  local n = LEADQ_VARIANT == "asan" and 60 or 300
  local code, _, err = leadq({ "gen", "--leads", tostring(n), "--seed", "3", "--out", dir })
  lu.assertEquals(code, 0, err)
  local out
  local url = "redis://127.0.0.1:" .. r.port .. "/3"
  local st = fresh_store{ db = 3 }
  code, out, err = leadq({ "state", "load", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv",
    "--events", dir .. "/events.csv", "--store", url })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "loaded " .. n .. " leads")
  local score_code, _, score_err = leadq({ "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv",
    "--events", dir .. "/events.csv", "--as-of", "2026-11-01", "--out", dir .. "/scores.csv" })
  lu.assertEquals(score_code, 0, score_err)
  local as_of = assert(require("leadq").parse_time("2026-11-01"))
  local svc = service.new{ model = assert(require("leadq").load_model("rules/mql.lua")), store = st,
    clock = function() return as_of end }
  local compared, moved = 0, 0
  local scores = assert(require("leadq").read_csv(dir .. "/scores.csv", { schema = { id = "text", grade = "text" } }))
  for i = 1, #scores do
    local want = scores:row(i)
    local status, got = svc:handle("GET", "/leads/" .. want.id)
    lu.assertEquals(status, 200, want.id)
    lu.assertEquals({ want.id, got.total, got.status, got.grade }, { want.id, want.total, want.status, want.grade })
    compared = compared + 1
    if want.total > 0 then moved = moved + 1 end
  end
  lu.assertEquals(compared, n)
  lu.assertTrue(moved > n / 10, "too few leads score at all for the comparison to say something")
  os.execute("rm -rf " .. harness.quote(dir))
end

function M.TestStateCommand.test_export_and_import_through_the_command()
  local r = redis_up()
  local st = fresh_store{ db = 1 }
  local svc = new_service(st)
  for i = 1, 12 do
    svc:handle("POST", "/leads/C-" .. i, VP)
    svc:handle("POST", "/events", '{"lead":"C-' .. i .. '","type":"webinar_attended"}')
  end
  local dir = tmpdir()
  local code, out, err = leadq({ "state", "export", "--store", "redis://127.0.0.1:" .. r.port .. "/1",
    "--out", dir .. "/leads.ndjson" })
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "exported 12 leads from redis://127.0.0.1:" .. r.port .. "/1 to " .. dir .. "/leads.ndjson")
  fresh_store{ db = 2 }
  code, out, err = leadq({ "state", "import", "--store", "redis://127.0.0.1:" .. r.port .. "/2",
    "--in", dir .. "/leads.ndjson" })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "imported 12 leads")
  local copy = new_service(store.redis{ port = r.port, db = 2, client = "hiredis" })
  local status, answer = copy:handle("GET", "/leads/C-7")
  lu.assertEquals({ status, answer.total, answer.features.webinars_90d }, { 200, 45, 1 })
  code, out, err = leadq({ "state", "import", "--store", "redis://127.0.0.1:" .. r.port .. "/2",
    "--in", dir .. "/missing.ndjson" })
  lu.assertEquals({ code, out }, { 1, "" })
  lu.assertStrContains(err, "import into redis://127.0.0.1:" .. r.port .. "/2 failed: " .. dir .. "/missing.ndjson")
  -- the same Redis through its Unix socket: the export is the same lines
  local socket_url = "unix://" .. r.socket .. "?db=1"
  code, out, err = leadq({ "state", "export", "--store", socket_url, "--out", dir .. "/over_socket.ndjson" })
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "exported 12 leads from " .. socket_url .. " to " .. dir .. "/over_socket.ndjson")
  lu.assertEquals(helpers.read(dir .. "/over_socket.ndjson"), helpers.read(dir .. "/leads.ndjson"))
  os.execute("rm -rf " .. harness.quote(dir))
end

---------------------------------------------------------------------------------------------------
-- Two nginx nodes of two workers each on one Redis (luajit variant: nginx runs LuaJIT)
---------------------------------------------------------------------------------------------------

M.TestRedisNginx = {}

local nodes, nodes_err
local LEADS = 10

-- over_socket: the node reaches Redis through its Unix socket (store.redis{ path = }), else TCP
local function start_node(r, db, over_socket)
  local root = harness.root()
  local address = over_socket and string.format('path = "%s"', r.socket) or
    string.format('host = "127.0.0.1", port = %d', r.port)
  local node, err = harness.start{ rules = root .. "/" .. RULES, root = root,
    lib_dir = root .. "/" .. (os.getenv("LEADQ_BUILD") or "build") .. "/lib/luajit",
    template = "nginx-redis.conf.tmpl", vars = { REDIS_ADDRESS = address, REDIS_DB = db or 0, REDIS_TIMEOUT = 0.3 } }
  if not node then lu.fail("nginx did not start: " .. tostring(err)) end
  return node
end

local function two_nodes()
  if LEADQ_VARIANT ~= "luajit" then lu.skip("the nginx service runs under the luajit variant") end
  if nodes then return nodes end
  if nodes_err then lu.fail(nodes_err) end
  local ok, err = harness.install_deps()
  if not ok then nodes_err = err; lu.fail(err) end
  local available, why = harness.available()
  if not available then nodes_err = why; lu.fail(why) end
  local r = redis_up()
  nodes = { a = start_node(r), b = start_node(r) }
  return nodes
end

function M.TestRedisNginx.teardownClass()
  if nodes then
    if nodes.a then nodes.a:stop() end
    if nodes.b then nodes.b:stop() end
    nodes = nil
  end
  if redis then redis:remove(); redis = nil end
end

local function post(node, path, body) return node:request("POST", path, body) end

-- Every lead's page views as the node answers them.
local function page_views(node, prefix)
  local counts = {}
  for i = 1, LEADS do
    local res = node:request("GET", "/leads/" .. prefix .. i)
    lu.assertEquals(res.status, 200, res.body)
    lu.assertNil(res.json.note, res.body)   -- a state that could not be read says so in a note
    counts[i] = res.json.features.page_views_7d
  end
  return counts
end

-- A curl config of n POST /events, over keep-alive, spread over the leads; run it with --parallel.
local function events_config(node, path, prefix, n)
  local lines = {}
  for k = 1, n do
    lines[#lines + 1] = string.format('url = "%s/events"\nrequest = "POST"\nheader = "Content-Type: application/json"\n'
      .. 'data-binary = "{\\"lead\\":\\"%s%d\\",\\"type\\":\\"page_view\\"}"\noutput = "/dev/null"\n'
      .. 'write-out = "%%{http_code}\\n"\n', node.base, prefix, (k - 1) % LEADS + 1)
    if k < n then lines[#lines + 1] = "next\n" end
  end
  harness.write_file(path, table.concat(lines))
end

local function count_codes(text)
  local codes = {}
  for line in text:gmatch("[^\n]+") do
    local code = tonumber(line:match("^(%d%d%d)$")) or line   -- anything else is kept as it is, to be seen
    codes[code] = (codes[code] or 0) + 1
  end
  return codes
end

local function create_leads(node, prefix)
  for i = 1, LEADS do
    local res = post(node, "/leads/" .. prefix .. i, VP)
    lu.assertEquals(res.status, 201, res.body)
  end
end

function M.TestRedisNginx.test_1_two_clients_through_two_nodes_lose_no_event()
  local n = two_nodes()
  lu.assertEquals(#n.a:workers(), 2)
  lu.assertEquals(#n.b:workers(), 2)
  create_leads(n.a, "R-")
  local per_client = 2000
  events_config(n.a, n.a.prefix .. "/events_a.curl", "R-", per_client)
  events_config(n.b, n.b.prefix .. "/events_b.curl", "R-", per_client)
  -- both clients at once, each with 4 requests in flight
  local out_a, out_b = n.a.prefix .. "/codes_a.txt", n.b.prefix .. "/codes_b.txt"
  os.execute(string.format("curl -sS --parallel --parallel-max 4 -K %s > %s 2>/dev/null & "
    .. "curl -sS --parallel --parallel-max 4 -K %s > %s 2>/dev/null & wait",
    harness.quote(n.a.prefix .. "/events_a.curl"), harness.quote(out_a),
    harness.quote(n.b.prefix .. "/events_b.curl"), harness.quote(out_b)))
  lu.assertEquals(count_codes(harness.read_file(out_a)), { [200] = per_client })   -- never 409 busy
  lu.assertEquals(count_codes(harness.read_file(out_b)), { [200] = per_client })
  local want = {}
  for i = 1, LEADS do want[i] = 2 * per_client / LEADS end
  lu.assertEquals(page_views(n.a, "R-"), want)
  lu.assertEquals(page_views(n.b, "R-"), want)
end

-- Requests that wait on Redis at the same time in one worker: each answer is its own event's, with
-- its own lead's features (the values are computed before the write, the answer made after it).
function M.TestRedisNginx.test_1b_answers_of_concurrent_events_are_each_their_own()
  local n = two_nodes()
  create_leads(n.a, "Q-")
  local per_lead, dir = 60, n.a.prefix .. "/answers_q"
  os.execute("mkdir -p " .. harness.quote(dir))
  local lines = {}
  for k = 1, per_lead * LEADS do
    lines[#lines + 1] = string.format('url = "%s/events"\nrequest = "POST"\nheader = "Content-Type: application/json"\n'
      .. 'data-binary = "{\\"lead\\":\\"Q-%d\\",\\"type\\":\\"page_view\\"}"\noutput = "%s/%d.json"\n',
      n.a.base, (k - 1) % LEADS + 1, dir, k)
    if k < per_lead * LEADS then lines[#lines + 1] = "next\n" end
  end
  harness.write_file(n.a.prefix .. "/events_q.curl", table.concat(lines))
  -- Redis's own counts: the commands it ran and the reads it made from its clients
  local stats = assert(require("leadq.core").redis_connect("127.0.0.1", redis.port, 5))
  local function counts()
    local info = assert(stats:call("info", "all"))
    return tonumber(info:match("cmdstat_evalsha:calls=(%d+)")) or 0, tonumber(info:match("total_reads_processed:(%d+)"))
  end
  local scripts_before, reads_before = counts()
  os.execute(string.format("curl -sS --parallel --parallel-max 8 -K %s 2>/dev/null",
    harness.quote(n.a.prefix .. "/events_q.curl")))
  local scripts_after, reads_after = counts()
  stats:close()
  -- the events waiting at once in a worker went to Redis together: fewer reads than commands
  local scripts, reads = scripts_after - scripts_before, reads_after - reads_before - 1
  lu.assertTrue(scripts >= per_lead * LEADS and reads < 0.9 * scripts,
    string.format("%d script calls came in %d reads", scripts, reads))
  -- each lead's answers count 1, 2, ..., per_lead page views, each once, in whatever order they came
  local seen = {}
  for k = 1, per_lead * LEADS do
    local text = harness.read_file(dir .. "/" .. k .. ".json")
    local answer = text and json.decode(text)
    lu.assertNotNil(answer, "event " .. k .. ": " .. tostring(text))
    lu.assertEquals(answer.lead, "Q-" .. ((k - 1) % LEADS + 1), text)
    local views = answer.features.page_views_7d
    seen[answer.lead] = seen[answer.lead] or {}
    lu.assertNil(seen[answer.lead][views], string.format("%s: two answers count %s page views", answer.lead, views))
    seen[answer.lead][views] = true
  end
  for i = 1, LEADS do
    for v = 1, per_lead do lu.assertTrue(seen["Q-" .. i][v], string.format("Q-%d: no answer counts %d", i, v)) end
  end
end

function M.TestRedisNginx.test_2_a_lead_made_on_one_node_scores_on_the_other()
  local n = two_nodes()
  local res = post(n.a, "/leads/X-1", VP)
  lu.assertEquals(res.status, 201, res.body)
  res = post(n.b, "/events", '{"lead":"X-1","type":"pricing_view"}')
  lu.assertEquals({ res.status, res.json.total }, { 200, 45 })
  res = post(n.b, "/leads/X-1", '{"employees":50}')   -- b changes the profile: a reads the new one
  lu.assertEquals(res.status, 200, res.body)
  res = post(n.a, "/events", '{"lead":"X-1","type":"pricing_view"}')
  lu.assertEquals({ res.status, res.json.total, res.json.features.pricing_views_30d }, { 200, 30, 2 })
  res = n.b:request("GET", "/leads/X-1")
  lu.assertEquals({ res.status, res.json.total, res.json.profile.employees }, { 200, 30, 50 })
end

function M.TestRedisNginx.test_3_nginx_stopped_and_started_keeps_every_state()
  local n = two_nodes()
  local before = page_views(n.b, "R-")
  n.a:stop()
  n.a = nil
  n.a = start_node(redis)
  lu.assertEquals(page_views(n.a, "R-"), before)
  local res = post(n.a, "/events", '{"lead":"R-1","type":"page_view"}')
  lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, before[1] + 1 })
end

function M.TestRedisNginx.test_4_redis_restarted_from_its_aof_keeps_every_state()
  local n = two_nodes()
  local before = page_views(n.a, "R-")
  redis:stop()
  local res = post(n.a, "/events", '{"lead":"R-2","type":"page_view"}')
  lu.assertEquals(res.status, 503, res.body)
  assert(redis:start_again())
  lu.assertEquals(page_views(n.b, "R-"), before)
  res = post(n.b, "/events", '{"lead":"R-2","type":"page_view"}')
  lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, before[2] + 1 })
end

-- Redis stops while events flow: the node answers 503 with Retry-After, acknowledges nothing it did
-- not store, and serves again by itself once Redis is back; every state still reads.
function M.TestRedisNginx.test_5_redis_stopped_mid_run_gives_503s_and_no_corrupted_state()
  local n = two_nodes()
  create_leads(n.a, "S-")
  local total = 1500
  local config, codes_file = n.a.prefix .. "/events_s.curl", n.a.prefix .. "/codes_s.txt"
  events_config(n.a, config, "S-", total)
  -- Redis is stopped once 300 answers are in (bounded: 10 s at most; stdbuf: curl writes each as it comes)
  -- (the file is made first: the loop must never read it before the background curl's shell has)
  os.execute(string.format(": > %s; stdbuf -oL curl -sS --parallel --parallel-max 4 -K %s >> %s 2>/dev/null & i=0; "
    .. "while [ $i -lt 1000 ] && [ \"$(wc -l < %s)\" -lt 300 ]; do sleep 0.01; i=$((i+1)); done; kill -TERM %d; wait",
    harness.quote(codes_file), harness.quote(config), harness.quote(codes_file), harness.quote(codes_file), redis.pid))
  local res = post(n.a, "/events", '{"lead":"S-1","type":"page_view"}')
  lu.assertEquals(res.status, 503, res.body)
  lu.assertEquals(res.headers["retry-after"], "1")
  lu.assertStrContains(res.json.error, "lead store unavailable, try again: redis: ")
  res = n.b:request("GET", "/leads/S-1")
  lu.assertEquals(res.status, 503, res.body)
  lu.assertEquals(res.headers["retry-after"], "1")
  res = post(n.b, "/leads/S-1", VP)   -- a profile's write says why too
  lu.assertEquals(res.status, 503, res.body)
  lu.assertStrContains(res.json.error, "lead store unavailable, try again: redis: ")
  local codes = count_codes(harness.read_file(codes_file))
  lu.assertEquals((codes[200] or 0) + (codes[503] or 0), total, harness.read_file(codes_file):sub(1, 300))
  lu.assertTrue((codes[200] or 0) > 0 and (codes[503] or 0) > 0,
    string.format("Redis stopped before or after the run: %d answers 200, %d 503", codes[200] or 0, codes[503] or 0))
  redis:stop()
  assert(redis:start_again())
  local recovered
  for _ = 1, 40 do
    res = post(n.a, "/events", '{"lead":"S-1","type":"page_view"}')
    if res.status == 200 then recovered = true break end
    harness.sleep(0.05)
  end
  lu.assertTrue(recovered, "the node did not serve again after Redis came back: " .. res.body)
  -- every acknowledged event is counted; an event in flight when Redis stopped may be stored without
  -- its answer (at most one per request in flight), never half of one
  local counted = -1   -- the event of the recovery
  for _, c in ipairs(page_views(n.b, "S-")) do counted = counted + c end
  lu.assertTrue(counted >= codes[200] and counted <= codes[200] + 4,
    string.format("%d events counted, %d acknowledged", counted, codes[200]))
end

-- Redis slower than the configured timeout (0.3 s here): the node answers 503 in bounded time, and
-- serves again once Redis answers.
function M.TestRedisNginx.test_5b_redis_slower_than_the_timeout_gives_a_503_in_bounded_time()
  local n = two_nodes()
  local res = post(n.a, "/leads/T-1", VP)
  lu.assertEquals(res.status, 201, res.body)
  local out = n.a.prefix .. "/slow.txt"
  -- the request starts 0.2 s into Redis's 1.5 s sleep, while this process holds the sleeping connection
  os.execute(string.format("(sleep 0.2; curl -sS -o /dev/null -w '%%{http_code} %%{time_total}\\n' --max-time 5 "
    .. "-H 'Content-Type: application/json' --data-binary '{\"lead\":\"T-1\",\"type\":\"page_view\"}' %s > %s) "
    .. "</dev/null >/dev/null 2>&1 &", harness.quote(n.a.base .. "/events"), harness.quote(out)))
  local conn = assert(require("leadq.core").redis_connect("127.0.0.1", redis.port, 5))
  assert(conn:call("debug", "sleep", "1.5"))
  conn:close()
  local answer
  for _ = 1, 60 do
    answer = harness.read_file(out)
    if answer and answer:find("\n") then break end
    harness.sleep(0.05)
  end
  local code, seconds = (answer or ""):match("^(%d+) ([%d.]+)")
  lu.assertEquals(code, "503", answer)
  lu.assertTrue(tonumber(seconds) < 1.0, "a 503 after " .. tostring(seconds) .. " s: the timeout is 0.3 s")
  -- A write sent before the timeout may still land when Redis wakes (a timeout cannot tell); a worker
  -- without the lead's stamp times out on the read, before any write: the timed-out event counts once at most.
  res = post(n.a, "/events", '{"lead":"T-1","type":"page_view"}')
  lu.assertEquals(res.status, 200, res.body)
  local views = res.json.features.page_views_7d
  lu.assertTrue(views == 1 or views == 2, "page views " .. tostring(views))
end

-- A node on Redis's Unix socket beside a node on TCP: the same leads, no event lost between them.
function M.TestRedisNginx.test_5c_a_node_on_the_unix_socket_shares_the_leads()
  local n = two_nodes()
  local c = start_node(redis, 0, true)
  local ok, failure = pcall(function()
    create_leads(n.a, "U-")
    local res = post(c, "/events", '{"lead":"U-1","type":"pricing_view"}')
    lu.assertEquals({ res.status, res.json.total }, { 200, 45 })
    local per_client = 500
    events_config(n.a, n.a.prefix .. "/events_u_tcp.curl", "U-", per_client)
    events_config(c, c.prefix .. "/events_u_unix.curl", "U-", per_client)
    local out_tcp, out_unix = n.a.prefix .. "/codes_u_tcp.txt", c.prefix .. "/codes_u_unix.txt"
    os.execute(string.format("curl -sS --parallel --parallel-max 4 -K %s > %s 2>/dev/null & "
      .. "curl -sS --parallel --parallel-max 4 -K %s > %s 2>/dev/null & wait",
      harness.quote(n.a.prefix .. "/events_u_tcp.curl"), harness.quote(out_tcp),
      harness.quote(c.prefix .. "/events_u_unix.curl"), harness.quote(out_unix)))
    lu.assertEquals(count_codes(harness.read_file(out_tcp)), { [200] = per_client })
    lu.assertEquals(count_codes(harness.read_file(out_unix)), { [200] = per_client })
    local want = {}
    for i = 1, LEADS do want[i] = 2 * per_client / LEADS end
    lu.assertEquals(page_views(c, "U-"), want)
    lu.assertEquals(page_views(n.b, "U-"), want)
    -- a node on another database (SELECT on each new connection) sees none of them
    local other = start_node(redis, 2, true)
    res = post(other, "/events", '{"lead":"U-1","type":"page_view"}')
    local res_new = post(other, "/leads/U-1", VP)
    -- and exports just its own through its state location (SCAN and HMGET pipelines, in nginx)
    local file = c.prefix .. "/other.ndjson"
    local code, out, cerr = leadq({ "state", "export", "--store", other.base, "--out", file })
    other:stop()
    lu.assertEquals({ res.status, res.json.error }, { 404, "unknown lead 'U-1': POST /leads/U-1 its profile first" })
    lu.assertEquals(res_new.status, 201, res_new.body)
    lu.assertEquals({ code, out }, { 0, "exported 1 leads from " .. other.base .. " to " .. file }, cerr)
    lu.assertStrContains(harness.read_file(file), '{"lead":"U-1","profile":{')
  end)
  c:stop()
  if not ok then error(failure, 0) end
end

-- The shared-dict service's state location: export it, import into Redis, serve the same leads.
function M.TestRedisNginx.test_6_shared_dict_state_moves_to_redis()
  local n = two_nodes()
  local root = harness.root()
  local dict_node, err = harness.start{ rules = root .. "/" .. RULES, root = root,
    lib_dir = root .. "/" .. (os.getenv("LEADQ_BUILD") or "build") .. "/lib/luajit" }
  if not dict_node then lu.fail("nginx did not start: " .. tostring(err)) end
  local ok, failure = pcall(function()
    for i = 1, 5 do
      lu.assertEquals(post(dict_node, "/leads/D-" .. i, VP).status, 201)
      for _ = 1, i do
        lu.assertEquals(post(dict_node, "/events", '{"lead":"D-' .. i .. '","type":"page_view"}').status, 200)
      end
    end
    local file = n.a.prefix .. "/dict.ndjson"   -- not in dict_node's folder: it goes with the node
    local code, out, cerr = leadq({ "state", "export", "--store", dict_node.base, "--out", file })
    lu.assertEquals(code, 0, cerr)
    lu.assertEquals(out, "exported 5 leads from " .. dict_node.base .. " to " .. file)
    code, out, cerr = leadq({ "state", "import", "--store", n.b.base, "--in", file })
    lu.assertEquals(code, 0, cerr)
    lu.assertEquals(out, "imported 5 leads from " .. file .. " into " .. n.b.base)
    for i = 1, 5 do
      local res = n.a:request("GET", "/leads/D-" .. i)
      lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, i })
    end
    -- and back into a shared dict after a restart: the restore
    dict_node:stop()
    dict_node = harness.start{ rules = root .. "/" .. RULES, root = root,
      lib_dir = root .. "/" .. (os.getenv("LEADQ_BUILD") or "build") .. "/lib/luajit" }
    lu.assertEquals(dict_node:request("GET", "/leads/D-3").status, 404)
    code, out, cerr = leadq({ "state", "import", "--store", dict_node.base, "--in", file })
    lu.assertEquals({ code, out }, { 0, "imported 5 leads from " .. file .. " into " .. dict_node.base }, cerr)
    local res = dict_node:request("GET", "/leads/D-3")
    lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, 3 })
    res = post(dict_node, "/events", '{"lead":"D-3","type":"page_view"}')
    lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, 4 })
    -- an export bigger than the location's body buffer (1 MB: nginx keeps it in a file, read a line at
    -- a time), its every lead's line after D-3's, and one damaged line at its end: refused by number
    local d3 = assert(harness.read_file(file):match('\n({"lead":"D%-3",[^\n]*)'))
    local big = { store.HEADER }
    for i = 1, 6000 do big[#big + 1] = (d3:gsub('"lead":"D%-3"', '"lead":"B-' .. i .. '"')) end
    harness.write_file(file, table.concat(big, "\n") .. "\n")
    lu.assertTrue(#table.concat(big, "\n") > 1024 * 1024)
    code, out, cerr = leadq({ "state", "import", "--store", dict_node.base, "--in", file })
    lu.assertEquals({ code, out }, { 0, "imported 6000 leads from " .. file .. " into " .. dict_node.base }, cerr)
    res = dict_node:request("GET", "/leads/B-5999")
    lu.assertEquals({ res.status, res.json.features.page_views_7d }, { 200, 3 })
    big[#big + 1] = '{"lead":"B-0","profile":{"a":1,"a":2},"version":1}'
    harness.write_file(file, table.concat(big, "\n") .. "\n")
    code, out, cerr = leadq({ "state", "import", "--store", dict_node.base, "--in", file })
    lu.assertEquals({ code, out }, { 1, "" })
    lu.assertStrContains(cerr, "line 6002: not a JSON object (malformed JSON at byte")
  end)
  if dict_node then dict_node:stop() end
  if not ok then error(failure, 0) end
end

return M
