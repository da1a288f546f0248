/* test_stream_entry.c -- stream entries read out of replies, and the bounded dead-letter
 * copy of a hostile one, on reply trees built by hand (no Redis). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dead_letter.h"
#include "hq.h"
#include "pipeline.h"
#include "reply_fixture.h"
#include "stream_entry.h"

/* [sid, [k1, v1, k2, v2, ...]] from NULL-terminated name/value pairs. */
static redisReply *entry(const char *sid, const char *const *kv) {
    size_t n = 0;
    while (kv[n])
        n++;
    redisReply *f = reply_arr(n);
    for (size_t i = 0; i < n; i++)
        f->element[i] = reply_str(kv[i]);
    redisReply *e = reply_arr(2);
    e->element[0] = reply_str(sid);
    e->element[1] = f;
    return e;
}

static void test_sid_valid(void **state) {
    (void)state;
    static const char *const good[] = {"0-0", "1-2", "1700000000000-0",
                                       "18446744073709551615-18446744073709551615"};
    static const char *const bad[] = {"",
                                      "1",
                                      "1-",
                                      "-1",
                                      "1-2-3",
                                      "--",
                                      "a-1",
                                      "1-a",
                                      "1 -2",
                                      "18446744073709551616-0",
                                      "1-99999999999999999999"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(entry_sid_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(entry_sid_valid(bad[i], strlen(bad[i])));
    assert_false(entry_sid_valid("1-2\0", 4)); /* the length counts, not the NUL */
}

static void test_parse_job(void **state) {
    (void)state;
    char err[HQ_ERRLEN];
    const char *ev, *ep;
    int att;
    static const char *const ok[] = {"event", "17-0", "endpoint", "ep_01ABC", "attempt", "3", NULL};
    redisReply *e = entry("5-0", ok);
    assert_int_equal(entry_parse_job(e, &ev, &ep, &att, err, sizeof err), HQ_OK);
    assert_string_equal(ev, "17-0");
    assert_string_equal(ep, "ep_01ABC");
    assert_int_equal(att, 3);
    freeReplyObject(e);
    static const char *const badev[] = {"event", "1-2-3", "endpoint", "ep_x", "attempt", "1", NULL};
    e = entry("5-1", badev);
    assert_int_equal(entry_parse_job(e, &ev, &ep, &att, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "not a stream id"));
    freeReplyObject(e);
    static const char *const noatt[] = {"event", "1-2", "endpoint", "ep_x", NULL};
    e = entry("5-2", noatt);
    assert_int_equal(entry_parse_job(e, &ev, &ep, &att, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "attempt"));
    freeReplyObject(e);
    static const char *const att0[] = {"event", "1-2", "endpoint", "ep_x", "attempt", "0", NULL};
    e = entry("5-3", att0);
    assert_int_equal(entry_parse_job(e, &ev, &ep, &att, err, sizeof err), HQ_ERR);
    freeReplyObject(e);
}

static void test_parse_event_field_limit(void **state) {
    (void)state;
    envelope_limits lim = {.max_payload = 1024, .max_depth = 8};
    envelope env;
    char err[HQ_ERRLEN];
    static const char *const ok[] = {"type", "a.b", "data", "{\"x\":1}", NULL};
    redisReply *e = entry("7-0", ok);
    assert_int_equal(entry_parse_event(e, &lim, &env, err, sizeof err), HQ_OK);
    assert_string_equal(env.type, "a.b");
    envelope_clear(&env);
    freeReplyObject(e);
    /* 65 fields: refused before anything is copied */
    const char *kv[2 * 65 + 1];
    char names[65][16];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        kv[2 * i] = names[i];
        kv[2 * i + 1] = "v";
    }
    kv[130] = NULL;
    e = entry("7-1", kv);
    assert_int_equal(entry_parse_event(e, &lim, &env, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "65 fields"));
    freeReplyObject(e);
}

/* 5,000 fields of 100 KiB each: at most 64 pairs, values cut, the total bounded, and a
 * marker with the original count; the count matches what is appended. */
static void test_dead_letter_bounded(void **state) {
    (void)state;
    size_t nf = 5000;
    redisReply *f = reply_arr(2 * nf);
    static char big[100 * 1024];
    memset(big, 'v', sizeof big);
    for (size_t i = 0; i < nf; i++) {
        char k[32];
        int kn = snprintf(k, sizeof k, "k%zu", i);
        f->element[2 * i] = reply_strn(k, (size_t)kn);
        f->element[2 * i + 1] = reply_strn(big, i % 2 ? sizeof big : 10);
    }
    size_t pairs = dead_letter_count(f);
    pipeline *p = pipeline_new();
    pipeline_begin(p, 0, NULL);
    pipeline_arg(p, "XADD");
    assert_int_equal(dead_letter_fields(p, f), pairs);
    pipeline_end(p);
    assert_true(pairs <= DEAD_LETTER_MAX_FIELDS + 2);
    size_t total = 0;
    int truncated = 0;
    for (size_t k = 1; k + 1 < 1 + 2 * pairs + 1; k += 2) {
        const char *name = pipeline_argv_at(p, 0, k);
        const char *val = pipeline_argv_at(p, 0, k + 1);
        if (strcmp(name, "truncated") == 0) {
            assert_string_equal(val, "1");
            truncated = 1;
        } else if (strcmp(name, "fields") == 0) {
            assert_string_equal(val, "5000");
        } else {
            assert_true(strncmp(name, "f.k", 3) == 0);
            total += strlen(val);
            assert_true(strlen(val) <= DEAD_LETTER_MAX_VALUE);
        }
    }
    assert_true(truncated);
    assert_true(total <= DEAD_LETTER_MAX_BYTES);
    pipeline_free(p);
    /* a small entry is copied whole, no marker */
    static const char *const ok[] = {"type", "a.b", "data", "{", NULL};
    redisReply *e = entry("1-0", ok);
    assert_int_equal(dead_letter_count(e->element[1]), 2);
    assert_int_equal(dead_letter_count(NULL), 0);
    freeReplyObject(e);
    freeReplyObject(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_valid),
        cmocka_unit_test(test_parse_job),
        cmocka_unit_test(test_parse_event_field_limit),
        cmocka_unit_test(test_dead_letter_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
