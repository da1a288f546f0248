/* ec.h -- a bounded LRU cache of parsed events, keyed by events-stream entry id.
 *
 * Jobs fanned out by this worker find their event here without an XRANGE; retries and
 * jobs from other workers fetch it once and share it. Entries are reference counted:
 * a job holds a reference while it needs the event, so eviction never frees an event in
 * use. Not thread-safe. */
#ifndef HQ_EC_H
#define HQ_EC_H
#include <stddef.h>
#include "envelope.h"

typedef struct ec_ev {
    char *sid;  /* stream entry id */
    evp e;      /* parsed fields */
    char *body; /* evp_body, what receivers get */
    size_t bodylen;
    int refs;
    struct ec_ev *prev, *next; /* LRU list (cache-internal) */
    int cached;
} ec_ev;

typedef struct ec ec; /* opaque */

ec *ec_new(size_t cap); /* NULL on OOM */
void ec_free(ec *c);    /* drops the cache's references; events jobs still hold survive */

/* Lookup; on a hit the event becomes most recent and the caller gets a reference. */
ec_ev *ec_get(ec *c, const char *sid);
/* Add a parsed event (takes *e by value: its fields move into the cache, e is zeroed).
 * Returns it with a reference for the caller, or NULL on OOM (e is cleared). Replaces
 * an older entry with the same sid. */
ec_ev *ec_put(ec *c, const char *sid, evp *e);
static inline ec_ev *ec_ref(ec_ev *v) {
    v->refs++;
    return v;
}
void ec_release(ec_ev *v); /* NULL-safe; frees when the last reference goes */
size_t ec_len(const ec *c);

#endif
