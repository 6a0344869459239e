/* leadq.core evaluate: the Lua side of evaluate.c.
**
**   core.evaluate(results, score, labels[, options]) -> a plain table of counts and statistics
**     results: a leadq table; score: its number column to evaluate (e.g. "total");
**     labels: a string of one byte per row (0 negative, 1 positive, else left out: leadq.outcome);
**     options: status = COLUMN, grade = COLUMN (category columns of results), fired = the bits of
**       model:score's `fired` with nsets = and words =, bands = calibration bands (default 10).
**   core.wilson(k, n) -> lo, hi          95% Wilson interval of k in n
**   core.rate_ratio(a, n1, c, n0) -> ratio, lo, hi   (a/n1) / (c/n0) with its 95% interval
** Misuse raises. */
#include <math.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "evaluate.h"

static void set_number(lua_State *L, const char *key, double v) {
  if (isnan(v) || isinf(v)) return;   /* absent: JSON has no such numbers */
  lq_push_number(L, v);
  lua_setfield(L, -2, key);
}

static double rate_of(uint64_t k, uint64_t n) {
  return n == 0 ? NAN : (double)k / (double)n;
}

/* { lo, hi, leads, positives, rate, rate_low, rate_high, lift } */
static void push_group(lua_State *L, const lq_eval_group *g, double base) {
  double lo, hi, rate = rate_of(g->positives, g->leads);
  lua_createtable(L, 0, 8);
  set_number(L, "lo", g->lo);
  set_number(L, "hi", g->hi);
  set_number(L, "leads", (double)g->leads);
  set_number(L, "positives", (double)g->positives);
  set_number(L, "rate", rate);
  lq_wilson(g->positives, g->leads, LQ_EVAL_Z95, &lo, &hi);
  set_number(L, "rate_low", lo);
  set_number(L, "rate_high", hi);
  set_number(L, "lift", base > 0 ? rate / base : NAN);
}

/* A category column's codes and names (its dictionary), or raises. */
static const lq_column *category_column(lua_State *L, const lq_table *t, int opts, const char *key) {
  const char *name;
  int c;
  lua_getfield(L, opts, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  name = lua_tostring(L, -1);
  if (name == NULL) luaL_error(L, "evaluate: options.%s must be a column name", key);
  c = lq_table_find(t, name);
  if (c < 0) luaL_error(L, "evaluate: the results have no column '%s'", name);
  if (t->cols[c]->type != LQ_CATEGORY) luaL_error(L, "evaluate: column '%s' is not a category column", name);
  lua_pop(L, 1);
  return t->cols[c];
}

/* { { name =, leads =, share =, positives =, precision =, precision_low =, precision_high =, recall =,
**     lift = }, ... } in code order; codes without a used lead are left out. */
static void push_codes(lua_State *L, const lq_column *col, const uint64_t *leads, const uint64_t *pos,
                       const lq_eval_out *out) {
  int32_t code;
  int k = 0;
  double base = rate_of(out->positives, out->leads);
  lua_newtable(L);
  for (code = 0; code < col->dict.count; code++) {
    double lo, hi, precision;
    size_t len;
    const char *s;
    if (leads[code] == 0) continue;
    s = lq_dict_string(&col->dict, code, &len);
    precision = rate_of(pos[code], leads[code]);
    lua_createtable(L, 0, 9);
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, "name");
    set_number(L, "leads", (double)leads[code]);
    set_number(L, "share", rate_of(leads[code], out->leads));
    set_number(L, "positives", (double)pos[code]);
    set_number(L, "precision", precision);
    lq_wilson(pos[code], leads[code], LQ_EVAL_Z95, &lo, &hi);
    set_number(L, "precision_low", lo);
    set_number(L, "precision_high", hi);
    set_number(L, "recall", rate_of(pos[code], out->positives));
    set_number(L, "lift", base > 0 ? precision / base : NAN);
    lua_rawseti(L, -2, ++k);
  }
}

