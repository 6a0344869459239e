-- https webhooks from the real service: receivers on 127.0.0.1 speak TLS with certificates this
-- test makes (openssl req, into the build folder). A receiver whose certificate the CA file trusts
-- and names the url's host gets its facts; an untrusted certificate, or one made out to another
-- name, gets none (the facts wait and retry); tls_verify = false, said in so many words, delivers
-- to the untrusted one.
local lu = require("luaunit")
local harness = require("nginx.harness")
local json = require("leadq.json")

local M = {}
M.TestReactionsHttps = {}

local RULES = "tests/nginx/rules/engagement.lua"
local SECRET = "https-test-secret"
local VP = '{"seniority":"VP","employees":900}'

local ctx

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

-- A self-signed certificate for `name` (its subjectAltName): cert and key files under dir.
local function make_certificate(dir, label, name)
  local cert, key = dir .. "/" .. label .. ".crt", dir .. "/" .. label .. ".key"
  local ok = sh(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=%s " ..
    "-addext subjectAltName=%s -keyout %s -out %s", name, name:find("^%d") and ("DNS:" .. name .. ",IP:" .. name)
    or ("DNS:" .. name), harness.quote(key), harness.quote(cert)))
  if not ok then lu.fail("openssl req could not make a certificate (is the openssl package installed?)") end
  return { cert = cert, key = key }
end

local function setup()
  if LEADQ_VARIANT ~= "luajit" then lu.skip("the nginx service runs under the luajit variant") end
  local ok, err = harness.install_deps()
  if not ok then lu.fail(err) end
  local yes, why = harness.available()
  if not yes then lu.fail(why) end
  if ctx then return ctx end
  ctx = { root = harness.root() }
  local build = ctx.root .. "/" .. (os.getenv("LEADQ_BUILD") or "build")
  ctx.lib_dir = build .. "/lib/luajit"
  ctx.dir = build .. "/tls-test-" .. tostring(os.time()) .. "-" .. tostring({}):match("0x(%x+)")
  assert(sh("mkdir -p " .. harness.quote(ctx.dir)))
  local trusted = make_certificate(ctx.dir, "trusted", "127.0.0.1")
  local untrusted = make_certificate(ctx.dir, "untrusted", "127.0.0.1")
  local other_name = make_certificate(ctx.dir, "other-name", "crm.example.com")
  -- the CA file: the trusted certificate and the one made out to another name
  ctx.ca = ctx.dir .. "/ca.pem"
  harness.write_file(ctx.ca, harness.read_file(trusted.cert) .. harness.read_file(other_name.cert))
  ctx.receivers, ctx.logs, ctx.services = {}, {}, {}
  for label, tls in pairs({ trusted = trusted, untrusted = untrusted, other_name = other_name }) do
    ctx.logs[label] = ctx.dir .. "/" .. label .. ".log"
    harness.write_file(ctx.logs[label], "")
    local server, serr = harness.start{ template = "receiver.conf.tmpl", rules = "-", root = ctx.root,
      lib_dir = ctx.lib_dir, tls = tls, vars = { SECRET = SECRET, LOG = ctx.logs[label] } }
    if not server then lu.fail("the " .. label .. " receiver did not start: " .. tostring(serr)) end
    ctx.receivers[label] = server
  end
  return ctx
end

-- A service whose reactions send each mql to the named webhooks, in this order (declared in
-- `declarations`): its facts of one lead go in order, so a refused one holds back those after it.
local function start_service(declarations, order)
  local function url(label) return string.format("https://127.0.0.1:%d/hooks", ctx.receivers[label].port) end
  local lines = {}
  for _, d in ipairs(declarations) do
    lines[#lines + 1] = string.format('webhook "%s" { url = "%s", secret_env = "LEADQ_WEBHOOK_SECRET"%s }', d[1],
      url(d[2]), d[3] or "")
  end
  lines[#lines + 1] = string.format('on { model = "engagement", to = "mql", webhook = { "%s" } }',
    table.concat(order, '", "'))
  local path = string.format("%s/reactions-%d.lua", ctx.dir, #ctx.services + 1)
  harness.write_file(path, table.concat(lines, "\n") .. "\n")
  local server, err = harness.start{ template = "reactions.conf.tmpl", rules = ctx.root .. "/" .. RULES,
    root = ctx.root, lib_dir = ctx.lib_dir, vars = { REACTIONS = path, SECRET = SECRET,
      HTTP_EXTRA = string.format("lua_ssl_trusted_certificate %s; lua_ssl_verify_depth 2;", ctx.ca) } }
  if not server then lu.fail("the service did not start: " .. tostring(err)) end
  ctx.services[#ctx.services + 1] = server
  return server
end

function M.TestReactionsHttps.teardownClass()
  if not ctx then return end
  for _, server in ipairs(ctx.services or {}) do server:stop() end
  for _, server in pairs(ctx.receivers or {}) do server:stop() end
  os.execute("rm -rf " .. harness.quote(ctx.dir))
  ctx = nil
end

-- "<key> <signed> <lead> <to>" lines a receiver logged
local function lines_of(label)
  local out = {}
  for line in (harness.read_file(ctx.logs[label]) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- A lead crosses into mql: the service's answers, then its facts have a moment to go (and the
-- refused ones a retry or two).
local function cross(s, id)
  lu.assertEquals(s:request("POST", "/leads/" .. id, VP).status, 201)
  for _ = 1, 3 do
    lu.assertEquals(s:request("POST", "/events", json.encode({ lead = id, type = "pricing_view" })).status, 200)
  end
end

local function wait_for_line(label)
  for _ = 1, 100 do
    if #lines_of(label) > 0 then return end
    harness.sleep(0.1)
  end
end

function M.TestReactionsHttps.test_verified_by_default_unless_said_otherwise()
  setup()
  local s = start_service({ { "trusted", "trusted" }, { "unchecked", "untrusted", ", tls_verify = false" },
    { "untrusted", "untrusted" } }, { "trusted", "unchecked", "untrusted" })
  cross(s, "T-1")
  wait_for_line("untrusted")
  harness.sleep(1.5)   -- the refused one: a retry or two
  lu.assertEquals(lines_of("trusted"), { "T-1-engagement-1 signed T-1 mql" })
  -- the untrusted receiver got only the fact of the webhook that turned verification off
  lu.assertEquals(lines_of("untrusted"), { "T-1-engagement-2 signed T-1 mql" })
  -- the refused one waits for another try; nginx says why
  lu.assertEquals(s:request("GET", "/.leadq/outbox").json.waiting, 1)
  lu.assertStrContains(s:error_log(), "certificate verify error")
  local metrics = s:request("GET", "/metrics").body
  lu.assertStrContains(metrics, "leadq_deliveries_total 2\n")
  lu.assertNotNil(metrics:match("leadq_delivery_retries_total [1-9]"), metrics)
end

-- A certificate the CA file trusts, made out to another name than the url's host: refused.
function M.TestReactionsHttps.test_the_server_name_is_checked()
  setup()
  local s = start_service({ { "other_name", "other_name" } }, { "other_name" })
  cross(s, "N-1")
  harness.sleep(1.5)
  lu.assertEquals(lines_of("other_name"), {})
  lu.assertEquals(s:request("GET", "/.leadq/outbox").json.waiting, 1)
  lu.assertStrContains(s:error_log(), "certificate does not match host")
end

return M
