-- Input and output as files, pipes and CRMs give and take them: gzip told by its bytes, '-' for
-- standard input and output, binary files refused, scores as CSV or JSON lines.
local lu = require("luaunit")

local leadq = require("leadq")
local helpers = require("helpers")

local LEADS = "id,title,employees,country\nL1,VP Sales,300,US\nL2,intern,3,FR\nL3,CTO,,DE\n"

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function gzip(from, to)
  assert(os.execute("gzip -c '" .. from .. "' > '" .. to .. "'"))
end

local function rows_of(t)
  local out = {}
  for i = 1, #t do out[i] = t:row(i) end
  return out
end

local function main(argv)
  local cli = require("leadq.cli")
  local printed, errors = {}, {}
  local status = cli.main(argv, {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  })
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

---------------------------------------------------------------------------------------------------

local TestGzip = {}

function TestGzip.test_told_by_content_not_by_name()
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", LEADS)
  gzip(dir .. "/leads.csv", dir .. "/leads.csv.gz")
  gzip(dir .. "/leads.csv", dir .. "/export.csv")       -- gzip with a .csv name
  write(dir .. "/plain.gz", LEADS)                         -- plain text with a .gz name
  local want = rows_of(assert(leadq.read_csv(dir .. "/leads.csv")))
  for _, name in ipairs { "leads.csv.gz", "export.csv", "plain.gz" } do
    local t = assert(leadq.read_csv(dir .. "/" .. name))
    lu.assertEquals(rows_of(t), want, name)
    lu.assertEquals(t:reject_count(), 0)
  end
  helpers.remove_dir(dir)
end

