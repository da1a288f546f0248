/* job.c -- jobs: their state machine, taking them from stream replies, fetching their
 * events, building signed requests and running them through the HTTP engine. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backoff.h"
#include "hq.h"
#include "ids.h"
#include "log.h"
#include "signature.h"
#include "timestamp.h"
#include "validate.h"
#include "worker_internal.h"

const char *job_state_name(job_state s) {
    /* designated initializers: a state added to the enum without a name here is caught by
     * the test in test_wkmisc (every state has a name) rather than printed as (null) */
    static const char *const names[JOB_NSTATES] = {
        [JOB_FETCH] = "fetch",         [JOB_READY] = "ready",     [JOB_INFLIGHT] = "inflight",
        [JOB_DELIVERED] = "delivered", [JOB_RETRY] = "retry",     [JOB_DEAD] = "dead",
        [JOB_DISABLED] = "disabled",   [JOB_DROPPED] = "dropped", [JOB_DEFERRED] = "deferred"};
    return s < JOB_NSTATES && names[s] ? names[s] : "new";
}

static int job_list_of(job_state s) {
    switch (s) {
    case JOB_FETCH:
        return JL_FETCH;
    case JOB_READY:
        return JL_READY;
    case JOB_INFLIGHT:
        return JL_INFLIGHT;
    case JOB_NSTATES:
        return -1;
    default:
        return JL_DONE;
    }
}

static void jl_remove(jlist *l, job *j) {
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

static void jl_append(jlist *l, job *j) {
    j->prev = l->tail;
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

/* The one place a job changes state; every change is logged with the job's ids. */
void job_set(worker *w, job *j, job_state st, const char *why) {
    int from = job_list_of(j->st), to = job_list_of(st);
    if (from != to) {
        if (from >= 0)
            jl_remove(&w->lists[from], j);
        if (to >= 0)
            jl_append(&w->lists[to], j);
    }
    log_level lvl = to == JL_DONE ? LOG_INFO : LOG_DEBUG;
    if (log_enabled(lvl))
        log_write(lvl, "job %s event %s (%s) endpoint %s attempt %d: %s -> %s%s%s%s", j->sid,
                  j->ev ? j->ev->e.id : "?", j->evsid, j->ep_id, j->attempt, job_state_name(j->st),
                  job_state_name(st), why ? " (" : "", why ? why : "", why ? ")" : "");
    j->st = st;
}

void job_free(worker *w, job *j) {
    if (!j)
        return;
    int l = job_list_of(j->st);
    if (l >= 0)
        jl_remove(&w->lists[l], j);
    evcache_release(j->ev);
    free(j->ep_id);
    free(j);
}

/* ------------------------------------------------------------ taking jobs */

static const redisReply *job_field(const redisReply *f, const char *name) {
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING)
            return f->element[i + 1];
    return NULL;
}

static void job_ack_side(worker *w, const char *sid) {
    pipeline_begin(w->side, 0, NULL);
    pipeline_arg(w->side, "XACK");
    pipeline_arg(w->side, w->k_jobs);
    pipeline_arg(w->side, KEY_GROUP_DELIVER);
    pipeline_arg(w->side, sid);
    pipeline_end(w->side);
    pipeline_begin(w->side, 0, NULL);
    pipeline_arg(w->side, "XDEL");
    pipeline_arg(w->side, w->k_jobs);
    pipeline_arg(w->side, sid);
    pipeline_end(w->side);
}

/* HQ_ERR + reason if the jobs entry is unusable. */
static int job_parse(const redisReply *en, const char **ev, const char **epid, int *attempt,
                     char *err, size_t errlen) {
    const redisReply *f = en->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return hq_seterr(err, errlen, "entry has no field list");
    const redisReply *e = job_field(f, "event"), *p = job_field(f, "endpoint"),
                     *a = job_field(f, "attempt");
    if (!e || !p || !a)
        return hq_seterr(err, errlen, "missing field '%s'",
                         !e   ? "event"
                         : !p ? "endpoint"
                              : "attempt");
    if (e->len == 0 || e->len >= 48 || strspn(e->str, "0123456789-") != e->len)
        return hq_seterr(err, errlen, "field 'event' is not a stream id");
    char idr[HQ_ERRLEN];
    if (id_valid(p->str, idr, sizeof idr) != HQ_OK || strlen(p->str) != p->len)
        return hq_seterr(err, errlen, "field 'endpoint': %s", idr);
    char *end;
    long n = strtol(a->str, &end, 10);
    if (a->len == 0 || *end || n < 1 || n > 1000)
        return hq_seterr(err, errlen, "field 'attempt' is not a number in 1..1000");
    *ev = e->str;
    *epid = p->str;
    *attempt = (int)n;
    return HQ_OK;
}

void job_take(worker *w, const redisReply *entries, const int64_t *claims) {
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *en = entries->element[i];
        if (!fanout_entry_ok(en) || en->element[1]->type == REDIS_REPLY_NIL)
            continue;
        const char *sid = en->element[0]->str, *evsid = NULL, *epid = NULL;
        int attempt = 0;
        char err[HQ_ERRLEN];
        if (job_parse(en, &evsid, &epid, &attempt, err, sizeof err) != HQ_OK) {
            LOG_W("job %s is malformed, dead-lettered: %s", sid, err);
            worker_dead_entry(w, w->side, "job", en, err);
            job_ack_side(w, sid);
            continue;
        }
        job *j = calloc(1, sizeof *j);
        if (!j || !(j->ep_id = strdup(epid))) {
            free(j);
            LOG_E("job %s: out of memory; left pending", sid);
            continue;
        }
        j->w = w;
        j->st = JOB_NSTATES;
        snprintf(j->sid, sizeof j->sid, "%s", sid);
        snprintf(j->evsid, sizeof j->evsid, "%s", evsid);
        j->attempt = attempt;
        j->ev = evcache_get(w->cache, evsid);
        if (claims && claims[i] - 1 > w->c->delivery_max_claims) {
            snprintf(j->error, sizeof j->error, "claimed %lld times; it may crash workers",
                     (long long)(claims[i] - 1));
            job_set(w, j, JOB_DEAD, j->error);
        } else {
            job_set(w, j, j->ev ? JOB_READY : JOB_FETCH, claims ? "reclaimed" : NULL);
        }
    }
}

