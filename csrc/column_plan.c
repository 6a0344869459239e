/* The column plan of a mapping script, applied by the CSV reader to every record: see
** column_plan.h. Values are rewritten into one scratch buffer, reused by the next value. */
#include <stdio.h>
#include <string.h>

#include "civil_time.h"
#include "column_plan.h"
#include "csv_reader.h"

static const lq_plan_column plain_column;   /* a kept column with no settings: zeroes */

static void *pmem(lq_plan_state *ps, void *p, size_t osize, size_t nsize) {
  return ps->alloc.fn(ps->alloc.ud, p, osize, nsize);
}

#define is_space lq_plan_is_space
#define lower lq_plan_lower
#define upper lq_plan_upper

static int header_index(char *const *header, int nheader, const char *name) {
  int i;
  for (i = 0; i < nheader; i++)
    if (header[i] != NULL && strcmp(header[i], name) == 0) return i;
  return -1;
}

char *lq_plan_grow(lq_plan_state *ps, size_t n) {
  size_t ncap = (ps->scratch_len + n) * 2 + 64;
  char *ns = (char *)pmem(ps, ps->scratch, ps->scratch_cap, ncap);
  if (ns == NULL) return NULL;
  ps->scratch = ns;
  ps->scratch_cap = ncap;
  return ps->scratch + ps->scratch_len;
}

void lq_plan_state_free(lq_plan_state *ps) {
  int i;
  if (ps->maps != NULL) {
    for (i = 0; i < ps->nout; i++) lq_dict_free(&ps->maps[i], &ps->alloc);
    pmem(ps, ps->maps, (size_t)ps->nout * sizeof *ps->maps, 0);
  }
  if (ps->cols != NULL) pmem(ps, (void *)ps->cols, (size_t)ps->nout * sizeof *ps->cols, 0);
  if (ps->source != NULL) pmem(ps, ps->source, (size_t)ps->nout * LQ_PLAN_SOURCES * sizeof(int), 0);
  if (ps->scratch != NULL) pmem(ps, ps->scratch, ps->scratch_cap, 0);
  lq_dict_free(&ps->nulls, &ps->alloc);
  ps->maps = NULL;
  ps->cols = NULL;
  ps->source = NULL;
  ps->scratch = NULL;
  ps->nout = 0;
}

/* Lower-cased into scratch (from its start): for keys matched in any case. */
static const char *folded(lq_plan_state *ps, const char *s, size_t len) {
  char *o;
  size_t i;
  ps->scratch_len = 0;
  if ((o = lq_plan_room(ps, len + 1)) == NULL) return NULL;
  for (i = 0; i < len; i++) o[i] = lower(s[i]);
  return o;
}

