/* cli_lanes.c -- an endpoint's lanes as the CLI sees them: read for `endpoint show`,
 * emptied by `endpoint enable --discard-held`. The keys and what each field means are
 * docs/policies.md's; the worker's scripts own the writes, this file only reads them, and
 * deletes held jobs in one MULTI. */
#include "cli_lanes.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "redis_keys.h"
#include "timestamp.h"

/* A lane key is the endpoint's part plus an order key of up to EP_ORDER_KEY_MAX bytes. */
#define LANE_KEY_MAX  (KEY_MAX + EP_ORDER_KEY_MAX + 8)
#define LEASES_READ   "999" /* ZRANGE leases 0 LEASES_READ: enough keys to show */
#define DISCARD_TRIES 5     /* MULTIs tried while fanouts keep adding order keys */

typedef struct keys {
    char ready[KEY_MAX], leases[KEY_MAX], tries[KEY_MAX], state[KEY_MAX], lanekeys[KEY_MAX];
    char health[KEY_MAX];
    char lane[LANE_KEY_MAX];
    size_t lane_base; /* strlen of "P:{ID}:lane:" in lane */
} keys;

static int keys_init(cli *x, const char *id, keys *k) {
    const char *p = x->c->redis_prefix;
    if (key_ep_part(p, id, KEY_EP_READY, k->ready, sizeof k->ready) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_LEASES, k->leases, sizeof k->leases) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_TRIES, k->tries, sizeof k->tries) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_STATE, k->state, sizeof k->state) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_LANEKEYS, k->lanekeys, sizeof k->lanekeys) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_HEALTH, k->health, sizeof k->health) != HQ_OK ||
        key_ep_part(p, id, KEY_EP_LANE, k->lane, sizeof k->lane) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "endpoint id or prefix too long");
    k->lane_base = strlen(k->lane);
    return CLI_OK;
}

/* The lane key of order key s (n bytes; n <= EP_ORDER_KEY_MAX), in k->lane. */
static size_t lane_key(keys *k, const char *s, size_t n) {
    memcpy(k->lane + k->lane_base, s, n);
    k->lane[k->lane_base + n] = '\0';
    return k->lane_base + n;
}

/* Queue one command of NUL-terminated arguments, the list ending with NULL. */
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

static int run(cli *x, pipeline *p) {
    char err[HQ_ERRLEN];
    int rc;
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    if (pipeline_exec(p, x->r, err, sizeof err) != HQ_OK) {
        rconn_set_broken(x->r);
        return cli_fail(x, CLI_FAIL, "%s", err);
    }
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *q = pipeline_reply(p, i);
        if (q->type == REDIS_REPLY_ERROR)
            return cli_fail(x, CLI_FAIL, "Redis: %s: %s", pipeline_argv_at(p, i, 0), q->str);
    }
    return CLI_OK;
}

static int is_str(const redisReply *q) {
    return q && q->type == REDIS_REPLY_STRING;
}

static long long reply_ll(const redisReply *q) {
    if (q && q->type == REDIS_REPLY_INTEGER)
        return q->integer;
    return is_str(q) ? strtoll(q->str, NULL, 10) : 0;
}

/* A lane id ("00000001764600000000-00000000000000000005") as the stream id it pads
 * ("1764600000000-5"); anything else as is. */
static void lane_sid(const char *lid, char *buf, size_t len) {
    const char *dash = strchr(lid, '-');
    const char *a = lid, *b;
    if (!dash) {
        snprintf(buf, len, "%s", lid);
        return;
    }
    b = dash + 1;
    while (*a == '0' && a + 1 < dash)
        a++;
    while (*b == '0' && b[1])
        b++;
    snprintf(buf, len, "%.*s-%s", (int)(dash - a), a, b);
}

static json_t *iso_or_null(long long ms) {
    char b[TS_ISO_LEN];
    if (ms <= 0)
        return json_null();
    ts_iso(ms, b, sizeof b);
    return json_string(b);
}

/* JSON for bytes that may not be UTF-8 (an order key is cut at 128 bytes, maybe inside a
 * character): non-ASCII bytes become '?' rather than the key vanishing. */
