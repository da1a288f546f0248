/* worker.h -- hookq-worker: fanout, signed delivery, results, retries, reclaim.
 *
 * One worker is one single-threaded event loop (docs/worker.md): a blocking Redis
 * connection used only for short commands, and the HTTP engine (http_engine) polled with short
 * timeouts between them. Nothing is shared with other workers but Redis. */
#ifndef HQ_WORKER_H
#define HQ_WORKER_H
#include <signal.h>
#include <stddef.h>
#include "config.h"

typedef struct worker worker; /* opaque */

/* Set up the address filter and HTTP engine (no Redis yet: worker_run connects, and keeps
 * retrying while Redis is down). c must outlive the worker. NULL + err on failure. */
worker *worker_new(const cfg *c, char *err, size_t errlen);
void worker_free(worker *w); /* NULL-safe */

/* The consumer name: cfg worker.name, else "<hostname>-<pid>". Owned by w. */
const char *worker_name(const worker *w);

/* Run until *stop becomes non-zero (set by a signal handler), then stop reading, let
 * in-flight deliveries finish within delivery.shutdown_grace, write their results and
 * return HQ_OK. Jobs not finished stay pending in Redis for other workers. */
int worker_run(worker *w, volatile sig_atomic_t *stop);

#endif
