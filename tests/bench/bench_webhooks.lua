-- The service with reactions declared, under load (tests/nginx/reactions.conf.tmpl), and its
-- webhook delivery to a real receiver on 127.0.0.1 (tests/nginx/receiver.conf.tmpl, which checks
-- every signature).
--   1. wrk against POST /events (the outbox and its delivery timer on) and GET /plain (ngx.say) of
--      the same nginx, alternating rounds, medians. Goal: events >= 0.6x plain.
--   2. Delivery: deliveries paused, N leads cross the threshold (N facts wait in the outbox), then
--      resumed: facts delivered per second until the outbox is empty, against wrk posting straight
--      to the receiver (its own capacity). Goal: >= 2,000 webhooks/s.
local report = require("report")
local harness = require("nginx.harness")
local json = require("leadq.json")

local ROUNDS = tonumber(os.getenv("LEADQ_BENCH_ROUNDS")) or 5
local SECONDS = tonumber(os.getenv("LEADQ_BENCH_SECONDS")) or 2
local CONNECTIONS = tonumber(os.getenv("LEADQ_BENCH_CONNECTIONS")) or 8
local LEADS = 1000
local FACTS = tonumber(os.getenv("LEADQ_BENCH_WEBHOOKS")) or 10000
local SECRET = "bench-secret"

local run = harness.run

local function fail(message)
  print("bench: webhooks: not run: " .. message)
end

-- nginx runs LuaJIT: the C module must be the LuaJIT build (harness.bench_setup makes it).
local BUILD, why = harness.bench_setup("openresty bench")
if not BUILD then return fail(why) end

local root = harness.root()
local lib_dir = root .. "/" .. BUILD .. "/lib/luajit"
local dir = (run("mktemp -d /tmp/leadq-bench-webhooks.XXXXXX"):gsub("%s+$", ""))
local log = dir .. "/received.log"
harness.write_file(log, "")