/* ------------------------------------------------------------ fetching events */

void job_fetch(worker *w) {
    if (w->lists[JL_FETCH].n == 0)
        return;
    pipeline *p = w->fx;
    pipeline_reset(p);
    strmap *asked = strmap_new();
    if (!asked)
        return;
    for (job *j = w->lists[JL_FETCH].head; j; j = j->next) {
        if (strmap_get(asked, j->evsid))
            continue;
        strmap_put(asked, j->evsid, j);
        pipeline_begin(p, 0, j);
        pipeline_arg(p, "XRANGE");
        pipeline_arg(p, w->k_events);
        pipeline_arg(p, j->evsid);
        pipeline_arg(p, j->evsid);
        pipeline_end(p);
    }
    strmap_free(asked);
    char err[HQ_ERRLEN];
    if (pipeline_exec(p, w->r, err, sizeof err) != HQ_OK) {
        worker_down(w, err);
        return;
    }
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        const char *evsid = ((job *)pipeline_ud(p, i))->evsid;
        char sid[48];
        snprintf(sid, sizeof sid, "%s", evsid); /* the job owning evsid may move below */
        evcache_ev *ev = NULL;
        char why[HQ_ERRLEN + 128] = "";
        if (rep->type == REDIS_REPLY_ERROR) {
            LOG_E("fetch event %s: %s", sid, rep->str);
            continue; /* stays FETCH: tried again next iteration */
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            snprintf(why, sizeof why,
                     "event %s is no longer in the events stream (trimmed by events.retention?)",
                     sid);
        } else {
            envelope e = {0};
            char perr[HQ_ERRLEN];
            if (fanout_parse(w->c, rep->element[0], &e, perr, sizeof perr) != HQ_OK) {
                envelope_clear(&e);
                snprintf(why, sizeof why, "event %s is malformed: %s", sid, perr);
            } else if (!(ev = evcache_put(w->cache, sid, &e))) {
                continue; /* OOM: try again later */
            }
        }
        job *nx;
        for (job *j = w->lists[JL_FETCH].head; j; j = nx) {
            nx = j->next;
            if (strcmp(j->evsid, sid) != 0)
                continue;
            if (ev) {
                j->ev = evcache_ref(ev);
                job_set(w, j, JOB_READY, NULL);
            } else {
                snprintf(j->error, sizeof j->error, "%s", why);
                job_set(w, j, JOB_DEAD, why);
            }
        }
        evcache_release(ev);
    }
}

