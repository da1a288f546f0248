/* api_dead.c -- GET /v1/dead (the dead-letter stream, newest first) and POST
 * /v1/dead/replay (dead letters back to the jobs stream), with `hookq dead list` and
 * `hookq dead replay`'s semantics (producer/cli_dead.c) on the same Redis data, bounded
 * per request (docs/api.md "Events"). */
#include "api_evkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "hq.h"
#include "ids.h"
#include "pipeline.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "string_map.h"
#include "timestamp.h"

#define DEAD_SCAN_MAX 10000 /* entries one list request reads before it answers */
#define DEAD_CHUNK    200   /* entries per XREVRANGE when a filter may skip some */
#define REPLAY_MAX    10000 /* dead letters one replay call takes */
#define REPLAY_BATCH  200   /* letters per api_dead_replay.lua call: bounds its run time */

/* For a tenant key, the ids of its tenant's endpoints (a dead letter shows to a tenant
 * through its endpoint, the only tenant mark it has); NULL *mine for admins. HQ_ERR
 * with the answer set. */
static int my_endpoints(api_req *rq, ep_table *tb, strmap **mine) {
    const char *t = api_tenant(rq);
    char err[HQ_ERRLEN];
    rconn *r;
    *mine = NULL;
    if (!t)
        return HQ_OK;
    if (!(r = api_redis(rq)))
        return HQ_ERR;
    if (ep_load_table(r, rq->ctx->prefix, tb, err, sizeof(err)) != HQ_OK)
        return api_redis_failed(rq, err), HQ_ERR;
    if (!(*mine = strmap_new()))
        return api_problem(rq, 500, "internal", NULL, "out of memory"), HQ_ERR;
    for (size_t i = 0; i < tb->n; i++)
        if (tb->eps[i]->tenant && strcmp(tb->eps[i]->tenant, t) == 0 &&
            strmap_put(*mine, tb->eps[i]->id, tb->eps[i]) != HQ_OK)
            return api_problem(rq, 500, "internal", NULL, "out of memory"), HQ_ERR;
    return HQ_OK;
}

/* Whether the caller sees the letter, and it passes the endpoint filter. Letters of
 * malformed entries have no endpoint: admins only. */
static int dead_selected(const strmap *mine, const char *only, const redisReply *en) {
    size_t len;
    const char *epid = eve_field(en, "endpoint", &len);
    if (only && (!epid || strlen(only) != len || memcmp(epid, only, len) != 0))
        return 0;
    if (!mine)
        return 1;
    return epid && strmap_getn(mine, epid, len) != NULL;
}

/* ---- GET /v1/dead ------------------------------------------------------------------------ */

static const char *const dead_text_fields[] = {"kind",         "event",  "event_id",  "type",
                                               "endpoint",     "error",  "failed_at", "order_key",
                                               "overtaken_by", "source", "reason",    NULL};
static const char *const dead_int_fields[] = {"attempt", "status", "waiting_behind", "fields",
                                              NULL};

static int in_list(const char *const *list, const char *name, size_t len) {
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
            return 1;
    return 0;
}

/* One letter as JSON: its stream id, when it was written, and every field docs/keys.md
 * lists ("Dead-letter stream entry"), numbers as numbers; a malformed entry's original
 * fields (f.<name>) as the object "original". Fields this version does not know are
 * left out, so the answer always fits the published schema. */
static json_t *dead_json(const redisReply *en) {
    const redisReply *f = en->element[1];
    char at[TS_ISO_LEN], name[160];
    json_t *o = json_object(), *orig = NULL;
    if (!o)
        return NULL;
    eve_sid_iso(eve_id(en), at, sizeof(at));
    json_object_set_new(o, "id", json_string(eve_id(en)));
    json_object_set_new(o, "at", json_string(at));
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        size_t kl = f->element[i]->len, vl = f->element[i + 1]->len;
        if (kl >= sizeof(name) || memchr(k, '\0', kl))
            continue;
        memcpy(name, k, kl);
        name[kl] = '\0';
        if (in_list(dead_text_fields, k, kl)) {
            json_object_set_new(o, name, eve_string(v, vl));
        } else if (in_list(dead_int_fields, k, kl)) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (vl && end == v + vl)
                json_object_set_new(o, name, json_integer(n));
        } else if (strcmp(name, "truncated") == 0) {
            json_object_set_new(o, name, json_boolean(vl == 1 && v[0] == '1'));
        } else if (kl > 2 && memcmp(k, "f.", 2) == 0) {
            if (!orig && !(orig = json_object()))
                break;
            json_object_set_new(orig, name + 2, eve_string(v, vl));
        }
    }
    if (orig)
        json_object_set_new(o, "original", orig);
    return o;
}

