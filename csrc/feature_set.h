/* Event features: plain C, no Lua. (Not "features.h": that name would shadow glibc's <features.h> under -Icsrc.)
**
** A feature set is a list of features over event types (counts in a window, points with caps,
** sums, decayed sums, first/last time, active days, sessions) plus the noise rules of the set.
** One engine serves both paths, so they agree by construction:
**   - an engagement state (lq_state) keeps one lead's features; events are folded into it in time
**     order by fs_apply; those within the declared lateness wait in a small sorted buffer first;
**   - the bulk computation groups events by lead (folding each run of rows when the file already has
**     each lead's events together, else by counting and scattering), sorts each lead's slice when it is
**     not sorted, and folds it into a scratch state with the same fs_apply; on several threads, each
**     lead is folded by one of them from the same events in the same order.
** Windows are whole UTC days: `within_days = n` keeps the events of the n days ending on the as-of day.
** A state keeps a ring of n per-day buckets (its as_of comes later); the bulk pass knows as_of first and
** keeps only the current day's bucket and a total. Either way an event costs O(1) whatever the window.
** Ties in time: sends before other events (a click in the second of its send is a scanner's), then
** arrival (state) or file (bulk) order. The property test checks both paths give the same values.
*/
#ifndef LEADQ_FEATURE_SET_H
#define LEADQ_FEATURE_SET_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#if !defined(LQ_MAX_FEATURES)
#define LQ_MAX_FEATURES 1024
#endif
#if !defined(LQ_MAX_WINDOW_DAYS)
#define LQ_MAX_WINDOW_DAYS 3660
#endif
#define LQ_MAX_FILTERS 32
#define LQ_MAX_TIME 1e15    /* |seconds| of any event time a state takes (some 30 million years) */   /* event attribute filters per set: one bit each in an event's mask */

/* The first byte of an encoded state. Version 2 ends with a 4-byte check of all the bytes before it:
** a damaged state is refused, and states that differ only in a few bytes of their middle (most
** of them) still differ at the end, where LuaJIT's string hash looks. Version 1 is still read. */
#define LQ_STATE_VERSION 2

typedef enum lq_feature_kind {
  LQ_FEAT_COUNT = 0,
  LQ_FEAT_POINTS,
  LQ_FEAT_SUM,
  LQ_FEAT_ACTIVE_DAYS,
  LQ_FEAT_SESSIONS,
  LQ_FEAT_DECAYED,
  LQ_FEAT_FIRST,
  LQ_FEAT_LAST,
  LQ_FEAT_DAYS_SINCE_LAST,
  LQ_FEAT_KIND_COUNT
} lq_feature_kind;

/* String tests of a filter clause (case-insensitive); LQ_OP_TRUE is for lead flags only. */
typedef enum lq_match_op {
  LQ_OP_EQUALS = 0, LQ_OP_STARTS_WITH, LQ_OP_CONTAINS, LQ_OP_ENDS_WITH, LQ_OP_TRUE
} lq_match_op;

typedef struct lq_feature {
  int name;                 /* offset of the name in the set's string arena */
  lq_feature_kind kind;
  int window_days;          /* 0: all history */
  int wildcard;             /* every event type */
  double points;            /* points: per event */
  double cap, cap_per_day;  /* points: bounds on the magnitude; HUGE_VAL when none */
  double half_life;         /* decayed: seconds */
  int of_value;             /* decayed: weight is the event's value, else 1 */
  double session_gap;       /* sessions: seconds of inactivity that end a session */
  uint32_t need;            /* filter bits an event must pass */
  int slot, ring;           /* first double in a state; per-day buckets */
} lq_feature;

typedef struct lq_filter {  /* all clauses hold; a clause holds when any of its needles matches */
  int attr;                 /* offset of the attribute (or lead column) name in the arena */
  int first_clause, nclauses;
  int bit;                  /* event filters: bit in an event's mask; lead filters: -1 */
} lq_filter;

typedef struct lq_clause {
  lq_match_op op;
  int first_needle, nneedles;
} lq_clause;

