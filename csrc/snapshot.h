/* Columnar snapshots: loaded tables (leads, events) written to one binary file and read back
** without parsing. Plain C, no Lua.
**
** The file, every part 8-byte aligned and in the writer's byte order:
**   header   magic "\x89LEADQ\x1a\n", format version, header size, a byte-order mark, the number
**            of tables, the file's size, and a checksum of the header itself
**   sections one after another, each { kind, length, checksum } then its bytes padded to 8:
**            per table its metadata (name, rows, columns, types, source, rejects), then each
**            column's arrays as they lie in memory (values or codes, offsets, text, missing
**            marks, dictionary lengths and bytes), then an end section.
** Every section is checked (kind, length, a 64-bit checksum) before its bytes are used, and every
** value is checked against the table's invariants (codes within their dictionary, offsets rising,
** booleans 0/1/missing): a damaged, truncated, foreign or newer file is refused with a message
** naming the file and what is wrong, never misread.
*/
#ifndef LEADQ_SNAPSHOT_H
#define LEADQ_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define LQ_SNAPSHOT_VERSION 1u          /* the format this build writes and the newest it reads */
#define LQ_SNAPSHOT_MAGIC "\x89LEADQ\x1a\n"
#define LQ_SNAPSHOT_MAGIC_LEN 8
#if !defined(LQ_SNAPSHOT_MAX_TABLES)
#define LQ_SNAPSHOT_MAX_TABLES 8
#endif
#define LQ_SNAPSHOT_NAME_MAX 32         /* a table's name in the file: "leads", "events" */

typedef struct lq_snapshot_entry {
  char name[LQ_SNAPSHOT_NAME_MAX];
  const lq_table *table;
} lq_snapshot_entry;

/* Write the tables to path: to a temporary file beside it, renamed over path once complete, so a
** reader never sees half a snapshot. 0 on success; -1 and err holds "path: reason". */
int lq_snapshot_save(const char *path, const lq_snapshot_entry *tables, int ntables, char *err, size_t errlen);

/* Reading, in three steps so that the caller can give each table an owner before it is built:
** open (checks the header), then each table in turn, then finish (checks the end). A reader starts
** closed (lq_snapshot_reader_init) and lq_snapshot_close may be called at any point, twice even. */
typedef struct lq_snapshot_reader {
  int fd;                               /* -1: closed */
  const unsigned char *memory;          /* or the file's bytes in memory (mapped, or lq_snapshot_read_bytes) */
  lq_mapping *mapping;                  /* the mapped file, whose pages the tables' columns keep */
  int borrow;                           /* columns point into memory instead of copying it */
  int threads;                          /* threads that check a table's checksums (memory only) */
  /* which columns to read (NULL: all): want(ud, table, column) is 1 for a column to read; the
  ** others' sections are only checked to be where the description says, and skipped */
  int (*want)(void *ud, const char *table, const char *column);
  void *want_ud;
  const char *path;                     /* the caller's; for messages */
  uint64_t file_size, offset;           /* bytes of the file; bytes consumed */
  uint32_t ntables, next_table;
  unsigned char *scratch;               /* metadata being checked */
  size_t scratch_cap;
} lq_snapshot_reader;

void lq_snapshot_reader_init(lq_snapshot_reader *r);
int lq_snapshot_open(lq_snapshot_reader *r, const char *path, char *err, size_t errlen);
/* The same, the file mapped into memory (private, writable: a table's writes stay its own): the
** tables read keep their columns' arrays in the mapping, read with no copy, the checksums checked
** on `threads` threads. The mapping lives as long as a table read from it. A process that maps a
** file dies of SIGBUS if another truncates that file in place: the CLI maps (lq_snapshot_save
** replaces a file by renaming, which a mapping survives), the Lua API reads unless asked. */
int lq_snapshot_open_mapped(lq_snapshot_reader *r, const char *path, int threads, char *err, size_t errlen);
/* The next table into *out (NULL on failure: nothing is left allocated); its name into name. */
int lq_snapshot_read_table(lq_snapshot_reader *r, lq_allocator alloc, lq_table **out,
                           char name[LQ_SNAPSHOT_NAME_MAX], char *err, size_t errlen);
int lq_snapshot_finish(lq_snapshot_reader *r, char *err, size_t errlen);
void lq_snapshot_close(lq_snapshot_reader *r);

/* Does the file start as a snapshot does? 1 yes, 0 no (or unreadable: the caller's reader says why). */
int lq_snapshot_is_snapshot(const char *path);

/* The same checks on bytes in memory (the fuzz target): 0 and the tables, or -1 and why. borrow:
** the tables' columns point into bytes (8-aligned; the caller keeps them until the tables are freed)
** as a mapped file's do. */
int lq_snapshot_read_bytes(const void *bytes, size_t len, int borrow, lq_allocator alloc, lq_table **out, int max,
                           int *ntables, char *err, size_t errlen);

/* The checksum of sections: 64 bits, four lanes of 8-byte words. Each step is a bijection of the
** lane for a fixed word and of the word for a fixed lane, so any one changed word (any flipped
** byte) always changes the result. */
uint64_t lq_snapshot_checksum(uint64_t seed, const void *bytes, size_t len);

#endif
