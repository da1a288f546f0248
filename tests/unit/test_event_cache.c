/* test_event_cache.c -- the event cache: LRU order, references, the byte budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "event_cache.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_ec_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
