/* api_events.c -- GET /v1/events/{id} (an event and what happened to it at each
 * endpoint) and POST /v1/events/{id}/retry (docs/api.md "Events"). Publishing is
 * api_publish.c. Finding an event by id and reading the delivery logs for it are Lua
 * scripts with bounded work (api_find_event.lua, api_event_log.lua), so entries that
 * are not the event never cross the wire. */
#include "api_evkit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "envelope.h"
#include "hq.h"
#include "ids.h"
#include "json_scan.h"
#include "pipeline.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "timestamp.h"

/* Finding an event by id (api_find_event.lua): how many entries each way from the time
 * a generated id carries, how many of the newest otherwise, and how far before that time
 * the forward walk starts (clock skew between the id's maker and Redis). */
#define FIND_PER_DIRECTION "2000"
#define FIND_NEWEST        "5000"
#define FIND_SKEW_MS       10

/* Per endpoint, how many delivery log entries GET /v1/events/{id} reads from the event
 * on, and how many of its attempts it returns. */
#define LOG_SCAN_MAX "5000"
#define LOG_KEEP_MAX "1000"

/* ---- finding an event ------------------------------------------------------------------ */

/* The event's entry: HQ_OK with *rep (the caller frees it) and *en (its entry, inside
 * *rep); else HQ_ERR with the answer set (404, 503 ...). */
static int find_event(api_req *rq, const char *id, redisReply **rep, const redisReply **en) {
    char events[KEY_MAX], idem[KEY_MAX], from[32] = "";
    int64_t ms;
    redisReply *x;
    if (key_events(rq->ctx->prefix, events, sizeof(events)) != HQ_OK ||
        key_idem(rq->ctx->prefix, id, idem, sizeof(idem)) != HQ_OK)
        return api_problem(rq, 500, "internal", NULL, "key too long"), HQ_ERR;
    if (evid_ulid_ms(id, &ms) == HQ_OK)
        snprintf(from, sizeof(from), "%" PRId64 "-0", ms > FIND_SKEW_MS ? ms - FIND_SKEW_MS : 0);
    x = api_eval(rq, &script_api_find_event, 2, 7,
                 (const char *[]){events, idem, id, from, from, FIND_PER_DIRECTION, FIND_NEWEST},
                 NULL);
    if (!x)
        return HQ_ERR;
    if (x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
        x->element[0]->type == REDIS_REPLY_INTEGER && x->element[0]->integer == 1 &&
        eve_ok(x->element[1])) {
        *rep = x;
        *en = x->element[1];
        return HQ_OK;
    }
    if (x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
        x->element[1]->type == REDIS_REPLY_STRING && x->element[1]->len > 0)
        api_problem(rq, 404, "not_found", NULL,
                    "event %s (%s) is no longer in the events stream (past events.retention)", id,
                    x->element[1]->str);
    else
        api_problem(rq, 404, "not_found", NULL,
                    "event %s not found (never published, past events.retention, or older than "
                    "what a lookup searches: docs/api.md, Events)",
                    id);
    freeReplyObject(x);
    return HQ_ERR;
}

/* The entry's field as a C string (NULL if absent or holding a NUL). */
static const char *entry_text(const redisReply *en, const char *name) {
    size_t len;
    const char *v = eve_field(en, name, &len);
    return v && strlen(v) == len ? v : NULL;
}

/* Whether a tenant key may see an event (admins see all). */
static int event_visible(api_req *rq, const redisReply *en) {
    return api_tenant_allowed(rq, entry_text(en, "tenant"));
}

/* Whether ep belongs to the caller: tenant keys act on their tenant's endpoints only
 * (an endpoint without a tenant is the operator's). */
static int ep_mine(api_req *rq, const ep *e) {
    const char *mine = api_tenant(rq);
    return !mine || (e->tenant && strcmp(e->tenant, mine) == 0);
}

/* ---- GET /v1/events/{id} ------------------------------------------------------------------ */

