/* worker.c -- the loop: the only place that decides to reconnect, reload, recover or
 * stop. Stages (intake, fanout, event_fetch, dispatch, results, reclaim) do one thing
 * each, return what happened as values and a link_kind, and never call each other or
 * back into the loop; only redis_link talks to Redis. docs/architecture.md has the map.
 *
 * The loop runs on events, not on a cadence: it sleeps in one epoll wait
 * (event_loop.h) until a socket is ready or the earliest timer (timer_heap.h) is due.
 * - curl's sockets are in that wait, and in every Redis round trip too (the link's
 *   wait hook), so transfers move while the loop waits for Redis;
 * - reads are blocking XREADGROUPs on two connections of their own (jobs, events),
 *   always pending while there is room: a job that another worker, a promotion,
 *   `hookq retry` or `dead replay` adds is read the moment it lands, and an idle
 *   worker costs one read per READ_BLOCK_MS per stream;
 * - timers exist only for what is due: the endpoint version check, promotion (at the
 *   delay queue's next due time, PROMOTE_IDLE_MS at most), lease renewal, reclaim,
 *   trimming, a results flush, a reconnect, the shutdown deadline.
 *
 * One iteration: reap finished transfers; write results (batched: see flush_due);
 * after a reconnect, take back what is pending for us; hand what the readers brought
 * to intake and fanout; run due timers; fetch missing events; start transfers; re-arm
 * the readers; sleep. */
#include "worker.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "addr_filter.h"
#include "dispatch.h"
#include "endpoint.h"
#include "endpoint_index.h"
#include "event_loop.h"
#include "event_cache.h"
#include "event_fetch.h"
#include "fanout.h"
#include "hq.h"
#include "stream_entry.h"
#include "string_map.h"
#include "http_engine.h"
#include "intake.h"
#include "job.h"
#include "lane_claim.h"
#include "log.h"
#include "reclaim.h"
#include "redis_conn.h"
#include "redis_keys.h"
#include "redis_link.h"
#include "results.h"
#include "scheduler.h"
#include "scripts_gen.h"
#include "timer_heap.h"
#include "timestamp.h"

enum {
    TIMER_VERSION = 0,
    TIMER_PROMOTE,
    TIMER_RENEW,
    TIMER_RECLAIM,
    TIMER_TRIM,
    TIMER_FANOUT,
    TIMER_DISPATCH,
    TIMER_FLUSH,
    TIMER_CONNECT,
    TIMER_WATCHDOG,
    TIMER_LANES,
    TIMERS
};
enum { TAG_VERSION = 1, TAG_PROMOTE, TAG_NEXT_DUE };
enum { RD_JOBS = 0, RD_EVENTS, READERS };

#define PROMOTE_LIMIT       1000
#define PROMOTE_IDLE_MS     1000 /* look at the delay queue at least this often */
#define PROMOTE_GAP_MS      20   /* and at most this often, unless a call moved its limit */
#define READ_BLOCK_MS       5000 /* a reader's XREADGROUP BLOCK; re-sent when it ends */
#define FANOUT_EVERY_MS     250  /* fanout at least this often, backlog or not */
#define BACKLOG_GONE_MS     2    /* a jobs read blocked this long: the jobs stream is empty */
#define FLUSH_AFTER_MS      2    /* results wait at most this long for a bigger batch */
#define DISPATCH_RECHECK_MS 250  /* jobs wait for a slot with the queue full: look again */
#define BACKOFF_MIN_MS      100
#define TRIM_EVERY_MS       60000
#define RECLAIM_COUNT       100
#define RECLAIM_ROUNDS      10
#define FANOUT_STALE_TRIES  3
#define FULL_CLEAR_MS       10000 /* "writes accepted again" only after this long unrefused */

struct worker {
    const cfg *c;
    char name[256];
    char k_events[KEY_MAX], k_jobs[KEY_MAX], k_delay[KEY_MAX], k_dead[KEY_MAX];
    char k_version[KEY_MAX];
    /* parts */
    redis_link *link;
    addr_filter *filter;
    http_engine *http;
    epindex *eps;
    evcache *cache;
    job_table *jobs;
    dispatch *dispatch;
    fanout *fanout;
    event_fetch *fetch;
    results *results;
    results_keys rkeys;
    fanout_keys fkeys;
    reclaim *reclaim;
    lclaim *lanes;
    intake_ctx intake;
    evloop *loop;
    timer_heap *timers;
    link_reader *reader[READERS];
    pipeline *rd[READERS];       /* each reader's one command; replies live through intake/fanout */
    pipeline *rd_taken[READERS]; /* the reply being handled while the next read is out */
    int rd_ready[READERS];       /* its reply is complete, not yet handled */
    int rd_fd[READERS];          /* each reader's fd as watched, -1 if not */
    size_t rd_want;              /* jobs the last jobs read asked for (a full reply: backlog) */
    int64_t jobs_sent_us;        /* mono us when the pending jobs read was sent */
    int64_t rd_sent[READERS];
    int main_fd;       /* the main link's fd as watched, -1 if not */
    unsigned main_gen; /* of that connection (rconn_generation) */
    int waiting_main;  /* inside a Redis round trip (the wait hook) */
    int main_ready;    /* the main fd became readable during that wait */
    int main_hup;      /* readable outside a round trip: closed by Redis (or garbage) */
    int reader_broken; /* a reader's connection failed */
    pipeline *tp;      /* the timers' commands */
    strmap *failing;   /* endpoints whose last attempt written by us failed */
    pipeline *side;    /* writes from intake and the timers, sent before the results */
    size_t max_held;   /* jobs held at once (delivery.concurrency * 2) */
    /* endpoint index */
    int64_t ep_version;  /* of the loaded index; -1 = load it now */
    int64_t loaded_us;   /* mono us when the last successful load started; 0 = never */
    int64_t read_us;     /* mono us when the last jobs read was sent */
    int reloaded;        /* loaded during this iteration (at most one version-driven reload) */
    int jobs_backlog;    /* the last jobs read came back full: deliver before fanning out more */
    int64_t next_fanout; /* mono ms: with a backlog, fan out again no later than this */
    int64_t promoted_ms; /* mono ms of the last promotion sent */
    /* Redis state */
    int up, recovering;
    int64_t backoff_ms;
    int full;             /* writes refused with OOM, not yet cleared */
    int64_t full_refused; /* mono ms of the last refusal */
    /* shutdown */
    volatile sig_atomic_t *stop;
    int stopping;
    int64_t stop_deadline;
    uint64_t rng;
};

