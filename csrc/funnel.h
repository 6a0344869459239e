/* The lifecycle funnel: plain C, no Lua.
**
** A funnel holds a transition log (lead, stage, time, reason, owner, where it came from), checks it
** against the declared stages and allowed transitions, and aggregates it by lead dimensions and
** cohorts into a result. A result is mergeable: results of separate parts of the leads (split by
** lead, so that each lead's transitions sit in one part) serialize to a string and merge into the
** result of the whole. Counts are exact; durations go into a log-bucket sketch whose quantiles are
** within LQ_SKETCH_ALPHA relative error of the true ones, and a merged sketch is bucket for bucket
** the sketch of the whole, so merged quantiles equal the whole's exactly.
**
** Stage indices: the chain (lead, mql, ..., customer) first, in order, then the side stages
** (disqualified, nurture, ...). Memory comes from the allocator given at creation.
*/
#ifndef LEADQ_FUNNEL_H
#define LEADQ_FUNNEL_H

#include <stddef.h>
#include <stdint.h>
#include "civil_time.h"
#include "table.h"
#include "working_hours.h"

#if !defined(LQ_FUNNEL_MAX_STAGES)
#define LQ_FUNNEL_MAX_STAGES 16
#endif
#if !defined(LQ_FUNNEL_MAX_CHAIN)
#define LQ_FUNNEL_MAX_CHAIN 10     /* a group keeps 2^chain counters, one per set of chain stages */
#endif
#if !defined(LQ_FUNNEL_MAX_DIMS)
#define LQ_FUNNEL_MAX_DIMS 8
#endif
#if !defined(LQ_FUNNEL_NAME_MAX)
#define LQ_FUNNEL_NAME_MAX 48
#endif
#if !defined(LQ_SKETCH_ALPHA)
#define LQ_SKETCH_ALPHA 0.01       /* relative error of a quantile read from the buckets */
#endif
#if !defined(LQ_SKETCH_EXACT)
#define LQ_SKETCH_EXACT 256        /* up to this many durations a sketch keeps them all: exact quantiles */
#endif
#define LQ_FUNNEL_NEVER INT32_MIN

#if !defined(LQ_FUNNEL_DENSE_GROUPS)
#define LQ_FUNNEL_DENSE_GROUPS (1u << 22)  /* up to this many key combinations: a direct table */
#endif

/* A slot of lq_keys' open-addressing table: the key's hash beside its index, so that a probe past
** other keys reads no memory but the slots. */
typedef struct lq_key_slot {
  uint32_t hash;
  int32_t id;              /* -1: empty */
} lq_key_slot;

/* Interned byte strings: an index is the order of first appearance. */
typedef struct lq_keys {
  char *bytes;
  size_t len, cap;
  size_t *starts;
  uint32_t *lengths;
  int32_t count, cap_items;
  lq_key_slot *slots;
  uint32_t slot_mask;
} lq_keys;

/* A mergeable quantile sketch of non-negative durations (seconds). While it holds at most
** LQ_SKETCH_EXACT values it also keeps them all, and its quantiles are exact (interpolated between
** ranks, as a spreadsheet's, pandas' or DuckDB's quantile_cont); past that, the buckets answer. */
typedef struct lq_sketch {
  uint64_t count, zeros;
  int32_t min_index, len, cap;
  uint64_t *buckets;       /* buckets[i]: values v with index(v) == min_index + i */
  double *exact;           /* the values themselves, while not spilled */
  uint32_t nexact, exact_cap;
  int spilled;             /* more than LQ_SKETCH_EXACT values went in: exact is gone */
} lq_sketch;

typedef struct lq_funnel_config {
  int nstages, nchain;
  char names[LQ_FUNNEL_MAX_STAGES][LQ_FUNNEL_NAME_MAX];
  uint8_t allowed[LQ_FUNNEL_MAX_STAGES + 1][LQ_FUNNEL_MAX_STAGES]; /* [from + 1][to]; [0]: a lead's first */
  int implied;             /* reaching a chain stage counts the chain stages before it */
  int disqualified, nurture, mql;   /* stage indices, -1 when not declared */
  double sla_seconds;      /* mql to the first later chain stage; <= 0: no SLA */
  lq_calendar sla_calendar; /* working: sla_seconds of working time (the reactions' SLA), else clock time */
} lq_funnel_config;

