/* CSV into a lead table: the record parser, type inference, the loader, and the number, time and
** boolean parsers. Plain C, no Lua: every failure comes back as a status and a message.
**
** The input goes through one buffer, refilled with large reads; a record is parsed where it lies
** (fields are offsets into the buffer) and only copied when it holds doubled quotes. A record cut
** by the end of the buffer is parsed again once more bytes are in. The sampled rows used to
** infer types stay in the buffer, so they are parsed twice but read once, and pipes work too. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "csv_reader.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "input.h"
#include "table_append.h"

/* ---- numbers ---- */

static const double exact_powers_of_ten[23] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)
#define IS_SPACE(c) ((c) == ' ' || (c) == '\t')

/* strtod on a copy, for what the fast path cannot do exactly. The grammar was checked by the
** caller, so strtod never sees nan, inf or hex; the copy swaps '.' for the locale's point. */
static int number_slow(const char *s, size_t len, double *out) {
  char copy[512];
  char *end;
  const char *point = localeconv()->decimal_point;
  size_t i;
  double v;
  if (len >= sizeof copy) return 0;
  memcpy(copy, s, len);
  copy[len] = '\0';
  if (point != NULL && point[0] != '\0' && point[0] != '.' && point[1] == '\0') {
    for (i = 0; i < len; i++)
      if (copy[i] == '.') copy[i] = point[0];
  }
  errno = 0;
  v = strtod(copy, &end);
  if (end != copy + len || isinf(v) || isnan(v)) return 0;
  *out = v;
  return 1;
}

/* Decimal to double. Up to 19 significant digits are gathered in an integer; with no more than
** 2^53 of them and a power of ten up to 22, one multiplication or division of two exact doubles
** is correctly rounded (Clinger's fast path). Anything else goes to strtod. */
static inline int parse_number(const char *s, size_t len, double *out) {
  const char *p = s, *end = s + len;
  const char *start;
  uint64_t mantissa = 0;
  int digits = 0, any = 0, truncated = 0, negative = 0;
  long exponent = 0;
  while (p < end && IS_SPACE(*p)) p++;
  while (end > p && IS_SPACE(end[-1])) end--;
  start = p;
  if (p < end && (*p == '-' || *p == '+')) negative = (*p++ == '-');
  for (; p < end && IS_DIGIT(*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    any = 1;
    if (digits < 19) {
      if (mantissa != 0 || d != 0) { mantissa = mantissa * 10 + d; digits++; }
    } else {
      exponent++;
      if (d != 0) truncated = 1;
    }
  }
  if (p < end && *p == '.') {
    for (p++; p < end && IS_DIGIT(*p); p++) {
      unsigned d = (unsigned)(*p - '0');
      any = 1;
      if (digits < 19) {
        if (mantissa != 0 || d != 0) { mantissa = mantissa * 10 + d; digits++; }
        exponent--;
      } else if (d != 0) {
        truncated = 1;
      }
    }
  }
  if (!any) return 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    long e = 0;
    int eneg = 0;
    p++;
    if (p < end && (*p == '-' || *p == '+')) eneg = (*p++ == '-');
    if (p == end || !IS_DIGIT(*p)) return 0;
    for (; p < end && IS_DIGIT(*p); p++)
      if (e < 100000) e = e * 10 + (*p - '0');
    exponent += eneg ? -e : e;
  }
  if (p != end) return 0;
  if (mantissa == 0) {
    *out = negative ? -0.0 : 0.0;
    return 1;
  }
  if (!truncated && mantissa <= ((uint64_t)1 << 53) && exponent >= -22 && exponent <= 22) {
    double v = (double)mantissa;
    v = exponent < 0 ? v / exact_powers_of_ten[-exponent] : v * exact_powers_of_ten[exponent];
    *out = negative ? -v : v;
    return 1;
  }
  return number_slow(start, (size_t)(end - start), out);
}

int lq_scan_number(const char *s, size_t len, double *out) {
  return parse_number(s, len, out);
}

/* A number written with a leading zero ("02134"): a code (zip, phone), not a quantity. */
static int has_leading_zero(const char *s, size_t len) {
  const char *p = s, *end = s + len;
  while (p < end && IS_SPACE(*p)) p++;
  if (p < end && (*p == '-' || *p == '+')) p++;
  return end - p >= 2 && p[0] == '0' && IS_DIGIT(p[1]);
}

/* ---- booleans ---- */

static inline int parse_bool(const char *s, size_t len, int *out) {
  char w[8];
  size_t i;
  while (len > 0 && IS_SPACE(*s)) { s++; len--; }
  while (len > 0 && IS_SPACE(s[len - 1])) len--;
  if (len == 0 || len > 5) return 0;
  for (i = 0; i < len; i++) w[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
  switch (len) {
    case 1:
      if (w[0] == 't' || w[0] == 'y' || w[0] == '1') { *out = 1; return 1; }
      if (w[0] == 'f' || w[0] == 'n' || w[0] == '0') { *out = 0; return 1; }
      return 0;
    case 2:
      if (w[0] == 'n' && w[1] == 'o') { *out = 0; return 1; }
      return 0;
    case 3:
      if (memcmp(w, "yes", 3) == 0) { *out = 1; return 1; }
      return 0;
    case 4:
      if (memcmp(w, "true", 4) == 0) { *out = 1; return 1; }
      return 0;
    default:
      if (memcmp(w, "false", 5) == 0) { *out = 0; return 1; }
      return 0;
  }
}

int lq_scan_bool(const char *s, size_t len, int *out) {
  return parse_bool(s, len, out);
}

/* ---- inference helpers ---- */

int lq_is_id_name(const char *name) {
  size_t n = strlen(name);
  char low[8];
  size_t i;
  if (n <= 4) {
    for (i = 0; i < n; i++) low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    low[n] = '\0';
    if (!strcmp(low, "id") || !strcmp(low, "uuid") || !strcmp(low, "guid")) return 1;
  }
  if (n < 3) return 0;
  /* lead_id, lead id, lead-id, LEAD_ID, leadId, LeadID */
  if ((name[n - 2] == 'i' || name[n - 2] == 'I') && (name[n - 1] == 'd' || name[n - 1] == 'D')) {
    char before = name[n - 3];
    if (before == '_' || before == ' ' || before == '-' || before == '.') return 1;
    if (name[n - 2] == 'I' && before >= 'a' && before <= 'z') return 1;
  }
  return 0;
}

/* Text only when nearly every sampled value is new: a sample of 10,000 leads can show 73% distinct
** e-mail domains where the whole million has 10%. A category costs 4 bytes a row plus its
** distinct values once, and rules test it once per distinct value. */
lq_type lq_infer_string_type(const char *name, size_t count, size_t distinct) {
  if (count > 0 && distinct >= count && lq_is_id_name(name)) return LQ_TEXT;
  if (count >= 20 && distinct * 10 > count * 9) return LQ_TEXT;
  return LQ_CATEGORY;
}

/* ---- messages ---- */

size_t lq_quote_value(const char *s, size_t len, char *buf, size_t size) {
  size_t o = 0, i, limit = 40;
  int cut = 0;
  if (size < 8) {
    if (size > 0) buf[0] = '\0';
    return 0;
  }
  if (len > limit) {
    /* cut on a UTF-8 character boundary */
    while (limit > 0 && ((unsigned char)s[limit] & 0xC0) == 0x80) limit--;
    len = limit;
    cut = 1;
  }
  buf[o++] = '\'';
  for (i = 0; i < len && o + 6 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') { buf[o++] = '\\'; buf[o++] = 'n'; }
    else if (c == '\r') { buf[o++] = '\\'; buf[o++] = 'r'; }
    else if (c == '\t') { buf[o++] = '\\'; buf[o++] = 't'; }
    else if (c < 32 || c == 127) buf[o++] = '?';
    else buf[o++] = (char)c;
  }
  if (cut && o + 4 < size) { memcpy(buf + o, "...", 3); o += 3; }
  buf[o++] = '\'';
  buf[o] = '\0';
  return o;
}

size_t lq_reject_message(const lq_table *t, const lq_reject *r, char *buf, size_t size) {
  const char *source = t->source ? t->source : "[table]";
  int n;
  if (r->column >= 0 && r->column < t->ncols)
    n = snprintf(buf, size, "%s:%llu: column '%s' (%d): %s", source, (unsigned long long)r->line,
                 t->cols[r->column]->name, r->column + 1, r->reason);
  else
    n = snprintf(buf, size, "%s:%llu: %s", source, (unsigned long long)r->line, r->reason);
  if (n < 0) return 0;
  return (size_t)n < size ? (size_t)n : size - 1;
}

int lq_edit_distance(const char *a, const char *b) {
  int row[64];
  int la = (int)strlen(a), lb = (int)strlen(b), i, j;
  if (la >= 63 || lb >= 63) return 9;
  for (j = 0; j <= lb; j++) row[j] = j;
  for (i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = i;
    for (j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb] > 9 ? 9 : row[lb];
}

/* ---- the record parser ---- */

typedef struct field {
  size_t start, len;      /* offsets into the buffer, quotes excluded */
  unsigned char quoted;   /* written between quotes */
  unsigned char escaped;  /* holds doubled quotes: copy it out before use */
} field;

enum { REC_OK, REC_MORE, REC_END, REC_BAD_QUOTE, REC_BAD_AFTER_QUOTE };
#define NO_MARK ((size_t)-1)
#define LQ_CSV_PAD 32  /* bytes after the buffer's end: the sentinel, and room for 32-byte loads */

typedef struct reader {
  lq_allocator *alloc;
  lq_input *input;        /* NULL: the whole input is in the buffer */
  char *buf;
  size_t cap;             /* the buffer holds cap + LQ_CSV_PAD bytes */
  size_t len, pos;        /* bytes in the buffer; where the next record starts */
  uint64_t base;          /* where buf[0] lies in the input: offsets in the file are base + pos */
  size_t mark;            /* bytes from here on are kept by refills (NO_MARK: none) */
  int eof;
  char sep;
  unsigned char stop[256];/* bytes that end an unquoted field */
  uint64_t line;          /* line of the byte at pos */
  uint64_t rec_line;      /* line where the last parsed record starts */
  size_t rec_start;       /* where the last parsed record starts in the buffer */
  field *fields;
  size_t nfields, fields_cap;  /* nfields counts every field; only fields_cap are stored */
  size_t bad_field;       /* the field a REC_BAD_* is about */
  char *scratch;          /* unescaped copies of fields with doubled quotes */
  size_t scratch_cap, scratch_len;
} reader;

static void *mem(reader *rd, void *p, size_t osize, size_t nsize) {
  return rd->alloc->fn(rd->alloc->ud, p, osize, nsize);
}

static void reader_set_separator(reader *rd, char sep) {
  rd->sep = sep;
  memset(rd->stop, 0, sizeof rd->stop);
  rd->stop[(unsigned char)sep] = 1;
  rd->stop['\n'] = 1;
  rd->stop['\r'] = 1;
}

static void reader_free(reader *rd) {
  if (rd->buf) mem(rd, rd->buf, rd->cap + LQ_CSV_PAD, 0);
  if (rd->fields) mem(rd, rd->fields, rd->fields_cap * sizeof(field), 0);
  if (rd->scratch) mem(rd, rd->scratch, rd->scratch_cap, 0);
  if (rd->input) lq_input_close(rd->input);
  rd->buf = NULL;
  rd->fields = NULL;
  rd->scratch = NULL;
  rd->input = NULL;
}

/* Make room and read more: drops the bytes before pos (or mark), grows the buffer when a record
** fills it. 0 on success (eof set at the end), -1 no memory, -2 read error. */
static int reader_fill(reader *rd) {
  size_t keep = rd->mark != NO_MARK ? rd->mark : rd->pos;
  long got;
  if (rd->eof) return 0;
  if (keep > 0) {
    memmove(rd->buf, rd->buf + keep, rd->len - keep);
    rd->base += keep;
    rd->len -= keep;
    rd->pos -= keep;
    if (rd->mark != NO_MARK) rd->mark -= keep;
  }
  if (rd->len == rd->cap) {
    size_t ncap = rd->cap * 2;
    char *nb;
    if (ncap < rd->cap) return -1;
    nb = (char *)mem(rd, rd->buf, rd->cap + LQ_CSV_PAD, ncap + LQ_CSV_PAD);
    if (nb == NULL) return -1;
    rd->buf = nb;
    rd->cap = ncap;
  }
  got = lq_input_read(rd->input, rd->buf + rd->len, rd->cap - rd->len);
  if (got < 0) return -2;
  if (got == 0) rd->eof = 1;
  rd->len += (size_t)got;
  /* sentinel: every unquoted field scan stops here; the 8-byte loads past it read zeros */
  memset(rd->buf + rd->len, 0, LQ_CSV_PAD);
  rd->buf[rd->len] = '\n';
  return 0;
}

static int push_field_slow(reader *rd, size_t start, size_t len, int quoted, int escaped);

static inline int push_field(reader *rd, size_t start, size_t len, int quoted, int escaped) {
  if (rd->nfields < rd->fields_cap) {
    field *f = &rd->fields[rd->nfields++];
    f->start = start;
    f->len = len;
    f->quoted = (unsigned char)quoted;
    f->escaped = (unsigned char)escaped;
    return 0;
  }
  return push_field_slow(rd, start, len, quoted, escaped);
}

/* Grow the field array (up to LQ_MAX_COLUMNS + 1 stored; more are only counted). */
static int push_field_slow(reader *rd, size_t start, size_t len, int quoted, int escaped) {
  if (rd->fields_cap < LQ_MAX_COLUMNS + 1) {
    size_t ncap = rd->fields_cap ? rd->fields_cap * 2 : 64;
    field *nf;
    if (ncap > LQ_MAX_COLUMNS + 1) ncap = LQ_MAX_COLUMNS + 1;
    nf = (field *)mem(rd, rd->fields, rd->fields_cap * sizeof(field), ncap * sizeof(field));
    if (nf == NULL) return -1;
    rd->fields = nf;
    rd->fields_cap = ncap;
    return push_field(rd, start, len, quoted, escaped);
  }
  rd->nfields++;
  return 0;
}

/* Where the unquoted field at p ends: the first separator, \n or \r. Eight bytes at a time
** (the buffer has LQ_CSV_PAD bytes after its end, and a '\n' sentinel at the end stops the scan). */
static inline const char *scan_unquoted(const char *p, const unsigned char *stop, char sep) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  const uint64_t vs = ones * (unsigned char)sep, vn = ones * (unsigned char)'\n', vr = ones * (unsigned char)'\r';
  (void)stop;
  for (;;) {
    uint64_t w, a, b, c, m;
    memcpy(&w, p, 8);
    a = w ^ vs;
    b = w ^ vn;
    c = w ^ vr;
    /* a zero byte in a, b or c is a match; the lowest flagged byte is always a true one */
    m = (((a - ones) & ~a) | ((b - ones) & ~b) | ((c - ones) & ~c)) & highs;
    if (m) return p + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
#else
  (void)sep;
  while (!stop[(unsigned char)*p]) p++;
  return p;
#endif
}

static uint64_t count_newlines(const char *p, const char *end) {
  uint64_t n = 0;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) { n++; p++; }
  return n;
}

/* Parse the record at pos. REC_OK: fields set, pos past the record; REC_MORE: the buffer ends
** inside it; REC_END: no input left; REC_BAD_*: the record is malformed and skipped (bad_field
** says where), pos past it. Returns -1 on no memory. */
static int parse_record(reader *rd) {
  const char *buf = rd->buf;
  const char *p = buf + rd->pos, *end = buf + rd->len;
  const unsigned char *stop = rd->stop;
  const char sep = rd->sep;
  uint64_t lines = 0;
  int status = REC_OK;
  rd->nfields = 0;
  if (p == end) return rd->eof ? REC_END : REC_MORE;
#if defined(__SSE2__)
  {
    /* The common record, unquoted: its separators and line end found 32 bytes at a time, the fields
    ** pushed from the bit mask, with no loop and no call a field. A quote stops it: the fields
    ** before it are the scalar loop's own, and that loop goes on from the field the quote is in
    ** (a quote means something only at a field's start, which the loop sees). Loads stay within
    ** the LQ_CSV_PAD bytes after the buffer, whose '\n' sentinel ends the scan at the latest. */
    const __m128i vs = _mm_set1_epi8(sep), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
    const __m128i vq = _mm_set1_epi8('"');
    const char *field_start = p, *blk = p;
    field *fields = rd->fields;
    size_t nf = 0, cap = rd->fields_cap;
    for (;;) {
      const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)blk);
      const __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(blk + 16));
      unsigned stops = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, vs), _mm_cmpeq_epi8(x, vn)), _mm_cmpeq_epi8(x, vr))) |
        (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(y, vs), _mm_cmpeq_epi8(y, vn)), _mm_cmpeq_epi8(y, vr))) << 16;
      const unsigned quotes = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq)) |
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(y, vq)) << 16;
      if (quotes != 0) stops &= (quotes & (0u - quotes)) - 1;   /* the stops before the first quote */
      while (stops != 0) {
        const char *z = blk + __builtin_ctz(stops);
        if (nf < cap) {
          fields[nf].start = (size_t)(field_start - buf);
          fields[nf].len = (size_t)(z - field_start);
          fields[nf].quoted = fields[nf].escaped = 0;
          nf++;
        } else {   /* the array grows (or, past LQ_MAX_COLUMNS, only counts) */
          rd->nfields = nf;
          if (push_field_slow(rd, (size_t)(field_start - buf), (size_t)(z - field_start), 0, 0) != 0) return -1;
          fields = rd->fields;
          nf = rd->nfields;
          cap = rd->fields_cap;
        }
        if (z == end) {
          rd->nfields = nf;
          if (!rd->eof) return REC_MORE;
          p = end;
          goto done;
        }
        if (*z != sep) {
          rd->nfields = nf;
          p = z;
          goto end_of_line;
        }
        field_start = z + 1;
        stops &= stops - 1;
      }
      if (quotes != 0) break;
      blk += 32;
    }
    rd->nfields = nf;
    p = field_start;
  }
