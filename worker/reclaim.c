/* reclaim.c -- reclaim and trimming, every few seconds.
 *
 * Jobs (and events) pending longer than delivery.visibility_timeout belong to a worker
 * that died or hung: XAUTOCLAIM them, following the cursor until it wraps. Entries
 * deleted meanwhile (3rd element) are acknowledged away. A job delivered more than
 * delivery.max_claims + 1 times (its first read plus the claims) is dead-lettered rather
 * than handed to the next worker it may crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "log.h"
#include "timestamp.h"
#include "worker_internal.h"

#define RECLAIM_COUNT         100
#define RECLAIM_ROUNDS        10
#define RECLAIM_TRIM_EVERY_MS 60000

/* Delivery counts of the claimed entries, from one XPENDING over their id range.
 * malloc'd array parallel to entries (0 where unknown); NULL on error. */
static int64_t *reclaim_counts(worker *w, const char *key, const char *group,
                               const redisReply *entries) {
    size_t n = entries->elements;
    int64_t *out = calloc(n, sizeof *out);
    if (!out || n == 0)
        return out;
    const char *lo = NULL, *hi = NULL;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1)
            continue;
        if (!lo)
            lo = e->element[0]->str;
        hi = e->element[0]->str;
    }
    if (!lo)
        return out;
    char err[HQ_ERRLEN];
    redisReply *rep = rconn_cmd(w->r, err, sizeof err, "XPENDING %s %s %s %s %lld %s", key, group,
                                lo, hi, (long long)(n + worker_held(w) + 16), w->name);
    if (!rep) {
        worker_down(w, err);
        free(out);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 1)
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
    freeReplyObject(rep);
    return out;
}

static void reclaim_stream(worker *w, const char *key, const char *group, int jobs) {
    char cursor[64] = "0-0";
    for (int round = 0; round < RECLAIM_ROUNDS && w->redis_up; round++) {
        size_t room = worker_room(w);
        size_t count = jobs ? (room < RECLAIM_COUNT ? room : RECLAIM_COUNT) : RECLAIM_COUNT;
        if (count == 0)
            return;
        char err[HQ_ERRLEN];
        w->read_at = ts_mono_us();
        redisReply *rep = rconn_cmd(
            w->r, err, sizeof err, "XAUTOCLAIM %s %s %s %lld %s COUNT %lld", key, group, w->name,
            (long long)w->c->delivery_visibility_timeout_ms, cursor, (long long)count);
        if (!rep) {
            worker_down(w, err);
            return;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            if (worker_reply_nogroup(rep))
                worker_groups(w);
            else if (rep->type == REDIS_REPLY_ERROR)
                LOG_E("reclaim: XAUTOCLAIM %s: %s", key, rep->str);
            freeReplyObject(rep);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        if (rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_ARRAY &&
            rep->element[2]->elements > 0) {
            const redisReply *del = rep->element[2];
            pipeline_begin(w->side, 0, NULL);
            pipeline_arg(w->side, "XACK");
            pipeline_arg(w->side, key);
            pipeline_arg(w->side, group);
            for (size_t i = 0; i < del->elements; i++)
                pipeline_arg(w->side, del->element[i]->str);
            pipeline_end(w->side);
            LOG_I("reclaim: %zu pending entries of %s were deleted; acknowledged them",
                  del->elements, key);
        }
        const redisReply *entries = rep->element[1];
        if (entries->elements > 0) {
            int64_t *counts = reclaim_counts(w, key, group, entries);
            if (counts) {
                LOG_I("reclaim: claimed %zu entries of %s idle over %lldms", entries->elements, key,
                      (long long)w->c->delivery_visibility_timeout_ms);
                if (jobs)
                    job_take(w, entries, counts);
                else
                    fanout_fanout(w, entries, counts);
                free(counts);
            }
        }
        freeReplyObject(rep);
        if (strcmp(cursor, "0-0") == 0)
            break;
    }
}

void reclaim_tick(worker *w) {
    int64_t now = ts_mono_ms();
    if (now < w->next_reclaim)
        return;
    int64_t every = w->c->delivery_visibility_timeout_ms / 2;
    if (every > 5000)
        every = 5000;
    if (every < 250)
        every = 250;
    w->next_reclaim = now + every;
    reclaim_stream(w, w->k_jobs, KEY_GROUP_DELIVER, 1);
    reclaim_stream(w, w->k_events, KEY_GROUP_FANOUT, 0);
    if (w->redis_up && now >= w->next_trim) {
        /* events are kept for retries and replays, then trimmed by age (ids are times) */
        w->next_trim = now + RECLAIM_TRIM_EVERY_MS;
        pipeline_begin(w->side, 0, NULL);
        pipeline_arg(w->side, "XTRIM");
        pipeline_arg(w->side, w->k_events);
        pipeline_arg(w->side, "MINID");
        pipeline_arg(w->side, "~");
        pipeline_argi(w->side, ts_now_ms() - w->c->events_retention_ms);
        pipeline_end(w->side);
    }
}
