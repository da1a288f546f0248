/* test_job.c -- a job's life without Redis: the transition table, the bookkeeping that
 * entering and leaving a state owns, the writes table, and what a finished attempt means. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hq.h"
#include "job.h"

/* The diagram of job.h, written out independently of job.c's table. */
static int legal(job_state a, job_state b) {
    switch (a) {
    case JOB_NEW:
        return b == JOB_FETCH || b == JOB_READY || b == JOB_DEAD;
    case JOB_FETCH:
        return b == JOB_READY || b == JOB_DEAD;
    case JOB_READY:
        return b == JOB_INFLIGHT || b == JOB_DISABLED || b == JOB_DROPPED || b == JOB_DEFERRED ||
               b == JOB_RETRY || b == JOB_DEAD || b == JOB_LANED;
    case JOB_INFLIGHT:
        return b == JOB_DELIVERED || b == JOB_RETRY || b == JOB_DEAD;
    default:
        return 0;
    }
}

static void test_table_matches_diagram(void **state) {
    (void)state;
    for (int a = 0; a < JOB_NSTATES; a++)
        for (int b = 0; b < JOB_NSTATES; b++)
            assert_int_equal(job_transition_ok((job_state)a, (job_state)b),
                             legal((job_state)a, (job_state)b));
    assert_false(job_transition_ok(JOB_NSTATES, JOB_READY));
    assert_false(job_transition_ok(JOB_READY, JOB_NSTATES));
    /* final states go nowhere */
    for (int a = JOB_DELIVERED; a < JOB_NSTATES; a++) {
        assert_true(job_state_is_final((job_state)a));
        for (int b = 0; b < JOB_NSTATES; b++)
            assert_false(job_transition_ok((job_state)a, (job_state)b));
    }
    assert_false(job_state_is_final(JOB_INFLIGHT));
}

static void test_names_distinct(void **state) {
    (void)state;
    for (int a = 0; a < JOB_NSTATES; a++) {
        assert_string_not_equal(job_state_name((job_state)a), "?");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(job_state_name((job_state)a), job_state_name((job_state)b));
    }
    assert_string_equal(job_state_name(JOB_NSTATES), "?");
}

/* Every final state has a row, and the rows say what docs/architecture.md says. */
static void test_writes_table(void **state) {
    (void)state;
    for (int s = 0; s < JOB_NSTATES; s++)
        assert_true((job_writes_of((job_state)s) != NULL) == job_state_is_final((job_state)s));
    const job_writes *w = job_writes_of(JOB_DELIVERED);
    assert_string_equal(w->log_outcome, "delivered");
    assert_int_equal(w->failures, JOB_FAILURES_RESET);
    assert_int_equal(w->settle, JOB_SETTLE_ACK);
    w = job_writes_of(JOB_RETRY);
    assert_int_equal(w->settle, JOB_SETTLE_RETRY);
    assert_int_equal(w->attempt_step, 1);
    assert_int_equal(w->failures, JOB_FAILURES_COUNT);
    w = job_writes_of(JOB_DEFERRED); /* never tried: same attempt, no log, no count */
    assert_int_equal(w->settle, JOB_SETTLE_RETRY);
    assert_int_equal(w->attempt_step, 0);
    assert_null(w->log_outcome);
    assert_int_equal(w->failures, JOB_FAILURES_KEEP);
    w = job_writes_of(JOB_DEAD);
    assert_int_equal(w->settle, JOB_SETTLE_DEAD);
    assert_null(job_writes_of(JOB_DROPPED)->log_outcome);
    assert_string_equal(job_writes_of(JOB_DISABLED)->log_outcome, "disabled");
}

