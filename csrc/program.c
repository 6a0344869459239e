/* The scoring program's executor: masks over batches, points into groups, clamps, status, grade
** and reason, all branch-free inner loops over one column at a time. See program.h. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(LQ_NO_VECTORIZE)
/* The row loops below are written for the vectorizer, which -O2 runs only in its cheapest mode. */
#pragma GCC optimize("O3")
#endif

/* Kernels are forced inline so each clone of a batch runner (below) gets them in its own ISA. */
#if defined(__GNUC__)
#define LQ_KERNEL static inline __attribute__((always_inline))
#else
#define LQ_KERNEL static inline
#endif

/* The batch runners are built twice on x86-64 with GCC: AVX2 and baseline, picked at load time. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(LQ_NO_CLONES)
#define LQ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LQ_CLONES
#endif
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include "program.h"

/* ---- programs ---- */

static int set_int_mode(lq_program *p);
static int set_fusion(lq_program *p);
static int set_row_ops(lq_program *p);

lq_program *lq_program_new(lq_allocator alloc) {
  lq_program *p = (lq_program *)alloc.fn(alloc.ud, NULL, 0, sizeof(lq_program));
  if (p == NULL) return NULL;
  memset(p, 0, sizeof *p);
  p->alloc = alloc;
  return p;
}

static void matcher_free(lq_matcher *m, lq_allocator *a) {
  int i;
  if (m->needles != NULL) {
    for (i = 0; i < m->count; i++) lq_mem_free(a, m->needles[i], m->lengths[i] + 1);
    lq_mem_free(a, m->needles, sizeof(char *) * (size_t)m->count);
  }
  lq_mem_free(a, m->lengths, sizeof(size_t) * (size_t)m->count);
  lq_dict_free(&m->set, a);
  m->needles = NULL;
  m->lengths = NULL;
  m->count = 0;
}

void lq_program_free(lq_program *p) {
  lq_allocator a;
  int i;
  if (p == NULL) return;
  a = p->alloc;
  if (p->matchers != NULL) {
    for (i = 0; i < p->nmatchers; i++) matcher_free(&p->matchers[i], &a);
  }
  if (p->groups != NULL) {
    for (i = 0; i < p->ngroups; i++) lq_mem_free(&a, p->groups[i].rules, sizeof(int) * (size_t)p->groups[i].nrules);
  }
  for (i = 0; i < 2; i++) {
    lq_mem_free(&a, p->grades[i].levels, sizeof(double) * (size_t)p->grades[i].nlevels);
    lq_mem_free(&a, p->ilevels[i], sizeof(int32_t) * (size_t)p->grades[i].nlevels);
  }
  lq_mem_free(&a, p->ipoints, sizeof(int32_t) * (size_t)p->nrules);
  lq_mem_free(&a, p->ifloor, sizeof(int32_t) * (size_t)p->ngroups);
  lq_mem_free(&a, p->icap, sizeof(int32_t) * (size_t)p->ngroups);
  lq_mem_free(&a, p->ithresholds, sizeof(int32_t) * (size_t)p->nthresholds);
  lq_mem_free(&a, p->fused_field, sizeof(int) * (size_t)p->nleaves);
  lq_mem_free(&a, p->leaf_fused, sizeof(int) * (size_t)p->nleaves);
  lq_mem_free(&a, p->leaf_bit, sizeof(int) * (size_t)p->nleaves);
  lq_mem_free(&a, p->row_ops, sizeof(lq_op) * (size_t)p->nops);
  lq_mem_free(&a, p->leaves, sizeof(lq_leaf) * (size_t)p->nleaves);
  lq_mem_free(&a, p->matchers, sizeof(lq_matcher) * (size_t)p->nmatchers);
  lq_mem_free(&a, p->ops, sizeof(lq_op) * (size_t)p->nops);
  lq_mem_free(&a, p->rules, sizeof(lq_rule) * (size_t)p->nrules);
  lq_mem_free(&a, p->groups, sizeof(lq_group) * (size_t)p->ngroups);
  lq_mem_free(&a, p->disq_regs, sizeof(int) * (size_t)p->ndisq);
  lq_mem_free(&a, p->thresholds, sizeof(double) * (size_t)p->nthresholds);
  a.fn(a.ud, p, sizeof(lq_program), 0);
}

int lq_program_size(lq_program *p, int nfields, int nleaves, int nmatchers, int nops, int nregs,
                    int nrules, int ngroups, int ndisq, int nthresholds) {
  lq_allocator *a = &p->alloc;
  int i;
  if (p->leaves != NULL || p->ops != NULL) return -1;   /* sized once */
  if (nfields < 0 || nleaves < 0 || nmatchers < 0 || nops < 0 || nregs < 0 || nrules < 0 ||
      ngroups < 0 || ndisq < 0 || nthresholds < 0) return -1;
  /* Counts are stored as they are allocated, so a failure half-way frees exactly what exists. */
  if ((p->leaves = (lq_leaf *)lq_mem_zeroed(a, (size_t)nleaves, sizeof(lq_leaf))) == NULL) return -1;
  p->nleaves = nleaves;
  if ((p->matchers = (lq_matcher *)lq_mem_zeroed(a, (size_t)nmatchers, sizeof(lq_matcher))) == NULL) return -1;
  p->nmatchers = nmatchers;
  for (i = 0; i < nmatchers; i++) lq_dict_init(&p->matchers[i].set);
  if ((p->ops = (lq_op *)lq_mem_zeroed(a, (size_t)nops, sizeof(lq_op))) == NULL) return -1;
  p->nops = nops;
  if ((p->rules = (lq_rule *)lq_mem_zeroed(a, (size_t)nrules, sizeof(lq_rule))) == NULL) return -1;
  p->nrules = nrules;
  if ((p->groups = (lq_group *)lq_mem_zeroed(a, (size_t)ngroups, sizeof(lq_group))) == NULL) return -1;
  p->ngroups = ngroups;
  if ((p->disq_regs = (int *)lq_mem_zeroed(a, (size_t)ndisq, sizeof(int))) == NULL) return -1;
  p->ndisq = ndisq;
  if ((p->thresholds = (double *)lq_mem_zeroed(a, (size_t)nthresholds, sizeof(double))) == NULL) return -1;
  p->nthresholds = nthresholds;
  p->nfields = nfields;
  p->nregs = nregs;
  return 0;
}

static unsigned char lower_byte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int lq_program_set_matcher(lq_program *p, int index, lq_match_mode mode, int count,
                           const char *const *needles, const size_t *lengths) {
  lq_allocator *a = &p->alloc;
  lq_matcher *m;
  int i;
  size_t j;
  if (index < 0 || index >= p->nmatchers || count < 0) return -1;
  m = &p->matchers[index];
  matcher_free(m, a);
  lq_dict_init(&m->set);
  m->mode = mode;
  m->max_length = 0;
  if ((m->lengths = (size_t *)lq_mem_zeroed(a, (size_t)count, sizeof(size_t))) == NULL) return -1;
  if ((m->needles = (char **)lq_mem_zeroed(a, (size_t)count, sizeof(char *))) == NULL) return -1;
  m->count = count;
  for (i = 0; i < count; i++) {
    char *copy = (char *)lq_mem_new(a, lengths[i] + 1);
    if (copy == NULL) return -1;
    for (j = 0; j < lengths[i]; j++) copy[j] = (char)lower_byte((unsigned char)needles[i][j]);
    copy[lengths[i]] = '\0';
    m->needles[i] = copy;
    m->lengths[i] = lengths[i];
    if (lengths[i] > m->max_length) m->max_length = lengths[i];
    if (mode == LQ_MATCH_EQUALS && lq_dict_intern(&m->set, a, copy, lengths[i]) < 0) return -1;
  }
  return 0;
}

int lq_program_set_group(lq_program *p, int g, int has_floor, double floor, int has_cap, double cap) {
  if (g < 0 || g >= p->ngroups) return -1;
  p->groups[g].has_floor = has_floor != 0;
  p->groups[g].floor = floor;
  p->groups[g].has_cap = has_cap != 0;
  p->groups[g].cap = cap;
  return 0;
}

int lq_program_set_grade(lq_program *p, int which, int group, int nlevels, const double *levels) {
  lq_grade *gr;
  if (which < 0 || which > 1 || which > p->ngrades || nlevels < 0) return -1;
  gr = &p->grades[which];
  lq_mem_free(&p->alloc, gr->levels, sizeof(double) * (size_t)gr->nlevels);
  gr->nlevels = 0;
  if ((gr->levels = (double *)lq_mem_zeroed(&p->alloc, (size_t)nlevels, sizeof(double))) == NULL) return -1;
  gr->nlevels = nlevels;
  gr->group = group;
  if (nlevels > 0) memcpy(gr->levels, levels, sizeof(double) * (size_t)nlevels);
  if (which == p->ngrades) p->ngrades++;
  return 0;
}

int lq_program_finish(lq_program *p) {
  int g, r, i;
  for (i = 0; i < p->nleaves; i++) {
    const lq_leaf *lf = &p->leaves[i];
    if (lf->field < 0 || lf->field >= p->nfields) return -1;
    if (lf->kind == LQ_LEAF_STRING && (lf->matcher < 0 || lf->matcher >= p->nmatchers)) return -1;
  }
  for (i = 0; i < p->nops; i++) {
    const lq_op *op = &p->ops[i];
    if (op->dst < 0 || op->dst >= p->nregs) return -1;
    if (op->code == LQ_OP_LEAF && (op->a < 0 || op->a >= p->nleaves)) return -1;
    if ((op->code == LQ_OP_AND || op->code == LQ_OP_OR || op->code == LQ_OP_NOT) &&
        (op->a < 0 || op->a >= p->nregs)) return -1;
    if ((op->code == LQ_OP_AND || op->code == LQ_OP_OR) && (op->b < 0 || op->b >= p->nregs)) return -1;
    if (op->code < LQ_OP_LEAF || op->code > LQ_OP_CONST) return -1;
  }
  for (r = 0; r < p->nrules; r++) {
    const lq_rule *ru = &p->rules[r];
    if (ru->reg < 0 || ru->reg >= p->nregs || ru->group < 0 || ru->group >= p->ngroups) return -1;
    if (ru->points_field >= p->nfields) return -1;
    if (ru->op_begin < 0 || ru->op_end > p->nops || ru->op_begin > ru->op_end) return -1;
  }
  for (i = 0; i < p->ndisq; i++) {
    if (p->disq_regs[i] < 0 || p->disq_regs[i] >= p->nregs) return -1;
  }
  for (i = 0; i < p->ngrades; i++) {
    if (p->grades[i].group < 0 || p->grades[i].group >= p->ngroups) return -1;
  }
  for (g = 0; g < p->ngroups; g++) {
    lq_group *G = &p->groups[g];
    int n = 0;
    lq_mem_free(&p->alloc, G->rules, sizeof(int) * (size_t)G->nrules);
    G->rules = NULL;
    G->nrules = 0;
    for (r = 0; r < p->nrules; r++) n += p->rules[r].group == g;
    if ((G->rules = (int *)lq_mem_zeroed(&p->alloc, (size_t)n, sizeof(int))) == NULL) return -1;
    G->nrules = n;
    n = 0;
    for (r = 0; r < p->nrules; r++) {
      if (p->rules[r].group == g) G->rules[n++] = r;
    }
  }
  return set_fusion(p) != 0 || set_row_ops(p) != 0 ? -1 : set_int_mode(p);
}

