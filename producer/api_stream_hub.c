/* api_stream_hub.c -- the hub that feeds every GET /v1/stream from one Redis read loop
 * (docs/api.md "The live stream"; the handlers are in api_stream.c).
 *
 * The hub is one thread with two Redis connections: `live` holds an XREAD BLOCK on the
 * events stream from the newest id it has seen, `cmd` serves the short commands
 * (XRANGE pages for resuming clients, XINFO). Each entry is formatted once into a
 * refcounted frame and a reference is queued on every client whose filter it passes.
 *
 * A client is one libmicrohttpd connection with a callback response. Its content reader
 * (on MHD's thread for that connection) drains the queue; with nothing queued it
 * suspends the connection and the hub resumes it when something arrives. Resuming costs
 * a wakeup of MHD's thread per connection, so the hub resumes at most every WAKE_MS:
 * with 1,000 clients and 100 events/s that is 20 rounds a second instead of 100.
 *
 * No gap, no repeat: the hub thread alone moves `last` (the id up to which the live feed
 * has been handed out) and alone reads a resuming client's backlog, with XRANGE
 * (cursor, last]. When a page comes back short the client has reached `last` and turns
 * live: from then on the live feed, which covers everything after `last`, feeds it.
 * Because one thread does both, nothing can pass between the two. The same path takes
 * back a live client that a burst overflowed while it was waiting for data: it reads the
 * rest as pages, paced by its own reading. A client whose queue overflows while its
 * reader is busy (its socket is full) is too slow, and is cut off.
 *
 * Locks: hub->mu guards the client list, `last` and `stopping`; each client's mu guards
 * its queue and flags. Order: hub->mu, then a client's mu, then MHD's own (suspend and
 * resume take its cleanup mutex, which MHD never holds while calling us). A client is
 * refcounted: one reference for the response (dropped when MHD frees it), one while the
 * hub works on it outside hub->mu. */
#define _GNU_SOURCE
#include "api_stream_hub.h"

#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "envelope.h"
#include "event_pattern.h"
#include "hq.h"
#include "log.h"
#include "redis_keys.h"
#include "timestamp.h"

#define WAKE_MS       50    /* resume suspended clients at most this often */
#define READ_COUNT    256   /* entries per live XREAD (bounds one reply's memory) */
#define READ_BLOCK_MS 5000  /* XREAD BLOCK; a reply later than this + 5 s means a dead link */
#define PAGE_COUNT    128   /* entries per catch-up XRANGE */
#define PAGES_PER_RUN 16    /* catch-up pages read per loop turn, so the live feed keeps up */
#define TICK_MS       250   /* heartbeats and deadlines are looked at this often */
#define CUT_GRACE_MS  2000  /* a cut-off client has this long to read its error event */
#define STALL_MS      10000 /* a catching-up client that takes nothing this long is cut */
#define STOP_GRACE_MS 1000  /* at shutdown, streams drain this long, then are shut */
#define BACKOFF_MIN   100
#define BACKOFF_MAX   2000
#define BLOCK_SIZE    4096 /* MHD's own buffer per response: only HTTP/1.0 clients use it */
#define RETRY_TEXT    "retry: 3000\n\n"
#define PING_TEXT     ": ping\n\n"

typedef enum client_state {
    CL_CATCHUP = 0, /* reading its backlog with XRANGE pages */
    CL_LIVE         /* fed by the live XREAD */
} client_state;

typedef enum client_end {
    END_NONE = 0,
    END_CUT, /* too slow: its error event is queued; the connection is closed after it */
    END_STOP /* the server stops: the stream ends after what is queued */
} client_end;

typedef struct stream_client stream_client;
struct stream_client {
    stream_hub *hub;
    struct MHD_Connection *conn;
    int fd;
    _Atomic int refs;
    pthread_mutex_t mu;
    /* under mu */
    sse_queue q;
    int suspended;              /* suspended by our reader: only then may the hub resume it */
    int woken;                  /* resumed by the hub, its reader not yet run since */
    client_end end;             /* END_NONE, or how the stream ends once the queue drains */
    int shut;                   /* shutdown(2) already done */
    int64_t end_deadline;       /* mono ms: an ended client not drained by then is shut */
    int64_t last_enq;           /* mono ms: when anything was last queued (heartbeats) */
    int64_t last_take;          /* mono ms: when its reader last took bytes */
    int page_wanted;            /* CL_CATCHUP: the queue is low, read the next page */
    int gone;                   /* the response was freed: nothing will read the queue */
    int listed;                 /* on the hub's list (under hub->mu) */
    client_state state;         /* written by the hub thread only */
    sse_sid cursor;             /* the last id it got (or skipped by its filter) */
    sse_sid requested;          /* the id it resumed after (for the reset event) */
    int trim_checked;           /* CL_CATCHUP: the reset check was done */
    sse_filter flt;             /* read-only after registration */
    stream_client *prev, *next; /* the hub's list, under hub->mu */
    char peer[64];
};

