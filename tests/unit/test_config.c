/* test_config.c -- defaults, YAML (values, every kind of error with its key and line),
 * environment, precedence, validation, dump masking, and docs/config.md in sync. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "hq.h"

typedef struct fx {
    char dir[64];
    char path[128];
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/hq_test_cfg_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/hookq.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Load text as the YAML file; expect failure with exactly "PATH:want". */
static void yaml_fails(fx *f, const char *text, const char *want) {
    char err[HQ_ERRLEN] = "", exp[HQ_ERRLEN];
    cfg *c = cfg_new();
    assert_non_null(c);
    write_file(f->path, text);
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_ERR);
    snprintf(exp, sizeof(exp), "%s:%s", f->path, want);
    if (strncmp(err, exp, strlen(exp)) != 0)
        fail_msg("got '%s', want prefix '%s'", err, exp);
    cfg_free(c);
}

static void test_defaults(void **state) {
    (void)state;
    cfg *c = cfg_new();
    assert_non_null(c);
    assert_string_equal(c->redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(c->redis_prefix, "hookq");
    assert_int_equal(c->redis_connect_timeout_ms, 5000);
    assert_int_equal(c->redis_command_timeout_ms, 5000);
    assert_int_equal(c->redis_reconnect_max_ms, 5000);
    assert_int_equal(c->retry_schedule_len, 5);
    const int64_t sched[] = {30000, 120000, 600000, 3600000, 14400000};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(c->retry_schedule_ms[i], sched[i]);
    assert_true(c->retry_jitter > 0.199 && c->retry_jitter < 0.201);
    assert_int_equal(c->retry_max_retry_after_ms, 3600000);
    assert_int_equal(c->endpoints_disable_after, 50);
    assert_int_equal(c->endpoints_rotation_grace_ms, 86400000);
    assert_int_equal(c->endpoints_reload_interval_ms, 1000);
    assert_int_equal(c->breaker_enabled, 1);
    assert_int_equal(c->breaker_window_ms, 60000);
    assert_int_equal(c->breaker_min_attempts, 10);
    assert_true(c->breaker_failure_ratio > 0.699 && c->breaker_failure_ratio < 0.701);
    assert_int_equal(c->breaker_cooldown_ms, 30000);
    assert_int_equal(c->breaker_max_cooldown_ms, 600000);
    assert_int_equal(c->delivery_timeout_ms, 30000);
    assert_int_equal(c->delivery_connect_timeout_ms, 10000);
    assert_int_equal(c->delivery_concurrency, 64);
    assert_int_equal(c->delivery_per_endpoint, 0); /* = delivery.concurrency */
    assert_int_equal(c->delivery_batch, 64);
    assert_int_equal(c->delivery_visibility_timeout_ms, 60000);
    assert_int_equal(c->delivery_max_claims, 5);
    assert_int_equal(c->delivery_shutdown_grace_ms, 10000);
    assert_int_equal(c->delivery_max_response_bytes, 65536);
    assert_int_equal(c->delivery_response_excerpt, 256);
    assert_int_equal(c->delivery_low_speed_time_ms, 30000);
    assert_int_equal(c->delivery_low_speed_limit, 1);
    assert_string_equal(c->delivery_proxy, "");
    assert_int_equal(c->delivery_log, 1);
    assert_int_equal(c->delivery_log_maxlen, 10000);
    assert_int_equal(c->events_max_payload, 1048576);
    assert_int_equal(c->events_max_depth, 32);
    assert_int_equal(c->events_retention_ms, 72 * 3600000LL);
    assert_int_equal(c->events_idempotency_ttl_ms, 24 * 3600000LL);
    assert_int_equal(c->events_cache_memory, 16 * 1048576LL);
    assert_int_equal(c->dead_maxlen, 100000);
    assert_int_equal(c->security_allow_private_networks, 0);
    assert_int_equal(c->security_allow_cidrs_len, 0);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->log_format, LOG_FMT_TEXT);
    assert_string_equal(c->worker_name, "");
    char err[HQ_ERRLEN] = "";
    if (cfg_validate(c, err, sizeof(err)) != HQ_OK)
        fail_msg("defaults do not validate: %s", err);
    cfg_free(c);
    cfg_free(NULL);
}

