/* results.c -- see results.h. */
#include "results.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "lane.h"
#include "log.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "string_map.h"
#include "timestamp.h"
#include "units.h"

enum { TAG_OTHER = 0, TAG_LOG, TAG_FAIL, TAG_SETTLE, TAG_LANE_PUSH, TAG_LANE_SETTLE, TAG_PAUSE };

/* Outcomes per fail.lua call, jobs per settle_batch.lua call: keeps each script call
 * short (it blocks Redis while it runs) and its arguments small (a dead letter is about
 * 1 KiB of them, so a settle call stays near 100 KiB). */
#define RESULTS_CALL_MAX 100
#define SEQ_END          SIZE_MAX

typedef struct ep_group ep_group;

/* The jobs of one script call: r->cj[first .. first + n), in the order of its
 * arguments. A pipeline command of TAG_FAIL / TAG_SETTLE carries its call's index. */
typedef struct call {
    size_t first, n;
} call;

struct results {
    const cfg *c;
    const results_keys *k;
    pipeline *p, *retry_log;
    char **disabled;
    size_t n_disabled, cap_disabled;
    /* per flush, room for cap done jobs (reserve) */
    size_t cap;
    job **seq;        /* successes and counted failures, grouped per endpoint */
    size_t *seq_next; /* the next of the same endpoint, SEQ_END */
    ep_group *groups; /* one per endpoint of seq */
    job **cj;         /* the jobs of every script call, call after call */
    size_t n_cj;
    call *calls;
    size_t n_calls;
    char **wake; /* lane endpoints whose lanes still hold jobs after this round */
    size_t n_wake, cap_wake;
    char **paused; /* endpoints this round paused for the fleet (pause.lua said 1) */
    size_t n_paused, cap_paused;
    strmap *recent;       /* endpoint id -> last failure ms we wrote (malloc'd int64_t) */
    int64_t recent_prune; /* when recent was last pruned (wall ms) */
    results_breaker_fn breaker_fn;
    const void *breaker_ctx;
};

results *results_new(const cfg *c, const results_keys *k) {
    results *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->c = c;
    r->k = k;
    r->p = pipeline_new();
    r->retry_log = pipeline_new();
    r->recent = strmap_new();
    if (!r->p || !r->retry_log || !r->recent) {
        results_free(r);
        return NULL;
    }
    return r;
}

/* ---- the breaker's window needs successes too ------------------------------------
 * A round that only delivered to an endpoint is one DEL of its failure counter: no
 * script, nothing Redis could refuse. But the breaker's window (fail.lua, P:{ep}:health)
 * must see successes as attempts, or a mostly healthy endpoint with a few failures would
 * look like one that only fails. So the successes of an endpoint go through fail.lua
 * while this worker wrote a failure for it within breaker.window (r->recent), or while
 * the cached endpoint says its breaker is not closed (a probe's success closes it, and
 * the probe may be the first request this worker made to it). Healthy endpoints keep
 * the DEL. */

typedef struct prune_ctx {
    int64_t before;
    char **stale;
    size_t n, cap;
} prune_ctx;

static void collect_stale(void *ctx, const char *key, void *val) {
    prune_ctx *pc = ctx;
    if (*(const int64_t *)val >= pc->before)
        return;
    if (pc->n == pc->cap) {
        size_t cap = pc->cap ? pc->cap * 2 : 16;
        char **ns = realloc(pc->stale, cap * sizeof *ns);
        if (!ns)
            return; /* pruned next time */
        pc->stale = ns;
        pc->cap = cap;
    }
    char *k = strdup(key);
    if (k)
        pc->stale[pc->n++] = k;
}

/* Forget the endpoints whose last failure is older than before (INT64_MAX: all). */
static void prune_recent(results *r, int64_t before) {
    if (!r->recent)
        return;
    prune_ctx pc = {.before = before};
    strmap_each(r->recent, collect_stale, &pc);
    for (size_t i = 0; i < pc.n; i++) {
        free(strmap_del(r->recent, pc.stale[i]));
        free(pc.stale[i]);
    }
    free(pc.stale);
}

static void note_failure(results *r, const char *ep_id, int64_t now) {
    int64_t *at = strmap_get(r->recent, ep_id);
    if (!at) {
        at = malloc(sizeof *at);
        if (!at)
            return;
        if (strmap_put(r->recent, ep_id, at) != HQ_OK) {
            free(at);
            return;
        }
    }
    *at = now;
}

