/* p:score, the bulk path: a program bound to a lead table (with its features and an earlier
** model's results), its Lua function rules run per lead into columns, then the C pass over every
** row on several threads, into a results table. See program_binding.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "program_binding.h"

typedef struct cursor {
  size_t row;
} cursor;

/* ---- the lead a rule function sees ---- */

/* __index of a bulk lead: the cursor's row in the lead table, then features, then results.
** Upvalues: the cursor, and a list of the tables' userdata (so a lead kept past its run never
** reads freed memory: the tables stay alive, or raise when closed). */
static int cursor_index(lua_State *L) {
  cursor *c = (cursor *)lua_touserdata(L, lua_upvalueindex(1));
  const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  int i;
  if (key != NULL) {
    for (i = 1; i <= 3; i++) {
      const lq_table *t;
      int col;
      lua_rawgeti(L, lua_upvalueindex(2), i);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        continue;
      }
      t = lq_check_table(L, -1);
      lua_pop(L, 1);
      if (c->row >= t->nrows) continue;
      col = lq_table_find(t, key);
      if (col >= 0) {
        if (!lq_push_cell(L, t->cols[col], c->row)) lua_pushnil(L);
        return 1;
      }
    }
  }
  lua_pushnil(L);
  return 1;
}

/* Push a proxy table over rows of the tables at stack indexes lead, features, results. */
static cursor *push_lead_proxy(lua_State *L, int lead, int features, int results) {
  cursor *c;
  lua_newtable(L);                         /* proxy */
  lua_createtable(L, 0, 3);                /* its metatable */
  c = (cursor *)lq_newuserdata(L, sizeof(cursor));
  c->row = 0;
  lua_createtable(L, 3, 0);
  lua_pushvalue(L, lead);
  lua_rawseti(L, -2, 1);
  if (features != 0 && !lua_isnoneornil(L, features)) {
    lua_pushvalue(L, features);
    lua_rawseti(L, -2, 2);
  }
  if (results != 0 && !lua_isnoneornil(L, results)) {
    lua_pushvalue(L, results);
    lua_rawseti(L, -2, 3);
  }
  lua_pushcclosure(L, cursor_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, lq_lead_readonly_error);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  return c;
}

/* ---- binding userdata ---- */

int lq_binding_gc(lua_State *L) {
  binding_box *b = (binding_box *)luaL_checkudata(L, 1, BINDING_TYPE);
  lq_allocator *a = &b->alloc;
  int i;
  if (!b->ready) return 0;
  lq_run_free(&b->run, a);
  if (b->scratches != NULL) {
    for (i = 0; i < b->nscratch; i++) lq_scratch_free(&b->scratches[i], a);
  }
  lq_mem_free(a, b->scratches, LQ_MAX_THREADS * sizeof(lq_scratch));
  if (b->masks != NULL) {
    for (i = 0; i < b->nfields; i++) lq_mem_free(a, b->masks[i], b->buf_rows);
  }
  if (b->values != NULL) {
    for (i = 0; i < b->nfields; i++) lq_mem_free(a, b->values[i], b->buf_rows * sizeof(double));
  }
  lq_mem_free(a, b->masks, (size_t)b->nfields * sizeof(uint8_t *));
  lq_mem_free(a, b->values, (size_t)b->nfields * sizeof(double *));
  lq_mem_free(a, b->rule_mask, b->buf_rows);
  lq_mem_free(a, b->lut_dict, (size_t)b->nleaves * sizeof(lq_dict *));
  if (b->derived != NULL) {
    for (i = 0; i < b->nfields; i++) lq_text_codes_free(&b->derived[i], a);
  }
  lq_mem_free(a, b->derived, (size_t)b->nfields * sizeof(lq_text_codes));
  memset(b, 0, sizeof *b);
  return 0;
}

