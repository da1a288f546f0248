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

/* ---- the latency signal, in simulated time ----
 * A receiver model decides each request's latency when it starts; the window is kept full
 * (an endpoint alone, with jobs always ready) and the earliest request to finish is fed
 * back. No clock, no network: every run is the same. */
#define SIM_MAXW 128
#define MS       1000 /* µs */

typedef struct sim sim;
/* latency in µs of a request that starts with `conc` in flight, itself included */
typedef int64_t (*sim_latency)(sim *m, int conc);

struct sim {
    scheduler *s;
    sim_latency latency;
    int64_t a, b; /* the model's parameters */
    int64_t now;
    int64_t done_at[SIM_MAXW], took[SIM_MAXW];
    int n;          /* in flight */
    uint64_t rng;   /* xorshift64 */
    int wmin, wmax; /* the window after each result of the last sim_run */
};

static sim sim_new(int max, sim_latency f, int64_t a, int64_t b) {
    sim m = {.s = scheduler_new(max), .latency = f, .a = a, .b = b, .rng = 0x9e3779b97f4a7c15ULL};
    assert_non_null(m.s);
    return m;
}

static double sim_uniform(sim *m) { /* [0, 1) */
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (double)(m->rng >> 11) / 9007199254740992.0;
}

/* Feed `results` successes; returns the window at the end. */
static int sim_run(sim *m, int results) {
    m->wmin = SIM_MAXW;
    m->wmax = 0;
    for (int r = 0; r < results; r++) {
        for (int w = scheduler_window(m->s, "e"); m->n < w && m->n < SIM_MAXW; m->n++) {
            m->took[m->n] = m->latency(m, m->n + 1);
            m->done_at[m->n] = m->now + m->took[m->n];
        }
        int first = 0;
        for (int i = 1; i < m->n; i++)
            if (m->done_at[i] < m->done_at[first])
                first = i;
        m->now = m->done_at[first];
        int64_t took = m->took[first];
        m->n--;
        m->done_at[first] = m->done_at[m->n];
        m->took[first] = m->took[m->n];
        scheduler_on_result(m->s, "e", SCHED_OK, took);
        int w = scheduler_window(m->s, "e");
        m->wmin = w < m->wmin ? w : m->wmin;
        m->wmax = w > m->wmax ? w : m->wmax;
    }
    return scheduler_window(m->s, "e");
}

static int64_t lat_constant(sim *m, int conc) {
    (void)conc;
    return m->a;
}

/* a + b x concurrency: the receiver queues what it is sent */
static int64_t lat_proportional(sim *m, int conc) {
    return m->a + m->b * conc;
}

/* a threads of b µs each: beyond a in flight, requests wait for a thread */
static int64_t lat_threads(sim *m, int conc) {
    return m->b * ((conc + m->a - 1) / m->a);
}

/* a µs +- b%, uniform */
static int64_t lat_jitter(sim *m, int conc) {
    (void)conc;
    return (int64_t)((double)m->a * (1 + (sim_uniform(m) * 2 - 1) * (double)m->b / 100.0));
}

/* a µs, but one request in 20 takes b times as long: a tail that is not load */
static int64_t lat_tail(sim *m, int conc) {
    (void)conc;
    return sim_uniform(m) < 0.05 ? m->a * m->b : m->a;
}

/* A receiver that keeps up at any load grows the window to the cap and keeps it there:
 * the latency rule changes nothing for it (nor for one answering in 0 ms, as a local
 * receiver does with millisecond resolution). */
static void test_latency_healthy_grows_to_max(void **state) {
    (void)state;
    int64_t lat[] = {20 * MS, 0, 150 * MS};
    for (int i = 0; i < 3; i++) {
        sim m = sim_new(64, lat_constant, lat[i], 0);
        assert_int_equal(sim_run(&m, 300), 64); /* slow start: 60 successes would do */
        sim_run(&m, 10000);
        assert_int_equal(m.wmin, 64);
        scheduler_free(m.s);
    }
}

