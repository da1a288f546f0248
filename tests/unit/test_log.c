/* test_log.c -- level/format parsing, level checks, and the lines actually written to
 * stderr (captured through a temp file) in both formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hq.h"
#include "log.h"
#include "timestamp.h"

/* Redirect fd 2 into a temp file for the duration of a capture. */
typedef struct capture {
    FILE *f;
    int saved;
} capture;

static void cap_start(capture *c) {
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns everything written (malloc'd). */
static char *cap_end(capture *c) {
    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    assert_int_equal(fseek(c->f, 0, SEEK_END), 0);
    long n = ftell(c->f);
    assert_true(n >= 0);
    rewind(c->f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, (size_t)n, c->f);
    assert_int_equal(got, (size_t)n);
    s[n] = '\0';
    fclose(c->f);
    return s;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int teardown(void **state) {
    log_init(LOG_INFO, LOG_FMT_TEXT, NULL);
    return 0;
}

static void test_level_parse(void **state) {
    log_level l = LOG_ERROR;
    assert_int_equal(log_level_parse("debug", &l), HQ_OK);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("info", &l), HQ_OK);
    assert_int_equal(l, LOG_INFO);
    assert_int_equal(log_level_parse("warn", &l), HQ_OK);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("error", &l), HQ_OK);
    assert_int_equal(l, LOG_ERROR);
    l = LOG_WARN;
    assert_int_equal(log_level_parse("verbose", &l), HQ_ERR);
    assert_int_equal(log_level_parse("", &l), HQ_ERR);
    assert_int_equal(log_level_parse("info ", &l), HQ_ERR);
    assert_int_equal(log_level_parse(NULL, &l), HQ_ERR);
    assert_int_equal(l, LOG_WARN);
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        log_level back;
        assert_int_equal(log_level_parse(log_level_name((log_level)i), &back), HQ_OK);
        assert_int_equal(back, i);
    }
    assert_string_equal(log_level_name(LOG_WARN), "warn");
    assert_string_equal(log_level_name((log_level)17), "unknown");
}

static void test_format_parse(void **state) {
    log_format f = LOG_FMT_JSON;
    assert_int_equal(log_format_parse("text", &f), HQ_OK);
    assert_int_equal(f, LOG_FMT_TEXT);
    assert_int_equal(log_format_parse("json", &f), HQ_OK);
    assert_int_equal(f, LOG_FMT_JSON);
    assert_int_equal(log_format_parse("JSON", &f), HQ_ERR);
    assert_int_equal(log_format_parse("logfmt", &f), HQ_ERR);
    assert_int_equal(log_format_parse(NULL, &f), HQ_ERR);
    assert_int_equal(f, LOG_FMT_JSON);
}

static void test_enabled(void **state) {
    log_init(LOG_DEBUG, LOG_FMT_TEXT, NULL);
    assert_true(log_enabled(LOG_DEBUG));
    assert_true(log_enabled(LOG_ERROR));
    log_init(LOG_WARN, LOG_FMT_TEXT, NULL);
    assert_false(log_enabled(LOG_DEBUG));
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    log_init(LOG_ERROR, LOG_FMT_TEXT, NULL);
    assert_false(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
}

static int evaluated;
static int side_effect(void) {
    evaluated++;
    return 7;
}

/* The macro must not evaluate its arguments below the level, and must print above it. */
static void test_macro_checks_level(void **state) {
    log_init(LOG_WARN, LOG_FMT_TEXT, NULL);
    capture c;
    cap_start(&c);
    evaluated = 0;
    LOG_D("debug %d", side_effect());
    LOG_I("info %d", side_effect());
    int after_skipped = evaluated;
    LOG_W("warn %d", side_effect());
    LOG_E("error %d", side_effect());
    char *out = cap_end(&c);
    assert_int_equal(after_skipped, 0);
    assert_int_equal(evaluated, 2);
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "debug 7"));
    assert_null(strstr(out, "info 7"));
    assert_non_null(strstr(out, "WARN  warn 7\n"));
    assert_non_null(strstr(out, "ERROR error 7\n"));
    free(out);
}

static void test_text_line(void **state) {
    log_init(LOG_DEBUG, LOG_FMT_TEXT, "host-12");
    capture c;
    cap_start(&c);
    int64_t before = ts_now_ms();
    log_write(LOG_INFO, "job %s attempt %d", "abc", 3);
    int64_t after = ts_now_ms();
    char *out = cap_end(&c);
    /* 2026-11-23T10:00:00.123Z INFO  worker=host-12 message */
    assert_true(strlen(out) > 25);
    assert_int_equal(out[24], ' ');
    char ts[32];
    memcpy(ts, out, 24);
    ts[24] = '\0';
    int64_t t;
    assert_int_equal(ts_parse_iso(ts, &t), HQ_OK);
    assert_true(t >= before && t <= after);
    assert_string_equal(out + 25, "INFO  worker=host-12 job abc attempt 3\n");
    free(out);

    log_init(LOG_DEBUG, LOG_FMT_TEXT, NULL);
    cap_start(&c);
    log_write(LOG_ERROR, "boom");
    log_write(LOG_DEBUG, "dbg");
    out = cap_end(&c);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "Z ERROR boom\n"));
    assert_non_null(strstr(out, "Z DEBUG dbg\n"));
    assert_null(strstr(out, "worker="));
    free(out);
}

