/* test_timer_heap.c -- the worker's timers fire in deadline order, move, and cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "timer_heap.h"

static void test_empty(void **state) {
    (void)state;
    timer_heap *t = theap_new(4);
    assert_non_null(t);
    assert_true(theap_next(t) == THEAP_NEVER);
    assert_int_equal(theap_pop_due(t, INT64_MAX - 1), -1);
    assert_false(theap_is_set(t, 0));
    assert_null(theap_new(0));
    theap_free(t);
    theap_free(NULL);
}

static void test_order_and_due(void **state) {
    (void)state;
    timer_heap *t = theap_new(5);
    theap_set(t, 0, 50);
    theap_set(t, 1, 10);
    theap_set(t, 2, 30);
    theap_set(t, 3, 20);
    theap_set(t, 4, 40);
    assert_int_equal(theap_next(t), 10);
    assert_int_equal(theap_pop_due(t, 5), -1); /* nothing due yet */
    assert_int_equal(theap_pop_due(t, 35), 1);
    assert_int_equal(theap_pop_due(t, 35), 3);
    assert_int_equal(theap_pop_due(t, 35), 2);
    assert_int_equal(theap_pop_due(t, 35), -1);
    assert_int_equal(theap_next(t), 40);
    assert_false(theap_is_set(t, 1));
    assert_true(theap_is_set(t, 0));
    assert_int_equal(theap_due(t, 0), 50);
    theap_free(t);
}

static void test_move_cancel_earlier(void **state) {
    (void)state;
    timer_heap *t = theap_new(3);
    theap_set(t, 0, 100);
    theap_set(t, 1, 200);
    theap_set(t, 2, 300);
    theap_set(t, 2, 50); /* moved earlier */
    assert_int_equal(theap_next(t), 50);
    theap_set(t, 2, 500); /* and later */
    assert_int_equal(theap_next(t), 100);
    theap_set_earlier(t, 1, 400); /* never postpones */
    assert_int_equal(theap_due(t, 1), 200);
    theap_set_earlier(t, 1, 150);
    assert_int_equal(theap_due(t, 1), 150);
    theap_cancel(t, 0);
    theap_cancel(t, 0); /* twice is harmless */
    theap_set(t, 7, 1); /* out of range: ignored */
    theap_cancel(t, -1);
    assert_int_equal(theap_next(t), 150);
    assert_int_equal(theap_pop_due(t, 1000), 1);
    assert_int_equal(theap_pop_due(t, 1000), 2);
    assert_int_equal(theap_pop_due(t, 1000), -1);
    theap_set_earlier(t, 0, 9); /* unset: set */
    assert_int_equal(theap_next(t), 9);
    theap_free(t);
}

/* Random operations against a brute-force model. */
static void test_against_model(void **state) {
    (void)state;
    enum { N = 37 };
    timer_heap *t = theap_new(N);
    int64_t model[N];
    for (int i = 0; i < N; i++)
        model[i] = -1;
    srand(7);
    int64_t now = 0;
    for (int step = 0; step < 20000; step++) {
        int id = rand() % N, op = rand() % 4;
        if (op == 0 || op == 1) {
            int64_t due = now + rand() % 1000;
            theap_set(t, id, due);
            model[id] = due;
        } else if (op == 2) {
            theap_cancel(t, id);
            model[id] = -1;
        } else {
            now += rand() % 50;
            int got = theap_pop_due(t, now);
            int64_t best = -1;
            for (int i = 0; i < N; i++)
                if (model[i] >= 0 && model[i] <= now && (best < 0 || model[i] < best))
                    best = model[i];
            if (best < 0) {
                assert_int_equal(got, -1);
            } else {
                assert_true(got >= 0);
                assert_true(model[got] == best); /* an earliest one (ties: any) */
                model[got] = -1;
            }
        }
        int64_t min = THEAP_NEVER;
        for (int i = 0; i < N; i++)
            if (model[i] >= 0 && model[i] < min)
                min = model[i];
        assert_true(theap_next(t) == min);
    }
    theap_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order_and_due),
        cmocka_unit_test(test_move_cancel_earlier),
        cmocka_unit_test(test_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
