std = "max"
max_line_length = 120
files["tests"] = { globals = { "LEADQ_VARIANT" } }
files["tests/run.lua"] = { globals = { "LEADQ_VARIANT" } }
