/* scheduler.c -- see scheduler.h. */
#include "scheduler.h"
#include <curl/curl.h>
#include <stdlib.h>
#include "hq.h"
#include "string_map.h"

typedef struct ep_window {
    double cwnd;     /* the window, fractional while it grows by 1/window */
    double ssthresh; /* slow start below, additive increase above */
    int since_cut;   /* results since the last decrease */
    /* latency of successes, in microseconds */
    int n_lat;       /* successes seen, counted up to SCHED_LAT_LONG */
    double recent;   /* EWMA 1/SCHED_LAT_RECENT (the mean while fewer samples) */
    double longer;   /* EWMA 1/SCHED_LAT_LONG (likewise), smooth enough for a floor */
    double floor;    /* the lowest `longer` since the floor was (re)learned */
    int slow_rounds; /* latency cuts in a row, no success below the threshold between */
} ep_window;

struct scheduler {
    strmap *eps; /* endpoint id -> ep_window* */
    int max;
};

sched_signal scheduler_signal_of(int curl_code, long http_status, int retry_after) {
    switch (curl_code) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
        return SCHED_OVERLOAD;
    default:
        return SCHED_NEUTRAL;
    }
    if (http_status >= 200 && http_status <= 299)
        return SCHED_OK;
    if (http_status == 429 || (http_status == 503 && retry_after))
        return SCHED_OVERLOAD;
    return SCHED_NEUTRAL;
}

scheduler *scheduler_new(int max_window) {
    scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->eps = strmap_new();
    if (!s->eps) {
        free(s);
        return NULL;
    }
    s->max = max_window > 0 ? max_window : 1;
    return s;
}

static void free_val(void *ctx, const char *key, void *val) {
    (void)ctx;
    (void)key;
    free(val);
}

void scheduler_free(scheduler *s) {
    if (!s)
        return;
    strmap_each(s->eps, free_val, NULL);
    strmap_free(s->eps);
    free(s);
}

static int initial(const scheduler *s) {
    return SCHED_INITIAL_WINDOW < s->max ? SCHED_INITIAL_WINDOW : s->max;
}

int scheduler_window(const scheduler *s, const char *ep_id) {
    const ep_window *w = strmap_get(s->eps, ep_id);
    if (!w)
        return initial(s);
    int n = (int)w->cwnd;
    return n < 1 ? 1 : n > s->max ? s->max : n;
}

enum { LAT_FINE, LAT_RISING, LAT_QUEUEING };

/* Feed one success's latency and judge the receiver's: LAT_QUEUEING when the recent
 * latency is over SCHED_LAT_FACTOR x the floor, LAT_RISING over SCHED_LAT_SS_EXIT x, and
 * either only when over the floor by more than SCHED_LAT_MIN_EXCESS_US. */
static int latency_level(ep_window *w, int64_t latency_us) {
    double x = latency_us > 0 ? (double)latency_us : 0.0;
    if (w->n_lat < SCHED_LAT_LONG)
        w->n_lat++;
    if (w->n_lat > SCHED_LAT_RECENT && x > w->recent * SCHED_LAT_CLIP)
        x = w->recent * SCHED_LAT_CLIP;
    /* 1/n at first (the mean so far), then 1/SCHED_LAT_RECENT and 1/SCHED_LAT_LONG */
    w->recent += (x - w->recent) / (w->n_lat < SCHED_LAT_RECENT ? w->n_lat : SCHED_LAT_RECENT);
    w->longer += (x - w->longer) / w->n_lat;
    if (w->n_lat < SCHED_LAT_FLOOR_AFTER)
        return LAT_FINE;
    if (w->floor < 0 || w->longer < w->floor)
        w->floor = w->longer;
    if (w->recent - w->floor <= SCHED_LAT_MIN_EXCESS_US)
        return LAT_FINE;
    if (w->recent > w->floor * SCHED_LAT_FACTOR)
        return LAT_QUEUEING;
    return w->recent > w->floor * SCHED_LAT_SS_EXIT ? LAT_RISING : LAT_FINE;
}

