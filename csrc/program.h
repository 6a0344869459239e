/* The compiled scoring program and its executor: plain C, no Lua.
**
** compiler.lua turns a model into a program: numbered field slots, leaves (one test on one
** field), a straight list of mask operations (no branches, no jumps), rules with points and a
** group, groups with floor and cap, disqualifiers, thresholds and grades. A run binds each field
** slot to a view of a column (lead table, event features, an earlier model's results, or a
** column computed before the pass by a Lua function), builds one lookup table per string leaf
** (a string test runs once per distinct dictionary value), then runs the ops over batches of
** LQ_BATCH rows, column at a time. A bulk run streams its columns from memory: each batch asks
** for the next batch's columns ahead, and writes its result rows past the cache. Scoring one lead
** is the same program over a batch of one, through a scalar path over the rules that fired.
**
** Threads: a run is read-only once bound; each thread gets its own lq_scratch (allocated before
** the threads start) and a disjoint row range, and writes only its own output rows.
*/
#ifndef LEADQ_PROGRAM_H
#define LEADQ_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#if !defined(LQ_BATCH)
#define LQ_BATCH 512
#endif

/* One bit set per dictionary code in the fused string tables (see lq_program). */
typedef uint8_t lq_bits;
#define LQ_FUSE_BITS 8

#if !defined(LQ_MAX_THREADS)
#define LQ_MAX_THREADS 256
#endif

/* How a field's values are laid out for the executor. */
typedef enum lq_view_kind {
  LQ_VIEW_ABSENT = 0,   /* no such column: every row is missing */
  LQ_VIEW_NUMBER,       /* double, NaN missing (numbers and times) */
  LQ_VIEW_BOOL,         /* uint8 0/1, LQ_MISSING_BOOL missing */
  LQ_VIEW_CODES,        /* int32 dictionary codes, LQ_MISSING_CODE missing */
  LQ_VIEW_TAGS,         /* per-row dictionary codes, missing flags */
  LQ_VIEW_TEXT,         /* per-row bytes, missing flags */
  LQ_VIEW_MASK,         /* uint8 0/1 computed before the pass (Lua function conditions) */
  LQ_VIEW_VALUES        /* double computed before the pass (Lua function points) */
} lq_view_kind;

typedef struct lq_view {
  lq_view_kind kind;
  const double *numbers;      /* number, values */
  const uint8_t *bytes;       /* bool, mask */
  const int32_t *codes;       /* codes */
  const uint64_t *offsets;    /* text offsets, or tag offsets */
  const int32_t *tag_codes;   /* tags */
  const char *text;           /* text */
  const uint8_t *missing;     /* text, tags */
  const lq_dict *dict;        /* codes, tags: for the per-code tables */
} lq_view;

typedef enum lq_leaf_kind {
  LQ_LEAF_RANGE = 0,    /* lo <= x <= hi on a number (NaN never holds) */
  LQ_LEAF_TIME,         /* as RANGE, bounds in seconds relative to as_of */
  LQ_LEAF_BOOL,         /* x == value */
  LQ_LEAF_PRESENT,      /* the field has a value */
  LQ_LEAF_STRING,       /* a string matcher, through a per-code table on codes and tags */
  LQ_LEAF_MASK          /* the field is a mask computed before the pass */
} lq_leaf_kind;

typedef struct lq_leaf {
  lq_leaf_kind kind;
  int field;            /* field slot */
  int negate;           /* RANGE, STRING: present and not; PRESENT: missing */
  int value;            /* BOOL */
  int matcher;          /* STRING */
  int lo_open, hi_open; /* RANGE, TIME: strict bounds (> lo, < hi) */
  double lo, hi;        /* RANGE, TIME */
} lq_leaf;

typedef enum lq_match_mode {
  LQ_MATCH_EQUALS = 0,  /* the whole value, one of the needles */
  LQ_MATCH_CONTAINS,
  LQ_MATCH_STARTS,
  LQ_MATCH_ENDS,
  LQ_MATCH_WORD,        /* a needle with a non-word byte (or an end) on both sides */
  LQ_MATCH_EXTERNAL     /* decided by the caller's callback (Lua patterns) */
} lq_match_mode;

