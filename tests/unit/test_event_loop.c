/* test_event_loop.c -- the worker's one wait: readiness, unwatching during dispatch,
 * timeouts, and a stop signal that can only arrive while the loop waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "event_loop.h"
#include "hq.h"

typedef struct seen {
    int calls;
    int last_events;
    evloop *l;
    int other_fd; /* unwatched by the first callback that runs */
    int drain;
} seen;

static void on_ready(void *ud, int fd, int events) {
    seen *s = ud;
    s->calls++;
    s->last_events = events;
    if (s->drain) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        (void)n;
    }
    if (s->other_fd >= 0) {
        evloop_unwatch(s->l, s->other_fd);
        s->other_fd = -1;
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_readable_and_level_triggered(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    evloop *l = evloop_new(NULL, 0);
    assert_non_null(l);
    seen s = {.l = l, .other_fd = -1};
    assert_int_equal(evloop_watch(l, p[0], EVL_IN, on_ready, &s), HQ_OK);
    assert_true(evloop_watching(l, p[0]));
    assert_int_equal(evloop_run(l, 0), 0); /* nothing to read yet */
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(evloop_run(l, 1000), 1);
    assert_int_equal(s.calls, 1);
    assert_true(s.last_events & EVL_IN);
    /* not read: level-triggered, so it is reported again */
    assert_int_equal(evloop_run(l, 0), 1);
    s.drain = 1;
    assert_int_equal(evloop_run(l, 0), 1);
    assert_int_equal(evloop_run(l, 0), 0);
    /* watching again with the same events is a no-op; with 0 events it goes quiet */
    assert_int_equal(evloop_watch(l, p[0], EVL_IN, on_ready, &s), HQ_OK);
    assert_int_equal(write(p[1], "y", 1), 1);
    assert_int_equal(evloop_watch(l, p[0], 0, on_ready, &s), HQ_OK);
    assert_int_equal(evloop_run(l, 0), 0);
    evloop_unwatch(l, p[0]);
    evloop_unwatch(l, p[0]); /* twice is harmless */
    assert_false(evloop_watching(l, p[0]));
    close(p[0]);
    close(p[1]);
    evloop_free(l);
    evloop_free(NULL);
}

/* Two fds ready in the same run: the first callback unwatches the other, which then gets
 * no callback from that run. */
static void test_unwatch_during_dispatch(void **state) {
    (void)state;
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    evloop *l = evloop_new(NULL, 0);
    seen sa = {.l = l}, sb = {.l = l};
    sa.other_fd = b[0];
    sb.other_fd = a[0];
    assert_int_equal(evloop_watch(l, a[0], EVL_IN, on_ready, &sa), HQ_OK);
    assert_int_equal(evloop_watch(l, b[0], EVL_IN, on_ready, &sb), HQ_OK);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(evloop_run(l, 1000), 1);
    assert_int_equal(sa.calls + sb.calls, 1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    evloop_free(l);
}

static void test_timeout_and_hangup(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    evloop *l = evloop_new(NULL, 0);
    seen s = {.l = l, .other_fd = -1};
    assert_int_equal(evloop_watch(l, p[0], EVL_IN, on_ready, &s), HQ_OK);
    int64_t t0 = now_ms();
    assert_int_equal(evloop_run(l, 30), 0);
    assert_true(now_ms() - t0 >= 25);
    close(p[1]); /* the writer goes: a hang-up */
    assert_int_equal(evloop_run(l, 1000), 1);
    assert_true(s.last_events & (EVL_ERR | EVL_IN));
    evloop_unwatch(l, p[0]);
    close(p[0]);
    /* bad arguments */
    assert_int_equal(evloop_watch(l, -1, EVL_IN, on_ready, &s), HQ_ERR);
    assert_int_equal(evloop_watch(l, 0, EVL_IN, NULL, &s), HQ_ERR);
    evloop_free(l);
}

static volatile sig_atomic_t got_signal;
static void on_sig(int sig) {
    (void)sig;
    got_signal = 1;
}

/* SIGUSR1 blocked outside the wait, open inside: sent before the wait, it is delivered
 * by the wait and ends it at once instead of being slept through. */
static void test_signal_wakes_the_wait(void **state) {
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGUSR1);
    evloop *l = evloop_new(NULL, 0);
    evloop_set_sigmask(l, &waitmask);
    got_signal = 0;
    kill(getpid(), SIGUSR1); /* pending: blocked until the wait */
    assert_int_equal(got_signal, 0);
    int64_t t0 = now_ms();
    assert_int_equal(evloop_run(l, 5000), 0);
    assert_int_equal(got_signal, 1);
    assert_true(now_ms() - t0 < 2000);
    evloop_free(l);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readable_and_level_triggered),
        cmocka_unit_test(test_unwatch_during_dispatch),
        cmocka_unit_test(test_timeout_and_hangup),
        cmocka_unit_test(test_signal_wakes_the_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
