/* api_inbound.c -- POST /v1/in/{source_id}: a third party's webhook comes in.
 *
 * The route has no API key: the source id is unguessable and the request proves itself
 * to the source's verifier (api_verify.h). An accepted request costs three round trips:
 *   1. HGETALL the source;
 *   2. one script on the source's slot: refuse if the source was deleted meanwhile, drop
 *      a redelivery (dedupe), else XADD the payload (recording the event id chosen for it
 *      now) and set the dedupe key;
 *   3. hookq__publish the event under that id.
 * Storing first means a crash before 3 cannot lose the payload: the sender got no 2xx and
 * sends it again; with dedupe on, that redelivery finds the stored entry and publishes it
 * under its recorded event id, which hookq's idempotent publish turns into a no-op when the
 * event is already there. So a payload is published once, however often it arrives. The
 * dedupe window is events.idempotency_ttl (24 h), no longer than the publish's own
 * idempotency, so that repair can never publish twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "api.h"
#include "api_source_store.h"
#include "api_verify.h"
#include "cidr.h"
#include "hookq_int.h"
#include "hq.h"
#include "ids.h"
#include "json_scan.h"
#include "log.h"
#include "redis_keys.h"
#include "timestamp.h"

#define CAPTURE_MAX 100 /* headers kept per payload; the rest are dropped */

/* KEYS[1] source hash, KEYS[2] payloads stream, KEYS[3] dedupe key (only with dedupe)
 * ARGV[1] MINID for trimming, ARGV[2] dedupe ttl ms, ARGV[3] event id, ARGV[4..] the
 * entry's field/value pairs. The dedupe key holds "<payload id> <event id>".
 * Returns {"gone"} | {"new", stream id} | {"dup", "<payload id> <event id>", fields of the
 * stored entry or {} when it was trimmed}. */
static const char store_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end\n"
    "if KEYS[3] then\n"
    "  local prev = redis.call('GET', KEYS[3])\n"
    "  if prev then\n"
    "    local sp = string.find(prev, ' ', 1, true) or (#prev + 1)\n"
    "    local sid = string.sub(prev, 5, sp - 1)\n"
    "    local e = redis.call('XRANGE', KEYS[2], sid, sid)\n"
    "    return {'dup', prev, e[1] and e[1][2] or {}}\n"
    "  end\n"
    "end\n"
    "local sid = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 4))\n"
    "if KEYS[3] then redis.call('SET', KEYS[3], 'pay_' .. sid .. ' ' .. ARGV[3], 'PX', ARGV[2]) "
    "end\n"
    "return {'new', sid}\n";

static const char *lookup(void *ud, const char *name) {
    return api_header(ud, name);
}

/* ---- the headers a payload keeps ---------------------------------------------------------- */

typedef struct capture {
    json_t *obj;
    const verify_config *vc;
    size_t n;
} capture;

static int same(const char *a, const char *b) {
    return a && b && strcasecmp(a, b) == 0;
}

/* What a receiver needs to tell requests apart and re-check them: Content-Type,
 * User-Agent, every X-*, and the signature headers; never a credential (Authorization, an
 * api_key verifier's key header). */
static int kept(const char *name, const verify_config *vc) {
    if (same(name, "Authorization") || same(name, "Cookie") || same(name, "Proxy-Authorization"))
        return 0;
    if (vc->kind == VERIFY_API_KEY && same(name, vc->header))
        return 0;
    if (same(name, "Content-Type") || same(name, "User-Agent") || same(name, "Stripe-Signature"))
        return 1;
    if (strncasecmp(name, "x-", 2) == 0 || strncasecmp(name, "webhook-", 8) == 0)
        return 1;
    return vc->kind == VERIFY_HMAC && (same(name, vc->header) || same(name, vc->timestamp_header));
}