/* The smallest whole number x with x >= t, clamped to int32 (totals never reach the ends). */
static int32_t whole_at_least(double t) {
  double c = ceil(t);
  if (c < -2147483647.0) return -2147483647;
  if (c > 2147483647.0) return 2147483647;
  return (int32_t)c;
}

static int32_t whole_bound(double t, int up) {
  double c = up ? floor(t) : ceil(t);   /* a cap of 10.5 lets a whole sum reach 10 */
  if (c < -2147483647.0) return -2147483647;
  if (c > 2147483647.0) return 2147483647;
  return (int32_t)c;
}

/* Integer mode when every rule gives constant whole points of at most 32767 (so a reason key
** points * 65536 + rule fits in int32) and caps and floors are whole numbers. */
static int set_int_mode(lq_program *p) {
  lq_allocator *a = &p->alloc;
  int r, g, k;
  double worst = 0;
  p->int_mode = 0;
  if (p->nrules >= 65536) return 0;
  for (r = 0; r < p->nrules; r++) {
    double v = p->rules[r].points;
    if (p->rules[r].points_field >= 0 || v != floor(v) || fabs(v) > 32767) return 0;
    worst += fabs(v);
  }
  if (worst > 1e9) return 0;
  for (g = 0; g < p->ngroups; g++) {
    const lq_group *G = &p->groups[g];
    if ((G->has_floor && G->floor != floor(G->floor)) || (G->has_cap && G->cap != floor(G->cap))) return 0;
  }
  if ((p->ipoints = (int32_t *)lq_mem_zeroed(a, (size_t)p->nrules, sizeof(int32_t))) == NULL) return -1;
  if ((p->ifloor = (int32_t *)lq_mem_zeroed(a, (size_t)p->ngroups, sizeof(int32_t))) == NULL) return -1;
  if ((p->icap = (int32_t *)lq_mem_zeroed(a, (size_t)p->ngroups, sizeof(int32_t))) == NULL) return -1;
  if ((p->ithresholds = (int32_t *)lq_mem_zeroed(a, (size_t)p->nthresholds, sizeof(int32_t))) == NULL) return -1;
  for (k = 0; k < p->ngrades; k++) {
    if ((p->ilevels[k] = (int32_t *)lq_mem_zeroed(a, (size_t)p->grades[k].nlevels, sizeof(int32_t))) == NULL) return -1;
    for (r = 0; r < p->grades[k].nlevels; r++) p->ilevels[k][r] = whole_at_least(p->grades[k].levels[r]);
  }
  for (r = 0; r < p->nrules; r++) p->ipoints[r] = (int32_t)p->rules[r].points;
  for (g = 0; g < p->ngroups; g++) {
    p->ifloor[g] = p->groups[g].has_floor ? whole_bound(p->groups[g].floor, 0) : -2147483647;
    p->icap[g] = p->groups[g].has_cap ? whole_bound(p->groups[g].cap, 1) : 2147483647;
  }
  for (k = 0; k < p->nthresholds; k++) p->ithresholds[k] = whole_at_least(p->thresholds[k]);
  p->int_mode = 1;
  return 0;
}

/* Group the string leaves by field, LQ_FUSE_BITS to a table. */
static int set_fusion(lq_program *p) {
  lq_allocator *a = &p->alloc;
  int i, j;
  size_t n = (size_t)p->nleaves;
  lq_mem_free(a, p->fused_field, sizeof(int) * n);
  lq_mem_free(a, p->leaf_fused, sizeof(int) * n);
  lq_mem_free(a, p->leaf_bit, sizeof(int) * n);
  p->fused_field = p->leaf_fused = p->leaf_bit = NULL;
  p->nfused = 0;
  if ((p->fused_field = (int *)lq_mem_zeroed(a, n, sizeof(int))) == NULL) return -1;
  if ((p->leaf_fused = (int *)lq_mem_zeroed(a, n, sizeof(int))) == NULL) return -1;
  if ((p->leaf_bit = (int *)lq_mem_zeroed(a, n, sizeof(int))) == NULL) return -1;
  for (i = 0; i < p->nleaves; i++) {
    const lq_leaf *lf = &p->leaves[i];
    int table = -1;
    p->leaf_fused[i] = -1;
    if (lf->kind != LQ_LEAF_STRING) continue;
    for (j = 0; j < p->nfused; j++) {   /* the field's last table, if it has room */
      int used = 0, k;
      if (p->fused_field[j] != lf->field) continue;
      for (k = 0; k < i; k++) used += p->leaf_fused[k] == j;
      table = used < LQ_FUSE_BITS ? j : -1;
    }
    if (table < 0) {
      table = p->nfused++;
      p->fused_field[table] = lf->field;
    }
    p->leaf_bit[i] = 0;
    for (j = 0; j < i; j++) p->leaf_bit[i] += p->leaf_fused[j] == table;
    p->leaf_fused[i] = table;
  }
  return 0;
}

static int set_row_ops(lq_program *p) {
  static const int plain[] = { -1, LQ_ROW_AND, LQ_ROW_OR, LQ_ROW_NOT, LQ_ROW_CONST };   /* by lq_op_code */
  int k;
  lq_mem_free(&p->alloc, p->row_ops, sizeof(lq_op) * (size_t)p->nops);
  if ((p->row_ops = (lq_op *)lq_mem_zeroed(&p->alloc, (size_t)p->nops, sizeof(lq_op))) == NULL) return -1;
  for (k = 0; k < p->nops; k++) {
    lq_op op = p->ops[k];
    if (op.code == LQ_OP_LEAF) {
      const lq_leaf *lf = &p->leaves[op.a];
      op.b = lf->field;
      if (lf->kind == LQ_LEAF_RANGE || lf->kind == LQ_LEAF_TIME) op.code = lf->negate ? LQ_ROW_RANGE_NOT : LQ_ROW_RANGE;
      else if (lf->kind == LQ_LEAF_STRING) op.code = LQ_ROW_STRING;
      else op.code = LQ_ROW_LEAF;
    } else {
      op.code = plain[op.code];
    }
    p->row_ops[k] = op;
  }
  return 0;
}

int lq_program_grade_count(const lq_program *p) {
  if (p->ngrades == 0) return 0;
  if (p->ngrades == 1) return p->grades[0].nlevels + 1;
  return (p->grades[0].nlevels + 1) * (p->grades[1].nlevels + 1);
}

/* ---- string matchers: ASCII case-insensitive, needles already lowercased ---- */

static int is_word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static int same_lowered(const char *s, const char *needle, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (lower_byte((unsigned char)s[i]) != (unsigned char)needle[i]) return 0;
  }
  return 1;
}

static int find_needle(const char *s, size_t len, const char *needle, size_t n, int whole_word) {
  size_t pos;
  unsigned char first;
  if (n > len) return 0;
  if (n == 0) return 1;
  first = (unsigned char)needle[0];
  for (pos = 0; pos + n <= len; pos++) {
    if (lower_byte((unsigned char)s[pos]) != first || !same_lowered(s + pos, needle, n)) continue;
    if (!whole_word) return 1;
    if ((pos == 0 || !is_word_byte((unsigned char)s[pos - 1])) &&
        (pos + n == len || !is_word_byte((unsigned char)s[pos + n]))) return 1;
  }
  return 0;
}

#if !defined(LQ_EQUALS_STACK)
#define LQ_EQUALS_STACK 256
#endif

int lq_matcher_test(const lq_matcher *m, const char *s, size_t len, lq_external_fn ext, void *ud, int index) {
  int i;
  switch (m->mode) {
  case LQ_MATCH_EQUALS:
    if (len > m->max_length) return 0;
    if (len <= LQ_EQUALS_STACK) {
      char buf[LQ_EQUALS_STACK];
      size_t j;
      for (j = 0; j < len; j++) buf[j] = (char)lower_byte((unsigned char)s[j]);
      return lq_dict_find(&m->set, buf, len) >= 0;
    }
    for (i = 0; i < m->count; i++) {
      if (m->lengths[i] == len && same_lowered(s, m->needles[i], len)) return 1;
    }
    return 0;
  case LQ_MATCH_CONTAINS:
  case LQ_MATCH_WORD:
    for (i = 0; i < m->count; i++) {
      if (find_needle(s, len, m->needles[i], m->lengths[i], m->mode == LQ_MATCH_WORD)) return 1;
    }
    return 0;
  case LQ_MATCH_STARTS:
    for (i = 0; i < m->count; i++) {
      if (m->lengths[i] <= len && same_lowered(s, m->needles[i], m->lengths[i])) return 1;
    }
    return 0;
  case LQ_MATCH_ENDS:
    for (i = 0; i < m->count; i++) {
      if (m->lengths[i] <= len && same_lowered(s + len - m->lengths[i], m->needles[i], m->lengths[i])) return 1;
    }
    return 0;
  case LQ_MATCH_EXTERNAL:
    return ext != NULL ? ext(ud, index, -1, s, len) : 0;
  }
  return 0;
}

int lq_matcher_which(const lq_matcher *m, const char *s, size_t len, lq_external_fn ext, void *ud, int index) {
  int i, hit = 0;
  for (i = 0; i < m->count; i++) {
    const char *n = m->needles[i];
    size_t nl = m->lengths[i];
    switch (m->mode) {
    case LQ_MATCH_EQUALS: hit = nl == len && same_lowered(s, n, len); break;
    case LQ_MATCH_CONTAINS: case LQ_MATCH_WORD: hit = find_needle(s, len, n, nl, m->mode == LQ_MATCH_WORD); break;
    case LQ_MATCH_STARTS: hit = nl <= len && same_lowered(s, n, nl); break;
    case LQ_MATCH_ENDS: hit = nl <= len && same_lowered(s + len - nl, n, nl); break;
    case LQ_MATCH_EXTERNAL:
      hit = ext != NULL ? ext(ud, index, i, s, len) : 0;
      if (hit < 0) return -2;
      break;
    }
    if (hit) return i;
  }
  return -1;
}

/* ---- runs ---- */

