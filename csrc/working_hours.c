/* Working hours in a time zone: TZif files, POSIX TZ rules, and the deadline of a span of working
** time. See working_hours.h. */
#include "working_hours.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil_time.h"

#define DAY 86400
#define MAX_TZIF (256 * 1024)   /* bytes: tzdata's largest file is a few kB */
#define MAX_TIME 1e15           /* seconds: past this (or NaN) no day is computed (int64 casts) */

static void say(char *err, size_t errlen, const char *fmt, const char *name) {
  snprintf(err, errlen, fmt, name);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* 0 Sunday .. 6 Saturday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t day) {
  return (int)(((day + 4) % 7 + 7) % 7);
}

/* ---------------------------------------------------------------- POSIX TZ strings */

/* [+-]hh[:mm[:ss]] -> seconds; the text after it, or NULL. */
static const char *scan_hms(const char *s, int32_t *out) {
  int sign = 1, part = 0;
  long v[3] = { 0, 0, 0 };
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  for (;;) {
    if (*s < '0' || *s > '9') return NULL;
    while (*s >= '0' && *s <= '9') {
      v[part] = v[part] * 10 + (*s++ - '0');
      if (v[part] > 167) return NULL;
    }
    if (*s != ':' || part == 2) break;
    s++;
    part++;
  }
  *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
  return s;
}

/* A zone abbreviation: letters, or <...> (which may hold digits and signs). */
static const char *scan_abbreviation(const char *s) {
  const char *start = s;
  if (*s == '<') {
    while (*s && *s != '>') s++;
    return *s == '>' ? s + 1 : NULL;
  }
  while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) s++;
  return s - start >= 3 ? s : NULL;
}

/* ",Mm.w.d[/time]" -> the rule; only the M form (the only one tzdata's zones use now). */
static const char *scan_rule(const char *s, lq_zone_rule *r) {
  int v[3] = { 0, 0, 0 }, k;
  if (*s++ != ',' || *s++ != 'M') return NULL;
  for (k = 0; k < 3; k++) {
    if (*s < '0' || *s > '9') return NULL;
    while (*s >= '0' && *s <= '9') v[k] = v[k] * 10 + (*s++ - '0');
    if (k < 2 && *s++ != '.') return NULL;
  }
  if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 5 || v[2] > 6) return NULL;
  r->month = v[0];
  r->week = v[1];
  r->weekday = v[2];
  r->secs = 7200;   /* 02:00 unless given */
  if (*s == '/') {
    s = scan_hms(s + 1, &r->secs);
    if (s == NULL) return NULL;
  }
  return s;
}

/* The footer's TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"): 0, or -1 when it is not one we read
** (the zone then keeps its last transition's offset after it). POSIX offsets count west. */
static int parse_tz_string(lq_zone *z, const char *s) {
  int32_t west;
  s = scan_abbreviation(s);
  if (s == NULL || (s = scan_hms(s, &west)) == NULL) return -1;
  z->std_offset = -west;
  z->dst_offset = z->std_offset + 3600;
  z->has_dst = 0;
  if (*s == '\0') return 0;
  s = scan_abbreviation(s);
  if (s == NULL) return -1;
  if (*s != ',' && *s != '\0') {
    if ((s = scan_hms(s, &west)) == NULL) return -1;
    z->dst_offset = -west;
  }
  if (*s == '\0') return -1;   /* daylight time without its rules: not POSIX we can apply */
  if ((s = scan_rule(s, &z->start)) == NULL || (s = scan_rule(s, &z->end)) == NULL || *s != '\0') return -1;
  z->has_dst = 1;
  return 0;
}

/* The instant (UTC) of a rule in a year, its time read with `offset`. */
static double rule_instant(const lq_zone_rule *r, int64_t year, int32_t offset) {
  int64_t first = lq_days_from_civil(year, (unsigned)r->month, 1);
  int64_t next = r->month == 12 ? lq_days_from_civil(year + 1, 1, 1) : lq_days_from_civil(year, (unsigned)r->month + 1, 1);
  int64_t day = first + (r->weekday - weekday_of(first) + 7) % 7 + (int64_t)(r->week - 1) * 7;
  while (day >= next) day -= 7;   /* week 5: the last such weekday */
  return (double)day * DAY + r->secs - offset;
}

