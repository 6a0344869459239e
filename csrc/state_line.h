/* One line of a `leadq state` export, cut without building the profile: the lines an import reads a
** million at a time. Pure C; redis_binding.c gives it to Lua as core.state_line. */
#ifndef LEADQ_STATE_LINE_H
#define LEADQ_STATE_LINE_H

#include <stddef.h>

typedef struct {
  const char *id, *profile, *state_hex;   /* into the line; state_hex NULL: the lead has no state */
  size_t id_len, profile_len, state_hex_len;
  double version;
} lq_state_line;

/* 1 when text is laid out as leadq.store's lead_line writes it: {"lead":"<id>","profile":{...},
** "version":<n>[,"state":"<hex>"]}, the profile a well-formed JSON object of plain values (strings,
** numbers, true, false, null; no key twice); 0 for anything else, which may still be a good line:
** the caller's general JSON reader then decides, and words the error. */
int lq_state_line_parse(const char *text, size_t len, lq_state_line *out);

/* The value of a hex digit, or -1. */
int lq_hex_value(unsigned char c);

#endif
