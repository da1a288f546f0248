/* fuzz_api_verify.c -- inbound webhook verification on arbitrary requests and configs.
 *
 * Input: the first byte picks what is fuzzed. byte % 10 == 9: the rest is parsed with
 * json_loadb and given to verify_config_from_json; what is accepted must print masked, and
 * print unmasked into JSON that parses back to the same config. Otherwise byte % 10 is a
 * verify_kind with a fixed config (hmac has two, chosen by bit 7) and the rest is
 * "value\nvalue\n...\xffbody": the values go, in order, to that kind's headers (see names[]),
 * and the body is the request body. verify_check and verify_delivery_id must not crash or
 * read past what they are given (each value is its own allocation), a refusal always has a
 * reason, and no reason contains the secret. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_verify.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

#define NOW   1700000000
#define MAXV  4
#define NKIND 9

typedef struct request {
    const char *const *names;
    char *values[MAXV];
} request;

static const char *lookup(void *ud, const char *name) {
    const request *r = ud;
    for (int i = 0; i < MAXV && r->names[i]; i++) {
        const char *a = r->names[i], *b = name;
        while (*a && *b && (*a | 0x20) == (*b | 0x20))
            a++, b++;
        if (!*a && !*b)
            return r->values[i];
    }
    return NULL;
}

/* The headers each kind reads, in the order the input's values fill them. */
static const char *const names[NKIND][MAXV + 1] = {
    [VERIFY_NONE] = {"X-Anything"},
    [VERIFY_GITHUB] = {"X-Hub-Signature-256", "X-GitHub-Delivery"},
    [VERIFY_STRIPE] = {"Stripe-Signature"},
    [VERIFY_SHOPIFY] = {"X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id"},
    [VERIFY_SLACK] = {"X-Slack-Request-Timestamp", "X-Slack-Signature"},
    [VERIFY_STANDARD] = {"webhook-id", "webhook-timestamp", "webhook-signature"},
    [VERIFY_HMAC] = {"X-Sig", "X-Ts"},
    [VERIFY_BASIC] = {"Authorization"},
    [VERIFY_API_KEY] = {"X-API-Key"},
};

static verify_config fixed_config(verify_kind k, int variant) {
    verify_config c = {.kind = k};
    switch (k) {
    case VERIFY_GITHUB:
        c.secret = (char *)"It's a Secret to Everybody";
        break;
    case VERIFY_STRIPE:
        c.secret = (char *)"whsec_test_abc123";
        break;
    case VERIFY_SHOPIFY:
        c.secret = (char *)"shpss_hush";
        break;
    case VERIFY_SLACK:
        c.secret = (char *)"8f742231b10e8888abcd99yyyzzz85a5";
        break;
    case VERIFY_STANDARD:
        c.secret = (char *)"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        break;
    case VERIFY_HMAC:
        c.secret = (char *)"raw-key";
        c.header = (char *)"X-Sig";
        if (variant) {
            c.hmac_bits = 512;
            c.hmac_base64 = 1;
        } else {
            c.prefix = (char *)"sha256=";
            c.timestamp_header = (char *)"X-Ts";
        }
        break;
    case VERIFY_BASIC:
        c.username = (char *)"Aladdin";
        c.password = (char *)"open sesame";
        break;
    case VERIFY_API_KEY:
        c.key = (char *)"k3y-Secret";
        break;
    default:
        break;
    }
    return c;
}

static void fuzz_check(verify_kind k, int variant, const char *in, size_t n) {
    request r = {.names = names[k]};
    char why[HQ_ERRLEN];
    char id[VERIFY_ID_LEN];
    const char *sep = memchr(in, 0xff, n);
    size_t hlen = sep ? (size_t)(sep - in) : n;
    const char *body = sep ? sep + 1 : in + n;
    size_t blen = sep ? n - hlen - 1 : 0;
    /* the body is its own allocation too, so a read past its end is caught */
    char *b = malloc(blen ? blen : 1);
    if (!b)
        return;
    memcpy(b, body, blen);
    const char *p = in, *end = in + hlen;
    for (int i = 0; i < MAXV && names[k][i] && p <= end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t vlen = (size_t)((nl ? nl : end) - p);
        r.values[i] = malloc(vlen + 1);
        if (r.values[i]) {
            memcpy(r.values[i], p, vlen);
            r.values[i][vlen] = '\0';
        }
        if (!nl)
            break;
        p = nl + 1;
    }

    verify_config c = fixed_config(k, variant);
    if (verify_check(&c, lookup, &r, b, blen, NOW, why, sizeof(why)) != HQ_OK) {
        if (!why[0])
            abort(); /* a refusal always has a reason */
        const char *secrets[] = {c.secret, c.password, c.key};
        for (size_t i = 0; i < 3; i++) {
            if (secrets[i] && strstr(why, secrets[i]))
                abort();
        }
    }
    if (verify_delivery_id(k, lookup, &r, b, blen, id, sizeof(id)) == HQ_OK) {
        size_t idlen = strlen(id);
        if (idlen == 0 || idlen > VERIFY_ID_MAX ||
            strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                       "nopqrstuvwxyz0123456789_.:-") != idlen)
            abort();
    }
    for (int i = 0; i < MAXV; i++)
        free(r.values[i]);
    free(b);
}

static void fuzz_config(const char *in, size_t n) {
    char err[HQ_ERRLEN];
    verify_config c, d;
    json_t *j = json_loadb(in, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j)
        return;
    if (verify_config_from_json(j, &c, err, sizeof(err)) != HQ_OK) {
        if (!err[0])
            abort();
        json_decref(j);
        return;
    }
    json_t *masked = verify_config_to_json(&c, 0);
    json_t *shown = verify_config_to_json(&c, 1);
    if (!masked || !shown)
        abort();
    const char *secret_keys[] = {"secret", "password", "key"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(masked, secret_keys[i]);
        if (v && strcmp(json_string_value(v), "****") != 0)
            abort();
    }
    if (verify_config_from_json(shown, &d, err, sizeof(err)) != HQ_OK)
        abort(); /* what it shows parses back */
    json_t *again = verify_config_to_json(&d, 1);
    if (!again || !json_equal(shown, again) || c.kind != d.kind || c.tolerance_s != d.tolerance_s)
        abort();
    json_decref(again);
    json_decref(shown);
    json_decref(masked);
    verify_config_clear(&d);
    verify_config_clear(&c);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    if (len == 0 || len > 16384)
        return 0;
    int mode = buf[0] % 10;
    const char *in = (const char *)buf + 1;
    if (mode == 9)
        fuzz_config(in, len - 1);
    else
        fuzz_check((verify_kind)mode, buf[0] >> 7, in, len - 1);
    return 0;
}
