/* fanout.c -- see fanout.h. */
#include "fanout.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dead_letter.h"
#include "hq.h"
#include "lane.h"
#include "log.h"
#include "string_map.h"
#include "scripts_gen.h"
#include "stream_entry.h"

/* The jobs of one lane endpoint in a batch: events (indices) with their order keys. */
typedef struct lane_batch {
    const ep *e;
    size_t *ev;
    char (*key)[LANE_KEY_MAX];
    size_t n, cap;
} lane_batch;

struct fanout {
    pipeline *p, *lp; /* fanout.lua; lane_push.lua calls, sent first */
    lane_batch *lb;   /* the lane endpoints of the last run, with their jobs */
    size_t nlb, caplb;
    int pushed; /* the last run's lane pushes were answered */
};

fanout *fanout_new(void) {
    fanout *f = calloc(1, sizeof *f);
    if (f && (!(f->p = pipeline_new()) || !(f->lp = pipeline_new()))) {
        fanout_free(f);
        return NULL;
    }
    return f;
}

static void lanes_clear(fanout *f) {
    for (size_t i = 0; i < f->nlb; i++) {
        free(f->lb[i].ev);
        free(f->lb[i].key);
    }
    f->nlb = 0;
}

/* *seen (endpoint id -> batch + 1) is made on the first lane endpoint of a run: a
 * batch without one costs nothing. */
static lane_batch *lane_batch_of(fanout *f, strmap **seen, const ep *e) {
    if (!*seen && !(*seen = strmap_new()))
        return NULL;
    uintptr_t at = (uintptr_t)strmap_get(*seen, e->id);
    if (at)
        return &f->lb[at - 1];
    if (f->nlb == f->caplb) {
        size_t cap = f->caplb ? f->caplb * 2 : 4;
        lane_batch *n = realloc(f->lb, cap * sizeof *n);
        if (!n)
            return NULL;
        f->lb = n;
        f->caplb = cap;
    }
    if (strmap_put(*seen, e->id, (void *)(uintptr_t)(f->nlb + 1)) != HQ_OK)
        return NULL;
    f->lb[f->nlb] = (lane_batch){.e = e};
    return &f->lb[f->nlb++];
}

static int lane_add(lane_batch *b, size_t ev, const evcache_ev *v) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        size_t *nev = realloc(b->ev, cap * sizeof *nev);
        if (nev)
            b->ev = nev;
        char(*nk)[LANE_KEY_MAX] = realloc(b->key, cap * sizeof *nk);
        if (nk)
            b->key = nk;
        if (!nev || !nk)
            return HQ_ERR;
        b->cap = cap;
    }
    b->ev[b->n] = ev;
    lane_order_key(b->e, v->e.tenant, v->body, v->bodylen, b->key[b->n]);
    b->n++;
    return HQ_OK;
}

/* Every lane endpoint's jobs of the batch, one lane_push.lua each, sent and checked
 * before fanout.lua acknowledges the events: a push that failed leaves the events
 * pending (fanned out again later; pushes are idempotent), never acknowledged with a
 * job missing. */
static link_kind push_lanes(fanout *f, redis_link *l, const cfg *c, evcache_ev **evs, char *err,
                            size_t errlen) {
    pipeline *p = f->lp;
    pipeline_reset(p);
    for (size_t i = 0; i < f->nlb; i++) {
        lane_batch *b = &f->lb[i];
        if (lane_push_begin(p, 0, NULL, c->redis_prefix, b->e->id, 'f') != HQ_OK)
            continue;
        for (size_t k = 0; k < b->n; k++) {
            char lid[LANE_ID_LEN];
            if (lane_id_of(evs[b->ev[k]]->sid, lid) == HQ_OK)
                lane_push_job(p, lid, b->key[k], 1);
        }
        pipeline_end(p);
    }
    if (pipeline_len(p) == 0)
        return LINK_OK;
    link_kind k = link_exec(l, p, err, errlen);
    for (size_t i = 0; k == LINK_OK && i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        k = link_reply_kind(rep);
        if (k != LINK_OK)
            snprintf(err, errlen, "lane_push.lua: %s", rep->str ? rep->str : "?");
    }
    return k;
}

size_t fanout_lane_count(const fanout *f) {
    return f->pushed ? f->nlb : 0;
}

const char *fanout_lane_endpoint(const fanout *f, size_t i) {
    return f->lb[i].e->id;
}

void fanout_free(fanout *f) {
    if (!f)
        return;
    pipeline_free(f->p);
    pipeline_free(f->lp);
    lanes_clear(f);
    free(f->lb);
    free(f);
}

fanout_out fanout_run(fanout *f, redis_link *l, const cfg *c, const fanout_keys *k, epindex *eps,
                      int64_t version, evcache *cache, const redisReply *entries,
                      const int64_t *claims, size_t room) {
    fanout_out out = {0};
    size_t n = entries ? entries->elements : 0;
    pipeline *p = f->p;
    pipeline_reset(p);
    lanes_clear(f);
    f->pushed = 0;
    if (n == 0)
        return out;
    strmap *seen = NULL;
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
        size_t nplain = 0;
        for (size_t e = 0; e < nm; e++) {
            if (!ep_uses_lanes(m[e]->e)) {
                nplain++;
                continue;
            }
            lane_batch *b = lane_batch_of(f, &seen, m[e]->e);
            if (!b || lane_add(b, i, evs[i]) != HQ_OK) {
                LOG_E("fanout: out of memory; %zu events left pending", n);
                out.status = FANOUT_FAILED;
                out.kind = LINK_ERR;
                goto cleanup;
            }
        }
        pipeline_arg(p, evs[i]->sid);
        pipeline_argi(p, (int64_t)nplain);
        for (size_t e = 0; e < nm; e++)
            if (!ep_uses_lanes(m[e]->e))
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
    if (f->nlb > 0) {
        out.kind = push_lanes(f, l, c, evs, err, sizeof err);
        if (out.kind != LINK_OK) {
            out.status = FANOUT_FAILED;
            snprintf(out.error, sizeof out.error, "%s", err);
            goto cleanup;
        }
        f->pushed = 1;
    }
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
    strmap_free(seen);
    for (size_t i = 0; evs && i < n; i++)
        evcache_release(evs[i]);
    for (size_t i = 0; why && i < n; i++)
        free(why[i]);
    free(evs);
    free(why);
    return out;
}
