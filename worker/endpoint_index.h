/* et.h -- the worker's cached endpoint table and its matching index.
 *
 * Built from ep_load_all and replaced whole on reload (P:endpoints:version moved).
 * Matching an event costs a few hash lookups, never a scan of all endpoints:
 *   - exact patterns: map type -> endpoints
 *   - prefix patterns ("task:*"): map "task:" -> endpoints; an event type is looked up
 *     once per separator-terminated prefix of it ("a.b.c" -> "a.", "a.b.")
 *   - "*": one list
 *   - an event targeted at one endpoint: map id -> endpoint (pattern ignored)
 * Only enabled endpoints are in the pattern index; every endpoint is in the id map, so
 * a job can tell "disabled" from "deleted". The rule is ep_matches (common/ep.h); this
 * index gives the same answers without a scan (tests/unit/test_wket.c checks both agree). */
#ifndef HQ_ET_H
#define HQ_ET_H
#include <stddef.h>
#include "endpoint.h"
#include "signature.h"

typedef struct et_ent {
    ep *e;                          /* owned by the table */
    unsigned mark;                  /* dedupe stamp for one et_match call */
    unsigned char key[SIG_KEY_MAX]; /* decoded secret */
    size_t keylen;                  /* 0 if the secret does not decode */
    unsigned char key_old[SIG_KEY_MAX];
    size_t key_oldlen; /* 0 if no old secret (or it does not decode) */
} et_ent;

typedef struct et et; /* opaque */

et *et_new(void);    /* NULL on OOM */
void et_free(et *t); /* NULL-safe; frees every ep */

/* Replace the table with eps[0..n) (takes ownership of each ep and of the array, also
 * on error). HQ_ERR only on OOM (the table is then empty). */
int et_set(et *t, ep **eps, size_t n, char *err, size_t errlen);
size_t et_len(const et *t);
/* Entry by endpoint id (enabled or not), NULL if unknown. Valid until the next et_set. */
const et_ent *et_get(const et *t, const char *id);

/* Endpoints that receive an event: type, tenant (NULL = none), target (NULL = by
 * subscription). *out points to an array owned by the table, valid until the next call;
 * returns its length. Each endpoint appears once. */
size_t et_match(et *t, const char *type, const char *tenant, const char *target,
                et_ent *const **out);

#endif
