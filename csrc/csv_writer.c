/* Columns written as CSV (csv_writer.h): rows formatted into a buffer and handed to stdio in large
** writes. A cell is written straight into the buffer once the buffer has room for the most it can
** take: a score file is a few short cells a row, so per-byte bounds checks and calls were most of
** its cost. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "csv_writer.h"
#include "run_jobs.h"

/* Lines go to a stream (f), or (f NULL: a thread's block of rows) into memory that grows. */
typedef struct out_buffer {
  FILE *f;
  char *data;
  size_t n, cap;
  int failed;
} out_buffer;

#define NUMBER_ROOM 32   /* the most a number's cell takes: "%.6g" or up to 16 digits and a sign */

static void flush_out(out_buffer *b) {
  if (b->f == NULL) {   /* memory: room for as much again */
    char *p = b->failed ? NULL : (char *)lq_system_alloc(NULL, b->data, b->cap, b->cap * 2);
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

/* Room for need more bytes: a stream's buffer written out, a thread's grown. 0 when there is none
** (a cell bigger than a stream's buffer, or no memory): the caller then puts it a piece at a time. */
static inline int room(out_buffer *b, size_t need) {
  if (b->cap - b->n >= need) return 1;
  flush_out(b);
  while (b->f == NULL && !b->failed && b->cap - b->n < need) flush_out(b);
  return !b->failed && b->cap - b->n >= need;
}

static void put(out_buffer *b, const char *s, size_t len) {
  while (len > 0) {
    size_t take = b->cap - b->n;
    if (take > len) take = len;
    memcpy(b->data + b->n, s, take);
    b->n += take;
    s += take;
    len -= take;
    if (b->n == b->cap) flush_out(b);
    if (b->failed) return;
  }
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

static inline int needs_quotes(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return 1;
  return 0;
}

/* Text known to need no quotes: copied in; quoted text through lq_csv_put_field. */
static inline void put_plain(out_buffer *b, const char *s, size_t len) {
  if (room(b, len)) {
    memcpy(b->data + b->n, s, len);
    b->n += len;
  } else {
    put(b, s, len);
  }
}

static void put_text(out_buffer *b, const char *s, size_t len) {
  if (!needs_quotes(s, len)) put_plain(b, s, len);
  else lq_csv_put_field(put_to_buffer, b, s, len);
}

static const char digit_pairs[] =
  "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
  "8081828384858687888990919293949596979899";

/* A number's cell at p (NUMBER_ROOM bytes there), as "%lld" writes a whole number within +-1e15 and
** "%.6g" any other; NaN is empty. Its length. */
static inline size_t format_number(char *p, double v) {
  char tmp[24], *e = tmp + sizeof tmp, *d = e;
  unsigned long long u;
  int neg;
  size_t len;
  if (!(v > -1e15 && v < 1e15)) {
    int n;
    if (isnan(v)) return 0;
    n = snprintf(p, NUMBER_ROOM, "%.6g", v);
    return n > 0 ? (size_t)n : 0;
  }
  if ((double)(long long)v != v) {
    int n = snprintf(p, NUMBER_ROOM, "%.6g", v);
    return n > 0 ? (size_t)n : 0;
  }
  neg = v < 0;
  u = neg ? 0ull - (unsigned long long)(long long)v : (unsigned long long)(long long)v;
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    d -= 2;
    memcpy(d, digit_pairs + 2 * r, 2);
  }
  if (u >= 10) {
    d -= 2;
    memcpy(d, digit_pairs + 2 * u, 2);
  } else {
    *--d = (char)('0' + u);
  }
  if (neg) *--d = '-';
  len = (size_t)(e - d);
  memcpy(p, d, len);
  return len;
}

static void put_number(out_buffer *b, double v) {
  char tmp[NUMBER_ROOM];
  size_t len;
  if (room(b, NUMBER_ROOM)) {
    b->n += format_number(b->data + b->n, v);
    return;
  }
  len = format_number(tmp, v);
  put(b, tmp, len);
}

/* ---- the columns, made ready once ---- */

typedef struct out_plan {
  const lq_column *column;   /* NULL: the row number */
  uint8_t *quoted;           /* a category: 1 for each code whose value needs quotes */
} out_plan;

static void plans_free(out_plan *plans, int ncols) {
  int k;
  for (k = 0; k < ncols; k++) free(plans[k].quoted);
  free(plans);
}

static out_plan *plans_make(const lq_csv_out_column *cols, int ncols) {
  out_plan *plans = (out_plan *)calloc(ncols > 0 ? (size_t)ncols : 1, sizeof *plans);
  int k;
  if (plans == NULL) return NULL;
  for (k = 0; k < ncols; k++) {
    const lq_column *c = cols[k].column;
    plans[k].column = c;
    if (c != NULL && c->type == LQ_CATEGORY) {
      int32_t code;
      if ((plans[k].quoted = (uint8_t *)malloc(c->dict.count > 0 ? (size_t)c->dict.count : 1)) == NULL) {
        plans_free(plans, ncols);
        return NULL;
      }
      for (code = 0; code < c->dict.count; code++) {
        size_t len;
        const char *s = lq_dict_string(&c->dict, code, &len);
        plans[k].quoted[code] = (uint8_t)needs_quotes(s, len);
      }
    }
  }
  return plans;
}

static inline void put_cell(out_buffer *b, const out_plan *p, size_t row) {
  const lq_column *c = p->column;
  size_t len;
  const char *s;
  if (c == NULL) {
    put_number(b, (double)(row + 1));
    return;
  }
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME:
      put_number(b, c->numbers[row]);
      return;
    case LQ_BOOLEAN:
      if (c->bools[row] == LQ_MISSING_BOOL) return;
      if (c->bools[row]) put_plain(b, "true", 4);
      else put_plain(b, "false", 5);
      return;
    case LQ_CATEGORY: {
      int32_t code = c->codes[row];
      if (code == LQ_MISSING_CODE) return;
      s = lq_dict_string(&c->dict, code, &len);
      if (p->quoted[code]) lq_csv_put_field(put_to_buffer, b, s, len);
      else put_plain(b, s, len);
      return;
    }
    case LQ_TEXT:
      if (c->text_missing[row]) return;
      put_text(b, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
      return;
    default:   /* tags have no one CSV text: the caller writes such columns itself */
      return;
  }
}

static void put_rows(out_buffer *b, const out_plan *plans, int ncols, size_t begin, size_t end) {
  size_t row;
  int k;
  for (row = begin; row < end && !b->failed; row++) {
    for (k = 0; k < ncols; k++) {
      if (k > 0) put_plain(b, ",", 1);
      put_cell(b, &plans[k], row);
    }
    put_plain(b, "\n", 1);
  }
}

/* ---- on threads ----
** The rows are cut into blocks taken in order from a counter. A thread formats its block into memory
** of its own, waits for the block before it to be written, writes its own and takes the next: the
** writing, one block at a time in file order, overlaps the other threads' formatting, and the bytes
** are one thread's. */
#if !defined(LQ_CSV_OUT_PART)
#define LQ_CSV_OUT_PART 16384   /* rows a block */
#endif
#define LQ_CSV_OUT_MAX_THREADS LQ_RUN_MAX_JOBS

typedef struct parts_job {
  FILE *f;
  const out_plan *plans;
  int ncols;
  size_t nrows, nblocks;
  size_t next;                 /* the next block to format (atomic) */
  size_t turn;                 /* the next block to write (under mu) */
  int failed;                  /* under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} parts_job;

typedef struct part_worker {
  parts_job *job;
  out_buffer b;
} part_worker;

static void *part_main(void *arg) {
  part_worker *w = (part_worker *)arg;
  parts_job *job = w->job;
  out_buffer b = w->b;   /* on this thread's stack: the workers' slots share a cache line */
  for (;;) {
    size_t k = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED), begin, end;
    int ok;
    if (k >= job->nblocks) break;
    begin = k * LQ_CSV_OUT_PART;
    end = job->nrows - begin < LQ_CSV_OUT_PART ? job->nrows : begin + LQ_CSV_OUT_PART;
    b.n = 0;
    put_rows(&b, job->plans, job->ncols, begin, end);
    pthread_mutex_lock(&job->mu);
    while (job->turn != k && !job->failed) pthread_cond_wait(&job->cv, &job->mu);
    ok = !job->failed && !b.failed;
    pthread_mutex_unlock(&job->mu);
    /* only this thread writes now: the others wait for their turn, which comes after this one */
    if (ok && b.n > 0 && fwrite(b.data, 1, b.n, job->f) != b.n) ok = 0;
    pthread_mutex_lock(&job->mu);
    if (!ok) job->failed = 1;
    job->turn = k + 1;
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
    if (!ok) break;
  }
  w->b = b;
  return NULL;
}

static int write_parts(FILE *f, const out_plan *plans, int ncols, size_t nrows, int threads) {
  part_worker workers[LQ_CSV_OUT_MAX_THREADS];
  parts_job job;
  int t, failed;
  memset(&job, 0, sizeof job);
  job.f = f;
  job.plans = plans;
  job.ncols = ncols;
  job.nrows = nrows;
  job.nblocks = (nrows + LQ_CSV_OUT_PART - 1) / LQ_CSV_OUT_PART;
  pthread_mutex_init(&job.mu, NULL);
  pthread_cond_init(&job.cv, NULL);
  for (t = 0; t < threads; t++) {
    memset(&workers[t], 0, sizeof workers[t]);
    workers[t].job = &job;
    workers[t].b.cap = (size_t)2 << 20;   /* a block of a score file is about 0.8 MB */
    if ((workers[t].b.data = (char *)lq_system_alloc(NULL, NULL, 0, workers[t].b.cap)) == NULL) job.failed = 1;
  }
  if (!job.failed) lq_run_jobs(part_main, workers, sizeof workers[0], threads);
  failed = job.failed;
  for (t = 0; t < threads; t++)
    if (workers[t].b.data != NULL) lq_system_alloc(NULL, workers[t].b.data, workers[t].b.cap, 0);
  pthread_cond_destroy(&job.cv);
  pthread_mutex_destroy(&job.mu);
  return failed;
}

int lq_csv_write_columns(FILE *f, const lq_csv_out_column *cols, int ncols, size_t nrows, int threads) {
  out_buffer *b = (out_buffer *)malloc(sizeof *b + ((size_t)1 << 16));   /* 64 KiB: off the stack */
  out_plan *plans = plans_make(cols, ncols);
  int k, failed;
  if (b == NULL || plans == NULL) {
    free(b);
    if (plans != NULL) plans_free(plans, ncols);
    errno = ENOMEM;
    return -1;
  }
  b->f = f;
  b->data = (char *)(b + 1);
  b->cap = (size_t)1 << 16;
  b->n = 0;
  b->failed = 0;
  for (k = 0; k < ncols; k++) {
    if (k > 0) put(b, ",", 1);
    lq_csv_put_field(put_to_buffer, b, cols[k].name, strlen(cols[k].name));
  }
  put(b, "\n", 1);
  if (threads > LQ_CSV_OUT_MAX_THREADS) threads = LQ_CSV_OUT_MAX_THREADS;
  if (threads > 1 && nrows > LQ_CSV_OUT_PART) {
    flush_out(b);   /* the header first: the threads write to the stream themselves */
    if (!b->failed && write_parts(f, plans, ncols, nrows, threads)) {
      b->failed = 1;
      if (!ferror(f)) errno = ENOMEM;
    }
  } else {
    put_rows(b, plans, ncols, 0, nrows);
  }
  flush_out(b);
  failed = b->failed;
  free(b);
  plans_free(plans, ncols);
  return failed ? -1 : 0;
}
