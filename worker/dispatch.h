/* dispatch.h -- start transfers for READY jobs and settle them when they finish.
 *
 * For each READY job: an endpoint the index does not know is DROPPED only if the index
 * was loaded (successfully) after the job was read; otherwise the job waits and
 * dispatch_run asks the loop for a reload. One whose hash does not parse: DEFERRED. A
 * disabled endpoint: DISABLED. The rest are grouped by endpoint and the scheduler
 * (scheduler.h) hands out the free slots: round-robin, each endpoint within its
 * adaptive window. Jobs beyond their endpoint's window wait in the local queue, leases
 * renewed, without a round trip through Redis; only when the queue is full does a job
 * that has waited over a second go back (DEFERRED: delay zset, same attempt, 0.5-1 s),
 * so reading goes on and the jobs of other endpoints behind it in the stream are read. A started
 * job is INFLIGHT with the signed request (request.h) on the HTTP engine; when it finishes, its
 * signal feeds the endpoint's window and job_decide says DELIVERED, RETRY or DEAD. An attempt that
 * cannot start (bad secret, OOM) is a failed attempt like any other. */
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
/* The per-endpoint windows (scheduler.h), for the loop to prune after a reload. */
struct scheduler *dispatch_scheduler(dispatch *d);

/* Counters since start, for the shutdown line. */
uint64_t dispatch_delivered(const dispatch *d);
uint64_t dispatch_failed(const dispatch *d);

#endif
