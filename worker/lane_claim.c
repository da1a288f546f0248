/* lane_claim.c -- see lane_claim.h. */
#include "lane_claim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "lane.h"
#include "log.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "timestamp.h"

#define CALLS_MAX   64 /* endpoints per claim round */
#define REAP_MAX    1000
#define WM_WAIT_MAX 100 /* ms: the longest wait between claims that found the watermark low */

typedef struct lep {
    char *id;
    int ordered;
    int64_t due_ms;  /* monotonic */
    size_t want;     /* asked for in the current round */
    int64_t wm_wait; /* ms: how long the last claim waited for the watermark (backoff) */
} lep;

struct lclaim {
    const cfg *c;
    const char *me, *k_events;
    lep *v;
    size_t n;
    pipeline *p, *wp;
    /* the watermark, kept between rounds: a stale one is only stricter (it never moves
     * back), so it is read again only when a claim found a head above it */
    char wm[LANE_ID_LEN], fanning[LANE_ID_LEN];
    int wm_stale;
};

lclaim *lclaim_new(const cfg *c, const char *me, const char *k_events) {
    lclaim *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->wm_stale = 1;
    x->c = c;
    x->me = me;
    x->k_events = k_events;
    x->p = pipeline_new();
    x->wp = pipeline_new();
    if (!x->p || !x->wp) {
        lclaim_free(x);
        return NULL;
    }
    return x;
}

static void clear(lclaim *x) {
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].id);
    free(x->v);
    x->v = NULL;
    x->n = 0;
}

void lclaim_free(lclaim *x) {
    if (!x)
        return;
    clear(x);
    pipeline_free(x->p);
    pipeline_free(x->wp);
    free(x);
}

static lep *find(const lclaim *x, const char *id) {
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i].id, id) == 0)
            return &x->v[i];
    return NULL;
}

void lclaim_sync(lclaim *x, const epindex *eps) {
    size_t n = epindex_len(eps), k = 0;
    lep *nv = calloc(n + 1, sizeof *nv);
    if (!nv)
        return; /* keep the old set */
    int64_t now = ts_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const epindex_ent *en = epindex_at(eps, i);
        if (!en || !en->e || !ep_claims_lanes(en->e))
            continue;
        nv[k].id = strdup(en->e->id);
        if (!nv[k].id)
            continue;
        nv[k].ordered = en->e->ordered;
        /* a change (enabled again, a policy set) may make work claimable: look now */
        nv[k].due_ms = now;
        k++;
    }
    clear(x);
    x->v = nv;
    x->n = k;
}

void lclaim_wake(lclaim *x, const char *ep_id) {
    lep *e = find(x, ep_id);
    if (e)
        e->due_ms = 0;
}

int64_t lclaim_next_ms(const lclaim *x) {
    int64_t best = -1;
    for (size_t i = 0; i < x->n; i++)
        if (best < 0 || x->v[i].due_ms < best)
            best = x->v[i].due_ms;
    return best;
}

size_t lclaim_count(const lclaim *x) {
    return x->n;
}

