/* The events stream: an events CSV file read straight into the feature pass, never held as a table.
**
** `leadq score --events FILE` on a million leads spent most of its time loading every events row into
** a table (each lead_id interned in a dictionary) that the feature pass then read once. The stream
** reads the file on nthreads threads, each a range of whole lines, and keeps of each row only what the
** features count: its lead row, found in a hash of the leads' ids, and its engine event (24 bytes).
** Rows of types no feature counts, after as_of or of unknown leads are counted and dropped as they
** are read. Then the bulk pass folds the kept events (lq_fs_compute_made): the values are those of
** read_events + lq_fs_compute, whatever the number of threads.
**
** It takes the files where its reading is plainly read_events' own: a regular, uncompressed file whose
** header names lead_id, type and at once each, no quote character, no blank line, every line with the
** header's number of fields, and every value the reader would keep (a time, a number, no empty
** required cell). Anything else it declines (1, and why): the caller reads the table, whose reader
** reports that file's rejects and errors with their lines. */
#ifndef LEADQ_EVENT_STREAM_H
#define LEADQ_EVENT_STREAM_H

#include <stddef.h>

#include "feature_set.h"
#include "table.h"

/* 0: *out holds the features, report the counts (unknown_ids the unknown rows' lead ids); -1: err says
** why (no memory, the leads have no id column, the file cannot be read); 1: declined, err says why. */
int lq_fs_compute_csv(const lq_feature_set *fs, const lq_table *leads, const char *id_column, const char *path,
                      double as_of, size_t max_unknown, int nthreads, lq_table **out, lq_compute_report *report,
                      char *err, size_t errlen);

#endif
