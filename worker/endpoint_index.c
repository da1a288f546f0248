/* endpoint_index.c -- see endpoint_index.h. */
#include "endpoint_index.h"
#include <stdlib.h>
#include <string.h>
#include "string_map.h"
#include "hq.h"

typedef struct etv {
    epindex_ent **v;
    size_t n, cap;
} etv;

struct epindex {
    epindex_ent *ents; /* n entries */
    size_t n;
    strmap *by_id;  /* id -> epindex_ent* */
    strmap *exact;  /* type -> etv* */
    strmap *prefix; /* "task:" -> etv* */
    etv all;        /* "*" subscribers */
    etv res;        /* epindex_match result */
    unsigned gen;
    strmap *broken; /* ids in Redis that did not parse and have no older copy */
};

static int etv_push(etv *v, epindex_ent *e) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        epindex_ent **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return HQ_ERR;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = e;
    return HQ_OK;
}

static void etv_free_cb(void *ctx, const char *key, void *val) {
    etv *v = val;
    free(v->v);
    free(v);
}

static void epindex_clear(epindex *t) {
    if (t->exact)
        strmap_each(t->exact, etv_free_cb, NULL);
    if (t->prefix)
        strmap_each(t->prefix, etv_free_cb, NULL);
    strmap_free(t->exact);
    strmap_free(t->prefix);
    strmap_free(t->by_id);
    t->exact = t->prefix = t->by_id = NULL;
    for (size_t i = 0; i < t->n; i++)
        ep_free(t->ents[i].e);
    free(t->ents);
    t->ents = NULL;
    t->n = 0;
    t->all.n = 0;
}

epindex *epindex_new(void) {
    epindex *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->by_id = strmap_new();
    t->exact = strmap_new();
    t->prefix = strmap_new();
    if (!t->by_id || !t->exact || !t->prefix) {
        epindex_free(t);
        return NULL;
    }
    return t;
}

void epindex_free(epindex *t) {
    if (!t)
        return;
    epindex_clear(t);
    strmap_free(t->broken);
    free(t->all.v);
    free(t->res.v);
    free(t);
}

static int epindex_index(strmap *m, const char *key, epindex_ent *e) {
    etv *v = strmap_get(m, key);
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v || strmap_put(m, key, v) != HQ_OK) {
            free(v);
            return HQ_ERR;
        }
    }
    return etv_push(v, e);
}

int epindex_set(epindex *t, ep **eps, size_t n, char *err, size_t errlen) {
    epindex_clear(t);
    t->by_id = strmap_new();
    t->exact = strmap_new();
    t->prefix = strmap_new();
    t->ents = calloc(n ? n : 1, sizeof *t->ents);
    if (!t->by_id || !t->exact || !t->prefix || !t->ents) {
        for (size_t i = 0; i < n; i++)
            ep_free(eps[i]);
        free(eps);
        epindex_clear(t);
        return hq_seterr(err, errlen, "out of memory loading endpoints");
    }
    t->n = n;
    for (size_t i = 0; i < n; i++)
        t->ents[i].e = eps[i];
    free(eps);
    for (size_t i = 0; i < n; i++) {
        epindex_ent *en = &t->ents[i];
        ep *e = en->e;
        char derr[HQ_ERRLEN];
        if (!e->secret ||
            sign_secret_decode(e->secret, en->key, &en->keylen, derr, sizeof derr) != HQ_OK)
            en->keylen = 0;
        if (!e->secret_old || sign_secret_decode(e->secret_old, en->key_old, &en->key_oldlen, derr,
                                                 sizeof derr) != HQ_OK)
            en->key_oldlen = 0;
        if (strmap_put(t->by_id, e->id, en) != HQ_OK)
            goto oom;
        if (!e->enabled && e->on_disabled != EP_DISABLED_HOLD)
            continue; /* a disabled endpoint that holds still gets its jobs, in its lanes */
        for (size_t k = 0; k < e->events.n; k++) {
            const char *p = e->events.items[k];
            size_t pipeline = strlen(p);
            int rc;
            if (strcmp(p, "*") == 0) {
                rc = etv_push(&t->all, en);
            } else if (pipeline >= 2 && p[pipeline - 1] == '*') {
                char pre[PAT_MAX + 2];
                if (pipeline - 1 >= sizeof pre)
                    continue;
                memcpy(pre, p, pipeline - 1); /* keep the separator: "task:*" -> "task:" */
                pre[pipeline - 1] = '\0';
                rc = epindex_index(t->prefix, pre, en);
            } else {
                rc = epindex_index(t->exact, p, en);
            }
            if (rc != HQ_OK)
                goto oom;
        }
    }
    return HQ_OK;
oom:
    epindex_clear(t);
    t->by_id = strmap_new();
    t->exact = strmap_new();
    t->prefix = strmap_new();
    return hq_seterr(err, errlen, "out of memory indexing endpoints");
}

