-- The report on 1M generated leads with their events and transitions: `leadq report`'s whole run
-- (load, score, funnel by source, total and owner, evaluate, the page) against the same work done
-- by the separate steps a user would run for those numbers (model:score, funnel.run twice, evaluate),
-- each loading its own inputs as its command does. Goal: the report in <= 5 s, and under 2 MB.
local report = require("report")
local leadq = require("leadq")
local funnel = require("leadq.funnel")
local page = require("leadq.report")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42
local DIR = "build/bench"
assert(report.sample(DIR, N, SEED), "leadq.gen cannot be loaded")

local inputs = { rules = { "rules/mql.lua" }, leads = DIR .. "/leads.csv", events = DIR .. "/events.csv",
                 transitions = DIR .. "/transitions.csv", spend = DIR .. "/spend.csv", by = "source",
                 outcome = { transitions = DIR .. "/transitions.csv", reached = "customer" } }
local out = DIR .. "/report.html"

local t0 = report.wall()
page.write(inputs, out)
local report_s = report.wall() - t0
local f = assert(io.open(out, "rb"))
local size = f:seek("end")
f:close()
-- the same report on two threads (files read in parallel, scoring and features threaded)
inputs.threads = 2
t0 = report.wall()
page.write(inputs, out)
local report2_s = report.wall() - t0
inputs.threads = nil

-- the separate steps
t0 = report.wall()
local model = assert(leadq.load_model("rules/mql.lua"))
local leads = assert(leadq.read_csv(inputs.leads))
local events = assert(leadq.read_events(inputs.events))
local r = assert(model:score(leads, events))
r:close()
assert(funnel.run({ transitions = inputs.transitions, leads = inputs.leads, by = "source", spend = inputs.spend,
                    format = "json" }))
assert(funnel.run({ transitions = inputs.transitions, leads = inputs.leads, format = "json" }))
leadq.evaluate(model, leads, events, inputs.outcome)
local steps_s = report.wall() - t0
leads:close()
events:close()

report.line(string.format("report of %dk leads with events and transitions (%.0f kB, goal <= 5 s and < 2 MB)",
  math.floor(N / 1000), size / 1000), report_s, "s", "score + funnel x2 + evaluate as separate steps", steps_s, "s",
  false)
report.line(string.format("report of %dk leads on 2 threads (goal <= 5 s)", math.floor(N / 1000)), report2_s, "s",
  "the report on 1 thread", report_s, "s", false)
