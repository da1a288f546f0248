/* job.c -- see job.h. */
#include "job.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backoff.h"
#include "hq.h"
#include "log.h"
#include "string_map.h"

typedef struct job_list_head {
    job *head, *tail;
    size_t n;
} job_list_head;

struct job_table {
    job_list_head lists[JOB_LISTS + 1]; /* the extra one holds NEW jobs */
    strmap *by_sid;                     /* sid -> job* for every held job */
    strmap *inflight;                   /* endpoint id -> int* transfers in flight */
};

const char *job_state_name(job_state s) {
    /* designated initializers: test_job checks every state has a name */
    static const char *const names[JOB_NSTATES] = {
        [JOB_NEW] = "new",           [JOB_FETCH] = "fetch",         [JOB_READY] = "ready",
        [JOB_INFLIGHT] = "inflight", [JOB_DELIVERED] = "delivered", [JOB_RETRY] = "retry",
        [JOB_DEAD] = "dead",         [JOB_DISABLED] = "disabled",   [JOB_DROPPED] = "dropped",
        [JOB_DEFERRED] = "deferred", [JOB_LANED] = "laned"};
    return (unsigned)s < JOB_NSTATES && names[s] ? names[s] : "?";
}

int job_state_is_final(job_state s) {
    return s >= JOB_DELIVERED && s < JOB_NSTATES;
}

/* The diagram of job.h, as data: allowed[from] is a bit set of the states it may go to. */
#define B(s) (1u << (s))
static const unsigned allowed[JOB_NSTATES] = {
    [JOB_NEW] = B(JOB_FETCH) | B(JOB_READY) | B(JOB_DEAD),
    [JOB_FETCH] = B(JOB_READY) | B(JOB_DEAD),
    [JOB_READY] = B(JOB_INFLIGHT) | B(JOB_DISABLED) | B(JOB_DROPPED) | B(JOB_DEFERRED) |
                  B(JOB_RETRY) | B(JOB_DEAD) | B(JOB_LANED),
    [JOB_INFLIGHT] = B(JOB_DELIVERED) | B(JOB_RETRY) | B(JOB_DEAD),
};
#undef B

int job_transition_ok(job_state from, job_state to) {
    if ((unsigned)from >= JOB_NSTATES || (unsigned)to >= JOB_NSTATES)
        return 0;
    return (allowed[from] >> to) & 1u;
}

/* What each final disposition writes (docs/worker.md "Results"): the one table. */
static const job_writes writes[JOB_NSTATES] = {
    [JOB_DELIVERED] = {"delivered", JOB_FAILURES_RESET, JOB_SETTLE_ACK, 0},
    [JOB_RETRY] = {"retry", JOB_FAILURES_COUNT, JOB_SETTLE_RETRY, 1},
    [JOB_DEAD] = {"dead", JOB_FAILURES_COUNT, JOB_SETTLE_DEAD, 0},
    [JOB_DISABLED] = {"disabled", JOB_FAILURES_KEEP, JOB_SETTLE_ACK, 0},
    [JOB_DROPPED] = {NULL, JOB_FAILURES_KEEP, JOB_SETTLE_ACK, 0},
    [JOB_DEFERRED] = {NULL, JOB_FAILURES_KEEP, JOB_SETTLE_RETRY, 0},
    [JOB_LANED] = {NULL, JOB_FAILURES_KEEP, JOB_SETTLE_ACK, 0}, /* after lane_push.lua */
};

const job_writes *job_writes_of(job_state s) {
    return job_state_is_final(s) ? &writes[s] : NULL;
}

static int list_of(job_state s) {
    switch (s) {
    case JOB_FETCH:
        return JOB_LIST_FETCH;
    case JOB_READY:
        return JOB_LIST_READY;
    case JOB_INFLIGHT:
        return JOB_LIST_INFLIGHT;
    case JOB_NEW:
        return JOB_LISTS;
    case JOB_NSTATES:
        return -1;
    default:
        return JOB_LIST_DONE;
    }
}

static void list_remove(job_list_head *l, job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
    l->n--;
}

