/* The columnar lead table: plain C, no Lua.
**
** Every column holds one value per row and has its own way to say "missing":
**   number, time   double; missing is NaN (times are seconds since the epoch, UTC)
**   boolean        uint8_t 0 / 1; missing is LQ_MISSING_BOOL
**   category       int32_t code into the column's dictionary; missing is LQ_MISSING_CODE
**   text           per-row bytes in one arena, offsets[row]..offsets[row+1];
**                  missing is text_missing[row] != 0 (an empty string is still a value)
**   tags           per-row codes into the column's dictionary, tag_offsets[row]..[row+1];
**                  missing is text_missing[row] != 0 (a row may hold zero tags)
** Memory comes from the allocator given at creation (the Lua state's, from the binding).
*/
#ifndef LEADQ_TABLE_H
#define LEADQ_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

#if !defined(LQ_MAX_COLUMNS)
#define LQ_MAX_COLUMNS 4096
#endif

#define LQ_MISSING_CODE ((int32_t)-1)
#define LQ_MISSING_BOOL ((uint8_t)2)

typedef enum lq_type {
  LQ_NUMBER = 0,
  LQ_CATEGORY,
  LQ_BOOLEAN,
  LQ_TIME,
  LQ_TEXT,
  LQ_TAGS,
  LQ_TYPE_COUNT
} lq_type;

/* Interned strings: a code is the index of first appearance. */
typedef struct lq_dict {
  char *bytes;            /* every string, each followed by a NUL */
  size_t bytes_len, bytes_cap;
  size_t *starts;         /* starts[code] into bytes */
  uint32_t *lengths;      /* lengths[code] */
  uint32_t *hashes;       /* hashes[code] */
  int32_t count, cap;
  int32_t *slots;         /* open addressing: code or -1 */
  uint32_t slot_mask;
  struct lq_dict_slot *index;  /* same slots as `slots`, each with its code's hash, length and start:
                                  a lookup touches one slot and the bytes (lq_dict_find uses it) */
} lq_dict;

typedef struct lq_dict_slot {
  uint32_t hash;
  int32_t code;           /* -1: empty */
  uint32_t len;
  uint32_t start;         /* starts[code], or UINT32_MAX when it does not fit */
} lq_dict_slot;

typedef struct lq_column {
  char *name;
  lq_type type;
  double *numbers;        /* number, time */
  uint8_t *bools;         /* boolean */
  int32_t *codes;         /* category */
  uint64_t *offsets;      /* text: nrows + 1 offsets into text */
  char *text;
  size_t text_len, text_cap;
  uint8_t *text_missing;  /* text, tags */
  uint64_t *tag_offsets;  /* tags: nrows + 1 offsets into tag_codes */
  int32_t *tag_codes;
  size_t tag_len, tag_cap;
  char tag_separator;     /* tags: the separator inside a field, ';' by default */
  lq_dict dict;           /* category, tags */
  size_t row_cap;         /* rows this column's arrays have room for (>= the table's cap) */
  size_t missing_cap;     /* text, tags: entries in text_missing (>= row_cap) */
  int mapped;             /* its arrays (not its dictionary) lie in the table's mapping: read and
                             written in place, copied into memory of its own before they grow */
} lq_column;

/* A file mapped into memory, shared by the tables whose columns lie in it (a snapshot's leads and
** events): unmapped when the last of them is freed. */
typedef struct lq_mapping {
  void *addr;
  size_t len;
  int refs;               /* changed atomically: the tables may be freed on different threads */
} lq_mapping;

/* A row that did not load: where it was and why. */
typedef struct lq_reject {
  uint64_t line;          /* line in the file where the record starts (1 = header) */
  uint64_t record;        /* data record number, 1-based */
  int column;             /* 0-based column index, -1 when the record as a whole is bad */
  char *reason;           /* a plain sentence, owned by the table */
} lq_reject;

typedef struct lq_table {
  lq_allocator alloc;
  size_t nrows, cap;      /* cap: rows every column has room for */
  int ncols, colcap;
  lq_column **cols;
  lq_reject *rejects;
  size_t nrejects, rejects_cap;
  char *source;           /* file name for messages, or NULL */
  unsigned flags;         /* LQ_TABLE_EVENTS, ... */
  unsigned read_chunks[3]; /* the CSV reader's: chunks read, of them joined past their first line
                              (a cut in a quoted field), and read again by the chunk before */
  lq_dict names;          /* column names: code == column index, for lq_table_find */
  lq_mapping *mapping;    /* where its mapped columns lie (a reference), or NULL */
} lq_table;

#define LQ_TABLE_EVENTS 1u  /* loaded by read_events: lead_id, type (category), at (time), value */

/* Byte strings in order (memcmp's, the shorter first on a common prefix): < 0, 0 or > 0. Ids and keys
** are most of them a few bytes: 8 at a time, inline, no call. */
static inline int lq_compare_bytes(const char *a, size_t la, const char *b, size_t lb) {
  size_t n = la < lb ? la : lb;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;   /* the first byte that differs */
  }
  for (; i < n; i++)
    if (a[i] != b[i]) return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
#else
  int c = memcmp(a, b, n);
  if (c != 0) return c;
#endif
  return la < lb ? -1 : la > lb;
}

/* Equal bytes, for the short strings of categories: cheaper than a call to memcmp. */
static inline int lq_same_bytes(const char *a, const char *b, size_t n) {
  uint64_t x, y;
  while (n >= 8) {
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
    a += 8;
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    if (*a++ != *b++) return 0;
    n--;
  }
  return 1;
}

const char *lq_type_name(lq_type type);
int lq_type_from_name(const char *name);           /* -1 when unknown */

