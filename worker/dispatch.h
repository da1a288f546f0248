/* dispatch.h -- start transfers for READY jobs and settle them when they finish.
 *
 * For each READY job, in order: an endpoint the index does not know is DROPPED only if
 * the index was loaded (successfully) after the job was read; otherwise the job waits
 * and dispatch_run asks the loop for a reload. A disabled endpoint: DISABLED. An
 * endpoint at delivery.per_endpoint transfers waits; when the local queue is full, the
 * jobs waiting beyond per_endpoint for one busy endpoint are DEFERRED (handed back
 * through the delay zset, same attempt, due in 0.5-1 s) so one slow endpoint cannot
 * fill the queue. Otherwise the signed request (request.h) goes to the HTTP engine and
 * the job is INFLIGHT; when it finishes, job_decide says DELIVERED, RETRY or DEAD. An
 * attempt that cannot start (bad secret, OOM) is a failed attempt like any other. */
#ifndef HQ_DISPATCH_H
#define HQ_DISPATCH_H
#include <stdint.h>
#include "config.h"
#include "endpoint_index.h"
#include "http_engine.h"
#include "job.h"

typedef struct dispatch dispatch; /* opaque */

/* c and http must outlive it. NULL on OOM. */
dispatch *dispatch_new(const cfg *c, http_engine *http, uint64_t seed);
void dispatch_free(dispatch *d);

typedef struct dispatch_out {
    int need_reload; /* a job names an endpoint unknown to an index older than the job */
    int started;     /* transfers started */
} dispatch_out;

/* loaded_us: monotonic us of the last successful index load (0 = never). queue_full:
 * the local queue has no room (enables deferral). */
dispatch_out dispatch_run(dispatch *d, job_table *jobs, const epindex *eps, int64_t loaded_us,
                          int queue_full);

/* Counters since start, for the shutdown line. */
uint64_t dispatch_delivered(const dispatch *d);
uint64_t dispatch_failed(const dispatch *d);

#endif
