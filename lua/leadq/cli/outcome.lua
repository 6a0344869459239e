-- leadq.cli.outcome: the outcome flags, the same for every command that reads an outcome (evaluate,
-- compare, fit, profile, report), and the outcome spec (leadq.outcome) they give.
local _M = { _VERSION = "0.1.0" }

_M.options = {
  outcome = { type = "string",
    help = "the outcome: a leads column (1/true/yes positive, 0/false/no negative) or COLUMN=VALUE" },
  transitions = { type = "string",
    help = "or a transitions log lead_id,stage,at[,reason,owner] (as for funnel), with --reached" },
  reached = { type = "string", help = "with --transitions: the stage that counts as converted, e.g. customer" },
  ["within-days"] = { type = "number",
    help = "with --transitions: reached within N days of --as-of (without it, of the lead's creation)" },
  ["as-of"] = { type = "string",
    help = "backtest date, e.g. 2026-06-01: leads created after it left out, events after it unused, "
      .. "outcome reached after it" },
}

-- The spec of the flags (opts as the CLI parsed them); nil when no outcome is named.
function _M.spec_of(opts)
  local spec = {
    outcome = opts.outcome, transitions = opts.transitions, reached = opts.reached,
    within_days = opts["within-days"], as_of = opts["as-of"],
  }
  if type(spec.as_of) == "string" and spec.as_of:match("^%d+$") then spec.as_of = tonumber(spec.as_of) end
  return spec
end

return _M
