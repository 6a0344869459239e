/* The events stream: see event_stream.h. Plain C, no Lua.
**
** Steps: the header (separator, which field is which), the leads' ids (sorted, or hashed), the file
** cut into ranges of whole lines, one thread a range (each reads its own blocks with pread, parses its
** lines and folds each lead's run as it ends, its first and last runs left for the edges), the runs
** at the ranges' edges stitched and folded, the ranges' counts summed in file order. When a lead was
** met twice, the second reading keeps the counted events instead and the bulk pass folds them.
** The threads allocate with the C library's heap (the set's allocator may be Lua's, which is not
** thread-safe); that memory is freed before the call returns. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "alloc.h"
#include "civil_time.h"
#include "csv_reader.h"
#include "event_stream.h"
#include "run_jobs.h"

#if !defined(LQ_STREAM_BLOCK)
#define LQ_STREAM_BLOCK (1u << 20)   /* bytes a thread reads at a time */
#endif
#if !defined(LQ_STREAM_MIN_RANGE)
#define LQ_STREAM_MIN_RANGE (1u << 18)   /* fewer bytes than this per thread: fewer threads */
#endif
#define STREAM_PAD 32                  /* bytes after a block's data: a 16-byte scan may read past a newline */
#define STREAM_MAX_THREADS LQ_RUN_MAX_JOBS
#define STREAM_MAX_COLUMNS 1024
#define ID_KEPT 64                     /* a run's lead id is kept for the next line up to this length */
#define TYPE_CACHE 256                 /* event type names remembered per thread */
#define TYPE_KEPT 30

/* What a field of a line is to the features. */
enum { ROLE_SKIP = -1, ROLE_LEAD = 0, ROLE_TYPE, ROLE_AT, ROLE_VALUE, ROLE_FILTER };
#define NROLES (ROLE_FILTER + LQ_MAX_FILTERS)

typedef struct id_slot {
  uint32_t hash;
  int32_t row;   /* -1: empty */
} id_slot;

typedef struct stream_ctx {
  const lq_feature_set *fs;
  const lq_column *idc;
  id_slot *slots;               /* NULL when sorted */
  size_t mask;
  int sorted;                    /* the leads' ids ascend: found by binary search */
  uint32_t *dups;              /* per lead row: later leads with its id; NULL when every id is unique */
  size_t nleads;
  int fd;
  char sep;
  int ncols;
  int role[STREAM_MAX_COLUMNS];
  int filter_of_bit[LQ_MAX_FILTERS];
  int has_value;
  double as_of;
  size_t max_unknown;
  int fold;                    /* 1: fold each run as it ends (lq_fs_fold); 0: keep every event */
  lq_fold_pass *pass;
  int ungrouped;               /* set by a thread that met a lead folded before */
} stream_ctx;

typedef struct type_entry {
  unsigned char len;           /* 0: empty entry (a type is never empty here) */
  char bytes[TYPE_KEPT];
  int32_t type;                /* the set's type index, or -1 when nothing counts it */
} type_entry;

typedef struct stream_job {
  stream_ctx *x;
  uint64_t begin, end;         /* bytes of the file: whole lines */
  char *buf;
  size_t buf_cap;
  /* kept events, in file order */
  int32_t *rows;
  lq_event *evs;
  size_t n, cap;
  /* or folded: the run being read, and the range's first run, folded once the range before is read */
  int folder;
  lq_event *run, *tmp, *head;
  size_t run_n, run_cap, head_n;
  int32_t run_row, head_row;
  /* counts */
  uint64_t lines;
  double used, ignored, after_as_of, unknown;
  size_t *unknown_rows;        /* lines of this range (0-based), the first max_unknown */
  size_t nunknown;
  char *unknown_ids;           /* their lead ids, NUL-terminated */
  size_t ids_len, ids_cap;
  uint64_t *named;             /* dups only: a bit per lead row whose id an event names */
  /* the last line's lead */
  char prev[ID_KEPT];
  size_t prev_len;             /* > ID_KEPT: none kept */
  int32_t prev_row;
  type_entry types[TYPE_CACHE];
  lq_month_cache months;       /* the times' months' first days */
  const char *why;             /* declined: why; the line is lines + 1 of the range */
  int failed;                  /* 1: no memory, 2: a read failed (errno_) */
  int errno_;
} stream_job;

/* ---- the leads' ids ---- */

static int id_equal(const stream_ctx *x, int32_t row, const char *s, size_t len) {
  char tmp[64];
  const char *t;
  size_t tlen;
  return lq_fs_column_string(x->idc, (size_t)row, tmp, sizeof tmp, &t, &tlen) && tlen == len && memcmp(t, s, len) == 0;
}

