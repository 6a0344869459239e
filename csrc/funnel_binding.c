/* leadq.core funnels: the Lua side of funnel.c.
**
**   core.funnel_new(config)           config from leadq.funnel (stages, allowed, ...): a leadq.Funnel
**   f:add(lead, stage, at[, reason[, owner]])  true, or nil and the reason the row was rejected
**   f:load(table, columns[, threads]) columns: lead, stage or stage_is, at[, reason, owner, source]:
**                                     rows logged, rows rejected (threads > 1: text lead ids interned
**                                     on a thread of their own; the same log)
**   f:join(leads[, id[, threads]])    the join to a leads table, kept (with the table) for aggregate
**   f:prepare([threads])              validates; the number of rejected rows
**   f:seal([threads])                 validates, then frees what only loading needs: no more rows (f)
**   f:rejects()                       every rejected row: {file, line, lead, stage, at, message}
**   f:entered(stage, leads[, id])     per row of leads: when its lead first entered the stage (nil: never)
**   f:aggregate([query])              query: by, leads, id, velocity, sla: a leadq.FunnelResult
**   f:close(), #f (rows logged)
**   core.funnel_parse(text)           a result from r:serialize(), or nil, message
**   core.funnel_parse_time(text)      seconds since the epoch, or nil, message
**   r:serialize(), r:merge(other or text) (r, or nil, message), r:copy(), r:totable(), r:close()
** Misuse raises; data that cannot be read or merged returns nil, message.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "bindings.h"
#include "funnel.h"

#define FUNNEL_TYPE "leadq.Funnel"
#define RESULT_TYPE "leadq.FunnelResult"

typedef struct funnel_box { lq_funnel *f; } funnel_box;
typedef struct result_box { lq_funnel_result *r; } result_box;

static lq_funnel *check_funnel(lua_State *L, int i) {
  funnel_box *b = (funnel_box *)luaL_checkudata(L, i, FUNNEL_TYPE);
  if (b->f == NULL) luaL_argerror(L, i, "the funnel is closed");
  return b->f;
}

static lq_funnel_result *check_result(lua_State *L, int i) {
  result_box *b = (result_box *)luaL_checkudata(L, i, RESULT_TYPE);
  if (b->r == NULL) luaL_argerror(L, i, "the funnel result is closed");
  return b->r;
}

static const lq_table *check_lead_table(lua_State *L, int i) {
  return lq_check_table(L, i);
}

static int find_column(const lq_table *t, const char *name) {
  int i;
  for (i = 0; i < t->ncols; i++)
    if (strcmp(t->cols[i]->name, name) == 0) return i;
  return -1;
}

static int stage_of(lua_State *L, const lq_funnel_config *cfg, const char *name, const char *what) {
  int i;
  for (i = 0; i < cfg->nstages; i++)
    if (strcmp(cfg->names[i], name) == 0) return i;
  return luaL_error(L, "%s: unknown stage '%s'", what, name);
}

/* ---------------------------------------------------------------- funnels */

static int funnel_new(lua_State *L) {
  lq_funnel_config cfg;
  funnel_box *b;
  lua_Integer n, i;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&cfg, 0, sizeof cfg);
  cfg.disqualified = cfg.nurture = cfg.mql = -1;
  lua_getfield(L, 1, "stages");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 1, "config.stages must be a list of names");
  n = luaL_len(L, -1);
  luaL_argcheck(L, n >= 1 && n <= LQ_FUNNEL_MAX_STAGES, 1, "config.stages: 1 to 16 stages");
  cfg.nstages = (int)n;
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, -1, (int)i);
    s = lua_tolstring(L, -1, &len);
    luaL_argcheck(L, s != NULL && len > 0 && len < LQ_FUNNEL_NAME_MAX, 1, "config.stages: a name of 1 to 47 bytes");
    memcpy(cfg.names[i - 1], s, len);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "nchain");
  cfg.nchain = (int)luaL_optinteger(L, -1, cfg.nstages);
  luaL_argcheck(L, cfg.nchain >= 1 && cfg.nchain <= cfg.nstages && cfg.nchain <= LQ_FUNNEL_MAX_CHAIN, 1,
                "config.nchain: 1 to 10 chain stages");
  lua_pop(L, 1);
  lua_getfield(L, 1, "implied");
  cfg.implied = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "sla_days");
  cfg.sla_seconds = luaL_optnumber(L, -1, 0) * 86400.0;
  lua_pop(L, 1);
  lua_getfield(L, 1, "sla_calendar");   /* a leadq.Calendar: sla_seconds count its working hours */
  if (!lua_isnil(L, -1)) memcpy(&cfg.sla_calendar, lq_check_calendar(L, -1), sizeof cfg.sla_calendar);
  lua_pop(L, 1);
  lua_getfield(L, 1, "disqualified");
  if (lua_isstring(L, -1)) cfg.disqualified = stage_of(L, &cfg, lua_tostring(L, -1), "config.disqualified");
  lua_pop(L, 1);
  lua_getfield(L, 1, "nurture");
  if (lua_isstring(L, -1)) cfg.nurture = stage_of(L, &cfg, lua_tostring(L, -1), "config.nurture");
  lua_pop(L, 1);
  lua_getfield(L, 1, "mql");
  if (lua_isstring(L, -1)) cfg.mql = stage_of(L, &cfg, lua_tostring(L, -1), "config.mql");
  lua_pop(L, 1);
  lua_getfield(L, 1, "allowed");   /* { {from or "", to}, ... } */
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 1, "config.allowed must be a list of {from, to}");
  n = luaL_len(L, -1);
  for (i = 1; i <= n; i++) {
    const char *from, *to;
    int a;
    lua_rawgeti(L, -1, (int)i);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 1, "config.allowed must be a list of {from, to}");
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    from = lua_tostring(L, -2);
    to = lua_tostring(L, -1);
    luaL_argcheck(L, from != NULL && to != NULL, 1, "config.allowed must be a list of {from, to}");
    a = from[0] == '\0' ? 0 : stage_of(L, &cfg, from, "config.allowed") + 1;
    cfg.allowed[a][stage_of(L, &cfg, to, "config.allowed")] = 1;
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  b = (funnel_box *)lq_newuserdata(L, sizeof *b);
  b->f = NULL;   /* safe to collect before it owns anything */
  luaL_setmetatable(L, FUNNEL_TYPE);
  lua_newtable(L);   /* the user value: the joined leads table, later */
  lua_setuservalue(L, -2);
  b->f = lq_funnel_new(lq_lua_allocator(L), &cfg);
  if (b->f == NULL) return luaL_error(L, "not enough memory for a funnel");
  return 1;
}

