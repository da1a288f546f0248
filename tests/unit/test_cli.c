/* test_cli.c -- the CLI without Redis: argument parsing, usage exit codes, tables,
 * and the endpoint matching rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "cli.h"
#include "endpoint.h"
#include "timestamp.h"

/* Run cli_main with captured stdout/stderr. */
typedef struct run {
    int rc;
    char out[8192];
    char err[8192];
} run;

static void slurp(FILE *f, char *buf, size_t len) {
    size_t n;
    rewind(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void run_cli(run *r, char *const *envp, int argc, char **argv) {
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    r->rc = cli_main(argc, argv, envp, out, err);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

#define RUN(r, ...)                                                                                \
    do {                                                                                           \
        char *argv_[] = {"hookq", __VA_ARGS__, NULL};                                              \
        char *env_[] = {"HOOKQ_REDIS_URL=unix:///nonexistent/hookq-test.sock", NULL};              \
        run_cli((r), env_, (int)(sizeof argv_ / sizeof argv_[0]) - 1, argv_);                      \
    } while (0)

static void test_parse_options(void **state) {
    static const cli_opt spec[] = {{"url", 1}, {"header", 1}, {"all", 0}, {NULL, 0}};
    cli x = {0};
    cli_args a;
    char *argv[] = {"cmd",   "pos1",     "--url",  "http://a", "--header=X-A: 1",
                    "--all", "--header", "X-B: 2", "-",        "--json",
                    "--",    "--url"};
    (void)state;
    assert_int_equal(cli_parse(&x, 12, argv, spec, 1, 3, &a), CLI_OK);
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[0], "pos1");
    assert_string_equal(a.pos[1], "-");     /* "-" is stdin, a positional */
    assert_string_equal(a.pos[2], "--url"); /* after "--" everything is positional */
    assert_string_equal(cli_get(&a, "url"), "http://a");
    assert_string_equal(cli_get(&a, "header"), "X-B: 2"); /* last wins for cli_get */
    assert_true(cli_has(&a, "all"));
    assert_false(cli_has(&a, "nope"));
    assert_null(cli_get(&a, "all"));
    assert_int_equal(x.json, 1);
    /* Repeatable options keep every occurrence in order. */
    assert_int_equal(a.nopt, 4);
    assert_string_equal(a.oval[1], "X-A: 1");
}

static void test_parse_errors(void **state) {
    static const cli_opt spec[] = {{"url", 1}, {"all", 0}, {NULL, 0}};
    cli x = {0};
    cli_args a;
    char *unknown[] = {"cmd", "--nope"};
    char *short_opt[] = {"cmd", "-x"};
    char *missing[] = {"cmd", "--url"};
    char *flagval[] = {"cmd", "--all=1"};
    char *toomany[] = {"cmd", "a", "b"};
    char *help[] = {"cmd", "--help"};
    (void)state;
    assert_int_equal(cli_parse(&x, 2, unknown, spec, 0, 1, &a), CLI_USAGE);
    assert_non_null(strstr(x.err, "--nope"));
    assert_int_equal(cli_parse(&x, 2, short_opt, spec, 0, 1, &a), CLI_USAGE);
    assert_int_equal(cli_parse(&x, 2, missing, spec, 0, 1, &a), CLI_USAGE);
    assert_non_null(strstr(x.err, "needs a value"));
    assert_int_equal(cli_parse(&x, 2, flagval, spec, 0, 1, &a), CLI_USAGE);
    assert_int_equal(cli_parse(&x, 3, toomany, spec, 0, 1, &a), CLI_USAGE);
    assert_non_null(strstr(x.err, "'b'"));
    assert_int_equal(cli_parse(&x, 1, toomany, spec, 1, 1, &a), CLI_USAGE);
    assert_int_equal(cli_parse(&x, 2, help, spec, 0, 1, &a), CLI_HELP);
}

static void test_get_int(void **state) {
    static const cli_opt spec[] = {{"limit", 1}, {NULL, 0}};
    cli x = {0};
    cli_args a;
    long v;
    char *ok[] = {"cmd", "--limit", "25"};
    char *bad[] = {"cmd", "--limit", "2x"};
    char *zero[] = {"cmd", "--limit", "0"};
    char *none[] = {"cmd"};
    (void)state;
    assert_int_equal(cli_parse(&x, 3, ok, spec, 0, 0, &a), CLI_OK);
    assert_int_equal(cli_get_int(&x, &a, "limit", 7, 100, &v), CLI_OK);
    assert_int_equal(v, 25);
    assert_int_equal(cli_parse(&x, 3, bad, spec, 0, 0, &a), CLI_OK);
    assert_int_equal(cli_get_int(&x, &a, "limit", 7, 100, &v), CLI_USAGE);
    assert_int_equal(cli_parse(&x, 3, zero, spec, 0, 0, &a), CLI_OK);
    assert_int_equal(cli_get_int(&x, &a, "limit", 7, 100, &v), CLI_USAGE);
    assert_int_equal(cli_parse(&x, 1, none, spec, 0, 0, &a), CLI_OK);
    assert_int_equal(cli_get_int(&x, &a, "limit", 7, 100, &v), CLI_OK);
    assert_int_equal(v, 7);
}

static void test_usage_exit_codes(void **state) {
    run r;
    (void)state;
    {
        char *argv[] = {"hookq", NULL};
        run_cli(&r, NULL, 1, argv);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "usage: hookq"));
        assert_string_equal(r.out, "");
    }
    RUN(&r, "frobnicate");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    RUN(&r, "endpoint");
    assert_int_equal(r.rc, 2);
    RUN(&r, "endpoint", "explode");
    assert_int_equal(r.rc, 2);
    RUN(&r, "endpoint", "add", "--events", "*");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "--url is required"));
    assert_non_null(strstr(r.err, "usage: hookq endpoint add"));
    RUN(&r, "endpoint", "show");
    assert_int_equal(r.rc, 2);
    RUN(&r, "send");
    assert_int_equal(r.rc, 2);
    RUN(&r, "send", "a.b", "{}", "extra");
    assert_int_equal(r.rc, 2);
    RUN(&r, "stats", "--bogus");
    assert_int_equal(r.rc, 2);
    RUN(&r, "dead", "purge");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "exactly one of"));
    RUN(&r, "dead", "replay", "1-1", "--all");
    assert_int_equal(r.rc, 2);
    RUN(&r, "deliveries", "ep_x", "--limit", "-3");
    assert_int_equal(r.rc, 2);
    RUN(&r, "config", "check", "a.yaml", "b.yaml"); /* FILE is optional, but one at most */
    assert_int_equal(r.rc, 2);
    RUN(&r, "-c");
    assert_int_equal(r.rc, 2);
    RUN(&r, "test", "ep_x", "--wait", "forever");
    assert_int_equal(r.rc, 2);
    /* --github-secret: one of two words, checked before Redis is asked anything (the
     * RUN environment points at a socket that does not exist) */
    RUN(&r, "endpoint", "add", "--url", "http://example.com/", "--github-secret", "old");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "--github-secret: expected current or previous, got 'old'"));
    assert_non_null(strstr(r.err, "usage: hookq endpoint add"));
    RUN(&r, "endpoint", "update", "ep_x", "--github-secret", "Previous");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "usage: hookq endpoint update"));
    RUN(&r, "endpoint", "update", "ep_x", "--github-secret", "");
    assert_int_equal(r.rc, 2);
    RUN(&r, "endpoint", "update", "ep_x", "--github-secret");
    assert_int_equal(r.rc, 2);
    /* a valid word gets past the check: the failure is then the missing Redis */
    RUN(&r, "endpoint", "update", "ep_x", "--github-secret", "previous");
    assert_int_equal(r.rc, 1);
    assert_null(strstr(r.err, "usage:"));
}