/* The first lead row with this id, or -1: a binary search when the ids come sorted, else the hash. */
static int32_t id_find(const stream_ctx *x, const char *s, size_t len) {
  uint32_t h;
  size_t i;
  if (x->sorted) {
    size_t lo = 0, hi = x->nleads;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2, mlen;
      char tmp[64];
      const char *m;
      int c;
      lq_fs_column_string(x->idc, mid, tmp, sizeof tmp, &m, &mlen);
      c = lq_compare_bytes(m, mlen, s, len);
      if (c == 0) return (int32_t)mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }
  h = lq_hash_bytes(s, len);
  i = h & x->mask;
  for (;; i = (i + 1) & x->mask) {
    const id_slot *sl = &x->slots[i];
    if (sl->row < 0) return -1;
    if (sl->hash == h && id_equal(x, sl->row, s, len)) return sl->row;
  }
}

/* Whether every lead has an id, each above the one before (exports are often sorted by id): then
** no two share one, and an id is found by a binary search, no hash built. */
static int ids_sorted(const stream_ctx *x) {
  const char *prev = NULL, *s;
  size_t plen = 0, len, r;
  char tmp[2][64];
  for (r = 0; r < x->nleads; r++) {
    if (!lq_fs_column_string(x->idc, r, tmp[r & 1], sizeof tmp[0], &s, &len)) return 0;
    if (r > 0 && lq_compare_bytes(prev, plen, s, len) >= 0) return 0;
    prev = s;
    plen = len;
  }
  return 1;
}

/* Every lead's id into the hash; a lead whose id came before counts as a duplicate of the first. */
static int index_ids(stream_ctx *x, const lq_allocator *a) {
  size_t cap = 16, r;
  if ((x->sorted = ids_sorted(x)) != 0) return 0;
  while (cap < x->nleads * 2) cap *= 2;
  x->slots = (id_slot *)lq_mem_resize(a, NULL, 0, cap * sizeof(id_slot));
  if (x->slots == NULL) return -1;
  memset(x->slots, 0xff, cap * sizeof(id_slot));   /* row -1 */
  x->mask = cap - 1;
  for (r = 0; r < x->nleads; r++) {
    char tmp[64];
    const char *s;
    size_t len, i;
    uint32_t h;
    if (!lq_fs_column_string(x->idc, r, tmp, sizeof tmp, &s, &len)) continue;
    h = lq_hash_bytes(s, len);
    for (i = h & x->mask;; i = (i + 1) & x->mask) {
      id_slot *sl = &x->slots[i];
      if (sl->row < 0) {
        sl->hash = h;
        sl->row = (int32_t)r;
        break;
      }
      if (sl->hash == h && id_equal(x, sl->row, s, len)) {
        if (x->dups == NULL) {
          x->dups = (uint32_t *)lq_mem_resize(a, NULL, 0, x->nleads * sizeof(uint32_t));
          if (x->dups == NULL) return -1;
          memset(x->dups, 0, x->nleads * sizeof(uint32_t));
        }
        x->dups[sl->row]++;
        break;
      }
    }
  }
  return 0;
}

/* ---- the header ---- */

/* The first line of the file (at most limit bytes), NUL-terminated in buf; its length with the line
** end, or 0 when there is no complete first line within limit. */
static size_t read_first_line(int fd, char *buf, size_t limit, size_t *line_len) {
  size_t got = 0;
  while (got < limit) {
    ssize_t r = pread(fd, buf + got, limit - got, (off_t)got);
    char *nl;
    if (r <= 0) break;
    got += (size_t)r;
    nl = (char *)memchr(buf, '\n', got);
    if (nl != NULL) {
      *line_len = (size_t)(nl - buf);
      buf[*line_len] = '\0';
      return *line_len + 1;
    }
  }
  if (got > 0 && got < limit) {   /* a header and no data: the file ends without a newline */
    buf[got] = '\0';
    *line_len = got;
    return got;
  }
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t';
}

/* The separator as the reader picks it: the most frequent of , ; tab (',' on ties). */
static char pick_separator(const char *s, size_t len) {
  size_t c = 0, sc = 0, tab = 0, i;
  for (i = 0; i < len; i++) {
    c += s[i] == ',';
    sc += s[i] == ';';
    tab += s[i] == '\t';
  }
  if (sc > c && sc >= tab) return ';';
  if (tab > c && tab > sc) return '\t';
  return ',';
}

