/* cli.c -- `hookq` entry point: global options, command dispatch, exit codes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "config.h"
#include "redis_conn.h"

static const char usage_all[] =
    "usage: hookq [-c FILE] [--json] COMMAND [ARGS...]\n"
    "\n"
    "endpoints:\n"
    "  endpoint add --url URL [--events PATTERNS] [--description TEXT] [--tenant T]\n"
    "               [--secret whsec_...] [--header 'Name: value']... [--github-signature]\n"
    "               [--github-secret current|previous]\n"
    "  endpoint list\n"
    "  endpoint show ID\n"
    "  endpoint update ID [--url URL] [--events PATTERNS] [--description TEXT] [--tenant T]\n"
    "               [--header 'Name: value']... [--no-headers]\n"
    "               [--github-signature | --no-github-signature]\n"
    "               [--github-secret current|previous]\n"
    "  endpoint enable ID\n"
    "  endpoint disable ID [--reason TEXT]\n"
    "  endpoint rotate-secret ID [--secret whsec_...]\n"
    "  endpoint rm ID\n"
    "events:\n"
    "  send TYPE [DATA|-|@FILE] [--id ID] [--tenant T] [--endpoint ID]\n"
    "  test ENDPOINT [--wait 10s]\n"
    "  retry EVENT_ID [--endpoint ID]\n"
    "inspection:\n"
    "  stats\n"
    "  deliveries ENDPOINT [--limit N] [--failed]\n"
    "  dead list [--endpoint ID] [--limit N]\n"
    "  dead replay ID... | --endpoint ID | --all\n"
    "  dead purge --endpoint ID | --all\n"
    "other:\n"
    "  config check [FILE]\n"
    "  version\n"
    "\n"
    "Every command that prints accepts --json.\n"
    "Exit status: 0 ok, 1 error, 2 usage or configuration error.\n"
    "Configuration: -c FILE (else $HOOKQ_CONFIG, else ./hookq.yaml), then HOOKQ_* variables.\n";

int cli_fail(cli *x, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    return code;
}

void cli_warn(cli *x, const char *fmt, ...) {
    va_list ap;
    fputs("hookq: ", x->errf);
    va_start(ap, fmt);
    vfprintf(x->errf, fmt, ap);
    va_end(ap);
    fputc('\n', x->errf);
}

int cli_cfg(cli *x) {
    char err[HQ_ERRLEN];
    if (x->c)
        return CLI_OK;
    x->c = cfg_load(x->cfg_path, x->envp, err, sizeof err);
    if (!x->c)
        return cli_fail(x, CLI_CONFIG, "%s", err);
    return CLI_OK;
}

int cli_rq(cli *x) {
    char err[HQ_ERRLEN];
    int rc;
    if (x->r)
        return CLI_OK;
    if ((rc = cli_cfg(x)) != CLI_OK)
        return rc;
    x->r = rconn_connect(x->c->redis_url, x->c->redis_connect_timeout_ms,
                         x->c->redis_command_timeout_ms, err, sizeof err);
    if (!x->r)
        return cli_fail(x, CLI_FAIL, "%s", err);
    return CLI_OK;
}

static int cmd_version(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    cli_args a;
    int rc;
    x->usage = "hookq version";
    rc = cli_parse(x, argc, argv, spec, 0, 0, &a);
    if (rc != CLI_OK)
        return rc;
    if (x->json)
        return cli_print_json(x, json_pack("{s:s}", "version", HOOKQ_VERSION));
    fprintf(x->out, "hookq %s\n", HOOKQ_VERSION);
    return CLI_OK;
}

typedef int (*cli_fn)(cli *x, int argc, char **argv);
static const struct {
    const char *name;
    cli_fn fn;
} commands[] = {
    {"endpoint", cli_cmd_endpoint},     {"send", cli_cmd_send},     {"test", cli_cmd_test},
    {"stats", cli_cmd_stats},           {"config", cli_cmd_config}, {"dead", cli_cmd_dead},
    {"deliveries", cli_cmd_deliveries}, {"retry", cli_cmd_retry},   {"version", cmd_version},
};

int cli_main(int argc, char **argv, char *const *envp, FILE *out, FILE *errf) {
    cli x = {.envp = envp, .out = out, .errf = errf};
    int i = 1, rc = CLI_USAGE;
    size_t k;

    /* Global options come before the command; --json is also accepted after it. */
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                cli_fail(&x, CLI_USAGE, "option %s needs a value", argv[i]);
                goto done;
            }
            x.cfg_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            x.cfg_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--json") == 0) {
            x.json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            rc = CLI_HELP;
            goto done;
        } else if (strcmp(argv[i], "--version") == 0) {
            rc = cmd_version(&x, 1, (char *[]){"version", NULL});
            goto done;
        } else {
            cli_fail(&x, CLI_USAGE, "unknown option '%s'", argv[i]);
            goto done;
        }
    }
    if (i >= argc) {
        cli_fail(&x, CLI_USAGE, "missing command");
        goto done;
    }
    if (strcmp(argv[i], "help") == 0) {
        rc = CLI_HELP;
        goto done;
    }
    for (k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[i], commands[k].name) == 0) {
            rc = commands[k].fn(&x, argc - i, argv + i);
            goto done;
        }
    }
    cli_fail(&x, CLI_USAGE, "unknown command '%s'", argv[i]);

done:
    if (rc == CLI_HELP) {
        fputs(x.usage ? "usage: " : "", out);
        fputs(x.usage ? x.usage : usage_all, out);
        fputs(x.usage ? "\n" : "", out);
        rc = CLI_OK;
    } else if (rc == CLI_USAGE) {
        fprintf(errf, "hookq: %s\n", x.err);
        if (x.usage)
            fprintf(errf, "usage: %s\n", x.usage);
        else
            fputs(usage_all, errf);
    } else if (rc != CLI_OK) {
        fprintf(errf, "hookq: %s\n", x.err[0] ? x.err : "failed");
        rc = rc == CLI_CONFIG ? CLI_USAGE : CLI_FAIL;
    }
    fflush(out);
    rconn_free(x.r);
    cfg_free(x.c);
    return rc;
}
