/* The events stream: an events CSV file read straight into the feature pass, never held as a table.
**
** `leadq score --events FILE` on a million leads spent most of its time loading every events row into
** a table (each lead_id interned in a dictionary) that the feature pass then read once. The stream
** reads the file on nthreads threads, each a range of whole lines, and keeps of each row only what the
** features count: its lead's row (the row after the last lead's first, then a binary search when the
** leads' ids ascend, else a hash of them) and its engine event (24 bytes). Rows of types no feature
** counts, after as_of or of unknown leads are counted and dropped as they are read. Each lead's run of
** events is folded as the next lead's begins (lq_fs_fold); runs cut between ranges are stitched and
** folded whole. A lead met in two runs (a file not grouped by lead) makes it read the file again,
** keeping every counted event for the bulk pass (lq_fs_compute_made). The values are those of
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
