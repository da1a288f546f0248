/* ids.h -- sortable unique ids: <prefix><26 chars Crockford base32>, 48 bits of
 * millisecond time then 80 random bits (ULID layout), e.g. "evt_01JDX3...". Ids made
 * later in time sort after earlier ones (string order). */
#ifndef HQ_IDS_H
#define HQ_IDS_H
#include <stddef.h>

#define ID_PREFIX_EVENT    "evt_"
#define ID_PREFIX_ENDPOINT "ep_"
#define ID_PREFIX_DELIVERY "dlv_"
#define ID_MAX             128 /* longest id accepted anywhere (producer-chosen event ids too) */

/* Writes prefix + 26 chars + NUL into out (needs strlen(prefix)+27). HQ_OK or HQ_ERR
 * (buffer too small, no randomness).
 * Thread-safe; ids from one process strictly increase, even within a millisecond. */
int id_new(const char *prefix, char *out, size_t outlen);

/* An acceptable id: 1..ID_MAX chars of [A-Za-z0-9_-] (no '.', ':' or spaces, so ids
 * are safe inside key names, the signed "id.timestamp.body" string and headers). */
int id_valid(const char *id, char *err, size_t errlen);

#endif
