/* Memory through an allocator: plain C, no Lua.
**
** Every engine takes its memory from the allocator its object was made with (the Lua state's, for
** an object Lua owns), under lua_Alloc's contract: nsize 0 frees, and the block's old size is
** given back on every resize and free. These helpers keep that contract in one place for every
** file: a request for 0 bytes takes 1 (0 would free), so a block made with size n is freed with
** the same n, and count * elem is refused before it can overflow.
*/
#ifndef LEADQ_ALLOC_H
#define LEADQ_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "page_pool.h"

/* Same contract as lua_Alloc: nsize 0 frees, otherwise (re)allocates. */
typedef void *(*lq_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct lq_allocator {
  lq_alloc_fn fn;
  void *ud;
} lq_allocator;

/* size bytes, uninitialised; NULL when there is no memory. */
static inline void *lq_mem_new(const lq_allocator *a, size_t size) {
  return a->fn(a->ud, NULL, 0, size > 0 ? size : 1);
}

/* count items of elem bytes; NULL on no memory or when the size would overflow. */
static inline void *lq_mem_array(const lq_allocator *a, size_t count, size_t elem) {
  if (elem != 0 && count > SIZE_MAX / elem) return NULL;
  return lq_mem_new(a, count * elem);
}

static inline void *lq_mem_zeroed(const lq_allocator *a, size_t count, size_t elem) {
  void *p = lq_mem_array(a, count, elem);
  if (p != NULL) memset(p, 0, count * elem > 0 ? count * elem : 1);
  return p;
}

/* p (osize bytes, or NULL) resized to nsize; NULL on no memory, p then still valid. */
static inline void *lq_mem_resize(const lq_allocator *a, void *p, size_t osize, size_t nsize) {
  return a->fn(a->ud, p, p != NULL ? (osize > 0 ? osize : 1) : 0, nsize > 0 ? nsize : 1);
}

/* A block of size bytes (the size it was made with); NULL is fine. */
static inline void lq_mem_free(const lq_allocator *a, void *p, size_t size) {
  if (p != NULL) a->fn(a->ud, p, size > 0 ? size : 1, 0);
}

/* ---- big blocks on huge pages ----
**
** A first touch of a fresh 4 KiB page costs a page fault, and on a virtual machine a fault is dear
** (10 us measured here, against 0.2 us a 4 KiB share of a 2 MiB page's): a load's columns,
** dictionaries and result arrays are written once, front to back, right after they are allocated,
** so their faults were a third of a 2-thread `leadq score`. A block of LQ_BIG_BLOCK bytes or more
** is therefore placed on a 2 MiB boundary (2 MiB of slack address space on each side, never
** touched) and Linux is asked for transparent huge pages over it: one fault per 2 MiB. Smaller
** blocks go straight through. Whether a block is big is told by its size, which lua_Alloc's
** contract gives back on every resize and free. -DLQ_NO_HUGEPAGES turns the advice off. */
#if !defined(LQ_BIG_BLOCK)
#define LQ_BIG_BLOCK ((size_t)1 << 20)
#endif
#define LQ_HUGE_ALIGN ((size_t)2 << 20)

typedef struct lq_big_header {
  void *raw;          /* what the allocator under gave */
  size_t raw_size;
} lq_big_header;

/* A big block: the page pool's when it is on (page_pool.h), else the allocator's. */
static inline void *lq_big_alloc(const lq_allocator *a, size_t n) {
  size_t raw_size = n + 2 * LQ_HUGE_ALIGN + sizeof(lq_big_header);
  char *raw, *data;
  lq_big_header *h;
  if ((data = (char *)lq_page_pool_take(n)) != NULL) return data;
  if (raw_size < n) return NULL;
  if ((raw = (char *)a->fn(a->ud, NULL, 0, raw_size)) == NULL) return NULL;
  data = (char *)(((uintptr_t)raw + sizeof(lq_big_header) + LQ_HUGE_ALIGN - 1) & ~(uintptr_t)(LQ_HUGE_ALIGN - 1));
  h = (lq_big_header *)(void *)data - 1;
  h->raw = raw;
  h->raw_size = raw_size;
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(LQ_NO_HUGEPAGES)
  (void)madvise(data, (n + LQ_HUGE_ALIGN - 1) & ~(LQ_HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
  return data;
}

static inline void lq_big_free(const lq_allocator *a, void *p, size_t n) {
  lq_big_header *h = (lq_big_header *)p - 1;
  if (lq_page_pool_owns(p)) lq_page_pool_give(p, n);
  else a->fn(a->ud, h->raw, h->raw_size, 0);
}

/* A block of osize bytes back where it came from: a big one by its header, else the allocator. */
static inline void lq_block_free(const lq_allocator *a, void *p, size_t osize) {
  if (osize >= LQ_BIG_BLOCK) lq_big_free(a, p, osize);
  else a->fn(a->ud, p, osize, 0);
}

/* lua_Alloc's contract over the lq_allocator ud, which must outlive every block. */
static inline void *lq_big_block_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  const lq_allocator *a = (const lq_allocator *)ud;
  int was_big = ptr != NULL && osize >= LQ_BIG_BLOCK;
  void *np;
  if (nsize == 0) {
    if (ptr != NULL) lq_block_free(a, ptr, osize);
    return NULL;
  }
  if (was_big && nsize >= LQ_BIG_BLOCK && lq_page_pool_owns(ptr)) {
    /* the pool's: shrunk where it is, or grown by moving its pages, not copying them */
    if ((np = lq_page_pool_resize(ptr, osize, nsize)) != NULL) return np;
  }
  if (!was_big && nsize < LQ_BIG_BLOCK) return a->fn(a->ud, ptr, ptr != NULL ? osize : 0, nsize);
  if (was_big && nsize >= LQ_BIG_BLOCK && nsize <= osize) {
    /* shrunk where it is (a table's arrays, to their rows at the end of a load): no copy. Its block
    ** is freed whole by its header; the whole huge pages past the new end go back now. */
#if defined(__linux__) && defined(MADV_DONTNEED)
    uintptr_t keep = ((uintptr_t)ptr + nsize + LQ_HUGE_ALIGN - 1) & ~(uintptr_t)(LQ_HUGE_ALIGN - 1);
    uintptr_t end = ((uintptr_t)ptr + osize + LQ_HUGE_ALIGN - 1) & ~(uintptr_t)(LQ_HUGE_ALIGN - 1);
    if (end > keep) (void)madvise((void *)keep, (size_t)(end - keep), MADV_DONTNEED);
#endif
    return ptr;
  }
  np = nsize >= LQ_BIG_BLOCK ? lq_big_alloc(a, nsize) : a->fn(a->ud, NULL, 0, nsize);
  if (np == NULL) return NULL;   /* the old block stays valid, as realloc's does */
  if (ptr != NULL) {
    memcpy(np, ptr, osize < nsize ? osize : nsize);
    lq_block_free(a, ptr, osize);
  }
  return np;
}

static inline void *lq_heap_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
}

/* The C library's heap under lua_Alloc's contract, big blocks on huge pages: for memory no Lua
** state owns (the threads of a parallel read, the fuzz targets). */
static inline void *lq_system_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  static const lq_allocator heap = {lq_heap_alloc, NULL};
  (void)ud;
  return lq_big_block_alloc((void *)&heap, p, osize, nsize);
}

/* The allocator's own call, lua_Alloc's contract as it is: nsize 0 frees p (osize bytes) and gives
** NULL; otherwise p (osize bytes, or NULL) resized to nsize, NULL on no memory. For engines that
** track their blocks' sizes themselves (0-byte blocks are never made there). */
static inline void *lq_mem_call(const lq_allocator *a, void *p, size_t osize, size_t nsize) {
  if (nsize == 0) {
    if (p != NULL) a->fn(a->ud, p, osize, 0);
    return NULL;
  }
  return a->fn(a->ud, p, osize, nsize);
}

#endif
