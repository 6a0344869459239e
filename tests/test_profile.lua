-- leadq profile: conversion by value for every column, against counts made the plain way on the
-- UCI bank file; missing apart, rare values grouped, Wilson intervals, the three formats, errors.
local lu = require("luaunit")
local leadq = require("leadq")
local profile = require("leadq.profile")
local json = require("leadq.json")
local h = require("helpers")

local M = {}

local BANK = h.data("uci_bank_marketing/bank-full.csv")
local LEADQ = (os.getenv("LEADQ_BUILD") or "build") .. "/leadq"

local function column(report, name)
  for _, c in ipairs(report.columns) do if c.name == name then return c end end
end

local function bin(col, label)
  for _, b in ipairs(col.bins) do if b.label == label then return b end end
end

function M.test_wilson_interval()
  local lo, hi = profile.wilson(5, 10)
  lu.assertAlmostEquals(lo, 0.2366, 1e-4)
  lu.assertAlmostEquals(hi, 0.7634, 1e-4)
  lo, hi = profile.wilson(0, 10)
  lu.assertEquals(lo, 0)
  lu.assertAlmostEquals(hi, 0.2775, 1e-4)
end

function M.test_bank_counts_match_the_file_and_columns_are_ranked()
  local t = assert(leadq.read_csv(BANK))
  local report = profile.profile(t, { outcome = "y=yes", exclude = { "duration" } })
  lu.assertEquals(report.leads, 45211)
  lu.assertEquals(report.positives, 5289)
  lu.assertEquals(report.measure, "information value")
  lu.assertEquals(report.columns[1].name, "poutcome")   -- the outcome of the last campaign tells most
  lu.assertNil(column(report, "duration"))
  lu.assertNil(column(report, "y"))
  for i = 2, #report.columns do lu.assertTrue(report.columns[i - 1].iv >= report.columns[i].iv) end
  -- the same counts, the plain way
  local leads, yes = {}, {}
  local first = true
  for line in io.lines(BANK) do
    if first then first = false else
      local f = {}
      for v in (line .. ";"):gmatch("([^;]*);") do f[#f + 1] = v:gsub('"', "") end
      local job, y = f[2], f[17]
      leads[job] = (leads[job] or 0) + 1
      if y == "yes" then yes[job] = (yes[job] or 0) + 1 end
    end
  end
  local job = column(report, "job")
  for name, n in pairs(leads) do
    local b = bin(job, name)
    lu.assertNotNil(b, name)
    lu.assertEquals(b.leads, n, name)
    lu.assertEquals(b.positives, yes[name] or 0, name)
    lu.assertAlmostEquals(b.rate, (yes[name] or 0) / n, 1e-12)
    lu.assertAlmostEquals(b.lift, ((yes[name] or 0) / n) / (5289 / 45211), 1e-9)
    lu.assertTrue(b.low <= b.rate and b.rate <= b.high)
  end
  -- numbers: at most 10 quantile bins, every lead in one of them
  local age = column(report, "age")
  lu.assertTrue(#age.bins <= 10 and #age.bins >= 5)
  local total = 0
  for _, b in ipairs(age.bins) do total = total + b.leads end
  lu.assertEquals(total, 45211)
end

function M.test_missing_apart_and_rare_values_grouped()
  local lines = { "id,plan,size,converted" }
  for i = 1, 300 do
    local plan = i <= 5 and "rare" or (i % 2 == 0 and "pro" or "free")
    local size = i % 10 == 0 and "" or tostring(i)
    lines[#lines + 1] = string.format("%d,%s,%s,%d", i, plan, size, (i % 3 == 0) and 1 or 0)
  end
  local t = leadq.parse_csv(table.concat(lines, "\n") .. "\n")
  local report = profile.profile(t, { outcome = "converted", min_count = 10 })
  local plan = column(report, "plan")
  lu.assertEquals(bin(plan, "(other values)").leads, 5)
  lu.assertNil(bin(plan, "rare"))
  local size = column(report, "size")
  local missing = bin(size, "(missing)")
  lu.assertEquals(missing.leads, 30)
  lu.assertTrue(missing.missing)
  lu.assertEquals(missing.positives, 10)              -- i = 30, 60, ... 300: all multiples of 3
end

-- Values that differ only in case are one line, as rules compare them; times are binned by date;
-- a column with one value, or only missing values, still profiles.
function M.test_case_times_and_degenerate_columns()
  local lines = { "id,team,signed_up,constant,empty,converted" }
  for i = 1, 200 do
    local team = ({ "Sales", "sales", "SALES", "ops" })[i % 4 + 1]
    local day = string.format("2026-%02d-%02dT10:00:00Z", 1 + i % 12, 1 + i % 28)
    lines[#lines + 1] = string.format("%d,%s,%s,same,,%d", i, team, day, (i % 4 == 3) and 1 or 0)
  end
  local t = leadq.parse_csv(table.concat(lines, "\n") .. "\n")
  local report = profile.profile(t, { outcome = "converted", max_bins = 4 })
  local team = column(report, "team")
  lu.assertEquals(#team.bins, 2)
  local sales = team.bins[1]
  lu.assertEquals(sales.leads, 150)
  lu.assertEquals(sales.positives, 0)                -- i % 4 == 3 is always ops
  lu.assertEquals(bin(team, "ops").positives, 50)
  local signed = column(report, "signed_up")
  lu.assertEquals(signed.type, "time")
  lu.assertTrue(#signed.bins >= 2 and #signed.bins <= 4)
  lu.assertStrMatches(signed.bins[1].label, "up to 2026%-%d%d%-%d%d")
  lu.assertEquals(#column(report, "constant").bins, 1)
  lu.assertEquals(column(report, "constant").iv, 0)
  local empty = column(report, "empty")
  lu.assertEquals(#empty.bins, 1)
  lu.assertEquals(empty.bins[1].label, "(missing)")
  lu.assertEquals(empty.bins[1].leads, 200)
end

function M.test_formats()
  local t = assert(leadq.read_csv(BANK))
  local report = profile.profile(t, { outcome = "y=yes", exclude = { "duration" }, max_bins = 5 })
  local text = profile.format(report, "table")
  lu.assertStrContains(text, "Columns ranked by information value")
  lu.assertStrContains(text, "1. poutcome (category): IV ")
  lu.assertStrContains(text, "success")
  local csv = profile.format(report, "csv")
  lu.assertEquals(csv:match("^[^\n]*"), "rank,column,type,information_value,bin,leads,positives,rate,lift,low,high")
  lu.assertStrContains(csv, "\n1,poutcome,category,")
  local doc = assert(json.decode(profile.format(report, "json")))
  lu.assertEquals(doc.ranked_by, "information value")
  lu.assertEquals(doc.columns[1].name, "poutcome")
  lu.assertEquals(doc.leads, 45211)
  lu.assertEquals(#doc.columns, #report.columns)
  lu.assertStrContains(h.error_of(profile.format, report, "xml"), "format must be table, csv or json, got xml")
end

local function cli(args)
  local p = io.popen(LEADQ .. " " .. args .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  return out:gsub("exit=%d+%s*$", ""), tonumber(out:match("exit=(%d+)%s*$"))
end

function M.test_cli_and_bad_input()
  local out, code = cli("profile --leads " .. BANK .. " --outcome y=yes --exclude duration --format csv")
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "\n1,poutcome,category,")
  out, code = cli("profile --leads " .. BANK .. " --outcome yes")
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "no column 'yes' for the outcome")
  out, code = cli("profile --leads " .. BANK .. " --outcome y=yes --exclude durration")
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "exclude names no column of the leads: 'durration' (did you mean 'duration'?)")
  out, code = cli("profile --leads " .. BANK .. " --outcome y=yes --format xml")
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "--format must be table, csv or json, got 'xml'")
  out, code = cli("profile --leads " .. BANK)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out, "profile needs an outcome")
  local t = leadq.parse_csv("id,a,converted\n1,x,1\n2,y,1\n")
  lu.assertStrContains(h.error_of(profile.profile, t, { outcome = "converted" }), "converted")
  lu.assertStrContains(h.error_of(profile.profile, t, { outcome = "converted", bins = 4 }),
    "profile: unknown option 'bins'")
end

return { TestProfile = M }
