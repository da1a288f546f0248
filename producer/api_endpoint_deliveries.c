/* api_endpoint_deliveries.c -- what happened to an endpoint's deliveries: its delivery log
 * (GET /v1/endpoints/{id}/deliveries, as `hookq deliveries`) and the re-sending of what
 * failed in a time range (POST /v1/endpoints/{id}/recover, `hookq dead replay` limited to
 * the endpoint and the range). docs/keys.md has both streams' fields. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_endpoint_json.h"
#include "api_endpoint_store.h"
#include "hq.h"
#include "ids.h"
#include "redis_keys.h"
#include "timestamp.h"

#define LOG_SCAN_MAX  10000  /* log entries one page may read past (?failed=true) */
#define LOG_CHUNK     200    /* XREVRANGE COUNT while filtering */
#define DEAD_SCAN_MAX 10000  /* dead letters one recover call looks at */
#define DEAD_CHUNK    "1000" /* XRANGE COUNT over the dead-letter stream */
#define REQUEUE_BATCH 100    /* dead letters per script call */
#define CURSOR_MAX    128

/* A stream entry id as text: "<ms>-<seq>", both decimal. Cursors and dead letters' event
 * fields are checked with it before they reach a command. */
static int sid_ok(const char *s) {
    const char *dash = strchr(s, '-');
    size_t a = dash ? (size_t)(dash - s) : 0, b = dash ? strlen(dash + 1) : 0;
    if (a < 1 || a > 20 || b < 1 || b > 20)
        return 0;
    return strspn(s, "0123456789") == a && strspn(dash + 1, "0123456789") == b;
}

/* The id of an XRANGE entry, or NULL: a scan moves past every entry it is given, even one
 * it cannot read, so it always ends. */
static const char *entry_id(const redisReply *e) {
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || strlen(e->element[0]->str) >= 44)
        return NULL;
    return e->element[0]->str;
}

/* An XRANGE entry with the shape every reader here relies on. */
static int entry_ok(const redisReply *e) {
    if (!entry_id(e) || e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements % 2)
        return 0;
    for (size_t i = 0; i < e->element[1]->elements; i++)
        if (e->element[1]->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static const char *entry_field(const redisReply *e, const char *name) {
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1]->str;
    return NULL;
}

static int oom(api_req *rq) {
    return api_problem(rq, 500, "internal", NULL, "out of memory");
}

/* ---- the delivery log --------------------------------------------------------------- */

/* Newest first. With ?failed=true only attempts that did not deliver; such a page may read
 * past many delivered ones, at most LOG_SCAN_MAX: then it ends early, with a cursor. */
int api_endpoint_deliveries(api_req *rq) {
    char cursor[CURSOR_MAX], key[KEY_MAX], start[CURSOR_MAX + 2], count[16];
    char next[CURSOR_MAX] = "";
    const char *fq = api_query(rq, "failed");
    int failed = 0, end = 0;
    size_t limit, n = 0, scanned = 0;
    long long failures;
    json_t *data = NULL;
    ep *e = NULL;

    if (api_limit(rq, &limit) != HQ_OK || api_cursor(rq, cursor, sizeof cursor) != HQ_OK)
        return API_DONE;
    if (cursor[0] && !sid_ok(cursor))
        return api_problem(rq, 400, "invalid_cursor", "cursor",
                           "cursor is not one this API returned (pass next_cursor as it came)");
    if (fq && strcmp(fq, "true") != 0 && strcmp(fq, "false") != 0)
        return api_problem(rq, 400, "invalid_parameter", "failed", "failed must be true or false");
    failed = fq && strcmp(fq, "true") == 0;
    if (eps_load(rq, &e, &failures) != HQ_OK)
        return API_DONE;
    if (key_log(rq->ctx->prefix, e->id, key, sizeof key) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "endpoint id or prefix too long");
        goto cleanup;
    }
    if (!(data = json_array())) {
        oom(rq);
        goto cleanup;
    }
    /* One more entry than the page asks for tells whether there is a next page. */
    if (cursor[0])
        snprintf(start, sizeof start, "(%s", cursor);
    else
        snprintf(start, sizeof start, "+");
    snprintf(count, sizeof count, "%zu", failed ? LOG_CHUNK : limit + 1);
    while (!end && n <= limit && scanned < LOG_SCAN_MAX) {
        redisReply *rep =
            api_cmdv(rq, (const char *[]){"XREVRANGE", key, start, "-", "COUNT", count, NULL});
        if (!rep)
            goto cleanup;
        end = rep->type != REDIS_REPLY_ARRAY || rep->elements < (size_t)atoi(count);
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n <= limit; i++) {
            const redisReply *en = rep->element[i];
            const char *outcome;
            if (!entry_id(en))
                continue;
            scanned++;
            snprintf(start, sizeof start, "(%s", entry_id(en));
            if (!entry_ok(en))
                continue;
            outcome = entry_field(en, "outcome");
            if (failed && outcome && strcmp(outcome, "delivered") == 0)
                continue;
            if (n == limit) {
                n++; /* the one past the page: there is more */
                break;
            }
            json_t *o = epj_delivery(en);
            if (!o || json_array_append_new(data, o) != 0) {
                freeReplyObject(rep);
                oom(rq);
                goto cleanup;
            }
            snprintf(next, sizeof next, "%s", en->element[0]->str);
            n++;
        }
        freeReplyObject(rep);
    }
    /* More follows when the page filled up with one to spare, or the scan stopped at its
     * bound: then the cursor is the last entry read, so the next page goes on from it. */
    const char *cur = n > limit ? next : NULL;
    if (!cur && !end && scanned >= LOG_SCAN_MAX)
        cur = start + 1;
    api_json(rq, 200, api_page(data, cur && *cur ? cur : NULL));
    data = NULL;
