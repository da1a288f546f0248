/* fanout.c -- fanout: parse a batch of events, match endpoints, and run fanout.lua once for
 * the whole batch (jobs added + events acknowledged atomically, then the new jobs
 * claimed for this worker, whose events are already in the cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "envelope.h"
#include "hq.h"
#include "log.h"
#include "scripts_gen.h"
#include "worker_internal.h"

#define FANOUT_MAX_FIELDS  64
#define FANOUT_FIELD_MAX   65536 /* dead-lettered field values are cut here (docs/keys.md) */
#define FANOUT_STALE_TRIES 3

/* Parse one stream entry into e. HQ_ERR + reason for the dead-letter stream. */
int fanout_parse(const cfg *c, const redisReply *entry, envelope *e, char *err, size_t errlen) {
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0)
        return hq_seterr(err, errlen, "entry has no field list");
    size_t n = f->elements / 2;
    if (n > FANOUT_MAX_FIELDS)
        return hq_seterr(err, errlen, "entry has %zu fields (at most %d)", n, FANOUT_MAX_FIELDS);
    const char *names[FANOUT_MAX_FIELDS], *vals[FANOUT_MAX_FIELDS];
    size_t nl[FANOUT_MAX_FIELDS], vl[FANOUT_MAX_FIELDS];
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = f->element[2 * i], *v = f->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return hq_seterr(err, errlen, "field %zu is not a string", i);
        names[i] = k->str;
        nl[i] = k->len;
        vals[i] = v->str;
        vl[i] = v->len;
    }
    envelope_limits lim = {.max_payload = (size_t)c->events_max_payload,
                           .max_depth = c->events_max_depth};
    return envelope_from_fields(e, entry->element[0]->str, n, names, nl, vals, vl, &lim, err,
                                errlen);
}

int fanout_entry_ok(const redisReply *e) {
    return e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < 48;
}

/* Build and run fanout.lua for the parsed batch. 1 when the batch is done (jobs added,
 * events acknowledged), 0 when it must be retried after a reload (stale table) or left
 * pending (Redis error: reclaim hands the events out again). */
static int fanout_run(worker *w, const redisReply *entries, evcache_ev **evs, char **why,
                      size_t ngood, size_t nbad, size_t *njobs_out) {
    size_t n = entries->elements;
    size_t room = worker_room(w);
    pipeline *p = w->fo;
    pipeline_reset(p);
    pipeline_eval(p, 0, NULL, &script_fanout, 4);
    pipeline_arg(p, w->k_events);
    pipeline_arg(p, w->k_jobs);
    pipeline_arg(p, w->k_dead);
    pipeline_arg(p, w->k_version);
    pipeline_arg(p, w->name);
    pipeline_argi(p, (int64_t)room);
    pipeline_argi(p, w->ep_version);
    pipeline_argi(p, (int64_t)ngood);
    size_t njobs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!evs[i])
            continue;
        epindex_ent *const *m;
        size_t nm = epindex_match(w->eps, evs[i]->e.type, evs[i]->e.tenant, evs[i]->e.endpoint, &m);
        pipeline_arg(p, evs[i]->sid);
        pipeline_argi(p, (int64_t)nm);
        for (size_t k = 0; k < nm; k++)
            pipeline_arg(p, m[k]->e->id);
        njobs += nm;
        if (nm == 0)
            LOG_D("fanout: event %s (%s, %s) matched no endpoint", evs[i]->e.id, evs[i]->sid,
                  evs[i]->e.type);
        else
            LOG_D("fanout: event %s (%s, %s) -> %zu endpoints", evs[i]->e.id, evs[i]->sid,
                  evs[i]->e.type, nm);
    }
    pipeline_argi(p, (int64_t)nbad);
    for (size_t i = 0; i < n; i++) {
        if (!why[i])
            continue;
        const redisReply *en = entries->element[i];
        const redisReply *f = en->element[1];
        pipeline_arg(p, en->element[0]->str);
        pipeline_arg(p, why[i]);
        size_t nf = f->type == REDIS_REPLY_ARRAY ? f->elements / 2 : 0;
        size_t good = 0;
        for (size_t k = 0; k < nf; k++)
            if (f->element[2 * k]->type == REDIS_REPLY_STRING &&
                f->element[2 * k + 1]->type == REDIS_REPLY_STRING)
                good++;
        int cut = 0;
        for (size_t k = 0; k < nf; k++)
            if (f->element[2 * k + 1]->type == REDIS_REPLY_STRING &&
                f->element[2 * k + 1]->len > FANOUT_FIELD_MAX)
                cut = 1;
        pipeline_argi(p, (int64_t)(good + (size_t)cut));
        if (cut) {
            pipeline_arg(p, "truncated");
            pipeline_arg(p, "1");
        }
        for (size_t k = 0; k < nf; k++) {
            const redisReply *kk = f->element[2 * k], *v = f->element[2 * k + 1];
            if (kk->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            char name[160];
            snprintf(name, sizeof name, "f.%.*s", (int)(kk->len > 150 ? 150 : kk->len), kk->str);
            pipeline_arg(p, name);
            /* cut at 64 KiB, flagged "truncated 1", as docs/keys.md says */
            pipeline_argn(p, v->str, v->len > FANOUT_FIELD_MAX ? FANOUT_FIELD_MAX : v->len);
        }
    }
    pipeline_end(p);
    char err[HQ_ERRLEN];
    if (pipeline_exec(p, w->r, err, sizeof err) != HQ_OK) {
        worker_down(w, err); /* the events stay pending; reclaim hands them out again */
        return 0;
    }
    const redisReply *rep = pipeline_reply(p, 0);
    if (rep->type == REDIS_REPLY_ERROR) {
        /* under OOM this would repeat every batch: results_reply_error logs "full" once */
        results_reply_error(w, rep, "fanout script (events left pending for reclaim)");
        if (worker_reply_nogroup(rep))
            worker_groups(w);
        return 0;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer < 0) {
        LOG_D("fanout: endpoint table is stale (version %lld, Redis has %lld); reloading",
              (long long)w->ep_version,
              rep->element[1]->type == REDIS_REPLY_INTEGER ? (long long)rep->element[1]->integer
                                                           : -1LL);
        worker_reload(w);
        return 0;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3) {
        if (rep->element[2]->type == REDIS_REPLY_STRING) {
            LOG_W("fanout: claiming jobs failed: %s", rep->element[2]->str);
            if (strstr(rep->element[2]->str, "NOGROUP"))
                worker_groups(w);
        }
        const redisReply *jobs = worker_stream_entries(rep->element[1]);
        if (jobs)
            job_take(w, jobs, NULL);
    }
    *njobs_out = njobs;
    return 1;
}

