/* api_stream.c -- GET /v1/stream (Server-Sent Events) and POST /v1/stream/tokens
 * (docs/api.md "The live stream"). The stream itself is fed by the hub (api_stream_hub.c); here the
 * request is checked and turned into a filter and a starting point. */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api_stream_hub.h"
#include "envelope.h"
#include "event_pattern.h"
#include "hq.h"
#include "log.h"
#include "timestamp.h"

/* ---- GET /v1/stream --------------------------------------------------------------- */

int api_stream_get(api_req *rq) {
    const char *events = api_query(rq, "events");
    const char *lei = api_header(rq, "Last-Event-ID");
    const char *tenant = api_tenant(rq);
    struct MHD_Response *resp;
    sse_filter flt;
    char err[HQ_ERRLEN];
    sse_sid after = {0, 0};
    int resuming = 0;
    memset(&flt, 0, sizeof(flt));
    /* The header (EventSource sends it on every reconnect) is newer than the URL's
     * ?last_event_id=, which the same EventSource keeps sending unchanged. */
    if (!lei || !*lei)
        lei = api_query(rq, "last_event_id");
    if (lei && *lei) {
        if (sse_sid_parse(lei, strlen(lei), &after) != HQ_OK)
            return api_problem(rq, 400, "invalid_parameter", "last_event_id",
                               "Last-Event-ID / last_event_id must be a stream id "
                               "<ms>-<seq> as the stream sent it (got '%.60s')",
                               lei);
        resuming = 1;
    }
    if (events && pat_list_parse(events, &flt.want, err, sizeof(err)) != HQ_OK)
        return api_problem(rq, 400, "invalid_parameter", "events", "events: %s", err);
    if (rq->who.kind == AUTH_TOKEN &&
        pat_list_parse(rq->who.events, &flt.allow, err, sizeof(err)) != HQ_OK) {
        sse_filter_clear(&flt);
        return api_problem(rq, 401, "unauthorized", NULL, "stream token: %s", err);
    }
    if (tenant && !(flt.tenant = strdup(tenant))) {
        sse_filter_clear(&flt);
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    }
    resp = stream_hub_open(rq->ctx->hub, rq->conn, &flt, resuming ? &after : NULL, rq->client_ip);
    if (!resp)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    LOG_D("api: stream: %s open (tenant %s, events %s%s%s)", rq->client_ip, tenant ? tenant : "*",
          events ? events : "*", resuming ? ", after " : "", resuming ? lei : "");
    return api_take_response(rq, 200, resp);
}

/* ---- POST /v1/stream/tokens -------------------------------------------------------- */

/* "events": a pattern list as text or an array of patterns -> a parsed list. */
static int token_events(api_req *rq, const json_t *v, pat_list *out) {
    char err[HQ_ERRLEN], buf[AUTH_EVENTS_MAX * 2];
    size_t len = 0;
    if (!v || json_is_null(v))
        return pat_list_parse("*", out, err, sizeof(err));
    if (json_is_string(v)) {
        if (pat_list_parse(json_string_value(v), out, err, sizeof(err)) == HQ_OK)
            return HQ_OK;
        api_problem(rq, 422, "invalid_field", "events", "events: %s", err);
        return HQ_ERR;
    }
    if (!json_is_array(v) || json_array_size(v) == 0) {
        api_problem(rq, 422, "invalid_field", "events",
                    "events must be a pattern list (\"a.*,b\") or a non-empty array of patterns");
        return HQ_ERR;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *p = json_array_get(v, i);
        const char *s = json_string_value(p);
        size_t n = s ? strlen(s) : 0;
        if (!s || !n || strchr(s, ',') || len + n + 2 > sizeof(buf)) {
            api_problem(rq, 422, "invalid_field", "events",
                        !s || !n ? "events[%zu] must be a non-empty pattern"
                                 : "events[%zu]: one pattern per item, and the list fits in %d "
                                   "bytes",
                        i, AUTH_EVENTS_MAX - 1);
            return HQ_ERR;
        }
        if (len)
            buf[len++] = ',';
        memcpy(buf + len, s, n);
        len += n;
        buf[len] = '\0';
    }
    if (pat_list_parse(buf, out, err, sizeof(err)) == HQ_OK)
        return HQ_OK;
    api_problem(rq, 422, "invalid_field", "events", "events: %s", err);
    return HQ_ERR;
}

