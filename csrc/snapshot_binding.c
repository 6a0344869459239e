/* The Lua face of snapshots (csrc/snapshot.c):
**   save_snapshot(path, tables) -> true | nil, message
**       tables: { leads = Table, events = Table } (either may be left out), or one Table (saved as
**       events when it was loaded by read_events, else as leads)
**   read_snapshot(path [, options]) -> { leads = Table, events = Table } | nil, message
**       options.columns = { leads = { names }, events = { names } }: read only these columns of
**         these tables (a name the table lacks is passed over; a table not named is read whole)
**       options.map = true: map the file instead of reading it (snapshot.h, lq_snapshot_open_mapped)
**       options.threads = n: threads that check a mapped file's checksums (1)
**   is_snapshot(path) -> boolean (by the file's first bytes, never its name)
** A damaged, truncated, foreign or newer file is an expected failure: nil and a message naming the
** file and what is wrong. Misuse (a path that is no string, an unknown key) raises. */
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "snapshot.h"

#define READER_TYPE "leadq.SnapshotReader"

/* The names a snapshot's tables may have, in the order they are written. */
static const char *const table_names[] = { "leads", "events", NULL };

static int l_save_snapshot(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lq_snapshot_entry entries[LQ_SNAPSHOT_MAX_TABLES];
  char err[512];
  int n = 0, i;
  if (lua_type(L, 2) == LUA_TUSERDATA) {
    const lq_table *t = lq_check_table(L, 2);
    strcpy(entries[0].name, (t->flags & LQ_TABLE_EVENTS) ? "events" : "leads");
    entries[0].table = t;
    n = 1;
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      int known = 0;
      if (lua_type(L, -2) == LUA_TSTRING)
        for (i = 0; table_names[i] != NULL; i++) known |= strcmp(lua_tostring(L, -2), table_names[i]) == 0;
      if (!known) {
        lua_pop(L, 1);
        return luaL_error(L, "save_snapshot: unknown key '%s' (a snapshot holds leads and events)",
                          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
      }
      lua_pop(L, 1);
    }
    for (i = 0; table_names[i] != NULL; i++) {
      lua_getfield(L, 2, table_names[i]);
      if (!lua_isnil(L, -1)) {
        if (luaL_testudata(L, -1, "leadq.Table") == NULL)
          return luaL_error(L, "save_snapshot: '%s' must be a leadq table, got %s", table_names[i],
                            luaL_typename(L, -1));
        strcpy(entries[n].name, table_names[i]);
        entries[n].table = lq_check_table(L, -1);
        n++;
      }
      lua_pop(L, 1);
    }
    if (n == 0) return luaL_error(L, "save_snapshot: give { leads = table } and/or { events = table }");
  }
  if (lq_snapshot_save(path, entries, n, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int reader_gc(lua_State *L) {
  lq_snapshot_close((lq_snapshot_reader *)luaL_checkudata(L, 1, READER_TYPE));
  return 0;
}

/* The columns to read (ud: the Lua state): the set made from options.columns sits at stack index 3. */
static int want_column(void *ud, const char *table, const char *column) {
  lua_State *L = (lua_State *)ud;
  int wanted;
  lua_getfield(L, 3, table);
  if (lua_isnil(L, -1)) {   /* a table not named: every column */
    lua_pop(L, 1);
    return 1;
  }
  lua_getfield(L, -1, column);
  wanted = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return wanted;
}

/* options.columns as a set at index 3 ({ leads = { name = true } }); nil there when not given. */
static void push_wanted(lua_State *L) {
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 2);
    lua_pushnil(L);
    return;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(key, "columns") != 0 && strcmp(key, "map") != 0 && strcmp(key, "threads") != 0)
      luaL_error(L, "read_snapshot: unknown option '%s' (columns, map, threads)", key);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  lua_getfield(L, 2, "columns");
  if (lua_isnil(L, 3)) return;
  luaL_argcheck(L, lua_istable(L, 3), 2, "options.columns must be a table { leads = { names }, events = { names } }");
  lua_newtable(L);                                  /* 4: the set */
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {                     /* table name, list of names */
    lua_Integer k, n;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
      luaL_error(L, "read_snapshot: options.columns maps table names to lists of column names");
    lua_newtable(L);
    n = (lua_Integer)lua_rawlen(L, -2);
    for (k = 1; k <= n; k++) {
      lua_rawgeti(L, -2, k);
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "read_snapshot: options.columns: column names are strings");
      lua_pushboolean(L, 1);
      lua_rawset(L, -3);
    }
    lua_pushvalue(L, -3);                           /* the table name */
    lua_insert(L, -2);
    lua_rawset(L, 4);
    lua_pop(L, 1);
  }
  lua_replace(L, 3);
}

/* A reader in a userdata (closed by __gc should anything raise), then a box for each table before
** it is built, so every byte always has an owner. The tables are handed out only once the whole
** file, end section included, has been checked. */
static int l_read_snapshot(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lq_snapshot_reader *r;
  char err[512];
  uint32_t i;
  int map, threads, status;
  push_wanted(L);                                   /* index 3 */
  map = !lua_isnoneornil(L, 2) && (lua_getfield(L, 2, "map"), lua_toboolean(L, -1));
  threads = !lua_isnoneornil(L, 2) && (lua_getfield(L, 2, "threads"), lua_isnumber(L, -1))
                ? (int)lua_tointeger(L, -1) : 1;
  lua_settop(L, 3);
  r = (lq_snapshot_reader *)lq_newuserdata(L, sizeof *r);
  lq_snapshot_reader_init(r);
  luaL_setmetatable(L, READER_TYPE);
  status = map ? lq_snapshot_open_mapped(r, path, threads, err, sizeof err)
               : lq_snapshot_open(r, path, err, sizeof err);
  if (status != 0) goto failed;
  if (!lua_isnil(L, 3)) {
    r->want = want_column;
    r->want_ud = L;
  }
  lua_createtable(L, 0, 2);
  for (i = 0; i < r->ntables; i++) {
    char name[LQ_SNAPSHOT_NAME_MAX];
    lq_table **slot = lq_push_table_box(L);
    if (lq_snapshot_read_table(r, lq_lua_allocator(L), slot, name, err, sizeof err) != 0) goto failed;
    lua_getfield(L, -2, name);
    if (!lua_isnil(L, -1)) {
      lq_snapshot_close(r);
      lua_pushnil(L);
      lua_pushfstring(L, "%s: damaged snapshot: it holds table %s twice", path, name);
      return 2;
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, name);
  }
  if (lq_snapshot_finish(r, err, sizeof err) != 0) goto failed;
  lq_snapshot_close(r);
  return 1;
failed:
  lq_snapshot_close(r);
  lua_pushnil(L);
  lua_pushstring(L, err);
  return 2;
}

static int l_is_snapshot(lua_State *L) {
  lua_pushboolean(L, lq_snapshot_is_snapshot(luaL_checkstring(L, 1)));
  return 1;
}

static const luaL_Reg reader_meta[] = {
  { "__gc", reader_gc },
  { NULL, NULL }
};

static const luaL_Reg module_functions[] = {
  { "save_snapshot", l_save_snapshot },
  { "read_snapshot", l_read_snapshot },
  { "is_snapshot", l_is_snapshot },
  { NULL, NULL }
};

void lq_open_snapshot(lua_State *L) {
  lq_new_class(L, READER_TYPE, reader_meta, NULL);
  luaL_setfuncs(L, module_functions, 0);
}
