/* Recycled pages for big blocks, in a command's process. Plain C, no Lua.
**
** On a virtual machine a fresh page is dear: its first touch costs a fault and its zeroing, and after
** another program has freed memory (the host takes it back) about 1.5 ms a MB were measured here, a
** third of `leadq funnel` from CSV files. A command frees big blocks as it goes (the transitions
** table once the funnel holds the log, a column's old array when it grows, the checks' scratch
** arrays) and makes others after; through the C heap those landed on fresh pages mostly, the freed
** ones lying in holes of the wrong size.
**
** With the pool on, big blocks are cut from one reserved range of address space, on 2 MiB
** boundaries (so on transparent huge pages), and a freed block keeps its pages: the next block takes
** a freed run that fits, else fresh space whose front is filled with freed runs moved there by
** mremap (the kernel moves the pages, it copies and zeroes nothing). A block that grows moves the
** same way, without a copy; one that shrinks gives its tail back. Blocks come uninitialised, as
** malloc's do. A process that ends with its run turns it on (core.keep_freed_memory); a server
** embedding the core does not, and its big blocks stay with its allocator. Blocks are taken and given
** back from any thread. */
#ifndef LEADQ_PAGE_POOL_H
#define LEADQ_PAGE_POOL_H

#include <stddef.h>

/* Turns the pool on for the rest of the process: 1, or 0 where it cannot be (no such system call,
** no address space to reserve); it is then off and nothing changes. */
int lq_page_pool_enable(void);

/* A block of at least n bytes on a 2 MiB boundary; NULL when the pool is off or out of space (the
** caller then allocates as it would without it). */
void *lq_page_pool_take(size_t n);

/* 1 when p is a block of the pool's. */
int lq_page_pool_owns(const void *p);

/* p, a block of the pool's made with n bytes, back to the pool. */
void lq_page_pool_give(void *p, size_t n);

/* p (osize bytes, the pool's) with room for nsize bytes, its contents kept: where it is when it
** shrinks or the space after it is free, else moved; NULL when there is no space (p is then as it
** was). */
void *lq_page_pool_resize(void *p, size_t osize, size_t nsize);

#endif