static int32_t rule_offset(const lq_zone *z, double t) {
  int64_t y;
  unsigned m, d;
  double start, end;
  if (!z->has_dst || !(t > -MAX_TIME && t < MAX_TIME)) return z->std_offset;
  lq_civil_from_days(floor_div((int64_t)floor(t) + z->std_offset, DAY), &y, &m, &d);
  start = rule_instant(&z->start, y, z->std_offset);
  end = rule_instant(&z->end, y, z->dst_offset);
  if (start < end) return (t >= start && t < end) ? z->dst_offset : z->std_offset;
  return (t >= end && t < start) ? z->std_offset : z->dst_offset;   /* the southern hemisphere */
}

/* ---------------------------------------------------------------- TZif files */

static int64_t be(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < bytes; i++) v = (v << 8) | p[i];
  if (bytes == 4) return (int64_t)(int32_t)(uint32_t)v;
  return (int64_t)v;
}

/* Reads the TZif data (version 2 or later: the 64-bit block and the footer). */
static int parse_tzif(lq_zone *z, const unsigned char *p, size_t n, char *err, size_t errlen) {
  size_t at = 0, need;
  int64_t counts[6];
  int v1 = 1, i;
  for (;;) {
    if (n - at < 44 || memcmp(p + at, "TZif", 4) != 0) {
      say(err, errlen, "time zone '%s': not a TZif file", z->name);
      return -1;
    }
    for (i = 0; i < 6; i++) counts[i] = be(p + at + 20 + 4 * i, 4);
    /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
    for (i = 0; i < 6; i++) {
      if (counts[i] < 0 || counts[i] > 100000) {
        say(err, errlen, "time zone '%s': a damaged TZif file", z->name);
        return -1;
      }
    }
    at += 44;
    need = (size_t)(counts[3] * (v1 ? 5 : 9) + counts[4] * 6 + counts[5] + counts[2] * (v1 ? 8 : 12) + counts[1] +
                    counts[0]);
    if (n - at < need) {
      say(err, errlen, "time zone '%s': a TZif file cut short", z->name);
      return -1;
    }
    if (!v1) break;
    if (p[4] < '2') {
      say(err, errlen, "time zone '%s': a TZif file of version 1 (no 64-bit data)", z->name);
      return -1;
    }
    at += need;
    v1 = 0;
  }
  if (counts[3] > LQ_ZONE_MAX_TRANSITIONS || counts[4] < 1 || counts[4] > LQ_ZONE_MAX_TYPES) {
    say(err, errlen, "time zone '%s': more transitions or offsets than leadq keeps", z->name);
    return -1;
  }
  z->ntrans = (int32_t)counts[3];
  z->ntypes = (int32_t)counts[4];
  for (i = 0; i < z->ntrans; i++) z->at[i] = be(p + at + 8 * (size_t)i, 8);
  at += 8 * (size_t)z->ntrans;
  for (i = 0; i < z->ntrans; i++) {
    z->type[i] = p[at + (size_t)i];
    if (z->type[i] >= z->ntypes) {
      say(err, errlen, "time zone '%s': a damaged TZif file", z->name);
      return -1;
    }
  }
  at += (size_t)z->ntrans;
  for (i = 0; i < z->ntypes; i++) z->offset[i] = (int32_t)be(p + at + 6 * (size_t)i, 4);
  at += 6 * (size_t)z->ntypes + (size_t)(counts[5] + counts[2] * 12 + counts[1] + counts[0]);
  z->initial = z->offset[0];
  /* the footer: "\n" TZ string "\n" */
  z->has_rule = 0;
  if (at < n && p[at] == '\n') {
    char tz[128];
    size_t len = 0;
    at++;
    while (at + len < n && p[at + len] != '\n' && len < sizeof tz - 1) len++;
    memcpy(tz, p + at, len);
    tz[len] = '\0';
    if (len > 0 && parse_tz_string(z, tz) == 0) z->has_rule = 1;
  }
  return 0;
}

/* An IANA name as a path under the zoneinfo folder: letters, digits, _ + - and / between parts. */
static int valid_zone_name(const char *name) {
  const char *s;
  if (name[0] == '\0' || name[0] == '/' || name[0] == '.' || strstr(name, "..") != NULL) return 0;
  for (s = name; *s; s++) {
    char c = *s;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
          c == '-' || c == '/'))
      return 0;
  }
  return 1;
}

static int load_fixed(lq_zone *z, int32_t offset) {
  z->ntrans = 0;
  z->ntypes = 1;
  z->offset[0] = z->initial = z->std_offset = z->dst_offset = offset;
  z->has_rule = 1;
  z->has_dst = 0;
  return 0;
}