static json_t *bytes_json(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] >= 0x80 || !s[i] ? '?' : s[i];
    c[n] = '\0';
    j = json_string(c);
    free(c);
    return j;
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

/* ---- show ----------------------------------------------------------------------- */

typedef struct okey {
    const char *s; /* into a reply that outlives the list */
    size_t n;
} okey;

static int okey_cmp(const void *a, const void *b) {
    const okey *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int okey_has(const okey *l, size_t n, const char *s, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (l[i].n == len && memcmp(l[i].s, s, len) == 0)
            return 1;
    return 0;
}

static json_t *health_json(const redisReply *h) {
    long long since = 0, n = 0, f = 0, opens = 0;
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return json_null();
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = is_str(h->element[i]) ? h->element[i]->str : "";
        long long v = reply_ll(h->element[i + 1]);
        if (strcmp(k, "since") == 0)
            since = v;
        else if (strcmp(k, "n") == 0)
            n = v;
        else if (strcmp(k, "f") == 0)
            f = v;
        else if (strcmp(k, "opens") == 0)
            opens = v;
    }
    return json_pack("{s:o,s:I,s:I,s:I}", "since", iso_or_null(since), "attempts", (json_int_t)n,
                     "failures", (json_int_t)f, "opens", (json_int_t)opens);
}

enum { R_HEALTH, R_LEASES_N, R_STATE, R_LANEKEYS, R_LEASES, R_N1 };

/* Per order key: ZCARD lane, ZRANGE lane 0 0, ZSCORE ready key, HMGET state h:key last:key */
#define PER_KEY 4

static int key_rows(cli *x, keys *k, const okey *ks, size_t nk, json_t *arr) {
    pipeline *p = pipeline_new(), *t = pipeline_new();
    char field[EP_ORDER_KEY_MAX + 8], field2[EP_ORDER_KEY_MAX + 8];
    int rc = CLI_FAIL;
    if (!p || !t) {
        cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nk; i++) {
        size_t ln = lane_key(k, ks[i].s, ks[i].n);
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "ZCARD");
        pipeline_argn(p, k->lane, ln);
        pipeline_end(p);
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "ZRANGE");
        pipeline_argn(p, k->lane, ln);
        pipeline_arg(p, "0");
        pipeline_arg(p, "0");
        pipeline_end(p);
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "ZSCORE");
        pipeline_arg(p, k->ready);
        pipeline_argn(p, ks[i].s, ks[i].n);
        pipeline_end(p);
        memcpy(field, "h:", 2);
        memcpy(field + 2, ks[i].s, ks[i].n);
        memcpy(field2, "last:", 5);
        memcpy(field2 + 5, ks[i].s, ks[i].n);
        pipeline_begin(p, 0, NULL);
        pipeline_arg(p, "HMGET");
        pipeline_arg(p, k->state);
        pipeline_argn(p, field, ks[i].n + 2);
        pipeline_argn(p, field2, ks[i].n + 5);
        pipeline_end(p);
    }
    if ((rc = run(x, p)) != CLI_OK)
        goto cleanup;
    /* The heads' attempt counts need the heads: one more round trip. */
    for (size_t i = 0; i < nk; i++) {
        const redisReply *head = pipeline_reply(p, i * PER_KEY + 1);
        const char *lid =
            head->type == REDIS_REPLY_ARRAY && head->elements == 1 && is_str(head->element[0])
                ? head->element[0]->str
                : "";
        cmd(t, 0, "HGET", k->tries, lid, (const char *)NULL);
    }
    if ((rc = run(x, t)) != CLI_OK)
        goto cleanup;
    for (size_t i = 0; i < nk; i++) {
        const redisReply *card = pipeline_reply(p, i * PER_KEY);
        const redisReply *head = pipeline_reply(p, i * PER_KEY + 1);
        const redisReply *ready = pipeline_reply(p, i * PER_KEY + 2);
        const redisReply *hm = pipeline_reply(p, i * PER_KEY + 3);
        const redisReply *tries = pipeline_reply(t, i);
        int leased = hm->type == REDIS_REPLY_ARRAY && hm->elements == 2 && is_str(hm->element[0]);
        const redisReply *last =
            hm->type == REDIS_REPLY_ARRAY && hm->elements == 2 ? hm->element[1] : NULL;
        char sid[64];
        json_t *o = json_object(), *next;
        if (!o) {
            rc = cli_fail(x, CLI_FAIL, "out of memory");
            goto cleanup;
        }
        json_object_set_new(o, "key", bytes_json(ks[i].s, ks[i].n));
        json_object_set_new(o, "backlog", json_integer(reply_ll(card)));
        if (head->type == REDIS_REPLY_ARRAY && head->elements == 1 && is_str(head->element[0])) {
            lane_sid(head->element[0]->str, sid, sizeof sid);
            json_object_set_new(o, "head", json_string(sid));
            json_object_set_new(o, "attempts", json_integer(reply_ll(tries)));
        } else {
            json_object_set_new(o, "head", json_null());
            json_object_set_new(o, "attempts", json_null());
        }
        if (leased)
            next = json_string("in flight");
        else if (is_str(ready))
            next = iso_or_null(strtoll(ready->str, NULL, 10));
        else
            next = json_null();
        json_object_set_new(o, "next_attempt", next);
        json_object_set_new(o, "in_flight", json_boolean(leased));
        if (is_str(last)) {
            lane_sid(last->str, sid, sizeof sid);
            json_object_set_new(o, "position", json_string(sid));
        } else {
            json_object_set_new(o, "position", json_null());
        }
        json_array_append_new(arr, o);
    }
    rc = CLI_OK;
