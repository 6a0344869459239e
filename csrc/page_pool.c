/* Recycled pages for big blocks (page_pool.h). Plain C, no Lua.
**
** One range of address space is reserved (no memory, no access) when the pool is turned on; blocks
** are cut from it in units of 2 MiB: [base, base + used) has been handed out at least once, past it
** is untouched. Two lists of runs, sorted by address and merged with their neighbours, say what the
** used space holds: `freed`, blocks given back, their pages kept; `holes`, space whose pages were
** moved away, no access again. A block is the smallest freed run that fits, else space of a hole or
** past the used space filled with freed runs moved there (largest first), fresh pages only for what
** they do not cover: so the process's memory never grows past what its live blocks need at once.
** The kernel moves a run only within one mapping, and a block made of moved runs is several: a move
** the kernel refuses is retried a unit at a time (every boundary is a unit's). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "page_pool.h"

#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

#if defined(__linux__) && defined(MREMAP_FIXED) && defined(MAP_NORESERVE)

#define UNIT ((size_t)2 << 20)

typedef struct run {
  size_t off, len;
} run;

/* Runs by address, none touching another. */
typedef struct run_list {
  run *a;
  size_t n, cap;
} run_list;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *base;          /* the reserved range, on a unit's boundary; NULL: the pool is off */
static size_t span, used;
static run_list freed;      /* blocks given back, their pages kept */
static run_list holes;      /* space whose pages were moved away: nothing there, to be moved onto */

static size_t units(size_t n) { return n == 0 ? UNIT : (n + UNIT - 1) & ~(UNIT - 1); }

int lq_page_pool_enable(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  size_t want = pages > 0 && page > 0 ? (size_t)pages * (size_t)page * 4 : (size_t)64 << 30;
  struct rlimit as;
  pthread_mutex_lock(&lock);
  if (base == NULL) {
    if (want < ((size_t)8 << 30)) want = (size_t)8 << 30;
    if (want > ((size_t)1 << 40)) want = (size_t)1 << 40;
    /* under a limit on address space (ulimit -v), half of it at most: the rest stays the heap's */
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && want > as.rlim_cur / 2)
      want = (size_t)(as.rlim_cur / 2);
    for (; base == NULL && want >= ((size_t)1 << 30); want /= 2) {
      /* no access and no commitment: address space only, until a block is cut from it */
      void *p = mmap(NULL, want + UNIT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) continue;
      base = (char *)(((uintptr_t)p + UNIT - 1) & ~(uintptr_t)(UNIT - 1));
      span = want;
    }
  }
  pthread_mutex_unlock(&lock);
  return base != NULL;
}

int lq_page_pool_owns(const void *p) {
  const char *c = (const char *)p;
  int owns;
  pthread_mutex_lock(&lock);
  owns = base != NULL && c >= base && c < base + span;
  pthread_mutex_unlock(&lock);
  return owns;
}

