-- leadq.reactor: the reactions of the real-time service. After each score answer it compares the
-- lead's status and grade with the last ones it recorded; on a change it records the new ones,
-- asks the reactions script what to do (leadq.reactions: webhooks, an owner by the routes) and
-- puts the webhook facts in the outbox (leadq.outbox), all before the answer leaves, which then
-- says `changed = { model, from, to, at }`. Delivery runs later, from a timer (init_worker), never
-- on the request path.
--
-- In nginx.conf (see tests/nginx/reactions.conf.tmpl):
--   lua_shared_dict leadq_outbox 32m;
--   init_by_lua_block { require("leadq.service").init_nginx{ rules = ..., dict = ...,
--     reactions = "/srv/rules/reactions.lua", outbox = "leadq_outbox" } }
--   init_worker_by_lua_block { require("leadq.reactor").init_worker() }
--   location = /metrics { content_by_lua_block { require("leadq.reactor").serve_nginx("metrics") } }
--   location = /.leadq/outbox { allow 127.0.0.1; deny all;
--     content_by_lua_block { require("leadq.reactor").serve_nginx("outbox") } }
--   location = /.leadq/transitions { allow 127.0.0.1; deny all;     -- for leadq funnel --transitions
--     content_by_lua_block { require("leadq.reactor").serve_nginx("transitions") } }
local json = require("leadq.json")
local outbox_mod = require("leadq.outbox")
local webhook = require("leadq.webhook")

local type, tostring, ipairs, setmetatable, error = type, tostring, ipairs, setmetatable, error
local find, sub, format, concat = string.find, string.sub, string.format, table.concat

local _M = { _VERSION = "0.1.0" }

local LAST, COUNT, LOCK, STAGE, EPISODE = "x:", "x:n:", "x:l:", "x:s:", "x:e:"
local LOG_ROW, LOG_HEAD, LOG_TAIL = "tr:i:", "tr:head", "tr:tail"   -- the transitions log (see log_transition)
local DAY = 86400
local FUNNEL_STAGE = { accepted = "sal" }   -- the funnel's name of a lifecycle stage, where they differ
local CACHE = 10000

local Reactor = {}
Reactor.__index = Reactor

