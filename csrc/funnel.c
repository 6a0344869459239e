/* The lifecycle funnel: transition log, validation, aggregation, mergeable results. No Lua here. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv_writer.h"
#include "funnel.h"
#include "run_jobs.h"

/* ---------------------------------------------------------------- memory (alloc.h: lq_mem_call) */

/* lq_mem_call for the funnel's big arrays (the log, the keys, per-lead state): a block of a few MB or
** more is advised into transparent huge pages, whose first touch faults once per 2 MB, not per 4 KB
** (the faults were a fifth of a million leads' load). */
static void *mem_big(lq_allocator *a, void *p, size_t osize, size_t nsize) {
  void *np = lq_mem_call(a, p, osize, nsize);
  if (np != NULL && nsize > 0) lq_advise_huge_pages(np, nsize);
  return np;
}

/* Grows *p (elem bytes each) from *cap to at least need; 0 or -1. */
static int grow(lq_allocator *a, void **p, size_t *cap, size_t need, size_t elem) {
  size_t ncap;
  void *np;
  if (need <= *cap) return 0;
  ncap = *cap < 8 ? 8 : *cap;
  while (ncap < need) {
    if (ncap > ((size_t)-1) / 2 / elem) return -1;
    ncap *= 2;
  }
  np = mem_big(a, *p, *cap * elem, ncap * elem);
  if (np == NULL) return -1;
  *p = np;
  *cap = ncap;
  return 0;
}

static char *dup_string(lq_allocator *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)lq_mem_call(a, NULL, 0, n);
  if (d != NULL) memcpy(d, s, n);
  return d;
}

/* ---------------------------------------------------------------- keys */

void lq_keys_init(lq_keys *k) { memset(k, 0, sizeof *k); }

void lq_keys_free(lq_keys *k, lq_allocator *a) {
  size_t cap = (size_t)k->cap_items;
  lq_mem_call(a, k->bytes, k->cap, 0);
  lq_mem_call(a, k->starts, cap * sizeof(size_t), 0);
  lq_mem_call(a, k->lengths, cap * sizeof(uint32_t), 0);
  if (k->slots != NULL) lq_mem_call(a, k->slots, ((size_t)k->slot_mask + 1) * sizeof(lq_key_slot), 0);
  lq_keys_init(k);
}

void lq_keys_prefetch(const lq_keys *k, uint32_t hash) {
  if (k->slots != NULL) __builtin_prefetch(&k->slots[hash & k->slot_mask]);
}

int32_t lq_keys_find_hashed(const lq_keys *k, const char *s, size_t len, uint32_t h) {
  uint32_t i;
  if (k->slots == NULL) return -1;
  for (i = h & k->slot_mask;; i = (i + 1) & k->slot_mask) {
    const lq_key_slot *sl = &k->slots[i];
    if (sl->id < 0) return -1;
    if (sl->hash == h && k->lengths[sl->id] == len && memcmp(k->bytes + k->starts[sl->id], s, len) == 0)
      return sl->id;
  }
}

int32_t lq_keys_find(const lq_keys *k, const char *s, size_t len) {
  return k->slots == NULL ? -1 : lq_keys_find_hashed(k, s, len, lq_hash_bytes(s, len));
}

/* The slots made again at nslots (a power of two), from the old ones: each keeps its hash. */
static int keys_rehash(lq_keys *k, lq_allocator *a, size_t nslots) {
  lq_key_slot *slots = (lq_key_slot *)mem_big(a, NULL, 0, nslots * sizeof(lq_key_slot));
  size_t old = k->slots == NULL ? 0 : (size_t)k->slot_mask + 1, j;
  if (slots == NULL) return -1;
  memset(slots, 0xff, nslots * sizeof(lq_key_slot));
  for (j = 0; j < old; j++) {
    uint32_t i;
    if (k->slots[j].id < 0) continue;
    for (i = k->slots[j].hash & (uint32_t)(nslots - 1); slots[i].id >= 0; i = (i + 1) & (uint32_t)(nslots - 1)) {}
    slots[i] = k->slots[j];
  }
  if (k->slots != NULL) mem_big(a, k->slots, old * sizeof(lq_key_slot), 0);
  k->slots = slots;
  k->slot_mask = (uint32_t)(nslots - 1);
  return 0;
}

/* The per-key arrays resized from cap_items to ncap; on failure each keeps its old size. */
static int keys_resize_items(lq_keys *k, lq_allocator *a, size_t ncap) {
  size_t old = (size_t)k->cap_items;
  size_t *st = (size_t *)mem_big(a, k->starts, old * sizeof(size_t), ncap * sizeof(size_t));
  uint32_t *ln;
  if (st == NULL) return -1;
  k->starts = st;
  ln = (uint32_t *)mem_big(a, k->lengths, old * sizeof(uint32_t), ncap * sizeof(uint32_t));
  if (ln == NULL) {
    k->starts = (size_t *)mem_big(a, st, ncap * sizeof(size_t), old * sizeof(size_t));
    return -1;
  }
  k->lengths = ln;
  k->cap_items = (int32_t)ncap;
  return 0;
}

/* Room for `items` more keys of `bytes` bytes in all, made at once: a million interned one by one
** would copy the arrays and rehash the slots some twenty times. 0, or -1 on no memory. */
static int keys_reserve(lq_keys *k, lq_allocator *a, size_t items, size_t bytes) {
  size_t want = (size_t)k->count + items, nslots = 16;
  if (want > (size_t)INT32_MAX - 1) return -1;
  while (nslots < want * 2) nslots *= 2;
  if ((k->slots == NULL || nslots > (size_t)k->slot_mask + 1) && keys_rehash(k, a, nslots) != 0) return -1;
  if (want > (size_t)k->cap_items && keys_resize_items(k, a, want) != 0) return -1;
  return grow(a, (void **)&k->bytes, &k->cap, k->len + bytes, 1);
}

/* A new key (absent, with room for it in every array): its index. */
static int32_t keys_insert(lq_keys *k, const char *s, size_t len, uint32_t h) {
  int32_t c;
  uint32_t i;
  memcpy(k->bytes + k->len, s, len);
  k->bytes[k->len + len] = '\0';
  c = k->count++;
  k->starts[c] = k->len;
  k->lengths[c] = (uint32_t)len;
  k->len += len + 1;
  for (i = h & k->slot_mask; k->slots[i].id >= 0; i = (i + 1) & k->slot_mask) {}
  k->slots[i].hash = h;
  k->slots[i].id = c;
  return c;
}

int32_t lq_keys_intern_hashed(lq_keys *k, lq_allocator *a, const char *s, size_t len, uint32_t h) {
  int32_t c = lq_keys_find_hashed(k, s, len, h);
  if (c >= 0) return c;
  if (len > UINT32_MAX || k->count == INT32_MAX - 1) return -2;
  if (k->slots == NULL || (size_t)(k->count + 1) * 2 > (size_t)k->slot_mask + 1) {
    size_t nslots = k->slots == NULL ? 16 : ((size_t)k->slot_mask + 1) * 2;
    if (keys_rehash(k, a, nslots) != 0) return -2;
  }
  if (k->count == k->cap_items) {
    size_t old = (size_t)k->cap_items;
    if (keys_resize_items(k, a, old < 8 ? 8 : old * 2) != 0) return -2;
  }
  if (grow(a, (void **)&k->bytes, &k->cap, k->len + len + 1, 1) != 0) return -2;
  return keys_insert(k, s, len, h);
}

/* lq_keys_intern_hashed within the room made already, for a thread that must not allocate: -3 when
** the room is short. */
static int32_t keys_intern_reserved(lq_keys *k, const char *s, size_t len, uint32_t h) {
  int32_t c = lq_keys_find_hashed(k, s, len, h);
  if (c >= 0) return c;
  if (k->slots == NULL || len > UINT32_MAX || k->count >= k->cap_items ||
      (size_t)(k->count + 1) * 2 > (size_t)k->slot_mask + 1 || k->len + len + 1 > k->cap)
    return -3;
  return keys_insert(k, s, len, h);
}

int32_t lq_keys_intern(lq_keys *k, lq_allocator *a, const char *s, size_t len) {
  return lq_keys_intern_hashed(k, a, s, len, lq_hash_bytes(s, len));
}

const char *lq_keys_string(const lq_keys *k, int32_t i, size_t *len) {
  if (i < 0 || i >= k->count) { if (len) *len = 0; return NULL; }
  if (len) *len = k->lengths[i];
  return k->bytes + k->starts[i];
}

/* ---------------------------------------------------------------- times */

void lq_format_date(double t, char *buf, size_t size) {
  int64_t y;
  unsigned m, d;
  lq_civil_from_days((int64_t)floor(t / 86400.0), &y, &m, &d);
  snprintf(buf, size, "%04lld-%02u-%02u", (long long)y, m, d);
}

/* ---------------------------------------------------------------- slab (funnel.h: lq_slab) */

#define SLAB_FIRST_CHUNK ((size_t)64 << 10)   /* a small result's first chunk: no 2 MB to zero */
#define SLAB_BIG_CHUNK ((size_t)2 << 20)
#define SLAB_HEADER 16                          /* a chunk's link (and its size), blocks 16-aligned */

static int slab_class(size_t n) {
  int k = 0;
  while (k < LQ_SLAB_CLASSES && ((size_t)16 << k) < n) k++;
  return k;   /* LQ_SLAB_CLASSES: too big for a class */
}

static void *slab_take(lq_slab *sl, int k) {
  size_t size = (size_t)16 << k;
  void *p = sl->free_blocks[k];
  if (p != NULL) {
    sl->free_blocks[k] = *(void **)p;
    return p;
  }
  if (sl->chunk == NULL || sl->used + size > sl->size) {
    size_t csize = sl->size == 0 ? SLAB_FIRST_CHUNK : sl->size * 2;
    char *c;
    if (csize > SLAB_BIG_CHUNK) csize = SLAB_BIG_CHUNK;
    if ((c = (char *)lq_mem_call(&sl->under, NULL, 0, csize)) == NULL) return NULL;
    *(void **)(void *)c = sl->chunks;   /* the chunk's head: the next chunk, its size */
    *(size_t *)(void *)(c + sizeof(void *)) = csize;
    sl->chunks = c;
    sl->chunk = c;
    sl->size = csize;
    sl->used = SLAB_HEADER;
  }
  p = sl->chunk + sl->used;
  sl->used += size;
  return p;
}

/* A block of class k (LQ_SLAB_CLASSES: the allocator's own, osize bytes) given back. */
static void slab_give(lq_slab *sl, void *p, size_t osize, int k) {
  if (k == LQ_SLAB_CLASSES) {
    lq_mem_call(&sl->under, p, osize, 0);
    return;
  }
  *(void **)p = sl->free_blocks[k];
  sl->free_blocks[k] = p;
}

/* lua_Alloc's contract over a slab (ud): a block keeps its class when resized within it. */
static void *slab_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  lq_slab *sl = (lq_slab *)ud;
  int ko = p != NULL ? slab_class(osize) : 0, kn;
  void *np;
  if (nsize == 0) {
    if (p != NULL) slab_give(sl, p, osize, ko);
    return NULL;
  }
  kn = slab_class(nsize);
  if (p != NULL && ko == kn) {
    if (kn < LQ_SLAB_CLASSES) return p;
    return lq_mem_call(&sl->under, p, osize, nsize);
  }
  np = kn == LQ_SLAB_CLASSES ? lq_mem_call(&sl->under, NULL, 0, nsize) : slab_take(sl, kn);
  if (np == NULL) return NULL;
  if (p != NULL) {
    memcpy(np, p, osize < nsize ? osize : nsize);
    slab_give(sl, p, osize, ko);
  }
  return np;
}

static void slab_init(lq_slab *sl, lq_allocator under) {
  memset(sl, 0, sizeof *sl);
  sl->under = under;
}

static void slab_free(lq_slab *sl) {
  void *c = sl->chunks;
  while (c != NULL) {
    void *next = *(void **)c;
    lq_mem_call(&sl->under, c, *(size_t *)(void *)((char *)c + sizeof(void *)), 0);
    c = next;
  }
  slab_init(sl, sl->under);
}

/* ---------------------------------------------------------------- sketches */

static double sketch_gamma(void) { return (1.0 + LQ_SKETCH_ALPHA) / (1.0 - LQ_SKETCH_ALPHA); }

/* Makes the buckets cover indices lo..hi. */
static int sketch_cover(lq_allocator *a, lq_sketch *s, int32_t lo, int32_t hi) {
  int32_t nmin, nmax, nlen, ncap;
  uint64_t *nb;
  if (s->len > 0 && lo >= s->min_index && hi < s->min_index + s->len) return 0;
  if (s->len == 0) { nmin = lo; nmax = hi; }
  else {
    nmin = lo < s->min_index ? lo : s->min_index;
    nmax = hi > s->min_index + s->len - 1 ? hi : s->min_index + s->len - 1;
  }
  nlen = nmax - nmin + 1;
  if (s->len > 0 && nmin == s->min_index && nlen <= s->cap) { s->len = nlen; return 0; }
  ncap = nlen + nlen / 2 + 8;   /* room to grow at the back; the front moves rarely */
  nb = (uint64_t *)lq_mem_call(a, NULL, 0, (size_t)ncap * sizeof(uint64_t));
  if (nb == NULL) return -1;
  memset(nb, 0, (size_t)ncap * sizeof(uint64_t));
  if (s->len > 0) memcpy(nb + (s->min_index - nmin), s->buckets, (size_t)s->len * sizeof(uint64_t));
  lq_mem_call(a, s->buckets, (size_t)s->cap * sizeof(uint64_t), 0);
  s->buckets = nb;
  s->cap = ncap;
  s->min_index = nmin;
  s->len = nlen;
  return 0;
}

/* Adds v (> 0) to the buckets. 0 or -1 on no memory. */
static int bucket_add(lq_allocator *a, lq_sketch *s, double v, double inv_ln_gamma) {
  int32_t i;
  if (v < 1e-3) v = 1e-3;   /* below a millisecond: one bucket */
  i = (int32_t)ceil(log(v) * inv_ln_gamma);
  if (sketch_cover(a, s, i, i) != 0) return -1;
  s->buckets[i - s->min_index]++;
  return 0;
}

/* While a sketch keeps its values exactly its buckets stay empty: most cells never hold more than
** LQ_SKETCH_EXACT values, and their buckets (a few KB each) were most of an aggregation's memory.
** Past that, the exact values go into the buckets and are dropped: from then on the buckets alone
** answer. 0 or -1 on no memory. */
static int sketch_spill(lq_allocator *a, lq_sketch *s) {
  double inv_ln_gamma = 1.0 / log(sketch_gamma());
  uint32_t k;
  if (s->len > 0) memset(s->buckets, 0, (size_t)s->len * sizeof(uint64_t));
  for (k = 0; k < s->nexact; k++)
    if (s->exact[k] > 0 && bucket_add(a, s, s->exact[k], inv_ln_gamma) != 0) return -1;
  lq_mem_call(a, s->exact, (size_t)s->exact_cap * sizeof(double), 0);
  s->exact = NULL;
  s->nexact = s->exact_cap = 0;
  s->spilled = 1;
  return 0;
}

/* n more exact values (the caller keeps nexact + n <= LQ_SKETCH_EXACT). 0 or -1. */
static int sketch_keep(lq_allocator *a, lq_sketch *s, const double *v, uint32_t n) {
  if (s->nexact + n > s->exact_cap) {
    uint32_t ncap = s->exact_cap ? s->exact_cap * 2 : 8;
    double *nv;
    while (ncap < s->nexact + n) ncap *= 2;
    if (ncap > LQ_SKETCH_EXACT) ncap = LQ_SKETCH_EXACT;
    nv = (double *)lq_mem_call(a, s->exact, (size_t)s->exact_cap * sizeof(double), (size_t)ncap * sizeof(double));
    if (nv == NULL) return -1;
    s->exact = nv;
    s->exact_cap = ncap;
  }
  memcpy(s->exact + s->nexact, v, (size_t)n * sizeof(double));
  s->nexact += n;
  return 0;
}

static int sketch_add(lq_allocator *a, lq_sketch *s, double v, double inv_ln_gamma) {
  if (!(v > 0)) v = 0;
  s->count++;
  if (v == 0) s->zeros++;
  if (!s->spilled) {
    if (s->nexact < LQ_SKETCH_EXACT) return sketch_keep(a, s, &v, 1);
    if (sketch_spill(a, s) != 0) return -1;
  }
  return v == 0 ? 0 : bucket_add(a, s, v, inv_ln_gamma);
}

static int sketch_merge(lq_allocator *a, lq_sketch *s, const lq_sketch *o) {
  int32_t i;
  if (!s->spilled && !o->spilled && (uint64_t)s->nexact + o->nexact <= LQ_SKETCH_EXACT) {
    if (o->nexact > 0 && sketch_keep(a, s, o->exact, o->nexact) != 0) return -1;
  } else {
    if (!s->spilled && sketch_spill(a, s) != 0) return -1;
    if (o->spilled && o->len > 0) {
      if (sketch_cover(a, s, o->min_index, o->min_index + o->len - 1) != 0) return -1;
      for (i = 0; i < o->len; i++) s->buckets[o->min_index + i - s->min_index] += o->buckets[i];
    } else if (!o->spilled) {
      double inv_ln_gamma = 1.0 / log(sketch_gamma());
      uint32_t k;
      for (k = 0; k < o->nexact; k++)
        if (o->exact[k] > 0 && bucket_add(a, s, o->exact[k], inv_ln_gamma) != 0) return -1;
    }
  }
  s->zeros += o->zeros;
  s->count += o->count;
  return 0;
}

static void sketch_free(lq_allocator *a, lq_sketch *s) {
  lq_mem_call(a, s->buckets, (size_t)s->cap * sizeof(uint64_t), 0);
  lq_mem_call(a, s->exact, (size_t)s->exact_cap * sizeof(double), 0);
  memset(s, 0, sizeof *s);
}

int lq_sketch_exact(const lq_sketch *s) {
  return !s->spilled && s->count > 0 && (uint64_t)s->nexact == s->count;
}

