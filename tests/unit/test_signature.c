/* test_signature.c -- signatures: known answers, secrets, verification with rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "signature.h"

#define KA_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define KA_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define KA_TS     1614265330
#define KA_BODY   "{\"test\": 2432232314}"
#define KA_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_known_answer_v1(void **state) {
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    char err[HQ_ERRLEN] = "";
    char out[SIGN_V1_LEN];
    assert_int_equal(sign_secret_decode(KA_SECRET, key, &keylen, err, sizeof(err)), HQ_OK);
    assert_int_equal(keylen, 24);
    assert_int_equal(sign_v1(key, keylen, KA_ID, KA_TS, KA_BODY, strlen(KA_BODY), out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, KA_SIG);
    assert_int_equal(strlen(out), SIGN_V1_LEN - 1);
}

/* Expected values made with:
 *   printf '%s' '{"test": 2432232314}' | \
 *       openssl dgst -sha256 -hmac 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
 *   printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"
 * (the second is also the example in GitHub's webhook documentation). */
static void test_known_answer_github(void **state) {
    char out[SIGN_GH_LEN];
    assert_int_equal(sign_github(KA_SECRET, KA_BODY, strlen(KA_BODY), out, sizeof(out)), HQ_OK);
    assert_string_equal(out,
                        "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c");
    assert_int_equal(strlen(out), SIGN_GH_LEN - 1);
    assert_int_equal(
        sign_github("It's a Secret to Everybody", "Hello, World!", 13, out, sizeof(out)), HQ_OK);
    assert_string_equal(out,
                        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

static void test_sign_rejects_bad_args(void **state) {
    unsigned char key[24] = {1};
    char out[SIGN_V1_LEN];
    char gh[SIGN_GH_LEN];
    assert_int_equal(sign_v1(key, sizeof(key), "id", 1, "x", 1, out, SIGN_V1_LEN - 1), HQ_ERR);
    assert_int_equal(sign_v1(key, 0, "id", 1, "x", 1, out, sizeof(out)), HQ_ERR);
    assert_int_equal(sign_v1(key, sizeof(key), NULL, 1, "x", 1, out, sizeof(out)), HQ_ERR);
    assert_int_equal(sign_github("s", "x", 1, gh, SIGN_GH_LEN - 1), HQ_ERR);
    assert_int_equal(sign_github("", "x", 1, gh, sizeof(gh)), HQ_ERR);
    /* an empty body is fine and differs from a one-byte body */
    char a[SIGN_V1_LEN], b[SIGN_V1_LEN];
    assert_int_equal(sign_v1(key, sizeof(key), "id", 1, "", 0, a, sizeof(a)), HQ_OK);
    assert_int_equal(sign_v1(key, sizeof(key), "id", 1, "x", 1, b, sizeof(b)), HQ_OK);
    assert_string_not_equal(a, b);
}

static void test_body_is_binary_safe(void **state) {
    unsigned char key[24] = {7};
    char a[SIGN_V1_LEN], b[SIGN_V1_LEN];
    const char body1[] = {'a', '\0', 'b'};
    const char body2[] = {'a', '\0', 'c'};
    assert_int_equal(sign_v1(key, sizeof(key), "id", 1, body1, 3, a, sizeof(a)), HQ_OK);
    assert_int_equal(sign_v1(key, sizeof(key), "id", 1, body2, 3, b, sizeof(b)), HQ_OK);
    assert_string_not_equal(a, b);
}

static void test_generate(void **state) {
    char s1[SIGN_SECRET_MAX], s2[SIGN_SECRET_MAX];
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    char err[HQ_ERRLEN];
    assert_int_equal(sign_secret_generate(s1, sizeof(s1)), HQ_OK);
    assert_int_equal(sign_secret_generate(s2, sizeof(s2)), HQ_OK);
    assert_string_not_equal(s1, s2);
    assert_memory_equal(s1, SIGN_SECRET_PREFIX, 6);
    assert_int_equal(strlen(s1), 6 + 44);
    assert_int_equal(sign_secret_decode(s1, key, &keylen, err, sizeof(err)), HQ_OK);
    assert_int_equal(keylen, 32);
    assert_int_equal(sign_secret_valid(s2, err, sizeof(err)), HQ_OK);
    /* buffer too small */
    assert_int_equal(sign_secret_generate(s1, 50), HQ_ERR);
    assert_int_equal(sign_secret_generate(s1, 51), HQ_OK);
}

/* Every rejection names the problem and never echoes the secret or its key part. */
static void expect_bad_secret(const char *secret, const char *needle) {
    char err[HQ_ERRLEN] = "";
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    assert_int_equal(sign_secret_decode(secret, key, &keylen, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, needle));
    if (secret && strlen(secret) > 6) {
        const char *tail = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : secret;
        assert_null(strstr(err, tail));
    }
    char err2[HQ_ERRLEN] = "";
    assert_int_equal(sign_secret_valid(secret, err2, sizeof(err2)), HQ_ERR);
    assert_string_equal(err, err2);
}

static void test_bad_secrets(void **state) {
    expect_bad_secret(NULL, "missing");
    expect_bad_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_");
    expect_bad_secret("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_");
    expect_bad_secret("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_");
    expect_bad_secret("whsec_", "base64");
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", "base64");
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "base64");   /* length % 4 */
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa=w", "base64");  /* '=' inside */
    expect_bad_secret("whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64"); /* space */
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", "base64");
    /* 18 bytes: too short */
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZI", "18 bytes");
    /* 23 bytes (with padding fix-up: 32 chars with one '=' is 23 bytes) */
    expect_bad_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=", "23 bytes");
    /* 66 bytes: too long */
    char big[SIGN_SECRET_MAX] = "whsec_";
    for (int i = 0; i < 88; i++)
        strcat(big, "A");
    expect_bad_secret(big, "66 bytes");
    /* longer than SIGN_SECRET_MAX */
    char huge[300] = "whsec_";
    for (int i = 0; i < 200; i++)
        strcat(huge, "A");
    expect_bad_secret(huge, "too long");
}

static void test_secret_lengths_and_padding(void **state) {
    unsigned char key[SIGN_KEY_MAX];
    size_t keylen = 0;
    char err[HQ_ERRLEN];
    /* 24 bytes, no padding */
    assert_int_equal(sign_secret_decode(KA_SECRET, key, &keylen, err, sizeof(err)), HQ_OK);
    assert_int_equal(keylen, 24);
    /* 25 bytes: 36 chars ending "==" */
    assert_int_equal(sign_secret_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ==", key, &keylen,
                                        err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(keylen, 25);
    assert_int_equal(key[24], 1);
    /* 26 bytes: 36 chars ending "=" */
    assert_int_equal(sign_secret_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=", key, &keylen,
                                        err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(keylen, 26);
    assert_int_equal(key[25], 1);
    /* 64 bytes: 88 chars ending "==" */
    char s[SIGN_SECRET_MAX] = "whsec_";
    for (int i = 0; i < 86; i++)
        strcat(s, "A");
    strcat(s, "==");
    assert_int_equal(sign_secret_decode(s, key, &keylen, err, sizeof(err)), HQ_OK);
    assert_int_equal(keylen, 64);
}

static void test_verify(void **state) {
    const char *b = KA_BODY;
    size_t bl = strlen(b);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, KA_SIG), HQ_OK);
    /* rotation: any space-separated entry may match, in any position */
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl,
                                    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " KA_SIG),
                     HQ_OK);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl,
                                    KA_SIG " v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                     HQ_OK);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, "v1a,xyz  " KA_SIG "  v2,abc"),
                     HQ_OK);
    /* tampering */
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, "{\"test\": 2432232315}", bl, KA_SIG),
                     HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS + 1, b, bl, KA_SIG), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, "msg_other", KA_TS, b, bl, KA_SIG), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl - 1, KA_SIG), HQ_ERR);
    assert_int_equal(
        sign_verify_v1("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", KA_ID, KA_TS, b, bl, KA_SIG),
        HQ_ERR);
    /* a signature without its version, truncated, or as a prefix of a longer entry */
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, KA_SIG + 3), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl,
                                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"),
                     HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, KA_SIG "x"), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, ""), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, "   "), HQ_ERR);
    assert_int_equal(sign_verify_v1(KA_SECRET, KA_ID, KA_TS, b, bl, NULL), HQ_ERR);
    /* a bad secret never verifies */
    assert_int_equal(sign_verify_v1("nope", KA_ID, KA_TS, b, bl, KA_SIG), HQ_ERR);
}