static const char *full_yaml = "# every key, none at its default\n"
                               "redis:\n"
                               "  url: redis://alice:pa%40ss@10.1.2.3:6380/2\n"
                               "  prefix: hq-test\n"
                               "  connect_timeout: 2s\n"
                               "  command_timeout: 1500ms\n"
                               "  reconnect_max: 30s\n"
                               "retry:\n"
                               "  schedule: [1s, 5s, 1m]\n"
                               "  jitter: 0.5\n"
                               "  max_retry_after: 10m\n"
                               "endpoints:\n"
                               "  disable_after: 0\n"
                               "  rotation_grace: 1h\n"
                               "  reload_interval: 250ms\n"
                               "breaker:\n"
                               "  enabled: false\n"
                               "  window: 2m\n"
                               "  min_attempts: 20\n"
                               "  failure_ratio: 0.5\n"
                               "  cooldown: 1m\n"
                               "  max_cooldown: 1h\n"
                               "delivery:\n"
                               "  timeout: 20s\n"
                               "  connect_timeout: 3s\n"
                               "  concurrency: 200\n"
                               "  per_endpoint: 4\n"
                               "  batch: 100\n"
                               "  visibility_timeout: 90s\n"
                               "  max_claims: 3\n"
                               "  shutdown_grace: 15s\n"
                               "  max_response: 128KiB\n"
                               "  response_excerpt: 512\n"
                               "  low_speed_time: 20s\n"
                               "  low_speed_limit: 10\n"
                               "  proxy: \"http://u:proxypw@proxy:3128\"\n"
                               "  log: off\n"
                               "  log_maxlen: 500\n"
                               "events:\n"
                               "  max_payload: 2MiB\n"
                               "  max_depth: 16\n"
                               "  retention: 7d\n"
                               "  idempotency_ttl: 2h\n"
                               "  cache_memory: 256MiB\n"
                               "dead:\n"
                               "  maxlen: 0\n"
                               "security:\n"
                               "  allow_private_networks: yes\n"
                               "  allow_cidrs:\n"
                               "    - 10.20.0.0/16\n"
                               "    - fd00::/8\n"
                               "log:\n"
                               "  level: debug\n"
                               "  format: json\n"
                               "worker:\n"
                               "  name: w-1\n";

static void test_yaml_every_key(void **state) {
    fx *f = *state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    write_file(f->path, full_yaml);
    if (cfg_load_file(c, f->path, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_string_equal(c->redis_url, "redis://alice:pa%40ss@10.1.2.3:6380/2");
    assert_string_equal(c->redis_prefix, "hq-test");
    assert_int_equal(c->redis_connect_timeout_ms, 2000);
    assert_int_equal(c->redis_command_timeout_ms, 1500);
    assert_int_equal(c->redis_reconnect_max_ms, 30000);
    assert_int_equal(c->retry_schedule_len, 3);
    assert_int_equal(c->retry_schedule_ms[0], 1000);
    assert_int_equal(c->retry_schedule_ms[1], 5000);
    assert_int_equal(c->retry_schedule_ms[2], 60000);
    assert_true(c->retry_jitter > 0.499 && c->retry_jitter < 0.501);
    assert_int_equal(c->retry_max_retry_after_ms, 600000);
    assert_int_equal(c->endpoints_disable_after, 0);
    assert_int_equal(c->endpoints_rotation_grace_ms, 3600000);
    assert_int_equal(c->endpoints_reload_interval_ms, 250);
    assert_int_equal(c->breaker_enabled, 0);
    assert_int_equal(c->breaker_window_ms, 120000);
    assert_int_equal(c->breaker_min_attempts, 20);
    assert_true(c->breaker_failure_ratio > 0.499 && c->breaker_failure_ratio < 0.501);
    assert_int_equal(c->breaker_cooldown_ms, 60000);
    assert_int_equal(c->breaker_max_cooldown_ms, 3600000);
    assert_int_equal(c->delivery_timeout_ms, 20000);
    assert_int_equal(c->delivery_connect_timeout_ms, 3000);
    assert_int_equal(c->delivery_concurrency, 200);
    assert_int_equal(c->delivery_per_endpoint, 4);
    assert_int_equal(c->delivery_batch, 100);
    assert_int_equal(c->delivery_visibility_timeout_ms, 90000);
    assert_int_equal(c->delivery_max_claims, 3);
    assert_int_equal(c->delivery_shutdown_grace_ms, 15000);
    assert_int_equal(c->delivery_max_response_bytes, 131072);
    assert_int_equal(c->delivery_response_excerpt, 512);
    assert_int_equal(c->delivery_low_speed_time_ms, 20000);
    assert_int_equal(c->delivery_low_speed_limit, 10);
    assert_string_equal(c->delivery_proxy, "http://u:proxypw@proxy:3128");
    assert_int_equal(c->delivery_log, 0);
    assert_int_equal(c->delivery_log_maxlen, 500);
    assert_int_equal(c->events_max_payload, 2097152);
    assert_int_equal(c->events_max_depth, 16);
    assert_int_equal(c->events_retention_ms, 7 * 86400000LL);
    assert_int_equal(c->events_idempotency_ttl_ms, 7200000);
    assert_int_equal(c->events_cache_memory, 256 * 1048576LL);
    assert_int_equal(c->dead_maxlen, 0);
    assert_int_equal(c->security_allow_private_networks, 1);
    assert_int_equal(c->security_allow_cidrs_len, 2);
    assert_string_equal(c->security_allow_cidrs[0], "10.20.0.0/16");
    assert_string_equal(c->security_allow_cidrs[1], "fd00::/8");
    assert_int_equal(c->log_level, LOG_DEBUG);
    assert_int_equal(c->log_format, LOG_FMT_JSON);
    assert_string_equal(c->worker_name, "w-1");
    if (cfg_validate(c, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    cfg_free(c);
}

static void test_yaml_empty_and_odd(void **state) {
    fx *f = *state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    /* Empty files, comment-only files and empty sections leave the defaults. */
    write_file(f->path, "");
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_OK);
    write_file(f->path, "# nothing\n---\n");
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_OK);
    write_file(f->path, "redis:\nlog:\n  level: warn\n");
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_OK);
    assert_int_equal(c->log_level, LOG_WARN);
    assert_string_equal(c->redis_prefix, "hookq");
    /* A list key also takes one string, split like the environment form. */
    write_file(f->path, "retry:\n  schedule: 1s, 2s\n");
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_OK);
    assert_int_equal(c->retry_schedule_len, 2);
    assert_int_equal(c->retry_schedule_ms[1], 2000);
    /* Flow-style sections work like block style. */
    write_file(f->path, "{delivery: {batch: 7}, security: {allow_cidrs: []}}\n");
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_OK);
    assert_int_equal(c->delivery_batch, 7);
    assert_int_equal(c->security_allow_cidrs_len, 0);
    cfg_free(c);
}

