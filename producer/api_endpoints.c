/* api_endpoints.c -- /v1/endpoints: register and manage endpoints (docs/api.md "Endpoints").
 *
 * Each route does what the `hookq endpoint` command of the same name does to the same
 * Redis data (cli_endpoint.c), so the CLI and the API can be used side by side: bodies are
 * checked by api_endpoint_json.c with the CLI's rules, records are written by ep_save, and
 * the side effects (failure counter reset on enable, held jobs discarded, lane keys
 * removed on delete) are the CLI's. The delivery log and recovery are in
 * api_endpoint_deliveries.c. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "api_endpoint_json.h"
#include "api_endpoint_store.h"
#include "endpoint.h"
#include "envelope.h"
#include "event_pattern.h"
#include "hookq_int.h"
#include "hq.h"
#include "ids.h"
#include "redis_keys.h"
#include "signature.h"
#include "timestamp.h"

#define CURSOR_MAX 256 /* decoded cursor text: an endpoint id (ID_MAX) fits */

/* After ep_save/ep_delete failed with err: a full Redis refuses the MULTI's writes (507,
 * like api_cmd), anything else is api_redis_failed's. */
static int save_failed(api_req *rq, const char *err) {
    if (strstr(err, "OOM command")) {
        api_header_add(rq, "Retry-After", "5");
        return api_problem(rq, 507, "redis_full", NULL,
                           "Redis is out of memory (maxmemory); nothing was written");
    }
    return api_redis_failed(rq, err);
}

static int save(api_req *rq, const ep *e) {
    char err[HQ_ERRLEN];
    rconn *r = api_redis(rq);
    if (!r)
        return HQ_ERR;
    if (ep_save(r, rq->ctx->prefix, e, err, sizeof err) != HQ_OK) {
        save_failed(rq, err);
        return HQ_ERR;
    }
    return HQ_OK;
}

/* A fresh start after enable: the auto-disable threshold counts from zero again. */
static int reset_failures(api_req *rq, const char *id) {
    char kf[KEY_MAX];
    redisReply *rep;
    if (key_failures(rq->ctx->prefix, id, kf, sizeof kf) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "endpoint id or prefix too long");
        return HQ_ERR;
    }
    if (!(rep = api_cmdv(rq, (const char *[]){"DEL", kf, NULL})))
        return HQ_ERR;
    freeReplyObject(rep);
    return HQ_OK;
}

/* Answer status with the endpoint's view (plus its secret when show_secret). */
static int answer_view(api_req *rq, int status, const ep *e, long long failures, int show_secret) {
    return api_json(rq, status, epj_view(e, failures, show_secret));
}

/* ---- list ---------------------------------------------------------------------------- */

/* ?name=true|false: 1/0, -1 when absent; HQ_ERR with 400 otherwise. */
static int query_bool(api_req *rq, const char *name, int *out) {
    const char *s = api_query(rq, name);
    *out = -1;
    if (!s)
        return HQ_OK;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return HQ_OK;
    }
    api_problem(rq, 400, "invalid_parameter", name, "%s must be true or false", name);
    return HQ_ERR;
}