/* Exact: interpolated between the values at ranks floor(h) and floor(h) + 1, h = q * (count - 1).
** Otherwise the value at rank floor(q * (count - 1)) in sorted order, within LQ_SKETCH_ALPHA. */
/* The k-th smallest of v[0, n) (from 0), v reordered so that the values before k are no greater and
** those after no smaller (Wirth's selection): the ranks a quantile reads, without sorting them all,
** the same values a sort gives. */
static double select_kth(double *v, int n, int k) {
  int l = 0, m = n - 1;
  while (l < m) {
    double x = v[k];
    int i = l, j = m;
    do {
      while (v[i] < x) i++;
      while (x < v[j]) j--;
      if (i <= j) {
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < k) l = i;
    if (k < i) m = j;
  }
  return v[k];
}

double lq_sketch_quantile(const lq_sketch *s, double q) {
  double rank, cum, gamma = sketch_gamma();
  int32_t i;
  if (s->count == 0) return NAN;
  if (lq_sketch_exact(s)) {
    double v[LQ_SKETCH_EXACT], h, lo_v, next;
    uint32_t n = s->nexact, lo, k;
    memcpy(v, s->exact, (size_t)n * sizeof(double));
    h = q * (double)(n - 1);
    lo = (uint32_t)floor(h);
    lo_v = select_kth(v, (int)n, (int)lo);
    if (lo + 1 >= n) return lo_v;
    for (next = v[lo + 1], k = lo + 2; k < n; k++)   /* the values after lo are its equals or greater */
      if (v[k] < next) next = v[k];
    return lo_v + (h - (double)lo) * (next - lo_v);
  }
  rank = floor(q * (double)(s->count - 1));
  cum = (double)s->zeros;
  if (rank < cum) return 0;
  for (i = 0; i < s->len; i++) {
    cum += (double)s->buckets[i];
    if (rank < cum) break;
  }
  if (i == s->len) i = s->len - 1;
  return 2.0 * pow(gamma, (double)(s->min_index + i)) / (gamma + 1.0);
}

/* ---------------------------------------------------------------- sorting with a context */

typedef int (*less_fn)(const void *ctx, uint32_t a, uint32_t b);

static void sift_down(uint32_t *v, size_t start, size_t n, less_fn less, const void *ctx) {
  size_t root = start;
  while (2 * root + 1 < n) {
    size_t child = 2 * root + 1, big = root;
    if (less(ctx, v[big], v[child])) big = child;
    if (child + 1 < n && less(ctx, v[big], v[child + 1])) big = child + 1;
    if (big == root) return;
    { uint32_t t = v[root]; v[root] = v[big]; v[big] = t; }
    root = big;
  }
}

static void sort_u32(uint32_t *v, size_t n, less_fn less, const void *ctx) {
  size_t i;
  if (n < 2) return;
  if (n <= 32) {   /* small: insertion sort, stable */
    for (i = 1; i < n; i++) {
      uint32_t x = v[i];
      size_t j = i;
      while (j > 0 && less(ctx, x, v[j - 1])) { v[j] = v[j - 1]; j--; }
      v[j] = x;
    }
    return;
  }
  for (i = n / 2; i-- > 0;) sift_down(v, i, n, less, ctx);
  for (i = n - 1; i > 0; i--) {
    uint32_t t = v[0]; v[0] = v[i]; v[i] = t;
    sift_down(v, 0, i, less, ctx);
  }
}

/* ---------------------------------------------------------------- funnels */

lq_funnel *lq_funnel_new(lq_allocator alloc, const lq_funnel_config *cfg) {
  lq_funnel *f = (lq_funnel *)lq_mem_call(&alloc, NULL, 0, sizeof *f);
  if (f == NULL) return NULL;
  memset(f, 0, sizeof *f);
  f->alloc = alloc;
  f->cfg = *cfg;
  lq_keys_init(&f->leads);
  lq_keys_init(&f->reasons);
  lq_keys_init(&f->owners);
  lq_keys_init(&f->sources);
  return f;
}

static void free_state(lq_funnel *f) {
  lq_allocator *a = &f->alloc;
  size_t n = (size_t)f->nstate;
  lq_mem_call(a, f->seen, n * sizeof(uint32_t), 0);
  lq_mem_call(a, f->first_at, n * (size_t)f->cfg.nstages * sizeof(int32_t), 0);
  lq_mem_call(a, f->order, f->order_n * sizeof(uint32_t), 0);
  lq_mem_call(a, f->row_ok, f->order_n, 0);
  lq_mem_call(a, f->start, f->start_n * sizeof(uint32_t), 0);
  f->order = f->start = NULL;
  f->row_ok = NULL;
  f->order_n = f->start_n = 0;
  f->times_ready = 0;
  lq_mem_call(a, f->disq_reason, n * sizeof(int32_t), 0);
  lq_mem_call(a, f->lead_owner, n * sizeof(int32_t), 0);
  lq_mem_call(a, f->recycles, n * sizeof(uint16_t), 0);
  lq_mem_call(a, f->last_stage, n, 0);
  f->seen = NULL;
  f->first_at = NULL;
  f->disq_reason = f->lead_owner = NULL;
  f->recycles = NULL;
  f->last_stage = NULL;
  f->nstate = 0;
  f->prepared = 0;
}

static void truncate_rejects(lq_funnel *f, size_t n) {
  while (f->nrejects > n) {
    char *m = f->rejects[--f->nrejects].message;
    lq_mem_call(&f->alloc, m, strlen(m) + 1, 0);
  }
}

void lq_funnel_free(lq_funnel *f) {
  lq_allocator a;
  size_t c;
  if (f == NULL) return;
  a = f->alloc;
  free_state(f);
  truncate_rejects(f, 0);
  lq_mem_call(&a, f->join_row, (f->join_n + 1) * sizeof(int32_t), 0);
  c = f->cap;
  lq_mem_call(&a, f->lead, c * sizeof(int32_t), 0);
  lq_mem_call(&a, f->reason, c * sizeof(int32_t), 0);
  lq_mem_call(&a, f->owner, c * sizeof(int32_t), 0);
  lq_mem_call(&a, f->stage, c, 0);
  lq_mem_call(&a, f->at, c * sizeof(double), 0);
  lq_mem_call(&a, f->line_off, c * sizeof(uint32_t), 0);
  lq_mem_call(&a, f->segs, f->segs_cap * sizeof(lq_funnel_segment), 0);
  lq_mem_call(&a, f->rejects, f->rejects_cap * sizeof(lq_funnel_reject), 0);
  lq_keys_free(&f->leads, &a);
  lq_keys_free(&f->reasons, &a);
  lq_keys_free(&f->owners, &a);
  lq_keys_free(&f->sources, &a);
  lq_mem_call(&a, f, sizeof *f, 0);
}

int lq_funnel_stage(const lq_funnel *f, const char *name, size_t len) {
  int i;
  for (i = 0; i < f->cfg.nstages; i++)
    if (strlen(f->cfg.names[i]) == len && memcmp(f->cfg.names[i], name, len) == 0) return i;
  return -1;
}

int32_t lq_funnel_add_source(lq_funnel *f, const char *name) {
  return lq_keys_intern(&f->sources, &f->alloc, name, strlen(name));
}

static int add_reject(lq_funnel *f, int32_t source, uint64_t line, int32_t lead, int stage, double at,
                      const char *message) {
  lq_funnel_reject *r;
  char *m;
  if (grow(&f->alloc, (void **)&f->rejects, &f->rejects_cap, f->nrejects + 1, sizeof *r) != 0) return -1;
  m = dup_string(&f->alloc, message);
  if (m == NULL) return -1;
  r = &f->rejects[f->nrejects++];
  r->source = source;
  r->line = line;
  r->lead = lead;
  r->stage = stage;
  r->at = at;
  r->message = m;
  return 0;
}

/* Every log column grows together; on failure each keeps its old size. */
static int grow_log(lq_funnel *f, size_t need) {
  lq_allocator *a = &f->alloc;
  size_t old = f->cap, ncap;
  void **cols[6];
  size_t sizes[6] = {sizeof(int32_t), sizeof(int32_t), sizeof(int32_t), 1, sizeof(double), sizeof(uint32_t)};
  int i;
  if (need <= old) return 0;
  if (need > UINT32_MAX - 1) return -1;
  ncap = old < 1024 ? 1024 : old;
  while (ncap < need) ncap *= 2;
  cols[0] = (void **)&f->lead; cols[1] = (void **)&f->reason; cols[2] = (void **)&f->owner;
  cols[3] = (void **)&f->stage; cols[4] = (void **)&f->at; cols[5] = (void **)&f->line_off;
  for (i = 0; i < 6; i++) {
    void *np = mem_big(a, *cols[i], old * sizes[i], ncap * sizes[i]);
    if (np == NULL) {
      while (i-- > 0) *cols[i] = mem_big(a, *cols[i], ncap * sizes[i], old * sizes[i]);
      return -1;
    }
    *cols[i] = np;
  }
  f->cap = ncap;
  return 0;
}

static int quote_len(size_t len) { return len > 60 ? 60 : (int)len; }

/* A category column's codes, each to its interned key: made on a code's first use, so that keys keep
** the order of their first appearance in the log, and each distinct text is hashed once. */
typedef struct code_keys {
  const lq_column *col;    /* NULL: not a category, each row's text interned */
  int32_t *key_of_code;    /* -2: not interned yet */
} code_keys;

static int32_t intern_cell(lq_funnel *f, lq_keys *keys, code_keys *ck, size_t row, const char *s, size_t len) {
  int32_t code, key;
  if (ck == NULL || ck->key_of_code == NULL) return lq_keys_intern(keys, &f->alloc, s, len);
  code = ck->col->codes[row];
  if ((key = ck->key_of_code[code]) == -2) key = ck->key_of_code[code] = lq_keys_intern(keys, &f->alloc, s, len);
  return key;
}

static int code_keys_new(lq_funnel *f, code_keys *ck, const lq_column *col) {
  size_t n = (size_t)col->dict.count + 1, i;
  ck->key_of_code = (int32_t *)lq_mem_call(&f->alloc, NULL, 0, n * sizeof(int32_t));
  if (ck->key_of_code == NULL) return -1;
  for (i = 0; i < n; i++) ck->key_of_code[i] = -2;
  ck->col = col;
  return 0;
}

static void code_keys_free(lq_funnel *f, code_keys *ck) {
  if (ck->key_of_code != NULL)
    lq_mem_call(&f->alloc, ck->key_of_code, ((size_t)ck->col->dict.count + 1) * sizeof(int32_t), 0);
  ck->key_of_code = NULL;
}

/* lq_funnel_add with its lead interned already: li, or -1 when the row has none. Reasons and owners
** of row `row` of a table's category columns are interned through rk and ok (NULL: from the text). */
static int add_row(lq_funnel *f, int32_t li, int stage, const char *stage_text, size_t stage_len, double at,
                   const char *at_text, size_t at_len, const char *reason, size_t reason_len, const char *owner,
                   size_t owner_len, int32_t source, uint64_t line, code_keys *rk, code_keys *ok, size_t row) {
  char msg[256];
  int32_t ri = -1, oi = -1;
  lq_funnel_segment *seg;
  msg[0] = '\0';
  if (li < 0) snprintf(msg, sizeof msg, "missing lead id");
  else if (stage < 0 && (stage_text == NULL || stage_len == 0)) snprintf(msg, sizeof msg, "missing stage");
  else if (stage < 0) snprintf(msg, sizeof msg, "unknown stage '%.*s'", quote_len(stage_len), stage_text);
  else if (isnan(at) && (at_text == NULL || at_len == 0)) snprintf(msg, sizeof msg, "missing time");
  else if (isnan(at))
    snprintf(msg, sizeof msg, "bad time '%.*s' (expected YYYY-MM-DD or YYYY-MM-DD hh:mm:ss)",
             quote_len(at_len), at_text);
  else if (stage == f->cfg.disqualified && (reason == NULL || reason_len == 0))
    snprintf(msg, sizeof msg, "'%s' without a reason", f->cfg.names[stage]);
  if (msg[0] != '\0') {
    if (add_reject(f, source, line, li, stage, at, msg) != 0) return -1;
    f->load_rejects = f->nrejects;
    return 1;
  }
  if (reason != NULL && reason_len > 0 && (ri = intern_cell(f, &f->reasons, rk, row, reason, reason_len)) < 0)
    return -1;
  if (owner != NULL && owner_len > 0 && (oi = intern_cell(f, &f->owners, ok, row, owner, owner_len)) < 0)
    return -1;
  if (grow_log(f, f->n + 1) != 0) return -1;
  seg = f->nsegs > 0 ? &f->segs[f->nsegs - 1] : NULL;
  if (seg == NULL || seg->source != source || line < seg->line_base || line - seg->line_base > UINT32_MAX) {
    if (grow(&f->alloc, (void **)&f->segs, &f->segs_cap, f->nsegs + 1, sizeof *seg) != 0) return -1;
    seg = &f->segs[f->nsegs++];
    seg->first = f->n;
    seg->source = source;
    seg->line_base = line;
  }
  f->lead[f->n] = li;
  f->stage[f->n] = (uint8_t)stage;
  f->at[f->n] = at;
  f->reason[f->n] = ri;
  f->owner[f->n] = oi;
  f->line_off[f->n] = (uint32_t)(line - seg->line_base);
  f->n++;
  return 0;
}

/* The segment of log row `row` (there is one: every row was added with its segment). */
static const lq_funnel_segment *segment_of(const lq_funnel *f, size_t row) {
  size_t lo = 0, hi = f->nsegs;   /* the last segment whose first is <= row, in [lo, hi) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->segs[mid].first <= row) lo = mid;
    else hi = mid;
  }
  return &f->segs[lo];
}

int lq_funnel_add(lq_funnel *f, const char *lead, size_t lead_len, int stage, const char *stage_text,
                  size_t stage_len, double at, const char *at_text, size_t at_len,
                  const char *reason, size_t reason_len, const char *owner, size_t owner_len,
                  int32_t source, uint64_t line) {
  int32_t li = -1;
  if (f->sealed) return -3;
  /* any row, even one rejected here, may name a new lead: the per-lead state is made again */
  if (f->nrejects > f->load_rejects) truncate_rejects(f, f->load_rejects);
  f->prepared = 0;
  if (lead != NULL && lead_len > 0) {
    li = lq_keys_intern(&f->leads, &f->alloc, lead, lead_len);
    if (li < 0) return -1;
  }
  return add_row(f, li, stage, stage_text, stage_len, at, at_text, at_len, reason, reason_len, owner, owner_len,
                 source, line, NULL, NULL, 0);
}

/* The text of a cell, NULL when missing; numbers print as Lua would print an integer. */
static const char *cell_text(const lq_column *c, size_t row, size_t *len, char *buf, size_t bufsize) {
  switch (c->type) {
    case LQ_CATEGORY: {
      int32_t code = c->codes[row];
      if (code < 0) return NULL;
      *len = c->dict.lengths[code];
      return c->dict.bytes + c->dict.starts[code];
    }
    case LQ_TEXT:
      if (c->text_missing[row]) return NULL;
      *len = (size_t)(c->offsets[row + 1] - c->offsets[row]);
      return c->text + c->offsets[row];
    case LQ_NUMBER: case LQ_TIME: {
      double v = c->numbers[row];
      if (isnan(v)) return NULL;
      if (v == floor(v) && fabs(v) < 9007199254740992.0) snprintf(buf, bufsize, "%.0f", v);
      else snprintf(buf, bufsize, "%.17g", v);
      *len = strlen(buf);
      return buf;
    }
    case LQ_BOOLEAN:
      if (c->bools[row] > 1) return NULL;
      *len = c->bools[row] ? 4 : 5;
      return c->bools[row] ? "true" : "false";
    default:
      return NULL;
  }
}

#if !defined(LQ_FUNNEL_PIPELINE_ROWS)
#define LQ_FUNNEL_PIPELINE_ROWS 4096    /* fewer rows than this: the leads interned in the loop */
#endif

/* Interning a million new leads is a cache miss a lead in the slots: the rows LEAD_AHEAD ahead are
** hashed and their slots asked for, so that the misses overlap. */
#define LEAD_AHEAD 16

static void lead_ahead(const lq_column *cl, size_t row, const lq_keys *leads, uint32_t *ahead) {
  uint32_t h = lq_hash_bytes(cl->text + cl->offsets[row], (size_t)(cl->offsets[row + 1] - cl->offsets[row]));
  lq_keys_prefetch(leads, h);
  ahead[row % LEAD_AHEAD] = h;
}

/* The leads of a text column interned in row order on a thread of their own, while the load's
** loop checks the other columns and writes the log: li[row] = the lead (-1: none). The keys were
** reserved for every lead (text_runs), so the thread never allocates; if the room falls short
** anyway, `done` says where it stopped and the caller interns the rest. */
typedef struct intern_job {
  lq_keys *leads;
  const lq_column *cl;
  size_t nrows, done;
  int32_t *li;
} intern_job;

static void *intern_rows(void *arg) {
  intern_job *j = (intern_job *)arg;
  const lq_column *cl = j->cl;
  uint32_t ahead[LEAD_AHEAD];
  size_t row, prev_len = 0;
  const char *prev = NULL;
  int32_t prev_lead = -1;
  for (row = 0; row < LEAD_AHEAD && row < j->nrows; row++) lead_ahead(cl, row, j->leads, ahead);
  for (row = 0; row < j->nrows; row++) {
    uint32_t h = ahead[row % LEAD_AHEAD];
    const char *s = cl->text + cl->offsets[row];
    size_t len = (size_t)(cl->offsets[row + 1] - cl->offsets[row]);
    int32_t li = -1;
    if (row + LEAD_AHEAD < j->nrows) lead_ahead(cl, row + LEAD_AHEAD, j->leads, ahead);
    if (!cl->text_missing[row] && len > 0) {
      if (prev_lead >= 0 && len == prev_len && memcmp(s, prev, len) == 0) li = prev_lead;
      else if ((li = keys_intern_reserved(j->leads, s, len, h)) < 0) break;
      prev_lead = li;
      prev = s;
      prev_len = len;
    }
    j->li[row] = li;
  }
  j->done = row;
  return NULL;
}

/* Rows of a text column whose value is not the one of the row before: at most as many new leads
** as that, and the slots are made (and filled, a page each) for them alone. */
static size_t text_runs(const lq_column *cl, size_t nrows) {
  size_t row, runs = 0, prev_len = 0;
  const char *prev = NULL;
  for (row = 0; row < nrows; row++) {
    const char *s = cl->text + cl->offsets[row];
    size_t len = (size_t)(cl->offsets[row + 1] - cl->offsets[row]);
    if (prev == NULL || len != prev_len || memcmp(s, prev, len) != 0) runs++;
    prev = s;
    prev_len = len;
  }
  return runs;
}

int lq_funnel_load(lq_funnel *f, const lq_table *t, int c_lead, int c_stage, int const_stage, int c_at,
                   int c_reason, int c_owner, int32_t source, const char **err) {
  const lq_column *cl = t->cols[c_lead], *cs = c_stage >= 0 ? t->cols[c_stage] : NULL, *ca = t->cols[c_at];
  const lq_column *cr = c_reason >= 0 ? t->cols[c_reason] : NULL, *co = c_owner >= 0 ? t->cols[c_owner] : NULL;
  int *stage_of_code = NULL;
  int32_t *lead_of_code = NULL;   /* a category's lead, interned on the code's first row: once per lead */
  size_t nstage_codes = 0, nlead_codes = 0, row, next_reject = 0, prev_len = 0;
  int32_t prev_lead = -1;
  const char *prev_text = NULL;
  uint32_t ahead[LEAD_AHEAD];   /* text lead ids: the hashes of the rows ahead, their slots asked for */
  code_keys rk = {NULL, NULL}, ok = {NULL, NULL};
  intern_job ij = {NULL, NULL, 0, 0, NULL};   /* the leads interned on a thread of their own */
  pthread_t interner;
  int pipelined = 0, started = 0;
  size_t n0 = f->n, r0;
  uint64_t record = 1;
  int rc = 0;
  if (f->sealed) return -3;
  if (cs != NULL && cs->type != LQ_CATEGORY && cs->type != LQ_TEXT) { *err = "stage"; return -2; }
  if (ca->type == LQ_BOOLEAN || ca->type == LQ_TAGS) { *err = "at"; return -2; }
  if (cl->type == LQ_TAGS) { *err = "lead"; return -2; }
  truncate_rejects(f, f->load_rejects);
  f->prepared = 0;
  if (cs != NULL && cs->type == LQ_CATEGORY) {   /* one lookup per distinct stage text */
    int32_t i;
    nstage_codes = (size_t)cs->dict.count;
    stage_of_code = (int *)lq_mem_call(&f->alloc, NULL, 0, (nstage_codes + 1) * sizeof(int));
    if (stage_of_code == NULL) return -1;
    for (i = 0; i < cs->dict.count; i++)
      stage_of_code[i] = lq_funnel_stage(f, cs->dict.bytes + cs->dict.starts[i], cs->dict.lengths[i]);
  }
  if ((cr != NULL && cr->type == LQ_CATEGORY && code_keys_new(f, &rk, cr) != 0) ||
      (co != NULL && co->type == LQ_CATEGORY && code_keys_new(f, &ok, co) != 0)) {
    rc = -1;
    goto done;
  }
  if (cl->type == LQ_CATEGORY) {
    nlead_codes = (size_t)cl->dict.count;
    lead_of_code = (int32_t *)lq_mem_call(&f->alloc, NULL, 0, (nlead_codes + 1) * sizeof(int32_t));
    if (lead_of_code == NULL) { rc = -1; goto done; }
    memset(lead_of_code, 0xff, (nlead_codes + 1) * sizeof(int32_t));   /* -1: not interned yet */
    if (keys_reserve(&f->leads, &f->alloc, nlead_codes, cl->dict.bytes_len + nlead_codes) != 0) {
      rc = -1;
      goto done;
    }
  }
  if (cl->type == LQ_TEXT && t->nrows > 0 &&   /* untouched room for the keys' bytes costs no page */
      keys_reserve(&f->leads, &f->alloc, text_runs(cl, t->nrows),
                   (size_t)(cl->offsets[t->nrows] - cl->offsets[0]) + t->nrows) != 0) {
    rc = -1;
    goto done;
  }
  /* the table's own rejects are rows lost before we saw them: they count as ours */
  for (next_reject = 0; next_reject < t->nrejects; next_reject++) {
    const lq_reject *tr = &t->rejects[next_reject];
    if (add_reject(f, source, tr->line, -1, -1, NAN, tr->reason) != 0) { rc = -1; goto done; }
  }
  f->load_rejects = f->nrejects;
  r0 = f->nrejects;
  if (grow_log(f, f->n + t->nrows) != 0) { rc = -1; goto done; }
  next_reject = 0;
  /* on two threads or more, a big log's leads are interned beside the loop: the loop keeps the row
  ** of each lead in the log and its rejects, made the lead interned there once both are done */
  if (f->threads > 1 && cl->type == LQ_TEXT && t->nrows >= LQ_FUNNEL_PIPELINE_ROWS && t->nrows < (size_t)INT32_MAX) {
    ij.li = (int32_t *)mem_big(&f->alloc, NULL, 0, t->nrows * sizeof(int32_t));
    if (ij.li == NULL) { rc = -1; goto done; }
    ij.leads = &f->leads;
    ij.cl = cl;
    ij.nrows = t->nrows;
    ij.done = 0;
    pipelined = 1;
    started = pthread_create(&interner, NULL, intern_rows, &ij) == 0;
  } else if (cl->type == LQ_TEXT) {
    for (row = 0; row < LEAD_AHEAD && row < t->nrows; row++) lead_ahead(cl, row, &f->leads, ahead);
  }
  for (row = 0; row < t->nrows; row++) {
    char lbuf[40], abuf[40], sbuf[40], rbuf[40], obuf[40];
    size_t llen = 0, slen = 0, alen = 0, rlen = 0, olen = 0;
    const char *lead, *stext, *atext = NULL, *reason = NULL, *owner = NULL;
    int stage;
    int32_t li = -1;
    double at = NAN;
    while (next_reject < t->nrejects && t->rejects[next_reject].record <= record) {
      if (t->rejects[next_reject].record == record) record++;
      next_reject++;
    }
    if (pipelined) {   /* the row for now: the interner gives its lead */
      if (!cl->text_missing[row] && cl->offsets[row + 1] > cl->offsets[row]) li = (int32_t)row;
    } else if (lead_of_code != NULL) {
      int32_t code = cl->codes[row];
      if (code >= 0 && (li = lead_of_code[code]) < 0 && cl->dict.lengths[code] > 0) {
        li = lq_keys_intern(&f->leads, &f->alloc, cl->dict.bytes + cl->dict.starts[code], cl->dict.lengths[code]);
        if (li < 0) { rc = -1; goto done; }
        lead_of_code[code] = li;
      }
    } else {
      uint32_t h = cl->type == LQ_TEXT ? ahead[row % LEAD_AHEAD] : 0;
      lead = cell_text(cl, row, &llen, lbuf, sizeof lbuf);
      if (cl->type == LQ_TEXT && row + LEAD_AHEAD < t->nrows) lead_ahead(cl, row + LEAD_AHEAD, &f->leads, ahead);
      if (lead != NULL && llen > 0) {
        /* a log lists a lead's rows together, often: the row before's lead, without a lookup */
        if (prev_lead >= 0 && llen == prev_len && memcmp(lead, prev_text, llen) == 0) li = prev_lead;
        else if ((li = lq_keys_intern_hashed(&f->leads, &f->alloc, lead, llen,
                                             cl->type == LQ_TEXT ? h : lq_hash_bytes(lead, llen))) < 0) {
          rc = -1;
          goto done;
        }
        prev_lead = li;
        prev_text = f->leads.bytes + f->leads.starts[li];
        prev_len = llen;
      }
    }
    if (cs == NULL) {
      stage = const_stage;
      stext = f->cfg.names[const_stage];
      slen = strlen(stext);
    } else if ((stext = cell_text(cs, row, &slen, sbuf, sizeof sbuf)), stage_of_code != NULL) stage = cs->codes[row] < 0 ? -1 : stage_of_code[cs->codes[row]];
    else stage = stext == NULL ? -1 : lq_funnel_stage(f, stext, slen);
    if (ca->type == LQ_NUMBER || ca->type == LQ_TIME) at = ca->numbers[row];
    else {
      atext = cell_text(ca, row, &alen, abuf, sizeof abuf);
      if (atext != NULL && !lq_scan_time(atext, alen, &at)) at = NAN;
    }
    if (cr != NULL) reason = cell_text(cr, row, &rlen, rbuf, sizeof rbuf);
    if (co != NULL) owner = cell_text(co, row, &olen, obuf, sizeof obuf);
    if (add_row(f, li, stage, stext, slen, at, atext, alen, reason, rlen, owner, olen, source, record + 1, &rk, &ok,
                row) < 0) {
      rc = -1;
      goto done;
    }
    record++;
  }
  if (pipelined) {
    int32_t *li = ij.li;
    size_t k;
    if (started) pthread_join(interner, NULL);
    else intern_rows(&ij);
    started = 0;
    for (row = ij.done; row < t->nrows; row++) {   /* past the room reserved: with memory, here */
      size_t len = (size_t)(cl->offsets[row + 1] - cl->offsets[row]);
      li[row] = cl->text_missing[row] || len == 0 ? -1
              : lq_keys_intern(&f->leads, &f->alloc, cl->text + cl->offsets[row], len);
      if (li[row] < -1) { rc = -1; goto done; }
    }
    for (k = n0; k < f->n; k++) f->lead[k] = li[f->lead[k]];
    for (k = r0; k < f->nrejects; k++)
      if (f->rejects[k].lead >= 0) f->rejects[k].lead = li[f->rejects[k].lead];
  }
done:
  if (started) pthread_join(interner, NULL);
  if (ij.li != NULL) mem_big(&f->alloc, ij.li, t->nrows * sizeof(int32_t), 0);
  code_keys_free(f, &rk);
  code_keys_free(f, &ok);
  if (stage_of_code != NULL) lq_mem_call(&f->alloc, stage_of_code, (nstage_codes + 1) * sizeof(int), 0);
  if (lead_of_code != NULL) lq_mem_call(&f->alloc, lead_of_code, (nlead_codes + 1) * sizeof(int32_t), 0);
  return rc;
}

/* ---------------------------------------------------------------- threads */

#define LQ_FUNNEL_MAX_THREADS LQ_RUN_MAX_JOBS   /* lq_run_jobs runs at most these */
#if !defined(LQ_FUNNEL_LEADS_PER_THREAD)
#define LQ_FUNNEL_LEADS_PER_THREAD 1024    /* fewer leads a thread than this: not worth a thread */
#endif

/* How many parts of nl leads to run on, at most `threads`. */
static int funnel_parts(int threads, size_t nl) {
  size_t most = nl / LQ_FUNNEL_LEADS_PER_THREAD + 1;
  if (threads < 1) threads = 1;
  if (threads > LQ_FUNNEL_MAX_THREADS) threads = LQ_FUNNEL_MAX_THREADS;
  return (size_t)threads > most ? (int)most : threads;
}

/* Part k of n of the leads [0, nl): whole, contiguous ranges in lead order. */
static size_t part_start(size_t nl, int k, int n) {
  return nl / (size_t)n * (size_t)k + (nl % (size_t)n) * (size_t)k / (size_t)n;
}


typedef struct by_time { const double *at; } by_time;

static int earlier(const void *ctx, uint32_t a, uint32_t b) {
  const double *at = ((const by_time *)ctx)->at;
  return at[a] < at[b] || (at[a] == at[b] && a < b);
}

static int chain_rank_less(const lq_funnel_config *c, int a, int b) {
  return a < c->nchain && b < c->nchain && a < b;
}

/* A row the walk rejects: its lead and the stage the lead was at (-1 before its first), from which the
** message is made when the parts' rejects are gathered in lead order. */
typedef struct walk_reject {
  uint32_t row;
  int32_t lead;
  int cur;
} walk_reject;

typedef struct walk_job {
  lq_funnel *f;
  size_t from, to;           /* leads */
  walk_reject *rejects;      /* malloc'd: parts run on threads, away from the funnel's allocator */
  size_t nrejects, cap;
  double as_of;
  int failed;
} walk_job;

/* Each lead of the part in time order, walked against the allowed transitions. */
static void *walk_leads(void *arg) {
  walk_job *j = (walk_job *)arg;
  lq_funnel *f = j->f;
  const lq_funnel_config *cfg = &f->cfg;
  by_time ctx;
  size_t L;
  ctx.at = f->at;
  for (L = j->from; L < j->to; L++) {
    uint32_t *seg = f->order + f->start[L], n = f->start[L + 1] - f->start[L], k;
    int cur = -1;
    uint32_t seen = 0;
    f->disq_reason[L] = -1;
    f->lead_owner[L] = -1;
    f->recycles[L] = 0;
    for (k = 1; k < n; k++)
      if (f->at[seg[k]] < f->at[seg[k - 1]]) { sort_u32(seg, n, earlier, &ctx); break; }
    for (k = 0; k < n; k++) {
      uint32_t r = seg[k];
      int s = f->stage[r];
      if (!cfg->allowed[cur + 1][s]) {
        if (j->nrejects == j->cap) {
          size_t ncap = j->cap ? j->cap * 2 : 64;
          walk_reject *nr = (walk_reject *)realloc(j->rejects, ncap * sizeof *nr);
          if (nr == NULL) { j->failed = 1; return NULL; }
          j->rejects = nr;
          j->cap = ncap;
        }
        j->rejects[j->nrejects].row = r;
        j->rejects[j->nrejects].lead = (int32_t)L;
        j->rejects[j->nrejects].cur = cur;
        j->nrejects++;
        f->row_ok[r] = 0;
        continue;
      }
      f->row_ok[r] = 1;
      seen |= 1u << s;
      if (s == cfg->disqualified) f->disq_reason[L] = f->reason[r];
      if (s == cfg->nurture && cur >= 0 && f->recycles[L] < UINT16_MAX) f->recycles[L]++;
      if (f->owner[r] >= 0) f->lead_owner[L] = f->owner[r];
      if (!(f->at[r] <= j->as_of)) j->as_of = f->at[r];
      cur = s;
    }
    f->seen[L] = seen;
    f->last_stage[L] = (uint8_t)(cur < 0 ? 255 : cur);
  }
  return NULL;
}

/* The sentence for a rejected move from cur to s. */
static void walk_message(const lq_funnel_config *cfg, int cur, int s, char *msg, size_t size) {
  if (cur < 0) snprintf(msg, size, "a lead cannot start at '%s'", cfg->names[s]);
  else if (s == cur) snprintf(msg, size, "lead is already at '%s'", cfg->names[s]);
  else if (chain_rank_less(cfg, s, cur))
    snprintf(msg, size, "out of order: '%s' comes before '%s' in the funnel", cfg->names[s], cfg->names[cur]);
  else snprintf(msg, size, "transition from '%s' to '%s' is not allowed", cfg->names[cur], cfg->names[s]);
}

int lq_funnel_prepare(lq_funnel *f) {
  lq_allocator *a = &f->alloc;
  size_t nl = (size_t)f->leads.count, i, L;
  uint32_t *order = NULL, *start = NULL;
  uint8_t *row_ok = NULL;
  walk_job jobs[LQ_FUNNEL_MAX_THREADS];
  int nparts = funnel_parts(f->threads, nl), t;
  char msg[256];
  int rc = -1;
  free_state(f);
  truncate_rejects(f, f->load_rejects);
  f->as_of = NAN;
  memset(jobs, 0, sizeof jobs);
  {   /* times are kept as whole seconds after the earliest */
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (i = 0; i < f->n; i++) {
      if (f->at[i] < lo) lo = f->at[i];
      if (f->at[i] > hi) hi = f->at[i];
    }
    f->time_base = f->n > 0 ? floor(lo) : 0;
    if (f->n > 0 && floor(hi) - f->time_base >= (double)INT32_MAX) return -2;
  }
  f->seen = (uint32_t *)mem_big(a, NULL, 0, (nl + 1) * sizeof(uint32_t));
  f->disq_reason = (int32_t *)mem_big(a, NULL, 0, (nl + 1) * sizeof(int32_t));
  f->lead_owner = (int32_t *)mem_big(a, NULL, 0, (nl + 1) * sizeof(int32_t));
  f->recycles = (uint16_t *)mem_big(a, NULL, 0, (nl + 1) * sizeof(uint16_t));
  f->last_stage = (uint8_t *)mem_big(a, NULL, 0, nl + 1);
  f->nstate = (int32_t)(nl + 1);   /* one spare so that empty funnels still own arrays */
  if (!f->seen || !f->disq_reason || !f->lead_owner || !f->recycles ||
      !f->last_stage)
    goto done;
  order = (uint32_t *)mem_big(a, NULL, 0, (f->n + 1) * sizeof(uint32_t));
  start = (uint32_t *)mem_big(a, NULL, 0, (nl + 2) * sizeof(uint32_t));
  row_ok = (uint8_t *)mem_big(a, NULL, 0, f->n + 1);
  if (order == NULL || start == NULL || row_ok == NULL) goto done;
  /* counting sort by lead keeps each lead's rows in log order */
  memset(start, 0, (nl + 2) * sizeof(uint32_t));
  for (i = 0; i < f->n; i++) start[f->lead[i] + 2]++;
  for (L = 2; L < nl + 2; L++) start[L] += start[L - 1];
  for (i = 0; i < f->n; i++) order[start[f->lead[i] + 1]++] = (uint32_t)i;
  f->order = order;
  f->start = start;
  f->row_ok = row_ok;
  f->order_n = f->n + 1;
  f->start_n = nl + 2;
  order = start = NULL;
  row_ok = NULL;
  /* each part of the leads walked on a thread of its own; the rejects gathered in lead order, as
  ** one walk of all leads would make them */
  for (t = 0; t < nparts; t++) {
    jobs[t].f = f;
    jobs[t].from = part_start(nl, t, nparts);
    jobs[t].to = part_start(nl, t + 1, nparts);
    jobs[t].as_of = NAN;
  }
  lq_run_jobs(walk_leads, jobs, sizeof jobs[0], nparts);
  for (t = 0; t < nparts; t++) {
    if (jobs[t].failed) goto done;
    if (!(jobs[t].as_of <= f->as_of)) f->as_of = jobs[t].as_of;
    for (i = 0; i < jobs[t].nrejects; i++) {
      const walk_reject *w = &jobs[t].rejects[i];
      int s = f->stage[w->row];
      const lq_funnel_segment *seg = segment_of(f, w->row);
      walk_message(&f->cfg, w->cur, s, msg, sizeof msg);
      if (add_reject(f, seg->source, seg->line_base + f->line_off[w->row], w->lead, s, f->at[w->row], msg) != 0)
        goto done;
    }
  }
  f->prepared = 1;
  rc = 0;
done:
  for (t = 0; t < nparts; t++) free(jobs[t].rejects);
  mem_big(a, order, (f->n + 1) * sizeof(uint32_t), 0);
  mem_big(a, start, (nl + 2) * sizeof(uint32_t), 0);
  mem_big(a, row_ok, f->n + 1, 0);
  if (rc != 0) {
    truncate_rejects(f, f->load_rejects);
    free_state(f);
  }
  return rc;
}

int lq_funnel_seal(lq_funnel *f) {
  lq_allocator *a = &f->alloc;
  int rc;
  if (!f->prepared && (rc = lq_funnel_prepare(f)) != 0) return rc;
  /* the walk has sorted the rows by lead (order, start) and made its rejects' lines: these are read
  ** by nothing after it */
  mem_big(a, f->lead, f->cap * sizeof(int32_t), 0);
  mem_big(a, f->reason, f->cap * sizeof(int32_t), 0);
  mem_big(a, f->line_off, f->cap * sizeof(uint32_t), 0);
  f->lead = f->reason = NULL;
  f->line_off = NULL;
  f->sealed = 1;
  return 0;
}

typedef struct times_job {
  lq_funnel *f;
  int32_t *first;
  size_t from, to;
} times_job;

/* Lead L's first entry into each of the stages 0 .. n-1 (LQ_FUNNEL_NEVER: none), from its checked
** rows in time order: out[0 .. n). */
static void lead_first_entries(const lq_funnel *f, size_t L, int32_t *out, int n) {
  uint32_t k;
  int s;
  for (s = 0; s < n; s++) out[s] = LQ_FUNNEL_NEVER;
  for (k = f->start[L]; k < f->start[L + 1]; k++) {
    uint32_t r = f->order[k];
    s = f->stage[r];
    if (f->row_ok[r] && s < n && out[s] == LQ_FUNNEL_NEVER) out[s] = (int32_t)(floor(f->at[r]) - f->time_base);
  }
}

static void *first_entries(void *arg) {
  const times_job *j = (const times_job *)arg;
  const lq_funnel *f = j->f;
  size_t ns = (size_t)f->cfg.nstages, L;
  for (L = j->from; L < j->to; L++) lead_first_entries(f, L, j->first + L * ns, f->cfg.nstages);
  return NULL;
}

/* Each lead's first entry into each stage, from its checked rows in time order, on the funnel's
** threads (parts of the leads). 0 or -1. */
static int funnel_times(lq_funnel *f) {
  size_t ns = (size_t)f->cfg.nstages, nl = (size_t)f->nstate - 1, k;
  times_job jobs[LQ_FUNNEL_MAX_THREADS];
  int nparts = funnel_parts(f->threads, nl), t;
  int32_t *first = (int32_t *)mem_big(&f->alloc, NULL, 0, (size_t)f->nstate * ns * sizeof(int32_t));
  if (first == NULL) return -1;
  for (k = nl * ns; k < (size_t)f->nstate * ns; k++) first[k] = LQ_FUNNEL_NEVER;   /* the spare */
  for (t = 0; t < nparts; t++) {
    jobs[t].f = f;
    jobs[t].first = first;
    jobs[t].from = part_start(nl, t, nparts);
    jobs[t].to = part_start(nl, t + 1, nparts);
  }
  lq_run_jobs(first_entries, jobs, sizeof jobs[0], nparts);
  f->first_at = first;
  f->times_ready = 1;
  return 0;
}

/* ---------------------------------------------------------------- results */

int lq_funnel_pair_index(int nchain, int a, int b) {
  return a * nchain - a * (a + 1) / 2 + (b - a - 1);
}

static lq_funnel_result *result_new(lq_allocator alloc) {
  lq_funnel_result *r = (lq_funnel_result *)lq_mem_call(&alloc, NULL, 0, sizeof *r);
  if (r == NULL) return NULL;
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
  slab_init(&r->slab, alloc);
  r->sketch_alloc.fn = slab_alloc;
  r->sketch_alloc.ud = &r->slab;
  lq_keys_init(&r->strings);
  lq_keys_init(&r->group_keys);
  lq_keys_init(&r->reason_keys);
  return r;
}

static size_t nside(const lq_funnel_result *r) { return (size_t)(r->nstages - r->nchain); }
static size_t nsk(const lq_funnel_result *r) { return (size_t)r->npairs + 1; }

void lq_funnel_result_free(lq_funnel_result *r) {
  lq_allocator a;
  size_t g, cap, k;
  if (r == NULL) return;
  a = r->alloc;
  cap = (size_t)r->gcap;
  for (g = 0; g < (size_t)r->ngroups; g++)   /* their blocks bigger than the slab's go back one by one */
    for (k = 0; k < nsk(r); k++) sketch_free(&r->sketch_alloc, &r->sketches[g * nsk(r) + k]);
  slab_free(&r->slab);
  lq_mem_call(&a, r->hist, (cap << r->nchain) * sizeof(uint64_t), 0);
  lq_mem_call(&a, r->side, cap * nside(r) * sizeof(uint64_t), 0);
  lq_mem_call(&a, r->sla, cap * 4 * sizeof(uint64_t), 0);
  lq_mem_call(&a, r->recycled, cap * 2 * sizeof(uint64_t), 0);
  lq_mem_call(&a, r->sketches, cap * nsk(r) * sizeof(lq_sketch), 0);
  lq_mem_call(&a, r->reason_counts, r->reason_cap * sizeof(uint64_t), 0);
  lq_mem_call(&a, r->breaches, r->breaches_cap * sizeof(lq_funnel_breach), 0);
  lq_keys_free(&r->strings, &a);
  lq_keys_free(&r->group_keys, &a);
  lq_keys_free(&r->reason_keys, &a);
  lq_mem_call(&a, r, sizeof *r, 0);
}

static int grow_zeroed(lq_allocator *a, void **p, size_t old, size_t ncap, size_t elem) {
  char *np = (char *)lq_mem_call(a, *p, old * elem, ncap * elem);
  if (np == NULL) return -1;
  memset(np + old * elem, 0, (ncap - old) * elem);
  *p = np;
  return 0;
}

/* The group of a key (string indices, -1 missing), made when new; -1 on no memory. */
static int32_t result_group(lq_funnel_result *r, const int32_t *codes) {
  int32_t before = r->group_keys.count;
  int32_t g = lq_keys_intern(&r->group_keys, &r->alloc, (const char *)codes, (size_t)r->ndims * sizeof(int32_t));
  if (g < 0) return -1;
  if (g == before && g >= r->gcap) {
    size_t old = (size_t)r->gcap, ncap = old < 16 ? 16 : old * 2;
    lq_allocator *a = &r->alloc;
    /* on failure the arrays already grown stay grown; gcap only moves when all have */
    if (grow_zeroed(a, (void **)&r->hist, old << r->nchain, ncap << r->nchain, sizeof(uint64_t)) ||
        grow_zeroed(a, (void **)&r->side, old * nside(r), ncap * nside(r), sizeof(uint64_t)) ||
        grow_zeroed(a, (void **)&r->sla, old * 4, ncap * 4, sizeof(uint64_t)) ||
        grow_zeroed(a, (void **)&r->recycled, old * 2, ncap * 2, sizeof(uint64_t)) ||
        grow_zeroed(a, (void **)&r->sketches, old * nsk(r), ncap * nsk(r), sizeof(lq_sketch)))
      return -1;
    r->gcap = (int32_t)ncap;
  }
  if (g == before) r->ngroups = g + 1;
  return g;
}

static int add_reason(lq_funnel_result *r, int32_t g, int32_t reason, uint64_t count) {
  int32_t key[2];
  int32_t k;
  key[0] = g;
  key[1] = reason;
  k = lq_keys_intern(&r->reason_keys, &r->alloc, (const char *)key, sizeof key);
  if (k < 0) return -1;
  if ((size_t)k >= r->reason_cap) {
    size_t old = r->reason_cap, ncap = old < 16 ? 16 : old * 2;
    if (grow_zeroed(&r->alloc, (void **)&r->reason_counts, old, ncap, sizeof(uint64_t))) return -1;
    r->reason_cap = ncap;
  }
  r->reason_counts[k] += count;
  return 0;
}

static int add_breach(lq_funnel_result *r, int32_t g, int32_t lead, double mql_at, double handoff_at) {
  lq_funnel_breach *b;
  if (grow(&r->alloc, (void **)&r->breaches, &r->breaches_cap, r->nbreaches + 1, sizeof *b) != 0) return -1;
  b = &r->breaches[r->nbreaches++];
  b->group = g;
  b->lead = lead;
  b->mql_at = mql_at;
  b->handoff_at = handoff_at;
  return 0;
}

uint64_t lq_funnel_result_reached(const lq_funnel_result *r, int32_t g, int stage) {
  const uint64_t *h = r->hist + ((size_t)g << r->nchain);
  uint64_t sum = 0;
  uint32_t m;
  if (stage >= r->nchain) return r->side[(size_t)g * nside(r) + (size_t)(stage - r->nchain)];
  for (m = 0; m < (1u << r->nchain); m++)
    if (m & (1u << stage)) sum += h[m];
  return sum;
}

uint64_t lq_funnel_result_both(const lq_funnel_result *r, int32_t g, int a, int b) {
  const uint64_t *h = r->hist + ((size_t)g << r->nchain);
  uint32_t want = (1u << a) | (1u << b), m;
  uint64_t sum = 0;
  for (m = 0; m < (1u << r->nchain); m++)
    if ((m & want) == want) sum += h[m];
  return sum;
}

uint64_t lq_funnel_result_leads(const lq_funnel_result *r, int32_t g) {
  const uint64_t *h = r->hist + ((size_t)g << r->nchain);
  uint64_t sum = 0;
  uint32_t m;
  for (m = 0; m < (1u << r->nchain); m++) sum += h[m];
  return sum;
}

static void result_header(lq_funnel_result *r, const lq_funnel_config *cfg, const lq_funnel_query *q) {
  int i;
  r->nstages = cfg->nstages;
  r->nchain = cfg->nchain;
  r->mql = cfg->mql;
  r->npairs = cfg->nchain * (cfg->nchain - 1) / 2;
  r->sla_seconds = cfg->sla_seconds;
  memcpy(r->names, cfg->names, sizeof r->names);
  r->ndims = q->ndims;
  for (i = 0; i < q->ndims; i++) memcpy(r->dim_names[i], q->dims[i].name, sizeof r->dim_names[i]);
}

/* A cohort's number: months since year 0, or the day number of the week's Monday. */
static int64_t cohort_of(double t, int week) {
  int64_t day = (int64_t)floor(t / 86400.0), y;
  unsigned m, d;
  if (week) return day - ((day + 3) % 7 + 7) % 7;   /* 1970-01-01 was a Thursday */
  lq_civil_from_days(day, &y, &m, &d);
  return y * 12 + (m - 1);
}

static void cohort_label(int64_t c, int week, char *buf, size_t size) {
  if (week) lq_format_date((double)c * 86400.0, buf, size);
  else {
    int64_t y = c >= 0 ? c / 12 : -((-c + 11) / 12);
    snprintf(buf, size, "%04lld-%02d", (long long)y, (int)(c - y * 12) + 1);
  }
}

typedef struct dim_state {
  uint64_t card;
  int64_t base;            /* cohort: the smallest cohort number */
} dim_state;

static uint64_t dim_value(const lq_funnel *f, const lq_funnel_dim *d, const dim_state *ds, size_t L,
                          const int32_t *lead_row) {
  switch (d->kind) {
    case LQ_DIM_COLUMN: {
      int32_t row = lead_row[L];
      if (row < 0) return 0;
      if (d->col->type == LQ_CATEGORY) return (uint64_t)(d->col->codes[row] + 1);
      return d->col->bools[row] > 1 ? 0 : (uint64_t)d->col->bools[row] + 1;
    }
    case LQ_DIM_COHORT: {
      int32_t t = f->first_at[L * (size_t)f->cfg.nstages + (size_t)d->stage];
      if (t == LQ_FUNNEL_NEVER) return 0;
      return (uint64_t)(cohort_of(f->time_base + t, d->week) - ds->base) + 1;
    }
    default:
      return (uint64_t)(f->lead_owner[L] + 1);
  }
}

/* The string of value v of dimension d, NULL for missing. */
static const char *dim_string(const lq_funnel *f, const lq_funnel_dim *d, const dim_state *ds, uint64_t v,
                              size_t *len, char *buf, size_t size) {
  if (v == 0) return NULL;
  switch (d->kind) {
    case LQ_DIM_COLUMN:
      if (d->col->type == LQ_CATEGORY) {
        *len = d->col->dict.lengths[v - 1];
        return d->col->dict.bytes + d->col->dict.starts[v - 1];
      }
      *len = v == 2 ? 4 : 5;
      return v == 2 ? "true" : "false";
    case LQ_DIM_COHORT:
      cohort_label((int64_t)(v - 1) + ds->base, d->week, buf, size);
      *len = strlen(buf);
      return buf;
    default:
      return lq_keys_string(&f->owners, (int32_t)(v - 1), len);
  }
}

typedef struct join_job {
  const lq_funnel *f;
  const lq_column *idc;
  int32_t *lead_of_row;
  size_t from, to;         /* rows of the leads table */
} join_job;

static void *find_leads(void *arg) {
  const join_job *j = (const join_job *)arg;
  const lq_keys *leads = &j->f->leads;
  uint32_t ahead[LEAD_AHEAD];   /* text ids: as lq_funnel_load, the slots asked for ahead */
  size_t row;
  if (j->idc->type == LQ_TEXT)
    for (row = j->from; row < j->from + LEAD_AHEAD && row < j->to; row++) lead_ahead(j->idc, row, leads, ahead);
  for (row = j->from; row < j->to; row++) {
    char buf[40];
    size_t len = 0;
    const char *id = cell_text(j->idc, row, &len, buf, sizeof buf);
    if (j->idc->type != LQ_TEXT) {
      j->lead_of_row[row] = id == NULL ? -1 : lq_keys_find(leads, id, len);
      continue;
    }
    j->lead_of_row[row] = id == NULL ? -1 : lq_keys_find_hashed(leads, id, len, ahead[row % LEAD_AHEAD]);
    if (row + LEAD_AHEAD < j->to) lead_ahead(j->idc, row + LEAD_AHEAD, leads, ahead);
  }
  return NULL;
}

/* row[lead] = the first row of t whose id is that lead's, -1 for none. The ids are looked up on the
** funnel's threads (parts of t's rows), the first row of each lead then kept in row order. 0, -1. */
static int join_rows(const lq_funnel *f, const lq_table *t, int id_col, int32_t *row_of, size_t nl) {
  lq_allocator a = f->alloc;
  join_job jobs[LQ_FUNNEL_MAX_THREADS];
  int nparts = funnel_parts(f->threads, t->nrows), k;
  int32_t *lead_of_row = (int32_t *)mem_big(&a, NULL, 0, (t->nrows + 1) * sizeof(int32_t));
  size_t row;
  if (lead_of_row == NULL) return -1;
  for (k = 0; k < nparts; k++) {
    jobs[k].f = f;
    jobs[k].idc = t->cols[id_col];
    jobs[k].lead_of_row = lead_of_row;
    jobs[k].from = part_start(t->nrows, k, nparts);
    jobs[k].to = part_start(t->nrows, k + 1, nparts);
  }
  lq_run_jobs(find_leads, jobs, sizeof jobs[0], nparts);
  memset(row_of, 0xff, (nl + 1) * sizeof(int32_t));
  for (row = 0; row < t->nrows; row++) {
    int32_t li = lead_of_row[row];
    if (li >= 0 && row_of[li] < 0) row_of[li] = (int32_t)row;
  }
  mem_big(&a, lead_of_row, (t->nrows + 1) * sizeof(int32_t), 0);
  return 0;
}

int lq_funnel_join(lq_funnel *f, const lq_table *t, int id_col) {
  size_t nl = (size_t)f->leads.count;
  int32_t *row_of = (int32_t *)mem_big(&f->alloc, NULL, 0, (nl + 1) * sizeof(int32_t));
  if (row_of == NULL) return -1;
  if (join_rows(f, t, id_col, row_of, nl) != 0) {
    mem_big(&f->alloc, row_of, (nl + 1) * sizeof(int32_t), 0);
    return -1;
  }
  mem_big(&f->alloc, f->join_row, (f->join_n + 1) * sizeof(int32_t), 0);
  f->join_row = row_of;
  f->join_n = nl;
  f->join_table = t;
  f->join_col = id_col;
  f->join_nrows = t->nrows;
  return 0;
}

/* Per row of t (its lead found by the id column): the first time the lead entered `stage`, or with
** the funnel's implied stages any later chain stage; NaN when never, or when the id is not in the log.
** Whole seconds, as the funnel keeps them. 0, -1 on no memory, -2 when the times span too much. */
int lq_funnel_entered(lq_funnel *f, int stage, const lq_table *t, int id_col, double *out) {
  const lq_column *idc = t->cols[id_col];
  size_t ns = (size_t)f->cfg.nstages, row;
  int last = stage, s;
  if (!f->prepared) {
    int rc = lq_funnel_prepare(f);
    if (rc != 0) return rc;
  }
  if (!f->times_ready && funnel_times(f) != 0) return -1;
  if (f->cfg.implied && stage < f->cfg.nchain) last = f->cfg.nchain - 1;
  for (row = 0; row < t->nrows; row++) {
    char buf[40];
    size_t len = 0;
    const char *id = cell_text(idc, row, &len, buf, sizeof buf);
    int32_t li = id == NULL ? -1 : lq_keys_find(&f->leads, id, len);
    int32_t best = LQ_FUNNEL_NEVER;
    if (li >= 0) {
      const int32_t *first = f->first_at + (size_t)li * ns;
      for (s = stage; s <= last; s++)
        if (first[s] != LQ_FUNNEL_NEVER && (best == LQ_FUNNEL_NEVER || first[s] < best)) best = first[s];
    }
    out[row] = best == LQ_FUNNEL_NEVER ? NAN : (double)best + f->time_base;
  }
  return 0;
}

/* The groups of one aggregation, found by a key that mixes the dimensions' values. */
typedef struct group_index {
  lq_funnel *f;
  const lq_funnel_query *q;
  const dim_state *ds;
  lq_funnel_result *r;
  int32_t *dense;          /* by key, when the keys are few; else sparse */
  lq_keys *sparse;
} group_index;

/* The group of a key, made on first sight (its key as strings); -1 on no memory. */
static int32_t group_of_key(group_index *gi, uint64_t key) {
  lq_allocator *a = &gi->r->alloc;
  int32_t g, slot, codes[LQ_FUNNEL_MAX_DIMS];
  uint64_t k = key;
  int d;
  if (gi->dense != NULL && gi->dense[key] >= 0) return gi->dense[key];
  slot = gi->dense != NULL ? -1 : lq_keys_find(gi->sparse, (const char *)&key, sizeof key);
  if (slot >= 0) return slot;
  for (d = gi->q->ndims - 1; d >= 0; d--) {
    char buf[32];
    size_t len = 0;
    const char *s = dim_string(gi->f, &gi->q->dims[d], &gi->ds[d], k % gi->ds[d].card, &len, buf, sizeof buf);
    codes[d] = s == NULL ? -1 : lq_keys_intern(&gi->r->strings, a, s, len);
    if (codes[d] < -1) return -1;
    k /= gi->ds[d].card;
  }
  g = result_group(gi->r, codes);
  if (g < 0) return -1;
  if (gi->dense != NULL) gi->dense[key] = g;
  else if (lq_keys_intern(gi->sparse, a, (const char *)&key, sizeof key) != g) return -1;
  return g;
}

/* The key of lead L with its owner dimension (if any) set to `owner` (-1: missing): an MQL episode
** is charged to its own owner, not to the lead's latest. */
static uint64_t key_with_owner(const group_index *gi, size_t L, const int32_t *row_of, int32_t owner) {
  uint64_t key = 0;
  int d;
  for (d = 0; d < gi->q->ndims; d++) {
    const lq_funnel_dim *dim = &gi->q->dims[d];
    uint64_t v = dim->kind == LQ_DIM_OWNER ? (uint64_t)(owner + 1) : dim_value(gi->f, dim, &gi->ds[d], L, row_of);
    key = key * gi->ds[d].card + v;
  }
  return key;
}

/* Whether t is past the SLA of an episode entered at m: in working hours when the config has them
** (the reactions' sla, the service's clock), else in clock time. */
static int sla_late(const lq_funnel_config *cfg, double m, double t) {
  if (cfg->sla_calendar.working) return t > lq_calendar_deadline(&cfg->sla_calendar, m, cfg->sla_seconds);
  return t - m > cfg->sla_seconds;
}

/* The SLA of lead L's hand-offs. Each MQL episode (an entry into mql: the first, or again after
** nurture) has its own clock, to the first later chain stage before the episode ends, and its own
** owner: the owner on its hand-off row, else on its mql row, else (a lead of one episode) the
** lead's. An episode that ends in nurture or disqualified unhanded is no breach; one still open
** at as_of and past the SLA is overdue. 0, or -1 on no memory. */
static int episodes_sla(group_index *gi, size_t L, const int32_t *row_of, double inv_ln_gamma, int np) {
  lq_funnel *f = gi->f;
  const lq_funnel_config *cfg = &f->cfg;
  lq_funnel_result *r = gi->r;
  lq_allocator *a = &r->alloc;   /* the part's: it may run on a thread of its own */
  uint32_t k, from = f->start[L], to = f->start[L + 1];
  int episodes = 0, open = 0;
  double m = 0;
  int32_t owner = -1;
  for (k = from; k < to; k++) {
    uint32_t row = f->order[k];
    if (f->row_ok[row] && f->stage[row] == cfg->mql) episodes++;
  }
  for (k = from; k <= to; k++) {
    uint32_t row = k < to ? f->order[k] : 0;
    int s = k < to ? f->stage[row] : -1;
    int handoff = k < to && open && s > cfg->mql && s < cfg->nchain;
    int ends = k == to || (open && (s == cfg->nurture || s == cfg->disqualified || s == cfg->mql));
    if (k < to && !f->row_ok[row]) continue;
    if (open && (handoff || ends)) {
      double h = NAN, as_of = f->as_of;
      int breach;
      int32_t g, who = owner;
      if (handoff) {
        h = floor(f->at[row]);
        if (f->owner[row] >= 0) who = f->owner[row];
      }
      if (who < 0 && episodes == 1) who = f->lead_owner[L];
      /* closed unhanded by nurture or disqualified: nothing to count; still open at as_of: overdue */
      breach = handoff ? sla_late(cfg, m, h)
                       : k == to && f->last_stage[L] != cfg->disqualified && f->last_stage[L] != cfg->nurture &&
                             sla_late(cfg, m, as_of);
      open = 0;
      if (handoff || breach) {   /* the group only when counted: no empty group for a closed episode */
        g = group_of_key(gi, key_with_owner(gi, L, row_of, who));
        if (g < 0) return -1;
        if (handoff) {
          uint64_t *v = r->sla + (size_t)g * 4;
          v[0]++;
          if (sketch_add(&r->sketch_alloc, &r->sketches[(size_t)g * (size_t)(np + 1) + (size_t)np], h - m,
                         inv_ln_gamma) != 0)
            return -1;
          v[breach ? 2 : 1]++;
        } else {
          r->sla[(size_t)g * 4 + 3]++;
        }
        if (breach) {
          size_t len;
          const char *id = lq_keys_string(&f->leads, (int32_t)L, &len);
          int32_t code = lq_keys_intern(&r->strings, a, id, len);
          if (code < 0 || add_breach(r, g, code, m, h) != 0) return -1;
        }
      }
    }
    if (k < to && s == cfg->mql) {
      open = 1;
      m = floor(f->at[row]);
      owner = f->owner[row];
    }
  }
  return 0;
}

/* One part of the leads aggregated into a result of its own: the part's groups, counts, sketches,
** breaches, and its disqualification reasons counted densely by (group, funnel reason). */
typedef struct aggregate_job {
  lq_funnel *f;
  const lq_funnel_query *q;
  const dim_state *ds;
  const int32_t *row_of;
  size_t from, to, product;
  int sla;
  lq_funnel_result *r;
  uint64_t *reason_counts;   /* [group * nreasons + reason], through r's allocator */
  size_t reason_groups;
  int failed;
} aggregate_job;

#define VEL_AHEAD 8

static void *aggregate_leads(void *arg) {
  aggregate_job *j = (aggregate_job *)arg;
  lq_funnel *f = j->f;
  const lq_funnel_query *q = j->q;
  const lq_funnel_config *cfg = &f->cfg;
  lq_funnel_result *r = j->r;
  lq_allocator *a = &r->alloc;
  const dim_state *ds = j->ds;
  size_t L, nreasons = (size_t)f->reasons.count;
  double inv_ln_gamma = 1.0 / log(sketch_gamma());
  uint32_t chain_all = (uint32_t)((1u << cfg->nchain) - 1);
  int d, nsd = cfg->nstages - cfg->nchain, np = cfg->nchain * (cfg->nchain - 1) / 2;
  /* leads with two chain stages: their groups and first chain times, in lead order */
  int32_t *dense = NULL, *vel_group = NULL, *vel_times = NULL;
  uint32_t *sorted = NULL;
  size_t nvel = 0, vel_cap = 0, vel_cap_times = 0, *by_group = NULL, nc = (size_t)cfg->nchain;
  lq_keys sparse;
  group_index groups;
  lq_keys_init(&sparse);
  j->failed = 1;
  if (j->product <= LQ_FUNNEL_DENSE_GROUPS) {
    dense = (int32_t *)lq_mem_call(a, NULL, 0, j->product * sizeof(int32_t));
    if (dense == NULL) goto done;
    memset(dense, 0xff, j->product * sizeof(int32_t));
  }
  groups.f = f;
  groups.q = q;
  groups.ds = ds;
  groups.r = r;
  groups.dense = dense;
  groups.sparse = &sparse;
  for (L = j->from; L < j->to; L++) {
    uint32_t seen = f->seen[L], mask = seen;
    uint64_t key = 0;
    int32_t g;
    if (seen == 0) continue;   /* every row of this lead was rejected */
    if (cfg->implied && (seen & chain_all))   /* reaching a chain stage passes the ones before it */
      mask |= (uint32_t)((2u << (31 - __builtin_clz(seen & chain_all))) - 1);
    for (d = 0; d < q->ndims; d++) key = key * ds[d].card + dim_value(f, &q->dims[d], &ds[d], L, j->row_of);
    g = group_of_key(&groups, key);
    if (g < 0) goto done;
    r->hist[((size_t)g << cfg->nchain) | (mask & chain_all)]++;
    if (nsd > 0) {
      int k;
      for (k = 0; k < nsd; k++)
        if (mask & (1u << (cfg->nchain + k))) r->side[(size_t)g * (size_t)nsd + (size_t)k]++;
    }
    if (f->recycles[L] > 0) {
      r->recycled[g * 2]++;
      r->recycled[g * 2 + 1] += f->recycles[L];
    }
    if (cfg->disqualified >= 0 && (seen & (1u << cfg->disqualified)) && f->disq_reason[L] >= 0) {
      if ((size_t)r->gcap > j->reason_groups) {
        if (grow_zeroed(a, (void **)&j->reason_counts, j->reason_groups * nreasons, (size_t)r->gcap * nreasons,
                        sizeof(uint64_t)) != 0)
          goto done;
        j->reason_groups = (size_t)r->gcap;
      }
      j->reason_counts[(size_t)g * nreasons + (size_t)f->disq_reason[L]]++;
    }
    if (q->velocity && ((seen & chain_all) & ((seen & chain_all) - 1))) {   /* two chain stages entered */
      if (grow(a, (void **)&vel_times, &vel_cap_times, (nvel + 1) * nc, sizeof *vel_times) != 0 ||
          grow(a, (void **)&vel_group, &vel_cap, nvel + 1, sizeof *vel_group) != 0)
        goto done;
      lead_first_entries(f, L, vel_times + nvel * nc, cfg->nchain);   /* a few rows, not every lead's times */
      vel_group[nvel] = g;
      nvel++;
    }
    if (j->sla && (seen & (1u << cfg->mql)) && episodes_sla(&groups, L, j->row_of, inv_ln_gamma, np) != 0) goto done;
  }
  /* velocity a group at a time, its leads in lead order: a group's sketches stay in the cache while
  ** its leads go in, and each sketch takes its values in the order a pass in lead order gives them */
  if (nvel > 0) {
    size_t ng = (size_t)r->ngroups, k, g;
    by_group = (size_t *)lq_mem_call(a, NULL, 0, (ng + 1) * sizeof(size_t));
    sorted = (uint32_t *)lq_mem_call(a, NULL, 0, nvel * sizeof(uint32_t));
    if (by_group == NULL || sorted == NULL) goto done;
    memset(by_group, 0, (ng + 1) * sizeof(size_t));
    for (k = 0; k < nvel; k++) by_group[vel_group[k] + 1]++;
    for (k = 1; k <= ng; k++) by_group[k] += by_group[k - 1];
    for (k = 0; k < nvel; k++) sorted[by_group[vel_group[k]]++] = (uint32_t)k;
    for (g = 0, k = 0; g < ng; g++) {   /* by_group[g]: now the end of group g's leads */
      lq_sketch *sk = &r->sketches[g * (size_t)(np + 1)];
      for (; k < by_group[g]; k++) {
        const int32_t *first = vel_times + (size_t)sorted[k] * nc;
        int x, y;
        if (k + VEL_AHEAD < nvel)   /* a group's leads are far apart: their stage times asked for ahead */
          __builtin_prefetch(vel_times + (size_t)sorted[k + VEL_AHEAD] * nc);
        for (x = 0; x < cfg->nchain; x++) {
          if (first[x] == LQ_FUNNEL_NEVER) continue;
          for (y = x + 1; y < cfg->nchain; y++) {
            double dt;
            if (first[y] == LQ_FUNNEL_NEVER) continue;
            dt = (double)first[y] - (double)first[x];
            if (dt >= 0 && sketch_add(&r->sketch_alloc, &sk[lq_funnel_pair_index(cfg->nchain, x, y)], dt,
                                      inv_ln_gamma) != 0)
              goto done;
          }
        }
      }
    }
  }
  j->failed = 0;
done:
  if (dense != NULL) lq_mem_call(a, dense, j->product * sizeof(int32_t), 0);
  lq_mem_call(a, vel_times, vel_cap_times * sizeof *vel_times, 0);
  lq_mem_call(a, vel_group, vel_cap * sizeof *vel_group, 0);
  lq_mem_call(a, by_group, by_group != NULL ? ((size_t)r->ngroups + 1) * sizeof(size_t) : 0, 0);
  lq_mem_call(a, sorted, sorted != NULL ? nvel * sizeof(uint32_t) : 0, 0);
  lq_keys_free(&sparse, a);
  return NULL;
}

static int merge_result(lq_funnel_result *r, const lq_funnel_result *o, int32_t *gmap, const char **err);

/* The leads in parts, one a thread (f->threads), each into a result of its own; the parts' results
** merged in lead order. Groups, breaches and sketches' exact values then come in the order one pass
** over all leads gives them, and the reasons are added after, group by group, as one pass adds them:
** the result is the same, to the byte of its serialization, for any number of threads. */
lq_funnel_result *lq_funnel_aggregate(lq_funnel *f, const lq_funnel_query *q, const char **err) {
  lq_allocator *a = &f->alloc, sys = {lq_system_alloc, NULL};
  const lq_funnel_config *cfg = &f->cfg;
  size_t nl, L, ns = (size_t)cfg->nstages, product = 1, nreasons, reason_groups = 0;
  dim_state ds[LQ_FUNNEL_MAX_DIMS];
  aggregate_job jobs[LQ_FUNNEL_MAX_THREADS];
  int32_t *lead_row = NULL, *reason_map = NULL, *gmap = NULL;
  size_t gmap_n = 0;
  const int32_t *row_of;
  uint64_t *reason_counts = NULL;
  lq_funnel_result *r = NULL;
  int d, t, ok = 0, nparts = 0;
  int sla = q->sla && cfg->mql >= 0 && cfg->mql < cfg->nchain && cfg->sla_seconds > 0;
  *err = NULL;
  memset(jobs, 0, sizeof jobs);
  if (!f->prepared) {
    int rc = lq_funnel_prepare(f);
    if (rc == -2) *err = LQ_FUNNEL_SPAN_ERROR;
    if (rc != 0) return NULL;
  }
  nl = (size_t)f->leads.count;
  if (!f->times_ready) {   /* cohorts need each lead's stage times (velocity finds its leads' own) */
    int need = 0;
    for (d = 0; d < q->ndims; d++) need |= q->dims[d].kind == LQ_DIM_COHORT;
    if (need && funnel_times(f) != 0) return NULL;
  }
  /* the join: funnel lead -> row of the leads table, stored by lq_funnel_join or made here */
  nreasons = (size_t)f->reasons.count;
  reason_map = (int32_t *)lq_mem_call(a, NULL, 0, (nreasons + 1) * sizeof(int32_t));
  if (reason_map == NULL) goto done;
  memset(reason_map, 0xff, (nreasons + 1) * sizeof(int32_t));
  if (q->leads != NULL && q->use_join &&
      (f->join_row == NULL || f->join_table != q->leads || f->join_col != q->leads_id ||
       f->join_nrows != q->leads->nrows || f->join_n != nl) &&
      lq_funnel_join(f, q->leads, q->leads_id) != 0)
    goto done;
  if (q->leads != NULL && q->use_join) row_of = f->join_row;
  else {
    lead_row = (int32_t *)lq_mem_call(a, NULL, 0, (nl + 1) * sizeof(int32_t));
    if (lead_row == NULL) goto done;
    if (q->leads == NULL) memset(lead_row, 0xff, (nl + 1) * sizeof(int32_t));
    else if (join_rows(f, q->leads, q->leads_id, lead_row, nl) != 0) goto done;
    row_of = lead_row;
  }
  /* each dimension's number of values (0 = missing); a lead's key mixes them, in the pass below */
  for (d = 0; d < q->ndims; d++) {
    const lq_funnel_dim *dim = &q->dims[d];
    ds[d].base = 0;
    if (dim->kind == LQ_DIM_COLUMN) ds[d].card = dim->col->type == LQ_CATEGORY ? (uint64_t)dim->col->dict.count + 1 : 3;
    else if (dim->kind == LQ_DIM_OWNER) ds[d].card = (uint64_t)f->owners.count + 1;
    else {
      int64_t lo = INT64_MAX, hi = INT64_MIN;
      for (L = 0; L < nl; L++) {
        int32_t t32 = f->first_at[L * ns + (size_t)dim->stage];
        if (t32 != LQ_FUNNEL_NEVER) {
          int64_t c = cohort_of(f->time_base + t32, dim->week);
          if (c < lo) lo = c;
          if (c > hi) hi = c;
        }
      }
      ds[d].base = lo == INT64_MAX ? 0 : lo;
      ds[d].card = lo == INT64_MAX ? 1 : (uint64_t)(hi - lo) + 2;
    }
    if (ds[d].card != 0 && product > (UINT64_MAX >> 1) / ds[d].card) {
      *err = "the dimensions have too many combinations of values";
      goto done;
    }
    product *= ds[d].card;
  }
  /* the parts: the first through the funnel's allocator (it becomes the result), the others through
  ** the C library's, on threads of their own */
  nparts = funnel_parts(f->threads, nl);
  for (t = 0; t < nparts; t++) {
    jobs[t].f = f;
    jobs[t].q = q;
    jobs[t].ds = ds;
    jobs[t].row_of = row_of;
    jobs[t].from = part_start(nl, t, nparts);
    jobs[t].to = part_start(nl, t + 1, nparts);
    jobs[t].product = product;
    jobs[t].sla = sla;
    jobs[t].r = result_new(t == 0 ? *a : sys);
    if (jobs[t].r == NULL) goto done;
    result_header(jobs[t].r, cfg, q);
  }
  lq_run_jobs(aggregate_leads, jobs, sizeof jobs[0], nparts);
  for (t = 0; t < nparts; t++)
    if (jobs[t].failed) goto done;
  r = jobs[0].r;
  reason_counts = jobs[0].reason_counts;
  reason_groups = jobs[0].reason_groups;
  jobs[0].r = NULL;
  jobs[0].reason_counts = NULL;
  for (t = 1; t < nparts; t++) {
    const aggregate_job *j = &jobs[t];
    size_t g;
    if ((size_t)j->r->ngroups + 1 > gmap_n) {
      lq_mem_call(a, gmap, gmap_n * sizeof(int32_t), 0);
      gmap_n = (size_t)j->r->ngroups + 1;
      gmap = (int32_t *)lq_mem_call(a, NULL, 0, gmap_n * sizeof(int32_t));
      if (gmap == NULL) { gmap_n = 0; goto done; }
    }
    if (merge_result(r, j->r, gmap, err) != 0) goto done;
    if (j->reason_counts != NULL) {
      if ((size_t)r->gcap > reason_groups) {
        if (grow_zeroed(a, (void **)&reason_counts, reason_groups * nreasons, (size_t)r->gcap * nreasons,
                        sizeof(uint64_t)) != 0)
          goto done;
        reason_groups = (size_t)r->gcap;
      }
      for (g = 0; g < j->reason_groups && g < (size_t)j->r->ngroups; g++) {
        size_t k;
        for (k = 0; k < nreasons; k++)
          reason_counts[(size_t)gmap[g] * nreasons + k] += j->reason_counts[g * nreasons + k];
      }
    }
  }
  if (reason_counts != NULL) {
    size_t k;
    for (k = 0; k < reason_groups * nreasons; k++) {
      int32_t fr = (int32_t)(k % nreasons);
      if (reason_counts[k] == 0) continue;
      if (reason_map[fr] < 0) {
        size_t len;
        const char *s = lq_keys_string(&f->reasons, fr, &len);
        reason_map[fr] = lq_keys_intern(&r->strings, a, s, len);
        if (reason_map[fr] < 0) goto done;
      }
      if (add_reason(r, (int32_t)(k / nreasons), reason_map[fr], reason_counts[k]) != 0) goto done;
    }
  }
  ok = 1;
done:
  for (t = 0; t < nparts; t++) {
    if (jobs[t].r != NULL) {
      lq_mem_call(&jobs[t].r->alloc, jobs[t].reason_counts, jobs[t].reason_groups * nreasons * sizeof(uint64_t), 0);
      lq_funnel_result_free(jobs[t].r);
    }
  }
  lq_mem_call(a, reason_counts, reason_groups * nreasons * sizeof(uint64_t), 0);
  lq_mem_call(a, gmap, gmap_n * sizeof(int32_t), 0);
  lq_mem_call(a, lead_row, (nl + 1) * sizeof(int32_t), 0);
  lq_mem_call(a, reason_map, (nreasons + 1) * sizeof(int32_t), 0);
  if (!ok) {
    lq_funnel_result_free(r);
    return NULL;
  }
  return r;
}

/* ---------------------------------------------------------------- merging */

static int same_shape(const lq_funnel_result *r, const lq_funnel_result *o, const char **err) {
  int i;
  if (r->nstages != o->nstages || r->nchain != o->nchain || r->mql != o->mql) {
    *err = "cannot merge results with different stages";
    return 0;
  }
  for (i = 0; i < r->nstages; i++)
    if (strcmp(r->names[i], o->names[i]) != 0) { *err = "cannot merge results with different stages"; return 0; }
  if (r->ndims != o->ndims) { *err = "cannot merge results grouped by different dimensions"; return 0; }
  for (i = 0; i < r->ndims; i++)
    if (strcmp(r->dim_names[i], o->dim_names[i]) != 0) {
      *err = "cannot merge results grouped by different dimensions";
      return 0;
    }
  if (r->sla_seconds != o->sla_seconds) { *err = "cannot merge results with different SLAs"; return 0; }
  return 1;
}

static int32_t copy_string(lq_funnel_result *r, const lq_funnel_result *o, int32_t code) {
  size_t len;
  const char *s;
  if (code < 0) return -1;
  s = lq_keys_string(&o->strings, code, &len);
  return lq_keys_intern(&r->strings, &r->alloc, s, len);
}

int lq_funnel_result_merge(lq_funnel_result *r, const lq_funnel_result *o, const char **err) {
  int32_t *gmap;
  int rc;
  *err = NULL;
  if (!same_shape(r, o, err)) return -2;
  gmap = (int32_t *)lq_mem_call(&r->alloc, NULL, 0, ((size_t)o->ngroups + 1) * sizeof(int32_t));
  if (gmap == NULL) return -1;
  rc = merge_result(r, o, gmap, err);
  lq_mem_call(&r->alloc, gmap, ((size_t)o->ngroups + 1) * sizeof(int32_t), 0);
  return rc;
}

/* Adds o into r (of the same shape); gmap[o's group] = r's group. 0 or -1 on no memory. */
static int merge_result(lq_funnel_result *r, const lq_funnel_result *o, int32_t *gmap, const char **err) {
  int32_t og;
  size_t i, nsd = nside(r), H = (size_t)1 << r->nchain;
  int rc = -1;
  *err = NULL;
  for (og = 0; og < o->ngroups; og++) {
    const char *ok = lq_keys_string(&o->group_keys, og, NULL);
    int32_t codes[LQ_FUNNEL_MAX_DIMS], g;
    int d;
    for (d = 0; d < r->ndims; d++) {
      int32_t c;
      memcpy(&c, ok + (size_t)d * sizeof c, sizeof c);
      codes[d] = copy_string(r, o, c);
      if (codes[d] < -1) goto done;
    }
    g = result_group(r, codes);
    if (g < 0) goto done;
    gmap[og] = g;
    for (i = 0; i < H; i++) r->hist[((size_t)g << r->nchain) + i] += o->hist[((size_t)og << o->nchain) + i];
    for (i = 0; i < nsd; i++) r->side[(size_t)g * nsd + i] += o->side[(size_t)og * nsd + i];
    for (i = 0; i < 4; i++) r->sla[(size_t)g * 4 + i] += o->sla[(size_t)og * 4 + i];
    for (i = 0; i < 2; i++) r->recycled[(size_t)g * 2 + i] += o->recycled[(size_t)og * 2 + i];
    for (i = 0; i < nsk(r); i++)
      if (sketch_merge(&r->sketch_alloc, &r->sketches[(size_t)g * nsk(r) + i], &o->sketches[(size_t)og * nsk(o) + i]))
        goto done;
  }
  for (i = 0; i < (size_t)o->reason_keys.count; i++) {
    const char *k = lq_keys_string(&o->reason_keys, (int32_t)i, NULL);
    int32_t kg, kr;
    memcpy(&kg, k, sizeof kg);
    memcpy(&kr, k + sizeof kg, sizeof kr);
    kr = copy_string(r, o, kr);
    if (kr < 0 || add_reason(r, gmap[kg], kr, o->reason_counts[i]) != 0) goto done;
  }
  for (i = 0; i < o->nbreaches; i++) {
    const lq_funnel_breach *b = &o->breaches[i];
    int32_t lead = copy_string(r, o, b->lead);
    if (lead < 0 || add_breach(r, gmap[b->group], lead, b->mql_at, b->handoff_at) != 0) goto done;
  }
  rc = 0;
done:
  return rc;
}

/* ---------------------------------------------------------------- serialization */

typedef struct outbuf {
  lq_allocator *a;
  char *p;
  size_t len, cap;
  int failed;
} outbuf;

static void put(outbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (grow(b->a, (void **)&b->p, &b->cap, b->len + n + 1, 1) != 0) { b->failed = 1; return; }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/* The text made in b, handed back in a block of exactly len + 1 bytes (the size the caller frees it
** with), or NULL, b's block freed, when making it failed or the memory ran out. */
static char *outbuf_finish(outbuf *b, size_t *len) {
  char *out;
  if (!b->failed && b->p == NULL) put(b, "", 0);
  if (b->failed || b->p == NULL) {
    if (b->p != NULL) lq_mem_call(b->a, b->p, b->cap, 0);
    return NULL;
  }
  out = b->len + 1 == b->cap ? b->p : (char *)lq_mem_call(b->a, b->p, b->cap, b->len + 1);
  if (out == NULL) {
    lq_mem_call(b->a, b->p, b->cap, 0);
    return NULL;
  }
  *len = b->len;
  return out;
}

static void put_u64(outbuf *b, uint64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, " %llu", (unsigned long long)v);
  put(b, t, (size_t)n);
}

static void put_i64(outbuf *b, int64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, " %lld", (long long)v);
  put(b, t, (size_t)n);
}

