/* Event features: building a set, the per-lead engine, real-time states, encoding and the bulk pass.
** Plain C, no Lua; every byte from the set's allocator. See features.h for the model. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "feature_set.h"
#include "run_jobs.h"

#define DAY 86400.0

/* ---- memory ---- */

/* Grow *p (elem-sized items, *cap of them) to hold need; 0 on success. */
static int mem_grow(const lq_allocator *a, void **p, size_t elem, size_t *cap, size_t need) {
  size_t ncap;
  void *np;
  if (need <= *cap) return 0;
  ncap = *cap + *cap / 2;
  if (ncap < 8) ncap = 8;
  if (ncap < need) ncap = need;
  if (ncap > ((size_t)-1) / elem) return -1;
  np = lq_mem_resize(a, *p, *p ? *cap * elem : 0, ncap * elem);
  if (np == NULL) return -1;
  *p = np;
  *cap = ncap;
  return 0;
}

static int grow_int(const lq_allocator *a, void **p, size_t elem, int *cap, int need) {
  size_t c = (size_t)*cap;
  if (mem_grow(a, p, elem, &c, (size_t)need) != 0) return -1;
  *cap = (int)c;
  return 0;
}

/* ---- building a set ---- */

lq_feature_set *lq_fs_new(lq_allocator alloc) {
  lq_feature_set *fs = (lq_feature_set *)lq_mem_resize(&alloc, NULL, 0, sizeof *fs);
  if (fs == NULL) return NULL;
  memset(fs, 0, sizeof *fs);
  fs->alloc = alloc;
  lq_dict_init(&fs->types);
  fs->scanner_seconds = -1;
  return fs;
}

void lq_fs_free(lq_feature_set *fs) {
  lq_allocator *a;
  int ntypes;
  if (fs == NULL) return;
  a = &fs->alloc;
  ntypes = fs->types.count;
  lq_mem_free(a, fs->arena, fs->arena_cap);
  if (fs->finished) {
    lq_mem_free(a, fs->type_flags, (size_t)(ntypes + 1));
    lq_mem_free(a, fs->type_filtered, (size_t)(ntypes + 1));
    lq_mem_free(a, fs->type_off, (size_t)(ntypes + 2) * sizeof(int));
    lq_mem_free(a, fs->type_feats, (size_t)fs->type_off_total * sizeof(int));
  } else {
    lq_mem_free(a, fs->type_flags, (size_t)fs->type_flags_cap);
  }
  lq_mem_free(a, fs->feats, (size_t)fs->feats_cap * sizeof(lq_feature));
  lq_mem_free(a, fs->pairs, (size_t)fs->pairs_cap * 2 * sizeof(int));
  lq_mem_free(a, fs->filters, (size_t)fs->filters_cap * sizeof(lq_filter));
  lq_mem_free(a, fs->lead_filters, (size_t)fs->lead_filters_cap * sizeof(int));
  lq_mem_free(a, fs->clauses, (size_t)fs->clauses_cap * sizeof(lq_clause));
  lq_mem_free(a, fs->needles, (size_t)fs->needles_cap * sizeof(lq_needle));
  lq_dict_free(&fs->types, a);
  lq_mem_free(a, fs, sizeof *fs);
}

/* Copy a string into the arena, lowercased when asked; its offset, or -1. */
static int arena_add(lq_feature_set *fs, const char *s, size_t len, int lower) {
  size_t off = fs->arena_len, i;
  if (len > 1u << 20 || off + len + 1 > (size_t)0x7fffffff) return -2;
  if (mem_grow(&fs->alloc, (void **)&fs->arena, 1, &fs->arena_cap, off + len + 1) != 0) return -1;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (lower && c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    fs->arena[off + i] = c;
  }
  fs->arena[off + len] = '\0';
  fs->arena_len = off + len + 1;
  return (int)off;
}

int lq_fs_type(lq_feature_set *fs, const char *name, size_t len) {
  int32_t code;
  if (fs->finished) return -2;
  code = lq_dict_intern(&fs->types, &fs->alloc, name, len);
  if (code < 0) return -1;
  if (grow_int(&fs->alloc, (void **)&fs->type_flags, 1, &fs->type_flags_cap, code + 2) != 0) return -1;
  if (code + 1 > fs->type_flags_used) {
    memset(fs->type_flags + fs->type_flags_used, 0, (size_t)(code + 2 - fs->type_flags_used));
    fs->type_flags_used = code + 2;
  }
  return code;
}

int lq_fs_type_flag(lq_feature_set *fs, int type, unsigned flag) {
  if (fs->finished || type < 0 || type >= fs->types.count) return -2;
  fs->type_flags[type] |= (uint8_t)flag;
  return 0;
}

int lq_fs_add_filter(lq_feature_set *fs, const char *attr, size_t len, int lead) {
  int off, idx;
  if (fs->finished) return -2;
  if (!lead && fs->nevent_filters >= LQ_MAX_FILTERS) return -2;
  if (grow_int(&fs->alloc, (void **)&fs->filters, sizeof(lq_filter), &fs->filters_cap, fs->nfilters + 1) != 0)
    return -1;
  if (lead && grow_int(&fs->alloc, (void **)&fs->lead_filters, sizeof(int), &fs->lead_filters_cap,
                       fs->nlead_filters + 1) != 0)
    return -1;
  off = arena_add(fs, attr, len, 0);
  if (off < 0) return off;
  idx = fs->nfilters++;
  fs->filters[idx].attr = off;
  fs->filters[idx].first_clause = fs->nclauses;
  fs->filters[idx].nclauses = 0;
  fs->filters[idx].bit = lead ? -1 : fs->nevent_filters++;
  if (lead) fs->lead_filters[fs->nlead_filters++] = idx;
  return idx;
}

int lq_fs_add_clause(lq_feature_set *fs, lq_match_op op) {
  if (fs->finished || fs->nfilters == 0) return -2;
  if (grow_int(&fs->alloc, (void **)&fs->clauses, sizeof(lq_clause), &fs->clauses_cap, fs->nclauses + 1) != 0)
    return -1;
  fs->clauses[fs->nclauses].op = op;
  fs->clauses[fs->nclauses].first_needle = fs->nneedles;
  fs->clauses[fs->nclauses].nneedles = 0;
  fs->filters[fs->nfilters - 1].nclauses++;
  return fs->nclauses++;
}

int lq_fs_add_needle(lq_feature_set *fs, const char *s, size_t len) {
  int off;
  if (fs->finished || fs->nclauses == 0) return -2;
  if (grow_int(&fs->alloc, (void **)&fs->needles, sizeof(lq_needle), &fs->needles_cap, fs->nneedles + 1) != 0)
    return -1;
  off = arena_add(fs, s, len, 1);
  if (off < 0) return off;
  fs->needles[fs->nneedles].str = off;
  fs->needles[fs->nneedles].len = (uint32_t)len;
  fs->clauses[fs->nclauses - 1].nneedles++;
  return fs->nneedles++;
}

int lq_fs_add_feature(lq_feature_set *fs, const lq_feature *proto, const char *name, size_t len) {
  int off;
  lq_feature *f;
  if (fs->finished || fs->nfeats >= LQ_MAX_FEATURES) return -2;
  if (proto->kind < 0 || proto->kind >= LQ_FEAT_KIND_COUNT) return -2;
  if (proto->window_days < 0 || proto->window_days > LQ_MAX_WINDOW_DAYS) return -2;
  if (grow_int(&fs->alloc, (void **)&fs->feats, sizeof(lq_feature), &fs->feats_cap, fs->nfeats + 1) != 0)
    return -1;
  off = arena_add(fs, name, len, 0);
  if (off < 0) return off;
  f = &fs->feats[fs->nfeats];
  *f = *proto;
  f->name = off;
  return fs->nfeats++;
}

/* type -1: every type (the feature is a wildcard). */
int lq_fs_feature_type(lq_feature_set *fs, int feature, int type) {
  if (fs->finished || feature < 0 || feature >= fs->nfeats || type < -1 || type >= fs->types.count) return -2;
  if (type == -1) {
    fs->feats[feature].wildcard = 1;
    return 0;
  }
  if (grow_int(&fs->alloc, (void **)&fs->pairs, 2 * sizeof(int), &fs->pairs_cap, fs->npairs + 1) != 0) return -1;
  fs->pairs[2 * fs->npairs] = feature;
  fs->pairs[2 * fs->npairs + 1] = type;
  fs->npairs++;
  return 0;
}

int lq_fs_set_filter_need(lq_feature_set *fs, int feature, int filter) {
  if (fs->finished || feature < 0 || feature >= fs->nfeats || filter < 0 || filter >= fs->nfilters ||
      fs->filters[filter].bit < 0)
    return -2;
  fs->feats[feature].need |= 1u << fs->filters[filter].bit;
  return 0;
}

/* Slots of a feature in a state: [0] events matched, [1], [2] by kind, then `ring` (day, value) pairs. */
#define FEAT_SCALARS 3

static int is_windowed(lq_feature_kind k) {
  return k == LQ_FEAT_COUNT || k == LQ_FEAT_POINTS || k == LQ_FEAT_SUM || k == LQ_FEAT_ACTIVE_DAYS ||
         k == LQ_FEAT_SESSIONS;
}