static uint64_t next_rand(worker *w) {
    /* xorshift64*: reconnect jitter only */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

const char *worker_name(const worker *w) {
    return w->name;
}

/* Room in the local queue. A pending jobs read is not counted: it asked for no more
 * than the room when it was sent, but reserving that would shut fanout out while the
 * read waits for jobs that may never come; so the queue can overshoot max_held by one
 * read's worth (delivery.batch at most). */
static size_t room(const worker *w) {
    size_t h = job_held(w->jobs);
    return h >= w->max_held ? 0 : w->max_held - h;
}

static int wait_redis(void *ud, int fd, int64_t timeout_ms);

/* results_breaker_fn: the cached table says ep_id's breaker is open or half-open. */
static int breaker_not_closed(const void *ctx, const char *ep_id) {
    const worker *w = ctx;
    const epindex_ent *ent = epindex_get(w->eps, ep_id);
    return ent && ent->e->breaker != EP_BREAKER_CLOSED;
}

worker *worker_new(const cfg *c, char *err, size_t errlen) {
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    w->c = c;
    w->ep_version = -1;
    w->rng =
        (uint64_t)ts_now_ms() * 6364136223846793005ULL ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
    if (c->worker_name && c->worker_name[0]) {
        snprintf(w->name, sizeof w->name, "%s", c->worker_name);
    } else {
        char host[200] = "host";
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "host");
        host[sizeof host - 1] = '\0';
        snprintf(w->name, sizeof w->name, "%s-%ld", host, (long)getpid());
    }
    w->max_held = (size_t)(c->delivery_concurrency > 0 ? c->delivery_concurrency : 1) * 2;
    if (key_events(c->redis_prefix, w->k_events, sizeof w->k_events) != HQ_OK ||
        key_jobs(c->redis_prefix, w->k_jobs, sizeof w->k_jobs) != HQ_OK ||
        key_delay(c->redis_prefix, w->k_delay, sizeof w->k_delay) != HQ_OK ||
        key_dead(c->redis_prefix, w->k_dead, sizeof w->k_dead) != HQ_OK ||
        key_ep_version(c->redis_prefix, w->k_version, sizeof w->k_version) != HQ_OK) {
        hq_seterr(err, errlen, "redis.prefix too long");
        goto fail;
    }
    w->filter = addr_filter_new(c->security_allow_private_networks,
                                (const char *const *)c->security_allow_cidrs,
                                c->security_allow_cidrs_len, err, errlen);
    if (!w->filter)
        goto fail;
    w->main_fd = -1;
    for (int i = 0; i < READERS; i++)
        w->rd_fd[i] = -1;
    w->loop = evloop_new(err, errlen);
    if (!w->loop)
        goto fail;
    w->http = http_new_in(c, w->filter, w->loop, err, errlen);
    if (!w->http)
        goto fail;
    w->rkeys = (results_keys){.prefix = c->redis_prefix,
                              .jobs = w->k_jobs,
                              .delay = w->k_delay,
                              .dead = w->k_dead,
                              .version = w->k_version,
                              .events = w->k_events,
                              .me = w->name};
    w->fkeys = (fanout_keys){.events = w->k_events,
                             .jobs = w->k_jobs,
                             .dead = w->k_dead,
                             .version = w->k_version,
                             .me = w->name};
    w->link = link_new(c);
    w->eps = epindex_new();
    w->cache =
        evcache_new(c->events_cache_memory > 0 ? (size_t)c->events_cache_memory : (size_t)16 << 20);
    w->jobs = job_table_new();
    w->dispatch = dispatch_new(c, w->http, next_rand(w));
    w->fanout = fanout_new();
    w->fetch = event_fetch_new();
    w->results = results_new(c, &w->rkeys);
    if (w->results)
        results_set_breaker_fn(w->results, breaker_not_closed, w);
    w->reclaim = reclaim_new(c, w->k_jobs, w->k_events, w->name);
    w->lanes = lclaim_new(c, w->name, w->k_events);
    w->timers = theap_new(TIMERS);
    w->tp = pipeline_new();
    w->failing = strmap_new();
    w->side = pipeline_new();
    int parts_ok = 1;
    for (int i = 0; i < READERS; i++) {
        w->reader[i] = link_reader_new(c);
        w->rd[i] = pipeline_new();
        w->rd_taken[i] = pipeline_new();
        parts_ok = parts_ok && w->reader[i] && w->rd[i] && w->rd_taken[i];
    }
    if (!parts_ok || !w->link || !w->eps || !w->cache || !w->jobs || !w->dispatch || !w->fanout ||
        !w->fetch || !w->results || !w->reclaim || !w->lanes || !w->timers || !w->tp ||
        !w->failing || !w->side) {
        hq_seterr(err, errlen, "out of memory");
        goto fail;
    }
    link_set_wait(w->link, wait_redis, w);
    w->intake = (intake_ctx){.c = c,
                             .jobs = w->jobs,
                             .cache = w->cache,
                             .side = w->side,
                             .me = w->name,
                             .k_jobs = w->k_jobs,
                             .k_delay = w->k_delay,
                             .k_dead = w->k_dead};
    return w;
fail:
    worker_free(w);
    return NULL;
}

void worker_free(worker *w) {
    if (!w)
        return;
    /* http_free aborts transfers without callbacks; the jobs go with their table */
    http_free(w->http);
    job_table_free(w->jobs);
    evcache_free(w->cache);
    epindex_free(w->eps);
    dispatch_free(w->dispatch);
    fanout_free(w->fanout);
    event_fetch_free(w->fetch);
    results_free(w->results);
    reclaim_free(w->reclaim);
    lclaim_free(w->lanes);
    for (int i = 0; i < READERS; i++) {
        pipeline_free(w->rd[i]);
        pipeline_free(w->rd_taken[i]);
        link_reader_free(w->reader[i]);
    }
    pipeline_free(w->tp);
    strmap_free(w->failing);
    pipeline_free(w->side);
    link_free(w->link);
    theap_free(w->timers);
    evloop_free(w->loop); /* after http_free: curl unwatches its sockets as it closes them */
    addr_filter_free(w->filter);
    free(w);
}

/* ------------------------------------------------------------ Redis state */

static int64_t jitter(worker *w, int64_t ms) {
    /* uniformly in [ms/2, ms]: spreads reconnect storms of many workers */
    return ms / 2 + (int64_t)(next_rand(w) % (uint64_t)(ms / 2 + 1));
}

/* ------------------------------------------------------------ sockets */

/* The main link's fd: readable during a round trip is the reply (wait_redis); outside
 * one, Redis sent what nobody asked for, which means it closed the connection. */
static void on_main(void *ud, int fd, int events) {
    worker *w = ud;
    (void)fd;
    (void)events;
    if (w->waiting_main)
        w->main_ready = 1;
    else
        w->main_hup = 1;
}

