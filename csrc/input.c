/* Input bytes from a file or standard input, inflated when they are gzip (RFC 1952, several
** members one after another as `cat a.gz b.gz` makes them). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "input.h"

static int fail(char *err, size_t errlen, const char *path, const char *reason) {
  snprintf(err, errlen, "%s: %s", path, reason);
  return -1;
}

int lq_input_open(lq_input *in, const char *path, char *err, size_t errlen) {
  size_t got;
  memset(in, 0, sizeof *in);
  if (strcmp(path, "-") == 0) {
    int fd = dup(0);   /* closing ours leaves the process's standard input open */
    in->file = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (in->file == NULL && fd >= 0) close(fd);
  } else {
    in->file = fopen(path, "rb");
  }
  if (in->file == NULL) return fail(err, errlen, strcmp(path, "-") == 0 ? "standard input" : path, strerror(errno));
  got = fread(in->head, 1, 2, in->file);
  if (got < 2 && ferror(in->file)) {
    int e = errno ? errno : EIO;
    lq_input_close(in);
    return fail(err, errlen, path, strerror(e));
  }
  in->head_len = got;
  in->raw_read = got;
  if (got == 2 && in->head[0] == 0x1f && in->head[1] == 0x8b) {
    z_stream *z = (z_stream *)calloc(1, sizeof *z);
    in->chunk = (unsigned char *)malloc(LQ_INPUT_CHUNK);
    if (z == NULL || in->chunk == NULL) {
      free(z);
      lq_input_close(in);
      return fail(err, errlen, path, "not enough memory");
    }
    in->stream = z;
    if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) {
      lq_input_close(in);
      return fail(err, errlen, path, "cannot start gzip decompression");
    }
    memcpy(in->chunk, in->head, 2);   /* the magic bytes are the stream's first */
    z->next_in = in->chunk;
    z->avail_in = 2;
    in->is_gzip = 1;
    in->head_len = 0;
  }
  return 0;
}

int lq_input_open_at(lq_input *in, const char *path, long long offset, char *err, size_t errlen) {
  memset(in, 0, sizeof *in);
  if ((in->file = fopen(path, "rb")) == NULL) return fail(err, errlen, path, strerror(errno));
  if (fseeko(in->file, (off_t)offset, SEEK_SET) != 0) {
    int e = errno ? errno : EIO;
    lq_input_close(in);
    return fail(err, errlen, path, strerror(e));
  }
  in->raw_read = (unsigned long long)offset;
  return 0;
}

static long read_plain(lq_input *in, char *buf, size_t n) {
  size_t out = 0, got;
  while (in->head_pos < in->head_len && out < n) buf[out++] = (char)in->head[in->head_pos++];
  if (out == n) return (long)out;
  got = fread(buf + out, 1, n - out, in->file);
  in->raw_read += got;
  if (got == 0 && ferror(in->file)) {
    snprintf(in->message, sizeof in->message, "%s", strerror(errno ? errno : EIO));
    return -1;
  }
  return (long)(out + got);
}

static long read_gzip(lq_input *in, char *buf, size_t n) {
  z_stream *z = (z_stream *)in->stream;
  if (n > (size_t)1 << 30) n = (size_t)1 << 30;
  z->next_out = (unsigned char *)buf;
  z->avail_out = (uInt)n;
  while (z->avail_out == n && !in->at_end) {
    int st;
    if (z->avail_in == 0) {
      size_t got = fread(in->chunk, 1, LQ_INPUT_CHUNK, in->file);
      in->raw_read += got;
      if (got == 0) {
        if (ferror(in->file)) {
          snprintf(in->message, sizeof in->message, "%s", strerror(errno ? errno : EIO));
          return -1;
        }
        snprintf(in->message, sizeof in->message, "the gzip data ends early (a truncated file?)");
        return -1;
      }
      z->next_in = in->chunk;
      z->avail_in = (uInt)got;
    }
    st = inflate(z, Z_NO_FLUSH);
    if (st == Z_STREAM_END) {
      /* another member may follow; only bytes that start one count */
      if (z->avail_in == 0) {
        size_t got = fread(in->chunk, 1, LQ_INPUT_CHUNK, in->file);
        in->raw_read += got;
        z->next_in = in->chunk;
        z->avail_in = (uInt)got;
      }
      if (z->avail_in == 0) {
        in->at_end = 1;
      } else if (inflateReset(z) != Z_OK) {
        snprintf(in->message, sizeof in->message, "cannot restart gzip decompression");
        return -1;
      }
    } else if (st != Z_OK && st != Z_BUF_ERROR) {
      snprintf(in->message, sizeof in->message, "not valid gzip data (%s)", z->msg ? z->msg : "corrupt");
      return -1;
    }
  }
  return (long)(n - z->avail_out);
}

long lq_input_read(lq_input *in, char *buf, size_t n) {
  if (in->file == NULL || n == 0) return 0;
  return in->is_gzip ? read_gzip(in, buf, n) : read_plain(in, buf, n);
}

long lq_input_size(lq_input *in) {
  struct stat st;
  if (in->file == NULL || in->is_gzip) return -1;
  if (fstat(fileno(in->file), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return (long)st.st_size;
}

long lq_input_file_size(lq_input *in) {
  struct stat st;
  if (in->file == NULL || fstat(fileno(in->file), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return (long)st.st_size;
}

void lq_input_close(lq_input *in) {
  if (in->stream != NULL) {
    inflateEnd((z_stream *)in->stream);
    free(in->stream);
  }
  free(in->chunk);
  if (in->file != NULL) fclose(in->file);
  in->stream = NULL;
  in->chunk = NULL;
  in->file = NULL;
}
