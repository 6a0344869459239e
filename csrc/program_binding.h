/* Internal: the Lua face of the scoring program (program.c), split by job.
**
**   program_binding.c   the "leadq.Program" object: core.program(desc) reads compiler.lua's
**                       description, p:fields(), and what the other three share
**   program_score.c     p:score(): a program bound to a lead table, Lua function rules, the pass
**   program_one.c       p:score_one() and core.one_scorer(): one lead given as a Lua table
**   program_explain.c   p:explain_one() and p:explain_row(): one lead's facts, for leadq.model
*/
#ifndef LEADQ_PROGRAM_BINDING_H
#define LEADQ_PROGRAM_BINDING_H

#include "bindings.h"
#include "program.h"

#define PROGRAM_TYPE "leadq.Program"
#define BINDING_TYPE "leadq.ProgramBinding"

#if !defined(LQ_MAX_REPORTED_ERRORS)
#define LQ_MAX_REPORTED_ERRORS 100   /* messages kept per run; the count goes on */
#endif

/* Where a field slot's values come from, and how score_one reads a record's value into it. */
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

/* A Lua function rule, run before the C pass into a field slot of its own. */
typedef struct prepass {
  int slot;          /* the function column it fills */
  int points;        /* 1: a points function of rule `rule`; 0: a condition */
  int rule;
} prepass;

typedef struct one_state one_state;   /* program_one.c */

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

/* One lead's answer as the pass wrote it, for push_answer. */
typedef struct one_answer {
  double total;
  int32_t status, grade, reason, disq;
  const double *group_points;   /* ngroups */
} one_answer;

/* The errors of Lua functions in one run: raised at once, or collected in a table. */
typedef struct error_log {
  int slot;         /* stack index holding nil until the first error, then the errors table */
  int raise;
  long count;
} error_log;

#define NEW_ARRAY(L, a, ptr, count, type) \
  do { if (((ptr) = (type *)lq_mem_zeroed((a), (size_t)(count), sizeof(type))) == NULL) \
         luaL_error((L), "not enough memory"); } while (0)

/* A program bound to one lead table: views, per-code tables, scratch, function columns. Kept on a
** "leadq.ProgramBinding" userdata per lead table, cached weakly on the program, so the per-code
** tables of a table scored again are not rebuilt. */
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
  lq_text_codes *derived;    /* nfields: the lead table's text columns as codes */
} binding_box;

/* score_one's lead: one row of values, dictionaries that remember the strings seen. */
struct one_state {
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
  double as_of;
  int nfields, nrules, ndisq, ngroups, luts_built;
  /* Per field, LQ_ONE_CACHE recent strings by address (a Lua string object's bytes never move
  ** and never change; each cached one is anchored in UV_ONE_ANCHORS, so an address cannot be
  ** reused by another string while cached) and their codes: a recurring value costs no hashing. */
  const char **cache_ptr;    /* nfields * LQ_ONE_CACHE */
  int32_t *cache_code;
  int anchors;               /* stack index of the anchors table during a call */
};

/* Options of score_one: as_of (a number of seconds; absent: now) and errors = "raise". */
typedef struct one_options {
  double as_of;
  int raise;
} one_options;

/* Where one call of score_one or explain_one keeps its values on the stack (absolute indexes). */
typedef struct one_call {
  int record, options, extra;   /* extra: 0 when none */
  int errors;                   /* nil, or the errors table of the lead's Lua functions */
  int uv;                       /* the program's uservalue */
} one_call;

/* program_binding.c: the object, and what the jobs share. */
program_box *lq_check_program(lua_State *L, int i);
int lq_lead_readonly_error(lua_State *L);
void lq_log_error(lua_State *L, error_log *log, int owners, int index, const char *lead);
void lq_build_luts(lua_State *L, lq_run *run, int uv);
/* The Lua functions of external matchers, for lq_lua_matcher: lq_push_lua_matchers pushes their
** list (pop it after use); a failed call leaves its message here. */
typedef struct lua_matchers {
  lua_State *L;
  int fns;
  char message[256];
} lua_matchers;
void lq_push_lua_matchers(lua_State *L, int uv, lua_matchers *ctx);
int lq_lua_matcher(void *ud, int m, int needle, const char *s, size_t len);
void lq_push_answer(lua_State *L, program_box *pb, int uv, const one_answer *ans, int errors, int into);

/* program_score.c: p:score, and the binding explain_row shares with it. */
int lq_method_score(lua_State *L);
int lq_binding_gc(lua_State *L);
/* A table program's lead, features and results tables, arguments 2 to 4 (the last two may be nil). */
void lq_check_lead_tables(lua_State *L, program_box *pb, lq_table *tables[3]);
/* The binding of the program at pidx to the lead table at lidx (tables: lead, features, results,
** at lidx, lidx + 1, lidx + 2 on the stack), ready for a run at as_of on `threads` threads. */
binding_box *lq_bind_tables(lua_State *L, program_box *pb, int pidx, int lidx, lq_table *const tables[3],
                            double as_of, int threads, int uv);
/* The lead's Lua function rules over rows [begin, end) of the bound tables, into their columns. */
void lq_run_lead_functions(lua_State *L, program_box *pb, binding_box *b, int lidx, lq_table *const tables[3],
                           size_t begin, size_t end, int uv, error_log *log, int id_col);

/* program_one.c: p:score_one, core.one_scorer, and one lead's run that explain_one shares. */
int lq_method_score_one(lua_State *L);
int lq_one_scorer(lua_State *L);
one_state *lq_one_state(lua_State *L, program_box *pb);
void lq_one_free(one_state *o, lq_allocator *a);
/* Reads the record and runs the program on it; NULL, or the message of a value that could not be
** read. given: the options when the caller read them, else NULL (read from call->options). */
const char *lq_one_run(lua_State *L, program_box *pb, one_state *o, const one_options *given, one_call *call);
void lq_one_answer(const one_state *o, one_answer *ans);

/* program_explain.c */
int lq_method_explain_one(lua_State *L);
int lq_method_explain_row(lua_State *L);

#endif
