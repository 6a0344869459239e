package = "leadq"
version = "scm-1"
source = {
  url = "git+file://."
}
description = {
  summary = "Lead-qualification engine: a C core scoring leads with rules written in Lua",
  detailed = [[
    leadq loads leads into a columnar table, compiles lead-qualification rules written as Lua
    scripts (ICP fit, engagement, negative signals, MQL, SQL) into a program run by its C core,
    scores leads in bulk or one at a time, and explains every score.
  ]],
  license = "MIT"
}
dependencies = {
  "lua >= 5.1"
}
build = {
  type = "builtin",
  modules = {
    ["leadq.core"] = {
      sources = {
        "csrc/core.c",
      },
      libraries = { "pthread", "m" },
      defines = {},
      incdirs = { "csrc" },
    },
    ["leadq"] = "lua/leadq/init.lua",
  }
}
