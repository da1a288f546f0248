/* test_api_stream_frame.c -- the pure parts of the SSE stream: stream ids, event frames
 * from entries, the per-client queue (split frames, byte counts, references) and the
 * tenant/pattern filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_stream_frame.h"
#include "hq.h"
#include "reply_fixture.h"

static const envelope_limits LIM = {1024 * 1024, 32};

/* [id, [k1, v1, k2, v2, ...]] from a NULL-terminated list of fields. */
static redisReply *entry(const char *id, ...) {
    const char *kv[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, id);
    for (const char *s; (s = va_arg(ap, const char *)) && n < 64;)
        kv[n++] = s;
    va_end(ap);
    redisReply *e = reply_arr(2), *f = reply_arr(n);
    e->element[0] = reply_str(id);
    e->element[1] = f;
    for (size_t i = 0; i < n; i++)
        f->element[i] = reply_str(kv[i]);
    return e;
}

static void test_sid(void **state) {
    sse_sid a, b;
    char buf[SSE_SID_LEN];
    (void)state;
    assert_int_equal(sse_sid_parse("1700000000000-0", 15, &a), HQ_OK);
    assert_true(a.ms == 1700000000000ULL && a.seq == 0);
    assert_int_equal(sse_sid_parse("18446744073709551615-18446744073709551615", 41, &b), HQ_OK);
    assert_true(b.ms == UINT64_MAX && b.seq == UINT64_MAX);
    sse_sid_fmt(b, buf, sizeof(buf));
    assert_string_equal(buf, "18446744073709551615-18446744073709551615");
    const char *bad[] = {"",     "5",     "5-",   "-5",   "a-1",
                         "1-a",  "1-2-3", "1 -2", "1-2 ", "18446744073709551616-0",
                         "0x1-0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sse_sid_parse(bad[i], strlen(bad[i]), &a) == HQ_OK)
            fail_msg("accepted '%s'", bad[i]);
    /* the length bounds the text: a NUL-free prefix is not the whole id */
    assert_int_equal(sse_sid_parse("12-34", 4, &a), HQ_OK);
    assert_true(a.ms == 12 && a.seq == 3);
    sse_sid_parse("5-1", 3, &a);
    sse_sid_parse("5-2", 3, &b);
    assert_true(sse_sid_cmp(a, b) < 0 && sse_sid_cmp(b, a) > 0 && sse_sid_cmp(a, a) == 0);
    sse_sid_parse("4-9", 3, &b);
    assert_true(sse_sid_cmp(a, b) > 0); /* ms first, numerically */
    sse_sid_parse("10-0", 4, &b);
    assert_true(sse_sid_cmp(a, b) < 0); /* not as text */
}

static void test_frame_entry(void **state) {
    char err[HQ_ERRLEN];
    sse_frame *f = NULL;
    (void)state;
    redisReply *e = entry("1700000000123-4", "type", "task:created", "data",
                          "{\"a\":\"x\\ny\",\n \"b\":\r\n[1,2]}", "tenant", "acme", NULL);
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_OK);
    assert_string_equal(f->text, "id: 1700000000123-4\nevent: task:created\ndata: "
                                 "{\"id\":\"evt_17000000001234\",\"type\":\"task:created\","
                                 "\"timestamp\":\"2023-11-14T22:13:20.123Z\",\"tenant\":\"acme\","
                                 "\"data\":{\"a\":\"x\\ny\",  \"b\":  [1,2]}}\n\n");
    assert_int_equal(f->len, strlen(f->text));
    assert_int_equal(f->kind, SSE_EVENT);
    assert_string_equal(f->type, "task:created");
    assert_string_equal(f->tenant, "acme");
    assert_true(f->sid.ms == 1700000000123ULL && f->sid.seq == 4);
    /* exactly one data line: the raw newlines did not split it */
    const char *d = strstr(f->text, "data: ");
    assert_non_null(d);
    assert_ptr_equal(strchr(d, '\n'), f->text + f->len - 2);
    sse_frame_unref(f);
    freeReplyObject(e);

    /* producer-chosen id and ts, no tenant */
    e = entry("5-0", "id", "order_1", "ts", "0", "type", "a.b", "data", "7", NULL);
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_OK);
    assert_string_equal(f->text, "id: 5-0\nevent: a.b\ndata: {\"id\":\"order_1\",\"type\":\"a.b\","
                                 "\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":7}\n\n");
    assert_null(f->tenant);
    sse_frame_unref(f);
    freeReplyObject(e);

    /* what the fanout would dead-letter is no frame */
    const char *why[][2] = {{"type", "bad type!"}, {"data", "{not json"}, {"tenant", "a b"}};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(why[i][0], "type") == 0)
            e = entry("6-0", "type", why[i][1], "data", "1", NULL);
        else if (strcmp(why[i][0], "data") == 0)
            e = entry("6-0", "type", "a", "data", why[i][1], NULL);
        else
            e = entry("6-0", "type", "a", "data", "1", "tenant", why[i][1], NULL);
        assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_ERR);
        assert_null(f);
        freeReplyObject(e);
    }
    e = entry("6-0", "data", "1", NULL);
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "type"));
    freeReplyObject(e);
    e = entry("not-an-id", "type", "a", "data", "1", NULL);
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_ERR);
    freeReplyObject(e);
    e = reply_nil();
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_ERR);
    freeReplyObject(e);
}

