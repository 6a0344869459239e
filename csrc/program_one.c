/* p:score_one and core.one_scorer: one lead given as a Lua table (a record), the real-time path.
** Its values are read into a one-row state (strings through dictionaries that remember what they
** have seen, so a recurring value costs no string test) and the program runs on a batch of one,
** so a lead scores the same one at a time as in bulk. See program_binding.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "civil_time.h"
#include "csv_reader.h"
#include "program_binding.h"

#if !defined(LQ_ONE_DICT_MAX)
#define LQ_ONE_DICT_MAX 65536        /* distinct values remembered per field by score_one */
#endif
#if !defined(LQ_ONE_CACHE)
#define LQ_ONE_CACHE 64              /* per field: recent Lua strings and their codes (a power of 2) */
#endif
#if !defined(LQ_ONE_DIRECT_AT)
#define LQ_ONE_DIRECT_AT 4096        /* past this many values a field's strings are tested directly */
#endif

void lq_one_free(one_state *o, lq_allocator *a) {
  int f;
  size_t nf;
  if (o == NULL) return;
  nf = (size_t)o->nfields;
  lq_run_free(&o->run, a);
  lq_scratch_free(&o->scratch, a);
  if (o->tags != NULL && o->tag_caps != NULL) {
    for (f = 0; f < o->nfields; f++) lq_mem_free(a, o->tags[f], o->tag_caps[f] * sizeof(int32_t));
  }
  if (o->dicts != NULL) {
    for (f = 0; f < o->nfields; f++) lq_dict_free(&o->dicts[f], a);
  }
  lq_mem_free(a, o->numbers, nf * sizeof(double));
  lq_mem_free(a, o->bytes, nf);
  lq_mem_free(a, o->missing, nf);
  lq_mem_free(a, o->can_direct, nf);
  lq_mem_free(a, o->text_offsets, 2 * nf * sizeof(uint64_t));
  lq_mem_free(a, o->tag_offsets, 2 * nf * sizeof(uint64_t));
  lq_mem_free(a, o->tags, nf * sizeof(int32_t *));
  lq_mem_free(a, o->tag_caps, nf * sizeof(size_t));
  lq_mem_free(a, o->dicts, nf * sizeof(lq_dict));
  lq_mem_free(a, o->rule_reason, (size_t)o->nrules * sizeof(int32_t));
  lq_mem_free(a, o->disq_reason, (size_t)o->ndisq * sizeof(int32_t));
  lq_mem_free(a, o->group_points, (size_t)o->ngroups * sizeof(double));
  lq_mem_free(a, o->group_ptrs, (size_t)o->ngroups * sizeof(double *));
  lq_mem_free(a, o->cache_ptr, nf * LQ_ONE_CACHE * sizeof(const char *));
  lq_mem_free(a, o->cache_code, nf * LQ_ONE_CACHE * sizeof(int32_t));
  lq_mem_free(a, o, 1 * sizeof(one_state));
}

