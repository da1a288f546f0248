/* test_endpoint_index.c -- the worker's endpoint index gives exactly the answers of ep_matches
 * (the one definition of who receives an event), without scanning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "endpoint_index.h"
#include "hq.h"

static ep *mk(const char *id, const char *events, const char *tenant, int enabled) {
    ep *e = ep_new();
    assert_non_null(e);
    e->id = strdup(id);
    char err[HQ_ERRLEN];
    assert_int_equal(HQ_OK, pat_list_parse(events, &e->events, err, sizeof err));
    e->tenant = tenant ? strdup(tenant) : NULL;
    e->enabled = enabled;
    e->secret = strdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    return e;
}

static int has(epindex_ent *const *m, size_t n, const char *id) {
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i]->e->id, id) == 0)
            c++;
    return c;
}

static void test_basic(void **state) {
    (void)state;
    epindex *t = epindex_new();
    assert_non_null(t);
    ep **v = calloc(5, sizeof *v);
    v[0] = mk("ep_a", "task:*", NULL, 1);
    v[1] = mk("ep_b", "task:created,task:*", NULL, 1); /* matches twice, listed once */
    v[2] = mk("ep_c", "*", "t1", 1);
    v[3] = mk("ep_d", "*", NULL, 0); /* disabled */
    v[4] = mk("ep_e", "message.*", NULL, 1);
    char err[HQ_ERRLEN];
    assert_int_equal(HQ_OK, epindex_set(t, v, 5, err, sizeof err));
    assert_int_equal(5, epindex_len(t));
    epindex_ent *const *m;
    size_t n = epindex_match(t, "task:created", NULL, NULL, &m);
    assert_int_equal(3, n);
    assert_int_equal(1, has(m, n, "ep_a"));
    assert_int_equal(1, has(m, n, "ep_b"));
    assert_int_equal(1, has(m, n, "ep_c"));
    n = epindex_match(t, "task:created", "t2", NULL, &m);
    assert_int_equal(2, n);
    assert_int_equal(0, has(m, n, "ep_c"));
    n = epindex_match(t, "message.received.v2", NULL, NULL, &m);
    assert_int_equal(2, n);
    assert_int_equal(1, has(m, n, "ep_e"));
    n = epindex_match(t, "messages", NULL, NULL, &m);
    assert_int_equal(1, n); /* only "*": "message.*" needs the separator */
    /* targeted: the named endpoint only, if enabled, pattern ignored */
    n = epindex_match(t, "zzz", NULL, "ep_a", &m);
    assert_int_equal(1, n);
    assert_int_equal(1, has(m, n, "ep_a"));
    assert_int_equal(0, epindex_match(t, "task:x", NULL, "ep_d", &m));
    assert_int_equal(0, epindex_match(t, "task:x", NULL, "ep_nope", &m));
    /* disabled endpoints are still known by id */
    assert_non_null(epindex_get(t, "ep_d"));
    assert_int_equal(0, epindex_get(t, "ep_d")->e->enabled);
    assert_null(epindex_get(t, "ep_zz"));
    /* secrets decoded once */
    assert_true(epindex_get(t, "ep_a")->keylen >= 24);
    /* reload replaces everything */
    ep **v2 = calloc(1, sizeof *v2);
    v2[0] = mk("ep_z", "task:done", NULL, 1);
    assert_int_equal(HQ_OK, epindex_set(t, v2, 1, err, sizeof err));
    assert_null(epindex_get(t, "ep_a"));
    assert_int_equal(0, epindex_match(t, "task:created", NULL, NULL, &m));
    assert_int_equal(1, epindex_match(t, "task:done", NULL, NULL, &m));
    epindex_free(t);
    epindex_free(NULL);
}

/* Random endpoints and events: the index and ep_matches agree on every pair. */
static void test_agrees_with_ep_matches(void **state) {
    (void)state;
    static const char *pats[] = {"*",   "a.*",   "a.b.*", "a.b",     "a.b.c", "b:*",
                                 "b:x", "b:x:*", "c",     "a.*,b:*", "c,a.b", "b:x:y"};
    static const char *types[] = {"a.b", "a.b.c", "a.c", "b:x",    "b:x:y",
                                  "b:z", "c",     "d",   "a.b.c.d"};
    static const char *tenants[] = {NULL, "t1", "t2"};
    srand(42);
    size_t n = 300;
    ep **v = calloc(n, sizeof *v);
    ep **copy = calloc(n, sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "ep_%zu", i);
        v[i] = mk(id, pats[rand() % 12], tenants[rand() % 3], rand() % 5 != 0);
        copy[i] = v[i];
    }
    epindex *t = epindex_new();
    char err[HQ_ERRLEN];
    assert_int_equal(HQ_OK, epindex_set(t, v, n, err, sizeof err));
    for (int round = 0; round < 400; round++) {
        const char *type = types[rand() % 9];
        const char *tenant = tenants[rand() % 3];
        char target[32];
        int targeted = rand() % 6 == 0;
        snprintf(target, sizeof target, "ep_%d", rand() % 320);
        epindex_ent *const *m;
        size_t got = epindex_match(t, type, tenant, targeted ? target : NULL, &m);
        size_t want = 0;
        for (size_t i = 0; i < n; i++) {
            int w = ep_matches(copy[i], type, tenant, targeted ? target : NULL);
            want += (size_t)w;
            assert_int_equal(w, has(m, got, copy[i]->id));
        }
        assert_int_equal(want, got);
    }
    epindex_free(t);
    free(copy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_agrees_with_ep_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
