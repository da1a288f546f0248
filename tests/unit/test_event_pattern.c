/* test_event_pattern.c -- event type and pattern validation, matching, pattern lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq.h"
#include "event_pattern.h"

static void test_type_valid(void **state) {
    const char *good[] = {"task:transition", "message.received",  "invoice.paid.v2", "a",
                          "A-b_C9",          "endpoint.disabled", "a:b.c:d",         "1.2.3"};
    char err[HQ_ERRLEN];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (pat_type_valid(good[i], err, sizeof err) != HQ_OK)
            fail_msg("rejected '%s': %s", good[i], err);
    }
    struct {
        const char *s, *why;
    } bad[] = {
        {"", "empty"},
        {".a", "starts with '.'"},
        {"a.", "ends with '.'"},
        {":a", "starts with ':'"},
        {"a:", "ends with ':'"},
        {"a..b", "empty segment"},
        {"a.:b", "empty segment"},
        {"a b", "not allowed"},
        {"a/b", "'/'"},
        {"a*", "'*'"},
        {"*", "'*'"},
        {"task:*", "'*'"},
        {"caf\xc3\xa9", "0xc3"},
        {"a\nb", "0x0a"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (pat_type_valid(bad[i].s, err, sizeof err) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i].s);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].s, err, bad[i].why);
    }
    assert_int_equal(pat_type_valid(NULL, err, sizeof err), HQ_ERR);
}

static void test_type_length(void **state) {
    char s[PAT_MAX + 2];
    memset(s, 'a', PAT_MAX);
    s[PAT_MAX] = '\0';
    assert_int_equal(pat_type_valid(s, NULL, 0), HQ_OK);
    assert_int_equal(pat_valid(s, NULL, 0), HQ_OK);
    s[PAT_MAX] = 'a';
    s[PAT_MAX + 1] = '\0';
    char err[HQ_ERRLEN];
    assert_int_equal(pat_type_valid(s, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "longer than 128"));
    assert_int_equal(pat_valid(s, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "longer than 128"));
    /* A 128-char prefix pattern is fine; 129 is not. */
    memset(s, 'a', PAT_MAX);
    s[PAT_MAX - 2] = '.';
    s[PAT_MAX - 1] = '*';
    s[PAT_MAX] = '\0';
    assert_int_equal(pat_valid(s, err, sizeof err), HQ_OK);
}

static void test_pat_valid(void **state) {
    const char *good[] = {"*",     "task:*", "message.*",       "message.received",
                          "a.b.*", "a:b:*",  "invoice.paid.v2", "x"};
    char err[HQ_ERRLEN];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (pat_valid(good[i], err, sizeof err) != HQ_OK)
            fail_msg("rejected '%s': %s", good[i], err);
    }
    struct {
        const char *s, *why;
    } bad[] = {
        {"", "empty"},
        {"**", "must follow"},
        {"task*", "must follow"},
        {"task:*:x", "'*' only allowed"},
        {"*.x", "'*' only allowed"},
        {"a.*.b", "'*' only allowed"},
        {"ta*sk", "'*' only allowed"},
        {".*", "nothing before"},
        {":*", "nothing before"},
        {"a..*", "empty segment"},
        {".a.*", "starts with '.'"},
        {"a.**", "must follow"},
        {"task:", "ends with ':'"},
        {"task :*", "' '"},
        {"a,b", "','"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (pat_valid(bad[i].s, err, sizeof err) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i].s);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].s, err, bad[i].why);
    }
    assert_int_equal(pat_valid(NULL, NULL, 0), HQ_ERR);
}

static void test_match(void **state) {
    struct {
        const char *pat, *type;
        int want;
    } cases[] = {
        {"*", "task:transition", 1},
        {"*", "a", 1},
        {"task:transition", "task:transition", 1},
        {"task:transition", "task:transitions", 0},
        {"task:transition", "task:transitio", 0},
        {"task:transition", "Task:transition", 0}, /* case-sensitive */
        {"task:*", "task:transition", 1},
        {"task:*", "task:a:b", 1},
        {"task:*", "task:x.y", 1},
        {"task:*", "task", 0},
        {"task:*", "task.transition", 0}, /* the separator is part of the prefix */
        {"task:*", "tasks:transition", 0},
        {"task:*", "ta", 0},
        {"message.*", "message.received", 1},
        {"message.*", "message.received.v2", 1}, /* deeper */
        {"message.*", "message", 0},
        {"message.*", "messages.received", 0},
        {"message.*", "other.received", 0},
        {"message.received.*", "message.received.v2", 1},
        {"message.received.*", "message.received", 0},
        {"message.received.*", "message.deleted.v2", 0},
        {"a.b", "a:b", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(pat_valid(cases[i].pat, NULL, 0), HQ_OK);
        assert_int_equal(pat_type_valid(cases[i].type, NULL, 0), HQ_OK);
        if (pat_match(cases[i].pat, cases[i].type) != cases[i].want)
            fail_msg("pat_match('%s', '%s') != %d", cases[i].pat, cases[i].type, cases[i].want);
    }
}

static void test_list_parse(void **state) {
    pat_list l;
    char err[HQ_ERRLEN];
    assert_int_equal(pat_list_parse("task:*, message.received ,invoice.paid", &l, err, sizeof err),
                     HQ_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0], "task:*");
    assert_string_equal(l.items[1], "message.received");
    assert_string_equal(l.items[2], "invoice.paid");
    char *j = pat_list_join(&l);
    assert_string_equal(j, "task:*,message.received,invoice.paid");
    free(j);
    assert_true(pat_list_match(&l, "task:created"));
    assert_true(pat_list_match(&l, "message.received"));
    assert_true(pat_list_match(&l, "invoice.paid"));
    assert_false(pat_list_match(&l, "message.deleted"));
    assert_false(pat_list_match(&l, "invoice.paid.v2"));
    pat_list_clear(&l);
    assert_null(l.items);
    assert_int_equal(l.n, 0);
    pat_list_clear(&l); /* twice is fine */
    pat_list_clear(NULL);

    assert_int_equal(pat_list_parse("*", &l, err, sizeof err), HQ_OK);
    assert_int_equal(l.n, 1);
    assert_true(pat_list_match(&l, "anything.at:all"));
    pat_list_clear(&l);

    assert_int_equal(pat_list_parse("  a.b\t", &l, err, sizeof err), HQ_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0], "a.b");
    pat_list_clear(&l);
}

