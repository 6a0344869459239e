-- The reactions end to end: the service in a real nginx (tests/nginx/reactions.conf.tmpl) and a real
-- receiver, a second nginx (tests/nginx/receiver.conf.tmpl) that checks every signature with the
-- core's HMAC and logs every delivery. A burst moves leads across the threshold and exactly the
-- expected webhooks arrive, signed; the receiver stopped mid-run and started again, and a reload
-- mid-run, lose nothing and deliver nothing twice.
local lu = require("luaunit")
local harness = require("nginx.harness")
local json = require("leadq.json")

local M = {}

local RULES = "tests/nginx/rules/engagement.lua"
local SECRET = "integration-secret"
local VP = '{"seniority":"VP","employees":900}'

M.TestReactionsNginx = {}

local ctx

local function available()
  if LEADQ_VARIANT ~= "luajit" then lu.skip("the nginx service runs under the luajit variant") end
  local ok, err = harness.install_deps()
  if not ok then lu.fail(err) end
  local yes, why = harness.available()
  if not yes then lu.fail(why) end
end

local function start_receiver(port)
  local server, err = harness.start{ template = "receiver.conf.tmpl", rules = "-", root = ctx.root,
    lib_dir = ctx.lib_dir, port = port, vars = { SECRET = SECRET, LOG = ctx.log } }
  if not server then lu.fail("the receiver did not start: " .. tostring(err)) end
  return server
end

local function setup()
  available()
  if ctx then return ctx end
  ctx = { root = harness.root() }
  ctx.lib_dir = ctx.root .. "/" .. (os.getenv("LEADQ_BUILD") or "build") .. "/lib/luajit"
  ctx.dir = os.tmpname()
  os.remove(ctx.dir)
  assert(os.execute("mkdir -p " .. harness.quote(ctx.dir)))
  ctx.log = ctx.dir .. "/received.log"
  harness.write_file(ctx.log, "")
  ctx.receiver = start_receiver()
  ctx.reactions = ctx.dir .. "/reactions.lua"
  harness.write_file(ctx.reactions, table.concat({
    string.format('webhook "crm" { url = "http://127.0.0.1:%d/hooks", secret_env = "LEADQ_WEBHOOK_SECRET" }',
      ctx.receiver.port),
    'on { model = "engagement", to = "mql", webhook = "crm", assign = true }',
    'team "sales" { owners = { "anna", "ben" } }',
    'route { team = "sales" }',
  }, "\n") .. "\n")
  local err
  ctx.service, err = harness.start{ template = "reactions.conf.tmpl", rules = ctx.root .. "/" .. RULES,
    root = ctx.root, lib_dir = ctx.lib_dir, vars = { REACTIONS = ctx.reactions, SECRET = SECRET } }
  if not ctx.service then lu.fail("the service did not start: " .. tostring(err)) end
  return ctx
end

function M.TestReactionsNginx.teardownClass()
  if not ctx then return end
  if ctx.service then ctx.service:stop() end
  if ctx.receiver then ctx.receiver:stop() end
  os.execute("rm -rf " .. harness.quote(ctx.dir))
  ctx = nil
end