static int funnel_gc(lua_State *L) {
  funnel_box *b = (funnel_box *)luaL_checkudata(L, 1, FUNNEL_TYPE);
  lq_funnel_free(b->f);
  b->f = NULL;
  return 0;
}

static int funnel_tostring(lua_State *L) {
  funnel_box *b = (funnel_box *)luaL_checkudata(L, 1, FUNNEL_TYPE);
  if (b->f == NULL) lua_pushliteral(L, "leadq.Funnel (closed)");
  else lua_pushfstring(L, "leadq.Funnel (%d stages, %d transitions, %d leads, %d rejected)", b->f->cfg.nstages,
                       (int)b->f->n, (int)b->f->leads.count, (int)b->f->nrejects);
  return 1;
}

static int funnel_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_funnel(L, 1)->n);
  return 1;
}

static double time_arg(lua_State *L, int i, const char **text, size_t *len) {
  double t = NAN;
  *text = NULL;
  *len = 0;
  if (lua_type(L, i) == LUA_TNUMBER) t = lua_tonumber(L, i);
  else if (lua_type(L, i) == LUA_TSTRING) {
    *text = lua_tolstring(L, i, len);
    if (!lq_scan_time(*text, *len, &t)) t = NAN;
  } else if (!lua_isnoneornil(L, i)) luaL_argerror(L, i, "a time must be a number (seconds) or a string");
  return t;
}

static const char *opt_text(lua_State *L, int i, size_t *len) {
  *len = 0;
  if (lua_isnoneornil(L, i)) return NULL;
  if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
    luaL_argerror(L, i, "expected a string");
  return lua_tolstring(L, i, len);
}

