/* test_api_verify.c -- inbound webhook verification: known answers per scheme, refusals,
 * config JSON errors, masking and round trips, fail-closed configs, delivery ids.
 *
 * Known answers from the providers' own documentation:
 *   GitHub   secret "It's a Secret to Everybody", body "Hello, World!"
 *   Slack    the signing-secret example in "Verifying requests from Slack"
 *   Standard the test vector of the Standard Webhooks spec (also in test_signature.c)
 *   Basic    RFC 7617's "Aladdin:open sesame"
 * The others were made with openssl, e.g.
 *   printf '%s' "1700000000.$STRIPE_BODY" | openssl dgst -sha256 -hmac 'whsec_test_abc123'
 *   printf '%s' "$SHOPIFY_BODY" | openssl dgst -sha256 -hmac 'shpss_hush' -binary | base64
 *   printf '%s' '{"event":"ping"}' | openssl dgst -sha512 -hmac 'raw-key' [-binary | base64]
 *   printf '%s' '1700000000.{"event":"ping"}' | openssl dgst -sha256 -hmac raw-key -binary |
 *       base64 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api_verify.h"
#include "hq.h"

/* ---- a request's headers ---------------------------------------------------------------- */

#define MAXH 6

typedef struct hdrs {
    const char *name[MAXH];
    const char *value[MAXH];
} hdrs;

static int same_ci(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static const char *lookup(void *ud, const char *name) {
    const hdrs *h = ud;
    for (int i = 0; i < MAXH && h->name[i]; i++) {
        if (same_ci(h->name[i], name))
            return h->value[i];
    }
    return NULL;
}

static void load(const char *json, verify_config *c) {
    char err[HQ_ERRLEN] = "";
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", json, je.text);
    if (verify_config_from_json(j, c, err, sizeof(err)) != HQ_OK)
        fail_msg("config %s refused: %s", json, err);
    json_decref(j);
}

/* The request is accepted. */
static void ok(const verify_config *c, hdrs h, const char *body, int64_t now) {
    char why[HQ_ERRLEN] = "x";
    if (verify_check(c, lookup, &h, body, body ? strlen(body) : 0, now, why, sizeof(why)) != HQ_OK)
        fail_msg("refused (%s): %s", verify_kind_name(c->kind), why);
    assert_string_equal(why, "");
}

/* The request is refused with a reason containing needle, and the reason holds no secret. */
static void bad(const verify_config *c, hdrs h, const char *body, int64_t now, const char *needle) {
    char why[HQ_ERRLEN] = "";
    if (verify_check(c, lookup, &h, body, body ? strlen(body) : 0, now, why, sizeof(why)) != HQ_ERR)
        fail_msg("accepted (%s), wanted '%s'", verify_kind_name(c->kind), needle);
    if (!strstr(why, needle))
        fail_msg("reason '%s' lacks '%s'", why, needle);
    const char *secrets[] = {c->secret, c->password, c->key};
    for (size_t i = 0; i < 3; i++) {
        if (secrets[i] && strstr(why, secrets[i]))
            fail_msg("reason '%s' shows a secret", why);
    }
}

/* ---- github ------------------------------------------------------------------------------- */

#define GH_CFG  "{\"type\":\"github\",\"secret\":\"It's a Secret to Everybody\"}"
#define GH_BODY "Hello, World!"
#define GH_HEX  "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#define GH_SIG  "sha256=" GH_HEX
#define GH_H    "X-Hub-Signature-256"

static void test_github(void **state) {
    (void)state;
    verify_config c;
    load(GH_CFG, &c);
    ok(&c, (hdrs){{GH_H}, {GH_SIG}}, GH_BODY, 0);
    ok(&c, (hdrs){{"x-hub-signature-256"}, {"  " GH_SIG " "}}, GH_BODY, 0);
    ok(&c,
       (hdrs){{GH_H}, {"sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"}},
       GH_BODY, 0);
    bad(&c, (hdrs){{GH_H}, {GH_SIG}}, "Hello, World?", 0, "signature mismatch");
    bad(&c, (hdrs){{GH_H}, {GH_SIG}}, "", 0, "signature mismatch");
    bad(&c,
        (hdrs){{GH_H}, {"sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
        GH_BODY, 0, "signature mismatch");
    bad(&c, (hdrs){{"X-Hub-Signature"}, {GH_SIG}}, GH_BODY, 0, "missing X-Hub-Signature-256");
    bad(&c, (hdrs){{GH_H}, {""}}, GH_BODY, 0, "missing X-Hub-Signature-256");
    bad(&c, (hdrs){{GH_H}, {GH_HEX}}, GH_BODY, 0, "malformed X-Hub-Signature-256");
    bad(&c, (hdrs){{GH_H}, {"sha1=" GH_HEX}}, GH_BODY, 0, "malformed");
    bad(&c, (hdrs){{GH_H}, {"sha256=" GH_HEX "00"}}, GH_BODY, 0, "malformed");
    bad(&c,
        (hdrs){{GH_H}, {"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"}},
        GH_BODY, 0, "malformed");
    bad(&c,
        (hdrs){{GH_H}, {"sha256=x57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}},
        GH_BODY, 0, "malformed");
    verify_config_clear(&c);
    load("{\"type\":\"github\",\"secret\":\"It's a Secret to Everybody!\"}", &c);
    bad(&c, (hdrs){{GH_H}, {GH_SIG}}, GH_BODY, 0, "signature mismatch");
    verify_config_clear(&c);
}

/* ---- stripe ------------------------------------------------------------------------------- */

#define ST_CFG "{\"type\":\"stripe\",\"secret\":\"whsec_test_abc123\"}"
#define ST_BODY                                                                                    \
    "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"type\":\"payment_intent."     \
    "succeeded\"}"
#define ST_T   1700000000
#define ST_HEX "b1e8fbc5dbd536332c939050b9ca0238d0c184d1cca72ae244845f373e30872d"
#define ST_BAD "a1e8fbc5dbd536332c939050b9ca0238d0c184d1cca72ae244845f373e30872d"
#define ST_H   "Stripe-Signature"

static void test_stripe(void **state) {
    (void)state;
    verify_config c;
    load(ST_CFG, &c);
    assert_int_equal(c.tolerance_s, 300);
    ok(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T);
    ok(&c, (hdrs){{ST_H}, {"v1=" ST_HEX ",t=1700000000"}}, ST_BODY, ST_T + 300);
    ok(&c, (hdrs){{ST_H}, {"t=1700000000, v0=" ST_BAD ", v1=" ST_HEX ", v2=zz"}}, ST_BODY,
       ST_T - 300);
    /* several v1 (as during a secret roll): any one right is enough, in any position */
    ok(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_BAD ",v1=" ST_HEX ",v1=" ST_BAD}}, ST_BODY, ST_T);
    ok(&c, (hdrs){{ST_H}, {"t=1700000000,v1=nothex,v1=" ST_HEX}}, ST_BODY, ST_T);
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_BAD ",v1=" ST_BAD}}, ST_BODY, ST_T,
        "signature mismatch");
    /* v0 is Stripe's test-mode scheme: it never counts */
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v0=" ST_HEX}}, ST_BODY, ST_T, "no v1 signature");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY " ", ST_T, "signature mismatch");
    bad(&c, (hdrs){{ST_H}, {"t=1700000001,v1=" ST_HEX}}, ST_BODY, ST_T, "signature mismatch");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T + 301,
        "timestamp outside the 300 s tolerance");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T - 301, "outside");
    bad(&c, (hdrs){{"X-Stripe"}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T,
        "missing Stripe-Signature");
    bad(&c, (hdrs){{ST_H}, {"v1=" ST_HEX}}, ST_BODY, ST_T, "no t=");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T, "repeated");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1" ST_HEX}}, ST_BODY, ST_T, "malformed");
    const char *bad_t[] = {"t=,v1=" ST_HEX,
                           "t=-1700000000,v1=" ST_HEX,
                           "t=+1700000000,v1=" ST_HEX,
                           "t=17000000x0,v1=" ST_HEX,
                           "t=1.7e9,v1=" ST_HEX,
                           "t=99999999999999999999,v1=" ST_HEX,
                           "t=9223372036854775808,v1=" ST_HEX};
    for (size_t i = 0; i < sizeof(bad_t) / sizeof(bad_t[0]); i++)
        bad(&c, (hdrs){{ST_H}, {bad_t[i]}}, ST_BODY, ST_T, "malformed");
    verify_config_clear(&c);

    load("{\"type\":\"stripe\",\"secret\":\"whsec_test_abc124\",\"tolerance\":10}", &c);
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T, "signature mismatch");
    bad(&c, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T + 11,
        "outside the 10 s tolerance");
    verify_config_clear(&c);
}