const epindex_ent *epindex_at(const epindex *t, size_t i) {
    return i < t->n ? &t->ents[i] : NULL;
}

size_t epindex_len(const epindex *t) {
    return t->n;
}

const epindex_ent *epindex_get(const epindex *t, const char *id) {
    const epindex_ent *en = t->by_id ? strmap_get(t->by_id, id) : NULL;
    return en && en->e ? en : NULL;
}

ep *epindex_take(epindex *t, const char *id) {
    epindex_ent *en = t->by_id ? strmap_get(t->by_id, id) : NULL;
    if (!en || !en->e)
        return NULL;
    ep *e = en->e;
    en->e = NULL;
    return e;
}

int epindex_set_broken(epindex *t, const char *const *ids, size_t n) {
    if (!t->broken && n > 0 && !(t->broken = strmap_new()))
        return HQ_ERR;
    for (size_t i = 0; i < n; i++)
        if (strmap_put(t->broken, ids[i], t) != HQ_OK)
            return HQ_ERR;
    return HQ_OK;
}

int epindex_is_broken(const epindex *t, const char *id) {
    return t->broken && strmap_get(t->broken, id) != NULL;
}

static int epindex_tenant_ok(const ep *e, const char *tenant) {
    return !tenant || !e->tenant || strcmp(tenant, e->tenant) == 0;
}

static void epindex_add_list(epindex *t, const etv *v, const char *tenant) {
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        epindex_ent *en = v->v[i];
        if (!en->e || en->mark == t->gen || !epindex_tenant_ok(en->e, tenant))
            continue;
        if (etv_push(&t->res, en) == HQ_OK)
            en->mark = t->gen;
    }
}

size_t epindex_match(epindex *t, const char *type, const char *tenant, const char *target,
                     epindex_ent *const **out) {
    t->res.n = 0;
    if (tenant && !tenant[0])
        tenant = NULL; /* empty means unset, as in ep_matches */
    if (target && !target[0])
        target = NULL;
    t->gen++;
    if (t->gen == 0) { /* wrapped: clear stale stamps so none equals the new gen */
        for (size_t i = 0; i < t->n; i++)
            t->ents[i].mark = 0;
        t->gen = 1;
    }
    if (target) {
        epindex_ent *en = t->by_id ? strmap_get(t->by_id, target) : NULL;
        if (en && en->e && (en->e->enabled || en->e->on_disabled == EP_DISABLED_HOLD) &&
            epindex_tenant_ok(en->e, tenant))
            etv_push(&t->res, en);
    } else if (t->by_id) {
        epindex_add_list(t, strmap_get(t->exact, type), tenant);
        for (size_t i = 0; type[i]; i++)
            if (type[i] == '.' || type[i] == ':')
                epindex_add_list(t, strmap_getn(t->prefix, type, i + 1), tenant);
        epindex_add_list(t, &t->all, tenant);
    }
    *out = t->res.v;
    return t->res.n;
}

int epindex_mark_paused(epindex *t, const char *id, int64_t until_ms) {
    epindex_ent *en = strmap_get(t->by_id, id);
    if (!en || !en->e)
        return 0;
    if (until_ms > en->e->paused_until)
        en->e->paused_until = until_ms;
    en->e->lanes = 1;
    return 1;
}

int epindex_mark_disabled(epindex *t, const char *id) {
    epindex_ent *en = strmap_get(t->by_id, id);
    if (!en || !en->e)
        return 0;
    /* still in the pattern index until the next reload: fanout may make jobs for it,
     * which dispatch then acknowledges as disabled without a request */
    en->e->enabled = 0;
    return 1;
}
