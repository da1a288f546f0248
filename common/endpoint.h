/* endpoint.h -- the endpoint record, as stored in the hash P:{ep_ID}:endpoint.
 *
 * Hash fields (all plain text, readable with HGETALL):
 *   url               https://example.com/hook
 *   events            "task:*,mission:completed" (pat_list canonical form; "*" = all)
 *   secret            whsec_...                  (never logged)
 *   secret_old        whsec_... or absent        (previous secret during a rotation)
 *   secret_old_until  ISO time the old secret stops being signed with, or absent
 *   description       free text
 *   tenant            tenant id or absent
 *   enabled           "true" | "false"
 *   github_signature  "true" | "false"  (also send X-Hub-Signature-256)
 *   github_secret     "current" | "previous" (which secret signs X-Hub-Signature-256 during
 *                     a rotation; absent = current)
 *   headers           JSON array of "Name: value" strings, e.g. ["X-Team: core"]
 *   created_at, updated_at, disabled_at  ISO 8601 UTC
 *   disabled_reason   free text
 * Delivery policies (docs/policies.md); absent = none, so older hashes read as before:
 *   ordered           "true" | "false"   deliver in publish order, one in flight per key
 *   order_key         "tenant" | "data.<name>"  the key order holds per (absent: one order)
 *   rate              "<n>/s" | "<n>/m" | "<n>/h"  attempts per window, all workers together
 *   max_in_flight     "<n>"              concurrent requests, all workers together
 *   on_disabled       "drop" | "hold"    what happens to events while disabled
 *   hold_max          "<n>"              held events kept per endpoint (absent: 100000)
 *   paused_until      unix ms            a 429/503 Retry-After paused it for every worker
 *                                        (pause.lua); on lanes until then
 *   lanes             "true"             the endpoint has used lanes: workers keep
 *                                        claiming from them (set once, never cleared)
 * Circuit breaker, written by the worker's scripts (fail.lua, lane_claim.lua):
 *   breaker           "open" | "half_open" (absent or "closed": closed)
 *   breaker_until     unix ms: when an open breaker lets its probe go
 *   breaker_opened_at ISO time it opened
 * The set P:endpoints holds every id; P:endpoints:version is INCRed on every change
 * so workers know to reload their cached table. */
#ifndef HQ_ENDPOINT_H
#define HQ_ENDPOINT_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "event_pattern.h"
#include "redis_conn.h"

/* Which secret signs X-Hub-Signature-256 while a rotation's grace runs. That header
 * carries one signature (webhook-signature carries both), so a receiver that checks one
 * secret gets a grace only if it is signed with the secret it still has. */
typedef enum ep_github_secret_mode {
    EP_GITHUB_SECRET_CURRENT = 0, /* "current": the new secret at once (the default) */
    EP_GITHUB_SECRET_PREVIOUS     /* "previous": the old one until secret_old_until */
} ep_github_secret_mode;

/* What happens to an event for a disabled endpoint. */
typedef enum ep_on_disabled {
    EP_DISABLED_DROP = 0, /* "drop": not delivered, ever (the default) */
    EP_DISABLED_HOLD      /* "hold": kept in the endpoint's lanes until `endpoint enable` */
} ep_on_disabled;

typedef enum ep_breaker {
    EP_BREAKER_CLOSED = 0, /* attempts go */
    EP_BREAKER_OPEN,       /* jobs wait until breaker_until, then one probe */
    EP_BREAKER_HALF_OPEN   /* the probe is out: success closes, failure re-opens */
} ep_breaker;

#define EP_HOLD_MAX_DEFAULT 100000
#define EP_ORDER_KEY_MAX    128 /* longer key values are cut (stricter order, never looser) */

typedef struct ep {
    char *id;
    char *url;
    pat_list events;
    char *secret;
    char *secret_old;         /* NULL if none */
    int64_t secret_old_until; /* ms; 0 if none */
    char *description;        /* NULL if none */
    char *tenant;             /* NULL if none */
    int enabled;
    int github_signature;
    ep_github_secret_mode github_secret;
    char **header_names; /* n_headers each */
    char **header_values;
    size_t n_headers;
    int64_t created_at, updated_at, disabled_at; /* ms; disabled_at 0 if never */
    char *disabled_reason;                       /* NULL if none */
    /* policies */
    int ordered;
    char *order_key;        /* NULL: one order for the endpoint; "tenant" or "data.<name>" */
    int64_t rate_n;         /* attempts per rate_window_ms; 0 = no limit */
    int64_t rate_window_ms; /* 1000, 60000 or 3600000 */
    int64_t max_in_flight;  /* 0 = no limit */
    ep_on_disabled on_disabled;
    int64_t hold_max; /* 0 = EP_HOLD_MAX_DEFAULT */
    int lanes;        /* the endpoint has used lanes (see the field above) */
    ep_breaker breaker;
    int64_t breaker_until;     /* unix ms; 0 if closed */
    int64_t breaker_opened_at; /* unix ms; 0 if closed */
    int64_t paused_until;      /* unix ms; 0 if never paused */
} ep;

ep *ep_new(void);
void ep_free(ep *e); /* NULL-safe */

/* Fill e from HGETALL field/value pairs (reply->element alternating). e must be fresh from
 * ep_new; id is copied from id.
 * Forward compatible: a field this version does not know (one a newer hookq wrote) is
 * ignored, so an older worker keeps delivering to an endpoint a newer CLI updated. A known
 * field with a bad value, a missing url or secret, or a reply that is not a hash is
 * HQ_ERR with err naming the endpoint and the field ("endpoint ep_x: field 'enabled':
 * expected true or false, got 'yes'"). */
