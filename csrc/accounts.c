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
  drop(a, r->accounts, n, sizeof *r->accounts);
  drop(a, r->top, n * (size_t)(r->top_k > 0 ? r->top_k : 1), sizeof *r->top);
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
  r->accounts = grab(&r->alloc, naccounts, sizeof *r->accounts);
  r->top = naccounts > SIZE_MAX / k ? NULL : grab(&r->alloc, naccounts * k, sizeof *r->top);
  if (!r->accounts || !r->top) {
    lq_rollup_free(r);
    return -1;
  }
  for (a = 0; a < naccounts; a++) {
    lq_rollup_account *acc = &r->accounts[a];
    memset(acc, 0, sizeof *acc);
    acc->max = NAN;
    acc->best_row = -1;
  }
  for (i = 0; i < nleads; i++) {
    int32_t code = account[i];
    double s = score[i];
    uint32_t bits = personas ? personas[i] : 0;
    lq_rollup_account *acc;
    size_t n, j;
    double *top;
    if (code < 0 || (size_t)code >= naccounts) continue;
    acc = &r->accounts[code];
    acc->contacts++;
    acc->present |= bits;
    if (s != s) continue;                       /* a missing score: counted as a contact only */
    n = acc->scored++;
    acc->sum += s;
    if (s >= engaged_at) {
      acc->engaged++;
      acc->engaged_personas |= bits;
    }
    if (n == 0 || s > acc->max) {
      acc->max = s;
      acc->best_row = (int64_t)i;
    }
    /* insert s into the account's k best, kept highest first; equal scores keep arrival order */
    top = r->top + (size_t)code * k;
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
  size_t n = r->accounts[account].scored, k = (size_t)r->top_k, j;
  const double *top = r->top + account * k;
  double sum = 0;
  if (n > k) n = k;
  for (j = 0; j < n; j++) sum += top[j];
  return sum;
}

double lq_rollup_top_mean(const lq_rollup *r, size_t account) {
  size_t n = r->accounts[account].scored, k = (size_t)r->top_k;
  if (n == 0) return NAN;
  if (n > k) n = k;
  return lq_rollup_top_sum(r, account) / (double)n;
}
