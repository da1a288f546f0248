/* event_cache.h -- an LRU cache of parsed events bounded in bytes (events.cache_memory),
 * keyed by events-stream entry id.
 *
 * Jobs fanned out by this worker find their event here without an XRANGE; retries and
 * jobs from other workers fetch it once and share it. Entries are reference counted:
 * a job holds a reference while it needs the event, so eviction never frees an event in
 * use. Not thread-safe. */
#ifndef HQ_EVENT_CACHE_H
#define HQ_EVENT_CACHE_H
#include <stddef.h>
#include "envelope.h"

typedef struct evcache_ev {
    char *sid;  /* stream entry id */
    envelope e; /* parsed fields */
    char *body; /* envelope_body, what receivers get */
    size_t bodylen;
    int refs;
    struct evcache_ev *prev, *next; /* LRU list (cache-internal) */
    int cached;
    size_t cost; /* bytes charged to the cache */
} evcache_ev;

typedef struct evcache evcache; /* opaque */

/* budget: the most bytes cached events may cost (bodies, parsed strings, bookkeeping).
 * The newest event is always kept, even alone over budget. NULL on OOM. */
evcache *evcache_new(size_t budget);
void evcache_free(evcache *c); /* drops the cache's references; events jobs still hold survive */

/* Lookup; on a hit the event becomes most recent and the caller gets a reference. */
evcache_ev *evcache_get(evcache *c, const char *sid);
/* Add a parsed event (takes *e by value: its fields move into the cache, e is zeroed).
 * Returns it with a reference for the caller, or NULL on OOM (e is cleared). Replaces
 * an older entry with the same sid. */
evcache_ev *evcache_put(evcache *c, const char *sid, envelope *e);
static inline evcache_ev *evcache_ref(evcache_ev *v) {
    v->refs++;
    return v;
}
void evcache_release(evcache_ev *v); /* NULL-safe; frees when the last reference goes */
size_t evcache_len(const evcache *c);
size_t evcache_bytes(const evcache *c); /* what the cached events cost now */

#endif