cleanup:
    json_decref(data);
    ep_free(e);
    return API_DONE;
}

/* ---- recover ----------------------------------------------------------------------- */

/* Requeue dead letters of one endpoint as `hookq dead replay` does (cli_dead.c replay_one):
 * a jobs entry with attempt 1, and the dead letter deleted, in one step; only when the
 * event is still in the events stream (a job for a trimmed event would only die again) and
 * only when this call deleted the dead letter, so two recovers racing never queue one
 * twice. All three keys are on {q}.
 * KEYS: dead, jobs, events. ARGV: endpoint id, then pairs of dead letter id, event id.
 * Returns per pair "queued", "gone" (event trimmed) or "taken" (no longer dead). */
static const char requeue_lua[] =
    "local out = {}\n"
    "for i = 2, #ARGV - 1, 2 do\n"
    "  if #redis.call('XRANGE', KEYS[3], ARGV[i + 1], ARGV[i + 1], 'COUNT', 1) == 0 then\n"
    "    out[#out + 1] = 'gone'\n"
    "  elseif redis.call('XDEL', KEYS[1], ARGV[i]) == 0 then\n"
    "    out[#out + 1] = 'taken'\n"
    "  else\n"
    "    redis.call('XADD', KEYS[2], '*', 'event', ARGV[i + 1], 'endpoint', ARGV[1],\n"
    "               'attempt', '1')\n"
    "    out[#out + 1] = 'queued'\n"
    "  end\n"
    "end\n"
    "return out\n";

typedef struct pick {
    char dead_id[48];
    char event[48]; /* events stream id */
    char event_id[ID_MAX + 1];
} pick;

typedef struct picks {
    pick *p;
    size_t n, cap;
} picks;

static int skip(json_t *skipped, const char *dead_id, const char *event_id, const char *reason) {
    return json_array_append_new(skipped, json_pack("{s:s,s:s?,s:s}", "dead_id", dead_id,
                                                    "event_id", event_id, "reason", reason));
}