static void put_double(outbuf *b, double v) {
  char t[40];
  int n = isnan(v) ? snprintf(t, sizeof t, " -") : snprintf(t, sizeof t, " %.17g", v);
  put(b, t, (size_t)n);
}

static void put_str(outbuf *b, const char *s, size_t len) {
  char t[32];
  int n;
  if (s == NULL) { put(b, " -", 2); return; }
  n = snprintf(t, sizeof t, " %llu:", (unsigned long long)len);
  put(b, t, (size_t)n);
  put(b, s, len);
}

static void put_code(outbuf *b, const lq_funnel_result *r, int32_t code) {
  size_t len;
  const char *s = code < 0 ? NULL : lq_keys_string(&r->strings, code, &len);
  put_str(b, s, s == NULL ? 0 : len);
}

char *lq_funnel_result_serialize(const lq_funnel_result *r, size_t *len) {
  outbuf b;
  lq_allocator a = r->alloc;
  int32_t g;
  int i;
  size_t k, H = (size_t)1 << r->nchain, nsd = nside(r);
  b.a = &a;
  b.p = NULL;
  b.len = b.cap = 0;
  b.failed = 0;
  put(&b, "leadq-funnel 2\n", 15);   /* 2: sketches carry their exact values */
  put_i64(&b, r->nstages);
  for (i = 0; i < r->nstages; i++) put_str(&b, r->names[i], strlen(r->names[i]));
  put_i64(&b, r->nchain);
  put_i64(&b, r->mql);
  put_double(&b, r->sla_seconds);
  put_i64(&b, r->ndims);
  for (i = 0; i < r->ndims; i++) put_str(&b, r->dim_names[i], strlen(r->dim_names[i]));
  put(&b, "\n", 1);
  put_i64(&b, r->ngroups);
  put(&b, "\n", 1);
  for (g = 0; g < r->ngroups; g++) {
    const char *key = lq_keys_string(&r->group_keys, g, NULL);
    uint64_t nnz = 0;
    for (i = 0; i < r->ndims; i++) {
      int32_t c;
      memcpy(&c, key + (size_t)i * sizeof c, sizeof c);
      put_code(&b, r, c);
    }
    for (k = 0; k < H; k++) nnz += r->hist[((size_t)g << r->nchain) + k] != 0;
    put_u64(&b, nnz);
    for (k = 0; k < H; k++)
      if (r->hist[((size_t)g << r->nchain) + k] != 0) {
        put_u64(&b, k);
        put_u64(&b, r->hist[((size_t)g << r->nchain) + k]);
      }
    for (k = 0; k < nsd; k++) put_u64(&b, r->side[(size_t)g * nsd + k]);
    for (k = 0; k < 4; k++) put_u64(&b, r->sla[(size_t)g * 4 + k]);
    for (k = 0; k < 2; k++) put_u64(&b, r->recycled[(size_t)g * 2 + k]);
    for (k = 0; k < nsk(r); k++) {
      const lq_sketch *s = &r->sketches[(size_t)g * nsk(r) + k];
      int32_t j, lo = 0, hi = s->len;   /* trim empty buckets at both ends */
      while (lo < hi && s->buckets[lo] == 0) lo++;
      while (hi > lo && s->buckets[hi - 1] == 0) hi--;
      put_u64(&b, s->count);
      put_u64(&b, s->zeros);
      put_i64(&b, s->min_index + lo);
      put_i64(&b, hi - lo);
      for (j = lo; j < hi; j++) put_u64(&b, s->buckets[j]);
      put_i64(&b, s->spilled ? -1 : (int64_t)s->nexact);
      for (j = 0; j < (int32_t)s->nexact; j++) put_double(&b, s->exact[j]);
    }
    put(&b, "\n", 1);
  }
  put_i64(&b, r->reason_keys.count);
  for (g = 0; g < r->reason_keys.count; g++) {
    const char *k2 = lq_keys_string(&r->reason_keys, g, NULL);
    int32_t kg, kr;
    memcpy(&kg, k2, sizeof kg);
    memcpy(&kr, k2 + sizeof kg, sizeof kr);
    put_i64(&b, kg);
    put_code(&b, r, kr);
    put_u64(&b, r->reason_counts[g]);
  }
  put(&b, "\n", 1);
  put_u64(&b, r->nbreaches);
  for (k = 0; k < r->nbreaches; k++) {
    put_i64(&b, r->breaches[k].group);
    put_code(&b, r, r->breaches[k].lead);
    put_double(&b, r->breaches[k].mql_at);
    put_double(&b, r->breaches[k].handoff_at);
  }
  put(&b, "\nend\n", 5);
  return outbuf_finish(&b, len);
}