/* Whether an endpoint's successes of this round must reach its breaker window. */
static int window_wants_successes(const results *r, const char *ep_id, int64_t now) {
    if (!r->c->breaker_enabled)
        return 0;
    const int64_t *at = strmap_get(r->recent, ep_id);
    if (at && now - *at <= r->c->breaker_window_ms)
        return 1;
    return r->breaker_fn && r->breaker_fn(r->breaker_ctx, ep_id);
}

void results_set_breaker_fn(results *r, results_breaker_fn fn, const void *ctx) {
    r->breaker_fn = fn;
    r->breaker_ctx = ctx;
}

static void clear_disabled(results *r) {
    for (size_t i = 0; i < r->n_disabled; i++)
        free(r->disabled[i]);
    r->n_disabled = 0;
    for (size_t i = 0; i < r->n_wake; i++)
        free(r->wake[i]);
    r->n_wake = 0;
    for (size_t i = 0; i < r->n_paused; i++)
        free(r->paused[i]);
    r->n_paused = 0;
}

/* Append id to a set of strings kept as an array (a round has few lane endpoints). */
static void add_unique(char ***v, size_t *n, size_t *cap, const char *id) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], id) == 0)
            return;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return;
        *v = nv;
        *cap = nc;
    }
    char *s = strdup(id);
    if (s)
        (*v)[(*n)++] = s;
}

void results_free(results *r) {
    if (!r)
        return;
    clear_disabled(r);
    free(r->disabled);
    free(r->wake);
    free(r->paused);
    pipeline_free(r->p);
    pipeline_free(r->retry_log);
    free(r->seq);
    free(r->seq_next);
    free(r->groups);
    free(r->cj);
    free(r->calls);
    prune_recent(r, INT64_MAX);
    strmap_free(r->recent);
    free(r);
}

static void add_disabled(results *r, const char *id) {
    add_unique(&r->disabled, &r->n_disabled, &r->cap_disabled, id);
}

/* The log entry's field/value pairs (docs/keys.md "Delivery log entry"). */
static void log_fields(const results *r, pipeline *p, const job *j, const char *oc_name) {
    char iso[TS_ISO_LEN] = "";
    if (j->st == JOB_RETRY)
        ts_iso(j->due_ms, iso, sizeof iso);
    pipeline_arg(p, "event_id");
    pipeline_arg(p, j->ev ? j->ev->e.id : "");
    pipeline_arg(p, "event");
    pipeline_arg(p, j->evsid);
    pipeline_arg(p, "type");
    pipeline_arg(p, j->ev ? j->ev->e.type : "");
    pipeline_arg(p, "attempt");
    pipeline_argi(p, j->attempt);
    pipeline_arg(p, "outcome");
    pipeline_arg(p, oc_name);
    pipeline_arg(p, "status");
    pipeline_argi(p, j->attempted ? j->res.http_status : 0);
    pipeline_arg(p, "latency_ms");
    pipeline_argi(p, j->attempted ? j->res.latency_ms : 0);
    pipeline_arg(p, "error");
    pipeline_arg(p, j->error);
    pipeline_arg(p, "response");
    pipeline_arg(p, j->attempted ? j->res.excerpt : "");
    pipeline_arg(p, "delivery");
    pipeline_arg(p, j->dlv);
    pipeline_arg(p, "worker");
    pipeline_arg(p, r->k->me);
    pipeline_arg(p, "next_try");
    pipeline_arg(p, iso);
}

static void put_log(const results *r, pipeline *p, job *j, const char *oc_name) {
    char key[KEY_MAX];
    if (key_log(r->c->redis_prefix, j->ep_id, key, sizeof key) != HQ_OK)
        return;
    pipeline_begin(p, TAG_LOG, j);
    pipeline_arg(p, "XADD");
    pipeline_arg(p, key);
    pipeline_arg(p, "NOMKSTREAM");
    pipeline_arg(p, "MAXLEN");
    pipeline_arg(p, "~");
    pipeline_argi(p, r->c->delivery_log_maxlen);
    pipeline_arg(p, "*");
    log_fields(r, p, j, oc_name);
    pipeline_end(p);
}

static void put_log_script(const results *r, pipeline *p, job *j, const char *oc_name) {
    char key[KEY_MAX], ke[KEY_MAX];
    if (key_log(r->c->redis_prefix, j->ep_id, key, sizeof key) != HQ_OK ||
        key_endpoint(r->c->redis_prefix, j->ep_id, ke, sizeof ke) != HQ_OK)
        return;
    pipeline_eval(p, TAG_LOG, j, &script_log, 2);
    pipeline_arg(p, key);
    pipeline_arg(p, ke);
    pipeline_argi(p, r->c->delivery_log_maxlen);
    log_fields(r, p, j, oc_name);
    pipeline_end(p);
}

