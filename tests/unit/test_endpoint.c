/* test_endpoint.c -- endpoint hash parsing (hand-built HGETALL replies) and the JSON view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "endpoint.h"
#include "hq.h"
#include "timestamp.h"

#define SECRET     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_OLD "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0MTI="

/* An HGETALL-shaped reply from NULL-terminated field/value pairs (static storage). */
typedef struct hash {
    redisReply top;
    redisReply items[64];
    redisReply *ptrs[64];
} hash;

static void build(hash *h, const char *const *kv) {
    size_t n = 0;
    memset(h, 0, sizeof(*h));
    for (; kv[n]; n++) {
        h->items[n].type = REDIS_REPLY_STRING;
        h->items[n].str = (char *)kv[n];
        h->items[n].len = strlen(kv[n]);
        h->ptrs[n] = &h->items[n];
    }
    h->top.type = REDIS_REPLY_ARRAY;
    h->top.elements = n;
    h->top.element = h->ptrs;
}

static const char *const full[] = {"url",
                                   "https://example.com/hook",
                                   "events",
                                   "task:*,mission.completed",
                                   "secret",
                                   SECRET,
                                   "secret_old",
                                   SECRET_OLD,
                                   "secret_old_until",
                                   "2026-11-24T10:00:00.000Z",
                                   "description",
                                   "Team core",
                                   "tenant",
                                   "acme",
                                   "enabled",
                                   "false",
                                   "github_signature",
                                   "true",
                                   "github_secret",
                                   "previous",
                                   "headers",
                                   "[\"X-Team: core\", \"X-Env:  prod \"]",
                                   "created_at",
                                   "2026-11-23T10:00:00.000Z",
                                   "updated_at",
                                   "2026-11-23T10:05:00.500Z",
                                   "disabled_at",
                                   "2026-11-23T11:00:00.000Z",
                                   "disabled_reason",
                                   "410 Gone",
                                   "some_future_field",
                                   "ignored",
                                   NULL};