/* One dead letter of the range: ours and replayable goes to ps, ours and not to skipped. */
static int consider(const redisReply *en, const char *id, picks *ps, json_t *skipped) {
    const char *epid = entry_field(en, "endpoint"), *kind = entry_field(en, "kind");
    const char *event = entry_field(en, "event"), *event_id = entry_field(en, "event_id");
    const char *did = en->element[0]->str;
    if (!epid || strcmp(epid, id) != 0)
        return HQ_OK;
    if (event_id && strlen(event_id) > ID_MAX)
        event_id = NULL;
    if (kind && strcmp(kind, "event") == 0)
        return skip(skipped, did, event_id, "a malformed event is not replayable") ? HQ_ERR : HQ_OK;
    if (!event || !sid_ok(event))
        return skip(skipped, did, event_id, "the entry has no event stream id to replay") ? HQ_ERR
                                                                                          : HQ_OK;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        pick *np = realloc(ps->p, cap * sizeof *np);
        if (!np)
            return HQ_ERR;
        ps->p = np;
        ps->cap = cap;
    }
    pick *p = &ps->p[ps->n++];
    snprintf(p->dead_id, sizeof p->dead_id, "%s", did);
    snprintf(p->event, sizeof p->event, "%s", event);
    snprintf(p->event_id, sizeof p->event_id, "%s", event_id ? event_id : "");
    return HQ_OK;
}

static int64_t sid_ms(const char *sid) {
    return strtoll(sid, NULL, 10);
}

/* The dead letters of [since, until), oldest first, at most DEAD_SCAN_MAX and then the
 * rest of the millisecond the last one is in (so the range can go on at the next
 * millisecond exactly). *next_ms: that next millisecond when the scan stopped early,
 * else 0. */
static int scan_dead(api_req *rq, const char *dead, const char *id, int64_t since, int64_t until,
                     picks *ps, json_t *skipped, int64_t *next_ms) {
    char start[64], stop[64];
    size_t scanned = 0;
    int64_t cap_ms = -1;
    *next_ms = 0;
    snprintf(start, sizeof start, "%lld", (long long)since);
    snprintf(stop, sizeof stop, "(%lld-0", (long long)until);
    for (;;) {
        redisReply *rep =
            api_cmdv(rq, (const char *[]){"XRANGE", dead, start, stop, "COUNT", DEAD_CHUNK, NULL});
        size_t i;
        if (!rep)
            return HQ_ERR;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            freeReplyObject(rep);
            return HQ_OK;
        }
        for (i = 0; i < rep->elements; i++) {
            const redisReply *en = rep->element[i];
            const char *did = entry_id(en);
            if (!did)
                continue;
            if (cap_ms >= 0 && sid_ms(did) != cap_ms) {
                *next_ms = cap_ms + 1;
                freeReplyObject(rep);
                return HQ_OK;
            }
            snprintf(start, sizeof start, "(%s", did);
            if (entry_ok(en) && consider(en, id, ps, skipped) != HQ_OK) {
                freeReplyObject(rep);
                oom(rq);
                return HQ_ERR;
            }
            if (++scanned == DEAD_SCAN_MAX)
                cap_ms = sid_ms(did);
        }
        freeReplyObject(rep);
    }
}

/* Requeue ps in batches; fills event_ids and skipped. *queued counts. */
static int requeue(api_req *rq, const char *dead, const char *id, const picks *ps,
                   json_t *event_ids, json_t *skipped, size_t *queued) {
    char jobs[KEY_MAX], events[KEY_MAX];
    const char *argv[6 + 1 + 2 * REQUEUE_BATCH];
    key_jobs(rq->ctx->prefix, jobs, sizeof jobs);
    key_events(rq->ctx->prefix, events, sizeof events);
    for (size_t b = 0; b < ps->n; b += REQUEUE_BATCH) {
        size_t n = ps->n - b < REQUEUE_BATCH ? ps->n - b : REQUEUE_BATCH;
        int argc = 0;
        argv[argc++] = "EVAL";
        argv[argc++] = requeue_lua;
        argv[argc++] = "3";
        argv[argc++] = dead;
        argv[argc++] = jobs;
        argv[argc++] = events;
        argv[argc++] = id;
        for (size_t i = 0; i < n; i++) {
            argv[argc++] = ps->p[b + i].dead_id;
            argv[argc++] = ps->p[b + i].event;
        }
        redisReply *rep = api_cmd(rq, argc, argv, NULL);
        if (!rep)
            return HQ_ERR;
        for (size_t i = 0; i < n; i++) {
            const pick *p = &ps->p[b + i];
            const redisReply *r =
                rep->type == REDIS_REPLY_ARRAY && i < rep->elements ? rep->element[i] : NULL;
            const char *what = r && r->type == REDIS_REPLY_STRING ? r->str : "";
            const char *eid = p->event_id[0] ? p->event_id : p->event;
            int bad = 0;
            if (strcmp(what, "queued") == 0) {
                (*queued)++;
                bad = json_array_append_new(event_ids, json_string(eid));
            } else if (strcmp(what, "gone") == 0) {
                bad = skip(skipped, p->dead_id, eid,
                           "the event is no longer in the events stream (past events.retention)");
            } else {
                bad = skip(skipped, p->dead_id, eid,
                           "no longer a dead letter (replayed or purged meanwhile)");
            }
            if (bad) {
                freeReplyObject(rep);
                oom(rq);
                return HQ_ERR;
            }
        }
        freeReplyObject(rep);
    }
    return HQ_OK;
}

