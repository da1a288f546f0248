/* test_scheduler.c -- the fairness rules and the adaptive windows, without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include "scheduler.h"

/* An endpoint alone gets every free slot, within its window. */
static void test_alone_gets_every_slot(void **state) {
    (void)state;
    int ready[1] = {100}, inflight[1] = {0}, window[1] = {64}, start[1];
    size_t rr = 0;
    assert_int_equal(scheduler_plan(1, ready, inflight, window, 64, &rr, start), 64);
    assert_int_equal(start[0], 64);
    window[0] = 10;
    inflight[0] = 4;
    assert_int_equal(scheduler_plan(1, ready, inflight, window, 64, &rr, start), 6);
}

/* Many endpoints share the free slots equally; one with fewer jobs takes only those. */
static void test_fair_shares(void **state) {
    (void)state;
    int ready[4] = {50, 50, 50, 2}, inflight[4] = {0}, window[4] = {64, 64, 64, 64}, start[4];
    size_t rr = 0;
    assert_int_equal(scheduler_plan(4, ready, inflight, window, 32, &rr, start), 32);
    assert_int_equal(start[3], 2);
    assert_int_equal(start[0] + start[1] + start[2], 30);
    for (int i = 0; i < 3; i++)
        assert_true(start[i] == 10);
    /* the next pass starts after the last endpoint served: no endpoint always first */
    int one[4];
    size_t rr2 = 0;
    scheduler_plan(4, ready, inflight, window, 1, &rr2, one);
    int first = one[0] ? 0 : one[1] ? 1 : one[2] ? 2 : 3;
    scheduler_plan(4, ready, inflight, window, 1, &rr2, one);
    assert_int_equal(one[first], 0);
}

/* A hanging endpoint completes nothing, so its window never grows past the initial one:
 * four of them cannot take the slots sixteen fast endpoints need. */
static void test_hanging_endpoints_keep_their_first_window(void **state) {
    (void)state;
    scheduler *s = scheduler_new(64);
    int ready[20], inflight[20], window[20], start[20];
    for (int i = 0; i < 20; i++) {
        ready[i] = 20;
        inflight[i] = i < 4 ? SCHED_INITIAL_WINDOW : 0; /* the hanging ones are at their window */
        window[i] = scheduler_window(s, "never-seen");
    }
    size_t rr = 0;
    int total =
        scheduler_plan(20, ready, inflight, window, 64 - 4 * SCHED_INITIAL_WINDOW, &rr, start);
    assert_int_equal(total, 64 - 4 * SCHED_INITIAL_WINDOW);
    for (int i = 0; i < 4; i++)
        assert_int_equal(start[i], 0);
    scheduler_free(s);
}

static void test_window_grows_and_backs_off(void **state) {
    (void)state;
    scheduler *s = scheduler_new(64);
    assert_int_equal(scheduler_window(s, "a"), SCHED_INITIAL_WINDOW);
    /* slow start: +1 per success, so the window doubles per round trip */
    for (int i = 0; i < 12; i++)
        scheduler_on_result(s, "a", SCHED_OK, 1000);
    assert_int_equal(scheduler_window(s, "a"), SCHED_INITIAL_WINDOW + 12);
    for (int i = 0; i < 200; i++)
        scheduler_on_result(s, "a", SCHED_OK, 1000);
    assert_int_equal(scheduler_window(s, "a"), 64); /* capped */
    /* an overload halves it, once per window's worth of results */
    scheduler_on_result(s, "a", SCHED_OVERLOAD, 1000);
    assert_int_equal(scheduler_window(s, "a"), 32);
    for (int i = 0; i < 10; i++)
        scheduler_on_result(s, "a", SCHED_OVERLOAD, 1000); /* the same burst: no further cut */
    assert_int_equal(scheduler_window(s, "a"), 32);
    for (int i = 0; i < 40; i++)
        scheduler_on_result(s, "a", SCHED_OVERLOAD, 1000);
    assert_true(scheduler_window(s, "a") <= 16);
    /* after a cut, growth is additive: about one per window's worth of successes */
    int w = scheduler_window(s, "a");
    for (int i = 0; i < w + 1; i++)
        scheduler_on_result(s, "a", SCHED_OK, 1000);
    assert_int_equal(scheduler_window(s, "a"), w + 1);
    /* neutral failures change nothing; never below 1 */
    scheduler_on_result(s, "b", SCHED_NEUTRAL, 1000);
    assert_int_equal(scheduler_window(s, "b"), SCHED_INITIAL_WINDOW);
    for (int i = 0; i < 100; i++)
        scheduler_on_result(s, "c", SCHED_OVERLOAD, 1000);
    assert_int_equal(scheduler_window(s, "c"), 1);
    /* forgetting endpoints that are gone */
    const char *keep[] = {"a"};
    scheduler_keep_only(s, keep, 1);
    assert_int_equal(scheduler_window(s, "c"), SCHED_INITIAL_WINDOW);
    assert_int_equal(scheduler_window(s, "a"), w + 1);
    scheduler_free(s);
    /* a small cap bounds the initial window too */
    s = scheduler_new(2);
    assert_int_equal(scheduler_window(s, "x"), 2);
    scheduler_free(s);
}

static void test_signals(void **state) {
    (void)state;
    assert_int_equal(scheduler_signal_of(CURLE_OK, 204, 0), SCHED_OK);
    assert_int_equal(scheduler_signal_of(CURLE_OK, 429, 0), SCHED_OVERLOAD);
    assert_int_equal(scheduler_signal_of(CURLE_OK, 503, 1), SCHED_OVERLOAD);
    assert_int_equal(scheduler_signal_of(CURLE_OK, 503, 0), SCHED_NEUTRAL);
    assert_int_equal(scheduler_signal_of(CURLE_OPERATION_TIMEDOUT, 0, 0), SCHED_OVERLOAD);
    assert_int_equal(scheduler_signal_of(CURLE_COULDNT_CONNECT, 0, 0), SCHED_OVERLOAD);
    assert_int_equal(scheduler_signal_of(CURLE_OK, 500, 0), SCHED_NEUTRAL);
    assert_int_equal(scheduler_signal_of(CURLE_SSL_CONNECT_ERROR, 0, 0), SCHED_NEUTRAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alone_gets_every_slot),
        cmocka_unit_test(test_fair_shares),
        cmocka_unit_test(test_hanging_endpoints_keep_their_first_window),
        cmocka_unit_test(test_window_grows_and_backs_off),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