typedef struct inbuf {
  const char *p, *end;
  int bad;
} inbuf;

static void skip_space(inbuf *in) {
  while (in->p < in->end && (*in->p == ' ' || *in->p == '\n')) in->p++;
}

static int64_t get_i64(inbuf *in) {
  int64_t v = 0;
  int neg = 0, n = 0;
  skip_space(in);
  if (in->p < in->end && *in->p == '-') { neg = 1; in->p++; }
  while (in->p < in->end && *in->p >= '0' && *in->p <= '9' && n < 19) { v = v * 10 + (*in->p++ - '0'); n++; }
  if (n == 0) in->bad = 1;
  return neg ? -v : v;
}

static uint64_t get_u64(inbuf *in) {
  uint64_t v = 0;
  int n = 0;
  skip_space(in);
  while (in->p < in->end && *in->p >= '0' && *in->p <= '9' && n < 20) { v = v * 10 + (uint64_t)(*in->p++ - '0'); n++; }
  if (n == 0) in->bad = 1;
  return v;
}

static double get_double(inbuf *in) {
  char t[48];
  size_t n = 0;
  skip_space(in);
  while (in->p < in->end && *in->p != ' ' && *in->p != '\n' && n < sizeof t - 1) t[n++] = *in->p++;
  t[n] = '\0';
  if (n == 1 && t[0] == '-') return NAN;
  {
    char *e;
    double v = strtod(t, &e);
    if (n == 0 || *e != '\0') in->bad = 1;
    return v;
  }
}

