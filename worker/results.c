/* results.c -- writing results: one pipeline per loop iteration for every finished job.
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

enum { RESULTS_OTHER = 0, RESULTS_LOG, RESULTS_FAIL, RESULTS_SETTLE };

static const char *results_outcome(job_state s) {
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

static void results_log(worker *w, pipeline *p, job *j) {
    char key[KEY_MAX], iso[TS_ISO_LEN] = "";
    if (key_log(w->c->redis_prefix, j->ep_id, key, sizeof key) != HQ_OK)
        return;
    if (j->st == JOB_RETRY)
        ts_iso(j->due_ms, iso, sizeof iso);
    pipeline_begin(p, RESULTS_LOG, j);
    pipeline_arg(p, "XADD");
    pipeline_arg(p, key);
    pipeline_arg(p, "MAXLEN");
    pipeline_arg(p, "~");
    pipeline_argi(p, w->c->delivery_log_maxlen);
    pipeline_arg(p, "*");
    pipeline_arg(p, "event_id");
    pipeline_arg(p, j->ev ? j->ev->e.id : "");
    pipeline_arg(p, "event");
    pipeline_arg(p, j->evsid);
    pipeline_arg(p, "type");
    pipeline_arg(p, j->ev ? j->ev->e.type : "");
    pipeline_arg(p, "attempt");
    pipeline_argi(p, j->attempt);
    pipeline_arg(p, "outcome");
    pipeline_arg(p, results_outcome(j->st));
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
    pipeline_arg(p, w->name);
    pipeline_arg(p, "next_try");
    pipeline_arg(p, iso);
    pipeline_end(p);
}

static void results_fail(worker *w, pipeline *p, job *j, const char *now_iso) {
    char kf[KEY_MAX], ke[KEY_MAX], reason[512];
    if (key_failures(w->c->redis_prefix, j->ep_id, kf, sizeof kf) != HQ_OK ||
        key_endpoint(w->c->redis_prefix, j->ep_id, ke, sizeof ke) != HQ_OK)
        return;
    if (j->oc == OUT_GONE)
        snprintf(reason, sizeof reason, "410 Gone");
    else
        snprintf(reason, sizeof reason, "%d consecutive failed attempts (last: %s)",
                 w->c->endpoints_disable_after, j->error);
    pipeline_eval(p, RESULTS_FAIL, j, &script_fail, 2);
    pipeline_arg(p, kf);
    pipeline_arg(p, ke);
    pipeline_argi(p, w->c->endpoints_disable_after);
    pipeline_arg(p, now_iso);
    pipeline_arg(p, reason);
    pipeline_arg(p, j->oc == OUT_GONE ? "1" : "0");
    pipeline_end(p);
}

/* EVALSHA settle.lua: ZADD delay (retry, deferral) or XADD dead, then XACK + XDEL of the
 * job, atomically. Never as separate commands: under maxmemory Redis refuses ZADD/XADD
 * but accepts XACK/XDEL, which acknowledged jobs it had not rescheduled (lost). */
