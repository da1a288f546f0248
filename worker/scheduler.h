/* scheduler.h -- who gets the next transfer slot (pure: no I/O, unit-tested).
 *
 * Each endpoint has an adaptive window, the most transfers it may have in flight, kept
 * like TCP's congestion window:
 *  - it starts at SCHED_INITIAL_WINDOW; each success adds one (slow start: the window
 *    doubles every round trip) up to a threshold, then 1/window (one per round trip);
 *  - an overload signal (429, a 503 with Retry-After, a timeout, a refused connection:
 *    the receiver says or shows it cannot keep up) halves it, at least
 *    1, and sets the threshold there: at most once per window's worth of results, so one
 *    burst of failures in flight counts once;
 *  - it stays within [1, max] (delivery.per_endpoint, or delivery.concurrency).
 * So a healthy endpoint alone grows to every slot within a few round trips, while one
 * that hangs never completes anything and keeps its first few: it cannot take the slots
 * every other endpoint needs, and a receiver that sheds load gets less of it.
 * Free slots go round-robin among endpoints with ready jobs, one per endpoint per round,
 * each up to its window: many endpoints get equal shares, none is starved. */
#ifndef HQ_SCHEDULER_H
#define HQ_SCHEDULER_H
#include <stddef.h>

#define SCHED_INITIAL_WINDOW 4

typedef enum {
    SCHED_OK = 0,  /* a 2xx: the receiver keeps up */
    SCHED_NEUTRAL, /* a failure that says nothing about load (500, a bare 503, 4xx, TLS) */
    SCHED_OVERLOAD /* 429, 503 + Retry-After, a timeout or a refused connection: back off */
} sched_signal;

/* What a finished attempt says about the receiver's load. A 503 without Retry-After is
 * neutral: receivers use it for failures of every kind, and treating a steady few
 * percent of them as congestion would collapse the window (AIMD at 10% loss settles
 * near 2) for a receiver that is not slow at all. retry_after: the answer carried one. */
sched_signal scheduler_signal_of(int curl_code, long http_status, int retry_after);

typedef struct scheduler scheduler; /* opaque */

scheduler *scheduler_new(int max_window); /* NULL on OOM */
void scheduler_free(scheduler *s);        /* NULL-safe */

/* The endpoint's window now (SCHED_INITIAL_WINDOW, capped by max, if never seen). */
int scheduler_window(const scheduler *s, const char *ep_id);
/* Feed one finished attempt's signal. */
void scheduler_on_result(scheduler *s, const char *ep_id, sched_signal sig);
/* Forget endpoints not in ids[0..n) (called after an endpoint reload). */
void scheduler_keep_only(scheduler *s, const char *const *ids, size_t n);

/* The round-robin plan for one dispatch pass over n endpoints with ready[i] jobs ready,
 * inflight[i] in flight and window[i]: start[i] new transfers each, together at most
 * free_slots, each endpoint up to its window. *rr is the endpoint the pass starts with;
 * it moves on so the next pass starts after the last one served. Returns the total. */
int scheduler_plan(size_t n, const int *ready, const int *inflight, const int *window,
                   int free_slots, size_t *rr, int *start);

#endif
