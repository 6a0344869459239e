-- leadq.read_csv / parse_csv / read_events: parsing, types, options, rejects, strict mode.
local lu = require("luaunit")
local leadq = require("leadq")
local h = require("helpers")

local M = {}

local function parse(text, options)
  return leadq.parse_csv(text, options)
end

local function types_of(t)
  local out = {}
  for _, c in ipairs(t:schema()) do out[c.name] = c.type end
  return out
end

local function messages(t)
  local out = {}
  for i, r in ipairs(t:rejects()) do out[i] = r.message end
  return out
end

---------------------------------------------------------------------------------------------------
M.TestCsvQuoting = {}

function M.TestCsvQuoting:test_separator_inside_quotes()
  local t = parse('name,city\n"Doe, Jane","Paris, FR"\n')
  lu.assertEquals(#t, 1)
  lu.assertEquals(t:row(1), { name = "Doe, Jane", city = "Paris, FR" })
end

function M.TestCsvQuoting:test_doubled_quotes()
  local t = parse('a,b\n"say ""hi""","x"\n"""",""""""\n')
  lu.assertEquals(t:row(1).a, 'say "hi"')
  lu.assertEquals(t:row(2).a, '"')
  lu.assertEquals(t:row(2).b, '""')
end

function M.TestCsvQuoting:test_newlines_inside_quotes()
  local t = parse('id,note,n\na1,"line one\nline two",1\na2,"crlf\r\ninside",2\na3,plain,3\n')
  lu.assertEquals(#t, 3)
  lu.assertEquals(t:row(1).note, "line one\nline two")
  lu.assertEquals(t:row(2).note, "crlf\r\ninside")
  lu.assertEquals(t:row(3).n, 3)
end

function M.TestCsvQuoting:test_line_numbers_count_newlines_inside_quotes()
  local t = parse('a,b\n"x\ny\nz",1\nbad\n', { schema = { b = "number" } })
  lu.assertEquals(t:reject_count(), 1)
  local r = t:rejects()[1]
  lu.assertEquals(r.line, 5)
  lu.assertEquals(r.record, 2)
  lu.assertEquals(r.message, "[string]:5: expected 2 fields, found 1")
end

function M.TestCsvQuoting:test_quoted_empty_is_empty_text_unquoted_is_missing()
  local t = parse('id,note,n\na,"",""\nb,,\n', { schema = { note = "text", n = "number" } })
  lu.assertEquals(t:row(1).note, "")
  lu.assertNil(t:row(1).n)
  lu.assertNil(t:row(2).note)
  lu.assertNil(t:row(2).n)
end

function M.TestCsvQuoting:test_unterminated_quote_is_rejected()
  local t = parse('a,b\n1,ok\n2,"never closed\n3,x\n', { schema = { a = "number" } })
  lu.assertEquals(#t, 2)  -- the line after the unclosed quote is read on its own
  lu.assertEquals(t:row(2), { a = 3, b = "x" })
  lu.assertEquals(t:reject_count(), 1)
  local r = t:rejects()[1]
  lu.assertEquals(r.line, 3)
  lu.assertEquals(r.column, "b")
  lu.assertEquals(r.column_number, 2)
  lu.assertEquals(r.message,
    "[string]:3: column 'b' (2): unterminated quoted field: its opening quote is never closed")
end

-- 25 rows, a stray quote in row 5: it once took the 20 rows after it into one reject.
local function rows_with(line5, extra)
  local rows = { "id,name,score" }
  for i = 1, 25 do rows[#rows + 1] = i == 5 and line5 or (i .. ",n" .. i .. "," .. i) end
  if extra then rows[extra[1] + 1] = extra[2] end
  return table.concat(rows, "\n") .. "\n"
end

function M.TestCsvQuoting:test_stray_quote_loses_no_row()
  local cases = {
    { rows_with('5,"Acme,5'), 24, { "[string]:6: column 'name' (2): unterminated quoted field: " ..
        "its opening quote is never closed" } },
    { rows_with('5,"Acme,5', { 11, '11,"Bo",x"y,3' }), 23, {
        "[string]:6: column 'name' (2): the quoted field opened on this line closes on line 12 with text " ..
        "after its closing quote; the lines after this one are read as records of their own",
        "[string]:12: expected 3 fields, found 4" } },
    { rows_with('5,"Acme,5', { 11, '11,Bo,3"' }), 24, {
        "[string]:6: column 'name' (2): expected 3 fields, found 2: a quoted field opened on this line " ..
        "runs on to line 12; the lines after this one are read as records of their own" } },
  }
  for _, case in ipairs(cases) do
    local t = parse(case[1])
    lu.assertEquals(#t + t:reject_count(), 25)
    lu.assertEquals(#t, case[2])
    lu.assertEquals(messages(t), case[3])
    lu.assertEquals(t:row(#t).name, "n25")
    -- a sample that ends before the stray quote: types differ (3" is then no number), not the count
    t = parse(case[1], { infer_rows = 3 })
    lu.assertEquals(#t + t:reject_count(), 25)
    lu.assertEquals(messages(t)[1], case[3][1])
    h.with_file(case[1], function(name)
      local f = leadq.read_csv(name)
      lu.assertEquals(#f + f:reject_count(), 25)
      lu.assertEquals(#f, case[2])
    end)
  end
end

function M.TestCsvQuoting:test_text_after_closing_quote_is_rejected()
  local t = parse('a,b\n"x"y,1\n"ok",2\n')
  lu.assertEquals(#t, 1)
  lu.assertEquals(t:row(1).a, "ok")
  lu.assertEquals(messages(t),
    { "[string]:2: column 'a' (1): unexpected text after the closing quote of a quoted field" })
end

function M.TestCsvQuoting:test_spaces_after_closing_quote_are_ignored()
  local t = parse('a,b\n"x"  ,1\n')
  lu.assertEquals(t:row(1), { a = "x", b = 1 })
end

function M.TestCsvQuoting:test_quote_inside_unquoted_field_is_kept()
  local t = parse('a,b\n5" screen,1\n')
  lu.assertEquals(t:row(1).a, '5" screen')
end

-- Records of every shape the record scanner meets, against the values they were made from: fields
-- of 0 to 80 bytes across its 32-byte blocks, quotes inside unquoted fields, quoted fields holding
-- separators, line ends and doubled quotes, lines ended by \n, \r\n or a lone \r, and a last line
-- with or without its end. Read from a string, from a file, and from a file on 2 threads cut every
-- 37 bytes (each cut a new buffer): every value is the one written.
function M.TestCsvQuoting:test_generated_records_read_back_as_written()
  local unquoted_chars = 'abcXYZ019.-_/"; '
  local quoted_chars = 'ab, \n"\r9'
  for seed = 1, 12 do
    local rng = h.rng(seed * 7919)
    local function pick(chars, len)   -- len characters drawn from chars
      local out = {}
      for k = 1, len do
        local i = rng(#chars)
        out[k] = chars:sub(i, i)
      end
      return table.concat(out)
    end
    local ncols, nrows = rng(12), 40 + rng(120)
    local names, schema = {}, {}
    for c = 1, ncols do
      names[c] = "c" .. c
      schema[names[c]] = "text"
    end
    local lines, want = { table.concat(names, ",") }, {}
    local ends = { "\n", "\r\n", "\r" }
    local eol = ends[rng(3)]
    for r = 1, nrows do
      local fields, row = {}, {}
      for c = 1, ncols do
        local len = ({ 0, rng(8), rng(40), rng(80) })[rng(4)]
        if rng(3) == 1 then   -- quoted: anything, its quotes doubled; "" is empty text
          local value = pick(quoted_chars, len)
          fields[c] = '"' .. value:gsub('"', '""') .. '"'
          row[names[c]] = value
        else                  -- unquoted: no separator or line end, no quote or space first or last
          local value = pick(unquoted_chars, len):gsub(",", "")
          if value:find('^[" ]') or value:find(" $") then value = "x" .. value .. "x" end
          fields[c] = value
          row[names[c]] = value ~= "" and value or nil
        end
      end
      if ncols == 1 and fields[1] == "" then   -- a blank line is skipped, not a row
        fields[1], row[names[1]] = "z", "z"
      end
      lines[#lines + 1] = table.concat(fields, ",")
      want[r] = row
    end
    local text = table.concat(lines, eol) .. (rng(2) == 1 and eol or "")
    local function check(t, how)
      lu.assertEquals(t:reject_count(), 0, how .. ": " .. table.concat(messages(t), "; "))
      lu.assertEquals(#t, nrows, how)
      for r = 1, nrows do lu.assertEquals(t:row(r), want[r], string.format("seed %d, %s, row %d", seed, how, r)) end
    end
    check(parse(text, { schema = schema }), "from a string")
    h.with_file(text, function(path)
      check(assert(leadq.read_csv(path, { schema = schema })), "from a file")
      check(assert(leadq.read_csv(path, { schema = schema, threads = 2, chunk_bytes = 37 })), "on 2 threads")
    end)
  end
end

---------------------------------------------------------------------------------------------------
M.TestCsvLayout = {}

function M.TestCsvLayout:test_separators_are_detected()
  for _, sep in ipairs({ ",", ";", "\t" }) do
    local text = table.concat({ "name", "employees", "country" }, sep) .. "\n" ..
                 table.concat({ '"Acme' .. sep .. ' Inc"', "250", "FR" }, sep) .. "\n"
    local t = parse(text)
    lu.assertEquals(t:names(), { "name", "employees", "country" })
    lu.assertEquals(t:row(1), { name = "Acme" .. sep .. " Inc", employees = 250, country = "FR" })
  end
end

function M.TestCsvLayout:test_separator_option()
  local t = parse("a|b\n1|2\n", { separator = "|" })
  lu.assertEquals(t:row(1), { a = 1, b = 2 })
  -- a declared separator wins over what the header suggests
  t = parse("a;b,c\n1;2,3\n", { separator = "," })
  lu.assertEquals(t:names(), { "a;b", "c" })
end

function M.TestCsvLayout:test_crlf_and_lone_cr()
  local t = parse("a,b\r\n1,x\r\n2,y\r\n")
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:row(2), { a = 2, b = "y" })
  t = parse("a,b\r1,x\r2,y")
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:row(2), { a = 2, b = "y" })
end

function M.TestCsvLayout:test_bom_and_no_final_newline()
  local t = parse("\239\187\191id,score\na,1\nb,2")
  lu.assertEquals(t:names(), { "id", "score" })
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:row(2), { id = "b", score = 2 })
end

-- Quotes in every odd place: each line is loaded or rejected, none is lost or counted twice, and
-- the work stays linear (each line is read again at most once after a malformed record).
function M.TestCsvQuoting:test_rows_in_equal_rows_loaded_plus_rejected()
  for _, pattern in ipairs({ '"a', '"""', '""', '1,"x""', '"x"",', '""""', '1,"', 'a,"b\r', '"\r"' }) do
    local rows = { "id,name,score", '0,"start' }
    for _ = 1, 200 do rows[#rows + 1] = pattern end
    rows[#rows + 1] = 'end"x,1,2'
    local text = table.concat(rows, "\n") .. "\n"
    local t = parse(text)
    lu.assertEquals(#t + t:reject_count(), 202, pattern)
    h.with_file(text, function(name)
      local f = leadq.read_csv(name)
      lu.assertEquals(#f + f:reject_count(), 202, pattern)
    end)
  end
end

-- A zero byte tells a binary file from CSV in the first megabyte: a string held it all in its
-- buffer and was refused for a zero byte further on, where the same file loaded.
function M.TestCsvLayout:test_binary_data_is_judged_alike_from_a_string_and_a_file()
  local rows = { "id,note" }
  for i = 1, 40000 do rows[#rows + 1] = string.format("L%06d,%s", i, string.rep("x", 20)) end
  local text = table.concat(rows, "\n") .. "\nLast,a\0b\n"
  lu.assertTrue(#text > 1048576)
  local t = parse(text)
  lu.assertEquals(#t, 40001)
  h.with_file(text, function(name) lu.assertEquals(#leadq.read_csv(name), 40001) end)
  local v, err = pcall(parse, "id,note\nA,a\0b\n")
  lu.assertFalse(v)
  lu.assertStrContains(err, "[string] is not a CSV file: it holds binary data (a zero byte at byte 12)")
end

-- The header record with no header is data: it was read again from a position saved before the
-- buffer was refilled (past the buffer's end under a BOM, and 3 bytes short).
function M.TestCsvLayout:test_bom_without_header()
  for _, case in ipairs({ { "\239\187\191\n1", 1, "1" }, { "\239\187\191\n1234,5\nx,y", 2, "1234" },
                          { "\239\187\191" .. string.rep("7", 70000) .. ",1\n2,3", 2, string.rep("7", 70000) } }) do
    local text, rows, first = case[1], case[2], case[3]
    local t = parse(text, { header = false, schema = { column_1 = "text" } })
    lu.assertEquals(#t, rows)
    lu.assertEquals(t:row(1).column_1, first)
    lu.assertEquals(t:reject_count(), 0)
    h.with_file(text, function(name)
      local f = leadq.read_csv(name, { header = false, schema = { column_1 = "text" } })
      lu.assertEquals(#f, rows)
      lu.assertEquals(f:row(1).column_1, first)
      lu.assertEquals(f:reject_count(), 0)
    end)
  end
end

function M.TestCsvLayout:test_blank_lines_are_skipped()
  local t = parse("a,b\n\n1,2\n\r\n\n3,4\n\n")
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:row(2), { a = 3, b = 4 })
  lu.assertEquals(t:reject_count(), 0)
end

function M.TestCsvLayout:test_header_is_trimmed_and_empty_names_generated()
  local t = parse(" a , ,c\n1,2,3\n")
  lu.assertEquals(t:names(), { "a", "column_2", "c" })
end

function M.TestCsvLayout:test_no_header()
  local t = parse("1,x\n2,y\n", { header = false })
  lu.assertEquals(t:names(), { "column_1", "column_2" })
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:row(1), { column_1 = 1, column_2 = "x" })
  t = parse("1,x\n2,y\n", { header = false, map = { column_2 = "letter" } })
  lu.assertEquals(t:names(), { "column_1", "letter" })
end

function M.TestCsvLayout:test_empty_input()
  local t = parse("")
  lu.assertEquals(#t, 0)
  lu.assertEquals(t:names(), {})
  t = parse("a,b\n")
  lu.assertEquals(#t, 0)
  lu.assertEquals(t:names(), { "a", "b" })
end

function M.TestCsvLayout:test_wrong_field_count_is_rejected()
  local t = parse("a,b,c\n1,2,3\n1,2\n1,2,3,4\n4,5,6\n")
  lu.assertEquals(#t, 2)
  lu.assertEquals(messages(t), { "[string]:3: expected 3 fields, found 2",
                                 "[string]:4: expected 3 fields, found 4" })
  local r = t:rejects()[1]
  lu.assertEquals(r.record, 2)
  lu.assertNil(r.column)
  lu.assertEquals(r.file, "[string]")
  lu.assertEquals(r.reason, "expected 3 fields, found 2")
end

function M.TestCsvLayout:test_duplicate_columns_are_an_error()
  local err = h.error_of(parse, "a,b,a\n1,2,3\n")
  lu.assertStrContains(err, "[string]: column 'a' appears twice (columns 1 and 3)")
end

---------------------------------------------------------------------------------------------------
M.TestCsvInference = {}

function M.TestCsvInference:test_types_from_values()
  local lines = { "lead_id,employees,active,created_at,country,zip,ratio,flag01" }
  for i = 1, 40 do
    lines[#lines + 1] = string.format("L%d,%d,%s,2024-03-%02d,%s,0%d,%s,%d", i, i * 10,
      i % 2 == 0 and "yes" or "no", i % 28 + 1, ({ "FR", "DE", "US" })[i % 3 + 1], 1000 + i % 5,
      tostring(i / 8), i % 2)
  end
  local t = parse(table.concat(lines, "\n"))
  lu.assertEquals(types_of(t), {
    lead_id = "text", employees = "number", active = "boolean", created_at = "time",
    country = "category", zip = "category", ratio = "number", flag01 = "number" })
  lu.assertEquals(t:row(2).active, true)
  lu.assertEquals(t:row(1).zip, "01001")
  lu.assertEquals(t:row(5).zip, "01000")
end

function M.TestCsvInference:test_booleans_in_any_case()
  local t = parse("a,b,c\nTrue,YES,t\nfalse,no,F\n")
  lu.assertEquals(types_of(t), { a = "boolean", b = "boolean", c = "boolean" })
  lu.assertEquals(t:row(2), { a = false, b = false, c = false })
end

function M.TestCsvInference:test_category_or_text_by_cardinality()
  local lines = { "email,source" }
  for i = 1, 50 do lines[#lines + 1] = ("u%d@x.com,%s"):format(i, i % 2 == 0 and "web" or "ads") end
  local t = parse(table.concat(lines, "\n"))
  lu.assertEquals(types_of(t), { email = "text", source = "category" })
end

-- A column's values met lately are looked up in a small cache by length and end bytes: values that
-- share both (the same slot) take turns in it, each row keeps its own, and the dictionary still
-- lists the values in the order they first appear.
function M.TestCsvInference:test_values_sharing_a_cache_slot_keep_their_rows()
  local lines, want, order, seen = { "n,code" }, {}, {}, {}
  for i = 1, 3000 do
    local v = ("a%db"):format((i * 7) % 10)   -- ten values of one length, one first and last byte
    if i % 11 == 0 then v = ("a%d%db"):format(i % 3, i % 5) end
    if i % 13 == 0 then v = "" end
    lines[#lines + 1], want[i] = ("%d,%s"):format(i, v), v ~= "" and v or nil
    if v ~= "" and not seen[v] then order[#order + 1], seen[v] = v, true end
  end
  local t = parse(table.concat(lines, "\n"), { schema = { code = "category" } })
  lu.assertEquals(#t, 3000)
  lu.assertEquals(t:column("code"), want)
  lu.assertEquals(t:categories("code"), order)
end

function M.TestCsvInference:test_identifiers_are_never_numbers()
  local t = parse("id,account_id,leadId,n\n1,7,100,1\n2,7,101,2\n3,8,102,3\n")
  lu.assertEquals(types_of(t), { id = "text", account_id = "category", leadId = "text", n = "number" })
  lu.assertEquals(t:row(1).id, "1")
end

function M.TestCsvInference:test_all_missing_column_is_category()
  local t = parse("a,b\n1,\n2,\n")
  lu.assertEquals(types_of(t).b, "category")
end

function M.TestCsvInference:test_later_row_that_does_not_fit_says_the_type_was_inferred()
  local t = parse("n,s\n1,a\n2,b\nx,c\n4,d\n", { infer_rows = 2 })
  lu.assertEquals(#t, 3)
  lu.assertEquals(messages(t), { "[string]:4: column 'n' (1): 'x' is not a number (the column's type, " ..
    "number, was inferred from the first 2 rows; to keep such values declare another, e.g. " ..
    "options.schema = { n = \"category\" })" })
  -- a name that is not an identifier is shown as a bracketed key
  t = parse("lead score,s\n1,a\nx,b\n", { infer_rows = 1 })
  lu.assertStrContains(messages(t)[1], 'options.schema = { ["lead score"] = "category" }')
end

function M.TestCsvInference:test_sample_covers_the_first_rows_only()
  local t = parse("n\n1\n2\n3\n", { infer_rows = 1 })
  lu.assertEquals(types_of(t).n, "number")
  t = parse("n\n1\nx\n3\n", { infer_rows = math.huge })
  lu.assertEquals(types_of(t).n, "category")
  lu.assertEquals(t:reject_count(), 0)
end

---------------------------------------------------------------------------------------------------
M.TestCsvMissing = {}

function M.TestCsvMissing:test_empty_field_is_missing_in_every_type()
  local t = parse("n,c,b,t,x,g\n,,,,,\n1,a,yes,2024-01-01,text,p;q\n",
    { schema = { n = "number", c = "category", b = "boolean", t = "time", x = "text", g = "tags" } })
  lu.assertEquals(t:row(1), {})
  lu.assertEquals(t:row(2), { n = 1, c = "a", b = true, t = 1704067200, x = "text", g = { "p", "q" } })
  local col, n = t:column("n")
  lu.assertEquals(n, 2)
  lu.assertNil(col[1])
  lu.assertEquals(col[2], 1)
end

function M.TestCsvMissing:test_spaces_only_is_missing_for_numbers_times_booleans()
  local t = parse("n,t,b\n  ,  , \n", { schema = { n = "number", t = "time", b = "boolean" } })
  lu.assertEquals(#t, 1)
  lu.assertEquals(t:row(1), {})
end

function M.TestCsvMissing:test_numbers_with_spaces_around()
  local t = parse("n\n 12 \n", { schema = { n = "number" } })
  lu.assertEquals(t:row(1).n, 12)
end

---------------------------------------------------------------------------------------------------
M.TestCsvSchema = {}

function M.TestCsvSchema:test_schema_overrides_inference()
  local t = parse("flag,n,code\n0,1,10\n1,2,20\n", { schema = { flag = "boolean", code = "category" } })
  lu.assertEquals(types_of(t), { flag = "boolean", n = "number", code = "category" })
  lu.assertEquals(t:row(2), { flag = true, n = 2, code = "20" })
end

function M.TestCsvSchema:test_schema_as_a_list_like_schema_returns()
  local t = parse("a,b\n1,2\n")
  local t2 = parse("a,b\n1,2\n", { schema = { { name = "a", type = "text" }, { name = "b", type = "category" } } })
  lu.assertEquals(types_of(t2), { a = "text", b = "category" })
  local t3 = parse("a,b\n1,2\n", { schema = t:schema() })
  lu.assertEquals(t3:schema(), t:schema())
end

function M.TestCsvSchema:test_map_renames_columns()
  local t = parse("Lead Source,No. of Employees\nweb,12\n",
    { map = { ["Lead Source"] = "source", ["No. of Employees"] = "employees" } })
  lu.assertEquals(t:names(), { "source", "employees" })
  lu.assertEquals(t:row(1), { source = "web", employees = 12 })
end

function M.TestCsvSchema:test_schema_accepts_mapped_or_header_names()
  local map = { ["Lead Source"] = "source" }
  local t = parse("Lead Source\n1\n", { map = map, schema = { source = "category" } })
  lu.assertEquals(types_of(t), { source = "category" })
  t = parse("Lead Source\n1\n", { map = map, schema = { ["Lead Source"] = "text" } })
  lu.assertEquals(types_of(t), { source = "text" })
end

function M.TestCsvSchema:test_unknown_names_in_schema_or_map_are_errors()
  lu.assertStrContains(h.error_of(parse, "employees,b\n1,2\n", { schema = { employes = "number" } }),
    "option 'schema': column 'employes' is not in [string] (did you mean 'employees'?)")
  lu.assertStrContains(h.error_of(parse, "Lead Source\nx\n", { map = { ["Lead Sorce"] = "source" } }),
    "option 'map': column 'Lead Sorce' is not in the header of [string] (did you mean 'Lead Source'?)")
end

function M.TestCsvSchema:test_unknown_types_are_errors()
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { schema = { a = "date" } }),
    "option 'schema': unknown type 'date' for column 'a' (did you mean 'time'?); " ..
    "the types are number, category, boolean, time, text, tags")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { schema = { a = "numbr" } }),
    "unknown type 'numbr' for column 'a' (did you mean 'number'?)")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { schema = { a = 1 } }),
    "option 'schema': the type of column 'a' must be a string")
end

function M.TestCsvSchema:test_declared_types_reject_without_the_inference_hint()
  local t = parse("id,employees\na,12\nb,abc\nc,\n", { schema = { employees = "number" } })
  lu.assertEquals(#t, 2)
  lu.assertEquals(messages(t), { "[string]:3: column 'employees' (2): 'abc' is not a number" })
end

function M.TestCsvSchema:test_bad_booleans_and_long_values_in_messages()
  local long = string.rep("x", 60)
  local t = parse("b\nmaybe\n" .. long .. "\n", { schema = { b = "boolean" } })
  lu.assertEquals(messages(t), {
    "[string]:2: column 'b' (1): 'maybe' is not a boolean (true/false, yes/no, 1/0)",
    "[string]:3: column 'b' (1): '" .. string.rep("x", 40) .. "...' is not a boolean (true/false, yes/no, 1/0)" })
end

---------------------------------------------------------------------------------------------------
M.TestCsvTimes = {}

function M.TestCsvTimes:test_iso_forms()
  local base = 1709288430 -- 2024-03-01T10:20:30Z
  local cases = {
    { "2024-03-01", 1709251200 },
    { "2024-03-01 10:20:30", base },
    { "2024-03-01T10:20:30", base },
    { "2024-03-01T10:20:30Z", base },
    { "2024-03-01t10:20:30z", base },
    { "2024-03-01T10:20", base - 30 },
    { "2024-03-01T10:20:30.250Z", base + 0.25 },
    { "2024-03-01T10:20:30,5Z", base + 0.5 },
    { "2024-03-01T12:20:30+02:00", base },
    { "2024-03-01T12:20:30+0200", base },
    { "2024-03-01T12:20:30+02", base },
    { "2024-03-01T05:20:30-05:00", base },
    { "2024-03-01 12:20:30 +02:00", base },
    { "1969-12-31T23:59:59Z", -1 },
    { "2024-02-29", 1709164800 },
  }
  local lines = { "at" }
  for _, c in ipairs(cases) do lines[#lines + 1] = '"' .. c[1] .. '"' end
  local t = parse(table.concat(lines, "\n"), { schema = { at = "time" } })
  lu.assertEquals(t:reject_count(), 0)
  for i, c in ipairs(cases) do
    lu.assertEquals(t:row(i).at, c[2], c[1])
    lu.assertEquals(leadq.parse_time(c[1]), c[2], c[1])
  end
end

function M.TestCsvTimes:test_bad_dates_are_rejected()
  local bad = { "2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-03-01T24:00:00",
                "2024-03-01T10:60", "2024-3-1", "03/01/2024", "2024-03-01T10:20:30+25:00",
                "2024-03-01T", "2024-03-01 10:20:30 UTC", "1709288430" }
  local lines = { "at" }
  for _, b in ipairs(bad) do lines[#lines + 1] = b end
  local t = parse(table.concat(lines, "\n"), { schema = { at = "time" } })
  lu.assertEquals(#t, 0)
  lu.assertEquals(t:reject_count(), #bad)
  lu.assertEquals(t:rejects()[1].message,
    "[string]:2: column 'at' (1): '2023-02-29' is not an ISO 8601 date or time")
  for _, b in ipairs(bad) do
    local v, err = leadq.parse_time(b)
    lu.assertNil(v, b)
    lu.assertStrContains(err, "is not an ISO 8601 date or time")
  end
end

-- The export form YYYY-MM-DDTHH:MM:SSZ is read by a fast path that remembers months' first days:
-- the same seconds as the general reader for every day of four years (a leap year among them), the
-- last second of each month, a leap second, and the same refusals for days a month does not have.
function M.TestCsvTimes:test_export_form_reads_as_the_general_form()
  local lines, want = { "at" }, {}
  local day = leadq.parse_time("2023-01-01")
  for k = 0, 4 * 366 do
    local text = leadq.format_time(day + k * 86400 + (k * 7919) % 86400)
    lines[#lines + 1], want[#want + 1] = text, text
  end
  for _, text in ipairs({ "2024-02-29T23:59:59Z", "2024-12-31T23:59:60Z", "1969-12-31T23:59:59Z",
                          "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-04-30T00:00:00Z" }) do
    lines[#lines + 1], want[#want + 1] = text, text
  end
  local bad = { "2023-02-29T10:00:00Z", "2024-02-30T10:00:00Z", "2024-04-31T10:00:00Z", "2024-13-01T00:00:00Z",
                "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z",
                "2024-01-01T23:59:61Z", "2024-01-0aT00:00:00Z", "2024-01-01T00:00:0 Z" }
  for _, b in ipairs(bad) do lines[#lines + 1] = b end
  local t = parse(table.concat(lines, "\n"), { schema = { at = "time" } })
  lu.assertEquals(#t, #want)
  lu.assertEquals(t:reject_count(), #bad)
  for i, text in ipairs(want) do
    lu.assertEquals(t:row(i).at, leadq.parse_time(text:gsub("Z$", "+00:00")), text)
  end
  for _, b in ipairs(bad) do lu.assertNil(leadq.parse_time(b), b) end
end

function M.TestCsvTimes:test_format_time()
  lu.assertEquals(leadq.format_time(1709288430), "2024-03-01T10:20:30Z")
  lu.assertEquals(leadq.format_time(1709288430.25), "2024-03-01T10:20:30.25Z")
  lu.assertEquals(leadq.format_time(-1), "1969-12-31T23:59:59Z")
  lu.assertEquals(leadq.format_time(0), "1970-01-01T00:00:00Z")
end

---------------------------------------------------------------------------------------------------
M.TestCsvNumbers = {}

function M.TestCsvNumbers:test_forms()
  local cases = { { "0", 0 }, { "-0", 0 }, { "+5", 5 }, { "1.5", 1.5 }, { ".5", 0.5 }, { "5.", 5 },
                  { "-.25", -0.25 }, { "1e3", 1000 }, { "1E-2", 0.01 }, { "2.5e+2", 250 },
                  { "123456789012345678901234567890", 1.2345678901234568e29 },
                  { "0.1", 0.1 }, { "1e-320", 1e-320 }, { "9007199254740993", 9007199254740992 } }
  local lines = { "n" }
  for _, c in ipairs(cases) do lines[#lines + 1] = c[1] end
  local t = parse(table.concat(lines, "\n"), { schema = { n = "number" } })
  lu.assertEquals(t:reject_count(), 0)
  for i, c in ipairs(cases) do lu.assertEquals(t:row(i).n, c[2], c[1]) end
end

function M.TestCsvNumbers:test_not_numbers()
  local bad = { "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1,5", "1e", "e5", ".", "-", "1..2",
                "12abc", "1 2", "1e400" }
  local lines = { "n" }
  for _, b in ipairs(bad) do lines[#lines + 1] = '"' .. b .. '"' end
  local t = parse(table.concat(lines, "\n"), { schema = { n = "number" } })
  lu.assertEquals(#t, 0)
  lu.assertEquals(t:reject_count(), #bad)
end

-- The fast path must round exactly like strtod (which tonumber uses) on every decimal.
function M.TestCsvNumbers:test_agrees_with_tonumber()
  local rand = h.rng(12345)
  local values, lines = {}, { "n" }
  for i = 1, h.size(20000, 3000) do
    local digits = {}
    for d = 1, rand(18) do digits[d] = tostring(rand(10) - 1) end
    local s = table.concat(digits)
    local dot = rand(#s + 1)
    if dot <= #s then s = s:sub(1, dot - 1) .. "." .. s:sub(dot) end
    if s:sub(1, 1) == "." then s = "0" .. s end
    if rand(4) == 1 then s = s .. "e" .. tostring(rand(60) - 30) end
    if rand(3) == 1 then s = "-" .. s end
    if s:match("^%-?%.$") or s == "" then s = "1" end
    values[i] = s
    lines[#lines + 1] = s
  end
  local t = parse(table.concat(lines, "\n"), { schema = { n = "number" } })
  lu.assertEquals(t:reject_count(), 0)
  local col = t:column("n")
  for i, s in ipairs(values) do
    local want = tonumber(s) * 1.0  -- as a float: 5.4 reads long digit strings as integers
    if col[i] ~= want then lu.fail(("%s: leadq %.17g, tonumber %.17g"):format(s, col[i], want)) end
  end
end

function M.TestCsvNumbers:test_integral_values_are_integers_where_lua_has_them()
  local t = parse("n\n42\n2.5\n")
  if math.type then
    lu.assertEquals(math.type(t:row(1).n), "integer")
    lu.assertEquals(math.type(t:row(2).n), "float")
  end
  lu.assertEquals(t:row(1).n, 42)
end

---------------------------------------------------------------------------------------------------
M.TestCsvTags = {}

function M.TestCsvTags:test_tags_are_split_and_trimmed()
  local t = parse('id,tags\na,"webinar; ebook ;;pricing"\nb,\nc,""\nd,solo\n', { schema = { tags = "tags" } })
  lu.assertEquals(t:row(1).tags, { "webinar", "ebook", "pricing" })
  lu.assertNil(t:row(2).tags)
  lu.assertEquals(t:row(3).tags, {})
  lu.assertEquals(t:row(4).tags, { "solo" })
end

function M.TestCsvTags:test_tag_separator()
  local t = parse("id;tags\na;x|y\n", { schema = { tags = "tags" }, tag_separator = "|" })
  lu.assertEquals(t:row(1).tags, { "x", "y" })
end

---------------------------------------------------------------------------------------------------
M.TestCsvStrict = {}

function M.TestCsvStrict:test_first_bad_row_fails_the_load()
  local err = h.error_of(parse, "id,employees\na,1\nb,abc\nc,x\n", { strict = true, schema = { employees = "number" } })
  lu.assertStrContains(err, "[string]:3: column 'employees' (2): 'abc' is not a number")
  lu.assertNotStrContains(err, "'x'")
  err = h.error_of(parse, "a,b\n1,2\n3\n", { strict = true })
  lu.assertStrContains(err, "[string]:3: expected 2 fields, found 1")
end

function M.TestCsvStrict:test_strict_load_of_a_good_file_succeeds()
  local t = parse("a,b\n1,2\n", { strict = true })
  lu.assertEquals(#t, 1)
end

function M.TestCsvStrict:test_strict_message_names_the_file()
  h.with_file("id,employees\na,1\nb,abc\n", function(path)
    local err = h.error_of(leadq.read_csv, path, { strict = true, schema = { employees = "number" } })
    lu.assertStrContains(err, path .. ":3: column 'employees' (2): 'abc' is not a number")
  end)
end

---------------------------------------------------------------------------------------------------
M.TestCsvOptions = {}

function M.TestCsvOptions:test_unknown_option_suggests()
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { seperator = ";" }),
    "unknown option 'seperator' (did you mean 'separator'?)")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { zzz = 1 }), "unknown option 'zzz'")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { [1] = true }), "option names must be strings")
end

function M.TestCsvOptions:test_option_values_are_checked()
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { separator = "||" }), "option 'separator' must be one character")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { separator = 1 }),
    "option 'separator' must be a one-character string, got number")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { strict = "yes" }), "option 'strict' must be a boolean, got string")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { header = 1 }), "option 'header' must be a boolean")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { infer_rows = 0 }), "option 'infer_rows' must be a whole number")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { infer_rows = 1.5 }), "option 'infer_rows' must be a whole number")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { map = { a = 1 } }), "option 'map': names must be strings")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", { schema = "a" }), "option 'schema' must be a table")
  lu.assertStrContains(h.error_of(parse, "a\n1\n", 5), "options must be a table")
end

function M.TestCsvOptions:test_argument_errors_blame_the_caller()
  local err = h.error_of(function() return leadq.read_csv(42 > 1) end)
  lu.assertStrContains(err, "bad argument #1")
  err = h.error_of(function()
    local t = leadq.read_csv("x.csv", { seperator = ";" })  -- not a tail call: LuaJIT forgets those
    return t
  end)
  lu.assertStrContains(err, "test_csv.lua:")
end

---------------------------------------------------------------------------------------------------
M.TestCsvFiles = {}

function M.TestCsvFiles:test_missing_or_unreadable_file_returns_nil_and_message()
  local t, err = leadq.read_csv("no/such/file.csv")
  lu.assertNil(t)
  lu.assertEquals(err, "no/such/file.csv: No such file or directory")
  t, err = leadq.read_csv("tests")
  lu.assertNil(t)
  lu.assertStrContains(err, "tests: ")
end

function M.TestCsvFiles:test_file_and_string_agree()
  local text = '\239\187\191id;name;n\r\nA1;"x;""y""";1.5\r\nA2;"multi\r\nline";\r\n'
  h.with_file(text, function(path)
    local a = assert(leadq.read_csv(path))
    local b = parse(text)
    lu.assertEquals(a:schema(), b:schema())
    for i = 1, #b do lu.assertEquals(a:row(i), b:row(i)) end
    lu.assertEquals(#a, 2)
    lu.assertEquals(a:row(1).name, 'x;"y"')
  end)
end

-- Records cut by the 1 MiB read buffer must come out whole: a file of several buffers with
-- quoted fields, doubled quotes and line breaks everywhere.
function M.TestCsvFiles:test_records_across_buffer_boundaries()
  local rand = h.rng(99)
  local n = h.size(30000, 12000)
  local lines, want = { "id,note,n,when" }, {}
  for i = 1, n do
    local pieces = {}
    for k = 1, rand(6) do
      local r = rand(5)
      pieces[k] = r == 1 and '"' or r == 2 and "\n" or r == 3 and "," or ("w" .. rand(1000))
    end
    local note = table.concat(pieces) .. string.rep("z", rand(80)) .. i
    want[i] = { id = "L" .. i, note = note, n = i * 0.5, when = 1704067200 + i }
    lines[#lines + 1] = ('L%d,"%s",%s,%s'):format(i, note:gsub('"', '""'), tostring(i * 0.5),
                                                leadq.format_time(1704067200 + i))
  end
  local text = table.concat(lines, "\r\n") .. "\r\n"
  lu.assertTrue(#text > 2 * 1048576 or h.slow_build())
  h.with_file(text, function(path)
    local t = assert(leadq.read_csv(path))
    lu.assertEquals(t:reject_count(), 0)
    lu.assertEquals(#t, n)
    lu.assertEquals(types_of(t), { id = "text", note = "text", n = "number", when = "time" })
    local notes, nn = t:column("note")
    lu.assertEquals(nn, n)
    for i = 1, n do
      if notes[i] ~= want[i].note then lu.assertEquals(t:row(i), want[i]) end
    end
    lu.assertEquals(t:row(n), want[n])
  end)
end

---------------------------------------------------------------------------------------------------
M.TestEvents = {}

function M.TestEvents:test_read_events()
  local text = "lead_id,type,at,value,page\nL1,visit,2024-03-01T10:00:00Z,1,/pricing\n" ..
               "L2,download,2024-03-02,,/ebook\n,visit,2024-03-01,1,/\nL3,visit,,2,/\nL4,demo,2024-03-05,3,\n"
  h.with_file(text, function(path)
    local e = assert(leadq.read_events(path))
    lu.assertTrue(e:is_events())
    lu.assertEquals(types_of(e), { lead_id = "category", type = "category", at = "time", value = "number",
                                   page = "category" })
    lu.assertEquals(#e, 3)
    lu.assertEquals(e:row(1), { lead_id = "L1", type = "visit", at = 1709287200, value = 1, page = "/pricing" })
    lu.assertNil(e:row(2).value)
    lu.assertEquals(messages(e), {
      path .. ":4: column 'lead_id' (1): no value, and this column is required",
      path .. ":5: column 'at' (3): no value, and this column is required" })
    lu.assertStrContains(tostring(e), "(events)")
  end)
end

function M.TestEvents:test_value_is_optional_and_map_names_columns()
  h.with_file("Contact,Event,Timestamp\nc1,open,2024-01-01T00:00:00Z\n", function(path)
    local e = assert(leadq.read_events(path, { map = { Contact = "lead_id", Event = "type", Timestamp = "at" } }))
    lu.assertEquals(e:names(), { "lead_id", "type", "at" })
    lu.assertEquals(e:row(1), { lead_id = "c1", type = "open", at = 1704067200 })
  end)
end

function M.TestEvents:test_missing_columns_and_conflicting_schema_are_errors()
  h.with_file("lead,type,ts\nL1,visit,2024-01-01\n", function(path)
    lu.assertStrContains(h.error_of(leadq.read_events, path),
      path .. " has no column 'lead_id': rename the column that holds it, or map it to 'lead_id'")
    lu.assertStrContains(h.error_of(leadq.read_events, path, { map = { lead = "lead_id" } }),
      path .. " has no column 'at'")
    lu.assertStrContains(h.error_of(leadq.read_events, path, { schema = { type = "text" } }),
      "option 'schema': column 'type' of an events file is always category")
  end)
  local e, err = leadq.read_events("no/such/events.csv")
  lu.assertNil(e)
  lu.assertStrContains(err, "No such file")
end

function M.TestEvents:test_empty_events_file_has_the_event_columns()
  h.with_file("", function(path)
    local e = assert(leadq.read_events(path))
    lu.assertEquals(#e, 0)
    lu.assertEquals(types_of(e), { lead_id = "category", type = "category", at = "time", value = "number" })
  end)
end

function M.TestEvents:test_append_to_events_requires_the_event_fields()
  h.with_file("lead_id,type,at\nL1,visit,2024-01-01\n", function(path)
    local e = assert(leadq.read_events(path))
    e:append({ lead_id = "L2", type = "visit", at = "2024-01-02" })
    lu.assertEquals(#e, 2)
    lu.assertStrContains(h.error_of(e.append, e, { lead_id = "L3", type = "visit" }),
      "field 'at' is required in an events table")
    lu.assertEquals(#e, 2)
  end)
end

-- The arrays are sized from the first rows' length and cut to the rows read at the end. Short rows
-- first, then long ones: sized for ten times the rows, then cut by megabytes (big blocks are cut in
-- place, their huge pages past the end given back). Every value must survive the cut, and the table
-- must still grow after it.
function M.TestCsvLayout:test_arrays_cut_to_the_rows_read_keep_every_value()
  local short, long = 150000, 2000
  local lines, note = { "id,n,note" }, string.rep("x", 5000)
  for i = 1, short do lines[#lines + 1] = ("%d,%d,") :format(i, i) end
  for i = short + 1, short + long do lines[#lines + 1] = ("%d,%d,%s"):format(i, i, note) end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local t = assert(leadq.read_csv(path, { schema = { id = "text" } }))
    lu.assertEquals(#t, short + long)
    local ns, sum = t:column("n"), 0
    for i = 1, #ns do sum = sum + ns[i] end
    lu.assertEquals(sum, (short + long) * (short + long + 1) / 2)
    lu.assertEquals(t:row(1), { id = "1", n = 1 })
    lu.assertEquals(t:row(short), { id = tostring(short), n = short })
    lu.assertEquals(t:row(short + long), { id = tostring(short + long), n = short + long, note = note })
    t:append({ id = "last", n = -1, note = "y" })
    lu.assertEquals(t:row(short + long + 1), { id = "last", n = -1, note = "y" })
    lu.assertEquals(t:row(short + long).n, short + long)
    t:close()
  end)
end

return M
