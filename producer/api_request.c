/* api_request.c -- what api.h gives a route handler: reading the request, answering it,
 * and Redis with outages turned into 503s. */
#include "api.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "hq.h"
#include "log.h"
#include "timestamp.h"

#define REDIS_DOWN_MS 1000 /* after an outage is seen, answer 503 at once this long */

const char *api_param(const api_req *rq, size_t i) {
    return i < rq->nparams && rq->params[i] ? rq->params[i] : "";
}

const char *api_query(const api_req *rq, const char *name) {
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(const api_req *rq, const char *name) {
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* ---- answers ---------------------------------------------------------------------- */

static void answer_reset(api_req *rq) {
    free(rq->resp);
    rq->resp = NULL;
    rq->resp_len = 0;
}

int api_json(api_req *rq, int status, json_t *j) {
    char *text;
    if (!j)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    answer_reset(rq);
    rq->status = status;
    rq->resp = text;
    rq->resp_len = strlen(text);
    rq->resp_type = "application/json";
    rq->answered = 1;
    return API_DONE;
}

static const char *status_title(int status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Error";
    }
}

int api_problem(api_req *rq, int status, const char *code, const char *field, const char *fmt,
                ...) {
    char detail[1024], type[96];
    va_list ap;
    json_t *j;
    char *text;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(type, sizeof(type), "urn:hookq:problem:%s", code);
    j = json_pack("{s:s,s:s,s:i,s:s,s:s}", "type", type, "title", status_title(status), "status",
                  status, "code", code, "detail", detail);
    if (j && field)
        json_object_set_new(j, "field", json_string(field));
    text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    answer_reset(rq);
    rq->status = status;
    rq->resp = text; /* NULL (OOM): the server answers with an empty body */
    rq->resp_len = text ? strlen(text) : 0;
    rq->resp_type = "application/problem+json";
    rq->answered = 1;
    if (status >= 500)
        LOG_W("api: %s %s -> %d %s: %s", rq->method, rq->path, status, code, detail);
    return API_DONE;
}

int api_empty(api_req *rq, int status) {
    answer_reset(rq);
    rq->status = status;
    rq->resp_type = NULL;
    rq->answered = 1;
    return API_DONE;
}

void api_header_add(api_req *rq, const char *name, const char *value) {
    if (rq->n_hdr >= API_HEADERS_MAX)
        return;
    char *v = strdup(value);
    if (!v)
        return;
    rq->hdr_name[rq->n_hdr] = name;
    rq->hdr_value[rq->n_hdr++] = v;
}

int api_take_response(api_req *rq, int status, struct MHD_Response *resp) {
    answer_reset(rq);
    if (rq->custom)
        MHD_destroy_response(rq->custom);
    rq->custom = resp;
    rq->status = status;
    rq->answered = 1;
    return API_DONE;
}

/* ---- bodies, fields, pages ---------------------------------------------------------- */

json_t *api_body_object(api_req *rq, int empty_ok) {
    const char *ct = api_header(rq, "Content-Type");
    json_error_t e;
    json_t *j;
    if (!rq->body || rq->body_len == 0) {
        if (empty_ok)
            return json_object();
        api_problem(rq, 400, "invalid_json", NULL, "a JSON object body is required");
        return NULL;
    }
    /* A JSON body is application/json (any parameters) or +json; none given is taken as
     * JSON, as curl -d sends form encoding by default and a clear 415 helps there. */
    if (ct && strncasecmp(ct, "application/json", 16) != 0 && !strstr(ct, "+json")) {
        api_problem(rq, 415, "unsupported_media_type", NULL,
                    "Content-Type must be application/json (got '%.100s')", ct);
        return NULL;
    }
    j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        api_problem(rq, 400, "invalid_json", NULL, "body is not valid JSON: %s (line %d)", e.text,
                    e.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_problem(rq, 400, "invalid_json", NULL, "body must be a JSON object");
        return NULL;
    }
    return j;
}

int api_fields_known(api_req *rq, const json_t *obj, const char *const *allowed) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i;
        (void)v;
        for (i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], k) == 0)
                break;
        if (!allowed[i]) {
            api_problem(rq, 422, "unknown_field", k, "unknown field '%.100s'", k);
            return HQ_ERR;
        }
    }
    return HQ_OK;
}

int api_limit(api_req *rq, size_t *limit) {
    const char *s = api_query(rq, "limit");
    char *end;
    long v;
    *limit = API_LIMIT_DEFAULT;
    if (!s)
        return HQ_OK;
    v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > API_LIMIT_MAX) {
        api_problem(rq, 400, "invalid_parameter", "limit", "limit must be an integer 1..%d",
                    API_LIMIT_MAX);
        return HQ_ERR;
    }
    *limit = (size_t)v;
    return HQ_OK;
}

int api_cursor(api_req *rq, char *buf, size_t len) {
    const char *s = api_query(rq, "cursor");
    int dl;
    buf[0] = '\0';
    if (!s || !*s)
        return HQ_OK;
    dl = strlen(s) > 400 || len < 2
             ? -1
             : auth_b64url_decode(s, strlen(s), (unsigned char *)buf, len - 1);
    /* no NULs and not empty: cursors are our own text */
    if (dl <= 0 || memchr(buf, '\0', (size_t)dl)) {
        buf[0] = '\0';
        api_problem(rq, 400, "invalid_cursor", "cursor",
                    "cursor is not one this API returned (pass next_cursor as it came)");
        return HQ_ERR;
    }
    buf[dl] = '\0';
    return HQ_OK;
}

