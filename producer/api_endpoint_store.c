/* api_endpoint_store.c -- see api_endpoint_store.h. The hash layout is common/endpoint.c's
 * and the lane layout docs/policies.md's; this file reads them through pipelines (one
 * round trip per batch) and, for held jobs, deletes them in the one MULTI cli_lanes.c
 * uses, written again here because the CLI's version answers a cli, not a request. */
#include "api_endpoint_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "redis_keys.h"

#define LIST_BATCH_MIN 16 /* hashes read per round trip while filling a page */
#define DISCARD_TRIES  5  /* MULTIs tried while fanouts keep adding order keys */
/* A lane key is the endpoint's part plus an order key of up to EP_ORDER_KEY_MAX bytes. */
#define LANE_KEY_MAX (KEY_MAX + EP_ORDER_KEY_MAX + 8)

static int oom(api_req *rq) {
    api_problem(rq, 500, "internal", NULL, "out of memory");
    return HQ_ERR;
}

static int is_oom_reply(const redisReply *q) {
    return q->str && (strncmp(q->str, "OOM", 3) == 0 || strstr(q->str, "OOM command"));
}

/* The answer for an error reply, as api_cmd gives it. */
static int reply_failed(api_req *rq, const char *cmd, const redisReply *q) {
    if (is_oom_reply(q)) {
        api_header_add(rq, "Retry-After", "5");
        api_problem(rq, 507, "redis_full", NULL,
                    "Redis is out of memory (maxmemory); nothing was written");
    } else {
        api_problem(rq, 500, "redis_error", NULL, "Redis: %s: %.300s", cmd,
                    q->str ? q->str : "error");
    }
    return HQ_ERR;
}

int eps_run(api_req *rq, pipeline *p, int errors_ok) {
    char err[HQ_ERRLEN];
    rconn *r = api_redis(rq);
    if (!r)
        return HQ_ERR;
    if (pipeline_exec(p, r, err, sizeof err) != HQ_OK) {
        api_redis_failed(rq, err);
        return HQ_ERR;
    }
    for (size_t i = 0; i < pipeline_len(p) && !errors_ok; i++) {
        const redisReply *q = pipeline_reply(p, i);
        if (q->type == REDIS_REPLY_ERROR)
            return reply_failed(rq, pipeline_argv_at(p, i, 0), q);
    }
    return HQ_OK;
}

static void cmd(pipeline *p, int tag, ...) {
    va_list ap;
    const char *s;
    pipeline_begin(p, tag, NULL);
    va_start(ap, tag);
    while ((s = va_arg(ap, const char *)))
        pipeline_arg(p, s);
    va_end(ap);
    pipeline_end(p);
}

static int is_str(const redisReply *q) {
    return q && q->type == REDIS_REPLY_STRING;
}

static long long reply_ll(const redisReply *q) {
    if (q && q->type == REDIS_REPLY_INTEGER)
        return q->integer;
    return is_str(q) ? strtoll(q->str, NULL, 10) : 0;
}