void fanout_fanout(worker *w, const redisReply *entries, const int64_t *claims) {
    size_t n = entries->elements;
    if (n == 0)
        return;
    evcache_ev **evs = calloc(n, sizeof *evs);
    char **why = calloc(n, sizeof *why);
    if (!evs || !why) {
        LOG_E("fanout: out of memory; %zu events left pending", n);
        goto cleanup;
    }
    size_t ngood = 0, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *en = entries->element[i];
        if (!fanout_entry_ok(en))
            continue; /* deleted under us (XAUTOCLAIM lists those apart) */
        char err[HQ_ERRLEN];
        int64_t max = w->c->delivery_max_claims;
        if (claims && claims[i] - 1 > max) {
            snprintf(err, sizeof err, "claimed %lld times; it may crash workers",
                     (long long)(claims[i] - 1));
        } else if (en->element[1]->type == REDIS_REPLY_NIL) {
            continue;
        } else {
            envelope e = {0};
            if (fanout_parse(w->c, en, &e, err, sizeof err) == HQ_OK) {
                evs[i] = evcache_put(w->cache, en->element[0]->str, &e);
                if (evs[i]) {
                    ngood++;
                    continue;
                }
                snprintf(err, sizeof err, "out of memory");
                LOG_E("fanout: event %s: out of memory; left pending", en->element[0]->str);
                continue;
            }
            envelope_clear(&e);
        }
        why[i] = strdup(err);
        if (why[i])
            nbad++;
        LOG_W("fanout: event %s is malformed, dead-lettered: %s", en->element[0]->str, err);
    }
    if (ngood + nbad == 0)
        goto cleanup;

    /* The script refuses to run against a table older than the endpoints in Redis (an
     * endpoint created before an event was published must receive it): reload and build
     * the batch again. Bounded, in case endpoints change faster than we can reload. */
    size_t njobs = 0;
    int done = 0;
    for (int tries = 0; tries < FANOUT_STALE_TRIES && !done && w->redis_up; tries++)
        done = fanout_run(w, entries, evs, why, ngood, nbad, &njobs);
    if (!done)
        goto cleanup; /* the events stay pending; reclaim hands them out again */
    LOG_D("fanout: %zu events -> %zu jobs, %zu dead-lettered", ngood, njobs, nbad);
cleanup:
    for (size_t i = 0; evs && i < n; i++)
        evcache_release(evs[i]);
    for (size_t i = 0; why && i < n; i++)
        free(why[i]);
    free(evs);
    free(why);
}
