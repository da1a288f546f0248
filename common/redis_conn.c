/* redis_conn.c -- one blocking Redis connection (hiredis 0.14) plus hookq's Lua scripts.
 *
 * The connection is either usable or absent: any I/O error frees nothing right away
 * (a caller may still hold the redisContext from rconn_ctx) but marks the rconn broken, and
 * the next call that needs Redis reconnects once -- AUTH, SELECT and SCRIPT LOAD included,
 * so a fresh connection is always in the same state as the first one. */
#include "redis_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "hq.h"
#include "scripts_gen.h"

#define RQ_WHERE_MAX 300
#define RQ_DB_MAX    1000000

struct rconn {
    rconn_url url;
    char where[RQ_WHERE_MAX];
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    redisContext *ctx;   /* NULL when disconnected */
    int broken;          /* ctx saw an I/O error; freed on the next reconnect */
    unsigned generation; /* connections made so far: an fd number can come back */
    rconn_wait_fn wait;  /* NULL: plain blocking reads */
    void *wait_ud;
};

/* ---- URL parsing ---------------------------------------------------------------- */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string. NUL bytes are refused: they would silently
 * truncate a password. */
static char *pct_decode(const char *s, size_t n, const char *what, char *err, size_t errlen) {
    char *out = malloc(n + 1);
    size_t j = 0;
    if (!out) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        if (i + 2 >= n) {
            free(out);
            hq_seterr(err, errlen, "bad percent-escape in Redis URL %s", what);
            return NULL;
        }
        int h = hexval((unsigned char)s[i + 1]);
        int l = hexval((unsigned char)s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            free(out);
            hq_seterr(err, errlen, "bad percent-escape in Redis URL %s", what);
            return NULL;
        }
        out[j++] = (char)(h * 16 + l);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

/* Parse a decimal number in [lo, hi] from s[0..n). */
static int parse_num(const char *s, size_t n, long lo, long hi, long *out) {
    long v = 0;
    if (n == 0 || n > 9)
        return HQ_ERR;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HQ_ERR;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return HQ_ERR;
    *out = v;
    return HQ_OK;
}

/* userinfo "user:password", ":password" or "password"-less forms. */
static int parse_userinfo(const char *s, size_t n, rconn_url *u, char *err, size_t errlen) {
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return hq_seterr(err, errlen,
                         "Redis URL has a user but no password (write redis://:PASSWORD@host "
                         "or redis://USER:PASSWORD@host)");
    size_t ulen = (size_t)(colon - s);
    if (ulen > 0) {
        u->user = pct_decode(s, ulen, "user", err, errlen);
        if (!u->user)
            return HQ_ERR;
    }
    u->password = pct_decode(colon + 1, n - ulen - 1, "password", err, errlen);
    if (!u->password)
        return HQ_ERR;
    if (u->password[0] == '\0') {
        free(u->password);
        u->password = NULL;
        if (u->user)
            return hq_seterr(err, errlen, "Redis URL has a user but an empty password");
    }
    return HQ_OK;
}

static int parse_tcp(const char *rest, rconn_url *u, char *err, size_t errlen) {
    const char *at = strrchr(rest, '@'); /* last '@': an unescaped one may be in the password */
    const char *hp = rest;
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), u, err, errlen) != HQ_OK)
            return HQ_ERR;
        hp = at + 1;
    }
    const char *slash = strchr(hp, '/');
    size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
    const char *host = hp, *port = NULL;
    size_t hostlen;
    if (hplen > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', hplen);
        if (!close)
            return hq_seterr(err, errlen, "Redis URL: missing ']' after IPv6 address");
        host = hp + 1;
        hostlen = (size_t)(close - host);
        const char *after = close + 1;
        if (after < hp + hplen) {
            if (*after != ':')
                return hq_seterr(err, errlen, "Redis URL: unexpected text after ']'");
            port = after + 1;
        }
    } else {
        const char *colon = memchr(hp, ':', hplen);
        hostlen = colon ? (size_t)(colon - hp) : hplen;
        if (colon)
            port = colon + 1;
    }
    if (hostlen == 0)
        return hq_seterr(err, errlen, "Redis URL: missing host");
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch == '/' || ch == '?' || ch == '#' || ch == '@' || ch >= 0x7f)
            return hq_seterr(err, errlen, "Redis URL: bad character in host");
    }
    u->host = strndup(host, hostlen);
    if (!u->host)
        return hq_seterr(err, errlen, "out of memory");
    if (port) {
        long p;
        size_t plen = (size_t)(hp + hplen - port);
        if (parse_num(port, plen, 1, 65535, &p) != HQ_OK)
            return hq_seterr(err, errlen, "Redis URL: bad port '%.*s' (1..65535)", (int)plen, port);
        u->port = (int)p;
    }
    if (slash && slash[1] != '\0') {
        long db;
        if (parse_num(slash + 1, strlen(slash + 1), 0, RQ_DB_MAX, &db) != HQ_OK)
            return hq_seterr(err, errlen, "Redis URL: bad database '%s' (a number)", slash + 1);
        u->db = (int)db;
    }
    return HQ_OK;
}

