/* test_redis_wait.c -- replies waited for through a wait hook, and a pipeline sent and
 * read in halves, against a real redis-server on a unix socket this test starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "hq.h"
#include "pipeline.h"
#include "redis_conn.h"

static char dir[64], sock[128], url[160];
static pid_t server;

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hq-redis-wait-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(url, sizeof url, "unix://%s", sock);
    server = fork();
    if (server == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* up to 5 s for the socket */
        if (access(sock, F_OK) == 0)
            return 0;
        usleep(50000);
    }
    return -1;
}

static int teardown(void **state) {
    (void)state;
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    unlink(sock);
    rmdir(dir);
    return 0;
}

typedef struct hook {
    int calls;
    int last_fd;
    int refuse; /* answer "timed out" */
} hook;

static int wait_hook(void *ud, int fd, int64_t timeout_ms) {
    hook *h = ud;
    h->calls++;
    h->last_fd = fd;
    if (h->refuse)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, (int)timeout_ms) > 0 ? 1 : 0;
}

static void test_hook_waits_for_every_reply(void **state) {
    (void)state;
    char err[HQ_ERRLEN];
    rconn *r = rconn_connect(url, 2000, 2000, err, sizeof err);
    assert_non_null(r);
    hook h = {0};
    rconn_set_wait(r, wait_hook, &h);
    redisReply *rep = rconn_cmd(r, err, sizeof err, "PING");
    assert_non_null(rep);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    assert_true(h.calls >= 1);
    assert_int_equal(h.last_fd, rconn_fd(r));
    /* a pipeline waits through it too, and gets every reply in order */
    pipeline *p = pipeline_new();
    for (int i = 0; i < 50; i++) {
        pipeline_begin(p, i, NULL);
        pipeline_arg(p, "INCR");
        pipeline_arg(p, "n");
        pipeline_end(p);
    }
    int before = h.calls;
    assert_int_equal(pipeline_exec(p, r, err, sizeof err), HQ_OK);
    assert_true(h.calls > before);
    for (int i = 0; i < 50; i++)
        assert_int_equal(pipeline_reply(p, (size_t)i)->integer, i + 1);
    /* a hook that says "timed out" fails the command and drops the connection */
    h.refuse = 1;
    rep = rconn_cmd(r, err, sizeof err, "PING");
    assert_null(rep);
    assert_non_null(strstr(err, "timed out"));
    assert_false(rconn_connected(r));
    unsigned gen = rconn_generation(r);
    h.refuse = 0;
    assert_int_equal(rconn_reconnect(r, err, sizeof err), HQ_OK);
    assert_int_equal(rconn_generation(r), gen + 1);
    pipeline_free(p);
    rconn_free(r);
}

/* XREAD BLOCK 5000 STREAMS s $: what a reader keeps pending, tagged tag. */
static void block_read(pipeline *p, int tag) {
    pipeline_begin(p, tag, NULL);
    pipeline_arg(p, "XREAD");
    pipeline_arg(p, "BLOCK");
    pipeline_arg(p, "5000");
    pipeline_arg(p, "STREAMS");
    pipeline_arg(p, "s");
    pipeline_arg(p, "$");
    pipeline_end(p);
}

/* A blocking read sent on its own connection, answered when another connection adds an
 * entry: nothing is read before, everything after. */
static void test_send_then_recv(void **state) {
    (void)state;
    char err[HQ_ERRLEN];
    rconn *w = rconn_connect(url, 2000, 2000, err, sizeof err);
    rconn *rd = rconn_connect(url, 2000, 2000, err, sizeof err);
    assert_non_null(w);
    assert_non_null(rd);
    pipeline *p = pipeline_new();
    block_read(p, 7);
    assert_int_equal(pipeline_send(p, rd, err, sizeof err), HQ_OK);
    struct pollfd pf = {.fd = rconn_fd(rd), .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 100), 0); /* blocked in Redis: nothing to read */
    redisReply *rep = rconn_cmd(w, err, sizeof err, "XADD s * k v");
    assert_non_null(rep);
    freeReplyObject(rep);
    int complete = 0;
    for (int i = 0; i < 50 && !complete; i++) {
        assert_int_equal(poll(&pf, 1, 1000), 1);
        assert_int_equal(pipeline_recv(p, rd, &complete, err, sizeof err), HQ_OK);
    }
    assert_true(complete);
    assert_int_equal(pipeline_tag(p, 0), 7);
    rep = pipeline_reply(p, 0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 1);
    /* complete stays complete */
    assert_int_equal(pipeline_recv(p, rd, &complete, err, sizeof err), HQ_OK);
    assert_true(complete);
    /* the reader's connection closed by the server: recv reports it */
    pipeline_reset(p);
    block_read(p, 0);
    assert_int_equal(pipeline_send(p, rd, err, sizeof err), HQ_OK);
    rep = rconn_cmd(w, err, sizeof err, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(poll(&pf, 1, 2000), 1);
    assert_int_equal(pipeline_recv(p, rd, &complete, err, sizeof err), HQ_ERR);
    assert_false(rconn_connected(rd));
    pipeline_free(p);
    rconn_free(w);
    rconn_free(rd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_waits_for_every_reply),
        cmocka_unit_test(test_send_then_recv),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
