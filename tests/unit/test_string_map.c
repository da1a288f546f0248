/* test_string_map.c -- the string-keyed hash map (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "string_map.h"

static void test_hm(void **state) {
    (void)state;
    strmap *m = strmap_new();
    assert_non_null(m);
    static int vals[5000];
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        vals[i] = i;
        assert_int_equal(HQ_OK, strmap_put(m, k, &vals[i]));
    }
    assert_int_equal(5000, strmap_len(m));
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        int *v = strmap_get(m, k);
        assert_non_null(v);
        assert_int_equal(i, *v);
    }
    assert_null(strmap_get(m, "key-5000"));
    assert_ptr_equal(&vals[7], strmap_getn(m, "key-7xyz", 5));
    assert_int_equal(HQ_OK, strmap_put(m, "key-1", &vals[2])); /* replace */
    assert_int_equal(5000, strmap_len(m));
    assert_ptr_equal(&vals[2], strmap_del(m, "key-1"));
    assert_null(strmap_del(m, "key-1"));
    assert_int_equal(4999, strmap_len(m));
    strmap_free(m);
    strmap_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
