/* backoff.h -- retry timing: the backoff schedule with jitter, and Retry-After. */
#ifndef HQ_BACKOFF_H
#define HQ_BACKOFF_H
#include <stddef.h>
#include <stdint.h>

/* Delay before attempt `next_attempt` (2 = first retry) under `schedule` (n entries:
 * schedule[0] is the wait before attempt 2). Returns -1 when next_attempt > n + 1 (no
 * attempts left). jitter in [0,1): the delay is scaled by a factor uniformly drawn from
 * [1-jitter, 1+jitter] using rnd (any 64-bit random value; tests pass fixed ones). */
int64_t backoff_delay_ms(const int64_t *schedule, size_t n, int next_attempt, double jitter,
                         uint64_t rnd);

/* Parse a Retry-After header value: delay-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms). now_ms is the
 * current time. Dates in the past give 0. HQ_OK with *delay_ms set, or HQ_ERR. */
int backoff_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

#endif
