/* test_json_scan.c -- the JSON syntax scanner on its own: what it accepts, where and why it
 * refuses (kind, offset, phrase, message), depth limits across the bitset's words, UTF-8
 * edges, and that it never reads past len (every input is copied into a heap buffer of
 * exactly len bytes, so ASan or valgrind would catch an overread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "json_scan.h"

/* Scan a copy of s[0..len) that ends exactly at len. */
static int scan(const char *s, size_t len, int depth, json_scan_result *res, char *err,
                size_t errlen) {
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    int rc = json_scan_check(copy, len, depth, res, err, errlen);
    free(copy);
    return rc;
}

static void ok_depth(const char *s, size_t len, int depth) {
    char err[HQ_ERRLEN] = "";
    json_scan_result res = {.kind = JSON_SCAN_SYNTAX, .at = 99};
    if (scan(s, len, depth, &res, err, sizeof(err)) != HQ_OK)
        fail_msg("'%.*s' refused: %s", (int)len, s, err);
    assert_int_equal(res.kind, JSON_SCAN_OK);
}

static void ok(const char *s) {
    ok_depth(s, strlen(s), 32);
}

/* Refused with this kind at this offset; what (if not NULL) is the syntax phrase. */
static void bad_depth(const char *s, size_t len, int depth, json_scan_kind kind, size_t at,
                      const char *what) {
    char err[HQ_ERRLEN] = "";
    json_scan_result res;
    if (scan(s, len, depth, &res, err, sizeof(err)) != HQ_ERR)
        fail_msg("'%.*s' accepted", (int)len, s);
    if (res.kind != kind || res.at != at)
        fail_msg("'%.*s': kind %d at %zu (%s), want kind %d at %zu", (int)len, s, (int)res.kind,
                 res.at, err, (int)kind, at);
    if (what)
        assert_string_equal(res.what, what);
    if (kind != JSON_SCAN_SYNTAX)
        assert_null(res.what);
    assert_true(err[0] != '\0');
}

static void bad(const char *s, size_t len, json_scan_kind kind, size_t at, const char *what) {
    bad_depth(s, len, 32, kind, at, what);
}

#define BAD(lit, kind, at, what) bad(lit, sizeof(lit) - 1, kind, at, what)

