/* test_cli_publish.c -- libhookq without a Redis server: option handling, error codes,
 * and validation that happens before any connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "hookq.h"
#include "hookq_int.h"

/* A socket path that cannot exist: connecting fails at once, with no network. */
#define NO_REDIS "unix:///nonexistent/hookq-unit.sock"

static void test_strerror(void **state) {
    int e;
    (void)state;
    for (e = HOOKQ_OK; e <= HOOKQ_EIO; e++) {
        assert_non_null(hookq_strerror((hookq_err)e));
        assert_string_not_equal(hookq_strerror((hookq_err)e), "unknown error");
    }
    assert_string_equal(hookq_strerror((hookq_err)99), "unknown error");
    /* NULL handles are safe */
    hookq_free(NULL);
    assert_int_equal(hookq_error(NULL), HOOKQ_ENOMEM);
}

static void test_bad_options(void **state) {
    hookq_options o = {0};
    hookq *h;
    char id[HOOKQ_ID_MAX];
    (void)state;
    h = hookq_connect(&o);
    assert_non_null(h);
    assert_int_equal(hookq_error(h), HOOKQ_EINVAL);
    assert_non_null(strstr(hookq_errstr(h), "url"));
    assert_int_equal(hookq_publish(h, "a.b", "{}", NULL, id, sizeof id), HOOKQ_EINVAL);
    hookq_free(h);

    o.url = "ftp://127.0.0.1/";
    h = hookq_connect(&o);
    assert_int_equal(hookq_error(h), HOOKQ_EINVAL);
    hookq_free(h);

    o.url = NO_REDIS;
    o.prefix = "bad{prefix}";
    h = hookq_connect(&o);
    assert_int_equal(hookq_error(h), HOOKQ_EINVAL);
    assert_int_equal(hookq_publish(h, "a.b", "{}", NULL, id, sizeof id), HOOKQ_EINVAL);
    hookq_free(h);
}

static void test_validation_first(void **state) {
    hookq_options o = {.url = NO_REDIS, .max_payload = 16};
    hookq_publish_opts po = {0};
    hookq *h;
    char id[HOOKQ_ID_MAX] = "untouched";
    (void)state;
    h = hookq_connect(&o);
    assert_non_null(h);
    assert_int_equal(hookq_error(h), HOOKQ_ECONNECT);
    assert_non_null(strstr(hookq_errstr(h), "/nonexistent/hookq-unit.sock"));

    assert_int_equal(hookq_publish(h, "bad type", "{}", NULL, id, sizeof id), HOOKQ_EINVAL);
    assert_non_null(strstr(hookq_errstr(h), "type"));
    assert_int_equal(hookq_publish(h, NULL, "{}", NULL, id, sizeof id), HOOKQ_EINVAL);
    assert_int_equal(hookq_publish(h, "a.b", "{", NULL, id, sizeof id), HOOKQ_EINVAL);
    assert_non_null(strstr(hookq_errstr(h), "data"));
    assert_int_equal(hookq_publish(h, "a.b", NULL, NULL, id, sizeof id), HOOKQ_EINVAL);
    assert_int_equal(hookq_publish(h, "a.b", "[1,2,3,4,5,6,7,8,9,10]", NULL, id, sizeof id),
                     HOOKQ_ETOOBIG);
    po.id = "has.dot";
    assert_int_equal(hookq_publish(h, "a.b", "{}", &po, id, sizeof id), HOOKQ_EINVAL);
    assert_non_null(strstr(hookq_errstr(h), "id"));
    po.id = NULL;
    po.tenant = "bad tenant";
    assert_int_equal(hookq_publish(h, "a.b", "{}", &po, id, sizeof id), HOOKQ_EINVAL);
    assert_non_null(strstr(hookq_errstr(h), "tenant"));
    po.tenant = NULL;
    po.endpoint = "ep/1";
    assert_int_equal(hookq_publish(h, "a.b", "{}", &po, id, sizeof id), HOOKQ_EINVAL);
    po.endpoint = NULL;
    /* id buffer too small for the id: refused before anything is written */
    assert_int_equal(hookq_publish(h, "a.b", "{}", NULL, id, 8), HOOKQ_EINVAL);
    assert_string_equal(id, "untouched");
    /* valid input: now the connection is retried, and fails */
    assert_int_equal(hookq_publish(h, "a.b", "{}", NULL, id, sizeof id), HOOKQ_ECONNECT);
    assert_string_equal(id, "untouched");
    hookq_free(h);
}

static void test_internal_validate(void **state) {
    envelope_limits lim = {.max_payload = 64, .max_depth = 2};
    hookq_publish_opts po = {.tenant = "acme", .endpoint = "ep_1", .id = "order-42"};
    hookq__pub p = {.type = "order.paid", .data = "{\"a\":1}", .datalen = 7, .opts = &po};
    char err[256];
    (void)state;
    assert_int_equal(hookq__validate(&lim, &p, err, sizeof err), HOOKQ_OK);
    p.data = "[[[1]]]";
    assert_int_equal(hookq__validate(&lim, &p, err, sizeof err), HOOKQ_EINVAL);
    /* data is length-delimited: bytes after datalen are not part of it */
    p.data = "{}garbage";
    p.datalen = 2;
    assert_int_equal(hookq__validate(&lim, &p, err, sizeof err), HOOKQ_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_validation_first),
        cmocka_unit_test(test_internal_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