/* Per type index, the features it feeds (CSR), built once every declaration is in. */
int lq_fs_finish(lq_feature_set *fs) {
  lq_allocator *a = &fs->alloc;
  int ntypes = fs->types.count, t, i, slot = 0, total;
  int *off, *feats, *fill;
  uint8_t *flags, *filtered;
  if (fs->finished) return -2;
  for (i = 0; i < fs->nfeats; i++) {
    lq_feature *f = &fs->feats[i];
    f->ring = is_windowed(f->kind) ? (f->window_days > 0 ? f->window_days : 1) : 0;
    f->slot = slot;
    slot += FEAT_SCALARS + 2 * f->ring;
  }
  fs->nslots = slot;
  off = (int *)lq_mem_resize(a, NULL, 0, (size_t)(ntypes + 2) * sizeof(int));
  flags = (uint8_t *)lq_mem_resize(a, NULL, 0, (size_t)(ntypes + 1));
  filtered = (uint8_t *)lq_mem_resize(a, NULL, 0, (size_t)(ntypes + 1));
  if (off == NULL || flags == NULL || filtered == NULL) goto nomem;
  memset(off, 0, (size_t)(ntypes + 2) * sizeof(int));
  memset(filtered, 0, (size_t)(ntypes + 1));
  for (t = 0; t <= ntypes; t++) flags[t] = (t < ntypes && t < fs->type_flags_used) ? fs->type_flags[t] : 0;
  /* count */
  for (i = 0; i < fs->npairs; i++) off[fs->pairs[2 * i + 1] + 1]++;
  for (i = 0; i < fs->nfeats; i++)
    if (fs->feats[i].wildcard)
      for (t = 0; t <= ntypes; t++) off[t + 1]++;
  for (t = 0; t <= ntypes; t++) off[t + 1] += off[t];
  total = off[ntypes + 1];
  feats = (int *)lq_mem_resize(a, NULL, 0, (size_t)(total > 0 ? total : 1) * sizeof(int));
  fill = (int *)lq_mem_resize(a, NULL, 0, (size_t)(ntypes + 1) * sizeof(int));
  if (feats == NULL || fill == NULL) {
    if (feats) lq_mem_free(a, feats, (size_t)(total > 0 ? total : 1) * sizeof(int));
    if (fill) lq_mem_free(a, fill, (size_t)(ntypes + 1) * sizeof(int));
    goto nomem;
  }
  for (t = 0; t <= ntypes; t++) fill[t] = off[t];
  /* in declaration order within each type: pairs were added in that order, wildcards merged by index */
  for (i = 0; i < fs->nfeats; i++) {
    int p;
    if (fs->feats[i].wildcard) {
      for (t = 0; t <= ntypes; t++) feats[fill[t]++] = i;
      continue;
    }
    for (p = 0; p < fs->npairs; p++)
      if (fs->pairs[2 * p] == i) {
        int ty = fs->pairs[2 * p + 1];
        int k, dup = 0;
        for (k = off[ty]; k < fill[ty]; k++) dup |= feats[k] == i;
        if (!dup) feats[fill[ty]++] = i;
      }
  }
  /* duplicates left holes: compact each type's list */
  {
    int w = 0;
    for (t = 0; t <= ntypes; t++) {
      int s = off[t], e = fill[t];
      off[t] = w;
      for (i = s; i < e; i++) {
        const lq_feature *f = &fs->feats[feats[i]];
        feats[w++] = feats[i];
        if (f->need) filtered[t] |= 1;
        if (f->kind == LQ_FEAT_SUM || (f->kind == LQ_FEAT_DECAYED && f->of_value)) filtered[t] |= 2;
      }
      if (flags[t] & LQ_TYPE_PAGE) filtered[t] |= 2;
    }
    off[ntypes + 1] = w;
  }
  lq_mem_free(a, fill, (size_t)(ntypes + 1) * sizeof(int));
  lq_mem_free(a, fs->type_flags, (size_t)fs->type_flags_cap);
  fs->type_flags = flags;
  fs->type_filtered = filtered;
  fs->type_off = off;
  fs->type_feats = feats;
  fs->type_off_total = total > 0 ? total : 1;
  fs->finished = 1;
  return 0;
nomem:
  if (off) lq_mem_free(a, off, (size_t)(ntypes + 2) * sizeof(int));
  if (flags) lq_mem_free(a, flags, (size_t)(ntypes + 1));
  if (filtered) lq_mem_free(a, filtered, (size_t)(ntypes + 1));
  return -1;
}

const char *lq_fs_feature_name(const lq_feature_set *fs, int feature) {
  return fs->arena + fs->feats[feature].name;
}

int32_t lq_fs_type_index(const lq_feature_set *fs, const char *type, size_t len) {
  int32_t code = lq_dict_find(&fs->types, type, len);
  return code < 0 ? fs->types.count : code;
}

/* ---- string tests, ASCII case-insensitive ---- */

static int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* needle is lowercase already */
static int ci_equal(const char *s, const char *needle, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (lower((unsigned char)s[i]) != (unsigned char)needle[i]) return 0;
  return 1;
}

static int needle_match(lq_match_op op, const char *s, size_t len, const char *nd, size_t nlen) {
  size_t i;
  switch (op) {
    case LQ_OP_EQUALS: return len == nlen && ci_equal(s, nd, nlen);
    case LQ_OP_STARTS_WITH: return len >= nlen && ci_equal(s, nd, nlen);
    case LQ_OP_ENDS_WITH: return len >= nlen && ci_equal(s + len - nlen, nd, nlen);
    case LQ_OP_CONTAINS:
      if (nlen > len) return 0;
      for (i = 0; i + nlen <= len; i++)
        if (ci_equal(s + i, nd, nlen)) return 1;
      return 0;
    default: return 0;
  }
}

static int truthy(const char *s, size_t len) {
  return (len == 4 && ci_equal(s, "true", 4)) || (len == 3 && ci_equal(s, "yes", 3)) ||
         (len == 1 && (s[0] == '1' || lower((unsigned char)s[0]) == 'y' || lower((unsigned char)s[0]) == 't'));
}

int lq_fs_filter_match(const lq_feature_set *fs, int filter, const char *s, size_t len) {
  const lq_filter *fl = &fs->filters[filter];
  int c;
  if (s == NULL) return 0;
  for (c = 0; c < fl->nclauses; c++) {
    const lq_clause *cl = &fs->clauses[fl->first_clause + c];
    int n, ok = 0;
    if (cl->op == LQ_OP_TRUE) {
      ok = truthy(s, len);
    } else {
      for (n = 0; n < cl->nneedles && !ok; n++) {
        const lq_needle *nd = &fs->needles[cl->first_needle + n];
        ok = needle_match(cl->op, s, len, fs->arena + nd->str, nd->len);
      }
    }
    if (!ok) return 0;
  }
  return 1;
}

/* ---- the engine: one lead, events in time order ---- */

static double day_of(double at) {
  return floor(at / DAY);
}

/* day_of without the division, for the per-event path: the product by 1/DAY may round differently
** from the quotient, but only when the time is within a second of a day boundary (the remainder is
** exact to well under a second for |at| <= LQ_MAX_TIME), so those times, and the odd ones (huge, NaN),
** take the division. Same day as day_of, always. */
static inline double event_day(double at) {
  double q, d, r;
  if (!(fabs(at) <= LQ_MAX_TIME)) return day_of(at);
  q = at * (1.0 / DAY);
  d = (double)(int64_t)q;   /* floor by truncation (|q| < 2^34 here), cheaper than floor() without SSE4.1 */
  if (d > q) d -= 1;
  r = at - d * DAY;
  return (r >= 1 && r <= DAY - 1) ? d : day_of(at);
}

/* What a day bucket adds to the feature: a capped count of points, a flag for active days... */
static double bucket_value(const lq_feature *f, double v) {
  switch (f->kind) {
    case LQ_FEAT_POINTS: {
      double p = v * f->points;
      if (p > f->cap_per_day) p = f->cap_per_day;
      if (p < -f->cap_per_day) p = -f->cap_per_day;
      return p;
    }
    case LQ_FEAT_ACTIVE_DAYS: return v > 0 ? 1 : 0;
    default: return v;
  }
}

/* Slots of a feature in the bulk pass: the same scalars, then one (day, value) pair for the current day. */
#define BULK_SLOTS (FEAT_SCALARS + 2)

static int state_slots(const lq_feature_set *fs, const lq_state_core *c) {
  return c->bulk ? BULK_SLOTS * fs->nfeats : fs->nslots;
}

/* The bulk pass knows as_of before it folds: a windowed feature then keeps only the days inside the
** window, closing each day as the next begins (events come in time order), so values are O(1).
** A real-time state keeps a ring of per-day buckets instead, since its as_of comes later. */
static inline void feature_add(const lq_feature *f, double *p, double at, double day, double value,
                               const lq_state_core *st, int bulk) {
  p[0] += 1;
  switch (f->kind) {
    case LQ_FEAT_DECAYED: {
      double w = f->of_value ? (value == value ? value : 0) : 1;
      if (p[0] == 1 || at <= p[2]) {
        p[1] = (p[0] == 1 ? 0 : p[1]) + w;
        p[2] = at;
      } else {
        p[1] = p[1] * exp2(-(at - p[2]) / f->half_life) + w;
        p[2] = at;
      }
      return;
    }
    case LQ_FEAT_FIRST: case LQ_FEAT_LAST: case LQ_FEAT_DAYS_SINCE_LAST:
      if (p[0] == 1) p[1] = at;
      p[2] = at;
      return;
    default: {
      double add = 1, d, *r;
      long idx;
      if (f->kind == LQ_FEAT_SESSIONS) {
        int same = p[0] > 1 && at - p[2] <= f->session_gap;
        p[2] = at;
        if (same) return;
      } else if (f->kind == LQ_FEAT_SUM) {
        add = value == value ? value : 0;
      }
      d = day;
      if (bulk) {
        if (f->window_days > 0 && d <= st->today - f->window_days) return;
        r = p + FEAT_SCALARS;
        if (r[0] != d) {
          p[1] += bucket_value(f, r[1]);
          r[0] = d;
          r[1] = 0;
        }
        r[1] += add;
        return;
      }
      idx = (long)((int64_t)d % f->ring);   /* d is a whole number of days */
      if (idx < 0) idx += f->ring;
      r = p + FEAT_SCALARS + 2 * idx;
      if (r[0] != d) {
        if (f->window_days == 0) p[1] += bucket_value(f, r[1]);
        r[0] = d;
        r[1] = 0;
      }
      r[1] += add;
      return;
    }
  }
}

/* Fold one event, in time order, into a state; bulk is st->bulk, a constant where the bulk pass
** calls it (fold_lead_with), so that its per-feature tests fold away. */
static inline __attribute__((always_inline)) void fs_apply_as(const lq_feature_set *fs, lq_state_core *st,
                                                              const lq_event *e, int bulk) {
  unsigned flags = fs->type_flags[e->type];
  int k, end;
  double day;
  st->has_done = 1;
  st->done_at = e->at;
  if (flags & LQ_TYPE_SEND) {
    st->has_send = 1;
    st->last_send = e->at;
  }
  if (st->flagged) {
    st->counters[LQ_N_LEAD] += 1;
    return;
  }
  if ((flags & LQ_TYPE_PAGE) && fs->min_page_seconds > 0 && e->value < fs->min_page_seconds) {
    st->counters[LQ_N_SHORT_PAGE] += 1;
    return;
  }
  if ((flags & LQ_TYPE_CLICK) && fs->scanner_seconds >= 0 && st->has_send &&
      e->at - st->last_send <= fs->scanner_seconds && !(flags & LQ_TYPE_SEND)) {
    st->counters[LQ_N_SCANNER] += 1;
    return;
  }
  end = fs->type_off[e->type + 1];
  day = event_day(e->at);
  for (k = fs->type_off[e->type]; k < end; k++) {
    int fi = fs->type_feats[k];
    const lq_feature *f = &fs->feats[fi];
    if ((e->mask & f->need) != f->need) continue;
    feature_add(f, st->v + (bulk ? BULK_SLOTS * fi : f->slot), e->at, day, e->value, st, bulk);
  }
}

static void fs_apply(const lq_feature_set *fs, lq_state_core *st, const lq_event *e) {
  fs_apply_as(fs, st, e, st->bulk);
}

