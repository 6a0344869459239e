-- leadq.outbox: reactions waiting for delivery, in a store of their own (in nginx a lua_shared_dict
-- that only the outbox uses: it survives `nginx -s reload`, and every worker sees it).
--
-- A fact is put with the state update that made it (never delivered on the request path): it gets
-- the next sequence number and waits under it until a delivery answers 2xx; only then is it
-- deleted (at least once: a worker that dies mid-send leaves it, and it is sent again with the same
-- idempotency key). Deliveries run in rounds from the oldest waiting fact: per lead, only its oldest
-- waiting fact may go (in order per lead), each lead's facts on one lane, lanes side by side. A
-- failed delivery waits with backoff (base * 2^(attempts-1), at most max_backoff) and holds back
-- that lead's later facts; after max_attempts it moves to the dead letters, which can be listed
-- and replayed (put again, at the end).
--
--   local ob = outbox.new{ store = ngx.shared.leadq_outbox, clock = ngx.now }
--   ob:put{ lead = "L-1", webhook = "crm", body = '{"..."}' }
--   ob:round(function(fact) return client:post(...) end)   -- one delivery round
local json = require("leadq.json")

local type, tostring, ipairs, setmetatable, error, min = type, tostring, ipairs, setmetatable, error, math.min
local format, concat = string.format, table.concat

local _M = { _VERSION = "0.1.0" }


local Outbox = {}
Outbox.__index = Outbox

local function keys(prefix)
  return { head = prefix .. "head", tail = prefix .. "tail", dhead = prefix .. "dhead", dtail = prefix .. "dtail",
    item = prefix .. "i:", dead = prefix .. "d:", metric = prefix == "o:" and "m:" or "m:" .. prefix }
end

-- opts: store (required), clock (seconds, default os.time), max_attempts (default 10), backoff
-- (seconds, default 1), max_backoff (seconds, default 300), window (facts looked at per round,
-- default 2000), lanes (default 16), prefix (of its keys, default "o:": two outboxes may share a
-- store).
function _M.new(opts)
  if type(opts) ~= "table" or opts.store == nil then error("outbox.new: option 'store' is required", 2) end
  for k in pairs(opts) do
    if not ({ store = 1, clock = 1, max_attempts = 1, backoff = 1, max_backoff = 1, window = 1, lanes = 1,
              prefix = 1 })[k] then
      error("outbox.new: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  return setmetatable({ store = opts.store, clock = opts.clock or os.time, max_attempts = opts.max_attempts or 10,
    backoff = opts.backoff or 1, max_backoff = opts.max_backoff or 300, window = opts.window or 2000,
    lanes = opts.lanes or 16, k = keys(opts.prefix or "o:"), holes = {} }, Outbox)
end

