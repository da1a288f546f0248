/* rw.c -- writing results: one pipeline per loop iteration for every finished job.
 *
 * Per job, in completion order: the delivery log entry; on success DEL failures (once per
 * endpoint while no failure of it comes between); on a failed attempt fail.lua (counts
 * it, disables at exactly the threshold or on 410) and then ZADD delay (retry) or XADD
 * dead; finally one XACK and one XDEL for all jobs of the batch. If the pipeline fails
 * (Redis gone), the jobs stay on the done list and are written after reconnecting. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "log.h"
#include "scripts_gen.h"
#include "tm.h"
#include "wki.h"

enum { RW_OTHER = 0, RW_FAIL };

static const char *rw_outcome(job_state s) {
    switch (s) {
    case JOB_DELIVERED:
        return "delivered";
    case JOB_RETRY:
        return "retry";
    case JOB_DEAD:
        return "dead";
    case JOB_DISABLED:
        return "disabled";
    default:
        return "dropped";
    }
}

static void rw_log(wk *w, pl *p, job *j) {
    char key[KEY_MAX], iso[TM_ISO_LEN] = "";
    if (key_log(w->c->redis_prefix, j->ep_id, key, sizeof key) != HQ_OK)
        return;
    if (j->st == JOB_RETRY)
        tm_iso(j->due_ms, iso, sizeof iso);
    pl_begin(p, RW_OTHER, NULL);
    pl_arg(p, "XADD");
    pl_arg(p, key);
    pl_arg(p, "MAXLEN");
    pl_arg(p, "~");
    pl_argi(p, w->c->delivery_log_maxlen);
    pl_arg(p, "*");
    pl_arg(p, "event_id");
    pl_arg(p, j->ev ? j->ev->e.id : "");
    pl_arg(p, "event");
    pl_arg(p, j->evsid);
    pl_arg(p, "type");
    pl_arg(p, j->ev ? j->ev->e.type : "");
    pl_arg(p, "attempt");
    pl_argi(p, j->attempt);
    pl_arg(p, "outcome");
    pl_arg(p, rw_outcome(j->st));
    pl_arg(p, "status");
    pl_argi(p, j->attempted ? j->res.http_status : 0);
    pl_arg(p, "latency_ms");
    pl_argi(p, j->attempted ? j->res.latency_ms : 0);
    pl_arg(p, "error");
    pl_arg(p, j->error);
    pl_arg(p, "response");
    pl_arg(p, j->attempted ? j->res.excerpt : "");
    pl_arg(p, "delivery");
    pl_arg(p, j->dlv);
    pl_arg(p, "worker");
    pl_arg(p, w->name);
    pl_arg(p, "next_try");
    pl_arg(p, iso);
    pl_end(p);
}

static void rw_fail(wk *w, pl *p, job *j, const char *now_iso) {
    char kf[KEY_MAX], ke[KEY_MAX], reason[512];
    if (key_failures(w->c->redis_prefix, j->ep_id, kf, sizeof kf) != HQ_OK ||
        key_endpoint(w->c->redis_prefix, j->ep_id, ke, sizeof ke) != HQ_OK)
        return;
    if (j->oc == OUT_GONE)
        snprintf(reason, sizeof reason, "410 Gone");
    else
        snprintf(reason, sizeof reason, "%d consecutive failed attempts (last: %s)",
                 w->c->endpoints_disable_after, j->error);
    pl_eval(p, RW_FAIL, j, &script_fail, 2);
    pl_arg(p, kf);
    pl_arg(p, ke);
    pl_argi(p, w->c->endpoints_disable_after);
    pl_arg(p, now_iso);
    pl_arg(p, reason);
    pl_arg(p, j->oc == OUT_GONE ? "1" : "0");
    pl_end(p);
}

static void rw_retry(wk *w, pl *p, job *j) {
    char member[256];
    /* a deferred job keeps its attempt number: it was never tried */
    snprintf(member, sizeof member, "%s %s %d %s", j->evsid, j->ep_id,
             j->st == JOB_DEFERRED ? j->attempt : j->attempt + 1, j->dlv[0] ? j->dlv : j->sid);
    pl_begin(p, RW_OTHER, NULL);
    pl_arg(p, "ZADD");
    pl_arg(p, w->k_delay);
    pl_argi(p, j->due_ms);
    pl_arg(p, member);
    pl_end(p);
}

static void rw_dead(wk *w, pl *p, job *j, const char *now_iso) {
    pl_begin(p, RW_OTHER, NULL);
    pl_arg(p, "XADD");
    pl_arg(p, w->k_dead);
    pl_arg(p, "*");
    pl_arg(p, "kind");
    pl_arg(p, "job");
    pl_arg(p, "event");
    pl_arg(p, j->evsid);
    pl_arg(p, "event_id");
    pl_arg(p, j->ev ? j->ev->e.id : "");
    pl_arg(p, "type");
    pl_arg(p, j->ev ? j->ev->e.type : "");
    pl_arg(p, "endpoint");
    pl_arg(p, j->ep_id);
    pl_arg(p, "attempt");
    pl_argi(p, j->attempt);
    pl_arg(p, "error");
    pl_arg(p, j->error);
    pl_arg(p, "status");
    pl_argi(p, j->attempted ? j->res.http_status : 0);
    pl_arg(p, "failed_at");
    pl_arg(p, now_iso);
    pl_end(p);
}

