/* wk.h -- hookq-worker: fanout, signed delivery, results, retries, reclaim.
 *
 * One wk is one single-threaded event loop (docs/worker.md): a blocking Redis
 * connection used only for short commands, and the HTTP engine (he) polled with short
 * timeouts between them. Nothing is shared with other workers but Redis. */
#ifndef HQ_WK_H
#define HQ_WK_H
#include <signal.h>
#include <stddef.h>
#include "config.h"

typedef struct wk wk; /* opaque */

/* Set up the address filter and HTTP engine (no Redis yet: wk_run connects, and keeps
 * retrying while Redis is down). c must outlive the worker. NULL + err on failure. */
wk *wk_new(const cfg *c, char *err, size_t errlen);
void wk_free(wk *w); /* NULL-safe */

/* The consumer name: cfg worker.name, else "<hostname>-<pid>". Owned by w. */
const char *wk_name(const wk *w);

/* Run until *stop becomes non-zero (set by a signal handler), then stop reading, let
 * in-flight deliveries finish within delivery.shutdown_grace, write their results and
 * return HQ_OK. Jobs not finished stay pending in Redis for other workers. */
int wk_run(wk *w, volatile sig_atomic_t *stop);

#endif