static int l_evaluate(lua_State *L) {
  const lq_table *t = lq_check_table(L, 1);
  const char *score_name = luaL_checkstring(L, 2);
  size_t nlabels;
  const char *labels = luaL_checklstring(L, 3, &nlabels);
  int c = lq_table_find(t, score_name), opts = 4, k;
  const lq_column *cols[2] = { NULL, NULL };
  lq_eval_in in;
  lq_eval_out out;
  lq_allocator a = lq_lua_allocator(L);
  uint64_t *space;
  const char *fired_bytes = NULL;
  size_t nspace;
  double base;

  if (c < 0) return luaL_error(L, "evaluate: the results have no column '%s'", score_name);
  if (t->cols[c]->type != LQ_NUMBER) return luaL_error(L, "evaluate: column '%s' is not a number column", score_name);
  if (nlabels != t->nrows)
    return luaL_error(L, "evaluate: %d labels for %d rows", (int)nlabels, (int)t->nrows);
  lua_settop(L, 4);
  if (lua_isnil(L, 4)) {
    lua_newtable(L);
    lua_replace(L, 4);
  }
  luaL_checktype(L, opts, LUA_TTABLE);
  memset(&in, 0, sizeof in);
  memset(&out, 0, sizeof out);
  in.n = t->nrows;
  in.score = t->cols[c]->numbers;
  in.label = (const uint8_t *)labels;
  cols[0] = category_column(L, t, opts, "status");
  cols[1] = category_column(L, t, opts, "grade");
  lua_getfield(L, opts, "bands");
  in.nbands = (int)luaL_optinteger(L, -1, 10);
  lua_pop(L, 1);
  if (in.nbands < 1 || in.nbands > LQ_EVAL_MAX_BANDS)
    return luaL_error(L, "evaluate: bands must be from 1 to %d", LQ_EVAL_MAX_BANDS);
  lua_getfield(L, opts, "fired");
  if (!lua_isnil(L, -1)) {
    size_t len;
    const char *bits = luaL_checklstring(L, -1, &len);
    lua_getfield(L, opts, "nsets");
    in.nsets = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, opts, "words");
    in.words = (size_t)luaL_checkinteger(L, -1);
    lua_pop(L, 2);
    if (in.nsets < 0 || in.words != (t->nrows + 63) / 64 || len != (size_t)in.nsets * in.words * 8)
      return luaL_error(L, "evaluate: the fired bits do not fit %d rows (%d sets of %d words: %d bytes, got %d)",
                        (int)t->nrows, in.nsets, (int)in.words, (int)((size_t)in.nsets * in.words * 8), (int)len);
    fired_bytes = bits;
  }
  /* the caller's arrays and an aligned copy of the bits: one block owned by the stack */
  nspace = 2 * (size_t)in.nsets + 2 + (fired_bytes != NULL ? (size_t)in.nsets * in.words : 0);
  for (k = 0; k < 2; k++) {
    if (cols[k] == NULL) continue;
    in.codes[k] = cols[k]->codes;
    in.ncodes[k] = cols[k]->dict.count;
    nspace += 2 * (size_t)in.ncodes[k];
  }
  space = (uint64_t *)lua_newuserdata(L, nspace * sizeof(uint64_t));
  {
    uint64_t *p = space;
    for (k = 0; k < 2; k++) {
      if (cols[k] == NULL) continue;
      out.code_leads[k] = p; p += in.ncodes[k];
      out.code_positives[k] = p; p += in.ncodes[k];
    }
    if (fired_bytes != NULL) {
      out.fired_leads = p; p += in.nsets;
      out.fired_positives = p; p += in.nsets;
      memcpy(p, fired_bytes, (size_t)in.nsets * in.words * sizeof(uint64_t));
      in.fired = p;
    }
  }
  if (lq_evaluate(&in, &out, &a) != 0) return luaL_error(L, "not enough memory to evaluate");

  base = rate_of(out.positives, out.leads);
  lua_createtable(L, 0, 16);
  set_number(L, "leads", (double)out.leads);
  set_number(L, "positives", (double)out.positives);
  set_number(L, "negatives", (double)out.negatives);
  set_number(L, "left_out", (double)out.left_out);
  set_number(L, "no_score", (double)out.no_score);
  set_number(L, "rate", base);
  set_number(L, "auc", out.auc);
  set_number(L, "auc_se", out.auc_se);
  set_number(L, "auc_low", out.auc_low);
  set_number(L, "auc_high", out.auc_high);
  set_number(L, "distinct_scores", (double)out.distinct_scores);
  lua_createtable(L, out.ndeciles, 0);
  {
    uint64_t cum_leads = 0, cum_pos = 0;
    for (k = 0; k < out.ndeciles; k++) {
      push_group(L, &out.deciles[k], base);
      cum_leads += out.deciles[k].leads;
      cum_pos += out.deciles[k].positives;
      lq_push_number(L, k + 1);
      lua_setfield(L, -2, "decile");
      set_number(L, "cumulative_leads", (double)cum_leads);
      set_number(L, "cumulative_rate", rate_of(cum_pos, cum_leads));
      set_number(L, "cumulative_recall", rate_of(cum_pos, out.positives));
      lua_rawseti(L, -2, k + 1);
    }
  }
  lua_setfield(L, -2, "deciles");
  lua_createtable(L, out.nbands, 0);
  for (k = 0; k < out.nbands; k++) {
    push_group(L, &out.bands[k], base);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "bands");
  if (cols[0] != NULL) {
    push_codes(L, cols[0], out.code_leads[0], out.code_positives[0], &out);
    lua_setfield(L, -2, "statuses");
  }
  if (cols[1] != NULL) {
    push_codes(L, cols[1], out.code_leads[1], out.code_positives[1], &out);
    lua_setfield(L, -2, "grades");
  }
  if (in.fired != NULL) {
    lua_createtable(L, in.nsets, 0);
    for (k = 0; k < in.nsets; k++) {
      uint64_t fl = out.fired_leads[k], fp = out.fired_positives[k];
      uint64_t nl = out.leads - fl, np = out.positives - fp;
      double lo, hi, rf = rate_of(fp, fl), ratio;
      lua_createtable(L, 0, 12);
      set_number(L, "fired", (double)fl);
      set_number(L, "share", rate_of(fl, out.leads));
      set_number(L, "positives", (double)fp);
      set_number(L, "rate_fired", rf);
      set_number(L, "rate_not_fired", rate_of(np, nl));
      set_number(L, "lift", base > 0 ? rf / base : NAN);
      lq_wilson(fp, fl, LQ_EVAL_Z95, &lo, &hi);
      set_number(L, "rate_low", lo);
      set_number(L, "rate_high", hi);
      ratio = lq_rate_ratio(fp, fl, np, nl, LQ_EVAL_Z95, &lo, &hi);
      set_number(L, "ratio", ratio);
      set_number(L, "ratio_low", lo);
      set_number(L, "ratio_high", hi);
      set_number(L, "recall", rate_of(fp, out.positives));
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "rules");
  }
  return 1;
}

