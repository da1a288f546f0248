/* redis_link.c -- see redis_link.h. A thin layer over common/redis_conn.c and
 * common/pipeline.c whose one job is to turn every failure into a link_kind. */
#include "redis_link.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "redis_conn.h"

struct redis_link {
    const cfg *c;
    rconn *r;
    int up;
    link_wait_fn wait;
    void *wait_ud;
};

const char *link_kind_name(link_kind k) {
    static const char *const names[] = {[LINK_OK] = "ok",
                                        [LINK_IO] = "io",
                                        [LINK_OOM] = "oom",
                                        [LINK_NOGROUP] = "nogroup",
                                        [LINK_BUSYGROUP] = "busygroup",
                                        [LINK_NOSCRIPT] = "noscript",
                                        [LINK_ERR] = "error"};
    return (unsigned)k < sizeof names / sizeof names[0] && names[k] ? names[k] : "unknown";
}

redis_link *link_new(const cfg *c) {
    redis_link *l = calloc(1, sizeof *l);
    if (l)
        l->c = c;
    return l;
}

void link_free(redis_link *l) {
    if (!l)
        return;
    rconn_free(l->r);
    free(l);
}

int link_connect(redis_link *l, char *err, size_t errlen) {
    int ok;
    if (!l->r) {
        l->r = rconn_connect(l->c->redis_url, l->c->redis_connect_timeout_ms,
                             l->c->redis_command_timeout_ms, err, errlen);
        ok = l->r != NULL;
        if (ok)
            rconn_set_wait(l->r, l->wait, l->wait_ud);
    } else {
        ok = rconn_reconnect(l->r, err, errlen) == HQ_OK;
    }
    l->up = ok;
    return ok ? HQ_OK : HQ_ERR;
}

void link_down(redis_link *l) {
    l->up = 0;
    if (l->r)
        rconn_set_broken(l->r);
}

int link_is_up(const redis_link *l) {
    return l->up && l->r && rconn_connected(l->r);
}

const char *link_where(const redis_link *l) {
    return l->r ? rconn_where(l->r) : "";
}

struct rconn *link_conn(redis_link *l) {
    return l->r;
}

link_kind link_exec(redis_link *l, pipeline *p, char *err, size_t errlen) {
    if (!link_is_up(l)) {
        hq_seterr(err, errlen, "not connected to Redis");
        return LINK_IO;
    }
    if (pipeline_exec(p, l->r, err, errlen) != HQ_OK) {
        /* pipeline_exec fails only on I/O or on OOM building the commands; both leave
         * the connection in an unknown state (a pipeline may be half written), so the
         * link goes down and the loop reconnects */
        link_down(l);
        return LINK_IO;
    }
    return LINK_OK;
}

redisReply *link_cmd(redis_link *l, char *err, size_t errlen, const char *fmt, ...) {
    if (!link_is_up(l)) {
        hq_seterr(err, errlen, "not connected to Redis");
        return NULL;
    }
    redisContext *ctx = rconn_ctx(l->r);
    void *rep = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = ctx ? redisvAppendCommand(ctx, fmt, ap) : REDIS_ERR;
    va_end(ap);
    if (rc != REDIS_OK || rconn_get_reply(l->r, &rep) != REDIS_OK || !rep) {
        hq_seterr(err, errlen, "Redis I/O error: %s",
                  ctx && ctx->errstr[0] ? ctx->errstr : "no reply");
        if (rep)
            freeReplyObject(rep);
        link_down(l);
        return NULL;
    }
    return rep;
}

int link_fd(const redis_link *l) {
    return link_is_up(l) ? rconn_fd(l->r) : -1;
}

void link_set_wait(redis_link *l, link_wait_fn fn, void *ud) {
    l->wait = fn;
    l->wait_ud = ud;
    if (l->r)
        rconn_set_wait(l->r, fn, ud);
}