static void test_from_hash_full(void **state) {
    (void)state;
    hash h;
    char err[HQ_ERRLEN] = "";
    int64_t t;
    build(&h, full);
    ep *e = ep_new();
    if (ep_from_hash(e, "ep_01", &h.top, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_string_equal(e->id, "ep_01");
    assert_string_equal(e->url, "https://example.com/hook");
    assert_int_equal(e->events.n, 2);
    assert_string_equal(e->events.items[0], "task:*");
    assert_string_equal(e->events.items[1], "mission.completed");
    assert_true(pat_list_match(&e->events, "task:created"));
    assert_false(pat_list_match(&e->events, "mission.started"));
    assert_string_equal(e->secret, SECRET);
    assert_string_equal(e->secret_old, SECRET_OLD);
    assert_int_equal(ts_parse_iso("2026-11-24T10:00:00.000Z", &t), HQ_OK);
    assert_int_equal(e->secret_old_until, t);
    assert_string_equal(e->description, "Team core");
    assert_string_equal(e->tenant, "acme");
    assert_int_equal(e->enabled, 0);
    assert_int_equal(e->github_signature, 1);
    assert_int_equal(e->github_secret, EP_GITHUB_SECRET_PREVIOUS);
    assert_int_equal(e->n_headers, 2);
    assert_string_equal(e->header_names[0], "X-Team");
    assert_string_equal(e->header_values[0], "core");
    assert_string_equal(e->header_names[1], "X-Env");
    assert_string_equal(e->header_values[1], "prod");
    assert_int_equal(ts_parse_iso("2026-11-23T10:00:00.000Z", &t), HQ_OK);
    assert_int_equal(e->created_at, t);
    assert_int_equal(e->updated_at, t + 300500);
    assert_int_equal(e->disabled_at, t + 3600000);
    assert_string_equal(e->disabled_reason, "410 Gone");
    ep_free(e);
    ep_free(NULL);
}

static void test_from_hash_minimal(void **state) {
    (void)state;
    hash h;
    char err[HQ_ERRLEN] = "";
    const char *const kv[] = {"url",    "http://h/x", "secret",  SECRET, "description", "",
                              "tenant", "",           "headers", "[]",   "disabled_at", "",
                              NULL};
    build(&h, kv);
    ep *e = ep_new();
    if (ep_from_hash(e, "ep_2", &h.top, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    /* Absent events mean every event; absent enabled means enabled. */
    assert_int_equal(e->events.n, 1);
    assert_string_equal(e->events.items[0], "*");
    assert_int_equal(e->enabled, 1);
    assert_int_equal(e->github_signature, 0);
    assert_null(e->secret_old);
    assert_int_equal(e->secret_old_until, 0);
    assert_null(e->description); /* empty text = none */
    assert_null(e->tenant);
    assert_int_equal(e->n_headers, 0);
    assert_int_equal(e->disabled_at, 0);
    assert_null(e->disabled_reason);
    ep_free(e);
}

/* Replace one field of the full hash (or drop it when value is NULL); expect want. */
static void bad_field(const char *field, const char *value, const char *want) {
    const char *kv[64];
    size_t n = 0;
    hash h;
    char err[HQ_ERRLEN] = "";
    for (size_t i = 0; full[i]; i += 2) {
        if (strcmp(full[i], field) == 0) {
            if (!value)
                continue;
            kv[n++] = full[i];
            kv[n++] = value;
        } else {
            kv[n++] = full[i];
            kv[n++] = full[i + 1];
        }
    }
    kv[n] = NULL;
    build(&h, kv);
    ep *e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_bad", &h.top, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, want))
        fail_msg("%s=%s: '%s' lacks '%s'", field, value ? value : "(absent)", err, want);
    ep_free(e);
}

static void test_from_hash_errors(void **state) {
    (void)state;
    bad_field("enabled", "yes", "endpoint ep_bad: field 'enabled': expected true or false");
    bad_field("github_signature", "1", "field 'github_signature'");
    bad_field("created_at", "yesterday", "field 'created_at': bad time");
    bad_field("secret_old_until", "2026-13-01T00:00:00Z", "field 'secret_old_until'");
    bad_field("events", "task:**", "field 'events'");
    bad_field("headers", "{\"X\": 1}", "field 'headers'");
    bad_field("headers", "[1]", "field 'headers': item 1 is not a string");
    bad_field("headers", "[\"Host: evil\"]", "field 'headers'");
    bad_field("headers", "[\"no colon\"]", "field 'headers'");
    bad_field("url", NULL, "field 'url' is missing");
    bad_field("secret", NULL, "field 'secret' is missing");

    /* Not a hash reply at all. */
    char err[HQ_ERRLEN] = "";
    redisReply s = {.type = REDIS_REPLY_STRING, .str = "x", .len = 1};
    ep *e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_x", &s, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "not a hash reply"));
    hash h;
    const char *const odd[] = {"url", NULL};
    build(&h, odd);
    assert_int_equal(ep_from_hash(e, "ep_x", &h.top, err, sizeof(err)), HQ_ERR);
    ep_free(e);
}

/* A newer hookq may add fields: they are skipped wherever they appear and whatever they
 * hold, while the known fields around them still parse. */
static void test_from_hash_unknown_fields(void **state) {
    (void)state;
    hash h;
    char err[HQ_ERRLEN] = "";
    const char *const kv[] = {"retry_policy",
                              "{\"not\": \"parsed\"}",
                              "url",
                              "http://h/x",
                              "enabled_v2",
                              "maybe",
                              "secret",
                              SECRET,
                              "",
                              "empty name",
                              "enabled",
                              "false",
                              "headers_extra",
                              "[1,2,3]",
                              "created_at_ns",
                              "not a time",
                              NULL};
    build(&h, kv);
    ep *e = ep_new();
    if (ep_from_hash(e, "ep_new", &h.top, err, sizeof(err)) != HQ_OK)
        fail_msg("unknown fields must be ignored: %s", err);
    assert_string_equal(e->url, "http://h/x");
    assert_string_equal(e->secret, SECRET);
    assert_int_equal(e->enabled, 0);
    assert_int_equal(e->n_headers, 0);
    assert_int_equal(e->created_at, 0);
    ep_free(e);

    /* ...but a known field next to them with a bad value still fails, naming both the
     * endpoint and the field. */
    const char *const bad[] = {"retry_policy", "x",       "url", "http://h/x", "secret",
                               SECRET,         "enabled", "1",   NULL};
    build(&h, bad);
    e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_new", &h.top, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "endpoint ep_new: field 'enabled': expected true or false, got '1'");
    ep_free(e);
}

static void test_table_clear(void **state) {
    (void)state;
    ep_table t;
    memset(&t, 0, sizeof(t));
    ep_table_clear(&t); /* an empty table, as a failed load leaves it */
    ep_table_clear(NULL);
    t.eps = calloc(2, sizeof(*t.eps));
    t.bad = calloc(1, sizeof(*t.bad));
    assert_non_null(t.eps);
    assert_non_null(t.bad);
    t.eps[0] = ep_new();
    t.eps[1] = ep_new();
    t.n = 2;
    t.bad[0].id = strdup("ep_x");
    t.bad[0].error = strdup("endpoint ep_x: field 'enabled': bad");
    t.n_bad = 1;
    t.version = 7;
    ep_table_clear(&t);
    assert_null(t.eps);
    assert_null(t.bad);
    assert_int_equal(t.n + t.n_bad, 0);
    assert_int_equal(t.version, 0);
}

static void test_github_secret_field(void **state) {
    (void)state;
    hash h;
    char err[HQ_ERRLEN] = "";
    const char *const kv[] = {"url",           "http://h/x", "secret", SECRET,
                              "github_secret", "previous",   NULL};
    build(&h, kv);
    ep *e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_g", &h.top, err, sizeof(err)), HQ_OK);
    assert_int_equal(e->github_secret, EP_GITHUB_SECRET_PREVIOUS);
    json_t *j = ep_to_json(e, 0);
    assert_string_equal(json_string_value(json_object_get(j, "github_secret")), "previous");
    json_decref(j);
    ep_free(e);

    /* absent: current, today's behaviour */
    const char *const none[] = {"url", "http://h/x", "secret", SECRET, NULL};
    build(&h, none);
    e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_g", &h.top, err, sizeof(err)), HQ_OK);
    assert_int_equal(e->github_secret, EP_GITHUB_SECRET_CURRENT);
    j = ep_to_json(e, 0);
    assert_string_equal(json_string_value(json_object_get(j, "github_secret")), "current");
    json_decref(j);
    ep_free(e);

    bad_field("github_secret", "old", "endpoint ep_bad: field 'github_secret': expected current");
    bad_field("github_secret", "", "field 'github_secret'");
    bad_field("github_secret", "PREVIOUS", "field 'github_secret'");

    ep_github_secret_mode m = EP_GITHUB_SECRET_PREVIOUS;
    assert_int_equal(ep_github_secret_parse("current", &m), HQ_OK);
    assert_int_equal(m, EP_GITHUB_SECRET_CURRENT);
    assert_int_equal(ep_github_secret_parse("previous", &m), HQ_OK);
    assert_int_equal(m, EP_GITHUB_SECRET_PREVIOUS);
    assert_int_equal(ep_github_secret_parse("both", &m), HQ_ERR);
    assert_int_equal(m, EP_GITHUB_SECRET_PREVIOUS); /* untouched on error */
    assert_string_equal(ep_github_secret_name(EP_GITHUB_SECRET_CURRENT), "current");
    assert_string_equal(ep_github_secret_name(EP_GITHUB_SECRET_PREVIOUS), "previous");
}

/* Which secret signs X-Hub-Signature-256: before, within and after a rotation's grace,
 * with both settings, and with no old secret at all. */
static void test_github_secret_choice(void **state) {
    (void)state;
    const int64_t until = 1800000000000LL; /* secret_old_until */
    ep e;
    memset(&e, 0, sizeof(e));
    e.secret = SECRET;

    for (int mode = 0; mode < 2; mode++) {
        e.github_secret = mode ? EP_GITHUB_SECRET_PREVIOUS : EP_GITHUB_SECRET_CURRENT;
        /* no rotation: always the one secret */
        e.secret_old = NULL;
        e.secret_old_until = 0;
        assert_string_equal(ep_github_secret(&e, until - 1), SECRET);
        assert_string_equal(ep_github_secret(&e, 0), SECRET);
        /* an old secret without an end time has no grace left */
        e.secret_old = SECRET_OLD;
        assert_string_equal(ep_github_secret(&e, until - 1), SECRET);
        /* an empty old secret (as a hand-edited hash may hold) is none */
        e.secret_old = "";
        e.secret_old_until = until;
        assert_string_equal(ep_github_secret(&e, until - 1), SECRET);
    }

    e.secret_old = SECRET_OLD;
    e.secret_old_until = until;
    /* current: the new secret at once, during the grace and after it */
    e.github_secret = EP_GITHUB_SECRET_CURRENT;
    assert_string_equal(ep_github_secret(&e, until - 86400000), SECRET);
    assert_string_equal(ep_github_secret(&e, until - 1), SECRET);
    assert_string_equal(ep_github_secret(&e, until), SECRET);
    assert_string_equal(ep_github_secret(&e, until + 1), SECRET);
    /* previous: the old secret while now < secret_old_until (right after the rotation and
     * up to its last millisecond), the new one from secret_old_until on */
    e.github_secret = EP_GITHUB_SECRET_PREVIOUS;
    assert_string_equal(ep_github_secret(&e, until - 86400000), SECRET_OLD);
    assert_string_equal(ep_github_secret(&e, until - 1), SECRET_OLD);
    assert_string_equal(ep_github_secret(&e, until), SECRET);
    assert_string_equal(ep_github_secret(&e, until + 86400000), SECRET);
    /* the string returned is e's own, not a copy */
    assert_ptr_equal(ep_github_secret(&e, until - 1), e.secret_old);
    assert_ptr_equal(ep_github_secret(&e, until), e.secret);
}

static void test_to_json(void **state) {
    (void)state;
    hash h;
    char err[HQ_ERRLEN] = "";
    build(&h, full);
    ep *e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_01", &h.top, err, sizeof(err)), HQ_OK);

    json_t *j = ep_to_json(e, 0);
    assert_non_null(j);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "whsec_")); /* neither secret, in any field */
    free(text);
    assert_null(json_object_get(j, "secret"));
    assert_null(json_object_get(j, "secret_old"));
    assert_string_equal(json_string_value(json_object_get(j, "id")), "ep_01");
    assert_string_equal(json_string_value(json_object_get(j, "url")), "https://example.com/hook");
    json_t *ev = json_object_get(j, "events");
    assert_int_equal(json_array_size(ev), 2);
    assert_string_equal(json_string_value(json_array_get(ev, 0)), "task:*");
    assert_true(json_is_false(json_object_get(j, "enabled")));
    assert_true(json_is_true(json_object_get(j, "github_signature")));
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "acme");
    json_t *hs = json_object_get(j, "headers");
    assert_int_equal(json_array_size(hs), 2);
    assert_string_equal(json_string_value(json_array_get(hs, 1)), "X-Env: prod");
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-11-23T10:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2026-11-23T10:05:00.500Z");
    assert_string_equal(json_string_value(json_object_get(j, "secret_old_until")),
                        "2026-11-24T10:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "disabled_reason")), "410 Gone");
    json_decref(j);

    j = ep_to_json(e, 1);
    assert_string_equal(json_string_value(json_object_get(j, "secret")), SECRET);
    assert_string_equal(json_string_value(json_object_get(j, "secret_old")), SECRET_OLD);
    json_decref(j);
    ep_free(e);

    /* Absent optional fields are JSON null, not missing or empty strings. */
    const char *const kv[] = {"url", "http://h/", "secret", SECRET, NULL};
    build(&h, kv);
    e = ep_new();
    assert_int_equal(ep_from_hash(e, "ep_3", &h.top, err, sizeof(err)), HQ_OK);
    j = ep_to_json(e, 1);
    assert_true(json_is_null(json_object_get(j, "tenant")));
    assert_true(json_is_null(json_object_get(j, "description")));
    assert_true(json_is_null(json_object_get(j, "disabled_at")));
    assert_true(json_is_null(json_object_get(j, "secret_old_until")));
    assert_null(json_object_get(j, "secret_old"));
    assert_true(json_is_true(json_object_get(j, "enabled")));
    assert_int_equal(json_array_size(json_object_get(j, "headers")), 0);
    json_decref(j);
    ep_free(e);
}

/* ---- policies ------------------------------------------------------------------ */

static void test_rate_parse(void **state) {
    (void)state;
    int64_t n = -1, w = -1;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(ep_rate_parse("50/s", &n, &w, err, sizeof err), HQ_OK);
    assert_int_equal(n, 50);
    assert_int_equal(w, 1000);
    assert_int_equal(ep_rate_parse("3000/m", &n, &w, err, sizeof err), HQ_OK);
    assert_int_equal(w, 60000);
    assert_int_equal(ep_rate_parse("1000000/h", &n, &w, err, sizeof err), HQ_OK);
    assert_int_equal(n, 1000000);
    assert_int_equal(w, 3600000);
    static const char *const bad[] = {"0/s",  "5/x",  "/s",   "5",   "-1/s",  "1000001/s", "",
                                      "5/s ", " 5/s", "+5/s", "5/S", "5/sec", "none"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = w = 7;
        err[0] = '\0';
        if (ep_rate_parse(bad[i], &n, &w, err, sizeof err) != HQ_ERR)
            fail_msg("rate '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "bad rate"));
        assert_int_equal(n, 7); /* untouched on error */
        assert_int_equal(w, 7);
    }
    char buf[32];
    ep_rate_format(50, 1000, buf, sizeof buf);
    assert_string_equal(buf, "50/s");
    ep_rate_format(3000, 60000, buf, sizeof buf);
    assert_string_equal(buf, "3000/m");
    ep_rate_format(10, 3600000, buf, sizeof buf);
    assert_string_equal(buf, "10/h");
}

static void test_order_key_parse(void **state) {
    (void)state;
    char err[HQ_ERRLEN] = "", *k = NULL;
    static const char *const ok[][2] = {{"tenant", "tenant"},
                                        {"task_id", "data.task_id"},
                                        {"data.task_id", "data.task_id"},
                                        {"data.tenant", "data.tenant"},
                                        {"A-b_9", "data.A-b_9"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(ep_order_key_parse(ok[i][0], &k, err, sizeof err), HQ_OK);
        assert_string_equal(k, ok[i][1]);
        free(k);
        k = NULL;
    }
    char long_name[80];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    const char *const bad[] = {"", "data.", "a.b", "data.a.b", "x y", "a:b", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (ep_order_key_parse(bad[i], &k, err, sizeof err) != HQ_ERR)
            fail_msg("order key '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "bad order key"));
    }
    long_name[64] = '\0'; /* 64 is the limit */
    assert_int_equal(ep_order_key_parse(long_name, &k, err, sizeof err), HQ_OK);
    free(k);
}

static void test_on_disabled_and_breaker_names(void **state) {
    (void)state;
    ep_on_disabled m = EP_DISABLED_DROP;
    assert_int_equal(ep_on_disabled_parse("hold", &m), HQ_OK);
    assert_int_equal(m, EP_DISABLED_HOLD);
    assert_int_equal(ep_on_disabled_parse("drop", &m), HQ_OK);
    assert_int_equal(m, EP_DISABLED_DROP);
    assert_int_equal(ep_on_disabled_parse("Hold", &m), HQ_ERR);
    assert_int_equal(ep_on_disabled_parse("", &m), HQ_ERR);
    assert_string_equal(ep_on_disabled_name(EP_DISABLED_HOLD), "hold");
    assert_string_equal(ep_on_disabled_name(EP_DISABLED_DROP), "drop");
    assert_string_equal(ep_breaker_name(EP_BREAKER_CLOSED), "closed");
    assert_string_equal(ep_breaker_name(EP_BREAKER_OPEN), "open");
    assert_string_equal(ep_breaker_name(EP_BREAKER_HALF_OPEN), "half_open");
}

/* The minimal hash plus extra field/value pairs. */
static int parse_with(ep **out, const char *const *extra, char *err, size_t errlen) {
    const char *kv[64] = {"url", "http://h/x", "secret", SECRET};
    size_t n = 4;
    hash h;
    for (; *extra && n < 62; extra++)
        kv[n++] = *extra;
    kv[n] = NULL;
    build(&h, kv);
    *out = ep_new();
    return ep_from_hash(*out, "ep_p", &h.top, err, errlen);
}

static void test_from_hash_policies(void **state) {
    (void)state;
    char err[HQ_ERRLEN] = "";
    ep *e;
    const char *const all[] = {"ordered",
                               "true",
                               "order_key",
                               "data.task_id",
                               "rate",
                               "3000/m",
                               "max_in_flight",
                               "8",
                               "on_disabled",
                               "hold",
                               "hold_max",
                               "500",
                               "lanes",
                               "true",
                               "breaker",
                               "open",
                               "breaker_until",
                               "1764600030000",
                               "breaker_opened_at",
                               "2025-12-01T14:40:00.000Z",
                               NULL};
    assert_int_equal(parse_with(&e, all, err, sizeof err), HQ_OK);
    assert_true(e->ordered);
    assert_string_equal(e->order_key, "data.task_id");
    assert_int_equal(e->rate_n, 3000);
    assert_int_equal(e->rate_window_ms, 60000);
    assert_int_equal(e->max_in_flight, 8);
    assert_int_equal(e->on_disabled, EP_DISABLED_HOLD);
    assert_int_equal(e->hold_max, 500);
    assert_true(e->lanes);
    assert_int_equal(e->breaker, EP_BREAKER_OPEN);
    assert_int_equal(e->breaker_until, 1764600030000LL);
    assert_int_equal(e->breaker_opened_at, 1764600000000LL);
    json_t *j = ep_to_json(e, 0), *p = json_object_get(j, "policy");
    assert_string_equal(json_string_value(json_object_get(p, "rate")), "3000/m");
    assert_string_equal(json_string_value(json_object_get(p, "order_key")), "data.task_id");
    assert_int_equal(json_integer_value(json_object_get(p, "max_in_flight")), 8);
    assert_string_equal(json_string_value(json_object_get(j, "breaker")), "open");
    json_decref(j);
    ep_free(e);

    /* Absent: no policy, and the JSON says so. */
    const char *const none[] = {NULL};
    assert_int_equal(parse_with(&e, none, err, sizeof err), HQ_OK);
    assert_false(e->ordered);
    assert_null(e->order_key);
    assert_int_equal(e->rate_n, 0);
    assert_int_equal(e->max_in_flight, 0);
    assert_int_equal(e->on_disabled, EP_DISABLED_DROP);
    assert_int_equal(e->breaker, EP_BREAKER_CLOSED);
    j = ep_to_json(e, 0);
    p = json_object_get(j, "policy");
    assert_true(json_is_null(json_object_get(p, "rate")));
    assert_int_equal(json_integer_value(json_object_get(p, "hold_max")), EP_HOLD_MAX_DEFAULT);
    json_decref(j);
    ep_free(e);

    /* Empty values read as unset (an HSET of "" by hand). */
    const char *const empty[] = {"rate", "", "order_key", "", "breaker", "", NULL};
    assert_int_equal(parse_with(&e, empty, err, sizeof err), HQ_OK);
    assert_int_equal(e->rate_n, 0);
    assert_null(e->order_key);
    ep_free(e);
}

static void test_from_hash_policy_errors(void **state) {
    (void)state;
    static const char *const cases[][3] = {
        {"rate", "5/x", "endpoint ep_p: field 'rate': bad rate '5/x'"},
        {"rate", "0/s", "field 'rate'"},
        {"ordered", "yes", "field 'ordered'"},
        {"order_key", "a.b", "field 'order_key': bad order key"},
        {"max_in_flight", "-1", "field 'max_in_flight'"},
        {"max_in_flight", "1000001", "field 'max_in_flight'"},
        {"hold_max", "x", "field 'hold_max'"},
        {"on_disabled", "keep", "field 'on_disabled': expected drop or hold"},
        {"breaker", "ajar", "field 'breaker'"},
        {"breaker_until", "soon", "field 'breaker_until'"},
        {"lanes", "1", "field 'lanes'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[HQ_ERRLEN] = "";
        const char *const kv[] = {cases[i][0], cases[i][1], NULL};
        ep *e;
        assert_int_equal(parse_with(&e, kv, err, sizeof err), HQ_ERR);
        if (!strstr(err, cases[i][2]))
            fail_msg("%s=%s: '%s' lacks '%s'", cases[i][0], cases[i][1], err, cases[i][2]);
        ep_free(e);
    }
}

static void test_uses_lanes(void **state) {
    (void)state;
    ep *e = ep_new();
    assert_false(ep_uses_lanes(e));
    assert_false(ep_claims_lanes(e));
    e->ordered = 1;
    assert_true(ep_uses_lanes(e));
    e->ordered = 0;
    e->rate_n = 5;
    e->rate_window_ms = 1000;
    assert_true(ep_uses_lanes(e));
    e->rate_n = 0;
    e->max_in_flight = 2;
    assert_true(ep_uses_lanes(e));
    e->max_in_flight = 0;
    e->breaker = EP_BREAKER_HALF_OPEN;
    assert_true(ep_uses_lanes(e));
    e->breaker = EP_BREAKER_CLOSED;
    /* hold only matters while disabled */
    e->on_disabled = EP_DISABLED_HOLD;
    assert_false(ep_uses_lanes(e));
    e->enabled = 0;
    assert_true(ep_uses_lanes(e));
    e->on_disabled = EP_DISABLED_DROP;
    assert_false(ep_uses_lanes(e));
    /* lanes once used: still claimed from, though no policy routes jobs there */
    e->lanes = 1;
    assert_false(ep_uses_lanes(e));
    assert_true(ep_claims_lanes(e));
    ep_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_hash_full),
        cmocka_unit_test(test_from_hash_minimal),
        cmocka_unit_test(test_from_hash_errors),
        cmocka_unit_test(test_from_hash_unknown_fields),
        cmocka_unit_test(test_table_clear),
        cmocka_unit_test(test_github_secret_field),
        cmocka_unit_test(test_github_secret_choice),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_order_key_parse),
        cmocka_unit_test(test_on_disabled_and_breaker_names),
        cmocka_unit_test(test_from_hash_policies),
        cmocka_unit_test(test_from_hash_policy_errors),
        cmocka_unit_test(test_uses_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
