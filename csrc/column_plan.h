/* A mapping script compiled for the CSV reader: which input columns make each output column
** (renamed, the first non-empty of several, a part of the value), which values mean missing, value
** maps as dictionary lookups, and numbers and dates in the user's locale. Plain C, no Lua: the
** reader applies it to every record, so a mapping costs no call into Lua per value. */
#ifndef LEADQ_COLUMN_PLAN_H
#define LEADQ_COLUMN_PLAN_H

#include <stddef.h>
#include "table.h"

enum {
  LQ_TAKE_VALUE = 0,      /* the value as it is */
  LQ_TAKE_LOWER,          /* lower case (ASCII) */
  LQ_TAKE_UPPER,
  LQ_TAKE_DOMAIN,         /* of an e-mail address: after the last '@', lower case */
  LQ_TAKE_BEFORE_AT       /* of an e-mail address: before the last '@' */
};

#if !defined(LQ_PLAN_SOURCES)
#define LQ_PLAN_SOURCES 8   /* input columns one output column may come from (first non-empty) */
#endif

/* One output column, as the binding fills it from the compiled mapping. Strings are not owned. */
typedef struct lq_plan_column {
  const char *name;
  const char *sources[LQ_PLAN_SOURCES];  /* header names: the first that holds a value */
  int nsources;
  int take;
  const char *const *map_from;  /* value map: map_from[i] -> map_to[i] */
  const char *const *map_to;
  int nmap;
  int map_fold;           /* the map's keys match in any case */
  char tag_separator;     /* tags: 0 for the reader's */
  int numeric;            /* numbers in the locale below */
  char decimal;           /* '.' or ',' */
  char thousands;         /* 0: none; ',' '.' ' ' or '\'' */
  const char *date_formats;  /* strptime-like formats, '\n' between them; NULL: ISO 8601 only */
  int has_tz;             /* naive times are at this offset from UTC */
  int tz_minutes;
} lq_plan_column;

typedef struct lq_plan {
  const lq_plan_column *cols;
  int ncols;
  int keep_rest;          /* input columns no output column reads come along as they are */
  const lq_plan_column *rest;  /* the settings of the kept columns (locale, formats); NULL: as they are */
  const char *const *nulls;  /* values that mean missing (any case, spaces around ignored) */
  int nnulls;
} lq_plan;

/* A value of one field of the record, as the reader hands it over. */
typedef struct lq_plan_field {
  const char *s;
  size_t len;
  int quoted;
} lq_plan_field;

/* What a plan needs while it runs: where each output column reads, the value maps as dictionaries,
** room for values it rewrites. Owned by the reader; lq_plan_state_free is safe on a zeroed one. */
typedef struct lq_plan_state {
  lq_allocator alloc;
  int nout;
  const lq_plan_column **cols;   /* per output column: its plan column (plan->rest, or a plain one, for kept ones) */
  int *source;            /* nout * LQ_PLAN_SOURCES input indexes */
  lq_dict *maps;          /* per output column (empty when it has no map) */
  lq_dict nulls;
  size_t null_max;        /* the longest null token */
  uint64_t null_lengths;  /* bit n: a null token is n bytes long (quick refusal of most values) */
  unsigned char null_first[256];  /* the first bytes (either case) of null tokens */
  char *scratch;
  size_t scratch_cap, scratch_len;
} lq_plan_state;

/* Resolve the plan against the header (nheader names, NULL where a column has none). Fills
** names[0..*nout) (not owned: the plan's or the header's strings). 0, or -1 with err set ("no
** memory" or a source no column holds, with a suggestion). names must have room for
** plan->ncols + nheader entries. */
int lq_plan_state_init(lq_plan_state *ps, const lq_plan *plan, char *const *header, int nheader,
                       const char **names, int *nout, lq_allocator a, char *err, size_t errlen);
void lq_plan_state_free(lq_plan_state *ps);

/* Start a record: forget the rewritten values of the last. */
static inline void lq_plan_record(lq_plan_state *ps) { ps->scratch_len = 0; }


enum { LQ_PLAN_OK = 0, LQ_PLAN_NOT = 1, LQ_PLAN_BAD = 2 };

/* A number written in the column's locale: LQ_PLAN_OK and *out; LQ_PLAN_NOT when it is not written
** like a number at all; LQ_PLAN_BAD when it looks like one but does not fit the locale ("1.2" where
** '.' separates thousands): never read as some other number. */
int lq_plan_number(const lq_plan_column *c, const char *s, size_t len, double *out);

