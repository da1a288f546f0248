/* test_evp.c -- envelope validation from stream fields and the receiver body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evp.h"
#include "hq.h"

#define MAXF 16

/* Stream fields built up by a test: names and values as (pointer, length) pairs. */
typedef struct fields {
    size_t n;
    const char *names[MAXF];
    size_t nlens[MAXF];
    const char *vals[MAXF];
    size_t vlens[MAXF];
} fields;

static void addb(fields *f, const char *name, const char *val, size_t vlen) {
    assert_true(f->n < MAXF);
    f->names[f->n] = name;
    f->nlens[f->n] = strlen(name);
    f->vals[f->n] = val;
    f->vlens[f->n] = vlen;
    f->n++;
}

static void add(fields *f, const char *name, const char *val) {
    addb(f, name, val, strlen(val));
}

static int parse(evp *e, const fields *f, const evp_limits *lim, char *err, size_t errlen) {
    return evp_from_fields(e, "1700000000000-7", f->n, f->names, f->nlens, f->vals, f->vlens, lim,
                           err, errlen);
}

static void std_fields(fields *f) {
    memset(f, 0, sizeof(*f));
    add(f, "id", "evt_abc");
    add(f, "type", "task:transition");
    add(f, "ts", "1614265330123");
    add(f, "data", "{\"a\": [1, 2, {\"b\": null}]}");
}

/* The whole entry must be refused with a reason containing needle; e stays zeroed. */
static void expect_reject(const fields *f, const evp_limits *lim, const char *needle) {
    evp e;
    memset(&e, 0x5a, sizeof(e));
    char err[HQ_ERRLEN] = "";
    assert_int_equal(parse(&e, f, lim, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, needle))
        fail_msg("reason '%s' lacks '%s'", err, needle);
    assert_null(e.id);
    assert_null(e.type);
    assert_null(e.data);
    assert_null(e.tenant);
    assert_null(e.endpoint);
}

static void test_full_envelope(void **state) {
    fields f;
    std_fields(&f);
    add(&f, "tenant", "acme.eu:1_x-y");
    add(&f, "endpoint", "ep_01JDX3");
    add(&f, "unknown", "ignored");
    evp e;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_string_equal(e.id, "evt_abc");
    assert_string_equal(e.type, "task:transition");
    assert_int_equal(e.ts, INT64_C(1614265330123));
    assert_int_equal(e.datalen, strlen(f.vals[3]));
    assert_memory_equal(e.data, f.vals[3], e.datalen);
    assert_string_equal(e.tenant, "acme.eu:1_x-y");
    assert_string_equal(e.endpoint, "ep_01JDX3");
    /* copies, not borrowed pointers */
    assert_ptr_not_equal(e.data, f.vals[3]);
    evp_clear(&e);
    assert_null(e.id);
    assert_null(e.data);
    assert_int_equal(e.datalen, 0);
    evp_clear(&e);
    evp_clear(NULL);
}

static void test_defaults_from_stream_id(void **state) {
    fields f = {0};
    add(&f, "type", "message.received");
    add(&f, "data", "42");
    evp e;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_string_equal(e.id, "evt_17000000000007");
    assert_int_equal(e.ts, INT64_C(1700000000000));
    assert_null(e.tenant);
    assert_null(e.endpoint);
    evp_clear(&e);

    assert_int_equal(
        evp_from_fields(&e, "5-12", f.n, f.names, f.nlens, f.vals, f.vlens, NULL, err, sizeof(err)),
        HQ_OK);
    assert_string_equal(e.id, "evt_512");
    assert_int_equal(e.ts, 5);
    evp_clear(&e);

    /* given id and ts win over the stream id */
    add(&f, "id", "evt_x");
    add(&f, "ts", "0");
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_string_equal(e.id, "evt_x");
    assert_int_equal(e.ts, 0);
    evp_clear(&e);
}

