/* The Lua face of the lead table: userdata "leadq.Table", leadq.table(records), and the row,
** column, schema and reject views (csv_reader_binding.c reads files into it).
**
** A table userdata is a box holding one lq_table pointer. The box is made (empty, with its
** metatable) before any C memory is taken, so __gc can always clean up; C code that may fail
** returns a status and frees its own memory before the binding raises. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "csv_reader_binding.h"
#include "table.h"

#define TABLE_TYPE "leadq.Table"
#define ROW_DISPLAY "leadq.Row"          /* metatables for printing a row and a reject list */
#define REJECTS_DISPLAY "leadq.Rejects"

#if !defined(LQ_SHOW_ROWS)
#define LQ_SHOW_ROWS 10       /* rows shown by tostring */
#endif
#if !defined(LQ_SHOW_WIDTH)
#define LQ_SHOW_WIDTH 24      /* widest cell shown, in characters */
#endif

typedef struct table_box {
  lq_table *t;
} table_box;

/* An empty box with its metatable, on the stack; fill box->t afterwards. */
lq_table **lq_push_table_box(lua_State *L) {
  table_box *box = (table_box *)lq_newuserdata(L, sizeof(table_box));
  box->t = NULL;
  luaL_setmetatable(L, TABLE_TYPE);
  return &box->t;
}

static table_box *check_box(lua_State *L, int arg) {
  return (table_box *)luaL_checkudata(L, arg, TABLE_TYPE);
}

lq_table *lq_check_table(lua_State *L, int arg) {
  table_box *box = check_box(L, arg);
  if (box->t == NULL) luaL_error(L, "attempt to use a closed leadq table");
  return box->t;
}

static void push_count(lua_State *L, size_t n) {
  lua_pushinteger(L, (lua_Integer)n);
}

/* Push the value at (column, row); 0 and nothing pushed when missing. */
int lq_push_cell(lua_State *L, const lq_column *c, size_t row) {
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME:
      if (isnan(c->numbers[row])) return 0;
      lq_push_number(L, c->numbers[row]);
      return 1;
    case LQ_BOOLEAN:
      if (c->bools[row] == LQ_MISSING_BOOL) return 0;
      lua_pushboolean(L, c->bools[row]);
      return 1;
    case LQ_CATEGORY: {
      size_t len;
      const char *s;
      if (c->codes[row] == LQ_MISSING_CODE) return 0;
      s = lq_dict_string(&c->dict, c->codes[row], &len);
      lua_pushlstring(L, s, len);
      return 1;
    }
    case LQ_TEXT:
      if (c->text_missing[row]) return 0;
      lua_pushlstring(L, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
      return 1;
    case LQ_TAGS: {
      uint64_t k, from = c->tag_offsets[row], to = c->tag_offsets[row + 1];
      if (c->text_missing[row]) return 0;
      lua_createtable(L, (int)(to - from), 0);
      for (k = from; k < to; k++) {
        size_t len;
        const char *s = lq_dict_string(&c->dict, c->tag_codes[k], &len);
        lua_pushlstring(L, s, len);
        lua_rawseti(L, -2, (int)(k - from + 1));
      }
      return 1;
    }
    default:
      return 0;
  }
}

