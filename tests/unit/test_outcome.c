/* test_outcome.c -- the delivery verdict table (outcome.h), case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>
#include "outcome.h"

static outcome classify(int curl_code, long status, int blocked) {
    outcome_in in = {.curl_code = curl_code, .http_status = status, .blocked = blocked};
    return outcome_classify(&in);
}

static void test_every_2xx_is_delivered(void **state) {
    (void)state;
    for (long s = 200; s <= 299; s++)
        assert_int_equal(classify(CURLE_OK, s, 0), OUT_DELIVERED);
}

static void test_410_is_gone(void **state) {
    (void)state;
    assert_int_equal(classify(CURLE_OK, 410, 0), OUT_GONE);
}

static void test_other_statuses_retry(void **state) {
    (void)state;
    /* 1xx leftovers, every 3xx (redirects are never followed), 4xx and 5xx but 410. */
    for (long s = 100; s <= 199; s++)
        assert_int_equal(classify(CURLE_OK, s, 0), OUT_RETRY);
    for (long s = 300; s <= 599; s++) {
        if (s == 410)
            continue;
        assert_int_equal(classify(CURLE_OK, s, 0), OUT_RETRY);
    }
    assert_int_equal(classify(CURLE_OK, 429, 0), OUT_RETRY);
    assert_int_equal(classify(CURLE_OK, 503, 0), OUT_RETRY);
    assert_int_equal(classify(CURLE_OK, 302, 0), OUT_RETRY);
    /* No status at all although curl said OK: nothing proves delivery. */
    assert_int_equal(classify(CURLE_OK, 0, 0), OUT_RETRY);
    assert_int_equal(classify(CURLE_OK, 999, 0), OUT_RETRY);
    assert_int_equal(classify(CURLE_OK, -1, 0), OUT_RETRY);
}

static void test_transfer_errors_retry(void **state) {
    (void)state;
    static const int codes[] = {
        CURLE_OPERATION_TIMEDOUT,
        CURLE_COULDNT_CONNECT,
        CURLE_COULDNT_RESOLVE_HOST,
        CURLE_SEND_ERROR,
        CURLE_RECV_ERROR,
        CURLE_GOT_NOTHING,
        CURLE_WRITE_ERROR,
        CURLE_SSL_CONNECT_ERROR,
        CURLE_PEER_FAILED_VERIFICATION,
        CURLE_PARTIAL_FILE,
        CURLE_HTTP2,
        CURLE_WEIRD_SERVER_REPLY,
        CURLE_OUT_OF_MEMORY,
        CURLE_ABORTED_BY_CALLBACK,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(classify(codes[i], 0, 0), OUT_RETRY);
        /* A status that arrived before the transfer failed is no verdict. */
        assert_int_equal(classify(codes[i], 200, 0), OUT_RETRY);
        assert_int_equal(classify(codes[i], 410, 0), OUT_RETRY);
    }
}

static void test_bad_url_is_final(void **state) {
    (void)state;
    /* the engine never gives curl another scheme: this is a receiver answering non-HTTP */
    assert_int_equal(classify(CURLE_UNSUPPORTED_PROTOCOL, 0, 0), OUT_RETRY);
    assert_int_equal(classify(CURLE_URL_MALFORMAT, 0, 0), OUT_FINAL);
}

static void test_blocked_is_final_whatever_else(void **state) {
    (void)state;
    assert_int_equal(classify(CURLE_COULDNT_CONNECT, 0, 1), OUT_FINAL);
    assert_int_equal(classify(CURLE_OPERATION_TIMEDOUT, 0, 1), OUT_FINAL);
    /* Even a status must not turn a refused address into success or gone. */
    assert_int_equal(classify(CURLE_OK, 200, 1), OUT_FINAL);
    assert_int_equal(classify(CURLE_OK, 410, 1), OUT_FINAL);
    assert_int_equal(classify(CURLE_OK, 0, 1), OUT_FINAL);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(outcome_name(OUT_DELIVERED), "delivered");
    assert_string_equal(outcome_name(OUT_RETRY), "retry");
    assert_string_equal(outcome_name(OUT_FINAL), "final");
    assert_string_equal(outcome_name(OUT_GONE), "gone");
    assert_string_equal(outcome_name((outcome)42), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_2xx_is_delivered),
        cmocka_unit_test(test_410_is_gone),
        cmocka_unit_test(test_other_statuses_retry),
        cmocka_unit_test(test_transfer_errors_retry),
        cmocka_unit_test(test_bad_url_is_final),
        cmocka_unit_test(test_blocked_is_final_whatever_else),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