#endif
  for (;;) {
    if (*p == '"') {
      const char *q = p + 1;
      int escaped = 0;
      for (;;) {
        const char *z = memchr(q, '"', (size_t)(end - q));
        if (z == NULL) {
          if (!rd->eof) return REC_MORE;
          lines += count_newlines(q, end);
          rd->bad_field = rd->nfields;
          p = end;
          status = REC_BAD_QUOTE;
          goto done;
        }
        lines += count_newlines(q, z);
        if (z + 1 == end && !rd->eof) return REC_MORE;  /* is it a doubled quote? */
        if (z + 1 < end && z[1] == '"') {
          escaped = 1;
          q = z + 2;
          continue;
        }
        if (push_field(rd, (size_t)(p + 1 - buf), (size_t)(z - p - 1), 1, escaped) != 0) return -1;
        p = z + 1;
        break;
      }
      while (p < end && (*p == ' ' || (*p == '\t' && sep != '\t'))) p++;
      if (p == end) {
        if (!rd->eof) return REC_MORE;
        goto done;
      }
      if (*p == sep) { p++; continue; }
      if (*p != '\n' && *p != '\r') {
        /* "abc"def: skip to the end of the line and reject the record */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
          if (!rd->eof) return REC_MORE;
          p = end;
        } else {
          p = nl + 1;
          lines++;
        }
        rd->bad_field = rd->nfields - 1;
        status = REC_BAD_AFTER_QUOTE;
        goto done;
      }
    } else {
      const char *s = p;
      p = scan_unquoted(p, stop, sep);
      if (push_field(rd, (size_t)(s - buf), (size_t)(p - s), 0, 0) != 0) return -1;
      if (p == end) {
        if (!rd->eof) return REC_MORE;
        goto done;
      }
      if (*p == sep) { p++; continue; }
    }
    /* end of line: \n, \r\n or a lone \r */
#if defined(__SSE2__)
  end_of_line:
#endif
    if (*p == '\r') {
      p++;
      if (p == end && !rd->eof) return REC_MORE;
      if (p < end && *p == '\n') p++;
    } else {
      p++;
    }
    lines++;
    break;
  }
done:
  rd->rec_start = rd->pos;
  rd->rec_line = rd->line;
  rd->line += lines;
  rd->pos = (size_t)(p - buf);
  return status;
}

/* A malformed record that runs over several lines (a stray or unclosed quote) would take the
** lines after its first with it, unseen and uncounted: it is cut to its first line, and parsing
** goes on from the next one. Returns the record's last line when it was cut, else 0. */
static uint64_t cut_to_first_line(reader *rd) {
  const char *s = rd->buf + rd->rec_start, *end = rd->buf + rd->pos, *p;
  uint64_t last;
  /* lines end at '\n' here, as the reader counts them inside quotes: a '\r' in a quoted field is
  ** the field's ("\r" alone once cut such a record in two, each half a reject) */
  p = memchr(s, '\n', (size_t)(end - s));
  if (p == NULL || p + 1 >= end) return 0;
  p++;
  last = rd->rec_line + 1 + count_newlines(p, end[-1] == '\n' ? end - 1 : end);
  rd->pos = (size_t)(p - rd->buf);
  rd->line = rd->rec_line + 1;
  return last;
}

/* The bytes of field i, doubled quotes undone (into scratch). */
static const char *field_bytes(reader *rd, size_t i, size_t *len) {
  const field *f = &rd->fields[i];
  const char *s = rd->buf + f->start, *end = s + f->len;
  char *o;
  if (!f->escaped) {
    *len = f->len;
    return s;
  }
  if (rd->scratch_len + f->len > rd->scratch_cap) {
    size_t ncap = (rd->scratch_len + f->len) * 2 + 64;
    char *ns = (char *)mem(rd, rd->scratch, rd->scratch_cap, ncap);
    if (ns == NULL) return NULL;
    rd->scratch = ns;
    rd->scratch_cap = ncap;
  }
  o = rd->scratch + rd->scratch_len;
  *len = 0;
  while (s < end) {
    if (*s == '"') s++;  /* the first of two */
    o[(*len)++] = *s++;
  }
  rd->scratch_len += *len;
  return o;
}

/* ---- the loader ---- */

typedef struct column_guess {
  size_t count;           /* non-missing values seen */
  int could_be_number, could_be_bool, could_be_time;
  int distinct_overflow;
  lq_dict distinct;
} column_guess;

typedef struct pending_value {
  int col;
  uint32_t hash;
  size_t row, start, len;  /* start: into pending_bytes */
} pending_value;

/* A category value met lately: most columns of an export hold a few values over and over, and a
** value already in the dictionary needs no hashing, queueing or probe. Slot by length and end bytes. */
#define RECENT_VALUES 16
typedef struct recent_value {
  int32_t code;           /* -1: empty */
  uint32_t len;
} recent_value;

/* A record start seen by a chunk read on a thread, with what the chunk held before it: where the
** chunk before it ends, the chunk's rows and rejects from here on are the file's (see
** join_chunks). */
typedef struct record_start {
  uint64_t offset, line, records;
  size_t rows, rejects, fixups;
} record_start;

/* A reject whose reason names a line, made in a chunk whose line numbers are its own: the reason
** is written again once the chunk's first line is known. */
typedef struct line_fixup {
  size_t reject;          /* index into the chunk's rejects */
  int status;             /* REC_* */
  size_t nfields;
  uint64_t last;          /* the line named, counted from the chunk's first */
} line_fixup;

typedef struct loader {
  reader rd;
  const lq_csv_options *o;
  lq_allocator alloc;
  lq_table *t;
  char *err;
  size_t errlen;
  int ncols;
  char **names;           /* column names after renaming; owned */
  char **header_names;    /* the header's own names (NULL where empty or no header); owned */
  int *declared;          /* per column: the type was declared (1) or inferred (0) */
  int *required;          /* per column: must hold a value */
  pending_value *pending; /* category values waiting to be interned (see queue_category) */
  size_t npending, pending_cap;
  char *pending_bytes;
  size_t pending_bytes_len, pending_bytes_cap;
  recent_value *recent;   /* ncols * RECENT_VALUES: values interned lately (see recent_code) */
  lq_month_cache months;  /* times in the export form, their months' first days */
  int months_ready;
  size_t *order;          /* flush_categories: the queue sorted by column */
  size_t order_cap;
  size_t *col_starts;     /* ncols + 1 */
  column_guess *guesses;
  size_t *sample_field_bytes;  /* per column: bytes in the sample, to size text arenas */
  size_t sampled;         /* data rows sampled for inference */
  size_t sample_bytes;    /* bytes those rows take */
  uint64_t records;       /* data records read so far */
  int ninput;             /* fields a record has (ncols unless a plan makes other columns) */
  int planned;            /* o->plan is applied: the columns are its output columns */
  lq_plan_state plan;
  lq_plan_field *views;   /* the record's fields, for the plan */
  size_t views_cap;
  int *src;               /* per column: the field (or the plan's output) it is made from */
  int has_tags;           /* a tags column: its values are stored once the rest of the row fits */
  int strict;             /* the first reject ends the load (o->strict, off in chunks) */
  int borrowed;           /* a chunk's loader: names, types and plan belong to the main one */
  uint64_t stop_at;       /* offset where this loader's records end (UINT64_MAX: the input's end) */
  record_start *starts;   /* a chunk's first record starts (NULL: not kept) */
  size_t nstarts, starts_cap;
  line_fixup *fixups;
  size_t nfixups, fixups_cap;
  struct parallel_read *job;  /* the threaded read this loader is part of, or NULL */
  uint64_t *bytes_done;   /* in a threaded read: the offset read up to, for the main loader's progress */
  const char *path;       /* the file read (NULL: a string) */
} loader;

