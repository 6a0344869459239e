-- Columnar snapshots: every column type comes back as it went in (missing values included), a
-- snapshot scores as its CSV does, and a damaged, truncated, foreign or newer file is refused with a
-- message naming it, never misread.
local lu = require("luaunit")

local leadq = require("leadq")
local helpers = require("helpers")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- Every row of a and b alike, column by column (tags compared as lists), and the same schema.
local function assert_same_table(a, b)
  lu.assertEquals(b:schema(), a:schema())
  lu.assertEquals(#b, #a)
  lu.assertEquals(b:is_events(), a:is_events())
  for _, c in ipairs(a:schema()) do
    lu.assertEquals(b:column(c.name), a:column(c.name), "column " .. c.name)
  end
end

local TYPES_CSV = table.concat({
  "id,employees,industry,consent,created_at,tags,note",
  "L1,250,Software,true,2026-03-01T10:00:00Z,webinar;pricing,first",
  "L2,,Retail,,,,",
  "L3,12.5,,false,2025-12-31,,\"\"",
  "L4,0,Software,yes,2026-01-01T00:00:00+02:00,  ; ,\"with, comma and \"\"quotes\"\"\"",
  "L5,-3,Finance,no,,demo,é ü 日本",
}, "\n") .. "\n"
local TYPES_SCHEMA = { id = "text", tags = "tags", note = "text", industry = "category" }

-- The leads of every column type and the events given, saved together at path: leads, events, path.
local function saved(path, events_csv)
  local t = leadq.parse_csv(TYPES_CSV, { schema = TYPES_SCHEMA })
  local e = leadq.parse_csv(events_csv)
  assert(leadq.save_snapshot(path, { leads = t, events = e }))
  return t, e, path
end

local TestSnapshotRoundTrip = {}

function TestSnapshotRoundTrip:setUp()
  self.dir = helpers.tmpdir()
end

function TestSnapshotRoundTrip:tearDown()
  helpers.remove_dir(self.dir)
end

function TestSnapshotRoundTrip:test_every_column_type_with_missing_values()
  local t = leadq.parse_csv(TYPES_CSV, { schema = TYPES_SCHEMA })
  local types = {}
  for _, c in ipairs(t:schema()) do types[c.name] = c.type end
  lu.assertEquals(types, { id = "text", employees = "number", industry = "category", consent = "boolean",
    created_at = "time", tags = "tags", note = "text" })
  local path = self.dir .. "/types.lqs"
  lu.assertTrue(leadq.save_snapshot(path, { leads = t }))
  assert_same_table(t, assert(leadq.read_snapshot(path, { map = true })).leads)
  local s = assert(leadq.read_snapshot(path))
  lu.assertNil(s.events)
  assert_same_table(t, s.leads)
  -- missing and empty stay apart: L2's note is missing, L3's is the empty string
  lu.assertNil(s.leads:row(2).note)
  lu.assertEquals(s.leads:row(3).note, "")
  lu.assertEquals(s.leads:row(4).note, 'with, comma and "quotes"')
  lu.assertEquals(s.leads:row(5).note, "é ü 日本")
  lu.assertEquals(s.leads:row(1).tags, { "webinar", "pricing" })
  lu.assertNil(s.leads:row(2).tags)
  lu.assertEquals(s.leads:row(4).tags, {})    -- present, with no tag in it
  lu.assertNil(s.leads:row(2).employees)
  lu.assertNil(s.leads:row(2).consent)
  lu.assertEquals(s.leads:row(3).consent, false)
end

function TestSnapshotRoundTrip:test_rejects_and_source_survive()
  local t = leadq.parse_csv("id,employees\nA,1\nB,x\nC,3,extra\nD,4\n",
    { schema = { employees = "number" }, source = "crm.csv" })
  lu.assertEquals(t:reject_count(), 2)
  local path = self.dir .. "/rejects.lqs"
  assert(leadq.save_snapshot(path, t))
  local s = assert(leadq.read_snapshot(path))
  assert_same_table(t, s.leads)
  lu.assertEquals(s.leads:reject_count(), 2)
  lu.assertEquals(s.leads:rejects(), t:rejects())
  lu.assertStrContains(s.leads:rejects()[1].message, "crm.csv")
end

function TestSnapshotRoundTrip:test_leads_and_events_together_and_events_alone()
  local leads = leadq.parse_csv(TYPES_CSV, { schema = TYPES_SCHEMA })
  local epath = self.dir .. "/events.csv"
  write(epath, "lead_id,type,at,value,page\nL1,web_visit,2026-03-01T10:00:00Z,1,/pricing\n" ..
    "L2,email_open,2026-03-02T10:00:00Z,,\nL1,demo_request,2026-03-03T10:00:00Z,2.5,/demo\n")
  local events = assert(leadq.read_events(epath))
  lu.assertTrue(events:is_events())
  local both = self.dir .. "/both.lqs"
  assert(leadq.save_snapshot(both, { leads = leads, events = events }))
  local s = assert(leadq.read_snapshot(both))
  assert_same_table(leads, s.leads)
  assert_same_table(events, s.events)
  lu.assertTrue(s.events:is_events())
  lu.assertFalse(s.leads:is_events())
  -- one events table on its own is saved as events
  local alone = self.dir .. "/events.lqs"
  assert(leadq.save_snapshot(alone, events))
  local e = assert(leadq.read_snapshot(alone))
  lu.assertNil(e.leads)
  assert_same_table(events, e.events)
end

function TestSnapshotRoundTrip:test_empty_tables()
  local header_only = leadq.parse_csv("id,employees,industry,tags\n", { schema = { id = "text", tags = "tags",
    employees = "number", industry = "category" } })
  local none = leadq.table({})
  local path = self.dir .. "/empty.lqs"
  assert(leadq.save_snapshot(path, { leads = header_only, events = none }))
  local s = assert(leadq.read_snapshot(path))
  assert_same_table(header_only, s.leads)
  lu.assertEquals(#s.events, 0)
end

function TestSnapshotRoundTrip:test_big_table_and_it_still_grows()
  local n = helpers.size(200000, 20000)
  local rng = helpers.rng(7)
  local lines = { "id,employees,industry,consent,created_at,tags,note" }
  local industries = { "Software", "Retail", "Finance", "Health", "" }
  for i = 1, n do
    local r = rng(1000000007)
    lines[#lines + 1] = string.format("L%d,%s,%s,%s,%s,%s,note %d", i, r % 7 == 0 and "" or tostring(r % 5000),
      industries[r % 5 + 1], r % 3 == 0 and "true" or (r % 3 == 1 and "false" or ""),
      r % 11 == 0 and "" or string.format("2026-%02d-%02dT10:00:00Z", r % 12 + 1, r % 28 + 1),
      r % 4 == 0 and "" or ("t" .. (r % 9) .. ";u" .. (r % 13)), r % 1000)
  end
  local t = leadq.parse_csv(table.concat(lines, "\n") .. "\n", { schema = TYPES_SCHEMA })
  lu.assertEquals(#t, n)
  local path = self.dir .. "/big.lqs"
  assert(leadq.save_snapshot(path, t))
  for _, opts in ipairs({ {}, { map = true, threads = 2 } }) do
    local s = assert(leadq.read_snapshot(path, opts))
    assert_same_table(t, s.leads)
    -- a table read from a snapshot is an ordinary table: it takes new rows and new dictionary values
    -- (mapped, its columns are copied into memory of its own first; the file is never written)
    s.leads:append({ id = "NEW", industry = "Aerospace", tags = { "t1", "brand-new" }, note = "added" })
    lu.assertEquals(#s.leads, n + 1)
    lu.assertEquals(s.leads:row(n + 1).industry, "Aerospace")
    lu.assertEquals(s.leads:row(n + 1).tags, { "t1", "brand-new" })
    lu.assertEquals(s.leads:row(1), t:row(1))
    s.leads:close()
  end
  assert_same_table(t, assert(leadq.read_snapshot(path, { map = true })).leads)
end

-- Mapped, a table keeps the file's pages: it outlives the reader, its sibling table and the file's
-- replacement (a save renames a new file over the old one), and appending to it leaves the file as it was.
function TestSnapshotRoundTrip:test_a_mapped_table_outlives_its_sibling_and_the_file()
  local _, e, path = saved(self.dir .. "/kept.lqs",
    "lead_id,type,at,value\nL1,visit,2026-03-01T10:00:00Z,1\nL2,demo,2026-03-02T10:00:00Z,\n")
  local s = assert(leadq.read_snapshot(path, { map = true }))
  s.events:append({ lead_id = "L9", type = "new type", value = 5 })
  lu.assertEquals(s.events:row(3), { lead_id = "L9", type = "new type", value = 5 })
  assert_same_table(e, assert(leadq.read_snapshot(path)).events)
  s.leads:close()
  collectgarbage("collect")
  assert(leadq.save_snapshot(path, leadq.parse_csv("id\nother\n")))
  lu.assertEquals(assert(leadq.read_snapshot(path)).leads:column("id"), { "other" })
  lu.assertEquals(s.events:column("type"), { "visit", "demo", "new type" })
  lu.assertEquals(s.events:row(1), e:row(1))
end

-- options.columns: only the columns named are read (a name a table lacks is passed over, a table not
-- named is read whole), and what a column not read holds does not matter, only where it lies.
function TestSnapshotRoundTrip:test_only_the_columns_asked_for()
  local t, e, path = saved(self.dir .. "/some.lqs", "lead_id,type,at,value\nL1,visit,2026-03-01T10:00:00Z,1\n")
  for _, map in ipairs({ false, true }) do
    local s = assert(leadq.read_snapshot(path, { map = map, columns = { leads = { "industry", "tags", "nope" } } }))
    lu.assertEquals(s.leads:names(), { "industry", "tags" })
    lu.assertEquals(#s.leads, #t)
    lu.assertEquals(s.leads:column("industry"), t:column("industry"))
    lu.assertEquals(s.leads:column("tags"), t:column("tags"))
    assert_same_table(e, s.events)
    s = assert(leadq.read_snapshot(path, { map = map, columns = { leads = {}, events = { "at" } } }))
    lu.assertEquals(s.leads:names(), {})
    lu.assertEquals(#s.events, 1)
    lu.assertEquals(s.events:column("at"), e:column("at"))
  end
  -- a byte of the note column's text changed: refused when read, passed over when not
  local bytes = read(path)
  local at = bytes:find("first", 1, true)
  write(path, bytes:sub(1, at - 1) .. "F" .. bytes:sub(at + 1))
  for _, map in ipairs({ false, true }) do
    lu.assertNil(leadq.read_snapshot(path, { map = map }))
    local s = assert(leadq.read_snapshot(path, { map = map, columns = { leads = { "id", "tags" } } }))
    lu.assertEquals(s.leads:column("id"), t:column("id"))
  end
  lu.assertStrContains(helpers.error_of(leadq.read_snapshot, path, { colums = {} }),
    "read_snapshot: unknown option 'colums'")
  lu.assertStrContains(helpers.error_of(leadq.read_snapshot, path, { columns = { leads = { 1 } } }),
    "column names are strings")
end

-- A big dictionary read in place is indexed when first searched: events whose lead ids come in no
-- order (the feature pass then looks each lead up) score as read, and the table still takes new values.
function TestSnapshotRoundTrip:test_a_big_dictionary_in_place_is_searched_and_grows()
  local n = 70000   -- more distinct lead ids than a dictionary read in place is indexed for at once
  local leads_lines, event_lines = { "id,created_at" }, { "lead_id,type,at,value" }
  for i = 1, n do leads_lines[#leads_lines + 1] = string.format("L%d,2026-01-01T00:00:00Z", i) end
  for i = n, 1, -1 do
    event_lines[#event_lines + 1] = string.format("L%d,%s,2026-0%d-10T10:00:00Z,", (i * 7919) % n + 1,
      i % 3 == 0 and "demo_request" or "pricing_view", i % 9 + 1)
  end
  local leads = leadq.parse_csv(table.concat(leads_lines, "\n") .. "\n", { schema = { id = "text" } })
  local events = leadq.parse_csv(table.concat(event_lines, "\n") .. "\n",
    { schema = { lead_id = "category", value = "number" } })
  local path = self.dir .. "/ids.lqs"
  assert(leadq.save_snapshot(path, { leads = leads, events = events }))
  local s = assert(leadq.read_snapshot(path, { map = true }))
  local fs = leadq.features({ demos = { count = "demo_request" },
    views = { count = "pricing_view", within_days = 90 } })
  local want = assert(fs:compute(leads, events, { as_of = "2026-11-01" }))
  local got = assert(fs:compute(s.leads, s.events, { as_of = "2026-11-01" }))
  lu.assertEquals(got:column("demos"), want:column("demos"))
  lu.assertEquals(got:column("views"), want:column("views"))
  s.events:append({ lead_id = "L5", type = "demo_request", at = 1e9 })
  s.events:append({ lead_id = "brand new", type = "demo_request", at = 1e9 })
  lu.assertEquals(#s.events:categories("lead_id"), n + 1)
  lu.assertEquals(s.events:row(n + 1).lead_id, "L5")
  lu.assertEquals(s.events:row(n + 2).lead_id, "brand new")
end

function TestSnapshotRoundTrip:test_scores_as_the_csv_does()
  local dir = self.dir .. "/gen"
  assert(require("leadq.gen").generate { leads = helpers.size(3000, 600), seed = 11, out = dir })
  local leads = assert(leadq.read_csv(dir .. "/leads.csv"))
  local events = assert(leadq.read_events(dir .. "/events.csv"))
  local path = self.dir .. "/gen.lqs"
  assert(leadq.save_snapshot(path, { leads = leads, events = events }))
  local s = assert(leadq.read_snapshot(path))
  local model = assert(leadq.load_model("rules/mql.lua"))
  local as_of = leadq.parse_time("2026-12-01")
  local from_csv = assert(model:score(leads, events, { as_of = as_of }))
  local from_snapshot = assert(model:score(s.leads, s.events, { as_of = as_of }))
  assert_same_table(from_csv, from_snapshot)
  local lead_columns = { "id", "created_at", (table.unpack or unpack)(model:lead_columns()) }
  local m = assert(leadq.read_snapshot(path, { map = true, threads = 3,
    columns = { leads = lead_columns, events = model:event_columns() } }))
  assert_same_table(from_csv, assert(model:score(m.leads, m.events, { as_of = as_of })))
  lu.assertTrue(#from_csv > 0)
end

function TestSnapshotRoundTrip:test_save_replaces_a_file_whole_and_leaves_nothing_behind()
  local t = leadq.parse_csv(TYPES_CSV, { schema = TYPES_SCHEMA })
  local path = self.dir .. "/again.lqs"
  write(path, "an older file\n")
  assert(leadq.save_snapshot(path, t))
  assert(leadq.save_snapshot(path, t))
  local ls = io.popen("ls '" .. self.dir .. "'")
  local names = ls:read("*a")
  ls:close()
  lu.assertEquals(names, "again.lqs\n")
  assert_same_table(t, assert(leadq.read_snapshot(path)).leads)
end

local TestSnapshotRefusals = {}

function TestSnapshotRefusals:setUp()
  self.dir = helpers.tmpdir()
  local t = leadq.parse_csv(TYPES_CSV, { schema = TYPES_SCHEMA })
  local e = leadq.parse_csv("lead_id,type,at,value\nL1,visit,2026-03-01T10:00:00Z,1\n")
  self.good = self.dir .. "/good.lqs"
  assert(leadq.save_snapshot(self.good, { leads = t, events = e }))
  self.bytes = read(self.good)
  self.path = self.dir .. "/bad.lqs"
end

function TestSnapshotRefusals:tearDown()
  helpers.remove_dir(self.dir)
end

-- read_snapshot of bytes: nil and a message naming the file, the same read or mapped.
function TestSnapshotRefusals:refused(bytes)
  write(self.path, bytes)
  local s, err = leadq.read_snapshot(self.path)
  lu.assertNil(s)
  lu.assertIsString(err)
  lu.assertStrContains(err, self.path .. ": ")
  local m, merr = leadq.read_snapshot(self.path, { map = true, threads = 2 })
  lu.assertNil(m)
  lu.assertEquals(merr, err)
  return err
end

function TestSnapshotRefusals:test_a_byte_flipped_anywhere_is_refused()
  local bytes = self.bytes
  lu.assertTrue(#bytes > 500)
  for i = 1, #bytes do
    local b = bytes:byte(i)
    local err = self:refused(bytes:sub(1, i - 1) .. string.char((b + 1 + i % 200) % 256) .. bytes:sub(i + 1))
    local named = err:find("damaged snapshot", 1, true) or err:find("not a leadq snapshot", 1, true) or
      err:find("truncated", 1, true) or err:find("format", 1, true) or err:find("byte order", 1, true)
    lu.assertNotNil(named, "byte " .. i .. ": " .. err)
  end
end

function TestSnapshotRefusals:test_checksums_name_the_section()
  -- the last byte of the note column's text: after the header, inside that section's data
  local at = self.bytes:find("first", 1, true)
  local err = self:refused(self.bytes:sub(1, at - 1) .. "F" .. self.bytes:sub(at + 1))
  lu.assertStrContains(err, "damaged snapshot: the text section of column 'note' (table leads) fails its checksum")
end

function TestSnapshotRefusals:test_every_truncation_is_refused()
  local bytes = self.bytes
  for n = 0, #bytes - 1 do
    local err = self:refused(bytes:sub(1, n))
    if n >= 8 then lu.assertStrContains(err, "truncated") end
  end
  lu.assertStrContains(self:refused(""), "not a leadq snapshot")
  lu.assertStrContains(self:refused(bytes .. "\0\0\0\0\0\0\0\0"), "after its end")
end

function TestSnapshotRefusals:test_foreign_newer_and_other_byte_order()
  lu.assertStrContains(self:refused("id,employees\nL1,3\n"), "not a leadq snapshot")
  lu.assertStrContains(self:refused("\137PNG\r\n\26\n" .. self.bytes:sub(9)), "not a leadq snapshot")
  local newer = self.bytes:sub(1, 8) .. string.char(2, 0, 0, 0) .. self.bytes:sub(13)
  lu.assertStrContains(self:refused(newer), "snapshot of format 2, newer than this leadq reads (format 1)")
  local swapped = self.bytes:sub(1, 16) .. self.bytes:sub(17, 24):reverse() .. self.bytes:sub(25)
  lu.assertStrContains(self:refused(swapped), "written on a machine of the other byte order")
  local none, err = leadq.read_snapshot(self.dir .. "/no-such.lqs")
  lu.assertNil(none)
  lu.assertStrContains(err, "no-such.lqs: No such file or directory")
  none, err = leadq.read_snapshot(self.dir)
  lu.assertNil(none)
  lu.assertStrContains(err, "a snapshot must be a regular file")
end

function TestSnapshotRefusals:test_is_snapshot_by_content()
  lu.assertTrue(leadq.is_snapshot(self.good))
  local renamed = self.dir .. "/leads.csv"
  write(renamed, self.bytes)
  lu.assertTrue(leadq.is_snapshot(renamed))
  write(self.path, "id\nL1\n")
  lu.assertFalse(leadq.is_snapshot(self.path))
  lu.assertFalse(leadq.is_snapshot(self.dir .. "/no-such.lqs"))
end

function TestSnapshotRefusals:test_misuse_raises_and_write_failures_return_a_message()
  local t = leadq.parse_csv("id\nL1\n")
  lu.assertStrContains(helpers.error_of(leadq.save_snapshot, self.path, { lead = t }),
    "save_snapshot: unknown key 'lead'")
  lu.assertStrContains(helpers.error_of(leadq.save_snapshot, self.path, { leads = "x" }),
    "save_snapshot: 'leads' must be a leadq table, got string")
  lu.assertStrContains(helpers.error_of(leadq.save_snapshot, self.path, {}), "save_snapshot: give")
  lu.assertNotNil(helpers.error_of(leadq.save_snapshot, nil, t))
  local closed = leadq.parse_csv("id\nL1\n")
  closed:close()
  lu.assertStrContains(helpers.error_of(leadq.save_snapshot, self.path, closed), "closed leadq table")
  local ok, err = leadq.save_snapshot(self.dir .. "/no/such/dir/x.lqs", t)
  lu.assertNil(ok)
  lu.assertStrContains(err, self.dir .. "/no/such/dir/x.lqs: cannot create the snapshot beside it")
end

local TestSnapshotCommand = {}

local function main(argv)
  local printed, errors = {}, {}
  local status = require("leadq.cli").main(argv, {
    print = function(line) printed[#printed + 1] = line end,
    error = function(line) errors[#errors + 1] = line end,
  })
  return status, table.concat(printed, "\n"), table.concat(errors, "\n")
end

function TestSnapshotCommand:setUp()
  self.dir = helpers.tmpdir()
  assert(require("leadq.gen").generate { leads = helpers.size(2000, 400), seed = 3, out = self.dir })
end

function TestSnapshotCommand:tearDown()
  helpers.remove_dir(self.dir)
end

function TestSnapshotCommand:test_load_save_then_score_the_snapshot_as_the_csv()
  local d = self.dir
  local status, printed, errors = main({ "load", "--leads", d .. "/leads.csv", "--events", d .. "/events.csv",
    "--save", d .. "/export.lqs" })
  lu.assertEquals(status, 0, errors)
  lu.assertStrContains(printed, "saved leads and events to the snapshot " .. d .. "/export.lqs")
  lu.assertTrue(leadq.is_snapshot(d .. "/export.lqs"))
  -- the snapshot's events stand in for --events
  local csv_status, _, csv_errors = main({ "score", "--rules", "mql", "--leads", d .. "/leads.csv",
    "--events", d .. "/events.csv", "--as-of", "2026-12-01", "--out", d .. "/from_csv.csv" })
  lu.assertEquals(csv_status, 0, csv_errors)
  status, printed, errors = main({ "score", "--rules", "mql", "--leads", d .. "/export.lqs", "--as-of", "2026-12-01",
    "--out", d .. "/from_snapshot.csv" })
  lu.assertEquals(status, 0, errors)
  lu.assertStrContains(printed, "read from " .. d .. "/export.lqs")
  lu.assertEquals(read(d .. "/from_snapshot.csv"), read(d .. "/from_csv.csv"))
  -- load describes a snapshot as it does a CSV
  status, printed = main({ "load", "--leads", d .. "/export.lqs" })
  lu.assertEquals(status, 0)
  lu.assertStrContains(printed, "leads " .. d .. "/export.lqs: ")
end

function TestSnapshotCommand:test_what_a_snapshot_cannot_be_given_with()
  local d = self.dir
  assert(leadq.save_snapshot(d .. "/events.lqs", assert(leadq.read_events(d .. "/events.csv"))))
  local status, _, errors = main({ "score", "--rules", "mql", "--leads", d .. "/events.lqs" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(errors, d .. "/events.lqs: the snapshot holds no leads table")
  write(d .. "/map.csv", "Lead Source,source\n")
  status, _, errors = main({ "score", "--rules", "mql", "--leads", d .. "/events.lqs", "--map", d .. "/map.csv" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(errors, "is a snapshot, loaded already: --map")
  local bytes = read(d .. "/events.lqs")
  write(d .. "/broken.lqs", bytes:sub(1, #bytes - 100))
  status, _, errors = main({ "score", "--rules", "mql", "--leads", d .. "/broken.lqs" })
  lu.assertEquals(status, 1)
  lu.assertStrContains(errors, d .. "/broken.lqs: truncated snapshot")
end

return { TestSnapshotRoundTrip = TestSnapshotRoundTrip, TestSnapshotRefusals = TestSnapshotRefusals,
         TestSnapshotCommand = TestSnapshotCommand }
