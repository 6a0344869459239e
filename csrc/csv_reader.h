/* Reading CSV into a lead table, and the value parsers it shares with the bindings. Plain C, no Lua.
**
** The reader is RFC 4180 with the usual tolerances: ',' ';' or tab separators (detected from the
** header line when not given), fields quoted with '"' holding separators, doubled quotes and line
** breaks, CRLF / LF / CR line ends, a UTF-8 byte-order mark, blank lines skipped. Column types are
** declared or inferred from the first rows; a row that does not fit is rejected (file, line,
** column, reason) and the load goes on, unless strict, where the first bad row ends it.
*/
#ifndef LEADQ_CSV_READER_H
#define LEADQ_CSV_READER_H

#include <stddef.h>
#include "civil_time.h"
#include "column_plan.h"
#include "table.h"

#if !defined(LQ_CSV_CHUNK)
#define LQ_CSV_CHUNK ((size_t)1 << 20)     /* bytes per read */
#endif
#if !defined(LQ_CSV_INFER_ROWS)
#define LQ_CSV_INFER_ROWS 10000            /* data rows sampled to infer column types */
#endif
#if !defined(LQ_CSV_DISTINCT_LIMIT)
#define LQ_CSV_DISTINCT_LIMIT (1 << 20)    /* distinct strings counted per column while inferring */
#endif
#if !defined(LQ_CSV_SPLIT_MIN)
#define LQ_CSV_SPLIT_MIN ((size_t)4 << 20) /* no chunk of a file read on threads is smaller */
#endif
#if !defined(LQ_CSV_MAX_THREADS)
#define LQ_CSV_MAX_THREADS 64
#endif
#if !defined(LQ_MESSAGE_MAX)
#define LQ_MESSAGE_MAX 512                 /* longest message (error or reject) */
#endif

typedef struct lq_csv_column_type {
  const char *name;       /* a column name after renaming (the header's own name is accepted too) */
  lq_type type;
} lq_csv_column_type;

typedef struct lq_csv_rename {
  const char *from;       /* name in the header */
  const char *to;         /* our field name */
} lq_csv_rename;

typedef struct lq_csv_options {
  char separator;         /* 0: detect among ',' ';' and tab */
  char tag_separator;     /* inside a tags field; ';' */
  int header;             /* 1: the first line names the columns; 0: column_1, column_2, ... */
  int strict;             /* 1: the first bad row fails the load */
  size_t infer_rows;      /* data rows sampled to infer types */
  const lq_csv_column_type *schema;
  int nschema;
  int schema_optional;    /* the last schema_optional entries may be absent from the input */
  const lq_csv_rename *map;
  int nmap;
  const char *const *required;  /* columns that must exist, and hold a value in every row */
  int nrequired;
  unsigned table_flags;   /* copied into the table's flags (LQ_TABLE_EVENTS) */
  const char *source;     /* name of the input in messages */
  const lq_plan *plan;    /* a mapping script's column plan (column_plan.h), or NULL; replaces map */
  unsigned long first_line;  /* the number of the input's first line in messages (1) */
  /* called after each read of a file: bytes of it read so far, its size (-1: unknown, a pipe), data
  ** records so far; for progress shown while a large file loads. NULL: none. */
  void (*progress)(void *ud, double bytes, double size, double records);
  void *progress_ud;
  /* Keep only these columns (names after renaming, or as in the header; required columns are kept
  ** too): the others are split off each record and never made into values. NULL: every column. */
  const char *const *columns;
  int ncolumns;
  int columns_optional;   /* 1: a name in columns the file lacks is skipped (a caller asking for what
                          ** a model could use); 0: it is an error */
  /* Threads a plain file is read on (1: this one). The file is cut into chunks at line starts, each
  ** parsed into a table of its own and appended in order: the result is the one-thread result,
  ** rejects and their lines included. Gzip input, standard input and strings are read on one. */
  int threads;
  size_t chunk_bytes;     /* testing: chunks of this many bytes (0: sized from the file and threads) */
} lq_csv_options;

enum {
  LQ_CSV_OK = 0,
  LQ_CSV_EIO,             /* cannot open or read the input: the message is like io.open's */
  LQ_CSV_ENOMEM,          /* out of memory */
  LQ_CSV_EDATA,           /* strict mode: the first bad row, as "file:line: column 'x' (n): reason" */
  LQ_CSV_EUSAGE           /* the options do not fit the input (unknown column in schema or map, ...) */
};

void lq_csv_options_init(lq_csv_options *o);

/* Read a file (or a string) into a new table in *out. On failure *out is NULL, everything is
** freed, and err holds a message. */
int lq_csv_read_file(const char *path, const lq_csv_options *o, lq_allocator a,
                     lq_table **out, char *err, size_t errlen);
int lq_csv_read_string(const char *data, size_t len, const lq_csv_options *o, lq_allocator a,
                       lq_table **out, char *err, size_t errlen);

/* Value parsers: 1 and *out set when s[0..len) is a value of the type (spaces around it are
** ignored), 0 otherwise. Numbers never accept nan or inf; booleans are true/false, yes/no, t/f,
** y/n, 1/0 in any case; times are lq_scan_time's (civil_time.h). */
int lq_scan_number(const char *s, size_t len, double *out);
int lq_scan_bool(const char *s, size_t len, int *out);

/* Type inference shared with leadq.table: a string column is text when over 90% of its values
** (at least 20 of them) are distinct, or it is an identifier with unique values; otherwise category. */
int lq_is_id_name(const char *name);
lq_type lq_infer_string_type(const char *name, size_t count, size_t distinct);

/* Messages */
size_t lq_reject_message(const lq_table *t, const lq_reject *r, char *buf, size_t size);
size_t lq_quote_value(const char *s, size_t len, char *buf, size_t size);  /* 'value' shortened */
int lq_edit_distance(const char *a, const char *b);  /* Levenshtein, capped at 9 */

#endif
