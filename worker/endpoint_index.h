/* endpoint_index.h -- the worker's cached endpoint table and its matching index.
 *
 * Built from ep_load_table and replaced whole on reload (P:endpoints:version moved).
 * Matching an event costs a few hash lookups, never a scan of all endpoints:
 *   - exact patterns: map type -> endpoints
 *   - prefix patterns ("task:*"): map "task:" -> endpoints; an event type is looked up
 *     once per separator-terminated prefix of it ("a.b.c" -> "a.", "a.b.")
 *   - "*": one list
 *   - an event targeted at one endpoint: map id -> endpoint (pattern ignored)
 * Only enabled endpoints are in the pattern index; every endpoint is in the id map, so
 * a job can tell "disabled" from "deleted". The rule is ep_matches (common/ep.h); this
 * index gives the same answers without a scan (tests/unit/test_wket.c checks both agree). */
#ifndef HQ_ENDPOINT_INDEX_H
#define HQ_ENDPOINT_INDEX_H
#include <stddef.h>
#include "endpoint.h"
#include "signature.h"

typedef struct epindex_ent {
    ep *e;                           /* owned by the table */
    unsigned mark;                   /* dedupe stamp for one epindex_match call */
    unsigned char key[SIGN_KEY_MAX]; /* decoded secret */
    size_t keylen;                   /* 0 if the secret does not decode */
    unsigned char key_old[SIGN_KEY_MAX];
    size_t key_oldlen; /* 0 if no old secret (or it does not decode) */
} epindex_ent;

typedef struct epindex epindex; /* opaque */

epindex *epindex_new(void);    /* NULL on OOM */
void epindex_free(epindex *t); /* NULL-safe; frees every ep */

/* Replace the table with eps[0..n) (takes ownership of each ep and of the array, also
 * on error). HQ_ERR only on OOM (the table is then empty). */
int epindex_set(epindex *t, ep **eps, size_t n, char *err, size_t errlen);
size_t epindex_len(const epindex *t);
/* The i-th entry (i < epindex_len), for walking the table; its e may be NULL (taken). */
const epindex_ent *epindex_at(const epindex *t, size_t i);
/* Entry by endpoint id (enabled or not), NULL if unknown. Valid until the next epindex_set. */
const epindex_ent *epindex_get(const epindex *t, const char *id);

/* Take the ep of id out of t (the caller owns it now): for carrying an endpoint whose
 * newer hash does not parse over into the next table. t then behaves as if it did not
 * know id (get, match and mark skip it). NULL if unknown. */
ep *epindex_take(epindex *t, const char *id);
/* Ids that are in Redis but did not parse, with no older copy to keep: jobs for them
 * wait (dispatch defers them) instead of being dropped as deleted. HQ_ERR on OOM. */
int epindex_set_broken(epindex *t, const char *const *ids, size_t n);
int epindex_is_broken(const epindex *t, const char *id);

/* Mark an endpoint disabled in this table at once (this worker learned it from a
 * result, before the next reload): jobs for it are then not sent. 1 if it was known. */
int epindex_mark_disabled(epindex *t, const char *id);

/* A Retry-After paused an endpoint for the fleet until until_ms (unix): this table
 * knows at once, before the next reload (its jobs then go into its lanes). 1 if known. */
int epindex_mark_paused(epindex *t, const char *id, int64_t until_ms);

/* Endpoints that receive an event: type, tenant (NULL = none), target (NULL = by
 * subscription); enabled ones, and disabled ones that hold their events (on_disabled
 * hold: their jobs go into their lanes). *out points to an array owned by the table, valid until
 * the next call; returns its length. Each endpoint appears once. */
size_t epindex_match(epindex *t, const char *type, const char *tenant, const char *target,
                     epindex_ent *const **out);

#endif
