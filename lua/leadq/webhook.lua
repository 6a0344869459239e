-- leadq.webhook: one signed webhook delivery over HTTP/1.1, on any socket with the cosocket shape
-- (nginx's ngx.socket.tcp; leadq.webhook.luasocket_tcp for plain Lua hosts). lua-resty-http is not
-- packaged for Debian: this is the small client the outbox needs, and no more (POST, a
-- Content-Length or chunked answer, keep-alive, https through the cosocket's TLS handshake).
--
-- https: the server's certificate is verified, and its name checked against the url's host, unless
-- a webhook says tls_verify = false; nginx verifies against lua_ssl_trusted_certificate (a CA file:
-- the system's is /etc/ssl/certs/ca-certificates.crt), which nginx.conf must name for https webhooks.
--
--   local webhook = require("leadq.webhook")
--   local client = webhook.client{ tcp = ngx.socket.tcp, timeout = 5 }
--   local status, err = client:post(url, body, webhook.headers(secret, key, os.time(), body))
--
-- The signature: X-Leadq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by
-- the webhook's secret> (libcrypto, through leadq.core). A receiver recomputes it over the raw body
-- and refuses a stale t; X-Leadq-Idempotency-Key is the same on every retry of one fact.
local core = require("leadq.core")

local type, tostring, tonumber, setmetatable, pcall = type, tostring, tonumber, setmetatable, pcall
local format, concat, lower = string.format, table.concat, string.lower

local _M = { _VERSION = "0.1.0" }

local MAX_HEADER_LINES = 100
local MAX_BODY = 1024 * 1024     -- bytes of an answer read (and thrown away) at most

-- "http[s]://host:port/path" -> host, port, path, tls (true for https); nil, message for anything else.
function _M.parse_url(url)
  if type(url) ~= "string" then return nil, "a webhook url must be a string" end
  local scheme, host, port, path = url:match("^(https?)://([%w%.%-]+):?(%d*)(/?[^%s#]*)$")
  if not host then return nil, "not an http:// or https:// url: " .. url end
  local tls = scheme == "https"
  port = tonumber(port) or (tls and 443 or 80)
  if port < 1 or port > 65535 then return nil, "bad port in " .. url end
  return host, port, path == "" and "/" or path, tls
end

-- The signature header's value for a body sent at `t` (unix seconds).
function _M.signature(secret, t, body)
  local stamp = format("%d", t)
  return "t=" .. stamp .. ",v1=" .. core.hmac_sha256(secret, stamp .. "." .. body)
end

-- Whether a signature header is valid for the body with this secret, and not older than
-- `tolerance` seconds at `now` (a receiver's check).
function _M.verify(secret, header, body, now, tolerance)
  if type(header) ~= "string" then return false, "no signature" end
  local t, mac = header:match("^t=(%d+),v1=(%x+)$")
  if not t then return false, "malformed signature" end
  if now and tolerance and math.abs(now - tonumber(t)) > tolerance then return false, "stale signature" end
  if not core.hmac_sha256_verify(secret, t .. "." .. body, mac) then return false, "bad signature" end
  return true
end

-- The headers of one delivery: its signature (when there is a secret) and idempotency key.
function _M.headers(secret, key, t, body, event)
  local h = { ["Content-Type"] = "application/json", ["X-Leadq-Idempotency-Key"] = key,
    ["X-Leadq-Event"] = event or "lead.changed" }
  if secret and secret ~= "" then h["X-Leadq-Signature"] = _M.signature(secret, t, body) end
  return h
end

---------------------------------------------------------------------------------------------------
-- The client
---------------------------------------------------------------------------------------------------

local Client = {}
Client.__index = Client

-- opts: tcp (a function making a cosocket-shaped socket: ngx.socket.tcp), timeout (seconds,
-- default 5), keepalive (seconds an idle connection is kept, default 60), pool_size (default 32).
function _M.client(opts)
  if type(opts) ~= "table" or type(opts.tcp) ~= "function" then
    error("webhook.client: expects { tcp = ngx.socket.tcp | webhook.luasocket_tcp, ... }", 2)
  end
  return setmetatable({ tcp = opts.tcp, timeout = opts.timeout or 5, keepalive = opts.keepalive or 60,
    pool_size = opts.pool_size or 32, plain = opts.plain }, Client)
end

local function read_body(sock, headers)
  local length = tonumber(headers["content-length"])
  if length then
    if length > MAX_BODY then return nil, "answer body too large" end
    if length > 0 then
      local _, err = sock:receive(length)
      if err then return nil, err end
    end
    return true
  end
  if lower(headers["transfer-encoding"] or "") == "chunked" then
    local total = 0
    while true do
      local line, err = sock:receive("*l")
      if not line then return nil, err end
      local size = tonumber(line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size" end
      total = total + size
      if total > MAX_BODY then return nil, "answer body too large" end
      if size == 0 then
        repeat   -- trailers, to the empty line
          line, err = sock:receive("*l")
          if not line then return nil, err end
        until line == ""
        return true
      end
      local _
      _, err = sock:receive(size)
      if err then return nil, err end
      _, err = sock:receive("*l")
      if err then return nil, err end
    end
  end
  return nil, "an answer without Content-Length (the connection is closed after it)"
end

-- POST body to url with headers: the HTTP status (a number), or nil and why. Any answer is read to
-- its end so the connection can carry the next request. tls_verify: false skips the check of an
-- https server's certificate (only when a webhook says so); anything else checks it.
function Client:post(url, body, headers, tls_verify)
  local host, port, path, tls = _M.parse_url(url)
  if not host then return nil, port end
  local sock = self.tcp()
  sock:settimeout(self.timeout * 1000)
  local ok, err
  if tls then
    -- a pool of its own: a connection verified (or not) for one name is never reused for another
    local verify = tls_verify ~= false
    local pool = format("%s:%d:tls:%s", host, port, verify and "verified" or "unverified")
    ok, err = sock:connect(host, port, { pool = pool })
    if not ok then return nil, "connect " .. host .. ":" .. port .. ": " .. tostring(err) end
    if not sock.sslhandshake then
      sock:close()
      return nil, "https needs TLS sockets (nginx's ngx.socket.tcp): " .. url
    end
    if (sock.getreusedtimes and sock:getreusedtimes() or 0) == 0 then
      ok, err = sock:sslhandshake(nil, host, verify)
      if not ok then
        sock:close()
        return nil, "TLS handshake with " .. host .. ":" .. port .. ": " .. tostring(err)
      end
    end
  else
    ok, err = sock:connect(host, port)
    if not ok then return nil, "connect " .. host .. ":" .. port .. ": " .. tostring(err) end
  end
  local lines = { "POST ", path, " HTTP/1.1\r\nHost: ", host, ":", tostring(port), "\r\nContent-Length: ",
    tostring(#body), "\r\nUser-Agent: leadq/", _M._VERSION, "\r\n" }
  for k, v in pairs(headers or {}) do
    lines[#lines + 1] = k .. ": " .. v .. "\r\n"
  end
  lines[#lines + 1] = "\r\n"
  lines[#lines + 1] = body
  local sent
  sent, err = sock:send(concat(lines))
  if not sent then
    sock:close()
    return nil, "send: " .. tostring(err)
  end
  local status_line
  status_line, err = sock:receive("*l")
  if not status_line then
    sock:close()
    return nil, "receive: " .. tostring(err)
  end
  local status = tonumber(status_line:match("^HTTP/1%.[01] (%d%d%d)"))
  if not status then
    sock:close()
    return nil, "not an HTTP answer: " .. status_line:sub(1, 80)
  end
  local answer_headers = {}
  for _ = 1, MAX_HEADER_LINES + 1 do
    local line
    line, err = sock:receive("*l")
    if not line then
      sock:close()
      return nil, "receive: " .. tostring(err)
    end
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then answer_headers[lower(k)] = v end
  end
  local read, rerr = read_body(sock, answer_headers)
  if read and lower(answer_headers.connection or "") ~= "close" then
    sock:setkeepalive(self.keepalive * 1000, self.pool_size)
  else
    sock:close()
  end
  if not read and status < 200 then return nil, rerr end
  return status
end

---------------------------------------------------------------------------------------------------
-- LuaSocket with the cosocket shape, and a pool of one idle connection per host and port
-- (plain Lua hosts: a command that delivers an outbox, the tests).
---------------------------------------------------------------------------------------------------

local pools = setmetatable({}, { __mode = "k" })

function _M.luasocket_tcp()
  local ok, socket = pcall(require, "socket")
  if not ok then error("webhook: LuaSocket (lua-socket) is needed outside nginx", 2) end
  local pool = pools[socket]
  if not pool then
    pool = {}
    pools[socket] = pool
  end
  local w = { timeout = 5 }
  function w.settimeout(self, ms) self.timeout = ms / 1000 end
  function w.connect(self, host, port)
    local key = host .. ":" .. port
    local idle = pool[key]
    if idle then
      pool[key] = nil
      self.sock, self.key = idle, key
      self.sock:settimeout(self.timeout)
      return true
    end
    local s = socket.tcp()
    s:settimeout(self.timeout)
    s:setoption("tcp-nodelay", true)
    local done, err = s:connect(host, port)
    if not done then
      s:close()
      return nil, err
    end
    self.sock, self.key = s, key
    return true
  end
  function w.send(self, data) return self.sock:send(data) end
  function w.receive(self, pattern) return self.sock:receive(pattern) end
  function w.close(self)
    if self.sock then self.sock:close() end
    self.sock = nil
  end
  function w.setkeepalive(self)
    local old = pool[self.key]
    if old then old:close() end
    pool[self.key], self.sock = self.sock, nil
    return true
  end
  return w
end

return _M
