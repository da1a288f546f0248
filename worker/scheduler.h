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
 *  - latency, of successes only (delay-based, like TCP Vegas): `recent` is an EWMA (1/8)
 *    of their latencies, `floor` the lowest value of a slower EWMA (1/64) from the 16th
 *    success on; each is the plain mean while it has fewer samples than its weight, and
 *    a sample counts for at most 2 x recent (one slow request in many, a cold cache or a
 *    pause, is not load). The receiver is queueing what we send when recent > 2 x floor
 *    and recent > floor + 5 ms (the absolute margin ignores jitter on sub-millisecond
 *    receivers). Then a success does not grow the window and, at most once per window's
 *    worth of results, the window is cut to x0.9 (gentler than an overload) and the
 *    threshold set there. Slow start also ends, without a cut, when recent passes
 *    1.5 x floor (and floor + 5 ms): the latency lags the window by a round trip while
 *    slow start doubles it every round trip;
 *  - the floor is re-learned (floor = recent) when backing off did not help: after 8
 *    latency cuts in a row with no success under the threshold between (the window
 *    down to 0.43x), or a latency cut that leaves it at SCHED_INITIAL_WINDOW or less.
 *    The receiver is slower for another reason than our load, and the window grows back
 *    instead of shrinking to 1. Under our own load the floor never rises: a floor learned
 *    at the current window would let the window ratchet up to the cap;
 *  - it stays within [1, max] (delivery.per_endpoint, or delivery.concurrency).
 * So a healthy endpoint alone grows to every slot within a few round trips, one whose
 * latency grows with its load settles where the latency is about twice its floor, while
 * one that hangs never completes anything and keeps its first few: it cannot take the
 * slots every other endpoint needs, and a receiver that sheds load gets less of it.
 * Free slots go round-robin among endpoints with ready jobs, one per endpoint per round,
 * each up to its window: many endpoints get equal shares, none is starved. */
#ifndef HQ_SCHEDULER_H
#define HQ_SCHEDULER_H
#include <stddef.h>
#include <stdint.h>

#define SCHED_INITIAL_WINDOW    4
#define SCHED_LAT_RECENT        8    /* recent: EWMA 1/8 of success latencies */
#define SCHED_LAT_LONG          64   /* floor: the lowest EWMA 1/64 ... */
#define SCHED_LAT_FLOOR_AFTER   16   /* ... from the 16th success on */
#define SCHED_LAT_CLIP          2.0  /* a sample counts for at most 2 x recent */
#define SCHED_LAT_FACTOR        2.0  /* queueing: recent over 2 x floor ... */
#define SCHED_LAT_MIN_EXCESS_US 5000 /* ... and over floor + 5 ms */
#define SCHED_LAT_BACKOFF       0.9  /* then x0.9, once per window's worth of results */
#define SCHED_LAT_SS_EXIT       1.5  /* slow start ends at 1.5 x floor (+ 5 ms) */
#define SCHED_LAT_RELEARN       8    /* floor = recent after 8 latency cuts in a row */

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
/* Feed one finished attempt: its signal and, used only when sig is SCHED_OK, how long it
 * took in microseconds (request start to completion). */
void scheduler_on_result(scheduler *s, const char *ep_id, sched_signal sig, int64_t latency_us);
/* Forget endpoints not in ids[0..n) (called after an endpoint reload). */
void scheduler_keep_only(scheduler *s, const char *const *ids, size_t n);

/* The round-robin plan for one dispatch pass over n endpoints with ready[i] jobs ready,
 * inflight[i] in flight and window[i]: start[i] new transfers each, together at most
 * free_slots, each endpoint up to its window. *rr is the endpoint the pass starts with;
 * it moves on so the next pass starts after the last one served. Returns the total. */
int scheduler_plan(size_t n, const int *ready, const int *inflight, const int *window,
                   int free_slots, size_t *rr, int *start);

#endif