/* ------------------------------------------------------------ transfers */

static int *job_busy(worker *w, const char *ep_id, int create) {
    int *n = strmap_get(w->busy, ep_id);
    if (!n && create) {
        n = calloc(1, sizeof *n);
        if (n && strmap_put(w->busy, ep_id, n) != HQ_OK) {
            free(n);
            n = NULL;
        }
    }
    return n;
}

static void job_unbusy(worker *w, const char *ep_id) {
    int *n = job_busy(w, ep_id, 0);
    if (n && --*n <= 0)
        free(strmap_del(w->busy, ep_id));
}

static void job_done(void *udata, const http_result *res) {
    job *j = udata;
    worker *w = j->w;
    j->res = *res;
    job_unbusy(w, j->ep_id);
    outcome_in in = {
        .curl_code = res->curl_code, .http_status = res->http_status, .blocked = res->blocked};
    j->oc = outcome_classify(&in);
    if (res->error[0])
        snprintf(j->error, sizeof j->error, "%s", res->error);
    else if (j->oc != OUT_DELIVERED)
        snprintf(j->error, sizeof j->error, "HTTP %ld", res->http_status);
    char why[512];
    snprintf(why, sizeof why, "%s, HTTP %ld, %lldms%s%s", outcome_name(j->oc), res->http_status,
             (long long)res->latency_ms, j->error[0] ? ": " : "", j->error);
    if (j->oc == OUT_DELIVERED) {
        w->n_delivered++;
        job_set(w, j, JOB_DELIVERED, why);
        return;
    }
    w->n_failed++;
    if (j->oc != OUT_RETRY) {
        job_set(w, j, JOB_DEAD, why);
        return;
    }
    const cfg *c = w->c;
    int64_t delay = backoff_delay_ms(c->retry_schedule_ms, c->retry_schedule_len, j->attempt + 1,
                                     c->retry_jitter, worker_rand(w));
    if (delay < 0) {
        job_set(w, j, JOB_DEAD, why);
        return;
    }
    int64_t now = ts_now_ms(), ra;
    if ((res->http_status == 429 || res->http_status == 503) && res->retry_after[0] &&
        backoff_retry_after_parse(res->retry_after, now, &ra) == HQ_OK) {
        if (ra > c->retry_max_retry_after_ms)
            ra = c->retry_max_retry_after_ms;
        if (ra > delay)
            delay = ra; /* the receiver asked for at least this long */
    }
    j->due_ms = now + delay;
    job_set(w, j, JOB_RETRY, why);
}

/* Fail an attempt that could not even start (bad secret, engine refused the request):
 * the classifier still decides what that means. */
static void job_fail_setup(worker *w, job *j, const char *msg) {
    http_result r;
    memset(&r, 0, sizeof r);
    r.curl_code = CURLE_FAILED_INIT;
    snprintf(r.error, sizeof r.error, "%s", msg);
    int *n = job_busy(w, j->ep_id, 1);
    if (n)
        ++*n; /* job_done gives it back */
    j->attempted = 1;
    job_done(j, &r);
}

static char *job_hdr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *job_hdr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

#define JOB_FIXED_HEADERS 10