/* ---- shopify ------------------------------------------------------------------------------ */

#define SH_CFG  "{\"type\":\"shopify\",\"secret\":\"shpss_hush\"}"
#define SH_BODY "{\"id\":820982911946154500,\"email\":\"jon@example.com\"}"
#define SH_SIG  "HAEtAGC3oodfiNefqAG5bq4K/vir9+mBD24KxqTu3V8="
#define SH_H    "X-Shopify-Hmac-Sha256"

static void test_shopify(void **state) {
    (void)state;
    verify_config c;
    load(SH_CFG, &c);
    ok(&c, (hdrs){{SH_H}, {SH_SIG}}, SH_BODY, 0);
    ok(&c, (hdrs){{SH_H}, {"HAEtAGC3oodfiNefqAG5bq4K/vir9+mBD24KxqTu3V8"}}, SH_BODY, 0);
    bad(&c, (hdrs){{SH_H}, {SH_SIG}}, SH_BODY "\n", 0, "signature mismatch");
    bad(&c, (hdrs){{SH_H}, {"IAEtAGC3oodfiNefqAG5bq4K/vir9+mBD24KxqTu3V8="}}, SH_BODY, 0,
        "signature mismatch");
    bad(&c, (hdrs){{"X-Shopify-Topic"}, {SH_SIG}}, SH_BODY, 0, "missing X-Shopify-Hmac-Sha256");
    /* hex, url-safe alphabet, a truncated value, non-canonical last char: not base64 of 32 */
    bad(&c, (hdrs){{SH_H}, {"1c012d0060b7a2875f88d79fa801b96eae0afef8abf7e9810f6e0ac6a4eedd5f"}},
        SH_BODY, 0, "malformed X-Shopify-Hmac-Sha256");
    bad(&c, (hdrs){{SH_H}, {"HAEtAGC3oodfiNefqAG5bq4K_vir9-mBD24KxqTu3V8="}}, SH_BODY, 0,
        "malformed");
    bad(&c, (hdrs){{SH_H}, {"HAEtAGC3oodfiNefqAG5bq4K/vir9+mBD24KxqTu3V=="}}, SH_BODY, 0,
        "malformed");
    bad(&c, (hdrs){{SH_H}, {"HAEtAGC3oodfiNefqAG5bq4K/vir9+mBD24KxqTu3V9="}}, SH_BODY, 0,
        "malformed");
    bad(&c, (hdrs){{SH_H}, {"===="}}, SH_BODY, 0, "malformed");
    verify_config_clear(&c);
}

/* ---- slack -------------------------------------------------------------------------------- */

