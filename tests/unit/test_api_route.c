/* test_api_route.c -- the route table and route_find: params, 404 vs 405, odd paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api_route.h"

static void test_literal_and_param(void **state) {
    route_match m;
    (void)state;
    route_find("GET", "/v1/endpoints", &m);
    assert_int_equal(m.status, 0);
    assert_non_null(m.route);
    assert_string_equal(m.route->name, "listEndpoints");
    assert_int_equal(m.nparams, 0);

    route_find("POST", "/v1/endpoints/ep_01ABC/rotate-secret", &m);
    assert_int_equal(m.status, 0);
    assert_string_equal(m.route->name, "rotateEndpointSecret");
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "ep_01ABC");

    route_find("GET", "/v1/sources/src_1/payloads/pl_2", &m);
    assert_int_equal(m.status, 0);
    assert_string_equal(m.route->name, "getSourcePayload");
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.params[0], "src_1");
    assert_string_equal(m.params[1], "pl_2");

    route_find("POST", "/v1/in/src_abc", &m);
    assert_int_equal(m.status, 0);
    assert_int_equal(m.route->auth, ROUTE_OPEN);
    route_find("GET", "/v1/stream", &m);
    assert_int_equal(m.route->auth, ROUTE_KEY_TOKEN);
}

static void test_405_lists_methods(void **state) {
    route_match m;
    (void)state;
    route_find("PUT", "/v1/endpoints/ep_1", &m);
    assert_int_equal(m.status, 405);
    assert_null(m.route);
    assert_string_equal(m.allow, "GET, PATCH, DELETE");
    route_find("GET", "/v1/dead/replay", &m);
    assert_int_equal(m.status, 405);
    assert_string_equal(m.allow, "POST");
}

static void test_404s(void **state) {
    static const char *const bad[] = {"",
                                      "v1/endpoints",
                                      "/",
                                      "/v1",
                                      "/v1/endpoints/",
                                      "/v1//endpoints",
                                      "/v1/endpoints/x/y/z",
                                      "/v2/endpoints",
                                      "/v1/endpointsx",
                                      "/v1/endpoints/ep_1/enable/",
                                      "/v1/in",
                                      "/v1/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s",
                                      NULL};
    route_match m;
    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        route_find("GET", bad[i], &m);
        if (m.status != 404)
            fail_msg("path '%s' gave %d", bad[i], m.status);
        assert_null(m.route);
    }
    route_find("GET", NULL, &m);
    assert_int_equal(m.status, 404);
}

static void test_long_param_and_path(void **state) {
    char path[ROUTE_PATH_MAX + 64];
    route_match m;
    (void)state;
    memset(path, 0, sizeof(path));
    strcpy(path, "/v1/endpoints/");
    memset(path + strlen(path), 'a', ROUTE_PARAM_MAX);
    route_find("GET", path, &m);
    assert_int_equal(m.status, 0); /* exactly the limit */
    path[strlen(path)] = 'a';
    route_find("GET", path, &m);
    assert_int_equal(m.status, 404); /* one more */
    memset(path, 'b', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    route_find("GET", path, &m);
    assert_int_equal(m.status, 404);
}

static void test_table_is_sane(void **state) {
    (void)state;
    assert_true(route_count() > 20);
    assert_null(route_at(route_count()));
    for (size_t i = 0; i < route_count(); i++) {
        const api_route *r = route_at(i);
        assert_non_null(r->fn);
        assert_true(strncmp(r->pattern, "/v1/", 4) == 0);
        for (size_t j = 0; j < i; j++) {
            const api_route *o = route_at(j);
            assert_false(strcmp(o->name, r->name) == 0);
            assert_false(strcmp(o->method, r->method) == 0 && strcmp(o->pattern, r->pattern) == 0);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_param),
        cmocka_unit_test(test_405_lists_methods),
        cmocka_unit_test(test_404s),
        cmocka_unit_test(test_long_param_and_path),
        cmocka_unit_test(test_table_is_sane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
