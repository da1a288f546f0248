/* dispatch.c -- see dispatch.h. */
#include "dispatch.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "ids.h"
#include "log.h"
#include "request.h"
#include "string_map.h"
#include "timestamp.h"

#define DEFER_MS        1000
#define BROKEN_DEFER_MS 10000

struct dispatch {
    const cfg *c;
    http_engine *http;
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
    d->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    d->policy = (job_policy){.schedule_ms = c->retry_schedule_ms,
                             .schedule_len = c->retry_schedule_len,
                             .jitter = c->retry_jitter,
                             .max_retry_after_ms = c->retry_max_retry_after_ms};
    return d;
}

void dispatch_free(dispatch *d) {
    free(d);
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
    finish(j->owner, j, res);
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
    request rq = {0};
    if (id_new(ID_PREFIX_DELIVERY, j->dlv, sizeof j->dlv) != HQ_OK) {
        fail_setup(d, j, "cannot make a delivery id");
        return;
    }
    if (request_build(&rq, en, j->ev, j->attempt, j->dlv, ts_now_ms(), err, sizeof err) != HQ_OK) {
        request_clear(&rq);
        fail_setup(d, j, err);
        return;
    }
    j->owner = d;
    /* the body is borrowed: j holds its reference to the cached event until it is freed,
     * after the transfer's done callback */
    int rc = http_submit(d->http, en->e->url, (const char *const *)rq.headers, rq.n, j->ev->body,
                         j->ev->bodylen, on_done, j);
    request_clear(&rq);
    if (rc != HQ_OK) {
        fail_setup(d, j, "the request could not be set up");
        return;
    }
    job_transition(j, JOB_INFLIGHT, NULL);
}

dispatch_out dispatch_run(dispatch *d, job_table *jobs, const epindex *eps, int64_t loaded_us,
                          int queue_full) {
    dispatch_out out = {0};
    /* endpoint -> jobs seen waiting in this pass; only when the local queue is full */
    strmap *waiting = queue_full ? strmap_new() : NULL;
    int cap = http_capacity(d->http);
    int per = d->c->delivery_per_endpoint > 0 ? d->c->delivery_per_endpoint : 1;
    job *nx;
    for (job *j = job_first(jobs, JOB_LIST_READY); j; j = nx) {
        nx = j->next;
        if (http_inflight(d->http) >= cap)
            break;
        const epindex_ent *en = epindex_get(eps, j->ep_id);
        if (!en && epindex_is_broken(eps, j->ep_id)) {
            /* in Redis but unreadable: not a removal. Back through the delay zset, same
             * attempt, until an operator fixes the hash */
            j->due_ms = ts_now_ms() + BROKEN_DEFER_MS;
            job_transition(j, JOB_DEFERRED, "endpoint hash does not parse; waiting");
            continue;
        }
        if (!en) {
            if (loaded_us > j->read_us) {
                snprintf(j->error, sizeof j->error, "endpoint deleted");
                job_transition(j, JOB_DROPPED, j->error);
            } else {
                out.need_reload = 1; /* created since our last load, or the load failed */
            }
            continue;
        }
        if (!en->e->enabled) {
            snprintf(j->error, sizeof j->error, "endpoint disabled");
            job_transition(j, JOB_DISABLED, j->error);
            continue;
        }
        if (job_inflight_to(jobs, j->ep_id) >= per) {
            if (waiting) {
                int n = (int)(intptr_t)strmap_get(waiting, j->ep_id);
                strmap_put(waiting, j->ep_id, (void *)(intptr_t)(n + 1));
                if (n + 1 > per) {
                    j->due_ms =
                        ts_now_ms() + DEFER_MS / 2 + (int64_t)(next_rand(d) % (DEFER_MS / 2 + 1));
                    job_transition(j, JOB_DEFERRED, "endpoint busy, local queue full");
                }
            }
            continue;
        }
        submit(d, j, en);
        out.started++;
    }
    strmap_free(waiting);
    return out;
}
