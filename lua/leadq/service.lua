-- leadq.service: the real-time scoring service, as pure request handlers plus thin nginx glue.
--
-- Outside nginx (tests, another Lua host):
--   local service = require("leadq.service")
--   local svc = service.new{ model = model, store = service.memory_store() }
--   local status, answer, headers = svc:handle("POST", "/leads/L-1", '{"title":"VP Marketing"}')
--   -- answer is a Lua table; json.encode(answer) is the body
--
-- In nginx.conf (see tests/nginx/nginx.conf.tmpl):
--   lua_shared_dict leadq_leads 64m;
--   init_by_lua_block { require("leadq.service").init_nginx{ rules = "/srv/rules/mql.lua", dict = "leadq_leads" } }
--   default_type application/json;   -- every answer's Content-Type (the glue does not set it)
--   location = /events { content_by_lua_block { require("leadq.service").serve_nginx("/events") } }
--   location / { content_by_lua_block { require("leadq.service").serve_nginx() } }
--
-- Endpoints (every answer is JSON; every refusal is a 4xx with { "error": "..." }):
--   POST /events        {"lead":"L-1","type":"pricing_view"[,"time":epoch|"ISO"][,"value":n]}
--                       updates the lead's engagement state, answers the new score
--   GET  /leads/<id>    score, status, grade, groups, reason, profile and the explanation
--   POST /leads/<id>    {"field": value, ...} sets profile fields (null removes one), answers the score
--
-- The store is an ngx.shared.DICT (or anything with its get/safe_set/safe_add/delete/incr; safe_:
-- a full store refuses, it never evicts another lead in silence): each lead is two
-- values, its profile (JSON) and its engagement state (encoded by the feature set), so every
-- worker sees the same lead and a reload keeps them. A lead's lock (taken while its state is
-- read, changed and written back) is a key that comes and goes with every event: in a dict of its
-- own (option `locks`), its inserts and deletes neither rebalance the tree that every lead lookup
-- walks nor take the leads dict's mutex.
--
-- A profile's version rides along as the flags of its stored value and of its lead's stored state:
-- whoever changes one or the other holds the lead's lock and writes both with the same version, so
-- an event that finds its state's version equal to the worker's cached profile's skips reading the
-- profile (one shared dict read less per event). Versions come from one counter in the store. A
-- store that does not keep flags (a host's own, not a shared dict) is found out when the service
-- is made: its events read the profile every time.
local json = require("leadq.json")
local null = json.null
-- OpenResty's LuaJIT counts a table's keys in one compiled call; elsewhere, a walk.
local has_nkeys, nkeys = pcall(require, "table.nkeys")
if not has_nkeys then
  nkeys = function(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end
end

local type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable, error, next =
  type, pairs, ipairs, tostring, pcall, setmetatable, getmetatable, error, next
local huge = math.huge
local find, sub, format, concat, sort = string.find, string.sub, string.format, table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local MAX_BODY = 16384          -- bytes; nginx.conf's client_max_body_size says the same
local MAX_FIELDS = 200          -- profile fields in one lead
local MAX_TAGS = 100            -- values in one multi-valued field
local MAX_ID = 128              -- bytes in a lead id
local MAX_VALUE = 1024          -- bytes in a profile value: the text a rule's pattern is matched against
local LOCK_TRIES = 200          -- x 1 ms: how long an event waits for another worker on the same lead
local LOCK_TTL = 2              -- seconds: a lock left by a dead worker expires
local CACHE_LEADS = 10000       -- decoded profiles kept per worker

local PROFILE, STATE, LOCK = "p:", "s:", "l:"
local VERSION_KEY, FLAGS_PROBE = "profile:version", "leadq:flags-probe"

---------------------------------------------------------------------------------------------------
-- A store for hosts without nginx: the ngx.shared.DICT methods the service uses, in a table.
---------------------------------------------------------------------------------------------------

local MemoryStore = {}
MemoryStore.__index = MemoryStore

function _M.memory_store()
  return setmetatable({ data = {}, expires = {}, flags = {} }, MemoryStore)
end

-- value, flags (flags: a number the setter gave, nil for none, as ngx.shared.DICT:get gives them)
function MemoryStore:get(key)
  local at = self.expires[key]
  if at and at <= os.time() then self.data[key], self.expires[key], self.flags[key] = nil, nil, nil end
  return self.data[key], self.flags[key]
end

function MemoryStore:set(key, value, ttl, flags)
  self.data[key] = value
  self.expires[key] = (ttl and ttl > 0) and os.time() + ttl or nil
  self.flags[key] = (value ~= nil and flags ~= 0) and flags or nil
  return true
end

function MemoryStore:add(key, value, ttl, flags)
  if self:get(key) ~= nil then return false, "exists" end
  return self:set(key, value, ttl, flags)
end

function MemoryStore:incr(key, by, init)
  local v = self:get(key)
  if v == nil then
    if init == nil then return nil, "not found" end
    v = init
  end
  self.data[key] = v + by
  return v + by
end

MemoryStore.safe_set, MemoryStore.safe_add = MemoryStore.set, MemoryStore.add

function MemoryStore:delete(key)
  self.data[key], self.expires[key], self.flags[key] = nil, nil, nil
end

---------------------------------------------------------------------------------------------------
-- Answers
---------------------------------------------------------------------------------------------------

-- An error's text as an answer may carry it: messages quote what the request sent, and that may
-- be any bytes. Valid UTF-8 with no control characters (others become '?'), no heap addresses
-- ("table: 0x55d0c..." says nothing to a client and something to an attacker), and at most
-- MAX_MESSAGE bytes, cut on a character boundary.
local MAX_MESSAGE = 300
local byte = string.byte

local function utf8_length(s, i, n)  -- bytes of the well-formed UTF-8 character at i, or nil
  local c = byte(s, i)
  if c < 0x80 then return 1 end
  local len, lo, hi
  if c >= 0xC2 and c <= 0xDF then len = 2
  elseif c >= 0xE0 and c <= 0xEF then
    len, lo, hi = 3, c == 0xE0 and 0xA0 or 0x80, c == 0xED and 0x9F or 0xBF
  elseif c >= 0xF0 and c <= 0xF4 then
    len, lo, hi = 4, c == 0xF0 and 0x90 or 0x80, c == 0xF4 and 0x8F or 0xBF
  else return nil end
  if i + len - 1 > n then return nil end
  for k = 1, len - 1 do
    local d = byte(s, i + k)
    local a, b = 0x80, 0xBF
    if k == 1 and lo then a, b = lo, hi end
    if d < a or d > b then return nil end
  end
  return len
end

local function readable(message)
  message = tostring(message)
  if #message <= MAX_MESSAGE and not find(message, "[%z\1-\31\127-\255]") and not find(message, "0x%x") then
    return message
  end
  -- linear patterns on a bounded prefix: this text is the client's to choose
  message = sub(message, 1, 4 * MAX_MESSAGE):gsub("0x%x%x%x%x%x%x+", "0x...")
  local out, size, i, n = {}, 0, 1, #message
  while i <= n do
    local len = utf8_length(message, i, n)
    local piece = len and sub(message, i, i + len - 1) or "?"
    local c = byte(message, i)
    if len == 1 and (c < 32 or c == 127) then piece = "?" end
    if size + #piece > MAX_MESSAGE - 3 then
      out[#out + 1] = "..."
      break
    end
    out[#out + 1] = piece
    size = size + #piece
    i = i + (len or 1)
  end
  return concat(out)
end
_M.readable = readable

local function refuse(status, message, headers)
  return status, { error = readable(message) }, headers
end

-- page, asset, campaign: the event attributes feature filters test (leadq.features).
local EVENT_KEY_ARRAY = { "lead", "type", "time", "value", "page", "asset", "campaign" }
local EVENT_KEYS = {}
for _, k in ipairs(EVENT_KEY_ARRAY) do EVENT_KEYS[k] = true end
local EVENT_KEY_LIST = concat(EVENT_KEY_ARRAY, ", ")
local EVENT_ATTRIBUTES = { "page", "asset", "campaign" }

local did_you_mean = require("leadq.util").did_you_mean
local FUTURE_SLACK = 300        -- seconds: an event time later than now + this is refused (clock skew)

-- Ids found valid already (bounded): most events are for leads seen before, and a table lookup stays
-- in LuaJIT's trace where a pattern match is a call out of it.
local valid_ids, valid_id_count = {}, 0
local function valid_lead_id(id)
  if valid_ids[id] then return true end
  if type(id) ~= "string" or #id < 1 or #id > MAX_ID or find(id, "[^%w%-_.:@+]") then return false end
  if valid_id_count >= CACHE_LEADS then valid_ids, valid_id_count = {}, 0 end
  valid_ids[id], valid_id_count = true, valid_id_count + 1
  return true
end

local function bad_id_message(id)
  return format("bad lead id '%s': 1 to %d letters, digits or - _ . : @ +", sub(tostring(id), 1, 200), MAX_ID)
end

local function decode_body(body, max_body)
  if body == nil or body == "" then return nil, "request body required (a JSON object)" end
  if #body > max_body then return nil, "too large" end
  local value, err = json.decode(body, 16)
  if value == nil then return nil, err end
  if type(value) ~= "table" or value[1] ~= nil or getmetatable(value) then
    return nil, "request body must be a JSON object"
  end
  return value
end

---------------------------------------------------------------------------------------------------
-- The service
---------------------------------------------------------------------------------------------------

local Service = {}
Service.__index = Service

-- The metatable of score answers (json.encode ignores it; encode_answer takes the fast way).
local ScoreAnswer = { __name = "leadq.ScoreAnswer" }

-- opts: model (required: a compiled leadq model), store (required), locks (a store for the leads'
-- locks; default: store itself), features (a feature set, or nil: then the model's own), clock
-- (seconds, default os.time), sleep (seconds; default: spin), max_body (bytes), info (a table shown
-- as "model" in GET answers), reactor (a leadq.reactor: each answer that changes the lead's status or
-- grade says `changed`, and its reactions go to the reactor's outbox).
function _M.new(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 2) end
  for k in pairs(opts) do
    if not ({ model = 1, store = 1, locks = 1, features = 1, clock = 1, sleep = 1, max_body = 1, info = 1,
              reactor = 1 })[k] then
      error("service.new: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  if opts.model == nil then error("service.new: option 'model' is required", 2) end
  if type(opts.store) ~= "table" and type(opts.store) ~= "userdata" then
    error("service.new: option 'store' is required (an ngx.shared.DICT or service.memory_store())", 2)
  end
  if opts.locks ~= nil and type(opts.locks) ~= "table" and type(opts.locks) ~= "userdata" then
    error("service.new: option 'locks' must be a store (an ngx.shared.DICT or service.memory_store())", 2)
  end
  local self = setmetatable({
    model = opts.model,
    store = opts.store,
    locks = opts.locks or opts.store,
    clock = opts.clock or os.time,
    sleep = opts.sleep,
    max_body = opts.max_body or MAX_BODY,
    info = opts.info,
    reactor = opts.reactor,   -- leadq.reactor: records status changes, puts their reactions in the outbox
    cache = {}, cache_count = 0,
  }, Service)
  -- a recycle that resets engagement (reactions' recycle { reset_engagement = true }) comes back here
  if opts.reactor then opts.reactor.reset_engagement = function(id, at) return self:reset_engagement(id, at) end end
  self.features = opts.features or _M.model_features(opts.model)
  self.feature_list = self.features and self.features:names() or {}
  sort(self.feature_list)
  self.group_list = {}
  local model_info = opts.model.info and opts.model:info()
  for i, g in ipairs(model_info and model_info.groups or {}) do self.group_list[i] = g.name end
  sort(self.group_list)
  -- Each key twice: opening the object ({"name":) and after another key (,"name":); two arrays,
  -- not negative indexes (LuaJIT does not compile mixed sparse/dense tables).
  self.feature_keys, self.feature_keys_next, self.group_keys, self.group_keys_next = {}, {}, {}, {}
  for i, name in ipairs(self.feature_list) do
    local key = json.quote(name) .. ":"
    self.feature_keys[i], self.feature_keys_next[i] = "{" .. key, "," .. key
  end
  for i, name in ipairs(self.group_list) do
    local key = json.quote(name) .. ":"
    self.group_keys[i], self.group_keys_next[i] = "{" .. key, "," .. key
  end
  self.score_options = {}
  self.result_kept, self.values_kept = {}, {}   -- filled again by each event answered with reuse
  -- A compare-and-set store (leadq.store's Redis) takes its own path; a dict-like one, the lock's.
  self.cas = type(opts.store) == "table" and opts.store.read_lead ~= nil
  self.versions = not self.cas and _M.store_keeps_flags(opts.store)
  self.answer_parts_kept = {}   -- reused by every score answer
  self.answer_kept = setmetatable({}, ScoreAnswer)   -- reused by handle's callers that ask for it
  self.event_types, self.any_event_type = {}, false
  local names = {}
  if self.features then
    for _, feature in pairs(self.features:info()) do
      for _, t in ipairs(feature.types or {}) do
        if t == "*" then self.any_event_type = true end
        if not self.event_types[t] then self.event_types[t] = true; names[#names + 1] = t end
      end
    end
  end
  sort(names)
  self.event_type_list = names
  self.event_types_text = concat(names, ", ")
  -- The profile fields are those the model's rules read, but for its event features (which events set).
  local info = opts.model.info and opts.model:info()
  if info and info.fields then
    local features = {}
    for _, name in ipairs(info.features or {}) do features[name] = true end
    self.fields, self.field_list, self.feature_names = {}, {}, features
    for _, name in ipairs(info.fields) do
      if not features[name] and not find(name, ".", 1, true) then
        self.fields[name] = true
        self.field_list[#self.field_list + 1] = name
      end
    end
    sort(self.field_list)
  end
  return self
end

-- The lead's profile (a fresh table, to change), or nil if the lead is unknown.
function Service:profile(id)
  local text = self.store:get(PROFILE .. id)
  if text == nil then return nil end
  return (json.decode(text))
end

local function new_entry(text, profile)
  local record = {}
  for k, v in pairs(profile) do record[k] = v end
  return { text = text, profile = profile, record = record }
end

-- The lead, read-only: { profile =, record = (the profile, plus feature values when scored),
-- version = }, or nil. Decoded profiles are kept per service (per worker) while their stored text
-- and version are unchanged (the text read back is the cached string itself, interned: no new
-- string, a pointer compare). A cached lead also keeps its store keys (profile_key, lock_key,
-- state_key): made once, not per request.
function Service:lead(id)
  local entry = self.cache[id]
  local text, version = self.store:get(entry and entry.profile_key or PROFILE .. id)
  if text == nil then return nil end
  return self:cached_lead(id, text, version or 0)   -- 0: no flags (stored before versions were kept)
end

-- The lead's lock (across workers), or nil and the refusal: 409 busy, or 507 when the store is full.
-- key: the lock's key when the caller has it already (LOCK .. id).
function Service:lock(id, key)
  local store = self.locks
  key = key or LOCK .. id
  for _ = 1, LOCK_TRIES do
    local ok, err = store:safe_add(key, true, LOCK_TTL)
    if ok then return true end
    if err ~= "exists" then
      return nil, 507, (store == self.store and "lead store full: " or "lock store full: ") .. tostring(err)
    end
    if self.sleep then self.sleep(0.001) end
  end
  return nil, 409, "lead '" .. id .. "' is busy, try again"
end

function Service:unlock(id, key)
  self.locks:delete(key or LOCK .. id)
end

-- POST /leads/<id>: merge the given fields into the profile (null removes a field).
function Service:set_profile(id, body)
  local fields, err = decode_body(body, self.max_body)
  if not fields then
    if err == "too large" then return refuse(413, "request body too large") end
    return refuse(400, err)
  end
  for name, value in pairs(fields) do
    if not find(name, "^[%a_][%w_]*$") or #name > 64 then
      return refuse(400, format("bad field name '%s': letters, digits and _, starting with a letter", name))
    end
    if self.fields and not self.fields[name] then
      if self.feature_names[name] then
        return refuse(400, format("field '%s' is an event feature: POST /events to change it", name))
      end
      return refuse(400, format("unknown field '%s'%s (the model reads: %s)", name,
        did_you_mean(name, self.field_list), concat(self.field_list, ", ")))
    end
    local tv = type(value)
    if tv == "string" and #value > MAX_VALUE then
      return refuse(400, format("field '%s': a value of more than %d bytes", name, MAX_VALUE))
    end
    if tv == "table" and value ~= json.null then
      if getmetatable(value) == nil and next(value) ~= nil then
        return refuse(400, format("field '%s': a value must be a string, number, boolean, null or an array of strings",
          name))
      end
      if #value > MAX_TAGS then return refuse(400, format("field '%s': more than %d values", name, MAX_TAGS)) end
      for _, tag in ipairs(value) do
        if type(tag) ~= "string" then
          return refuse(400, format("field '%s': an array may only hold strings", name))
        end
        if #tag > MAX_VALUE then
          return refuse(400, format("field '%s': a value of more than %d bytes", name, MAX_VALUE))
        end
      end
    end
  end
  if self.cas then return self:set_profile_cas(id, fields) end
  local locked, lock_status, lock_err = self:lock(id)
  if not locked then return refuse(lock_status, lock_err) end
  local profile = self:profile(id)
  local created = profile == nil
  profile = profile or {}
  for name, value in pairs(fields) do
    if value == json.null then profile[name] = nil else profile[name] = value end
  end
  local count = 0
  for _ in pairs(profile) do count = count + 1 end
  if count > MAX_FIELDS then
    self:unlock(id)
    return refuse(400, format("lead '%s' would have more than %d fields", id, MAX_FIELDS))
  end
  -- Scored before it is stored: a value the model cannot read is refused, and never kept.
  local scored, answer, score_err = pcall(self.score, self, id, new_entry(nil, profile))
  if not scored or not answer then
    self:unlock(id)
    if not scored then error(answer, 0) end
    return refuse(400, score_err)
  end
  local ok, set_err = self:store_profile(id, json.encode(profile))
  self:unlock(id)
  if not ok then return refuse(507, "lead store full: " .. tostring(set_err)) end
  return created and 201 or 200, answer
end

-- Whether a store gives back the flags a value was stored with (ngx.shared.DICT and memory_store do):
-- one probe key, written, read and deleted.
function _M.store_keeps_flags(store)
  local ok = store:safe_set(FLAGS_PROBE, true, 0, 7)
  if not ok then return false end
  local _, flags = store:get(FLAGS_PROBE)
  store:delete(FLAGS_PROBE)
  return flags == 7
end

-- Stores a profile's text under a new version, and gives the lead's state that version too (see the
-- top of this file); the caller holds the lead's lock. true, or nil and the store's error.
function Service:store_profile(id, text)
  local store = self.store
  local n, err = store:incr(VERSION_KEY, 1, 0)
  if not n then return nil, err end
  local version = n % 4294967295 + 1   -- 1 .. 2^32 - 1: a shared dict's flags are 32 bits
  local ok, set_err = store:safe_set(PROFILE .. id, text, 0, version)
  if not ok then return nil, set_err end
  local state = store:get(STATE .. id)
  if state ~= nil then return store:safe_set(STATE .. id, state, 0, version) end
  return true
end

-- POST /events: one event, for a known lead, of a type the model's features count.
function Service:event(body, reuse)
  local event, err = decode_body(body, self.max_body)
  if not event then
    if err == "too large" then return refuse(413, "request body too large") end
    return refuse(400, err)
  end
  -- Known keys counted against all keys, not a walk of the table (pairs leaves LuaJIT's trace); the
  -- walk only to name an unknown key.
  local keys, known = nkeys(event), 0
  for i = 1, #EVENT_KEY_ARRAY do
    local k = EVENT_KEY_ARRAY[i]
    local v = event[k]
    if v ~= nil then
      known = known + 1
      if v == null then event[k] = nil end
    end
  end
  if known ~= keys then
    for k in pairs(event) do
      if not EVENT_KEYS[k] then
        return refuse(400, format("unknown key '%s' in event%s (expected %s)", k, did_you_mean(k, EVENT_KEY_ARRAY),
          EVENT_KEY_LIST))
      end
    end
  end
  local id, kind, time, value = event.lead, event.type, event.time, event.value
  if id == nil then return refuse(400, "event: 'lead' is required") end
  if not valid_lead_id(id) then return refuse(400, bad_id_message(id)) end
  if type(kind) ~= "string" then return refuse(400, "event: 'type' is required (a string)") end
  if not self.any_event_type and not self.event_types[kind] then
    if #self.event_type_list == 0 then
      return refuse(400, format("unknown event type '%s': the model declares no event features", kind))
    end
    return refuse(400, format("unknown event type '%s'%s (the model counts: %s)", kind,
      did_you_mean(kind, self.event_type_list), self.event_types_text))
  end
  local now = self.clock()
  if time ~= nil then
    local t, terr = _M.parse_time(time)
    if not t then return refuse(400, "event: 'time' " .. terr) end
    if t > now + FUTURE_SLACK then return refuse(400, "event: 'time' is in the future") end
    time = t
  end
  if value ~= nil and type(value) ~= "number" then return refuse(400, "event: 'value' must be a number") end
  for _, attr in ipairs(EVENT_ATTRIBUTES) do
    if event[attr] ~= nil and type(event[attr]) ~= "string" then
      return refuse(400, format("event: '%s' must be a string", attr))
    end
  end
  if self.cas then return self:event_cas(id, event, time, reuse) end
  local lead = self.cache[id]
  local lock_key = lead and lead.lock_key or LOCK .. id
  local locked, lock_status, lock_err = self:lock(id, lock_key)
  if not locked then return refuse(lock_status, lock_err) end
  -- Under the lock: the state, and the profile only when the state's version is not the cached one's.
  local stored, version = self.store:get(lead and lead.state_key or STATE .. id)
  if not (self.versions and lead and stored and lead.version == (version or 0)) then
    lead = self:lead(id)
    if not lead then
      self:unlock(id, lock_key)
      return refuse(404, format("unknown lead '%s': POST /leads/%s its profile first", id, id))
    end
  end
  -- No pcall here (it keeps the hot path compiled): a raise is a bug, answered 500 by the glue, and
  -- the lock then expires by itself (LOCK_TTL).
  local values, note = self:observe(id, event, time, lead, stored, reuse)
  if not values then
    self:unlock(id, lock_key)
    return refuse(note == "late" and 422 or 507, self.last_error)
  end
  -- Scored under the lock too: the reactor records this answer's status change before another
  -- worker's later event of the lead can record its own (per-lead order, each change said by the
  -- answer that made it, at the time it was made).
  local answer, score_err = self:score(id, lead, false, values, note, reuse)
  self:unlock(id, lock_key)
  if not answer then return refuse(422, score_err) end
  return 200, answer
end

---------------------------------------------------------------------------------------------------
-- Compare-and-set stores (leadq.store's Redis): no lock; read the lead and its stamp, compute, write
-- if the stamp is unchanged, else read again. Several nginx nodes may take events for one lead.
---------------------------------------------------------------------------------------------------

local CAS_TRIES = 100           -- conflicts in a row before an event is answered 409 busy
local RETRY_AFTER = { ["Retry-After"] = "1" }

local function unavailable(err)
  return refuse(503, "lead store unavailable, try again: " .. tostring(err), RETRY_AFTER)
end

-- The cached lead for a profile text and version read from the store: the one kept while they are
-- unchanged, else the profile decoded and kept (Service:lead and the compare-and-set path).
function Service:cached_lead(id, text, version)
  local entry = self.cache[id]
  if entry and entry.text == text and entry.version == version then return entry end
  entry = new_entry(text, (json.decode(text)))
  entry.version = version
  entry.profile_key, entry.lock_key, entry.state_key = PROFILE .. id, LOCK .. id, STATE .. id
  if self.cache_count >= CACHE_LEADS then self.cache, self.cache_count = {}, 0 end
  if not self.cache[id] then self.cache_count = self.cache_count + 1 end
  self.cache[id] = entry
  return entry
end

-- POST /events on a compare-and-set store. A worker keeps each lead's last stamp and state as it
-- wrote or read them: the event is computed on those and written in one round trip; when another
-- worker or node wrote the lead meanwhile, the refused write answers the lead's current stamp, state
-- and profile version, and the event is computed again on them (the profile is read again only when
-- its version moved).
function Service:event_cas(id, event, time, reuse)
  local store = self.store
  for _ = 1, CAS_TRIES do
    local lead = self.cache[id]
    local stored, stamp
    if lead and store.known then   -- another worker of this node may have written the lead since
      local known_stamp, known_version, known_state = store:known(id)
      if known_stamp and tonumber(known_stamp) > (lead.stamp and tonumber(lead.stamp) or -1) then
        if known_version == lead.version then lead.stamp, lead.state_text = known_stamp, known_state
        else lead.stamp = nil end   -- the profile changed too: read it whole
      end
    end
    if lead and lead.stamp then
      stored, stamp = lead.state_text, lead.stamp
    else
      local text, version
      text, version, stored, stamp = store:read_lead(id, lead == nil)
      if text == nil then return unavailable(version) end
      if not (lead and lead.version == version) then
        if not text and lead then
          text, version, stored, stamp = store:read_lead(id, true)
          if text == nil then return unavailable(version) end
        end
        if not text then return refuse(404, format("unknown lead '%s': POST /leads/%s its profile first", id, id)) end
        lead = self:cached_lead(id, text, version)
      end
    end
    -- values of their own (no reuse): the write below waits on Redis, and the worker's other
    -- requests observe their events meanwhile, which would fill a kept table again
    local values, note = self:observe(id, event, time, lead, stored or nil, false)
    if not values then return refuse(note == "late" and 422 or 507, self.last_error) end
    local state = self.staged_state
    self.staged_state = nil
    local written, current_stamp, current_state, current_version =
      store:write_state(id, stamp, state, lead.version)
    if written == nil then return unavailable(current_stamp) end
    if written then
      lead.stamp, lead.state_text = written, state
      local answer, score_err = self:score(id, lead, false, values, note, reuse)
      if not answer then return refuse(422, score_err) end
      return 200, answer
    end
    if current_stamp ~= nil and current_version == lead.version then
      lead.stamp, lead.state_text = current_stamp, current_state
    else   -- the profile changed too, or the lead is gone: read it whole
      lead.stamp, lead.state_text = nil, nil
    end
  end
  return refuse(409, "lead '" .. id .. "' is busy, try again")
end

-- POST /leads/<id> on a compare-and-set store: fields are checked already.
function Service:set_profile_cas(id, fields)
  local store = self.store
  for _ = 1, CAS_TRIES do
    local text, read_err, _, stamp = store:read_lead(id, true)
    if text == nil then return unavailable(read_err) end
    local created = not text
    local profile = text and json.decode(text) or {}
    for name, value in pairs(fields) do
      if value == json.null then profile[name] = nil else profile[name] = value end
    end
    if nkeys(profile) > MAX_FIELDS then
      return refuse(400, format("lead '%s' would have more than %d fields", id, MAX_FIELDS))
    end
    -- Scored before it is stored: a value the model cannot read is refused, and never kept.
    local scored, answer, score_err = pcall(self.score, self, id, new_entry(nil, profile))
    if not scored then error(answer, 0) end
    if not answer then return refuse(400, score_err) end
    local written, err = store:write_profile(id, stamp, json.encode(profile))
    if written == nil then return unavailable(err) end
    if written then return created and 201 or 200, answer end
  end
  return refuse(409, "lead '" .. id .. "' is busy, try again")
end

-- Recycling (leadq.reactor's timer, recycle { reset_engagement = true }): the lead's engagement
-- starts afresh, as a lead never seen: its features count only the events after `at`, what bulk
-- features computed from those events give. true, or nil and why.
function Service:reset_engagement(id, at)
  if not self.features then return true end   -- no engagement to reset
  if self.cas then   -- the store's own compare-and-set: an empty state, written over the lead's
    local fresh = self.features:state()
    local text = fresh:encode(format("%.17g:", at or self.clock()))
    fresh:close()
    for _ = 1, CAS_TRIES do
      local profile, _, _, stamp = self.store:read_lead(id, false)
      if profile == nil then return nil, "lead store unavailable" end
      local written = self.store:write_state(id, stamp, text)
      if written == nil then return nil, "lead store unavailable" end
      if written then
        local cached = self.cache[id]
        if cached then cached.stamp, cached.state_text = nil, nil end
        return true
      end
    end
    return nil, "lead '" .. id .. "' is busy"
  end
  local locked, _, lock_err = self:lock(id)
  if not locked then return nil, lock_err end
  self.store:delete(STATE .. id)
  self:unlock(id)
  return true
end

-- GET /leads/<id>
function Service:get_lead(id)
  -- A read may change a status too (engagement decays): with reactions, under the lead's lock, so
  -- that it cannot record its change between another worker's event and that event's own.
  local locked = self.reactor and not self.cas
  if locked then
    local ok, lock_status, lock_err = self:lock(id)
    if not ok then return refuse(lock_status, lock_err) end
  end
  local lead = self:lead(id)
  local answer, err
  if lead then answer, err = self:score(id, lead, true) end
  if locked then self:unlock(id) end
  if not lead then return refuse(404, format("unknown lead '%s'", id)) end
  if not answer then return refuse(422, err) end
  return 200, answer
end

local ROUTES_ALLOW = { events = "POST", leads = "GET, HEAD, POST" }

-- The one entry point: method, path (decoded, without the query), body (string or nil), reuse (true:
-- a score answer may be a table the next call fills again, for a caller that encodes it at once).
-- Returns status, answer (a table to encode as JSON), headers (a table or nil). Never raises on
-- a bad request; raises only on a bug or a broken store, which the nginx glue turns into a 500.
function Service:handle(method, path, body, reuse)
  if path == "/events" then
    if method ~= "POST" then
      return refuse(405, "method " .. method .. " not allowed on /events (use POST)", { Allow = ROUTES_ALLOW.events })
    end
    return self:event(body, reuse)
  end
  local id = path:match("^/leads/(.*)$")
  if id then
    if not valid_lead_id(id) then return refuse(400, bad_id_message(id)) end
    if method == "GET" or method == "HEAD" then return self:get_lead(id) end
    if method == "POST" then return self:set_profile(id, body) end
    return refuse(405, "method " .. method .. " not allowed on /leads/<id> (use GET or POST)",
      { Allow = ROUTES_ALLOW.leads })
  end
  return refuse(404, "no such endpoint: " .. sub(path, 1, 200) .. " (POST /events, GET or POST /leads/<id>)")
end

---------------------------------------------------------------------------------------------------
-- The engine: the only place the service talks to the scoring model and the feature set.
---------------------------------------------------------------------------------------------------

-- A stored state is "<latest event time>:<state:encode()>": values are asked as of the later of
-- now and the latest event, so workers whose clocks differ by a few ms never ask for the past.
-- The state itself knows its latest event (state:latest, read without parsing the text); the header
-- stays, the stored layout every version reads (workers of two versions run side by side during a
-- reload).
-- Returns where the encoding starts (state:decode reads from there: no copy).
local function state_start(stored)
  local colon = find(stored, ":", 1, true)
  return colon and colon + 1 or 1
end

-- The lead's engagement state (decoded) and its latest event time; a state encoded by other
-- feature declarations (the rules changed) cannot be read: the lead starts afresh, and says so.
-- A stored state is decoded into the service's own state, kept from request to request (no new C
-- state and finalizer per request): use it before the next load_state, and close it only if
-- `fresh` (the 4th value) says it is a new one.
-- stored: the stored state when the caller has read it (false: there is none), nil: read it here.
function Service:load_state(id, profile, stored)
  if stored == nil then stored = self.store:get(STATE .. id) end
  if not stored then return self.features:state(profile), 0, nil, true end
  local state = self.loaded
  if state == nil then
    state = self.features:state()
    self.loaded = state
  end
  local ok, err = state:decode(stored, state_start(stored))
  if not ok then
    return self.features:state(profile), 0, "engagement state started afresh (" .. tostring(err) .. ")", true
  end
  return state, state:latest() or 0
end

-- Folds one event (its type, value and attributes; at: its time, or nil for now) into the lead's
-- state in the store (the caller holds the lead's lock). lead: from Service:lead (its profile, its
-- version, its keys); stored: the stored state the caller read under the lock (nil: none). Returns
-- the state's feature values as of now, or nil, "late" | "store" (message in last_error). reuse:
-- the values may be a table the next call fills again.
function Service:observe(id, event, at, lead, stored, reuse)
  local key = lead.state_key
  local state, latest, note, fresh = self:load_state(id, lead.profile, stored or false)
  local now = self.clock()
  -- Stamped here, under the lock, after the lead's latest event: two workers whose cached clocks
  -- differ by a millisecond must not make each other's events late, and events of one lead at the
  -- very same time would wait in the state's buffer (it only folds an event once time moves on).
  if at == nil then
    at = now
    if now <= latest then at = latest + 1e-6 end
  end
  -- The event's fields as arguments: the decoded request is only read for the attributes.
  local ok, err = state:observe(event.type, at, event.value, event)
  if not ok then
    if fresh then state:close() end
    self.last_error = "event rejected: " .. tostring(err)
    return nil, "late"
  end
  if at > latest then latest = at end
  -- The time's text is kept: events of the same clock tick (ngx.now's millisecond) share it.
  local latest_text = self.latest_text
  if latest ~= self.latest_at then
    latest_text = format("%.17g:", latest)
    self.latest_at, self.latest_text = latest, latest_text
  end
  -- one string, header first; the profile's version with it (see the top of this file)
  local set_ok, set_err
  if self.cas then   -- written by the caller, if the lead is still as it was read (event_cas)
    self.staged_state, set_ok = state:encode(latest_text), true
  else
    set_ok, set_err = self.store:safe_set(key, state:encode(latest_text), 0, lead.version)
  end
  if not set_ok then
    if fresh then state:close() end
    self.last_error = "lead store full: " .. tostring(set_err)
    return nil, "store"
  end
  local values = state:values(latest > now and latest or now, reuse and self.values_kept or nil)
  if fresh then state:close() end   -- its C memory back now, not at the next GC cycle
  return values, note
end

-- The answer about a lead: its score from its profile and its engagement features; with
-- with_explain, also its profile and the explanation. nil, message when the model cannot score it.
function Service:score(id, lead, with_explain, values, note, reuse)
  local profile, record = lead.profile, lead.record
  if values == nil and self.features then values, note = self:feature_values(id, profile) end
  if values then
    for _, name in ipairs(self.feature_list) do record[name] = values[name] end
  end
  local options = self.score_options
  options.as_of = self.clock()
  -- reuse: the answer is encoded before the next request, so score_one may fill a kept result.
  options.into = (reuse and not with_explain) and self.result_kept or nil
  if self.reactor then self.reactor:fill(id, record, options.as_of) end   -- lifecycle_stage, days_in_stage
  local result, err = self.model:score_one(record, nil, options)   -- a value it cannot read: nil, message
  if not result then return nil, "cannot score lead '" .. id .. "': " .. tostring(err) end
  local total = result.total
  if total ~= total or total == huge or total == -huge then  -- never stored: its answers could not be written
    return nil, format("cannot score lead '%s': its total is %s, not a finite number", id, tostring(total))
  end
  local answer
  if reuse and not with_explain then   -- every field set again: none is left from the last answer
    answer = self.answer_kept
    answer.lead, answer.total, answer.status, answer.grade = id, result.total, result.status, result.grade
    answer.groups, answer.reason, answer.features, answer.note = result.groups, result.reason, values or {}, note
    answer.models = result.models   -- several models (leadq.multi): each one's result
  else
    answer = setmetatable({ lead = id, total = result.total, status = result.status, grade = result.grade,
      groups = result.groups, reason = result.reason, features = values or {}, note = note, models = result.models },
      ScoreAnswer)
  end
  answer.changed = self.reactor and self.reactor:observe(id, answer, record) or nil   -- { model, from, to, at }
  if with_explain then
    setmetatable(answer, nil)
    local ok, explained
    ok, explained, err = pcall(self.model.explain, self.model, record, nil, options)
    if not ok or not explained then
      return nil, "cannot explain lead '" .. id .. "': " .. tostring(ok and err or explained)
    end
    answer.profile = profile
    answer.explanation = tostring(explained)
    answer.explain = _M.plain(explained)
    answer.model = self.info
  end
  return answer
end

-- The JSON text of a score answer as pieces, laid out without a generic walk (the hot path of
-- POST /events): the same text as json.encode gives (keys sorted), from names sorted once.
local quote, number = json.quote, json.number

-- The text of small whole numbers, made once (most scores and counts); others through json.number.
-- Only 0 to 1000, and read only with such a key: LuaJIT does not compile reads of a table with
-- both an array and a hash part by a number key.
local INT_TEXT = {}
for i = 0, 1000 do INT_TEXT[i] = number(i) end
local function number_text(v)
  if v >= 0 and v <= 1000 and v % 1 == 0 then return INT_TEXT[v] end
  return number(v)
end

-- Statuses, grades and reasons repeat from answer to answer: their quoted form is kept (bounded).
local quoted, quoted_count = {}, 0
local function quote_kept(s)
  local q = quoted[s]
  if q then return q end
  q = quote(s)
  if quoted_count >= 1024 then quoted, quoted_count = {}, 0 end
  quoted[s], quoted_count = q, quoted_count + 1
  return q
end

-- names: sorted; keys: their quoted forms with the colon, made once (see new): keys[i] opens the
-- object, keys_next[i] follows another key.
local function put_numbers(parts, n, key, values, names, keys, keys_next)
  n = n + 1; parts[n] = key
  local first = true
  for i = 1, #names do
    local v = values[names[i]]
    if v ~= nil then
      n = n + 1; parts[n] = first and keys[i] or keys_next[i]
      n = n + 1; parts[n] = number_text(v)
      first = false
    end
  end
  n = n + 1; parts[n] = first and "{}" or "}"
  return n
end

-- The JSON text of a score answer as pieces, in a table kept by the service (score_one and explain
-- keep no reference to it): returns the table and the count; entries past the count may be left over.
-- closing: the last piece, "}" unless given (the nginx glue ends the line in it).
function Service:answer_parts(answer, closing)
  local parts, n = self.answer_parts_kept, 0
  local opening = answer.changed and '{"changed":' .. json.encode(answer.changed) .. ',"features":' or '{"features":'
  n = put_numbers(parts, n, opening, answer.features, self.feature_list, self.feature_keys, self.feature_keys_next)
  if answer.grade ~= nil then n = n + 1; parts[n] = ',"grade":'; n = n + 1; parts[n] = quote_kept(answer.grade) end
  n = put_numbers(parts, n, ',"groups":', answer.groups, self.group_list, self.group_keys, self.group_keys_next)
  local lead = answer.lead
  if valid_ids[lead] then   -- nothing to escape: the id itself between two pieces, no new string
    n = n + 1; parts[n] = ',"lead":"'
    n = n + 1; parts[n] = lead
    n = n + 1; parts[n] = '"'
  else
    n = n + 1; parts[n] = ',"lead":'
    n = n + 1; parts[n] = quote(lead)
  end
  if answer.models ~= nil then n = n + 1; parts[n] = ',"models":' .. json.encode(answer.models) end
  if answer.note ~= nil then n = n + 1; parts[n] = ',"note":' .. quote(answer.note) end
  if answer.reason ~= nil then n = n + 1; parts[n] = ',"reason":'; n = n + 1; parts[n] = quote_kept(answer.reason) end
  n = n + 1; parts[n] = ',"status":'
  n = n + 1; parts[n] = quote_kept(answer.status)
  n = n + 1; parts[n] = ',"total":'
  n = n + 1; parts[n] = number_text(answer.total)
  n = n + 1; parts[n] = closing or "}"
  return parts, n
end

-- The JSON text of a score answer, as one string.
function Service:answer_text(answer)
  local parts, n = self:answer_parts(answer)
  return concat(parts, "", 1, n)
end

-- The JSON text of an answer as pieces (table.concat gives the text): score answers laid out by
-- answer_text, others by json.encode_parts.
function Service:encode_answer(answer)
  if getmetatable(answer) ~= ScoreAnswer then return json.encode_parts(answer) end
  return { self:answer_text(answer) }
end

-- A copy of a value with only what JSON can say (explain tables carry a metatable for tostring).
function _M.plain(v, depth)
  depth = depth or 0
  if type(v) ~= "table" or v == json.null then
    if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then return tostring(v) end
    if type(v) == "function" or type(v) == "userdata" or type(v) == "thread" then return tostring(v) end
    return v
  end
  if depth > 16 then return "..." end
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" or type(k) == "number" then out[k] = _M.plain(x, depth + 1) end
  end
  return out
end

-- The lead's feature values as of now (nil when the model has no features).
function Service:feature_values(id, profile)
  if not self.features then return nil end
  local state, latest, note, fresh = self:load_state(id, profile)
  local now = self.clock()
  local values = state:values(latest > now and latest or now)
  if fresh then state:close() end
  return values, note
end

-- Compiles a rule script: model, or nil and every problem (the engine's message, file and line).
-- A list of paths: several models served as one (leadq.multi: the first model's answer, every
-- model's result under `models`; a later model reads the earlier ones' results).
function _M.load_model(path)
  if type(path) == "table" then
    local run, err = require("leadq").load_models(path)
    if not run then return nil, err end
    local ok, multi = pcall(require("leadq.multi").new, run)
    if not ok then return nil, (tostring(multi):gsub("^[^:]*:%d+: ", "")) end
    return multi
  end
  return require("leadq").load_model(path)
end

-- The model's feature set: the same declarations (so the same fingerprint) as the model's own,
-- made here because the service keeps states in real time; nil when the model declares none.
function _M.model_features(model)
  local declared = type(model) == "table" and type(model.spec) == "table" and model.spec.features
  if type(declared) ~= "table" or next(declared) == nil then return nil end
  local specs = {}
  for name, f in pairs(declared) do specs[name] = f.spec or f end
  return require("leadq.features").new(specs)
end

function _M.model_name(model)
  return model.name
end

---------------------------------------------------------------------------------------------------
-- Times: epoch seconds, or an ISO 8601 date / date-time (UTC unless it has an offset).
---------------------------------------------------------------------------------------------------

local core_parse_time = require("leadq.core").parse_time

-- epoch seconds, or nil and why.
function _M.parse_time(v)
  if type(v) == "number" then
    if v ~= v or v < 0 or v > 253402300799 then return nil, "must be epoch seconds between 1970 and 9999" end
    return v
  end
  if type(v) ~= "string" then return nil, "must be epoch seconds or an ISO 8601 date-time" end
  -- the core's reader, as the CSV reader's and the features': "2026-02-31" is no date, and
  -- T10:30 or a +01:00 offset read as they do in a file
  local t = core_parse_time(v)
  if t == nil then return nil, "must be epoch seconds or an ISO 8601 date-time, got '" .. readable(v) .. "'" end
  return t
end

---------------------------------------------------------------------------------------------------
-- nginx glue
---------------------------------------------------------------------------------------------------

local current   -- this VM's service (the master compiles it; workers inherit it at fork)

-- In init_by_lua: compile the rules; a broken rule script raises (see nginx.conf.tmpl: nginx then
-- refuses the reload and the running workers keep the previous model). opts: rules (a path), dict
-- (the leads' shared dict), locks (optional: a shared dict for the leads' locks; every worker must
-- lock in the same dict, so add or remove it with a restart, not a reload), max_body; store = "redis"
-- with redis = { host, port, password, db, pool, timeout, keepalive } (leadq.store.redis) keeps the
-- leads in Redis instead (dict then optional: it only counts the model's generations).
function _M.init_nginx(opts)
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  local redis = type(opts) == "table" and opts.store == "redis"
  if type(opts) ~= "table" or (type(opts.rules) ~= "string" and type(opts.rules) ~= "table") or
      (type(opts.dict) ~= "string" and
      not (redis and opts.dict == nil)) or (opts.locks ~= nil and type(opts.locks) ~= "string") or
      (opts.store ~= nil and opts.store ~= "redis" and opts.store ~= "dict") or
      (opts.redis ~= nil and type(opts.redis) ~= "table") then
    error("init_nginx: expected { rules = path, dict = shared dict name [, locks = shared dict name] } or " ..
      "{ rules = path, store = \"redis\", redis = { host =, port =, ... } }", 2)
  end
  local dict = opts.dict and ngx.shared[opts.dict]
  if opts.dict and not dict then
    error("init_nginx: no lua_shared_dict named '" .. opts.dict .. "' in nginx.conf", 2)
  end
  local store = dict
  if redis then
    local ok, made = pcall(require("leadq.store").redis, opts.redis)
    if not ok then error("init_nginx: " .. tostring(made), 2) end
    store = made
  end
  local locks = opts.locks and ngx.shared[opts.locks]
  if opts.locks and not locks then
    error("init_nginx: no lua_shared_dict named '" .. opts.locks .. "' in nginx.conf", 2)
  end
  local model, err = _M.load_model(opts.rules)
  if not model then
    local message = "leadq: rules refused, the running model keeps serving: " .. tostring(err)
    ngx.log(ngx.ERR, message)
    error(message, 0)
  end
  local generation = dict and dict:incr("model:generation", 1, 0) or 1   -- no Redis call in init_by_lua
  local info = { rules = opts.rules, generation = generation, loaded_at = ngx.time(), name = _M.model_name(model) }
  ngx.log(ngx.NOTICE, format("leadq: model '%s' from %s loaded (generation %d)", tostring(info.name),
    type(opts.rules) == "table" and concat(opts.rules, ", ") or opts.rules, generation))
  -- reactions (a reactions script) with outbox (a lua_shared_dict of its own): see leadq.reactor
  local reactor = opts.reactions and require("leadq.reactor").init_nginx{ reactions = opts.reactions,
    outbox = opts.outbox, model = info.name, fields = model.info and model:info().fields }
  current = _M.new{ model = model, store = store, locks = locks, clock = ngx.now,
    sleep = function(s) ngx.sleep(s) end, max_body = opts.max_body, info = info, reactor = reactor }
  return current
end

-- In content_by_lua: one request. path: the route when the location already says it (an exact
-- `location = /events`: the hot endpoint then reads no URI variable, ~0.8 us of nginx's time a
-- request); nil: the request's URI. The answer's Content-Type is the location's default_type
-- (application/json, see nginx.conf.tmpl): nginx sets it with no Lua call per request.
function _M.serve_nginx(path)
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  local method = ngx.req.get_method()
  local status, answer, headers
  if not current then
    status, answer = 503, { error = "no model loaded (init_nginx was not called in init_by_lua)" }
  else
    local body
    if method == "POST" then
      -- Read already when the location says `lua_need_request_body on` (one call less a request).
      body = ngx.req.get_body_data()
      if body == nil then
        ngx.req.read_body()
        body = ngx.req.get_body_data()
        if body == nil and ngx.req.get_body_file() then body = false end
      end
    end
    if body == false then
      status, answer = refuse(413, "request body too large")
    else
      local ok
      ok, status, answer, headers = pcall(current.handle, current, method, path or ngx.var.uri, body, true)
      if not ok and require("leadq.store").is_unavailable(status) then   -- Redis down or slow
        ngx.log(ngx.WARN, "leadq: ", tostring(status))
        status, answer, headers = unavailable(status.message)
      elseif not ok then
        ngx.log(ngx.ERR, "leadq: ", tostring(status))
        status, answer, headers = 500, { error = "internal error" }, nil
      end
    end
  end
  if status ~= 200 then ngx.status = status end   -- nginx answers 200 when none is set
  if headers then
    local h = ngx.header
    for k, v in pairs(headers) do h[k] = v end
  end
  if current and getmetatable(answer) == ScoreAnswer then
    -- The pieces as they are, not joined: each joined answer was a new string for LuaJIT to intern,
    -- and answers of one length and total hash alike (its hash samples a few bytes), so every join
    -- walked a long chain of dead answers (perf: ~4% of the workers' time, more than ngx.print
    -- spends reading a table). The kept table must end at n for ngx.print.
    local parts, n = current:answer_parts(answer, "}\n")
    local i = n + 1
    while parts[i] ~= nil do parts[i] = nil; i = i + 1 end
    ngx.print(parts)
  else
    ngx.print(json.encode_parts(answer), "\n")
  end
end

-- In content_by_lua of an admin location (bind it to 127.0.0.1; see nginx.conf.tmpl's /.leadq/state):
-- GET: every lead of the service's store as NDJSON (leadq.store's export format), streamed; POST:
-- the body (such an export) imported, answered {"imported": n}. A shared dict lives inside nginx: this
-- is how `leadq state export|import --store http://...` reaches it; it serves a Redis store alike.
function _M.serve_state_nginx()
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  local state = require("leadq.store")
  if not current then
    ngx.status = 503
    ngx.print('{"error":"no model loaded (init_nginx was not called in init_by_lua)"}\n')
    return
  end
  local method = ngx.req.get_method()
  if method == "GET" then
    ngx.header["Content-Type"] = "application/x-ndjson"
    local buffer, n = {}, 0
    local count, err = state.export(current.store, function(line)
      n = n + 1; buffer[n] = line .. "\n"
      if n >= 1000 then ngx.print(buffer); ngx.flush(true); buffer, n = {}, 0 end
    end)
    if n > 0 then ngx.print(buffer) end
    -- the status is sent already: an export cut short ends without its last line, and says so in the log
    if not count then ngx.log(ngx.ERR, "leadq: state export failed: ", tostring(err)) end
    return
  end
  if method ~= "POST" then
    ngx.status = 405
    ngx.header["Allow"] = "GET, POST"
    ngx.print('{"error":"method not allowed on the state endpoint (GET exports, POST imports)"}\n')
    return
  end
  ngx.req.read_body()
  local body, file = ngx.req.get_body_data(), nil
  if body == nil then   -- a big export is in a file: read a line at a time, not whole into memory
    local path = ngx.req.get_body_file()
    file = path and io.open(path, "rb")
  end
  local count, err = state.import(current.store, file and file:lines() or (body or ""):gmatch("([^\n]*)\n?"))
  if file then file:close() end
  if not count then
    ngx.status = 400
    ngx.print(json.encode({ error = readable("import refused: " .. tostring(err)) }), "\n")
    return
  end
  ngx.print(json.encode({ imported = count }), "\n")
end

return _M
