/* main.c -- hookq-worker: parse flags, load config, run the loop (worker/worker.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "hq.h"
#include "log.h"
#include "worker.h"

extern char **environ;

static volatile sig_atomic_t g_stop; /* the one global: set by signals, read by the loop */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fputs("usage: hookq-worker [-c FILE] [--version]\n"
          "Delivers hookq events: fanout, signed POSTs, retries, reclaim.\n"
          "Config: FILE, $HOOKQ_CONFIG or ./hookq.yaml, then HOOKQ_* variables.\n",
          f);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("hookq-worker %s\n", HOOKQ_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hookq-worker: %s '%s'\n",
                    strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0
                        ? "missing FILE after"
                        : "unknown argument",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char err[HQ_ERRLEN];
    cfg *c = cfg_load(path, environ, err, sizeof err);
    if (!c) {
        fprintf(stderr, "hookq-worker: %s\n", err);
        return 2;
    }
    log_init(c->log_level, c->log_format, NULL);
    worker *w = worker_new(c, err, sizeof err);
    if (!w) {
        LOG_E("%s", err);
        cfg_free(c);
        return 1;
    }
    log_init(c->log_level, c->log_format, worker_name(w));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* a peer closing a socket must not kill the worker */
    sigaction(SIGPIPE, &sa, NULL);

    int rc = worker_run(w, &g_stop);
    worker_free(w);
    cfg_free(c);
    return rc == HQ_OK ? 0 : 1;
}
