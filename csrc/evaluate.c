/* Evaluating a score against outcomes (evaluate.h): one radix sort, then walks over blocks of equal
** score. Plain C, no Lua. */
#include <math.h>
#include <string.h>

#include "evaluate.h"

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_PASSES 6   /* 6 * 11 >= 64 */

typedef struct block {
  double score;
  uint64_t pos, neg;
} block;

/* A key that orders as the double does (NaN never gets here; -0 is 0). */
static uint64_t key_of(double d) {
  uint64_t u;
  if (d == 0.0) d = 0.0;
  memcpy(&u, &d, sizeof u);
  return (u >> 63) ? ~u : (u | ((uint64_t)1 << 63));
}

static double double_of(uint64_t k) {
  double d;
  k = (k >> 63) ? (k & ~((uint64_t)1 << 63)) : ~k;
  memcpy(&d, &k, sizeof d);
  return d;
}

/* LSD radix sort of n keys, tmp as big; passes whose digit is the same for every key are skipped.
** The sorted keys end in v. */
static void radix_sort(uint64_t *v, uint64_t *tmp, size_t n, size_t *counts /* RADIX_PASSES * RADIX_SIZE */) {
  size_t i;
  int pass;
  uint64_t *src = v, *dst = tmp;
  memset(counts, 0, RADIX_PASSES * RADIX_SIZE * sizeof(size_t));
  for (i = 0; i < n; i++) {
    uint64_t k = v[i];
    for (pass = 0; pass < RADIX_PASSES; pass++)
      counts[pass * RADIX_SIZE + ((k >> (pass * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
  }
  for (pass = 0; pass < RADIX_PASSES; pass++) {
    size_t *c = counts + pass * RADIX_SIZE, sum = 0, d;
    int shift = pass * RADIX_BITS;
    uint64_t *swap;
    if (n > 0 && c[(src[0] >> shift) & (RADIX_SIZE - 1)] == n) continue;   /* one digit for all */
    for (d = 0; d < RADIX_SIZE; d++) {
      size_t here = c[d];
      c[d] = sum;
      sum += here;
    }
    for (i = 0; i < n; i++) {
      uint64_t k = src[i];
      dst[c[(k >> shift) & (RADIX_SIZE - 1)]++] = k;
    }
    swap = src; src = dst; dst = swap;
  }
  if (src != v) memcpy(v, src, n * sizeof(uint64_t));
}

void lq_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi) {
  double p, nn, z2, denom, center, half;
  if (n == 0) {
    *lo = *hi = NAN;
    return;
  }
  nn = (double)n;
  p = (double)k / nn;
  z2 = z * z;
  denom = 1.0 + z2 / nn;
  center = (p + z2 / (2.0 * nn)) / denom;
  half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
  *lo = k == 0 || center - half < 0.0 ? 0.0 : center - half;
  *hi = k == n || center + half > 1.0 ? 1.0 : center + half;
}

double lq_rate_ratio(uint64_t a, uint64_t n1, uint64_t c, uint64_t n0, double z, double *lo, double *hi) {
  double x = (double)a, m1 = (double)n1, y = (double)c, m0 = (double)n0, ratio, se;
  if (n1 == 0 || n0 == 0) {
    *lo = *hi = NAN;
    return NAN;
  }
  if (a == 0 || c == 0) {   /* half a lead in each cell for the interval; the ratio itself is 0 or infinite */
    double cx = x + 0.5, cy = y + 0.5, cm1 = m1 + 1.0, cm0 = m0 + 1.0;
    double cr = (cx / cm1) / (cy / cm0);
    se = sqrt(1.0 / cx - 1.0 / cm1 + 1.0 / cy - 1.0 / cm0);
    *lo = a == 0 ? 0.0 : cr * exp(-z * se);
    *hi = c == 0 ? HUGE_VAL : cr * exp(z * se);
    if (a == 0 && c == 0) *lo = *hi = NAN;
    return a == 0 ? (c == 0 ? NAN : 0.0) : HUGE_VAL;
  }
  ratio = (x / m1) / (y / m0);
  se = sqrt(1.0 / x - 1.0 / m1 + 1.0 / y - 1.0 / m0);
  *lo = ratio * exp(-z * se);
  *hi = ratio * exp(z * se);
  return ratio;
}

/* The blocks of equal score, low to high, from the two sorted key lists. */
static size_t merge_blocks(const uint64_t *pos, size_t npos, const uint64_t *neg, size_t nneg, block *out) {
  size_t i = 0, j = 0, nb = 0;
  while (i < npos || j < nneg) {
    uint64_t k;
    block *b = &out[nb++];
    if (j >= nneg || (i < npos && pos[i] <= neg[j])) k = pos[i];
    else k = neg[j];
    b->score = double_of(k);
    b->pos = b->neg = 0;
    while (i < npos && pos[i] == k) { b->pos++; i++; }
    while (j < nneg && neg[j] == k) { b->neg++; j++; }
  }
  return nb;
}

static void auc_of(const block *b, size_t nb, uint64_t P, uint64_t N, lq_eval_out *out) {
  double u = 0.0, below = 0.0, auc, s10 = 0.0, s01 = 0.0, pos_below = 0.0, var;
  size_t k;
  out->auc = out->auc_se = out->auc_low = out->auc_high = NAN;
  if (P == 0 || N == 0) return;
  for (k = 0; k < nb; k++) {
    u += (double)b[k].pos * (below + 0.5 * (double)b[k].neg);
    below += (double)b[k].neg;
  }
  auc = u / ((double)P * (double)N);
  out->auc = auc;
  if (P < 2 || N < 2) return;
  /* DeLong: each positive's share of negatives it outranks, each negative's of positives above it */
  below = 0.0;
  for (k = 0; k < nb; k++) {
    double v10 = (below + 0.5 * (double)b[k].neg) / (double)N;
    double above = (double)P - pos_below - (double)b[k].pos;
    double v01 = (above + 0.5 * (double)b[k].pos) / (double)P;
    s10 += (double)b[k].pos * (v10 - auc) * (v10 - auc);
    s01 += (double)b[k].neg * (v01 - auc) * (v01 - auc);
    below += (double)b[k].neg;
    pos_below += (double)b[k].pos;
  }
  s10 /= (double)(P - 1);
  s01 /= (double)(N - 1);
  var = s10 / (double)P + s01 / (double)N;
  out->auc_se = sqrt(var);
  out->auc_low = auc - LQ_EVAL_Z95 * out->auc_se;
  out->auc_high = auc + LQ_EVAL_Z95 * out->auc_se;
  if (out->auc_low < 0.0) out->auc_low = 0.0;
  if (out->auc_high > 1.0) out->auc_high = 1.0;
}

static void add_to_group(lq_eval_group *g, const block *b) {
  if (g->leads == 0) g->lo = g->hi = b->score;
  if (b->score < g->lo) g->lo = b->score;
  if (b->score > g->hi) g->hi = b->score;
  g->leads += b->pos + b->neg;
  g->positives += b->pos;
}

static void empty_groups(lq_eval_group *g, int n) {
  int i;
  for (i = 0; i < n; i++) {
    g[i].lo = g[i].hi = NAN;
    g[i].leads = g[i].positives = 0;
  }
}

/* A block goes where the middle of its ranks falls, of `parts` equal parts of the m leads. */
static int part_of(double before, double size, double m, int parts) {
  int p = (int)floor((before + 0.5 * size) * parts / m);
  return p < 0 ? 0 : (p >= parts ? parts - 1 : p);
}

static void deciles_of(const block *b, size_t nb, uint64_t m, lq_eval_out *out) {
  double before = 0.0;
  size_t k;
  out->ndeciles = LQ_EVAL_DECILES;
  empty_groups(out->deciles, LQ_EVAL_DECILES);
  for (k = nb; k-- > 0;) {   /* best first */
    double size = (double)(b[k].pos + b[k].neg);
    add_to_group(&out->deciles[part_of(before, size, (double)m, LQ_EVAL_DECILES)], &b[k]);
    before += size;
  }
}

static void bands_of(const block *b, size_t nb, uint64_t m, int wanted, lq_eval_out *out) {
  lq_eval_group tmp[LQ_EVAL_MAX_BANDS];
  double before = 0.0;
  size_t k;
  int i, n = 0;
  if (wanted < 1) wanted = 1;
  if (wanted > LQ_EVAL_MAX_BANDS) wanted = LQ_EVAL_MAX_BANDS;
  empty_groups(tmp, LQ_EVAL_MAX_BANDS);
  for (k = 0; k < nb; k++) {   /* low to high */
    double size = (double)(b[k].pos + b[k].neg);
    int part = nb <= (size_t)wanted ? (int)k : part_of(before, size, (double)m, wanted);
    add_to_group(&tmp[part], &b[k]);
    before += size;
  }
  for (i = 0; i < wanted; i++)
    if (tmp[i].leads > 0) out->bands[n++] = tmp[i];
  out->nbands = n;
}

static int popcount64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#else
  int c = 0;
  while (x) { x &= x - 1; c++; }
  return c;
#endif
}

int lq_evaluate(const lq_eval_in *in, lq_eval_out *out, lq_allocator *a) {
  size_t n = in->n, i, npos = 0, nneg = 0, nb = 0, words = (n + 63) / 64;
  size_t counts_size = RADIX_PASSES * RADIX_SIZE * sizeof(size_t);
  uint64_t *pos = NULL, *neg = NULL, *tmp = NULL, *used = NULL, *posbits = NULL;
  size_t *counts = NULL;
  block *blocks = NULL;
  int c, k, rc = -1;

  out->leads = out->positives = out->negatives = out->left_out = out->no_score = 0;
  out->distinct_scores = 0;
  for (i = 0; i < n; i++) {
    uint8_t l = in->label[i];
    if (l > 1) out->left_out++;
    else if (isnan(in->score[i])) out->no_score++;
    else if (l) npos++;
    else nneg++;
  }
  pos = (uint64_t *)lq_mem_new(a, (npos + 1) * sizeof(uint64_t));
  neg = (uint64_t *)lq_mem_new(a, (nneg + 1) * sizeof(uint64_t));
  tmp = (uint64_t *)lq_mem_new(a, (npos > nneg ? npos : nneg) * sizeof(uint64_t) + sizeof(uint64_t));
  counts = (size_t *)lq_mem_new(a, counts_size);
  blocks = (block *)lq_mem_new(a, (npos + nneg + 1) * sizeof(block));
  used = (uint64_t *)lq_mem_new(a, (words + 1) * sizeof(uint64_t));
  posbits = (uint64_t *)lq_mem_new(a, (words + 1) * sizeof(uint64_t));
  if (!pos || !neg || !tmp || !counts || !blocks || !used || !posbits) goto done;
  memset(used, 0, (words + 1) * sizeof(uint64_t));
  memset(posbits, 0, (words + 1) * sizeof(uint64_t));

  npos = nneg = 0;
  for (i = 0; i < n; i++) {
    uint8_t l = in->label[i];
    double s = in->score[i];
    if (l > 1 || isnan(s)) continue;
    used[i / 64] |= (uint64_t)1 << (i % 64);
    if (l) {
      pos[npos++] = key_of(s);
      posbits[i / 64] |= (uint64_t)1 << (i % 64);
    } else {
      neg[nneg++] = key_of(s);
    }
  }
  out->positives = npos;
  out->negatives = nneg;
  out->leads = npos + nneg;

  radix_sort(pos, tmp, npos, counts);
  radix_sort(neg, tmp, nneg, counts);
  nb = merge_blocks(pos, npos, neg, nneg, blocks);
  out->distinct_scores = nb;

  auc_of(blocks, nb, npos, nneg, out);
  if (out->leads > 0) {
    deciles_of(blocks, nb, out->leads, out);
    bands_of(blocks, nb, out->leads, in->nbands, out);
  } else {
    out->ndeciles = out->nbands = 0;
  }

  for (c = 0; c < 2; c++) {   /* status and grade */
    const int32_t *codes = in->codes[c];
    int nc = in->ncodes[c];
    if (codes == NULL || out->code_leads[c] == NULL) continue;
    memset(out->code_leads[c], 0, (size_t)nc * sizeof(uint64_t));
    memset(out->code_positives[c], 0, (size_t)nc * sizeof(uint64_t));
    for (i = 0; i < n; i++) {
      int32_t code = codes[i];
      if (!((used[i / 64] >> (i % 64)) & 1) || code < 0 || code >= nc) continue;
      out->code_leads[c][code]++;
      out->code_positives[c][code] += (posbits[i / 64] >> (i % 64)) & 1;
    }
  }

  if (in->fired != NULL && out->fired_leads != NULL) {   /* rules: bit counts against the labels */
    size_t w, nw = in->words < words ? in->words : words;
    for (k = 0; k < in->nsets; k++) {
      const uint64_t *set = in->fired + (size_t)k * in->words;
      uint64_t fl = 0, fp = 0;
      for (w = 0; w < nw; w++) {
        uint64_t x = set[w] & used[w];
        fl += (uint64_t)popcount64(x);
        fp += (uint64_t)popcount64(x & posbits[w]);
      }
      out->fired_leads[k] = fl;
      out->fired_positives[k] = fp;
    }
  }
  rc = 0;
done:
  lq_mem_free(a, pos, (npos + 1) * sizeof(uint64_t));
  lq_mem_free(a, neg, (nneg + 1) * sizeof(uint64_t));
  lq_mem_free(a, tmp, (npos > nneg ? npos : nneg) * sizeof(uint64_t) + sizeof(uint64_t));
  lq_mem_free(a, counts, counts_size);
  lq_mem_free(a, blocks, (npos + nneg + 1) * sizeof(block));
  lq_mem_free(a, used, (words + 1) * sizeof(uint64_t));
  lq_mem_free(a, posbits, (words + 1) * sizeof(uint64_t));
  return rc;
}
