-- read_csv / read_events on several threads: every value, every category's code order and every
-- reject (line, record, column, reason) equal to the one-thread read, for generated and hostile
-- files cut at every few bytes (option chunk_bytes); and option columns.
local lu = require("luaunit")
local leadq = require("leadq")
local h = require("helpers")

local M = {}

-- A generator of its own (the same files on every Lua): a Park-Miller sequence.
local function random_source(seed)
  local x = seed
  return function(k)
    x = (16807 * x) % 2147483647
    return x % k + 1
  end
end

local function same_value(a, b)
  if type(a) == "table" and type(b) == "table" then
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
  end
  if a ~= a and b ~= b then return true end   -- NaN
  return a == b
end

-- Every difference between two tables, as one message (nil when none).
local function difference(one, many)
  if #one ~= #many then return ("rows: %d, threaded %d"):format(#one, #many) end
  local schema = one:schema()
  lu.assertEquals(many:schema(), schema)
  for _, c in ipairs(schema) do
    local a, b = one:column(c.name), many:column(c.name)
    for r = 1, #one do
      if not same_value(a[r], b[r]) then
        return ("column %s, row %d: %s, threaded %s"):format(c.name, r, tostring(a[r]), tostring(b[r]))
      end
    end
    if c.type == "category" or c.type == "tags" then
      local ca, cb = one:categories(c.name), many:categories(c.name)
      if #ca ~= #cb then return ("column %s: %d categories, threaded %d"):format(c.name, #ca, #cb) end
      for i = 1, #ca do
        if ca[i] ~= cb[i] then return ("column %s, code %d: %s, threaded %s"):format(c.name, i, ca[i], cb[i]) end
      end
    end
  end
  local ra, rb = one:rejects(), many:rejects()
  if #ra ~= #rb then return ("rejects: %d, threaded %d"):format(#ra, #rb) end
  for i = 1, #ra do
    if ra[i].message ~= rb[i].message or ra[i].record ~= rb[i].record or ra[i].column ~= rb[i].column then
      return ("reject %d: %s (record %s), threaded %s (record %s)"):format(i, ra[i].message, tostring(ra[i].record),
        rb[i].message, tostring(rb[i].record))
    end
  end
  return nil
end

-- Read path on 1 thread, then on 2..4 with chunks of each size; returns the splits seen
-- (chunks, chunks joined past their first line, chunks read again) summed.
local function check_threads(path, options, sizes)
  local function with(extra)
    local o = {}
    for k, v in pairs(options or {}) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return o
  end
  local one = assert(leadq.read_csv(path, with({ threads = 1 })))
  local split, trimmed, reread = 0, 0, 0
  for _, bytes in ipairs(sizes) do
    for threads = 2, 4 do
      local many = assert(leadq.read_csv(path, with({ threads = threads, chunk_bytes = bytes })))
      local diff = difference(one, many)
      if diff then
        lu.fail(("%s, %d threads, chunks of %d bytes: %s"):format(path, threads, bytes, diff))
      end
      local n, t, r = many:read_chunks()
      split, trimmed, reread = split + n, trimmed + t, reread + r
      many:close()
    end
  end
  one:close()
  return split, trimmed, reread
end