/* " (did you mean 'x'?)" among the table's columns, or "". */
static const char *column_hint(lua_State *L, const lq_table *t, const char *name) {
  int i, best = -1, best_d = 3;
  for (i = 0; i < t->ncols; i++) {
    int d = lq_edit_distance(name, t->cols[i]->name);
    if (d < best_d) { best_d = d; best = i; }
  }
  if (best < 0) return "";
  return lua_pushfstring(L, " (did you mean '%s'?)", t->cols[best]->name);
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- appending Lua records ---- */

static const char *value_text(lua_State *L, int idx) {
  char quoted[128];
  size_t len;
  const char *s;
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    lq_quote_value(s, len, quoted, sizeof quoted);
    lua_pushstring(L, quoted);  /* returns void on 5.1 */
  } else {
    lua_pushstring(L, luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

/* Set column col of the row being built from the Lua value at idx. NULL when done, or a message
** (pushed) saying why the value does not fit. Raises only on no memory, after cancelling. */
static const char *set_from_lua(lua_State *L, lq_table *t, int col, int idx, size_t before) {
  lq_column *c = t->cols[col];
  int vt, rc = 0;
  size_t len = 0;
  const char *s;
  idx = lua_absindex(L, idx);
  vt = lua_type(L, idx);
  s = vt == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME: {
      double v;
      if (vt == LUA_TNUMBER) {
        rc = lq_column_set_number(t, col, (double)lua_tonumber(L, idx));
      } else if (vt == LUA_TSTRING) {
        if (len == 0) break;  /* missing */
        if (!(c->type == LQ_NUMBER ? lq_scan_number(s, len, &v) : lq_scan_time(s, len, &v)))
          return lua_pushfstring(L, "%s is not %s", value_text(L, idx),
                                 c->type == LQ_NUMBER ? "a number" : "an ISO 8601 date or time");
        rc = lq_column_set_number(t, col, v);
      } else {
        return lua_pushfstring(L, "expected %s, got %s", c->type == LQ_NUMBER ? "a number" :
                               "a time (seconds since the epoch, or an ISO 8601 string)", luaL_typename(L, idx));
      }
      break;
    }
    case LQ_BOOLEAN: {
      int b;
      if (vt == LUA_TBOOLEAN) {
        rc = lq_column_set_bool(t, col, lua_toboolean(L, idx));
      } else if (vt == LUA_TNUMBER && (lua_tonumber(L, idx) == 0 || lua_tonumber(L, idx) == 1)) {
        rc = lq_column_set_bool(t, col, lua_tonumber(L, idx) == 1);
      } else if (vt == LUA_TSTRING) {
        if (len == 0) break;
        if (!lq_scan_bool(s, len, &b))
          return lua_pushfstring(L, "%s is not a boolean (true/false, yes/no, 1/0)", value_text(L, idx));
        rc = lq_column_set_bool(t, col, b);
      } else {
        return lua_pushfstring(L, "expected a boolean, got %s", value_text(L, idx));
      }
      break;
    }
    case LQ_CATEGORY: case LQ_TEXT:
      if (vt == LUA_TNUMBER) {
        lua_pushvalue(L, idx);  /* convert a copy: idx may be lua_next's value, never its key */
        s = lua_tolstring(L, -1, &len);
        rc = lq_column_set_string(t, col, s, len);
        lua_pop(L, 1);
      } else if (vt == LUA_TSTRING) {
        if (len == 0 && c->type == LQ_CATEGORY) break;
        rc = lq_column_set_string(t, col, s, len);
      } else {
        return lua_pushfstring(L, "expected a string, got %s", luaL_typename(L, idx));
      }
      break;
    case LQ_TAGS:
      if (vt == LUA_TSTRING) {
        rc = lq_column_set_string(t, col, s, len);
      } else if (vt == LUA_TTABLE) {
        int k, n = (int)lua_rawlen(L, idx);
        rc = lq_column_tags_begin(t, col);
        for (k = 1; k <= n && rc == 0; k++) {
          lua_rawgeti(L, idx, k);
          if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            return lua_pushfstring(L, "tag %d is a %s, expected a string", k, luaL_typename(L, -1));
          s = lua_tolstring(L, -1, &len);
          rc = lq_column_tags_add(t, col, s, len);
          lua_pop(L, 1);
        }
      } else {
        return lua_pushfstring(L, "expected an array of tags or a string, got %s", luaL_typename(L, idx));
      }
      break;
    default:
      break;
  }
  if (rc != 0) {
    lq_table_cancel_row(t);
    lq_table_truncate(t, before);
    luaL_error(L, "not enough memory");
  }
  return NULL;
}

/* Append the record at idx (a table). recno > 0: its number in a list, for messages. On any
** error the table goes back to `before` rows and the error is raised. */
static void append_record(lua_State *L, lq_table *t, int idx, int recno, size_t before) {
  const char *why = NULL, *field = NULL;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) {
    lq_table_truncate(t, before);
    luaL_error(L, "record %d is a %s, expected a table", recno, luaL_typename(L, idx));
  }
  if (lq_table_begin_row(t) != 0) {
    lq_table_truncate(t, before);
    luaL_error(L, "not enough memory");
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int col;
    if (lua_type(L, -2) != LUA_TSTRING) {
      why = lua_pushfstring(L, "field names must be strings, got %s", luaL_typename(L, -2));
      break;
    }
    field = lua_tostring(L, -2);
    col = lq_table_find(t, field);
    if (col < 0) {
      why = lua_pushfstring(L, "unknown field '%s'%s", field, column_hint(L, t, field));
      field = NULL;
      break;
    }
    if ((why = set_from_lua(L, t, col, -1, before)) != NULL) break;
    lua_pop(L, 1);
  }
  if (why == NULL && (t->flags & LQ_TABLE_EVENTS)) {
    int k;
    for (k = 0; k < LQ_EVENT_REQUIRED; k++) {
      int col = lq_table_find(t, lq_event_required[k]);
      if (col >= 0 && lq_column_is_missing(t->cols[col], t->nrows)) {
        why = lua_pushfstring(L, "field '%s' is required in an events table", lq_event_required[k]);
        break;
      }
    }
  }
  if (why != NULL) {
    lq_table_cancel_row(t);
    lq_table_truncate(t, before);
    if (recno > 0 && field != NULL) luaL_error(L, "record %d, field '%s': %s", recno, field, why);
    if (recno > 0) luaL_error(L, "record %d: %s", recno, why);
    if (field != NULL) luaL_error(L, "field '%s': %s", field, why);
    luaL_error(L, "%s", why);
  }
  lq_table_end_row(t);
}

/* A list of records, or one record: a table whose [1] is a table is a list. */
static void append_any(lua_State *L, lq_table *t, int idx) {
  size_t before = t->nrows;
  int is_list;
  idx = lua_absindex(L, idx);
  is_list = LQ_RAWGETI_TYPE(L, idx, 1) == LUA_TTABLE || lua_rawlen(L, idx) > 0;
  lua_pop(L, 1);
  if (is_list) {
    int i, n = (int)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      append_record(L, t, -1, i, before);
      lua_pop(L, 1);
    }
  } else {
    append_record(L, t, idx, 0, before);
  }
}