cleanup:
    pipeline_free(p);
    pipeline_free(t);
    return rc;
}

int cli_lanes_view(cli *x, const ep *e, json_t *view) {
    keys k;
    pipeline *p = NULL;
    okey *ks = NULL;
    size_t nk = 0;
    int rc;
    if ((rc = keys_init(x, e->id, &k)) != CLI_OK)
        return rc;
    if (!(p = pipeline_new()))
        return cli_fail(x, CLI_FAIL, "out of memory");
    cmd(p, R_HEALTH, "HGETALL", k.health, (const char *)NULL);
    cmd(p, R_LEASES_N, "ZCARD", k.leases, (const char *)NULL);
    cmd(p, R_STATE, "HMGET", k.state, "n", "dropped", "dropped_disabled", "pause",
        (const char *)NULL);
    cmd(p, R_LANEKEYS, "SMEMBERS", k.lanekeys, (const char *)NULL);
    cmd(p, R_LEASES, "ZRANGE", k.leases, "0", LEASES_READ, (const char *)NULL);
    if ((rc = run(x, p)) != CLI_OK)
        goto cleanup;
    rc = CLI_FAIL;
    json_object_set_new(view, "breaker_opened_at",
                        iso_or_null(e->breaker != EP_BREAKER_CLOSED ? e->breaker_opened_at : 0));
    json_object_set_new(view, "health", health_json(pipeline_reply(p, R_HEALTH)));
    if (!ep_claims_lanes(e)) {
        rc = CLI_OK;
        goto cleanup;
    }
    const redisReply *st = pipeline_reply(p, R_STATE), *lk = pipeline_reply(p, R_LANEKEYS);
    const redisReply *ls = pipeline_reply(p, R_LEASES);
    const redisReply *sv[4] = {NULL, NULL, NULL, NULL};
    for (size_t i = 0; st->type == REDIS_REPLY_ARRAY && i < st->elements && i < 4; i++)
        sv[i] = st->element[i];
    json_t *lanes = json_pack("{s:I,s:I,s:I,s:I,s:o,s:I}", "in_flight",
                              (json_int_t)reply_ll(pipeline_reply(p, R_LEASES_N)), "backlog",
                              (json_int_t)reply_ll(sv[0]), "dropped", (json_int_t)reply_ll(sv[1]),
                              "dropped_disabled", (json_int_t)reply_ll(sv[2]), "pause_until",
                              iso_or_null(reply_ll(sv[3])), "keys_total", (json_int_t)lk->elements);
    if (!lanes) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    json_object_set_new(view, "lanes", lanes);
    if (!e->ordered) {
        rc = CLI_OK;
        goto cleanup;
    }
    /* The keys with a backlog and the keys with a head out: sorted, at most
     * CLI_LANES_SHOW_KEYS of them. */
    ks = calloc(lk->elements + ls->elements + 1, sizeof *ks);
    if (!ks) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < lk->elements; i++) {
        const redisReply *m = lk->element[i];
        if (is_str(m) && m->len <= EP_ORDER_KEY_MAX && !okey_has(ks, nk, m->str, m->len))
            ks[nk++] = (okey){m->str, m->len};
    }
    for (size_t i = 0; i < ls->elements; i++) {
        const char *s;
        size_t n;
        if (lease_key(ls->element[i], &s, &n) && n <= EP_ORDER_KEY_MAX && !okey_has(ks, nk, s, n))
            ks[nk++] = (okey){s, n};
    }
    qsort(ks, nk, sizeof *ks, okey_cmp);
    json_object_set_new(lanes, "keys_total", json_integer((json_int_t)nk));
    json_t *arr = json_array();
    if (!arr) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    json_object_set_new(lanes, "keys", arr);
    rc = key_rows(x, &k, ks, nk < CLI_LANES_SHOW_KEYS ? nk : CLI_LANES_SHOW_KEYS, arr);