/* Lists and the in-flight counter follow the state, with nothing kept by hand. */
static void test_bookkeeping(void **state) {
    (void)state;
    job_table *t = job_table_new();
    assert_non_null(t);
    job *a = job_new(t, "1-1", "9-0", "ep_a", 1, 10);
    job *b = job_new(t, "1-2", "9-0", "ep_a", 1, 10);
    job *c = job_new(t, "1-3", "9-1", "ep_b", 2, 10);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_null(job_new(t, "1-1", "9-0", "ep_a", 1, 10)); /* one entry, one job */
    assert_int_equal(job_held(t), 3);
    assert_ptr_equal(job_find(t, "1-2"), b);
    assert_int_equal(job_transition(a, JOB_READY, NULL), HQ_OK);
    assert_int_equal(job_transition(b, JOB_FETCH, NULL), HQ_OK);
    assert_int_equal(job_transition(c, JOB_READY, NULL), HQ_OK);
    assert_int_equal(job_count(t, JOB_LIST_READY), 2);
    assert_int_equal(job_count(t, JOB_LIST_FETCH), 1);
    assert_int_equal(job_transition(a, JOB_INFLIGHT, NULL), HQ_OK);
    assert_int_equal(job_transition(b, JOB_READY, NULL), HQ_OK);
    assert_int_equal(job_transition(b, JOB_INFLIGHT, NULL), HQ_OK);
    assert_int_equal(job_inflight_to(t, "ep_a"), 2);
    assert_int_equal(job_inflight_to(t, "ep_b"), 0);
    assert_int_equal(job_transition(a, JOB_DELIVERED, "ok"), HQ_OK);
    assert_int_equal(job_inflight_to(t, "ep_a"), 1);
    /* a setup failure goes READY -> RETRY and never touches the counter */
    assert_int_equal(job_transition(c, JOB_RETRY, "bad secret"), HQ_OK);
    assert_int_equal(job_inflight_to(t, "ep_b"), 0);
    assert_int_equal(job_count(t, JOB_LIST_DONE), 2);
    assert_int_equal(job_count(t, JOB_LIST_INFLIGHT), 1);
    /* a live job cannot be freed */
    assert_int_equal(job_transition(b, JOB_DEAD, NULL), HQ_OK);
    assert_int_equal(job_inflight_to(t, "ep_a"), 0);
    assert_int_equal(job_free(a), HQ_OK);
    assert_null(job_find(t, "1-1"));
    assert_int_equal(job_held(t), 2);
    job_table_free(t); /* frees b and c */
    job_table_free(NULL);
}

static http_result res_of(int curl, long status, const char *retry_after) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.curl_code = curl;
    r.http_status = status;
    if (retry_after)
        snprintf(r.retry_after, sizeof r.retry_after, "%s", retry_after);
    return r;
}

static void test_decide(void **state) {
    (void)state;
    static const int64_t sched[] = {1000, 5000};
    job_policy p = {
        .schedule_ms = sched, .schedule_len = 2, .jitter = 0, .max_retry_after_ms = 60000};
    job_table *t = job_table_new();
    job *j = job_new(t, "1-1", "9-0", "ep_a", 1, 0);
    http_result r = res_of(CURLE_OK, 204, NULL);
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_DELIVERED);
    assert_true(j->attempted);
    r = res_of(CURLE_OK, 500, NULL);
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_RETRY);
    assert_int_equal(j->due_ms, 1000000 + 1000);
    assert_string_equal(j->error, "HTTP 500");
    /* Retry-After asks for longer than the schedule: honoured, clamped by the max */
    r = res_of(CURLE_OK, 429, "30");
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_RETRY);
    assert_int_equal(j->due_ms, 1000000 + 30000);
    r = res_of(CURLE_OK, 503, "7200");
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_RETRY);
    assert_int_equal(j->due_ms, 1000000 + 60000);
    /* a non-HTTP answer is a transfer error: retried */
    r = res_of(CURLE_UNSUPPORTED_PROTOCOL, 0, NULL);
    snprintf(r.error, sizeof r.error, "Received HTTP/0.9 when not allowed");
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_RETRY);
    assert_string_equal(j->error, "Received HTTP/0.9 when not allowed");
    /* out of attempts: the schedule has 2 waits, so attempt 3 is the last */
    j->attempt = 3;
    r = res_of(CURLE_OK, 500, NULL);
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_DEAD);
    j->attempt = 1;
    r = res_of(CURLE_OK, 410, NULL);
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_DEAD);
    assert_int_equal(j->oc, OUT_GONE);
    r = res_of(CURLE_URL_MALFORMAT, 0, NULL);
    assert_int_equal(job_decide(j, &r, &p, 1000000, 7), JOB_DEAD);
    job_free(j);
    job_table_free(t);
}

/* An illegal transition is a bug: builds with HOOKQ_CHECKS (tests, CI) stop at it. */
static void test_illegal_transition_aborts(void **state) {
    (void)state;
#ifndef HOOKQ_CHECKS
    skip();
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        job_table *t = job_table_new();
        job *j = job_new(t, "1-1", "9-0", "ep_a", 1, 0);
        job_transition(j, JOB_READY, NULL);
        job_transition(j, JOB_DELIVERED, NULL); /* READY -> DELIVERED skips INFLIGHT */
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_diagram),
        cmocka_unit_test(test_names_distinct),
        cmocka_unit_test(test_writes_table),
        cmocka_unit_test(test_bookkeeping),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_illegal_transition_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