/* Needles are stored lowercased; values are lowered byte by byte as they are read (ASCII). */
typedef struct lq_matcher {
  lq_match_mode mode;
  int count;
  char **needles;
  size_t *lengths;
  size_t max_length;
  lq_dict set;          /* EQUALS: the needles, for one hash probe per value */
} lq_matcher;

typedef enum lq_op_code {
  LQ_OP_LEAF = 0,       /* reg[dst] = leaf a */
  LQ_OP_AND,            /* reg[dst] = reg[a] & reg[b] */
  LQ_OP_OR,
  LQ_OP_NOT,            /* reg[dst] = !reg[a] */
  LQ_OP_CONST           /* reg[dst] = a (0 or 1) */
} lq_op_code;

typedef struct lq_op {
  int code, dst, a, b;
} lq_op;

typedef struct lq_rule {
  int reg;              /* the register holding the rule's condition */
  int group;            /* group index */
  int points_field;     /* -1: constant points; else a VALUES field slot */
  int op_begin, op_end; /* the ops computing reg (for the pre-pass of points functions) */
  double points;
} lq_rule;

typedef struct lq_group {
  int has_floor, has_cap;
  double floor, cap;
  int nrules;
  int *rules;           /* rule indexes in declared order */
} lq_group;

typedef struct lq_grade {
  int group;
  int nlevels;
  double *levels;       /* descending; level i is the name's index i, nlevels = otherwise */
} lq_grade;

typedef struct lq_program {
  lq_allocator alloc;
  int nfields;
  int nleaves, nmatchers, nops, nregs, nrules, ngroups, ndisq, nthresholds, ngrades;
  lq_leaf *leaves;
  lq_matcher *matchers;
  lq_op *ops;
  lq_rule *rules;
  lq_group *groups;
  int *disq_regs;
  double *thresholds;   /* ascending; status 0 = otherwise, i + 1 = thresholds[i] reached */
  lq_grade grades[2];   /* grade code = letter * (digits + 1) + digit */
  /* Integer mode: every rule's points a whole number (|p| <= 32767, constant), so group sums,
  ** caps and the reason run in int32 lanes, twice as many per vector as doubles. Set by finish. */
  int int_mode;
  int32_t *ipoints;       /* nrules */
  int32_t *ifloor, *icap; /* ngroups: INT32_MIN / INT32_MAX when none */
  int32_t *ithresholds;   /* nthresholds: the smallest whole total that reaches each */
  int32_t *ilevels[2];    /* per grade: the smallest whole points reaching each level */
  /* Fused string tests: the string leaves of one field share a table of bit sets per code (up to
  ** LQ_FUSE_BITS leaves a table), so a batch costs one gather per field, not one per leaf. Bytes,
  ** not words: a field of 100k distinct e-mail domains makes a 100 KB table that stays in the
  ** cache under random access, and a byte lane tests 32 rows per vector. Set by finish. */
  int nfused;
  int *fused_field;       /* nfused: the field slot of each table */
  int *leaf_fused;        /* nleaves: table index, or -1 */
  int *leaf_bit;          /* nleaves: the leaf's bit in its table */
  /* One row (score_one, explain): the ops again with each leaf's kind folded into the op code,
  ** so a row costs one dispatch per op, not two. Set by finish. */
  lq_op *row_ops;         /* nops; code is an lq_row_code */
} lq_program;

typedef enum lq_row_code {
  LQ_ROW_AND = 0, LQ_ROW_OR, LQ_ROW_NOT, LQ_ROW_CONST,
  LQ_ROW_RANGE,         /* a: leaf, b: field; lo <= x <= hi */
  LQ_ROW_RANGE_NOT,     /* a: leaf, b: field; present and outside */
  LQ_ROW_STRING,        /* a: leaf, b: field */
  LQ_ROW_LEAF           /* a: leaf, any other kind */
} lq_row_code;