-- A file of leads with the hard parts: quoted fields with separators, doubled quotes and line
-- breaks (LF and CRLF), stray quotes, text after a closing quote, short and long rows, values
-- that do not fit their column, blank lines.
local function hostile_csv(n, seed, crlf)
  local rand = random_source(seed)
  local eol = crlf and "\r\n" or "\n"
  local out = { "id,source,score,created_at,active,tags,note" .. eol }
  local sources = { "web", "ads", "event", "partner", "Web", "referral" }
  for i = 1, n do
    local note
    local k = rand(12)
    if k == 1 then note = '"line one' .. eol .. 'line two, still ""quoted"""'
    elseif k == 2 then note = '"a' .. eol .. eol .. 'b"'
    elseif k == 3 then note = 'stray"quote'
    elseif k == 4 then note = '"closed"after'
    elseif k == 5 then note = '"many' .. eol .. '1' .. eol .. '2' .. eol .. '3,4' .. eol .. '5"'
    else note = "note " .. rand(50) end
    local score = rand(20) == 1 and "n/a" or tostring(rand(1000) / 10)
    local row = ("L%d,%s,%s,2026-%02d-%02d,%s,%s,%s"):format(i, sources[rand(#sources)], score, rand(12), rand(28),
      rand(2) == 1 and "yes" or "no", rand(3) == 1 and '"t' .. rand(9) .. ";t" .. rand(9) .. '"' or "", note)
    local r = rand(40)
    if r == 1 then row = row .. ",extra"
    elseif r == 2 then row = "L" .. i .. ",short"
    elseif r == 3 then out[#out + 1] = eol end
    out[#out + 1] = row .. eol
  end
  -- the sample must infer the columns' types from clean rows: declare them instead
  return table.concat(out)
end

local HOSTILE_SCHEMA = { id = "text", source = "category", score = "number", created_at = "time",
                         active = "boolean", tags = "tags", note = "text" }

M.TestCsvThreads = {}

function M.TestCsvThreads:test_hostile_files_cut_everywhere()
  local sizes = { 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 400, 1000 }
  local splits, trimmed = 0, 0
  for seed = 1, h.size(6, 2) do
    for _, crlf in ipairs({ false, true }) do
      local text = hostile_csv(h.size(150, 60), seed, crlf)
      h.with_file(text, function(path)
        local n, t = check_threads(path, { schema = HOSTILE_SCHEMA }, sizes)
        splits, trimmed = splits + n, trimmed + t
      end)
    end
  end
  -- the files were cut, and cuts inside quoted fields were met and joined past
  lu.assertTrue(splits > 1000, "the files were not split")
  lu.assertTrue(trimmed > 0, "no cut fell inside a quoted field")
end

function M.TestCsvThreads:test_rejects_keep_their_file_lines()
  -- a bad value on line 2 of each chunk-sized block: the rejects name the file's lines
  local lines = { "id,score" }
  for i = 1, 200 do lines[#lines + 1] = ("L%d,%s"):format(i, i % 7 == 0 and "bad" or tostring(i)) end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local t = assert(leadq.read_csv(path, { threads = 3, chunk_bytes = 50, schema = { score = "number" } }))
    local n = t:read_chunks()
    lu.assertTrue(n > 10)
    local rejects = t:rejects()
    lu.assertEquals(#rejects, 28)
    lu.assertEquals(rejects[1].line, 8)          -- L7 is on line 8 (the header is line 1)
    lu.assertEquals(rejects[1].record, 7)
    lu.assertEquals(rejects[28].line, 197)
    lu.assertStrContains(rejects[28].message, ":197: column 'score' (2): 'bad' is not a number")
    lu.assertEquals(#t, 172)
  end)
end

function M.TestCsvThreads:test_quoted_field_across_many_cuts_is_read_again()
  -- one quoted field of 6000 lines: a chunk cut inside it cannot find the record start where the
  -- chunk before ends among its first records, so the chunk before reads on through it
  local parts = { 'id,note\nL1,"' }
  for i = 1, 6000 do parts[#parts + 1] = "x" .. i .. "\n" end
  parts[#parts + 1] = '"\nL2,after\n'
  for i = 3, 50 do parts[#parts + 1] = ("L%d,n%d\n"):format(i, i) end
  h.with_file(table.concat(parts), function(path)
    local _, _, reread = check_threads(path, { schema = { note = "text" } }, { 5000, 20000 })
    lu.assertTrue(reread > 0)
  end)
end

function M.TestCsvThreads:test_small_files_bom_blank_lines_and_unterminated_quote()
  local files = {
    "a,b\n1,2\n",
    "\239\187\191a,b\n1,x\n\n\n2,y\n",
    "a,b\r\n\r\n1,\"p\r\nq\"\r\n2,z",
    "a,b\n1,\"never closed\n2,x\n3,y\n",
    "a,b\n1,\"x\"y\n2,\"z\n\"\"w\"q\n3,ok\n",
    "a\n\n\n\n",
    "a,b\n",
    "a,b\n1,2\n3,4\n5,6",
  }
  for _, text in ipairs(files) do
    h.with_file(text, function(path)
      check_threads(path, { schema = { a = "category" } }, { 1, 2, 3, 4, 5, 7 })
      check_threads(path, nil, { 1, 2, 3 })
    end)
  end
end

function M.TestCsvThreads:test_generated_leads_and_categories_in_first_seen_order()
  local rand = random_source(7)
  local lines = { "lead_id,country,employees,title,plan_tags" }
  for i = 1, h.size(3000, 500) do
    lines[#lines + 1] = ("id%d,C%d,%d,T%d,%s"):format(i, rand(rand(300)), rand(5000), rand(40),
      rand(2) == 1 and "a;b" .. rand(30) or "")
  end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local n = check_threads(path, nil, { 97, 1000, 4096, 30000 })
    lu.assertTrue(n > 12)
    local t = assert(leadq.read_csv(path, { threads = 2, chunk_bytes = 1000 }))
    lu.assertEquals(t:categories("country")[1], t:row(1).country)   -- code 1 is the first row's
  end)
end

function M.TestCsvThreads:test_strict_reports_the_first_bad_row_of_the_file()
  local lines = { "id,score" }
  for i = 1, 300 do lines[#lines + 1] = ("L%d,%s"):format(i, (i == 250 or i == 260) and "bad" or tostring(i)) end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local ok1, e1 = pcall(leadq.read_csv, path, { strict = true, schema = { score = "number" } })
    local ok2, e2 = pcall(leadq.read_csv, path, { strict = true, schema = { score = "number" }, threads = 4,
                                                 chunk_bytes = 100 })
    lu.assertFalse(ok1)
    lu.assertFalse(ok2)
    lu.assertStrContains(e1, ":251: column 'score'")
    lu.assertEquals(e2, e1)
  end)
end

function M.TestCsvThreads:test_events_and_a_mapping_plan_agree()
  local lines = { "lead_id,type,at,value,page" }
  local rand = random_source(3)
  for _ = 1, h.size(2000, 300) do
    lines[#lines + 1] = ("L%d,%s,2026-01-%02dT10:00:00Z,%s,/p%d"):format(rand(300), rand(5) == 1 and "demo" or "visit",
      rand(28), rand(9) == 1 and "x" or tostring(rand(10)), rand(20))
  end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local one = assert(leadq.read_events(path, { threads = 1 }))
    local many = assert(leadq.read_events(path, { threads = 3, chunk_bytes = 777 }))
    lu.assertTrue(many:is_events())
    lu.assertNil(difference(one, many))
    lu.assertTrue((many:read_chunks()) > 5)
  end)
end

function M.TestCsvThreads:test_gzip_and_strings_read_on_one_thread()
  local text = "a,b\n" .. string.rep("1,x\n", 500)
  local t = leadq.parse_csv(text, { threads = 4, chunk_bytes = 10 })
  lu.assertEquals(#t, 500)
  lu.assertEquals((t:read_chunks()), 1)
end

function M.TestCsvThreads:test_threads_option_is_checked()
  h.with_file("a\n1\n", function(path)
    lu.assertErrorMsgContains("option 'threads' must be a whole number >= 1", leadq.read_csv, path, { threads = 0 })
    lu.assertErrorMsgContains("option 'threads' must be a whole number >= 1", leadq.read_csv, path, { threads = "2" })
  end)
end

---------------------------------------------------------------------------------------------------
M.TestCsvColumns = {}

function M.TestCsvColumns:test_only_the_named_columns_are_kept()
  local t = leadq.parse_csv("id,name,score,city\nL1,Ann,3,Oslo\nL2,Bo,x,Rome\n", { columns = { "score", "id" } })
  lu.assertEquals(t:names(), { "id", "score" })     -- in the file's order
  lu.assertEquals(t:type("score"), "category")       -- "x" made it a category
  lu.assertEquals(t:row(2), { id = "L2", score = "x" })
end

function M.TestCsvColumns:test_a_left_out_column_is_never_parsed()
  -- a value that would be rejected in a column left out does not reject its row
  local t = leadq.parse_csv("id,score,when\nL1,1,2026-01-01\nL2,2,soon\n",
    { columns = { "id", "score" }, schema = { when = "time" } })
  lu.assertEquals(#t, 2)
  lu.assertEquals(t:reject_count(), 0)
  lu.assertEquals(t:column("score"), { 1, 2 })
end

function M.TestCsvColumns:test_field_counts_are_still_checked()
  local t = leadq.parse_csv("a,b,c\n1,2,3\n1,2\n", { columns = { "a" } })
  lu.assertEquals(#t, 1)
  lu.assertEquals(t:rejects()[1].message, "[string]:3: expected 3 fields, found 2")
end

function M.TestCsvColumns:test_unknown_name_suggests_one()
  lu.assertErrorMsgContains("option 'columns': column 'scroe' is not in [string] (did you mean 'score'?)",
    leadq.parse_csv, "id,score\n1,2\n", { columns = { "scroe" } })
  lu.assertErrorMsgContains("option 'columns': entry 1 must be a column name, got number",
    leadq.parse_csv, "id,score\n1,2\n", { columns = { 3 } })
end

-- columns_optional: names the file lacks are skipped (a model asking for what it could read).
function M.TestCsvColumns:test_optional_columns_skip_what_the_file_lacks()
  local t = leadq.parse_csv("id,score,city\nL1,3,Oslo\n",
    { columns = { "score", "page", "id" }, columns_optional = true })
  lu.assertEquals(t:names(), { "id", "score" })
  lu.assertErrorMsgContains("column 'page' is not in", leadq.parse_csv, "id,score\n1,2\n", { columns = { "page" } })
  lu.assertErrorMsgContains("option 'columns_optional' must be", leadq.parse_csv, "id\n1\n", { columns_optional = 1 })
end

function M.TestCsvColumns:test_renamed_and_required_columns()
  local t = leadq.parse_csv("Lead ID,Points,Extra\nL1,3,z\n", { map = { ["Lead ID"] = "id" }, columns = { "Points" } })
  lu.assertEquals(t:names(), { "Points" })
  local e = h.with_file("lead_id,type,at,value,page\nL1,visit,2026-01-01,1,/a\n", function(path)
    return assert(leadq.read_events(path, { columns = { "page" } }))
  end)
  lu.assertEquals(e:names(), { "lead_id", "type", "at", "page" })   -- required ones are kept
end

function M.TestCsvColumns:test_a_mapping_plan_with_columns_and_threads()
  local plan = require("leadq.mapping").locale_plan({ decimal = "," })
  local lines = { "id;amount;when;x" }
  for i = 1, 300 do
    lines[#lines + 1] = ("L%d;%s;2026-01-%02d;q%d"):format(i, i % 17 == 0 and "x" or (i .. ",5"), i % 28 + 1, i % 7)
  end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    local options = { plan = plan, columns = { "amount", "x" }, schema = { amount = "number" } }
    local t = assert(leadq.read_csv(path, options))
    lu.assertEquals(t:names(), { "amount", "x" })
    lu.assertEquals(t:row(1).amount, 1.5)
    lu.assertEquals(t:reject_count(), 17)
    lu.assertStrContains(t:rejects()[1].message, ":18: column 'amount' (1): 'x' is not a number written with ','")
    check_threads(path, options, { 40, 999 })
    check_threads(path, { plan = plan }, { 40 })
  end)
end

function M.TestCsvColumns:test_columns_on_threads_agree()
  local lines = { "id,a,b,c" }
  for i = 1, 400 do lines[#lines + 1] = ("L%d,%d,\"q,%d\",%s"):format(i, i % 13, i, i % 50 == 0 and "bad" or "1") end
  h.with_file(table.concat(lines, "\n") .. "\n", function(path)
    check_threads(path, { columns = { "a", "c" }, schema = { c = "number" } }, { 33, 500 })
  end)
end

return M