/* The binding of program `pb` (at index pidx) to the lead table at index lidx, made on first use. */
static binding_box *get_binding(lua_State *L, program_box *pb, int pidx, int lidx) {
  binding_box *b;
  lua_getuservalue(L, pidx);
  lua_rawgeti(L, -1, UV_CACHE);
  lua_pushvalue(L, lidx);
  lua_rawget(L, -2);
  b = (binding_box *)luaL_testudata(L, -1, BINDING_TYPE);
  if (b != NULL) {
    lua_pop(L, 3);
    return b;
  }
  lua_pop(L, 1);
  b = (binding_box *)lq_newuserdata(L, sizeof(binding_box));
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BINDING_TYPE);
  b->alloc = lq_lua_allocator(L);
  b->ready = 1;
  lua_pushvalue(L, lidx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);      /* cache[lead] = binding (kept alive by the cache while the lead lives) */
  lua_pop(L, 3);
  if (lq_run_init(&b->run, pb->prog, &b->alloc) != 0) luaL_error(L, "not enough memory");
  b->nfields = pb->nfields;
  b->nleaves = pb->prog->nleaves;
  NEW_ARRAY(L, &b->alloc, b->lut_dict, b->nleaves, const lq_dict *);
  NEW_ARRAY(L, &b->alloc, b->scratches, LQ_MAX_THREADS, lq_scratch);
  NEW_ARRAY(L, &b->alloc, b->masks, b->nfields, uint8_t *);
  NEW_ARRAY(L, &b->alloc, b->values, b->nfields, double *);
  NEW_ARRAY(L, &b->alloc, b->derived, b->nfields, lq_text_codes);
  {
    int f;
    for (f = 0; f < b->nfields; f++) lq_text_codes_init(&b->derived[f]);
  }
  return b;
}

/* A new, empty result table on the stack (its big columns on huge pages: lq_lua_allocator). */
static lq_table *push_result_table(lua_State *L) {
  lq_table **slot = lq_push_table_box(L);
  *slot = lq_table_new(lq_lua_allocator(L));
  if (*slot == NULL) luaL_error(L, "not enough memory");
  return *slot;
}



/* Function columns and the rule mask, sized for nrows. */
static void binding_buffers(lua_State *L, program_box *pb, binding_box *b, size_t nrows) {
  lq_allocator *a = &b->alloc;
  int f;
  if (pb->nprepass == 0 || b->buf_rows == nrows) return;
  for (f = 0; f < b->nfields; f++) {
    lq_mem_free(a, b->masks[f], b->buf_rows);
    lq_mem_free(a, b->values[f], b->buf_rows * sizeof(double));
    b->masks[f] = NULL;
    b->values[f] = NULL;
  }
  lq_mem_free(a, b->rule_mask, b->buf_rows);
  b->rule_mask = NULL;
  b->buf_rows = nrows;
  NEW_ARRAY(L, a, b->rule_mask, nrows, uint8_t);
  for (f = 0; f < b->nfields; f++) {
    if (pb->source[f] != SRC_FUNCTION) continue;
    if (pb->view_kind[f] == LQ_VIEW_MASK) NEW_ARRAY(L, a, b->masks[f], nrows, uint8_t);
    else NEW_ARRAY(L, a, b->values[f], nrows, double);
  }
}