/* A row that failed: where and why. */
typedef struct lq_funnel_reject {
  int32_t source;          /* index into the funnel's sources, -1 when added by hand */
  uint64_t line;           /* line in that source, 0 when unknown */
  int32_t lead;            /* lead index, -1 when the row had none */
  int stage;               /* stage index, -1 when unknown */
  double at;
  char *message;           /* a plain sentence, owned by the funnel */
} lq_funnel_reject;

/* Rows of the log [first, the next segment's first) come from one source, their lines counted from
** line_base: a source and a line a row in 4 bytes, not 12 (the log of a million leads is 60 MB of
** fresh pages, each faulted and zeroed). */
typedef struct lq_funnel_segment {
  size_t first;
  int32_t source;
  uint64_t line_base;
} lq_funnel_segment;

typedef struct lq_funnel {
  lq_allocator alloc;
  lq_funnel_config cfg;
  lq_keys leads, reasons, owners, sources;
  size_t n, cap;           /* the log, in the order it was added */
  int32_t *lead, *reason, *owner;
  uint8_t *stage;
  double *at;
  uint32_t *line_off;      /* a row's line in its source: its segment's line_base + line_off */
  lq_funnel_segment *segs; /* runs of rows from one source, lines within 2^32 of the run's first */
  size_t nsegs, segs_cap;
  int threads;             /* checking the log and aggregating run on up to this many (0, 1: one) */
  lq_funnel_reject *rejects;
  size_t nrejects, rejects_cap, load_rejects;  /* rejects past load_rejects come from validation */
  /* per lead, after lq_funnel_prepare */
  int prepared;
  int sealed;              /* lq_funnel_seal: the loading-only columns freed, no more rows taken */
  int32_t nstate;
  uint32_t *seen;          /* stages entered by a transition of their own */
  int32_t *first_at;       /* [lead * nstages + stage]: first entry, whole seconds after time_base;
                              LQ_FUNNEL_NEVER when never entered (so times within the funnel are
                              to the second, and may span 68 years) */
  double time_base;
  int times_ready;         /* first_at is made on the first aggregation that needs times */
  uint32_t *order, *start; /* rows by lead, each lead's in time order: order[start[L] .. start[L + 1]) */
  uint8_t *row_ok;         /* [row]: 1 when the row passed the checks */
  size_t order_n, start_n;
  int32_t *disq_reason, *lead_owner;
  uint16_t *recycles;
  uint8_t *last_stage;
  double as_of;            /* the latest valid transition */
  /* the stored join (lq_funnel_join): lead -> row of a leads table, -1 when absent */
  int32_t *join_row;
  size_t join_n, join_nrows;
  const lq_table *join_table;
  int join_col;
} lq_funnel;

enum { LQ_DIM_COLUMN = 0, LQ_DIM_COHORT, LQ_DIM_OWNER };

typedef struct lq_funnel_dim {
  char name[LQ_FUNNEL_NAME_MAX * 2];
  int kind;
  const lq_column *col;    /* LQ_DIM_COLUMN: a category or boolean column of the leads table */
  int stage, week;         /* LQ_DIM_COHORT: month (week 0) or week (Monday) the lead entered stage */
} lq_funnel_dim;

typedef struct lq_funnel_query {
  int ndims;
  lq_funnel_dim dims[LQ_FUNNEL_MAX_DIMS];
  const lq_table *leads;   /* NULL: no lead dimensions */
  int leads_id;            /* id column of leads: category or text */
  int velocity, sla;       /* what to compute besides counts */
  int use_join;            /* 1: leads is the table of lq_funnel_join: reuse the stored join */
} lq_funnel_query;

typedef struct lq_funnel_breach {
  int32_t group, lead;     /* lead: index into the result's strings */
  double mql_at, handoff_at;  /* handoff_at NaN: not handed off by as_of */
} lq_funnel_breach;

/* The small blocks of a result's sketches (exact values, buckets: tens of thousands of blocks of a
** few hundred bytes), cut from chunks of the result's allocator: one chunk of 2 MB on huge pages
** holds what the C heap spread over hundreds of 4 KiB pages, each a fault on first touch. Freed
** blocks are kept by size class for the next; the chunks go with the result. */
#define LQ_SLAB_CLASSES 10         /* 16 bytes to 8 KB; bigger blocks go to the allocator */
typedef struct lq_slab {
  lq_allocator under;
  char *chunk;                     /* the chunk being cut */
  size_t used, size;               /* its bytes cut, its size */
  void *chunks;                    /* every chunk, each linked through its first word */
  void *free_blocks[LQ_SLAB_CLASSES];  /* freed blocks of each class, linked through their first word */
} lq_slab;

