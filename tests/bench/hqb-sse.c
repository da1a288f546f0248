/* hqb-sse -- the benchmark's SSE client: N streams of GET /v1/stream in one epoll thread.
 *
 *   hqb-sse PORT N SECONDS KEY [EXPECT] [SOURCES]
 *
 * Opens N connections to 127.0.0.1:PORT, bound round-robin to source addresses
 * 127.0.0.2 .. 127.0.0.(1+SOURCES) (default 8) so N can pass the server's per-address
 * connection cap, each sending GET /v1/stream with "Authorization: Bearer KEY". It
 * decodes the chunked body and the SSE frames of every stream, counts the events ("id:"
 * lines) of each, checks that their ids strictly increase, and measures each event's
 * latency from the "pub_us" (unix us at XADD) hqb-load puts in its data.
 *
 * Prints "READY <n>" on a line of its own once n streams answered 200, then, when
 * SECONDS passed or every stream got EXPECT events (EXPECT 0: run the time out), one
 * JSON line: connections, ready, min/max/total events per stream, out_of_order, errors
 * (refused, non-200, closed early), and latency p50/p99/max in ms. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAT_BUCKETS 10000 /* 0.1 ms buckets up to 1 s; beyond goes in the last */

enum { C_CONNECTING, C_HEAD, C_SIZE, C_DATA, C_CRLF, C_DONE };

typedef struct conn {
    int fd, state;
    char head[4096];
    size_t headlen;
    size_t chunk_left;
    char sz[32];
    size_t szlen;
    char line[512]; /* the current SSE line's first bytes (id and data are what we read) */
    size_t linelen;
    int line_over;
    uint64_t last_ms, last_seq;
    long events;
    int bad_order, failed;
} conn;

typedef struct stats {
    long ready, errors, out_of_order;
    uint64_t lat[LAT_BUCKETS];
    long lat_n;
    double lat_max_ms;
} stats;

static int64_t now_us(int clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fail(conn *c, stats *st) {
    if (!c->failed) {
        c->failed = 1;
        st->errors++;
    }
    c->state = C_DONE;
}

/* One complete SSE line (without its newline). */
static void sse_line(conn *c, stats *st, int64_t now) {
    const char *l = c->line;
    if (c->linelen >= 4 && memcmp(l, "id: ", 4) == 0) {
        char *dash;
        uint64_t ms = strtoull(l + 4, &dash, 10), seq = 0;
        if (*dash == '-')
            seq = strtoull(dash + 1, NULL, 10);
        if (c->events && (ms < c->last_ms || (ms == c->last_ms && seq <= c->last_seq))) {
            c->bad_order++;
            st->out_of_order++;
        }
        c->last_ms = ms;
        c->last_seq = seq;
        c->events++;
    } else if (c->linelen >= 6 && memcmp(l, "data: ", 6) == 0) {
        const char *p = memmem(l, c->linelen, "\"pub_us\":", 9);
        if (p) {
            int64_t pub = strtoll(p + 9, NULL, 10);
            double ms = (double)(now - pub) / 1000.0;
            long b = (long)(ms * 10);
            if (b < 0)
                b = 0;
            if (b >= LAT_BUCKETS)
                b = LAT_BUCKETS - 1;
            st->lat[b]++;
            st->lat_n++;
            if (ms > st->lat_max_ms)
                st->lat_max_ms = ms;
        }
    }
}

static void body_bytes(conn *c, stats *st, const char *p, size_t n, int64_t now) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            c->line[c->linelen < sizeof(c->line) ? c->linelen : sizeof(c->line) - 1] = '\0';
            sse_line(c, st, now);
            c->linelen = 0;
            continue;
        }
        if (c->linelen < sizeof(c->line) - 1)
            c->line[c->linelen] = p[i];
        c->linelen++;
    }
}

