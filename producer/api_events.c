/* api_events.c -- POST /v1/events (publish), GET /v1/events/{id} (an event and what
 * happened to it at each endpoint), POST /v1/events/{id}/retry (docs/api/events.md).
 *
 * Publishing is the API's hot path: the body is scanned once for its top-level members
 * (no tree), `data` is forwarded as the exact bytes the producer sent, the library's own
 * validation decides what is refused (hookq__validate), and the request costs one Redis
 * round trip: hookq__publish's XADD (or its publish.lua with a producer id), or one
 * api_publish.lua call with an Idempotency-Key. */
#include "api_evkit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "endpoint.h"
#include "envelope.h"
#include "hookq_int.h"
#include "hq.h"
#include "ids.h"
#include "json_scan.h"
#include "pipeline.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "timestamp.h"

/* Decoded string members: the validators allow 128 characters, so anything this long
 * is refused by them whole or cut (the cut text is still too long). */
#define PUB_STR_MAX 512

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

/* ---- POST /v1/events ---------------------------------------------------------------- */

enum { PF_TYPE, PF_DATA, PF_ID, PF_TENANT, PF_ENDPOINT, PF_COUNT };
static const char *const pub_fields[PF_COUNT] = {"type", "data", "id", "tenant", "endpoint"};

typedef struct pub_body {
    char str[PF_COUNT][PUB_STR_MAX]; /* decoded strings (PF_DATA unused) */
    int has[PF_COUNT];               /* present and not null */
    const char *data;                /* the raw bytes of `data`, into the request body */
    size_t datalen;
} pub_body;

/* A string member (or null, for the optional ones) into b->str[f]. */
static int pub_string(api_req *rq, pub_body *b, int f, const evj_member *m) {
    int cut;
    if (f != PF_TYPE && m->vallen == 4 && memcmp(m->val, "null", 4) == 0)
        return HQ_OK; /* null is "not given" */
    if (m->vallen < 2 || m->val[0] != '"') {
        api_problem(rq, 422, "invalid_field", pub_fields[f], "%s: must be a string", pub_fields[f]);
        return HQ_ERR;
    }
    if (evj_unescape(m->val + 1, m->vallen - 2, b->str[f], PUB_STR_MAX, &cut) != HQ_OK) {
        api_problem(rq, 422, "invalid_field", pub_fields[f],
                    "%s: not a usable string (a \\u0000 or a lone surrogate)", pub_fields[f]);
        return HQ_ERR;
    }
    b->has[f] = 1;
    return HQ_OK;
}

/* Read the body's members into b. HQ_OK, or HQ_ERR with the answer set. The body is
 * not parsed into a tree: jansson would refuse numbers it cannot hold (integers past
 * 64 bits, 1e400) that are valid JSON the library publishes as they are.
 *
 * The whole body is checked first (json_scan). A problem inside one member's value is
 * that member's: inside `data` it is left for hookq__validate, so the answer is the
 * library's own (422, field data); elsewhere 422 with the member named. Anywhere else
 * (the object's own syntax, a member name) the body is not JSON: 400. Too deep is never
 * the body's fault alone: depth counts inside a member. */
