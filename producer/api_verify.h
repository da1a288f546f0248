/* api_verify.h -- is an inbound webhook (POST /v1/in/{source_id}) really from its sender?
 *
 * Pure logic, no I/O: a source's verification config (parsed from and shown as JSON), a check
 * of one request's headers and body against it, and the provider's own delivery id for dedupe.
 * The HTTP server supplies headers through a lookup callback, so this module never sees its
 * request type.
 *
 * Schemes (every secret comparison is constant time and over fixed-size digests):
 *   github    X-Hub-Signature-256: "sha256=" hex(HMAC-SHA256(secret, body)), hex any case
 *   stripe    Stripe-Signature: "t=<unix>,v1=<hex>[,v1=...][,v0=...]" over "<t>.<body>", keyed
 *             with the whsec_... string as issued; any v1 may match; other schemes ignored
 *   shopify   X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(secret, body))
 *   slack     X-Slack-Request-Timestamp, X-Slack-Signature: "v0=" hex(HMAC-SHA256(secret,
 *             "v0:<ts>:<body>"))
 *   standard  Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature ("v1,<b64>"
 *             list) over "<id>.<ts>.<body>" with the key decoded from "whsec_<base64>"
 *   hmac      <header>: [prefix] hex|base64 of HMAC-SHA256|512(secret, body), or of
 *             "<ts>.<body>" when timestamp_header is set
 *   basic     Authorization: Basic base64(username:password)
 *   api_key   <header> (default X-API-Key): key
 * Timestamps are unix seconds, digits only, and must be within tolerance_s of now either way.
 *
 * Base64 signatures (shopify, standard, hmac) are standard-alphabet; hmac and shopify also
 * accept them without the trailing '=' padding. */
#ifndef HQ_API_VERIFY_H
#define HQ_API_VERIFY_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define VERIFY_SECRET_MAX        512   /* secret, password and key: 1..512 bytes */
#define VERIFY_HEADER_NAME_MAX   128   /* header names: RFC 9110 token, 1..128 chars */
#define VERIFY_PREFIX_MAX        64    /* hmac prefix: 1..64 visible ASCII chars */
#define VERIFY_USERNAME_MAX      256   /* basic username: 1..256 bytes, no ':' */
#define VERIFY_TOLERANCE_DEFAULT 300   /* seconds */
#define VERIFY_TOLERANCE_MAX     86400 /* seconds */
#define VERIFY_ID_MAX            128   /* delivery id: [A-Za-z0-9_.:-]{1,128} */
#define VERIFY_ID_LEN            (VERIFY_ID_MAX + 1)
#define VERIFY_API_KEY_HEADER    "X-API-Key"

typedef enum verify_kind {
    VERIFY_NONE = 0,
    VERIFY_GITHUB,
    VERIFY_STRIPE,
    VERIFY_SHOPIFY,
    VERIFY_SLACK,
    VERIFY_STANDARD,
    VERIFY_HMAC,
    VERIFY_BASIC,
    VERIFY_API_KEY
} verify_kind;

/* One source's verifier. Strings are owned by the struct (malloc'd) when it comes from
 * verify_config_from_json; verify_config_clear frees them. A zeroed field means its default. */
typedef struct verify_config {
    verify_kind kind;
    /* github, stripe (whsec_... as Stripe issues it, used as the raw string key), shopify,
     * slack (signing secret), standard (whsec_<base64>, decoded), hmac (raw string key) */
    char *secret;
    int hmac_bits;             /* hmac: 256 (default, also when 0) or 512 */
    int hmac_base64;           /* hmac: 0 = hex (default), 1 = base64 */
    char *header;              /* hmac: signature header (required); api_key: default "X-API-Key" */
    char *prefix;              /* hmac: optional literal prefix before the signature, "sha256=" */
    char *timestamp_header;    /* hmac: optional; then the signed text is "<timestamp>.<body>" */
    int64_t tolerance_s;       /* stripe/slack/standard, hmac with timestamp_header: 300 if <= 0 */
    char *username, *password; /* basic */
    char *key;                 /* api_key: the expected value */
} verify_config;

/* Parse a source's "verification" object, e.g. {"type":"github","secret":"..."}, into *out
 * (which need not be initialized; on error it is left cleared and owns nothing). NULL j or
 * {"type":"none"} gives VERIFY_NONE (so does a JSON null). Each type allows exactly these
 * fields besides "type"; those in [] are optional:
 *   github, shopify: secret                stripe, slack, standard: secret [tolerance]
 *   hmac: secret, header [algorithm "sha256"|"sha512", encoding "hex"|"base64", prefix,
 *         timestamp_header, tolerance (only with timestamp_header)]
 *   basic: username, password              api_key: key [header]
 * Limits: secret, password, key 1..VERIFY_SECRET_MAX bytes with no NUL (key visible ASCII,
 * password no control characters); username no ':' or control characters; header names RFC
 * 9110 tokens; tolerance 1..86400 (default 300); a standard secret must decode.
 * HQ_OK, or HQ_ERR with a message naming the field ("verification.secret: required for type
 * stripe", "verification: unknown field 'foo' for type github"). Messages never contain a
 * secret, password or key. */
int verify_config_from_json(const json_t *j, verify_config *out, char *err, size_t errlen);

/* The config as a new JSON object (caller decrefs), or NULL when out of memory. Secret,
 * password and key are "****" unless show_secrets; with show_secrets the result parses back
 * with verify_config_from_json into the same config. */
json_t *verify_config_to_json(const verify_config *c, int show_secrets);

/* Free what c owns (wiping secrets first) and zero it. NULL-safe. */
void verify_config_clear(verify_config *c);

/* Case-insensitive lookup of a request header's value; NULL if absent. The string must stay
 * valid until the verify_ call that asked returns. */
typedef const char *(*verify_header_fn)(void *ud, const char *name);

/* Is the request (headers via hdr/ud, body[0..len)) authentic under c at time now_s (unix
 * seconds)? HQ_OK if so (and VERIFY_NONE always is). HQ_ERR otherwise, with a short reason in
 * why that is safe to send back to the client: it never holds the secret or the expected
 * signature ("missing X-Hub-Signature-256", "signature mismatch", "timestamp outside the 300 s
 * tolerance"). Fails closed: an unknown kind, a required field left NULL or a standard secret
 * that does not decode give "verifier misconfigured". body may be NULL when len is 0. */
int verify_check(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                 size_t len, int64_t now_s, char *why, size_t whylen);

/* The provider's own delivery id, for dedupe: github X-GitHub-Delivery, stripe the body's
 * top-level JSON "id", shopify X-Shopify-Webhook-Id, slack the body's "event_id", standard
 * webhook-id; other kinds have none. HQ_OK with the id in out (VERIFY_ID_LEN bytes suffice),
 * HQ_ERR when there is none, it is not [A-Za-z0-9_.:-]{1,128}, or it does not fit. Only
 * meaningful after verify_check accepted the request. */
int verify_delivery_id(verify_kind kind, verify_header_fn hdr, void *ud, const char *body,
                       size_t len, char *out, size_t outlen);

/* "github", "stripe", "shopify", "slack", "standard", "hmac", "basic", "api_key", "none";
 * "unknown" for a value outside the enum. */
const char *verify_kind_name(verify_kind k);

#endif
