/* Where the bytes of an input file come from: a plain file, standard input ("-"), or either of
** those compressed with gzip, told apart by their first bytes (never by the file's name). Plain C,
** no Lua. The reader asks for bytes and does not know which kind it has. */
#ifndef LEADQ_INPUT_H
#define LEADQ_INPUT_H

#include <stddef.h>
#include <stdio.h>

#if !defined(LQ_INPUT_CHUNK)
#define LQ_INPUT_CHUNK ((size_t)1 << 18)   /* compressed bytes per read */
#endif

typedef struct lq_input {
  FILE *file;                 /* NULL when closed */
  int is_gzip;
  int at_end;                 /* no more bytes will come */
  void *stream;               /* z_stream when gzip */
  unsigned char *chunk;       /* compressed bytes read but not yet inflated */
  size_t head_len, head_pos;  /* plain input: the bytes read to tell the kind, given out first */
  unsigned char head[4];
  char message[160];          /* why a read failed */
  unsigned long long raw_read;  /* bytes read from the file (compressed ones for gzip) */
} lq_input;

/* Open path ("-": standard input). 0 on success; else -1 and err holds "path: reason". */
int lq_input_open(lq_input *in, const char *path, char *err, size_t errlen);

/* A plain file from byte `offset` on (no gzip check): a chunk of a file read on several threads. */
int lq_input_open_at(lq_input *in, const char *path, long long offset, char *err, size_t errlen);

/* Up to n bytes into buf. Returns the count (0 at the end); -1 on failure, message in in->message. */
long lq_input_read(lq_input *in, char *buf, size_t n);

/* The size in bytes of a plain regular file, else -1 (gzip, pipes): for sizing, never relied on. */
long lq_input_size(lq_input *in);

/* The file's own size in bytes (compressed for gzip), -1 for pipes: with raw_read, how far a read is. */
long lq_input_file_size(lq_input *in);

void lq_input_close(lq_input *in);

#endif
