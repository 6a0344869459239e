-- `leadq check`: check rule files (and mapping and reactions scripts) and list every problem with
-- its file and line.
local cli = require("leadq.cli")

local format = string.format

local _M = { _VERSION = "0.1.0" }

-- files: paths as given (a shipped model by name was resolved already).
function _M.check(files, out)
  if #files == 0 then return cli.fail(out, "check: give one or more rule files", 2) end
  local bad = 0
  for _, path in ipairs(files) do
    local reactions = require("leadq.reactions")   -- a reactions script is checked as one
    local mapping = require("leadq.mapping")       -- and a mapping script as one
    local check = reactions.is_reactions_file(path) and reactions.check or
      (mapping.is_mapping_file(path) and mapping.check) or require("leadq").check
    local ok, problems = check(path)
    if ok then
      out.print(path .. ": ok")
    else
      bad = bad + 1
      for _, p in ipairs(problems) do out.print(p) end
    end
  end
  if bad > 0 then
    out.print(format("%d of %d file%s with problems", bad, #files, #files == 1 and "" or "s"))
    return 1
  end
  return 0
end

cli.commands.check = {
  summary = "check rule files and list every problem with its file and line",
  usage = "check FILE...   (a file, or a shipped model by name: aql, mql, pql, sql)",
  args = "FILE...",
  run = function(opts, out)
    local files = {}
    for i, given in ipairs(opts.args) do files[i] = cli.rule_file(given) end
    return _M.check(files, out)
  end,
}

return _M