static void put_breaker_args(const results *r, pipeline *p);

/* One endpoint's outcomes that touch its failure counter, in completion order: the
 * successes and the failed attempts that made a request. */
struct ep_group {
    size_t head, tail; /* indices into r->seq, linked by r->seq_next */
    size_t failures;   /* how many of them are counted failures */
};

/* The failure counter and breaker window of one endpoint: DEL if the batch only
 * delivered to it (and its window does not want the successes, above), else fail.lua
 * with every outcome in order, in calls of at most RESULTS_CALL_MAX outcomes, so "fail,
 * success, fail" ends at 1. Each success is one "s" (the window counts attempts); with
 * breaker.enabled false a run of successes is one. */
static void put_counter(results *r, pipeline *p, const ep_group *g, const char *now_iso,
                        int64_t now) {
    const char *ep_id = r->seq[g->head]->ep_id;
    char kf[KEY_MAX], ke[KEY_MAX], kh[KEY_MAX];
    if (key_failures(r->c->redis_prefix, ep_id, kf, sizeof kf) != HQ_OK ||
        key_endpoint(r->c->redis_prefix, ep_id, ke, sizeof ke) != HQ_OK ||
        key_ep_part(r->c->redis_prefix, ep_id, KEY_EP_HEALTH, kh, sizeof kh) != HQ_OK)
        return;
    if (g->failures > 0 && r->c->breaker_enabled)
        note_failure(r, ep_id, now);
    if (g->failures == 0 && !window_wants_successes(r, ep_id, now)) {
        pipeline_begin(p, TAG_OTHER, NULL);
        pipeline_arg(p, "DEL");
        pipeline_arg(p, kf);
        pipeline_end(p);
        return;
    }
    size_t i = g->head;
    while (i != SEQ_END) {
        call *c = &r->calls[r->n_calls];
        c->first = r->n_cj;
        c->n = 0;
        pipeline_eval(p, TAG_FAIL, (void *)(uintptr_t)r->n_calls, &script_fail, 5);
        r->n_calls++;
        pipeline_arg(p, kf);
        pipeline_arg(p, ke);
        pipeline_arg(p, r->k->version);
        pipeline_arg(p, r->k->events);
        pipeline_arg(p, kh);
        pipeline_argi(p, r->c->endpoints_disable_after);
        pipeline_arg(p, now_iso);
        pipeline_arg(p, ep_id);
        pipeline_argi(p, now);
        put_breaker_args(r, p);
        int prev_success = 0;
        for (; i != SEQ_END && c->n < RESULTS_CALL_MAX; i = r->seq_next[i]) {
            job *j = r->seq[i];
            if (job_writes_of(j->st)->failures == JOB_FAILURES_RESET) {
                if (prev_success && !r->c->breaker_enabled)
                    continue;
                pipeline_arg(p, "s");
                prev_success = 1;
            } else if (j->oc == OUT_GONE) {
                pipeline_arg(p, "g");
                prev_success = 0;
            } else {
                char tok[1 + sizeof j->error];
                size_t len = strnlen(j->error, sizeof j->error - 1);
                tok[0] = 'f';
                memcpy(tok + 1, j->error, len);
                pipeline_argn(p, tok, 1 + len);
                prev_success = 0;
            }
            r->cj[r->n_cj++] = j;
            c->n++;
        }
        pipeline_end(p);
    }
}

/* fail.lua's ARGV[5..9]: the breaker's settings (window 0 = off). */
static void put_breaker_args(const results *r, pipeline *p) {
    char ratio[32];
    snprintf(ratio, sizeof ratio, "%.17g", r->c->breaker_failure_ratio);
    pipeline_argi(p, r->c->breaker_enabled ? r->c->breaker_window_ms : 0);
    pipeline_argi(p, r->c->breaker_min_attempts);
    pipeline_arg(p, ratio);
    pipeline_argi(p, r->c->breaker_cooldown_ms);
    pipeline_argi(p, r->c->breaker_max_cooldown_ms);
}

/* The settle.lua-style writes of one job in a settle_batch.lua call: its stream id, the
 * index of its endpoint's hash in KEYS, and "retry" due member | "dead" n pairs. */
