/* leadq.core.random: a small deterministic PRNG for the synthetic data generator.
**
** xoshiro256** seeded through splitmix64. All arithmetic is on uint64_t and IEEE doubles,
** so the same seed gives the same stream under Lua 5.4, 5.3 and LuaJIT (which has no
** integers): Lua only ever sees the results. No global state: each generator is a userdata.
**
**   core.random(seed)       seed: a whole number (|seed| <= 2^53) or a string
**   r:uniform()             [0, 1), 53 random bits
**   r:int(lo, hi)           whole number in [lo, hi], unbiased (hi - lo < 2^53)
**   r:chance(p)             true with probability p
**   r:normal([mu, sigma])   Box-Muller, one draw per call (no cached second value)
**   r:lognormal(median, sigma)  median * exp(sigma * normal()): no log() needed on the Lua side
**   r:exponential(mean)
**   r:pareto(xm, alpha)     xm * U^(-1/alpha): heavy tail, minimum xm
**   r:fork()                a new, independent generator seeded from this one's stream
**   r:next_hex()            the next raw 64-bit output as 16 hex digits (for tests)
**   core.sampler(weights)   s:draw(r): index 1..#weights with probability weight / sum
*/
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include "compat.h"
#include "bindings.h"
#include "random.h"

#define RANDOM_TYPE LQ_RANDOM_TYPE
#define SAMPLER_TYPE LQ_SAMPLER_TYPE

#if !defined(LQ_SAMPLER_MAX)
#define LQ_SAMPLER_MAX 1000000
#endif

/* Cumulative weights; a draw is a binary search (lq_random_pick). */
typedef struct lq_sampler {
  int n;
  double total;
  double cum[1];
} lq_sampler;

/* ---- bindings ---- */

#define MAX_EXACT 9007199254740992.0   /* 2^53: every whole number up to here is exact */

static lq_random *check_random(lua_State *L, int i) {
  return (lq_random *)luaL_checkudata(L, i, RANDOM_TYPE);
}

static lq_sampler *check_sampler(lua_State *L, int i) {
  return (lq_sampler *)luaL_checkudata(L, i, SAMPLER_TYPE);
}

static int64_t check_whole(lua_State *L, int i, const char *what) {
  lua_Number v = luaL_checknumber(L, i);
  if (!(v >= -MAX_EXACT && v <= MAX_EXACT) || floor(v) != v)
    luaL_error(L, "%s must be a whole number between -2^53 and 2^53", what);
  return (int64_t)v;
}

static double check_finite(lua_State *L, int i, const char *what) {
  lua_Number v = luaL_checknumber(L, i);
  if (!isfinite(v)) luaL_error(L, "%s must be a finite number", what);
  return (double)v;
}

static double opt_finite(lua_State *L, int i, double def, const char *what) {
  return lua_isnoneornil(L, i) ? def : check_finite(L, i, what);
}

static void push_whole(lua_State *L, int64_t v) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)v);
#else
  lua_pushnumber(L, (lua_Number)v);
#endif
}

static lq_random *new_random(lua_State *L) {
  lq_random *r = (lq_random *)lq_newuserdata(L, sizeof(lq_random));
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, RANDOM_TYPE);
  return r;
}

/* FNV-1a: a string seed becomes a 64-bit one. */
static uint64_t hash_seed(const char *s, size_t len) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

static int l_random_new(lua_State *L) {
  uint64_t seed;
  lq_random *r;
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    seed = hash_seed(s, len);
  } else if (lua_type(L, 1) == LUA_TNUMBER) {
    seed = (uint64_t)check_whole(L, 1, "seed");
  } else {
    return luaL_argerror(L, 1, "seed must be a whole number or a string");
  }
  r = new_random(L);
  lq_random_seed(r, seed);
  return 1;
}

static int l_uniform(lua_State *L) {
  lua_pushnumber(L, lq_random_uniform(check_random(L, 1)));
  return 1;
}

static int l_int(lua_State *L) {
  lq_random *r = check_random(L, 1);
  int64_t lo = check_whole(L, 2, "lower bound");
  int64_t hi = check_whole(L, 3, "upper bound");
  if (hi < lo) return luaL_error(L, "empty range: upper bound is below lower bound");
  if ((uint64_t)(hi - lo) >= (UINT64_C(1) << 53))
    return luaL_error(L, "range too wide: at most 2^53 values");
  push_whole(L, lq_random_int(r, lo, hi));
  return 1;
}

static int l_chance(lua_State *L) {
  lq_random *r = check_random(L, 1);
  double p = check_finite(L, 2, "probability");
  lua_pushboolean(L, lq_random_chance(r, p));
  return 1;
}