/* A string token: NULL for '-' (missing) or on a bad token. */
static const char *get_str(inbuf *in, size_t *len) {
  uint64_t n;
  const char *s;
  skip_space(in);
  if (in->p < in->end && *in->p == '-') { in->p++; *len = 0; return NULL; }
  n = get_u64(in);
  if (in->bad || in->p >= in->end || *in->p != ':' || n > (uint64_t)(in->end - in->p - 1)) {
    in->bad = 1;
    return NULL;
  }
  in->p++;
  s = in->p;
  in->p += n;
  *len = (size_t)n;
  return s;
}

lq_funnel_result *lq_funnel_result_parse(lq_allocator alloc, const char *s, size_t len, const char **err) {
  inbuf in;
  lq_funnel_result *r;
  int64_t i, ng, nr;
  uint64_t nb;
  size_t H, nsd;
  *err = NULL;
  if (len < 15 || memcmp(s, "leadq-funnel 2\n", 15) != 0) {
    *err = len >= 15 && memcmp(s, "leadq-funnel 1\n", 15) == 0
      ? "a funnel result of an older leadq (write its parts again with this one)"
      : "not a serialized funnel result";
    return NULL;
  }
  in.p = s + 15;
  in.end = s + len;
  in.bad = 0;
  r = result_new(alloc);
  if (r == NULL) return NULL;
  r->nstages = (int)get_i64(&in);
  if (in.bad || r->nstages < 1 || r->nstages > LQ_FUNNEL_MAX_STAGES) goto bad;
  for (i = 0; i < r->nstages; i++) {
    size_t n;
    const char *name = get_str(&in, &n);
    if (name == NULL || n >= LQ_FUNNEL_NAME_MAX) goto bad;
    memcpy(r->names[i], name, n);
  }
  r->nchain = (int)get_i64(&in);
  r->mql = (int)get_i64(&in);
  r->sla_seconds = get_double(&in);
  r->ndims = (int)get_i64(&in);
  if (in.bad || r->nchain < 1 || r->nchain > LQ_FUNNEL_MAX_CHAIN || r->nchain > r->nstages || r->ndims < 0 ||
      r->ndims > LQ_FUNNEL_MAX_DIMS || r->mql < -1 || r->mql >= r->nstages)
    goto bad;
  r->npairs = r->nchain * (r->nchain - 1) / 2;
  for (i = 0; i < r->ndims; i++) {
    size_t n;
    const char *name = get_str(&in, &n);
    if (name == NULL || n >= sizeof r->dim_names[0]) goto bad;
    memcpy(r->dim_names[i], name, n);
  }
  H = (size_t)1 << r->nchain;
  nsd = nside(r);
  ng = get_i64(&in);
  if (in.bad || ng < 0 || ng > (int64_t)(in.end - in.p)) goto bad;
  for (i = 0; i < ng; i++) {
    int32_t codes[LQ_FUNNEL_MAX_DIMS], g;
    uint64_t nnz, k;
    int d;
    for (d = 0; d < r->ndims; d++) {
      size_t n;
      const char *v = get_str(&in, &n);
      if (in.bad) goto bad;
      codes[d] = v == NULL ? -1 : lq_keys_intern(&r->strings, &r->alloc, v, n);
      if (codes[d] < -1) goto nomem;
    }
    g = result_group(r, codes);
    if (g < 0) goto nomem;
    if (g != i) goto bad;   /* a key twice */
    nnz = get_u64(&in);
    if (in.bad || nnz > H) goto bad;
    for (k = 0; k < nnz; k++) {
      uint64_t m = get_u64(&in);
      if (m >= H) goto bad;
      r->hist[((size_t)g << r->nchain) + m] += get_u64(&in);
    }
    for (k = 0; k < nsd; k++) r->side[(size_t)g * nsd + k] = get_u64(&in);
    for (k = 0; k < 4; k++) r->sla[(size_t)g * 4 + k] = get_u64(&in);
    for (k = 0; k < 2; k++) r->recycled[(size_t)g * 2 + k] = get_u64(&in);
    for (k = 0; k < nsk(r); k++) {
      lq_sketch *sk = &r->sketches[(size_t)g * nsk(r) + k];
      int64_t lo, n, j;
      sk->count = get_u64(&in);
      sk->zeros = get_u64(&in);
      lo = get_i64(&in);
      n = get_i64(&in);
      if (in.bad || n < 0 || n > 100000 || lo < -100000 || lo > 100000) goto bad;
      if (n > 0 && sketch_cover(&r->sketch_alloc, sk, (int32_t)lo, (int32_t)(lo + n - 1)) != 0) goto nomem;
      for (j = 0; j < n; j++) sk->buckets[j] = get_u64(&in);
      n = get_i64(&in);   /* -1: spilled; else the exact values, as many as the count */
      if (in.bad || n > LQ_SKETCH_EXACT || (n >= 0 && (uint64_t)n != sk->count)) goto bad;
      if (n < 0) {
        sk->spilled = 1;
      } else {
        if (sk->len > 0) memset(sk->buckets, 0, (size_t)sk->len * sizeof(uint64_t));   /* exact: no buckets */
        for (j = 0; j < n; j++) {
          double v = get_double(&in);
          if (in.bad || !(v >= 0)) goto bad;
          if (sketch_keep(&r->sketch_alloc, sk, &v, 1) != 0) goto nomem;
        }
      }
    }
    if (in.bad) goto bad;
  }
  nr = get_i64(&in);
  if (in.bad || nr < 0) goto bad;
  for (i = 0; i < nr; i++) {
    int64_t g = get_i64(&in);
    size_t n;
    const char *reason = get_str(&in, &n);
    uint64_t c = get_u64(&in);
    int32_t code;
    if (in.bad || reason == NULL || g < 0 || g >= r->ngroups) goto bad;
    code = lq_keys_intern(&r->strings, &r->alloc, reason, n);
    if (code < 0 || add_reason(r, (int32_t)g, code, c) != 0) goto nomem;
  }
  nb = get_u64(&in);
  if (in.bad) goto bad;
  for (i = 0; (uint64_t)i < nb; i++) {
    int64_t g = get_i64(&in);
    size_t n;
    const char *lead = get_str(&in, &n);
    double m = get_double(&in), h = get_double(&in);
    int32_t code;
    if (in.bad || lead == NULL || g < 0 || g >= r->ngroups) goto bad;
    code = lq_keys_intern(&r->strings, &r->alloc, lead, n);
    if (code < 0 || add_breach(r, (int32_t)g, code, m, h) != 0) goto nomem;
  }
  skip_space(&in);
  if (in.end - in.p != 4 || memcmp(in.p, "end\n", 4) != 0) goto bad;
  return r;
bad:
  *err = "not a serialized funnel result (the text is damaged)";
nomem:
  lq_funnel_result_free(r);
  return NULL;
}