static void test_yaml_errors(void **state) {
    fx *f = *state;
    yaml_fails(f, "redis:\n  url: redis://h\n  nope: 1\n", "3: unknown key 'redis.nope'");
    yaml_fails(f, "# c\nnope:\n  x: 1\n", "2: unknown key 'nope'");
    yaml_fails(f, "redis:\n  url:\n    host: h\n",
               "2: key 'redis.url': expected a single value, got a mapping");
    yaml_fails(f, "delivery:\n  timeout: [1s, 2s]\n",
               "2: key 'delivery.timeout': expected a single value, got a list");
    yaml_fails(f, "retry:\n  schedule:\n    a: 1\n",
               "2: key 'retry.schedule': expected a list, got a mapping");
    yaml_fails(f, "redis: localhost\n", "1: key 'redis': is a section");
    yaml_fails(f, "redis:\n  - a\n", "1: key 'redis': is a section");
    yaml_fails(f, "retry:\n  schedule:\n    - 30s\n    - 3x\n",
               "4: key 'retry.schedule': bad duration '3x'");
    yaml_fails(f, "retry:\n  schedule:\n    - [1s]\n",
               "3: key 'retry.schedule': list items must be plain values");
    yaml_fails(f, "\n\ndelivery:\n  timeout: 30 s\n",
               "4: key 'delivery.timeout': bad duration '30 s'");
    yaml_fails(f, "delivery:\n  max_response: 12QB\n",
               "2: key 'delivery.max_response': bad size '12QB'");
    yaml_fails(f, "delivery:\n  log: maybe\n", "2: key 'delivery.log': bad boolean 'maybe'");
    yaml_fails(f, "breaker:\n  enabled: true\n  failure_ratio: most\n",
               "3: key 'breaker.failure_ratio': bad number 'most'");
    yaml_fails(f, "breaker:\n  cooldown: 30x\n", "2: key 'breaker.cooldown': bad duration '30x'");
    yaml_fails(f, "breaker:\n  min_attempts: ten\n",
               "2: key 'breaker.min_attempts': bad integer 'ten'");
    yaml_fails(f, "log:\n  level: loud\n", "2: key 'log.level': bad value 'loud'");
    yaml_fails(f, "log:\n  format: xml\n", "2: key 'log.format': bad value 'xml'");
    yaml_fails(f, "delivery:\n  batch: 1.5\n", "2: key 'delivery.batch': bad integer '1.5'");
    yaml_fails(f, "delivery:\n  batch: 99999999999\n", "2: key 'delivery.batch': bad integer");
    yaml_fails(f, "retry:\n  jitter: lots\n", "2: key 'retry.jitter': bad number 'lots'");
    yaml_fails(f, "log:\n  level: info\nlog:\n  level: warn\n",
               "4: key 'log.level': set twice (first on line 2)");
    yaml_fails(f, "- a\n- b\n", "1: the top level must be a mapping");
    yaml_fails(f, "redis:\n  prefix: a\n---\nredis:\n  prefix: b\n",
               "3: only one YAML document is allowed");
    yaml_fails(f, "base: &b\n  x: 1\nredis: *b\n", "1: unknown key 'base'");
    yaml_fails(f, "redis:\n  url: *u\n", "2: key 'redis.url': YAML aliases are not supported");
    /* Malformed YAML names the line where the parser gave up. */
    yaml_fails(f, "redis:\n  url: redis://h\n prefix: x\n", "3: YAML: ");
    yaml_fails(f, "retry:\n  schedule: [1s\n", "3: YAML: ");
}

