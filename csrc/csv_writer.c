/* Columns written as CSV (csv_writer.h): a buffer of lines handed to stdio in large writes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csv_writer.h"
#include "run_jobs.h"

/* Lines go to a stream in 64 KiB writes, or (f NULL: a thread's part of the rows) into memory. */
typedef struct out_buffer {
  FILE *f;
  char *data;
  size_t n, cap;
  int failed;
} out_buffer;

static void flush_out(out_buffer *b) {
  if (b->f == NULL) {   /* memory: room for as much again */
    char *p = b->failed ? NULL : (char *)realloc(b->data, b->cap * 2);
    if (p == NULL) {
      b->failed = 1;
      b->n = 0;
      return;
    }
    b->data = p;
    b->cap *= 2;
    return;
  }
  if (b->n > 0 && !b->failed && fwrite(b->data, 1, b->n, b->f) != b->n) b->failed = 1;
  b->n = 0;
}

static void put(out_buffer *b, const char *s, size_t len) {
  while (len > 0) {
    size_t room = b->cap - b->n, take = len < room ? len : room;
    memcpy(b->data + b->n, s, take);
    b->n += take;
    s += take;
    len -= take;
    if (b->n == b->cap) flush_out(b);
  }
}

static void put_char(out_buffer *b, char c) {
  if (b->n == b->cap) flush_out(b);
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

static void put_rows(out_buffer *b, const lq_csv_out_column *cols, int ncols, size_t begin, size_t end) {
  size_t row;
  int k;
  for (row = begin; row < end && !b->failed; row++) {
    for (k = 0; k < ncols; k++) {
      if (k > 0) put_char(b, ',');
      if (cols[k].column == NULL) put_number(b, (double)(row + 1));
      else put_cell(b, cols[k].column, row);
    }
    put_char(b, '\n');
  }
}

/* On threads: rows are written a round at a time, each thread formatting its part of the round into
** memory, then the parts go to the stream in order (the same bytes as one thread's). */
#if !defined(LQ_CSV_OUT_PART)
#define LQ_CSV_OUT_PART 16384   /* rows a thread formats per round */
#endif
#define LQ_CSV_OUT_MAX_THREADS LQ_RUN_MAX_JOBS

typedef struct part_job {
  const lq_csv_out_column *cols;
  int ncols;
  size_t begin, end;
  out_buffer b;
} part_job;

static void *part_main(void *arg) {
  part_job *j = (part_job *)arg;
  j->b.n = 0;
  put_rows(&j->b, j->cols, j->ncols, j->begin, j->end);
  return NULL;
}

static int write_parts(out_buffer *out, const lq_csv_out_column *cols, int ncols, size_t nrows, int threads) {
  part_job jobs[LQ_CSV_OUT_MAX_THREADS];
  size_t row = 0;
  int t, failed = 0;
  for (t = 0; t < threads; t++) {
    memset(&jobs[t], 0, sizeof jobs[t]);
    jobs[t].cols = cols;
    jobs[t].ncols = ncols;
    jobs[t].b.cap = 1 << 20;
    jobs[t].b.data = (char *)malloc(jobs[t].b.cap);
    if (jobs[t].b.data == NULL) failed = 1;
  }
  while (row < nrows && !failed) {
    for (t = 0; t < threads; t++) {
      jobs[t].begin = row;
      row = nrows - row < LQ_CSV_OUT_PART ? nrows : row + LQ_CSV_OUT_PART;
      jobs[t].end = row;
    }
    lq_run_jobs(part_main, jobs, sizeof jobs[0], threads);
    for (t = 0; t < threads && !failed; t++) {
      if (jobs[t].b.failed) failed = 1;
      else put(out, jobs[t].b.data, jobs[t].b.n);
    }
    failed = failed || out->failed;
  }
  for (t = 0; t < threads; t++) free(jobs[t].b.data);
  if (failed && !out->failed) errno = ENOMEM;
  return failed;
}

int lq_csv_write_columns(FILE *f, const lq_csv_out_column *cols, int ncols, size_t nrows, int threads) {
  out_buffer *b = (out_buffer *)malloc(sizeof *b + ((size_t)1 << 16));   /* 64 KiB: off the stack */
  int k, failed;
  if (b == NULL) {
    errno = ENOMEM;
    return -1;
  }
  b->f = f;
  b->data = (char *)(b + 1);
  b->cap = (size_t)1 << 16;
  b->n = 0;
  b->failed = 0;
  for (k = 0; k < ncols; k++) {
    if (k > 0) put_char(b, ',');
    put_text(b, cols[k].name, strlen(cols[k].name));
  }
  put_char(b, '\n');
  if (threads > LQ_CSV_OUT_MAX_THREADS) threads = LQ_CSV_OUT_MAX_THREADS;
  if (threads > 1 && nrows > LQ_CSV_OUT_PART) {
    if (write_parts(b, cols, ncols, nrows, threads)) b->failed = 1;
  } else {
    put_rows(b, cols, ncols, 0, nrows);
  }
  flush_out(b);
  failed = b->failed;
  free(b);
  return failed ? -1 : 0;
}