static inline double feature_value(const lq_feature *f, const double *p, double as_of, int bulk) {
  switch (f->kind) {
    case LQ_FEAT_DECAYED:
      return p[0] > 0 ? p[1] * exp2(-(as_of - p[2]) / f->half_life) : 0;
    case LQ_FEAT_FIRST: return p[0] > 0 ? p[1] : NAN;
    case LQ_FEAT_LAST: return p[0] > 0 ? p[2] : NAN;
    case LQ_FEAT_DAYS_SINCE_LAST: return p[0] > 0 ? (as_of - p[2]) / DAY : NAN;
    default: {
      double today = 0, total = f->window_days == 0 ? p[1] : 0;
      int i;
      if (bulk) total = p[1] + bucket_value(f, p[FEAT_SCALARS + 1]);
      else today = day_of(as_of);   /* only the rings need it: the bulk pass runs this per lead */
      for (i = 0; i < f->ring && !bulk; i++) {
        const double *r = p + FEAT_SCALARS + 2 * i;
        if (r[1] == 0 || r[0] > today) continue;
        if (f->window_days > 0 && r[0] <= today - f->window_days) continue;
        total += bucket_value(f, r[1]);
      }
      if (f->kind == LQ_FEAT_POINTS) {
        if (total > f->cap) total = f->cap;
        if (total < -f->cap) total = -f->cap;
      }
      return total;
    }
  }
}

/* The values of a state; bulk as in fs_apply_as. */
static inline __attribute__((always_inline)) void fs_values_as(const lq_feature_set *fs, const lq_state_core *st,
                                                               double as_of, double *out, int bulk) {
  int i;
  for (i = 0; i < fs->nfeats; i++)
    out[i] = feature_value(&fs->feats[i], st->v + (bulk ? BULK_SLOTS * i : fs->feats[i].slot), as_of, bulk);
}

static void fs_values(const lq_feature_set *fs, const lq_state_core *st, double as_of, double *out) {
  fs_values_as(fs, st, as_of, out, st->bulk);
}

/* Sends first among events of the same second, so that a click at the second of its send is a scanner's. */
static int event_before(const lq_feature_set *fs, const lq_event *a, const lq_event *b) {
  if (a->at != b->at) return a->at < b->at;
  return (fs->type_flags[a->type] & LQ_TYPE_SEND) && !(fs->type_flags[b->type] & LQ_TYPE_SEND);
}

/* ---- real-time states ---- */

static void core_reset(const lq_feature_set *fs, lq_state_core *c, int flagged) {
  double *v = c->v, today = c->today;
  int bulk = c->bulk;
  memset(v, 0, (size_t)state_slots(fs, c) * sizeof(double));
  memset(c, 0, sizeof *c);
  c->v = v;
  c->flagged = flagged;
  c->bulk = bulk;
  c->today = today;
}

int lq_state_init(const lq_feature_set *fs, lq_state *st) {
  size_t n = (size_t)(fs->nslots > 0 ? fs->nslots : 1);
  memset(st, 0, sizeof *st);
  st->core.v = (double *)lq_mem_resize(&fs->alloc, NULL, 0, n * sizeof(double));
  if (st->core.v == NULL) return -1;
  core_reset(fs, &st->core, 0);
  return 0;
}

void lq_state_free(const lq_feature_set *fs, lq_state *st) {
  size_t n = (size_t)(fs->nslots > 0 ? fs->nslots : 1);
  lq_mem_free(&fs->alloc, st->core.v, n * sizeof(double));
  lq_mem_free(&fs->alloc, st->pending, st->pending_cap * sizeof(lq_event));
  memset(st, 0, sizeof *st);
}

int lq_state_observe(const lq_feature_set *fs, lq_state *st, const lq_event *e) {
  lq_state_core *c = &st->core;
  size_t pos;
  double watermark;
  if (c->has_max && e->at < c->max_at - fs->lateness) {
    c->counters[LQ_N_LATE] += 1;
    return 1;
  }
  c->counters[LQ_N_OBSERVED] += 1;
  if (!c->has_max || e->at > c->max_at) {
    c->has_max = 1;
    c->max_at = e->at;
  }
  /* make room at the end; slide the live part back to the front when the head has moved far */
  if (st->head + st->npending == st->pending_cap) {
    if (st->head > 0) {
      memmove(st->pending, st->pending + st->head, st->npending * sizeof(lq_event));
      st->head = 0;
    } else if (mem_grow(&fs->alloc, (void **)&st->pending, sizeof(lq_event), &st->pending_cap,
                        st->npending + 1) != 0) {
      c->counters[LQ_N_OBSERVED] -= 1;
      return -1;
    }
  }
  /* insert after every event not later than it: arrival order breaks ties */
  pos = st->head + st->npending;
  while (pos > st->head && event_before(fs, e, &st->pending[pos - 1])) {
    st->pending[pos] = st->pending[pos - 1];
    pos--;
  }
  st->pending[pos] = *e;
  st->npending++;
  /* events older than the watermark can no longer be overtaken: fold them in */
  watermark = c->max_at - fs->lateness;
  while (st->npending > 0 && st->pending[st->head].at < watermark) {
    fs_apply(fs, c, &st->pending[st->head]);
    st->head++;
    st->npending--;
  }
  if (st->npending == 0) st->head = 0;
  return 0;
}

int lq_state_values(const lq_feature_set *fs, const lq_state *st, double as_of, double *scratch, double *out) {
  size_t i;
  lq_state_core copy;
  if (st->core.has_done && st->core.done_at > as_of) return 1;
  if (st->npending == 0) {
    fs_values(fs, &st->core, as_of, out);
    return 0;
  }
  copy = st->core;
  copy.v = scratch;
  memcpy(scratch, st->core.v, (size_t)fs->nslots * sizeof(double));
  for (i = 0; i < st->npending; i++) {
    const lq_event *e = &st->pending[st->head + i];
    if (e->at > as_of) break;
    fs_apply(fs, &copy, e);
  }
  fs_values(fs, &copy, as_of, out);
  return 0;
}

/* ---- encoding ----
** v1: version byte, fingerprint (u32 LE), nslots (varint), flags byte (has_max, has_done, has_send, flagged),
** the times those flags announce (f64 LE each), the counters (varints), a bitmap of the non-zero slots and
** those slots (f64 LE), then the pending events: count (varint), each at, value (f64 LE), type, mask (varints).
** A newer build keeps a decoder for every older version. */

/* The writer stores straight into dst, sized by lq_state_encode_bound (no check per byte: the bound
** counts every field at its widest). Doubles are written byte by byte little-endian, which the
** compiler turns into one store on a little-endian machine. */
static unsigned char *put_varint(unsigned char *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  return p;
}

static unsigned char *put_f64(unsigned char *p, double d) {
  uint64_t u;
  int i;
  memcpy(&u, &d, 8);
  for (i = 0; i < 8; i++) p[i] = (unsigned char)(u >> (8 * i));
  return p + 8;
}

/* A counter as its varint: a double past 2^64 - 1 (a decoded 2^64 - 1 reads back as 2^64) or below
** 0 has no uint64_t, and the cast of it is undefined (x86 gave 0: a huge count re-encoded to 0). */
static uint64_t counter_bits(double d) {
  if (!(d > 0)) return 0;  /* and NaN */
  if (d >= 18446744073709551616.0) return UINT64_MAX;
  return (uint64_t)d;
}

size_t lq_state_encode_bound(const lq_feature_set *fs, const lq_state *st) {
  return 4 + 5 + 10 + 1 + 3 * 8 + 10 * LQ_N_COUNTERS + (size_t)(fs->nslots + 7) / 8 + 8 * (size_t)fs->nslots + 10 +
         st->npending * (2 * 8 + 10 + 10);
}

size_t lq_state_encode(const lq_feature_set *fs, const lq_state *st, char *dst) {
  const lq_state_core *c = &st->core;
  unsigned char *start = (unsigned char *)dst, *p = start, byte = 0;
  uint32_t h;
  int i;
  size_t k;
  *p++ = LQ_STATE_VERSION;
  for (i = 0; i < 4; i++) *p++ = (unsigned char)(fs->fingerprint >> (8 * i));
  p = put_varint(p, (uint64_t)fs->nslots);
  *p++ = (unsigned char)((c->has_max ? 1 : 0) | (c->has_done ? 2 : 0) | (c->has_send ? 4 : 0) | (c->flagged ? 8 : 0));
  if (c->has_max) p = put_f64(p, c->max_at);
  if (c->has_done) p = put_f64(p, c->done_at);
  if (c->has_send) p = put_f64(p, c->last_send);
  for (i = 0; i < LQ_N_COUNTERS; i++) p = put_varint(p, counter_bits(c->counters[i]));
  for (i = 0; i < fs->nslots; i++) {
    if (c->v[i] != 0) byte = (unsigned char)(byte | (1u << (i & 7)));
    if ((i & 7) == 7 || i == fs->nslots - 1) {
      *p++ = byte;
      byte = 0;
    }
  }
  for (i = 0; i < fs->nslots; i++)
    if (c->v[i] != 0) p = put_f64(p, c->v[i]);
  p = put_varint(p, (uint64_t)st->npending);
  for (k = 0; k < st->npending; k++) {
    const lq_event *e = &st->pending[st->head + k];
    p = put_f64(p, e->at);
    p = put_f64(p, e->value);
    p = put_varint(p, (uint64_t)e->type);
    p = put_varint(p, (uint64_t)e->mask);
  }
  h = lq_fnv1a(dst, (size_t)(p - start));
  for (i = 0; i < 4; i++) *p++ = (unsigned char)(h >> (8 * i));
  return (size_t)(p - start);
}

typedef struct reader {
  const unsigned char *p, *end;
  int bad;
} reader;

static uint64_t rd_varint(reader *r) {
  uint64_t v = 0;
  int shift = 0;
  for (;;) {
    unsigned char byte;
    if (r->p >= r->end || shift > 63) {
      r->bad = 1;
      return 0;
    }
    byte = *r->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return v;
    shift += 7;
  }
}

static double rd_f64(reader *r) {
  uint64_t u = 0;
  double d;
  int i;
  if (r->end - r->p < 8) {
    r->bad = 1;
    return 0;
  }
  for (i = 0; i < 8; i++) u |= (uint64_t)r->p[i] << (8 * i);
  r->p += 8;
  memcpy(&d, &u, 8);
  return d;
}