static void test_bad_stream_id_only_matters_for_defaults(void **state) {
    static const char *const bad[] = {NULL, "", "abc", "17-", "-1", "1x-0", "1-0x", "1700"};
    fields f = {0};
    add(&f, "type", "a");
    add(&f, "data", "{}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        evp e;
        char err[HQ_ERRLEN] = "";
        assert_int_equal(evp_from_fields(&e, bad[i], f.n, f.names, f.nlens, f.vals, f.vlens, NULL,
                                         err, sizeof(err)),
                         HQ_ERR);
        assert_non_null(strstr(err, "field 'id' is missing"));
    }
    fields g;
    std_fields(&g);
    evp e;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(
        evp_from_fields(&e, "junk", g.n, g.names, g.nlens, g.vals, g.vlens, NULL, err, sizeof(err)),
        HQ_OK);
    evp_clear(&e);
    /* id given, ts missing: the stream id is needed for ts */
    fields h = {0};
    add(&h, "id", "evt_1");
    add(&h, "type", "a");
    add(&h, "data", "{}");
    assert_int_equal(
        evp_from_fields(&e, "junk", h.n, h.names, h.nlens, h.vals, h.vlens, NULL, err, sizeof(err)),
        HQ_ERR);
    assert_non_null(strstr(err, "field 'ts' is missing"));
}

