/* http_engine.c -- the HTTP engine (http_engine.h): one CURLM driving a pool of reusable easy
 * handles.
 *
 * Choices, and why:
 * - One multi handle per engine. Its connection cache is where keep-alive lives, so
 *   connections outlive the easy handle that opened them; CURLMOPT_MAXCONNECTS is the
 *   concurrency (one idle connection per possible in-flight transfer, bounded by the
 *   number of open files we are willing to hold). CURLMOPT_MAX_HOST_CONNECTIONS stays
 *   unset: per-endpoint limits are the caller's policy, not the transport's.
 * - Easy handles are pooled and created lazily up to delivery.concurrency. Only
 *   in-flight handles are in the multi; a finished one is removed and goes back to the
 *   free list. Options that never change (timeouts, callbacks, protocol limits, proxy)
 *   are set once at creation; per request only URL, header list and body are set, so
 *   no curl_easy_reset (which would also drop those fixed options) is needed. The
 *   request body is the caller's (borrowed until done: http_engine.h), never copied.
 * - Only http and https: the scheme is checked up front (such a request ends in the
 *   next http_poll with CURLE_URL_MALFORMAT, without touching the network,
 *   because a done callback never runs inside http_submit) and again by curl through
 *   CURLOPT_PROTOCOLS_STR. Redirects are never followed (FOLLOWLOCATION 0); a 3xx is
 *   an answer the classifier judges. REDIR_PROTOCOLS_STR is "http,https" as a second
 *   fence because curl 7.88 rejects "" with CURLE_BAD_FUNCTION_ARGUMENT.
 * - CURLOPT_PROXY is always set: "" unless delivery.proxy is configured, which makes
 *   curl ignore http_proxy/https_proxy/all_proxy from the environment. With a proxy,
 *   the socket the engine opens goes to the proxy, so the filter judges the proxy's
 *   address (allow its CIDR) and the proxy is trusted to police the target.
 * - SSRF: CURLOPT_OPENSOCKETFUNCTION asks addr_filter_allowed about every address curl is
 *   about to connect to (after DNS, so rebinding cannot slip past) and refuses with
 *   CURL_SOCKET_BAD. curl then reports CURLE_COULDNT_CONNECT; the engine turns that
 *   into blocked=1 with the filter's reason (a host whose refused address is followed
 *   by an allowed one that works is simply delivered). Reused connections were checked
 *   when they were opened, so checking at socket-open time covers every byte sent.
 * - Limits: total and connect timeouts, a low-speed limit (a trickling receiver must
 *   not hold a slot for the whole timeout; note curl counts the wait for the first
 *   response byte too, so low_speed_time also bounds the receiver's thinking time), a
 *   body cap enforced in the write callback (CURLOPT_MAXFILESIZE is not reliable for
 *   chunked bodies): the first bytes are kept as the excerpt, the rest is only counted, and past
 * delivery.max_response the transfer is aborted ("response body larger than N bytes"). Response
 * headers are capped at 64 KiB in total in the header callback, which also captures Retry-After.
 *   Memory per transfer is therefore fixed whatever the receiver sends.
 * - "Expect:" is sent empty so large bodies go out at once instead of waiting up to a
 *   second for a 100-continue that many receivers never send. TCP_NODELAY avoids the
 *   Nagle delay on small POSTs; TCP_KEEPALIVE finds dead idle connections. NOSIGNAL so
 *   curl never uses SIGALRM for DNS timeouts: the worker owns its signal handling.
 * - Driven by events, not polling: curl_multi_socket_action with every socket curl
 *   opens watched in the worker's event loop (event_loop.h, epoll) and curl's one timer
 *   kept here. A ready socket moves its transfer at once, from whatever wait the worker
 *   is in (its main wait or a Redis round trip), so transfers never wait for a loop
 *   iteration; the work per wake-up is proportional to the sockets that are ready, not
 *   to the transfers in flight (curl_multi_perform looked at all of them).
 * - Finished transfers are reaped only by http_reap (http_poll calls it), never from a
 *   socket callback: a transfer that ends during a Redis round trip waits in curl's
 *   message queue, so no done callback ever runs inside another stage. Reaped handles
 *   are removed from the multi and returned to the pool before their done callback runs
 *   (the callback gets a copy of the result), so a callback may submit again, and no
 *   handle is ever freed inside a curl callback. */
