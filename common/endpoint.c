/* endpoint.c -- endpoint records in Redis (P:{ep_ID}:endpoint hashes, P:endpoints set,
 * P:{q}:endpoints:version counter). Every write goes through MULTI/EXEC together with the
 * version bump, so a worker that sees the new version also sees the new data. Batches of
 * commands (the transactions, the HGETALLs of a load) go through common/pipeline.h, the
 * one pipeline mechanism hookq has. */
#include "endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "redis_keys.h"
#include "pipeline.h"
#include "timestamp.h"
#include "validate.h"

ep *ep_new(void) {
    ep *e = calloc(1, sizeof(*e));
    if (e)
        e->enabled = 1;
    return e;
}

void ep_free(ep *e) {
    if (!e)
        return;
    free(e->id);
    free(e->url);
    pat_list_clear(&e->events);
    free(e->secret);
    free(e->secret_old);
    free(e->description);
    free(e->tenant);
    for (size_t i = 0; i < e->n_headers; i++) {
        free(e->header_names[i]);
        free(e->header_values[i]);
    }
    free(e->header_names);
    free(e->header_values);
    free(e->disabled_reason);
    free(e->order_key);
    free(e);
}

/* ---- reading the hash ------------------------------------------------------------ */

static int set_str(char **dst, const char *v, int empty_is_null) {
    free(*dst);
    *dst = NULL;
    if (empty_is_null && !*v)
        return HQ_OK;
    *dst = strdup(v);
    return *dst ? HQ_OK : HQ_ERR;
}

static int parse_bool_field(const char *id, const char *f, const char *v, int *out, char *err,
                            size_t errlen) {
    if (strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0)
        *out = 0;
    else
        return hq_seterr(err, errlen,
                         "endpoint %s: field '%s': expected true or false, got '%.32s'", id, f, v);
    return HQ_OK;
}

/* ISO time or empty (= 0). */
static int parse_time_field(const char *id, const char *f, const char *v, int64_t *out, char *err,
                            size_t errlen) {
    if (!*v) {
        *out = 0;
        return HQ_OK;
    }
    if (ts_parse_iso(v, out) != HQ_OK)
        return hq_seterr(err, errlen, "endpoint %s: field '%s': bad time '%.40s'", id, f, v);
    return HQ_OK;
}

/* A decimal integer in [lo, hi]. */
static int parse_int_field(const char *id, const char *f, const char *v, int64_t lo, int64_t hi,
                           int64_t *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        return hq_seterr(err, errlen,
                         "endpoint %s: field '%s': expected an integer %lld..%lld, got '%.32s'", id,
                         f, (long long)lo, (long long)hi, v);
    *out = n;
    return HQ_OK;
}

static int parse_headers(ep *e, const char *v, char *err, size_t errlen) {
    json_error_t je;
    char verr[HQ_ERRLEN];
    json_t *a = NULL;
    int rc = HQ_ERR;
    if (!*v)
        return HQ_OK;
    a = json_loads(v, JSON_REJECT_DUPLICATES, &je);
    if (!a || !json_is_array(a)) {
        hq_seterr(err, errlen, "endpoint %s: field 'headers': not a JSON array of strings", e->id);
        goto cleanup;
    }
    size_t n = json_array_size(a);
    if (n > VALIDATE_HEADERS_MAX) {
        hq_seterr(err, errlen, "endpoint %s: field 'headers': more than %d headers", e->id,
                  VALIDATE_HEADERS_MAX);
        goto cleanup;
    }
    if (n == 0) {
        rc = HQ_OK;
        goto cleanup;
    }
    e->header_names = calloc(n, sizeof(char *));
    e->header_values = calloc(n, sizeof(char *));
    if (!e->header_names || !e->header_values) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const char *line = json_string_value(json_array_get(a, i));
        if (!line) {
            hq_seterr(err, errlen, "endpoint %s: field 'headers': item %zu is not a string", e->id,
                      i + 1);
            goto cleanup;
        }
        if (validate_header_line(line, &e->header_names[i], &e->header_values[i], verr,
                                 sizeof(verr)) != HQ_OK) {
            hq_seterr(err, errlen, "endpoint %s: field 'headers': %s", e->id, verr);
            goto cleanup;
        }
        e->n_headers = i + 1;
    }
    rc = HQ_OK;
cleanup:
    json_decref(a);
    return rc;
}