int lq_run_init(lq_run *run, const lq_program *p, lq_allocator *a) {
  memset(run, 0, sizeof *run);
  run->prog = p;
  run->nfields = p->nfields;
  run->nleaves = p->nleaves;
  run->views = (lq_view *)lq_mem_zeroed(a, (size_t)p->nfields, sizeof(lq_view));
  run->luts = (uint8_t **)lq_mem_zeroed(a, (size_t)p->nleaves, sizeof(uint8_t *));
  run->lut_sizes = (size_t *)lq_mem_zeroed(a, (size_t)p->nleaves, sizeof(size_t));
  run->lut_caps = (size_t *)lq_mem_zeroed(a, (size_t)p->nleaves, sizeof(size_t));
  run->lo = (double *)lq_mem_zeroed(a, (size_t)p->nleaves, sizeof(double));
  run->hi = (double *)lq_mem_zeroed(a, (size_t)p->nleaves, sizeof(double));
  run->nfused = p->nfused;
  run->fused = (lq_bits **)lq_mem_zeroed(a, (size_t)p->nfused, sizeof(lq_bits *));
  run->fused_sizes = (size_t *)lq_mem_zeroed(a, (size_t)p->nfused, sizeof(size_t));
  run->fused_caps = (size_t *)lq_mem_zeroed(a, (size_t)p->nfused, sizeof(size_t));
  if (run->views == NULL || run->luts == NULL || run->lut_sizes == NULL || run->lut_caps == NULL ||
      run->lo == NULL || run->hi == NULL || run->fused == NULL || run->fused_sizes == NULL ||
      run->fused_caps == NULL) return -1;
  lq_run_set_as_of(run, 0);
  return 0;
}

void lq_run_free(lq_run *run, lq_allocator *a) {
  size_t nf = (size_t)run->nfields, nl = (size_t)run->nleaves, i;
  if (run->luts != NULL && run->lut_caps != NULL) {
    for (i = 0; i < nl; i++) lq_mem_free(a, run->luts[i], run->lut_caps[i]);
  }
  lq_mem_free(a, run->views, sizeof(lq_view) * nf);
  lq_mem_free(a, run->luts, sizeof(uint8_t *) * nl);
  lq_mem_free(a, run->lut_sizes, sizeof(size_t) * nl);
  lq_mem_free(a, run->lut_caps, sizeof(size_t) * nl);
  lq_mem_free(a, run->lo, sizeof(double) * nl);
  lq_mem_free(a, run->hi, sizeof(double) * nl);
  if (run->fused != NULL && run->fused_caps != NULL) {
    for (i = 0; i < (size_t)run->nfused; i++) lq_mem_free(a, run->fused[i], run->fused_caps[i] * sizeof(lq_bits));
  }
  lq_mem_free(a, run->fused, sizeof(lq_bits *) * (size_t)run->nfused);
  lq_mem_free(a, run->fused_sizes, sizeof(size_t) * (size_t)run->nfused);
  lq_mem_free(a, run->fused_caps, sizeof(size_t) * (size_t)run->nfused);
  memset(run, 0, sizeof *run);
}

void lq_run_set_as_of(lq_run *run, double as_of) {
  const lq_program *p = run->prog;
  int i;
  run->as_of = as_of;
  for (i = 0; i < p->nleaves; i++) {
    const lq_leaf *lf = &p->leaves[i];
    double lo = lf->lo, hi = lf->hi;
    if (lf->kind == LQ_LEAF_TIME) {
      lo += as_of;
      hi += as_of;
    }
    /* x > lo is x >= the next double up: every range test stays two comparisons. */
    run->lo[i] = lf->lo_open ? nextafter(lo, HUGE_VAL) : lo;
    run->hi[i] = lf->hi_open ? nextafter(hi, -HUGE_VAL) : hi;
  }
}

void lq_view_of_column(lq_view *v, const lq_column *c) {
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

/* Forget the per-code tables (their dictionaries changed under them). */
void lq_run_reset_luts(lq_run *run) {
  int i;
  for (i = 0; i < run->nleaves; i++) run->lut_sizes[i] = 0;
  for (i = 0; i < run->nfused; i++) run->fused_sizes[i] = 0;
}

/* The fused tables of the coded fields, from the per-leaf tables (rebuilt whole when they grew). */
static int build_fused(lq_run *run, lq_allocator *a) {
  const lq_program *p = run->prog;
  int t, i;
  for (t = 0; t < p->nfused; t++) {
    const lq_view *v = &run->views[p->fused_field[t]];
    size_t need, c;
    if (v->kind != LQ_VIEW_CODES || v->dict == NULL) {
      run->fused_sizes[t] = 0;
      continue;
    }
    need = (size_t)v->dict->count + 1;
    if (run->fused_sizes[t] == need) continue;
    if (need > run->fused_caps[t]) {
      size_t cap = need + need / 4 + 16 < 32 ? 32 : need + need / 4 + 16;   /* gather_small reads 32 */
      lq_bits *grown = (lq_bits *)a->fn(a->ud, run->fused[t], run->fused[t] ? run->fused_caps[t] * sizeof(lq_bits) : 0,
                                        cap * sizeof(lq_bits));
      if (grown == NULL) return -1;
      run->fused[t] = grown;
      run->fused_caps[t] = cap;
    }
    memset(run->fused[t], 0, run->fused_caps[t] * sizeof(lq_bits));
    for (i = 0; i < p->nleaves; i++) {
      const uint8_t *lut = run->luts[i];
      lq_bits bit;
      if (p->leaf_fused[i] != t || lut == NULL || run->lut_sizes[i] < need) continue;
      bit = (lq_bits)(1u << p->leaf_bit[i]);
      for (c = 0; c < need; c++) run->fused[t][c] |= lut[c] ? bit : (lq_bits)0;
    }
    run->fused_sizes[t] = need;
  }
  return 0;
}

int lq_run_build_luts(lq_run *run, lq_allocator *a, lq_external_fn ext, void *ud) {
  const lq_program *p = run->prog;
  int i;
  for (i = 0; i < p->nleaves; i++) {
    const lq_leaf *lf = &p->leaves[i];
    const lq_view *v = &run->views[lf->field];
    const lq_matcher *m;
    size_t need, c;
    int baked;
    if (lf->kind != LQ_LEAF_STRING || (v->kind != LQ_VIEW_CODES && v->kind != LQ_VIEW_TAGS) || v->dict == NULL)
      continue;
    m = &p->matchers[lf->matcher];
    need = (size_t)v->dict->count + 1;
    if (run->lut_sizes[i] >= need) continue;
    if (need > run->lut_caps[i]) {
      size_t cap = run->lut_caps[i] < 16 ? 16 : run->lut_caps[i];
      uint8_t *grown;
      while (cap < need) cap *= 2;
      grown = (uint8_t *)a->fn(a->ud, run->luts[i], run->luts[i] != NULL ? run->lut_caps[i] : 0, cap);
      if (grown == NULL) return -1;
      run->luts[i] = grown;
      run->lut_caps[i] = cap;
    }
    /* Codes views bake the negation in; tags negate after "any tag". Missing never holds. */
    baked = v->kind == LQ_VIEW_CODES && lf->negate;
    if (run->lut_sizes[i] == 0) {
      run->luts[i][0] = 0;
      run->lut_sizes[i] = 1;
    }
    for (c = run->lut_sizes[i] - 1; c + 1 < need; c++) {
      size_t len;
      const char *s = lq_dict_string(v->dict, (int32_t)c, &len);
      int r = lq_matcher_test(m, s, len, ext, ud, lf->matcher);
      if (r < 0) return -2;
      run->luts[i][c + 1] = (uint8_t)(baked ? !r : r);
      run->lut_sizes[i] = c + 2;
    }
  }
  return build_fused(run, a);
}

/* ---- scratch ---- */

int lq_scratch_init(lq_scratch *s, const lq_program *p, lq_allocator *a) {
  size_t B = LQ_BATCH, ng = (size_t)p->ngroups;
  memset(s, 0, sizeof *s);
  s->nregs = p->nregs;
  s->ngroups = p->ngroups;
  s->nrules = p->nrules;
  s->regs = (uint8_t *)lq_mem_zeroed(a, (size_t)p->nregs * B, 1);
  s->sums = (double *)lq_mem_zeroed(a, ng * B, sizeof(double));
  s->raw = (double *)lq_mem_zeroed(a, ng * B, sizeof(double));
  s->total = (double *)lq_mem_zeroed(a, B, sizeof(double));
  s->best_pos = (double *)lq_mem_zeroed(a, B, sizeof(double));
  s->best_neg = (double *)lq_mem_zeroed(a, B, sizeof(double));
  s->excess_pos = (double *)lq_mem_zeroed(a, B, sizeof(double));
  s->excess_neg = (double *)lq_mem_zeroed(a, B, sizeof(double));
  s->best_pos_id = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->best_neg_id = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->disq_id = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->isums = (int32_t *)lq_mem_zeroed(a, ng * B, sizeof(int32_t));
  s->iraw = (int32_t *)lq_mem_zeroed(a, ng * B, sizeof(int32_t));
  s->itotal = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->ikey_pos = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->ikey_neg = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->iep = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->ien = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->nfused = p->nfused;
  s->fbits = (lq_bits *)lq_mem_zeroed(a, (size_t)p->nfused * B, sizeof(lq_bits));
  s->ostatus = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->ograde = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->oreason = (int32_t *)lq_mem_zeroed(a, B, sizeof(int32_t));
  s->fired = (int32_t *)lq_mem_zeroed(a, (size_t)p->nrules, sizeof(int32_t));
  s->row_ep = (double *)lq_mem_zeroed(a, ng, sizeof(double));
  s->row_en = (double *)lq_mem_zeroed(a, ng, sizeof(double));
  s->row_iep = (int32_t *)lq_mem_zeroed(a, ng, sizeof(int32_t));
  s->row_ien = (int32_t *)lq_mem_zeroed(a, ng, sizeof(int32_t));
  if (s->fbits == NULL || s->ostatus == NULL || s->ograde == NULL || s->oreason == NULL || s->fired == NULL ||
      s->row_ep == NULL || s->row_en == NULL || s->row_iep == NULL || s->row_ien == NULL) return -1;
  if (s->isums == NULL || s->iraw == NULL || s->itotal == NULL || s->ikey_pos == NULL || s->ikey_neg == NULL ||
      s->iep == NULL || s->ien == NULL) return -1;
  if (s->regs == NULL || s->sums == NULL || s->raw == NULL || s->total == NULL || s->best_pos == NULL ||
      s->best_neg == NULL || s->excess_pos == NULL || s->excess_neg == NULL || s->best_pos_id == NULL ||
      s->best_neg_id == NULL || s->disq_id == NULL) return -1;
  return 0;
}

void lq_scratch_free(lq_scratch *s, lq_allocator *a) {
  size_t B = LQ_BATCH, ng = (size_t)s->ngroups;
  lq_mem_free(a, s->regs, (size_t)s->nregs * B);
  lq_mem_free(a, s->sums, ng * B * sizeof(double));
  lq_mem_free(a, s->raw, ng * B * sizeof(double));
  lq_mem_free(a, s->total, B * sizeof(double));
  lq_mem_free(a, s->best_pos, B * sizeof(double));
  lq_mem_free(a, s->best_neg, B * sizeof(double));
  lq_mem_free(a, s->excess_pos, B * sizeof(double));
  lq_mem_free(a, s->excess_neg, B * sizeof(double));
  lq_mem_free(a, s->best_pos_id, B * sizeof(int32_t));
  lq_mem_free(a, s->best_neg_id, B * sizeof(int32_t));
  lq_mem_free(a, s->disq_id, B * sizeof(int32_t));
  lq_mem_free(a, s->isums, ng * B * sizeof(int32_t));
  lq_mem_free(a, s->iraw, ng * B * sizeof(int32_t));
  lq_mem_free(a, s->itotal, B * sizeof(int32_t));
  lq_mem_free(a, s->ikey_pos, B * sizeof(int32_t));
  lq_mem_free(a, s->ikey_neg, B * sizeof(int32_t));
  lq_mem_free(a, s->iep, B * sizeof(int32_t));
  lq_mem_free(a, s->ien, B * sizeof(int32_t));
  lq_mem_free(a, s->fbits, (size_t)s->nfused * B * sizeof(lq_bits));
  lq_mem_free(a, s->ostatus, B * sizeof(int32_t));
  lq_mem_free(a, s->ograde, B * sizeof(int32_t));
  lq_mem_free(a, s->oreason, B * sizeof(int32_t));
  lq_mem_free(a, s->fired, (size_t)s->nrules * sizeof(int32_t));
  lq_mem_free(a, s->row_ep, ng * sizeof(double));
  lq_mem_free(a, s->row_en, ng * sizeof(double));
  lq_mem_free(a, s->row_iep, ng * sizeof(int32_t));
  lq_mem_free(a, s->row_ien, ng * sizeof(int32_t));
  memset(s, 0, sizeof *s);
}

/* ---- kernels: one column, one batch, no branches in the row loop ---- */

LQ_KERNEL void k_range(uint8_t *restrict m, const double *restrict x, size_t n, double lo, double hi) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((x[i] >= lo) & (x[i] <= hi));
}