/* A field of an HGETALL reply, raw: what a hash that does not parse still says. */
static const char *hash_field(const redisReply *h, const char *name) {
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (is_str(h->element[i]) && is_str(h->element[i + 1]) &&
            strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

/* ---- one endpoint ------------------------------------------------------------------ */

static int not_found(api_req *rq, const char *id) {
    api_problem(rq, 404, "not_found", NULL, "endpoint %.140s not found", id);
    return HQ_ERR;
}

int eps_load(api_req *rq, ep **out, long long *failures) {
    const char *id = api_param(rq, 0), *prefix = rq->ctx->prefix;
    char err[HQ_ERRLEN], kh[KEY_MAX], kf[KEY_MAX];
    pipeline *p = NULL;
    ep *e = NULL;
    int rc = HQ_ERR;
    *out = NULL;
    *failures = 0;
    if (id_valid(id, err, sizeof err) != HQ_OK ||
        key_endpoint(prefix, id, kh, sizeof kh) != HQ_OK ||
        key_failures(prefix, id, kf, sizeof kf) != HQ_OK)
        return not_found(rq, id);
    if (!(p = pipeline_new()))
        return oom(rq);
    cmd(p, 0, "HGETALL", kh, (const char *)NULL);
    cmd(p, 0, "GET", kf, (const char *)NULL);
    if (eps_run(rq, p, 0) != HQ_OK)
        goto cleanup;
    const redisReply *h = pipeline_reply(p, 0);
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        not_found(rq, id);
        goto cleanup;
    }
    if (!(e = ep_new())) {
        oom(rq);
        goto cleanup;
    }
    if (ep_from_hash(e, id, h, err, sizeof err) != HQ_OK) {
        /* What the hash says of its tenant still decides who may know it exists. */
        if (!api_tenant_allowed(rq, hash_field(h, "tenant")))
            not_found(rq, id);
        else
            api_problem(rq, 500, "endpoint_unreadable", NULL, "%s", err);
        goto cleanup;
    }
    if (!api_tenant_allowed(rq, e->tenant)) {
        not_found(rq, id);
        goto cleanup;
    }
    *failures = reply_ll(pipeline_reply(p, 1));
    *out = e;
    e = NULL;
    rc = HQ_OK;
cleanup:
    ep_free(e);
    pipeline_free(p);
    return rc;
}

int eps_failures(api_req *rq, ep *const *eps, size_t n, long long *out) {
    char kf[KEY_MAX];
    pipeline *p;
    int rc = HQ_ERR;
    if (n == 0)
        return HQ_OK;
    if (!(p = pipeline_new()))
        return oom(rq);
    for (size_t i = 0; i < n; i++) {
        /* The ids came from parsed hashes, so their keys fit; "" would read nothing. */
        if (key_failures(rq->ctx->prefix, eps[i]->id, kf, sizeof kf) != HQ_OK)
            kf[0] = '\0';
        cmd(p, 0, "GET", kf, (const char *)NULL);
    }
    if (eps_run(rq, p, 0) == HQ_OK) {
        for (size_t i = 0; i < n; i++)
            out[i] = reply_ll(pipeline_reply(p, i));
        rc = HQ_OK;
    }
    pipeline_free(p);
    return rc;
}

/* ---- pages ------------------------------------------------------------------------- */

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_unreadable(json_t *arr, const char *id, const char *why) {
    return json_array_append_new(arr, json_pack("{s:s,s:s}", "id", id, "error", why));
}

/* Read the hashes of ids[0..n) and keep, in pg, those f wants, up to want of them. */
static int list_batch(api_req *rq, const eps_filter *f, const char *const *ids, size_t n,
                      size_t want, eps_page *pg) {
    char err[HQ_ERRLEN], kh[KEY_MAX];
    pipeline *p = pipeline_new();
    int rc = HQ_ERR;
    if (!p)
        return oom(rq);
    for (size_t i = 0; i < n; i++) {
        /* An id too long for a key (written by hand) reads nothing and is unreadable. */
        if (key_endpoint(rq->ctx->prefix, ids[i], kh, sizeof kh) != HQ_OK)
            kh[0] = '\0';
        cmd(p, 0, "HGETALL", kh, (const char *)NULL);
    }
    if (eps_run(rq, p, 1) != HQ_OK)
        goto cleanup;
    for (size_t i = 0; i < n && pg->n < want; i++) {
        const redisReply *h = pipeline_reply(p, i);
        ep *e;
        if (h->type == REDIS_REPLY_ERROR) {
            /* WRONGTYPE: a key of the endpoint's name that is not a hash. */
            if (f->unreadable && add_unreadable(pg->unreadable, ids[i], h->str) != 0)
                goto nomem;
            continue;
        }
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
            if (f->unreadable && strlen(ids[i]) > ID_MAX &&
                add_unreadable(pg->unreadable, ids[i], "id too long for a key") != 0)
                goto nomem;
            continue; /* deleted since SMEMBERS, or never written: not an endpoint */
        }
        if (!(e = ep_new()))
            goto nomem;
        if (ep_from_hash(e, ids[i], h, err, sizeof err) != HQ_OK) {
            const char *t = hash_field(h, "tenant");
            ep_free(e);
            if (f->unreadable && (!f->tenant || (t && strcmp(t, f->tenant) == 0)) &&
                add_unreadable(pg->unreadable, ids[i], err) != 0)
                goto nomem;
            continue;
        }
        if ((f->tenant && (!e->tenant || strcmp(e->tenant, f->tenant) != 0)) ||
            (f->enabled >= 0 && e->enabled != f->enabled)) {
            ep_free(e);
            continue;
        }
        pg->eps[pg->n++] = e;
    }
    rc = HQ_OK;
    goto cleanup;
nomem:
    oom(rq);
cleanup:
    pipeline_free(p);
    return rc;
}