static double parallel_bytes_done(const struct parallel_read *job);

static void *lmem(loader *ld, void *p, size_t osize, size_t nsize) {
  return ld->alloc.fn(ld->alloc.ud, p, osize, nsize);
}

static int fail_memory(loader *ld) {
  snprintf(ld->err, ld->errlen, "not enough memory");
  return LQ_CSV_ENOMEM;
}

static char *copy_string(loader *ld, const char *s, size_t len) {
  char *c = (char *)lmem(ld, NULL, 0, len + 1);
  if (c == NULL) return NULL;
  memcpy(c, s, len);
  c[len] = '\0';
  return c;
}

static void loader_free(loader *ld) {
  int i;
  reader_free(&ld->rd);
  if (ld->starts) lmem(ld, ld->starts, ld->starts_cap * sizeof *ld->starts, 0);
  if (ld->fixups) lmem(ld, ld->fixups, ld->fixups_cap * sizeof *ld->fixups, 0);
  ld->starts = NULL;
  ld->fixups = NULL;
  if (ld->borrowed) {   /* the main loader's: only the plan's scratch is this one's */
    if (ld->plan.scratch) lmem(ld, ld->plan.scratch, ld->plan.scratch_cap, 0);
    memset(&ld->plan, 0, sizeof ld->plan);
    ld->names = ld->header_names = NULL;
    ld->declared = ld->required = ld->src = NULL;
    ld->guesses = NULL;
    ld->sample_field_bytes = NULL;
  }
  if (ld->src) lmem(ld, ld->src, (size_t)(ld->ncols > 0 ? ld->ncols : 1) * sizeof(int), 0);
  ld->src = NULL;
  if (ld->names) {
    for (i = 0; i < ld->ncols; i++)
      if (ld->names[i]) lmem(ld, ld->names[i], strlen(ld->names[i]) + 1, 0);
    lmem(ld, ld->names, (size_t)ld->ncols * sizeof(char *), 0);
  }
  if (ld->header_names) {
    for (i = 0; i < ld->ncols; i++)
      if (ld->header_names[i]) lmem(ld, ld->header_names[i], strlen(ld->header_names[i]) + 1, 0);
    lmem(ld, ld->header_names, (size_t)ld->ncols * sizeof(char *), 0);
  }
  if (ld->declared) lmem(ld, ld->declared, (size_t)ld->ncols * sizeof(int), 0);
  if (ld->required) lmem(ld, ld->required, (size_t)ld->ncols * sizeof(int), 0);
  if (ld->pending) lmem(ld, ld->pending, ld->pending_cap * sizeof(pending_value), 0);
  if (ld->pending_bytes) lmem(ld, ld->pending_bytes, ld->pending_bytes_cap, 0);
  if (ld->order) lmem(ld, ld->order, ld->order_cap * sizeof(size_t), 0);
  if (ld->recent) lmem(ld, ld->recent, (size_t)ld->ncols * RECENT_VALUES * sizeof(recent_value), 0);
  ld->recent = NULL;
  if (ld->col_starts) lmem(ld, ld->col_starts, ((size_t)ld->ncols + 1) * sizeof(size_t), 0);
  if (ld->sample_field_bytes) lmem(ld, ld->sample_field_bytes, (size_t)ld->ncols * sizeof(size_t), 0);
  if (ld->guesses) {
    for (i = 0; i < ld->ncols; i++) lq_dict_free(&ld->guesses[i].distinct, &ld->alloc);
    lmem(ld, ld->guesses, (size_t)ld->ncols * sizeof(column_guess), 0);
  }
  if (ld->t) lq_table_free(ld->t);
  lq_plan_state_free(&ld->plan);
  if (ld->views) lmem(ld, ld->views, ld->views_cap * sizeof *ld->views, 0);
  ld->views = NULL;
  ld->names = ld->header_names = NULL;
  ld->declared = ld->required = NULL;
  ld->pending = NULL;
  ld->pending_bytes = NULL;
  ld->order = NULL;
  ld->col_starts = NULL;
  ld->sample_field_bytes = NULL;
  ld->guesses = NULL;
  ld->t = NULL;
}

/* Next record, refilling as needed: REC_* or -1 no memory, -2 read error. */
static int next_record(loader *ld) {
  for (;;) {
    int st;
    ld->rd.scratch_len = 0;
    st = parse_record(&ld->rd);
    if (st != REC_MORE) return st;
    if ((st = reader_fill(&ld->rd)) != 0) return st;
    if (ld->bytes_done != NULL)
      __atomic_store_n(ld->bytes_done, ld->rd.base + ld->rd.len, __ATOMIC_RELAXED);
    if (ld->o->progress != NULL && !ld->borrowed && ld->rd.input != NULL)   /* once a read: a megabyte or so */
      ld->o->progress(ld->o->progress_ud, ld->job ? parallel_bytes_done(ld->job) : (double)ld->rd.input->raw_read,
                      (double)lq_input_file_size(ld->rd.input), (double)ld->records);
  }
}

static int io_failure(loader *ld, int st) {
  if (st == -1) return fail_memory(ld);
  snprintf(ld->err, ld->errlen, "%s: %s", ld->o->source, ld->rd.input ? ld->rd.input->message : "cannot read");
  return LQ_CSV_EIO;
}

static int is_blank_record(const reader *rd) {
  return rd->nfields == 1 && rd->fields[0].len == 0 && !rd->fields[0].quoted;
}

static int first_line_complete(const reader *rd) {
  const char *p = rd->buf + rd->pos, *end = rd->buf + rd->len;
  int quoted = 0;
  for (; p < end; p++) {
    if (*p == '"') quoted = !quoted;
    else if (!quoted && (*p == '\n' || *p == '\r')) return 1;
  }
  return 0;
}

/* The separator: the most frequent of , ; tab outside quotes on the first line (',' on ties). */
static char detect_separator(const reader *rd) {
  size_t counts[3] = { 0, 0, 0 };
  const char *p = rd->buf + rd->pos, *end = rd->buf + rd->len;
  int quoted = 0;
  for (; p < end; p++) {
    char c = *p;
    if (c == '"') quoted = !quoted;
    else if (quoted) continue;
    else if (c == '\n' || c == '\r') break;
    else if (c == ',') counts[0]++;
    else if (c == ';') counts[1]++;
    else if (c == '\t') counts[2]++;
  }
  if (counts[1] > counts[0] && counts[1] >= counts[2]) return ';';
  if (counts[2] > counts[0] && counts[2] > counts[1]) return '\t';
  return ',';
}

/* The schema entry of a column (by its name, or by its name in the header), or -1. */
static int schema_entry(const loader *ld, int col) {
  const char *header_name = ld->header_names[col];
  int i;
  for (i = 0; i < ld->o->nschema; i++) {
    const char *n = ld->o->schema[i].name;
    if (strcmp(n, ld->names[col]) == 0 || (header_name && strcmp(n, header_name) == 0)) return i;
  }
  return -1;
}

/* "(did you mean 'x'?)" against the column names, or "". */
static void suggest(const loader *ld, const char *name, char *buf, size_t size) {
  int i, best = -1, best_d = 3;
  buf[0] = '\0';
  for (i = 0; i < ld->ncols; i++) {
    int d = lq_edit_distance(name, ld->names[i]);
    if (d < best_d) { best_d = d; best = i; }
  }
  if (best >= 0) snprintf(buf, size, " (did you mean '%s'?)", ld->names[best]);
}

static int find_name(const loader *ld, const char *name) {
  int i;
  for (i = 0; i < ld->ncols; i++)
    if (strcmp(ld->names[i], name) == 0) return i;
  return -1;
}

/* A plan's output columns replace the header's: names and header_names get its size. */
static int apply_plan_names(loader *ld) {
  const lq_csv_options *o = ld->o;
  int n = ld->ncols, nout = 0, i, st;
  size_t room = (size_t)(o->plan->ncols + n);
  const char **out;
  char **names, **header_names;
  char msg[LQ_MESSAGE_MAX];
  out = (const char **)lmem(ld, NULL, 0, room * sizeof *out);
  if (out == NULL) return fail_memory(ld);
  st = lq_plan_state_init(&ld->plan, o->plan, ld->names, n, out, &nout, ld->alloc, msg, sizeof msg);
  if (st != 0) {
    lmem(ld, (void *)out, room * sizeof *out, 0);
    if (strcmp(msg, "not enough memory") == 0) return fail_memory(ld);
    snprintf(ld->err, ld->errlen, "%s: %s", o->source, msg);
    return LQ_CSV_EUSAGE;
  }
  names = (char **)lmem(ld, NULL, 0, (size_t)(nout > 0 ? nout : 1) * sizeof(char *));
  header_names = (char **)lmem(ld, NULL, 0, (size_t)(nout > 0 ? nout : 1) * sizeof(char *));
  if (names == NULL || header_names == NULL) {
    if (names) lmem(ld, names, (size_t)(nout > 0 ? nout : 1) * sizeof(char *), 0);
    if (header_names) lmem(ld, header_names, (size_t)(nout > 0 ? nout : 1) * sizeof(char *), 0);
    lmem(ld, (void *)out, room * sizeof *out, 0);
    return fail_memory(ld);
  }
  memset(header_names, 0, (size_t)(nout > 0 ? nout : 1) * sizeof(char *));
  for (i = 0; i < nout; i++) {
    names[i] = copy_string(ld, out[i], strlen(out[i]));
    if (names[i] == NULL) {
      while (i-- > 0) lmem(ld, names[i], strlen(names[i]) + 1, 0);
      lmem(ld, names, (size_t)(nout > 0 ? nout : 1) * sizeof(char *), 0);
      lmem(ld, header_names, (size_t)(nout > 0 ? nout : 1) * sizeof(char *), 0);
      lmem(ld, (void *)out, room * sizeof *out, 0);
      return fail_memory(ld);
    }
  }
  lmem(ld, (void *)out, room * sizeof *out, 0);
  for (i = 0; i < n; i++) {
    if (ld->names[i]) lmem(ld, ld->names[i], strlen(ld->names[i]) + 1, 0);
    if (ld->header_names[i]) lmem(ld, ld->header_names[i], strlen(ld->header_names[i]) + 1, 0);
  }
  lmem(ld, ld->names, (size_t)n * sizeof(char *), 0);
  lmem(ld, ld->header_names, (size_t)n * sizeof(char *), 0);
  ld->names = names;
  ld->header_names = header_names;
  ld->ncols = nout;
  ld->planned = 1;
  return LQ_CSV_OK;
}

/* The record's fields as the plan reads them (doubled quotes undone). 0, or -1 on no memory. */
static int record_views(loader *ld) {
  reader *rd = &ld->rd;
  size_t i, n = rd->nfields < rd->fields_cap ? rd->nfields : rd->fields_cap;
  if (n > ld->views_cap) {
    lq_plan_field *nv = (lq_plan_field *)lmem(ld, ld->views, ld->views_cap * sizeof *nv, n * sizeof *nv);
    if (nv == NULL) return -1;
    ld->views = nv;
    ld->views_cap = n;
  }
  for (i = 0; i < n; i++) {
    const field *f = &rd->fields[i];
    lq_plan_field *v = &ld->views[i];
    v->quoted = f->quoted;
    if (!f->escaped) {
      v->s = rd->buf + f->start;
      v->len = f->len;
    } else if ((v->s = field_bytes(rd, i, &v->len)) == NULL) {
      return -1;
    }
  }
  return 0;
}

