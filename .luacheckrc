std = "max"
self = false
max_line_length = 120
files["tests"] = { globals = { "LEADQ_VARIANT" } }
files["tests/run.lua"] = { globals = { "LEADQ_VARIANT" } }
-- Rule scripts run in the DSL sandbox, which gives them these constructors.
files["rules"] = { read_globals = { "model", "rule", "disqualify", "list", "file", "feature" } }
-- A reactions script runs in the same sandbox with the reactions' constructors instead.
files["rules/reactions.lua"] = { read_globals = { "webhook", "on", "team", "route", "sla", "recycle" } }
-- Mapping scripts (a CRM's columns into the rules' fields) run in it with `mapping`.
files["tests/bench/crm_map.lua"] = { read_globals = { "mapping" } }
files["tests/data/crm"] = { read_globals = { "mapping" } }
