/* test_envelope.c -- envelope validation from stream fields and the receiver body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
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

static int parse(envelope *e, const fields *f, const envelope_limits *lim, char *err,
                 size_t errlen) {
    return envelope_from_fields(e, "1700000000000-7", f->n, f->names, f->nlens, f->vals, f->vlens,
                                lim, err, errlen);
}

static void std_fields(fields *f) {
    memset(f, 0, sizeof(*f));
    add(f, "id", "evt_abc");
    add(f, "type", "task:transition");
    add(f, "ts", "1614265330123");
    add(f, "data", "{\"a\": [1, 2, {\"b\": null}]}");
}

/* The whole entry must be refused with a reason containing needle; e stays zeroed. */
static void expect_reject(const fields *f, const envelope_limits *lim, const char *needle) {
    envelope e;
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
    envelope e;
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
    envelope_clear(&e);
    assert_null(e.id);
    assert_null(e.data);
    assert_int_equal(e.datalen, 0);
    envelope_clear(&e);
    envelope_clear(NULL);
}

static void test_defaults_from_stream_id(void **state) {
    fields f = {0};
    add(&f, "type", "message.received");
    add(&f, "data", "42");
    envelope e;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_string_equal(e.id, "evt_17000000000007");
    assert_int_equal(e.ts, INT64_C(1700000000000));
    assert_null(e.tenant);
    assert_null(e.endpoint);
    envelope_clear(&e);

    assert_int_equal(envelope_from_fields(&e, "5-12", f.n, f.names, f.nlens, f.vals, f.vlens, NULL,
                                          err, sizeof(err)),
                     HQ_OK);
    assert_string_equal(e.id, "evt_512");
    assert_int_equal(e.ts, 5);
    envelope_clear(&e);

    /* given id and ts win over the stream id */
    add(&f, "id", "evt_x");
    add(&f, "ts", "0");
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_string_equal(e.id, "evt_x");
    assert_int_equal(e.ts, 0);
    envelope_clear(&e);
}

static void test_bad_stream_id_only_matters_for_defaults(void **state) {
    static const char *const bad[] = {NULL, "", "abc", "17-", "-1", "1x-0", "1-0x", "1700"};
    fields f = {0};
    add(&f, "type", "a");
    add(&f, "data", "{}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        envelope e;
        char err[HQ_ERRLEN] = "";
        assert_int_equal(envelope_from_fields(&e, bad[i], f.n, f.names, f.nlens, f.vals, f.vlens,
                                              NULL, err, sizeof(err)),
                         HQ_ERR);
        assert_non_null(strstr(err, "field 'id' is missing"));
    }
    fields g;
    std_fields(&g);
    envelope e;
    char err[HQ_ERRLEN] = "";
    assert_int_equal(envelope_from_fields(&e, "junk", g.n, g.names, g.nlens, g.vals, g.vlens, NULL,
                                          err, sizeof(err)),
                     HQ_OK);
    envelope_clear(&e);
    /* id given, ts missing: the stream id is needed for ts */
    fields h = {0};
    add(&h, "id", "evt_1");
    add(&h, "type", "a");
    add(&h, "data", "{}");
    assert_int_equal(envelope_from_fields(&e, "junk", h.n, h.names, h.nlens, h.vals, h.vlens, NULL,
                                          err, sizeof(err)),
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
    envelope e;
    char err[HQ_ERRLEN];
    assert_int_equal(
        envelope_from_fields(&e, "1-0", 0, NULL, NULL, NULL, NULL, NULL, err, sizeof(err)), HQ_ERR);
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
    envelope e;
    char err[HQ_ERRLEN];
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    assert_int_equal(e.ts, INT64_MAX);
    envelope_clear(&e);
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
        envelope e;
        char err[HQ_ERRLEN] = "";
        if (parse(&e, &f, NULL, err, sizeof(err)) != HQ_OK)
            fail_msg("%s of 128 bytes rejected: %s", names[i], err);
        envelope_clear(&e);
        f.vlens[f.n - 1] = 129;
        expect_reject(&f, NULL, "longer than");
        f.vlens[f.n - 1] = 300;
        expect_reject(&f, NULL, "longer than");
    }
}