int api_endpoint_list(api_req *rq) {
    const char *tq = api_query(rq, "tenant"), *mine = api_tenant(rq);
    char cursor[CURSOR_MAX], err[HQ_ERRLEN];
    eps_filter f = {.tenant = NULL, .enabled = -1, .unreadable = api_is_admin(rq)};
    eps_page pg;
    json_t *data;
    size_t limit;

    if (api_limit(rq, &limit) != HQ_OK || api_cursor(rq, cursor, sizeof cursor) != HQ_OK ||
        query_bool(rq, "enabled", &f.enabled) != HQ_OK)
        return API_DONE;
    if (cursor[0] && id_valid(cursor, err, sizeof err) != HQ_OK)
        return api_problem(rq, 400, "invalid_cursor", "cursor",
                           "cursor is not one this API returned (pass next_cursor as it came)");
    if (tq && envelope_tenant_valid(tq, err, sizeof err) != HQ_OK)
        return api_problem(rq, 400, "invalid_parameter", "tenant", "tenant: %s", err);
    /* A tenant key lists its own tenant's endpoints; asking for another is not allowed
     * rather than quietly answered with its own. */
    if (!api_is_admin(rq) && (!mine || (tq && strcmp(tq, mine) != 0)))
        return api_forbidden(rq, "listing another tenant's endpoints");
    f.tenant = tq ? tq : mine;
    if (eps_list(rq, &f, cursor, limit, &pg) != HQ_OK) {
        eps_page_clear(&pg);
        return API_DONE;
    }
    if (!(data = json_array()))
        goto nomem;
    for (size_t i = 0; i < pg.n; i++)
        if (json_array_append_new(data, epj_view(pg.eps[i], pg.failures[i], 0)) != 0) {
            json_decref(data);
            goto nomem;
        }
    json_t *page = api_page(data, pg.more ? pg.eps[pg.n - 1]->id : NULL);
    if (page && pg.unreadable)
        json_object_set(page, "unreadable", pg.unreadable);
    eps_page_clear(&pg);
    return api_json(rq, 200, page);
nomem:
    eps_page_clear(&pg);
    return api_problem(rq, 500, "internal", NULL, "out of memory");
}

/* ---- create, read, update, delete ------------------------------------------------------ */

int api_endpoint_create(api_req *rq) {
    char id[64];
    int64_t now = ts_now_ms();
    epj_changes ch;
    json_t *body = api_body_object(rq, 0);
    ep *e = NULL;
    if (!body)
        return API_DONE;
    if (!(e = ep_new()) || id_new(ID_PREFIX_ENDPOINT, id, sizeof id) != HQ_OK ||
        !(e->id = strdup(id))) {
        api_problem(rq, 500, "internal", NULL, "cannot make an endpoint id");
        goto cleanup;
    }
    e->enabled = 1;
    e->created_at = e->updated_at = now;
    if (epj_apply(rq, e, body, EPJ_CREATE, now, &ch) != HQ_OK || save(rq, e) != HQ_OK)
        goto cleanup;
    char where[96];
    snprintf(where, sizeof where, "/v1/endpoints/%s", e->id);
    api_header_add(rq, "Location", where);
    /* The secret is shown here and by rotate-secret only, as the CLI's add does. */
    answer_view(rq, 201, e, 0, 1);
cleanup:
    json_decref(body);
    ep_free(e);
    return API_DONE;
}

int api_endpoint_get(api_req *rq) {
    ep *e;
    long long failures;
    if (eps_load(rq, &e, &failures) != HQ_OK)
        return API_DONE;
    answer_view(rq, 200, e, failures, 0);
    ep_free(e);
    return API_DONE;
}

/* A merge of the body into the endpoint: the fields given change, null clears an optional
 * one, the rest stay. Everything is checked before anything is written. */
int api_endpoint_patch(api_req *rq) {
    json_t *body = api_body_object(rq, 0);
    ep *e = NULL;
    long long failures;
    epj_changes ch;
    int64_t now = ts_now_ms();
    if (!body)
        return API_DONE;
    if (eps_load(rq, &e, &failures) != HQ_OK ||
        epj_apply(rq, e, body, EPJ_UPDATE, now, &ch) != HQ_OK)
        goto cleanup;
    /* {} changes nothing: nothing is written, so workers do not reload for it. */
    if (json_object_size(body) > 0) {
        e->updated_at = now;
        if (save(rq, e) != HQ_OK || (ch.enabled && reset_failures(rq, e->id) != HQ_OK))
            goto cleanup;
        if (ch.enabled)
            failures = 0;
    }
    answer_view(rq, 200, e, failures, 0);
cleanup:
    json_decref(body);
    ep_free(e);
    return API_DONE;
}

/* ep_delete takes the hash, counters, log and every lane key with it, as `endpoint rm`. */
int api_endpoint_delete(api_req *rq) {
    char err[HQ_ERRLEN];
    ep *e;
    long long failures;
    rconn *r;
    if (eps_load(rq, &e, &failures) != HQ_OK)
        return API_DONE;
    ep_free(e);
    if (!(r = api_redis(rq)))
        return API_DONE;
    if (ep_delete(r, rq->ctx->prefix, api_param(rq, 0), err, sizeof err) != HQ_OK) {
        /* Deleted by someone else between the load and here: gone either way. */
        if (strstr(err, "not found"))
            return api_problem(rq, 404, "not_found", NULL, "endpoint %s not found",
                               api_param(rq, 0));
        return save_failed(rq, err);
    }
    return api_empty(rq, 204);
}

