/* api_endpoint_store.h -- what the endpoint routes read and change in Redis beyond
 * common/endpoint.c: an endpoint as a caller may see it, pages of endpoints, the failure
 * counters, and an endpoint's held jobs. Every function answers the request itself when
 * it fails (api.h's rules: 503 when Redis is unreachable, 507 when it is full, 500 for
 * anything else) and then returns HQ_ERR; the caller returns API_DONE. */
#ifndef HQ_API_ENDPOINT_STORE_H
#define HQ_API_ENDPOINT_STORE_H
#include <stddef.h>
#include <jansson.h>
#include "api.h"
#include "endpoint.h"
#include "ids.h"
#include "pipeline.h"

/* Run every command of p on the request's connection. HQ_OK when every reply came and
 * none is an error reply, or errors_ok (the caller reads them one by one). */
int eps_run(api_req *rq, pipeline *p, int errors_ok);

/* The endpoint path parameter 0 names, if the caller may see it, with its failure count.
 * 404 not_found when the id is malformed, no such endpoint exists, or it belongs to
 * another tenant than the caller's key (never revealing it exists); 500
 * endpoint_unreadable when its hash does not parse. *out is the caller's (ep_free). */
int eps_load(api_req *rq, ep **out, long long *failures);

/* P:{ID}:failures of each endpoint, in one round trip. */
int eps_failures(api_req *rq, ep *const *eps, size_t n, long long *out);

/* Which endpoints a list wants. */
typedef struct eps_filter {
    const char *tenant; /* only this tenant's endpoints; NULL: all */
    int enabled;        /* 1 enabled only, 0 disabled only, -1 both */
    int unreadable;     /* collect hashes that do not parse (admins see them) */
} eps_filter;

/* One page, in id order (ids are ULIDs: creation order). */
typedef struct eps_page {
    ep **eps; /* n endpoints */
    size_t n;
    long long *failures; /* n counts */
    json_t *unreadable;  /* [{"id","error"}] in the page's id range, if the filter asks */
    int more;            /* there are more after eps[n-1]: next_cursor is its id */
} eps_page;

/* Up to limit endpoints with ids after `after` ("" from the start) that match f. Reads
 * the id set, then the hashes in batches until the page is full, so a page costs its own
 * size plus one batch, not the whole table. pg is filled from scratch; eps_page_clear
 * frees it (also after HQ_ERR). */
int eps_list(api_req *rq, const eps_filter *f, const char *after, size_t limit, eps_page *pg);
void eps_page_clear(eps_page *pg);

/* Delete the jobs held in the endpoint's lanes, as `hookq endpoint enable --discard-held`
 * does (cli_lanes.c cli_lanes_discard): every lane, lanekeys, ready, the attempt counts
 * and state's n and h:<key> marks, in one MULTI under WATCH; jobs in flight keep their
 * counts and marks and finish. Tried a few times while fanouts keep adding keys, then
 * 409 conflict. *discarded: how many jobs were deleted. */
int eps_discard_held(api_req *rq, const char *id, long long *discarded);

#endif