-- A counter of the metrics endpoint (kept in the outbox's store: every worker adds to it).
function Outbox:count(name, by)
  self.store:incr(self.k.metric .. name, by or 1, 0)
end

function Outbox:metric(name)
  return self.store:get(self.k.metric .. name) or 0
end

-- fact: { lead =, webhook = (its name), body = (JSON text), not_before = (optional: epoch seconds
-- it waits for; a timer) }. Returns its
-- sequence number, or nil and the store's error (a full outbox refuses; nothing is evicted).
function Outbox:put(fact)
  local store = self.store
  local seq, err = store:incr(self.k.tail, 1, 0)
  if not seq then return nil, err end
  fact.seq, fact.attempts, fact.next_at = seq, fact.attempts or 0, fact.not_before or 0
  fact.key = fact.key or format("%s-%d", tostring(fact.lead), seq)
  local ok, serr = store:safe_set(self.k.item .. seq, json.encode(fact))
  if not ok then return nil, serr end
  self:count("outbox_put")
  return seq
end

-- A fact's slot once it is gone (delivered, or moved to the dead letters). A slot that holds nothing
-- is one a put has taken a number for and not written yet (another worker, a moment ago): the head
-- never moves past it, or that fact would never be sent. A hole that stays empty (a put whose write
-- failed) is passed after HOLE_SECONDS.
local GONE = "-"
local HOLE_SECONDS = 10

local function decode(text)
  return text and text ~= GONE and json.decode(text) or nil
end

-- Waiting facts, oldest first (at most `limit`).
function Outbox:pending(limit)
  local store = self.store
  local head, tail = store:get(self.k.head) or 0, store:get(self.k.tail) or 0
  local out = {}
  for seq = head + 1, tail do
    local fact = decode(store:get(self.k.item .. seq))
    if fact then
      out[#out + 1] = fact
      if limit and #out >= limit then break end
    end
  end
  return out
end

-- Moves the head past delivered facts (the scan of the next round starts there).
local function advance(self)
  local store = self.store
  local head, tail = store:get(self.k.head) or 0, store:get(self.k.tail) or 0
  local moved = head
  while moved < tail do
    local key = self.k.item .. (moved + 1)
    local v = store:get(key)
    if v == GONE then
      store:delete(key)
    elseif v == nil then   -- taken, not written yet: wait for it, unless it has stayed a hole
      local seen = self.holes[moved + 1]
      if not seen then self.holes[moved + 1] = self.clock() break end
      if self.clock() - seen < HOLE_SECONDS then break end
      self.holes[moved + 1] = nil
    else
      break
    end
    moved = moved + 1
  end
  if moved > head then store:set(self.k.head, moved) end
end

function Outbox:size()
  local store = self.store
  local n = 0
  for seq = (store:get(self.k.head) or 0) + 1, store:get(self.k.tail) or 0 do
    local v = store:get(self.k.item .. seq)
    if v ~= nil and v ~= GONE then n = n + 1 end
  end
  return n
end

-- The facts this round may deliver, grouped in lanes: { lane = { fact, ... } } (a lead's facts on
-- one lane, in order), and how many are due. Per lead, the facts from its oldest waiting one on,
-- stopping at the first that is not due yet; the earliest time one that waits is due; and whether a
-- slot was taken but not written yet (its fact comes in a moment: the next round must look again).
function Outbox:due(now)
  local store = self.store
  local head, tail = store:get(self.k.head) or 0, store:get(self.k.tail) or 0
  local last = min(tail, head + self.window)
  local blocked, lanes, lane_of, n, earliest, hole = {}, {}, {}, 0, nil, false
  for seq = head + 1, last do
    local text = store:get(self.k.item .. seq)
    if text == nil then hole = true end
    local fact = decode(text)
    if fact and not blocked[fact.lead] then
      if fact.next_at > now then
        blocked[fact.lead] = true
        if not earliest or fact.next_at < earliest then earliest = fact.next_at end
      else
        local lane = lane_of[fact.lead]
        if not lane then
          lane = #lanes < self.lanes and #lanes + 1 or (n % self.lanes) + 1
          lanes[lane] = lanes[lane] or {}
          lane_of[fact.lead] = lane
        end
        local list = lanes[lane]
        list[#list + 1] = fact
        n = n + 1
      end
    end
  end
  return lanes, n, earliest, hole
end

-- A delivered fact: gone.
function Outbox:delivered(fact)
  local key = self.k.item .. fact.seq
  if not self.store:safe_set(key, GONE) then self.store:delete(key) end   -- full: a hole, passed later
  self:count("deliveries")
end

-- A failed delivery: back off, or move to the dead letters after max_attempts. Returns "retry" or
-- "dead".
function Outbox:failed(fact, why, now)
  local store = self.store
  fact.attempts = fact.attempts + 1
  fact.error = tostring(why)
  if fact.attempts >= self.max_attempts then
    local n = store:incr(self.k.dtail, 1, 0)
    fact.dead_at = now
    store:safe_set(self.k.dead .. n, json.encode(fact))
    if not store:safe_set(self.k.item .. fact.seq, GONE) then store:delete(self.k.item .. fact.seq) end
    self:count("dead_letters")
    return "dead"
  end
  fact.next_at = now + min(self.max_backoff, self.backoff * 2 ^ (fact.attempts - 1))
  store:safe_set(self.k.item .. fact.seq, json.encode(fact))
  self:count("retries")
  return "retry"
end

-- One delivery round. send(fact) -> true (delivered), or false/nil and why. spawn/wait (optional):
-- run the lanes side by side (ngx.thread.spawn / ngx.thread.wait); without them, one after the
-- other. Returns how many were delivered and how many failed.
function Outbox:round(send, spawn, wait)
  local now = self.clock()
  -- Nothing put since a round found nothing due, and nothing due yet: no scan (timers wait for
  -- days, and a receiver that is down leaves facts waiting: a scan a round would burn the CPU).
  local tail = self.store:get(self.k.tail) or 0
  if self.idle_tail == tail and now < self.wake_at then return 0, 0 end
  local lanes, n, earliest, hole = self:due(now)
  if n == 0 then
    advance(self)
    if not hole then self.idle_tail, self.wake_at = tail, earliest or math.huge end
    return 0, 0
  end
  self.idle_tail = nil
  local delivered, failed = 0, 0
  local function run_lane(list)
    local stopped = {}
    for _, fact in ipairs(list) do
      if not stopped[fact.lead] then
        local ok, why = send(fact)
        if ok then
          self:delivered(fact)
          delivered = delivered + 1
        else
          self:failed(fact, why or "failed", self.clock())
          failed = failed + 1
          stopped[fact.lead] = true   -- its later facts wait behind it
        end
      end
    end
  end
  if spawn and #lanes > 1 then
    local threads = {}
    for i, list in ipairs(lanes) do threads[i] = spawn(run_lane, list) end
    for _, t in ipairs(threads) do wait(t) end
  else
    for _, list in ipairs(lanes) do run_lane(list) end
  end
  advance(self)
  return delivered, failed
end

-- The dead letters, oldest first: { { n =, lead =, webhook =, key =, attempts =, error =, ... } }.
function Outbox:dead_letters()
  local store = self.store
  local out = {}
  for n = (store:get(self.k.dhead) or 0) + 1, store:get(self.k.dtail) or 0 do
    local fact = decode(store:get(self.k.dead .. n))
    if fact then
      fact.n = n
      out[#out + 1] = fact
    end
  end
  return out
end

-- Puts dead letters back in the outbox (n: one of them; nil: all), with their idempotency keys and
-- fresh attempts. Returns how many.
function Outbox:replay(n)
  local store = self.store
  local count = 0
  for _, fact in ipairs(self:dead_letters()) do
    if n == nil or fact.n == n then
      local seq = fact.n
      fact.n, fact.attempts, fact.error, fact.dead_at, fact.seq = nil, 0, nil, nil, nil
      if self:put(fact) then
        store:delete(self.k.dead .. seq)
        count = count + 1
      end
    end
  end
  local head, tail = store:get(self.k.dhead) or 0, store:get(self.k.dtail) or 0
  while head < tail and store:get(self.k.dead .. (head + 1)) == nil do head = head + 1 end
  store:set(self.k.dhead, head)
  self:count("replays", count)
  return count
end

-- The metrics in Prometheus' text format (lines), prefixed leadq_.
function Outbox:metrics_lines(extra)
  local lines = {}
  local function put(name, kind, help, value)
    lines[#lines + 1] = format("# HELP leadq_%s %s", name, help)
    lines[#lines + 1] = format("# TYPE leadq_%s %s", name, kind)
    lines[#lines + 1] = format("leadq_%s %s", name, tostring(value))
  end
  put("outbox_facts_total", "counter", "facts put in the outbox", self:metric("outbox_put"))
  put("deliveries_total", "counter", "webhook deliveries answered 2xx", self:metric("deliveries"))
  put("delivery_retries_total", "counter", "failed deliveries that wait to be retried", self:metric("retries"))
  put("dead_letters_total", "counter", "facts moved to the dead letters", self:metric("dead_letters"))
  put("outbox_waiting", "gauge", "facts waiting for delivery", self:size())
  put("dead_letters_waiting", "gauge", "dead letters not replayed", #self:dead_letters())
  for _, l in ipairs(extra or {}) do lines[#lines + 1] = l end
  return concat(lines, "\n") .. "\n"
end

return _M
