/* test_validate.c -- URL and custom header validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "validate.h"

static void ok_url(const char *url) {
    char err[HQ_ERRLEN] = "";
    if (validate_url(url, err, sizeof(err)) != HQ_OK)
        fail_msg("rejected %s: %s", url, err);
}

static void bad_url(const char *url, const char *needle) {
    char err[HQ_ERRLEN] = "";
    if (validate_url(url, err, sizeof(err)) != HQ_ERR)
        fail_msg("accepted %s", url ? url : "(null)");
    if (!strstr(err, needle))
        fail_msg("for %s: error '%s' lacks '%s'", url ? url : "(null)", err, needle);
}

static void test_url_ok(void **state) {
    ok_url("http://example.com");
    ok_url("https://example.com/");
    ok_url("HTTPS://Example.COM/hooks?x=1&y=2");
    ok_url("HtTp://a");
    ok_url("https://example.com:443/path/to%20x");
    ok_url("http://127.0.0.1:8080/hook");
    ok_url("http://[::1]:9000/hook");
    ok_url("http://[2606:4700::1]/");
    ok_url("http://[::ffff:127.0.0.1]");
    ok_url("https://my_host.example.com./x");
    ok_url("http://example.com?q=a/b");
    ok_url("http://example.com:1");
    ok_url("http://example.com:65535");
}

static void test_url_scheme_and_host(void **state) {
    bad_url(NULL, "empty");
    bad_url("", "empty");
    bad_url("ftp://example.com/", "scheme");
    bad_url("file:///etc/passwd", "scheme");
    bad_url("gopher://example.com", "scheme");
    bad_url("example.com/hook", "scheme");
    bad_url("http:/example.com", "scheme");
    bad_url("httpx://example.com", "scheme");
    bad_url("http://", "no host");
    bad_url("http:///path", "no host");
    bad_url("http://:8080/", "no host");
    bad_url("http://?q", "no host");
    bad_url("http://[]/", "no host");
    bad_url("http://[::1/", "unterminated");
    bad_url("http://[zz::1]/", "IPv6");
    bad_url("http://[::1]x/", "junk");
    bad_url("http://exa mple.com/", "space");
    bad_url("http://exa%mple.com/", "invalid character");
    bad_url("http://a..b/", "empty label");
    bad_url("http://.a/", "empty label");
    bad_url("http://user:pw@example.com/", "credentials");
    bad_url("http://example.com@evil.test/", "credentials");
}

static void test_url_port(void **state) {
    bad_url("http://example.com:/", "empty port");
    bad_url("http://example.com:0/", "range");
    bad_url("http://example.com:65536/", "range");
    bad_url("http://example.com:99999999999999999999/", "range");
    bad_url("http://example.com:-1/", "not a number");
    bad_url("http://example.com:80a/", "not a number");
    bad_url("http://example.com:8:8/", "not a number");
    bad_url("http://[::1]:/", "empty port");
    bad_url("http://[::1]:70000/", "range");
}

static void test_url_chars_and_length(void **state) {
    bad_url("http://example.com/#frag", "fragment");
    bad_url("http://example.com#", "fragment");
    bad_url("http://example.com/a\r\nHost: evil", "CR or LF");
    bad_url("http://example.com/a\n", "CR or LF");
    bad_url("http://example.com/a\r", "CR or LF");
    bad_url("http://example.com/a\tb", "control");
    bad_url("http://example.com/a\x7f", "control");
    bad_url("http://example.com/a b", "space");
    bad_url("http://example.com/caf\xc3\xa9", "non-ASCII");
    bad_url("http://example.com\\@evil.test/", "backslash");

    /* exactly VALIDATE_URL_MAX is fine, one more is not */
    char *u = malloc(VALIDATE_URL_MAX + 2);
    assert_non_null(u);
    strcpy(u, "http://example.com/");
    size_t l = strlen(u);
    memset(u + l, 'a', VALIDATE_URL_MAX - l);
    u[VALIDATE_URL_MAX] = '\0';
    ok_url(u);
    u[VALIDATE_URL_MAX] = 'a';
    u[VALIDATE_URL_MAX + 1] = '\0';
    bad_url(u, "longer than 2048");
    free(u);
}

static void ok_header(const char *n, const char *v) {
    char err[HQ_ERRLEN] = "";
    if (validate_header(n, v, err, sizeof(err)) != HQ_OK)
        fail_msg("rejected %s: %s", n, err);
}

static void bad_header(const char *n, const char *v, const char *needle) {
    char err[HQ_ERRLEN] = "";
    if (validate_header(n, v, err, sizeof(err)) != HQ_ERR)
        fail_msg("accepted %s", n ? n : "(null)");
    if (!strstr(err, needle))
        fail_msg("for %s: error '%s' lacks '%s'", n ? n : "(null)", err, needle);
    /* values may be credentials: never echoed */
    if (v && strlen(v) >= 4)
        assert_null(strstr(err, v));
}

