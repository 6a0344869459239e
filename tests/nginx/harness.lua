-- Starts and stops a private nginx running tests/nginx/nginx.conf.tmpl on 127.0.0.1, and talks HTTP
-- to it with curl. Used by tests/test_service.lua and tests/bench/bench_service.lua.
--
--   local harness = require("nginx.harness")
--   local ok, why = harness.available()
--   local server = assert(harness.start{ rules = "/abs/rules.lua" })
--   local res = server:request("POST", "/events", '{"lead":"L1",...}')  -- { status, headers, body, json }
--   server:reload(); server:stop()   -- stop always: call it from a finally / teardown
--
-- Safety net: a watchdog shell stops nginx when the Lua process that started it is gone, or
-- after `watchdog_seconds` (default 900), whichever comes first. Loopback only.
local json = require("leadq.json")

local H = {}

local NGINX_MODULES = "/usr/lib/nginx/modules"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = quote

local function run(cmd)   -- the command's stdout, and whether it succeeded
  local p = io.popen(cmd)
  local out = p:read("*a")
  local ok = p:close()
  return out, ok == true or ok == 0
end
H.run = run

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
H.read_file = read_file

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end
H.write_file = write_file

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end
H.sleep = sleep

-- Whether a process runs (a zombie, which kill -0 still finds, counts as gone).
local function alive(pid)
  local stat = pid and read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%S+)") ~= "Z"
end

-- The repository root, absolute (the tests and benches run from it).
function H.root()
  return (run("pwd"):gsub("%s+$", ""))
end

-- true, or false and why this machine cannot run the service (nginx or curl missing).
function H.available()
  if not os.execute("command -v nginx >/dev/null 2>&1") then
    return false, "nginx is not installed (.ci/install-deps openresty)"
  end
  local f = io.open(NGINX_MODULES .. "/ngx_http_lua_module.so", "rb")
  if not f then return false, "libnginx-mod-http-lua is not installed (.ci/install-deps openresty)" end
  f:close()
  if not os.execute("command -v curl >/dev/null 2>&1") then
    return false, "curl is not installed (.ci/install-deps openresty)"
  end
  return true
end

-- Installs the openresty package set if anything is missing (a no-op otherwise).
-- What a bench against nginx needs, made ready: the packages (`.ci/install-deps SETS`), nginx with its
-- Lua module, wrk, and the LuaJIT build of the core that nginx loads. The build folder (LEADQ_BUILD,
-- else build), or nil and why the bench cannot run.
function H.bench_setup(sets)
  local out, ok = run(".ci/install-deps " .. sets .. " 2>&1")
  if not ok then return nil, out end
  local available, why = H.available()
  if not available then return nil, why end
  if not os.execute("command -v wrk >/dev/null 2>&1") then return nil, "wrk is not installed" end
  local build = os.getenv("LEADQ_BUILD") or "build"
  out, ok = run("make --no-print-directory BUILD=" .. quote(build) .. " LUA=luajit core 2>&1")
  if not ok then return nil, "make LUA=luajit core failed:\n" .. out end
  return build
end

function H.install_deps()
  local out, ok = run(".ci/install-deps openresty 2>&1")
  if not ok then return nil, "install-deps openresty failed: " .. out end
  return true
end

local function render(template, vars)
  return (template:gsub("%${([%w_]+)}", function(name)
    local v = vars[name]
    if v == nil then error("nginx.conf.tmpl: no value for ${" .. name .. "}", 0) end
    return v
  end))
end

local Server = {}
Server.__index = Server

local function random_port()
  local seed = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + seed % 100000)
  return math.random(20000, 59999)
end

-- Whether some socket listens on the port (read from /proc: no ss or netstat needed).
local function port_in_use(port)
  local hex = string.format(":%04X ", port)
  for _, table_file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    for line in ((read_file(table_file) or "") .. "\n"):gmatch("([^\n]*)\n") do
      local localaddr, state = line:match("^%s*%d+:%s+(%S+)%s+%S+%s+(%x%x)")
      if localaddr and state == "0A" and (localaddr .. " "):find(hex, 1, true) then return true end
    end
  end
  return false
end

