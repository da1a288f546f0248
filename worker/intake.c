/* intake.c -- see intake.h. */
#include "intake.h"
#include <stdio.h>
#include <string.h>
#include "dead_letter.h"
#include "hq.h"
#include "log.h"
#include "redis_link.h"
#include "scripts_gen.h"
#include "stream_entry.h"

void intake_dead_entry(const intake_ctx *x, const redisReply *entry, const char *reason) {
    pipeline *p = x->side;
    const redisReply *f = entry->elements > 1 ? entry->element[1] : NULL;
    pipeline_eval(p, 0, NULL, &script_settle, 4);
    pipeline_arg(p, x->k_jobs);
    pipeline_arg(p, x->k_delay);
    pipeline_arg(p, x->k_dead);
    pipeline_arg(p, x->k_jobs); /* no endpoint: not looked at in mode "entry" */
    pipeline_arg(p, "deliver");
    pipeline_arg(p, x->me);
    pipeline_arg(p, entry->element[0]->str);
    pipeline_argi(p, x->c->dead_maxlen);
    pipeline_arg(p, "entry");
    pipeline_arg(p, "kind");
    pipeline_arg(p, "job");
    pipeline_arg(p, "source");
    pipeline_arg(p, entry->element[0]->str);
    pipeline_arg(p, "reason");
    pipeline_arg(p, reason);
    dead_letter_fields(p, f);
    pipeline_end(p);
}

static void ack(const intake_ctx *x, const char *sid) {
    pipeline_begin(x->side, 0, NULL);
    pipeline_arg(x->side, "XACK");
    pipeline_arg(x->side, x->k_jobs);
    pipeline_arg(x->side, "deliver");
    pipeline_arg(x->side, sid);
    pipeline_end(x->side);
}

intake_stats intake_take(const intake_ctx *x, const redisReply *entries, const int64_t *claims,
                         int64_t read_us) {
    intake_stats st = {0};
    for (size_t i = 0; entries && i < entries->elements; i++) {
        const redisReply *en = entries->element[i];
        if (!entry_ok(en))
            continue;
        const char *sid = en->element[0]->str;
        if (job_find(x->jobs, sid)) {
            st.held++; /* ours already (a reclaim or a recovery read overlapping) */
            continue;
        }
        if (en->element[1]->type == REDIS_REPLY_NIL) {
            ack(x, sid); /* deleted while pending: nothing to deliver */
            st.deleted++;
            continue;
        }
        const char *evsid = NULL, *epid = NULL;
        int attempt = 0;
        char err[HQ_ERRLEN];
        if (entry_parse_job(en, &evsid, &epid, &attempt, err, sizeof err) != HQ_OK) {
            LOG_W("job %s is malformed, dead-lettered: %s", sid, err);
            intake_dead_entry(x, en, err);
            st.dead++;
            continue;
        }
        job *j = job_new(x->jobs, sid, evsid, epid, attempt, read_us);
        if (!j) {
            LOG_E("job %s: out of memory; left pending", sid);
            st.oom++;
            continue;
        }
        j->ev = evcache_get(x->cache, evsid);
        if (claims && claims[i] - 1 > x->c->delivery_max_claims) {
            snprintf(j->error, sizeof j->error, "claimed %lld times; it may crash workers",
                     (long long)(claims[i] - 1));
            job_transition(j, JOB_DEAD, j->error);
        } else {
            job_transition(j, j->ev ? JOB_READY : JOB_FETCH, claims ? "reclaimed" : NULL);
        }
        st.taken++;
    }
    return st;
}