/* Which field is which: the header's names (trimmed, as the reader does) against the set's columns.
** Returns the header's length with its line end, 0 when the stream declines the file (why says so). */
static size_t read_header(stream_ctx *x, const char **why) {
  enum { LIMIT = 1 << 16 };
  char *buf = (char *)malloc(LIMIT + 1);
  const lq_feature_set *fs = x->fs;
  char names[STREAM_MAX_COLUMNS][48];
  size_t line_len = 0, used, start, skip = 0, i;
  int k, n = 0, seen[ROLE_FILTER] = { 0, 0, 0, 0 };
  if (buf == NULL) {
    *why = "no memory";
    return 0;
  }
  used = read_first_line(x->fd, buf, LIMIT, &line_len);
  if (used == 0 || line_len == 0) {
    *why = "no header line within its first 64 kB";
    goto declined;
  }
  if (line_len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) skip = 3;
  if (memchr(buf, '"', line_len) != NULL || memchr(buf, '\0', line_len) != NULL) {
    *why = "a quote or a zero byte in the header";
    goto declined;
  }
  if (buf[0] == 0x1f) {
    *why = "a compressed file";
    goto declined;
  }
  if (line_len > 0 && buf[line_len - 1] == '\r') line_len--;
  if (memchr(buf, '\r', line_len) != NULL) {
    *why = "a carriage return inside the header";
    goto declined;
  }
  x->sep = pick_separator(buf + skip, line_len - skip);
  for (start = skip, i = skip; i <= line_len; i++) {
    if (i < line_len && buf[i] != x->sep) continue;
    {
      size_t a = start, b = i;
      while (a < b && is_space(buf[a])) a++;
      while (b > a && is_space(buf[b - 1])) b--;
      if (n == STREAM_MAX_COLUMNS || b - a >= sizeof names[0]) {
        *why = "a header with too many or too long names";
        goto declined;
      }
      if (b == a) snprintf(names[n], sizeof names[0], "column_%d", n + 1);
      else {
        memcpy(names[n], buf + a, b - a);
        names[n][b - a] = '\0';
      }
      n++;
    }
    start = i + 1;
  }
  x->ncols = n;
  for (k = 0; k < n; k++) {
    int j, role = ROLE_SKIP;
    for (j = 0; j < k; j++)
      if (strcmp(names[j], names[k]) == 0) {
        *why = "a column that appears twice";
        goto declined;
      }
    if (strcmp(names[k], "lead_id") == 0) role = ROLE_LEAD;
    else if (strcmp(names[k], "type") == 0) role = ROLE_TYPE;
    else if (strcmp(names[k], "at") == 0) role = ROLE_AT;
    else if (strcmp(names[k], "value") == 0) role = ROLE_VALUE;
    else {
      int f;
      for (f = 0; f < fs->nfilters; f++)
        if (fs->filters[f].bit >= 0 && strcmp(fs->arena + fs->filters[f].attr, names[k]) == 0) {
          role = ROLE_FILTER + fs->filters[f].bit;
          x->filter_of_bit[fs->filters[f].bit] = f;
        }
    }
    if (role >= 0 && role < ROLE_FILTER) seen[role] = 1;
    x->role[k] = role;
  }
  if (!seen[ROLE_LEAD] || !seen[ROLE_TYPE] || !seen[ROLE_AT]) {
    *why = "no lead_id, type or at column";
    goto declined;
  }
  x->has_value = seen[ROLE_VALUE];
  for (k = 0; k < fs->nfilters; k++) {
    int c, found = 0;
    if (fs->filters[k].bit < 0) continue;
    for (c = 0; c < n; c++) found |= x->role[c] == ROLE_FILTER + fs->filters[k].bit;
    if (!found) {
      *why = "no column for an attribute a feature tests";
      goto declined;
    }
  }
  free(buf);
  return used;
declined:
  free(buf);
  return 0;
}

/* ---- a range of lines ---- */

/* Where the separators, newlines and the bytes the stream does not take (a quote, a carriage
** return) are among the 16 bytes at p: a bit per byte. The block may run past the line's newline:
** the buffer has room after its data. */
static inline void block_masks(const char *p, char sep, unsigned *ms, unsigned *mn, unsigned *mx) {
#if defined(__SSE2__)
  __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
  *ms = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(sep)));
  *mn = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
  *mx = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
#else
  unsigned i;
  *ms = *mn = *mx = 0;
  for (i = 0; i < 16; i++) {
    *ms |= (unsigned)(p[i] == sep) << i;
    *mn |= (unsigned)(p[i] == '\n') << i;
    *mx |= (unsigned)(p[i] == '"' || p[i] == '\r') << i;
  }
#endif
}

/* Keeping (the file is read a second time, its leads' events not all in one run each): every kept
** event with its lead row, for lq_fs_compute_made. */
static int keep_event(stream_job *j, int32_t row, const lq_event *e) {
  if (j->n == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 4096;
    int32_t *rows = (int32_t *)realloc(j->rows, cap * sizeof(int32_t));
    lq_event *evs;
    if (rows == NULL) return -1;
    j->rows = rows;
    evs = (lq_event *)realloc(j->evs, cap * sizeof(lq_event));
    if (evs == NULL) return -1;
    j->evs = evs;
    j->cap = cap;
  }
  j->evs[j->n] = *e;
  j->rows[j->n++] = row;
  return 0;
}

/* Room for need events in a run's buffer and its sort scratch (the same capacity): 0, or -1. */
static int grow_run(lq_event **run, lq_event **tmp, size_t *cap, size_t need) {
  size_t ncap = *cap ? *cap * 2 : 256;
  lq_event *p;
  if (ncap < need) ncap = need * 2;
  if ((p = (lq_event *)realloc(*run, ncap * sizeof(lq_event))) == NULL) return -1;
  *run = p;
  if ((p = (lq_event *)realloc(*tmp, ncap * sizeof(lq_event))) == NULL) return -1;
  *tmp = p;
  *cap = ncap;
  return 0;
}