struct stream_hub {
    api_ctx *ctx;
    const cfg *c;
    char key[256]; /* P:{q}:events */
    envelope_limits lim;
    size_t low_water; /* a catching-up client gets its next page below this */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a client leaves (stop waits for none) */
    stream_client *head;
    size_t nclients;
    sse_sid last;  /* the live feed has handed out everything up to here */
    int have_last; /* last is known (Redis was reached once) */
    int stopping;
    int started;
    pthread_t thr;
    int efd; /* eventfd: pokes the hub (a new client, a page wanted, stop) */
    sse_frame *ping, *retry;
    /* hub thread only */
    rconn *live, *cmd;
    int xread_out;      /* an XREAD is in flight on live */
    int64_t xread_sent; /* mono ms */
    int64_t retry_at;   /* mono ms: next connect attempt */
    int64_t backoff;    /* ms */
    int64_t cmd_retry_at;
    int wake_pending;
    int wake_urgent; /* resume without waiting out WAKE_MS */
    int64_t last_wake;
    int64_t next_tick;
    int down_logged;
};

/* ---- clients ------------------------------------------------------------------------ */

static void client_unref(stream_client *c) {
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    sse_queue_clear(&c->q);
    sse_filter_clear(&c->flt);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void hub_poke(stream_hub *h) {
    uint64_t one = 1;
    if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        LOG_D("api: stream: hub wakeup failed: %s", strerror(errno));
}

/* Cut c off (c->mu held): its error event is queued past the cap (it is small, and it
 * says why the stream ends), then the connection is closed once that is out or after
 * CUT_GRACE_MS. why: "too slow", "stalled", "out of memory". */
static void client_cut(stream_hub *h, stream_client *c, int64_t now, const char *why) {
    char text[512];
    int n;
    sse_frame *f;
    c->end = END_CUT;
    c->end_deadline = now + CUT_GRACE_MS;
    if (strcmp(why, "stalled") == 0)
        n = snprintf(text, sizeof(text),
                     "event: error\ndata: {\"code\":\"slow_consumer\",\"detail\":\"stalled: "
                     "this client took nothing for %d s while catching up; reconnect with "
                     "Last-Event-ID to resume\"}\n\n",
                     STALL_MS / 1000);
    else
        n = snprintf(text, sizeof(text),
                     "event: error\ndata: {\"code\":\"slow_consumer\",\"detail\":\"%s: more "
                     "than api.stream_buffer (%" PRIu64 " bytes) was waiting for this client; "
                     "reconnect with Last-Event-ID to resume\"}\n\n",
                     why, (uint64_t)h->c->api_stream_buffer);
    f = n > 0 ? sse_frame_control(text, (size_t)n) : NULL;
    if (f && sse_queue_push(&c->q, f) != HQ_OK)
        LOG_D("api: stream: no memory for the error event of %s", c->peer);
    sse_frame_unref(f);
    LOG_W("api: stream: %s cut off (%s): %zu bytes queued, api.stream_buffer %" PRIu64, c->peer,
          why, c->q.bytes, (uint64_t)h->c->api_stream_buffer);
}

/* Queue a frame on c (c->mu held). A client whose queue would pass api.stream_buffer is
 * cut off instead; an empty queue always takes one frame, so a single event bigger than
 * the buffer still goes out. Returns 1 when the client was cut. */
static int client_push(stream_hub *h, stream_client *c, sse_frame *f, int64_t now) {
    if (c->end != END_NONE)
        return 0;
    if (c->q.n && c->q.bytes + f->len > h->c->api_stream_buffer) {
        client_cut(h, c, now, "too slow");
        return 1;
    }
    if (sse_queue_push(&c->q, f) != HQ_OK) {
        client_cut(h, c, now, "out of memory");
        return 1;
    }
    c->last_enq = now;
    return 0;
}

/* MHD's content reader: hand out what is queued, else suspend until the hub resumes. */
static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_client *c = cls;
    stream_hub *h = c->hub;
    size_t n;
    int want_page = 0;
    (void)pos;
    pthread_mutex_lock(&c->mu);
    c->woken = 0;
    n = sse_queue_take(&c->q, buf, max);
    if (n) {
        c->last_take = ts_mono_ms();
        if (c->state == CL_CATCHUP && !c->page_wanted && c->q.bytes < h->low_water) {
            c->page_wanted = 1;
            want_page = 1;
        }
        pthread_mutex_unlock(&c->mu);
        if (want_page)
            hub_poke(h);
        return (ssize_t)n;
    }
    if (c->end != END_NONE) {
        client_end end = c->end;
        pthread_mutex_unlock(&c->mu);
        /* A cut client's connection is closed (its chunked body left open on purpose, so
         * no client takes the end for a clean one); at shutdown the body ends properly. */
        return end == END_CUT ? MHD_CONTENT_READER_END_WITH_ERROR
                              : MHD_CONTENT_READER_END_OF_STREAM;
    }
    c->suspended = 1;
    MHD_suspend_connection(c->conn);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* MHD frees the response: the connection is done with this client. */
static void client_done(void *cls) {
    stream_client *c = cls;
    stream_hub *h = c->hub;
    pthread_mutex_lock(&h->mu);
    if (c->listed) {
        if (c->prev)
            c->prev->next = c->next;
        else
            h->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        c->listed = 0;
        h->nclients--;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&c->mu);
    c->gone = 1;
    pthread_mutex_unlock(&c->mu);
    LOG_D("api: stream: %s closed", c->peer);
    client_unref(c);
}

/* ---- the hub: Redis ------------------------------------------------------------------- */

static int64_t backoff_next(stream_hub *h) {
    int64_t b = h->backoff ? h->backoff : BACKOFF_MIN;
    h->backoff = b * 2 > BACKOFF_MAX ? BACKOFF_MAX : b * 2;
    return b;
}

/* Make sure rc is connected (a new one, or a reconnect). HQ_ERR when Redis is down. */
static int hub_connect(stream_hub *h, rconn **rc, char *err, size_t errlen) {
    if (*rc && rconn_connected(*rc))
        return HQ_OK;
    if (!*rc) {
        *rc = rconn_connect(h->c->redis_url, h->c->redis_connect_timeout_ms,
                            h->c->redis_command_timeout_ms, err, errlen);
        return *rc ? HQ_OK : HQ_ERR;
    }
    return rconn_reconnect(*rc, err, errlen);
}

static redisReply *cmd_run(stream_hub *h, int argc, const char **argv, char *err, size_t errlen) {
    redisReply *rep;
    if (hub_connect(h, &h->cmd, err, errlen) != HQ_OK)
        return NULL;
    rep = rconn_cmdargv(h->cmd, argc, argv, NULL, err, errlen);
    return rep;
}

/* The newest id of the stream, where the live feed starts ("0-0" when it is empty). */
static int hub_find_last(stream_hub *h, char *err, size_t errlen) {
    const char *argv[] = {"XREVRANGE", h->key, "+", "-", "COUNT", "1"};
    redisReply *rep = cmd_run(h, 6, argv, err, errlen);
    sse_sid sid = {0, 0};
    if (!rep)
        return HQ_ERR;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements >= 1) {
        const redisReply *id = rep->element[0]->element[0];
        if (id->type != REDIS_REPLY_STRING || sse_sid_parse(id->str, id->len, &sid) != HQ_OK)
            sid = (sse_sid){0, 0};
    } else if (rep->type == REDIS_REPLY_ERROR) {
        hq_seterr(err, errlen, "XREVRANGE: %s", rep->str);
        freeReplyObject(rep);
        return HQ_ERR;
    }
    freeReplyObject(rep);
    pthread_mutex_lock(&h->mu);
    h->last = sid;
    h->have_last = 1;
    pthread_mutex_unlock(&h->mu);
    return HQ_OK;
}