static void settle_args(const results *r, pipeline *p, const job *j, int key_index,
                        const char *now_iso) {
    const job_writes *w = job_writes_of(j->st);
    pipeline_arg(p, j->sid);
    pipeline_argi(p, key_index);
    if (w->settle == JOB_SETTLE_RETRY) {
        char member[256];
        snprintf(member, sizeof member, "%s %s %d %s", j->evsid, j->ep_id,
                 j->attempt + w->attempt_step, j->dlv[0] ? j->dlv : j->sid);
        pipeline_arg(p, "retry");
        pipeline_argi(p, j->due_ms);
        pipeline_arg(p, member);
        return;
    }
    pipeline_arg(p, "dead");
    pipeline_argi(p, 9);
    pipeline_arg(p, "kind");
    pipeline_arg(p, "job");
    pipeline_arg(p, "event");
    pipeline_arg(p, j->evsid);
    pipeline_arg(p, "event_id");
    pipeline_arg(p, j->ev ? j->ev->e.id : "");
    pipeline_arg(p, "type");
    pipeline_arg(p, j->ev ? j->ev->e.type : "");
    pipeline_arg(p, "endpoint");
    pipeline_arg(p, j->ep_id);
    pipeline_arg(p, "attempt");
    pipeline_argi(p, j->attempt);
    pipeline_arg(p, "error");
    pipeline_arg(p, j->error);
    pipeline_arg(p, "status");
    pipeline_argi(p, j->attempted ? j->res.http_status : 0);
    pipeline_arg(p, "failed_at");
    pipeline_arg(p, now_iso);
}

/* One settle_batch.lua call for the jobs r->cj[first .. first + n): the queue's keys, then
 * each endpoint's hash once, then every job in order. HQ_ERR (nothing queued) on OOM. */
