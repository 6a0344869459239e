/* libFuzzer target: the page pool (csrc/page_pool.c) under a sequence of takes, gives and resizes.
**
** The input is a list of operations on up to 16 blocks. Every block is marked with its own numbers
** at its first and last byte and at the start of each 2 MiB unit it holds; after each operation every
** live block must still hold its marks (pages moved by mremap, never lost, never shared by two
** blocks), every block must lie on a 2 MiB boundary and inside the pool, and a resize must keep the
** contents it had up to the smaller size. Blocks stay under 24 MiB and 160 MiB in all, so a run's
** memory is bounded (the pool keeps what it is given, for the next). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "page_pool.h"

#define SLOTS 16
#define UNIT ((size_t)2 << 20)
#define MAX_BLOCK ((size_t)24 << 20)
#define MAX_LIVE ((size_t)160 << 20)

typedef struct block {
  unsigned char *p;
  size_t size;
  unsigned char tag;   /* the byte its marks are made of */
} block;

static void die(const char *what) {
  fprintf(stderr, "fuzz_pool: %s\n", what);
  abort();
}

/* Marks at the first byte, the last and every unit's first byte, up to `size` bytes. */
static void mark(const block *b, size_t size) {
  size_t k;
  for (k = 0; k + 1 < size; k += UNIT) b->p[k] = (unsigned char)(b->tag + k / UNIT);
  b->p[size - 1] = (unsigned char)~b->tag;
}

/* The marks up to `size` bytes, but for the last byte's (checked by the caller). */
static void check(const block *b, size_t size) {
  size_t k;
  for (k = 0; k + 1 < size; k += UNIT)
    if (b->p[k] != (unsigned char)(b->tag + k / UNIT)) die("a block lost its contents");
}

static size_t size_of(const uint8_t *d) {
  /* 1 byte to MAX_BLOCK: small and unit-sized ones both common */
  size_t units = (size_t)(d[0] % 12), rest = (size_t)d[1] << 12;
  size_t n = units * UNIT + (d[0] & 0x80 ? rest : 0);
  if (n == 0) n = 1 + d[1];
  return n > MAX_BLOCK ? MAX_BLOCK : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int enabled;
  block blocks[SLOTS];
  size_t live = 0, i, s;
  unsigned char next_tag = 1;
  if (!enabled) {
    if (!lq_page_pool_enable()) return 0;   /* no mremap here: nothing to test */
    enabled = 1;
  }
  memset(blocks, 0, sizeof blocks);
  for (i = 0; i + 3 <= size; i += 3) {
    block *b = &blocks[data[i] % SLOTS];
    int op = (data[i] / SLOTS) % 3;
    size_t n = size_of(data + i + 1);
    if (b->p == NULL) op = 0;
    if (op == 0 && b->p == NULL) {   /* take */
      if (live + n > MAX_LIVE) continue;
      b->p = (unsigned char *)lq_page_pool_take(n);
      if (b->p == NULL) die("take failed");
      b->size = n;
      b->tag = next_tag++;
      live += n;
    } else if (op == 0 || op == 1) {   /* give */
      check(b, b->size);
      lq_page_pool_give(b->p, b->size);
      live -= b->size;
      b->p = NULL;
      continue;
    } else {   /* resize, the contents up to the smaller size kept */
      unsigned char *np;
      size_t keep = n < b->size ? n : b->size;
      if (live - b->size + n > MAX_LIVE) continue;
      check(b, keep);
      b->p[keep - 1] = (unsigned char)~b->tag;
      np = (unsigned char *)lq_page_pool_resize(b->p, b->size, n);
      if (np == NULL) die("resize failed");
      b->p = np;
      check(b, keep);
      if (b->p[keep - 1] != (unsigned char)~b->tag) die("a resized block lost its last byte");
      live = live - b->size + n;
      b->size = n;
    }
    if (((uintptr_t)b->p & (UNIT - 1)) != 0) die("a block off a 2 MiB boundary");
    if (!lq_page_pool_owns(b->p) || !lq_page_pool_owns(b->p + b->size - 1)) die("a block outside the pool");
    mark(b, b->size);
    for (s = 0; s < SLOTS; s++)
      if (blocks[s].p != NULL) {
        check(&blocks[s], blocks[s].size);
        if (blocks[s].p[blocks[s].size - 1] != (unsigned char)~blocks[s].tag) die("a block's last byte changed");
      }
  }
  for (s = 0; s < SLOTS; s++)
    if (blocks[s].p != NULL) lq_page_pool_give(blocks[s].p, blocks[s].size);
  return 0;
}