/* ---- the result's rows, in order, and as CSV ---- */

/* Groups compare by their key, dimension by dimension: missing first, then by bytes. */
int lq_funnel_compare_keys(const lq_funnel_result *r, int32_t ga, int32_t gb) {
  const char *ka = lq_keys_string(&r->group_keys, ga, NULL), *kb = lq_keys_string(&r->group_keys, gb, NULL);
  int d;
  for (d = 0; d < r->ndims; d++) {
    int32_t ca, cb;
    size_t la, lb;
    const char *sa, *sb;
    int c;
    memcpy(&ca, ka + (size_t)d * 4, 4);
    memcpy(&cb, kb + (size_t)d * 4, 4);
    if (ca == cb) continue;
    if (ca < 0) return -1;
    if (cb < 0) return 1;
    sa = lq_keys_string(&r->strings, ca, &la);
    sb = lq_keys_string(&r->strings, cb, &lb);
    if ((c = lq_compare_bytes(sa, la, sb, lb)) != 0) return c;
  }
  return 0;
}

int lq_funnel_compare_breaches(const lq_funnel_result *r, size_t i, size_t j) {
  const lq_funnel_breach *p = &r->breaches[i], *q = &r->breaches[j];
  size_t la, lb;
  const char *sa = lq_keys_string(&r->strings, p->lead, &la), *sb = lq_keys_string(&r->strings, q->lead, &lb);
  int c = lq_compare_bytes(sa, la, sb, lb);
  if (c != 0) return c;
  if (p->mql_at != q->mql_at) return p->mql_at < q->mql_at ? -1 : 1;
  return lq_funnel_compare_keys(r, p->group, q->group);
}

typedef struct group_ref {
  const lq_funnel_result *r;
  int32_t g;
} group_ref;

