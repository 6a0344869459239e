/* libFuzzer target: the events stream (csrc/event_stream.c), built here with 64-byte blocks and ranges
** of 16 bytes, so that lines straddle blocks and ranges and the threads meet in the middle of leads.
** The input is an events file. Whenever the stream takes it, the CSV reader must read it without a
** reject, and the features and every count the stream gives must equal the table path's (read_events'
** reading, then lq_fs_compute); a declined file is the reader's to read. The first byte picks the
** number of threads and whether the leads share an id. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "csv_reader.h"
#include "event_stream.h"

static void fail_at(int line, const char *what) {
  fprintf(stderr, "fuzz_stream.c:%d: %s does not hold\n", line, what);
  abort();
}
#define need(x) ((x) ? (void)0 : fail_at(__LINE__, #x))

static lq_feature_set *make_set(lq_allocator a) {
  static const struct { lq_feature_kind kind; int window; const char *type; const char *name; int filtered; } feats[] = {
    { LQ_FEAT_COUNT, 30, "page_view", "views_30d", 0 },
    { LQ_FEAT_COUNT, 0, "page_view", "product_views", 1 },
    { LQ_FEAT_POINTS, 90, "email_open", "email_points", 0 },
    { LQ_FEAT_SUM, 14, "page_view", "seconds", 0 },
    { LQ_FEAT_DECAYED, 0, "pricing_view", "heat", 0 },
    { LQ_FEAT_FIRST, 0, "*", "first_seen", 0 },
    { LQ_FEAT_LAST, 0, "*", "last_seen", 0 },
    { LQ_FEAT_SESSIONS, 0, "page_view", "visits", 0 },
    { LQ_FEAT_ACTIVE_DAYS, 30, "*", "active", 0 },
  };
  lq_feature_set *fs = lq_fs_new(a);
  size_t i;
  need(fs != NULL);
  fs->min_page_seconds = 5;
  need(lq_fs_add_filter(fs, "page", 4, 0) >= 0);
  need(lq_fs_add_clause(fs, LQ_OP_STARTS_WITH) >= 0);
  need(lq_fs_add_needle(fs, "/p", 2) >= 0);
  need(lq_fs_add_filter(fs, "seniority", 9, 1) >= 0);   /* noise: student leads */
  need(lq_fs_add_clause(fs, LQ_OP_EQUALS) >= 0);
  need(lq_fs_add_needle(fs, "student", 7) >= 0);
  need(lq_fs_type_flag(fs, lq_fs_type(fs, "page_view", 9), LQ_TYPE_PAGE) == 0);
  for (i = 0; i < sizeof feats / sizeof feats[0]; i++) {
    lq_feature proto;
    int f, t;
    memset(&proto, 0, sizeof proto);
    proto.kind = feats[i].kind;
    proto.window_days = feats[i].window;
    proto.points = 2;
    proto.cap = 20;
    proto.cap_per_day = HUGE_VAL;
    proto.half_life = 86400 * 14;
    proto.session_gap = 1800;
    f = lq_fs_add_feature(fs, &proto, feats[i].name, strlen(feats[i].name));
    need(f >= 0);
    t = strcmp(feats[i].type, "*") == 0 ? -1 : lq_fs_type(fs, feats[i].type, strlen(feats[i].type));
    need(lq_fs_feature_type(fs, f, t) == 0);
    if (feats[i].filtered) need(lq_fs_set_filter_need(fs, f, 0) == 0);
  }
  need(lq_fs_finish(fs) == 0);
  return fs;
}

static lq_table *make_leads(lq_allocator a, int shared_id) {
  /* ids in order (found by a binary search), or out of order with one shared (found in a hash) */
  const char *csv = shared_id ? "id,seniority\na,vp\nb,student\nc,\nb,vp\nL1,manager\n"
                              : "id,seniority\nL1,manager\na,vp\nb,student\nc,\n";
  static const lq_csv_column_type schema[] = { { "id", LQ_CATEGORY }, { "seniority", LQ_CATEGORY } };
  lq_csv_options o;
  lq_table *t = NULL;
  char err[LQ_MESSAGE_MAX];
  lq_csv_options_init(&o);
  o.schema = schema;
  o.nschema = 2;
  need(lq_csv_read_string(csv, strlen(csv), &o, a, &t, err, sizeof err) == LQ_CSV_OK);
  return t;
}

