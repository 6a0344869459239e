/* HMAC-SHA256 of the webhook signatures, by OpenSSL's libcrypto (never a hash of our own). */
#ifndef LEADQ_HMAC_H
#define LEADQ_HMAC_H

#include <stddef.h>

#define LQ_SHA256_SIZE 32

/* out: LQ_SHA256_SIZE bytes. 0, or -1 when libcrypto refuses (a key longer than INT_MAX). */
int lq_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, unsigned char *out);

/* in: n bytes -> out: 2n lowercase hex digits and a NUL. */
void lq_hex(const unsigned char *in, size_t n, char *out);

/* Whether two byte strings are equal, in a time that does not depend on where they differ. */
int lq_equal_constant_time(const void *a, const void *b, size_t n);

#endif
