-- make bench: runs every tests/bench/bench_*.lua (or those matching arg[1]) under this Lua.
-- Each prints lines "bench: <name>: leadq <value> <unit>, <baseline> <value> <unit>, ratio <r>".
-- With no argument, each file runs in a Lua process of its own: one bench's heap (millions of Lua
-- tables, big C tables waiting for the collector) is not the next one's to collect.
-- Order: the benches with short runs first, bench_funnel (24 s of sqlite3 for its baseline) last.
-- This VM slows down for a minute or more after sustained load: bench_score right after
-- bench_funnel ran at 0.6x on both sides (plain Lua loop 264k leads/s, 259k after 30 s idle, 446k
-- after 90 s), which the ratios survive and the absolute goals (leads/s) do not.
local ORDER = { "bench_score", "bench_service", "bench_webhooks", "bench_store", "bench_read_csv", "bench_snapshot",
  "bench_features", "bench_duckdb", "bench_evaluate", "bench_fit", "bench_accounts", "bench_report",
  "bench_funnel_csv", "bench_duckdb_funnel", "bench_funnel" }
local rank = {}
for i, name in ipairs(ORDER) do rank[name] = i end
package.path = "lua/?.lua;lua/?/init.lua;tests/?.lua;tests/bench/?.lua;" .. package.path
package.cpath = (os.getenv("LEADQ_BUILD") or "build") .. "/lib/lua5.4/?.so;" .. package.cpath

local only = arg[1]
local files = {}
local ls = io.popen("ls tests/bench/bench_*.lua 2>/dev/null")
for name in ls:lines() do
  if not only or name:find(only, 1, true) then files[#files + 1] = name end
end
ls:close()
local function rank_of(file)
  return rank[file:match("(bench_[%w_]+)%.lua$")] or #ORDER + 1
end
table.sort(files, function(a, b)
  if rank_of(a) ~= rank_of(b) then return rank_of(a) < rank_of(b) end
  return a < b
end)
local interpreter = arg[-1]
for _, file in ipairs(files) do
  if not only and interpreter then
    io.stdout:flush()
    local ok = os.execute(string.format("%s tests/bench/run.lua '%s'", interpreter, file))
    if not ok then print("bench: " .. file .. ": failed (its process ended in error)") end
  else
    local ok, err = pcall(dofile, file)
    if not ok then print("bench: " .. file .. ": failed: " .. tostring(err)) end
  end
end
