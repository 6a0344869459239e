-- Events as trackers send them: NDJSON, one Segment / RudderStack message a line
--   {"type":"track","userId":"L1","anonymousId":"a-9","event":"Demo Requested",
--    "timestamp":"2026-10-01T10:00:00.000Z","properties":{"plan":"pro","value":3}}
-- read into an events table. Each message is flattened into columns (userId, anonymousId, event,
-- timestamp, ..., properties.plan, properties.value), written as CSV one line per line of the file,
-- and loaded by the C reader through a mapping: by default lead_id is userId (or anonymousId),
-- type the event, at the timestamp and value properties.value; an --events-map script names the
-- same flattened columns ("properties.plan") to map event names and the rest.
--
-- `page` and `screen` messages become page_view / screen_view events; identify, group and alias
-- messages say nothing a lead did and are counted as skipped. A line that is not a JSON object is
-- a reject with its file and line. Lines keep their numbers: line n of the file is line n of the
-- CSV the reader sees.
local json = require("leadq.json")

local format = string.format
local concat = table.concat

local _M = { _VERSION = "0.1.0" }

local KINDS = { track = true, page = true, screen = true }
local TIME_KEYS = { "timestamp", "originalTimestamp", "receivedAt", "sentAt" }

-- Is this the text of NDJSON messages (its first non-blank byte opens an object)?
function _M.is_ndjson_file(path)
  if path == "-" then return false end
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(512) or ""
  f:close()
  return head:match("^%s*{") ~= nil
end

local function scalar_text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v == math.floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
    return format("%.17g", v)
  end
  if t == "boolean" then return tostring(v) end
  if v == nil or v == json.null then return nil end
  return json.encode(v)   -- a nested object or list: its JSON text
end

local function csv_cell(s)
  if s == nil then return "" end
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- One message as flat columns { name = text }, or nil and why it is skipped / rejected.
local function flatten(msg)
  if type(msg) ~= "table" or msg[1] ~= nil then return nil, "reject", "not a JSON object" end
  local kind = msg.type
  if kind ~= nil and not KINDS[kind] then return nil, "skip", tostring(kind) end
  local row = {}
  for k, v in pairs(msg) do
    if k ~= "properties" and k ~= "context" and k ~= "traits" and k ~= "integrations" then
      row[k] = scalar_text(v)
    end
  end
  if type(msg.properties) == "table" then
    for k, v in pairs(msg.properties) do row["properties." .. tostring(k)] = scalar_text(v) end
  end
  if kind == "page" and row.event == nil then row.event = "page_view" end
  if kind == "screen" and row.event == nil then row.event = "screen_view" end
  if row.event == nil then return nil, "reject", "a track message with no event" end
  return row
end

-- The mapping used without an --events-map: the tracker's names into the events' columns.
local function default_fields(seen)
  local ids = {}
  for _, k in ipairs({ "userId", "anonymousId" }) do if seen[k] then ids[#ids + 1] = k end end
  local fields = {
    lead_id = { first_of = #ids > 0 and ids or { "userId" } },
    type = "event",
  }
  local times = {}
  for _, k in ipairs(TIME_KEYS) do if seen[k] then times[#times + 1] = k end end
  fields.at = { first_of = #times > 0 and times or { "timestamp" } }
  if seen["properties.value"] then fields.value = { from = "properties.value", type = "number" } end
  return fields
end

-- read(path, mapping_or_nil, defaults) -> events table, report | nil, message.
-- report: { skipped = { [kind] = n }, rejects = { "file:line: why", ... }, messages = n }
function _M.read(path, mapping, defaults)
  local f, err = io.open(path, "rb")
  if not f then return nil, format("%s: %s", path, (tostring(err):gsub("^[^:]*: ", ""))) end
  local rows, columns, seen = {}, {}, {}
  local report = { skipped = {}, rejects = {}, messages = 0 }
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:find("%S") then
      local msg, jerr = json.decode(line)
      local row, what, why
      if msg == nil then
        what, why = "reject", format("not JSON (%s)", tostring(jerr))
      else
        row, what, why = flatten(msg)
      end
      if row then
        report.messages = report.messages + 1
        for k in pairs(row) do
          if not seen[k] then seen[k] = true; columns[#columns + 1] = k end
        end
        rows[n] = row
      elseif what == "skip" then
        report.skipped[why] = (report.skipped[why] or 0) + 1
      else
        report.rejects[#report.rejects + 1] = format("%s:%d: %s", path, n, why)
      end
    end
  end
  f:close()
  table.sort(columns)
  -- the header is line 0 for the reader (first_line = 0): line n of the CSV is line n of the file
  local out = { concat((function()
    local h = {}
    for i, c in ipairs(columns) do h[i] = csv_cell(c) end
    return h
  end)(), ",") }
  local cells = {}
  for i = 1, n do
    local row = rows[i]
    if row then
      for c, name in ipairs(columns) do cells[c] = csv_cell(row[name]) end
      out[#out + 1] = concat(cells, ",", 1, #columns)
    else
      out[#out + 1] = ""   -- a blank line: skipped by the reader, keeps the numbering
    end
  end
  local tmp = os.tmpname()
  local w = assert(io.open(tmp, "wb"))
  w:write(concat(out, "\n"), "\n")
  w:close()
  local m = mapping
  if m == nil then
    m = setmetatable({ name = "tracker", path = path, lines = {},
      spec = { fields = default_fields(seen) } }, require("leadq.mapping").Mapping)
  end
  local events, lerr = m:read_events(tmp, { source = path, first_line = 0 }, defaults)
  os.remove(tmp)
  if not events then return nil, lerr end
  return events, report
end

-- What the reading left out, as lines for the command's summary.
function _M.report_lines(report, path, limit)
  local lines = {}
  local kinds = {}
  for k, n in pairs(report.skipped) do kinds[#kinds + 1] = format("%s %d", k, n) end
  table.sort(kinds)
  lines[1] = format("tracker messages: %d read from %s%s", report.messages, path,
    #kinds > 0 and ("; skipped (not events): " .. concat(kinds, ", ")) or "")
  if #report.rejects > 0 then
    lines[#lines + 1] = format("  rejected lines: %d (not read)", #report.rejects)
    for i = 1, math.min(limit, #report.rejects) do lines[#lines + 1] = "    " .. report.rejects[i] end
    if #report.rejects > limit then lines[#lines + 1] = format("    ... and %d more", #report.rejects - limit) end
  end
  return lines
end

return _M
