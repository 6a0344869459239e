/* Internal: what csv_reader_binding.c shares with the other bindings. */
#ifndef LEADQ_CSV_READER_BINDING_H
#define LEADQ_CSV_READER_BINDING_H

#include "compat.h"
#include "csv_reader.h"

/* A schema option at idx, { name = "type", ... } or { {name=, type=}, ... }, checked (where names
** the function in messages): pushes a scratch userdata holding the entries, sets *out to them and
** returns their count (leadq.table takes the same schemas as read_csv). */
int lq_read_schema(lua_State *L, int idx, const char *where, lq_csv_column_type **out);

/* The columns every events table holds a value in: lead_id, type, at (read_events and leadq.table
** of events check them alike). */
#define LQ_EVENT_REQUIRED 3
extern const char *const lq_event_required[LQ_EVENT_REQUIRED];

#endif
