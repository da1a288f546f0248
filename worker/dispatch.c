/* dispatch.c -- see dispatch.h. */
#include "dispatch.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "ids.h"
#include "lane.h"
#include "log.h"
#include "request.h"
#include "scheduler.h"
#include "string_map.h"
#include "timestamp.h"

#define DEFER_MS        1000
#define DEFER_AFTER_MS  1000 /* waited this long with the queue full: hand it back */
#define BROKEN_DEFER_MS 10000

struct dispatch {
    const cfg *c;
    http_engine *http;
    scheduler *sched;
    size_t rr; /* round-robin position among endpoints with ready jobs */
    job_policy policy;
    uint64_t rng;
    uint64_t n_delivered, n_failed;
};

static uint64_t next_rand(dispatch *d) {
    /* xorshift64*: retry jitter only, not security */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ULL;
}

dispatch *dispatch_new(const cfg *c, http_engine *http, uint64_t seed) {
    dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->c = c;
    d->http = http;
    int max = c->delivery_per_endpoint > 0 ? c->delivery_per_endpoint : c->delivery_concurrency;
    d->sched = scheduler_new(max);
    if (!d->sched) {
        free(d);
        return NULL;
    }
    d->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    d->policy = (job_policy){.schedule_ms = c->retry_schedule_ms,
                             .schedule_len = c->retry_schedule_len,
                             .jitter = c->retry_jitter,
                             .max_retry_after_ms = c->retry_max_retry_after_ms};
    return d;
}

void dispatch_free(dispatch *d) {
    if (!d)
        return;
    scheduler_free(d->sched);
    free(d);
}

scheduler *dispatch_scheduler(dispatch *d) {
    return d->sched;
}

uint64_t dispatch_delivered(const dispatch *d) {
    return d->n_delivered;
}

uint64_t dispatch_failed(const dispatch *d) {
    return d->n_failed;
}

static void finish(dispatch *d, job *j, const http_result *res) {
    job_state to = job_decide(j, res, &d->policy, ts_now_ms(), next_rand(d));
    if (to == JOB_DELIVERED)
        d->n_delivered++;
    else
        d->n_failed++;
    char why[512];
    snprintf(why, sizeof why, "%s, HTTP %ld, %lldms%s%s", outcome_name(j->oc), res->http_status,
             (long long)res->latency_ms, j->error[0] ? ": " : "", j->error);
    job_transition(j, to, why);
}

static void on_done(void *udata, const http_result *res) {
    job *j = udata;
    dispatch *d = j->owner;
    scheduler_on_result(
        d->sched, j->ep_id,
        scheduler_signal_of(res->curl_code, res->http_status, res->retry_after[0] != '\0'),
        res->latency_us);
    finish(d, j, res);
}

/* An attempt that could not start still counts as one: the classifier decides. */
static void fail_setup(dispatch *d, job *j, const char *msg) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.curl_code = CURLE_FAILED_INIT;
    snprintf(r.error, sizeof r.error, "%s", msg);
    finish(d, j, &r);
}

static void submit(dispatch *d, job *j, const epindex_ent *en) {
    char err[HQ_ERRLEN];
    request req = {0};
    if (id_new(ID_PREFIX_DELIVERY, j->dlv, sizeof j->dlv) != HQ_OK) {
        fail_setup(d, j, "cannot make a delivery id");
        return;
    }
    if (request_build(&req, en, j->ev, j->attempt, j->dlv, ts_now_ms(), err, sizeof err) != HQ_OK) {
        request_clear(&req);
        fail_setup(d, j, err);
        return;
    }
    j->owner = d;
    /* the body is borrowed: j holds its reference to the cached event until it is freed,
     * after the transfer's done callback */
    int rc = http_submit(d->http, en->e->url, (const char *const *)req.headers, req.n, j->ev->body,
                         j->ev->bodylen, on_done, j);
    request_clear(&req);
    if (rc != HQ_OK) {
        fail_setup(d, j, "the request could not be set up");
        return;
    }
    job_transition(j, JOB_INFLIGHT, NULL);
}

/* The ready jobs of one endpoint, in queue order. */
typedef struct bucket {
    const char *ep_id;
    const epindex_ent *en;
    int lanes; /* ep_uses_lanes: jobs-stream jobs go into the lanes */
    job **jobs;
    int n, cap;
} bucket;

/* A job that must not be sent now: one from the jobs stream for an endpoint that has
 * lanes goes into them (LANED); one for a disabled endpoint is DISABLED, or, taken
 * from the lanes of an endpoint that holds, goes back into them. 1 if it moved. */
static int divert(job *j, const ep *e) {
    if (!j->lane && ep_uses_lanes(e) && j->ev) {
        char key[LANE_KEY_MAX];
        lane_order_key(e, j->ev->e.tenant, j->ev->body, j->ev->bodylen, key);
        free(j->lkey);
        j->lkey = strdup(key);
        if (j->lkey) {
            job_transition(j, JOB_LANED, "endpoint has lanes");
            return 1;
        }
    }
    if (e->enabled)
        return 0;
    if (j->lane && e->on_disabled == EP_DISABLED_HOLD) {
        j->due_ms = ts_now_ms();
        job_transition(j, JOB_DEFERRED, "endpoint disabled: held in its lane");
        return 1;
    }
    snprintf(j->error, sizeof j->error, "endpoint disabled");
    job_transition(j, JOB_DISABLED, j->error);
    return 1;
}