static int decode_v1(const lq_feature_set *fs, lq_state *st, reader *r, const char **msg) {
  lq_state_core *c = &st->core;
  unsigned flags;
  int i;
  uint64_t n, k;
  const unsigned char *bitmap;
  if (rd_varint(r) != (uint64_t)fs->nslots || r->bad) {
    *msg = "the state was encoded by a different feature set";
    return 1;
  }
  if (r->p >= r->end) goto bad;
  flags = *r->p++;
  c->has_max = flags & 1;
  c->has_done = (flags >> 1) & 1;
  c->has_send = (flags >> 2) & 1;
  c->flagged = (flags >> 3) & 1;
  if (c->has_max) c->max_at = rd_f64(r);
  if (c->has_done) c->done_at = rd_f64(r);
  if (c->has_send) c->last_send = rd_f64(r);
  /* event times, as observe takes them: a NaN or far-off latest time would make every later event
  ** late, and the lead would never move again */
  if ((c->has_max && !(fabs(c->max_at) < LQ_MAX_TIME)) || (c->has_done && !(fabs(c->done_at) < LQ_MAX_TIME)) ||
      (c->has_send && !(fabs(c->last_send) < LQ_MAX_TIME)))
    goto bad;
  for (i = 0; i < LQ_N_COUNTERS; i++) c->counters[i] = (double)rd_varint(r);
  if (r->bad || r->end - r->p < (fs->nslots + 7) / 8) goto bad;
  bitmap = r->p;
  r->p += (fs->nslots + 7) / 8;
  for (i = 0; i < fs->nslots; i++)
    c->v[i] = (bitmap[i >> 3] >> (i & 7)) & 1 ? rd_f64(r) : 0;
  n = rd_varint(r);
  if (r->bad || n > (uint64_t)(r->end - r->p) / 18) goto bad;
  if (n > 0 && mem_grow(&fs->alloc, (void **)&st->pending, sizeof(lq_event), &st->pending_cap, (size_t)n) != 0)
    return -1;
  for (k = 0; k < n; k++) {
    lq_event *e = &st->pending[k];
    uint64_t type, mask;
    e->at = rd_f64(r);
    e->value = rd_f64(r);
    type = rd_varint(r);
    mask = rd_varint(r);
    if (r->bad || type > (uint64_t)fs->types.count || mask > 0xffffffffu || !(e->at > -LQ_MAX_TIME && e->at < LQ_MAX_TIME))
      goto bad;
    e->type = (int32_t)type;
    e->mask = (uint32_t)mask;
  }
  st->head = 0;
  st->npending = (size_t)n;
  if (r->bad || r->p != r->end) goto bad;
  return 0;
bad:
  *msg = "the state string is damaged or truncated";
  return 1;
}

int lq_state_decode(const lq_feature_set *fs, lq_state *st, const char *s, size_t len, const char **msg) {
  reader r;
  uint32_t fp = 0;
  int i, rc;
  r.p = (const unsigned char *)s;
  r.end = r.p + len;
  r.bad = 0;
  core_reset(fs, &st->core, 0);   /* whatever fails below, the state is left empty */
  st->head = st->npending = 0;
  if (len < 5) {
    *msg = "the state string is too short";
    return 1;
  }
  for (i = 0; i < 4; i++) fp |= (uint32_t)r.p[1 + i] << (8 * i);
  if (r.p[0] == 0 || r.p[0] > LQ_STATE_VERSION) {
    *msg = "the state was encoded by a newer version of leadq";
    return 1;
  }
  if (fp != fs->fingerprint) {
    *msg = "the state was encoded by a different feature set";
    return 1;
  }
  if (r.p[0] >= 2) {   /* the check at the end */
    uint32_t h = 0;
    if (len < 9) {
      *msg = "the state string is too short";
      return 1;
    }
    for (i = 0; i < 4; i++) h |= (uint32_t)r.p[len - 4 + i] << (8 * i);
    if (h != lq_fnv1a(r.p, len - 4)) {
      *msg = "the state string is damaged or truncated (its check does not match)";
      return 1;
    }
    r.end -= 4;
  }
  r.p += 5;
  switch (s[0]) {
    case 1: case 2: rc = decode_v1(fs, st, &r, msg); break;   /* the same body */
    default: *msg = "unknown state version"; rc = 1; break;
  }
  if (rc != 0) {
    core_reset(fs, &st->core, 0);
    st->head = st->npending = 0;
  }
  return rc;
}

/* ---- bulk ---- */

/* Stable merge sort of one lead's events by (time, class). */
static void sort_events(const lq_feature_set *fs, lq_event *ev, lq_event *tmp, size_t n) {
  size_t width, i;
  lq_event *src = ev, *dst = tmp;
  if (n < 2) return;
  if (n <= 16) {  /* insertion sort */
    for (i = 1; i < n; i++) {
      lq_event x = ev[i];
      size_t j = i;
      while (j > 0 && event_before(fs, &x, &ev[j - 1])) {
        ev[j] = ev[j - 1];
        j--;
      }
      ev[j] = x;
    }
    return;
  }
  for (width = 1; width < n; width *= 2) {
    for (i = 0; i < n; i += 2 * width) {
      size_t lo = i, mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
      size_t a = lo, b = mid, o = lo;
      while (a < mid && b < hi) dst[o++] = event_before(fs, &src[b], &src[a]) ? src[b++] : src[a++];
      while (a < mid) dst[o++] = src[a++];
      while (b < hi) dst[o++] = src[b++];
    }
    {
      lq_event *t = src;
      src = dst;
      dst = t;
    }
  }
  if (src != ev) memcpy(ev, src, n * sizeof(lq_event));
}

int lq_fs_column_string(const lq_column *c, size_t row, char *tmp, size_t tmplen, const char **s, size_t *len) {
  switch (c->type) {
    case LQ_CATEGORY:
      if (c->codes[row] == LQ_MISSING_CODE) return 0;
      *s = lq_dict_string(&c->dict, c->codes[row], len);
      return *s != NULL;
    case LQ_TEXT:
      if (c->text_missing[row]) return 0;
      *s = c->text + c->offsets[row];
      *len = (size_t)(c->offsets[row + 1] - c->offsets[row]);
      return 1;
    case LQ_NUMBER: case LQ_TIME: {
      double v = c->numbers[row];
      int n;
      if (v != v) return 0;
      if (v == floor(v) && fabs(v) < 1e15) n = snprintf(tmp, tmplen, "%.0f", v);
      else n = snprintf(tmp, tmplen, "%.17g", v);
      *s = tmp;
      *len = (size_t)n;
      return 1;
    }
    case LQ_BOOLEAN:
      if (c->bools[row] == LQ_MISSING_BOOL) return 0;
      *s = c->bools[row] ? "true" : "false";
      *len = strlen(*s);
      return 1;
    default: return 0;
  }
}

/* A lead is noise when any lead filter holds for one of its columns. */
static int lead_flagged(const lq_feature_set *fs, const lq_table *leads, const int *cols, size_t row) {
  int k;
  char tmp[64];
  for (k = 0; k < fs->nlead_filters; k++) {
    const lq_column *c = leads->cols[cols[k]];
    const char *s;
    size_t len;
    if (lq_fs_column_string(c, row, tmp, sizeof tmp, &s, &len) && lq_fs_filter_match(fs, fs->lead_filters[k], s, len))
      return 1;
  }
  return 0;
}

typedef struct scratch {
  const lq_allocator *a;
  void *p[LQ_MAX_FILTERS + 16];   /* the filters' match tables and a dozen arrays */
  size_t sz[LQ_MAX_FILTERS + 16];
  int n;
} scratch;

static void *scratch_get(scratch *s, size_t size) {
  void *p;
  if (size == 0) size = 1;
  if (s->n == (int)(sizeof s->p / sizeof s->p[0])) return NULL;
  p = lq_mem_resize(s->a, NULL, 0, size);
  if (p == NULL) return NULL;
  lq_advise_huge_pages(p, size);
  s->p[s->n] = p;
  s->sz[s->n++] = size;
  return p;
}

static void scratch_free(scratch *s) {
  int i;
  for (i = 0; i < s->n; i++) lq_mem_free(s->a, s->p[i], s->sz[i]);
  s->n = 0;
}

#if !defined(LQ_SCATTER_DIRECT)
#define LQ_SCATTER_DIRECT 65536   /* up to this many leads, events go straight to their lead's slice */
#endif
#if !defined(LQ_SCATTER_RANGES)
#define LQ_SCATTER_RANGES 1024    /* otherwise first into this many ranges of leads */
#endif

/* What the bulk pass needs to turn event row i into an engine event. */
typedef struct event_source {
  const lq_feature_set *fs;
  const lq_column *types, *at, *value;
  const lq_column *fcols[LQ_MAX_FILTERS];
  uint8_t *fmatch[LQ_MAX_FILTERS];   /* category filters: a match flag per dictionary code */
  int ffilter[LQ_MAX_FILTERS];       /* the filter of each bit */
  const int32_t *type_map;
  /* the arrays read per event, loaded once (the stores into events would make the compiler reload them) */
  const int32_t *type_codes;
  const double *at_num, *value_num;  /* value_num: NULL when the events have no value column */
  const uint8_t *type_filtered;
  const lq_event *made;              /* events made already (the events stream): no table to read */
} event_source;

/* The filter bits of event row i (only for types some filtered feature counts). */
static void event_filters(const event_source *src, size_t i, lq_event *e) {
  const lq_feature_set *fs = src->fs;
  int k;
  for (k = 0; k < fs->nevent_filters; k++) {
    const lq_column *c = src->fcols[k];
    int hit;
    if (src->fmatch[k] != NULL)
      hit = c->codes[i] >= 0 && src->fmatch[k][c->codes[i]];
    else
      hit = !c->text_missing[i] && lq_fs_filter_match(fs, src->ffilter[k], c->text + c->offsets[i],
                                                        (size_t)(c->offsets[i + 1] - c->offsets[i]));
    if (hit) e->mask |= 1u << k;
  }
}

/* Small and per event: inline, with the rare filter work out of line. */
static inline void make_event(const event_source *src, size_t i, lq_event *e) {
  int32_t t;
  if (src->made != NULL) {
    *e = src->made[i];
    return;
  }
  t = src->type_map[src->type_codes[i]];
  e->at = src->at_num[i];
  e->value = src->value_num ? src->value_num[i] : NAN;
  e->type = t;
  e->mask = 0;
  if (src->type_filtered[t] & 1) event_filters(src, i, e);
}

void lq_compute_report_free(const lq_feature_set *fs, lq_compute_report *report) {
  lq_mem_free(&fs->alloc, report->unknown_rows, report->unknown_cap * sizeof(size_t));
  report->unknown_cap = 0;
  report->unknown_rows = NULL;
  report->nunknown_rows = 0;
  lq_mem_free(&fs->alloc, report->unknown_ids, report->unknown_ids_len);
  report->unknown_ids = NULL;
  report->unknown_ids_len = 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg);
  return -1;
}

/* Which events the bulk pass keeps, and which lead row each belongs to. */
typedef struct event_pick {
  const lq_column *leads_of, *types, *at;
  const int32_t *code_row, *type_map;
  const int32_t *made_rows;     /* events made already: each one's lead row, every one kept (counted
                                ** by the stream that made them) */
  double as_of;
} event_pick;

/* ---- the bulk pass on threads ----
** Three steps, each run by every thread on its own share, with nothing allocated inside a thread
** (the allocator may be Lua's, which is not thread-safe) and nothing written that another thread writes:
**   pick:    over ranges of events (cut where the lead_id changes): the lead row of each event, the
**            report's counts, and whether each lead's events are one run of rows;
**   grouped: when they are, each thread folds the runs of its own range as it reads them;
**   else:    over ranges of leads: count each lead's events, scatter them into per-lead slices (file
**            order kept within a lead), fold every slice.
** Each lead is folded by one thread from the same events in the same order as one thread would: the
** values are the same whatever the number of threads. */

#define LQ_FS_MAX_THREADS LQ_RUN_MAX_JOBS   /* lq_run_jobs runs at most these */
#if !defined(LQ_FS_RUN_START)
#define LQ_FS_RUN_START 4096       /* events of one lead a thread folds while picking; longer: a pass more */
#endif
#if !defined(LQ_FS_THREAD_EVENTS)
#define LQ_FS_THREAD_EVENTS 4096   /* fewer events than this per thread: fewer threads */
#endif

