/* hookq_int.h -- libhookq internals shared with the CLI (not installed, not public).
 *
 * The CLI already holds a cfg and an rconn, so it publishes through the same code path as
 * hookq_publish without a second connection. */
#ifndef HOOKQ_INT_H
#define HOOKQ_INT_H
#include <stddef.h>
#include <stdint.h>
#include "envelope.h"
#include "hookq.h"
#include "redis_conn.h"

#define HOOKQ_SID_MAX 64 /* a stream entry id "ms-seq" as text, plus NUL */

typedef struct hookq__pub {
    const char *type; /* event type */
    const char *data; /* JSON text, datalen bytes, need not be NUL-terminated */
    size_t datalen;
    const hookq_publish_opts *opts; /* may be NULL */
} hookq__pub;

typedef struct hookq__pubres {
    char id[HOOKQ_ID_MAX];         /* event id */
    char stream_id[HOOKQ_SID_MAX]; /* events stream entry id */
    int added;                     /* 0 if an earlier publish with the same id was found */
} hookq__pubres;

/* Validate and publish one event on r (see hookq_publish). On error returns the code
 * and writes the message into err. */
hookq_err hookq__publish(rconn *r, const char *prefix, const envelope_limits *lim,
                         int64_t idem_ttl_ms, const hookq__pub *p, hookq__pubres *res, char *err,
                         size_t errlen);

/* Validation only (no Redis): HOOKQ_OK, HOOKQ_EINVAL or HOOKQ_ETOOBIG. */
hookq_err hookq__validate(const envelope_limits *lim, const hookq__pub *p, char *err,
                          size_t errlen);

#endif