/* The endpoint was disabled by this failure: tell other workers (version) and anyone
 * subscribed (an operational event in the events stream). */
static void rw_disabled(wk *w, job *j, long long failures) {
    pl *s = w->side;
    if (j->oc == OUT_GONE)
        LOG_W("endpoint %s disabled: it answered 410 Gone", j->ep_id);
    else
        LOG_W("endpoint %s disabled after %lld consecutive failures (last: %s)", j->ep_id, failures,
              j->error);
    pl_begin(s, 0, NULL);
    pl_arg(s, "INCR");
    pl_arg(s, w->k_version);
    pl_end(s);
    json_t *d = json_pack("{s:s, s:s, s:I}", "endpoint_id", j->ep_id, "reason",
                          j->oc == OUT_GONE ? "410 Gone" : "consecutive failures", "failures",
                          (json_int_t)failures);
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (data) {
        pl_begin(s, 0, NULL);
        pl_arg(s, "XADD");
        pl_arg(s, w->k_events);
        pl_arg(s, "*");
        pl_arg(s, "type");
        pl_arg(s, "endpoint.disabled");
        pl_arg(s, "ts");
        pl_argi(s, tm_now_ms());
        pl_arg(s, "data");
        pl_arg(s, data);
        pl_end(s);
        free(data);
    }
    w->next_version = 0;
}

static int rw_side(wk *w) {
    if (pl_len(w->side) == 0)
        return HQ_OK;
    char err[HQ_ERRLEN];
    int rc = pl_exec(w->side, w->r, err, sizeof err);
    if (rc != HQ_OK) {
        wk_down(w, err); /* bad entries stay pending and come back through reclaim */
    } else {
        for (size_t i = 0; i < pl_len(w->side); i++)
            if (pl_reply(w->side, i)->type == REDIS_REPLY_ERROR)
                LOG_E("redis: %s", pl_reply(w->side, i)->str);
    }
    pl_reset(w->side);
    return rc;
}

void rw_flush(wk *w) {
    if (rw_side(w) != HQ_OK || w->lists[JL_DONE].n == 0)
        return;
    pl *p = w->wr;
    pl_reset(p);
    hm *reset = hm_new(); /* endpoints whose last queued action is a DEL failures */
    if (!reset)
        return;
    char now_iso[TM_ISO_LEN];
    tm_iso(tm_now_ms(), now_iso, sizeof now_iso);
    for (job *j = w->lists[JL_DONE].head; j; j = j->next) {
        if (w->c->delivery_log && j->st != JOB_DROPPED && j->st != JOB_DEFERRED)
            rw_log(w, p, j);
        if (j->st == JOB_DELIVERED && !hm_get(reset, j->ep_id)) {
            char kf[KEY_MAX];
            if (key_failures(w->c->redis_prefix, j->ep_id, kf, sizeof kf) == HQ_OK) {
                pl_begin(p, RW_OTHER, NULL);
                pl_arg(p, "DEL");
                pl_arg(p, kf);
                pl_end(p);
                hm_put(reset, j->ep_id, j);
            }
        }
        if ((j->st == JOB_RETRY || j->st == JOB_DEAD) && j->attempted) {
            rw_fail(w, p, j, now_iso);
            hm_del(reset, j->ep_id);
        }
        if (j->st == JOB_RETRY || j->st == JOB_DEFERRED)
            rw_retry(w, p, j);
        else if (j->st == JOB_DEAD)
            rw_dead(w, p, j, now_iso);
    }
    hm_free(reset);
    for (int cmd = 0; cmd < 2; cmd++) {
        pl_begin(p, RW_OTHER, NULL);
        pl_arg(p, cmd == 0 ? "XACK" : "XDEL");
        pl_arg(p, w->k_jobs);
        if (cmd == 0)
            pl_arg(p, KEY_GROUP_DELIVER);
        for (job *j = w->lists[JL_DONE].head; j; j = j->next)
            pl_arg(p, j->sid);
        pl_end(p);
    }
    char err[HQ_ERRLEN];
    if (pl_exec(p, w->r, err, sizeof err) != HQ_OK) {
        wk_down(w, err);
        return;
    }
    for (size_t i = 0; i < pl_len(p); i++) {
        const redisReply *rep = pl_reply(p, i);
        if (rep->type == REDIS_REPLY_ERROR) {
            LOG_E("redis: writing results: %s", rep->str);
            continue;
        }
        if (pl_tag(p, i) == RW_FAIL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
            rep->element[1]->integer == 1)
            rw_disabled(w, pl_ud(p, i), rep->element[0]->integer);
    }
    while (w->lists[JL_DONE].head)
        job_free(w, w->lists[JL_DONE].head);
    rw_side(w);
}