static void test_header_ok(void **state) {
    ok_header("Authorization", "Bearer abc.def");
    ok_header("X-Api-Key", "");
    ok_header("X-Custom", "tab\tinside and spaces");
    ok_header("x!#$%&'*+-.^_`|~1", "v");
    ok_header("X-Webhook-Id", "not a webhook-* prefix");
    ok_header("X-Hub", "ok");
    ok_header("Hostname", "not Host");
    ok_header("Accept", "application/json");
    ok_header("X-Utf8", "caf\xc3\xa9");
    char name[VALIDATE_HEADER_NAME_MAX + 1];
    memset(name, 'a', VALIDATE_HEADER_NAME_MAX);
    name[VALIDATE_HEADER_NAME_MAX] = '\0';
    ok_header(name, "v");
    char *v = malloc(VALIDATE_HEADER_VALUE_MAX + 1);
    assert_non_null(v);
    memset(v, 'v', VALIDATE_HEADER_VALUE_MAX);
    v[VALIDATE_HEADER_VALUE_MAX] = '\0';
    ok_header("X-Long", v);
    free(v);
}

static void test_header_forbidden(void **state) {
    static const char *const names[] = {
        "Host",
        "host",
        "HOST",
        "Content-Length",
        "content-length",
        "Content-Type",
        "CONTENT-TYPE",
        "Transfer-Encoding",
        "transfer-encoding",
        "Connection",
        "Upgrade",
        "TE",
        "te",
        "Trailer",
        "Keep-Alive",
        "keep-alive",
        "Proxy-Authorization",
        "proxy-connection",
        "User-Agent",
        "user-agent",
        "Expect",
        "webhook-id",
        "Webhook-Signature",
        "WEBHOOK-TIMESTAMP",
        "webhook-anything",
        "X-Hookq-Event-Type",
        "x-hookq-delivery",
        "X-Hub-Signature",
        "X-Hub-Signature-256",
        "x-hub-signature-256",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        bad_header(names[i], "v", "not allowed");
}

static void test_header_bad(void **state) {
    bad_header(NULL, "v", "empty");
    bad_header("", "v", "empty");
    bad_header("X Space", "v", "invalid character");
    bad_header("X:Colon", "v", "invalid character");
    bad_header("X-Caf\xc3\xa9", "v", "invalid character");
    bad_header("X-A\r\nX-B", "v", "CR or LF");
    bad_header("X-A\n", "v", "CR or LF");
    bad_header("(x)", "v", "invalid character");
    bad_header("X-Ok", NULL, "no value");
    bad_header("X-Ok", "secret1\r\nX-Injected: 1", "CR or LF");
    bad_header("X-Ok", "secret2\n", "CR or LF");
    bad_header("X-Ok", "secret3\r", "CR or LF");
    bad_header("X-Ok", "secret4\x01", "control");
    bad_header("X-Ok", "secret5\x7f", "control");

    char name[VALIDATE_HEADER_NAME_MAX + 2];
    memset(name, 'a', VALIDATE_HEADER_NAME_MAX + 1);
    name[VALIDATE_HEADER_NAME_MAX + 1] = '\0';
    bad_header(name, "v", "longer than 128");
    char *v = malloc(VALIDATE_HEADER_VALUE_MAX + 2);
    assert_non_null(v);
    memset(v, 'v', VALIDATE_HEADER_VALUE_MAX + 1);
    v[VALIDATE_HEADER_VALUE_MAX + 1] = '\0';
    bad_header("X-Long", v, "longer than 4096");
    free(v);
}

static void test_header_line(void **state) {
    char *n = (char *)1, *v = (char *)1;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(
        validate_header_line("  X-Api-Key :  s3cr3t value \t", &n, &v, err, sizeof(err)), HQ_OK);
    assert_string_equal(n, "X-Api-Key");
    assert_string_equal(v, "s3cr3t value");
    free(n);
    free(v);

    /* only the first colon splits */
    assert_int_equal(validate_header_line("X-Url: http://a:1/", &n, &v, err, sizeof(err)), HQ_OK);
    assert_string_equal(n, "X-Url");
    assert_string_equal(v, "http://a:1/");
    free(n);
    free(v);

    assert_int_equal(validate_header_line("X-Empty:", &n, &v, err, sizeof(err)), HQ_OK);
    assert_string_equal(v, "");
    free(n);
    free(v);

    assert_int_equal(validate_header_line("NoColon value", &n, &v, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "Name: value"));
    assert_null(n);
    assert_null(v);
    assert_int_equal(validate_header_line(": value", &n, &v, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "empty"));
    assert_null(n);
    assert_int_equal(validate_header_line("Host: evil.test", &n, &v, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "not allowed"));
    assert_null(n);
    assert_null(v);
    assert_int_equal(validate_header_line("X-A: b\r\nX-C: d", &n, &v, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "CR or LF"));
    assert_int_equal(validate_header_line(NULL, &n, &v, err, sizeof(err)), HQ_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ok),     cmocka_unit_test(test_url_scheme_and_host),
        cmocka_unit_test(test_url_port),   cmocka_unit_test(test_url_chars_and_length),
        cmocka_unit_test(test_header_ok),  cmocka_unit_test(test_header_forbidden),
        cmocka_unit_test(test_header_bad), cmocka_unit_test(test_header_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