static int pub_parse(api_req *rq, pub_body *b) {
    const char *ct = api_header(rq, "Content-Type");
    json_scan_result res;
    char err[HQ_ERRLEN];
    evj_iter it;
    evj_member m;
    const char *what = NULL, *bad = NULL;
    int r, bad_field = -1;

    memset(b->has, 0, sizeof(b->has));
    b->data = NULL;
    b->datalen = 0;
    if (!rq->body || rq->body_len == 0)
        return api_problem(rq, 400, "invalid_json", NULL, "a JSON object body is required"), HQ_ERR;
    /* As api_body_object: JSON, +json, or no Content-Type at all. */
    if (ct && strncasecmp(ct, "application/json", 16) != 0 && !strstr(ct, "+json"))
        return api_problem(rq, 415, "unsupported_media_type", NULL,
                           "Content-Type must be application/json (got '%.100s')", ct),
               HQ_ERR;
    if (json_scan_check(rq->body, rq->body_len, JSON_SCAN_DEPTH_MAX, &res, err, sizeof(err)) !=
            HQ_OK &&
        res.kind != JSON_SCAN_DEPTH)
        bad = rq->body + res.at;
    if (evj_begin(&it, rq->body, rq->body_len) != HQ_OK)
        goto not_json;
    while ((r = evj_next(&it, &m, &what)) == 1) {
        char key[64];
        int cut, f;
        if (bad && bad < m.val)
            goto not_json; /* in a name, or between members */
        if (evj_unescape(m.key, m.keylen, key, sizeof(key), &cut) != HQ_OK)
            snprintf(key, sizeof(key), "%s", "(unprintable)");
        for (f = 0; f < PF_COUNT; f++)
            if (!cut && strcmp(key, pub_fields[f]) == 0)
                break;
        if (f == PF_COUNT)
            return api_problem(rq, 422, "unknown_field", key, "unknown field '%.60s'", key), HQ_ERR;
        /* Two values for one member: which one was meant is a guess (jansson's
         * JSON_REJECT_DUPLICATES, as every other body). */
        if (b->has[f] || (f == PF_DATA && b->data))
            return api_problem(rq, 400, "invalid_json", NULL, "body has '%s' twice", key), HQ_ERR;
        if (bad && bad <= m.val + m.vallen) {
            bad_field = f;
            if (f != PF_DATA)
                return api_problem(rq, 422, "invalid_field", pub_fields[f], "%s: %s", pub_fields[f],
                                   err),
                       HQ_ERR;
        }
        if (f == PF_DATA) {
            b->data = m.val;
            b->datalen = m.vallen;
        } else if (pub_string(rq, b, f, &m) != HQ_OK) {
            return HQ_ERR;
        }
        if (bad_field >= 0)
            break; /* the text after it may be anything: data's problem is the answer */
    }
    if (bad_field < 0 && (r < 0 || bad))
        goto not_json;
    /* The problem was just past data's end (the body stops there): not data's. */
    if (bad_field == PF_DATA &&
        json_scan_check(b->data, b->datalen, JSON_SCAN_DEPTH_MAX, NULL, NULL, 0) == HQ_OK)
        goto not_json;
    return HQ_OK;
not_json:
    return api_problem(rq, 400, "invalid_json", NULL, "body is not a JSON object: %s",
                       bad    ? err
                       : what ? what
                              : "expected '{'"),
           HQ_ERR;
}

/* hookq__validate's message starts with the field it is about ("data: ..."). */
static void err_field(const char *err, char *field, size_t len) {
    size_t n = strcspn(err, ":");
    snprintf(field, len, "%.*s", (int)(err[n] ? n : 0), err);
}

/* The publish answer, as text: every value in it is an id, a type or a tenant, whose
 * characters need no JSON escaping (id_valid, pat_type_valid, envelope_tenant_valid). */
static int pub_answer(api_req *rq, int status, const char *id, const char *sid, const hookq__pub *p,
                      int duplicate) {
    const hookq_publish_opts *o = p->opts;
    size_t cap = 200 + strlen(id) + strlen(sid) + strlen(p->type) +
                 (o->tenant ? strlen(o->tenant) : 0) + (o->endpoint ? strlen(o->endpoint) : 0);
    char *t = malloc(cap);
    int n;
    if (!t)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    n = snprintf(t, cap,
                 "{\"id\":\"%s\",\"stream_id\":\"%s\",\"type\":\"%s\",\"tenant\":%s%s%s,"
                 "\"endpoint\":%s%s%s,\"duplicate\":%s}",
                 id, sid, p->type, o->tenant ? "\"" : "", o->tenant ? o->tenant : "null",
                 o->tenant ? "\"" : "", o->endpoint ? "\"" : "", o->endpoint ? o->endpoint : "null",
                 o->endpoint ? "\"" : "", duplicate ? "true" : "false");
    if (n < 0 || (size_t)n >= cap) {
        free(t);
        return api_problem(rq, 500, "internal", NULL, "answer too long");
    }
    return evapi_answer_text(rq, status, t, (size_t)n);
}

