-- leadq.cli.changes: the change outputs of `leadq score` (--transitions-out, --previous with
-- --changes, --reactions for owners), written and summed up with leadq.changes.
local changes = require("leadq.changes")

local format, concat = string.format, table.concat

local _M = { _VERSION = "0.1.0" }

-- The change outputs of `leadq score`: o["transitions-out"], o.previous with o.changes, o.reactions.
-- run: { tbl =, result =, models = (as above), at =, read_csv =, format_time = }. Returns the lines
-- to print, or nil and a message.
function _M.score_outputs(o, run)
  if (o.previous == nil) ~= (o.changes == nil) then
    return nil, "--previous and --changes go together: the previous scored file, and where to write what changed"
  end
  local reactions
  if o.reactions then
    local problems
    reactions, problems = require("leadq.reactions").load(o.reactions)
    if not reactions then return nil, concat(problems, "\n") end
  end
  local current = changes.result_run(run.tbl, run.result)
  local previous, err
  if o.previous then
    previous, err = changes.read_run(o.previous, run.read_csv)
    if not previous then return nil, err end
  end
  local owner_of = changes.owners(reactions, run.tbl, previous)
  local lines = {}
  if o["transitions-out"] then
    local created = run.tbl:has("created_at") and run.tbl:column("created_at") or nil
    if created and type(created[1]) ~= "number" then created = nil end
    local rows = changes.transitions(current, run.models, { at = run.at, created = created,
      owner_of = reactions and function(id, r) return owner_of(id, r, nil) end or nil })
    local ok, werr = changes.write_transitions(o["transitions-out"], rows, run.format_time)
    if not ok then return nil, werr end
    lines[#lines + 1] = format("wrote %d transitions to %s (leadq funnel --transitions %s)", #rows,
      o["transitions-out"], o["transitions-out"])
  end
  if previous then
    local list = changes.diff(previous, current, run.models, { at = run.at, owner_of = owner_of })
    local ok, werr = changes.write_changes(o.changes, list, run.format_time)
    if not ok then return nil, werr end
    lines[#lines + 1] = format("changes since %s: %d, wrote %s", o.previous, #list, o.changes)
    for _, l in ipairs(changes.summary_lines(list)) do lines[#lines + 1] = l end
  end
  return lines
end

return _M