cleanup:
    free(ks);
    pipeline_free(p);
    return rc;
}

static const char *str_of(const json_t *j, const char *k, const char *def) {
    const json_t *v = json_object_get(j, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

static void print_cell(char *buf, size_t len, const json_t *v) {
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, len, "-");
}

void cli_lanes_print(cli *x, const json_t *view) {
    const json_t *h = json_object_get(view, "health"), *l = json_object_get(view, "lanes");
    const char *opened = str_of(view, "breaker_opened_at", NULL);
    if (opened)
        fprintf(x->out, "%-18s %s\n", "breaker_opened_at", opened);
    if (json_is_object(h))
        fprintf(x->out, "%-18s since %s: %lld attempts, %lld failed; opened %lld times\n", "health",
                str_of(h, "since", "-"),
                (long long)json_integer_value(json_object_get(h, "attempts")),
                (long long)json_integer_value(json_object_get(h, "failures")),
                (long long)json_integer_value(json_object_get(h, "opens")));
    if (!json_is_object(l))
        return;
    fprintf(x->out, "lanes\n");
    static const char *const fields[] = {"in_flight",        "backlog",     "dropped",
                                         "dropped_disabled", "pause_until", "keys_total"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char c[64];
        print_cell(c, sizeof c, json_object_get(l, fields[i]));
        fprintf(x->out, "  %-16s %s\n", fields[i], c);
    }
    const json_t *arr = json_object_get(l, "keys");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return;
    static const char *const hdr[] = {"  KEY",    "BACKLOG",      "HEAD",
                                      "ATTEMPTS", "NEXT_ATTEMPT", "POSITION"};
    static const char *const col[] = {"key",      "backlog",      "head",
                                      "attempts", "next_attempt", "position"};
    cli_table *t = cli_table_new(6, hdr);
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o) {
        char cells[6][160];
        const char *row[6];
        for (size_t c = 0; c < 6; c++) {
            const json_t *v = json_object_get(o, col[c]);
            if (c == 0)
                /* "" is the one order of an endpoint without --order-key: show it. */
                snprintf(cells[c], sizeof cells[c], "  %s",
                         json_string_length(v) ? json_string_value(v) : "\"\"");
            else
                print_cell(cells[c], sizeof cells[c], v);
            row[c] = cells[c];
        }
        if (t)
            cli_table_add(t, row);
    }
    if (t) {
        cli_table_print(t, x->out);
        cli_table_free(t);
    }
    if ((size_t)json_integer_value(json_object_get(l, "keys_total")) > json_array_size(arr))
        fprintf(x->out, "  (%zu of %lld keys shown)\n", json_array_size(arr),
                (long long)json_integer_value(json_object_get(l, "keys_total")));
}

/* ---- discard -------------------------------------------------------------------- */