int lq_plan_state_init(lq_plan_state *ps, const lq_plan *plan, char *const *header, int nheader,
                       const char **names, int *nout, lq_allocator a, char *err, size_t errlen) {
  int i, j, k, n = 0, total = plan->ncols + (plan->keep_rest ? nheader : 0);
  unsigned char *used;
  memset(ps, 0, sizeof *ps);
  ps->alloc = a;
  lq_dict_init(&ps->nulls);
  ps->cols = (const lq_plan_column **)pmem(ps, NULL, 0, (size_t)(total > 0 ? total : 1) * sizeof *ps->cols);
  ps->source = (int *)pmem(ps, NULL, 0, (size_t)(total > 0 ? total : 1) * LQ_PLAN_SOURCES * sizeof(int));
  ps->maps = (lq_dict *)pmem(ps, NULL, 0, (size_t)(total > 0 ? total : 1) * sizeof *ps->maps);
  ps->nout = total > 0 ? total : 1;
  if (ps->cols == NULL || ps->source == NULL || ps->maps == NULL) goto nomem;
  for (i = 0; i < ps->nout; i++) lq_dict_init(&ps->maps[i]);
  used = (unsigned char *)pmem(ps, NULL, 0, (size_t)nheader + 1);
  if (used == NULL) goto nomem;
  memset(used, 0, (size_t)nheader + 1);
  for (i = 0; i < plan->ncols; i++) {
    const lq_plan_column *c = &plan->cols[i];
    for (k = 0; k < c->nsources; k++) {
      int at = header_index(header, nheader, c->sources[k]);
      if (at < 0) {
        int best = -1, best_d = 3, d;
        char hint[96] = "";
        for (j = 0; j < nheader; j++) {
          if (header[j] == NULL) continue;
          d = lq_edit_distance(c->sources[k], header[j]);
          if (d < best_d) { best_d = d; best = j; }
        }
        if (best >= 0) snprintf(hint, sizeof hint, " (did you mean '%s'?)", header[best]);
        snprintf(err, errlen, "field '%s' reads column '%s', which is not in the header%s", c->name, c->sources[k], hint);
        pmem(ps, used, (size_t)nheader + 1, 0);
        return -1;
      }
      ps->source[n * LQ_PLAN_SOURCES + k] = at;
      used[at] = 1;
    }
    ps->cols[n] = c;
    for (k = 0; k < c->nmap; k++) {
      const char *key = c->map_fold ? folded(ps, c->map_from[k], strlen(c->map_from[k])) : c->map_from[k];
      if (key == NULL || lq_dict_intern(&ps->maps[n], &ps->alloc, key, strlen(c->map_from[k])) < 0) {
        pmem(ps, used, (size_t)nheader + 1, 0);
        goto nomem;
      }
    }
    names[n++] = c->name;
  }
  for (j = 0; plan->keep_rest && j < nheader; j++) {
    int clash = 0;
    if (used[j] || header[j] == NULL) continue;
    for (i = 0; i < plan->ncols && !clash; i++) clash = strcmp(plan->cols[i].name, header[j]) == 0;
    if (clash) continue;   /* an output column of that name replaces it */
    ps->cols[n] = plan->rest ? plan->rest : &plain_column;
    ps->source[n * LQ_PLAN_SOURCES] = j;
    names[n++] = header[j];
  }
  pmem(ps, used, (size_t)nheader + 1, 0);
  for (i = 0; i < plan->nnulls; i++) {
    size_t len = strlen(plan->nulls[i]);
    const char *key = folded(ps, plan->nulls[i], len);
    if (key == NULL || lq_dict_intern(&ps->nulls, &ps->alloc, key, len) < 0) goto nomem;
    if (len > ps->null_max) ps->null_max = len;
    if (len < 64) ps->null_lengths |= (uint64_t)1 << len;
    if (len > 0) {
      ps->null_first[(unsigned char)lower(key[0])] = 1;
      ps->null_first[(unsigned char)upper(key[0])] = 1;
    }
  }
  *nout = n;
  return 0;
nomem:
  snprintf(err, errlen, "not enough memory");
  return -1;
}

/* ---- numbers in a locale ---- */

/* Money as CRMs write it: a currency sign before or after the amount ("$30,000.00", "1.200,50 €",
** "£8", "-$5"), spaces between them. The amount is read; the currency is not converted. */
static void strip_currency(const char **ps, size_t *plen) {
  static const char *const signs[] = { "$", "\xE2\x82\xAC", "\xC2\xA3", "\xC2\xA5", NULL };  /* $ EUR GBP JPY */
  const char *s = *ps;
  size_t len = *plen, k, n;
  int neg = len > 0 && s[0] == '-';
  for (k = 0; signs[k] != NULL; k++) {
    n = strlen(signs[k]);
    if (len >= (size_t)neg + n && memcmp(s + neg, signs[k], n) == 0) {
      if (neg) return;   /* "-$5": leave it to the caller as not a number rather than guess */
      s += n;
      len -= n;
      break;
    }
    if (len >= n && memcmp(s + len - n, signs[k], n) == 0) {
      len -= n;
      break;
    }
  }
  while (len > 0 && is_space(*s)) { s++; len--; }
  while (len > 0 && is_space(s[len - 1])) len--;
  *ps = s;
  *plen = len;
}

