/* Columns written as CSV (csv_writer.h): a buffer of lines handed to stdio in large writes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csv_writer.h"

typedef struct out_buffer {
  FILE *f;
  char data[1 << 16];
  size_t n;
  int failed;
} out_buffer;

static void flush_out(out_buffer *b) {
  if (b->n > 0 && !b->failed && fwrite(b->data, 1, b->n, b->f) != b->n) b->failed = 1;
  b->n = 0;
}

static void put(out_buffer *b, const char *s, size_t len) {
  while (len > 0) {
    size_t room = sizeof b->data - b->n, take = len < room ? len : room;
    memcpy(b->data + b->n, s, take);
    b->n += take;
    s += take;
    len -= take;
    if (b->n == sizeof b->data) flush_out(b);
  }
}

static void put_char(out_buffer *b, char c) {
  if (b->n == sizeof b->data) flush_out(b);
  b->data[b->n++] = c;
}

void lq_csv_put_field(lq_csv_put_fn put_bytes, void *ud, const char *s, size_t len) {
  size_t i, from;
  for (i = 0; i < len; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') break;
  if (i == len) {
    put_bytes(ud, s, len);
    return;
  }
  put_bytes(ud, "\"", 1);
  for (i = from = 0; i < len; i++)
    if (s[i] == '"') {   /* the run up to and with the quote, then the quote again */
      put_bytes(ud, s + from, i + 1 - from);
      put_bytes(ud, "\"", 1);
      from = i + 1;
    }
  put_bytes(ud, s + from, len - from);
  put_bytes(ud, "\"", 1);
}

static void put_to_buffer(void *ud, const char *s, size_t len) {
  put((out_buffer *)ud, s, len);
}

static void put_text(out_buffer *b, const char *s, size_t len) {
  lq_csv_put_field(put_to_buffer, b, s, len);
}

/* A whole number's digits, as "%lld" writes them (most cells of a scores file: totals, points). */
static size_t put_whole(char *end, long long v) {
  char *p = end;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  return (size_t)(end - p);
}

static void put_number(out_buffer *b, double v) {
  char tmp[64];
  int n;
  if (isnan(v)) return;
  if (v == floor(v) && v > -1e15 && v < 1e15) {
    size_t len = put_whole(tmp + sizeof tmp, (long long)v);
    put(b, tmp + sizeof tmp - len, len);
    return;
  }
  n = snprintf(tmp, sizeof tmp, "%.6g", v);
  if (n > 0) put(b, tmp, (size_t)n);
}

static void put_cell(out_buffer *b, const lq_column *c, size_t row) {
  size_t len;
  const char *s;
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME:
      put_number(b, c->numbers[row]);
      return;
    case LQ_BOOLEAN:
      if (c->bools[row] == LQ_MISSING_BOOL) return;
      if (c->bools[row]) put(b, "true", 4);
      else put(b, "false", 5);
      return;
    case LQ_CATEGORY:
      if (c->codes[row] == LQ_MISSING_CODE) return;
      s = lq_dict_string(&c->dict, c->codes[row], &len);
      put_text(b, s, len);
      return;
    case LQ_TEXT:
      if (c->text_missing[row]) return;
      put_text(b, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
      return;
    default:   /* tags have no one CSV text: the caller writes such columns itself */
      return;
  }
}

int lq_csv_write_columns(FILE *f, const lq_csv_out_column *cols, int ncols, size_t nrows) {
  out_buffer *b = (out_buffer *)malloc(sizeof *b);   /* 64 KiB: off the stack */
  size_t row;
  int k, failed;
  if (b == NULL) {
    errno = ENOMEM;
    return -1;
  }
  b->f = f;
  b->n = 0;
  b->failed = 0;
  for (k = 0; k < ncols; k++) {
    if (k > 0) put_char(b, ',');
    put_text(b, cols[k].name, strlen(cols[k].name));
  }
  put_char(b, '\n');
  for (row = 0; row < nrows && !b->failed; row++) {
    for (k = 0; k < ncols; k++) {
      if (k > 0) put_char(b, ',');
      if (cols[k].column == NULL) put_number(b, (double)(row + 1));
      else put_cell(b, cols[k].column, row);
    }
    put_char(b, '\n');
  }
  flush_out(b);
  failed = b->failed;
  free(b);
  return failed ? -1 : 0;
}
