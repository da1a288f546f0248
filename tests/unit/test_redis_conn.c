/* test_redis_conn.c -- Redis URL parsing, masking and script table (no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hq.h"
#include "redis_conn.h"
#include "scripts_gen.h"

static void parse_ok(const char *url, rconn_url *u) {
    char err[HQ_ERRLEN] = "";
    int rc = rconn_url_parse(url, u, err, sizeof(err));
    if (rc != HQ_OK)
        fail_msg("%s: %s", url, err);
}

static void parse_bad(const char *url, const char *want) {
    rconn_url u;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(rconn_url_parse(url, &u, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, want))
        fail_msg("%s: error '%s' lacks '%s'", url, err, want);
    /* A failed parse leaves nothing to free. */
    assert_null(u.host);
    assert_null(u.password);
}

static void test_defaults(void **state) {
    (void)state;
    rconn_url u;
    parse_ok("redis://localhost", &u);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_null(u.user);
    assert_null(u.password);
    assert_null(u.path);
    rconn_url_clear(&u);
}

static void test_full(void **state) {
    (void)state;
    rconn_url u;
    parse_ok("redis://alice:s3cret@10.0.0.5:6380/3", &u);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "s3cret");
    rconn_url_clear(&u);

    parse_ok("redis://:onlypass@h:1/", &u);
    assert_null(u.user);
    assert_string_equal(u.password, "onlypass");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 0);
    rconn_url_clear(&u);
}

static void test_percent(void **state) {
    (void)state;
    rconn_url u;
    parse_ok("redis://us%40er:p%3Aa%2Fss%25@h", &u);
    assert_string_equal(u.user, "us@er");
    assert_string_equal(u.password, "p:a/ss%");
    rconn_url_clear(&u);
    /* An unescaped '@' in the password: the last '@' ends the user info. */
    parse_ok("redis://:a@b@host:7000", &u);
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "host");
    assert_int_equal(u.port, 7000);
    rconn_url_clear(&u);
    parse_bad("redis://:ab%2@h", "percent-escape");
    parse_bad("redis://:ab%zz@h", "percent-escape");
    parse_bad("redis://:ab%00cd@h", "percent-escape");
}

static void test_ipv6(void **state) {
    (void)state;
    rconn_url u;
    char where[128];
    parse_ok("redis://[::1]:6390/2", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
    rconn_url_where(&u, where, sizeof(where));
    assert_string_equal(where, "[::1]:6390");
    rconn_url_clear(&u);
    parse_ok("redis://[fe80::1]", &u);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 6379);
    rconn_url_clear(&u);
    parse_bad("redis://[::1:6390", "']'");
    parse_bad("redis://[::1]x", "after ']'");
}

static void test_unix(void **state) {
    (void)state;
    rconn_url u;
    char where[128];
    parse_ok("unix:///run/redis/redis.sock?db=4", &u);
    assert_null(u.host);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 4);
    rconn_url_where(&u, where, sizeof(where));
    assert_string_equal(where, "/run/redis/redis.sock");
    rconn_url_clear(&u);
    parse_ok("unix://:pw@/tmp/r.sock", &u);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 0);
    rconn_url_clear(&u);
    parse_bad("unix://", "absolute");
    parse_bad("unix://relative.sock", "absolute");
    parse_bad("unix:///tmp/r.sock?db=x", "bad database");
    parse_bad("unix:///tmp/r.sock?timeout=1", "unknown query");
}

static void test_errors(void **state) {
    (void)state;
    parse_bad("", "empty");
    parse_bad("http://h", "must start with");
    parse_bad("rediss://h", "TLS");
    parse_bad("redis://", "missing host");
    parse_bad("redis://:pw@:6379", "missing host");
    parse_bad("redis://h:0", "bad port");
    parse_bad("redis://h:65536", "bad port");
    parse_bad("redis://h:", "bad port");
    parse_bad("redis://h:12a", "bad port");
    parse_bad("redis://h/abc", "bad database");
    parse_bad("redis://h/-1", "bad database");
    parse_bad("redis://user@h", "no password");
    parse_bad("redis://user:@h", "empty password");
    parse_bad("redis://h h", "bad character");
}

static void test_where(void **state) {
    (void)state;
    rconn_url u;
    char where[128];
    parse_ok("redis://:secret@127.0.0.1:6399", &u);
    rconn_url_where(&u, where, sizeof(where));
    assert_string_equal(where, "127.0.0.1:6399");
    assert_null(strstr(where, "secret"));
    rconn_url_clear(&u);
}

static void test_masked(void **state) {
    (void)state;
    char *m = rconn_url_masked("redis://alice:s3cret@h:1/0");
    assert_string_equal(m, "redis://alice:****@h:1/0");
    free(m);
    m = rconn_url_masked("redis://:s3cret@h");
    assert_string_equal(m, "redis://:****@h");
    free(m);
    m = rconn_url_masked("redis://:a@b@h");
    assert_string_equal(m, "redis://:****@h");
    free(m);
    m = rconn_url_masked("redis://h:6379/0");
    assert_string_equal(m, "redis://h:6379/0");
    free(m);
    m = rconn_url_masked("http://tokenonly@proxy:3128");
    assert_string_equal(m, "http://****@proxy:3128");
    free(m);
    m = rconn_url_masked("");
    assert_string_equal(m, "");
    free(m);
}

static int is_hex40(const char *s) {
    if (strlen(s) != 40)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

static void test_scripts_table(void **state) {
    (void)state;
    size_t n = 0;
    for (; scripts_all[n]; n++) {
        assert_true(is_hex40(scripts_all[n]->sha));
        assert_true(strlen(scripts_all[n]->src) > 0);
    }
    assert_int_equal(n, scripts_count);
    assert_true(n >= 3);
    assert_string_equal(script_promote.name, "promote");
}

static void test_noscript(void **state) {
    (void)state;
    redisReply r = {.type = REDIS_REPLY_ERROR};
    r.str = "NOSCRIPT No matching script. Please use EVAL.";
    assert_true(rconn_is_noscript(&r));
    r.str = "ERR something else";
    assert_false(rconn_is_noscript(&r));
    r.type = REDIS_REPLY_STATUS;
    r.str = "NOSCRIPT";
    assert_false(rconn_is_noscript(&r));
    assert_false(rconn_is_noscript(NULL));
}

static void test_connect_bad_url(void **state) {
    (void)state;
    char err[HQ_ERRLEN] = "";
    /* Fails while parsing, before any socket is opened. */
    assert_null(rconn_connect("redis://h:99999", 100, 100, err, sizeof(err)));
    assert_non_null(strstr(err, "bad port"));
    rconn_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_masked),
        cmocka_unit_test(test_scripts_table),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_connect_bad_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