static int put_settle(results *r, pipeline *p, size_t first, size_t n, const char *now_iso) {
    const char *eps[RESULTS_CALL_MAX];
    int idx[RESULTS_CALL_MAX];
    size_t neps = 0;
    strmap *seen = strmap_new();
    if (!seen)
        return HQ_ERR;
    for (size_t i = 0; i < n; i++) {
        const char *epid = r->cj[first + i]->ep_id;
        uintptr_t at = (uintptr_t)strmap_get(seen, epid);
        if (at == 0) {
            if (strmap_put(seen, epid, (void *)(uintptr_t)(neps + 1)) != HQ_OK) {
                strmap_free(seen);
                return HQ_ERR;
            }
            eps[neps++] = epid;
            at = neps;
        }
        idx[i] = (int)(3 + at); /* KEYS[4] is the first endpoint */
    }
    strmap_free(seen);
    call *c = &r->calls[r->n_calls];
    c->first = first;
    c->n = n;
    pipeline_eval(p, TAG_SETTLE, (void *)(uintptr_t)r->n_calls, &script_settle_batch,
                  (int)(3 + neps));
    r->n_calls++;
    pipeline_arg(p, r->k->jobs);
    pipeline_arg(p, r->k->delay);
    pipeline_arg(p, r->k->dead);
    for (size_t e = 0; e < neps; e++) {
        char ke[KEY_MAX];
        key_endpoint(r->c->redis_prefix, eps[e], ke, sizeof ke); /* checked by the caller */
        pipeline_arg(p, ke);
    }
    pipeline_arg(p, "deliver");
    pipeline_arg(p, r->k->me);
    pipeline_argi(p, r->c->dead_maxlen);
    pipeline_argi(p, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        settle_args(r, p, r->cj[first + i], idx[i], now_iso);
    pipeline_end(p);
    return HQ_OK;
}

/* ---- lane jobs (docs/policies.md): they settle on their endpoint's slot ---------- */

/* The dead letter of a lane job: what settle_args writes, plus where it stood in its
 * lane (order_key, overtaken_by: the event right behind it, which goes next;
 * waiting_behind). Written before lane_settle.lua lets the next one go. */
static void put_lane_dead(const results *r, pipeline *p, const job *j, const char *now_iso) {
    char next[64] = "";
    if (j->next_lid[0] && lane_sid_of(j->next_lid, next, sizeof next) != HQ_OK)
        next[0] = '\0';
    pipeline_begin(p, TAG_OTHER, NULL);
    pipeline_arg(p, "XADD");
    pipeline_arg(p, r->k->dead);
    if (r->c->dead_maxlen > 0) {
        pipeline_arg(p, "MAXLEN");
        pipeline_arg(p, "~");
        pipeline_argi(p, r->c->dead_maxlen);
    }
    pipeline_arg(p, "*");
    const char *kv[][2] = {{"kind", "job"},
                           {"event", j->evsid},
                           {"event_id", j->ev ? j->ev->e.id : ""},
                           {"type", j->ev ? j->ev->e.type : ""},
                           {"endpoint", j->ep_id},
                           {"error", j->error},
                           {"failed_at", now_iso},
                           {"order_key", j->lkey ? j->lkey : ""},
                           {"overtaken_by", next}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        pipeline_arg(p, kv[i][0]);
        pipeline_arg(p, kv[i][1]);
    }
    pipeline_arg(p, "attempt");
    pipeline_argi(p, j->attempt);
    pipeline_arg(p, "status");
    pipeline_argi(p, j->attempted ? j->res.http_status : 0);
    pipeline_arg(p, "waiting_behind");
    pipeline_argi(p, j->behind);
    pipeline_end(p);
}

/* An unordered lane job's retry goes through the shared delay zset like any other (it
 * is adopted back into the lane when promoted); written before its lease is dropped. */
static void put_lane_retry(const results *r, pipeline *p, const job *j) {
    char member[256];
    snprintf(member, sizeof member, "%s %s %d %s", j->evsid, j->ep_id, j->attempt + 1,
             j->dlv[0] ? j->dlv : j->sid);
    pipeline_begin(p, TAG_OTHER, NULL);
    pipeline_arg(p, "ZADD");
    pipeline_arg(p, r->k->delay);
    pipeline_argi(p, j->due_ms);
    pipeline_arg(p, member);
    pipeline_end(p);
}

/* A 429 or 503 with Retry-After holds the endpoint for every worker until then. */
static int64_t pause_of(const job *j) {
    if (j->st != JOB_RETRY || !j->attempted || !j->res.retry_after[0])
        return 0;
    return j->res.http_status == 429 || j->res.http_status == 503 ? j->due_ms : 0;
}

/* Which lane_settle.lua action a finished lane job takes, writing first what must come
 * first. */
static char lane_action(const results *r, pipeline *p, const job *j, const char *now_iso) {
    switch (j->st) {
    case JOB_DEAD:
        put_lane_dead(r, p, j, now_iso);
        return 'd';
    case JOB_RETRY:
        if (j->lane_ordered)
            return 'r';
        put_lane_retry(r, p, j);
        return 'q';
    case JOB_DEFERRED:
        return 'b';
    default:
        return 'd';
    }
}

/* Every lane job of the round, grouped per endpoint: one lane_settle.lua each (in calls
 * of RESULTS_CALL_MAX); and every LANED job, one lane_push.lua per endpoint. */
static void put_lanes(results *r, pipeline *p, job_table *jobs, const char *now_iso, int push) {
    strmap *done = strmap_new();
    if (!done)
        return;
    for (job *g = job_first(jobs, JOB_LIST_DONE); g; g = g->next) {
        int mine = push ? g->st == JOB_LANED : g->lane;
        if (!mine || strmap_get(done, g->ep_id))
            continue;
        strmap_put(done, g->ep_id, g);
        int64_t pause = 0;
        for (job *j = g; !push && j; j = j->next)
            if (j->lane && strcmp(j->ep_id, g->ep_id) == 0 && pause_of(j) > pause)
                pause = pause_of(j);
        /* the writes that must come first, all before the settle call is begun (a
         * command cannot be queued inside another) */
        for (job *j = g; !push && j; j = j->next)
            if (j->lane && strcmp(j->ep_id, g->ep_id) == 0)
                j->lane_act = lane_action(r, p, j, now_iso);
        size_t n = 0;
        int open = 0;
        for (job *j = g; j; j = j->next) {
            if ((push ? j->st != JOB_LANED : !j->lane) || strcmp(j->ep_id, g->ep_id) != 0)
                continue;
            if (open && n == RESULTS_CALL_MAX) {
                pipeline_end(p);
                open = 0;
                n = 0;
            }
            if (!open) {
                int rc = push ? lane_push_begin(p, TAG_LANE_PUSH, (void *)g->ep_id,
                                                r->c->redis_prefix, g->ep_id, 'a')
                              : lane_settle_begin(p, TAG_LANE_SETTLE, (void *)g->ep_id,
                                                  r->c->redis_prefix, g->ep_id, pause);
                if (rc != HQ_OK)
                    break;
                open = 1;
            }
            if (push) {
                char lid[LANE_ID_LEN];
                if (lane_id_of(j->evsid, lid) == HQ_OK)
                    lane_push_job(p, lid, j->lkey ? j->lkey : "", j->attempt);
            } else {
                char m[LANE_MEMBER_MAX];
                lane_member(j->lid, j->lkey ? j->lkey : "", r->k->me, m, sizeof m);
                int made = j->st == JOB_DEFERRED ? j->attempt - 1 : j->attempt;
                lane_settle_job(p, m, j->lane_act, j->due_ms, made);
            }
            n++;
        }
        if (open)
            pipeline_end(p);
    }
    strmap_free(done);
}

/* Endpoints without lanes that answered 429/503 with Retry-After this round: one
 * pause.lua each (the latest pause), so every worker holds back, not only this one. */
static void put_pauses(results *r, pipeline *p, job_table *jobs) {
    strmap *seen = NULL;
    for (job *g = job_first(jobs, JOB_LIST_DONE); g; g = g->next) {
        if (g->lane || pause_of(g) == 0)
            continue;
        if (!seen && !(seen = strmap_new()))
            return;
        if (strmap_get(seen, g->ep_id))
            continue;
        strmap_put(seen, g->ep_id, g);
        int64_t till = 0;
        for (job *j = g; j; j = j->next)
            if (!j->lane && strcmp(j->ep_id, g->ep_id) == 0 && pause_of(j) > till)
                till = pause_of(j);
        char ke[KEY_MAX], ks[KEY_MAX];
        if (key_endpoint(r->c->redis_prefix, g->ep_id, ke, sizeof ke) != HQ_OK ||
            key_ep_part(r->c->redis_prefix, g->ep_id, KEY_EP_STATE, ks, sizeof ks) != HQ_OK)
            continue;
        pipeline_eval(p, TAG_PAUSE, (void *)g->ep_id, &script_pause, 2);
        pipeline_arg(p, ke);
        pipeline_arg(p, ks);
        pipeline_argi(p, till);
        pipeline_end(p);
    }
    strmap_free(seen);
}

static void log_settle_error(const job *j, const char *why) {
    LOG_E("job %s (event %s, endpoint %s): result not written (%s); left pending, "
          "another attempt after the visibility timeout",
          j->sid, j->evsid, j->ep_id, why);
}

/* An error reply of a results write: a refusal for lack of memory is counted (the loop
 * logs "redis: full" once), anything else logged. */
static void reply_error(results_out *out, const redisReply *rep, link_kind k) {
    if (k == LINK_OOM)
        out->refused++;
    else
        LOG_E("redis: writing results: %s", rep->str);
}

/* The breaker transition of fail.lua's reply (elements 4..7), logged once by the worker
 * whose results made it. */
static void read_breaker(const results *r, results_out *out, const char *ep_id,
                         const redisReply *rep) {
    if (rep->elements < 7)
        return;
    long long tr = rep->element[3]->integer, until = rep->element[4]->integer;
    char at[TS_ISO_LEN], win[32], wait[32];
    ts_iso(until, at, sizeof at);
    units_format_duration(r->c->breaker_window_ms, win, sizeof win);
    units_format_duration(until - ts_now_ms() > 0 ? until - ts_now_ms() : 0, wait, sizeof wait);
    if (tr == 1)
        LOG_W("endpoint %s: breaker open (%lld of %lld attempts failed in %s), probe at %s", ep_id,
              rep->element[5]->integer, rep->element[6]->integer, win, at);
    else if (tr == 2)
        LOG_I("endpoint %s: breaker closed (a delivery succeeded)", ep_id);
    else if (tr == 3)
        LOG_W("endpoint %s: breaker probe failed, open again, next probe at %s (in %s)", ep_id, at,
              wait);
    if (tr >= 1 && tr <= 3)
        out->breakers++;
}

/* fail.lua's reply {failures, status, position, breaker...} for the outcomes of call c. */
static void read_fail(results *r, results_out *out, const call *c, const redisReply *rep) {
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || c->n == 0)
        return;
    read_breaker(r, out, r->cj[c->first]->ep_id, rep);
    long long n = rep->element[0]->integer, st = rep->element[1]->integer;
    long long at = rep->element[2]->integer;
    const job *j = r->cj[c->first];
    if (st != 3)
        out->accepted++;
    if (st == 1 && at >= 1 && (size_t)at <= c->n) {
        j = r->cj[c->first + (size_t)at - 1];
        if (j->oc == OUT_GONE)
            LOG_W("endpoint %s disabled: it answered 410 Gone", j->ep_id);
        else
            LOG_W("endpoint %s disabled after %lld consecutive failures (last: %s)", j->ep_id, n,
                  j->error);
    }
    if (st == 1 || st == 2)
        add_disabled(r, j->ep_id);
}

