/* libFuzzer target: the snapshot reader (csrc/snapshot.c). Most inputs have their header's size and
** checksum and each section's checksum made right first, so that the fuzzer gets past the checksums
** to the checks of the tables themselves; one in seven is read as it comes. A snapshot that reads
** must hold tables whose every cell can be visited: codes in their dictionaries, offsets in range;
** read in place (as a mapped file is) it must give the same tables, or be refused too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static void fail_at(int line, const char *what) {
  fprintf(stderr, "fuzz_snapshot.c:%d: %s does not hold\n", line, what);
  abort();
}
#define need(x) ((x) ? (void)0 : fail_at(__LINE__, #x))

/* The layout snapshot.h describes: a 48-byte header (size at 32, checksum of bytes 0..40 at 40), then
** sections of { kind u32, 0 u32, length u64, checksum u64 } and their bytes padded to 8, each
** checksum seeded with (kind << 56) ^ length over the padded bytes. */
static void make_checksums_right(unsigned char *d, size_t len) {
  uint64_t size = len, sum;
  size_t at = 48;
  if (len < 48 || memcmp(d, LQ_SNAPSHOT_MAGIC, LQ_SNAPSHOT_MAGIC_LEN) != 0) return;
  memcpy(d + 32, &size, 8);
  sum = lq_snapshot_checksum(0, d, 40);
  memcpy(d + 40, &sum, 8);
  while (len - at >= 24) {
    uint32_t kind;
    uint64_t length, room = len - at - 24;
    memcpy(&kind, d + at, 4);
    memcpy(&length, d + at + 8, 8);
    if (length > room || ((length + 7) & ~(uint64_t)7) > room) return;
    length = (length + 7) & ~(uint64_t)7;
    {
      uint64_t stated;
      memcpy(&stated, d + at + 8, 8);
      sum = lq_snapshot_checksum(((uint64_t)kind << 56) ^ stated, d + at + 24, (size_t)length);
    }
    memcpy(d + at + 16, &sum, 8);
    at += 24 + (size_t)length;
  }
}

static void visit(const lq_table *t) {
  int i;
  size_t r;
  for (i = 0; i < t->ncols; i++) {
    const lq_column *c = t->cols[i];
    for (r = 0; r < t->nrows; r++) {
      size_t len;
      (void)lq_column_is_missing(c, r);
      if (c->type == LQ_CATEGORY && c->codes[r] >= 0) need(lq_dict_string(&c->dict, c->codes[r], &len) != NULL);
      if (c->type == LQ_TEXT) need(c->offsets[r] <= c->offsets[r + 1] && c->offsets[r + 1] <= c->text_len);
      if (c->type == LQ_TAGS) {
        uint64_t k;
        need(c->tag_offsets[r] <= c->tag_offsets[r + 1] && c->tag_offsets[r + 1] <= c->tag_len);
        for (k = c->tag_offsets[r]; k < c->tag_offsets[r + 1]; k++)
          need(lq_dict_string(&c->dict, c->tag_codes[k], &len) != NULL);
      }
    }
  }
}

/* Two tables alike: rows, columns, types, every cell (bytes of numbers, so NaN equals NaN). */
static void same_tables(const lq_table *a, const lq_table *b) {
  int i;
  size_t r;
  need(a->nrows == b->nrows && a->ncols == b->ncols && a->flags == b->flags);
  for (i = 0; i < a->ncols; i++) {
    const lq_column *x = a->cols[i], *y = b->cols[i];
    need(x->type == y->type && strcmp(x->name, y->name) == 0 && x->dict.count == y->dict.count);
    for (r = 0; r < a->nrows; r++) {
      size_t lx, ly;
      const char *sx, *sy;
      switch (x->type) {
        case LQ_NUMBER: case LQ_TIME: need(memcmp(&x->numbers[r], &y->numbers[r], sizeof(double)) == 0); break;
        case LQ_BOOLEAN: need(x->bools[r] == y->bools[r]); break;
        case LQ_CATEGORY:
          need(x->codes[r] == y->codes[r]);
          sx = lq_dict_string(&x->dict, x->codes[r], &lx);
          sy = lq_dict_string(&y->dict, y->codes[r], &ly);
          need(lx == ly && (lx == 0 || memcmp(sx, sy, lx) == 0));
          break;
        case LQ_TEXT:
          need(x->text_missing[r] == y->text_missing[r] && x->offsets[r + 1] == y->offsets[r + 1]);
          need(memcmp(x->text + x->offsets[r], y->text + y->offsets[r], x->offsets[r + 1] - x->offsets[r]) == 0);
          break;
        case LQ_TAGS:
          need(x->text_missing[r] == y->text_missing[r] && x->tag_offsets[r + 1] == y->tag_offsets[r + 1]);
          break;
        default: break;
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lq_allocator a = { lq_system_alloc, NULL };
  lq_table *tables[LQ_SNAPSHOT_MAX_TABLES], *borrowed[LQ_SNAPSHOT_MAX_TABLES];
  unsigned char *copy = (unsigned char *)malloc(size ? size : 1);
  char err[512], err_b[512];
  int n = 0, nb = 0, i, status;
  need(copy != NULL);
  if (size > 0) memcpy(copy, data, size);
  if (size % 7 != 0) make_checksums_right(copy, size);
  /* read in place (as a mapped file is) and copied: the same tables, or refused both ways */
  status = lq_snapshot_read_bytes(copy, size, 1, a, borrowed, LQ_SNAPSHOT_MAX_TABLES, &nb, err_b, sizeof err_b);
  if (lq_snapshot_read_bytes(copy, size, 0, a, tables, LQ_SNAPSHOT_MAX_TABLES, &n, err, sizeof err) == 0) {
    need(status == 0 && nb == n);
    for (i = 0; i < n; i++) {
      visit(tables[i]);
      visit(borrowed[i]);
      same_tables(tables[i], borrowed[i]);
      lq_table_free(tables[i]);
      lq_table_free(borrowed[i]);
    }
  } else {
    need(n == 0 && strncmp(err, "[bytes]: ", 9) == 0);
    /* refused both ways; the first problem named may differ when there are several (in place, every
    ** section's header and checksum is checked before any value) */
    need(status != 0 && nb == 0 && strncmp(err_b, "[bytes]: ", 9) == 0);
  }
  free(copy);
  return 0;
}