#define SL_CFG "{\"type\":\"slack\",\"secret\":\"8f742231b10e8888abcd99yyyzzz85a5\"}"
#define SL_BODY                                                                                    \
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="         \
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"     \
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"             \
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."               \
    "803a0bc887a14d10d2c447fce8b6703c"
#define SL_TS   "1531420618"
#define SL_NOW  1531420618
#define SL_SIG  "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
#define SL_TSH  "X-Slack-Request-Timestamp"
#define SL_SIGH "X-Slack-Signature"

static void test_slack(void **state) {
    (void)state;
    verify_config c;
    load(SL_CFG, &c);
    ok(&c, (hdrs){{SL_TSH, SL_SIGH}, {SL_TS, SL_SIG}}, SL_BODY, SL_NOW);
    ok(&c, (hdrs){{SL_TSH, SL_SIGH}, {SL_TS, SL_SIG}}, SL_BODY, SL_NOW + 300);
    bad(&c, (hdrs){{SL_TSH, SL_SIGH}, {SL_TS, SL_SIG}}, SL_BODY, SL_NOW + 301, "outside");
    bad(&c, (hdrs){{SL_TSH, SL_SIGH}, {SL_TS, SL_SIG}}, SL_BODY, SL_NOW - 301, "outside");
    bad(&c, (hdrs){{SL_TSH, SL_SIGH}, {"1531420619", SL_SIG}}, SL_BODY, SL_NOW,
        "signature mismatch");
    bad(&c, (hdrs){{SL_TSH, SL_SIGH}, {SL_TS, SL_SIG}}, SL_BODY "&x=1", SL_NOW,
        "signature mismatch");
    bad(&c, (hdrs){{SL_SIGH}, {SL_SIG}}, SL_BODY, SL_NOW, "missing X-Slack-Request-Timestamp");
    bad(&c, (hdrs){{SL_TSH}, {SL_TS}}, SL_BODY, SL_NOW, "missing X-Slack-Signature");
    bad(&c, (hdrs){{SL_TSH, SL_SIGH}, {"-1531420618", SL_SIG}}, SL_BODY, SL_NOW,
        "malformed timestamp");
    bad(&c,
        (hdrs){{SL_TSH, SL_SIGH},
               {SL_TS, "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}},
        SL_BODY, SL_NOW, "malformed X-Slack-Signature");
    verify_config_clear(&c);
}

/* ---- standard webhooks -------------------------------------------------------------------- */

#define SW_CFG  "{\"type\":\"standard\",\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}"
#define SW_ID   "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS   "1614265330"
#define SW_NOW  1614265330
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG  "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_H    "webhook-id", "webhook-timestamp", "webhook-signature"

static void test_standard(void **state) {
    (void)state;
    verify_config c;
    load(SW_CFG, &c);
    ok(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY, SW_NOW);
    ok(&c, (hdrs){{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}, {SW_ID, SW_TS, SW_SIG}},
       SW_BODY, SW_NOW - 300);
    ok(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, "v1,Zm9v v1a,x " SW_SIG}}, SW_BODY, SW_NOW);
    bad(&c,
        (hdrs){{SW_H}, {SW_ID, SW_TS, "v1,Zm9v v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}},
        SW_BODY, SW_NOW, "signature mismatch");
    bad(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY " ", SW_NOW, "signature mismatch");
    bad(&c, (hdrs){{SW_H}, {"msg_other", SW_TS, SW_SIG}}, SW_BODY, SW_NOW, "signature mismatch");
    bad(&c, (hdrs){{SW_H}, {SW_ID, "1614265331", SW_SIG}}, SW_BODY, SW_NOW, "signature mismatch");
    bad(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY, SW_NOW + 301, "outside");
    bad(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY, SW_NOW - 301, "outside");
    bad(&c, (hdrs){{SW_H}, {SW_ID, "1614265330.5", SW_SIG}}, SW_BODY, SW_NOW, "malformed");
    bad(&c, (hdrs){{"webhook-timestamp", "webhook-signature"}, {SW_TS, SW_SIG}}, SW_BODY, SW_NOW,
        "missing webhook-id");
    bad(&c, (hdrs){{"webhook-id", "webhook-signature"}, {SW_ID, SW_SIG}}, SW_BODY, SW_NOW,
        "missing webhook-timestamp");
    bad(&c, (hdrs){{"webhook-id", "webhook-timestamp"}, {SW_ID, SW_TS}}, SW_BODY, SW_NOW,
        "missing webhook-signature");
    verify_config_clear(&c);
    load("{\"type\":\"standard\",\"secret\":\"whsec_AfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}", &c);
    bad(&c, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY, SW_NOW, "signature mismatch");
    verify_config_clear(&c);
}

/* ---- generic hmac ------------------------------------------------------------------------- */

#define HM_BODY    "{\"event\":\"ping\"}"
#define HM_256_HEX "9472ed94dfc48af34958c30c7976ff45151655e0bd229b09e9155e139263c78f"
#define HM_512_HEX                                                                                 \
    "0ca4c3a7d953de7ab24986fb3c2b77e81d9c5ca9d771349709af26cc0d19dbc247a0806118113c5d360a1265df7b" \
    "3b750995cdbc38ff63ace035f403a18645f0"
#define HM_512_B64                                                                                 \
    "DKTDp9lT3nqySYb7PCt36B2cXKnXcTSXCa8mzA0Z28JHoIBhGBE8XTYKEmXfezt1CZXNvDj/Y6zgNfQDoYZF8A=="
#define HM_TS_B64 "7unPYZRjryYQq/3T2VyDtI3x0de05uvCwJumQp68GvQ="

static void test_hmac(void **state) {
    (void)state;
    verify_config c;
    load("{\"type\":\"hmac\",\"secret\":\"raw-key\",\"header\":\"X-Signature\"}", &c);
    assert_int_equal(c.hmac_bits, 256);
    assert_int_equal(c.hmac_base64, 0);
    ok(&c, (hdrs){{"x-signature"}, {HM_256_HEX}}, HM_BODY, 0);
    bad(&c, (hdrs){{"X-Signature"}, {"sha256=" HM_256_HEX}}, HM_BODY, 0, "malformed X-Signature");
    bad(&c, (hdrs){{"X-Signature"}, {HM_512_HEX}}, HM_BODY, 0, "malformed");
    bad(&c, (hdrs){{"X-Signature"}, {HM_256_HEX}}, HM_BODY "x", 0, "signature mismatch");
    bad(&c, (hdrs){{"X-Other"}, {HM_256_HEX}}, HM_BODY, 0, "missing X-Signature");
    verify_config_clear(&c);

    load("{\"type\":\"hmac\",\"secret\":\"raw-key\",\"header\":\"X-Sig\",\"algorithm\":\"sha512\","
         "\"prefix\":\"sha512=\"}",
         &c);
    ok(&c, (hdrs){{"X-Sig"}, {"sha512=" HM_512_HEX}}, HM_BODY, 0);
    ok(&c, (hdrs){{"X-Sig"}, {" sha512= " HM_512_HEX " "}}, HM_BODY, 0);
    bad(&c, (hdrs){{"X-Sig"}, {HM_512_HEX}}, HM_BODY, 0, "expected \"sha512=\"");
    bad(&c, (hdrs){{"X-Sig"}, {"SHA512=" HM_512_HEX}}, HM_BODY, 0, "malformed");
    verify_config_clear(&c);

    load("{\"type\":\"hmac\",\"secret\":\"raw-key\",\"header\":\"X-Sig\",\"algorithm\":\"sha512\","
         "\"encoding\":\"base64\"}",
         &c);
    ok(&c, (hdrs){{"X-Sig"}, {HM_512_B64}}, HM_BODY, 0);
    bad(&c, (hdrs){{"X-Sig"}, {HM_512_HEX}}, HM_BODY, 0, "malformed");
    bad(&c, (hdrs){{"X-Sig"}, {HM_TS_B64}}, HM_BODY, 0, "malformed");
    verify_config_clear(&c);

    load("{\"type\":\"hmac\",\"secret\":\"raw-key\",\"header\":\"X-Sig\",\"encoding\":\"base64\","
         "\"timestamp_header\":\"X-Ts\",\"tolerance\":60}",
         &c);
    assert_int_equal(c.tolerance_s, 60);
    ok(&c, (hdrs){{"X-Sig", "X-Ts"}, {HM_TS_B64, "1700000000"}}, HM_BODY, 1700000060);
    bad(&c, (hdrs){{"X-Sig", "X-Ts"}, {HM_TS_B64, "1700000000"}}, HM_BODY, 1700000061,
        "outside the 60 s tolerance");
    bad(&c, (hdrs){{"X-Sig", "X-Ts"}, {HM_TS_B64, "1700000001"}}, HM_BODY, 1700000000,
        "signature mismatch");
    bad(&c, (hdrs){{"X-Sig"}, {HM_TS_B64}}, HM_BODY, 1700000000, "missing X-Ts");
    bad(&c, (hdrs){{"X-Sig", "X-Ts"}, {HM_TS_B64, "0x65"}}, HM_BODY, 1700000000, "malformed");
    verify_config_clear(&c);

    load("{\"type\":\"hmac\",\"secret\":\"raw-key\",\"header\":\"X-Sig\",\"encoding\":\"base64\","
         "\"timestamp_header\":\"X-Ts\"}",
         &c);
    assert_int_equal(c.tolerance_s, 300);
    verify_config_clear(&c);
}

/* ---- basic and api_key -------------------------------------------------------------------- */

static void test_basic(void **state) {
    (void)state;
    verify_config c;
    const char *auth = "Authorization";
    load("{\"type\":\"basic\",\"username\":\"Aladdin\",\"password\":\"open sesame\"}", &c);
    ok(&c, (hdrs){{auth}, {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, "", 0);
    ok(&c, (hdrs){{"authorization"}, {"basic   QWxhZGRpbjpvcGVuIHNlc2FtZQ"}}, NULL, 0);
    /* "Aladdin:open sesamE", "aladdin:open sesame", "Aladdin:open sesame " */
    bad(&c, (hdrs){{auth}, {"Basic QWxhZGRpbjpvcGVuIHNlc2FtRQ=="}}, "", 0, "wrong username");
    bad(&c, (hdrs){{auth}, {"Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, "", 0, "wrong username");
    bad(&c, (hdrs){{auth}, {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZSA="}}, "", 0, "wrong username");
    bad(&c, (hdrs){{auth}, {"Basic QWxhZGRpbjo="}}, "", 0, "wrong username");
    bad(&c, (hdrs){{auth}, {"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, "", 0, "not Basic");
    bad(&c, (hdrs){{auth}, {"BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, "", 0, "not Basic");
    bad(&c, (hdrs){{auth}, {"Basic"}}, "", 0, "not Basic");
    bad(&c, (hdrs){{auth}, {"Basic !!!!"}}, "", 0, "malformed Authorization");
    bad(&c, (hdrs){{"X-Auth"}, {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, "", 0,
        "missing Authorization");
    /* credentials longer than any valid config are refused before decoding */
    char big[2200] = "Basic ";
    memset(big + 6, 'A', 2000);
    bad(&c, (hdrs){{auth}, {big}}, "", 0, "malformed Authorization");
    verify_config_clear(&c);
}

static void test_api_key(void **state) {
    (void)state;
    verify_config c;
    load("{\"type\":\"api_key\",\"key\":\"k3y-Secret\"}", &c);
    assert_string_equal(c.header, "X-API-Key");
    ok(&c, (hdrs){{"x-api-key"}, {"k3y-Secret"}}, "{}", 0);
    ok(&c, (hdrs){{"X-API-Key"}, {" k3y-Secret "}}, "{}", 0);
    bad(&c, (hdrs){{"X-API-Key"}, {"k3y-Secre"}}, "{}", 0, "wrong API key");
    bad(&c, (hdrs){{"X-API-Key"}, {"k3y-Secret2"}}, "{}", 0, "wrong API key");
    bad(&c, (hdrs){{"X-API-Key"}, {"K3Y-SECRET"}}, "{}", 0, "wrong API key");
    bad(&c, (hdrs){{"Authorization"}, {"k3y-Secret"}}, "{}", 0, "missing X-API-Key");
    verify_config_clear(&c);
    load("{\"type\":\"api_key\",\"key\":\"abc\",\"header\":\"X-Token\"}", &c);
    ok(&c, (hdrs){{"X-Token"}, {"abc"}}, "", 0);
    bad(&c, (hdrs){{"X-API-Key"}, {"abc"}}, "", 0, "missing X-Token");
    verify_config_clear(&c);
}

/* ---- none and fail-closed ----------------------------------------------------------------- */

static void test_none(void **state) {
    (void)state;
    verify_config c;
    char err[HQ_ERRLEN] = "";
    char why[HQ_ERRLEN] = "x";
    assert_int_equal(verify_config_from_json(NULL, &c, err, sizeof(err)), HQ_OK);
    assert_int_equal(c.kind, VERIFY_NONE);
    json_t *n = json_null();
    assert_int_equal(verify_config_from_json(n, &c, err, sizeof(err)), HQ_OK);
    assert_int_equal(c.kind, VERIFY_NONE);
    json_decref(n);
    load("{\"type\":\"none\"}", &c);
    assert_int_equal(c.kind, VERIFY_NONE);
    assert_int_equal(verify_check(&c, NULL, NULL, NULL, 0, 0, why, sizeof(why)), HQ_OK);
    assert_string_equal(why, "");
    ok(&c, (hdrs){{NULL}, {NULL}}, "anything", 0);
    verify_config_clear(&c);
}

static void misconfigured(const verify_config *c) {
    char why[HQ_ERRLEN] = "";
    hdrs h = {{GH_H, ST_H, "Authorization", "X-API-Key", SL_TSH, SL_SIGH},
              {GH_SIG, "t=1,v1=" ST_HEX, "Basic Og==", "", "1", SL_SIG}};
    assert_int_equal(verify_check(c, lookup, &h, "", 0, 1, why, sizeof(why)), HQ_ERR);
    assert_string_equal(why, "verifier misconfigured");
}

static void test_fail_closed(void **state) {
    (void)state;
    char empty[] = "";
    char secret[] = "s";
    char hdr[] = "X-Sig";
    char bad_std[] = "whsec_short";
    verify_config c = {.kind = (verify_kind)99, .secret = secret};
    misconfigured(&c);
    c.kind = (verify_kind)-1;
    misconfigured(&c);
    misconfigured(NULL);
    for (int k = VERIFY_GITHUB; k <= VERIFY_API_KEY; k++) {
        verify_config z = {.kind = (verify_kind)k};
        misconfigured(&z);
        z.secret = empty;
        z.key = empty;
        z.username = empty;
        z.password = empty;
        z.header = empty;
        misconfigured(&z);
    }
    verify_config h = {.kind = VERIFY_HMAC, .secret = secret};
    misconfigured(&h); /* no header */
    h.header = hdr;
    h.hmac_bits = 384;
    misconfigured(&h);
    h.hmac_bits = 256;
    h.hmac_base64 = 2;
    misconfigured(&h);
    verify_config s = {.kind = VERIFY_STANDARD, .secret = bad_std};
    misconfigured(&s);
    verify_config b = {.kind = VERIFY_BASIC, .username = hdr};
    misconfigured(&b); /* no password */
    /* a usable hand-built config with zero fields takes the defaults */
    verify_config g = {.kind = VERIFY_STRIPE, .secret = (char *)"whsec_test_abc123"};
    ok(&g, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T + 300);
    bad(&g, (hdrs){{ST_H}, {"t=1700000000,v1=" ST_HEX}}, ST_BODY, ST_T + 301, "300 s");
    /* caller errors are refused too */
    char why[HQ_ERRLEN];
    verify_config gh;
    load(GH_CFG, &gh);
    assert_int_equal(verify_check(&gh, NULL, NULL, "", 0, 0, why, sizeof(why)), HQ_ERR);
    hdrs hh = {{GH_H}, {GH_SIG}};
    assert_int_equal(verify_check(&gh, lookup, &hh, NULL, 13, 0, why, sizeof(why)), HQ_ERR);
    assert_int_equal(verify_check(&gh, lookup, &hh, GH_BODY, 13, 0, NULL, 0), HQ_OK);
    verify_config_clear(&gh);
}

/* Timestamps at the ends of int64 and now at the ends too: no overflow, refused. */
static void test_timestamp_edges(void **state) {
    (void)state;
    verify_config c;
    load(ST_CFG, &c);
    bad(&c, (hdrs){{ST_H}, {"t=9223372036854775807,v1=" ST_HEX}}, ST_BODY, INT64_MIN, "outside");
    bad(&c, (hdrs){{ST_H}, {"t=0,v1=" ST_HEX}}, ST_BODY, INT64_MAX, "outside");
    bad(&c, (hdrs){{ST_H}, {"t=9223372036854775807,v1=" ST_HEX}}, ST_BODY, INT64_MAX,
        "signature mismatch");
    bad(&c, (hdrs){{ST_H}, {"t=0,v1=" ST_HEX}}, ST_BODY, INT64_MIN, "outside");
    bad(&c, (hdrs){{ST_H}, {"t=0001700000000,v1=" ST_HEX}}, ST_BODY, ST_T, "signature mismatch");
    verify_config_clear(&c);
}

/* ---- config JSON -------------------------------------------------------------------------- */

static void bad_config(const char *json, const char *needle) {
    char err[HQ_ERRLEN] = "";
    verify_config c;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j)
        fail_msg("bad test JSON %s", json);
    if (verify_config_from_json(j, &c, err, sizeof(err)) != HQ_ERR)
        fail_msg("accepted %s", json);
    if (!strstr(err, needle))
        fail_msg("for %s: error '%s' lacks '%s'", json, err, needle);
    /* a refused config owns nothing and reads as none */
    assert_int_equal(c.kind, VERIFY_NONE);
    assert_null(c.secret);
    assert_null(c.header);
    if (strstr(err, "hunter2"))
        fail_msg("error '%s' shows the secret", err);
    json_decref(j);
}

static void test_config_errors(void **state) {
    (void)state;
    bad_config("[]", "verification: must be a JSON object");
    bad_config("\"github\"", "must be a JSON object");
    bad_config("{}", "verification.type: required");
    bad_config("{\"type\":1}", "verification.type: must be a string");
    bad_config("{\"type\":\"gitlab\"}",
               "verification.type: unknown verifier 'gitlab' (github, stripe, shopify, slack, "
               "standard, hmac, basic, api_key, none)");
    bad_config("{\"type\":\"GitHub\",\"secret\":\"hunter2\"}", "unknown verifier 'GitHub'");
    bad_config("{\"type\":\"github\",\"secret\":\"hunter2\",\"foo\":1}",
               "verification: unknown field 'foo' for type github");
    bad_config("{\"type\":\"github\",\"secret\":\"hunter2\",\"tolerance\":5}",
               "verification: unknown field 'tolerance' for type github");
    bad_config("{\"type\":\"none\",\"secret\":\"hunter2\"}",
               "verification: unknown field 'secret' for type none");
    bad_config("{\"type\":\"basic\",\"username\":\"u\",\"password\":\"hunter2\",\"secret\":\"x\"}",
               "unknown field 'secret' for type basic");
    bad_config("{\"type\":\"api_key\",\"key\":\"hunter2\",\"prefix\":\"x\"}",
               "unknown field 'prefix' for type api_key");
    bad_config("{\"type\":\"github\",\"secret\":\"x\",\"a\\u0001b\":1}", "unknown field 'a?b'");
    bad_config("{\"type\":\"stripe\"}", "verification.secret: required for type stripe");
    bad_config("{\"type\":\"hmac\",\"secret\":\"hunter2\"}",
               "verification.header: required for type hmac");
    bad_config("{\"type\":\"basic\",\"username\":\"u\"}",
               "verification.password: required for type basic");
    bad_config("{\"type\":\"basic\",\"password\":\"hunter2\"}",
               "verification.username: required for type basic");
    bad_config("{\"type\":\"api_key\"}", "verification.key: required for type api_key");
    bad_config("{\"type\":\"github\",\"secret\":1}", "verification.secret: must be a string");
    bad_config("{\"type\":\"github\",\"secret\":null}", "verification.secret: must be a string");
    bad_config("{\"type\":\"github\",\"secret\":\"\"}", "verification.secret: must be 1..512");
    bad_config("{\"type\":\"github\",\"secret\":\"a\\u0000b\"}", "verification.secret: contains "
                                                                 "a NUL byte");
    bad_config("{\"type\":\"stripe\",\"secret\":\"hunter2\",\"tolerance\":\"300\"}",
               "verification.tolerance: must be an integer");
    bad_config("{\"type\":\"stripe\",\"secret\":\"hunter2\",\"tolerance\":300.0}",
               "verification.tolerance: must be an integer");
    bad_config("{\"type\":\"stripe\",\"secret\":\"hunter2\",\"tolerance\":0}",
               "verification.tolerance: must be 1..86400");
    bad_config("{\"type\":\"slack\",\"secret\":\"hunter2\",\"tolerance\":86401}",
               "verification.tolerance: must be 1..86400");
    bad_config("{\"type\":\"standard\",\"secret\":\"hunter2\"}",
               "verification.secret: secret must start with \"whsec_\"");
    bad_config("{\"type\":\"standard\",\"secret\":\"whsec_c2hvcnQ=\"}",
               "verification.secret: secret key is 5 bytes");
    bad_config("{\"type\":\"standard\",\"secret\":\"whsec_!!!!\"}", "not valid base64");
    const char *h = "{\"type\":\"hmac\",\"secret\":\"hunter2\",\"header\":\"X-Sig\"";
    char buf[1024];
    struct {
        const char *extra, *needle;
    } hm[] = {
        {",\"algorithm\":\"sha1\"", "verification.algorithm: must be \"sha256\" or \"sha512\""},
        {",\"algorithm\":256", "verification.algorithm: must be"},
        {",\"encoding\":\"base32\"", "verification.encoding: must be \"hex\" or \"base64\""},
        {",\"encoding\":true", "verification.encoding: must be"},
        {",\"prefix\":\"\"", "verification.prefix: must be 1..64"},
        {",\"prefix\":\"a b\"", "verification.prefix: contains a space"},
        {",\"prefix\":3", "verification.prefix: must be a string"},
        {",\"timestamp_header\":\"X Ts\"", "verification.timestamp_header: not an HTTP header"},
        {",\"tolerance\":60", "verification.tolerance: only with timestamp_header"},
    };
    for (size_t i = 0; i < sizeof(hm) / sizeof(hm[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s}", h, hm[i].extra);
        bad_config(buf, hm[i].needle);
    }
    bad_config("{\"type\":\"hmac\",\"secret\":\"hunter2\",\"header\":\"X-Sig:\"}",
               "verification.header: not an HTTP header name");
    bad_config("{\"type\":\"hmac\",\"secret\":\"hunter2\",\"header\":\"\"}",
               "verification.header: must be 1..128");
    bad_config("{\"type\":\"basic\",\"username\":\"a:b\",\"password\":\"hunter2\"}",
               "verification.username: contains a control character or ':'");
    bad_config("{\"type\":\"basic\",\"username\":\"ab\",\"password\":\"hunter2\\n\"}",
               "verification.password: contains a control character");
    bad_config("{\"type\":\"api_key\",\"key\":\"hunter 2\"}", "verification.key: contains a space");

    /* length limits, at and past the edge */
    char big[700];
    memset(big, 'a', sizeof(big));
    snprintf(buf, sizeof(buf), "{\"type\":\"github\",\"secret\":\"%.513s\"}", big);
    bad_config(buf, "verification.secret: must be 1..512 bytes");
    snprintf(buf, sizeof(buf), "{\"type\":\"api_key\",\"key\":\"k\",\"header\":\"%.129s\"}", big);
    bad_config(buf, "verification.header: must be 1..128 bytes");
    verify_config c;
    snprintf(buf, sizeof(buf), "{\"type\":\"github\",\"secret\":\"%.512s\"}", big);
    load(buf, &c);
    assert_int_equal(strlen(c.secret), 512);
    verify_config_clear(&c);
    snprintf(buf, sizeof(buf), "{\"type\":\"api_key\",\"key\":\"k\",\"header\":\"%.128s\"}", big);
    load(buf, &c);
    verify_config_clear(&c);

    char err[HQ_ERRLEN];
    assert_int_equal(verify_config_from_json(NULL, NULL, err, sizeof(err)), HQ_ERR);
}

/* ---- to_json ------------------------------------------------------------------------------ */

static void round_trip(const char *json) {
    verify_config a, b;
    char err[HQ_ERRLEN] = "";
    load(json, &a);
    json_t *j = verify_config_to_json(&a, 1);
    assert_non_null(j);
    assert_int_equal(verify_config_from_json(j, &b, err, sizeof(err)), HQ_OK);
    json_t *k = verify_config_to_json(&b, 1);
    if (!json_equal(j, k))
        fail_msg("%s does not round-trip", json);
    assert_int_equal(a.kind, b.kind);
    assert_int_equal(a.hmac_bits, b.hmac_bits);
    assert_int_equal(a.hmac_base64, b.hmac_base64);
    assert_int_equal(a.tolerance_s, b.tolerance_s);
    json_decref(j);
    json_decref(k);
    verify_config_clear(&a);
    verify_config_clear(&b);
}

static void test_to_json(void **state) {
    (void)state;
    verify_config c;
    load("{\"type\":\"basic\",\"username\":\"Aladdin\",\"password\":\"open sesame\"}", &c);
    json_t *j = verify_config_to_json(&c, 0);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"password\":\"****\",\"type\":\"basic\",\"username\":\"Aladdin\"}");
    free(s);
    json_decref(j);
    verify_config_clear(&c);

    load("{\"type\":\"hmac\",\"secret\":\"hunter2\",\"header\":\"X-Sig\",\"prefix\":\"v1=\","
         "\"timestamp_header\":\"X-Ts\"}",
         &c);
    j = verify_config_to_json(&c, 0);
    s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"algorithm\":\"sha256\",\"encoding\":\"hex\",\"header\":\"X-Sig\","
                           "\"prefix\":\"v1=\",\"secret\":\"****\",\"timestamp_header\":\"X-Ts\","
                           "\"tolerance\":300,\"type\":\"hmac\"}");
    free(s);
    json_decref(j);
    j = verify_config_to_json(&c, 1);
    assert_string_equal(json_string_value(json_object_get(j, "secret")), "hunter2");
    json_decref(j);
    verify_config_clear(&c);

    load("{\"type\":\"api_key\",\"key\":\"hunter2\"}", &c);
    j = verify_config_to_json(&c, 0);
    s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"header\":\"X-API-Key\",\"key\":\"****\",\"type\":\"api_key\"}");
    free(s);
    json_decref(j);
    verify_config_clear(&c);

    load(ST_CFG, &c);
    j = verify_config_to_json(&c, 0);
    s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"secret\":\"****\",\"tolerance\":300,\"type\":\"stripe\"}");
    free(s);
    json_decref(j);
    verify_config_clear(&c);

    j = verify_config_to_json(NULL, 0);
    s = json_dumps(j, JSON_COMPACT);
    assert_string_equal(s, "{\"type\":\"none\"}");
    free(s);
    json_decref(j);

    round_trip("{\"type\":\"none\"}");
    round_trip(GH_CFG);
    round_trip(ST_CFG);
    round_trip("{\"type\":\"stripe\",\"secret\":\"whsec_x\",\"tolerance\":42}");
    round_trip(SH_CFG);
    round_trip(SL_CFG);
    round_trip(SW_CFG);
    round_trip("{\"type\":\"hmac\",\"secret\":\"k\",\"header\":\"X-S\"}");
    round_trip("{\"type\":\"hmac\",\"secret\":\"k\",\"header\":\"X-S\",\"algorithm\":\"sha512\","
               "\"encoding\":\"base64\",\"prefix\":\"sha512=\",\"timestamp_header\":\"X-T\","
               "\"tolerance\":9}");
    round_trip("{\"type\":\"basic\",\"username\":\"u\",\"password\":\"p w\"}");
    round_trip("{\"type\":\"api_key\",\"key\":\"k\",\"header\":\"X-Token\"}");

    verify_config_clear(NULL);
}

/* ---- delivery ids and names --------------------------------------------------------------- */

static int id_of(verify_kind k, hdrs h, const char *body, char *out, size_t outlen) {
    return verify_delivery_id(k, lookup, &h, body, body ? strlen(body) : 0, out, outlen);
}

static void test_delivery_id(void **state) {
    (void)state;
    char id[VERIFY_ID_LEN];
    hdrs none = {{NULL}, {NULL}};
    assert_int_equal(id_of(VERIFY_GITHUB,
                           (hdrs){{"X-GitHub-Delivery"}, {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}},
                           "{}", id, sizeof(id)),
                     HQ_OK);
    assert_string_equal(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_int_equal(id_of(VERIFY_STRIPE, none, ST_BODY, id, sizeof(id)), HQ_OK);
    assert_string_equal(id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    assert_int_equal(
        id_of(VERIFY_SHOPIFY,
              (hdrs){{"x-shopify-webhook-id"}, {"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}}, SH_BODY,
              id, sizeof(id)),
        HQ_OK);
    assert_string_equal(id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_int_equal(id_of(VERIFY_SLACK, none,
                           "{\"type\":\"event_callback\",\"event_id\":\"Ev08MFMKH6\",\"event\":{}}",
                           id, sizeof(id)),
                     HQ_OK);
    assert_string_equal(id, "Ev08MFMKH6");
    assert_int_equal(
        id_of(VERIFY_STANDARD, (hdrs){{SW_H}, {SW_ID, SW_TS, SW_SIG}}, SW_BODY, id, sizeof(id)),
        HQ_OK);
    assert_string_equal(id, SW_ID);

    /* none: the kinds without one, absent, not JSON, not a string, bad characters, too long */
    assert_int_equal(id_of(VERIFY_SLACK, none, SL_BODY, id, sizeof(id)), HQ_ERR);
    assert_string_equal(id, "");
    assert_int_equal(
        id_of(VERIFY_HMAC, (hdrs){{"webhook-id"}, {"x"}}, "{\"id\":\"x\"}", id, sizeof(id)),
        HQ_ERR);
    assert_int_equal(id_of(VERIFY_BASIC, none, "{\"id\":\"x\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_API_KEY, none, "{\"id\":\"x\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_NONE, none, "{\"id\":\"x\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of((verify_kind)42, none, "{\"id\":\"x\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_GITHUB, none, "{}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":12}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "[{\"id\":\"x\"}]", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"data\":{\"id\":\"x\"}}", id, sizeof(id)),
                     HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":\"evt 1\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":\"evt\\u0000\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":\"\"}", id, sizeof(id)), HQ_ERR);
    assert_int_equal(
        id_of(VERIFY_GITHUB, (hdrs){{"X-GitHub-Delivery"}, {"a/b"}}, "", id, sizeof(id)), HQ_ERR);
    char longid[200];
    memset(longid, 'a', sizeof(longid));
    longid[129] = '\0';
    assert_int_equal(
        id_of(VERIFY_GITHUB, (hdrs){{"X-GitHub-Delivery"}, {longid}}, "", id, sizeof(id)), HQ_ERR);
    longid[128] = '\0';
    assert_int_equal(
        id_of(VERIFY_GITHUB, (hdrs){{"X-GitHub-Delivery"}, {longid}}, "", id, sizeof(id)), HQ_OK);
    assert_string_equal(id, longid);
    /* and it must fit the caller's buffer */
    char small[4];
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":\"evt_1\"}", small, sizeof(small)),
                     HQ_ERR);
    assert_int_equal(id_of(VERIFY_STRIPE, none, "{\"id\":\"ev1\"}", small, sizeof(small)), HQ_OK);
    assert_int_equal(verify_delivery_id(VERIFY_GITHUB, NULL, NULL, "", 0, id, sizeof(id)), HQ_ERR);
    assert_int_equal(verify_delivery_id(VERIFY_STRIPE, NULL, NULL, NULL, 0, id, sizeof(id)),
                     HQ_ERR);
}

static void test_kind_names(void **state) {
    (void)state;
    const char *names[] = {"none",     "github", "stripe", "shopify", "slack",
                           "standard", "hmac",   "basic",  "api_key"};
    for (int k = VERIFY_NONE; k <= VERIFY_API_KEY; k++) {
        assert_string_equal(verify_kind_name((verify_kind)k), names[k]);
        char json[64];
        verify_config c;
        char err[HQ_ERRLEN];
        snprintf(json, sizeof(json), "{\"type\":\"%s\"}", names[k]);
        json_t *j = json_loads(json, 0, NULL);
        /* every name parses as its kind (and all but none then want their fields) */
        int rc = verify_config_from_json(j, &c, err, sizeof(err));
        if (k == VERIFY_NONE)
            assert_int_equal(rc, HQ_OK);
        else
            assert_non_null(strstr(err, names[k]));
        json_decref(j);
    }
    assert_string_equal(verify_kind_name((verify_kind)99), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github),
        cmocka_unit_test(test_stripe),
        cmocka_unit_test(test_shopify),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_standard),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_fail_closed),
        cmocka_unit_test(test_timestamp_edges),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_delivery_id),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
