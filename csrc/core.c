/* leadq.core: the one exported symbol; each binding file adds its part of the module. */
#include <limits.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "compat.h"
#include "bindings.h"

LQ_EXPORT int luaopen_leadq_core(lua_State *L);

/* What the Lua files of the same build expect of this module (lua/leadq/init.lua checks it):
** raised whenever a function the Lua side calls is added or changes its arguments, so Lua files
** newer than a running core.so (an nginx reload keeps the old one) refuse to load, not misbehave.
** 2: one_scorer, state:encode(prefix), state:decode(s, init), record readers and answer writers.
** 3: state:observe(type, at, value, attributes), state:values(as_of, into), state:latest(), now().
** 4: evaluate(), wilson(), rate_ratio(), funnel:entered(), program:score's fired bits.
** 5: redis_connect() and its connection's call, pipeline, close (leadq.store for plain Lua hosts).
** 6: hmac_sha256(), hmac_sha256_verify() (the webhooks' signatures, by libcrypto).
** 7: save_snapshot(), read_snapshot(), is_snapshot() (columnar snapshots).
** 8: a funnel result's csv() (the CSV written in C).
** 9: cpus(); calendar(); state_line(); a Redis connection's receive_lines(); read_csv's columns_optional.
** 10: write_csv_columns() (the scores' CSV written in C).
** 11: a feature set's _compute_file() (the events stream); a table's counts(); write_csv_columns'
**     threads; a funnel result's json() and text(), the funnel's threads; redis_connect_unix().
** 12: read_snapshot's options (mapped, columns); a feature set's _compute into; keep_freed_memory().
** 13: keep_freed_memory(pool) (the page pool). */
#define LQ_INTERFACE 13

void lq_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  if (luaL_newmetatable(L, name)) {
    luaL_setfuncs(L, meta, 0);
    if (methods != NULL) {
      lua_newtable(L);
      lua_pushvalue(L, -2);             /* the metatable: a method may check its self against it */
      luaL_setfuncs(L, methods, 1);
      lua_setfield(L, -2, "__index");
    }
    lua_pushstring(L, name);            /* 5.1 does not set it; messages use it */
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}

/* core.now() -> seconds on a monotonic clock (ns resolution): wall time for timing several threads,
** where os.clock adds their CPU times up, without forking `date`. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* core.cpus() -> the processors online (sysconf), at least 1: what a batch command's threads default to. */
static int l_cpus(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n >= 1 ? (lua_Integer)n : 1);
  return 1;
}

/* core.keep_freed_memory([pool]) -> true, or false where the C library has no such setting. For a
** command's process, which ends with its run: blocks up to 32 MB come from the C heap and what is
** freed stays there for the next allocations. A fresh page costs a fault and its zeroing, dear on a
** virtual machine (a third of `leadq funnel`'s run from CSV files): glibc gives a freed block over
** 128 KB back to the system at once, so the table freed after a load left the process and the arrays
** made next faulted fresh pages again. Big blocks then come from the page pool (page_pool.h), which
** hands freed pages to the next block whatever its size, unless pool is false, or under
** AddressSanitizer, whose own heap then keeps watching them. A server embedding the core keeps the C
** library's setting. */
static int l_keep_freed_memory(lua_State *L) {
  int pool = lua_isnoneornil(L, 1) || lua_toboolean(L, 1), ok;
#if defined(__SANITIZE_ADDRESS__)
  pool = 0;
#endif
#if defined(__GLIBC__)
  ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1 && ok;
  if (pool) ok = lq_page_pool_enable() && ok;
  lua_pushboolean(L, ok);
#else
  ok = pool && lq_page_pool_enable();
  lua_pushboolean(L, ok);
#endif
  return 1;
}

static const char lua_allocator_key = 'a';

lq_allocator lq_lua_allocator(lua_State *L) {
  lq_allocator a, *base;
  lua_pushlightuserdata(L, (void *)&lua_allocator_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  base = (lq_allocator *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (base == NULL) {   /* made by luaopen_leadq_core; a state that never opened it makes it here */
    base = (lq_allocator *)lua_newuserdata(L, sizeof *base);
    base->fn = (lq_alloc_fn)lua_getallocf(L, &base->ud);
    lua_pushlightuserdata(L, (void *)&lua_allocator_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  a.fn = lq_big_block_alloc;
  a.ud = base;
  return a;
}

LQ_EXPORT int luaopen_leadq_core(lua_State *L) {
  (void)lq_lua_allocator(L);
  lua_newtable(L);
  lq_open_table(L);
  lq_open_csv_reader(L);
  lq_open_csv_writer(L);
  lq_open_random(L);
  lq_open_gen_events(L);
  lq_open_funnel(L);
  lq_open_program(L);
  lq_open_features(L);
  lq_open_accounts(L);
  lq_open_evaluate(L);
  lq_open_fit(L);
  lq_open_redis(L);
  lq_open_hmac(L);
  lq_open_calendar(L);
  lq_open_snapshot(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, LQ_INTERFACE);
  lua_setfield(L, -2, "interface");
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, l_keep_freed_memory);
  lua_setfield(L, -2, "keep_freed_memory");
  lua_pushcfunction(L, l_cpus);
  lua_setfield(L, -2, "cpus");
  return 1;
}