int eps_list(api_req *rq, const eps_filter *f, const char *after, size_t limit, eps_page *pg) {
    char ks[KEY_MAX];
    redisReply *rep = NULL;
    const char **ids = NULL;
    size_t nids = 0, i = 0, want = limit + 1, batch = want < LIST_BATCH_MIN ? LIST_BATCH_MIN : want;
    int rc = HQ_ERR;
    memset(pg, 0, sizeof *pg);
    if (key_endpoints(rq->ctx->prefix, ks, sizeof ks) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "redis.prefix too long");
        return HQ_ERR;
    }
    if (!(rep = api_cmdv(rq, (const char *[]){"SMEMBERS", ks, NULL})))
        return HQ_ERR;
    /* One more than the page, to know whether a next page exists without a last empty
     * one. */
    pg->eps = calloc(want, sizeof *pg->eps);
    pg->failures = calloc(want, sizeof *pg->failures);
    ids = calloc(rep->elements + 1, sizeof *ids);
    if (!pg->eps || !pg->failures || !ids || (f->unreadable && !(pg->unreadable = json_array()))) {
        oom(rq);
        goto cleanup;
    }
    for (size_t k = 0; rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++)
        if (is_str(rep->element[k]) && strlen(rep->element[k]->str) == rep->element[k]->len &&
            strcmp(rep->element[k]->str, after) > 0)
            ids[nids++] = rep->element[k]->str;
    qsort(ids, nids, sizeof *ids, str_cmp);
    while (i < nids && pg->n < want) {
        size_t n = nids - i < batch ? nids - i : batch;
        if (list_batch(rq, f, ids + i, n, want, pg) != HQ_OK)
            goto cleanup;
        i += n;
    }
    if (pg->n == want) {
        /* The extra one only said there is more: the page ends before it, and so do the
         * unreadable ids it reports (the next page reports the rest). */
        const char *last = pg->eps[limit - 1]->id;
        ep_free(pg->eps[--pg->n]);
        pg->more = 1;
        for (size_t k = json_array_size(pg->unreadable); k-- > 0;) {
            const char *uid =
                json_string_value(json_object_get(json_array_get(pg->unreadable, k), "id"));
            if (uid && strcmp(uid, last) > 0)
                json_array_remove(pg->unreadable, k);
        }
    }
    rc = eps_failures(rq, pg->eps, pg->n, pg->failures);
cleanup:
    free(ids);
    freeReplyObject(rep);
    return rc;
}

void eps_page_clear(eps_page *pg) {
    if (!pg)
        return;
    for (size_t i = 0; i < pg->n; i++)
        ep_free(pg->eps[i]);
    free(pg->eps);
    free(pg->failures);
    json_decref(pg->unreadable);
    memset(pg, 0, sizeof *pg);
}

/* ---- held jobs ----------------------------------------------------------------------- */

typedef struct lane_keys {
    char ready[KEY_MAX], leases[KEY_MAX], tries[KEY_MAX], state[KEY_MAX], lanekeys[KEY_MAX];
    char lane[LANE_KEY_MAX];
    size_t lane_base; /* strlen of "P:{ID}:lane:" in lane */
} lane_keys;

/* The lane key of order key s (n bytes; n <= EP_ORDER_KEY_MAX), in k->lane. */
static size_t lane_key(lane_keys *k, const char *s, size_t n) {
    memcpy(k->lane + k->lane_base, s, n);
    k->lane[k->lane_base + n] = '\0';
    return k->lane_base + n;
}

/* The order key of a lease member "<lane id>\t<key>\t<worker>": between the first and
 * the last tab (a key may hold a tab; ids do not). 0 if the member is not of that form. */
static int lease_key(const redisReply *m, const char **k, size_t *n) {
    const char *t1, *t2;
    if (!is_str(m) || !(t1 = memchr(m->str, '\t', m->len)))
        return 0;
    t2 = m->str + m->len;
    while (t2 > t1 + 1 && t2[-1] != '\t')
        t2--;
    if (t2 == t1 + 1)
        return 0; /* one tab only */
    *k = t1 + 1;
    *n = (size_t)(t2 - 1 - *k);
    return 1;
}

