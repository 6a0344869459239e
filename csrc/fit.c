/* Cyclic boosting of per-column shape functions and a few pairs: see fit.h.
**
** The training rows keep exp(log-odds) rather than the log-odds: a step of d on a bin multiplies
** the rows of that bin by exp(d), computed once per bin, so a pass over a column costs a multiply
** and a division per row, not an exp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fit.h"
#include "random.h"

#define MAX_CELLS 289                /* 17 x 17: pair_bins 16 and the missing bin on each side */
#define PAIR_SAMPLE 100000           /* training rows (evenly spaced) that rank the pairs */

void lq_fit_default_options(lq_fit_options *o) {
  o->learning_rate = 0.1;
  o->max_rounds = 400;
  o->patience = 20;
  o->validation_share = 0.2;
  o->l2 = 2.0;
  o->min_samples = 10;
  o->interactions = 0;
  o->pair_bins = 6;
  o->max_train_rows = 200000;
  o->max_pair_rounds = 0;
  o->refit = 1;
  o->seed = 1;
}

void lq_fit_free(lq_fit_result *r, lq_allocator *a) {
  int j;
  if (r == NULL) return;
  if (r->shape != NULL) {
    for (j = 0; j < r->ncols; j++) lq_mem_free(a, r->shape[j], sizeof(double) * (size_t)r->nbins[j]);
    lq_mem_free(a, r->shape, sizeof(double *) * (size_t)r->ncols);
  }
  if (r->pairs != NULL) {
    for (j = 0; j < r->npairs; j++) {
      lq_fit_pair *p = &r->pairs[j];
      if (r->nbins != NULL) {
        lq_mem_free(a, p->coarse_a, (size_t)r->nbins[p->a]);
        lq_mem_free(a, p->coarse_b, (size_t)r->nbins[p->b]);
      }
      lq_mem_free(a, p->score, sizeof(double) * (size_t)(p->na * p->nb));
    }
    lq_mem_free(a, r->pairs, sizeof(lq_fit_pair) * (size_t)r->npairs);
  }
  lq_mem_free(a, r->nbins, sizeof(int) * (size_t)r->ncols);
  memset(r, 0, sizeof *r);
}

/* The training and validation rows, column by column, with what boosting keeps per row. */
typedef struct fit_work {
  lq_allocator *a;
  const lq_fit_options *opt;
  int ncols;
  size_t nt, nv;
  uint8_t *tbin, *vbin;      /* column j's bins at j * nt (training), j * nv (validation) */
  uint8_t *ty, *vy;
  double *e;                 /* exp(log-odds) of each training row */
  double *vf;                /* log-odds of each validation row */
  double *counts;            /* training rows per bin: column j at j * stride */
  int stride;                /* LQ_BINS_MAX + 2 */
} fit_work;

static double log_loss(double f, int y) {
  /* log(1 + exp(f)) - y f, without overflow */
  double l = f > 0 ? f + log1p(exp(-f)) : log1p(exp(f));
  return l - (y ? f : 0.0);
}

/* One column's gradient and curvature per bin over the training rows. */
static void column_sums(const fit_work *w, int j, double *g, double *h, int nbins) {
  const uint8_t *bin = w->tbin + (size_t)j * w->nt;
  const uint8_t *y = w->ty;
  const double *e = w->e;
  size_t i;
  memset(g, 0, sizeof(double) * (size_t)nbins);
  memset(h, 0, sizeof(double) * (size_t)nbins);
  for (i = 0; i < w->nt; i++) {
    double p = e[i] / (1.0 + e[i]);
    g[bin[i]] += (double)y[i] - p;
    h[bin[i]] += p * (1.0 - p);
  }
}

static void column_apply(fit_work *w, int j, const double *mult) {
  const uint8_t *bin = w->tbin + (size_t)j * w->nt;
  double *e = w->e;
  size_t i;
  for (i = 0; i < w->nt; i++) e[i] *= mult[bin[i]];
}

