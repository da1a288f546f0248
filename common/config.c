/* config.c -- hookq configuration: one table of keys; defaults, YAML, env and cfg_set all
 * go through it, so a key exists in every source or in none. docs/config.md mirrors the
 * table (tests/unit/test_config.c checks that they agree). Reading YAML is yaml_reader's
 * job; this file only decides what its entries mean. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "units.h"
#include "hq.h"
#include "addr_filter.h"
#include "envelope.h"
#include "redis_keys.h"
#include "redis_conn.h"
#include "yaml_reader.h"

#define CFG_FILE_MAX     (1024 * 1024) /* YAML files are small; refuse before parsing */
#define CFG_SCHEDULE_MAX 50
#define CFG_LIST_MAX     256
#define CFG_KEY_MAX      128
#define CFG_CACHE_MIN    (1024 * 1024) /* events.cache_memory: one default-sized event fits */

typedef enum {
    T_STR,     /* char * */
    T_DUR,     /* int64_t ms */
    T_SIZE,    /* uint64_t bytes */
    T_SSIZE,   /* int64_t bytes (parsed unsigned, so never negative) */
    T_INT,     /* int */
    T_INT64,   /* int64_t */
    T_DOUBLE,  /* double */
    T_BOOL,    /* int 0/1 */
    T_LEVEL,   /* log_level */
    T_FORMAT,  /* log_format */
    T_DURLIST, /* int64_t * + size_t len */
    T_STRLIST, /* char ** + size_t len */
} cfg_type;

typedef struct cfg_key {
    const char *name;
    cfg_type type;
    size_t off;
    size_t len_off; /* lists: offset of the length */
    const char *def;
    int secret; /* how cfg_dump masks it: SECRET_URL, SECRET_ALL, SECRET_AFTER_COLON */
} cfg_key;

#define SECRET_URL         1 /* a URL whose password is masked */
#define SECRET_ALL         2 /* shown as "****" (when set) */
#define SECRET_AFTER_COLON 3 /* list items "name:secret" shown as "name:****" */

#define F(field) offsetof(cfg, field)
#define K(name, type, field, def)                                                                  \
    { name, type, F(field), 0, def, 0 }
#define L(name, type, field, lenfield, def)                                                        \
    { name, type, F(field), F(lenfield), def, 0 }