/* Whether an h:<key> mark (f) belongs to a key whose head is leased (in ls). */
static int head_out(const redisReply *f, const redisReply *ls) {
    for (size_t j = 0; j < ls->elements; j++) {
        const char *s;
        size_t n;
        if (lease_key(ls->element[j], &s, &n) && n == f->len - 2 && memcmp(s, f->str + 2, n) == 0)
            return 1;
    }
    return 0;
}

/* The MULTI of one attempt: ZCARDs (tag 1) to count, the DEL, the HDEL of marks, and the
 * attempt counts of leased jobs put back. tv: their counts, read before (may be NULL). */
static void discard_multi(pipeline *p, lane_keys *k, const redisReply *lk, const redisReply *hk,
                          const redisReply *ls, const redisReply *tv) {
    cmd(p, 0, "MULTI", (const char *)NULL);
    for (size_t i = 0; i < lk->elements; i++) {
        const redisReply *m = lk->element[i];
        if (!is_str(m) || m->len > EP_ORDER_KEY_MAX)
            continue;
        pipeline_begin(p, 1, NULL);
        pipeline_arg(p, "ZCARD");
        pipeline_argn(p, k->lane, lane_key(k, m->str, m->len));
        pipeline_end(p);
    }
    pipeline_begin(p, 0, NULL);
    pipeline_arg(p, "DEL");
    pipeline_arg(p, k->lanekeys);
    pipeline_arg(p, k->ready);
    pipeline_arg(p, k->tries);
    for (size_t i = 0; i < lk->elements; i++) {
        const redisReply *m = lk->element[i];
        if (is_str(m) && m->len <= EP_ORDER_KEY_MAX)
            pipeline_argn(p, k->lane, lane_key(k, m->str, m->len));
    }
    pipeline_end(p);
    /* n and the h:<key> marks of keys with no head out; a key whose head is in flight
     * keeps its mark, so nothing behind it goes before that head is done. */
    pipeline_begin(p, 0, NULL);
    pipeline_arg(p, "HDEL");
    pipeline_arg(p, k->state);
    pipeline_arg(p, "n");
    for (size_t i = 0; hk->type == REDIS_REPLY_ARRAY && i < hk->elements; i++) {
        const redisReply *f = hk->element[i];
        if (is_str(f) && f->len >= 2 && memcmp(f->str, "h:", 2) == 0 && !head_out(f, ls))
            pipeline_argn(p, f->str, f->len);
    }
    pipeline_end(p);
    for (size_t i = 0, j = 0;
         tv && tv->type == REDIS_REPLY_ARRAY && i < ls->elements && j < tv->elements; i++) {
        const redisReply *m = ls->element[i];
        const char *tab = is_str(m) ? memchr(m->str, '\t', m->len) : NULL;
        if (!tab)
            continue;
        if (is_str(tv->element[j])) {
            pipeline_begin(p, 0, NULL);
            pipeline_arg(p, "HSET");
            pipeline_arg(p, k->tries);
            pipeline_argn(p, m->str, (size_t)(tab - m->str));
            pipeline_argn(p, tv->element[j]->str, tv->element[j]->len);
            pipeline_end(p);
        }
        j++;
    }
    cmd(p, 0, "EXEC", (const char *)NULL);
}

