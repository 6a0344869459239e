/* leadq.core bins and fits: the Lua side of bins.c and fit.c.
**
**   core.bin_columns(columns, options) -> bins, info
**       columns: { { table, name }, ... } (all tables the same number of rows); options: max_bins,
**       min_count, max_values. info[j] = { name, kind = "number"|"category"|"boolean", nbins,
**       missing = bin, other = bin or nil, integral = boolean, bins = { [bin] = { lo, hi, upper }
**       (number) | { value } (category) | { value = true|false } (boolean) } }; bins are 1-based
**   bins:counts(outcome) -> { { leads = { per bin }, positives = { per bin } }, ... }
**       outcome: a string of one byte per row, 0 negative, 1 positive, other left out
**   bins:fit(outcome, options) -> { intercept, shapes = { { per bin }, ... }, pairs = { { a, b, na, nb,
**       coarse_a = { per fine bin }, coarse_b, score = { na * nb, row-major }, gain }, ... }, rounds,
**       best_round, pair_rounds, train_rows, validation_rows, train_loss, validation_loss }
**       options: learning_rate, max_rounds, patience, validation_share, l2, min_samples,
**       interactions, pair_bins, max_train_rows, refit (0|1), seed; nil, message when the outcome has one class
**   bins:totals(points, pairs[, outcome]) -> { total per row } (only rows whose outcome is 0 or 1
**       when outcome is given); points[j][bin], pairs as fit gives them with `points` for `score`
**   bins:pair_counts(pair, outcome) -> leads, positives: per cell of a pair, over the labelled rows
**   #bins (columns), bins:rows(), bins:close()
*/
#include <math.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "bins.h"
#include "fit.h"

#define BINS_TYPE "leadq.Bins"

typedef struct bins_box {
  lq_allocator a;
  int ncols;
  size_t nrows;
  lq_binned *cols;
} bins_box;

static bins_box *check_bins(lua_State *L, int i) {
  bins_box *b = (bins_box *)luaL_checkudata(L, i, BINS_TYPE);
  if (b->cols == NULL) luaL_argerror(L, i, "the bins are closed");
  return b;
}

static int bins_close(lua_State *L) {
  bins_box *b = (bins_box *)luaL_checkudata(L, 1, BINS_TYPE);
  if (b->cols != NULL) {
    int j;
    for (j = 0; j < b->ncols; j++) lq_binned_free(&b->cols[j], &b->a);
    b->a.fn(b->a.ud, b->cols, sizeof(lq_binned) * (size_t)b->ncols, 0);
    b->cols = NULL;
    b->ncols = 0;
  }
  return 0;
}

static int opt_int(lua_State *L, int t, const char *key, int dflt, int lo, int hi) {
  int v = dflt;
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1)) {
    lua_Number n = lua_tonumber(L, -1);
    if (!lua_isnumber(L, -1) || n != floor(n) || n < lo || n > hi)
      luaL_error(L, "option %s must be a whole number from %d to %d", key, lo, hi);
    v = (int)n;
  }
  lua_pop(L, 1);
  return v;
}

static double opt_number(lua_State *L, int t, const char *key, double dflt, double lo, double hi) {
  double v = dflt;
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "option %s must be a number", key);
    v = (double)lua_tonumber(L, -1);
    if (!(v >= lo && v <= hi)) luaL_error(L, "option %s must be from %g to %g", key, lo, hi);
  }
  lua_pop(L, 1);
  return v;
}

static void set_number(lua_State *L, const char *key, double v) {
  lq_push_number(L, v);
  lua_setfield(L, -2, key);
}

