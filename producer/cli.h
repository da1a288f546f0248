/* cli.h -- the `hookq` command-line tool (hqcli). main.c only calls cli_main.
 *
 * Every command is a function `int cmd(cli *x, int argc, char **argv)` with argv[0] the
 * command word; it returns CLI_OK, CLI_FAIL (runtime error: message in x->err, printed as
 * "hookq: <message>") or CLI_USAGE (message in x->err, printed with the command's usage).
 * Commands print results to x->out; the error that ends a command goes to x->errf through
 * cli_main, and a problem with one item of a command that goes on (cli_warn) at once. */
#ifndef HQ_CLI_H
#define HQ_CLI_H
#include <stdio.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include "config.h"
#include "hq.h"
#include "redis_conn.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2
#define CLI_HELP  3 /* internal: --help was asked; cli_main prints usage and exits 0 */
/* internal: the configuration did not load or validate (message in x->err). cli_main
 * prints "hookq: <message>" without the usage and exits 2, as hookq-worker does: a bad
 * config is the caller's mistake, like a bad argument, not a runtime failure. */
#define CLI_CONFIG 4

#define CLI_ERRLEN 1024

typedef struct cli {
    const char *cfg_path; /* -c FILE, or NULL */
    char *const *envp;
    int json; /* --json anywhere */
    FILE *out;
    FILE *errf;
    cfg *c;            /* loaded by cli_cfg on first use */
    rconn *r;          /* connected by cli_rq on first use */
    const char *usage; /* usage text of the running command */
    char err[CLI_ERRLEN];
} cli;

/* Run the CLI: argv as main gets it. Returns the exit status (0, 1 or 2). */
int cli_main(int argc, char **argv, char *const *envp, FILE *out, FILE *errf);

/* Set x->err; returns code so commands can `return cli_fail(x, CLI_FAIL, ...)`. */
int cli_fail(cli *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print "hookq: <message>" on x->errf now, for one item of a command that goes on with the
 * others (like cp naming each file it could not copy). The command still decides the exit
 * status, usually CLI_FAIL at the end. */
void cli_warn(cli *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Load the config (-c, $HOOKQ_CONFIG, ./hookq.yaml, env) / connect to Redis once.
 * CLI_OK, or with x->err set: CLI_CONFIG if the config did not load (cli_rq too), CLI_FAIL
 * if Redis could not be reached. Callers return the code they got. */
int cli_cfg(cli *x);
int cli_rq(cli *x);

/* Options of one command. name is the long name without "--"; has_arg 1 if it takes a
 * value ("--name V" or "--name=V"). "--json" and "--help" are always accepted. */
typedef struct cli_opt {
    const char *name;
    int has_arg;
} cli_opt;

#define CLI_ARGS_MAX 64
typedef struct cli_args {
    const char *pos[CLI_ARGS_MAX];
    int npos;
    const char *oname[CLI_ARGS_MAX]; /* options in the order given */
    const char *oval[CLI_ARGS_MAX];  /* NULL for flags */
    int nopt;
} cli_args;

/* Parse argv[1..] (argv[0] is the command word). Positionals must number minpos..maxpos.
 * CLI_OK, CLI_USAGE (unknown option, missing value, wrong count) or CLI_HELP. */
int cli_parse(cli *x, int argc, char **argv, const cli_opt *spec, int minpos, int maxpos,
              cli_args *a);
const char *cli_get(const cli_args *a, const char *name); /* last value, or NULL */
int cli_has(const cli_args *a, const char *name);
/* Positive integer option (default def when absent). CLI_OK or CLI_USAGE. */
int cli_get_int(cli *x, const cli_args *a, const char *name, long def, long max, long *out);

/* Run one command; argv strings are NUL-terminated, list ends with NULL. Redis error
 * replies become NULL with x->err "Redis: ..." (unless keep_errors, then returned). */
redisReply *cli_cmd(cli *x, const char *const *argv);
redisReply *cli_cmd_keeperr(cli *x, const char *const *argv);

/* Stream entry helpers: entry is one element of an XRANGE reply ([id, [f, v, ...]]). */
int cli_entry_ok(const redisReply *entry);
const char *cli_entry_id(const redisReply *entry);
const char *cli_entry_field(const redisReply *entry, const char *name); /* NULL if absent */
json_t *cli_entry_json(const redisReply *entry, const char *id_key);    /* fields + id_key: id */

/* Walk a stream newest first, count entries per XREVRANGE, calling fn for each well-formed
 * entry: fn returns 0 to go on, 1 to stop, -1 on error (x->err set). CLI_OK or CLI_FAIL. */
typedef int (*cli_scan_fn)(cli *x, const redisReply *entry, void *ud);
int cli_scan_rev(cli *x, const char *key, const char *count, cli_scan_fn fn, void *ud);

/* Print j (reference stolen) as indented JSON and a newline. */
int cli_print_json(cli *x, json_t *j);

/* A text table: columns sized to their widest cell, cells cleaned of control
 * characters and cut at CLI_CELL_MAX chars. */
#define CLI_CELL_MAX 60
typedef struct cli_table cli_table;
cli_table *cli_table_new(size_t ncols, const char *const *headers);
int cli_table_add(cli_table *t, const char *const *cells); /* copies; NULL cell = "" */
void cli_table_print(const cli_table *t, FILE *out);
void cli_table_free(cli_table *t);

/* Stream id "1700000000123-0" -> ISO time of its millisecond part ("" if malformed). */
void cli_sid_iso(const char *sid, char *buf, size_t len);

/* Commands (one file per group). */
int cli_cmd_endpoint(cli *x, int argc, char **argv);
int cli_cmd_send(cli *x, int argc, char **argv);
int cli_cmd_test(cli *x, int argc, char **argv);
int cli_cmd_stats(cli *x, int argc, char **argv);
int cli_cmd_config(cli *x, int argc, char **argv);
int cli_cmd_deliveries(cli *x, int argc, char **argv);
int cli_cmd_dead(cli *x, int argc, char **argv);
int cli_cmd_retry(cli *x, int argc, char **argv);

#endif
