/* One header for every Lua we build against: 5.4, 5.3 and 5.1 (LuaJIT 2.1).
** Only what the bindings use is shimmed here; keep it small. */
#ifndef LEADQ_COMPAT_H
#define LEADQ_COMPAT_H

#include "lua.h"
#include "lauxlib.h"

#if LUA_VERSION_NUM < 502
/* Lua 5.1 / LuaJIT */
#if !defined(luaL_newlib)
#define luaL_newlibtable(L, l) lua_createtable(L, 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_register(L, NULL, l))
#endif
#define luaL_setfuncs(L, l, nup) lq_compat_setfuncs(L, l, nup)
#define lua_rawlen(L, i) lua_objlen(L, (i))
#define luaL_len(L, i) ((lua_Integer)lua_objlen(L, (i)))
#define lua_absindex(L, i) (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#define luaL_setmetatable(L, name) (luaL_getmetatable(L, name), lua_setmetatable(L, -2))
#define luaL_testudata(L, i, name) lq_compat_testudata(L, i, name)
#define lua_getuservalue(L, i) lua_getfenv(L, (i))
#define lua_setuservalue(L, i) lua_setfenv(L, (i))
#define LQ_RAWGETI_TYPE(L, t, n) (lua_rawgeti(L, (t), (n)), lua_type(L, -1))
#define LQ_GETFIELD_TYPE(L, t, k) (lua_getfield(L, (t), (k)), lua_type(L, -1))

static inline void lq_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);   /* copy upvalues */
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void *lq_compat_testudata(lua_State *L, int i, const char *name) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, name);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}
#else
#define LQ_RAWGETI_TYPE(L, t, n) lua_rawgeti(L, (t), (n))
#define LQ_GETFIELD_TYPE(L, t, k) lua_getfield(L, (t), (k))
#endif

#if LUA_VERSION_NUM < 504
/* 5.4 gave userdata several user values; one table is all we need. */
#define lq_newuserdata(L, size) lua_newuserdata(L, (size))
#else
#define lq_newuserdata(L, size) lua_newuserdatauv(L, (size), 1)
#endif

/* Integers: 5.3+ have them, 5.1 keeps every number a double. */
#if LUA_VERSION_NUM < 503
#define lq_isinteger(L, i) (lua_type(L, (i)) == LUA_TNUMBER && \
  (lua_Number)(lua_Integer)lua_tonumber(L, (i)) == lua_tonumber(L, (i)))
#else
#define lq_isinteger(L, i) lua_isinteger(L, (i))
#endif

#if !defined(LQ_EXPORT)
#define LQ_EXPORT __attribute__((visibility("default")))
#endif

#endif