static void unwatch_main(worker *w) {
    /* owned: after a reconnect inside a stage the old number may be a curl socket now */
    if (w->main_fd >= 0)
        evloop_unwatch_owned(w->loop, w->main_fd, on_main, w);
    w->main_fd = -1;
}

/* The link's wait hook: every Redis round trip waits here, in the same epoll as curl's
 * sockets and with curl's timer, so transfers keep moving; only their results wait
 * for the loop (http_reap). 1 readable, 0 timed out, -1 failed. */
static int wait_redis(void *ud, int fd, int64_t timeout_ms) {
    worker *w = ud;
    unsigned gen = rconn_generation(link_conn(w->link));
    if (fd != w->main_fd || gen != w->main_gen) {
        /* a reconnect inside a stage (ep_load_table) may reuse the number of an fd
         * that epoll forgot when it was closed: register it afresh */
        evloop_unwatch(w->loop, fd);
        unwatch_main(w);
        w->main_gen = gen;
        if (evloop_watch(w->loop, fd, EVL_IN, on_main, w) != HQ_OK)
            return -1;
        w->main_fd = fd;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : ts_mono_ms() + timeout_ms;
    w->main_ready = 0;
    w->waiting_main = 1;
    int rc = -1;
    for (;;) {
        http_tick(w->http);
        int t = http_timeout_ms(w->http);
        if (deadline >= 0) {
            int64_t left = deadline - ts_mono_ms();
            if (left <= 0) {
                rc = 0;
                break;
            }
            if (t < 0 || t > left)
                t = (int)left;
        }
        if (evloop_run(w->loop, t) < 0)
            break;
        if (w->main_ready) {
            rc = 1;
            break;
        }
    }
    w->waiting_main = 0;
    return rc;
}

static void on_reader(void *ud, int fd, int events);

/* ------------------------------------------------------------ Redis state */

static void readers_down(worker *w) {
    for (int i = 0; i < READERS; i++) {
        if (w->rd_fd[i] >= 0)
            evloop_unwatch_owned(w->loop, w->rd_fd[i], on_reader, w);
        w->rd_fd[i] = -1;
        link_reader_down(w->reader[i]);
        pipeline_reset(w->rd[i]);
        w->rd_ready[i] = 0;
    }
    w->reader_broken = 0;
}

static void go_down(worker *w, const char *why) {
    if (w->up)
        LOG_W("redis: connection lost (%s); in-flight deliveries continue, reconnecting", why);
    w->up = 0;
    unwatch_main(w);
    w->main_hup = 0;
    link_down(w->link);
    readers_down(w);
    w->backoff_ms = BACKOFF_MIN_MS;
    theap_set(w->timers, TIMER_CONNECT, ts_mono_ms() + jitter(w, w->backoff_ms));
}

/* Redis refused a write for lack of memory. Logged once; cleared only after
 * FULL_CLEAR_MS without a refusal, so a Redis hovering at its limit logs two lines,
 * not one per flip. */
static void full_refused(worker *w, const char *what) {
    w->full_refused = ts_mono_ms();
    if (w->full)
        return;
    w->full = 1;
    LOG_W("redis: full (%s refused with OOM); delivering what is queued, but delivery log "
          "lines and new fanouts wait for room (logged once)",
          what);
}

static void full_accepted(worker *w) {
    if (w->full && ts_mono_ms() - w->full_refused >= FULL_CLEAR_MS) {
        w->full = 0;
        LOG_I("redis: writes accepted again; delivery log and fanout resume");
    }
}

static void create_groups(worker *w) {
    const char *streams[2] = {w->k_events, w->k_jobs};
    const char *groups[2] = {"fanout", "deliver"};
    for (int i = 0; i < 2 && w->up; i++) {
        char err[HQ_ERRLEN];
        /* id 0, not $: events published before the first worker ever started (or while
         * a non-persistent Redis was being refilled) are delivered too */
        redisReply *rep = link_cmd(w->link, err, sizeof err, "XGROUP CREATE %s %s 0 MKSTREAM",
                                   streams[i], groups[i]);
        if (!rep) {
            go_down(w, err);
            return;
        }
        link_kind k = link_reply_kind(rep);
        if (k == LINK_OK)
            LOG_I("redis: created consumer group %s on %s", groups[i], streams[i]);
        else if (k != LINK_BUSYGROUP)
            LOG_E("redis: XGROUP CREATE %s %s: %s", streams[i], groups[i], rep->str);
        link_reply_free(rep);
    }
}

/* What the loop does about a kind a stage returned. */
static void handle(worker *w, link_kind k, const char *what, const char *err) {
    switch (k) {
    case LINK_OK:
    case LINK_BUSYGROUP:
        break;
    case LINK_IO:
        go_down(w, err && err[0] ? err : what);
        break;
    case LINK_NOGROUP:
        LOG_W("redis: consumer group missing (NOGROUP: Redis restarted without persistence?); "
              "re-creating");
        create_groups(w);
        break;
    case LINK_OOM:
        full_refused(w, what);
        break;
    default:
        LOG_E("redis: %s: %s", what, err && err[0] ? err : link_kind_name(k));
        break;
    }
}

/* Load the endpoint index into a new table and swap it in only when complete, so a
 * failed load (Redis gone, OOM) leaves the previous one, never an empty one. An endpoint
 * whose hash does not parse keeps the entry the previous table had for it (a half-written
 * or bad hash is not a removal); one with no previous entry is marked broken, so its
 * jobs wait instead of being acknowledged as deleted. */
static int reload(worker *w) {
    ep_table t = {0};
    int64_t started = ts_mono_us();
    char err[HQ_ERRLEN];
    w->reloaded = 1;
    if (!link_is_up(w->link))
        return HQ_ERR;
    if (ep_load_table(link_conn(w->link), w->c->redis_prefix, &t, err, sizeof err) != HQ_OK) {
        if (!rconn_connected(link_conn(w->link)))
            go_down(w, err);
        else
            LOG_E("endpoints: reload failed (keeping the previous table): %s", err);
        return HQ_ERR;
    }
    int rc = HQ_ERR;
    size_t parsed = t.n, n = t.n, nbroken = 0;
    ep **eps = realloc(t.eps, (t.n + t.n_bad + 1) * sizeof *eps);
    if (eps)
        t.eps = eps;
    /* ids: every endpoint in Redis (the parsed ones, then the unreadable ones); broken:
     * the unreadable ones with no previous entry to keep */
    const char **ids = calloc(t.n + t.n_bad + 1, sizeof *ids);
    const char **broken = calloc(t.n_bad + 1, sizeof *broken);
    epindex *next = epindex_new();
    if (!eps || !ids || !broken || !next) {
        LOG_E("endpoints: out of memory loading the index (keeping the previous table)");
        goto cleanup;
    }
    for (size_t i = 0; i < parsed; i++)
        ids[i] = eps[i]->id;
    for (size_t i = 0; i < t.n_bad; i++) {
        ep *old = epindex_take(w->eps, t.bad[i].id);
        LOG_E("endpoints: %s; %s", t.bad[i].error,
              old ? "keeping its previous settings" : "its jobs wait until it can be read");
        ids[parsed + i] = t.bad[i].id;
        if (old)
            eps[n++] = old;
        else
            broken[nbroken++] = t.bad[i].id;
    }
    t.eps = NULL; /* handed to the index, also on error */
    t.n = 0;
    rc = epindex_set(next, eps, n, err, sizeof err);
    if (rc == HQ_OK)
        rc = epindex_set_broken(next, broken, nbroken);
    if (rc != HQ_OK) {
        /* the previous table lent its entries for the unreadable ids (freed with eps):
         * mark them broken there, so their jobs wait, never dropped; load again */
        epindex_set_broken(w->eps, ids + parsed, t.n_bad);
        w->ep_version = -1;
        LOG_E("endpoints: out of memory building the index (keeping the previous table)");
        goto cleanup;
    }
    scheduler_keep_only(dispatch_scheduler(w->dispatch), ids, parsed + t.n_bad);
    epindex_free(w->eps);
    w->eps = next;
    next = NULL;
    w->ep_version = t.version;
    w->loaded_us = started;
    lclaim_sync(w->lanes, w->eps);
    LOG_I("endpoints: loaded %zu (version %lld)%s", n, (long long)t.version,
          t.n_bad ? ", some unreadable (above)" : "");
cleanup:
    epindex_free(next);
    free(ids);
    free(broken);
    ep_table_clear(&t);
    return rc;
}

static int connect_all(worker *w, char *err, size_t errlen) {
    if (link_connect(w->link, err, errlen) != HQ_OK)
        return HQ_ERR;
    for (int i = 0; i < READERS; i++) {
        if (link_reader_connect(w->reader[i], err, errlen) == HQ_OK)
            w->rd_fd[i] = link_reader_fd(w->reader[i]);
        if (w->rd_fd[i] < 0 || evloop_watch(w->loop, w->rd_fd[i], EVL_IN, on_reader, w) != HQ_OK) {
            if (!err[0])
                hq_seterr(err, errlen, "cannot watch a Redis connection");
            readers_down(w);
            link_down(w->link);
            return HQ_ERR;
        }
    }
    return HQ_OK;
}

static void try_connect(worker *w) {
    int64_t now = ts_mono_ms();
    char err[HQ_ERRLEN] = "";
    if (connect_all(w, err, sizeof err) != HQ_OK) {
        if (w->backoff_ms <= BACKOFF_MIN_MS)
            LOG_W("redis: %s; retrying with backoff up to %lldms", err,
                  (long long)w->c->redis_reconnect_max_ms);
        w->backoff_ms *= 2;
        if (w->backoff_ms > w->c->redis_reconnect_max_ms)
            w->backoff_ms = w->c->redis_reconnect_max_ms;
        if (w->backoff_ms < BACKOFF_MIN_MS)
            w->backoff_ms = BACKOFF_MIN_MS;
        theap_set(w->timers, TIMER_CONNECT, now + jitter(w, w->backoff_ms));
        return;
    }
    LOG_I("redis: connected to %s", link_where(w->link));
    w->up = 1;
    w->backoff_ms = BACKOFF_MIN_MS;
    /* it may be another dataset now (restart without persistence, failover): reload
     * the index even if the version counter happens to read the same */
    w->ep_version = -1;
    theap_set(w->timers, TIMER_VERSION, now + w->c->endpoints_reload_interval_ms);
    theap_set(w->timers, TIMER_PROMOTE, now);
    theap_set(w->timers, TIMER_RECLAIM, now);
    theap_set(w->timers, TIMER_TRIM, now);
    /* replies lost in the outage may have left entries pending for us that we do not
     * hold: take them back now, not after the visibility timeout */
    w->recovering = 1;
    reclaim_restart(w->reclaim, RECLAIM_JOBS);
    reclaim_restart(w->reclaim, RECLAIM_EVENTS);
    create_groups(w);
}

/* ------------------------------------------------------------ stages, as the loop runs them */

/* Promote at mono ms `at`, or earlier if already set, but never within
 * PROMOTE_GAP_MS of the last promotion: a retry is due at its time give or take that,
 * and a thousand jobs deferred at a thousand different milliseconds cost 1000 /
 * PROMOTE_GAP_MS calls a second at most, not one each. */
static void promote_at(worker *w, int64_t at) {
    if (at < w->promoted_ms + PROMOTE_GAP_MS)
        at = w->promoted_ms + PROMOTE_GAP_MS;
    theap_set_earlier(w->timers, TIMER_PROMOTE, at);
}

/* The side writes (intake's dead letters and acks, a version bump). HQ_ERR if the
 * link failed. */
static int send_side(worker *w) {
    char err[HQ_ERRLEN];
    if (pipeline_len(w->side) == 0)
        return HQ_OK;
    link_kind k = link_exec(w->link, w->side, err, sizeof err);
    if (k != LINK_OK) {
        handle(w, k, "side writes", err); /* bad entries stay pending: reclaim */
        pipeline_reset(w->side);
        return HQ_ERR;
    }
    for (size_t i = 0; i < pipeline_len(w->side); i++) {
        const redisReply *rep = pipeline_reply(w->side, i);
        link_kind rk = link_reply_kind(rep);
        if (rk != LINK_OK)
            handle(w, rk, "side write", rep->str);
    }
    pipeline_reset(w->side);
    return HQ_OK;
}

static void flush(worker *w) {
    if (send_side(w) != HQ_OK)
        return;
    /* the retries this flush schedules (promote when the first is due, not on a
     * cadence), and which endpoints' last written attempt failed (urgent) */
    int64_t wall = ts_now_ms(), mono = ts_mono_ms();
    theap_cancel(w->timers, TIMER_FLUSH);
    for (job *j = job_first(w->jobs, JOB_LIST_DONE); j; j = j->next) {
        const job_writes *jw = job_writes_of(j->st);
        if (jw->settle == JOB_SETTLE_RETRY)
            promote_at(w, mono + (j->due_ms > wall ? j->due_ms - wall : 0));
        if (jw->failures == JOB_FAILURES_COUNT && j->attempted)
            strmap_put(w->failing, j->ep_id, w);
        else if (jw->failures == JOB_FAILURES_RESET)
            strmap_del(w->failing, j->ep_id);
    }
    results_out out = results_flush(w->results, w->link, w->jobs);
    if (out.kind != LINK_OK) {
        handle(w, out.kind, "writing results", "Redis I/O error writing results");
        return;
    }
    if (out.refused)
        full_refused(w, "a result write");
    else if (out.accepted)
        full_accepted(w);
    for (size_t i = 0; i < out.n_wake; i++)
        lclaim_wake(w->lanes, out.wake[i]);
    if (out.n_paused > 0) {
        /* every worker reloads and sends that endpoint's jobs to its lanes until the
         * pause ends; this one knows now. The version goes with the next writes. */
        for (size_t i = 0; i < out.n_paused; i++)
            LOG_I("endpoint %s answered Retry-After: paused for every worker", out.paused[i]);
        pipeline_begin(w->side, 0, NULL);
        pipeline_arg(w->side, "INCR");
        pipeline_arg(w->side, w->k_version);
        pipeline_end(w->side);
        if (send_side(w) == HQ_OK)
            theap_set(w->timers, TIMER_VERSION, 0); /* and reload after it */
    }
    if (out.breakers)
        theap_set(w->timers, TIMER_VERSION, 0); /* its jobs move to or from the lanes */
    for (size_t i = 0; i < out.n_disabled; i++)
        if (epindex_mark_disabled(w->eps, out.disabled[i])) {
            LOG_D("endpoint %s is disabled: no more requests to it", out.disabled[i]);
            theap_set(w->timers, TIMER_VERSION, 0); /* and reload now */
        }
}

/* The second failure in a row of an endpoint is written before anything else: its
 * count is what disables it, and every attempt started before the count is written is
 * one more request to a receiver that may be down. A lone failure among successes (a
 * 503 now and then) waits for the batch like a success. */
static int urgent(const worker *w) {
    for (job *j = job_first(w->jobs, JOB_LIST_DONE); j; j = j->next) {
        if (job_writes_of(j->st)->failures == JOB_FAILURES_COUNT &&
            strmap_get(w->failing, j->ep_id))
            return 1;
        if (j->lane_ordered)
            return 1; /* its key waits for this write: nothing else can go to it */
    }
    return 0;
}

/* Results go out in batches: at once when the batch is big, nothing else is in flight
 * to join it, the queue is full, we stop, or one is urgent (above); otherwise within
 * FLUSH_AFTER_MS of the first one waiting.
 * Leases are renewed meanwhile, so waiting costs nothing but those milliseconds. */
static int flush_due(worker *w) {
    size_t done = job_count(w->jobs, JOB_LIST_DONE);
    if (pipeline_len(w->side) > 0)
        return 1;
    if (done == 0)
        return 0;
    size_t big = (size_t)(w->c->delivery_concurrency > 32 ? w->c->delivery_concurrency / 2 : 16);
    if (done >= big || http_inflight(w->http) == 0 || w->stopping || room(w) == 0)
        return 1;
    if (urgent(w))
        return 1;
    if (!theap_is_set(w->timers, TIMER_FLUSH))
        theap_set(w->timers, TIMER_FLUSH, ts_mono_ms() + FLUSH_AFTER_MS);
    return theap_due(w->timers, TIMER_FLUSH) <= ts_mono_ms();
}

static void take_jobs(worker *w, const redisReply *entries, const int64_t *claims,
                      int64_t read_us) {
    intake_take(&w->intake, entries, claims, read_us);
}

static void fan_out(worker *w, const redisReply *entries, const int64_t *claims) {
    for (int tries = 0; tries < FANOUT_STALE_TRIES && w->up; tries++) {
        int64_t read_us = ts_mono_us();
        fanout_out o = fanout_run(w->fanout, w->link, w->c, &w->fkeys, w->eps, w->ep_version,
                                  w->cache, entries, claims, room(w));
        if (o.status == FANOUT_STALE) {
            LOG_D("fanout: endpoint index is stale (version %lld); reloading",
                  (long long)w->ep_version);
            if (reload(w) != HQ_OK)
                return; /* the events stay pending; reclaim hands them out again */
            continue;
        }
        if (o.status == FANOUT_FAILED) {
            /* under OOM this repeats every batch: full_refused logs it once */
            handle(w, o.kind, "fanout script (events left pending)", o.error);
            return;
        }
        if (o.claim_kind != LINK_OK)
            handle(w, o.claim_kind, "claiming fanned-out jobs", o.error);
        if (o.claimed)
            take_jobs(w, o.claimed, NULL, read_us);
        for (size_t i = 0; i < fanout_lane_count(w->fanout); i++)
            lclaim_wake(w->lanes, fanout_lane_endpoint(w->fanout, i));
        return;
    }
}

/* What this worker should take of an endpoint's lanes: its window there less the lane
 * jobs of it already held, and for an endpoint without max_in_flight one window more,
 * queued behind it (hides the claim's round trip). With max_in_flight a claimed job
 * holds one of the fleet's slots: a worker must not sit on slots it cannot send yet
 * while other workers could. */
static size_t lane_cap(void *ud, const char *ep_id) {
    worker *w = ud;
    size_t win = (size_t)scheduler_window(dispatch_scheduler(w->dispatch), ep_id), held = 0;
    const epindex_ent *en = epindex_get(w->eps, ep_id);
    size_t cap = en && en->e && en->e->max_in_flight > 0 ? win : 2 * win;
    for (int li = 0; li < JOB_LISTS; li++)
        for (const job *j = job_first(w->jobs, (job_list)li); j; j = j->next)
            held += j->lane && strcmp(j->ep_id, ep_id) == 0;
    return cap > held ? cap - held : 0;
}

/* Jobs from the lanes of the endpoints that have them (lane_claim.h), when some are
 * due and there is room; the timer wakes the loop for the next due one. */
static void claim_lanes(worker *w) {
    if (!w->up || w->stopping || w->recovering || lclaim_count(w->lanes) == 0)
        return;
    size_t r = room(w);
    if (r > 0) {
        lclaim_out o =
            lclaim_run(w->lanes, w->link, w->jobs, w->cache, r, lane_cap, w, ts_mono_us());
        if (o.kind != LINK_OK)
            handle(w, o.kind, "claiming from lanes", o.error);
    }
    int64_t next = lclaim_next_ms(w->lanes);
    if (next >= 0 && room(w) > 0)
        theap_set(w->timers, TIMER_LANES, next);
    else
        theap_cancel(w->timers, TIMER_LANES);
}

/* Stopping: lane jobs that will not be sent go back into their lanes now (lane_settle
 * "b"), so an ordered key does not wait out the lease of a worker that left. */
static void hand_back_lanes(worker *w) {
    job *nx;
    for (job *j = job_first(w->jobs, JOB_LIST_READY); j; j = nx) {
        nx = j->next;
        if (j->lane) {
            j->due_ms = ts_now_ms();
            job_transition(j, JOB_DEFERRED, "shutting down: back into its lane");
        }
    }
}

/* ------------------------------------------------------------ readers */

static void on_reader(void *ud, int fd, int events) {
    worker *w = ud;
    (void)events;
    for (int i = 0; i < READERS; i++) {
        if (w->rd_fd[i] != fd)
            continue;
        char err[HQ_ERRLEN];
        int complete = 0;
        if (!link_reader_pending(w->reader[i]) ||
            link_reader_recv(w->reader[i], w->rd[i], &complete, err, sizeof err) != LINK_OK) {
            /* readable with nothing asked: Redis closed it. Handled by the loop. */
            evloop_unwatch(w->loop, fd);
            w->rd_fd[i] = -1;
            w->reader_broken = 1;
            return;
        }
        if (complete)
            w->rd_ready[i] = 1;
        return;
    }
    evloop_unwatch(w->loop, fd); /* not ours any more */
}

/* How long a reader may go unanswered: its BLOCK, one command timeout, a second. */
static int64_t reader_limit_ms(const worker *w) {
    return READ_BLOCK_MS + w->c->redis_command_timeout_ms + 1000;
}

/* XREADGROUP GROUP group me COUNT n BLOCK READ_BLOCK_MS STREAMS key > */
static void arm(worker *w, int i, const char *group, const char *key, size_t count) {
    pipeline *p = w->rd[i];
    char err[HQ_ERRLEN];
    pipeline_reset(p);
    pipeline_begin(p, 0, NULL);
    pipeline_arg(p, "XREADGROUP");
    pipeline_arg(p, "GROUP");
    pipeline_arg(p, group);
    pipeline_arg(p, w->name);
    pipeline_arg(p, "COUNT");
    pipeline_argi(p, (int64_t)count);
    pipeline_arg(p, "BLOCK");
    pipeline_argi(p, READ_BLOCK_MS);
    pipeline_arg(p, "STREAMS");
    pipeline_arg(p, key);
    pipeline_arg(p, ">");
    pipeline_end(p);
    if (link_reader_send(w->reader[i], p, err, sizeof err) != LINK_OK) {
        go_down(w, err);
        return;
    }
    w->rd_sent[i] = ts_mono_ms();
    if (i == RD_JOBS)
        w->jobs_sent_us = ts_mono_us();
    /* a reader that never answers (a partition) must not hold its entries forever */
    theap_set_earlier(w->timers, TIMER_WATCHDOG, w->rd_sent[i] + reader_limit_ms(w));
}

/* Keep a read pending on each stream while there is room for what it brings. Jobs are
 * read in batches (at least a quarter of the queue, unless nothing is held), so a
 * trickle of free slots does not become a trickle of one-entry reads. Events only when
 * the jobs stream has no backlog for us, or every FANOUT_EVERY_MS: fanning out ahead of
 * delivery lets events leave the event cache before their jobs come round (every job
 * then costs an XRANGE and a second validation: 3.16 -> 2.18 commands per delivery and
 * +20% throughput when this rule came in), and the forced turn keeps a steady stream of
 * retries from starving fanout. */
static void arm_readers(worker *w) {
    size_t batch = (size_t)(w->c->delivery_batch > 0 ? w->c->delivery_batch : 1);
    if (!link_reader_pending(w->reader[RD_JOBS]) && !w->rd_ready[RD_JOBS]) {
        size_t r = room(w);
        size_t min = w->max_held / 4 < batch ? w->max_held / 4 : batch;
        if (r > 0 && (r >= min || job_held(w->jobs) == 0)) {
            w->rd_want = r < batch ? r : batch;
            arm(w, RD_JOBS, "deliver", w->k_jobs, w->rd_want);
        }
    }
    if (!w->up || link_reader_pending(w->reader[RD_EVENTS]) || w->rd_ready[RD_EVENTS])
        return;
    int64_t now = ts_mono_ms();
    if (room(w) == 0)
        return;
    /* A full jobs read says there is a backlog; a jobs read still unanswered after
     * BACKLOG_GONE_MS says there is none any more (Redis answers a read of a stream with
     * entries at once). */
    int backlog = w->jobs_backlog;
    int64_t gone = w->rd_sent[RD_JOBS] + BACKLOG_GONE_MS;
    if (backlog && link_reader_pending(w->reader[RD_JOBS]) && now >= gone)
        backlog = w->jobs_backlog = 0;
    if (!backlog || now >= w->next_fanout) {
        w->next_fanout = now + FANOUT_EVERY_MS;
        arm(w, RD_EVENTS, "fanout", w->k_events, batch);
    } else {
        /* wake for whichever comes first */
        theap_set_earlier(w->timers, TIMER_FANOUT, w->next_fanout);
        if (link_reader_pending(w->reader[RD_JOBS]))
            theap_set_earlier(w->timers, TIMER_FANOUT, gone);
    }
}

/* What the readers brought: jobs to intake, events to fanout. The reply is moved to
 * the reader's second pipeline and the reader re-armed first, so the next read is on
 * its way while this one is handled. */
static void take_reads(worker *w) {
    for (int i = 0; i < READERS && w->up; i++) {
        if (!w->rd_ready[i])
            continue;
        w->rd_ready[i] = 0;
        pipeline *p = w->rd[i];
        w->rd[i] = w->rd_taken[i];
        w->rd_taken[i] = p;
        const redisReply *rep = pipeline_reply(p, 0);
        link_kind k = link_reply_kind(rep);
        const redisReply *e = k == LINK_OK ? entry_stream_entries(rep) : NULL;
        if (i == RD_JOBS && k == LINK_OK) {
            /* a nil reply is a BLOCK that ended empty */
            w->jobs_backlog = e && e->elements >= w->rd_want;
            w->read_us = w->jobs_sent_us; /* before arm_readers sends the next */
        }
        if (!w->stopping && !w->recovering)
            arm_readers(w);
        if (k != LINK_OK)
            handle(w, k, "reading", rep ? rep->str : NULL);
        else if (e && !w->stopping && i == RD_JOBS)
            take_jobs(w, e, NULL, w->read_us);
        else if (e && !w->stopping)
            fan_out(w, e, NULL);
        pipeline_reset(p);
    }
}

/* A reader that has not answered long after its BLOCK ended: the connection is dead
 * without saying so (a partition, a frozen Redis). */
static void watchdog(worker *w) {
    int64_t now = ts_mono_ms(), limit = reader_limit_ms(w);
    for (int i = 0; i < READERS; i++) {
        if (!link_reader_pending(w->reader[i]))
            continue;
        if (now - w->rd_sent[i] >= limit) {
            go_down(w, "a blocking read got no answer");
            return;
        }
        theap_set_earlier(w->timers, TIMER_WATCHDOG, w->rd_sent[i] + limit);
    }
}

/* After a (re)connect: what Redis says is pending for us, taken back at once. */
static void recover(worker *w) {
    int done = 1;
    for (int s = 0; s < RECLAIM_STREAMS && w->up; s++) {
        size_t n = s == RECLAIM_JOBS ? room(w) : (size_t)RECLAIM_COUNT;
        if (n == 0) {
            done = 0; /* no room now: go on next iteration */
            continue;
        }
        int64_t read_us = ts_mono_us();
        reclaim_batch b = reclaim_own(w->reclaim, w->link, (reclaim_stream)s, n);
        if (b.kind != LINK_OK) {
            handle(w, b.kind, "recovering pending entries", NULL);
            continue;
        }
        if (b.entries && b.entries->elements > 0) {
            if (s == RECLAIM_JOBS)
                take_jobs(w, b.entries, NULL, read_us);
            else
                fan_out(w, b.entries, NULL);
        }
        if (!b.done)
            done = 0;
    }
    if (done && w->up)
        w->recovering = 0;
}

static void reclaim_stream_all(worker *w, reclaim_stream s) {
    for (int round = 0; round < RECLAIM_ROUNDS && w->up; round++) {
        size_t r = room(w);
        size_t count = s == RECLAIM_JOBS ? (r < RECLAIM_COUNT ? r : RECLAIM_COUNT) : RECLAIM_COUNT;
        if (count == 0)
            return;
        int64_t read_us = ts_mono_us();
        reclaim_batch b = reclaim_round(w->reclaim, w->link, s, count);
        if (b.kind != LINK_OK) {
            handle(w, b.kind, "reclaim", NULL);
            return;
        }
        if (b.entries && b.entries->elements > 0) {
            if (s == RECLAIM_JOBS)
                take_jobs(w, b.entries, b.counts, read_us);
            else
                fan_out(w, b.entries, b.counts);
        }
        if (b.done)
            return;
    }
}

/* Version check, promotion and trimming, whichever are due, in one round trip. */
static void redis_timers(worker *w, int version, int promote, int trim) {
    pipeline *p = w->tp;
    pipeline_reset(p);
    if (version) {
        pipeline_begin(p, TAG_VERSION, NULL);
        pipeline_arg(p, "GET");
        pipeline_arg(p, w->k_version);
        pipeline_end(p);
    }
    if (promote) {
        w->promoted_ms = ts_mono_ms();
        pipeline_eval(p, TAG_PROMOTE, NULL, &script_promote, 2);
        pipeline_arg(p, w->k_delay);
        pipeline_arg(p, w->k_jobs);
        pipeline_argi(p, PROMOTE_LIMIT);
        pipeline_end(p);
        /* when the next one is due: the timer goes there */
        pipeline_begin(p, TAG_NEXT_DUE, NULL);
        pipeline_arg(p, "ZRANGE");
        pipeline_arg(p, w->k_delay);
        pipeline_arg(p, "0");
        pipeline_arg(p, "0");
        pipeline_arg(p, "WITHSCORES");
        pipeline_end(p);
    }
    if (trim) {
        /* events are kept for retries and replays, then trimmed by age (ids are times) */
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "XTRIM");
        pipeline_arg(p, w->k_events);
        pipeline_arg(p, "MINID");
        pipeline_arg(p, "~");
        pipeline_argi(p, ts_now_ms() - w->c->events_retention_ms);
        pipeline_end(p);
    }
    if (pipeline_len(p) == 0)
        return;
    char err[HQ_ERRLEN];
    link_kind k = link_exec(w->link, p, err, sizeof err);
    if (k != LINK_OK) {
        handle(w, k, "timers", err);
        return;
    }
    int64_t now = ts_mono_ms();
    int more = 0;
    for (size_t i = 0; i < pipeline_len(p) && w->up; i++) {
        const redisReply *rep = pipeline_reply(p, i);
        link_kind rk = link_reply_kind(rep);
        if (rk != LINK_OK) {
            handle(w, rk, "timers", rep->str);
            continue;
        }
        switch (pipeline_tag(p, i)) {
        case TAG_VERSION: {
            int64_t v = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
            if (v != w->ep_version && !w->reloaded)
                reload(w);
            break;
        }
        case TAG_PROMOTE:
            if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
                LOG_D("promote: %lld due jobs back in the jobs stream", (long long)rep->integer);
                more = rep->integer >= PROMOTE_LIMIT; /* more are due: go again at once */
            }
            break;
        case TAG_NEXT_DUE: {
            if (more) {
                theap_set(w->timers, TIMER_PROMOTE, now);
                break;
            }
            int64_t next = now + PROMOTE_IDLE_MS;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                rep->element[1]->type == REDIS_REPLY_STRING) {
                /* scores are wall-clock ms (Redis TIME in promote.lua); small clock
                 * differences only move this by as much, and PROMOTE_IDLE_MS bounds it */
                int64_t due = (int64_t)strtod(rep->element[1]->str, NULL);
                int64_t in = due - ts_now_ms();
                if (in < 0)
                    in = 0;
                if (in < PROMOTE_IDLE_MS)
                    next = now + in;
            }
            promote_at(w, next);
            break;
        }
        }
    }
}