/* Chunked transfer decoding, then the SSE lines. */
static void on_bytes(conn *c, stats *st, const char *p, size_t n, int64_t now) {
    size_t i = 0;
    while (i < n && c->state != C_DONE) {
        switch (c->state) {
        case C_HEAD: {
            char *end;
            size_t k = n - i;
            if (k > sizeof(c->head) - 1 - c->headlen)
                k = sizeof(c->head) - 1 - c->headlen;
            memcpy(c->head + c->headlen, p + i, k);
            c->headlen += k;
            c->head[c->headlen] = '\0';
            end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                if (c->headlen == sizeof(c->head) - 1)
                    fail(c, st);
                i += k;
                break;
            }
            if (strncmp(c->head, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "hqb-sse: %.60s\n", c->head);
                fail(c, st);
                break;
            }
            st->ready++;
            /* bytes after the head belong to the body */
            i += (size_t)(end + 4 - c->head) - (c->headlen - k);
            c->state = C_SIZE;
            c->szlen = 0;
            break;
        }
        case C_SIZE:
            if (p[i] == '\n') {
                c->sz[c->szlen] = '\0';
                c->chunk_left = strtoul(c->sz, NULL, 16);
                c->szlen = 0;
                c->state = c->chunk_left ? C_DATA : C_DONE;
                if (!c->chunk_left)
                    fail(c, st); /* the server ended the stream */
            } else if (p[i] != '\r' && c->szlen < sizeof(c->sz) - 1) {
                c->sz[c->szlen++] = p[i];
            }
            i++;
            break;
        case C_DATA: {
            size_t k = n - i < c->chunk_left ? n - i : c->chunk_left;
            body_bytes(c, st, p + i, k, now);
            i += k;
            c->chunk_left -= k;
            if (!c->chunk_left)
                c->state = C_CRLF;
            break;
        }
        case C_CRLF:
            if (p[i] == '\n')
                c->state = C_SIZE;
            i++;
            break;
        default:
            i = n;
        }
    }
}

static double pct(const stats *st, double q) {
    long want = (long)(q * (double)st->lat_n), seen = 0;
    for (long b = 0; b < LAT_BUCKETS; b++) {
        seen += (long)st->lat[b];
        if (seen > want)
            return (double)b / 10.0;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: hqb-sse PORT N SECONDS KEY [EXPECT] [SOURCES]\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), nsrc = argc > 6 ? atoi(argv[6]) : 8;
    double secs = atof(argv[3]);
    const char *key = argv[4];
    long expect = argc > 5 ? atol(argv[5]) : 0;
    char req[512];
    int reqlen = snprintf(req, sizeof req,
                          "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
                          "text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n",
                          key);
    conn *cs = calloc((size_t)n, sizeof *cs);
    stats *st = calloc(1, sizeof *st);
    int ep = epoll_create1(0);
    static char buf[1 << 16];
    if (!cs || !st || ep < 0 || nsrc < 1 || nsrc > 250)
        return 1;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        conn *c = &cs[i];
        int one = 1;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
            fprintf(stderr, "hqb-sse: socket: %s (raise ulimit -n)\n", strerror(errno));
            return 1;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % nsrc));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            fprintf(stderr, "hqb-sse: bind: %s\n", strerror(errno));
            return 1;
        }
        dst.sin_port = htons((uint16_t)port);
        dst.sin_addr.s_addr = htonl(0x7f000001u);
        if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
            fail(c, st);
            continue;
        }
        c->state = C_CONNECTING;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    int64_t t0 = now_us(CLOCK_MONOTONIC), end = t0 + (int64_t)(secs * 1e6);
    int said_ready = 0;
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (now >= end)
            break;
        int k = epoll_wait(ep, evs, 256, (int)((end - now) / 1000) + 1);
        int64_t wall = now_us(CLOCK_REALTIME);
        for (int e = 0; e < k; e++) {
            conn *c = &cs[evs[e].data.u32];
            if (c->state == C_CONNECTING && (evs[e].events & EPOLLOUT)) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || write(c->fd, req, (size_t)reqlen) != reqlen) {
                    fail(c, st);
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[e].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->state = C_HEAD;
            }
            if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r > 0) {
                    on_bytes(c, st, buf, (size_t)r, wall);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    fail(c, st);
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                }
            }
        }
        if (!said_ready && st->ready + st->errors >= n) {
            said_ready = 1;
            printf("READY %ld\n", st->ready);
            fflush(stdout);
        }
        if (expect) {
            int all = 1;
            for (int i = 0; i < n && all; i++)
                all = cs[i].failed || cs[i].events >= expect;
            if (all && said_ready)
                break;
        }
    }
    long mn = -1, mx = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (mn < 0 || cs[i].events < mn)
            mn = cs[i].events;
        if (cs[i].events > mx)
            mx = cs[i].events;
        total += cs[i].events;
        close(cs[i].fd);
    }
    printf("{\"connections\":%d,\"ready\":%ld,\"min\":%ld,\"max\":%ld,\"total\":%ld,"
           "\"out_of_order\":%ld,\"errors\":%ld,\"latency_p50_ms\":%.1f,"
           "\"latency_p99_ms\":%.1f,\"latency_max_ms\":%.1f,\"seconds\":%.2f}\n",
           n, st->ready, mn, mx, total, st->out_of_order, st->errors, pct(st, 0.5), pct(st, 0.99),
           st->lat_max_ms, (double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
    free(cs);
    free(st);
    close(ep);
    return 0;
}
