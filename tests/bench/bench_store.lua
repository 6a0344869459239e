-- The Redis store against the shared dict, side by side in one run: wrk against POST /events of an
-- nginx keeping its leads in Redis (compare-and-set over cosockets, one redis-server of this bench's
-- own; over TCP, the goal's figure, and over Redis's Unix socket) and of an nginx keeping them in its
-- shared dict (lock), rounds in turn, median of each, and each side's CPU per event (nginx's workers,
-- redis-server) and the share of the machine left idle, at 8, 32 and 128 clients. Goal: Redis >= 0.5x
-- the shared dict's events/s, each store at the most it serves over those client counts (its
-- capacity on this machine). Then `leadq state export` and `import` of 1M leads' states through Redis
-- (goal: each <= 10 s). Loopback only, bounded.
local report = require("report")
local harness = require("nginx.harness")
local redis_server = require("nginx.redis_server")

local ROUNDS = tonumber(os.getenv("LEADQ_BENCH_ROUNDS")) or 6
local SECONDS = tonumber(os.getenv("LEADQ_BENCH_SECONDS")) or 2
-- wrk's connections: 8 (2 workers, each with 4 requests waiting on Redis at most: each event waits a
-- round trip, and part of the machine idles meanwhile), 32 and 128 (more clients at once: a worker's
-- events share more round trips, and the machine is busy throughout)
local CONNECTIONS = {}
for c in (os.getenv("LEADQ_BENCH_CONNECTIONS") or "8,32,128"):gmatch("%d+") do
  CONNECTIONS[#CONNECTIONS + 1] = tonumber(c)
end
local LEADS = 1000
local MOVED = tonumber(os.getenv("LEADQ_BENCH_STATE_LEADS")) or 1000000

local run = harness.run

local function fail(message)
  print("bench: store: not run: " .. message)
end

-- nginx runs LuaJIT: the C module must be the LuaJIT build (harness.bench_setup makes it).
local BUILD, why = harness.bench_setup("openresty bench redis")
if not BUILD then return fail(why) end

local root = harness.root()
local rules = root .. "/tests/nginx/rules/engagement.lua"
local lib_dir = root .. "/" .. BUILD .. "/lib/luajit"

local function wrk_script(path, kind)
  local lines = { "local LEADS = " .. LEADS,
    'local types = { "pricing_view", "email_click", "webinar_attended", "page_view" }', "local i = 0" }
  if kind == "events" then
    lines[#lines + 1] = [[
local requests = {}
init = function()
  for k = 1, LEADS * #types do
    requests[k] = wrk.format("POST", "/events", { ["Content-Type"] = "application/json" },
      string.format('{"lead":"L%d","type":"%s"}', k % LEADS + 1, types[k % #types + 1]))
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end]]
  else
    lines[#lines + 1] = [[
request = function()
  i = i + 1
  return wrk.format("POST", "/leads/L" .. (i % LEADS + 1), { ["Content-Type"] = "application/json" },
    '{"seniority":"VP","employees":800,"email_domain":"acme.com"}')
end]]
  end
  lines[#lines + 1] = [[
done = function(summary, latency)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(99), e.connect + e.read + e.write + e.timeout,
    e.status))
end]]
  harness.write_file(path, table.concat(lines, "\n") .. "\n")
end

local function wrk(server, path, script, seconds, connections)
  local out = run(string.format("wrk -t1 -c%d -d%ds --timeout 2s -s %s %s 2>&1", connections, seconds,
    harness.quote(script), harness.quote(server.base .. path)))
  local requests, duration, p99, errors, non2xx =
    out:match("RESULT requests=(%d+) duration_us=(%d+) p99_us=(%d+) errors=(%d+) non2xx=(%d+)")
  if not requests then error("wrk gave no result: " .. out, 0) end
  return { rps = tonumber(requests) / (tonumber(duration) / 1e6), p99_ms = tonumber(p99) / 1000,
    errors = tonumber(errors), non2xx = tonumber(non2xx), requests = tonumber(requests) }
end

