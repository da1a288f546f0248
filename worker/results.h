/* results.h -- every finished job's result goes to Redis in one pipeline per round.
 *
 * What each final state writes is job_writes_of (job.h). Per round: the delivery log
 * line of every job, in completion order (XADD NOMKSTREAM, so a removed endpoint's log
 * is never created again; a first line goes through log.lua, which checks the endpoint
 * still exists); then per endpoint, its failure counter: DEL if the round only delivered
 * to it, else one fail.lua call carrying its successes and failed attempts in completion
 * order (so "fail, success, fail" ends at 1; it also keeps the circuit breaker's window
 * and moves the breaker, so an endpoint this worker saw fail within breaker.window, or
 * whose breaker is not closed, gets fail.lua for its successes too); then one settle_batch.lua call
 * for every RETRY / DEFERRED / DEAD job of the round (ownership and endpoint checked per job, the
 * writes before the acknowledgement), each script call at most 100 outcomes or jobs;
 * then one XACK and one XDEL for all the others. Lane jobs (docs/policies.md) settle on
 * their endpoint's slot instead: a dead letter or a delay-zset retry first, then one
 * lane_settle.lua per endpoint; adopted (LANED) jobs get lane_push.lua before the XACK. Done jobs
 * are freed afterwards, unless the link failed (LINK_IO): then they stay for the loop to write
 * again after reconnecting. Nothing here decides to reconnect or reload: the facts go back in
 * results_out. */
#ifndef HQ_RESULTS_H
#define HQ_RESULTS_H
#include <stddef.h>
#include "config.h"
#include "job.h"
#include "redis_link.h"

typedef struct results results; /* opaque: its pipelines */

typedef struct results_keys {
    const char *prefix, *jobs, *delay, *dead, *version, *events, *me;
} results_keys;

results *results_new(const cfg *c, const results_keys *k); /* copies nothing: k must live */
void results_free(results *r);

/* Whether the worker's cached endpoint ep_id has a breaker that is not closed: its
 * successes must then reach fail.lua (a probe's success closes the breaker) even when
 * this worker saw no failure of it. ctx is the caller's; without a function, never. */
typedef int (*results_breaker_fn)(const void *ctx, const char *ep_id);
void results_set_breaker_fn(results *r, results_breaker_fn fn, const void *ctx);

typedef struct results_out {
    link_kind kind;        /* LINK_IO: nothing freed, write again later */
    size_t jobs;           /* jobs written and freed */
    size_t refused;        /* writes refused with OOM (Redis full) */
    size_t accepted;       /* log lines / failure counts Redis accepted */
    size_t n_disabled;     /* endpoints found disabled (by us or already): stop sending */
    char *const *disabled; /* their ids, owned by r, valid until the next flush */
    size_t n_paused;       /* endpoints paused for the fleet by a Retry-After (pause.lua) */
    char *const *paused;   /* their ids, owned by r, valid until the next flush */
    size_t n_wake;         /* lane endpoints that still hold jobs: claim from them */
    char *const *wake;     /* their ids, owned by r, valid until the next flush */
    size_t breakers;       /* breakers this flush opened, closed or re-opened: reload */
} results_out;

results_out results_flush(results *r, redis_link *l, job_table *jobs);

#endif