/* A receiver whose latency rises with the load it is given settles below the cap, in a
 * band, and stays there: no drift up (a floor re-learned under our own load would let
 * the window ratchet to the cap) nor down. */
static void test_latency_rising_with_load_settles_below_max(void **state) {
    (void)state;
    /* 10 ms + 1 ms per request in flight: 74 ms at 64. The floor is learned in slow
     * start (~16 ms); the window settles where the latency is about twice that */
    sim m = sim_new(64, lat_proportional, 10 * MS, 1 * MS);
    sim_run(&m, 3000);
    sim_run(&m, 100000);
    assert_in_range(m.wmin, 12, 64); /* 2 x the latency at 1 in flight is 22 ms: 12 */
    assert_in_range(m.wmax, m.wmin, 40);
    assert_true(m.wmax - m.wmin <= 10);
    scheduler_free(m.s);
    /* 8 threads of 10 ms: 10 ms up to 8 in flight, 20 ms up to 16, 30 ms up to 24 */
    m = sim_new(64, lat_threads, 8, 10 * MS);
    sim_run(&m, 3000);
    sim_run(&m, 100000);
    assert_in_range(m.wmin, 8, 64);      /* its threads are never left idle */
    assert_in_range(m.wmax, m.wmin, 24); /* at most two requests queued per thread */
    scheduler_free(m.s);
    /* a cap below the knee: the window stays at the cap */
    m = sim_new(8, lat_threads, 8, 10 * MS);
    sim_run(&m, 3000);
    sim_run(&m, 10000);
    assert_int_equal(m.wmin, 8);
    scheduler_free(m.s);
}

/* A spike in latency (a receiver busy for a moment) shrinks the window; when it passes,
 * the window grows back to the cap. */
static void test_latency_spike_then_recovery(void **state) {
    (void)state;
    sim m = sim_new(64, lat_constant, 10 * MS, 0);
    assert_int_equal(sim_run(&m, 1000), 64);
    m.a = 50 * MS; /* for three windows' worth of results */
    sim_run(&m, 3 * 64);
    int low = m.wmin;
    assert_in_range(low, SCHED_INITIAL_WINDOW + 1, 58); /* shrank, gently */
    m.a = 10 * MS;
    /* the requests sent during the spike still come back slow: a cut or two more */
    assert_int_equal(sim_run(&m, 5000), 64);
    assert_in_range(m.wmin, low * 3 / 4, 64);
    scheduler_free(m.s);
}

/* Jitter that is not load does not collapse the window: +-50% around 1 ms (below the 5 ms
 * the latency must exceed the floor by) and around 20 ms (not below it), and a tail of
 * one request in 20 taking 20 times as long (each sample counts for at most 2 x the
 * recent latency). */
static void test_latency_jitter_keeps_the_window(void **state) {
    (void)state;
    struct {
        sim_latency f;
        int64_t a, b;
    } cases[] = {{lat_jitter, 1 * MS, 50}, {lat_jitter, 20 * MS, 50}, {lat_tail, 10 * MS, 20}};
    for (int i = 0; i < 3; i++) {
        sim m = sim_new(64, cases[i].f, cases[i].a, cases[i].b);
        assert_int_equal(sim_run(&m, 1000), 64);
        sim_run(&m, 50000);
        assert_int_equal(m.wmin, 64);
        scheduler_free(m.s);
    }
}

/* A receiver that becomes slower for good, whatever its load: backing off does not bring
 * the latency down, so after SCHED_LAT_RELEARN cuts in a row its new latency is the
 * floor, and the window grows back to the cap instead of shrinking to 1. */
