/* Account rollups: contacts' scores and signals gathered into one row per account. Plain C, no Lua.
**
** Input, per lead (row): the account's index (or -1: no account), a score (NaN: missing), and a
** bit mask of the declared personas the lead matches. Output, per account: contacts, engaged
** contacts (score >= engaged_at), sum and max of the scores, the k best scores (their sum and mean),
** the row of the best contact, and which personas are present and which are engaged.
** One pass over the leads; each account keeps its k best scores sorted, so k is kept small.
*/
#ifndef LEADQ_ACCOUNTS_H
#define LEADQ_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>
#include "table.h"

#if !defined(LQ_ROLLUP_MAX_K)
#define LQ_ROLLUP_MAX_K 64
#endif
#if !defined(LQ_ROLLUP_MAX_PERSONAS)
#define LQ_ROLLUP_MAX_PERSONAS 32
#endif

/* One account's figures, kept together: a lead touches one record (one or two cache lines), not
** nine arrays. Its k best scores follow in `top`, at account * top_k. */
typedef struct lq_rollup_account {
  double sum;             /* sum of the scores (0 when none) */
  double max;             /* NaN when no contact has a score */
  int64_t best_row;       /* row of the best score, -1 when none; ties: the earliest row */
  uint32_t contacts;      /* leads mapped to the account */
  uint32_t scored;        /* of them, with a score */
  uint32_t engaged;       /* of them, score >= engaged_at */
  uint32_t present;       /* persona bits of any contact */
  uint32_t engaged_personas; /* persona bits of engaged contacts */
} lq_rollup_account;

typedef struct lq_rollup {
  lq_allocator alloc;
  size_t naccounts;
  int top_k;
  double engaged_at;
  lq_rollup_account *accounts;
  double *top;            /* naccounts * top_k, each account's best scores, highest first */
} lq_rollup;

/* A rollup in a safe empty state; lq_rollup_free may always be called on it. */
void lq_rollup_init(lq_rollup *r, lq_allocator alloc);
/* 0 on success, -1 on no memory. account[i] in [-1, naccounts); personas may be NULL. */
int lq_rollup_run(lq_rollup *r, size_t naccounts, int top_k, double engaged_at, size_t nleads,
                  const int32_t *account, const double *score, const uint32_t *personas);
void lq_rollup_free(lq_rollup *r);

/* The mean and sum of an account's k best scores (fewer when it has fewer scored contacts). */
double lq_rollup_top_sum(const lq_rollup *r, size_t account);
double lq_rollup_top_mean(const lq_rollup *r, size_t account);

/* Dedupe. lq_table_copy_rows fills the empty table `out` with src's columns (names, types, dictionaries
** in the same order), flags and source, and the rows where skip[row] == 0 (skip NULL: every row).
** lq_column_replace_values: in the category column `col`, every row whose value is from[i] gets to[i]
** (n pairs; when a value is listed twice, the later pair wins). Both return 0, -1 on no memory, -2 on misuse. */
int lq_table_copy_rows(lq_table *out, const lq_table *src, const uint8_t *skip);
int lq_column_replace_values(lq_table *t, int col, size_t n, const char *const *from, const size_t *from_len,
                             const char *const *to, const size_t *to_len);

#endif