/* Option 'columns': the columns kept (with the required ones), in the file's order, and src, where
** each one's values come from. A column left out is still split off its record (the count of
** fields is checked), but no value is made of it. */
static int keep_columns(loader *ld) {
  const lq_csv_options *o = ld->o;
  const int n = ld->ncols;
  const size_t room = (size_t)(n > 0 ? n : 1);
  int nkeep = 0, i, j, k;
  int *keep;
  char **names, **header_names;
  if ((keep = (int *)lmem(ld, NULL, 0, room * sizeof(int))) == NULL) return fail_memory(ld);
  for (i = 0; i < n; i++) keep[i] = o->columns == NULL;
  for (j = 0; o->columns != NULL && j < o->ncolumns; j++) {
    const char *want = o->columns[j];
    int hit = -1;
    for (i = 0; i < n && hit < 0; i++)
      if (strcmp(ld->names[i], want) == 0 || (ld->header_names[i] && strcmp(ld->header_names[i], want) == 0)) hit = i;
    if (hit < 0 && o->columns_optional) continue;
    if (hit < 0) {
      char hint[96];
      suggest(ld, want, hint, sizeof hint);
      snprintf(ld->err, ld->errlen, "option 'columns': column '%s' is not in %s%s", want, o->source, hint);
      lmem(ld, keep, room * sizeof(int), 0);
      return LQ_CSV_EUSAGE;
    }
    keep[hit] = 1;
  }
  for (j = 0; j < o->nrequired; j++)
    if ((i = find_name(ld, o->required[j])) >= 0) keep[i] = 1;
  for (i = 0; i < n; i++) nkeep += keep[i];
  ld->src = (int *)lmem(ld, NULL, 0, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(int));
  if (ld->src == NULL) {
    lmem(ld, keep, room * sizeof(int), 0);
    return fail_memory(ld);
  }
  if (nkeep == n) {
    for (i = 0; i < n; i++) ld->src[i] = i;
    lmem(ld, keep, room * sizeof(int), 0);
    return LQ_CSV_OK;
  }
  names = (char **)lmem(ld, NULL, 0, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(char *));
  header_names = (char **)lmem(ld, NULL, 0, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(char *));
  if (names == NULL || header_names == NULL) {
    if (names) lmem(ld, names, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(char *), 0);
    if (header_names) lmem(ld, header_names, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(char *), 0);
    lmem(ld, ld->src, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof(int), 0);
    ld->src = NULL;
    lmem(ld, keep, room * sizeof(int), 0);
    return fail_memory(ld);
  }
  for (i = 0, k = 0; i < n; i++) {
    if (keep[i]) {
      names[k] = ld->names[i];
      header_names[k] = ld->header_names[i];
      ld->src[k++] = i;
    } else {
      lmem(ld, ld->names[i], strlen(ld->names[i]) + 1, 0);
      if (ld->header_names[i]) lmem(ld, ld->header_names[i], strlen(ld->header_names[i]) + 1, 0);
    }
  }
  lmem(ld, ld->names, room * sizeof(char *), 0);
  lmem(ld, ld->header_names, room * sizeof(char *), 0);
  lmem(ld, keep, room * sizeof(int), 0);
  ld->names = names;
  ld->header_names = header_names;
  ld->ncols = nkeep;
  return LQ_CSV_OK;
}

/* Column names from the header (or column_N), renamed by the map; checks schema, map and
** required names against them. */
static int read_header(loader *ld) {
  const lq_csv_options *o = ld->o;
  reader *rd = &ld->rd;
  char **header_names;
  int st, i, j;
  size_t n;
  uint64_t save_line = rd->line;
  /* the first non-blank record; with no header it is data, so refills keep it for a second read
  ** (the mark moves with the bytes, where a saved offset would point at others) */
  rd->mark = rd->pos;
  for (;;) {
    st = next_record(ld);
    if (st < 0) return io_failure(ld, st);
    if (st == REC_END) return LQ_CSV_OK;  /* no columns, no rows */
    if (st == REC_BAD_QUOTE || st == REC_BAD_AFTER_QUOTE) {
      snprintf(ld->err, ld->errlen, "%s:%llu: the %s has %s", o->source, (unsigned long long)rd->rec_line,
               o->header ? "header" : "first record",
               st == REC_BAD_QUOTE ? "a quote that is never closed" : "text after a closing quote");
      return LQ_CSV_EDATA;
    }
    if (!is_blank_record(rd)) break;
  }
  n = rd->nfields;
  if (n > LQ_MAX_COLUMNS) {
    snprintf(ld->err, ld->errlen, "%s:%llu: %zu columns, more than the %d a table can hold", o->source,
             (unsigned long long)rd->rec_line, n, LQ_MAX_COLUMNS);
    return LQ_CSV_EUSAGE;
  }
  ld->names = (char **)lmem(ld, NULL, 0, n * sizeof(char *));
  if (ld->names == NULL) return fail_memory(ld);
  memset(ld->names, 0, n * sizeof(char *));
  ld->header_names = header_names = (char **)lmem(ld, NULL, 0, n * sizeof(char *));
  if (header_names == NULL) {
    lmem(ld, ld->names, n * sizeof(char *), 0);
    ld->names = NULL;
    return fail_memory(ld);
  }
  memset(header_names, 0, n * sizeof(char *));
  ld->ncols = (int)n;
  for (i = 0; i < (int)n; i++) {
    char generated[32];
    size_t len = 0;
    const char *s = NULL;
    if (o->header) {
      s = field_bytes(rd, (size_t)i, &len);
      if (s == NULL) return fail_memory(ld);
      while (len > 0 && IS_SPACE(*s)) { s++; len--; }
      while (len > 0 && IS_SPACE(s[len - 1])) len--;
      if (len > 0 && memchr(s, '\0', len) == NULL) {
        header_names[i] = copy_string(ld, s, len);
        if (header_names[i] == NULL) return fail_memory(ld);
      }
    }
    if (header_names[i] == NULL) {
      snprintf(generated, sizeof generated, "column_%d", i + 1);
      s = generated;
      len = strlen(generated);
    } else {
      s = header_names[i];
      len = strlen(s);
    }
    for (j = 0; j < o->nmap; j++)
      if (strcmp(o->map[j].from, s) == 0) { s = o->map[j].to; len = strlen(s); break; }
    ld->names[i] = copy_string(ld, s, len);
    if (ld->names[i] == NULL) return fail_memory(ld);
  }
  ld->ninput = (int)n;
  if (!o->header) {  /* that record was data: read it again */
    rd->pos = rd->mark;
    rd->line = save_line;
  }
  rd->mark = NO_MARK;
  if (o->plan != NULL) {
    if ((st = apply_plan_names(ld)) != LQ_CSV_OK) return st;
    header_names = ld->header_names;   /* the plan's columns from here on */
    n = (size_t)ld->ncols;
  }
  /* every map key and schema name must be a column */
  for (j = 0; j < o->nmap; j++) {
    int hit = 0;
    for (i = 0; i < (int)n && !hit; i++) {
      const char *hn = header_names[i];
      char generated[32];
      if (hn == NULL) {
        snprintf(generated, sizeof generated, "column_%d", i + 1);
        hn = generated;
      }
      hit = strcmp(hn, o->map[j].from) == 0;
    }
    if (!hit) {
      char hint[96];
      int best = -1, best_d = 3;
      hint[0] = '\0';
      for (i = 0; i < (int)n; i++) {
        int d;
        if (header_names[i] == NULL) continue;
        d = lq_edit_distance(o->map[j].from, header_names[i]);
        if (d < best_d) { best_d = d; best = i; }
      }
      if (best >= 0) snprintf(hint, sizeof hint, " (did you mean '%s'?)", header_names[best]);
      snprintf(ld->err, ld->errlen, "option 'map': column '%s' is not in the header of %s%s",
               o->map[j].from, o->source, hint);
      return LQ_CSV_EUSAGE;
    }
  }
  for (j = 0; j < o->nschema - o->schema_optional; j++) {
    int hit = 0;
    for (i = 0; i < (int)n && !hit; i++)
      hit = strcmp(ld->names[i], o->schema[j].name) == 0 ||
            (header_names[i] && strcmp(header_names[i], o->schema[j].name) == 0);
    if (!hit) {
      char hint[96];
      suggest(ld, o->schema[j].name, hint, sizeof hint);
      snprintf(ld->err, ld->errlen, "option 'schema': column '%s' is not in %s%s",
               o->schema[j].name, o->source, hint);
      return LQ_CSV_EUSAGE;
    }
  }
  for (i = 0; i < (int)n; i++)
    for (j = i + 1; j < (int)n; j++)
      if (strcmp(ld->names[i], ld->names[j]) == 0) {
        snprintf(ld->err, ld->errlen, "%s: column '%s' appears twice (columns %d and %d)",
                 o->source, ld->names[i], i + 1, j + 1);
        return LQ_CSV_EUSAGE;
      }
  for (j = 0; j < o->nrequired; j++) {
    if (find_name(ld, o->required[j]) < 0) {
      char hint[96];
      suggest(ld, o->required[j], hint, sizeof hint);
      /* no API option named here: the command line reads the same message */
      snprintf(ld->err, ld->errlen, "%s has no column '%s'%s: rename the column that holds it, or map it to '%s'",
               o->source, o->required[j], hint, o->required[j]);
      return LQ_CSV_EUSAGE;
    }
  }
  return keep_columns(ld);
}

/* One sampled value of an undeclared column. */
static int guess_observe(loader *ld, column_guess *g, const char *s, size_t len) {
  double num;
  int b;
  const char *p = s, *e = s + len;
  while (p < e && IS_SPACE(*p)) p++;
  while (e > p && IS_SPACE(e[-1])) e--;
  if (len == 0) return 0;  /* missing */
  g->count++;
  if (g->could_be_number && (p == e || !parse_number(p, (size_t)(e - p), &num) ||
                             has_leading_zero(p, (size_t)(e - p))))
    g->could_be_number = 0;
  if (g->could_be_bool && (p == e || !parse_bool(p, (size_t)(e - p), &b))) g->could_be_bool = 0;
  if (g->could_be_time && (p == e || !lq_scan_time(p, (size_t)(e - p), &num))) g->could_be_time = 0;
  if (!g->distinct_overflow) {
    if (g->distinct.count >= LQ_CSV_DISTINCT_LIMIT) g->distinct_overflow = 1;
    else if (lq_dict_intern(&g->distinct, &ld->alloc, s, len) < 0) return -1;
  }
  return 0;
}

/* One sampled record through the plan: its output values observed as guess_observe does, numbers
** and times read in the column's locale and formats. */
static int sample_planned(loader *ld) {
  int j;
  if (record_views(ld) != 0) return -1;
  for (j = 0; j < ld->ncols; j++) {
    const lq_plan_column *pc = ld->plan.cols[ld->src[j]];
    column_guess *g = &ld->guesses[j];
    size_t len;
    int quoted, b;
    double num;
    const char *s = lq_plan_value(&ld->plan, ld->src[j], ld->views, ld->rd.nfields, &len, &quoted);
    if (s == NULL) return -1;
    ld->sample_field_bytes[j] += len;
    if (ld->declared[j] || len == 0) continue;
    g->count++;
    if (g->could_be_number) {
      /* a value like a number but not of the locale ("1.2" where '.' groups thousands) leaves the
      ** column a number, and is rejected when loaded: never read as text in a number column */
      if (pc->numeric) g->could_be_number = lq_plan_number(pc, s, len, &num) != LQ_PLAN_NOT;
      else g->could_be_number = parse_number(s, len, &num) && !has_leading_zero(s, len);
    }
    if (g->could_be_bool && !parse_bool(s, len, &b)) g->could_be_bool = 0;
    if (g->could_be_time) {
      if (pc->date_formats || pc->has_tz) g->could_be_time = lq_plan_time(pc, s, len, &num);
      else g->could_be_time = lq_scan_time(s, len, &num);
    }
    if (!g->distinct_overflow) {
      if (g->distinct.count >= LQ_CSV_DISTINCT_LIMIT) g->distinct_overflow = 1;
      else if (lq_dict_intern(&g->distinct, &ld->alloc, s, len) < 0) return -1;
    }
  }
  return 0;
}

static lq_type guess_type(const column_guess *g, const char *name) {
  size_t distinct = g->distinct_overflow ? g->count : (size_t)g->distinct.count;
  if (g->count == 0) return LQ_CATEGORY;
  if (!lq_is_id_name(name)) {  /* identifiers are never numbers, booleans or times */
    if (g->could_be_number) return LQ_NUMBER;
    if (g->could_be_bool) return LQ_BOOLEAN;
    if (g->could_be_time) return LQ_TIME;
  }
  return lq_infer_string_type(name, g->count, distinct);
}

