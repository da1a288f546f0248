/* worker.c -- the loop: the only place that decides to reconnect, reload, recover or
 * stop. Stages (intake, fanout, event_fetch, dispatch, results, reclaim) do one thing
 * each, return what happened as values and a link_kind, and never call each other or
 * back into the loop; only redis_link talks to Redis. docs/architecture.md has the map.
 *
 * One iteration: write the previous results; if just reconnected, take back what is
 * pending for us in Redis; read (endpoint version, due retries, jobs, events: one
 * pipeline, BLOCK only when idle so curl is never starved); fan out the events read;
 * the timers (reclaim, lease renewal, trimming); fetch missing events; start transfers;
 * poll curl briefly. */
#include "worker.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "addr_filter.h"
#include "dispatch.h"
#include "endpoint.h"
#include "endpoint_index.h"
#include "event_cache.h"
#include "event_fetch.h"
#include "fanout.h"
#include "hq.h"
#include "stream_entry.h"
#include "http_engine.h"
#include "intake.h"
#include "job.h"
#include "log.h"
#include "reclaim.h"
#include "redis_keys.h"
#include "redis_link.h"
#include "results.h"
#include "scheduler.h"
#include "scripts_gen.h"
#include "timestamp.h"

enum { READ_VERSION = 1, READ_PROMOTE, READ_JOBS, READ_EVENTS };

#define PROMOTE_LIMIT      1000
#define PROMOTE_EVERY_MS   100
#define BLOCK_MS           150
#define FANOUT_EVERY_MS    250 /* fanout at least this often, backlog or not */
#define BACKOFF_MIN_MS     100
#define TRIM_EVERY_MS      60000
#define RECLAIM_COUNT      100
#define RECLAIM_ROUNDS     10
#define FANOUT_STALE_TRIES 3
#define FULL_CLEAR_MS      10000 /* "writes accepted again" only after this long unrefused */

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
    intake_ctx intake;
    pipeline *rd;    /* the read pipeline; its replies live through fanout and intake */
    pipeline *side;  /* writes from intake and the timers, sent before the results */
    size_t max_held; /* jobs held at once (delivery.concurrency * 2) */
    /* endpoint index */
    int64_t ep_version; /* of the loaded index; -1 = load it now */
    int64_t loaded_us;  /* mono us when the last successful load started; 0 = never */
    int64_t read_us;    /* mono us when the last jobs read was sent */
    int reloaded;       /* loaded during this iteration (at most one version-driven reload) */
    /* timers, mono ms */
    int64_t next_version, next_promote, next_reclaim, next_renew, next_trim, next_fanout;
    int jobs_backlog; /* the last jobs read came back full: deliver before fanning out more */
    /* Redis state */
    int up, recovering;
    int64_t next_connect, backoff_ms;
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

static size_t room(const worker *w) {
    size_t h = job_held(w->jobs);
    return h >= w->max_held ? 0 : w->max_held - h;
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
    w->http = http_new(c, w->filter, err, errlen);
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
    w->reclaim = reclaim_new(c, w->k_jobs, w->k_events, w->name);
    w->rd = pipeline_new();
    w->side = pipeline_new();
    if (!w->link || !w->eps || !w->cache || !w->jobs || !w->dispatch || !w->fanout || !w->fetch ||
        !w->results || !w->reclaim || !w->rd || !w->side) {
        hq_seterr(err, errlen, "out of memory");
        goto fail;
    }
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
    pipeline_free(w->rd);
    pipeline_free(w->side);
    link_free(w->link);
    addr_filter_free(w->filter);
    free(w);
}

/* ------------------------------------------------------------ Redis state */

static int64_t jitter(worker *w, int64_t ms) {
    /* uniformly in [ms/2, ms]: spreads reconnect storms of many workers */
    return ms / 2 + (int64_t)(next_rand(w) % (uint64_t)(ms / 2 + 1));
}

static void go_down(worker *w, const char *why) {
    if (w->up)
        LOG_W("redis: connection lost (%s); in-flight deliveries continue, reconnecting", why);
    w->up = 0;
    link_down(w->link);
    w->backoff_ms = BACKOFF_MIN_MS;
    w->next_connect = ts_mono_ms() + jitter(w, w->backoff_ms);
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
    LOG_I("endpoints: loaded %zu (version %lld)%s", n, (long long)t.version,
          t.n_bad ? ", some unreadable (above)" : "");
cleanup:
    epindex_free(next);
    free(ids);
    free(broken);
    ep_table_clear(&t);
    return rc;
}