-- opts: reactions (a loaded leadq.reactions), outbox (a leadq.outbox), store (where each lead's
-- last status is kept: the outbox's store), model (the model's name), fields (the fields the model
-- reads: lifecycle_stage and days_in_stage are filled in when it reads them), clock (seconds),
-- secrets ({ webhook name = secret }, default: from each webhook's secret_env), format_time (epoch
-- -> text), sleep (seconds: how a worker waits for another's lock; none: one thread). The SLA and
-- recycling run as timers: facts in a second outbox (prefix "t:") that wait until their time, then
-- check whether the lead's lifecycle episode is still the one they timed.
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.reactions) ~= "table" or type(opts.outbox) ~= "table" then
    error("reactor.new: expects { reactions =, outbox =, store =, model = }", 2)
  end
  -- secrets: read from the environment when first needed (in an nginx worker: nginx.conf's `env`)
  local secrets = opts.secrets or setmetatable({}, { __index = function(t, name)
    local hook = opts.reactions.webhooks[name]
    local secret = hook and hook.secret_env and os.getenv(hook.secret_env) or false
    t[name] = secret
    return secret
  end })
  local reads = false
  for _, name in ipairs(opts.fields or {}) do
    if name == "lifecycle_stage" or name == "days_in_stage" then reads = true end
  end
  local store = opts.store or opts.outbox.store
  -- a service of several models (leadq.multi) is named "mql+sql+pql": each keeps its own record
  local model_names, prefixes = {}, {}
  for name in (opts.model or "model"):gmatch("[^+]+") do
    model_names[#model_names + 1] = name
    prefixes[name] = LAST .. name .. ":"
  end
  return setmetatable({ reactions = opts.reactions, outbox = opts.outbox, store = store,
    timers = opts.timers or outbox_mod.new{ store = store, prefix = "t:", clock = opts.clock or os.time,
      max_attempts = 3 },
    reads_lifecycle = reads,
    model = opts.model or "model", clock = opts.clock or os.time, sleep = opts.sleep, secrets = secrets,
    format_time = opts.format_time or require("leadq").format_time,
    watching = {}, model_names = model_names, prefixes = prefixes,
    owner_prefix = #model_names > 1 and prefixes[model_names[1]] or LAST,
    last = {}, last_count = 0, answers = 0 }, Reactor)
end

-- "status\tgrade\towner\tat" -> status, grade, owner, at (the time of the change recorded; a record
-- written before it was kept has none)
local function parse(text)
  local a = find(text, "\t", 1, true)
  local b = find(text, "\t", a + 1, true)
  local c = find(text, "\t", b + 1, true)
  local owner = sub(text, b + 1, c and c - 1 or nil)
  return sub(text, 1, a - 1), sub(text, a + 1, b - 1), owner ~= "" and owner or nil, c and tonumber(sub(text, c + 1))
end

-- The body of one webhook fact.
local function fact_body(self, id, change, r, answer)
  return json.encode({ event = change.grade_only and "lead.grade_changed" or "lead.status_changed", lead = id,
    model = change.model, from = change.from, to = change.to, grade_from = change.grade_from,
    grade_to = change.grade_to, at = self.format_time(change.at), total = answer.total, reason = answer.reason,
    owner = change.owner, why = change.why, transition = r.transition, key = change.key })
end

-- The lead's reaction lock. Another worker recording a change of this lead holds it for a moment:
-- wait for it (giving up would leave this answer's change to be said by a later one, late), up
-- to LOCK_TRIES; a lock left by a dead worker expires after LOCK_TTL. true, or nil when it stayed.
local LOCK_TRIES, LOCK_TTL = 500, 2

local function take_lock(self, lock)
  local store = self.store
  for _ = 1, LOCK_TRIES do
    if store:safe_add(lock, true, LOCK_TTL) then return true end
    if not self.sleep then return nil end   -- one thread: nobody else can let it go
    self.sleep(0.001)
  end
  return nil
end

-- One model's status and grade after a score answer (see Reactor:observe).
local function observe_model(self, id, model, status, grade, answer, record, cache_id, key_prefix, when)
  local store = self.store
  -- per lead, kept per worker: { store key, last text read, its status, its grade }
  local cached = self.last[cache_id]
  if not cached then
    if self.last_count >= CACHE then self.last, self.last_count = {}, 0 end
    self.last_count = self.last_count + 1
    cached = { key_prefix .. id }
    self.last[cache_id] = cached
  end
  local key = cached[1]
  local text = store:get(key)
  grade = grade or ""
  if text ~= nil then
    if cached[2] ~= text then   -- interned strings: a pointer compare
      cached[2], cached[3], cached[4] = text, parse(text)
    end
    if cached[3] == status and cached[4] == grade then return nil end
  end
  -- A change: under the lead's reaction lock, read again (another worker may have recorded it).
  local lock = LOCK .. cache_id
  if not take_lock(self, lock) then
    self.outbox:count("reaction_errors")
    self.last_error = "the reaction lock of lead '" .. tostring(id) .. "' stayed taken"
    return nil
  end
  text = store:get(key)
  local from, grade_from, owner, last_at
  if text ~= nil then from, grade_from, owner, last_at = parse(text) end
  if from == status and grade_from == grade then
    store:delete(lock)
    return nil
  end
  -- The change's time: the answer's (an event's own time), never before the lead's last change
  -- (workers' cached clocks differ by a few ms), so one lead's changes keep the order they were
  -- recorded in.
  local at = when or self.clock()
  if last_at and at < last_at then at = last_at end
  local change = { model = model, from = from, to = status, at = at, grade_from = grade_from ~= "" and grade_from
    or nil, grade_to = grade ~= "" and grade or nil, owner = owner, grade_only = from == status }
  local watching = self.watching[model]
  if watching == nil then
    watching = self.reactions:watches(model)
    self.watching[model] = watching
  end
  local actions = watching and self.reactions:on_change(change) or {}
  for _, r in ipairs(actions) do
    if r.assign and not change.why then
      local who, _, why = self.reactions:route(record or {}, store)
      change.owner, change.why = who or owner, why
    end
  end
  local ok, err = store:safe_set(key, format("%s\t%s\t%s\t%.3f", status, grade, change.owner or "", at))
  if not ok then
    store:delete(lock)
    self.outbox:count("reaction_errors")
    self.last_error = "reactions store full: " .. tostring(err)
    return nil
  end
  self.outbox:count("status_changes")
  -- a lead seen the first time enters the funnel (once: by the first model of several)
  if text == nil and (model == self.model_names[1] or #self.model_names == 1) then
    self:log_transition(id, "lead", at)
  end
  for _, r in ipairs(actions) do
    if r.transition or r.assign then
      local episode = self:enter(id, r.transition or status, at, status == "disqualified" and answer.reason or nil,
        change.owner)
      if r.assign then self:hand_off(id, change, episode) end
    end
  end
  for _, r in ipairs(actions) do
    for _, name in ipairs(r.webhooks) do
      local n = store:incr(COUNT .. id, 1, 0)
      change.key = format("%s-%s-%d", id, model, n)
      local put, perr = self.outbox:put({ lead = id, webhook = name, key = change.key,
        body = fact_body(self, id, change, r, answer) })
      if not put then
        self.outbox:count("reaction_errors")
        self.last_error = "outbox full: " .. tostring(perr)
      end
    end
  end
  store:delete(lock)
  return { model = model, from = from, to = status, at = at }
end

-- After a score answer: nil when the lead's statuses and grades are the ones recorded, else the
-- change { model, from, to, at } (the first model's, when several changed; from: nil for a lead
-- seen the first time). record: the lead's fields (for the routes). An answer of several models
-- (leadq.multi) has each model's result under `models`: each is watched on its own.
function Reactor:observe(id, answer, record, at)
  self.answers = self.answers + 1   -- counted here, added to the store's count by the worker's timer
  local models = answer.models
  if models == nil then
    return observe_model(self, id, self.model, answer.status, answer.grade, answer, record, id, LAST, at)
  end
  local changed
  for _, name in ipairs(self.model_names) do
    local r = models[name]
    if r then
      local c = observe_model(self, id, name, r.status, r.grade, r, record, name .. ":" .. id, self.prefixes[name], at)
      changed = changed or c
    end
  end
  return changed
end

-- The lead's lifecycle: stage, since (epoch seconds), episode (a number that changes with each new
-- stage), or nil.
function Reactor:lifecycle(id)
  local text = self.store:get(STAGE .. id)
  if not text then return nil end
  local stage, since, episode = text:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  return stage, tonumber(since), tonumber(episode)
end

-- Moves the lead to a lifecycle stage (a new episode): its number. The move is written to the
-- transitions log too (reason, owner: its columns), unless the lead is in that stage already.
function Reactor:enter(id, stage, at, reason, owner)
  local was = self:lifecycle(id)
  local episode = self.store:incr(EPISODE .. id, 1, 0)
  self.store:safe_set(STAGE .. id, format("%s\t%.3f\t%d", stage, at, episode))
  if was ~= stage then self:log_transition(id, FUNNEL_STAGE[stage] or stage, at, reason, owner) end
  return episode
end

-- The transitions log: the lifecycle moves the service made (a lead seen, handed off, accepted,
-- recycled, disqualified), in the format `leadq funnel --transitions` reads (lead_id,stage,at,
-- reason,owner), rows numbered in the store. The funnel times each hand-off from these rows with the
-- reactions' SLA (working hours, zone): it counts the breaches the service's timers sent.
-- GET /.leadq/transitions gives them (serve_nginx("transitions")).
local function csv_field(v)
  if v == nil then return "" end
  v = tostring(v)
  if find(v, '[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function Reactor:log_transition(id, stage, at, reason, owner)
  local store = self.store
  local n, err = store:incr(LOG_TAIL, 1, 0)
  local ok = n ~= nil
  if ok then
    ok, err = store:safe_set(LOG_ROW .. n, concat({ csv_field(id), csv_field(stage), self.format_time(at),
      csv_field(reason), csv_field(owner) }, ","))
  end
  if not ok then
    self.outbox:count("reaction_errors")
    self.last_error = "transitions log full: " .. tostring(err)
  end
end

-- The transitions log as CSV text (a header, then rows after row `after`, default all kept), and
-- the number of its last row. forget(n): rows up to n are dropped (an export took them).
function Reactor:transitions_csv(after)
  local store = self.store
  local head, tail = store:get(LOG_HEAD) or 0, store:get(LOG_TAIL) or 0
  local lines = { "lead_id,stage,at,reason,owner" }
  for n = math.max(head, after or 0) + 1, tail do
    local row = store:get(LOG_ROW .. n)
    if row then lines[#lines + 1] = row end
  end
  return concat(lines, "\n") .. "\n", tail
end

function Reactor:forget_transitions(upto)
  local store = self.store
  local head, tail = store:get(LOG_HEAD) or 0, store:get(LOG_TAIL) or 0
  upto = math.min(upto, tail)
  for n = head + 1, upto do store:delete(LOG_ROW .. n) end
  if upto > head then store:set(LOG_HEAD, upto) end
  return math.max(upto - head, 0)
end

-- The lead's owner, as its last recorded change left it (nil when it has none).
function Reactor:owner_of(id)
  local last = self.store:get(self.owner_prefix .. id)
  return last and select(3, parse(last)) or nil
end

-- Before a score: the lead's lifecycle stage and days in it, for a model whose rules read them.
function Reactor:fill(id, record, now)
  if not self.reads_lifecycle then return end
  local stage, since = self:lifecycle(id)
  record.lifecycle_stage = stage
  record.days_in_stage = since and (now - since) / DAY or nil
end

-- Sales accepted the lead (POST /.leadq/accept?lead=ID): its hand-off's SLA stops; recycling
-- then waits for progress (not_progressing_days).
function Reactor:accept(id, at)
  local stage = self:lifecycle(id)
  if stage == nil then return nil, "lead '" .. tostring(id) .. "' was never handed off" end
  local episode = self:enter(id, "accepted", at, nil, self:owner_of(id))
  self.outbox:count("accepted")
  local r = self.reactions.recycle
  if r and r.not_progressing_days then
    self.timers:put{ lead = id, kind = "recycle", episode = episode, not_before = at + r.not_progressing_days * DAY }
  end
  return true
end

-- A hand-off: the SLA's and recycling's timers for this episode.
function Reactor:hand_off(id, change, episode)
  local sla, r = self.reactions.sla, self.reactions.recycle
  if sla then
    self.timers:put{ lead = id, kind = "sla", episode = episode, owner = change.owner,
      deadline = self.reactions:sla_deadline(change.at), not_before = self.reactions:sla_deadline(change.at) }
  end
  if r then
    local days = r.not_accepted_days or r.not_progressing_days
    self.timers:put{ lead = id, kind = "recycle", episode = episode, not_before = change.at + days * DAY }
  end
end

local function lifecycle_fact(self, id, event, hooks, fields)
  for _, name in ipairs(hooks or {}) do
    local n = self.store:incr(COUNT .. id, 1, 0)
    fields.event, fields.lead, fields.model = event, id, self.model
    fields.key = format("%s-%s-%d", id, self.model, n)
    self.outbox:put({ lead = id, webhook = name, key = fields.key, body = json.encode(fields) })
  end
end

-- A timer that is due (the timers outbox's send): an SLA breach or a recycle, when the lead is
-- still in the episode it timed; else nothing. Always true (a timer is done once looked at).
function Reactor:timer(fact)
  local stage, since, episode = self:lifecycle(fact.lead)
  if episode ~= fact.episode then return true end
  local now = self.clock()
  if fact.kind == "sla" then
    self.outbox:count("sla_breaches")
    lifecycle_fact(self, fact.lead, "lead.sla_breached", self.reactions.sla.webhooks, { owner = fact.owner,
      stage = stage, deadline = self.format_time(fact.deadline), at = self.format_time(now) })
  elseif fact.kind == "recycle" then
    local reason = self.reactions:recycle_due(stage, since, now, stage == "accepted")
    if reason then
      local owner = self:owner_of(fact.lead)
      self:enter(fact.lead, "nurture", now, reason, owner)
      self.outbox:count("recycles")
      self.reactions:release(owner, self.store)   -- one open lead less on the owner's capacity
      -- the service's engagement state of the lead starts afresh (leadq.service sets the hook)
      if self.reactions.recycle.reset_engagement and self.reset_engagement then
        local reset, rerr = self.reset_engagement(fact.lead, now)
        if not reset then
          self.outbox:count("reaction_errors")
          self.last_error = "engagement not reset on recycle: " .. tostring(rerr)
        end
      end
      lifecycle_fact(self, fact.lead, "lead.recycled", self.reactions.recycle.webhooks, { from = stage,
        to = "nurture", reason = reason, reset_engagement = self.reactions.recycle.reset_engagement,
        at = self.format_time(now) })
    end
  end
  return true
end

-- Delivers one fact to its webhook (the client: a leadq.webhook client): true, or false and why.
function Reactor:send(client, fact)
  local hook = self.reactions.webhooks[fact.webhook]
  if not hook then return false, "no webhook named '" .. tostring(fact.webhook) .. "' any more" end
  local started = self.clock()
  local status, err = client:post(hook.url, fact.body,
    webhook.headers(self.secrets[fact.webhook] or nil, fact.key, started, fact.body), hook.tls_verify)
  local took = self.clock() - started
  self.outbox:count("delivery_ms", took * 1000)
  if status and status >= 200 and status < 300 then return true end
  return false, status and ("HTTP " .. status) or err
end

---------------------------------------------------------------------------------------------------
-- nginx glue
---------------------------------------------------------------------------------------------------

local current

-- In init_by_lua (called by leadq.service.init_nginx when it is given reactions and an outbox).
function _M.init_nginx(opts)
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  local reactions, problems = require("leadq.reactions").load(opts.reactions)
  if not reactions then
    local message = "leadq: reactions refused: " .. table.concat(problems, "\n")
    ngx.log(ngx.ERR, message)
    error(message, 0)
  end
  local dict = ngx.shared[opts.outbox]
  if not dict then error("init_nginx: no lua_shared_dict named '" .. tostring(opts.outbox) .. "' in nginx.conf", 2) end
  local ob = outbox_mod.new{ store = dict, clock = ngx.now, backoff = opts.backoff, max_attempts = opts.max_attempts }
  current = _M.new{ reactions = reactions, outbox = ob, store = dict, model = opts.model, fields = opts.fields,
    clock = ngx.now, sleep = ngx.sleep }
  return current
end

local LEASE, LEASE_TTL, ROUND_GAP = "o:lease", 3, 0.02

-- In init_worker_by_lua: one worker at a time (a lease in the outbox's store) delivers, in rounds,
-- from a timer: lanes as light threads over cosockets. A worker that exits (reload) stops after its
-- round and gives the lease up; the new workers take it.
function _M.init_worker()
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  if not current then return end
  local reactor, store = current, current.outbox.store
  local client = webhook.client{ tcp = ngx.socket.tcp, timeout = 5 }
  local me = tostring(ngx.worker.pid())
  local function send(fact) return reactor:send(client, fact) end
  local function timer(fact) return reactor:timer(fact) end
  -- every worker adds its answers to the metrics' count once a second (no shared write a request)
  ngx.timer.every(1, function()
    local n = reactor.answers
    if n > 0 then
      reactor.answers = 0
      store:incr("m:answers", n, 0)
    end
  end)
  local loop
  loop = function(premature)
    if premature or ngx.worker.exiting() then
      if store:get(LEASE) == me then store:delete(LEASE) end
      return
    end
    local holder = store:get(LEASE)
    if holder == nil then
      store:add(LEASE, me, LEASE_TTL)
      holder = store:get(LEASE)
    end
    local gap = ROUND_GAP * 5
    if holder == me then
      store:set(LEASE, me, LEASE_TTL)
      local tok, terr = pcall(reactor.timers.round, reactor.timers, timer)
      if not tok then ngx.log(ngx.ERR, "leadq: outbox timers: ", tostring(terr)) end
      local ok, delivered, failed = pcall(reactor.outbox.round, reactor.outbox, send, ngx.thread.spawn, ngx.thread.wait)
      if not ok then ngx.log(ngx.ERR, "leadq: outbox round: ", tostring(delivered)) end
      if ok and (delivered > 0 or failed > 0) then gap = 0 else gap = ROUND_GAP end
    end
    local started, err = ngx.timer.at(gap, loop)
    if not started then ngx.log(ngx.ERR, "leadq: outbox timer: ", tostring(err)) end
  end
  ngx.timer.at(0, loop)
end

-- The metrics (GET /metrics) and the outbox (GET: dead letters as JSON; POST ?replay=N|all;
-- POST ?pause=SECONDS holds deliveries, ?resume=1 lets them go on).
function _M.serve_nginx(what)
  local ngx = _M.ngx or ngx   -- luacheck: ignore
  if not current then
    ngx.status = 503
    ngx.say('{"error":"no reactions (init_nginx was given none)"}')
    return
  end
  local ob = current.outbox
  if what == "metrics" then
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    local extra = {}
    local function put(name, kind, help, value)
      extra[#extra + 1] = format("# HELP leadq_%s %s\n# TYPE leadq_%s %s\nleadq_%s %s", name, help, name, kind, name,
        tostring(value))
    end
    put("status_changes_total", "counter", "status or grade changes recorded", ob:metric("status_changes"))
    put("reaction_errors_total", "counter", "changes whose reaction could not be stored", ob:metric("reaction_errors"))
    put("delivery_seconds_total", "counter", "time spent in deliveries", ob:metric("delivery_ms") / 1000)
    put("sla_breaches_total", "counter", "hand-offs not accepted within the SLA", ob:metric("sla_breaches"))
    put("recycles_total", "counter", "leads sent back to nurture by recycling", ob:metric("recycles"))
    put("answers_total", "counter", "score answers (events, profile updates, reads)", ob:metric("answers"))
    ngx.print(ob:metrics_lines(extra))
    return
  end
  if what == "transitions" then   -- GET [?after=N]: the log as CSV; POST ?forget=N drops rows up to N
    if ngx.req.get_method() == "POST" then
      local upto = tonumber(ngx.var.arg_forget)
      if not upto then
        ngx.status = 400
        ngx.say('{"error":"POST /.leadq/transitions?forget=N (the X-Leadq-Last-Row of an export)"}')
        return
      end
      ngx.say(json.encode({ forgotten = current:forget_transitions(upto) }))
      return
    end
    local text, last = current:transitions_csv(tonumber(ngx.var.arg_after))
    ngx.header["Content-Type"] = "text/csv"
    ngx.header["X-Leadq-Last-Row"] = tostring(last)
    ngx.print(text)
    return
  end
  if what == "accept" then   -- POST /.leadq/accept?lead=ID
    local id = ngx.var.arg_lead
    local done, aerr = false, "POST /.leadq/accept?lead=ID"
    if ngx.req.get_method() == "POST" and id then done, aerr = current:accept(id, ngx.now()) end
    if not done then ngx.status = 400 end
    ngx.say(json.encode(done and { accepted = id } or { error = aerr }))
    return
  end
  if ngx.req.get_method() == "POST" and ngx.var.arg_pause then   -- hold deliveries (a receiver's maintenance)
    local seconds = tonumber(ngx.var.arg_pause)
    if not seconds or seconds <= 0 then
      ngx.status = 400
      ngx.say('{"error":"POST /.leadq/outbox?pause=SECONDS"}')
      return
    end
    ob.store:set(LEASE, "paused", seconds)
    ngx.say(json.encode({ paused = seconds }))
    return
  end
  if ngx.req.get_method() == "POST" and ngx.var.arg_resume then
    if ob.store:get(LEASE) == "paused" then ob.store:delete(LEASE) end
    ngx.say('{"resumed":true}')
    return
  end
  if ngx.req.get_method() == "POST" then
    local which = ngx.var.arg_replay
    local n = which ~= "all" and tonumber(which) or nil
    if which ~= "all" and not n then
      ngx.status = 400
      ngx.say('{"error":"POST /.leadq/outbox?replay=N or ?replay=all"}')
      return
    end
    ngx.say(json.encode({ replayed = ob:replay(n) }))
    return
  end
  ngx.say(json.encode({ waiting = ob:size(), dead_letters = ob:dead_letters() }))
end

function _M.current()
  return current
end

return _M
