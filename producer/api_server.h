/* api_server.h -- the hookq-api HTTP server (libmicrohttpd): listen, limits, bodies,
 * authentication, routing, per-thread Redis, answers.
 *
 * MHD runs api.threads threads over epoll; each request runs to its answer on one of
 * them, its Redis commands on that thread's own connection. Limits: api.max_connections,
 * api.max_connections_per_ip, api.idle_timeout (MHD's inactivity timeout: a connection
 * that sends nothing for that long, a half-sent request included, is closed), a 32 KiB
 * cap on the request line and headers together (431 beyond), api.max_body (413, checked
 * against Content-Length before any byte is read, and again as a chunked body grows).
 * Bodies are read whole into memory; there is no MHD_PostProcessor (JSON needs none). */
#ifndef HQ_API_SERVER_H
#define HQ_API_SERVER_H
#include <stddef.h>
#include "config.h"

typedef struct api_server api_server;

/* Build the server for a validated cfg (nothing listens yet). NULL + err. */
api_server *api_server_new(const cfg *c, char *err, size_t errlen);
/* Listen on api.listen and start the threads and the stream hub. HQ_OK, or HQ_ERR with
 * err ("cannot listen on 127.0.0.1:8080: Address already in use"). */
int api_server_start(api_server *s, char *err, size_t errlen);
/* The port actually bound (api.listen may say :0). */
int api_server_port(const api_server *s);
/* The request threads it runs (api.threads, or one per core when that is 0). */
int api_server_threads(const api_server *s);
/* Stop: close the listener, end streams, finish running requests. NULL-safe. */
void api_server_stop(api_server *s);
void api_server_free(api_server *s); /* stops first; NULL-safe */

/* Print the route table, "METHOD PATTERN operationId" per line (`hookq-api --routes`). */
void api_server_print_routes(FILE *out);

#endif