/* Declared types, then a pass over the first infer_rows records for the others. */
static int decide_types(loader *ld) {
  const lq_csv_options *o = ld->o;
  reader *rd = &ld->rd;
  size_t n = (size_t)ld->ncols, i;
  int st;
  uint64_t save_line = rd->line;
  const size_t ninput = (size_t)ld->ninput;
  if (n == 0) return LQ_CSV_OK;
  ld->declared = (int *)lmem(ld, NULL, 0, n * sizeof(int));
  ld->required = (int *)lmem(ld, NULL, 0, n * sizeof(int));

  ld->guesses = (column_guess *)lmem(ld, NULL, 0, n * sizeof(column_guess));
  if (ld->guesses != NULL) memset(ld->guesses, 0, n * sizeof(column_guess));  /* freeable as is */
  ld->sample_field_bytes = (size_t *)lmem(ld, NULL, 0, n * sizeof(size_t));
  ld->col_starts = (size_t *)lmem(ld, NULL, 0, (n + 1) * sizeof(size_t));
  if (!ld->declared || !ld->required || !ld->guesses || !ld->sample_field_bytes || !ld->col_starts)
    return fail_memory(ld);
  for (i = 0; i < n; i++) {
    column_guess *g = &ld->guesses[i];
    int j;
    memset(g, 0, sizeof *g);
    lq_dict_init(&g->distinct);
    g->could_be_number = g->could_be_bool = g->could_be_time = 1;
    ld->required[i] = 0;
    for (j = 0; j < o->nrequired; j++)
      if (strcmp(o->required[j], ld->names[i]) == 0) ld->required[i] = 1;
    ld->declared[i] = schema_entry(ld, (int)i) >= 0;
    ld->sample_field_bytes[i] = 0;
  }
  /* the sample also sizes the table, so it is read even when every type is declared */
  {
    rd->mark = rd->pos;  /* keep the sample in the buffer */
    while (ld->sampled < o->infer_rows) {
      st = next_record(ld);
      if (st < 0) return io_failure(ld, st);
      if (st == REC_END) break;
      if (st == REC_OK && is_blank_record(rd)) continue;
      ld->sampled++;
      if (st != REC_OK || rd->nfields != ninput) {
        (void)cut_to_first_line(rd);  /* as load_rows will */
        continue;
      }
      if (ld->planned) {
        if (sample_planned(ld) != 0) return fail_memory(ld);
        continue;
      }
      for (i = 0; i < n; i++) {
        size_t len;
        const char *s;
        ld->sample_field_bytes[i] += rd->fields[ld->src[i]].len;
        if (ld->declared[i]) continue;
        s = field_bytes(rd, (size_t)ld->src[i], &len);
        if (s == NULL || guess_observe(ld, &ld->guesses[i], s, len) != 0) return fail_memory(ld);
      }
    }
    ld->sample_bytes = rd->pos - rd->mark;
    rd->pos = rd->mark;
    rd->line = save_line;
    rd->mark = NO_MARK;
  }
  return LQ_CSV_OK;
}

/* The table and its columns. With no columns in the input (an empty file), the schema's. */
static int build_columns(loader *ld) {
  const lq_csv_options *o = ld->o;
  int i;
  ld->t = lq_table_new(ld->alloc);
  if (ld->t == NULL) return fail_memory(ld);
  ld->t->flags = o->table_flags;
  if (lq_table_set_source(ld->t, o->source, strlen(o->source)) != 0) return fail_memory(ld);
  for (i = 0; i < ld->ncols; i++) {
    lq_type type;
    int found = schema_entry(ld, i), idx;
    type = found >= 0 ? o->schema[found].type : guess_type(&ld->guesses[i], ld->names[i]);
    idx = lq_table_add_column(ld->t, ld->names[i], type);
    if (idx < 0) return fail_memory(ld);
    ld->t->cols[idx]->tag_separator = o->tag_separator;
    if (ld->planned && ld->plan.cols[ld->src[i]]->tag_separator)
      ld->t->cols[idx]->tag_separator = ld->plan.cols[ld->src[i]]->tag_separator;
    if (type == LQ_TAGS) ld->has_tags = 1;
  }
  for (i = 0; ld->ncols == 0 && i < o->nschema; i++) {
    int idx = lq_table_add_column(ld->t, o->schema[i].name, o->schema[i].type);
    if (idx == -1) return fail_memory(ld);
    if (idx >= 0) ld->t->cols[idx]->tag_separator = o->tag_separator;
  }
  return LQ_CSV_OK;
}

/* A reject: into the table, or in strict mode the message that ends the load. */
static int reject(loader *ld, int column, const char *reason) {
  lq_reject r;
  r.line = ld->rd.rec_line;
  r.record = ld->records;
  r.column = column;
  r.reason = (char *)(uintptr_t)reason;
  if (ld->strict) {
    lq_reject_message(ld->t, &r, ld->err, ld->errlen);
    return LQ_CSV_EDATA;
  }
  if (lq_table_add_reject(ld->t, r.line, r.record, column, reason) != 0) return fail_memory(ld);
  return LQ_CSV_OK;
}

/* Why a value does not fit its column, with a hint when the type was only inferred. */
static int reject_value(loader *ld, int col, const char *s, size_t len, const char *what) {
  char reason[LQ_MESSAGE_MAX], quoted[128];
  const char *name = ld->names[col];
  int plain = 1;
  const char *p;
  lq_quote_value(s, len, quoted, sizeof quoted);
  if (ld->declared[col]) {
    snprintf(reason, sizeof reason, "%s is not %s", quoted, what);
  } else {
    for (p = name; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
            (p > name && *p >= '0' && *p <= '9'))) plain = 0;
    snprintf(reason, sizeof reason,
             "%s is not %s (the column's type, %s, was inferred from the first %zu rows; "
             "to keep such values declare another, e.g. options.schema = { %s%s%s = \"category\" })",
             quoted, what, lq_type_name(ld->t->cols[col]->type), ld->sampled,
             plain ? "" : "[\"", name, plain ? "" : "\"]");
  }
  return reject(ld, col, reason);
}

/* Category values are interned in batches: a row only queues its values (hashed, copied), and
** every LQ_CSV_BATCH rows the queue is resolved with the dictionary slots fetched a few items
** ahead. With many distinct values (e-mail domains, companies) each lookup misses the cache twice;
** in a batch those misses overlap instead of following one another. Codes still follow the order
** of first appearance. */
#if !defined(LQ_CSV_BATCH)
#define LQ_CSV_BATCH 256
#endif
#define PREFETCH_AHEAD 32

static inline unsigned recent_slot(const char *s, size_t len) {
  return (unsigned)(len * 7 + (unsigned char)s[0] + (unsigned char)s[len - 1] * 3) & (RECENT_VALUES - 1);
}

/* The code of a value (len > 0) met lately in column col, or -1. */
static inline int32_t recent_code(const loader *ld, int col, const lq_dict *d, const char *s, size_t len) {
  const recent_value *r = &ld->recent[(size_t)col * RECENT_VALUES + recent_slot(s, len)];
  if (r->code < 0 || r->len != len) return -1;
  return lq_same_bytes(d->bytes + d->starts[r->code], s, len) ? r->code : -1;
}

static int queue_category(loader *ld, int col, size_t row, const char *s, size_t len) {
  pending_value *pv;
  if (ld->npending == ld->pending_cap) {
    size_t ncap = ld->pending_cap ? ld->pending_cap * 2 : 1024;
    pending_value *np = (pending_value *)lmem(ld, ld->pending, ld->pending_cap * sizeof *np, ncap * sizeof *np);
    if (np == NULL) return -1;
    ld->pending = np;
    ld->pending_cap = ncap;
  }
  if (ld->pending_bytes_len + len > ld->pending_bytes_cap) {
    size_t ncap = (ld->pending_bytes_len + len) * 2 + 4096;
    char *nb = (char *)lmem(ld, ld->pending_bytes, ld->pending_bytes_cap, ncap);
    if (nb == NULL) return -1;
    ld->pending_bytes = nb;
    ld->pending_bytes_cap = ncap;
  }
  pv = &ld->pending[ld->npending++];
  pv->col = col;
  pv->row = row;
  pv->start = ld->pending_bytes_len;
  pv->len = len;
  pv->hash = lq_hash_bytes(s, len);
  memcpy(ld->pending_bytes + ld->pending_bytes_len, s, len);
  ld->pending_bytes_len += len;
  return 0;
}

static void prefetch_slot(const loader *ld, const pending_value *pv) {
#if defined(__GNUC__)
  const lq_dict *d = &ld->t->cols[pv->col]->dict;
  if (d->index != NULL) __builtin_prefetch(&d->index[pv->hash & d->slot_mask]);
#else
  (void)ld;
  (void)pv;
#endif
}

static void prefetch_bytes(const loader *ld, const pending_value *pv) {
#if defined(__GNUC__)
  const lq_dict *d = &ld->t->cols[pv->col]->dict;
  const lq_dict_slot *e;
  if (d->index == NULL) return;
  e = &d->index[pv->hash & d->slot_mask];
  if (e->code >= 0 && e->hash == pv->hash && e->start != UINT32_MAX) __builtin_prefetch(d->bytes + e->start);
#else
  (void)ld;
  (void)pv;
#endif
}

/* Intern the queued values column by column (a column's dictionary stays in cache for its run),
** each run in row order (codes follow first appearance), slots fetched PREFETCH_AHEAD ahead. */
static int flush_categories(loader *ld) {
  size_t i, k, n = ld->npending;
  const size_t ncols = (size_t)ld->ncols;
  size_t *order, *starts = ld->col_starts;
  if (n == 0) return 0;
  if (ld->order_cap < n) {
    size_t *no = (size_t *)lmem(ld, ld->order, ld->order_cap * sizeof(size_t), ld->pending_cap * sizeof(size_t));
    if (no == NULL) return -1;
    ld->order = no;
    ld->order_cap = ld->pending_cap;
  }
  order = ld->order;
  /* counting sort by column, stable */
  memset(starts, 0, (ncols + 1) * sizeof(size_t));
  for (i = 0; i < n; i++) starts[ld->pending[i].col + 1]++;
  for (k = 0; k < ncols; k++) starts[k + 1] += starts[k];
  for (i = 0; i < n; i++) order[starts[ld->pending[i].col]++] = i;
  for (i = 0; i < n && i < PREFETCH_AHEAD; i++) prefetch_slot(ld, &ld->pending[order[i]]);
  for (i = 0; i < n; i++) {
    const pending_value *pv = &ld->pending[order[i]];
    lq_column *c = ld->t->cols[pv->col];
    int32_t code;
    if (i + PREFETCH_AHEAD < n) prefetch_slot(ld, &ld->pending[order[i + PREFETCH_AHEAD]]);
    if (i + PREFETCH_AHEAD / 2 < n) prefetch_bytes(ld, &ld->pending[order[i + PREFETCH_AHEAD / 2]]);
    code = lq_dict_intern_hash(&c->dict, &ld->t->alloc, ld->pending_bytes + pv->start, pv->len, pv->hash);
    if (code < 0) return -1;
    c->codes[pv->row] = code;
    {
      recent_value *r = &ld->recent[(size_t)pv->col * RECENT_VALUES + recent_slot(ld->pending_bytes + pv->start, pv->len)];
      r->code = code;
      r->len = (uint32_t)pv->len;
    }
  }
  ld->npending = 0;
  ld->pending_bytes_len = 0;
  return 0;
}

enum { VALUE_OK = 0, VALUE_BAD = 1, VALUE_NOMEM = -1 };

