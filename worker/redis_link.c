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
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (!rep) {
        hq_seterr(err, errlen, "Redis I/O error: %s", ctx->errstr[0] ? ctx->errstr : "no reply");
        link_down(l);
    }
    return rep;
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
