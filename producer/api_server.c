/* api_server.c -- see api_server.h. */
#define _GNU_SOURCE
#include "api_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "api_route.h"
#include "cidr.h"
#include "hq.h"
#include "log.h"
#include "timestamp.h"

/* MHD's per-connection pool: it holds the request line and headers (431 beyond) and the
 * read buffer, and MHD clears it for every request, so it is not made larger than the
 * headers need: 64 KiB cost ~5% of the API's CPU in a publish profile. */
#define HEADER_MEMORY (32 * 1024)

struct api_server {
    const cfg *c;
    api_ctx ctx;
    cidr_set *proxies;
    struct MHD_Daemon *d;
    pthread_key_t rkey;
    int rkey_made;
    int port;
    int threads; /* request threads actually started */
};

/* One request's state between MHD's calls of the access handler. */
typedef struct req_state {
    api_req rq;
    char *body;
    size_t len, cap;
    int too_big;
    route_match m;
} req_state;

static int64_t mono_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void rconn_destroy(void *p) {
    rconn_free(p);
}

/* This thread's Redis connection slot (the rconn inside is made by api_redis). */
static rconn **thread_slot(api_server *s) {
    rconn **slot = pthread_getspecific(s->rkey);
    if (!slot) {
        slot = calloc(1, sizeof(*slot));
        if (slot && pthread_setspecific(s->rkey, slot) != 0) {
            free(slot);
            slot = NULL;
        }
    }
    return slot;
}

static void slot_destroy(void *p) {
    rconn **slot = p;
    if (slot) {
        rconn_destroy(*slot);
        free(slot);
    }
}

/* ---- health ------------------------------------------------------------------------ */

int api_health(api_req *rq) {
    redisReply *rep = api_cmdv(rq, (const char *const[]){"PING", NULL});
    if (!rep) {
        /* api_cmd answered 503 (or 5xx): the body says why; keep its shape. */
        return API_DONE;
    }
    freeReplyObject(rep);
    return api_json(
        rq, 200,
        json_pack("{s:s,s:s,s:s}", "status", "ok", "redis", "ok", "version", HOOKQ_VERSION));
}

/* ---- addresses ---------------------------------------------------------------------- */

