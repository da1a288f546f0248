/* lane_claim.h -- claim jobs from the lanes of the endpoints that have them
 * (docs/policies.md): one lane_claim.lua per endpoint, all in one pipeline, with the
 * watermark read first (watermark.lua) when an ordered endpoint is among them.
 *
 * Every endpoint of the index with ep_claims_lanes has a due time (monotonic ms): now
 * when it is new, woken (fanout pushed to it, results say its lanes still hold jobs),
 * or a claim got all it asked for; else when lane_claim.lua said something may be
 * claimable (a retry's due time, the rate limit, a lease expiring), at most
 * LCLAIM_POLL_MS away, so other workers' work and expired leases are found. Claimed
 * jobs become jobs in the table (READY if their event is cached, else FETCH) with
 * j->lane set. */
#ifndef HQ_LANE_CLAIM_H
#define HQ_LANE_CLAIM_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "endpoint_index.h"
#include "event_cache.h"
#include "job.h"
#include "redis_link.h"

#define LCLAIM_POLL_MS 1000

typedef struct lclaim lclaim; /* opaque */

/* c, me and k_events must outlive it. NULL on OOM. */
lclaim *lclaim_new(const cfg *c, const char *me, const char *k_events);
void lclaim_free(lclaim *x);

/* After a reload: the endpoints to claim from are those of eps with ep_claims_lanes;
 * new ones are due now, gone ones forgotten. */
void lclaim_sync(lclaim *x, const epindex *eps);
/* Due now (ignored for an endpoint not synced). */
void lclaim_wake(lclaim *x, const char *ep_id);
/* Monotonic ms of the earliest due endpoint; -1 if there is none. */
int64_t lclaim_next_ms(const lclaim *x);
size_t lclaim_count(const lclaim *x); /* endpoints claimed from */

typedef struct lclaim_out {
    link_kind kind; /* LINK_OK, LINK_IO, or the kind of an error reply */
    size_t jobs;    /* jobs claimed into the table */
    size_t calls;   /* lane_claim.lua calls made */
    char error[256];
} lclaim_out;

/* How many more jobs of endpoint ep_id this worker should take now (what it can send
 * soon: its window there minus what it holds), so one worker does not take a fleet-wide
 * limit's every slot and leave them waiting for its own window while others idle. */
typedef size_t (*lclaim_cap_fn)(void *ud, const char *ep_id);

/* Claim from the due endpoints, at most room jobs in all, at most cap(ud, id) from
 * each (cap may be NULL: no cap). An endpoint capped at 0 waits for a wake (its own
 * jobs finishing). read_us: monotonic us now. */
lclaim_out lclaim_run(lclaim *x, redis_link *l, job_table *jobs, evcache *cache, size_t room,
                      lclaim_cap_fn cap, void *ud, int64_t read_us);

#endif
