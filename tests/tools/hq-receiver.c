/* hq-receiver -- a loopback HTTP receiver for the quick start, tests and benchmarks.
 *
 *   hq-receiver [--port N] [--bind ADDR] [--secret whsec_...] [--print] [--status N]
 *               [--fail-every N] [--count-file F] [--quiet]
 *
 * Without --secret and --print it does nothing per request but count and answer from a
 * prebuilt response, so a benchmark measures hookq, not the receiver. With --secret it
 * checks Standard Webhooks signatures (sign_verify_v1, 5-minute timestamp tolerance) and
 * answers 401 on a mismatch. --port 0 picks a free port; the first stdout line is always
 * "hq-receiver: listening on ADDR:PORT". SIGTERM/SIGINT: stop, print totals to stderr,
 * write --count-file, exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hq.h"
#include "signature.h"

#define RCV_BODY_MAX    (8u * 1024u * 1024u) /* larger bodies get 413, hookq caps at 1 MiB */
#define RCV_EXCERPT     120
#define RCV_TOLERANCE_S 300 /* Standard Webhooks' replay window */

typedef struct rcv_opts {
    unsigned port;
    const char *bind;
    const char *secret;
    int print;
    unsigned status;
    unsigned long fail_every;
    const char *count_file;
    int quiet;
} rcv_opts;

typedef struct rcv {
    rcv_opts o;
    struct MHD_Response *r_main; /* --status (default 204) */
    struct MHD_Response *r_fail; /* 503 */
    struct MHD_Response *r_bad;  /* 401 */
    struct MHD_Response *r_big;  /* 413 */
    atomic_ulong requests;
    atomic_ulong answered_main;
    atomic_ulong failed;
    atomic_ulong sign_bad;
    atomic_ulong too_big;
} rcv;

/* Per-request state of the slow path (body needed). The fast path uses FAST_REQ, a
 * marker that is never dereferenced, so it allocates nothing. */
typedef struct rcv_req {
    char *body;
    size_t len;
    size_t cap;
    int too_big;
} rcv_req;

static char fast_marker;
#define FAST_REQ ((void *)&fast_marker)

static int rcv_needs_body(const rcv *r) {
    return r->o.secret != NULL || r->o.print;
}

static int rcv_append(rcv_req *q, const char *data, size_t n) {
    if (q->too_big || q->len + n > RCV_BODY_MAX) {
        q->too_big = 1;
        return HQ_OK; /* keep reading and discarding so the connection stays usable */
    }
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *b = realloc(q->body, cap);
        if (b == NULL)
            return HQ_ERR;
        q->body = b;
        q->cap = cap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    q->body[q->len] = '\0';
    return HQ_OK;
}

/* "ok", "none" (no signature headers) or a reason it is bad. */
static const char *rcv_check_sig(const rcv *r, struct MHD_Connection *c, const rcv_req *q) {
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sg = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    if (id == NULL && ts == NULL && sg == NULL)
        return "none";
    if (id == NULL || ts == NULL || sg == NULL)
        return "missing-header";
    char *end = NULL;
    errno = 0;
    long long t = strtoll(ts, &end, 10);
    if (errno != 0 || end == ts || *end != '\0')
        return "bad-timestamp";
    long long now = (long long)time(NULL);
    if (t < now - RCV_TOLERANCE_S || t > now + RCV_TOLERANCE_S)
        return "timestamp-out-of-tolerance";
    if (sign_verify_v1(r->o.secret, id, (int64_t)t, q->body ? q->body : "", q->len, sg) != HQ_OK)
        return "mismatch";
    return "ok";
}

