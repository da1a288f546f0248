/* api_publish.c -- POST /v1/events, the API's hot path (docs/api.md "Events").
 *
 * The body is scanned once for its top-level members (no tree), `data` is forwarded as
 * the exact bytes the producer sent, the library's own validation decides what is
 * refused (hookq__validate), and the request costs one Redis round trip: hookq__publish's
 * XADD (or its publish.lua with a producer id), or one api_publish.lua call with an
 * Idempotency-Key. */
#include "api_evkit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "hookq_int.h"
#include "hq.h"
#include "ids.h"
#include "json_scan.h"
#include "redis_keys.h"
#include "scripts_gen.h"
#include "timestamp.h"

/* Decoded string members: the validators allow 128 characters, so anything this long
 * is refused by them whole or cut (the cut text is still too long). */
#define PUB_STR_MAX 512

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
