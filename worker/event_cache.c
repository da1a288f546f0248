/* ec.c -- see ec.h. */
#include "event_cache.h"
#include <stdlib.h>
#include <string.h>
#include "string_map.h"
#include "hq.h"

struct ec {
    hm *map;
    ec_ev *head, *tail; /* head = most recent */
    size_t n, cap;
};

static void ec_unlink(ec *c, ec_ev *v) {
    if (v->prev)
        v->prev->next = v->next;
    else
        c->head = v->next;
    if (v->next)
        v->next->prev = v->prev;
    else
        c->tail = v->prev;
    v->prev = v->next = NULL;
}

static void ec_push_front(ec *c, ec_ev *v) {
    v->prev = NULL;
    v->next = c->head;
    if (c->head)
        c->head->prev = v;
    c->head = v;
    if (!c->tail)
        c->tail = v;
}

void ec_release(ec_ev *v) {
    if (!v || --v->refs > 0)
        return;
    evp_clear(&v->e);
    free(v->body);
    free(v->sid);
    free(v);
}

static void ec_drop(ec *c, ec_ev *v) {
    ec_unlink(c, v);
    hm_del(c->map, v->sid);
    c->n--;
    v->cached = 0;
    ec_release(v);
}

ec *ec_new(size_t cap) {
    ec *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map = hm_new();
    if (!c->map) {
        free(c);
        return NULL;
    }
    c->cap = cap ? cap : 1;
    return c;
}

void ec_free(ec *c) {
    if (!c)
        return;
    while (c->head)
        ec_drop(c, c->head);
    hm_free(c->map);
    free(c);
}

ec_ev *ec_get(ec *c, const char *sid) {
    ec_ev *v = hm_get(c->map, sid);
    if (!v)
        return NULL;
    ec_unlink(c, v);
    ec_push_front(c, v);
    v->refs++;
    return v;
}

ec_ev *ec_put(ec *c, const char *sid, evp *e) {
    ec_ev *v = calloc(1, sizeof *v);
    if (!v)
        goto oom;
    v->sid = strdup(sid);
    v->e = *e;
    memset(e, 0, sizeof *e);
    v->body = evp_body(&v->e, &v->bodylen);
    if (!v->sid || !v->body) {
        v->refs = 1;
        ec_release(v);
        return NULL;
    }
    ec_ev *old = hm_get(c->map, sid);
    if (old)
        ec_drop(c, old);
    if (hm_put(c->map, v->sid, v) != HQ_OK) {
        v->refs = 1; /* uncached but usable by the caller */
        return v;
    }
    v->refs = 2; /* the cache's and the caller's */
    v->cached = 1;
    ec_push_front(c, v);
    c->n++;
    while (c->n > c->cap)
        ec_drop(c, c->tail);
    return v;
oom:
    evp_clear(e);
    return NULL;
}

size_t ec_len(const ec *c) {
    return c->n;
}