LQ_KERNEL void k_range_not(uint8_t *restrict m, const double *restrict x, size_t n, double lo, double hi) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((x[i] < lo) | (x[i] > hi));
}

LQ_KERNEL void k_present_number(uint8_t *restrict m, const double *restrict x, size_t n, uint8_t want) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((x[i] == x[i]) == want);
}

LQ_KERNEL void k_bool_eq(uint8_t *restrict m, const uint8_t *restrict b, size_t n, uint8_t v) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)(b[i] == v);
}

LQ_KERNEL void k_bool_present(uint8_t *restrict m, const uint8_t *restrict b, size_t n, uint8_t want) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((b[i] != LQ_MISSING_BOOL) == want);
}

LQ_KERNEL void k_code_present(uint8_t *restrict m, const int32_t *restrict c, size_t n, uint8_t want) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((c[i] >= 0) == want);
}

LQ_KERNEL void k_flag_present(uint8_t *restrict m, const uint8_t *restrict missing, size_t n, uint8_t want) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = (uint8_t)((missing[i] == 0) == want);
}

/* The heart of string tests: one byte load per row from a table built once per distinct value. */
LQ_KERNEL void k_lut(uint8_t *restrict m, const int32_t *restrict c, size_t n, const uint8_t *restrict lut) {
  size_t i;
  for (i = 0; i < n; i++) m[i] = lut[c[i] + 1];
}

LQ_KERNEL void k_fill(uint8_t *restrict m, size_t n, uint8_t v) {
  memset(m, v, n);
}

LQ_KERNEL void k_and(uint8_t *d, const uint8_t *a, const uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) d[i] = a[i] & b[i];
}

LQ_KERNEL void k_or(uint8_t *d, const uint8_t *a, const uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) d[i] = a[i] | b[i];
}

LQ_KERNEL void k_not(uint8_t *d, const uint8_t *a, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) d[i] = a[i] ^ 1;
}

LQ_KERNEL void k_gather(lq_bits *restrict bits, const int32_t *restrict c, size_t n, const lq_bits *restrict table) {
  size_t i;
  for (i = 0; i < n; i++) bits[i] = table[c[i] + 1];
}

/* A table of up to 32 entries (a category of a few values: seniority, country, source) is read
** 32 rows at a time with AVX2: the codes narrowed to bytes, then a byte shuffle per 16 entries.
** Chosen at run time (run_ops); the clones above are picked per function, not per call. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(LQ_NO_CLONES)
#define LQ_SMALL_TABLES_AVX2 1
#define LQ_SMALL_TABLE 32
__attribute__((target("avx2"))) static void gather_small_avx2(lq_bits *restrict bits, const int32_t *restrict c,
                                                              size_t n, const lq_bits *restrict table) {
  const __m256i one = _mm256_set1_epi32(1), sixteen = _mm256_set1_epi8(16), fifteen = _mm256_set1_epi8(15);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);   /* undoes the packs' lane interleave */
  const __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)table));
  const __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(table + 16)));
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i *q = (const __m256i *)(const void *)(c + i);
    __m256i a = _mm256_add_epi32(_mm256_loadu_si256(q), one), b = _mm256_add_epi32(_mm256_loadu_si256(q + 1), one);
    __m256i d = _mm256_add_epi32(_mm256_loadu_si256(q + 2), one), e = _mm256_add_epi32(_mm256_loadu_si256(q + 3), one);
    __m256i x = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(d, e)),
                                            order);
    /* x < 16: the low table; 16..31: the high one (x - 16 < 0 has its top bit set, which reads 0) */
    __m256i v = _mm256_blendv_epi8(_mm256_shuffle_epi8(lo, x), _mm256_shuffle_epi8(hi, _mm256_sub_epi8(x, sixteen)),
                                   _mm256_cmpgt_epi8(x, fifteen));
    _mm256_storeu_si256((__m256i *)(void *)(bits + i), v);
  }
  for (; i < n; i++) bits[i] = table[c[i] + 1];
}
#endif

LQ_KERNEL void k_bit(uint8_t *restrict m, const lq_bits *restrict bits, size_t n, int bit) {
  size_t i;
  lq_bits mask = (lq_bits)(1u << bit);
  for (i = 0; i < n; i++) m[i] = (uint8_t)((bits[i] & mask) != 0);
}

LQ_KERNEL void eval_tags(uint8_t *restrict m, const lq_view *v, size_t row0, size_t n, const uint8_t *lut, int negate) {
  size_t i;
  for (i = 0; i < n; i++) {
    size_t row = row0 + i;
    uint64_t k, end = v->offsets[row + 1];
    uint8_t any = 0;
    for (k = v->offsets[row]; k < end; k++) any |= lut[v->tag_codes[k] + 1];
    m[i] = v->missing[row] ? 0 : (uint8_t)(any ^ (negate != 0));
  }
}

LQ_KERNEL void eval_text(uint8_t *restrict m, const lq_view *v, const lq_matcher *mt, size_t row0, size_t n,
                      int negate) {
  size_t i;
  for (i = 0; i < n; i++) {
    size_t row = row0 + i;
    const char *s = v->text + v->offsets[row];
    size_t len = (size_t)(v->offsets[row + 1] - v->offsets[row]);
    int r = mt->mode == LQ_MATCH_EXTERNAL ? 0 : lq_matcher_test(mt, s, len, NULL, NULL, 0);
    m[i] = v->missing[row] ? 0 : (uint8_t)(r ^ (negate != 0));
  }
}

LQ_KERNEL void eval_leaf(const lq_run *run, int index, size_t row0, size_t n, uint8_t *restrict m) {
  const lq_program *p = run->prog;
  const lq_leaf *lf = &p->leaves[index];
  const lq_view *v = &run->views[lf->field];
  uint8_t want = (uint8_t)!lf->negate;
  switch (lf->kind) {
  case LQ_LEAF_RANGE:
  case LQ_LEAF_TIME:
    if (v->kind != LQ_VIEW_NUMBER && v->kind != LQ_VIEW_VALUES) break;
    if (lf->negate) k_range_not(m, v->numbers + row0, n, run->lo[index], run->hi[index]);
    else k_range(m, v->numbers + row0, n, run->lo[index], run->hi[index]);
    return;
  case LQ_LEAF_BOOL:
    if (v->kind != LQ_VIEW_BOOL) break;
    k_bool_eq(m, v->bytes + row0, n, (uint8_t)(lf->value != 0));
    return;
  case LQ_LEAF_PRESENT:
    switch (v->kind) {
    case LQ_VIEW_ABSENT: k_fill(m, n, (uint8_t)!want); return;
    case LQ_VIEW_NUMBER: case LQ_VIEW_VALUES: k_present_number(m, v->numbers + row0, n, want); return;
    case LQ_VIEW_BOOL: k_bool_present(m, v->bytes + row0, n, want); return;
    case LQ_VIEW_CODES: k_code_present(m, v->codes + row0, n, want); return;
    case LQ_VIEW_TAGS: case LQ_VIEW_TEXT: k_flag_present(m, v->missing + row0, n, want); return;
    case LQ_VIEW_MASK: k_fill(m, n, want); return;
    }
    break;
  case LQ_LEAF_STRING:
    if (v->kind == LQ_VIEW_CODES && run->luts[index] != NULL) {
      k_lut(m, v->codes + row0, n, run->luts[index]);
      return;
    }
    if (v->kind == LQ_VIEW_TAGS && run->luts[index] != NULL) {
      eval_tags(m, v, row0, n, run->luts[index], lf->negate);
      return;
    }
    if (v->kind == LQ_VIEW_TEXT) {
      eval_text(m, v, &p->matchers[lf->matcher], row0, n, lf->negate);
      return;
    }
    break;
  case LQ_LEAF_MASK:
    if (v->kind != LQ_VIEW_MASK) break;
    memcpy(m, v->bytes + row0, n);
    return;
  }
  k_fill(m, n, 0);   /* a field that is absent, or of a kind the test cannot read: never holds */
}

/* Result columns are written once and not read again by the pass: stores that bypass the cache
** spare the read of each line they fill (most of the memory traffic of a run is its output).
** Aligned 16-byte blocks stream; the edges are plain stores. lq_program_exec fences at its end. */
LQ_KERNEL void put_i32(int32_t *restrict d, const int32_t *restrict s, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i < n && ((uintptr_t)(d + i) & 15) != 0; i++) d[i] = s[i];
  for (; i + 4 <= n; i += 4) _mm_stream_si128((__m128i *)(void *)(d + i), _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
#endif
  for (; i < n; i++) d[i] = s[i];
}

LQ_KERNEL void put_f64(double *restrict d, const double *restrict s, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i < n && ((uintptr_t)(d + i) & 15) != 0; i++) d[i] = s[i];
  for (; i + 2 <= n; i += 2) _mm_stream_pd(d + i, _mm_loadu_pd(s + i));
#endif
  for (; i < n; i++) d[i] = s[i];
}

LQ_KERNEL void put_i32_as_f64(double *restrict d, const int32_t *restrict s, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i < n && ((uintptr_t)(d + i) & 15) != 0; i++) d[i] = (double)s[i];
  for (; i + 2 <= n; i += 2) _mm_stream_pd(d + i, _mm_cvtepi32_pd(_mm_loadl_epi64((const __m128i *)(const void *)(s + i))));