/* The watermark, padded: wm (inclusive) and fanning (exclusive, "" = none). */
static link_kind watermark(lclaim *x, redis_link *l, char wm[LANE_ID_LEN],
                           char fanning[LANE_ID_LEN], char *err, size_t errlen) {
    pipeline *p = x->wp;
    pipeline_reset(p);
    pipeline_eval(p, 0, NULL, &script_watermark, 1);
    pipeline_arg(p, x->k_events);
    pipeline_arg(p, KEY_GROUP_FANOUT);
    pipeline_end(p);
    wm[0] = fanning[0] = '\0';
    link_kind k = link_exec(l, p, err, errlen);
    if (k != LINK_OK)
        return k;
    const redisReply *r = pipeline_reply(p, 0);
    k = link_reply_kind(r);
    if (k != LINK_OK) {
        snprintf(err, errlen, "watermark.lua: %s", r->str ? r->str : "?");
        return k;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return LINK_OK;
    if (r->element[0]->type == REDIS_REPLY_STRING && lane_id_of(r->element[0]->str, wm) != HQ_OK)
        wm[0] = '\0';
    if (r->element[1]->type == REDIS_REPLY_STRING &&
        lane_id_of(r->element[1]->str, fanning) != HQ_OK)
        fanning[0] = '\0';
    return LINK_OK;
}

static int64_t reply_int(const redisReply *r) {
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* One claim reply: jobs into the table, the endpoint's next due time. */
static size_t take(lclaim *x, lep *e, const redisReply *r, size_t want, job_table *jobs,
                   evcache *cache, int64_t read_us, int64_t now) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || (r->elements - 3) % 5 != 0) {
        e->due_ms = now + LCLAIM_POLL_MS;
        return 0;
    }
    int64_t st = reply_int(r->element[0]), wait = reply_int(r->element[1]);
    if (st == 7)
        x->wm_stale = 1; /* a head waits above what we know: read it again */
    size_t got = 0;
    for (size_t i = 3; i + 4 < r->elements; i += 5) {
        const char *lid = r->element[i]->str, *key = r->element[i + 1]->str;
        if (!lid || !key)
            continue;
        char sid[192], evsid[48];
        if (lane_sid_of(lid, evsid, sizeof evsid) != HQ_OK) {
            LOG_E("lanes: endpoint %s: lane id '%.60s' is not a stream id; left to expire", e->id,
                  lid);
            continue;
        }
        snprintf(sid, sizeof sid, "lane:%s:%s", e->id, lid);
        job *j = job_new(jobs, sid, evsid, e->id, (int)reply_int(r->element[i + 2]), read_us);
        got++;
        if (!j)
            continue; /* held already (its lease was renewed by the claim) or OOM */
        j->lane = 1;
        j->lane_ordered = e->ordered;
        snprintf(j->lid, sizeof j->lid, "%s", lid);
        j->lkey = strdup(key);
        j->behind = reply_int(r->element[i + 3]);
        if (r->element[i + 4]->str)
            snprintf(j->next_lid, sizeof j->next_lid, "%s", r->element[i + 4]->str);
        j->ev = evcache_get(cache, evsid);
        job_transition(j, j->ev ? JOB_READY : JOB_FETCH, NULL);
    }
    if (st == 7 && got == 0) {
        /* a head waits for an earlier event's fanout: usually a round trip, but a
         * crashed fanout holds it until reclaim (the visibility timeout), so back off */
        e->wm_wait = e->wm_wait ? (e->wm_wait * 2 > WM_WAIT_MAX ? WM_WAIT_MAX : e->wm_wait * 2) : 1;
        e->due_ms = now + e->wm_wait;
        return 0;
    }
    e->wm_wait = 0;
    if (got > 0 && got >= want)
        e->due_ms = now; /* there may be more */
    else if (st == 1 || st == 2)
        e->due_ms = now + LCLAIM_POLL_MS;
    else if (wait >= 0)
        e->due_ms = now + (wait < 1 ? 1 : wait > LCLAIM_POLL_MS ? LCLAIM_POLL_MS : wait);
    else
        e->due_ms = now + LCLAIM_POLL_MS;
    return got;
}

lclaim_out lclaim_run(lclaim *x, redis_link *l, job_table *jobs, evcache *cache, size_t room,
                      lclaim_cap_fn cap, void *ud, int64_t read_us) {
    lclaim_out out = {0};
    int64_t now = ts_mono_ms();
    lep *due[CALLS_MAX];
    size_t dwant[CALLS_MAX];
    size_t nd = 0;
    int ordered = 0;
    if (room == 0)
        return out;
    for (size_t i = 0; i < x->n && nd < CALLS_MAX; i++) {
        if (x->v[i].due_ms > now)
            continue;
        dwant[nd] = cap ? cap(ud, x->v[i].id) : SIZE_MAX;
        if (dwant[nd] == 0) {
            x->v[i].due_ms = now + LCLAIM_POLL_MS; /* woken when its jobs finish */
            continue;
        }
        due[nd++] = &x->v[i];
        ordered |= x->v[i].ordered;
    }
    if (nd == 0)
        return out;
    if (ordered && x->wm_stale) {
        out.kind = watermark(x, l, x->wm, x->fanning, out.error, sizeof out.error);
        if (out.kind != LINK_OK) {
            x->wm[0] = x->fanning[0] = '\0';
            return out;
        }
        x->wm_stale = 0;
    }
    size_t want = room / nd;
    if (want < 1)
        want = 1;
    if (want > (size_t)x->c->delivery_batch)
        want = (size_t)x->c->delivery_batch;
    int64_t lease = x->c->delivery_visibility_timeout_ms;
    pipeline *p = x->p;
    pipeline_reset(p);
    for (size_t i = 0; i < nd; i++) {
        if (lane_claim_begin(p, 0, due[i], x->c->redis_prefix, due[i]->id) != HQ_OK) {
            due[i]->due_ms = now + LCLAIM_POLL_MS;
            continue;
        }
        due[i]->want = dwant[i] < want ? dwant[i] : want;
        pipeline_arg(p, x->me);
        pipeline_argi(p, (int64_t)due[i]->want);
        pipeline_argi(p, lease);
        pipeline_arg(p, x->wm);
        pipeline_arg(p, x->fanning);
        pipeline_argi(p, REAP_MAX);
        pipeline_end(p);
    }
    out.calls = pipeline_len(p);
    if (out.calls == 0)
        return out;
    out.kind = link_exec(l, p, out.error, sizeof out.error);
    if (out.kind != LINK_OK)
        return out;
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *r = pipeline_reply(p, i);
        lep *e = pipeline_ud(p, i);
        link_kind k = link_reply_kind(r);
        if (k != LINK_OK) {
            LOG_E("lanes: claiming from endpoint %s: %s", e->id, r->str ? r->str : "?");
            e->due_ms = now + LCLAIM_POLL_MS;
            out.kind = k;
            snprintf(out.error, sizeof out.error, "%s", r->str ? r->str : "");
            continue;
        }
        out.jobs += take(x, e, r, e->want, jobs, cache, read_us, now);
    }
    return out;
}