static void test_version_and_help(void **state) {
    run r;
    (void)state;
    RUN(&r, "version");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "hookq " HOOKQ_VERSION "\n");
    RUN(&r, "--json", "version");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\"version\": \"" HOOKQ_VERSION "\""));
    RUN(&r, "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "endpoint add --url URL"));
    assert_non_null(strstr(r.out, "dead replay"));
    RUN(&r, "send", "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: hookq send TYPE"));
}

/* A configuration that does not load is exit 2 (like hookq-worker), for config check and
 * for every command that needs the config; the message names the key and line, and no
 * usage is printed (the command line was fine). Runtime errors stay 1. */
static void test_config_errors_exit_2(void **state) {
    char path[] = "/tmp/hookq-test-cli-XXXXXX";
    int fd = mkstemp(path);
    run r;
    (void)state;
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("delivery:\n  concurrency: many\n", f);
    fclose(f);
    char *bad_env[] = {"HOOKQ_REDIS_URL=unix:///nonexistent/hookq-test.sock",
                       "HOOKQ_DELIVERY_BATCH=x", NULL};
    char *ok_env[] = {"HOOKQ_REDIS_URL=unix:///nonexistent/hookq-test.sock", NULL};
    {
        char *argv[] = {"hookq", "config", "check", path, NULL};
        run_cli(&r, ok_env, 4, argv);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "hookq: "));
        assert_non_null(strstr(r.err, ":2: key 'delivery.concurrency'"));
        assert_null(strstr(r.err, "usage:"));
        assert_string_equal(r.out, "");
    }
    {
        char *argv[] = {"hookq", "config", "check", "/nonexistent/hookq.yaml", NULL};
        run_cli(&r, ok_env, 4, argv);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "/nonexistent/hookq.yaml"));
    }
    {
        char *argv[] = {"hookq", "config", "check", NULL};
        run_cli(&r, bad_env, 3, argv);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "HOOKQ_DELIVERY_BATCH"));
    }
    /* any command, with -c FILE or a bad variable */
    {
        char *argv[] = {"hookq", "-c", path, "stats", NULL};
        run_cli(&r, ok_env, 4, argv);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "delivery.concurrency"));
        assert_null(strstr(r.err, "usage:"));
    }
    const char *const cmds[][4] = {
        {"send", "a.b", "{}", NULL},
        {"stats", NULL},
        {"endpoint", "list", NULL},
        {"endpoint", "show", "ep_x", NULL},
        {"endpoint", "rm", "ep_x", NULL},
        {"dead", "list", NULL},
        {"dead", "purge", "--all", NULL},
        {"retry", "evt_x", NULL},
        {"deliveries", "ep_x", NULL},
        {"test", "ep_x", NULL},
        {"endpoint", "disable", "ep_x", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *argv[6] = {"hookq"};
        int argc = 1;
        for (size_t k = 0; cmds[i][k]; k++)
            argv[argc++] = (char *)cmds[i][k];
        run_cli(&r, bad_env, argc, argv);
        if (r.rc != 2 || !strstr(r.err, "HOOKQ_DELIVERY_BATCH"))
            fail_msg("hookq %s: rc %d, %s", cmds[i][0], r.rc, r.err);
    }
    /* a valid config with an unreachable Redis is a runtime error */
    {
        char *argv[] = {"hookq", "stats", NULL};
        run_cli(&r, ok_env, 2, argv);
        assert_int_equal(r.rc, 1);
    }
    unlink(path);
}