/* One column's description, for profile's labels and fit's rule conditions. */
static void push_info(lua_State *L, const lq_table *t, int col, const lq_binned *b) {
  int k;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, t->cols[col]->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, b->kind == LQ_BIN_NUMBER ? "number" : b->kind == LQ_BIN_CATEGORY ? "category" : "boolean");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, lq_type_name(t->cols[col]->type));
  lua_setfield(L, -2, "type");
  set_number(L, "nbins", b->nbins);
  set_number(L, "missing", b->missing + 1);
  if (b->other >= 0) set_number(L, "other", b->other + 1);
  lua_pushboolean(L, b->integral);
  lua_setfield(L, -2, "integral");
  lua_createtable(L, b->nbins, 0);
  for (k = 0; k < b->nvalues; k++) {
    lua_createtable(L, 0, 3);
    if (b->kind == LQ_BIN_NUMBER) {
      if (b->lo[k] <= b->hi[k]) {
        set_number(L, "lo", b->lo[k]);
        set_number(L, "hi", b->hi[k]);
      }
      if (k > 0) set_number(L, "above", b->cuts[k - 1]);
      if (k < b->nvalues - 1) set_number(L, "upper", b->cuts[k]);
    } else if (b->kind == LQ_BIN_CATEGORY) {
      size_t len;
      const char *s = lq_dict_string(&t->cols[col]->dict, b->codes[k], &len);
      lua_pushlstring(L, s, len);
      lua_setfield(L, -2, "value");
    } else {
      lua_pushboolean(L, k == 1);
      lua_setfield(L, -2, "value");
    }
    lua_rawseti(L, -2, k + 1);
  }
  if (b->other >= 0) {
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "other");
    lua_rawseti(L, -2, b->other + 1);
  }
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "missing");
  lua_rawseti(L, -2, b->missing + 1);
  lua_setfield(L, -2, "bins");
}

