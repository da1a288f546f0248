/* reclaim.h -- the lease on pending work: hand out what a dead or hung worker held,
 * recover what this worker holds in Redis but lost locally, and renew what it holds.
 *
 *  - reclaim_round: one XAUTOCLAIM step (jobs or events idle over
 *    delivery.visibility_timeout, any consumer), with each entry's delivery count from
 *    one XPENDING over the claimed range. Entries deleted meanwhile are acknowledged.
 *  - reclaim_own: this consumer's own pending entries (XREADGROUP ... <id>): after a
 *    reconnect, replies lost to the outage left entries pending for us that we do not
 *    hold; they are taken again at once instead of after the visibility timeout.
 *  - reclaim_renew: renew.lua resets the idle time of every job we hold that is still
 *    pending for us, so no other worker reclaims a job that is only waiting for a slot.
 * The caller (the loop) hands the entries to intake or fanout and decides what a
 * LINK_IO means. Replies stay owned by r until its next call. */
#ifndef HQ_RECLAIM_H
#define HQ_RECLAIM_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "config.h"
#include "job.h"
#include "redis_link.h"

typedef enum { RECLAIM_JOBS = 0, RECLAIM_EVENTS, RECLAIM_STREAMS } reclaim_stream;

typedef struct reclaim reclaim; /* opaque */

/* keys[RECLAIM_JOBS], keys[RECLAIM_EVENTS]: the streams; me: the consumer. Borrowed. */
reclaim *reclaim_new(const cfg *c, const char *k_jobs, const char *k_events, const char *me);
void reclaim_free(reclaim *r);

typedef struct reclaim_batch {
    link_kind kind;            /* LINK_OK, LINK_IO, LINK_NOGROUP, ... */
    const redisReply *entries; /* claimed entries (may be empty), NULL on error */
    const int64_t *counts;     /* delivery count per entry (reclaim_round only) */
    int done;                  /* the scan reached the end: start over next time */
} reclaim_batch;

/* Start the next reclaim_round / reclaim_own scan of s from the beginning. */
void reclaim_restart(reclaim *r, reclaim_stream s);
reclaim_batch reclaim_round(reclaim *r, redis_link *l, reclaim_stream s, size_t count);
reclaim_batch reclaim_own(reclaim *r, redis_link *l, reclaim_stream s, size_t count);
/* Renew the leases of every job held in jobs. Returns the link kind. */
link_kind reclaim_renew(reclaim *r, redis_link *l, const job_table *jobs);

#endif
