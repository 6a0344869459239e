/* The Lua face of the scoring program (program.c): the "leadq.Program" object and what its jobs
** share. See program_binding.h for the split.
**
**   core.program(desc)                    -> program (desc: see lua/leadq/compiler.lua)
**   p:score(lead, features, results, prefix, as_of, threads, raise, id_column)
**                                         -> results table, errors (nil when none)
**   p:score_one(record, options, extra)   -> result, or nil and a message (a value of the wrong kind)
**   p:explain_row(lead, features, results, row, as_of) / p:explain_one(record, options, extra)
**                                         -> the raw facts of one lead (leadq.model words them)
**
** Lua function rules run before the C pass, per lead and in protected mode, into columns the pass
** reads like any other; the pass itself never calls Lua and runs on several threads. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "program_binding.h"

static const char *const ONE_KEYS[] = {
  "total", "status", "grade", "groups", "reason", "disqualified_by", "errors", "into", NULL
};

/* ---- program userdata ---- */

program_box *lq_check_program(lua_State *L, int i) {
  program_box *pb = (program_box *)luaL_checkudata(L, i, PROGRAM_TYPE);
  if (pb->prog == NULL) luaL_error(L, "attempt to use a closed leadq program");
  return pb;
}

static int program_gc(lua_State *L) {
  program_box *pb = (program_box *)luaL_checkudata(L, 1, PROGRAM_TYPE);
  lq_allocator *a = &pb->alloc;
  size_t nf = (size_t)pb->nfields;
  lq_one_free(pb->one, a);
  pb->one = NULL;
  lq_mem_free(a, (void *)pb->names, nf * sizeof(char *));
  pb->names = NULL;
  lq_mem_free(a, pb->source, nf * sizeof(int));
  lq_mem_free(a, pb->record_kind, nf * sizeof(int));
  lq_mem_free(a, pb->view_kind, nf * sizeof(int));
  pb->source = pb->record_kind = pb->view_kind = NULL;
  if (pb->prog != NULL) {
    lq_mem_free(a, pb->group_hidden, (size_t)pb->prog->ngroups * sizeof(int));
    pb->group_hidden = NULL;
  }
  lq_mem_free(a, pb->pre, (size_t)pb->nprepass * sizeof(prepass));
  pb->pre = NULL;
  lq_program_free(pb->prog);
  pb->prog = NULL;
  return 0;
}

static int program_tostring(lua_State *L) {
  program_box *pb = (program_box *)luaL_checkudata(L, 1, PROGRAM_TYPE);
  if (pb->prog == NULL) {
    lua_pushliteral(L, "leadq program (closed)");
  } else {
    lua_pushfstring(L, "leadq program (%d rules, %d leaves, %d ops%s)", pb->prog->nrules, pb->prog->nleaves,
                    pb->prog->nops, pb->record_mode ? ", one lead" : "");
  }
  return 1;
}

/* desc readers: the description comes from compiler.lua, so a wrong one is a bug, raised. */
static lua_Number desc_number(lua_State *L, int t, const char *key, lua_Number dflt) {
  lua_Number v = dflt;
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "program description: '%s' must be a number", key);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int desc_int(lua_State *L, int t, const char *key, int dflt) {
  return (int)desc_number(L, t, key, (lua_Number)dflt);
}

static int desc_bool(lua_State *L, int t, const char *key) {
  int v;
  lua_getfield(L, t, key);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static const char *desc_string(lua_State *L, int t, const char *key) {
  const char *s;
  lua_getfield(L, t, key);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);   /* the string stays alive in the description table */
  return s;
}

static int desc_array(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  if (!lua_istable(L, -1)) luaL_error(L, "program description: '%s' must be a table", key);
  return (int)lua_rawlen(L, -1);
}

static int index_of(const char *s, const char *const *names) {
  int i;
  for (i = 0; s != NULL && names[i] != NULL; i++) {
    if (strcmp(s, names[i]) == 0) return i;
  }
  return -1;
}

