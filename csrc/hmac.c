/* HMAC-SHA256 through OpenSSL's libcrypto: the signature every webhook delivery carries, computed
** the same way in nginx (LuaJIT), in plain Lua hosts and in the tests that check it. */
#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hmac.h"

int lq_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, unsigned char *out) {
  unsigned int len = 0;
  static const unsigned char empty = 0;
  if (key_len > INT_MAX) return -1;
  /* HMAC() takes NULL data as "no input" but a NULL key as "reuse the last one": never NULL */
  if (HMAC(EVP_sha256(), key_len > 0 ? key : &empty, (int)key_len, msg_len > 0 ? msg : &empty, msg_len, out, &len) ==
          NULL ||
      len != LQ_SHA256_SIZE)
    return -1;
  return 0;
}

void lq_hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

int lq_equal_constant_time(const void *a, const void *b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}
