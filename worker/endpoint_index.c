/* et.c -- see et.h. */
#include "endpoint_index.h"
#include <stdlib.h>
#include <string.h>
#include "string_map.h"
#include "hq.h"

typedef struct etv {
    et_ent **v;
    size_t n, cap;
} etv;

struct et {
    et_ent *ents; /* n entries */
    size_t n;
    hm *by_id;  /* id -> et_ent* */
    hm *exact;  /* type -> etv* */
    hm *prefix; /* "task:" -> etv* */
    etv all;    /* "*" subscribers */
    etv res;    /* et_match result */
    unsigned gen;
};

static int etv_push(etv *v, et_ent *e) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        et_ent **nv = realloc(v->v, cap * sizeof *nv);
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

static void et_clear(et *t) {
    if (t->exact)
        hm_each(t->exact, etv_free_cb, NULL);
    if (t->prefix)
        hm_each(t->prefix, etv_free_cb, NULL);
    hm_free(t->exact);
    hm_free(t->prefix);
    hm_free(t->by_id);
    t->exact = t->prefix = t->by_id = NULL;
    for (size_t i = 0; i < t->n; i++)
        ep_free(t->ents[i].e);
    free(t->ents);
    t->ents = NULL;
    t->n = 0;
    t->all.n = 0;
}

et *et_new(void) {
    et *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->by_id = hm_new();
    t->exact = hm_new();
    t->prefix = hm_new();
    if (!t->by_id || !t->exact || !t->prefix) {
        et_free(t);
        return NULL;
    }
    return t;
}

void et_free(et *t) {
    if (!t)
        return;
    et_clear(t);
    free(t->all.v);
    free(t->res.v);
    free(t);
}

static int et_index(hm *m, const char *key, et_ent *e) {
    etv *v = hm_get(m, key);
    if (!v) {
        v = calloc(1, sizeof *v);
        if (!v || hm_put(m, key, v) != HQ_OK) {
            free(v);
            return HQ_ERR;
        }
    }
    return etv_push(v, e);
}

int et_set(et *t, ep **eps, size_t n, char *err, size_t errlen) {
    et_clear(t);
    t->by_id = hm_new();
    t->exact = hm_new();
    t->prefix = hm_new();
    t->ents = calloc(n ? n : 1, sizeof *t->ents);
    if (!t->by_id || !t->exact || !t->prefix || !t->ents) {
        for (size_t i = 0; i < n; i++)
            ep_free(eps[i]);
        free(eps);
        et_clear(t);
        return hq_seterr(err, errlen, "out of memory loading endpoints");
    }
    t->n = n;
    for (size_t i = 0; i < n; i++)
        t->ents[i].e = eps[i];
    free(eps);
    for (size_t i = 0; i < n; i++) {
        et_ent *en = &t->ents[i];
        ep *e = en->e;
        char derr[HQ_ERRLEN];
        if (!e->secret ||
            sig_secret_decode(e->secret, en->key, &en->keylen, derr, sizeof derr) != HQ_OK)
            en->keylen = 0;
        if (!e->secret_old || sig_secret_decode(e->secret_old, en->key_old, &en->key_oldlen, derr,
                                                sizeof derr) != HQ_OK)
            en->key_oldlen = 0;
        if (hm_put(t->by_id, e->id, en) != HQ_OK)
            goto oom;
        if (!e->enabled)
            continue;
        for (size_t k = 0; k < e->events.n; k++) {
            const char *p = e->events.items[k];
            size_t pl = strlen(p);
            int rc;
            if (strcmp(p, "*") == 0) {
                rc = etv_push(&t->all, en);
            } else if (pl >= 2 && p[pl - 1] == '*') {
                char pre[PAT_MAX + 2];
                if (pl - 1 >= sizeof pre)
                    continue;
                memcpy(pre, p, pl - 1); /* keep the separator: "task:*" -> "task:" */
                pre[pl - 1] = '\0';
                rc = et_index(t->prefix, pre, en);
            } else {
                rc = et_index(t->exact, p, en);
            }
            if (rc != HQ_OK)
                goto oom;
        }
    }
    return HQ_OK;
oom:
    et_clear(t);
    t->by_id = hm_new();
    t->exact = hm_new();
    t->prefix = hm_new();
    return hq_seterr(err, errlen, "out of memory indexing endpoints");
}

size_t et_len(const et *t) {
    return t->n;
}

const et_ent *et_get(const et *t, const char *id) {
    return t->by_id ? hm_get(t->by_id, id) : NULL;
}

static int et_tenant_ok(const ep *e, const char *tenant) {
    return !tenant || !e->tenant || strcmp(tenant, e->tenant) == 0;
}

static void et_add_list(et *t, const etv *v, const char *tenant) {
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        et_ent *en = v->v[i];
        if (en->mark == t->gen || !et_tenant_ok(en->e, tenant))
            continue;
        if (etv_push(&t->res, en) == HQ_OK)
            en->mark = t->gen;
    }
}

size_t et_match(et *t, const char *type, const char *tenant, const char *target,
                et_ent *const **out) {
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
        et_ent *en = t->by_id ? hm_get(t->by_id, target) : NULL;
        if (en && en->e->enabled && et_tenant_ok(en->e, tenant))
            etv_push(&t->res, en);
    } else if (t->by_id) {
        et_add_list(t, hm_get(t->exact, type), tenant);
        for (size_t i = 0; type[i]; i++)
            if (type[i] == '.' || type[i] == ':')
                et_add_list(t, hm_getn(t->prefix, type, i + 1), tenant);
        et_add_list(t, &t->all, tenant);
    }
    *out = t->res.v;
    return t->res.n;
}
