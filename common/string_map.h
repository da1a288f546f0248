/* hm.h -- a small string-keyed hash map (separate chaining, grows by doubling).
 *
 * Keys are copied; values are borrowed pointers the caller owns (the map never frees
 * them). Used by the worker for its endpoint index, event cache and per-endpoint
 * counters, where a lookup must not cost a scan. Not thread-safe. */
#ifndef HQ_HM_H
#define HQ_HM_H
#include <stddef.h>

typedef struct hm hm; /* opaque */

hm *hm_new(void);    /* NULL on OOM */
void hm_free(hm *m); /* NULL-safe; values are not freed */

/* Value for key (klen bytes, binary safe), NULL if absent. */
void *hm_getn(const hm *m, const char *key, size_t klen);
void *hm_get(const hm *m, const char *key);
/* Insert or replace. HQ_OK or HQ_ERR (OOM). */
int hm_put(hm *m, const char *key, void *val);
/* Remove key; returns its value (NULL if absent). */
void *hm_del(hm *m, const char *key);
size_t hm_len(const hm *m);

/* Visit every entry (do not modify the map from fn). */
void hm_each(const hm *m, void (*fn)(void *ctx, const char *key, void *val), void *ctx);

#endif
