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
 *   headers           JSON array of "Name: value" strings, e.g. ["X-Team: core"]
 *   created_at, updated_at, disabled_at  ISO 8601 UTC
 *   disabled_reason   free text
 * The set P:endpoints holds every id; P:endpoints:version is INCRed on every change
 * so workers know to reload their cached table. */
#ifndef HQ_ENDPOINT_H
#define HQ_ENDPOINT_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "event_pattern.h"
#include "redis_conn.h"

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
    char **header_names; /* n_headers each */
    char **header_values;
    size_t n_headers;
    int64_t created_at, updated_at, disabled_at; /* ms; disabled_at 0 if never */
    char *disabled_reason;                       /* NULL if none */
} ep;

ep *ep_new(void);
void ep_free(ep *e); /* NULL-safe */

/* Fill e from HGETALL field/value pairs (reply->element alternating). HQ_ERR names a
 * bad field. e must be fresh from ep_new; id is copied from id. */
int ep_from_hash(ep *e, const char *id, const redisReply *hgetall, char *err, size_t errlen);

/* Load one endpoint. HQ_ERR with "endpoint ep_x not found" if the hash does not exist. */
int ep_load(rconn *r, const char *prefix, const char *id, ep **out, char *err, size_t errlen);
/* Load every endpoint (SMEMBERS + pipelined HGETALL). *out is a malloc'd array of n
 * ep pointers (free each with ep_free, then the array). *version gets the version
 * counter read before the load (so a change during the load triggers another reload). */
int ep_load_all(rconn *r, const char *prefix, ep ***out, size_t *n, int64_t *version, char *err,
                size_t errlen);
/* Write every field (HSET; fields that are NULL are HDEL'd), SADD the id, INCR version,
 * in one MULTI/EXEC. */
int ep_save(rconn *r, const char *prefix, const ep *e, char *err, size_t errlen);
/* Remove the hash, failures counter and log, SREM the id, INCR version. */
int ep_delete(rconn *r, const char *prefix, const char *id, char *err, size_t errlen);

/* Whether e receives an event: it is enabled, and
 *   - the event targets an endpoint (field `endpoint`): e's id equals it;
 *   - otherwise: one of e's patterns matches the event type;
 * and the event has no tenant, or e has none, or they are equal. tenant and target may
 * be NULL or empty (unset). 1 if it does, else 0. The worker's index (worker/epindex.c)
 * applies this same rule without scanning; `hookq retry` calls this directly. */
int ep_matches(const ep *e, const char *type, const char *tenant, const char *target);

/* JSON view for the CLI: secrets only when show_secret (add, rotate-secret). New ref. */
json_t *ep_to_json(const ep *e, int show_secret);

#endif
