/* The generator behind leadq.core.random, in plain C (no Lua): xoshiro256** seeded through
** splitmix64, plus the draws built on it. Shared by random.c (the binding) and gen_events.c.
** Everything is uint64_t and IEEE double arithmetic, so a seed gives the same stream under every
** Lua the module is built for. */
#ifndef LEADQ_RANDOM_H
#define LEADQ_RANDOM_H

#include <math.h>
#include <stdint.h>

#define LQ_RANDOM_TYPE "leadq.Random"
#define LQ_SAMPLER_TYPE "leadq.Sampler"

typedef struct lq_random {
  uint64_t s[4];
} lq_random;

static inline uint64_t lq_splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static inline void lq_random_seed(lq_random *r, uint64_t seed) {
  int i;
  for (i = 0; i < 4; i++) r->s[i] = lq_splitmix64(&seed);
}

static inline uint64_t lq_rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t lq_random_next(lq_random *r) {
  uint64_t *s = r->s;
  uint64_t result = lq_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = lq_rotl(s[3], 45);
  return result;
}

/* [0, 1) */
static inline double lq_random_uniform(lq_random *r) {
  return (double)(lq_random_next(r) >> 11) * 0x1.0p-53;
}

/* (0, 1]: safe under log() and pow(u, negative) */
static inline double lq_random_open_uniform(lq_random *r) {
  return (double)((lq_random_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* [0, range): Lemire's multiply-and-reject, no modulo bias. range >= 1. */
static inline uint64_t lq_random_below(lq_random *r, uint64_t range) {
  __uint128_t m = (__uint128_t)lq_random_next(r) * range;
  uint64_t low = (uint64_t)m;
  if (low < range) {
    uint64_t threshold = (0 - range) % range;
    while (low < threshold) {
      m = (__uint128_t)lq_random_next(r) * range;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

/* [lo, hi], hi >= lo */
static inline int64_t lq_random_int(lq_random *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)lq_random_below(r, (uint64_t)(hi - lo) + 1);
}

static inline int lq_random_chance(lq_random *r, double p) {
  return lq_random_uniform(r) < p;
}

/* Box-Muller, one draw per call (no cached second value, so no hidden state) */
static inline double lq_random_normal(lq_random *r) {
  double u1 = lq_random_open_uniform(r);
  double u2 = lq_random_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

static inline double lq_random_lognormal(lq_random *r, double median, double sigma) {
  return median * exp(sigma * lq_random_normal(r));
}

static inline double lq_random_exponential(lq_random *r, double mean) {
  return -mean * log(lq_random_open_uniform(r));
}

/* Index of the first cum[i] > u * total: a draw from cumulative weights cum[0..n-1]. */
static inline int lq_random_pick(lq_random *r, const double *cum, int n, double total) {
  double target = lq_random_uniform(r) * total;
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (cum[mid] > target) hi = mid; else lo = mid + 1;
  }
  return lo;
}

#endif
