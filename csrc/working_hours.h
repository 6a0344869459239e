/* Working hours in a time zone: plain C, no Lua.
**
** A zone is read from the system's TZif files (/usr/share/zoneinfo, the tzdata package): its
** transitions, then the POSIX TZ rule in the file's footer for the years after them, so daylight
** saving is honoured in any year. A fixed offset ("+02:00", "-05:30") or "UTC" needs no file.
** A calendar is the hours of the day (local wall time) and the days of the week that count; the
** deadline of a span of working time started at an instant walks its working days. The SLA of the
** service (leadq.reactor) and of the funnel (funnel.c) both use it, so both give the same deadline.
*/
#ifndef LEADQ_WORKING_HOURS_H
#define LEADQ_WORKING_HOURS_H

#include <stddef.h>
#include <stdint.h>

#if !defined(LQ_ZONE_MAX_TRANSITIONS)
#define LQ_ZONE_MAX_TRANSITIONS 1200   /* the most in tzdata's zones is a few hundred */
#endif
#if !defined(LQ_ZONE_MAX_TYPES)
#define LQ_ZONE_MAX_TYPES 64
#endif
#if !defined(LQ_ZONEINFO_DIR)
#define LQ_ZONEINFO_DIR "/usr/share/zoneinfo"
#endif
#define LQ_ZONE_NAME_MAX 64

/* A rule of a POSIX TZ string, "Mm.w.d[/time]": the d-th weekday (0 Sunday) of week w (5: the
** last) of month m, at `secs` seconds of local time (may be negative or past 24 h). */
typedef struct lq_zone_rule {
  int month, week, weekday;
  int32_t secs;
} lq_zone_rule;

typedef struct lq_zone {
  char name[LQ_ZONE_NAME_MAX];
  int32_t ntrans, ntypes;
  int64_t at[LQ_ZONE_MAX_TRANSITIONS];     /* UTC instants, ascending */
  uint8_t type[LQ_ZONE_MAX_TRANSITIONS];   /* the offset in effect from at[i] on */
  int32_t offset[LQ_ZONE_MAX_TYPES];       /* seconds east of UTC */
  int32_t initial;                         /* before the first transition */
  int has_rule;                            /* after the last transition: std, or std/dst by rules */
  int has_dst;
  int32_t std_offset, dst_offset;
  lq_zone_rule start, end;                 /* start of daylight time (in standard time), its end (in daylight) */
} lq_zone;

typedef struct lq_calendar {
  int working;          /* 0: every hour counts (no working hours declared) */
  double from, to;      /* hours of the local day, 0 <= from < to <= 24 */
  unsigned days;        /* bit d set: weekday d (0 Sunday .. 6 Saturday) is a working day */
  lq_zone zone;
} lq_calendar;

/* Loads a zone: "UTC", a fixed offset "+HH:MM" / "-HH:MM" (or +HH), or an IANA name read from
** LQ_ZONEINFO_DIR. 0, or -1 with a sentence in err. */
int lq_zone_load(lq_zone *z, const char *name, char *err, size_t errlen);

/* The zone's offset from UTC (seconds east) at the instant t (epoch seconds). */
int32_t lq_zone_offset(const lq_zone *z, double t);

/* The instant of a local wall time (epoch seconds as if the wall clock were UTC). A wall time a
** spring-forward skips is read with the offset before the change (02:30 becomes 03:30); one a
** fall-back repeats, as its first occurrence. */
double lq_zone_utc_of_local(const lq_zone *z, double local);

/* The instant `seconds` of working time after `at` (every hour counting when !c->working); a
** calendar with no working day gives NAN. */
double lq_calendar_deadline(const lq_calendar *c, double at, double seconds);

#endif