/* ---- enable, disable, rotate-secret ---------------------------------------------------- */

/* enable / disable: one function so both record the same fields (as cli_endpoint.c's
 * set_enabled). Optional bodies: {"discard_held": bool} / {"reason": "..."}. */
static int set_enabled(api_req *rq, int on) {
    static const char *const en_fields[] = {"discard_held", NULL};
    static const char *const dis_fields[] = {"reason", NULL};
    json_t *body = api_body_object(rq, 1), *v;
    const char *reason = NULL;
    long long failures, discarded = 0;
    int discard = 0;
    int64_t now = ts_now_ms();
    ep *e = NULL;
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, on ? en_fields : dis_fields) != HQ_OK)
        goto cleanup;
    if (on && (v = json_object_get(body, "discard_held"))) {
        if (!json_is_boolean(v)) {
            api_problem(rq, 422, "invalid_field", "discard_held",
                        "discard_held: expected true or false");
            goto cleanup;
        }
        discard = json_is_true(v);
    }
    if (!on && (v = json_object_get(body, "reason")) && !json_is_null(v)) {
        reason = json_string_value(v);
        if (!reason || strlen(reason) > EPJ_DESCRIPTION_MAX) {
            api_problem(rq, 422, "invalid_field", "reason",
                        "reason: expected a string of at most %d bytes, or null",
                        EPJ_DESCRIPTION_MAX);
            goto cleanup;
        }
    }
    if (eps_load(rq, &e, &failures) != HQ_OK)
        goto cleanup;
    /* Held jobs go before the endpoint is enabled: once it is, workers deliver them. */
    if (discard && eps_discard_held(rq, e->id, &discarded) != HQ_OK)
        goto cleanup;
    e->enabled = on;
    e->updated_at = now;
    e->disabled_at = on ? 0 : now;
    free(e->disabled_reason);
    e->disabled_reason = NULL;
    if (!on &&
        !(e->disabled_reason = strdup(reason && *reason ? reason : EPJ_DISABLED_BY_OPERATOR))) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    if (save(rq, e) != HQ_OK || (on && reset_failures(rq, e->id) != HQ_OK))
        goto cleanup;
    json_t *j = epj_view(e, on ? 0 : failures, 0);
    if (j && discard)
        json_object_set_new(j, "discarded", json_integer(discarded));
    api_json(rq, 200, j);
cleanup:
    json_decref(body);
    ep_free(e);
    return API_DONE;
}

int api_endpoint_enable(api_req *rq) {
    return set_enabled(rq, 1);
}

int api_endpoint_disable(api_req *rq) {
    return set_enabled(rq, 0);
}

/* The old secret keeps signing (a second signature) until endpoints.rotation_grace ends,
 * so receivers can switch without rejecting deliveries. */
int api_endpoint_rotate(api_req *rq) {
    static const char *const fields[] = {"secret", NULL};
    char buf[SIGN_SECRET_MAX], err[HQ_ERRLEN];
    json_t *body = api_body_object(rq, 1), *v;
    const char *secret = buf;
    long long failures;
    int64_t now = ts_now_ms();
    ep *e = NULL;
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, fields) != HQ_OK)
        goto cleanup;
    if ((v = json_object_get(body, "secret")) && !json_is_null(v)) {
        secret = json_string_value(v);
        if (!secret || sign_secret_valid(secret, err, sizeof err) != HQ_OK) {
            api_problem(rq, 422, "invalid_field", "secret", "secret: %s",
                        secret ? err : "expected a whsec_ string");
            goto cleanup;
        }
    } else if (sign_secret_generate(buf, sizeof buf) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "cannot generate a secret");
        goto cleanup;
    }
    if (eps_load(rq, &e, &failures) != HQ_OK)
        goto cleanup;
    char *fresh = strdup(secret);
    if (!fresh) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    free(e->secret_old);
    e->secret_old = e->secret;
    e->secret = fresh;
    e->secret_old_until = now + rq->ctx->c->endpoints_rotation_grace_ms;
    e->updated_at = now;
    if (save(rq, e) != HQ_OK)
        goto cleanup;
    answer_view(rq, 200, e, failures, 1);
