-- leadq.accounts: leads grouped into accounts, duplicate leads merged, and account rollups (in C).
--
--   accounts.normalize_email(s)   -> "jane.doe@acme.com" | nil   (lowercase, trimmed; gmail dots and
--                                    every "+tag" removed from the local part)
--   accounts.normalize_domain(s)  -> "acme.com" | nil   (from a domain, a URL or an e-mail address)
--   accounts.free_domains(list or path) -> set | nil, message
--   accounts.map(leads [, options]) -> map table (one row per lead: account, account_source), report
--       options: account_id = column (default "account_id" when present), email = column ("email"),
--                email_domain = column ("email_domain"), website = column ("website" when present),
--                free_domains = list or path (default rules/lists/free_email_domains.txt)
--       An account id wins, then the e-mail's domain, then the website's; a personal domain
--       (gmail.com...) never forms an account: such a lead has no account (missing).
--   accounts.dedupe(leads [, events] [, options]) -> leads, events, merges
--       Leads with the same normalized e-mail are one person. policy = "earliest_created" (the one
--       declared policy): the lead created first is kept (missing created_at counts as latest; ties:
--       the first row), the others' events are moved to it. merges = { { kept =, merged =, email =,
--       kept_row =, merged_row = }, ... }, one per merged lead, and merges.count. The new tables are
--       copied in C (core.dedupe_tables); the events' id column must be a category (read_events').
--   accounts.personas(leads, personas) -> table with one number column `personas`: bit i-1 set when
--       the lead matches the i-th persona (names in sorted order). personas = { name = condition }
--       with the rule scripts' `when` syntax (title, seniority, department ...), run by the C engine.
--   accounts.rollup(sources, options) -> leadq.Table, one row per account (in C, core.account_rollup)
--       sources: a leadq table or a list of them, row-aligned (leads, map, scores, personas ...)
--       options: account = "account", score = column (required), top_k = 3, engaged_at = number
--                (a contact is engaged at this score or more; default 0), personas = { name =
--                condition } (computed from the sources), id = column naming contacts (default "id"
--                when present), carry = { columns } (firmographics: the first contact's value)
--       columns: account, contacts, scored_contacts, engaged_contacts, score_sum, score_max, top_sum,
--                top_mean, best_contact, personas_present, personas_engaged, <persona>_present,
--                <persona>_engaged per persona, then the carried columns.
--   accounts.build(leads, results, options) -> accounts table, map, map report: map + rollup with
--       the defaults rules/aql.lua expects (PERSONAS, engaged at 40, top 3, firmographics carried)
--   accounts.dimension(leads, map [, id]) -> table for funnel f:join(t, id): by = { "account" }
--   accounts.contacts(sources, account, options) -> { { row =, id =, score =, engaged =, personas = }, ... }
--       an account's contacts, best score first (what explain shows).
--   accounts.explain(model, accounts_tbl, row, sources, options [, events, score_options])
--       -> the model's explanation of the account, plus `contacts`; tostring gives both.
local core = require("leadq.core")
local dsl = require("leadq.dsl")
local util = require("leadq.util")
local raise, check_options = util.raise, util.check_options   -- errors in the caller's terms

local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, tostring, error, setmetatable = type, pairs, ipairs, tostring, error, setmetatable
local format, lower = string.format, string.lower
local concat, sort = table.concat, table.sort

local DEFAULT_FREE = "rules/lists/free_email_domains.txt"

-- The shipped free-domain list, found from this file's place, not from the current folder (which
-- failed --accounts and funnel --by account anywhere but the repository's root): rules/ beside
-- lua/ in a source tree, leadq/rules/ beside the installed modules.
local function shipped_free_list()
  local source = debug.getinfo(1, "S").source
  local here = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)/[^/]*$") or "."
  for _, path in ipairs({ here .. "/rules/lists/free_email_domains.txt",
                          here .. "/../../rules/lists/free_email_domains.txt" }) do
    local f = io.open(path, "r")
    if f then
      f:close()
      return path
    end
  end
  return DEFAULT_FREE
