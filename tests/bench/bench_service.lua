-- The OpenResty service under load: wrk against POST /events (decode, lock, update the lead's
-- engagement state in the shared dict, score, answer JSON) and against GET /plain (ngx.say "ok")
-- of the same nginx, in the same run, alternating rounds; the median round of each is reported.
-- Goal (issue 7): events >= 70% of plain's requests/s, events p99 <= 5 ms. Loopback only, bounded.
local report = require("report")
local harness = require("nginx.harness")

local ROUNDS = tonumber(os.getenv("LEADQ_BENCH_ROUNDS")) or 7
local SECONDS = tonumber(os.getenv("LEADQ_BENCH_SECONDS")) or 2
local CONNECTIONS = tonumber(os.getenv("LEADQ_BENCH_CONNECTIONS")) or 8
local LEADS = 1000

local run = harness.run

local function fail(message)
  print("bench: service: not run: " .. message)
end

-- nginx runs LuaJIT: the C module must be the LuaJIT build (harness.bench_setup makes it).
local BUILD, why = harness.bench_setup("openresty bench")
if not BUILD then return fail(why) end

local root = harness.root()
local prefix_rules = root .. "/tests/nginx/rules/engagement.lua"

-- A wrk script: `request` gives each request, `done` prints one machine-readable line. wrk runs on
-- the same two cores as the server, so the client does the same work for a request on both sides:
-- the requests are made once, in `init`, and `request` hands them out in turn, for the events
-- (lead i % LEADS + 1, type i % #types + 1) and for the plain GETs alike. (Formatting each events
-- request in Lua cost wrk 3-5 us a request; a `request` function at all, which wrk without one
-- does not call, ~8% of the plain side's requests/s: both were charged to the events side only.)
local function wrk_script(path, kind, types)
  local lines = {
    "local LEADS = " .. LEADS,
    "local types = { " .. table.concat(types, ", ", 1, #types) .. " }",
    "local i = 0",
  }
  -- events and plain: the requests of one whole cycle of leads and types, made once, sent in turn
  local make = ({
    events = [[wrk.format("POST", "/events", { ["Content-Type"] = "application/json" },
      string.format('{"lead":"L%d","type":"%s"}', k % LEADS + 1, types[k % #types + 1]))]],
    plain = [[wrk.format("GET", "/plain")]],
  })[kind]
  if make then
    lines[#lines + 1] = [[
local requests = {}
init = function()
  for k = 1, LEADS * #types do requests[k] = ]] .. make .. [[ end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end]]
  elseif kind == "profiles" then
    lines[#lines + 1] = [[
request = function()
  i = i + 1
  local body = string.format('{"seniority":"VP","employees":%d,"email_domain":"acme.com"}',
    100 + i % 900)
  return wrk.format("POST", "/leads/L" .. (i % LEADS + 1), { ["Content-Type"] = "application/json" }, body)
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

-- CPU seconds used so far by the server's workers (utime + stime from /proc, 100 ticks a second).
local function workers_cpu(server)
  local ticks = 0
  for _, pid in ipairs(server:workers()) do
    local fields = {}
    for x in ((harness.read_file("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (.*)$") or ""):gmatch("%S+") do
      fields[#fields + 1] = x
    end
    ticks = ticks + (tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)
  end
  return ticks / 100
end

local function wrk(server, path, script, seconds, connections)
  local cpu_before = workers_cpu(server)
  local cmd = string.format("wrk -t1 -c%d -d%ds --timeout 2s -s %s %s 2>&1", connections, seconds,
    harness.quote(script), harness.quote(server.base .. path))
  local out = run(cmd)
  local requests, duration, p99, errors, non2xx =
    out:match("RESULT requests=(%d+) duration_us=(%d+) p99_us=(%d+) errors=(%d+) non2xx=(%d+)")
  if not requests then error("wrk gave no result: " .. out, 0) end
  local cpu_us = (workers_cpu(server) - cpu_before) * 1e6 / tonumber(requests)
  return { rps = tonumber(requests) / (tonumber(duration) / 1e6), p99_ms = tonumber(p99) / 1000, cpu_us = cpu_us,
    errors = tonumber(errors), non2xx = tonumber(non2xx), requests = tonumber(requests) }
end

local function median(list, key)
  local values = {}
  for i, r in ipairs(list) do values[i] = r[key] end
  table.sort(values)
  return values[math.floor((#values + 1) / 2)]
end

local server, start_err = harness.start{ rules = prefix_rules, root = root,
  lib_dir = root .. "/" .. BUILD .. "/lib/luajit" }
if not server then return fail("nginx did not start: " .. tostring(start_err)) end

local ok, err = pcall(function()
  local types = { '"pricing_view"', '"email_click"', '"webinar_attended"', '"page_view"' }
  local scripts = {}
  for _, kind in ipairs({ "events", "profiles", "plain" }) do
    scripts[kind] = server.prefix .. "/wrk_" .. kind .. ".lua"
    wrk_script(scripts[kind], kind, types)
  end
  -- Every lead gets a profile first (an event for an unknown lead is a 404, which is not the bench).
  -- One connection walks the ids in order, a second from the middle; a few seconds at most.
  local done = 0
  for _ = 1, 5 do
    local setup = wrk(server, "/leads/", scripts.profiles, 1, 2)
    if setup.non2xx > 0 then error(string.format("profile setup: %d answers not 2xx", setup.non2xx), 0) end
    done = done + setup.requests
    if done >= 2 * LEADS then break end
  end
  for i = 1, LEADS, 97 do
    local res = server:request("GET", "/leads/L" .. i)
    if res.status ~= 200 then error("profile setup: GET /leads/L" .. i .. " answers " .. res.status, 0) end
  end
  local probe = server:request("POST", "/events", '{"lead":"L1","type":"pricing_view"}')
  if probe.status ~= 200 then error("POST /events answers " .. probe.status .. ": " .. probe.body, 0) end

  local plain, events = {}, {}
  wrk(server, "/plain", scripts.plain, 1, CONNECTIONS)   -- warm-up (JIT, connections)
  wrk(server, "/events", scripts.events, 1, CONNECTIONS)
  for r = 1, ROUNDS do   -- short rounds, the order swapped each round: drifting load hits both sides
    if r % 2 == 1 then
      plain[r] = wrk(server, "/plain", scripts.plain, SECONDS, CONNECTIONS)
      events[r] = wrk(server, "/events", scripts.events, SECONDS, CONNECTIONS)
    else
      events[r] = wrk(server, "/events", scripts.events, SECONDS, CONNECTIONS)
      plain[r] = wrk(server, "/plain", scripts.plain, SECONDS, CONNECTIONS)
    end
    if events[r].non2xx > 0 or events[r].errors > 0 then
      error(string.format("round %d: %d events not answered 2xx, %d socket errors", r, events[r].non2xx,
        events[r].errors), 0)
    end
  end
  local plain_rps, events_rps = median(plain, "rps"), median(events, "rps")
  local plain_p99, events_p99 = median(plain, "p99_ms"), median(events, "p99_ms")
  local label = string.format("nginx 2 workers, wrk 1 thread %d connections, median of %d x %ds", CONNECTIONS,
    ROUNDS, SECONDS)
  local ratio = report.line("service POST /events throughput (" .. label .. ")", events_rps, "req/s",
    "plain ngx.say", plain_rps, "req/s", true)
  report.line("service POST /events p99 latency (" .. label .. ")", events_p99, "ms", "plain ngx.say",
    plain_p99, "ms", false)
  -- Server CPU per request: steadier than requests/s when other work shares the machine.
  report.line("service POST /events nginx CPU per request (" .. label .. ")", median(events, "cpu_us"), "us",
    "plain ngx.say", median(plain, "cpu_us"), "us", false)
  local round_ratios = {}
  for r = 1, ROUNDS do round_ratios[r] = { ratio = events[r].rps / plain[r].rps } end
  print(string.format("bench: service: events/plain req/s round by round: median %.2f", median(round_ratios, "ratio")))
  print(string.format("bench: service: goal events >= 70%% of plain: %s (%.0f%%); p99 <= 5 ms: %s (%.2f ms)",
    ratio >= 0.7 and "met" or "NOT met", ratio * 100, events_p99 <= 5 and "met" or "NOT met", events_p99))
end)
server:stop()
if not ok then fail(err) end