static void test_missing_and_duplicate(void **state) {
    fields f = {0};
    add(&f, "id", "evt_1");
    add(&f, "data", "{}");
    expect_reject(&f, NULL, "field 'type' is missing");

    memset(&f, 0, sizeof(f));
    add(&f, "type", "a.b");
    expect_reject(&f, NULL, "field 'data' is missing");

    std_fields(&f);
    add(&f, "type", "other");
    expect_reject(&f, NULL, "field 'type' appears twice");

    /* field names are exact and case-sensitive */
    memset(&f, 0, sizeof(f));
    add(&f, "Type", "a");
    add(&f, "data", "{}");
    expect_reject(&f, NULL, "field 'type' is missing");
    memset(&f, 0, sizeof(f));
    add(&f, "typ", "a");
    add(&f, "types", "a");
    add(&f, "data", "{}");
    expect_reject(&f, NULL, "field 'type' is missing");

    /* no fields at all */
    evp e;
    char err[HQ_ERRLEN];
    assert_int_equal(evp_from_fields(&e, "1-0", 0, NULL, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     HQ_ERR);
    assert_non_null(strstr(err, "field 'type' is missing"));
}

/* A valid entry minus the field `skip`, so a test can add its own version of it. */
static void base_without(fields *f, const char *skip) {
    memset(f, 0, sizeof(*f));
    if (strcmp(skip, "id") != 0)
        add(f, "id", "evt_1");
    if (strcmp(skip, "type") != 0)
        add(f, "type", "a.b");
    if (strcmp(skip, "ts") != 0)
        add(f, "ts", "1");
    add(f, "data", "{}");
}

static void test_bad_id_type_tenant_endpoint(void **state) {
    static const struct {
        const char *field, *value, *needle;
    } cases[] = {
        {"id", "", "field 'id' is empty"},
        {"id", "evt.1", "field 'id'"},
        {"id", "evt 1", "field 'id'"},
        {"id", "evt:1", "field 'id'"},
        {"type", "", "field 'type' is empty"},
        {"type", "a b", "field 'type'"},
        {"type", "a..b", "field 'type'"},
        {"type", "task:*", "field 'type'"},
        {"type", "\xff", "field 'type'"},
        {"tenant", "", "field 'tenant' is empty"},
        {"tenant", "a/b", "field 'tenant'"},
        {"tenant", "a b", "field 'tenant'"},
        {"tenant", "caf\xc3\xa9", "field 'tenant'"},
        {"endpoint", "", "field 'endpoint' is empty"},
        {"endpoint", "ep.1", "field 'endpoint'"},
        {"ts", "", "field 'ts'"},
        {"ts", "-1", "field 'ts'"},
        {"ts", "12a", "field 'ts'"},
        {"ts", "1.5", "field 'ts'"},
        {"ts", " 1", "field 'ts'"},
        {"ts", "99999999999999999999", "field 'ts'"},
        {"ts", "9223372036854775808", "field 'ts'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fields f;
        base_without(&f, cases[i].field);
        add(&f, cases[i].field, cases[i].value);
        expect_reject(&f, NULL, cases[i].needle);
    }
    /* NUL bytes inside text fields */
    static const char *const text[] = {"id", "type", "tenant", "endpoint"};
    for (size_t i = 0; i < 4; i++) {
        fields f;
        base_without(&f, text[i]);
        addb(&f, text[i], "ab\0cd", 5);
        expect_reject(&f, NULL, "contains a NUL byte");
    }
    /* the largest ts that fits */
    fields f;
    base_without(&f, "ts");
    add(&f, "ts", "9223372036854775807");
    evp e;
    char err[HQ_ERRLEN];
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_int_equal(e.ts, INT64_MAX);
    evp_clear(&e);
}

static void test_field_lengths(void **state) {
    /* ID_MAX (128) for ids and endpoints, 128 for types and tenants; checked before
     * copying, so a huge value costs nothing */
    static const char *const names[] = {"id", "type", "tenant", "endpoint"};
    char big[300];
    memset(big, 'a', sizeof(big));
    for (size_t i = 0; i < 4; i++) {
        fields f;
        base_without(&f, names[i]);
        addb(&f, names[i], big, 128);
        evp e;
        char err[HQ_ERRLEN] = "";
        if (parse(&e, &f, NULL, err, sizeof(err)) != HQ_OK)
            fail_msg("%s of 128 bytes rejected: %s", names[i], err);
        evp_clear(&e);
        f.vlens[f.n - 1] = 129;
        expect_reject(&f, NULL, "longer than");
        f.vlens[f.n - 1] = 300;
        expect_reject(&f, NULL, "longer than");
    }
}

static void check_data_ok(const char *d, const evp_limits *lim) {
    char err[HQ_ERRLEN] = "";
    if (evp_check_data(d, strlen(d), lim, err, sizeof(err)) != HQ_OK)
        fail_msg("rejected data '%s': %s", d, err);
}

static void check_data_bad(const char *d, size_t len, const evp_limits *lim, const char *needle) {
    char err[HQ_ERRLEN] = "";
    assert_int_equal(evp_check_data(d, len, lim, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, needle))
        fail_msg("reason '%s' lacks '%s'", err, needle);
    /* through the stream path the reason names the field */
    fields f = {0};
    add(&f, "type", "a");
    addb(&f, "data", d, len);
    char err2[HQ_ERRLEN] = "";
    evp e;
    assert_int_equal(parse(&e, &f, lim, err2, sizeof(err2)), HQ_ERR);
    assert_memory_equal(err2, "field 'data': ", 14);
    assert_string_equal(err2 + 14, err);
}

static void test_data_json(void **state) {
    check_data_ok("{}", NULL);
    check_data_ok("[]", NULL);
    check_data_ok("0", NULL);
    check_data_ok("\"text\"", NULL);
    check_data_ok("null", NULL);
    check_data_ok("true", NULL);
    check_data_ok("  {\"a\" : 1 }\n", NULL);
    check_data_ok("{\"a\":1,\"a\":2}", NULL);                      /* duplicates are JSON */
    check_data_ok("{\"n\":123456789012345678901234567890}", NULL); /* big integer */
    check_data_ok("[1.5e300,-0,0.1]", NULL);
    check_data_ok("\"\\u0000 escaped NUL is fine\"", NULL);
    check_data_ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", NULL);
    check_data_ok("\"\\ud83d\\ude00\"", NULL);
    check_data_ok("\"brackets [[[[ {{{{ in strings do not nest\"", NULL);

    check_data_bad("", 0, NULL, "empty");
    check_data_bad("{", 1, NULL, "invalid JSON");
    check_data_bad("{} {}", 5, NULL, "invalid JSON");
    check_data_bad("{'a':1}", 7, NULL, "invalid JSON");
    check_data_bad("[1,]", 4, NULL, "invalid JSON");
    check_data_bad("nul", 3, NULL, "invalid JSON");
    check_data_bad("]", 1, NULL, "invalid JSON");
    check_data_bad("{\"a\":1}}", 8, NULL, "invalid JSON");
    check_data_bad("\"unterminated", 13, NULL, "invalid JSON");
    check_data_bad("NaN", 3, NULL, "invalid JSON");
}

static void test_data_bytes(void **state) {
    check_data_bad("{\"a\":\"x\0y\"}", 11, NULL, "NUL byte at offset 7");
    check_data_bad("{}\0", 3, NULL, "NUL byte at offset 2");
    /* invalid UTF-8: stray continuation, overlong, surrogate, > U+10FFFF, truncated,
     * bad continuation, 0xff */
    check_data_bad("\"\x80\"", 3, NULL, "invalid UTF-8 at offset 1");
    check_data_bad("\"\xc0\xaf\"", 4, NULL, "invalid UTF-8");
    check_data_bad("\"\xe0\x80\xaf\"", 5, NULL, "invalid UTF-8");
    check_data_bad("\"\xed\xa0\x80\"", 5, NULL, "invalid UTF-8");
    check_data_bad("\"\xf4\x90\x80\x80\"", 6, NULL, "invalid UTF-8");
    check_data_bad("\"\xf0\x80\x80\x80\"", 6, NULL, "invalid UTF-8");
    check_data_bad("\"\xe2\x82\"", 4, NULL, "invalid UTF-8");
    check_data_bad("\"\xe2\x82", 3, NULL, "invalid UTF-8 at offset 1");
    check_data_bad("\"\xc3\x28\"", 4, NULL, "invalid UTF-8");
    check_data_bad("\"\xff\"", 3, NULL, "invalid UTF-8");
    check_data_bad("\"\xf5\x80\x80\x80\"", 6, NULL, "invalid UTF-8");
    /* the largest code point is fine */
    check_data_ok("\"\xf4\x8f\xbf\xbf\"", NULL);
}

static void test_data_limits(void **state) {
    evp_limits lim = {.max_payload = 10, .max_depth = 3};
    check_data_ok("[1,2,3,45]", &lim); /* exactly 10 bytes */
    check_data_bad("[1,2,3,456]", 11, &lim, "11 bytes, over the limit of 10");
    check_data_ok("[[[]]]", &lim);
    check_data_ok("[[1],[2]]", &lim);
    check_data_bad("[[[[]]]]", 8, &lim, "deeper than 3");
    check_data_ok("{\"a\":[{}]}", &lim); /* exactly 3 */
    evp_limits lim2 = {.max_payload = 100, .max_depth = 3};
    check_data_bad("{\"a\":[{\"b\":[]}]}", 15, &lim2, "deeper than 3");
    check_data_ok("[\"[[[[\"]", &lim);     /* brackets inside a string */
    check_data_ok("[\"\\\"[[[[\"]", &lim); /* ... after an escaped quote */

    /* defaults: depth 32 and 1 MiB */
    char deep[80];
    memset(deep, '[', 32);
    memset(deep + 32, ']', 32);
    deep[64] = '\0';
    check_data_ok(deep, NULL);
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    check_data_bad(deep, 66, NULL, "deeper than 32");

    /* a megabyte of '[' is refused by the scan, not by a recursive parser */
    size_t n = 1024 * 1024;
    char *huge = malloc(n);
    assert_non_null(huge);
    memset(huge, '[', n);
    check_data_bad(huge, n, NULL, "deeper than 32");
    check_data_bad(huge, n, &(evp_limits){.max_payload = n - 1}, "over the limit");
    /* exactly 1 MiB of valid JSON passes by default, one byte more does not */
    huge[0] = '"';
    memset(huge + 1, 'x', n - 2);
    huge[n - 1] = '"';
    char err[HQ_ERRLEN];
    assert_int_equal(evp_check_data(huge, n, NULL, err, sizeof(err)), HQ_OK);
    char *more = malloc(n + 1);
    assert_non_null(more);
    memcpy(more, huge, n - 1);
    more[n - 1] = 'x';
    more[n] = '"';
    assert_int_equal(evp_check_data(more, n + 1, NULL, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "over the limit of 1048576"));
    free(more);
    free(huge);
}

static void test_tenant_valid(void **state) {
    char err[HQ_ERRLEN];
    assert_int_equal(evp_tenant_valid("acme", err, sizeof(err)), HQ_OK);
    assert_int_equal(evp_tenant_valid("A-Z_a.z:0-9", err, sizeof(err)), HQ_OK);
    assert_int_equal(evp_tenant_valid(NULL, err, sizeof(err)), HQ_ERR);
    assert_int_equal(evp_tenant_valid("", err, sizeof(err)), HQ_ERR);
    assert_int_equal(evp_tenant_valid("a,b", err, sizeof(err)), HQ_ERR);
    assert_int_equal(evp_tenant_valid("a\"b", err, sizeof(err)), HQ_ERR);
    char t[130];
    memset(t, 't', 128);
    t[128] = '\0';
    assert_int_equal(evp_tenant_valid(t, err, sizeof(err)), HQ_OK);
    t[128] = 't';
    t[129] = '\0';
    assert_int_equal(evp_tenant_valid(t, err, sizeof(err)), HQ_ERR);
}

static void test_body_exact(void **state) {
    fields f;
    std_fields(&f);
    evp e;
    char err[HQ_ERRLEN];
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    size_t len = 0;
    char *b = evp_body(&e, &len);
    assert_non_null(b);
    /* 1614265330123 is 2021-02-25T15:02:10.123Z (date -u -d @1614265330) */
    const char *want = "{\"id\":\"evt_abc\",\"type\":\"task:transition\","
                       "\"timestamp\":\"2021-02-25T15:02:10.123Z\","
                       "\"data\":{\"a\": [1, 2, {\"b\": null}]}}";
    assert_string_equal(b, want);
    assert_int_equal(len, strlen(want));
    free(b);
    evp_clear(&e);

    /* tenant last; data with odd spacing kept byte for byte */
    memset(&f, 0, sizeof(f));
    add(&f, "type", "invoice.paid.v2");
    add(&f, "data", " [ 1 ,\n\t\"\\u00e9\" ] ");
    add(&f, "tenant", "t1");
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    b = evp_body(&e, &len);
    assert_non_null(b);
    /* 1700000000000 is 2023-11-14T22:13:20.000Z (date -u -d @1700000000) */
    want = "{\"id\":\"evt_17000000000007\",\"type\":\"invoice.paid.v2\","
           "\"timestamp\":\"2023-11-14T22:13:20.000Z\","
           "\"data\": [ 1 ,\n\t\"\\u00e9\" ] ,\"tenant\":\"t1\"}";
    assert_string_equal(b, want);
    assert_int_equal(len, strlen(want));
    /* the body is itself valid JSON */
    assert_int_equal(evp_check_data(b, len, NULL, err, sizeof(err)), HQ_OK);
    free(b);
    evp_clear(&e);
}

static void test_body_escapes_hand_built(void **state) {
    /* an evp built by hand (not from fields) still yields valid JSON */
    evp e = {0};
    e.id = "a\"b\\c";
    e.type = "t\n";
    e.ts = 0;
    e.data = "1";
    e.datalen = 1;
    e.tenant = "x\x01";
    size_t len;
    char *b = evp_body(&e, &len);
    assert_non_null(b);
    assert_string_equal(b, "{\"id\":\"a\\\"b\\\\c\",\"type\":\"t\\u000a\","
                           "\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":1,"
                           "\"tenant\":\"x\\u0001\"}");
    assert_int_equal(len, strlen(b));
    char err[HQ_ERRLEN];
    assert_int_equal(evp_check_data(b, len, NULL, err, sizeof(err)), HQ_OK);
    free(b);
    assert_null(evp_body(NULL, &len));
    evp none = {0};
    assert_null(evp_body(&none, &len));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_envelope),
        cmocka_unit_test(test_defaults_from_stream_id),
        cmocka_unit_test(test_bad_stream_id_only_matters_for_defaults),
        cmocka_unit_test(test_missing_and_duplicate),
        cmocka_unit_test(test_bad_id_type_tenant_endpoint),
        cmocka_unit_test(test_field_lengths),
        cmocka_unit_test(test_data_json),
        cmocka_unit_test(test_data_bytes),
        cmocka_unit_test(test_data_limits),
        cmocka_unit_test(test_tenant_valid),
        cmocka_unit_test(test_body_exact),
        cmocka_unit_test(test_body_escapes_hand_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
