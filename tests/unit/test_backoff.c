/* test_backoff.c -- backoff schedule with jitter, Retry-After parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "backoff.h"
#include "hq.h"

/* the default schedule: 30s 2m 10m 1h 4h */
static const int64_t sched[] = {30000, 120000, 600000, 3600000, 14400000};
#define NSCHED (sizeof(sched) / sizeof(sched[0]))

static void test_no_jitter(void **state) {
    for (int a = 2; a <= (int)NSCHED + 1; a++) {
        assert_int_equal(backoff_delay_ms(sched, NSCHED, a, 0.0, 0), sched[a - 2]);
        assert_int_equal(backoff_delay_ms(sched, NSCHED, a, 0.0, UINT64_MAX), sched[a - 2]);
    }
}

static void test_out_of_attempts(void **state) {
    assert_int_equal(backoff_delay_ms(sched, NSCHED, (int)NSCHED + 2, 0.2, 1), -1);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 100, 0.2, 1), -1);
    assert_int_equal(backoff_delay_ms(sched, 0, 2, 0.2, 1), -1);
    assert_int_equal(backoff_delay_ms(NULL, 3, 2, 0.2, 1), -1);
    /* attempt 1 is the first try, never a retry */
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 1, 0.2, 1), -1);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 0, 0.2, 1), -1);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, -5, 0.2, 1), -1);
}

static void test_jitter_extremes(void **state) {
    /* rnd 0 gives the smallest factor 1-j, all ones the largest (just under 1+j, rounded) */
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 2, 0.2, 0), 24000);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 2, 0.2, UINT64_MAX), 36000);
    /* the middle of the range is the nominal delay */
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 2, 0.2, UINT64_C(1) << 63), 30000);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 6, 0.5, 0), 7200000);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 6, 0.5, UINT64_MAX), 21600000);
    /* different random values give different delays */
    assert_true(backoff_delay_ms(sched, NSCHED, 3, 0.2, UINT64_C(1) << 62) !=
                backoff_delay_ms(sched, NSCHED, 3, 0.2, UINT64_C(3) << 62));
}

static void test_jitter_bounds(void **state) {
    static const double jitters[] = {0.0, 0.01, 0.1, 0.2, 0.5, 0.9, 0.999};
    static const int64_t ds[] = {1, 7, 999, 30000, 14400000, INT64_C(1) << 50};
    uint64_t rnd = UINT64_C(0x9E3779B97F4A7C15);
    for (size_t ji = 0; ji < sizeof(jitters) / sizeof(jitters[0]); ji++) {
        for (size_t di = 0; di < sizeof(ds) / sizeof(ds[0]); di++) {
            double j = jitters[ji];
            int64_t d = ds[di];
            for (int k = 0; k < 2000; k++) {
                /* xorshift64: a spread of rnd values, deterministic */
                rnd ^= rnd << 13;
                rnd ^= rnd >> 7;
                rnd ^= rnd << 17;
                int64_t got = backoff_delay_ms(&d, 1, 2, j, rnd);
                if ((double)got < (double)d * (1 - j) - 1e-6 * (double)d ||
                    (double)got > (double)d * (1 + j) + 1e-6 * (double)d)
                    fail_msg("d=%lld j=%g rnd=%llu -> %lld", (long long)d, j,
                             (unsigned long long)rnd, (long long)got);
            }
        }
    }
}

static void test_jitter_odd_values(void **state) {
    const int64_t zero = 0, neg = -5, huge = INT64_MAX;
    assert_int_equal(backoff_delay_ms(&zero, 1, 2, 0.2, UINT64_MAX), 0);
    assert_int_equal(backoff_delay_ms(&neg, 1, 2, 0.2, UINT64_MAX), 0);
    /* jitter out of range: negative and NaN mean none, >= 1 is capped below 1 */
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 2, -0.5, 0), 30000);
    assert_int_equal(backoff_delay_ms(sched, NSCHED, 2, NAN, 0), 30000);
    int64_t v = backoff_delay_ms(sched, NSCHED, 2, 5.0, 0);
    assert_true(v >= 0 && v < 30000);
    v = backoff_delay_ms(sched, NSCHED, 2, 1.0, UINT64_MAX);
    assert_true(v > 30000 && v <= 60000);
    /* no overflow on a huge entry */
    assert_true(backoff_delay_ms(&huge, 1, 2, 0.5, UINT64_MAX) > 0);
}

