/* event_cache.c -- see event_cache.h. */
#include "event_cache.h"
#include <stdlib.h>
#include <string.h>
#include "string_map.h"
#include "hq.h"

struct evcache {
    strmap *map;
    evcache_ev *head, *tail; /* head = most recent */
    size_t n;
    size_t bytes, budget; /* what the cached events cost, and the most they may */
};

/* What one cached event costs: its body, its parsed strings, its id and bookkeeping.
 * The payload is held once: envelope_body wraps `data`, which is then freed. */
static size_t cost_of(const evcache_ev *v) {
    const envelope *e = &v->e;
    size_t n = sizeof *v + v->bodylen + 1 + strlen(v->sid) + 1 + 64 /* map entry */;
    n += e->id ? strlen(e->id) + 1 : 0;
    n += e->type ? strlen(e->type) + 1 : 0;
    n += e->tenant ? strlen(e->tenant) + 1 : 0;
    n += e->endpoint ? strlen(e->endpoint) + 1 : 0;
    return n;
}

static void evcache_unlink(evcache *c, evcache_ev *v) {
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

static void evcache_push_front(evcache *c, evcache_ev *v) {
    v->prev = NULL;
    v->next = c->head;
    if (c->head)
        c->head->prev = v;
    c->head = v;
    if (!c->tail)
        c->tail = v;
}

void evcache_release(evcache_ev *v) {
    if (!v || --v->refs > 0)
        return;
    envelope_clear(&v->e);
    free(v->body);
    free(v->sid);
    free(v);
}

static void evcache_drop(evcache *c, evcache_ev *v) {
    evcache_unlink(c, v);
    strmap_del(c->map, v->sid);
    c->n--;
    c->bytes -= v->cost;
    v->cached = 0;
    evcache_release(v);
}

evcache *evcache_new(size_t budget) {
    evcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map = strmap_new();
    if (!c->map) {
        free(c);
        return NULL;
    }
    c->budget = budget ? budget : 1;
    return c;
}

void evcache_free(evcache *c) {
    if (!c)
        return;
    while (c->head)
        evcache_drop(c, c->head);
    strmap_free(c->map);
    free(c);
}

evcache_ev *evcache_get(evcache *c, const char *sid) {
    evcache_ev *v = strmap_get(c->map, sid);
    if (!v)
        return NULL;
    evcache_unlink(c, v);
    evcache_push_front(c, v);
    v->refs++;
    return v;
}

evcache_ev *evcache_put(evcache *c, const char *sid, envelope *e) {
    evcache_ev *v = calloc(1, sizeof *v);
    if (!v)
        goto oom;
    v->sid = strdup(sid);
    v->e = *e;
    memset(e, 0, sizeof *e);
    v->body = envelope_body(&v->e, &v->bodylen);
    /* the body holds data verbatim: keep one copy of the payload, not two */
    free(v->e.data);
    v->e.data = NULL;
    if (!v->sid || !v->body) {
        v->refs = 1;
        evcache_release(v);
        return NULL;
    }
    evcache_ev *old = strmap_get(c->map, sid);
    if (old)
        evcache_drop(c, old);
    if (strmap_put(c->map, v->sid, v) != HQ_OK) {
        v->refs = 1; /* uncached but usable by the caller */
        return v;
    }
    v->refs = 2; /* the cache's and the caller's */
    v->cached = 1;
    v->cost = cost_of(v);
    evcache_push_front(c, v);
    c->n++;
    c->bytes += v->cost;
    /* Evict least recently used first. An event a job still holds survives eviction
     * (reference counted), so what the cache bounds is what it keeps for later; what
     * jobs hold is bounded by the jobs a worker holds (2 x delivery.concurrency). */
    while (c->bytes > c->budget && c->tail && c->tail != v)
        evcache_drop(c, c->tail);
    return v;
oom:
    envelope_clear(e);
    return NULL;
}

size_t evcache_len(const evcache *c) {
    return c->n;
}

size_t evcache_bytes(const evcache *c) {
    return c->bytes;
}