one_state *lq_one_state(lua_State *L, program_box *pb) {
  lq_program *p = pb->prog;
  lq_allocator *a = &pb->alloc;
  one_state *o;
  int f, r;
  size_t nf = (size_t)pb->nfields;
  if (pb->one != NULL) return pb->one;
  o = (one_state *)lq_mem_zeroed(a, 1, sizeof(one_state));
  if (o == NULL) luaL_error(L, "not enough memory");
  pb->one = o;   /* owned from here: program_gc frees what exists */
  o->nfields = pb->nfields;
  o->nrules = p->nrules;
  o->ndisq = p->ndisq;
  o->ngroups = p->ngroups;
  if (lq_run_init(&o->run, p, a) != 0 || lq_scratch_init(&o->scratch, p, a) != 0) luaL_error(L, "not enough memory");
  NEW_ARRAY(L, a, o->numbers, nf, double);
  NEW_ARRAY(L, a, o->bytes, nf, uint8_t);
  NEW_ARRAY(L, a, o->missing, nf, uint8_t);
  NEW_ARRAY(L, a, o->can_direct, nf, uint8_t);
  NEW_ARRAY(L, a, o->text_offsets, 2 * nf, uint64_t);
  for (f = 0; f < pb->nfields; f++) {
    int k;
    o->can_direct[f] = pb->view_kind[f] == LQ_VIEW_TAGS;
    for (k = 0; k < p->nleaves; k++) {
      const lq_leaf *lf = &p->leaves[k];
      if (lf->field == f && lf->kind == LQ_LEAF_STRING && p->matchers[lf->matcher].mode == LQ_MATCH_EXTERNAL)
        o->can_direct[f] = 0;
    }
  }
  NEW_ARRAY(L, a, o->tag_offsets, 2 * nf, uint64_t);
  NEW_ARRAY(L, a, o->tags, nf, int32_t *);
  NEW_ARRAY(L, a, o->tag_caps, nf, size_t);
  NEW_ARRAY(L, a, o->dicts, nf, lq_dict);
  NEW_ARRAY(L, a, o->cache_ptr, nf * LQ_ONE_CACHE, const char *);
  NEW_ARRAY(L, a, o->cache_code, nf * LQ_ONE_CACHE, int32_t);
  for (f = 0; f < pb->nfields; f++) lq_dict_init(&o->dicts[f]);
  NEW_ARRAY(L, a, o->rule_reason, p->nrules, int32_t);
  NEW_ARRAY(L, a, o->disq_reason, p->ndisq, int32_t);
  NEW_ARRAY(L, a, o->group_points, p->ngroups, double);
  NEW_ARRAY(L, a, o->group_ptrs, p->ngroups, double *);
  for (r = 0; r < p->nrules; r++) o->rule_reason[r] = r;
  for (r = 0; r < p->ndisq; r++) o->disq_reason[r] = p->nrules + r;
  for (r = 0; r < p->ngroups; r++) o->group_ptrs[r] = &o->group_points[r];
  for (f = 0; f < pb->nfields; f++) {
    lq_view *v = &o->run.views[f];
    memset(v, 0, sizeof *v);
    switch (pb->view_kind[f]) {
    case LQ_VIEW_NUMBER: case LQ_VIEW_VALUES:
      v->kind = (lq_view_kind)pb->view_kind[f];
      v->numbers = &o->numbers[f];
      break;
    case LQ_VIEW_BOOL: case LQ_VIEW_MASK:
      v->kind = (lq_view_kind)pb->view_kind[f];
      v->bytes = &o->bytes[f];
      break;
    case LQ_VIEW_TAGS:
      v->kind = LQ_VIEW_TAGS;
      v->offsets = &o->tag_offsets[2 * f];
      v->missing = &o->missing[f];
      v->dict = &o->dicts[f];
      break;
    default:
      v->kind = LQ_VIEW_ABSENT;
      break;
    }
  }
  o->as_of = NAN;
  return o;
}

static int add_tag(lua_State *L, one_state *o, lq_allocator *a, int f, size_t n, const char *s, size_t len) {
  int32_t code;
  if (n >= o->tag_caps[f]) {
    size_t cap = o->tag_caps[f] < 4 ? 4 : o->tag_caps[f] * 2;
    int32_t *grown = (int32_t *)a->fn(a->ud, o->tags[f], o->tags[f] ? o->tag_caps[f] * sizeof(int32_t) : 0,
                                      cap * sizeof(int32_t));
    if (grown == NULL) return luaL_error(L, "not enough memory");
    o->tags[f] = grown;
    o->tag_caps[f] = cap;
  }
  code = lq_dict_intern(&o->dicts[f], a, s, len);
  if (code < 0) return luaL_error(L, "not enough memory");
  o->tags[f][n] = code;
  return 0;
}


/* The slot of a string's address in its field's cache of recent strings. */
static size_t cache_slot(const char *p) {
  uintptr_t x = (uintptr_t)p;
  return (size_t)((x >> 4) ^ (x >> 11)) & (LQ_ONE_CACHE - 1);
}

