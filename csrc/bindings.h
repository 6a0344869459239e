/* Internal: each binding file registers its functions into the module table at the top of the stack. */
#ifndef LEADQ_BINDINGS_H
#define LEADQ_BINDINGS_H

#include <math.h>

#include "compat.h"
#include "table.h"

/* A number for Lua: an integer when it is integral on 5.3+ (as tonumber("58") would give; -0 stays
** a float). The cast test needs no floor() call: the hot path of score_one's answers. */
static inline void lq_push_number(lua_State *L, double v) {
#if LUA_VERSION_NUM >= 503
  if (v >= -9007199254740992.0 && v <= 9007199254740992.0) {
    lua_Integer i = (lua_Integer)v;
    if ((double)i == v && !(i == 0 && signbit(v))) {
      lua_pushinteger(L, i);
      return;
    }
  }
#endif
  lua_pushnumber(L, (lua_Number)v);
}

/* core.c: the Lua state's allocator, for the memory of an object Lua owns, its big blocks on huge
** pages (alloc.h). The state's own allocator is kept in a userdata the registry holds, so it outlives
** every object (finalizers run before a closing state frees its userdata). */
lq_allocator lq_lua_allocator(lua_State *L);

/* table_binding.c: the value of one cell as Lua sees it (a tags cell as a list); 0, pushing
** nothing, when it is missing. */
int lq_push_cell(lua_State *L, const lq_column *c, size_t row);

/* working_hours_binding.c: a "leadq.Calendar" argument (working hours in a time zone). */
struct lq_calendar;
struct lq_calendar *lq_check_calendar(lua_State *L, int arg);

/* table_binding.c: the "leadq.Table" userdata. check raises on a closed table; push_table_box
** pushes an empty table userdata and returns the slot to store an lq_table into (it then owns it). */
lq_table *lq_check_table(lua_State *L, int arg);
lq_table **lq_push_table_box(lua_State *L);

/* core.c: a userdata type, made once per Lua state: metatable `name` with the metamethods in meta,
** the methods (or NULL) through __index, each with the metatable as upvalue, and __name. */
void lq_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

void lq_open_table(lua_State *L);
void lq_open_csv_reader(lua_State *L);
void lq_open_csv_writer(lua_State *L);
void lq_open_random(lua_State *L);
void lq_open_gen_events(lua_State *L);
void lq_open_funnel(lua_State *L);
void lq_open_program(lua_State *L);
void lq_open_features(lua_State *L);
void lq_open_accounts(lua_State *L);
void lq_open_evaluate(lua_State *L);
void lq_open_fit(lua_State *L);
void lq_open_redis(lua_State *L);
void lq_open_hmac(lua_State *L);
void lq_open_calendar(lua_State *L);
void lq_open_snapshot(lua_State *L);

#endif
