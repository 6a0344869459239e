/* The Lua face of the CSV reader (csv_reader.c): leadq.read_csv, parse_csv and read_events, with
** their options read into lq_csv_options, and the tables they make boxed as leadq.Table
** (table_binding.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "column_plan_binding.h"
#include "csv_reader_binding.h"
#include "table.h"

/* ---- options ---- */

static const char *const csv_options[] = {
  "separator", "strict", "tag_separator", "infer_rows", "header", "schema", "map", "plan", "source", "first_line", "progress",
  "threads", "columns", "columns_optional", "chunk_bytes", NULL
};

static const char *const type_list = "number, category, boolean, time, text, tags";

static int type_from_lua(lua_State *L, int idx, const char *where, const char *column) {
  const char *name;
  int type;
  if (lua_type(L, idx) != LUA_TSTRING)
    return luaL_error(L, "%s: the type of column '%s' must be a string (one of %s), got %s",
                      where, column, type_list, luaL_typename(L, idx));
  name = lua_tostring(L, idx);
  type = lq_type_from_name(name);
  if (type < 0) {
    const char *hint = "";
    int i;
    if (!strcmp(name, "date") || !strcmp(name, "datetime") || !strcmp(name, "timestamp"))
      hint = " (did you mean 'time'?)";
    else if (!strcmp(name, "string"))
      hint = " (did you mean 'category' or 'text'?)";
    else
      for (i = 0; i < LQ_TYPE_COUNT; i++)
        if (lq_edit_distance(name, lq_type_name((lq_type)i)) <= 2) {
          hint = lua_pushfstring(L, " (did you mean '%s'?)", lq_type_name((lq_type)i));
          break;
        }
    return luaL_error(L, "%s: unknown type '%s' for column '%s'%s; the types are %s",
                      where, name, column, hint, type_list);
  }
  return type;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(((const lq_csv_column_type *)a)->name, ((const lq_csv_column_type *)b)->name);
}

/* A schema: { name = "type", ... } (columns in name order) or { {name=, type=}, ... } (in the
** order given). Pushes a scratch userdata holding the entries; their strings stay alive in the
** schema table at idx. Returns the number of entries. */
int lq_read_schema(lua_State *L, int idx, const char *where, lq_csv_column_type **out) {
  int n = 0, i, array;
  lq_csv_column_type *entries;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx))
    return luaL_error(L, "%s must be a table, got %s", where, luaL_typename(L, idx));
  array = lua_rawlen(L, idx) > 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {  /* count, and check the keys */
    lua_pop(L, 1);
    if (!array && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "%s: column names must be strings, got %s", where, luaL_typename(L, -1));
    n++;
  }
  if (array && (size_t)n != (size_t)lua_rawlen(L, idx))
    return luaL_error(L, "%s: use either { name = \"type\" } or a list of { name = ..., type = ... }, not both", where);
  entries = (lq_csv_column_type *)lq_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *entries);
  if (array) {
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      if (!lua_istable(L, -1))
        return luaL_error(L, "%s: entry %d must be a table { name = ..., type = ... }, got %s",
                          where, i + 1, luaL_typename(L, -1));
      lua_getfield(L, -1, "name");
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "%s: entry %d has no string 'name'", where, i + 1);
      entries[i].name = lua_tostring(L, -1);
      lua_getfield(L, -2, "type");
      entries[i].type = (lq_type)type_from_lua(L, -1, where, entries[i].name);
      /* the name string stays referenced by the entry table, itself in the schema table */
      lua_pop(L, 3);
    }
  } else {
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      entries[i].name = lua_tostring(L, -2);
      entries[i].type = (lq_type)type_from_lua(L, -1, where, entries[i].name);
      lua_pop(L, 1);
      i++;
    }
    qsort(entries, (size_t)n, sizeof *entries, compare_names);
  }
  for (i = 1; i < n; i++) {
    int j;
    for (j = 0; j < i; j++)
      if (strcmp(entries[i].name, entries[j].name) == 0)
        return luaL_error(L, "%s: column '%s' is declared twice", where, entries[i].name);
  }
  *out = entries;
  return n;
}