static int bucket_push(bucket *b, job *j) {
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        job **nj = realloc(b->jobs, (size_t)cap * sizeof *nj);
        if (!nj)
            return HQ_ERR;
        b->jobs = nj;
        b->cap = cap;
    }
    b->jobs[b->n++] = j;
    return HQ_OK;
}

dispatch_out dispatch_run(dispatch *d, job_table *jobs, const epindex *eps, int64_t loaded_us,
                          int queue_full) {
    dispatch_out out = {0};
    size_t nb = 0, capb = 0;
    bucket *b = NULL;
    strmap *index = strmap_new(); /* endpoint id -> bucket number + 1 */
    if (!index)
        return out;
    /* 1. what cannot be sent at all, and the rest grouped by endpoint */
    job *nx;
    for (job *j = job_first(jobs, JOB_LIST_READY); j; j = nx) {
        nx = j->next;
        size_t bi = (size_t)(intptr_t)strmap_get(index, j->ep_id);
        if (bi == 0) {
            const epindex_ent *en = epindex_get(eps, j->ep_id);
            if (!en && epindex_is_broken(eps, j->ep_id)) {
                /* in Redis but unreadable: not a removal. Back through the delay zset,
                 * same attempt, until an operator fixes the hash */
                j->due_ms = ts_now_ms() + BROKEN_DEFER_MS;
                job_transition(j, JOB_DEFERRED, "endpoint hash does not parse; waiting");
                continue;
            }
            if (!en) {
                if (loaded_us > j->read_us) {
                    snprintf(j->error, sizeof j->error, "endpoint deleted");
                    job_transition(j, JOB_DROPPED, j->error);
                } else {
                    out.need_reload = 1; /* created since our last load, or it failed */
                }
                continue;
            }
            if (divert(j, en->e))
                continue;
            if (nb == capb) {
                size_t cap = capb ? capb * 2 : 16;
                bucket *n2 = realloc(b, cap * sizeof *n2);
                if (!n2)
                    break;
                b = n2;
                capb = cap;
            }
            b[nb] = (bucket){.ep_id = j->ep_id, .en = en, .lanes = ep_uses_lanes(en->e)};
            if (strmap_put(index, j->ep_id, (void *)(intptr_t)(nb + 1)) != HQ_OK)
                break;
            bi = ++nb;
        }
        if (b[bi - 1].lanes && !j->lane && divert(j, b[bi - 1].en->e))
            continue;
        if (bucket_push(&b[bi - 1], j) != HQ_OK)
            break;
    }
    /* 2. the plan: free slots round-robin, each endpoint within its window */
    int *ready = calloc(nb + 1, sizeof *ready), *inflight = calloc(nb + 1, sizeof *inflight);
    int *window = calloc(nb + 1, sizeof *window), *start = calloc(nb + 1, sizeof *start);
    if (ready && inflight && window && start) {
        for (size_t i = 0; i < nb; i++) {
            ready[i] = b[i].n;
            inflight[i] = job_inflight_to(jobs, b[i].ep_id);
            window[i] = scheduler_window(d->sched, b[i].ep_id);
        }
        int free_slots = http_capacity(d->http) - http_inflight(d->http);
        scheduler_plan(nb, ready, inflight, window, free_slots, &d->rr, start);
        /* 3. a job that cannot start waits here, its lease renewed, with no round trip
         * through Redis: an endpoint that keeps up starts it within milliseconds. Only
         * when the local queue is full does a job that has waited over DEFER_AFTER_MS
         * go back (same attempt, due in 0.5-1 s): its endpoint is slow, and the jobs
         * of other endpoints behind it in the stream must be read. */
        int64_t now = ts_mono_ms();
        for (size_t i = 0; i < nb; i++) {
            int k;
            for (k = 0; k < start[i]; k++) {
                submit(d, b[i].jobs[k], b[i].en);
                out.started++;
            }
            for (; k < b[i].n; k++) {
                job *j = b[i].jobs[k];
                if (j->wait_ms == 0)
                    j->wait_ms = now;
                if (!queue_full || now - j->wait_ms < DEFER_AFTER_MS)
                    continue;
                j->due_ms =
                    ts_now_ms() + DEFER_MS / 2 + (int64_t)(next_rand(d) % (DEFER_MS / 2 + 1));
                job_transition(j, JOB_DEFERRED, "endpoint busy, local queue full");
            }
        }
    }
    free(ready);
    free(inflight);
    free(window);
    free(start);
    for (size_t i = 0; i < nb; i++)
        free(b[i].jobs);
    free(b);
    strmap_free(index);
    return out;
}