/* Dictionaries */
void lq_dict_init(lq_dict *d);
void lq_dict_free(lq_dict *d, lq_allocator *a);
int32_t lq_dict_intern(lq_dict *d, lq_allocator *a, const char *s, size_t len); /* -2 on no memory */
int32_t lq_dict_find(const lq_dict *d, const char *s, size_t len);            /* -1 when absent */
const char *lq_dict_string(const lq_dict *d, int32_t code, size_t *len);
int32_t lq_dict_intern_hash(lq_dict *d, lq_allocator *a, const char *s, size_t len,
                            uint32_t hash);  /* hash: lq_hash_bytes(s, len), computed earlier */
uint32_t lq_hash_bytes(const char *s, size_t len);
/* A dictionary made at once from count values (lengths, and bytes: each value and a NUL, in code
** order), into an empty d. index 0 leaves out the hash index (a dictionary of a million lead ids is
** read to be scanned, not searched): interning builds it first, lq_dict_index builds it ahead of
** many finds, and lq_dict_find without it scans. 0; -1 no memory; -2 the lengths do not fit the
** bytes; -3 (indexed only) a value twice. On failure d is empty or to be freed. */
int lq_dict_load(lq_dict *d, lq_allocator *a, const uint32_t *lengths, const char *bytes, int32_t count,
                 size_t bytes_len, int index);
int lq_dict_index(lq_dict *d, lq_allocator *a);   /* 0, or -1 no memory */
/* FNV-1a, 32 bits, byte by byte: the same value on every machine, for what is stored (the check
** that ends an engagement state) and where a simple stable hash is enough (funnel keys). */
uint32_t lq_fnv1a(const void *s, size_t len);

/* Tables. Functions returning int give 0 on success, -1 on no memory. */
lq_table *lq_table_new(lq_allocator alloc);
void lq_table_free(lq_table *t);
int lq_table_add_column(lq_table *t, const char *name, lq_type type); /* index, -1 no memory, -2 duplicate */
int lq_table_find(const lq_table *t, const char *name);               /* index or -1 */
int lq_table_reserve(lq_table *t, size_t rows);

/* Mapped columns: a column's arrays may lie in a file mapped private and writable (a snapshot:
** lq_snapshot_open_mapped), so a table reads it with no copy; writes to existing rows stay the
** process's own (copy on write), and anything that grows an array copies the column first.
** lq_mapping_new takes over addr (munmap'd with the last reference); lq_table_use_mapping gives the
** table a reference; lq_column_map points a column's arrays into it (values: numbers, booleans or
** codes; offsets, data (text or tag codes, data_len items) and missing: text and tags); the table's
** cap must be nrows. lq_table_own copies every mapped column into the table's own memory. */
lq_mapping *lq_mapping_new(void *addr, size_t len);
void lq_mapping_release(lq_mapping *m);
void lq_table_use_mapping(lq_table *t, lq_mapping *m);
void lq_column_map(lq_table *t, int col, void *values, uint64_t *offsets, void *data, size_t data_len,
                   uint8_t *missing, size_t nrows);
int lq_table_own(lq_table *t);

/* Appending a row: start it, set each column (unset columns stay missing), end it. */
int lq_table_begin_row(lq_table *t);
int lq_column_set_number(lq_table *t, int col, double v);      /* number and time */
int lq_column_set_bool(lq_table *t, int col, int v);
int lq_column_set_string(lq_table *t, int col, const char *s, size_t len); /* category, text, tags (split) */
void lq_table_end_row(lq_table *t);
void lq_table_cancel_row(lq_table *t);                      /* drop the row being built */

int lq_column_is_missing(const lq_column *c, size_t row);

/* Advice only: a big array written once asks Linux for transparent huge pages over its whole
** 2 MiB pages (one first-touch fault per 2 MiB, not per 4 KiB). -DLQ_NO_HUGEPAGES turns it off. */
void lq_advise_huge_pages(void *p, size_t size);


/* A text column turned into dictionary codes, kept up to date as the column grows, so string tests
** run once per distinct value and their per-code tables survive between runs. */
typedef struct lq_text_codes {
  const lq_column *col;   /* the column coded, or NULL */
  size_t rows, cap;       /* rows coded; room in codes */
  int32_t *codes;         /* LQ_MISSING_CODE where the text is missing */
  lq_dict dict;
} lq_text_codes;

void lq_text_codes_init(lq_text_codes *tc);
void lq_text_codes_free(lq_text_codes *tc, lq_allocator *a);
/* Codes for rows [tc->rows, nrows) of text column c (a new column, or one cut shorter, starts the
** dictionary afresh): 1 when it was started afresh (codes mean other values now), 0, -1 no memory. */
int lq_text_codes_update(lq_text_codes *tc, lq_allocator *a, const lq_column *c, size_t nrows);

int lq_table_add_reject(lq_table *t, uint64_t line, uint64_t record, int column, const char *reason);

/* Set functions above return -2 when the column's type does not take that kind of value. */
void lq_table_truncate(lq_table *t, size_t nrows);        /* drop rows nrows.. (nrows <= t->nrows) */
void lq_table_shrink(lq_table *t);                        /* give back spare capacity; best effort */
size_t lq_table_memory(const lq_table *t);                /* bytes held by the table, its mapped columns not
                                                             counted (the file's pages, the kernel's to drop) */
int lq_column_tags_begin(lq_table *t, int col);          /* row being built: present, zero tags */
int lq_column_tags_add(lq_table *t, int col, const char *s, size_t len); /* one tag, trimmed */
int lq_column_reserve_text(lq_table *t, int col, size_t bytes); /* room in a text column's arena */
int lq_table_set_source(lq_table *t, const char *s, size_t len);

#endif