static json_t *int_or_null(const redisReply *en, const char *name) {
    const char *v = entry_text(en, name);
    char *end;
    long long n;
    if (!v || !*v)
        return json_null();
    n = strtoll(v, &end, 10);
    return *end ? json_null() : json_integer(n);
}

static json_t *text_or_null(const redisReply *en, const char *name) {
    size_t len;
    const char *v = eve_field(en, name, &len);
    return v && len ? eve_string(v, len) : json_null();
}

static json_t *attempt_json(const redisReply *en) {
    char at[TS_ISO_LEN];
    json_t *o;
    eve_sid_iso(eve_id(en), at, sizeof(at));
    o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "attempt", int_or_null(en, "attempt"));
    json_object_set_new(o, "outcome", text_or_null(en, "outcome"));
    json_object_set_new(o, "status", int_or_null(en, "status"));
    json_object_set_new(o, "latency_ms", int_or_null(en, "latency_ms"));
    json_object_set_new(o, "error", text_or_null(en, "error"));
    json_object_set_new(o, "at", json_string(at));
    json_object_set_new(o, "delivery", text_or_null(en, "delivery"));
    json_object_set_new(o, "next_try", text_or_null(en, "next_try"));
    return o;
}

/* An endpoint's state for the event, from its last attempt. */
static const char *state_of(const char *outcome) {
    if (!outcome)
        return "pending";
    if (strcmp(outcome, "delivered") == 0)
        return "delivered";
    if (strcmp(outcome, "retry") == 0)
        return "retrying";
    if (strcmp(outcome, "dead") == 0)
        return "dead";
    if (strcmp(outcome, "disabled") == 0)
        return "disabled";
    return "pending";
}

/* The "deliveries" array: one api_event_log.lua call per endpoint the caller may see,
 * all in one pipeline. NULL with the answer set on failure. */
static json_t *deliveries_json(api_req *rq, const char *sid, const envelope *e) {
    char err[HQ_ERRLEN];
    ep_table tb = {0};
    pipeline *p = NULL;
    json_t *arr = NULL, *out = NULL;
    rconn *r = api_redis(rq);
    size_t i, k = 0;

    if (!r)
        return NULL;
    if (ep_load_table(r, rq->ctx->prefix, &tb, err, sizeof(err)) != HQ_OK) {
        api_redis_failed(rq, err);
        goto cleanup;
    }
    if (!(p = pipeline_new()) || !(arr = json_array())) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    for (i = 0; i < tb.n; i++) {
        char key[KEY_MAX];
        if (!ep_mine(rq, tb.eps[i]) ||
            key_log(rq->ctx->prefix, tb.eps[i]->id, key, sizeof(key)) != HQ_OK)
            continue;
        pipeline_eval(p, 0, tb.eps[i], &script_api_event_log, 1);
        pipeline_arg(p, key);
        pipeline_arg(p, sid);
        pipeline_arg(p, LOG_SCAN_MAX);
        pipeline_arg(p, LOG_KEEP_MAX);
        pipeline_end(p);
    }
    if (pipeline_len(p) && evapi_pipeline(rq, p, 0) != HQ_OK)
        goto cleanup;
    for (k = 0; k < pipeline_len(p); k++) {
        ep *x = pipeline_ud(p, k);
        const redisReply *rep = pipeline_reply(p, k);
        json_t *item, *atts;
        const char *last = NULL;
        int truncated = 0;
        size_t j, n = 0;
        /* A log that cannot be read (not a stream) leaves that endpoint out. */
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
            rep->element[0]->type != REDIS_REPLY_INTEGER)
            continue;
        truncated = rep->element[0]->integer == 1;
        if (!(atts = json_array()))
            goto oom;
        for (j = 1; j < rep->elements; j++) {
            const redisReply *en = rep->element[j];
            if (!eve_ok(en))
                continue;
            if (json_array_append_new(atts, attempt_json(en)) != 0) {
                json_decref(atts);
                goto oom;
            }
            last = entry_text(en, "outcome");
            n++;
        }
        if (n == 0) {
            /* No attempt yet: listed when it should receive the event (fan-out or the
             * worker has not got to it), or would but is disabled. An endpoint made
             * after the event was published never had it. */
            int would;
            if (x->created_at && x->created_at > e->ts) {
                json_decref(atts);
                continue;
            }
            would = ep_matches(x, e->type, e->tenant, e->endpoint);
            if (!would && !x->enabled) {
                /* Would it, if enabled? ep_matches is the one rule (fan-out's); asking
                 * it about an enabled copy keeps it that way. The table is ours. */
                x->enabled = 1;
                would = ep_matches(x, e->type, e->tenant, e->endpoint);
                x->enabled = 0;
                last = would ? "disabled" : NULL;
            }
            if (!would) {
                json_decref(atts);
                continue;
            }
        }
        item = json_pack("{s:s,s:s,s:b,s:o}", "endpoint_id", x->id, "status", state_of(last),
                         "truncated", truncated, "attempts", atts);
        if (!item || json_array_append_new(arr, item) != 0)
            goto oom;
    }
    out = arr;
    arr = NULL;
    goto cleanup;