-- Many requests in one curl (--next): the answers' status codes.
local function burst(server, requests)
  local args = { "curl -sS -H 'Expect:' -H 'Content-Type: application/json'" }
  for i, r in ipairs(requests) do
    local file = string.format("%s/burst-%d.json", ctx.dir, i)
    harness.write_file(file, r[2])
    if i > 1 then args[#args + 1] = "--next -H 'Expect:' -H 'Content-Type: application/json'" end
    args[#args + 1] = string.format("-o /dev/null -w '%%{http_code}\\n' --data-binary @%s %s", harness.quote(file),
      harness.quote(server.base .. r[1]))
  end
  local p = io.popen(table.concat(args, " ") .. " 2>&1")
  local out = p:read("*a")
  p:close()
  local codes = {}
  for code in out:gmatch("%d+") do codes[#codes + 1] = tonumber(code) end
  return codes
end

-- Leads prefix-1..n: a profile (nurture), then three pricing views each (the third crosses to mql).
local function cross(server, prefix, n)
  local requests = {}
  for i = 1, n do requests[#requests + 1] = { "/leads/" .. prefix .. "-" .. i, VP } end
  for _ = 1, 3 do
    for i = 1, n do
      requests[#requests + 1] = { "/events", json.encode({ lead = prefix .. "-" .. i, type = "pricing_view" }) }
    end
  end
  local codes = burst(server, requests)
  local bad = 0
  for _, c in ipairs(codes) do if c ~= 200 and c ~= 201 then bad = bad + 1 end end
  lu.assertEquals(#codes, #requests)
  lu.assertEquals(bad, 0)
end

-- The receiver's log: { [key] = times received }, and the lines.
local function received()
  local counts, lines = {}, {}
  for line in (harness.read_file(ctx.log) or ""):gmatch("[^\n]+") do
    local key, signed, lead, to = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    lines[#lines + 1] = { key = key, signed = signed, lead = lead, to = to }
    counts[key] = (counts[key] or 0) + 1
  end
  return counts, lines
end

local function wait_for(n, seconds)
  local lines
  for _ = 1, seconds * 10 do
    _, lines = received()
    if #lines >= n then break end
    harness.sleep(0.1)
  end
  harness.sleep(0.3)   -- and nothing more comes
  return received()
end

local function expect_exactly(prefixes)
  local counts, lines = wait_for(#prefixes, 20)
  local want, got = {}, {}
  for _, lead in ipairs(prefixes) do want[#want + 1] = lead .. " mql signed" end
  for _, l in ipairs(lines) do got[#got + 1] = l.lead .. " " .. l.to .. " " .. l.signed end
  table.sort(want)
  table.sort(got)
  lu.assertEquals(got, want)
  for key, n in pairs(counts) do lu.assertEquals(n, 1, "delivered twice: " .. key) end
end

local function leads(prefix, n, into)
  for i = 1, n do into[#into + 1] = prefix .. "-" .. i end
  return into
end

function M.TestReactionsNginx.test_1_a_burst_delivers_exactly_the_crossings_signed()
  local c = setup()
  local s = c.service
  -- one lead by hand: the answer that crosses says so
  lu.assertEquals(s:request("POST", "/leads/H-1", VP).json.changed.to, "nurture")
  local answers = {}
  for i = 1, 3 do
    answers[i] = s:request("POST", "/events", '{"lead":"H-1","type":"pricing_view"}').json
  end
  lu.assertEquals(answers[3].status, "mql")
  lu.assertEquals({ answers[3].changed.model, answers[3].changed.from, answers[3].changed.to },
    { "engagement", "nurture", "mql" })
  lu.assertNil(answers[2].changed)
  cross(s, "B", 40)
  expect_exactly(leads("B", 40, { "H-1" }))
  local metrics = s:request("GET", "/metrics")
  lu.assertEquals(metrics.status, 200)
  lu.assertStrContains(metrics.body, "# TYPE leadq_deliveries_total counter\nleadq_deliveries_total 41\n")
  lu.assertStrContains(metrics.body, "leadq_outbox_waiting 0\n")
  lu.assertStrContains(metrics.body, "leadq_dead_letters_total 0\n")
end

function M.TestReactionsNginx.test_2_receiver_down_then_up_loses_nothing_twice_nothing()
  local c = setup()
  harness.write_file(c.log, "")
  local port = c.receiver.port
  c.receiver:stop()
  c.receiver = nil
  cross(c.service, "D", 30)   -- answered at once: delivery never waits on the receiver
  harness.sleep(1.5)
  lu.assertEquals(#select(2, received()), 0)
  local waiting = c.service:request("GET", "/.leadq/outbox").json
  lu.assertEquals(waiting.waiting, 30)
  lu.assertEquals(#waiting.dead_letters, 0)
  lu.assertStrContains(c.service:request("GET", "/metrics").body, "leadq_delivery_retries_total")
  c.receiver = start_receiver(port)
  expect_exactly(leads("D", 30, {}))
end

function M.TestReactionsNginx.test_3_a_reload_mid_run_loses_nothing()
  local c = setup()
  harness.write_file(c.log, "")
  cross(c.service, "R", 30)
  lu.assertTrue(c.service:reload())
  cross(c.service, "S", 30)
  expect_exactly(leads("S", 30, leads("R", 30, {})))
  -- (the receiver's downtime left "connect() failed" lines; no round of the outbox failed)
  lu.assertNil(c.service:error_log():match("leadq: outbox[^\n]*"))
end

function M.TestReactionsNginx.test_4_sla_breach_unless_accepted()
  local c = setup()
  harness.write_file(c.log, "")
  local reactions = c.dir .. "/sla.lua"
  harness.write_file(reactions, table.concat({
    string.format('webhook "crm" { url = "http://127.0.0.1:%d/hooks", secret_env = "LEADQ_WEBHOOK_SECRET" }',
      c.receiver.port),
    'on { model = "engagement", to = "mql", webhook = "crm", assign = true, transition = "mql" }',
    'route { owner = "anna" }',
    'sla { accept_within_hours = 0.001, webhook = "crm" }',   -- 3.6 s
  }, "\n") .. "\n")
  local s, err = harness.start{ template = "reactions.conf.tmpl", rules = c.root .. "/" .. RULES,
    root = c.root, lib_dir = c.lib_dir, vars = { REACTIONS = reactions, SECRET = SECRET } }
  if not s then lu.fail("the service did not start: " .. tostring(err)) end
  local ok, failure = pcall(function()
    cross(s, "T", 2)
    lu.assertEquals(s:request("POST", "/.leadq/accept?lead=T-1").json, { accepted = "T-1" })
    lu.assertEquals(s:request("POST", "/.leadq/accept?lead=nobody").json.error, "lead 'nobody' was never handed off")
    local _, lines = wait_for(3, 10)
    local got = {}
    for _, l in ipairs(lines) do got[#got + 1] = l.lead .. " " .. l.to .. " " .. l.signed end
    table.sort(got)
    lu.assertEquals(got, { "T-1 mql signed", "T-2 lead.sla_breached signed", "T-2 mql signed" })
    lu.assertStrContains(s:request("GET", "/metrics").body, "leadq_sla_breaches_total 1\n")
  end)
  s:stop()
  if not ok then error(failure, 0) end
end

function M.TestReactionsNginx.test_5_several_models_in_one_server()
  local c = setup()
  harness.write_file(c.log, "")
  local reactions = c.dir .. "/several.lua"
  harness.write_file(reactions, table.concat({
    string.format('webhook "crm" { url = "http://127.0.0.1:%d/hooks", secret_env = "LEADQ_WEBHOOK_SECRET" }',
      c.receiver.port),
    'on { model = "sql", to = "sql", webhook = "crm" }',
    'on { model = "pql", to = "pql", webhook = "crm" }',
  }, "\n") .. "\n")
  local rules = {}
  for i, m in ipairs({ "mql", "sql", "pql" }) do rules[i] = c.root .. "/rules/" .. m .. ".lua" end
  local s, err = harness.start{ template = "reactions.conf.tmpl", rules = table.concat(rules, ","),
    root = c.root, lib_dir = c.lib_dir, vars = { REACTIONS = reactions, SECRET = SECRET } }
  if not s then lu.fail("the service did not start: " .. tostring(err)) end
  local ok, failure = pcall(function()
    local res = s:request("POST", "/leads/M-1", json.encode({ seniority = "vp", employees = 900,
      email_domain = "acme.com", country = "US", industry = "Software", budget = 90000 }))
    lu.assertEquals(res.status, 201, res.body)
    lu.assertEquals({ res.json.models.mql.status, res.json.models.sql.status, res.json.models.pql.status },
      { "nurture", "sql", "disqualified" })
    lu.assertEquals(s:request("GET", "/leads/M-1").json.model.name, "mql+sql+pql")
    local _, lines = wait_for(1, 10)
    lu.assertEquals(#lines, 1)
    lu.assertEquals({ lines[1].lead, lines[1].to, lines[1].signed }, { "M-1", "sql", "signed" })
  end)
  s:stop()
  if not ok then error(failure, 0) end
end

-- Many events for each of many leads at once (one curl, 32 transfers at a time, over both workers;
-- a lead's views side by side): each lead crosses into mql exactly once, and the answer that says
-- so is the one whose event was the third view folded (its pricing_views_30d is 3), never another;
-- the receiver gets one fact a lead.
function M.TestReactionsNginx.test_6_concurrent_events_of_one_lead_keep_their_order()
  local c = setup()
  local s = c.service
  harness.write_file(c.log, "")
  local LEADS_N, VIEWS = 150, 6
  local config = {}
  for i = 1, LEADS_N do
    lu.assertEquals(s:request("POST", "/leads/Q-" .. i, VP).status, 201)
    for _ = 1, VIEWS do
      config[#config + 1] = string.format('url = "%s/events"\nheader = "Content-Type: application/json"\n' ..
        'data-binary = "{\\"lead\\":\\"Q-%d\\",\\"type\\":\\"pricing_view\\"}"', s.base, i)
    end
  end
  local file = c.dir .. "/race.curl"
  harness.write_file(file, table.concat(config, "\nnext\n") .. "\n")   -- no `next` after the last: no empty transfer
  local p = io.popen("curl -s --parallel --parallel-immediate --parallel-max 32 -K " .. harness.quote(file))
  local out = p:read("*a")
  p:close()
  local said, answers = {}, 0
  for line in out:gmatch("[^\n]+") do
    local a = json.decode(line)
    lu.assertNotNil(a, line)
    answers = answers + 1
    local views = a.features.pricing_views_30d
    if a.changed and a.changed.to ~= a.changed.from then   -- a status change (a grade change says from = to)
      lu.assertEquals({ a.changed.from, a.changed.to, views }, { "nurture", "mql", 3 }, line)
      said[a.lead] = (said[a.lead] or 0) + 1
    else
      lu.assertNotEquals(views, 3, "the third view's answer did not say the change: " .. line)
    end
  end
  lu.assertEquals(answers, LEADS_N * VIEWS)
  for i = 1, LEADS_N do lu.assertEquals(said["Q-" .. i], 1, "Q-" .. i) end
  expect_exactly(leads("Q", LEADS_N, {}))
end

return M
