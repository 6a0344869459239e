/* leadq.core.account_rollup: leads' columns -> a leadq.Table with one row per account.
**
**   core.account_rollup({ tbl, ... }, { account =, score =, top_k =, engaged_at =, personas =,
**                                      persona_names = {...}, id =, carry = {...} }) -> table
** Each named column is looked up in the listed tables in order (they must all have as many rows).
** `account` is a category column: its codes are the accounts. lua/leadq/accounts.lua validates the
** options and names; misuse that reaches here still raises.
*/
#include <math.h>
#include <string.h>
#include "compat.h"
#include "bindings.h"
#include "accounts.h"

#define ROLLUP_SCRATCH "leadq.RollupScratch"

static int scratch_gc(lua_State *L) {
  lq_rollup *r = (lq_rollup *)luaL_checkudata(L, 1, ROLLUP_SCRATCH);
  lq_rollup_free(r);
  return 0;
}

/* The column `name` from the first source table that has it. */
static const lq_column *find_column(lua_State *L, const lq_table **sources, int nsources, const char *name) {
  int s, c;
  for (s = 0; s < nsources; s++) {
    c = lq_table_find(sources[s], name);
    if (c >= 0) return sources[s]->cols[c];
  }
  luaL_error(L, "account_rollup: no column '%s' in the leads or their results", name);
  return NULL;
}

static const char *opt_string(lua_State *L, int spec, const char *key, int required) {
  const char *s;
  lua_getfield(L, spec, key);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "account_rollup: '%s' must be a column name", key);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);                 /* the string stays alive in the spec table */
  return s;
}

static int set_from(lq_table *out, int col, const lq_column *src, size_t row) {
  size_t len;
  const char *s;
  switch (src->type) {
    case LQ_NUMBER: case LQ_TIME: return lq_column_set_number(out, col, src->numbers[row]);
    case LQ_BOOLEAN: return lq_column_set_bool(out, col, src->bools[row]);
    case LQ_CATEGORY:
      s = lq_dict_string(&src->dict, src->codes[row], &len);
      return lq_column_set_string(out, col, s, len);
    case LQ_TEXT:
      return lq_column_set_string(out, col, src->text + src->offsets[row],
                                  (size_t)(src->offsets[row + 1] - src->offsets[row]));
    default: return -2;
  }
}

static int add_column(lua_State *L, lq_table *out, const char *name, lq_type type) {
  int c = lq_table_add_column(out, name, type);
  if (c == -2) luaL_error(L, "account_rollup: two result columns named '%s'", name);
  if (c < 0) luaL_error(L, "account_rollup: not enough memory");
  return c;
}