static const cfg_key cfg_keys[] = {
    {"redis.url", T_STR, F(redis_url), 0, "redis://127.0.0.1:6379/0", SECRET_URL},
    K("redis.prefix", T_STR, redis_prefix, "hookq"),
    K("redis.connect_timeout", T_DUR, redis_connect_timeout_ms, "5s"),
    K("redis.command_timeout", T_DUR, redis_command_timeout_ms, "5s"),
    K("redis.reconnect_max", T_DUR, redis_reconnect_max_ms, "5s"),
    L("retry.schedule", T_DURLIST, retry_schedule_ms, retry_schedule_len, "30s,2m,10m,1h,4h"),
    K("retry.jitter", T_DOUBLE, retry_jitter, "0.2"),
    K("retry.max_retry_after", T_DUR, retry_max_retry_after_ms, "1h"),
    K("endpoints.disable_after", T_INT, endpoints_disable_after, "50"),
    K("endpoints.rotation_grace", T_DUR, endpoints_rotation_grace_ms, "24h"),
    K("endpoints.reload_interval", T_DUR, endpoints_reload_interval_ms, "1s"),
    K("breaker.enabled", T_BOOL, breaker_enabled, "true"),
    K("breaker.window", T_DUR, breaker_window_ms, "60s"),
    K("breaker.min_attempts", T_INT, breaker_min_attempts, "10"),
    K("breaker.failure_ratio", T_DOUBLE, breaker_failure_ratio, "0.7"),
    K("breaker.cooldown", T_DUR, breaker_cooldown_ms, "30s"),
    K("breaker.max_cooldown", T_DUR, breaker_max_cooldown_ms, "10m"),
    K("delivery.timeout", T_DUR, delivery_timeout_ms, "30s"),
    K("delivery.connect_timeout", T_DUR, delivery_connect_timeout_ms, "10s"),
    K("delivery.concurrency", T_INT, delivery_concurrency, "64"),
    K("delivery.per_endpoint", T_INT, delivery_per_endpoint, "0"),
    K("delivery.batch", T_INT, delivery_batch, "64"),
    K("delivery.visibility_timeout", T_DUR, delivery_visibility_timeout_ms, "60s"),
    K("delivery.max_claims", T_INT, delivery_max_claims, "5"),
    K("delivery.shutdown_grace", T_DUR, delivery_shutdown_grace_ms, "10s"),
    K("delivery.max_response", T_SIZE, delivery_max_response_bytes, "64KiB"),
    K("delivery.response_excerpt", T_INT, delivery_response_excerpt, "256"),
    K("delivery.low_speed_time", T_DUR, delivery_low_speed_time_ms, "30s"),
    K("delivery.low_speed_limit", T_INT, delivery_low_speed_limit, "1"),
    {"delivery.proxy", T_STR, F(delivery_proxy), 0, "", SECRET_URL},
    K("delivery.log", T_BOOL, delivery_log, "true"),
    K("delivery.log_maxlen", T_INT, delivery_log_maxlen, "10000"),
    K("events.max_payload", T_SIZE, events_max_payload, "1MiB"),
    K("events.max_depth", T_INT, events_max_depth, "32"),
    K("events.retention", T_DUR, events_retention_ms, "72h"),
    K("events.idempotency_ttl", T_DUR, events_idempotency_ttl_ms, "24h"),
    K("events.cache_memory", T_SSIZE, events_cache_memory, "16MiB"),
    K("dead.maxlen", T_INT64, dead_maxlen, "100000"),
    K("security.allow_private_networks", T_BOOL, security_allow_private_networks, "false"),
    L("security.allow_cidrs", T_STRLIST, security_allow_cidrs, security_allow_cidrs_len, ""),
    K("log.level", T_LEVEL, log_level, "info"),
    K("log.format", T_FORMAT, log_format, "text"),
    K("worker.name", T_STR, worker_name, ""),
    K("api.listen", T_STR, api_listen, "127.0.0.1:8080"),
    {"api.admin_keys", T_STRLIST, F(api_admin_keys), F(api_admin_keys_len), "", SECRET_ALL},
    {"api.tenant_keys", T_STRLIST, F(api_tenant_keys), F(api_tenant_keys_len), "",
     SECRET_AFTER_COLON},
    {"api.stream_secret", T_STR, F(api_stream_secret), 0, "", SECRET_ALL},
    K("api.threads", T_INT, api_threads, "0"),
    K("api.max_body", T_SIZE, api_max_body, "2MiB"),
    K("api.max_connections", T_INT, api_max_connections, "8192"),
    K("api.max_connections_per_ip", T_INT, api_max_connections_per_ip, "1024"),
    K("api.idle_timeout", T_DUR, api_idle_timeout_ms, "30s"),
    L("api.trusted_proxies", T_STRLIST, api_trusted_proxies, api_trusted_proxies_len, ""),
    K("api.stream_buffer", T_SIZE, api_stream_buffer, "1MiB"),
    K("api.stream_heartbeat", T_DUR, api_stream_heartbeat_ms, "15s"),
    K("api.stream_token_ttl", T_DUR, api_stream_token_ttl_ms, "10m"),
    K("api.payload_retention", T_DUR, api_payload_retention_ms, "72h"),
};
#define NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

#define AT(c, k, T)  ((T *)((char *)(c) + (k)->off))
#define CAT(c, k, T) ((const T *)((const char *)(c) + (k)->off))

static const cfg_key *find_key(const char *name) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* "redis" is a section if some key starts with "redis.". */
static int is_section(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(cfg_keys[i].name, name, n) == 0 && cfg_keys[i].name[n] == '.')
            return 1;
    return 0;
}

static int is_list(const cfg_key *k) {
    return k->type == T_DURLIST || k->type == T_STRLIST;
}

/* ---- values ---------------------------------------------------------------------- */

static int parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return HQ_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return HQ_OK;
        }
    }
    return HQ_ERR;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || isspace((unsigned char)*s) || *end || errno || v < -2147483647L || v > 2147483647L)
        return HQ_ERR;
    *out = (int)v;
    return HQ_OK;
}

static int parse_int64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || isspace((unsigned char)*s) || *end || errno)
        return HQ_ERR;
    *out = (int64_t)v;
    return HQ_OK;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || isspace((unsigned char)*s) || *end || errno || !isfinite(v))
        return HQ_ERR;
    *out = v;
    return HQ_OK;
}

static int bad_dur(const cfg_key *k, const char *s, char *err, size_t errlen) {
    return hq_seterr(err, errlen, "key '%s': bad duration '%s' (e.g. 500ms, 30s, 2m, 1h, 7d)",
                     k->name, s);
}

static void free_list(cfg *c, const cfg_key *k) {
    size_t *len = (size_t *)((char *)c + k->len_off);
    if (k->type == T_STRLIST) {
        char **v = *AT(c, k, char **);
        for (size_t i = 0; v && i < *len; i++)
            free(v[i]);
    }
    free(*AT(c, k, void *));
    *AT(c, k, void *) = NULL;
    *len = 0;
}