static void test_latency_floor_relearned_after_a_step_up(void **state) {
    (void)state;
    int64_t to[] = {50 * MS, 500 * MS};
    for (int i = 0; i < 2; i++) {
        sim m = sim_new(64, lat_constant, 10 * MS, 0);
        assert_int_equal(sim_run(&m, 1000), 64);
        m.a = to[i];
        sim_run(&m, 1000);
        /* SCHED_LAT_RELEARN cuts of x0.9: 64 -> 27, then additive growth */
        assert_in_range(m.wmin, 20, 40);
        assert_int_equal(sim_run(&m, 3000), 64);
        sim_run(&m, 5000);
        assert_int_equal(m.wmin, 64);
        scheduler_free(m.s);
    }
    /* the same at a window as small as the first one: the floor is re-learned there too */
    sim m = sim_new(SCHED_INITIAL_WINDOW, lat_constant, 10 * MS, 0);
    sim_run(&m, 100);
    m.a = 100 * MS;
    sim_run(&m, 1000);
    assert_int_equal(sim_run(&m, 1000), SCHED_INITIAL_WINDOW);
    scheduler_free(m.s);
}

/* An endpoint that hangs returns no result: whatever the others do, it keeps its first
 * window; its timeouts (overload, whatever they took) only halve it. */
static void test_latency_hanging_endpoint_keeps_its_first_window(void **state) {
    (void)state;
    sim m = sim_new(64, lat_proportional, 1 * MS, 1 * MS);
    sim_run(&m, 5000);
    assert_int_equal(scheduler_window(m.s, "hang"), SCHED_INITIAL_WINDOW);
    for (int i = 0; i < SCHED_INITIAL_WINDOW; i++) /* its first burst times out */
        scheduler_on_result(m.s, "hang", SCHED_OVERLOAD, 30000 * MS);
    assert_int_equal(scheduler_window(m.s, "hang"), SCHED_INITIAL_WINDOW / 2);
    scheduler_free(m.s);
}

/* The overload signals still halve, with or without a latency history, and failures do
 * not feed the latency: a 500 after 30 s says nothing about the receiver's queue. */
static void test_latency_overload_still_halves(void **state) {
    (void)state;
    sim m = sim_new(64, lat_constant, 10 * MS, 0);
    assert_int_equal(sim_run(&m, 1000), 64);
    for (int i = 0; i < 200; i++) {
        scheduler_on_result(m.s, "e", SCHED_NEUTRAL, 30000 * MS);
        scheduler_on_result(m.s, "e", SCHED_OK, 10 * MS);
    }
    assert_int_equal(scheduler_window(m.s, "e"), 64);
    scheduler_on_result(m.s, "e", SCHED_OVERLOAD, 10 * MS);
    assert_int_equal(scheduler_window(m.s, "e"), 32);
    for (int i = 0; i < 31; i++) /* the same burst */
        scheduler_on_result(m.s, "e", SCHED_OVERLOAD, 10 * MS);
    assert_int_equal(scheduler_window(m.s, "e"), 32);
    scheduler_on_result(m.s, "e", SCHED_OVERLOAD, 10 * MS);
    assert_int_equal(scheduler_window(m.s, "e"), 16);
    /* a receiver that is queueing and then answers 429: halved as well */
    m.a = 100 * MS;
    sim_run(&m, 200);
    int w = scheduler_window(m.s, "e");
    assert_true(w > 2);
    for (int i = 0; i <= w && scheduler_window(m.s, "e") == w; i++)
        scheduler_on_result(m.s, "e", SCHED_OVERLOAD, 100 * MS);
    assert_int_equal(scheduler_window(m.s, "e"), w / 2);
    scheduler_free(m.s);
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
        cmocka_unit_test(test_latency_healthy_grows_to_max),
        cmocka_unit_test(test_latency_rising_with_load_settles_below_max),
        cmocka_unit_test(test_latency_spike_then_recovery),
        cmocka_unit_test(test_latency_jitter_keeps_the_window),
        cmocka_unit_test(test_latency_floor_relearned_after_a_step_up),
        cmocka_unit_test(test_latency_hanging_endpoint_keeps_its_first_window),
        cmocka_unit_test(test_latency_overload_still_halves),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
