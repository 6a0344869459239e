-- make bench: runs every tests/bench/bench_*.lua (or those matching arg[1]) under this Lua.
-- Each prints lines "bench: <name>: leadq <value> <unit>, <baseline> <value> <unit>, ratio <r>".
package.path = "lua/?.lua;lua/?/init.lua;tests/?.lua;tests/bench/?.lua;" .. package.path
package.cpath = (os.getenv("LEADQ_BUILD") or "build") .. "/lib/lua5.4/?.so;" .. package.cpath

local only = arg[1]
local files = {}
local ls = io.popen("ls tests/bench/bench_*.lua 2>/dev/null")
for name in ls:lines() do
  if not only or name:find(only, 1, true) then files[#files + 1] = name end
end
ls:close()
table.sort(files)
for _, file in ipairs(files) do
  local ok, err = pcall(dofile, file)
  if not ok then print("bench: " .. file .. ": failed: " .. tostring(err)) end
end