/* Damped Newton steps per bin; mult[b] = exp(step). Returns 1 when some bin moved. */
static int steps(const fit_work *w, const double *g, const double *h, const double *count, int nbins,
                 double *score, double *mult) {
  int b, moved = 0;
  for (b = 0; b < nbins; b++) {
    double d = 0.0;
    if (count[b] >= (double)w->opt->min_samples && count[b] > 0)
      d = w->opt->learning_rate * g[b] / (h[b] + w->opt->l2);
    score[b] += d;
    mult[b] = exp(d);
    moved |= d != 0.0;
  }
  return moved;
}

static double validation_loss(const fit_work *w, double intercept, double *const *shape,
                              const lq_fit_pair *pairs, int npairs) {
  size_t i;
  int j;
  double loss = 0.0;
  if (w->nv == 0) return 0.0;
  for (i = 0; i < w->nv; i++) w->vf[i] = intercept;
  for (j = 0; j < w->ncols; j++) {
    const uint8_t *bin = w->vbin + (size_t)j * w->nv;
    const double *s = shape[j];
    for (i = 0; i < w->nv; i++) w->vf[i] += s[bin[i]];
  }
  for (j = 0; j < npairs; j++) {
    const lq_fit_pair *p = &pairs[j];
    const uint8_t *ba = w->vbin + (size_t)p->a * w->nv, *bb = w->vbin + (size_t)p->b * w->nv;
    for (i = 0; i < w->nv; i++) w->vf[i] += p->score[p->coarse_a[ba[i]] * p->nb + p->coarse_b[bb[i]]];
  }
  for (i = 0; i < w->nv; i++) loss += log_loss(w->vf[i], w->vy[i]);
  return loss / (double)w->nv;
}

static double training_loss(const fit_work *w) {
  size_t i;
  double loss = 0.0;
  for (i = 0; i < w->nt; i++) loss += log_loss(log(w->e[i]), w->ty[i]);
  return w->nt > 0 ? loss / (double)w->nt : 0.0;
}

/* exp(log-odds) of every training row from the intercept, shapes and pairs. */
static void reset_rows(fit_work *w, double intercept, double *const *shape, const lq_fit_pair *pairs,
                       int npairs) {
  size_t i;
  int j;
  for (i = 0; i < w->nt; i++) w->e[i] = intercept;
  for (j = 0; j < w->ncols; j++) {
    const uint8_t *bin = w->tbin + (size_t)j * w->nt;
    for (i = 0; i < w->nt; i++) w->e[i] += shape[j][bin[i]];
  }
  for (j = 0; j < npairs; j++) {
    const lq_fit_pair *p = &pairs[j];
    const uint8_t *ba = w->tbin + (size_t)p->a * w->nt, *bb = w->tbin + (size_t)p->b * w->nt;
    for (i = 0; i < w->nt; i++) w->e[i] += p->score[p->coarse_a[ba[i]] * p->nb + p->coarse_b[bb[i]]];
  }
  for (i = 0; i < w->nt; i++) w->e[i] = exp(w->e[i]);
}

/* Coarse bins for a pair: numbers in runs of about equal training counts, categories their most
** frequent values and one bin for the rest, booleans as they are; missing always apart. */
static int coarse_map(const lq_binned *b, const double *count, int pair_bins, uint8_t *map) {
  int k, groups = 0;
  if (b->kind == LQ_BIN_BOOLEAN) {
    for (k = 0; k < b->nbins; k++) map[k] = (uint8_t)k;
    return b->nbins;
  }
  if (b->kind == LQ_BIN_CATEGORY) {
    int keep = b->nvalues < pair_bins - 1 ? b->nvalues : pair_bins - 1;
    for (k = 0; k < b->nbins; k++) map[k] = (uint8_t)(k < keep ? k : keep);
    map[b->missing] = (uint8_t)(keep + 1);
    return keep + 2;
  } else {
    double total = 0.0, seen = 0.0;
    for (k = 0; k < b->nvalues; k++) total += count[k];
    for (k = 0; k < b->nvalues; k++) {
      map[k] = (uint8_t)groups;
      seen += count[k];
      if (seen >= total * (double)(groups + 1) / (double)pair_bins && groups < pair_bins - 1 &&
          k + 1 < b->nvalues)
        groups++;
    }
    map[b->missing] = (uint8_t)(groups + 1);
    return groups + 2;
  }
}

