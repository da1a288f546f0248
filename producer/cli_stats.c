/* cli_stats.c -- `hookq stats` (queue sizes at a glance) and `hookq config check`. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "endpoint.h"
#include "redis_keys.h"

/* An integer reply of one command; missing keys count as 0. */
static int int_cmd(cli *x, const char *const *argv, long long *out) {
    redisReply *rep = cli_cmd(x, argv);
    if (!rep)
        return CLI_FAIL;
    *out = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return CLI_OK;
}

/* Pending entries of a consumer group. The group does not exist until a worker has
 * started (NOGROUP, or the stream itself is missing): that is 0 pending, not an error. */
static int pending(cli *x, const char *key, const char *group, long long *out) {
    redisReply *rep = cli_cmd_keeperr(x, (const char *[]){"XPENDING", key, group, NULL});
    *out = 0;
    if (!rep)
        return CLI_FAIL;
    if (rep->type == REDIS_REPLY_ERROR) {
        int nogroup = strncmp(rep->str, "NOGROUP", 7) == 0;
        if (!nogroup)
            cli_fail(x, CLI_FAIL, "Redis: %s", rep->str);
        freeReplyObject(rep);
        return nogroup ? CLI_OK : CLI_FAIL;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER)
        *out = rep->element[0]->integer;
    freeReplyObject(rep);
    return CLI_OK;
}

int cli_cmd_stats(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    cli_args a;
    char events[KEY_MAX], jobs[KEY_MAX], delay[KEY_MAX], dead[KEY_MAX], err[HQ_ERRLEN];
    long long n_events, n_jobs, p_events, p_jobs, n_delay, n_dead, en = 0, dis = 0;
    ep_table tb;
    size_t i;
    int rc;

    x->usage = "hookq stats [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 0, 0, &a)) != CLI_OK)
        return rc;
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    key_events(x->c->redis_prefix, events, sizeof events);
    key_jobs(x->c->redis_prefix, jobs, sizeof jobs);
    key_delay(x->c->redis_prefix, delay, sizeof delay);
    key_dead(x->c->redis_prefix, dead, sizeof dead);
    if (int_cmd(x, (const char *[]){"XLEN", events, NULL}, &n_events) != CLI_OK ||
        int_cmd(x, (const char *[]){"XLEN", jobs, NULL}, &n_jobs) != CLI_OK ||
        pending(x, events, KEY_GROUP_FANOUT, &p_events) != CLI_OK ||
        pending(x, jobs, KEY_GROUP_DELIVER, &p_jobs) != CLI_OK ||
        int_cmd(x, (const char *[]){"ZCARD", delay, NULL}, &n_delay) != CLI_OK ||
        int_cmd(x, (const char *[]){"XLEN", dead, NULL}, &n_dead) != CLI_OK)
        return CLI_FAIL;
    if (ep_load_table(x->r, x->c->redis_prefix, &tb, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    for (i = 0; i < tb.n; i++) {
        if (tb.eps[i]->enabled)
            en++;
        else
            dis++;
    }
    long long bad = (long long)tb.n_bad;
    ep_table_clear(&tb);

    if (x->json)
        return cli_print_json(
            x,
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "events", (json_int_t)n_events,
                      "events_pending", (json_int_t)p_events, "jobs", (json_int_t)n_jobs,
                      "jobs_pending", (json_int_t)p_jobs, "delayed", (json_int_t)n_delay, "dead",
                      (json_int_t)n_dead, "endpoints_enabled", (json_int_t)en, "endpoints_disabled",
                      (json_int_t)dis, "endpoints_unreadable", (json_int_t)bad));
    fprintf(x->out,
            "events                %-8lld (stream length)\n"
            "events pending        %-8lld (read by a worker, fanout not finished)\n"
            "jobs                  %-8lld (stream length)\n"
            "jobs pending          %-8lld (delivery in progress)\n"
            "delayed               %-8lld (waiting for a retry)\n"
            "dead                  %lld\n"
            "endpoints enabled     %lld\n"
            "endpoints disabled    %lld\n"
            "endpoints unreadable  %-8lld (hash does not parse: see hookq endpoint list)\n",
            n_events, p_events, n_jobs, p_jobs, n_delay, n_dead, en, dis, bad);
    return CLI_OK;
}

int cli_cmd_config(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    cli_args a;
    char err[HQ_ERRLEN];
    cfg *c;
    int rc;

    x->usage = "hookq config check [FILE] [--json]";
    if (argc < 2)
        return cli_fail(x, CLI_USAGE, "missing config command");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return CLI_HELP;
    if (strcmp(argv[1], "check") != 0)
        return cli_fail(x, CLI_USAGE, "unknown config command '%s'", argv[1]);
    if ((rc = cli_parse(x, argc - 1, argv + 1, spec, 0, 1, &a)) != CLI_OK)
        return rc;
    /* The file given (else -c, else $HOOKQ_CONFIG, else ./hookq.yaml), then the
     * environment, then validation: what a worker started here would run with. */
    c = cfg_load(a.npos ? a.pos[0] : x->cfg_path, x->envp, err, sizeof err);
    if (!c)
        return cli_fail(x, CLI_CONFIG, "%s", err);
    rc = cfg_dump(c, x->out, x->json) == HQ_OK ? CLI_OK : cli_fail(x, CLI_FAIL, "cannot print");
    cfg_free(c);
    return rc;
}
