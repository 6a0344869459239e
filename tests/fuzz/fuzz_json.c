/* libFuzzer target: the JSON decoder (lua/leadq/json.lua) in an embedded Lua 5.4. decode never
** raises (malformed text is nil, message), and what it decodes encodes, and decodes again to a value
** that encodes to the same text. Run from the repository's root (lua/ is found from there). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char CHECK[] =
  "local json = require('leadq.json')\n"
  "return function(text)\n"
  "  local v, err = json.decode(text)\n"
  "  if v == nil then\n"
  "    assert(type(err) == 'string' and err:find('^malformed JSON at byte %d+: '), err)\n"
  "    return\n"
  "  end\n"
  "  local once = json.encode(v)\n"
  "  local back, berr = json.decode(once)\n"
  "  if berr ~= nil then error(berr) end\n"   /* decode of 'false' is false: not a failure */
  "  local twice = json.encode(back)\n"
  "  if once ~= twice then error('encode(decode(encode(v))) differs: ' .. once .. ' / ' .. twice) end\n"
  "end\n";

/* Coverage of the Lua code for libFuzzer: the system's liblua is not instrumented, so a line hook
** counts (function, line) pairs into libFuzzer's extra counters, and new lines of json.lua reached
** are new coverage. */
#define LINE_COUNTERS 4096
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t line_counters[LINE_COUNTERS];

static void count_line(lua_State *L, lua_Debug *ar) {
  uintptr_t key;
  if (!lua_getinfo(L, "S", ar)) return;
  key = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
  line_counters[(key >> 4) % LINE_COUNTERS]++;
}

static lua_State *state(void) {
  static lua_State *L = NULL;   /* one VM for the whole run: made once, kept */
  if (L != NULL) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;' .. package.path") != LUA_OK ||
      luaL_loadstring(L, CHECK) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_json_check");
  lua_sethook(L, count_line, LUA_MASKLINE, 0);
  return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state();
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_json_check");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  if (size % 64 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