typedef struct lq_needle {
  int str;                  /* offset in the arena, lowercased */
  uint32_t len;
} lq_needle;

#define LQ_TYPE_SEND 1u     /* e-mail send/open: scanner clicks are measured from it */
#define LQ_TYPE_CLICK 2u    /* e-mail click: noise when too soon after a send */
#define LQ_TYPE_PAGE 4u     /* page view: noise when shorter than min_page_seconds */

typedef struct lq_feature_set {
  lq_allocator alloc;
  char *arena;              /* NUL-terminated strings */
  size_t arena_len, arena_cap;
  lq_dict types;            /* event type name -> type index; index ntypes is "any other type" */
  uint8_t *type_flags;      /* per type index (ntypes + 1) once finished */
  int type_flags_cap, type_flags_used;
  int *type_off, *type_feats;  /* per type index: features type_feats[type_off[t] .. type_off[t+1]) */
  int type_off_total;
  uint8_t *type_filtered;   /* per type index: some feature of it has a filter; bit 1: its value is read */
  lq_feature *feats;
  int nfeats, feats_cap;
  int *pairs;               /* (feature, type) before lq_fs_finish */
  int npairs, pairs_cap;
  lq_filter *filters;       /* event filters then lead filters */
  int nfilters, filters_cap, nevent_filters;
  int *lead_filters;        /* indexes of filters over lead columns: a lead matching any is noise */
  int nlead_filters, lead_filters_cap;
  lq_clause *clauses;
  int nclauses, clauses_cap;
  lq_needle *needles;
  int nneedles, needles_cap;
  double lateness;          /* seconds */
  double min_page_seconds;  /* 0: off */
  double scanner_seconds;   /* < 0: off */
  uint32_t fingerprint;     /* of the declarations: an encoded state is only read by the same set */
  int nslots;               /* doubles per state */
  int finished;
} lq_feature_set;

/* One event as the engine sees it: type index, time, value (NaN when none), filter bits. */
typedef struct lq_event {
  double at, value;
  int32_t type;
  uint32_t mask;
} lq_event;

/* Noise and bookkeeping counters of a state (and of a bulk run, summed). */
enum { LQ_N_OBSERVED = 0, LQ_N_LATE, LQ_N_SHORT_PAGE, LQ_N_SCANNER, LQ_N_LEAD, LQ_N_COUNTERS };

typedef struct lq_state_core {  /* everything of a state but its pending buffer */
  double *v;                /* fs->nslots */
  double max_at, done_at, last_send;
  int has_max, has_done, has_send, flagged;
  double counters[LQ_N_COUNTERS];
  int bulk;                 /* the bulk pass: as_of known, no rings (see fs_apply) */
  double today;             /* bulk: the as-of day */
} lq_state_core;

typedef struct lq_state {
  lq_state_core core;
  lq_event *pending;        /* sorted by (time, class); head .. head + npending */
  size_t head, npending, pending_cap;
} lq_state;

/* Building a set. Functions returning int give an index or 0 on success, -1 on no memory,
** -2 on a limit (see the messages of lq_fs_limit_message). */
lq_feature_set *lq_fs_new(lq_allocator alloc);
void lq_fs_free(lq_feature_set *fs);
int lq_fs_type(lq_feature_set *fs, const char *name, size_t len);          /* type index */
int lq_fs_add_filter(lq_feature_set *fs, const char *attr, size_t len, int lead);
int lq_fs_add_clause(lq_feature_set *fs, lq_match_op op);                /* to the last filter */
int lq_fs_add_needle(lq_feature_set *fs, const char *s, size_t len);      /* to the last clause */
int lq_fs_add_feature(lq_feature_set *fs, const lq_feature *proto, const char *name, size_t len);
int lq_fs_feature_type(lq_feature_set *fs, int feature, int type);          /* type -1: every type */
int lq_fs_set_filter_need(lq_feature_set *fs, int feature, int filter);
int lq_fs_type_flag(lq_feature_set *fs, int type, unsigned flag);
int lq_fs_finish(lq_feature_set *fs);
const char *lq_fs_feature_name(const lq_feature_set *fs, int feature);