static void list_append(job_list_head *l, job *j) {
    j->prev = l->tail;
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

job_table *job_table_new(void) {
    job_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->by_sid = strmap_new();
    t->inflight = strmap_new();
    if (!t->by_sid || !t->inflight) {
        job_table_free(t);
        return NULL;
    }
    return t;
}

static void release(job *j) {
    job_table *t = j->table;
    int l = list_of(j->st);
    if (l >= 0)
        list_remove(&t->lists[l], j);
    if (j->st == JOB_INFLIGHT) {
        int *n = strmap_get(t->inflight, j->ep_id);
        if (n && --*n <= 0)
            free(strmap_del(t->inflight, j->ep_id));
    }
    strmap_del(t->by_sid, j->sid);
    evcache_release(j->ev);
    free(j->ep_id);
    free(j->lkey);
    free(j);
}

static void free_counter(void *ctx, const char *key, void *val) {
    (void)ctx;
    (void)key;
    free(val);
}

void job_table_free(job_table *t) {
    if (!t)
        return;
    for (int i = 0; i <= JOB_LISTS; i++)
        while (t->lists[i].head)
            release(t->lists[i].head);
    if (t->inflight)
        strmap_each(t->inflight, free_counter, NULL);
    strmap_free(t->inflight);
    strmap_free(t->by_sid);
    free(t);
}

job *job_new(job_table *t, const char *sid, const char *evsid, const char *ep_id, int attempt,
             int64_t read_us) {
    if (strlen(sid) >= sizeof((job *)0)->sid || strlen(evsid) >= sizeof((job *)0)->evsid ||
        strmap_get(t->by_sid, sid))
        return NULL;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->ep_id = strdup(ep_id);
    if (!j->ep_id) {
        free(j);
        return NULL;
    }
    j->table = t;
    j->st = JOB_NEW;
    snprintf(j->sid, sizeof j->sid, "%s", sid);
    snprintf(j->evsid, sizeof j->evsid, "%s", evsid);
    j->attempt = attempt;
    j->read_us = read_us;
    if (strmap_put(t->by_sid, j->sid, j) != HQ_OK) {
        free(j->ep_id);
        free(j);
        return NULL;
    }
    list_append(&t->lists[JOB_LISTS], j);
    return j;
}

int job_transition(job *j, job_state to, const char *why) {
    job_table *t = j->table;
    job_state from = j->st;
    if (!job_transition_ok(from, to)) {
        LOG_E("job %s: illegal transition %s -> %s (a bug)", j->sid, job_state_name(from),
              job_state_name(to));
#ifdef HOOKQ_CHECKS
        abort();
#endif
        return HQ_ERR;
    }
    /* counters kept by entering and leaving, never by hand */
    if (to == JOB_INFLIGHT) {
        int *n = strmap_get(t->inflight, j->ep_id);
        if (!n) {
            n = calloc(1, sizeof *n);
            if (!n || strmap_put(t->inflight, j->ep_id, n) != HQ_OK) {
                free(n);
                return HQ_ERR;
            }
        }
        ++*n;
    } else if (from == JOB_INFLIGHT) {
        int *n = strmap_get(t->inflight, j->ep_id);
        if (n && --*n <= 0)
            free(strmap_del(t->inflight, j->ep_id));
    }
    int lf = list_of(from), lt = list_of(to);
    if (lf != lt) {
        list_remove(&t->lists[lf], j);
        list_append(&t->lists[lt], j);
    }
    log_level lvl = job_state_is_final(to) ? LOG_INFO : LOG_DEBUG;
    if (log_enabled(lvl))
        log_write(lvl, "job %s event %s (%s) endpoint %s attempt %d: %s -> %s%s%s%s", j->sid,
                  j->ev ? j->ev->e.id : "?", j->evsid, j->ep_id, j->attempt, job_state_name(from),
                  job_state_name(to), why ? " (" : "", why ? why : "", why ? ")" : "");
    j->st = to;
    return HQ_OK;
}

int job_free(job *j) {
    if (!j)
        return HQ_OK;
    if (j->st != JOB_NEW && !job_state_is_final(j->st)) {
        LOG_E("job %s: freed in state %s (a bug)", j->sid, job_state_name(j->st));
#ifdef HOOKQ_CHECKS
        abort();
#endif
        return HQ_ERR;
    }
    release(j);
    return HQ_OK;
}

job *job_find(const job_table *t, const char *sid) {
    return strmap_get(t->by_sid, sid);
}

job *job_first(const job_table *t, job_list l) {
    return (unsigned)l < JOB_LISTS ? t->lists[l].head : NULL;
}

size_t job_count(const job_table *t, job_list l) {
    return (unsigned)l < JOB_LISTS ? t->lists[l].n : 0;
}

size_t job_held(const job_table *t) {
    size_t n = 0;
    for (int i = 0; i <= JOB_LISTS; i++)
        n += t->lists[i].n;
    return n;
}

int job_inflight_to(const job_table *t, const char *ep_id) {
    const int *n = strmap_get(t->inflight, ep_id);
    return n ? *n : 0;
}

job_state job_decide(job *j, const http_result *res, const job_policy *p, int64_t now_ms,
                     uint64_t rnd) {
    j->res = *res;
    j->attempted = 1;
    outcome_in in = {
        .curl_code = res->curl_code, .http_status = res->http_status, .blocked = res->blocked};
    j->oc = outcome_classify(&in);
    if (res->error[0])
        snprintf(j->error, sizeof j->error, "%s", res->error);
    else if (j->oc != OUT_DELIVERED)
        snprintf(j->error, sizeof j->error, "HTTP %ld", res->http_status);
    else
        j->error[0] = '\0';
    if (j->oc == OUT_DELIVERED)
        return JOB_DELIVERED;
    if (j->oc != OUT_RETRY)
        return JOB_DEAD;
    int64_t delay =
        backoff_delay_ms(p->schedule_ms, p->schedule_len, j->attempt + 1, p->jitter, rnd);
    if (delay < 0)
        return JOB_DEAD;
    int64_t ra;
    if ((res->http_status == 429 || res->http_status == 503) && res->retry_after[0] &&
        backoff_retry_after_parse(res->retry_after, now_ms, &ra) == HQ_OK) {
        if (ra > p->max_retry_after_ms)
            ra = p->max_retry_after_ms;
        if (ra > delay)
            delay = ra; /* the receiver asked for at least this long */
    }
    j->due_ms = now_ms + delay;
    return JOB_RETRY;
}
