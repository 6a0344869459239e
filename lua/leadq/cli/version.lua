-- `leadq version` (and `leadq --version`): the version of leadq, of its core, and the Lua running it.
local cli = require("leadq.cli")

local format = string.format

cli.commands.version = {
  summary = "print the version of leadq, its core and the Lua running it",
  usage = "version",
  run = function(_, out)
    local ok, core = pcall(require, "leadq.core")
    local core_version = ok and type(core) == "table" and core.version or "not loaded"
    out.print(format("leadq %s (core %s, %s)", cli._VERSION, tostring(core_version),
      type(jit) == "table" and jit.version or _VERSION))
    return 0
  end,
}

return {}