static int t_append(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  append_any(L, t, 2);
  lua_settop(L, 1);
  return 1;
}

/* ---- leadq.table(records [, schema]) ---- */

enum { KIND_NUMBER = 1, KIND_BOOLEAN = 2, KIND_STRING = 4, KIND_TAGS = 8 };

static const char *kind_name(int kind) {
  switch (kind) {
    case KIND_NUMBER: return "number";
    case KIND_BOOLEAN: return "boolean";
    case KIND_STRING: return "string";
    default: return "tag list";
  }
}

static int l_table(lua_State *L) {
  int n, i, nschema = 0, nextra = 0;
  lq_csv_column_type *schema = NULL;
  const char **extra;
  lq_table **slot;
  lq_allocator a = lq_lua_allocator(L);
  enum { RECORDS = 1, SCHEMA = 2, KINDS = 3, DISTINCT = 4, COUNTS = 5, SCRATCH = 6 };
  luaL_checktype(L, RECORDS, LUA_TTABLE);
  if (!lua_isnoneornil(L, SCHEMA)) luaL_checktype(L, SCHEMA, LUA_TTABLE);
  lua_settop(L, SCHEMA);
  lua_newtable(L);  /* KINDS: name -> bit set of the kinds of values seen */
  lua_newtable(L);  /* DISTINCT: name -> set of its strings */
  lua_newtable(L);  /* COUNTS: name -> { values, distinct } */
  if (!lua_isnil(L, SCHEMA)) {
    nschema = lq_read_schema(L, SCHEMA, "schema", &schema);
  } else {
    lua_pushnil(L);
  }
  /* SCRATCH is the schema's entries (or nil) */
  n = (int)lua_rawlen(L, RECORDS);
  for (i = 1; i <= n; i++) {
    int rec;
    if (LQ_RAWGETI_TYPE(L, RECORDS, i) != LUA_TTABLE)
      return luaL_argerror(L, RECORDS, lua_pushfstring(L, "record %d is a %s, expected a table", i, luaL_typename(L, -1)));
    rec = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, rec)) {
      int kind, vt = lua_type(L, -1), known, j, declared = 0;
      const char *name;
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_argerror(L, RECORDS, lua_pushfstring(L, "record %d has a field name that is a %s, not a string",
                                                         i, luaL_typename(L, -2)));
      name = lua_tostring(L, -2);
      for (j = 0; j < nschema && !declared; j++) declared = strcmp(schema[j].name, name) == 0;
      if (declared) { lua_pop(L, 1); continue; }
      kind = vt == LUA_TNUMBER ? KIND_NUMBER : vt == LUA_TBOOLEAN ? KIND_BOOLEAN :
             vt == LUA_TSTRING ? KIND_STRING : vt == LUA_TTABLE ? KIND_TAGS : 0;
      if (kind == 0)
        return luaL_argerror(L, RECORDS, lua_pushfstring(L, "record %d, field '%s': a %s cannot be stored "
                             "(numbers, booleans, strings and arrays of tags can)", i, name, luaL_typename(L, -1)));
      lua_pushvalue(L, -2);
      lua_rawget(L, KINDS);
      known = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      if ((known | kind) != known) {
        if (known != 0) {
          int other = known & -known;
          return luaL_error(L, "field '%s' holds both %s and %s values (record %d); declare its type, "
                            "e.g. leadq.table(records, { %s = \"category\" })",
                            name, kind_name(other), kind_name(kind), i, name);
        }
        lua_pushvalue(L, -2);
        lua_pushinteger(L, known | kind);
        lua_rawset(L, KINDS);
        nextra++;
        lua_pushvalue(L, -2);
        lua_createtable(L, 2, 0);
        lua_rawset(L, COUNTS);
        if (kind == KIND_STRING) {
          lua_pushvalue(L, -2);
          lua_newtable(L);
          lua_rawset(L, DISTINCT);
        }
      }
      if (kind == KIND_STRING && lua_rawlen(L, -1) > 0) {
        int counts, set;
        lua_pushvalue(L, -2);
        lua_rawget(L, COUNTS);
        counts = lua_gettop(L);
        lua_rawgeti(L, counts, 1);
        lua_pushinteger(L, lua_tointeger(L, -1) + 1);
        lua_rawseti(L, counts, 1);
        lua_pop(L, 1);
        lua_pushvalue(L, -3);
        lua_rawget(L, DISTINCT);
        set = lua_gettop(L);
        lua_pushvalue(L, -3);  /* the value */
        lua_rawget(L, set);
        if (lua_isnil(L, -1)) {
          lua_pushvalue(L, set - 2);
          lua_pushboolean(L, 1);
          lua_rawset(L, set);
          lua_rawgeti(L, counts, 2);
          lua_pushinteger(L, lua_tointeger(L, -1) + 1);
          lua_rawseti(L, counts, 2);
          lua_pop(L, 1);
        }
        lua_settop(L, counts - 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  /* undeclared columns, in name order */
  extra = (const char **)lq_newuserdata(L, (size_t)(nextra > 0 ? nextra : 1) * sizeof(const char *));
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, KINDS)) {
    lua_pop(L, 1);
    extra[i++] = lua_tostring(L, -1);
  }
  nextra = i;
  qsort(extra, (size_t)nextra, sizeof *extra, compare_strings);
  slot = lq_push_table_box(L);
  if ((*slot = lq_table_new(a)) == NULL) return luaL_error(L, "not enough memory");
  for (i = 0; i < nschema + nextra; i++) {
    const char *name = i < nschema ? schema[i].name : extra[i - nschema];
    lq_type type;
    if (i < nschema) {
      type = schema[i].type;
    } else {
      int kinds;
      lua_getfield(L, KINDS, name);
      kinds = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (kinds == KIND_NUMBER) type = LQ_NUMBER;
      else if (kinds == KIND_BOOLEAN) type = LQ_BOOLEAN;
      else if (kinds == KIND_TAGS) type = LQ_TAGS;
      else {
        lua_Integer values, distinct;
        lua_getfield(L, COUNTS, name);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        values = lua_tointeger(L, -2);
        distinct = lua_tointeger(L, -1);
        lua_pop(L, 3);
        type = lq_infer_string_type(name, (size_t)values, (size_t)distinct);
      }
    }
    if (lq_table_add_column(*slot, name, type) < 0) return luaL_error(L, "not enough memory");
  }
  if (n > 0) {
    if (lq_table_reserve(*slot, (size_t)n) != 0) return luaL_error(L, "not enough memory");
    append_any(L, *slot, RECORDS);
  }
  return 1;
}