/* A run of one lead's events ends: the range's first run waits (its lead's events may begin in the
** range before), the others are folded now. A lead folded before stops the folding. */
static void end_run(stream_job *j) {
  stream_ctx *x = j->x;
  if (j->head == NULL) {   /* the run's buffer becomes the head's */
    j->head = j->run;
    j->head_row = j->run_row;
    j->head_n = j->run_n;
    j->run = NULL;
    j->run_cap = 0;
    free(j->tmp);
    j->tmp = NULL;
    return;
  }
  if (lq_fs_fold(x->pass, j->folder, j->run_row, j->run, j->run_n, j->tmp) != 0)
    __atomic_store_n(&x->ungrouped, 1, __ATOMIC_RELAXED);
}

/* Folding (the first reading): the events of a lead's run gathered, the run folded as the next begins. */
static int fold_event(stream_job *j, int32_t row, const lq_event *e) {
  if (row != j->run_row) {
    if (j->run_row >= 0) {
      end_run(j);
      if (__atomic_load_n(&j->x->ungrouped, __ATOMIC_RELAXED)) return 1;
    }
    j->run_row = row;
    j->run_n = 0;
  }
  if (j->run_n == j->run_cap && grow_run(&j->run, &j->tmp, &j->run_cap, j->run_n + 1) != 0) return -1;
  j->run[j->run_n++] = *e;
  return 0;
}

static int note_unknown(stream_job *j, const char *id, size_t len) {
  if (j->nunknown == j->x->max_unknown) return 0;
  if (j->ids_len + len + 1 > j->ids_cap) {
    size_t cap = (j->ids_cap + len + 1) * 2;
    char *p = (char *)realloc(j->unknown_ids, cap);
    if (p == NULL) return -1;
    j->unknown_ids = p;
    j->ids_cap = cap;
  }
  if (j->unknown_rows == NULL) {
    j->unknown_rows = (size_t *)malloc(j->x->max_unknown * sizeof(size_t));
    if (j->unknown_rows == NULL) return -1;
  }
  memcpy(j->unknown_ids + j->ids_len, id, len);
  j->unknown_ids[j->ids_len + len] = '\0';
  j->ids_len += len + 1;
  j->unknown_rows[j->nunknown++] = (size_t)j->lines;
  return 0;
}

/* Two short strings equal: the first 16 bytes compared as two words (both have that many readable). */
static inline int same_id(const char *a, const char *b, size_t len) {
  uint64_t a0, a1, b0, b1, m0, m1;
  if (len > 16) return memcmp(a, b, len) == 0;
  memcpy(&a0, a, 8);
  memcpy(&a1, a + 8, 8);
  memcpy(&b0, b, 8);
  memcpy(&b1, b + 8, 8);
  m0 = len >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (len * 8)) - 1);
  m1 = len <= 8 ? 0 : len >= 16 ? ~(uint64_t)0 : (((uint64_t)1 << ((len - 8) * 8)) - 1);
  return ((a0 ^ b0) & m0) == 0 && ((a1 ^ b1) & m1) == 0;
}

/* The set's index of an event type, -1 when no feature or noise rule looks at it (as the bulk pass
** maps the types of a table), remembered for the next lines. */
static int32_t type_of(stream_job *j, const char *s, size_t len) {
  const lq_feature_set *fs = j->x->fs;
  type_entry *e = NULL;
  int32_t t;
  if (len <= TYPE_KEPT) {
    unsigned h = (unsigned)len * 31u + (unsigned char)s[0] * 7u + (unsigned char)s[len - 1] * 131u +
                 (unsigned char)s[len / 2];
    e = &j->types[h & (TYPE_CACHE - 1)];
    if (e->len == len && memcmp(e->bytes, s, len) == 0) return e->type;
  }
  t = lq_fs_type_index(fs, s, len);
  t = (fs->type_off[t + 1] > fs->type_off[t] || fs->type_flags[t]) ? t : -1;
  if (e != NULL) {
    e->len = (unsigned char)len;
    memcpy(e->bytes, s, len);
    e->type = t;
  }
  return t;
}

/* The lead row of an event's lead_id; a run of lines of one lead looks it up once. */
static int32_t row_of(stream_job *j, const char *s, size_t len) {
  const stream_ctx *x = j->x;
  int32_t r;
  if (len == j->prev_len && same_id(s, j->prev, len)) return j->prev_row;
  /* exports list the leads and their events in the same order: the next lead is most often the row
  ** after the last one's, found without touching the hash (whose slots are all over memory). With
  ** unique ids, a lead that has the id is the one. */
  r = j->prev_row + 1;
  if (x->dups != NULL || j->prev_len > ID_KEPT || r <= 0 || (size_t)r >= x->nleads || !id_equal(x, r, s, len))
    r = id_find(x, s, len);
  if (len <= ID_KEPT) {
    memcpy(j->prev, s, len);
    j->prev_len = len;
    j->prev_row = r;
  } else {
    j->prev_len = ID_KEPT + 1;
  }
  if (x->dups != NULL && r >= 0) j->named[r >> 6] |= (uint64_t)1 << (r & 63);
  return r;
}