/* Point every field slot at its column; names at index `names`. */
static void bind_views(lua_State *L, program_box *pb, binding_box *b, lq_table *const tables[3], size_t nrows,
                       int names) {
  int f, i;
  lq_run *run = &b->run;
  for (f = 0; f < pb->nfields; f++) {
    lq_view *v = &run->views[f];
    int src = pb->source[f];
    memset(v, 0, sizeof *v);
    v->kind = LQ_VIEW_ABSENT;
    if (src == SRC_FUNCTION) {
      if (pb->view_kind[f] == LQ_VIEW_MASK) {
        v->kind = LQ_VIEW_MASK;
        v->bytes = b->masks[f];
      } else {
        v->kind = LQ_VIEW_VALUES;
        v->numbers = b->values[f];
      }
    } else if (src <= SRC_RESULTS && tables[src] != NULL) {
      const lq_table *t = tables[src];
      int col;
      lua_rawgeti(L, names, f + 1);
      col = lq_table_find(t, lua_tostring(L, -1));
      if (col >= 0) {
        if (t->nrows < nrows)
          luaL_error(L, "column '%s' has %d rows, the leads %d", lua_tostring(L, -1), (int)t->nrows, (int)nrows);
        lq_view_of_column(v, t->cols[col]);
        if ((int)v->kind != pb->view_kind[f])
          luaL_error(L, "column '%s' is not of the type the model was compiled for (%s)", lua_tostring(L, -1),
                     lq_type_name(t->cols[col]->type));
        if (v->kind == LQ_VIEW_TEXT && src == SRC_LEAD) {
          lq_text_codes *d = &b->derived[f];
          int fresh = lq_text_codes_update(d, &b->alloc, t->cols[col], nrows);
          if (fresh < 0) luaL_error(L, "not enough memory");
          if (fresh) {
            for (i = 0; i < run->nleaves; i++) {
              if (pb->prog->leaves[i].field == f) b->lut_dict[i] = NULL;   /* a new dictionary */
            }
          }
          memset(v, 0, sizeof *v);
          v->kind = LQ_VIEW_CODES;
          v->codes = d->codes;
          v->dict = &d->dict;
        }
      }
      lua_pop(L, 1);
    }
  }
  /* Per-code tables survive between runs only for the lead table's own dictionaries. */
  for (i = 0; i < run->nleaves; i++) {
    const lq_leaf *lf = &pb->prog->leaves[i];
    const lq_dict *d = run->views[lf->field].dict;
    if (lf->kind != LQ_LEAF_STRING) continue;
    if (pb->source[lf->field] != SRC_LEAD || b->lut_dict[i] != d) run->lut_sizes[i] = 0;
    b->lut_dict[i] = d;
  }
}


/* The id of lead `row` for messages: its id column when there is one, else its row number. */
static const char *lead_name(const lq_table *t, int id_col, size_t row, char *buf, size_t size) {
  if (id_col >= 0 && !lq_column_is_missing(t->cols[id_col], row)) {
    const lq_column *c = t->cols[id_col];
    size_t len = 0;
    const char *s = NULL;
    if (c->type == LQ_CATEGORY) s = lq_dict_string(&c->dict, c->codes[row], &len);
    else if (c->type == LQ_TEXT) { s = c->text + c->offsets[row]; len = (size_t)(c->offsets[row + 1] - c->offsets[row]); }
    else if (c->type == LQ_NUMBER) { snprintf(buf, size, "'%.17g' (row %lu)", c->numbers[row], (unsigned long)row + 1); return buf; }
    if (s != NULL) {
      snprintf(buf, size, "'%.*s' (row %lu)", (int)(len > 64 ? 64 : len), s, (unsigned long)row + 1);
      return buf;
    }
  }
  snprintf(buf, size, "at row %lu", (unsigned long)row + 1);
  return buf;
}