/* Fresh memory over [off, off + len): readable, writable, on huge pages. 0 or -1. */
static int map_fresh(size_t off, size_t len) {
  if (mmap(base + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
    return -1;
#if defined(MADV_HUGEPAGE) && !defined(LQ_NO_HUGEPAGES)
  (void)madvise(base + off, len, MADV_HUGEPAGE);
#endif
  return 0;
}

/* The pages of [from, from + len) moved to [to, to + len), whose own are dropped; from is then
** reserved space again, no access (no one else maps there). 0, or -1 with nothing moved. */
static int move_pages(size_t from, size_t to, size_t len) {
  size_t k = len;
  if (mremap(base + from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, base + to) == MAP_FAILED) {
    for (k = 0; k < len; k += UNIT)   /* across mappings: a unit lies within one */
      if (mremap(base + from + k, UNIT, UNIT, MREMAP_MAYMOVE | MREMAP_FIXED, base + to + k) == MAP_FAILED) break;
  }
  if (k < len) {
    while (k > 0) {   /* back where they were */
      k -= UNIT;
      (void)mremap(base + to + k, UNIT, UNIT, MREMAP_MAYMOVE | MREMAP_FIXED, base + from + k);
    }
    return -1;
  }
  (void)mmap(base + from, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return 0;
}

/* The index of the first run of a list at or after off (the list's length when none is). */
static size_t first_from(const run_list *l, size_t off) {
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (l->a[mid].off < off) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void remove_run(run_list *l, size_t i) {
  memmove(&l->a[i], &l->a[i + 1], (l->n - i - 1) * sizeof *l->a);
  l->n--;
}

/* [off, off + len) into a list, merged with the runs it touches. 0 or -1 (no memory for the list:
** the run is then lost to the pool, never handed out twice). */
static int add_run(run_list *l, size_t off, size_t len) {
  size_t lo = first_from(l, off);
  if (lo > 0 && l->a[lo - 1].off + l->a[lo - 1].len == off) {
    l->a[lo - 1].len += len;
    if (lo < l->n && l->a[lo].off == off + len) {
      l->a[lo - 1].len += l->a[lo].len;
      remove_run(l, lo);
    }
    return 0;
  }
  if (lo < l->n && l->a[lo].off == off + len) {
    l->a[lo].off = off;
    l->a[lo].len += len;
    return 0;
  }
  if (l->n == l->cap) {
    size_t ncap = l->cap < 64 ? 64 : l->cap * 2;
    run *na = (run *)realloc(l->a, ncap * sizeof *l->a);
    if (na == NULL) return -1;
    l->a = na;
    l->cap = ncap;
  }
  memmove(&l->a[lo + 1], &l->a[lo], (l->n - lo) * sizeof *l->a);
  l->a[lo].off = off;
  l->a[lo].len = len;
  l->n++;
  return 0;
}

/* The first len bytes of run i, taken out of its list. */
static void cut_front(run_list *l, size_t i, size_t len) {
  l->a[i].off += len;
  l->a[i].len -= len;
  if (l->a[i].len == 0) remove_run(l, i);
}

/* The smallest run of a list holding len bytes; SIZE_MAX when none does. */
static size_t best_fit(const run_list *l, size_t len) {
  size_t best = SIZE_MAX, i;
  for (i = 0; i < l->n; i++)
    if (l->a[i].len >= len && (best == SIZE_MAX || l->a[i].len < l->a[best].len)) best = i;
  return best;
}

/* The run of a list starting at off; SIZE_MAX when none does. */
static size_t run_at(const run_list *l, size_t off) {
  size_t i = first_from(l, off);
  return i < l->n && l->a[i].off == off ? i : SIZE_MAX;
}

/* Space for len bytes that nothing is mapped on (a hole, else past the used space), taken: its
** offset, or SIZE_MAX when there is none. */
static size_t take_space(size_t len) {
  size_t i = best_fit(&holes, len), off;
  if (i != SIZE_MAX) {
    off = holes.a[i].off;
    cut_front(&holes, i, len);
    return off;
  }
  if (len > span - used) return SIZE_MAX;
  off = used;
  used += len;
  return off;
}

/* [to, to + len), space nothing is mapped on, filled with freed runs (largest first: fresh pages
** only once no freed ones are left), the rest fresh. 0 or -1 (no memory: the space is a hole again). */
static int fill(size_t to, size_t len) {
  size_t done = 0;
  while (done < len && freed.n > 0) {
    size_t big = 0, i, take, from;
    for (i = 1; i < freed.n; i++)
      if (freed.a[i].len > freed.a[big].len) big = i;
    take = freed.a[big].len < len - done ? freed.a[big].len : len - done;
    from = freed.a[big].off;
    if (move_pages(from, to + done, take) != 0) break;
    cut_front(&freed, big, take);
    (void)add_run(&holes, from, take);
    done += take;
  }
  if (done < len && map_fresh(to + done, len - done) != 0) {
    if (done > 0) (void)add_run(&freed, to, done);
    (void)add_run(&holes, to + done, len - done);
    return -1;
  }
  return 0;
}

void *lq_page_pool_take(size_t n) {
  size_t size = units(n), i, off;
  void *p = NULL;
  pthread_mutex_lock(&lock);
  if (base == NULL) goto out;
  if ((i = best_fit(&freed, size)) != SIZE_MAX) {   /* a freed run that fits, its pages as they are */
    off = freed.a[i].off;
    cut_front(&freed, i, size);
    p = base + off;
    goto out;
  }
  if ((off = take_space(size)) == SIZE_MAX || fill(off, size) != 0) goto out;
  p = base + off;
out:
  pthread_mutex_unlock(&lock);
  return p;
}

void lq_page_pool_give(void *p, size_t n) {
  pthread_mutex_lock(&lock);
  (void)add_run(&freed, (size_t)((char *)p - base), units(n));
  pthread_mutex_unlock(&lock);
}

void *lq_page_pool_resize(void *p, size_t osize, size_t nsize) {
  size_t off = (size_t)((char *)p - base), o = units(osize), n = units(nsize), extra, i, to;
  void *np = p;
  pthread_mutex_lock(&lock);
  if (n <= o) {   /* the tail back to the pool, its pages with it */
    if (n < o) (void)add_run(&freed, off + n, o - n);
    goto out;
  }
  extra = n - o;
  if ((i = run_at(&freed, off + o)) != SIZE_MAX && freed.a[i].len >= extra) {   /* freed pages after it */
    cut_front(&freed, i, extra);
    goto out;
  }
  if (off + o == used && extra <= span - used) {   /* it ends the used space: it grows there */
    used += extra;
    if (fill(off + o, extra) != 0) np = NULL;
    goto out;
  }
  if ((i = run_at(&holes, off + o)) != SIZE_MAX && holes.a[i].len >= extra) {   /* a hole after it */
    cut_front(&holes, i, extra);
    if (fill(off + o, extra) != 0) np = NULL;
    goto out;
  }
  /* moved, its pages with it, to space whose end is filled first */
  if ((to = take_space(n)) == SIZE_MAX) {
    np = NULL;
    goto out;
  }
  if (fill(to + o, extra) != 0) {
    (void)add_run(&holes, to, o);
    np = NULL;
    goto out;
  }
  if (move_pages(off, to, o) != 0) {   /* it stays; the space made for it is free */
    (void)add_run(&freed, to + o, extra);
    (void)add_run(&holes, to, o);
    np = NULL;
    goto out;
  }
  (void)add_run(&holes, off, o);
  np = base + to;
out:
  pthread_mutex_unlock(&lock);
  return np;
}

#else   /* no mremap: the pool stays off */

int lq_page_pool_enable(void) { return 0; }
void *lq_page_pool_take(size_t n) { (void)n; return NULL; }
int lq_page_pool_owns(const void *p) { (void)p; return 0; }
void lq_page_pool_give(void *p, size_t n) { (void)p; (void)n; }
void *lq_page_pool_resize(void *p, size_t osize, size_t nsize) { (void)p; (void)osize; (void)nsize; return NULL; }

#endif
