#!/usr/bin/env lua5.4
-- leadq: the command-line tool. Installed (luarocks, make install), it finds the leadq modules and
-- the core on the usual package.path and package.cpath. As build/leadq it runs from a build tree,
-- whatever the working directory: lua/ beside the build folder and the core built there for the Lua
-- running it come first.
local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local source = here .. "/../lua/"
local probe = io.open(source .. "leadq/init.lua", "rb")
if probe then
  probe:close()
  local variant = type(jit) == "table" and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
  package.path = source .. "?.lua;" .. source .. "?/init.lua;" .. package.path
  package.cpath = here .. "/lib/" .. variant .. "/?.so;" .. package.cpath
end
os.exit(require("leadq.cli").main(arg))
