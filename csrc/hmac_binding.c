/* leadq.core.hmac_sha256(key, message) -> 64 hex digits; hmac_sha256_verify(key, message, hex) ->
** boolean, compared in constant time (a receiver checking a signature). */
#include "compat.h"
#include "bindings.h"
#include "hmac.h"

static int l_hmac_sha256(lua_State *L) {
  size_t key_len, msg_len;
  const char *key = luaL_checklstring(L, 1, &key_len);
  const char *msg = luaL_checklstring(L, 2, &msg_len);
  unsigned char mac[LQ_SHA256_SIZE];
  char hex[2 * LQ_SHA256_SIZE + 1];
  if (lq_hmac_sha256(key, key_len, msg, msg_len, mac) != 0) return luaL_error(L, "hmac_sha256: libcrypto failed");
  lq_hex(mac, sizeof mac, hex);
  lua_pushlstring(L, hex, 2 * LQ_SHA256_SIZE);
  return 1;
}

static int l_hmac_sha256_verify(lua_State *L) {
  size_t key_len, msg_len, given_len;
  const char *key = luaL_checklstring(L, 1, &key_len);
  const char *msg = luaL_checklstring(L, 2, &msg_len);
  const char *given = luaL_checklstring(L, 3, &given_len);
  unsigned char mac[LQ_SHA256_SIZE];
  char hex[2 * LQ_SHA256_SIZE + 1];
  if (lq_hmac_sha256(key, key_len, msg, msg_len, mac) != 0) return luaL_error(L, "hmac_sha256: libcrypto failed");
  lq_hex(mac, sizeof mac, hex);
  lua_pushboolean(L, given_len == 2 * LQ_SHA256_SIZE && lq_equal_constant_time(hex, given, given_len));
  return 1;
}

void lq_open_hmac(lua_State *L) {
  lua_pushcfunction(L, l_hmac_sha256);
  lua_setfield(L, -2, "hmac_sha256");
  lua_pushcfunction(L, l_hmac_sha256_verify);
  lua_setfield(L, -2, "hmac_sha256_verify");
}
