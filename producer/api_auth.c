/* api_auth.c -- see api_auth.h. */
#include "api_auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "hq.h"

typedef struct key_entry {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int admin;
    char tenant[AUTH_TENANT_MAX];
} key_entry;

struct auth_keys {
    key_entry *e;
    size_t n;
    unsigned char token_key[SHA256_DIGEST_LENGTH];
};

static void sha256(const void *p, size_t n, unsigned char out[SHA256_DIGEST_LENGTH]) {
    SHA256(p, n, out);
}

auth_keys *auth_keys_new(const cfg *c, char *err, size_t errlen) {
    auth_keys *k = calloc(1, sizeof(*k));
    size_t n = c->api_admin_keys_len + c->api_tenant_keys_len, i;
    EVP_MD_CTX *md;
    unsigned int mdlen = 0;
    if (!k || (n && !(k->e = calloc(n, sizeof(key_entry))))) {
        free(k);
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < c->api_admin_keys_len; i++) {
        sha256(c->api_admin_keys[i], strlen(c->api_admin_keys[i]), k->e[k->n].hash);
        k->e[k->n++].admin = 1;
    }
    for (i = 0; i < c->api_tenant_keys_len; i++) {
        const char *item = c->api_tenant_keys[i], *colon = strchr(item, ':');
        if (!colon) /* cfg_validate refuses these; skip rather than trust */
            continue;
        snprintf(k->e[k->n].tenant, sizeof(k->e[k->n].tenant), "%.*s", (int)(colon - item), item);
        sha256(colon + 1, strlen(colon + 1), k->e[k->n].hash);
        k->n++;
    }
    /* The token key: the configured secret, else every key's hash in order. Either way
     * two replicas with one config agree, and a changed key set invalidates old tokens. */
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        auth_keys_free(k);
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    EVP_DigestUpdate(md, "hookq-stream-token\n", 19);
    if (c->api_stream_secret[0])
        EVP_DigestUpdate(md, c->api_stream_secret, strlen(c->api_stream_secret));
    else
        for (i = 0; i < k->n; i++)
            EVP_DigestUpdate(md, k->e[i].hash, sizeof(k->e[i].hash));
    EVP_DigestFinal_ex(md, k->token_key, &mdlen);
    EVP_MD_CTX_free(md);
    return k;
}

void auth_keys_free(auth_keys *k) {
    if (!k)
        return;
    if (k->e)
        OPENSSL_cleanse(k->e, k->n * sizeof(key_entry));
    OPENSSL_cleanse(k->token_key, sizeof(k->token_key));
    free(k->e);
    free(k);
}

size_t auth_keys_count(const auth_keys *k) {
    return k ? k->n : 0;
}

int auth_bearer(const auth_keys *k, const char *header, auth_who *who, char *why, size_t whylen) {
    unsigned char h[SHA256_DIGEST_LENGTH];
    size_t found = (size_t)-1;
    memset(who, 0, sizeof(*who));
    if (!header || !*header)
        return hq_seterr(why, whylen, "missing Authorization header (Authorization: Bearer KEY)");
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return hq_seterr(why, whylen, "Authorization must be 'Bearer KEY'");
    header += 7;
    while (*header == ' ')
        header++;
    sha256(header, strlen(header), h);
    /* Every entry is compared; the match is remembered without branching out early. */
    for (size_t i = 0; k && i < k->n; i++) {
        int eq = CRYPTO_memcmp(h, k->e[i].hash, sizeof(h)) == 0;
        if (eq && found == (size_t)-1)
            found = i;
    }
    OPENSSL_cleanse(h, sizeof(h));
    if (found == (size_t)-1)
        return hq_seterr(why, whylen, "unknown API key");
    if (k->e[found].admin) {
        who->kind = AUTH_ADMIN;
    } else {
        who->kind = AUTH_TENANT;
        snprintf(who->tenant, sizeof(who->tenant), "%s", k->e[found].tenant);
    }
    return HQ_OK;
}

int auth_b64url_encode(const unsigned char *in, size_t n, char *out, size_t outlen) {
    size_t need = 4 * ((n + 2) / 3) + 1;
    int len;
    if (outlen < need)
        return HQ_ERR;
    len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return HQ_OK;
}

