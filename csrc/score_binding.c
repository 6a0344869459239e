/* The Lua face of the scoring engine: userdata "leadq.Program", a model compiled by compiler.lua.
**
**   core.program(desc)                    -> program (desc: see lua/leadq/compiler.lua)
**   p:score(lead, features, results, prefix, as_of, threads, raise, id_column)
**                                         -> results table, errors (nil when none)
**   p:score_one(record, options, extra)   -> result, or nil and a message (a value of the wrong kind)
**   p:explain_row(lead, features, results, row, as_of) / p:explain_one(record, options, extra)
**                                         -> the raw facts of one lead (explain.lua words them)
**
** Lua function rules run here, before the C pass, per lead and in protected mode, into columns
** the pass reads like any other; the pass itself never calls Lua and runs on several threads.
** Everything a run needs (bound views, per-code tables, scratch, function columns) is kept on a
** "binding" userdata per lead table, cached weakly on the program, so the per-code tables of a
** table scored again are not rebuilt. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "compat.h"
#include "bindings.h"
#include "civil_time.h"
#include "csv_reader.h"
#include "program.h"

#define PROGRAM_TYPE "leadq.Program"
#define BINDING_TYPE "leadq.ProgramBinding"
#define CURSOR_TYPE "leadq.LeadCursor"

#if !defined(LQ_MAX_REPORTED_ERRORS)
#define LQ_MAX_REPORTED_ERRORS 100   /* messages kept per run; the count goes on */
#endif
#if !defined(LQ_ONE_DICT_MAX)
#define LQ_ONE_DICT_MAX 65536        /* distinct values remembered per field by score_one */
#endif
#if !defined(LQ_ONE_CACHE)
#define LQ_ONE_CACHE 64              /* per field: recent Lua strings and their codes (a power of 2) */
#endif
#if !defined(LQ_ONE_DIRECT_AT)
#define LQ_ONE_DIRECT_AT 4096        /* past this many values a field's strings are tested directly */
#endif

enum { SRC_LEAD = 0, SRC_FEATURES, SRC_RESULTS, SRC_RECORD, SRC_FUNCTION, SRC_ABSENT };
enum { REC_ANY = 0, REC_NUMBER, REC_TIME, REC_BOOL, REC_STRING };

/* The program's uservalue table: the Lua values it needs, by slot. */
enum {
  UV_NAMES = 1, UV_STATUSES, UV_GRADES, UV_RULE_IDS, UV_DISQ_IDS, UV_DISQ_REASONS, UV_GROUPS,
  UV_FUNCS, UV_MATCHERS, UV_CACHE, UV_PROXY, UV_PROXY_MT, UV_OWNERS,
  /* score_one's keys, kept as Lua strings so a call hashes no C string */
  UV_K_TOTAL, UV_K_STATUS, UV_K_GRADE, UV_K_GROUPS, UV_K_REASON, UV_K_DISQ, UV_K_ERRORS, UV_K_INTO,
  UV_ONE_ANCHORS,   /* the strings score_one's caches point at, so none is freed while cached */
  UV_READER,        /* record mode: reader(record, extra) -> the value of each record field, in order */
  UV_WRITER,        /* record mode: writer(answer, groups, total, status, ...) -> answer (compiler.lua) */
  UV_COUNT
};

static const char *const ONE_KEYS[] = {
  "total", "status", "grade", "groups", "reason", "disqualified_by", "errors", "into", NULL
};

typedef struct prepass {
  int slot;          /* the function column it fills */
  int points;        /* 1: a points function of rule `rule`; 0: a condition */
  int rule;
  int value_field;   /* -1: fn(lead); else fn(value of this field) */
} prepass;

/* score_one's lead: one row of values, dictionaries that remember the strings seen. */
typedef struct one_state {
  lq_run run;
  lq_scratch scratch;
  double *numbers;
  uint8_t *bytes, *missing;
  uint8_t *can_direct;       /* per field: its string tests are all C matchers */
  int any_tags;              /* a field was read through its dictionary this call */
  uint64_t *tag_offsets;     /* 2 per field */
  uint64_t *text_offsets;    /* 2 per field: 0 and the length of a value tested directly */
  int32_t **tags;
  size_t *tag_caps;
  lq_dict *dicts;
  int32_t *rule_reason, *disq_reason;
  double total, *group_points, **group_ptrs;
  int32_t status, grade, reason, disq;
  uint8_t *rule_fired, *disq_fired;
  double *rule_raw, *rule_points, *group_raw, as_of;
  int nfields, nrules, ndisq, ngroups, luts_built;
  /* Per field, LQ_ONE_CACHE recent strings by address (a Lua string object's bytes never move
  ** and never change; each cached one is anchored in UV_ONE_ANCHORS, so an address cannot be
  ** reused by another string while cached) and their codes: a recurring value costs no hashing. */
  const char **cache_ptr;    /* nfields * LQ_ONE_CACHE */
  int32_t *cache_code;
  int anchors;               /* stack index of the anchors table during a call */
} one_state;

typedef struct program_box {
  lq_program *prog;
  lq_allocator alloc;
  const char **names;        /* nfields: the field names, kept alive by the uservalue's names list */
  int nfields, nprepass;
  int *source, *record_kind, *view_kind, *group_hidden;
  prepass *pre;
  one_state *one;
  int record_mode, nstatus, ngrade_names;
  /* score_one's answer names, flat in the uservalue from UV_COUNT on, so each costs one lookup:
  ** statuses, grades, reasons (rule ids, then disqualifier reasons), disqualifier ids, groups. */
  int flat_status, flat_grade, flat_reason, flat_disq, flat_group;
  int nread;                 /* record fields the reader returns; 0: read them one lookup at a time */
  int has_writer;            /* score_one's answer written by one call to the writer */
} program_box;

/* A text column of the lead table turned into dictionary codes once, so its string tests too
** run once per distinct value (and then through per-code tables on every later run). */
typedef struct derived_codes {
  const lq_column *col;
  size_t rows, cap;
  int32_t *codes;
  lq_dict dict;
} derived_codes;