int lq_plan_number(const lq_plan_column *c, const char *s, size_t len, double *out) {
  char buf[128];
  size_t i = 0, o = 0;
  char dec = c->decimal ? c->decimal : '.';
  char th = c->thousands;
  int digits = 0, group = 0, grouped = 0;
  while (len > 0 && is_space(*s)) { s++; len--; }
  while (len > 0 && is_space(s[len - 1])) len--;
  strip_currency(&s, &len);
  if (len == 0 || len >= sizeof buf - 2) return LQ_PLAN_NOT;
  for (i = 0; i < len; i++) {   /* only the characters of a number: else it is not one at all */
    char ch = s[i];
    if (!((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == ',' || ch == 'e' || ch == 'E' ||
          (th && ch == th)))
      return LQ_PLAN_NOT;
  }
  i = 0;
  if (s[i] == '-' || s[i] == '+') buf[o++] = s[i++];
  for (; i < len; i++) {
    char ch = s[i];
    if (ch >= '0' && ch <= '9') {
      buf[o++] = ch;
      digits++;
      group++;
    } else if (th && ch == th) {
      /* a thousands separator: 1 to 3 digits before the first, exactly 3 between and after */
      if (group == 0 || group > 3 || (grouped && group != 3)) return LQ_PLAN_BAD;
      grouped = 1;
      group = 0;
    } else {
      break;
    }
  }
  if (grouped && group != 3) return LQ_PLAN_BAD;
  if (i < len && s[i] == dec) {
    buf[o++] = '.';
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) { buf[o++] = s[i]; digits++; }
  }
  if (digits == 0) return LQ_PLAN_NOT;
  if (i < len && (s[i] == 'e' || s[i] == 'E') && !grouped) {
    buf[o++] = s[i++];
    if (i < len && (s[i] == '-' || s[i] == '+')) buf[o++] = s[i++];
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) buf[o++] = s[i];
  }
  if (i != len) return LQ_PLAN_BAD;   /* "1.2" where '.' groups thousands, "1,5" where ',' does */
  return lq_scan_number(buf, o, out) ? LQ_PLAN_OK : LQ_PLAN_BAD;
}

/* ---- dates in a format ---- */

static const char *const MONTHS[12] = { "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec" };

static int read_int(const char *s, size_t len, size_t *i, int min_digits, int max_digits, int *out) {
  int v = 0, n = 0;
  while (*i < len && n < max_digits && s[*i] >= '0' && s[*i] <= '9') { v = v * 10 + (s[*i] - '0'); (*i)++; n++; }
  if (n < min_digits) return 0;
  *out = v;
  return 1;
}

static int days_in_month(int y, int m) {
  static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return days[m - 1];
}