/* ---- methods ---- */

static int t_len(lua_State *L) {
  push_count(L, lq_check_table(L, 1)->nrows);
  return 1;
}

static int t_close(lua_State *L) {
  table_box *box = check_box(L, 1);
  if (box->t != NULL) {
    lq_table *t = box->t;
    box->t = NULL;
    lq_table_free(t);
  }
  return 0;
}

static void push_row(lua_State *L, const lq_table *t, size_t row) {
  int i;
  lua_createtable(L, 0, t->ncols);
  for (i = 0; i < t->ncols; i++)
    if (lq_push_cell(L, t->cols[i], row)) lua_setfield(L, -2, t->cols[i]->name);
}

/* A row index argument: an integer (a float with an integral value is fine). */
static size_t check_row_index(lua_State *L, int arg, int *valid, size_t nrows) {
  lua_Number v = luaL_checknumber(L, arg);
  if (v != floor(v)) luaL_argerror(L, arg, "row number must be a whole number");
  *valid = v >= 1 && v <= (lua_Number)nrows;
  return *valid ? (size_t)v - 1 : 0;
}

/* The value on top gets the display metatable named `name` (its __tostring prints it for a person in
** the REPL; leadq.display fills it in). Rows and reject lists stay plain tables otherwise. */
static void set_display(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, name);
  lua_setmetatable(L, -2);
}

