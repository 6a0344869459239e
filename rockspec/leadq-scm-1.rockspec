rockspec_format = "3.0"
package = "leadq"
version = "scm-1"
-- A checkout's rockspec: `luarocks make rockspec/leadq-scm-1.rockspec` builds the files beside it
-- (make ignores the URL). `make rock` packs a source rock of the clone's HEAD: it points a copy of
-- this file at the clone's absolute path, as luarocks pack clones from a temporary folder, where a
-- relative URL names nothing. A published rockspec names the repository's git+https URL and a tag.
source = {
  url = "git+file://.",
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
  "lua >= 5.1, < 5.5",
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
        "csrc/column_plan.c",
        "csrc/column_plan_binding.c",
        "csrc/core.c",
        "csrc/csv_reader.c",
        "csrc/evaluate.c",
        "csrc/evaluate_binding.c",
        "csrc/event_stream.c",
        "csrc/features.c",
        "csrc/features_binding.c",
        "csrc/fit.c",
        "csrc/fit_binding.c",
        "csrc/funnel.c",
        "csrc/funnel_binding.c",
        "csrc/gen_events.c",
        "csrc/hmac.c",
        "csrc/hmac_binding.c",
        "csrc/input.c",
        "csrc/page_pool.c",
        "csrc/program.c",
        "csrc/program_binding.c",
        "csrc/program_explain.c",
        "csrc/program_one.c",
        "csrc/program_score.c",
        "csrc/random.c",
        "csrc/redis_binding.c",
        "csrc/snapshot.c",
        "csrc/snapshot_binding.c",
        "csrc/state_line.c",
        "csrc/table.c",
        "csrc/table_append.c",
        "csrc/table_binding.c",
        "csrc/csv_reader_binding.c",
        "csrc/csv_writer.c",
        "csrc/csv_writer_binding.c",
        "csrc/working_hours.c",
        "csrc/working_hours_binding.c",
      },
      libraries = { "pthread", "m", "hiredis", "z", "crypto" },
      -- Only luaopen_leadq_core exported. The builtin build takes no linker flags, but passes each
      -- libdir to -Wl,-rpath, where a comma starts the next linker option: the rpath is the rock's
      -- own lib folder (absolute, never the working directory), then the version script. Elsewhere
      -- (no GNU ld, or luarocks' gcc_rpath off) the core also exports its internals, and works.
      libdirs = { "$(LIBDIR),--version-script=rockspec/leadq-core.map" },
      defines = {},
      incdirs = { "csrc" },
    },
    ["leadq.accounts"] = "lua/leadq/accounts.lua",
    ["leadq.cli"] = "lua/leadq/cli.lua",
    ["leadq.cli.accounts"] = "lua/leadq/cli/accounts.lua",
    ["leadq.cli.changes"] = "lua/leadq/cli/changes.lua",
    ["leadq.cli.check"] = "lua/leadq/cli/check.lua",
    ["leadq.cli.compare"] = "lua/leadq/cli/compare.lua",
    ["leadq.cli.demo"] = "lua/leadq/cli/demo.lua",
    ["leadq.cli.evaluate"] = "lua/leadq/cli/evaluate.lua",
    ["leadq.cli.explain"] = "lua/leadq/cli/explain.lua",
    ["leadq.cli.fit"] = "lua/leadq/cli/fit.lua",
    ["leadq.cli.funnel"] = "lua/leadq/cli/funnel.lua",
    ["leadq.cli.gen"] = "lua/leadq/cli/gen.lua",
    ["leadq.cli.inputs"] = "lua/leadq/cli/inputs.lua",
    ["leadq.cli.load"] = "lua/leadq/cli/load.lua",
    ["leadq.cli.outcome"] = "lua/leadq/cli/outcome.lua",
    ["leadq.cli.profile"] = "lua/leadq/cli/profile.lua",
    ["leadq.cli.report"] = "lua/leadq/cli/report.lua",
    ["leadq.cli.score"] = "lua/leadq/cli/score.lua",
    ["leadq.cli.state"] = "lua/leadq/cli/state.lua",
    ["leadq.cli.version"] = "lua/leadq/cli/version.lua",
    ["leadq.changes"] = "lua/leadq/changes.lua",
    ["leadq.compare"] = "lua/leadq/compare.lua",
    ["leadq.compiler"] = "lua/leadq/compiler.lua",
    ["leadq.display"] = "lua/leadq/display.lua",
    ["leadq.dsl"] = "lua/leadq/dsl.lua",
    ["leadq.evaluate"] = "lua/leadq/evaluate.lua",
    ["leadq.features"] = "lua/leadq/features.lua",
    ["leadq.fit"] = "lua/leadq/fit.lua",
    ["leadq.funnel"] = "lua/leadq/funnel.lua",
    ["leadq.gen"] = "lua/leadq/gen.lua",
    ["leadq"] = "lua/leadq/init.lua",
    ["leadq.json"] = "lua/leadq/json.lua",
    ["leadq.mapping"] = "lua/leadq/mapping.lua",
    ["leadq.model"] = "lua/leadq/model.lua",
    ["leadq.profile"] = "lua/leadq/profile.lua",
    ["leadq.multi"] = "lua/leadq/multi.lua",
    ["leadq.outbox"] = "lua/leadq/outbox.lua",
    ["leadq.reactions"] = "lua/leadq/reactions.lua",
    ["leadq.reactor"] = "lua/leadq/reactor.lua",
    ["leadq.outcome"] = "lua/leadq/outcome.lua",
    ["leadq.report"] = "lua/leadq/report.lua",
    ["leadq.service"] = "lua/leadq/service.lua",
    ["leadq.store"] = "lua/leadq/store.lua",
    ["leadq.svg"] = "lua/leadq/svg.lua",
    ["leadq.util"] = "lua/leadq/util.lua",
    ["leadq.track_events"] = "lua/leadq/track_events.lua",
    ["leadq.webhook"] = "lua/leadq/webhook.lua",
  },
  install = {
    -- The command (the same script as build/leadq, which looks for a build tree first). It lives
    -- in bin/, not lua/: the builtin build copies all of lua/ into the modules' folder.
    bin = { leadq = "lua/leadq/cli/leadq" },
    -- The shipped rules, deployed beside the modules as leadq/rules/ where the command finds them
    -- (luarocks keeps install.conf files in the rock's own folder, which no module can locate).
    lua = {
      ["leadq.rules.aql"] = "rules/aql.lua",
      ["leadq.rules.mql"] = "rules/mql.lua",
      ["leadq.rules.pql"] = "rules/pql.lua",
      ["leadq.rules.reactions"] = "rules/reactions.lua",
      ["leadq.rules.sql"] = "rules/sql.lua",
      ["leadq.rules.lists.competitors"] = "rules/lists/competitors.txt",
      ["leadq.rules.lists.free_email_domains"] = "rules/lists/free_email_domains.txt",
      ["leadq.rules.lists.target_countries"] = "rules/lists/target_countries.txt",
      ["leadq.rules.lists.target_industries"] = "rules/lists/target_industries.txt",
    },
  },
}
-- `luarocks test` (after `luarocks make`): the suite, with the installed core, under the Lua
-- luarocks runs; arguments after -- pick suites by name (luarocks test -- test_json).
test = {
  type = "command",
  script = "tests/run.lua",
  flags = { "installed" },
}