/* value as a JSON string; bytes that are not UTF-8 (legal in HTTP, rare) become '?'. */
static json_t *header_string(const char *value) {
    json_t *s = json_string(value);
    if (!s) {
        char *copy = strdup(value);
        if (!copy)
            return NULL;
        for (char *p = copy; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        s = json_string(copy);
        free(copy);
    }
    return s;
}

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
    capture *c = cls;
    char name[VERIFY_HEADER_NAME_MAX + 1];
    size_t n = key ? strlen(key) : 0;
    json_t *prev, *v;
    (void)kind;
    if (!value || n == 0 || n > VERIFY_HEADER_NAME_MAX || !kept(key, c->vc))
        return MHD_YES;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    prev = json_object_get(c->obj, name);
    if (prev) {
        /* A repeated header is one list (RFC 9110 5.3). */
        size_t pl = strlen(json_string_value(prev)), vl = strlen(value);
        char *joined = malloc(pl + 2 + vl + 1);
        if (!joined)
            return MHD_YES;
        memcpy(joined, json_string_value(prev), pl);
        memcpy(joined + pl, ", ", 2);
        memcpy(joined + pl + 2, value, vl + 1);
        v = header_string(joined);
        free(joined);
    } else {
        if (c->n >= CAPTURE_MAX)
            return MHD_YES;
        c->n++;
        v = header_string(value);
    }
    if (v)
        json_object_set_new(c->obj, name, v);
    return MHD_YES;
}

/* ---- the event ---------------------------------------------------------------------------- */

/* What one payload publishes; the same fields rebuild it exactly from the stored entry. */
typedef struct inbound {
    const char *source_id;
    const char *tenant;
    char payload_id[PAYLOAD_ID_LEN];
    const char *event_id;
    const char *type;
    const char *content_type; /* NULL: the request had none */
    const char *headers;      /* JSON object text */
    const char *repr;         /* the body as JSON text: verbatim, or a JSON string */
    size_t repr_len;
} inbound;

/* The event's data, malloc'd:
 * {"source_id":..,"payload_id":..,"content_type":..,"headers":{..},"payload":<repr>} */
static char *event_data(const inbound *in, size_t *len) {
    json_t *ct = in->content_type ? json_string(in->content_type) : json_null();
    char *ctj = ct ? json_dumps(ct, JSON_ENCODE_ANY) : NULL;
    char *out = NULL;
    size_t n;
    json_decref(ct);
    if (!ctj)
        return NULL;
    n = strlen(in->source_id) + strlen(in->payload_id) + strlen(ctj) + strlen(in->headers) +
        in->repr_len + 80;
    if ((out = malloc(n))) {
        int w = snprintf(out, n,
                         "{\"source_id\":\"%s\",\"payload_id\":\"%s\",\"content_type\":%s,"
                         "\"headers\":%s,\"payload\":",
                         in->source_id, in->payload_id, ctj, in->headers);
        memcpy(out + w, in->repr, in->repr_len);
        out[w + in->repr_len] = '}';
        out[w + in->repr_len + 1] = '\0';
        *len = (size_t)w + in->repr_len + 1;
    }
    free(ctj);
    return out;
}

/* Publish in's event under its id. HQ_OK (*added: 0 when an earlier publish of this id
 * was found), or HQ_ERR with the answer set. */
static int publish(api_req *rq, const inbound *in, int *added) {
    const cfg *c = rq->ctx->c;
    char err[HQ_ERRLEN];
    envelope_limits lim = {.max_payload = c->events_max_payload, .max_depth = c->events_max_depth};
    hookq_publish_opts o = {.id = in->event_id, .tenant = in->tenant};
    hookq__pubres res;
    hookq_err e;
    size_t len = 0;
    char *data = event_data(in, &len);
    rconn *r;
    if (!data) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        return HQ_ERR;
    }
    if (!(r = api_redis(rq))) {
        free(data);
        return HQ_ERR;
    }
    hookq__pub p = {.type = in->type, .data = data, .datalen = len, .opts = &o};
    e = hookq__publish(r, rq->ctx->prefix, &lim, c->events_idempotency_ttl_ms, &p, &res, err,
                       sizeof(err));
    free(data);
    switch (e) {
    case HOOKQ_OK:
        *added = res.added;
        return HQ_OK;
    case HOOKQ_EIO:
    case HOOKQ_ECONNECT:
        api_redis_failed(rq, err);
        return HQ_ERR;
    case HOOKQ_EFULL:
        api_header_add(rq, "Retry-After", "5");
        api_problem(rq, 507, "redis_full", NULL,
                    "Redis is out of memory (maxmemory); the payload is stored, its event is "
                    "not published: send it again");
        return HQ_ERR;
    default:
        api_problem(rq, 500, "internal", NULL, "publish: %s", err);
        return HQ_ERR;
    }
}

static json_t *answer_ids(const inbound *in) {
    return json_pack("{s:s,s:s,s:s}", "source_id", in->source_id, "payload_id", in->payload_id,
                     "event_id", in->event_id);
}