json_t *api_cursor_json(const char *text) {
    char out[600];
    size_t n = strlen(text);
    if (n > 400 || auth_b64url_encode((const unsigned char *)text, n, out, sizeof(out)) != HQ_OK)
        return json_null();
    return json_string(out);
}

json_t *api_page(json_t *data, const char *next) {
    json_t *j = json_object();
    if (!j) {
        json_decref(data);
        return NULL;
    }
    json_object_set_new(j, "data", data ? data : json_array());
    json_object_set_new(j, "next_cursor", next ? api_cursor_json(next) : json_null());
    return j;
}

/* ---- who ------------------------------------------------------------------------------ */

int api_is_admin(const api_req *rq) {
    return rq->who.kind == AUTH_ADMIN || (rq->who.kind == AUTH_TOKEN && !rq->who.tenant[0]);
}

const char *api_tenant(const api_req *rq) {
    if ((rq->who.kind == AUTH_TENANT || rq->who.kind == AUTH_TOKEN) && rq->who.tenant[0])
        return rq->who.tenant;
    return NULL;
}

int api_tenant_allowed(const api_req *rq, const char *tenant) {
    const char *mine = api_tenant(rq);
    if (api_is_admin(rq))
        return 1;
    return mine && tenant && strcmp(mine, tenant) == 0;
}

int api_forbidden(api_req *rq, const char *what) {
    const char *t = api_tenant(rq);
    return api_problem(rq, 403, "forbidden", NULL, "%s: this key is bound to tenant %s", what,
                       t ? t : "(none)");
}

/* ---- Redis ------------------------------------------------------------------------------ */

static int unavailable(api_req *rq, const char *why) {
    api_header_add(rq, "Retry-After", "1");
    return api_problem(rq, 503, "redis_unavailable", NULL, "Redis is unavailable: %s", why);
}

void api_redis_down(api_req *rq) {
    atomic_store((_Atomic int64_t *)&rq->ctx->redis_down_until, ts_now_ms() + REDIS_DOWN_MS);
}

rconn *api_redis(api_req *rq) {
    char err[HQ_ERRLEN];
    int64_t until = atomic_load((_Atomic int64_t *)&rq->ctx->redis_down_until);
    rconn *r = *rq->rslot;
    const cfg *c = rq->ctx->c;
    if (r && rconn_connected(r))
        return r;
    /* Another thread just failed to reach Redis: answer at once rather than have every
     * request wait out its own connect timeout. */
    if (until > ts_now_ms()) {
        unavailable(rq, "a recent attempt failed; retrying shortly");
        return NULL;
    }
    if (!r) {
        r = rconn_connect(c->redis_url, c->redis_connect_timeout_ms, c->redis_command_timeout_ms,
                          err, sizeof(err));
        if (!r) {
            api_redis_down(rq);
            unavailable(rq, err);
            return NULL;
        }
        *rq->rslot = r;
        return r;
    }
    if (rconn_reconnect(r, err, sizeof(err)) != HQ_OK) {
        api_redis_down(rq);
        unavailable(rq, err);
        return NULL;
    }
    return r;
}

static int is_oom(const redisReply *rep) {
    return rep->str && (strncmp(rep->str, "OOM", 3) == 0 || strstr(rep->str, "OOM command"));
}

static redisReply *checked(api_req *rq, redisReply *rep, const char *err) {
    if (!rep) {
        api_redis_down(rq);
        unavailable(rq, err);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        if (is_oom(rep)) {
            api_header_add(rq, "Retry-After", "5");
            api_problem(rq, 507, "redis_full", NULL,
                        "Redis is out of memory (maxmemory); nothing was written");
        } else {
            api_problem(rq, 500, "redis_error", NULL, "Redis: %.300s",
                        rep->str ? rep->str : "error");
        }
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

redisReply *api_cmd(api_req *rq, int argc, const char **argv, const size_t *argvlen) {
    char err[HQ_ERRLEN] = "";
    rconn *r = api_redis(rq);
    if (!r)
        return NULL;
    return checked(rq, rconn_cmdargv(r, argc, argv, argvlen, err, sizeof(err)), err);
}

redisReply *api_cmdv(api_req *rq, const char *const *argv) {
    const char *a[64];
    int n = 0;
    while (argv[n] && n < 64) {
        a[n] = argv[n];
        n++;
    }
    return api_cmd(rq, n, a, NULL);
}

redisReply *api_eval(api_req *rq, const rconn_script *s, int numkeys, int argc, const char **argv,
                     const size_t *argvlen) {
    char err[HQ_ERRLEN] = "";
    rconn *r = api_redis(rq);
    if (!r)
        return NULL;
    return checked(rq, rconn_eval(r, s, numkeys, argc, argv, argvlen, err, sizeof(err)), err);
}

int api_redis_failed(api_req *rq, const char *err) {
    if (!*rq->rslot || !rconn_connected(*rq->rslot)) {
        api_redis_down(rq);
        return unavailable(rq, err);
    }
    return api_problem(rq, 500, "redis_error", NULL, "%s", err);
}
