/* libFuzzer target: the engagement-state decoder (csrc/features.c). A feature set with one feature
** of every kind, noise rules and lateness; the input is a stored state. One that decodes must read
** its values, take events, and encode to a string that decodes to the same bytes again. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feature_set.h"

static void fail_at(int line, const char *what) {
  fprintf(stderr, "fuzz_state.c:%d: %s does not hold\n", line, what);
  abort();
}
#define need(x) ((x) ? (void)0 : fail_at(__LINE__, #x))

static lq_feature_set *make_set(void) {
  static const struct { lq_feature_kind kind; const char *name, *type; int window; } spec[] = {
    { LQ_FEAT_COUNT, "views_30d", "page_view", 30 }, { LQ_FEAT_POINTS, "click_points", "email_click", 0 },
    { LQ_FEAT_SUM, "seconds_7d", "page_view", 7 }, { LQ_FEAT_ACTIVE_DAYS, "active", "*", 90 },
    { LQ_FEAT_SESSIONS, "sessions", "page_view", 0 }, { LQ_FEAT_DECAYED, "heat", "webinar", 0 },
    { LQ_FEAT_FIRST, "first_seen", "*", 0 }, { LQ_FEAT_LAST, "last_send", "email_send", 0 },
    { LQ_FEAT_DAYS_SINCE_LAST, "idle", "page_view", 0 },
  };
  lq_allocator a = { lq_system_alloc, NULL };
  lq_feature_set *fs = lq_fs_new(a);
  size_t i;
  need(fs != NULL);
  fs->lateness = 3600;
  fs->min_page_seconds = 5;
  fs->scanner_seconds = 10;
  fs->fingerprint = 0x5eed1e7du;
  need(lq_fs_add_filter(fs, "page", 4, 0) >= 0);
  need(lq_fs_add_clause(fs, LQ_OP_STARTS_WITH) >= 0);
  need(lq_fs_add_needle(fs, "/pricing", 8) >= 0);
  need(lq_fs_type_flag(fs, lq_fs_type(fs, "email_send", 10), LQ_TYPE_SEND) >= 0);
  need(lq_fs_type_flag(fs, lq_fs_type(fs, "email_click", 11), LQ_TYPE_CLICK) >= 0);
  need(lq_fs_type_flag(fs, lq_fs_type(fs, "page_view", 9), LQ_TYPE_PAGE) >= 0);
  for (i = 0; i < sizeof spec / sizeof spec[0]; i++) {
    lq_feature proto;
    int f, t;
    memset(&proto, 0, sizeof proto);
    proto.kind = spec[i].kind;
    proto.window_days = spec[i].window;
    proto.points = 2;
    proto.cap = spec[i].kind == LQ_FEAT_POINTS ? 20 : HUGE_VAL;
    proto.cap_per_day = spec[i].kind == LQ_FEAT_POINTS ? 6 : HUGE_VAL;
    proto.half_life = 14 * 86400.0;
    proto.session_gap = 1800;
    f = lq_fs_add_feature(fs, &proto, spec[i].name, strlen(spec[i].name));
    need(f >= 0);
    t = strcmp(spec[i].type, "*") == 0 ? -1 : lq_fs_type(fs, spec[i].type, strlen(spec[i].type));
    need(lq_fs_feature_type(fs, f, t) >= 0);
    if (i == 0) need(lq_fs_set_filter_need(fs, f, 0) >= 0);
  }
  need(lq_fs_finish(fs) >= 0);
  return fs;
}

static size_t encode(const lq_feature_set *fs, const lq_state *st, char **out) {
  *out = malloc(lq_state_encode_bound(fs, st));
  need(*out != NULL);
  return lq_state_encode(fs, st, *out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lq_feature_set *fs = make_set();
  lq_state st, again;
  const char *msg = NULL;
  double *scratch = malloc((size_t)(fs->nslots + fs->nfeats + 1) * sizeof(double));
  double as_of = 1795000000.0;
  char *s1, *s2;
  size_t n1, n2;
  int rc, k;
  need(scratch != NULL);
  need(lq_state_init(fs, &st) == 0 && lq_state_init(fs, &again) == 0);
  rc = lq_state_decode(fs, &st, (const char *)data, size, &msg);
  need(rc == 0 || (rc == 1 && msg != NULL));
  if (rc == 0) {
    (void)lq_state_values(fs, &st, as_of, scratch, scratch + fs->nslots);
    /* what the state holds goes out and comes back as the same bytes */
    n1 = encode(fs, &st, &s1);
    need(lq_state_decode(fs, &again, s1, n1, &msg) == 0);
    n2 = encode(fs, &again, &s2);
    if (n1 != n2 || memcmp(s1, s2, n1) != 0) {
      fprintf(stderr, "fuzz_state: a decoded state re-encodes differently\n");
      abort();
    }
    free(s1);
    free(s2);
    /* and it takes events, each type, with times around its own (the times an event may have: the
    ** decoder takes a latest time outside them, and the events after it are then all late) */
    for (k = 0; k < 6; k++) {
      lq_event e;
      double base = st.core.has_max && fabs(st.core.max_at) < LQ_MAX_TIME / 2 ? st.core.max_at : as_of;
      e.type = k % (fs->types.count + 1);
      e.at = base + (k - 3) * 900.0;
      e.value = k == 2 ? NAN : (double)k * 3;
      e.mask = (uint32_t)k & 1u;
      need(lq_state_observe(fs, &st, &e) >= 0);
    }
    (void)lq_state_values(fs, &st, as_of + 86400.0, scratch, scratch + fs->nslots);
    n1 = encode(fs, &st, &s1);
    need(lq_state_decode(fs, &again, s1, n1, &msg) == 0);
    free(s1);
  }
  lq_state_free(fs, &st);
  lq_state_free(fs, &again);
  free(scratch);
  lq_fs_free(fs);
  return 0;
}