static void test_verify_roundtrip_rotation(void **state) {
    char s1[SIGN_SECRET_MAX], s2[SIGN_SECRET_MAX];
    unsigned char k1[SIGN_KEY_MAX], k2[SIGN_KEY_MAX];
    size_t l1, l2;
    char g1[SIGN_V1_LEN], g2[SIGN_V1_LEN], hdr[2 * SIGN_V1_LEN];
    assert_int_equal(sign_secret_generate(s1, sizeof(s1)), HQ_OK);
    assert_int_equal(sign_secret_generate(s2, sizeof(s2)), HQ_OK);
    assert_int_equal(sign_secret_decode(s1, k1, &l1, NULL, 0), HQ_OK);
    assert_int_equal(sign_secret_decode(s2, k2, &l2, NULL, 0), HQ_OK);
    assert_int_equal(sign_v1(k1, l1, "evt_1", -5, "{}", 2, g1, sizeof(g1)), HQ_OK);
    assert_int_equal(sign_v1(k2, l2, "evt_1", -5, "{}", 2, g2, sizeof(g2)), HQ_OK);
    strcpy(hdr, g1);
    strcat(hdr, " ");
    strcat(hdr, g2);
    assert_int_equal(sign_verify_v1(s1, "evt_1", -5, "{}", 2, hdr), HQ_OK);
    assert_int_equal(sign_verify_v1(s2, "evt_1", -5, "{}", 2, hdr), HQ_OK);
    assert_int_equal(sign_verify_v1(s1, "evt_1", -5, "{}", 2, g2), HQ_ERR);
    assert_int_equal(sign_verify_v1(s2, "evt_1", -5, "{}", 2, g1), HQ_ERR);
}

static void test_ct_equal(void **state) {
    assert_int_equal(sign_ct_equal("abc", "abc", 3), 1);
    assert_int_equal(sign_ct_equal("abc", "abd", 3), 0);
    assert_int_equal(sign_ct_equal("xbc", "abc", 3), 0);
    assert_int_equal(sign_ct_equal("abc", "abd", 2), 1);
    assert_int_equal(sign_ct_equal("", "x", 0), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer_v1),
        cmocka_unit_test(test_known_answer_github),
        cmocka_unit_test(test_sign_rejects_bad_args),
        cmocka_unit_test(test_body_is_binary_safe),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_secret_lengths_and_padding),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_verify_roundtrip_rotation),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
