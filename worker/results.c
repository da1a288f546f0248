/* rw.c -- writing results: one pipeline per loop iteration for every finished job.
 *
 * Per job, in completion order: the delivery log entry; on success DEL failures (once per
 * endpoint while no failure of it comes between); on a failed attempt fail.lua (counts
 * it, disables at exactly the threshold or on 410); for a retry, deferral or dead letter
 * settle.lua (ZADD delay or XADD dead, then XACK + XDEL of that job, atomically); finally
 * one XACK and one XDEL for the other jobs of the batch (delivered, disabled, dropped).
 * If the pipeline fails (Redis gone), the jobs stay on the done list and are written after
 * reconnecting. Error replies (Redis full: OOM) are not an outage: the rest of the
 * pipeline ran, a refused log line is lost, a job whose settle failed stays pending. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "log.h"
#include "scripts_gen.h"
#include "timestamp.h"
#include "worker_internal.h"

enum { RW_OTHER = 0, RW_LOG, RW_FAIL, RW_SETTLE };

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
    pl_begin(p, RW_LOG, j);
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

/* EVALSHA settle.lua: ZADD delay (retry, deferral) or XADD dead, then XACK + XDEL of the
 * job, atomically. Never as separate commands: under maxmemory Redis refuses ZADD/XADD
 * but accepts XACK/XDEL, which acknowledged jobs it had not rescheduled (lost). */
static void rw_settle(wk *w, pl *p, job *j, const char *now_iso) {
    pl_eval(p, RW_SETTLE, j, &script_settle, 3);
    pl_arg(p, w->k_jobs);
    pl_arg(p, w->k_delay);
    pl_arg(p, w->k_dead);
    pl_arg(p, KEY_GROUP_DELIVER);
    pl_arg(p, j->sid);
    if (j->st == JOB_RETRY || j->st == JOB_DEFERRED) {
        char member[256];
        /* a deferred job keeps its attempt number: it was never tried */
        snprintf(member, sizeof member, "%s %s %d %s", j->evsid, j->ep_id,
                 j->st == JOB_DEFERRED ? j->attempt : j->attempt + 1, j->dlv[0] ? j->dlv : j->sid);
        pl_arg(p, "retry");
        pl_argi(p, j->due_ms);
        pl_arg(p, member);
    } else {
        pl_arg(p, "dead");
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
    }
    pl_end(p);
}

static int rw_settled_by_script(const job *j) {
    return j->st == JOB_RETRY || j->st == JOB_DEFERRED || j->st == JOB_DEAD;
}

static int rw_is_oom(const redisReply *rep) {
    return rep->type == REDIS_REPLY_ERROR && rep->str &&
           (strncmp(rep->str, "OOM ", 4) == 0 || strstr(rep->str, "OOM command not allowed"));
}

void rw_set_full(wk *w, int full, const char *why) {
    if (full && !w->redis_full)
        LOG_W("redis: full (%s); delivering what is queued, but delivery log lines and failure "
              "counts are not written until there is room (logged once)",
              why);
    else if (!full && w->redis_full)
        LOG_I("redis: writes accepted again; delivery log and failure counts resume");
    w->redis_full = full;
}

int rw_reply_error(wk *w, const redisReply *rep, const char *what) {
    if (!rep || rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (rw_is_oom(rep))
        rw_set_full(w, 1, rep->str); /* once per change: it would repeat every try */
    else
        LOG_E("redis: %s: %s", what, rep->str);
    return 1;
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
            rw_reply_error(w, pl_reply(w->side, i), "side write");
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
    size_t nack = 0;
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
        if (rw_settled_by_script(j))
            rw_settle(w, p, j, now_iso);
        else
            nack++;
    }
    hm_free(reset);
    /* The happy path stays one multi-id XACK and XDEL per batch: acknowledging a
     * delivered (or disabled/dropped) job needs no write that Redis could refuse when
     * full, and a log line refused by OOM is lost without holding the ack back. */
    for (int cmd = 0; cmd < 2 && nack > 0; cmd++) {
        pl_begin(p, RW_OTHER, NULL);
        pl_arg(p, cmd == 0 ? "XACK" : "XDEL");
        pl_arg(p, w->k_jobs);
        if (cmd == 0)
            pl_arg(p, KEY_GROUP_DELIVER);
        for (job *j = w->lists[JL_DONE].head; j; j = j->next)
            if (!rw_settled_by_script(j))
                pl_arg(p, j->sid);
        pl_end(p);
    }
    char err[HQ_ERRLEN];
    if (pl_exec(p, w->r, err, sizeof err) != HQ_OK) {
        wk_down(w, err); /* an I/O error: the jobs stay on the done list for after */
        return;
    }
    /* Error replies are not a broken connection: every other command of the pipeline ran.
     * Whatever happened, the jobs are done here; one whose settle failed was not
     * acknowledged, so it stays pending and reclaim hands it out again. */
    int refused = 0, accepted = 0; /* OOM-refusable writes (log, fail.lua) */
    for (size_t i = 0; i < pl_len(p); i++) {
        const redisReply *rep = pl_reply(p, i);
        int tag = pl_tag(p, i);
        if (rep->type == REDIS_REPLY_ERROR) {
            if (rw_is_oom(rep))
                refused = 1;
            rw_reply_error(w, rep, "writing results");
            if (tag == RW_SETTLE) {
                job *j = pl_ud(p, i);
                LOG_E("job %s (event %s, endpoint %s): result not written (%s); left pending, "
                      "another attempt after the visibility timeout",
                      j->sid, j->evsid, j->ep_id, rep->str);
            }
            continue;
        }
        if (tag == RW_LOG || tag == RW_FAIL)
            accepted = 1;
        if (tag == RW_SETTLE && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
            job *j = pl_ud(p, i);
            LOG_I("job %s: no longer pending (reclaimed and settled elsewhere); not rescheduled",
                  j->sid);
        }
        if (tag == RW_FAIL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
            rep->element[1]->integer == 1)
            rw_disabled(w, pl_ud(p, i), rep->element[0]->integer);
    }
    if (!refused && accepted)
        rw_set_full(w, 0, NULL);
    while (w->lists[JL_DONE].head)
        job_free(w, w->lists[JL_DONE].head);
    rw_side(w);
}
