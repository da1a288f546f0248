/* reclaim.c -- see reclaim.h. */
#include "reclaim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "lane.h"
#include "redis_keys.h"
#include "timestamp.h"
#include "stream_entry.h"
#include "log.h"
#include "scripts_gen.h"

static const char *const groups[RECLAIM_STREAMS] = {"deliver", "fanout"};

struct reclaim {
    const cfg *c;
    const char *keys[RECLAIM_STREAMS];
    const char *me;
    char cursor[RECLAIM_STREAMS][64]; /* XAUTOCLAIM cursors */
    char own[RECLAIM_STREAMS][64];    /* last id of the own-pending scan */
    redisReply *rep;                  /* the last reply handed out */
    int64_t *counts;
    pipeline *p;
};

reclaim *reclaim_new(const cfg *c, const char *k_jobs, const char *k_events, const char *me) {
    reclaim *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->c = c;
    r->keys[RECLAIM_JOBS] = k_jobs;
    r->keys[RECLAIM_EVENTS] = k_events;
    r->me = me;
    r->p = pipeline_new();
    if (!r->p) {
        free(r);
        return NULL;
    }
    for (int s = 0; s < RECLAIM_STREAMS; s++)
        reclaim_restart(r, (reclaim_stream)s);
    return r;
}

static void drop_last(reclaim *r) {
    link_reply_free(r->rep);
    r->rep = NULL;
    free(r->counts);
    r->counts = NULL;
}

void reclaim_free(reclaim *r) {
    if (!r)
        return;
    drop_last(r);
    pipeline_free(r->p);
    free(r);
}

void reclaim_restart(reclaim *r, reclaim_stream s) {
    snprintf(r->cursor[s], sizeof r->cursor[s], "0-0");
    snprintf(r->own[s], sizeof r->own[s], "0");
}

/* XACK ids (an array reply of ids or of entries) that no longer exist in the stream. */
static void ack_ids(reclaim *r, redis_link *l, reclaim_stream s, const redisReply *ids,
                    int entries) {
    pipeline *p = r->p;
    pipeline_reset(p);
    pipeline_begin(p, 0, NULL);
    pipeline_arg(p, "XACK");
    pipeline_arg(p, r->keys[s]);
    pipeline_arg(p, groups[s]);
    size_t n = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *e = ids->element[i];
        if (entries) {
            if (!entry_ok(e) || e->element[1]->type != REDIS_REPLY_NIL)
                continue;
            e = e->element[0];
        }
        if (e->type == REDIS_REPLY_STRING) {
            pipeline_arg(p, e->str);
            n++;
        }
    }
    pipeline_end(p);
    char err[HQ_ERRLEN];
    if (n > 0 && link_exec(l, p, err, sizeof err) == LINK_OK)
        LOG_I("reclaim: %zu pending entries of %s were deleted; acknowledged them", n, r->keys[s]);
}

/* Delivery counts of entries, from one XPENDING over their id range. */
static int64_t *counts_of(reclaim *r, redis_link *l, reclaim_stream s, const redisReply *entries,
                          link_kind *kind) {
    size_t n = entries->elements;
    int64_t *out = calloc(n ? n : 1, sizeof *out);
    *kind = LINK_OK;
    if (!out || n == 0)
        return out;
    const char *lo = NULL, *hi = NULL;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries->element[i];
        if (!entry_ok(e))
            continue;
        if (!lo)
            lo = e->element[0]->str;
        hi = e->element[0]->str;
    }
    if (!lo)
        return out;
    char err[HQ_ERRLEN];
    redisReply *rep = link_cmd(l, err, sizeof err, "XPENDING %s %s %s %s %lld %s", r->keys[s],
                               groups[s], lo, hi, (long long)(10 * n + 1000), r->me);
    if (!rep) {
        *kind = LINK_IO;
        free(out);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = entries->element[i];
            if (!entry_ok(e))
                continue;
            for (size_t k = 0; k < rep->elements; k++) {
                const redisReply *pe = rep->element[k];
                if (pe->type == REDIS_REPLY_ARRAY && pe->elements >= 4 &&
                    strcmp(pe->element[0]->str, e->element[0]->str) == 0) {
                    out[i] = pe->element[3]->integer;
                    break;
                }
            }
        }
    }
    link_reply_free(rep);
    return out;
}

reclaim_batch reclaim_round(reclaim *r, redis_link *l, reclaim_stream s, size_t count) {
    reclaim_batch b = {0};
    drop_last(r);
    if (count == 0)
        return b;
    char err[HQ_ERRLEN];
    redisReply *rep = link_cmd(
        l, err, sizeof err, "XAUTOCLAIM %s %s %s %lld %s COUNT %lld", r->keys[s], groups[s], r->me,
        (long long)r->c->delivery_visibility_timeout_ms, r->cursor[s], (long long)count);
    if (!rep) {
        b.kind = LINK_IO;
        return b;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY) {
        b.kind = link_reply_kind(rep);
        if (b.kind == LINK_OK)
            b.kind = LINK_ERR;
        if (b.kind != LINK_NOGROUP)
            LOG_E("reclaim: XAUTOCLAIM %s: %s", r->keys[s], rep->str ? rep->str : "bad reply");
        link_reply_free(rep);
        b.done = 1;
        return b;
    }
    snprintf(r->cursor[s], sizeof r->cursor[s], "%s", rep->element[0]->str);
    b.done = strcmp(r->cursor[s], "0-0") == 0;
    if (rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_ARRAY &&
        rep->element[2]->elements > 0)
        ack_ids(r, l, s, rep->element[2], 0);
    r->rep = rep;
    b.entries = rep->element[1];
    if (b.entries->elements > 0) {
        LOG_I("reclaim: claimed %zu entries of %s idle over %lldms", b.entries->elements,
              r->keys[s], (long long)r->c->delivery_visibility_timeout_ms);
        r->counts = counts_of(r, l, s, b.entries, &b.kind);
        if (!r->counts) {
            b.entries = NULL; /* left claimed by us: reclaim_own picks them up */
            if (b.kind == LINK_OK)
                b.kind = LINK_ERR;
        }
        b.counts = r->counts;
    }
    return b;
}

