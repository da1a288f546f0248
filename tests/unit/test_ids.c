/* test_ids.c -- id layout, time ordering, uniqueness, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq.h"
#include "ids.h"
#include "timestamp.h"

#define BODY 26
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t decode_time(const char *body) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        const char *c = strchr(crockford, body[i]);
        assert_non_null(c);
        v = v * 32 + (uint64_t)(c - crockford);
    }
    return v;
}

static void test_layout(void **state) {
    char id[64];
    int64_t before = ts_now_ms();
    assert_int_equal(id_new(ID_PREFIX_EVENT, id, sizeof id), HQ_OK);
    int64_t after = ts_now_ms();
    assert_int_equal(strlen(id), strlen(ID_PREFIX_EVENT) + BODY);
    assert_memory_equal(id, "evt_", 4);
    const char *body = id + 4;
    for (int i = 0; i < BODY; i++)
        assert_non_null(memchr(crockford, body[i], 32));
    assert_true(body[0] <= '7'); /* 128 bits in 130: top char holds 3 bits */
    uint64_t t = decode_time(body);
    assert_true(t >= (uint64_t)before && t <= (uint64_t)after);
    assert_int_equal(id_valid(id, NULL, 0), HQ_OK);

    assert_int_equal(id_new(ID_PREFIX_ENDPOINT, id, sizeof id), HQ_OK);
    assert_memory_equal(id, "ep_", 3);
    assert_int_equal(strlen(id), 3 + BODY);
    assert_int_equal(id_new(ID_PREFIX_DELIVERY, id, sizeof id), HQ_OK);
    assert_memory_equal(id, "dlv_", 4);
    assert_int_equal(id_new("", id, sizeof id), HQ_OK);
    assert_int_equal(strlen(id), BODY);
}

static void test_buffer_sizes(void **state) {
    char id[4 + BODY + 1];
    assert_int_equal(id_new("evt_", id, sizeof id), HQ_OK); /* exact fit */
    assert_int_equal(strlen(id), 30);
    memset(id, 'x', sizeof id);
    assert_int_equal(id_new("evt_", id, sizeof id - 1), HQ_ERR);
    assert_int_equal(id_new("evt_", NULL, 64), HQ_ERR);
}

static void sleep_past_ms(void) {
    int64_t t = ts_now_ms();
    struct timespec ts = {0, 200000};
    while (ts_now_ms() <= t)
        nanosleep(&ts, NULL);
}

/* Ids from a later millisecond sort after every id of an earlier one, including across
 * the base32 digit carries that happen as time advances. */
static void test_time_order(void **state) {
    enum { ROUNDS = 40, PER = 50 };
    char prev_max[64] = "";
    for (int r = 0; r < ROUNDS; r++) {
        char lo[64] = "", hi[64] = "";
        int64_t t0 = ts_now_ms();
        for (int i = 0; i < PER; i++) {
            char id[64];
            assert_int_equal(id_new("dlv_", id, sizeof id), HQ_OK);
            if (!lo[0] || strcmp(id, lo) < 0)
                strcpy(lo, id);
            if (!hi[0] || strcmp(id, hi) > 0)
                strcpy(hi, id);
        }
        /* sleep_past_ms below guarantees this round's ids carry a later ms. */
        if (r > 0) {
            assert_true(decode_time(lo + 4) > decode_time(prev_max + 4));
            assert_true(strcmp(lo, prev_max) > 0);
        }
        assert_true(decode_time(lo + 4) >= (uint64_t)t0);
        strcpy(prev_max, hi);
        sleep_past_ms(); /* every id above has a time <= now < the next round's */
    }
}

/* One id per millisecond: the sequence is already in string order. */
static void test_sorted_sequence(void **state) {
    enum { N = 30 };
    char ids[N][64];
    for (int i = 0; i < N; i++) {
        assert_int_equal(id_new("evt_", ids[i], sizeof ids[i]), HQ_OK);
        sleep_past_ms();
    }
    for (int i = 1; i < N; i++) {
        assert_true(decode_time(ids[i] + 4) > decode_time(ids[i - 1] + 4));
        assert_true(strcmp(ids[i], ids[i - 1]) > 0);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_unique(void **state) {
    enum { N = 100000 };
    char *block = malloc((size_t)N * 32);
    char **ids = malloc(sizeof(char *) * N);
    assert_non_null(block);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        ids[i] = block + (size_t)i * 32;
        assert_int_equal(id_new("", ids[i], 32), HQ_OK);
    }
    qsort(ids, N, sizeof(char *), cmp_str);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(ids[i], ids[i - 1]) == 0;
    assert_int_equal(dups, 0);
    /* The random part must vary: count distinct last characters. */
    int seen[256] = {0};
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        unsigned char c = (unsigned char)ids[i][BODY - 1];
        distinct += !seen[c]++;
    }
    assert_int_equal(distinct, 32);
    free(ids);
    free(block);
}

/* The 80-bit random field as (hi 16 bits, lo 64 bits). */
static void decode_rand(const char *body, uint64_t *hi, uint64_t *lo) {
    uint64_t h = 0, l = 0;
    for (int i = 10; i < BODY; i++) {
        const char *c = strchr(crockford, body[i]);
        assert_non_null(c);
        h = h << 5 | l >> 59;
        l = l << 5 | (uint64_t)(c - crockford);
    }
    assert_true(h <= 0xFFFF);
    *hi = h;
    *lo = l;
}

/* Monotonic ULIDs: every id sorts after the one before, and within one millisecond the
 * random field is the previous one plus one. Runs until many same-ms pairs were seen,
 * so the +1 rule is really exercised. */