void scheduler_on_result(scheduler *s, const char *ep_id, sched_signal sig, int64_t latency_us) {
    ep_window *w = strmap_get(s->eps, ep_id);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w || strmap_put(s->eps, ep_id, w) != HQ_OK) {
            free(w);
            return; /* out of memory: this endpoint keeps the initial window */
        }
        w->cwnd = initial(s);
        w->ssthresh = s->max;
        w->floor = -1; /* none yet */
    }
    w->since_cut++;
    int lat = sig == SCHED_OK ? latency_level(w, latency_us) : LAT_FINE;
    if (lat == LAT_RISING && w->cwnd < w->ssthresh)
        w->ssthresh = w->cwnd; /* leave slow start before the queue builds */
    if (sig == SCHED_OK && lat != LAT_QUEUEING) {
        w->slow_rounds = 0;
        w->cwnd += w->cwnd < w->ssthresh ? 1.0 : 1.0 / w->cwnd;
        if (w->cwnd > s->max)
            w->cwnd = s->max;
    } else if (sig == SCHED_OK && w->since_cut >= (int)w->cwnd) {
        /* the queue is building at the receiver: back off gently, grow additively */
        w->cwnd = w->cwnd * SCHED_LAT_BACKOFF < 1 ? 1 : w->cwnd * SCHED_LAT_BACKOFF;
        w->ssthresh = w->cwnd;
        w->since_cut = 0;
        if (++w->slow_rounds >= SCHED_LAT_RELEARN || w->cwnd <= initial(s)) {
            /* backing off has not brought the latency down, or the window is down to
             * what the floor was learned with: not our load, the receiver is slower
             * now. Its latency now is the floor from here on */
            w->floor = w->longer = w->recent;
            w->slow_rounds = 0;
        }
    } else if (sig == SCHED_OVERLOAD && w->since_cut >= (int)w->cwnd) {
        w->cwnd = w->cwnd / 2 < 1 ? 1 : w->cwnd / 2;
        w->ssthresh = w->cwnd;
        w->since_cut = 0;
    }
}

typedef struct keep_ctx {
    strmap *keep;
    strmap *eps;
    char **gone;
    size_t n, cap;
} keep_ctx;

static void collect_gone(void *ctx, const char *key, void *val) {
    keep_ctx *k = ctx;
    (void)val;
    if (strmap_get(k->keep, key) || k->n == k->cap)
        return;
    k->gone[k->n++] = (char *)key;
}

void scheduler_keep_only(scheduler *s, const char *const *ids, size_t n) {
    size_t have = strmap_len(s->eps);
    if (have == 0)
        return;
    keep_ctx k = {.keep = strmap_new(), .eps = s->eps, .cap = have};
    k.gone = calloc(have, sizeof *k.gone);
    if (!k.keep || !k.gone)
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        strmap_put(k.keep, ids[i], (void *)ids[i]);
    strmap_each(s->eps, collect_gone, &k);
    for (size_t i = 0; i < k.n; i++) {
        /* strmap_del frees its copy of the key: read the value first */
        char *key = k.gone[i];
        void *v = strmap_get(s->eps, key);
        strmap_del(s->eps, key);
        free(v);
    }
cleanup:
    strmap_free(k.keep);
    free(k.gone);
}

int scheduler_plan(size_t n, const int *ready, const int *inflight, const int *window,
                   int free_slots, size_t *rr, int *start) {
    int total = 0;
    for (size_t i = 0; i < n; i++)
        start[i] = 0;
    if (n == 0 || free_slots <= 0)
        return 0;
    size_t first = *rr % n, last = first;
    for (int progress = 1; progress && total < free_slots;) {
        progress = 0;
        for (size_t k = 0; k < n && total < free_slots; k++) {
            size_t i = (first + k) % n;
            if (start[i] < ready[i] && inflight[i] + start[i] < window[i]) {
                start[i]++;
                total++;
                progress = 1;
                last = i;
            }
        }
    }
    *rr = last + 1;
    return total;
}
