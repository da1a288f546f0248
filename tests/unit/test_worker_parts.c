/* test_wkmisc.c -- the worker's hash map, event cache and pipeline builder (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event_cache.h"
#include "string_map.h"
#include "hq.h"
#include "pipeline.h"
#include "worker_internal.h"

static void test_hm(void **state) {
    (void)state;
    hm *m = hm_new();
    assert_non_null(m);
    static int vals[5000];
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        vals[i] = i;
        assert_int_equal(HQ_OK, hm_put(m, k, &vals[i]));
    }
    assert_int_equal(5000, hm_len(m));
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        int *v = hm_get(m, k);
        assert_non_null(v);
        assert_int_equal(i, *v);
    }
    assert_null(hm_get(m, "key-5000"));
    assert_ptr_equal(&vals[7], hm_getn(m, "key-7xyz", 5));
    assert_int_equal(HQ_OK, hm_put(m, "key-1", &vals[2])); /* replace */
    assert_int_equal(5000, hm_len(m));
    assert_ptr_equal(&vals[2], hm_del(m, "key-1"));
    assert_null(hm_del(m, "key-1"));
    assert_int_equal(4999, hm_len(m));
    hm_free(m);
    hm_free(NULL);
}

static evp mkev(const char *id) {
    evp e = {0};
    e.id = strdup(id);
    e.type = strdup("t.x");
    e.data = strdup("{\"a\":1}");
    e.datalen = 7;
    e.ts = 1700000000000;
    return e;
}

static void test_ec(void **state) {
    (void)state;
    ec *c = ec_new(2);
    assert_non_null(c);
    evp e1 = mkev("evt_1"), e2 = mkev("evt_2"), e3 = mkev("evt_3");
    ec_ev *a = ec_put(c, "1-0", &e1);
    assert_non_null(a);
    assert_null(e1.id); /* moved */
    assert_non_null(strstr(a->body, "{\"a\":1}"));
    ec_ev *b = ec_put(c, "2-0", &e2);
    ec_release(b);
    ec_ev *a2 = ec_get(c, "1-0"); /* 1-0 becomes most recent */
    assert_ptr_equal(a, a2);
    ec_release(a2);
    ec_ev *d = ec_put(c, "3-0", &e3); /* evicts 2-0, the least recent */
    assert_int_equal(2, ec_len(c));
    assert_null(ec_get(c, "2-0"));
    ec_ev *x = ec_get(c, "3-0");
    assert_ptr_equal(d, x);
    ec_release(x);
    ec_release(d);
    /* an event a job still holds survives the cache going away */
    ec_free(c);
    assert_string_equal("evt_1", a->e.id);
    ec_release(a);
    ec_free(NULL);
    ec_release(NULL);
}

static void test_pl_build(void **state) {
    (void)state;
    pl *p = pl_new();
    assert_non_null(p);
    for (int i = 0; i < 1000; i++) {
        pl_begin(p, i % 3, (void *)(intptr_t)i);
        pl_arg(p, "XADD");
        pl_argn(p, "k\0ey", 4);
        pl_argi(p, -1234567890123LL);
        pl_end(p);
    }
    assert_int_equal(1000, pl_len(p));
    assert_int_equal(2, pl_tag(p, 998));
    assert_int_equal(999, (int)(intptr_t)pl_ud(p, 999));
    pl_reset(p);
    assert_int_equal(0, pl_len(p));
    pl_free(p);
    pl_free(NULL);
}

/* Every job state has its own name in logs (a missing one printed "(null)"). */
static void test_state_names(void **state) {
    (void)state;
    for (int a = 0; a < JOB_NSTATES; a++) {
        const char *na = job_state_name((job_state)a);
        assert_non_null(na);
        assert_string_not_equal(na, "new");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(na, job_state_name((job_state)b));
    }
    assert_string_equal(job_state_name(JOB_DEFERRED), "deferred");
    assert_string_equal(job_state_name(JOB_NSTATES), "new");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hm),
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_pl_build),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
