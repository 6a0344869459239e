/* Columnar snapshots (snapshot.h says what the file holds). Plain C, no Lua.
**
** Two ways to read. With read(2) (lq_snapshot_open), each section is read straight into the array
** that keeps it, a chunk at a time, and hashed while the chunk is still in cache: one pass over
** memory, and the tables own every byte. Mapped (lq_snapshot_open_mapped, the CLI's way), the
** columns' arrays stay in the file's pages: no copy, no fresh memory to fault in and zero, and the
** columns no one asked for are never touched. A mapped table's checksums are all checked (on
** threads) before any of its bytes are used. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_jobs.h"

#include "snapshot.h"

#define HEADER_SIZE 48u
#define SECTION_HEADER_SIZE 24u
#define BYTE_ORDER_MARK 0x0102030405060708ull
#if !defined(LQ_SNAPSHOT_CHUNK)
#define LQ_SNAPSHOT_CHUNK ((size_t)1 << 20)   /* bytes read (and hashed) at a time: a multiple of 32 */
#endif

enum section_kind {
  SECTION_TABLE = 1,      /* a table's metadata */
  SECTION_VALUES,         /* numbers, booleans or category codes */
  SECTION_OFFSETS,        /* text or tags: nrows + 1 offsets */
  SECTION_TEXT,           /* text bytes */
  SECTION_MISSING,        /* text or tags: a byte a row */
  SECTION_TAG_CODES,
  SECTION_DICT_LENGTHS,   /* a uint32 a value */
  SECTION_DICT_BYTES,     /* every value followed by a NUL */
  SECTION_END
};

static const char *const section_names[] = {
  "?", "table description", "values", "offsets", "text", "missing marks", "tag codes",
  "dictionary lengths", "dictionary", "end"
};

/* ---- the checksum ---- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

typedef struct hasher {
  uint64_t lane[4];
  unsigned char tail[32];
  size_t tail_len;
  uint64_t total;
} hasher;

static void hasher_init(hasher *h, uint64_t seed) {
  h->lane[0] = seed ^ P1;
  h->lane[1] = seed ^ P2;
  h->lane[2] = rotl64(seed, 17) ^ P1;
  h->lane[3] = rotl64(seed, 41) ^ P2;
  h->tail_len = 0;
  h->total = 0;
}

/* lane' = rotl(lane ^ word, 29) * odd: a bijection of the word (and of the lane). */
static inline uint64_t lane_step(uint64_t lane, uint64_t word) {
  return rotl64(lane ^ word, 29) * P1;
}

static void hash_blocks(hasher *h, const unsigned char *p, size_t nblocks) {
  uint64_t a = h->lane[0], b = h->lane[1], c = h->lane[2], d = h->lane[3], w;
  while (nblocks-- > 0) {
    memcpy(&w, p, 8); a = lane_step(a, w);
    memcpy(&w, p + 8, 8); b = lane_step(b, w);
    memcpy(&w, p + 16, 8); c = lane_step(c, w);
    memcpy(&w, p + 24, 8); d = lane_step(d, w);
    p += 32;
  }
  h->lane[0] = a; h->lane[1] = b; h->lane[2] = c; h->lane[3] = d;
}

static void hasher_update(hasher *h, const void *bytes, size_t len) {
  const unsigned char *p = (const unsigned char *)bytes;
  h->total += len;
  if (h->tail_len > 0) {
    size_t take = 32 - h->tail_len < len ? 32 - h->tail_len : len;
    memcpy(h->tail + h->tail_len, p, take);
    h->tail_len += take;
    p += take;
    len -= take;
    if (h->tail_len < 32) return;
    hash_blocks(h, h->tail, 1);
    h->tail_len = 0;
  }
  hash_blocks(h, p, len / 32);
  p += len / 32 * 32;
  len %= 32;
  memcpy(h->tail, p, len);
  h->tail_len = len;
}

/* The tail zero-padded to a block (the length, mixed in last, tells the padding from data), then
** the lanes folded in one by one: each fold is a bijection of the lane it takes in. */
static uint64_t hasher_final(hasher *h) {
  uint64_t r;
  if (h->tail_len > 0) {
    memset(h->tail + h->tail_len, 0, 32 - h->tail_len);
    hash_blocks(h, h->tail, 1);
  }
  r = h->total * P2;
  r = rotl64(r ^ h->lane[0], 31) * P1;
  r = rotl64(r ^ h->lane[1], 31) * P1;
  r = rotl64(r ^ h->lane[2], 31) * P1;
  r = rotl64(r ^ h->lane[3], 31) * P1;
  r ^= r >> 29;
  r *= P2;
  r ^= r >> 32;
  return r;
}

uint64_t lq_snapshot_checksum(uint64_t seed, const void *bytes, size_t len) {
  hasher h;
  hasher_init(&h, seed);
  hasher_update(&h, bytes, len);
  return hasher_final(&h);
}

static uint64_t section_seed(uint32_t kind, uint64_t length) {
  return ((uint64_t)kind << 56) ^ length;
}

static uint64_t padded(uint64_t n) {
  return (n + 7) & ~(uint64_t)7;
}

/* ---- messages ---- */