static void job_submit(worker *w, job *j, const epindex_ent *en) {
    const ep *e = en->e;
    const evcache_ev *ev = j->ev;
    char *hdr[JOB_FIXED_HEADERS + VALIDATE_HEADERS_MAX];
    size_t nh = 0;
    if (en->keylen == 0) {
        job_fail_setup(w, j, "endpoint secret missing or invalid");
        return;
    }
    if (id_new(ID_PREFIX_DELIVERY, j->dlv, sizeof j->dlv) != HQ_OK) {
        job_fail_setup(w, j, "cannot make a delivery id");
        return;
    }
    int64_t now = ts_now_ms(), ts = now / 1000;
    char s1[SIGN_V1_LEN], s2[SIGN_V1_LEN] = "", gh[SIGN_GH_LEN] = "";
    if (sign_v1(en->key, en->keylen, ev->e.id, ts, ev->body, ev->bodylen, s1, sizeof s1) != HQ_OK) {
        job_fail_setup(w, j, "signing failed");
        return;
    }
    /* during a rotation receivers may still hold the old secret: sign with both */
    if (en->key_oldlen > 0 && (e->secret_old_until == 0 || now < e->secret_old_until))
        sign_v1(en->key_old, en->key_oldlen, ev->e.id, ts, ev->body, ev->bodylen, s2, sizeof s2);
    if (e->github_signature)
        sign_github(e->secret, ev->body, ev->bodylen, gh, sizeof gh);
    hdr[nh++] = job_hdr("Content-Type: application/json");
    hdr[nh++] = job_hdr("User-Agent: hookq/%s", HOOKQ_VERSION);
    hdr[nh++] = job_hdr("webhook-id: %s", ev->e.id);
    hdr[nh++] = job_hdr("webhook-timestamp: %lld", (long long)ts);
    hdr[nh++] = job_hdr("webhook-signature: %s%s%s", s1, s2[0] ? " " : "", s2);
    hdr[nh++] = job_hdr("X-Hookq-Event-Type: %s", ev->e.type);
    hdr[nh++] = job_hdr("X-Hookq-Delivery-Id: %s", j->dlv);
    hdr[nh++] = job_hdr("X-Hookq-Attempt: %d", j->attempt);
    if (gh[0])
        hdr[nh++] = job_hdr("X-Hub-Signature-256: %s", gh);
    for (size_t i = 0; i < e->n_headers && i < VALIDATE_HEADERS_MAX; i++)
        hdr[nh++] = job_hdr("%s: %s", e->header_names[i], e->header_values[i]);
    int ok = 1;
    for (size_t i = 0; i < nh; i++)
        if (!hdr[i])
            ok = 0;
    int *busy = job_busy(w, j->ep_id, 1);
    j->attempted = 1;
    if (!ok || !busy) {
        for (size_t i = 0; i < nh; i++)
            free(hdr[i]);
        job_fail_setup(w, j, "out of memory");
        return;
    }
    int rc = http_submit(w->http, e->url, (const char *const *)hdr, nh, ev->body, ev->bodylen,
                         job_done, j);
    for (size_t i = 0; i < nh; i++)
        free(hdr[i]);
    if (rc != HQ_OK) {
        job_fail_setup(w, j, "the request could not be set up");
        return;
    }
    ++*busy;
    job_set(w, j, JOB_INFLIGHT, NULL);
}

#define JOB_DEFER_MS 1000

void job_dispatch(worker *w) {
    job *nx;
    /* endpoint -> jobs seen waiting in this pass; only when the local queue is full */
    strmap *waiting = worker_room(w) == 0 ? strmap_new() : NULL;
    int cap = http_capacity(w->http);
    int per = w->c->delivery_per_endpoint > 0 ? w->c->delivery_per_endpoint : 1;
    for (job *j = w->lists[JL_READY].head; j; j = nx) {
        nx = j->next;
        if (http_inflight(w->http) >= cap)
            break;
        const epindex_ent *en = epindex_get(w->eps, j->ep_id);
        if (!en && w->loaded_at <= w->read_at && w->redis_up) {
            /* maybe created since our last reload (another worker fanned out to it) */
            worker_reload(w);
            en = epindex_get(w->eps, j->ep_id);
            nx = j->next;
        }
        if (!en) {
            snprintf(j->error, sizeof j->error, "endpoint deleted");
            job_set(w, j, JOB_DROPPED, j->error);
            continue;
        }
        if (!en->e->enabled) {
            snprintf(j->error, sizeof j->error, "endpoint disabled");
            job_set(w, j, JOB_DISABLED, j->error);
            continue;
        }
        int *busy = job_busy(w, j->ep_id, 0);
        if (busy && *busy >= per) {
            /* this endpoint has its share; others may go first. If the local queue is
             * full, keep at most `per` waiting for it and defer the rest */
            if (waiting) {
                int n = (int)(intptr_t)strmap_get(waiting, j->ep_id);
                strmap_put(waiting, j->ep_id, (void *)(intptr_t)(n + 1));
                if (n + 1 > per) {
                    j->due_ms = ts_now_ms() + JOB_DEFER_MS / 2 +
                                (int64_t)(worker_rand(w) % (JOB_DEFER_MS / 2 + 1));
                    job_set(w, j, JOB_DEFERRED, "endpoint busy, local queue full");
                }
            }
            continue;
        }
        job_submit(w, j, en);
    }
    strmap_free(waiting);
}