static int parse_unix(const char *rest, rconn_url *u, char *err, size_t errlen) {
    /* unix://[[user]:password@]/path[?db=N] */
    const char *p = rest;
    if (*p != '/') {
        const char *at = strrchr(rest, '@');
        if (!at)
            return hq_seterr(err, errlen,
                             "Redis URL: unix socket path must be absolute "
                             "(unix:///path/to/redis.sock)");
        if (parse_userinfo(rest, (size_t)(at - rest), u, err, errlen) != HQ_OK)
            return HQ_ERR;
        p = at + 1;
        if (*p != '/')
            return hq_seterr(err, errlen, "Redis URL: unix socket path must be absolute");
    }
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (plen < 2)
        return hq_seterr(err, errlen, "Redis URL: missing unix socket path");
    u->path = pct_decode(p, plen, "path", err, errlen);
    if (!u->path)
        return HQ_ERR;
    if (q) {
        long db;
        if (strncmp(q + 1, "db=", 3) != 0)
            return hq_seterr(err, errlen, "Redis URL: unknown query '%s' (only ?db=N)", q + 1);
        if (parse_num(q + 4, strlen(q + 4), 0, RQ_DB_MAX, &db) != HQ_OK)
            return hq_seterr(err, errlen, "Redis URL: bad database '%s' (a number)", q + 4);
        u->db = (int)db;
    }
    return HQ_OK;
}

int rconn_url_parse(const char *url, rconn_url *out, char *err, size_t errlen) {
    rconn_url u = {.port = 6379};
    int rc;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url)
        return hq_seterr(err, errlen, "Redis URL is empty");
    if (strncmp(url, "redis://", 8) == 0)
        rc = parse_tcp(url + 8, &u, err, errlen);
    else if (strncmp(url, "unix://", 7) == 0)
        rc = parse_unix(url + 7, &u, err, errlen);
    else if (strncmp(url, "rediss://", 9) == 0)
        rc = hq_seterr(err, errlen, "Redis URL: TLS (rediss://) is not supported");
    else
        rc = hq_seterr(err, errlen, "Redis URL must start with redis:// or unix://");
    if (rc != HQ_OK) {
        rconn_url_clear(&u);
        return HQ_ERR;
    }
    *out = u;
    return HQ_OK;
}

void rconn_url_clear(rconn_url *u) {
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    if (u->password) {
        /* Best effort: do not leave the password lying in freed heap memory. */
        volatile char *p = u->password;
        while (*p)
            *p++ = 0;
        free(u->password);
    }
    memset(u, 0, sizeof(*u));
    u->port = 6379;
}

void rconn_url_where(const rconn_url *u, char *buf, size_t len) {
    if (!len)
        return;
    if (u->path)
        snprintf(buf, len, "%s", u->path);
    else if (u->host && strchr(u->host, ':'))
        snprintf(buf, len, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, len, "%s:%d", u->host ? u->host : "?", u->port);
}

char *rconn_url_masked(const char *url) {
    if (!url)
        return NULL;
    const char *sch = strstr(url, "://");
    const char *rest = sch ? sch + 3 : NULL;
    const char *at = rest ? strrchr(rest, '@') : NULL;
    if (!at)
        return strdup(url);
    /* Keep the user (not a secret, useful when debugging), hide everything else. */
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    size_t keep = colon ? (size_t)(colon + 1 - url) : (size_t)(rest - url);
    size_t n = keep + 4 + strlen(at) + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    snprintf(out, n, "%.*s****%s", (int)keep, url, at);
    return out;
}