/* A date or time in one of the column's formats (or ISO 8601), naive ones at the column's offset:
** 1 and *out (seconds since the epoch, UTC), else 0. */
int lq_plan_time(const lq_plan_column *c, const char *s, size_t len, double *out);

/* The column's locale and formats as a phrase for reject reasons: "a number (',' decimal mark, '.'
** between thousands)". */
void lq_plan_describe(const lq_plan_column *c, int time, char *buf, size_t size);

/* ---- applying the plan: inline, it runs once per value ---- */

static inline int lq_plan_is_space(char c) { return c == ' ' || c == '\t'; }
static inline char lq_plan_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }
static inline char lq_plan_upper(char c) { return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c; }
char *lq_plan_grow(lq_plan_state *ps, size_t n);   /* room for n more bytes in scratch, or NULL */
static inline char *lq_plan_room(lq_plan_state *ps, size_t n) {
  if (ps->scratch_len + n > ps->scratch_cap) return lq_plan_grow(ps, n);
  return ps->scratch + ps->scratch_len;
}

static inline int lq_plan_is_null(lq_plan_state *ps, const char *s, size_t len) {
  char buf[64];
  size_t i;
  if (ps->nulls.count == 0 || len > ps->null_max || len > sizeof buf) return 0;
  if (!((ps->null_lengths >> len) & 1) || !ps->null_first[(unsigned char)s[0]]) return 0;
  for (i = 0; i < len; i++) buf[i] = lq_plan_lower(s[i]);
  return lq_dict_find(&ps->nulls, buf, len) >= 0;
}

/* Output column col of the record: its bytes (maybe in scratch), 0 length when missing. NULL only
** on no memory. */
static inline const char *lq_plan_value(lq_plan_state *ps, int col, const lq_plan_field *fields,
                                        size_t nfields, size_t *len, int *quoted) {
  const lq_plan_column *c = ps->cols[col];
  const int *src = &ps->source[col * LQ_PLAN_SOURCES];
  int nsrc = c == NULL || c->nsources == 0 ? 1 : c->nsources, k;
  const char *s = NULL;
  size_t n = 0, i;
  char *o;
  ps->scratch_len = 0;
  *quoted = 0;
  for (k = 0; k < nsrc; k++) {
    const lq_plan_field *f;
    const char *p;
    size_t m;
    if ((size_t)src[k] >= nfields) continue;
    f = &fields[src[k]];
    p = f->s;
    m = f->len;
    while (m > 0 && lq_plan_is_space(*p)) { p++; m--; }
    while (m > 0 && lq_plan_is_space(p[m - 1])) m--;
    if (m == 0 || lq_plan_is_null(ps, p, m)) continue;
    s = p;
    n = m;
    *quoted = f->quoted;
    break;
  }
  *len = 0;
  if (s == NULL) return "";
  switch (c->take) {
    case LQ_TAKE_LOWER: case LQ_TAKE_UPPER:
      if ((o = lq_plan_room(ps, n)) == NULL) return NULL;
      for (i = 0; i < n; i++) o[i] = c->take == LQ_TAKE_LOWER ? lq_plan_lower(s[i]) : lq_plan_upper(s[i]);
      ps->scratch_len += n;
      s = o;
      break;
    case LQ_TAKE_DOMAIN: case LQ_TAKE_BEFORE_AT: {
      size_t at = n;
      while (at > 0 && s[at - 1] != '@') at--;
      if (at == 0) return "";   /* no '@': not an address, no domain */
      if (c->take == LQ_TAKE_BEFORE_AT) { n = at - 1; break; }
      if ((o = lq_plan_room(ps, n - at)) == NULL) return NULL;
      for (i = at; i < n; i++) o[i - at] = lq_plan_lower(s[i]);
      ps->scratch_len += n - at;
      s = o;
      n = n - at;
      break;
    }
    default:
      break;
  }
  if (ps->maps[col].count > 0) {
    int32_t code;
    const char *key = s;
    if (c->map_fold) {
      char *f;
      /* s may lie in scratch, which room() can move */
      size_t at = ps->scratch != NULL && s >= ps->scratch && s < ps->scratch + ps->scratch_len ?
                  (size_t)(s - ps->scratch) : (size_t)-1;
      if ((f = lq_plan_room(ps, n)) == NULL) return NULL;
      if (at != (size_t)-1) s = ps->scratch + at;
      for (i = 0; i < n; i++) f[i] = lq_plan_lower(s[i]);
      ps->scratch_len += n;
      key = f;
    }
    code = lq_dict_find(&ps->maps[col], key, n);
    if (code >= 0) {
      s = c->map_to[code];
      n = strlen(s);
      *quoted = 0;
    }
  }
  *len = n;
  return s;
}


#endif
