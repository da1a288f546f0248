/* hqb-load -- the benchmark's Redis loader and fixed-rate publisher (hiredis, pipelined).
 *
 *   hqb-load events PORT KEY N TYPES [BYTES]   pre-load N events (XADD KEY * type T data D ts MS)
 *   hqb-load pub    PORT KEY RATE SECS TYPES [BYTES]  publish RATE events/s for SECS seconds
 *   hqb-load delay  PORT KEY N EVENT_ID ENDPOINT_ID    ZADD N due-now members into KEY
 *
 * TYPES is a literal event type, or "PREFIX%d.SUFFIX/K": event i gets type
 * PREFIX<i mod K>.SUFFIX (so K endpoints subscribed one type each get one event each).
 * Several specs joined by "," with a weight "*W" each interleave in that proportion:
 * "hot.created*9,cold%d.created/100*1" makes 9 of every 10 events hot.created and the
 * 10th cold<j>.created, j counting cold events only (so the 100 cold types share them
 * evenly).
 * data is {"pub_us":<unix us at send>,"pad":"xx..."} padded to BYTES (default 1024), so
 * the receiver can measure publish->arrival from the delivered body. Fields follow
 * docs/keys.md (type, data, ts). Prints one JSON line with what it did. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000

static int64_t now_us(int clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define MAX_SPECS 8

typedef struct spec {
    char pre[128], suf[128], lit[300];
    long k; /* 0: literal */
    long w; /* weight in the cycle */
} spec;

typedef struct types {
    spec s[MAX_SPECS];
    int n;
    long total_w;
} types;

static void spec_parse(spec *t, const char *s, size_t len) {
    char buf[300];
    snprintf(buf, sizeof buf, "%.*s", (int)len, s);
    memset(t, 0, sizeof *t);
    t->w = 1;
    char *star = strrchr(buf, '*');
    if (star && star[1] >= '0' && star[1] <= '9') {
        t->w = atol(star + 1);
        if (t->w < 1)
            t->w = 1;
        *star = 0;
    }
    const char *pct = strstr(buf, "%d"), *slash = strrchr(buf, '/');
    if (pct && slash && slash > pct) {
        snprintf(t->pre, sizeof t->pre, "%.*s", (int)(pct - buf), buf);
        snprintf(t->suf, sizeof t->suf, "%.*s", (int)(slash - pct - 2), pct + 2);
        t->k = atol(slash + 1);
        if (t->k < 1)
            t->k = 1;
    } else {
        snprintf(t->lit, sizeof t->lit, "%s", buf);
    }
}

static void types_parse(types *t, const char *s) {
    memset(t, 0, sizeof *t);
    while (t->n < MAX_SPECS) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        spec_parse(&t->s[t->n], s, len);
        t->total_w += t->s[t->n].w;
        t->n++;
        if (!comma)
            break;
        s = comma + 1;
    }
}

/* Event i: its place in the weighted cycle picks the spec; the spec's own running count
 * picks the type within it. */
static void types_get(const types *t, long i, char *out, size_t len) {
    long cycle = i / t->total_w, slot = i % t->total_w;
    int j = 0;
    while (j < t->n - 1 && slot >= t->s[j].w)
        slot -= t->s[j++].w;
    const spec *sp = &t->s[j];
    long local = cycle * sp->w + slot;
    if (sp->k)
        snprintf(out, len, "%s%ld%s", sp->pre, local % sp->k, sp->suf);
    else
        snprintf(out, len, "%s", sp->lit);
}

/* Fills data with the 1 KiB-ish JSON payload; returns its length. */
static size_t make_data(char *data, size_t bytes, int64_t pub_us) {
    int n = snprintf(data, bytes + 1, "{\"pub_us\":%lld,\"pad\":\"", (long long)pub_us);
    size_t len = (size_t)n;
    while (len + 2 < bytes)
        data[len++] = 'x';
    data[len++] = '"';
    data[len++] = '}';
    data[len] = 0;
    return len;
}

static int drain(redisContext *c, long n) {
    for (long i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "hqb-load: %s\n", c->errstr);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "hqb-load: %s\n", r->str);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