typedef struct pair_rank { int a, b; double gain; } pair_rank;

static int by_gain(const void *x, const void *y) {
  const pair_rank *p = (const pair_rank *)x, *q = (const pair_rank *)y;
  if (p->gain != q->gain) return p->gain < q->gain ? 1 : -1;
  if (p->a != q->a) return p->a - q->a;
  return p->b - q->b;
}

/* Picks and boosts the pairs; the shapes stay as they are. */
static int fit_pairs(fit_work *w, const lq_binned *const *columns, lq_fit_result *r) {
  lq_allocator *a = w->a;
  const lq_fit_options *opt = w->opt;
  int ncols = w->ncols, pb = opt->pair_bins < 2 ? 2 : opt->pair_bins > 16 ? 16 : opt->pair_bins;
  int j, k, want = opt->interactions, npairs = 0, rc = -1, round;
  size_t i, step, ns;
  uint8_t *maps = NULL;               /* column j's fine -> coarse map at j * stride */
  int *ncoarse = NULL;
  double *g = NULL, *h = NULL, *best = NULL;
  pair_rank *ranks = NULL;
  size_t nranks = (size_t)ncols * (size_t)(ncols - 1) / 2, cells_total = 0;
  double best_loss;
  int best_round = 0;
  maps = (uint8_t *)lq_mem_zeroed(a, 1, (size_t)ncols * (size_t)w->stride);
  ncoarse = (int *)lq_mem_zeroed(a, 1, sizeof(int) * (size_t)ncols);
  g = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (w->nt > 0 ? w->nt : 1));
  h = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (w->nt > 0 ? w->nt : 1));
  ranks = (pair_rank *)lq_mem_zeroed(a, 1, sizeof(pair_rank) * nranks);
  if (maps == NULL || ncoarse == NULL || g == NULL || h == NULL || ranks == NULL) goto done;
  for (j = 0; j < ncols; j++)
    ncoarse[j] = coarse_map(columns[j], w->counts + (size_t)j * (size_t)w->stride, pb,
                            maps + (size_t)j * (size_t)w->stride);
  /* residuals of the main effects over a sample of the training rows */
  step = w->nt > PAIR_SAMPLE ? (w->nt + PAIR_SAMPLE - 1) / PAIR_SAMPLE : 1;
  ns = 0;
  for (i = 0; i < w->nt; i += step) {
    double p = w->e[i] / (1.0 + w->e[i]);
    g[ns] = (double)w->ty[i] - p;
    h[ns] = p * (1.0 - p);
    ns++;
  }
  {
    size_t n = 0;
    int ja, jb;
    double G[MAX_CELLS], H[MAX_CELLS], Ga[17], Ha[17], Gb[17], Hb[17];
    for (ja = 0; ja < ncols; ja++) {
      const uint8_t *ma = maps + (size_t)ja * (size_t)w->stride, *bina = w->tbin + (size_t)ja * w->nt;
      for (jb = ja + 1; jb < ncols; jb++) {
        const uint8_t *mb = maps + (size_t)jb * (size_t)w->stride, *binb = w->tbin + (size_t)jb * w->nt;
        int na = ncoarse[ja], nb = ncoarse[jb], c;
        double gain = 0.0;
        size_t s;
        memset(G, 0, sizeof G);
        memset(H, 0, sizeof H);
        for (i = 0, s = 0; s < ns; i += step, s++) {
          int cell = ma[bina[i]] * nb + mb[binb[i]];
          G[cell] += g[s];
          H[cell] += h[s];
        }
        memset(Ga, 0, sizeof Ga);
        memset(Ha, 0, sizeof Ha);
        memset(Gb, 0, sizeof Gb);
        memset(Hb, 0, sizeof Hb);
        for (c = 0; c < na * nb; c++) {
          gain += G[c] * G[c] / (H[c] + opt->l2);
          Ga[c / nb] += G[c];
          Ha[c / nb] += H[c];
          Gb[c % nb] += G[c];
          Hb[c % nb] += H[c];
        }
        for (c = 0; c < na; c++) gain -= Ga[c] * Ga[c] / (Ha[c] + opt->l2);
        for (c = 0; c < nb; c++) gain -= Gb[c] * Gb[c] / (Hb[c] + opt->l2);
        ranks[n].a = ja;
        ranks[n].b = jb;
        ranks[n].gain = gain;
        n++;
      }
    }
    qsort(ranks, nranks, sizeof(pair_rank), by_gain);
  }
  for (k = 0; k < want && (size_t)k < nranks && ranks[k].gain > 0; k++) npairs++;
  if (npairs == 0) { rc = 0; goto done; }
  r->pairs = (lq_fit_pair *)lq_mem_zeroed(a, 1, sizeof(lq_fit_pair) * (size_t)npairs);
  if (r->pairs == NULL) goto done;
  r->npairs = npairs;
  for (k = 0; k < npairs; k++) {
    lq_fit_pair *p = &r->pairs[k];
    p->a = ranks[k].a;
    p->b = ranks[k].b;
    p->gain = ranks[k].gain;
    p->na = ncoarse[p->a];
    p->nb = ncoarse[p->b];
    p->coarse_a = (uint8_t *)lq_mem_zeroed(a, 1, (size_t)r->nbins[p->a]);
    p->coarse_b = (uint8_t *)lq_mem_zeroed(a, 1, (size_t)r->nbins[p->b]);
    p->score = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)(p->na * p->nb));
    if (p->coarse_a == NULL || p->coarse_b == NULL || p->score == NULL) goto done;
    memcpy(p->coarse_a, maps + (size_t)p->a * (size_t)w->stride, (size_t)r->nbins[p->a]);
    memcpy(p->coarse_b, maps + (size_t)p->b * (size_t)w->stride, (size_t)r->nbins[p->b]);
    cells_total += (size_t)(p->na * p->nb);
  }
  best = (double *)lq_mem_zeroed(a, 1, sizeof(double) * cells_total);
  if (best == NULL) goto done;
  best_loss = validation_loss(w, r->intercept, r->shape, r->pairs, r->npairs);
  for (round = 1; round <= (opt->max_pair_rounds > 0 ? opt->max_pair_rounds : opt->max_rounds); round++) {
    size_t off = 0;
    for (k = 0; k < npairs; k++) {
      lq_fit_pair *p = &r->pairs[k];
      const uint8_t *ba = w->tbin + (size_t)p->a * w->nt, *bb = w->tbin + (size_t)p->b * w->nt;
      double G[MAX_CELLS], H[MAX_CELLS], C[MAX_CELLS], M[MAX_CELLS];
      int ncell = p->na * p->nb;
      memset(G, 0, sizeof G);
      memset(H, 0, sizeof H);
      memset(C, 0, sizeof C);
      for (i = 0; i < w->nt; i++) {
        int cell = p->coarse_a[ba[i]] * p->nb + p->coarse_b[bb[i]];
        double q = w->e[i] / (1.0 + w->e[i]);
        G[cell] += (double)w->ty[i] - q;
        H[cell] += q * (1.0 - q);
        C[cell] += 1.0;
      }
      steps(w, G, H, C, ncell, p->score, M);
      for (i = 0; i < w->nt; i++) w->e[i] *= M[p->coarse_a[ba[i]] * p->nb + p->coarse_b[bb[i]]];
      off += (size_t)ncell;
    }
    {
      double loss = validation_loss(w, r->intercept, r->shape, r->pairs, r->npairs);
      if (w->nv == 0 || loss < best_loss) {
        best_loss = loss;
        best_round = round;
        off = 0;
        for (k = 0; k < npairs; k++) {
          size_t ncell = (size_t)(r->pairs[k].na * r->pairs[k].nb);
          memcpy(best + off, r->pairs[k].score, sizeof(double) * ncell);
          off += ncell;
        }
      } else if (round - best_round >= opt->patience) {
        break;
      }
    }
  }
  {
    size_t off = 0;
    for (k = 0; k < npairs; k++) {
      size_t ncell = (size_t)(r->pairs[k].na * r->pairs[k].nb);
      memcpy(r->pairs[k].score, best + off, sizeof(double) * ncell);
      off += ncell;
    }
  }
  r->pair_rounds = best_round;
  rc = 0;
