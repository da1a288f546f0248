/* event_fetch.h -- jobs whose event is not in the cache read it from the events stream:
 * one pipelined XRANGE per distinct event. Each FETCH job ends READY (event parsed and
 * cached) or DEAD (trimmed away, malformed, or unreadable five times); an error reply
 * leaves it FETCH for the next round. Never reconnects: LINK_IO goes back to the loop. */
#ifndef HQ_EVENT_FETCH_H
#define HQ_EVENT_FETCH_H
#include "config.h"
#include "event_cache.h"
#include "job.h"
#include "redis_link.h"

typedef struct event_fetch event_fetch; /* opaque: its pipeline */

event_fetch *event_fetch_new(void); /* NULL on OOM */
void event_fetch_free(event_fetch *f);

#define EVENT_FETCH_MAX_ERRORS 5

link_kind event_fetch_run(event_fetch *f, redis_link *l, const cfg *c, const char *k_events,
                          job_table *jobs, evcache *cache, char *err, size_t errlen);

#endif