static int pub_failed(api_req *rq, hookq_err rc, const char *err) {
    char field[16];
    switch (rc) {
    case HOOKQ_EINVAL:
        err_field(err, field, sizeof(field));
        return api_problem(rq, 422, "invalid_field", field[0] ? field : NULL, "%s", err);
    case HOOKQ_ETOOBIG:
        return api_problem(rq, 413, "payload_too_large", "data", "%s", err);
    case HOOKQ_EFULL:
        api_header_add(rq, "Retry-After", "5");
        return api_problem(rq, 507, "redis_full", NULL,
                           "Redis is out of memory (maxmemory); the event was not published");
    case HOOKQ_EIO:
    case HOOKQ_ECONNECT:
        return api_redis_failed(rq, err);
    default:
        return api_problem(rq, 500, "redis_error", NULL, "%s", err);
    }
}

/* The Idempotency-Key's mark: per caller (a tenant's keys never see another's answers),
 * the key hashed so any printable text fits a key name. Built here rather than in
 * redis_keys.c because only the API has callers to scope by. */
static int idem_mark_key(api_req *rq, const char *key, char *out, size_t len) {
    unsigned char md[32];
    char hex[65];
    const char *t = api_tenant(rq);
    int n;
    if (EVP_Digest(key, strlen(key), md, NULL, EVP_sha256(), NULL) != 1)
        return HQ_ERR;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    n = snprintf(out, len, "%s:{q}:apiidem:%s%s:%s", rq->ctx->prefix, t ? "t:" : "admin",
                 t ? t : "", hex);
    return n > 0 && (size_t)n < len ? HQ_OK : HQ_ERR;
}

/* Publish with an Idempotency-Key: one api_publish.lua call (see there). */
static int pub_idempotent(api_req *rq, const char *key, const hookq__pub *p) {
    const cfg *c = rq->ctx->c;
    const hookq_publish_opts *o = p->opts;
    char events[KEY_MAX], mark[KEY_MAX], idem[KEY_MAX], fp[65], ttl[24], ts[24];
    char id[HOOKQ_ID_MAX];
    unsigned char md[32];
    const char *argv[24];
    size_t argvlen[24];
    int argc = 0, nkeys = 2, rc;
    redisReply *rep;

    if (key_events(rq->ctx->prefix, events, sizeof(events)) != HQ_OK ||
        idem_mark_key(rq, key, mark, sizeof(mark)) != HQ_OK ||
        (o->id && key_idem(rq->ctx->prefix, o->id, idem, sizeof(idem)) != HQ_OK))
        return api_problem(rq, 500, "internal", NULL, "key too long");
    /* The fingerprint is of the body as sent: the same key with other bytes is another
     * request, even when it would publish the same event. */
    if (EVP_Digest(rq->body, rq->body_len, md, NULL, EVP_sha256(), NULL) != 1)
        return api_problem(rq, 500, "internal", NULL, "SHA-256 failed");
    for (int i = 0; i < 32; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    if (o->id)
        snprintf(id, sizeof(id), "%s", o->id);
    else if (id_new(ID_PREFIX_EVENT, id, sizeof(id)) != HQ_OK)
        return api_problem(rq, 500, "internal", NULL, "cannot generate an event id");
    snprintf(ttl, sizeof(ttl), "%" PRId64, c->events_idempotency_ttl_ms);
    snprintf(ts, sizeof(ts), "%" PRId64, ts_now_ms());

#define ARG(s, n)                                                                                  \
    do {                                                                                           \
        argv[argc] = (s);                                                                          \
        argvlen[argc] = (n);                                                                       \
        argc++;                                                                                    \
    } while (0)
#define ARGS(s) ARG((s), strlen(s))
    ARGS(events);
    ARGS(mark);
    if (o->id) {
        ARGS(idem);
        nkeys = 3;
    }
    ARGS(fp);
    ARGS(ttl);
    ARGS(id);
    ARGS("202");
    /* The same fields, in the same order, as hookq__publish writes. */
    ARGS("id");
    ARGS(id);
    ARGS("type");
    ARGS(p->type);
    ARGS("ts");
    ARGS(ts);
    ARGS("data");
    ARG(p->data, p->datalen);
    if (o->tenant) {
        ARGS("tenant");
        ARGS(o->tenant);
    }
    if (o->endpoint) {
        ARGS("endpoint");
        ARGS(o->endpoint);
    }
#undef ARG
#undef ARGS

    if (!(rep = api_eval(rq, &script_api_publish, nkeys, argc, argv, argvlen)))
        return API_DONE;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == 2) {
        freeReplyObject(rep);
        return api_problem(rq, 422, "idempotency_key_reused", NULL,
                           "this Idempotency-Key was used with a different request body");
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[2]->type != REDIS_REPLY_INTEGER ||
        rep->element[3]->type != REDIS_REPLY_STRING ||
        rep->element[4]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(rep);
        return api_problem(rq, 500, "redis_error", NULL, "unexpected reply from api_publish");
    }
    if (rep->element[0]->integer == 1)
        api_header_add(rq, "Idempotent-Replayed", "true");
    rc = pub_answer(rq, (int)rep->element[4]->integer, rep->element[3]->str, rep->element[1]->str,
                    p, rep->element[2]->integer == 1);
    freeReplyObject(rep);
    return rc;
}

