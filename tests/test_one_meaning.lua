-- One meaning per value: a lead scored one at a time from its CSV text (every field a string, as a
-- form or a CRM sends it) gets the answer bulk scoring gives the same row read from the file.
local lu = require("luaunit")
local leadq = require("leadq")
local gen = require("leadq.gen")
local inputs = require("leadq.cli.inputs")
local h = require("helpers")

local M = {}
M.TestOneMeaning = {}

local N = h.size(3000, 600)
local AS_OF = "2026-11-01"

function M.TestOneMeaning.test_string_records_score_as_bulk_rows()
  local dir = h.tmpdir()
  assert(gen.generate({ leads = N, seed = 23, out = dir }))
  for _, rules in ipairs({ "rules/mql.lua", "rules/sql.lua", "rules/pql.lua" }) do
    local m = assert(leadq.load_model(rules))
    local t = assert(leadq.read_csv(dir .. "/leads.csv"))
    local r = assert(m:score(t, { as_of = AS_OF }))
    local total = r:column("total")
    local status = r:column("status")
    local grade = r:has("grade") and r:column("grade") or nil
    local header, row, checked = nil, 0, 0
    for line in io.lines(dir .. "/leads.csv") do
      local cells = inputs.csv_fields(line)
      if not header then
        header = cells
      else
        row = row + 1
        local record = {}
        for i, name in ipairs(header) do
          if cells[i] ~= nil and cells[i] ~= "" then record[name] = cells[i] end
        end
        local one = m:score_one(record, { as_of = AS_OF })
        lu.assertEquals(one.total, total[row], rules .. ": total of row " .. row)
        lu.assertEquals(one.status, status[row], rules .. ": status of row " .. row)
        if grade then lu.assertEquals(one.grade, grade[row], rules .. ": grade of row " .. row) end
        checked = checked + 1
      end
    end
    lu.assertEquals(checked, N)
    r:close()
    t:close()
  end
  h.remove_dir(dir)
end

-- The same text means the same value in a file and in a record: booleans as the CSV reader reads them.
function M.TestOneMeaning.test_booleans_and_numbers_read_as_in_a_file()
  local m = leadq.model(leadq.dsl.model "b" {
    rules = { leadq.dsl.rule "OPTIN" { points = 10, when = { optin = true } },
              leadq.dsl.rule "BIG" { points = 1, when = { employees = { at_least = 1000 } } } },
    thresholds = { yes = 10, otherwise = "no" },
  })
  local t = assert(leadq.parse_csv("optin,employees\ny,1000\nN,999\nTRUE,1e3\nf,0\n"))
  local r = assert(m:score(t))
  local bulk = r:column("total")
  for i, rec in ipairs({ { optin = "y", employees = "1000" }, { optin = "N", employees = "999" },
                         { optin = "TRUE", employees = "1e3" }, { optin = "f", employees = "0" } }) do
    lu.assertEquals(m:score_one(rec).total, bulk[i], "row " .. i)
  end
  -- a text that is no value of the type is refused, as the reader rejects the cell
  local one, err = m:score_one({ optin = "maybe" })
  lu.assertNil(one)
  lu.assertStrContains(err, "field 'optin' must be true or false, got maybe")
  one, err = m:score_one({ employees = "0x10" })
  lu.assertNil(one)
  lu.assertStrContains(err, "field 'employees': cannot read '0x10' as a number")
  r:close()
  t:close()
end

return M