-- wrk scripts: requests made once in init and handed out in turn; `done` prints one result line.
local function wrk_script(path, make, count)
  harness.write_file(path, string.format([[
local requests, i = {}, 0
init = function(args)
  for k = 1, %d do requests[k] = %s end
  i = tonumber(args[1] or 0) %% #requests   -- where the last run stopped
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
done = function(summary, latency)
  local e = summary.errors
  io.write(string.format("RESULT requests=%%d duration_us=%%d p99_us=%%d errors=%%d non2xx=%%d\n",
    summary.requests, summary.duration, latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
]], count, make))
end

local function wrk(base, path, script, seconds, connections, start)
  local out = run(string.format("wrk -t1 -c%d -d%ds --timeout 2s -s %s %s -- %d 2>&1", connections, seconds,
    harness.quote(script), harness.quote(base .. path), start or 0))
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

local receiver, service
local ok, err = pcall(function()
  local rerr
  receiver, rerr = harness.start{ template = "receiver.conf.tmpl", rules = "-", root = root, lib_dir = lib_dir,
    vars = { SECRET = SECRET, LOG = log } }
  if not receiver then error("the receiver did not start: " .. tostring(rerr), 0) end
  local reactions = dir .. "/reactions.lua"
  harness.write_file(reactions, table.concat({
    string.format('webhook "crm" { url = "http://127.0.0.1:%d/hooks", secret_env = "LEADQ_WEBHOOK_SECRET" }',
      receiver.port),
    'on { model = "engagement", to = "mql", webhook = "crm", assign = true }',
    'on { model = "engagement", from = "mql", webhook = "crm" }',
    'team "sales" { owners = { "anna", "ben", "carl" } }',
    'route { team = "sales" }',
  }, "\n") .. "\n")
  service, rerr = harness.start{ template = "reactions.conf.tmpl", rules = root .. "/tests/nginx/rules/engagement.lua",
    root = root, lib_dir = lib_dir, vars = { REACTIONS = reactions, SECRET = SECRET } }
  if not service then error("the service did not start: " .. tostring(rerr), 0) end

  -- 1. events with reactions against plain
  local scripts = { profiles = dir .. "/profiles.lua", events = dir .. "/events.lua", plain = dir .. "/plain.lua" }
  wrk_script(scripts.profiles, string.format([[wrk.format("POST", "/leads/L" .. k, { ["Content-Type"] =
    "application/json" }, '{"seniority":"VP","employees":900}')]]), LEADS)
  wrk_script(scripts.events, [[wrk.format("POST", "/events", { ["Content-Type"] = "application/json" },
    string.format('{"lead":"L%d","type":"%s"}', k % ]] .. LEADS .. [[ + 1,
    ({ "pricing_view", "email_click", "webinar_attended", "page_view" })[k % 4 + 1]))]], LEADS * 4)
  wrk_script(scripts.plain, [[wrk.format("GET", "/plain")]], 100)
  local setup = wrk(service.base, "/leads/", scripts.profiles, 1, 2)
  if setup.non2xx > 0 then error("profile setup: answers not 2xx", 0) end
  local plain, events = {}, {}
  wrk(service.base, "/plain", scripts.plain, 1, CONNECTIONS)
  wrk(service.base, "/events", scripts.events, 1, CONNECTIONS)
  for r = 1, ROUNDS do
    if r % 2 == 1 then
      plain[r] = wrk(service.base, "/plain", scripts.plain, SECONDS, CONNECTIONS)
      events[r] = wrk(service.base, "/events", scripts.events, SECONDS, CONNECTIONS)
    else
      events[r] = wrk(service.base, "/events", scripts.events, SECONDS, CONNECTIONS)
      plain[r] = wrk(service.base, "/plain", scripts.plain, SECONDS, CONNECTIONS)
    end
    if events[r].non2xx > 0 or events[r].errors > 0 then
      error(string.format("round %d: %d events not answered 2xx, %d socket errors", r, events[r].non2xx,
        events[r].errors), 0)
    end
  end
  local label = string.format("reactions declared, nginx 2 workers, wrk %d connections, median of %d x %ds",
    CONNECTIONS, ROUNDS, SECONDS)
  local ratio = report.line("webhooks: service POST /events throughput (" .. label .. ")", median(events, "rps"),
    "req/s", "plain ngx.say", median(plain, "rps"), "req/s", true)
  print(string.format("bench: webhooks: goal events with reactions >= 0.6x plain: %s (%.2fx)",
    ratio >= 0.6 and "met" or "NOT met", ratio))

  -- 2. delivery: FACTS crossings wait in the paused outbox, then go
  local function outbox_state() return service:request("GET", "/.leadq/outbox").json end
  for _ = 1, 100 do   -- what part 1 left to deliver goes first
    if outbox_state().waiting == 0 then break end
    harness.sleep(0.1)
  end
  service:request("POST", "/.leadq/outbox?pause=120")
  wrk_script(scripts.profiles, string.format([[wrk.format("POST", "/leads/W" .. k, { ["Content-Type"] =
    "application/json" }, '{"seniority":"VP","employees":900}')]]), FACTS)
  wrk_script(scripts.events, [[wrk.format("POST", "/events", { ["Content-Type"] = "application/json" },
    string.format('{"lead":"W%d","type":"pricing_view"}', k % ]] .. FACTS .. [[ + 1))]], FACTS)
  -- every lead a profile, then three pricing views each (whole cycles: each run goes on from the last)
  local need = { profiles = FACTS, events = 3 * FACTS }
  for _, kind in ipairs({ "profiles", "events" }) do
    local sent = 0
    for _ = 1, 60 do
      local res = wrk(service.base, kind == "profiles" and "/leads/" or "/events", scripts[kind], 1, 4, sent)
      if res.non2xx > 0 or res.errors > 0 then error(kind .. ": answers not 2xx", 0) end
      sent = sent + res.requests
      if sent >= need[kind] then break end
    end
  end
  local waiting = outbox_state().waiting
  if waiting < FACTS * 0.9 then error(string.format("only %d facts wait in the outbox, not %d", waiting, FACTS), 0) end
  local function received() return tonumber((run("wc -l < " .. harness.quote(log)))) or 0 end
  local received_before = received()
  local now = require("leadq.core").now
  local started = now()
  service:request("POST", "/.leadq/outbox?resume=1")
  local left = waiting
  for _ = 1, 1200 do   -- at most ~60 s
    left = outbox_state().waiting
    if left == 0 then break end
    harness.sleep(0.05)
  end
  local seconds = now() - started
  if left > 0 then error(string.format("%d facts still wait after %.0f s", left, seconds), 0) end
  local lines = received() - received_before
  local signed = tonumber((run("tail -n " .. lines .. " " .. harness.quote(log) .. " | grep -c ' signed '")))
  if signed ~= lines then error(string.format("%d of %d deliveries not signed right", lines - signed, lines), 0) end
  local metrics = service:request("GET", "/metrics").body
  local dead = tonumber(metrics:match("\nleadq_dead_letters_total (%d+)"))
  -- the receiver's own capacity: wrk posting a fact straight to it (unsigned: it logs and answers 401)
  local fact = json.encode({ lead = "X", to = "mql" })
  wrk_script(scripts.plain, string.format([[wrk.format("POST", "/hooks", { ["Content-Type"] = "application/json",
    ["X-Leadq-Idempotency-Key"] = "bench" }, %q)]], fact), 1)
  local direct = wrk(receiver.base, "/hooks", scripts.plain, 2, 16)
  local rate = waiting / seconds
  report.line(string.format("webhooks: deliveries of %d facts to a local receiver (16 lanes, signed)", waiting),
    rate, "webhooks/s", "wrk to the receiver", direct.rps, "req/s", true)
  print(string.format("bench: webhooks: goal >= 2,000 webhooks/s: %s (%.0f/s, %d received, %d dead letters)",
    rate >= 2000 and "met" or "NOT met", rate, lines, dead or -1))
end)
if service then service:stop() end
if receiver then receiver:stop() end
os.execute("rm -rf " .. harness.quote(dir))
if not ok then fail(err) end
