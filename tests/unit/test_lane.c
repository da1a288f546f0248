/* test_lane.c -- lane ids sort in publish order and round-trip; order keys per policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "endpoint.h"
#include "hq.h"
#include "lane.h"

static void test_lane_id_order(void **state) {
    (void)state;
    /* byte order of lane ids is publish order, where the stream ids' is not */
    const char *sids[] = {
        "9-0", "10-0", "10-2", "10-10", "1764600000000-5", "18446744073709551615-0"};
    char prev[LANE_ID_LEN] = "";
    for (size_t i = 0; i < sizeof sids / sizeof sids[0]; i++) {
        char lid[LANE_ID_LEN], back[64];
        assert_int_equal(lane_id_of(sids[i], lid), HQ_OK);
        assert_int_equal(strlen(lid), LANE_ID_LEN - 1);
        assert_true(strcmp(prev, lid) < 0);
        assert_int_equal(lane_sid_of(lid, back, sizeof back), HQ_OK);
        assert_string_equal(back, sids[i]);
        memcpy(prev, lid, sizeof lid);
    }
}

static void test_lane_id_bad(void **state) {
    (void)state;
    char lid[LANE_ID_LEN], sid[64];
    const char *bad[] = {"", "-", "1-", "-1", "1", "a-1", "1-b", "1-2-3", "18446744073709551616-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lane_id_of(bad[i], lid), HQ_ERR);
    assert_int_equal(lane_sid_of("1-2", sid, sizeof sid), HQ_ERR); /* not padded */
    assert_int_equal(lane_sid_of("00000000000000000001-00000000000000000002", sid, 3), HQ_ERR);
}

static void key_of(ep *e, const char *tenant, const char *body, const char *want) {
    char key[LANE_KEY_MAX];
    lane_order_key(e, tenant, body, strlen(body), key);
    assert_string_equal(key, want);
}

static void test_order_key(void **state) {
    (void)state;
    ep e = {0};
    const char *body = "{\"id\":\"evt_1\",\"type\":\"t\",\"timestamp\":\"x\","
                       "\"data\":{\"task\":\"t-42\",\"n\":7,\"f\":1.5,\"b\":true,\"o\":{}}}";
    e.order_key = "data.task";
    key_of(&e, "acme", body, ""); /* not ordered: one lane */
    e.ordered = 1;
    key_of(&e, "acme", body, "t-42");
    e.order_key = "data.n";
    key_of(&e, NULL, body, "7");
    e.order_key = "data.b";
    key_of(&e, NULL, body, "true");
    e.order_key = "data.o"; /* not a scalar */
    key_of(&e, NULL, body, "");
    e.order_key = "data.missing";
    key_of(&e, NULL, body, "");
    e.order_key = "tenant";
    key_of(&e, "acme", body, "acme");
    key_of(&e, NULL, body, "");
    e.order_key = NULL; /* ordered without a key: one order for the endpoint */
    key_of(&e, "acme", body, "");
    /* a long value is cut: stricter order, never two keys for one value */
    char big[400];
    snprintf(big, sizeof big, "{\"data\":{\"k\":\"%0300d\"}}", 1);
    e.order_key = "data.k";
    char key[LANE_KEY_MAX];
    lane_order_key(&e, NULL, big, strlen(big), key);
    assert_int_equal(strlen(key), EP_ORDER_KEY_MAX);
    key_of(&e, NULL, "{\"data\":[1,2]}", ""); /* data not an object */
    key_of(&e, NULL, "not json", "");
}

static void test_member(void **state) {
    (void)state;
    char m[LANE_MEMBER_MAX];
    lane_member("00000000000000000001-00000000000000000002", "k1", "w-1", m, sizeof m);
    assert_string_equal(m, "00000000000000000001-00000000000000000002\tk1\tw-1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lane_id_order),
        cmocka_unit_test(test_lane_id_bad),
        cmocka_unit_test(test_order_key),
        cmocka_unit_test(test_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