static int cmp_group_ref(const void *a, const void *b) {
  const group_ref *x = (const group_ref *)a, *y = (const group_ref *)b;
  return lq_funnel_compare_keys(x->r, x->g, y->g);
}

int lq_funnel_result_order(const lq_funnel_result *r, int32_t *order) {
  lq_allocator a = r->alloc;
  size_t n = (size_t)r->ngroups, i;
  group_ref *refs = (group_ref *)a.fn(a.ud, NULL, 0, (n + 1) * sizeof *refs);
  if (refs == NULL) return -1;
  for (i = 0; i < n; i++) { refs[i].r = r; refs[i].g = (int32_t)i; }
  qsort(refs, n, sizeof *refs, cmp_group_ref);
  for (i = 0; i < n; i++) order[i] = refs[i].g;
  a.fn(a.ud, refs, (n + 1) * sizeof *refs, 0);
  return 0;
}

int lq_funnel_output_pairs(const lq_funnel_result *r, int *from, int *to) {
  int reached[LQ_FUNNEL_MAX_CHAIN], s, n = 0, prev = -1, k;
  int32_t g;
  for (s = 0; s < r->nchain; s++) {
    reached[s] = 0;
    for (g = 0; g < r->ngroups && !reached[s]; g++) reached[s] = lq_funnel_result_reached(r, g, s) > 0;
  }
  for (s = 0; s < r->nchain; s++) {
    if (!reached[s]) continue;
    if (prev >= 0) { from[n] = prev; to[n] = s; n++; }
    prev = s;
  }
  if (r->mql >= 0 && r->mql < r->nchain && reached[r->mql])
    for (s = r->mql + 1; s < r->nchain; s++) {
      int dup = 0;
      if (!reached[s]) continue;
      for (k = 0; k < n; k++) dup |= from[k] == r->mql && to[k] == s;
      if (!dup) { from[n] = r->mql; to[n] = s; n++; }
    }
  return n;
}

static void put_to_outbuf(void *ud, const char *s, size_t len) {
  put((outbuf *)ud, s, len);
}

/* A CSV field (csv_writer.c: quoted when it must be). */
static void put_field(outbuf *b, const char *s, size_t len) {
  lq_csv_put_field(put_to_outbuf, b, s, len);
}

static void put_fixed(outbuf *b, const char *fmt, double v) {
  char t[64];
  int n;
  if (isnan(v)) return;
  n = snprintf(t, sizeof t, fmt, v);
  if (n > 0) put(b, t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

char *lq_funnel_result_csv(const lq_funnel_result *r, size_t *len) {
  int from[LQ_FUNNEL_MAX_CHAIN * 2], to[LQ_FUNNEL_MAX_CHAIN * 2], npairs = lq_funnel_output_pairs(r, from, to);
  lq_allocator a = r->alloc;
  size_t norder = (size_t)r->ngroups + 1;
  int32_t *order = (int32_t *)a.fn(a.ud, NULL, 0, norder * sizeof *order);
  outbuf b;
  int32_t i;
  int d, s, p;
  char name[LQ_FUNNEL_NAME_MAX * 3 + 16];
  b.a = &a;
  b.p = NULL;
  b.len = b.cap = 0;
  b.failed = order == NULL || lq_funnel_result_order(r, order) != 0;
  /* the header: dimensions, a count per stage, then per pair its conversion, median and p90 days */
  for (d = 0; d < r->ndims; d++) {
    if (d > 0) put(&b, ",", 1);
    put_field(&b, r->dim_names[d], strlen(r->dim_names[d]));
  }
  for (s = 0; s < r->nstages; s++) {
    if (r->ndims > 0 || s > 0) put(&b, ",", 1);
    put_field(&b, r->names[s], strlen(r->names[s]));
  }
  for (p = 0; p < npairs; p++) {
    static const char *const suffix[3] = { "", "_median_days", "_p90_days" };
    int k;
    for (k = 0; k < 3; k++) {
      int n = snprintf(name, sizeof name, "%s_to_%s%s", r->names[from[p]], r->names[to[p]], suffix[k]);
      put(&b, ",", 1);
      put_field(&b, name, (size_t)n);
    }
  }
  put(&b, "\n", 1);
  for (i = 0; i < r->ngroups && !b.failed; i++) {
    int32_t g = order[i];
    const char *key = lq_keys_string(&r->group_keys, g, NULL);
    for (d = 0; d < r->ndims; d++) {
      int32_t c;
      memcpy(&c, key + (size_t)d * 4, 4);
      if (d > 0) put(&b, ",", 1);
      if (c >= 0) {
        size_t l;
        const char *v = lq_keys_string(&r->strings, c, &l);
        put_field(&b, v, l);
      }
    }
    for (s = 0; s < r->nstages; s++) {
      char t[32];
      int n = snprintf(t, sizeof t, "%s%llu", r->ndims > 0 || s > 0 ? "," : "",
                       (unsigned long long)lq_funnel_result_reached(r, g, s));
      put(&b, t, (size_t)n);
    }
    for (p = 0; p < npairs; p++) {
      uint64_t base = lq_funnel_result_reached(r, g, from[p]);
      const lq_sketch *sk = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) +
                                          (size_t)lq_funnel_pair_index(r->nchain, from[p], to[p])];
      put(&b, ",", 1);
      if (base > 0) put_fixed(&b, "%.4f", (double)lq_funnel_result_both(r, g, from[p], to[p]) / (double)base);
      put(&b, ",", 1);
      if (sk->count > 0) put_fixed(&b, "%.2f", lq_sketch_quantile(sk, 0.5) / 86400.0);
      put(&b, ",", 1);
      if (sk->count > 0) put_fixed(&b, "%.2f", lq_sketch_quantile(sk, 0.9) / 86400.0);
    }
    put(&b, "\n", 1);
  }
  if (order != NULL) a.fn(a.ud, order, norder * sizeof *order, 0);
  return outbuf_finish(&b, len);
}

/* ---------------------------------------------------------------- the result as JSON */

/* JSON as leadq.json writes a Lua value: objects with their keys sorted by bytes, whole numbers as
** integers, other numbers in the shortest of %.14g and %.17g that reads back the same double, control
** characters, '"' and '\' escaped. The layout is funnel.report's table (the disqualification reasons
** most frequent first, then by reason; the breaches by lead, mql time and group), so this text is
** funnel.to_json(funnel.report(r)) byte for byte. */

static void put_json_string(outbuf *b, const char *s, size_t len) {
  size_t i, from = 0;
  put(b, "\"", 1);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[8];
    if (c >= 32 && c != 127 && c != '"' && c != '\\') continue;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default: snprintf(u, sizeof u, "\\u%04x", c); esc = u;
    }
    put(b, s + from, i - from);
    put(b, esc, strlen(esc));
    from = i + 1;
  }
  put(b, s + from, len - from);
  put(b, "\"", 1);
}

static void put_json_key(outbuf *b, int first, const char *key) {
  if (!first) put(b, ",", 1);
  put_json_string(b, key, strlen(key));
  put(b, ":", 1);
}

static void put_json_number(outbuf *b, double v) {
  char t[40];
  int n;
  if (floor(v) == v && v >= -9007199254740992.0 && v <= 9007199254740992.0)
    n = snprintf(t, sizeof t, "%lld", (long long)v);
  else {
    n = snprintf(t, sizeof t, "%.14g", v);
    if (strtod(t, NULL) != v) n = snprintf(t, sizeof t, "%.17g", v);
  }
  put(b, t, (size_t)n);
}

static void put_json_count(outbuf *b, uint64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
  put(b, t, (size_t)n);
}

/* A list of n names, stride bytes apart, as a JSON array. */
static void put_json_names(outbuf *b, const char *names, size_t stride, int n) {
  int i;
  put(b, "[", 1);
  for (i = 0; i < n; i++) {
    const char *name = names + (size_t)i * stride;
    if (i > 0) put(b, ",", 1);
    put_json_string(b, name, strlen(name));
  }
  put(b, "]", 1);
}

/* order[0..n) sorted by the strings names[order[i]] (an insertion sort: a few names). */
static void sort_names(const char *const *names, int *order, int n) {
  int i, j;
  for (i = 0; i < n; i++) order[i] = i;
  for (i = 1; i < n; i++) {
    int x = order[i];
    for (j = i; j > 0 && strcmp(names[order[j - 1]], names[x]) > 0; j--) order[j] = order[j - 1];
    order[j] = x;
  }
}

static void put_json_key_object(outbuf *b, const lq_funnel_result *r, int32_t g, const int *dim_order) {
  const char *key = lq_keys_string(&r->group_keys, g, NULL);
  int d, first = 1;
  put(b, "{", 1);
  for (d = 0; d < r->ndims; d++) {
    int dd = dim_order[d];
    int32_t c;
    size_t len;
    const char *s;
    memcpy(&c, key + (size_t)dd * 4, 4);
    if (c < 0) continue;   /* missing: no key, as a nil field */
    s = lq_keys_string(&r->strings, c, &len);
    put_json_key(b, first, r->dim_names[dd]);
    put_json_string(b, s, len);
    first = 0;
  }
  put(b, "}", 1);
}

/* Most frequent first, then by reason (funnel.report's order). */
static int reason_before(const void *ctx, uint32_t x, uint32_t y) {
  const lq_funnel_result *r = (const lq_funnel_result *)ctx;
  const char *kx = lq_keys_string(&r->reason_keys, (int32_t)x, NULL);
  const char *ky = lq_keys_string(&r->reason_keys, (int32_t)y, NULL);
  int32_t cx, cy;
  size_t lx, ly;
  const char *sx, *sy;
  int c;
  if (r->reason_counts[x] != r->reason_counts[y]) return r->reason_counts[x] > r->reason_counts[y];
  memcpy(&cx, kx + 4, 4);
  memcpy(&cy, ky + 4, 4);
  sx = lq_keys_string(&r->strings, cx, &lx);
  sy = lq_keys_string(&r->strings, cy, &ly);
  c = memcmp(sx, sy, lx < ly ? lx : ly);
  return c != 0 ? c < 0 : lx < ly;
}

/* By lead, then mql time, then group key (the order of the result's breaches in Lua). */
static int breach_before(const void *ctx, uint32_t x, uint32_t y) {
  return lq_funnel_compare_breaches((const lq_funnel_result *)ctx, x, y) < 0;
}

/* Each group's reason keys together, in key order (a counting sort by group): group g's are
** reasons[reason_start[g] .. reason_start[g + 1]); reason_start has norder >= ngroups + 1 entries. */
static void reasons_by_group(const lq_funnel_result *r, uint32_t *reasons, size_t *reason_start, size_t norder) {
  size_t k;
  int32_t i;
  memset(reason_start, 0, norder * sizeof *reason_start);
  for (k = 0; k < (size_t)r->reason_keys.count; k++) {
    int32_t kg;
    memcpy(&kg, lq_keys_string(&r->reason_keys, (int32_t)k, NULL), 4);
    reason_start[kg + 1]++;
  }
  for (i = 0; i < r->ngroups; i++) reason_start[i + 1] += reason_start[i];
  for (k = 0; k < (size_t)r->reason_keys.count; k++) {
    int32_t kg;
    memcpy(&kg, lq_keys_string(&r->reason_keys, (int32_t)k, NULL), 4);
    reasons[reason_start[kg]++] = (uint32_t)k;
  }
  for (i = r->ngroups; i > 0; i--) reason_start[i] = reason_start[i - 1];
  reason_start[0] = 0;
}

char *lq_funnel_result_json(const lq_funnel_result *r, size_t *len) {
  int from[LQ_FUNNEL_MAX_CHAIN * 2], to[LQ_FUNNEL_MAX_CHAIN * 2], npairs = lq_funnel_output_pairs(r, from, to);
  char pair_names[LQ_FUNNEL_MAX_CHAIN * 2][LQ_FUNNEL_NAME_MAX * 2 + 4];
  const char *pair_ptr[LQ_FUNNEL_MAX_CHAIN * 2], *stage_ptr[LQ_FUNNEL_MAX_STAGES], *dim_ptr[LQ_FUNNEL_MAX_DIMS];
  int pair_order[LQ_FUNNEL_MAX_CHAIN * 2], stage_order[LQ_FUNNEL_MAX_STAGES], dim_order[LQ_FUNNEL_MAX_DIMS];
  lq_allocator a = r->alloc;
  size_t norder = (size_t)r->ngroups + 1, nreasons = (size_t)r->reason_keys.count + 1, nb = r->nbreaches + 1, k;
  int32_t *order = (int32_t *)a.fn(a.ud, NULL, 0, norder * sizeof *order);
  uint32_t *reasons = (uint32_t *)a.fn(a.ud, NULL, 0, nreasons * sizeof *reasons);
  uint32_t *breaches = (uint32_t *)a.fn(a.ud, NULL, 0, nb * sizeof *breaches);
  size_t *reason_start = (size_t *)a.fn(a.ud, NULL, 0, norder * sizeof *reason_start);
  int has_sla = r->sla_seconds > 0 && r->mql >= 0;
  outbuf b;
  int32_t i;
  int s, p, d;
  b.a = &a;
  b.p = NULL;
  b.len = b.cap = 0;
  b.failed = order == NULL || reasons == NULL || breaches == NULL || reason_start == NULL ||
             lq_funnel_result_order(r, order) != 0;
  if (b.failed) goto done;
  for (p = 0; p < npairs; p++) {
    snprintf(pair_names[p], sizeof pair_names[p], "%s_to_%s", r->names[from[p]], r->names[to[p]]);
    pair_ptr[p] = pair_names[p];
  }
  for (s = 0; s < r->nstages; s++) stage_ptr[s] = r->names[s];
  for (d = 0; d < r->ndims; d++) dim_ptr[d] = r->dim_names[d];
  sort_names(pair_ptr, pair_order, npairs);
  sort_names(stage_ptr, stage_order, r->nstages);
  sort_names(dim_ptr, dim_order, r->ndims);
  /* each group's reasons together (a counting sort by group), each group's sorted as the report sorts */
  reasons_by_group(r, reasons, reason_start, norder);
  for (i = 0; i < r->ngroups; i++)
    sort_u32(reasons + reason_start[i], reason_start[i + 1] - reason_start[i], reason_before, r);
  for (k = 0; k < r->nbreaches; k++) breaches[k] = (uint32_t)k;
  sort_u32(breaches, r->nbreaches, breach_before, r);

  /* the keys in byte order: breaches, chain, dims, groups, pairs, sla_days, stages */
  put(&b, "{\"breaches\":[", 13);
  for (k = 0; k < r->nbreaches; k++) {
    const lq_funnel_breach *br = &r->breaches[breaches[k]];
    size_t l;
    const char *lead = lq_keys_string(&r->strings, br->lead, &l);
    int handed = !isnan(br->handoff_at);
    put(&b, k > 0 ? ",{" : "{", k > 0 ? 2 : 1);
    if (handed) {
      put(&b, "\"days\":", 7);
      put_json_number(&b, (br->handoff_at - br->mql_at) / 86400.0);
      put(&b, ",\"handoff_at\":", 14);
      put_json_number(&b, br->handoff_at);
      put(&b, ",", 1);
    }
    put(&b, "\"key\":", 6);
    put_json_key_object(&b, r, br->group, dim_order);
    put(&b, ",\"lead\":", 8);
    put_json_string(&b, lead, l);
    if (!isnan(br->mql_at)) {
      put(&b, ",\"mql_at\":", 10);
      put_json_number(&b, br->mql_at);
    }
    put(&b, "}", 1);
  }
  put(&b, "],\"chain\":", 10);
  put_json_names(&b, r->names[0], sizeof r->names[0], r->nchain);
  put(&b, ",\"dims\":", 8);
  put_json_names(&b, r->dim_names[0], sizeof r->dim_names[0], r->ndims);
  put(&b, ",\"groups\":[", 11);
  for (i = 0; i < r->ngroups && !b.failed; i++) {
    int32_t g = order[i];
    const uint64_t *sla = r->sla + (size_t)g * 4;
    const lq_sketch *hs = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) + (size_t)r->npairs];
    int first = 1;
    size_t j;
    put(&b, i > 0 ? ",{" : "{", i > 0 ? 2 : 1);
    put(&b, "\"conversion\":{", 14);
    for (p = 0; p < npairs; p++) {
      int q = pair_order[p];
      uint64_t base = lq_funnel_result_reached(r, g, from[q]);
      if (base == 0) continue;
      put_json_key(&b, first, pair_names[q]);
      put_json_number(&b, (double)lq_funnel_result_both(r, g, from[q], to[q]) / (double)base);
      first = 0;
    }
    put(&b, "},\"disqualified\":[", 18);
    for (j = reason_start[g]; j < reason_start[g + 1]; j++) {
      uint32_t rk = reasons[j];
      int32_t kr;
      size_t l;
      const char *rs;
      memcpy(&kr, lq_keys_string(&r->reason_keys, (int32_t)rk, NULL) + 4, 4);
      rs = lq_keys_string(&r->strings, kr, &l);
      put(&b, j > reason_start[g] ? ",{\"count\":" : "{\"count\":", j > reason_start[g] ? 10 : 9);
      put_json_count(&b, r->reason_counts[rk]);
      put(&b, ",\"reason\":", 10);
      put_json_string(&b, rs, l);
      put(&b, "}", 1);
    }
    put(&b, "],\"key\":", 8);
    put_json_key_object(&b, r, g, dim_order);
    put(&b, ",\"leads\":", 9);
    put_json_count(&b, lq_funnel_result_leads(r, g));
    put(&b, ",\"reached\":{", 12);
    for (s = 0; s < r->nstages; s++) {
      put_json_key(&b, s == 0, r->names[stage_order[s]]);
      put_json_count(&b, lq_funnel_result_reached(r, g, stage_order[s]));
    }
    put(&b, "},\"recycled\":", 13);
    put_json_count(&b, r->recycled[(size_t)g * 2]);
    put(&b, ",\"recycled_transitions\":", 24);
    put_json_count(&b, r->recycled[(size_t)g * 2 + 1]);
    if (has_sla) {   /* exact, handed_off, late, median_days, overdue, p90_days, share_within, within */
      double q50 = hs->count > 0 ? lq_sketch_quantile(hs, 0.5) / 86400.0 : NAN;
      double q90 = hs->count > 0 ? lq_sketch_quantile(hs, 0.9) / 86400.0 : NAN;
      put(&b, ",\"sla\":{", 8);
      if (hs->count > 0) put(&b, lq_sketch_exact(hs) ? "\"exact\":true," : "\"exact\":false,",
                             lq_sketch_exact(hs) ? 13 : 14);
      put(&b, "\"handed_off\":", 13);
      put_json_count(&b, sla[0]);
      put(&b, ",\"late\":", 8);
      put_json_count(&b, sla[2]);
      if (!isnan(q50)) { put(&b, ",\"median_days\":", 15); put_json_number(&b, q50); }
      put(&b, ",\"overdue\":", 11);
      put_json_count(&b, sla[3]);
      if (!isnan(q90)) { put(&b, ",\"p90_days\":", 12); put_json_number(&b, q90); }
      if (sla[0] + sla[3] > 0) {
        put(&b, ",\"share_within\":", 16);
        put_json_number(&b, (double)sla[1] / (double)(sla[0] + sla[3]));
      }
      put(&b, ",\"within\":", 10);
      put_json_count(&b, sla[1]);
      put(&b, "}", 1);
    }
    put(&b, ",\"velocity\":{", 13);
    first = 1;
    for (p = 0; p < npairs; p++) {
      int q = pair_order[p];
      const lq_sketch *sk = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) +
                                          (size_t)lq_funnel_pair_index(r->nchain, from[q], to[q])];
      double q50, q90;
      if (sk->count == 0) continue;
      q50 = lq_sketch_quantile(sk, 0.5) / 86400.0;
      q90 = lq_sketch_quantile(sk, 0.9) / 86400.0;
      put_json_key(&b, first, pair_names[q]);
      put(&b, lq_sketch_exact(sk) ? "{\"exact\":true" : "{\"exact\":false", lq_sketch_exact(sk) ? 13 : 14);
      if (!isnan(q50)) { put(&b, ",\"median_days\":", 15); put_json_number(&b, q50); }
      put(&b, ",\"n\":", 5);
      put_json_count(&b, sk->count);
      if (!isnan(q90)) { put(&b, ",\"p90_days\":", 12); put_json_number(&b, q90); }
      put(&b, "}", 1);
      first = 0;
    }
    put(&b, "}}", 2);
  }
  put(&b, "],\"pairs\":[", 11);
  for (p = 0; p < npairs; p++) {
    put(&b, p > 0 ? ",{\"from\":" : "{\"from\":", p > 0 ? 9 : 8);
    put_json_string(&b, r->names[from[p]], strlen(r->names[from[p]]));
    put(&b, ",\"name\":", 8);
    put_json_string(&b, pair_names[p], strlen(pair_names[p]));
    put(&b, ",\"to\":", 6);
    put_json_string(&b, r->names[to[p]], strlen(r->names[to[p]]));
    put(&b, "}", 1);
  }
  put(&b, "]", 1);
  if (r->sla_seconds > 0) {
    put(&b, ",\"sla_days\":", 12);
    put_json_number(&b, r->sla_seconds / 86400.0);
  }
  put(&b, ",\"stages\":", 10);
  put_json_names(&b, r->names[0], sizeof r->names[0], r->nstages);
  put(&b, "}\n", 2);
