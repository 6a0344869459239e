/* Bins over the columns of a lead table, for profile and fit: plain C, no Lua.
**
** A binned column gives every row a bin number (0..nbins-1):
**   number, time  quantile intervals: bin i holds cuts[i-1] < v <= cuts[i] (the first has no low
**                 end, the last no high end); a column with few distinct values has a bin per value
**   category      a bin per value seen at least min_count times (most frequent first, at most
**                 max_values), then one "other" bin for the rest (and values never seen); values
**                 that differ only in case share a bin, as the rule language compares them
**   boolean       false, true
** and always a last bin for missing values, even when none is missing, so a rule can name it.
** Counting positives per bin reads an outcome as bytes: 0 negative, 1 positive, anything else
** left out (255 by convention).
*/
#ifndef LEADQ_BINS_H
#define LEADQ_BINS_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#if !defined(LQ_BINS_MAX)
#define LQ_BINS_MAX 250          /* value bins of one column at most: a bin number fits a byte */
#endif
#if !defined(LQ_BINS_SAMPLE)
#define LQ_BINS_SAMPLE 200000    /* values sampled (evenly spaced rows) to place quantile cuts */
#endif

#define LQ_OUTCOME_LEFT_OUT 255u

typedef enum lq_bin_kind { LQ_BIN_NUMBER = 0, LQ_BIN_CATEGORY, LQ_BIN_BOOLEAN } lq_bin_kind;

typedef struct lq_binned {
  lq_bin_kind kind;
  int nbins;            /* every bin: values, then other (category), then missing */
  int nvalues;          /* value bins */
  int other;            /* category: the "other" bin, or -1 */
  int missing;          /* the missing bin: nbins - 1 */
  int integral;         /* number: every value seen is a whole number */
  double *cuts;         /* number: nvalues - 1 upper edges */
  double *lo, *hi;      /* number: least and greatest value seen in each value bin */
  int32_t *codes;       /* category: the dictionary code of each value bin */
  int32_t *code_bin;    /* category: dictionary code -> bin (ncodes entries) */
  int32_t ncodes;
  uint8_t *row_bin;     /* one bin number per row */
  size_t nrows;
} lq_binned;

typedef struct lq_bin_options {
  int max_bins;         /* number: value bins at most (>= 2) */
  int min_count;        /* category: rows a value needs for a bin of its own */
  int max_values;       /* category: value bins at most (<= LQ_BINS_MAX) */
} lq_bin_options;

/* Bins column `col` of t (number, time, category or boolean). 0, -1 on no memory, -2 when the
** column's type cannot be binned (text, tags). On success *out owns its arrays. */
int lq_bin_column(const lq_table *t, int col, const lq_bin_options *opt, lq_allocator *a, lq_binned *out);
void lq_binned_free(lq_binned *b, lq_allocator *a);

/* Leads and positives per bin (arrays of b->nbins, zeroed here) over the rows whose outcome is 0 or 1. */
void lq_bin_counts(const lq_binned *b, const uint8_t *outcome, double *leads, double *positives);

/* The bin a value falls in: number (NaN: missing), category code (LQ_MISSING_CODE: missing). */
int lq_bin_of_number(const lq_binned *b, double v);
int lq_bin_of_code(const lq_binned *b, int32_t code);

#endif