-- opts: rules (absolute path, required), lib_dir (the luajit build's lib folder), port, dict_size,
-- template (a path under tests/nginx, default nginx.conf.tmpl), vars (more ${NAME} values for it),
-- tls ({ cert =, key = }: files; the server listens with ssl)
function H.start(opts)
  local root = opts.root or H.root()
  local prefix = run("mktemp -d /tmp/leadq-nginx.XXXXXX"):gsub("%s+$", "")
  if prefix == "" then return nil, "mktemp failed" end
  os.execute("mkdir -p " .. quote(prefix .. "/tmp"))
  local template = assert(read_file(root .. "/tests/nginx/" .. (opts.template or "nginx.conf.tmpl")))
  local user = run("id -un"):gsub("%s+$", "")
  local last_err
  for _ = 1, 5 do
    local port = opts.port or random_port()
    if port_in_use(port) then
      last_err = "port " .. port .. " in use"
      if opts.port then break end
    else
      local conf = prefix .. "/nginx.conf"
      local vars = {
        NGINX_MODULES = NGINX_MODULES, USER = user, PREFIX = prefix, PORT = tostring(port),
        LUA_DIR = root .. "/lua", LIB_DIR = opts.lib_dir or (root .. "/build/lib/luajit"),
        RULES = opts.rules,
        -- a template's optional lines (TLS: a receiver's listen flag and certificate, the CA file)
        LISTEN_EXTRA = "", SERVER_EXTRA = "", HTTP_EXTRA = "",
      }
      if opts.tls then   -- { cert =, key = }: the server speaks https (receiver.conf.tmpl)
        vars.LISTEN_EXTRA = "ssl"
        vars.SERVER_EXTRA = string.format("ssl_certificate %s; ssl_certificate_key %s;", opts.tls.cert, opts.tls.key)
      end
      for k, v in pairs(opts.vars or {}) do vars[k] = v end
      write_file(conf, render(template, vars))
      local server = setmetatable({ prefix = prefix, conf = conf, port = port,
        base = (opts.tls and "https" or "http") .. "://127.0.0.1:" .. port }, Server)
      local ok, err = server:launch(opts.watchdog_seconds or 900)
      if ok then return server end
      last_err = err
      server:stop(true)
      if opts.port or not (err or ""):find("in use", 1, true) then break end
    end
  end
  os.execute("rm -rf " .. quote(prefix))
  return nil, last_err or "no free port found"
end

function Server:nginx_cmd(extra)
  return "nginx -p " .. quote(self.prefix) .. " -c " .. quote(self.conf) .. (extra or "")
end

function Server:launch(watchdog_seconds)
  local pidfile = self.prefix .. "/master.pid"
  -- nginx in the background (daemon off, so $! is the master); then a watchdog that stops it when
  -- this Lua process ($PPID of the shell) is gone or the time is up: nginx never outlives a test.
  local cmd = string.format([[
%s </dev/null >%s 2>&1 &
ngx=$!
echo $ngx > %s
( i=0
  while [ $i -lt %d ] && kill -0 $PPID 2>/dev/null && kill -0 $ngx 2>/dev/null; do sleep 1; i=$((i+1)); done
  kill -TERM $ngx 2>/dev/null ) </dev/null >/dev/null 2>&1 &
]], self:nginx_cmd(), quote(self.prefix .. "/stderr.txt"), quote(pidfile), watchdog_seconds)
  os.execute(cmd)
  self.master = tonumber((read_file(pidfile) or ""):match("%d+"))
  if not self.master then return nil, "nginx did not start" end
  for _ = 1, 100 do   -- up to ~5 s
    local res = self:request("GET", "/plain", nil, { max_time = 1 })
    if res.status == 200 then
      if not self:owns(res.headers["x-worker-pid"]) then
        return nil, "another server answers on port " .. self.port .. " (in use)"
      end
      return true
    end
    if not alive(self.master) then break end
    sleep(0.05)
  end
  local log = (read_file(self.prefix .. "/stderr.txt") or "") .. (read_file(self.prefix .. "/error.log") or "")
  if log:find("Address already in use", 1, true) then return nil, "port " .. self.port .. " in use" end
  return nil, "nginx did not answer: " .. log:sub(-2000)
end

-- Whether pid is a worker of this server's master (so the answer came from us).
function Server:owns(pid)
  local stat = pid and read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local ppid = tonumber(stat:match("^%d+ %b() %S+ (%d+)"))
  return ppid == self.master
end