static void check_data_ok(const char *d, const envelope_limits *lim) {
    char err[HQ_ERRLEN] = "";
    if (envelope_check_data(d, strlen(d), lim, err, sizeof(err)) != HQ_OK)
        fail_msg("rejected data '%s': %s", d, err);
}

static void check_data_bad(const char *d, size_t len, const envelope_limits *lim,
                           const char *needle) {
    char err[HQ_ERRLEN] = "";
    assert_int_equal(envelope_check_data(d, len, lim, err, sizeof(err)), HQ_ERR);
    if (!strstr(err, needle))
        fail_msg("reason '%s' lacks '%s'", err, needle);
    /* through the stream path the reason names the field */
    fields f = {0};
    add(&f, "type", "a");
    addb(&f, "data", d, len);
    char err2[HQ_ERRLEN] = "";
    envelope e;
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
    envelope_limits lim = {.max_payload = 10, .max_depth = 3};
    check_data_ok("[1,2,3,45]", &lim); /* exactly 10 bytes */
    check_data_bad("[1,2,3,456]", 11, &lim, "11 bytes, over the limit of 10");
    check_data_ok("[[[]]]", &lim);
    check_data_ok("[[1],[2]]", &lim);
    check_data_bad("[[[[]]]]", 8, &lim, "deeper than 3");
    check_data_ok("{\"a\":[{}]}", &lim); /* exactly 3 */
    envelope_limits lim2 = {.max_payload = 100, .max_depth = 3};
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
    check_data_bad(huge, n, &(envelope_limits){.max_payload = n - 1}, "over the limit");
    /* exactly 1 MiB of valid JSON passes by default, one byte more does not */
    huge[0] = '"';
    memset(huge + 1, 'x', n - 2);
    huge[n - 1] = '"';
    char err[HQ_ERRLEN];
    assert_int_equal(envelope_check_data(huge, n, NULL, err, sizeof(err)), HQ_OK);
    char *more = malloc(n + 1);
    assert_non_null(more);
    memcpy(more, huge, n - 1);
    more[n - 1] = 'x';
    more[n] = '"';
    assert_int_equal(envelope_check_data(more, n + 1, NULL, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "over the limit of 1048576"));
    free(more);
    free(huge);
}