static void expect_ra(const char *v, int64_t now, int64_t want) {
    int64_t got = -42;
    if (backoff_retry_after_parse(v, now, &got) != HQ_OK)
        fail_msg("rejected '%s'", v);
    if (got != want)
        fail_msg("'%s': got %lld want %lld", v, (long long)got, (long long)want);
}

static void expect_ra_bad(const char *v) {
    int64_t got = -42;
    if (backoff_retry_after_parse(v, 1445412480000, &got) != HQ_ERR)
        fail_msg("accepted '%s' as %lld", v ? v : "(null)", (long long)got);
}

static void test_retry_after_seconds(void **state) {
    expect_ra("120", 0, 120000);
    expect_ra("0", 5, 0);
    expect_ra("  7 ", 5, 7000);
    expect_ra("\t3600\t", 5, 3600000);
    expect_ra("007", 5, 7000);
    /* absurdly large values saturate instead of overflowing */
    int64_t got = 0;
    assert_int_equal(backoff_retry_after_parse("99999999999999999999999", 0, &got), HQ_OK);
    assert_true(got > INT64_C(1000000000000));
}

/* Epoch values from `date -u -d '2015-10-21 07:28:00' +%s` (1445412480) and
 * `date -u -d '1994-11-06 08:49:37' +%s` (784111777). */
static void test_retry_after_dates(void **state) {
    const int64_t t = INT64_C(1445412480000);
    expect_ra("Wed, 21 Oct 2015 07:28:00 GMT", t - 120000, 120000);
    expect_ra("Wednesday, 21-Oct-15 07:28:00 GMT", t - 120000, 120000);
    expect_ra("Wed Oct 21 07:28:00 2015", t - 120000, 120000);
    expect_ra("  Wed, 21 Oct 2015 07:28:00 GMT  ", t - 1, 1);
    /* case-insensitive names */
    expect_ra("wed, 21 oct 2015 07:28:00 GMT", t - 1000, 1000);

    const int64_t u = INT64_C(784111777000);
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", u - 5000, 5000);
    expect_ra("Sunday, 06-Nov-94 08:49:37 GMT", u - 5000, 5000);
    expect_ra("Sun Nov  6 08:49:37 1994", u - 5000, 5000);

    /* past dates and now give 0 */
    expect_ra("Wed, 21 Oct 2015 07:28:00 GMT", t, 0);
    expect_ra("Wed, 21 Oct 2015 07:28:00 GMT", t + 3600000, 0);
    expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", t, 0);
    expect_ra("Thu, 01 Jan 1970 00:00:00 GMT", t, 0);
}