static void try_connect(worker *w) {
    int64_t now = ts_mono_ms();
    if (now < w->next_connect)
        return;
    char err[HQ_ERRLEN];
    if (link_connect(w->link, err, sizeof err) != HQ_OK) {
        if (w->backoff_ms <= BACKOFF_MIN_MS)
            LOG_W("redis: %s; retrying with backoff up to %lldms", err,
                  (long long)w->c->redis_reconnect_max_ms);
        w->backoff_ms *= 2;
        if (w->backoff_ms > w->c->redis_reconnect_max_ms)
            w->backoff_ms = w->c->redis_reconnect_max_ms;
        if (w->backoff_ms < BACKOFF_MIN_MS)
            w->backoff_ms = BACKOFF_MIN_MS;
        w->next_connect = now + jitter(w, w->backoff_ms);
        return;
    }
    LOG_I("redis: connected to %s", link_where(w->link));
    w->up = 1;
    w->backoff_ms = BACKOFF_MIN_MS;
    /* it may be another dataset now (restart without persistence, failover): reload
     * the index even if the version counter happens to read the same */
    w->ep_version = -1;
    w->next_promote = w->next_reclaim = w->next_renew = 0;
    /* replies lost in the outage may have left entries pending for us that we do not
     * hold: take them back now, not after the visibility timeout */
    w->recovering = 1;
    reclaim_restart(w->reclaim, RECLAIM_JOBS);
    reclaim_restart(w->reclaim, RECLAIM_EVENTS);
    create_groups(w);
}

/* ------------------------------------------------------------ stages, as the loop runs them */

static void flush(worker *w) {
    char err[HQ_ERRLEN];
    if (pipeline_len(w->side) > 0) {
        link_kind k = link_exec(w->link, w->side, err, sizeof err);
        if (k != LINK_OK) {
            handle(w, k, "side writes", err); /* bad entries stay pending: reclaim */
            pipeline_reset(w->side);
            return;
        }
        for (size_t i = 0; i < pipeline_len(w->side); i++) {
            const redisReply *rep = pipeline_reply(w->side, i);
            link_kind rk = link_reply_kind(rep);
            if (rk != LINK_OK)
                handle(w, rk, "side write", rep->str);
        }
        pipeline_reset(w->side);
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
    for (size_t i = 0; i < out.n_disabled; i++)
        if (epindex_mark_disabled(w->eps, out.disabled[i])) {
            LOG_D("endpoint %s is disabled: no more requests to it", out.disabled[i]);
            w->next_version = 0; /* and reload at the next read */
        }
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
        return;
    }
}

static int idle(const worker *w) {
    return job_held(w->jobs) == 0;
}

static void read_all(worker *w) {
    int64_t now = ts_mono_ms();
    pipeline *p = w->rd;
    pipeline_reset(p);
    if (now >= w->next_version) {
        pipeline_begin(p, READ_VERSION, NULL);
        pipeline_arg(p, "GET");
        pipeline_arg(p, w->k_version);
        pipeline_end(p);
        w->next_version = now + w->c->endpoints_reload_interval_ms;
    }
    if (now >= w->next_promote) {
        pipeline_eval(p, READ_PROMOTE, NULL, &script_promote, 2);
        pipeline_arg(p, w->k_delay);
        pipeline_arg(p, w->k_jobs);
        pipeline_argi(p, PROMOTE_LIMIT);
        pipeline_end(p);
        w->next_promote = now + PROMOTE_EVERY_MS;
    }
    size_t r = room(w);
    size_t batch = (size_t)(w->c->delivery_batch > 0 ? w->c->delivery_batch : 1);
    size_t want_jobs = r < batch ? r : batch;
    /* Fan out only when the jobs stream has no backlog for us (the last jobs read came
     * back short). Otherwise fanout runs ahead of delivery, the events it read leave the
     * event cache before their jobs come round, and every job costs an XRANGE and a
     * second validation (the benchmark measured 3.16 -> 2.18 commands per delivery and
     * +20% throughput). Forced every FANOUT_EVERY_MS so a steady stream of retries
     * cannot starve fanout. */
    int do_fanout = r > 0 && (!w->jobs_backlog || now >= w->next_fanout);
    if (r > 0) {
        pipeline_begin(p, READ_JOBS, NULL);
        pipeline_arg(p, "XREADGROUP");
        pipeline_arg(p, "GROUP");
        pipeline_arg(p, "deliver");
        pipeline_arg(p, w->name);
        pipeline_arg(p, "COUNT");
        pipeline_argi(p, (int64_t)want_jobs);
        pipeline_arg(p, "STREAMS");
        pipeline_arg(p, w->k_jobs);
        pipeline_arg(p, ">");
        pipeline_end(p);
    }
    if (do_fanout) {
        w->next_fanout = now + FANOUT_EVERY_MS;
        pipeline_begin(p, READ_EVENTS, NULL);
        pipeline_arg(p, "XREADGROUP");
        pipeline_arg(p, "GROUP");
        pipeline_arg(p, "fanout");
        pipeline_arg(p, w->name);
        pipeline_arg(p, "COUNT");
        pipeline_argi(p, (int64_t)batch);
        if (idle(w)) {
            /* nothing in flight: wait in Redis rather than spin */
            pipeline_arg(p, "BLOCK");
            pipeline_argi(p, BLOCK_MS);
        }
        pipeline_arg(p, "STREAMS");
        pipeline_arg(p, w->k_events);
        pipeline_arg(p, ">");
        pipeline_end(p);
    }
    if (pipeline_len(p) == 0)
        return;
    char err[HQ_ERRLEN];
    int64_t read_us = ts_mono_us();
    link_kind k = link_exec(w->link, p, err, sizeof err);
    if (k != LINK_OK) {
        handle(w, k, "reading", err);
        return;
    }
    int nogroup = 0;
    for (size_t i = 0; i < pipeline_len(p) && w->up; i++) {
        const redisReply *rep = pipeline_reply(p, i);
        link_kind rk = link_reply_kind(rep);
        if (rk == LINK_NOGROUP) {
            nogroup = 1;
            continue;
        }
        if (rk != LINK_OK) {
            handle(w, rk, "reading", rep->str);
            continue;
        }
        switch (pipeline_tag(p, i)) {
        case READ_VERSION: {
            int64_t v = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
            if (v != w->ep_version && !w->reloaded)
                reload(w);
            break;
        }
        case READ_PROMOTE:
            if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
                LOG_D("promote: %lld due jobs back in the jobs stream", (long long)rep->integer);
                if (rep->integer >= PROMOTE_LIMIT)
                    w->next_promote = 0; /* more are due: go again next iteration */
            }
            break;
        case READ_JOBS: {
            const redisReply *e = entry_stream_entries(rep);
            w->jobs_backlog = e && e->elements >= want_jobs;
            w->read_us = read_us;
            if (e)
                take_jobs(w, e, NULL, read_us);
            break;
        }
        case READ_EVENTS: {
            const redisReply *e = entry_stream_entries(rep);
            if (e)
                fan_out(w, e, NULL);
            break;
        }
        }
    }
    if (nogroup && w->up)
        handle(w, LINK_NOGROUP, "reading", NULL);
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