/* Store field `f` (bytes s, len) into column col of the row being built. */
static inline int store_value(loader *ld, int col, const field *f, const char *s, size_t len) {
  lq_table *t = ld->t;
  lq_column *c = t->cols[col];
  size_t row = t->nrows;
  switch (c->type) {
    case LQ_NUMBER: {
      double v;
      if (len == 0) { c->numbers[row] = NAN; return VALUE_OK; }
      if (parse_number(s, len, &v)) { c->numbers[row] = v; return VALUE_OK; }
      break;
    }
    case LQ_CATEGORY: {
      int32_t code;
      if (len == 0) { c->codes[row] = LQ_MISSING_CODE; return VALUE_OK; }
      if ((code = recent_code(ld, col, &c->dict, s, len)) >= 0) { c->codes[row] = code; return VALUE_OK; }
      c->codes[row] = 0;  /* present; the code comes when the batch is interned */
      return queue_category(ld, col, row, s, len) == 0 ? VALUE_OK : VALUE_NOMEM;
    }
    case LQ_TIME: {
      double v;
      if (len == 0) { c->numbers[row] = NAN; return VALUE_OK; }
      if (lq_scan_time_cached(&ld->months, s, len, &v)) { c->numbers[row] = v; return VALUE_OK; }
      break;
    }
    case LQ_BOOLEAN: {
      int b;
      if (len == 0) { c->bools[row] = LQ_MISSING_BOOL; return VALUE_OK; }
      if (parse_bool(s, len, &b)) { c->bools[row] = (uint8_t)b; return VALUE_OK; }
      break;
    }
    case LQ_TEXT:
      if (len == 0 && !f->quoted) {
        c->text_missing[row] = 1;
        c->text_len = (size_t)(c->offsets[row + 1] = c->offsets[row]);
        return VALUE_OK;
      }
      return lq_column_set_string(t, col, s, len) == 0 ? VALUE_OK : VALUE_NOMEM;
    case LQ_TAGS:
      if (len == 0 && !f->quoted) {
        c->text_missing[row] = 1;
        c->tag_len = (size_t)(c->tag_offsets[row + 1] = c->tag_offsets[row]);
        return VALUE_OK;
      }
      return lq_column_set_string(t, col, s, len) == 0 ? VALUE_OK : VALUE_NOMEM;
    default:
      break;
  }
  /* a value that is only spaces is missing too */
  {
    size_t k = 0;
    while (k < len && IS_SPACE(s[k])) k++;
    if (k == len) {
      if (c->type == LQ_BOOLEAN) c->bools[row] = LQ_MISSING_BOOL;
      else c->numbers[row] = NAN;
      return VALUE_OK;
    }
  }
  return VALUE_BAD;
}

static const char *type_article(lq_type type) {
  switch (type) {
    case LQ_NUMBER: return "a number";
    case LQ_TIME: return "an ISO 8601 date or time";
    case LQ_BOOLEAN: return "a boolean (true/false, yes/no, 1/0)";
    default: return "valid";
  }
}

/* Rows in the file from its size and the sample's bytes per row: one allocation instead of many. */
static size_t estimate_rows(loader *ld, size_t bytes_sampled, size_t rows_sampled) {
  long size;
  if (rows_sampled == 0 || bytes_sampled == 0) return 0;
  if (ld->rd.input == NULL) return (size_t)((double)ld->rd.len / ((double)bytes_sampled / (double)rows_sampled) * 1.02) + 16;
  size = lq_input_size(ld->rd.input);   /* -1 for gzip and pipes: the arrays grow as they go */
  if (size <= 0) return 0;
  return (size_t)((double)size / ((double)bytes_sampled / (double)rows_sampled) * 1.02) + 16;
}

/* The reason a malformed record is rejected; last: the line a record cut to its first ran on to
** (0: it was not cut). */
static void malformed_reason(char *reason, size_t size, int st, size_t n, size_t nfields, uint64_t last) {
  if (st == REC_BAD_QUOTE)
    snprintf(reason, size, "unterminated quoted field: its opening quote is never closed");
  else if (st == REC_BAD_AFTER_QUOTE && last == 0)
    snprintf(reason, size, "unexpected text after the closing quote of a quoted field");
  else if (st == REC_BAD_AFTER_QUOTE)
    snprintf(reason, size, "the quoted field opened on this line closes on line %llu with text "
             "after its closing quote; the lines after this one are read as records of their own",
             (unsigned long long)last);
  else if (last != 0)
    snprintf(reason, size, "expected %zu field%s, found %zu: a quoted field opened on this line "
             "runs on to line %llu; the lines after this one are read as records of their own",
             n, n == 1 ? "" : "s", nfields, (unsigned long long)last);
  else
    snprintf(reason, size, "expected %zu field%s, found %zu", n, n == 1 ? "" : "s", nfields);
}

/* The table column made from field f of the record, or -1 (a column left out by 'columns'). */
static int column_of_field(const loader *ld, size_t f) {
  int i;
  if (ld->planned) return f < (size_t)ld->ninput ? (int)f : -1;
  for (i = 0; i < ld->ncols && (size_t)ld->src[i] <= f; i++)
    if ((size_t)ld->src[i] == f) return i;
  return -1;
}

/* A record that does not parse, or has the wrong number of fields. One that runs over several
** lines is cut to its first (see cut_to_first_line), so every line is loaded or rejected. */
static int reject_malformed(loader *ld, int st) {
  reader *rd = &ld->rd;
  const size_t n = (size_t)ld->ninput;
  char reason[200];
  int col = -1;
  size_t i;
  uint64_t last = cut_to_first_line(rd);
  if (st == REC_BAD_QUOTE || st == REC_BAD_AFTER_QUOTE) {
    col = rd->bad_field < n ? column_of_field(ld, rd->bad_field) : -1;
  } else if (last != 0) {
    for (i = 0; i < rd->nfields && i < rd->fields_cap && col < 0; i++) {
      const field *f = &rd->fields[i];
      if (f->quoted && i < n && memchr(rd->buf + f->start, '\n', f->len) != NULL) col = column_of_field(ld, i);
    }
  }
  malformed_reason(reason, sizeof reason, st, n, rd->nfields, last);
  if (last != 0 && st != REC_BAD_QUOTE && ld->borrowed) {
    /* a chunk's lines are counted from its start: the line named is put right when it is joined */
    line_fixup *fx;
    if (ld->nfixups == ld->fixups_cap) {
      size_t ncap = ld->fixups_cap ? ld->fixups_cap * 2 : 16;
      fx = (line_fixup *)lmem(ld, ld->fixups, ld->fixups_cap * sizeof *fx, ncap * sizeof *fx);
      if (fx == NULL) return fail_memory(ld);
      ld->fixups = fx;
      ld->fixups_cap = ncap;
    }
    fx = &ld->fixups[ld->nfixups++];
    fx->reject = ld->t->nrejects;
    fx->status = st;
    fx->nfields = rd->nfields;
    fx->last = last;
  }
  return reject(ld, col, reason);
}

/* A value of an output column of the plan into the row being built: numbers and times in the
** column's locale and formats, the rest as store_value stores them. */
static int store_planned(loader *ld, int col, const char *s, size_t len, int quoted) {
  const lq_plan_column *pc = ld->plan.cols[ld->src[col]];
  lq_column *c = ld->t->cols[col];
  field f;
  if (len > 0 && c->type == LQ_NUMBER && pc->numeric) {
    double v;
    if (lq_plan_number(pc, s, len, &v) != LQ_PLAN_OK) return VALUE_BAD;
    c->numbers[ld->t->nrows] = v;
    return VALUE_OK;
  }
  if (len > 0 && c->type == LQ_TIME && (pc->date_formats || pc->has_tz)) {
    double v;
    if (!lq_plan_time(pc, s, len, &v)) return VALUE_BAD;
    c->numbers[ld->t->nrows] = v;
    return VALUE_OK;
  }
  f.start = 0;
  f.len = len;
  f.quoted = (unsigned char)quoted;
  f.escaped = 0;
  return store_value(ld, col, &f, s, len);
}

/* Column i's value in the record: its bytes (doubled quotes undone, or made by the plan), and
** whether it was quoted. NULL on no memory. */
static inline const char *column_value(loader *ld, int i, size_t *len, int *quoted) {
  reader *rd = &ld->rd;
  const field *f;
  if (ld->planned) return lq_plan_value(&ld->plan, ld->src[i], ld->views, rd->nfields, len, quoted);
  f = &rd->fields[ld->src[i]];
  *quoted = f->quoted;
  if (!f->escaped) {
    *len = f->len;
    return rd->buf + f->start;
  }
  return field_bytes(rd, (size_t)ld->src[i], len);
}

/* Why column i's value does not fit: "a number", or the plan's locale or formats and where the
** value is in the file. */
static void describe_type(const loader *ld, int i, char *what, size_t size) {
  lq_type type = ld->t->cols[i]->type;
  const lq_plan_column *pc;
  if (!ld->planned) {
    snprintf(what, size, "%s", type_article(type));
    return;
  }
  pc = ld->plan.cols[ld->src[i]];
  if ((type == LQ_NUMBER && pc->numeric) || (type == LQ_TIME && (pc->date_formats || pc->has_tz)))
    lq_plan_describe(pc, type == LQ_TIME, what, size);
  else
    snprintf(what, size, "%s", type_article(type));
  if (pc->nsources > 0) {   /* where it is in the file: the mapping renamed it */
    size_t used = strlen(what);
    snprintf(what + used, size - used, " (the file's column %d, '%s')",
             ld->plan.source[ld->src[i] * LQ_PLAN_SOURCES] + 1, pc->sources[0]);
  }
}

/* The record's values into a new row. LQ_CSV_OK whether the row was kept or rejected; else the
** status that ends the load. Tags are stored once every other value fits: a rejected row leaves
** nothing in a dictionary (the categories it queued are dropped too), so the codes are those of
** the loaded rows' values in their order, however the file was split. */
static int load_record(loader *ld) {
  lq_table *t = ld->t;
  const int n = ld->ncols;
  const size_t queued = ld->npending, queued_bytes = ld->pending_bytes_len;
  int i, status;
  if (t->nrows == t->cap) {
    size_t want = t->cap + t->cap / 2;
    if (want < 1024) want = 1024;
    if (lq_table_reserve(t, want) != 0) return fail_memory(ld);
  }
  if (ld->planned && record_views(ld) != 0) return fail_memory(ld);
  for (i = 0; i < n; i++) {
    size_t len;
    int quoted, v;
    const char *s;
    if (ld->has_tags && t->cols[i]->type == LQ_TAGS) {   /* later; missing is known now */
      if (ld->required[i]) {
        if ((s = column_value(ld, i, &len, &quoted)) == NULL) return fail_memory(ld);
        if (len == 0 && !quoted) goto required;
      }
      continue;
    }
    if ((s = column_value(ld, i, &len, &quoted)) == NULL) return fail_memory(ld);
    v = ld->planned ? store_planned(ld, i, s, len, quoted) : store_value(ld, i, &ld->rd.fields[ld->src[i]], s, len);
    if (v == VALUE_NOMEM) return fail_memory(ld);
    if (v == VALUE_BAD) {
      char what[200];
      lq_table_cancel_row(t);
      ld->npending = queued;   /* the row's queued categories go too */
      ld->pending_bytes_len = queued_bytes;
      describe_type(ld, i, what, sizeof what);
      return reject_value(ld, i, s, len, what);
    }
    if (ld->required[i] && lq_column_is_missing(t->cols[i], t->nrows)) goto required;
  }
  for (i = 0; ld->has_tags && i < n; i++) {
    size_t len;
    int quoted;
    const char *s;
    field f;
    if (t->cols[i]->type != LQ_TAGS) continue;
    if ((s = column_value(ld, i, &len, &quoted)) == NULL) return fail_memory(ld);
    f.start = 0;
    f.len = len;
    f.quoted = (unsigned char)quoted;
    f.escaped = 0;
    if (store_value(ld, i, &f, s, len) != VALUE_OK) return fail_memory(ld);
  }
  lq_table_end_row(t);
  return LQ_CSV_OK;
required:
  lq_table_cancel_row(t);
  ld->npending = queued;
  ld->pending_bytes_len = queued_bytes;
  if ((status = reject(ld, i, "no value, and this column is required")) != LQ_CSV_OK) return status;
  return LQ_CSV_OK;
}

/* A record start of a chunk, kept while few: see join_chunks. */
#if !defined(LQ_CSV_STARTS_KEPT)
#define LQ_CSV_STARTS_KEPT 4096
#endif

static int note_record_start(loader *ld, uint64_t offset) {
  record_start *r;
  if (ld->nstarts == ld->starts_cap) {
    size_t ncap = ld->starts_cap ? ld->starts_cap * 2 : 64;
    if (ld->starts_cap >= LQ_CSV_STARTS_KEPT) return 0;
    r = (record_start *)lmem(ld, ld->starts, ld->starts_cap * sizeof *r, ncap * sizeof *r);
    if (r == NULL) return -1;
    ld->starts = r;
    ld->starts_cap = ncap;
  }
  r = &ld->starts[ld->nstarts++];
  r->offset = offset;
  r->line = ld->rd.line;
  r->records = ld->records;
  r->rows = ld->t->nrows;
  r->rejects = ld->t->nrejects;
  r->fixups = ld->nfixups;
  return 0;
}