reclaim_batch reclaim_own(reclaim *r, redis_link *l, reclaim_stream s, size_t count) {
    reclaim_batch b = {0};
    drop_last(r);
    if (count == 0)
        return b;
    char err[HQ_ERRLEN];
    redisReply *rep =
        link_cmd(l, err, sizeof err, "XREADGROUP GROUP %s %s COUNT %lld STREAMS %s %s", groups[s],
                 r->me, (long long)count, r->keys[s], r->own[s]);
    if (!rep) {
        b.kind = LINK_IO;
        return b;
    }
    b.kind = link_reply_kind(rep);
    if (b.kind != LINK_OK) {
        link_reply_free(rep);
        b.done = 1;
        return b;
    }
    r->rep = rep;
    b.entries = entry_stream_entries(rep);
    size_t n = b.entries ? b.entries->elements : 0;
    b.done = n < count;
    if (n > 0) {
        const redisReply *last = b.entries->element[n - 1];
        if (entry_ok(last))
            snprintf(r->own[s], sizeof r->own[s], "%s", last->element[0]->str);
        ack_ids(r, l, s, b.entries, 1); /* deleted while pending for us */
        LOG_I("recover: %zu entries of %s pending for this worker", n, r->keys[s]);
    }
    return b;
}

/* Lane jobs' leases (docs/policies.md): one ZADD XX per endpoint, only members that
 * still exist (a lease taken back by another worker's claim is not revived). */
static void renew_lanes(reclaim *r, pipeline *p, const job_table *jobs) {
    int64_t exp = ts_now_ms() + r->c->delivery_visibility_timeout_ms;
    for (int li = 0; li < JOB_LISTS; li++)
        for (const job *g = job_first(jobs, (job_list)li); g; g = g->next) {
            if (!g->lane || g->renew_mark)
                continue;
            char k[KEY_MAX];
            if (key_ep_part(r->c->redis_prefix, g->ep_id, KEY_EP_LEASES, k, sizeof k) != HQ_OK)
                continue;
            pipeline_begin(p, 1, NULL);
            pipeline_arg(p, "ZADD");
            pipeline_arg(p, k);
            pipeline_arg(p, "XX");
            for (int lj = li; lj < JOB_LISTS; lj++)
                for (job *j = lj == li ? (job *)g : job_first(jobs, (job_list)lj); j; j = j->next) {
                    if (!j->lane || j->renew_mark || strcmp(j->ep_id, g->ep_id) != 0)
                        continue;
                    char m[LANE_MEMBER_MAX];
                    lane_member(j->lid, j->lkey ? j->lkey : "", r->me, m, sizeof m);
                    pipeline_argi(p, exp);
                    pipeline_arg(p, m);
                    j->renew_mark = 1;
                }
            pipeline_end(p);
        }
    for (int li = 0; li < JOB_LISTS; li++)
        for (job *j = job_first(jobs, (job_list)li); j; j = j->next)
            j->renew_mark = 0;
}

link_kind reclaim_renew(reclaim *r, redis_link *l, const job_table *jobs) {
    size_t n = 0;
    pipeline *p = r->p;
    pipeline_reset(p);
    pipeline_eval(p, 0, NULL, &script_renew, 1);
    pipeline_arg(p, r->keys[RECLAIM_JOBS]);
    pipeline_arg(p, groups[RECLAIM_JOBS]);
    pipeline_arg(p, r->me);
    for (int li = 0; li < JOB_LISTS; li++)
        for (const job *j = job_first(jobs, (job_list)li); j; j = j->next) {
            if (j->lane)
                continue;
            pipeline_arg(p, j->sid);
            n++;
        }
    pipeline_end(p);
    if (n == 0)
        pipeline_reset(p);
    renew_lanes(r, p, jobs);
    if (pipeline_len(p) == 0)
        return LINK_OK;
    char err[HQ_ERRLEN];
    link_kind k = link_exec(l, p, err, sizeof err);
    if (k != LINK_OK)
        return k;
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        link_kind rk = link_reply_kind(rep);
        if (rk != LINK_OK && rk != LINK_OOM)
            LOG_E("lease: renewing: %s", rep->str);
        else if (pipeline_tag(p, i) == 0 && rep->type == REDIS_REPLY_INTEGER &&
                 (size_t)rep->integer < n)
            LOG_D("lease: renewed %lld of %zu held jobs (the rest are no longer ours)",
                  (long long)rep->integer, n);
        if (i == 0 && rk != LINK_OK)
            k = rk;
    }
    return k;
}