/* Set a list key from n items. On a bad item, *bad gets its index. */
static int set_list(cfg *c, const cfg_key *k, char *const *items, size_t n, size_t *bad, char *err,
                    size_t errlen) {
    size_t max = k->type == T_DURLIST ? CFG_SCHEDULE_MAX : CFG_LIST_MAX;
    void *arr = NULL;
    *bad = (size_t)-1;
    if (n > max)
        return hq_seterr(err, errlen, "key '%s': too many entries (%zu, at most %zu)", k->name, n,
                         max);
    if (n > 0) {
        arr = calloc(n, k->type == T_DURLIST ? sizeof(int64_t) : sizeof(char *));
        if (!arr)
            return hq_seterr(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (k->type == T_DURLIST) {
            if (units_parse_duration(items[i], &((int64_t *)arr)[i], NULL, 0) != HQ_OK) {
                *bad = i;
                free(arr);
                return bad_dur(k, items[i], err, errlen);
            }
        } else {
            ((char **)arr)[i] = strdup(items[i]);
            if (!((char **)arr)[i]) {
                for (size_t j = 0; j < i; j++)
                    free(((char **)arr)[j]);
                free(arr);
                return hq_seterr(err, errlen, "out of memory");
            }
        }
    }
    free_list(c, k);
    *AT(c, k, void *) = arr;
    *(size_t *)((char *)c + k->len_off) = n;
    return HQ_OK;
}

/* Lists from text (env, flags): items separated by commas and/or whitespace. */
static int set_list_text(cfg *c, const cfg_key *k, const char *value, char *err, size_t errlen) {
    char *copy = strdup(value);
    char *items[CFG_LIST_MAX + 1];
    size_t n = 0, bad;
    int rc;
    if (!copy)
        return hq_seterr(err, errlen, "out of memory");
    for (char *save = NULL, *t = strtok_r(copy, ", \t\n", &save); t;
         t = strtok_r(NULL, ", \t\n", &save)) {
        if (n == CFG_LIST_MAX + 1)
            break; /* set_list reports "too many" */
        items[n++] = t;
    }
    rc = set_list(c, k, items, n, &bad, err, errlen);
    free(copy);
    return rc;
}

static int set_value(cfg *c, const cfg_key *k, const char *v, char *err, size_t errlen) {
    switch (k->type) {
    case T_STR: {
        char *s = strdup(v);
        if (!s)
            return hq_seterr(err, errlen, "out of memory");
        free(*AT(c, k, char *));
        *AT(c, k, char *) = s;
        return HQ_OK;
    }
    case T_DUR: {
        int64_t ms; /* a failed parse must leave the old value */
        if (units_parse_duration(v, &ms, NULL, 0) != HQ_OK)
            return bad_dur(k, v, err, errlen);
        *AT(c, k, int64_t) = ms;
        return HQ_OK;
    }
    case T_SIZE:
    case T_SSIZE: {
        uint64_t b;
        if (units_parse_size(v, &b, NULL, 0) != HQ_OK || (k->type == T_SSIZE && b > INT64_MAX))
            return hq_seterr(err, errlen, "key '%s': bad size '%s' (e.g. 65536, 64KiB, 1MiB)",
                             k->name, v);
        if (k->type == T_SSIZE)
            *AT(c, k, int64_t) = (int64_t)b;
        else
            *AT(c, k, uint64_t) = b;
        return HQ_OK;
    }
    case T_INT:
        if (parse_int(v, AT(c, k, int)) != HQ_OK)
            return hq_seterr(err, errlen, "key '%s': bad integer '%s'", k->name, v);
        return HQ_OK;
    case T_INT64:
        if (parse_int64(v, AT(c, k, int64_t)) != HQ_OK)
            return hq_seterr(err, errlen, "key '%s': bad integer '%s'", k->name, v);
        return HQ_OK;
    case T_DOUBLE:
        if (parse_double(v, AT(c, k, double)) != HQ_OK)
            return hq_seterr(err, errlen, "key '%s': bad number '%s'", k->name, v);
        return HQ_OK;
    case T_BOOL:
        if (parse_bool(v, AT(c, k, int)) != HQ_OK)
            return hq_seterr(err, errlen,
                             "key '%s': bad boolean '%s' (true/false/yes/no/on/off/1/0)", k->name,
                             v);
        return HQ_OK;
    case T_LEVEL: {
        log_level l;
        if (log_level_parse(v, &l) != HQ_OK)
            return hq_seterr(err, errlen, "key '%s': bad value '%s' (debug, info, warn, error)",
                             k->name, v);
        *AT(c, k, log_level) = l;
        return HQ_OK;
    }
    case T_FORMAT: {
        log_format f;
        if (log_format_parse(v, &f) != HQ_OK)
            return hq_seterr(err, errlen, "key '%s': bad value '%s' (text, json)", k->name, v);
        *AT(c, k, log_format) = f;
        return HQ_OK;
    }
    case T_DURLIST:
    case T_STRLIST:
        return set_list_text(c, k, v, err, errlen);
    }
    return hq_seterr(err, errlen, "key '%s': unsupported type", k->name);
}

/* ---- public: new/free/set/env ------------------------------------------------------ */

void cfg_free(cfg *c) {
    if (!c)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (k->type == T_STR)
            free(*AT(c, k, char *));
        else if (is_list(k))
            free_list(c, k);
    }
    free(c);
}

