/* evp.h -- the event envelope.
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
#ifndef HQ_EVP_H
#define HQ_EVP_H
#include <stddef.h>
#include <stdint.h>

typedef struct evp_limits {
    size_t max_payload; /* max bytes of `data` (events.max_payload, default 1 MiB) */
    int max_depth;      /* max JSON nesting of `data` (events.max_depth, default 32) */
} evp_limits;

typedef struct evp {
    char *id;   /* event id (id_valid) */
    char *type; /* event type (pat_type_valid) */
    int64_t ts; /* unix ms */
    char *data; /* JSON text, verbatim */
    size_t datalen;
    char *tenant;   /* NULL if unset; [A-Za-z0-9_.:-]{1,128} */
    char *endpoint; /* NULL if unset; target one endpoint id */
} evp;

/* Validate `data`: at most max_payload bytes, no NUL, valid UTF-8, one JSON value of
 * nesting depth <= max_depth. HQ_OK or HQ_ERR with the reason. */
int evp_check_data(const char *data, size_t len, const evp_limits *lim, char *err, size_t errlen);
int evp_tenant_valid(const char *tenant, char *err, size_t errlen);

/* Fill e from stream fields (names[i]/vals[i], with lengths; binary safe). stream_id is
 * the entry id ("1700000000000-0") used for defaults. Unknown fields are ignored.
 * Every check above applies; on HQ_ERR err says which field is wrong and why (this is
 * the reason written to the dead-letter stream). e owns copies; free with evp_clear. */
int evp_from_fields(evp *e, const char *stream_id, size_t n, const char *const *names,
                    const size_t *nlens, const char *const *vals, const size_t *vlens,
                    const evp_limits *lim, char *err, size_t errlen);
void evp_clear(evp *e); /* NULL-safe, zeroes e */

/* The body receivers get (malloc'd, NUL-terminated, *len set). NULL on OOM. */
char *evp_body(const evp *e, size_t *len);

#endif