/* Field f's value (at stack index idx, left there) into the one-row state: NULL, or a message when
** it cannot be read. *grew is set when a dictionary took a new value (its per-code tables must grow). */
static const char *read_value(lua_State *L, program_box *pb, one_state *o, int f, int idx, int *grew) {
  lq_allocator *a = &pb->alloc;
  int kind = pb->record_kind[f], t = lua_type(L, idx);
  switch (kind) {
  case REC_ANY:
    o->numbers[f] = t == LUA_TNIL ? NAN : 1.0;
    break;
  case REC_NUMBER: case REC_TIME:
    if (t == LUA_TNIL) {
      o->numbers[f] = NAN;
    } else if (t == LUA_TNUMBER) {
      o->numbers[f] = (double)lua_tonumber(L, idx);
    } else if (t == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      double v;
      /* the CSV reader's own parsers: a string means here what it means in a file */
      if (kind == REC_TIME ? lq_scan_time(s, len, &v) || lq_scan_number(s, len, &v)
                           : lq_scan_number(s, len, &v)) {
        o->numbers[f] = v;
      } else {
        return lua_pushfstring(L, "field '%s': cannot read '%s' as %s", pb->names[f], s,
                               kind == REC_TIME ? "a date or time" : "a number");
      }
    } else {
      return lua_pushfstring(L, "field '%s' must be a %s, got %s", pb->names[f],
                             kind == REC_TIME ? "date or time" : "number", luaL_typename(L, idx));
    }
    break;
  case REC_BOOL:
    if (t == LUA_TNIL) {
      o->bytes[f] = LQ_MISSING_BOOL;
    } else if (t == LUA_TBOOLEAN) {
      o->bytes[f] = (uint8_t)lua_toboolean(L, idx);
    } else if (t == LUA_TNUMBER && (lua_tonumber(L, idx) == 0 || lua_tonumber(L, idx) == 1)) {
      o->bytes[f] = (uint8_t)(lua_tonumber(L, idx) == 1);
    } else {
      size_t len = 0;
      const char *s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
      int b;
      if (s != NULL && lq_scan_bool(s, len, &b)) {   /* the CSV reader's booleans: y, no, TRUE, 1, ... */
        o->bytes[f] = (uint8_t)b;
      } else {
        return lua_pushfstring(L, "field '%s' must be true or false, got %s", pb->names[f],
                               s != NULL ? s : luaL_typename(L, idx));
      }
    }
    break;
  case REC_STRING: {
    size_t n = 0, slot = 0;
    const char *ptr;
    if (o->dicts[f].count >= LQ_ONE_DICT_MAX) {   /* forget old values: memory stays bounded */
      lq_dict_free(&o->dicts[f], a);
      lq_dict_init(&o->dicts[f]);
      memset(&o->cache_ptr[(size_t)f * LQ_ONE_CACHE], 0, LQ_ONE_CACHE * sizeof(const char *));
      lq_run_reset_luts(&o->run);   /* their codes meant the values forgotten */
      *grew = 1;
    }
    if (t == LUA_TNIL) {
      o->missing[f] = 1;
    } else if (t == LUA_TSTRING && o->can_direct[f] && o->dicts[f].count >= LQ_ONE_DIRECT_AT) {
      /* A field of many distinct values (an e-mail domain, a company): remembering each costs
      ** more than testing it, so the value itself goes through the same C matchers the
      ** per-code tables are built with. It stays alive in the record until the run is over. */
      size_t len;
      lq_view *v = &o->run.views[f];
      v->kind = LQ_VIEW_TEXT;
      v->text = lua_tolstring(L, idx, &len);
      o->text_offsets[2 * f] = 0;
      o->text_offsets[2 * f + 1] = len;
      v->offsets = &o->text_offsets[2 * f];
      o->missing[f] = 0;
      return NULL;
    } else if (t == LUA_TSTRING && (ptr = lua_tolstring(L, idx, NULL)) != NULL &&
               o->cache_ptr[slot = (size_t)f * LQ_ONE_CACHE + cache_slot(ptr)] == ptr) {
      o->tags[f][0] = o->cache_code[slot];   /* cached: add_tag made the array when it was first seen */
      o->missing[f] = 0;
      n = 1;
    } else if (t == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      int32_t before = o->dicts[f].count;
      add_tag(L, o, a, f, 0, s, len);
      *grew |= o->dicts[f].count != before;
      o->cache_ptr[slot] = s;
      o->cache_code[slot] = o->tags[f][0];
      lua_pushvalue(L, idx);
      lua_rawseti(L, o->anchors, (lua_Integer)slot + 1);
      o->missing[f] = 0;
      n = 1;
    } else if (t == LUA_TNUMBER) {
      size_t len;
      const char *s;
      int32_t before = o->dicts[f].count;
      lua_pushvalue(L, idx);   /* tolstring may turn a number into a string: work on a copy */
      s = lua_tolstring(L, -1, &len);
      add_tag(L, o, a, f, 0, s, len);
      *grew |= o->dicts[f].count != before;
      lua_pop(L, 1);
      o->missing[f] = 0;
      n = 1;
    } else if (t == LUA_TTABLE) {
      int k, count = (int)lua_rawlen(L, idx);
      for (k = 1; k <= count; k++) {
        size_t len;
        const char *s;
        lua_rawgeti(L, idx, k);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
          return lua_pushfstring(L, "field '%s': value %d of the list is %s, not a text", pb->names[f], k,
                                 luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &len);
        add_tag(L, o, a, f, n++, s, len);
        *grew = 1;
        lua_pop(L, 1);
      }
      o->missing[f] = 0;
    } else {
      return lua_pushfstring(L, "field '%s' must be a text, got %s", pb->names[f], luaL_typename(L, idx));
    }
    o->tag_offsets[2 * f] = 0;
    o->tag_offsets[2 * f + 1] = n;
    o->run.views[f].kind = LQ_VIEW_TAGS;
    o->run.views[f].offsets = &o->tag_offsets[2 * f];
    o->run.views[f].tag_codes = o->tags[f];
    o->any_tags |= n > 0 && o->can_direct[f] && o->dicts[f].count >= LQ_ONE_DIRECT_AT;
    break;
  }
  default:
    break;
  }
  return NULL;
}

