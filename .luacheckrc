std = "max"
self = false
max_line_length = 120
files["tests"] = { globals = { "LEADQ_VARIANT" } }
files["tests/run.lua"] = { globals = { "LEADQ_VARIANT" } }
-- Rule scripts run in the DSL sandbox, which gives them these constructors.
files["rules"] = { read_globals = { "model", "rule", "disqualify", "list", "file", "feature" } }
-- A reactions script runs in the same sandbox with the reactions' constructors instead.
files["rules/reactions.lua"] = { read_globals = { "webhook", "on", "team", "route", "sla", "recycle" } }