#endif
  for (; i < n; i++) d[i] = (double)s[i];
}

/* Columns stream from memory: ask for the next batch's rows of every field while this one runs
** (the hardware prefetcher loses a dozen short interleaved streams). */
LQ_KERNEL void prefetch_next(const lq_run *run, size_t row0, size_t n, size_t nrows) {
  size_t next = row0 + n, end = next + n < nrows ? next + n : nrows, off;
  int f;
  if (next >= end) return;
  for (f = 0; f < run->nfields; f++) {
    const lq_view *v = &run->views[f];
    const char *base;
    size_t size;
    switch (v->kind) {
    case LQ_VIEW_NUMBER: case LQ_VIEW_VALUES: base = (const char *)(v->numbers + next); size = (end - next) * sizeof(double); break;
    case LQ_VIEW_CODES: base = (const char *)(v->codes + next); size = (end - next) * sizeof(int32_t); break;
    case LQ_VIEW_BOOL: case LQ_VIEW_MASK: base = (const char *)(v->bytes + next); size = end - next; break;
    default: continue;
    }
    for (off = 0; off < size; off += 64) __builtin_prefetch(base + off, 0, 0);
  }
}

LQ_KERNEL void run_ops(const lq_run *run, lq_scratch *s, int op_begin, int op_end, size_t row0, size_t n) {
  const lq_program *p = run->prog;
  int k;
  for (k = 0; k < p->nfused; k++) {   /* one gather per coded field */
    if (run->fused_sizes[k] == 0) continue;
#if defined(LQ_SMALL_TABLES_AVX2)
    if (run->fused_sizes[k] <= LQ_SMALL_TABLE && __builtin_cpu_supports("avx2")) {
      gather_small_avx2(s->fbits + (size_t)k * LQ_BATCH, run->views[p->fused_field[k]].codes + row0, n, run->fused[k]);
      continue;
    }
#endif
    k_gather(s->fbits + (size_t)k * LQ_BATCH, run->views[p->fused_field[k]].codes + row0, n, run->fused[k]);
  }
  for (k = op_begin; k < op_end; k++) {
    const lq_op *op = &p->ops[k];
    uint8_t *d = s->regs + (size_t)op->dst * LQ_BATCH;
    int t;
    switch (op->code) {
    case LQ_OP_LEAF:
      t = p->leaf_fused[op->a];
      if (t >= 0 && run->fused_sizes[t] != 0) k_bit(d, s->fbits + (size_t)t * LQ_BATCH, n, p->leaf_bit[op->a]);
      else eval_leaf(run, op->a, row0, n, d);
      break;
    case LQ_OP_AND: k_and(d, s->regs + (size_t)op->a * LQ_BATCH, s->regs + (size_t)op->b * LQ_BATCH, n); break;
    case LQ_OP_OR: k_or(d, s->regs + (size_t)op->a * LQ_BATCH, s->regs + (size_t)op->b * LQ_BATCH, n); break;
    case LQ_OP_NOT: k_not(d, s->regs + (size_t)op->a * LQ_BATCH, n); break;
    case LQ_OP_CONST: k_fill(d, n, (uint8_t)(op->a != 0)); break;
    }
  }
}

LQ_KERNEL void k_add_const(double *restrict sum, const uint8_t *restrict m, size_t n, double pts) {
  size_t i;
  for (i = 0; i < n; i++) sum[i] += m[i] ? pts : 0.0;
}

LQ_KERNEL void k_add_values(double *restrict sum, const uint8_t *restrict m, const double *restrict v, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) sum[i] += m[i] ? v[i] : 0.0;
}

LQ_KERNEL void k_clamp(double *restrict t, const double *restrict raw, size_t n, const lq_group *G) {
  size_t i;
  double lo = G->has_floor ? G->floor : -HUGE_VAL, hi = G->has_cap ? G->cap : HUGE_VAL;
  for (i = 0; i < n; i++) {
    double x = raw[i];
    x = x < lo ? lo : x;
    t[i] = x > hi ? hi : x;
  }
}

LQ_KERNEL void k_add(double *restrict d, const double *restrict a, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) d[i] += a[i];
}

LQ_KERNEL void k_threshold(int32_t *restrict st, const double *restrict total, size_t n, double t, int32_t code) {
  size_t i;
  for (i = 0; i < n; i++) st[i] = total[i] >= t ? code : st[i];
}

/* A rule's points after its group's cap or floor: the excess over the cap is taken back from the
** group's positive rules from the last declared one upwards (so the rule that crossed the cap
** keeps the remainder and later ones 0), a deficit under the floor from its negative rules.
** Then the reason: the most positive points after caps (earliest rule on ties), else the most
** negative. */
LQ_KERNEL void k_allocate(const uint8_t *restrict m, const double *restrict values, double pts, int capped,
                       double *restrict ep, double *restrict en, double *restrict bp, int32_t *restrict bpi,
                       double *restrict bn, int32_t *restrict bni, int32_t r, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    double v = values != NULL ? values[i] : pts;
    double a = m[i] ? v : 0.0;
    double rp = a > 0.0 ? a : 0.0, rn = a < 0.0 ? a : 0.0;
    double cp = rp < ep[i] ? rp : ep[i], cn = rn > en[i] ? rn : en[i];
    int up, un;
    if (capped) {
      ep[i] -= cp;
      en[i] -= cn;
      a = a - cp - cn;
    }
    up = (a > bp[i]) | ((a == bp[i]) & (a > 0.0) & (r < bpi[i]));
    un = (a < bn[i]) | ((a == bn[i]) & (a < 0.0) & (r < bni[i]));
    bp[i] = up ? a : bp[i];
    bpi[i] = up ? r : bpi[i];
    bn[i] = un ? a : bn[i];
    bni[i] = un ? r : bni[i];
  }
}

/* The rules' and disqualifiers' conditions of a batch as bits (lq_out.fired_bits). A batch starts
** on a multiple of 64 rows (batches and thread ranges are whole LQ_BATCH), so it owns its words. */
static void put_fired_bits(const lq_program *p, const lq_scratch *s, size_t row0, size_t n, uint64_t *const *bits) {
  int k;
  for (k = 0; k < p->nrules + p->ndisq; k++) {
    int reg = k < p->nrules ? p->rules[k].reg : p->disq_regs[k - p->nrules];
    const uint8_t *m = s->regs + (size_t)reg * LQ_BATCH;
    uint64_t *w = bits[k] + row0 / 64;
    size_t i, j;
    for (i = 0; i < n; i += 64) {
      size_t len = n - i < 64 ? n - i : 64;
      uint64_t word = 0;
      for (j = 0; j < len; j++) word |= (uint64_t)(m[i + j] & 1) << j;
      w[i / 64] = word;
    }
  }
}

LQ_CLONES static void exec_batch_double(const lq_run *run, lq_scratch *s, size_t row0, size_t n, size_t end,
                                       const lq_out *out) {
  const lq_program *p = run->prog;
  const size_t B = LQ_BATCH;
  double *total = s->total;
  int32_t *disq = s->disq_id;
  int g, d, k;
  size_t i;

  prefetch_next(run, row0, n, end);
  run_ops(run, s, 0, p->nops, row0, n);
  if (out->fired_bits != NULL) put_fired_bits(p, s, row0, n, out->fired_bits);

  /* Raw group sums in declared rule order, then clamps and the total. */
  memset(total, 0, n * sizeof(double));
  for (g = 0; g < p->ngroups; g++) {
    const lq_group *G = &p->groups[g];
    double *raw = s->raw + (size_t)g * B;
    memset(raw, 0, n * sizeof(double));
    for (k = 0; k < G->nrules; k++) {
      const lq_rule *ru = &p->rules[G->rules[k]];
      const uint8_t *m = s->regs + (size_t)ru->reg * B;
      if (ru->points_field < 0) k_add_const(raw, m, n, ru->points);
      else k_add_values(raw, m, run->views[ru->points_field].numbers + row0, n);
    }
    k_clamp(s->sums + (size_t)g * B, raw, n, G);
    k_add(total, s->sums + (size_t)g * B, n);
  }

  /* The first disqualifier that holds. */
  for (i = 0; i < n; i++) disq[i] = -1;
  for (d = p->ndisq - 1; d >= 0; d--) {
    const uint8_t *m = s->regs + (size_t)p->disq_regs[d] * B;
    for (i = 0; i < n; i++) disq[i] = m[i] ? d : disq[i];
  }

  if (out->status != NULL) {
    int32_t *st = s->ostatus;
    int32_t dq = (int32_t)p->nthresholds + 1;
    for (i = 0; i < n; i++) st[i] = 0;
    for (k = 0; k < p->nthresholds; k++) k_threshold(st, total, n, p->thresholds[k], k + 1);
    for (i = 0; i < n; i++) st[i] = disq[i] >= 0 ? dq : st[i];
    put_i32(out->status + row0, st, n);
  }

  if (out->grade != NULL && p->ngrades > 0) {
    int32_t *gr = s->ograde;
    int32_t mult = p->ngrades == 2 ? p->grades[1].nlevels + 1 : 1;
    for (i = 0; i < n; i++) gr[i] = 0;
    for (k = 0; k < p->ngrades; k++) {
      const lq_grade *G = &p->grades[k];
      const double *v = s->sums + (size_t)G->group * B;
      int32_t scale = k == 0 ? mult : 1;
      int j;
      int32_t *idx = s->best_pos_id;   /* free until the reason pass */
      for (i = 0; i < n; i++) idx[i] = G->nlevels;
      for (j = G->nlevels - 1; j >= 0; j--) {
        double lv = G->levels[j];
        for (i = 0; i < n; i++) idx[i] = v[i] >= lv ? j : idx[i];
      }
      for (i = 0; i < n; i++) gr[i] += idx[i] * scale;
    }
    put_i32(out->grade + row0, gr, n);
  }

  if (out->reason != NULL) {
    double *bp = s->best_pos, *bn = s->best_neg, *ep = s->excess_pos, *en = s->excess_neg;
    int32_t *bpi = s->best_pos_id, *bni = s->best_neg_id;
    for (i = 0; i < n; i++) {
      bp[i] = 0.0;
      bn[i] = 0.0;
      bpi[i] = -1;
      bni[i] = -1;
    }
    for (g = 0; g < p->ngroups; g++) {
      const lq_group *G = &p->groups[g];
      const double *raw = s->raw + (size_t)g * B, *t = s->sums + (size_t)g * B;
      int capped = G->has_floor || G->has_cap;
      if (capped) {
        for (i = 0; i < n; i++) {
          double e = raw[i] - t[i];
          ep[i] = e > 0.0 ? e : 0.0;
          en[i] = e < 0.0 ? e : 0.0;
        }
      }
      for (k = G->nrules - 1; k >= 0; k--) {
        int rr = G->rules[k];
        const lq_rule *ru = &p->rules[rr];
        const double *values = ru->points_field < 0 ? NULL : run->views[ru->points_field].numbers + row0;
        k_allocate(s->regs + (size_t)ru->reg * B, values, ru->points, capped, ep, en, bp, bpi, bn, bni, rr, n);
      }
    }
    if (out->reason != NULL) {
      int32_t *rs = s->oreason;
      const int32_t *rr = out->rule_reason, *dr = out->disq_reason;
      for (i = 0; i < n; i++) {
        int32_t best = bpi[i] >= 0 ? bpi[i] : bni[i];
        int32_t code = best >= 0 ? rr[best] : LQ_MISSING_CODE;
        rs[i] = disq[i] >= 0 ? dr[disq[i]] : code;
      }
      put_i32(out->reason + row0, rs, n);
    }
  }

  if (out->total != NULL) put_f64(out->total + row0, total, n);
  if (out->groups != NULL) {
    for (g = 0; g < p->ngroups; g++) {
      if (out->groups[g] != NULL) put_f64(out->groups[g] + row0, s->sums + (size_t)g * B, n);
    }
  }
  if (out->disqualified_by != NULL) put_i32(out->disqualified_by + row0, disq, n);

}