/* Events from strings: the type index and the filter bits of attribute values. */
int32_t lq_fs_type_index(const lq_feature_set *fs, const char *type, size_t len);
int lq_fs_filter_match(const lq_feature_set *fs, int filter, const char *s, size_t len);

/* Real time. observe gives 0, or 1 when the event is later than the lateness (counted, dropped),
** -1 on no memory. values gives 0, or 1 when as_of is before events already folded in. */
int lq_state_init(const lq_feature_set *fs, lq_state *st);   /* -1 on no memory */
void lq_state_free(const lq_feature_set *fs, lq_state *st);
int lq_state_observe(const lq_feature_set *fs, lq_state *st, const lq_event *e);
int lq_state_values(const lq_feature_set *fs, const lq_state *st, double as_of, double *scratch, double *out);

/* Encoding into dst, which has room for lq_state_encode_bound bytes: the length written. Decode gives 0,
** or -1 on no memory, 1 on a bad string (msg says why). */
size_t lq_state_encode_bound(const lq_feature_set *fs, const lq_state *st);
size_t lq_state_encode(const lq_feature_set *fs, const lq_state *st, char *dst);
int lq_state_decode(const lq_feature_set *fs, lq_state *st, const char *s, size_t len, const char **msg);

/* Bulk */
typedef struct lq_compute_report {
  double events, used, after_as_of, no_time, ignored, unknown, duplicate_ids;
  int merge_joined;         /* an events table's ids joined by merge (both sides sorted), not by hashing */
  double counters[LQ_N_COUNTERS];
  size_t *unknown_rows;     /* event rows (0-based) of unknown leads, the first max_unknown */
  size_t nunknown_rows, unknown_cap;
  char *unknown_ids;        /* the events stream: their lead ids, each NUL-terminated, in row order */
  size_t unknown_ids_len;
} lq_compute_report;

/* On up to nthreads threads (fewer for few events); the same values and report for any number. */
int lq_fs_compute(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                  const lq_table *events, double as_of, size_t max_unknown, int nthreads,
                  lq_table **out, lq_compute_report *report, char *err, size_t errlen);
/* The same into an earlier result of this set for as many leads (into: filled again in place, *out is
** into; on an error its values are undefined, it is still into's caller's to free), or a new one (NULL). */
int lq_fs_compute_into(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                       const lq_table *events, double as_of, size_t max_unknown, int nthreads, lq_table *into,
                       lq_table **out, lq_compute_report *report, char *err, size_t errlen);
void lq_compute_report_free(const lq_feature_set *fs, lq_compute_report *report);

/* For the events stream (event_stream.c), which makes the engine events itself: the bulk pass over
** them (rows: each one's lead row; every one is folded; report holds the stream's counts and gets the
** noise counters), and a lead id cell as bytes (tmp holds a number's text). */
int lq_fs_compute_made(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                       const int32_t *rows, const lq_event *events, size_t n, double as_of, int nthreads,
                       lq_table **out, lq_compute_report *report, char *err, size_t errlen);
int lq_fs_column_string(const lq_column *c, size_t row, char *tmp, size_t tmplen, const char **s, size_t *len);

/* Or the stream folds each lead's events itself, on its threads (a folder each): begin makes the result
** and the folders (before any thread starts); fold folds one lead's events, in file order, into its row
** (tmp: sort scratch of n events), or gives 1 without folding when the lead was folded before (its
** events are not all in one run: the caller then folds them all through lq_fs_compute_made); end gives
** the result (out NULL: drops it) with the noise counters summed into report, and frees the rest. */
typedef struct lq_fold_pass lq_fold_pass;
int lq_fs_fold_begin(const lq_feature_set *fs, const lq_table *leads, const char *id_column, double as_of,
                     int nfolders, lq_fold_pass **out, char *err, size_t errlen);
int lq_fs_fold(lq_fold_pass *p, int folder, int32_t row, lq_event *ev, size_t n, lq_event *tmp);
int lq_fs_fold_end(lq_fold_pass *p, lq_compute_report *report, lq_table **out);

#endif
