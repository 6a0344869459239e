/* libFuzzer target: the CSV reader (csrc/csv_reader.c). The first byte picks the options (header
** on or off, a separator or detection, strict, a small type sample); the rest is read twice, from
** a string and from a file, and both tables must be the same (unless the bytes start as gzip's do,
** which a file's reader inflates and a string's does not). This build reads files 64 bytes at a
** time (-DLQ_CSV_CHUNK=64), so records straddle refills as they do in files of gigabytes. The file
** is read a third time on 2 threads, cut every few bytes (the first byte's top bits say how many),
** and every value and dictionary must equal the one-thread read's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv_reader.h"

/* Every reject message and every cell read once: ASan sees a stray byte. */
static void read_all(const lq_table *t) {
  char buf[LQ_MESSAGE_MAX];
  size_t i, r;
  int c;
  for (i = 0; i < t->nrejects; i++) lq_reject_message(t, &t->rejects[i], buf, sizeof buf);
  for (c = 0; c < t->ncols; c++)
    for (r = 0; r < t->nrows; r++) (void)lq_column_is_missing(t->cols[c], r);
}

static int same_tables(const lq_table *a, const lq_table *b) {
  size_t i;
  int c;
  if (a->nrows != b->nrows || a->ncols != b->ncols || a->nrejects != b->nrejects) return 0;
  for (c = 0; c < a->ncols; c++)
    if (a->cols[c]->type != b->cols[c]->type || strcmp(a->cols[c]->name, b->cols[c]->name) != 0) return 0;
  for (i = 0; i < a->nrejects; i++)
    if (a->rejects[i].line != b->rejects[i].line || a->rejects[i].column != b->rejects[i].column ||
        strcmp(a->rejects[i].reason, b->rejects[i].reason) != 0)
      return 0;
  return 1;
}

/* Every cell and every dictionary in code order: what a threaded read must reproduce. */
static int same_values(const lq_table *a, const lq_table *b) {
  size_t r;
  int c, k;
  if (!same_tables(a, b)) return 0;
  for (c = 0; c < a->ncols; c++) {
    const lq_column *x = a->cols[c], *y = b->cols[c];
    if (x->dict.count != y->dict.count) return 0;
    for (k = 0; k < x->dict.count; k++) {
      size_t lx, ly;
      const char *sx = lq_dict_string(&x->dict, k, &lx), *sy = lq_dict_string(&y->dict, k, &ly);
      if (lx != ly || memcmp(sx, sy, lx) != 0) return 0;
    }
    for (r = 0; r < a->nrows; r++) {
      switch (x->type) {
        case LQ_NUMBER: case LQ_TIME:
          if (memcmp(&x->numbers[r], &y->numbers[r], sizeof(double)) != 0) return 0;
          break;
        case LQ_BOOLEAN:
          if (x->bools[r] != y->bools[r]) return 0;
          break;
        case LQ_CATEGORY:
          if (x->codes[r] != y->codes[r]) return 0;
          break;
        case LQ_TEXT:
          if (x->text_missing[r] != y->text_missing[r] ||
              x->offsets[r + 1] - x->offsets[r] != y->offsets[r + 1] - y->offsets[r] ||
              memcmp(x->text + x->offsets[r], y->text + y->offsets[r], (size_t)(x->offsets[r + 1] - x->offsets[r])) != 0)
            return 0;
          break;
        case LQ_TAGS:
          if (x->text_missing[r] != y->text_missing[r] ||
              x->tag_offsets[r + 1] - x->tag_offsets[r] != y->tag_offsets[r + 1] - y->tag_offsets[r] ||
              memcmp(x->tag_codes + x->tag_offsets[r], y->tag_codes + y->tag_offsets[r],
                     (size_t)(x->tag_offsets[r + 1] - x->tag_offsets[r]) * sizeof(int32_t)) != 0)
            return 0;
          break;
        default:
          break;
      }
    }
  }
  for (r = 0; r < a->nrejects; r++)
    if (a->rejects[r].record != b->rejects[r].record) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char separators[4] = { 0, ',', ';', '\t' };
  lq_allocator a = { lq_system_alloc, NULL };
  lq_csv_options o;
  lq_table *from_string = NULL, *from_file = NULL, *threaded = NULL;
  char err[LQ_MESSAGE_MAX], err2[LQ_MESSAGE_MAX], err3[LQ_MESSAGE_MAX], path[64];
  int st, st2, st3;
  size_t cut_every;
  FILE *f;
  if (size < 1) return 0;
  lq_csv_options_init(&o);
  o.header = !(data[0] & 1);
  o.separator = separators[(data[0] >> 1) & 3];
  o.strict = (data[0] >> 3) & 1;
  o.infer_rows = (data[0] & 16) ? 2 : LQ_CSV_INFER_ROWS;
  cut_every = 1 + (size_t)(data[0] >> 5) * 5;
  o.source = "fuzz";
  data++;
  size--;
  st = lq_csv_read_string((const char *)data, size, &o, a, &from_string, err, sizeof err);
  if (st == LQ_CSV_OK) read_all(from_string);

  snprintf(path, sizeof path, "/tmp/leadq-fuzz-csv-%ld.csv", (long)getpid());
  f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  st2 = lq_csv_read_file(path, &o, a, &from_file, err2, sizeof err2);
  o.threads = 2;
  o.chunk_bytes = cut_every;
  st3 = lq_csv_read_file(path, &o, a, &threaded, err3, sizeof err3);
  unlink(path);
  if (st2 == LQ_CSV_OK) read_all(from_file);
  if (st3 == LQ_CSV_OK) read_all(threaded);
  if (st2 != st3 || (st2 == LQ_CSV_OK && !same_values(from_file, threaded)) ||
      (st2 != LQ_CSV_OK && strcmp(err2, err3) != 0)) {
    fprintf(stderr, "fuzz_csv: 1 and 2 threads (cut every %zu bytes) read differently (%d: %s / %d: %s)\n",
            cut_every, st2, err2, st3, err3);
    abort();
  }
  if (threaded) lq_table_free(threaded);

  /* a file that starts as gzip does (1f 8b) is inflated, or refused as bad gzip data, by design; a
  ** string is always read as it is: only files that are not gzip must read as their string does */
  if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) &&
      (st != st2 || (st == LQ_CSV_OK && !same_tables(from_string, from_file)) ||
       (st != LQ_CSV_OK && strcmp(err, err2) != 0))) {
    fprintf(stderr, "fuzz_csv: the string and the file read differently (%d: %s / %d: %s)\n", st, err, st2, err2);
    abort();
  }
  if (from_string) lq_table_free(from_string);
  if (from_file) lq_table_free(from_file);
  return 0;
}
