/* string_map.c -- see string_map.h. FNV-1a hashing; chains stay short because the table doubles
 * when it holds more entries than buckets. */
#include "string_map.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"

typedef struct strmap_ent {
    struct strmap_ent *next;
    uint64_t hash;
    size_t klen;
    void *val;
    char key[]; /* klen bytes + NUL */
} strmap_ent;

struct strmap {
    strmap_ent **b;
    size_t nb; /* power of two */
    size_t n;
};

static uint64_t strmap_hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

strmap *strmap_new(void) {
    strmap *m = calloc(1, sizeof *m);
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

void strmap_free(strmap *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        strmap_ent *e = m->b[i];
        while (e) {
            strmap_ent *nx = e->next;
            free(e);
            e = nx;
        }
    }
    free(m->b);
    free(m);
}

static strmap_ent **strmap_find(const strmap *m, const char *key, size_t klen, uint64_t h) {
    strmap_ent **pp = &m->b[h & (m->nb - 1)];
    while (*pp) {
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
        pp = &(*pp)->next;
    }
    return pp;
}

void *strmap_getn(const strmap *m, const char *key, size_t klen) {
    strmap_ent **pp = strmap_find(m, key, klen, strmap_hash(key, klen));
    return *pp ? (*pp)->val : NULL;
}

void *strmap_get(const strmap *m, const char *key) {
    return strmap_getn(m, key, strlen(key));
}

static void strmap_grow(strmap *m) {
    size_t nb = m->nb * 2;
    strmap_ent **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the old table: slower chains, still correct */
    for (size_t i = 0; i < m->nb; i++) {
        strmap_ent *e = m->b[i];
        while (e) {
            strmap_ent *nx = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = nx;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

int strmap_put(strmap *m, const char *key, void *val) {
    size_t klen = strlen(key);
    uint64_t h = strmap_hash(key, klen);
    strmap_ent **pp = strmap_find(m, key, klen, h);
    if (*pp) {
        (*pp)->val = val;
        return HQ_OK;
    }
    strmap_ent *e = malloc(sizeof *e + klen + 1);
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
        strmap_grow(m);
    return HQ_OK;
}

void *strmap_del(strmap *m, const char *key) {
    size_t klen = strlen(key);
    strmap_ent **pp = strmap_find(m, key, klen, strmap_hash(key, klen));
    if (!*pp)
        return NULL;
    strmap_ent *e = *pp;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->n--;
    return v;
}

size_t strmap_len(const strmap *m) {
    return m->n;
}

void strmap_each(const strmap *m, void (*fn)(void *ctx, const char *key, void *val), void *ctx) {
    for (size_t i = 0; i < m->nb; i++)
        for (strmap_ent *e = m->b[i]; e; e = e->next)
            fn(ctx, e->key, e->val);
}
