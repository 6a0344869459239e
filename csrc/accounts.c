/* Account rollups (see accounts.h). */
#include <math.h>
#include <string.h>
#include "accounts.h"

void lq_rollup_init(lq_rollup *r, lq_allocator alloc) {
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
}

void lq_rollup_free(lq_rollup *r) {
  size_t n = r->naccounts;
  lq_allocator *a = &r->alloc;
  lq_mem_free(a, r->accounts, n * sizeof *r->accounts);
  lq_mem_free(a, r->top, (n * (size_t)(r->top_k > 0 ? r->top_k : 1)) * sizeof *r->top);
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
  r->accounts = lq_mem_array(&r->alloc, naccounts, sizeof *r->accounts);
  r->top = naccounts > SIZE_MAX / k ? NULL : lq_mem_array(&r->alloc, naccounts * k, sizeof *r->top);
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

/* ---- dedupe: the kept leads and the events moved to their survivors, column at a time ---- */

/* The same strings in the same order: codes stay the codes of the source. */
static int copy_dict(lq_dict *to, lq_allocator *a, const lq_dict *from) {
  int32_t code;
  for (code = 0; code < from->count; code++) {
    size_t len;
    const char *s = lq_dict_string(from, code, &len);
    if (lq_dict_intern_hash(to, a, s, len, from->hashes[code]) != code) return -1;
  }
  return 0;
}

/* Row `row` of src into the row being built of out's column `col` (same type, same dictionary). */
static int copy_cell(lq_table *out, int col, const lq_column *src, size_t row) {
  lq_column *c = out->cols[col];
  size_t at = out->nrows;
  uint64_t i;
  switch (src->type) {
    case LQ_NUMBER: case LQ_TIME: c->numbers[at] = src->numbers[row]; return 0;
    case LQ_BOOLEAN: c->bools[at] = src->bools[row]; return 0;
    case LQ_CATEGORY: c->codes[at] = src->codes[row]; return 0;
    case LQ_TEXT:
      if (src->text_missing[row]) return 0;
      return lq_column_set_string(out, col, src->text + src->offsets[row],
                                  (size_t)(src->offsets[row + 1] - src->offsets[row]));
    case LQ_TAGS:
      if (src->text_missing[row]) return 0;
      if (lq_column_tags_begin(out, col) != 0) return -1;
      for (i = src->tag_offsets[row]; i < src->tag_offsets[row + 1]; i++) {
        size_t len;
        const char *s = lq_dict_string(&src->dict, src->tag_codes[i], &len);
        if (lq_column_tags_add(out, col, s, len) != 0) return -1;
      }
      return 0;
    default: return -2;
  }
}

int lq_table_copy_rows(lq_table *out, const lq_table *src, const uint8_t *skip) {
  size_t row, kept = 0;
  int c;
  if (out->ncols != 0 || out->nrows != 0) return -2;
  for (c = 0; c < src->ncols; c++) {
    const lq_column *sc = src->cols[c];
    int oc = lq_table_add_column(out, sc->name, sc->type);
    if (oc < 0) return -1;
    out->cols[oc]->tag_separator = sc->tag_separator;
    if ((sc->type == LQ_CATEGORY || sc->type == LQ_TAGS) && copy_dict(&out->cols[oc]->dict, &out->alloc, &sc->dict) != 0)
      return -1;
  }
  out->flags = src->flags;
  if (src->source && lq_table_set_source(out, src->source, strlen(src->source)) != 0) return -1;
  for (row = 0; row < src->nrows; row++) kept += skip == NULL || !skip[row];
  if (lq_table_reserve(out, kept) != 0) return -1;
  for (c = 0; c < src->ncols; c++) {   /* text arenas at their final size at once */
    const lq_column *sc = src->cols[c];
    if (sc->type == LQ_TEXT && lq_column_reserve_text(out, c, (size_t)sc->offsets[src->nrows] + 1) != 0) return -1;
  }
  for (row = 0; row < src->nrows; row++) {
    if (skip != NULL && skip[row]) continue;
    if (lq_table_begin_row(out) != 0) return -1;
    for (c = 0; c < src->ncols; c++) {
      if (copy_cell(out, c, src->cols[c], row) != 0) {
        lq_table_cancel_row(out);
        return -1;
      }
    }
    lq_table_end_row(out);
  }
  return 0;
}

int lq_column_replace_values(lq_table *t, int col, size_t n, const char *const *from, const size_t *from_len,
                             const char *const *to, const size_t *to_len) {
  lq_column *c = t->cols[col];
  lq_allocator *a = &t->alloc;
  size_t i, row;
  int32_t ncodes, code, *map;
  if (c->type != LQ_CATEGORY) return -2;
  ncodes = c->dict.count;
  map = (int32_t *)lq_mem_array(a, (size_t)ncodes, sizeof *map);
  if (map == NULL) return -1;
  for (code = 0; code < ncodes; code++) map[code] = code;
  for (i = 0; i < n; i++) {        /* a value absent from the column has no row to move */
    int32_t f = lq_dict_find(&c->dict, from[i], from_len[i]), k;
    if (f < 0 || f >= ncodes) continue;
    k = lq_dict_intern(&c->dict, a, to[i], to_len[i]);
    if (k < 0) {
      lq_mem_free(a, map, (size_t)ncodes * sizeof *map);
      return -1;
    }
    map[f] = k;
  }
  for (row = 0; row < t->nrows; row++) {
    code = c->codes[row];
    if (code >= 0) c->codes[row] = map[code];
  }
  lq_mem_free(a, map, (size_t)ncodes * sizeof *map);
  return 0;
}