static void timers(worker *w) {
    int64_t now = ts_mono_ms();
    int64_t vis = w->c->delivery_visibility_timeout_ms;
    if (now >= w->next_renew) {
        /* a third of the visibility timeout: two renewals can fail before a lease lapses */
        int64_t every = vis / 3 > 100 ? vis / 3 : 100;
        w->next_renew = now + every;
        link_kind k = reclaim_renew(w->reclaim, w->link, w->jobs);
        if (k != LINK_OK)
            handle(w, k, "renewing leases", NULL);
    }
    if (w->up && now >= w->next_reclaim) {
        int64_t every = vis / 2;
        if (every > 5000)
            every = 5000;
        if (every < 250)
            every = 250;
        w->next_reclaim = now + every;
        reclaim_stream_all(w, RECLAIM_JOBS);
        reclaim_stream_all(w, RECLAIM_EVENTS);
    }
    if (w->up && now >= w->next_trim) {
        /* events are kept for retries and replays, then trimmed by age (ids are times) */
        w->next_trim = now + TRIM_EVERY_MS;
        pipeline_begin(w->side, 0, NULL);
        pipeline_arg(w->side, "XTRIM");
        pipeline_arg(w->side, w->k_events);
        pipeline_arg(w->side, "MINID");
        pipeline_arg(w->side, "~");
        pipeline_argi(w->side, ts_now_ms() - w->c->events_retention_ms);
        pipeline_end(w->side);
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
}

/* ------------------------------------------------------------ the loop */

int worker_run(worker *w, volatile sig_atomic_t *stop) {
    w->stop = stop;
    LOG_I("worker %s starting (concurrency %d, per endpoint %d, batch %d)", w->name,
          w->c->delivery_concurrency, w->c->delivery_per_endpoint, w->c->delivery_batch);
    for (;;) {
        int64_t now = ts_mono_ms();
        w->reloaded = 0;
        if (*stop && !w->stopping) {
            w->stopping = 1;
            w->stop_deadline = now + w->c->delivery_shutdown_grace_ms;
            LOG_I("shutdown: stopped reading; %zu deliveries in flight, grace %lldms",
                  job_count(w->jobs, JOB_LIST_INFLIGHT),
                  (long long)w->c->delivery_shutdown_grace_ms);
        }
        if (!w->up)
            try_connect(w);
        if (w->up && w->ep_version < 0)
            reload(w);
        if (w->up)
            flush(w);
        if (w->up && w->recovering && !w->stopping)
            recover(w);
        if (w->up && !w->stopping)
            read_all(w);
        if (w->up && !w->stopping)
            timers(w);
        if (w->up && !w->stopping)
            fetch(w);
        if (!w->stopping)
            start_transfers(w);

        int inflight = http_inflight(w->http);
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
        if (inflight > 0) {
            /* short waits keep Redis reads and result writes flowing while curl works;
             * longer when we could not take more work anyway */
            http_poll(w->http, room(w) > 0 && !w->stopping ? 10 : 50);
        } else {
            http_poll(w->http, 0);
            if (!w->up)
                poll(NULL, 0, 50);
        }
    }
    if (w->up)
        flush(w);
    LOG_I("worker %s stopped: %llu delivered, %llu failed attempts", w->name,
          (unsigned long long)dispatch_delivered(w->dispatch),
          (unsigned long long)dispatch_failed(w->dispatch));
    return HQ_OK;
}