/* A program bound to its columns for one run. */
typedef struct lq_run {
  const lq_program *prog;
  int nfields, nleaves;  /* copies, so freeing never reads the program */
  lq_view *views;       /* nfields */
  uint8_t **luts;       /* nleaves: per-code result, index code + 1 (0: missing), or NULL */
  size_t *lut_sizes;    /* entries computed in each table */
  size_t *lut_caps;     /* entries allocated */
  lq_bits **fused;      /* nfused: bit sets per code + 1, or NULL when the field is not coded */
  size_t *fused_sizes, *fused_caps;
  int nfused;
  double *lo, *hi;      /* nleaves: bounds of RANGE and TIME leaves for this run */
  double as_of;
} lq_run;

/* The view of a table column, by its type (a text column's is LQ_VIEW_TEXT; a lead table's text is
** read through its lq_text_codes instead, as codes). */
void lq_view_of_column(lq_view *v, const lq_column *c);

/* Callback for LQ_MATCH_EXTERNAL: 1 when value s matches needle `needle` of matcher m (any of its
** needles when -1), 0 when not, -1 on error. */
typedef int (*lq_external_fn)(void *ud, int matcher, int needle, const char *s, size_t len);

/* Where a pass writes: arrays indexed by row (NULL to skip one). Codes are indexes into the
** names the caller interned in order: statuses (otherwise, thresholds ascending, disqualified),
** grades, rule reasons (rule_reason[r]), disqualifier reasons and ids. */
typedef struct lq_out {
  double *total;
  double **groups;          /* ngroups */
  int32_t *status, *grade, *reason, *disqualified_by;
  const int32_t *rule_reason;   /* nrules: reason code of each rule */
  const int32_t *disq_reason;   /* ndisq: reason code of each disqualifier */
  /* Explain, for a batch of one row: per rule and group, or NULL. */
  uint8_t *rule_fired, *disq_fired;
  double *rule_raw, *rule_points, *group_raw;
  /* Per rule, then per disqualifier: a bit per row, set where its condition held (bit row % 64 of
  ** word row / 64), or NULL. For evaluate: which rules fired, from the pass that scores. */
  uint64_t *const *fired_bits;
} lq_out;

/* Per-thread working memory for one batch. */
typedef struct lq_scratch {
  int nregs, ngroups, nrules;   /* copies, so freeing never reads the program */
  uint8_t *regs;            /* nregs * LQ_BATCH */
  double *sums;             /* ngroups * LQ_BATCH: raw, then clamped */
  double *raw;              /* ngroups * LQ_BATCH: raw sums kept for the allocation */
  double *total, *best_pos, *best_neg;
  int32_t *best_pos_id, *best_neg_id, *disq_id;
  double *excess_pos, *excess_neg;
  int32_t *isums, *iraw, *itotal, *ikey_pos, *ikey_neg, *iep, *ien;   /* integer mode */
  lq_bits *fbits;           /* nfused * LQ_BATCH: each fused table's bit sets for the batch */
  int32_t *ostatus, *ograde, *oreason;   /* a batch's codes, built here and then streamed out */
  /* One row (score_one, explain): the rules that fired, and each group's excess over its cap
  ** (positive) or under its floor (negative) still to take back. */
  int32_t *fired;           /* nrules */
  double *row_ep, *row_en;  /* ngroups */
  int32_t *row_iep, *row_ien;
  int nfused;
} lq_scratch;

/* Programs: create empty, then fill with the setters; 0 on success, -1 on no memory. */
lq_program *lq_program_new(lq_allocator alloc);
void lq_program_free(lq_program *p);
int lq_program_size(lq_program *p, int nfields, int nleaves, int nmatchers, int nops, int nregs,
                    int nrules, int ngroups, int ndisq, int nthresholds);
int lq_program_set_matcher(lq_program *p, int m, lq_match_mode mode, int count,
                           const char *const *needles, const size_t *lengths);