int api_dead_list(api_req *rq) {
    char dead[KEY_MAX], cursor[128], end[160], last_seen[128] = "", last_kept[128] = "";
    const char *only = api_query(rq, "endpoint");
    ep_table tb = {0};
    strmap *mine = NULL;
    json_t *data = NULL;
    size_t limit, n = 0, scanned = 0, chunk;
    int more = 0, ended = 0;
    char why[HQ_ERRLEN], cnt[24];

    if (api_limit(rq, &limit) != HQ_OK || api_cursor(rq, cursor, sizeof(cursor)) != HQ_OK)
        return API_DONE;
    if (cursor[0] && !evid_stream_id_ok(cursor))
        return api_problem(rq, 400, "invalid_cursor", "cursor",
                           "cursor is not one this API returned (pass next_cursor as it came)");
    if (only && id_valid(only, why, sizeof(why)) != HQ_OK)
        return api_problem(rq, 400, "invalid_parameter", "endpoint", "endpoint: %s", why);
    if (key_dead(rq->ctx->prefix, dead, sizeof(dead)) != HQ_OK)
        return api_problem(rq, 500, "internal", NULL, "key too long");
    if (my_endpoints(rq, &tb, &mine) != HQ_OK)
        goto cleanup;
    if (!(data = json_array()))
        goto oom;
    snprintf(end, sizeof(end), "%s%s", cursor[0] ? "(" : "", cursor[0] ? cursor : "+");
    /* Without a filter every entry is kept: limit + 1 tells whether there is more. */
    chunk = only || mine ? DEAD_CHUNK : limit + 1;
    snprintf(cnt, sizeof(cnt), "%zu", chunk);
    while (!more && !ended && scanned < DEAD_SCAN_MAX) {
        redisReply *rep =
            api_cmdv(rq, (const char *const[]){"XREVRANGE", dead, end, "-", "COUNT", cnt, NULL});
        size_t i;
        if (!rep)
            goto cleanup;
        if (rep->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            api_problem(rq, 500, "redis_error", NULL, "unexpected reply to XREVRANGE");
            goto cleanup;
        }
        ended = rep->elements < chunk;
        for (i = 0; i < rep->elements; i++) {
            const redisReply *en = rep->element[i];
            if (!eve_ok(en))
                continue;
            if (!dead_selected(mine, only, en)) {
                scanned++;
                snprintf(last_seen, sizeof(last_seen), "%s", eve_id(en));
                continue;
            }
            if (n == limit) {
                more = 1;
                break;
            }
            scanned++;
            snprintf(last_seen, sizeof(last_seen), "%s", eve_id(en));
            snprintf(last_kept, sizeof(last_kept), "%s", eve_id(en));
            if (json_array_append_new(data, dead_json(en)) != 0) {
                freeReplyObject(rep);
                goto oom;
            }
            n++;
        }
        freeReplyObject(rep);
        snprintf(end, sizeof(end), "(%s", last_seen);
    }
    /* A page cut by the scan bound may be short (even empty): its cursor goes on from
     * the last entry read, so filtered lists still reach the end. */
    api_json(rq, 200,
             api_page(data, more                       ? last_kept
                            : (!ended && last_seen[0]) ? last_seen
                                                       : NULL));
    data = NULL;
    goto cleanup;
oom:
    api_problem(rq, 500, "internal", NULL, "out of memory");
cleanup:
    json_decref(data);
    strmap_free(mine);
    ep_table_clear(&tb);
    return API_DONE;
}

/* ---- POST /v1/dead/replay -------------------------------------------------------------------- */

/* A letter chosen for replay (copied: the replies it came from are gone by then). */
typedef struct pick {
    char *id;
    char *event;    /* events stream id; NULL if not replayable */
    char *event_id; /* for messages; NULL if the entry has none */
    char *endpoint;
    char *why; /* why not replayable */
} pick;

