/* test_worker_parts.c -- the worker's hash map, event cache and pipeline builder (no network). */
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
#include "job.h"

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

static envelope mkev(const char *id) {
    envelope e = {0};
    e.id = strdup(id);
    e.type = strdup("t.x");
    e.data = strdup("{\"a\":1}");
    e.datalen = 7;
    e.ts = 1700000000000;
    return e;
}

/* What one small event costs the cache (the same for every evt_N below). */
static size_t one_event_cost(void) {
    evcache *c = evcache_new(1 << 20);
    envelope e = mkev("evt_0");
    evcache_release(evcache_put(c, "0-0", &e));
    size_t n = evcache_bytes(c);
    evcache_free(c);
    return n;
}

static void test_ec(void **state) {
    (void)state;
    size_t one = one_event_cost();
    assert_true(one > 0);
    evcache *c = evcache_new(2 * one + one / 2); /* room for two, not three */
    assert_non_null(c);
    envelope e1 = mkev("evt_1"), e2 = mkev("evt_2"), e3 = mkev("evt_3");
    evcache_ev *a = evcache_put(c, "1-0", &e1);
    assert_non_null(a);
    assert_null(e1.id); /* moved */
    assert_non_null(strstr(a->body, "{\"a\":1}"));
    evcache_ev *b = evcache_put(c, "2-0", &e2);
    evcache_release(b);
    evcache_ev *a2 = evcache_get(c, "1-0"); /* 1-0 becomes most recent */
    assert_ptr_equal(a, a2);
    evcache_release(a2);
    evcache_ev *d = evcache_put(c, "3-0", &e3); /* evicts 2-0, the least recent */
    assert_int_equal(2, evcache_len(c));
    assert_null(evcache_get(c, "2-0"));
    evcache_ev *x = evcache_get(c, "3-0");
    assert_ptr_equal(d, x);
    evcache_release(x);
    evcache_release(d);
    /* an event a job still holds survives the cache going away */
    evcache_free(c);
    assert_string_equal("evt_1", a->e.id);
    evcache_release(a);
    evcache_free(NULL);
    evcache_release(NULL);
}

/* The cache is bounded by bytes, not by a count: 200 events of 10 KiB each in a 64 KiB
 * budget keep at most 64 KiB (plus the newest one), and the payload is held once. */
static void test_ec_bytes(void **state) {
    (void)state;
    evcache *c = evcache_new(64 * 1024);
    assert_non_null(c);
    static char data[10 * 1024 + 3];
    memset(data, 'x', sizeof data);
    data[0] = '"';
    data[sizeof data - 2] = '"';
    data[sizeof data - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        char sid[32], id[32];
        snprintf(sid, sizeof sid, "%d-0", i + 1);
        snprintf(id, sizeof id, "evt_%d", i);
        envelope e = {0};
        e.id = strdup(id);
        e.type = strdup("t.x");
        e.data = strdup(data);
        e.datalen = strlen(data);
        e.ts = 1700000000000;
        evcache_ev *v = evcache_put(c, sid, &e);
        assert_non_null(v);
        assert_null(v->e.data); /* the body holds the payload; no second copy */
        assert_true(v->bodylen > e.datalen);
        evcache_release(v);
        assert_true(evcache_bytes(c) <= 64 * 1024 + 11 * 1024);
    }
    assert_true(evcache_len(c) >= 5 && evcache_len(c) <= 7);
    evcache_free(c);
}

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
static void test_state_names(void **state) {
    (void)state;
    for (int a = 0; a < JOB_NSTATES; a++) {
        const char *na = job_state_name((job_state)a);
        assert_non_null(na);
        assert_string_not_equal(na, "?");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(na, job_state_name((job_state)b));
    }
    assert_string_equal(job_state_name(JOB_DEFERRED), "deferred");
    assert_string_equal(job_state_name(JOB_NSTATES), "?");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hm),          cmocka_unit_test(test_ec),
        cmocka_unit_test(test_ec_bytes),    cmocka_unit_test(test_pl_build),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