static int l_bin_columns(lua_State *L) {
  lq_bin_options opt;
  bins_box *b;
  int n, j;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  else {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  opt.max_bins = opt_int(L, 2, "max_bins", 32, 2, LQ_BINS_MAX);
  opt.min_count = opt_int(L, 2, "min_count", 20, 1, 1 << 30);
  opt.max_values = opt_int(L, 2, "max_values", 60, 1, LQ_BINS_MAX);
  n = (int)lua_rawlen(L, 1);
  if (n < 1) return luaL_argerror(L, 1, "no column to bin");
  b = (bins_box *)lq_newuserdata(L, sizeof(bins_box));   /* 3: safe to collect before it owns memory */
  memset(b, 0, sizeof *b);
  b->a = lq_lua_allocator(L);
  luaL_setmetatable(L, BINS_TYPE);
  lua_createtable(L, n, 0);                              /* 4: info */
  b->cols = (lq_binned *)b->a.fn(b->a.ud, NULL, 0, sizeof(lq_binned) * (size_t)n);
  if (b->cols == NULL) return luaL_error(L, "not enough memory to bin %d columns", n);
  memset(b->cols, 0, sizeof(lq_binned) * (size_t)n);
  for (j = 0; j < n; j++) {
    const lq_table *t;
    const char *name;
    int col, rc;
    lua_rawgeti(L, 1, j + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "column %d must be { table, name }", j + 1);
    lua_rawgeti(L, -1, 1);
    t = lq_check_table(L, -1);
    lua_rawgeti(L, -2, 2);
    name = lua_tostring(L, -1);
    if (name == NULL) return luaL_error(L, "column %d must be { table, name }", j + 1);
    col = lq_table_find(t, name);
    if (col < 0) return luaL_error(L, "no column '%s' to bin", name);
    if (j == 0) b->nrows = t->nrows;
    else if (t->nrows != b->nrows)
      return luaL_error(L, "column '%s' has %d rows, the first column %d", name, (int)t->nrows, (int)b->nrows);
    rc = lq_bin_column(t, col, &opt, &b->a, &b->cols[j]);
    if (rc == -2) return luaL_error(L, "column '%s' is %s: only numbers, times, categories and booleans have bins",
                                    name, lq_type_name(t->cols[col]->type));
    if (rc != 0) return luaL_error(L, "not enough memory to bin column '%s'", name);
    b->ncols = j + 1;
    push_info(L, t, col, &b->cols[j]);                  /* info[j + 1] */
    lua_rawseti(L, 4, j + 1);
    lua_pop(L, 3);
  }
  return 2;
}

static const uint8_t *check_outcome(lua_State *L, int i, const bins_box *b) {
  size_t len;
  const char *s = luaL_checklstring(L, i, &len);
  if (len != b->nrows)
    luaL_error(L, "the outcome has %d bytes for %d rows", (int)len, (int)b->nrows);
  return (const uint8_t *)s;
}

static void push_doubles(lua_State *L, const double *v, int n) {
  int k;
  lua_createtable(L, n, 0);
  for (k = 0; k < n; k++) {
    lq_push_number(L, v[k]);
    lua_rawseti(L, -2, k + 1);
  }
}

static int l_counts(lua_State *L) {
  bins_box *b = check_bins(L, 1);
  const uint8_t *y = check_outcome(L, 2, b);
  double leads[LQ_BINS_MAX + 2], positives[LQ_BINS_MAX + 2];
  int j;
  lua_createtable(L, b->ncols, 0);
  for (j = 0; j < b->ncols; j++) {
    lq_bin_counts(&b->cols[j], y, leads, positives);
    lua_createtable(L, 0, 2);
    push_doubles(L, leads, b->cols[j].nbins);
    lua_setfield(L, -2, "leads");
    push_doubles(L, positives, b->cols[j].nbins);
    lua_setfield(L, -2, "positives");
    lua_rawseti(L, -2, j + 1);
  }
  return 1;
}

typedef struct fit_box { lq_allocator a; lq_fit_result r; const lq_binned **cols; int ncols; } fit_box;

static int fit_box_gc(lua_State *L) {
  fit_box *f = (fit_box *)lua_touserdata(L, 1);
  lq_fit_free(&f->r, &f->a);
  if (f->cols != NULL) f->a.fn(f->a.ud, (void *)f->cols, sizeof(lq_binned *) * (size_t)f->ncols, 0);
  f->cols = NULL;
  return 0;
}

static void push_bytes_as_bins(lua_State *L, const uint8_t *v, int n) {
  int k;
  lua_createtable(L, n, 0);
  for (k = 0; k < n; k++) {
    lua_pushinteger(L, (lua_Integer)v[k] + 1);
    lua_rawseti(L, -2, k + 1);
  }
}

static int l_fit(lua_State *L) {
  bins_box *b = check_bins(L, 1);
  const uint8_t *y = check_outcome(L, 2, b);
  lq_fit_options opt;
  fit_box *f;
  int j, rc;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  else {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  lq_fit_default_options(&opt);
  opt.learning_rate = opt_number(L, 3, "learning_rate", opt.learning_rate, 1e-6, 1.0);
  opt.max_rounds = opt_int(L, 3, "max_rounds", opt.max_rounds, 1, 100000);
  opt.patience = opt_int(L, 3, "patience", opt.patience, 1, 100000);
  opt.validation_share = opt_number(L, 3, "validation_share", opt.validation_share, 0.0, 0.9);
  opt.l2 = opt_number(L, 3, "l2", opt.l2, 0.0, 1e9);
  opt.min_samples = opt_int(L, 3, "min_samples", opt.min_samples, 0, 1 << 30);
  opt.interactions = opt_int(L, 3, "interactions", opt.interactions, 0, 1000);
  opt.pair_bins = opt_int(L, 3, "pair_bins", opt.pair_bins, 2, 16);
  opt.max_train_rows = (size_t)opt_number(L, 3, "max_train_rows", (double)opt.max_train_rows, 0, 1e12);
  opt.seed = (uint64_t)opt_number(L, 3, "seed", 1, 0, 9007199254740991.0);
  opt.refit = opt_int(L, 3, "refit", opt.refit, 0, 1);
  f = (fit_box *)lq_newuserdata(L, sizeof(fit_box));     /* 4: frees the result if a push raises */
  memset(f, 0, sizeof *f);
  f->a = b->a;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fit_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  f->cols = (const lq_binned **)f->a.fn(f->a.ud, NULL, 0, sizeof(lq_binned *) * (size_t)b->ncols);
  if (f->cols == NULL) return luaL_error(L, "not enough memory to fit");
  f->ncols = b->ncols;
  for (j = 0; j < b->ncols; j++) f->cols[j] = &b->cols[j];
  rc = lq_fit(f->cols, b->ncols, y, &opt, &f->a, &f->r);
  if (rc == -2) {
    lua_pushnil(L);
    lua_pushliteral(L, "the outcome needs both positive and negative leads to fit");
    return 2;
  }
  if (rc != 0) return luaL_error(L, "not enough memory to fit");
  lua_createtable(L, 0, 12);
  set_number(L, "intercept", f->r.intercept);
  lua_createtable(L, f->r.ncols, 0);
  for (j = 0; j < f->r.ncols; j++) {
    push_doubles(L, f->r.shape[j], f->r.nbins[j]);
    lua_rawseti(L, -2, j + 1);
  }
  lua_setfield(L, -2, "shapes");
  lua_createtable(L, f->r.npairs, 0);
  for (j = 0; j < f->r.npairs; j++) {
    const lq_fit_pair *p = &f->r.pairs[j];
    lua_createtable(L, 0, 8);
    set_number(L, "a", p->a + 1);
    set_number(L, "b", p->b + 1);
    set_number(L, "na", p->na);
    set_number(L, "nb", p->nb);
    set_number(L, "gain", p->gain);
    push_bytes_as_bins(L, p->coarse_a, f->r.nbins[p->a]);
    lua_setfield(L, -2, "coarse_a");
    push_bytes_as_bins(L, p->coarse_b, f->r.nbins[p->b]);
    lua_setfield(L, -2, "coarse_b");
    push_doubles(L, p->score, p->na * p->nb);
    lua_setfield(L, -2, "score");
    lua_rawseti(L, -2, j + 1);
  }
  lua_setfield(L, -2, "pairs");
  set_number(L, "rounds", f->r.rounds);
  set_number(L, "best_round", f->r.best_round);
  set_number(L, "pair_rounds", f->r.pair_rounds);
  set_number(L, "train_rows", (double)f->r.train_rows);
  set_number(L, "validation_rows", (double)f->r.validation_rows);
  set_number(L, "train_loss", f->r.train_loss);
  set_number(L, "validation_loss", f->r.validation_loss);
  return 1;
}

/* Reads t[key] (or t[i] when key is NULL) as a list of n numbers into v. */
static void read_numbers(lua_State *L, int t, int n, double *v, const char *what) {
  int k;
  for (k = 0; k < n; k++) {
    lua_rawgeti(L, t, k + 1);
    if (!lua_isnumber(L, -1)) luaL_error(L, "%s: entry %d must be a number", what, k + 1);
    v[k] = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
}

static int l_totals(lua_State *L) {
  bins_box *b = check_bins(L, 1);
  const uint8_t *y = NULL;
  double *points;
  size_t i, out = 0;
  int j, npairs;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) y = check_outcome(L, 4, b);
  lua_settop(L, 3);
  points = (double *)lua_newuserdata(L, sizeof(double) * (b->nrows > 0 ? b->nrows : 1));   /* 4: scratch */
  for (i = 0; i < b->nrows; i++) points[i] = 0.0;
  for (j = 0; j < b->ncols; j++) {
    double v[LQ_BINS_MAX + 2];
    const uint8_t *bin = b->cols[j].row_bin;
    lua_rawgeti(L, 2, j + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "points for column %d must be a list", j + 1);
    read_numbers(L, lua_gettop(L), b->cols[j].nbins, v, "points");
    lua_pop(L, 1);
    for (i = 0; i < b->nrows; i++) points[i] += v[bin[i]];
  }
  npairs = lua_isnil(L, 3) ? 0 : (int)lua_rawlen(L, 3);
  for (j = 0; j < npairs; j++) {
    int pa, pb, na, nb, k, top;
    double cells[289];
    uint8_t ca[LQ_BINS_MAX + 2], cb[LQ_BINS_MAX + 2];
    double tmp[LQ_BINS_MAX + 2];
    lua_rawgeti(L, 3, j + 1);
    top = lua_gettop(L);
    pa = opt_int(L, top, "a", 0, 1, b->ncols) - 1;
    pb = opt_int(L, top, "b", 0, 1, b->ncols) - 1;
    na = opt_int(L, top, "na", 0, 1, 17);
    nb = opt_int(L, top, "nb", 0, 1, 17);
    if (pa < 0 || pb < 0 || na < 1 || nb < 1) return luaL_error(L, "pair %d needs a, b, na and nb", j + 1);
    lua_getfield(L, top, "coarse_a");
    read_numbers(L, lua_gettop(L), b->cols[pa].nbins, tmp, "coarse_a");
    for (k = 0; k < b->cols[pa].nbins; k++) {
      if (tmp[k] < 1 || tmp[k] > na) return luaL_error(L, "coarse_a: bin %d out of range", k + 1);
      ca[k] = (uint8_t)(tmp[k] - 1);
    }
    lua_getfield(L, top, "coarse_b");
    read_numbers(L, lua_gettop(L), b->cols[pb].nbins, tmp, "coarse_b");
    for (k = 0; k < b->cols[pb].nbins; k++) {
      if (tmp[k] < 1 || tmp[k] > nb) return luaL_error(L, "coarse_b: bin %d out of range", k + 1);
      cb[k] = (uint8_t)(tmp[k] - 1);
    }
    lua_getfield(L, top, "points");
    read_numbers(L, lua_gettop(L), na * nb, cells, "pair points");
    lua_settop(L, top - 1);
    {
      const uint8_t *ba = b->cols[pa].row_bin, *bb = b->cols[pb].row_bin;
      for (i = 0; i < b->nrows; i++) points[i] += cells[ca[ba[i]] * nb + cb[bb[i]]];
    }
  }
  lua_createtable(L, (int)b->nrows, 0);
  for (i = 0; i < b->nrows; i++) {
    if (y != NULL && y[i] > 1) continue;
    lq_push_number(L, points[i]);
    lua_rawseti(L, -2, (lua_Integer)++out);
  }
  return 1;
}

/* Leads and positives per cell of a pair (as fit gives it) over the labelled rows. */
static int l_pair_counts(lua_State *L) {
  bins_box *b = check_bins(L, 1);
  const uint8_t *y;
  double tmp[LQ_BINS_MAX + 2], leads[289], positives[289];
  uint8_t ca[LQ_BINS_MAX + 2], cb[LQ_BINS_MAX + 2];
  int pa, pb, na, nb, k;
  size_t i;
  luaL_checktype(L, 2, LUA_TTABLE);
  y = check_outcome(L, 3, b);
  pa = opt_int(L, 2, "a", 0, 1, b->ncols) - 1;
  pb = opt_int(L, 2, "b", 0, 1, b->ncols) - 1;
  na = opt_int(L, 2, "na", 0, 1, 17);
  nb = opt_int(L, 2, "nb", 0, 1, 17);
  if (pa < 0 || pb < 0 || na < 1 || nb < 1) return luaL_error(L, "the pair needs a, b, na and nb");
  lua_getfield(L, 2, "coarse_a");
  read_numbers(L, lua_gettop(L), b->cols[pa].nbins, tmp, "coarse_a");
  for (k = 0; k < b->cols[pa].nbins; k++) {
    if (tmp[k] < 1 || tmp[k] > na) return luaL_error(L, "coarse_a: bin %d out of range", k + 1);
    ca[k] = (uint8_t)(tmp[k] - 1);
  }
  lua_getfield(L, 2, "coarse_b");
  read_numbers(L, lua_gettop(L), b->cols[pb].nbins, tmp, "coarse_b");
  for (k = 0; k < b->cols[pb].nbins; k++) {
    if (tmp[k] < 1 || tmp[k] > nb) return luaL_error(L, "coarse_b: bin %d out of range", k + 1);
    cb[k] = (uint8_t)(tmp[k] - 1);
  }
  memset(leads, 0, sizeof leads);
  memset(positives, 0, sizeof positives);
  for (i = 0; i < b->nrows; i++) {
    int cell;
    if (y[i] > 1) continue;
    cell = ca[b->cols[pa].row_bin[i]] * nb + cb[b->cols[pb].row_bin[i]];
    leads[cell] += 1.0;
    positives[cell] += (double)y[i];
  }
  push_doubles(L, leads, na * nb);
  push_doubles(L, positives, na * nb);
  return 2;
}

static int l_len(lua_State *L) {
  lua_pushinteger(L, check_bins(L, 1)->ncols);
  return 1;
}

static int l_rows(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_bins(L, 1)->nrows);
  return 1;
}

void lq_open_fit(lua_State *L) {
  static const luaL_Reg meta[] = {
    { "__gc", bins_close }, { "__close", bins_close }, { "__len", l_len }, { NULL, NULL } };
  static const luaL_Reg methods[] = {
    { "counts", l_counts }, { "fit", l_fit }, { "totals", l_totals }, { "pair_counts", l_pair_counts },
    { "rows", l_rows },
    { "close", bins_close }, { NULL, NULL } };
  lq_new_class(L, BINS_TYPE, meta, methods);
  lua_pushcfunction(L, l_bin_columns);
  lua_setfield(L, -2, "bin_columns");
}