/* ---- connection ----------------------------------------------------------------- */

static struct timeval ms_tv(int64_t ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* hiredis reports a read timeout as EAGAIN's text; say what happened instead. */
static const char *ctx_errstr(const redisContext *c) {
    if (c->err == REDIS_ERR_IO &&
        (strstr(c->errstr, "temporarily unavailable") || strstr(c->errstr, "would block")))
        return "timed out";
    return c->errstr[0] ? c->errstr : "connection lost";
}

static int load_one(redisContext *c, const char *where, const rconn_script *s, char *err,
                    size_t errlen) {
    redisReply *rep = redisCommand(c, "SCRIPT LOAD %s", s->src);
    int rc = HQ_ERR;
    if (!rep) {
        hq_seterr(err, errlen, "Redis at %s: SCRIPT LOAD %s: %s", where, s->name, ctx_errstr(c));
        goto cleanup;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        hq_seterr(err, errlen, "Redis at %s: SCRIPT LOAD %s failed: %s", where, s->name, rep->str);
        goto cleanup;
    }
    if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, s->sha) != 0) {
        /* The build computes the sha; a mismatch means EVALSHA would never find it. */
        hq_seterr(err, errlen,
                  "Redis at %s: SCRIPT LOAD %s answered sha %s but the build computed %s", where,
                  s->name, rep->type == REDIS_REPLY_STRING ? rep->str : "(not a string)", s->sha);
        goto cleanup;
    }
    rc = HQ_OK;
cleanup:
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static int load_all(redisContext *c, const char *where, char *err, size_t errlen) {
    for (size_t i = 0; scripts_all[i]; i++)
        if (load_one(c, where, scripts_all[i], err, errlen) != HQ_OK)
            return HQ_ERR;
    return HQ_OK;
}

/* One command on a raw context during the handshake; errors name the step. */
static int handshake_cmd(redisContext *c, const char *where, const char *step, int argc,
                         const char **argv, char *err, size_t errlen) {
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep)
        return hq_seterr(err, errlen, "Redis at %s: %s: %s", where, step, ctx_errstr(c));
    int rc = HQ_OK;
    if (rep->type == REDIS_REPLY_ERROR)
        rc = hq_seterr(err, errlen, "Redis at %s: %s failed: %s", where, step, rep->str);
    freeReplyObject(rep);
    return rc;
}

static void drop_ctx(rconn *r) {
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
    r->broken = 0;
}

static int do_connect(rconn *r, char *err, size_t errlen) {
    redisContext *c;
    drop_ctx(r);
    if (r->url.path)
        c = r->connect_timeout_ms > 0
                ? redisConnectUnixWithTimeout(r->url.path, ms_tv(r->connect_timeout_ms))
                : redisConnectUnix(r->url.path);
    else
        c = r->connect_timeout_ms > 0
                ? redisConnectWithTimeout(r->url.host, r->url.port, ms_tv(r->connect_timeout_ms))
                : redisConnect(r->url.host, r->url.port);
    if (!c)
        return hq_seterr(err, errlen, "cannot connect to Redis at %s: out of memory", r->where);
    if (c->err) {
        hq_seterr(err, errlen, "cannot connect to Redis at %s: %s", r->where, ctx_errstr(c));
        goto fail;
    }
    if (r->command_timeout_ms > 0 && redisSetTimeout(c, ms_tv(r->command_timeout_ms)) != REDIS_OK) {
        hq_seterr(err, errlen, "Redis at %s: cannot set timeout: %s", r->where, ctx_errstr(c));
        goto fail;
    }
    if (r->url.password) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        if (r->url.user) {
            if (handshake_cmd(c, r->where, "AUTH", 3, argv, err, errlen) != HQ_OK)
                goto fail;
        } else {
            argv[1] = r->url.password;
            if (handshake_cmd(c, r->where, "AUTH", 2, argv, err, errlen) != HQ_OK)
                goto fail;
        }
    }
    if (r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        const char *argv[2] = {"SELECT", db};
        char step[32];
        snprintf(step, sizeof(step), "SELECT %d", r->url.db);
        if (handshake_cmd(c, r->where, step, 2, argv, err, errlen) != HQ_OK)
            goto fail;
    }
    if (load_all(c, r->where, err, errlen) != HQ_OK)
        goto fail;
    r->ctx = c;
    r->generation++;
    return HQ_OK;