#include "http_engine.h"
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "event_loop.h"
#include "hq.h"

#define HE_MAX_HEADER_BYTES (64 * 1024) /* total response header bytes accepted */

typedef enum {
    HE_ABORT_NONE = 0,
    HE_ABORT_BODY,    /* response body over delivery.max_response */
    HE_ABORT_HEADERS, /* response headers over HE_MAX_HEADER_BYTES */
} http_abort;

typedef struct http_req {
    struct http_engine *h;
    CURL *easy;
    struct http_req *next; /* free list, or the list of finished-before-start requests */
    struct curl_slist *hdrs;
    http_done_fn done;
    void *udata;
    int64_t start_us;
    uint64_t body_bytes;     /* response body bytes seen so far */
    size_t header_bytes;     /* response header bytes seen so far */
    size_t excerpt_len;      /* bytes in res.excerpt */
    http_abort abort_reason; /* why a callback stopped the transfer */
    char errbuf[CURL_ERROR_SIZE];
    http_result res;
} http_req;

struct http_engine {
    const cfg *c;
    const addr_filter *filter;
    CURLM *multi;
    evloop *loop;     /* where curl's sockets are watched */
    int own_loop;     /* created by http_new: freed with the engine */
    int64_t timer_ms; /* curl's timer: mono ms it is due, -1 = none */
    int running;      /* transfers curl still runs (from socket_action) */
    int in_multi;     /* handles added and not yet removed */
    int global_init;  /* curl_global_init succeeded: pair it with a cleanup */
    http_req **pool;  /* every slot created so far, for http_free */
    int npool;
    int cap;              /* delivery.concurrency */
    int busy;             /* submitted and not yet handed to their done callback */
    http_req *free_list;  /* idle slots */
    http_req *early_head; /* ended in http_submit (refused scheme); delivered by http_poll */
    http_req *early_tail;
    size_t excerpt_max;
};

static int64_t http__mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t http__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t http__on_body(char *data, size_t size, size_t nmemb, void *userp) {
    http_req *r = userp;
    size_t n = size * nmemb;
    size_t keep = r->h->excerpt_max - r->excerpt_len;
    if (keep > n)
        keep = n;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)data[i];
        r->res.excerpt[r->excerpt_len++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '.';
    }
    r->res.excerpt[r->excerpt_len] = '\0';
    r->body_bytes += n;
    if (r->body_bytes > r->h->c->delivery_max_response_bytes) {
        r->abort_reason = HE_ABORT_BODY;
        return 0; /* anything but n aborts with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t http__on_header(char *data, size_t size, size_t nmemb, void *userp) {
    static const char name[] = "retry-after:";
    http_req *r = userp;
    size_t n = size * nmemb;
    r->header_bytes += n;
    if (r->header_bytes > HE_MAX_HEADER_BYTES) {
        r->abort_reason = HE_ABORT_HEADERS;
        return 0;
    }
    /* A new status line (after a 1xx, for instance) starts a new header block. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->res.retry_after[0] = '\0';
        return n;
    }
    if (n < sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
        return n;
    const char *v = data + sizeof name - 1;
    const char *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= sizeof r->res.retry_after)
        len = sizeof r->res.retry_after - 1;
    memcpy(r->res.retry_after, v, len);
    r->res.retry_after[len] = '\0';
    return n;
}

static curl_socket_t http__open_socket(void *clientp, curlsocktype purpose,
                                       struct curl_sockaddr *addr) {
    http_req *r = clientp;
    char reason[160];
    (void)purpose;
    reason[0] = '\0';
    if (!addr_filter_allowed(r->h->filter, &addr->addr, reason, sizeof reason)) {
        r->res.blocked = 1;
        snprintf(r->res.error, sizeof r->res.error, "address refused: %s",
                 reason[0] ? reason : "blocked by the address filter");
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* Options that are the same for every request this handle will ever carry. */
static int http__easy_setup(http_engine *h, http_req *r, char *err, size_t errlen) {
    const cfg *c = h->c;
    long low_speed_s = (long)((c->delivery_low_speed_time_ms + 999) / 1000);
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;

#define HE_SET(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    HE_SET(CURLOPT_PRIVATE, r);
    HE_SET(CURLOPT_NOSIGNAL, 1L);
    HE_SET(CURLOPT_FOLLOWLOCATION, 0L);
    HE_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HE_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    HE_SET(CURLOPT_PROXY, c->delivery_proxy ? c->delivery_proxy : "");
    HE_SET(CURLOPT_TIMEOUT_MS, (long)c->delivery_timeout_ms);
    HE_SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->delivery_connect_timeout_ms);
    if (c->delivery_low_speed_limit > 0 && low_speed_s > 0) {
        HE_SET(CURLOPT_LOW_SPEED_LIMIT, (long)c->delivery_low_speed_limit);
        HE_SET(CURLOPT_LOW_SPEED_TIME, low_speed_s);
    }
    HE_SET(CURLOPT_WRITEFUNCTION, http__on_body);
    HE_SET(CURLOPT_WRITEDATA, r);
    HE_SET(CURLOPT_HEADERFUNCTION, http__on_header);
    HE_SET(CURLOPT_HEADERDATA, r);
    HE_SET(CURLOPT_OPENSOCKETFUNCTION, http__open_socket);
    HE_SET(CURLOPT_OPENSOCKETDATA, r);
    HE_SET(CURLOPT_ERRORBUFFER, r->errbuf);
    HE_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    HE_SET(CURLOPT_TCP_NODELAY, 1L);
    HE_SET(CURLOPT_USERAGENT, "hookq/" HOOKQ_VERSION);
#undef HE_SET
    if (rc != CURLE_OK)
        return hq_seterr(err, errlen, "curl setup: %s", curl_easy_strerror(rc));
    return HQ_OK;
}

