/* The columnar lead table: dictionaries, columns, rows and rejects. Plain C, no Lua.
** Every byte comes from the table's allocator; every array grows geometrically. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include "table.h"

#if !defined(LQ_GROWTH_MIN)
#define LQ_GROWTH_MIN 16
#endif
#if !defined(LQ_HUGEPAGE_MIN)
#define LQ_HUGEPAGE_MIN ((size_t)3 << 20)   /* arrays this big ask for transparent huge pages */
#endif

static const char *const type_names[LQ_TYPE_COUNT] = {
  "number", "category", "boolean", "time", "text", "tags"
};

const char *lq_type_name(lq_type type) {
  return (type >= 0 && type < LQ_TYPE_COUNT) ? type_names[type] : "?";
}

int lq_type_from_name(const char *name) {
  int i;
  for (i = 0; i < LQ_TYPE_COUNT; i++)
    if (strcmp(name, type_names[i]) == 0) return i;
  return -1;
}

/* ---- memory ---- */

/* A column array is written once, front to back: on Linux, ask for transparent huge pages over
** the 2 MiB-aligned part of a big one. A first touch then costs one page fault per 2 MiB instead of
** one per 4 KiB, which is most of a load's kernel time. Only advice: the memory still comes from
** (and goes back to) the table's allocator. */
void lq_advise_huge_pages(void *p, size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(LQ_NO_HUGEPAGES)
  const uintptr_t huge = ((uintptr_t)1 << 21) - 1;
  uintptr_t lo = ((uintptr_t)p + huge) & ~huge, hi = ((uintptr_t)p + size) & ~huge;
  if (size >= LQ_HUGEPAGE_MIN && hi > lo) (void)madvise((void *)lo, (size_t)(hi - lo), MADV_HUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

/* Resize an array of `elem`-sized items from ocount to ncount; 0 on success. */
static int mem_resize(lq_allocator *a, void **p, size_t elem, size_t ocount, size_t ncount) {
  void *np;
  if (ncount > ((size_t)-1) / elem) return -1;
  if (ncount == 0) {
    lq_mem_free(a, *p, ocount * elem);
    *p = NULL;
    return 0;
  }
  np = lq_mem_resize(a, *p, *p ? ocount * elem : 0, ncount * elem);
  if (np == NULL) return -1;
  *p = np;
  lq_advise_huge_pages(np, ncount * elem);
  return 0;
}

/* Next capacity of a growing array: x1.5, at least `need`. */
static size_t grown(size_t cap, size_t need) {
  size_t n = cap + cap / 2;
  if (n < LQ_GROWTH_MIN) n = LQ_GROWTH_MIN;
  if (n < need) n = need;
  return n;
}

/* ---- dictionaries ---- */

/* A fast 32-bit hash of short strings: 8 bytes at a time, the tail with fixed-size (overlapping)
** loads so that no call to memcpy is made, then a final mix. */
uint32_t lq_fnv1a(const void *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

uint32_t lq_hash_bytes(const char *s, size_t len) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
  uint64_t w = 0;
  size_t n = len;
  while (n > 8) {
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  if (n == 8 || (len > 8 && n > 0)) {
    memcpy(&w, s + n - 8, 8);          /* the last 8 bytes, overlapping what went before */
  } else if (n >= 4) {
    uint32_t lo, hi;
    memcpy(&lo, s, 4);
    memcpy(&hi, s + n - 4, 4);
    w = (uint64_t)lo | ((uint64_t)hi << 32);
  } else if (n > 0) {
    w = (uint64_t)(unsigned char)s[0] | ((uint64_t)(unsigned char)s[n / 2] << 8) |
        ((uint64_t)(unsigned char)s[n - 1] << 16);
  }
  h = (h ^ w) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return (uint32_t)h;
}

void lq_dict_init(lq_dict *d) {
  memset(d, 0, sizeof *d);
}

void lq_dict_free(lq_dict *d, lq_allocator *a) {
  size_t cap = (size_t)d->cap;
  lq_mem_free(a, d->bytes, d->bytes_cap);
  lq_mem_free(a, d->starts, cap * (sizeof(size_t) + 2 * sizeof(uint32_t)));  /* one block, see dict_grow_entries */
  if (d->slots != NULL) lq_mem_free(a, d->slots, ((size_t)d->slot_mask + 1) * sizeof(int32_t));
  if (d->index != NULL) lq_mem_free(a, d->index, ((size_t)d->slot_mask + 1) * sizeof(lq_dict_slot));
  lq_dict_init(d);
}

/* With many distinct values the arrays do not fit in cache: the index slot holds what a probe
** needs, so a hit costs one slot and the bytes instead of five scattered reads. */
static int32_t dict_lookup(const lq_dict *d, const char *s, size_t len, uint32_t h) {
  uint32_t i;
  if (d->index == NULL) return -1;
  for (i = h & d->slot_mask;; i = (i + 1) & d->slot_mask) {
    const lq_dict_slot *e = &d->index[i];
    if (e->code < 0) return -1;
    if (e->hash == h && e->len == len) {
      size_t start = e->start != UINT32_MAX ? e->start : d->starts[e->code];
      if (lq_same_bytes(d->bytes + start, s, len)) return e->code;
    }
  }
}

static void index_set(lq_dict *d, uint32_t i, int32_t code) {
  lq_dict_slot *e = &d->index[i];
  e->hash = d->hashes[code];
  e->code = code;
  e->len = d->lengths[code];
  e->start = d->starts[code] < UINT32_MAX ? (uint32_t)d->starts[code] : UINT32_MAX;
  d->slots[i] = code;
}

int32_t lq_dict_find(const lq_dict *d, const char *s, size_t len) {
  uint32_t h = lq_hash_bytes(s, len);
  int32_t code;
  if (d->index == NULL) {   /* not indexed yet (lq_dict_load): a scan, right if slow */
    for (code = 0; code < d->count; code++)
      if (d->hashes[code] == h && d->lengths[code] == len && lq_same_bytes(d->bytes + d->starts[code], s, len))
        return code;
    return -1;
  }
  return dict_lookup(d, s, len, h);
}

const char *lq_dict_string(const lq_dict *d, int32_t code, size_t *len) {
  if (code < 0 || code >= d->count) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = d->lengths[code];
  return d->bytes + d->starts[code];
}

/* Rebuild the slot array with room for twice the codes (load factor <= 1/2). */
static int dict_rehash(lq_dict *d, lq_allocator *a, uint32_t nslots) {
  int32_t *slots = NULL;
  lq_dict_slot *index = NULL;
  int32_t code;
  uint32_t i, mask = nslots - 1;
  if (mem_resize(a, (void **)&slots, sizeof(int32_t), 0, nslots) != 0) return -1;
  if (mem_resize(a, (void **)&index, sizeof(lq_dict_slot), 0, nslots) != 0) {
    lq_mem_free(a, slots, (size_t)nslots * sizeof(int32_t));
    return -1;
  }
  for (i = 0; i < nslots; i++) index[i].code = -1;
  if (d->slots != NULL) lq_mem_free(a, d->slots, ((size_t)d->slot_mask + 1) * sizeof(int32_t));
  if (d->index != NULL) lq_mem_free(a, d->index, ((size_t)d->slot_mask + 1) * sizeof(lq_dict_slot));
  d->slots = slots;
  d->index = index;
  d->slot_mask = mask;
  memset(slots, 0xff, (size_t)nslots * sizeof(int32_t));
  for (code = 0; code < d->count; code++) {
    for (i = d->hashes[code] & mask; index[i].code >= 0; i = (i + 1) & mask) {}
    index_set(d, i, code);
  }
  return 0;
}

/* starts, lengths and hashes share one block (starts first), so growing them fails or
** succeeds as one. Room for ncap entries (> d->cap), the ones there kept. */
static int dict_grow_entries(lq_dict *d, lq_allocator *a, size_t ncap) {
  size_t ocap = (size_t)d->cap;
  const size_t entry = sizeof(size_t) + 2 * sizeof(uint32_t);
  char *block;
  if (ncap > INT32_MAX) ncap = INT32_MAX;
  if (ncap > ((size_t)-1) / entry) return -1;
  block = (char *)lq_mem_resize(a, NULL, 0, ncap * entry);
  if (block == NULL) return -1;
  if (ocap > 0) {
    memcpy(block, d->starts, ocap * sizeof(size_t));
    memcpy(block + ncap * sizeof(size_t), d->lengths, ocap * sizeof(uint32_t));
    memcpy(block + ncap * (sizeof(size_t) + sizeof(uint32_t)), d->hashes, ocap * sizeof(uint32_t));
    lq_mem_free(a, d->starts, ocap * entry);
  }
  d->starts = (size_t *)(void *)block;
  d->lengths = (uint32_t *)(void *)(block + ncap * sizeof(size_t));
  d->hashes = (uint32_t *)(void *)(block + ncap * (sizeof(size_t) + sizeof(uint32_t)));
  d->cap = (int32_t)ncap;
  return 0;
}

static int32_t dict_add(lq_dict *d, lq_allocator *a, const char *s, size_t len, uint32_t h) {
  int32_t code = d->count;
  uint32_t i;
  if (len > UINT32_MAX || d->count == INT32_MAX - 1) return -2;
  if ((size_t)d->count * 2 + 2 > (d->slots ? (size_t)d->slot_mask + 1 : 0)) {
    uint32_t n = d->slots ? (d->slot_mask + 1) * 2 : 16;
    if (n == 0 || dict_rehash(d, a, n) != 0) return -2;
  }
  if (d->count == d->cap && dict_grow_entries(d, a, grown((size_t)d->cap, (size_t)d->cap + 1)) != 0) return -2;
  if (d->bytes_len + len + 1 > d->bytes_cap) {
    size_t ncap = grown(d->bytes_cap, d->bytes_len + len + 1);
    if (ncap < 64) ncap = 64;
    if (mem_resize(a, (void **)&d->bytes, 1, d->bytes_cap, ncap) != 0) return -2;
    d->bytes_cap = ncap;
  }
  if (len > 0) memcpy(d->bytes + d->bytes_len, s, len);
  d->bytes[d->bytes_len + len] = '\0';
  d->starts[code] = d->bytes_len;
  d->lengths[code] = (uint32_t)len;
  d->hashes[code] = h;
  d->bytes_len += len + 1;
  d->count++;
  for (i = h & d->slot_mask; d->index[i].code >= 0; i = (i + 1) & d->slot_mask) {}
  index_set(d, i, code);
  return code;
}

int lq_dict_index(lq_dict *d, lq_allocator *a) {
  uint32_t n = 16;
  if (d->index != NULL || d->count == 0) return 0;
  while ((size_t)n < (size_t)d->count * 2 + 2) n *= 2;
  return dict_rehash(d, a, n);
}

int lq_dict_load(lq_dict *d, lq_allocator *a, const uint32_t *lengths, const char *bytes, int32_t count,
                 size_t bytes_len, int index) {
  size_t pos = 0;
  int32_t k;
  if (d->count != 0 || d->cap != 0 || count < 0 || count >= INT32_MAX - 1) return -2;
  for (k = 0; k < count; k++) {   /* every length and its NUL within the bytes, before anything is kept */
    if (lengths[k] >= bytes_len - pos || bytes[pos + lengths[k]] != '\0') return -2;
    pos += (size_t)lengths[k] + 1;
  }
  if (pos != bytes_len) return -2;
  if (dict_grow_entries(d, a, count > 0 ? (size_t)count : 1) != 0) return -1;
  d->bytes = (char *)lq_mem_new(a, bytes_len);
  if (d->bytes == NULL) {
    lq_dict_free(d, a);
    return -1;
  }
  if (bytes_len > 0) memcpy(d->bytes, bytes, bytes_len);
  d->bytes_len = d->bytes_cap = bytes_len;
  for (k = 0, pos = 0; k < count; k++) {
    d->starts[k] = pos;
    d->lengths[k] = lengths[k];
    d->hashes[k] = lq_hash_bytes(d->bytes + pos, lengths[k]);
    pos += (size_t)lengths[k] + 1;
  }
  d->count = count;
  if (!index) return 0;
  if (lq_dict_index(d, a) != 0) return -1;
  for (k = 0; k < count; k++)   /* a value twice: its second code is not the one found */
    if (dict_lookup(d, d->bytes + d->starts[k], d->lengths[k], d->hashes[k]) != k) return -3;
  return 0;
}

int32_t lq_dict_intern_hash(lq_dict *d, lq_allocator *a, const char *s, size_t len, uint32_t hash) {
  int32_t code;
  if (d->index == NULL && d->count > 0 && lq_dict_index(d, a) != 0) return -2;
  code = dict_lookup(d, s, len, hash);
  if (code >= 0) return code;
  return dict_add(d, a, s, len, hash);
}

int32_t lq_dict_intern(lq_dict *d, lq_allocator *a, const char *s, size_t len) {
  return lq_dict_intern_hash(d, a, s, len, lq_hash_bytes(s, len));
}

/* ---- columns ---- */

/* A column's arrays (those not NULL) back to the allocator; its name and dictionary stay. */
static void column_free_arrays(lq_column *c, lq_allocator *a) {
  size_t cap = c->row_cap;
  lq_mem_free(a, c->numbers, cap * sizeof(double));
  lq_mem_free(a, c->bools, cap);
  lq_mem_free(a, c->codes, cap * sizeof(int32_t));
  lq_mem_free(a, c->offsets, (cap + 1) * sizeof(uint64_t));
  lq_mem_free(a, c->text, c->text_cap);
  lq_mem_free(a, c->text_missing, c->missing_cap);
  lq_mem_free(a, c->tag_offsets, (cap + 1) * sizeof(uint64_t));
  lq_mem_free(a, c->tag_codes, c->tag_cap * sizeof(int32_t));
}

static void column_free(lq_column *c, lq_allocator *a) {
  lq_mem_free(a, c->name, strlen(c->name) + 1);
  if (!c->mapped) column_free_arrays(c, a);   /* a mapped column's arrays are the mapping's */
  lq_dict_free(&c->dict, a);
  lq_mem_free(a, c, sizeof *c);
}

/* *dst: a copy of n bytes at src in the allocator's memory (NULL when src is); 0, or -1 no memory. */
static int own_copy(lq_allocator *a, void **dst, const void *src, size_t n) {
  *dst = NULL;
  if (src == NULL) return 0;
  if ((*dst = lq_mem_new(a, n)) == NULL) return -1;
  if (n > 0) memcpy(*dst, src, n);
  return 0;
}

/* A mapped column's arrays copied into memory of its own, before anything grows them. On failure
** the copies made are freed and the column still lies in the mapping. */
static int column_own(lq_column *c, lq_allocator *a) {
  lq_column copy;
  size_t cap = c->row_cap;
  if (!c->mapped) return 0;
  copy = *c;
  if (own_copy(a, (void **)&copy.numbers, c->numbers, cap * sizeof(double)) != 0 ||
      own_copy(a, (void **)&copy.bools, c->bools, cap) != 0 ||
      own_copy(a, (void **)&copy.codes, c->codes, cap * sizeof(int32_t)) != 0 ||
      own_copy(a, (void **)&copy.offsets, c->offsets, (cap + 1) * sizeof(uint64_t)) != 0 ||
      own_copy(a, (void **)&copy.text, c->text, c->text_cap) != 0 ||
      own_copy(a, (void **)&copy.text_missing, c->text_missing, c->missing_cap) != 0 ||
      own_copy(a, (void **)&copy.tag_offsets, c->tag_offsets, (cap + 1) * sizeof(uint64_t)) != 0 ||
      own_copy(a, (void **)&copy.tag_codes, c->tag_codes, c->tag_cap * sizeof(int32_t)) != 0) {
    /* the arrays not reached are still the mapped ones: only the copies made go back */
    if (copy.numbers == c->numbers) copy.numbers = NULL;
    if (copy.bools == c->bools) copy.bools = NULL;
    if (copy.codes == c->codes) copy.codes = NULL;
    if (copy.offsets == c->offsets) copy.offsets = NULL;
    if (copy.text == c->text) copy.text = NULL;
    if (copy.text_missing == c->text_missing) copy.text_missing = NULL;
    if (copy.tag_offsets == c->tag_offsets) copy.tag_offsets = NULL;
    if (copy.tag_codes == c->tag_codes) copy.tag_codes = NULL;
    column_free_arrays(&copy, a);
    return -1;
  }
  copy.mapped = 0;
  *c = copy;
  return 0;
}

/* Give a column room for `rows` rows; its arrays stay consistent whatever fails. */
static int column_reserve(lq_column *c, lq_allocator *a, size_t rows) {
  size_t o = c->row_cap;
  int ok = 0;
  if (rows <= o) return 0;
  if (column_own(c, a) != 0) return -1;
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME:
      ok = mem_resize(a, (void **)&c->numbers, sizeof(double), o, rows);
      break;
    case LQ_BOOLEAN:
      ok = mem_resize(a, (void **)&c->bools, 1, o, rows);
      break;
    case LQ_CATEGORY:
      ok = mem_resize(a, (void **)&c->codes, sizeof(int32_t), o, rows);
      break;
    case LQ_TEXT: case LQ_TAGS: {
      /* two arrays: text_missing keeps its own capacity, so a failure between them is harmless */
      uint64_t **offsets = c->type == LQ_TEXT ? &c->offsets : &c->tag_offsets;
      if (c->missing_cap < rows) {
        if (mem_resize(a, (void **)&c->text_missing, 1, c->missing_cap, rows) != 0) return -1;
        c->missing_cap = rows;
      }
      if (mem_resize(a, (void **)offsets, sizeof(uint64_t), o + 1, rows + 1) != 0) return -1;
      if (o == 0) (*offsets)[0] = 0;
      break;
    }
    default:
      return -1;
  }
  if (ok != 0) return -1;
  c->row_cap = rows;
  return 0;
}

/* Write "missing" into row `row` of a column (whose arrays have room for it). */
static void column_set_missing(lq_column *c, size_t row) {
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME: c->numbers[row] = NAN; break;
    case LQ_BOOLEAN: c->bools[row] = LQ_MISSING_BOOL; break;
    case LQ_CATEGORY: c->codes[row] = LQ_MISSING_CODE; break;
    case LQ_TEXT:
      c->text_len = (size_t)c->offsets[row];
      c->offsets[row + 1] = c->offsets[row];
      c->text_missing[row] = 1;
      break;
    case LQ_TAGS:
      c->tag_len = (size_t)c->tag_offsets[row];
      c->tag_offsets[row + 1] = c->tag_offsets[row];
      c->text_missing[row] = 1;
      break;
    default: break;
  }
}

int lq_column_is_missing(const lq_column *c, size_t row) {
  switch (c->type) {
    case LQ_NUMBER: case LQ_TIME: return isnan(c->numbers[row]);
    case LQ_BOOLEAN: return c->bools[row] == LQ_MISSING_BOOL;
    case LQ_CATEGORY: return c->codes[row] == LQ_MISSING_CODE;
    case LQ_TEXT: case LQ_TAGS: return c->text_missing[row] != 0;
    default: return 1;
  }
}

/* ---- tables ---- */

lq_table *lq_table_new(lq_allocator alloc) {
  lq_table *t = (lq_table *)alloc.fn(alloc.ud, NULL, 0, sizeof(lq_table));
  if (t == NULL) return NULL;
  memset(t, 0, sizeof *t);
  t->alloc = alloc;
  lq_dict_init(&t->names);
  return t;
}

void lq_table_free(lq_table *t) {
  lq_allocator a;
  int i;
  size_t r;
  if (t == NULL) return;
  a = t->alloc;
  for (i = 0; i < t->ncols; i++) column_free(t->cols[i], &a);
  lq_mem_free(&a, t->cols, (size_t)t->colcap * sizeof(lq_column *));
  for (r = 0; r < t->nrejects; r++) lq_mem_free(&a, t->rejects[r].reason, strlen(t->rejects[r].reason) + 1);
  lq_mem_free(&a, t->rejects, t->rejects_cap * sizeof(lq_reject));
  if (t->source != NULL) lq_mem_free(&a, t->source, strlen(t->source) + 1);
  lq_dict_free(&t->names, &a);
  lq_mapping_release(t->mapping);
  lq_mem_free(&a, t, sizeof *t);
}

int lq_table_find(const lq_table *t, const char *name) {
  return (int)lq_dict_find(&t->names, name, strlen(name));
}

int lq_table_add_column(lq_table *t, const char *name, lq_type type) {
  lq_allocator *a = &t->alloc;
  size_t len = strlen(name);
  lq_column *c;
  int32_t code;
  size_t r;
  if (type < 0 || type >= LQ_TYPE_COUNT || t->ncols >= LQ_MAX_COLUMNS) return -1;
  if (lq_dict_find(&t->names, name, len) >= 0) return -2;
  if (t->ncols == t->colcap) {
    size_t ncap = grown((size_t)t->colcap, (size_t)t->colcap + 1);
    if (mem_resize(a, (void **)&t->cols, sizeof(lq_column *), (size_t)t->colcap, ncap) != 0) return -1;
    t->colcap = (int)ncap;
  }
  c = (lq_column *)lq_mem_resize(a, NULL, 0, sizeof *c);
  if (c == NULL) return -1;
  memset(c, 0, sizeof *c);
  lq_dict_init(&c->dict);
  c->type = type;
  c->tag_separator = ';';
  c->name = (char *)lq_mem_resize(a, NULL, 0, len + 1);
  if (c->name == NULL) {
    lq_mem_free(a, c, sizeof *c);
    return -1;
  }
  memcpy(c->name, name, len + 1);
  /* Every column has room for the table's capacity, and existing rows read as missing. */
  if (column_reserve(c, a, t->cap > 0 ? t->cap : 0) != 0 ||
      (c->type == LQ_TEXT && c->offsets == NULL && column_reserve(c, a, LQ_GROWTH_MIN) != 0) ||
      (c->type == LQ_TAGS && c->tag_offsets == NULL && column_reserve(c, a, LQ_GROWTH_MIN) != 0)) {
    column_free(c, a);
    return -1;
  }
  for (r = 0; r < t->nrows; r++) column_set_missing(c, r);
  code = lq_dict_intern(&t->names, a, name, len);
  if (code < 0) {
    column_free(c, a);
    return -1;
  }
  t->cols[t->ncols] = c;
  return t->ncols++;
}

/* ---- mapped columns ---- */

lq_mapping *lq_mapping_new(void *addr, size_t len) {
  lq_mapping *m = (lq_mapping *)malloc(sizeof *m);
  if (m == NULL) return NULL;
  m->addr = addr;
  m->len = len;
  m->refs = 1;
  return m;
}

void lq_mapping_release(lq_mapping *m) {
  if (m == NULL || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
#if defined(__unix__) || defined(__APPLE__)
  if (m->addr != NULL) munmap(m->addr, m->len);
#endif
  free(m);
}

void lq_table_use_mapping(lq_table *t, lq_mapping *m) {
  if (t->mapping == m) return;
  __atomic_add_fetch(&m->refs, 1, __ATOMIC_ACQ_REL);
  lq_mapping_release(t->mapping);
  t->mapping = m;
}

void lq_column_map(lq_table *t, int col, void *values, uint64_t *offsets, void *data, size_t data_len,
                   uint8_t *missing, size_t nrows) {
  lq_column *c = t->cols[col];
  lq_dict dict = c->dict;         /* the column's own arrays go; its name and dictionary stay */
  char *name = c->name;
  lq_type type = c->type;
  char sep = c->tag_separator;
  column_free_arrays(c, &t->alloc);
  memset(c, 0, sizeof *c);
  c->name = name;
  c->type = type;
  c->tag_separator = sep;
  c->dict = dict;
  c->mapped = 1;
  c->row_cap = nrows;
  switch (type) {
    case LQ_NUMBER: case LQ_TIME: c->numbers = (double *)values; break;
    case LQ_BOOLEAN: c->bools = (uint8_t *)values; break;
    case LQ_CATEGORY: c->codes = (int32_t *)values; break;
    case LQ_TEXT: case LQ_TAGS:
      c->text_missing = missing;
      c->missing_cap = nrows;
      if (type == LQ_TEXT) {
        c->offsets = offsets;
        c->text = (char *)data;
        c->text_len = c->text_cap = data_len;
      } else {
        c->tag_offsets = offsets;
        c->tag_codes = (int32_t *)data;
        c->tag_len = c->tag_cap = data_len;
      }
      break;
    default: break;
  }
}

int lq_table_own(lq_table *t) {
  int i;
  for (i = 0; i < t->ncols; i++)
    if (column_own(t->cols[i], &t->alloc) != 0) return -1;
  return 0;
}

int lq_table_reserve(lq_table *t, size_t rows) {
  int i;
  if (rows <= t->cap) return 0;
  for (i = 0; i < t->ncols; i++)
    if (column_reserve(t->cols[i], &t->alloc, rows) != 0) return -1;
  t->cap = rows;
  return 0;
}

int lq_table_begin_row(lq_table *t) {
  int i;
  size_t row = t->nrows;
  if (row + 1 > t->cap && lq_table_reserve(t, grown(t->cap, row + 1)) != 0) return -1;
  for (i = 0; i < t->ncols; i++) column_set_missing(t->cols[i], row);
  return 0;
}

int lq_column_set_number(lq_table *t, int col, double v) {
  lq_column *c = t->cols[col];
  if (c->type != LQ_NUMBER && c->type != LQ_TIME) return -2;
  c->numbers[t->nrows] = v;
  return 0;
}

int lq_column_set_bool(lq_table *t, int col, int v) {
  lq_column *c = t->cols[col];
  if (c->type != LQ_BOOLEAN) return -2;
  c->bools[t->nrows] = (uint8_t)(v ? 1 : 0);
  return 0;
}

static int append_text(lq_column *c, lq_allocator *a, size_t row, const char *s, size_t len) {
  size_t start = (size_t)c->offsets[row];
  if (start + len > c->text_cap) {
    size_t ncap = grown(c->text_cap, start + len);
    if (column_own(c, a) != 0) return -1;
    if (ncap < 256) ncap = 256;
    if (mem_resize(a, (void **)&c->text, 1, c->text_cap, ncap) != 0) return -1;
    c->text_cap = ncap;
  }
  if (len > 0) memcpy(c->text + start, s, len);
  c->text_len = start + len;
  c->offsets[row + 1] = c->text_len;
  c->text_missing[row] = 0;
  return 0;
}

static int append_tag(lq_column *c, lq_allocator *a, int32_t code) {
  if (c->tag_len == c->tag_cap) {
    size_t ncap = grown(c->tag_cap, c->tag_len + 1);
    if (column_own(c, a) != 0) return -1;
    if (mem_resize(a, (void **)&c->tag_codes, sizeof(int32_t), c->tag_cap, ncap) != 0) return -1;
    c->tag_cap = ncap;
  }
  c->tag_codes[c->tag_len++] = code;
  return 0;
}

/* Start (or restart) the tag list of `row`: present, with zero tags. */
static void tags_begin(lq_column *c, size_t row) {
  c->tag_len = (size_t)c->tag_offsets[row];
  c->tag_offsets[row + 1] = c->tag_len;
  c->text_missing[row] = 0;
}

/* Add one tag (spaces around it trimmed; empty tags skipped) to the row being built. */
static int tags_add(lq_column *c, lq_allocator *a, size_t row, const char *s, size_t len) {
  int32_t code;
  while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  if (len == 0) return 0;
  code = lq_dict_intern(&c->dict, a, s, len);
  if (code < 0 || append_tag(c, a, code) != 0) return -1;
  c->tag_offsets[row + 1] = c->tag_len;
  return 0;
}

int lq_column_tags_begin(lq_table *t, int col) {
  lq_column *c = t->cols[col];
  if (c->type != LQ_TAGS) return -2;
  tags_begin(c, t->nrows);
  return 0;
}

int lq_column_tags_add(lq_table *t, int col, const char *s, size_t len) {
  lq_column *c = t->cols[col];
  if (c->type != LQ_TAGS) return -2;
  return tags_add(c, &t->alloc, t->nrows, s, len);
}

int lq_column_set_string(lq_table *t, int col, const char *s, size_t len) {
  lq_column *c = t->cols[col];
  size_t row = t->nrows;
  switch (c->type) {
    case LQ_CATEGORY: {
      int32_t code = lq_dict_intern(&c->dict, &t->alloc, s, len);
      if (code < 0) return -1;
      c->codes[row] = code;
      return 0;
    }
    case LQ_TEXT:
      return append_text(c, &t->alloc, row, s, len);
    case LQ_TAGS: {
      const char *end = s + len, *p = s;
      tags_begin(c, row);
      while (p <= end) {
        const char *q = memchr(p, c->tag_separator, (size_t)(end - p));
        if (q == NULL) q = end;
        if (tags_add(c, &t->alloc, row, p, (size_t)(q - p)) != 0) return -1;
        p = q + 1;
      }
      return 0;
    }
    default:
      return -2;
  }
}

void lq_table_end_row(lq_table *t) {
  t->nrows++;
}

void lq_table_cancel_row(lq_table *t) {
  int i;
  if (t->nrows >= t->cap) return;
  for (i = 0; i < t->ncols; i++) column_set_missing(t->cols[i], t->nrows);
}

void lq_table_truncate(lq_table *t, size_t nrows) {
  int i;
  if (nrows >= t->nrows) return;
  t->nrows = nrows;
  for (i = 0; i < t->ncols; i++) {
    lq_column *c = t->cols[i];
    if (c->type == LQ_TEXT) c->text_len = (size_t)c->offsets[nrows];
    if (c->type == LQ_TAGS) c->tag_len = (size_t)c->tag_offsets[nrows];
  }
}

/* Shrink one array to `n` items if that is allowed to fail: on failure the old block stays. */
static void shrink_array(lq_allocator *a, void **p, size_t elem, size_t *cap, size_t n) {
  void *np;
  if (*p == NULL || n >= *cap || n == 0) return;
  np = lq_mem_resize(a, *p, *cap * elem, n * elem);
  if (np != NULL) {
    *p = np;
    *cap = n;
  }
}

void lq_table_shrink(lq_table *t) {
  lq_allocator *a = &t->alloc;
  size_t rows = t->nrows > 0 ? t->nrows : 1;
  int i;
  for (i = 0; i < t->ncols; i++) {
    lq_column *c = t->cols[i];
    size_t cap = c->row_cap, cap1;
    if (c->mapped) {   /* the mapping's arrays: only its dictionary is the table's to shrink */
      shrink_array(a, (void **)&c->dict.bytes, 1, &c->dict.bytes_cap, c->dict.bytes_len);
      continue;
    }
    if (rows < cap) {
      /* a shrink that fails leaves the old block, and the capacities say so */
      switch (c->type) {
        case LQ_NUMBER: case LQ_TIME: shrink_array(a, (void **)&c->numbers, sizeof(double), &cap, rows); break;
        case LQ_BOOLEAN: shrink_array(a, (void **)&c->bools, 1, &cap, rows); break;
        case LQ_CATEGORY: shrink_array(a, (void **)&c->codes, sizeof(int32_t), &cap, rows); break;
        case LQ_TEXT: case LQ_TAGS: {
          uint64_t **offs = c->type == LQ_TEXT ? &c->offsets : &c->tag_offsets;
          cap1 = cap + 1;
          shrink_array(a, (void **)offs, sizeof(uint64_t), &cap1, rows + 1);
          cap = cap1 - 1;
          shrink_array(a, (void **)&c->text_missing, 1, &c->missing_cap, cap);  /* keeps >= cap */
          break;
        }
        default: break;
      }
      c->row_cap = cap;
    }
    shrink_array(a, (void **)&c->text, 1, &c->text_cap, c->text_len);
    shrink_array(a, (void **)&c->tag_codes, sizeof(int32_t), &c->tag_cap, c->tag_len);
    shrink_array(a, (void **)&c->dict.bytes, 1, &c->dict.bytes_cap, c->dict.bytes_len);
  }
  if (t->ncols > 0) {
    size_t mincap = (size_t)-1;
    for (i = 0; i < t->ncols; i++)
      if (t->cols[i]->row_cap < mincap) mincap = t->cols[i]->row_cap;
    t->cap = mincap;
  }
}

size_t lq_table_memory(const lq_table *t) {
  size_t total = sizeof *t + (size_t)t->colcap * sizeof(lq_column *);
  size_t r;
  int i;
  for (i = 0; i < t->ncols; i++) {
    const lq_column *c = t->cols[i];
    const lq_dict *d = &c->dict;
    size_t cap = c->row_cap;
    total += sizeof *c + strlen(c->name) + 1;
    if (c->mapped) goto dictionary;   /* its arrays are the file's pages */
    if (c->numbers) total += cap * sizeof(double);
    if (c->bools) total += cap;
    if (c->codes) total += cap * sizeof(int32_t);
    if (c->offsets) total += (cap + 1) * sizeof(uint64_t);
    if (c->tag_offsets) total += (cap + 1) * sizeof(uint64_t);
    if (c->text_missing) total += c->missing_cap;
    total += c->text_cap + c->tag_cap * sizeof(int32_t);
  dictionary:
    total += d->bytes_cap + (size_t)d->cap * (sizeof(size_t) + 2 * sizeof(uint32_t));
    if (d->slots) total += ((size_t)d->slot_mask + 1) * (sizeof(int32_t) + sizeof(lq_dict_slot));
  }
  total += t->rejects_cap * sizeof(lq_reject);
  for (r = 0; r < t->nrejects; r++) total += strlen(t->rejects[r].reason) + 1;
  return total;
}

int lq_column_reserve_text(lq_table *t, int col, size_t bytes) {
  lq_column *c = t->cols[col];
  if (c->type != LQ_TEXT) return -2;
  if (bytes <= c->text_cap) return 0;
  if (column_own(c, &t->alloc) != 0) return -1;
  if (mem_resize(&t->alloc, (void **)&c->text, 1, c->text_cap, bytes) != 0) return -1;
  c->text_cap = bytes;
  return 0;
}

int lq_table_set_source(lq_table *t, const char *s, size_t len) {
  char *copy = (char *)lq_mem_resize(&t->alloc, NULL, 0, len + 1);
  if (copy == NULL) return -1;
  memcpy(copy, s, len);
  copy[len] = '\0';
  if (t->source != NULL) lq_mem_free(&t->alloc, t->source, strlen(t->source) + 1);
  t->source = copy;
  return 0;
}

int lq_table_add_reject(lq_table *t, uint64_t line, uint64_t record, int column, const char *reason) {
  size_t len = strlen(reason);
  char *copy;
  if (t->nrejects == t->rejects_cap) {
    size_t ncap = grown(t->rejects_cap, t->nrejects + 1);
    if (mem_resize(&t->alloc, (void **)&t->rejects, sizeof(lq_reject), t->rejects_cap, ncap) != 0) return -1;
    t->rejects_cap = ncap;
  }
  copy = (char *)lq_mem_resize(&t->alloc, NULL, 0, len + 1);
  if (copy == NULL) return -1;
  memcpy(copy, reason, len + 1);
  t->rejects[t->nrejects].line = line;
  t->rejects[t->nrejects].record = record;
  t->rejects[t->nrejects].column = column;
  t->rejects[t->nrejects].reason = copy;
  t->nrejects++;
  return 0;
}

/* ---- text columns as codes ---- */

void lq_text_codes_init(lq_text_codes *tc) {
  memset(tc, 0, sizeof *tc);
  lq_dict_init(&tc->dict);
}

void lq_text_codes_free(lq_text_codes *tc, lq_allocator *a) {
  lq_mem_free(a, tc->codes, tc->cap * sizeof(int32_t));
  lq_dict_free(&tc->dict, a);
  lq_text_codes_init(tc);
}

int lq_text_codes_update(lq_text_codes *tc, lq_allocator *a, const lq_column *c, size_t nrows) {
  int fresh = 0;
  size_t row;
  if (tc->col != c || nrows < tc->rows) {
    lq_dict_free(&tc->dict, a);
    lq_dict_init(&tc->dict);
    tc->col = c;
    tc->rows = 0;
    fresh = 1;
  }
  if (nrows > tc->cap) {
    size_t cap = nrows + nrows / 4 + 16;
    int32_t *grown = (int32_t *)lq_mem_resize(a, tc->codes, tc->codes ? tc->cap * sizeof(int32_t) : 0,
                                          cap * sizeof(int32_t));
    if (grown == NULL) return -1;
    tc->codes = grown;
    tc->cap = cap;
  }
  for (row = tc->rows; row < nrows; row++) {
    int32_t code = LQ_MISSING_CODE;
    if (!c->text_missing[row]) {
      code = lq_dict_intern(&tc->dict, a, c->text + c->offsets[row], (size_t)(c->offsets[row + 1] - c->offsets[row]));
      if (code < 0) return -1;
    }
    tc->codes[row] = code;
  }
  tc->rows = nrows;
  return fresh;
}
