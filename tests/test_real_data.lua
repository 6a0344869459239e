-- The real data sets load with the right types and no rejects.
local lu = require("luaunit")
local leadq = require("leadq")
local h = require("helpers")

local M = {}

local function types_of(t)
  local out = {}
  for _, c in ipairs(t:schema()) do out[c.name] = c.type end
  return out
end

local function load(path, options)
  local t, err = leadq.read_csv(h.data(path), options)
  lu.assertNotNil(t, err)
  if t:reject_count() > 0 then lu.fail(t:rejects()[1].message) end
  return t
end

local function count(t, name, value)
  local col, n = t:column(name)
  local k = 0
  for i = 1, n do if col[i] == value then k = k + 1 end end
  return k
end

M.TestRealData = {}

-- UCI bank marketing: ';'-separated, every string quoted, LF.
function M.TestRealData:test_bank_full()
  local t = load("uci_bank_marketing/bank-full.csv")
  lu.assertEquals(#t, 45211)
  lu.assertEquals(#t:names(), 17)
  lu.assertEquals(types_of(t), {
    age = "number", job = "category", marital = "category", education = "category", default = "boolean",
    balance = "number", housing = "boolean", loan = "boolean", contact = "category", day = "number",
    month = "category", duration = "number", campaign = "number", pdays = "number", previous = "number",
    poutcome = "category", y = "boolean" })
  lu.assertEquals(t:row(1), { age = 58, job = "management", marital = "married", education = "tertiary",
    default = false, balance = 2143, housing = true, loan = false, contact = "unknown", day = 5, month = "may",
    duration = 261, campaign = 1, pdays = -1, previous = 0, poutcome = "unknown", y = false })
  lu.assertEquals(count(t, "y", true), 5289)  -- SOURCE.txt: y=yes 5289
  local last = t:row(#t)
  lu.assertEquals(last.age, 37)
  lu.assertEquals(last.poutcome, "other")
end

-- The additional set: CRLF line ends, decimals, 'unknown' in the yes/no columns.
function M.TestRealData:test_bank_additional_full()
  local t = load("uci_bank_marketing/bank-additional-full.csv")
  lu.assertEquals(#t, 41188)
  local types = types_of(t)
  lu.assertEquals(#t:names(), 21)
  lu.assertEquals(types["emp.var.rate"], "number")
  lu.assertEquals(types["euribor3m"], "number")
  lu.assertEquals(types.default, "category")
  lu.assertEquals(types.y, "boolean")
  local r = t:row(1)
  lu.assertEquals(r["cons.price.idx"], 93.994)
  lu.assertEquals(r["cons.conf.idx"], -36.4)
  lu.assertEquals(r["nr.employed"], 5191)
  lu.assertEquals(r.day_of_week, "mon")
  lu.assertEquals(count(t, "y", true), 4640)  -- SOURCE.txt: y=yes 4640
end

-- Olist MQLs: ISO dates, hex ids, a few hundred landing pages.
function M.TestRealData:test_olist_marketing_qualified_leads()
  local t = load("olist_marketing_funnel/olist_marketing_qualified_leads_dataset.csv")
  lu.assertEquals(#t, 8000)
  lu.assertEquals(types_of(t), { mql_id = "text", first_contact_date = "time", landing_page_id = "category",
                                 origin = "category" })
  lu.assertEquals(t:row(1), { mql_id = "dac32acd4db4c29c230538b72f8dd87d", first_contact_date = 1517443200,
                              landing_page_id = "88740e65d5d6b056e0cda098e1ea6313", origin = "social" })
  lu.assertEquals(count(t, "origin", "organic_search"), 2296)
  local dates = t:column("first_contact_date")
  local lo, hi = math.huge, -math.huge
  for i = 1, #t do lo = math.min(lo, dates[i]); hi = math.max(hi, dates[i]) end
  lu.assertEquals(leadq.format_time(lo), "2017-06-14T00:00:00Z")  -- SOURCE.txt: 2017-06-14 .. 2018-05-31
  lu.assertEquals(leadq.format_time(hi), "2018-05-31T00:00:00Z")
end

-- Olist closed deals: mostly empty columns, True/False, quoted "cat, wolf".
function M.TestRealData:test_olist_closed_deals()
  local t = load("olist_marketing_funnel/olist_closed_deals_dataset.csv")
  lu.assertEquals(#t, 842)
  lu.assertEquals(types_of(t), {
    mql_id = "text", seller_id = "text", sdr_id = "category", sr_id = "category", won_date = "time",
    business_segment = "category", lead_type = "category", lead_behaviour_profile = "category",
    has_company = "boolean", has_gtin = "boolean", average_stock = "category", business_type = "category",
    declared_product_catalog_size = "number", declared_monthly_revenue = "number" })
  local r = t:row(1)
  lu.assertEquals(r.won_date, leadq.parse_time("2018-02-26T19:58:54Z"))
  lu.assertNil(r.has_company)
  lu.assertEquals(r.declared_monthly_revenue, 0)
  lu.assertEquals(count(t, "has_company", true), 58)
  lu.assertEquals(count(t, "has_company", false), 5)
  lu.assertEquals(count(t, "lead_behaviour_profile", "cat, wolf"), 8)
  local missing = 0
  local col, n = t:column("lead_behaviour_profile")
  for i = 1, n do if col[i] == nil then missing = missing + 1 end end
  lu.assertEquals(missing, 177)
end

-- A CRM-style load of a real file: mapping and declared types.
function M.TestRealData:test_bank_with_map_and_schema()
  local t = load("uci_bank_marketing/bank-full.csv",
    { map = { y = "subscribed", job = "title" }, schema = { subscribed = "category", day = "category" },
      strict = true })
  lu.assertEquals(t:type("subscribed"), "category")
  lu.assertEquals(t:type("day"), "category")
  lu.assertEquals(t:row(1).title, "management")
  lu.assertEquals(t:row(1).subscribed, "no")
end

return M
