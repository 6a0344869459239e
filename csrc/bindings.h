/* Internal: each binding file registers its functions into the module table at the top of the stack. */
#ifndef LEADQ_BINDINGS_H
#define LEADQ_BINDINGS_H

#include "compat.h"
#include "table.h"

/* table_binding.c: the "leadq.Table" userdata. check raises on a closed table; push_table_box
** pushes an empty table userdata and returns the slot to store an lq_table into (it then owns it). */
lq_table *lq_check_table(lua_State *L, int arg);
lq_table **lq_push_table_box(lua_State *L);

/* core.c: a userdata type, made once per Lua state: metatable `name` with the metamethods in meta,
** the methods (or NULL) through __index, each with the metatable as upvalue, and __name. */
void lq_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

void lq_open_table(lua_State *L);
void lq_open_random(lua_State *L);
void lq_open_gen_events(lua_State *L);
void lq_open_funnel(lua_State *L);
void lq_open_score(lua_State *L);
void lq_open_features(lua_State *L);
void lq_open_accounts(lua_State *L);

#endif
