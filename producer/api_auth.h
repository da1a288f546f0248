/* api_auth.h -- who is calling hookq-api: Bearer keys and short-lived stream tokens.
 *
 * Keys come from the config (api.admin_keys, api.tenant_keys "TENANT:KEY"). A presented
 * key is hashed (SHA-256) and compared with every configured key's hash in constant time,
 * all of them each time, so neither the position nor a matching prefix shows in timing.
 * Keys are never logged and never leave this module except as that hash.
 *
 * Stream tokens let a browser's EventSource (which cannot set headers) open /v1/stream
 * without an API key in the URL: "hqs_" + base64url(exp_ms "|" tenant "|" events) + "."
 * + base64url(HMAC-SHA256(stream secret, that text)). The secret is api.stream_secret, or
 * when that is empty a hash of every configured key, so replicas with the same keys agree. */
#ifndef HQ_API_AUTH_H
#define HQ_API_AUTH_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define AUTH_TENANT_MAX 72
#define AUTH_EVENTS_MAX 512
#define AUTH_TOKEN_MAX  1024

typedef enum auth_kind {
    AUTH_NONE = 0, /* no credentials checked (routes without auth) */
    AUTH_ADMIN,    /* an admin key */
    AUTH_TENANT,   /* a tenant key: who.tenant */
    AUTH_TOKEN     /* a stream token: who.tenant ("" = all tenants), who.events */
} auth_kind;

typedef struct auth_who {
    auth_kind kind;
    char tenant[AUTH_TENANT_MAX]; /* AUTH_TENANT, AUTH_TOKEN ("" = admin's token) */
    char events[AUTH_EVENTS_MAX]; /* AUTH_TOKEN: the patterns it may stream ("*" = all) */
} auth_who;

typedef struct auth_keys auth_keys; /* opaque, immutable, shared by every thread */

/* From a validated cfg. NULL + err only when out of memory. */
auth_keys *auth_keys_new(const cfg *c, char *err, size_t errlen);
void auth_keys_free(auth_keys *k); /* NULL-safe; wipes the hashes */
size_t auth_keys_count(const auth_keys *k);

/* The value of an Authorization header ("Bearer <key>", scheme case-insensitive). HQ_OK
 * with *who filled (AUTH_ADMIN or AUTH_TENANT), or HQ_ERR with a reason safe to show
 * ("missing Authorization header", "unknown API key"). */
int auth_bearer(const auth_keys *k, const char *header, auth_who *who, char *why, size_t whylen);

/* Make a token for tenant ("" = every tenant, admin only) and events (pattern list text)
 * valid until exp_ms. HQ_ERR when it does not fit in outlen. */
int auth_token_make(const auth_keys *k, const char *tenant, const char *events, int64_t exp_ms,
                    char *out, size_t outlen);
/* Check a token at now_ms: HQ_OK with *who (AUTH_TOKEN), or HQ_ERR with why ("malformed
 * stream token", "stream token expired", "bad stream token signature"). */
int auth_token_check(const auth_keys *k, const char *token, int64_t now_ms, auth_who *who,
                     char *why, size_t whylen);

/* base64url without padding (tokens, and the API's opaque cursors): HQ_ERR when out
 * (outlen bytes, NUL included) is too small. */
int auth_b64url_encode(const unsigned char *in, size_t n, char *out, size_t outlen);
/* The decoded length in out (no NUL added), or -1 when s[0..n) is not base64url, is over
 * AUTH_TOKEN_MAX, or does not fit in outlen. */
int auth_b64url_decode(const char *s, size_t n, unsigned char *out, size_t outlen);

#endif
