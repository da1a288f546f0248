/* intake.h -- jobs stream entries (from XREADGROUP, fanout.lua, XAUTOCLAIM or this
 * worker's own pending list) become jobs in the table.
 *
 * A good entry becomes a job in READY (its event is in the cache) or FETCH. An entry
 * already held is skipped: a stream entry is one job, however often it is read. A
 * malformed entry, or one claimed more than delivery.max_claims times, is settled to
 * the dead-letter stream through settle.lua (atomically with its ack, so it is never
 * acknowledged without its dead letter); a deleted entry (nil fields) is acknowledged.
 * Those writes go into `side`, sent by the loop with the next results. */
#ifndef HQ_INTAKE_H
#define HQ_INTAKE_H
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "config.h"
#include "event_cache.h"
#include "job.h"
#include "pipeline.h"

typedef struct intake_ctx {
    const cfg *c;
    job_table *jobs;
    evcache *cache;
    pipeline *side;
    const char *me; /* consumer name */
    const char *k_jobs, *k_delay, *k_dead;
} intake_ctx;

typedef struct intake_stats {
    size_t taken, held, dead, deleted, oom;
} intake_stats;

/* entries: an array of stream entries. claims (may be NULL): each entry's delivery
 * count. read_us: when the read that returned them was sent (monotonic us). */
intake_stats intake_take(const intake_ctx *x, const redisReply *entries, const int64_t *claims,
                         int64_t read_us);

/* Append settle.lua for a malformed jobs entry (mode "entry": dead letter + ack). */
void intake_dead_entry(const intake_ctx *x, const redisReply *entry, const char *reason);

#endif