typedef struct compute_job compute_job;
typedef void (*job_step)(compute_job *);

struct compute_job {
  job_step step;
  const lq_feature_set *fs;
  const event_pick *pick;
  const event_source *src;
  const lq_table *leads;
  const int *lead_cols;
  lq_table *res;
  double as_of;
  int32_t *row_of;              /* shared: a job writes the rows of its own events only */
  size_t *fill;                 /* shared: a job writes the entries of its own leads only */
  size_t nev;
  size_t ev_begin, ev_end;      /* pick and grouped: this job's events */
  size_t lead_begin, lead_end;  /* otherwise: this job's leads */
  /* pick */
  double used, after_as_of, no_time, ignored, unknown;
  size_t *unknown_rows, nunknown, unknown_cap;   /* the first unknown_cap of its range */
  uint64_t *seen;               /* a bit per lead row met in this job's events */
  size_t seen_words, max_run;
  int grouped;
  int fold_too, oom;            /* fold the runs while picking, as long as they come grouped */
  int shared, overflow;         /* several threads: seen is job 0's, a lead is claimed atomically by the
                                ** one thread that folds it, and a run too long for the buffer stops the fold */
  /* fold */
  lq_state_core st;
  double *vals;
  double counters[LQ_N_COUNTERS];
  lq_event *run, *tmp;          /* a lead's events; sort scratch */
  size_t run_cap;
  /* scatter (otherwise) */
  size_t nrecs, max_slice;
  lq_event *recs, *part;
  int32_t *part_row;
  size_t *bfill;
  size_t nb;
  int shift;
};

/* The lead row of event i, or -1 when the event is left out. */
static inline int32_t event_row_of(const event_pick *p, size_t i) {
  int32_t lcode, tcode;
  double at;
  if (p->made_rows != NULL) return p->made_rows[i];
  lcode = p->leads_of->codes[i];
  tcode = p->types->codes[i];
  at = p->at->numbers[i];
  if (tcode < 0 || p->type_map[tcode] < 0 || !(at <= p->as_of) || lcode < 0) return -1;   /* NaN: no time */
  return p->code_row[lcode];
}

/* The same, counting why an event is left out. */
static int32_t event_row(compute_job *j, size_t i) {
  const event_pick *p = j->pick;
  int32_t lcode, tcode, r;
  double at;
  if (p->made_rows != NULL) return p->made_rows[i];
  lcode = p->leads_of->codes[i];
  tcode = p->types->codes[i];
  at = p->at->numbers[i];
  if (tcode < 0 || p->type_map[tcode] < 0) {
    j->ignored += 1;
    return -1;
  }
  if (at != at) {
    j->no_time += 1;
    return -1;
  }
  if (at > p->as_of) {
    j->after_as_of += 1;
    return -1;
  }
  r = lcode < 0 ? -1 : p->code_row[lcode];
  if (r >= 0) {
    j->used += 1;
    return r;
  }
  j->unknown += 1;
  if (j->nunknown < j->unknown_cap) j->unknown_rows[j->nunknown++] = i;
  return -1;
}

static void fold_lead(compute_job *j, int32_t row, lq_event *ev, size_t n);

/* Room for n events in the run and sort buffers (one thread only: it allocates); 0 on success. */
static int grow_run(compute_job *j, size_t n) {
  const lq_allocator *a = &j->fs->alloc;
  size_t cap = j->run_cap, ncap = cap * 2 > n ? cap * 2 : n;
  lq_event *run, *tmp;
  if (ncap < 64) ncap = 64;
  if (ncap > ((size_t)-1) / sizeof(lq_event)) return -1;
  run = (lq_event *)lq_mem_resize(a, j->run, j->run ? cap * sizeof(lq_event) : 0, ncap * sizeof(lq_event));
  if (run == NULL) return -1;
  j->run = run;
  tmp = (lq_event *)lq_mem_resize(a, j->tmp, j->tmp ? cap * sizeof(lq_event) : 0, ncap * sizeof(lq_event));
  if (tmp == NULL) {   /* run keeps ncap: shrink it back so both have cap */
    run = (lq_event *)lq_mem_resize(a, j->run, ncap * sizeof(lq_event), (cap ? cap : 1) * sizeof(lq_event));
    if (run != NULL) j->run = run;
    return -1;
  }
  j->tmp = tmp;
  j->run_cap = ncap;
  return 0;
}

static void step_pick(compute_job *j) {
  size_t i, n = 0;
  int32_t cur = -1;
  for (i = j->ev_begin; i < j->ev_end; i++) {
    int32_t r = event_row(j, i);
    if (r < 0) continue;
    if (r != cur) {
      uint64_t bit = (uint64_t)1 << (r & 63), *w = &j->seen[r >> 6], old;
      if (n > j->max_run) j->max_run = n;
      if (j->fold_too && j->grouped && cur >= 0) fold_lead(j, cur, j->run, n);
      if (j->shared) {
        old = __atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
      } else {
        old = *w;
        *w = old | bit;
      }
      if (old & bit) j->grouped = 0;   /* a lead met again after another's events: never folded here */
      cur = r;
      n = 0;
    }
    if (j->fold_too && j->grouped) {
      if (n == j->run_cap) {
        if (j->shared) j->overflow = 1;          /* no allocation on a thread */
        else if (grow_run(j, n + 1) != 0) j->oom = 1;
        if (j->overflow || j->oom) j->fold_too = 0;
      }
      if (j->fold_too) make_event(j->src, i, &j->run[n]);
    }
    n++;
  }
  if (n > j->max_run) j->max_run = n;
  if (j->fold_too && j->grouped && cur >= 0) fold_lead(j, cur, j->run, n);
}

/* One lead's events, in file order, into its row of the result (tmp: sort scratch of n events). */
static void fold_lead_with(compute_job *j, int32_t row, lq_event *ev, size_t n, lq_event *tmp) {
  const lq_feature_set *fs = j->fs;
  lq_state_core *st = &j->st;
  size_t k;
  int c;
  core_reset(fs, st, fs->nlead_filters > 0 && lead_flagged(fs, j->leads, j->lead_cols, (size_t)row));
  for (k = 1; k < n; k++)
    if (event_before(fs, &ev[k], &ev[k - 1])) break;
  if (k < n) sort_events(fs, ev, tmp, n);
  for (k = 0; k < n; k++) fs_apply_as(fs, st, &ev[k], 1);   /* st->bulk: the bulk pass's scratch state */
  fs_values_as(fs, st, j->as_of, j->vals, 1);
  for (c = 0; c < LQ_N_COUNTERS; c++) j->counters[c] += st->counters[c];
  for (c = 0; c < fs->nfeats; c++) j->res->cols[c]->numbers[row] = j->vals[c];   /* NaN is missing */
}

static void fold_lead(compute_job *j, int32_t row, lq_event *ev, size_t n) {
  fold_lead_with(j, row, ev, n, j->tmp);
}

/* Each lead's events are one run of rows: fold each run as it ends (no row_of: it would be as many
** bytes again as a column of the events, written and read once). */
static void step_fold_runs(compute_job *j) {
  size_t i, n = 0;
  int32_t cur = -1;
  for (i = j->ev_begin; i < j->ev_end; i++) {
    int32_t r = event_row_of(j->pick, i);
    if (r < 0) continue;
    if (r != cur) {
      if (cur >= 0) fold_lead(j, cur, j->run, n);
      cur = r;
      n = 0;
    }
    make_event(j->src, i, &j->run[n++]);
  }
  if (cur >= 0) fold_lead(j, cur, j->run, n);
}

/* The lead row of each event of this job's range, for the scatter. */
static void step_rows(compute_job *j) {
  size_t i;
  for (i = j->ev_begin; i < j->ev_end; i++) j->row_of[i] = event_row_of(j->pick, i);
}

/* Events of each of this job's leads: fill[r] = their count. */
static void step_count(compute_job *j) {
  size_t i, lb = j->lead_begin, le = j->lead_end, *fill = j->fill, sum = 0;
  const int32_t *row_of = j->row_of;
  for (i = lb; i < le; i++) fill[i] = 0;
  for (i = 0; i < j->nev; i++) {
    size_t r = (size_t)(uint32_t)row_of[i];   /* -1 becomes past every lead */
    if (r >= lb && r < le) fill[r]++;
  }
  for (i = lb; i < le; i++) {
    if (fill[i] > j->max_slice) j->max_slice = fill[i];
    sum += fill[i];
  }
  j->nrecs = sum;
}

/* Scatter this job's events into per-lead slices of recs, then fold each slice. */
static void step_scatter_fold(compute_job *j) {
  size_t i, lb = j->lead_begin, le = j->lead_end, *fill = j->fill, sum = 0, begin;
  const int32_t *row_of = j->row_of;
  for (i = lb; i < le; i++) {   /* counts to starts */
    size_t c = fill[i];
    fill[i] = sum;
    sum += c;
  }
  if (j->part == NULL) {
    for (i = 0; i < j->nev; i++) {
      size_t r = (size_t)(uint32_t)row_of[i];
      if (r >= lb && r < le) make_event(j->src, i, &j->recs[fill[r]++]);
    }
  } else {
    /* two steps, each writing to few places at a time: into ranges of leads, then to each lead.
    ** One step would miss the cache twice per event once the leads outgrow it. */
    size_t b;
    for (b = 0; b < j->nb; b++) j->bfill[b] = fill[lb + (b << j->shift)];
    for (i = 0; i < j->nev; i++) {
      size_t r = (size_t)(uint32_t)row_of[i], at;
      if (r < lb || r >= le) continue;
      at = j->bfill[(r - lb) >> j->shift]++;
      make_event(j->src, i, &j->part[at]);
      j->part_row[at] = (int32_t)r;
    }
    for (i = 0; i < j->nrecs; i++) j->recs[fill[j->part_row[i]]++] = j->part[i];
  }
  /* fill[r] is now the end of lead r's slice */
  for (i = lb, begin = 0; i < le; i++) {
    size_t n = fill[i] - begin;
    if (n > 0) fold_lead(j, (int32_t)i, j->recs + begin, n);
    begin = fill[i];
  }
}

static void *job_main(void *arg) {
  compute_job *j = (compute_job *)arg;
  j->step(j);
  return NULL;
}

/* Run one step on every job (lq_run_jobs: job 0 here, the others on threads). */
static void run_step(compute_job *jobs, int njobs, job_step step) {
  int t;
  for (t = 0; t < njobs; t++) jobs[t].step = step;
  lq_run_jobs(job_main, jobs, sizeof jobs[0], njobs);
}

/* Memory of the jobs, from the set's allocator, before any thread starts and after all have ended. */
static void *job_alloc(const lq_allocator *a, size_t n, size_t elem) {
  void *p;
  if (n == 0) n = 1;
  if (n > ((size_t)-1) / elem) return NULL;
  p = lq_mem_resize(a, NULL, 0, n * elem);
  if (p != NULL) lq_advise_huge_pages(p, n * elem);
  return p;
}