cfg *cfg_new(void) {
    cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        /* Defaults are text parsed like any other source; a failure here is OOM (or a
         * broken default, which test_config catches). */
        if (set_value(c, &cfg_keys[i], cfg_keys[i].def, NULL, 0) != HQ_OK) {
            cfg_free(c);
            return NULL;
        }
    }
    return c;
}

int cfg_set(cfg *c, const char *key, const char *value, char *err, size_t errlen) {
    const cfg_key *k = find_key(key);
    if (!k)
        return hq_seterr(err, errlen, "unknown key '%s'", key);
    return set_value(c, k, value, err, errlen);
}

void cfg_env_name(const char *key, char *buf, size_t len) {
    size_t j = 0;
    if (!len)
        return;
    for (const char *p = "HOOKQ_"; *p && j + 1 < len; p++)
        buf[j++] = *p;
    for (const char *p = key; *p && j + 1 < len; p++)
        buf[j++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    buf[j] = '\0';
}

int cfg_load_env(cfg *c, char *const *envp, char *err, size_t errlen) {
    char name[CFG_KEY_MAX + 8], kerr[HQ_ERRLEN];
    for (size_t e = 0; envp && envp[e]; e++) {
        const char *var = envp[e];
        const char *eq = strchr(var, '=');
        if (strncmp(var, "HOOKQ_", 6) != 0 || !eq)
            continue;
        size_t nlen = (size_t)(eq - var);
        if (nlen == strlen("HOOKQ_CONFIG") && strncmp(var, "HOOKQ_CONFIG", nlen) == 0)
            continue;
        const cfg_key *k = NULL;
        for (size_t i = 0; i < NKEYS && !k; i++) {
            cfg_env_name(cfg_keys[i].name, name, sizeof(name));
            if (strlen(name) == nlen && strncmp(var, name, nlen) == 0)
                k = &cfg_keys[i];
        }
        if (!k)
            return hq_seterr(err, errlen, "unknown environment variable %.*s (see docs/config.md)",
                             (int)nlen, var);
        if (set_value(c, k, eq + 1, kerr, sizeof(kerr)) != HQ_OK)
            return hq_seterr(err, errlen, "%.*s: %s", (int)nlen, var, kerr);
    }
    return HQ_OK;
}

/* ---- YAML ------------------------------------------------------------------------ */

/* A file's entries applied in file order: yaml_reader knows YAML, this knows the keys. */
typedef struct file_apply {
    cfg *c;
    const char *file;
    char *err;
    size_t errlen;
    size_t seen[NKEYS]; /* line where each key was set, 0 = not yet */
} file_apply;

static int at_line(file_apply *a, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int at_line(file_apply *a, size_t line, const char *fmt, ...) {
    char m[HQ_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return hq_seterr(a->err, a->errlen, "%s:%zu: %s", a->file, line, m);
}

static int mark_seen(file_apply *a, const cfg_key *k, size_t line) {
    size_t i = (size_t)(k - cfg_keys);
    if (a->seen[i])
        return at_line(a, line, "key '%s': set twice (first on line %zu)", k->name, a->seen[i]);
    a->seen[i] = line;
    return HQ_OK;
}

static int apply_entry(file_apply *a, const yread_entry *e) {
    const cfg_key *k = find_key(e->key);
    char m[HQ_ERRLEN];
    size_t bad;
    if (e->kind == YREAD_ALIAS)
        return at_line(a, e->line, "key '%s': YAML aliases are not supported", e->key);
    if (!k && e->kind == YREAD_MAPPING && is_section(e->key))
        return HQ_OK; /* its keys are the entries that follow */
    if (!k && e->kind == YREAD_VALUE && is_section(e->key) && e->empty)
        return HQ_OK; /* "redis:" with nothing under it is an empty section */
    if (!k && e->kind != YREAD_MAPPING && is_section(e->key))
        return at_line(a, e->line, "key '%s': is a section, expected a mapping of keys", e->key);
    if (!k)
        return at_line(a, e->line, "unknown key '%s'", e->key);
    if (e->kind == YREAD_MAPPING)
        return at_line(a, e->line, "key '%s': expected a %s, got a mapping", e->key,
                       is_list(k) ? "list" : "single value");
    if (e->kind == YREAD_LIST && !is_list(k))
        return at_line(a, e->line, "key '%s': expected a single value, got a list", e->key);
    if (mark_seen(a, k, e->line) != HQ_OK)
        return HQ_ERR;
    if (e->truncated)
        return HQ_OK; /* the key is fine; the reader's error about its items follows */
    if (e->kind == YREAD_LIST) {
        if (set_list(a->c, k, e->items, e->n_items, &bad, m, sizeof(m)) != HQ_OK)
            return at_line(a, bad < e->n_items ? e->item_lines[bad] : e->line, "%s", m);
        return HQ_OK;
    }
    /* A list key also takes one string, split like the environment form. */
    if (set_value(a->c, k, e->value, m, sizeof(m)) != HQ_OK)
        return at_line(a, e->line, "%s", m);
    return HQ_OK;
}

int cfg_load_file(cfg *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    yread_doc *doc = NULL;
    file_apply a = {.c = c, .file = path, .err = err, .errlen = errlen};
    int rc = HQ_ERR, parsed;
    if (!f)
        return hq_seterr(err, errlen, "%s: %s", path, strerror(errno));
    buf = malloc(CFG_FILE_MAX + 1);
    if (!buf) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    n = fread(buf, 1, CFG_FILE_MAX + 1, f);
    if (ferror(f)) {
        hq_seterr(err, errlen, "%s: read error", path);
        goto cleanup;
    }
    if (n > CFG_FILE_MAX) {
        hq_seterr(err, errlen, "%s: larger than %d bytes; is this the right file?", path,
                  CFG_FILE_MAX);
        goto cleanup;
    }
    /* Even when the reader fails, the entries before its problem are checked first, so
     * the error reported is always the first one in the file. */
    parsed = yread_parse(path, buf, n, &doc, err, errlen);
    if (!doc)
        goto cleanup;
    for (size_t i = 0; i < doc->n; i++)
        if (apply_entry(&a, &doc->entries[i]) != HQ_OK)
            goto cleanup;
    rc = parsed;
cleanup:
    yread_free(doc);
    free(buf);
    fclose(f);
    return rc;
}

/* ---- validation ------------------------------------------------------------------ */

static int check_int(const char *key, int v, int lo, int hi, char *err, size_t errlen) {
    if (v < lo || v > hi)
        return hq_seterr(err, errlen, "key '%s': %d is out of range (%d..%d)", key, v, lo, hi);
    return HQ_OK;
}

static int check_positive(const char *key, int64_t ms, char *err, size_t errlen) {
    if (ms <= 0)
        return hq_seterr(err, errlen, "key '%s': must be greater than 0", key);
    return HQ_OK;
}

/* The breaker's keys are checked even when breaker.enabled is false, so turning it on
 * later cannot reveal a bad value at a restart. */
/* An API key: 16..256 printable characters without spaces or ':' (the tenant separator),
 * so a key is long enough not to be guessed and never splits oddly. */
static int api_key_check(const char *key, const char *name, char *err, size_t errlen) {
    size_t n = strlen(key);
    if (n < 16 || n > 256)
        return hq_seterr(err, errlen, "key '%s': a key must be 16..256 characters (got %zu)", name,
                         n);
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)key[i]) || key[i] == ':' || key[i] == ',')
            return hq_seterr(err, errlen,
                             "key '%s': a key is printable characters without spaces, ',' or ':'",
                             name);
    return HQ_OK;
}

