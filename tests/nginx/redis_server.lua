-- Starts and stops a private redis-server on 127.0.0.1 at a free port, its config, AOF and logs in a
-- folder of its own under /tmp (nothing outside it). Used by tests/test_redis.lua and the store bench.
--
--   local redis = require("nginx.redis_server")
--   local server = assert(redis.start())      -- server.port, server.socket (its Unix socket), server.dir
--   server:stop(); server:start_again()      -- a restart reads the AOF back
--   server:remove()                          -- stop always: call it from a teardown
--
-- Safety net: a watchdog shell stops redis-server when the Lua process that started it is gone, or
-- after `watchdog_seconds` (default 900). Loopback only.
local H = {}
local harness = require("nginx.harness")
local quote, read_file, write_file, sleep = harness.quote, harness.read_file, harness.write_file, harness.sleep

local function run(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  local ok = p:close()
  return out, ok == true or ok == 0
end

function H.available()
  if not os.execute("command -v redis-server >/dev/null 2>&1") then
    return false, "redis-server is not installed (.ci/install-deps redis)"
  end
  return true
end

function H.install_deps()
  local out, ok = run(".ci/install-deps openresty redis 2>&1")
  if not ok then return nil, "install-deps openresty redis failed: " .. out end
  return true
end

local function alive(pid)
  local stat = pid and read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%S+)") ~= "Z"
end

local Server = {}
Server.__index = Server

-- One PING over a new connection (hiredis, from the core being tested): true when redis answers.
function Server:ping()
  local core = require("leadq.core")
  local conn = core.redis_connect("127.0.0.1", self.port, 0.5)
  if not conn then return false end
  local pong = conn:call("PING")
  conn:close()
  return pong == "PONG"
end

function Server:launch()
  local cmd = string.format([[
env -u LD_PRELOAD redis-server %s </dev/null >%s 2>&1 &
r=$!
echo $r > %s
( i=0
  while [ $i -lt %d ] && kill -0 $PPID 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; i=$((i+1)); done
  kill -TERM $r 2>/dev/null ) </dev/null >/dev/null 2>&1 &
]], quote(self.dir .. "/redis.conf"), quote(self.dir .. "/stdout.txt"), quote(self.dir .. "/pid"),
    self.watchdog_seconds)
  os.execute(cmd)
  self.pid = tonumber((read_file(self.dir .. "/pid") or ""):match("%d+"))
  for _ = 1, 100 do   -- up to ~5 s (a restart loads the AOF first)
    if self:ping() then return true end
    if not alive(self.pid) then break end
    sleep(0.05)
  end
  local log = read_file(self.dir .. "/redis.log") or read_file(self.dir .. "/stdout.txt") or ""
  return nil, "redis-server did not answer: " .. log:sub(-1500)
end

-- opts: appendfsync ("everysec"), watchdog_seconds
function H.start(opts)
  opts = opts or {}
  local dir = run("mktemp -d /tmp/leadq-redis.XXXXXX"):gsub("%s+$", "")
  if dir == "" then return nil, "mktemp failed" end
  local last_err
  for _ = 1, 5 do
    local port = math.random(20000, 59999)
    -- AOF only (no RDB snapshots): a restart proves the AOF holds every state.
    write_file(dir .. "/redis.conf", table.concat({
      "bind 127.0.0.1", "port " .. port, "dir " .. dir, "logfile " .. dir .. "/redis.log",
      "daemonize no", "save \"\"", "appendonly yes", "appendfsync " .. (opts.appendfsync or "everysec"),
      "protected-mode yes", "databases 4",
      -- a lead's hash (profile, state: a few hundred bytes) kept as one listpack, as README advises
      "hash-max-listpack-value 1024",
      "unixsocket " .. dir .. "/redis.sock", "unixsocketperm 700",   -- store.redis{ path = } and its bench
      "enable-debug-command local",   -- DEBUG SLEEP: the tests make Redis slow on purpose
      "", }, "\n"))
    local server = setmetatable({ dir = dir, port = port, socket = dir .. "/redis.sock",
      watchdog_seconds = opts.watchdog_seconds or 900 }, Server)
    local ok, err = server:launch()
    if ok then return server end
    last_err = err
    server:stop()
    if not (err or ""):find("in use", 1, true) then break end
  end
  os.execute("rm -rf " .. quote(dir))
  return nil, last_err
end

-- Stops redis-server (SIGTERM: it writes its AOF out and exits), waits until it is gone.
function Server:stop()
  if self.pid and alive(self.pid) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    for _ = 1, 200 do
      if not alive(self.pid) then break end
      sleep(0.05)
    end
    if alive(self.pid) then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  end
  self.pid = nil
end

-- Starts it again on the same port and folder: it reads its AOF back.
function Server:start_again()
  return self:launch()
end

function Server:remove()
  self:stop()
  if self.dir and self.dir:match("^/tmp/leadq%-redis%.") then os.execute("rm -rf " .. quote(self.dir)) end
end

return H
