/* test_timestamp.c -- ISO 8601 formatting and parsing, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "timestamp.h"

static void test_iso_known(void **state) {
    char buf[TS_ISO_LEN];
    ts_iso(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    /* 2026-11-23T10:00:00Z = 1795428000 s (checked with `date -u -d @1795428000`). */
    ts_iso(1795428000123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-23T10:00:00.123Z");
    assert_int_equal(strlen(buf), 24);
    ts_iso(951782400000LL + 5, buf, sizeof buf); /* leap day 2000-02-29 */
    assert_string_equal(buf, "2000-02-29T00:00:00.005Z");
    ts_iso(-1, buf, sizeof buf); /* floor, not truncation, before the epoch */
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

static void test_iso_small_buffer(void **state) {
    char buf[11];
    memset(buf, 'x', sizeof buf);
    ts_iso(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01");
    ts_iso(0, NULL, 0); /* must not crash */
}

static void test_parse_known(void **state) {
    int64_t ms = -7;
    assert_int_equal(ts_parse_iso("2026-11-23T10:00:00.123Z", &ms), HQ_OK);
    assert_int_equal(ms, 1795428000123LL);
    assert_int_equal(ts_parse_iso("2026-11-23T10:00:00Z", &ms), HQ_OK);
    assert_int_equal(ms, 1795428000000LL);
    assert_int_equal(ts_parse_iso("2026-11-23T10:00:00.5Z", &ms), HQ_OK);
    assert_int_equal(ms, 1795428000500LL);
    assert_int_equal(ts_parse_iso("2026-11-23T10:00:00.123456789Z", &ms), HQ_OK);
    assert_int_equal(ms, 1795428000123LL);
    assert_int_equal(ts_parse_iso("1970-01-01T00:00:00.000Z", &ms), HQ_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(ts_parse_iso("2000-02-29T12:00:00Z", &ms), HQ_OK);
    assert_int_equal(ms, 951825600000LL);
}

static void test_parse_bad(void **state) {
    const char *bad[] = {
        "",
        "2026-11-23",
        "2026-11-23T10:00:00",     /* Z required */
        "2026-11-23T10:00:00.123", /* Z required */
        "2026-11-23T10:00:00.Z",   /* empty fraction */
        "2026-11-23T10:00:00.123Zx",
        "2026-11-23 10:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-30T00:00:00Z", /* no such day */
        "2025-02-29T00:00:00Z", /* not a leap year */
        "2026-11-31T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T10:60:00Z",
        "2026-11-23T10:00:60Z",
        "2026-1-23T10:00:00Z",
        "+026-11-23T10:00:00Z",
        "2026-11-23T10:00:00+01:00",
        "2026-11-23T10:00:00.1234567890Z", /* more than nanoseconds */
        "2026-11-23t10:00:00z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (ts_parse_iso(bad[i], &ms) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ms, 42); /* untouched on error */
    }
    int64_t ms;
    assert_int_equal(ts_parse_iso(NULL, &ms), HQ_ERR);
}

static void test_round_trip(void **state) {
    /* Spread over 1970..2100 with odd steps so every month, leap years and all
     * millisecond values get exercised. */
    const int64_t end = 4102444800000LL; /* 2100-01-01 */
    for (int64_t ms = 0; ms < end; ms += 86399987LL * 13) {
        char buf[TS_ISO_LEN];
        ts_iso(ms, buf, sizeof buf);
        int64_t back = -1;
        if (ts_parse_iso(buf, &back) != HQ_OK)
            fail_msg("could not parse '%s'", buf);
        if (back != ms)
            fail_msg("%s: %lld != %lld", buf, (long long)back, (long long)ms);
    }
    int64_t now = ts_now_ms();
    char buf[TS_ISO_LEN];
    ts_iso(now, buf, sizeof buf);
    int64_t back;
    assert_int_equal(ts_parse_iso(buf, &back), HQ_OK);
    assert_int_equal(back, now);
}

static void test_clocks(void **state) {
    int64_t now = ts_now_ms();
    assert_true(now > 1700000000000LL); /* after Nov 2023: the clock is in ms, not s */
    assert_true(now < 7258118400000LL); /* before 2200: not in us */
    int64_t m1 = ts_mono_ms();
    int64_t u1 = ts_mono_us();
    int64_t m2 = ts_mono_ms();
    int64_t u2 = ts_mono_us();
    assert_true(m2 >= m1);
    assert_true(u2 >= u1);
    /* Both read the same clock: us/1000 lies between the ms readings around it. */
    assert_true(u1 / 1000 >= m1);
    assert_true(u1 / 1000 <= m2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_known),   cmocka_unit_test(test_iso_small_buffer),
        cmocka_unit_test(test_parse_known), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