/* ---- stored entries ------------------------------------------------------------------------ */

static const redisReply *field_of(const redisReply *fields, const char *name) {
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

/* A body as event JSON: verbatim when json, else a new JSON string (malloc'd into *owned).
 * HQ_ERR when it is not UTF-8. */
static int body_repr(const char *body, size_t len, int json, const char **repr, size_t *rlen,
                     char **owned) {
    json_t *s;
    *owned = NULL;
    if (json) {
        *repr = body;
        *rlen = len;
        return HQ_OK;
    }
    if (!(s = json_stringn(body ? body : "", len)))
        return HQ_ERR;
    *owned = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    if (!*owned)
        return HQ_ERR;
    *repr = *owned;
    *rlen = strlen(*owned);
    return HQ_OK;
}

/* A redelivery: answer with the first delivery's ids. If its entry is still stored, publish
 * it again under its event id first: a no-op when it was published (the usual case), the
 * repair when the first request died between storing and publishing. */
static int duplicate(api_req *rq, const source *s, const redisReply *rep) {
    const char *prev = rep->element[1]->str;
    const redisReply *fields = rep->elements > 2 ? rep->element[2] : NULL;
    const char *sp = strchr(prev, ' ');
    char evid[ID_MAX + 1];
    inbound in = {.source_id = s->id, .tenant = s->tenant};
    json_t *j;
    if (!sp || (size_t)(sp - prev) >= sizeof(in.payload_id) || strlen(sp + 1) > ID_MAX)
        return api_problem(rq, 500, "internal", NULL, "unreadable dedupe key");
    snprintf(in.payload_id, sizeof(in.payload_id), "%.*s", (int)(sp - prev), prev);
    snprintf(evid, sizeof(evid), "%s", sp + 1);
    in.event_id = evid;
    const redisReply *body = field_of(fields, "body"), *type = field_of(fields, "type"),
                     *hdrs = field_of(fields, "headers"), *json = field_of(fields, "json"),
                     *ct = field_of(fields, "content_type");
    if (body && type && hdrs && json) {
        char *owned = NULL;
        int added = 0;
        in.type = type->str;
        in.headers = hdrs->str;
        in.content_type = ct ? ct->str : NULL;
        if (body_repr(body->str, body->len, strcmp(json->str, "true") == 0, &in.repr, &in.repr_len,
                      &owned) != HQ_OK)
            return api_problem(rq, 500, "internal", NULL, "stored payload is not UTF-8");
        int rc = publish(rq, &in, &added);
        free(owned);
        if (rc != HQ_OK)
            return API_DONE;
        if (added)
            LOG_W("api: inbound %s: payload %s had not been published (a request died between "
                  "storing and publishing it); published now as %s",
                  s->id, in.payload_id, in.event_id);
    }
    j = answer_ids(&in);
    if (j)
        json_object_set_new(j, "duplicate", json_true());
    return api_json(rq, 200, j);
}

/* Run the store script for in (its payload_id not known yet). The reply, or NULL with the
 * answer set. */
static redisReply *store(api_req *rq, const inbound *in, const char *did, int is_json,
                         const char *body, size_t blen) {
    const cfg *c = rq->ctx->c;
    char kp[KEY_MAX], kpay[KEY_MAX], kdup[KEY_MAX], dpart[8 + VERIFY_ID_LEN];
    char minid[24], ttl[24], size[24], received[TS_ISO_LEN];
    int64_t now = ts_now_ms();
    int64_t keep = c->api_payload_retention_ms > 0 ? now - c->api_payload_retention_ms : 0;
    const char *argv[32];
    size_t lens[32];
    int n = 0;
    rconn_script script;
    snprintf(dpart, sizeof(dpart), "dedupe:%s", did ? did : "");
    if (source_key(rq->ctx->prefix, in->source_id, "source", kp, sizeof(kp)) != HQ_OK ||
        source_key(rq->ctx->prefix, in->source_id, "payloads", kpay, sizeof(kpay)) != HQ_OK ||
        source_key(rq->ctx->prefix, in->source_id, dpart, kdup, sizeof(kdup)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "key too long");
        return NULL;
    }
    snprintf(minid, sizeof(minid), "%lld", (long long)(keep > 0 ? keep : 0));
    snprintf(ttl, sizeof(ttl), "%lld", (long long)c->events_idempotency_ttl_ms);
    snprintf(size, sizeof(size), "%zu", blen);
    ts_iso(now, received, sizeof(received));
#define ARG(v, l)                                                                                  \
    do {                                                                                           \
        argv[n] = (v);                                                                             \
        lens[n] = (l);                                                                             \
        n++;                                                                                       \
    } while (0)
#define ARGS(v) ARG((v), strlen(v))
    ARGS(kp);
    ARGS(kpay);
    if (did)
        ARGS(kdup);
    ARGS(minid);
    ARGS(ttl);
    ARGS(in->event_id);
    ARGS("event_id");
    ARGS(in->event_id);
    ARGS("type");
    ARGS(in->type);
    if (in->content_type) {
        ARGS("content_type");
        ARGS(in->content_type);
    }
    ARGS("headers");
    ARGS(in->headers);
    ARGS("source_ip");
    ARGS(rq->client_ip);
    ARGS("received_at");
    ARGS(received);
    ARGS("size");
    ARGS(size);
    ARGS("json");
    ARGS(is_json ? "true" : "false");
    if (did) {
        ARGS("delivery_id");
        ARGS(did);
    }
    ARGS("body");
    ARG(body, blen);
#undef ARG
#undef ARGS
    source_script(&script, "source_store", store_lua);
    return api_eval(rq, &script, did ? 3 : 2, n, argv, lens);
}

/* ---- the route ------------------------------------------------------------------------------- */

/* Slack checks an Events API URL with a signed {"type":"url_verification","challenge":..}
 * and wants the challenge back; it is a handshake, not an event. 1 if answered. */
static int slack_challenge(api_req *rq, const verify_config *vc, int is_json) {
    json_t *j, *ch;
    if (vc->kind != VERIFY_SLACK || !is_json)
        return 0;
    j = json_loadb(rq->body, rq->body_len, 0, NULL);
    ch = json_object_get(j, "challenge");
    if (!json_is_string(ch) || !json_is_string(json_object_get(j, "type")) ||
        strcmp(json_string_value(json_object_get(j, "type")), "url_verification") != 0) {
        json_decref(j);
        return 0;
    }
    api_json(rq, 200, json_pack("{s:O}", "challenge", ch));
    json_decref(j);
    return 1;
}

/* Load the source for an inbound request: 1, or 0 with 404/500 set. */
static int load_source(api_req *rq, const char *id, source *s) {
    char key[KEY_MAX], err[HQ_ERRLEN];
    redisReply *rep;
    int rc;
    if (!source_id_valid(id) || source_key(rq->ctx->prefix, id, "source", key, sizeof(key))) {
        api_problem(rq, 404, "not_found", NULL, "no source %.100s", id);
        return 0;
    }
    if (!(rep = api_cmdv(rq, (const char *const[]){"HGETALL", key, NULL})))
        return 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 0) {
        freeReplyObject(rep);
        api_problem(rq, 404, "not_found", NULL, "no source %.100s", id);
        return 0;
    }
    rc = source_from_hash(s, id, rep, err, sizeof(err));
    freeReplyObject(rep);
    if (rc != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "%s", err);
        return 0;
    }
    return 1;
}