cleanup:
    json_decref(body);
    ep_free(e);
    return API_DONE;
}

/* ---- test ------------------------------------------------------------------------------ */

/* After hookq__publish failed: its error kinds as the API's codes. */
static int publish_failed(api_req *rq, hookq_err code, const char *err) {
    switch (code) {
    case HOOKQ_EINVAL:
        return api_problem(rq, 422, "invalid_field", "data", "%s", err);
    case HOOKQ_ETOOBIG:
        return api_problem(rq, 413, "payload_too_large", "data", "%s", err);
    case HOOKQ_EFULL:
        api_header_add(rq, "Retry-After", "5");
        return api_problem(rq, 507, "redis_full", NULL, "%s", err);
    case HOOKQ_EIO:
    case HOOKQ_ECONNECT:
        api_redis_down(rq);
        api_header_add(rq, "Retry-After", "1");
        return api_problem(rq, 503, "redis_unavailable", NULL, "Redis is unavailable: %s", err);
    default:
        return api_problem(rq, 500, code == HOOKQ_EREDIS ? "redis_error" : "internal", NULL, "%s",
                           err);
    }
}

/* A test event for this endpoint only, as `hookq test` publishes it, without waiting for
 * the delivery: its outcome is in GET .../deliveries. It carries the endpoint's tenant, so
 * the tenant's live stream shows it like its other events. */
int api_endpoint_test(api_req *rq) {
    static const char *const fields[] = {"type", "data", NULL};
    char err[HQ_ERRLEN], now_iso[TS_ISO_LEN];
    json_t *body = api_body_object(rq, 1), *v;
    const char *type = "hookq.test";
    char *data = NULL;
    long long failures;
    ep *e = NULL;
    hookq_publish_opts po = {0};
    hookq__pubres res;
    envelope_limits lim;
    hookq_err code;
    rconn *r;
    if (!body)
        return API_DONE;
    if (api_fields_known(rq, body, fields) != HQ_OK)
        goto cleanup;
    if ((v = json_object_get(body, "type"))) {
        type = json_string_value(v);
        if (!type || pat_type_valid(type, err, sizeof err) != HQ_OK) {
            api_problem(rq, 422, "invalid_field", "type", "type: %s",
                        type ? err : "expected a string");
            goto cleanup;
        }
    }
    if (eps_load(rq, &e, &failures) != HQ_OK)
        goto cleanup;
    if (!e->enabled) {
        api_problem(rq, 409, "conflict", NULL,
                    "endpoint %s is disabled: POST /v1/endpoints/%s/enable first", e->id, e->id);
        goto cleanup;
    }
    if ((v = json_object_get(body, "data"))) {
        data = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    } else {
        ts_iso(ts_now_ms(), now_iso, sizeof now_iso);
        json_t *d = json_pack("{s:s,s:s,s:s}", "message", "hookq test event", "endpoint", e->id,
                              "sent_at", now_iso);
        data = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(d);
    }
    if (!data) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    if (!(r = api_redis(rq)))
        goto cleanup;
    po.endpoint = e->id;
    po.tenant = e->tenant;
    lim = (envelope_limits){.max_payload = rq->ctx->c->events_max_payload,
                            .max_depth = rq->ctx->c->events_max_depth};
    hookq__pub p = {.type = type, .data = data, .datalen = strlen(data), .opts = &po};
    code = hookq__publish(r, rq->ctx->prefix, &lim, rq->ctx->c->events_idempotency_ttl_ms, &p, &res,
                          err, sizeof err);
    if (code != HOOKQ_OK)
        publish_failed(rq, code, err);
    else
        api_json(rq, 202, json_pack("{s:s}", "event_id", res.id));
cleanup:
    free(data);
    json_decref(body);
    ep_free(e);
    return API_DONE;
}