/* settle_batch.lua's reply: one element per job of call c, as settle.lua's reply was. */
static void read_settle(results *r, results_out *out, const call *c, const redisReply *rep) {
    if (rep->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < c->n && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        const job *j = r->cj[c->first + i];
        link_kind k = link_reply_kind(e);
        if (k != LINK_OK) {
            reply_error(out, e, k);
            log_settle_error(j, e->str);
        } else if (e->type == REDIS_REPLY_INTEGER && e->integer != 1) {
            LOG_I("job %s: %s; not rescheduled", j->sid,
                  e->integer == 0 ? "no longer ours (reclaimed by another worker)"
                                  : "its endpoint was removed");
        }
    }
}

/* Replies of the main pipeline: count refusals, collect disables, queue log lines that
 * found no stream for log.lua. */
static void read_replies(results *r, results_out *out) {
    pipeline *p = r->p;
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        int tag = pipeline_tag(p, i);
        void *ud = pipeline_ud(p, i);
        const call *c = tag == TAG_FAIL || tag == TAG_SETTLE ? &r->calls[(uintptr_t)ud] : NULL;
        link_kind k = link_reply_kind(rep);
        if (k != LINK_OK) {
            reply_error(out, rep, k);
            for (size_t n = 0; tag == TAG_SETTLE && n < c->n; n++)
                log_settle_error(r->cj[c->first + n], rep->str);
            continue;
        }
        if (tag == TAG_LOG) {
            job *j = ud;
            if (rep->type == REDIS_REPLY_NIL) {
                const job_writes *w = job_writes_of(j->st);
                put_log_script(r, r->retry_log, j, w->log_outcome);
            } else {
                out->accepted++;
            }
        } else if (tag == TAG_FAIL) {
            read_fail(r, out, c, rep);
        } else if (tag == TAG_SETTLE) {
            read_settle(r, out, c, rep);
        } else if (tag == TAG_LANE_SETTLE) {
            /* the ud is a job's ep_id: the jobs are still held while replies are read */
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == 1)
                add_unique(&r->wake, &r->n_wake, &r->cap_wake, ud);
        } else if (tag == TAG_PAUSE) {
            if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
                add_unique(&r->paused, &r->n_paused, &r->cap_paused, ud);
        } else if (tag == TAG_LANE_PUSH) {
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[2]->integer == 0)
                add_unique(&r->wake, &r->n_wake, &r->cap_wake, ud);
        }
    }
}

