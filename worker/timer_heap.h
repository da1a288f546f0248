/* timer_heap.h -- the worker's timers: a binary min-heap of deadlines (pure, unit-tested).
 *
 * Timers are named by small integer ids fixed by the caller (0..n-1), each set at most
 * once: setting one that is set moves it. The loop sleeps until theap_next and then
 * pops what is due, so nothing runs on a fixed cadence: a timer exists only while
 * something is due at that time. Times are whatever clock the caller uses (the worker:
 * monotonic ms). O(log n) set/cancel/pop, O(1) next. */
#ifndef HQ_TIMER_HEAP_H
#define HQ_TIMER_HEAP_H
#include <stdint.h>

#define THEAP_NEVER INT64_MAX

typedef struct timer_heap timer_heap; /* opaque */

timer_heap *theap_new(int n_ids); /* NULL on OOM or n_ids <= 0 */
void theap_free(timer_heap *t);   /* NULL-safe */

/* Set (or move) timer id to fire at due. Ids out of range are ignored. */
void theap_set(timer_heap *t, int id, int64_t due);
/* Set it to due only if it is not set or set later (never postpones). */
void theap_set_earlier(timer_heap *t, int id, int64_t due);
void theap_cancel(timer_heap *t, int id); /* no-op if not set */
int theap_is_set(const timer_heap *t, int id);
/* When id fires (THEAP_NEVER if not set). */
int64_t theap_due(const timer_heap *t, int id);

/* The earliest deadline of all, THEAP_NEVER if none is set. */
int64_t theap_next(const timer_heap *t);
/* One timer whose deadline is <= now, removed from the heap (earliest first); -1 if none. */
int theap_pop_due(timer_heap *t, int64_t now);

#endif
