/* hookq.h -- the hookq producer library: publish webhook events from C.
 *
 *     hookq_options o = {.url = "redis://127.0.0.1:6379/0"};
 *     hookq *h = hookq_connect(&o);
 *     if (hookq_error(h) != HOOKQ_OK) { fprintf(stderr, "%s\n", hookq_errstr(h)); ... }
 *     char id[HOOKQ_ID_MAX];
 *     if (hookq_publish(h, "task:transition", "{\"task\":42}", NULL, id, sizeof id) != HOOKQ_OK)
 *         fprintf(stderr, "publish: %s\n", hookq_errstr(h));
 *     hookq_free(h);
 *
 * A handle holds one Redis connection; it is not thread-safe (use one per thread).
 * hookq_connect never returns NULL except when out of memory; check hookq_error().
 * Link with -lhookq (build/lib/libhookq.a) and hiredis, jansson, OpenSSL crypto. */
#ifndef HOOKQ_H
#define HOOKQ_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. Never renumbered; new ones are added at the end. */
typedef enum hookq_err {
    HOOKQ_OK = 0,
    HOOKQ_EINVAL = 1,   /* bad argument: type, JSON data, id, tenant, URL */
    HOOKQ_ECONNECT = 2, /* cannot reach or authenticate to Redis */
    HOOKQ_EREDIS = 3,   /* Redis answered with an error */
    HOOKQ_ENOMEM = 4,   /* out of memory */
    HOOKQ_ETOOBIG = 5,  /* payload larger than max_payload */
    HOOKQ_EFULL = 6,    /* Redis is out of memory (maxmemory); nothing was written */
    HOOKQ_EIO = 7       /* connection lost or timed out during a command */
} hookq_err;

#define HOOKQ_ID_MAX 130 /* enough for any event id plus NUL */

typedef struct hookq_options {
    const char *url;            /* redis://[user:password@]host:port/db or unix:///path; required */
    const char *prefix;         /* key prefix; NULL = "hookq" */
    int64_t connect_timeout_ms; /* 0 = 5000 */
    int64_t command_timeout_ms; /* 0 = 5000 */
    size_t max_payload;         /* 0 = 1 MiB */
    int64_t idempotency_ttl_ms; /* 0 = 24 h */
} hookq_options;

typedef struct hookq_publish_opts {
    const char *id;       /* producer-chosen event id; a second publish within the
                             idempotency ttl publishes nothing and returns the same id */
    const char *tenant;   /* NULL = none */
    const char *endpoint; /* deliver to this endpoint id only; NULL = by subscription */
} hookq_publish_opts;

typedef struct hookq hookq; /* opaque */

hookq *hookq_connect(const hookq_options *opts);
void hookq_free(hookq *h);                 /* NULL-safe */
hookq_err hookq_error(const hookq *h);     /* error of the last call */
const char *hookq_errstr(const hookq *h);  /* its message (owned by h) */
const char *hookq_strerror(hookq_err err); /* static text for a code */

/* Publish one event. data is JSON text (any JSON value); type is an event type such as
 * "task:transition". On HOOKQ_OK, id_out (HOOKQ_ID_MAX bytes) holds the event id
 * (generated "evt_..." unless opts->id). Validates everything before touching Redis. */
hookq_err hookq_publish(hookq *h, const char *type, const char *data,
                        const hookq_publish_opts *opts, char *id_out, size_t id_len);

#ifdef __cplusplus
}
#endif
#endif