int api_event_publish(api_req *rq) {
    const cfg *c = rq->ctx->c;
    envelope_limits lim = {.max_payload = (size_t)c->events_max_payload,
                           .max_depth = c->events_max_depth};
    pub_body b;
    hookq_publish_opts o = {0};
    hookq__pub p = {0};
    hookq__pubres res;
    char err[HQ_ERRLEN];
    const char *mine = api_tenant(rq);
    const char *key = api_header(rq, "Idempotency-Key");
    hookq_err rc;
    rconn *r;

    if (key && !evid_idem_key_ok(key))
        return api_problem(rq, 400, "invalid_parameter", "Idempotency-Key",
                           "Idempotency-Key must be 1..255 printable ASCII characters");
    if (pub_parse(rq, &b) != HQ_OK)
        return API_DONE;
    if (mine && b.has[PF_TENANT] && strcmp(b.str[PF_TENANT], mine) != 0)
        return api_forbidden(rq, "tenant");
    p.type = b.has[PF_TYPE] ? b.str[PF_TYPE] : NULL;
    p.data = b.data;
    p.datalen = b.datalen;
    p.opts = &o;
    o.id = b.has[PF_ID] ? b.str[PF_ID] : NULL;
    o.tenant = mine ? mine : b.has[PF_TENANT] ? b.str[PF_TENANT] : NULL;
    o.endpoint = b.has[PF_ENDPOINT] ? b.str[PF_ENDPOINT] : NULL;
    /* Exactly what the library refuses, with its words. */
    if ((rc = hookq__validate(&lim, &p, err, sizeof(err))) != HOOKQ_OK)
        return pub_failed(rq, rc, err);
    if (key)
        return pub_idempotent(rq, key, &p);
    if (!(r = api_redis(rq)))
        return API_DONE;
    rc = hookq__publish(r, rq->ctx->prefix, &lim, c->events_idempotency_ttl_ms, &p, &res, err,
                        sizeof(err));
    if (rc != HOOKQ_OK)
        return pub_failed(rq, rc, err);
    return pub_answer(rq, 202, res.id, res.stream_id, &p, !res.added);
}

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
                    "what a lookup searches: docs/api/events.md)",
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