static void http__req_free(http_req *r) {
    if (!r)
        return;
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r);
}

static http_req *http__acquire(http_engine *h, char *err, size_t errlen) {
    http_req *r = h->free_list;
    if (r) {
        h->free_list = r->next;
        r->next = NULL;
        return r;
    }
    if (h->npool >= h->cap) {
        hq_seterr(err, errlen, "engine full (%d transfers in flight)", h->cap);
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    r->h = h;
    r->easy = curl_easy_init();
    if (!r->easy) {
        hq_seterr(err, errlen, "curl_easy_init failed");
        goto cleanup;
    }
    if (http__easy_setup(h, r, err, errlen) != HQ_OK)
        goto cleanup;
    h->pool[h->npool++] = r;
    return r;
cleanup:
    http__req_free(r);
    return NULL;
}

static void http__release(http_engine *h, http_req *r) {
    /* No dangling header list or borrowed body pointer in an idle handle. */
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    r->done = NULL;
    r->udata = NULL;
    r->next = h->free_list;
    h->free_list = r;
    h->busy--;
}

/* 1 if url starts with http:// or https:// (any case); else sets why. */
static int http__scheme_ok(const char *url, int *why) {
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
        return 1;
    /* CURLE_URL_MALFORMAT for both: the URL must change before any attempt can work.
     * curl's own CURLE_UNSUPPORTED_PROTOCOL then only ever means the receiver's answer
     * was not HTTP (curl: "Received HTTP/0.9 when not allowed"), a transfer error. */
    *why = CURLE_URL_MALFORMAT;
    return 0;
}

static int http__on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
static int http__on_timer(CURLM *m, long timeout_ms, void *userp);

http_engine *http_new(const cfg *c, const addr_filter *filter, char *err, size_t errlen) {
    return http_new_in(c, filter, NULL, err, errlen);
}

http_engine *http_new_in(const cfg *c, const addr_filter *filter, evloop *loop, char *err,
                         size_t errlen) {
    http_engine *h = NULL;
    if (!c || !filter) {
        hq_seterr(err, errlen, "http_new: config and address filter are required");
        return NULL;
    }
    if (c->delivery_concurrency <= 0) {
        hq_seterr(err, errlen, "delivery.concurrency must be positive");
        return NULL;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    h->c = c;
    h->filter = filter;
    h->timer_ms = -1;
    h->loop = loop;
    if (!h->loop) {
        h->loop = evloop_new(err, errlen);
        if (!h->loop) {
            free(h);
            return NULL;
        }
        h->own_loop = 1;
    }
    h->cap = c->delivery_concurrency;
    h->excerpt_max = c->delivery_response_excerpt < 0 ? 0 : (size_t)c->delivery_response_excerpt;
    if (h->excerpt_max > sizeof h->pool[0]->res.excerpt - 1)
        h->excerpt_max = sizeof h->pool[0]->res.excerpt - 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        hq_seterr(err, errlen, "curl_global_init failed");
        goto cleanup;
    }
    h->global_init = 1;
    h->pool = calloc((size_t)h->cap, sizeof *h->pool);
    h->multi = curl_multi_init();
    if (!h->pool || !h->multi) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    if (curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->cap) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http__on_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http__on_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        hq_seterr(err, errlen, "curl_multi_setopt failed");
        goto cleanup;
    }
    return h;
cleanup:
    http_free(h);
    return NULL;
}