static int xread_send(stream_hub *h) {
    char last[SSE_SID_LEN], count[16], block[16];
    const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", h->key, last};
    redisContext *ctx = rconn_ctx(h->live);
    if (!ctx)
        return HQ_ERR;
    sse_sid_fmt(h->last, last, sizeof(last));
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%d", READ_BLOCK_MS);
    if (redisAppendCommandArgv(ctx, 8, argv, NULL) != REDIS_OK || rconn_flush(h->live) != HQ_OK) {
        rconn_set_broken(h->live);
        return HQ_ERR;
    }
    h->xread_out = 1;
    h->xread_sent = ts_mono_ms();
    return HQ_OK;
}

static void hub_down(stream_hub *h, const char *why) {
    int64_t wait = backoff_next(h);
    if (h->live)
        rconn_set_broken(h->live);
    h->xread_out = 0;
    h->retry_at = ts_mono_ms() + wait;
    if (!h->down_logged)
        LOG_W("api: stream: Redis unavailable (%s); retrying, streams stay open", why);
    else
        LOG_D("api: stream: Redis still unavailable (%s); next try in %lld ms", why,
              (long long)wait);
    h->down_logged = 1;
}

/* Connect the live link if needed and keep an XREAD in flight. */
static void hub_ensure_live(stream_hub *h) {
    char err[HQ_ERRLEN];
    if (h->xread_out || ts_mono_ms() < h->retry_at)
        return;
    if (hub_connect(h, &h->live, err, sizeof(err)) != HQ_OK) {
        hub_down(h, err);
        return;
    }
    if (!h->have_last && hub_find_last(h, err, sizeof(err)) != HQ_OK) {
        hub_down(h, err);
        return;
    }
    if (xread_send(h) != HQ_OK) {
        hub_down(h, "cannot send XREAD");
        return;
    }
    if (h->down_logged)
        LOG_I("api: stream: Redis is back; the live feed continues after its last id");
    h->down_logged = 0;
    h->backoff = 0;
}