oom:
    api_problem(rq, 500, "internal", NULL, "out of memory");
cleanup:
    json_decref(arr);
    pipeline_free(p);
    ep_table_clear(&tb);
    return out;
}

/* Append src to the buffer *b (length *n, capacity *cap). */
static int buf_add(char **b, size_t *n, size_t *cap, const char *src, size_t len) {
    if (*n + len + 1 > *cap) {
        size_t nc = (*n + len + 1) * 2;
        char *x = realloc(*b, nc);
        if (!x)
            return HQ_ERR;
        *b = x;
        *cap = nc;
    }
    memcpy(*b + *n, src, len);
    *n += len;
    (*b)[*n] = '\0';
    return HQ_OK;
}

/* The answer: head (an object of everything before `data`), then `data` as the exact
 * bytes stored, then tail (an object of what follows): jansson would re-format numbers
 * and refuse some valid ones, and the bytes are the point of this route. */
static int event_answer(api_req *rq, json_t *head, const char *data, size_t datalen, json_t *tail) {
    char *h = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *t = json_dumps(tail, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *b = NULL;
    size_t n = 0, cap = 0;
    int rc;
    if (!h || !t || strlen(h) < 2 || strlen(t) < 2 ||
        buf_add(&b, &n, &cap, h, strlen(h) - 1) != HQ_OK ||
        buf_add(&b, &n, &cap, ",\"data\":", 8) != HQ_OK ||
        buf_add(&b, &n, &cap, data, datalen) != HQ_OK ||
        buf_add(&b, &n, &cap, strlen(t) > 2 ? "," : "", strlen(t) > 2 ? 1 : 0) != HQ_OK ||
        buf_add(&b, &n, &cap, t + 1, strlen(t) - 1) != HQ_OK) {
        free(b);
        b = NULL;
    }
    rc = evapi_answer_text(rq, 200, b, n);
    free(h);
    free(t);
    return rc;
}

int api_event_get(api_req *rq) {
    const char *id = api_param(rq, 0);
    const cfg *c = rq->ctx->c;
    envelope_limits lim = {.max_payload = (size_t)c->events_max_payload,
                           .max_depth = c->events_max_depth};
    envelope e = {0};
    redisReply *rep = NULL;
    const redisReply *en, *f;
    json_t *head = NULL, *tail = NULL, *dl;
    char why[HQ_ERRLEN], when[TS_ISO_LEN];
    const char *names[64], *vals[64], *data = "null";
    size_t nlens[64], vlens[64], n = 0, datalen = 4;
    int malformed;

    if (id_valid(id, why, sizeof(why)) != HQ_OK)
        return api_problem(rq, 404, "not_found", NULL, "event %.130s not found", id);
    if (find_event(rq, id, &rep, &en) != HQ_OK)
        return API_DONE;
    if (!event_visible(rq, en)) {
        freeReplyObject(rep);
        return api_problem(rq, 404, "not_found", NULL, "event %s not found", id);
    }
    f = en->element[1];
    for (size_t i = 0; i + 1 < f->elements && n < 64; i += 2, n++) {
        names[n] = f->element[i]->str;
        nlens[n] = f->element[i]->len;
        vals[n] = f->element[i + 1]->str;
        vlens[n] = f->element[i + 1]->len;
    }
    /* Read as the worker reads it: an entry it would refuse is shown with why. */
    malformed = envelope_from_fields(&e, eve_id(en), n, names, nlens, vals, vlens, &lim, why,
                                     sizeof(why)) != HQ_OK;
    if (malformed) {
        const char *d = eve_field(en, "data", &datalen);
        envelope_clear(&e);
        if (d && json_scan_check(d, datalen, JSON_SCAN_DEPTH_MAX, NULL, NULL, 0) == HQ_OK)
            data = d;
        else
            datalen = 4;
        e.ts = strtoll(eve_id(en), NULL, 10);
    } else {
        data = e.data;
        datalen = e.datalen;
    }
    ts_iso(e.ts, when, sizeof(when));
    head = json_object();
    if (!head)
        goto oom;
    json_object_set_new(head, "id", json_string(id));
    json_object_set_new(head, "stream_id", json_string(eve_id(en)));
    json_object_set_new(head, "type", malformed ? text_or_null(en, "type") : json_string(e.type));
    json_object_set_new(head, "timestamp", json_string(when));
    json_object_set_new(head, "tenant",
                        malformed  ? text_or_null(en, "tenant")
                        : e.tenant ? json_string(e.tenant)
                                   : json_null());
    json_object_set_new(head, "endpoint",
                        malformed    ? text_or_null(en, "endpoint")
                        : e.endpoint ? json_string(e.endpoint)
                                     : json_null());
    if (malformed) {
        /* Never fanned out: the worker dead-lettered it (kind event). */
        tail = json_pack("{s:s,s:[]}", "malformed", why, "deliveries");
    } else {
        if (!(dl = deliveries_json(rq, eve_id(en), &e)))
            goto cleanup;
        tail = json_pack("{s:o}", "deliveries", dl);
    }
    if (!tail)
        goto oom;
    event_answer(rq, head, data, datalen, tail);
    goto cleanup;
oom:
    api_problem(rq, 500, "internal", NULL, "out of memory");
cleanup:
    json_decref(head);
    json_decref(tail);
    envelope_clear(&e);
    freeReplyObject(rep);
    return API_DONE;
}

/* ---- POST /v1/events/{id}/retry ------------------------------------------------------------ */

/* One endpoint by id, as the caller may see it: HQ_OK with *out, or HQ_ERR answered
 * (404 when missing or another tenant's). */
static int load_endpoint(api_req *rq, const char *id, ep **out) {
    char key[KEY_MAX], err[HQ_ERRLEN];
    redisReply *rep;
    ep *e;
    *out = NULL;
    if (key_endpoint(rq->ctx->prefix, id, key, sizeof(key)) != HQ_OK)
        return api_problem(rq, 404, "not_found", "endpoint", "endpoint %.130s not found", id),
               HQ_ERR;
    if (!(rep = api_cmdv(rq, (const char *const[]){"HGETALL", key, NULL})))
        return HQ_ERR;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        freeReplyObject(rep);
        return api_problem(rq, 404, "not_found", "endpoint", "endpoint %s not found", id), HQ_ERR;
    }
    if (!(e = ep_new())) {
        freeReplyObject(rep);
        return api_problem(rq, 500, "internal", NULL, "out of memory"), HQ_ERR;
    }
    if (ep_from_hash(e, id, rep, err, sizeof(err)) != HQ_OK) {
        freeReplyObject(rep);
        ep_free(e);
        return api_problem(rq, 500, "internal", NULL, "%s", err), HQ_ERR;
    }
    freeReplyObject(rep);
    if (!ep_mine(rq, e)) {
        ep_free(e);
        return api_problem(rq, 404, "not_found", "endpoint", "endpoint %s not found", id), HQ_ERR;
    }
    *out = e;
    return HQ_OK;
}