done:
  if (order != NULL) a.fn(a.ud, order, norder * sizeof *order, 0);
  if (reasons != NULL) a.fn(a.ud, reasons, nreasons * sizeof *reasons, 0);
  if (breaches != NULL) a.fn(a.ud, breaches, nb * sizeof *breaches, 0);
  if (reason_start != NULL) a.fn(a.ud, reason_start, norder * sizeof *reason_start, 0);
  return outbuf_finish(&b, len);
}

/* ---------------------------------------------------------------- the result as text tables */

/* funnel.to_text of the report table, to the byte: aligned tables of the leads reaching each stage,
** the conversion and the days per step (a row per group and a total row), then the hand-off SLA, the
** disqualification reasons (five a group, the rest summed) and the recycling. Cells are byte strings
** kept in one buffer; a table is laid out when all its cells are in. */

typedef struct text_table {
  outbuf cells;            /* every cell's bytes, one after another */
  size_t *start, *len;     /* of cell k */
  size_t n, cap;
  int cols;
} text_table;

static void table_start(text_table *t, lq_allocator *a, int cols) {
  t->cells.a = a;
  t->cells.len = 0;
  t->cols = cols;
  t->n = 0;
}

static void table_cell(text_table *t, const char *s, size_t len) {
  if (t->n == t->cap) {
    size_t cap = t->cap;
    if (grow(t->cells.a, (void **)&t->start, &cap, t->n + 1, sizeof(size_t)) != 0 ||
        grow(t->cells.a, (void **)&t->len, &t->cap, t->n + 1, sizeof(size_t)) != 0) {
      t->cells.failed = 1;
      return;
    }
  }
  t->start[t->n] = t->cells.len;
  t->len[t->n] = len;
  t->n++;
  put(&t->cells, s, len);
}

static void table_cellf(text_table *t, const char *fmt, double v) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, fmt, v);
  table_cell(t, buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0);
}

static void table_count(text_table *t, uint64_t v) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  table_cell(t, buf, (size_t)n);
}

static void table_text(text_table *t, const char *s) { table_cell(t, s, strlen(s)); }

/* One line of row `row`: the first left_cols cells padded on the right, the others on the left, two
** spaces apart, trailing white space dropped. */
static void table_line(outbuf *out, const text_table *t, const size_t *width, size_t row, int left_cols) {
  size_t from = out->len, c;
  for (c = 0; c < (size_t)t->cols; c++) {
    size_t k = row * (size_t)t->cols + c, pad = width[c] - t->len[k], i;
    const char *s = t->cells.p + t->start[k];
    if (c > 0) put(out, "  ", 2);
    if ((int)c >= left_cols) for (i = 0; i < pad; i++) put(out, " ", 1);
    put(out, s, t->len[k]);
    if ((int)c < left_cols) for (i = 0; i < pad; i++) put(out, " ", 1);
  }
  if (out->failed) return;
  while (out->len > from && (out->p[out->len - 1] == ' ' ||
                              (out->p[out->len - 1] >= '\t' && out->p[out->len - 1] <= '\r')))
    out->len--;
  put(out, "\n", 1);
}

/* The table (its first row the header, left aligned), a rule of dashes under the header, and one
** more above the last row when rule_last. */
static void table_put(outbuf *out, const text_table *t, int left_cols, int rule_last) {
  size_t width[LQ_FUNNEL_MAX_STAGES + 2 * LQ_FUNNEL_MAX_CHAIN + 1], rows, row, c, i;
  if (t->cells.failed || (size_t)t->cols > sizeof width / sizeof width[0]) { out->failed = 1; return; }
  rows = t->n / (size_t)t->cols;
  for (c = 0; c < (size_t)t->cols; c++) {
    width[c] = 0;
    for (row = 0; row < rows; row++)
      if (t->len[row * (size_t)t->cols + c] > width[c]) width[c] = t->len[row * (size_t)t->cols + c];
  }
  for (row = 0; row <= rows; row++) {   /* the rule under the header is row 1's, even with no rows */
    int rules = (row == 1) + (rule_last && row > 0 && row + 1 == rows), k;
    for (k = 0; k < rules; k++) {
      for (c = 0; c < (size_t)t->cols; c++) {
        if (c > 0) put(out, "  ", 2);
        for (i = 0; i < width[c]; i++) put(out, "-", 1);
      }
      put(out, "\n", 1);
    }
    if (row < rows) table_line(out, t, width, row, row == 0 ? t->cols : left_cols);
  }
}

/* "a / b" of a group's dimension values ("(missing)" for none), "all" without dimensions: a cell,
** made in scratch. */
static void group_label(const lq_funnel_result *r, int32_t g, text_table *t, outbuf *scratch) {
  const char *key = lq_keys_string(&r->group_keys, g, NULL);
  int d;
  if (r->ndims == 0) { table_text(t, "all"); return; }
  scratch->len = 0;
  for (d = 0; d < r->ndims; d++) {
    int32_t c;
    memcpy(&c, key + (size_t)d * 4, 4);
    if (d > 0) put(scratch, " / ", 3);
    if (c < 0) put(scratch, "(missing)", 9);
    else {
      size_t l;
      const char *v = lq_keys_string(&r->strings, c, &l);
      put(scratch, v, l);
    }
  }
  if (scratch->failed) t->cells.failed = 1;
  else table_cell(t, scratch->p != NULL ? scratch->p : "", scratch->len);
}

static void put_text(outbuf *b, const char *s) { put(b, s, strlen(s)); }

/* num() of funnel.lua: a whole number as an integer, else %.6g. */
static void put_num(outbuf *b, double v) {
  char t[48];
  int n = floor(v) == v && fabs(v) < 9007199254740992.0 ? snprintf(t, sizeof t, "%lld", (long long)v)
                                                          : snprintf(t, sizeof t, "%.6g", v);
  put(b, t, (size_t)n);
}

char *lq_funnel_result_text(const lq_funnel_result *r, const lq_funnel_result *total, size_t *len) {
  int from[LQ_FUNNEL_MAX_CHAIN * 2], to[LQ_FUNNEL_MAX_CHAIN * 2], npairs = lq_funnel_output_pairs(r, from, to);
  int steps[LQ_FUNNEL_MAX_CHAIN * 2], nsteps = 0, p, s, d, q;
  int tfrom[LQ_FUNNEL_MAX_CHAIN * 2], tto[LQ_FUNNEL_MAX_CHAIN * 2], tnpairs = 0;
  lq_allocator a = r->alloc;
  size_t norder = (size_t)r->ngroups + 1, nreasons = (size_t)r->reason_keys.count + 1;
  int32_t *order = (int32_t *)a.fn(a.ud, NULL, 0, norder * sizeof *order);
  uint32_t *reasons = (uint32_t *)a.fn(a.ud, NULL, 0, nreasons * sizeof *reasons);
  size_t *reason_start = (size_t *)a.fn(a.ud, NULL, 0, norder * sizeof *reason_start);
  int has_total = r->ndims > 0;   /* a total row under the groups */
  int has_sla = r->sla_seconds > 0 && r->mql >= 0;
  double total_both[LQ_FUNNEL_MAX_CHAIN * 2], total_from[LQ_FUNNEL_MAX_CHAIN * 2];
  uint64_t total_reached[LQ_FUNNEL_MAX_STAGES];
  char name[LQ_FUNNEL_NAME_MAX * 2 + 8];
  text_table t;
  outbuf b, scratch;
  int32_t i, rows;
  b.a = scratch.a = &a;
  b.p = scratch.p = NULL;
  b.len = b.cap = scratch.len = scratch.cap = 0;
  scratch.failed = 0;
  memset(&t, 0, sizeof t);
  t.cells.a = &a;
  b.failed = order == NULL || reasons == NULL || reason_start == NULL || lq_funnel_result_order(r, order) != 0;
  if (b.failed) goto done;
  if (total != NULL) tnpairs = lq_funnel_output_pairs(total, tfrom, tto);
  /* the steps: consecutive chain stages, then the first stage after lead to the last */
  for (s = 0; s + 1 < r->nchain; s++)
    for (p = 0; p < npairs; p++)
      if (from[p] == s && to[p] == s + 1) steps[nsteps++] = p;
  if (r->nchain > 3)
    for (p = 0; p < npairs; p++)
      if (from[p] == 1 && to[p] == r->nchain - 1) steps[nsteps++] = p;
  if (nsteps == 0)
    for (p = 0; p < npairs; p++) steps[nsteps++] = p;
  /* the total row's counts and conversions, summed over the groups in their order */
  memset(total_reached, 0, sizeof total_reached);
  memset(total_both, 0, sizeof total_both);
  memset(total_from, 0, sizeof total_from);
  for (i = 0; i < r->ngroups; i++) {
    int32_t g = order[i];
    for (s = 0; s < r->nstages; s++) total_reached[s] += lq_funnel_result_reached(r, g, s);
    for (p = 0; p < npairs; p++) {
      uint64_t base = lq_funnel_result_reached(r, g, from[p]);
      if (base == 0) continue;
      total_both[p] += (double)lq_funnel_result_both(r, g, from[p], to[p]) / (double)base * (double)base;
      total_from[p] += (double)base;
    }
  }
  rows = r->ngroups + (has_total ? 1 : 0);
  /* four tables: leads reaching each stage, conversion per step, median and p90 days per step */
  for (q = 0; q < 4; q++) {
    static const char *const titles[4] = {
      "leads reaching each stage",
      "conversion: leads that reached both stages / leads that reached the first",
      "days per step, median (first entry to first entry; exact up to 256 leads a cell, within 1% past)",
      "days per step, p90 (first entry to first entry; exact up to 256 leads a cell, within 1% past)"};
    int ncols = 1 + (q == 0 ? r->nstages : nsteps);
    table_start(&t, &a, ncols);
    if (r->ndims == 0) table_text(&t, "group");
    else {   /* the dimensions' names, " / " apart */
      scratch.len = 0;
      for (d = 0; d < r->ndims; d++) {
        if (d > 0) put(&scratch, " / ", 3);
        put(&scratch, r->dim_names[d], strlen(r->dim_names[d]));
      }
      if (scratch.failed) { b.failed = 1; goto done; }
      table_cell(&t, scratch.p, scratch.len);
    }
    if (q == 0)
      for (s = 0; s < r->nstages; s++) table_text(&t, r->names[s]);
    else
      for (p = 0; p < nsteps; p++) {
        snprintf(name, sizeof name, "%s->%s", r->names[from[steps[p]]], r->names[to[steps[p]]]);
        table_text(&t, name);
      }
    for (i = 0; i < rows; i++) {
      int is_total = i == r->ngroups;
      int32_t g = is_total ? -1 : order[i];
      if (is_total) table_text(&t, "total");
      else group_label(r, g, &t, &scratch);
      if (q == 0) {
        for (s = 0; s < r->nstages; s++)
          table_count(&t, is_total ? total_reached[s] : lq_funnel_result_reached(r, g, s));
        continue;
      }
      for (p = 0; p < nsteps; p++) {
        int sp = steps[p];
        if (q == 1) {
          if (is_total) {
            if (total_from[sp] > 0) table_cellf(&t, "%.1f%%", total_both[sp] / total_from[sp] * 100);
            else table_text(&t, "-");
          } else {
            uint64_t base = lq_funnel_result_reached(r, g, from[sp]);
            if (base > 0)
              table_cellf(&t, "%.1f%%", (double)lq_funnel_result_both(r, g, from[sp], to[sp]) / (double)base * 100);
            else table_text(&t, "-");
          }
        } else {
          const lq_sketch *sk = NULL;
          if (is_total) {   /* the step in the whole's own pairs, when it has them */
            int tp;
            if (total != NULL && total->ngroups > 0)
              for (tp = 0; tp < tnpairs; tp++)
                if (tfrom[tp] == from[sp] && tto[tp] == to[sp])
                  sk = &total->sketches[(size_t)lq_funnel_pair_index(total->nchain, tfrom[tp], tto[tp])];
          } else {
            sk = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) +
                              (size_t)lq_funnel_pair_index(r->nchain, from[sp], to[sp])];
          }
          if (sk != NULL && sk->count > 0)
            table_cellf(&t, "%.1f", lq_sketch_quantile(sk, q == 2 ? 0.5 : 0.9) / 86400.0);
          else table_text(&t, "-");
        }
      }
    }
    if (q > 0) put(&b, "\n", 1);
    put(&b, titles[q], strlen(titles[q]));
    put(&b, "\n", 1);
    table_put(&b, &t, 1, has_total);
  }
  /* the hand-off SLA, groups with a hand-off or an overdue episode */
  if (has_sla) {
    table_start(&t, &a, 7);
    table_text(&t, "group"); table_text(&t, "handed_off"); table_text(&t, "within"); table_text(&t, "late");
    table_text(&t, "overdue"); table_text(&t, "share_within"); table_text(&t, "median_days");
    for (i = 0; i < r->ngroups; i++) {
      int32_t g = order[i];
      const uint64_t *sla = r->sla + (size_t)g * 4;
      const lq_sketch *hs = &r->sketches[(size_t)g * ((size_t)r->npairs + 1) + (size_t)r->npairs];
      if (sla[0] == 0 && sla[3] == 0) continue;
      group_label(r, g, &t, &scratch);
      table_count(&t, sla[0]);
      table_count(&t, sla[1]);
      table_count(&t, sla[2]);
      table_count(&t, sla[3]);
      table_cellf(&t, "%.1f%%", (double)sla[1] / (double)(sla[0] + sla[3]) * 100);
      if (hs->count > 0) table_cellf(&t, "%.1f", lq_sketch_quantile(hs, 0.5) / 86400.0);
      else table_text(&t, "");
    }
    if (t.n > 7) {
      char head[160];
      int n;
      put_text(&b, "\nhand-off SLA: each mql to its first sales stage within ");
      put_num(&b, r->sla_seconds / 86400.0);
      n = snprintf(head, sizeof head, " days (%llu breaches)\n", (unsigned long long)r->nbreaches);
      put(&b, head, (size_t)n);
      table_put(&b, &t, 1, 0);
    }
  }
  /* disqualification reasons: each group's five most frequent, the rest summed */
  reasons_by_group(r, reasons, reason_start, norder);
  table_start(&t, &a, 3);
  table_text(&t, "group"); table_text(&t, "reason"); table_text(&t, "leads");
  for (i = 0; i < r->ngroups; i++) {
    int32_t g = order[i];
    size_t j, nth = 0;
    uint64_t rest = 0;
    sort_u32(reasons + reason_start[g], reason_start[g + 1] - reason_start[g], reason_before, r);
    for (j = reason_start[g]; j < reason_start[g + 1]; j++, nth++) {
      uint32_t rk = reasons[j];
      int32_t kr;
      size_t l;
      const char *rs;
      if (nth >= 5) { rest += r->reason_counts[rk]; continue; }
      memcpy(&kr, lq_keys_string(&r->reason_keys, (int32_t)rk, NULL) + 4, 4);
      rs = lq_keys_string(&r->strings, kr, &l);
      group_label(r, g, &t, &scratch);
      table_cell(&t, rs, l);
      table_count(&t, r->reason_counts[rk]);
    }
    if (rest > 0) {
      group_label(r, g, &t, &scratch);
      table_text(&t, "(other reasons)");
      table_count(&t, rest);
    }
  }
  if (t.n > 3) {
    put_text(&b, "\ndisqualification reasons\n");
    table_put(&b, &t, 2, 0);
  }
  /* leads recycled to nurture */
  table_start(&t, &a, 3);
  table_text(&t, "group"); table_text(&t, "leads"); table_text(&t, "transitions");
  for (i = 0; i < r->ngroups; i++) {
    int32_t g = order[i];
    if (r->recycled[(size_t)g * 2] == 0) continue;
    group_label(r, g, &t, &scratch);
    table_count(&t, r->recycled[(size_t)g * 2]);
    table_count(&t, r->recycled[(size_t)g * 2 + 1]);
  }
  if (t.n > 3) {
    put_text(&b, "\nrecycled to nurture\n");
    table_put(&b, &t, 1, 0);
  }
done:
  if (t.cells.failed) b.failed = 1;
  if (t.cells.p != NULL) a.fn(a.ud, t.cells.p, t.cells.cap, 0);
  if (t.start != NULL) a.fn(a.ud, t.start, t.cap * sizeof(size_t), 0);
  if (t.len != NULL) a.fn(a.ud, t.len, t.cap * sizeof(size_t), 0);
  if (scratch.p != NULL) a.fn(a.ud, scratch.p, scratch.cap, 0);
  if (order != NULL) a.fn(a.ud, order, norder * sizeof *order, 0);
  if (reasons != NULL) a.fn(a.ud, reasons, nreasons * sizeof *reasons, 0);
  if (reason_start != NULL) a.fn(a.ud, reason_start, norder * sizeof *reason_start, 0);
  return outbuf_finish(&b, len);
}
