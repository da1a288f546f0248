/* signature.h -- webhook signatures.
 *
 * Standard Webhooks: secret "whsec_" + base64(key), key 24..64 bytes; signature
 * "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
 * GitHub style: "sha256=" + hex(HMAC-SHA256(secret string as issued, body)). */
#ifndef HQ_SIGNATURE_H
#define HQ_SIGNATURE_H
#include <stddef.h>
#include <stdint.h>

#define SIGN_SECRET_PREFIX "whsec_"
#define SIGN_KEY_MIN       24
#define SIGN_KEY_MAX       64
#define SIGN_SECRET_MAX    128 /* "whsec_" + base64(64 bytes) + NUL fits */
#define SIGN_V1_LEN        48  /* "v1," + 44 base64 chars + NUL */
#define SIGN_GH_LEN        72  /* "sha256=" + 64 hex + NUL */

/* New secret from 32 random bytes (OpenSSL RAND_bytes). HQ_OK or HQ_ERR. */
int sign_secret_generate(char *out, size_t outlen);
/* Decode "whsec_<base64>" into key (SIGN_KEY_MAX bytes). Errors name what is wrong but
 * never echo the secret. */
int sign_secret_decode(const char *secret, unsigned char *key, size_t *keylen, char *err,
                       size_t errlen);
int sign_secret_valid(const char *secret, char *err, size_t errlen);

/* out gets "v1,<base64>" (SIGN_V1_LEN bytes). */
int sign_v1(const unsigned char *key, size_t keylen, const char *id, int64_t ts, const char *body,
            size_t bodylen, char *out, size_t outlen);
/* out gets "sha256=<hex>" (SIGN_GH_LEN bytes), keyed with the secret string as issued. */
int sign_github(const char *secret, const char *body, size_t bodylen, char *out, size_t outlen);
/* Verify a webhook-signature header value (space-separated "v1,..." list): HQ_OK if any
 * entry matches the signature computed with secret. Constant-time compare. */
int sign_verify_v1(const char *secret, const char *id, int64_t ts, const char *body, size_t bodylen,
                   const char *header);
/* 1 if equal, 0 if not; time depends only on n. */
int sign_ct_equal(const void *a, const void *b, size_t n);

#endif
