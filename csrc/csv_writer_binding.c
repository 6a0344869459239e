/* The Lua face of the CSV writer (csv_writer.c): core.write_csv_columns, what `leadq score` writes its
** scores with. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "csv_writer.h"

#if !defined(LQ_CSV_OUT_MAX_COLUMNS)
#define LQ_CSV_OUT_MAX_COLUMNS 512
#endif

/* core.write_csv_columns(path, nrows, columns [, threads]) -> true, or nil and why. columns: a list of
** { name = , table = , column = } (a leadq table's column of nrows rows, or more) or
** { name = , row = true } (the row number from 1). Tag columns are refused: the caller writes those.
** threads: how many threads format the rows (1), the same bytes for any number. */
static int l_write_csv_columns(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer nrows = luaL_checkinteger(L, 2), threads = luaL_optinteger(L, 4, 1);
  lq_csv_out_column cols[LQ_CSV_OUT_MAX_COLUMNS];
  int ncols, k, rc, saved;
  FILE *f;
  luaL_checktype(L, 3, LUA_TTABLE);
  ncols = (int)lua_rawlen(L, 3);
  if (nrows < 0) return luaL_argerror(L, 2, "a number of rows, 0 or more");
  if (ncols < 1 || ncols > LQ_CSV_OUT_MAX_COLUMNS) return luaL_argerror(L, 3, "1 to 512 columns");
  for (k = 0; k < ncols; k++) {
    lua_rawgeti(L, 3, k + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "write_csv_columns: column %d is not a table", k + 1);
    lua_getfield(L, -1, "name");
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "write_csv_columns: column %d has no name", k + 1);
    cols[k].name = lua_tostring(L, -1);   /* kept alive by the columns table */
    lua_pop(L, 1);
    cols[k].column = NULL;
    lua_getfield(L, -1, "table");
    if (!lua_isnil(L, -1)) {
      lq_table *t = lq_check_table(L, lua_gettop(L));
      int c;
      lua_getfield(L, -2, "column");
      c = lua_type(L, -1) == LUA_TSTRING ? lq_table_find(t, lua_tostring(L, -1)) : -1;
      if (c < 0) return luaL_error(L, "write_csv_columns: column %d names no column of its table", k + 1);
      if (t->nrows < (size_t)nrows) return luaL_error(L, "write_csv_columns: column %d has too few rows", k + 1);
      if (t->cols[c]->type == LQ_TAGS) return luaL_error(L, "write_csv_columns: column %d holds tags", k + 1);
      cols[k].column = t->cols[c];
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  f = fopen(path, "wb");
  if (f == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s: %s", path, strerror(errno));
    return 2;
  }
  rc = lq_csv_write_columns(f, cols, ncols, (size_t)nrows, threads < 1 ? 1 : threads > 64 ? 64 : (int)threads);
  saved = errno;
  if (fclose(f) != 0 && rc == 0) {
    rc = -1;
    saved = errno;
  }
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot write %s: %s", path, strerror(saved));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void lq_open_csv_writer(lua_State *L) {
  lua_pushcfunction(L, l_write_csv_columns);
  lua_setfield(L, -2, "write_csv_columns");
}