/* Every corner of the RFC 8259 grammar the scanner must accept. */
static void test_grammar_valid(void **state) {
    static const char *const ok[] = {
        "0",
        "-0",
        "1",
        "-1",
        "10",
        "1234567890",
        "0.0",
        "-0.5",
        "1.25",
        "0e0",
        "0E+1",
        "1e-1",
        "1.5E+300",
        "-12.34e56",
        "1e400",                                   /* any magnitude: syntax only */
        "123456789012345678901234567890.5e-99999", /* ... both ways */
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\"",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",   /* every short escape */
        "\"\\u0041\\u00e9\\u20AC\\uFFFF\\uffff\"", /* hex digits in both cases */
        "\"\\uD834\\uDD1E\"",                      /* surrogate pair, upper case */
        "\"\\udbff\\udfff\"",                      /* the last pair: U+10FFFF */
        "\"\\u0000\"",                             /* valid JSON; jansson needs JSON_ALLOW_NUL */
        "{\"\\u0000\":1}",                         /* in a key too (jansson always refuses) */
        "\"\x7f\"",                                /* DEL is not a control char in JSON */
        "\"/\"",
        "\"'\"",
        "\" \"",
        "[]",
        "{}",
        "[ ]",
        "{ }",
        "[\n]",
        "[1]",
        "[1,2]",
        "[[],[[]],{}]",
        "{\"a\":{\"b\":{\"c\":[true,false,null]}}}",
        "{\"\":\"\"}",
        "{\"a\":1,\"b\":[],\"c\":{}}",
        " \t\r\n0 \t\r\n",
        "\n{\n\"a\"\n:\n1\n,\n\"b\"\n:\n2\n}\n",
        "[ 1 , 2 ]",
        "[-0,0.0,1e1,\"x\",true,null,{}]",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        check_data_ok(ok[i], NULL);
}

/* Every way to be wrong, with the exact reason (byte offsets are 0-based). */
static void test_grammar_invalid(void **state) {
    static const struct {
        const char *in, *why;
    } bad[] = {
        /* numbers */
        {"01", "invalid JSON at byte 1: leading zeros are not allowed"},
        {"-01", "invalid JSON at byte 2: leading zeros are not allowed"},
        {"00", "invalid JSON at byte 1: leading zeros are not allowed"},
        {"+1", "invalid JSON at byte 0: expected a value"},
        {"-", "invalid JSON at byte 1 (end): expected a digit"},
        {"-a", "invalid JSON at byte 1: expected a digit"},
        {"- 1", "invalid JSON at byte 1: expected a digit"},
        {".5", "invalid JSON at byte 0: expected a value"},
        {"1.", "invalid JSON at byte 2 (end): expected a digit after '.'"},
        {"1.e5", "invalid JSON at byte 2: expected a digit after '.'"},
        {"1e", "invalid JSON at byte 2 (end): expected a digit in the exponent"},
        {"1e+", "invalid JSON at byte 3 (end): expected a digit in the exponent"},
        {"1E-x", "invalid JSON at byte 3: expected a digit in the exponent"},
        {"0x10", "invalid JSON at byte 1: unexpected data after the value"},
        {"1.5.5", "invalid JSON at byte 3: unexpected data after the value"},
        {"Infinity", "invalid JSON at byte 0: expected a value"},
        {"-Infinity", "invalid JSON at byte 1: expected a digit"},
        {"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
        /* literals */
        {"tru", "invalid JSON at byte 0: expected a value"},
        {"True", "invalid JSON at byte 0: expected a value"},
        {"nulL", "invalid JSON at byte 0: expected a value"},
        {"truex", "invalid JSON at byte 4: unexpected data after the value"},
        {"[falsey]", "invalid JSON at byte 6: expected ',' or ']'"},
        {"undefined", "invalid JSON at byte 0: expected a value"},
        /* strings */
        {"\"abc", "invalid JSON at byte 0: unterminated string"},
        {"[\"abc\\\"]", "invalid JSON at byte 1: unterminated string"},
        {"\"\\", "invalid JSON at byte 0: unterminated string"},
        {"\"\\x\"", "invalid JSON at byte 1: invalid escape in string"},
        {"\"\\a\"", "invalid JSON at byte 1: invalid escape in string"},
        {"\"\\U0041\"", "invalid JSON at byte 1: invalid escape in string"},
        {"\"\\'\"", "invalid JSON at byte 1: invalid escape in string"},
        {"\"\\u12\"", "invalid JSON at byte 1: \\u must be followed by 4 hex digits"},
        {"\"\\u12g4\"", "invalid JSON at byte 1: \\u must be followed by 4 hex digits"},
        {"\"\\u", "invalid JSON at byte 1: \\u must be followed by 4 hex digits"},
        {"\"\\ud800\"", "invalid JSON at byte 1: \\u high surrogate without a low one"},
        {"\"\\ud800x\"", "invalid JSON at byte 1: \\u high surrogate without a low one"},
        {"\"\\ud800\\n\"", "invalid JSON at byte 1: \\u high surrogate without a low one"},
        {"\"\\ud800\\ud800\"", "invalid JSON at byte 1: \\u high surrogate without a low one"},
        {"\"\\ud800\\u0041\"", "invalid JSON at byte 1: \\u high surrogate without a low one"},
        {"\"\\udc00\"", "invalid JSON at byte 1: \\u low surrogate without a high one"},
        {"\"\\uDFFF\\uD800\"", "invalid JSON at byte 1: \\u low surrogate without a high one"},
        {"\"a\tb\"", "invalid JSON at byte 2: control character in string (escape it)"},
        {"\"a\nb\"", "invalid JSON at byte 2: control character in string (escape it)"},
        {"\"\x1f\"", "invalid JSON at byte 1: control character in string (escape it)"},
        {"'a'", "invalid JSON at byte 0: expected a value"},
        /* arrays */
        {"[", "invalid JSON at byte 1 (end): unexpected end, expected a value"},
        {"[1", "invalid JSON at byte 2 (end): expected ',' or ']'"},
        {"[1,", "invalid JSON at byte 3 (end): unexpected end, expected a value"},
        {"[1,]", "invalid JSON at byte 3: expected a value"},
        {"[,1]", "invalid JSON at byte 1: expected a value"},
        {"[1,,2]", "invalid JSON at byte 3: expected a value"},
        {"[1}", "invalid JSON at byte 2: expected ',' or ']'"},
        {"[1:2]", "invalid JSON at byte 2: expected ',' or ']'"},
        /* objects */
        {"{", "invalid JSON at byte 1 (end): expected a string key"},
        {"{\"a\"", "invalid JSON at byte 4 (end): expected ':'"},
        {"{\"a\" 1}", "invalid JSON at byte 5: expected ':'"},
        {"{\"a\":}", "invalid JSON at byte 5: expected a value"},
        {"{\"a\":1", "invalid JSON at byte 6 (end): expected ',' or '}'"},
        {"{\"a\":1,}", "invalid JSON at byte 7: expected a string key"},
        {"{\"a\":1]", "invalid JSON at byte 6: expected ',' or '}'"},
        {"{a:1}", "invalid JSON at byte 1: expected a string key"},
        {"{1:1}", "invalid JSON at byte 1: expected a string key"},
        {"{\"a\"=1}", "invalid JSON at byte 4: expected ':'"},
        {"{\"a\":1;\"b\":2}", "invalid JSON at byte 6: expected ',' or '}'"},
        {"{,}", "invalid JSON at byte 1: expected a string key"},
        /* around the value */
        {" ", "invalid JSON at byte 1 (end): unexpected end, expected a value"},
        {"\t\r\n", "invalid JSON at byte 3 (end): unexpected end, expected a value"},
        {"1 2", "invalid JSON at byte 2: unexpected data after the value"},
        {"[]]", "invalid JSON at byte 2: unexpected data after the value"},
        {"{}x", "invalid JSON at byte 2: unexpected data after the value"},
        {"\f1", "invalid JSON at byte 0: expected a value"}, /* \f is not JSON whitespace */
        {"\xc2\xa0"
         "1",
         "invalid JSON at byte 0: expected a value"}, /* nor is U+00A0 */
        {"/* c */ 1", "invalid JSON at byte 0: expected a value"},
        {"\xef\xbb\xbf{}", "invalid JSON at byte 0: expected a value"}, /* no BOM */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[HQ_ERRLEN] = "";
        if (envelope_check_data(bad[i].in, strlen(bad[i].in), NULL, err, sizeof(err)) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i].in);
        if (strcmp(err, bad[i].why) != 0)
            fail_msg("'%s': reason '%s', want '%s'", bad[i].in, err, bad[i].why);
    }
}

/* Strings are skipped 8 bytes at a time: a special byte must be seen at every position
 * of a word, and the reported offset must be exact. */
static void test_string_word_boundaries(void **state) {
    char buf[64];
    for (size_t pos = 1; pos < 40; pos++) {
        size_t len = 48;
        memset(buf, 'x', len);
        buf[0] = '"';
        buf[len - 1] = '"';
        char err[HQ_ERRLEN] = "", want[HQ_ERRLEN];

        buf[pos] = '\x01';
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_ERR);
        snprintf(want, sizeof(want),
                 "invalid JSON at byte %zu: control character in string (escape it)", pos);
        assert_string_equal(err, want);

        buf[pos] = '\0';
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_ERR);
        snprintf(want, sizeof(want), "contains a NUL byte at offset %zu", pos);
        assert_string_equal(err, want);

        buf[pos] = '\xff';
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_ERR);
        snprintf(want, sizeof(want), "invalid UTF-8 at offset %zu", pos);
        assert_string_equal(err, want);

        /* a quote ends the string early, so what follows is trailing data */
        buf[pos] = '"';
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_ERR);
        snprintf(want, sizeof(want), "invalid JSON at byte %zu: unexpected data after the value",
                 pos + 1);
        assert_string_equal(err, want);

        /* an escaped quote does not end it; valid multi-byte UTF-8 passes anywhere */
        buf[pos] = '\\';
        buf[pos + 1] = '"';
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_OK);
        memcpy(buf + pos, "\xe2\x82\xac", 3);
        assert_int_equal(envelope_check_data(buf, len, NULL, err, sizeof(err)), HQ_OK);
        /* and the closing quote may be at any position too */
        buf[pos + 3] = '"';
        assert_int_equal(envelope_check_data(buf, pos + 4, NULL, err, sizeof(err)), HQ_OK);
        assert_int_equal(envelope_check_data(buf, pos + 3, NULL, err, sizeof(err)), HQ_ERR);
        assert_string_equal(err, "invalid JSON at byte 0: unterminated string");
    }
}