/* The file as leadq.read_events reads it (the attribute the features test as a category). */
static int read_events(const char *path, lq_allocator a, lq_table **out) {
  static const lq_csv_column_type schema[] = { { "page", LQ_CATEGORY }, { "lead_id", LQ_CATEGORY },
    { "type", LQ_CATEGORY }, { "at", LQ_TIME }, { "value", LQ_NUMBER } };
  static const char *const required[] = { "lead_id", "type", "at" };
  lq_csv_options o;
  char err[LQ_MESSAGE_MAX];
  lq_csv_options_init(&o);
  o.schema = schema;
  o.nschema = 5;
  o.schema_optional = 5;
  o.required = required;
  o.nrequired = 3;
  o.table_flags = LQ_TABLE_EVENTS;
  o.source = path;
  return lq_csv_read_file(path, &o, a, out, err, sizeof err);
}

static int same_number(double x, double y) {
  return x == y || (x != x && y != y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lq_feature_set *fs;
  static lq_table *leads[2];
  lq_allocator a = { lq_system_alloc, NULL };
  lq_table *streamed = NULL, *events = NULL, *table = NULL;
  lq_compute_report rs, rt;
  char err[LQ_MESSAGE_MAX], err2[LQ_MESSAGE_MAX], path[64];
  const double as_of = 1793491200;   /* 2026-11-01 */
  int threads, rc, st, c;
  const lq_table *l;
  size_t r;
  FILE *f;
  if (size < 1) return 0;
  if (fs == NULL) {
    fs = make_set(a);
    leads[0] = make_leads(a, 0);
    leads[1] = make_leads(a, 1);
  }
  threads = 1 + (data[0] & 7);
  l = leads[(data[0] >> 3) & 1];
  data++;
  size--;
  snprintf(path, sizeof path, "/tmp/leadq-fuzz-stream-%ld.csv", (long)getpid());
  f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  err[0] = '\0';
  rc = lq_fs_compute_csv(fs, l, "id", path, as_of, 3, threads, &streamed, &rs, err, sizeof err);
  need(rc >= 0);   /* a file that is there is taken or declined, never an error */
  need(rc == 0 || err[0] != '\0');   /* declined, it says why */
  if (rc == 0) {
    st = read_events(path, a, &events);
    need(st == LQ_CSV_OK);
    need(events->nrejects == 0);
    need(lq_fs_compute(fs, l, "id", events, as_of, 3, 1, &table, &rt, err2, sizeof err2) == 0);
    need(rs.events == rt.events && rs.used == rt.used && rs.ignored == rt.ignored);
    need(rs.after_as_of == rt.after_as_of && rs.no_time == rt.no_time && rs.unknown == rt.unknown);
    need(rs.duplicate_ids == rt.duplicate_ids);
    for (c = 0; c < LQ_N_COUNTERS; c++) need(rs.counters[c] == rt.counters[c]);
    need(rs.nunknown_rows == rt.nunknown_rows);
    for (r = 0; r < rs.nunknown_rows; r++) need(rs.unknown_rows[r] == rt.unknown_rows[r]);
    need(streamed->ncols == table->ncols && streamed->nrows == table->nrows);
    for (c = 0; c < table->ncols; c++)
      for (r = 0; r < table->nrows; r++) need(same_number(streamed->cols[c]->numbers[r], table->cols[c]->numbers[r]));
    lq_compute_report_free(fs, &rs);
    lq_compute_report_free(fs, &rt);
    lq_table_free(streamed);
    lq_table_free(table);
    lq_table_free(events);
  }
  unlink(path);
  return 0;
}