/* One attempt; *done 0 if a watched key changed under it (nothing ran: try again). */
static int discard_once(api_req *rq, lane_keys *k, long long *discarded, int *done) {
    pipeline *rd = pipeline_new(), *tr = pipeline_new(), *p = pipeline_new();
    const redisReply *lk, *hk, *ls, *tv = NULL, *ex;
    size_t nl = 0;
    int rc = HQ_ERR;
    *done = 0;
    if (!rd || !tr || !p) {
        oom(rq);
        goto cleanup;
    }
    /* WATCH: a fanout that adds an order key (or a settle that changes an attempt count)
     * between these reads and the MULTI makes EXEC do nothing, and we read again. */
    cmd(rd, 0, "WATCH", k->lanekeys, k->tries, (const char *)NULL);
    cmd(rd, 0, "SMEMBERS", k->lanekeys, (const char *)NULL);
    cmd(rd, 0, "HKEYS", k->state, (const char *)NULL);
    cmd(rd, 0, "ZRANGE", k->leases, "0", "-1", (const char *)NULL);
    if (eps_run(rq, rd, 0) != HQ_OK)
        goto cleanup;
    lk = pipeline_reply(rd, 1);
    hk = pipeline_reply(rd, 2);
    ls = pipeline_reply(rd, 3);
    /* The attempt counts of jobs in flight survive the DEL of tries. */
    pipeline_begin(tr, 0, NULL);
    pipeline_arg(tr, "HMGET");
    pipeline_arg(tr, k->tries);
    for (size_t i = 0; i < ls->elements; i++) {
        const redisReply *m = ls->element[i];
        const char *tab = is_str(m) ? memchr(m->str, '\t', m->len) : NULL;
        if (tab) {
            pipeline_argn(tr, m->str, (size_t)(tab - m->str));
            nl++;
        }
    }
    pipeline_end(tr);
    if (nl) {
        if (eps_run(rq, tr, 0) != HQ_OK)
            goto cleanup;
        tv = pipeline_reply(tr, 0);
    }
    discard_multi(p, k, lk, hk, ls, tv);
    /* Errors inside the MULTI come back in EXEC's array; queueing errors abort it. */
    if (eps_run(rq, p, 0) != HQ_OK)
        goto cleanup;
    ex = pipeline_reply(p, pipeline_len(p) - 1);
    if (ex->type == REDIS_REPLY_NIL) {
        rc = HQ_OK; /* a watched key changed: nothing ran */
        goto cleanup;
    }
    if (ex->type != REDIS_REPLY_ARRAY || ex->elements != pipeline_len(p) - 2) {
        api_problem(rq, 500, "redis_error", NULL, "Redis: EXEC: unexpected reply");
        goto cleanup;
    }
    *discarded = 0;
    for (size_t i = 0; i < ex->elements; i++) {
        if (ex->element[i]->type == REDIS_REPLY_ERROR) {
            reply_failed(rq, pipeline_argv_at(p, i + 1, 0), ex->element[i]);
            goto cleanup;
        }
        if (pipeline_tag(p, i + 1) == 1)
            *discarded += reply_ll(ex->element[i]);
    }
    *done = 1;
    rc = HQ_OK;
cleanup:
    pipeline_free(rd);
    pipeline_free(tr);
    pipeline_free(p);
    return rc;
}

int eps_discard_held(api_req *rq, const char *id, long long *discarded) {
    const char *pf = rq->ctx->prefix;
    lane_keys k;
    int done = 0;
    *discarded = 0;
    if (key_ep_part(pf, id, KEY_EP_READY, k.ready, sizeof k.ready) != HQ_OK ||
        key_ep_part(pf, id, KEY_EP_LEASES, k.leases, sizeof k.leases) != HQ_OK ||
        key_ep_part(pf, id, KEY_EP_TRIES, k.tries, sizeof k.tries) != HQ_OK ||
        key_ep_part(pf, id, KEY_EP_STATE, k.state, sizeof k.state) != HQ_OK ||
        key_ep_part(pf, id, KEY_EP_LANEKEYS, k.lanekeys, sizeof k.lanekeys) != HQ_OK ||
        key_ep_part(pf, id, KEY_EP_LANE, k.lane, sizeof k.lane) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "endpoint id or prefix too long");
        return HQ_ERR;
    }
    k.lane_base = strlen(k.lane);
    for (int i = 0; i < DISCARD_TRIES; i++) {
        if (discard_once(rq, &k, discarded, &done) != HQ_OK) {
            /* A WATCH left behind would make this thread's next MULTI fail for no reason.
             * Sent on the raw connection: the answer is already set and must stay. */
            char err[HQ_ERRLEN];
            rconn *r = *rq->rslot;
            redisReply *u =
                r && rconn_connected(r) ? rconn_cmd(r, err, sizeof err, "UNWATCH") : NULL;
            if (u)
                freeReplyObject(u);
            return HQ_ERR;
        }
        if (done)
            return HQ_OK;
    }
    api_problem(rq, 409, "conflict", NULL,
                "endpoint %s: its lanes kept changing; nothing was discarded (try again)", id);
    return HQ_ERR;
}
