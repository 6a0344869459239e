/* libFuzzer target: the rule loader (lua/leadq/dsl.lua, the compiler and the C core) in an
** embedded Lua 5.4 with leadq.core linked in. The input is a rule script: loading it never raises
** (a script's mistakes come back as problems), and a model that loads scores a small table of
** leads, its rule functions' errors reported, not raised. Run from the repository's root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_leadq_core(lua_State *L);

/* Coverage of the Lua side for libFuzzer (the system's liblua is not instrumented): a Lua line
** hook hands (function, line) to count_line, which counts into libFuzzer's extra counters. A Lua
** hook, not a C one: the loader bounds a script with a hook of its own and sets this one back. */
#define LINE_COUNTERS 8192
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t line_counters[LINE_COUNTERS];

static int count_line(lua_State *L) {
  lua_Debug ar;
  uintptr_t key;
  if (!lua_getstack(L, 2, &ar) || !lua_getinfo(L, "S", &ar)) return 0;
  key = (uintptr_t)ar.source * 31u + (uintptr_t)luaL_optinteger(L, 2, 0) * 2654435761u;
  line_counters[(key >> 4) % LINE_COUNTERS]++;
  return 0;
}

static const char CHECK[] =
  "local count_line = ...\n"
  "local leadq = require('leadq')\n"
  "local dsl = require('leadq.dsl')\n"
  "dsl.LIMITS.load_instructions, dsl.LIMITS.load_memory_kb = 2e5, 16 * 1024\n"
  "dsl.LIMITS.call_instructions, dsl.LIMITS.rep_bytes = 2e4, 1e5\n"
  "local leads = leadq.table({\n"
  "  { id = 'L1', title = 'VP Sales EMEA', seniority = 'VP', employees = 800, country = 'US',\n"
  "    email_domain = 'acme.com', created_at = '2026-01-05', optin = true, tags = 'a;b' },\n"
  "  { id = 'L2', title = 'Student', employees = 3, country = 'FR', email_domain = 'gmail.com' },\n"
  "  { id = 'L3' },\n"
  "})\n"
  "return function(text, path)\n"
  "  debug.sethook(count_line, 'l')\n"
  "  local f = assert(io.open(path, 'wb'))\n"
  "  f:write(text)\n"
  "  f:close()\n"
  "  local m, problems = leadq.load_model(path)\n"
  "  if m then\n"
  "    local ok, res, err = pcall(m.score, m, leads, { as_of = '2026-11-01', errors = 'report' })\n"
  "    if ok and res == nil and type(err) ~= 'string' then error('score gave nil and no message') end\n"
  "    if not ok and tostring(res):find('attempt to', 1, true) then error(res, 0) end\n"
  "    local one = pcall(m.score_one, m, { title = 'CTO', employees = 50 })\n"
  "    local _ = one\n"
  "  else\n"
  "    assert(type(problems) == 'table' or type(problems) == 'string', 'no problems given')\n"
  "  end\n"
  "  debug.sethook()\n"
  "end\n";

static lua_State *state(void) {
  static lua_State *L = NULL;   /* one VM for the whole run: made once, kept */
  if (L != NULL) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "leadq.core", luaopen_leadq_core, 0);
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path") != LUA_OK ||
      luaL_loadstring(L, CHECK) != LUA_OK) {
    fprintf(stderr, "fuzz_rules: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushcfunction(L, count_line);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_rules: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_rules_check");
  return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state();
  char dir[64], path[96], lists[96], here[4096];
  /* a folder of its own, with the shipped lists beside the script: file "lists/x.txt" reads them */
  snprintf(dir, sizeof dir, "/tmp/leadq-fuzz-rules-%ld", (long)getpid());
  snprintf(path, sizeof path, "%s/rules.lua", dir);
  snprintf(lists, sizeof lists, "%s/lists", dir);
  if (access(lists, F_OK) != 0) {
    char target[4200];
    if (getcwd(here, sizeof here) == NULL) abort();
    snprintf(target, sizeof target, "%s/rules/lists", here);
    (void)mkdir(dir, 0700);
    if (symlink(target, lists) != 0) abort();
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_rules_check");
  lua_pushlstring(L, (const char *)data, size);
  lua_pushstring(L, path);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_rules: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
  unlink(path);
  return 0;
}
