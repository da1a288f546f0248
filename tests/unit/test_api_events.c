/* test_api_events.c -- the events routes' pure helpers (producer/api_evkit.h): the
 * top-level member scanner that lets POST /v1/events forward `data` byte for byte, JSON
 * string decoding, and the id helpers GET /v1/events/{id} uses to find an event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api_evkit.h"
#include "hq.h"
#include "ids.h"
#include "timestamp.h"

/* Scan s; the members as "key=value;" pairs into out; the last evj_next result. */
static int scan(const char *s, char *out, size_t outlen, const char **what) {
    evj_iter it;
    evj_member m;
    int r;
    size_t o = 0;
    out[0] = '\0';
    *what = NULL;
    if (evj_begin(&it, s, strlen(s)) != HQ_OK)
        return -2;
    while ((r = evj_next(&it, &m, what)) == 1) {
        int n =
            snprintf(out + o, outlen - o, "%.*s=%.*s;", (int)m.keylen, m.key, (int)m.vallen, m.val);
        assert_true(n > 0 && (size_t)n < outlen - o);
        o += (size_t)n;
    }
    return r;
}

static void test_members_exact_spans(void **state) {
    char out[512];
    const char *what;
    (void)state;
    /* data keeps every byte: number spelling, escapes, inner whitespace */
    assert_int_equal(
        scan(" {\"type\" : \"a.b\" ,\n\"data\":\t{\"n\": 1.50e+2, \"s\":\"\\u00e9\\\"}\"} "
             "}\n",
             out, sizeof out, &what),
        0);
    assert_string_equal(out, "type=\"a.b\";data={\"n\": 1.50e+2, \"s\":\"\\u00e9\\\"}\"};");
    assert_int_equal(scan("{\"d\":[1,[2,{\"x\":\"]}\"}],3],\"e\":null,\"f\":-0.0E-7,\"g\":true}",
                          out, sizeof out, &what),
                     0);
    assert_string_equal(out, "d=[1,[2,{\"x\":\"]}\"}],3];e=null;f=-0.0E-7;g=true;");
    assert_int_equal(scan("{}", out, sizeof out, &what), 0);
    assert_string_equal(out, "");
    assert_int_equal(scan("  { }  ", out, sizeof out, &what), 0);
    /* keys are returned raw: escapes are the caller's to decode */
    assert_int_equal(scan("{\"d\\u0061ta\":1}", out, sizeof out, &what), 0);
    assert_string_equal(out, "d\\u0061ta=1;");
}