/* ---- the hub: handing out ------------------------------------------------------------- */

/* Queue a batch on a live client (c->mu held). When it does not fit in api.stream_buffer
 * and the client's reader is busy (its socket is full: the client is behind by the buffer,
 * MHD's write buffer and the kernel's), it is cut off. When the reader is waiting for data
 * instead (suspended, or resumed and not yet run), the client drained all it was given
 * and only this batch is too big for one wake (a burst, or WAKE_MS of coalescing): it goes
 * back to reading from Redis at its own pace, from the last event it was given. No gap,
 * no repeat, and no cut of a client that keeps up. */
static void dispatch_client(stream_hub *h, stream_client *c, sse_frame **frames, size_t nf,
                            sse_sid top, int64_t now) {
    for (size_t i = 0; i < nf; i++) {
        sse_frame *f = frames[i];
        if (sse_sid_cmp(f->sid, c->cursor) <= 0)
            continue;
        if (sse_filter_match(&c->flt, f)) {
            if (c->q.n && c->q.bytes + f->len > h->c->api_stream_buffer) {
                if (c->suspended || c->woken) {
                    LOG_D("api: stream: %s: a burst over api.stream_buffer; it reads the rest "
                          "from Redis",
                          c->peer);
                    c->state = CL_CATCHUP;
                    c->trim_checked = 1;
                    c->page_wanted = 0; /* the reader asks once below low_water */
                    h->wake_urgent = 1;
                    return;
                }
                client_cut(h, c, now, "too slow");
                return;
            }
            if (client_push(h, c, f, now))
                return;
        }
        c->cursor = f->sid;
    }
    if (sse_sid_cmp(top, c->cursor) > 0)
        c->cursor = top; /* past the entries no client gets */
    if (c->suspended && c->q.bytes >= h->low_water)
        h->wake_urgent = 1; /* a lot waits: resume now rather than in WAKE_MS */
}

/* Format the entries of an XREAD reply and queue each on every live client it is for. */
static void hub_dispatch(stream_hub *h, const redisReply *rep) {
    const redisReply *entries;
    sse_frame **frames;
    size_t n, nf = 0;
    sse_sid top = h->last;
    int64_t now = ts_mono_ms();
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2)
        return; /* nil: the BLOCK timed out */
    entries = rep->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
        return;
    n = entries->elements;
    frames = calloc(n, sizeof(*frames));
    if (!frames)
        return; /* `last` stays: the next XREAD reads these again */
    for (size_t i = 0; i < n; i++) {
        char err[HQ_ERRLEN];
        const redisReply *e = entries->element[i];
        sse_sid sid;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            sse_sid_parse(e->element[0]->str, e->element[0]->len, &sid) != HQ_OK)
            continue;
        if (sse_sid_cmp(sid, top) > 0)
            top = sid;
        /* An entry the fanout dead-letters is not an event: no client gets it. */
        if (sse_frame_entry(e, &h->lim, &frames[nf], err, sizeof(err)) == HQ_OK)
            nf++;
        else
            LOG_D("api: stream: entry %s skipped: %s", e->element[0]->str, err);
    }
    pthread_mutex_lock(&h->mu);
    for (stream_client *c = h->head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->state == CL_LIVE && c->end == END_NONE)
            dispatch_client(h, c, frames, nf, top, now);
        pthread_mutex_unlock(&c->mu);
    }
    h->last = top;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < nf; i++)
        sse_frame_unref(frames[i]);
    free(frames);
    h->wake_pending = 1;
}