static int funnel_add(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  size_t llen, slen, alen, rlen, olen;
  const char *lead = opt_text(L, 2, &llen), *stage_text = opt_text(L, 3, &slen), *at_text;
  double at = time_arg(L, 4, &at_text, &alen);
  const char *reason = opt_text(L, 5, &rlen), *owner = opt_text(L, 6, &olen);
  int stage = stage_text == NULL ? -1 : lq_funnel_stage(f, stage_text, slen);
  int rc = lq_funnel_add(f, lead, llen, stage, stage_text, slen, at, at_text, alen, reason, rlen, owner, olen, -1, 0);
  if (rc == -3) return luaL_error(L, "%s", LQ_FUNNEL_SEALED_ERROR);
  if (rc < 0) return luaL_error(L, "not enough memory for the transition log");
  if (rc > 0) {
    lua_pushnil(L);
    lua_pushstring(L, f->rejects[f->nrejects - 1].message);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int column_arg(lua_State *L, const lq_table *t, int opts, const char *key, int required) {
  const char *name;
  int c;
  lua_getfield(L, opts, key);
  if (lua_isnil(L, -1) && !required) { lua_pop(L, 1); return -1; }
  name = lua_tostring(L, -1);
  if (name == NULL) return luaL_error(L, "columns.%s must be a column name", key);
  c = find_column(t, name);
  if (c < 0) return luaL_error(L, "columns.%s: no column '%s' in the table", key, name);
  lua_pop(L, 1);
  return c;
}

/* The optional number of threads at idx (1 to 256), 1 when absent. */
static int opt_threads(lua_State *L, int idx, const char *what) {
  lua_Integer n;
  if (lua_isnoneornil(L, idx)) return 1;
  n = lua_tointeger(L, idx);
  if (!lq_isinteger(L, idx) || n < 1 || n > 256) return luaL_error(L, "%s must be a whole number from 1 to 256", what);
  return (int)n;
}

static int funnel_load(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  const lq_table *t = check_lead_table(L, 2);
  int c_lead, c_stage = -1, const_stage = -1, c_at, c_reason, c_owner, rc, saved, threads;
  size_t before = f->n, rejects_before;
  int32_t source;
  const char *err = NULL, *src;
  luaL_checktype(L, 3, LUA_TTABLE);
  /* before anything changes (the source added, the log marked unchecked): lq_funnel_load's own -3
  ** comes too late for that */
  if (f->sealed) return luaL_error(L, "%s", LQ_FUNNEL_SEALED_ERROR);
  threads = opt_threads(L, 4, "load: threads");
  c_lead = column_arg(L, t, 3, "lead", 1);
  lua_getfield(L, 3, "stage_is");
  if (lua_isstring(L, -1)) {
    const char *s = lua_tostring(L, -1);
    const_stage = lq_funnel_stage(f, s, strlen(s));
    if (const_stage < 0) return luaL_error(L, "columns.stage_is: unknown stage '%s'", s);
  }
  lua_pop(L, 1);
  if (const_stage < 0) c_stage = column_arg(L, t, 3, "stage", 1);
  c_at = column_arg(L, t, 3, "at", 1);
  c_reason = column_arg(L, t, 3, "reason", 0);
  c_owner = column_arg(L, t, 3, "owner", 0);
  lua_getfield(L, 3, "source");
  src = lua_tostring(L, -1);
  if (src == NULL) src = t->source != NULL ? t->source : "(table)";
  source = lq_funnel_add_source(f, src);
  lua_pop(L, 1);
  if (source < 0) return luaL_error(L, "not enough memory for the transition log");
  if (f->nrejects > f->load_rejects) {   /* validation reruns after a load */
    f->prepared = 0;
  }
  rejects_before = f->load_rejects < f->nrejects ? f->load_rejects : f->nrejects;
  saved = f->threads;
  f->threads = threads;   /* a big log's leads interned on a thread of their own: the same log */
  rc = lq_funnel_load(f, t, c_lead, c_stage, const_stage, c_at, c_reason, c_owner, source, &err);
  f->threads = saved;
  if (rc == -1) return luaL_error(L, "not enough memory for the transition log");
  if (rc == -2) return luaL_error(L, "columns.%s: the column has the wrong type for a %s", err, err);
  lua_pushinteger(L, (lua_Integer)(f->n - before));
  lua_pushinteger(L, (lua_Integer)(f->nrejects - rejects_before));
  return 2;
}

/* f:join(leads[, id]): the join is kept, and so is the table (in the funnel's user value). */
static int funnel_join(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  const lq_table *t = check_lead_table(L, 2);
  const char *id = luaL_optstring(L, 3, "id");
  int c = find_column(t, id), saved = f->threads, rc;
  if (c < 0) return luaL_error(L, "no column '%s' in the leads table", id);
  if (t->cols[c]->type == LQ_TAGS || t->cols[c]->type == LQ_BOOLEAN)
    return luaL_error(L, "column '%s' cannot hold lead ids", id);
  f->threads = opt_threads(L, 4, "join: threads");   /* the ids looked up on that many */
  rc = lq_funnel_join(f, t, c);
  f->threads = saved;
  if (rc != 0) return luaL_error(L, "not enough memory to join the leads");
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "leads");
  lua_pushinteger(L, c);
  lua_setfield(L, -2, "id");
  lua_setuservalue(L, 1);
  lua_settop(L, 1);
  return 1;
}

static void prepare_or_raise(lua_State *L, lq_funnel *f) {
  int rc = f->prepared ? 0 : lq_funnel_prepare(f);
  if (rc == -2) luaL_error(L, "%s", LQ_FUNNEL_SPAN_ERROR);
  if (rc != 0) luaL_error(L, "not enough memory to check the funnel");
}

/* f:prepare([threads]): the log checked (on that many threads), and the number of rejected rows. */
static int funnel_prepare(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  int saved = f->threads;
  f->threads = opt_threads(L, 2, "prepare: threads");
  if (!f->prepared) {
    int rc = lq_funnel_prepare(f);
    f->threads = saved;
    if (rc == -2) return luaL_error(L, "%s", LQ_FUNNEL_SPAN_ERROR);
    if (rc != 0) return luaL_error(L, "not enough memory to check the funnel");
  }
  f->threads = saved;
  lua_pushinteger(L, (lua_Integer)f->nrejects);
  return 1;
}

/* f:seal([threads]): the log checked (on that many threads) if it was not, and the columns only loading
** and checking read freed; the funnel takes no more rows. Returns f. */
static int funnel_seal(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  int saved = f->threads, rc;
  f->threads = opt_threads(L, 2, "seal: threads");
  rc = lq_funnel_seal(f);
  f->threads = saved;
  if (rc == -2) return luaL_error(L, "%s", LQ_FUNNEL_SPAN_ERROR);
  if (rc != 0) return luaL_error(L, "not enough memory to check the funnel");
  lua_settop(L, 1);
  return 1;
}

static int funnel_rejects(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  size_t i;
  prepare_or_raise(L, f);
  lua_createtable(L, (int)f->nrejects, 0);
  for (i = 0; i < f->nrejects; i++) {
    const lq_funnel_reject *r = &f->rejects[i];
    size_t len;
    const char *s;
    lua_createtable(L, 0, 6);
    if ((s = lq_keys_string(&f->sources, r->source, &len)) != NULL) {
      lua_pushlstring(L, s, len);
      lua_setfield(L, -2, "file");
    }
    if (r->line > 0) {
      lua_pushinteger(L, (lua_Integer)r->line);
      lua_setfield(L, -2, "line");
    }
    if ((s = lq_keys_string(&f->leads, r->lead, &len)) != NULL) {
      lua_pushlstring(L, s, len);
      lua_setfield(L, -2, "lead");
    }
    if (r->stage >= 0) {
      lua_pushstring(L, f->cfg.names[r->stage]);
      lua_setfield(L, -2, "stage");
    }
    if (!isnan(r->at)) {
      lua_pushnumber(L, r->at);
      lua_setfield(L, -2, "at");
    }
    lua_pushstring(L, r->message);
    lua_setfield(L, -2, "message");
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

/* A dimension by name: a column of the leads table, <stage>_month / <stage>_week, or owner. */
static void resolve_dim(lua_State *L, lq_funnel *f, const lq_table *leads, const char *name, lq_funnel_dim *d) {
  size_t len = strlen(name);
  int c = leads != NULL ? find_column(leads, name) : -1;
  if (len >= sizeof d->name) luaL_error(L, "dimension name too long: '%s'", name);
  memset(d, 0, sizeof *d);
  memcpy(d->name, name, len);
  if (c >= 0) {
    const lq_column *col = leads->cols[c];
    if (col->type != LQ_CATEGORY && col->type != LQ_BOOLEAN)
      luaL_error(L, "dimension '%s' must be a category or boolean column (it is %s)", name,
                 col->type == LQ_NUMBER ? "number" : col->type == LQ_TIME ? "time" :
                 col->type == LQ_TEXT ? "text" : "tags");
    d->kind = LQ_DIM_COLUMN;
    d->col = col;
    return;
  }
  if (len > 5 && (strcmp(name + len - 5, "_week") == 0 || (len > 6 && strcmp(name + len - 6, "_month") == 0))) {
    int week = strcmp(name + len - 5, "_week") == 0;
    size_t slen = len - (week ? 5 : 6);
    int s = lq_funnel_stage(f, name, slen);
    if (s >= 0) {
      d->kind = LQ_DIM_COHORT;
      d->stage = s;
      d->week = week;
      return;
    }
  }
  if (strcmp(name, "owner") == 0) { d->kind = LQ_DIM_OWNER; return; }
  luaL_error(L, "unknown dimension '%s': not a column of the leads table, nor <stage>_month, <stage>_week "
             "or owner", name);
}

static int funnel_aggregate(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  lq_funnel_query q;
  const char *err = NULL;
  result_box *b;
  int threads = 1, saved;
  memset(&q, 0, sizeof q);
  q.velocity = q.sla = 1;
  if (lua_isnoneornil(L, 2)) {   /* no query: everything, by nothing */
    lua_settop(L, 1);
    lua_newtable(L);
  }
  {
    static const char *const keys[] = {"leads", "id", "by", "velocity", "sla", "threads", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {   /* unknown keys are mistakes ("bye" for "by") */
      int k;
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      for (k = 0; keys[k] != NULL && strcmp(keys[k], key) != 0; k++) {}
      if (keys[k] == NULL)
        return luaL_error(L, "unknown query key '%s' (expected leads, id, by, velocity, sla, threads)", key);
      lua_pop(L, 1);
    }
    lua_getfield(L, 2, "leads");
    if (!lua_isnil(L, -1)) {
      const char *id;
      q.leads = check_lead_table(L, lua_gettop(L));
      lua_getfield(L, 2, "id");
      id = lua_isnil(L, -1) ? "id" : lua_tostring(L, -1);
      if (id == NULL) return luaL_error(L, "query.id must be a column name");
      q.leads_id = find_column(q.leads, id);
      if (q.leads_id < 0) return luaL_error(L, "query.id: no column '%s' in the leads table", id);
      if (q.leads->cols[q.leads_id]->type == LQ_TAGS || q.leads->cols[q.leads_id]->type == LQ_BOOLEAN)
        return luaL_error(L, "query.id: column '%s' cannot hold lead ids", id);
      lua_pop(L, 1);
    }
    if (q.leads == NULL) {   /* the joined table, when f:join was called */
      lua_getuservalue(L, 1);
      if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "leads");
        if (!lua_isnil(L, -1)) {
          q.leads = check_lead_table(L, lua_gettop(L));
          lua_getfield(L, -2, "id");
          q.leads_id = (int)lua_tointeger(L, -1);
          q.use_join = 1;
          lua_pop(L, 1);
          if (q.leads_id < 0 || q.leads_id >= q.leads->ncols) return luaL_error(L, "the joined table changed");
        }
      }
    }
    lua_getfield(L, 2, "by");
    if (!lua_isnil(L, -1)) {
      lua_Integer n, i;
      luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 2, "query.by must be a list of dimension names");
      n = luaL_len(L, -1);
      if (n > LQ_FUNNEL_MAX_DIMS) return luaL_error(L, "query.by: at most %d dimensions", LQ_FUNNEL_MAX_DIMS);
      for (i = 1; i <= n; i++) {
        const char *name;
        lua_rawgeti(L, -1, (int)i);
        name = lua_tostring(L, -1);
        if (name == NULL) return luaL_error(L, "query.by must be a list of dimension names");
        resolve_dim(L, f, q.leads, name, &q.dims[i - 1]);
        lua_pop(L, 1);
      }
      q.ndims = (int)n;
    }
    lua_getfield(L, 2, "threads");   /* checking and aggregating on that many: the same result for any */
    if (!lua_isnil(L, -1)) {
      lua_Integer n = lua_tointeger(L, -1);
      if (!lq_isinteger(L, -1) || n < 1 || n > 256)
        return luaL_error(L, "query.threads must be a whole number from 1 to 256");
      threads = (int)n;
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "velocity");
    if (!lua_isnil(L, -1)) q.velocity = lua_toboolean(L, -1);
    lua_getfield(L, 2, "sla");
    if (!lua_isnil(L, -1)) q.sla = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  b = (result_box *)lq_newuserdata(L, sizeof *b);
  b->r = NULL;
  luaL_setmetatable(L, RESULT_TYPE);
  saved = f->threads;   /* this aggregation's (and the check it may run first), not the funnel's */
  f->threads = threads;
  b->r = lq_funnel_aggregate(f, &q, &err);
  f->threads = saved;
  if (b->r == NULL) return luaL_error(L, "%s", err != NULL ? err : "not enough memory to aggregate the funnel");
  return 1;
}

/* ---------------------------------------------------------------- results */

static int result_gc(lua_State *L) {
  result_box *b = (result_box *)luaL_checkudata(L, 1, RESULT_TYPE);
  lq_funnel_result_free(b->r);
  b->r = NULL;
  return 0;
}

static int result_tostring(lua_State *L) {
  result_box *b = (result_box *)luaL_checkudata(L, 1, RESULT_TYPE);
  if (b->r == NULL) lua_pushliteral(L, "leadq.FunnelResult (closed)");
  else lua_pushfstring(L, "leadq.FunnelResult (%d groups, %d dimensions)", (int)b->r->ngroups, b->r->ndims);
  return 1;
}

static void push_result(lua_State *L, lq_funnel_result *r) {
  result_box *b = (result_box *)lq_newuserdata(L, sizeof *b);
  b->r = r;
  luaL_setmetatable(L, RESULT_TYPE);
}

/* Scratch bytes owned by a Lua value on the stack, so that an error cannot leak them. */
static char *serialize_to_stack(lua_State *L, const lq_funnel_result *r, size_t *len) {
  char *s = lq_funnel_result_serialize(r, len);
  if (s == NULL) luaL_error(L, "not enough memory to serialize the funnel result");
  return s;
}

/* r:csv() -> the result as CSV text, formatted in C (lq_funnel_result_csv says how). */
/* r:csv() and r:json(): the text the core writes, without a report table in Lua. */
static int result_text(lua_State *L, char *(*write)(const lq_funnel_result *, size_t *)) {
  lq_funnel_result *r = check_result(L, 1);
  lq_allocator a = r->alloc;
  size_t len;
  char *s = write(r, &len);
  if (s == NULL) return luaL_error(L, "not enough memory");
  lua_pushlstring(L, s, len);   /* the same known gap as serialize's */
  a.fn(a.ud, s, len + 1, 0);
  return 1;
}

static int result_csv(lua_State *L) { return result_text(L, lq_funnel_result_csv); }
static int result_json(lua_State *L) { return result_text(L, lq_funnel_result_json); }

/* r:text([total]): the text tables; total, the funnel's result without dimensions, gives the total
** row its velocity. */
static int result_tables(lua_State *L) {
  lq_funnel_result *r = check_result(L, 1);
  const lq_funnel_result *total = lua_isnoneornil(L, 2) ? NULL : check_result(L, 2);
  lq_allocator a = r->alloc;
  size_t len;
  char *s = lq_funnel_result_text(r, total, &len);
  if (s == NULL) return luaL_error(L, "not enough memory");
  lua_pushlstring(L, s, len);
  a.fn(a.ud, s, len + 1, 0);
  return 1;
}

static int result_serialize(lua_State *L) {
  lq_funnel_result *r = check_result(L, 1);
  size_t len;
  char *s = serialize_to_stack(L, r, &len);
  lq_allocator a = r->alloc;
  lua_pushlstring(L, s, len);   /* known gap: if this copy runs out of memory, s leaks */
  a.fn(a.ud, s, len + 1, 0);
  return 1;
}

static int funnel_parse(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len), *err = NULL;
  lq_funnel_result *r;
  result_box *b = (result_box *)lq_newuserdata(L, sizeof *b);
  b->r = NULL;
  luaL_setmetatable(L, RESULT_TYPE);
  r = lq_funnel_result_parse(lq_lua_allocator(L), s, len, &err);
  if (r == NULL) {
    if (err == NULL) return luaL_error(L, "not enough memory to read a funnel result");
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  b->r = r;
  return 1;
}

static int funnel_parse_time(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  double t;
  if (!lq_scan_time(s, len, &t)) {
    lua_pushnil(L);
    lua_pushfstring(L, "bad time '%s' (expected YYYY-MM-DD or YYYY-MM-DD hh:mm:ss)", s);
    return 2;
  }
  lua_pushnumber(L, t);
  return 1;
}

static int result_merge(lua_State *L) {
  lq_funnel_result *r = check_result(L, 1), *o;
  const char *err = NULL;
  int rc;
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushcfunction(L, funnel_parse);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2)) return 2;
    lua_pop(L, 1);
    lua_replace(L, 2);
  }
  o = check_result(L, 2);
  luaL_argcheck(L, o != r, 2, "cannot merge a result into itself");
  rc = lq_funnel_result_merge(r, o, &err);
  if (rc == -1) return luaL_error(L, "not enough memory to merge funnel results");
  if (rc == -2) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_settop(L, 1);
  return 1;
}

