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

/* The C library's heap under lua_Alloc's contract: for memory no Lua state owns (the threads of a
** parallel read, the fuzz targets). */
static inline void *lq_system_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
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