int ep_from_hash(ep *e, const char *id, const redisReply *hgetall, char *err, size_t errlen);

/* Load one endpoint. HQ_ERR with "endpoint ep_x not found" if the hash does not exist, or
 * ep_from_hash's message if it does not parse. *out is the caller's (ep_free). */
int ep_load(rconn *r, const char *prefix, const char *id, ep **out, char *err, size_t errlen);

/* An id in P:endpoints whose endpoint could not be read. */
typedef struct ep_bad {
    char *id;
    char *error; /* why, naming the endpoint and field, e.g. ep_from_hash's message */
} ep_bad;

/* Everything one load saw. */
typedef struct ep_table {
    ep **eps; /* n endpoints that parsed, sorted by id */
    size_t n;
    ep_bad *bad; /* n_bad ids whose hash exists but did not parse, sorted by id */
    size_t n_bad;
    int64_t version; /* P:{q}:endpoints:version, read before the hashes */
} ep_table;

/* Load every endpoint: GET version + SMEMBERS in one round trip, then every HGETALL in
 * one pipeline.
 *   - An id whose hash does not parse (ep_from_hash fails, the key has the wrong type, the
 *     id is too long for a key) does not fail the load: it is listed in t->bad with the
 *     reason, and the other endpoints are still returned. A caller that caches the table
 *     (the worker) should keep its previous entry for such an id rather than treat it as
 *     deleted: a half-written or newer-format hash is not a removal.
 *   - An id whose hash is gone (deleted between SMEMBERS and HGETALL) is in neither list.
 *   - HQ_ERR only when the load as a whole failed: Redis unreachable or answering an error
 *     to GET/SMEMBERS, out of memory. t is then empty.
 * t is filled from scratch and owned by the caller: ep_table_clear frees it. A caller may
 * take t->eps (then set t->eps = NULL, t->n = 0 before clearing). Nothing is logged. */
int ep_load_table(rconn *r, const char *prefix, ep_table *t, char *err, size_t errlen);
void ep_table_clear(ep_table *t); /* frees all it holds and zeroes t; NULL-safe */

/* Write every field (HSET; fields that are NULL are HDEL'd), SADD the id, INCR version,
 * in one MULTI/EXEC (one pipeline). */
int ep_save(rconn *r, const char *prefix, const ep *e, char *err, size_t errlen);
/* Remove the hash, failures counter, breaker window and log, SREM the id, INCR version. */
int ep_delete(rconn *r, const char *prefix, const char *id, char *err, size_t errlen);

/* Whether e receives an event: it is enabled, and
 *   - the event targets an endpoint (field `endpoint`): e's id equals it;
 *   - otherwise: one of e's patterns matches the event type;
 * and the event has no tenant, or e has none, or they are equal. tenant and target may
 * be NULL or empty (unset). 1 if it does, else 0. The worker's index (worker/epindex.c)
 * applies this same rule without scanning; `hookq retry` calls this directly. */
int ep_matches(const ep *e, const char *type, const char *tenant, const char *target);

/* The secret that must sign X-Hub-Signature-256 at now_ms (unix ms): with
 * EP_GITHUB_SECRET_PREVIOUS, secret_old while it is set and now_ms < secret_old_until;
 * otherwise (and after the grace) secret. Pure; the string is owned by e. */
const char *ep_github_secret(const ep *e, int64_t now_ms);
/* "current" | "previous" -> mode: HQ_OK, or HQ_ERR for anything else (case matters). */
int ep_github_secret_parse(const char *s, ep_github_secret_mode *out);
const char *ep_github_secret_name(ep_github_secret_mode m); /* "current" | "previous" */

/* Whether e's jobs go through its lanes (P:{ID}:lane:*) instead of the shared jobs
 * stream: it has a policy (ordered, rate, max_in_flight), its breaker is not closed, it
 * is disabled and holds its events, or a Retry-After pause runs (paused_until is after
 * the wall clock now). */
int ep_uses_lanes(const ep *e);
/* Whether workers must claim from e's lanes: ep_uses_lanes, or it used them once (they
 * may still hold jobs). */
int ep_claims_lanes(const ep *e);

/* "50/s", "3000/m", "10/h" -> n and window ms. HQ_OK, or HQ_ERR with a message. */
int ep_rate_parse(const char *s, int64_t *n, int64_t *window_ms, char *err, size_t errlen);
/* The canonical text of a rate ("50/s"), into buf. */
void ep_rate_format(int64_t n, int64_t window_ms, char *buf, size_t len);
/* "tenant", "data.<name>" or "<name>" (= data.<name>; name [A-Za-z0-9_-]{1,64}) -> the
 * canonical form, malloc'd into *out. HQ_OK, or HQ_ERR with a message. */
int ep_order_key_parse(const char *s, char **out, char *err, size_t errlen);
/* "drop" | "hold" -> mode. HQ_OK, or HQ_ERR for anything else. */
int ep_on_disabled_parse(const char *s, ep_on_disabled *out);
const char *ep_on_disabled_name(ep_on_disabled m); /* "drop" | "hold" */
const char *ep_breaker_name(ep_breaker b);         /* "closed" | "open" | "half_open" */

/* JSON view for the CLI: secrets only when show_secret (add, rotate-secret). New ref. */
json_t *ep_to_json(const ep *e, int show_secret);

#endif
