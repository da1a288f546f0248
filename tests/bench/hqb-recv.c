/* hqb-recv -- the benchmark's webhook receiver: a small epoll HTTP/1.1 server on 127.0.0.1.
 *
 * Why our own and not only nginx: the benchmark needs exact counts per outcome, a
 * receiver that fails every Nth request, one that holds answers (to keep 1,000
 * deliveries in flight) and one that records publish->arrival latency. nginx does the
 * plain "return 204" run; this one does the rest and is about as fast per core.
 *
 *   hqb-recv [--port P] [--threads T] [--fail-every N] [--delay-ms D] [--latency]
 *
 * Prints the port it listens on (one line) once ready. POST/PUT: answers 204 (or 503
 * for every Nth request, counted over all threads), after D ms if --delay-ms. With
 * --latency, the body is searched for "pub_us":<unix microseconds> and now - pub_us is
 * recorded. GET /stats: JSON counters and latency percentiles; GET /reset: zero them.
 * GET /quit: exit. Keep-alive, pipelining, "Expect: 100-continue" handled; bodies need
 * Content-Length (what libcurl, wrk and Node's fetch send for a known-size body).
 * Runs until SIGTERM/SIGINT, /quit, or --max-seconds (default 3600) pass. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER 16384
#define MAX_BODY   (8 * 1024 * 1024)

typedef struct conn {
    int fd;
    unsigned gen; /* bumped on close so delayed answers for a dead fd are dropped */
    char *buf;
    size_t len, cap;
    int sent_continue;
} conn;

typedef struct pending {
    int fd;
    unsigned gen;
    int64_t due_us;
    int status;
} pending;

typedef struct worker {
    int lfd, ep;
    conn **conns; /* by fd */
    size_t nconns;
    pending *q; /* FIFO of delayed answers (constant delay keeps it ordered) */
    size_t qhead, qlen, qcap;
} worker;

static struct {
    int port, threads, fail_every, delay_ms, latency;
    int max_seconds;
} opt = {0, 1, 0, 0, 0, 3600};

static atomic_long n_req, n_ok, n_fail, n_expect, n_bytes, max_pending;
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *lat, *lat_at; /* delta us, and arrival (unix us) of each sample */
static size_t lat_n, lat_cap;
static volatile sig_atomic_t stop_flag;