static char one_char_option(lua_State *L, int idx, const char *name) {
  size_t len;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "option '%s' must be a one-character string, got %s", name, luaL_typename(L, idx));
  s = lua_tolstring(L, idx, &len);
  if (len != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r')
    luaL_error(L, "option '%s' must be one character other than a quote or a line break, got '%s'", name, s);
  return s[0];
}

static int boolean_option(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TBOOLEAN)
    luaL_error(L, "option '%s' must be a boolean, got %s", name, luaL_typename(L, idx));
  return lua_toboolean(L, idx);
}

static void unknown_option(lua_State *L, const char *key, const char *const *known) {
  int i, best = -1, best_d = 3;
  for (i = 0; known[i] != NULL; i++) {
    int d = lq_edit_distance(key, known[i]);
    if (d < best_d) { best_d = d; best = i; }
  }
  if (best >= 0) luaL_error(L, "unknown option '%s' (did you mean '%s'?)", key, known[best]);
  luaL_error(L, "unknown option '%s'", key);
}

/* The option `progress`: a Lua function called as f(bytes_read, file_size, rows) after each read.
** It runs protected: an error in it is dropped, never thrown through the loader (which would leak
** what the loader holds). */
typedef struct progress_call {
  lua_State *L;
  int fn;                 /* its stack index */
} progress_call;

static void lua_progress(void *ud, double bytes, double size, double records) {
  progress_call *p = (progress_call *)ud;
  lua_State *L = p->L;
  if (!lua_checkstack(L, 5)) return;
  lua_pushvalue(L, p->fn);
  lua_pushnumber(L, (lua_Number)bytes);
  lua_pushnumber(L, (lua_Number)size);
  lua_pushnumber(L, (lua_Number)records);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) lua_pop(L, 1);
}

