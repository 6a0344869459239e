-- `leadq state export|import|load`: the real-time service's leads (profiles and engagement states)
-- out of a store, into one, or computed from bulk data (lua/leadq/store.lua has the format).
--
-- Stores: redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N] (the Redis the
-- service uses, over TCP or its Unix socket), or http://127.0.0.1:PORT,
-- a running service's admin location /.leadq/state (its shared dict lives inside nginx: that location
-- is the way in; it serves a Redis store alike). The http store goes through curl.
local cli = require("leadq.cli")
local store_lib = require("leadq.store")

local format, concat = string.format, table.concat

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run_command(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  local ok = p:close()
  return ok == true or ok == 0, out
end

-- The store an option names: { redis = store } or { url = base }, or nil and why.
local function open_store(text)
  if text:match("^redis://") or text:match("^unix://") then
    local opts, err = store_lib.parse_url(text)
    if not opts then return nil, err end
    opts.client, opts.timeout = "hiredis", 10
    return { redis = store_lib.redis(opts) }
  end
  local base = text:match("^(https?://[^/]+)/?$")
  if base then return { url = base .. "/.leadq/state" } end
  return nil, format("--store '%s': expected redis://[:password@]host[:port][/db], "
    .. "unix:///path/to/redis.sock[?db=N] or http://127.0.0.1:PORT (a running service's state location)", text)
end

local function lines_of(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  return f
end

local function export(opts, out)
  if not opts.out then return nil, "state export needs --out FILE.ndjson" end
  local store, err = open_store(opts.store)
  if not store then return nil, err end
  if store.url then
    local ok, text = run_command(format("curl -sS --fail-with-body -o %s %s", quote(opts.out), quote(store.url)))
    if not ok then return nil, format("export from %s failed: %s", store.url, text) end
    local f = assert(io.open(opts.out, "rb"))
    local count = -1
    for _ in f:lines() do count = count + 1 end
    f:close()
    out.print(format("exported %d leads from %s to %s", count, opts.store, opts.out))
    return 0
  end
  local f, ferr = io.open(opts.out, "wb")
  if not f then return nil, format("cannot write %s: %s", opts.out, ferr) end
  local buffer, n = {}, 0
  local count, xerr = store_lib.export(store.redis, function(line)
    n = n + 1; buffer[n] = line
    if n >= 4096 then f:write(concat(buffer, "\n", 1, n), "\n"); n = 0 end
  end, function(text)   -- lines the core made, a batch at a time: after the lines before them
    if n > 0 then f:write(concat(buffer, "\n", 1, n), "\n"); n = 0 end
    f:write(text)
  end)
  if n > 0 then f:write(concat(buffer, "\n", 1, n), "\n") end
  f:close()
  store.redis:close()
  if not count then
    os.remove(opts.out)
    return nil, format("export from %s failed: %s", opts.store, xerr)
  end
  out.print(format("exported %d leads from %s to %s", count, opts.store, opts.out))
  return 0
end

-- Imports a file of lines into the store; count, or nil and why.
local function import_file(store, path)
  if store.url then
    -- -T streams the file (--data-binary @ would read it whole into curl's memory first)
    local ok, text = run_command(format("curl -sS --fail-with-body -X POST -H 'Content-Type: application/x-ndjson' "
      .. "-T %s %s", quote(path), quote(store.url)))
    local answer = require("leadq.json").decode((text:gsub("%s+$", "")))
    if not ok or type(answer) ~= "table" or not answer.imported then
      return nil, (type(answer) == "table" and answer.error) or text
    end
    return answer.imported
  end
  local f, err = lines_of(path)
  if not f then return nil, err end
  local count, ierr = store_lib.import(store.redis, f:lines())
  f:close()
  store.redis:close()
  if not count then return nil, path .. ": " .. ierr end
  return count
end

local function import(opts, out)
  local path = opts["in"] or (opts.args and opts.args[2])
  if not path then return nil, "state import needs --in FILE.ndjson (an export)" end
  local store, err = open_store(opts.store)
  if not store then return nil, err end
  local count, ierr = import_file(store, path)
  if not count then return nil, format("import into %s failed: %s", opts.store, ierr) end
  out.print(format("imported %d leads from %s into %s", count, path, opts.store))
  return 0
end

-- The export lines of bulk data: each lead's profile (the fields the model reads) and its events
-- replayed in time order into an engagement state. lines, count, events refused; or nil and why.
local function load_lines(opts)
  local leadq = require("leadq")
  local service = require("leadq.service")
  local model, merr = leadq.load_model(opts.rules)
  if not model then return nil, merr end
  local leads, lerr = leadq.read_csv(opts.leads)
  if not leads then return nil, lerr end
  local id_column = opts.id or "id"
  if not leads:has(id_column) then
    return nil, format("%s: no column '%s' (the leads' ids; --id names another)", opts.leads, id_column)
  end
  local features = service.model_features(model)
  local info = model:info()
  local feature_names, fields = {}, {}
  for _, name in ipairs(info.features or {}) do feature_names[name] = true end
  for _, name in ipairs(info.fields or {}) do
    if not feature_names[name] and not name:find(".", 1, true) and leads:has(name) then fields[#fields + 1] = name end
  end
  local profiles, order = {}, {}
  for i = 1, #leads do
    local row = leads:row(i)
    local id = row[id_column]
    if id ~= nil then
      id = tostring(id)
      local profile = {}
      for _, name in ipairs(fields) do profile[name] = row[name] end
      if not profiles[id] then order[#order + 1] = id end
      profiles[id] = profile
    end
  end
  local events_of = {}
  if opts.events then
    if not features then return nil, format("%s: the rules declare no event features: --events has nothing to feed",
      opts.rules) end
    local events, eerr = leadq.read_events(opts.events)
    if not events then return nil, eerr end
    for i = 1, #events do
      local e = events:row(i)
      local id = e.lead_id ~= nil and tostring(e.lead_id)
      if id and profiles[id] and e.at then
        local list = events_of[id]
        if not list then list = {}; events_of[id] = list end
        e.i = i
        list[#list + 1] = e
      end
    end
  end
  local json = require("leadq.json")
  local lines, skipped = { store_lib.HEADER }, 0
  for _, id in ipairs(order) do
    local profile = profiles[id]
    local state_text = false
    local list = events_of[id]
    if list and features then
      table.sort(list, function(a, b) if a.at ~= b.at then return a.at < b.at end return a.i < b.i end)
      local state = features:state(profile)
      for _, e in ipairs(list) do
        e.i = nil
        if not state:observe(e) then skipped = skipped + 1 end
      end
      local latest = state:latest()
      if latest then state_text = state:encode(format("%.17g:", latest)) end
      state:close()
    end
    lines[#lines + 1] = store_lib.lead_line(id, json.encode(profile), 0, state_text)
  end
  return lines, #order, skipped
end

local function load(opts, out)
  for _, name in ipairs({ "rules", "leads" }) do
    if not opts[name] then return nil, format("state load needs --%s", name) end
  end
  if not opts.store and not opts.out then return nil, "state load needs --store (or --out FILE.ndjson)" end
  local lines, count, skipped = load_lines(opts)
  if not lines then return nil, count end
  if opts.out then
    local f, err = io.open(opts.out, "wb")
    if not f then return nil, format("cannot write %s: %s", opts.out, err) end
    f:write(concat(lines, "\n"), "\n")
    f:close()
  end
  if opts.store then
    local store, err = open_store(opts.store)
    if not store then return nil, err end
    local imported, ierr
    if store.redis then
      local i = 0
      imported, ierr = store_lib.import(store.redis, function() i = i + 1; return lines[i] end)
      store.redis:close()
    else
      local path = opts.out or os.tmpname()
      if not opts.out then
        local f = assert(io.open(path, "wb"))
        f:write(concat(lines, "\n"), "\n")
        f:close()
      end
      imported, ierr = import_file(store, path)
      if not opts.out then os.remove(path) end
    end
    if not imported then return nil, format("load into %s failed: %s", opts.store, ierr) end
  end
  out.print(format("loaded %d leads%s into %s", count,
    skipped > 0 and format(" (%d events refused: out of order or unknown)", skipped) or "",
    opts.store or opts.out))
  return 0
end

local ACTIONS = { export = export, import = import, load = load }

cli.commands.state = {
  summary = "export, import or warm up the real-time service's leads (profiles and engagement states)",
  usage = "state export --store STORE --out FILE.ndjson | state import --store STORE --in FILE.ndjson | "
    .. "state load --rules FILE --leads CSV [--events CSV] [--id COLUMN] --store STORE [--out FILE.ndjson]",
  help = "STORE: redis://[:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N], the Redis the\n"
    .. "service keeps its leads in (over TCP or its Unix socket), or http://127.0.0.1:PORT, a running\n"
    .. "service's /.leadq/state location (its shared dict, or its Redis).\n"
    .. "export: every lead as one JSON line (profile, version, engagement state) after a header line.\n"
    .. "import: an export put back: a backup restored, or leads moved from a shared dict to Redis.\n"
    .. "load: profiles from the leads CSV (the fields the rules read) and each lead's events replayed in\n"
    .. "time order, so the service starts with the state a bulk run computes: the same rules then score\n"
    .. "a lead the same from the service as `leadq score` does.",
  args = "export|import|load",
  options = {
    store = { type = "string", help = "redis://host:port/db, unix:///path/redis.sock?db=N or http://127.0.0.1:PORT" },
    out = { type = "string", help = "export: the file written; load: also write the lines there" },
    ["in"] = { type = "string", help = "import: the file read (an export)" },
    rules = { type = "string", help = "load: the rule file the service runs" },
    leads = { type = "string", help = "load: the leads CSV" },
    events = { type = "string", help = "load: an events CSV (lead_id, type, at, value, ...)" },
    id = { type = "string", help = "load: the leads' id column (default id)" },
  },
  run = function(opts, out)
    local action = opts.args and opts.args[1]
    if not action then return nil, "state needs an action: export, import or load" end
    local fn = ACTIONS[action]
    if not fn then return nil, format("state: unknown action '%s' (export, import or load)", action) end
    if action ~= "import" and opts.args[2] then return nil, format("unexpected argument '%s'", opts.args[2]) end
    if action ~= "load" and not opts.store then return nil, "state " .. action .. " needs --store" end
    return fn(opts, out)
  end,
}

return { load_lines = load_lines }
