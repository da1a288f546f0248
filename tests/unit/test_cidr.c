/* test_cidr.c -- CIDR sets: v4, v6, mapped v4, host bits, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
#include "hq.h"

static void test_match(void **state) {
    const char *const blocks[] = {"10.0.0.0/8", "192.168.1.7", "fd00::/8", "2001:db8::/33",
                                  "172.16.5.9/12"};
    char err[HQ_ERRLEN];
    cidr_set *s = cidr_set_new(blocks, 5, err, sizeof(err));
    (void)state;
    assert_non_null(s);
    assert_int_equal(cidr_set_size(s), 5);
    assert_true(cidr_set_has(s, "10.1.2.3"));
    assert_true(cidr_set_has(s, "::ffff:10.1.2.3"));
    assert_false(cidr_set_has(s, "11.0.0.1"));
    assert_true(cidr_set_has(s, "192.168.1.7"));
    assert_false(cidr_set_has(s, "192.168.1.8"));
    assert_true(cidr_set_has(s, "fd12::1"));
    assert_true(cidr_set_has(s, "[fd12::1]"));
    assert_false(cidr_set_has(s, "fe80::1"));
    assert_true(cidr_set_has(s, "2001:db8:7fff::1"));
    assert_false(cidr_set_has(s, "2001:db8:8000::1"));
    assert_true(cidr_set_has(s, "172.31.255.255")); /* host bits of the block cleared */
    assert_false(cidr_set_has(s, "172.32.0.0"));
    assert_false(cidr_set_has(s, "not an address"));
    assert_false(cidr_set_has(s, ""));
    assert_false(cidr_set_has(s, NULL));
    cidr_set_free(s);
}

static void test_zero_and_empty(void **state) {
    const char *const all[] = {"0.0.0.0/0"};
    char err[HQ_ERRLEN];
    cidr_set *s = cidr_set_new(all, 1, err, sizeof(err));
    cidr_set *e = cidr_set_new(NULL, 0, err, sizeof(err));
    (void)state;
    assert_true(cidr_set_has(s, "1.2.3.4"));
    assert_false(cidr_set_has(s, "::1")); /* v4 blocks never match native v6 */
    assert_false(cidr_set_has(e, "1.2.3.4"));
    assert_int_equal(cidr_set_size(e), 0);
    cidr_set_free(s);
    cidr_set_free(e);
    cidr_set_free(NULL);
}

static void test_bad(void **state) {
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/",   "/8", "10.0.0/8", "x",
                                      "10.0.0.0/8x", "",       "10.0.0.0/-1", NULL};
    char err[HQ_ERRLEN];
    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        cidr_set *s = cidr_set_new(&bad[i], 1, err, sizeof(err));
        if (s)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(err) > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_zero_and_empty),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
