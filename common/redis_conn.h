/* redis_conn.h -- one Redis connection (hiredis 0.14, blocking) and hookq's Lua scripts.
 *
 * URL forms: redis://[[user]:password@]host[:port][/db], unix:///path[?db=N],
 * with user/password percent-decoded. An rconn is not thread-safe; each thread or
 * process has its own. Commands that fail at the I/O level (not a Redis error reply)
 * leave the rconn disconnected; rconn_reconnect (or the next rconn_cmd*) reconnects. */
#ifndef HQ_REDIS_CONN_H
#define HQ_REDIS_CONN_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

typedef struct rconn_url {
    char *host;     /* NULL for unix sockets */
    int port;       /* default 6379 */
    char *path;     /* unix socket path or NULL */
    char *user;     /* ACL user or NULL */
    char *password; /* NULL if none */
    int db;         /* default 0 */
} rconn_url;

int rconn_url_parse(const char *url, rconn_url *out, char *err, size_t errlen);
void rconn_url_clear(rconn_url *u);
/* "host:port" or the socket path, for messages (never the password). */
void rconn_url_where(const rconn_url *u, char *buf, size_t len);
/* The URL with the password replaced by "****" (malloc'd). */
char *rconn_url_masked(const char *url);

/* A script known by name; its SHA1 is computed locally, so EVALSHA needs no
 * round trip to learn it. Sources live in common/lua/NAME.lua, compiled in. */
typedef struct rconn_script {
    const char *name;
    const char *src;
    char sha[41];
} rconn_script;
/* Scripts compiled into the library (see scripts.h for the list). */

typedef struct rconn rconn; /* opaque */

/* Connect, AUTH (user+password or password), SELECT db, and SCRIPT LOAD every script
 * in the built-in table. NULL + err like "cannot connect to Redis at 127.0.0.1:6399:
 * Connection refused". Timeouts in ms (0 = none). */
rconn *rconn_connect(const char *url, int64_t connect_timeout_ms, int64_t command_timeout_ms,
                     char *err, size_t errlen);
void rconn_free(rconn *r); /* NULL-safe */
int rconn_reconnect(rconn *r, char *err, size_t errlen);
int rconn_connected(const rconn *r);
redisContext *rconn_ctx(rconn *r); /* for pipelines (redisAppendCommandArgv/redisGetReply) */
const char *rconn_where(const rconn *r);
/* Mark the connection broken after a pipeline I/O error, so the next call reconnects. */
void rconn_set_broken(rconn *r);

/* A wait hook: block until fd is readable (1), timeout_ms passed (0; -1 = no limit) or
 * the wait failed (-1), doing whatever else the caller's loop must do meanwhile. With
 * one set, every reply this rconn waits for (commands, pipelines) is waited for
 * through it instead of in read(2), so a single-threaded program keeps its other
 * sockets moving during Redis round trips. The hook must not use this rconn. */
typedef int (*rconn_wait_fn)(void *ud, int fd, int64_t timeout_ms);
void rconn_set_wait(rconn *r, rconn_wait_fn fn, void *ud);
int rconn_fd(const rconn *r); /* -1 when not connected */
/* Counts the connections made: a caller watching the fd tells a new connection that
 * got the old fd number from the old one. */
unsigned rconn_generation(const rconn *r);
/* The next reply, like redisGetReply (REDIS_OK/REDIS_ERR), through the wait hook. */
int rconn_get_reply(rconn *r, void **reply);
/* For replies read as they come (a blocking command on its own connection, driven by
 * the caller's event loop): send what is buffered; read what the socket has (call when
 * it is readable: never blocks then); take one complete reply if there is one (*reply
 * NULL if not yet). HQ_ERR marks the rconn broken. */
int rconn_flush(rconn *r);
int rconn_read_some(rconn *r);
int rconn_take_reply(rconn *r, void **reply);

/* Run one command. Returns the reply (caller frees with freeReplyObject), which may
 * be a REDIS_REPLY_ERROR; NULL on I/O error with err set (and the rconn disconnected).
 * If disconnected, reconnects first (one attempt). */
redisReply *rconn_cmd(rconn *r, char *err, size_t errlen, const char *fmt, ...);
redisReply *rconn_cmdargv(rconn *r, int argc, const char **argv, const size_t *argvlen, char *err,
                          size_t errlen);

/* EVALSHA script with numkeys keys followed by args in argv/argvlen (argc total); on
 * NOSCRIPT it loads the script and retries once. Same return contract as rconn_cmd. */
redisReply *rconn_eval(rconn *r, const rconn_script *s, int numkeys, int argc, const char **argv,
                       const size_t *argvlen, char *err, size_t errlen);
/* 1 if reply is a NOSCRIPT error. */
int rconn_is_noscript(const redisReply *reply);
/* Load every built-in script (after a NOSCRIPT seen in a pipeline). */
int rconn_load_scripts(rconn *r, char *err, size_t errlen);

#endif