end
local GMAIL = { ["gmail.com"] = true, ["googlemail.com"] = true }
local ENGAGED_AT = 40        -- default engaged contact: between the MQL model's nurture (30) and MQL (60)
_M.ENGAGED_AT = ENGAGED_AT


local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

function _M.normalize_email(s)
  if type(s) ~= "string" then return nil end
  s = lower(trim(s))
  local loc, domain = s:match("^([^@%s]+)@([^@%s]+)$")
  if not loc then return nil end
  domain = domain:gsub("%.$", "")
  loc = loc:gsub("%+.*$", "")
  if GMAIL[domain] then
    loc = loc:gsub("%.", "")
    domain = "gmail.com"
  end
  if loc == "" or domain == "" then return nil end
  return loc .. "@" .. domain
end

function _M.normalize_domain(s)
  if type(s) ~= "string" then return nil end
  s = lower(trim(s))
  s = s:gsub("^[%a][%w+.-]*://", "")      -- scheme
  s = s:gsub("^[^/]*@", "")               -- an e-mail address (or user@ of a URL)
  s = s:gsub("[/?#].*$", ""):gsub(":%d*$", ""):gsub("%.$", "")
  s = s:gsub("^www%d*%.", "")
  if s == "" or not s:find(".", 1, true) or s:find("[^%w.-]") then return nil end
  return s
end

function _M.free_domains(list)
  if list == nil then list = shipped_free_list() end
  local set = {}
  if type(list) == "string" then
    local f, err = io.open(list, "r")
    if not f then return nil, format("cannot read the free-domain list: %s", tostring(err)) end
    for line in f:lines() do
      line = trim(line:gsub("#.*$", ""))
      if line ~= "" then set[lower(line)] = true end
    end
    f:close()
  elseif type(list) == "table" then
    for _, d in ipairs(list) do set[lower(trim(tostring(d)))] = true end
    for k, v in pairs(list) do if type(k) == "string" and v then set[lower(k)] = true end end
  else
    error("free_domains: expects a list of domains or the path of a file, got " .. type(list), 2)
  end
  return set
end

local function column_or_nil(tbl, name)
  if name and tbl:has(name) then return tbl:column(name) end
  return nil
end

local MAP_OPTIONS = { account_id = true, email = true, email_domain = true, website = true, free_domains = true }

function _M.map(leads, options)
  if not core.is_table(leads) then error("map: expects a leadq table of leads, got " .. type(leads), 2) end
  options = check_options(options, MAP_OPTIONS, "map")
  for _, k in ipairs({ "account_id", "email", "email_domain", "website" }) do
    local v = options[k]
    if v ~= nil and type(v) ~= "string" then error(format("map: %s must be a column name, got %s", k, type(v)), 2) end
    if v ~= nil and not leads:has(v) then
      error(format("map: no column '%s' in the leads%s", v, util.did_you_mean(v, leads:names())), 2)
    end
  end
  local free, err = _M.free_domains(options.free_domains)
  if not free then return nil, err end
  local ids = column_or_nil(leads, options.account_id or "account_id")
  local emails = column_or_nil(leads, options.email or "email")
  local domains = column_or_nil(leads, options.email_domain or "email_domain")
  local sites = column_or_nil(leads, options.website or "website")
  local n = #leads
  local records = {}
  local report = { leads = n, account_id = 0, email = 0, website = 0, personal = 0, none = 0 }
  local cache = {}                       -- raw domain text -> normalized domain or false
  local function domain_of(raw)
    local d = cache[raw]
    if d == nil then
      d = _M.normalize_domain(raw) or false
      cache[raw] = d
    end
    return d
  end
  for i = 1, n do
    local account, source, personal
    local id = ids and ids[i]
    if id ~= nil and trim(tostring(id)) ~= "" then
      account, source = trim(tostring(id)), "account_id"
    else
      local raw = emails and emails[i]
      -- the part after '@' first: addresses are all different, their domains mostly not (cache hits)
      if raw ~= nil then raw = raw:match("@([^@]*)$") or raw end
      if raw == nil and domains then raw = domains[i] end
      local d = raw and domain_of(raw)
      if d and free[d] then personal, d = true, nil end
      if d then
        account, source = d, "email"
      else
        d = sites and sites[i] and domain_of(sites[i])
        if d and free[d] then personal, d = true, nil end
        if d then account, source = d, "website" end
      end
    end
    if source then
      report[source] = report[source] + 1
    elseif personal then
      report.personal = report.personal + 1
    else
      report.none = report.none + 1
    end
    records[i] = { account = account, account_source = source }
  end
  return core.table(records, { account = "category", account_source = "category" }), report