static void timers(worker *w) {
    int64_t now = ts_mono_ms();
    int64_t vis = w->c->delivery_visibility_timeout_ms;
    int version = 0, promote = 0, trim = 0, renew = 0, reclaim_due = 0;
    for (int id; (id = theap_pop_due(w->timers, now)) >= 0;) {
        switch (id) {
        case TIMER_VERSION:
            version = 1;
            theap_set(w->timers, TIMER_VERSION, now + w->c->endpoints_reload_interval_ms);
            break;
        case TIMER_PROMOTE:
            promote = 1; /* the reply sets the next one */
            break;
        case TIMER_TRIM:
            trim = 1;
            theap_set(w->timers, TIMER_TRIM, now + TRIM_EVERY_MS);
            break;
        case TIMER_RENEW:
            renew = 1;
            break;
        case TIMER_RECLAIM: {
            reclaim_due = 1;
            int64_t every = vis / 2;
            if (every > 5000)
                every = 5000;
            if (every < 250)
                every = 250;
            theap_set(w->timers, TIMER_RECLAIM, now + every);
            break;
        }
        case TIMER_WATCHDOG:
            watchdog(w);
            break;
        case TIMER_CONNECT:
            if (!w->up)
                try_connect(w);
            break;
        default:
            break; /* TIMER_FANOUT, TIMER_DISPATCH, TIMER_FLUSH: their point is the wake-up */
        }
    }
    if (!w->up || w->stopping) {
        if (promote)
            theap_set(w->timers, TIMER_PROMOTE, now + PROMOTE_IDLE_MS);
        return;
    }
    redis_timers(w, version, promote, trim);
    if (w->up && renew) {
        link_kind k = reclaim_renew(w->reclaim, w->link, w->jobs);
        if (k != LINK_OK)
            handle(w, k, "renewing leases", NULL);
    }
    /* leases are renewed every third of the visibility timeout while we hold jobs: two
     * renewals can fail before a lease lapses */
    if (job_held(w->jobs) > 0 && !theap_is_set(w->timers, TIMER_RENEW))
        theap_set(w->timers, TIMER_RENEW, now + (vis / 3 > 100 ? vis / 3 : 100));
    if (w->up && reclaim_due) {
        reclaim_stream_all(w, RECLAIM_JOBS);
        reclaim_stream_all(w, RECLAIM_EVENTS);
    }
}