int lq_program_set_group(lq_program *p, int g, int has_floor, double floor, int has_cap, double cap);
int lq_program_set_grade(lq_program *p, int which, int group, int nlevels, const double *levels);
int lq_program_finish(lq_program *p);   /* lists the rules of each group; checks indexes */
int lq_program_grade_count(const lq_program *p);   /* distinct grade codes, 0 without grades */

/* One matcher on one value (any case); external matchers go to the callback. */
int lq_matcher_test(const lq_matcher *m, const char *s, size_t len, lq_external_fn ext, void *ud, int index);
/* The first of m's needles that value s matches, by m's mode: its index, -1 none, -2 the external
** callback failed. What explain names ("title 'VP Sales' has the word 'vp'"). */
int lq_matcher_which(const lq_matcher *m, const char *s, size_t len, lq_external_fn ext, void *ud, int index);

/* Runs: bind views, then build the per-code tables (growing them if the dictionaries grew). */
int lq_run_init(lq_run *run, const lq_program *p, lq_allocator *a);
void lq_run_free(lq_run *run, lq_allocator *a);
void lq_run_set_as_of(lq_run *run, double as_of);
void lq_run_reset_luts(lq_run *run);   /* after a dictionary was emptied */
/* 0 ok, -1 no memory, -2 external callback failed */
int lq_run_build_luts(lq_run *run, lq_allocator *a, lq_external_fn ext, void *ud);

int lq_scratch_init(lq_scratch *s, const lq_program *p, lq_allocator *a);
void lq_scratch_free(lq_scratch *s, lq_allocator *a);

/* Runs rows [begin, end) in batches. */
void lq_program_exec(const lq_run *run, lq_scratch *s, size_t begin, size_t end, const lq_out *out);
/* The same over n threads (n scratches); 0 ok, -1 when a thread could not start (the rows
** are then run on the calling thread, so the result is complete either way). */
int lq_program_exec_threads(const lq_run *run, lq_scratch *scratches, int nthreads, size_t nrows,
                            const lq_out *out);
/* One row's answer with everything explain reads, written by lq_program_explain_row. Its arrays
** live in one block of lq_row_facts_size bytes that the caller owns, laid out by lq_row_facts_init. */
typedef struct lq_row_facts {
  double total;
  int32_t status, grade, reason, disq;   /* as lq_out's codes; reason, disq: -1 when none */
  uint8_t *rule_fired, *disq_fired;     /* nrules, ndisq: the condition held */
  double *rule_raw, *rule_points;       /* nrules: points when fired, and what the group's cap left */
  double *group_raw, *group_points;     /* ngroups: sums before and after floor and cap */
  /* Per leaf, what explain says of it: whether it held (negation applied, as the rules used it),
  ** whether its field had no value, and what decided it: the number a range or time leaf compared
  ** (NaN when missing), and for a string leaf the value a needle was found in (0, or the index of
  ** the tag in a list) and that needle's index, both -1 when none was found (a negated leaf reports
  ** the needle it found all the same). */
  uint8_t *leaf_holds, *leaf_missing;
  double *leaf_number;
  int32_t *leaf_value, *leaf_needle;
  /* the block's working space: the views moved to the row, the identity reason codes */
  lq_view *views;
  double **group_ptrs;
  int32_t *rule_reason, *disq_reason;
} lq_row_facts;

size_t lq_row_facts_size(const lq_program *p);
void lq_row_facts_init(lq_row_facts *f, const lq_program *p, void *block);
/* Runs row `row` of run (bound, its tables built) alone, into f: the same pass as the bulk and
** one-lead paths, so the facts tell of the answer those give. ext: the callback of external
** matchers, asked which needle matched. 0, or -2 when the callback failed. */
int lq_program_explain_row(const lq_run *run, lq_scratch *s, size_t row, lq_external_fn ext, void *ud,
                           lq_row_facts *f);
/* The condition of rule r alone over rows [begin, end), into mask[row - begin]. */
void lq_program_rule_mask(const lq_run *run, lq_scratch *s, int rule, size_t begin, size_t end,
                          uint8_t *mask);

#endif