/* The options table at idx into o; scratch arrays are pushed on the stack (they must stay
** there while o is in use). Raises on any misuse. */
static void read_csv_options(lua_State *L, int idx, lq_csv_options *o) {
  lq_csv_options_init(o);
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) {
    luaL_argerror(L, idx, lua_pushfstring(L, "options must be a table, got %s", luaL_typename(L, idx)));
    return;
  }
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key;
    int k;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "option names must be strings, got %s", luaL_typename(L, -2));
    key = lua_tostring(L, -2);
    for (k = 0; csv_options[k] != NULL && strcmp(csv_options[k], key) != 0; k++) {}
    if (csv_options[k] == NULL) unknown_option(L, key, csv_options);
    lua_pop(L, 1);
  }
  if (LQ_GETFIELD_TYPE(L, idx, "separator") != LUA_TNIL) o->separator = one_char_option(L, -1, "separator");
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "tag_separator") != LUA_TNIL) o->tag_separator = one_char_option(L, -1, "tag_separator");
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "strict") != LUA_TNIL) o->strict = boolean_option(L, -1, "strict");
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "header") != LUA_TNIL) o->header = boolean_option(L, -1, "header");
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "infer_rows") != LUA_TNIL) {
    lua_Number v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 1) || (v != floor(v) && !isinf(v)))
      luaL_error(L, "option 'infer_rows' must be a whole number of rows >= 1 (or math.huge for all), got %s",
                 lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%f", v) : luaL_typename(L, -1));
    o->infer_rows = v >= 1e15 ? (size_t)-1 : (size_t)v;
  }
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "map") != LUA_TNIL) {
    int map = lua_gettop(L), n = 0, i = 0;
    lq_csv_rename *renames;
    if (!lua_istable(L, map)) luaL_error(L, "option 'map' must be a table { [\"CRM name\"] = \"our name\" }, got %s",
                                         luaL_typename(L, map));
    lua_pushnil(L);
    while (lua_next(L, map)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "option 'map': names must be strings (found %s = %s)", luaL_typename(L, -2), luaL_typename(L, -1));
      lua_pop(L, 1);
      n++;
    }
    renames = (lq_csv_rename *)lq_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *renames);
    lua_pushnil(L);
    while (lua_next(L, map)) {
      renames[i].from = lua_tostring(L, -2);
      renames[i].to = lua_tostring(L, -1);
      i++;
      lua_pop(L, 1);
    }
    o->map = renames;
    o->nmap = n;
    /* map table and scratch stay on the stack */
  } else {
    lua_pop(L, 1);
  }
  if (LQ_GETFIELD_TYPE(L, idx, "schema") != LUA_TNIL) {
    lq_csv_column_type *entries;
    o->nschema = lq_read_schema(L, -1, "option 'schema'", &entries);
    o->schema = entries;
  } else {
    lua_pop(L, 1);
  }
  if (LQ_GETFIELD_TYPE(L, idx, "source") != LUA_TNIL) {   /* the name messages give the input */
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option 'source' must be a string, got %s", luaL_typename(L, -1));
    o->source = lua_tostring(L, -1);   /* the options table holds it */
  }
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "progress") != LUA_TNIL) {   /* stays on the stack, with its record */
    progress_call *p;
    if (lua_type(L, -1) != LUA_TFUNCTION) luaL_error(L, "option 'progress' must be a function, got %s",
                                                       luaL_typename(L, -1));
    p = (progress_call *)lq_newuserdata(L, sizeof *p);
    p->L = L;
    p->fn = lua_gettop(L) - 1;
    o->progress = lua_progress;
    o->progress_ud = p;
  } else {
    lua_pop(L, 1);
  }
  if (LQ_GETFIELD_TYPE(L, idx, "first_line") != LUA_TNIL) {   /* converted input: its lines' numbers */
    lua_Number v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || v < 0 || v != floor(v) || v > 1e15)
      luaL_error(L, "option 'first_line' must be a whole number >= 0");
    o->first_line = (unsigned long)v;
  }
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "threads") != LUA_TNIL) {
    lua_Number v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || v < 1 || v != floor(v))
      luaL_error(L, "option 'threads' must be a whole number >= 1, got %s",
                 lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%f", v) : luaL_typename(L, -1));
    o->threads = v > LQ_CSV_MAX_THREADS ? LQ_CSV_MAX_THREADS : (int)v;
  }
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "chunk_bytes") != LUA_TNIL) {   /* testing: cuts land where a test wants */
    lua_Number v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || v < 1 || v != floor(v) || v > 1e15)
      luaL_error(L, "option 'chunk_bytes' must be a whole number >= 1");
    o->chunk_bytes = (size_t)v;
  }
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "columns") != LUA_TNIL) {   /* the names stay on the stack with their table */
    int list = lua_gettop(L), n, i;
    const char **names;
    if (!lua_istable(L, list)) luaL_error(L, "option 'columns' must be a list of column names, got %s",
                                          luaL_typename(L, list));
    n = (int)lua_rawlen(L, list);
    names = (const char **)lq_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *names);
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, list, i + 1);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "option 'columns': entry %d must be a column name, got %s", i + 1, luaL_typename(L, -1));
      names[i] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
    o->columns = names;
    o->ncolumns = n;
  } else {
    lua_pop(L, 1);
  }
  if (LQ_GETFIELD_TYPE(L, idx, "columns_optional") != LUA_TNIL)
    o->columns_optional = boolean_option(L, -1, "columns_optional");
  lua_pop(L, 1);
  if (LQ_GETFIELD_TYPE(L, idx, "plan") != LUA_TNIL) {   /* a compiled mapping script */
    lq_plan *plan = (lq_plan *)lq_newuserdata(L, sizeof *plan);
    if (o->nmap > 0) luaL_error(L, "options 'map' and 'plan' cannot be given together (a plan renames too)");
    lq_read_plan(L, -2, plan);   /* its arrays and the plan table stay on the stack */
    o->plan = plan;
  } else {
    lua_pop(L, 1);
  }
}

