/* hookq-api: the HTTP API (docs/api.md). All logic is in hqapi (api_*.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api_server.h"
#include "config.h"
#include "hq.h"
#include "log.h"

extern char **environ;

static volatile sig_atomic_t g_stop; /* the one global: set by signals, read by main */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fputs("usage: hookq-api [-c FILE] [--routes] [--version]\n"
          "Serves hookq's HTTP API (endpoints, events, inbound webhooks, live stream).\n"
          "Config: FILE, $HOOKQ_CONFIG or ./hookq.yaml, then HOOKQ_* variables;\n"
          "api.listen says where (default 127.0.0.1:8080), api.admin_keys who may call it.\n"
          "--routes prints every route it serves and exits.\n",
          f);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    char err[HQ_ERRLEN];
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("hookq-api %s\n", HOOKQ_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--routes") == 0) {
            api_server_print_routes(stdout);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hookq-api: %s '%s'\n",
                    strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0
                        ? "missing FILE after"
                        : "unknown argument",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    cfg *c = cfg_load(path, environ, err, sizeof err);
    if (!c) {
        fprintf(stderr, "hookq-api: %s\n", err);
        return 2;
    }
    log_init(c->log_level, c->log_format, "api");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* a client closing its socket must not kill the server */
    sigaction(SIGPIPE, &sa, NULL);

    api_server *s = api_server_new(c, err, sizeof err);
    if (!s || api_server_start(s, err, sizeof err) != HQ_OK) {
        LOG_E("%s", err);
        api_server_free(s);
        cfg_free(c);
        return 1;
    }
    if (c->api_admin_keys_len + c->api_tenant_keys_len == 0)
        LOG_W("no API key configured (api.admin_keys): every /v1 route but /v1/health and "
              "/v1/in/* answers 401");
    LOG_I("listening on %s (port %d), %d threads", c->api_listen, api_server_port(s),
          api_server_threads(s));
    /* The port line is for scripts that listen on :0 and need to know where. */
    fprintf(stdout, "hookq-api listening on port %d\n", api_server_port(s));
    fflush(stdout);
    while (!g_stop)
        pause();
    LOG_I("stopping");
    api_server_free(s);
    cfg_free(c);
    return 0;
}