typedef struct picks {
    pick *p;
    size_t n, cap;
} picks;

static void picks_clear(picks *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->p[i].id);
        free(ps->p[i].event);
        free(ps->p[i].event_id);
        free(ps->p[i].endpoint);
        free(ps->p[i].why);
    }
    free(ps->p);
    memset(ps, 0, sizeof(*ps));
}

static char *dupn(const char *s, size_t n) {
    char *d = s ? malloc(n + 1) : NULL;
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* As cli_dead.c's add_pick: only job letters carry what a job needs (the event's stream
 * id and an endpoint); a malformed event never became a job. HQ_ERR on OOM. */
static int add_pick(picks *ps, const redisReply *en) {
    size_t kl = 0, el = 0, pl = 0, il = 0;
    const char *kind = eve_field(en, "kind", &kl);
    const char *event = eve_field(en, "event", &el);
    const char *epid = eve_field(en, "endpoint", &pl);
    const char *event_id = eve_field(en, "event_id", &il);
    pick *p;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        pick *np = realloc(ps->p, cap * sizeof(*np));
        if (!np)
            return HQ_ERR;
        ps->p = np;
        ps->cap = cap;
    }
    p = &ps->p[ps->n++];
    memset(p, 0, sizeof(*p));
    if (!(p->id = strdup(eve_id(en))))
        return HQ_ERR;
    if (kind && kl == 5 && memcmp(kind, "event", 5) == 0) {
        size_t rl = 0;
        const char *reason = eve_field(en, "reason", &rl);
        size_t len = 64 + rl;
        if (!(p->why = malloc(len)))
            return HQ_ERR;
        snprintf(p->why, len, "a malformed event (%.*s) is not replayable", reason ? (int)rl : 18,
                 reason ? reason : "no reason recorded");
        return HQ_OK;
    }
    /* A NUL inside would cut the ids the script gets: not replayable either. */
    if (!event || !el || !epid || !pl || memchr(event, '\0', el) || memchr(epid, '\0', pl)) {
        p->why = strdup("the entry has no event/endpoint fields to replay");
        return p->why ? HQ_OK : HQ_ERR;
    }
    p->event = dupn(event, el);
    p->endpoint = dupn(epid, pl);
    p->event_id = event_id && !memchr(event_id, '\0', il) ? dupn(event_id, il) : NULL;
    return p->event && p->endpoint ? HQ_OK : HQ_ERR;
}

/* Selected by id: each must exist and be the caller's, or nothing is replayed (as the
 * CLI, which checks every id before it replays any). One pipeline of XRANGEs. */
static int pick_ids(api_req *rq, const char *dead, const json_t *ids, const strmap *mine,
                    picks *ps) {
    pipeline *p = pipeline_new();
    strmap *seen = strmap_new();
    size_t i;
    int rc = HQ_ERR;
    if (!p || !seen) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    for (i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (strmap_get(seen, id)) /* listed twice: once is what was meant */
            continue;
        if (strmap_put(seen, id, (void *)id) != HQ_OK) {
            api_problem(rq, 500, "internal", NULL, "out of memory");
            goto cleanup;
        }
        pipeline_begin(p, 0, (void *)id);
        pipeline_arg(p, "XRANGE");
        pipeline_arg(p, dead);
        pipeline_arg(p, id);
        pipeline_arg(p, id);
        pipeline_arg(p, "COUNT");
        pipeline_arg(p, "1");
        pipeline_end(p);
    }
    if (evapi_pipeline(rq, p, 1) != HQ_OK)
        goto cleanup;
    for (i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        const char *id = pipeline_ud(p, i);
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 || !eve_ok(rep->element[0]) ||
            !dead_selected(mine, NULL, rep->element[0])) {
            api_problem(rq, 404, "not_found", "ids",
                        "dead letter %s not found; nothing was replayed", id);
            goto cleanup;
        }
        if (add_pick(ps, rep->element[0]) != HQ_OK) {
            api_problem(rq, 500, "internal", NULL, "out of memory");
            goto cleanup;
        }
    }
    rc = HQ_OK;
cleanup:
    pipeline_free(p);
    strmap_free(seen);
    return rc;
}