/* Read one record's fields into the one-row state; a message when a value cannot be read.
** The model's reader (compiler.lua) returns them all from one call: a Lua field access costs a
** fraction of the two C API lookups per field of the fallback, which looks each field up by its
** name as a Lua string kept in the uservalue (index `names`). Either way a record with a
** metatable is read through it, and the extra fields fill what the record lacks. */
static const char *load_record(lua_State *L, program_box *pb, one_state *o, int rec, int extra, int names,
                               int uv, int *grew) {
  int f, k, base;
  const char *bad;
  *grew = 0;
  /* The values stay on the stack until the run is over (one settop, not one pop per field). */
  luaL_checkstack(L, pb->nfields + LUA_MINSTACK, "too many fields");
  if (pb->nread > 0) {   /* the model's reader: one call returns every field's value */
    lua_rawgeti(L, uv, UV_READER);
    lua_pushvalue(L, rec);
    if (extra != 0) lua_pushvalue(L, extra);
    else lua_pushnil(L);
    lua_call(L, 2, pb->nread);
    base = lua_gettop(L) - pb->nread + 1;
  } else {
    int plain = !lua_getmetatable(L, rec);
    if (!plain) lua_pop(L, 1);
    base = lua_gettop(L) + 1;
    for (f = 0; f < pb->nfields; f++) {
      if (pb->source[f] != SRC_RECORD) continue;
      lua_rawgeti(L, names, f + 1);
      if (plain) lua_rawget(L, rec);
      else lua_gettable(L, rec);
      if (extra != 0 && lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawgeti(L, names, f + 1);
        lua_gettable(L, extra);
      }
    }
  }
  for (f = 0, k = base; f < pb->nfields; f++) {
    if (pb->source[f] != SRC_RECORD) continue;
    if ((bad = read_value(L, pb, o, f, k++, grew)) != NULL) return bad;
  }
  return NULL;
}

/* Reads the options table at opts (anything else: none given) into out: 0, or 1 when as_of is
** neither a number nor absent (a date as text, which the model's Lua method converts, or a
** mistake), out then unfilled. */
static int read_one_options(lua_State *L, int opts, one_options *out) {
  int t;
  out->as_of = 0;
  out->raise = 0;
  if (lua_type(L, opts) != LUA_TTABLE) {
    out->as_of = (double)time(NULL);
    return 0;
  }
  t = LQ_GETFIELD_TYPE(L, opts, "as_of");
  if (t == LUA_TNUMBER) out->as_of = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (t != LUA_TNUMBER && t != LUA_TNIL) return 1;
  if (t == LUA_TNIL) out->as_of = (double)time(NULL);
  if (LQ_GETFIELD_TYPE(L, opts, "errors") == LUA_TSTRING) out->raise = strcmp(lua_tostring(L, -1), "raise") == 0;
  lua_pop(L, 1);
  return 0;
}

