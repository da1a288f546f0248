/* config.h -- hookq configuration.
 *
 * Sources, later wins: defaults (cfg_new), a YAML file, the environment, flags.
 * Every key "a.b_c" can be set with the variable HOOKQ_A_B_C (lists: comma or space
 * separated, e.g. HOOKQ_RETRY_SCHEDULE="30s 2m 10m"). YAML nests sections:
 *
 *   redis:
 *     url: redis://127.0.0.1:6379/0
 *   retry:
 *     schedule: [30s, 2m, 10m, 1h, 4h]
 *
 * Unknown keys, wrong types and bad values are errors that name the key and, for files,
 * "FILE:LINE". docs/config.md (and the README table) list every key; keep them in sync
 * with the table in config.c, which is the one place keys are defined.
 * A cfg is read-only after cfg_validate and passed explicitly; there is no global. */
#ifndef HQ_CONFIG_H
#define HQ_CONFIG_H
#include <stdint.h>
#include <stdio.h>
#include "log.h"

typedef struct cfg {
    /* redis */
    char *redis_url;                  /* redis.url "redis://127.0.0.1:6379/0"; secret part masked */
    char *redis_prefix;               /* redis.prefix "hookq" */
    int64_t redis_connect_timeout_ms; /* redis.connect_timeout 5s */
    int64_t redis_command_timeout_ms; /* redis.command_timeout 5s */
    int64_t redis_reconnect_max_ms;   /* redis.reconnect_max 5s: cap of reconnect backoff */

    /* retry */
    int64_t *retry_schedule_ms; /* retry.schedule [30s,2m,10m,1h,4h]: waits before attempts 2.. */
    size_t retry_schedule_len;
    double retry_jitter;              /* retry.jitter 0.2 (+-20%), 0..0.9 */
    int64_t retry_max_retry_after_ms; /* retry.max_retry_after 1h: clamp for Retry-After */

    /* endpoints */
    int endpoints_disable_after; /* endpoints.disable_after 50 consecutive failures; 0 = never */
    int64_t endpoints_rotation_grace_ms; /* endpoints.rotation_grace 24h: old secret still signed */
    int64_t endpoints_reload_interval_ms; /* endpoints.reload_interval 1s: version poll period */

    /* breaker: per-endpoint circuit breaker (docs/policies.md "Circuit breaker") */
    int breaker_enabled;             /* breaker.enabled true; false: no window kept, never opens */
    int64_t breaker_window_ms;       /* breaker.window 60s: attempts counted over this window */
    int breaker_min_attempts;        /* breaker.min_attempts 10 (>= 1): fewer never open */
    double breaker_failure_ratio;    /* breaker.failure_ratio 0.7 (0 < x <= 1): failed/attempts */
    int64_t breaker_cooldown_ms;     /* breaker.cooldown 30s: open until the first probe */
    int64_t breaker_max_cooldown_ms; /* breaker.max_cooldown 10m (>= cooldown): doubling cap */

    /* delivery */
    int64_t delivery_timeout_ms;         /* delivery.timeout 30s: total per attempt */
    int64_t delivery_connect_timeout_ms; /* delivery.connect_timeout 10s */
    int delivery_concurrency;  /* delivery.concurrency 64: transfers in flight per worker */
    int delivery_per_endpoint; /* delivery.per_endpoint 0: cap of one endpoint's adaptive window
                                  per worker; 0 = delivery.concurrency */
    int delivery_batch;        /* delivery.batch 64: XREADGROUP COUNT */
    int64_t
        delivery_visibility_timeout_ms;   /* delivery.visibility_timeout 60s: > delivery.timeout */
    int delivery_max_claims;              /* delivery.max_claims 5: then dead-lettered */
    int64_t delivery_shutdown_grace_ms;   /* delivery.shutdown_grace 10s */
    uint64_t delivery_max_response_bytes; /* delivery.max_response 64KiB: body read cap */
    int delivery_response_excerpt;        /* delivery.response_excerpt 256: bytes kept in the log */
    int64_t delivery_low_speed_time_ms;   /* delivery.low_speed_time 30s, with low_speed_limit */
    int delivery_low_speed_limit;         /* delivery.low_speed_limit 1 byte/s */
    char *delivery_proxy;    /* delivery.proxy "" : explicit proxy; env proxies ignored */
    int delivery_log;        /* delivery.log true: write the per-endpoint delivery log */
    int delivery_log_maxlen; /* delivery.log_maxlen 10000 (MAXLEN ~) */

    /* events */
    uint64_t events_max_payload;       /* events.max_payload 1MiB */
    int events_max_depth;              /* events.max_depth 32 */
    int64_t events_retention_ms;       /* events.retention 72h: trim events stream by MINID */
    int64_t events_idempotency_ttl_ms; /* events.idempotency_ttl 24h: --id dedupe window */
    int64_t events_cache_memory;       /* events.cache_memory 64MiB, >= 1MiB: event cache cap */

    /* dead */
    int64_t dead_maxlen; /* dead.maxlen 100000: P:{q}:dead trimmed MAXLEN ~; 0 = unlimited */

    /* security */
    int security_allow_private_networks; /* security.allow_private_networks false */
    char **security_allow_cidrs;         /* security.allow_cidrs []: exceptions to the block list */
    size_t security_allow_cidrs_len;

    /* log */
    log_level log_level;   /* log.level info */
    log_format log_format; /* log.format text */

    /* worker */
    char *worker_name; /* worker.name "" -> "<hostname>-<pid>" at start */

    /* api: hookq-api (docs/api.md) */
    char *api_listen;      /* api.listen "127.0.0.1:8080": host:port, [v6]:port */
    char **api_admin_keys; /* api.admin_keys []: Bearer keys that see everything (secret) */
    size_t api_admin_keys_len;
    char **api_tenant_keys; /* api.tenant_keys []: "TENANT:KEY", bound to one tenant (secret) */
    size_t api_tenant_keys_len;
    char *api_stream_secret; /* api.stream_secret "": signs stream tokens; "" = derived */
    int api_threads; /* api.threads 0: request threads, each its own Redis link; 0 = one per core */
    uint64_t api_max_body;          /* api.max_body 2MiB: request body cap (413 beyond) */
    int api_max_connections;        /* api.max_connections 8192 */
    int api_max_connections_per_ip; /* api.max_connections_per_ip 1024; 0 = no per-IP cap */
    int64_t api_idle_timeout_ms;    /* api.idle_timeout 30s: silent connections are closed */
    char **api_trusted_proxies;     /* api.trusted_proxies []: CIDRs whose X-Forwarded-For counts */
    size_t api_trusted_proxies_len;
    uint64_t api_stream_buffer;       /* api.stream_buffer 1MiB: per SSE client; beyond: cut off */
    int64_t api_stream_heartbeat_ms;  /* api.stream_heartbeat 15s: ": ping" comment period */
    int64_t api_stream_token_ttl_ms;  /* api.stream_token_ttl 10m: default life of a stream token */
    int64_t api_payload_retention_ms; /* api.payload_retention 72h: inbound payloads kept */
} cfg;