done:
  lq_mem_free(a, best, sizeof(double) * cells_total);
  lq_mem_free(a, maps, (size_t)ncols * (size_t)w->stride);
  lq_mem_free(a, ncoarse, sizeof(int) * (size_t)ncols);
  lq_mem_free(a, g, sizeof(double) * (w->nt > 0 ? w->nt : 1));
  lq_mem_free(a, h, sizeof(double) * (w->nt > 0 ? w->nt : 1));
  lq_mem_free(a, ranks, sizeof(pair_rank) * nranks);
  return rc;
}

/* Shapes and pair cells centred on their mean over the training rows; the intercept takes it. */
static void centre(fit_work *w, lq_fit_result *r) {
  int j, k;
  size_t i;
  for (j = 0; j < r->ncols; j++) {
    const double *count = w->counts + (size_t)j * (size_t)w->stride;
    double mean = 0.0;
    for (k = 0; k < r->nbins[j]; k++) mean += count[k] * r->shape[j][k];
    mean /= (double)w->nt;
    /* a bin no training row fell in stays at 0: a value never seen scores as the average lead */
    for (k = 0; k < r->nbins[j]; k++)
      if (count[k] > 0) r->shape[j][k] -= mean;
    r->intercept += mean;
  }
  for (j = 0; j < r->npairs; j++) {
    lq_fit_pair *p = &r->pairs[j];
    const uint8_t *ba = w->tbin + (size_t)p->a * w->nt, *bb = w->tbin + (size_t)p->b * w->nt;
    double mean = 0.0;
    for (i = 0; i < w->nt; i++) mean += p->score[p->coarse_a[ba[i]] * p->nb + p->coarse_b[bb[i]]];
    mean /= (double)w->nt;
    for (k = 0; k < p->na * p->nb; k++) p->score[k] -= mean;
    r->intercept += mean;
  }
}

