-- Fitting speed: leadq fit (csrc/bins.c, csrc/fit.c and the script it writes) on 1M generated leads
-- with their profile columns and event features (counts per event type in 30 and 90 days, days since
-- the last), outcome: reached sql. Baseline: sklearn's LogisticRegression (Debian's python3-sklearn,
-- one thread) on the same rows and columns (categories one-hot in a sparse matrix, values under 5 leads
-- in one column as leadq's bins group them, numbers standardised, missing numbers at the median), its
-- fit timed inside python. Goal: leadq <= 10 s on one core.
local report = require("report")
local leadq = require("leadq")
local fit = require("leadq.fit")

local N = tonumber(os.getenv("LEADQ_BENCH_LEADS")) or 1000000
local SEED = 42
local DIR = "build/bench"
assert(report.sample(DIR, N, SEED), "leadq.gen cannot be loaded")

local leads = assert(leadq.read_csv(DIR .. "/leads.csv"))
local events = assert(leadq.read_events(DIR .. "/events.csv"))
local spec = { transitions = DIR .. "/transitions.csv", reached = "sql",
  exclude = { "email", "first_name", "company", "campaign" } }

collectgarbage()
local t0 = report.clock()
local text, rep = fit.fit(leads, events, spec)
local seconds = report.clock() - t0
assert(text:find("calibration = {", 1, true))

-- The same rows and columns for python: one file per column (a value a line), and the labels.
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local keep = {}
for i = 1, #rep.labels do
  if rep.labels:byte(i) <= 1 then keep[#keep + 1] = i end
end
local kinds = {}
for j, input in ipairs(rep.inputs) do
  local tbl, name = input[1], input[2]
  local values = tbl:column(name)
  local kind = tbl:type(name)
  kinds[j] = (kind == "number" or kind == "time") and "num" or "cat"
  local out = {}
  for k, i in ipairs(keep) do
    local v = values[i]
    out[k] = v == nil and "" or tostring(v)
  end
  local f = assert(io.open(string.format("%s/%03d.txt", dir, j), "wb"))
  f:write(table.concat(out, "\n"), "\n")
  f:close()
end
local ys = {}
for k, i in ipairs(keep) do ys[k] = tostring(rep.labels:byte(i)) end
local f = assert(io.open(dir .. "/y.txt", "wb"))
f:write(table.concat(ys, "\n"), "\n")
f:close()
f = assert(io.open(dir .. "/kinds.txt", "wb"))
f:write(table.concat(kinds, "\n"), "\n")
f:close()

local PY = [[
import sys, time
import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
d = sys.argv[1]
kinds = open(d + "/kinds.txt").read().split()
y = np.array([int(v) for v in open(d + "/y.txt").read().split()])
parts = []
for j, kind in enumerate(kinds, 1):
    vals = open("%s/%03d.txt" % (d, j)).read().split("\n")[:len(y)]
    if kind == "num":
        x = np.array([float(v) if v else np.nan for v in vals])
        med = np.nanmedian(x) if np.any(~np.isnan(x)) else 0.0
        x[np.isnan(x)] = med
        sd = x.std() or 1.0
        parts.append(((x - x.mean()) / sd).reshape(-1, 1))
    else:
        _, inv, counts = np.unique(np.array(vals, dtype=object).astype(str), return_inverse=True,
                                   return_counts=True)
        # values under 5 leads share one column, as leadq's bins group them
        keep = counts >= 5
        index = np.where(keep, np.cumsum(keep) - 1, keep.sum())
        cols = index[inv]
        parts.append(sparse.csr_matrix((np.ones(len(y)), (np.arange(len(y)), cols)),
                                       shape=(len(y), keep.sum() + 1)))
x = sparse.hstack([p if sparse.issparse(p) else sparse.csr_matrix(p) for p in parts]).tocsr()
t = time.process_time()
LogisticRegression(max_iter=200).fit(x, y)
print("lr %.3f %d" % (time.process_time() - t, x.shape[1]))
]]
f = assert(io.open(dir .. "/lr.py", "wb"))
f:write(PY)
f:close()
local python = io.open("/usr/bin/python3", "rb") and "/usr/bin/python3" or "python3"
local p = io.popen(string.format("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 %s '%s/lr.py' '%s' 2>&1",
  python, dir, dir))
local out = p:read("*a")
p:close()
os.execute("rm -rf '" .. dir .. "'")
local lr_seconds, width = out:match("lr ([%d%.]+) (%d+)")
assert(lr_seconds, "sklearn did not run: " .. out)

report.line(string.format("fit %s leads, %d columns (%s one-hot for sklearn), %d rules", fit.thousands(#leads),
  #rep.inputs, width, rep.rules), seconds, "s", "sklearn LogisticRegression", tonumber(lr_seconds), "s", false)
print(string.format("bench: fit goal: <= 10 s for 1M leads on one core: %.2f s (%s)", seconds,
  seconds <= 10 * #leads / 1e6 and "met" or "missed"))
