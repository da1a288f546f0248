/* test_units.c -- duration grammar, shortest formatting, byte sizes, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "units.h"
#include "hq.h"

static int64_t parse_ok(const char *s) {
    char err[HQ_ERRLEN] = "";
    int64_t ms = -1;
    if (units_parse_duration(s, &ms, err, sizeof err) != HQ_OK)
        fail_msg("'%s' rejected: %s", s, err);
    return ms;
}

/* Parse must fail, leave *ms alone and say `want` somewhere in the message. */
static void parse_bad(const char *s, const char *want) {
    char err[HQ_ERRLEN] = "";
    int64_t ms = 12345;
    if (units_parse_duration(s, &ms, err, sizeof err) != HQ_ERR)
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, 12345);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, want);
}

static void test_parse_units(void **state) {
    assert_int_equal(parse_ok("500ms"), 500);
    assert_int_equal(parse_ok("30s"), 30000);
    assert_int_equal(parse_ok("2m"), 120000);
    assert_int_equal(parse_ok("1h"), 3600000);
    assert_int_equal(parse_ok("7d"), 7LL * 86400000);
    assert_int_equal(parse_ok("0s"), 0);
    assert_int_equal(parse_ok("0ms"), 0);
    assert_int_equal(parse_ok("1h30m"), 5400000);
    assert_int_equal(parse_ok("1d2h3m4s5ms"), 86400000LL + 2 * 3600000 + 3 * 60000 + 4000 + 5);
    assert_int_equal(parse_ok("1s500ms"), 1500);
    assert_int_equal(parse_ok("90m"), 5400000);
    assert_int_equal(parse_ok("007s"), 7000);
}

static void test_parse_bare_seconds(void **state) {
    assert_int_equal(parse_ok("30"), 30000);
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("86400"), 86400000);
}

static void test_parse_errors(void **state) {
    parse_bad("3x", "bad duration '3x': unknown unit 'x'");
    parse_bad("5sec", "unknown unit 'sec'");
    parse_bad("5H", "unknown unit 'H'");
    parse_bad("1h30", "missing unit after 30");
    parse_bad("", "empty");
    parse_bad("ms", "missing number");
    parse_bad("-5s", "no sign");
    parse_bad("+5s", "no sign");
    parse_bad("1.5s", "no fractions");
    parse_bad("5 s", "unexpected ' ' (space)");
    parse_bad(" 5s", "unexpected");
    parse_bad("5s ", "unexpected");
    parse_bad("1h-5m", "unexpected '-'");
    parse_bad("5s\n", "byte 0x0a");
    char err[HQ_ERRLEN];
    int64_t ms;
    assert_int_equal(units_parse_duration(NULL, &ms, err, sizeof err), HQ_ERR);
    assert_int_equal(units_parse_duration("3x", &ms, NULL, 0), HQ_ERR); /* no err buffer is fine */
}

static void test_parse_overflow(void **state) {
    /* The limit is INT64_MAX nanoseconds expressed in ms: 9223372036854 ms. */
    assert_int_equal(parse_ok("9223372036854ms"), 9223372036854LL);
    parse_bad("9223372036855ms", "too large");
    assert_int_equal(parse_ok("9223372036s"), 9223372036000LL);
    parse_bad("9223372037s", "too large");
    parse_bad("9223372037", "too large");
    parse_bad("106752d", "too large");
    assert_int_equal(parse_ok("106751d"), 106751LL * 86400000);
    /* Sums overflow too, not only single groups. */
    parse_bad("106751d106751d", "too large");
    parse_bad("99999999999999999999999999s", "too large");
}

static void test_error_fits_buffer(void **state) {
    char big[512];
    memset(big, '9', sizeof big - 2);
    big[sizeof big - 2] = 'x';
    big[sizeof big - 1] = '\0';
    char err[HQ_ERRLEN];
    int64_t ms;
    assert_int_equal(units_parse_duration(big, &ms, err, sizeof err), HQ_ERR);
    assert_true(strlen(err) < sizeof err);
    assert_non_null(strstr(err, "too large")); /* the reason survives a long echo */

    char tiny[8];
    memset(tiny, 'z', sizeof tiny);
    assert_int_equal(units_parse_duration("3x", &ms, tiny, sizeof tiny), HQ_ERR);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_memory_equal(tiny, "bad dur", 7);

    char u[300] = "1";
    memset(u + 1, 'q', sizeof u - 2);
    u[sizeof u - 1] = '\0';
    assert_int_equal(units_parse_duration(u, &ms, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "unknown unit"));
    assert_true(strlen(err) < 160);
}