int api_stream_token(api_req *rq) {
    static const char *const allowed[] = {"events", "ttl", "tenant", NULL};
    const cfg *c = rq->ctx->c;
    int64_t max_s = c->api_stream_token_ttl_ms / 1000, ttl_s = max_s, exp_ms;
    const char *tenant = "";
    char token[AUTH_TOKEN_MAX], err[HQ_ERRLEN], iso[TS_ISO_LEN];
    pat_list pl = {NULL, 0};
    char *joined = NULL;
    json_t *body, *v, *arr = NULL;
    int rc = API_DONE;
    if (max_s < 1)
        max_s = ttl_s = 1;
    if (!(body = api_body_object(rq, 1)))
        return API_DONE;
    if (api_fields_known(rq, body, allowed) != HQ_OK)
        goto cleanup;
    if (token_events(rq, json_object_get(body, "events"), &pl) != HQ_OK)
        goto cleanup;
    if ((v = json_object_get(body, "ttl")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max_s) {
            api_problem(rq, 422, "invalid_field", "ttl",
                        "ttl must be an integer of seconds, 1..%" PRId64 " (api.stream_token_ttl)",
                        max_s);
            goto cleanup;
        }
        ttl_s = json_integer_value(v);
    }
    if (api_tenant(rq))
        tenant = api_tenant(rq);
    v = json_object_get(body, "tenant");
    if (v && json_is_null(v) && !api_is_admin(rq)) {
        /* null is "every tenant", as for endpoints "no tenant": not a tenant key's */
        api_forbidden(rq, "a token for every tenant");
        goto cleanup;
    }
    if (v && !json_is_null(v)) {
        const char *t = json_string_value(v);
        if (!t || envelope_tenant_valid(t, err, sizeof(err)) != HQ_OK ||
            strlen(t) >= AUTH_TENANT_MAX) {
            api_problem(rq, 422, "invalid_field", "tenant",
                        "tenant must be [A-Za-z0-9_.:-], 1..%d characters", AUTH_TENANT_MAX - 1);
            goto cleanup;
        }
        if (!api_is_admin(rq) && strcmp(t, tenant) != 0) {
            api_forbidden(rq, "a token for another tenant");
            goto cleanup;
        }
        tenant = t;
    }
    if (!(joined = pat_list_join(&pl))) {
        api_problem(rq, 500, "internal", NULL, "out of memory");
        goto cleanup;
    }
    if (strlen(joined) >= AUTH_EVENTS_MAX) {
        api_problem(rq, 422, "invalid_field", "events", "events: the pattern list is over %d bytes",
                    AUTH_EVENTS_MAX - 1);
        goto cleanup;
    }
    exp_ms = ts_now_ms() + ttl_s * 1000;
    if (auth_token_make(rq->ctx->keys, tenant, joined, exp_ms, token, sizeof(token)) != HQ_OK) {
        api_problem(rq, 422, "invalid_field", "events", "the token would be too long");
        goto cleanup;
    }
    ts_iso(exp_ms, iso, sizeof(iso));
    arr = json_array();
    for (size_t i = 0; arr && i < pl.n; i++)
        json_array_append_new(arr, json_string(pl.items[i]));
    rc = api_json(rq, 201,
                  arr ? json_pack("{s:s,s:s,s:o,s:o}", "token", token, "expires_at", iso, "events",
                                  arr, "tenant", *tenant ? json_string(tenant) : json_null())
                      : NULL);
cleanup:
    free(joined);
    pat_list_clear(&pl);
    json_decref(body);
    return rc;
}