/* ---- integer mode: the same steps in int32 lanes ---- */

LQ_KERNEL void k_iadd_const(int32_t *restrict sum, const uint8_t *restrict m, size_t n, int32_t pts) {
  size_t i;
  for (i = 0; i < n; i++) sum[i] += -(int32_t)m[i] & pts;
}

LQ_KERNEL void k_iclamp(int32_t *restrict t, const int32_t *restrict raw, size_t n, int32_t lo, int32_t hi) {
  size_t i;
  for (i = 0; i < n; i++) {
    int32_t x = raw[i];
    x = x < lo ? lo : x;
    t[i] = x > hi ? hi : x;
  }
}

LQ_KERNEL void k_iadd(int32_t *restrict d, const int32_t *restrict a, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) d[i] += a[i];
}

/* Points after caps (as in k_allocate), and the reason as one key per sign: points * 65536 plus
** the rule (reversed for the positive side), so a max / min picks the most points, then the
** earliest rule. A rule of positive points cannot change the negative side (it takes nothing
** from en, and its key is never below 0), so it keeps only ep and kp; a negative one en and kn. */
LQ_KERNEL void k_iallocate_pos(const uint8_t *restrict m, int32_t pts, int capped, int32_t *restrict ep,
                               int32_t *restrict kp, int32_t r, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int32_t a = -(int32_t)m[i] & pts, keyp;
    if (capped) {
      int32_t cp = a < ep[i] ? a : ep[i];
      ep[i] -= cp;
      a -= cp;
    }
    keyp = a > 0 ? a * 65536 + (65535 - r) : 0;
    kp[i] = keyp > kp[i] ? keyp : kp[i];
  }
}

LQ_KERNEL void k_iallocate_neg(const uint8_t *restrict m, int32_t pts, int capped, int32_t *restrict en,
                               int32_t *restrict kn, int32_t r, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int32_t a = -(int32_t)m[i] & pts, keyn;
    if (capped) {
      int32_t cn = a > en[i] ? a : en[i];
      en[i] -= cn;
      a -= cn;
    }
    keyn = a < 0 ? a * 65536 + r : 0;
    kn[i] = keyn < kn[i] ? keyn : kn[i];
  }
}

/* The same without a cap or floor to apply: a rule's key is a constant where it fired. */
LQ_KERNEL void k_ikey_max(int32_t *restrict kp, const uint8_t *restrict m, int32_t key, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int32_t k = -(int32_t)m[i] & key;
    kp[i] = k > kp[i] ? k : kp[i];
  }
}

LQ_KERNEL void k_ikey_min(int32_t *restrict kn, const uint8_t *restrict m, int32_t key, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int32_t k = -(int32_t)m[i] & key;
    kn[i] = k < kn[i] ? k : kn[i];
  }
}

LQ_CLONES static void exec_batch_int(const lq_run *run, lq_scratch *s, size_t row0, size_t n, size_t end,
                                       const lq_out *out) {
  const lq_program *p = run->prog;
  const size_t B = LQ_BATCH;
  int32_t *total = s->itotal;
  int32_t *disq = s->disq_id;
  int g, d, k;
  size_t i;

  prefetch_next(run, row0, n, end);
  run_ops(run, s, 0, p->nops, row0, n);
  if (out->fired_bits != NULL) put_fired_bits(p, s, row0, n, out->fired_bits);

  memset(total, 0, n * sizeof(int32_t));
  for (g = 0; g < p->ngroups; g++) {
    const lq_group *G = &p->groups[g];
    int32_t *raw = s->iraw + (size_t)g * B;
    memset(raw, 0, n * sizeof(int32_t));
    for (k = 0; k < G->nrules; k++) {
      int r = G->rules[k];
      k_iadd_const(raw, s->regs + (size_t)p->rules[r].reg * B, n, p->ipoints[r]);
    }
    k_iclamp(s->isums + (size_t)g * B, raw, n, p->ifloor[g], p->icap[g]);
    k_iadd(total, s->isums + (size_t)g * B, n);
  }

  for (i = 0; i < n; i++) disq[i] = -1;
  for (d = p->ndisq - 1; d >= 0; d--) {
    const uint8_t *m = s->regs + (size_t)p->disq_regs[d] * B;
    for (i = 0; i < n; i++) disq[i] = m[i] ? d : disq[i];
  }

  if (out->status != NULL) {
    int32_t *st = s->ostatus;
    int32_t dq = (int32_t)p->nthresholds + 1;
    for (i = 0; i < n; i++) st[i] = 0;
    for (k = 0; k < p->nthresholds; k++) {
      int32_t t = p->ithresholds[k], code = k + 1;
      for (i = 0; i < n; i++) st[i] = total[i] >= t ? code : st[i];
    }
    for (i = 0; i < n; i++) st[i] = disq[i] >= 0 ? dq : st[i];
    put_i32(out->status + row0, st, n);
  }

  if (out->grade != NULL && p->ngrades > 0) {
    int32_t *gr = s->ograde;
    int32_t mult = p->ngrades == 2 ? p->grades[1].nlevels + 1 : 1;
    int32_t *idx = s->ikey_pos;   /* free until the reason pass */
    for (i = 0; i < n; i++) gr[i] = 0;
    for (k = 0; k < p->ngrades; k++) {
      const lq_grade *G = &p->grades[k];
      const int32_t *v = s->isums + (size_t)G->group * B;
      int32_t scale = k == 0 ? mult : 1;
      int j;
      for (i = 0; i < n; i++) idx[i] = G->nlevels;
      for (j = G->nlevels - 1; j >= 0; j--) {
        int32_t lv = p->ilevels[k][j];
        for (i = 0; i < n; i++) idx[i] = v[i] >= lv ? j : idx[i];
      }
      for (i = 0; i < n; i++) gr[i] += idx[i] * scale;
    }
    put_i32(out->grade + row0, gr, n);
  }

  if (out->reason != NULL) {
    int32_t *kp = s->ikey_pos, *kn = s->ikey_neg, *ep = s->iep, *en = s->ien;
    int32_t *rs = s->oreason;
    const int32_t *rr = out->rule_reason, *dr = out->disq_reason;
    memset(kp, 0, n * sizeof(int32_t));
    memset(kn, 0, n * sizeof(int32_t));
    for (g = 0; g < p->ngroups; g++) {
      const lq_group *G = &p->groups[g];
      const int32_t *raw = s->iraw + (size_t)g * B, *t = s->isums + (size_t)g * B;
      int capped = G->has_floor || G->has_cap;
      if (capped) {
        int32_t any = 0;
        for (i = 0; i < n; i++) {
          int32_t e = raw[i] - t[i];
          ep[i] = e > 0 ? e : 0;
          en[i] = e < 0 ? e : 0;
          any |= e;
        }
        capped = any != 0;   /* no row of the batch past the cap or floor: nothing to take back */
      }
      for (k = G->nrules - 1; k >= 0; k--) {
        int r = G->rules[k];
        const uint8_t *m = s->regs + (size_t)p->rules[r].reg * B;
        int32_t pts = p->ipoints[r];
        if (pts > 0) {
          if (capped) k_iallocate_pos(m, pts, 1, ep, kp, r, n);
          else k_ikey_max(kp, m, pts * 65536 + (65535 - r), n);
        } else if (pts < 0) {
          if (capped) k_iallocate_neg(m, pts, 1, en, kn, r, n);
          else k_ikey_min(kn, m, pts * 65536 + r, n);
        }
        /* a rule of 0 points changes nothing */
      }
    }
    for (i = 0; i < n; i++) {
      int32_t best = kp[i] > 0 ? 65535 - (int32_t)((uint32_t)kp[i] & 0xFFFFu)
                               : (kn[i] < 0 ? (int32_t)((uint32_t)kn[i] & 0xFFFFu) : -1);
      int32_t code = best >= 0 ? rr[best] : LQ_MISSING_CODE;
      rs[i] = disq[i] >= 0 ? dr[disq[i]] : code;
    }
    put_i32(out->reason + row0, rs, n);
  }

  if (out->total != NULL) put_i32_as_f64(out->total + row0, total, n);
  if (out->groups != NULL) {
    for (g = 0; g < p->ngroups; g++) {
      if (out->groups[g] != NULL) put_i32_as_f64(out->groups[g] + row0, s->isums + (size_t)g * B, n);
    }
  }
  if (out->disqualified_by != NULL) put_i32(out->disqualified_by + row0, disq, n);
}

/* ---- one row: the same program, scalar, with everything explain wants ---- */

static uint8_t leaf_one(const lq_run *run, int index, size_t row) {
  const lq_program *p = run->prog;
  const lq_leaf *lf = &p->leaves[index];
  const lq_view *v = &run->views[lf->field];
  uint8_t want = (uint8_t)!lf->negate;
  switch (lf->kind) {
  case LQ_LEAF_RANGE:
  case LQ_LEAF_TIME:
    if (v->kind == LQ_VIEW_NUMBER || v->kind == LQ_VIEW_VALUES) {
      double x = v->numbers[row], lo = run->lo[index], hi = run->hi[index];
      return (uint8_t)(lf->negate ? ((x < lo) | (x > hi)) : ((x >= lo) & (x <= hi)));
    }
    return 0;
  case LQ_LEAF_BOOL:
    return (uint8_t)(v->kind == LQ_VIEW_BOOL && v->bytes[row] == (uint8_t)(lf->value != 0));
  case LQ_LEAF_PRESENT:
    switch (v->kind) {
    case LQ_VIEW_ABSENT: return (uint8_t)!want;
    case LQ_VIEW_NUMBER: case LQ_VIEW_VALUES: return (uint8_t)((v->numbers[row] == v->numbers[row]) == want);
    case LQ_VIEW_BOOL: return (uint8_t)((v->bytes[row] != LQ_MISSING_BOOL) == want);
    case LQ_VIEW_CODES: return (uint8_t)((v->codes[row] >= 0) == want);
    case LQ_VIEW_TAGS: case LQ_VIEW_TEXT: return (uint8_t)((v->missing[row] == 0) == want);
    case LQ_VIEW_MASK: return want;
    }
    return 0;
  case LQ_LEAF_STRING:
    if (v->kind == LQ_VIEW_CODES && run->luts[index] != NULL) return run->luts[index][v->codes[row] + 1];
    if (v->kind == LQ_VIEW_TAGS && run->luts[index] != NULL) {
      uint8_t m;
      eval_tags(&m, v, row, 1, run->luts[index], lf->negate);
      return m;
    }
    if (v->kind == LQ_VIEW_TEXT) {
      uint8_t m;
      eval_text(&m, v, &p->matchers[lf->matcher], row, 1, lf->negate);
      return m;
    }
    return 0;
  case LQ_LEAF_MASK:
    return (uint8_t)(v->kind == LQ_VIEW_MASK && v->bytes[row]);
  }
  return 0;
}