/* The lead's Lua functions over rows [begin, end), each into its column; errors into log. A lead
** they see is a read-only proxy over the row (lead, features, results at lidx, lidx + 1, lidx + 2). */
void lq_run_lead_functions(lua_State *L, program_box *pb, binding_box *b, int lidx, lq_table *const tables[3],
                           size_t begin, size_t end, int uv, error_log *log, int id_col) {
  const lq_table *lead = tables[SRC_LEAD];
  int k, fns, owners, proxy, top = lua_gettop(L);
  cursor *cur;
  char who[128];
  if (pb->nprepass == 0 || end <= begin) return;
  cur = push_lead_proxy(L, lidx, tables[SRC_FEATURES] ? lidx + 1 : 0, tables[SRC_RESULTS] ? lidx + 2 : 0);
  proxy = lua_gettop(L);
  lua_rawgeti(L, uv, UV_FUNCS);
  fns = lua_gettop(L);
  lua_rawgeti(L, uv, UV_OWNERS);
  owners = lua_gettop(L);
  for (k = 0; k < pb->nprepass; k++) {
    const prepass *pp = &pb->pre[k];
    size_t row;
    if (!pp->points) {
      uint8_t *mask = b->masks[pp->slot];
      for (row = begin; row < end; row++) {
        cur->row = row;
        lua_rawgeti(L, fns, k + 1);
        lua_pushvalue(L, proxy);
        if (lua_pcall(L, 1, 1, 0) != 0) {
          mask[row] = 0;
          lq_log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else {
          mask[row] = (uint8_t)lua_toboolean(L, -1);
          lua_pop(L, 1);
        }
      }
    } else {
      /* a points function runs only where its rule's condition holds */
      double *values = b->values[pp->slot];
      lq_program_rule_mask(&b->run, &b->scratches[0], pp->rule, begin, end, b->rule_mask);
      for (row = begin; row < end; row++) {
        values[row] = 0.0;
        if (!b->rule_mask[row - begin]) continue;
        cur->row = row;
        lua_rawgeti(L, fns, k + 1);
        lua_pushvalue(L, proxy);
        if (lua_pcall(L, 1, 1, 0) != 0) {
          lq_log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else if (lua_type(L, -1) != LUA_TNUMBER || !isfinite((double)lua_tonumber(L, -1))) {
          const char *tn = lua_type(L, -1) == LUA_TNUMBER ? "a number that is not finite" : luaL_typename(L, -1);
          lua_pop(L, 1);
          lua_pushfstring(L, "the points function returned %s, not a number", tn);
          lq_log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else {
          values[row] = (double)lua_tonumber(L, -1);
          lua_pop(L, 1);
        }
      }
    }
  }
  lua_settop(L, top);
}

/* Result columns: prefix + total, status, grade, groups..., reason, disqualified_by. */

/* A result column: added, or (refill) the results' own column of that name and type. */
static int add_result_column(lua_State *L, lq_table *t, const char *prefix, const char *name, lq_type type,
                             int refill) {
  int col;
  lua_pushfstring(L, "%s%s", prefix, name);
  if (refill) {
    col = lq_table_find(t, lua_tostring(L, -1));
    if (col < 0 || t->cols[col]->type != type)
      luaL_error(L, "into: not a result of this model (no %s column '%s')",
                 type == LQ_NUMBER ? "number" : "category", lua_tostring(L, -1));
    lua_pop(L, 1);
    return col;
  }
  col = lq_table_add_column(t, lua_tostring(L, -1), type);
  if (col == -2) luaL_error(L, "the results already have a column '%s'", lua_tostring(L, -1));
  if (col < 0) luaL_error(L, "not enough memory");
  lua_pop(L, 1);
  return col;
}

static void intern_all(lua_State *L, lq_table *t, int col, int list, int32_t *codes) {
  int i, n = (int)lua_rawlen(L, list);
  for (i = 0; i < n; i++) {
    size_t len;
    const char *s;
    int32_t code;
    lua_rawgeti(L, list, i + 1);
    s = lua_tolstring(L, -1, &len);
    code = lq_dict_intern(&t->cols[col]->dict, &t->alloc, s, len);
    lua_pop(L, 1);
    if (code < 0) luaL_error(L, "not enough memory");
    if (codes != NULL) codes[i] = code;
    else if (code != i) luaL_error(L, "two statuses or grades have the same name '%s'", s);
  }
}

/* Small per-run arrays, in one userdata block on the stack: an error cannot leak them. */
typedef struct run_arrays {
  int32_t *rule_reason, *disq_reason;
  double **group_cols;
  int *group_col_index;
} run_arrays;

static void push_run_arrays(lua_State *L, const lq_program *p, run_arrays *ra) {
  size_t nr = (size_t)p->nrules, nd = (size_t)p->ndisq, ng = (size_t)p->ngroups;
  size_t size = ng * sizeof(double *) + (nr + nd) * sizeof(int32_t) + ng * sizeof(int) + 16;
  char *q = (char *)lua_newuserdata(L, size);
  memset(q, 0, size);
  ra->group_cols = (double **)(void *)q; q += ng * sizeof(double *);
  ra->rule_reason = (int32_t *)(void *)q; q += nr * sizeof(int32_t);
  ra->disq_reason = (int32_t *)(void *)q; q += nd * sizeof(int32_t);
  ra->group_col_index = (int *)(void *)q;
}

/* Make sure the binding has `threads` scratches. */
static void binding_scratches(lua_State *L, binding_box *b, const lq_program *p, int threads) {
  if (threads < 1) threads = 1;
  while (b->nscratch < threads) {
    if (lq_scratch_init(&b->scratches[b->nscratch], p, &b->alloc) != 0) {
      lq_scratch_free(&b->scratches[b->nscratch], &b->alloc);
      luaL_error(L, "not enough memory");
    }
    b->nscratch++;
  }
}

void lq_check_lead_tables(lua_State *L, program_box *pb, lq_table *tables[3]) {
  if (pb->record_mode) luaL_error(L, "this program scores one lead at a time (compiled without a table)");
  tables[SRC_LEAD] = lq_check_table(L, 2);
  tables[SRC_FEATURES] = lua_isnoneornil(L, 3) ? NULL : lq_check_table(L, 3);
  tables[SRC_RESULTS] = lua_isnoneornil(L, 4) ? NULL : lq_check_table(L, 4);
}

binding_box *lq_bind_tables(lua_State *L, program_box *pb, int pidx, int lidx, lq_table *const tables[3],
                            double as_of, int threads, int uv) {
  size_t nrows = tables[SRC_LEAD]->nrows;
  binding_box *b = get_binding(L, pb, pidx, lidx);
  binding_buffers(L, pb, b, nrows);
  lua_rawgeti(L, uv, UV_NAMES);
  bind_views(L, pb, b, tables, nrows, lua_gettop(L));
  lua_pop(L, 1);
  lq_run_set_as_of(&b->run, as_of);
  lq_build_luts(L, &b->run, uv);
  binding_scratches(L, b, pb->prog, threads);
  return b;
}

/* p:score(lead, features, results, prefix, as_of, threads, raise, id_column, refill, fired)
**   -> results, errors[, fired bits]
** refill: results is an earlier result of this program over as many rows, written again in place
** (its memory is reused: no allocation, no fresh pages). fired: also return, as one string, a bit set
** per rule then per disqualifier, each of ceil(rows / 64) 64-bit words: bit i % 64 of word i / 64
** set where the condition held for row i + 1 (byte i / 8, bit i % 8 on a little-endian machine). */
int lq_method_score(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  lq_program *p = pb->prog;
  lq_table *tables[3];
  lq_table *out_t;
  const char *prefix = luaL_optstring(L, 5, "");
  double as_of = (double)luaL_checknumber(L, 6);
  int threads = (int)luaL_optinteger(L, 7, 1);
  int refill = lua_toboolean(L, 10);
  int want_fired = lua_toboolean(L, 11);
  uint64_t *fired_block = NULL;
  size_t fired_size = 0;
  int g, uv, out_idx, id_col = -1, total_col, status_col, grade_col, reason_col, disq_col;
  size_t nrows, batches;
  binding_box *b;
  lq_out out;
  error_log log;
  run_arrays ra;

  lq_check_lead_tables(L, pb, tables);
  nrows = tables[SRC_LEAD]->nrows;
  if (lua_type(L, 9) == LUA_TSTRING) id_col = lq_table_find(tables[SRC_LEAD], lua_tostring(L, 9));
  if (refill && (tables[SRC_RESULTS] == NULL || tables[SRC_RESULTS]->nrows != nrows))
    return luaL_error(L, "into: the results have %d rows, the leads %d",
                      tables[SRC_RESULTS] == NULL ? 0 : (int)tables[SRC_RESULTS]->nrows, (int)nrows);
  if (threads < 1) threads = 1;
  if (threads > LQ_MAX_THREADS) threads = LQ_MAX_THREADS;
  batches = (nrows + LQ_BATCH - 1) / LQ_BATCH;
  if ((size_t)threads > batches) threads = batches > 0 ? (int)batches : 1;
  lua_settop(L, 9);
  memset(&log, 0, sizeof log);
  log.raise = lua_toboolean(L, 8);
  lua_pushnil(L);
  log.slot = lua_gettop(L);   /* the errors of Lua functions: nil until the first */
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);

  /* The results table: the one given, or a new one. */
  if (tables[SRC_RESULTS] == NULL) {
    out_t = push_result_table(L);
  } else {
    lua_pushvalue(L, 4);
    out_t = tables[SRC_RESULTS];
    if (out_t->nrows != nrows && !(out_t->nrows == 0 && out_t->ncols == 0))
      return luaL_error(L, "the results table has %d rows, the leads %d", (int)out_t->nrows, (int)nrows);
  }
  out_idx = lua_gettop(L);

  b = lq_bind_tables(L, pb, 1, 2, tables, as_of, threads, uv);
  lq_run_lead_functions(L, pb, b, 2, tables, 0, nrows, uv, &log, id_col);

  /* Columns, with dictionaries interned in the order the program counts them. */
  push_run_arrays(L, p, &ra);
  total_col = add_result_column(L, out_t, prefix, "total", LQ_NUMBER, refill);
  status_col = add_result_column(L, out_t, prefix, "status", LQ_CATEGORY, refill);
  grade_col = p->ngrades > 0 ? add_result_column(L, out_t, prefix, "grade", LQ_CATEGORY, refill) : -1;
  lua_rawgeti(L, uv, UV_GROUPS);
  for (g = 0; g < p->ngroups; g++) {
    ra.group_col_index[g] = -1;
    if (pb->group_hidden[g]) continue;
    lua_rawgeti(L, -1, g + 1);
    ra.group_col_index[g] = add_result_column(L, out_t, prefix, lua_tostring(L, -1), LQ_NUMBER, refill);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  reason_col = add_result_column(L, out_t, prefix, "reason", LQ_CATEGORY, refill);
  disq_col = add_result_column(L, out_t, prefix, "disqualified_by", LQ_CATEGORY, refill);
  if (lq_table_reserve(out_t, nrows > 0 ? nrows : 1) != 0) return luaL_error(L, "not enough memory");
  lua_rawgeti(L, uv, UV_STATUSES);
  intern_all(L, out_t, status_col, lua_gettop(L), NULL);
  lua_pop(L, 1);
  if (grade_col >= 0) {
    lua_rawgeti(L, uv, UV_GRADES);
    intern_all(L, out_t, grade_col, lua_gettop(L), NULL);
    lua_pop(L, 1);
  }
  lua_rawgeti(L, uv, UV_RULE_IDS);
  intern_all(L, out_t, reason_col, lua_gettop(L), ra.rule_reason);
  lua_pop(L, 1);
  lua_rawgeti(L, uv, UV_DISQ_REASONS);
  intern_all(L, out_t, reason_col, lua_gettop(L), ra.disq_reason);
  lua_pop(L, 1);
  lua_rawgeti(L, uv, UV_DISQ_IDS);
  intern_all(L, out_t, disq_col, lua_gettop(L), NULL);
  lua_pop(L, 1);

  memset(&out, 0, sizeof out);
  out.total = out_t->cols[total_col]->numbers;
  out.status = out_t->cols[status_col]->codes;
  out.grade = grade_col >= 0 ? out_t->cols[grade_col]->codes : NULL;
  out.reason = out_t->cols[reason_col]->codes;
  out.disqualified_by = out_t->cols[disq_col]->codes;
  for (g = 0; g < p->ngroups; g++)
    ra.group_cols[g] = ra.group_col_index[g] >= 0 ? out_t->cols[ra.group_col_index[g]]->numbers : NULL;
  out.groups = ra.group_cols;
  out.rule_reason = ra.rule_reason;
  out.disq_reason = ra.disq_reason;
  if (want_fired) {   /* the bit sets in one block owned by the stack, their pointers after them */
    size_t nsets = (size_t)(p->nrules + p->ndisq), words = (nrows + 63) / 64, k;
    uint64_t *block = (uint64_t *)lua_newuserdata(L, (nsets * words + nsets + 1) * sizeof(uint64_t));
    uint64_t **sets = (uint64_t **)(void *)(block + nsets * words);
    memset(block, 0, nsets * words * sizeof(uint64_t));
    for (k = 0; k < nsets; k++) sets[k] = block + k * words;
    out.fired_bits = sets;
    fired_block = block;
    fired_size = nsets * words * sizeof(uint64_t);
  }
  lq_program_exec_threads(&b->run, b->scratches, threads, nrows, &out);
  out_t->nrows = nrows;

  lua_pushvalue(L, out_idx);
  lua_pushvalue(L, log.slot);
  if (fired_block != NULL) {
    lua_pushlstring(L, (const char *)(void *)fired_block, fired_size);
    return 3;
  }
  return 2;
}