static int result_copy(lua_State *L) {
  lq_funnel_result *r = check_result(L, 1), *c;
  size_t len;
  const char *err = NULL;
  char *s = serialize_to_stack(L, r, &len);
  lq_allocator a = r->alloc;
  c = lq_funnel_result_parse(a, s, len, &err);
  a.fn(a.ud, s, len + 1, 0);
  if (c == NULL) return luaL_error(L, "not enough memory to copy a funnel result");
  push_result(L, c);
  return 1;
}

/* totable: groups sorted by their key, breaches by lead. */

typedef struct breach_ref {
  const lq_funnel_result *r;
  size_t i;
} breach_ref;

static int cmp_breach_ref(const void *a, const void *b) {
  const breach_ref *x = (const breach_ref *)a, *y = (const breach_ref *)b;
  return lq_funnel_compare_breaches(x->r, x->i, y->i);
}

static void push_key(lua_State *L, const lq_funnel_result *r, int32_t g) {
  const char *k = lq_keys_string(&r->group_keys, g, NULL);
  int d;
  lua_createtable(L, 0, r->ndims);
  for (d = 0; d < r->ndims; d++) {
    int32_t c;
    size_t len;
    const char *s;
    memcpy(&c, k + (size_t)d * 4, 4);
    if (c < 0) continue;
    s = lq_keys_string(&r->strings, c, &len);
    lua_pushlstring(L, s, len);
    lua_setfield(L, -2, r->dim_names[d]);
  }
}

