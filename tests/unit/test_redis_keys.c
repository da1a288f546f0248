/* test_redis_keys.c -- key names exactly as docs/keys.md; prefix validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "ids.h"
#include "redis_keys.h"

static void test_queue_keys(void **state) {
    char buf[KEY_MAX];
    assert_int_equal(key_events("hookq", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{q}:events");
    assert_int_equal(key_jobs("hookq", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{q}:jobs");
    assert_int_equal(key_delay("hookq", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{q}:delay");
    assert_int_equal(key_dead("hookq", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{q}:dead");
    assert_int_equal(key_idem("hookq", "order-42", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{q}:idem:order-42");
}

static void test_endpoint_keys(void **state) {
    char buf[KEY_MAX];
    assert_int_equal(key_endpoints("app.prod", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "app.prod:endpoints");
    assert_int_equal(key_ep_version("app.prod", buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "app.prod:{q}:endpoints:version");
    const char *ep = "ep_01JDX3ABCDEFGHJKMNPQRSTVWX";
    assert_int_equal(key_endpoint("hookq", ep, buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{ep_01JDX3ABCDEFGHJKMNPQRSTVWX}:endpoint");
    assert_int_equal(key_failures("hookq", ep, buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{ep_01JDX3ABCDEFGHJKMNPQRSTVWX}:failures");
    assert_int_equal(key_log("hookq", ep, buf, sizeof buf), HQ_OK);
    assert_string_equal(buf, "hookq:{ep_01JDX3ABCDEFGHJKMNPQRSTVWX}:log");
}

static void test_group_names(void **state) {
    assert_string_equal(KEY_GROUP_FANOUT, "fanout");
    assert_string_equal(KEY_GROUP_DELIVER, "deliver");
}

static void test_buffer_too_small(void **state) {
    char buf[16];
    memset(buf, 'x', sizeof buf);
    /* "hookq:{q}:events" is 16 chars: needs 17 bytes with the NUL. */
    assert_int_equal(key_events("hookq", buf, sizeof buf), HQ_ERR);
    assert_string_equal(buf, ""); /* never a truncated key */
    assert_int_equal(key_events("hookq", buf, 0), HQ_ERR);
    assert_int_equal(key_events("hookq", NULL, 10), HQ_ERR);
    char fit[17];
    assert_int_equal(key_events("hookq", fit, sizeof fit), HQ_OK);
    assert_string_equal(fit, "hookq:{q}:events");
    assert_int_equal(key_log("hookq", "ep_x", buf, sizeof buf), HQ_ERR);
}

/* KEY_MAX must hold the longest key built from a maximal prefix and id. */
static void test_key_max_is_enough(void **state) {
    char prefix[KEY_PREFIX_MAX + 1];
    char id[ID_MAX + 1];
    memset(prefix, 'p', KEY_PREFIX_MAX);
    prefix[KEY_PREFIX_MAX] = '\0';
    memset(id, 'i', ID_MAX);
    id[ID_MAX] = '\0';
    char buf[KEY_MAX];
    assert_int_equal(key_idem(prefix, id, buf, sizeof buf), HQ_OK);
    assert_int_equal(strlen(buf), KEY_PREFIX_MAX + strlen(":{q}:idem:") + ID_MAX);
    assert_int_equal(key_failures(prefix, id, buf, sizeof buf), HQ_OK);
    assert_int_equal(key_endpoint(prefix, id, buf, sizeof buf), HQ_OK);
    assert_int_equal(key_ep_version(prefix, buf, sizeof buf), HQ_OK);
}

static void test_prefix_valid(void **state) {
    char err[HQ_ERRLEN];
    assert_int_equal(key_prefix_valid("hookq", err, sizeof err), HQ_OK);
    assert_int_equal(key_prefix_valid("a", err, sizeof err), HQ_OK);
    assert_int_equal(key_prefix_valid("My_App-2.prod", err, sizeof err), HQ_OK);
    char p64[KEY_PREFIX_MAX + 2];
    memset(p64, 'a', KEY_PREFIX_MAX);
    p64[KEY_PREFIX_MAX] = '\0';
    assert_int_equal(key_prefix_valid(p64, err, sizeof err), HQ_OK);
    p64[KEY_PREFIX_MAX] = 'a';
    p64[KEY_PREFIX_MAX + 1] = '\0';
    assert_int_equal(key_prefix_valid(p64, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "65"));

    assert_int_equal(key_prefix_valid("", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(key_prefix_valid(NULL, err, sizeof err), HQ_ERR);
    assert_int_equal(key_prefix_valid("a{b", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "'{'"));
    assert_int_equal(key_prefix_valid("a}b", err, sizeof err), HQ_ERR);
    assert_int_equal(key_prefix_valid("hook:q", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "':'"));
    assert_int_equal(key_prefix_valid("hook q", err, sizeof err), HQ_ERR);
    assert_int_equal(key_prefix_valid("hook\nq", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "0x0a"));
    assert_int_equal(key_prefix_valid("h\xc3\xa9", err, sizeof err), HQ_ERR);
    /* A NULL err buffer is allowed. */
    assert_int_equal(key_prefix_valid("a*b", NULL, 0), HQ_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_keys),        cmocka_unit_test(test_endpoint_keys),
        cmocka_unit_test(test_group_names),       cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_key_max_is_enough), cmocka_unit_test(test_prefix_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
