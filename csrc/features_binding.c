/* The Lua face of event features: "leadq.FeatureSet" (built from the declarations that
** lua/leadq/features.lua has validated and normalized) and "leadq.EngagementState", one lead's
** real-time state. The set's C memory is shared by its states with a reference count, so
** closing or collecting the set and its states in any order is safe. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "bindings.h"
#include "event_stream.h"
#include "feature_set.h"

#define FS_TYPE "leadq.FeatureSet"
#define STATE_TYPE "leadq.EngagementState"

#if !defined(LQ_FEATURES_MESSAGE_MAX)
#define LQ_FEATURES_MESSAGE_MAX 512
#endif

typedef struct fs_shared {
  lq_feature_set *fs;
  int refs;                 /* the set's box and every live state */
} fs_shared;

typedef struct fs_box {
  fs_shared *sh;
} fs_box;

typedef struct state_box {
  fs_shared *sh;            /* NULL once closed */
  lq_state st;
  double *scratch;          /* nslots + nfeats doubles for values() */
  char *text;               /* encode()'s buffer, kept from call to call */
  size_t text_cap;
} state_box;

static void shared_release(fs_shared *sh) {
  if (sh == NULL || --sh->refs > 0) return;
  {
    lq_allocator a = sh->fs->alloc;
    lq_fs_free(sh->fs);
    a.fn(a.ud, sh, sizeof *sh, 0);
  }
}

static fs_box *check_fs_box(lua_State *L, int arg) {
  return (fs_box *)luaL_checkudata(L, arg, FS_TYPE);
}

static lq_feature_set *check_fs(lua_State *L, int arg) {
  fs_box *box = check_fs_box(L, arg);
  if (box->sh == NULL) luaL_error(L, "attempt to use a closed feature set");
  return box->sh->fs;
}

/* self of a state method: its metatable compared with the method's upvalue (lq_new_class gives every
** method the class's metatable) first, no registry lookup by name; then the checked way, which
** also gives the usual message. */
static state_box *check_state(lua_State *L, int arg) {
  state_box *box = (state_box *)lua_touserdata(L, arg);
  if (box != NULL && lua_getmetatable(L, arg)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same && box->sh != NULL) return box;
  }
  box = (state_box *)luaL_checkudata(L, arg, STATE_TYPE);
  if (box->sh == NULL) luaL_error(L, "attempt to use a closed engagement state");
  return box;
}

/* ---- building a set from its normalized description ---- */

static void build_fail(lua_State *L, int rc, const char *what) {
  if (rc == -1) luaL_error(L, "not enough memory for the feature set");
  luaL_error(L, "feature set: %s", what);
}

static double num_field(lua_State *L, int idx, const char *key, double dflt) {
  double v = dflt;
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TNUMBER) v = (double)lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1)) luaL_error(L, "feature set description: '%s' must be a number", key);
  lua_pop(L, 1);
  return v;
}

static const char *const op_names[] = { "equals", "starts_with", "contains", "ends_with", "true", NULL };
static const char *const kind_names[] = { "count", "points", "sum", "active_days", "sessions", "decayed", "first",
                                          "last", "days_since_last", NULL };

