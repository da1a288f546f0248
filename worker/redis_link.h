/* redis_link.h -- the worker's one link to Redis.
 *
 * The only module of the worker that talks to hiredis: it owns the connection, runs
 * pipelines and single commands, and names what went wrong as a kind, so no caller
 * reads error text. It never decides anything: a stage that gets LINK_IO back returns
 * it to the loop, and only the loop (worker.c) calls link_down / link_connect.
 *
 * Replies are hiredis reply trees, read-only for callers and owned by the pipeline
 * that ran them (or by the caller of link_cmd, who frees them with link_reply_free). */
#ifndef HQ_REDIS_LINK_H
#define HQ_REDIS_LINK_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "config.h"
#include "pipeline.h"

/* What a command, or the link itself, came back with. Never renumbered. */
typedef enum {
    LINK_OK = 0,    /* a reply that is not an error */
    LINK_IO,        /* no reply: connection lost or timed out (the link is now down) */
    LINK_OOM,       /* -OOM: Redis is at maxmemory and refused a write */
    LINK_NOGROUP,   /* -NOGROUP: a consumer group is missing (Redis restarted empty?) */
    LINK_BUSYGROUP, /* -BUSYGROUP: the group exists already */
    LINK_NOSCRIPT,  /* -NOSCRIPT: script cache flushed (pipelines reload and rerun) */
    LINK_ERR        /* any other error reply */
} link_kind;

const char *link_kind_name(link_kind k); /* "ok", "io", "oom", ... */

typedef struct redis_link redis_link; /* opaque */

/* No connection yet: link_connect makes it. c must outlive the link. NULL on OOM. */
redis_link *link_new(const cfg *c);
void link_free(redis_link *l); /* NULL-safe */

/* Connect (or reconnect) now: AUTH, SELECT, SCRIPT LOAD. HQ_OK or HQ_ERR + err. */
int link_connect(redis_link *l, char *err, size_t errlen);
/* Mark the link down after an I/O error; the next link_connect reconnects. */
void link_down(redis_link *l);
int link_is_up(const redis_link *l);
const char *link_where(const redis_link *l); /* "host:port" for logs; "" before connecting */
/* The connection, for common/ functions that take one (ep_load_table). NULL before the
 * first connect. Callers go through link_is_up first and report LINK_IO themselves. */
struct rconn *link_conn(redis_link *l);

/* The connection's fd while up (-1 if not), for the loop to watch; it changes with
 * every reconnect. */
int link_fd(const redis_link *l);
/* Wait for replies through fn (see rconn_wait_fn in redis_conn.h) instead of read(2):
 * the loop keeps its other sockets moving during round trips. Kept across reconnects. */
typedef int (*link_wait_fn)(void *ud, int fd, int64_t timeout_ms);
void link_set_wait(redis_link *l, link_wait_fn fn, void *ud);

/* Send every command of p and read every reply. LINK_IO (and the link is down) if the
 * connection failed; then some commands may have run. Otherwise LINK_OK: look at each
 * reply with link_reply_kind. */
link_kind link_exec(redis_link *l, pipeline *p, char *err, size_t errlen);

/* One command (printf-style, hiredis format). NULL + err on LINK_IO. Free with
 * link_reply_free. */
redisReply *link_cmd(redis_link *l, char *err, size_t errlen, const char *fmt, ...);
void link_reply_free(redisReply *r); /* NULL-safe */

/* A reader: a connection of its own for one blocking command at a time (XREADGROUP
 * ... BLOCK), sent now and answered whenever Redis has something, while the loop goes
 * on; its fd is watched by the loop, which calls link_reader_recv when it is readable.
 * Connected and marked down together with the main link, by the loop. */
typedef struct link_reader link_reader;                             /* opaque */
link_reader *link_reader_new(const cfg *c);                         /* NULL on OOM */
void link_reader_free(link_reader *rd);                             /* NULL-safe */
int link_reader_connect(link_reader *rd, char *err, size_t errlen); /* HQ_OK / HQ_ERR */
void link_reader_down(link_reader *rd); /* closes the connection (the fd is gone after) */
int link_reader_is_up(const link_reader *rd);
int link_reader_fd(const link_reader *rd);      /* -1 if down */
int link_reader_pending(const link_reader *rd); /* sent, reply not complete */
/* Send p's commands (the reply is read later). LINK_IO: the reader is down. */
link_kind link_reader_send(link_reader *rd, pipeline *p, char *err, size_t errlen);
/* Read what has come (call when the fd is readable; never blocks then); *complete once
 * every reply of p is in. LINK_IO: the reader is down. */
link_kind link_reader_recv(link_reader *rd, pipeline *p, int *complete, char *err, size_t errlen);

/* The kind of a reply (LINK_OK for anything that is not an error reply). */
link_kind link_reply_kind(const redisReply *r);
/* The kind of an error text (a script may hand one back inside a normal reply). */
link_kind link_error_kind(const char *msg);

#endif