int api_event_retry(api_req *rq) {
    static const char *const allowed[] = {"endpoint", NULL};
    const char *id = api_param(rq, 0), *only = NULL;
    char why[HQ_ERRLEN], jobs[KEY_MAX], err[HQ_ERRLEN];
    json_t *body = NULL, *queued = NULL, *v;
    redisReply *rep = NULL;
    const redisReply *en;
    ep_table tb = {0};
    ep *one = NULL;
    pipeline *p = NULL;
    rconn *r;

    if (!(body = api_body_object(rq, 1)))
        return API_DONE;
    if (api_fields_known(rq, body, allowed) != HQ_OK)
        goto cleanup;
    v = json_object_get(body, "endpoint");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || id_valid(json_string_value(v), why, sizeof(why)) != HQ_OK) {
            api_problem(rq, 422, "invalid_field", "endpoint", "endpoint: %s",
                        json_is_string(v) ? why : "must be an endpoint id");
            goto cleanup;
        }
        only = json_string_value(v);
    }
    if (id_valid(id, why, sizeof(why)) != HQ_OK) {
        api_problem(rq, 404, "not_found", NULL, "event %.130s not found", id);
        goto cleanup;
    }
    if (find_event(rq, id, &rep, &en) != HQ_OK)
        goto cleanup;
    if (!event_visible(rq, en)) {
        api_problem(rq, 404, "not_found", NULL, "event %s not found", id);
        goto cleanup;
    }
    key_jobs(rq->ctx->prefix, jobs, sizeof(jobs));
    if (!(p = pipeline_new()) || !(queued = json_array()))
        goto oom;
    if (only) {
        /* A named endpoint is a manual resend (as `hookq retry --endpoint`): its
         * subscriptions do not matter, but the worker drops jobs of disabled endpoints,
         * so those are refused here. */
        if (load_endpoint(rq, only, &one) != HQ_OK)
            goto cleanup;
        if (!one->enabled) {
            api_problem(rq, 409, "conflict", "endpoint",
                        "endpoint %s is disabled (enable it first: POST "
                        "/v1/endpoints/%s/enable)",
                        only, only);
            goto cleanup;
        }
        json_array_append_new(queued, json_string(one->id));
    } else {
        if (!(r = api_redis(rq)))
            goto cleanup;
        if (ep_load_table(r, rq->ctx->prefix, &tb, err, sizeof(err)) != HQ_OK) {
            api_redis_failed(rq, err);
            goto cleanup;
        }
        for (size_t i = 0; i < tb.n; i++)
            if (ep_mine(rq, tb.eps[i]) &&
                ep_matches(tb.eps[i], entry_text(en, "type"), entry_text(en, "tenant"),
                           entry_text(en, "endpoint")))
                json_array_append_new(queued, json_string(tb.eps[i]->id));
        if (json_array_size(queued) == 0) {
            api_problem(rq, 422, "no_matching_endpoint", NULL,
                        "no enabled endpoint receives event %s (type %.130s)", id,
                        entry_text(en, "type") ? entry_text(en, "type") : "(none)");
            goto cleanup;
        }
    }
    for (size_t i = 0; i < json_array_size(queued); i++) {
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "XADD");
        pipeline_arg(p, jobs);
        pipeline_arg(p, "*");
        pipeline_arg(p, "event");
        pipeline_arg(p, eve_id(en));
        pipeline_arg(p, "endpoint");
        pipeline_arg(p, json_string_value(json_array_get(queued, i)));
        pipeline_arg(p, "attempt");
        pipeline_arg(p, "1");
        pipeline_end(p);
    }
    if (evapi_pipeline(rq, p, 1) != HQ_OK)
        goto cleanup;
    api_json(
        rq, 202,
        json_pack("{s:s,s:s,s:O}", "event_id", id, "stream_id", eve_id(en), "endpoints", queued));
    goto cleanup;
oom:
    api_problem(rq, 500, "internal", NULL, "out of memory");
cleanup:
    json_decref(body);
    json_decref(queued);
    freeReplyObject(rep);
    ep_table_clear(&tb);
    ep_free(one);
    pipeline_free(p);
    return API_DONE;
}