/* One line's fields as the reader would store them, counted or kept; 1 when the stream declines it. */
static int take_line(stream_job *j, const char *const *at, const size_t *len) {
  const stream_ctx *x = j->x;
  const lq_feature_set *fs = x->fs;
  double t, value = NAN;
  int32_t type, row;
  if (len[ROLE_LEAD] == 0 || len[ROLE_TYPE] == 0 || len[ROLE_AT] == 0) {
    j->why = "a line with no lead_id, type or at";
    return 1;
  }
  if (!lq_scan_time_cached(&j->months, at[ROLE_AT], len[ROLE_AT], &t)) {
    j->why = "a time the reader does not take";
    return 1;
  }
  if (x->has_value && len[ROLE_VALUE] > 0 && !lq_scan_number(at[ROLE_VALUE], len[ROLE_VALUE], &value)) {
    size_t k = 0;
    while (k < len[ROLE_VALUE] && is_space(at[ROLE_VALUE][k])) k++;
    if (k < len[ROLE_VALUE]) {
      j->why = "a value that is no number";
      return 1;
    }
  }
  row = row_of(j, at[ROLE_LEAD], len[ROLE_LEAD]);
  type = type_of(j, at[ROLE_TYPE], len[ROLE_TYPE]);
  if (type < 0) {
    j->ignored += 1;
    return 0;
  }
  if (t > x->as_of) {
    j->after_as_of += 1;
    return 0;
  }
  if (row < 0) {
    j->unknown += 1;
    if (note_unknown(j, at[ROLE_LEAD], len[ROLE_LEAD]) != 0) j->failed = 1;
    return 0;
  }
  {
    lq_event e;
    e.at = t;
    e.value = value;
    e.type = type;
    e.mask = 0;
    if (fs->type_filtered[type] & 1) {
      int k;
      for (k = 0; k < fs->nevent_filters; k++) {
        size_t l = len[ROLE_FILTER + k];
        if (l > 0 && lq_fs_filter_match(fs, x->filter_of_bit[k], at[ROLE_FILTER + k], l)) e.mask |= 1u << k;
      }
    }
    j->used += 1;
    return x->fold ? fold_event(j, row, &e) : keep_event(j, row, &e);
  }
}

/* The lines of [p, stop), stop just past a newline: each line's fields found 16 bytes at a time, those
** the features read kept by role, the others only counted. 0, or 1 when declined (why set) or failed. */
static int take_lines(stream_job *j, const char *p, const char *stop) {
  const stream_ctx *x = j->x;
  const char sep = x->sep;
  const int ncols = x->ncols;
  const int *role = x->role;
  const char *at[NROLES];
  size_t len[NROLES];
  memset(at, 0, sizeof at);
  memset(len, 0, sizeof len);
  while (p < stop) {
    const char *q = p, *field = p;
    int k = 0, r;
    for (;;) {
      unsigned ms, mn, mx, before;
      block_masks(q, sep, &ms, &mn, &mx);
      before = mn ? (mn & (0u - mn)) - 1 : 0xffffu;   /* the bytes before the line's newline */
      if (mx & before) {   /* a quote or a carriage return: only \r\n ends a line here */
        unsigned b = (unsigned)__builtin_ctz(mx & before);
        if (q[b] != '\r' || q[b + 1] != '\n') {
          j->why = q[b] == '"' ? "a quote" : "a carriage return inside a line";
          return 1;
        }
        before = (1u << b) - 1;
        mn = 1u << b;   /* the line ends at the \r; the \n after it is skipped below */
      }
      ms &= before;
      while (ms) {
        const char *end = q + __builtin_ctz(ms);
        if ((r = role[k]) >= 0) {
          at[r] = field;
          len[r] = (size_t)(end - field);
        }
        if (++k == ncols) {
          j->why = "a line with more fields than the header";
          return 1;
        }
        field = end + 1;
        ms &= ms - 1;
      }
      if (mn) {
        const char *end = q + __builtin_ctz(mn);
        if (end == p) {
          j->why = "a blank line";
          return 1;
        }
        if ((r = role[k]) >= 0) {
          at[r] = field;
          len[r] = (size_t)(end - field);
        }
        p = end + (*end == '\r' ? 2 : 1);
        break;
      }
      q += 16;
    }
    if (k != ncols - 1) {
      j->why = "a line with fewer fields than the header";
      return 1;
    }
    if ((r = take_line(j, at, len)) != 0 || j->failed) {
      if (r < 0) j->failed = 1;
      return 1;
    }
    j->lines++;
  }
  return 0;
}

static int ensure_buf(stream_job *j, size_t need) {
  char *p;
  if (need <= j->buf_cap) return 0;
  p = (char *)realloc(j->buf, need);
  if (p == NULL) return -1;
  j->buf = p;
  j->buf_cap = need;
  return 0;
}