/* Selected as every letter (of one endpoint): newest first, at most REPLAY_MAX; *more
 * when a further one was there. */
static int pick_all(api_req *rq, const char *dead, const char *only, const strmap *mine, picks *ps,
                    int *more) {
    char end[160] = "+", cnt[24];
    snprintf(cnt, sizeof(cnt), "%d", DEAD_CHUNK);
    *more = 0;
    for (;;) {
        redisReply *rep =
            api_cmdv(rq, (const char *const[]){"XREVRANGE", dead, end, "-", "COUNT", cnt, NULL});
        size_t i;
        int ended;
        if (!rep)
            return HQ_ERR;
        if (rep->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return api_problem(rq, 500, "redis_error", NULL, "unexpected reply to XREVRANGE"),
                   HQ_ERR;
        }
        ended = rep->elements < DEAD_CHUNK;
        for (i = 0; i < rep->elements; i++) {
            const redisReply *en = rep->element[i];
            if (!eve_ok(en))
                continue;
            snprintf(end, sizeof(end), "(%s", eve_id(en));
            if (!dead_selected(mine, only, en))
                continue;
            if (ps->n == REPLAY_MAX) {
                *more = 1;
                ended = 1;
                break;
            }
            if (add_pick(ps, en) != HQ_OK) {
                freeReplyObject(rep);
                return api_problem(rq, 500, "internal", NULL, "out of memory"), HQ_ERR;
            }
        }
        freeReplyObject(rep);
        if (ended)
            return HQ_OK;
    }
}

/* Why a letter was not replayed, as `hookq dead replay` says it. */
static json_t *skipped_json(const pick *p, int code) {
    char why[600];
    if (p->why)
        snprintf(why, sizeof(why), "%s", p->why);
    else if (code == 0)
        snprintf(why, sizeof(why),
                 "dead letter %s is no longer there (replayed or purged meanwhile)", p->id);
    else if (code == -2)
        snprintf(why, sizeof(why),
                 "dead letter %s: its event field '%.64s' is not a stream id; not replayed", p->id,
                 p->event);
    else
        snprintf(why, sizeof(why),
                 "dead letter %s: event %s%s%s%s is no longer in the events stream (past "
                 "events.retention); not replayed",
                 p->id, p->event_id ? p->event_id : p->event, p->event_id ? " (" : "",
                 p->event_id ? p->event : "", p->event_id ? ")" : "");
    return json_pack("{s:s,s:s}", "id", p->id, "reason", why);
}

/* Replay picks oldest first (replayed jobs keep their original order in the jobs
 * stream), REPLAY_BATCH per script call. */
static int replay(api_req *rq, const char *const keys[3], const picks *ps, json_t *done,
                  json_t *skipped) {
    const char **argv = malloc(sizeof(*argv) * (3 + 3 * REPLAY_BATCH));
    size_t *which = malloc(sizeof(*which) * REPLAY_BATCH);
    size_t i = ps->n;
    int rc = HQ_ERR;
    if (!argv || !which) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    argv[0] = keys[0];
    argv[1] = keys[1];
    argv[2] = keys[2];
    while (i > 0) {
        size_t nb = 0;
        int argc = 3;
        redisReply *rep;
        while (i > 0 && nb < REPLAY_BATCH) {
            const pick *p = &ps->p[--i];
            if (!p->event) {
                json_array_append_new(skipped, skipped_json(p, 0));
                continue;
            }
            argv[argc++] = p->id;
            argv[argc++] = p->event;
            argv[argc++] = p->endpoint;
            which[nb++] = (size_t)(p - ps->p);
        }
        if (nb == 0)
            continue;
        if (!(rep = api_eval(rq, &script_api_dead_replay, 3, argc, argv, NULL)))
            goto cleanup;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != nb) {
            freeReplyObject(rep);
            api_problem(rq, 500, "redis_error", NULL, "unexpected reply from api_dead_replay");
            goto cleanup;
        }
        for (size_t k = 0; k < nb; k++) {
            const pick *p = &ps->p[which[k]];
            long long code =
                rep->element[k]->type == REDIS_REPLY_INTEGER ? rep->element[k]->integer : -2;
            if (code == 1)
                json_array_append_new(done, json_string(p->id));
            else
                json_array_append_new(skipped, skipped_json(p, (int)code));
        }
        freeReplyObject(rep);
    }
    rc = HQ_OK;