/* Dates against the C library's own conversion, across month, year and leap edges. */
static void test_retry_after_vs_timegm(void **state) {
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const int cases[][6] = {
        {2024, 2, 29, 23, 59, 59}, {2023, 12, 31, 0, 0, 0}, {2000, 2, 29, 12, 0, 0},
        {2038, 1, 19, 3, 14, 8},   {2100, 3, 1, 0, 0, 1},   {2026, 11, 23, 10, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm tmv = {0};
        tmv.tm_year = cases[i][0] - 1900;
        tmv.tm_mon = cases[i][1] - 1;
        tmv.tm_mday = cases[i][2];
        tmv.tm_hour = cases[i][3];
        tmv.tm_min = cases[i][4];
        tmv.tm_sec = cases[i][5];
        int64_t want = (int64_t)timegm(&tmv) * 1000;
        char buf[64];
        /* the weekday name is not cross-checked against the date, any valid one works */
        snprintf(buf, sizeof(buf), "Mon, %02d %s %04d %02d:%02d:%02d GMT", cases[i][2],
                 mon[cases[i][1] - 1], cases[i][0], cases[i][3], cases[i][4], cases[i][5]);
        expect_ra(buf, 0, want);
        snprintf(buf, sizeof(buf), "Mon %s %2d %02d:%02d:%02d %04d", mon[cases[i][1] - 1],
                 cases[i][2], cases[i][3], cases[i][4], cases[i][5], cases[i][0]);
        expect_ra(buf, 0, want);
    }
}

static void test_retry_after_rfc850_century(void **state) {
    /* now = 2015-10-21: "94" is 1994, "65" is 2065 (50 years ahead), "66" is 1966 */
    const int64_t t = INT64_C(1445412480000);
    int64_t got;
    assert_int_equal(backoff_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", t, &got), HQ_OK);
    assert_int_equal(got, 0);
    assert_int_equal(backoff_retry_after_parse("Sunday, 01-Jan-65 00:00:00 GMT", t, &got), HQ_OK);
    assert_true(got > INT64_C(49) * 365 * 86400000);
    assert_int_equal(backoff_retry_after_parse("Sunday, 01-Jan-66 00:00:00 GMT", t, &got), HQ_OK);
    assert_int_equal(got, 0);
    assert_int_equal(backoff_retry_after_parse("Sunday, 01-Jan-16 00:00:00 GMT", t, &got), HQ_OK);
    assert_int_equal(got, INT64_C(1451606400000) - t);
}

static void test_retry_after_garbage(void **state) {
    expect_ra_bad(NULL);
    expect_ra_bad("");
    expect_ra_bad("   ");
    expect_ra_bad("-5");
    expect_ra_bad("+5");
    expect_ra_bad("1.5");
    expect_ra_bad("12abc");
    expect_ra_bad("1 2");
    expect_ra_bad("soon");
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00");       /* no GMT */
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00 UTC");   /* not GMT */
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00 GMTx");  /* trailing junk */
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00 GMT x"); /* trailing junk */
    expect_ra_bad("Wed, 21 Foo 2015 07:28:00 GMT");   /* month */
    expect_ra_bad("Xyz, 21 Oct 2015 07:28:00 GMT");   /* day name */
    expect_ra_bad("Wed,21 Oct 2015 07:28:00 GMT");    /* missing space */
    expect_ra_bad("Wed, 1 Oct 2015 07:28:00 GMT");    /* one-digit day */
    expect_ra_bad("Wed, 21 Oct 15 07:28:00 GMT");     /* two-digit year */
    expect_ra_bad("Wed, 32 Oct 2015 07:28:00 GMT");   /* day range */
    expect_ra_bad("Wed, 00 Oct 2015 07:28:00 GMT");   /* day range */
    expect_ra_bad("Wed, 29 Feb 2015 07:28:00 GMT");   /* not a leap year */
    expect_ra_bad("Wed, 31 Apr 2015 07:28:00 GMT");   /* April has 30 */
    expect_ra_bad("Wed, 21 Oct 2015 24:00:00 GMT");   /* hour */
    expect_ra_bad("Wed, 21 Oct 2015 07:60:00 GMT");   /* minute */
    expect_ra_bad("Wed, 21 Oct 2015 07:28:61 GMT");   /* second */
    expect_ra_bad("Wed, 21 Oct 2015 7:28:00 GMT");    /* one-digit hour */
    expect_ra_bad("Wednesday, 21 Oct 2015 07:28:00 GMT");
    expect_ra_bad("Wed, 21-Oct-15 07:28:00 GMT"); /* 850 with short day */
    expect_ra_bad("Wednesday, 21-Oct-2015 07:28:00 GMT");
    expect_ra_bad("Wed Oct 21 07:28:00 15");       /* asctime 2-digit year */
    expect_ra_bad("Wed Oct 21 07:28:00 2015 GMT"); /* asctime has no zone */
    expect_ra_bad("Wed Oct 6 07:28:00 2015");      /* asctime single space */
    expect_ra_bad("Wednes, 21 Oct 2015 07:28:00 GMT");
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    /* longer than any date: rejected before parsing */
    expect_ra_bad("Wed, 21 Oct 2015 07:28:00 GMT                                     x");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_jitter),
        cmocka_unit_test(test_out_of_attempts),
        cmocka_unit_test(test_jitter_extremes),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_jitter_odd_values),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_vs_timegm),
        cmocka_unit_test(test_retry_after_rfc850_century),
        cmocka_unit_test(test_retry_after_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