/* Room for a flush of n done jobs: each job is in at most one fail.lua and one settle
 * call, each call holds at least one job. */
static int reserve(results *r, size_t n) {
    if (n <= r->cap)
        return HQ_OK;
    size_t cap = n > 2 * r->cap ? n : 2 * r->cap;
    job **seq = realloc(r->seq, cap * sizeof *seq);
    if (seq)
        r->seq = seq;
    size_t *next = realloc(r->seq_next, cap * sizeof *next);
    if (next)
        r->seq_next = next;
    ep_group *g = realloc(r->groups, cap * sizeof *g);
    if (g)
        r->groups = g;
    job **cj = realloc(r->cj, 2 * cap * sizeof *cj);
    if (cj)
        r->cj = cj;
    call *calls = realloc(r->calls, 2 * cap * sizeof *calls);
    if (calls)
        r->calls = calls;
    if (!seq || !next || !g || !cj || !calls)
        return HQ_ERR;
    r->cap = cap;
    return HQ_OK;
}

results_out results_flush(results *r, redis_link *l, job_table *jobs) {
    results_out out = {0};
    clear_disabled(r);
    out.disabled = r->disabled;
    size_t ndone = job_count(jobs, JOB_LIST_DONE);
    if (ndone == 0)
        return out;
    pipeline *p = r->p;
    pipeline_reset(p);
    pipeline_reset(r->retry_log);
    strmap *by_ep = strmap_new(); /* endpoint id -> its ep_group */
    if (!by_ep || reserve(r, ndone) != HQ_OK) {
        strmap_free(by_ep);
        out.kind = LINK_ERR; /* the jobs stay done: written next round */
        return out;
    }
    r->n_cj = r->n_calls = 0;
    int64_t now = ts_now_ms();
    char now_iso[TS_ISO_LEN];
    ts_iso(now, now_iso, sizeof now_iso);
    /* Adopted jobs first: their lane_push.lua comes before their XACK */
    for (job *j = job_first(jobs, JOB_LIST_DONE); j; j = j->next)
        if (j->st == JOB_LANED) {
            put_lanes(r, p, jobs, now_iso, 1);
            break;
        }
    if (now - r->recent_prune > r->c->breaker_window_ms) {
        prune_recent(r, now - r->c->breaker_window_ms);
        r->recent_prune = now;
    }
    /* Log lines in completion order; the outcomes that touch a failure counter grouped
     * per endpoint, each group in completion order. */
    size_t nack = 0, nseq = 0, ngroups = 0, nlane = 0, npush = 0;
    for (job *j = job_first(jobs, JOB_LIST_DONE); j; j = j->next) {
        const job_writes *w = job_writes_of(j->st);
        if (r->c->delivery_log && w->log_outcome)
            put_log(r, p, j, w->log_outcome);
        int counted = w->failures == JOB_FAILURES_COUNT && j->attempted;
        if (w->failures == JOB_FAILURES_RESET || counted) {
            ep_group *g = strmap_get(by_ep, j->ep_id);
            if (g) {
                r->seq_next[g->tail] = nseq;
                g->tail = nseq;
            } else {
                /* if the map cannot grow the next outcome starts a new group, which
                 * comes after this one: the order still holds */
                g = &r->groups[ngroups++];
                g->head = g->tail = nseq;
                g->failures = 0;
                strmap_put(by_ep, j->ep_id, g);
            }
            r->seq[nseq] = j;
            r->seq_next[nseq++] = SEQ_END;
            g->failures += counted;
        }
        if (w->settle == JOB_SETTLE_ACK && !j->lane)
            nack++;
        nlane += j->lane;
        npush += j->st == JOB_LANED;
    }
    strmap_free(by_ep);
    for (size_t g = 0; g < ngroups; g++)
        put_counter(r, p, &r->groups[g], now_iso, now);
    /* Every job that goes back or out, in settle_batch.lua calls of RESULTS_CALL_MAX. */
    size_t first = r->n_cj;
    for (job *j = job_first(jobs, JOB_LIST_DONE); j; j = j->next) {
        char ke[KEY_MAX];
        if (j->lane || job_writes_of(j->st)->settle == JOB_SETTLE_ACK ||
            key_endpoint(r->c->redis_prefix, j->ep_id, ke, sizeof ke) != HQ_OK)
            continue;
        r->cj[r->n_cj++] = j;
        if (r->n_cj - first == RESULTS_CALL_MAX) {
            if (put_settle(r, p, first, r->n_cj - first, now_iso) != HQ_OK) {
                out.kind = LINK_ERR;
                return out;
            }
            first = r->n_cj;
        }
    }
    if (r->n_cj > first && put_settle(r, p, first, r->n_cj - first, now_iso) != HQ_OK) {
        out.kind = LINK_ERR;
        return out;
    }
    if (nlane > 0)
        put_lanes(r, p, jobs, now_iso, 0);
    put_pauses(r, p, jobs);
    /* The happy path stays one multi-id XACK and XDEL per batch: acknowledging a
     * delivered (or disabled/dropped) job needs no write that Redis could refuse when
     * full, and a log line refused by OOM is lost without holding the ack back. */
    for (int cmd = 0; cmd < 2 && nack > 0; cmd++) {
        pipeline_begin(p, TAG_OTHER, NULL);
        pipeline_arg(p, cmd == 0 ? "XACK" : "XDEL");
        pipeline_arg(p, r->k->jobs);
        if (cmd == 0)
            pipeline_arg(p, "deliver");
        for (job *j = job_first(jobs, JOB_LIST_DONE); j; j = j->next)
            if (job_writes_of(j->st)->settle == JOB_SETTLE_ACK && !j->lane)
                pipeline_arg(p, j->sid);
        pipeline_end(p);
    }
    char err[HQ_ERRLEN];
    out.kind = link_exec(l, p, err, sizeof err);
    if (out.kind != LINK_OK)
        return out; /* the jobs stay done: written again after the reconnect */
    read_replies(r, &out);
    if (pipeline_len(r->retry_log) > 0 && link_exec(l, r->retry_log, err, sizeof err) == LINK_OK) {
        for (size_t i = 0; i < pipeline_len(r->retry_log); i++) {
            link_kind k = link_reply_kind(pipeline_reply(r->retry_log, i));
            if (k == LINK_OOM)
                out.refused++;
            else if (k == LINK_OK)
                out.accepted++;
        }
    }
    /* whatever a reply said, these jobs are done here: one whose settle failed was not
     * acknowledged, stays pending, and reclaim hands it out again */
    while (job_first(jobs, JOB_LIST_DONE)) {
        job_free(job_first(jobs, JOB_LIST_DONE));
        out.jobs++;
    }
    out.disabled = r->disabled;
    out.n_disabled = r->n_disabled;
    out.wake = r->wake;
    out.n_wake = r->n_wake;
    out.paused = r->paused;
    out.n_paused = r->n_paused;
    return out;
}