/* Records into rows until the input ends or a record starts at stop_at or after. */
static int load_rows(loader *ld) {
  reader *rd = &ld->rd;
  int st, status, batch = 0;
  if (!ld->months_ready) {
    lq_month_cache_init(&ld->months);
    ld->months_ready = 1;
  }
  if (ld->recent == NULL) {
    size_t k, n = (size_t)(ld->ncols > 0 ? ld->ncols : 1) * RECENT_VALUES;
    if ((ld->recent = (recent_value *)lmem(ld, NULL, 0, n * sizeof(recent_value))) == NULL) return fail_memory(ld);
    for (k = 0; k < n; k++) ld->recent[k].code = -1;
  }
  for (;;) {
    uint64_t at = rd->base + rd->pos;
    if (at >= ld->stop_at) break;
    if (ld->starts != NULL && note_record_start(ld, at) != 0) return fail_memory(ld);
    st = next_record(ld);
    if (st < 0) return io_failure(ld, st);
    if (st == REC_END) break;
    if (st == REC_OK && is_blank_record(rd)) continue;
    ld->records++;
    if (st == REC_BAD_QUOTE || st == REC_BAD_AFTER_QUOTE || rd->nfields != (size_t)ld->ninput) {
      if ((status = reject_malformed(ld, st)) != LQ_CSV_OK) return status;
      continue;
    }
    if ((status = load_record(ld)) != LQ_CSV_OK) return status;
    if (++batch == LQ_CSV_BATCH) {
      batch = 0;
      if (flush_categories(ld) != 0) return fail_memory(ld);
    }
  }
  if (flush_categories(ld) != 0) return fail_memory(ld);
  return LQ_CSV_OK;
}

/* A zero byte in the first LQ_CSV_CHUNK bytes: an image, a spreadsheet, a zip or a UTF-16 text, not
** CSV. Read as text it would give rows of noise, or none, and no reason why. The same bytes are
** looked at whether the input is a string (all in the buffer) or a file (its first read). */
static int refuse_binary(loader *ld) {
  const reader *rd = &ld->rd;
  const char *zero = (const char *)memchr(rd->buf, '\0', rd->len < LQ_CSV_CHUNK ? rd->len : LQ_CSV_CHUNK);
  if (zero == NULL) return LQ_CSV_OK;
  if (rd->len >= 4 && memcmp(rd->buf, "PK\x03\x04", 4) == 0)
    snprintf(ld->err, ld->errlen, "%s is not a CSV file: it is a zip archive (an .xlsx workbook or a .zip): "
             "save it as CSV, or unzip it", ld->o->source);
  else if (rd->len >= 2 && ((rd->buf[0] == '\xFF' && rd->buf[1] == '\xFE') || (rd->buf[0] == '\xFE' && rd->buf[1] == '\xFF')))
    snprintf(ld->err, ld->errlen, "%s is not a CSV file leadq can read: it is UTF-16 text; save it as UTF-8 CSV",
             ld->o->source);
  else
    snprintf(ld->err, ld->errlen, "%s is not a CSV file: it holds binary data (a zero byte at byte %zu)",
             ld->o->source, (size_t)(zero - rd->buf) + 1);
  return LQ_CSV_EUSAGE;
}

/* ---- reading a file on several threads ----
**
** The data after the header is cut into chunks, each cut moved forward to just after a '\n', and
** each chunk is parsed on some thread into a table of its own as if a record started at its cut.
** That is a guess: the '\n' may lie inside a quoted field. Settling the quotes first would cost a
** pass over the file on one thread (a quote-parity pass is not enough: a stray quote's recovery
** cuts a record at a line end that parity calls quoted). So the guess is checked instead, after the
** threads end, joining the chunks in order: chunk k's records end at the first record start at or
** after its cut, a true record start since chunk 0 starts at one and each chunk before it was
** joined. If that offset is one of the record starts chunk k+1 kept, parsing from there gives the
** same records whoever does it: chunk k+1's rows from there on are the file's, those before are
** dropped. If not (a quoted field of many lines across the cut), chunk k reads on through chunk
** k+1 itself, on this thread. Either way every row, reject and line number is the one-thread one;
** only the time differs. Types come from the sample read before the split, so they agree too.
**
** Chunk 0 is read by this thread straight into the table; the others into tables of their own on
** malloc (the caller's allocator may not be shared between threads), appended after the join
** (table_append.c: codes re-coded, columns copied on the threads). Each chunk costs a dictionary of
** its own per column and a copy, which on 1M leads with two columns of 100k distinct values made
** four chunks a thread take 1.7 times the CPU of one thread, and one chunk a thread 1.3 times: one
** chunk a thread it is. Chunks are still taken from a counter as threads come free (tests cut
** files into thousands). */

#if !defined(LQ_CSV_CHUNKS_PER_THREAD)
#define LQ_CSV_CHUNKS_PER_THREAD 1
#endif
#define LQ_CSV_MAX_CHUNKS 65536

typedef struct chunk {
  loader own;             /* the chunk's loader (chunk 0 uses the main one) */
  loader *ld;
  lq_input input;
  uint64_t start, end;    /* its first byte (just after a '\n') and the next chunk's */
  int status;             /* LQ_CSV_* of its parse */
  int joined;             /* its rows from first_row on are the file's */
  char err[LQ_MESSAGE_MAX];
  size_t first_row, first_reject, first_fixup;
  uint64_t line_base, record_base;   /* what its line and record numbers are counted from */
  uint64_t stopped_at, stop_line, stop_records;  /* where its records ended */
  uint64_t bytes_done;    /* the offset read up to, for progress (atomic) */
} chunk;

typedef struct parallel_read {
  const char *path;
  loader *main;
  chunk *chunks;
  int nchunks;
  int next;               /* the next chunk to parse (atomic) */
} parallel_read;

/* Bytes read by every chunk (and the header), for the main loader's progress calls. */
static double parallel_bytes_done(const parallel_read *job) {
  double total = (double)job->chunks[0].start;
  int k;
  for (k = 0; k < job->nchunks; k++) {
    uint64_t at = __atomic_load_n(&job->chunks[k].bytes_done, __ATOMIC_RELAXED);   /* an offset */
    if (at > job->chunks[k].end) at = job->chunks[k].end;   /* a chunk reads a little past its end */
    if (at > job->chunks[k].start) total += (double)(at - job->chunks[k].start);
  }
  return total;
}

/* The chunk's reader on its own handle of the file, from `offset` on. */
static int chunk_open(parallel_read *job, chunk *c, uint64_t offset) {
  loader *ld = c->ld;
  reader *rd = &ld->rd;
  size_t cap = LQ_CSV_CHUNK;
  if (c->end - offset + 4096 < cap) cap = (size_t)(c->end - offset + 4096);   /* small chunks in tests */
  if (lq_input_open_at(&c->input, job->path, (long long)offset, ld->err, ld->errlen) != 0) return LQ_CSV_EIO;
  rd->input = &c->input;
  if ((rd->buf = (char *)lmem(ld, NULL, 0, cap + LQ_CSV_PAD)) == NULL) return fail_memory(ld);
  rd->cap = cap;
  rd->len = rd->pos = 0;
  rd->base = offset;
  rd->eof = 0;
  rd->mark = NO_MARK;
  return LQ_CSV_OK;
}

/* Its buffer and file handle go once it is parsed: thousands of chunks may wait to be joined. */
static void chunk_release(chunk *c) {
  reader *rd = &c->ld->rd;
  if (rd->buf) lmem(c->ld, rd->buf, rd->cap + LQ_CSV_PAD, 0);
  if (rd->input) lq_input_close(rd->input);
  rd->buf = NULL;
  rd->input = NULL;
}

/* A loader for chunk c like the main one (same columns, types, plan), on malloc. */
static int chunk_init(parallel_read *job, chunk *c) {
  const loader *m = job->main;
  loader *ld = &c->own;
  int i;
  c->ld = ld;
  ld->o = m->o;
  ld->alloc.fn = lq_system_alloc;
  ld->alloc.ud = NULL;
  ld->rd.alloc = &ld->alloc;
  ld->err = c->err;
  ld->errlen = sizeof c->err;
  ld->borrowed = 1;
  ld->ncols = m->ncols;
  ld->ninput = m->ninput;
  ld->names = m->names;
  ld->header_names = m->header_names;
  ld->declared = m->declared;
  ld->required = m->required;
  ld->src = m->src;
  ld->sampled = m->sampled;
  ld->has_tags = m->has_tags;
  ld->planned = m->planned;
  ld->stop_at = c->end;
  ld->job = job;
  ld->bytes_done = &c->bytes_done;
  reader_set_separator(&ld->rd, m->rd.sep);
  if (m->planned) {   /* the plan's tables are only read; its scratch is each reader's own */
    ld->plan = m->plan;
    ld->plan.alloc = ld->alloc;
    ld->plan.scratch = NULL;
    ld->plan.scratch_cap = ld->plan.scratch_len = 0;
  }
  ld->col_starts = (size_t *)lmem(ld, NULL, 0, ((size_t)ld->ncols + 1) * sizeof(size_t));
  ld->starts = (record_start *)lmem(ld, NULL, 0, 64 * sizeof *ld->starts);
  ld->t = lq_table_new(ld->alloc);
  if (ld->col_starts == NULL || ld->starts == NULL || ld->t == NULL) return fail_memory(ld);
  ld->starts_cap = 64;
  ld->t->flags = m->t->flags;
  for (i = 0; i < ld->ncols; i++) {
    const lq_column *mc = m->t->cols[i];
    if (lq_table_add_column(ld->t, mc->name, mc->type) != i) return fail_memory(ld);
    ld->t->cols[i]->tag_separator = mc->tag_separator;
  }
  if (m->sampled >= 100 && m->sample_bytes > 0) {   /* sized as the main table is */
    double rows = (double)(c->end - c->start) / ((double)m->sample_bytes / (double)m->sampled) * 1.02 + 16;
    if (rows < (double)((size_t)1 << 32) && lq_table_reserve(ld->t, (size_t)rows) == 0)
      for (i = 0; i < ld->ncols; i++)
        if (ld->t->cols[i]->type == LQ_TEXT)
          (void)lq_column_reserve_text(ld->t, i, (size_t)((double)m->sample_field_bytes[i] / (double)m->sampled * rows * 1.05) + 64);
  }
  return chunk_open(job, c, c->start);
}

static void chunk_note_stop(chunk *c) {
  const loader *ld = c->ld;
  c->stopped_at = ld->rd.base + ld->rd.pos;
  c->stop_line = ld->rd.line;
  c->stop_records = ld->records;
}

static void parse_chunk(parallel_read *job, chunk *c) {
  c->status = chunk_init(job, c);
  if (c->status == LQ_CSV_OK) c->status = load_rows(c->ld);
  chunk_note_stop(c);
  chunk_release(c);
}

static void *parallel_worker(void *arg) {
  parallel_read *job = (parallel_read *)arg;
  for (;;) {
    int k = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
    if (k >= job->nchunks) return NULL;
    parse_chunk(job, &job->chunks[k]);
  }
}

/* Where the first line that starts at or after `from` starts (size when none does). */
static uint64_t next_line_start(int fd, uint64_t from, uint64_t size) {
  char window[4096];
  uint64_t at = from - 1;   /* a '\n' just before the cut makes the cut itself a line start */
  while (at < size) {
    ssize_t got = pread(fd, window, sizeof window, (off_t)at);
    const char *nl;
    if (got <= 0) return size;
    if ((nl = (const char *)memchr(window, '\n', (size_t)got)) != NULL) return at + (uint64_t)(nl - window) + 1;
    at += (uint64_t)got;
  }
  return size;
}

/* The chunks of the data from the reader's position: 0 when the file is read on this thread alone
** (one thread asked, not a plain file, or too small to be worth it), else their count. */
static int plan_chunks(loader *ld, parallel_read *job) {
  const lq_csv_options *o = ld->o;
  const reader *rd = &ld->rd;
  uint64_t data_start = rd->base + rd->pos, avail, size_each, prev;
  long size;
  int n, k, fd, threads = o->threads;
  if (threads <= 1 || ld->path == NULL || rd->input == NULL || rd->input->is_gzip) return 0;
  if ((size = lq_input_size(rd->input)) < 0 || (uint64_t)size <= data_start) return 0;
  avail = (uint64_t)size - data_start;
  size_each = o->chunk_bytes > 0 ? (uint64_t)o->chunk_bytes : avail / ((uint64_t)threads * LQ_CSV_CHUNKS_PER_THREAD);
  if (o->chunk_bytes == 0 && size_each < LQ_CSV_SPLIT_MIN) size_each = LQ_CSV_SPLIT_MIN;
  if (size_each < avail / LQ_CSV_MAX_CHUNKS + 1) size_each = avail / LQ_CSV_MAX_CHUNKS + 1;
  if (avail <= size_each) return 0;
  n = (int)((avail + size_each - 1) / size_each);
  job->chunks = (chunk *)calloc((size_t)n, sizeof(chunk));
  if (job->chunks == NULL) return 0;   /* read on one thread, as if none were asked */
  if ((fd = open(ld->path, O_RDONLY)) < 0) {
    free(job->chunks);
    job->chunks = NULL;
    return 0;
  }
  job->chunks[0].start = prev = data_start;
  job->chunks[0].ld = ld;
  for (k = 1, job->nchunks = 1; k < n; k++) {
    uint64_t s = next_line_start(fd, data_start + (uint64_t)k * size_each, (uint64_t)size);
    if (s <= prev || s >= (uint64_t)size) continue;   /* two cuts in one line, or none left */
    job->chunks[job->nchunks - 1].end = s;
    job->chunks[job->nchunks++].start = prev = s;
  }
  close(fd);
  job->chunks[job->nchunks - 1].end = (uint64_t)size;
  if (job->nchunks == 1) {
    free(job->chunks);
    job->chunks = NULL;
    return 0;
  }
  return job->nchunks;
}