static int validate_api(const cfg *c, char *err, size_t errlen) {
    char e[HQ_ERRLEN];
    const char *port = strrchr(c->api_listen, ':');
    char *end = NULL;
    long pn = port ? strtol(port + 1, &end, 10) : 0;
    if (!port || port == c->api_listen || !end || *end || pn < 0 || pn > 65535 || !port[1])
        return hq_seterr(err, errlen,
                         "key 'api.listen': '%s' is not HOST:PORT (e.g. 127.0.0.1:8080, "
                         "[::1]:8080, 0.0.0.0:8080)",
                         c->api_listen);
    for (size_t i = 0; i < c->api_admin_keys_len; i++)
        if (api_key_check(c->api_admin_keys[i], "api.admin_keys", err, errlen) != HQ_OK)
            return HQ_ERR;
    for (size_t i = 0; i < c->api_tenant_keys_len; i++) {
        const char *item = c->api_tenant_keys[i], *colon = strchr(item, ':');
        char tenant[80];
        if (!colon || colon == item || (size_t)(colon - item) >= sizeof(tenant))
            return hq_seterr(err, errlen,
                             "key 'api.tenant_keys': item %zu is not TENANT:KEY (e.g. acme:<key>)",
                             i + 1);
        snprintf(tenant, sizeof(tenant), "%.*s", (int)(colon - item), item);
        if (envelope_tenant_valid(tenant, e, sizeof(e)) != HQ_OK)
            return hq_seterr(err, errlen, "key 'api.tenant_keys': item %zu: tenant: %s", i + 1, e);
        if (api_key_check(colon + 1, "api.tenant_keys", err, errlen) != HQ_OK)
            return HQ_ERR;
    }
    for (size_t i = 0; i < c->api_trusted_proxies_len; i++)
        if (addr_filter_cidr_valid(c->api_trusted_proxies[i], e, sizeof(e)) != HQ_OK)
            return hq_seterr(err, errlen, "key 'api.trusted_proxies': %s", e);
    if (c->api_stream_secret[0] && strlen(c->api_stream_secret) < 16)
        return hq_seterr(err, errlen, "key 'api.stream_secret': at least 16 characters");
    if (c->api_threads < 0 || c->api_threads > 256)
        return hq_seterr(err, errlen, "key 'api.threads': %d is out of range (0..256)",
                         c->api_threads);
    if (c->api_max_connections < 1 || c->api_max_connections > 1000000)
        return hq_seterr(err, errlen, "key 'api.max_connections': %d is out of range (1..1000000)",
                         c->api_max_connections);
    if (c->api_max_connections_per_ip < 0)
        return hq_seterr(err, errlen, "key 'api.max_connections_per_ip': must be >= 0");
    if (c->api_max_body < 1024 || c->api_max_body > (256ull << 20))
        return hq_seterr(err, errlen, "key 'api.max_body': out of range (1KiB..256MiB)");
    if (c->api_idle_timeout_ms < 1000)
        return hq_seterr(err, errlen, "key 'api.idle_timeout': at least 1s");
    if (c->api_stream_buffer < 4096)
        return hq_seterr(err, errlen, "key 'api.stream_buffer': at least 4KiB");
    if (c->api_stream_heartbeat_ms < 1000)
        return hq_seterr(err, errlen, "key 'api.stream_heartbeat': at least 1s");
    if (c->api_stream_token_ttl_ms < 1000)
        return hq_seterr(err, errlen, "key 'api.stream_token_ttl': at least 1s");
    if (c->api_payload_retention_ms < 60000)
        return hq_seterr(err, errlen, "key 'api.payload_retention': at least 1m");
    return HQ_OK;
}