/* Run a load into a new box on the stack: the table, or nil + message (cannot read), or raise. */
static int finish_load(lua_State *L, int status, const char *err) {
  switch (status) {
    case LQ_CSV_OK:
      return 1;
    case LQ_CSV_EIO:
      lua_pushnil(L);
      lua_pushstring(L, err);
      return 2;
    default:
      return luaL_error(L, "%s", err);
  }
}

static int l_read_csv(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lq_csv_options o;
  lq_table **slot;
  char err[LQ_MESSAGE_MAX];
  int status;
  read_csv_options(L, 2, &o);
  if (strcmp(o.source, "[string]") == 0)   /* no source option: the path, "stdin" for "-" */
    o.source = strcmp(path, "-") == 0 ? "stdin" : path;
  slot = lq_push_table_box(L);
  status = lq_csv_read_file(path, &o, lq_lua_allocator(L), slot, err, sizeof err);
  return finish_load(L, status, err);
}

static int l_parse_csv(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lq_csv_options o;
  lq_table **slot;
  char err[LQ_MESSAGE_MAX];
  int status;
  read_csv_options(L, 2, &o);
  slot = lq_push_table_box(L);
  status = lq_csv_read_string(text, len, &o, lq_lua_allocator(L), slot, err, sizeof err);
  return finish_load(L, status, err);
}

static const lq_csv_column_type event_columns[] = {
  { "lead_id", LQ_CATEGORY }, { "type", LQ_CATEGORY }, { "at", LQ_TIME }, { "value", LQ_NUMBER }
};
const char *const lq_event_required[LQ_EVENT_REQUIRED] = { "lead_id", "type", "at" };

static int l_read_events(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lq_csv_options o;
  lq_csv_column_type *schema;
  lq_table **slot;
  char err[LQ_MESSAGE_MAX];
  int status, i, j, n;
  const int nevent = (int)(sizeof event_columns / sizeof event_columns[0]);
  read_csv_options(L, 2, &o);
  if (strcmp(o.source, "[string]") == 0)   /* no source option: the path, "stdin" for "-" */
    o.source = strcmp(path, "-") == 0 ? "stdin" : path;
  /* the user's schema for the attribute columns, then ours for the event columns */
  schema = (lq_csv_column_type *)lq_newuserdata(L, (size_t)(o.nschema + nevent) * sizeof *schema);
  n = 0;
  for (i = 0; i < o.nschema; i++) {
    for (j = 0; j < nevent; j++)
      if (strcmp(o.schema[i].name, event_columns[j].name) == 0 && o.schema[i].type != event_columns[j].type)
        return luaL_error(L, "option 'schema': column '%s' of an events file is always %s",
                          event_columns[j].name, lq_type_name(event_columns[j].type));
    schema[n++] = o.schema[i];
  }
  for (j = 0; j < nevent; j++) {
    int seen = 0;
    for (i = 0; i < o.nschema; i++) seen |= strcmp(o.schema[i].name, event_columns[j].name) == 0;
    if (!seen) schema[n++] = event_columns[j];
  }
  o.required = lq_event_required;
  o.nrequired = LQ_EVENT_REQUIRED;
  o.table_flags = LQ_TABLE_EVENTS;
  /* ours: the required ones are checked as such; the caller's too when it asks for what it could use */
  o.schema_optional = o.columns_optional ? n : n - o.nschema;
  o.schema = schema;
  o.nschema = n;
  slot = lq_push_table_box(L);
  status = lq_csv_read_file(path, &o, lq_lua_allocator(L), slot, err, sizeof err);
  return finish_load(L, status, err);
}

static const luaL_Reg reader_functions[] = {
  { "read_csv", l_read_csv },
  { "parse_csv", l_parse_csv },
  { "read_events", l_read_events },
  { NULL, NULL }
};

void lq_open_csv_reader(lua_State *L) {
  luaL_setfuncs(L, reader_functions, 0);
}