-- The worker pids of this server, now (children of the master, from /proc: no ps needed).
function Server:workers()
  local pids = {}
  if not self.master then return pids end
  for pid in run("ls /proc"):gmatch("%d+") do
    local stat = read_file("/proc/" .. pid .. "/stat")
    local state, ppid = (stat or ""):match("^%d+ %b() (%S+) (%d+)")
    if tonumber(ppid) == self.master and state ~= "Z" then pids[#pids + 1] = tonumber(pid) end
  end
  table.sort(pids)
  return pids
end

function Server:error_log()
  return read_file(self.prefix .. "/error.log") or ""
end

-- One HTTP request over a new connection. body: a string (sent as is) or nil.
-- Returns { status = n, headers = { lowercased name = value }, body = s, json = decoded or nil }.
function Server:request(method, path, body, opts)
  opts = opts or {}
  -- -k: a test's https server has a certificate of its own making (what the test checks is leadq's client)
  local args = { "curl -sS -i -k --max-time " .. (opts.max_time or 5),
    method == "HEAD" and "-I" or "-X " .. quote(method), "-H 'Expect:'" }
  if body then
    local body_file = self.prefix .. "/request.body"
    write_file(body_file, body)
    args[#args + 1] = "-H 'Content-Type: application/json' --data-binary @" .. quote(body_file)
  end
  for name, value in pairs(opts.headers or {}) do args[#args + 1] = "-H " .. quote(name .. ": " .. value) end
  args[#args + 1] = quote(self.base .. path)
  local out = run(table.concat(args, " ") .. " 2>&1")
  local res = { status = 0, headers = {}, body = out }
  local head, rest = out:match("^(HTTP/[^\r\n]*.-)\r\n\r\n(.*)$")
  while head and head:match("^HTTP/%S+ 1%d%d") do   -- skip interim answers (100 Continue)
    head, rest = rest:match("^(HTTP/[^\r\n]*.-)\r\n\r\n(.*)$")
  end
  if not head then return res end
  res.status = tonumber(head:match("^HTTP/%S+ (%d+)"))
  for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do res.headers[name:lower()] = value end
  res.body = rest
  if (res.headers["content-type"] or ""):find("json", 1, true) then res.json = json.decode(rest) end
  return res
end

-- Sends the same request n times, `parallel` at once (curl processes), over new connections;
-- returns the count of answers by status.
function Server:flood(method, path, body, n, parallel)
  local body_file = self.prefix .. "/flood.body"
  write_file(body_file, body or "")
  local cmd = string.format("seq %d | xargs -P %d -I{} curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 10 " ..
    "-H 'Expect:' -H 'Content-Type: application/json' -X %s --data-binary @%s %s 2>&1", n, parallel, quote(method),
    quote(body_file), quote(self.base .. path))
  local counts = {}
  for code in run(cmd):gmatch("%d+") do
    code = tonumber(code)
    counts[code] = (counts[code] or 0) + 1
  end
  return counts
end

-- Sends HUP (nginx -s reload); returns when the old workers are gone (new ones serve), or false.
function Server:reload()
  local old = {}
  for _, pid in ipairs(self:workers()) do old[pid] = true end
  local _, ok = run(self:nginx_cmd(" -s reload 2>&1"))
  if not ok then return false end
  for _ = 1, 100 do   -- up to ~5 s
    local all_new, n = true, 0
    for _, pid in ipairs(self:workers()) do
      n = n + 1
      if old[pid] then all_new = false end
    end
    if all_new and n > 0 then return true end
    sleep(0.05)
  end
  return false
end

-- Waits until the error log contains text (a plain string); true, or false after ~5 s.
function Server:wait_log(text)
  for _ = 1, 100 do
    if self:error_log():find(text, 1, true) then return true end
    sleep(0.05)
  end
  return false
end

-- Stops nginx (graceful, then forced) and removes its folder unless keep. Safe to call twice.
function Server:stop(keep)
  if self.master and alive(self.master) then
    os.execute("kill -QUIT " .. self.master .. " 2>/dev/null")
    for _ = 1, 100 do
      if not alive(self.master) then break end
      sleep(0.05)
    end
    if alive(self.master) then os.execute("kill -TERM " .. self.master .. " 2>/dev/null") end
  end
  self.master = nil
  if not keep and self.prefix and self.prefix:match("^/tmp/leadq%-nginx%.") then
    os.execute("rm -rf " .. quote(self.prefix))
  end
end

return H
