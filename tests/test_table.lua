-- leadq.table: building from Lua records, append, row / column / schema views, tostring, close.
local lu = require("luaunit")
local leadq = require("leadq")
local h = require("helpers")

local M = {}

local function types_of(t)
  local out = {}
  for _, c in ipairs(t:schema()) do out[c.name] = c.type end
  return out
end

local function sample()
  return leadq.table({
    { id = "L1", title = "CTO", employees = 250, active = true, tags = { "webinar", "ebook" } },
    { id = "L2", title = "Intern", employees = 12, active = false },
    { id = "L3", title = "CTO" },
  })
end

---------------------------------------------------------------------------------------------------
M.TestTableBuild = {}

function M.TestTableBuild:test_types_from_lua_values()
  local t = sample()
  lu.assertEquals(#t, 3)
  lu.assertEquals(t:names(), { "active", "employees", "id", "tags", "title" })
  lu.assertEquals(types_of(t), { active = "boolean", employees = "number", id = "text", tags = "tags",
                                 title = "category" })
end

function M.TestTableBuild:test_rows_keep_missing_fields_absent()
  local t = sample()
  lu.assertEquals(t:row(1), { id = "L1", title = "CTO", employees = 250, active = true, tags = { "webinar", "ebook" } })
  lu.assertEquals(t:row(3), { id = "L3", title = "CTO" })
  lu.assertNil(t:row(0))
  lu.assertNil(t:row(4))
  lu.assertStrContains(h.error_of(t.row, t, 1.5), "row number must be a whole number")
  lu.assertStrContains(h.error_of(t.row, t, "x"), "number expected, got string")
end

function M.TestTableBuild:test_schema_declares_types_and_order()
  local t = leadq.table({ { at = "2024-03-01T10:20:30Z", score = "12", code = 7, flag = 1 },
                          { at = 1709288430, score = 3, code = "x", flag = "no" } },
                        { { name = "at", type = "time" }, { name = "score", type = "number" },
                          { name = "code", type = "category" }, { name = "flag", type = "boolean" } })
  lu.assertEquals(t:names(), { "at", "score", "code", "flag" })
  lu.assertEquals(t:row(1), { at = 1709288430, score = 12, code = "7", flag = true })
  lu.assertEquals(t:row(2), { at = 1709288430, score = 3, code = "x", flag = false })
  -- the map form: declared columns first, in name order, then the others
  t = leadq.table({ { z = 1, b = "x", a = 2 } }, { b = "text", a = "number" })
  lu.assertEquals(t:names(), { "a", "b", "z" })
end

function M.TestTableBuild:test_schema_columns_exist_without_values()
  local t = leadq.table({}, { email = "text", score = "number" })
  lu.assertEquals(#t, 0)
  lu.assertEquals(t:names(), { "email", "score" })
  t:append({ email = "a@b.c" })
  lu.assertEquals(t:row(1), { email = "a@b.c" })
end

function M.TestTableBuild:test_mixed_kinds_need_a_declaration()
  local err = h.error_of(leadq.table, { { score = 1 }, { score = "high" } })
  lu.assertStrContains(err, "field 'score' holds both number and string values (record 2); declare its type, " ..
                            "e.g. leadq.table(records, { score = \"category\" })")
end

function M.TestTableBuild:test_bad_records_and_values()
  lu.assertStrContains(h.error_of(leadq.table, { { a = 1 }, "x" }), "record 2 is a string, expected a table")
  lu.assertStrContains(h.error_of(leadq.table, { { [1] = 1, a = 2 } }), "record 1 has a field name that is a number")
  lu.assertStrContains(h.error_of(leadq.table, { { f = print } }),
    "record 1, field 'f': a function cannot be stored")
  lu.assertStrContains(h.error_of(leadq.table, { { at = "yesterday" } }, { at = "time" }),
    "record 1, field 'at': 'yesterday' is not an ISO 8601 date or time")
  lu.assertStrContains(h.error_of(leadq.table, { { n = true } }, { n = "number" }),
    "record 1, field 'n': expected a number, got boolean")
  lu.assertStrContains(h.error_of(leadq.table, { { n = 1 } }, { n = "nombre" }), "unknown type 'nombre'")
  lu.assertStrContains(h.error_of(leadq.table, "x"), "bad argument #1")
end

function M.TestTableBuild:test_strings_become_text_when_mostly_distinct()
  local recs = {}
  for i = 1, 40 do recs[i] = { email = "u" .. i .. "@x.com", country = i % 2 == 0 and "FR" or "DE" } end
  local t = leadq.table(recs)
  lu.assertEquals(types_of(t), { email = "text", country = "category" })
end

function M.TestTableBuild:test_empty_strings_are_missing_except_in_text()
  local t = leadq.table({ { c = "", x = "", n = "" } }, { c = "category", x = "text", n = "number" })
  lu.assertEquals(t:row(1), { x = "" })
end

function M.TestTableBuild:test_tags_from_strings_or_arrays()
  local t = leadq.table({ { tags = "a; b" }, { tags = { "c", 5 } }, { tags = {} } }, { tags = "tags" })
  lu.assertEquals(t:row(1).tags, { "a", "b" })
  lu.assertEquals(t:row(2).tags, { "c", "5" })
  lu.assertEquals(t:row(3).tags, {})
  lu.assertStrContains(h.error_of(t.append, t, { tags = { true } }), "field 'tags': tag 1 is a boolean")
end

---------------------------------------------------------------------------------------------------
M.TestTableAppend = {}

function M.TestTableAppend:test_append_one_or_many()
  local t = sample()
  lu.assertIs(t:append({ id = "L4", employees = 5 }), t)
  t:append({ { id = "L5" }, { id = "L6", title = "CEO", tags = "a;b" } })
  lu.assertEquals(#t, 6)
  lu.assertEquals(t:row(4), { id = "L4", employees = 5 })
  lu.assertEquals(t:row(6), { id = "L6", title = "CEO", tags = { "a", "b" } })
  t:append({})
  lu.assertEquals(#t, 7)
  lu.assertEquals(t:row(7), {})
end

function M.TestTableAppend:test_a_failed_append_adds_nothing()
  local t = sample()
  local err = h.error_of(t.append, t, { { id = "L4" }, { id = "L5", employes = 3 } })
  lu.assertStrContains(err, "record 2: unknown field 'employes' (did you mean 'employees'?)")
  lu.assertEquals(#t, 3)
  err = h.error_of(t.append, t, { { id = "L4", title = "x" }, { id = "L5", employees = "many" } })
  lu.assertStrContains(err, "record 2, field 'employees': 'many' is not a number")
  lu.assertEquals(#t, 3)
  err = h.error_of(t.append, t, { employees = "many" })
  lu.assertStrContains(err, "field 'employees': 'many' is not a number")
  lu.assertEquals(#t, 3)
  -- the text arena went back too: the next row reads right
  t:append({ id = "L4" })
  lu.assertEquals(t:row(4), { id = "L4" })
  lu.assertEquals(t:row(3).id, "L3")
end

function M.TestTableAppend:test_append_to_a_loaded_table()
  local t = leadq.parse_csv("id,employees,created_at\nL1,10,2024-01-01\n")
  t:append({ id = "L2", employees = 20, created_at = "2024-01-02T00:00:00Z" })
  t:append({ id = "L3", created_at = 1704240000 })
  lu.assertEquals(t:column("created_at"), { 1704067200, 1704153600, 1704240000 })
end

function M.TestTableAppend:test_many_rows_grow()
  local n = h.size(50000, 5000)
  local t = leadq.table({}, { id = "text", n = "number", c = "category" })
  local batch = {}
  for i = 1, n do
    batch[#batch + 1] = { id = "L" .. i, n = i, c = "c" .. (i % 7) }
    if #batch == 1000 then t:append(batch); batch = {} end
  end
  if #batch > 0 then t:append(batch) end
  lu.assertEquals(#t, n)
  lu.assertEquals(t:row(n), { id = "L" .. n, n = n, c = "c" .. (n % 7) })
  lu.assertTrue(t:memory() > n * (8 + 4))
end

---------------------------------------------------------------------------------------------------
M.TestTableViews = {}

function M.TestTableViews:test_column_returns_values_with_holes_and_the_count()
  local t = sample()
  local col, n = t:column("employees")
  lu.assertEquals(n, 3)
  lu.assertEquals(col[1], 250)
  lu.assertEquals(col[2], 12)
  lu.assertNil(col[3])
  lu.assertEquals(t:column("tags")[1], { "webinar", "ebook" })
  lu.assertStrContains(h.error_of(t.column, t, "employes"), "unknown column 'employes' (did you mean 'employees'?)")
end

function M.TestTableViews:test_schema_names_type_has()
  local t = sample()
  lu.assertEquals(t:schema()[1], { name = "active", type = "boolean" })
  lu.assertEquals(t:type("title"), "category")
  lu.assertTrue(t:has("title"))
  lu.assertFalse(t:has("nope"))
  lu.assertEquals(t:reject_count(), 0)
  lu.assertEquals(t:rejects(), {})
  lu.assertFalse(t:is_events())
end

function M.TestTableViews:test_rows_iterates()
  local t = sample()
  local seen = {}
  for i, row in t:rows() do seen[i] = row.id end
  lu.assertEquals(seen, { "L1", "L2", "L3" })
end

function M.TestTableViews:test_len_is_an_integer()
  local t = sample()
  lu.assertEquals(#t, 3)
  if math.type then lu.assertEquals(math.type(#t), "integer") end
end

function M.TestTableViews:test_tostring_shows_schema_and_rows_aligned()
  local t = leadq.table({ { id = "L1", employees = 250, created = 1709288430, note = "x" },
                          { id = "L2", created = 1709251200, note = string.rep("long ", 10) } },
                        { { name = "id", type = "text" }, { name = "employees", type = "number" },
                          { name = "created", type = "time" }, { name = "note", type = "text" } })
  lu.assertEquals(tostring(t), table.concat({
    "leadq.Table: 2 rows, 4 columns",
    "id    employees  created              note",
    "text  number     time                 text",
    "L1    250        2024-03-01 10:20:30  x",
    "L2    nil        2024-03-01           long long long long l...",
  }, "\n"))
end

function M.TestTableViews:test_tostring_of_long_and_empty_tables()
  local recs = {}
  for i = 1, 12 do recs[i] = { n = i } end
  local s = tostring(leadq.table(recs))
  lu.assertStrContains(s, "leadq.Table: 12 rows, 1 column\nn\nnumber\n1\n2\n")
  lu.assertStrContains(s, "\n10\n... 2 more rows")
  lu.assertEquals(tostring(leadq.table({})), "leadq.Table: 0 rows, 0 columns")
  local t = leadq.parse_csv("a\n1\nx\n", { infer_rows = 1 })
  lu.assertStrContains(tostring(t), "1 rejected row (see :rejects())")
end

---------------------------------------------------------------------------------------------------
M.TestTableLifetime = {}

function M.TestTableLifetime:test_close_is_safe_twice_and_methods_then_raise()
  local t = sample()
  t:close()
  t:close()
  lu.assertEquals(tostring(t), "leadq.Table (closed)")
  lu.assertStrContains(h.error_of(t.row, t, 1), "attempt to use a closed leadq table")
  lu.assertStrContains(h.error_of(function() return #t end), "attempt to use a closed leadq table")
  lu.assertStrContains(h.error_of(t.append, t, {}), "attempt to use a closed leadq table")
end

function M.TestTableLifetime:test_close_variable()
  if _VERSION ~= "Lua 5.4" then lu.skip("<close> variables are Lua 5.4's; this is " .. _VERSION) end
  local chunk = assert(load([[
    local leadq = ...
    local keep
    do
      local t <close> = leadq.table({ { a = 1 } })
      keep = t
    end
    return keep
  ]]))
  local t = chunk(leadq)
  lu.assertEquals(tostring(t), "leadq.Table (closed)")
end

-- Measured in a Lua process of its own (a fresh heap: in the suite's process, memory freed by
-- earlier tests hides a new table from the resident size): one live table of a few megabytes shows
-- in the resident memory; twenty more, each dropped and collected before the next, leave the process
-- about one table bigger, not twenty. Prints: table bytes, growth with it live, growth at the end.
local MEASURE_GC = [[
  local function resident()
    local f = assert(io.open("/proc/self/status", "r"))
    local kb = f:read("*a"):match("VmRSS:%s*(%d+) kB")
    f:close()
    return tonumber(kb) * 1024
  end
  local leadq = require("leadq")
  local csv = "n,s\n" .. string.rep("1,abc\n", 200000)
  collectgarbage()
  local before = resident()
  local t = leadq.parse_csv(csv)
  local size, live = t:memory(), resident() - before
  t = nil
  for _ = 1, 20 do
    leadq.parse_csv(csv)
    collectgarbage()
  end
  collectgarbage()
  print(size, live, resident() - before)
]]

-- A table nothing refers to is collected, and its C memory given back.
function M.TestTableLifetime:test_garbage_collection_frees()
  local gone = setmetatable({}, { __mode = "k" })
  for _ = 1, 5 do gone[sample()] = true end
  collectgarbage()
  collectgarbage()
  lu.assertNil(next(gone), "a table nothing refers to was not collected")
  if h.slow_build() then
    lu.skip("ASan keeps freed memory in its quarantine (LeakSanitizer checks this build at exit)")
  end
  local status = io.open("/proc/self/status", "r")
  if not status then lu.skip("no /proc/self/status to read the resident memory from") end
  status:close()
  local script = h.temp_file(string.format("package.path = %q; package.cpath = %q\n", package.path, package.cpath)
    .. MEASURE_GC)
  local p = io.popen(string.format("%s %s 2>&1", arg and arg[-1] or "lua", script))
  local out = p:read("*a")
  p:close()
  h.remove(script)
  local size, live, grown = out:match("^(%d+)%s+(%-?%d+)%s+(%-?%d+)\n$")
  lu.assertNotNil(size, "the measuring process said: " .. out)
  size, live, grown = tonumber(size), tonumber(live), tonumber(grown)
  lu.assertTrue(size > 1e6, "table of " .. size .. " bytes")
  lu.assertTrue(live > size / 2, string.format("a live table of %d bytes added %d bytes resident", size, live))
  lu.assertTrue(grown < 3 * size, string.format("20 dropped tables of %d bytes left %d bytes resident", size, grown))
end

function M.TestTableLifetime:test_methods_check_self()
  local t = sample()
  lu.assertStrContains(h.error_of(t.row, {}, 1), "leadq.Table expected")
  lu.assertTrue(leadq.is_table(t))
  lu.assertFalse(leadq.is_table({}))
  lu.assertFalse(leadq.is_table(io.stdout))
end

---------------------------------------------------------------------------------------------------
M.TestTableModule = {}

function M.TestTableModule:test_module_shape_and_no_globals()
  local before = {}
  for k in pairs(_G) do before[k] = true end
  package.loaded["leadq"] = nil
  local fresh = require("leadq")
  lu.assertEquals(fresh._VERSION, "0.1.0")
  for _, name in ipairs({ "read_csv", "parse_csv", "read_events", "table", "parse_time", "format_time", "is_table" }) do
    lu.assertEquals(type(fresh[name]), "function", name)
  end
  fresh.parse_csv("a,b\n1,2\n"):row(1)
  for k in pairs(_G) do lu.assertTrue(before[k], "new global " .. tostring(k)) end
end

-- t:counts(name): a category column's values counted in the core, as leadq.util.tally counts them.
function M.TestTableViews.test_counts_of_a_category_column_equal_the_tally()
  local recs = {}
  local values = { "mql", "cold", nil, "nurture", "mql", "mql" }
  for i = 1, 600 do recs[i] = { s = values[i % 6 + 1], n = i } end
  local t = leadq.table(recs, { s = "category", n = "number" })
  lu.assertEquals(t:counts("s"), require("leadq.util").tally(t:column("s"), #t))
  lu.assertEquals(t:counts("s")["(none)"], 100)
  lu.assertErrorMsgContains("not a category column", function() t:counts("n") end)
  t:close()
end

-- t:rows_above(name, x): the rows above x, in order; missing values never are.
function M.TestTableViews.test_rows_above_a_value()
  local t = leadq.table({ { n = 5 }, { n = 1 }, {}, { n = 7 }, { n = 5 } }, { n = "number" })
  lu.assertEquals(t:rows_above("n", 5), { 4 })
  lu.assertEquals(t:rows_above("n", 0), { 1, 2, 4, 5 })
  lu.assertEquals(t:rows_above("n", 7), {})
  local s = leadq.table({ { s = "a" } }, { s = "category" })
  lu.assertErrorMsgContains("not a number or time column", function() s:rows_above("s", 1) end)
  t:close()
  s:close()
end

return M