static int64_t now_us(int clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_signal(int s) {
    (void)s;
    stop_flag = 1;
}

static conn *conn_get(worker *w, int fd) {
    if ((size_t)fd >= w->nconns) {
        size_t n = (size_t)fd * 2 + 64;
        conn **c = realloc(w->conns, n * sizeof *c);
        if (!c)
            return NULL;
        memset(c + w->nconns, 0, (n - w->nconns) * sizeof *c);
        w->conns = c;
        w->nconns = n;
    }
    if (!w->conns[fd]) {
        w->conns[fd] = calloc(1, sizeof(conn));
        if (!w->conns[fd])
            return NULL;
    }
    return w->conns[fd];
}

static void conn_close(worker *w, conn *c) {
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->gen++;
    c->len = 0;
    c->sent_continue = 0;
    c->fd = -1;
}

/* Blocking-enough write for tiny answers: loopback sockets have room; on EAGAIN we
 * spin briefly rather than buffer, since answers are < 200 bytes. */
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int answer(int fd, int status) {
    static const char ok[] = "HTTP/1.1 204 No Content\r\nServer: hqb\r\n\r\n";
    static const char fail[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: hqb\r\nContent-Length: 0\r\n\r\n";
    return status == 204 ? write_all(fd, ok, sizeof ok - 1) : write_all(fd, fail, sizeof fail - 1);
}

static void pct(int64_t *a, size_t n, double p, char *out, size_t len) {
    if (n == 0) {
        snprintf(out, len, "null");
        return;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    snprintf(out, len, "%.3f", (double)a[i] / 1000.0);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int answer_stats(int fd) {
    char p50[32], p90[32], p99[32], p999[32], mx[32], body[768], out[1024];
    pthread_mutex_lock(&lat_mu);
    int64_t *copy = lat_n ? malloc(lat_n * sizeof *copy) : NULL;
    size_t n = copy ? lat_n : 0;
    if (copy)
        memcpy(copy, lat, n * sizeof *copy);
    pthread_mutex_unlock(&lat_mu);
    if (copy)
        qsort(copy, n, sizeof *copy, cmp64);
    pct(copy, n, 0.5, p50, sizeof p50);
    pct(copy, n, 0.9, p90, sizeof p90);
    pct(copy, n, 0.99, p99, sizeof p99);
    pct(copy, n, 0.999, p999, sizeof p999);
    pct(copy, n, 1.0, mx, sizeof mx);
    free(copy);
    int bl = snprintf(
        body, sizeof body,
        "{\"requests\":%ld,\"ok\":%ld,\"failed\":%ld,\"expect_100\":%ld,"
        "\"body_bytes\":%ld,\"max_pending\":%ld,\"lat_n\":%zu,\"lat_ms\":{\"p50\":%s,\"p90\":%s,"
        "\"p99\":%s,\"p999\":%s,\"max\":%s}}\n",
        atomic_load(&n_req), atomic_load(&n_ok), atomic_load(&n_fail), atomic_load(&n_expect),
        atomic_load(&n_bytes), atomic_load(&max_pending), n, p50, p90, p99, p999, mx);
    int ol = snprintf(out, sizeof out,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      bl, body);
    return write_all(fd, out, (size_t)ol);
}

/* GET /samples: "arrival_us delta_us" per line, in arrival order (to see when the slow
 * ones happened). */
static int answer_samples(int fd) {
    pthread_mutex_lock(&lat_mu);
    size_t n = lat_n, cap = n * 48 + 1;
    char *body = malloc(cap), head[128];
    size_t bl = 0;
    for (size_t i = 0; body && i < n; i++)
        bl += (size_t)snprintf(body + bl, cap - bl, "%lld %lld\n", (long long)lat_at[i],
                               (long long)lat[i]);
    pthread_mutex_unlock(&lat_mu);
    if (!body)
        return -1;
    int hl =
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", bl);
    int rc = write_all(fd, head, (size_t)hl) < 0 || write_all(fd, body, bl) < 0 ? -1 : 0;
    free(body);
    return rc;
}

static void record_latency(const char *body, size_t n) {
    static const char key[] = "\"pub_us\":";
    const char *p = memmem(body, n, key, sizeof key - 1);
    if (!p)
        return;
    p += sizeof key - 1;
    int64_t v = 0;
    while (p < body + n && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    int64_t d = now_us(CLOCK_REALTIME) - v;
    pthread_mutex_lock(&lat_mu);
    if (lat_n == lat_cap) {
        size_t nc = lat_cap ? lat_cap * 2 : 65536;
        int64_t *x = realloc(lat, nc * sizeof *x);
        if (x)
            lat = x;
        int64_t *y = x ? realloc(lat_at, nc * sizeof *y) : NULL;
        if (!y) {
            pthread_mutex_unlock(&lat_mu);
            return;
        }
        lat_at = y;
        lat_cap = nc;
    }
    lat_at[lat_n] = v + d;
    lat[lat_n++] = d;
    pthread_mutex_unlock(&lat_mu);
}

static int queue_push(worker *w, conn *c, int status) {
    if (w->qlen == w->qcap) {
        size_t nc = w->qcap ? w->qcap * 2 : 1024;
        pending *q = malloc(nc * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < w->qlen; i++)
            q[i] = w->q[(w->qhead + i) % w->qcap];
        free(w->q);
        w->q = q;
        w->qcap = nc;
        w->qhead = 0;
    }
    pending *p = &w->q[(w->qhead + w->qlen) % w->qcap];
    p->fd = c->fd;
    p->gen = c->gen;
    p->status = status;
    p->due_us = now_us(CLOCK_MONOTONIC) + (int64_t)opt.delay_ms * 1000;
    w->qlen++;
    long cur = atomic_load(&max_pending);
    while ((long)w->qlen > cur && !atomic_compare_exchange_weak(&max_pending, &cur, (long)w->qlen))
        ;
    return 0;
}

/* Answers due delayed requests; returns ms until the next one (-1 if none). */
static int queue_run(worker *w) {
    int64_t now = now_us(CLOCK_MONOTONIC);
    while (w->qlen) {
        pending *p = &w->q[w->qhead];
        if (p->due_us > now)
            return (int)((p->due_us - now + 999) / 1000);
        conn *c = (size_t)p->fd < w->nconns ? w->conns[p->fd] : NULL;
        if (c && c->fd == p->fd && c->gen == p->gen && answer(p->fd, p->status) < 0)
            conn_close(w, c);
        w->qhead = (w->qhead + 1) % w->qcap;
        w->qlen--;
    }
    return -1;
}

/* Parses and answers every complete request in c->buf. -1: close the connection. */
static int handle(worker *w, conn *c) {
    for (;;) {
        char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return c->len > MAX_HEADER ? -1 : 0;
        size_t hlen = (size_t)(end - c->buf) + 4;
        long clen = 0;
        int expect = 0, is_get = c->len >= 4 && memcmp(c->buf, "GET ", 4) == 0;
        for (char *line = memchr(c->buf, '\n', hlen); line && line < end;
             line = memchr(line + 1, '\n', (size_t)(end - line))) {
            char *h = line + 1;
            if (strncasecmp(h, "content-length:", 15) == 0)
                clen = strtol(h + 15, NULL, 10);
            else if (strncasecmp(h, "expect:", 7) == 0)
                expect = 1;
        }
        if (clen < 0 || clen > MAX_BODY)
            return -1;
        if (c->len < hlen + (size_t)clen) {
            if (expect && !c->sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (write_all(c->fd, cont, sizeof cont - 1) < 0)
                    return -1;
                c->sent_continue = 1;
            }
            return 0;
        }
        if (is_get) {
            if (memcmp(c->buf + 4, "/stats", 6) == 0) {
                if (answer_stats(c->fd) < 0)
                    return -1;
            } else if (memcmp(c->buf + 4, "/samples", 8) == 0) {
                if (answer_samples(c->fd) < 0)
                    return -1;
            } else if (memcmp(c->buf + 4, "/reset", 6) == 0) {
                atomic_store(&n_req, 0);
                atomic_store(&n_ok, 0);
                atomic_store(&n_fail, 0);
                atomic_store(&n_expect, 0);
                atomic_store(&n_bytes, 0);
                atomic_store(&max_pending, 0);
                pthread_mutex_lock(&lat_mu);
                lat_n = 0;
                pthread_mutex_unlock(&lat_mu);
                if (answer(c->fd, 204) < 0)
                    return -1;
            } else if (memcmp(c->buf + 4, "/quit", 5) == 0) {
                stop_flag = 1;
                answer(c->fd, 204);
                return -1;
            } else if (answer(c->fd, 204) < 0) {
                return -1;
            }
        } else {
            long nth = atomic_fetch_add(&n_req, 1) + 1;
            atomic_fetch_add(&n_bytes, clen);
            if (expect)
                atomic_fetch_add(&n_expect, 1);
            int status = opt.fail_every > 0 && nth % opt.fail_every == 0 ? 503 : 204;
            atomic_fetch_add(status == 204 ? &n_ok : &n_fail, 1);
            if (opt.latency)
                record_latency(c->buf + hlen, (size_t)clen);
            if (opt.delay_ms > 0) {
                if (queue_push(w, c, status) < 0)
                    return -1;
            } else if (answer(c->fd, status) < 0) {
                return -1;
            }
        }
        size_t used = hlen + (size_t)clen;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->sent_continue = 0;
    }
}

static void on_readable(worker *w, conn *c) {
    for (;;) {
        if (c->cap - c->len < 16384) {
            size_t nc = c->cap ? c->cap * 2 : 32768;
            char *b = realloc(c->buf, nc);
            if (!b || nc > MAX_BODY + MAX_HEADER + 65536) {
                conn_close(w, c);
                return;
            }
            c->buf = b;
            c->cap = nc;
        }
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k == 0) {
            conn_close(w, c);
            return;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_close(w, c);
            return;
        }
        c->len += (size_t)k;
        if (handle(w, c) < 0) {
            conn_close(w, c);
            return;
        }
        if ((size_t)k < 16384)
            return; /* drained for now; edge cases come back as another event */
    }
}

static void *run(void *arg) {
    worker *w = arg;
    struct epoll_event evs[256];
    int64_t deadline = now_us(CLOCK_MONOTONIC) + (int64_t)opt.max_seconds * 1000000;
    while (!stop_flag && now_us(CLOCK_MONOTONIC) < deadline) {
        int tmo = queue_run(w);
        if (tmo < 0 || tmo > 200)
            tmo = 200; /* wake up to notice stop_flag */
        int n = epoll_wait(w->ep, evs, 256, tmo);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == w->lfd) {
                for (;;) {
                    int cfd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    int one = 1;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *c = conn_get(w, cfd);
                    if (!c) {
                        close(cfd);
                        continue;
                    }
                    c->fd = cfd;
                    c->len = 0;
                    c->sent_continue = 0;
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(w->ep, EPOLL_CTL_ADD, cfd, &ev);
                }
            } else if ((size_t)fd < w->nconns && w->conns[fd] && w->conns[fd]->fd == fd) {
                on_readable(w, w->conns[fd]);
            }
        }
    }
    stop_flag = 1;
    return NULL;
}

static int listen_on(int port, int *bound) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--latency")) {
            opt.latency = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hqb-recv: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port"))
            opt.port = atoi(v);
        else if (!strcmp(a, "--threads"))
            opt.threads = atoi(v);
        else if (!strcmp(a, "--fail-every"))
            opt.fail_every = atoi(v);
        else if (!strcmp(a, "--delay-ms"))
            opt.delay_ms = atoi(v);
        else if (!strcmp(a, "--max-seconds"))
            opt.max_seconds = atoi(v);
        else {
            fprintf(stderr, "usage: hqb-recv [--port P] [--threads T] [--fail-every N] "
                            "[--delay-ms D] [--latency] [--max-seconds S]\n");
            return 2;
        }
    }
    if (opt.threads < 1 || opt.threads > 16)
        opt.threads = 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    pthread_t *th = calloc((size_t)opt.threads, sizeof *th);
    if (!ws || !th)
        return 1;
    int port = opt.port;
    for (int i = 0; i < opt.threads; i++) {
        ws[i].lfd = listen_on(port, &port);
        ws[i].ep = epoll_create1(EPOLL_CLOEXEC);
        if (ws[i].lfd < 0 || ws[i].ep < 0) {
            perror("hqb-recv: listen");
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = ws[i].lfd};
        epoll_ctl(ws[i].ep, EPOLL_CTL_ADD, ws[i].lfd, &ev);
    }
    printf("%d\n", port);
    fflush(stdout);
    for (int i = 1; i < opt.threads; i++)
        pthread_create(&th[i], NULL, run, &ws[i]);
    run(&ws[0]);
    for (int i = 1; i < opt.threads; i++)
        pthread_join(th[i], NULL);
    return 0;
}