static void fmt_is(int64_t ms, const char *want) {
    char buf[64];
    units_format_duration(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_format(void **state) {
    fmt_is(0, "0s");
    fmt_is(90000, "1m30s");
    fmt_is(1500, "1s500ms");
    fmt_is(1, "1ms");
    fmt_is(1000, "1s");
    fmt_is(60000, "1m");
    fmt_is(3600000, "1h");
    fmt_is(86400000, "1d");
    fmt_is(7LL * 86400000, "7d");
    fmt_is(86400000LL + 1, "1d1ms");
    fmt_is(5400000, "1h30m");
    fmt_is(-1500, "-1s500ms");
    fmt_is(9223372036854LL, "106751d23h47m16s854ms");
    char buf[64];
    units_format_duration(INT64_MIN, buf, sizeof buf); /* must not overflow */
    assert_int_equal(buf[0], '-');
}

static void test_format_small_buffer(void **state) {
    char buf[4];
    units_format_duration(5400000, buf, sizeof buf); /* "1h30m" */
    assert_true(strlen(buf) < sizeof buf);
    char one[1] = {'x'};
    units_format_duration(5400000, one, sizeof one);
    assert_int_equal(one[0], '\0');
    units_format_duration(1, NULL, 0);
}

/* Every formatted value parses back to itself. */
static void test_format_round_trip(void **state) {
    int64_t v = 1;
    for (int i = 0; i < 2000; i++) {
        char buf[64];
        units_format_duration(v, buf, sizeof buf);
        assert_int_equal(parse_ok(buf), v);
        v = v * 7 / 3 + 13;
        if (v > 9223372036854LL)
            v = v % 9223372036854LL;
    }
}

static uint64_t size_ok(const char *s) {
    char err[HQ_ERRLEN] = "";
    uint64_t b = 0;
    if (units_parse_size(s, &b, err, sizeof err) != HQ_OK)
        fail_msg("'%s' rejected: %s", s, err);
    return b;
}

static void size_bad(const char *s, const char *want) {
    char err[HQ_ERRLEN] = "";
    uint64_t b = 777;
    if (units_parse_size(s, &b, err, sizeof err) != HQ_ERR)
        fail_msg("'%s' accepted as %llu", s, (unsigned long long)b);
    assert_int_equal(b, 777);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", s, err, want);
}

static void test_size(void **state) {
    assert_int_equal(size_ok("1048576"), 1048576);
    assert_int_equal(size_ok("0"), 0);
    assert_int_equal(size_ok("512KiB"), 524288);
    assert_int_equal(size_ok("1MiB"), 1048576);
    assert_int_equal(size_ok("1GiB"), 1073741824ULL);
    assert_int_equal(size_ok("2TiB"), 2ULL << 40);
    assert_int_equal(size_ok("64B"), 64);
    assert_int_equal(size_ok("1KB"), 1000);
    assert_int_equal(size_ok("1kb"), 1000);
    assert_int_equal(size_ok("5MB"), 5000000);
    assert_int_equal(size_ok("5mb"), 5000000);
    assert_int_equal(size_ok("3GB"), 3000000000ULL);
    assert_int_equal(size_ok("1mib"), 1048576);
    assert_int_equal(size_ok("1 MiB"), 1048576);
    assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
}

static void test_size_errors(void **state) {
    size_bad("", "empty");
    size_bad("MiB", "must start with a number");
    size_bad("-1MiB", "no sign");
    size_bad("1.5MiB", "no fractions");
    size_bad("1XB", "unknown unit 'XB'");
    size_bad("1MiB ", "unexpected");
    size_bad("1MiB2", "unexpected '2'");
    size_bad("18446744073709551616", "too large");
    size_bad("17179869184GiB", "too large");
    uint64_t b;
    assert_int_equal(units_parse_size(NULL, &b, NULL, 0), HQ_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_units),
        cmocka_unit_test(test_parse_bare_seconds),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_overflow),
        cmocka_unit_test(test_error_fits_buffer),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_small_buffer),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_size_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