/* Read what live has; hand out every complete reply; send the next XREAD. */
static void hub_read_live(stream_hub *h) {
    if (rconn_read_some(h->live) != HQ_OK) {
        hub_down(h, "connection lost");
        return;
    }
    for (;;) {
        void *rep = NULL;
        if (rconn_take_reply(h->live, &rep) != HQ_OK) {
            hub_down(h, "bad reply");
            return;
        }
        if (!rep)
            return;
        h->xread_out = 0;
        if (((redisReply *)rep)->type == REDIS_REPLY_ERROR) {
            char why[HQ_ERRLEN];
            snprintf(why, sizeof(why), "XREAD: %s", ((redisReply *)rep)->str);
            freeReplyObject(rep);
            hub_down(h, why);
            return;
        }
        hub_dispatch(h, rep);
        freeReplyObject(rep);
        if (xread_send(h) != HQ_OK) {
            hub_down(h, "cannot send XREAD");
            return;
        }
    }
}

/* ---- the hub: resuming clients ----------------------------------------------------- */

/* A field of an XINFO STREAM reply (flat name/value pairs). */
static const redisReply *info_field(const redisReply *rep, const char *name) {
    if (rep->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
            return rep->element[i + 1];
    }
    return NULL;
}

static int reply_sid(const redisReply *r, sse_sid *out) {
    return r && r->type == REDIS_REPLY_STRING ? sse_sid_parse(r->str, r->len, out) : HQ_ERR;
}

/* Whether entries after the client's id may have been trimmed away before it came back
 * (events.retention trims by MINID): its id is older than the oldest entry left, entries
 * were removed from the stream at all (entries-added > length), and entries were added
 * after its id (last-generated-id). Queues the reset event then. A false alarm is
 * possible (only entries before its id removed, and the next one is the oldest), a
 * missed gap is not. HQ_ERR when Redis failed. */
static int catchup_check_trim(stream_hub *h, stream_client *c) {
    const char *argv[] = {"XINFO", "STREAM", h->key};
    char err[HQ_ERRLEN], req[SSE_SID_LEN], old[SSE_SID_LEN + 2], text[256];
    redisReply *rep = cmd_run(h, 3, argv, err, sizeof(err));
    const redisReply *first, *added, *length;
    sse_sid oldest = {0, 0}, lastgen = {0, 0};
    int have_oldest = 0, removed = 1, trimmed;
    if (!rep)
        return HQ_ERR;
    if (rep->type == REDIS_REPLY_ERROR) { /* no such key: nothing was ever trimmed */
        freeReplyObject(rep);
        return HQ_OK;
    }
    first = info_field(rep, "first-entry");
    if (first && first->type == REDIS_REPLY_ARRAY && first->elements >= 1)
        have_oldest = reply_sid(first->element[0], &oldest) == HQ_OK;
    added = info_field(rep, "entries-added"); /* Redis 7; before, assume removals */
    length = info_field(rep, "length");
    if (added && length && added->type == REDIS_REPLY_INTEGER &&
        length->type == REDIS_REPLY_INTEGER)
        removed = added->integer > length->integer;
    trimmed = removed && reply_sid(info_field(rep, "last-generated-id"), &lastgen) == HQ_OK &&
              sse_sid_cmp(c->requested, lastgen) < 0 &&
              (!have_oldest || sse_sid_cmp(c->requested, oldest) < 0);
    freeReplyObject(rep);
    if (!trimmed)
        return HQ_OK;
    sse_sid_fmt(c->requested, req, sizeof(req));
    if (have_oldest) {
        char o[SSE_SID_LEN];
        sse_sid_fmt(oldest, o, sizeof(o));
        snprintf(old, sizeof(old), "\"%s\"", o);
    } else {
        snprintf(old, sizeof(old), "null");
    }
    int n = snprintf(text, sizeof(text),
                     "event: reset\ndata: {\"reason\":\"trimmed\",\"requested\":\"%s\","
                     "\"oldest\":%s}\n\n",
                     req, old);
    sse_frame *f = sse_frame_control(text, (size_t)n);
    if (f) {
        pthread_mutex_lock(&c->mu);
        client_push(h, c, f, ts_mono_ms());
        pthread_mutex_unlock(&c->mu);
        sse_frame_unref(f);
    }
    LOG_D("api: stream: %s resumed after %s, trimmed since (oldest %s)", c->peer, req, old);
    return HQ_OK;
}

/* One XRANGE page of c's backlog, (cursor, last]. A short page means it is caught up:
 * it turns live. HQ_ERR when Redis failed (the client waits for the next try). */