void http_free(http_engine *h) {
    if (!h)
        return;
    for (int i = 0; i < h->npool; i++) {
        /* Removing a handle that is not in the multi is a harmless no-op. */
        if (h->multi)
            curl_multi_remove_handle(h->multi, h->pool[i]->easy);
        http__req_free(h->pool[i]);
    }
    free(h->pool);
    /* cleanup calls the socket callback with REMOVE for sockets still open: the loop
     * must still exist (it is freed below, or by its owner after us) */
    curl_multi_cleanup(h->multi);
    if (h->own_loop)
        evloop_free(h->loop);
    if (h->global_init)
        curl_global_cleanup();
    free(h);
}

static int http__set_request(http_req *r, const char *url, const char *const *headers, size_t n,
                             const char *body, size_t bodylen, char *err, size_t errlen) {
    struct curl_slist *list = NULL, *tmp;
    CURLcode rc;
    for (size_t i = 0; i <= n; i++) {
        /* The trailing empty Expect stops curl from waiting for 100-continue. */
        tmp = curl_slist_append(list, i < n ? headers[i] : "Expect:");
        if (!tmp) {
            curl_slist_free_all(list);
            return hq_seterr(err, errlen, "out of memory building headers");
        }
        list = tmp;
    }
    rc = curl_easy_setopt(r->easy, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, list);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, bodylen ? body : "");
    if (rc != CURLE_OK) {
        curl_slist_free_all(list);
        return hq_seterr(err, errlen, "curl setup: %s", curl_easy_strerror(rc));
    }
    r->hdrs = list;
    return HQ_OK;
}

int http_submit(http_engine *h, const char *url, const char *const *headers, size_t n,
                const char *body, size_t bodylen, http_done_fn done, void *udata) {
    char err[HQ_ERRLEN];
    int why = CURLE_OK;
    http_req *r;
    if (!h || !url || !done || (n && !headers) || (bodylen && !body))
        return HQ_ERR;
    r = http__acquire(h, err, sizeof err);
    if (!r)
        return HQ_ERR;
    h->busy++;
    r->done = done;
    r->udata = udata;
    r->start_us = http__mono_us();
    r->body_bytes = 0;
    r->header_bytes = 0;
    r->excerpt_len = 0;
    r->abort_reason = HE_ABORT_NONE;
    r->errbuf[0] = '\0';
    memset(&r->res, 0, sizeof r->res);

    if (!http__scheme_ok(url, &why)) {
        r->res.curl_code = why;
        snprintf(r->res.error, sizeof r->res.error, "%s",
                 why == CURLE_URL_MALFORMAT ? "URL has no scheme"
                                            : "URL scheme is not http or https");
        if (h->early_tail)
            h->early_tail->next = r;
        else
            h->early_head = r;
        h->early_tail = r;
        return HQ_OK;
    }
    if (http__set_request(r, url, headers, n, body, bodylen, err, sizeof err) != HQ_OK ||
        curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        http__release(h, r);
        return HQ_ERR;
    }
    h->in_multi++; /* curl sets its timer to 0: the next http_tick starts it */
    return HQ_OK;
}

