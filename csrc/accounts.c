/* Account rollups (see accounts.h). */
#include <math.h>
#include <string.h>
#include "accounts.h"

static void *grab(lq_allocator *a, size_t n, size_t size) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / size) return NULL;
  return a->fn(a->ud, NULL, 0, n * size);
}

static void drop(lq_allocator *a, void *p, size_t n, size_t size) {
  if (p != NULL) a->fn(a->ud, p, (n == 0 ? 1 : n) * size, 0);
}

void lq_rollup_init(lq_rollup *r, lq_allocator alloc) {
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
}

void lq_rollup_free(lq_rollup *r) {
  size_t n = r->naccounts;
  lq_allocator *a = &r->alloc;
  drop(a, r->contacts, n, sizeof *r->contacts);
  drop(a, r->scored, n, sizeof *r->scored);
  drop(a, r->engaged, n, sizeof *r->engaged);
  drop(a, r->sum, n, sizeof *r->sum);
  drop(a, r->max, n, sizeof *r->max);
  drop(a, r->best_row, n, sizeof *r->best_row);
  drop(a, r->top, n * (size_t)(r->top_k > 0 ? r->top_k : 1), sizeof *r->top);
  drop(a, r->present, n, sizeof *r->present);
  drop(a, r->engaged_personas, n, sizeof *r->engaged_personas);
  lq_rollup_init(r, r->alloc);
}

int lq_rollup_run(lq_rollup *r, size_t naccounts, int top_k, double engaged_at, size_t nleads,
                  const int32_t *account, const double *score, const uint32_t *personas) {
  size_t a, i, k = (size_t)top_k;
  lq_rollup_free(r);
  if (top_k < 1 || top_k > LQ_ROLLUP_MAX_K) return -1;
  r->naccounts = naccounts;
  r->top_k = top_k;
  r->engaged_at = engaged_at;
  r->contacts = grab(&r->alloc, naccounts, sizeof *r->contacts);
  r->scored = grab(&r->alloc, naccounts, sizeof *r->scored);
  r->engaged = grab(&r->alloc, naccounts, sizeof *r->engaged);
  r->sum = grab(&r->alloc, naccounts, sizeof *r->sum);
  r->max = grab(&r->alloc, naccounts, sizeof *r->max);
  r->best_row = grab(&r->alloc, naccounts, sizeof *r->best_row);
  r->top = naccounts > SIZE_MAX / k ? NULL : grab(&r->alloc, naccounts * k, sizeof *r->top);
  r->present = grab(&r->alloc, naccounts, sizeof *r->present);
  r->engaged_personas = grab(&r->alloc, naccounts, sizeof *r->engaged_personas);
  if (!r->contacts || !r->scored || !r->engaged || !r->sum || !r->max || !r->best_row || !r->top ||
      !r->present || !r->engaged_personas) {
    lq_rollup_free(r);
    return -1;
  }
  memset(r->contacts, 0, naccounts * sizeof *r->contacts);
  memset(r->scored, 0, naccounts * sizeof *r->scored);
  memset(r->engaged, 0, naccounts * sizeof *r->engaged);
  memset(r->present, 0, naccounts * sizeof *r->present);
  memset(r->engaged_personas, 0, naccounts * sizeof *r->engaged_personas);
  for (a = 0; a < naccounts; a++) {
    r->sum[a] = 0;
    r->max[a] = NAN;
    r->best_row[a] = -1;
  }
  for (i = 0; i < nleads; i++) {
    int32_t acc = account[i];
    double s = score[i];
    uint32_t bits = personas ? personas[i] : 0;
    size_t n, j;
    double *top;
    if (acc < 0 || (size_t)acc >= naccounts) continue;
    a = (size_t)acc;
    r->contacts[a]++;
    r->present[a] |= bits;
    if (s != s) continue;                       /* a missing score: counted as a contact only */
    n = r->scored[a]++;
    r->sum[a] += s;
    if (s >= engaged_at) {
      r->engaged[a]++;
      r->engaged_personas[a] |= bits;
    }
    if (n == 0 || s > r->max[a]) {
      r->max[a] = s;
      r->best_row[a] = (int64_t)i;
    }
    /* insert s into the account's k best, kept highest first; equal scores keep arrival order */
    top = r->top + a * k;
    if (n < k) {
      j = n;
    } else if (s > top[k - 1]) {
      j = k - 1;
    } else {
      continue;
    }
    while (j > 0 && top[j - 1] < s) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = s;
  }
  return 0;
}

double lq_rollup_top_sum(const lq_rollup *r, size_t account) {
  size_t n = r->scored[account], k = (size_t)r->top_k, j;
  const double *top = r->top + account * k;
  double sum = 0;
  if (n > k) n = k;
  for (j = 0; j < n; j++) sum += top[j];
  return sum;
}

double lq_rollup_top_mean(const lq_rollup *r, size_t account) {
  size_t n = r->scored[account], k = (size_t)r->top_k;
  if (n == 0) return NAN;
  if (n > k) n = k;
  return lq_rollup_top_sum(r, account) / (double)n;
}