/* Input errors are reported before any connection is attempted (the URL points at a
 * socket that does not exist, so reaching Redis would give a different message). */
static void test_validation_before_connect(void **state) {
    run r;
    (void)state;
    RUN(&r, "send", "bad type!", "{}");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "hookq: type"));
    RUN(&r, "send", "order.paid", "{not json");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "hookq: data"));
    RUN(&r, "send", "order.paid", "{}", "--id", "has.dot");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "hookq: id"));
    RUN(&r, "endpoint", "add", "--url", "ftp://example.com/");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "--url"));
    RUN(&r, "endpoint", "add", "--url", "http://example.com/", "--header", "Host: evil");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "--header"));
    RUN(&r, "endpoint", "add", "--url", "http://example.com/", "--events", "a*b");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "--events"));
    /* Valid input does reach the connection, which fails with a runtime error. */
    RUN(&r, "send", "order.paid", "{}");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "hookq: "));
    assert_null(strstr(r.err, "usage"));
}

static void test_table(void **state) {
    static const char *const hdr[] = {"ID", "NAME", "NOTE"};
    cli_table *t = cli_table_new(3, hdr);
    const char *r1[] = {"1", "a\tb\nc", NULL};
    const char *r2[] = {
        "22", "x", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"};
    char buf[1024];
    FILE *f = tmpfile();
    (void)state;
    assert_non_null(t);
    assert_int_equal(cli_table_add(t, r1), HQ_OK);
    assert_int_equal(cli_table_add(t, r2), HQ_OK);
    cli_table_print(t, f);
    cli_table_free(t);
    slurp(f, buf, sizeof buf);
    /* Columns padded to the widest cell + 2; control characters become spaces; long
     * cells are cut to CLI_CELL_MAX with "...". */
    assert_non_null(strstr(buf, "ID  NAME   NOTE\n"));
    assert_non_null(strstr(buf, "1   a b c  \n"));
    assert_non_null(strstr(buf, "22  x      yyy"));
    assert_non_null(strstr(buf, "y...\n"));
    assert_int_equal(strlen(strstr(buf, "yyy")), CLI_CELL_MAX + 1);
    cli_table_free(NULL);
}

static void test_sid_iso(void **state) {
    char buf[TS_ISO_LEN];
    (void)state;
    cli_sid_iso("1700000000123-4", buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    cli_sid_iso("garbage", buf, sizeof buf);
    assert_string_equal(buf, "");
}

static void mk_ep(ep *e, const char *id, const char *patterns, const char *tenant, int enabled) {
    char err[HQ_ERRLEN];
    memset(e, 0, sizeof *e);
    e->id = (char *)id;
    e->tenant = (char *)tenant;
    e->enabled = enabled;
    assert_int_equal(pat_list_parse(patterns, &e->events, err, sizeof err), HQ_OK);
}

static void test_matches(void **state) {
    ep all, task, tenant_a, off;
    (void)state;
    mk_ep(&all, "ep_all", "*", NULL, 1);
    mk_ep(&task, "ep_task", "task:*,order.paid", NULL, 1);
    mk_ep(&tenant_a, "ep_a", "*", "acme", 1);
    mk_ep(&off, "ep_off", "*", NULL, 0);

    /* patterns */
    assert_true(ep_matches(&all, "x.y", NULL, NULL));
    assert_true(ep_matches(&task, "task:transition", NULL, NULL));
    assert_true(ep_matches(&task, "order.paid", NULL, ""));
    assert_false(ep_matches(&task, "order.refunded", NULL, NULL));
    /* disabled endpoints never receive */
    assert_false(ep_matches(&off, "x.y", NULL, NULL));
    assert_false(ep_matches(&off, "x.y", NULL, "ep_off"));
    /* tenants: unset on either side matches, otherwise equal */
    assert_true(ep_matches(&tenant_a, "x", NULL, NULL));
    assert_true(ep_matches(&tenant_a, "x", "acme", NULL));
    assert_false(ep_matches(&tenant_a, "x", "globex", NULL));
    assert_true(ep_matches(&all, "x", "globex", NULL));
    /* a target endpoint overrides patterns but not tenant or enabled */
    assert_true(ep_matches(&task, "not.subscribed", NULL, "ep_task"));
    assert_false(ep_matches(&all, "x", NULL, "ep_task"));
    assert_false(ep_matches(&tenant_a, "x", "globex", "ep_a"));
    assert_true(ep_matches(&tenant_a, "x", "acme", "ep_a"));
    assert_false(ep_matches(NULL, "x", NULL, NULL));

    pat_list_clear(&all.events);
    pat_list_clear(&task.events);
    pat_list_clear(&tenant_a.events);
    pat_list_clear(&off.events);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_options),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_usage_exit_codes),
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_validation_before_connect),
        cmocka_unit_test(test_config_errors_exit_2),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_sid_iso),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