function TestGzip.test_members_one_after_another_and_events()
  local dir = helpers.tmpdir()
  write(dir .. "/a.csv", "lead_id,type,at\nL1,page_view,2026-10-01\n")
  write(dir .. "/b.csv", "L2,demo_request,2026-10-02\n")
  gzip(dir .. "/a.csv", dir .. "/a.gz")
  gzip(dir .. "/b.csv", dir .. "/b.gz")
  assert(os.execute("cat '" .. dir .. "/a.gz' '" .. dir .. "/b.gz' > '" .. dir .. "/ab.gz'"))
  local ev = assert(leadq.read_events(dir .. "/ab.gz"))
  lu.assertEquals(#ev, 2)
  lu.assertEquals(ev:column("lead_id"), { "L1", "L2" })
  helpers.remove_dir(dir)
end

function TestGzip.test_truncated_and_corrupt_gzip_are_errors()
  local dir = helpers.tmpdir()
  local big = { "id,n" }
  for i = 1, 5000 do big[#big + 1] = "L" .. i .. "," .. (i * 7919 % 1000) end
  write(dir .. "/big.csv", table.concat(big, "\n") .. "\n")
  gzip(dir .. "/big.csv", dir .. "/big.gz")
  local bytes = read(dir .. "/big.gz")
  write(dir .. "/cut.gz", bytes:sub(1, math.floor(#bytes / 2)))
  local t, err = leadq.read_csv(dir .. "/cut.gz")
  lu.assertNil(t)
  lu.assertEquals(err, dir .. "/cut.gz: the gzip data ends early (a truncated file?)")
  write(dir .. "/bad.gz", bytes:sub(1, 20) .. string.rep("\255", 200) .. bytes:sub(221))
  t, err = leadq.read_csv(dir .. "/bad.gz")
  lu.assertNil(t)
  lu.assertStrContains(err, dir .. "/bad.gz: not valid gzip data (")
  helpers.remove_dir(dir)
end

local TestBinary = {}

function TestBinary.test_binary_files_are_refused_with_what_they_are()
  local cases = {
    { "PK\3\4\20\0\6\0\8\0\0\0!\0", "is not a CSV file: it is a zip archive (an .xlsx workbook or a .zip): "
      .. "save it as CSV, or unzip it" },
    { "\255\254i\0d\0,\0n\0\n\0", "is not a CSV file leadq can read: it is UTF-16 text; save it as UTF-8 CSV" },
    { "\137PNG\r\n\26\n\0\0\0\rIHDR", "is not a CSV file: it holds binary data (a zero byte at byte 9)" },
  }
  for _, c in ipairs(cases) do
    helpers.with_file(c[1], function(path)
      local err = helpers.error_of(leadq.read_csv, path)
      lu.assertEquals(err, path .. " " .. c[2])
    end)
  end
end

local TestStdio = {}

local function shell(command)
  local p = io.popen(command)
  local text = p:read("*a")
  p:close()
  return text
end

function TestStdio.test_dash_reads_standard_input_and_out_dash_writes_only_scores()
  if LEADQ_VARIANT ~= "lua5.4" then lu.skip("the launcher runs Lua 5.4: tested in the lua5.4 run") end
  local leadq_command = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq"
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", LEADS)
  gzip(dir .. "/leads.csv", dir .. "/leads.gz")
  local from_file = shell(leadq_command .. " score --rules rules/mql.lua --leads " .. dir .. "/leads.csv --out - "
    .. "--as-of 2026-11-01 2>" .. dir .. "/err.txt")
  lu.assertStrMatches(from_file,
    "id,total,status,grade,fit,engagement,negative,reason\nL1,[^\n]*\nL2,[^\n]*\nL3,[^\n]*\n")
  local messages = read(dir .. "/err.txt")
  lu.assertStrContains(messages, "scored 3 leads from " .. dir .. "/leads.csv")
  lu.assertStrContains(messages, "wrote standard output")
  local piped = shell("cat " .. dir .. "/leads.gz | " .. leadq_command .. " score --rules rules/mql.lua --leads - "
    .. "--out - --as-of 2026-11-01 2>/dev/null")
  lu.assertEquals(piped, from_file)
  helpers.remove_dir(dir)
end

local TestFormat = {}

function TestFormat.test_jsonl_holds_the_csv_values()
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", LEADS)
  local status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv",
    "--as-of", "2026-11-01", "--out", dir .. "/s.csv" }
  lu.assertEquals(status, 0, err)
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv",
    "--as-of", "2026-11-01", "--out", dir .. "/s.jsonl", "--format", "jsonl" }
  lu.assertEquals(status, 0, err)
  local csv = assert(leadq.read_csv(dir .. "/s.csv", { schema = { id = "text" } }))
  local json = require("leadq.json")
  local i = 0
  for line in io.lines(dir .. "/s.jsonl") do
    i = i + 1
    local obj = json.decode(line)
    local row = csv:row(i)
    lu.assertEquals(obj.id, row.id)
    lu.assertEquals(obj.total, row.total)
    lu.assertEquals(obj.status, row.status)
    lu.assertEquals(obj.grade, row.grade)
  end
  lu.assertEquals(i, 3)
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--format", "xml",
    "--out", "-" }
  lu.assertEquals(status, 2)
  lu.assertEquals(err, "leadq: --format: expected csv or jsonl, got 'xml'")
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--format", "jsonl" }
  lu.assertEquals(status, 2)
  lu.assertEquals(err, "leadq: --format needs --out FILE (or --out - for standard output)")
  helpers.remove_dir(dir)
end

-- The scores' CSV is written by the core (core.write_csv_columns); the Lua writer still writes the
-- other cases (extra columns, JSON lines, standard output). Both give the same bytes, for every type
-- of cell and the values CSV must quote.
function TestFormat.test_the_core_writes_what_the_lua_writer_writes()
  local core = require("leadq.core")
  local score_cli = require("leadq.cli.score")
  local t = leadq.table({
    { id = "plain", n = 3, x = 0.1234567, b = true, c = "mql" },
    { id = 'has "quotes"', n = -0.0, x = 1e15, b = false, c = "a,b" },
    { id = "line\nbreak", n = 2 ^ 53, x = -1e-7, c = "cr\r" },
    { n = 1 / 0, x = -1 / 0 },
    { id = "whole", n = -42, x = -999999999999999, c = "mql" },   -- whole numbers: the core's own digits
    { id = "", n = 999999999999999, x = 123456.7, b = true, c = "" },   -- no tie: LuaJIT's %g rounds ties up
  }, { id = "text", n = "number", x = "number", b = "boolean", c = "category" })
  local dir = helpers.tmpdir()
  local names = { "id", "n", "x", "b", "c" }
  local specs, cols = {}, {}
  for i, name in ipairs(names) do
    specs[i] = { name = name, table = t, column = name }
    cols[i] = t:column(name)
  end
  specs[6], names[6] = { name = "row", row = true }, "row"
  cols[6] = { 1, 2, 3, 4, 5, 6 }
  assert(core.write_csv_columns(dir .. "/c.csv", #t, specs))
  assert(score_cli.write_rows(dir .. "/lua.csv", names, cols, #t, "csv"))
  lu.assertEquals(read(dir .. "/c.csv"), read(dir .. "/lua.csv"))
  lu.assertStrContains(read(dir .. "/c.csv"), '"has ""quotes""",0,1e+15,false,"a,b",2\n')
  -- formatted on threads, a round of rows each: the same bytes
  local big, words = {}, { "mql", "a,b", 'q"q', "", "nurture" }
  for i = 1, 40000 do
    big[i] = { id = "L" .. i, n = (i % 7 == 0) and (0 / 0) or (i * 37 % 1000 - 500), x = i / 7,
      c = words[i % #words + 1] ~= "" and words[i % #words + 1] or nil }
  end
  local bt = leadq.table(big, { id = "text", n = "number", x = "number", c = "category" })
  local bspecs = { { name = "id", table = bt, column = "id" }, { name = "n", table = bt, column = "n" },
    { name = "x", table = bt, column = "x" }, { name = "c", table = bt, column = "c" }, { name = "row", row = true } }
  assert(core.write_csv_columns(dir .. "/one.csv", #bt, bspecs))
  for _, threads in ipairs({ 2, 3, 7 }) do
    assert(core.write_csv_columns(dir .. "/many.csv", #bt, bspecs, threads))
    lu.assertEquals(read(dir .. "/many.csv"), read(dir .. "/one.csv"), threads .. " threads")
  end
  lu.assertEquals(select(2, read(dir .. "/one.csv"):gsub("\n", "")), 40001)
  bt:close()
  -- cells longer than the writer's 64 KiB buffer, quoted or not, on one thread and on several
  local long = {}
  for i = 1, 20000 do long[i] = { id = "L" .. i, c = "x" } end
  long[3].id, long[19999].id = string.rep("a", 100000), string.rep('q"', 40000)
  long[5].c = string.rep("b,", 50000)
  local lt = leadq.table(long, { id = "text", c = "category" })
  local lspecs = { { name = "id", table = lt, column = "id" }, { name = "c", table = lt, column = "c" } }
  local lcols = { lt:column("id"), lt:column("c") }
  assert(score_cli.write_rows(dir .. "/long_lua.csv", { "id", "c" }, lcols, #lt, "csv"))
  for _, threads in ipairs({ 1, 2 }) do
    assert(core.write_csv_columns(dir .. "/long.csv", #lt, lspecs, threads))
    lu.assertEquals(read(dir .. "/long.csv"), read(dir .. "/long_lua.csv"), threads .. " threads")
  end
  -- a device that is full: an error, on one thread and on several
  if io.open("/dev/full", "w") then
    for _, threads in ipairs({ 1, 2 }) do
      local full, ferr = core.write_csv_columns("/dev/full", #lt, lspecs, threads)
      lu.assertNil(full, threads .. " threads")
      lu.assertStrContains(ferr, "cannot write /dev/full")
    end
  end
  lt:close()
  local ok, err = core.write_csv_columns(dir .. "/no/such/dir.csv", #t, specs)
  lu.assertNil(ok)
  lu.assertStrContains(err, "cannot write " .. dir .. "/no/such/dir.csv")
  helpers.remove_dir(dir)
end

local TestTrackEvents = {}

local SEGMENT = table.concat({
  '{"type":"track","userId":"L1","anonymousId":"a-1","event":"Demo Requested",'
    .. '"timestamp":"2026-10-01T10:00:00.000Z","properties":{"plan":"pro"}}',
  '{"type":"identify","userId":"L1","traits":{"email":"x@y.com"}}',
  '{"type":"track","anonymousId":"a-9","event":"Pricing Viewed","timestamp":"2026-10-02T10:00:00Z",'
    .. '"properties":{"value":3}}',
  "not json",
  '',
  '{"type":"page","userId":"L2","timestamp":"2026-10-03T10:00:00Z","properties":{"path":"/pricing"}}',
  '{"type":"track","userId":"L2","event":"Webinar Attended","timestamp":"yesterday"}',
  '["a list"]',
}, "\n") .. "\n"

function TestTrackEvents.test_segment_messages_become_events_with_lines_kept()
  helpers.with_file(SEGMENT, function(path)
    local track = require("leadq.track_events")
    lu.assertTrue(track.is_ndjson_file(path))
    local ev, report = assert(track.read(path))
    lu.assertTrue(ev:is_events())
    lu.assertEquals(ev:column("lead_id"), { "L1", "a-9", "L2" })
    lu.assertEquals(ev:column("type"), { "Demo Requested", "Pricing Viewed", "page_view" })
    lu.assertEquals(ev:column("at"), { leadq.parse_time("2026-10-01T10:00:00Z"),
      leadq.parse_time("2026-10-02T10:00:00Z"), leadq.parse_time("2026-10-03T10:00:00Z") })
    lu.assertEquals(ev:column("value")[2], 3)
    lu.assertEquals(ev:column("properties.plan")[1], "pro")
    lu.assertEquals(report.messages, 4)
    lu.assertEquals(report.skipped, { identify = 1 })
    lu.assertEquals(report.rejects, { path .. ":4: not JSON (malformed JSON at byte 1: unexpected character)",
      path .. ":8: not a JSON object" })
    local rejects = ev:rejects()
    lu.assertEquals(#rejects, 1)
    lu.assertEquals(rejects[1].message, path .. ":7: column 'at' (1): 'yesterday' is not an ISO 8601 date or time "
      .. "(the file's column 6, 'timestamp')")
  end)
end

function TestTrackEvents.test_anonymous_only_messages_and_a_map_naming_a_key_none_has()
  helpers.with_file('{"type":"track","anonymousId":"a1","event":"x","timestamp":"2026-10-01T00:00:00Z"}\n',
    function(path)
      local track = require("leadq.track_events")
      local ev = assert(track.read(path))
      lu.assertEquals(ev:column("lead_id"), { "a1" })
      local m = assert(require("leadq.mapping").load_string(
        'return mapping "s" { fields = { lead_id = "userId", type = "event", at = "timestamp" } }', "s.lua"))
      local none, err = track.read(path, m)
      lu.assertNil(none)
      lu.assertEquals(err, "s.lua:1: field 'lead_id' reads column 'userId', which is not in the header of " .. path)
    end)
end

function TestTrackEvents.test_an_events_map_names_the_flattened_columns()
  helpers.with_file(SEGMENT, function(path)
    local dir = helpers.tmpdir()
    write(dir .. "/seg.lua", 'return mapping "segment" { fields = {\n'
      .. '  lead_id = { first_of = { "userId", "anonymousId" } }, at = "timestamp",\n'
      .. '  type = { from = "event", values = { ["Demo Requested"] = "demo_request", page_view = "page_view",\n'
      .. '    ["Pricing Viewed"] = "pricing_view" } },\n'
      .. '  plan = "properties.plan" } }\n')
    local m = assert(require("leadq.mapping").load(dir .. "/seg.lua"))
    local ev = assert(require("leadq.track_events").read(path, m))
    lu.assertEquals(ev:column("type"), { "demo_request", "pricing_view", "page_view" })
    lu.assertEquals(ev:column("plan"), { "pro", nil, nil })
    helpers.remove_dir(dir)
  end)
end

local TestCrmOut = {}

local HUB = "Record ID,Job Title,Number of Employees,Country/Region\n1,VP Sales,300,United States\n"
  .. "2,intern,3,germany\n3,CTO,5000,United States\n"
local HUB_MAP = [[
return mapping "hubspot" {
  fields = { id = "Record ID", title = "Job Title", employees = { from = "Number of Employees", type = "number" },
    country = { from = "Country/Region", values = { ["United States"] = "US", Germany = "DE" }, any_case = true } },
  export = { id = "Record ID", fields = { hs_lead_status = "status", leadq_score = "total" },
    values = { hs_lead_status = { mql = "OPEN", nurture = "IN_PROGRESS", cold = "UNQUALIFIED" } } },
}
]]

function TestCrmOut.test_stamp_and_prefixed_columns_that_a_second_model_leaves_alone()
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", LEADS)
  local status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--as-of",
    "2026-11-01", "--out", dir .. "/one.csv", "--stamp", "--prefix-columns", "--quiet" }
  lu.assertEquals(status, 0, err)
  status, _, err = main { "score", "--rules", "rules/mql.lua,rules/sql.lua", "--leads", dir .. "/leads.csv",
    "--as-of", "2026-11-01", "--out", dir .. "/two.csv" }
  lu.assertEquals(status, 0, err)
  local one = assert(leadq.read_csv(dir .. "/one.csv", { schema = { id = "text" } }))
  local two = assert(leadq.read_csv(dir .. "/two.csv", { schema = { id = "text" } }))
  for _, name in ipairs { "mql.total", "mql.status", "mql.grade", "mql.reason" } do
    lu.assertEquals(one:column(name), two:column(name), name)
  end
  local row = one:row(1)
  lu.assertEquals(row.model, "mql")
  lu.assertEquals(row.as_of, leadq.parse_time("2026-11-01"))
  lu.assertStrMatches(row.rules_hash, "^%x+$")
  lu.assertEquals(#row.rules_hash, 16)
  lu.assertEquals(row.rules_hash, require("leadq.cli.score").rules_hash({ "rules/mql.lua" }))
  lu.assertNotEquals(row.rules_hash, require("leadq.cli.score").rules_hash({ "rules/sql.lua" }))
  helpers.remove_dir(dir)
end

function TestCrmOut.test_export_for_a_crm_import_and_only_what_changed()
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", HUB)
  write(dir .. "/map.lua", HUB_MAP)
  local status, text, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--map",
    dir .. "/map.lua", "--as-of", "2026-11-01", "--out", dir .. "/s.csv", "--export", dir .. "/import.csv" }
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "exported 3 leads to " .. dir .. "/import.csv")
  local lines = {}
  for l in io.lines(dir .. "/import.csv") do lines[#lines + 1] = l end
  lu.assertEquals(lines[1], "Record ID,hs_lead_status,leadq_score")
  lu.assertStrMatches(lines[2], "^1,[A-Z_]+,%-?%d+$")
  lu.assertEquals(#lines, 4)
  write(dir .. "/leads2.csv", (HUB:gsub("3,CTO,5000", "3,intern,5000")))
  status, text, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads2.csv", "--map",
    dir .. "/map.lua", "--as-of", "2026-11-01", "--export", dir .. "/changed.csv", "--previous", dir .. "/s.csv" }
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "exported 1 lead to " .. dir .. "/changed.csv (changed since " .. dir .. "/s.csv)")
  lines = {}
  for l in io.lines(dir .. "/changed.csv") do lines[#lines + 1] = l end
  lu.assertEquals(#lines, 2)
  lu.assertStrMatches(lines[2], "^3,disqualified,%-?%d+$")
  local printed
  status, printed, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--export",
    dir .. "/x.csv" }
  lu.assertNotStrContains(printed, "exported")
  lu.assertEquals(status, 1)
  lu.assertStrContains(err, "--export needs --map with a mapping script that has an export section")
  helpers.remove_dir(dir)
end

local TestProgress = {}

function TestProgress.test_read_csv_reports_bytes_size_and_rows_and_survives_a_failing_callback()
  local rows = { "id,n" }
  for i = 1, 60000 do rows[#rows + 1] = "L" .. i .. "," .. i end
  local text = table.concat(rows, "\n") .. "\n"
  helpers.with_file(text, function(path)
    local calls = {}
    local t = assert(leadq.read_csv(path, { progress = function(bytes, size, records)
      calls[#calls + 1] = { bytes, size, records }
    end }))
    lu.assertEquals(#t, 60000)
    lu.assertTrue(#calls >= 1)
    local last = calls[#calls]
    lu.assertEquals(last[1], #text)
    lu.assertEquals(last[2], #text)
    for i = 2, #calls do lu.assertTrue(calls[i][3] >= calls[i - 1][3]) end
    t = assert(leadq.read_csv(path, { progress = function() error("a display that broke") end }))
    lu.assertEquals(#t, 60000)
    lu.assertErrorMsgContains("option 'progress' must be a function, got number", leadq.read_csv, path,
      { progress = 1 })
  end)
end

function TestProgress.test_the_command_shows_it_with_progress_and_not_with_quiet()
  local dir = helpers.tmpdir()
  write(dir .. "/leads.csv", LEADS)
  local status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--progress" }
  lu.assertEquals(status, 0, err)
  lu.assertStrMatches(err, ".*leadq: read 3 rows from " .. dir:gsub("%p", "%%%0") .. "/leads%.csv %(0%.0 MB%) in "
    .. "[%d.]+ s.*")
  status, _, err = main { "score", "--rules", "rules/mql.lua", "--leads", dir .. "/leads.csv", "--progress",
    "--quiet" }
  lu.assertEquals(status, 0, err)
  lu.assertNotStrContains(err, "leadq: read 3 rows")
  helpers.remove_dir(dir)
end

return {
  TestProgress = TestProgress,
  TestCrmOut = TestCrmOut,
  TestTrackEvents = TestTrackEvents,
  TestGzip = TestGzip,
  TestBinary = TestBinary,
  TestStdio = TestStdio,
  TestFormat = TestFormat,
}