/* The mergeable result. Group g's key is keys[g * ndims ...], indices into strings (-1 missing). */
typedef struct lq_funnel_result {
  lq_allocator alloc;
  lq_slab slab;            /* the sketches' blocks */
  lq_allocator sketch_alloc;   /* {slab's function, &slab} */
  int nstages, nchain, mql, ndims, npairs;
  char names[LQ_FUNNEL_MAX_STAGES][LQ_FUNNEL_NAME_MAX];
  char dim_names[LQ_FUNNEL_MAX_DIMS][LQ_FUNNEL_NAME_MAX * 2];
  double sla_seconds;
  lq_keys strings;         /* dimension values, reasons, lead ids */
  lq_keys group_keys;      /* the bytes of each group's key: index = group */
  int32_t ngroups, gcap;
  uint64_t *hist;          /* [g << nchain | chain mask]: leads by the set of chain stages reached */
  uint64_t *side;          /* [g * (nstages - nchain) + k]: leads that reached side stage k */
  uint64_t *sla;           /* [g * 4 + i]: handed off, within, late, overdue */
  uint64_t *recycled;      /* [g * 2 + i]: leads recycled, recycling transitions */
  lq_sketch *sketches;     /* [g * (npairs + 1) + p]: pairs of chain stages, then the hand-off */
  lq_keys reason_keys;     /* (group, reason) */
  uint64_t *reason_counts;
  size_t reason_cap;
  lq_funnel_breach *breaches;
  size_t nbreaches, breaches_cap;
} lq_funnel_result;

/* Keys */
void lq_keys_init(lq_keys *k);
void lq_keys_free(lq_keys *k, lq_allocator *a);
int32_t lq_keys_intern(lq_keys *k, lq_allocator *a, const char *s, size_t len);  /* -2 no memory */
int32_t lq_keys_find(const lq_keys *k, const char *s, size_t len);              /* -1 absent */
/* The same, given the key's hash (lq_hash_bytes); lq_keys_prefetch asks for its slot ahead of the call:
** a run over many keys hides the slots' cache misses by asking a few keys ahead. */
int32_t lq_keys_find_hashed(const lq_keys *k, const char *s, size_t len, uint32_t hash);
int32_t lq_keys_intern_hashed(lq_keys *k, lq_allocator *a, const char *s, size_t len, uint32_t hash);
void lq_keys_prefetch(const lq_keys *k, uint32_t hash);
const char *lq_keys_string(const lq_keys *k, int32_t i, size_t *len);

/* Times are read with lq_scan_time (civil_time.h). */
void lq_format_date(double t, char *buf, size_t size);   /* YYYY-MM-DD */

/* Sketches */
double lq_sketch_quantile(const lq_sketch *s, double q);  /* NaN when empty */
int lq_sketch_exact(const lq_sketch *s);                   /* 1 when its quantiles are exact */

/* Funnels. Functions returning int give 0 on success, -1 on no memory. */
lq_funnel *lq_funnel_new(lq_allocator alloc, const lq_funnel_config *cfg);
void lq_funnel_free(lq_funnel *f);
int lq_funnel_stage(const lq_funnel *f, const char *name, size_t len);   /* index or -1 */
int32_t lq_funnel_add_source(lq_funnel *f, const char *name);            /* index, -2 no memory */
/* One transition. stage -1: unknown (message names stage_text); at NaN: bad time (message names
** at_text). A row that cannot go into the log becomes a reject; returns 1 then, 0 when logged. */
int lq_funnel_add(lq_funnel *f, const char *lead, size_t lead_len, int stage, const char *stage_text,
                  size_t stage_len, double at, const char *at_text, size_t at_len,
                  const char *reason, size_t reason_len, const char *owner, size_t owner_len,
                  int32_t source, uint64_t line);