/* One attempt at the MULTI; *done 0 if a watched key changed under it (try again). */
static int discard_once(cli *x, keys *k, long long *discarded, int *done) {
    pipeline *rd = pipeline_new(), *tr = pipeline_new(), *p = pipeline_new();
    const redisReply *lk, *hk, *ls, *tv, *ex;
    size_t nl = 0;
    int rc = CLI_FAIL;
    *done = 0;
    if (!rd || !tr || !p) {
        cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    /* WATCH: a fanout that adds an order key (or a settle that changes an attempt count)
     * between these reads and the MULTI makes EXEC do nothing, and we read again. */
    cmd(rd, 0, "WATCH", k->lanekeys, k->tries, (const char *)NULL);
    cmd(rd, 0, "SMEMBERS", k->lanekeys, (const char *)NULL);
    cmd(rd, 0, "HKEYS", k->state, (const char *)NULL);
    cmd(rd, 0, "ZRANGE", k->leases, "0", "-1", (const char *)NULL);
    if ((rc = run(x, rd)) != CLI_OK)
        goto cleanup;
    rc = CLI_FAIL;
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
    if (nl && (rc = run(x, tr)) != CLI_OK)
        goto cleanup;
    rc = CLI_FAIL;
    tv = nl ? pipeline_reply(tr, 0) : NULL;

    cmd(p, 0, "MULTI", (const char *)NULL);
    for (size_t i = 0; i < lk->elements; i++) {
        const redisReply *m = lk->element[i];
        if (!is_str(m) || m->len > EP_ORDER_KEY_MAX)
            continue;
        pipeline_begin(p, 1, NULL); /* tag 1: a ZCARD to add up */
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
        int out = 0;
        if (!is_str(f) || f->len < 2 || memcmp(f->str, "h:", 2) != 0)
            continue;
        for (size_t j = 0; j < ls->elements && !out; j++) {
            const char *s;
            size_t n;
            out = lease_key(ls->element[j], &s, &n) && n == f->len - 2 &&
                  memcmp(s, f->str + 2, n) == 0;
        }
        if (!out)
            pipeline_argn(p, f->str, f->len);
    }
    pipeline_end(p);
    if (tv && tv->type == REDIS_REPLY_ARRAY) {
        size_t j = 0;
        for (size_t i = 0; i < ls->elements && j < tv->elements; i++) {
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
    }
    cmd(p, 0, "EXEC", (const char *)NULL);
    if ((rc = run(x, p)) != CLI_OK)
        goto cleanup;
    ex = pipeline_reply(p, pipeline_len(p) - 1);
    if (ex->type == REDIS_REPLY_NIL) {
        rc = CLI_OK; /* a watched key changed: nothing ran */
        goto cleanup;
    }
    if (ex->type != REDIS_REPLY_ARRAY || ex->elements != pipeline_len(p) - 2) {
        rc = cli_fail(x, CLI_FAIL, "Redis: EXEC: unexpected reply");
        goto cleanup;
    }
    *discarded = 0;
    for (size_t i = 0; i < ex->elements; i++) {
        if (ex->element[i]->type == REDIS_REPLY_ERROR) {
            rc = cli_fail(x, CLI_FAIL, "Redis: %s: %s", pipeline_argv_at(p, i + 1, 0),
                          ex->element[i]->str);
            goto cleanup;
        }
        if (pipeline_tag(p, i + 1) == 1)
            *discarded += reply_ll(ex->element[i]);
    }
    *done = 1;
    rc = CLI_OK;
cleanup:
    pipeline_free(rd);
    pipeline_free(tr);
    pipeline_free(p);
    return rc;
}

int cli_lanes_discard(cli *x, const char *id, long long *discarded) {
    keys k;
    int rc, done = 0;
    *discarded = 0;
    if ((rc = keys_init(x, id, &k)) != CLI_OK)
        return rc;
    for (int i = 0; i < DISCARD_TRIES; i++) {
        if ((rc = discard_once(x, &k, discarded, &done)) != CLI_OK || done)
            return rc;
    }
    return cli_fail(x, CLI_FAIL,
                    "endpoint %s: its lanes kept changing; nothing discarded (try again)", id);
}