static void test_queue(void **state) {
    sse_queue q;
    char buf[64];
    size_t got;
    (void)state;
    memset(&q, 0, sizeof(q));
    sse_frame *a = sse_frame_control("aaaa\n\n", 6), *b = sse_frame_control("bbbbbbbbbb\n\n", 12);
    assert_int_equal(sse_queue_take(&q, buf, sizeof(buf)), 0);
    assert_int_equal(sse_queue_push(&q, a), HQ_OK);
    assert_int_equal(sse_queue_push(&q, b), HQ_OK);
    assert_int_equal(sse_queue_push(&q, a), HQ_OK);
    assert_int_equal(a->refs, 3); /* ours + two queued */
    assert_int_equal(q.bytes, 24);
    /* a frame split across reads, bytes counted down exactly */
    got = sse_queue_take(&q, buf, 4);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "aaaa", 4);
    assert_int_equal(q.bytes, 20);
    got = sse_queue_take(&q, buf, 5);
    assert_memory_equal(buf, "\n\nbbb", 5);
    assert_int_equal(a->refs, 2); /* the first copy was fully taken */
    got = sse_queue_take(&q, buf, sizeof(buf));
    assert_int_equal(got, 15);
    assert_memory_equal(buf, "bbbbbbb\n\naaaa\n\n", 15);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.n, 0);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 1);
    /* growth keeps order across the ring's wrap */
    for (int i = 0; i < 10; i++)
        sse_queue_push(&q, i % 2 ? b : a);
    sse_queue_take(&q, buf, 6 * 3 + 12 * 3); /* 6 frames out: head moved */
    for (int i = 0; i < 40; i++)
        sse_queue_push(&q, i % 2 ? b : a);
    assert_int_equal(q.n, 44);
    size_t total = 0, n;
    int next_a = 1;
    char one[12];
    while ((n = sse_queue_take(&q, one, next_a ? 6 : 12)) > 0) {
        assert_memory_equal(one, next_a ? "aaaa\n\n" : "bbbbbbbbbb\n\n", n);
        total += n;
        next_a = !next_a;
    }
    assert_int_equal(total, 22 * 6 + 22 * 12);
    /* clear drops the references */
    sse_queue_push(&q, a);
    sse_queue_push(&q, b);
    sse_queue_clear(&q);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 1);
    assert_null(q.ring);
    sse_frame_unref(a);
    sse_frame_unref(b);
    sse_frame_unref(NULL);
}

static sse_frame *ev(const char *type, const char *tenant) {
    char err[HQ_ERRLEN];
    sse_frame *f = NULL;
    redisReply *e = tenant ? entry("1-0", "type", type, "data", "1", "tenant", tenant, NULL)
                           : entry("1-0", "type", type, "data", "1", NULL);
    assert_int_equal(sse_frame_entry(e, &LIM, &f, err, sizeof(err)), HQ_OK);
    freeReplyObject(e);
    return f;
}

static void test_filter(void **state) {
    char err[HQ_ERRLEN];
    sse_filter all = {0}, acme = {0}, narrow = {0};
    (void)state;
    sse_frame *t1 = ev("task:created", "acme"), *t2 = ev("task:created", "globex"),
              *t3 = ev("task:created", NULL), *m = ev("mission.done", "acme"),
              *o = ev("other.thing", "acme");
    assert_true(sse_filter_match(&all, t1) && sse_filter_match(&all, t2) &&
                sse_filter_match(&all, t3));
    acme.tenant = strdup("acme");
    assert_true(sse_filter_match(&acme, t1));
    assert_false(sse_filter_match(&acme, t2)); /* another tenant's */
    assert_false(sse_filter_match(&acme, t3)); /* untenanted: not a tenant's */
    assert_int_equal(pat_list_parse("task:*,mission.done", &acme.want, err, sizeof(err)), HQ_OK);
    assert_true(sse_filter_match(&acme, t1) && sse_filter_match(&acme, m));
    assert_false(sse_filter_match(&acme, o));
    /* a token's patterns and ?events= both apply: ?events cannot widen the token */
    assert_int_equal(pat_list_parse("task:*", &narrow.allow, err, sizeof(err)), HQ_OK);
    assert_int_equal(pat_list_parse("*", &narrow.want, err, sizeof(err)), HQ_OK);
    assert_true(sse_filter_match(&narrow, t1));
    assert_false(sse_filter_match(&narrow, m));
    sse_filter_clear(&narrow);
    assert_int_equal(pat_list_parse("mission.*", &narrow.allow, err, sizeof(err)), HQ_OK);
    assert_int_equal(pat_list_parse("task:*", &narrow.want, err, sizeof(err)), HQ_OK);
    assert_false(sse_filter_match(&narrow, t1) || sse_filter_match(&narrow, m));
    sse_filter_clear(&narrow);
    sse_filter_clear(&acme);
    sse_filter_clear(&all);
    sse_filter_clear(NULL);
    sse_frame_unref(t1);
    sse_frame_unref(t2);
    sse_frame_unref(t3);
    sse_frame_unref(m);
    sse_frame_unref(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid),
        cmocka_unit_test(test_frame_entry),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