static void fetch(worker *w) {
    char err[HQ_ERRLEN] = "";
    link_kind k =
        event_fetch_run(w->fetch, w->link, w->c, w->k_events, w->jobs, w->cache, err, sizeof err);
    if (k != LINK_OK)
        handle(w, k, "fetching events", err);
}

static void start_transfers(worker *w) {
    dispatch_out o = dispatch_run(w->dispatch, w->jobs, w->eps, w->loaded_us, room(w) == 0);
    /* a job for an endpoint this index does not know: maybe created since our last load
     * (another worker fanned out to it). Reload once if the index predates the read. */
    if (o.need_reload && w->up && !w->reloaded && w->loaded_us <= w->read_us && reload(w) == HQ_OK)
        dispatch_run(w->dispatch, w->jobs, w->eps, w->loaded_us, room(w) == 0);
    /* jobs wait for a slot with the queue full: the deferral rule needs a look again
     * even if no transfer ends meanwhile */
    if (job_count(w->jobs, JOB_LIST_READY) > 0 && room(w) == 0)
        theap_set_earlier(w->timers, TIMER_DISPATCH, ts_mono_ms() + DISPATCH_RECHECK_MS);
}

/* ------------------------------------------------------------ the loop */

/* How long the loop may sleep: 0 if something is ready now, else until the earliest
 * timer or curl's, -1 for as long as nothing happens. */
