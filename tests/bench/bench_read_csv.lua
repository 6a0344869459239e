-- Reading speed: leadq.read_csv on ~1M generated leads vs Lua 5.4 reading the same file line by
-- line into Lua tables (fields split, numeric columns through tonumber, one array per column).
-- MB/s of the file's size over CPU time, best of 3 for leadq, 1 run for the plain Lua reader.
local report = require("report")
local leadq = require("leadq")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42                  -- the same files as bench_score.lua: generated once, shared
local DIR = "build/bench"

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

-- A plain synthetic writer, for when the generator (leadq.gen) is not there: same shape of file.
local function write_synthetic(path, n)
  local titles = { "CTO", "VP Marketing", "Marketing Manager", "Head of Sales", "Software Engineer",
                   "Chief Financial Officer", "Growth Manager", "Student", "Director, Operations" }
  local seniorities = { "c_level", "vp", "director", "manager", "individual", "" }
  local industries = { "Software", "Healthcare", "Retail", "Manufacturing", "Finance", "Education" }
  local countries = { "US", "GB", "DE", "FR", "CA", "AU", "IN", "BR" }
  local sources = { "organic", "paid_search", "paid_social", "email", "referral", "webinar", "direct" }
  local f = assert(io.open(path, "wb"))
  f:write("id,email,email_domain,first_name,title,seniority,department,company,employees,industry,",
          "country,source,campaign,created_at,budget,timeline\n")
  local x = 12345
  local function rand(k) x = (16807 * x) % 2147483647; return x % k + 1 end
  local buf = {}
  for i = 1, n do
    local domain = ("company%d.com"):format(rand(50000))
    local title = titles[rand(#titles)]
    if title:find(",", 1, true) then title = '"' .. title .. '"' end
    buf[#buf + 1] = ("L%07d,user%d@%s,%s,Name%d,%s,%s,dept%d,\"Company %d, Inc.\",%d,%s,%s,%s,cmp_%d,"
      .. "2026-%02d-%02dT%02d:%02d:%02dZ,%s,%s\n"):format(i, i, domain, domain, rand(500), title,
      seniorities[rand(#seniorities)], rand(8), rand(50000), rand(5000), industries[rand(#industries)],
      countries[rand(#countries)], sources[rand(#sources)], rand(40), rand(12), rand(28), rand(24) - 1,
      rand(60) - 1, rand(60) - 1, rand(3) == 1 and tostring(rand(100) * 1000) or "",
      rand(2) == 1 and "3-6 months" or "")
    if #buf == 10000 then f:write(table.concat(buf)); buf = {} end
  end
  f:write(table.concat(buf))
  f:close()
end

local path = DIR .. "/leads.csv"
if not report.sample(DIR, N, SEED) then   -- no generator: a synthetic file of the same shape
  os.execute("mkdir -p " .. DIR)
  path = DIR .. "/read_csv_leads.csv"
  if not exists(path) then write_synthetic(path, N) end
end

local f = assert(io.open(path, "rb"))
local size = f:seek("end")
f:close()

local best_of = report.best_of

local rows, bytes_in_memory, schema
local leadq_time = best_of(3, function()
  collectgarbage()
  local t0 = report.clock()
  local t = assert(leadq.read_csv(path))
  local dt = report.clock() - t0
  rows, bytes_in_memory, schema = #t, t:memory(), t:schema()
  assert(t:reject_count() == 0, "rejected rows in the bench file")
  t:close()
  return dt
end)

-- The plain Lua reader: the numeric columns are the ones leadq found to be numbers.
local numeric = {}
for i, c in ipairs(schema) do numeric[i] = c.type == "number" end

local find, sub, gsub = string.find, string.sub, string.gsub

-- Fields of one line into out[1..n]; quoted fields (no line breaks inside) handled on a slower path.
local function split(line, out)
  local n, pos, len = 0, 1, #line
  if not find(line, '"', 1, true) then
    while true do
      local c = find(line, ",", pos, true)
      n = n + 1
      if not c then out[n] = sub(line, pos); return n end
      out[n] = sub(line, pos, c - 1)
      pos = c + 1
    end
  end
  while pos <= len + 1 do
    n = n + 1
    if sub(line, pos, pos) == '"' then
      local q = pos + 1
      while true do
        local e = find(line, '"', q, true)
        if sub(line, e + 1, e + 1) == '"' then q = e + 2 else
          out[n] = gsub(sub(line, pos + 1, e - 1), '""', '"')
          pos = e + 2
          break
        end
      end
    else
      local c = find(line, ",", pos, true) or len + 1
      out[n] = sub(line, pos, c - 1)
      pos = c + 1
    end
  end
  return n
end

local plain_rows
local plain_time = best_of(1, function()
  collectgarbage()
  local t0 = report.clock()
  local file = assert(io.open(path, "rb"))
  local header = file:read("l")
  local ncols = select(2, gsub(header, ",", ",")) + 1
  local columns, fields = {}, {}
  for c = 1, ncols do columns[c] = {} end
  local r = 0
  for line in file:lines() do
    r = r + 1
    split(line, fields)
    for c = 1, ncols do
      local v = fields[c]
      if v == "" then v = nil elseif numeric[c] then v = tonumber(v) end
      columns[c][r] = v
    end
  end
  file:close()
  assert(#columns[1] == r)
  plain_rows = r
  return report.clock() - t0
end)
assert(plain_rows == rows, ("plain Lua read %d rows, leadq %d"):format(plain_rows, rows))

print(string.format("bench: read_csv: %s, %.1f MB, %d rows x %d columns; the table holds %.1f MB",
  path, size / 1e6, rows, #schema, bytes_in_memory / 1e6))
report.line("read_csv 1M leads", size / 1e6 / leadq_time, "MB/s",
            "lua5.4 line-by-line", size / 1e6 / plain_time, "MB/s", true)

-- The same file through a mapping script (tests/bench/crm_map.lua, compiled to the reader's column
-- plan), and as gzip: each against the plain read above (the goals: >= 150 MB/s, and gzip within 2x).
local mapping = assert(require("leadq.mapping").load("tests/bench/crm_map.lua"))
local mapped_time = best_of(3, function()
  collectgarbage()
  local t0 = report.clock()
  local t = assert(mapping:read_csv(path))
  local dt = report.clock() - t0
  assert(#t == rows and t:reject_count() == 0, "the mapping lost or rejected rows")
  t:close()
  return dt
end)
report.line("read_csv 1M leads through a mapping", size / 1e6 / mapped_time, "MB/s",
            "read_csv plain", size / 1e6 / leadq_time, "MB/s", true)

local gz = path .. ".gz"
if not exists(gz) then assert(os.execute("gzip -6 -c '" .. path .. "' > '" .. gz .. "'")) end
local gz_time = best_of(3, function()
  collectgarbage()
  local t0 = report.clock()
  local t = assert(leadq.read_csv(gz))
  local dt = report.clock() - t0
  assert(#t == rows, "the gzip read lost rows")
  t:close()
  return dt
end)
report.line("read_csv 1M leads from gzip (MB of the CSV)", size / 1e6 / gz_time, "MB/s",
            "read_csv plain", size / 1e6 / leadq_time, "MB/s", true)

-- The same file on 2 threads against 1, in wall time, the two interleaved so that both meet the
-- same load from the rest of the machine; each the least of 5. The tables must be the same.
local wall_times = { [1] = math.huge, [2] = math.huge }
local shapes = {}
for _ = 1, 5 do
  for _, threads in ipairs({ 1, 2 }) do
    collectgarbage()
    local t0 = report.wall()
    local t = assert(leadq.read_csv(path, { threads = threads }))
    local dt = report.wall() - t0
    if dt < wall_times[threads] then wall_times[threads] = dt end
    shapes[threads] = ("%d rows, %d rejects, %d email domains"):format(#t, t:reject_count(),
      t:type("email_domain") == "category" and #t:categories("email_domain") or -1)
    t:close()
  end
end
assert(shapes[1] == shapes[2], ("1 thread read %s, 2 threads %s"):format(shapes[1], shapes[2]))
report.line("read_csv 1M leads, 2 threads (wall)", size / 1e6 / wall_times[2], "MB/s",
            "1 thread", size / 1e6 / wall_times[1], "MB/s", true)
