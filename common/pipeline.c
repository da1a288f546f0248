/* pipeline.c -- see pipeline.h. Arguments live in one growing byte arena per pipeline; commands
 * record offsets into it, so a batch of thousands of arguments costs a few reallocs. */
#include "pipeline.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"

typedef struct pipeline_cmd {
    int tag;
    void *ud;
    size_t first, argc; /* into arg offsets */
    redisReply *reply;
} pipeline_cmd;

struct pipeline {
    char *buf;
    size_t blen, bcap;
    size_t *off, *len; /* per argument */
    size_t nargs, acap;
    pipeline_cmd *cmds;
    size_t ncmds, ccap;
    size_t nrecv;       /* replies received so far (pipeline_recv) */
    const char **sargv; /* scratch argv for sending one command */
    size_t *slens;
    size_t scap;
    int oom;
    int open;
};

pipeline *pipeline_new(void) {
    return calloc(1, sizeof(pipeline));
}

static void pipeline_free_replies(pipeline *p) {
    for (size_t i = 0; i < p->ncmds; i++) {
        if (p->cmds[i].reply)
            freeReplyObject(p->cmds[i].reply);
        p->cmds[i].reply = NULL;
    }
}

void pipeline_free(pipeline *p) {
    if (!p)
        return;
    pipeline_free_replies(p);
    free(p->sargv);
    free(p->slens);
    free(p->buf);
    free(p->off);
    free(p->len);
    free(p->cmds);
    free(p);
}

void pipeline_reset(pipeline *p) {
    pipeline_free_replies(p);
    p->blen = p->nargs = p->ncmds = p->nrecv = 0;
    p->oom = p->open = 0;
}

void pipeline_begin(pipeline *p, int tag, void *ud) {
#ifdef HOOKQ_CHECKS
    /* a command begun inside another would cut it short: its arguments would go to the
     * new one (a bug once: results queued a dead letter inside a lane_settle call) */
    if (p->open)
        abort();
#endif
    if (p->ncmds == p->ccap) {
        size_t cap = p->ccap ? p->ccap * 2 : 32;
        pipeline_cmd *nc = realloc(p->cmds, cap * sizeof *nc);
        if (!nc) {
            p->oom = 1;
            return;
        }
        p->cmds = nc;
        p->ccap = cap;
    }
    pipeline_cmd *c = &p->cmds[p->ncmds];
    c->tag = tag;
    c->ud = ud;
    c->first = p->nargs;
    c->argc = 0;
    c->reply = NULL;
    p->open = 1;
}

void pipeline_argn(pipeline *p, const char *s, size_t n) {
    if (p->oom || !p->open)
        return;
    if (p->nargs == p->acap) {
        size_t cap = p->acap ? p->acap * 2 : 128;
        size_t *no = realloc(p->off, cap * sizeof *no);
        if (!no) {
            p->oom = 1;
            return;
        }
        p->off = no;
        size_t *nl = realloc(p->len, cap * sizeof *nl);
        if (!nl) {
            p->oom = 1;
            return;
        }
        p->len = nl;
        p->acap = cap;
    }
    if (p->blen + n + 1 > p->bcap) {
        size_t cap = p->bcap ? p->bcap : 4096;
        while (cap < p->blen + n + 1)
            cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb) {
            p->oom = 1;
            return;
        }
        p->buf = nb;
        p->bcap = cap;
    }
    memcpy(p->buf + p->blen, s, n);
    p->buf[p->blen + n] = '\0';
    p->off[p->nargs] = p->blen;
    p->len[p->nargs] = n;
    p->blen += n + 1;
    p->nargs++;
    p->cmds[p->ncmds].argc++;
}

void pipeline_arg(pipeline *p, const char *s) {
    pipeline_argn(p, s ? s : "", s ? strlen(s) : 0);
}

void pipeline_argi(pipeline *p, int64_t v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    pipeline_argn(p, b, (size_t)n);
}

void pipeline_end(pipeline *p) {
    if (p->oom || !p->open)
        return;
    p->open = 0;
    p->ncmds++;
}

void pipeline_eval(pipeline *p, int tag, void *ud, const rconn_script *s, int numkeys) {
    pipeline_begin(p, tag, ud);
    pipeline_arg(p, "EVALSHA");
    pipeline_arg(p, s->sha);
    pipeline_argi(p, numkeys);
}

size_t pipeline_len(const pipeline *p) {
    return p->ncmds;
}

/* Command c's argv and lengths, in scratch arrays the pipeline keeps (grown to the
 * longest command), so sending a command allocates nothing. Valid until the next call. */