static int catchup_page(stream_hub *h, stream_client *c) {
    char from[SSE_SID_LEN + 1], to[SSE_SID_LEN], count[16], err[HQ_ERRLEN];
    const char *argv[] = {"XRANGE", h->key, from, to, "COUNT", count};
    redisReply *rep;
    sse_sid last = h->last;
    int64_t now = ts_mono_ms();
    size_t i;
    int gone;
    pthread_mutex_lock(&c->mu);
    gone = c->gone;
    pthread_mutex_unlock(&c->mu);
    if (gone) /* closed since it was picked: nothing will read what we would read */
        return HQ_OK;
    if (!c->trim_checked) {
        if (catchup_check_trim(h, c) != HQ_OK)
            return HQ_ERR;
        c->trim_checked = 1;
    }
    if (sse_sid_cmp(c->cursor, last) >= 0) {
        pthread_mutex_lock(&c->mu);
        c->state = CL_LIVE;
        pthread_mutex_unlock(&c->mu);
        return HQ_OK;
    }
    from[0] = '(';
    sse_sid_fmt(c->cursor, from + 1, sizeof(from) - 1);
    sse_sid_fmt(last, to, sizeof(to));
    snprintf(count, sizeof(count), "%d", PAGE_COUNT);
    if (!(rep = cmd_run(h, 6, argv, err, sizeof(err)))) {
        LOG_D("api: stream: catch-up read failed: %s", err);
        return HQ_ERR;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        LOG_W("api: stream: XRANGE for %s: %s", c->peer,
              rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        pthread_mutex_lock(&c->mu); /* nothing to read there: follow the live feed */
        c->state = CL_LIVE;
        c->cursor = last;
        pthread_mutex_unlock(&c->mu);
        return HQ_OK;
    }
    pthread_mutex_lock(&c->mu);
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        sse_frame *f = NULL;
        sse_sid sid;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            reply_sid(e->element[0], &sid) != HQ_OK)
            continue;
        if (sse_frame_entry(e, &h->lim, &f, err, sizeof(err)) == HQ_OK &&
            sse_filter_match(&c->flt, f)) {
            /* Paced by the reader (a page only below low_water), so never a cut here: a
             * client catching up on a long backlog is slow by design. Half the buffer at
             * most, so the live feed has room once it joins; the rest of the page is
             * read again next time (an empty queue always takes one, so it moves). */
            if (c->q.n && c->q.bytes + f->len > h->c->api_stream_buffer / 2) {
                sse_frame_unref(f);
                break;
            }
            if (c->end == END_NONE && sse_queue_push(&c->q, f) == HQ_OK)
                c->last_enq = now;
        }
        sse_frame_unref(f);
        c->cursor = sid;
    }
    if (i == rep->elements && rep->elements < PAGE_COUNT) {
        c->state = CL_LIVE;
        c->cursor = last;
    } else {
        c->page_wanted = c->q.bytes < h->low_water;
    }
    pthread_mutex_unlock(&c->mu);
    freeReplyObject(rep);
    h->wake_pending = 1;
    return HQ_OK;
}

/* Read pages for the clients that want one (at most PAGES_PER_RUN per turn). */
static void hub_catchup(stream_hub *h) {
    stream_client *todo[PAGES_PER_RUN];
    size_t n = 0;
    int64_t now = ts_mono_ms();
    if (!h->have_last || !h->xread_out || now < h->cmd_retry_at)
        return; /* Redis is down: resuming clients wait (with heartbeats) */
    pthread_mutex_lock(&h->mu);
    for (stream_client *c = h->head; c && n < PAGES_PER_RUN; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->state == CL_CATCHUP && c->page_wanted && c->end == END_NONE) {
            c->page_wanted = 0;
            atomic_fetch_add(&c->refs, 1);
            todo[n++] = c;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        stream_client *c = todo[i];
        if (catchup_page(h, c) != HQ_OK) {
            pthread_mutex_lock(&c->mu);
            c->page_wanted = 1;
            pthread_mutex_unlock(&c->mu);
            h->cmd_retry_at = ts_mono_ms() + backoff_next(h);
        }
        client_unref(c);
    }
    if (n == PAGES_PER_RUN)
        hub_poke(h); /* more may be waiting: come round again without sleeping */
}

/* ---- the hub: timers ----------------------------------------------------------------- */