static void exec_row(const lq_run *run, lq_scratch *s, size_t row, const lq_out *out) {
  const lq_program *p = run->prog;
  uint8_t *reg = s->regs;   /* one byte per register */
  int32_t *fired = s->fired;
  int g, k, r, d, disq = -1, nfired;
  int32_t status = 0, best = -1;
  double total = 0.0;
  int32_t itotal = 0;

  {
    /* Locals: a store through reg (bytes) may alias anything, so the compiler would reload every
    ** field of p and run after each one. */
    const lq_op *ops = p->row_ops, *end = ops + p->nops, *op;
    const lq_view *views = run->views;
    const double *lo = run->lo, *hi = run->hi;
    uint8_t *const *luts = run->luts;
    const lq_leaf *leaves = p->leaves;
    for (op = ops; op < end; op++) {
      const lq_view *v;
      double x;
      uint8_t m;
      switch (op->code) {
      case LQ_ROW_AND: m = reg[op->a] & reg[op->b]; break;
      case LQ_ROW_OR: m = reg[op->a] | reg[op->b]; break;
      case LQ_ROW_NOT: m = reg[op->a] ^ 1; break;
      case LQ_ROW_CONST: m = (uint8_t)(op->a != 0); break;
      case LQ_ROW_RANGE: case LQ_ROW_RANGE_NOT:   /* a field that is not a number reads as NaN: never holds */
        v = &views[op->b];
        x = v->kind == LQ_VIEW_NUMBER || v->kind == LQ_VIEW_VALUES ? v->numbers[row] : NAN;
        m = (uint8_t)(op->code == LQ_ROW_RANGE ? (x >= lo[op->a]) & (x <= hi[op->a])
                                               : (x < lo[op->a]) | (x > hi[op->a]));
        break;
      case LQ_ROW_STRING:
        v = &views[op->b];
        if (v->kind == LQ_VIEW_TAGS && luts[op->a] != NULL && v->offsets[row + 1] == v->offsets[row] + 1) {
          /* one value, score_one's usual lead: its code's entry in the leaf's table */
          m = v->missing[row] ? 0 : (uint8_t)(luts[op->a][v->tag_codes[v->offsets[row]] + 1] ^
                                              (leaves[op->a].negate != 0));
          break;
        }
        m = leaf_one(run, op->a, row);
        break;
      default: m = leaf_one(run, op->a, row); break;
      }
      reg[op->dst] = m;
    }
  }
  for (d = p->ndisq - 1; d >= 0; d--) disq = reg[p->disq_regs[d]] ? d : disq;

  /* Only the rules that fired: a rule that did not gives 0 points, takes nothing back from its
  ** group's excess and is never the reason, so skipping it changes no answer (the sums, in
  ** declared order, add the same values in the same order). */
  nfired = 0;
  for (r = 0; r < p->nrules; r++) {
    fired[nfired] = r;
    nfired += reg[p->rules[r].reg] != 0;
  }
  if (out->rule_points != NULL) {
    for (r = 0; r < p->nrules; r++) out->rule_points[r] = 0.0;
  }

  if (p->int_mode) {
    int32_t *raw = s->iraw, *sum = s->isums, *ep = s->row_iep, *en = s->row_ien, kp = 0, kn = 0;
    for (g = 0; g < p->ngroups; g++) raw[g] = 0;
    for (k = 0; k < nfired; k++) raw[p->rules[fired[k]].group] += p->ipoints[fired[k]];
    for (g = 0; g < p->ngroups; g++) {
      int32_t x = raw[g] < p->ifloor[g] ? p->ifloor[g] : raw[g], e;
      sum[g] = x > p->icap[g] ? p->icap[g] : x;
      itotal += sum[g];
      e = p->groups[g].has_floor || p->groups[g].has_cap ? raw[g] - sum[g] : 0;
      ep[g] = e > 0 ? e : 0;
      en[g] = e < 0 ? e : 0;
    }
    /* Caps take back from the last declared rules first (see k_allocate). */
    for (k = nfired - 1; k >= 0; k--) {
      int32_t a, cp, cn, keyp, keyn;
      r = fired[k];
      g = p->rules[r].group;
      a = p->ipoints[r];
      cp = a > 0 ? (a < ep[g] ? a : ep[g]) : 0;
      cn = a < 0 ? (a > en[g] ? a : en[g]) : 0;
      ep[g] -= cp;
      en[g] -= cn;
      a = a - cp - cn;
      keyp = a > 0 ? a * 65536 + (65535 - r) : 0;
      keyn = a < 0 ? a * 65536 + r : 0;
      kp = keyp > kp ? keyp : kp;
      kn = keyn < kn ? keyn : kn;
      if (out->rule_points != NULL) out->rule_points[r] = (double)a;
    }
    best = kp > 0 ? 65535 - (int32_t)((uint32_t)kp & 0xFFFFu) : (kn < 0 ? (int32_t)((uint32_t)kn & 0xFFFFu) : -1);
    total = (double)itotal;
    for (k = 0; k < p->nthresholds; k++) status = itotal >= p->ithresholds[k] ? k + 1 : status;
    if (out->grade != NULL && p->ngrades > 0) {
      int32_t code = 0;
      int32_t mult = p->ngrades == 2 ? p->grades[1].nlevels + 1 : 1;
      for (k = 0; k < p->ngrades; k++) {
        int32_t v = sum[p->grades[k].group], idx = p->grades[k].nlevels;
        int j;
        for (j = p->grades[k].nlevels - 1; j >= 0; j--) idx = v >= p->ilevels[k][j] ? j : idx;
        code += idx * (k == 0 ? mult : 1);
      }
      out->grade[row] = code;
    }
    if (out->groups != NULL) {
      for (g = 0; g < p->ngroups; g++) if (out->groups[g] != NULL) out->groups[g][row] = (double)sum[g];
    }
    if (out->group_raw != NULL) {
      for (g = 0; g < p->ngroups; g++) out->group_raw[g] = (double)raw[g];
    }
  } else {
    double *raw = s->raw, *sum = s->sums, *ep = s->row_ep, *en = s->row_en, bp = 0.0, bn = 0.0;
    int32_t bpi = -1, bni = -1;
    for (g = 0; g < p->ngroups; g++) raw[g] = 0.0;
    for (k = 0; k < nfired; k++) {
      const lq_rule *ru = &p->rules[fired[k]];
      raw[ru->group] += ru->points_field < 0 ? ru->points : run->views[ru->points_field].numbers[row];
    }
    for (g = 0; g < p->ngroups; g++) {
      const lq_group *G = &p->groups[g];
      double x = raw[g], e;
      x = G->has_floor && x < G->floor ? G->floor : x;
      sum[g] = G->has_cap && x > G->cap ? G->cap : x;
      total += sum[g];
      e = G->has_floor || G->has_cap ? raw[g] - sum[g] : 0.0;
      ep[g] = e > 0.0 ? e : 0.0;
      en[g] = e < 0.0 ? e : 0.0;
    }
    for (k = nfired - 1; k >= 0; k--) {
      const lq_rule *ru;
      double a, rp, rn, cp, cn;
      int up, un;
      r = fired[k];
      ru = &p->rules[r];
      g = ru->group;
      a = ru->points_field < 0 ? ru->points : run->views[ru->points_field].numbers[row];
      rp = a > 0.0 ? a : 0.0;
      rn = a < 0.0 ? a : 0.0;
      cp = rp < ep[g] ? rp : ep[g];
      cn = rn > en[g] ? rn : en[g];
      ep[g] -= cp;
      en[g] -= cn;
      a = a - cp - cn;
      up = (a > bp) | ((a == bp) & (a > 0.0) & (r < bpi));
      un = (a < bn) | ((a == bn) & (a < 0.0) & (r < bni));
      bp = up ? a : bp;
      bpi = up ? r : bpi;
      bn = un ? a : bn;
      bni = un ? r : bni;
      if (out->rule_points != NULL) out->rule_points[r] = a;
    }
    best = bpi >= 0 ? bpi : bni;
    for (k = 0; k < p->nthresholds; k++) status = total >= p->thresholds[k] ? k + 1 : status;
    if (out->grade != NULL && p->ngrades > 0) {
      int32_t code = 0;
      int32_t mult = p->ngrades == 2 ? p->grades[1].nlevels + 1 : 1;
      for (k = 0; k < p->ngrades; k++) {
        double v = sum[p->grades[k].group];
        int32_t idx = p->grades[k].nlevels;
        int j;
        for (j = p->grades[k].nlevels - 1; j >= 0; j--) idx = v >= p->grades[k].levels[j] ? j : idx;
        code += idx * (k == 0 ? mult : 1);
      }
      out->grade[row] = code;
    }
    if (out->groups != NULL) {
      for (g = 0; g < p->ngroups; g++) if (out->groups[g] != NULL) out->groups[g][row] = sum[g];
    }
    if (out->group_raw != NULL) {
      for (g = 0; g < p->ngroups; g++) out->group_raw[g] = raw[g];
    }
  }
  if (disq >= 0) status = p->nthresholds + 1;
  if (out->total != NULL) out->total[row] = total;
  if (out->status != NULL) out->status[row] = status;
  if (out->reason != NULL) {
    out->reason[row] = disq >= 0 ? out->disq_reason[disq] : (best >= 0 ? out->rule_reason[best] : LQ_MISSING_CODE);
  }
  if (out->disqualified_by != NULL) out->disqualified_by[row] = disq;
  if (out->rule_fired != NULL || out->rule_raw != NULL) {
    for (r = 0; r < p->nrules; r++) {
      const lq_rule *ru = &p->rules[r];
      uint8_t holds = reg[ru->reg];
      double v = ru->points_field < 0 ? ru->points : run->views[ru->points_field].numbers[row];
      if (out->rule_fired != NULL) out->rule_fired[r] = holds;
      if (out->rule_raw != NULL) out->rule_raw[r] = holds ? v : 0.0;
    }
  }
  if (out->disq_fired != NULL) {
    for (d = 0; d < p->ndisq; d++) out->disq_fired[d] = reg[p->disq_regs[d]];
  }
  if (out->fired_bits != NULL) {
    uint64_t bit = (uint64_t)1 << (row % 64);
    for (k = 0; k < p->nrules + p->ndisq; k++) {
      uint64_t *w = out->fired_bits[k] + row / 64;
      int holds = reg[k < p->nrules ? p->rules[k].reg : p->disq_regs[k - p->nrules]] & 1;
      *w = holds ? (*w | bit) : (*w & ~bit);
    }
  }
}

