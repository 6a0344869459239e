/* Columns written as CSV: the scores `leadq score` writes, at C speed. No Lua here. */
#ifndef LEADQ_CSV_WRITER_H
#define LEADQ_CSV_WRITER_H

#include <stdio.h>

#include "table.h"

/* Text as one CSV field, through put(ud, bytes, n): quoted, quotes doubled, when it holds a comma, a
** quote or a line break (RFC 4180); as it is otherwise. The scores' writer and the funnel's CSV
** result both write their fields with it. */
typedef void (*lq_csv_put_fn)(void *ud, const char *s, size_t n);
void lq_csv_put_field(lq_csv_put_fn put, void *ud, const char *s, size_t len);

/* One column of the output: a table's column, or (column NULL) the row number from 1. */
typedef struct lq_csv_out_column {
  const char *name;
  const lq_column *column;
} lq_csv_out_column;

/* A header line of the names, then nrows lines. A cell is written as leadq.util.csv_field writes the
** value Lua reads from it: missing and NaN empty; a whole number within +-1e15 with %d, any other
** number with %.6g; true/false; text quoted (quotes doubled) when it holds a comma, a quote or a line
** break. Rows are formatted on up to threads threads, the same bytes for any number. 0, or -1 when
** the stream fails (errno says why). */
int lq_csv_write_columns(FILE *f, const lq_csv_out_column *cols, int ncols, size_t nrows, int threads);

#endif