/* A program bound to one lead table: views, per-code tables, scratch, function columns. */
typedef struct binding_box {
  lq_allocator alloc;
  int ready, nfields, nleaves, nscratch;
  lq_run run;
  const lq_dict **lut_dict;
  lq_scratch *scratches;     /* LQ_MAX_THREADS slots, nscratch made */
  uint8_t **masks;
  double **values;
  uint8_t *rule_mask;
  size_t buf_rows;
  derived_codes *derived;    /* nfields */
} binding_box;

typedef struct cursor {
  size_t row;
} cursor;

static lq_allocator lua_allocator(lua_State *L) {
  lq_allocator a;
  a.fn = (lq_alloc_fn)lua_getallocf(L, &a.ud);
  return a;
}

static void *mem_zeroed(lq_allocator *a, size_t count, size_t elem) {
  size_t n = count * elem;
  void *p;
  if (elem != 0 && count > ((size_t)-1) / 4 / elem) return NULL;
  p = a->fn(a->ud, NULL, 0, n > 0 ? n : 1);
  if (p != NULL) memset(p, 0, n > 0 ? n : 1);
  return p;
}

static void mem_free(lq_allocator *a, void *p, size_t count, size_t elem) {
  size_t n = count * elem;
  if (p != NULL) a->fn(a->ud, p, n > 0 ? n : 1, 0);
}

#define NEW_ARRAY(L, a, ptr, count, type) \
  do { if (((ptr) = (type *)mem_zeroed((a), (size_t)(count), sizeof(type))) == NULL) \
         luaL_error((L), "not enough memory"); } while (0)

/* ---- one_state ---- */

static void one_free(one_state *o, lq_allocator *a) {
  int f;
  size_t nf;
  if (o == NULL) return;
  nf = (size_t)o->nfields;
  lq_run_free(&o->run, a);
  lq_scratch_free(&o->scratch, a);
  if (o->tags != NULL && o->tag_caps != NULL) {
    for (f = 0; f < o->nfields; f++) mem_free(a, o->tags[f], o->tag_caps[f], sizeof(int32_t));
  }
  if (o->dicts != NULL) {
    for (f = 0; f < o->nfields; f++) lq_dict_free(&o->dicts[f], a);
  }
  mem_free(a, o->numbers, nf, sizeof(double));
  mem_free(a, o->bytes, nf, 1);
  mem_free(a, o->missing, nf, 1);
  mem_free(a, o->can_direct, nf, 1);
  mem_free(a, o->text_offsets, 2 * nf, sizeof(uint64_t));
  mem_free(a, o->tag_offsets, 2 * nf, sizeof(uint64_t));
  mem_free(a, o->tags, nf, sizeof(int32_t *));
  mem_free(a, o->tag_caps, nf, sizeof(size_t));
  mem_free(a, o->dicts, nf, sizeof(lq_dict));
  mem_free(a, o->rule_reason, (size_t)o->nrules, sizeof(int32_t));
  mem_free(a, o->disq_reason, (size_t)o->ndisq, sizeof(int32_t));
  mem_free(a, o->group_points, (size_t)o->ngroups, sizeof(double));
  mem_free(a, o->group_ptrs, (size_t)o->ngroups, sizeof(double *));
  mem_free(a, o->rule_fired, (size_t)o->nrules, 1);
  mem_free(a, o->disq_fired, (size_t)o->ndisq, 1);
  mem_free(a, o->rule_raw, (size_t)o->nrules, sizeof(double));
  mem_free(a, o->rule_points, (size_t)o->nrules, sizeof(double));
  mem_free(a, o->group_raw, (size_t)o->ngroups, sizeof(double));
  mem_free(a, o->cache_ptr, nf * LQ_ONE_CACHE, sizeof(const char *));
  mem_free(a, o->cache_code, nf * LQ_ONE_CACHE, sizeof(int32_t));
  mem_free(a, o, 1, sizeof(one_state));
}

/* ---- program userdata ---- */

static program_box *check_program(lua_State *L, int i) {
  program_box *pb = (program_box *)luaL_checkudata(L, i, PROGRAM_TYPE);
  if (pb->prog == NULL) luaL_error(L, "attempt to use a closed leadq program");
  return pb;
}