static void test_yaml_file_limits(void **state) {
    fx *f = *state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 70000; i++)
        fputs("# padding line\n", fp); /* > 1 MiB of comments */
    fclose(fp);
    assert_int_equal(cfg_load_file(c, f->path, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "larger than 1048576 bytes"));
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.yaml", f->dir);
    assert_int_equal(cfg_load_file(c, missing, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "missing.yaml: No such file"));
    cfg_free(c);
}

static void test_env(void **state) {
    (void)state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    char *env[] = {"PATH=/bin",
                   "HOOKQ_CONFIG=/nonexistent.yaml",
                   "HOOKQ_REDIS_URL=redis://:pw@h:1/3",
                   "HOOKQ_RETRY_SCHEDULE=1s, 2s 3s,,4s",
                   "HOOKQ_SECURITY_ALLOW_CIDRS=10.0.0.0/8 192.168.0.0/16",
                   "HOOKQ_DELIVERY_LOG=no",
                   "HOOKQ_EVENTS_MAX_PAYLOAD=512KiB",
                   "HOOKQ_LOG_LEVEL=error",
                   NULL};
    if (cfg_load_env(c, env, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_string_equal(c->redis_url, "redis://:pw@h:1/3");
    assert_int_equal(c->retry_schedule_len, 4);
    assert_int_equal(c->retry_schedule_ms[3], 4000);
    assert_int_equal(c->security_allow_cidrs_len, 2);
    assert_string_equal(c->security_allow_cidrs[1], "192.168.0.0/16");
    assert_int_equal(c->delivery_log, 0);
    assert_int_equal(c->events_max_payload, 524288);
    assert_int_equal(c->log_level, LOG_ERROR);
    /* An empty list variable empties the list. */
    char *env2[] = {"HOOKQ_SECURITY_ALLOW_CIDRS=", NULL};
    assert_int_equal(cfg_load_env(c, env2, err, sizeof(err)), HQ_OK);
    assert_int_equal(c->security_allow_cidrs_len, 0);
    assert_int_equal(cfg_load_env(c, NULL, err, sizeof(err)), HQ_OK);

    char *bad1[] = {"HOOKQ_REDIS_URLL=x", NULL};
    assert_int_equal(cfg_load_env(c, bad1, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "unknown environment variable HOOKQ_REDIS_URLL (see docs/config.md)");
    char *bad2[] = {"HOOKQ_DELIVERY_TIMEOUT=soon", NULL};
    assert_int_equal(cfg_load_env(c, bad2, err, sizeof(err)), HQ_ERR);
    assert_non_null(
        strstr(err, "HOOKQ_DELIVERY_TIMEOUT: key 'delivery.timeout': bad duration 'soon'"));
    char *bad3[] = {"HOOKQ_REDIS=x", NULL};
    assert_int_equal(cfg_load_env(c, bad3, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "HOOKQ_REDIS "));
    cfg_free(c);
}

static void test_env_names(void **state) {
    (void)state;
    char b[64];
    cfg_env_name("redis.url", b, sizeof(b));
    assert_string_equal(b, "HOOKQ_REDIS_URL");
    cfg_env_name("security.allow_private_networks", b, sizeof(b));
    assert_string_equal(b, "HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS");
    cfg_env_name("redis.url", b, 8);
    assert_string_equal(b, "HOOKQ_R");
}

/* Lines of cfg_dump text output into a NULL-terminated array of "key: value". */
static char **dump_lines(const cfg *c, size_t *n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(cfg_dump(c, fp, 0), HQ_OK);
    fclose(fp);
    char **lines = calloc(128, sizeof(char *));
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        lines[(*n)++] = strdup(t);
    free(buf);
    return lines;
}

static void free_lines(char **l, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void test_env_every_key(void **state) {
    (void)state;
    /* Every dumped key has exactly one variable, and setting it through the environment
     * round-trips its dumped value. */
    cfg *c = cfg_new();
    size_t n;
    char **lines = dump_lines(c, &n);
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        char key[128], name[160], var[512], err[HQ_ERRLEN];
        const char *colon = strstr(lines[i], ": ");
        assert_non_null(colon);
        snprintf(key, sizeof(key), "%.*s", (int)(colon - lines[i]), lines[i]);
        cfg_env_name(key, name, sizeof(name));
        for (size_t j = 0; j < i; j++) {
            char other[128], oname[160];
            snprintf(other, sizeof(other), "%.*s", (int)(strstr(lines[j], ": ") - lines[j]),
                     lines[j]);
            cfg_env_name(other, oname, sizeof(oname));
            assert_string_not_equal(name, oname);
        }
        snprintf(var, sizeof(var), "%s=%s", name, colon + 2);
        char *env[] = {var, NULL};
        if (cfg_load_env(c, env, err, sizeof(err)) != HQ_OK)
            fail_msg("%s: %s", var, err);
    }
    size_t n2;
    char **again = dump_lines(c, &n2);
    assert_int_equal(n, n2);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(lines[i], again[i]);
    free_lines(lines, n);
    free_lines(again, n2);
    cfg_free(c);
}

static void test_precedence(void **state) {
    fx *f = *state;
    char err[HQ_ERRLEN] = "";
    write_file(f->path, "delivery:\n  batch: 10\n  concurrency: 20\n  per_endpoint: 5\n");
    char *env[] = {"HOOKQ_DELIVERY_CONCURRENCY=30", "HOOKQ_DELIVERY_PER_ENDPOINT=6", NULL};
    cfg *c = cfg_load(f->path, env, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->delivery_batch, 10);       /* file */
    assert_int_equal(c->delivery_concurrency, 30); /* env over file */
    assert_int_equal(c->delivery_per_endpoint, 6);
    assert_int_equal(cfg_set(c, "delivery.per_endpoint", "7", err, sizeof(err)), HQ_OK);
    assert_int_equal(c->delivery_per_endpoint, 7); /* set over env */
    cfg_free(c);

    /* HOOKQ_CONFIG names the file when no path is given. */
    char var[200];
    snprintf(var, sizeof(var), "HOOKQ_CONFIG=%s", f->path);
    char *env2[] = {var, NULL};
    c = cfg_load(NULL, env2, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->delivery_batch, 10);
    cfg_free(c);

    /* Errors from any stage come back from cfg_load. */
    char *env3[] = {"HOOKQ_DELIVERY_PER_ENDPOINT=50", NULL};
    assert_null(cfg_load(f->path, env3, err, sizeof(err)));
    assert_non_null(strstr(err, "delivery.per_endpoint"));
    write_file(f->path, "delivery:\n  bacth: 10\n");
    assert_null(cfg_load(f->path, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, ":2: unknown key 'delivery.bacth'"));
}

static void test_set(void **state) {
    (void)state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    assert_int_equal(cfg_set(c, "retry.schedule", "1s,1s", err, sizeof(err)), HQ_OK);
    assert_int_equal(c->retry_schedule_len, 2);
    assert_int_equal(cfg_set(c, "no.such", "1", err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "unknown key 'no.such'");
    assert_int_equal(cfg_set(c, "redis", "x", err, sizeof(err)), HQ_ERR);
    /* A failed set leaves the old value. */
    assert_int_equal(cfg_set(c, "delivery.timeout", "5x", err, sizeof(err)), HQ_ERR);
    assert_int_equal(c->delivery_timeout_ms, 30000);
    assert_int_equal(cfg_set(c, "retry.schedule", "1s,zz", err, sizeof(err)), HQ_ERR);
    assert_string_equal(err,
                        "key 'retry.schedule': bad duration 'zz' (e.g. 500ms, 30s, 2m, 1h, 7d)");
    assert_int_equal(c->retry_schedule_len, 2);
    assert_int_equal(cfg_set(c, "log.level", "nope", err, sizeof(err)), HQ_ERR);
    assert_int_equal(c->log_level, LOG_INFO);
    const char *truthy[] = {"true", "YES", "On", "1"}, *falsy[] = {"false", "no", "OFF", "0"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cfg_set(c, "delivery.log", falsy[i], err, sizeof(err)), HQ_OK);
        assert_int_equal(c->delivery_log, 0);
        assert_int_equal(cfg_set(c, "delivery.log", truthy[i], err, sizeof(err)), HQ_OK);
        assert_int_equal(c->delivery_log, 1);
    }
    /* The schedule is capped before anything is allocated. */
    char big[600] = "";
    for (int i = 0; i < 51; i++)
        strcat(big, "1s ");
    assert_int_equal(cfg_set(c, "retry.schedule", big, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "too many entries (51, at most 50)"));
    cfg_free(c);
}

/* Apply key=value to fresh defaults and expect validation to fail naming want. */
static void invalid(const char *key, const char *value, const char *want) {
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    if (cfg_set(c, key, value, err, sizeof(err)) != HQ_OK)
        fail_msg("set %s=%s: %s", key, value, err);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, want))
        fail_msg("%s=%s: '%s' lacks '%s'", key, value, err, want);
    cfg_free(c);
}

static void valid(const char *key, const char *value) {
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    assert_int_equal(cfg_set(c, key, value, err, sizeof(err)), HQ_OK);
    if (cfg_validate(c, err, sizeof(err)) != HQ_OK)
        fail_msg("%s=%s: %s", key, value, err);
    cfg_free(c);
}

static void test_validate(void **state) {
    (void)state;
    invalid("delivery.visibility_timeout", "30s",
            "key 'delivery.visibility_timeout': 30s must be greater than delivery.timeout (30s)");
    valid("delivery.visibility_timeout", "31s");
    invalid("delivery.concurrency", "0",
            "key 'delivery.concurrency': 0 is out of range (1..10000)");
    invalid("delivery.concurrency", "10001", "delivery.concurrency");
    valid("delivery.concurrency", "10000");
    invalid("delivery.per_endpoint", "-1", "key 'delivery.per_endpoint'");
    valid("delivery.per_endpoint", "0"); /* = delivery.concurrency */
    invalid("delivery.per_endpoint", "65",
            "key 'delivery.per_endpoint': 65 is out of range (0..64)");
    valid("delivery.per_endpoint", "64");
    invalid("delivery.batch", "0", "key 'delivery.batch'");
    invalid("delivery.batch", "10001", "key 'delivery.batch'");
    valid("delivery.batch", "1");
    invalid("retry.schedule", "", "key 'retry.schedule': needs 1..50 entries, has 0");
    valid("retry.schedule", "1s");
    invalid("retry.jitter", "0.91", "key 'retry.jitter'");
    invalid("retry.jitter", "-0.1", "key 'retry.jitter'");
    valid("retry.jitter", "0");
    valid("retry.jitter", "0.9");
    invalid("endpoints.disable_after", "-1", "key 'endpoints.disable_after'");
    valid("endpoints.disable_after", "0");
    invalid("redis.url", "http://x", "key 'redis.url': Redis URL must start with");
    invalid("redis.url", "redis://h:0", "key 'redis.url'");
    valid("redis.url", "unix:///tmp/r.sock?db=1");
    invalid("redis.prefix", "a:b", "key 'redis.prefix'");
    invalid("redis.prefix", "", "key 'redis.prefix'");
    valid("redis.prefix", "hookq-staging");
    invalid("security.allow_cidrs", "10.0.0.0/8 10.0.0.0/33", "key 'security.allow_cidrs'");
    invalid("security.allow_cidrs", "nonsense", "key 'security.allow_cidrs'");
    valid("security.allow_cidrs", "10.0.0.0/8,fd00::/8");
    invalid("events.retention", "6h",
            "key 'events.retention': 6h must be longer than the retry horizon");
    valid("events.retention", "7h");
    invalid("delivery.timeout", "0s", "key 'delivery.timeout': must be greater than 0");
    invalid("events.max_payload", "0", "key 'events.max_payload'");
    invalid("events.max_payload", "1GiB", "key 'events.max_payload'");
    invalid("delivery.proxy", "ftp://x", "key 'delivery.proxy'");
    valid("delivery.proxy", "socks5://127.0.0.1:1080");
    invalid("worker.name", "has space", "key 'worker.name'");
    valid("worker.name", "pod-7");
    invalid("dead.maxlen", "-1",
            "key 'dead.maxlen': -1 is out of range (0 = unlimited, or a count)");
    valid("dead.maxlen", "0");
    invalid("breaker.window", "0s", "key 'breaker.window': must be greater than 0");
    invalid("breaker.cooldown", "0s", "key 'breaker.cooldown': must be greater than 0");
    invalid("breaker.min_attempts", "0",
            "key 'breaker.min_attempts': 0 is out of range (1..1000000000)");
    valid("breaker.min_attempts", "1");
    invalid("breaker.failure_ratio", "0",
            "key 'breaker.failure_ratio': 0 is out of range (0 < x <= 1)");
    invalid("breaker.failure_ratio", "1.01", "key 'breaker.failure_ratio'");
    invalid("breaker.failure_ratio", "-0.5", "key 'breaker.failure_ratio'");
    valid("breaker.failure_ratio", "1");
    valid("breaker.failure_ratio", "0.01");
    invalid("breaker.max_cooldown", "29s",
            "key 'breaker.max_cooldown': 29s must be at least breaker.cooldown (30s)");
    valid("breaker.max_cooldown", "30s");
    valid("breaker.enabled", "false");
    valid("dead.maxlen", "1");
    invalid("events.cache_memory", "1048575", "key 'events.cache_memory': must be at least 1MiB");
    invalid("events.cache_memory", "0", "key 'events.cache_memory'");
    valid("events.cache_memory", "1MiB");
    valid("events.cache_memory", "1048576");
}

static char *dump_str(const cfg *c, int json) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(cfg_dump(c, fp, json), HQ_OK);
    fclose(fp);
    return buf;
}

