/* Rows of other tables after a table's: room and codes first, then copies (table_append.h). */
#include <string.h>

#include "table_append.h"

/* Room for `need` bytes of text or tag codes in a column (array of `elem`-sized items). */
static int room(lq_allocator *a, void **p, size_t *cap, size_t elem, size_t need) {
  void *np;
  if (need <= *cap) return 0;
  if (need > ((size_t)-1) / elem) return -1;
  np = lq_mem_call(a, *p, *p ? *cap * elem : 0, need * elem);
  if (np == NULL) return -1;
  lq_advise_huge_pages(np, need * elem);
  *p = np;
  *cap = need;
  return 0;
}

/* src's code in dst's dictionary, interned on first use. */
static int intern_code(lq_dict *dst, lq_allocator *a, const lq_dict *src, int32_t *recode, int32_t code) {
  size_t len;
  const char *s;
  if (code < 0 || recode[code] >= 0) return 0;
  s = lq_dict_string(src, code, &len);
  recode[code] = lq_dict_intern_hash(dst, a, s, len, src->hashes[code]);
  return recode[code] < 0 ? -1 : 0;
}

/* The codes of part p's column c in the table's dictionary. A part appended whole has in its
** dictionary only values of its rows, in the order they first appear there: code order is that
** order. A part appended from a later row is walked row by row instead. */
static int recode_column(lq_table *dst, lq_table_part *p, int c) {
  lq_allocator *a = &dst->alloc;
  const lq_column *s = p->src->cols[c];
  lq_dict *d = &dst->cols[c]->dict;
  int32_t *recode;
  size_t n = s->dict.count > 0 ? (size_t)s->dict.count : 1, r;
  if ((recode = (int32_t *)lq_mem_call(a, NULL, 0, n * sizeof *recode)) == NULL) return -1;
  memset(recode, 0xff, n * sizeof *recode);
  p->recode[c] = recode;
  p->recode_len[c] = n;
  if (p->from == 0) {
    int32_t code;
    for (code = 0; code < s->dict.count; code++)
      if (intern_code(d, a, &s->dict, recode, code) != 0) return -1;
  } else if (s->type == LQ_CATEGORY) {
    for (r = p->from; r < p->src->nrows; r++)
      if (intern_code(d, a, &s->dict, recode, s->codes[r]) != 0) return -1;
  } else {
    for (r = (size_t)s->tag_offsets[p->from]; r < (size_t)s->tag_offsets[p->src->nrows]; r++)
      if (intern_code(d, a, &s->dict, recode, s->tag_codes[r]) != 0) return -1;
  }
  return 0;
}

int lq_table_append_prepare(lq_table *dst, lq_table_part *parts, int nparts) {
  lq_allocator *a = &dst->alloc;
  const size_t ncols = (size_t)(dst->ncols > 0 ? dst->ncols : 1);
  size_t rows = dst->nrows;
  int k, c;
  for (k = 0; k < nparts; k++) {
    lq_table_part *p = &parts[k];
    p->text_at = (uint64_t *)lq_mem_call(a, NULL, 0, ncols * sizeof(uint64_t));
    p->recode = (int32_t **)lq_mem_call(a, NULL, 0, ncols * sizeof(int32_t *));
    p->recode_len = (size_t *)lq_mem_call(a, NULL, 0, ncols * sizeof(size_t));
    if (p->text_at == NULL || p->recode == NULL || p->recode_len == NULL) return -1;
    memset(p->recode, 0, ncols * sizeof(int32_t *));
    memset(p->recode_len, 0, ncols * sizeof(size_t));
    if (p->from > p->src->nrows) p->from = p->src->nrows;
    p->at = rows;
    p->rows = p->src->nrows - p->from;
    rows += p->rows;
  }
  /* text and tag codes grow below without lq_table_reserve: mapped columns are copied first */
  if (rows > dst->nrows && lq_table_own(dst) != 0) return -1;
  if (rows > dst->cap && lq_table_reserve(dst, rows) != 0) return -1;
  for (c = 0; c < dst->ncols; c++) {
    lq_column *d = dst->cols[c];
    uint64_t at = d->type == LQ_TEXT ? (uint64_t)d->text_len : (uint64_t)d->tag_len;
    for (k = 0; k < nparts; k++) {
      lq_table_part *p = &parts[k];
      const lq_column *s = p->src->cols[c];
      const size_t end = p->src->nrows;
      p->text_at[c] = at;
      if (d->type == LQ_TEXT) at += s->offsets[end] - s->offsets[p->from];
      else if (d->type == LQ_TAGS) at += s->tag_offsets[end] - s->tag_offsets[p->from];
      if ((d->type == LQ_CATEGORY || d->type == LQ_TAGS) && recode_column(dst, p, c) != 0) return -1;
    }
    if (d->type == LQ_TEXT && room(a, (void **)&d->text, &d->text_cap, 1, (size_t)at) != 0) return -1;
    if (d->type == LQ_TAGS && room(a, (void **)&d->tag_codes, &d->tag_cap, sizeof(int32_t), (size_t)at) != 0) return -1;
  }
  return 0;
}

