/* api.h -- hookq-api: what a route handler gets and how it answers (docs/api.md).
 *
 * The server (api_server.c) owns the HTTP side (libmicrohttpd, limits, bodies, auth) and
 * calls one handler per request with an api_req. A handler reads the request through the
 * api_* accessors, talks to Redis through api_cmd/api_eval (which turn a Redis outage into
 * 503 + Retry-After), and ends by setting exactly one answer: api_json, api_problem,
 * api_empty, or (the SSE stream) api_take_response. It returns API_DONE. A handler that
 * returns without an answer gets a 500 "internal" problem, so a bug never hangs a client.
 *
 * Errors have one shape everywhere: RFC 7807 application/problem+json
 *   {"type":"urn:hookq:problem:<code>","title":...,"status":422,"code":"<code>",
 *    "detail":"...","field":"url"}
 * with a stable code (docs/api.md lists them). Lists have one shape everywhere:
 *   {"data":[...],"next_cursor":"<opaque>"|null}, ?limit=1..API_LIMIT_MAX (default
 *   API_LIMIT_DEFAULT), ?cursor= from the previous page.
 *
 * Threads: requests run on api.threads threads; each has its own Redis connection, so
 * an api_req and its rconn are never shared. The cfg and keys are read-only. */
#ifndef HQ_API_H
#define HQ_API_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include "api_auth.h"
#include "config.h"
#include "redis_conn.h"

#define API_DONE 0

#define API_PARAMS_MAX    4
#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX     1000
#define API_HEADERS_MAX   8

struct MHD_Connection;
struct MHD_Response;
typedef struct stream_hub stream_hub; /* api_stream.c */
typedef struct api_route api_route;   /* api_route.h */

/* Server-wide state: read-only once the server runs, except the atomics. */
typedef struct api_ctx {
    const cfg *c;
    auth_keys *keys;
    stream_hub *hub;
    const char *prefix;             /* c->redis_prefix */
    int64_t redis_down_until;       /* unix ms; requests before it get 503 at once (atomic) */
    const struct cidr_set *proxies; /* api.trusted_proxies, parsed */
} api_ctx;

typedef struct api_req {
    /* request */
    struct MHD_Connection *conn;
    api_ctx *ctx;
    rconn **rslot; /* this thread's Redis connection (may be NULL): use api_redis() */
    const char *method;
    const char *path;
    const api_route *route;
    const char *params[API_PARAMS_MAX]; /* path parameters, in pattern order */
    size_t nparams;
    const char *body; /* body_len bytes, NUL-terminated; NULL if none */
    size_t body_len;
    auth_who who;       /* the caller (auth.kind AUTH_NONE on routes without auth) */
    char peer[64];      /* the socket's peer address, text */
    char client_ip[64]; /* peer, or X-Forwarded-For's client when peer is a trusted proxy */
    int64_t started_us; /* monotonic */
    /* answer */
    int status;
    char *resp; /* malloc'd body */
    size_t resp_len;
    const char *resp_type;
    const char *hdr_name[API_HEADERS_MAX];
    char *hdr_value[API_HEADERS_MAX];
    size_t n_hdr;
    struct MHD_Response *custom; /* api_take_response */
    int answered;
} api_req;

/* ---- reading the request ---- */
const char *api_param(const api_req *rq, size_t i);          /* path parameter i, or "" */
const char *api_query(const api_req *rq, const char *name);  /* ?name=, NULL if absent */
const char *api_header(const api_req *rq, const char *name); /* case-insensitive, or NULL */

/* The body as a JSON object. NULL with the answer set when it is not: 400 invalid_json
 * (not JSON, not an object), 415 unsupported_media_type (a Content-Type other than JSON).
 * An empty body is {} when empty_ok, else 400 invalid_json. New reference. */
json_t *api_body_object(api_req *rq, int empty_ok);

/* Refuse fields not in allowed (NULL-terminated): HQ_OK, or HQ_ERR with a 422
 * unknown_field problem naming the first one ("unknown field 'colour'"). */
int api_fields_known(api_req *rq, const json_t *obj, const char *const *allowed);

/* ?limit=: API_LIMIT_DEFAULT when absent; HQ_ERR with 400 invalid_parameter when not an
 * integer in 1..API_LIMIT_MAX. */
int api_limit(api_req *rq, size_t *limit);
/* ?cursor= decoded into buf (it is opaque to clients: base64url of our own text). 0
 * when absent (buf ""); HQ_ERR with 400 invalid_cursor when it does not decode. */
