/* event_loop.c -- see event_loop.h. Watches live in an array indexed by fd (fds are
 * small); epoll carries the fd, and each ready fd is looked up again at dispatch, so a
 * watch removed by an earlier callback of the same run is skipped, never called. */
#include "event_loop.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "hq.h"

#define EVL_BATCH 256

typedef struct watch {
    evloop_fn fn;
    void *ud;
    int events;
    int on; /* registered with epoll */
} watch;

struct evloop {
    int ep;
    watch *w; /* [cap], indexed by fd */
    int cap;
    sigset_t mask;
    int has_mask;
};

evloop *evloop_new(char *err, size_t errlen) {
    evloop *l = calloc(1, sizeof *l);
    if (!l) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0) {
        hq_seterr(err, errlen, "epoll_create1: %s", strerror(errno));
        free(l);
        return NULL;
    }
    return l;
}

void evloop_free(evloop *l) {
    if (!l)
        return;
    close(l->ep);
    free(l->w);
    free(l);
}

static uint32_t epoll_bits(int events) {
    return (events & EVL_IN ? EPOLLIN : 0u) | (events & EVL_OUT ? EPOLLOUT : 0u);
}

int evloop_watch(evloop *l, int fd, int events, evloop_fn fn, void *ud) {
    if (!l || fd < 0 || !fn)
        return HQ_ERR;
    if (fd >= l->cap) {
        int cap = l->cap ? l->cap : 64;
        while (cap <= fd)
            cap *= 2;
        watch *nw = realloc(l->w, (size_t)cap * sizeof *nw);
        if (!nw)
            return HQ_ERR;
        memset(nw + l->cap, 0, (size_t)(cap - l->cap) * sizeof *nw);
        l->w = nw;
        l->cap = cap;
    }
    watch *w = &l->w[fd];
    /* the same watch again: nothing for the kernel to change (curl re-asks often). Only
     * for the same owner: an fd closed behind the loop's back and reused by someone
     * else must reach epoll again */
    if (w->on && w->events == events && w->fn == fn && w->ud == ud)
        return HQ_OK;
    struct epoll_event ev = {.events = epoll_bits(events), .data.fd = fd};
    if (epoll_ctl(l->ep, w->on ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* an fd closed and reused behind our back is still in epoll's table under the
         * old registration only if the old file is open elsewhere: start clean */
        if (errno == EEXIST && epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
            goto ok;
        if (errno == ENOENT && epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) == 0)
            goto ok;
        return HQ_ERR;
    }
ok:
    w->on = 1;
    w->fn = fn;
    w->ud = ud;
    w->events = events;
    return HQ_OK;
}

void evloop_unwatch(evloop *l, int fd) {
    if (!l || fd < 0 || fd >= l->cap || !l->w[fd].on)
        return;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL); /* fails harmlessly if already closed */
    memset(&l->w[fd], 0, sizeof l->w[fd]);
}

void evloop_unwatch_owned(evloop *l, int fd, evloop_fn fn, void *ud) {
    if (l && fd >= 0 && fd < l->cap && l->w[fd].on && l->w[fd].fn == fn && l->w[fd].ud == ud)
        evloop_unwatch(l, fd);
}

int evloop_watching(const evloop *l, int fd) {
    return l && fd >= 0 && fd < l->cap && l->w[fd].on;
}

void evloop_set_sigmask(evloop *l, const sigset_t *mask) {
    if (!l)
        return;
    l->has_mask = mask != NULL;
    if (mask)
        l->mask = *mask;
}

int evloop_run(evloop *l, int timeout_ms) {
    struct epoll_event evs[EVL_BATCH];
    int n = epoll_pwait(l->ep, evs, EVL_BATCH, timeout_ms, l->has_mask ? &l->mask : NULL);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int called = 0;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd < 0 || fd >= l->cap || !l->w[fd].on)
            continue; /* unwatched by an earlier callback of this run */
        watch *w = &l->w[fd];
        int what = (evs[i].events & EPOLLIN ? EVL_IN : 0) |
                   (evs[i].events & EPOLLOUT ? EVL_OUT : 0) |
                   (evs[i].events & (EPOLLERR | EPOLLHUP) ? EVL_ERR : 0);
        w->fn(w->ud, fd, what);
        called++;
    }
    return called;
}
