/* pipeline.h -- a Redis pipeline: queue commands, send them in one write, read every reply.
 *
 * The worker batches its Redis traffic through this (one pipeline of results per loop
 * iteration, one of reads). Each command carries a tag and a user pointer so the caller
 * can match replies to what asked for them. Arguments are copied. */
#ifndef HQ_PIPELINE_H
#define HQ_PIPELINE_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "redis_conn.h"

typedef struct pipeline pipeline; /* opaque */

pipeline *pipeline_new(void);    /* NULL on OOM */
void pipeline_free(pipeline *p); /* NULL-safe */
/* Forget queued commands and replies (keeps the memory). */
void pipeline_reset(pipeline *p);

/* Build one command: begin, then args, then end. Errors (OOM) are sticky and reported by
 * pipeline_exec. One command at a time: beginning one before the last is ended is a bug
 * (it aborts in HOOKQ_CHECKS builds). */
void pipeline_begin(pipeline *p, int tag, void *ud);
void pipeline_arg(pipeline *p, const char *s);
void pipeline_argn(pipeline *p, const char *s, size_t n);
void pipeline_argi(pipeline *p, int64_t v);
void pipeline_end(pipeline *p);
/* EVALSHA s numkeys: starts a command like pipeline_begin and adds "EVALSHA sha numkeys". */
void pipeline_eval(pipeline *p, int tag, void *ud, const rconn_script *s, int numkeys);

size_t pipeline_len(const pipeline *p);

/* Send every queued command and read every reply. A reply that is a NOSCRIPT error makes
 * it load the scripts and run that command again on its own. HQ_ERR on an I/O error (the
 * rconn is marked broken; some commands may have run) or OOM. Replies stay owned by p. */
int pipeline_exec(pipeline *p, rconn *r, char *err, size_t errlen);
/* The same in two halves, for a connection driven by an event loop: send every command
 * (the replies are read later), then, each time the socket is readable, read what came
 * and take the replies that are complete; *complete once every reply is in. Both
 * HQ_ERR on I/O errors (the rconn is marked broken). No NOSCRIPT handling: for plain
 * commands only. */
int pipeline_send(pipeline *p, rconn *r, char *err, size_t errlen);
int pipeline_recv(pipeline *p, rconn *r, int *complete, char *err, size_t errlen);
redisReply *pipeline_reply(const pipeline *p, size_t i);
int pipeline_tag(const pipeline *p, size_t i);
void *pipeline_ud(const pipeline *p, size_t i);
/* Argument k (0 = the command name) of command i, NUL-terminated; "" if out of range.
 * Valid until the next pipeline_reset. */
const char *pipeline_argv_at(const pipeline *p, size_t i, size_t k);

#endif