static int sleep_ms(worker *w) {
    if (http_has_done(w->http) || w->main_hup || w->reader_broken || pipeline_len(w->side) > 0 ||
        (w->up && w->ep_version < 0) || (w->up && w->recovering && !w->stopping))
        return 0;
    if (w->up && flush_due(w)) /* else it has set TIMER_FLUSH */
        return 0;
    for (int i = 0; i < READERS; i++)
        if (w->rd_ready[i])
            return 0;
    int t = http_timeout_ms(w->http);
    int64_t next = theap_next(w->timers);
    if (next != THEAP_NEVER) {
        int64_t left = next - ts_mono_ms();
        if (left < 0)
            left = 0;
        if (t < 0 || left < t)
            t = left > 1000000 ? 1000000 : (int)left;
    }
    return t;
}

int worker_run(worker *w, volatile sig_atomic_t *stop) {
    w->stop = stop;
    /* stop signals are taken only while the loop waits (event_loop.h), so one that
     * arrives while it works wakes the very next wait instead of being slept through */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    evloop_set_sigmask(w->loop, &waitmask);
    LOG_I("worker %s starting (concurrency %d, per endpoint %d, batch %d)", w->name,
          w->c->delivery_concurrency, w->c->delivery_per_endpoint, w->c->delivery_batch);
    theap_set(w->timers, TIMER_CONNECT, 0);
    for (;;) {
        int64_t now = ts_mono_ms();
        w->reloaded = 0;
        if (*stop && !w->stopping) {
            w->stopping = 1;
            w->stop_deadline = now + w->c->delivery_shutdown_grace_ms;
            LOG_I("shutdown: stopped reading; %zu deliveries in flight, grace %lldms",
                  job_count(w->jobs, JOB_LIST_INFLIGHT),
                  (long long)w->c->delivery_shutdown_grace_ms);
            /* a blocked read that is never answered claims nothing: closing its
             * connection ends it at once (and the ACL need not allow CLIENT UNBLOCK) */
            readers_down(w);
        }
        if (w->up && w->main_hup)
            go_down(w, "Redis closed the connection");
        if (w->up && w->reader_broken)
            go_down(w, "a reading connection failed");
        if (w->up && w->ep_version < 0)
            reload(w);
        http_tick(w->http);
        http_reap(w->http);
        if (w->up && w->recovering && !w->stopping)
            recover(w);
        /* new work first, so requests go out before the loop spends a round trip on
         * writing results (reaping freed the transfer slots already); only failures
         * that may disable an endpoint are written before it */
        if (w->up && urgent(w))
            flush(w);
        if (w->up)
            take_reads(w);
        claim_lanes(w);
        if (w->up && !w->stopping)
            fetch(w);
        if (!w->stopping)
            start_transfers(w);
        if (w->up && flush_due(w))
            flush(w);
        timers(w);
        claim_lanes(w);
        if (!w->stopping)
            start_transfers(w);
        /* new entries only once what Redis says is pending for us is taken back: a read
         * sent meanwhile would claim entries the recovery then reads again */
        if (w->up && !w->stopping && !w->recovering)
            arm_readers(w);

        int inflight = http_inflight(w->http);
        if (w->stopping)
            hand_back_lanes(w);
        if (w->stopping) {
            if (inflight == 0 && (job_count(w->jobs, JOB_LIST_DONE) == 0 || !w->up))
                break;
            if (ts_mono_ms() >= w->stop_deadline) {
                LOG_W("shutdown: grace period over; %d deliveries abandoned (they stay pending "
                      "for other workers)",
                      inflight);
                break;
            }
        }
        int t = sleep_ms(w);
        if (w->stopping) {
            int64_t left = w->stop_deadline - ts_mono_ms();
            if (t < 0 || t > left)
                t = left < 0 ? 0 : (int)left;
        }
        evloop_run(w->loop, t);
    }
    if (w->up)
        flush(w);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    LOG_I("worker %s stopped: %llu delivered, %llu failed attempts", w->name,
          (unsigned long long)dispatch_delivered(w->dispatch),
          (unsigned long long)dispatch_failed(w->dispatch));
    return HQ_OK;
}
