-- Scoring: the C program against an independent Lua reference on generated leads; bulk, threads
-- and one lead at a time giving identical answers; function rules; runs of several models.
local lu = require("luaunit")
local leadq = require("leadq")
local dsl = leadq.dsl
local helpers = require("helpers")

local DAY = 86400
local AS_OF = dsl.parse_time("2026-03-01")

-- Park-Miller: exact in doubles, so the same stream under every Lua.
local function generator(seed)
  local x = seed
  return function(n)
    x = (x * 16807) % 2147483647
    return x % n + 1
  end
end

local TITLES = { "VP Marketing", "Vice President, Sales", "Chief Executive Officer", "CMO", "Marketing Manager",
  "Student", "Software Engineer", "vp of growth", "Director of Demand Generation", "Head of Sales Ops",
  "marketing student", "VPN engineer", "chief of staff" }
local INDUSTRIES = { "Software", "Retail", "software", "Healthcare", "Education" }
local COUNTRIES = { "US", "GB", "us", "DE", "FR" }
local SENIORITY = { "Director", "director", "VP", "Manager" }
local DOMAINS = { "acme.com", "uni.edu", "mail.org", "Example.COM", "x.co.uk", "school.EDU" }
local TAGS = { "pricing", "demo", "blog", "careers", "Pricing" }