/* One format against the whole value; 1 and *out on a match. */
static int parse_format(const char *fmt, size_t flen, const char *s, size_t len, const lq_plan_column *c,
                        double *out) {
  int y = 1970, mo = 1, d = 1, h = 0, mi = 0, sec = 0, pm = -1, offset = 0, has_offset = 0;
  double frac = 0;
  size_t i = 0, f = 0;
  while (f < flen) {
    char fc = fmt[f++];
    if (fc == ' ') {
      if (i >= len || !is_space(s[i])) return 0;
      while (i < len && is_space(s[i])) i++;
      continue;
    }
    if (fc != '%' || f >= flen) {
      if (i >= len || s[i] != fc) return 0;
      i++;
      continue;
    }
    fc = fmt[f++];
    switch (fc) {
      case 'Y': if (!read_int(s, len, &i, 4, 4, &y)) return 0; break;
      case 'y': if (!read_int(s, len, &i, 2, 2, &y)) return 0; y += y < 69 ? 2000 : 1900; break;
      case 'm': if (!read_int(s, len, &i, 1, 2, &mo)) return 0; break;
      case 'd': case 'e': if (!read_int(s, len, &i, 1, 2, &d)) return 0; break;
      case 'H': case 'I': if (!read_int(s, len, &i, 1, 2, &h)) return 0; break;
      case 'M': if (!read_int(s, len, &i, 2, 2, &mi)) return 0; break;
      case 'S':
        if (!read_int(s, len, &i, 2, 2, &sec)) return 0;
        if (i < len && (s[i] == '.' || s[i] == ',')) {   /* fractions of a second */
          double scale = 0.1;
          for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10) frac += (s[i] - '0') * scale;
        }
        break;
      case 'p':
        if (i + 2 > len) return 0;
        if (lower(s[i]) == 'a' && lower(s[i + 1]) == 'm') pm = 0;
        else if (lower(s[i]) == 'p' && lower(s[i + 1]) == 'm') pm = 1;
        else return 0;
        i += 2;
        break;
      case 'b': case 'B': {
        int m, found = 0;
        if (i + 3 > len) return 0;
        for (m = 0; m < 12 && !found; m++)
          if (lower(s[i]) == MONTHS[m][0] && lower(s[i + 1]) == MONTHS[m][1] && lower(s[i + 2]) == MONTHS[m][2]) {
            mo = m + 1;
            found = 1;
          }
        if (!found) return 0;
        i += 3;
        while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.')) i++;
        break;
      }
      case 'z': {
        int oh = 0, om = 0, neg;
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) { i++; has_offset = 1; break; }
        if (i >= len || (s[i] != '+' && s[i] != '-')) return 0;
        neg = s[i++] == '-';
        if (!read_int(s, len, &i, 2, 2, &oh)) return 0;
        if (i < len && s[i] == ':') i++;
        if (!read_int(s, len, &i, 2, 2, &om)) return 0;
        offset = (oh * 60 + om) * (neg ? -1 : 1);
        has_offset = 1;
        break;
      }
      case '%': if (i >= len || s[i] != '%') return 0; i++; break;
      default: return 0;
    }
  }
  if (i != len) return 0;
  if (pm >= 0) {
    if (h < 1 || h > 12) return 0;
    h = h % 12 + (pm ? 12 : 0);
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) return 0;
  *out = (double)lq_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + frac;
  if (has_offset) *out -= offset * 60.0;
  else if (c->has_tz) *out -= c->tz_minutes * 60.0;
  return 1;
}

/* Does an ISO 8601 text carry its own offset (Z, +hh:mm, -hh:mm after the time)? */
static int iso_has_offset(const char *s, size_t len) {
  size_t i;
  if (len <= 10) return 0;
  for (i = 11; i < len; i++)
    if (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-') return 1;
  return 0;
}

int lq_plan_time(const lq_plan_column *c, const char *s, size_t len, double *out) {
  const char *fmt = c->date_formats;
  while (len > 0 && is_space(*s)) { s++; len--; }
  while (len > 0 && is_space(s[len - 1])) len--;
  if (len == 0) return 0;
  while (fmt != NULL && *fmt) {
    const char *end = strchr(fmt, '\n');
    size_t flen = end ? (size_t)(end - fmt) : strlen(fmt);
    if (parse_format(fmt, flen, s, len, c, out)) return 1;
    fmt = end ? end + 1 : NULL;
  }
  if (!lq_scan_time(s, len, out)) return 0;
  if (c->has_tz && !iso_has_offset(s, len)) *out -= c->tz_minutes * 60.0;
  return 1;
}

void lq_plan_describe(const lq_plan_column *c, int time, char *buf, size_t size) {
  if (time) {
    char formats[160];
    size_t i, n = 0;
    const char *f = c->date_formats ? c->date_formats : "";
    for (i = 0; f[i] && n + 4 < sizeof formats; i++) {
      if (f[i] == '\n') { memcpy(formats + n, "', '", 4); n += 4; }
      else formats[n++] = f[i];
    }
    formats[n] = '\0';
    if (n > 0) snprintf(buf, size, "a date in the format '%s' (or ISO 8601)", formats);
    else snprintf(buf, size, "an ISO 8601 date or time");
    return;
  }
  if (c->thousands)
    snprintf(buf, size, "a number written with '%c' as the decimal mark and '%c' between thousands",
             c->decimal ? c->decimal : '.', c->thousands);
  else
    snprintf(buf, size, "a number written with '%c' as the decimal mark", c->decimal ? c->decimal : '.');
}