int api_cursor(api_req *rq, char *buf, size_t len);
/* The opaque cursor for text (a stream id, an object id), as a new JSON string. */
json_t *api_cursor_json(const char *text);
/* {"data": data, "next_cursor": next or null}: data is stolen, next may be NULL. */
json_t *api_page(json_t *data, const char *next);

/* ---- who may do what ---- */
int api_is_admin(const api_req *rq);
/* Whether the caller may see or change an object of tenant (NULL/"" = no tenant):
 * admins always; tenant keys only their own tenant. */
int api_tenant_allowed(const api_req *rq, const char *tenant);
/* 403 forbidden ("this key is bound to tenant acme"); returns API_DONE. */
int api_forbidden(api_req *rq, const char *what);
/* The caller's tenant for a tenant key, else NULL. */
const char *api_tenant(const api_req *rq);

/* ---- answering ---- */
/* status + JSON body (j stolen; NULL j means out of memory: 500). Returns API_DONE. */
int api_json(api_req *rq, int status, json_t *j);
/* problem+json; field may be NULL. Returns API_DONE. */
int api_problem(api_req *rq, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int api_empty(api_req *rq, int status); /* no body (204) */
/* Add a response header (value copied). At most API_HEADERS_MAX. */
void api_header_add(api_req *rq, const char *name, const char *value);
/* The handler built its own MHD response (SSE); the server queues it and releases it. */
int api_take_response(api_req *rq, int status, struct MHD_Response *resp);

/* ---- Redis ---- */
/* This thread's connection, connected; NULL with 503 redis_unavailable + Retry-After set
 * when Redis cannot be reached (then, for a second, other requests fail fast too). */
rconn *api_redis(api_req *rq);
/* Run a command / script. A reply that is not an error, or NULL with the answer set:
 * 503 redis_unavailable (I/O, timeout), 507 redis_full (maxmemory), 500 redis_error.
 * The caller frees the reply. */
redisReply *api_cmd(api_req *rq, int argc, const char **argv, const size_t *argvlen);
redisReply *api_cmdv(api_req *rq, const char *const *argv); /* NULL-terminated strings */
redisReply *api_eval(api_req *rq, const rconn_script *s, int numkeys, int argc, const char **argv,
                     const size_t *argvlen);
/* After a common/ function (ep_load, ep_save ...) failed with err: 503 if the connection
 * dropped, else 500 with err. Returns API_DONE. */
int api_redis_failed(api_req *rq, const char *err);
/* Note an I/O failure seen outside api_cmd (a pipeline): starts the fail-fast second. */
void api_redis_down(api_req *rq);

/* ---- route handlers (one file per group) ---- */
int api_health(api_req *rq); /* api_server.c */

int api_endpoint_list(api_req *rq); /* api_endpoints.c */
int api_endpoint_create(api_req *rq);
int api_endpoint_get(api_req *rq);
int api_endpoint_patch(api_req *rq);
int api_endpoint_delete(api_req *rq);
int api_endpoint_enable(api_req *rq);
int api_endpoint_disable(api_req *rq);
int api_endpoint_rotate(api_req *rq);
int api_endpoint_test(api_req *rq);
int api_endpoint_deliveries(api_req *rq);
int api_endpoint_recover(api_req *rq);

int api_event_publish(api_req *rq); /* api_events.c */
int api_event_get(api_req *rq);
int api_event_retry(api_req *rq);
int api_dead_list(api_req *rq);
int api_dead_replay(api_req *rq);

int api_source_list(api_req *rq); /* api_sources.c */
int api_source_create(api_req *rq);
int api_source_get(api_req *rq);
int api_source_patch(api_req *rq);
int api_source_delete(api_req *rq);
int api_source_payloads(api_req *rq);
int api_source_payload_get(api_req *rq);
int api_inbound(api_req *rq);

int api_stream_get(api_req *rq); /* api_stream.c */
int api_stream_token(api_req *rq);

/* The live-stream hub (api_stream.c): one Redis read loop for every SSE client. Started
 * after the HTTP daemon, stopped before it. */
stream_hub *stream_hub_new(api_ctx *ctx, char *err, size_t errlen);
int stream_hub_start(stream_hub *h, char *err, size_t errlen);
void stream_hub_stop(stream_hub *h); /* ends every stream; NULL-safe */
void stream_hub_free(stream_hub *h); /* NULL-safe */

#endif
