/* A `leadq state` export line checked and cut in one pass (state_line.h). The profile is checked
** as strictly as leadq.json decodes it (RFC 8259, well-formed UTF-8, no key twice) but not built:
** an import only copies its text. Whatever this reader does not take on (nested values, escaped
** keys, numbers it would need to convert) is left to the general reader, never guessed at. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "state_line.h"

/* Tunable: keys of a profile compared for duplicates here; a profile with more goes the long way. */
#if !defined(LQ_STATE_LINE_MAX_KEYS)
#define LQ_STATE_LINE_MAX_KEYS 64
#endif

typedef struct {
  const char *s;
  size_t i, n;
} cursor;

int lq_hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void skip_space(cursor *c) {
  while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\r' || c->s[c->i] == '\n')) c->i++;
}

static int literal(cursor *c, const char *word) {
  size_t len = strlen(word);
  if (c->n - c->i < len || memcmp(c->s + c->i, word, len) != 0) return 0;
  c->i += len;
  return 1;
}

/* Four hex digits at i: their value, or -1. */
static long hex4(const cursor *c, size_t i) {
  long v = 0;
  size_t k;
  if (c->n - i < 4) return -1;
  for (k = 0; k < 4; k++) {
    int d = lq_hex_value((unsigned char)c->s[i + k]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* The well-formed UTF-8 character at i (the first byte >= 0x80): its length, or 0. */
static size_t utf8_length(const cursor *c, size_t i) {
  unsigned char b = (unsigned char)c->s[i], lo = 0x80, hi = 0xBF;
  size_t len, k;
  if (b >= 0xC2 && b <= 0xDF) len = 2;
  else if (b == 0xE0) { len = 3; lo = 0xA0; }
  else if (b == 0xED) { len = 3; hi = 0x9F; }
  else if (b >= 0xE1 && b <= 0xEF) len = 3;
  else if (b == 0xF0) { len = 4; lo = 0x90; }
  else if (b >= 0xF1 && b <= 0xF3) len = 4;
  else if (b == 0xF4) { len = 4; hi = 0x8F; }
  else return 0;
  if (c->n - i < len) return 0;
  if ((unsigned char)c->s[i + 1] < lo || (unsigned char)c->s[i + 1] > hi) return 0;
  for (k = 2; k < len; k++) {
    unsigned char t = (unsigned char)c->s[i + k];
    if (t < 0x80 || t > 0xBF) return 0;
  }
  return len;
}

/* A string at the opening quote: 1 and the cursor past it; *escaped: whether it held a backslash. */
static int json_string(cursor *c, int *escaped) {
  *escaped = 0;
  c->i++;
  while (c->i < c->n) {
    unsigned char b = (unsigned char)c->s[c->i];
    if (b == '"') {
      c->i++;
      return 1;
    } else if (b < 0x20) {
      return 0;
    } else if (b == '\\') {
      unsigned char e;
      *escaped = 1;
      if (c->i + 1 >= c->n) return 0;
      e = (unsigned char)c->s[c->i + 1];
      if (e == 'u') {
        long cp = hex4(c, c->i + 2);
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return 0;
        c->i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a high surrogate: its low half must follow */
          long low;
          if (c->n - c->i < 6 || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u') return 0;
          low = hex4(c, c->i + 2);
          if (low < 0xDC00 || low > 0xDFFF) return 0;
          c->i += 6;
        }
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        c->i += 2;
      } else {
        return 0;
      }
    } else if (b >= 0x80) {
      size_t len = utf8_length(c, c->i);
      if (len == 0) return 0;
      c->i += len;
    } else {
      c->i++;
    }
  }
  return 0;
}

/* A number as RFC 8259 writes it; one that overflows a double (leadq.json refuses it) is left to the
** long way, and so is one too long to convert here. */
static int number(cursor *c) {
  size_t start = c->i;
  char copy[64];
  double v;
  if (c->i < c->n && c->s[c->i] == '-') c->i++;
  if (c->i >= c->n) return 0;
  if (c->s[c->i] == '0') c->i++;
  else if (c->s[c->i] >= '1' && c->s[c->i] <= '9') while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  else return 0;
  if (c->i < c->n && c->s[c->i] == '.') {
    c->i++;
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  }
  if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
    c->i++;
    if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
  }
  if (c->i - start >= sizeof copy) return 0;
  memcpy(copy, c->s + start, c->i - start);
  copy[c->i - start] = '\0';
  v = strtod(copy, NULL);
  return isfinite(v);
}

/* A flat object at its opening brace: 1 and the cursor past its closing one. */
static int flat_object(cursor *c) {
  const char *keys[LQ_STATE_LINE_MAX_KEYS];
  size_t key_lens[LQ_STATE_LINE_MAX_KEYS];
  int count = 0;
  c->i++;
  skip_space(c);
  if (c->i < c->n && c->s[c->i] == '}') {
    c->i++;
    return 1;
  }
  for (;;) {
    size_t key_start = c->i, key_len;
    int escaped, k;
    if (c->i >= c->n || c->s[c->i] != '"' || !json_string(c, &escaped) || escaped) return 0;
    key_len = c->i - key_start;
    if (count == LQ_STATE_LINE_MAX_KEYS) return 0;
    for (k = 0; k < count; k++) {
      if (key_lens[k] == key_len && memcmp(keys[k], c->s + key_start, key_len) == 0) return 0;
    }
    keys[count] = c->s + key_start;
    key_lens[count++] = key_len;
    skip_space(c);
    if (c->i >= c->n || c->s[c->i] != ':') return 0;
    c->i++;
    skip_space(c);
    if (c->i >= c->n) return 0;
    switch (c->s[c->i]) {
      case '"':
        if (!json_string(c, &escaped)) return 0;
        break;
      case 't':
        if (!literal(c, "true")) return 0;
        break;
      case 'f':
        if (!literal(c, "false")) return 0;
        break;
      case 'n':
        if (!literal(c, "null")) return 0;
        break;
      default:
        if (!number(c)) return 0;
    }
    skip_space(c);
    if (c->i >= c->n) return 0;
    if (c->s[c->i] == '}') {
      c->i++;
      return 1;
    }
    if (c->s[c->i] != ',') return 0;
    c->i++;
    skip_space(c);
  }
}

static int id_char(unsigned char b) {
  return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '-' || b == '_' ||
    b == '.' || b == ':' || b == '@' || b == '+';
}

int lq_state_line_parse(const char *text, size_t len, lq_state_line *out) {
  cursor c;
  size_t start;
  c.s = text;
  c.i = 0;
  c.n = len;
  if (!literal(&c, "{\"lead\":\"")) return 0;
  start = c.i;
  while (c.i < c.n && id_char((unsigned char)c.s[c.i])) c.i++;
  if (c.i == start) return 0;
  out->id = text + start;
  out->id_len = c.i - start;
  if (!literal(&c, "\",\"profile\":") || c.i >= c.n || c.s[c.i] != '{') return 0;
  start = c.i;
  if (!flat_object(&c)) return 0;
  out->profile = text + start;
  out->profile_len = c.i - start;
  if (!literal(&c, ",\"version\":")) return 0;
  start = c.i;
  out->version = 0;
  while (c.i < c.n && c.s[c.i] >= '0' && c.s[c.i] <= '9') {
    out->version = out->version * 10 + (c.s[c.i] - '0');
    c.i++;
  }
  /* 1 to 15 digits, no leading zero: exact in a double, and what JSON allows */
  if (c.i == start || c.i - start > 15 || (c.s[start] == '0' && c.i - start > 1)) return 0;
  out->state_hex = NULL;
  out->state_hex_len = 0;
  if (c.n - c.i == 1 && c.s[c.i] == '}') return 1;
  if (!literal(&c, ",\"state\":\"")) return 0;
  start = c.i;
  while (c.i < c.n && lq_hex_value((unsigned char)c.s[c.i]) >= 0) c.i++;
  if ((c.i - start) % 2 != 0 || c.n - c.i != 2 || c.s[c.i] != '"' || c.s[c.i + 1] != '}') return 0;
  out->state_hex = text + start;
  out->state_hex_len = c.i - start;
  return 1;
}