static void results_settle(worker *w, pipeline *p, job *j, const char *now_iso) {
    pipeline_eval(p, RESULTS_SETTLE, j, &script_settle, 3);
    pipeline_arg(p, w->k_jobs);
    pipeline_arg(p, w->k_delay);
    pipeline_arg(p, w->k_dead);
    pipeline_arg(p, KEY_GROUP_DELIVER);
    pipeline_arg(p, j->sid);
    if (j->st == JOB_RETRY || j->st == JOB_DEFERRED) {
        char member[256];
        /* a deferred job keeps its attempt number: it was never tried */
        snprintf(member, sizeof member, "%s %s %d %s", j->evsid, j->ep_id,
                 j->st == JOB_DEFERRED ? j->attempt : j->attempt + 1, j->dlv[0] ? j->dlv : j->sid);
        pipeline_arg(p, "retry");
        pipeline_argi(p, j->due_ms);
        pipeline_arg(p, member);
    } else {
        pipeline_arg(p, "dead");
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
    pipeline_end(p);
}

static int results_settled_by_script(const job *j) {
    return j->st == JOB_RETRY || j->st == JOB_DEFERRED || j->st == JOB_DEAD;
}

static int results_is_oom(const redisReply *rep) {
    return rep->type == REDIS_REPLY_ERROR && rep->str &&
           (strncmp(rep->str, "OOM ", 4) == 0 || strstr(rep->str, "OOM command not allowed"));
}

void results_set_full(worker *w, int full, const char *why) {
    if (full && !w->redis_full)
        LOG_W("redis: full (%s); delivering what is queued, but delivery log lines and failure "
              "counts are not written until there is room (logged once)",
              why);
    else if (!full && w->redis_full)
        LOG_I("redis: writes accepted again; delivery log and failure counts resume");
    w->redis_full = full;
}

int results_reply_error(worker *w, const redisReply *rep, const char *what) {
    if (!rep || rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (results_is_oom(rep))
        results_set_full(w, 1, rep->str); /* once per change: it would repeat every try */
    else
        LOG_E("redis: %s: %s", what, rep->str);
    return 1;
}

/* The endpoint was disabled by this failure: tell other workers (version) and anyone
 * subscribed (an operational event in the events stream). */
static void results_disabled(worker *w, job *j, long long failures) {
    pipeline *s = w->side;
    if (j->oc == OUT_GONE)
        LOG_W("endpoint %s disabled: it answered 410 Gone", j->ep_id);
    else
        LOG_W("endpoint %s disabled after %lld consecutive failures (last: %s)", j->ep_id, failures,
              j->error);
    pipeline_begin(s, 0, NULL);
    pipeline_arg(s, "INCR");
    pipeline_arg(s, w->k_version);
    pipeline_end(s);
    json_t *d = json_pack("{s:s, s:s, s:I}", "endpoint_id", j->ep_id, "reason",
                          j->oc == OUT_GONE ? "410 Gone" : "consecutive failures", "failures",
                          (json_int_t)failures);
    char *data = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (data) {
        pipeline_begin(s, 0, NULL);
        pipeline_arg(s, "XADD");
        pipeline_arg(s, w->k_events);
        pipeline_arg(s, "*");
        pipeline_arg(s, "type");
        pipeline_arg(s, "endpoint.disabled");
        pipeline_arg(s, "ts");
        pipeline_argi(s, ts_now_ms());
        pipeline_arg(s, "data");
        pipeline_arg(s, data);
        pipeline_end(s);
        free(data);
    }
    w->next_version = 0;
}

static int results_side(worker *w) {
    if (pipeline_len(w->side) == 0)
        return HQ_OK;
    char err[HQ_ERRLEN];
    int rc = pipeline_exec(w->side, w->r, err, sizeof err);
    if (rc != HQ_OK) {
        worker_down(w, err); /* bad entries stay pending and come back through reclaim */
    } else {
        for (size_t i = 0; i < pipeline_len(w->side); i++)
            results_reply_error(w, pipeline_reply(w->side, i), "side write");
    }
    pipeline_reset(w->side);
    return rc;
}

void results_flush(worker *w) {
    if (results_side(w) != HQ_OK || w->lists[JL_DONE].n == 0)
        return;
    pipeline *p = w->wr;
    pipeline_reset(p);
    strmap *reset = strmap_new(); /* endpoints whose last queued action is a DEL failures */
    if (!reset)
        return;
    char now_iso[TS_ISO_LEN];
    ts_iso(ts_now_ms(), now_iso, sizeof now_iso);
    size_t nack = 0;
    for (job *j = w->lists[JL_DONE].head; j; j = j->next) {
        if (w->c->delivery_log && j->st != JOB_DROPPED && j->st != JOB_DEFERRED)
            results_log(w, p, j);
        if (j->st == JOB_DELIVERED && !strmap_get(reset, j->ep_id)) {
            char kf[KEY_MAX];
            if (key_failures(w->c->redis_prefix, j->ep_id, kf, sizeof kf) == HQ_OK) {
                pipeline_begin(p, RESULTS_OTHER, NULL);
                pipeline_arg(p, "DEL");
                pipeline_arg(p, kf);
                pipeline_end(p);
                strmap_put(reset, j->ep_id, j);
            }
        }
        if ((j->st == JOB_RETRY || j->st == JOB_DEAD) && j->attempted) {
            results_fail(w, p, j, now_iso);
            strmap_del(reset, j->ep_id);
        }
        if (results_settled_by_script(j))
            results_settle(w, p, j, now_iso);
        else
            nack++;
    }
    strmap_free(reset);
    /* The happy path stays one multi-id XACK and XDEL per batch: acknowledging a
     * delivered (or disabled/dropped) job needs no write that Redis could refuse when
     * full, and a log line refused by OOM is lost without holding the ack back. */
    for (int cmd = 0; cmd < 2 && nack > 0; cmd++) {
        pipeline_begin(p, RESULTS_OTHER, NULL);
        pipeline_arg(p, cmd == 0 ? "XACK" : "XDEL");
        pipeline_arg(p, w->k_jobs);
        if (cmd == 0)
            pipeline_arg(p, KEY_GROUP_DELIVER);
        for (job *j = w->lists[JL_DONE].head; j; j = j->next)
            if (!results_settled_by_script(j))
                pipeline_arg(p, j->sid);
        pipeline_end(p);
    }
    char err[HQ_ERRLEN];
    if (pipeline_exec(p, w->r, err, sizeof err) != HQ_OK) {
        worker_down(w, err); /* an I/O error: the jobs stay on the done list for after */
        return;
    }
    /* Error replies are not a broken connection: every other command of the pipeline ran.
     * Whatever happened, the jobs are done here; one whose settle failed was not
     * acknowledged, so it stays pending and reclaim hands it out again. */
    int refused = 0, accepted = 0; /* OOM-refusable writes (log, fail.lua) */
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        int tag = pipeline_tag(p, i);
        if (rep->type == REDIS_REPLY_ERROR) {
            if (results_is_oom(rep))
                refused = 1;
            results_reply_error(w, rep, "writing results");
            if (tag == RESULTS_SETTLE) {
                job *j = pipeline_ud(p, i);
                LOG_E("job %s (event %s, endpoint %s): result not written (%s); left pending, "
                      "another attempt after the visibility timeout",
                      j->sid, j->evsid, j->ep_id, rep->str);
            }
            continue;
        }
        if (tag == RESULTS_LOG || tag == RESULTS_FAIL)
            accepted = 1;
        if (tag == RESULTS_SETTLE && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
            job *j = pipeline_ud(p, i);
            LOG_I("job %s: no longer pending (reclaimed and settled elsewhere); not rescheduled",
                  j->sid);
        }
        if (tag == RESULTS_FAIL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
            rep->element[1]->integer == 1)
            results_disabled(w, pipeline_ud(p, i), rep->element[0]->integer);
    }
    if (!refused && accepted)
        results_set_full(w, 0, NULL);
    while (w->lists[JL_DONE].head)
        job_free(w, w->lists[JL_DONE].head);
    results_side(w);
}