static void rcv_print(const rcv *r, struct MHD_Connection *c, const rcv_req *q, const char *sigres,
                      unsigned status) {
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    char type[128] = "-";
    json_t *root = q->body ? json_loadb(q->body, q->len, 0, NULL) : NULL;
    const char *t = root ? json_string_value(json_object_get(root, "type")) : NULL;
    if (t != NULL)
        snprintf(type, sizeof(type), "%s", t);
    json_decref(root);

    char excerpt[RCV_EXCERPT + 4];
    size_t n = q->len < RCV_EXCERPT ? q->len : RCV_EXCERPT;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)q->body[i];
        excerpt[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '.';
    }
    excerpt[n] = '\0';
    if (q->len > RCV_EXCERPT)
        strcat(excerpt, "...");
    /* One fprintf per line: stdio locks the stream, so lines from pool threads never mix. */
    fprintf(stdout, "%s %s sig=%s status=%u body=%s\n", type, id ? id : "-",
            r->o.secret ? sigres : "unchecked", status, excerpt);
    fflush(stdout);
}

static enum MHD_Result rcv_handle(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    rcv *r = cls;
    if (*con_cls == NULL) {
        if (!rcv_needs_body(r)) {
            *con_cls = FAST_REQ;
        } else {
            rcv_req *q = calloc(1, sizeof(*q));
            if (q == NULL)
                return MHD_NO;
            *con_cls = q;
        }
        return MHD_YES; /* MHD calls again with the body, then once more to answer */
    }
    if (*upload_size != 0) {
        if (*con_cls != FAST_REQ && rcv_append(*con_cls, upload, *upload_size) != HQ_OK)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }

    unsigned long n = atomic_fetch_add(&r->requests, 1) + 1;
    if (*con_cls == FAST_REQ) {
        if (r->o.fail_every && n % r->o.fail_every == 0) {
            atomic_fetch_add(&r->failed, 1);
            return MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r->r_fail);
        }
        atomic_fetch_add(&r->answered_main, 1);
        return MHD_queue_response(c, r->o.status, r->r_main);
    }

    rcv_req *q = *con_cls;
    const char *sigres = "none";
    unsigned status;
    struct MHD_Response *resp;
    if (q->too_big) {
        atomic_fetch_add(&r->too_big, 1);
        status = 413u;
        resp = r->r_big;
        sigres = "unchecked";
    } else {
        if (r->o.secret)
            sigres = rcv_check_sig(r, c, q);
        if (r->o.secret && strcmp(sigres, "ok") != 0) {
            atomic_fetch_add(&r->sign_bad, 1);
            status = MHD_HTTP_UNAUTHORIZED;
            resp = r->r_bad;
        } else if (r->o.fail_every && n % r->o.fail_every == 0) {
            atomic_fetch_add(&r->failed, 1);
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            resp = r->r_fail;
        } else {
            atomic_fetch_add(&r->answered_main, 1);
            status = r->o.status;
            resp = r->r_main;
        }
    }
    if (r->o.print)
        rcv_print(r, c, q, sigres, status);
    return MHD_queue_response(c, status, resp);
}

