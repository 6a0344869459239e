-- leadq.store: where the service keeps its leads, when that is Redis; and the export/import of any
-- store's leads as NDJSON.
--
-- The store interface. A lead is a profile (JSON text) with its version, and an engagement state
-- (bytes the feature set encodes, "<latest>:<encoding>"). Every store gives an atomic per-lead
-- update, each in the way that suits it:
--   * ngx.shared.DICT / service.memory_store(): get/safe_set/safe_add/delete/incr with flags; the
--     service takes the lead's lock (a key added and deleted), reads, changes and writes back, and
--     the profile's version rides on the flags (see the top of leadq/service.lua). Kept as it was:
--     it is the fastest path there is in one nginx.
--   * a compare-and-set store (this file's Redis store): the service reads the lead and its stamp
--     (a counter that every write of the lead moves on), computes, and writes only if the stamp is
--     still the one it read; otherwise it reads again and retries. No lock, nothing held across
--     nodes, nothing left behind by a worker that dies between the read and the write.
--       store:read_lead(id, with_profile) -> profile|false, version, state|false, stamp
--       store:write_state(id, stamp, state)     -> new stamp | false, and the lead as it is now
--                                                  (stamp, state, profile version) if it changed
--       store:write_profile(id, stamp, profile) -> new stamp (the profile's version) | false
--     each of them nil, message when the store cannot be reached (the service answers 503).
--     It also answers store:get("p:<id>") / get("s:<id>") as a dict would (text, version), which
--     raises a store.Unavailable error when Redis cannot be reached.
--
-- Redis layout: one hash per lead, "leadq:{<id>}" (the braces are Redis Cluster's hash tag: every key
-- of a lead falls in one slot, and the scripts only ever touch one lead's keys), fields p (profile),
-- v (profile version), s (state), n (stamp). Nothing global: no counter every node would fight over.
--
-- Clients: inside nginx, lua-nginx-redis (cosockets, pooled connections); elsewhere, leadq.core's
-- binding of hiredis. Cosockets do not exist in init_by_lua, init_worker_by_lua, set_by_lua, the
-- header and body filters and log_by_lua: there the store answers "unavailable" (the service makes no
-- Redis call before a request).
local json = require("leadq.json")

local type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable, error, select =
  type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable, error, select
local format, sub, find = string.format, string.sub, string.find

local _M = { _VERSION = "0.1.0" }

local PREFIX = "leadq:"

-- Raised by get when the store cannot be reached: nginx's glue answers it with a 503.
local Unavailable = { __name = "leadq.StoreUnavailable" }
Unavailable.__index = Unavailable
Unavailable.__tostring = function(e) return "lead store unavailable: " .. tostring(e.message) end
_M.Unavailable = Unavailable
function _M.is_unavailable(e) return type(e) == "table" and getmetatable(e) == Unavailable end

-- The compare-and-set scripts (one lead's hash each: KEYS[1]). A missing stamp is "0". A stamp is
-- written as the text string.format('%d') makes (an integer's own digits, as the stamp read back
-- compares them): a number handed to redis.call as it is goes through the float printf of Redis's
-- Lua (%.14g), a few percent of Redis's CPU for an import.
local SCRIPTS = {
  -- ARGV: stamp read, new state. The new stamp; -1: the lead has no profile (its version is set with
  -- it); changed meanwhile: { stamp, state, profile version } as they are now, for the retry. The
  -- common case reads the stamp alone: the state, the biggest field, is not copied for nothing.
  state = [[
local n = redis.call('HGET', KEYS[1], 'n')
if n == ARGV[1] then
  n = tonumber(n) + 1
  redis.call('HSET', KEYS[1], 's', ARGV[2], 'n', string.format('%d', n))
  return n
end
if not n then return -1 end
local cur = redis.call('HMGET', KEYS[1], 's', 'v')
if not cur[2] then return -1 end
return { n, cur[1] or '', cur[2] }]],
  -- ARGV: stamp read, new profile text. The profile's version is the new stamp.
  profile = [[
local n = redis.call('HGET', KEYS[1], 'n') or '0'
if n ~= ARGV[1] then return 0 end
n = tonumber(n) + 1
local text = string.format('%d', n)
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'v', text, 'n', text)
return n]],
  -- ARGV: profile, state ("" for none): an imported lead (the export's version is not kept),
  -- written whole. Its stamp moves on from the one it had, so a service that read the lead before
  -- sees a change, and the profile's version is that new stamp, as for any profile write: a version
  -- names one profile of the lead, and no worker keeps an imported profile's predecessor. One write
  -- command in the common case: the AOF then keeps it as it is, not wrapped in MULTI/EXEC.
  import = [[
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') + 1
local text = string.format('%d', n)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', text, 's', ARGV[2], 'n', text)
else
  redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', text, 'n', text)
  redis.call('HDEL', KEYS[1], 's')
end
return n]],
  -- The same for several leads in one call (KEYS: their keys; ARGV: profile, state for each, in
  -- turn): a script call per lead costs Redis more than its writes. Stops at a lead whose writes
  -- Redis refuses and returns { its index, the error }; the leads before it are written. Keys of
  -- several leads are in several hash slots: a Redis Cluster refuses this one (import_one there).
  import_many = [[
for i = 1, #KEYS do
  local k, p, s = KEYS[i], ARGV[2 * i - 1], ARGV[2 * i]
  local n = redis.pcall('HGET', k, 'n')
  if type(n) == 'table' and n.err then return { i, n.err } end
  n = string.format('%d', tonumber(n or '0') + 1)
  local r
  if s ~= '' then
    r = redis.pcall('HSET', k, 'p', p, 'v', n, 's', s, 'n', n)
  else
    r = redis.pcall('HSET', k, 'p', p, 'v', n, 'n', n)
    if not (type(r) == 'table' and r.err) then r = redis.pcall('HDEL', k, 's') end
  end
  if type(r) == 'table' and r.err then return { i, r.err } end
end
return #KEYS]],
}

---------------------------------------------------------------------------------------------------
-- Clients: call(cmd, ...) -> reply (false for a nil reply), or nil, message, kind ("redis": an error
-- reply; "socket": the connection failed, it is closed and the next call connects again).
---------------------------------------------------------------------------------------------------

local NO_COSOCKET = { init = 1, init_worker = 1, set = 1, header_filter = 1, body_filter = 1, log = 1, balancer = 1 }

local function nginx_client(cfg)
  local redis = require("nginx.redis")
  local ngx = ngx   -- luacheck: ignore
  local null = ngx.null
  local client = {}
  local pool_name = cfg.path and format("leadq:unix:%s:%d", cfg.path, cfg.db) or
    format("leadq:%s:%d:%d", cfg.host, cfg.port, cfg.db)
  local connect_opts = { pool = pool_name, pool_size = cfg.pool }
  local timeout_ms = cfg.timeout * 1000
  local unix_address = cfg.path and "unix:" .. cfg.path

  local function connection()
    local phase = ngx.get_phase()
    if NO_COSOCKET[phase] then return nil, "redis: no cosockets in the " .. phase .. " phase" end
    local red, err = redis:new()
    if not red then return nil, "redis: " .. tostring(err) end
    red:set_timeout(timeout_ms)
    local ok
    if unix_address then
      ok, err = red:connect(unix_address, connect_opts)
      if not ok then return nil, format("redis: cannot connect to %s: %s", cfg.path, tostring(err)) end
    else
      ok, err = red:connect(cfg.host, cfg.port, connect_opts)
      if not ok then return nil, format("redis: cannot connect to %s:%d: %s", cfg.host, cfg.port, tostring(err)) end
    end
    if red:get_reused_times() == 0 then   -- a new connection: authenticate and choose the database once
      if cfg.password then
        ok, err = red:auth(cfg.password)
        if not ok then red:close(); return nil, "redis: AUTH refused: " .. tostring(err) end
      end
      if cfg.db ~= 0 then
        ok, err = red:select(cfg.db)
        if not ok then red:close(); return nil, "redis: SELECT refused: " .. tostring(err) end
      end
    end
    return red
  end

  local function finish(red, res, err)
    if res == nil then   -- socket error or timeout: the connection is in an unknown state
      red:close()
      return nil, "redis: " .. tostring(err), "socket"
    end
    red:set_keepalive(cfg.keepalive * 1000, cfg.pool)
    if res == false and err then return nil, err, "redis" end
    return res
  end

  local function fix_nulls(res)
    if res == null then return false end
    if type(res) == "table" then
      for i = 1, #res do if res[i] == null then res[i] = false end end
    end
    return res
  end

  -- lua-nginx-redis's pipeline gives an error reply as { false, message }
  local function error_reply(r)
    if type(r) == "table" and r[1] == false and type(r[2]) == "string" then return r[2] end
    return nil
  end

  -- n commands (each { cmd, args... }, as many args as its field n says, else its length) in one
  -- write on the connection red: the replies as lua-nginx-redis gives them, or nil and a message
  -- (the connection is closed then).
  local function pipeline_on(red, commands, n)
    red:init_pipeline(n)
    for i = 1, n do
      local c = commands[i]
      red[c[1]](red, unpack(c, 2, c.n or #c))   -- luacheck: ignore
    end
    local results, perr = red:commit_pipeline()
    if not results then
      red:close()
      return nil, "redis: " .. tostring(perr)
    end
    return results
  end

  -- The same on a pooled connection, given back to the pool after.
  local function send_pipeline(commands, n)
    local red, err = connection()
    if not red then return nil, err end
    local results, perr = pipeline_on(red, commands, n)
    if results then red:set_keepalive(cfg.keepalive * 1000, cfg.pool) end
    return results, perr
  end

  -- One command on a pooled connection of the calling request's own.
  local function direct_call(cmd, ...)
    local red, err = connection()
    if not red then return nil, err, "socket" end
    local res, cerr = red[cmd](red, ...)
    res, cerr = finish(red, res, cerr)
    if res == nil then return nil, cerr, (find(cerr, "^redis: ") and "socket" or "redis") end
    return fix_nulls(res)
  end

  -- Automatic pipelining. A request's command joins this worker's open batch and the request waits;
  -- one light thread (a timer: a cosocket belongs to the request that made it, so the batches need
  -- a thread of their own) sends the batch whole and reads its replies, while the next batch fills
  -- with the commands that come meanwhile. The commands of as many requests as arrive in one round
  -- trip go out in one write and come back in one read, on both sides: system calls were most of an
  -- event's CPU, in nginx's workers and in redis-server. Unloaded, a batch is one command: a round
  -- trip as before, plus the hop to the thread and back. Each command stays a command of its own
  -- (Redis runs them one after another, each script atomic): nothing changes for compare-and-set or
  -- for Redis Cluster's slots.
  local semaphore = require("ngx.semaphore")
  local timer_at, exiting, sleep = ngx.timer.at, ngx.worker.exiting, ngx.sleep
  -- how long a request waits for its batch: the batch before it and its own, each a connect, a send
  -- and a read at most; a bound even if the thread were stuck
  local wait_seconds = 6 * cfg.timeout + 0.1
  -- A batch's table and semaphore serve again once every request of it has taken its reply (a new
  -- semaphore per batch was a tenth of the worker's Lua time in a profile); a batch one of whose
  -- requests gave up waiting is left to the garbage collector, its semaphore's count unspent.
  local spare, spares = {}, 0
  local function new_batch()
    if spares == 0 then return { n = 0, left = 0, sema = semaphore.new(0) } end
    local batch = spare[spares]
    spare[spares], spares = nil, spares - 1
    return batch
  end
  local function reuse(batch)
    for i = 1, batch.n do batch[i] = nil end
    batch.n, batch.results, batch.err = 0, nil, nil
    if spares < 64 then spares = spares + 1; spare[spares] = batch end
  end
  local open = new_batch()
  local wake = semaphore.new(0)
  local sender_running, sender_waiting = false, false
  -- The thread keeps its connection while batches keep coming (no pool round per batch), and gives it
  -- back to the pool as soon as none came for a millisecond: only a pooled connection is watched, so
  -- one Redis closed (a restart) is dropped there rather than failing the next batch.
  local held

  local function release(batch, results, err)
    batch.results, batch.err, batch.left = results, err, batch.n
    batch.sema:post(batch.n)
  end

  local function send_batch(batch)
    local red, err = held
    held = nil
    if not red then
      red, err = connection()
      if not red then return release(batch, nil, err) end
    end
    local results, perr = pipeline_on(red, batch, batch.n)
    if results then held = red end
    release(batch, results, perr)
  end

  local function send_batches()
    while true do
      if open.n == 0 then
        sender_waiting = true   -- for both waits: a call that finds it so posts once, and either wait takes it
        local woken = held and wake:wait(0.001)
        if not woken and held then
          held:set_keepalive(cfg.keepalive * 1000, cfg.pool)
          held = nil
        end
        if not woken then woken = wake:wait(1) end
        sender_waiting = false
        if not woken and open.n == 0 and exiting() then return end
      end
      if open.n > 0 then
        -- one more turn of the event loop first: the requests that came in meanwhile join this batch
        -- rather than wait a round trip for the next (a third more commands a write at 8 clients)
        sleep(0)
        local batch = open
        open = new_batch()
        local ok, err = pcall(send_batch, batch)
        if not ok and batch.results == nil and batch.err == nil then release(batch, nil, "redis: " .. tostring(err)) end
      end
    end
  end

  -- The thread's whole life: whatever ends it (the worker exiting, an error), the next call starts
  -- another, and whoever waits in the open batch is told at once rather than at its timeout.
  local function sender(premature)
    local ok, err = true, nil
    if not premature then ok, err = pcall(send_batches) end
    sender_running, held = false, nil   -- a timer's cosockets close with it
    if not ok then ngx.log(ngx.ERR, "leadq: the Redis batch thread stopped: ", tostring(err)) end
    if open.n > 0 then
      local batch = open
      open = new_batch()
      release(batch, nil, ok and "redis: nginx worker exiting" or "redis: " .. tostring(err))
    end
  end

  function client.call(_, cmd, ...)
    local phase = ngx.get_phase()
    if NO_COSOCKET[phase] then return nil, "redis: no cosockets in the " .. phase .. " phase", "socket" end
    if not sender_running then
      if not timer_at(0, sender) then return direct_call(cmd, ...) end   -- no timer (exiting): as before
      sender_running = true
    end
    local batch = open
    local n = batch.n + 1
    batch.n = n
    batch[n] = { cmd, n = select("#", ...) + 1, ... }
    if sender_waiting then
      sender_waiting = false
      wake:post(1)
    end
    local ok, werr = batch.sema:wait(wait_seconds)
    if not ok then return nil, "redis: " .. tostring(werr), "socket" end
    local results, err = batch.results, batch.err
    local res = results and results[n]
    local left = batch.left - 1
    batch.left = left
    if left == 0 then reuse(batch) end
    if not results then return nil, err, "socket" end
    local message = error_reply(res)
    if message then return nil, message, "redis" end
    return fix_nulls(res)
  end

  -- commands: { {cmd, args...}, ... } -> replies, errors-or-nil
  function client.pipeline(_, commands)
    local results, err = send_pipeline(commands, #commands)
    if not results then return nil, err end
    local errors
    for i = 1, #commands do
      local r = results[i]
      local message = error_reply(r)
      if message then
        errors = errors or {}
        errors[i], results[i] = message, false
      else
        results[i] = fix_nulls(r)
      end
    end
    return results, errors
  end
  return client
end

local function plain_client(cfg)
  local core = require("leadq.core")
  local client = {}
  local conn

  local function connection()
    if conn and conn:connected() then return conn end
    local c, err
    if cfg.path then c, err = core.redis_connect_unix(cfg.path, cfg.timeout)
    else c, err = core.redis_connect(cfg.host, cfg.port, cfg.timeout) end
    if not c then return nil, err end
    if cfg.password then
      local ok, aerr = c:call("AUTH", cfg.password)
      if not ok then c:close(); return nil, "redis: AUTH refused: " .. tostring(aerr) end
    end
    if cfg.db ~= 0 then
      local ok, serr = c:call("SELECT", cfg.db)
      if not ok then c:close(); return nil, "redis: SELECT refused: " .. tostring(serr) end
    end
    conn = c
    return c
  end

  function client.call(_, cmd, ...)
    local c, err = connection()
    if not c then return nil, err, "socket" end
    local res, cerr = c:call(cmd, ...)
    if res == nil then return nil, cerr, c:connected() and "redis" or "socket" end
    return res
  end

  function client.pipeline(_, commands)
    local c, err = connection()
    if not c then return nil, err end
    return c:pipeline(commands)
  end

  function client.send(_, commands)
    local c, err = connection()
    if not c then return nil, err end
    return c:send(commands)
  end

  function client.receive_lines(_, keys, prefix_length)
    if not (conn and conn:connected()) then return nil, "redis: connection closed" end
    return conn:receive_lines(keys, prefix_length)
  end

  function client.receive(_, n, discard)
    if not (conn and conn:connected()) then return nil, "redis: connection closed" end
    return conn:receive(n, discard)
  end

  function client.close() if conn then conn:close(); conn = nil end end
  return client
end

---------------------------------------------------------------------------------------------------
-- The Redis store
---------------------------------------------------------------------------------------------------

local RedisStore = {}
RedisStore.__index = RedisStore

local OPTIONS = { host = "string", port = "number", path = "string", password = "string", db = "number",
  pool = "number", timeout = "number", keepalive = "number", prefix = "string", client = "string", cache = "string" }

-- opts: host ("127.0.0.1") and port (6379), or path (a Redis on this host through its Unix socket,
-- redis.conf's `unixsocket`: no TCP stack on either side of a round trip; the nginx workers' user must
-- be allowed to open it), password, db (0), pool (connections kept per nginx worker, 32), timeout
-- (seconds for connect, send and read each, 0.5), keepalive (seconds an idle pooled connection is
-- kept, 60), prefix ("leadq:"), client ("nginx" | "hiredis"; default: nginx's when running inside
-- nginx), cache (a lua_shared_dict's name, or a dict-like table: see RedisStore:known).
-- Raises on a bad option; connects only when first used.
function _M.redis(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("store.redis: expected a table of options", 2) end
  for k, v in pairs(opts) do
    if not OPTIONS[k] then error(format("store.redis: unknown option '%s'", tostring(k)), 2) end
    if type(v) ~= OPTIONS[k] and not (k == "cache" and type(v) == "table") then
      error(format("store.redis: option '%s' must be a %s", k, OPTIONS[k]), 2)
    end
  end
  if opts.path and (opts.host or opts.port) then
    error("store.redis: option 'path' (a Unix socket) goes without 'host' and 'port'", 2)
  end
  if opts.path == "" then error("store.redis: option 'path' must name a Unix socket", 2) end
  local cfg = { host = opts.host or "127.0.0.1", port = opts.port or 6379, path = opts.path,
    password = opts.password, db = opts.db or 0, pool = opts.pool or 32, timeout = opts.timeout or 0.5,
    keepalive = opts.keepalive or 60 }
  if cfg.timeout <= 0 or cfg.timeout > 60 then
    error("store.redis: option 'timeout' must be above 0 and at most 60 seconds", 2)
  end
  if cfg.port < 1 or cfg.port > 65535 or cfg.port % 1 ~= 0 then
    error("store.redis: option 'port' must be 1 to 65535", 2)
  end
  if cfg.db < 0 or cfg.db % 1 ~= 0 then error("store.redis: option 'db' must be a whole number, 0 or more", 2) end
  if cfg.pool < 1 or cfg.pool % 1 ~= 0 then error("store.redis: option 'pool' must be a whole number, 1 or more", 2) end
  local kind = opts.client
  local ngx = rawget(_G, "ngx")
  if kind == nil then kind = (ngx and ngx.socket and ngx.socket.tcp) and "nginx" or "hiredis" end
  if kind ~= "nginx" and kind ~= "hiredis" then
    error("store.redis: option 'client' must be 'nginx' or 'hiredis'", 2)
  end
  local prefix = opts.prefix or PREFIX
  local cache = opts.cache
  if type(cache) == "string" then
    cache = ngx and ngx.shared and ngx.shared[opts.cache]
    if not cache then error(format("store.redis: option 'cache': no lua_shared_dict named '%s'", opts.cache), 2) end
  end
  return setmetatable({
    cache = cache or nil,
    cfg = cfg, prefix = prefix, kind = "redis",
    client = kind == "nginx" and nginx_client(cfg) or plain_client(cfg),
    sha = {},                  -- script name -> SHA1, once loaded (by this worker)
    keys = {}, key_count = 0,  -- lead id -> its key, bounded
    description = cfg.path and format("redis unix:%s/%d", cfg.path, cfg.db) or
      format("redis://%s:%d/%d", cfg.host, cfg.port, cfg.db),
  }, RedisStore)
end

-- "redis://[:password@]host[:port][/db]" (or a unix:// one, above) -> options for store.redis, or nil
-- and why.
-- "unix://[:password@]/path/to/redis.sock[?db=N]" -> options with the socket's path (a Redis on this
-- host, through its unixsocket: no TCP stack).
local URL_FORMS = "redis://[:password@]host[:port][/db] or unix://[:password@]/path/to/redis.sock[?db=N]"

-- The ":password@" before where a URL's address starts (auth_pattern splits the two): options with
-- the password, and the rest of the URL.
local function split_password(rest, auth_pattern)
  local opts = {}
  local auth, after = rest:match(auth_pattern)
  if not auth then return opts, rest end
  opts.password = auth:match("^:?(.*)$")
  return opts, after
end

local function parse_unix_url(url, rest)
  local opts
  opts, rest = split_password(rest, "^([^/]*)@(/.*)$")
  local path, query = rest:match("^(/[^?]+)%??(.*)$")
  if not path then return nil, format("store '%s': expected %s", url, URL_FORMS) end
  opts.path = path
  if query ~= "" then
    local db = query:match("^db=(%d+)$")
    if not db then return nil, format("store '%s': the only option of a unix:// store is ?db=N", url) end
    opts.db = tonumber(db)
  end
  return opts
end

function _M.parse_url(url)
  local unix = url:match("^unix://(.*)$")
  if unix then return parse_unix_url(url, unix) end
  local rest = url:match("^redis://(.*)$")
  if not rest then return nil, format("store '%s': expected %s", url, URL_FORMS) end
  local opts
  opts, rest = split_password(rest, "^(.*)@([^@]*)$")
  local hostport, db = rest:match("^([^/]*)/?(%d*)$")
  if not hostport then return nil, format("store '%s': expected %s", url, URL_FORMS) end
  local host, port = hostport:match("^(.-):(%d+)$")
  opts.host = host or (hostport ~= "" and hostport or "127.0.0.1")
  opts.port = tonumber(port) or 6379
  if db ~= "" then opts.db = tonumber(db) end
  return opts
end

function RedisStore:key(id)
  local key = self.keys[id]
  if key then return key end
  key = self.prefix .. "{" .. id .. "}"
  if self.key_count >= 10000 then self.keys, self.key_count = {}, 0 end
  self.keys[id], self.key_count = key, self.key_count + 1
  return key
end

-- Runs one of SCRIPTS: EVALSHA, loading the script first when this worker has no SHA for it or the
-- server forgot it (NOSCRIPT after a restart or SCRIPT FLUSH).
-- The SHA of one of SCRIPTS, loaded into Redis on first use (and again once Redis forgot it).
local function script_sha(self, name)
  local sha = self.sha[name]
  if sha then return sha end
  local loaded, err = self.client:call("script", "load", SCRIPTS[name])
  if not loaded then return nil, err end
  self.sha[name] = loaded
  return loaded
end

function RedisStore:script(name, key, ...)
  local client = self.client
  for _ = 1, 2 do
    local sha, lerr = script_sha(self, name)
    if not sha then return nil, lerr end
    local res, err, kind = client:call("evalsha", sha, 1, key, ...)
    if res ~= nil or kind ~= "redis" or not find(err, "NOSCRIPT", 1, true) then return res, err end
    self.sha[name] = nil
  end
  return nil, "redis: the script " .. name .. " could not be loaded"
end

local function version_number(v)
  return tonumber(v) or 0
end

-- profile text or false, profile version, state text or false, stamp (a string); or nil, message.
-- with_profile false: the profile is not read (the caller has it cached with the version).
function RedisStore:read_lead(id, with_profile)
  local res, err
  if with_profile then
    res, err = self.client:call("hmget", self:key(id), "v", "s", "n", "p")
  else
    res, err = self.client:call("hmget", self:key(id), "v", "s", "n")
  end
  if not res then return nil, err end
  return res[4] or false, version_number(res[1]), res[2] or false, res[3] or "0"
end

-- The node's last known stamp, state|false and profile version of a lead, or nil (no cache, or the
-- lead is not in it). The workers of one nginx take events for the same leads: each write and each
-- refused write leaves the lead as it then was in a shared dict, so the next event, whichever worker
-- takes it, writes in one round trip instead of being refused for a stamp another worker moved on.
-- What it gives is only a guess the compare-and-set checks: never a lost or doubled event.
-- Entry: "<stamp> <profile version> <state>" (no state: nothing after the second space).
function RedisStore:known(id)
  local cache = self.cache
  if not cache then return nil end
  local entry = cache:get(self:key(id))
  if not entry then return nil end
  local a = find(entry, " ", 1, true)
  local b = find(entry, " ", a + 1, true)
  return sub(entry, 1, a - 1), tonumber(sub(entry, a + 1, b - 1)), b < #entry and sub(entry, b + 1) or false
end

local function remember(self, id, stamp, version, state)
  -- set, not safe_set: a full cache forgets its oldest leads, which then cost a refused write
  self.cache:set(self:key(id), stamp .. " " .. format("%d", version) .. " " .. (state or ""))
end

-- The new stamp; false, stamp, state|false, profile version when the lead changed since stamp;
-- false when it has no profile; nil, message when Redis cannot be reached. version: the profile's
-- version the caller holds for stamp (what the node's cache keeps beside the state).
function RedisStore:write_state(id, stamp, state, version)
  local n, err = self:script("state", self:key(id), stamp, state)
  if n == nil then return nil, err end
  if type(n) == "table" then
    local current_state, current_version = n[2] ~= "" and n[2] or false, version_number(n[3])
    if self.cache then remember(self, id, n[1], current_version, current_state) end
    return false, n[1], current_state, current_version
  end
  if n == -1 then return false end
  n = tostring(n)
  if self.cache and version then remember(self, id, n, version, state) end
  return n
end

function RedisStore:write_profile(id, stamp, profile)
  local n, err = self:script("profile", self:key(id), stamp, profile)
  if n == nil then return nil, err end
  return n > 0 and n or false
end

-- The dict-like reads the service's GET path makes: "p:<id>" -> profile, version; "s:<id>" -> state,
-- version. Raises a store.Unavailable when Redis cannot be reached.
function RedisStore:get(key)
  local kind, id = sub(key, 1, 2), sub(key, 3)
  local field = (kind == "p:" and "p") or (kind == "s:" and "s")
  if not field then error("store: no such key in a Redis store: " .. key, 2) end
  local res, err = self.client:call("hmget", self:key(id), field, "v")
  if not res then error(setmetatable({ message = err }, Unavailable), 0) end
  if not res[1] then return nil end
  return res[1], version_number(res[2])
end

-- Every lead, a batch at a time: fn(id, profile, version, state|false) for each; true, or nil and why.
-- lines(text, count): when the client can, it is given each batch's export lines made in C instead
-- (fn then sees only the leads whose id or version needs the long way).
function RedisStore:each_lead(fn, batch, lines)
  batch = batch or 1000
  local client = self.client
  local cursor, pattern, plen = "0", self.prefix .. "{*}", #self.prefix
  local function emit(keys, replies)
    for i, key in ipairs(keys) do
      local r = replies[i]
      if r and r[1] then fn(sub(key, plen + 2, -2), r[1], version_number(r[2]), r[3] or false) end
    end
  end
  if client.send then
    -- Overlapped: each round trip asks for the next batch's keys first, then this batch's leads; the
    -- next batch is asked for before this one's lines are made, so they are made while Redis works.
    local res, err = client:call("scan", "0", "match", pattern, "count", batch)
    if not res then return nil, err end
    cursor = res[1]
    local keys = res[2]
    local function request(these, at)
      local commands = {}
      if at ~= "0" then commands[1] = { "scan", at, "match", pattern, "count", batch } end
      for _, key in ipairs(these) do commands[#commands + 1] = { "hmget", key, "p", "v", "s" } end
      if #commands == 0 then return true end
      return client:send(commands)
    end
    local ok, serr = request(keys, cursor)
    if not ok then return nil, serr end
    while true do
      local these, more = keys, cursor ~= "0"
      if more then
        local scanned, rerr = client:receive(1)
        if not scanned then return nil, rerr end
        cursor, keys = scanned[1][1], scanned[1][2]
        ok, serr = request(keys, cursor)
        if not ok then return nil, serr end
      end
      if lines and client.receive_lines then
        local text, count, others = client:receive_lines(these, plen)
        if not text then return nil, count end
        if count > 0 then lines(text, count) end
        for _, o in ipairs(others or {}) do fn(o[1], o[2], version_number(o[3]), o[4]) end
      else
        local replies, rerr = client:receive(#these)
        if not replies then return nil, rerr end
        emit(these, replies)
      end
      if not more then return true end
    end
  end
  repeat
    local res, err = client:call("scan", cursor, "match", pattern, "count", batch)
    if not res then return nil, err end
    cursor = res[1]
    local keys = res[2]
    if #keys > 0 then
      local commands = {}
      for i, key in ipairs(keys) do commands[i] = { "hmget", key, "p", "v", "s" } end
      local replies, perr = client:pipeline(commands)
      if not replies then return nil, perr end
      emit(keys, replies)
    end
  until cursor == "0"
  return true
end

-- Writes leads whole (an import): leads is a list of { id, profile, version, state|false }; one round
-- trip for them all. With a client that sends apart from receiving (hiredis), the batch is only
-- sent: the replies of the batch before are read meanwhile, and finish_puts reads the last ones.
-- true, or nil and why.
-- Leads per script call in an import, outside a Redis Cluster.
local IMPORT_GROUP = 100

-- Whether the server is a Redis Cluster node (asked once): there a script may only touch one hash
-- slot, so an import writes each lead with a script call of its own.
local function in_cluster(self)
  if self.cluster == nil then
    local info = self.client:call("info", "cluster")
    self.cluster = type(info) == "string" and info:find("cluster_enabled:1", 1, true) ~= nil
  end
  return self.cluster
end

function RedisStore:put_leads(leads)
  local client = self.client
  local grouped = not in_cluster(self)
  local sha, lerr = script_sha(self, grouped and "import_many" or "import")
  if not sha then return nil, lerr end
  local commands, prefix = {}, self.prefix
  if grouped then
    for first = 1, #leads, IMPORT_GROUP do
      local last = math.min(first + IMPORT_GROUP - 1, #leads)
      local cmd = { "evalsha", sha, tostring(last - first + 1) }
      for i = first, last do cmd[#cmd + 1] = prefix .. "{" .. leads[i][1] .. "}" end
      for i = first, last do
        cmd[#cmd + 1] = leads[i][2]
        cmd[#cmd + 1] = leads[i][4] or ""
      end
      commands[#commands + 1] = cmd
    end
  else
    for i, lead in ipairs(leads) do   -- keys made here: a million ids would only churn self:key's cache
      commands[i] = { "evalsha", sha, "1", prefix .. "{" .. lead[1] .. "}", lead[2], lead[4] or "" }
    end
  end
  local sent = { leads = leads, grouped = grouped, count = #commands }
  if client.send then
    local ok, err = client:send(commands)
    if not ok then return nil, err end
    local done
    done, err = self:finish_puts()
    self.sent = sent
    return done, err
  end
  local replies, errors = client:pipeline(commands)
  if replies == nil then return nil, errors end
  return self:check_puts(sent, replies, errors)
end

-- The first lead Redis refused, from the replies of a batch (a grouped call answers { index, error }
-- for the lead it stopped at): true, or nil and why.
function RedisStore:check_puts(sent, replies, errors)
  local leads = sent.leads
  for c = 1, sent.count do
    local first = sent.grouped and (c - 1) * IMPORT_GROUP or c - 1
    local err, at = errors and errors[c], first + 1
    local r = type(replies) == "table" and replies[c]
    if not err and sent.grouped and type(r) == "table" then
      at, err = first + (tonumber(r[1]) or 1), tostring(r[2])
    end
    if err then return nil, format("redis: lead '%s': %s", tostring(leads[at] and leads[at][1]), err) end
  end
  return true
end

-- The replies of the batch put_leads sent last, if any.
function RedisStore:finish_puts()
  local sent = self.sent
  if not sent then return true end
  self.sent = nil
  -- one lead a reply: only the errors matter; grouped, a reply may name the lead it stopped at
  local replies, errors = self.client:receive(sent.count, not sent.grouped)
  if not replies then return nil, errors end
  return self:check_puts(sent, replies, errors)
end

function RedisStore:close()
  if self.client.close then self.client:close() end
end

---------------------------------------------------------------------------------------------------
-- Export and import: NDJSON, one lead a line after a header line.
--   {"leadq":"state","format":1}
--   {"lead":"L-1","version":3,"profile":{...},"state":"<hex of the stored state>"}
-- The state is the stored bytes as they are (hex): a store that the same rules serve reads them back.
---------------------------------------------------------------------------------------------------

_M.HEADER = '{"format":1,"leadq":"state"}'

-- The core's hex (a C loop); a core.so older than these files has none: then gsub.
local core_ok, core = pcall(require, "leadq.core")
local HEX, UNHEX = {}, {}
for i = 0, 255 do
  local c, h = string.char(i), format("%02x", i)
  HEX[c], UNHEX[h], UNHEX[h:upper()] = h, c, c
end
_M.hex = core_ok and core.hex_encode or function(s) return (s:gsub(".", HEX)) end
_M.unhex = core_ok and core.hex_decode or function(s) return (s:gsub("%x%x", UNHEX)) end
local hex, unhex = _M.hex, _M.unhex

-- One lead's line (the profile text is JSON already: spliced in as it is). Ids are quoted only when
-- they need it (the service's own ids never do).
function _M.lead_line(id, profile, version, state)
  local quoted = find(id, '^[%w%-_.:@+]+$') and '"' .. id .. '"' or json.quote(id)
  if state then
    return '{"lead":' .. quoted .. ',"profile":' .. profile .. ',"version":' .. format("%d", version or 0) ..
      ',"state":"' .. hex(state) .. '"}'
  end
  return '{"lead":' .. quoted .. ',"profile":' .. profile .. ',"version":' .. format("%d", version or 0) .. '}'
end

-- A line back: id, profile text, version, state|false; or nil and why (line: its number, for the message).
-- Lines laid out as lead_line writes them are checked and cut by the core (the profile's JSON checked,
-- not decoded: its text is kept as it is); any other JSON goes the long way, which words the errors.
local state_line = core_ok and core.state_line
function _M.parse_line(text, line)
  if state_line then
    local id, profile, version, state = state_line(text)
    if id then return id, profile, version, state end
  end
  local value, err = json.decode(text)
  if type(value) ~= "table" then return nil, format("line %d: not a JSON object (%s)", line, tostring(err)) end
  local id, profile, version, state = value.lead, value.profile, value.version, value.state
  if type(id) ~= "string" or id == "" then return nil, format("line %d: 'lead' must be a lead id", line) end
  if type(profile) ~= "table" then return nil, format("line %d: lead '%s': 'profile' must be an object", line, id) end
  if version ~= nil and (type(version) ~= "number" or version < 0 or version % 1 ~= 0) then
    return nil, format("line %d: lead '%s': 'version' must be a whole number", line, id)
  end
  if state ~= nil and (type(state) ~= "string" or #state % 2 ~= 0 or find(state, "[^%x]")) then
    return nil, format("line %d: lead '%s': 'state' must be hex digits", line, id)
  end
  return id, json.encode(profile), version or 0, state and unhex(state) or false
end

-- Every lead of a dict-like store (ngx.shared.DICT: get_keys; memory_store: its data table).
function _M.each_dict_lead(dict, fn)
  local keys
  if dict.get_keys then keys = dict:get_keys(0)
  else
    keys = {}
    for k in pairs(dict.data) do keys[#keys + 1] = k end
  end
  for _, key in ipairs(keys) do
    if sub(key, 1, 2) == "p:" then
      local id = sub(key, 3)
      local profile, version = dict:get(key)
      if profile then fn(id, profile, version or 0, dict:get("s:" .. id) or false) end
    end
  end
  return true
end

-- Writes one lead whole into a dict-like store (an import; the service is not taking events for it).
-- The version comes from the dict's own counter ("profile:version", as leadq.service's profile writes
-- take theirs), not from the export: a version the counter gives again later must never name two
-- profiles, or a worker could keep a stale one.
function _M.put_dict_lead(dict, id, profile, _, state)
  local n, verr = dict:incr("profile:version", 1, 0)
  if not n then return nil, "lead store full: " .. tostring(verr) end
  local version = n % 4294967295 + 1   -- 1 .. 2^32 - 1: a shared dict's flags are 32 bits
  local ok, err = dict:safe_set("p:" .. id, profile, 0, version)
  if not ok then return nil, "lead store full: " .. tostring(err) end
  if state then
    ok, err = dict:safe_set("s:" .. id, state, 0, version)
    if not ok then return nil, "lead store full: " .. tostring(err) end
  else
    dict:delete("s:" .. id)
  end
  return true
end

-- Exports a store (Redis or dict-like): write(line) for the header and each lead; count, or nil and why.
-- write_text(text), if given, takes many lines at once, each ending in "\n" (made by the core).
function _M.export(store, write, write_text)
  write(_M.HEADER)
  local count = 0
  local function emit(id, profile, version, state)
    write(_M.lead_line(id, profile, version, state))
    count = count + 1
  end
  local function lines(text, n)
    write_text(text)
    count = count + n
  end
  local ok, err
  if store.each_lead then ok, err = store:each_lead(emit, nil, write_text and lines)
  else ok, err = _M.each_dict_lead(store, emit) end
  if not ok then return nil, err end
  return count
end

-- Imports lines (an iterator of strings) into a store; count, or nil and why. batch: leads per
-- round trip to Redis.
-- The lines of an export into a store: the count of leads, or nil and why. A damaged line, or a lead
-- the store refuses, stops the import there: the leads before it are written, and the replies of
-- what was sent are read either way (a store's connection is left in step for its next call).
local function import_lines(store, lines, batch)
  local count, n, pending = 0, 0, {}
  local first = true
  for text in lines do
    n = n + 1
    if first then
      first = false
      local header = json.decode(text)
      if type(header) ~= "table" or header.leadq ~= "state" then
        return nil, "line 1: not a leadq state export (its first line must be " .. _M.HEADER .. ")"
      end
      if header.format ~= 1 then return nil, "line 1: format " .. tostring(header.format) .. " is not known (1 is)" end
    elseif text ~= "" then
      local id, profile, version, state = _M.parse_line(text, n)
      if not id then return nil, profile end
      if store.put_leads then
        pending[#pending + 1] = { id, profile, version, state }
        if #pending >= batch then
          local ok, err = store:put_leads(pending)
          if not ok then return nil, err end
          pending = {}
        end
      else
        local ok, err = _M.put_dict_lead(store, id, profile, version, state)
        if not ok then return nil, format("line %d: %s", n, err) end
      end
      count = count + 1
    end
  end
  if first then return nil, "the export is empty (no header line)" end
  if #pending > 0 then
    local ok, err = store:put_leads(pending)
    if not ok then return nil, err end
  end
  return count
end

function _M.import(store, lines, batch)
  local count, err = import_lines(store, lines, batch or 1000)
  if store.finish_puts then
    local ok, ferr = store:finish_puts()
    if count and not ok then return nil, ferr end
  end
  return count, err
end

return _M