cfg *cfg_new(void); /* defaults; NULL on OOM */
void cfg_free(cfg *c);

/* Load YAML. Errors: "FILE:LINE: key 'retry.schedule': bad duration '3x'". */
int cfg_load_file(cfg *c, const char *path, char *err, size_t errlen);
/* Apply HOOKQ_* variables from envp (NULL-terminated, like environ). HOOKQ_CONFIG is
 * the file path and ignored here; any other unknown HOOKQ_ variable is an error naming it. */
int cfg_load_env(cfg *c, char *const *envp, char *err, size_t errlen);
/* Set one key from text (flags such as --set key=value, and env use this). */
int cfg_set(cfg *c, const char *key, const char *value, char *err, size_t errlen);
/* Cross-key checks (visibility_timeout > timeout, ranges, URL parse, prefix, CIDRs). */
int cfg_validate(const cfg *c, char *err, size_t errlen);

/* The usual sequence: defaults, then the file (path, else $HOOKQ_CONFIG, else
 * ./hookq.yaml if it exists), then envp, then validate. NULL + err on failure. */
cfg *cfg_load(const char *path, char *const *envp, char *err, size_t errlen);

/* Print the effective config, one "key: value" per line (json=1: one JSON object), with
 * the password in redis.url and delivery.proxy masked as "****". */
int cfg_dump(const cfg *c, FILE *out, int json);

/* Env variable name for a key: "redis.url" -> "HOOKQ_REDIS_URL". */
void cfg_env_name(const char *key, char *buf, size_t len);

#endif