static void set_number(lua_State *L, const char *key, double v) {
  if (isnan(v)) return;
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

static void set_count(lua_State *L, const char *key, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, key);
}

static int result_totable(lua_State *L) {
  lq_funnel_result *r = check_result(L, 1);
  int from[LQ_FUNNEL_MAX_CHAIN * 2], to[LQ_FUNNEL_MAX_CHAIN * 2], npairs = lq_funnel_output_pairs(r, from, to), s, p, d;
  int32_t *groups;
  breach_ref *breaches;
  int32_t i;
  size_t k;
  char name[LQ_FUNNEL_NAME_MAX * 3];
  lua_createtable(L, 0, 8);
  lua_createtable(L, r->nstages, 0);
  for (s = 0; s < r->nstages; s++) {
    lua_pushstring(L, r->names[s]);
    lua_rawseti(L, -2, s + 1);
  }
  lua_setfield(L, -2, "stages");
  lua_createtable(L, r->nchain, 0);
  for (s = 0; s < r->nchain; s++) {
    lua_pushstring(L, r->names[s]);
    lua_rawseti(L, -2, s + 1);
  }
  lua_setfield(L, -2, "chain");
  lua_createtable(L, r->ndims, 0);
  for (d = 0; d < r->ndims; d++) {
    lua_pushstring(L, r->dim_names[d]);
    lua_rawseti(L, -2, d + 1);
  }
  lua_setfield(L, -2, "dims");
  lua_createtable(L, npairs, 0);
  for (p = 0; p < npairs; p++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->names[from[p]]);
    lua_setfield(L, -2, "from");
    lua_pushstring(L, r->names[to[p]]);
    lua_setfield(L, -2, "to");
    lua_pushfstring(L, "%s_to_%s", r->names[from[p]], r->names[to[p]]);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, p + 1);
  }
  lua_setfield(L, -2, "pairs");
  if (r->sla_seconds > 0) set_number(L, "sla_days", r->sla_seconds / 86400.0);
  /* scratch for sorting, owned by a userdata on the stack */
  groups = (int32_t *)lua_newuserdata(L, sizeof(int32_t) * ((size_t)r->ngroups + 1));
  if (lq_funnel_result_order(r, groups) != 0) return luaL_error(L, "not enough memory");
  lua_createtable(L, r->ngroups, 0);
  for (i = 0; i < r->ngroups; i++) {
    int32_t g = groups[i];
    const uint64_t *sla = r->sla + (size_t)g * 4;
    const lq_sketch *hs = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) + (size_t)r->npairs];
    lua_createtable(L, 0, 10);
    push_key(L, r, g);
    lua_setfield(L, -2, "key");
    set_count(L, "leads", lq_funnel_result_leads(r, g));
    lua_createtable(L, 0, r->nstages);
    for (s = 0; s < r->nstages; s++) set_count(L, r->names[s], lq_funnel_result_reached(r, g, s));
    lua_setfield(L, -2, "reached");
    lua_createtable(L, 0, npairs);   /* conversion */
    for (p = 0; p < npairs; p++) {
      uint64_t base = lq_funnel_result_reached(r, g, from[p]);
      snprintf(name, sizeof name, "%s_to_%s", r->names[from[p]], r->names[to[p]]);
      if (base > 0) set_number(L, name, (double)lq_funnel_result_both(r, g, from[p], to[p]) / (double)base);
    }
    lua_setfield(L, -2, "conversion");
    lua_createtable(L, 0, npairs);   /* velocity */
    for (p = 0; p < npairs; p++) {
      const lq_sketch *sk = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) +
                                          (size_t)lq_funnel_pair_index(r->nchain, from[p], to[p])];
      if (sk->count == 0) continue;
      snprintf(name, sizeof name, "%s_to_%s", r->names[from[p]], r->names[to[p]]);
      lua_createtable(L, 0, 4);
      set_count(L, "n", sk->count);
      set_number(L, "median_days", lq_sketch_quantile(sk, 0.5) / 86400.0);
      set_number(L, "p90_days", lq_sketch_quantile(sk, 0.9) / 86400.0);
      lua_pushboolean(L, lq_sketch_exact(sk));   /* false: from the sketch's buckets, within 1% */
      lua_setfield(L, -2, "exact");
      lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "velocity");
    if (r->sla_seconds > 0 && r->mql >= 0) {
      lua_createtable(L, 0, 7);
      set_count(L, "handed_off", sla[0]);
      set_count(L, "within", sla[1]);
      set_count(L, "late", sla[2]);
      set_count(L, "overdue", sla[3]);
      if (sla[0] + sla[3] > 0) set_number(L, "share_within", (double)sla[1] / (double)(sla[0] + sla[3]));
      if (hs->count > 0) {
        set_number(L, "median_days", lq_sketch_quantile(hs, 0.5) / 86400.0);
        set_number(L, "p90_days", lq_sketch_quantile(hs, 0.9) / 86400.0);
        lua_pushboolean(L, lq_sketch_exact(hs));
        lua_setfield(L, -2, "exact");
      }
      lua_setfield(L, -2, "sla");
    }
    lua_newtable(L);   /* disqualification reasons, most frequent first (sorted in Lua) */
    {
      int n = 0;
      int32_t j;
      for (j = 0; j < r->reason_keys.count; j++) {
        const char *rk = lq_keys_string(&r->reason_keys, j, NULL);
        int32_t kg, kr;
        size_t len;
        const char *rs;
        memcpy(&kg, rk, 4);
        memcpy(&kr, rk + 4, 4);
        if (kg != g) continue;
        rs = lq_keys_string(&r->strings, kr, &len);
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, rs, len);
        lua_setfield(L, -2, "reason");
        set_count(L, "count", r->reason_counts[j]);
        lua_rawseti(L, -2, ++n);
      }
    }
    lua_setfield(L, -2, "disqualified");
    set_count(L, "recycled", r->recycled[(size_t)g * 2]);
    set_count(L, "recycled_transitions", r->recycled[(size_t)g * 2 + 1]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -3, "groups");
  lua_pop(L, 1);   /* the group scratch */
  breaches = (breach_ref *)lua_newuserdata(L, sizeof(breach_ref) * (r->nbreaches + 1));
  for (k = 0; k < r->nbreaches; k++) { breaches[k].r = r; breaches[k].i = k; }
  qsort(breaches, r->nbreaches, sizeof *breaches, cmp_breach_ref);
  lua_createtable(L, (int)r->nbreaches, 0);
  for (k = 0; k < r->nbreaches; k++) {
    const lq_funnel_breach *b = &r->breaches[breaches[k].i];
    size_t len;
    const char *lead = lq_keys_string(&r->strings, b->lead, &len);
    lua_createtable(L, 0, 5);
    lua_pushlstring(L, lead, len);
    lua_setfield(L, -2, "lead");
    push_key(L, r, b->group);
    lua_setfield(L, -2, "key");
    set_number(L, "mql_at", b->mql_at);
    set_number(L, "handoff_at", b->handoff_at);
    if (!isnan(b->handoff_at)) set_number(L, "days", (b->handoff_at - b->mql_at) / 86400.0);
    lua_rawseti(L, -2, (int)k + 1);
  }
  lua_setfield(L, -3, "breaches");
  lua_pop(L, 1);
  return 1;
}