static int validate_breaker(const cfg *c, char *err, size_t errlen) {
    if (check_positive("breaker.window", c->breaker_window_ms, err, errlen) ||
        check_positive("breaker.cooldown", c->breaker_cooldown_ms, err, errlen) ||
        check_int("breaker.min_attempts", c->breaker_min_attempts, 1, 1000000000, err, errlen))
        return HQ_ERR;
    if (!(c->breaker_failure_ratio > 0.0 && c->breaker_failure_ratio <= 1.0))
        return hq_seterr(err, errlen,
                         "key 'breaker.failure_ratio': %g is out of range (0 < x <= 1)",
                         c->breaker_failure_ratio);
    if (c->breaker_max_cooldown_ms < c->breaker_cooldown_ms) {
        char a[32], b[32];
        units_format_duration(c->breaker_max_cooldown_ms, a, sizeof(a));
        units_format_duration(c->breaker_cooldown_ms, b, sizeof(b));
        return hq_seterr(err, errlen,
                         "key 'breaker.max_cooldown': %s must be at least breaker.cooldown (%s)", a,
                         b);
    }
    return HQ_OK;
}

int cfg_validate(const cfg *c, char *err, size_t errlen) {
    char e[HQ_ERRLEN];
    rconn_url u;
    if (rconn_url_parse(c->redis_url, &u, e, sizeof(e)) != HQ_OK)
        return hq_seterr(err, errlen, "key 'redis.url': %s", e);
    rconn_url_clear(&u);
    if (key_prefix_valid(c->redis_prefix, e, sizeof(e)) != HQ_OK)
        return hq_seterr(err, errlen, "key 'redis.prefix': %s", e);
    if (check_positive("redis.reconnect_max", c->redis_reconnect_max_ms, err, errlen) ||
        check_positive("endpoints.reload_interval", c->endpoints_reload_interval_ms, err, errlen) ||
        check_positive("delivery.timeout", c->delivery_timeout_ms, err, errlen) ||
        check_positive("delivery.connect_timeout", c->delivery_connect_timeout_ms, err, errlen) ||
        check_positive("events.idempotency_ttl", c->events_idempotency_ttl_ms, err, errlen))
        return HQ_ERR;
    if (c->delivery_visibility_timeout_ms <= c->delivery_timeout_ms) {
        /* Otherwise another worker reclaims a job while its first attempt still runs. */
        char a[32], b[32];
        units_format_duration(c->delivery_visibility_timeout_ms, a, sizeof(a));
        units_format_duration(c->delivery_timeout_ms, b, sizeof(b));
        return hq_seterr(err, errlen,
                         "key 'delivery.visibility_timeout': %s must be greater than "
                         "delivery.timeout (%s)",
                         a, b);
    }
    if (check_int("delivery.concurrency", c->delivery_concurrency, 1, 10000, err, errlen) ||
        check_int("delivery.per_endpoint", c->delivery_per_endpoint, 0, c->delivery_concurrency,
                  err, errlen) ||
        check_int("delivery.batch", c->delivery_batch, 1, 10000, err, errlen) ||
        check_int("delivery.max_claims", c->delivery_max_claims, 1, 1000, err, errlen) ||
        check_int("delivery.response_excerpt", c->delivery_response_excerpt, 0, 65536, err,
                  errlen) ||
        check_int("delivery.low_speed_limit", c->delivery_low_speed_limit, 0, 1 << 30, err,
                  errlen) ||
        check_int("delivery.log_maxlen", c->delivery_log_maxlen, 1, 100000000, err, errlen) ||
        check_int("events.max_depth", c->events_max_depth, 1, 1024, err, errlen) ||
        check_int("endpoints.disable_after", c->endpoints_disable_after, 0, 1000000000, err,
                  errlen))
        return HQ_ERR;
    if (c->delivery_max_response_bytes < 1)
        return hq_seterr(err, errlen, "key 'delivery.max_response': must be at least 1 byte");
    if (c->events_cache_memory < CFG_CACHE_MIN)
        return hq_seterr(err, errlen, "key 'events.cache_memory': must be at least 1MiB");
    if (c->dead_maxlen < 0)
        return hq_seterr(err, errlen,
                         "key 'dead.maxlen': %lld is out of range (0 = unlimited, or a count)",
                         (long long)c->dead_maxlen);
    if (c->events_max_payload < 1 || c->events_max_payload > 512ull * 1024 * 1024)
        return hq_seterr(err, errlen,
                         "key 'events.max_payload': must be 1..512MiB (a Redis "
                         "string holds at most 512MiB)");
    if (c->retry_schedule_len < 1 || c->retry_schedule_len > CFG_SCHEDULE_MAX)
        return hq_seterr(err, errlen, "key 'retry.schedule': needs 1..%d entries, has %zu",
                         CFG_SCHEDULE_MAX, c->retry_schedule_len);
    if (!(c->retry_jitter >= 0.0 && c->retry_jitter <= 0.9))
        return hq_seterr(err, errlen, "key 'retry.jitter': %g is out of range (0..0.9)",
                         c->retry_jitter);
    /* A retry must still find its event: the events stream keeps it for events.retention,
     * so that must outlast the longest possible retry horizon. */
    double horizon = 0;
    for (size_t i = 0; i < c->retry_schedule_len; i++)
        horizon += (double)c->retry_schedule_ms[i];
    horizon *= 1.0 + c->retry_jitter;
    if ((double)c->events_retention_ms <= horizon) {
        char a[32], b[32];
        units_format_duration(c->events_retention_ms, a, sizeof(a));
        units_format_duration((int64_t)ceil(horizon), b, sizeof(b));
        return hq_seterr(err, errlen,
                         "key 'events.retention': %s must be longer than the retry horizon "
                         "(%s: retry.schedule summed, plus jitter)",
                         a, b);
    }
    for (size_t i = 0; i < c->security_allow_cidrs_len; i++)
        if (addr_filter_cidr_valid(c->security_allow_cidrs[i], e, sizeof(e)) != HQ_OK)
            return hq_seterr(err, errlen, "key 'security.allow_cidrs': %s", e);
    if (c->delivery_proxy[0] && strncmp(c->delivery_proxy, "http://", 7) != 0 &&
        strncmp(c->delivery_proxy, "https://", 8) != 0 &&
        strncmp(c->delivery_proxy, "socks5://", 9) != 0 &&
        strncmp(c->delivery_proxy, "socks5h://", 10) != 0)
        return hq_seterr(err, errlen,
                         "key 'delivery.proxy': must start with http://, https:// or socks5://");
    if (validate_breaker(c, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (validate_api(c, err, errlen) != HQ_OK)
        return HQ_ERR;
    size_t wl = strlen(c->worker_name);
    if (wl > 64)
        return hq_seterr(err, errlen, "key 'worker.name': longer than 64 characters");
    for (size_t i = 0; i < wl; i++)
        if (!isgraph((unsigned char)c->worker_name[i]))
            return hq_seterr(err, errlen,
                             "key 'worker.name': only printable characters without spaces");
    return HQ_OK;
}

/* ---- load sequence --------------------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

cfg *cfg_load(const char *path, char *const *envp, char *err, size_t errlen) {
    cfg *c = cfg_new();
    if (!c) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (!path || !*path)
        path = env_get(envp, "HOOKQ_CONFIG");
    if ((!path || !*path) && access("hookq.yaml", F_OK) == 0)
        path = "hookq.yaml";
    if (path && *path && cfg_load_file(c, path, err, errlen) != HQ_OK)
        goto fail;
    if (cfg_load_env(c, envp, err, errlen) != HQ_OK)
        goto fail;
    if (cfg_validate(c, err, errlen) != HQ_OK)
        goto fail;
    return c;
fail:
    cfg_free(c);
    return NULL;
}

/* ---- dump ------------------------------------------------------------------------ */

/* Sizes in the largest exact binary unit, as units_parse_size reads them. */
static void size_format(uint64_t b, char *buf, size_t len) {
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    static const uint64_t mult[] = {1ull << 30, 1ull << 20, 1ull << 10};
    for (size_t i = 0; i < 3; i++)
        if (b && b % mult[i] == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(b / mult[i]), units[i]);
            return;
        }
    snprintf(buf, len, "%llu", (unsigned long long)b);
}

/* A list item as shown: secrets masked ("****", or "name:****"), into buf when masked. */
static const char *mask_item(const cfg_key *k, const char *item, char *buf, size_t len) {
    const char *colon;
    if (k->secret == SECRET_ALL)
        return "****";
    if (k->secret != SECRET_AFTER_COLON)
        return item;
    colon = strchr(item, ':');
    snprintf(buf, len, "%.*s:****", colon ? (int)(colon - item) : 0, item);
    return buf;
}

/* The value as text (lists comma-separated, as the environment takes them); malloc'd. */
static char *value_text(const cfg *c, const cfg_key *k) {
    char b[64];
    switch (k->type) {
    case T_STR: {
        const char *s = *CAT(c, k, char *);
        if (k->secret == SECRET_URL)
            return rconn_url_masked(s);
        return strdup(k->secret == SECRET_ALL && s[0] ? "****" : s);
    }
    case T_DUR:
        units_format_duration(*CAT(c, k, int64_t), b, sizeof(b));
        return strdup(b);
    case T_SIZE:
        size_format(*CAT(c, k, uint64_t), b, sizeof(b));
        return strdup(b);
    case T_SSIZE:
        size_format((uint64_t)*CAT(c, k, int64_t), b, sizeof(b));
        return strdup(b);
    case T_INT:
        snprintf(b, sizeof(b), "%d", *CAT(c, k, int));
        return strdup(b);
    case T_INT64:
        snprintf(b, sizeof(b), "%lld", (long long)*CAT(c, k, int64_t));
        return strdup(b);
    case T_DOUBLE:
        snprintf(b, sizeof(b), "%g", *CAT(c, k, double));
        return strdup(b);
    case T_BOOL:
        return strdup(*CAT(c, k, int) ? "true" : "false");
    case T_LEVEL:
        return strdup(log_level_name(*CAT(c, k, log_level)));
    case T_FORMAT:
        return strdup(*CAT(c, k, log_format) == LOG_FMT_JSON ? "json" : "text");
    case T_DURLIST:
    case T_STRLIST: {
        size_t n = *(const size_t *)((const char *)c + k->len_off), cap = 1, used = 0;
        for (size_t i = 0; i < n; i++)
            cap += (k->type == T_STRLIST ? strlen((*CAT(c, k, char **))[i]) + 16 : 32) + 1;
        char *out = malloc(cap);
        if (!out)
            return NULL;
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            const char *item = b;
            if (k->type == T_DURLIST)
                units_format_duration((*CAT(c, k, int64_t *))[i], b, sizeof(b));
            else
                item = mask_item(k, (*CAT(c, k, char **))[i], b, sizeof(b));
            used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", item);
        }
        return out;
    }
    }
    return NULL;
}

