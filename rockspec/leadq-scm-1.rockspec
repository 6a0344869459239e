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
        "csrc/accounts.c",
        "csrc/accounts_binding.c",
        "csrc/bins.c",
        "csrc/civil_time.c",
        "csrc/core.c",
        "csrc/csv_reader.c",
        "csrc/evaluate.c",
        "csrc/evaluate_binding.c",
        "csrc/features.c",
        "csrc/features_binding.c",
        "csrc/fit.c",
        "csrc/fit_binding.c",
        "csrc/funnel.c",
        "csrc/funnel_binding.c",
        "csrc/gen_events.c",
        "csrc/program.c",
        "csrc/random.c",
        "csrc/score_binding.c",
        "csrc/table.c",
        "csrc/table_binding.c",
      },
      libraries = { "pthread", "m" },
      defines = {},
      incdirs = { "csrc" },
    },
    ["leadq.accounts"] = "lua/leadq/accounts.lua",
    ["leadq.cli"] = "lua/leadq/cli.lua",
    ["leadq.cli_score"] = "lua/leadq/cli_score.lua",
    ["leadq.cli.compare"] = "lua/leadq/cli/compare.lua",
    ["leadq.cli.evaluate"] = "lua/leadq/cli/evaluate.lua",
    ["leadq.compare"] = "lua/leadq/compare.lua",
    ["leadq.compiler"] = "lua/leadq/compiler.lua",
    ["leadq.dsl"] = "lua/leadq/dsl.lua",
    ["leadq.evaluate"] = "lua/leadq/evaluate.lua",
    ["leadq.features"] = "lua/leadq/features.lua",
    ["leadq.funnel"] = "lua/leadq/funnel.lua",
    ["leadq.gen"] = "lua/leadq/gen.lua",
    ["leadq"] = "lua/leadq/init.lua",
    ["leadq.json"] = "lua/leadq/json.lua",
    ["leadq.model"] = "lua/leadq/model.lua",
    ["leadq.outcome"] = "lua/leadq/outcome.lua",
    ["leadq.service"] = "lua/leadq/service.lua",
  }
}