/* NUL bytes are reported as such wherever they are, not as a syntax error. */
static void test_nul_anywhere(void **state) {
    static const struct {
        const char *in;
        size_t len, at;
    } cases[] = {
        {"\0", 1, 0},   {" \0", 2, 1},         {"[\0]", 3, 1},        {"[1,\0]", 5, 3},
        {"{\0}", 3, 1}, {"{\"a\"\0:1}", 8, 4}, {"{\"a\":1\0}", 8, 6}, {"\"\\\0\"", 4, 2},
        {"1\0", 2, 1},  {"{\"a\":\0}", 7, 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[HQ_ERRLEN] = "", want[HQ_ERRLEN];
        assert_int_equal(envelope_check_data(cases[i].in, cases[i].len, NULL, err, sizeof(err)),
                         HQ_ERR);
        snprintf(want, sizeof(want), "contains a NUL byte at offset %zu", cases[i].at);
        if (strcmp(err, want) != 0)
            fail_msg("case %zu: '%s', want '%s'", i, err, want);
    }
}

/* Depth is counted per container on the way down, objects and arrays alike, and a
 * max_depth above the hard cap of 1024 (cfg's upper bound) is clamped to it. */
static void test_depth_mixed_and_cap(void **state) {
    enum { N = 1100 };
    /* {"a":[{"a":[ ... ]}]} alternating, depth d */
    char *buf = malloc(N * 8);
    assert_non_null(buf);
    for (int d = 1; d <= 70; d++) {
        size_t n = 0;
        for (int k = 0; k < d; k++)
            n += (size_t)sprintf(buf + n, k % 2 ? "[" : "{\"a\":");
        buf[n++] = '1';
        for (int k = d - 1; k >= 0; k--)
            buf[n++] = k % 2 ? ']' : '}';
        char err[HQ_ERRLEN] = "";
        envelope_limits lim = {.max_depth = 64};
        int rc = envelope_check_data(buf, n, &lim, err, sizeof(err));
        if (d <= 64)
            assert_int_equal(rc, HQ_OK);
        else
            assert_string_equal(err, "JSON nested deeper than 64 levels");
    }
    /* 1024 arrays pass with max_depth 1024 or more; 1025 never do */
    for (int d = 1024; d <= 1025; d++) {
        memset(buf, '[', (size_t)d);
        memset(buf + d, ']', (size_t)d);
        char err[HQ_ERRLEN] = "";
        envelope_limits lim = {.max_depth = 1024}, huge = {.max_depth = 100000};
        int want = d <= 1024 ? HQ_OK : HQ_ERR;
        assert_int_equal(envelope_check_data(buf, (size_t)d * 2, &lim, err, sizeof(err)), want);
        assert_int_equal(envelope_check_data(buf, (size_t)d * 2, &huge, err, sizeof(err)), want);
        if (want == HQ_ERR)
            assert_string_equal(err, "JSON nested deeper than 1024 levels");
    }
    /* a closing bracket of the wrong kind deep inside is caught at that depth */
    memset(buf, '[', 100);
    buf[100] = '{';
    buf[101] = ']';
    char err[HQ_ERRLEN] = "";
    assert_int_equal(
        envelope_check_data(buf, 102, &(envelope_limits){.max_depth = 200}, err, sizeof(err)),
        HQ_ERR);
    assert_string_equal(err, "invalid JSON at byte 101: expected a string key");
    memset(buf, '[', 100);
    memset(buf + 100, ']', 99);
    buf[199] = '}';
    assert_int_equal(
        envelope_check_data(buf, 200, &(envelope_limits){.max_depth = 200}, err, sizeof(err)),
        HQ_ERR);
    assert_string_equal(err, "invalid JSON at byte 199: expected ',' or ']'");
    free(buf);
}

static void test_tenant_valid(void **state) {
    char err[HQ_ERRLEN];
    assert_int_equal(envelope_tenant_valid("acme", err, sizeof(err)), HQ_OK);
    assert_int_equal(envelope_tenant_valid("A-Z_a.z:0-9", err, sizeof(err)), HQ_OK);
    assert_int_equal(envelope_tenant_valid(NULL, err, sizeof(err)), HQ_ERR);
    assert_int_equal(envelope_tenant_valid("", err, sizeof(err)), HQ_ERR);
    assert_int_equal(envelope_tenant_valid("a,b", err, sizeof(err)), HQ_ERR);
    assert_int_equal(envelope_tenant_valid("a\"b", err, sizeof(err)), HQ_ERR);
    char t[130];
    memset(t, 't', 128);
    t[128] = '\0';
    assert_int_equal(envelope_tenant_valid(t, err, sizeof(err)), HQ_OK);
    t[128] = 't';
    t[129] = '\0';
    assert_int_equal(envelope_tenant_valid(t, err, sizeof(err)), HQ_ERR);
}

static void test_body_exact(void **state) {
    fields f;
    std_fields(&f);
    envelope e;
    char err[HQ_ERRLEN];
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    size_t len = 0;
    char *b = envelope_body(&e, &len);
    assert_non_null(b);
    /* 1614265330123 is 2021-02-25T15:02:10.123Z (date -u -d @1614265330) */
    const char *want = "{\"id\":\"evt_abc\",\"type\":\"task:transition\","
                       "\"timestamp\":\"2021-02-25T15:02:10.123Z\","
                       "\"data\":{\"a\": [1, 2, {\"b\": null}]}}";
    assert_string_equal(b, want);
    assert_int_equal(len, strlen(want));
    free(b);
    envelope_clear(&e);

    /* tenant last; data with odd spacing kept byte for byte */
    memset(&f, 0, sizeof(f));
    add(&f, "type", "invoice.paid.v2");
    add(&f, "data", " [ 1 ,\n\t\"\\u00e9\" ] ");
    add(&f, "tenant", "t1");
    assert_int_equal(parse(&e, &f, NULL, err, sizeof(err)), HQ_OK);
    b = envelope_body(&e, &len);
    assert_non_null(b);
    /* 1700000000000 is 2023-11-14T22:13:20.000Z (date -u -d @1700000000) */
    want = "{\"id\":\"evt_17000000000007\",\"type\":\"invoice.paid.v2\","
           "\"timestamp\":\"2023-11-14T22:13:20.000Z\","
           "\"data\": [ 1 ,\n\t\"\\u00e9\" ] ,\"tenant\":\"t1\"}";
    assert_string_equal(b, want);
    assert_int_equal(len, strlen(want));
    /* the body is itself valid JSON */
    assert_int_equal(envelope_check_data(b, len, NULL, err, sizeof(err)), HQ_OK);
    free(b);
    envelope_clear(&e);
}

static void test_body_escapes_hand_built(void **state) {
    /* an envelope built by hand (not from fields) still yields valid JSON */
    envelope e = {0};
    e.id = "a\"b\\c";
    e.type = "t\n";
    e.ts = 0;
    e.data = "1";
    e.datalen = 1;
    e.tenant = "x\x01";
    size_t len;
    char *b = envelope_body(&e, &len);
    assert_non_null(b);
    assert_string_equal(b, "{\"id\":\"a\\\"b\\\\c\",\"type\":\"t\\u000a\","
                           "\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":1,"
                           "\"tenant\":\"x\\u0001\"}");
    assert_int_equal(len, strlen(b));
    char err[HQ_ERRLEN];
    assert_int_equal(envelope_check_data(b, len, NULL, err, sizeof(err)), HQ_OK);
    free(b);
    assert_null(envelope_body(NULL, &len));
    envelope none = {0};
    assert_null(envelope_body(&none, &len));
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
        cmocka_unit_test(test_grammar_valid),
        cmocka_unit_test(test_grammar_invalid),
        cmocka_unit_test(test_string_word_boundaries),
        cmocka_unit_test(test_nul_anywhere),
        cmocka_unit_test(test_depth_mixed_and_cap),
        cmocka_unit_test(test_tenant_valid),
        cmocka_unit_test(test_body_exact),
        cmocka_unit_test(test_body_escapes_hand_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