static void jobs_free(const lq_feature_set *fs, compute_job *jobs, int njobs) {
  const lq_allocator *a = &fs->alloc;
  int t;
  if (jobs == NULL) return;
  for (t = 0; t < njobs; t++) {
    compute_job *j = &jobs[t];
    lq_mem_free(a, j->unknown_rows, (j->unknown_cap ? j->unknown_cap : 1) * sizeof(size_t));
    if (t == 0 || j->seen != jobs[0].seen) lq_mem_free(a, j->seen, (j->seen_words ? j->seen_words : 1) * sizeof(uint64_t));
    lq_mem_free(a, j->st.v, (size_t)(BULK_SLOTS * fs->nfeats + 1) * sizeof(double));
    lq_mem_free(a, j->vals, (size_t)(fs->nfeats + 1) * sizeof(double));
    lq_mem_free(a, j->run, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));
    lq_mem_free(a, j->tmp, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));
    lq_mem_free(a, j->recs, (j->nrecs ? j->nrecs : 1) * sizeof(lq_event));
    lq_mem_free(a, j->part, (j->nrecs ? j->nrecs : 1) * sizeof(lq_event));
    lq_mem_free(a, j->part_row, (j->nrecs ? j->nrecs : 1) * sizeof(int32_t));
    lq_mem_free(a, j->bfill, (j->nb ? j->nb : 1) * sizeof(size_t));
  }
  lq_mem_free(a, jobs, (size_t)njobs * sizeof(compute_job));
}

/* The join of sorted ids on threads: each checks its range of leads and of the events' lead_id codes
** (against the one before it), then, both sides sorted, finds the row of each of its codes. */
typedef struct join_job {
  const lq_column *idc;
  const lq_dict *dict;
  int32_t *code_row;            /* shared: a job writes its own codes only */
  size_t nleads, lb, le;        /* leads to check */
  int32_t kb, ke;               /* codes to check and join */
  int step, ok;
} join_job;

/* A lead's id as bytes: text and category ids only (the join by merge takes no others), read here
** without lq_fs_column_string's switch and calls: the join reads every lead's id once or twice. */
static inline int id_at(const lq_column *idc, size_t row, const char **s, size_t *len) {
  if (idc->type == LQ_CATEGORY) {
    int32_t c = idc->codes[row];
    if (c < 0 || c >= idc->dict.count) return 0;
    *s = idc->dict.bytes + idc->dict.starts[c];
    *len = idc->dict.lengths[c];
    return 1;
  }
  if (idc->type != LQ_TEXT || idc->text_missing[row]) return 0;
  *s = idc->text + idc->offsets[row];
  *len = (size_t)(idc->offsets[row + 1] - idc->offsets[row]);
  return 1;
}

static inline const char *code_string(const lq_dict *d, int32_t code, size_t *len) {
  *len = d->lengths[code];
  return d->bytes + d->starts[code];
}

static void join_check(join_job *j) {
  const char *prev = NULL, *s;
  size_t plen = 0, len, i;
  int32_t k;
  j->ok = 1;
  for (i = j->lb; i < j->le; i++) {
    if (!id_at(j->idc, i, &s, &len)) goto unsorted;
    if (i == j->lb && i > 0 && !id_at(j->idc, i - 1, &prev, &plen)) goto unsorted;
    if ((i > 0) && lq_compare_bytes(prev, plen, s, len) >= 0) goto unsorted;
    prev = s;
    plen = len;
  }
  k = j->kb > 0 ? j->kb : 1;
  if (k < j->ke) prev = code_string(j->dict, k - 1, &plen);
  for (; k < j->ke; k++) {
    s = code_string(j->dict, k, &len);
    if (lq_compare_bytes(prev, plen, s, len) >= 0) goto unsorted;
    prev = s;
    plen = len;
  }
  return;
unsorted:
  j->ok = 0;
}

/* Both sides strictly ascending (join_check): a lead matched is behind every later code. */
static void join_merge(join_job *j) {
  size_t lo = 0, hi = j->nleads, row, len, rlen = 0;
  const char *s, *rs = NULL;
  int32_t k;
  if (j->kb >= j->ke) return;
  s = code_string(j->dict, j->kb, &len);
  while (lo < hi) {   /* the first lead whose id is not below the first code's */
    size_t mid = lo + (hi - lo) / 2;
    id_at(j->idc, mid, &rs, &rlen);
    if (lq_compare_bytes(rs, rlen, s, len) < 0) lo = mid + 1;
    else hi = mid;
  }
  row = lo;
  for (k = j->kb; k < j->ke; k++) {
    int c = 1;
    s = code_string(j->dict, k, &len);
    while (row < j->nleads && (id_at(j->idc, row, &rs, &rlen), (c = lq_compare_bytes(rs, rlen, s, len)) < 0)) row++;
    if (row < j->nleads && c == 0) {
      j->code_row[k] = (int32_t)row;
      row++;
    } else {
      j->code_row[k] = -1;
    }
  }
}

static void *join_main(void *arg) {
  join_job *j = (join_job *)arg;
  if (j->step == 0) join_check(j);
  else join_merge(j);
  return NULL;
}

/* Both sides sorted (exports usually are): a merge join on nthreads threads, no hashing; 0 when they are not. */
static int merge_join(const lq_column *idc, size_t nleads, const lq_dict *dict, int32_t *code_row, int nthreads) {
  join_job jobs[LQ_FS_MAX_THREADS];
  int t, step, ok = 1;
  for (t = 0; t < nthreads; t++) {
    jobs[t].idc = idc;
    jobs[t].dict = dict;
    jobs[t].code_row = code_row;
    jobs[t].nleads = nleads;
    jobs[t].lb = nleads / (size_t)nthreads * (size_t)t;
    jobs[t].le = t == nthreads - 1 ? nleads : nleads / (size_t)nthreads * (size_t)(t + 1);
    jobs[t].kb = (int32_t)((size_t)dict->count / (size_t)nthreads * (size_t)t);
    jobs[t].ke = t == nthreads - 1 ? dict->count : (int32_t)((size_t)dict->count / (size_t)nthreads * (size_t)(t + 1));
  }
  for (step = 0; step < 2 && ok; step++) {
    for (t = 0; t < nthreads; t++) jobs[t].step = step;
    lq_run_jobs(join_main, jobs, sizeof jobs[0], nthreads);
    for (t = 0; t < nthreads && step == 0; t++) ok = ok && jobs[t].ok;
  }
  return ok;
}

/* Each job's range of events, cut where the lead_id changes so that a run of one lead's rows stays
** in one job (cut elsewhere, the runs would still give the same values, through the other path). */
static void cut_events(compute_job *jobs, int njobs, const int32_t *leads_of, size_t nev) {
  size_t b = 0;
  int t;
  for (t = 0; t < njobs; t++) {
    size_t e = t == njobs - 1 ? nev : nev / (size_t)njobs * (size_t)(t + 1);
    if (e < b) e = b;
    while (e > 0 && e < nev && leads_of[e] == leads_of[e - 1]) e++;
    jobs[t].ev_begin = b;
    jobs[t].ev_end = e;
    b = e;
  }
}

/* ---- lq_fs_compute, step by step ----
** One bulk pass: find the events' columns, join their lead ids to the leads' rows, map event types
** and attribute values to what the features test (once per distinct value), make the result, fold
** the events on the jobs, then sum the jobs' reports and fill the leads no event names. The steps
** share one context; each returns 0, -1 (err holds why) or LQ_FS_NOMEM. */
#define LQ_FS_NOMEM (-2)

typedef struct compute_ctx {
  const lq_feature_set *fs;
  const lq_table *leads, *events;
  size_t nleads, nev, max_unknown;
  double as_of;
  int nthreads;
  const lq_column *idc, *lc, *tc, *ac, *vc;
  const lq_column *fcols[LQ_MAX_FILTERS];
  scratch sc;
  int32_t *code_row, *type_map;
  int *lead_cols;
  event_source src;
  event_pick pick;
  lq_table *res;
  lq_table *into;               /* an earlier result to fill again, or NULL: a new one */
  compute_job *jobs;
  lq_compute_report *report;
  char *err;
  size_t errlen;
} compute_ctx;

/* The leads' id column and the column each lead filter (noise: leads) tests. */
static int find_lead_columns(compute_ctx *x, const char *id_column) {
  const lq_feature_set *fs = x->fs;
  int ci = lq_table_find(x->leads, id_column), k;
  if (ci < 0) return fail(x->err, x->errlen, "leads have no column '%s' to join events on", id_column);
  x->idc = x->leads->cols[ci];
  x->lead_cols = (int *)scratch_get(&x->sc, (size_t)(fs->nlead_filters + 1) * sizeof(int));
  if (x->lead_cols == NULL) return LQ_FS_NOMEM;
  for (k = 0; k < fs->nlead_filters; k++) {
    const char *attr = fs->arena + fs->filters[fs->lead_filters[k]].attr;
    x->lead_cols[k] = lq_table_find(x->leads, attr);
    if (x->lead_cols[k] < 0) {
      snprintf(x->err, x->errlen, "leads have no column '%s' (noise: leads)", attr);
      return -1;
    }
  }
  return 0;
}

/* The events' lead_id, type, at and (optional) value columns, and each attribute a filter tests,
** with the types the pass reads them as. */
static int find_columns(compute_ctx *x) {
  const lq_feature_set *fs = x->fs;
  int li, ti, ai, vi, k;
  li = lq_table_find(x->events, "lead_id");
  ti = lq_table_find(x->events, "type");
  ai = lq_table_find(x->events, "at");
  vi = lq_table_find(x->events, "value");
  if (li < 0) return fail(x->err, x->errlen, "events have no column '%s'", "lead_id");
  if (ti < 0) return fail(x->err, x->errlen, "events have no column '%s'", "type");
  if (ai < 0) return fail(x->err, x->errlen, "events have no column '%s'", "at");
  x->lc = x->events->cols[li];
  x->tc = x->events->cols[ti];
  x->ac = x->events->cols[ai];
  if (x->lc->type != LQ_CATEGORY) return fail(x->err, x->errlen, "events column '%s' must be a category", "lead_id");
  if (x->tc->type != LQ_CATEGORY) return fail(x->err, x->errlen, "events column '%s' must be a category", "type");
  if (x->ac->type != LQ_TIME && x->ac->type != LQ_NUMBER)
    return fail(x->err, x->errlen, "events column '%s' must be a time", "at");
  if (vi >= 0) {
    x->vc = x->events->cols[vi];
    if (x->vc->type != LQ_NUMBER && x->vc->type != LQ_TIME)
      return fail(x->err, x->errlen, "events column '%s' must be a number", "value");
  }
  for (k = 0; k < fs->nfilters; k++) {
    const lq_filter *fl = &fs->filters[k];
    int c;
    if (fl->bit < 0) continue;
    c = lq_table_find(x->events, fs->arena + fl->attr);
    if (c < 0) return fail(x->err, x->errlen, "events have no column '%s'", fs->arena + fl->attr);
    x->fcols[fl->bit] = x->events->cols[c];
    if (x->events->cols[c]->type != LQ_CATEGORY && x->events->cols[c]->type != LQ_TEXT)
      return fail(x->err, x->errlen, "events column '%s' must be a category or text to filter on", fs->arena + fl->attr);
  }
  return 0;
}