/* Newlines and control bytes in a message must not start a forged line. */
static void test_text_escapes(void **state) {
    log_init(LOG_DEBUG, LOG_FMT_TEXT, "w\n1");
    capture c;
    cap_start(&c);
    log_write(LOG_WARN, "a\nINFO fake\r\t\x01 ok \xc3\xa9 \xff");
    char *out = cap_end(&c);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "worker=w\\n1 a\\nINFO fake\\r\\t\\x01 ok \xc3\xa9 \\xff\n"));
    free(out);
}

static json_t *parse_line(const char *line) {
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    if (!j)
        fail_msg("not JSON: %s (%s)", line, jerr.text);
    assert_true(json_is_object(j));
    return j;
}

static void test_json_line(void **state) {
    log_init(LOG_INFO, LOG_FMT_JSON, "host-12");
    capture c;
    cap_start(&c);
    log_write(LOG_WARN, "delivery %s failed: %d", "dlv_1", 503);
    char *out = cap_end(&c);
    assert_int_equal(count_lines(out), 1);
    json_t *j = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "worker")), "host-12");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "delivery dlv_1 failed: 503");
    int64_t t;
    assert_int_equal(ts_parse_iso(json_string_value(json_object_get(j, "ts")), &t), HQ_OK);
    assert_int_equal(json_object_size(j), 4);
    /* Field order as documented in log.h. */
    assert_true(strncmp(out, "{\"ts\":\"", 7) == 0);
    assert_true(strstr(out, "\"level\"") < strstr(out, "\"worker\""));
    assert_true(strstr(out, "\"worker\"") < strstr(out, "\"msg\""));
    json_decref(j);
    free(out);

    log_init(LOG_INFO, LOG_FMT_JSON, NULL);
    cap_start(&c);
    log_write(LOG_ERROR, "x");
    out = cap_end(&c);
    j = parse_line(out);
    assert_null(json_object_get(j, "worker"));
    assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
    json_decref(j);
    free(out);
}

/* Quotes, backslashes, control bytes and UTF-8 survive exactly; invalid UTF-8 is
 * replaced so the line still parses. */
static void test_json_escapes(void **state) {
    const char *nasty = "q\"uote\\ back\nnl\ttab\x01\x1f del\x7f caf\xc3\xa9 \xf0\x9f\x98\x80 "
                        "}\",\"level\":\"debug";
    log_init(LOG_DEBUG, LOG_FMT_JSON, "name\"with\\quote");
    capture c;
    cap_start(&c);
    log_write(LOG_INFO, "%s", nasty);
    log_write(LOG_INFO, "bad utf8 \xff\xfe \xc3 \xed\xa0\x80 \xc0\xaf end");
    char *out = cap_end(&c);
    assert_int_equal(count_lines(out), 2);
    char *nl = strchr(out, '\n');
    *nl = '\0';
    json_t *j = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), nasty);
    assert_string_equal(json_string_value(json_object_get(j, "worker")), "name\"with\\quote");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    j = parse_line(nl + 1);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    assert_non_null(msg);
    assert_true(strncmp(msg, "bad utf8 \xef\xbf\xbd", 12) == 0); /* U+FFFD */
    assert_non_null(strstr(msg, " end"));
    json_decref(j);
    free(out);
}

/* Messages longer than the stack buffer are written whole; huge ones are cut and marked. */
static void test_long_messages(void **state) {
    log_init(LOG_DEBUG, LOG_FMT_JSON, NULL);
    size_t n = 5000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    capture c;
    cap_start(&c);
    log_write(LOG_INFO, "%s", big);
    char *out = cap_end(&c);
    json_t *j = parse_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), big);
    json_decref(j);
    free(out);
    free(big);

    n = 200000;
    big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'b', n);
    big[n] = '\0';
    cap_start(&c);
    log_write(LOG_INFO, "%s", big);
    out = cap_end(&c);
    assert_int_equal(count_lines(out), 1);
    j = parse_line(out);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    size_t len = strlen(msg);
    assert_true(len < n);
    assert_true(len > 60000);
    assert_string_equal(msg + len - 3, "...");
    json_decref(j);
    free(out);
    free(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_level_parse, teardown),
        cmocka_unit_test_teardown(test_format_parse, teardown),
        cmocka_unit_test_teardown(test_enabled, teardown),
        cmocka_unit_test_teardown(test_macro_checks_level, teardown),
        cmocka_unit_test_teardown(test_text_line, teardown),
        cmocka_unit_test_teardown(test_text_escapes, teardown),
        cmocka_unit_test_teardown(test_json_line, teardown),
        cmocka_unit_test_teardown(test_json_escapes, teardown),
        cmocka_unit_test_teardown(test_long_messages, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
