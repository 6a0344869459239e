/* Calendar time: ISO 8601 parsing and formatting, and civil-date arithmetic, shared by the CSV
** reader, the scoring binding, the funnel and the generator. Plain C; times are seconds since the
** epoch, UTC, as doubles. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "civil_time.h"

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)
#define IS_SPACE(c) ((c) == ' ' || (c) == '\t')

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
int64_t lq_days_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void lq_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  int64_t era;
  unsigned doe, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (unsigned)(z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, unsigned m) {
  static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return days[m - 1];
}

/* n digits at p as a number, or -1. */
static int digits_at(const char *p, const char *end, int n) {
  int v = 0, i;
  if (end - p < n) return -1;
  for (i = 0; i < n; i++) {
    if (!IS_DIGIT(p[i])) return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

/* YYYY-MM-DD, then optionally [T or space]HH:MM[:SS[.fff]], then optionally Z or +HH[:MM]. */
int lq_scan_time(const char *s, size_t len, double *out) {
  const char *p = s, *end = s + len;
  int year, month, day, hour = 0, minute = 0, second = 0;
  long offset = 0;
  double fraction = 0;
  int64_t secs;
  while (p < end && IS_SPACE(*p)) p++;
  while (end > p && IS_SPACE(end[-1])) end--;
  if ((year = digits_at(p, end, 4)) < 0 || end - p < 10 || p[4] != '-' || p[7] != '-') return 0;
  if ((month = digits_at(p + 5, end, 2)) < 1 || month > 12) return 0;
  if ((day = digits_at(p + 8, end, 2)) < 1 || day > days_in_month(year, (unsigned)month)) return 0;
  p += 10;
  if (p < end) {
    if (*p != 'T' && *p != 't' && *p != ' ') return 0;
    p++;
    if ((hour = digits_at(p, end, 2)) < 0 || hour > 23 || end - p < 5 || p[2] != ':') return 0;
    if ((minute = digits_at(p + 3, end, 2)) < 0 || minute > 59) return 0;
    p += 5;
    if (p < end && *p == ':') {
      if ((second = digits_at(p + 1, end, 2)) < 0 || second > 60) return 0;
      p += 3;
      if (p < end && (*p == '.' || *p == ',')) {
        double scale = 0.1;
        p++;
        if (p == end || !IS_DIGIT(*p)) return 0;
        for (; p < end && IS_DIGIT(*p); p++) {
          fraction += (*p - '0') * scale;
          scale /= 10;
        }
      }
    }
    if (p < end && *p == ' ') p++;  /* "10:20:30 +02:00" */
    if (p < end) {
      if ((*p == 'Z' || *p == 'z') && p + 1 == end) {
        p++;
      } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if ((oh = digits_at(p, end, 2)) < 0 || oh > 23) return 0;
        p += 2;
        if (p < end && *p == ':') p++;
        if (p < end) {
          if ((om = digits_at(p, end, 2)) < 0 || om > 59) return 0;
          p += 2;
        }
        offset = sign * (oh * 3600L + om * 60L);
      } else {
        return 0;
      }
    }
    if (p != end) return 0;
  }
  secs = lq_days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 +
         hour * 3600 + minute * 60 + second - offset;
  *out = (double)secs + fraction;
  return 1;
}

void lq_month_cache_init(lq_month_cache *c) {
  int k;
  for (k = 0; k < LQ_MONTH_CACHE; k++) c->months[k].key = -1;
}

int lq_scan_time_cached(lq_month_cache *c, const char *s, size_t len, double *out) {
  static const int at[12] = { 0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15 };
  int d[14], k, year, month, day, hour, minute, second;
  int64_t key;
  if (len != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
    return lq_scan_time(s, len, out);
  for (k = 0; k < 12; k++) {
    d[k] = s[at[k]] - '0';
    if (d[k] < 0 || d[k] > 9) return lq_scan_time(s, len, out);
  }
  d[12] = s[17] - '0';
  d[13] = s[18] - '0';
  if (d[12] < 0 || d[12] > 9 || d[13] < 0 || d[13] > 9) return lq_scan_time(s, len, out);
  year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
  month = d[4] * 10 + d[5];
  day = d[6] * 10 + d[7];
  hour = d[8] * 10 + d[9];
  minute = d[10] * 10 + d[11];
  second = d[12] * 10 + d[13];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return lq_scan_time(s, len, out);
  key = (int64_t)year * 12 + month - 1;
  k = (int)(key & (LQ_MONTH_CACHE - 1));
  if (c->months[k].key != key) {
    int64_t next = month == 12 ? lq_days_from_civil(year + 1, 1, 1) : lq_days_from_civil(year, (unsigned)month + 1, 1);
    c->months[k].key = key;
    c->months[k].first = lq_days_from_civil(year, (unsigned)month, 1);
    c->months[k].days = (int)(next - c->months[k].first);
  }
  if (day > c->months[k].days) return lq_scan_time(s, len, out);
  *out = (double)((c->months[k].first + day - 1) * 86400 + hour * 3600 + minute * 60 + second);
  return 1;
}

size_t lq_format_time(double t, int iso, char *buf, size_t size) {
  int64_t us, secs, days, rem;
  int64_t y;
  unsigned m, d;
  int n;
  if (isnan(t)) {
    if (size > 0) buf[0] = '\0';
    return 0;
  }
  if (!(fabs(t) < 9e12)) {
    n = snprintf(buf, size, "%.14g", t);
    return n < 0 ? 0 : (size_t)n;
  }
  us = (int64_t)llround(t * 1e6);
  secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  us -= secs * 1000000;
  days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  rem = secs - days * 86400;
  lq_civil_from_days(days, &y, &m, &d);
  if (!iso && rem == 0 && us == 0) {
    n = snprintf(buf, size, "%04lld-%02u-%02u", (long long)y, m, d);
  } else {
    char frac[24] = "";
    if (us != 0) {
      int k;
      snprintf(frac, sizeof frac, ".%06d", (int)us);
      for (k = (int)strlen(frac) - 1; k > 1 && frac[k] == '0'; k--) frac[k] = '\0';
    }
    n = snprintf(buf, size, "%04lld-%02u-%02u%c%02d:%02d:%02d%s%s", (long long)y, m, d,
                 iso ? 'T' : ' ', (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac,
                 iso ? "Z" : "");
  }
  return n < 0 ? 0 : (size_t)n;
}