int lq_zone_load(lq_zone *z, const char *name, char *err, size_t errlen) {
  char path[sizeof LQ_ZONEINFO_DIR + LQ_ZONE_NAME_MAX + 1];
  unsigned char *data;
  size_t n;
  FILE *f;
  int rc;
  memset(z, 0, sizeof *z);
  if (strlen(name) >= LQ_ZONE_NAME_MAX) {
    say(err, errlen, "unknown time zone '%.64s' (too long a name)", name);
    return -1;
  }
  strcpy(z->name, name);
  if (strcmp(name, "UTC") == 0 || strcmp(name, "Z") == 0) return load_fixed(z, 0);
  if (name[0] == '+' || name[0] == '-') {   /* +HH, +HH:MM */
    int32_t offset;
    const char *end = scan_hms(name, &offset);
    if (end == NULL || *end != '\0' || offset < -14 * 3600 || offset > 14 * 3600 || strlen(name) < 3) {
      say(err, errlen, "bad UTC offset '%s' (expected +HH:MM or -HH:MM, at most 14 hours)", name);
      return -1;
    }
    return load_fixed(z, offset);
  }
  if (!valid_zone_name(name)) {
    say(err, errlen, "unknown time zone '%s' (an IANA name such as Europe/Paris, UTC, or +HH:MM)", name);
    return -1;
  }
  snprintf(path, sizeof path, "%s/%s", LQ_ZONEINFO_DIR, name);
  f = fopen(path, "rb");
  if (f == NULL) {
    say(err, errlen, "unknown time zone '%s' (not in " LQ_ZONEINFO_DIR ": is the tzdata package installed?)", name);
    return -1;
  }
  data = (unsigned char *)malloc(MAX_TZIF);
  if (data == NULL) {
    fclose(f);
    say(err, errlen, "time zone '%s': out of memory", name);
    return -1;
  }
  n = fread(data, 1, MAX_TZIF, f);
  fclose(f);
  rc = parse_tzif(z, data, n, err, errlen);
  free(data);
  return rc;
}

int32_t lq_zone_offset(const lq_zone *z, double t) {
  int32_t lo = 0, hi = z->ntrans - 1;
  if (isnan(t)) return z->has_rule ? z->std_offset : z->initial;   /* no instant: the zone's standard time */
  if (z->ntrans == 0) return z->has_rule ? rule_offset(z, t) : z->initial;
  if (t < (double)z->at[0]) return z->initial;
  while (lo < hi) {   /* the last transition at or before t */
    int32_t mid = lo + (hi - lo + 1) / 2;
    if ((double)z->at[mid] <= t) lo = mid; else hi = mid - 1;
  }
  if (lo == z->ntrans - 1 && z->has_rule) return rule_offset(z, t);
  return z->offset[z->type[lo]];
}

double lq_zone_utc_of_local(const lq_zone *z, double local) {
  /* the offsets in effect within 14 hours either side: a wall time is valid with one of them */
  int32_t candidates[3];
  double best = NAN;
  int i;
  candidates[0] = lq_zone_offset(z, local - 50400);
  candidates[1] = lq_zone_offset(z, local);
  candidates[2] = lq_zone_offset(z, local + 50400);
  for (i = 0; i < 3; i++) {
    double t = local - candidates[i];
    if (lq_zone_offset(z, t) == candidates[i] && (isnan(best) || t < best)) best = t;
  }
  if (isnan(best)) best = local - candidates[0];   /* skipped by a spring-forward: the offset before it */
  return best;
}

double lq_calendar_deadline(const lq_calendar *c, double at, double seconds) {
  double remaining = seconds, t = at;
  int64_t day, last;
  if (!c->working) return at + seconds;
  if ((c->days & 0x7f) == 0 || !(at > -MAX_TIME && at < MAX_TIME) || !(seconds >= 0)) return NAN;
  day = floor_div((int64_t)floor(at) + lq_zone_offset(&c->zone, at), DAY);
  last = day + 366 * 100;   /* a century of days at most */
  for (; day < last; day++) {
    if (c->days & (1u << weekday_of(day))) {
      double base = (double)day * DAY;
      double opens = lq_zone_utc_of_local(&c->zone, base + c->from * 3600);
      double closes = lq_zone_utc_of_local(&c->zone, base + c->to * 3600);
      if (t < opens) t = opens;
      if (t < closes) {
        double take = remaining < closes - t ? remaining : closes - t;
        t += take;
        remaining -= take;
        if (remaining <= 0) return t;
      }
    }
  }
  return NAN;
}