static void list_bad(const char *csv, const char *why) {
    pat_list l = {(char **)0x1, 99}; /* garbage: parse must reset it */
    char err[HQ_ERRLEN] = "";
    if (pat_list_parse(csv, &l, err, sizeof err) != HQ_ERR)
        fail_msg("accepted '%s'", csv);
    assert_null(l.items);
    assert_int_equal(l.n, 0);
    if (!strstr(err, why))
        fail_msg("'%s': message '%s' lacks '%s'", csv, err, why);
}

static void test_list_errors(void **state) {
    list_bad("", "item 1 is empty");
    list_bad("  ", "item 1 is empty");
    list_bad("a,,b", "item 2 is empty");
    list_bad("a, ,b", "item 2 is empty");
    list_bad(",a", "item 1 is empty");
    list_bad("a,", "item 2 is empty");
    list_bad("a,task*", "must follow"); /* later items validated, earlier freed */
    list_bad("a,b c", "' '");
    list_bad(NULL, "empty");
}

static void test_list_limits(void **state) {
    /* Exactly PAT_LIST_MAX items parse; one more does not. */
    size_t cap = (size_t)(PAT_LIST_MAX + 1) * 8;
    char *csv = malloc(cap);
    assert_non_null(csv);
    size_t off = 0;
    for (int i = 0; i < PAT_LIST_MAX; i++)
        off += (size_t)snprintf(csv + off, cap - off, "%se%d", i ? "," : "", i);
    pat_list l;
    char err[HQ_ERRLEN];
    assert_int_equal(pat_list_parse(csv, &l, err, sizeof err), HQ_OK);
    assert_int_equal(l.n, PAT_LIST_MAX);
    assert_string_equal(l.items[PAT_LIST_MAX - 1], "e255");
    char *j = pat_list_join(&l);
    assert_string_equal(j, csv); /* canonical input joins back to itself */
    free(j);
    assert_true(pat_list_match(&l, "e200"));
    assert_false(pat_list_match(&l, "e256"));
    pat_list_clear(&l);
    snprintf(csv + off, cap - off, ",e%d", PAT_LIST_MAX);
    assert_int_equal(pat_list_parse(csv, &l, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "more than 256"));
    free(csv);

    char item[PAT_MAX + 10];
    memset(item, 'a', sizeof item - 1);
    item[sizeof item - 1] = '\0';
    assert_int_equal(pat_list_parse(item, &l, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "longer than 128"));
}

static void test_list_join_empty(void **state) {
    pat_list l = {NULL, 0};
    char *j = pat_list_join(&l);
    assert_non_null(j);
    assert_string_equal(j, "");
    free(j);
    assert_false(pat_list_match(&l, "a"));
    assert_false(pat_list_match(NULL, "a"));
}

/* Parse -> join -> parse gives the same list. */
static void test_list_round_trip(void **state) {
    pat_list a, b;
    assert_int_equal(pat_list_parse(" x.* ,y:z,* ", &a, NULL, 0), HQ_OK);
    char *j = pat_list_join(&a);
    assert_string_equal(j, "x.*,y:z,*");
    assert_int_equal(pat_list_parse(j, &b, NULL, 0), HQ_OK);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        assert_string_equal(a.items[i], b.items[i]);
    free(j);
    pat_list_clear(&a);
    pat_list_clear(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_valid),      cmocka_unit_test(test_type_length),
        cmocka_unit_test(test_pat_valid),       cmocka_unit_test(test_match),
        cmocka_unit_test(test_list_parse),      cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_list_limits),     cmocka_unit_test(test_list_join_empty),
        cmocka_unit_test(test_list_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
