/* hm.c -- see hm.h. FNV-1a hashing; chains stay short because the table doubles
 * when it holds more entries than buckets. */
#include "string_map.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"

typedef struct hm_ent {
    struct hm_ent *next;
    uint64_t hash;
    size_t klen;
    void *val;
    char key[]; /* klen bytes + NUL */
} hm_ent;

struct hm {
    hm_ent **b;
    size_t nb; /* power of two */
    size_t n;
};

static uint64_t hm_hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

hm *hm_new(void) {
    hm *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nb = 16;
    m->b = calloc(m->nb, sizeof *m->b);
    if (!m->b) {
        free(m);
        return NULL;
    }
    return m;
}

void hm_free(hm *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        hm_ent *e = m->b[i];
        while (e) {
            hm_ent *nx = e->next;
            free(e);
            e = nx;
        }
    }
    free(m->b);
    free(m);
}

static hm_ent **hm_find(const hm *m, const char *key, size_t klen, uint64_t h) {
    hm_ent **pp = &m->b[h & (m->nb - 1)];
    while (*pp) {
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
        pp = &(*pp)->next;
    }
    return pp;
}

void *hm_getn(const hm *m, const char *key, size_t klen) {
    hm_ent **pp = hm_find(m, key, klen, hm_hash(key, klen));
    return *pp ? (*pp)->val : NULL;
}

void *hm_get(const hm *m, const char *key) {
    return hm_getn(m, key, strlen(key));
}

static void hm_grow(hm *m) {
    size_t nb = m->nb * 2;
    hm_ent **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the old table: slower chains, still correct */
    for (size_t i = 0; i < m->nb; i++) {
        hm_ent *e = m->b[i];
        while (e) {
            hm_ent *nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = nx;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

int hm_put(hm *m, const char *key, void *val) {
    size_t klen = strlen(key);
    uint64_t h = hm_hash(key, klen);
    hm_ent **pp = hm_find(m, key, klen, h);
    if (*pp) {
        (*pp)->val = val;
        return HQ_OK;
    }
    hm_ent *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return HQ_ERR;
    e->next = NULL;
    e->hash = h;
    e->klen = klen;
    e->val = val;
    memcpy(e->key, key, klen + 1);
    *pp = e;
    m->n++;
    if (m->n > m->nb)
        hm_grow(m);
    return HQ_OK;
}

void *hm_del(hm *m, const char *key) {
    size_t klen = strlen(key);
    hm_ent **pp = hm_find(m, key, klen, hm_hash(key, klen));
    if (!*pp)
        return NULL;
    hm_ent *e = *pp;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->n--;
    return v;
}

size_t hm_len(const hm *m) {
    return m->n;
}

void hm_each(const hm *m, void (*fn)(void *ctx, const char *key, void *val), void *ctx) {
    for (size_t i = 0; i < m->nb; i++)
        for (hm_ent *e = m->b[i]; e; e = e->next)
            fn(ctx, e->key, e->val);
}