static void test_dump(void **state) {
    (void)state;
    char err[HQ_ERRLEN];
    cfg *c = cfg_new();
    assert_int_equal(cfg_set(c, "redis.url", "redis://alice:hunter2@h:6379/1", err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(cfg_set(c, "delivery.proxy", "http://bob:pr0xy@p:3128", err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(cfg_set(c, "security.allow_cidrs", "10.0.0.0/8,fd00::/8", err, sizeof(err)),
                     HQ_OK);
    char *t = dump_str(c, 0);
    assert_null(strstr(t, "hunter2"));
    assert_null(strstr(t, "pr0xy"));
    assert_non_null(strstr(t, "redis.url: redis://alice:****@h:6379/1\n"));
    assert_non_null(strstr(t, "delivery.proxy: http://bob:****@p:3128\n"));
    assert_non_null(strstr(t, "retry.schedule: 30s,2m,10m,1h,4h\n"));
    assert_non_null(strstr(t, "security.allow_cidrs: 10.0.0.0/8,fd00::/8\n"));
    assert_non_null(strstr(t, "delivery.max_response: 64KiB\n"));
    assert_non_null(strstr(t, "delivery.log: true\n"));
    free(t);

    char *j = dump_str(c, 1);
    assert_null(strstr(j, "hunter2"));
    assert_null(strstr(j, "pr0xy"));
    json_error_t je;
    json_t *o = json_loads(j, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "redis.url")),
                        "redis://alice:****@h:6379/1");
    assert_int_equal(json_integer_value(json_object_get(o, "delivery.concurrency")), 64);
    assert_true(json_is_true(json_object_get(o, "delivery.log")));
    json_t *sched = json_object_get(o, "retry.schedule");
    assert_int_equal(json_array_size(sched), 5);
    assert_string_equal(json_string_value(json_array_get(sched, 4)), "4h");
    assert_int_equal(json_array_size(json_object_get(o, "security.allow_cidrs")), 2);
    json_decref(o);
    free(j);
    cfg_free(c);
}

/* dead.maxlen (int64_t count, 0 = unlimited) and events.cache_memory (int64_t bytes, a
 * size like delivery.max_response) from every source, with their errors. */
static void test_dead_maxlen_and_cache_memory(void **state) {
    fx *f = *state;
    char err[HQ_ERRLEN] = "";
    cfg *c = cfg_new();
    write_file(f->path, "dead:\n  maxlen: 250\nevents:\n  cache_memory: 1 MiB\n");
    if (cfg_load_file(c, f->path, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_int_equal(c->dead_maxlen, 250);
    assert_int_equal(c->events_cache_memory, 1048576);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_OK);

    /* Beyond 32 bits, both: the fields are int64_t. */
    char *env[] = {"HOOKQ_DEAD_MAXLEN=5000000000", "HOOKQ_EVENTS_CACHE_MEMORY=8GiB", NULL};
    if (cfg_load_env(c, env, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_int_equal(c->dead_maxlen, 5000000000LL);
    assert_int_equal(c->events_cache_memory, 8LL << 30);
    assert_int_equal(cfg_set(c, "events.cache_memory", "9223372036854775807", err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(c->events_cache_memory, INT64_MAX);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_OK);

    /* Dumped as they are written, and round-trip through the environment. */
    assert_int_equal(cfg_set(c, "events.cache_memory", "96MiB", err, sizeof(err)), HQ_OK);
    char *t = dump_str(c, 0);
    assert_non_null(strstr(t, "\ndead.maxlen: 5000000000\n"));
    assert_non_null(strstr(t, "\nevents.cache_memory: 96MiB\n"));
    free(t);
    char *j = dump_str(c, 1);
    json_error_t je;
    json_t *o = json_loads(j, 0, &je);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "dead.maxlen")), 5000000000LL);
    assert_string_equal(json_string_value(json_object_get(o, "events.cache_memory")), "96MiB");
    json_decref(o);
    free(j);

    /* A failed set keeps the old value. */
    assert_int_equal(cfg_set(c, "dead.maxlen", "many", err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "key 'dead.maxlen': bad integer 'many'");
    assert_int_equal(c->dead_maxlen, 5000000000LL);
    assert_int_equal(cfg_set(c, "events.cache_memory", "9223372036854775808", err, sizeof(err)),
                     HQ_ERR); /* fits the size parser, not int64_t */
    assert_non_null(strstr(err, "key 'events.cache_memory': bad size '9223372036854775808'"));
    assert_int_equal(c->events_cache_memory, 96LL << 20);
    cfg_free(c);

    /* Bad values in a file name the key and the line. */
    yaml_fails(f, "dead:\n  maxlen: lots\n", "2: key 'dead.maxlen': bad integer 'lots'");
    yaml_fails(f, "dead:\n  maxlen: 1.5\n", "2: key 'dead.maxlen': bad integer '1.5'");
    yaml_fails(f, "dead:\n  maxlen: 9223372036854775808\n", "2: key 'dead.maxlen': bad integer");
    yaml_fails(f, "dead:\n  maxlen: [1]\n",
               "2: key 'dead.maxlen': expected a single value, got a list");
    yaml_fails(f, "dead: 100\n", "1: key 'dead': is a section");
    yaml_fails(f, "dead:\n  max_len: 5\n", "2: unknown key 'dead.max_len'");
    yaml_fails(f, "\nevents:\n  cache_memory: 64QB\n",
               "3: key 'events.cache_memory': bad size '64QB' (e.g. 65536, 64KiB, 1MiB)");
    yaml_fails(f, "events:\n  cache_memory: -1MiB\n",
               "2: key 'events.cache_memory': bad size '-1MiB'");
    yaml_fails(f, "events:\n  cache_memory: 1.5GiB\n",
               "2: key 'events.cache_memory': bad size '1.5GiB'");

    /* ... and in the environment, the variable. */
    c = cfg_new();
    char *bad1[] = {"HOOKQ_DEAD_MAXLEN=1e6", NULL};
    assert_int_equal(cfg_load_env(c, bad1, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "HOOKQ_DEAD_MAXLEN: key 'dead.maxlen': bad integer '1e6'");
    char *bad2[] = {"HOOKQ_EVENTS_CACHE_MEMORY=lots", NULL};
    assert_int_equal(cfg_load_env(c, bad2, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "HOOKQ_EVENTS_CACHE_MEMORY: key 'events.cache_memory': bad size"));
    cfg_free(c);

    /* Ranges are checked once every source is in, like every other key's. */
    write_file(f->path, "events:\n  cache_memory: 512KiB\n");
    assert_null(cfg_load(f->path, NULL, err, sizeof(err)));
    assert_string_equal(err, "key 'events.cache_memory': must be at least 1MiB");
}

/* A doc lists every key with its variable and default exactly as the table defines
 * them, and nothing else: docs/config.md (the reference) and README.md (its copy). */
static void check_doc(const char *rel) {
    char path[1024];
    const char *src = __FILE__;
    const char *cut = strstr(src, "tests/unit/test_config.c");
    assert_non_null(cut);
    snprintf(path, sizeof(path), "%.*s%s", (int)(cut - src), src, rel);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open %s", path);
    char *doc = calloc(1, 1 << 18);
    size_t dl = fread(doc, 1, (1 << 18) - 1, fp);
    fclose(fp);
    doc[dl] = '\0';

    cfg *c = cfg_new();
    size_t n;
    char **lines = dump_lines(c, &n);
    for (size_t i = 0; i < n; i++) {
        char key[128], env[160], row[640];
        const char *colon = strstr(lines[i], ": ");
        snprintf(key, sizeof(key), "%.*s", (int)(colon - lines[i]), lines[i]);
        cfg_env_name(key, env, sizeof(env));
        const char *def = colon[2] ? colon + 2 : "\"\"";
        snprintf(row, sizeof(row), "\n| `%s` | `%s` | `%s` | ", key, env, def);
        if (!strstr(doc, row))
            fail_msg("%s lacks the row start '%s'", rel, row + 1);
    }
    /* Count rows of the keys table: lines starting with "| `" followed by "` | `HOOKQ_". */
    size_t rows = 0;
    for (const char *p = doc; (p = strstr(p, "\n| `")); p++) {
        const char *eol = strchr(p + 1, '\n');
        const char *h = strstr(p, "` | `HOOKQ_");
        if (h && (!eol || h < eol))
            rows++;
    }
    assert_int_equal(rows, n);
    free_lines(lines, n);
    free(doc);
    cfg_free(c);
}

static void test_docs_in_sync(void **state) {
    (void)state;
    check_doc("docs/config.md");
    check_doc("README.md");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_yaml_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_empty_and_odd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_file_limits, setup, teardown),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_names),
        cmocka_unit_test(test_env_every_key),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test(test_set),
        cmocka_unit_test_setup_teardown(test_dead_maxlen_and_cache_memory, setup, teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_docs_in_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