static int l_wilson(lua_State *L) {
  lua_Integer k = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2);
  double lo, hi;
  luaL_argcheck(L, n >= 0 && k >= 0 && k <= n, 1, "expects 0 <= k <= n");
  lq_wilson((uint64_t)k, (uint64_t)n, LQ_EVAL_Z95, &lo, &hi);
  lua_pushnumber(L, lo);
  lua_pushnumber(L, hi);
  return 2;
}

static int l_rate_ratio(lua_State *L) {
  lua_Integer a = luaL_checkinteger(L, 1), n1 = luaL_checkinteger(L, 2);
  lua_Integer c = luaL_checkinteger(L, 3), n0 = luaL_checkinteger(L, 4);
  double lo, hi, r;
  luaL_argcheck(L, a >= 0 && a <= n1 && c >= 0 && c <= n0, 1, "expects 0 <= a <= n1 and 0 <= c <= n0");
  r = lq_rate_ratio((uint64_t)a, (uint64_t)n1, (uint64_t)c, (uint64_t)n0, LQ_EVAL_Z95, &lo, &hi);
  lua_pushnumber(L, r);
  lua_pushnumber(L, lo);
  lua_pushnumber(L, hi);
  return 3;
}

void lq_open_evaluate(lua_State *L) {
  lua_pushcfunction(L, l_evaluate);
  lua_setfield(L, -2, "evaluate");
  lua_pushcfunction(L, l_wilson);
  lua_setfield(L, -2, "wilson");
  lua_pushcfunction(L, l_rate_ratio);
  lua_setfield(L, -2, "rate_ratio");
}
