/* Fitting an additive model of binned columns to a binary outcome: plain C, no Lua.
**
** The model is an Explainable Boosting Machine's shape: log-odds = intercept + sum over columns of
** shape[column][bin of the row] + a few pair terms over coarse bins of two columns. It is fitted by
** cyclic gradient boosting: round after round, each column in turn takes a damped Newton step per
** bin on the logistic loss (learning rate, an L2 term added to each bin's curvature, no step for a
** bin with fewer than min_samples training rows), until the loss on an inner validation split
** (rows drawn by the seed) has not improved for `patience` rounds; the best round is kept. Pairs
** are then chosen by the gain a full table over their coarse cells would give on the residuals
** (FAST), and boosted the same way with the columns' shapes held. With refit, the rounds the split
** chose are then run again on all the labelled rows, the validation rows included. Shapes come out centred: their
** mean over the training rows is 0, the intercept holds the rest. Same input and seed: same result.
*/
#ifndef LEADQ_FIT_H
#define LEADQ_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "bins.h"

typedef struct lq_fit_options {
  double learning_rate;     /* 0.1 */
  int max_rounds;           /* rounds over every column at most */
  int patience;             /* rounds without a better validation loss before stopping */
  double validation_share;  /* labelled rows set aside to decide when to stop */
  double l2;                /* added to each bin's curvature: small bins move less */
  int min_samples;          /* training rows a bin needs to move at all */
  int interactions;         /* pairs at most */
  int pair_bins;            /* coarse bins per side of a pair (2..16), missing one more */
  size_t max_train_rows;    /* more labelled rows than this: a sample of them trains (0: all) */
  int max_pair_rounds;      /* rounds over the pairs at most (0: max_rounds) */
  int refit;                /* 1: once the split has said how many rounds, fit again on every labelled
                               row for that many (when they are not sampled) */
  uint64_t seed;
} lq_fit_options;

typedef struct lq_fit_pair {
  int a, b;                 /* the two columns */
  int na, nb;               /* their coarse bins */
  uint8_t *coarse_a;        /* fine bin of column a -> its coarse bin (nbins of a) */
  uint8_t *coarse_b;
  double *score;            /* na * nb log-odds, cell (i, j) at i * nb + j */
  double gain;
} lq_fit_pair;

typedef struct lq_fit_result {
  double intercept;
  int ncols;
  int *nbins;
  double **shape;           /* [column][bin] log-odds */
  int npairs;
  lq_fit_pair *pairs;
  int rounds, best_round, pair_rounds;
  size_t train_rows, validation_rows, positives;
  double train_loss, validation_loss;   /* mean log loss of the final model */
} lq_fit_result;

void lq_fit_default_options(lq_fit_options *o);

/* Fits columns[0..ncols-1] (all over the same rows) to outcome (0, 1, other: left out).
** 0: *out filled (free with lq_fit_free); -1: no memory; -2: no labelled row or one class only. */
int lq_fit(const lq_binned *const *columns, int ncols, const uint8_t *outcome, const lq_fit_options *opt,
           lq_allocator *a, lq_fit_result *out);
void lq_fit_free(lq_fit_result *r, lq_allocator *a);

#endif
