-- leadq.reactions: what happens when a lead's status or grade changes, declared in a Lua script
-- beside the rules (rules/reactions.lua is the shipped example) and loaded in the rules' sandbox.
--
--   webhook "crm" { url = "http://127.0.0.1:8080/hooks", secret_env = "LEADQ_WEBHOOK_SECRET" }
--   on { model = "mql", to = "mql", webhook = "crm", assign = true, transition = "mql" }
--   on { model = "mql", grade = true, webhook = "crm" }            -- any grade change
--   team "emea" { owners = { "anna", "ben" }, capacity = 40 }      -- or owners = { anna = 40, ben = 20 }
--   route { when = { country = { one_of = { "DE", "FR" } } }, team = "emea", why = "EMEA territory" }
--   route { account_owner = "account_owner" }                      -- the lead's account has an owner
--   sla { accept_within_hours = 24, working_hours = { from = 9, to = 17, days = { "mon", ..., "fri" },
--         zone = "Europe/Paris" }, webhook = "manager" }        -- zone: IANA name, "UTC" or "+02:00"
--   recycle { not_accepted_days = 14, not_progressing_days = 45, reason = "...", reset_engagement = true }
--
-- Every mistake comes back as "file:line: what: sentence", as the rules' do. The loaded object
-- decides (changes -> actions), routes (record -> owner, team, why), times the SLA (working hours)
-- and says when a lead is due back to nurture; delivery is the outbox's (leadq.outbox).
local dsl = require("leadq.dsl")
local core = require("leadq.core")

local type, pairs, ipairs, next, tostring, error, setmetatable = type, pairs, ipairs, next, tostring, error,
  setmetatable
local format, concat, sort = string.format, table.concat, table.sort
local debug_getinfo = debug.getinfo

local _M = { _VERSION = "0.1.0" }

local DAY, HOUR = 86400, 3600
local DAY_NAMES = { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6 }
local DAY_LIST = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" }
local TESTS = { "equals", "not_equals", "one_of", "not_one_of", "at_least", "at_most", "present", "missing" }

-- The names a reactions script may call, with the keys each takes.
local KEYS = {
  webhook = { "url", "secret_env", "timeout", "tls_verify", "description" },
  on = { "model", "from", "to", "grade", "webhook", "assign", "transition", "description" },
  team = { "owners", "capacity", "description" },
  route = { "when", "team", "owner", "account_owner", "why" },
  sla = { "accept_within_hours", "working_hours", "webhook", "description" },
  recycle = { "not_accepted_days", "not_progressing_days", "reason", "reset_engagement", "webhook", "description" },
}
local NAMES = { "webhook", "on", "team", "route", "sla", "recycle" }

local function where(level)
  local info = debug_getinfo(level + 1, "Sl")
  if not info then return 0 end
  return info.currentline or 0
end

-- Whether a file is a reactions script rather than a model: it calls one of the reactions'
-- constructors at the start of a line (what `leadq check` uses to tell them apart).
function _M.is_reactions_text(text)
  if type(text) ~= "string" then return false end
  if text:find("^model%s*[%({\"']") or text:find("\nmodel%s*[%({\"']") then return false end
  for _, name in ipairs(NAMES) do
    if text:find("\n" .. name .. "%s*[{\"']") or text:find("^" .. name .. "%s*[{\"']") then return true end
  end
  return false
end

local read_file = require("leadq.util").read_file

function _M.is_reactions_file(path)
  return _M.is_reactions_text(read_file(path))
end

---------------------------------------------------------------------------------------------------
-- Loading: constructors record what they were given and where; validation follows.
---------------------------------------------------------------------------------------------------