/* An ISO time body field: HQ_OK with *ms, or 422 naming it. */
static int time_field(api_req *rq, const json_t *body, const char *name, int64_t *ms) {
    const json_t *v = json_object_get(body, name);
    if (!json_is_string(v) || ts_parse_iso(json_string_value(v), ms) != HQ_OK) {
        api_problem(rq, 422, "invalid_field", name,
                    "%s: expected an ISO 8601 UTC time such as 2026-01-31T10:00:00.000Z", name);
        return HQ_ERR;
    }
    return HQ_OK;
}

/* Like Svix's recover: re-send what failed for this endpoint since a time. What failed
 * for good is in the dead-letter stream; the stream id's time is when it died. */
int api_endpoint_recover(api_req *rq) {
    static const char *const fields[] = {"since", "until", NULL};
    char dead[KEY_MAX];
    json_t *body = api_body_object(rq, 0), *event_ids = NULL, *skipped = NULL;
    int64_t since, until = ts_now_ms(), next_ms = 0;
    long long failures;
    size_t queued = 0;
    picks ps = {0};
    ep *e = NULL;
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, fields) != HQ_OK)
        goto cleanup;
    if (!json_object_get(body, "since")) {
        api_problem(rq, 422, "invalid_field", "since", "since: required");
        goto cleanup;
    }
    if (time_field(rq, body, "since", &since) != HQ_OK)
        goto cleanup;
    if (json_object_get(body, "until") && !json_is_null(json_object_get(body, "until")) &&
        time_field(rq, body, "until", &until) != HQ_OK)
        goto cleanup;
    if (since >= until) {
        api_problem(rq, 422, "invalid_field", "until", "until: must be after since");
        goto cleanup;
    }
    if (eps_load(rq, &e, &failures) != HQ_OK)
        goto cleanup;
    if (!e->enabled) {
        api_problem(rq, 409, "conflict", NULL,
                    "endpoint %s is disabled: enable it before recovering its deliveries", e->id);
        goto cleanup;
    }
    key_dead(rq->ctx->prefix, dead, sizeof dead);
    if (!(event_ids = json_array()) || !(skipped = json_array())) {
        oom(rq);
        goto cleanup;
    }
    if (scan_dead(rq, dead, e->id, since, until, &ps, skipped, &next_ms) != HQ_OK ||
        requeue(rq, dead, e->id, &ps, event_ids, skipped, &queued) != HQ_OK)
        goto cleanup;
    char next_iso[TS_ISO_LEN];
    if (next_ms)
        ts_iso(next_ms, next_iso, sizeof next_iso);
    api_json(rq, 202,
             json_pack("{s:I,s:O,s:O,s:b,s:s?}", "queued", (json_int_t)queued, "event_ids",
                       event_ids, "skipped", skipped, "truncated", next_ms != 0, "next_since",
                       next_ms ? next_iso : NULL));
cleanup:
    free(ps.p);
    json_decref(event_ids);
    json_decref(skipped);
    json_decref(body);
    ep_free(e);
    return API_DONE;
}