fail:
    redisFree(c);
    return HQ_ERR;
}

rconn *rconn_connect(const char *url, int64_t connect_timeout_ms, int64_t command_timeout_ms,
                     char *err, size_t errlen) {
    rconn *r = calloc(1, sizeof(*r));
    if (!r) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (rconn_url_parse(url, &r->url, err, errlen) != HQ_OK)
        goto fail;
    rconn_url_where(&r->url, r->where, sizeof(r->where));
    r->connect_timeout_ms = connect_timeout_ms;
    r->command_timeout_ms = command_timeout_ms;
    if (do_connect(r, err, errlen) != HQ_OK)
        goto fail;
    return r;
fail:
    rconn_free(r);
    return NULL;
}

void rconn_free(rconn *r) {
    if (!r)
        return;
    drop_ctx(r);
    rconn_url_clear(&r->url);
    free(r);
}

int rconn_reconnect(rconn *r, char *err, size_t errlen) {
    return do_connect(r, err, errlen);
}

int rconn_connected(const rconn *r) {
    return r && r->ctx && !r->broken && !r->ctx->err;
}

/* Reconnect if needed (one attempt). */
static int ensure(rconn *r, char *err, size_t errlen) {
    if (rconn_connected(r))
        return HQ_OK;
    return do_connect(r, err, errlen);
}

redisContext *rconn_ctx(rconn *r) {
    /* Callers building pipelines have no err buffer here; they see the failure as a NULL
     * context (and rconn_reconnect reports why). */
    if (ensure(r, NULL, 0) != HQ_OK)
        return NULL;
    return r->ctx;
}

const char *rconn_where(const rconn *r) {
    return r->where;
}

void rconn_set_broken(rconn *r) {
    /* Not freed here: the caller may still hold the context it got from rconn_ctx. */
    if (r)
        r->broken = 1;
}

/* After a NULL reply: report, and leave the rconn disconnected. */
static redisReply *io_fail(rconn *r, char *err, size_t errlen) {
    hq_seterr(err, errlen, "Redis at %s: %s", r->where,
              r->ctx ? ctx_errstr(r->ctx) : "no connection");
    r->broken = 1;
    return NULL;
}

void rconn_set_wait(rconn *r, rconn_wait_fn fn, void *ud) {
    r->wait = fn;
    r->wait_ud = ud;
}

unsigned rconn_generation(const rconn *r) {
    return r ? r->generation : 0;
}

int rconn_fd(const rconn *r) {
    return r && r->ctx ? r->ctx->fd : -1;
}

/* Write everything hiredis has buffered. The socket is blocking: a write waits only
 * while Redis's receive buffer is full, which a reading Redis empties at once. */
static int flush_out(redisContext *c) {
    int done = 0;
    do {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return REDIS_ERR;
    } while (!done);
    return REDIS_OK;
}

int rconn_get_reply(rconn *r, void **reply) {
    redisContext *c = r->ctx;
    *reply = NULL;
    if (!c)
        return REDIS_ERR;
    if (!r->wait)
        return redisGetReply(c, reply);
    if (redisGetReplyFromReader(c, reply) != REDIS_OK)
        return REDIS_ERR;
    if (*reply)
        return REDIS_OK;
    if (flush_out(c) != REDIS_OK)
        return REDIS_ERR;
    for (;;) {
        if (redisGetReplyFromReader(c, reply) != REDIS_OK)
            return REDIS_ERR;
        if (*reply)
            return REDIS_OK;
        int w = r->wait(r->wait_ud, c->fd, r->command_timeout_ms > 0 ? r->command_timeout_ms : -1);
        if (w <= 0) {
            c->err = REDIS_ERR_IO;
            snprintf(c->errstr, sizeof c->errstr, "%s", w == 0 ? "timed out" : "wait failed");
            return REDIS_ERR;
        }
        if (redisBufferRead(c) != REDIS_OK)
            return REDIS_ERR;
    }
}

