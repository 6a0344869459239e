/* Appending the rows of other lead tables with the same columns to one: how the parts of a table
** built apart (the chunks of a CSV file read on several threads) become one. Plain C, no Lua.
**
** Three steps, so that the copying can run on several threads: prepare (one thread: room in the
** table, each part's place in it, its dictionary codes re-coded), copy (each part on any thread,
** no allocation), finish (one thread: the table takes the rows). */
#ifndef LEADQ_TABLE_APPEND_H
#define LEADQ_TABLE_APPEND_H

#include "table.h"

typedef struct lq_table_part {
  const lq_table *src;    /* same columns as the table: names, types, order */
  size_t from;            /* its rows from..src->nrows are appended */
  /* set by prepare */
  size_t at;              /* the table's row for src's row `from` */
  size_t rows;            /* how many rows it appends */
  uint64_t *text_at;      /* per column: where its text bytes or tag codes go */
  int32_t **recode;       /* per column: src's category or tag code -> the table's */
  size_t *recode_len;
} lq_table_part;

/* The parts, in order, after the table's rows. Codes follow the order values first appear in the
** appended rows, so the table ends as appending the rows one at a time would leave it. Returns 0,
** or -1 on no memory (the table keeps its rows; its dictionaries may hold some new values). Runs
** on the table's allocator; the parts' tables are only read. */
int lq_table_append_prepare(lq_table *dst, lq_table_part *parts, int nparts);

/* Column c of one prepared part into the table: no allocation, so parts and columns can be copied
** at the same time. */
void lq_table_append_copy(lq_table *dst, const lq_table_part *part, int c);

/* After every copy: the table holds the rows; the parts' tables are no longer read. Also frees what
** prepare made (call it when prepare failed too, with ok = 0: the table keeps only its own rows). */
void lq_table_append_finish(lq_table *dst, lq_table_part *parts, int nparts, int ok);

#endif