/* A thread: its range read a block at a time, whole lines parsed, a cut line carried to the next. */
static void *run_job(void *arg) {
  stream_job *j = (stream_job *)arg;
  uint64_t off = j->begin;
  size_t carry = 0;
  while (off < j->end) {
    size_t want = j->end - off < LQ_STREAM_BLOCK ? (size_t)(j->end - off) : LQ_STREAM_BLOCK;
    size_t have, last;
    ssize_t got;
    if (ensure_buf(j, carry + want + 1 + STREAM_PAD) != 0) {
      j->failed = 1;
      return NULL;
    }
    do got = pread(j->x->fd, j->buf + carry, want, (off_t)off);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {   /* an error, or the file shrank under us */
      j->failed = 2;
      j->errno_ = got < 0 ? errno : EIO;
      return NULL;
    }
    if (off < LQ_CSV_CHUNK) {   /* a zero byte there: the reader refuses the file as binary */
      size_t n = LQ_CSV_CHUNK - off < (size_t)got ? (size_t)(LQ_CSV_CHUNK - off) : (size_t)got;
      if (memchr(j->buf + carry, '\0', n) != NULL) {
        j->why = "a zero byte";
        return NULL;
      }
    }
    off += (uint64_t)got;
    have = carry + (size_t)got;
    if (off >= j->end) {   /* the range's end: a line start, or the file's end (its last line may lack \n) */
      if (j->buf[have - 1] != '\n') j->buf[have++] = '\n';
      last = have;
    } else {   /* up to the block's last newline (the carried bytes have none) */
      last = have;
      while (last > carry && j->buf[last - 1] != '\n') last--;
      if (last == carry) {   /* no line ends in the block: a longer line, read on */
        carry = have;
        continue;
      }
    }
    memset(j->buf + have, 0, STREAM_PAD);
    if (take_lines(j, j->buf, j->buf + last) != 0) return NULL;
    carry = have - last;
    memmove(j->buf, j->buf + last, carry);
  }
  return NULL;
}

/* The first line start at or after from (the file's size when none). */
static uint64_t line_start_after(int fd, uint64_t from, uint64_t size) {
  char buf[65536];
  if (from == 0) return 0;
  from--;   /* a line starts at from when the byte before it is a newline */
  while (from < size) {
    ssize_t got = pread(fd, buf, sizeof buf, (off_t)from);
    const char *nl;
    if (got <= 0) return size;
    nl = (const char *)memchr(buf, '\n', (size_t)got);
    if (nl != NULL) return from + (uint64_t)(nl - buf) + 1;
    from += (uint64_t)got;
  }
  return size;
}

/* ---- the whole call ---- */

typedef struct stream_run {
  stream_ctx x;
  stream_job jobs[STREAM_MAX_THREADS];
  int njobs;
  int32_t *rows;               /* the kept events of every job, in file order */
  lq_event *evs;
  size_t n;
} stream_run;

/* The jobs' own memory (the kept events of a keeping reading are the run's, when joined). */
static void jobs_free(stream_run *r) {
  int t;
  for (t = 0; t < r->njobs; t++) {
    stream_job *j = &r->jobs[t];
    if (r->rows != j->rows) free(j->rows);
    if (r->evs != j->evs) free(j->evs);
    free(j->buf);
    free(j->unknown_rows);
    free(j->unknown_ids);
    free(j->named);
    free(j->run);
    free(j->tmp);
    free(j->head);
  }
  free(r->rows);
  free(r->evs);
  r->rows = NULL;
  r->evs = NULL;
  r->njobs = 0;
}

static void run_free(stream_run *r, const lq_allocator *a) {
  jobs_free(r);
  if (r->x.pass != NULL) lq_fs_fold_end(r->x.pass, NULL, NULL);
  if (r->x.slots != NULL) lq_mem_free(a, r->x.slots, (r->x.mask + 1) * sizeof(id_slot));
  lq_mem_free(a, r->x.dups, r->x.nleads * sizeof(uint32_t));
  if (r->x.fd >= 0) close(r->x.fd);
}

/* The ranges: about size / njobs bytes each, every one starting at a line start. */
static int plan_jobs(stream_run *r, uint64_t data_start, uint64_t size, int nthreads) {
  uint64_t span = size - data_start, begin = data_start;
  int t, n = nthreads;
  if (n > STREAM_MAX_THREADS) n = STREAM_MAX_THREADS;
  if ((uint64_t)n > span / LQ_STREAM_MIN_RANGE) n = (int)(span / LQ_STREAM_MIN_RANGE);
  if (n < 1) n = 1;
  r->njobs = n;
  for (t = 0; t < n; t++) {
    stream_job *j = &r->jobs[t];
    uint64_t end = t == n - 1 ? size : line_start_after(r->x.fd, data_start + span / (uint64_t)n * (uint64_t)(t + 1), size);
    if (end < begin) end = begin;
    memset(j, 0, sizeof *j);
    j->x = &r->x;
    j->begin = begin;
    j->end = end;
    j->prev_len = ID_KEPT + 1;
    j->folder = t;
    j->run_row = -1;
    lq_month_cache_init(&j->months);
    j->head_row = -1;
    if (r->x.dups != NULL) {
      j->named = (uint64_t *)calloc((r->x.nleads + 63) / 64 + 1, sizeof(uint64_t));
      if (j->named == NULL) return -1;
    }
    begin = end;
  }
  return 0;
}


