/* event_fetch.c -- see event_fetch.h. */
#include "event_fetch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "log.h"
#include "stream_entry.h"
#include "string_map.h"

struct event_fetch {
    pipeline *p;
};

event_fetch *event_fetch_new(void) {
    event_fetch *f = calloc(1, sizeof *f);
    if (f && !(f->p = pipeline_new())) {
        free(f);
        return NULL;
    }
    return f;
}

void event_fetch_free(event_fetch *f) {
    if (!f)
        return;
    pipeline_free(f->p);
    free(f);
}

/* Move every FETCH job of event sid on: to READY with ev, or to DEAD with why. */
static void settle_event(job_table *jobs, const char *sid, evcache_ev *ev, const char *why,
                         int error_reply) {
    job *nx;
    for (job *j = job_first(jobs, JOB_LIST_FETCH); j; j = nx) {
        nx = j->next;
        if (strcmp(j->evsid, sid) != 0)
            continue;
        if (ev) {
            j->ev = evcache_ref(ev);
            job_transition(j, JOB_READY, NULL);
        } else if (!error_reply || ++j->fetch_errors >= EVENT_FETCH_MAX_ERRORS) {
            snprintf(j->error, sizeof j->error, "%s", why);
            job_transition(j, JOB_DEAD, why);
        }
    }
}

link_kind event_fetch_run(event_fetch *f, redis_link *l, const cfg *c, const char *k_events,
                          job_table *jobs, evcache *cache, char *err, size_t errlen) {
    if (job_count(jobs, JOB_LIST_FETCH) == 0)
        return LINK_OK;
    pipeline *p = f->p;
    pipeline_reset(p);
    strmap *asked = strmap_new();
    if (!asked)
        return LINK_OK; /* try again next round */
    for (job *j = job_first(jobs, JOB_LIST_FETCH); j; j = j->next) {
        if (strmap_get(asked, j->evsid))
            continue;
        strmap_put(asked, j->evsid, j);
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "XRANGE");
        pipeline_arg(p, k_events);
        pipeline_arg(p, j->evsid);
        pipeline_arg(p, j->evsid);
        pipeline_end(p);
    }
    strmap_free(asked);
    link_kind k = link_exec(l, p, err, errlen);
    if (k != LINK_OK)
        return k;
    envelope_limits lim = {.max_payload = (size_t)c->events_max_payload,
                           .max_depth = c->events_max_depth};
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        char sid[ENTRY_SID_MAX];
        /* the XRANGE's own argument: the job that asked may have moved on */
        snprintf(sid, sizeof sid, "%s", pipeline_argv_at(p, i, 2));
        char why[HQ_ERRLEN + 128];
        if (rep->type == REDIS_REPLY_ERROR) {
            LOG_E("fetch event %s: %s", sid, rep->str);
            snprintf(why, sizeof why, "cannot read event %s: %s", sid, rep->str);
            settle_event(jobs, sid, NULL, why, 1);
            continue;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            snprintf(why, sizeof why,
                     "event %s is no longer in the events stream (trimmed by events.retention?)",
                     sid);
            settle_event(jobs, sid, NULL, why, 0);
            continue;
        }
        envelope e;
        char perr[HQ_ERRLEN];
        if (entry_parse_event(rep->element[0], &lim, &e, perr, sizeof perr) != HQ_OK) {
            snprintf(why, sizeof why, "event %s is malformed: %s", sid, perr);
            settle_event(jobs, sid, NULL, why, 0);
            continue;
        }
        evcache_ev *ev = evcache_put(cache, sid, &e);
        if (!ev)
            continue; /* OOM: the jobs stay FETCH, tried again next round */
        settle_event(jobs, sid, ev, NULL, 0);
        evcache_release(ev);
    }
    return LINK_OK;
}