static int append_event(redisContext *c, const char *key, const types *t, long i, char *data,
                        size_t bytes) {
    char type[300], ts[32];
    int64_t us = now_us(CLOCK_REALTIME);
    size_t dl = make_data(data, bytes, us);
    types_get(t, i, type, sizeof type);
    snprintf(ts, sizeof ts, "%lld", (long long)(us / 1000));
    const char *argv[] = {"XADD", key, "*", "type", type, "data", data, "ts", ts};
    size_t argl[] = {4, strlen(key), 1, 4, strlen(type), 4, dl, 2, strlen(ts)};
    return redisAppendCommandArgv(c, 9, argv, argl) == REDIS_OK ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: see the comment at the top of hqb-load.c\n");
        return 2;
    }
    const char *mode = argv[1], *key = argv[3];
    struct timeval tv = {30, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", atoi(argv[2]), tv);
    if (!c || c->err) {
        fprintf(stderr, "hqb-load: connect: %s\n", c ? c->errstr : "oom");
        return 1;
    }
    redisSetTimeout(c, tv);
    int64_t t0 = now_us(CLOCK_MONOTONIC);
    if (!strcmp(mode, "events")) {
        long n = atol(argv[4]);
        size_t bytes = argc > 6 ? (size_t)atol(argv[6]) : 1024;
        types t;
        types_parse(&t, argv[5]);
        char *data = malloc(bytes + 64);
        for (long i = 0; i < n; i += BATCH) {
            long k = n - i < BATCH ? n - i : BATCH;
            for (long j = 0; j < k; j++)
                if (append_event(c, key, &t, i + j, data, bytes) < 0)
                    return 1;
            if (drain(c, k) < 0)
                return 1;
        }
        printf("{\"mode\":\"events\",\"n\":%ld,\"seconds\":%.3f}\n", n,
               (double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
        free(data);
    } else if (!strcmp(mode, "pub")) {
        double rate = atof(argv[4]), secs = atof(argv[5]);
        size_t bytes = argc > 7 ? (size_t)atol(argv[7]) : 1024;
        types t;
        types_parse(&t, argc > 6 ? argv[6] : "bench.event");
        char *data = malloc(bytes + 64);
        long total = (long)(rate * secs), sent = 0;
        /* Absolute schedule: event i is due at t0 + i/rate, so a slow tick catches up
         * instead of drifting. Each tick sends what is due as one pipeline. */
        while (sent < total) {
            int64_t el = now_us(CLOCK_MONOTONIC) - t0;
            long due = (long)((double)el * rate / 1e6) + 1;
            if (due > total)
                due = total;
            long k = due - sent;
            for (long j = 0; j < k; j++)
                if (append_event(c, key, &t, sent + j, data, bytes) < 0)
                    return 1;
            if (k > 0 && drain(c, k) < 0)
                return 1;
            sent += k;
            int64_t next = t0 + (int64_t)((double)sent * 1e6 / rate);
            int64_t wait = next - now_us(CLOCK_MONOTONIC);
            if (wait > 0 && sent < total) {
                struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
        printf("{\"mode\":\"pub\",\"n\":%ld,\"seconds\":%.3f}\n", sent,
               (double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
        free(data);
    } else if (!strcmp(mode, "delay")) {
        long n = atol(argv[4]);
        const char *ev = argv[5], *ep = argc > 6 ? argv[6] : "ep_x";
        enum { PER_CMD = 500 };
        const char **av = malloc((2 + 2 * PER_CMD) * sizeof *av);
        size_t *al = malloc((2 + 2 * PER_CMD) * sizeof *al);
        char(*mem)[200] = malloc(PER_CMD * sizeof *mem);
        long cmds = 0;
        for (long i = 0; i < n; i += PER_CMD) {
            long k = n - i < PER_CMD ? n - i : PER_CMD;
            av[0] = "ZADD";
            al[0] = 4;
            av[1] = key;
            al[1] = strlen(key);
            for (long j = 0; j < k; j++) {
                /* "<event stream id> <endpoint id> <attempt> <delivery id>", score 0 */
                int ml = snprintf(mem[j], sizeof mem[j], "%s %s 2 dlv_BENCH%020ld", ev, ep, i + j);
                av[2 + 2 * j] = "0";
                al[2 + 2 * j] = 1;
                av[3 + 2 * j] = mem[j];
                al[3 + 2 * j] = (size_t)ml;
            }
            if (redisAppendCommandArgv(c, (int)(2 + 2 * k), av, al) != REDIS_OK)
                return 1;
            if (++cmds % 20 == 0 && drain(c, 20) < 0)
                return 1;
        }
        if (drain(c, cmds % 20) < 0)
            return 1;
        printf("{\"mode\":\"delay\",\"n\":%ld,\"seconds\":%.3f}\n", n,
               (double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
        free(av);
        free(al);
        free(mem);
    } else {
        fprintf(stderr, "hqb-load: unknown mode %s\n", mode);
        return 2;
    }
    redisFree(c);
    return 0;
}