int ep_from_hash(ep *e, const char *id, const redisReply *h, char *err, size_t errlen) {
    char perr[HQ_ERRLEN];
    int have_events = 0;
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return hq_seterr(err, errlen, "endpoint %s: not a hash reply", id);
    if (set_str(&e->id, id, 0) != HQ_OK)
        return hq_seterr(err, errlen, "out of memory");
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *fr = h->element[i], *vr = h->element[i + 1];
        if (fr->type != REDIS_REPLY_STRING || vr->type != REDIS_REPLY_STRING)
            return hq_seterr(err, errlen, "endpoint %s: not a hash reply", id);
        const char *f = fr->str, *v = vr->str;
        int rc = HQ_OK, oom = 0;
        if (strcmp(f, "url") == 0)
            oom = set_str(&e->url, v, 0);
        else if (strcmp(f, "events") == 0) {
            pat_list_clear(&e->events);
            if (pat_list_parse(*v ? v : "*", &e->events, perr, sizeof(perr)) != HQ_OK)
                rc = hq_seterr(err, errlen, "endpoint %s: field 'events': %s", id, perr);
            have_events = 1;
        } else if (strcmp(f, "secret") == 0)
            oom = set_str(&e->secret, v, 0);
        else if (strcmp(f, "secret_old") == 0)
            oom = set_str(&e->secret_old, v, 1);
        else if (strcmp(f, "secret_old_until") == 0)
            rc = parse_time_field(id, f, v, &e->secret_old_until, err, errlen);
        else if (strcmp(f, "description") == 0)
            oom = set_str(&e->description, v, 1);
        else if (strcmp(f, "tenant") == 0)
            oom = set_str(&e->tenant, v, 1);
        else if (strcmp(f, "enabled") == 0)
            rc = parse_bool_field(id, f, v, &e->enabled, err, errlen);
        else if (strcmp(f, "github_signature") == 0)
            rc = parse_bool_field(id, f, v, &e->github_signature, err, errlen);
        else if (strcmp(f, "github_secret") == 0) {
            if (ep_github_secret_parse(v, &e->github_secret) != HQ_OK)
                rc = hq_seterr(err, errlen,
                               "endpoint %s: field '%s': expected current or previous, got '%.32s'",
                               id, f, v);
        } else if (strcmp(f, "headers") == 0)
            rc = parse_headers(e, v, err, errlen);
        else if (strcmp(f, "created_at") == 0)
            rc = parse_time_field(id, f, v, &e->created_at, err, errlen);
        else if (strcmp(f, "updated_at") == 0)
            rc = parse_time_field(id, f, v, &e->updated_at, err, errlen);
        else if (strcmp(f, "disabled_at") == 0)
            rc = parse_time_field(id, f, v, &e->disabled_at, err, errlen);
        else if (strcmp(f, "disabled_reason") == 0)
            oom = set_str(&e->disabled_reason, v, 1);
        else if (strcmp(f, "ordered") == 0)
            rc = parse_bool_field(id, f, v, &e->ordered, err, errlen);
        else if (strcmp(f, "lanes") == 0)
            rc = parse_bool_field(id, f, v, &e->lanes, err, errlen);
        else if (strcmp(f, "order_key") == 0) {
            free(e->order_key);
            e->order_key = NULL;
            if (*v && ep_order_key_parse(v, &e->order_key, perr, sizeof perr) != HQ_OK)
                rc = hq_seterr(err, errlen, "endpoint %s: field '%s': %s", id, f, perr);
        } else if (strcmp(f, "rate") == 0) {
            e->rate_n = 0;
            if (*v && ep_rate_parse(v, &e->rate_n, &e->rate_window_ms, perr, sizeof perr) != HQ_OK)
                rc = hq_seterr(err, errlen, "endpoint %s: field '%s': %s", id, f, perr);
        } else if (strcmp(f, "max_in_flight") == 0)
            rc = parse_int_field(id, f, v, 0, 1000000, &e->max_in_flight, err, errlen);
        else if (strcmp(f, "hold_max") == 0)
            rc = parse_int_field(id, f, v, 0, 100000000, &e->hold_max, err, errlen);
        else if (strcmp(f, "on_disabled") == 0) {
            if (ep_on_disabled_parse(v, &e->on_disabled) != HQ_OK)
                rc = hq_seterr(err, errlen,
                               "endpoint %s: field '%s': expected drop or hold, got '%.32s'", id, f,
                               v);
        } else if (strcmp(f, "breaker") == 0) {
            if (!*v || strcmp(v, "closed") == 0)
                e->breaker = EP_BREAKER_CLOSED;
            else if (strcmp(v, "open") == 0)
                e->breaker = EP_BREAKER_OPEN;
            else if (strcmp(v, "half_open") == 0)
                e->breaker = EP_BREAKER_HALF_OPEN;
            else
                rc = hq_seterr(err, errlen,
                               "endpoint %s: field '%s': expected closed, open or half_open, got "
                               "'%.32s'",
                               id, f, v);
        } else if (strcmp(f, "breaker_until") == 0)
            rc = parse_int_field(id, f, v, 0, INT64_MAX, &e->breaker_until, err, errlen);
        else if (strcmp(f, "paused_until") == 0)
            rc = parse_int_field(id, f, v, 0, INT64_MAX, &e->paused_until, err, errlen);
        else if (strcmp(f, "breaker_opened_at") == 0)
            rc = parse_time_field(id, f, v, &e->breaker_opened_at, err, errlen);
        /* Unknown fields are ignored: a newer hookq may have added them. */
        if (oom)
            return hq_seterr(err, errlen, "out of memory");
        if (rc != HQ_OK)
            return HQ_ERR;
    }
    if (!e->url || !*e->url)
        return hq_seterr(err, errlen, "endpoint %s: field 'url' is missing", id);
    if (!e->secret || !*e->secret)
        return hq_seterr(err, errlen, "endpoint %s: field 'secret' is missing", id);
    if (!have_events && pat_list_parse("*", &e->events, perr, sizeof(perr)) != HQ_OK)
        return hq_seterr(err, errlen, "endpoint %s: %s", id, perr);
    return HQ_OK;
}

