/* event_loop.h -- the worker's one wait: epoll over every socket it cares about.
 *
 * Callers watch a file descriptor with a callback and the events they want; one
 * evloop_run waits once (until a watched fd is ready, the timeout passes, or a signal
 * arrives) and calls the callbacks of the ready fds. Level-triggered, so a callback that
 * reads only part of what is there is called again on the next run. Callbacks may watch
 * and unwatch any fd, including their own, while the loop dispatches: an fd unwatched
 * during a run gets no more callbacks from that run.
 *
 * Signals: evloop_set_sigmask gives the mask to wait with (epoll_pwait). The worker
 * blocks SIGTERM/SIGINT everywhere else and waits with them open, so a stop signal is
 * delivered only while it waits and always wakes it: no signal can slip in between
 * checking the stop flag and going to sleep. */
#ifndef HQ_EVENT_LOOP_H
#define HQ_EVENT_LOOP_H
#include <signal.h>
#include <stddef.h>

#define EVL_IN  1
#define EVL_OUT 2
#define EVL_ERR 4 /* error or hang-up: reported whatever was asked */

typedef void (*evloop_fn)(void *ud, int fd, int events);

typedef struct evloop evloop; /* opaque */

evloop *evloop_new(char *err, size_t errlen); /* NULL + err */
void evloop_free(evloop *l);                  /* NULL-safe; closes only its epoll fd */

/* Watch fd for events (EVL_IN | EVL_OUT; 0 keeps it registered but quiet) with fn,
 * replacing what was there. HQ_OK or HQ_ERR (errno from epoll_ctl). */
int evloop_watch(evloop *l, int fd, int events, evloop_fn fn, void *ud);
/* No-op if not watched. Call it before close(fd): epoll forgets a closed fd by itself,
 * but the loop's table does not, and watching the same fd again with the same events and
 * callback is taken as a no-op. */
void evloop_unwatch(evloop *l, int fd);
/* Unwatch fd only if it is still watched with fn and ud: for an fd its owner may have
 * seen closed and reused by someone else meanwhile. */
void evloop_unwatch_owned(evloop *l, int fd, evloop_fn fn, void *ud);
int evloop_watching(const evloop *l, int fd);

/* The signal mask evloop_run waits with (copied); NULL = the thread's own. */
void evloop_set_sigmask(evloop *l, const sigset_t *mask);

/* Wait up to timeout_ms (-1: until something happens, 0: just look) and dispatch.
 * Returns the number of callbacks called, 0 on timeout or signal, -1 on error. */
int evloop_run(evloop *l, int timeout_ms);

#endif
