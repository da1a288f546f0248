/* api_source_store.h -- an inbound webhook source: its record, keys and validation.
 *
 * A source is where third parties (GitHub, Stripe, ...) post webhooks: POST /v1/in/<id>
 * verifies the request, stores the payload and publishes it as an event. This module is
 * the pure part (no I/O): ids, key names, the hash <-> struct <-> JSON mappings and the
 * validation of createSource/updateSource bodies. The handlers (api_sources.c,
 * api_inbound.c) do the Redis round trips.
 *
 * Keys (docs/keys.md), P = redis.prefix; a source's own keys share the hash tag {src_ID}:
 *   P:sources                     set of every source id
 *   P:{src_ID}:source             hash, fields below
 *   P:{src_ID}:payloads           stream of received payloads (trimmed by MINID to
 *                                 api.payload_retention)
 *   P:{src_ID}:dedupe:<delivery>  string "<payload id> <event id>" with a TTL
 * Hash fields, plain text:
 *   description        free text (absent: none)
 *   enabled            "true" | "false"
 *   event_type         the fixed event type (absent when event_type_header is set)
 *   event_type_header  header whose value names the event (absent with event_type)
 *   event_type_prefix  put before the header's value (absent: none)
 *   tenant             tenant id (absent: none)
 *   allow_ips          comma-separated CIDRs (absent: every address)
 *   verification       the verifier as JSON text, secrets in full (api_verify.h)
 *   dedupe             "true" | "false"
 *   created_at, updated_at  ISO 8601 UTC
 *
 * Ids are "src_" + 32 lowercase hex digits: 128 bits from OpenSSL's CSPRNG. The ingest
 * URL is public (no API key), so its id must not be guessable; ids.h's ULIDs are not
 * secret and are never used here. */
#ifndef HQ_API_SOURCE_STORE_H
#define HQ_API_SOURCE_STORE_H
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "redis_conn.h"

#define SOURCE_ID_PREFIX       "src_"
#define SOURCE_ID_HEX          32
#define SOURCE_ID_LEN          (4 + SOURCE_ID_HEX + 1)
#define SOURCE_DESCRIPTION_MAX 1024
#define SOURCE_ALLOW_IPS_MAX   64
#define SOURCE_TYPE_PREFIX_MAX 64
#define SOURCE_INGEST_PATH     "/v1/in/"

/* Payload ids are "pay_" + the payloads stream entry id ("pay_1732000000000-0"): the id
 * is where the entry is, so a read is one XRANGE. */
#define PAYLOAD_ID_PREFIX "pay_"
#define PAYLOAD_ID_LEN    48 /* "pay_" + two 20-digit numbers + "-" + NUL, rounded up */

typedef struct source {
    char id[SOURCE_ID_LEN];
    char *description;       /* NULL: none */
    int enabled;             /* default 1 */
    char *event_type;        /* exactly one of event_type ... */
    char *event_type_header; /* ... and event_type_header is set */
    char *event_type_prefix; /* NULL: none; only with event_type_header */
    char *tenant;            /* NULL: none */
    char **allow_ips;        /* n_allow CIDR texts as given; none: every address */
    size_t n_allow;
    json_t *verification; /* the verifier, canonical (verify_config_to_json with secrets) */
    int dedupe;
    int64_t created_at, updated_at; /* unix ms */
} source;

/* A new id into out (SOURCE_ID_LEN bytes). HQ_ERR if out is too small or the CSPRNG
 * fails. */
int source_id_new(char *out, size_t outlen);
/* 1 if id has the form source_id_new makes, else 0 (then no key is ever built from it). */
int source_id_valid(const char *id);

/* P:sources, and P:{id}:<part> for part "source", "payloads", "dedupe:<delivery id>".
 * HQ_OK, or HQ_ERR when buf is too small. */
int source_set_key(const char *prefix, char *buf, size_t len);
int source_key(const char *prefix, const char *id, const char *part, char *buf, size_t len);

/* Payload id <-> stream entry id. payload_id_to_sid: HQ_ERR unless id is "pay_<ms>-<seq>"
 * (digits). */
void payload_id_from_sid(const char *sid, char *out, size_t outlen);
int payload_id_to_sid(const char *id, char *out, size_t outlen);
/* 1 if s is a stream entry id "<digits>-<digits>". */
int payload_sid_valid(const char *s);

void source_clear(source *s); /* frees what s owns and zeroes it; NULL-safe */

/* Fill s (zeroed by the caller) from an HGETALL reply for id. HQ_ERR with err naming the
 * field when a known field is malformed or a required one is missing. Fields this version
 * does not know are ignored (a newer hookq may add some). */
int source_from_hash(source *s, const char *id, const redisReply *hgetall, char *err,
                     size_t errlen);

/* The hash fields as HSET arguments (field, value, field, value...): *argv entries point
 * into *store, which the caller frees (free(*store), free(*argv), free(*lens)). */
int source_to_hash(const source *s, const char ***argv, size_t **lens, size_t *argc, char **store);

/* The API view of s; verification secrets are "****" unless show_secrets. New reference,
 * NULL on OOM. */
json_t *source_to_json(const source *s, int show_secrets);

/* Apply a createSource (creating=1) or updateSource body to s. For an update s holds the
 * stored source and body's fields replace its own (null clears an optional one); the
 * result must then satisfy every rule a create does. Unknown fields are not checked here
 * (api_fields_known does that first). On HQ_ERR, field names the body field at fault
 * ("event_type", "verification.secret") and err says why; s may be partly changed and
 * is only fit for source_clear. Tenant binding is the caller's (it knows the key). */
int source_apply_json(source *s, const json_t *body, int creating, char *field, size_t fieldlen,
                      char *err, size_t errlen);

/* The body fields createSource and updateSource accept, NULL-terminated. */
extern const char *const source_fields[];

/* The event type for a request: s->event_type, or prefix + the header's value (hval may be
 * NULL: absent). A value's characters outside [A-Za-z0-9_-] become '_' so it is one
 * event type segment. HQ_ERR with a message for the sender when the header is missing or
 * empty, or the result is not a valid event type (too long). */
int source_event_type(const source *s, const char *hval, char *out, size_t outlen, char *err,
                      size_t errlen);

/* Fill s for one of this group's Lua scripts (src must outlive s), computing the SHA1
 * that EVALSHA needs: the build computes those of common/lua/ only. */
void source_script(rconn_script *s, const char *name, const char *src);

#endif