static const char *const VIEW_NAMES[] = { "absent", "number", "bool", "codes", "tags", "text", "mask", "values", NULL };
static const char *const SOURCE_NAMES[] = { "lead", "features", "results", "record", "function", "absent", NULL };
static const char *const RECORD_NAMES[] = { "any", "number", "time", "bool", "string", NULL };
static const char *const LEAF_NAMES[] = { "range", "time", "bool", "present", "string", "mask", NULL };
static const char *const MATCH_NAMES[] = { "equals", "contains", "starts", "ends", "word", "external", NULL };

/* Copy desc[key] (a list) into uservalue slot `slot`. */
static void keep_list(lua_State *L, int desc, int uv, const char *key, int slot) {
  lua_getfield(L, desc, key);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_rawseti(L, uv, slot);
}

/* Copies the list at uv[slot] to uv[at], uv[at + 1]...; returns the slot after the last. */
static int flatten(lua_State *L, int uv, int slot, int at) {
  int i, n;
  lua_rawgeti(L, uv, slot);
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, uv, at + i - 1);
  }
  lua_pop(L, 1);
  return at + n;
}

static void read_fields(lua_State *L, program_box *pb, int desc, int uv) {
  int n = desc_array(L, desc, "fields"), i, list = lua_gettop(L);
  lq_allocator *a = &pb->alloc;
  NEW_ARRAY(L, a, pb->source, n, int);
  NEW_ARRAY(L, a, pb->record_kind, n, int);
  NEW_ARRAY(L, a, pb->view_kind, n, int);
  NEW_ARRAY(L, a, pb->names, n, const char *);
  pb->nfields = n;
  lua_createtable(L, n, 0);   /* names */
  for (i = 0; i < n; i++) {
    int f, src, view, rk;
    lua_rawgeti(L, list, i + 1);
    f = lua_gettop(L);
    src = index_of(desc_string(L, f, "source"), SOURCE_NAMES);
    view = index_of(desc_string(L, f, "view"), VIEW_NAMES);
    rk = index_of(desc_string(L, f, "record_kind"), RECORD_NAMES);
    if (src < 0 || view < 0) luaL_error(L, "program description: field %d has a bad source or view", i + 1);
    pb->source[i] = src;
    pb->view_kind[i] = view;
    pb->record_kind[i] = rk < 0 ? REC_ANY : rk;
    lua_getfield(L, f, src == SRC_RECORD ? "name" : "column");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_getfield(L, f, "name");
    }
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "program description: field %d has no name", i + 1);
    pb->names[i] = lua_tostring(L, -1);   /* alive as long as the names list in the uservalue */
    lua_rawseti(L, list + 1, i + 1);
    lua_pop(L, 1);
  }
  lua_rawseti(L, uv, UV_NAMES);
  lua_pop(L, 1);
}

static void read_matchers(lua_State *L, lq_program *p, int desc, int uv) {
  int n = p->nmatchers, i, list;
  desc_array(L, desc, "matchers");
  list = lua_gettop(L);
  lua_createtable(L, n, 0);   /* external matchers' functions */
  for (i = 0; i < n; i++) {
    int m, count, k, mode;
    const char **needles;
    size_t *lengths;
    lq_allocator a = p->alloc;
    lua_rawgeti(L, list, i + 1);
    m = lua_gettop(L);
    mode = index_of(desc_string(L, m, "mode"), MATCH_NAMES);
    if (mode < 0) luaL_error(L, "program description: matcher %d has a bad mode", i + 1);
    count = desc_array(L, m, "needles");
    /* The needle pointers live in the description while set_matcher copies them. */
    needles = (const char **)lq_mem_zeroed(&a, (size_t)count, sizeof(char *));
    lengths = (size_t *)lq_mem_zeroed(&a, (size_t)count, sizeof(size_t));
    if (needles == NULL || lengths == NULL) {
      lq_mem_free(&a, (void *)needles, (size_t)count * sizeof(char *));
      lq_mem_free(&a, lengths, (size_t)count * sizeof(size_t));
      luaL_error(L, "not enough memory");
    }
    for (k = 0; k < count; k++) {
      lua_rawgeti(L, -1, k + 1);
      needles[k] = lua_tolstring(L, -1, &lengths[k]);
      lua_pop(L, 1);
      if (needles[k] == NULL) needles[k] = "";
    }
    k = lq_program_set_matcher(p, i, (lq_match_mode)mode, count, needles, lengths);
    lq_mem_free(&a, (void *)needles, (size_t)count * sizeof(char *));
    lq_mem_free(&a, lengths, (size_t)count * sizeof(size_t));
    if (k != 0) luaL_error(L, "not enough memory");
    lua_pop(L, 1);   /* needles */
    lua_getfield(L, m, "fn");
    lua_rawseti(L, list + 1, i + 1);
    lua_pop(L, 1);   /* matcher */
  }
  lua_rawseti(L, uv, UV_MATCHERS);
  lua_pop(L, 1);
}