/* f:entered(stage, leads[, id]) -> per row of leads, the time its lead first entered the stage (with
** implied stages, or a later chain stage), nil when never; and the number of rows. The outcome of a
** lead (leadq.outcome) read from the checked log, as the funnel counts it. */
static int funnel_entered(lua_State *L) {
  lq_funnel *f = check_funnel(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const lq_table *t = check_lead_table(L, 3);
  const char *id = luaL_optstring(L, 4, "id");
  int stage = stage_of(L, &f->cfg, name, "entered");
  int c = find_column(t, id);
  double *times;
  size_t row;
  int rc;
  if (c < 0) return luaL_error(L, "no column '%s' in the leads table", id);
  if (t->cols[c]->type == LQ_TAGS || t->cols[c]->type == LQ_BOOLEAN)
    return luaL_error(L, "column '%s' cannot hold lead ids", id);
  times = (double *)lua_newuserdata(L, (t->nrows + 1) * sizeof(double));
  rc = lq_funnel_entered(f, stage, t, c, times);
  if (rc == -2) return luaL_error(L, "%s", LQ_FUNNEL_SPAN_ERROR);
  if (rc != 0) return luaL_error(L, "not enough memory to check the funnel");
  lua_createtable(L, (int)t->nrows, 0);
  for (row = 0; row < t->nrows; row++) {
    if (isnan(times[row])) continue;
    lua_pushnumber(L, times[row]);
    lua_rawseti(L, -2, (lua_Integer)row + 1);
  }
  lua_pushinteger(L, (lua_Integer)t->nrows);
  return 2;
}

/* ---------------------------------------------------------------- registration */

static const luaL_Reg funnel_methods[] = {
  {"add", funnel_add},
  {"load", funnel_load},
  {"prepare", funnel_prepare},
  {"seal", funnel_seal},
  {"rejects", funnel_rejects},
  {"aggregate", funnel_aggregate},
  {"join", funnel_join},
  {"entered", funnel_entered},
  {"close", funnel_gc},
  {NULL, NULL}
};

static const luaL_Reg result_methods[] = {
  {"serialize", result_serialize},
  {"merge", result_merge},
  {"copy", result_copy},
  {"totable", result_totable},
  {"csv", result_csv},
  {"json", result_json},
  {"text", result_tables},
  {"close", result_gc},
  {NULL, NULL}
};

static const luaL_Reg funnel_meta[] = {
  {"__gc", funnel_gc},
  {"__close", funnel_gc},
  {"__tostring", funnel_tostring},
  {"__len", funnel_len},
  {NULL, NULL}
};

static const luaL_Reg result_meta[] = {
  {"__gc", result_gc},
  {"__close", result_gc},
  {"__tostring", result_tostring},
  {NULL, NULL}
};

void lq_open_funnel(lua_State *L) {
  lq_new_class(L, FUNNEL_TYPE, funnel_meta, funnel_methods);
  lq_new_class(L, RESULT_TYPE, result_meta, result_methods);
  lua_pushcfunction(L, funnel_new);
  lua_setfield(L, -2, "funnel_new");
  lua_pushcfunction(L, funnel_parse);
  lua_setfield(L, -2, "funnel_parse");
  lua_pushcfunction(L, funnel_parse_time);
  lua_setfield(L, -2, "funnel_parse_time");
}