/* Fill r->res from a finished transfer. */
static void http__finish(http_req *r, CURLcode code) {
    long status = 0;
    r->res.curl_code = (int)code;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->res.http_status = status;
    r->res.latency_us = http__mono_us() - r->start_us;
    r->res.latency_ms = r->res.latency_us / 1000;
    if (code == CURLE_OK) {
        /* A refused first address followed by a working second one is a success. */
        r->res.blocked = 0;
        r->res.error[0] = '\0';
        return;
    }
    if (r->res.blocked && code == CURLE_COULDNT_CONNECT)
        return; /* error already holds the filter's reason */
    r->res.blocked = 0;
    if (r->abort_reason == HE_ABORT_BODY)
        snprintf(r->res.error, sizeof r->res.error, "response body larger than %llu bytes",
                 (unsigned long long)r->h->c->delivery_max_response_bytes);
    else if (r->abort_reason == HE_ABORT_HEADERS)
        snprintf(r->res.error, sizeof r->res.error, "response headers larger than %d bytes",
                 HE_MAX_HEADER_BYTES);
    else
        snprintf(r->res.error, sizeof r->res.error, "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
}

/* Hand r's result to its callback: the slot is recycled first, so the callback may
 * submit again and even reuse it; it reads a copy. */
static void http__deliver(http_engine *h, http_req *r) {
    http_result res = r->res;
    http_done_fn done = r->done;
    void *udata = r->udata;
    http__release(h, r);
    done(udata, &res);
}

/* ---- events ---------------------------------------------------------------------- */

static void http__on_ready(void *ud, int fd, int events) {
    http_engine *h = ud;
    int flags = (events & EVL_IN ? CURL_CSELECT_IN : 0) |
                (events & EVL_OUT ? CURL_CSELECT_OUT : 0) |
                (events & EVL_ERR ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(h->multi, fd, flags, &h->running);
}

static int http__on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    http_engine *h = userp;
    (void)e;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        evloop_unwatch(h->loop, s);
        return 0;
    }
    int ev = (what & CURL_POLL_IN ? EVL_IN : 0) | (what & CURL_POLL_OUT ? EVL_OUT : 0);
    /* -1 tells curl to fail the transfers on this socket rather than wait forever */
    return evloop_watch(h->loop, s, ev, http__on_ready, h) == HQ_OK ? 0 : -1;
}

static int http__on_timer(CURLM *m, long timeout_ms, void *userp) {
    http_engine *h = userp;
    (void)m;
    /* never call curl from here: http_tick runs it */
    h->timer_ms = timeout_ms < 0 ? -1 : http__mono_ms() + timeout_ms;
    return 0;
}

int http_timeout_ms(const http_engine *h) {
    if (!h)
        return -1;
    if (h->early_head)
        return 0;
    if (h->timer_ms < 0)
        return -1;
    int64_t left = h->timer_ms - http__mono_ms();
    return left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

void http_tick(http_engine *h) {
    if (!h || h->timer_ms < 0 || h->timer_ms > http__mono_ms())
        return;
    h->timer_ms = -1; /* curl sets it again if it wants */
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &h->running);
}

int http_has_done(const http_engine *h) {
    return h && (h->early_head || h->running < h->in_multi);
}

int http_reap(http_engine *h) {
    int finished = 0;
    http_req *ready = NULL, **tail = &ready;
    CURLMsg *m;
    int left;

    if (!h)
        return 0;
    /* Requests refused before start. Detach the list first: a callback may submit
     * another one, which then waits for the next call instead of looping here. */
    ready = h->early_head;
    h->early_head = h->early_tail = NULL;
    while (ready) {
        http_req *r = ready;
        ready = r->next;
        r->next = NULL;
        r->res.latency_us = http__mono_us() - r->start_us;
        r->res.latency_ms = r->res.latency_us / 1000;
        http__deliver(h, r);
        finished++;
    }
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        http_req *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        http__finish(r, m->data.result);
        /* m is invalid after this call, and it is the last use of it. */
        curl_multi_remove_handle(h->multi, r->easy);
        h->in_multi--;
        *tail = r;
        tail = &r->next;
    }
    while (ready) {
        http_req *r = ready;
        ready = r->next;
        r->next = NULL;
        http__deliver(h, r);
        finished++;
    }
    return finished;
}

int http_poll(http_engine *h, int timeout_ms) {
    if (!h)
        return 0;
    http_tick(h);
    if (!http_has_done(h) && timeout_ms != 0) {
        int t = http_timeout_ms(h);
        if (t < 0 || (timeout_ms >= 0 && t > timeout_ms))
            t = timeout_ms;
        evloop_run(h->loop, t);
        http_tick(h);
    }
    return http_reap(h);
}

int http_inflight(const http_engine *h) {
    return h ? h->busy : 0;
}

int http_capacity(const http_engine *h) {
    return h ? h->cap : 0;
}
