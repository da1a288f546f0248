/* pl.c -- see pl.h. Arguments live in one growing byte arena per pipeline; commands
 * record offsets into it, so a batch of thousands of arguments costs a few reallocs. */
#include "pipeline.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"

typedef struct pl_cmd {
    int tag;
    void *ud;
    size_t first, argc; /* into arg offsets */
    redisReply *reply;
} pl_cmd;

struct pl {
    char *buf;
    size_t blen, bcap;
    size_t *off, *len; /* per argument */
    size_t nargs, acap;
    pl_cmd *cmds;
    size_t ncmds, ccap;
    int oom;
    int open;
};

pl *pl_new(void) {
    return calloc(1, sizeof(pl));
}

static void pl_free_replies(pl *p) {
    for (size_t i = 0; i < p->ncmds; i++) {
        if (p->cmds[i].reply)
            freeReplyObject(p->cmds[i].reply);
        p->cmds[i].reply = NULL;
    }
}

void pl_free(pl *p) {
    if (!p)
        return;
    pl_free_replies(p);
    free(p->buf);
    free(p->off);
    free(p->len);
    free(p->cmds);
    free(p);
}

void pl_reset(pl *p) {
    pl_free_replies(p);
    p->blen = p->nargs = p->ncmds = 0;
    p->oom = p->open = 0;
}

void pl_begin(pl *p, int tag, void *ud) {
    if (p->ncmds == p->ccap) {
        size_t cap = p->ccap ? p->ccap * 2 : 32;
        pl_cmd *nc = realloc(p->cmds, cap * sizeof *nc);
        if (!nc) {
            p->oom = 1;
            return;
        }
        p->cmds = nc;
        p->ccap = cap;
    }
    pl_cmd *c = &p->cmds[p->ncmds];
    c->tag = tag;
    c->ud = ud;
    c->first = p->nargs;
    c->argc = 0;
    c->reply = NULL;
    p->open = 1;
}

void pl_argn(pl *p, const char *s, size_t n) {
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

void pl_arg(pl *p, const char *s) {
    pl_argn(p, s ? s : "", s ? strlen(s) : 0);
}

void pl_argi(pl *p, int64_t v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    pl_argn(p, b, (size_t)n);
}

void pl_end(pl *p) {
    if (p->oom || !p->open)
        return;
    p->open = 0;
    p->ncmds++;
}

void pl_eval(pl *p, int tag, void *ud, const rq_script *s, int numkeys) {
    pl_begin(p, tag, ud);
    pl_arg(p, "EVALSHA");
    pl_arg(p, s->sha);
    pl_argi(p, numkeys);
}

size_t pl_len(const pl *p) {
    return p->ncmds;
}

static int pl_argv(const pl *p, const pl_cmd *c, const char ***argv, size_t **lens) {
    *argv = malloc(c->argc * sizeof **argv);
    *lens = malloc(c->argc * sizeof **lens);
    if (!*argv || !*lens) {
        free(*argv);
        free(*lens);
        return HQ_ERR;
    }
    for (size_t i = 0; i < c->argc; i++) {
        (*argv)[i] = p->buf + p->off[c->first + i];
        (*lens)[i] = p->len[c->first + i];
    }
    return HQ_OK;
}

int pl_exec(pl *p, rq *r, char *err, size_t errlen) {
    if (p->oom)
        return hq_seterr(err, errlen, "out of memory building a Redis pipeline");
    if (p->ncmds == 0)
        return HQ_OK;
    redisContext *ctx = rq_ctx(r);
    if (!ctx || !rq_connected(r))
        return hq_seterr(err, errlen, "not connected to Redis");
    pl_free_replies(p);
    for (size_t i = 0; i < p->ncmds; i++) {
        const char **argv;
        size_t *lens;
        if (pl_argv(p, &p->cmds[i], &argv, &lens) != HQ_OK)
            return hq_seterr(err, errlen, "out of memory sending a Redis pipeline");
        int rc = redisAppendCommandArgv(ctx, (int)p->cmds[i].argc, argv, lens);
        free(argv);
        free(lens);
        if (rc != REDIS_OK)
            return hq_seterr(err, errlen, "out of memory sending a Redis pipeline");
    }
    int noscript = 0;
    for (size_t i = 0; i < p->ncmds; i++) {
        void *rep = NULL;
        if (redisGetReply(ctx, &rep) != REDIS_OK || !rep) {
            hq_seterr(err, errlen, "Redis I/O error: %s",
                      ctx->errstr[0] ? ctx->errstr : "no reply");
            rq_set_broken(r);
            return HQ_ERR;
        }
        p->cmds[i].reply = rep;
        if (rq_is_noscript(rep))
            noscript = 1;
    }
    if (!noscript)
        return HQ_OK;
    /* A script cache flushed under us (SCRIPT FLUSH, failover): load and rerun just
     * the commands that could not run. */
    if (rq_load_scripts(r, err, errlen) != HQ_OK)
        return HQ_ERR;
    for (size_t i = 0; i < p->ncmds; i++) {
        if (!rq_is_noscript(p->cmds[i].reply))
            continue;
        const char **argv;
        size_t *lens;
        if (pl_argv(p, &p->cmds[i], &argv, &lens) != HQ_OK)
            return hq_seterr(err, errlen, "out of memory rerunning a script");
        redisReply *rep = rq_cmdargv(r, (int)p->cmds[i].argc, argv, lens, err, errlen);
        free(argv);
        free(lens);
        if (!rep)
            return HQ_ERR;
        freeReplyObject(p->cmds[i].reply);
        p->cmds[i].reply = rep;
    }
    return HQ_OK;
}

redisReply *pl_reply(const pl *p, size_t i) {
    return p->cmds[i].reply;
}

int pl_tag(const pl *p, size_t i) {
    return p->cmds[i].tag;
}

void *pl_ud(const pl *p, size_t i) {
    return p->cmds[i].ud;
}