/* The record's Lua function rules, each into its field slot; errors into log. A function sees the
** record (over the extra fields) through a read-only proxy. */
static void run_record_functions(lua_State *L, program_box *pb, one_state *o, const one_call *call, error_log *log) {
  int k, fns, owners, proxy, top = lua_gettop(L);
  lua_rawgeti(L, call->uv, UV_FUNCS);
  fns = lua_gettop(L);
  lua_rawgeti(L, call->uv, UV_OWNERS);
  owners = lua_gettop(L);
  lua_rawgeti(L, call->uv, UV_PROXY);
  proxy = lua_gettop(L);
  lua_rawgeti(L, call->uv, UV_PROXY_MT);
  if (call->extra != 0) {   /* functions see the record over the extra fields */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, call->extra)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
    lua_pushnil(L);
    while (lua_next(L, call->record)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
  } else {
    lua_pushvalue(L, call->record);
  }
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  for (k = 0; k < pb->nprepass; k++) {
    const prepass *pp = &pb->pre[k];
    if (pp->points) {
      uint8_t m;
      lq_program_rule_mask(&o->run, &o->scratch, pp->rule, 0, 1, &m);
      o->numbers[pp->slot] = 0.0;
      if (!m) continue;
    }
    lua_rawgeti(L, fns, k + 1);
    lua_pushvalue(L, proxy);
    if (lua_pcall(L, 1, 1, 0) != 0) {
      if (!pp->points) o->bytes[pp->slot] = 0;
      lq_log_error(L, log, owners, k, "given");
    } else if (!pp->points) {
      o->bytes[pp->slot] = (uint8_t)lua_toboolean(L, -1);
      lua_pop(L, 1);
    } else if (lua_type(L, -1) != LUA_TNUMBER || !isfinite((double)lua_tonumber(L, -1))) {
      const char *tn = lua_type(L, -1) == LUA_TNUMBER ? "a number that is not finite" : luaL_typename(L, -1);
      lua_pop(L, 1);
      lua_pushfstring(L, "the points function returned %s, not a number", tn);
      lq_log_error(L, log, owners, k, "given");
    } else {
      o->numbers[pp->slot] = (double)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);   /* the record's values stay on the stack until the run is over */
}

void lq_one_answer(const one_state *o, one_answer *ans) {
  ans->total = o->total;
  ans->status = o->status;
  ans->grade = o->grade;
  ans->reason = o->reason;
  ans->disq = o->disq;
  ans->group_points = o->group_points;
}

/* Runs the one-row program on the call (program, record, options, extra) at stack indexes 1 to 4;
** call tells where each value, the errors and the uservalue are (the stack is left at the last). */
const char *lq_one_run(lua_State *L, program_box *pb, one_state *o, const one_options *given, one_call *call) {
  lq_out out;
  error_log log;
  int uv, names, raise, grew, extra;
  const char *bad;
  double as_of;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 4);
  call->record = 2;
  call->options = 3;
  call->extra = extra = lua_type(L, 4) == LUA_TTABLE ? 4 : 0;
  memset(&log, 0, sizeof log);
  lua_pushnil(L);
  log.slot = call->errors = lua_gettop(L);
  lua_getuservalue(L, 1);
  call->uv = uv = lua_gettop(L);
  if (given != NULL) {
    as_of = given->as_of;
    raise = given->raise;
  } else {
    one_options read;
    if (read_one_options(L, call->options, &read) != 0)
      luaL_error(L, "as_of must be a number of seconds here (leadq.model converts dates)");
    as_of = read.as_of;
    raise = read.raise;
  }
  log.raise = raise;
  lua_rawgeti(L, uv, UV_NAMES);
  names = lua_gettop(L);
  lua_rawgeti(L, uv, UV_ONE_ANCHORS);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, o->nfields * LQ_ONE_CACHE, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, uv, UV_ONE_ANCHORS);
  }
  o->anchors = lua_gettop(L);
  o->any_tags = 0;
  bad = load_record(L, pb, o, call->record, extra, names, uv, &grew);
  if (bad != NULL) return bad;
  if (as_of != o->as_of) {
    lq_run_set_as_of(&o->run, as_of);
    o->as_of = as_of;
  }
  if (grew || !o->luts_built || o->any_tags) {   /* per-code tables only grow with new values */
    lq_build_luts(L, &o->run, uv);
    o->luts_built = 1;
  }
  if (pb->nprepass > 0) run_record_functions(L, pb, o, call, &log);
  memset(&out, 0, sizeof out);
  out.total = &o->total;
  out.groups = o->group_ptrs;
  out.status = &o->status;
  out.grade = &o->grade;
  out.reason = &o->reason;
  out.disqualified_by = &o->disq;
  out.rule_reason = o->rule_reason;
  out.disq_reason = o->disq_reason;
  lq_program_exec(&o->run, &o->scratch, 0, 1, &out);
  lua_settop(L, call->uv);
  return NULL;
}

