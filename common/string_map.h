/* string_map.h -- a small string-keyed hash map (separate chaining, grows by doubling).
 *
 * Keys are copied; values are borrowed pointers the caller owns (the map never frees
 * them). Used by the worker for its endpoint index, event cache and per-endpoint
 * counters, where a lookup must not cost a scan. Not thread-safe. */
#ifndef HQ_STRING_MAP_H
#define HQ_STRING_MAP_H
#include <stddef.h>

typedef struct strmap strmap; /* opaque */

strmap *strmap_new(void);    /* NULL on OOM */
void strmap_free(strmap *m); /* NULL-safe; values are not freed */

/* Value for key (klen bytes, binary safe), NULL if absent. */
void *strmap_getn(const strmap *m, const char *key, size_t klen);
void *strmap_get(const strmap *m, const char *key);
/* Insert or replace. HQ_OK or HQ_ERR (OOM). */
int strmap_put(strmap *m, const char *key, void *val);
/* Remove key; returns its value (NULL if absent). */
void *strmap_del(strmap *m, const char *key);
size_t strmap_len(const strmap *m);

/* Visit every entry (do not modify the map from fn). */
void strmap_each(const strmap *m, void (*fn)(void *ctx, const char *key, void *val), void *ctx);

#endif