/* Resume every suspended client that has something to send or has ended. */
static void hub_wake(stream_hub *h) {
    pthread_mutex_lock(&h->mu);
    for (stream_client *c = h->head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->suspended && (c->q.n || c->end != END_NONE)) {
            c->suspended = 0;
            c->woken = 1;
            MHD_resume_connection(c->conn);
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
    h->wake_pending = 0;
    h->wake_urgent = 0;
    h->last_wake = ts_mono_ms();
}

/* Heartbeats for quiet clients; shut the connections of ended clients past their
 * deadline (a client that does not read is never asked for data, so only closing its
 * socket ends it; MHD sees the error and frees it as usual). */
static void hub_tick(stream_hub *h, int64_t now) {
    int64_t hb = h->c->api_stream_heartbeat_ms;
    pthread_mutex_lock(&h->mu);
    for (stream_client *c = h->head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->end == END_NONE && c->state == CL_CATCHUP && c->q.n && !c->suspended && !c->woken &&
            now - c->last_take >= STALL_MS) {
            /* Catching up is paced by the reader, so its queue never overflows: a client
             * that stopped reading shows as one that takes nothing although its socket
             * was offered data (not suspended) for STALL_MS. */
            client_cut(h, c, now, "stalled");
            h->wake_pending = 1;
        } else if (c->end == END_NONE && now - c->last_enq >= hb) {
            client_push(h, c, h->ping, now);
            h->wake_pending = 1;
        } else if (c->end != END_NONE && !c->shut && now >= c->end_deadline && c->fd >= 0) {
            c->shut = 1;
            shutdown(c->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

static void *hub_main(void *arg) {
    stream_hub *h = arg;
    h->next_tick = ts_mono_ms() + TICK_MS;
    for (;;) {
        struct pollfd pf[2];
        int nf = 1, stopping;
        int64_t now, until;
        uint64_t v;
        pthread_mutex_lock(&h->mu);
        stopping = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stopping)
            break;
        hub_ensure_live(h);
        now = ts_mono_ms();
        if (h->xread_out && now - h->xread_sent > READ_BLOCK_MS + 5000)
            hub_down(h, "no answer to XREAD");
        until = h->next_tick;
        if (!h->xread_out)
            until = min64(until, h->retry_at);
        if (h->wake_pending)
            until = min64(until, h->wake_urgent ? now : h->last_wake + WAKE_MS);
        pf[0] = (struct pollfd){.fd = h->efd, .events = POLLIN};
        if (h->xread_out) {
            pf[1] = (struct pollfd){.fd = rconn_fd(h->live), .events = POLLIN};
            nf = 2;
        }
        if (poll(pf, (nfds_t)nf, until > now ? (int)(until - now) : 0) < 0 && errno != EINTR)
            LOG_W("api: stream: poll: %s", strerror(errno));
        if (pf[0].revents & POLLIN) {
            if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                LOG_D("api: stream: eventfd: %s", strerror(errno));
        }
        if (nf == 2 && (pf[1].revents & (POLLIN | POLLERR | POLLHUP)))
            hub_read_live(h);
        hub_catchup(h);
        now = ts_mono_ms();
        if (now >= h->next_tick) {
            hub_tick(h, now);
            h->next_tick = now + TICK_MS;
        }
        if (h->wake_pending && (h->wake_urgent || now >= h->last_wake + WAKE_MS))
            hub_wake(h);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------- */

stream_hub *stream_hub_new(api_ctx *ctx, char *err, size_t errlen) {
    stream_hub *h = calloc(1, sizeof(*h));
    if (!h) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    h->ctx = ctx;
    h->c = ctx->c;
    h->efd = -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (key_events(ctx->prefix, h->key, sizeof(h->key)) != HQ_OK) {
        hq_seterr(err, errlen, "redis.prefix too long");
        goto fail;
    }
    h->lim.max_payload = (size_t)h->c->events_max_payload;
    h->lim.max_depth = h->c->events_max_depth;
    h->low_water = (size_t)h->c->api_stream_buffer / 4;
    if (h->low_water > 256 * 1024)
        h->low_water = 256 * 1024;
    h->ping = sse_frame_control(PING_TEXT, sizeof(PING_TEXT) - 1);
    h->retry = sse_frame_control(RETRY_TEXT, sizeof(RETRY_TEXT) - 1);
    if (!h->ping || !h->retry) {
        hq_seterr(err, errlen, "out of memory");
        goto fail;
    }
    return h;
fail:
    stream_hub_free(h);
    return NULL;
}

int stream_hub_start(stream_hub *h, char *err, size_t errlen) {
    char why[HQ_ERRLEN];
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0)
        return hq_seterr(err, errlen, "eventfd: %s", strerror(errno));
    /* Where the live feed starts is found before the server says it listens, so a
     * client that connects at once gets every event published after its answer. With
     * Redis down the thread keeps trying (and such clients are handled below). */
    if (hub_find_last(h, why, sizeof(why)) != HQ_OK)
        LOG_W("api: stream: Redis unavailable at start (%s); streams open and wait", why);
    if (pthread_create(&h->thr, NULL, hub_main, h) != 0)
        return hq_seterr(err, errlen, "cannot start the stream hub thread");
    h->started = 1;
    return HQ_OK;
}

/* Wait (h->mu held) until no client is left or deadline (mono ms) passes. */
static void wait_clients(stream_hub *h, int64_t deadline) {
    while (h->nclients) {
        struct timespec ts;
        int64_t left = deadline - ts_mono_ms();
        if (left <= 0)
            return;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
}

void stream_hub_stop(stream_hub *h) {
    int64_t now;
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_mutex_unlock(&h->mu);
    if (h->started) {
        hub_poke(h);
        pthread_join(h->thr, NULL);
        h->started = 0;
    }
    /* End every stream: what is queued still goes out, then the body ends. MHD must not
     * stop with a connection suspended, so every suspended one is resumed here, and a
     * reader that sees `end` never suspends again. */
    now = ts_mono_ms();
    pthread_mutex_lock(&h->mu);
    for (stream_client *c = h->head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->end == END_NONE) {
            c->end = END_STOP;
            c->end_deadline = now + STOP_GRACE_MS;
        }
        if (c->suspended) {
            c->suspended = 0;
            MHD_resume_connection(c->conn);
        }
        pthread_mutex_unlock(&c->mu);
    }
    wait_clients(h, now + STOP_GRACE_MS);
    if (h->nclients)
        LOG_I("api: stream: %zu streams did not drain in %d ms; closing them", h->nclients,
              STOP_GRACE_MS);
    for (stream_client *c = h->head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (!c->shut && c->fd >= 0) {
            c->shut = 1;
            shutdown(c->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&c->mu);
    }
    wait_clients(h, ts_mono_ms() + 2000);
    pthread_mutex_unlock(&h->mu);
}

void stream_hub_free(stream_hub *h) {
    if (!h)
        return;
    stream_hub_stop(h);
    /* Clients still listed belong to responses MHD has not freed; MHD_stop_daemon frees
     * them (client_done) before this runs, so the list is empty here. */
    rconn_free(h->live);
    rconn_free(h->cmd);
    sse_frame_unref(h->ping);
    sse_frame_unref(h->retry);
    if (h->efd >= 0)
        close(h->efd);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- opening a stream ------------------------------------------------------------ */

struct MHD_Response *stream_hub_open(stream_hub *h, struct MHD_Connection *conn, sse_filter *flt,
                                     const sse_sid *after, const char *peer) {
    const union MHD_ConnectionInfo *ci;
    struct MHD_Response *resp;
    stream_client *c = calloc(1, sizeof(*c));
    if (!c) {
        sse_filter_clear(flt);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->mu, NULL);
    c->hub = h;
    c->conn = conn;
    c->fd = -1;
    c->flt = *flt;
    memset(flt, 0, sizeof(*flt));
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        c->fd = ci->connect_fd;
    c->last_enq = c->last_take = ts_mono_ms();
    if (sse_queue_push(&c->q, h->retry) != HQ_OK) {
        client_unref(c);
        return NULL;
    }
    if (after) {
        c->state = CL_CATCHUP;
        c->cursor = c->requested = *after;
        c->page_wanted = 1;
    } else {
        c->state = CL_LIVE;
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE, client_read, c,
                                             client_done);
    if (!resp) {
        client_unref(c);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        /* A stream that ends at once (after its retry: line) rather than a 503, which an
         * EventSource takes as final: this one reconnects, to the next server. */
        pthread_mutex_unlock(&h->mu);
        c->end = END_STOP;
        return resp;
    }
    if (!after && h->have_last) {
        c->cursor = h->last; /* from now on: the live feed's next entry */
    } else if (!after) {
        /* Redis has not been reached yet, so "now" has no stream id: read from this
         * millisecond on (by the clock Redis shares on one host; nothing can be
         * published before Redis is up anyway) once it is. */
        c->state = CL_CATCHUP;
        c->trim_checked = 1;
        c->page_wanted = 1;
        c->cursor = (sse_sid){(uint64_t)ts_now_ms() - 1, UINT64_MAX};
    }
    c->next = h->head;
    if (h->head)
        h->head->prev = c;
    h->head = c;
    c->listed = 1;
    h->nclients++;
    pthread_mutex_unlock(&h->mu);
    if (c->state == CL_CATCHUP)
        hub_poke(h);
    return resp; /* it owns c now: client_done frees it */
}