local function gen_leads(n, seed)
  local r = generator(seed)
  local leads = {}
  for i = 1, n do
    local lead = { id = string.format("L%d", i) }
    if r(10) > 1 then lead.title = TITLES[r(#TITLES)] end
    if r(10) > 1 then lead.industry = INDUSTRIES[r(#INDUSTRIES)] end
    if r(10) > 1 then lead.country = COUNTRIES[r(#COUNTRIES)] end
    if r(10) > 2 then lead.seniority = SENIORITY[r(#SENIORITY)] end
    if r(10) > 1 then lead.employees = ({ 5, 50, 100, 250, 1000, 1001, 49999, 50000, r(3000) })[r(9)] end
    if r(10) > 1 then lead.created_at = AS_OF - (r(500) - 20) * DAY + r(DAY) end
    if r(10) > 3 then
      local tags = {}
      for k = 1, r(3) - 1 do tags[k] = TAGS[r(#TAGS)] end
      lead.interests = tags
    end
    if r(3) == 1 then lead.phone = "+1 555 0" .. r(999) end
    if r(10) > 2 then lead.newsletter = r(2) == 1 end
    if r(10) > 2 then lead.unsubscribed = r(20) == 1 end
    if r(10) > 1 then lead.email = "p" .. i .. "@" .. DOMAINS[r(#DOMAINS)] end
    if r(10) > 2 then lead.company = "Co " .. r(50) end
    leads[i] = lead
  end
  return leads
end

local SCHEMA = { id = "text", title = "text", industry = "category", country = "category", seniority = "category",
  employees = "number", created_at = "time", interests = "tags", phone = "text", newsletter = "boolean",
  unsubscribed = "boolean", email = "text", company = "category" }

local function test_model()
  return leadq.model(dsl.model "t" {
    lists = { inds = { "Software", "Retail" } },
    groups = { fit = { cap = 30 }, eng = { cap = 25 }, neg = { floor = -20 } },
    rules = {
      dsl.rule "VP" { group = "fit", points = 12, when = { title = { word = { "vp", "vice president" } } } },
      dsl.rule "CHIEF" { group = "fit", points = 15, when = { title = { starts_with = "chief" } } },
      dsl.rule "MKT" { group = "fit", points = 6, when = { title = { contains = "market" } } },
      dsl.rule "IND" { group = "fit", points = 8, when = { industry = { one_of = dsl.list "inds" } } },
      dsl.rule "NOT_US" { group = "fit", points = 2, when = { country = { not_one_of = { "US" } } } },
      dsl.rule "MID" { group = "fit", points = 7, when = { employees = { between = { 100, 1000 } } } },
      dsl.rule "BIG" { group = "fit", points = 4, when = { employees = { above = 1000, below = 50000 } } },
      dsl.rule "RECENT" { group = "eng", points = 10, when = { created_at = { within_days = 30 } } },
      dsl.rule "MIDAGE" { group = "eng", points = 5, when = { created_at = { days_between = { 31, 90 } } } },
      dsl.rule "AFTER" { group = "eng", points = 3, when = { created_at = { after = "2026-01-01" } } },
      dsl.rule "TAGS" { group = "eng", points = 9, when = { interests = { one_of = { "pricing", "demo" } } } },
      dsl.rule "ANY" { group = "eng", points = 4, when = { any = { { phone = "present" }, { newsletter = true } } } },
      dsl.rule "NONE" { group = "eng", points = 2,
        when = { none = { { country = "US" }, { industry = "Retail" } } } },
      dsl.rule "NOTCOM" { group = "neg", points = -8, when = { ["not"] = { email = { ends_with = ".com" } } } },
      dsl.rule "EDU" { group = "neg", points = -15, when = { email = { matches = "%.edu$" } } },
      dsl.rule "OLD" { group = "neg", points = -10, when = { created_at = { older_than_days = 365 } } },
      dsl.rule "NOCO" { group = "neg", points = -6, when = { company = "missing" } },
      dsl.rule "BEFORE" { points = 1, when = { created_at = { before = "2025-06-01" } } },
      dsl.rule "EQ" { group = "fit", points = 3, when = { seniority = { equals = "Director" } } },
      dsl.rule "NE" { group = "fit", points = 1, when = { employees = { not_equals = 50 } } },
      dsl.rule "ALL" { group = "fit", points = 2,
        when = { all = { { country = "US" }, { employees = { at_most = 200 } } } } },
    },
    disqualifiers = {
      dsl.disqualify "STUDENT" { reason = "student", when = { title = { word = "student" } } },
      dsl.disqualify "UNSUB" { reason = "unsubscribed", when = { unsubscribed = true } },
    },
    thresholds = { hot = 40, warm = 20, otherwise = "cold" },
    grades = {
      fit = { group = "fit", A = 25, B = 15, C = 5, otherwise = "D" },
      engagement = { group = "eng", ["1"] = 20, ["2"] = 10, otherwise = "3" },
    },
  })
end

---------------------------------------------------------------------------------------------------
-- an independent reference, written from the spec
---------------------------------------------------------------------------------------------------

local function low(s) return s and string.lower(s) end
local function has_word(s, w)
  s, w = low(s), low(w)
  local init = 1
  while true do
    local i, j = string.find(s, w, init, true)
    if not i then return false end
    local before, after = s:sub(i - 1, i - 1), s:sub(j + 1, j + 1)
    if not before:find("%w") and not after:find("%w") then return true end
    init = i + 1
  end
end
local function days(lead) return lead.created_at and (AS_OF - lead.created_at) / DAY end
local function in_set(v, set)
  if v == nil then return false end
  for _, s in ipairs(set) do if low(v) == low(s) then return true end end
  return false
end

local REF = {
  { "VP", "fit", 12, function(l)
      return l.title and (has_word(l.title, "vp") or has_word(l.title, "vice president"))
    end },
  { "CHIEF", "fit", 15, function(l) return l.title and low(l.title):sub(1, 5) == "chief" end },
  { "MKT", "fit", 6, function(l) return l.title and low(l.title):find("market", 1, true) ~= nil end },
  { "IND", "fit", 8, function(l) return in_set(l.industry, { "Software", "Retail" }) end },
  { "NOT_US", "fit", 2, function(l) return l.country ~= nil and not in_set(l.country, { "US" }) end },
  { "MID", "fit", 7, function(l) return l.employees ~= nil and l.employees >= 100 and l.employees <= 1000 end },
  { "BIG", "fit", 4, function(l) return l.employees ~= nil and l.employees > 1000 and l.employees < 50000 end },
  { "RECENT", "eng", 10, function(l) local d = days(l); return d ~= nil and d >= 0 and d <= 30 end },
  { "MIDAGE", "eng", 5, function(l) local d = days(l); return d ~= nil and d >= 31 and d <= 90 end },
  { "AFTER", "eng", 3, function(l) return l.created_at ~= nil and l.created_at >= dsl.parse_time("2026-01-02") end },
  { "TAGS", "eng", 9, function(l)
      for _, t in ipairs(l.interests or {}) do if in_set(t, { "pricing", "demo" }) then return true end end
      return false
    end },
  { "ANY", "eng", 4, function(l) return l.phone ~= nil or l.newsletter == true end },
  { "NONE", "eng", 2, function(l) return not in_set(l.country, { "US" }) and not in_set(l.industry, { "Retail" }) end },
  { "NOTCOM", "neg", -8, function(l) return not (l.email ~= nil and low(l.email):sub(-4) == ".com") end },
  { "EDU", "neg", -15, function(l) return l.email ~= nil and low(l.email):find("%.edu$") ~= nil end },
  { "OLD", "neg", -10, function(l) local d = days(l); return d ~= nil and d > 365 end },
  { "NOCO", "neg", -6, function(l) return l.company == nil end },
  { "BEFORE", nil, 1, function(l) return l.created_at ~= nil and l.created_at < dsl.parse_time("2025-06-01") end },
  { "EQ", "fit", 3, function(l) return in_set(l.seniority, { "Director" }) end },
  { "NE", "fit", 1, function(l) return l.employees ~= nil and l.employees ~= 50 end },
  { "ALL", "fit", 2, function(l) return in_set(l.country, { "US" }) and l.employees ~= nil and l.employees <= 200 end },
}
local CAPS = { fit = { cap = 30 }, eng = { cap = 25 }, neg = { floor = -20 } }

local function reference(lead)
  local alloc, sums = {}, { fit = 0, eng = 0, neg = 0, [""] = 0 }
  -- points after caps in declared order: the rule that crosses the cap keeps the remainder
  for i, r in ipairs(REF) do
    local g = r[2] or ""
    local p = r[4](lead) and r[3] or 0
    local c = CAPS[g] or {}
    local new = sums[g] + p
    if c.cap and new > c.cap then new = math.max(c.cap, sums[g]) end
    if c.floor and new < c.floor then new = math.min(c.floor, sums[g]) end
    alloc[i] = new - sums[g]
    sums[g] = new
  end
  local total = sums.fit + sums.eng + sums.neg + sums[""]
  local best, besti, worst, worsti = 0, nil, 0, nil
  for i, a in ipairs(alloc) do
    if a > best then best, besti = a, i end
    if a < worst then worst, worsti = a, i end
  end
  local reason = besti and REF[besti][1] or (worsti and REF[worsti][1]) or nil
  local status = total >= 40 and "hot" or total >= 20 and "warm" or "cold"
  local dq
  if lead.title and has_word(lead.title, "student") then dq = "STUDENT"
  elseif lead.unsubscribed == true then dq = "UNSUB" end
  if dq then
    status = "disqualified"
    reason = dq == "STUDENT" and "student" or "unsubscribed"
  end
  local letter = sums.fit >= 25 and "A" or sums.fit >= 15 and "B" or sums.fit >= 5 and "C" or "D"
  local digit = sums.eng >= 20 and "1" or sums.eng >= 10 and "2" or "3"
  return { total = total, status = status, grade = letter .. digit, reason = reason, disqualified_by = dq,
    groups = { fit = sums.fit, eng = sums.eng, neg = sums.neg } }
end

---------------------------------------------------------------------------------------------------

local N = helpers.size(3000, 300)

local TestScore = {}

function TestScore:setUp()
  self.leads = gen_leads(N, 12345)
  self.tbl = leadq.table(self.leads, SCHEMA)
  self.model = test_model()
end

local function row_of(cols, i)
  return { total = cols.total[i], status = cols.status[i], grade = cols.grade[i], reason = cols.reason[i],
    disqualified_by = cols.disqualified_by[i], groups = { fit = cols.fit[i], eng = cols.eng[i], neg = cols.neg[i] } }
end

local function columns(res)
  local c = {}
  for _, name in ipairs({ "total", "status", "grade", "reason", "disqualified_by", "fit", "eng", "neg" }) do
    c[name] = res:column(name)
  end
  return c
end

function TestScore:test_bulk_matches_the_reference()
  local res, errs = self.model:score(self.tbl, { as_of = AS_OF })
  lu.assertNil(errs)
  lu.assertEquals(#res, N)
  local cols = columns(res)
  for i = 1, N do
    local want = reference(self.leads[i])
    local got = row_of(cols, i)
    lu.assertEquals(got, want, "row " .. i)
  end
end

function TestScore:test_threads_give_identical_results()
  local one = columns(self.model:score(self.tbl, { as_of = AS_OF, threads = 1 }))
  for _, n in ipairs({ 2, 3, 8 }) do
    local many = columns(self.model:score(self.tbl, { as_of = AS_OF, threads = n }))
    lu.assertEquals(many, one, n .. " threads")
  end
end

function TestScore:test_score_into_an_earlier_result_rewrites_it_in_place()
  local want = columns(self.model:score(self.tbl, { as_of = AS_OF }))
  local into = self.model:score(self.tbl, { as_of = 0 })   -- other answers, to be overwritten
  lu.assertNotEquals(columns(into), want)
  for _, threads in ipairs({ 1, 2 }) do
    local res = self.model:score(self.tbl, { as_of = AS_OF, into = into, threads = threads })
    lu.assertIs(res, into)
    lu.assertEquals(#res, N)
    lu.assertEquals(columns(res), want, threads .. " threads")
  end
  lu.assertEquals(into:names(), { "total", "status", "grade", "fit", "eng", "neg", "reason", "disqualified_by" })
  lu.assertErrorMsgContains("into must be an earlier result of this model, got the leads table", function()
    self.model:score(self.tbl, { into = self.tbl })
  end)
  lu.assertErrorMsgContains("into must be an earlier result of this model, got table", function()
    self.model:score(self.tbl, { into = {} })
  end)
  local short = leadq.table({ self.leads[1] }, SCHEMA)
  lu.assertErrorMsgContains("into: the results have " .. N .. " rows, the leads 1", function()
    self.model:score(short, { into = into })
  end)
  lu.assertErrorMsgContains("into: not a result of this model (no number column 'total')", function()
    self.model:score(self.tbl, { into = leadq.table(self.leads, SCHEMA) })
  end)
end

function TestScore:test_score_one_matches_bulk_for_every_lead()
  local res = self.model:score(self.tbl, nil, { as_of = AS_OF })
  local cols = columns(res)
  local opts = { as_of = AS_OF }
  for i = 1, N do
    local one = self.model:score_one(self.leads[i], nil, opts)
    local bulk = row_of(cols, i)
    lu.assertEquals(one, bulk, "lead " .. i)
  end
end

function TestScore:test_score_one_into_a_reused_table_matches_bulk()
  local cols = columns(self.model:score(self.tbl, nil, { as_of = AS_OF }))
  local into = { stale = "kept" }
  local opts = { as_of = AS_OF, into = into }
  local groups
  for i = 1, N do
    local one = self.model:score_one(self.leads[i], nil, opts)
    lu.assertIs(one, into)
    groups = groups or one.groups
    lu.assertIs(one.groups, groups)   -- the nested table is reused too
    local want = row_of(cols, i)
    want.stale = "kept"   -- keys the result does not use are left alone
    lu.assertEquals(one, want, "lead " .. i)   -- reason / disqualified_by cleared when absent
  end
  -- the slow path (as_of as a date) fills it the same way
  local r = self.model:score_one(self.leads[1], { as_of = "2026-03-01", into = into })
  lu.assertIs(r, into)
  lu.assertErrorMsgContains("into must be a table to fill, got string", function()
    self.model:score_one(self.leads[1], { as_of = "2026-03-01", into = "x" })
  end)
  lu.assertErrorMsgContains("into must be a table to fill, got string", function()
    self.model:score_one(self.leads[1], { as_of = AS_OF, into = "x" })
  end)
  lu.assertErrorMsgContains("unknown option 'into'", function() self.model:explain(self.leads[1], { into = {} }) end)
end

function TestScore:test_score_one_from_table_rows()
  local res = self.model:score(self.tbl, { as_of = AS_OF })
  local cols = columns(res)
  for i = 1, math.min(N, 200) do
    local one = self.model:score_one(self.tbl:row(i), { as_of = AS_OF })
    lu.assertEquals(one, row_of(cols, i), "row " .. i)
  end
end

function TestScore:test_as_of_as_a_date()
  local a = self.model:score(self.tbl, { as_of = "2026-03-01" }):column("total")
  local b = self.model:score(self.tbl, { as_of = AS_OF }):column("total")
  lu.assertEquals(a, b)
  lu.assertEquals(self.model:score_one(self.leads[1], { as_of = "2026-03-01" }),
    self.model:score_one(self.leads[1], { as_of = AS_OF }))
end

function TestScore:test_result_table()
  local res = self.model:score(self.tbl, { as_of = AS_OF })
  lu.assertEquals(res:names(), { "total", "status", "grade", "fit", "eng", "neg", "reason", "disqualified_by" })
  lu.assertEquals(res:type("status"), "category")
  lu.assertEquals(res:type("total"), "number")
  lu.assertStrContains(tostring(res), "total")
  lu.assertEquals(res:row(1).total, res:column("total")[1])
end

function TestScore:test_misuse_raises_at_the_caller()
  lu.assertErrorMsgContains("score: expects a leadq table", function() self.model:score({}) end)
  lu.assertErrorMsgContains("unknown option 'thread' (did you mean 'threads'?)", function()
    self.model:score(self.tbl, { thread = 2 })
  end)
  lu.assertErrorMsgContains("score_one: expects a lead record", function() self.model:score_one("x") end)
  -- once the model has scored one lead its score_one is a C function: misuse still names this line
  self.model:score_one({})
  local ok, err = pcall(function() local r = self.model:score_one("x") return r end)   -- not a tail call
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_score.lua:")
  lu.assertStrContains(err, "score_one: expects a lead record")
  ok, err = pcall(function() local r = self.model:score_one({}, nil, { as_of = "someday" }) return r end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_score.lua:")
end

function TestScore:test_wrong_value_in_a_record_is_an_expected_failure()
  local r, err = self.model:score_one({ employees = "many" })
  lu.assertNil(r)
  lu.assertEquals(err, "field 'employees': cannot read 'many' as a number")
  r = self.model:score_one({ employees = "250", created_at = "2026-02-20" }, { as_of = AS_OF })
  lu.assertEquals(r.groups.fit, 7 + 1)
  lu.assertEquals(self.model:score_one({ unsubscribed = "yes" }).status, "disqualified")
  lu.assertEquals(self.model:score_one({ unsubscribed = 1 }).status, "disqualified")
  lu.assertEquals(self.model:score_one({ unsubscribed = "no" }).status, "cold")
  r, err = self.model:score_one({ unsubscribed = "maybe" })
  lu.assertNil(r)
  lu.assertEquals(err, "field 'unsubscribed' must be true or false, got maybe")
  local proxied = setmetatable({}, { __index = { employees = 250 } })
  lu.assertEquals(self.model:score_one(proxied, { as_of = AS_OF }).groups.fit, 7 + 1)
end

local TestScoreRules = {}

function TestScoreRules:test_caps_floors_and_points_after_caps()
  local m = leadq.model(dsl.model "c" {
    groups = { fit = { cap = 20 }, neg = { floor = -10 } },
    rules = {
      dsl.rule "A" { group = "fit", points = 15, when = { a = true } },
      dsl.rule "B" { group = "fit", points = 10, when = { b = true } },
      dsl.rule "C" { group = "fit", points = 5, when = { c = true } },
      dsl.rule "N1" { group = "neg", points = -8, when = { n = true } },
      dsl.rule "N2" { group = "neg", points = -8, when = { n = true } },
    },
  })
  local r = m:score_one({ a = true, b = true, c = true, n = true })
  lu.assertEquals(r.groups, { fit = 20, neg = -10 })
  lu.assertEquals(r.total, 10)
  lu.assertEquals(r.reason, "A")
  local ex = m:explain({ a = true, b = true, c = true, n = true })
  local pts = {}
  for _, rule in ipairs(ex.rules) do pts[rule.id] = { rule.points, rule.raw } end
  lu.assertEquals(pts, { A = { 15, 15 }, B = { 5, 10 }, C = { 0, 5 }, N1 = { -8, -8 }, N2 = { -2, -8 } })
end

-- String tests on a category run through one table per field; tables of up to 32 entries are read
-- 32 rows at a time (with AVX2). Every size around those edges, rows not a multiple of 32, missing
-- values: bulk agrees with a plain Lua reading of the rules, and with score_one.
function TestScoreRules:test_categories_of_every_size_read_alike()
  local m = leadq.model(dsl.model "cat" {
    rules = {
      dsl.rule "ONE_OF" { points = 1, when = { c = { one_of = { "v3", "v6", "v16", "v17", "v31", "V32", "v200" } } } },
      dsl.rule "ENDS" { points = 2, when = { c = { ends_with = "1" } } },
      dsl.rule "NOT" { points = 4, when = { c = { not_one_of = { "v0", "v15" } } } },
      dsl.rule "MISSING" { points = 8, when = { c = "missing" } },
    },
  })
  local next_value = generator(7)
  for _, size in ipairs({ 1, 15, 16, 17, 31, 32, 33, 300 }) do
    local rows, expected = {}, {}
    for i = 1, 1000 do
      local k = next_value(size + 1) - 1
      local v = k < size and ("v" .. k) or nil
      rows[i] = { c = v }
      local l = v and v:lower()
      local want = 0
      if l and (l == "v3" or l == "v6" or l == "v16" or l == "v17" or l == "v31" or l == "v32" or l == "v200") then
        want = want + 1
      end
      if l and l:sub(-1) == "1" then want = want + 2 end
      if l and l ~= "v0" and l ~= "v15" then want = want + 4 end
      if not l then want = want + 8 end
      expected[i] = want
    end
    local res = m:score(leadq.table(rows, { c = "category" }))
    local totals = res:column("total")
    for i = 1, #rows do
      lu.assertEquals(totals[i], expected[i], string.format("%d values, row %d (%s)", size, i, tostring(rows[i].c)))
      if i % 37 == 0 then lu.assertEquals(m:score_one(rows[i]).total, expected[i]) end
    end
  end
end

-- Bulk takes points back from capped groups only in batches where some row is past the cap or
-- floor: batches with and without, positive and negative rules, against score_one's row path.
function TestScoreRules:test_caps_in_batches_with_and_without_excess()
  local m = leadq.model(dsl.model "caps" {
    groups = { g = { cap = 10 }, n = { floor = -10 } },
    rules = {
      dsl.rule "A" { group = "g", points = 6, when = { a = true } },
      dsl.rule "B" { group = "g", points = 7, when = { b = true } },
      dsl.rule "N1" { group = "n", points = -6, when = { c = true } },
      dsl.rule "N2" { group = "n", points = -7, when = { d = true } },
    },
  })
  local rows = {}
  for i = 1, 1300 do   -- the first batch of 512 rows never past the cap or floor; later ones sometimes
    local k = i % 4
    local late = i > 512 and i % 3 == 0
    rows[i] = { a = k == 0 or late, b = k == 1 or late, c = k == 2 or late, d = k == 3 or late }
  end
  local res = m:score(leadq.table(rows, { a = "boolean", b = "boolean", c = "boolean", d = "boolean" }))
  local reasons, totals = res:column("reason"), res:column("total")
  for i, lead in ipairs(rows) do
    local one = m:score_one(lead)
    lu.assertEquals(reasons[i], one.reason, "row " .. i)
    lu.assertEquals(totals[i], one.total, "row " .. i)
  end
  lu.assertEquals(reasons[1], "B")
  lu.assertEquals(reasons[600], "A")   -- A and B fired, the cap took 3 of B's 7: A's 6 is the reason
  lu.assertEquals(totals[600], 0)      -- 10 - 10
end

function TestScoreRules:test_reason_prefers_positive_then_earliest()
  local m = leadq.model(dsl.model "r" {
    rules = {
      dsl.rule "NEG" { points = -30, when = { x = true } },
      dsl.rule "P1" { points = 10, when = { x = true } },
      dsl.rule "P2" { points = 10, when = { x = true } },
    },
  })
  lu.assertEquals(m:score_one({ x = true }).reason, "P1")
  local only_neg = leadq.model(dsl.model "r2" { rules = { dsl.rule "NEG" { points = -3, when = { x = true } } } })
  lu.assertEquals(only_neg:score_one({ x = true }).reason, "NEG")
  lu.assertNil(only_neg:score_one({ x = false }).reason)
end

function TestScoreRules:test_fractional_points_use_the_double_path()
  local m = leadq.model(dsl.model "f" {
    groups = { g = { cap = 1.5 } },
    rules = {
      dsl.rule "A" { group = "g", points = 0.75, when = { x = true } },
      dsl.rule "B" { group = "g", points = 0.5, when = { y = true } },
      dsl.rule "C" { group = "g", points = 0.5, when = { y = true } },
    },
    thresholds = { ok = 1.25, otherwise = "no" },
  })
  local recs = { { x = true, y = true }, { x = true }, { y = true }, {} }
  local tbl = leadq.table(recs, { x = "boolean", y = "boolean" })
  local res = m:score(tbl)
  lu.assertEquals(res:column("total"), { 1.5, 0.75, 1, 0 })
  lu.assertEquals(res:column("status"), { "ok", "no", "no", "no" })
  for i, rec in ipairs(recs) do lu.assertEquals(m:score_one(rec).total, res:column("total")[i]) end
end

function TestScoreRules:test_function_rules_run_first_and_errors_are_reported()
  local m = leadq.model(dsl.model "fn" {
    rules = {
      dsl.rule "LONG" { points = 2, when = function(lead) return #lead.title > 10 end },
      dsl.rule "SIZE" { points = function(lead) return lead.employees / 100 end, when = { employees = "present" } },
      dsl.rule "PLAIN" { points = 1, when = { title = "present" } },
    },
  })
  local recs = { { id = "A1", title = "Head of Demand Generation", employees = 250 },
    { id = "A2", title = "CTO", employees = 50 }, { id = "A3", employees = 10 } }
  local tbl = leadq.table(recs)
  local res, errs = m:score(tbl)
  lu.assertEquals(res:column("total"), { 2 + 2.5 + 1, 0.5 + 1, 0.1 })
  lu.assertEquals(errs.count, 1)
  lu.assertStrContains(errs[1], "rule 'LONG' failed for lead 'A3' (row 3): ")
  lu.assertStrContains(errs[1], "attempt to get length of")
  for i, rec in ipairs(recs) do
    lu.assertEquals(m:score_one(rec).total, res:column("total")[i])
  end
  lu.assertErrorMsgContains("rule 'LONG' failed for lead 'A3' (row 3)", function()
    m:score(tbl, { errors = "raise" })
  end)
  lu.assertStrContains(tostring(m), "call Lua per lead")
  lu.assertEquals(m:info().functions, { "LONG", "SIZE" })
end

function TestScoreRules:test_a_run_of_models_reads_earlier_results()
  local icp = leadq.model(dsl.model "icp" {
    groups = { fit = { cap = 50 } },
    rules = { dsl.rule "BIG" { group = "fit", points = 40, when = { employees = { at_least = 100 } } } },
    thresholds = { good = 30, otherwise = "poor" },
  })
  local sql = leadq.model(dsl.model "sql" {
    rules = {
      dsl.rule "ICP_GOOD" { points = 10, when = { ["icp.status"] = "good" } },
      dsl.rule "ICP_FIT" { points = 5, when = { ["icp.fit"] = { at_least = 40 } } },
      dsl.rule "BUDGET" { points = 20, when = { budget = { at_least = 1000 } } },
    },
    thresholds = { sql = 30, otherwise = "no" },
  })
  local run = leadq.load_models({ icp, sql })
  local recs = { { employees = 500, budget = 5000 }, { employees = 5, budget = 5000 }, { employees = 500 } }
  local tbl = leadq.table(recs)
  local res = run:score(tbl)
  lu.assertEquals(res:column("icp.status"), { "good", "poor", "good" })
  lu.assertEquals(res:column("sql.total"), { 35, 20, 15 })
  lu.assertEquals(res:column("sql.status"), { "sql", "no", "no" })
  for i, rec in ipairs(recs) do
    local one = run:score_one(rec)
    lu.assertEquals(one.sql.total, res:column("sql.total")[i])
    lu.assertEquals(one.icp.status, res:column("icp.status")[i])
  end
  lu.assertStrContains(tostring(run:explain(recs[1])), "sql:")
end

function TestScoreRules:test_event_features_read_like_fields()
  local m = leadq.model(dsl.model "ev" {
    rules = { dsl.rule "PRICING" { points = 15, when = { pricing_views = { at_least = 2 } } } },
    features = { pricing_views = dsl.feature { count = "pricing_view", within_days = 30 } },
  })
  local leads = leadq.table({ { id = "a" }, { id = "b" } })
  local events = leadq.parse_csv("lead_id,type,at\na,pricing_view,2026-02-20T00:00:00Z\n" ..
    "a,pricing_view,2026-02-25T00:00:00Z\nb,pricing_view,2026-02-25T00:00:00Z\n")
  local res = m:score(leads, events, { as_of = "2026-03-01" })
  lu.assertEquals(res:column("total"), { 15, 0 })
  lu.assertEquals(res:column("reason")[1], "PRICING")
  local one = m:score_one({ id = "a" }, { { type = "pricing_view", at = "2026-02-26T00:00:00Z" },
    { type = "pricing_view", at = "2026-02-20T00:00:00Z" } }, { as_of = "2026-03-01" })
  lu.assertEquals(one.total, 15)
  lu.assertEquals(m:score_one({ id = "a" }, { as_of = "2026-03-01" }).total, 0)
  lu.assertEquals(m:score(leads, { as_of = "2026-03-01" }):column("total"), { 0, 0 })
end

-- score_one reads a record's fields through one generated Lua function (up to 150 fields) or one
-- lookup at a time (past that): names that need quoting, records with a metatable, and values
-- from the events where the record has none read the same either way.
function TestScoreRules:test_record_fields_read_the_same_by_reader_or_lookup()
  local odd = 'it\'s "odd"\n.name'
  local function model_of(nfields)
    local rules = { dsl.rule "ODD" { points = 7, when = { [odd] = { at_least = 1 } } },
      dsl.rule "SEEN" { points = 100, when = { seen = { at_least = 1 } } } }
    for i = 1, nfields do
      rules[#rules + 1] = dsl.rule("F" .. i) { points = 1, when = { ["f" .. i] = "present" } }
    end
    return leadq.model(dsl.model "wide" {
      rules = rules,
      features = { seen = dsl.feature { count = "visit", within_days = 30 } },
    })
  end
  local record = { [odd] = 2, f1 = "x", f3 = 0 }
  local proxied = setmetatable({}, { __index = record })
  local visit = { { type = "visit", at = "2026-02-26T00:00:00Z" } }
  for _, n in ipairs({ 3, 160 }) do   -- 160 record fields: past what the reader returns
    local m = model_of(n)
    lu.assertEquals(m:score_one(record, { as_of = AS_OF }).total, 9, n)
    lu.assertEquals(m:score_one(proxied, { as_of = AS_OF }).total, 9, n)
    lu.assertEquals(m:score_one(record, visit, { as_of = AS_OF }).total, 109, n)
    -- the record's own value comes first
    lu.assertEquals(m:score_one({ [odd] = 2, seen = 0 }, visit, { as_of = AS_OF }).total, 7, n)
  end
end

-- score_one's answer is written by one generated Lua function (up to 150 groups) or field by
-- field (past that): the hidden group of rules without one, and an answer refilled with `into`
-- (fields this lead has not are cleared) come out the same.
function TestScoreRules:test_answers_written_the_same_by_writer_or_field_by_field()
  local odd = "g_first"
  for _, n in ipairs({ 2, 160 }) do
    local groups, rules = { [odd] = {} }, {
      dsl.rule "ODD" { group = odd, points = 5, when = { a = { at_least = 1 } } },
      dsl.rule "LOOSE" { points = 1, when = { a = { at_least = 2 } } },   -- no group: the hidden one
    }
    for i = 1, n do
      groups["g" .. i] = {}
      rules[#rules + 1] = dsl.rule("R" .. i) { group = "g" .. i, points = i, when = { b = { at_least = i } } }
    end
    local m = leadq.model(dsl.model "groups" {
      groups = groups, rules = rules,
      thresholds = { warm = 10, otherwise = "cold" },
      disqualifiers = { dsl.disqualify "X" { reason = "excluded", when = { x = true } } },
    })
    local into = {}
    for _, lead in ipairs({ { a = 2, b = 3 }, { x = true }, { a = 1 }, {} }) do
      local fresh = m:score_one(lead)
      local refilled = m:score_one(lead, nil, { into = into })
      lu.assertIs(refilled, into)
      lu.assertEquals(refilled, fresh, n)
      lu.assertEquals(fresh.groups[odd], (lead.a or 0) >= 1 and 5 or 0, n)
      lu.assertEquals(fresh.groups["g" .. n], (lead.b or 0) >= n and n or 0, n)
      lu.assertNil(fresh.groups[""])
    end
    lu.assertEquals(into.status, "cold")
    lu.assertNil(into.reason)
    lu.assertNil(into.disqualified_by)
  end
end

function TestScoreRules:test_one_lead_memory_stays_bounded()
  local m = leadq.model(dsl.model "u" {
    rules = { dsl.rule "G" { points = 1, when = { d = { ends_with = ".org" } } } },
  })
  -- past 4096 distinct values the field's strings are tested directly: same answers
  for i = 1, helpers.size(6000, 300) do
    lu.assertEquals(m:score_one({ d = "x" .. i .. (i % 2 == 0 and ".org" or ".com") }).total, i % 2 == 0 and 1 or 0)
    if i % 500 == 0 then lu.assertEquals(m:score_one({ d = { "a.com", "b.ORG" } }).total, 1) end
  end
end

-- score_one reads dates with the CSV reader's parser: a date the reader rejects is refused here too,
-- so one lead and bulk never disagree on what a date is.
local TestScoreOneDates = {}

function TestScoreOneDates:test_dates_read_as_the_csv_reader_reads_them()
  local m = leadq.model(dsl.model "dates" {
    rules = { dsl.rule "RECENT" { points = 1, when = { created_at = { within_days = 30 } } } },
    thresholds = { mql = 1, otherwise = "cold" },
  })
  local as_of = { as_of = "2026-03-10" }
  lu.assertEquals(m:score_one({ created_at = "2026-03-01" }, as_of).total, 1)
  lu.assertEquals(m:score_one({ created_at = "2026-03-01T10:00:00+02:00" }, as_of).total, 1)
  local bad = { "2026-02-30", "2026-13-01", "2026-03-01T25:00" }
  for _, text in ipairs(bad) do
    lu.assertNil(leadq.parse_time(text))
    local r, err = m:score_one({ created_at = text }, as_of)
    lu.assertNil(r)
    lu.assertEquals(err, "field 'created_at': cannot read '" .. text .. "' as a date or time")
  end
end

return { TestScore = TestScore, TestScoreRules = TestScoreRules, TestScoreOneDates = TestScoreOneDates }
