-- How leadq's values print for a person in the REPL: rows, reject lists, funnel reports, leadq.help().
local lu = require("luaunit")
local leadq = require("leadq")
local funnel = require("leadq.funnel")

local M = {}
M.TestDisplay = {}

local CSV = "id,n,note\nA,1,first\nB,x,\nC,\"unterminated\n"

function M.TestDisplay.test_a_row_prints_its_fields()
  local t = leadq.parse_csv(CSV)
  local r = t:row(1)
  local text = tostring(r)
  lu.assertNil(text:find("table: 0x", 1, true))
  lu.assertStrContains(text, "row (3 fields")
  lu.assertStrContains(text, 'note  "first"')
  lu.assertStrMatches(text, '.*\n  id%s+"A"\n.*')
  -- still a plain table of the values: equal to one written by hand, and writable
  lu.assertEquals(r, { id = "A", n = "1", note = "first" })
  r.extra = 1
  lu.assertEquals(r.extra, 1)
  lu.assertStrContains(tostring(t:row(2)), "row (2 fields; missing ones are absent)")
end

function M.TestDisplay.test_rejects_print_one_line_each()
  local t = leadq.parse_csv(CSV)
  local rejects = t:rejects()
  lu.assertEquals(#rejects, 1)
  local text = tostring(rejects)
  lu.assertStrContains(text, "1 rejected row\n  [string]:4: column 'n' (2): unterminated quoted field")
  lu.assertEquals(tostring(leadq.parse_csv("a\n1\n"):rejects()), "no rejected rows")
  text = tostring(leadq.parse_csv("a,b\n" .. string.rep("1,\"x\n", 25)):rejects())
  lu.assertStrContains(text, "... and ")
end

function M.TestDisplay.test_a_funnel_report_prints_its_tables()
  local f = funnel.new()
  assert(f:add("A", "mql", "2024-01-01"))
  assert(f:add("A", "sql", "2024-01-03"))
  local tab = funnel.report(f:aggregate())
  local text = tostring(tab)
  lu.assertStrContains(text, "leads reaching each stage")
  lu.assertEquals(text, funnel.format(tab, "table"))
end

function M.TestDisplay.test_help_lists_the_module()
  local printed = {}
  local real_print = print
  print = function(s) printed[#printed + 1] = s end   -- luacheck: ignore
  local ok, err = pcall(leadq.help)
  print = real_print   -- luacheck: ignore
  lu.assertTrue(ok, err)
  local text = table.concat(printed, "\n")
  for _, name in ipairs({ "leadq.read_csv", "leadq.load_model", "model:score", "leadq.evaluate", "leadq.compare",
                          "leadq.funnel", "leadq.features", "leadq.read_events" }) do
    lu.assertStrContains(text, name)
  end
  lu.assertStrContains(text, "leadq " .. leadq._VERSION)
end

return M