cleanup:
    free(argv);
    free(which);
    return rc;
}

/* The body: {"ids": [...]} or {"all": true[, "endpoint": id]}. HQ_ERR answered. */
static int replay_body(api_req *rq, const json_t *body, const json_t **ids, int *all,
                       const char **only) {
    const json_t *a = json_object_get(body, "all"), *e = json_object_get(body, "endpoint");
    char why[HQ_ERRLEN];
    *ids = json_object_get(body, "ids");
    *all = 0;
    *only = NULL;
    if (a && !json_is_boolean(a))
        return api_problem(rq, 422, "invalid_field", "all", "all: must be true or false"), HQ_ERR;
    *all = json_is_true(a);
    if (*ids) {
        size_t i, n = json_is_array(*ids) ? json_array_size(*ids) : 0;
        if (n == 0 || n > REPLAY_MAX)
            return api_problem(rq, 422, "invalid_field", "ids",
                               "ids: must be an array of 1..%d dead letter ids", REPLAY_MAX),
                   HQ_ERR;
        for (i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(*ids, i));
            if (!s || !evid_stream_id_ok(s))
                return api_problem(rq, 422, "invalid_field", "ids",
                                   "ids[%zu]: not a dead letter id (a stream id like "
                                   "1700000000000-0)",
                                   i),
                       HQ_ERR;
        }
        if (*all)
            return api_problem(rq, 422, "invalid_field", "all",
                               "give either ids or all: true, not both"),
                   HQ_ERR;
        if (e)
            return api_problem(rq, 422, "invalid_field", "endpoint",
                               "endpoint selects among all: true; with ids it is not used"),
                   HQ_ERR;
        return HQ_OK;
    }
    if (!*all)
        return api_problem(rq, 422, "invalid_field", "ids",
                           "give ids (dead letter ids) or all: true"),
               HQ_ERR;
    if (e && !json_is_null(e)) {
        if (!json_is_string(e) || id_valid(json_string_value(e), why, sizeof(why)) != HQ_OK)
            return api_problem(rq, 422, "invalid_field", "endpoint", "endpoint: %s",
                               json_is_string(e) ? why : "must be an endpoint id"),
                   HQ_ERR;
        *only = json_string_value(e);
    }
    return HQ_OK;
}

int api_dead_replay(api_req *rq) {
    static const char *const allowed[] = {"ids", "all", "endpoint", NULL};
    char dead[KEY_MAX], jobs[KEY_MAX], events[KEY_MAX];
    const char *const keys[3] = {dead, jobs, events};
    json_t *body, *done = NULL, *skipped = NULL;
    const json_t *ids;
    const char *only;
    ep_table tb = {0};
    strmap *mine = NULL;
    picks ps = {0};
    int all, more = 0;

    if (!(body = api_body_object(rq, 0)))
        return API_DONE;
    if (api_fields_known(rq, body, allowed) != HQ_OK ||
        replay_body(rq, body, &ids, &all, &only) != HQ_OK)
        goto cleanup;
    if (key_dead(rq->ctx->prefix, dead, sizeof(dead)) != HQ_OK ||
        key_jobs(rq->ctx->prefix, jobs, sizeof(jobs)) != HQ_OK ||
        key_events(rq->ctx->prefix, events, sizeof(events)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "key too long");
        goto cleanup;
    }
    if (my_endpoints(rq, &tb, &mine) != HQ_OK)
        goto cleanup;
    if (ids ? pick_ids(rq, dead, ids, mine, &ps) != HQ_OK
            : pick_all(rq, dead, only, mine, &ps, &more) != HQ_OK)
        goto cleanup;
    if (!(done = json_array()) || !(skipped = json_array())) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    if (replay(rq, keys, &ps, done, skipped) != HQ_OK)
        goto cleanup;
    api_json(rq, 202,
             json_pack("{s:I,s:O,s:O,s:b}", "replayed", (json_int_t)json_array_size(done),
                       "replayed_ids", done, "skipped", skipped, "truncated", more));
cleanup:
    json_decref(body);
    json_decref(done);
    json_decref(skipped);
    picks_clear(&ps);
    strmap_free(mine);
    ep_table_clear(&tb);
    return API_DONE;
}
