-- The events stream: an events CSV given by its path to the feature pass (fs:compute, model:score,
-- `leadq score --events`). Every value and every count of the report equal to reading the file as a
-- table first, on any number of threads, for files in file order, shuffled (read twice), with CRLF,
-- a byte-order mark, another separator, other columns; and the files the stream declines read as a
-- table, with their rejects.
local lu = require("luaunit")
local core = require("leadq.core")
local leadq = require("leadq")
local features = require("leadq.features")
local helpers = require("helpers")

local M = {}
M.TestEventStream = {}
local T = M.TestEventStream

local AS_OF = "2026-11-01T00:00:00Z"
local THREADS = { 1, 2, 3, 7 }

local SPECS, OPTIONS = helpers.every_feature()   -- every feature, attribute filters, every noise rule

local generated   -- the generated leads, and the events file's lines (header first), made once

local function sample()
  if generated then return generated end
  local dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = helpers.size(4000, 1500), seed = 77, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv", { schema = { id = "category" } }))
  local lines = {}
  for line in io.lines(dir .. "/events.csv") do lines[#lines + 1] = line end
  helpers.remove_dir(dir)
  generated = { leads = leads, lines = lines }
  return generated
end

local shuffled = helpers.shuffled

local function write_lines(lines, eol, tail)
  return helpers.temp_file(table.concat(lines, eol or "\n") .. (tail == nil and (eol or "\n") or tail))
end

local function assert_same(fs, one, other, nrows, what)
  helpers.assert_same_features(fs, one, other, nrows, what, "from the table")
end
local assert_same_report = helpers.assert_same_report

-- The file read as a table and computed; then given by its path on each of THREADS: all the same.
-- streamed: whether the stream must take the file (else it declines it, and reads the table itself).
local function check_file(fs, leads, path, what, streamed, opts)
  local events = assert(leadq.read_events(path))
  local base = { as_of = AS_OF }
  for k, v in pairs(opts or {}) do base[k] = v end
  local want, want_report = fs:compute(leads, events, base)
  lu.assertNotNil(want, want_report)
  local rejects = events:rejects()
  events:close()
  for _, n in ipairs(THREADS) do
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    o.threads = n
    local got, report = fs:compute(leads, path, o)
    lu.assertNotNil(got, report)
    local label = string.format("%s, %d thread%s", what, n, n == 1 and "" or "s")
    assert_same(fs, want, got, #leads, label)
    assert_same_report(want_report, report, label)
    lu.assertEquals(report.streamed == true, streamed, label .. ": streamed (" .. tostring(report.read_as_table) .. ")")
    if not streamed then lu.assertEquals(report.rejects, rejects, label .. ": rejects") end
    got:close()
  end
  want:close()
  return want_report
end

function T.test_generated_file_as_written()
  local s = sample()
  local path = write_lines(s.lines)
  local report = check_file(features.new(SPECS, OPTIONS), s.leads, path, "file order", true)
  os.remove(path)
  -- the sample exercises what it claims to: events used, noise met
  lu.assertTrue(report.used > 5000)
  lu.assertTrue(report.noise.short_page_view > 0)
  lu.assertTrue(report.noise.flagged_lead > 0)
end

-- A lead's events in several places: the first reading finds it and the file is read again, keeping
-- every event; the values are still those of the table.
function T.test_shuffled_file_is_read_again()
  local s = sample()
  local body = {}
  for i = 2, #s.lines do body[i - 1] = s.lines[i] end
  local lines = { s.lines[1] }
  for _, l in ipairs(shuffled(body, 4242)) do lines[#lines + 1] = l end
  local path = write_lines(lines)
  check_file(features.new(SPECS, OPTIONS), s.leads, path, "shuffled", true)
  os.remove(path)
end

-- A lead's event moved to the last line of the first of three ranges: that range leaves it at its edge,
-- the third folds the lead's other events while reading; stitching the edges meets the lead again,
-- and the file is read again, keeping every event (it was declined, with no reason).
function T.test_a_lead_at_a_range_edge_and_elsewhere_is_read_again()
  local s = sample()
  local moved = math.floor(#s.lines * 0.8)
  local total = 0
  for _, l in ipairs(s.lines) do total = total + #l + 1 end
  local head = #s.lines[1] + 1
  local third = head + math.floor((total - head) / 3)   -- where the stream cuts the first range of three
  local fs = features.new(SPECS, OPTIONS)
  local at_edge, near, acc = 0, nil, 0
  for i, l in ipairs(s.lines) do   -- the line at the cut, before the move
    acc = acc + #l + 1
    if acc >= third then near = i break end
  end
  for pos = near - 3, near + 3 do
    local lines, off, last = {}, 0, nil
    for i, l in ipairs(s.lines) do
      if i ~= moved then lines[#lines + 1] = l end
      if i == pos then lines[#lines + 1] = s.lines[moved] end
    end
    for i, l in ipairs(lines) do   -- the first range ends before the first line starting at its cut
      if off >= third then last = i - 1 break end
      off = off + #l + 1
    end
    if last and lines[last] == s.lines[moved] and lines[last + 1] ~= s.lines[moved] then
      local path = write_lines(lines)
      check_file(fs, s.leads, path, "a lead at a range's edge", true)
      os.remove(path)
      at_edge = at_edge + 1
      break
    end
  end
  lu.assertEquals(at_edge, 1)
end

-- Lines ending in \r\n, a byte-order mark, no newline at the end, ';' between fields, the columns in
-- another order with one the features do not read: the reader's own reading of each.
function T.test_file_forms_the_reader_takes()
  local s = sample()
  local fs = features.new(SPECS, OPTIONS)
  local crlf = write_lines(s.lines, "\r\n")
  check_file(fs, s.leads, crlf, "CRLF", true)
  os.remove(crlf)
  local bom = { "\239\187\191" .. s.lines[1] }
  for i = 2, #s.lines do bom[i] = s.lines[i] end
  local path = write_lines(bom, "\n", "")
  check_file(fs, s.leads, path, "BOM, no last newline", true)
  os.remove(path)
  -- reorder: campaign, note, at, page, type, asset, value, lead_id; ';' as the separator
  local order = { 7, 0, 3, 5, 2, 6, 4, 1 }
  local lines = {}
  for i, l in ipairs(s.lines) do
    local f = {}
    for v in (l .. ","):gmatch("([^,]*),") do f[#f + 1] = v end
    local out = {}
    for k, c in ipairs(order) do out[k] = c == 0 and (i == 1 and "note" or ("n" .. i % 7)) or f[c] end
    lines[i] = table.concat(out, ";")
  end
  path = write_lines(lines)
  check_file(fs, s.leads, path, "reordered, ';'", true)
  os.remove(path)
end

-- Events of unknown leads, after as_of and of types no feature reads, two leads sharing an id; times
-- in other forms (offsets, fractions, dates alone), a leap second and 29 February.
function T.test_left_out_events_unknown_rows_and_time_forms()
  local s = sample()
  local lines, x = { s.lines[1] }, 99
  local forms = { "2024-02-29T23:59:60Z", "2026-10-31T23:00:00+02:00", "2026-10-30 08:15:00", "2026-10-29",
    "2026-10-28T10:00:00.250Z", "2026-10-27T10:00Z" }
  for i = 2, #s.lines do
    local l = s.lines[i]
    local id, typ, at, rest = l:match("^([^,]*),([^,]*),([^,]*),(.*)$")
    lines[#lines + 1] = l
    x = (16807 * x) % 2147483647
    local kind = x % 40
    if kind == 0 then
      lines[#lines + 1] = string.format("nobody%d,page_view,%s,60,,,", x % 300, at)
    elseif kind == 1 then
      lines[#lines + 1] = string.format("%s,pricing_view,2027-12-01T00:00:00Z,60,,,", id)
    elseif kind == 2 then
      lines[#lines + 1] = string.format("%s,chat_started,%s,,,,", id, at)
    elseif kind == 3 then
      lines[#lines + 1] = string.format("%s,%s,%s,%s", id, typ, forms[x % #forms + 1], rest)
    end
  end
  local recs = {}
  for r = 1, #s.leads do recs[r] = s.leads:row(r) end
  recs[#recs + 1] = recs[7]   -- a second lead with the id of lead 7
  local leads = core.table(recs, { id = "category" })
  local path = write_lines(lines)
  local report = check_file(features.new(SPECS, OPTIONS), leads, path, "left-out events", true, { max_unknown = 25 })
  lu.assertEquals(#report.unknown, 25)
  lu.assertTrue(report.unknown_leads > 25)
  lu.assertTrue(report.after_as_of > 0)
  lu.assertEquals(report.duplicate_ids, 1)
  -- a set without wildcards ignores the types it does not read
  local narrow = check_file(features.new({ views = SPECS.views_30d, heat = SPECS.heat }), leads, path, "two features",
    true, { max_unknown = 25 })
  lu.assertTrue(narrow.ignored > report.ignored)
  os.remove(path)
  leads:close()
end

-- What the stream leaves to the reader: the file is read as a table, its rejects in the report, the
-- values those of the table; report.read_as_table says why, with the line.
function T.test_declined_files_are_read_as_tables()
  local s = sample()
  local fs = features.new(SPECS, OPTIONS)
  local header, first = s.lines[1], s.lines[2]
  local id, typ = first:match("^([^,]*),([^,]*),")
  local cases = {
    { "a quoted field", string.format('%s,page_view,2026-10-01T00:00:00Z,5,"/product, plans",,', id), "a quote" },
    { "a bad time", string.format("%s,page_view,yesterday,5,/pricing,,", id), "a time" },
    { "29 February of 2023", string.format("%s,page_view,2023-02-29T10:00:00Z,5,/pricing,,", id), "a time" },
    { "no lead_id", ",page_view,2026-10-01T00:00:00Z,5,/pricing,,", "no lead_id" },
    { "a value that is no number", string.format("%s,page_view,2026-10-01T00:00:00Z,many,,,", id), "no number" },
    { "too many fields", string.format("%s,%s,2026-10-01T00:00:00Z,5,,,,extra", id, typ), "more fields" },
    { "too few fields", string.format("%s,%s,2026-10-01T00:00:00Z", id, typ), "fewer fields" },
    { "a blank line", "", "a blank line" },
    { "a lone carriage return", string.format("%s,%s,2026-10-01T00:00:00Z,5,/a\rb,,", id, typ), "carriage return" },
  }
  for _, c in ipairs(cases) do
    local lines = { header }
    for i = 2, #s.lines do
      lines[#lines + 1] = s.lines[i]
      if i == 1000 then lines[#lines + 1] = c[2] end
    end
    local path = write_lines(lines)
    check_file(fs, s.leads, path, c[1], false)
    local _, report = fs:compute(s.leads, path, { as_of = AS_OF, threads = 2 })
    lu.assertStrContains(report.read_as_table, path .. ":")
    lu.assertStrContains(report.read_as_table, c[3])
    os.remove(path)
  end
  -- a gzip file, and a file without the at column: the reader's own answers
  local path = write_lines(s.lines)
  local gz = path .. ".gz"
  assert(os.execute(string.format("gzip -c '%s' > '%s'", path, gz)))
  check_file(fs, s.leads, gz, "gzip", false)
  os.remove(gz)
  local no_at = {}
  for i, l in ipairs(s.lines) do no_at[i] = l:gsub("^([^,]*,[^,]*),[^,]*", "%1") end
  local bad = write_lines(no_at)
  local tbl, err = fs:compute(s.leads, bad, { as_of = AS_OF })
  lu.assertNil(tbl)
  lu.assertStrContains(err, "has no column 'at'")
  os.remove(bad)
  tbl, err = fs:compute(s.leads, path .. ".missing", { as_of = AS_OF })
  lu.assertNil(tbl)
  lu.assertStrContains(err, ".missing")
  os.remove(path)
end

-- An attribute a filter tests is text to both readings, even when it holds numbers; a file without it
-- is refused the same way whether the stream takes the file or declines it.
function T.test_filtered_attributes_read_alike()
  local fs = features.new({ p = { count = "page_view", page = { starts_with = "5" } } })
  local leads = core.parse_csv("id\na\nb\n")
  local plain = helpers.temp_file("lead_id,type,at,page\na,page_view,2026-10-01,5\nb,page_view,2026-10-02,7\n")
  local quoted = helpers.temp_file('lead_id,type,at,page\na,page_view,2026-10-01,5\n"b",page_view,2026-10-02,7\n')
  local t1, r1 = fs:compute(leads, plain, { as_of = AS_OF })
  local t2, r2 = fs:compute(leads, quoted, { as_of = AS_OF })
  lu.assertTrue(r1.streamed)
  lu.assertNil(r2.streamed)
  lu.assertEquals(t1:column("p"), { 1, 0 })
  lu.assertEquals(t2:column("p"), { 1, 0 })
  local missing = helpers.temp_file('lead_id,type,at\na,page_view,2026-10-01\n"b",page_view,2026-10-02\n')
  local t3, err = fs:compute(leads, missing, { as_of = AS_OF })
  lu.assertNil(t3)
  lu.assertEquals(err, "events have no column 'page'")
  for _, p in ipairs({ plain, quoted, missing }) do os.remove(p) end
end

-- Leads named by another column (id = "lead_key"), with ids that are numbers, out of order; and no
-- leads at all: the stream's join is the table's.
function T.test_other_id_column_and_no_leads()
  local fs = features.new({ p = { count = "page_view" }, f = { first = "*" } })
  local path = helpers.temp_file("lead_id,type,at\n20,page_view,2026-10-01\n7,page_view,2026-10-02\n"
    .. "7,email_open,2026-10-03\n0007,page_view,2026-10-04\n99,page_view,2026-10-05\n")
  local events = assert(leadq.read_events(path))
  for _, leads in ipairs({ core.parse_csv("lead_key,x\n20,a\n7,b\n13,c\n"), core.parse_csv("lead_key\n") }) do
    local want, want_report = fs:compute(leads, events, { as_of = AS_OF, id = "lead_key" })
    local got, report = fs:compute(leads, path, { as_of = AS_OF, id = "lead_key", threads = 2 })
    lu.assertNotNil(got, report)
    lu.assertTrue(report.streamed)
    helpers.assert_same_features(fs, want, got, #leads, "lead_key", "from the table")
    helpers.assert_same_report(want_report, report, "lead_key")
    leads:close()
  end
  lu.assertEquals(select(2, fs:compute(core.parse_csv("id\n1\n"), path, { as_of = AS_OF, id = "lead_key" })),
    "leads have no column 'lead_key' to join events on")
  events:close()
  os.remove(path)
end

-- model:score with the path scores as with the table; `leadq score --events FILE` streams it and
-- writes the bytes a run reading the same events from standard input (a table) writes.
function T.test_model_and_command_line()
  local s = sample()
  local dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = helpers.size(3000, 1000), seed = 5, out = dir })
  local model = assert(leadq.load_model("rules/mql.lua"))
  local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
  local events = assert(leadq.read_events(dir .. "/events.csv"))
  local want = assert(model:score(leads, events, { as_of = AS_OF }))
  local got, _, report = assert(model:score(leads, dir .. "/events.csv", { as_of = AS_OF, threads = 2 }))
  lu.assertTrue(report.streamed)
  for _, name in ipairs(want:names()) do lu.assertEquals(got:column(name), want:column(name), name) end
  events:close()
  leads:close()
  local leadq_cmd = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq"
  local function run(events_arg, out)
    local p = assert(io.popen(string.format("%s score --rules rules/mql.lua --leads %s/leads.csv --events %s "
      .. "--as-of %s --threads 2 --out %s 2>&1", leadq_cmd, dir, events_arg, AS_OF, out)))
    local text = p:read("*a")
    p:close()
    return text
  end
  -- a file the stream declines: the command lists its rejected rows, as it did reading a table
  local bad = {}
  for line in io.lines(dir .. "/events.csv") do bad[#bad + 1] = line end
  bad[10] = bad[10]:gsub("^([^,]*,[^,]*),[^,]*", "%1,yesterday")
  helpers.write(dir .. "/bad.csv", table.concat(bad, "\n") .. "\n")
  local declined = run(dir .. "/bad.csv", dir .. "/c.csv")
  lu.assertStrContains(declined, "rejected event rows: 1 (not scored)")
  lu.assertStrContains(declined, dir .. "/bad.csv:10: column 'at' (3): 'yesterday'")
  local streamed = run(dir .. "/events.csv", dir .. "/a.csv")
  local from_stdin = run("- < " .. dir .. "/events.csv", dir .. "/b.csv")
  lu.assertStrContains(streamed, "events read and features")
  lu.assertStrContains(from_stdin, "load events")
  lu.assertEquals(helpers.read(dir .. "/a.csv"), helpers.read(dir .. "/b.csv"))
  local function events_line(text) return text:match("\n(events: [^\n]*)") end
  lu.assertNotNil(events_line(streamed))
  lu.assertEquals(events_line(streamed):gsub(" from %S+:", ""), (events_line(from_stdin):gsub(" from %S+:", "")))
  helpers.remove_dir(dir)
  lu.assertNotNil(s)
end

-- `leadq score` reads the leads columns its models read (and id, created_at), when nothing else reads
-- the others: the same scored CSV as a run that reads them all (--transitions-out reads every column).
function T.test_command_reads_the_columns_its_models_read()
  local dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = helpers.size(3000, 800), seed = 11, out = dir })
  local leadq_cmd = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq"
  local model = assert(leadq.load_models({ "rules/mql.lua", "rules/sql.lua" }))
  local cols = model:lead_columns()
  lu.assertNotNil(cols)
  lu.assertTrue(#cols >= 10)
  for _, rules in ipairs({ "rules/mql.lua", "rules/mql.lua,rules/sql.lua", "rules/pql.lua" }) do
    local function run(extra, out)
      local p = assert(io.popen(string.format("%s score --rules %s --leads %s/leads.csv --events %s/events.csv "
        .. "--as-of %s --out %s %s 2>&1; echo status $?", leadq_cmd, rules, dir, dir, AS_OF, out, extra)))
      local text = p:read("*a")
      p:close()
      lu.assertStrContains(text, "status 0")
      return text
    end
    run("", dir .. "/some.csv")
    run("--transitions-out " .. dir .. "/t.csv", dir .. "/all.csv")
    lu.assertEquals(helpers.read(dir .. "/some.csv"), helpers.read(dir .. "/all.csv"), rules)
  end
  helpers.remove_dir(dir)
end

return M