static void read_program(lua_State *L, program_box *pb, int desc, int uv) {
  lq_program *p = pb->prog;
  lq_allocator *a = &pb->alloc;
  int nleaves, nmatchers, nops, nrules, ngroups, ndisq, nth, ngrades, i, list;

  read_fields(L, pb, desc, uv);
  lua_getfield(L, desc, "reader");
  if (lua_isfunction(L, -1)) {
    int f;
    for (f = 0; f < pb->nfields; f++) pb->nread += pb->source[f] == SRC_RECORD;
  }
  lua_rawseti(L, uv, UV_READER);
  lua_getfield(L, desc, "writer");
  pb->has_writer = lua_isfunction(L, -1);
  lua_rawseti(L, uv, UV_WRITER);
  nleaves = desc_array(L, desc, "leaves"); lua_pop(L, 1);
  nmatchers = desc_array(L, desc, "matchers"); lua_pop(L, 1);
  nops = desc_array(L, desc, "ops"); lua_pop(L, 1);
  nrules = desc_array(L, desc, "rules"); lua_pop(L, 1);
  ngroups = desc_array(L, desc, "groups"); lua_pop(L, 1);
  ndisq = desc_array(L, desc, "disq"); lua_pop(L, 1);
  nth = desc_array(L, desc, "thresholds"); lua_pop(L, 1);
  if (nops % 4 != 0) luaL_error(L, "program description: ops must come in fours");
  if (lq_program_size(p, pb->nfields, nleaves, nmatchers, nops / 4, desc_int(L, desc, "nregs", 0), nrules, ngroups,
                      ndisq, nth) != 0) luaL_error(L, "not enough memory");
  pb->record_mode = desc_bool(L, desc, "record_mode");

  desc_array(L, desc, "leaves");
  list = lua_gettop(L);
  for (i = 0; i < nleaves; i++) {
    lq_leaf *lf = &p->leaves[i];
    int t, kind;
    lua_rawgeti(L, list, i + 1);
    t = lua_gettop(L);
    kind = index_of(desc_string(L, t, "kind"), LEAF_NAMES);
    if (kind < 0) luaL_error(L, "program description: leaf %d has a bad kind", i + 1);
    lf->kind = (lq_leaf_kind)kind;
    lf->field = desc_int(L, t, "field", 0) - 1;
    lf->matcher = desc_int(L, t, "matcher", 0) - 1;
    lf->negate = desc_bool(L, t, "negate");
    lf->value = desc_bool(L, t, "value");
    lf->lo_open = desc_bool(L, t, "lo_open");
    lf->hi_open = desc_bool(L, t, "hi_open");
    lf->lo = (double)desc_number(L, t, "lo", -HUGE_VAL);
    lf->hi = (double)desc_number(L, t, "hi", HUGE_VAL);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  read_matchers(L, p, desc, uv);

  desc_array(L, desc, "ops");
  list = lua_gettop(L);
  for (i = 0; i < nops / 4; i++) {
    int k;
    int v[4];
    for (k = 0; k < 4; k++) {
      lua_rawgeti(L, list, 4 * i + k + 1);
      v[k] = (int)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    p->ops[i].code = v[0];
    p->ops[i].dst = v[1];
    p->ops[i].a = v[2];
    p->ops[i].b = v[3];
  }
  lua_pop(L, 1);

  desc_array(L, desc, "rules");
  list = lua_gettop(L);
  for (i = 0; i < nrules; i++) {
    lq_rule *r = &p->rules[i];
    int t;
    lua_rawgeti(L, list, i + 1);
    t = lua_gettop(L);
    r->reg = desc_int(L, t, "reg", -1);
    r->group = desc_int(L, t, "group", -1);
    r->points = (double)desc_number(L, t, "points", 0);
    r->points_field = desc_int(L, t, "points_field", -1);
    r->op_begin = desc_int(L, t, "op_begin", 0);
    r->op_end = desc_int(L, t, "op_end", 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  NEW_ARRAY(L, a, pb->group_hidden, ngroups, int);
  desc_array(L, desc, "groups");
  list = lua_gettop(L);
  lua_createtable(L, ngroups, 0);   /* group names */
  for (i = 0; i < ngroups; i++) {
    int t;
    lua_Number floor, cap;
    lua_rawgeti(L, list, i + 1);
    t = lua_gettop(L);
    floor = desc_number(L, t, "floor", -HUGE_VAL);
    cap = desc_number(L, t, "cap", HUGE_VAL);
    lq_program_set_group(p, i, floor != -HUGE_VAL, (double)floor, cap != HUGE_VAL, (double)cap);
    pb->group_hidden[i] = desc_bool(L, t, "hidden");
    lua_getfield(L, t, "name");
    lua_rawseti(L, list + 1, i + 1);
    lua_pop(L, 1);
  }
  lua_rawseti(L, uv, UV_GROUPS);
  lua_pop(L, 1);

  desc_array(L, desc, "disq");
  for (i = 0; i < ndisq; i++) {
    lua_rawgeti(L, -1, i + 1);
    p->disq_regs[i] = (int)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  desc_array(L, desc, "thresholds");
  for (i = 0; i < nth; i++) {
    lua_rawgeti(L, -1, i + 1);
    p->thresholds[i] = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  ngrades = desc_array(L, desc, "grades");
  list = lua_gettop(L);
  if (ngrades > 2) luaL_error(L, "program description: at most two grades");
  for (i = 0; i < ngrades; i++) {
    int t, nl, k, status;
    double levels[64];
    lua_rawgeti(L, list, i + 1);
    t = lua_gettop(L);
    nl = desc_array(L, t, "levels");
    if (nl > 64) luaL_error(L, "a grade has at most 64 levels");
    for (k = 0; k < nl; k++) {
      lua_rawgeti(L, -1, k + 1);
      levels[k] = (double)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    status = lq_program_set_grade(p, i, desc_int(L, t, "group", -1), nl, levels);
    if (status != 0) luaL_error(L, "not enough memory");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  if (lq_program_finish(p) != 0) luaL_error(L, "program description: an index is out of range");

  /* Functions run before the pass, in order. */
  pb->nprepass = 0;
  desc_array(L, desc, "prepass");
  list = lua_gettop(L);
  i = (int)lua_rawlen(L, list);
  NEW_ARRAY(L, a, pb->pre, i, prepass);
  pb->nprepass = i;
  lua_createtable(L, i, 0);   /* functions */
  lua_createtable(L, i, 0);   /* owners: "rule 'X'" */
  for (i = 0; i < pb->nprepass; i++) {
    int t;
    prepass *pp = &pb->pre[i];
    lua_rawgeti(L, list, i + 1);
    t = lua_gettop(L);
    pp->slot = desc_int(L, t, "slot", 0) - 1;
    pp->points = strcmp(desc_string(L, t, "kind"), "points") == 0;
    pp->rule = desc_int(L, t, "rule", -1);
    if (pp->slot < 0 || pp->slot >= pb->nfields || (pp->points && (pp->rule < 0 || pp->rule >= nrules)))
      luaL_error(L, "program description: bad function %d", i + 1);
    lua_getfield(L, t, "fn");
    lua_rawseti(L, list + 1, i + 1);
    lua_getfield(L, t, "owner_text");
    lua_rawseti(L, list + 2, i + 1);
    lua_pop(L, 1);
  }
  lua_rawseti(L, uv, UV_OWNERS);
  lua_rawseti(L, uv, UV_FUNCS);
  lua_pop(L, 1);

  keep_list(L, desc, uv, "statuses", UV_STATUSES);
  keep_list(L, desc, uv, "grade_names", UV_GRADES);
  keep_list(L, desc, uv, "rule_ids", UV_RULE_IDS);
  keep_list(L, desc, uv, "disq_ids", UV_DISQ_IDS);
  keep_list(L, desc, uv, "disq_reasons", UV_DISQ_REASONS);
  lua_rawgeti(L, uv, UV_STATUSES);
  pb->nstatus = (int)lua_rawlen(L, -1);
  lua_rawgeti(L, uv, UV_GRADES);
  pb->ngrade_names = (int)lua_rawlen(L, -1);
  lua_pop(L, 2);
  if (pb->nstatus != p->nthresholds + 2) luaL_error(L, "program description: statuses do not match thresholds");
  if (pb->ngrade_names != lq_program_grade_count(p)) luaL_error(L, "program description: grade names do not match");
  pb->flat_status = UV_COUNT;
  pb->flat_grade = flatten(L, uv, UV_STATUSES, pb->flat_status);
  pb->flat_reason = flatten(L, uv, UV_GRADES, pb->flat_grade);
  pb->flat_disq = flatten(L, uv, UV_DISQ_REASONS, flatten(L, uv, UV_RULE_IDS, pb->flat_reason));
  pb->flat_group = flatten(L, uv, UV_DISQ_IDS, pb->flat_disq);
  flatten(L, uv, UV_GROUPS, pb->flat_group);
}

int lq_lead_readonly_error(lua_State *L) {
  return luaL_error(L, "a lead is read-only (rule functions cannot change its fields)");
}

/* core.program(desc) */
static int l_program(lua_State *L) {
  program_box *pb;
  int uv, k;
  luaL_checktype(L, 1, LUA_TTABLE);
  pb = (program_box *)lq_newuserdata(L, sizeof(program_box));
  memset(pb, 0, sizeof *pb);
  luaL_setmetatable(L, PROGRAM_TYPE);
  lua_createtable(L, UV_COUNT, 0);
  uv = lua_gettop(L);
  lua_pushvalue(L, uv);
  lua_setuservalue(L, -3);
  pb->alloc = lq_lua_allocator(L);
  pb->prog = lq_program_new(pb->alloc);
  if (pb->prog == NULL) return luaL_error(L, "not enough memory");
  read_program(L, pb, 1, uv);
  /* weak cache: lead table -> binding */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawseti(L, uv, UV_CACHE);
  /* the read-only lead of score_one's functions: a proxy whose __index is the record */
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, lq_lead_readonly_error);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_rawseti(L, uv, UV_PROXY_MT);
  lua_setmetatable(L, -2);
  lua_rawseti(L, uv, UV_PROXY);
  for (k = 0; ONE_KEYS[k] != NULL; k++) {
    lua_pushstring(L, ONE_KEYS[k]);
    lua_rawseti(L, uv, UV_K_TOTAL + k);
  }
  lua_pop(L, 1);   /* uv */
  return 1;
}



/* The message of the error on top of the stack, with owner and lead: pops it, raises or keeps it. */
void lq_log_error(lua_State *L, error_log *log, int owners, int index, const char *lead) {
  const char *msg = lua_tostring(L, -1);
  lua_rawgeti(L, owners, index + 1);
  lua_pushfstring(L, "%s failed for lead %s: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "a rule function", lead,
                  msg ? msg : "(error object is not a string)");
  lua_replace(L, -3);
  lua_pop(L, 1);
  log->count++;
  if (log->raise) lua_error(L);
  if (!lua_istable(L, log->slot)) {
    lua_newtable(L);
    lua_replace(L, log->slot);
  }
  if (log->count <= LQ_MAX_REPORTED_ERRORS) lua_rawseti(L, log->slot, (int)log->count);
  else lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)log->count);
  lua_setfield(L, log->slot, "count");
}

/* External matchers (Lua patterns): compiler.lua's function of the value, and of the needle asked
** about (explain), or of any needle (nil). */
int lq_lua_matcher(void *ud, int m, int needle, const char *s, size_t len) {
  lua_matchers *c = (lua_matchers *)ud;
  lua_State *L = c->L;
  int r;
  lua_rawgeti(L, c->fns, m + 1);
  lua_pushlstring(L, s, len);
  if (needle >= 0) lua_pushinteger(L, needle + 1);
  else lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    snprintf(c->message, sizeof c->message, "%s", msg ? msg : "error in a pattern");
    lua_pop(L, 1);
    return -1;
  }
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

void lq_push_lua_matchers(lua_State *L, int uv, lua_matchers *ctx) {
  ctx->L = L;
  ctx->message[0] = '\0';
  lua_rawgeti(L, uv, UV_MATCHERS);
  ctx->fns = lua_gettop(L);
}

void lq_build_luts(lua_State *L, lq_run *run, int uv) {
  lua_matchers ctx;
  int status;
  lq_allocator a = lq_lua_allocator(L);
  lq_push_lua_matchers(L, uv, &ctx);
  status = lq_run_build_luts(run, &a, lq_lua_matcher, &ctx);
  lua_pop(L, 1);
  if (status == -1) luaL_error(L, "not enough memory");
  if (status == -2) luaL_error(L, "a 'matches' pattern failed: %s", ctx.message);
}


/* t[uv[key]] = uv[name], for a UV_K_ key slot and a flat name slot; t an absolute index. */
static void set_name(lua_State *L, int t, int uv, int key, int name) {
  lua_rawgeti(L, uv, key);
  lua_rawgeti(L, uv, name);
  lua_rawset(L, t);
}

static void set_nil(lua_State *L, int t, int uv, int key) {
  lua_rawgeti(L, uv, key);
  lua_pushnil(L);
  lua_rawset(L, t);
}

/* The result of one lead: a new table, or the table at index `into` (non-zero) filled in place
** (fields this lead has not are cleared, its `groups` table reused), so a caller scoring many
** leads in a loop allocates nothing per lead. uv must be an absolute index. A few Lua calls per
** field, each name one lookup in the uservalue (see flatten): this is most of score_one's cost. */
void lq_push_answer(lua_State *L, program_box *pb, int uv, const one_answer *ans, int errors, int into) {
  lq_program *p = pb->prog;
  const double *group_points = ans->group_points;
  int32_t status = ans->status, grade = ans->grade, reason = ans->reason, disq = ans->disq;
  double total = ans->total;
  int g, res, groups;
  if (pb->has_writer) {   /* the values, then one call */
    int base = lua_gettop(L);
    luaL_checkstack(L, 9 + p->ngroups, "too many groups");
    lua_rawgeti(L, uv, UV_WRITER);
    if (into != 0) {
      lua_pushvalue(L, into);
      lua_rawgeti(L, uv, UV_K_GROUPS);
      lua_rawget(L, into);
      if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, p->ngroups);
      }
    } else {
      lua_createtable(L, 0, 7);
      lua_createtable(L, 0, p->ngroups);
    }
    lq_push_number(L, total);
    lua_rawgeti(L, uv, pb->flat_status + status);
    if (p->ngrades > 0) lua_rawgeti(L, uv, pb->flat_grade + grade);
    else lua_pushnil(L);
    if (reason >= 0) lua_rawgeti(L, uv, pb->flat_reason + reason);
    else lua_pushnil(L);
    if (disq >= 0) lua_rawgeti(L, uv, pb->flat_disq + disq);
    else lua_pushnil(L);
    if (errors != 0 && lua_istable(L, errors)) lua_pushvalue(L, errors);
    else lua_pushnil(L);
    for (g = 0; g < p->ngroups; g++) {
      if (!pb->group_hidden[g]) lq_push_number(L, group_points[g]);
    }
    lua_call(L, lua_gettop(L) - base - 1, 1);
    return;
  }
  if (into != 0) lua_pushvalue(L, into);
  else lua_createtable(L, 0, 7);
  res = lua_gettop(L);
  lua_rawgeti(L, uv, UV_K_TOTAL);
  lq_push_number(L, total);
  lua_rawset(L, res);
  set_name(L, res, uv, UV_K_STATUS, pb->flat_status + status);
  if (p->ngrades > 0) set_name(L, res, uv, UV_K_GRADE, pb->flat_grade + grade);
  else if (into != 0) set_nil(L, res, uv, UV_K_GRADE);
  lua_rawgeti(L, uv, UV_K_GROUPS);
  if (into != 0) {   /* the earlier answer's groups table, filled again */
    lua_pushvalue(L, -1);
    lua_rawget(L, res);
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, 0, p->ngroups);
    }
  } else {
    lua_createtable(L, 0, p->ngroups);
  }
  groups = lua_gettop(L);
  for (g = 0; g < p->ngroups; g++) {
    if (pb->group_hidden[g]) continue;
    lua_rawgeti(L, uv, pb->flat_group + g);
    lq_push_number(L, group_points[g]);
    lua_rawset(L, groups);
  }
  lua_rawset(L, res);
  if (reason >= 0) set_name(L, res, uv, UV_K_REASON, pb->flat_reason + reason);
  else if (into != 0) set_nil(L, res, uv, UV_K_REASON);
  if (disq >= 0) set_name(L, res, uv, UV_K_DISQ, pb->flat_disq + disq);
  else if (into != 0) set_nil(L, res, uv, UV_K_DISQ);
  if (errors != 0 && lua_istable(L, errors)) {
    lua_rawgeti(L, uv, UV_K_ERRORS);
    lua_pushvalue(L, errors);
    lua_rawset(L, res);
  } else if (into != 0) {
    set_nil(L, res, uv, UV_K_ERRORS);
  }
}


/* p:field_names() -> the slots' names, for messages and tests */
static int p_fields(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  int f;
  lua_createtable(L, pb->nfields, 0);
  lua_getuservalue(L, 1);
  lua_rawgeti(L, -1, UV_NAMES);
  for (f = 0; f < pb->nfields; f++) {
    lua_createtable(L, 0, 3);
    lua_rawgeti(L, -2, f + 1);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, SOURCE_NAMES[pb->source[f]]);
    lua_setfield(L, -2, "source");
    lua_pushstring(L, VIEW_NAMES[pb->view_kind[f]]);
    lua_setfield(L, -2, "view");
    lua_rawseti(L, -4, f + 1);
  }
  lua_pop(L, 2);
  return 1;
}

static const luaL_Reg program_methods[] = {
  { "score", lq_method_score },
  { "score_one", lq_method_score_one },
  { "explain_one", lq_method_explain_one },
  { "explain_row", lq_method_explain_row },
  { "fields", p_fields },
  { "close", program_gc },
  { NULL, NULL }
};

static const luaL_Reg program_meta[] = {
  { "__gc", program_gc },
  { "__close", program_gc },
  { "__tostring", program_tostring },
  { NULL, NULL }
};

static int binding_tostring(lua_State *L) {
  lua_pushliteral(L, "leadq program binding");
  return 1;
}

static const luaL_Reg binding_meta[] = {
  { "__gc", lq_binding_gc },
  { "__close", lq_binding_gc },
  { "__tostring", binding_tostring },
  { NULL, NULL }
};

static const luaL_Reg score_functions[] = {
  { "program", l_program },
  { "one_scorer", lq_one_scorer },
  { NULL, NULL }
};

void lq_open_program(lua_State *L) {
  lq_new_class(L, PROGRAM_TYPE, program_meta, program_methods);
  lq_new_class(L, BINDING_TYPE, binding_meta, NULL);
  luaL_setfuncs(L, score_functions, 0);
}