local function environment(declared)
  local env = dsl.environment()
  local function record(kind, name, body, line)
    declared[#declared + 1] = { kind = kind, name = name, body = body, line = line }
  end
  for _, kind in ipairs({ "on", "route", "sla", "recycle" }) do
    env[kind] = function(body, extra)
      local line = where(2)
      if extra ~= nil or type(body) ~= "table" then
        record(kind, nil, false, line)
      else
        record(kind, nil, body, line)
      end
    end
  end
  for _, kind in ipairs({ "webhook", "team" }) do
    env[kind] = function(name)
      local line = where(2)
      if type(name) ~= "string" then
        record(kind, false, type(name) == "table" and name or false, line)
        return
      end
      return function(body)
        record(kind, name, type(body) == "table" and body or false, line)
      end
    end
  end
  -- A constructor of model scripts here is a mistake the message should name.
  for _, name in ipairs({ "model", "rule", "disqualify", "feature", "list", "file" }) do
    env[name] = function()
      error(format("'%s' belongs in a model's rule script, not in a reactions script (%s)", name,
        concat(NAMES, ", ")), 2)
    end
  end
  return env
end

local function new_report(path)
  local r = { path = path, problems = {} }
  function r.add(line, what, msg, ...)
    r.problems[#r.problems + 1] = format("%s:%d: %s: ", path, line or 0, what) .. format(msg, ...)
  end
  return r
end

local function check_keys(report, d, what)
  local known = {}
  for _, k in ipairs(KEYS[d.kind]) do known[k] = true end
  local bad = {}
  for k in pairs(d.body) do
    if not known[k] then bad[#bad + 1] = tostring(k) end
  end
  sort(bad)
  for _, k in ipairs(bad) do
    report.add(d.line, what, "unknown key '%s'%s (expected %s)", k, dsl.did_you_mean(k, KEYS[d.kind]),
      concat(KEYS[d.kind], ", "))
  end
end

local function positive(v) return type(v) == "number" and v == v and v > 0 and v < 1e9 end

local function valid_condition(report, line, what, when)
  if type(when) ~= "table" then
    report.add(line, what, "'when' must be a table of field = value or field = { test = value }")
    return
  end
  for field, test in pairs(when) do
    if type(field) ~= "string" then
      report.add(line, what, "'when': a field name must be a string")
    elseif type(test) == "table" then
      local n = 0
      for k, v in pairs(test) do
        n = n + 1
        local ok = false
        for _, t in ipairs(TESTS) do if k == t then ok = true end end
        if not ok then
          report.add(line, what, "'when.%s': unknown test '%s'%s (expected %s)", field, tostring(k),
            dsl.did_you_mean(tostring(k), TESTS), concat(TESTS, ", "))
        elseif (k == "one_of" or k == "not_one_of") and (type(v) ~= "table" or #v == 0) then
          report.add(line, what, "'when.%s.%s' must be a list of values", field, k)
        elseif (k == "at_least" or k == "at_most") and type(v) ~= "number" then
          report.add(line, what, "'when.%s.%s' must be a number", field, k)
        end
      end
      if n ~= 1 then report.add(line, what, "'when.%s' must hold exactly one test", field) end
    elseif type(test) ~= "string" and type(test) ~= "number" and type(test) ~= "boolean" then
      report.add(line, what, "'when.%s' must be a value or { test = value }", field)
    end
  end
end

local function webhook_list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end

-- The declarations, validated: the object, or nil and every problem.
local function validate(declared, path)
  local report = new_report(path)
  local self = { path = path, webhooks = {}, reactions = {}, teams = {}, routes = {}, sla = nil, recycle = nil }
  local webhook_refs = {}
  for _, d in ipairs(declared) do
    local what = d.kind .. (type(d.name) == "string" and (" '" .. d.name .. "'") or "")
    if d.name == false then
      report.add(d.line, d.kind, "expected %s \"name\" { ... }", d.kind)
    elseif d.body == false then
      if d.name then
        report.add(d.line, what, "expected %s \"%s\" { ... } (a table)", d.kind, d.name)
      else
        report.add(d.line, d.kind, "expected %s { ... } (one table)", d.kind)
      end
    else
      check_keys(report, d, what)
      local b = d.body
      if d.kind == "webhook" then
        if self.webhooks[d.name] then
          report.add(d.line, what, "declared twice (first at line %d)", self.webhooks[d.name].line)
        end
        local url = b.url
        if type(url) ~= "string" or not url:find("^https?://[^/%s]+") then
          report.add(d.line, what, "'url' must be an http:// or https:// address, got %s", tostring(url))
        end
        if b.secret_env ~= nil and (type(b.secret_env) ~= "string" or not b.secret_env:find("^[%a_][%w_]*$")) then
          report.add(d.line, what, "'secret_env' must name an environment variable")
        end
        if b.timeout ~= nil and not positive(b.timeout) then
          report.add(d.line, what, "'timeout' must be a positive number of seconds")
        end
        -- an https server's certificate is checked unless this says false, in so many words
        if b.tls_verify ~= nil and b.tls_verify ~= false and b.tls_verify ~= true then
          report.add(d.line, what,
            "'tls_verify' must be true or false (false: the receiver's certificate is not checked)")
        end
        if b.tls_verify == false and type(url) == "string" and not url:find("^https://") then
          report.add(d.line, what, "'tls_verify' applies to an https:// url only")
        end
        self.webhooks[d.name] = { name = d.name, url = url, secret_env = b.secret_env, timeout = b.timeout or 5,
          tls_verify = b.tls_verify ~= false, line = d.line }
      elseif d.kind == "on" then
        if type(b.model) ~= "string" then
          report.add(d.line, what, "'model' is required (the model's name, e.g. \"mql\")")
        end
        if b.to == nil and b.from == nil and not b.grade then
          report.add(d.line, what, "say what changes: 'to' (a status), 'from' (a status) or grade = true")
        end
        for _, k in ipairs({ "from", "to", "transition" }) do
          if b[k] ~= nil and type(b[k]) ~= "string" then report.add(d.line, what, "'%s' must be a status name", k) end
        end
        for _, k in ipairs({ "grade", "assign" }) do
          if b[k] ~= nil and type(b[k]) ~= "boolean" then report.add(d.line, what, "'%s' must be true or false", k) end
        end
        local hooks = webhook_list(b.webhook)
        if type(hooks) ~= "table" then
          report.add(d.line, what, "'webhook' must be a webhook's name or a list of them")
          hooks = {}
        end
        for _, h in ipairs(hooks) do webhook_refs[#webhook_refs + 1] = { name = h, line = d.line, what = what } end
        if #hooks == 0 and not b.assign and not b.transition then
          report.add(d.line, what, "does nothing: give a webhook, assign = true or a transition")
        end
        self.reactions[#self.reactions + 1] = { model = b.model, from = b.from, to = b.to, grade = b.grade,
          webhooks = hooks, assign = b.assign or false, transition = b.transition, line = d.line }
      elseif d.kind == "team" then
        if self.teams[d.name] then
          report.add(d.line, what, "declared twice (first at line %d)", self.teams[d.name].line)
        end
        local owners, caps = {}, {}
        if type(b.owners) ~= "table" then
          report.add(d.line, what, "'owners' must be a list of names, or a table name = capacity")
        else
          if #b.owners > 0 then
            for _, o in ipairs(b.owners) do
              if type(o) ~= "string" then report.add(d.line, what, "'owners' must hold names (strings)") end
              owners[#owners + 1] = tostring(o)
              caps[tostring(o)] = b.capacity
            end
          else
            for o, c in pairs(b.owners) do
              if type(o) ~= "string" or not positive(c) then
                report.add(d.line, what, "'owners': each owner's capacity must be a positive number")
              end
              owners[#owners + 1] = tostring(o)
              caps[tostring(o)] = c
            end
            sort(owners)
          end
          if #owners == 0 then report.add(d.line, what, "'owners' is empty") end
        end
        if b.capacity ~= nil and not positive(b.capacity) then
          report.add(d.line, what, "'capacity' must be a positive number of open leads per owner")
        end
        self.teams[d.name] = { name = d.name, owners = owners, capacity = caps, line = d.line }
      elseif d.kind == "route" then
        local targets = (b.team ~= nil and 1 or 0) + (b.owner ~= nil and 1 or 0) + (b.account_owner ~= nil and 1 or 0)
        if targets ~= 1 then
          report.add(d.line, what, "give exactly one of 'team', 'owner' or 'account_owner'")
        end
        if b.when ~= nil then valid_condition(report, d.line, what, b.when) end
        if b.account_owner ~= nil and type(b.account_owner) ~= "string" and b.account_owner ~= true then
          report.add(d.line, what, "'account_owner' must be true or the name of the lead's account-owner field")
        end
        if b.owner ~= nil and type(b.owner) ~= "string" then report.add(d.line, what, "'owner' must be a name") end
        if b.why ~= nil and type(b.why) ~= "string" then report.add(d.line, what, "'why' must be a sentence") end
        self.routes[#self.routes + 1] = { when = b.when, team = b.team, owner = b.owner,
          account_owner = b.account_owner == true and "account_owner" or b.account_owner, why = b.why, line = d.line }
      elseif d.kind == "sla" then
        if self.sla then report.add(d.line, what, "declared twice (first at line %d)", self.sla.line) end
        if not positive(b.accept_within_hours) then
          report.add(d.line, what, "'accept_within_hours' must be a positive number of hours")
        end
        local wh = b.working_hours
        local days, from, to, zone, calendar
        if wh ~= nil then
          if type(wh) ~= "table" then
            report.add(d.line, what,
              "'working_hours' must be { from = 9, to = 17, days = { \"mon\", ... }, zone = \"Europe/Paris\" }")
            wh = {}
          end
          from, to = wh.from or 9, wh.to or 17
          if type(from) ~= "number" or type(to) ~= "number" or from < 0 or to > 24 or from >= to then
            report.add(d.line, what, "'working_hours': from and to must be hours with 0 <= from < to <= 24")
          end
          days = {}
          for _, name in ipairs(wh.days or { "mon", "tue", "wed", "thu", "fri" }) do
            local n = DAY_NAMES[name]
            if not n then
              report.add(d.line, what, "'working_hours.days': unknown day '%s'%s", tostring(name),
                dsl.did_you_mean(tostring(name), DAY_LIST))
            else
              days[n] = true
            end
          end
          for k in pairs(wh) do
            if k ~= "from" and k ~= "to" and k ~= "days" and k ~= "zone" then
              report.add(d.line, what, "'working_hours': unknown key '%s'%s (expected from, to, days, zone)",
                tostring(k), dsl.did_you_mean(tostring(k), { "from", "to", "days", "zone" }))
            end
          end
          -- the hours are the zone's wall clock (its daylight saving too): the C core reads tzdata
          zone = wh.zone or "UTC"
          if type(zone) ~= "string" then
            report.add(d.line, what, "'working_hours.zone' must be a time zone's name (e.g. \"Europe/Paris\")")
          elseif type(from) == "number" and type(to) == "number" and from >= 0 and to <= 24 and from < to then
            local mask = 0
            for n in pairs(days) do mask = mask + 2 ^ n end   -- a bit per weekday (LuaJIT has no '|')
            local made, zerr = core.calendar(zone, from, to, mask)
            if not made then report.add(d.line, what, "'working_hours.zone': %s", zerr) end
            calendar = made
          end
        end
        for _, h in ipairs(webhook_list(b.webhook)) do
          webhook_refs[#webhook_refs + 1] = { name = h, line = d.line, what = what }
        end
        self.sla = { hours = b.accept_within_hours, days = days, from = from, to = to, zone = zone,
          calendar = calendar, webhooks = webhook_list(b.webhook), line = d.line }
      elseif d.kind == "recycle" then
        if self.recycle then report.add(d.line, what, "declared twice (first at line %d)", self.recycle.line) end
        if b.not_accepted_days == nil and b.not_progressing_days == nil then
          report.add(d.line, what, "give 'not_accepted_days', 'not_progressing_days' or both")
        end
        for _, k in ipairs({ "not_accepted_days", "not_progressing_days" }) do
          if b[k] ~= nil and not positive(b[k]) then report.add(d.line, what, "'%s' must be a positive number", k) end
        end
        if b.reason ~= nil and type(b.reason) ~= "string" then report.add(d.line, what, "'reason' must be a string") end
        for _, h in ipairs(webhook_list(b.webhook)) do
          webhook_refs[#webhook_refs + 1] = { name = h, line = d.line, what = what }
        end
        self.recycle = { not_accepted_days = b.not_accepted_days, not_progressing_days = b.not_progressing_days,
          reason = b.reason, reset_engagement = b.reset_engagement == true, webhooks = webhook_list(b.webhook),
          line = d.line }
      end
    end
  end
  local hook_names = {}
  for name in pairs(self.webhooks) do hook_names[#hook_names + 1] = name end
  sort(hook_names)
  for _, ref in ipairs(webhook_refs) do
    if type(ref.name) ~= "string" or not self.webhooks[ref.name] then
      report.add(ref.line, ref.what, "unknown webhook '%s'%s (declared: %s)", tostring(ref.name),
        dsl.did_you_mean(tostring(ref.name), hook_names), #hook_names > 0 and concat(hook_names, ", ") or "none")
    end
  end
  local team_names = {}
  for name in pairs(self.teams) do team_names[#team_names + 1] = name end
  sort(team_names)
  for _, r in ipairs(self.routes) do
    if r.team ~= nil and not self.teams[r.team] then
      report.add(r.line, "route", "unknown team '%s'%s (declared: %s)", tostring(r.team),
        dsl.did_you_mean(tostring(r.team), team_names), #team_names > 0 and concat(team_names, ", ") or "none")
    end
  end
  for _, r in ipairs(self.reactions) do
    if r.assign and #self.routes == 0 then
      report.add(r.line, "on", "assign = true, but no route { ... } says who gets the lead")
    end
  end
  if #report.problems > 0 then return nil, report.problems end
  self.webhook_names = hook_names
  return setmetatable(self, _M.Reactions)
end

-- Loads a reactions script: the object, or nil and the problems (a list of "file:line: ..." strings).
function _M.load_string(text, path)
  if type(text) ~= "string" then
    error("bad argument #1 to 'load_string' (string expected, got " .. type(text) .. ")", 2)
  end
  path = path or "reactions"
  local declared = {}
  local ok, problem = dsl.run_sandboxed(text, path, environment(declared))
  if not ok then return nil, { problem } end
  if #declared == 0 then
    return nil, { format("%s:1: declares no reaction (expected %s)", path, concat(NAMES, ", ")) }
  end
  return validate(declared, path)
end

function _M.load(path)
  if type(path) ~= "string" then error("bad argument #1 to 'load' (string expected, got " .. type(path) .. ")", 2) end
  local text, err = read_file(path)
  if not text then
    return nil, { format("%s: cannot read the reactions script: %s", path, (tostring(err):gsub("^[^:]*: ", ""))) }
  end
  return _M.load_string(text, path)
end

-- check(path): true, or false and the problems (as leadq.check gives them for rule scripts).
function _M.check(path)
  local r, problems = _M.load(path)
  if r then return true end
  return false, problems
end

---------------------------------------------------------------------------------------------------
-- Deciding
---------------------------------------------------------------------------------------------------

local Reactions = {}
Reactions.__index = Reactions
_M.Reactions = Reactions

-- change: { model =, from =, to = (statuses), grade_from =, grade_to = }. The reactions that
-- apply, in declaration order: a list of { webhooks = {...}, assign =, transition =, line = }.
function Reactions:on_change(change)
  local out = {}
  local status_changed = change.from ~= change.to
  local grade_changed = change.grade_from ~= change.grade_to
  for _, r in ipairs(self.reactions) do
    if r.model == change.model then
      local hit
      if r.grade then
        hit = grade_changed
      else
        hit = status_changed and (r.to == nil or r.to == change.to) and (r.from == nil or r.from == change.from)
      end
      if hit then out[#out + 1] = r end
    end
  end
  return out
end

-- Whether any reaction listens to this model (the service checks only those).
function Reactions:watches(model)
  for _, r in ipairs(self.reactions) do
    if r.model == model then return true end
  end
  return false
end

local function value_text(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  return tostring(v)
end

-- Whether a record meets a route's condition, and why (a sentence), or nil.
local function condition_holds(when, record)
  if when == nil then return true, "every lead" end
  local said = {}
  local fields = {}
  for field in pairs(when) do fields[#fields + 1] = field end
  sort(fields)
  for _, field in ipairs(fields) do
    local test, v = when[field], record[field]
    if type(test) ~= "table" then
      if v ~= test then return nil end
      said[#said + 1] = field .. " is " .. value_text(test)
    else
      local k, arg = next(test)
      if k == "equals" then
        if v ~= arg then return nil end
        said[#said + 1] = field .. " is " .. value_text(arg)
      elseif k == "not_equals" then
        if v == arg then return nil end
        said[#said + 1] = field .. " is not " .. value_text(arg)
      elseif k == "one_of" or k == "not_one_of" then
        local found = false
        for _, x in ipairs(arg) do if x == v then found = true end end
        if found ~= (k == "one_of") then return nil end
        said[#said + 1] = format("%s %s one of %s", field, k == "one_of" and "is" or "is not",
          concat((function() local t = {} for i, x in ipairs(arg) do t[i] = tostring(x) end return t end)(), ", "))
      elseif k == "at_least" then
        if type(v) ~= "number" or v < arg then return nil end
        said[#said + 1] = format("%s is %s (at least %s)", field, tostring(v), tostring(arg))
      elseif k == "at_most" then
        if type(v) ~= "number" or v > arg then return nil end
        said[#said + 1] = format("%s is %s (at most %s)", field, tostring(v), tostring(arg))
      elseif k == "present" then
        if (v ~= nil and v ~= "") ~= (arg ~= false) then return nil end
        said[#said + 1] = field .. (arg ~= false and " is given" or " is missing")
      elseif k == "missing" then
        if (v == nil or v == "") ~= (arg ~= false) then return nil end
        said[#said + 1] = field .. (arg ~= false and " is missing" or " is given")
      end
    end
  end
  return true, concat(said, " and ")
end

-- A memory of owners' loads and each team's turn, for a run without a shared store.
function _M.memory_counters()
  local t = {}
  return {
    get = function(_, key) return t[key] end,
    incr = function(_, key, by, init)
      t[key] = (t[key] or init or 0) + by
      return t[key]
    end,
  }
end

-- Who gets a lead: owner, team (or nil), why (a sentence naming the route's line). counters: a
-- store with get(key) and incr(key, by, init) (an ngx.shared.DICT, or memory_counters()) holding
-- each owner's open leads and each team's turn. nil, why when no route takes the lead.
function Reactions:route(record, counters)
  counters = counters or self.counters
  if not counters then
    counters = _M.memory_counters()
    self.counters = counters
  end
  local passed = {}
  for _, r in ipairs(self.routes) do
    local holds, because = condition_holds(r.when, record)
    if holds then
      local where_ = format("%s:%d", self.path, r.line)
      local reason = r.why and (r.why .. ": " .. because) or because
      if r.owner then
        counters:incr("load:" .. r.owner, 1, 0)
        return r.owner, nil, format("owner %s by the route at %s (%s)", r.owner, where_, reason)
      elseif r.account_owner then
        local owner = record[r.account_owner]
        if type(owner) == "string" and owner ~= "" then
          counters:incr("load:" .. owner, 1, 0)
          return owner, nil, format("the account's owner %s (%s) by the route at %s", owner, r.account_owner, where_)
        end
        passed[#passed + 1] = format("%s: the lead's account has no owner", where_)
      else
        local team = self.teams[r.team]
        local owners, n = team.owners, #team.owners
        local turn = counters:incr("turn:" .. r.team, 1, 0)
        for k = 0, n - 1 do
          local owner = owners[(turn - 1 + k) % n + 1]
          local cap = team.capacity[owner]
          local load = counters:get("load:" .. owner) or 0
          if cap == nil or load < cap then
            counters:incr("load:" .. owner, 1, 0)
            return owner, r.team, format("team %s by the route at %s (%s); round-robin: %s, %d open lead%s%s",
              r.team, where_, reason, owner, load + 1, load == 0 and "" or "s",
              cap and format(" of %s", tostring(cap)) or "")
          end
        end
        passed[#passed + 1] = format("%s: every owner of team %s is at capacity", where_, r.team)
      end
    end
  end
  if #passed > 0 then return nil, nil, "no owner: " .. concat(passed, "; ") end
  return nil, nil, "no route takes the lead"
end

-- An owner's lead is closed (accepted elsewhere, recycled): one open lead less on its load.
function Reactions:release(owner, counters)
  counters = counters or self.counters
  if owner and counters then
    local n = counters:incr("load:" .. owner, -1, 0)
    if n and n < 0 then counters:incr("load:" .. owner, -n, 0) end
  end
end

-- The SLA's deadline for a hand-off at `at` (epoch seconds): accept_within_hours counted in
-- working hours (the zone's wall clock, daylight saving included) when declared, else in clock
-- hours; nil when no SLA is declared. The C core's calendar: the funnel times hand-offs with it too.
function Reactions:sla_deadline(at)
  local s = self.sla
  if not s then return nil end
  if not s.calendar then return at + s.hours * HOUR end
  return s.calendar:deadline(at, s.hours * HOUR)
end

-- The funnel's options for this SLA (leadq.funnel.new's sla_working), or nil when none is declared:
-- the funnel then counts the breaches the service times.
function Reactions:funnel_sla()
  local s = self.sla
  if not s then return nil end
  if not s.calendar then return { sla_days = s.hours / 24 } end
  return { sla_working = { hours = s.hours, calendar = s.calendar } }
end

-- Whether a lead handed off at `since` (in `stage`, accepted or not) is due back to nurture at `now`:
-- the reason, or nil.
function Reactions:recycle_due(stage, since, now, accepted)
  local r = self.recycle
  if not r or since == nil then return nil end
  local days = (now - since) / DAY
  if not accepted and r.not_accepted_days and days >= r.not_accepted_days then
    return r.reason or format("not accepted within %s days", tostring(r.not_accepted_days))
  end
  if r.not_progressing_days and days >= r.not_progressing_days then
    return r.reason or format("no progress from %s within %s days", tostring(stage), tostring(r.not_progressing_days))
  end
  return nil
end

-- A one-line summary per declaration (for `leadq check` and the REPL).
function Reactions:describe()
  local lines = {}
  for _, r in ipairs(self.reactions) do
    local when = r.grade and "grade changes" or format("status%s%s", r.from and (" from " .. r.from) or "",
      r.to and (" to " .. r.to) or "")
    local does = {}
    if #r.webhooks > 0 then does[#does + 1] = "webhook " .. concat(r.webhooks, ", ") end
    if r.assign then does[#does + 1] = "assign an owner" end
    if r.transition then does[#does + 1] = "transition " .. r.transition end
    lines[#lines + 1] = format("on %s %s: %s", r.model, when, concat(does, "; "))
  end
  local teams = 0
  for _ in pairs(self.teams) do teams = teams + 1 end
  lines[#lines + 1] = format("%d route%s, %d team%s, %d webhook%s%s%s", #self.routes, #self.routes == 1 and "" or "s",
    teams, teams == 1 and "" or "s", #self.webhook_names, #self.webhook_names == 1 and "" or "s",
    self.sla and format(", SLA %s hours", tostring(self.sla.hours)) or "",
    self.recycle and ", recycling" or "")
  return lines
end

return _M