static void test_accepts_rfc8259_values(void **state) {
    (void)state;
    ok("0");
    ok("-0");
    ok("12");
    ok("-1.5e-300");
    ok("1E+2");
    ok("123456789012345678901234567890e999999"); /* syntax only: any magnitude */
    ok("true");
    ok("false");
    ok("null");
    ok("\"\"");
    ok("\"text\"");
    ok("{}");
    ok("[]");
    ok(" \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : null } \n");
    ok("{\"a\":1,\"a\":2}"); /* duplicate keys are JSON */
    ok("[\"[[[[ {{{{\"]");   /* brackets in strings do not nest */
    ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    ok("\"\\u0000\""); /* an escaped NUL is JSON; only raw NULs are refused */
    ok("\"\\u00e9\\uFFFF\\ud83d\\ude00\"");
    ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

static void test_utf8_sequences_at_the_edges(void **state) {
    (void)state;
    /* The first and last code point of each length, and around the surrogates. */
    ok("\"\xc2\x80\"");
    ok("\"\xdf\xbf\"");
    ok("\"\xe0\xa0\x80\"");
    ok("\"\xed\x9f\xbf\"");
    ok("\"\xee\x80\x80\"");
    ok("\"\xef\xbf\xbf\"");
    ok("\"\xf0\x90\x80\x80\"");
    ok("\"\xf4\x8f\xbf\xbf\"");

    BAD("\"\x80\"", JSON_SCAN_UTF8, 1, NULL);             /* stray continuation */
    BAD("\"\xc0\xaf\"", JSON_SCAN_UTF8, 1, NULL);         /* overlong 2-byte */
    BAD("\"\xc1\xbf\"", JSON_SCAN_UTF8, 1, NULL);         /* overlong 2-byte */
    BAD("\"\xe0\x9f\xbf\"", JSON_SCAN_UTF8, 1, NULL);     /* overlong 3-byte */
    BAD("\"\xed\xa0\x80\"", JSON_SCAN_UTF8, 1, NULL);     /* surrogate U+D800 */
    BAD("\"\xf0\x8f\xbf\xbf\"", JSON_SCAN_UTF8, 1, NULL); /* overlong 4-byte */
    BAD("\"\xf4\x90\x80\x80\"", JSON_SCAN_UTF8, 1, NULL); /* above U+10FFFF */
    BAD("\"\xf5\x80\x80\x80\"", JSON_SCAN_UTF8, 1, NULL);
    BAD("\"\xff\"", JSON_SCAN_UTF8, 1, NULL);
    BAD("\"\xc3\x28\"", JSON_SCAN_UTF8, 1, NULL);     /* bad continuation */
    BAD("\"\xe2\x82\"", JSON_SCAN_UTF8, 1, NULL);     /* cut short by the quote */
    BAD("\"ab\xe2\x82", JSON_SCAN_UTF8, 3, NULL);     /* cut short by the end */
    BAD("\"ab\xf0\x9f\x98", JSON_SCAN_UTF8, 3, NULL); /* cut short by the end */
    /* Found by the 8-byte fast path too, wherever it sits. */
    BAD("\"abcdefghijklmno\x80pqrstuvwxyz\"", JSON_SCAN_UTF8, 16, NULL);
    /* Outside strings a non-ASCII byte is simply not JSON. */
    BAD("\xc3\xa9", JSON_SCAN_SYNTAX, 0, "expected a value");
}

static void test_syntax_errors_say_where_and_what(void **state) {
    (void)state;
    BAD("{", JSON_SCAN_SYNTAX, 1, "expected a string key");
    BAD("[", JSON_SCAN_SYNTAX, 1, "unexpected end, expected a value");
    BAD("[1,]", JSON_SCAN_SYNTAX, 3, "expected a value");
    BAD("[1 2]", JSON_SCAN_SYNTAX, 3, "expected ',' or ']'");
    BAD("{\"a\":1 \"b\":2}", JSON_SCAN_SYNTAX, 7, "expected ',' or '}'");
    BAD("{\"a\" 1}", JSON_SCAN_SYNTAX, 5, "expected ':'");
    BAD("{'a':1}", JSON_SCAN_SYNTAX, 1, "expected a string key");
    BAD("{1:2}", JSON_SCAN_SYNTAX, 1, "expected a string key");
    BAD("{\"a\":1,}", JSON_SCAN_SYNTAX, 7, "expected a string key");
    BAD("]", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("[}", JSON_SCAN_SYNTAX, 1, "expected a value");
    BAD("{]", JSON_SCAN_SYNTAX, 1, "expected a string key");
    BAD("01", JSON_SCAN_SYNTAX, 1, "leading zeros are not allowed");
    BAD("-", JSON_SCAN_SYNTAX, 1, "expected a digit");
    BAD("-a", JSON_SCAN_SYNTAX, 1, "expected a digit");
    BAD("+1", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("1.", JSON_SCAN_SYNTAX, 2, "expected a digit after '.'");
    BAD(".5", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("1e", JSON_SCAN_SYNTAX, 2, "expected a digit in the exponent");
    BAD("1e+", JSON_SCAN_SYNTAX, 3, "expected a digit in the exponent");
    BAD("tru", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("nul", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("True", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("NaN", JSON_SCAN_SYNTAX, 0, "expected a value");
    BAD("\"abc", JSON_SCAN_SYNTAX, 0, "unterminated string");
    BAD("\"abc\\", JSON_SCAN_SYNTAX, 0, "unterminated string");
    BAD("\"a\\x\"", JSON_SCAN_SYNTAX, 2, "invalid escape in string");
    BAD("\"\\u12\"", JSON_SCAN_SYNTAX, 1, "\\u must be followed by 4 hex digits");
    BAD("\"\\u12g4\"", JSON_SCAN_SYNTAX, 1, "\\u must be followed by 4 hex digits");
    BAD("\"\\udc00\"", JSON_SCAN_SYNTAX, 1, "\\u low surrogate without a high one");
    BAD("\"\\ud800\"", JSON_SCAN_SYNTAX, 1, "\\u high surrogate without a low one");
    BAD("\"\\ud800\\u0041\"", JSON_SCAN_SYNTAX, 1, "\\u high surrogate without a low one");
    BAD("\"tab\there\"", JSON_SCAN_SYNTAX, 4, "control character in string (escape it)");
    BAD("\"line\nbreak\"", JSON_SCAN_SYNTAX, 5, "control character in string (escape it)");
}

static void test_trailing_data_and_empty_text(void **state) {
    (void)state;
    BAD("{} {}", JSON_SCAN_SYNTAX, 3, "unexpected data after the value");
    BAD("1 2", JSON_SCAN_SYNTAX, 2, "unexpected data after the value");
    BAD("{}}", JSON_SCAN_SYNTAX, 2, "unexpected data after the value");
    BAD("\"a\"\"b\"", JSON_SCAN_SYNTAX, 3, "unexpected data after the value");
    BAD("null,", JSON_SCAN_SYNTAX, 4, "unexpected data after the value");
    BAD("truex", JSON_SCAN_SYNTAX, 4, "unexpected data after the value");
    /* Empty and blank text is not a value; the error sits at the end. */
    BAD("", JSON_SCAN_SYNTAX, 0, "unexpected end, expected a value");
    BAD(" \n\t", JSON_SCAN_SYNTAX, 3, "unexpected end, expected a value");
    char err[HQ_ERRLEN];
    assert_int_equal(json_scan_check(NULL, 0, 32, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "invalid JSON at byte 0 (end): unexpected end, expected a value");
}

static void test_nul_bytes_are_named(void **state) {
    (void)state;
    /* A raw NUL is named as such wherever a token may start or inside a string. */
    bad("\0", 1, JSON_SCAN_NUL, 0, NULL);
    bad("{}\0", 3, JSON_SCAN_NUL, 2, NULL);
    bad("[1,\0]", 5, JSON_SCAN_NUL, 3, NULL);
    bad("{\"a\":\"x\0y\"}", 11, JSON_SCAN_NUL, 7, NULL);
    bad("\"abcdefghijkl\0\"", 15, JSON_SCAN_NUL, 13, NULL); /* past the fast path's first word */
    bad("\"\\\0\"", 4, JSON_SCAN_NUL, 2, NULL);             /* escaped */
    bad("{\"a\"\0:1}", 8, JSON_SCAN_NUL, 4, NULL);
}

/* n nested containers, alternating [ and {"k": so the bitset records both kinds. */
static char *nested(int n, size_t *len) {
    char *s = malloc((size_t)n * 6 + 8);
    size_t j = 0;
    assert_non_null(s);
    for (int d = 0; d < n; d++) {
        if (d % 2) {
            memcpy(s + j, "{\"k\":", 5);
            j += 5;
        } else {
            s[j++] = '[';
        }
    }
    s[j++] = '1';
    for (int d = n - 1; d >= 0; d--)
        s[j++] = d % 2 ? '}' : ']';
    *len = j;
    return s;
}

static void test_depth_limit_and_clamp(void **state) {
    (void)state;
    ok_depth("[[[]]]", 6, 3);
    ok_depth("{\"a\":[{}]}", 10, 3);
    bad_depth("[[[[]]]]", 8, 3, JSON_SCAN_DEPTH, 3, NULL);
    bad_depth("{\"a\":[{\"b\":[]}]}", 15, 3, JSON_SCAN_DEPTH, 11, NULL);
    ok_depth("[\"[[[[\"]", 8, 1);
    /* 0 (and anything below) allows scalars only. */
    ok_depth("\"s\"", 3, 0);
    bad_depth("[]", 2, 0, JSON_SCAN_DEPTH, 0, NULL);
    bad_depth("{}", 2, -5, JSON_SCAN_DEPTH, 0, NULL);

    char err[HQ_ERRLEN];
    assert_int_equal(json_scan_check("[[]]", 4, 1, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "JSON nested deeper than 1 levels");

    /* Deep mixed nesting crosses the bitset's 64-bit words; closing with the wrong bracket
     * deep inside must still be caught, so each level remembers its own kind. */
    size_t len;
    char *s = nested(JSON_SCAN_DEPTH_MAX, &len);
    ok_depth(s, len, JSON_SCAN_DEPTH_MAX);
    ok_depth(s, len, 1 << 20); /* clamped to JSON_SCAN_DEPTH_MAX */
    s[len - 100] = s[len - 100] == '}' ? ']' : '}';
    char e2[HQ_ERRLEN];
    json_scan_result res;
    assert_int_equal(json_scan_check(s, len, JSON_SCAN_DEPTH_MAX, &res, e2, sizeof(e2)), HQ_ERR);
    assert_int_equal(res.kind, JSON_SCAN_SYNTAX);
    assert_int_equal(res.at, len - 100);
    free(s);

    s = nested(JSON_SCAN_DEPTH_MAX + 1, &len);
    assert_int_equal(json_scan_check(s, len, 1 << 20, &res, err, sizeof(err)), HQ_ERR);
    assert_int_equal(res.kind, JSON_SCAN_DEPTH);
    assert_string_equal(err, "JSON nested deeper than 1024 levels");
    free(s);
}

static void test_error_messages(void **state) {
    (void)state;
    char err[HQ_ERRLEN];
    assert_int_equal(json_scan_check("{\"a\" 1}", 7, 32, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "invalid JSON at byte 5: expected ':'");
    assert_int_equal(json_scan_check("[1,", 3, 32, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "invalid JSON at byte 3 (end): unexpected end, expected a value");
    assert_int_equal(json_scan_check("\"\x80\"", 3, 32, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "invalid UTF-8 at offset 1");
    assert_int_equal(json_scan_check("{}\0", 3, 32, NULL, err, sizeof(err)), HQ_ERR);
    assert_string_equal(err, "contains a NUL byte at offset 2");
    /* err and res are both optional; a small err is cut, still terminated. */
    assert_int_equal(json_scan_check("[", 1, 32, NULL, NULL, 0), HQ_ERR);
    char small[8];
    assert_int_equal(json_scan_check("[", 1, 32, NULL, small, sizeof(small)), HQ_ERR);
    assert_string_equal(small, "invalid");
    assert_int_equal(json_scan_check("[]", 2, 32, NULL, NULL, 0), HQ_OK);
}

/* The 8-byte fast path must stop at every special byte wherever it falls in a word. */
static void test_string_fast_path_stops_at_specials(void **state) {
    (void)state;
    static const char specials[] = {'"', '\\', '\n', '\x7f', '\x80'};
    char buf[64];
    for (size_t pos = 1; pos < 40; pos++) {
        for (size_t k = 0; k < sizeof(specials); k++) {
            memset(buf, 'a', sizeof(buf));
            buf[0] = '"';
            buf[pos] = specials[k];
            buf[48] = '"';
            json_scan_result res;
            int rc = json_scan_check(buf, 49, 32, &res, NULL, 0);
            switch (specials[k]) {
            case '"': /* ends the string early: the rest is trailing data */
                assert_int_equal(rc, HQ_ERR);
                assert_int_equal(res.kind, JSON_SCAN_SYNTAX);
                assert_int_equal(res.at, pos + 1);
                break;
            case '\\': /* "\a" is not an escape */
                assert_int_equal(rc, HQ_ERR);
                assert_int_equal(res.at, pos);
                assert_string_equal(res.what, "invalid escape in string");
                break;
            case '\n':
                assert_int_equal(rc, HQ_ERR);
                assert_int_equal(res.at, pos);
                break;
            case '\x7f': /* DEL is not a control character in JSON */
                assert_int_equal(rc, HQ_OK);
                break;
            default:
                assert_int_equal(rc, HQ_ERR);
                assert_int_equal(res.kind, JSON_SCAN_UTF8);
                assert_int_equal(res.at, pos);
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_rfc8259_values),
        cmocka_unit_test(test_utf8_sequences_at_the_edges),
        cmocka_unit_test(test_syntax_errors_say_where_and_what),
        cmocka_unit_test(test_trailing_data_and_empty_text),
        cmocka_unit_test(test_nul_bytes_are_named),
        cmocka_unit_test(test_depth_limit_and_clamp),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_string_fast_path_stops_at_specials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