static void test_strictly_increasing(void **state) {
    enum { SAME_MS_WANTED = 2000, MAX_IDS = 5000000 };
    char prev[64], id[64];
    assert_int_equal(id_new("evt_", prev, sizeof prev), HQ_OK);
    int same_ms = 0;
    for (int n = 0; n < MAX_IDS && same_ms < SAME_MS_WANTED; n++) {
        assert_int_equal(id_new("evt_", id, sizeof id), HQ_OK);
        if (strcmp(id, prev) <= 0)
            fail_msg("%s after %s", id, prev);
        uint64_t t0 = decode_time(prev + 4), t1 = decode_time(id + 4);
        assert_true(t1 >= t0);
        uint64_t h0, l0, h1, l1;
        decode_rand(prev + 4, &h0, &l0);
        decode_rand(id + 4, &h1, &l1);
        if (t1 == t0) {
            same_ms++;
            assert_true(l1 == l0 + 1 || (l0 == UINT64_MAX && l1 == 0 && h1 == h0 + 1));
            if (l1 == l0 + 1)
                assert_true(h1 == h0);
        } else {
            /* a new millisecond draws a fresh field (chance of +1 by luck: 2^-80) */
            assert_false(h1 == h0 && l1 == l0 + 1);
        }
        strcpy(prev, id);
    }
    assert_int_equal(same_ms, SAME_MS_WANTED);
}

typedef struct thread_ids {
    int n;
    char (*ids)[32];
    int rc;
} thread_ids;

static void *make_ids(void *arg) {
    thread_ids *t = arg;
    t->rc = HQ_OK;
    for (int i = 0; i < t->n; i++) {
        if (id_new("", t->ids[i], sizeof t->ids[i]) != HQ_OK)
            t->rc = HQ_ERR;
    }
    return NULL;
}

/* Several threads at once (the producer library allows it): every id unique, and each
 * thread's own ids in strictly increasing order. */
static void test_threads(void **state) {
    enum { T = 4, N = 20000 };
    pthread_t th[T];
    thread_ids t[T];
    char(*all)[32] = malloc(sizeof(*all) * T * N);
    assert_non_null(all);
    for (int k = 0; k < T; k++) {
        t[k] = (thread_ids){.n = N, .ids = all + k * N};
        assert_int_equal(pthread_create(&th[k], NULL, make_ids, &t[k]), 0);
    }
    for (int k = 0; k < T; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_int_equal(t[k].rc, HQ_OK);
        for (int i = 1; i < N; i++)
            assert_true(strcmp(t[k].ids[i], t[k].ids[i - 1]) > 0);
    }
    char **p = malloc(sizeof(char *) * T * N);
    assert_non_null(p);
    for (int i = 0; i < T * N; i++)
        p[i] = all[i];
    qsort(p, (size_t)T * N, sizeof(char *), cmp_str);
    for (int i = 1; i < T * N; i++)
        assert_true(strcmp(p[i], p[i - 1]) != 0);
    free(p);
    free(all);
}

/* A forked child must not continue the parent's sequence: without a re-seed, the ids
 * both make next would share their random fields (same state, same draws). */
static void test_fork_reseeds(void **state) {
    enum { K = 3 };
    char id[64];
    assert_int_equal(id_new("", id, sizeof id), HQ_OK); /* the parent is seeded */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        char ids[K][32] = {{0}}; /* padding after each NUL is written too */
        int ok = 1;
        for (int i = 0; i < K; i++)
            ok &= id_new("", ids[i], sizeof ids[i]) == HQ_OK;
        ok &= write(fd[1], ids, sizeof ids) == (ssize_t)sizeof ids;
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    char mine[K][32], theirs[K][32];
    for (int i = 0; i < K; i++)
        assert_int_equal(id_new("", mine[i], sizeof mine[i]), HQ_OK);
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t r = read(fd[0], (char *)theirs + got, sizeof theirs - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < K; i++) {
        assert_int_equal(id_valid(theirs[i], NULL, 0), HQ_OK);
        for (int j = 0; j < K; j++) {
            uint64_t h0, l0, h1, l1;
            decode_rand(mine[i], &h0, &l0);
            decode_rand(theirs[j], &h1, &l1);
            if (h0 == h1 && l0 == l1)
                fail_msg("child %s repeats parent %s's random field", theirs[j], mine[i]);
        }
    }
}

static void test_valid(void **state) {
    char err[HQ_ERRLEN];
    assert_int_equal(id_valid("evt_01JDX3ABCDEFGHJKMNPQRSTVWX", err, sizeof err), HQ_OK);
    assert_int_equal(id_valid("a", err, sizeof err), HQ_OK);
    assert_int_equal(id_valid("order-42_X", err, sizeof err), HQ_OK);
    char max[ID_MAX + 2];
    memset(max, 'a', ID_MAX);
    max[ID_MAX] = '\0';
    assert_int_equal(id_valid(max, err, sizeof err), HQ_OK);
    max[ID_MAX] = 'a';
    max[ID_MAX + 1] = '\0';
    assert_int_equal(id_valid(max, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "128"));

    assert_int_equal(id_valid("", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(id_valid(NULL, err, sizeof err), HQ_ERR);
    const char *bad[] = {"a.b", "a:b", "a b", "a\tb", "a/b", "a{b}", "a\nb", "é", "a,b", "a*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (id_valid(bad[i], err, sizeof err) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(id_valid("a.b", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "'.'"));
    assert_int_equal(id_valid("a\nb", err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "0x0a"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_buffer_sizes),
        cmocka_unit_test(test_time_order),
        cmocka_unit_test(test_sorted_sequence),
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_strictly_increasing),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork_reseeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