static json_t *value_json(const cfg *c, const cfg_key *k, const char *text) {
    switch (k->type) {
    case T_INT:
        return json_integer(*CAT(c, k, int));
    case T_INT64:
        return json_integer((json_int_t)*CAT(c, k, int64_t));
    case T_DOUBLE:
        return json_real(*CAT(c, k, double));
    case T_BOOL:
        return json_boolean(*CAT(c, k, int));
    case T_DURLIST:
    case T_STRLIST: {
        json_t *a = json_array();
        size_t n = *(const size_t *)((const char *)c + k->len_off);
        char b[64];
        for (size_t i = 0; a && i < n; i++) {
            const char *item = b;
            if (k->type == T_DURLIST)
                units_format_duration((*CAT(c, k, int64_t *))[i], b, sizeof(b));
            else
                item = mask_item(k, (*CAT(c, k, char **))[i], b, sizeof(b));
            json_array_append_new(a, json_string(item));
        }
        return a;
    }
    default:
        return json_string(text);
    }
}

int cfg_dump(const cfg *c, FILE *out, int json) {
    json_t *obj = json ? json_object() : NULL;
    int rc = HQ_ERR;
    if (json && !obj)
        return HQ_ERR;
    for (size_t i = 0; i < NKEYS; i++) {
        char *t = value_text(c, &cfg_keys[i]);
        if (!t)
            goto cleanup;
        if (json)
            json_object_set_new(obj, cfg_keys[i].name, value_json(c, &cfg_keys[i], t));
        else
            fprintf(out, "%s: %s\n", cfg_keys[i].name, t);
        free(t);
    }
    if (json) {
        if (json_dumpf(obj, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            goto cleanup;
        fputc('\n', out);
    }
    rc = ferror(out) ? HQ_ERR : HQ_OK;
cleanup:
    json_decref(obj);
    return rc;
}