static int l_normal(lua_State *L) {
  lq_random *r = check_random(L, 1);
  double mu = opt_finite(L, 2, 0.0, "mean");
  double sigma = opt_finite(L, 3, 1.0, "standard deviation");
  lua_pushnumber(L, mu + sigma * lq_random_normal(r));
  return 1;
}

static int l_lognormal(lua_State *L) {
  lq_random *r = check_random(L, 1);
  double median = check_finite(L, 2, "median");
  double sigma = check_finite(L, 3, "sigma");
  lua_pushnumber(L, lq_random_lognormal(r, median, sigma));
  return 1;
}

static int l_exponential(lua_State *L) {
  lq_random *r = check_random(L, 1);
  double mean = check_finite(L, 2, "mean");
  lua_pushnumber(L, lq_random_exponential(r, mean));
  return 1;
}

static int l_pareto(lua_State *L) {
  lq_random *r = check_random(L, 1);
  double xm = check_finite(L, 2, "scale");
  double alpha = check_finite(L, 3, "shape");
  if (!(alpha > 0)) return luaL_error(L, "shape must be above 0");
  lua_pushnumber(L, xm * pow(lq_random_open_uniform(r), -1.0 / alpha));
  return 1;
}

static int l_fork(lua_State *L) {
  lq_random *r = check_random(L, 1);
  uint64_t seed = lq_random_next(r);
  lq_random_seed(new_random(L), seed);
  return 1;
}

static int l_next_hex(lua_State *L) {
  char buf[17];
  uint64_t v = lq_random_next(check_random(L, 1));
  snprintf(buf, sizeof buf, "%08lx%08lx", (unsigned long)(v >> 32), (unsigned long)(v & 0xffffffffu));
  lua_pushlstring(L, buf, 16);
  return 1;
}

static int l_random_tostring(lua_State *L) {
  lua_pushfstring(L, RANDOM_TYPE " (%p)", lua_touserdata(L, 1));
  return 1;
}

static int l_sampler_new(lua_State *L) {
  lq_sampler *s;
  size_t n, i;
  double total = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (size_t)lua_rawlen(L, 1);
  if (n == 0) return luaL_argerror(L, 1, "weights must be a non-empty list");
  if (n > LQ_SAMPLER_MAX) return luaL_argerror(L, 1, "too many weights");
  s = (lq_sampler *)lq_newuserdata(L, sizeof(lq_sampler) + (n - 1) * sizeof(double));
  s->n = 0;
  s->total = 0;
  luaL_setmetatable(L, SAMPLER_TYPE);
  for (i = 0; i < n; i++) {
    double w;
    lua_rawgeti(L, 1, (int)(i + 1));
    if (lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "weight %d is not a number", (int)(i + 1));
    w = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(w >= 0) || !isfinite(w))
      return luaL_error(L, "weight %d must be a finite number >= 0", (int)(i + 1));
    total += w;
    s->cum[i] = total;
  }
  if (!(total > 0)) return luaL_argerror(L, 1, "weights must not all be 0");
  s->n = (int)n;
  s->total = total;
  return 1;
}

static int l_sampler_draw(lua_State *L) {
  lq_sampler *s = check_sampler(L, 1);
  lq_random *r = check_random(L, 2);
  push_whole(L, lq_random_pick(r, s->cum, s->n, s->total) + 1);
  return 1;
}

static int l_sampler_len(lua_State *L) {
  push_whole(L, check_sampler(L, 1)->n);
  return 1;
}

static int l_sampler_tostring(lua_State *L) {
  lq_sampler *s = check_sampler(L, 1);
  lua_pushfstring(L, SAMPLER_TYPE " (%d weights)", s->n);
  return 1;
}

static const luaL_Reg random_methods[] = {
  {"uniform", l_uniform},
  {"int", l_int},
  {"chance", l_chance},
  {"normal", l_normal},
  {"lognormal", l_lognormal},
  {"exponential", l_exponential},
  {"pareto", l_pareto},
  {"fork", l_fork},
  {"next_hex", l_next_hex},
  {NULL, NULL}
};

static const luaL_Reg sampler_methods[] = {
  {"draw", l_sampler_draw},
  {NULL, NULL}
};

static const luaL_Reg random_meta[] = {
  {"__tostring", l_random_tostring},
  {NULL, NULL}
};

static const luaL_Reg sampler_meta[] = {
  {"__tostring", l_sampler_tostring},
  {"__len", l_sampler_len},
  {NULL, NULL}
};

void lq_open_random(lua_State *L) {
  lq_new_class(L, RANDOM_TYPE, random_meta, random_methods);
  lq_new_class(L, SAMPLER_TYPE, sampler_meta, sampler_methods);
  lua_pushcfunction(L, l_random_new);
  lua_setfield(L, -2, "random");
  lua_pushcfunction(L, l_sampler_new);
  lua_setfield(L, -2, "sampler");
}