static int t_row(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  int valid;
  size_t row = check_row_index(L, 2, &valid, t->nrows);
  if (!valid) return 0;
  push_row(L, t, row);
  set_display(L, ROW_DISPLAY);
  return 1;
}

static int rows_step(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  lua_Number i = luaL_checknumber(L, 2);
  if (i < 0 || i >= (lua_Number)t->nrows) return 0;
  push_count(L, (size_t)i + 1);
  push_row(L, t, (size_t)i);
  return 2;
}

static int t_rows(lua_State *L) {
  lq_check_table(L, 1);
  lua_pushcfunction(L, rows_step);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

static int check_column(lua_State *L, lq_table *t, int arg) {
  const char *name = luaL_checkstring(L, arg);
  int col = lq_table_find(t, name);
  if (col < 0) return luaL_error(L, "unknown column '%s'%s", name, column_hint(L, t, name));
  return col;
}

static int t_column(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  lq_column *c = t->cols[check_column(L, t, 2)];
  size_t r;
  lua_createtable(L, t->nrows < 0x7fffffff ? (int)t->nrows : 0, 0);
  for (r = 0; r < t->nrows; r++)
    if (lq_push_cell(L, c, r)) lua_rawseti(L, -2, (int)(r + 1));
  push_count(L, t->nrows);
  return 2;
}

static int t_type(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  lua_pushstring(L, lq_type_name(t->cols[check_column(L, t, 2)]->type));
  return 1;
}

static int t_has(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  lua_pushboolean(L, lq_table_find(t, luaL_checkstring(L, 2)) >= 0);
  return 1;
}

static int t_schema(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  int i;
  lua_createtable(L, t->ncols, 0);
  for (i = 0; i < t->ncols; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, t->cols[i]->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, lq_type_name(t->cols[i]->type));
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_names(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  int i;
  lua_createtable(L, t->ncols, 0);
  for (i = 0; i < t->ncols; i++) {
    lua_pushstring(L, t->cols[i]->name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* t:categories(name): a category or tags column's distinct values, in code order (first seen). */
static int t_categories(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  const lq_column *c = t->cols[check_column(L, t, 2)];
  int32_t code;
  if (c->type != LQ_CATEGORY && c->type != LQ_TAGS)
    return luaL_error(L, "column '%s' is %s, not a category or tags column", c->name, lq_type_name(c->type));
  lua_createtable(L, c->dict.count, 0);
  for (code = 0; code < c->dict.count; code++) {
    size_t len;
    const char *s = lq_dict_string(&c->dict, code, &len);
    lua_pushlstring(L, s, len);
    lua_rawseti(L, -2, (int)code + 1);
  }
  return 1;
}

/* t:counts(name): how many rows hold each value of a category column, { value = n }, and the rows
** with none under "(none)" (as leadq.util.tally counts a column's values, without the column in Lua). */
static int t_counts(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  const lq_column *c = t->cols[check_column(L, t, 2)];
  size_t *counts, missing = 0, r;
  int32_t code;
  if (c->type != LQ_CATEGORY)
    return luaL_error(L, "column '%s' is %s, not a category column", c->name, lq_type_name(c->type));
  counts = (size_t *)lq_newuserdata(L, ((size_t)c->dict.count + 1) * sizeof(size_t));
  memset(counts, 0, ((size_t)c->dict.count + 1) * sizeof(size_t));
  for (r = 0; r < t->nrows; r++) {
    int32_t k = c->codes[r];
    if (k >= 0 && k < c->dict.count) counts[k]++;
    else missing++;
  }
  lua_createtable(L, 0, c->dict.count + 1);
  for (code = 0; code < c->dict.count; code++) {
    size_t len;
    const char *s;
    if (counts[code] == 0) continue;
    s = lq_dict_string(&c->dict, code, &len);
    lua_pushlstring(L, s, len);
    lq_push_number(L, (double)counts[code]);
    lua_rawset(L, -3);
  }
  if (missing > 0) {
    lq_push_number(L, (double)missing);
    lua_setfield(L, -2, "(none)");
  }
  return 1;
}

/* t:rows_above(name, x): the rows (from 1, in order) whose number or time in column name is above x;
** missing values are not. What `leadq score --as-of` leaves out, without the column in Lua. */
static int t_rows_above(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  const lq_column *c = t->cols[check_column(L, t, 2)];
  double x = (double)luaL_checknumber(L, 3);
  size_t r;
  int n = 0;
  if (c->type != LQ_NUMBER && c->type != LQ_TIME)
    return luaL_error(L, "column '%s' is %s, not a number or time column", c->name, lq_type_name(c->type));
  lua_createtable(L, 0, 0);
  for (r = 0; r < t->nrows; r++)
    if (c->numbers[r] > x) {   /* NaN, missing, is never above */
      lq_push_number(L, (double)r + 1);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* t:read_chunks(): how the CSV reader split the file: chunks, joined past their first line, read
** again (for tests and timings; 1, 0, 0 for a file read on one thread). */
static int t_read_chunks(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  lua_pushinteger(L, (lua_Integer)(t->read_chunks[0] > 0 ? t->read_chunks[0] : 1));
  lua_pushinteger(L, (lua_Integer)t->read_chunks[1]);
  lua_pushinteger(L, (lua_Integer)t->read_chunks[2]);
  return 3;
}

static int t_rejects(lua_State *L) {
  lq_table *t = lq_check_table(L, 1);
  size_t i;
  char message[LQ_MESSAGE_MAX];
  lua_createtable(L, t->nrejects < 0x7fffffff ? (int)t->nrejects : 0, 0);
  for (i = 0; i < t->nrejects; i++) {
    const lq_reject *r = &t->rejects[i];
    lua_createtable(L, 0, 7);
    lua_pushstring(L, t->source ? t->source : "[table]");
    lua_setfield(L, -2, "file");
    push_count(L, (size_t)r->line);
    lua_setfield(L, -2, "line");
    push_count(L, (size_t)r->record);
    lua_setfield(L, -2, "record");
    if (r->column >= 0 && r->column < t->ncols) {
      lua_pushstring(L, t->cols[r->column]->name);
      lua_setfield(L, -2, "column");
      push_count(L, (size_t)r->column + 1);
      lua_setfield(L, -2, "column_number");
    }
    lua_pushstring(L, r->reason);
    lua_setfield(L, -2, "reason");
    lq_reject_message(t, r, message, sizeof message);
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_rawseti(L, -2, (int)i + 1);
  }
  set_display(L, REJECTS_DISPLAY);
  return 1;
}

static int t_reject_count(lua_State *L) {
  push_count(L, lq_check_table(L, 1)->nrejects);
  return 1;
}

static int t_is_events(lua_State *L) {
  lua_pushboolean(L, (lq_check_table(L, 1)->flags & LQ_TABLE_EVENTS) != 0);
  return 1;
}

static int t_memory(lua_State *L) {
  push_count(L, lq_table_memory(lq_check_table(L, 1)));
  return 1;
}

/* ---- tostring: the schema and the first rows, aligned ---- */

/* Characters (UTF-8 code points) in s[0..len). */
static size_t display_width(const char *s, size_t len) {
  size_t w = 0, i;
  for (i = 0; i < len; i++) w += ((unsigned char)s[i] & 0xC0) != 0x80;
  return w;
}

/* Copy at most LQ_SHOW_WIDTH characters of s into buf, "..." marking a cut. */
static size_t clip(const char *s, size_t len, char *buf, size_t size) {
  size_t i, w = 0, o = 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch & 0xC0) != 0x80) {
      if (w == LQ_SHOW_WIDTH - 3 && display_width(s + i, len - i) > 3) {
        memcpy(buf + o, "...", 3);
        return o + 3;
      }
      w++;
    }
    if (o + 4 >= size) break;
    buf[o++] = (ch < 32) ? ' ' : (char)ch;
  }
  return o;
}

static size_t format_cell(const lq_column *c, size_t row, char *buf, size_t size) {
  char tmp[256];
  size_t len = 0;
  if (lq_column_is_missing(c, row)) return clip("nil", 3, buf, size);
  switch (c->type) {
    case LQ_NUMBER: {
      int n = snprintf(tmp, sizeof tmp, "%.14g", c->numbers[row]);
      len = n > 0 ? (size_t)n : 0;
      return clip(tmp, len, buf, size);
    }
    case LQ_TIME:
      len = lq_format_time(c->numbers[row], 0, tmp, sizeof tmp);
      return clip(tmp, len, buf, size);
    case LQ_BOOLEAN:
      return clip(c->bools[row] ? "true" : "false", c->bools[row] ? 4 : 5, buf, size);
    case LQ_CATEGORY: {
      const char *s = lq_dict_string(&c->dict, c->codes[row], &len);
      return clip(s, len, buf, size);
    }
    case LQ_TEXT:
      return clip(c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]), buf, size);
    case LQ_TAGS: {
      uint64_t k;
      for (k = c->tag_offsets[row]; k < c->tag_offsets[row + 1]; k++) {
        size_t l;
        const char *s = lq_dict_string(&c->dict, c->tag_codes[k], &l);
        if (len + l + 2 >= sizeof tmp) break;
        if (len > 0) tmp[len++] = c->tag_separator;
        memcpy(tmp + len, s, l);
        len += l;
      }
      return clip(tmp, len, buf, size);
    }
    default:
      return 0;
  }
}

static void add_padded(luaL_Buffer *b, const char *s, size_t len, size_t width, int last) {
  size_t w = display_width(s, len);
  luaL_addlstring(b, s, len);
  if (!last) {
    for (; w < width + 2; w++) luaL_addchar(b, ' ');
  }
}

static int t_tostring(lua_State *L) {
  table_box *box = check_box(L, 1);
  lq_table *t = box->t;
  luaL_Buffer b;
  char line[160];
  char cell[LQ_SHOW_WIDTH * 4 + 8];
  size_t *widths;
  size_t shown, r;
  int i;
  if (t == NULL) {
    lua_pushliteral(L, "leadq.Table (closed)");
    return 1;
  }
  shown = t->nrows < LQ_SHOW_ROWS ? t->nrows : LQ_SHOW_ROWS;
  widths = (size_t *)lq_newuserdata(L, (size_t)(t->ncols > 0 ? t->ncols : 1) * sizeof(size_t));
  for (i = 0; i < t->ncols; i++) {
    const lq_column *c = t->cols[i];
    size_t w = display_width(cell, clip(c->name, strlen(c->name), cell, sizeof cell));
    size_t tw = strlen(lq_type_name(c->type));
    if (tw > w) w = tw;
    for (r = 0; r < shown; r++) {
      size_t cw = display_width(cell, format_cell(c, r, cell, sizeof cell));
      if (cw > w) w = cw;
    }
    widths[i] = w;
  }
  luaL_buffinit(L, &b);
  snprintf(line, sizeof line, "leadq.Table: %lu row%s, %d column%s", (unsigned long)t->nrows,
           t->nrows == 1 ? "" : "s", t->ncols, t->ncols == 1 ? "" : "s");
  luaL_addstring(&b, line);
  if (t->flags & LQ_TABLE_EVENTS) luaL_addstring(&b, " (events)");
  if (t->nrejects > 0) {
    snprintf(line, sizeof line, ", %lu rejected row%s (see :rejects())", (unsigned long)t->nrejects,
             t->nrejects == 1 ? "" : "s");
    luaL_addstring(&b, line);
  }
  if (t->ncols > 0) {
    luaL_addchar(&b, '\n');
    for (i = 0; i < t->ncols; i++) {
      size_t len = clip(t->cols[i]->name, strlen(t->cols[i]->name), cell, sizeof cell);
      add_padded(&b, cell, len, widths[i], i == t->ncols - 1);
    }
    luaL_addchar(&b, '\n');
    for (i = 0; i < t->ncols; i++) {
      const char *tn = lq_type_name(t->cols[i]->type);
      add_padded(&b, tn, strlen(tn), widths[i], i == t->ncols - 1);
    }
    for (r = 0; r < shown; r++) {
      luaL_addchar(&b, '\n');
      for (i = 0; i < t->ncols; i++) {
        size_t len = format_cell(t->cols[i], r, cell, sizeof cell);
        add_padded(&b, cell, len, widths[i], i == t->ncols - 1);
      }
    }
    if (t->nrows > shown) {
      snprintf(line, sizeof line, "\n... %lu more row%s", (unsigned long)(t->nrows - shown),
               t->nrows - shown == 1 ? "" : "s");
      luaL_addstring(&b, line);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- module functions ---- */

static int l_parse_time(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  double v;
  char quoted[128];
  if (lq_scan_time(s, len, &v)) {
    lq_push_number(L, v);
    return 1;
  }
  lq_quote_value(s, len, quoted, sizeof quoted);
  lua_pushnil(L);
  lua_pushfstring(L, "%s is not an ISO 8601 date or time", quoted);
  return 2;
}

static int l_format_time(lua_State *L) {
  double v = (double)luaL_checknumber(L, 1);
  char buf[64];
  size_t len = lq_format_time(v, 1, buf, sizeof buf);
  lua_pushlstring(L, buf, len);
  return 1;
}

/* core.display() -> the metatables of rows and reject lists, for leadq.display to give a __tostring. */
static int l_display(lua_State *L) {
  luaL_getmetatable(L, ROW_DISPLAY);
  luaL_getmetatable(L, REJECTS_DISPLAY);
  return 2;
}

static int l_is_table(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, TABLE_TYPE) != NULL);
  return 1;
}

static const luaL_Reg table_methods[] = {
  { "row", t_row },
  { "rows", t_rows },
  { "column", t_column },
  { "type", t_type },
  { "has", t_has },
  { "schema", t_schema },
  { "names", t_names },
  { "rejects", t_rejects },
  { "categories", t_categories },
  { "counts", t_counts },
  { "rows_above", t_rows_above },
  { "read_chunks", t_read_chunks },
  { "reject_count", t_reject_count },
  { "append", t_append },
  { "is_events", t_is_events },
  { "memory", t_memory },
  { "close", t_close },
  { NULL, NULL }
};

static const luaL_Reg table_meta[] = {
  { "__len", t_len },
  { "__gc", t_close },
  { "__close", t_close },
  { "__tostring", t_tostring },
  { NULL, NULL }
};

static const luaL_Reg module_functions[] = {
  { "table", l_table },
  { "parse_time", l_parse_time },
  { "format_time", l_format_time },
  { "is_table", l_is_table },
  { "display", l_display },
  { NULL, NULL }
};

void lq_open_table(lua_State *L) {
  lq_new_class(L, TABLE_TYPE, table_meta, table_methods);
  luaL_newmetatable(L, ROW_DISPLAY);     /* empty until leadq.display fills them: plain tables */
  luaL_newmetatable(L, REJECTS_DISPLAY);
  lua_pop(L, 2);
  luaL_setfuncs(L, module_functions, 0);
}