end

local DEDUPE_OPTIONS = { email = true, created = true, id = true, policy = true, event_id = true }
local POLICIES = { "earliest_created" }

function _M.dedupe(leads, events, options)
  if not core.is_table(leads) then error("dedupe: expects a leadq table of leads, got " .. type(leads), 2) end
  if options == nil and type(events) == "table" and not core.is_table(events) then events, options = nil, events end
  if events ~= nil and not core.is_table(events) then
    error("dedupe: events must be a leadq table, got " .. type(events), 2)
  end
  options = check_options(options, DEDUPE_OPTIONS, "dedupe")
  local policy = options.policy or "earliest_created"
  if policy ~= "earliest_created" then
    error(format("dedupe: unknown policy '%s'%s", tostring(policy), util.did_you_mean(tostring(policy), POLICIES)), 2)
  end
  local email_col, created_col, id_col = options.email or "email", options.created or "created_at", options.id or "id"
  local event_id = options.event_id or "lead_id"
  for _, c in ipairs({ email_col, id_col }) do
    if not leads:has(c) then
      error(format("dedupe: no column '%s' in the leads%s", c, util.did_you_mean(c, leads:names())), 2)
    end
  end
  local emails, ids = leads:column(email_col), leads:column(id_col)
  local created = leads:has(created_col) and leads:column(created_col) or {}
  local n = #leads
  local first = {}                        -- normalized e-mail -> row kept so far
  local keep_of = {}                      -- merged row -> the row it merges into
  local normalized = {}
  for i = 1, n do
    local e = _M.normalize_email(emails[i])
    normalized[i] = e
    if e then
      local k = first[e]
      if k == nil then
        first[e] = i
      else
        local ck, ci = created[k], created[i]
        if ci ~= nil and (ck == nil or ci < ck) then first[e] = i end   -- i was created first
      end
    end
  end
  -- each e-mail's survivor is now first[e]; every other row of that e-mail merges into it
  for i = 1, n do
    local e = normalized[i]
    if e and first[e] ~= i then keep_of[i] = first[e] end
  end
  local merges = {}
  for r = 1, n do
    local k = keep_of[r]
    if k then
      merges[#merges + 1] = { kept = ids[k], merged = ids[r], email = normalized[r], kept_row = k, merged_row = r }
    end
  end
  merges.count = #merges
  if #merges == 0 then return leads, events, merges end
  if events ~= nil and not events:has(event_id) then
    error(format("dedupe: no column '%s' in the events", event_id), 2)
  end
  -- the copies in C, a column at a time: the kept leads, and the events' ids moved to the survivors
  local rows, from, to = {}, {}, {}
  for i, m in ipairs(merges) do rows[i], from[i], to[i] = m.merged_row, tostring(m.merged), tostring(m.kept) end
  if events == nil then return (core.dedupe_tables(leads, rows)), nil, merges end
  local out_leads, out_events = core.dedupe_tables(leads, rows, events, event_id, from, to)
  return out_leads, out_events, merges
end

local function persona_names(personas)
  local names = {}
  for name in pairs(personas) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      raise(format("personas: a persona's name must be a word like 'decision_maker', got '%s'", tostring(name)))
    end
    names[#names + 1] = name
  end
  sort(names)
  if #names > 32 then raise("personas: at most 32 personas") end
  return names
end

-- Each persona is a rule worth 2^(i-1) points with no group: the total is the lead's bit mask.
local function persona_model(personas)
  local names = persona_names(personas)
  local rules = {}
  for i, name in ipairs(names) do
    rules[i] = dsl.rule(name) { label = name, points = 2 ^ (i - 1), when = personas[name] }
  end
  return require("leadq.model").from_table(dsl.model "personas" { rules = rules }), names
end

local function personas_of(sources, personas)
  local m, names = persona_model(personas)
  local merged = sources[1]
  local res, err = m:score(merged)
  if not res then raise("personas: " .. tostring(err)) end
  local totals = res:column("total")
  local recs = {}
  for i = 1, #merged do recs[i] = { personas = totals[i] } end
  return core.table(recs, { personas = "number" }), names
end

function _M.personas(leads, personas)
  if not core.is_table(leads) then error("personas: expects a leadq table of leads, got " .. type(leads), 2) end
  if type(personas) ~= "table" then error("personas: expects { name = condition, ... }, got " .. type(personas), 2) end
  return (personas_of({ leads }, personas))
end

local ROLLUP_OPTIONS = { account = true, score = true, top_k = true, engaged_at = true, personas = true, id = true,
                         carry = true }

local function source_list(sources, fname)
  if core.is_table(sources) then return { sources } end
  if type(sources) ~= "table" or #sources == 0 then
    raise(fname .. ": expects a leadq table or a list of them (leads, map, scores ...)")
  end
  for i, t in ipairs(sources) do
    if not core.is_table(t) then raise(format("%s: source %d is not a leadq table", fname, i)) end
    if #t ~= #sources[1] then raise(format("%s: source %d has %d rows, not %d", fname, i, #t, #sources[1])) end
  end
  return sources
end

local function find_source(sources, name)
  for _, t in ipairs(sources) do if t:has(name) then return t end end
  return nil
end

local function all_names(sources)
  local names = {}
  for _, t in ipairs(sources) do for _, n in ipairs(t:names()) do names[#names + 1] = n end end
  return names
end

local function need_column(sources, name, what, fname)
  if type(name) ~= "string" then raise(format("%s: %s must be a column name, got %s", fname, what, type(name))) end
  local t = find_source(sources, name)
  if not t then
    raise(format("%s: no column '%s' (%s)%s", fname, name, what, util.did_you_mean(name, all_names(sources))))
  end
  return t
end

function _M.rollup(sources, options)
  sources = source_list(sources, "rollup")
  options = check_options(options, ROLLUP_OPTIONS, "rollup")
  local account = options.account or "account"
  local acc_tbl = need_column(sources, account, "account", "rollup")
  if acc_tbl:type(account) ~= "category" then
    error(format("rollup: column '%s' must be a category, not %s", account, acc_tbl:type(account)), 2)
  end
  if options.score == nil then error("rollup: missing option 'score' (the column of contact scores)", 2) end
  local score_tbl = need_column(sources, options.score, "score", "rollup")
  if score_tbl:type(options.score) ~= "number" then
    error(format("rollup: column '%s' must be a number, not %s", options.score, score_tbl:type(options.score)), 2)
  end
  local top_k = options.top_k or 3
  if type(top_k) ~= "number" or top_k < 1 or top_k > 64 or top_k % 1 ~= 0 then
    error("rollup: top_k must be a whole number from 1 to 64, got " .. tostring(top_k), 2)
  end
  local engaged_at = options.engaged_at or 0
  if type(engaged_at) ~= "number" then error("rollup: engaged_at must be a number, got " .. type(engaged_at), 2) end
  local id = options.id
  if id == nil then id = find_source(sources, "id") and "id" or nil else need_column(sources, id, "id", "rollup") end
  local carry = options.carry or {}
  if type(carry) ~= "table" then error("rollup: carry must be a list of column names, got " .. type(carry), 2) end
  for _, c in ipairs(carry) do need_column(sources, c, "carry", "rollup") end
  local list, names = sources, {}
  if options.personas ~= nil then
    if type(options.personas) ~= "table" then
      error("rollup: personas must be { name = condition, ... }, got " .. type(options.personas), 2)
    end
    local ptbl
    ptbl, names = personas_of(sources, options.personas)
    list = {}
    for i, t in ipairs(sources) do list[i] = t end
    list[#list + 1] = ptbl
  end
  return core.account_rollup(list, { account = account, score = options.score, top_k = top_k,
    engaged_at = engaged_at, personas = options.personas and "personas" or nil, persona_names = names, id = id,
    carry = carry })
end

local CONTACT_OPTIONS = { account = true, score = true, id = true, engaged_at = true, limit = true }

function _M.contacts(sources, account, options)
  sources = source_list(sources, "contacts")
  options = check_options(options, CONTACT_OPTIONS, "contacts")
  local acc_name = options.account or "account"
  local accs = need_column(sources, acc_name, "account", "contacts"):column(acc_name)
  local scores = options.score and need_column(sources, options.score, "score", "contacts"):column(options.score)
  local id = options.id or (find_source(sources, "id") and "id")
  local ids = id and need_column(sources, id, "id", "contacts"):column(id)
  local list = {}
  for i = 1, #sources[1] do
    if accs[i] == account then
      local s = scores and scores[i]
      local engaged
      if options.engaged_at ~= nil then engaged = s ~= nil and s >= options.engaged_at end
      list[#list + 1] = { row = i, id = ids and ids[i], score = s, engaged = engaged }
    end
  end
  sort(list, function(a, b)
    local sa, sb = a.score or -math.huge, b.score or -math.huge
    if sa ~= sb then return sa > sb end
    return a.row < b.row
  end)
  if options.limit then for i = #list, options.limit + 1, -1 do list[i] = nil end end
  return list
end

-- The buying committee of rules/aql.lua, in the rule scripts' condition syntax. Values as the
-- generator and most CRMs spell them (seniority c_level, vp, director...; department lowercase);
-- conditions are case-insensitive.
_M.PERSONAS = {
  decision_maker = { any = {
    { seniority = { one_of = { "c_level", "vp" } } },
    { title = { word = { "ceo", "cfo", "cto", "cmo", "cro", "coo", "chief", "vp", "vice president", "founder",
                         "owner" } } },
  } },
  champion = { seniority = { one_of = { "director", "manager" } },
               department = { one_of = { "marketing", "sales", "operations" } } },
  technical_evaluator = { any = {
    { department = { one_of = { "it", "engineering", "product" } } },
    { title = { word = { "architect", "engineer", "developer", "cto", "cio" } } },
  } },
  finance = { any = {
    { department = "finance" },
    { title = { word = { "cfo", "controller", "procurement", "purchasing", "finance" } } },
  } },
}

local BUILD_OPTIONS = { score = true, engaged_at = true, top_k = true, personas = true, carry = true, map = true,
                        id = true }

-- Leads and their scores -> the accounts table that rules/aql.lua reads, and the map (per lead).
-- options: score (required: the lead score column of `results`), engaged_at (40), top_k (3),
-- personas (PERSONAS; those whose fields the leads lack are left out), carry (employees, industry,
-- country: those present), map (options of accounts.map), id.
function _M.build(leads, results, options)
  if not core.is_table(leads) then error("build: expects a leadq table of leads, got " .. type(leads), 2) end
  if not core.is_table(results) then error("build: expects the leads' results table, got " .. type(results), 2) end
  options = check_options(options, BUILD_OPTIONS, "build")
  local map, report = _M.map(leads, options.map)
  if not map then return nil, report end
  local personas = options.personas
  if personas == nil then
    personas = {}
    local has = { title = leads:has("title"), seniority = leads:has("seniority"), department = leads:has("department") }
    local need = { decision_maker = has.seniority and has.title, champion = has.seniority and has.department,
                   technical_evaluator = has.department and has.title, finance = has.department and has.title }
    for name, cond in pairs(_M.PERSONAS) do if need[name] then personas[name] = cond end end
  end
  local carry = options.carry
  if carry == nil then
    carry = {}
    for _, c in ipairs({ "employees", "industry", "country" }) do
      if leads:has(c) and leads:type(c) ~= "tags" then carry[#carry + 1] = c end
    end
  end
  local acc = _M.rollup({ leads, map, results }, { score = options.score, engaged_at = options.engaged_at or ENGAGED_AT,
    top_k = options.top_k or 3, personas = personas, carry = carry, id = options.id })
  return acc, map, report
end

local AccountExplanation = {}
AccountExplanation.__index = AccountExplanation
AccountExplanation.__tostring = function(self)
  local lines = { tostring(self.model) }
  lines[#lines + 1] = format("contacts of %s (best first):", tostring(self.account))
  for _, c in ipairs(self.contacts) do
    lines[#lines + 1] = format("  %s  %s%s", tostring(c.id or ("row " .. c.row)),
      c.score == nil and "no score" or tostring(c.score), c.engaged and "  engaged" or "")
  end
  return concat(lines, "\n")
end

-- The account model's explanation (rules and points) with the contacts behind the rollup.
function _M.explain(model, accounts_tbl, row, sources, options, events, score_options)
  if not core.is_table(accounts_tbl) then
    error("explain: expects the accounts table, got " .. type(accounts_tbl), 2)
  end
  local rec = accounts_tbl:row(row)
  if not rec then error(format("explain: no row %s in the accounts table", tostring(row)), 2) end
  local ex = model:explain(accounts_tbl, row, events, score_options)
  local contacts = _M.contacts(sources, rec.account, options)
  return setmetatable({ model = ex, account = rec.account, contacts = contacts, total = ex.total,
                        status = ex.status, rules = ex.rules }, AccountExplanation)
end

-- The funnel by account: a table of the leads' id and account (plus the leads' category and boolean
-- columns, so one join gives every dimension) for f:join(tbl, id); then f:aggregate{ by = { "account" } }.
function _M.dimension(leads, map, id)
  if not core.is_table(leads) or not core.is_table(map) then
    error("dimension: expects the leads and their account map (accounts.map), as leadq tables", 2)
  end
  if #leads ~= #map then error(format("dimension: the map has %d rows, the leads %d", #map, #leads), 2) end
  id = id or "id"
  if type(id) ~= "string" then error("dimension: id must be a column name, got " .. type(id), 2) end
  if not leads:has(id) then error(format("dimension: no column '%s' in the leads%s", id, util.did_you_mean(id,
    leads:names())), 2) end
  local schema, cols = { [id] = leads:type(id), account = "category", account_source = "category" }, {}
  for _, c in ipairs(leads:schema()) do
    if c.name ~= id and c.name ~= "account" and c.name ~= "account_source"
        and (c.type == "category" or c.type == "boolean") then
      schema[c.name] = c.type
      cols[c.name] = leads:column(c.name)
    end
  end
  cols[id] = leads:column(id)
  cols.account, cols.account_source = map:column("account"), map:column("account_source")
  local recs = {}
  for i = 1, #leads do
    local r = {}
    for name, values in pairs(cols) do r[name] = values[i] end
    recs[i] = r
  end
  return core.table(recs, schema)
end

return _M