int lq_fit(const lq_binned *const *columns, int ncols, const uint8_t *outcome, const lq_fit_options *opt,
           lq_allocator *a, lq_fit_result *out) {
  fit_work w;
  size_t nrows = ncols > 0 ? columns[0]->nrows : 0, labelled = 0, positives = 0, i, t, v;
  uint8_t *role = NULL;             /* per row: 0 unused, 1 training, 2 validation */
  double **best = NULL, *g = NULL, *h = NULL, *mult = NULL;
  double best_loss;
  int j, round, rc = -1, best_round = 0;
  lq_random rng;
  memset(out, 0, sizeof *out);
  memset(&w, 0, sizeof w);
  w.a = a;
  w.opt = opt;
  w.ncols = ncols;
  w.stride = LQ_BINS_MAX + 2;
  for (i = 0; i < nrows; i++) {
    if (outcome[i] > 1) continue;
    labelled++;
    positives += outcome[i];
  }
  if (labelled == 0 || positives == 0 || positives == labelled) return -2;

  /* the inner split, then a sample of each side when there are many rows */
  role = (uint8_t *)lq_mem_zeroed(a, 1, nrows);
  if (role == NULL) return -1;
  lq_random_seed(&rng, opt->seed);
  {
    double vs = opt->validation_share, tkeep = 1.0, vkeep = 1.0;
    double max_t = (double)opt->max_train_rows;
    if (max_t > 0 && (double)labelled * (1 - vs) > max_t) tkeep = max_t / ((double)labelled * (1 - vs));
    if (max_t > 0 && (double)labelled * vs > max_t / 2) vkeep = (max_t / 2) / ((double)labelled * vs);
    for (i = 0; i < nrows; i++) {
      double u, k;
      if (outcome[i] > 1) continue;
      u = lq_random_uniform(&rng);
      k = lq_random_uniform(&rng);
      if (u < vs) {
        if (k < vkeep) { role[i] = 2; w.nv++; }
      } else if (k < tkeep) {
        role[i] = 1;
        w.nt++;
      }
    }
  }
  if (w.nt == 0) { rc = -2; goto fail; }
  w.tbin = (uint8_t *)lq_mem_zeroed(a, 1, (size_t)ncols * w.nt);
  w.vbin = (uint8_t *)lq_mem_zeroed(a, 1, (size_t)ncols * w.nv);
  w.ty = (uint8_t *)lq_mem_zeroed(a, 1, w.nt);
  w.vy = (uint8_t *)lq_mem_zeroed(a, 1, w.nv);
  w.e = (double *)lq_mem_zeroed(a, 1, sizeof(double) * w.nt);
  w.vf = (double *)lq_mem_zeroed(a, 1, sizeof(double) * w.nv);
  w.counts = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)ncols * (size_t)w.stride);
  g = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)w.stride);
  h = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)w.stride);
  mult = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)w.stride);
  out->ncols = ncols;
  out->nbins = (int *)lq_mem_zeroed(a, 1, sizeof(int) * (size_t)ncols);
  out->shape = (double **)lq_mem_zeroed(a, 1, sizeof(double *) * (size_t)ncols);
  best = (double **)lq_mem_zeroed(a, 1, sizeof(double *) * (size_t)ncols);
  if (w.tbin == NULL || w.vbin == NULL || w.ty == NULL || w.vy == NULL || w.e == NULL || w.vf == NULL ||
      w.counts == NULL || g == NULL || h == NULL || mult == NULL || out->nbins == NULL || out->shape == NULL ||
      best == NULL)
    goto fail;
  for (j = 0; j < ncols; j++) {
    out->nbins[j] = columns[j]->nbins;
    out->shape[j] = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)columns[j]->nbins);
    best[j] = (double *)lq_mem_zeroed(a, 1, sizeof(double) * (size_t)columns[j]->nbins);
    if (out->shape[j] == NULL || best[j] == NULL) goto fail;
  }
  for (i = 0, t = 0, v = 0; i < nrows; i++) {
    if (role[i] == 1) w.ty[t++] = outcome[i];
    else if (role[i] == 2) w.vy[v++] = outcome[i];
  }
  for (j = 0; j < ncols; j++) {
    const uint8_t *src = columns[j]->row_bin;
    uint8_t *tb = w.tbin + (size_t)j * w.nt, *vb = w.vbin + (size_t)j * w.nv;
    double *count = w.counts + (size_t)j * (size_t)w.stride;
    for (i = 0, t = 0, v = 0; i < nrows; i++) {
      if (role[i] == 1) {
        tb[t++] = src[i];
        count[src[i]] += 1.0;
      } else if (role[i] == 2) {
        vb[v++] = src[i];
      }
    }
  }
  lq_mem_free(a, role, nrows);
  role = NULL;
  {
    double tp = 0;
    for (t = 0; t < w.nt; t++) tp += w.ty[t];
    if (tp == 0) tp = 0.5;                   /* a sample without a positive: start near zero */
    if (tp == (double)w.nt) tp = (double)w.nt - 0.5;
    out->intercept = log(tp / ((double)w.nt - tp));
  }
  for (t = 0; t < w.nt; t++) w.e[t] = exp(out->intercept);

  /* the main effects: rounds over the columns until the validation loss stops improving */
  best_loss = w.nv > 0 ? validation_loss(&w, out->intercept, out->shape, NULL, 0) : HUGE_VAL;
  for (round = 1; round <= opt->max_rounds; round++) {
    int moved = 0;
    double loss;
    for (j = 0; j < ncols; j++) {
      int nb = out->nbins[j];
      column_sums(&w, j, g, h, nb);
      if (steps(&w, g, h, w.counts + (size_t)j * (size_t)w.stride, nb, out->shape[j], mult)) {
        column_apply(&w, j, mult);
        moved = 1;
      }
    }
    loss = w.nv > 0 ? validation_loss(&w, out->intercept, out->shape, NULL, 0) : training_loss(&w);
    if (loss < best_loss) {
      best_loss = loss;
      best_round = round;
      for (j = 0; j < ncols; j++) memcpy(best[j], out->shape[j], sizeof(double) * (size_t)out->nbins[j]);
    } else if (round - best_round >= opt->patience) {
      break;
    }
    if (!moved) break;
  }
  out->rounds = round > opt->max_rounds ? opt->max_rounds : round;
  out->best_round = best_round;
  for (j = 0; j < ncols; j++) memcpy(out->shape[j], best[j], sizeof(double) * (size_t)out->nbins[j]);
  reset_rows(&w, out->intercept, out->shape, NULL, 0);

  if (opt->interactions > 0 && ncols >= 2) {
    if (fit_pairs(&w, columns, out) != 0) goto fail;
    reset_rows(&w, out->intercept, out->shape, out->pairs, out->npairs);
  }
  centre(&w, out);
  out->train_rows = w.nt;
  out->validation_rows = w.nv;
  out->positives = positives;
  out->train_loss = training_loss(&w);
  out->validation_loss = validation_loss(&w, out->intercept, out->shape, out->pairs, out->npairs);
  rc = 0;
