/* The Lua face of the column plan: the table lua/leadq/mapping.lua compiles a mapping script into,
** read into the C structs the CSV reader applies (column_plan.h). */
#include <string.h>

#include "bindings.h"
#include "column_plan_binding.h"

static const char *opt_string(lua_State *L, int t, const char *key) {
  const char *s = NULL;
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option 'plan': '%s' must be a string", key);
    s = lua_tostring(L, -1);   /* stays referenced by the plan table */
  }
  lua_pop(L, 1);
  return s;
}

static char opt_char(lua_State *L, int t, const char *key) {
  const char *s = opt_string(L, t, key);
  if (s == NULL) return 0;
  if (strlen(s) != 1) luaL_error(L, "option 'plan': '%s' must be one character, got '%s'", key, s);
  return s[0];
}

static int opt_bool(lua_State *L, int t, const char *key) {
  int v;
  lua_getfield(L, t, key);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A list of strings at t[key] as a userdata array on the stack (left there); its length in *n. */
static const char *const *string_list(lua_State *L, int t, const char *key, int *n) {
  const char **list;
  int i, len, list_idx;
  lua_getfield(L, t, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    *n = 0;
    return NULL;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "option 'plan': '%s' must be a list of strings", key);
  list_idx = lua_gettop(L);
  len = (int)lua_rawlen(L, list_idx);
  list = (const char **)lq_newuserdata(L, (size_t)(len > 0 ? len : 1) * sizeof *list);
  for (i = 0; i < len; i++) {
    lua_rawgeti(L, list_idx, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option 'plan': '%s' must be a list of strings", key);
    list[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, list_idx);   /* the list stays referenced by the plan table; the userdata stays */
  *n = len;
  return list;
}

static void read_settings(lua_State *L, int t, lq_plan_column *c) {
  const char *take = opt_string(L, t, "take");
  c->take = LQ_TAKE_VALUE;
  if (take != NULL) {
    if (!strcmp(take, "lower")) c->take = LQ_TAKE_LOWER;
    else if (!strcmp(take, "upper")) c->take = LQ_TAKE_UPPER;
    else if (!strcmp(take, "domain")) c->take = LQ_TAKE_DOMAIN;
    else if (!strcmp(take, "local")) c->take = LQ_TAKE_BEFORE_AT;
    else luaL_error(L, "option 'plan': unknown take '%s'", take);
  }
  c->tag_separator = opt_char(L, t, "tag_separator");
  c->numeric = opt_bool(L, t, "numeric");
  c->decimal = opt_char(L, t, "decimal");
  c->thousands = opt_char(L, t, "thousands");
  c->date_formats = opt_string(L, t, "date_formats");
  lua_getfield(L, t, "tz_minutes");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "option 'plan': 'tz_minutes' must be a number");
    c->has_tz = 1;
    c->tz_minutes = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
}

void lq_read_plan(lua_State *L, int idx, lq_plan *plan) {
  int i, n, cols_idx;
  lq_plan_column *cols, *rest;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "option 'plan' must be a table (a compiled mapping), got %s",
                                       luaL_typename(L, idx));
  memset(plan, 0, sizeof *plan);
  lua_getfield(L, idx, "columns");
  if (!lua_istable(L, -1)) luaL_error(L, "option 'plan': 'columns' must be a list");
  cols_idx = lua_gettop(L);
  n = (int)lua_rawlen(L, cols_idx);
  cols = (lq_plan_column *)lq_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *cols);
  memset(cols, 0, (size_t)(n > 0 ? n : 1) * sizeof *cols);
  for (i = 0; i < n; i++) {
    int t, k, nsources, nto;
    const char *const *sources;
    lua_rawgeti(L, cols_idx, i + 1);
    if (!lua_istable(L, -1)) luaL_error(L, "option 'plan': column %d must be a table", i + 1);
    t = lua_gettop(L);
    cols[i].name = opt_string(L, t, "name");
    if (cols[i].name == NULL) luaL_error(L, "option 'plan': column %d has no name", i + 1);
    sources = string_list(L, t, "sources", &nsources);
    if (nsources < 1 || nsources > LQ_PLAN_SOURCES)
      luaL_error(L, "option 'plan': column '%s' must read 1 to %d columns", cols[i].name, LQ_PLAN_SOURCES);
    for (k = 0; k < nsources; k++) cols[i].sources[k] = sources[k];
    cols[i].nsources = nsources;
    lua_insert(L, t);   /* the sources array below the column table */
    t = lua_gettop(L);
    cols[i].map_from = string_list(L, t, "map_from", &cols[i].nmap);
    if (cols[i].map_from) lua_insert(L, t), t = lua_gettop(L);
    cols[i].map_to = string_list(L, t, "map_to", &nto);
    if (cols[i].map_to) lua_insert(L, t), t = lua_gettop(L);
    if (nto != cols[i].nmap) luaL_error(L, "option 'plan': column '%s': map_from and map_to differ in length",
                                        cols[i].name);
    cols[i].map_fold = opt_bool(L, t, "fold");
    read_settings(L, t, &cols[i]);
    lua_pop(L, 1);   /* the column table; its arrays stay on the stack */
  }
  plan->cols = cols;
  plan->ncols = n;
  plan->keep_rest = opt_bool(L, idx, "keep_rest");
  lua_getfield(L, idx, "rest");
  if (lua_istable(L, -1)) {
    int t = lua_gettop(L);
    rest = (lq_plan_column *)lq_newuserdata(L, sizeof *rest);
    memset(rest, 0, sizeof *rest);
    read_settings(L, t, rest);
    plan->rest = rest;
    lua_remove(L, t);
  } else {
    lua_pop(L, 1);
  }
  plan->nulls = string_list(L, idx, "nulls", &plan->nnulls);
}