void lq_table_append_copy(lq_table *dst, const lq_table_part *p, int c) {
  const size_t from = p->from, n = p->rows, at = p->at;
  lq_column *d = dst->cols[c];
  const lq_column *s = p->src->cols[c];
  const int32_t *recode = p->recode[c];
  size_t r;
  if (n == 0) return;
  switch (d->type) {
    case LQ_NUMBER: case LQ_TIME:
      memcpy(d->numbers + at, s->numbers + from, n * sizeof(double));
      break;
    case LQ_BOOLEAN:
      memcpy(d->bools + at, s->bools + from, n);
      break;
    case LQ_CATEGORY:
      for (r = 0; r < n; r++) {
        int32_t code = s->codes[from + r];
        d->codes[at + r] = code < 0 ? code : recode[code];
      }
      break;
    case LQ_TEXT: {
      const uint64_t first = s->offsets[from], base = p->text_at[c], bytes = s->offsets[from + n] - first;
      if (bytes > 0) memcpy(d->text + base, s->text + first, (size_t)bytes);   /* no arena when no bytes */
      for (r = 0; r < n; r++) d->offsets[at + r + 1] = base + (s->offsets[from + r + 1] - first);
      memcpy(d->text_missing + at, s->text_missing + from, n);
      break;
    }
    case LQ_TAGS: {
      const uint64_t first = s->tag_offsets[from], count = s->tag_offsets[from + n] - first, base = p->text_at[c];
      for (r = 0; r < count; r++) d->tag_codes[base + r] = recode[s->tag_codes[first + r]];
      for (r = 0; r < n; r++) d->tag_offsets[at + r + 1] = base + (s->tag_offsets[from + r + 1] - first);
      memcpy(d->text_missing + at, s->text_missing + from, n);
      break;
    }
    default:
      break;
  }
}

void lq_table_append_finish(lq_table *dst, lq_table_part *parts, int nparts, int ok) {
  lq_allocator *a = &dst->alloc;
  const size_t ncols = (size_t)(dst->ncols > 0 ? dst->ncols : 1);
  int k, c;
  if (ok && nparts > 0) {
    const lq_table_part *last = &parts[nparts - 1];
    dst->nrows = last->at + last->rows;
    for (c = 0; c < dst->ncols; c++) {
      lq_column *d = dst->cols[c];
      if (d->type == LQ_TEXT) d->text_len = (size_t)d->offsets[dst->nrows];
      if (d->type == LQ_TAGS) d->tag_len = (size_t)d->tag_offsets[dst->nrows];
    }
  }
  for (k = 0; k < nparts; k++) {
    lq_table_part *p = &parts[k];
    if (p->recode != NULL)
      for (c = 0; c < dst->ncols; c++)
        if (p->recode[c] != NULL) lq_mem_call(a, p->recode[c], p->recode_len[c] * sizeof(int32_t), 0);
    if (p->text_at) lq_mem_call(a, p->text_at, ncols * sizeof(uint64_t), 0);
    if (p->recode) lq_mem_call(a, p->recode, ncols * sizeof(int32_t *), 0);
    if (p->recode_len) lq_mem_call(a, p->recode_len, ncols * sizeof(size_t), 0);
    p->text_at = NULL;
    p->recode = NULL;
    p->recode_len = NULL;
  }
}