static void peer_text(struct MHD_Connection *conn, char *buf, size_t len) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    buf[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

/* The client behind trusted proxies: walk X-Forwarded-For from the right, skipping
 * proxies we trust; the first address that is not one is the client. From any other
 * peer the header is ignored (anyone can send it). */
static void client_ip(api_server *s, api_req *rq) {
    const char *xff;
    char list[1024], *p;
    snprintf(rq->client_ip, sizeof(rq->client_ip), "%s", rq->peer);
    if (!cidr_set_size(s->proxies) || !cidr_set_has(s->proxies, rq->peer))
        return;
    xff = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    if (!xff || strlen(xff) >= sizeof(list))
        return;
    snprintf(list, sizeof(list), "%s", xff);
    while ((p = strrchr(list, ',')) || list[0]) {
        char *item = p ? p + 1 : list;
        while (*item == ' ')
            item++;
        size_t n = strlen(item);
        while (n && item[n - 1] == ' ')
            item[--n] = '\0';
        if (n && n < sizeof(rq->client_ip)) {
            snprintf(rq->client_ip, sizeof(rq->client_ip), "%s", item);
            if (!cidr_set_has(s->proxies, item))
                return;
        }
        if (!p)
            return;
        *p = '\0';
    }
}

/* ---- answering through MHD ------------------------------------------------------------ */

static enum MHD_Result send_answer(struct MHD_Connection *conn, api_req *rq) {
    struct MHD_Response *resp;
    enum MHD_Result ok;
    if (rq->custom) {
        resp = rq->custom;
        rq->custom = NULL;
    } else {
        resp = MHD_create_response_from_buffer(rq->resp_len, rq->resp ? rq->resp : (void *)"",
                                               rq->resp ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        rq->resp = NULL; /* MHD owns it now */
        if (rq->resp_type)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rq->resp_type);
    }
    for (size_t i = 0; i < rq->n_hdr; i++)
        MHD_add_response_header(resp, rq->hdr_name[i], rq->hdr_value[i]);
    ok = MHD_queue_response(conn, (unsigned)rq->status, resp);
    MHD_destroy_response(resp);
    if (log_enabled(LOG_DEBUG))
        LOG_D("api: %s %s %d %lldus", rq->method, rq->path, rq->status,
              (long long)(mono_us() - rq->started_us));
    return ok;
}

static void state_free(req_state *st) {
    if (!st)
        return;
    free(st->body);
    free(st->rq.resp);
    for (size_t i = 0; i < st->rq.n_hdr; i++)
        free(st->rq.hdr_value[i]);
    if (st->rq.custom)
        MHD_destroy_response(st->rq.custom);
    free(st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    state_free(*con_cls);
    *con_cls = NULL;
}

static int authenticate(api_server *s, api_req *rq, route_auth need) {
    char why[HQ_ERRLEN];
    const char *token = need == ROUTE_KEY_TOKEN ? api_query(rq, "token") : NULL;
    if (need == ROUTE_OPEN)
        return HQ_OK;
    if (token) {
        if (auth_token_check(s->ctx.keys, token, ts_now_ms(), &rq->who, why, sizeof(why)) == HQ_OK)
            return HQ_OK;
    } else if (auth_bearer(s->ctx.keys, api_header(rq, "Authorization"), &rq->who, why,
                           sizeof(why)) == HQ_OK) {
        if (need == ROUTE_ADMIN && rq->who.kind != AUTH_ADMIN) {
            api_problem(rq, 403, "forbidden", NULL, "this route needs an admin key");
            return HQ_ERR;
        }
        return HQ_OK;
    }
    api_header_add(rq, "WWW-Authenticate", "Bearer realm=\"hookq\"");
    api_problem(rq, 401, "unauthorized", NULL, "%s", why);
    return HQ_ERR;
}

static void dispatch(api_server *s, req_state *st) {
    api_req *rq = &st->rq;
    if (st->m.status == 404) {
        api_problem(rq, 404, "not_found", NULL, "no route %s %.200s", rq->method, rq->path);
        return;
    }
    if (st->m.status == 405) {
        api_header_add(rq, "Allow", st->m.allow);
        api_problem(rq, 405, "method_not_allowed", NULL, "%s is not allowed here (allowed: %s)",
                    rq->method, st->m.allow);
        return;
    }
    if (st->too_big) {
        api_problem(rq, 413, "body_too_large", NULL,
                    "request body is over api.max_body (%llu bytes)",
                    (unsigned long long)s->c->api_max_body);
        return;
    }
    if (authenticate(s, rq, st->m.route->auth) != HQ_OK)
        return;
    rq->route = st->m.route;
    memcpy(rq->params, st->m.params, sizeof(rq->params));
    rq->nparams = st->m.nparams;
    rq->body = st->body;
    rq->body_len = st->len;
    st->m.route->fn(rq);
    if (!rq->answered)
        api_problem(rq, 500, "internal", NULL, "the handler gave no answer");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    api_server *s = cls;
    req_state *st = *con_cls;
    (void)version;
    if (!st) {
        const char *cl;
        if (!(st = calloc(1, sizeof(*st))))
            return MHD_NO;
        *con_cls = st;
        st->rq.conn = conn;
        st->rq.ctx = &s->ctx;
        st->rq.method = method;
        st->rq.path = url;
        st->rq.started_us = mono_us();
        st->rq.rslot = thread_slot(s);
        if (!st->rq.rslot)
            return MHD_NO;
        peer_text(conn, st->rq.peer, sizeof(st->rq.peer));
        client_ip(s, &st->rq);
        route_find(method, url, &st->m);
        /* Refuse an announced oversized body before reading a byte of it. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->c->api_max_body) {
            st->too_big = 1;
            api_problem(&st->rq, 413, "body_too_large", NULL,
                        "request body is over api.max_body (%llu bytes)",
                        (unsigned long long)s->c->api_max_body);
            return send_answer(conn, &st->rq);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_big || st->len + n > s->c->api_max_body) {
            st->too_big = 1; /* keep reading (and dropping) so the answer can be sent */
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < st->len + n + 1)
                cap *= 2;
            char *b = realloc(st->body, cap);
            if (!b)
                return MHD_NO;
            st->body = b;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    if (st->rq.answered) /* the early 413 */
        return MHD_YES;
    dispatch(s, st);
    return send_answer(conn, &st->rq);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char line[512];
    size_t n;
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    LOG_D("api: libmicrohttpd: %s", line);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

api_server *api_server_new(const cfg *c, char *err, size_t errlen) {
    api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    s->c = c;
    s->ctx.c = c;
    s->ctx.prefix = c->redis_prefix;
    if (pthread_key_create(&s->rkey, slot_destroy) != 0) {
        hq_seterr(err, errlen, "pthread_key_create failed");
        goto fail;
    }
    s->rkey_made = 1;
    if (!(s->ctx.keys = auth_keys_new(c, err, errlen)))
        goto fail;
    if (!(s->proxies = cidr_set_new((const char *const *)c->api_trusted_proxies,
                                    c->api_trusted_proxies_len, err, errlen)))
        goto fail;
    s->ctx.proxies = s->proxies;
    if (!(s->ctx.hub = stream_hub_new(&s->ctx, err, errlen)))
        goto fail;
    return s;
fail:
    api_server_free(s);
    return NULL;
}

static int listen_addr(const char *listen, struct sockaddr_storage *ss, int *v6, char *err,
                       size_t errlen) {
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t hl;
    long port;
    memset(ss, 0, sizeof(*ss));
    if (!colon)
        return hq_seterr(err, errlen, "api.listen: '%s' is not HOST:PORT", listen);
    hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return hq_seterr(err, errlen, "api.listen: host too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, NULL, 10);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return hq_seterr(err, errlen, "api.listen: '%s' is not an IPv6 address", host + 1);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = 1;
        return HQ_OK;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return hq_seterr(err, errlen, "api.listen: '%s' is not an IPv4 address (use [v6] for IPv6)",
                         host);
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *v6 = 0;
    return HQ_OK;
}

int api_server_start(api_server *s, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    int v6 = 0;
    unsigned int flags;
    int threads;
    const union MHD_DaemonInfo *di;
    if (listen_addr(s->c->api_listen, &ss, &v6, err, errlen) != HQ_OK)
        return HQ_ERR;
    threads = s->c->api_threads > 0 ? s->c->api_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    s->threads = threads;
    flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
            (v6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->c->api_max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)s->c->api_max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)((s->c->api_idle_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned int)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
    if (!s->d)
        return hq_seterr(err, errlen, "cannot listen on %s: %s", s->c->api_listen,
                         errno ? strerror(errno) : "libmicrohttpd refused to start");
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (stream_hub_start(s->ctx.hub, err, errlen) != HQ_OK) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
        return HQ_ERR;
    }
    return HQ_OK;
}

int api_server_port(const api_server *s) {
    return s->port;
}

int api_server_threads(const api_server *s) {
    return s->threads;
}

void api_server_stop(api_server *s) {
    if (!s)
        return;
    if (s->ctx.hub)
        stream_hub_stop(s->ctx.hub);
    if (s->d) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
    }
}

void api_server_free(api_server *s) {
    if (!s)
        return;
    api_server_stop(s);
    stream_hub_free(s->ctx.hub);
    auth_keys_free(s->ctx.keys);
    cidr_set_free(s->proxies);
    if (s->rkey_made) {
        /* The main thread's slot, if it made one; MHD's threads freed theirs on exit. */
        slot_destroy(pthread_getspecific(s->rkey));
        pthread_setspecific(s->rkey, NULL);
        pthread_key_delete(s->rkey);
    }
    free(s);
}

void api_server_print_routes(FILE *out) {
    for (size_t i = 0; i < route_count(); i++) {
        const api_route *r = route_at(i);
        fprintf(out, "%s %s %s\n", r->method, r->pattern, r->name);
    }
}
