/* fanout.h -- a batch of events entries becomes delivery jobs, in one fanout.lua call.
 *
 * Each entry is parsed (stream_entry.h) and cached; good events are matched against the
 * endpoint index, bad ones become bounded dead letters (dead_letter.h). fanout.lua adds
 * the jobs, dead-letters and acknowledges in one atomic script, skipping entries no
 * longer pending for this consumer, then claims up to `room` new jobs for us. Endpoints
 * with lanes (ep_uses_lanes) get their jobs from lane_push.lua instead, one call per
 * endpoint, sent and answered before fanout.lua (docs/policies.md).
 * fanout_run returns what happened and leaves every decision to the loop: LINK_IO (the
 * link is down), FANOUT_STALE (reload the index and run the batch again), or done with
 * the claimed jobs to hand to intake. */
#ifndef HQ_FANOUT_H
#define HQ_FANOUT_H
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "config.h"
#include "endpoint_index.h"
#include "event_cache.h"
#include "redis_link.h"

typedef struct fanout fanout; /* opaque: its pipeline and buffers */

fanout *fanout_new(void); /* NULL on OOM */
void fanout_free(fanout *f);

typedef enum {
    FANOUT_DONE = 0, /* jobs added, events acknowledged (or nothing to do) */
    FANOUT_STALE,    /* the index is older than the endpoints in Redis: nothing done */
    FANOUT_FAILED    /* Redis refused the script (kind says why): the events stay pending */
} fanout_status;

typedef struct fanout_keys {
    const char *events, *jobs, *dead, *version, *me;
} fanout_keys;

typedef struct fanout_out {
    fanout_status status;
    link_kind kind; /* LINK_OK, LINK_IO, or the error kind of the script's reply */
    size_t good, bad, jobs, skipped;
    const redisReply *claimed; /* jobs entries claimed for us (owned by f, valid until the
                                  next fanout_run), NULL if none */
    link_kind claim_kind;      /* the kind of the claim's error, LINK_OK if none */
    char error[256];           /* the script's error text, for the log */
} fanout_out;

/* The endpoints the last fanout_run gave jobs in their lanes (lane_push.lua, sent and
 * answered before fanout.lua): the loop claims from them next. The ids are the index's,
 * valid until the next fanout_run or index reload. */
size_t fanout_lane_count(const fanout *f);
const char *fanout_lane_endpoint(const fanout *f, size_t i); /* i < fanout_lane_count */

/* entries: an array of events entries; claims (may be NULL): their delivery counts.
 * version: the index's endpoints version. room: jobs to claim afterwards. */
fanout_out fanout_run(fanout *f, redis_link *l, const cfg *c, const fanout_keys *k, epindex *eps,
                      int64_t version, evcache *cache, const redisReply *entries,
                      const int64_t *claims, size_t room);

#endif
