/* Evaluating a score against outcomes: plain C, no Lua.
**
** Input: a score per lead (double), a label per lead (0 negative, 1 positive, anything else left
** out), optional category codes per lead (status, grade) and optional bit sets of which rules fired
** (as model:score's `fired`). Output: counts and the statistics built on them.
**
** One sort: the scores of the positives and of the negatives are radix sorted apart (as 64-bit keys
** that order like the doubles), then merged into blocks of equal score with their positives and
** negatives. AUC (the Mann-Whitney statistic with ties counted half), its DeLong variance, deciles
** and calibration bands are all walks over those blocks; per status, grade and rule are counts.
** Ties are never split: a block of equal scores falls in one decile and one band, so a decile of a
** points score may hold more or fewer than a tenth of the leads (or none).
*/
#ifndef LEADQ_EVALUATE_H
#define LEADQ_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#if !defined(LQ_EVAL_DECILES)
#define LQ_EVAL_DECILES 10
#endif
#if !defined(LQ_EVAL_MAX_BANDS)
#define LQ_EVAL_MAX_BANDS 20      /* calibration bands: the distinct scores when as few, else quantiles */
#endif
#define LQ_EVAL_Z95 1.959963984540054

typedef struct lq_eval_in {
  size_t n;
  const double *score;          /* n; NaN: left out */
  const uint8_t *label;         /* n: 0, 1, else left out */
  const int32_t *codes[2];      /* status, grade codes (n each; < 0 or >= ncodes: none), or NULL */
  int ncodes[2];
  const uint64_t *fired;        /* nsets bit sets of `words` words each, or NULL */
  int nsets;
  size_t words;
  int nbands;                   /* calibration bands wanted (1 .. LQ_EVAL_MAX_BANDS) */
} lq_eval_in;

/* A score range (deciles best first, bands low to high) and its leads. */
typedef struct lq_eval_group {
  double lo, hi;                /* the lowest and highest score in it */
  uint64_t leads, positives;
} lq_eval_group;

typedef struct lq_eval_out {
  uint64_t leads, positives, negatives, left_out, no_score;
  double auc, auc_se, auc_low, auc_high;   /* auc_se: DeLong's standard error; NaN without both labels */
  uint64_t distinct_scores;
  int ndeciles, nbands;
  lq_eval_group deciles[LQ_EVAL_DECILES];   /* decile 1 = the top scores */
  lq_eval_group bands[LQ_EVAL_MAX_BANDS];
  uint64_t *code_leads[2], *code_positives[2];   /* the caller's arrays of ncodes, filled here */
  uint64_t *fired_leads, *fired_positives;       /* the caller's arrays of nsets, filled here */
} lq_eval_out;

/* 0, or -1 on no memory. */
int lq_evaluate(const lq_eval_in *in, lq_eval_out *out, lq_allocator *a);

/* Wilson's score interval for k successes in n trials at z (NaN, NaN when n is 0). */
void lq_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);

/* The ratio of two rates, a/n1 over c/n0, and its interval on the log scale (Katz). With a zero count
** the ratio is 0 (a = 0) or infinite (c = 0) and the interval's other end comes from half a lead in
** each cell (Haldane). NaN when n1 or n0 is 0, or both counts are. */
double lq_rate_ratio(uint64_t a, uint64_t n1, uint64_t c, uint64_t n0, double z, double *lo, double *hi);

#endif