static void rcv_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe) {
    if (*con_cls != NULL && *con_cls != FAST_REQ) {
        rcv_req *q = *con_cls;
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

static void usage(FILE *out) {
    fputs("usage: hq-receiver [--port N] [--bind ADDR] [--secret whsec_...] [--print]\n"
          "                   [--status N] [--fail-every N] [--count-file F] [--quiet]\n"
          "  --port N         listen port; 0 (default) picks a free one\n"
          "  --bind ADDR      address to listen on (default 127.0.0.1)\n"
          "  --secret S       verify Standard Webhooks signatures; 401 on mismatch\n"
          "  --print          one line per request: type id sig status body excerpt\n"
          "  --status N       status to answer (default 204)\n"
          "  --fail-every N   every Nth request answers 503\n"
          "  --count-file F   write the request count to F on exit\n"
          "  --quiet          no banner or totals (the listening line is always printed)\n",
          out);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out) {
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-')
        return HQ_ERR;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return HQ_ERR;
    *out = v;
    return HQ_OK;
}

static int parse_args(int argc, char **argv, rcv_opts *o) {
    unsigned long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--print") == 0) {
            o->print = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (val == NULL) {
            fprintf(stderr, "hq-receiver: %s needs a value\n", a);
            return HQ_ERR;
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            if (parse_ulong(val, 65535, &v) != HQ_OK)
                goto bad;
            o->port = (unsigned)v;
        } else if (strcmp(a, "--bind") == 0) {
            o->bind = val;
        } else if (strcmp(a, "--secret") == 0) {
            char err[HQ_ERRLEN];
            if (sign_secret_valid(val, err, sizeof(err)) != HQ_OK) {
                fprintf(stderr, "hq-receiver: --secret: %s\n", err);
                return HQ_ERR;
            }
            o->secret = val;
        } else if (strcmp(a, "--status") == 0) {
            if (parse_ulong(val, 599, &v) != HQ_OK || v < 100)
                goto bad;
            o->status = (unsigned)v;
        } else if (strcmp(a, "--fail-every") == 0) {
            if (parse_ulong(val, 1000000000UL, &v) != HQ_OK)
                goto bad;
            o->fail_every = v;
        } else if (strcmp(a, "--count-file") == 0) {
            o->count_file = val;
        } else {
            fprintf(stderr, "hq-receiver: unknown option '%s'\n", a);
            usage(stderr);
            return HQ_ERR;
        }
        continue;
    bad:
        fprintf(stderr, "hq-receiver: bad value for %s: '%s'\n", a, val);
        return HQ_ERR;
    }
    return HQ_OK;
}

static struct MHD_Response *empty_response(void) {
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

int main(int argc, char **argv) {
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    rcv r;
    memset(&r, 0, sizeof(r));
    r.o.bind = "127.0.0.1";
    r.o.status = MHD_HTTP_NO_CONTENT;
    if (parse_args(argc, argv, &r.o) != HQ_OK)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, r.o.bind, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)r.o.port);
        sa = (struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, r.o.bind, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)r.o.port);
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "hq-receiver: --bind: not an IP address: '%s'\n", r.o.bind);
        return 2;
    }

    r.r_main = empty_response();
    r.r_fail = empty_response();
    static const char bad_body[] = "bad signature\n";
    r.r_bad = MHD_create_response_from_buffer(sizeof(bad_body) - 1, (void *)bad_body,
                                              MHD_RESPMEM_PERSISTENT);
    r.r_big = empty_response();
    if (!r.r_main || !r.r_fail || !r.r_bad || !r.r_big) {
        fputs("hq-receiver: out of memory\n", stderr);
        goto cleanup;
    }

    /* Signals are handled by sigwait in this thread; block them before MHD starts its
     * threads so they inherit the mask and never run a handler. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    d = MHD_start_daemon(flags, (uint16_t)r.o.port, NULL, NULL, rcv_handle, &r,
                         MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                         MHD_OPTION_NOTIFY_COMPLETED, rcv_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "hq-receiver: cannot listen on %s:%u\n", r.o.bind, r.o.port);
        goto cleanup;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : r.o.port;
    printf("hq-receiver: listening on %s:%u\n", r.o.bind, port);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    d = NULL;

    unsigned long total = atomic_load(&r.requests);
    if (!r.o.quiet)
        fprintf(stderr,
                "hq-receiver: %lu requests: %lu answered %u, %lu answered 503, "
                "%lu bad signatures, %lu too large\n",
                total, atomic_load(&r.answered_main), r.o.status, atomic_load(&r.failed),
                atomic_load(&r.sign_bad), atomic_load(&r.too_big));
    rc = 0;
    if (r.o.count_file) {
        FILE *f = fopen(r.o.count_file, "w");
        int ok = f != NULL && fprintf(f, "%lu\n", total) > 0;
        if (f != NULL && fclose(f) != 0)
            ok = 0;
        if (!ok) {
            fprintf(stderr, "hq-receiver: cannot write %s: %s\n", r.o.count_file, strerror(errno));
            rc = 1;
        }
    }

cleanup:
    if (d)
        MHD_stop_daemon(d);
    if (r.r_main)
        MHD_destroy_response(r.r_main);
    if (r.r_fail)
        MHD_destroy_response(r.r_fail);
    if (r.r_bad)
        MHD_destroy_response(r.r_bad);
    if (r.r_big)
        MHD_destroy_response(r.r_big);
    return rc;
}