/* Every row of a transitions table; columns -1 when absent (reason, owner; stage: every row is at
** const_stage). Lines count records, as if none spanned lines. Returns 0, -1 no memory, -2 with *err set on a wrong column type. */
int lq_funnel_load(lq_funnel *f, const lq_table *t, int c_lead, int c_stage, int const_stage, int c_at,
                   int c_reason, int c_owner, int32_t source, const char **err);
/* Validates the log and rejects what breaks the rules: 0, -1 on no memory, -2 when the times
** span more than 68 years. */
int lq_funnel_prepare(lq_funnel *f);
#define LQ_FUNNEL_SPAN_ERROR "the transition times span more than 68 years"
/* Checks the log if it was not, then frees the columns only loading and checking read (each row's
** lead, reason and line): for a run that aggregates what it loaded, whose next arrays take their
** pages. The funnel takes no more rows after (lq_funnel_add and lq_funnel_load give -3). 0, or
** lq_funnel_prepare's -1 or -2. */
int lq_funnel_seal(lq_funnel *f);
#define LQ_FUNNEL_SEALED_ERROR "the funnel is sealed (its loading columns freed): it takes no more rows"
/* Joins the funnel's leads to rows of t by its id column and keeps the join for later aggregations
** (the caller keeps t alive and unchanged meanwhile). 0 or -1 on no memory. */
int lq_funnel_join(lq_funnel *f, const lq_table *t, int id_col);

/* Per row of t: when its lead (by t's id column) first entered `stage` (or, implied, a later chain
** stage); NaN when never or not in the log. 0, -1 on no memory, -2 times span too much. */
int lq_funnel_entered(lq_funnel *f, int stage, const lq_table *t, int id_col, double *out);

/* Aggregation: NULL on no memory or a wrong query (then *err says why). */
lq_funnel_result *lq_funnel_aggregate(lq_funnel *f, const lq_funnel_query *q, const char **err);
void lq_funnel_result_free(lq_funnel_result *r);
uint64_t lq_funnel_result_reached(const lq_funnel_result *r, int32_t g, int stage);
uint64_t lq_funnel_result_both(const lq_funnel_result *r, int32_t g, int a, int b);
uint64_t lq_funnel_result_leads(const lq_funnel_result *r, int32_t g);
int lq_funnel_pair_index(int nchain, int a, int b);   /* a < b < nchain */
/* The result's groups in the order of their keys (missing values first, then by bytes), into
** order[ngroups]: 0, -1 on no memory. */
int lq_funnel_compare_keys(const lq_funnel_result *r, int32_t ga, int32_t gb);
int lq_funnel_result_order(const lq_funnel_result *r, int32_t *order);
/* The order of a result's breaches i and j: by lead, then mql time, then group key. */
int lq_funnel_compare_breaches(const lq_funnel_result *r, size_t i, size_t j);
/* The reported pairs: consecutive chain stages reached anywhere, then mql to every later one.
** from and to need room for 2 * LQ_FUNNEL_MAX_CHAIN; returns how many. */
int lq_funnel_output_pairs(const lq_funnel_result *r, int *from, int *to);
/* The result as CSV, a row per group in key order: its dimensions, a count per stage, then per pair
** the conversion (4 decimals), median and p90 days (2 decimals); empty where there is none. A
** string through the result's allocator (free it with size *len + 1), or NULL on no memory. */
char *lq_funnel_result_csv(const lq_funnel_result *r, size_t *len);
/* The result as JSON, funnel.to_json(funnel.report(r)) to the byte, ending in a newline; as for CSV. */
char *lq_funnel_result_json(const lq_funnel_result *r, size_t *len);
/* The result as funnel.to_text's tables (table and text formats), to the byte; total: the result of
** the same funnel without dimensions (its velocity is the total row's), or NULL. As for CSV. */
char *lq_funnel_result_text(const lq_funnel_result *r, const lq_funnel_result *total, size_t *len);

/* Serialization: a malloc'd-through-alloc string (free with the allocator, size *len + 1). */
char *lq_funnel_result_serialize(const lq_funnel_result *r, size_t *len);
lq_funnel_result *lq_funnel_result_parse(lq_allocator alloc, const char *s, size_t len, const char **err);
/* Adds other into r: 0, -1 no memory, -2 with *err when their stages or dimensions differ. */
int lq_funnel_result_merge(lq_funnel_result *r, const lq_funnel_result *other, const char **err);

#endif