static int program_gc(lua_State *L) {
  program_box *pb = (program_box *)luaL_checkudata(L, 1, PROGRAM_TYPE);
  lq_allocator *a = &pb->alloc;
  size_t nf = (size_t)pb->nfields;
  one_free(pb->one, a);
  pb->one = NULL;
  mem_free(a, (void *)pb->names, nf, sizeof(char *));
  pb->names = NULL;
  mem_free(a, pb->source, nf, sizeof(int));
  mem_free(a, pb->record_kind, nf, sizeof(int));
  mem_free(a, pb->view_kind, nf, sizeof(int));
  pb->source = pb->record_kind = pb->view_kind = NULL;
  if (pb->prog != NULL) {
    mem_free(a, pb->group_hidden, (size_t)pb->prog->ngroups, sizeof(int));
    pb->group_hidden = NULL;
  }
  mem_free(a, pb->pre, (size_t)pb->nprepass, sizeof(prepass));
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
    needles = (const char **)mem_zeroed(&a, (size_t)count, sizeof(char *));
    lengths = (size_t *)mem_zeroed(&a, (size_t)count, sizeof(size_t));
    if (needles == NULL || lengths == NULL) {
      mem_free(&a, (void *)needles, (size_t)count, sizeof(char *));
      mem_free(&a, lengths, (size_t)count, sizeof(size_t));
      luaL_error(L, "not enough memory");
    }
    for (k = 0; k < count; k++) {
      lua_rawgeti(L, -1, k + 1);
      needles[k] = lua_tolstring(L, -1, &lengths[k]);
      lua_pop(L, 1);
      if (needles[k] == NULL) needles[k] = "";
    }
    k = lq_program_set_matcher(p, i, (lq_match_mode)mode, count, needles, lengths);
    mem_free(&a, (void *)needles, (size_t)count, sizeof(char *));
    mem_free(&a, lengths, (size_t)count, sizeof(size_t));
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
    pp->value_field = desc_int(L, t, "field", 0) - 1;
    if (pp->slot < 0 || pp->slot >= pb->nfields || (pp->points && (pp->rule < 0 || pp->rule >= nrules)) ||
        pp->value_field >= pb->nfields) luaL_error(L, "program description: bad function %d", i + 1);
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

static int readonly_error(lua_State *L) {
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
  pb->alloc = lua_allocator(L);
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
  lua_pushcfunction(L, readonly_error);
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

/* ---- errors of Lua functions, collected per run ---- */

typedef struct error_log {
  int slot;         /* stack index holding nil until the first error, then the errors table */
  int raise;
  long count;
} error_log;

/* The message of the error on top of the stack, with owner and lead: pops it, raises or keeps it. */
static void log_error(lua_State *L, error_log *log, int owners, int index, const char *lead) {
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

/* ---- values of a table cell, for rule functions ---- */

static void push_cell(lua_State *L, const lq_column *c, size_t row) {
  size_t len;
  const char *s;
  uint64_t k;
  switch (c->type) {
  case LQ_NUMBER: case LQ_TIME:
    if (isnan(c->numbers[row])) break;
    lq_push_number(L, c->numbers[row]);
    return;
  case LQ_BOOLEAN:
    if (c->bools[row] == LQ_MISSING_BOOL) break;
    lua_pushboolean(L, c->bools[row]);
    return;
  case LQ_CATEGORY:
    if (c->codes[row] < 0) break;
    s = lq_dict_string(&c->dict, c->codes[row], &len);
    lua_pushlstring(L, s, len);
    return;
  case LQ_TEXT:
    if (c->text_missing[row]) break;
    lua_pushlstring(L, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
    return;
  case LQ_TAGS:
    if (c->text_missing[row]) break;
    lua_createtable(L, (int)(c->tag_offsets[row + 1] - c->tag_offsets[row]), 0);
    for (k = c->tag_offsets[row]; k < c->tag_offsets[row + 1]; k++) {
      s = lq_dict_string(&c->dict, c->tag_codes[k], &len);
      lua_pushlstring(L, s, len);
      lua_rawseti(L, -2, (int)(k - c->tag_offsets[row] + 1));
    }
    return;
  default:
    break;
  }
  lua_pushnil(L);
}

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
        push_cell(L, t->cols[col], c->row);
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
  lua_pushcfunction(L, readonly_error);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  return c;
}

/* ---- binding userdata ---- */

static int binding_gc(lua_State *L) {
  binding_box *b = (binding_box *)luaL_checkudata(L, 1, BINDING_TYPE);
  lq_allocator *a = &b->alloc;
  int i;
  if (!b->ready) return 0;
  lq_run_free(&b->run, a);
  if (b->scratches != NULL) {
    for (i = 0; i < b->nscratch; i++) lq_scratch_free(&b->scratches[i], a);
  }
  mem_free(a, b->scratches, LQ_MAX_THREADS, sizeof(lq_scratch));
  if (b->masks != NULL) {
    for (i = 0; i < b->nfields; i++) mem_free(a, b->masks[i], b->buf_rows, 1);
  }
  if (b->values != NULL) {
    for (i = 0; i < b->nfields; i++) mem_free(a, b->values[i], b->buf_rows, sizeof(double));
  }
  mem_free(a, b->masks, (size_t)b->nfields, sizeof(uint8_t *));
  mem_free(a, b->values, (size_t)b->nfields, sizeof(double *));
  mem_free(a, b->rule_mask, b->buf_rows, 1);
  mem_free(a, b->lut_dict, (size_t)b->nleaves, sizeof(lq_dict *));
  if (b->derived != NULL) {
    for (i = 0; i < b->nfields; i++) {
      mem_free(a, b->derived[i].codes, b->derived[i].cap, sizeof(int32_t));
      lq_dict_free(&b->derived[i].dict, a);
    }
  }
  mem_free(a, b->derived, (size_t)b->nfields, sizeof(derived_codes));
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
  b->alloc = lua_allocator(L);
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
  NEW_ARRAY(L, &b->alloc, b->derived, b->nfields, derived_codes);
  {
    int f;
    for (f = 0; f < b->nfields; f++) lq_dict_init(&b->derived[f].dict);
  }
  return b;
}

/* Codes for rows [d->rows, nrows) of text column c; 1 when the dictionary was started afresh. */
static int derive_codes(lua_State *L, binding_box *b, derived_codes *d, const lq_column *c, size_t nrows) {
  lq_allocator *a = &b->alloc;
  int fresh = 0;
  size_t row;
  if (d->col != c || nrows < d->rows) {
    lq_dict_free(&d->dict, a);
    lq_dict_init(&d->dict);
    d->col = c;
    d->rows = 0;
    fresh = 1;
  }
  if (nrows > d->cap) {
    size_t cap = nrows + nrows / 4 + 16;
    int32_t *grown = (int32_t *)a->fn(a->ud, d->codes, d->codes ? d->cap * sizeof(int32_t) : 0, cap * sizeof(int32_t));
    if (grown == NULL) luaL_error(L, "not enough memory");
    d->codes = grown;
    d->cap = cap;
  }
  for (row = d->rows; row < nrows; row++) {
    int32_t code = LQ_MISSING_CODE;
    if (!c->text_missing[row]) {
      code = lq_dict_intern(&d->dict, a, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
      if (code < 0) luaL_error(L, "not enough memory");
    }
    d->codes[row] = code;
  }
  d->rows = nrows;
  return fresh;
}

/* Result tables' memory. A result column is written once, front to back, right after it is
** allocated, so its first-touch page faults are most of a bulk run's cost. Big arrays are placed
** on a 2 MiB boundary (over-allocating by 2 MiB of address space, never touched) and advised for
** huge pages, so a 8 MB column costs 4 faults instead of 2000. Small requests go straight through.
** The Lua allocator's pair lives in a userdata anchored in the result table's uservalue, so it
** outlives the table (finalizers keep what they reference alive until they have run). */
#if !defined(LQ_BIG_BLOCK)
#define LQ_BIG_BLOCK ((size_t)1 << 20)
#endif
#define LQ_HUGE_ALIGN ((size_t)2 << 20)

typedef struct result_allocator {
  lua_Alloc fn;
  void *ud;
} result_allocator;

typedef struct big_header {
  void *raw;
  size_t raw_size;
} big_header;

static void *big_alloc(result_allocator *ra, size_t n) {
  /* slack for the alignment, and for the last huge page to cover the tail too */
  size_t raw_size = n + 2 * LQ_HUGE_ALIGN + sizeof(big_header);
  char *raw, *data;
  big_header *h;
  if (raw_size < n) return NULL;
  raw = (char *)ra->fn(ra->ud, NULL, 0, raw_size);
  if (raw == NULL) return NULL;
  data = (char *)(((uintptr_t)raw + sizeof(big_header) + LQ_HUGE_ALIGN - 1) & ~(uintptr_t)(LQ_HUGE_ALIGN - 1));
  h = (big_header *)(void *)data - 1;
  h->raw = raw;
  h->raw_size = raw_size;
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(LQ_NO_HUGEPAGES)
  (void)madvise(data, (n + LQ_HUGE_ALIGN - 1) & ~(LQ_HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
  return data;
}

static void big_free(result_allocator *ra, void *p) {
  big_header *h = (big_header *)p - 1;
  ra->fn(ra->ud, h->raw, h->raw_size, 0);
}

/* lua_Alloc contract; a block is big when its size says so (callers pass the true old size). */
static void *result_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  result_allocator *ra = (result_allocator *)ud;
  int was_big = ptr != NULL && osize >= LQ_BIG_BLOCK;
  void *np;
  if (nsize == 0) {
    if (was_big) big_free(ra, ptr);
    else if (ptr != NULL) ra->fn(ra->ud, ptr, osize, 0);
    return NULL;
  }
  if (!was_big && nsize < LQ_BIG_BLOCK) return ra->fn(ra->ud, ptr, ptr != NULL ? osize : 0, nsize);
  np = nsize >= LQ_BIG_BLOCK ? big_alloc(ra, nsize) : ra->fn(ra->ud, NULL, 0, nsize);
  if (np == NULL) return NULL;   /* the old block stays valid, as realloc's does */
  if (ptr != NULL) {
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    if (was_big) big_free(ra, ptr);
    else ra->fn(ra->ud, ptr, osize, 0);
  }
  return np;
}

/* A new, empty result table on the stack, its memory through result_alloc. */
static lq_table *push_result_table(lua_State *L) {
  lq_table **slot = lq_push_table_box(L);
  result_allocator *ra;
  lq_allocator a;
  ra = (result_allocator *)lua_newuserdata(L, sizeof(result_allocator));
  ra->fn = lua_getallocf(L, &ra->ud);
  lua_createtable(L, 1, 0);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
  lua_setuservalue(L, -2);   /* box's uservalue = { allocator } */
  a.fn = result_alloc;
  a.ud = ra;
  *slot = lq_table_new(a);
  if (*slot == NULL) luaL_error(L, "not enough memory");
  return *slot;
}


/* Function columns and the rule mask, sized for nrows. */
static void binding_buffers(lua_State *L, program_box *pb, binding_box *b, size_t nrows) {
  lq_allocator *a = &b->alloc;
  int f;
  if (pb->nprepass == 0 || b->buf_rows == nrows) return;
  for (f = 0; f < b->nfields; f++) {
    mem_free(a, b->masks[f], b->buf_rows, 1);
    mem_free(a, b->values[f], b->buf_rows, sizeof(double));
    b->masks[f] = NULL;
    b->values[f] = NULL;
  }
  mem_free(a, b->rule_mask, b->buf_rows, 1);
  b->rule_mask = NULL;
  b->buf_rows = nrows;
  NEW_ARRAY(L, a, b->rule_mask, nrows, uint8_t);
  for (f = 0; f < b->nfields; f++) {
    if (pb->source[f] != SRC_FUNCTION) continue;
    if (pb->view_kind[f] == LQ_VIEW_MASK) NEW_ARRAY(L, a, b->masks[f], nrows, uint8_t);
    else NEW_ARRAY(L, a, b->values[f], nrows, double);
  }
}

static void view_of_column(lq_view *v, const lq_column *c) {
  memset(v, 0, sizeof *v);
  switch (c->type) {
  case LQ_NUMBER: case LQ_TIME: v->kind = LQ_VIEW_NUMBER; v->numbers = c->numbers; break;
  case LQ_BOOLEAN: v->kind = LQ_VIEW_BOOL; v->bytes = c->bools; break;
  case LQ_CATEGORY: v->kind = LQ_VIEW_CODES; v->codes = c->codes; v->dict = &c->dict; break;
  case LQ_TEXT:
    v->kind = LQ_VIEW_TEXT; v->offsets = c->offsets; v->text = c->text; v->missing = c->text_missing;
    break;
  case LQ_TAGS:
    v->kind = LQ_VIEW_TAGS; v->offsets = c->tag_offsets; v->tag_codes = c->tag_codes; v->missing = c->text_missing;
    v->dict = &c->dict;
    break;
  default: v->kind = LQ_VIEW_ABSENT; break;
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
        view_of_column(v, t->cols[col]);
        if ((int)v->kind != pb->view_kind[f])
          luaL_error(L, "column '%s' is not of the type the model was compiled for (%s)", lua_tostring(L, -1),
                     lq_type_name(t->cols[col]->type));
        if (v->kind == LQ_VIEW_TEXT && src == SRC_LEAD) {
          derived_codes *d = &b->derived[f];
          if (derive_codes(L, b, d, t->cols[col], nrows)) {
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

/* External matchers (Lua patterns): one call per distinct value. */
typedef struct ext_ctx {
  lua_State *L;
  int fns;
  char message[256];
} ext_ctx;

static int ext_match(void *ud, int m, const char *s, size_t len) {
  ext_ctx *c = (ext_ctx *)ud;
  lua_State *L = c->L;
  int r;
  lua_rawgeti(L, c->fns, m + 1);
  lua_pushlstring(L, s, len);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    snprintf(c->message, sizeof c->message, "%s", msg ? msg : "error in a pattern");
    lua_pop(L, 1);
    return -1;
  }
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static void build_luts(lua_State *L, lq_run *run, int uv) {
  ext_ctx ctx;
  int status;
  lq_allocator a = lua_allocator(L);
  ctx.L = L;
  ctx.message[0] = '\0';
  lua_rawgeti(L, uv, UV_MATCHERS);
  ctx.fns = lua_gettop(L);
  status = lq_run_build_luts(run, &a, ext_match, &ctx);
  lua_pop(L, 1);
  if (status == -1) luaL_error(L, "not enough memory");
  if (status == -2) luaL_error(L, "a 'matches' pattern failed: %s", ctx.message);
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

/* Lua functions, rows [begin, end), into their columns. The proxy's cursor must be at index
** proxy with `cur` its cursor; functions and owners tables at uv. */
static void run_functions(lua_State *L, program_box *pb, lq_run *run, lq_scratch *s, binding_box *b, size_t begin,
                          size_t end, int proxy, cursor *cur, int uv, error_log *log, const lq_table *lead,
                          int id_col) {
  int k, fns, owners;
  char who[128];
  lua_rawgeti(L, uv, UV_FUNCS);
  fns = lua_gettop(L);
  lua_rawgeti(L, uv, UV_OWNERS);
  owners = lua_gettop(L);
  for (k = 0; k < pb->nprepass; k++) {
    const prepass *pp = &pb->pre[k];
    size_t row;
    if (!pp->points) {
      uint8_t *mask = b->masks[pp->slot];
      const lq_view *fv = pp->value_field >= 0 ? &run->views[pp->value_field] : NULL;
      for (row = begin; row < end; row++) {
        cur->row = row;
        lua_rawgeti(L, fns, k + 1);
        if (fv == NULL) {
          lua_pushvalue(L, proxy);
        } else if (fv->kind == LQ_VIEW_TEXT && !fv->missing[row]) {
          lua_pushlstring(L, fv->text + fv->offsets[row], (size_t)(fv->offsets[row + 1] - fv->offsets[row]));
        } else {
          lua_pushnil(L);
        }
        if (lua_pcall(L, 1, 1, 0) != 0) {
          mask[row] = 0;
          log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else {
          mask[row] = (uint8_t)lua_toboolean(L, -1);
          lua_pop(L, 1);
        }
      }
    } else {
      double *values = b->values[pp->slot];
      lq_program_rule_mask(run, s, pp->rule, begin, end, b->rule_mask);
      for (row = begin; row < end; row++) {
        values[row] = 0.0;
        if (!b->rule_mask[row - begin]) continue;
        cur->row = row;
        lua_rawgeti(L, fns, k + 1);
        lua_pushvalue(L, proxy);
        if (lua_pcall(L, 1, 1, 0) != 0) {
          log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else if (lua_type(L, -1) != LUA_TNUMBER || !isfinite((double)lua_tonumber(L, -1))) {
          const char *tn = lua_type(L, -1) == LUA_TNUMBER ? "a number that is not finite" : luaL_typename(L, -1);
          lua_pop(L, 1);
          lua_pushfstring(L, "the points function returned %s, not a number", tn);
          log_error(L, log, owners, k, lead_name(lead, id_col, row, who, sizeof who));
        } else {
          values[row] = (double)lua_tonumber(L, -1);
          lua_pop(L, 1);
        }
      }
    }
  }
  lua_pop(L, 2);
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

/* p:score(lead, features, results, prefix, as_of, threads, raise, id_column, refill, fired)
**   -> results, errors[, fired bits]
** refill: results is an earlier result of this program over as many rows, written again in place
** (its memory is reused: no allocation, no fresh pages). fired: also return, as one string, a bit set
** per rule then per disqualifier, each of ceil(rows / 64) 64-bit words: bit i % 64 of word i / 64
** set where the condition held for row i + 1 (byte i / 8, bit i % 8 on a little-endian machine). */
static int p_score(lua_State *L) {
  program_box *pb = check_program(L, 1);
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
  int g, uv, out_idx, names, id_col = -1, total_col, status_col, grade_col, reason_col, disq_col;
  size_t nrows, batches;
  binding_box *b;
  lq_out out;
  error_log log;
  run_arrays ra;

  if (pb->record_mode) return luaL_error(L, "this program scores one lead at a time (compiled without a table)");
  tables[SRC_LEAD] = lq_check_table(L, 2);
  tables[SRC_FEATURES] = lua_isnoneornil(L, 3) ? NULL : lq_check_table(L, 3);
  tables[SRC_RESULTS] = lua_isnoneornil(L, 4) ? NULL : lq_check_table(L, 4);
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
  log.slot = lua_gettop(L);                             /* 10: errors */
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);                                   /* 11 */
  lua_rawgeti(L, uv, UV_NAMES);
  names = lua_gettop(L);                                /* 12 */

  /* The results table: the one given, or a new one. */
  if (tables[SRC_RESULTS] == NULL) {
    out_t = push_result_table(L);
  } else {
    lua_pushvalue(L, 4);
    out_t = tables[SRC_RESULTS];
    if (out_t->nrows != nrows && !(out_t->nrows == 0 && out_t->ncols == 0))
      return luaL_error(L, "the results table has %d rows, the leads %d", (int)out_t->nrows, (int)nrows);
  }
  out_idx = lua_gettop(L);                              /* 13 */

  b = get_binding(L, pb, 1, 2);
  binding_buffers(L, pb, b, nrows);
  bind_views(L, pb, b, tables, nrows, names);
  lq_run_set_as_of(&b->run, as_of);
  build_luts(L, &b->run, uv);
  binding_scratches(L, b, p, threads);

  if (pb->nprepass > 0 && nrows > 0) {
    cursor *cur = push_lead_proxy(L, 2, 3, 4);
    int proxy = lua_gettop(L);
    run_functions(L, pb, &b->run, &b->scratches[0], b, 0, nrows, proxy, cur, uv, &log, tables[SRC_LEAD], id_col);
    lua_settop(L, out_idx);
  }

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

/* ---- one lead ---- */

static one_state *get_one(lua_State *L, program_box *pb) {
  lq_program *p = pb->prog;
  lq_allocator *a = &pb->alloc;
  one_state *o;
  int f, r;
  size_t nf = (size_t)pb->nfields;
  if (pb->one != NULL) return pb->one;
  o = (one_state *)mem_zeroed(a, 1, sizeof(one_state));
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
  NEW_ARRAY(L, a, o->rule_fired, p->nrules, uint8_t);
  NEW_ARRAY(L, a, o->disq_fired, p->ndisq, uint8_t);
  NEW_ARRAY(L, a, o->rule_raw, p->nrules, double);
  NEW_ARRAY(L, a, o->rule_points, p->nrules, double);
  NEW_ARRAY(L, a, o->group_raw, p->ngroups, double);
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


/* One field's value (at the top of the stack, left there) into the one-row state: NULL, or a
** message when it cannot be read. */
static size_t cache_slot(const char *p) {
  uintptr_t x = (uintptr_t)p;
  return (size_t)((x >> 4) ^ (x >> 11)) & (LQ_ONE_CACHE - 1);
}

static const char *read_value(lua_State *L, program_box *pb, one_state *o, int f, int idx, int *grew, int *reset) {
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
      *reset = 1;
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
  int f, k, reset = 0, base;
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
    if ((bad = read_value(L, pb, o, f, k++, grew, &reset)) != NULL) return bad;
  }
  if (reset) {
    *grew = 1;
    return "reset";
  }
  return NULL;
}

/* Options of score_one: as_of (a number of seconds; absent: now) and errors = "raise". */
typedef struct one_options_read {
  double as_of;
  int raise;
} one_options_read;

/* Reads the options table at opts (anything else: none given) into out: 0, or 1 when as_of is
** neither a number nor absent (a date as text, which the model's Lua method converts, or a
** mistake), out then unfilled. */
static int read_one_options(lua_State *L, int opts, one_options_read *out) {
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

/* Runs the one-row program on record (index 2), options (3), extra (4); index 5 holds the errors
** (nil when none) afterwards, and the stack is left at 5. NULL, or the message of a value that
** could not be read. given: the options as_of and errors when the caller read them, else NULL. */
static const char *run_one(lua_State *L, program_box *pb, one_state *o, int explain, const one_options_read *given) {
  lq_out out;
  error_log log;
  int uv, names, raise, grew;
  const char *bad;
  double as_of;
  int extra;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 4);
  extra = lua_type(L, 4) == LUA_TTABLE ? 4 : 0;
  memset(&log, 0, sizeof log);
  lua_pushnil(L);
  log.slot = 5;
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);                                   /* 6 */
  if (given != NULL) {
    as_of = given->as_of;
    raise = given->raise;
  } else {
    one_options_read read;
    if (read_one_options(L, 3, &read) != 0)
      luaL_error(L, "as_of must be a number of seconds here (leadq.model converts dates)");
    as_of = read.as_of;
    raise = read.raise;
  }
  log.raise = raise;
  lua_rawgeti(L, uv, UV_NAMES);
  names = lua_gettop(L);                                /* 7 */
  lua_rawgeti(L, uv, UV_ONE_ANCHORS);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, o->nfields * LQ_ONE_CACHE, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, uv, UV_ONE_ANCHORS);
  }
  o->anchors = lua_gettop(L);                           /* 8 */
  o->any_tags = 0;
  bad = load_record(L, pb, o, 2, extra, names, uv, &grew);
  if (bad != NULL && strcmp(bad, "reset") != 0) return bad;
  if (bad != NULL) lq_run_reset_luts(&o->run);
  if (as_of != o->as_of) {
    lq_run_set_as_of(&o->run, as_of);
    o->as_of = as_of;
  }
  if (grew || !o->luts_built || o->any_tags) {   /* per-code tables only grow with new values */
    build_luts(L, &o->run, uv);
    o->luts_built = 1;
  }
  if (pb->nprepass > 0) {
    int k, fns, owners, proxy;
    lua_rawgeti(L, uv, UV_FUNCS);
    fns = lua_gettop(L);
    lua_rawgeti(L, uv, UV_OWNERS);
    owners = lua_gettop(L);
    lua_rawgeti(L, uv, UV_PROXY);
    proxy = lua_gettop(L);
    lua_rawgeti(L, uv, UV_PROXY_MT);
    if (extra) {   /* functions see the record over the extra fields */
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, extra)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
      lua_pushnil(L);
      while (lua_next(L, 2)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
    } else {
      lua_pushvalue(L, 2);
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
        log_error(L, &log, owners, k, "given");
      } else if (!pp->points) {
        o->bytes[pp->slot] = (uint8_t)lua_toboolean(L, -1);
        lua_pop(L, 1);
      } else if (lua_type(L, -1) != LUA_TNUMBER || !isfinite((double)lua_tonumber(L, -1))) {
        const char *tn = lua_type(L, -1) == LUA_TNUMBER ? "a number that is not finite" : luaL_typename(L, -1);
        lua_pop(L, 1);
        lua_pushfstring(L, "the points function returned %s, not a number", tn);
        log_error(L, &log, owners, k, "given");
      } else {
        o->numbers[pp->slot] = (double)lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
    }
  }
  memset(&out, 0, sizeof out);
  out.total = &o->total;
  out.groups = o->group_ptrs;
  out.status = &o->status;
  out.grade = &o->grade;
  out.reason = &o->reason;
  out.disqualified_by = &o->disq;
  out.rule_reason = o->rule_reason;
  out.disq_reason = o->disq_reason;
  if (explain) {   /* the per-rule facts only explain reads */
    out.rule_fired = o->rule_fired;
    out.disq_fired = o->disq_fired;
    out.rule_raw = o->rule_raw;
    out.rule_points = o->rule_points;
    out.group_raw = o->group_raw;
  }
  lq_program_exec(&o->run, &o->scratch, 0, 1, &out);
  lua_settop(L, 5);
  return NULL;
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
static void push_one_fields(lua_State *L, program_box *pb, int uv, double total, int32_t status, int32_t grade,
                            const double *group_points, int32_t reason, int32_t disq, int errors, int into) {
  lq_program *p = pb->prog;
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

/* The options' `into` table as a stack index, or 0 (run_one left the uservalue at 6). */
static int one_into(lua_State *L) {
  if (lua_type(L, 3) != LUA_TTABLE) return 0;
  lua_rawgeti(L, 6, UV_K_INTO);
  lua_gettable(L, 3);
  if (lua_type(L, -1) == LUA_TTABLE) return lua_gettop(L);
  if (!lua_isnil(L, -1)) luaL_error(L, "score_one: into must be a table to fill, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  return 0;
}

/* score_one on a checked record program at index 1 (see p_score_one and one_scorer) */
static int score_one_checked(lua_State *L, program_box *pb, const one_options_read *given) {
  one_state *o = get_one(L, pb);
  const char *bad = run_one(L, pb, o, 0, given);
  if (bad != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, bad);
    return 2;
  }
  lua_getuservalue(L, 1);
  push_one_fields(L, pb, 6, o->total, o->status, o->grade, o->group_points, o->reason, o->disq, 5, one_into(L));
  return 1;
}

/* p:score_one(record [, options [, extra]]) */
static int p_score_one(lua_State *L) {
  program_box *pb = check_program(L, 1);
  if (!pb->record_mode) return luaL_error(L, "this program scores tables (compiled for a table's columns)");
  return score_one_checked(L, pb, NULL);
}

/* model:score_one(record [, events] [, options]), one model's method once its record program
** exists (leadq.model installs it): the usual call (a record table, no events, options with no
** as_of or a number) goes straight to the program, with no Lua frame and no method lookup on it;
** anything else (events, a date as text, misuse) to the model's Lua method, upvalue 2. */
static int one_scorer(lua_State *L) {
  int n = lua_gettop(L);
  int fast = n >= 2 && n <= 4 && lua_type(L, 2) == LUA_TTABLE && (n < 3 || lua_isnil(L, 3));
  one_options_read given;
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
  pb = (program_box *)lua_touserdata(L, 1);   /* a record program: l_one_scorer checked it */
  if (pb->prog == NULL) return luaL_error(L, "attempt to use a closed leadq program");
  return score_one_checked(L, pb, &given);
}

/* core.one_scorer(program, method) -> the function above, for one model */
static int l_one_scorer(lua_State *L) {
  program_box *pb = check_program(L, 1);
  if (!pb->record_mode) return luaL_error(L, "one_scorer needs a program compiled for records");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_pushcclosure(L, one_scorer, 2);
  return 1;
}

/* The facts explain needs, for the row just run: as a table. */
static void push_facts(lua_State *L, program_box *pb, const uint8_t *fired, const double *raw, const double *pts,
                       const uint8_t *dfired, const double *graw, const double *gpts) {
  lq_program *p = pb->prog;
  int r, g;
  lua_createtable(L, p->nrules, 0);
  for (r = 0; r < p->nrules; r++) {
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, fired[r]);
    lua_setfield(L, -2, "fired");
    lua_pushnumber(L, raw[r]);
    lua_setfield(L, -2, "raw");
    lua_pushnumber(L, pts[r]);
    lua_setfield(L, -2, "points");
    lua_rawseti(L, -2, r + 1);
  }
  lua_setfield(L, -2, "rules");
  lua_createtable(L, p->ndisq, 0);
  for (r = 0; r < p->ndisq; r++) {
    lua_pushboolean(L, dfired[r]);
    lua_rawseti(L, -2, r + 1);
  }
  lua_setfield(L, -2, "disqualifiers");
  lua_createtable(L, p->ngroups, 0);
  for (g = 0; g < p->ngroups; g++) {
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, graw[g]);
    lua_setfield(L, -2, "raw");
    lua_pushnumber(L, gpts[g]);
    lua_setfield(L, -2, "points");
    lua_rawseti(L, -2, g + 1);
  }
  lua_setfield(L, -2, "groups");
}

/* p:explain_one(record [, options [, extra]]) -> result (as score_one) with .facts */
static int p_explain_one(lua_State *L) {
  program_box *pb = check_program(L, 1);
  one_state *o;
  const char *bad;
  if (!pb->record_mode) return luaL_error(L, "this program scores tables (compiled for a table's columns)");
  o = get_one(L, pb);
  bad = run_one(L, pb, o, 1, NULL);
  if (bad != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, bad);
    return 2;
  }
  lua_getuservalue(L, 1);
  push_one_fields(L, pb, 6, o->total, o->status, o->grade, o->group_points, o->reason, o->disq, 5, 0);
  lua_newtable(L);
  push_facts(L, pb, o->rule_fired, o->rule_raw, o->rule_points, o->disq_fired, o->group_raw, o->group_points);
  lua_setfield(L, -2, "facts");
  return 1;
}

/* p:explain_row(lead, features, results, row, as_of [, id_column]) -> the same for one row of a table */
static int p_explain_row(lua_State *L) {
  program_box *pb = check_program(L, 1);
  lq_program *p = pb->prog;
  lq_table *tables[3];
  size_t row, nrows, nr = (size_t)p->nrules, nd = (size_t)p->ndisq, ng = (size_t)p->ngroups, size;
  double as_of = (double)luaL_checknumber(L, 6);
  binding_box *b;
  int uv, names, g, f, id_col = -1;
  lq_out out;
  error_log log;
  lq_run shifted;
  char *q;
  uint8_t *fired, *dfired;
  double *raw, *pts, *graw, *gpts, total = 0;
  int32_t status = 0, grade = 0, reason = -1, disq = -1, *rule_reason, *disq_reason;
  double **gptrs;
  lq_view *views;

  if (pb->record_mode) return luaL_error(L, "this program scores one lead at a time (compiled without a table)");
  tables[SRC_LEAD] = lq_check_table(L, 2);
  tables[SRC_FEATURES] = lua_isnoneornil(L, 3) ? NULL : lq_check_table(L, 3);
  tables[SRC_RESULTS] = lua_isnoneornil(L, 4) ? NULL : lq_check_table(L, 4);
  nrows = tables[SRC_LEAD]->nrows;
  row = (size_t)luaL_checkinteger(L, 5);
  if (row < 1 || row > nrows) return luaL_argerror(L, 5, "row out of range");
  row -= 1;
  if (lua_type(L, 7) == LUA_TSTRING) id_col = lq_table_find(tables[SRC_LEAD], lua_tostring(L, 7));
  lua_settop(L, 7);
  memset(&log, 0, sizeof log);
  lua_pushnil(L);
  log.slot = lua_gettop(L);                             /* 8: errors */
  lua_getuservalue(L, 1);
  uv = lua_gettop(L);                                   /* 9 */
  lua_rawgeti(L, uv, UV_NAMES);
  names = lua_gettop(L);                                /* 10 */
  b = get_binding(L, pb, 1, 2);
  binding_buffers(L, pb, b, nrows);
  bind_views(L, pb, b, tables, nrows, names);
  lq_run_set_as_of(&b->run, as_of);
  build_luts(L, &b->run, uv);
  binding_scratches(L, b, p, 1);
  if (pb->nprepass > 0) {
    cursor *cur = push_lead_proxy(L, 2, 3, 4);
    int proxy = lua_gettop(L);
    run_functions(L, pb, &b->run, &b->scratches[0], b, row, row + 1, proxy, cur, uv, &log, tables[SRC_LEAD], id_col);
    lua_settop(L, names);
  }

  /* Everything for one row in one userdata block; the views shifted so the row is row 0. */
  size = (size_t)b->run.nfields * sizeof(lq_view) + nr * (2 * sizeof(double) + sizeof(int32_t) + 1) +
         nd * (sizeof(int32_t) + 1) + ng * (3 * sizeof(double) + sizeof(double *)) + 64;
  q = (char *)lua_newuserdata(L, size);
  memset(q, 0, size);
  views = (lq_view *)(void *)q; q += (size_t)b->run.nfields * sizeof(lq_view);
  raw = (double *)(void *)q; q += nr * sizeof(double);
  pts = (double *)(void *)q; q += nr * sizeof(double);
  graw = (double *)(void *)q; q += ng * sizeof(double);
  gpts = (double *)(void *)q; q += ng * sizeof(double);
  gptrs = (double **)(void *)q; q += ng * sizeof(double *);
  rule_reason = (int32_t *)(void *)q; q += nr * sizeof(int32_t);
  disq_reason = (int32_t *)(void *)q; q += nd * sizeof(int32_t);
  fired = (uint8_t *)q; q += nr;
  dfired = (uint8_t *)q;
  for (g = 0; g < (int)nr; g++) rule_reason[g] = g;
  for (g = 0; g < (int)nd; g++) disq_reason[g] = (int32_t)nr + g;
  for (g = 0; g < (int)ng; g++) gptrs[g] = &gpts[g];
  for (f = 0; f < b->run.nfields; f++) {
    lq_view v = b->run.views[f];
    if (v.numbers) v.numbers += row;
    if (v.bytes) v.bytes += row;
    if (v.codes) v.codes += row;
    if (v.offsets) v.offsets += row;
    if (v.missing) v.missing += row;
    views[f] = v;
  }
  shifted = b->run;
  shifted.views = views;
  memset(&out, 0, sizeof out);
  out.total = &total;
  out.status = &status;
  out.grade = &grade;
  out.reason = &reason;
  out.disqualified_by = &disq;
  out.groups = gptrs;
  out.rule_reason = rule_reason;
  out.disq_reason = disq_reason;
  out.rule_fired = fired;
  out.disq_fired = dfired;
  out.rule_raw = raw;
  out.rule_points = pts;
  out.group_raw = graw;
  lq_program_exec(&shifted, &b->scratches[0], 0, 1, &out);

  push_one_fields(L, pb, uv, total, status, grade, gpts, reason, disq, log.slot, 0);
  lua_newtable(L);
  push_facts(L, pb, fired, raw, pts, dfired, graw, gpts);
  lua_setfield(L, -2, "facts");
  return 1;
}

/* p:field_names() -> the slots' names, for messages and tests */
static int p_fields(lua_State *L) {
  program_box *pb = check_program(L, 1);
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
  { "score", p_score },
  { "score_one", p_score_one },
  { "explain_one", p_explain_one },
  { "explain_row", p_explain_row },
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
  { "__gc", binding_gc },
  { "__close", binding_gc },
  { "__tostring", binding_tostring },
  { NULL, NULL }
};

static const luaL_Reg score_functions[] = {
  { "program", l_program },
  { "one_scorer", l_one_scorer },
  { NULL, NULL }
};

void lq_open_score(lua_State *L) {
  lq_new_class(L, PROGRAM_TYPE, program_meta, program_methods);
  lq_new_class(L, BINDING_TYPE, binding_meta, NULL);
  luaL_setfuncs(L, score_functions, 0);
}