/* The jobs' counts into the report, in file order: unknown rows numbered from the first data line,
** duplicate ids counted once per id an event names (as the table's join counts them). */
static int sum_jobs(stream_run *r, const lq_feature_set *fs, lq_compute_report *report) {
  size_t before = 0, nunknown = 0, ids = 0, k;
  int t;
  for (t = 0; t < r->njobs; t++) {
    stream_job *j = &r->jobs[t];
    report->events += (double)j->lines;
    report->ignored += j->ignored;
    report->after_as_of += j->after_as_of;
    report->unknown += j->unknown;
    report->used += j->used;
    nunknown += j->nunknown;
    ids += j->ids_len;
  }
  if (nunknown > r->x.max_unknown) nunknown = r->x.max_unknown;
  if (nunknown > 0) {
    report->unknown_rows = (size_t *)lq_mem_resize(&fs->alloc, NULL, 0, nunknown * sizeof(size_t));
    if (report->unknown_rows == NULL) return -1;
    report->unknown_cap = nunknown;
    report->unknown_ids = (char *)lq_mem_resize(&fs->alloc, NULL, 0, ids);
    if (report->unknown_ids == NULL) return -1;
    for (t = 0; t < r->njobs && report->nunknown_rows < nunknown; t++) {
      stream_job *j = &r->jobs[t];
      const char *id = j->unknown_ids;
      for (k = 0; k < j->nunknown && report->nunknown_rows < nunknown; k++) {
        size_t l = strlen(id) + 1;
        report->unknown_rows[report->nunknown_rows++] = before + j->unknown_rows[k];
        memcpy(report->unknown_ids + report->unknown_ids_len, id, l);
        report->unknown_ids_len += l;
        id += l;
      }
      before += (size_t)j->lines;
    }
  }
  if (r->x.dups != NULL) {
    size_t w, words = (r->x.nleads + 63) / 64;
    for (w = 0; w < words; w++) {
      uint64_t named = 0;
      for (t = 0; t < r->njobs; t++) named |= r->jobs[t].named[w];
      while (named) {
        size_t row = (w << 6) + (size_t)__builtin_ctzll(named);
        report->duplicate_ids += r->x.dups[row];
        named &= named - 1;
      }
    }
  }
  return 0;
}

/* Every job's kept events in one pair of arrays (one job: its own). */
static int join_kept(stream_run *r) {
  size_t n = 0, at = 0;
  int t;
  if (r->njobs == 1) {   /* the job's own arrays become the run's */
    r->rows = r->jobs[0].rows;
    r->evs = r->jobs[0].evs;
    r->n = r->jobs[0].n;
    r->jobs[0].rows = NULL;
    r->jobs[0].evs = NULL;
    return 0;
  }
  for (t = 0; t < r->njobs; t++) n += r->jobs[t].n;
  r->rows = (int32_t *)malloc((n ? n : 1) * sizeof(int32_t));
  r->evs = (lq_event *)malloc((n ? n : 1) * sizeof(lq_event));
  if (r->rows == NULL || r->evs == NULL) return -1;
  for (t = 0; t < r->njobs; t++) {
    stream_job *j = &r->jobs[t];
    if (j->n > 0) {
      memcpy(r->rows + at, j->rows, j->n * sizeof(int32_t));
      memcpy(r->evs + at, j->evs, j->n * sizeof(lq_event));
    }
    at += j->n;
    free(j->rows);
    free(j->evs);
    j->rows = NULL;
    j->evs = NULL;
  }
  r->n = n;
  return 0;
}

/* The runs the threads left at their ranges' edges, in file order: a lead's run cut between two ranges
** (or more) is one run again, and is folded whole. 0, 1 when a lead was folded before, -1 no memory. */
typedef struct stitch {
  lq_event *ev, *tmp;
  size_t n, cap;
  int32_t row;
} stitch;

static int stitch_add(stitch *c, int32_t row, const lq_event *ev, size_t n) {
  if (c->n + n > c->cap && grow_run(&c->ev, &c->tmp, &c->cap, c->n + n) != 0) return -1;
  memcpy(c->ev + c->n, ev, n * sizeof(lq_event));
  c->n += n;
  c->row = row;
  return 0;
}

static int stitch_flush(stitch *c, lq_fold_pass *pass) {
  int rc = 0;
  if (c->n > 0) rc = lq_fs_fold(pass, 0, c->row, c->ev, c->n, c->tmp);
  c->n = 0;
  c->row = -1;
  return rc;
}

static int fold_edges(stream_run *r) {
  stitch c = { NULL, NULL, 0, 0, -1 };
  int t, rc = 0;
  for (t = 0; t < r->njobs && rc == 0; t++) {
    stream_job *j = &r->jobs[t];
    int32_t first_row = j->head ? j->head_row : j->run_row;
    const lq_event *first = j->head ? j->head : j->run;
    size_t first_n = j->head ? j->head_n : j->run_n;
    if (first_row < 0) continue;   /* no kept event in the range */
    if (first_row != c.row) rc = stitch_flush(&c, r->x.pass);
    if (rc == 0 && stitch_add(&c, first_row, first, first_n) != 0) rc = -1;
    if (rc == 0 && j->head != NULL) {   /* the range's last run, after its first */
      rc = stitch_flush(&c, r->x.pass);
      if (rc == 0 && stitch_add(&c, j->run_row, j->run, j->run_n) != 0) rc = -1;
    }
  }
  if (rc == 0) rc = stitch_flush(&c, r->x.pass);
  free(c.ev);
  free(c.tmp);
  return rc;
}

