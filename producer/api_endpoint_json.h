/* api_endpoint_json.h -- the endpoint as the API reads and writes it (docs/api.md "Endpoints").
 *
 * Bodies of POST /v1/endpoints and PATCH /v1/endpoints/{id} are validated and applied to
 * an ep here, with the rules `hookq endpoint add|update` apply to the same values
 * (common/validate.h, common/event_pattern.h, common/endpoint.h), so an endpoint the API
 * accepts is one the CLI would have accepted, and the other way round. The views are the
 * API's documented objects (docs/openapi/endpoints.yaml), built from ep_to_json. */
#ifndef HQ_API_ENDPOINT_JSON_H
#define HQ_API_ENDPOINT_JSON_H
#include <stdint.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include "api.h"
#include "endpoint.h"

#define EPJ_DESCRIPTION_MAX   1024    /* the CLI's DESCRIPTION_MAX: description and reason */
#define EPJ_MAX_IN_FLIGHT_MAX 1000000 /* the CLI's bounds for the count policies */
#define EPJ_HOLD_MAX_MAX      100000000
/* The disable reason when none is given: the CLI's, so both read the same. */
#define EPJ_DISABLED_BY_OPERATOR "disabled by operator"

typedef enum epj_mode {
    EPJ_CREATE, /* every field may be given; url is required; secret generated if absent */
    EPJ_UPDATE  /* only the fields given change; null clears an optional one; no secret */
} epj_mode;

/* What epj_apply changed that the caller must act on after saving. */
typedef struct epj_changes {
    int enabled; /* EPJ_UPDATE: "enabled" turned the endpoint on (reset its failures) */
} epj_changes;

/* Validate body (an object) and apply it to e, field by field in a fixed order (so one
 * body always reports the same first error). On error e may be half changed: the caller
 * works on a copy it loaded or made and does not save it. now_ms stamps
 * disabled_at when "enabled": false turns the endpoint off. A tenant key may only name
 * its own tenant ("tenant" absent on create means its own).
 * HQ_OK, or HQ_ERR with the answer set: 422 unknown_field, 422 invalid_field naming the
 * field, 403 forbidden (another tenant), 500 (out of memory). */
int epj_apply(api_req *rq, ep *e, const json_t *body, epj_mode mode, int64_t now_ms,
              epj_changes *ch);

/* The Endpoint object: ep_to_json's fields with the policies at the top level (as the
 * bodies take them), headers as an object, every time ISO 8601 or null, and failures
 * (the consecutive failed attempts, P:{ID}:failures). With show_secret, "secret" too
 * (create and rotate-secret only). New reference; NULL when out of memory. */
json_t *epj_view(const ep *e, long long failures, int show_secret);

/* One delivery log entry (docs/keys.md "Delivery log entry"; entry is one element of an
 * XRANGE reply, already checked to be [id, [field, value, ...]] with string parts) as the
 * DeliveryAttempt object: every field, numbers as numbers, empty texts as null, "time"
 * from the entry id. New reference; NULL when out of memory. */
json_t *epj_delivery(const redisReply *entry);

#endif
