/* http_engine.h -- the HTTP engine: one libcurl multi handle driving many POSTs at once.
 *
 * The engine owns the easy handles (reused between requests: keep-alive connections
 * stay in the multi's connection cache) and only in-flight handles are in the multi.
 * It enforces: only http/https, no redirects, no proxy from the environment (only
 * cfg delivery.proxy), CURLOPT_NOSIGNAL, connect and total timeouts, a low-speed
 * limit, a response-body cap, and the address filter (addr_filter) on every socket it opens
 * (CURLOPT_OPENSOCKETFUNCTION), so DNS rebinding cannot reach a refused address.
 * Single-threaded: call everything from the worker's loop. */
#ifndef HQ_HTTP_ENGINE_H
#define HQ_HTTP_ENGINE_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "addr_filter.h"
#include "event_loop.h"

typedef struct http_engine http_engine; /* opaque */

typedef struct http_result {
    int curl_code;        /* CURLcode */
    long http_status;     /* 0 if none */
    int blocked;          /* the address filter refused the connection */
    int64_t latency_ms;   /* request start to completion */
    int64_t latency_us;   /* the same in microseconds (the scheduler's latency signal) */
    char error[256];      /* curl's error text or the block reason; "" on success */
    char excerpt[1024];   /* first bytes of the response body (cfg response_excerpt, <= 1023),
                             NUL-terminated, non-printable bytes replaced by '.' */
    char retry_after[64]; /* Retry-After header value, "" if absent */
} http_result;

/* Called once per submitted request when it ends (never from inside http_submit). The
 * result is valid only during the call. */
typedef void (*http_done_fn)(void *udata, const http_result *res);

/* NULL + err on failure. cfg, filter and loop must outlive the engine. Every socket
 * curl opens is watched in loop (event_loop.h), and moves when the loop runs, wherever
 * that is. http_new makes a loop of its own, run by http_poll. */
http_engine *http_new_in(const cfg *c, const addr_filter *filter, evloop *loop, char *err,
                         size_t errlen);
http_engine *http_new(const cfg *c, const addr_filter *filter, char *err, size_t errlen);
void http_free(
    http_engine *h); /* aborts transfers still in flight without calling their callbacks */

/* Start a POST. headers: n "Name: value" strings (copied). body is BORROWED: it must
 * stay valid and unchanged until done is called (the worker's job holds a reference to
 * the cached event that owns it), so a 1 MiB payload is never copied per attempt.
 * HQ_OK, or HQ_ERR if the engine is full or the request cannot be set up (then done is
 * never called). A URL that is not http(s) is not an error here: done reports it with
 * CURLE_URL_MALFORMAT. */
int http_submit(http_engine *h, const char *url, const char *const *headers, size_t n,
                const char *body, size_t bodylen, http_done_fn done, void *udata);
/* curl's timer: ms until http_tick must run (0 = now, -1 = no timer). A loop waits at
 * most this long, then calls http_tick, which runs curl's timeouts (and starts
 * transfers submitted since: curl starts a new handle from its timer). */
int http_timeout_ms(const http_engine *h);
void http_tick(http_engine *h);
/* 1 if some transfer has finished and waits for http_reap. */
int http_has_done(const http_engine *h);
/* Call the done callbacks of finished transfers (only here: never from a socket event).
 * Returns the number finished. */
int http_reap(http_engine *h);
/* For a caller without a loop of its own (tests, tools): tick, wait in the engine's loop
 * for up to timeout_ms (-1 = until something happens) if nothing has finished, tick
 * again, reap. Returns the number finished. */
int http_poll(http_engine *h, int timeout_ms);
int http_inflight(const http_engine *h);
int http_capacity(const http_engine *h); /* delivery.concurrency */

#endif