/* ---- readers --------------------------------------------------------------------- */

struct link_reader {
    const cfg *c;
    rconn *r;
    int up;
    int pending; /* a command was sent and its reply is not complete */
};

link_reader *link_reader_new(const cfg *c) {
    link_reader *rd = calloc(1, sizeof *rd);
    if (rd)
        rd->c = c;
    return rd;
}

void link_reader_free(link_reader *rd) {
    if (!rd)
        return;
    rconn_free(rd->r);
    free(rd);
}

int link_reader_connect(link_reader *rd, char *err, size_t errlen) {
    rd->up = 0;
    rd->pending = 0;
    if (!rd->r) {
        rd->r = rconn_connect(rd->c->redis_url, rd->c->redis_connect_timeout_ms,
                              rd->c->redis_command_timeout_ms, err, errlen);
        if (!rd->r)
            return HQ_ERR;
    } else if (rconn_reconnect(rd->r, err, errlen) != HQ_OK) {
        return HQ_ERR;
    }
    rd->up = 1;
    return HQ_OK;
}

void link_reader_down(link_reader *rd) {
    /* closed, not just marked broken: a blocked read on a connection that stays open
     * would still be served, and claim entries nobody reads */
    rd->up = 0;
    rd->pending = 0;
    rconn_free(rd->r);
    rd->r = NULL;
}

int link_reader_is_up(const link_reader *rd) {
    return rd->up && rd->r && rconn_connected(rd->r);
}

int link_reader_fd(const link_reader *rd) {
    return link_reader_is_up(rd) ? rconn_fd(rd->r) : -1;
}

int link_reader_pending(const link_reader *rd) {
    return rd->pending;
}

link_kind link_reader_send(link_reader *rd, pipeline *p, char *err, size_t errlen) {
    if (!link_reader_is_up(rd)) {
        hq_seterr(err, errlen, "not connected to Redis");
        return LINK_IO;
    }
    if (pipeline_send(p, rd->r, err, errlen) != HQ_OK) {
        link_reader_down(rd);
        return LINK_IO;
    }
    rd->pending = 1;
    return LINK_OK;
}

link_kind link_reader_recv(link_reader *rd, pipeline *p, int *complete, char *err, size_t errlen) {
    *complete = 0;
    if (!link_reader_is_up(rd) || !rd->pending) {
        hq_seterr(err, errlen, "not connected to Redis");
        return LINK_IO;
    }
    if (pipeline_recv(p, rd->r, complete, err, errlen) != HQ_OK) {
        link_reader_down(rd);
        return LINK_IO;
    }
    if (*complete)
        rd->pending = 0;
    return LINK_OK;
}

void link_reply_free(redisReply *r) {
    if (r)
        freeReplyObject(r);
}

link_kind link_error_kind(const char *s) {
    if (!s)
        s = "";
    /* Redis error replies start with an upper-case code word: match the word only */
    static const struct {
        const char *code;
        link_kind kind;
    } codes[] = {{"OOM", LINK_OOM},
                 {"NOGROUP", LINK_NOGROUP},
                 {"BUSYGROUP", LINK_BUSYGROUP},
                 {"NOSCRIPT", LINK_NOSCRIPT}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i].code);
        if (strncmp(s, codes[i].code, n) == 0 && (s[n] == ' ' || s[n] == '\0'))
            return codes[i].kind;
    }
    /* a script's error wraps the command's: "ERR Error running script ... OOM command not
     * allowed ..." or "... -NOGROUP ..." */
    if (strstr(s, "OOM command not allowed"))
        return LINK_OOM;
    if (strstr(s, "NOGROUP"))
        return LINK_NOGROUP;
    return LINK_ERR;
}

link_kind link_reply_kind(const redisReply *r) {
    if (!r)
        return LINK_IO;
    return r->type == REDIS_REPLY_ERROR ? link_error_kind(r->str) : LINK_OK;
}