static int string_option(lua_State *L, int idx, const char *const *names, const char *what) {
  const char *s = lua_tostring(L, idx);
  int i;
  for (i = 0; s != NULL && names[i] != NULL; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return luaL_error(L, "feature set description: bad %s '%s'", what, s ? s : "?");
}

/* filters = { { attr = "page", clauses = { { op = "starts_with", needles = { "/pricing" } } } } } */
static void add_filters(lua_State *L, lq_feature_set *fs, int idx, const char *field, int lead) {
  int i, n;
  lua_getfield(L, idx, field);
  n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (i = 1; i <= n; i++) {
    int fi = lua_gettop(L) + 1, c, nc, rc;
    size_t len;
    const char *attr;
    lua_rawgeti(L, -1, i);
    lua_getfield(L, fi, "attr");
    attr = luaL_checklstring(L, -1, &len);
    rc = lq_fs_add_filter(fs, attr, len, lead);
    if (rc < 0) build_fail(L, rc, "more than 32 different event filters");
    lua_pop(L, 1);
    lua_getfield(L, fi, "clauses");
    nc = (int)lua_rawlen(L, -1);
    for (c = 1; c <= nc; c++) {
      int k, nn;
      lua_rawgeti(L, -1, c);
      lua_getfield(L, -1, "op");
      rc = lq_fs_add_clause(fs, (lq_match_op)string_option(L, -1, op_names, "filter test"));
      if (rc < 0) build_fail(L, rc, "bad filter");
      lua_pop(L, 1);
      lua_getfield(L, -1, "needles");
      nn = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
      for (k = 1; k <= nn; k++) {
        const char *s;
        lua_rawgeti(L, -1, k);
        s = luaL_checklstring(L, -1, &len);
        rc = lq_fs_add_needle(fs, s, len);
        if (rc < 0) build_fail(L, rc, "filter text too long");
        lua_pop(L, 1);
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static void flag_types(lua_State *L, lq_feature_set *fs, int idx, const char *field, unsigned flag) {
  int i, n;
  lua_getfield(L, idx, field);
  n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    int t;
    lua_rawgeti(L, -1, i);
    s = luaL_checklstring(L, -1, &len);
    t = lq_fs_type(fs, s, len);
    if (t < 0) build_fail(L, t, "bad type");
    lq_fs_type_flag(fs, t, flag);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void add_features(lua_State *L, lq_feature_set *fs, int idx) {
  int i, n;
  lua_getfield(L, idx, "features");
  luaL_checktype(L, -1, LUA_TTABLE);
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    int fi = lua_gettop(L) + 1, k, nt, f;
    lq_feature proto;
    size_t len;
    const char *name;
    lua_rawgeti(L, -1, i);
    memset(&proto, 0, sizeof proto);
    lua_getfield(L, fi, "kind");
    proto.kind = (lq_feature_kind)string_option(L, -1, kind_names, "feature kind");
    lua_pop(L, 1);
    proto.window_days = (int)num_field(L, fi, "window_days", 0);
    proto.points = num_field(L, fi, "points", 1);
    proto.cap = num_field(L, fi, "cap", HUGE_VAL);
    proto.cap_per_day = num_field(L, fi, "cap_per_day", HUGE_VAL);
    proto.half_life = num_field(L, fi, "half_life", 86400);
    proto.session_gap = num_field(L, fi, "session_gap", 1800);
    lua_getfield(L, fi, "of_value");
    proto.of_value = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, fi, "name");
    name = luaL_checklstring(L, -1, &len);
    f = lq_fs_add_feature(fs, &proto, name, len);
    if (f < 0) build_fail(L, f, "too many features, or a window too long");
    lua_pop(L, 1);
    lua_getfield(L, fi, "types");
    nt = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    for (k = 1; k <= nt; k++) {
      const char *s;
      int t, rc;
      lua_rawgeti(L, -1, k);
      s = luaL_checklstring(L, -1, &len);
      t = (len == 1 && s[0] == '*') ? -1 : lq_fs_type(fs, s, len);
      if (t < -1) build_fail(L, t, "bad type");
      rc = lq_fs_feature_type(fs, f, t);
      if (rc < 0) build_fail(L, rc, "bad type");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, fi, "filters");   /* indexes (1-based) into the description's filters */
    nt = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    for (k = 1; k <= nt; k++) {
      int rc;
      lua_rawgeti(L, -1, k);
      rc = lq_fs_set_filter_need(fs, f, (int)lua_tointeger(L, -1) - 1);
      if (rc < 0) build_fail(L, rc, "bad filter index");
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* core.feature_set(description) */
static int l_feature_set(lua_State *L) {
  fs_box *box;
  fs_shared *sh;
  lq_allocator a = lq_lua_allocator(L);
  lq_feature_set *fs;
  int rc, k;
  luaL_checktype(L, 1, LUA_TTABLE);
  box = (fs_box *)lq_newuserdata(L, sizeof *box);    /* empty and collectable before any memory is taken */
  box->sh = NULL;
  luaL_setmetatable(L, FS_TYPE);
  sh = (fs_shared *)a.fn(a.ud, NULL, 0, sizeof *sh);
  if (sh == NULL) return luaL_error(L, "not enough memory for the feature set");
  fs = lq_fs_new(a);
  if (fs == NULL) {
    a.fn(a.ud, sh, sizeof *sh, 0);
    return luaL_error(L, "not enough memory for the feature set");
  }
  sh->fs = fs;
  sh->refs = 1;
  box->sh = sh;
  fs->lateness = num_field(L, 1, "lateness", 0);
  fs->min_page_seconds = num_field(L, 1, "min_page_seconds", 0);
  fs->scanner_seconds = num_field(L, 1, "scanner_seconds", -1);
  fs->fingerprint = (uint32_t)num_field(L, 1, "fingerprint", 0);
  add_filters(L, fs, 1, "filters", 0);
  add_filters(L, fs, 1, "lead_filters", 1);
  flag_types(L, fs, 1, "send_types", LQ_TYPE_SEND);
  flag_types(L, fs, 1, "click_types", LQ_TYPE_CLICK);
  flag_types(L, fs, 1, "page_types", LQ_TYPE_PAGE);
  add_features(L, fs, 1);
  rc = lq_fs_finish(fs);
  if (rc < 0) build_fail(L, rc, "cannot finish");
  /* The feature names as Lua strings, made once: state:values sets them without hashing C text. Each
  ** state keeps this table as its user value. */
  lua_createtable(L, fs->nfeats, 0);
  for (k = 0; k < fs->nfeats; k++) {
    lua_pushstring(L, lq_fs_feature_name(fs, k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setuservalue(L, -2);
  return 1;
}

static int fs_close(lua_State *L) {
  fs_box *box = check_fs_box(L, 1);
  fs_shared *sh = box->sh;
  box->sh = NULL;
  shared_release(sh);
  return 0;
}

static int fs_tostring(lua_State *L) {
  fs_box *box = check_fs_box(L, 1);
  if (box->sh == NULL) lua_pushliteral(L, "leadq.FeatureSet (closed)");
  else lua_pushfstring(L, "leadq.FeatureSet: %d feature%s", box->sh->fs->nfeats, box->sh->fs->nfeats == 1 ? "" : "s");
  return 1;
}

static void push_counters(lua_State *L, const double *counters) {
  lua_createtable(L, 0, 3);
  lq_push_number(L, counters[LQ_N_SHORT_PAGE]);
  lua_setfield(L, -2, "short_page_view");
  lq_push_number(L, counters[LQ_N_SCANNER]);
  lua_setfield(L, -2, "scanner_click");
  lq_push_number(L, counters[LQ_N_LEAD]);
  lua_setfield(L, -2, "flagged_lead");
}

/* The report of a bulk pass: counts, noise, and the unknown leads' rows with their ids (from the events
** table, or from the stream's copy when there is none). Frees the report's rows. */
static void push_report(lua_State *L, const lq_feature_set *fs, lq_compute_report *rep, const lq_table *events) {
  const lq_column *c = events ? events->cols[lq_table_find(events, "lead_id")] : NULL;
  const char *id = rep->unknown_ids;
  size_t i;
  /* the unknown rows are copied out first so an error cannot leak them */
  lua_createtable(L, 0, 12);
  lua_createtable(L, (int)rep->nunknown_rows, 0);
  for (i = 0; i < rep->nunknown_rows; i++) {
    size_t row = rep->unknown_rows[i], len = 0;
    const char *s = NULL;
    if (c != NULL) {
      if (c->codes[row] >= 0) s = lq_dict_string(&c->dict, c->codes[row], &len);
    } else if (id != NULL) {
      s = id;
      len = strlen(id);
      id += len + 1;
    }
    lua_createtable(L, 0, 2);
    lq_push_number(L, (double)row + 1);
    lua_setfield(L, -2, "row");
    if (s != NULL) {
      lua_pushlstring(L, s, len);
      lua_setfield(L, -2, "lead_id");
    }
    lua_rawseti(L, -2, (int)i + 1);
  }
  lq_compute_report_free(fs, rep);
  lua_setfield(L, -2, "unknown");
  lq_push_number(L, rep->events); lua_setfield(L, -2, "events");
  lq_push_number(L, rep->used); lua_setfield(L, -2, "used");
  lq_push_number(L, rep->after_as_of); lua_setfield(L, -2, "after_as_of");
  lq_push_number(L, rep->no_time); lua_setfield(L, -2, "no_time");
  lq_push_number(L, rep->ignored); lua_setfield(L, -2, "ignored");
  lq_push_number(L, rep->unknown); lua_setfield(L, -2, "unknown_leads");
  lq_push_number(L, rep->duplicate_ids); lua_setfield(L, -2, "duplicate_ids");
  if (events != NULL) {   /* an events table: how its ids met the leads' */
    lua_pushstring(L, rep->merge_joined ? "merge" : "hash");
    lua_setfield(L, -2, "join");
  }
  push_counters(L, rep->counters);
  lua_setfield(L, -2, "noise");
}

/* The options both passes take after their events: as_of, id column, max_unknown, threads. */
static void compute_options(lua_State *L, double *as_of, const char **id, size_t *max_unknown, int *threads) {
  lua_Integer mu = luaL_optinteger(L, 6, 1000), th = luaL_optinteger(L, 7, 1);
  *as_of = (double)luaL_checknumber(L, 4);
  *id = luaL_optstring(L, 5, "id");
  *max_unknown = mu < 0 ? 0 : (size_t)mu;
  *threads = th < 1 ? 1 : th > 1024 ? 1024 : (int)th;   /* the engine takes at most its own limit */
}

/* fs:_compute(leads, events, as_of, id_column, max_unknown, threads [, into]) -> table, report | nil, message
** into: an earlier result of this set for as many leads, filled again and given back (no new memory). */
static int fs_compute(lua_State *L) {
  lq_feature_set *fs = check_fs(L, 1);
  const lq_table *leads = lq_check_table(L, 2);
  const lq_table *events = lq_check_table(L, 3);
  lq_table *into = lua_isnoneornil(L, 8) ? NULL : lq_check_table(L, 8);
  const char *id;
  double as_of;
  size_t max_unknown;
  int threads, rc;
  lq_table **slot, *res;
  lq_compute_report rep;
  char err[LQ_FEATURES_MESSAGE_MAX];
  compute_options(L, &as_of, &id, &max_unknown, &threads);
  if (into != NULL) {
    lua_settop(L, 8);
    rc = lq_fs_compute_into(fs, leads, id, events, as_of, max_unknown, threads, into, &res, &rep, err, sizeof err);
  } else {
    slot = lq_push_table_box(L);         /* owns the result as soon as there is one */
    rc = lq_fs_compute(fs, leads, id, events, as_of, max_unknown, threads, slot, &rep, err, sizeof err);
  }
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  push_report(L, fs, &rep, events);
  return 2;
}

/* fs:_compute_file(leads, path, as_of, id_column, max_unknown, threads) -> table, report | nil, message
** | false, why: the events CSV streamed through the pass (event_stream.h); false when the stream
** declines the file, which is then read as a table. */
static int fs_compute_file(lua_State *L) {
  lq_feature_set *fs = check_fs(L, 1);
  const lq_table *leads = lq_check_table(L, 2);
  const char *path = luaL_checkstring(L, 3), *id;
  double as_of;
  size_t max_unknown;
  int threads, rc;
  lq_table **slot;
  lq_compute_report rep;
  char err[LQ_FEATURES_MESSAGE_MAX];
  compute_options(L, &as_of, &id, &max_unknown, &threads);
  slot = lq_push_table_box(L);
  rc = lq_fs_compute_csv(fs, leads, id, path, as_of, max_unknown, threads, slot, &rep, err, sizeof err);
  if (rc != 0) {
    if (rc > 0) lua_pushboolean(L, 0);
    else lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  push_report(L, fs, &rep, NULL);
  return 2;
}

static int fs_names(lua_State *L) {
  lq_feature_set *fs = check_fs(L, 1);
  int i;
  lua_createtable(L, fs->nfeats, 0);
  for (i = 0; i < fs->nfeats; i++) {
    lua_pushstring(L, lq_fs_feature_name(fs, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ---- states ---- */

/* A record value as the bulk path sees a column cell (see column_string in features.c). */
static const char *record_string(lua_State *L, int idx, char *tmp, size_t tmplen, size_t *len) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tolstring(L, idx, len);
    case LUA_TBOOLEAN: {
      const char *s = lua_toboolean(L, idx) ? "true" : "false";
      *len = strlen(s);
      return s;
    }
    case LUA_TNUMBER: {
      double v = (double)lua_tonumber(L, idx);
      int n;
      if (v != v) return NULL;
      if (v == floor(v) && fabs(v) < 1e15) n = snprintf(tmp, tmplen, "%.0f", v);
      else n = snprintf(tmp, tmplen, "%.17g", v);
      *len = (size_t)n;
      return tmp;
    }
    default: return NULL;
  }
}

static state_box *new_state(lua_State *L, int fs_arg, fs_shared *sh) {
  state_box *box = (state_box *)lq_newuserdata(L, sizeof *box);
  lq_feature_set *fs = sh->fs;
  memset(box, 0, sizeof *box);
  luaL_setmetatable(L, STATE_TYPE);
  if (lq_state_init(fs, &box->st) != 0) luaL_error(L, "not enough memory for an engagement state");
  box->sh = sh;
  sh->refs++;
  box->scratch = (double *)fs->alloc.fn(fs->alloc.ud, NULL, 0, (size_t)(fs->nslots + fs->nfeats + 1) * sizeof(double));
  if (box->scratch == NULL) luaL_error(L, "not enough memory for an engagement state");
  lua_getuservalue(L, fs_arg);   /* the feature names (see l_feature_set) */
  lua_setuservalue(L, -2);
  return box;
}

/* fs:state([lead]): the lead record decides the noise flag, as the leads table does in bulk */
static int fs_state(lua_State *L) {
  fs_box *fb = check_fs_box(L, 1);
  lq_feature_set *fs = check_fs(L, 1);
  state_box *box;
  int k, flagged = 0;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  for (k = 0; k < fs->nlead_filters && !lua_isnoneornil(L, 2); k++) {
    const lq_filter *fl = &fs->filters[fs->lead_filters[k]];
    char tmp[64];
    size_t len = 0;
    const char *s;
    lua_getfield(L, 2, fs->arena + fl->attr);
    s = record_string(L, -1, tmp, sizeof tmp, &len);
    if (s != NULL && lq_fs_filter_match(fs, fs->lead_filters[k], s, len)) flagged = 1;
    lua_pop(L, 1);
  }
  box = new_state(L, 1, fb->sh);
  box->st.core.flagged = flagged;
  return 1;
}

/* fs:decode(s) -> state | nil, message */
static int fs_decode(lua_State *L) {
  fs_box *fb = check_fs_box(L, 1);
  lq_feature_set *fs = check_fs(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  const char *msg = NULL;
  state_box *box = new_state(L, 1, fb->sh);
  int rc = lq_state_decode(fs, &box->st, s, len, &msg);
  if (rc < 0) return luaL_error(L, "not enough memory for an engagement state");
  if (rc > 0) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  return 1;
}

static int state_close(lua_State *L) {
  state_box *box = (state_box *)luaL_checkudata(L, 1, STATE_TYPE);
  fs_shared *sh = box->sh;
  if (sh == NULL) return 0;
  if (box->scratch != NULL)
    sh->fs->alloc.fn(sh->fs->alloc.ud, box->scratch, (size_t)(sh->fs->nslots + sh->fs->nfeats + 1) * sizeof(double), 0);
  box->scratch = NULL;
  if (box->text != NULL) sh->fs->alloc.fn(sh->fs->alloc.ud, box->text, box->text_cap, 0);
  box->text = NULL;
  box->text_cap = 0;
  lq_state_free(sh->fs, &box->st);
  box->sh = NULL;
  shared_release(sh);
  return 0;
}

static const char *type_name_of(lua_State *L, int idx) {
  return lua_typename(L, lua_type(L, idx));
}

/* state:observe(event) or state:observe(type, at [, value [, attributes]]) -> true | nil, message
** (later than the lateness: counted and rejected). The second form reads no table for the event's
** type, time and value (a host that has them in locals makes no event table, and sets no keys). */
static int state_observe(lua_State *L) {
  state_box *box = check_state(L, 1);
  lq_feature_set *fs = box->sh->fs;
  lq_event e;
  size_t len;
  const char *type;
  int rc, attrs = 2, value_at = 0;
  if (lua_type(L, 2) == LUA_TSTRING) {   /* positional: type, at, value, attributes */
    type = lua_tolstring(L, 2, &len);
    if (lua_type(L, 3) != LUA_TNUMBER)
      return luaL_error(L, "bad event: 'at' must be a number (seconds since the epoch), got %s", type_name_of(L, 3));
    e.at = (double)lua_tonumber(L, 3);
    value_at = 4;
    attrs = lua_istable(L, 5) ? 5 : 0;
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (LQ_GETFIELD_TYPE(L, 2, "type") != LUA_TSTRING)
      return luaL_error(L, "bad event: 'type' must be a string, got %s", type_name_of(L, -1));
    type = lua_tolstring(L, -1, &len);
    if (LQ_GETFIELD_TYPE(L, 2, "at") != LUA_TNUMBER)
      return luaL_error(L, "bad event: 'at' must be a number (seconds since the epoch), got %s", type_name_of(L, -1));
    e.at = (double)lua_tonumber(L, -1);
  }
  e.type = lq_fs_type_index(fs, type, len);
  if (!(e.at > -LQ_MAX_TIME && e.at < LQ_MAX_TIME))   /* also NaN */
    return luaL_error(L, "bad event: 'at' is not a time (seconds since the epoch), got %f", (lua_Number)e.at);
  e.value = NAN;
  if (fs->type_filtered[e.type] & 2) {   /* only the types whose value something reads */
    int t = value_at ? lua_type(L, value_at) : LQ_GETFIELD_TYPE(L, 2, "value");
    switch (t) {
      case LUA_TNUMBER: e.value = (double)lua_tonumber(L, value_at ? value_at : -1); break;
      case LUA_TNIL: case LUA_TNONE: break;
      default: return luaL_error(L, "bad event: 'value' must be a number, got %s", lua_typename(L, t));
    }
  }
  e.mask = 0;
  if ((fs->type_filtered[e.type] & 1) && attrs != 0) {
    int f;
    for (f = 0; f < fs->nfilters; f++) {
      const lq_filter *fl = &fs->filters[f];
      const char *s;
      if (fl->bit < 0) continue;
      lua_getfield(L, attrs, fs->arena + fl->attr);
      s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
      if (s != NULL && lq_fs_filter_match(fs, f, s, len)) e.mask |= 1u << fl->bit;
      lua_pop(L, 1);
    }
  }
  rc = lq_state_observe(fs, &box->st, &e);
  if (rc < 0) return luaL_error(L, "not enough memory for an engagement state");
  if (rc > 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "event at %f is more than %f seconds before the latest event (%f): rejected as late",
                    (lua_Number)e.at, (lua_Number)fs->lateness, (lua_Number)box->st.core.max_at);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* state:values([as_of [, into]]) -> { feature = value, ... } (missing values absent) | nil, message.
** into: a table to fill again instead of a new one (every feature set, a missing one to nil). */
static int state_values(lua_State *L) {
  state_box *box = check_state(L, 1);
  lq_feature_set *fs = box->sh->fs;
  double as_of = lua_isnoneornil(L, 2) ? (double)time(NULL) : (double)luaL_checknumber(L, 2);
  double *vals = box->scratch + fs->nslots;
  int i, into = !lua_isnoneornil(L, 3);
  if (into) luaL_checktype(L, 3, LUA_TTABLE);
  if (lq_state_values(fs, &box->st, as_of, box->scratch, vals) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "as_of %f is before events already folded into the state (latest %f)", (lua_Number)as_of,
                    (lua_Number)box->st.core.done_at);
    return 2;
  }
  lua_settop(L, 3);
  if (!into) {
    lua_createtable(L, 0, fs->nfeats);
    lua_replace(L, 3);
  }
  lua_getuservalue(L, 1);   /* 4: the feature names */
  for (i = 0; i < fs->nfeats; i++) {
    if (vals[i] != vals[i] && !into) continue;
    lua_rawgeti(L, 4, i + 1);
    if (vals[i] != vals[i]) lua_pushnil(L);
    else lq_push_number(L, vals[i]);
    lua_rawset(L, 3);
  }
  lua_settop(L, 3);
  return 1;
}

/* state:encode([prefix]) -> prefix .. the encoding, made as one string (a host that stores the
** state with a header of its own makes no second string). The buffer lives on the state (freed
** by close): no garbage per call. */
static int state_encode(lua_State *L) {
  state_box *box = check_state(L, 1);
  lq_feature_set *fs = box->sh->fs;
  size_t plen = 0, bound, len;
  const char *prefix = luaL_optlstring(L, 2, "", &plen);
  bound = plen + lq_state_encode_bound(fs, &box->st);
  if (bound > box->text_cap) {
    size_t cap = bound < 256 ? 256 : bound + bound / 2;
    char *text = (char *)fs->alloc.fn(fs->alloc.ud, box->text, box->text_cap, cap);
    if (text == NULL) return luaL_error(L, "not enough memory to encode an engagement state");
    box->text = text;
    box->text_cap = cap;
  }
  memcpy(box->text, prefix, plen);
  len = lq_state_encode(fs, &box->st, box->text + plen);
  if (len == 0) return luaL_error(L, "cannot encode the state (internal size error)");
  lua_pushlstring(L, box->text, plen + len);
  return 1;
}

/* state:decode(s [, init]) -> true | nil, message: this state becomes the one s encodes from its
** byte init on (1 by default: a host that stores a header before the encoding skips it without a
** new string); fs:decode without a new state: a host that loads a state per request keeps one.
** On failure the state is empty. */
static int state_decode(lua_State *L) {
  state_box *box = check_state(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  const char *msg = NULL;
  int rc;
  luaL_argcheck(L, init >= 1 && (size_t)(init - 1) <= len, 3, "init is outside the string");
  rc = lq_state_decode(box->sh->fs, &box->st, s + (init - 1), len - (size_t)(init - 1), &msg);
  if (rc < 0) return luaL_error(L, "not enough memory for an engagement state");
  if (rc > 0) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* state:latest() -> the time of the latest event observed (the state keeps it to judge lateness), or nil */
static int state_latest(lua_State *L) {
  state_box *box = check_state(L, 1);
  if (box->st.core.has_max) lua_pushnumber(L, (lua_Number)box->st.core.max_at);
  else lua_pushnil(L);
  return 1;
}

static int state_stats(lua_State *L) {
  state_box *box = check_state(L, 1);
  const lq_state_core *c = &box->st.core;
  lua_createtable(L, 0, 6);
  lq_push_number(L, c->counters[LQ_N_OBSERVED]); lua_setfield(L, -2, "observed");
  lq_push_number(L, c->counters[LQ_N_LATE]); lua_setfield(L, -2, "late");
  lq_push_number(L, (double)box->st.npending); lua_setfield(L, -2, "pending");
  lua_pushboolean(L, c->flagged); lua_setfield(L, -2, "flagged");
  push_counters(L, c->counters);
  lua_setfield(L, -2, "noise");
  return 1;
}

static int state_tostring(lua_State *L) {
  state_box *box = (state_box *)luaL_checkudata(L, 1, STATE_TYPE);
  if (box->sh == NULL) lua_pushliteral(L, "leadq.EngagementState (closed)");
  else lua_pushfstring(L, "leadq.EngagementState: %d event%s observed, %d pending",
                       (int)box->st.core.counters[LQ_N_OBSERVED], box->st.core.counters[LQ_N_OBSERVED] == 1 ? "" : "s",
                       (int)box->st.npending);
  return 1;
}

static const luaL_Reg fs_methods[] = {
  { "_compute", fs_compute },
  { "_compute_file", fs_compute_file },
  { "state", fs_state },
  { "decode", fs_decode },
  { "names", fs_names },
  { "close", fs_close },
  { NULL, NULL }
};

static const luaL_Reg fs_meta[] = {
  { "__gc", fs_close },
  { "__close", fs_close },
  { "__tostring", fs_tostring },
  { NULL, NULL }
};

static const luaL_Reg state_methods[] = {
  { "observe", state_observe },
  { "values", state_values },
  { "encode", state_encode },
  { "decode", state_decode },
  { "latest", state_latest },
  { "stats", state_stats },
  { "close", state_close },
  { NULL, NULL }
};

static const luaL_Reg state_meta[] = {
  { "__gc", state_close },
  { "__close", state_close },
  { "__tostring", state_tostring },
  { NULL, NULL }
};

void lq_open_features(lua_State *L) {
  lq_new_class(L, FS_TYPE, fs_meta, fs_methods);
  lq_new_class(L, STATE_TYPE, state_meta, state_methods);
  lua_pushcfunction(L, l_feature_set);
  lua_setfield(L, -2, "feature_set");
}