/* The options' `into` table as a stack index, or 0. */
static int one_into(lua_State *L, const one_call *call) {
  if (lua_type(L, call->options) != LUA_TTABLE) return 0;
  lua_rawgeti(L, call->uv, UV_K_INTO);
  lua_gettable(L, call->options);
  if (lua_type(L, -1) == LUA_TTABLE) return lua_gettop(L);
  if (!lua_isnil(L, -1)) luaL_error(L, "score_one: into must be a table to fill, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  return 0;
}

/* score_one on a checked record program at index 1 (see lq_method_score_one and one_scorer_call) */
static int score_one_checked(lua_State *L, program_box *pb, const one_options *given) {
  one_state *o = lq_one_state(L, pb);
  one_call call;
  one_answer ans;
  const char *bad = lq_one_run(L, pb, o, given, &call);
  if (bad != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, bad);
    return 2;
  }
  lq_one_answer(o, &ans);
  lq_push_answer(L, pb, call.uv, &ans, call.errors, one_into(L, &call));
  return 1;
}

/* p:score_one(record [, options [, extra]]) */
int lq_method_score_one(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  if (!pb->record_mode) return luaL_error(L, "this program scores tables (compiled for a table's columns)");
  return score_one_checked(L, pb, NULL);
}

/* model:score_one(record [, events] [, options]), one model's method once its record program
** exists (leadq.model installs it): the usual call (a record table, no events, options with no
** as_of or a number) goes straight to the program, with no Lua frame and no method lookup on it;
** anything else (events, a date as text, misuse) to the model's Lua method, upvalue 2. */
static int one_scorer_call(lua_State *L) {
  int n = lua_gettop(L);
  int fast = n >= 2 && n <= 4 && lua_type(L, 2) == LUA_TTABLE && (n < 3 || lua_isnil(L, 3));
  one_options given;
  program_box *pb;
  /* the options read here once (a date as text goes to the model's Lua method) */
  if (fast && n == 4 && !lua_isnil(L, 4)) fast = lua_type(L, 4) == LUA_TTABLE;
  if (fast && read_one_options(L, 4, &given) != 0) fast = 0;   /* 4 past the top: none given */
  if (!fast) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    if (lua_pcall(L, n, LUA_MULTRET, 0) != 0) {
      /* The method's own messages start with its name and are raised at its caller's level, which
      ** is now this C function (no line): they get the line that called model:score_one. */
      if (lua_type(L, -1) == LUA_TSTRING && strncmp(lua_tostring(L, -1), "score_one:", 10) == 0) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
      }
      return lua_error(L);
    }
    return lua_gettop(L);
  }
  lua_settop(L, 4);
  lua_remove(L, 3);                       /* events: nil */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_replace(L, 1);                      /* the model -> its record program */
  pb = (program_box *)lua_touserdata(L, 1);   /* a record program: lq_one_scorer checked it */
  if (pb->prog == NULL) return luaL_error(L, "attempt to use a closed leadq program");
  return score_one_checked(L, pb, &given);
}

/* core.one_scorer(program, method) -> the function above, for one model */
int lq_one_scorer(lua_State *L) {
  program_box *pb = lq_check_program(L, 1);
  if (!pb->record_mode) return luaL_error(L, "one_scorer needs a program compiled for records");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_pushcclosure(L, one_scorer_call, 2);
  return 1;
}