static int failf(char *err, size_t errlen, const char *path, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

static int failf(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(err, errlen, "%s: ", path);
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- writing ---- */

typedef struct writer {
  FILE *f;
  const char *path;
  uint64_t offset;
  int failed;
} writer;

/* A buffer the metadata is built in. */
typedef struct blob {
  unsigned char *bytes;
  size_t len, cap;
  int failed;
} blob;

static void blob_add(blob *b, const void *p, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    unsigned char *nb;
    while (cap < b->len + n) cap *= 2;
    nb = (unsigned char *)realloc(b->bytes, cap);
    if (nb == NULL) {
      b->failed = 1;
      return;
    }
    b->bytes = nb;
    b->cap = cap;
  }
  if (n > 0) memcpy(b->bytes + b->len, p, n);
  b->len += n;
}

static void blob_u32(blob *b, uint32_t v) { blob_add(b, &v, 4); }
static void blob_u64(blob *b, uint64_t v) { blob_add(b, &v, 8); }
static void blob_string(blob *b, const char *s, size_t len) {
  blob_u32(b, (uint32_t)len);
  blob_add(b, s, len);
}

static void put(writer *w, const void *p, size_t n) {
  if (w->failed || n == 0) return;
  if (fwrite(p, 1, n, w->f) != n) w->failed = errno ? errno : EIO;
  w->offset += n;
}

static void put_section(writer *w, uint32_t kind, const void *bytes, uint64_t len) {
  static const unsigned char zeros[8] = { 0 };
  unsigned char head[SECTION_HEADER_SIZE];
  uint32_t reserved = 0;
  size_t pad = (size_t)(padded(len) - len);
  hasher h;
  uint64_t sum;
  hasher_init(&h, section_seed(kind, len));
  if (len > 0) hasher_update(&h, bytes, (size_t)len);
  hasher_update(&h, zeros, pad);
  sum = hasher_final(&h);
  memcpy(head, &kind, 4);
  memcpy(head + 4, &reserved, 4);
  memcpy(head + 8, &len, 8);
  memcpy(head + 16, &sum, 8);
  put(w, head, sizeof head);
  if (len > 0) put(w, bytes, (size_t)len);
  put(w, zeros, pad);
}

static void put_dict(writer *w, const lq_dict *d) {
  put_section(w, SECTION_DICT_LENGTHS, d->lengths, (uint64_t)d->count * 4);
  put_section(w, SECTION_DICT_BYTES, d->bytes, d->count > 0 ? d->bytes_len : 0);
}

/* The dictionary's bytes are its values in code order, each followed by a NUL (dict_add appends
** them so); the file relies on it, so check it rather than assume it. */
static int dict_is_packed(const lq_dict *d) {
  size_t at = 0;
  int32_t code;
  for (code = 0; code < d->count; code++) {
    if (d->starts[code] != at) return 0;
    at += (size_t)d->lengths[code] + 1;
  }
  return d->count == 0 || at == d->bytes_len;
}

static void describe_table(blob *b, const char *name, const lq_table *t) {
  int i;
  size_t r;
  blob_string(b, name, strlen(name));
  blob_u64(b, t->nrows);
  blob_u32(b, (uint32_t)t->ncols);
  blob_u32(b, t->flags);
  if (t->source != NULL) {
    blob_string(b, t->source, strlen(t->source));
  } else {
    blob_u32(b, UINT32_MAX);
  }
  blob_u64(b, t->nrejects);
  for (i = 0; i < t->ncols; i++) {
    const lq_column *c = t->cols[i];
    uint64_t data_len = 0, dict_count = 0, dict_bytes = 0;
    if (c->type == LQ_TEXT) data_len = c->offsets[t->nrows];
    if (c->type == LQ_TAGS) data_len = c->tag_offsets[t->nrows];
    if (c->type == LQ_CATEGORY || c->type == LQ_TAGS) {
      dict_count = (uint64_t)c->dict.count;
      dict_bytes = c->dict.count > 0 ? c->dict.bytes_len : 0;
    }
    blob_u32(b, (uint32_t)c->type);
    blob_string(b, c->name, strlen(c->name));
    blob_u32(b, (uint32_t)(unsigned char)c->tag_separator);
    blob_u64(b, data_len);
    blob_u64(b, dict_count);
    blob_u64(b, dict_bytes);
  }
  for (r = 0; r < t->nrejects; r++) {
    const lq_reject *j = &t->rejects[r];
    blob_u64(b, j->line);
    blob_u64(b, j->record);
    blob_u32(b, (uint32_t)j->column);
    blob_string(b, j->reason, strlen(j->reason));
  }
}

static void put_table(writer *w, blob *meta, const char *name, const lq_table *t) {
  uint64_t n = t->nrows;
  int i;
  meta->len = 0;
  describe_table(meta, name, t);
  if (meta->failed) {
    w->failed = ENOMEM;
    return;
  }
  put_section(w, SECTION_TABLE, meta->bytes, meta->len);
  for (i = 0; i < t->ncols && !w->failed; i++) {
    const lq_column *c = t->cols[i];
    switch (c->type) {
      case LQ_NUMBER: case LQ_TIME:
        put_section(w, SECTION_VALUES, c->numbers, n * sizeof(double));
        break;
      case LQ_BOOLEAN:
        put_section(w, SECTION_VALUES, c->bools, n);
        break;
      case LQ_CATEGORY:
        put_section(w, SECTION_VALUES, c->codes, n * sizeof(int32_t));
        put_dict(w, &c->dict);
        break;
      case LQ_TEXT:
        put_section(w, SECTION_OFFSETS, c->offsets, (n + 1) * sizeof(uint64_t));
        put_section(w, SECTION_TEXT, c->text, c->offsets[n]);
        put_section(w, SECTION_MISSING, c->text_missing, n);
        break;
      case LQ_TAGS:
        put_section(w, SECTION_OFFSETS, c->tag_offsets, (n + 1) * sizeof(uint64_t));
        put_section(w, SECTION_TAG_CODES, c->tag_codes, c->tag_offsets[n] * sizeof(int32_t));
        put_section(w, SECTION_MISSING, c->text_missing, n);
        put_dict(w, &c->dict);
        break;
      default:
        break;
    }
  }
}

static void header_bytes(unsigned char *h, uint32_t ntables, uint64_t file_size) {
  uint32_t version = LQ_SNAPSHOT_VERSION, size = HEADER_SIZE, reserved = 0;
  uint64_t mark = BYTE_ORDER_MARK, sum;
  memcpy(h, LQ_SNAPSHOT_MAGIC, 8);
  memcpy(h + 8, &version, 4);
  memcpy(h + 12, &size, 4);
  memcpy(h + 16, &mark, 8);
  memcpy(h + 24, &ntables, 4);
  memcpy(h + 28, &reserved, 4);
  memcpy(h + 32, &file_size, 8);
  sum = lq_snapshot_checksum(0, h, 40);
  memcpy(h + 40, &sum, 8);
}

int lq_snapshot_save(const char *path, const lq_snapshot_entry *tables, int ntables, char *err, size_t errlen) {
  char *temp;
  size_t plen = strlen(path);
  writer w;
  blob meta;
  unsigned char head[HEADER_SIZE];
  int i, fd = -1, attempt;
  if (ntables < 0 || ntables > LQ_SNAPSHOT_MAX_TABLES)
    return failf(err, errlen, path, "a snapshot holds 0 to %d tables, not %d", LQ_SNAPSHOT_MAX_TABLES, ntables);
  for (i = 0; i < ntables; i++) {
    const lq_table *t = tables[i].table;
    int c;
    if (tables[i].name[0] == '\0' || strlen(tables[i].name) >= LQ_SNAPSHOT_NAME_MAX)
      return failf(err, errlen, path, "table %d needs a name shorter than %d bytes", i + 1, LQ_SNAPSHOT_NAME_MAX);
    for (c = 0; c < t->ncols; c++)
      if ((t->cols[c]->type == LQ_CATEGORY || t->cols[c]->type == LQ_TAGS) && !dict_is_packed(&t->cols[c]->dict))
        return failf(err, errlen, path, "column '%s' of %s: its dictionary is not laid out as saved", t->cols[c]->name,
                     tables[i].name);
  }
  temp = (char *)malloc(plen + 32);
  if (temp == NULL) return failf(err, errlen, path, "not enough memory");
  /* a new name beside the target (same file system, so rename is atomic), made by this process */
  for (attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(temp, plen + 32, "%s.tmp%ld-%d", path, (long)getpid(), attempt);
    fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    free(temp);
    return failf(err, errlen, path, "cannot create the snapshot beside it: %s", strerror(e));
  }
  memset(&w, 0, sizeof w);
  memset(&meta, 0, sizeof meta);
  w.path = path;
  w.f = fdopen(fd, "wb");
  if (w.f == NULL) {
    close(fd);
    w.failed = errno ? errno : EIO;
  } else {
    setvbuf(w.f, NULL, _IOFBF, (size_t)1 << 20);
    header_bytes(head, (uint32_t)ntables, 0);   /* the size is known at the end */
    put(&w, head, sizeof head);
    for (i = 0; i < ntables && !w.failed; i++) put_table(&w, &meta, tables[i].name, tables[i].table);
    put_section(&w, SECTION_END, NULL, 0);
    header_bytes(head, (uint32_t)ntables, w.offset);
    if (!w.failed && (fseek(w.f, 0, SEEK_SET) != 0 || fwrite(head, 1, sizeof head, w.f) != sizeof head))
      w.failed = errno ? errno : EIO;
    if (fclose(w.f) != 0 && !w.failed) w.failed = errno ? errno : EIO;
  }
  free(meta.bytes);
  if (!w.failed && rename(temp, path) != 0) w.failed = errno ? errno : EIO;
  if (w.failed) {
    unlink(temp);
    free(temp);
    return failf(err, errlen, path, "cannot write the snapshot: %s", strerror(w.failed));
  }
  free(temp);
  return 0;
}

/* ---- reading ---- */

void lq_snapshot_reader_init(lq_snapshot_reader *r) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

void lq_snapshot_close(lq_snapshot_reader *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  r->memory = NULL;
  lq_mapping_release(r->mapping);   /* the tables read keep their own references */
  r->mapping = NULL;
  free(r->scratch);
  r->scratch = NULL;
  r->scratch_cap = 0;
}

/* n bytes at the reader's offset; 0, or -1 with err set (the file changed under us, or I/O). */
static int read_exact(lq_snapshot_reader *r, void *dst, size_t n, char *err, size_t errlen) {
  unsigned char *p = (unsigned char *)dst;
  if (r->offset + n > r->file_size || r->offset + n < r->offset)
    return failf(err, errlen, r->path, "truncated: %llu bytes needed at byte %llu, the file has %llu",
                 (unsigned long long)n, (unsigned long long)r->offset, (unsigned long long)r->file_size);
  if (r->memory != NULL) {
    if (n > 0) memcpy(p, r->memory + r->offset, n);
    r->offset += n;
    return 0;
  }
  while (n > 0) {
    ssize_t got = read(r->fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return failf(err, errlen, r->path, "%s", strerror(errno));
    if (got == 0)
      return failf(err, errlen, r->path, "truncated while reading (the file shrank to %llu bytes)",
                   (unsigned long long)r->offset);
    p += got;
    n -= (size_t)got;
    r->offset += (uint64_t)got;
  }
  return 0;
}

static uint64_t u64_at(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32_at(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static int open_common(lq_snapshot_reader *r, char *err, size_t errlen) {
  unsigned char h[HEADER_SIZE];
  uint32_t version, header_size;
  uint64_t mark, size;
  size_t have = r->file_size < HEADER_SIZE ? (size_t)r->file_size : HEADER_SIZE;
  if (read_exact(r, h, have, err, errlen) != 0) return -1;
  if (have < LQ_SNAPSHOT_MAGIC_LEN || memcmp(h, LQ_SNAPSHOT_MAGIC, LQ_SNAPSHOT_MAGIC_LEN) != 0)
    return failf(err, errlen, r->path, "not a leadq snapshot (it does not start with the snapshot's magic bytes)");
  if (have < HEADER_SIZE)
    return failf(err, errlen, r->path, "truncated snapshot: %llu bytes, less than its %u-byte header",
                 (unsigned long long)r->file_size, HEADER_SIZE);
  mark = u64_at(h + 16);
  if (mark == __builtin_bswap64(BYTE_ORDER_MARK))
    return failf(err, errlen, r->path, "snapshot written on a machine of the other byte order: load the CSV files here");
  if (mark != BYTE_ORDER_MARK) return failf(err, errlen, r->path, "damaged snapshot: its header's byte-order mark is wrong");
  version = u32_at(h + 8);
  if (version > LQ_SNAPSHOT_VERSION)
    return failf(err, errlen, r->path, "snapshot of format %u, newer than this leadq reads (format %u): "
                 "upgrade leadq, or load the CSV files again", version, LQ_SNAPSHOT_VERSION);
  if (version == 0) return failf(err, errlen, r->path, "damaged snapshot: format version 0");
  if (lq_snapshot_checksum(0, h, 40) != u64_at(h + 40))
    return failf(err, errlen, r->path, "damaged snapshot: its header fails its checksum");
  header_size = u32_at(h + 12);
  if (header_size != HEADER_SIZE) return failf(err, errlen, r->path, "damaged snapshot: header size %u", header_size);
  size = u64_at(h + 32);
  if (size > r->file_size)
    return failf(err, errlen, r->path, "truncated snapshot: %llu bytes of %llu", (unsigned long long)r->file_size,
                 (unsigned long long)size);
  if (size < r->file_size)
    return failf(err, errlen, r->path, "damaged snapshot: %llu bytes after its end (at byte %llu)",
                 (unsigned long long)(r->file_size - size), (unsigned long long)size);
  r->ntables = u32_at(h + 24);
  if (r->ntables > LQ_SNAPSHOT_MAX_TABLES)
    return failf(err, errlen, r->path, "damaged snapshot: %u tables (at most %d)", r->ntables, LQ_SNAPSHOT_MAX_TABLES);
  r->next_table = 0;
  return 0;
}

int lq_snapshot_open(lq_snapshot_reader *r, const char *path, char *err, size_t errlen) {
  struct stat st;
  lq_snapshot_close(r);
  r->path = path;
  r->offset = 0;
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) return failf(err, errlen, path, "%s", strerror(errno));
  if (fstat(r->fd, &st) != 0) {
    int e = errno;
    lq_snapshot_close(r);
    return failf(err, errlen, path, "%s", strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    lq_snapshot_close(r);
    return failf(err, errlen, path, "a snapshot must be a regular file");
  }
  r->file_size = (uint64_t)st.st_size;
  if (open_common(r, err, errlen) != 0) {
    lq_snapshot_close(r);
    return -1;
  }
  return 0;
}

int lq_snapshot_open_mapped(lq_snapshot_reader *r, const char *path, int threads, char *err, size_t errlen) {
  void *addr;
  if (lq_snapshot_open(r, path, err, errlen) != 0) return -1;
  addr = mmap(NULL, (size_t)r->file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->fd, 0);
  if (addr == MAP_FAILED) {
    int e = errno;
    lq_snapshot_close(r);
    return failf(err, errlen, path, "cannot map the snapshot: %s", strerror(e));
  }
  r->mapping = lq_mapping_new(addr, (size_t)r->file_size);
  if (r->mapping == NULL) {
    munmap(addr, (size_t)r->file_size);
    lq_snapshot_close(r);
    return failf(err, errlen, path, "not enough memory");
  }
  r->memory = (const unsigned char *)addr;
  r->borrow = 1;
  r->threads = threads < 1 ? 1 : threads > LQ_RUN_MAX_JOBS ? LQ_RUN_MAX_JOBS : threads;
  return 0;
}

int lq_snapshot_is_snapshot(const char *path) {
  unsigned char head[LQ_SNAPSHOT_MAGIC_LEN];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t got;
  if (fd < 0) return 0;
  got = read(fd, head, sizeof head);
  close(fd);
  return got == (ssize_t)sizeof head && memcmp(head, LQ_SNAPSHOT_MAGIC, sizeof head) == 0;
}

/* What a section is, for messages: "the offsets of column 'email' (table leads)". */
typedef struct place {
  const char *table;
  const char *column;     /* NULL: the table's own section */
} place;

static int damaged(lq_snapshot_reader *r, const place *at, uint32_t kind, char *err, size_t errlen,
                   const char *what) {
  if (at->column != NULL)
    return failf(err, errlen, r->path, "damaged snapshot: the %s section of column '%s' (table %s) %s",
                 section_names[kind], at->column, at->table, what);
  return failf(err, errlen, r->path, "damaged snapshot: the %s section of table %s %s", section_names[kind],
               at->table, what);
}

/* The next section's header, which must be of this kind and length with its bytes in the file:
** the offset moves past the header, and *sum is the checksum the section states. */
static int section_header(lq_snapshot_reader *r, uint32_t kind, uint64_t len, const place *at, uint64_t *sum,
                          char *err, size_t errlen) {
  unsigned char head[SECTION_HEADER_SIZE];
  uint64_t start = r->offset;
  if (read_exact(r, head, sizeof head, err, errlen) != 0) return -1;
  if (u32_at(head) != kind || u32_at(head + 4) != 0) {
    uint32_t found = u32_at(head);
    char what[96];
    snprintf(what, sizeof what, "is missing: byte %llu holds %s%s", (unsigned long long)start,
             found < sizeof section_names / sizeof section_names[0] ? "a section of kind " : "no section",
             found < sizeof section_names / sizeof section_names[0] ? section_names[found] : "");
    return damaged(r, at, kind, err, errlen, what);
  }
  if (u64_at(head + 8) != len) {
    char what[96];
    snprintf(what, sizeof what, "has %llu bytes, not the %llu its table says",
             (unsigned long long)u64_at(head + 8), (unsigned long long)len);
    return damaged(r, at, kind, err, errlen, what);
  }
  if (padded(len) > r->file_size - r->offset || padded(len) < len)
    return failf(err, errlen, r->path, "truncated snapshot: the %s of %s%s%s needs %llu bytes at byte %llu, "
                 "the file has %llu", section_names[kind], at->column ? "column '" : "table ",
                 at->column ? at->column : at->table, at->column ? "'" : "", (unsigned long long)padded(len),
                 (unsigned long long)r->offset, (unsigned long long)r->file_size);
  *sum = u64_at(head + 16);
  return 0;
}

/* The next section, which must be of this kind and length, into dst (room for len bytes), checked. */
static int read_section(lq_snapshot_reader *r, uint32_t kind, uint64_t len, void *dst, const place *at,
                        char *err, size_t errlen) {
  unsigned char pad[8];
  unsigned char *p = (unsigned char *)dst;
  uint64_t left = len, sum;
  hasher h;
  if (section_header(r, kind, len, at, &sum, err, errlen) != 0) return -1;
  hasher_init(&h, section_seed(kind, len));
  while (left > 0) {
    size_t n = left > LQ_SNAPSHOT_CHUNK ? LQ_SNAPSHOT_CHUNK : (size_t)left;
    if (read_exact(r, p, n, err, errlen) != 0) return -1;
    hasher_update(&h, p, n);   /* while the chunk is in cache */
    p += n;
    left -= n;
  }
  if (read_exact(r, pad, (size_t)(padded(len) - len), err, errlen) != 0) return -1;
  hasher_update(&h, pad, (size_t)(padded(len) - len));
  if (hasher_final(&h) != sum) return damaged(r, at, kind, err, errlen, "fails its checksum");
  return 0;
}

/* The next section of a column not read: where the description says, then passed over unread. */
static int skip_section(lq_snapshot_reader *r, uint32_t kind, uint64_t len, const place *at, char *err,
                        size_t errlen) {
  uint64_t sum;
  if (section_header(r, kind, len, at, &sum, err, errlen) != 0) return -1;
  r->offset += padded(len);
  if (r->memory == NULL && lseek(r->fd, (off_t)r->offset, SEEK_SET) < 0)
    return failf(err, errlen, r->path, "%s", strerror(errno));
  return 0;
}

/* Room for n bytes of scratch. */
static unsigned char *scratch(lq_snapshot_reader *r, size_t n) {
  if (n == 0) n = 1;
  if (n > r->scratch_cap) {
    unsigned char *p = (unsigned char *)realloc(r->scratch, n);
    if (p == NULL) return NULL;
    r->scratch = p;
    r->scratch_cap = n;
  }
  return r->scratch;
}

/* A cursor over the checked table description. */
typedef struct cursor {
  const unsigned char *p, *end;
  int bad;
} cursor;

static uint32_t get_u32(cursor *c) {
  uint32_t v = 0;
  if (c->end - c->p < 4) { c->bad = 1; return 0; }
  memcpy(&v, c->p, 4);
  c->p += 4;
  return v;
}

static uint64_t get_u64(cursor *c) {
  uint64_t v = 0;
  if (c->end - c->p < 8) { c->bad = 1; return 0; }
  memcpy(&v, c->p, 8);
  c->p += 8;
  return v;
}

/* A string of the description: its bytes (not NUL-terminated) and length, or NULL. */
static const char *get_string(cursor *c, uint32_t *len) {
  const char *s;
  *len = get_u32(c);
  if (c->bad || (size_t)(c->end - c->p) < *len) { c->bad = 1; *len = 0; return NULL; }
  s = (const char *)c->p;
  c->p += *len;
  return s;
}

typedef struct column_plan_entry {
  uint32_t type;
  uint64_t data_len, dict_count, dict_bytes;
  int col;                /* its index in the table, or -1: not read */
} column_plan_entry;

/* The sections a column's arrays take, in file order. */
typedef struct column_sections {
  int n;
  uint32_t kind[5];
  uint64_t len[5];
} column_sections;

static void sections_of(const column_plan_entry *e, uint64_t nrows, column_sections *cs) {
  cs->n = 0;
#define ADD(k, l) (cs->kind[cs->n] = (k), cs->len[cs->n] = (l), cs->n++)
  switch (e->type) {
    case LQ_NUMBER: case LQ_TIME: ADD(SECTION_VALUES, nrows * sizeof(double)); break;
    case LQ_BOOLEAN: ADD(SECTION_VALUES, nrows); break;
    case LQ_CATEGORY:
      ADD(SECTION_VALUES, nrows * sizeof(int32_t));
      ADD(SECTION_DICT_LENGTHS, e->dict_count * 4);
      ADD(SECTION_DICT_BYTES, e->dict_bytes);
      break;
    case LQ_TEXT:
      ADD(SECTION_OFFSETS, (nrows + 1) * sizeof(uint64_t));
      ADD(SECTION_TEXT, e->data_len);
      ADD(SECTION_MISSING, nrows);
      break;
    case LQ_TAGS:
      ADD(SECTION_OFFSETS, (nrows + 1) * sizeof(uint64_t));
      ADD(SECTION_TAG_CODES, e->data_len * sizeof(int32_t));
      ADD(SECTION_MISSING, nrows);
      ADD(SECTION_DICT_LENGTHS, e->dict_count * 4);
      ADD(SECTION_DICT_BYTES, e->dict_bytes);
      break;
    default: break;
  }
#undef ADD
}

/* A column not read: each of its sections where the description says, passed over unread. */
static int skip_column(lq_snapshot_reader *r, const column_plan_entry *e, uint64_t nrows, const char *table_name,
                       char *err, size_t errlen) {
  column_sections cs;
  place at;
  int k;
  at.table = table_name;
  at.column = "(not read)";
  sections_of(e, nrows, &cs);
  for (k = 0; k < cs.n; k++)
    if (skip_section(r, cs.kind[k], cs.len[k], &at, err, errlen) != 0) return -1;
  return 0;
}

#if !defined(LQ_SNAPSHOT_INDEX_MAX)
#define LQ_SNAPSHOT_INDEX_MAX 65536   /* in place, a bigger dictionary is indexed when first searched */
#endif

/* A column's dictionary from its checked sections: every value once, in code order. */
static int build_dict(lq_snapshot_reader *r, lq_table *t, lq_column *c, const column_plan_entry *e,
                      const uint32_t *lengths, const char *bytes, const place *at, char *err, size_t errlen) {
  int index = !r->borrow || e->dict_count <= LQ_SNAPSHOT_INDEX_MAX;
  switch (lq_dict_load(&c->dict, &t->alloc, lengths, bytes, (int32_t)e->dict_count, (size_t)e->dict_bytes, index)) {
    case 0: return 0;
    case -1: return failf(err, errlen, r->path, "not enough memory");
    case -3: return damaged(r, at, SECTION_DICT_BYTES, err, errlen, "holds a value twice");
    default: return damaged(r, at, SECTION_DICT_BYTES, err, errlen, "does not match the dictionary lengths");
  }
}

/* A dictionary section pair read into scratch, then into the column's dictionary. */
static int read_dict(lq_snapshot_reader *r, lq_table *t, lq_column *c, const column_plan_entry *e,
                     const place *at, char *err, size_t errlen) {
  size_t lengths_size = (size_t)e->dict_count * 4;
  unsigned char *buf = scratch(r, lengths_size + (size_t)e->dict_bytes + 1);
  if (buf == NULL) return failf(err, errlen, r->path, "not enough memory");
  if (read_section(r, SECTION_DICT_LENGTHS, lengths_size, buf, at, err, errlen) != 0 ||
      read_section(r, SECTION_DICT_BYTES, e->dict_bytes, buf + lengths_size, at, err, errlen) != 0)
    return -1;
  /* scratch comes from malloc: aligned */
  return build_dict(r, t, c, e, (const uint32_t *)(const void *)buf, (const char *)buf + lengths_size, at, err,
                    errlen);
}

/* nrows + 1 offsets: from 0, never falling, ending at `end`; a missing row holds nothing. */
static int check_offsets(const uint64_t *offsets, const uint8_t *missing, uint64_t nrows, uint64_t end) {
  uint64_t i;
  if (offsets[0] != 0 || offsets[nrows] != end) return -1;
  for (i = 0; i < nrows; i++) {
    if (offsets[i + 1] < offsets[i] || missing[i] > 1) return -1;
    if (missing[i] && offsets[i + 1] != offsets[i]) return -1;
  }
  return 0;
}

/* The checks of a column's values once they are in place (read or mapped). */
static int check_values(lq_snapshot_reader *r, const lq_column *c, const column_plan_entry *e, uint64_t nrows,
                        int scanned, const place *at, char *err, size_t errlen) {
  size_t n = scanned ? 0 : (size_t)nrows, k;   /* scanned: booleans and codes checked already */
  int32_t count = (int32_t)e->dict_count;
  switch (c->type) {
    case LQ_BOOLEAN:
      for (k = 0; k < n; k++)
        if (c->bools[k] > LQ_MISSING_BOOL) return damaged(r, at, SECTION_VALUES, err, errlen, "holds a value that is no boolean");
      break;
    case LQ_CATEGORY:
      for (k = 0; k < n; k++)
        if (c->codes[k] < LQ_MISSING_CODE || c->codes[k] >= count)
          return damaged(r, at, SECTION_VALUES, err, errlen, "holds a code outside the dictionary");
      break;
    case LQ_TEXT:
      if (check_offsets(c->offsets, c->text_missing, nrows, e->data_len) != 0)
        return damaged(r, at, SECTION_OFFSETS, err, errlen, "does not fit the text and its missing marks");
      break;
    case LQ_TAGS:
      if (check_offsets(c->tag_offsets, c->text_missing, nrows, e->data_len) != 0)
        return damaged(r, at, SECTION_OFFSETS, err, errlen, "does not fit the tag codes and their missing marks");
      for (k = 0; k < (scanned ? 0 : (size_t)e->data_len); k++)
        if (c->tag_codes[k] < 0 || c->tag_codes[k] >= count)
          return damaged(r, at, SECTION_TAG_CODES, err, errlen, "holds a code outside the dictionary");
      break;
    default: break;
  }
  return 0;
}

/* Every column read into the table's own arrays (room for nrows made already); a column not wanted
** is passed over. */
static int read_columns(lq_snapshot_reader *r, lq_table *t, const column_plan_entry *plan, uint32_t nplan,
                        uint64_t nrows, const char *table_name, char *err, size_t errlen) {
  uint32_t i;
  for (i = 0; i < nplan; i++) {
    const column_plan_entry *e = &plan[i];
    lq_column *c;
    place at;
    size_t n = (size_t)nrows;
    at.table = table_name;
    if (e->col < 0) {
      if (skip_column(r, e, nrows, table_name, err, errlen) != 0) return -1;
      continue;
    }
    c = t->cols[e->col];
    at.column = c->name;
    switch (c->type) {
      case LQ_NUMBER: case LQ_TIME:
        if (read_section(r, SECTION_VALUES, n * sizeof(double), c->numbers, &at, err, errlen) != 0) return -1;
        break;
      case LQ_BOOLEAN:
        if (read_section(r, SECTION_VALUES, n, c->bools, &at, err, errlen) != 0) return -1;
        break;
      case LQ_CATEGORY:
        if (read_section(r, SECTION_VALUES, n * sizeof(int32_t), c->codes, &at, err, errlen) != 0 ||
            read_dict(r, t, c, e, &at, err, errlen) != 0)
          return -1;
        break;
      case LQ_TEXT:
        if (read_section(r, SECTION_OFFSETS, (n + 1) * sizeof(uint64_t), c->offsets, &at, err, errlen) != 0) return -1;
        if (e->data_len > 0 && lq_column_reserve_text(t, e->col, (size_t)e->data_len) != 0)
          return failf(err, errlen, r->path, "not enough memory");
        if (read_section(r, SECTION_TEXT, e->data_len, c->text, &at, err, errlen) != 0 ||
            read_section(r, SECTION_MISSING, n, c->text_missing, &at, err, errlen) != 0)
          return -1;
        c->text_len = (size_t)e->data_len;
        break;
      case LQ_TAGS: {
        size_t ncodes = (size_t)e->data_len;
        if (read_section(r, SECTION_OFFSETS, (n + 1) * sizeof(uint64_t), c->tag_offsets, &at, err, errlen) != 0)
          return -1;
        if (ncodes > 0) {
          c->tag_codes = (int32_t *)t->alloc.fn(t->alloc.ud, NULL, 0, ncodes * sizeof(int32_t));
          if (c->tag_codes == NULL) return failf(err, errlen, r->path, "not enough memory");
          c->tag_cap = ncodes;
        }
        if (read_section(r, SECTION_TAG_CODES, ncodes * sizeof(int32_t), c->tag_codes, &at, err, errlen) != 0 ||
            read_section(r, SECTION_MISSING, n, c->text_missing, &at, err, errlen) != 0 ||
            read_dict(r, t, c, e, &at, err, errlen) != 0)
          return -1;
        c->tag_len = ncodes;
        break;
      }
      default:
        return -1;
    }
    if (check_values(r, c, e, nrows, 0, &at, err, errlen) != 0) return -1;
  }
  return 0;
}

/* ---- reading in place (a mapped file, or borrowed bytes) ---- */

/* A wanted section in memory, its checksum to check. */
enum { SCAN_NONE, SCAN_BOOLEANS, SCAN_CODES, SCAN_TAG_CODES };

typedef struct span {
  const unsigned char *p;
  uint64_t len, sum;
  uint32_t kind;
  uint32_t plan;          /* its column's plan entry */
  int scan;               /* SCAN_*: its values checked too, by the same thread, while in cache */
  int32_t codes;          /* SCAN_CODES, SCAN_TAG_CODES: the dictionary's size */
  int bad;                /* set by the check: 1 its checksum, 2 a value */
} span;

/* Booleans 0, 1 or missing; codes within the dictionary (or missing, for a category): 1 when not. */
static int bad_values(const span *x) {
  size_t k, n;
  if (x->scan == SCAN_BOOLEANS) {
    for (k = 0; k < (size_t)x->len; k++)
      if (x->p[k] > LQ_MISSING_BOOL) return 1;
    return 0;
  }
  if (x->scan == SCAN_CODES || x->scan == SCAN_TAG_CODES) {
    const int32_t *c = (const int32_t *)(const void *)x->p;
    int32_t lo = x->scan == SCAN_CODES ? LQ_MISSING_CODE : 0;
    int bad = 0;
    n = (size_t)x->len / sizeof(int32_t);
    for (k = 0; k < n; k++) bad |= (c[k] < lo) | (c[k] >= x->codes);   /* no branch: vectorized */
    return bad;
  }
  return 0;
}

typedef struct sum_job {
  span *spans;
  uint32_t nspans;
  int job, njobs;
  const uint32_t *owner;  /* owner[s]: the job that checks span s */
} sum_job;

/* The page tables of a mapped span made at once (one call, not a fault every 64 KB). Advice only. */
static void populate(const unsigned char *p, size_t len) {
#if defined(MADV_POPULATE_READ)
  uintptr_t page = 4096, lo = (uintptr_t)p & ~(page - 1), hi = ((uintptr_t)p + len + page - 1) & ~(page - 1);
  if (len >= ((size_t)1 << 20)) (void)madvise((void *)lo, (size_t)(hi - lo), MADV_POPULATE_READ);
#else
  (void)p;
  (void)len;
#endif
}

static void *sum_main(void *arg) {
  sum_job *j = (sum_job *)arg;
  uint32_t s;
  for (s = 0; s < j->nspans; s++) {
    span *x = &j->spans[s];
    hasher h;
    if ((int)j->owner[s] != j->job) continue;
    populate(x->p, (size_t)padded(x->len));
    hasher_init(&h, section_seed(x->kind, x->len));
    hasher_update(&h, x->p, (size_t)padded(x->len));   /* the padding is the section's too */
    x->bad = hasher_final(&h) != x->sum ? 1 : bad_values(x) ? 2 : 0;
  }
  return NULL;
}

/* Each span's checksum on up to r->threads threads, the biggest spans first to the least loaded. */
static int check_spans(lq_snapshot_reader *r, span *spans, uint32_t nspans) {
  sum_job jobs[LQ_RUN_MAX_JOBS];
  uint64_t load[LQ_RUN_MAX_JOBS];
  uint32_t *owner = (uint32_t *)malloc((nspans > 0 ? nspans : 1) * sizeof(uint32_t));
  uint64_t total = 0;
  uint32_t s;
  int njobs = r->threads < 1 ? 1 : r->threads, k;
  if (owner == NULL) return -1;
  for (s = 0; s < nspans; s++) total += spans[s].len;
  if (total < ((uint64_t)4 << 20)) njobs = 1;   /* a thread costs more than hashing a few MB */
  for (k = 0; k < njobs; k++) load[k] = 0;
  for (s = 0; s < nspans; s++) owner[s] = UINT32_MAX;
  for (;;) {   /* nspans is a few dozen: a selection pass per span */
    uint32_t big = UINT32_MAX;
    int least = 0;
    for (s = 0; s < nspans; s++)
      if (owner[s] == UINT32_MAX && (big == UINT32_MAX || spans[s].len > spans[big].len)) big = s;
    if (big == UINT32_MAX) break;
    for (k = 1; k < njobs; k++)
      if (load[k] < load[least]) least = k;
    owner[big] = (uint32_t)least;
    load[least] += spans[big].len + 64;
  }
  for (k = 0; k < njobs; k++) {
    jobs[k].spans = spans;
    jobs[k].nspans = nspans;
    jobs[k].job = k;
    jobs[k].njobs = njobs;
    jobs[k].owner = owner;
  }
  lq_run_jobs(sum_main, jobs, sizeof jobs[0], njobs);
  free(owner);
  return 0;
}

/* Every column in place: first each section's header (the unwanted ones passed over), then the
** wanted sections' checksums, all before any byte is used; then the columns point into memory and
** their values are checked as a read table's are. */
static int map_columns(lq_snapshot_reader *r, lq_table *t, const column_plan_entry *plan, uint32_t nplan,
                       uint64_t nrows, const char *table_name, char *err, size_t errlen) {
  span *spans = (span *)malloc(((size_t)nplan * 5 + 1) * sizeof(span));
  uint32_t i, nspans = 0, first_span;
  int status = -1, k;
  column_sections cs;
  place at;
  at.table = table_name;
  if (spans == NULL) return failf(err, errlen, r->path, "not enough memory");
  for (i = 0; i < nplan; i++) {
    const column_plan_entry *e = &plan[i];
    if (e->col < 0) {
      if (skip_column(r, e, nrows, table_name, err, errlen) != 0) goto done;
      continue;
    }
    at.column = t->cols[e->col]->name;
    sections_of(e, nrows, &cs);
    for (k = 0; k < cs.n; k++) {
      span *x = &spans[nspans];
      if (section_header(r, cs.kind[k], cs.len[k], &at, &x->sum, err, errlen) != 0) goto done;
      x->p = r->memory + r->offset;
      x->len = cs.len[k];
      x->kind = cs.kind[k];
      x->plan = i;
      x->bad = 0;
      x->codes = (int32_t)e->dict_count;
      x->scan = cs.kind[k] == SECTION_TAG_CODES ? SCAN_TAG_CODES
              : cs.kind[k] != SECTION_VALUES ? SCAN_NONE
              : e->type == LQ_BOOLEAN ? SCAN_BOOLEANS : e->type == LQ_CATEGORY ? SCAN_CODES : SCAN_NONE;
      r->offset += padded(cs.len[k]);
      nspans++;
    }
  }
  if (check_spans(r, spans, nspans) != 0) {
    failf(err, errlen, r->path, "not enough memory");
    goto done;
  }
  for (i = 0; i < nspans; i++)   /* every checksum first, then the values the threads checked */
    if (spans[i].bad == 1) {
      at.column = t->cols[plan[spans[i].plan].col]->name;
      damaged(r, &at, spans[i].kind, err, errlen, "fails its checksum");
      goto done;
    }
  for (i = 0; i < nspans; i++)
    if (spans[i].bad == 2) {
      at.column = t->cols[plan[spans[i].plan].col]->name;
      damaged(r, &at, spans[i].kind, err, errlen, spans[i].scan == SCAN_BOOLEANS ? "holds a value that is no boolean"
              : "holds a code outside the dictionary");
      goto done;
    }
  if (r->mapping != NULL) lq_table_use_mapping(t, r->mapping);
  for (first_span = 0; first_span < nspans; first_span += (uint32_t)cs.n) {
    const column_plan_entry *e = &plan[spans[first_span].plan];
    const span *x = &spans[first_span];   /* the column's sections, in the order sections_of gives */
    lq_column *c = t->cols[e->col];
    sections_of(e, nrows, &cs);
    at.column = c->name;
    if (e->type == LQ_TEXT || e->type == LQ_TAGS)
      lq_column_map(t, e->col, NULL, (uint64_t *)(void *)x[0].p, (void *)x[1].p, (size_t)e->data_len,
                    (uint8_t *)x[2].p, (size_t)nrows);
    else
      lq_column_map(t, e->col, (void *)x[0].p, NULL, NULL, 0, NULL, (size_t)nrows);
    if ((e->type == LQ_CATEGORY || e->type == LQ_TAGS) &&   /* the dictionary: its last two sections */
        build_dict(r, t, c, e, (const uint32_t *)(const void *)x[cs.n - 2].p, (const char *)x[cs.n - 1].p, &at,
                   err, errlen) != 0)
      goto done;
    if (check_values(r, c, e, nrows, 1, &at, err, errlen) != 0) goto done;
  }
  t->cap = (size_t)nrows;   /* every column has room for exactly its rows */
  status = 0;
done:
  free(spans);
  return status;
}

/* The table description, checked, into a new table with its columns and room for its rows. */
static int read_table_body(lq_snapshot_reader *r, lq_table *t, char name[LQ_SNAPSHOT_NAME_MAX],
                           char *err, size_t errlen) {
  unsigned char head[SECTION_HEADER_SIZE];
  column_plan_entry *plan = NULL;
  cursor cur;
  uint64_t len, nrows, nrejects, need = 0, k;
  uint32_t ncols, flags, n, i;
  const char *s;
  unsigned char *meta;
  place at;
  int status = -1;
  at.table = "?";
  at.column = NULL;
  /* the description's length comes first: peek at its section header */
  if (read_exact(r, head, sizeof head, err, errlen) != 0) return -1;
  r->offset -= sizeof head;
  if (r->memory == NULL && lseek(r->fd, -(off_t)sizeof head, SEEK_CUR) < 0)
    return failf(err, errlen, r->path, "%s", strerror(errno));
  len = u64_at(head + 8);
  if (u32_at(head) != SECTION_TABLE || len > r->file_size - r->offset)
    return failf(err, errlen, r->path, "damaged snapshot: table %u's description is missing at byte %llu",
                 r->next_table + 1, (unsigned long long)r->offset);
  meta = scratch(r, (size_t)len);
  if (meta == NULL) return failf(err, errlen, r->path, "not enough memory");
  {
    char label[16];
    snprintf(label, sizeof label, "%u", r->next_table + 1);
    at.table = label;
    if (read_section(r, SECTION_TABLE, len, meta, &at, err, errlen) != 0) return -1;
  }
  at.table = name;
  cur.p = meta;
  cur.end = meta + len;
  cur.bad = 0;
  s = get_string(&cur, &n);
  if (cur.bad || n == 0 || n >= LQ_SNAPSHOT_NAME_MAX || memchr(s, '\0', n) != NULL)
    return failf(err, errlen, r->path, "damaged snapshot: table %u has no valid name", r->next_table + 1);
  memcpy(name, s, n);
  name[n] = '\0';
  nrows = get_u64(&cur);
  ncols = get_u32(&cur);
  flags = get_u32(&cur);
  if (cur.bad || ncols > LQ_MAX_COLUMNS || (flags & ~LQ_TABLE_EVENTS) != 0 || nrows > ((size_t)-1) / 16 ||
      (ncols > 0 && nrows > r->file_size))
    return failf(err, errlen, r->path, "damaged snapshot: table %s's description is out of range", name);
  t->flags = flags;
  n = get_u32(&cur);
  if (n != UINT32_MAX) {
    cur.p -= 4;
    s = get_string(&cur, &n);
    if (cur.bad || lq_table_set_source(t, s, n) != 0)
      return failf(err, errlen, r->path, cur.bad ? "damaged snapshot: table %s's description is cut short" :
                   "not enough memory (table %s)", name);
  }
  nrejects = get_u64(&cur);
  if (cur.bad) return failf(err, errlen, r->path, "damaged snapshot: table %s's description is cut short", name);
  plan = (column_plan_entry *)calloc(ncols > 0 ? ncols : 1, sizeof *plan);
  if (plan == NULL) return failf(err, errlen, r->path, "not enough memory");
  for (i = 0; i < ncols; i++) {
    char cname[1024];
    uint32_t sep;
    column_plan_entry *e = &plan[i];
    int col;
    e->type = get_u32(&cur);
    s = get_string(&cur, &n);
    sep = get_u32(&cur);
    e->data_len = get_u64(&cur);
    e->dict_count = get_u64(&cur);
    e->dict_bytes = get_u64(&cur);
    if (cur.bad || e->type >= LQ_TYPE_COUNT || n == 0 || n >= sizeof cname || memchr(s, '\0', n) != NULL ||
        sep > 255 || e->dict_count >= (uint64_t)INT32_MAX || e->data_len > r->file_size ||
        e->dict_bytes > r->file_size || e->dict_count > e->dict_bytes ||
        ((e->type != LQ_CATEGORY && e->type != LQ_TAGS) && (e->dict_count != 0 || e->dict_bytes != 0)) ||
        ((e->type != LQ_TEXT && e->type != LQ_TAGS) && e->data_len != 0)) {
      failf(err, errlen, r->path, "damaged snapshot: table %s's column %u is described out of range", name, i + 1);
      goto done;
    }
    memcpy(cname, s, n);
    cname[n] = '\0';
    e->col = -1;
    if (r->want != NULL && !r->want(r->want_ud, name, cname)) goto counted;
    col = lq_table_add_column(t, cname, (lq_type)e->type);
    if (col == -2) {
      failf(err, errlen, r->path, "damaged snapshot: table %s names column '%s' twice", name, cname);
      goto done;
    }
    if (col < 0) {
      failf(err, errlen, r->path, "not enough memory (table %s)", name);
      goto done;
    }
    t->cols[col]->tag_separator = (char)sep;
    e->col = col;
  counted:
    /* the bytes its sections will take, to refuse a size the file cannot hold before allocating */
    switch (e->type) {
      case LQ_NUMBER: case LQ_TIME: need += nrows * 8; break;
      case LQ_BOOLEAN: need += nrows; break;
      case LQ_CATEGORY: need += nrows * 4 + e->dict_count * 4 + e->dict_bytes; break;
      case LQ_TEXT: need += nrows * 9 + e->data_len; break;
      default: need += nrows * 9 + e->data_len * 4 + e->dict_count * 4 + e->dict_bytes; break;
    }
    if (need > r->file_size) {
      failf(err, errlen, r->path, "damaged snapshot: table %s says it holds more than the file does", name);
      goto done;
    }
  }
  for (k = 0; k < nrejects; k++) {
    uint64_t line = get_u64(&cur), record = get_u64(&cur);
    int32_t column = (int32_t)get_u32(&cur);
    char reason[1024];
    s = get_string(&cur, &n);
    if (cur.bad || column < -1 || column >= (int32_t)ncols || n >= sizeof reason || memchr(s, '\0', n) != NULL) {
      failf(err, errlen, r->path, "damaged snapshot: table %s's rejected row %llu is described out of range", name,
            (unsigned long long)(k + 1));
      goto done;
    }
    memcpy(reason, s, n);
    reason[n] = '\0';
    if (lq_table_add_reject(t, line, record, column, reason) != 0) {
      failf(err, errlen, r->path, "not enough memory (table %s)", name);
      goto done;
    }
  }
  if (cur.p != cur.end) {
    failf(err, errlen, r->path, "damaged snapshot: table %s's description has bytes left over", name);
    goto done;
  }
  if (r->borrow && r->memory != NULL) {
    if (map_columns(r, t, plan, ncols, nrows, name, err, errlen) != 0) goto done;
  } else {
    if (nrows > 0 && lq_table_reserve(t, (size_t)nrows) != 0) {
      failf(err, errlen, r->path, "not enough memory for the %llu rows of table %s", (unsigned long long)nrows, name);
      goto done;
    }
    if (read_columns(r, t, plan, ncols, nrows, name, err, errlen) != 0) goto done;
  }
  t->nrows = (size_t)nrows;
  status = 0;
done:
  free(plan);
  return status;
}

int lq_snapshot_read_table(lq_snapshot_reader *r, lq_allocator alloc, lq_table **out,
                           char name[LQ_SNAPSHOT_NAME_MAX], char *err, size_t errlen) {
  lq_table *t;
  *out = NULL;
  name[0] = '\0';
  if (r->fd < 0 && r->memory == NULL) return failf(err, errlen, r->path ? r->path : "snapshot", "the reader is closed");
  if (r->next_table >= r->ntables) return failf(err, errlen, r->path, "no more tables");
  t = lq_table_new(alloc);
  if (t == NULL) return failf(err, errlen, r->path, "not enough memory");
  *out = t;   /* the caller's owner holds it from here, even while it is built */
  if (read_table_body(r, t, name, err, errlen) != 0) {
    *out = NULL;
    lq_table_free(t);
    return -1;
  }
  r->next_table++;
  return 0;
}

int lq_snapshot_finish(lq_snapshot_reader *r, char *err, size_t errlen) {
  place at;
  at.table = "(all)";
  at.column = NULL;
  if (r->next_table != r->ntables) return failf(err, errlen, r->path, "%u tables left unread", r->ntables - r->next_table);
  if (read_section(r, SECTION_END, 0, NULL, &at, err, errlen) != 0) return -1;
  if (r->offset != r->file_size)
    return failf(err, errlen, r->path, "damaged snapshot: %llu bytes after its end section",
                 (unsigned long long)(r->file_size - r->offset));
  return 0;
}

int lq_snapshot_read_bytes(const void *bytes, size_t len, int borrow, lq_allocator alloc, lq_table **out, int max,
                           int *ntables, char *err, size_t errlen) {
  lq_snapshot_reader r;
  char name[LQ_SNAPSHOT_NAME_MAX];
  int i, status = 0;
  lq_snapshot_reader_init(&r);
  r.memory = (const unsigned char *)bytes;
  r.borrow = borrow && ((uintptr_t)bytes & 7) == 0;
  r.threads = 1;
  r.path = "[bytes]";
  r.file_size = len;
  *ntables = 0;
  if (open_common(&r, err, errlen) != 0 || (int)r.ntables > max) {
    if ((int)r.ntables > max) failf(err, errlen, r.path, "more tables than asked for");
    lq_snapshot_close(&r);
    return -1;
  }
  for (i = 0; i < (int)r.ntables && status == 0; i++) {
    status = lq_snapshot_read_table(&r, alloc, &out[i], name, err, errlen);
    if (status == 0) *ntables = i + 1;
  }
  if (status == 0) status = lq_snapshot_finish(&r, err, errlen);
  if (status != 0) {
    for (i = 0; i < *ntables; i++) {
      lq_table_free(out[i]);
      out[i] = NULL;
    }
    *ntables = 0;
  }
  lq_snapshot_close(&r);
  return status;
}