/* Chunk c's record start at `offset`, or NULL when it kept none there. */
static const record_start *find_record_start(const chunk *c, uint64_t offset) {
  const loader *ld = c->ld;
  size_t lo = 0, hi = ld->nstarts;
  if (c->status != LQ_CSV_OK || ld->starts == NULL) return NULL;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ld->starts[mid].offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo < ld->nstarts && ld->starts[lo].offset == offset ? &ld->starts[lo] : NULL;
}

/* Settle where each chunk's rows begin (see the note above); reads on where a guess was wrong. */
static int join_chunks(parallel_read *job) {
  loader *m = job->main;
  chunk *cur = &job->chunks[0];
  int k;
  cur->joined = 1;
  cur->line_base = cur->record_base = 0;   /* the main loader counts from the file's start */
  for (k = 1; k < job->nchunks; k++) {
    chunk *c = &job->chunks[k];
    const record_start *r;
    if (cur->status != LQ_CSV_OK) break;
    r = find_record_start(c, cur->stopped_at);
    if (r != NULL) {
      if (r != &c->ld->starts[0]) m->t->read_chunks[1]++;
      c->joined = 1;
      c->first_row = r->rows;
      c->first_reject = r->rejects;
      c->first_fixup = r->fixups;
      c->line_base = cur->line_base + cur->stop_line - r->line;
      c->record_base = cur->record_base + cur->stop_records - r->records;
      cur = c;
      continue;
    }
    /* the guess was wrong this far in: the chunk before reads on through this one */
    m->t->read_chunks[2]++;
    cur->ld->stop_at = c->end;
    if (cur->ld == m) {
      cur->status = load_rows(m);
      chunk_note_stop(cur);
    } else {
      cur->status = chunk_open(job, cur, cur->stopped_at);
      if (cur->status == LQ_CSV_OK) cur->status = load_rows(cur->ld);
      chunk_note_stop(cur);
      chunk_release(cur);
    }
  }
  if (cur->status != LQ_CSV_OK) {
    if (cur->ld != m) snprintf(m->err, m->errlen, "%s", cur->err);
    return cur->status;
  }
  return LQ_CSV_OK;
}

/* A joined chunk's rejects into the main table, its line and record numbers the file's. */
static int append_rejects(loader *m, chunk *c) {
  const lq_table *t = c->ld->t;
  size_t i, fx = c->first_fixup;
  for (i = c->first_reject; i < t->nrejects; i++) {
    const lq_reject *r = &t->rejects[i];
    const char *reason = r->reason;
    char rewritten[200];
    while (fx < c->ld->nfixups && c->ld->fixups[fx].reject < i) fx++;
    if (fx < c->ld->nfixups && c->ld->fixups[fx].reject == i) {
      const line_fixup *f = &c->ld->fixups[fx];
      malformed_reason(rewritten, sizeof rewritten, f->status, (size_t)m->ninput, f->nfields, f->last + c->line_base);
      reason = rewritten;
    }
    if (lq_table_add_reject(m->t, r->line + c->line_base, r->record + c->record_base, r->column, reason) != 0)
      return fail_memory(m);
  }
  return LQ_CSV_OK;
}

/* The joined chunks' rows into the main table on the read's threads, a column of a chunk at a
** time: with as many chunks as threads, a chunk each would leave the copy on one. */
typedef struct copy_job {
  lq_table *t;
  lq_table_part *parts;
  int nparts;
  int next;               /* atomic: part * ncols + column */
} copy_job;

static void *copy_worker(void *arg) {
  copy_job *job = (copy_job *)arg;
  const int ncols = job->t->ncols;
  for (;;) {
    int k = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
    if (ncols == 0 || k >= job->nparts * ncols) return NULL;
    lq_table_append_copy(job->t, &job->parts[k / ncols], k % ncols);
  }
}

static int append_chunks(loader *m, parallel_read *pr, int threads) {
  copy_job job;
  pthread_t ids[LQ_CSV_MAX_THREADS];
  int started[LQ_CSV_MAX_THREADS];
  int k, t, ok;
  memset(&job, 0, sizeof job);
  job.t = m->t;
  if ((job.parts = (lq_table_part *)calloc((size_t)pr->nchunks, sizeof *job.parts)) == NULL) return fail_memory(m);
  for (k = 1; k < pr->nchunks; k++) {
    chunk *c = &pr->chunks[k];
    if (!c->joined) continue;
    if (append_rejects(m, c) != LQ_CSV_OK) break;
    job.parts[job.nparts].src = c->ld->t;
    job.parts[job.nparts++].from = c->first_row;
  }
  ok = k == pr->nchunks && lq_table_append_prepare(m->t, job.parts, job.nparts) == 0;
  if (ok) {
    for (t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, copy_worker, &job) == 0;
    (void)copy_worker(&job);
    for (t = 1; t < threads; t++)
      if (started[t]) pthread_join(ids[t], NULL);
  }
  lq_table_append_finish(m->t, job.parts, job.nparts, ok);
  free(job.parts);
  return ok ? LQ_CSV_OK : fail_memory(m);
}

/* The data rows on o->threads threads; 1 when it read them, 0 when it left them to load_rows. */
static int load_rows_parallel(loader *ld, int *status) {
  parallel_read job;
  pthread_t ids[LQ_CSV_MAX_THREADS];
  int started[LQ_CSV_MAX_THREADS];
  int threads = ld->o->threads, t, k, st;
  memset(&job, 0, sizeof job);
  job.path = ld->path;
  job.main = ld;
  if (plan_chunks(ld, &job) == 0) return 0;
  if (threads > LQ_CSV_MAX_THREADS) threads = LQ_CSV_MAX_THREADS;
  if (threads > job.nchunks) threads = job.nchunks;
  job.next = 1;
  ld->job = &job;
  ld->bytes_done = &job.chunks[0].bytes_done;
  ld->stop_at = job.chunks[0].end;
  ld->strict = 0;   /* the first reject of the file is known once the chunks are joined */
  for (t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, parallel_worker, &job) == 0;
  job.chunks[0].status = load_rows(ld);   /* chunk 0, straight into the table */
  chunk_note_stop(&job.chunks[0]);
  (void)parallel_worker(&job);             /* then whatever chunks are left */
  for (t = 1; t < threads; t++)
    if (started[t]) pthread_join(ids[t], NULL);
  st = join_chunks(&job);
  ld->stop_at = UINT64_MAX;
  ld->t->read_chunks[0] = (unsigned)job.nchunks;
  if (st == LQ_CSV_OK) st = append_chunks(ld, &job, threads);
  for (k = 1; k < job.nchunks; k++) {
    chunk *c = &job.chunks[k];
    if (c->ld != NULL) loader_free(c->ld);
    if (c->input.file != NULL) lq_input_close(&c->input);
  }
  free(job.chunks);
  ld->job = NULL;
  ld->bytes_done = NULL;
  ld->strict = ld->o->strict;
  if (st == LQ_CSV_OK && ld->strict && ld->t->nrejects > 0) {
    lq_reject_message(ld->t, &ld->t->rejects[0], ld->err, ld->errlen);
    st = LQ_CSV_EDATA;
  }
  *status = st;
  return 1;
}

static int load(loader *ld, lq_table **out) {
  const lq_csv_options *o = ld->o;
  reader *rd = &ld->rd;
  int st;
  *out = NULL;
  rd->mark = NO_MARK;
  rd->line = o->first_line;
  if ((st = reader_fill(rd)) != 0) return io_failure(ld, st);
  if ((st = refuse_binary(ld)) != LQ_CSV_OK) return st;
  if (rd->len >= 3 && memcmp(rd->buf, "\xEF\xBB\xBF", 3) == 0) rd->pos = 3;
  if (!o->separator) {
    /* the whole first line must be in the buffer to count its separators */
    rd->mark = rd->pos;
    while (!rd->eof && !first_line_complete(rd))
      if ((st = reader_fill(rd)) != 0) return io_failure(ld, st);
    rd->mark = NO_MARK;
  }
  reader_set_separator(rd, o->separator ? o->separator : detect_separator(rd));
  if ((st = read_header(ld)) != LQ_CSV_OK) return st;
  if ((st = decide_types(ld)) != LQ_CSV_OK) return st;
  if ((st = build_columns(ld)) != LQ_CSV_OK) return st;
  if (ld->sampled >= 100) {
    /* one allocation per array instead of a series of copies (and page faults) */
    size_t rows = estimate_rows(ld, ld->sample_bytes, ld->sampled);
    int i;
    /* only an estimate: if it cannot be had, the arrays grow as they go */
    if (rows > 0 && rows < ((size_t)1 << 32) && lq_table_reserve(ld->t, rows) == 0) {
      for (i = 0; i < ld->ncols; i++) {
        double per_row = (double)ld->sample_field_bytes[i] / (double)ld->sampled;
        if (ld->t->cols[i]->type == LQ_TEXT)
          (void)lq_column_reserve_text(ld->t, i, (size_t)(per_row * (double)rows * 1.05) + 64);
      }
    }
  }
  if (!load_rows_parallel(ld, &st)) st = load_rows(ld);
  if (st != LQ_CSV_OK) return st;
  lq_table_shrink(ld->t);
  *out = ld->t;
  ld->t = NULL;
  return LQ_CSV_OK;
}

static void loader_init(loader *ld, const lq_csv_options *o, lq_allocator a, char *err, size_t errlen) {
  memset(ld, 0, sizeof *ld);
  ld->o = o;
  ld->alloc = a;
  ld->rd.alloc = &ld->alloc;
  ld->err = err;
  ld->errlen = errlen;
  ld->strict = o->strict;
  ld->stop_at = UINT64_MAX;
  if (errlen > 0) err[0] = '\0';
}

int lq_csv_read_file(const char *path, const lq_csv_options *o, lq_allocator a,
                     lq_table **out, char *err, size_t errlen) {
  loader ld;
  lq_input input;
  int status;
  loader_init(&ld, o, a, err, errlen);
  *out = NULL;
  if (lq_input_open(&input, path, err, errlen) != 0) return LQ_CSV_EIO;
  ld.rd.input = &input;
  ld.path = path;
  ld.rd.cap = LQ_CSV_CHUNK;
  ld.rd.buf = (char *)lmem(&ld, NULL, 0, ld.rd.cap + LQ_CSV_PAD);
  if (ld.rd.buf == NULL) {
    loader_free(&ld);
    return fail_memory(&ld);
  }
  status = load(&ld, out);
  loader_free(&ld);
  return status;
}

int lq_csv_read_string(const char *data, size_t len, const lq_csv_options *o, lq_allocator a,
                       lq_table **out, char *err, size_t errlen) {
  loader ld;
  int status;
  loader_init(&ld, o, a, err, errlen);
  *out = NULL;
  ld.rd.cap = len;
  ld.rd.buf = (char *)lmem(&ld, NULL, 0, len + LQ_CSV_PAD);
  if (ld.rd.buf == NULL) return fail_memory(&ld);
  memcpy(ld.rd.buf, data, len);
  memset(ld.rd.buf + len, 0, LQ_CSV_PAD);
  ld.rd.buf[len] = '\n';
  ld.rd.len = len;
  ld.rd.eof = 1;
  status = load(&ld, out);
  loader_free(&ld);
  return status;
}

void lq_csv_options_init(lq_csv_options *o) {
  memset(o, 0, sizeof *o);
  o->tag_separator = ';';
  o->header = 1;
  o->infer_rows = LQ_CSV_INFER_ROWS;
  o->first_line = 1;
  o->source = "[string]";
}
