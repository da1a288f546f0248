/* signature.c -- webhook signatures (Standard Webhooks v1 and GitHub-style sha256=). */
#include "signature.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "hq.h"

#define SIG_MAC_LEN 32 /* SHA-256 */

/* HMAC-SHA256 over up to five pieces, so the signed string "id.ts.body" is never
 * concatenated into a body-sized copy. */
static int hmac_sha256(const unsigned char *key, size_t keylen, const void *const *parts,
                       const size_t *lens, size_t nparts, unsigned char mac[SIG_MAC_LEN]) {
    int rc = HQ_ERR;
    EVP_MAC *m = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t maclen = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!m)
        goto cleanup;
    ctx = EVP_MAC_CTX_new(m);
    if (!ctx)
        goto cleanup;
    if (!EVP_MAC_init(ctx, key, keylen, params))
        goto cleanup;
    for (size_t i = 0; i < nparts; i++) {
        if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto cleanup;
    }
    if (!EVP_MAC_final(ctx, mac, &maclen, SIG_MAC_LEN) || maclen != SIG_MAC_LEN)
        goto cleanup;
    rc = HQ_OK;
cleanup:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

static int b64_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict standard base64 (with padding) into out; returns decoded length or -1.
 * EVP_DecodeBlock accepts surrounding whitespace and reports padded lengths, so the
 * alphabet and padding are checked here and the length fixed up afterwards. */
static long b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen) {
    size_t pad = 0;
    if (inlen == 0 || inlen % 4 != 0)
        return -1;
    if (in[inlen - 1] == '=')
        pad = in[inlen - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < inlen - pad; i++) {
        if (!b64_char((unsigned char)in[i]))
            return -1;
    }
    if (inlen / 4 * 3 > outlen)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
    if (n < 0 || (size_t)n < pad)
        return -1;
    return (long)((size_t)n - pad);
}

int sign_secret_generate(char *out, size_t outlen) {
    unsigned char key[32];
    size_t prefix = strlen(SIGN_SECRET_PREFIX);
    /* base64 of 32 bytes is 44 chars; EVP_EncodeBlock writes a NUL after them */
    if (!out || outlen < prefix + 44 + 1)
        return HQ_ERR;
    if (RAND_bytes(key, sizeof(key)) != 1)
        return HQ_ERR;
    memcpy(out, SIGN_SECRET_PREFIX, prefix);
    EVP_EncodeBlock((unsigned char *)out + prefix, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    return HQ_OK;
}

int sign_secret_decode(const char *secret, unsigned char *key, size_t *keylen, char *err,
                       size_t errlen) {
    size_t prefix = strlen(SIGN_SECRET_PREFIX);
    /* room for the largest base64 we accept (88 chars -> 66 bytes incl. padding) */
    unsigned char buf[SIGN_SECRET_MAX];
    if (!secret)
        return hq_seterr(err, errlen, "secret is missing");
    size_t len = strnlen(secret, SIGN_SECRET_MAX);
    if (len >= SIGN_SECRET_MAX)
        return hq_seterr(err, errlen, "secret is too long (at most %d characters)",
                         SIGN_SECRET_MAX - 1);
    if (strncmp(secret, SIGN_SECRET_PREFIX, prefix) != 0)
        return hq_seterr(err, errlen, "secret must start with \"%s\"", SIGN_SECRET_PREFIX);
    long n = b64_decode(secret + prefix, len - prefix, buf, sizeof(buf));
    if (n < 0)
        return hq_seterr(err, errlen, "secret is not valid base64 after \"%s\"",
                         SIGN_SECRET_PREFIX);
    if (n < SIGN_KEY_MIN || n > SIGN_KEY_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return hq_seterr(err, errlen, "secret key is %ld bytes, must be %d..%d", n, SIGN_KEY_MIN,
                         SIGN_KEY_MAX);
    }
    if (key)
        memcpy(key, buf, (size_t)n);
    if (keylen)
        *keylen = (size_t)n;
    OPENSSL_cleanse(buf, sizeof(buf));
    return HQ_OK;
}

int sign_secret_valid(const char *secret, char *err, size_t errlen) {
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    int rc = sign_secret_decode(secret, key, &keylen, err, errlen);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int sign_v1(const unsigned char *key, size_t keylen, const char *id, int64_t ts, const char *body,
            size_t bodylen, char *out, size_t outlen) {
    unsigned char mac[SIG_MAC_LEN];
    char tsbuf[32];
    if (!key || keylen == 0 || !id || (!body && bodylen) || !out || outlen < SIGN_V1_LEN)
        return HQ_ERR;
    int tslen = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    const void *parts[] = {id, ".", tsbuf, ".", body};
    size_t lens[] = {strlen(id), 1, (size_t)tslen, 1, bodylen};
    if (hmac_sha256(key, keylen, parts, lens, 5, mac) != HQ_OK)
        return HQ_ERR;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, SIG_MAC_LEN);
    return HQ_OK;
}

int sign_github(const char *secret, const char *body, size_t bodylen, char *out, size_t outlen) {
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[SIG_MAC_LEN];
    if (!secret || !*secret || (!body && bodylen) || !out || outlen < SIGN_GH_LEN)
        return HQ_ERR;
    const void *parts[] = {body};
    size_t lens[] = {bodylen};
    if (hmac_sha256((const unsigned char *)secret, strlen(secret), parts, lens, 1, mac) != HQ_OK)
        return HQ_ERR;
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 2 * SIG_MAC_LEN] = '\0';
    return HQ_OK;
}

int sign_verify_v1(const char *secret, const char *id, int64_t ts, const char *body, size_t bodylen,
                   const char *header) {
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    char want[SIGN_V1_LEN];
    int ok = 0;
    if (!header || sign_secret_decode(secret, key, &keylen, NULL, 0) != HQ_OK)
        return HQ_ERR;
    int rc = sign_v1(key, keylen, id, ts, body, bodylen, want, sizeof(want));
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != HQ_OK)
        return HQ_ERR;
    size_t wantlen = strlen(want);
    /* Check every entry (no early exit) so timing does not reveal which one matched. */
    const char *p = header;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        size_t n = (size_t)(p - start);
        if (n == wantlen && sign_ct_equal(start, want, n))
            ok = 1;
    }
    return ok ? HQ_OK : HQ_ERR;
}

int sign_ct_equal(const void *a, const void *b, size_t n) {
    return CRYPTO_memcmp(a, b, n) == 0;
}