static int pipeline_argv(pipeline *p, const pipeline_cmd *c, const char ***argv, size_t **lens) {
    if (c->argc > p->scap) {
        size_t cap = p->scap ? p->scap : 32;
        while (cap < c->argc)
            cap *= 2;
        const char **na = realloc(p->sargv, cap * sizeof *na);
        if (!na)
            return HQ_ERR;
        p->sargv = na;
        size_t *nl = realloc(p->slens, cap * sizeof *nl);
        if (!nl)
            return HQ_ERR;
        p->slens = nl;
        p->scap = cap;
    }
    for (size_t i = 0; i < c->argc; i++) {
        p->sargv[i] = p->buf + p->off[c->first + i];
        p->slens[i] = p->len[c->first + i];
    }
    *argv = p->sargv;
    *lens = p->slens;
    return HQ_OK;
}

/* Append every command to the context's output buffer. */
static int append_all(pipeline *p, rconn *r, char *err, size_t errlen) {
    if (p->oom)
        return hq_seterr(err, errlen, "out of memory building a Redis pipeline");
    redisContext *ctx = rconn_ctx(r);
    if (!ctx || !rconn_connected(r))
        return hq_seterr(err, errlen, "not connected to Redis");
    pipeline_free_replies(p);
    p->nrecv = 0;
    for (size_t i = 0; i < p->ncmds; i++) {
        const char **argv;
        size_t *lens;
        if (pipeline_argv(p, &p->cmds[i], &argv, &lens) != HQ_OK) {
            /* commands already appended would go out with the next one: drop the
             * connection so nothing half-sent (a half MULTI) survives */
            rconn_set_broken(r);
            return hq_seterr(err, errlen, "out of memory sending a Redis pipeline");
        }
        int rc = redisAppendCommandArgv(ctx, (int)p->cmds[i].argc, argv, lens);
        if (rc != REDIS_OK) {
            rconn_set_broken(r);
            return hq_seterr(err, errlen, "out of memory sending a Redis pipeline");
        }
    }
    return HQ_OK;
}

int pipeline_send(pipeline *p, rconn *r, char *err, size_t errlen) {
    if (append_all(p, r, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (rconn_flush(r) != HQ_OK)
        return hq_seterr(err, errlen, "Redis I/O error sending a pipeline");
    return HQ_OK;
}

int pipeline_recv(pipeline *p, rconn *r, int *complete, char *err, size_t errlen) {
    *complete = p->nrecv == p->ncmds;
    if (*complete)
        return HQ_OK;
    if (rconn_read_some(r) != HQ_OK)
        return hq_seterr(err, errlen, "Redis I/O error: %s", "connection lost");
    while (p->nrecv < p->ncmds) {
        void *rep = NULL;
        if (rconn_take_reply(r, &rep) != HQ_OK)
            return hq_seterr(err, errlen, "Redis protocol error");
        if (!rep)
            break;
        p->cmds[p->nrecv++].reply = rep;
    }
    *complete = p->nrecv == p->ncmds;
    return HQ_OK;
}

int pipeline_exec(pipeline *p, rconn *r, char *err, size_t errlen) {
    if (p->ncmds == 0 && !p->oom)
        return HQ_OK;
    if (append_all(p, r, err, errlen) != HQ_OK)
        return HQ_ERR;
    redisContext *ctx = rconn_ctx(r);
    int noscript = 0;
    for (size_t i = 0; i < p->ncmds; i++) {
        void *rep = NULL;
        if (rconn_get_reply(r, &rep) != REDIS_OK || !rep) {
            hq_seterr(err, errlen, "Redis I/O error: %s",
                      ctx->errstr[0] ? ctx->errstr : "no reply");
            rconn_set_broken(r);
            return HQ_ERR;
        }
        p->cmds[i].reply = rep;
        p->nrecv = i + 1;
        if (rconn_is_noscript(rep))
            noscript = 1;
    }
    if (!noscript)
        return HQ_OK;
    /* A script cache flushed under us (SCRIPT FLUSH, failover): load and rerun just
     * the commands that could not run. */
    if (rconn_load_scripts(r, err, errlen) != HQ_OK)
        return HQ_ERR;
    for (size_t i = 0; i < p->ncmds; i++) {
        if (!rconn_is_noscript(p->cmds[i].reply))
            continue;
        const char **argv;
        size_t *lens;
        if (pipeline_argv(p, &p->cmds[i], &argv, &lens) != HQ_OK)
            return hq_seterr(err, errlen, "out of memory rerunning a script");
        redisReply *rep = rconn_cmdargv(r, (int)p->cmds[i].argc, argv, lens, err, errlen);
        if (!rep)
            return HQ_ERR;
        freeReplyObject(p->cmds[i].reply);
        p->cmds[i].reply = rep;
    }
    return HQ_OK;
}

redisReply *pipeline_reply(const pipeline *p, size_t i) {
    return p->cmds[i].reply;
}

int pipeline_tag(const pipeline *p, size_t i) {
    return p->cmds[i].tag;
}

void *pipeline_ud(const pipeline *p, size_t i) {
    return p->cmds[i].ud;
}

const char *pipeline_argv_at(const pipeline *p, size_t i, size_t k) {
    if (i >= p->ncmds || k >= p->cmds[i].argc)
        return "";
    return p->buf + p->off[p->cmds[i].first + k];
}
