/* pl.h -- a Redis pipeline: queue commands, send them in one write, read every reply.
 *
 * The worker batches its Redis traffic through this (one pipeline of results per loop
 * iteration, one of reads). Each command carries a tag and a user pointer so the caller
 * can match replies to what asked for them. Arguments are copied. */
#ifndef HQ_PL_H
#define HQ_PL_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "redis_conn.h"

typedef struct pl pl; /* opaque */

pl *pl_new(void);    /* NULL on OOM */
void pl_free(pl *p); /* NULL-safe */
/* Forget queued commands and replies (keeps the memory). */
void pl_reset(pl *p);

/* Build one command: begin, then args, then end. Errors (OOM) are sticky and reported by
 * pl_exec. */
void pl_begin(pl *p, int tag, void *ud);
void pl_arg(pl *p, const char *s);
void pl_argn(pl *p, const char *s, size_t n);
void pl_argi(pl *p, int64_t v);
void pl_end(pl *p);
/* EVALSHA s numkeys: starts a command like pl_begin and adds "EVALSHA sha numkeys". */
void pl_eval(pl *p, int tag, void *ud, const rq_script *s, int numkeys);

size_t pl_len(const pl *p);

/* Send every queued command and read every reply. A reply that is a NOSCRIPT error makes
 * it load the scripts and run that command again on its own. HQ_ERR on an I/O error (the
 * rq is marked broken; some commands may have run) or OOM. Replies stay owned by p. */
int pl_exec(pl *p, rq *r, char *err, size_t errlen);
redisReply *pl_reply(const pl *p, size_t i);
int pl_tag(const pl *p, size_t i);
void *pl_ud(const pl *p, size_t i);

#endif
