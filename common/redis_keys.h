/* redis_keys.h -- every Redis key hookq uses is built here (docs/keys.md and README list them).
 *
 * Queue keys share the hash tag {q} so one Lua script may touch them all on Redis
 * Cluster; per-endpoint keys share {ep_ID}. Functions write into buf (KEY_MAX bytes is
 * always enough for prefixes up to 64 chars and ids up to ID_MAX) and return HQ_OK, or
 * HQ_ERR if buf is too small. */
#ifndef HQ_REDIS_KEYS_H
#define HQ_REDIS_KEYS_H
#include <stddef.h>

#define KEY_MAX        256
#define KEY_PREFIX_MAX 64

int key_events(const char *prefix, char *buf, size_t len); /* P:{q}:events   stream */
int key_jobs(const char *prefix, char *buf, size_t len);   /* P:{q}:jobs     stream */
int key_delay(const char *prefix, char *buf, size_t len);  /* P:{q}:delay    zset   */
int key_dead(const char *prefix, char *buf, size_t len);   /* P:{q}:dead     stream */
int key_idem(const char *prefix, const char *event_id, char *buf, size_t len); /* P:{q}:idem:ID */
int key_endpoints(const char *prefix, char *buf, size_t len); /* P:endpoints set of ids */
int key_ep_version(const char *prefix, char *buf,
                   size_t len); /* P:{q}:endpoints:version (read by fanout.lua) */
int key_endpoint(const char *prefix, const char *ep_id, char *buf,
                 size_t len); /* P:{ID}:endpoint hash */
int key_failures(const char *prefix, const char *ep_id, char *buf,
                 size_t len);                                              /* P:{ID}:failures */
int key_log(const char *prefix, const char *ep_id, char *buf, size_t len); /* P:{ID}:log stream */

/* An endpoint's other keys, P:{ID}:<part>, all on the endpoint's slot (docs/keys.md
 * "Lanes"): part is one of the KEY_EP_* names below. */
int key_ep_part(const char *prefix, const char *ep_id, const char *part, char *buf, size_t len);
#define KEY_EP_READY    "ready"    /* zset: order key -> earliest ms it may be claimed */
#define KEY_EP_LEASES   "leases"   /* zset: "<lane id>\t<key>\t<worker>" -> lease expiry ms */
#define KEY_EP_STATE    "state"    /* hash: GCRA tat, pause, per-key marks, counters */
#define KEY_EP_TRIES    "tries"    /* hash: lane id -> attempts made */
#define KEY_EP_LANEKEYS "lanekeys" /* set: order keys whose lane is not empty */
#define KEY_EP_HEALTH   "health"   /* hash: the breaker's window of attempts */
#define KEY_EP_LANE     "lane:"    /* + order key: zset of lane ids, publish order */

/* Consumer group names on the events and jobs streams. */
#define KEY_GROUP_FANOUT  "fanout"
#define KEY_GROUP_DELIVER "deliver"

/* A prefix is 1..KEY_PREFIX_MAX chars of [A-Za-z0-9_.-] (no braces or colons). */
int key_prefix_valid(const char *prefix, char *err, size_t errlen);

#endif