static void test_members_refused(void **state) {
    char out[512];
    const char *what;
    (void)state;
    assert_int_equal(scan("[1]", out, sizeof out, &what), -2);
    assert_int_equal(scan("", out, sizeof out, &what), -2);
    assert_int_equal(scan("{\"a\":1} x", out, sizeof out, &what), -1);
    assert_non_null(what);
    assert_int_equal(scan("{\"a\":1 \"b\":2}", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a\" 1}", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a\":", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a\":[1,2", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a\":\"x", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a", out, sizeof out, &what), -1);
    assert_int_equal(scan("{1:2}", out, sizeof out, &what), -1);
    assert_int_equal(scan("{\"a\":1,}", out, sizeof out, &what), -1);
    assert_int_equal(scan("{", out, sizeof out, &what), -1);
}

/* Every prefix of a valid body is scanned without reading past its end (run under
 * valgrind/ASan this is the bounds check). */
static void test_members_truncated_input(void **state) {
    const char *body = "{\"type\":\"x\",\"data\":{\"a\":[1,\"]\\\"\",{\"b\":null}]},\"id\":\"e1\"}";
    size_t n = strlen(body);
    (void)state;
    for (size_t len = 0; len < n; len++) {
        char *copy = malloc(len ? len : 1);
        evj_iter it;
        evj_member m;
        const char *what;
        int r = -1;
        assert_non_null(copy);
        memcpy(copy, body, len);
        if (evj_begin(&it, copy, len) == HQ_OK)
            while ((r = evj_next(&it, &m, &what)) == 1)
                assert_true(m.val + m.vallen <= copy + len);
        assert_true(r <= 0);
        free(copy);
    }
}

static void test_unescape(void **state) {
    char out[16];
    int cut;
    (void)state;
    assert_int_equal(evj_unescape("a\\\"b\\\\\\/\\n", 11, out, sizeof out, &cut), HQ_OK);
    assert_string_equal(out, "a\"b\\/\n");
    assert_int_equal(cut, 0);
    assert_int_equal(evj_unescape("d\\u0061ta", 9, out, sizeof out, &cut), HQ_OK);
    assert_string_equal(out, "data");
    assert_int_equal(evj_unescape("\\u00e9\\ud83d\\ude00", 18, out, sizeof out, &cut), HQ_OK);
    assert_string_equal(out, "\xc3\xa9\xf0\x9f\x98\x80");
    /* refused: NUL, lone surrogates, bad escapes */
    assert_int_equal(evj_unescape("a\\u0000", 7, out, sizeof out, &cut), HQ_ERR);
    assert_int_equal(evj_unescape("\\ud83d", 6, out, sizeof out, &cut), HQ_ERR);
    assert_int_equal(evj_unescape("\\ude00", 6, out, sizeof out, &cut), HQ_ERR);
    assert_int_equal(evj_unescape("\\x", 2, out, sizeof out, &cut), HQ_ERR);
    assert_int_equal(evj_unescape("\\u12", 4, out, sizeof out, &cut), HQ_ERR);
    assert_int_equal(evj_unescape("\\", 1, out, sizeof out, &cut), HQ_ERR);
    /* too long: a prefix that is still whole characters, and the mark */
    assert_int_equal(evj_unescape("0123456789abcdefXYZ", 19, out, sizeof out, &cut), HQ_OK);
    assert_int_equal(cut, 1);
    assert_string_equal(out, "0123456789abcde");
    assert_int_equal(evj_unescape("0123456789abcd\xc3\xa9", 16, out, sizeof out, &cut), HQ_OK);
    assert_int_equal(cut, 1);
    assert_string_equal(out, "0123456789abcd");
}

static void test_ulid_ms(void **state) {
    char id[64];
    int64_t ms, before = ts_now_ms();
    (void)state;
    assert_int_equal(id_new(ID_PREFIX_EVENT, id, sizeof id), HQ_OK);
    assert_int_equal(evid_ulid_ms(id, &ms), HQ_OK);
    assert_true(ms >= before && ms <= ts_now_ms());
    assert_int_equal(evid_ulid_ms("evt_0000000001ZZZZZZZZZZZZZZZZ", &ms), HQ_OK);
    assert_int_equal(ms, 1);
    assert_int_equal(evid_ulid_ms("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", &ms), HQ_OK);
    assert_int_equal(ms, 1469922850259LL);
    assert_int_equal(evid_ulid_ms("ep_01ARZ3NDEKTSV4RRFFQ69G5FAV", &ms), HQ_ERR);
    assert_int_equal(evid_ulid_ms("evt_01ARZ3NDEKTSV4RRFFQ69G5FA", &ms), HQ_ERR);
    assert_int_equal(evid_ulid_ms("evt_01ARZ3NDEKTSV4RRFFQ69G5FAVX", &ms), HQ_ERR);
    assert_int_equal(evid_ulid_ms("evt_01arz3ndektsv4rrffq69g5fav", &ms), HQ_ERR);
    assert_int_equal(evid_ulid_ms("evt_81ARZ3NDEKTSV4RRFFQ69G5FAV", &ms), HQ_ERR); /* > 48 bits */
    assert_int_equal(evid_ulid_ms("evt_17000000000000", &ms), HQ_ERR);
    assert_int_equal(evid_ulid_ms("order-7", &ms), HQ_ERR);
}

static void test_stream_id_and_idem_key(void **state) {
    char big[300];
    (void)state;
    assert_true(evid_stream_id_ok("1700000000000-0"));
    assert_true(evid_stream_id_ok("1-12"));
    assert_false(evid_stream_id_ok("1700000000000"));
    assert_false(evid_stream_id_ok("-1"));
    assert_false(evid_stream_id_ok("1-"));
    assert_false(evid_stream_id_ok("1-2-3"));
    assert_false(evid_stream_id_ok("a-1"));
    assert_false(evid_stream_id_ok("123456789012345678901-0"));
    assert_false(evid_stream_id_ok(""));
    assert_true(evid_idem_key_ok("order 7 / retry #2"));
    assert_false(evid_idem_key_ok(""));
    assert_false(evid_idem_key_ok("tab\there"));
    assert_false(evid_idem_key_ok("caf\xc3\xa9"));
    memset(big, 'k', 255);
    big[255] = '\0';
    assert_true(evid_idem_key_ok(big));
    big[255] = 'k';
    big[256] = '\0';
    assert_false(evid_idem_key_ok(big));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_exact_spans),
        cmocka_unit_test(test_members_refused),
        cmocka_unit_test(test_members_truncated_input),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_ulid_ms),
        cmocka_unit_test(test_stream_id_and_idem_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
