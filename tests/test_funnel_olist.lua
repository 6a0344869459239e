-- The real-world check: Olist's marketing funnel (8000 MQLs, 842 closed deals) through `leadq funnel`
-- with a column mapping; conversion and time to close by origin, against a plain Lua computation.
local lu = require("luaunit")
local funnel = require("leadq.funnel")
local cli = require("leadq.cli")

local M = {}

local DIR = "tests/data/olist_marketing_funnel"
local MQLS = DIR .. "/olist_marketing_qualified_leads_dataset.csv"
local DEALS = DIR .. "/olist_closed_deals_dataset.csv"


-- The first n fields of a line (these files quote nothing before the fields read here).
local function fields(line, n)
  local out = {}
  for v in (line .. ","):gmatch("([^,]*),") do
    out[#out + 1] = v
    if #out == n then break end
  end
  return out
end

local function run(extra)
  local argv = { "funnel", "--stages", "mql,customer", "--sla-days", "0",
    "--transitions", MQLS, "--map", "lead=mql_id,at=first_contact_date,stage_is=mql",
    "--transitions", DEALS, "--map", "lead=mql_id,at=won_date,stage_is=customer",
    "--leads", MQLS, "--id", "mql_id", "--by", "origin" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local printed, errors = {}, {}
  local status = cli.main(argv, { print = function(s) printed[#printed + 1] = s end,
                                     error = function(s) errors[#errors + 1] = s end })
  return status, table.concat(printed, "\n"), errors
end

-- The same numbers, the slow obvious way.
local function expected()
  local origin_of, contact = {}, {}
  local first = true
  for line in io.lines(MQLS) do
    if not first then
      local f = fields(line, 4)
      origin_of[f[1]] = f[4]
      contact[f[1]] = funnel.parse_time(f[2])
    end
    first = false
  end
  local by = {}
  for _, o in pairs(origin_of) do by[o] = by[o] or { mql = 0, customer = 0, days = {} } end
  for _, o in pairs(origin_of) do by[o].mql = by[o].mql + 1 end
  first = true
  for line in io.lines(DEALS) do
    if not first then
      local f = fields(line, 5)
      local o = by[origin_of[f[1]]]
      local d = (funnel.parse_time(f[5]) - contact[f[1]]) / 86400
      o.customer = o.customer + 1
      -- one deal is won before its first contact: the funnel rejects that MQL row, so the lead
      -- reaches customer (and so mql) but has no time to close
      if d >= 0 then o.days[#o.days + 1] = d end
    end
    first = false
  end
  return by
end

M.TestFunnelOlist = {}

function M.TestFunnelOlist.test_conversion_and_time_to_close_by_origin()
  local status, csv, errors = run({ "--format", "csv" })
  lu.assertEquals(status, 0)
  -- the data's one impossible row is reported with its file and line, not dropped in silence
  lu.assertEquals(errors[1], "leadq funnel: 1 transition rows rejected (not counted):")
  lu.assertStrContains(errors[2], "olist_marketing_qualified_leads_dataset.csv:6359: lead "
    .. "b91cf8812365f50ff4bda4bcd6206b05: out of order: 'mql' comes before 'customer' in the funnel")
  local lines = {}
  for l in (csv .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  lu.assertEquals(lines[1], "origin,mql,customer,disqualified,nurture,mql_to_customer,"
    .. "mql_to_customer_median_days,mql_to_customer_p90_days")
  lu.assertEquals(#lines, 12)   -- header, ten origins and the MQLs without one
  local want = expected()
  local total_mql, total_customer = 0, 0
  for k = 2, #lines do
    local f = fields(lines[k], 8)
    local origin = f[1]
    local w = want[origin]
    lu.assertNotNil(w, origin)
    local mql, customer = tonumber(f[2]), tonumber(f[3])
    lu.assertEquals(mql, w.mql, origin)
    lu.assertEquals(customer, w.customer, origin)
    lu.assertAlmostEquals(tonumber(f[6]), w.customer / w.mql, 1e-4)
    table.sort(w.days)
    if #w.days <= 256 then
      -- a small group: the interpolated quantiles a spreadsheet, pandas or DuckDB's quantile_cont give,
      -- up to the CSV's rounding to 0.01 day (referral: 24 deals, median 19.4 days)
      local function cont(q)
        local h = q * (#w.days - 1)
        local lo = math.floor(h)
        local a, b = w.days[lo + 1], w.days[math.min(lo + 2, #w.days)]
        return a + (h - lo) * (b - a)
      end
      lu.assertTrue(math.abs(tonumber(f[7]) - cont(0.5)) <= 0.005, origin .. ": " .. f[7] .. " / " .. cont(0.5))
      lu.assertTrue(math.abs(tonumber(f[8]) - cont(0.9)) <= 0.005, origin .. ": " .. f[8] .. " / " .. cont(0.9))
      if origin == "referral" then
        lu.assertEquals(#w.days, 24)
        lu.assertEquals(string.format("%.1f", tonumber(f[7])), "19.4")
      end
    else
      -- past 256 durations, the sketch: within 1% of the value at the lower rank, plus the rounding
      local median = w.days[math.floor(0.5 * (#w.days - 1)) + 1]
      local p90 = w.days[math.floor(0.9 * (#w.days - 1)) + 1]
      lu.assertTrue(math.abs(tonumber(f[7]) - median) <= 0.01 * median + 0.005, origin .. ": " .. f[7])
      lu.assertTrue(math.abs(tonumber(f[8]) - p90) <= 0.01 * p90 + 0.005, origin .. ": " .. f[8])
    end
    total_mql, total_customer = total_mql + mql, total_customer + customer
  end
  lu.assertEquals(total_mql, 8000)
  lu.assertEquals(total_customer, 842)
end

function M.TestFunnelOlist.test_table_and_json_formats()
  local status, text = run({ "--format", "table" })
  lu.assertEquals(status, 0)
  lu.assertStrContains(text, "origin             mql   customer")
  -- three tables (stages, conversion, days) with a row per origin and the total
  local rows = {}
  for line in text:gmatch("organic_search[^\n]*") do rows[#rows + 1] = line end
  lu.assertStrMatches(rows[1], "organic_search%s+2296%s+271%s+0%s+0")
  lu.assertStrMatches(rows[2], "organic_search%s+11%.8%%")
  local totals = {}
  for line in text:gmatch("\n(total [^\n]*)") do totals[#totals + 1] = line end
  lu.assertStrMatches(totals[1], "total%s+8000%s+842%s+.*")
  lu.assertStrMatches(totals[2], "total%s+10%.5%%")      -- 842 / 8000
  for line in text:gmatch("[^\n]+") do lu.assertTrue(#line <= 100, "a line of " .. #line .. ": " .. line) end
  -- the wide form: every column in one table, and the total row too
  status, text = run({ "--format", "wide" })
  lu.assertEquals(status, 0)
  lu.assertStrMatches(text:match("\n(organic_search[^\n]*)"), "organic_search%s+2296%s+271%s+0%s+0%s+11%.8%%.*")
  lu.assertStrMatches(text:match("\n(total [^\n]*)"), "total%s+8000%s+842%s+0%s+0%s+10%.5%%.*")
  local _, js = run({ "--format", "json" })
  local back = assert(require("leadq.json").decode(js))
  lu.assertEquals(back.dims, { "origin" })
  lu.assertEquals(back.pairs[1].name, "mql_to_customer")
end

function M.TestFunnelOlist.test_mapping_mistakes_are_plain_sentences()
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  lu.assertEquals(cli.main({ "funnel", "--transitions", MQLS }, out), 1)
  lu.assertStrContains(errors[1], "olist_marketing_qualified_leads_dataset.csv: no column 'lead_id' for the lead "
    .. "(map it: lead=COLUMN)")
  errors = {}
  lu.assertEquals(cli.main({ "funnel", "--transitions", MQLS, "--map", "lead=mql_id,when=x" }, out), 2)
  lu.assertEquals(errors[1], "leadq: unknown mapping key 'when' (expected lead, stage, at, reason, owner, "
    .. "stage_is)")
  errors = {}
  lu.assertEquals(cli.main({ "funnel", "--transitions", MQLS, "--map", "lead=mql_id,at=first_contact_date,stage_is=mql",
    "--leads", MQLS, "--id", "mql_ud" }, out), 1)
  lu.assertEquals(errors[1], "leadq: " .. MQLS .. ": no column 'mql_ud' for the lead id (did you mean 'mql_id'?)")
  errors = {}
  lu.assertEquals(cli.main({ "funnel", "--map", "lead=mql_id" }, out), 2)
  lu.assertEquals(errors[1], "leadq: 0 --transitions but 1 --map: give one --map per --transitions, in the same order")
end

function M.TestFunnelOlist.test_every_reject_can_be_listed()
  local path = os.tmpname()
  local status, _, errors = run({ "--format", "csv", "--rejects", path })
  lu.assertEquals(status, 0)
  lu.assertEquals(errors[1], "leadq funnel: 1 transition rows rejected (not counted), all listed in " .. path .. ":")
  local fh = assert(io.open(path, "rb"))
  local text = fh:read("*a")
  fh:close()
  os.remove(path)
  lu.assertEquals(text, "file,line,lead,stage,at,message\n" .. MQLS .. ",6359,b91cf8812365f50ff4bda4bcd6206b05,mql,"
    .. "2018-03-08 00:00:00,out of order: 'mql' comes before 'customer' in the funnel\n")
end


function M.TestFunnelOlist.test_each_transitions_file_has_its_own_map()
  local printed, errors = {}, {}
  local out = { print = function(s) printed[#printed + 1] = s end, error = function(s) errors[#errors + 1] = s end }
  -- the maps in the other order: the first file's columns do not fit the second's map
  lu.assertEquals(cli.main({ "funnel", "--stages", "mql,customer", "--transitions", MQLS, "--transitions", DEALS,
    "--map", "lead=mql_id,at=won_date,stage_is=customer", "--map", "lead=mql_id,at=first_contact_date,stage_is=mql" },
    out), 1)
  lu.assertStrContains(errors[1], "olist_marketing_qualified_leads_dataset.csv: no column 'won_date' for the at")
  errors = {}
  lu.assertEquals(cli.main({ "funnel", "--transitions", MQLS, "--transitions", DEALS,
    "--map", "lead=mql_id,at=first_contact_date,stage_is=mql" }, out), 2)
  lu.assertEquals(errors[1],
    "leadq: 2 --transitions but 1 --map: give one --map per --transitions, in the same order")
  lu.assertEquals(#printed, 0)
end

return M
