/* test_pipeline.c -- building a Redis pipeline without sending it (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "pipeline.h"

static void test_pl_build(void **state) {
    (void)state;
    pipeline *p = pipeline_new();
    assert_non_null(p);
    for (int i = 0; i < 1000; i++) {
        pipeline_begin(p, i % 3, (void *)(intptr_t)i);
        pipeline_arg(p, "XADD");
        pipeline_argn(p, "k\0ey", 4);
        pipeline_argi(p, -1234567890123LL);
        pipeline_end(p);
    }
    assert_int_equal(1000, pipeline_len(p));
    assert_int_equal(2, pipeline_tag(p, 998));
    assert_int_equal(999, (int)(intptr_t)pipeline_ud(p, 999));
    pipeline_reset(p);
    assert_int_equal(0, pipeline_len(p));
    pipeline_free(p);
    pipeline_free(NULL);
}

/* Every job state has its own name in logs (a missing one printed "(null)"). */

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pl_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