int auth_b64url_decode(const char *s, size_t n, unsigned char *out, size_t outlen) {
    char buf[AUTH_TOKEN_MAX + 4];
    size_t m = n, i;
    int len;
    if (n > AUTH_TOKEN_MAX || n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '-')
            ch = '+';
        else if (ch == '_')
            ch = '/';
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9')))
            return -1;
        buf[i] = ch;
    }
    while (m % 4)
        buf[m++] = '=';
    buf[m] = '\0';
    if (outlen < m / 4 * 3)
        return -1;
    len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m);
    if (len < 0)
        return -1;
    return len - (int)(m - n); /* DecodeBlock counts the padding as zero bytes */
}

static void token_mac(const auth_keys *k, const char *text, size_t n,
                      unsigned char mac[SHA256_DIGEST_LENGTH]) {
    unsigned int ml = SHA256_DIGEST_LENGTH;
    HMAC(EVP_sha256(), k->token_key, sizeof(k->token_key), (const unsigned char *)text, n, mac,
         &ml);
}

int auth_token_make(const auth_keys *k, const char *tenant, const char *events, int64_t exp_ms,
                    char *out, size_t outlen) {
    char text[AUTH_TENANT_MAX + AUTH_EVENTS_MAX + 32], a[sizeof(text) * 2], b[64];
    unsigned char mac[SHA256_DIGEST_LENGTH];
    int n = snprintf(text, sizeof(text), "%" PRId64 "|%s|%s", exp_ms, tenant, events);
    if (n < 0 || (size_t)n >= sizeof(text) || strchr(tenant, '|') || strchr(events, '|'))
        return HQ_ERR;
    token_mac(k, text, (size_t)n, mac);
    if (auth_b64url_encode((unsigned char *)text, (size_t)n, a, sizeof(a)) != HQ_OK ||
        auth_b64url_encode(mac, sizeof(mac), b, sizeof(b)) != HQ_OK)
        return HQ_ERR;
    n = snprintf(out, outlen, "hqs_%s.%s", a, b);
    return n < 0 || (size_t)n >= outlen ? HQ_ERR : HQ_OK;
}

int auth_token_check(const auth_keys *k, const char *token, int64_t now_ms, auth_who *who,
                     char *why, size_t whylen) {
    unsigned char text[AUTH_TOKEN_MAX], mac[SHA256_DIGEST_LENGTH + 4], want[SHA256_DIGEST_LENGTH];
    const char *dot, *p1, *p2;
    int tl, ml;
    char *end;
    long long exp;
    memset(who, 0, sizeof(*who));
    if (!token || strncmp(token, "hqs_", 4) != 0 || !(dot = strchr(token + 4, '.')))
        return hq_seterr(why, whylen, "malformed stream token");
    tl = auth_b64url_decode(token + 4, (size_t)(dot - token - 4), text, sizeof(text) - 1);
    ml = auth_b64url_decode(dot + 1, strlen(dot + 1), mac, sizeof(mac));
    if (tl <= 0 || ml != SHA256_DIGEST_LENGTH)
        return hq_seterr(why, whylen, "malformed stream token");
    token_mac(k, (const char *)text, (size_t)tl, want);
    if (CRYPTO_memcmp(want, mac, sizeof(want)) != 0)
        return hq_seterr(why, whylen, "bad stream token signature");
    text[tl] = '\0';
    p1 = strchr((char *)text, '|');
    p2 = p1 ? strchr(p1 + 1, '|') : NULL;
    if (!p2)
        return hq_seterr(why, whylen, "malformed stream token");
    exp = strtoll((char *)text, &end, 10);
    if (end != p1)
        return hq_seterr(why, whylen, "malformed stream token");
    if (exp <= now_ms)
        return hq_seterr(why, whylen, "stream token expired");
    if ((size_t)(p2 - p1 - 1) >= sizeof(who->tenant) || strlen(p2 + 1) >= sizeof(who->events))
        return hq_seterr(why, whylen, "malformed stream token");
    who->kind = AUTH_TOKEN;
    snprintf(who->tenant, sizeof(who->tenant), "%.*s", (int)(p2 - p1 - 1), p1 + 1);
    snprintf(who->events, sizeof(who->events), "%s", p2 + 1);
    return HQ_OK;
}
