/* envelope.h -- the event envelope.
 *
 * In the events stream an event is the fields
 *   id <event id>  type <event type>  ts <unix ms>  data <JSON text>
 *   [tenant <tenant>] [endpoint <endpoint id>]
 * id and ts are optional for raw producers: a missing id becomes "evt_" + the stream
 * entry id without the dash, a missing ts the stream entry's millisecond time.
 * Receivers get the body
 *   {"id":"...","type":"...","timestamp":"<ISO 8601>","data":<data verbatim>[,"tenant":"..."]}
 * `data` is copied byte for byte from what was published, so the body is stable across
 * retries and equal to what the producer sent. */
#ifndef HQ_ENVELOPE_H
#define HQ_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>

typedef struct envelope_limits {
    size_t max_payload; /* max bytes of `data` (events.max_payload, default 1 MiB) */
    int max_depth;      /* max JSON nesting of `data` (events.max_depth, default 32) */
} envelope_limits;

typedef struct envelope {
    char *id;   /* event id (id_valid) */
    char *type; /* event type (pat_type_valid) */
    int64_t ts; /* unix ms */
    char *data; /* JSON text, verbatim */
    size_t datalen;
    char *tenant;   /* NULL if unset; [A-Za-z0-9_.:-]{1,128} */
    char *endpoint; /* NULL if unset; target one endpoint id */
} envelope;

/* Validate `data`: at most max_payload bytes, no NUL, valid UTF-8, one JSON value of
 * nesting depth <= max_depth. HQ_OK or HQ_ERR with the reason. */
int envelope_check_data(const char *data, size_t len, const envelope_limits *lim, char *err,
                        size_t errlen);
int envelope_tenant_valid(const char *tenant, char *err, size_t errlen);

/* Fill e from stream fields (names[i]/vals[i], with lengths; binary safe). stream_id is
 * the entry id ("1700000000000-0") used for defaults. Unknown fields are ignored.
 * Every check above applies; on HQ_ERR err says which field is wrong and why (this is
 * the reason written to the dead-letter stream). e owns copies; free with envelope_clear. */
int envelope_from_fields(envelope *e, const char *stream_id, size_t n, const char *const *names,
                         const size_t *nlens, const char *const *vals, const size_t *vlens,
                         const envelope_limits *lim, char *err, size_t errlen);
void envelope_clear(envelope *e); /* NULL-safe, zeroes e */

/* The body receivers get (malloc'd, NUL-terminated, *len set). NULL on OOM. */
char *envelope_body(const envelope *e, size_t *len);

#endif