/* ---- loading --------------------------------------------------------------------- */

static int reply_err(const char *what, const redisReply *r, char *err, size_t errlen) {
    return hq_seterr(err, errlen, "%s: %s", what,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
}

int ep_load(rconn *r, const char *prefix, const char *id, ep **out, char *err, size_t errlen) {
    char k[KEY_MAX];
    redisReply *rep = NULL;
    ep *e = NULL;
    int rc = HQ_ERR;
    *out = NULL;
    if (key_endpoint(prefix, id, k, sizeof(k)) != HQ_OK)
        return hq_seterr(err, errlen, "endpoint id too long");
    rep = rconn_cmd(r, err, errlen, "HGETALL %s", k);
    if (!rep)
        return HQ_ERR;
    if (rep->type != REDIS_REPLY_ARRAY) {
        reply_err("HGETALL", rep, err, errlen);
        goto cleanup;
    }
    if (rep->elements == 0) {
        hq_seterr(err, errlen, "endpoint %s not found", id);
        goto cleanup;
    }
    e = ep_new();
    if (!e) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    if (ep_from_hash(e, id, rep, err, errlen) != HQ_OK)
        goto cleanup;
    *out = e;
    e = NULL;
    rc = HQ_OK;
cleanup:
    ep_free(e);
    freeReplyObject(rep);
    return rc;
}

static int cmp_ep(const void *a, const void *b) {
    return strcmp((*(ep *const *)a)->id, (*(ep *const *)b)->id);
}

/* ---- batches (common/pipeline.h) ------------------------------------------------- */

/* Tags of the commands this file sends, so an error reply can name its command. */
enum {
    T_MULTI,
    T_EXEC,
    T_GET,
    T_SMEMBERS,
    T_HGETALL,
    T_HSET,
    T_HDEL,
    T_SADD,
    T_SREM,
    T_INCR,
    T_DEL
};
static const char *const tag_names[] = {"MULTI", "EXEC", "GET",  "SMEMBERS", "HGETALL", "HSET",
                                        "HDEL",  "SADD", "SREM", "INCR",     "DEL"};

/* Queue one command of argc NUL-terminated arguments. */
static void queue(pipeline *p, int tag, int argc, const char *const *argv) {
    pipeline_begin(p, tag, NULL);
    for (int i = 0; i < argc; i++)
        pipeline_arg(p, argv[i]);
    pipeline_end(p);
}

/* Send p and read every reply. pipeline_exec can fail with part of the batch already in
 * hiredis's output buffer (OOM while appending); marking the connection broken makes the
 * next call reconnect instead of sending that half -- which for a MULTI would leave the
 * connection inside a transaction. */
static int send_batch(pipeline *p, rconn *r, char *err, size_t errlen) {
    if (pipeline_exec(p, r, err, errlen) == HQ_OK)
        return HQ_OK;
    rconn_set_broken(r);
    return HQ_ERR;
}

/* Send p, which holds MULTI, the commands, EXEC, and check every reply: HQ_OK only if the
 * transaction ran and no command in it failed. *exec gets the EXEC reply (owned by p). */
static int send_multi(pipeline *p, rconn *r, const redisReply **exec, char *err, size_t errlen) {
    size_t n = pipeline_len(p);
    *exec = NULL;
    if (send_batch(p, r, err, errlen) != HQ_OK)
        return HQ_ERR;
    for (size_t i = 0; i + 1 < n; i++) {
        const redisReply *q = pipeline_reply(p, i);
        if (q->type == REDIS_REPLY_ERROR)
            return hq_seterr(err, errlen, "Redis: %s: %s", tag_names[pipeline_tag(p, i)], q->str);
    }
    const redisReply *x = pipeline_reply(p, n - 1);
    if (x->type != REDIS_REPLY_ARRAY || x->elements != n - 2)
        return reply_err("EXEC", x, err, errlen);
    for (size_t i = 0; i < x->elements; i++)
        if (x->element[i]->type == REDIS_REPLY_ERROR)
            return hq_seterr(err, errlen, "Redis: %s: %s", tag_names[pipeline_tag(p, i + 1)],
                             x->element[i]->str);
    *exec = x;
    return HQ_OK;
}

/* ---- loading every endpoint ------------------------------------------------------ */

void ep_table_clear(ep_table *t) {
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        ep_free(t->eps[i]);
    free(t->eps);
    for (size_t i = 0; i < t->n_bad; i++) {
        free(t->bad[i].id);
        free(t->bad[i].error);
    }
    free(t->bad);
    memset(t, 0, sizeof(*t));
}

/* Record that id did not parse (error says why). t->bad has room: it is sized for every
 * member of the set. */
static int add_bad(ep_table *t, const char *id, const char *error) {
    ep_bad *b = &t->bad[t->n_bad];
    b->id = strdup(id);
    b->error = strdup(error);
    if (!b->id || !b->error) {
        free(b->id);
        free(b->error);
        return HQ_ERR;
    }
    t->n_bad++;
    return HQ_OK;
}

static int cmp_bad(const void *a, const void *b) {
    return strcmp(((const ep_bad *)a)->id, ((const ep_bad *)b)->id);
}

int ep_load_table(rconn *r, const char *prefix, ep_table *t, char *err, size_t errlen) {
    char kv[KEY_MAX], ks[KEY_MAX], k[KEY_MAX], eerr[HQ_ERRLEN];
    pipeline *p = pipeline_new(), *h = pipeline_new();
    size_t m = 0;
    int rc = HQ_ERR;
    memset(t, 0, sizeof(*t));
    if (!p || !h) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    if (key_ep_version(prefix, kv, sizeof(kv)) != HQ_OK ||
        key_endpoints(prefix, ks, sizeof(ks)) != HQ_OK) {
        hq_seterr(err, errlen, "bad key prefix");
        goto cleanup;
    }
    /* The version before the members: if an endpoint changes while we read, the version
     * we report is already stale and the caller reloads again. One round trip: replies
     * come back in order. */
    queue(p, T_GET, 2, (const char *[]){"GET", kv});
    queue(p, T_SMEMBERS, 2, (const char *[]){"SMEMBERS", ks});
    if (send_batch(p, r, err, errlen) != HQ_OK)
        goto cleanup;
    const redisReply *vrep = pipeline_reply(p, 0), *members = pipeline_reply(p, 1);
    if (vrep->type == REDIS_REPLY_NIL)
        t->version = 0;
    else if (vrep->type == REDIS_REPLY_STRING)
        t->version = strtoll(vrep->str, NULL, 10);
    else {
        reply_err("GET endpoints version", vrep, err, errlen);
        goto cleanup;
    }
    if (members->type != REDIS_REPLY_ARRAY) {
        reply_err("SMEMBERS", members, err, errlen);
        goto cleanup;
    }
    m = members->elements;
    if (m == 0) {
        rc = HQ_OK;
        goto cleanup;
    }
    t->eps = calloc(m, sizeof(*t->eps));
    t->bad = calloc(m, sizeof(*t->bad));
    if (!t->eps || !t->bad) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    /* One HGETALL per member; a member too long to be a key gets none (it is bad). */
    for (size_t i = 0; i < m; i++) {
        const char *id = members->element[i]->str;
        if (key_endpoint(prefix, id, k, sizeof(k)) == HQ_OK)
            queue(h, T_HGETALL, 2, (const char *[]){"HGETALL", k});
    }
    if (send_batch(h, r, err, errlen) != HQ_OK)
        goto cleanup;
    for (size_t i = 0, j = 0; i < m; i++) {
        const char *id = members->element[i]->str;
        const redisReply *rep = NULL;
        if (key_endpoint(prefix, id, k, sizeof(k)) != HQ_OK) {
            hq_seterr(eerr, sizeof(eerr), "endpoint %.64s...: id too long for a key", id);
        } else if ((rep = pipeline_reply(h, j++))->type != REDIS_REPLY_ARRAY) {
            /* WRONGTYPE and the like: that one key is damaged, not the load. */
            hq_seterr(eerr, sizeof(eerr), "endpoint %s: HGETALL: %s", id,
                      rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply type");
            rep = NULL;
        } else if (rep->elements == 0) {
            continue; /* deleted between SMEMBERS and HGETALL */
        } else {
            ep *e = ep_new();
            if (!e) {
                hq_seterr(err, errlen, "out of memory");
                goto cleanup;
            }
            if (ep_from_hash(e, id, rep, eerr, sizeof(eerr)) == HQ_OK) {
                t->eps[t->n++] = e;
                continue;
            }
            ep_free(e);
        }
        if (add_bad(t, id, eerr) != HQ_OK) {
            hq_seterr(err, errlen, "out of memory");
            goto cleanup;
        }
    }
    qsort(t->eps, t->n, sizeof(*t->eps), cmp_ep);
    qsort(t->bad, t->n_bad, sizeof(*t->bad), cmp_bad);
    rc = HQ_OK;
cleanup:
    if (rc != HQ_OK)
        ep_table_clear(t);
    pipeline_free(h);
    pipeline_free(p);
    return rc;
}

/* ---- writing --------------------------------------------------------------------- */

static char *headers_json(const ep *e) {
    json_t *a = json_array();
    char *out = NULL;
    for (size_t i = 0; a && i < e->n_headers; i++) {
        size_t l = strlen(e->header_names[i]) + strlen(e->header_values[i]) + 3;
        char *line = malloc(l);
        if (!line)
            goto cleanup;
        snprintf(line, l, "%s: %s", e->header_names[i], e->header_values[i]);
        json_array_append_new(a, json_string(line));
        free(line);
    }
    if (a)
        out = json_dumps(a, JSON_COMPACT);
cleanup:
    json_decref(a);
    return out;
}

/* One hash field to write: value NULL means the field is HDEL'd. */
typedef struct field {
    const char *name;
    const char *value;
} field;

int ep_save(rconn *r, const char *prefix, const ep *e, char *err, size_t errlen) {
    char kh[KEY_MAX], ks[KEY_MAX], kv[KEY_MAX];
    char t_old[TS_ISO_LEN], t_created[TS_ISO_LEN], t_updated[TS_ISO_LEN], t_disabled[TS_ISO_LEN];
    char *events = NULL, *headers = NULL;
    pipeline *p = NULL;
    const redisReply *x;
    int rc = HQ_ERR;
    if (!e->id || !e->url || !e->secret)
        return hq_seterr(err, errlen, "endpoint needs an id, a url and a secret");
    if (key_endpoint(prefix, e->id, kh, sizeof(kh)) != HQ_OK ||
        key_endpoints(prefix, ks, sizeof(ks)) != HQ_OK ||
        key_ep_version(prefix, kv, sizeof(kv)) != HQ_OK)
        return hq_seterr(err, errlen, "endpoint id or prefix too long");
    events = e->events.n ? pat_list_join(&e->events) : strdup("*");
    headers = headers_json(e);
    p = pipeline_new();
    if (!events || !headers || !p) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    ts_iso(e->created_at, t_created, sizeof(t_created));
    ts_iso(e->updated_at, t_updated, sizeof(t_updated));
    if (e->secret_old_until > 0)
        ts_iso(e->secret_old_until, t_old, sizeof(t_old));
    if (e->disabled_at > 0)
        ts_iso(e->disabled_at, t_disabled, sizeof(t_disabled));
    char t_bopen[TS_ISO_LEN], b_until[24], rate[48], mif[24], hmax[24];
    if (e->breaker_opened_at > 0)
        ts_iso(e->breaker_opened_at, t_bopen, sizeof(t_bopen));
    snprintf(b_until, sizeof b_until, "%lld", (long long)e->breaker_until);
    ep_rate_format(e->rate_n, e->rate_window_ms, rate, sizeof rate);
    snprintf(mif, sizeof mif, "%lld", (long long)e->max_in_flight);
    snprintf(hmax, sizeof hmax, "%lld", (long long)e->hold_max);
    int closed = e->breaker == EP_BREAKER_CLOSED;
    char paused[24];
    snprintf(paused, sizeof paused, "%lld", (long long)e->paused_until);
    const field fields[] = {
        {"url", e->url},
        {"events", events},
        {"secret", e->secret},
        {"secret_old", e->secret_old},
        {"secret_old_until", e->secret_old_until > 0 ? t_old : NULL},
        {"description", e->description},
        {"tenant", e->tenant},
        {"enabled", e->enabled ? "true" : "false"},
        {"github_signature", e->github_signature ? "true" : "false"},
        {"github_secret", ep_github_secret_name(e->github_secret)},
        {"headers", headers},
        {"created_at", t_created},
        {"updated_at", t_updated},
        {"disabled_at", e->disabled_at > 0 ? t_disabled : NULL},
        {"disabled_reason", e->disabled_reason},
        {"ordered", e->ordered ? "true" : NULL},
        {"order_key", e->order_key},
        {"rate", e->rate_n > 0 ? rate : NULL},
        {"max_in_flight", e->max_in_flight > 0 ? mif : NULL},
        {"on_disabled", e->on_disabled == EP_DISABLED_HOLD ? "hold" : NULL},
        {"hold_max", e->hold_max > 0 ? hmax : NULL},
        {"lanes", e->lanes || ep_uses_lanes(e) ? "true" : NULL},
        {"breaker", closed ? NULL : ep_breaker_name(e->breaker)},
        {"breaker_until", closed ? NULL : b_until},
        {"breaker_opened_at", !closed && e->breaker_opened_at > 0 ? t_bopen : NULL},
        {"paused_until", e->paused_until > 0 ? paused : NULL},
    };
    size_t nf = sizeof(fields) / sizeof(fields[0]), n_del = 0;

    /* The hash, the set and the version in one transaction: a worker that sees the new
     * version also sees the new fields. */
    queue(p, T_MULTI, 1, (const char *[]){"MULTI"});
    pipeline_begin(p, T_HSET, NULL);
    pipeline_arg(p, "HSET");
    pipeline_arg(p, kh);
    for (size_t i = 0; i < nf; i++)
        if (fields[i].value) {
            pipeline_arg(p, fields[i].name);
            pipeline_arg(p, fields[i].value);
        } else {
            n_del++;
        }
    pipeline_end(p);
    if (n_del) {
        pipeline_begin(p, T_HDEL, NULL);
        pipeline_arg(p, "HDEL");
        pipeline_arg(p, kh);
        for (size_t i = 0; i < nf; i++)
            if (!fields[i].value)
                pipeline_arg(p, fields[i].name);
        pipeline_end(p);
    }
    queue(p, T_SADD, 3, (const char *[]){"SADD", ks, e->id});
    queue(p, T_INCR, 2, (const char *[]){"INCR", kv});
    queue(p, T_EXEC, 1, (const char *[]){"EXEC"});
    rc = send_multi(p, r, &x, err, errlen);
cleanup:
    pipeline_free(p);
    free(events);
    free(headers);
    return rc;
}

/* Longest lane key: the endpoint part (prefix, id) plus an order key cut at its limit. */
#define LANE_KEY_MAX (KEY_MAX + EP_ORDER_KEY_MAX + 8)

/* The endpoint's per-endpoint lane keys (docs/policies.md) go with it: a lane left behind
 * would be picked up again by an endpoint re-created with the same id (never in practice:
 * ids are random) and, more to the point, hold memory nobody can see any more. The order
 * keys are read first (SMEMBERS lanekeys); a key a fanout adds between that read and the
 * MULTI is left behind, which is harmless: nothing claims a removed endpoint's lanes. */
int ep_delete(rconn *r, const char *prefix, const char *id, char *err, size_t errlen) {
    char kh[KEY_MAX], kf[KEY_MAX], kl[KEY_MAX], ks[KEY_MAX], kv[KEY_MAX];
    char kready[KEY_MAX], kleases[KEY_MAX], ktries[KEY_MAX], kstate[KEY_MAX], klk[KEY_MAX];
    char khealth[KEY_MAX], klane[LANE_KEY_MAX];
    const redisReply *x, *lk;
    if (key_endpoint(prefix, id, kh, sizeof(kh)) != HQ_OK ||
        key_failures(prefix, id, kf, sizeof(kf)) != HQ_OK ||
        key_log(prefix, id, kl, sizeof(kl)) != HQ_OK ||
        key_endpoints(prefix, ks, sizeof(ks)) != HQ_OK ||
        key_ep_version(prefix, kv, sizeof(kv)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_READY, kready, sizeof(kready)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_LEASES, kleases, sizeof(kleases)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_TRIES, ktries, sizeof(ktries)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_STATE, kstate, sizeof(kstate)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_LANEKEYS, klk, sizeof(klk)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_HEALTH, khealth, sizeof(khealth)) != HQ_OK ||
        key_ep_part(prefix, id, KEY_EP_LANE, klane, sizeof(klane)) != HQ_OK)
        return hq_seterr(err, errlen, "endpoint id or prefix too long");
    size_t lane_base = strlen(klane);
    pipeline *rd = pipeline_new(), *p = pipeline_new();
    int rc = HQ_ERR;
    if (!rd || !p) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    queue(rd, T_SMEMBERS, 2, (const char *[]){"SMEMBERS", klk});
    if (send_batch(rd, r, err, errlen) != HQ_OK)
        goto cleanup;
    /* A lanekeys of the wrong type (edited by hand) must not keep the endpoint from going:
     * it is deleted like the rest, its lanes (if any) left behind. */
    lk = pipeline_reply(rd, 0);
    queue(p, T_MULTI, 1, (const char *[]){"MULTI"});
    queue(p, T_DEL, 2, (const char *[]){"DEL", kh});
    queue(p, T_DEL, 3, (const char *[]){"DEL", kf, kl});
    queue(p, T_SREM, 3, (const char *[]){"SREM", ks, id});
    queue(p, T_INCR, 2, (const char *[]){"INCR", kv});
    pipeline_begin(p, T_DEL, NULL);
    pipeline_arg(p, "DEL");
    const char *fixed[] = {kready, kleases, ktries, kstate, klk, khealth};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        pipeline_arg(p, fixed[i]);
    for (size_t i = 0; lk->type == REDIS_REPLY_ARRAY && i < lk->elements; i++) {
        const redisReply *k = lk->element[i];
        /* Order keys are cut at EP_ORDER_KEY_MAX when pushed; a longer member was not
         * written by hookq and has no lane of this form. Keys may hold any bytes. */
        if (k->type != REDIS_REPLY_STRING || k->len > EP_ORDER_KEY_MAX)
            continue;
        memcpy(klane + lane_base, k->str, k->len);
        pipeline_argn(p, klane, lane_base + k->len);
    }
    pipeline_end(p);
    queue(p, T_EXEC, 1, (const char *[]){"EXEC"});
    rc = send_multi(p, r, &x, err, errlen);
    if (rc == HQ_OK && x->element[0]->integer == 0 && x->element[2]->integer == 0)
        rc = hq_seterr(err, errlen, "endpoint %s not found", id);
cleanup:
    pipeline_free(rd);
    pipeline_free(p);
    return rc;
}

/* ---- JSON view ------------------------------------------------------------------- */

static void set_time(json_t *o, const char *k, int64_t ms) {
    char b[TS_ISO_LEN];
    if (ms <= 0) {
        json_object_set_new(o, k, json_null());
        return;
    }
    ts_iso(ms, b, sizeof(b));
    json_object_set_new(o, k, json_string(b));
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

json_t *ep_to_json(const ep *e, int show_secret) {
    json_t *o = json_object(), *ev = json_array(), *hs = json_array();
    if (!o || !ev || !hs) {
        json_decref(o);
        json_decref(ev);
        json_decref(hs);
        return NULL;
    }
    json_object_set_new(o, "id", str_or_null(e->id));
    json_object_set_new(o, "url", str_or_null(e->url));
    for (size_t i = 0; i < e->events.n; i++)
        json_array_append_new(ev, json_string(e->events.items[i]));
    json_object_set_new(o, "events", ev);
    json_object_set_new(o, "description", str_or_null(e->description));
    json_object_set_new(o, "tenant", str_or_null(e->tenant));
    json_object_set_new(o, "enabled", json_boolean(e->enabled));
    json_object_set_new(o, "github_signature", json_boolean(e->github_signature));
    json_object_set_new(o, "github_secret", json_string(ep_github_secret_name(e->github_secret)));
    /* "Name: value", the form --header takes and the hash stores. */
    for (size_t i = 0; i < e->n_headers; i++) {
        json_t *h = json_sprintf("%s: %s", e->header_names[i], e->header_values[i]);
        if (h)
            json_array_append_new(hs, h);
    }
    json_object_set_new(o, "headers", hs);
    set_time(o, "created_at", e->created_at);
    set_time(o, "updated_at", e->updated_at);
    set_time(o, "disabled_at", e->disabled_at);
    json_object_set_new(o, "disabled_reason", str_or_null(e->disabled_reason));
    /* When the old secret stops being used is not a secret; the secrets themselves are
     * only shown when the caller just created or rotated them. */
    set_time(o, "secret_old_until", e->secret_old ? e->secret_old_until : 0);
    json_t *pol = json_object();
    if (pol) {
        char rate[48];
        ep_rate_format(e->rate_n, e->rate_window_ms, rate, sizeof rate);
        json_object_set_new(pol, "ordered", json_boolean(e->ordered));
        json_object_set_new(pol, "order_key", str_or_null(e->order_key));
        json_object_set_new(pol, "rate", e->rate_n > 0 ? json_string(rate) : json_null());
        json_object_set_new(pol, "max_in_flight",
                            e->max_in_flight > 0 ? json_integer(e->max_in_flight) : json_null());
        json_object_set_new(pol, "on_disabled", json_string(ep_on_disabled_name(e->on_disabled)));
        json_object_set_new(pol, "hold_max",
                            json_integer(e->hold_max > 0 ? e->hold_max : EP_HOLD_MAX_DEFAULT));
        json_object_set_new(o, "policy", pol);
    }
    json_object_set_new(o, "breaker", json_string(ep_breaker_name(e->breaker)));
    set_time(o, "breaker_until", e->breaker != EP_BREAKER_CLOSED ? e->breaker_until : 0);
    if (show_secret) {
        json_object_set_new(o, "secret", str_or_null(e->secret));
        if (e->secret_old)
            json_object_set_new(o, "secret_old", json_string(e->secret_old));
    }
    return o;
}

/* ---- policies ---------------------------------------------------------------------- */

int ep_uses_lanes(const ep *e) {
    return e->ordered || e->rate_n > 0 || e->max_in_flight > 0 || e->breaker != EP_BREAKER_CLOSED ||
           (!e->enabled && e->on_disabled == EP_DISABLED_HOLD) ||
           (e->paused_until > 0 && e->paused_until > ts_now_ms());
}

int ep_claims_lanes(const ep *e) {
    return e->lanes || ep_uses_lanes(e);
}

int ep_rate_parse(const char *s, int64_t *n, int64_t *window_ms, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int64_t w = 0;
    if (end != s && *end == '/' && !errno) {
        if (strcmp(end, "/s") == 0)
            w = 1000;
        else if (strcmp(end, "/m") == 0)
            w = 60000;
        else if (strcmp(end, "/h") == 0)
            w = 3600000;
    }
    if (!w || v < 1 || v > 1000000 || !isdigit((unsigned char)*s))
        return hq_seterr(err, errlen,
                         "bad rate '%.32s': expected <n>/s, <n>/m or <n>/h with n 1..1000000", s);
    *n = v;
    *window_ms = w;
    return HQ_OK;
}

void ep_rate_format(int64_t n, int64_t window_ms, char *buf, size_t len) {
    const char *u = window_ms == 3600000 ? "h" : window_ms == 60000 ? "m" : "s";
    snprintf(buf, len, "%lld/%s", (long long)n, u);
}

static int order_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int ep_order_key_parse(const char *s, char **out, char *err, size_t errlen) {
    const char *name = strncmp(s, "data.", 5) == 0 ? s + 5 : s;
    if (strcmp(s, "tenant") == 0) {
        *out = strdup("tenant");
    } else if (order_name_ok(name)) {
        size_t n = strlen(name) + 6;
        *out = malloc(n);
        if (*out)
            snprintf(*out, n, "data.%s", name);
    } else {
        return hq_seterr(err, errlen,
                         "bad order key '%.70s': expected tenant, or a top-level data field name "
                         "([A-Za-z0-9_-], up to 64) as <name> or data.<name>",
                         s);
    }
    return *out ? HQ_OK : hq_seterr(err, errlen, "out of memory");
}

int ep_on_disabled_parse(const char *s, ep_on_disabled *out) {
    if (strcmp(s, "drop") == 0)
        *out = EP_DISABLED_DROP;
    else if (strcmp(s, "hold") == 0)
        *out = EP_DISABLED_HOLD;
    else
        return HQ_ERR;
    return HQ_OK;
}

const char *ep_on_disabled_name(ep_on_disabled m) {
    return m == EP_DISABLED_HOLD ? "hold" : "drop";
}

const char *ep_breaker_name(ep_breaker b) {
    return b == EP_BREAKER_OPEN ? "open" : b == EP_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* ---- signing ---------------------------------------------------------------------- */

const char *ep_github_secret(const ep *e, int64_t now_ms) {
    if (e->github_secret == EP_GITHUB_SECRET_PREVIOUS && e->secret_old && *e->secret_old &&
        now_ms < e->secret_old_until)
        return e->secret_old;
    return e->secret;
}

int ep_github_secret_parse(const char *s, ep_github_secret_mode *out) {
    if (strcmp(s, "current") == 0)
        *out = EP_GITHUB_SECRET_CURRENT;
    else if (strcmp(s, "previous") == 0)
        *out = EP_GITHUB_SECRET_PREVIOUS;
    else
        return HQ_ERR;
    return HQ_OK;
}

const char *ep_github_secret_name(ep_github_secret_mode m) {
    return m == EP_GITHUB_SECRET_PREVIOUS ? "previous" : "current";
}

/* ---- matching --------------------------------------------------------------------- */

static int str_unset(const char *s) {
    return !s || !*s;
}

int ep_matches(const ep *e, const char *type, const char *tenant, const char *target) {
    if (!e || !e->enabled || !e->id)
        return 0;
    if (!str_unset(target)) {
        if (strcmp(e->id, target) != 0)
            return 0;
    } else if (!type || !pat_list_match(&e->events, type)) {
        return 0;
    }
    if (!str_unset(tenant) && !str_unset(e->tenant) && strcmp(tenant, e->tenant) != 0)
        return 0;
    return 1;
}