/* Lead id -> row, once per distinct events lead_id: a merge join when both sides come sorted (exports
** usually do), else each lead's id probed in the events' own dictionary (no table to build; a code
** already taken means two leads share an id that has events, and the first lead keeps them). */
static int join_leads(compute_ctx *x) {
  const lq_column *lc = x->lc;
  int k;
  size_t i;
  x->code_row = (int32_t *)scratch_get(&x->sc, (size_t)lc->dict.count * sizeof(int32_t));
  if (x->code_row == NULL) return LQ_FS_NOMEM;
  if (merge_join(x->idc, x->nleads, &lc->dict, x->code_row, x->nthreads)) {
    x->report->merge_joined = 1;
    return 0;
  }
  /* a big dictionary read in place from a snapshot has no hash index until it is first searched */
  if (lq_dict_index((lq_dict *)&lc->dict, (lq_allocator *)&x->events->alloc) != 0) return LQ_FS_NOMEM;
  for (k = 0; k < lc->dict.count; k++) x->code_row[k] = -1;
  for (i = 0; i < x->nleads; i++) {
    char tmp2[64];
    const char *s;
    size_t len;
    int32_t code;
    if (!lq_fs_column_string(x->idc, i, tmp2, sizeof tmp2, &s, &len)) continue;
    code = lq_dict_find(&lc->dict, s, len);
    if (code < 0) continue;
    if (x->code_row[code] < 0) x->code_row[code] = (int32_t)i;
    else x->report->duplicate_ids += 1;
  }
  return 0;
}

/* Event type -> type index (-1 when no feature or noise rule looks at it), and each filter's string
** test once per distinct value of its column; then what the pick and the folds read. */
static int map_values(compute_ctx *x) {
  const lq_feature_set *fs = x->fs;
  const lq_column *tc = x->tc;
  event_source *src = &x->src;
  int k;
  x->type_map = (int32_t *)scratch_get(&x->sc, (size_t)tc->dict.count * sizeof(int32_t));
  if (x->type_map == NULL) return LQ_FS_NOMEM;
  for (k = 0; k < tc->dict.count; k++) {
    size_t len;
    const char *s = lq_dict_string(&tc->dict, k, &len);
    int32_t t = lq_fs_type_index(fs, s, len);
    x->type_map[k] = (fs->type_off[t + 1] > fs->type_off[t] || fs->type_flags[t]) ? t : -1;
  }
  memset(src, 0, sizeof *src);
  src->fs = fs;
  src->types = tc;
  src->at = x->ac;
  src->value = x->vc;
  src->type_map = x->type_map;
  src->type_codes = tc->codes;
  src->at_num = x->ac->numbers;
  src->value_num = x->vc ? x->vc->numbers : NULL;
  src->type_filtered = fs->type_filtered;
  for (k = 0; k < fs->nevent_filters; k++) {
    const lq_column *c = x->fcols[k];
    uint8_t *match;
    int f, code;
    for (f = 0; f < fs->nfilters; f++)
      if (fs->filters[f].bit == k) break;
    src->fcols[k] = c;
    src->ffilter[k] = f;
    if (c->type != LQ_CATEGORY) continue;
    match = (uint8_t *)scratch_get(&x->sc, (size_t)c->dict.count);
    if (match == NULL) return LQ_FS_NOMEM;
    src->fmatch[k] = match;
    for (code = 0; code < c->dict.count; code++) {
      size_t len;
      const char *s = lq_dict_string(&c->dict, code, &len);
      match[code] = (uint8_t)lq_fs_filter_match(fs, f, s, len);
    }
  }
  x->pick.leads_of = x->lc;
  x->pick.types = tc;
  x->pick.at = x->ac;
  x->pick.code_row = x->code_row;
  x->pick.type_map = x->type_map;
  x->pick.as_of = x->as_of;
  return 0;
}

/* An earlier result of this set, for as many leads, filled again in place: every row of every column
** is written again (a lead's row when it is folded, the others by fill_quiet_leads), so nothing of the
** last pass shows through, and no new memory is asked for. Big results live in memory the C library
** gives back to the kernel on free, which zeroes it again on the next first touch: at 5M leads that
** zeroing cost as much as the fold. */
static int reuse_result(compute_ctx *x) {
  const lq_feature_set *fs = x->fs;
  const lq_table *t = x->into;
  int k;
  if (t->nrows != x->nleads || t->ncols != fs->nfeats) {
    snprintf(x->err, x->errlen, "into holds %zu rows and %d columns, not this set's %d features of %zu leads",
             t->nrows, t->ncols, fs->nfeats, x->nleads);
    return -1;
  }
  for (k = 0; k < fs->nfeats; k++) {
    const lq_column *c = t->cols[k];
    lq_feature_kind kind = fs->feats[k].kind;
    lq_type want = (kind == LQ_FEAT_FIRST || kind == LQ_FEAT_LAST) ? LQ_TIME : LQ_NUMBER;
    if (strcmp(c->name, lq_fs_feature_name(fs, k)) != 0 || c->type != want || c->mapped)
      return fail(x->err, x->errlen, "into is not a result of this feature set (column '%s')", c->name);
  }
  x->res = x->into;
  return 0;
}

/* The result: a column per feature, every row there; a lead's row is written once its events are
** folded (number columns only, so no cell is left unwritten). */
static int make_result(compute_ctx *x) {
  const lq_feature_set *fs = x->fs;
  int k;
  if (x->into != NULL) return reuse_result(x);
  x->res = lq_table_new(fs->alloc);
  if (x->res == NULL || lq_table_reserve(x->res, x->nleads) != 0) return LQ_FS_NOMEM;
  for (k = 0; k < fs->nfeats; k++) {
    lq_feature_kind kind = fs->feats[k].kind;
    int rc = lq_table_add_column(x->res, lq_fs_feature_name(fs, k),
                                 (kind == LQ_FEAT_FIRST || kind == LQ_FEAT_LAST) ? LQ_TIME : LQ_NUMBER);
    if (rc == -2) return fail(x->err, x->errlen, "duplicate feature name '%s'", lq_fs_feature_name(fs, k));
    if (rc < 0) return LQ_FS_NOMEM;
  }
  x->res->nrows = x->nleads;
  for (k = 0; k < fs->nfeats; k++) lq_advise_huge_pages(x->res->cols[k]->numbers, x->nleads * sizeof(double));
  return 0;
}

/* The jobs: the events cut into a range each (a lead's run kept whole), their buffers made. One
** pass folds each run as it ends, as long as the events come grouped by lead. */
static int make_jobs(compute_ctx *x) {
  const lq_feature_set *fs = x->fs;
  int jt;
  x->jobs = (compute_job *)job_alloc(x->sc.a, (size_t)x->nthreads, sizeof(compute_job));
  if (x->jobs == NULL) return LQ_FS_NOMEM;
  memset(x->jobs, 0, (size_t)x->nthreads * sizeof(compute_job));
  if (x->nev > 0) cut_events(x->jobs, x->nthreads, x->pick.made_rows ? x->pick.made_rows : x->lc->codes, x->nev);
  for (jt = 0; jt < x->nthreads; jt++) {
    compute_job *j = &x->jobs[jt];
    size_t span = j->ev_end - j->ev_begin;
    j->fs = fs;
    j->pick = &x->pick;
    j->src = &x->src;
    j->leads = x->leads;
    j->lead_cols = x->lead_cols;
    j->res = x->res;
    j->as_of = x->as_of;
    j->nev = x->nev;
    j->grouped = 1;
    j->unknown_cap = x->max_unknown < span ? x->max_unknown : span;
    j->seen_words = (x->nleads + 63) / 64;
    j->st.bulk = 1;
    j->st.today = day_of(x->as_of);
    j->unknown_rows = (size_t *)job_alloc(x->sc.a, j->unknown_cap, sizeof(size_t));
    j->seen = jt == 0 ? (uint64_t *)job_alloc(x->sc.a, j->seen_words, sizeof(uint64_t)) : x->jobs[0].seen;
    j->st.v = (double *)job_alloc(x->sc.a, (size_t)(BULK_SLOTS * fs->nfeats + 1), sizeof(double));
    j->vals = (double *)job_alloc(x->sc.a, (size_t)(fs->nfeats + 1), sizeof(double));
    if (j->unknown_rows == NULL || j->seen == NULL || j->st.v == NULL || j->vals == NULL) return LQ_FS_NOMEM;
    if (jt == 0) memset(j->seen, 0, j->seen_words * sizeof(uint64_t));
    j->fold_too = 1;
    j->shared = x->nthreads > 1;
    if (j->shared) {
      j->run_cap = LQ_FS_RUN_START;
      j->run = (lq_event *)job_alloc(x->sc.a, j->run_cap, sizeof(lq_event));
      j->tmp = (lq_event *)job_alloc(x->sc.a, j->run_cap, sizeof(lq_event));
      if (j->run == NULL || j->tmp == NULL) return LQ_FS_NOMEM;
    }
  }
  return 0;
}

/* A lead had more events than a thread's buffer: fold the runs again with room for the longest. */
static int refold_long_runs(compute_ctx *x) {
  int jt;
  for (jt = 0; jt < x->nthreads; jt++) {
    compute_job *j = &x->jobs[jt];
    lq_mem_free(x->sc.a, j->run, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));
    lq_mem_free(x->sc.a, j->tmp, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));
    j->run = j->tmp = NULL;
    memset(j->counters, 0, sizeof j->counters);
    j->run_cap = j->max_run;
    j->run = (lq_event *)job_alloc(x->sc.a, j->run_cap, sizeof(lq_event));
    j->tmp = (lq_event *)job_alloc(x->sc.a, j->run_cap, sizeof(lq_event));
    if (j->run == NULL || j->tmp == NULL) return LQ_FS_NOMEM;
  }
  run_step(x->jobs, x->nthreads, step_fold_runs);
  return 0;
}