int rconn_read_some(rconn *r) {
    if (!r->ctx || redisBufferRead(r->ctx) != REDIS_OK) {
        r->broken = 1;
        return HQ_ERR;
    }
    return HQ_OK;
}

int rconn_take_reply(rconn *r, void **reply) {
    *reply = NULL;
    if (!r->ctx || redisGetReplyFromReader(r->ctx, reply) != REDIS_OK) {
        r->broken = 1;
        return HQ_ERR;
    }
    return HQ_OK;
}

int rconn_flush(rconn *r) {
    if (!r->ctx || flush_out(r->ctx) != REDIS_OK) {
        r->broken = 1;
        return HQ_ERR;
    }
    return HQ_OK;
}

static redisReply *finish_cmd(rconn *r, int appended, char *err, size_t errlen) {
    void *rep = NULL;
    if (appended != REDIS_OK) {
        hq_seterr(err, errlen, "out of memory building a Redis command");
        r->broken = 1; /* a half-appended command must not go out with the next */
        return NULL;
    }
    if (rconn_get_reply(r, &rep) != REDIS_OK || !rep)
        return io_fail(r, err, errlen);
    return rep;
}

redisReply *rconn_cmd(rconn *r, char *err, size_t errlen, const char *fmt, ...) {
    if (ensure(r, err, errlen) != HQ_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(r->ctx, fmt, ap);
    va_end(ap);
    return finish_cmd(r, rc, err, errlen);
}

redisReply *rconn_cmdargv(rconn *r, int argc, const char **argv, const size_t *argvlen, char *err,
                          size_t errlen) {
    if (ensure(r, err, errlen) != HQ_OK)
        return NULL;
    return finish_cmd(r, redisAppendCommandArgv(r->ctx, argc, argv, argvlen), err, errlen);
}

int rconn_is_noscript(const redisReply *reply) {
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str &&
           strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* Build "EVALSHA sha numkeys args..." into freshly allocated arrays. */
static int eval_argv(const rconn_script *s, int numkeys, int argc, const char **argv,
                     const size_t *argvlen, char *nk, size_t nklen, const char ***oargv,
                     size_t **olen) {
    const char **a = malloc(sizeof(*a) * (size_t)(argc + 3));
    size_t *l = malloc(sizeof(*l) * (size_t)(argc + 3));
    if (!a || !l) {
        free(a);
        free(l);
        return HQ_ERR;
    }
    snprintf(nk, nklen, "%d", numkeys);
    a[0] = "EVALSHA";
    l[0] = 7;
    a[1] = s->sha;
    l[1] = strlen(s->sha);
    a[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        a[i + 3] = argv[i];
        l[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    *oargv = a;
    *olen = l;
    return HQ_OK;
}

redisReply *rconn_eval(rconn *r, const rconn_script *s, int numkeys, int argc, const char **argv,
                       const size_t *argvlen, char *err, size_t errlen) {
    const char **a = NULL;
    size_t *l = NULL;
    char nk[16];
    redisReply *rep = NULL;
    if (eval_argv(s, numkeys, argc, argv, argvlen, nk, sizeof(nk), &a, &l) != HQ_OK) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    rep = rconn_cmdargv(r, argc + 3, a, l, err, errlen);
    if (rconn_is_noscript(rep)) {
        /* Redis restarted or SCRIPT FLUSH ran since we connected: load and retry once. */
        freeReplyObject(rep);
        rep = NULL;
        if (load_one(r->ctx, r->where, s, err, errlen) != HQ_OK) {
            if (r->ctx->err)
                r->broken = 1;
            goto cleanup;
        }
        rep = rconn_cmdargv(r, argc + 3, a, l, err, errlen);
    }
cleanup:
    free(a);
    free(l);
    return rep;
}

int rconn_load_scripts(rconn *r, char *err, size_t errlen) {
    if (ensure(r, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (load_all(r->ctx, r->where, err, errlen) != HQ_OK) {
        if (r->ctx->err)
            r->broken = 1;
        return HQ_ERR;
    }
    return HQ_OK;
}