/* Whether the client may post here (allow_ips). 1, or 0 with 403/500 set. */
static int address_allowed(api_req *rq, const source *s) {
    char err[HQ_ERRLEN];
    cidr_set *set;
    int ok;
    if (!s->n_allow)
        return 1;
    if (!(set = cidr_set_new((const char *const *)s->allow_ips, s->n_allow, err, sizeof(err)))) {
        api_problem(rq, 500, "internal", NULL, "source %s: allow_ips: %s", s->id, err);
        return 0;
    }
    ok = cidr_set_has(set, rq->client_ip);
    cidr_set_free(set);
    if (!ok)
        api_problem(rq, 403, "forbidden", NULL, "address %s is not in this source's allow_ips",
                    rq->client_ip);
    return ok;
}

int api_inbound(api_req *rq) {
    const cfg *c = rq->ctx->c;
    const char *id = api_param(rq, 0);
    char why[HQ_ERRLEN], type[256], did[VERIFY_ID_LEN], evid[ID_MAX + 1];
    source s = {0};
    verify_config vc = {0};
    capture cap = {0};
    inbound in = {0};
    char *headers = NULL, *owned = NULL;
    const char *ct = NULL;
    redisReply *rep = NULL;
    int is_json, have_did, added = 0;
    size_t need;
    const char *body = rq->body ? rq->body : "";
    size_t blen = rq->body_len;

    if (!load_source(rq, id, &s))
        goto cleanup;
    if (!s.enabled) {
        api_problem(rq, 410, "gone", NULL, "source %s is disabled", s.id);
        goto cleanup;
    }
    if (!address_allowed(rq, &s))
        goto cleanup;
    if (verify_config_from_json(s.verification, &vc, why, sizeof(why)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "source %s: %s", s.id, why);
        goto cleanup;
    }
    if (verify_check(&vc, lookup, rq, rq->body, blen, ts_now_ms() / 1000, why, sizeof(why)) !=
        HQ_OK) {
        LOG_D("api: inbound %s from %s refused: %s", s.id, rq->client_ip, why);
        api_problem(rq, 401, "signature_invalid", NULL, "%s", why);
        goto cleanup;
    }
    /* JSON goes into the event as it came; the wrapper adds one level of nesting. */
    is_json = blen && json_scan_check(body, blen, c->events_max_depth - 1, NULL, NULL, 0) == HQ_OK;
    if (body_repr(body, blen, is_json, &in.repr, &in.repr_len, &owned) != HQ_OK) {
        api_problem(rq, 415, "unsupported_media_type", NULL,
                    "the body is neither JSON nor UTF-8 text; hookq keeps payloads as text");
        goto cleanup;
    }
    if (slack_challenge(rq, &vc, is_json))
        goto cleanup;
    if (source_event_type(&s, s.event_type_header ? api_header(rq, s.event_type_header) : NULL,
                          type, sizeof(type), why, sizeof(why)) != HQ_OK) {
        api_problem(rq, 422, "invalid_event_type", NULL, "%s", why);
        goto cleanup;
    }
    cap.vc = &vc;
    if (!(cap.obj = json_object())) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, collect, &cap);
    if (!(headers = json_dumps(cap.obj, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    ct = json_string_value(json_object_get(cap.obj, "content-type"));
    in.source_id = s.id;
    in.tenant = s.tenant;
    in.type = type;
    in.content_type = ct;
    in.headers = headers;
    /* Refuse now what the publish would refuse after storing: an event over the limit. */
    need = strlen(s.id) + PAYLOAD_ID_LEN + (ct ? 2 * strlen(ct) + 2 : 4) + strlen(headers) +
           in.repr_len + 80;
    if (need > c->events_max_payload) {
        api_problem(rq, 413, "payload_too_large", NULL,
                    "the event this payload becomes (about %zu bytes with its headers) is over "
                    "events.max_payload (%llu bytes)",
                    need, (unsigned long long)c->events_max_payload);
        goto cleanup;
    }
    have_did = s.dedupe &&
               verify_delivery_id(vc.kind, lookup, rq, rq->body, blen, did, sizeof(did)) == HQ_OK;
    if (id_new(ID_PREFIX_EVENT, evid, sizeof(evid)) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "cannot make an event id");
        goto cleanup;
    }
    in.event_id = evid;

    /* Store (or find the redelivery's entry): round trip 2. */
    if (!(rep = store(rq, &in, have_did ? did : NULL, is_json, body, blen)))
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        api_problem(rq, 500, "internal", NULL, "unexpected reply from the store script");
        goto cleanup;
    }
    if (strcmp(rep->element[0]->str, "gone") == 0) {
        api_problem(rq, 404, "not_found", NULL, "no source %.100s", id);
        goto cleanup;
    }
    if (strcmp(rep->element[0]->str, "dup") == 0 && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        duplicate(rq, &s, rep);
        goto cleanup;
    }
    if (strcmp(rep->element[0]->str, "new") != 0 || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        api_problem(rq, 500, "internal", NULL, "unexpected reply from the store script");
        goto cleanup;
    }
    payload_id_from_sid(rep->element[1]->str, in.payload_id, sizeof(in.payload_id));

    /* Publish: round trip 3. */
    if (publish(rq, &in, &added) != HQ_OK)
        goto cleanup;
    api_json(rq, 202, answer_ids(&in));
cleanup:
    if (rep)
        freeReplyObject(rep);
    free(headers);
    free(owned);
    json_decref(cap.obj);
    verify_config_clear(&vc);
    source_clear(&s);
    return API_DONE;
}
