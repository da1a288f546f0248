/* fanout.c -- see fanout.h. */
#include "fanout.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dead_letter.h"
#include "hq.h"
#include "log.h"
#include "scripts_gen.h"
#include "stream_entry.h"

struct fanout {
    pipeline *p;
};

fanout *fanout_new(void) {
    fanout *f = calloc(1, sizeof *f);
    if (f && !(f->p = pipeline_new())) {
        free(f);
        return NULL;
    }
    return f;
}

void fanout_free(fanout *f) {
    if (!f)
        return;
    pipeline_free(f->p);
    free(f);
}

fanout_out fanout_run(fanout *f, redis_link *l, const cfg *c, const fanout_keys *k, epindex *eps,
                      int64_t version, evcache *cache, const redisReply *entries,
                      const int64_t *claims, size_t room) {
    fanout_out out = {0};
    size_t n = entries ? entries->elements : 0;
    pipeline *p = f->p;
    pipeline_reset(p);
    if (n == 0)
        return out;
    evcache_ev **evs = calloc(n, sizeof *evs);
    char **why = calloc(n, sizeof *why);
    const char *lo = NULL, *hi = NULL;
    if (!evs || !why) {
        LOG_E("fanout: out of memory; %zu events left pending", n);
        out.status = FANOUT_FAILED;
        out.kind = LINK_ERR;
        goto cleanup;
    }
    envelope_limits lim = {.max_payload = (size_t)c->events_max_payload,
                           .max_depth = c->events_max_depth};
    for (size_t i = 0; i < n; i++) {
        const redisReply *en = entries->element[i];
        if (!entry_ok(en) || !entry_sid_valid(en->element[0]->str, en->element[0]->len))
            continue; /* not something Redis returns; nothing we can acknowledge */
        const char *sid = en->element[0]->str;
        char err[HQ_ERRLEN];
        if (claims && claims[i] - 1 > c->delivery_max_claims) {
            snprintf(err, sizeof err, "claimed %lld times; it may crash workers",
                     (long long)(claims[i] - 1));
        } else if (en->element[1]->type == REDIS_REPLY_NIL) {
            continue; /* deleted while pending (reclaim acknowledges those) */
        } else {
            envelope e;
            if (entry_parse_event(en, &lim, &e, err, sizeof err) == HQ_OK) {
                evs[i] = evcache_put(cache, sid, &e);
                if (evs[i]) {
                    out.good++;
                    goto range;
                }
                LOG_E("fanout: event %s: out of memory; left pending", sid);
                continue;
            }
        }
        why[i] = strdup(err);
        if (!why[i])
            continue;
        out.bad++;
        LOG_W("fanout: event %s is malformed, dead-lettered: %s", sid, err);
    range:
        if (!lo)
            lo = sid;
        hi = sid;
    }
    if (out.good + out.bad == 0)
        goto cleanup;

    pipeline_eval(p, 0, NULL, &script_fanout, 4);
    pipeline_arg(p, k->events);
    pipeline_arg(p, k->jobs);
    pipeline_arg(p, k->dead);
    pipeline_arg(p, k->version);
    pipeline_arg(p, k->me);
    pipeline_argi(p, (int64_t)room);
    pipeline_argi(p, version);
    pipeline_argi(p, c->dead_maxlen);
    pipeline_arg(p, lo);
    pipeline_arg(p, hi);
    pipeline_argi(p, (int64_t)out.good);
    for (size_t i = 0; i < n; i++) {
        if (!evs[i])
            continue;
        epindex_ent *const *m;
        size_t nm = epindex_match(eps, evs[i]->e.type, evs[i]->e.tenant, evs[i]->e.endpoint, &m);
        pipeline_arg(p, evs[i]->sid);
        pipeline_argi(p, (int64_t)nm);
        for (size_t e = 0; e < nm; e++)
            pipeline_arg(p, m[e]->e->id);
        out.jobs += nm;
        LOG_D("fanout: event %s (%s, %s) -> %zu endpoints", evs[i]->e.id, evs[i]->sid,
              evs[i]->e.type, nm);
    }
    pipeline_argi(p, (int64_t)out.bad);
    for (size_t i = 0; i < n; i++) {
        if (!why[i])
            continue;
        const redisReply *en = entries->element[i];
        pipeline_arg(p, en->element[0]->str);
        pipeline_arg(p, why[i]);
        const redisReply *fields =
            en->element[1]->type == REDIS_REPLY_ARRAY ? en->element[1] : NULL;
        pipeline_argi(p, (int64_t)dead_letter_count(fields));
        dead_letter_fields(p, fields);
    }
    pipeline_end(p);
    char err[HQ_ERRLEN];
    out.kind = link_exec(l, p, err, sizeof err);
    if (out.kind != LINK_OK) {
        out.status = FANOUT_FAILED;
        snprintf(out.error, sizeof out.error, "%s", err);
        goto cleanup;
    }
    const redisReply *rep = pipeline_reply(p, 0);
    out.kind = link_reply_kind(rep);
    if (out.kind != LINK_OK) {
        out.status = FANOUT_FAILED;
        snprintf(out.error, sizeof out.error, "%s", rep->str ? rep->str : "");
        goto cleanup;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer < 0) {
        out.status = FANOUT_STALE;
        goto cleanup;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 4) {
        if (rep->element[2]->type == REDIS_REPLY_STRING) {
            out.claim_kind = link_error_kind(rep->element[2]->str);
            snprintf(out.error, sizeof out.error, "%s", rep->element[2]->str);
        }
        out.claimed = entry_stream_entries(rep->element[1]);
        if (rep->element[3]->type == REDIS_REPLY_INTEGER)
            out.skipped = (size_t)rep->element[3]->integer;
    }
    LOG_D("fanout: %zu events -> %zu jobs, %zu dead-lettered, %zu skipped", out.good, out.jobs,
          out.bad, out.skipped);
cleanup:
    for (size_t i = 0; evs && i < n; i++)
        evcache_release(evs[i]);
    for (size_t i = 0; why && i < n; i++)
        free(why[i]);
    free(evs);
    free(why);
    return out;
}