/* A lead's events came in several runs: each job takes a range of leads, counts its events, scatters
** them to its leads' slices (through ranges of leads when there are many) and folds each slice. */
static int scatter_and_fold(compute_ctx *x) {
  size_t nleads = x->nleads;
  int32_t *row_of = (int32_t *)scratch_get(&x->sc, x->nev * sizeof(int32_t));
  size_t *fill = (size_t *)scratch_get(&x->sc, (nleads + 1) * sizeof(size_t));
  int jt, n = x->nthreads;
  if (row_of == NULL || fill == NULL) return LQ_FS_NOMEM;
  for (jt = 0; jt < n; jt++) {
    x->jobs[jt].row_of = row_of;
    memset(x->jobs[jt].counters, 0, sizeof x->jobs[jt].counters);   /* of the runs folded before the repeat */
  }
  run_step(x->jobs, n, step_rows);
  for (jt = 0; jt < n; jt++) {
    x->jobs[jt].fill = fill;
    x->jobs[jt].lead_begin = nleads / (size_t)n * (size_t)jt;
    x->jobs[jt].lead_end = jt == n - 1 ? nleads : nleads / (size_t)n * (size_t)(jt + 1);
  }
  run_step(x->jobs, n, step_count);
  for (jt = 0; jt < n; jt++) {
    compute_job *j = &x->jobs[jt];
    size_t nl = j->lead_end - j->lead_begin;
    lq_mem_free(x->sc.a, j->run, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));   /* of a fold given up */
    lq_mem_free(x->sc.a, j->tmp, (j->run_cap ? j->run_cap : 1) * sizeof(lq_event));
    j->run = NULL;
    j->run_cap = j->max_slice;
    j->tmp = (lq_event *)job_alloc(x->sc.a, j->run_cap, sizeof(lq_event));
    j->recs = (lq_event *)job_alloc(x->sc.a, j->nrecs, sizeof(lq_event));
    if (j->tmp == NULL || j->recs == NULL) return LQ_FS_NOMEM;
    if (nl > LQ_SCATTER_DIRECT) {
      int shift = 0;
      while ((nl >> shift) > LQ_SCATTER_RANGES) shift++;
      j->shift = shift;
      j->nb = ((nl - 1) >> shift) + 1;
      j->part = (lq_event *)job_alloc(x->sc.a, j->nrecs, sizeof(lq_event));
      j->part_row = (int32_t *)job_alloc(x->sc.a, j->nrecs, sizeof(int32_t));
      j->bfill = (size_t *)job_alloc(x->sc.a, j->nb, sizeof(size_t));
      if (j->part == NULL || j->part_row == NULL || j->bfill == NULL) return LQ_FS_NOMEM;
    }
  }
  run_step(x->jobs, n, step_scatter_fold);
  return 0;
}

/* The pick (and fold, when grouped) on the jobs, then whatever the events' order asks for more:
** nothing when no lead was met twice (by one job or two), a second fold when a run outgrew its
** buffer, or the scatter by lead. */
static int fold_events(compute_ctx *x) {
  int grouped = 1, overflow = 0, jt;
  run_step(x->jobs, x->nthreads, step_pick);
  for (jt = 0; jt < x->nthreads; jt++) {
    if (x->jobs[jt].oom) return LQ_FS_NOMEM;
    grouped = grouped && x->jobs[jt].grouped;
    overflow = overflow || x->jobs[jt].overflow;
  }
  if (grouped && !overflow) return 0;
  if (grouped) return refold_long_runs(x);
  return scatter_and_fold(x);
}

/* The report: the jobs' counts, and the first unknown rows in file order (the jobs' ranges are). */
static int sum_report(compute_ctx *x) {
  lq_compute_report *report = x->report;
  size_t nunknown = 0;
  int jt;
  for (jt = 0; jt < x->nthreads; jt++) {
    compute_job *j = &x->jobs[jt];
    int c;
    report->used += j->used;
    report->after_as_of += j->after_as_of;
    report->no_time += j->no_time;
    report->ignored += j->ignored;
    report->unknown += j->unknown;
    nunknown += j->nunknown;
    for (c = 0; c < LQ_N_COUNTERS; c++) report->counters[c] += j->counters[c];
  }
  if (nunknown > x->max_unknown) nunknown = x->max_unknown;
  if (nunknown > 0) {
    size_t n = 0;
    report->unknown_rows = (size_t *)lq_mem_resize(x->sc.a, NULL, 0, nunknown * sizeof(size_t));
    if (report->unknown_rows == NULL) return LQ_FS_NOMEM;
    report->unknown_cap = nunknown;
    for (jt = 0; jt < x->nthreads && n < nunknown; jt++) {
      size_t take = x->jobs[jt].nunknown < nunknown - n ? x->jobs[jt].nunknown : nunknown - n;
      memcpy(report->unknown_rows + n, x->jobs[jt].unknown_rows, take * sizeof(size_t));
      n += take;
    }
    report->nunknown_rows = n;
  }
  report->counters[LQ_N_OBSERVED] = report->used;
  return 0;
}

/* The leads no event names: all alike (even a noise lead's), so one empty state is folded and its
** values copied to their rows column by column. */
static void fill_quiet_leads(compute_ctx *x) {
  const uint64_t *seen = x->jobs[0].seen;
  compute_job *j = &x->jobs[0];
  size_t i, nleads = x->nleads;
  int c;
  for (i = 0; i < nleads && (seen[i >> 6] >> (i & 63) & 1); i++) {}
  if (i == nleads) return;
  fold_lead(j, (int32_t)i, NULL, 0);   /* no events: no counts */
  for (c = 0; c < x->fs->nfeats; c++) {
    double v = j->vals[c], *col = x->res->cols[c]->numbers;
    size_t w;
    for (w = i >> 6; w < (nleads + 63) >> 6; w++) {
      uint64_t empty = ~seen[w];   /* bits past nleads are 0 in seen: cut below */
      while (empty) {
        size_t r = (w << 6) + (size_t)__builtin_ctzll(empty);
        if (r >= nleads) break;
        col[r] = v;
        empty &= empty - 1;
      }
    }
  }
}

/* What both entries share: the context, then the steps from the result on. */
static void compute_init(compute_ctx *x, const lq_feature_set *fs, const lq_table *leads, size_t nev, double as_of,
                         size_t max_unknown, int nthreads, lq_compute_report *report, char *err, size_t errlen) {
  memset(x, 0, sizeof *x);
  x->fs = fs;
  x->leads = leads;
  x->nleads = leads->nrows;
  x->nev = nev;
  x->max_unknown = max_unknown;
  x->as_of = as_of;
  x->sc.a = &fs->alloc;
  x->report = report;
  x->err = err;
  x->errlen = errlen;
  if (nthreads > LQ_FS_MAX_THREADS) nthreads = LQ_FS_MAX_THREADS;
  if ((size_t)nthreads > nev / LQ_FS_THREAD_EVENTS) nthreads = (int)(nev / LQ_FS_THREAD_EVENTS);
  x->nthreads = nthreads < 1 ? 1 : nthreads;
}

static int compute_finish(compute_ctx *x, int rc, lq_table **out) {
  const lq_feature_set *fs = x->fs;
  if (rc == 0) rc = make_result(x);
  if (rc == 0) rc = make_jobs(x);
  if (rc == 0) rc = fold_events(x);
  if (rc == 0) rc = sum_report(x);
  if (rc == 0) fill_quiet_leads(x);
  jobs_free(fs, x->jobs, x->nthreads);
  scratch_free(&x->sc);
  if (rc == 0) {
    *out = x->res;
    return 0;
  }
  if (x->res && x->res != x->into) lq_table_free(x->res);
  lq_compute_report_free(fs, x->report);
  if (rc == LQ_FS_NOMEM) return fail(x->err, x->errlen, "%s", "not enough memory for the feature computation");
  return -1;
}

int lq_fs_compute(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                  const lq_table *events, double as_of, size_t max_unknown, int nthreads,
                  lq_table **out, lq_compute_report *report, char *err, size_t errlen) {
  return lq_fs_compute_into(fs, leads, id_column, events, as_of, max_unknown, nthreads, NULL, out, report, err,
                            errlen);
}

int lq_fs_compute_into(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                       const lq_table *events, double as_of, size_t max_unknown, int nthreads, lq_table *into,
                       lq_table **out, lq_compute_report *report, char *err, size_t errlen) {
  compute_ctx x;
  int rc;
  memset(report, 0, sizeof *report);
  *out = NULL;
  compute_init(&x, fs, leads, events->nrows, as_of, max_unknown, nthreads, report, err, errlen);
  x.events = events;
  x.into = into;
  report->events = (double)x.nev;
  rc = find_lead_columns(&x, id_column);
  if (rc == 0) rc = find_columns(&x);
  if (rc == 0) rc = join_leads(&x);
  if (rc == 0) rc = map_values(&x);
  return compute_finish(&x, rc, out);
}

int lq_fs_compute_made(const lq_feature_set *fs, const lq_table *leads, const char *id_column,
                       const int32_t *rows, const lq_event *events, size_t n, double as_of, int nthreads,
                       lq_table **out, lq_compute_report *report, char *err, size_t errlen) {
  compute_ctx x;
  int rc;
  *out = NULL;
  compute_init(&x, fs, leads, n, as_of, 0, nthreads, report, err, errlen);
  x.pick.made_rows = rows;
  x.pick.as_of = as_of;
  x.src.fs = fs;
  x.src.made = events;
  rc = find_lead_columns(&x, id_column);
  return compute_finish(&x, rc, out);
}

/* ---- folding from outside: the events stream ----
** The stream folds each lead's run of events as it reads them, on its own threads: nfolders scratch
** states (one a thread), the result, and the shared bitmap of leads met, made here before any thread
** starts; lq_fs_fold_end sums the folders' noise counters and fills the leads no event names. */
struct lq_fold_pass {
  compute_ctx x;
};

int lq_fs_fold_begin(const lq_feature_set *fs, const lq_table *leads, const char *id_column, double as_of,
                     int nfolders, lq_fold_pass **out, char *err, size_t errlen) {
  lq_fold_pass *p;
  int rc;
  *out = NULL;
  p = (lq_fold_pass *)lq_mem_resize(&fs->alloc, NULL, 0, sizeof *p);
  if (p == NULL) return fail(err, errlen, "%s", "not enough memory for the feature computation");
  compute_init(&p->x, fs, leads, 0, as_of, 0, 1, NULL, err, errlen);
  /* no events of a table, so no job has a range of them: a folder a thread, however many */
  p->x.nthreads = nfolders < 1 ? 1 : nfolders > LQ_FS_MAX_THREADS ? LQ_FS_MAX_THREADS : nfolders;
  rc = find_lead_columns(&p->x, id_column);
  if (rc == 0) rc = make_result(&p->x);
  if (rc == 0) rc = make_jobs(&p->x);
  if (rc != 0) {
    lq_fs_fold_end(p, NULL, NULL);
    if (rc == LQ_FS_NOMEM) return fail(err, errlen, "%s", "not enough memory for the feature computation");
    return -1;
  }
  *out = p;
  return 0;
}

int lq_fs_fold(lq_fold_pass *p, int folder, int32_t row, lq_event *ev, size_t n, lq_event *tmp) {
  compute_job *j = &p->x.jobs[folder];
  uint64_t bit = (uint64_t)1 << (row & 63);
  if (__atomic_fetch_or(&j->seen[row >> 6], bit, __ATOMIC_RELAXED) & bit) return 1;
  fold_lead_with(j, row, ev, n, tmp);
  return 0;
}

int lq_fs_fold_end(lq_fold_pass *p, lq_compute_report *report, lq_table **out) {
  const lq_feature_set *fs = p->x.fs;
  int rc = 0;
  if (out != NULL) {
    p->x.report = report;
    rc = sum_report(&p->x);
    if (rc == 0) {
      fill_quiet_leads(&p->x);
      *out = p->x.res;
      p->x.res = NULL;
    }
  }
  jobs_free(fs, p->x.jobs, p->x.nthreads);
  scratch_free(&p->x.sc);
  if (p->x.res) lq_table_free(p->x.res);
  lq_mem_free(&fs->alloc, p, sizeof *p);
  return rc;
}