fail:
  if (best != NULL) {
    for (j = 0; j < ncols; j++)
      if (best[j] != NULL) lq_mem_free(a, best[j], sizeof(double) * (size_t)columns[j]->nbins);
    lq_mem_free(a, best, sizeof(double *) * (size_t)ncols);
  }
  lq_mem_free(a, role, nrows);
  lq_mem_free(a, w.tbin, (size_t)ncols * w.nt);
  lq_mem_free(a, w.vbin, (size_t)ncols * w.nv);
  lq_mem_free(a, w.ty, w.nt);
  lq_mem_free(a, w.vy, w.nv);
  lq_mem_free(a, w.e, sizeof(double) * w.nt);
  lq_mem_free(a, w.vf, sizeof(double) * w.nv);
  lq_mem_free(a, w.counts, sizeof(double) * (size_t)ncols * (size_t)w.stride);
  lq_mem_free(a, g, sizeof(double) * (size_t)w.stride);
  lq_mem_free(a, h, sizeof(double) * (size_t)w.stride);
  lq_mem_free(a, mult, sizeof(double) * (size_t)w.stride);
  if (rc != 0) {
    lq_fit_free(out, a);
    return rc;
  }
  if (opt->refit && out->validation_rows > 0 && (opt->max_train_rows == 0 || labelled <= opt->max_train_rows)) {
    lq_fit_options again = *opt;
    lq_fit_result all;
    again.refit = 0;
    again.validation_share = 0.0;
    again.max_train_rows = 0;
    again.max_rounds = out->best_round > 0 ? out->best_round : 1;
    again.max_pair_rounds = out->pair_rounds > 0 ? out->pair_rounds : 1;
    again.interactions = out->npairs;
    rc = lq_fit(columns, ncols, outcome, &again, a, &all);
    if (rc != 0) {
      lq_fit_free(out, a);
      return rc;
    }
    all.rounds = out->rounds;                  /* what the split decided */
    all.best_round = out->best_round;
    all.pair_rounds = out->pair_rounds;
    all.validation_rows = out->validation_rows;
    all.validation_loss = out->validation_loss;
    lq_fit_free(out, a);
    *out = all;
  }
  return 0;
}
