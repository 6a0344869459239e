#!/usr/bin/env lua5.4
-- build/leadq: runs the command-line tool from a build tree, whatever the working directory.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/lib/lua5.4/?.so;" .. package.cpath
os.exit(require("leadq.cli").main(arg))