local function median(list, key)
  local values = {}
  for i, r in ipairs(list) do values[i] = r[key] end
  table.sort(values)
  return values[math.floor((#values + 1) / 2)]
end

local redis, redis_err = redis_server.start()
if not redis then return fail("redis-server did not start: " .. tostring(redis_err)) end
-- Three nodes: Redis over TCP (the goal's figure), Redis over its Unix socket, the shared dict.
local on_redis, on_unix, on_dict, start_err
-- Each Redis node has a database of its own: a node's workers keep each lead's last stamp, and leads
-- the other node moved on would cost a refused compare-and-set each round.
local function redis_node(address, db)
  return harness.start{ rules = rules, root = root, lib_dir = lib_dir, template = "nginx-redis.conf.tmpl",
    vars = { REDIS_ADDRESS = address, REDIS_DB = db, REDIS_TIMEOUT = 1 } }
end
on_redis, start_err = redis_node('host = "127.0.0.1", port = ' .. redis.port, 0)
if on_redis then on_unix, start_err = redis_node('path = "' .. redis.socket .. '"', 1) end
if on_unix then on_dict, start_err = harness.start{ rules = rules, root = root, lib_dir = lib_dir } end
if not (on_redis and on_unix and on_dict) then
  if on_redis then on_redis:stop() end
  if on_unix then on_unix:stop() end
  redis:remove()
  return fail("nginx did not start: " .. tostring(start_err))
end

-- CPU seconds a process has used so far (utime + stime, in 100ths of a second).
local function cpu_seconds(pid)
  local stat = harness.read_file("/proc/" .. pid .. "/stat") or ""
  local fields = {}
  for x in (stat:match("^%d+ %b() (.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = x end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100
end

local function cpu_of(pids)
  local total = 0
  for _, pid in ipairs(pids) do total = total + cpu_seconds(pid) end
  return total
end

-- The machine's CPU time so far, all cores: total and idle (idle + iowait), in clock ticks.
local function machine_ticks()
  local line = (harness.read_file("/proc/stat") or ""):match("^cpu%s+([^\n]*)") or ""
  local total, idle, i = 0, 0, 0
  for x in line:gmatch("%d+") do
    i = i + 1
    if i <= 8 then   -- user nice system idle iowait irq softirq steal (guest time is in user already)
      total = total + tonumber(x)
      if i == 4 or i == 5 then idle = idle + tonumber(x) end
    end
  end
  return total, idle
end

local function load_average()
  return ((harness.read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?")
end

local names = { "redis", "unix", "dict" }
local servers = { redis = on_redis, unix = on_unix, dict = on_dict }
local scripts = {}

local function service_setup()
  for _, kind in ipairs({ "events", "profiles" }) do
    scripts[kind] = on_dict.prefix .. "/wrk_" .. kind .. ".lua"
    wrk_script(scripts[kind], kind)
  end
  for _, name in ipairs(names) do   -- every lead gets a profile first
    local server = servers[name]
    local done = 0
    for _ = 1, 5 do
      local setup = wrk(server, "/leads/", scripts.profiles, 1, 2)
      if setup.non2xx > 0 then error(string.format("%s: profile setup: %d answers not 2xx", name, setup.non2xx), 0) end
      done = done + setup.requests
      if done >= 2 * LEADS then break end
    end
  end
  for _, name in ipairs(names) do
    local server = servers[name]
    for i = 1, LEADS, 97 do
      local res = server:request("GET", "/leads/L" .. i)
      if res.status ~= 200 then error(name .. ": GET /leads/L" .. i .. " answers " .. res.status, 0) end
    end
    wrk(server, "/events", scripts.events, 1, CONNECTIONS[1])   -- warm-up (JIT, connections)
  end
end

local function service_rounds(connections)
  local results = { redis = {}, unix = {}, dict = {} }
  -- CPU per event of each node's workers and of redis-server, summed over the rounds: the machine's
  -- other load moves requests/s much more than it moves what each event costs.
  local cpu = { redis = 0, unix = 0, dict = 0 }
  local redis_cpu = { redis = 0, unix = 0 }
  local answered = { redis = 0, unix = 0, dict = 0 }
  local ticks, idle = { redis = 0, unix = 0, dict = 0 }, { redis = 0, unix = 0, dict = 0 }
  -- Redis commands per event, counted by Redis itself: one script call is the goal (a refused
  -- compare-and-set costs a second, a read a third)
  local stats_conn = assert(require("leadq.core").redis_connect("127.0.0.1", redis.port, 5))
  local tcp_commands
  for r = 1, ROUNDS do
    -- each round in another order: no side always runs right after the same other one
    local orders = { { "redis", "unix", "dict" }, { "dict", "redis", "unix" }, { "unix", "dict", "redis" } }
    local order = orders[(r - 1) % 3 + 1]
    for _, name in ipairs(order) do
      local workers = servers[name]:workers()
      if r == 1 and name == "redis" then assert(stats_conn:call("config", "resetstat")) end
      local before, redis_before = cpu_of(workers), cpu_seconds(redis.pid)
      local total_before, idle_before = machine_ticks()
      local res = wrk(servers[name], "/events", scripts.events, SECONDS, connections)
      local total_after, idle_after = machine_ticks()
      ticks[name], idle[name] = ticks[name] + total_after - total_before, idle[name] + idle_after - idle_before
      cpu[name] = cpu[name] + cpu_of(workers) - before
      if redis_cpu[name] then redis_cpu[name] = redis_cpu[name] + cpu_seconds(redis.pid) - redis_before end
      if res.non2xx > 0 or res.errors > 0 then
        error(string.format("%s round %d: %d events not answered 2xx, %d socket errors", name, r, res.non2xx,
          res.errors), 0)
      end
      results[name][r] = res
      answered[name] = answered[name] + res.requests
      if r == 1 and name == "redis" then tcp_commands = stats_conn:call("info", "all") or "" end
    end
  end
  stats_conn:close()
  local calls = {}
  for cmd, n in tcp_commands:gmatch("cmdstat_(%w+):calls=(%d+)") do
    if cmd ~= "info" and cmd ~= "config" then
      calls[#calls + 1] = string.format("%s %.2f", cmd, n / results.redis[1].requests)
    end
  end
  table.sort(calls)
  -- reads Redis made from its clients: fewer than the events when a worker's events share round trips
  local reads = tonumber(tcp_commands:match("total_reads_processed:(%d+)")) or 0
  print(string.format("bench: store: Redis commands per event at %d connections: %s; Redis reads per event %.2f",
    connections, table.concat(calls, ", "), reads / results.redis[1].requests))
  local label = string.format("nginx 2 workers, one redis-server, wrk 1 thread %d connections, median of %d x %ds",
    connections, ROUNDS, SECONDS)
  local redis_rps, unix_rps, dict_rps = median(results.redis, "rps"), median(results.unix, "rps"),
    median(results.dict, "rps")
  local ratio = report.line("store POST /events throughput, Redis store (" .. label .. ")",
    redis_rps, "req/s", "shared dict", dict_rps, "req/s", true)
  local redis_p99 = median(results.redis, "p99_ms")
  report.line("store POST /events p99 latency, Redis store (" .. label .. ")", redis_p99, "ms",
    "shared dict", median(results.dict, "p99_ms"), "ms", false)
  local unix_ratio = report.line("store POST /events throughput, Redis store over its Unix socket (" .. label .. ")",
    unix_rps, "req/s", "shared dict", dict_rps, "req/s", true)
  report.line("store POST /events p99 latency, Redis store over its Unix socket (" .. label .. ")",
    median(results.unix, "p99_ms"), "ms", "shared dict", median(results.dict, "p99_ms"), "ms", false)
  local function per_event(seconds, name) return seconds / answered[name] * 1e6 end
  report.line("store POST /events nginx CPU per event, Redis store (" .. connections .. " connections)",
    per_event(cpu.redis, "redis"), "us", "shared dict", per_event(cpu.dict, "dict"), "us", false)
  report.line("store POST /events nginx CPU per event, Redis store over its Unix socket (" .. connections
    .. " connections)", per_event(cpu.unix, "unix"),
    "us", "shared dict", per_event(cpu.dict, "dict"), "us", false)
  print(string.format("bench: store: redis-server CPU per event at %d connections: %.1f us over TCP, %.1f us over "
    .. "its Unix socket", connections, per_event(redis_cpu.redis, "redis"), per_event(redis_cpu.unix, "unix")))
  local function idle_share(name) return 100 * idle[name] / math.max(ticks[name], 1) end
  print(string.format("bench: store: at %d connections Redis serves %.2fx the shared dict's events/s (%.2fx over its "
    .. "Unix socket); Redis p99 %.2f ms; the machine idle %.0f%% of the time on Redis, %.0f%% on the shared dict; "
    .. "load average %s", connections, ratio, unix_ratio, redis_p99, idle_share("redis"), idle_share("dict"),
    load_average()))
  return { redis = redis_rps, dict = dict_rps }
end

-- The goal on each store's capacity: the most events/s it served over the client counts.
local function capacity_goal(served)
  local best = {}
  for _, c in ipairs(CONNECTIONS) do
    for _, name in ipairs({ "redis", "dict" }) do
      local rps = served[c][name]
      if not best[name] or rps > best[name].rps then best[name] = { rps = rps, connections = c } end
    end
  end
  local ratio = best.redis.rps / best.dict.rps
  print(string.format("bench: store: goal Redis >= 0.5x the shared dict's events/s, each at its capacity (the most "
    .. "over %s connections): %s (%.2fx: Redis %.0f/s at %d connections, shared dict %.0f/s at %d)",
    table.concat(CONNECTIONS, ", "), ratio >= 0.5 and "met" or "NOT met", ratio, best.redis.rps,
    best.redis.connections, best.dict.rps, best.dict.connections))
end

-- 1M leads written straight into Redis (a profile and a real engagement state each), then the
-- command's export to a file and import into another database, each timed.
local function state_moves()
  local core = require("leadq.core")
  local service = require("leadq.service")
  local cli = require("leadq.cli")
  local model = assert(service.load_model(rules))
  local features = assert(service.model_features(model))
  local state = features:state({})
  local t0 = 1795000000
  for k, kind in ipairs({ "page_view", "pricing_view", "email_click", "page_view", "webinar_attended" }) do
    assert(state:observe(kind, t0 + k * 3600, nil, {}))
  end
  local state_text = state:encode(string.format("%.17g:", state:latest()))
  state:close()
  local conn = assert(core.redis_connect("127.0.0.1", redis.port, 30))
  assert(conn:call("select", "2"))
  assert(conn:call("flushdb"))
  local batch = {}
  for i = 1, MOVED do
    batch[#batch + 1] = { "hset", "leadq:{M" .. i .. "}", "p",
      '{"email_domain":"acme.com","employees":' .. (100 + i % 900) .. ',"seniority":"VP"}', "v", "1",
      "s", state_text, "n", "1" }
    if #batch == 10000 or i == MOVED then
      local _, errors = assert(conn:pipeline(batch))
      if errors then error("filling Redis: " .. tostring(errors[next(errors)]), 0) end
      batch = {}
    end
  end
  -- CPU seconds of redis-server so far: on a busy machine the wall time says little, the CPU each side
  -- spent says what an idle one would take.
  local function redis_cpu() return cpu_seconds(redis.pid) end
  local file = on_dict.prefix .. "/state.ndjson"
  local quiet = { print = function() end, error = function(line) io.stderr:write(line, "\n") end }
  collectgarbage()
  local started, cpu, redis_before = core.now(), os.clock(), redis_cpu()
  local code = cli.main({ "state", "export", "--store", "redis://127.0.0.1:" .. redis.port .. "/2", "--out", file },
    quiet)
  local export_s = core.now() - started
  local export_cpu, export_redis = os.clock() - cpu, redis_cpu() - redis_before
  if code ~= 0 then error("state export failed", 0) end
  assert(conn:call("select", "3"))
  assert(conn:call("flushdb"))
  -- Redis rewrites its AOF in a forked child once the file has doubled (the whole dataset written
  -- again): an import that grows it that far pays for one, on CPU this bench's redis_cpu does not see.
  local function aof_rewrites()   -- those finished, and whether one is under way
    local info = conn:call("info", "persistence") or ""
    return tonumber(info:match("aof_rewrites:(%d+)")) or 0, info:match("aof_rewrite_in_progress:1") ~= nil
  end
  local rewrites_before = aof_rewrites()
  collectgarbage()
  started, cpu, redis_before = core.now(), os.clock(), redis_cpu()
  code = cli.main({ "state", "import", "--store", "redis://127.0.0.1:" .. redis.port .. "/3", "--in", file }, quiet)
  local import_s = core.now() - started
  local import_cpu, import_redis = os.clock() - cpu, redis_cpu() - redis_before
  if code ~= 0 then error("state import failed", 0) end
  local rewrites_after, rewriting = aof_rewrites()
  local import_rewrites = rewrites_after - rewrites_before + (rewriting and 1 or 0)
  local imported = conn:call("dbsize")
  conn:close()
  if imported ~= MOVED then error(string.format("import: %d leads in Redis, %d exported", imported, MOVED), 0) end
  local size = #(harness.read_file(file) or "")
  os.remove(file)
  local label = string.format("%d leads, %.0f MB of NDJSON, Redis over loopback", MOVED, size / 1e6)
  report.line("store state export (" .. label .. ")", export_s, "s", "goal", 10, "s", false)
  report.line("store state import (" .. label .. ")", import_s, "s", "goal", 10, "s", false)
  print(string.format("bench: store: CPU seconds (the command, redis-server): export %.1f, %.1f; import %.1f, %.1f "
    .. "(AOF rewrites during the import, finished or under way at its end: %d); load average %s",
    export_cpu, export_redis, import_cpu, import_redis, import_rewrites,
    ((harness.read_file("/proc/loadavg") or ""):match("^(%S+)") or "?")))
end

local ok, err = pcall(service_setup)
local served = {}   -- connections -> each store's events/s, every count's once all have run
for _, connections in ipairs(CONNECTIONS) do
  if not ok then break end
  local result
  ok, result = pcall(service_rounds, connections)
  if ok then served[connections] = result else err = result end
end
if ok then capacity_goal(served) end
if ok then ok, err = pcall(state_moves) end
on_redis:stop()
on_unix:stop()
on_dict:stop()
redis:remove()
if not ok then fail(err) end
