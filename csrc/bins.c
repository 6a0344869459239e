/* Bins over the columns of a lead table: see bins.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bins.h"

static int compare_doubles(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

void lq_binned_free(lq_binned *b, lq_allocator *a) {
  if (b == NULL) return;
  lq_mem_free(a, b->cuts, sizeof(double) * (size_t)(b->nvalues > 1 ? b->nvalues - 1 : 0));
  lq_mem_free(a, b->lo, sizeof(double) * (size_t)b->nvalues);
  lq_mem_free(a, b->hi, sizeof(double) * (size_t)b->nvalues);
  lq_mem_free(a, b->codes, sizeof(int32_t) * (size_t)b->nvalues);
  lq_mem_free(a, b->code_bin, sizeof(int32_t) * (size_t)b->ncodes);
  lq_mem_free(a, b->row_bin, b->nrows);
  memset(b, 0, sizeof *b);
}

int lq_bin_of_number(const lq_binned *b, double v) {
  int lo = 0, hi = b->nvalues - 1;     /* the first bin whose upper edge is >= v; the last has none */
  if (v != v) return b->missing;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (v <= b->cuts[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

int lq_bin_of_code(const lq_binned *b, int32_t code) {
  if (code < 0) return b->missing;
  if (code >= b->ncodes) return b->other;
  return b->code_bin[code];
}

/* Quantile cuts from a sample of the present values; a bin per value when there are few. */
static int bin_numbers(const lq_column *c, size_t nrows, const lq_bin_options *opt, lq_allocator *a,
                       lq_binned *out) {
  size_t present = 0, i, n = 0, stride = 1, distinct = 0;
  double *sample, *cuts;
  int ncuts = 0, max_bins = opt->max_bins < 2 ? 2 : opt->max_bins;
  if (max_bins > LQ_BINS_MAX) max_bins = LQ_BINS_MAX;
  for (i = 0; i < nrows; i++) present += c->numbers[i] == c->numbers[i];
  if (present > LQ_BINS_SAMPLE) stride = (present + LQ_BINS_SAMPLE - 1) / LQ_BINS_SAMPLE;
  sample = (double *)lq_mem_new(a, sizeof(double) * (present / stride + 1));
  cuts = (double *)lq_mem_new(a, sizeof(double) * (size_t)max_bins);
  if (sample == NULL || cuts == NULL) {
    lq_mem_free(a, sample, sizeof(double) * (present / stride + 1));
    lq_mem_free(a, cuts, sizeof(double) * (size_t)max_bins);
    return -1;
  }
  {
    size_t seen = 0;
    for (i = 0; i < nrows; i++) {
      double v = c->numbers[i];
      if (v != v) continue;
      if (seen++ % stride == 0) sample[n++] = v;
    }
  }
  qsort(sample, n, sizeof(double), compare_doubles);
  for (i = 0; i < n; i++) distinct += (i == 0 || sample[i] != sample[i - 1]);
  if (distinct <= (size_t)max_bins) {
    for (i = 0; i < n; i++)             /* every distinct value but the greatest closes a bin */
      if (i + 1 < n && sample[i + 1] != sample[i]) cuts[ncuts++] = sample[i];
  } else {
    int k;
    for (k = 1; k < max_bins; k++) {
      double q = sample[(size_t)k * n / (size_t)max_bins];
      if (q >= sample[n - 1]) break;     /* the last bin keeps the greatest value */
      if (ncuts == 0 || q > cuts[ncuts - 1]) cuts[ncuts++] = q;
    }
  }
  lq_mem_free(a, sample, sizeof(double) * (present / stride + 1));
  out->nvalues = ncuts + 1;
  out->nbins = out->nvalues + 1;
  out->missing = out->nvalues;
  out->other = -1;
  out->cuts = (double *)lq_mem_new(a, sizeof(double) * (size_t)ncuts);
  out->lo = (double *)lq_mem_new(a, sizeof(double) * (size_t)out->nvalues);
  out->hi = (double *)lq_mem_new(a, sizeof(double) * (size_t)out->nvalues);
  if (out->cuts == NULL || out->lo == NULL || out->hi == NULL) {
    lq_mem_free(a, cuts, sizeof(double) * (size_t)max_bins);
    return -1;
  }
  memcpy(out->cuts, cuts, sizeof(double) * (size_t)ncuts);
  lq_mem_free(a, cuts, sizeof(double) * (size_t)max_bins);
  for (i = 0; i < (size_t)out->nvalues; i++) {
    out->lo[i] = HUGE_VAL;
    out->hi[i] = -HUGE_VAL;
  }
  out->integral = 1;
  for (i = 0; i < nrows; i++) {
    double v = c->numbers[i];
    int bin = lq_bin_of_number(out, v);
    out->row_bin[i] = (uint8_t)bin;
    if (bin == out->missing) continue;
    if (v < out->lo[bin]) out->lo[bin] = v;
    if (v > out->hi[bin]) out->hi[bin] = v;
    if (out->integral && v != floor(v)) out->integral = 0;
  }
  return 0;
}

typedef struct code_count { int32_t code; size_t count; } code_count;

static int by_count(const void *x, const void *y) {
  const code_count *a = (const code_count *)x, *b = (const code_count *)y;
  if (a->count != b->count) return a->count < b->count ? 1 : -1;
  return (a->code > b->code) - (a->code < b->code);
}

/* Each code's first code with the same text in lower case (ASCII), as the rule language compares
** texts: "Sales" and "sales" share a bin, or a rule naming one would also take the other's rows. */
static int fold_codes(const lq_dict *d, lq_allocator *a, int32_t *canonical) {
  lq_dict folded;
  char small[256];
  int32_t k, *first_of;
  int rc = 0;
  first_of = (int32_t *)lq_mem_new(a, sizeof(int32_t) * (size_t)(d->count > 0 ? d->count : 1));
  if (first_of == NULL) return -1;
  lq_dict_init(&folded);
  for (k = 0; k < d->count; k++) {
    size_t len, j;
    const char *s = lq_dict_string(d, k, &len);
    char *buf = len <= sizeof small ? small : (char *)lq_mem_new(a, len);
    int32_t f, before = folded.count;
    if (buf == NULL) { rc = -1; break; }
    for (j = 0; j < len; j++) buf[j] = (char)(s[j] >= 'A' && s[j] <= 'Z' ? s[j] - 'A' + 'a' : s[j]);
    f = lq_dict_intern(&folded, a, buf, len);
    if (buf != small) lq_mem_free(a, buf, len);
    if (f < 0) { rc = -1; break; }
    if (f == before) first_of[f] = k;     /* a text not seen before: this code owns it */
    canonical[k] = first_of[f];
  }
  lq_dict_free(&folded, a);
  lq_mem_free(a, first_of, sizeof(int32_t) * (size_t)(d->count > 0 ? d->count : 1));
  return rc;
}

static int bin_categories(const lq_column *c, size_t nrows, const lq_bin_options *opt, lq_allocator *a,
                          lq_binned *out) {
  int32_t ncodes = c->dict.count, k;
  size_t i;
  int kept = 0, max_values = opt->max_values < 1 ? 1 : opt->max_values;
  code_count *counts;
  int32_t *canonical;
  if (max_values > LQ_BINS_MAX) max_values = LQ_BINS_MAX;
  counts = (code_count *)lq_mem_new(a, sizeof(code_count) * (size_t)ncodes);
  canonical = (int32_t *)lq_mem_new(a, sizeof(int32_t) * (size_t)ncodes);
  out->ncodes = ncodes;
  out->code_bin = (int32_t *)lq_mem_new(a, sizeof(int32_t) * (size_t)ncodes);
  if (counts == NULL || canonical == NULL || out->code_bin == NULL || fold_codes(&c->dict, a, canonical) != 0) {
    lq_mem_free(a, counts, sizeof(code_count) * (size_t)ncodes);
    lq_mem_free(a, canonical, sizeof(int32_t) * (size_t)ncodes);
    return -1;
  }
  for (k = 0; k < ncodes; k++) {
    counts[k].code = k;
    counts[k].count = 0;
  }
  for (i = 0; i < nrows; i++) {
    int32_t code = c->codes[i];
    if (code >= 0 && code < ncodes) counts[canonical[code]].count++;
  }
  qsort(counts, (size_t)ncodes, sizeof(code_count), by_count);
  while (kept < ncodes && kept < max_values && counts[kept].count > 0 &&
         counts[kept].count >= (size_t)(opt->min_count < 1 ? 1 : opt->min_count))
    kept++;
  out->nvalues = kept;
  out->other = kept;
  out->missing = kept + 1;
  out->nbins = kept + 2;
  out->codes = (int32_t *)lq_mem_new(a, sizeof(int32_t) * (size_t)kept);
  if (out->codes == NULL) {
    lq_mem_free(a, counts, sizeof(code_count) * (size_t)ncodes);
    lq_mem_free(a, canonical, sizeof(int32_t) * (size_t)ncodes);
    return -1;
  }
  for (k = 0; k < ncodes; k++) out->code_bin[k] = out->other;
  for (k = 0; k < kept; k++) {
    out->codes[k] = counts[k].code;
    out->code_bin[counts[k].code] = k;
  }
  for (k = 0; k < ncodes; k++) out->code_bin[k] = out->code_bin[canonical[k]];   /* canonical[k] <= k */
  lq_mem_free(a, counts, sizeof(code_count) * (size_t)ncodes);
  lq_mem_free(a, canonical, sizeof(int32_t) * (size_t)ncodes);
  for (i = 0; i < nrows; i++) out->row_bin[i] = (uint8_t)lq_bin_of_code(out, c->codes[i]);
  return 0;
}

static void bin_booleans(const lq_column *c, size_t nrows, lq_binned *out) {
  size_t i;
  out->nvalues = 2;
  out->other = -1;
  out->missing = 2;
  out->nbins = 3;
  for (i = 0; i < nrows; i++) {
    uint8_t v = c->bools[i];
    out->row_bin[i] = v == 0 ? 0 : v == 1 ? 1 : 2;
  }
}

int lq_bin_column(const lq_table *t, int col, const lq_bin_options *opt, lq_allocator *a, lq_binned *out) {
  const lq_column *c;
  int rc = 0;
  memset(out, 0, sizeof *out);
  if (col < 0 || col >= t->ncols) return -2;
  c = t->cols[col];
  if (c->type != LQ_NUMBER && c->type != LQ_TIME && c->type != LQ_CATEGORY && c->type != LQ_BOOLEAN) return -2;
  out->nrows = t->nrows;
  out->row_bin = (uint8_t *)lq_mem_new(a, t->nrows);
  if (out->row_bin == NULL) return -1;
  if (c->type == LQ_NUMBER || c->type == LQ_TIME) {
    out->kind = LQ_BIN_NUMBER;
    rc = bin_numbers(c, t->nrows, opt, a, out);
  } else if (c->type == LQ_CATEGORY) {
    out->kind = LQ_BIN_CATEGORY;
    rc = bin_categories(c, t->nrows, opt, a, out);
  } else {
    out->kind = LQ_BIN_BOOLEAN;
    bin_booleans(c, t->nrows, out);
  }
  if (rc != 0) lq_binned_free(out, a);
  return rc;
}

void lq_bin_counts(const lq_binned *b, const uint8_t *outcome, double *leads, double *positives) {
  size_t i;
  memset(leads, 0, sizeof(double) * (size_t)b->nbins);
  memset(positives, 0, sizeof(double) * (size_t)b->nbins);
  for (i = 0; i < b->nrows; i++) {
    uint8_t y = outcome[i];
    if (y > 1) continue;
    leads[b->row_bin[i]] += 1.0;
    positives[b->row_bin[i]] += (double)y;
  }
}