void lq_program_exec(const lq_run *run, lq_scratch *s, size_t begin, size_t end, const lq_out *out) {
  size_t row;
  if (end - begin == 1) {
    exec_row(run, s, begin, out);
    return;
  }
  for (row = begin; row < end; row += LQ_BATCH) {
    size_t n = end - row < LQ_BATCH ? end - row : LQ_BATCH;
    if (n == 1) exec_row(run, s, row, out);
    else if (run->prog->int_mode) exec_batch_int(run, s, row, n, end, out);
    else exec_batch_double(run, s, row, n, end, out);
  }
#if defined(__SSE2__)
  _mm_sfence();   /* the streamed result rows are visible to whoever reads them next */
#endif
}

/* ---- explain: one row of a run, alone ---- */

size_t lq_row_facts_size(const lq_program *p) {
  size_t nr = (size_t)p->nrules, nd = (size_t)p->ndisq, ng = (size_t)p->ngroups, nl = (size_t)p->nleaves;
  return (size_t)p->nfields * sizeof(lq_view) + (2 * nr + 2 * ng + nl) * sizeof(double) + ng * sizeof(double *) +
         (nr + nd + 2 * nl) * sizeof(int32_t) + nr + nd + 2 * nl + 16;
}

/* The block: views, then doubles and pointers, then int32s, then bytes (each kind aligned). */
void lq_row_facts_init(lq_row_facts *f, const lq_program *p, void *block) {
  size_t nr = (size_t)p->nrules, nd = (size_t)p->ndisq, ng = (size_t)p->ngroups, nl = (size_t)p->nleaves, i;
  char *q = (char *)block;
  memset(f, 0, sizeof *f);
  memset(block, 0, lq_row_facts_size(p));
  f->views = (lq_view *)(void *)q; q += (size_t)p->nfields * sizeof(lq_view);
  f->rule_raw = (double *)(void *)q; q += nr * sizeof(double);
  f->rule_points = (double *)(void *)q; q += nr * sizeof(double);
  f->group_raw = (double *)(void *)q; q += ng * sizeof(double);
  f->group_points = (double *)(void *)q; q += ng * sizeof(double);
  f->leaf_number = (double *)(void *)q; q += nl * sizeof(double);
  f->group_ptrs = (double **)(void *)q; q += ng * sizeof(double *);
  f->rule_reason = (int32_t *)(void *)q; q += nr * sizeof(int32_t);
  f->disq_reason = (int32_t *)(void *)q; q += nd * sizeof(int32_t);
  f->leaf_value = (int32_t *)(void *)q; q += nl * sizeof(int32_t);
  f->leaf_needle = (int32_t *)(void *)q; q += nl * sizeof(int32_t);
  f->rule_fired = (uint8_t *)q; q += nr;
  f->disq_fired = (uint8_t *)q; q += nd;
  f->leaf_holds = (uint8_t *)q; q += nl;
  f->leaf_missing = (uint8_t *)q;
  /* reasons as indexes: rules first, then disqualifiers (as the names the binding keeps) */
  for (i = 0; i < nr; i++) f->rule_reason[i] = (int32_t)i;
  for (i = 0; i < nd; i++) f->disq_reason[i] = (int32_t)(nr + i);
  for (i = 0; i < ng; i++) f->group_ptrs[i] = &f->group_points[i];
}

/* Whether leaf `index`'s field has no value at row 0 of run (a function's mask always has one). */
static int leaf_field_missing(const lq_run *run, int index) {
  const lq_view *v = &run->views[run->prog->leaves[index].field];
  switch (v->kind) {
  case LQ_VIEW_ABSENT: return 1;
  case LQ_VIEW_NUMBER: case LQ_VIEW_VALUES: return v->numbers[0] != v->numbers[0];
  case LQ_VIEW_BOOL: return v->bytes[0] == LQ_MISSING_BOOL;
  case LQ_VIEW_CODES: return v->codes[0] < 0;
  case LQ_VIEW_TAGS: case LQ_VIEW_TEXT: return v->missing[0] != 0;
  case LQ_VIEW_MASK: return 0;
  }
  return 1;
}

/* The needle a string leaf found at row 0 of run, and in which value: 0, or -2 (callback failed). */
static int leaf_needle_found(const lq_run *run, int index, lq_external_fn ext, void *ud, int32_t *value,
                             int32_t *needle) {
  const lq_leaf *lf = &run->prog->leaves[index];
  const lq_matcher *m = &run->prog->matchers[lf->matcher];
  const lq_view *v = &run->views[lf->field];
  uint64_t k, from = 0, to = 0;
  *value = *needle = -1;
  if (leaf_field_missing(run, index)) return 0;
  if (v->kind == LQ_VIEW_CODES || v->kind == LQ_VIEW_TEXT) {
    from = 0;
    to = 1;
  } else if (v->kind == LQ_VIEW_TAGS) {
    from = v->offsets[0];
    to = v->offsets[1];
  }
  for (k = from; k < to; k++) {
    size_t len;
    const char *str;
    int which;
    if (v->kind == LQ_VIEW_CODES) str = lq_dict_string(v->dict, v->codes[0], &len);
    else if (v->kind == LQ_VIEW_TAGS) str = lq_dict_string(v->dict, v->tag_codes[k], &len);
    else { str = v->text + v->offsets[0]; len = (size_t)(v->offsets[1] - v->offsets[0]); }
    which = lq_matcher_which(m, str, len, ext, ud, lf->matcher);
    if (which == -2) return -2;
    if (which >= 0) {
      *value = (int32_t)(k - from);
      *needle = which;
      return 0;
    }
  }
  return 0;
}

int lq_program_explain_row(const lq_run *run, lq_scratch *s, size_t row, lq_external_fn ext, void *ud,
                           lq_row_facts *f) {
  const lq_program *p = run->prog;
  lq_run at = *run;
  lq_out out;
  int k;
  /* the views moved on to the row, so the pass runs row 0 and writes one-element outputs */
  for (k = 0; k < run->nfields; k++) {
    lq_view v = run->views[k];
    if (v.numbers) v.numbers += row;
    if (v.bytes) v.bytes += row;
    if (v.codes) v.codes += row;
    if (v.offsets) v.offsets += row;
    if (v.missing) v.missing += row;
    f->views[k] = v;
  }
  at.views = f->views;
  f->status = f->grade = 0;
  f->reason = f->disq = -1;
  f->total = 0;
  memset(&out, 0, sizeof out);
  out.total = &f->total;
  out.status = &f->status;
  out.grade = &f->grade;
  out.reason = &f->reason;
  out.disqualified_by = &f->disq;
  out.groups = f->group_ptrs;
  out.rule_reason = f->rule_reason;
  out.disq_reason = f->disq_reason;
  out.rule_fired = f->rule_fired;
  out.disq_fired = f->disq_fired;
  out.rule_raw = f->rule_raw;
  out.rule_points = f->rule_points;
  out.group_raw = f->group_raw;
  exec_row(&at, s, 0, &out);
  /* Each leaf again, alone: its result is the one the pass combined (leaf_one is the pass's own
  ** test of one row), with what decided it. */
  for (k = 0; k < p->nleaves; k++) {
    const lq_leaf *lf = &p->leaves[k];
    const lq_view *v = &at.views[lf->field];
    f->leaf_holds[k] = leaf_one(&at, k, 0);
    f->leaf_missing[k] = (uint8_t)leaf_field_missing(&at, k);
    f->leaf_number[k] = NAN;
    f->leaf_value[k] = f->leaf_needle[k] = -1;
    if ((lf->kind == LQ_LEAF_RANGE || lf->kind == LQ_LEAF_TIME) &&
        (v->kind == LQ_VIEW_NUMBER || v->kind == LQ_VIEW_VALUES))
      f->leaf_number[k] = v->numbers[0];
    if (lf->kind == LQ_LEAF_STRING &&
        leaf_needle_found(&at, k, ext, ud, &f->leaf_value[k], &f->leaf_needle[k]) != 0) return -2;
  }
  return 0;
}

void lq_program_rule_mask(const lq_run *run, lq_scratch *s, int rule, size_t begin, size_t end, uint8_t *mask) {
  const lq_rule *ru = &run->prog->rules[rule];
  size_t row;
  for (row = begin; row < end; row += LQ_BATCH) {
    size_t n = end - row < LQ_BATCH ? end - row : LQ_BATCH;
    run_ops(run, s, ru->op_begin, ru->op_end, row, n);
    memcpy(mask + (row - begin), s->regs + (size_t)ru->reg * LQ_BATCH, n);
  }
}

/* ---- threads: one row range each, its own scratch, no allocation ---- */

typedef struct exec_job {
  const lq_run *run;
  lq_scratch *scratch;
  size_t begin, end;
  const lq_out *out;
} exec_job;

static void *exec_job_main(void *arg) {
  exec_job *job = (exec_job *)arg;
  lq_program_exec(job->run, job->scratch, job->begin, job->end, job->out);
  return NULL;
}

int lq_program_exec_threads(const lq_run *run, lq_scratch *scratches, int nthreads, size_t nrows,
                            const lq_out *out) {
  exec_job jobs[LQ_MAX_THREADS];
  pthread_t ids[LQ_MAX_THREADS];
  int started[LQ_MAX_THREADS];
  size_t chunk;
  int t, status = 0;
  if (nthreads > LQ_MAX_THREADS) nthreads = LQ_MAX_THREADS;
  if (nthreads < 1) nthreads = 1;
  /* Ranges in whole batches, so each thread's batches are the ones one thread would run. */
  chunk = (nrows + (size_t)nthreads - 1) / (size_t)nthreads;
  chunk = (chunk + LQ_BATCH - 1) / LQ_BATCH * LQ_BATCH;
  for (t = 0; t < nthreads; t++) {
    size_t b = chunk * (size_t)t, e = b + chunk;
    if (b > nrows) b = nrows;
    if (e > nrows) e = nrows;
    jobs[t].run = run;
    jobs[t].scratch = &scratches[t];
    jobs[t].begin = b;
    jobs[t].end = e;
    jobs[t].out = out;
    started[t] = 0;
  }
  for (t = 1; t < nthreads; t++) {
    if (jobs[t].begin >= jobs[t].end) continue;
    started[t] = pthread_create(&ids[t], NULL, exec_job_main, &jobs[t]) == 0;
  }
  exec_job_main(&jobs[0]);
  for (t = 1; t < nthreads; t++) {
    if (started[t]) {
      pthread_join(ids[t], NULL);
    } else if (jobs[t].begin < jobs[t].end) {
      status = -1;
      exec_job_main(&jobs[t]);
    }
  }
  return status;
}
