/* Calendar time, shared by every part that reads or writes dates: seconds since the epoch, UTC. */
#ifndef LEADQ_CIVIL_TIME_H
#define LEADQ_CIVIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t lq_days_from_civil(int64_t y, unsigned m, unsigned d);
void lq_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* 1 and *out set when s[0..len) is an ISO 8601 date or date-time (YYYY-MM-DD, then optionally
** [T or space]HH:MM[:SS[.fff]], then optionally Z or +HH[:MM]; spaces around it are ignored),
** taken as UTC unless it carries an offset; 0 otherwise. */
int lq_scan_time(const char *s, size_t len, double *out);

/* lq_scan_time, fast for the form exports write, "YYYY-MM-DDTHH:MM:SSZ": read here with the first day
** of its month remembered, with lq_scan_time's checks and arithmetic (so the same value); any other
** form goes to lq_scan_time. A cache is one reader's (one thread's), set up by lq_month_cache_init. */
#define LQ_MONTH_CACHE 64
typedef struct lq_month_cache {
  struct {
    int64_t key;     /* year * 12 + month - 1, or -1 */
    int64_t first;   /* days from 1970-01-01 to the month's first day */
    int days;        /* days in the month */
  } months[LQ_MONTH_CACHE];
} lq_month_cache;
void lq_month_cache_init(lq_month_cache *c);
int lq_scan_time_cached(lq_month_cache *c, const char *s, size_t len, double *out);

/* A time as text: iso 1 gives 2024-03-01T10:20:30Z (fractions when present); iso 0 the short form
** for display: 2024-03-01 at midnight, else 2024-03-01 10:20:30. Returns the length written. */
size_t lq_format_time(double t, int iso, char *buf, size_t size);

#endif
