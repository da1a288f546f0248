/* rq.h -- one Redis connection (hiredis 0.14, blocking) and hookq's Lua scripts.
 *
 * URL forms: redis://[[user]:password@]host[:port][/db], unix:///path[?db=N],
 * with user/password percent-decoded. An rq is not thread-safe; each thread or
 * process has its own. Commands that fail at the I/O level (not a Redis error reply)
 * leave the rq disconnected; rq_reconnect (or the next rq_cmd*) reconnects. */
#ifndef HQ_RQ_H
#define HQ_RQ_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

typedef struct rq_url {
    char *host;     /* NULL for unix sockets */
    int port;       /* default 6379 */
    char *path;     /* unix socket path or NULL */
    char *user;     /* ACL user or NULL */
    char *password; /* NULL if none */
    int db;         /* default 0 */
} rq_url;

int rq_url_parse(const char *url, rq_url *out, char *err, size_t errlen);
void rq_url_clear(rq_url *u);
/* "host:port" or the socket path, for messages (never the password). */
void rq_url_where(const rq_url *u, char *buf, size_t len);
/* The URL with the password replaced by "****" (malloc'd). */
char *rq_url_masked(const char *url);

/* A script known by name; its SHA1 is computed locally, so EVALSHA needs no
 * round trip to learn it. Sources live in common/lua/NAME.lua, compiled in. */
typedef struct rq_script {
    const char *name;
    const char *src;
    char sha[41];
} rq_script;
/* Scripts compiled into the library (see scripts.h for the list). */

typedef struct rq rq; /* opaque */

/* Connect, AUTH (user+password or password), SELECT db, and SCRIPT LOAD every script
 * in the built-in table. NULL + err like "cannot connect to Redis at 127.0.0.1:6399:
 * Connection refused". Timeouts in ms (0 = none). */
rq *rq_connect(const char *url, int64_t connect_timeout_ms, int64_t command_timeout_ms, char *err,
               size_t errlen);
void rq_free(rq *r); /* NULL-safe */
int rq_reconnect(rq *r, char *err, size_t errlen);
int rq_connected(const rq *r);
redisContext *rq_ctx(rq *r); /* for pipelines (redisAppendCommandArgv/redisGetReply) */
const char *rq_where(const rq *r);
/* Mark the connection broken after a pipeline I/O error, so the next call reconnects. */
void rq_set_broken(rq *r);

/* Run one command. Returns the reply (caller frees with freeReplyObject), which may
 * be a REDIS_REPLY_ERROR; NULL on I/O error with err set (and the rq disconnected).
 * If disconnected, reconnects first (one attempt). */
redisReply *rq_cmd(rq *r, char *err, size_t errlen, const char *fmt, ...);
redisReply *rq_cmdargv(rq *r, int argc, const char **argv, const size_t *argvlen, char *err,
                       size_t errlen);

/* EVALSHA script with numkeys keys followed by args in argv/argvlen (argc total); on
 * NOSCRIPT it loads the script and retries once. Same return contract as rq_cmd. */
redisReply *rq_eval(rq *r, const rq_script *s, int numkeys, int argc, const char **argv,
                    const size_t *argvlen, char *err, size_t errlen);
/* Append EVALSHA to the pipeline (no reply read). */
int rq_append_eval(rq *r, const rq_script *s, int numkeys, int argc, const char **argv,
                   const size_t *argvlen);
/* 1 if reply is a NOSCRIPT error. */
int rq_is_noscript(const redisReply *reply);
/* Load every built-in script (after a NOSCRIPT seen in a pipeline). */
int rq_load_scripts(rq *r, char *err, size_t errlen);

#endif