/* One reading of the file on the jobs: 0, or -1 (err set), or 1 when declined (err set). */
static int read_file(stream_run *r, const char *path, uint64_t data_start, uint64_t size, int nthreads, char *err,
                     size_t errlen) {
  int t;
  if (plan_jobs(r, data_start, size, nthreads) != 0) {
    snprintf(err, errlen, "not enough memory for the feature computation");
    return -1;
  }
  lq_run_jobs(run_job, r->jobs, sizeof r->jobs[0], r->njobs);
  for (t = 0; t < r->njobs; t++) {
    stream_job *j = &r->jobs[t];
    if (j->failed == 1) {
      snprintf(err, errlen, "not enough memory for the feature computation");
      return -1;
    }
    if (j->failed == 2) {
      snprintf(err, errlen, "%s: %s", path, strerror(j->errno_));
      return -1;
    }
    if (j->why != NULL) {
      uint64_t line = 2;   /* the header, then this range's line */
      int k;
      for (k = 0; k < t; k++) line += r->jobs[k].lines;
      snprintf(err, errlen, "%s:%llu: %s", path, (unsigned long long)(line + j->lines), j->why);
      return 1;
    }
  }
  return 0;
}

int lq_fs_compute_csv(const lq_feature_set *fs, const lq_table *leads, const char *id_column, const char *path,
                      double as_of, size_t max_unknown, int nthreads, lq_table **out, lq_compute_report *report,
                      char *err, size_t errlen) {
  stream_run *r;
  struct stat sb;
  const char *why = NULL;
  uint64_t data_start;
  int ci, rc = 0;
  *out = NULL;
  memset(report, 0, sizeof *report);
  ci = lq_table_find(leads, id_column);
  if (ci < 0) {
    snprintf(err, errlen, "leads have no column '%s' to join events on", id_column);
    return -1;
  }
  r = (stream_run *)calloc(1, sizeof *r);
  if (r == NULL) {
    snprintf(err, errlen, "not enough memory for the feature computation");
    return -1;
  }
  r->x.fs = fs;
  r->x.idc = leads->cols[ci];
  r->x.nleads = leads->nrows;
  r->x.as_of = as_of;
  r->x.max_unknown = max_unknown;
  r->x.fd = open(path, O_RDONLY);
  if (r->x.fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    rc = -1;
    goto done;
  }
  if (fstat(r->x.fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    why = "not a regular file";
    goto declined;
  }
  data_start = read_header(&r->x, &why);
  if (data_start == 0) goto declined;
  if (index_ids(&r->x, &fs->alloc) != 0) {
    snprintf(err, errlen, "not enough memory for the feature computation");
    rc = -1;
    goto done;
  }
  /* first each run folded as it is read; a lead met in two runs, then the file again, every event kept */
  r->x.fold = 1;
  if ((rc = lq_fs_fold_begin(fs, leads, id_column, as_of, nthreads, &r->x.pass, err, errlen)) != 0)
    goto done;
  rc = read_file(r, path, data_start, (uint64_t)sb.st_size, nthreads, err, errlen);
  if (rc != 0) goto done;   /* declined (a line the stream does not take is declined on any reading) */
  if (!r->x.ungrouped) {
    int edges = fold_edges(r);   /* 1: a run at a range's edge is of a lead folded before */
    if (edges < 0) {
      snprintf(err, errlen, "not enough memory for the feature computation");
      rc = -1;
      goto done;
    }
    if (edges > 0) r->x.ungrouped = 1;
  }
  if (!r->x.ungrouped) {
    if (sum_jobs(r, fs, report) != 0 || lq_fs_fold_end(r->x.pass, report, out) != 0) {
      snprintf(err, errlen, "not enough memory for the feature computation");
      rc = -1;
    }
    r->x.pass = NULL;
    goto done;
  }
  lq_fs_fold_end(r->x.pass, NULL, NULL);
  r->x.pass = NULL;
  r->x.fold = 0;
  r->x.ungrouped = 0;
  jobs_free(r);
  rc = read_file(r, path, data_start, (uint64_t)sb.st_size, nthreads, err, errlen);
  if (rc != 0) goto done;
  if (sum_jobs(r, fs, report) != 0 || join_kept(r) != 0) {
    snprintf(err, errlen, "not enough memory for the feature computation");
    rc = -1;
    goto done;
  }
  rc = lq_fs_compute_made(fs, leads, id_column, r->rows, r->evs, r->n, as_of, nthreads, out, report, err, errlen);
  goto done;
declined:
  snprintf(err, errlen, "%s: %s", path, why ? why : "declined");
  rc = 1;
done:
  if (rc != 0) lq_compute_report_free(fs, report);
  run_free(r, &fs->alloc);
  free(r);
  return rc;
}
