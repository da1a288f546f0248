/* request.h -- the signed request for one attempt (pure: no I/O, unit-tested).
 *
 * Headers, in order: Content-Type, User-Agent, webhook-id (the event id),
 * webhook-timestamp (now, per attempt), webhook-signature ("v1,<sig>"; two,
 * space-separated, while an old secret is in its grace), X-Hookq-Event-Type,
 * X-Hookq-Delivery-Id, X-Hookq-Attempt, X-Hub-Signature-256 when the endpoint asks for
 * it, then the endpoint's own headers. The body is the cached event's, byte for byte. */
#ifndef HQ_REQUEST_H
#define HQ_REQUEST_H
#include <stddef.h>
#include <stdint.h>
#include "endpoint_index.h"
#include "event_cache.h"
#include "validate.h"

#define REQUEST_FIXED_HEADERS 10
#define REQUEST_MAX_HEADERS   (REQUEST_FIXED_HEADERS + VALIDATE_HEADERS_MAX)

typedef struct request {
    char *headers[REQUEST_MAX_HEADERS]; /* "Name: value", malloc'd */
    size_t n;
} request;

/* Build the headers of attempt `attempt` (delivery id dlv) at now_ms. HQ_OK, or
 * HQ_ERR + err (secret missing or undecodable, signing failed, OOM); out is then empty.
 * Free with request_clear either way. */
int request_build(request *out, const epindex_ent *en, const evcache_ev *ev, int attempt,
                  const char *dlv, int64_t now_ms, char *err, size_t errlen);
void request_clear(request *r);

#endif