static int l_account_rollup(lua_State *L) {
  const lq_table *sources[16];
  int nsources, s, p, npersonas, ncarry;
  size_t nrows = 0, row, a, nacc;
  const char *account_name, *score_name, *personas_name, *id_name;
  const lq_column *account, *score, *personas = NULL, *id = NULL;
  const lq_column *carry[64];
  int carry_col[64];
  int64_t *carry_row;
  int top_k;
  double engaged_at;
  uint32_t *masks = NULL;
  lq_rollup *r;
  lq_allocator alloc;
  lq_table **slot, *out;
  int c_account, c_contacts, c_scored, c_engaged, c_sum, c_max, c_top_sum, c_top_mean, c_best = -1;
  int c_present, c_engaged_n, c_persona[2 * LQ_ROLLUP_MAX_PERSONAS], names_idx;
  char name[256];

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  nsources = (int)lua_rawlen(L, 1);
  if (nsources < 1 || nsources > 16) return luaL_error(L, "account_rollup: expects 1 to 16 tables");
  for (s = 0; s < nsources; s++) {
    lua_rawgeti(L, 1, s + 1);
    sources[s] = lq_check_table(L, -1);
    lua_pop(L, 1);               /* kept alive by the list */
    if (s == 0) nrows = sources[0]->nrows;
    else if (sources[s]->nrows != nrows)
      return luaL_error(L, "account_rollup: table %d has %d rows, not %d", s + 1, (int)sources[s]->nrows, (int)nrows);
  }
  account_name = opt_string(L, 2, "account", 1);
  score_name = opt_string(L, 2, "score", 1);
  personas_name = opt_string(L, 2, "personas", 0);
  id_name = opt_string(L, 2, "id", 0);
  lua_getfield(L, 2, "top_k");
  top_k = (int)luaL_optinteger(L, -1, 3);
  lua_pop(L, 1);
  if (top_k < 1 || top_k > LQ_ROLLUP_MAX_K) return luaL_error(L, "account_rollup: top_k must be 1 to %d", LQ_ROLLUP_MAX_K);
  lua_getfield(L, 2, "engaged_at");
  engaged_at = luaL_optnumber(L, -1, 0);
  lua_pop(L, 1);

  account = find_column(L, sources, nsources, account_name);
  if (account->type != LQ_CATEGORY) return luaL_error(L, "account_rollup: column '%s' must be a category", account_name);
  score = find_column(L, sources, nsources, score_name);
  if (score->type != LQ_NUMBER) return luaL_error(L, "account_rollup: column '%s' must be a number", score_name);
  if (personas_name) {
    personas = find_column(L, sources, nsources, personas_name);
    if (personas->type != LQ_NUMBER) return luaL_error(L, "account_rollup: column '%s' must be a number", personas_name);
  }
  if (id_name) {
    id = find_column(L, sources, nsources, id_name);
    if (id->type != LQ_CATEGORY && id->type != LQ_TEXT && id->type != LQ_NUMBER)
      return luaL_error(L, "account_rollup: column '%s' cannot name contacts", id_name);
  }
  lua_getfield(L, 2, "persona_names");
  names_idx = lua_gettop(L);
  npersonas = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  if (npersonas > LQ_ROLLUP_MAX_PERSONAS) return luaL_error(L, "account_rollup: at most %d personas", LQ_ROLLUP_MAX_PERSONAS);
  lua_getfield(L, 2, "carry");
  ncarry = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  if (ncarry > 64) return luaL_error(L, "account_rollup: at most 64 carried columns");
  for (s = 0; s < ncarry; s++) {
    lua_rawgeti(L, -1, s + 1);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "account_rollup: carry[%d] must be a column name", s + 1);
    carry[s] = find_column(L, sources, nsources, lua_tostring(L, -1));
    if (carry[s]->type == LQ_TAGS) return luaL_error(L, "account_rollup: cannot carry the tags column '%s'", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);                 /* carry; persona_names stays at names_idx */

  /* scratch owned by Lua values on the stack: an error anywhere below leaks nothing */
  alloc = lq_lua_allocator(L);
  r = (lq_rollup *)lq_newuserdata(L, sizeof *r);
  lq_rollup_init(r, alloc);
  if (luaL_newmetatable(L, ROLLUP_SCRATCH)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  nacc = (size_t)account->dict.count;
  if (personas) {
    masks = (uint32_t *)lq_newuserdata(L, (nrows ? nrows : 1) * sizeof *masks);
    for (row = 0; row < nrows; row++) {
      double m = personas->numbers[row];
      masks[row] = (m == m && m > 0 && m < 4294967296.0) ? (uint32_t)m : 0;
    }
  }
  carry_row = (int64_t *)lq_newuserdata(L, (nacc ? nacc : 1) * sizeof *carry_row * (size_t)(ncarry ? ncarry : 1));
  if (lq_rollup_run(r, nacc, top_k, engaged_at, nrows, account->codes, score->numbers, masks) != 0)
    return luaL_error(L, "account_rollup: not enough memory");
  for (s = 0; s < ncarry; s++) {   /* each carried column: the first contact (in row order) with a value */
    int64_t *first = carry_row + (size_t)s * nacc;
    for (a = 0; a < nacc; a++) first[a] = -1;
    for (row = 0; row < nrows; row++) {
      int32_t acc = account->codes[row];
      if (acc >= 0 && first[acc] < 0 && !lq_column_is_missing(carry[s], row)) first[acc] = (int64_t)row;
    }
  }

  slot = lq_push_table_box(L);     /* owns the result as soon as there is one */
  out = *slot = lq_table_new(alloc);
  if (!out) return luaL_error(L, "account_rollup: not enough memory");
  c_account = add_column(L, out, "account", LQ_CATEGORY);
  c_contacts = add_column(L, out, "contacts", LQ_NUMBER);
  c_scored = add_column(L, out, "scored_contacts", LQ_NUMBER);
  c_engaged = add_column(L, out, "engaged_contacts", LQ_NUMBER);
  c_sum = add_column(L, out, "score_sum", LQ_NUMBER);
  c_max = add_column(L, out, "score_max", LQ_NUMBER);
  c_top_sum = add_column(L, out, "top_sum", LQ_NUMBER);
  c_top_mean = add_column(L, out, "top_mean", LQ_NUMBER);
  if (id) c_best = add_column(L, out, "best_contact", id->type);   /* text stays text: no dictionary */
  c_present = add_column(L, out, "personas_present", LQ_NUMBER);
  c_engaged_n = add_column(L, out, "personas_engaged", LQ_NUMBER);
  for (p = 0; p < npersonas; p++) {
    const char *pn;
    lua_rawgeti(L, names_idx, p + 1);
    pn = lua_tostring(L, -1);
    if (!pn) return luaL_error(L, "account_rollup: persona_names[%d] must be a string", p + 1);
    snprintf(name, sizeof name, "%s_present", pn);
    c_persona[2 * p] = add_column(L, out, name, LQ_BOOLEAN);
    snprintf(name, sizeof name, "%s_engaged", pn);
    c_persona[2 * p + 1] = add_column(L, out, name, LQ_BOOLEAN);
    lua_pop(L, 1);
  }
  for (s = 0; s < ncarry; s++) {
    int c = lq_table_add_column(out, carry[s]->name, carry[s]->type);
    if (c == -2) return luaL_error(L, "account_rollup: two result columns named '%s'", carry[s]->name);
    if (c < 0) return luaL_error(L, "account_rollup: not enough memory");
    carry_col[s] = c;
  }
  if (lq_table_reserve(out, nacc) != 0) return luaL_error(L, "account_rollup: not enough memory");
  if (id && id->type == LQ_TEXT) {  /* the best contacts' ids in one allocation, not grown row by row */
    size_t bytes = 0;
    for (a = 0; a < nacc; a++) {
      int64_t b = r->accounts[a].best_row;
      if (b >= 0) bytes += (size_t)(id->offsets[b + 1] - id->offsets[b]);
    }
    if (lq_column_reserve_text(out, c_best, bytes + 1) != 0) return luaL_error(L, "account_rollup: not enough memory");
  }
  for (a = 0; a < nacc; a++) {
    size_t len;
    const char *acc_name;
    int status = 0, npresent = 0, nengaged = 0;
    int32_t code;
    const lq_rollup_account *ra = &r->accounts[a];
    if (ra->contacts == 0) continue;
    if (lq_table_begin_row(out) != 0) return luaL_error(L, "account_rollup: not enough memory");
    /* the names are distinct and hashed already: intern with the source's hash */
    acc_name = lq_dict_string(&account->dict, (int32_t)a, &len);
    code = lq_dict_intern_hash(&out->cols[c_account]->dict, &out->alloc, acc_name, len, account->dict.hashes[a]);
    if (code < 0) status = -1;
    else out->cols[c_account]->codes[out->nrows] = code;
    status |= lq_column_set_number(out, c_contacts, ra->contacts);
    status |= lq_column_set_number(out, c_scored, ra->scored);
    status |= lq_column_set_number(out, c_engaged, ra->engaged);
    status |= lq_column_set_number(out, c_sum, ra->sum);
    status |= lq_column_set_number(out, c_max, ra->max);
    status |= lq_column_set_number(out, c_top_sum, lq_rollup_top_sum(r, a));
    status |= lq_column_set_number(out, c_top_mean, lq_rollup_top_mean(r, a));
    if (id && ra->best_row >= 0) status |= set_from(out, c_best, id, (size_t)ra->best_row);
    for (p = 0; p < npersonas; p++) {
      int present = (ra->present >> p) & 1u, engaged = (ra->engaged_personas >> p) & 1u;
      npresent += present;
      nengaged += engaged;
      status |= lq_column_set_bool(out, c_persona[2 * p], present);
      status |= lq_column_set_bool(out, c_persona[2 * p + 1], engaged);
    }
    status |= lq_column_set_number(out, c_present, npresent);
    status |= lq_column_set_number(out, c_engaged_n, nengaged);
    for (s = 0; s < ncarry; s++) {
      int64_t first = carry_row[(size_t)s * nacc + a];
      if (first >= 0) status |= set_from(out, carry_col[s], carry[s], (size_t)first);
    }
    if (status != 0) {
      lq_table_cancel_row(out);
      return luaL_error(L, "account_rollup: not enough memory");
    }
    lq_table_end_row(out);
  }
  return 1;
}

/* core.dedupe_tables(leads, merged_rows [, events, column, from, to]) -> leads, events
** A copy of the leads without the rows listed in merged_rows (1-based), and a copy of the events with
** every `column` value from[i] replaced by to[i] (the merged leads' ids -> their survivors' ids).
** lua/leadq/accounts.lua decides who merges into whom; this does the copying, a column at a time. */
static int l_dedupe_tables(lua_State *L) {
  const lq_table *leads = lq_check_table(L, 1), *events = NULL;
  lq_allocator alloc;
  uint8_t *skip;
  size_t nmerged, i, n = 0;
  lq_table **slot;
  int status, col = -1;
  const char **from = NULL, **to = NULL;
  size_t *from_len = NULL, *to_len = NULL;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) {
    const char *name = luaL_checkstring(L, 4);
    events = lq_check_table(L, 3);
    luaL_checktype(L, 5, LUA_TTABLE);
    luaL_checktype(L, 6, LUA_TTABLE);
    col = lq_table_find(events, name);
    if (col < 0) return luaL_error(L, "dedupe: no column '%s' in the events", name);
    if (events->cols[col]->type != LQ_CATEGORY)
      return luaL_error(L, "dedupe: the events' column '%s' must be a category, not %s", name,
                        lq_type_name(events->cols[col]->type));
    n = (size_t)lua_rawlen(L, 5);
    if ((size_t)lua_rawlen(L, 6) != n) return luaL_error(L, "dedupe: as many survivors as merged ids expected");
  }
  alloc = lq_lua_allocator(L);
  /* scratch: userdata on the stack, collected whatever happens below */
  skip = (uint8_t *)lq_newuserdata(L, leads->nrows ? leads->nrows : 1);
  memset(skip, 0, leads->nrows ? leads->nrows : 1);
  nmerged = (size_t)lua_rawlen(L, 2);
  for (i = 1; i <= nmerged; i++) {
    lua_Integer row;
    lua_rawgeti(L, 2, (lua_Integer)i);
    row = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (row < 1 || (size_t)row > leads->nrows)
      return luaL_error(L, "dedupe: merged row %d is not a row of the leads", (int)row);
    skip[row - 1] = 1;
  }
  if (events) {
    from = (const char **)lq_newuserdata(L, (n ? n : 1) * sizeof *from);
    to = (const char **)lq_newuserdata(L, (n ? n : 1) * sizeof *to);
    from_len = (size_t *)lq_newuserdata(L, (n ? n : 1) * sizeof *from_len);
    to_len = (size_t *)lq_newuserdata(L, (n ? n : 1) * sizeof *to_len);
    for (i = 0; i < n; i++) {       /* the strings stay alive in the lists (arguments 5 and 6) */
      lua_rawgeti(L, 5, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "dedupe: merged id %d must be a string", (int)i + 1);
      from[i] = lua_tolstring(L, -1, &from_len[i]);
      lua_rawgeti(L, 6, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "dedupe: survivor id %d must be a string", (int)i + 1);
      to[i] = lua_tolstring(L, -1, &to_len[i]);
      lua_pop(L, 2);
    }
  }
  slot = lq_push_table_box(L);       /* owns the copy as soon as there is one */
  if ((*slot = lq_table_new(alloc)) == NULL) return luaL_error(L, "dedupe: not enough memory");
  if (lq_table_copy_rows(*slot, leads, skip) != 0) return luaL_error(L, "dedupe: not enough memory");
  if (!events) {
    lua_pushvalue(L, 3);
    return 2;
  }
  slot = lq_push_table_box(L);
  if ((*slot = lq_table_new(alloc)) == NULL) return luaL_error(L, "dedupe: not enough memory");
  status = lq_table_copy_rows(*slot, events, NULL);
  if (status == 0) status = lq_column_replace_values(*slot, col, n, from, from_len, to, to_len);
  if (status != 0) return luaL_error(L, "dedupe: not enough memory");
  return 2;
}

void lq_open_accounts(lua_State *L) {
  lua_pushcfunction(L, l_account_rollup);
  lua_setfield(L, -2, "account_rollup");
  lua_pushcfunction(L, l_dedupe_tables);
  lua_setfield(L, -2, "dedupe_tables");
}
