/* cli_util.c -- argument parsing, Redis calls, stream entries, tables and JSON output
 * shared by the CLI commands. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "timestamp.h"

static const cli_opt *find_opt(const cli_opt *spec, const char *name, size_t len) {
    for (; spec && spec->name; spec++)
        if (strlen(spec->name) == len && strncmp(spec->name, name, len) == 0)
            return spec;
    return NULL;
}

int cli_parse(cli *x, int argc, char **argv, const cli_opt *spec, int minpos, int maxpos,
              cli_args *a) {
    int i, only_pos = 0;
    memset(a, 0, sizeof *a);
    for (i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        /* "-" alone is a positional (stdin); "-5" style negatives are not used. */
        if (!only_pos && s[0] == '-' && s[1]) {
            const char *name, *eq;
            const cli_opt *o;
            if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)
                return CLI_HELP;
            if (strcmp(s, "--json") == 0) {
                x->json = 1;
                continue;
            }
            if (s[1] != '-')
                return cli_fail(x, CLI_USAGE, "unknown option '%s'", s);
            name = s + 2;
            eq = strchr(name, '=');
            o = find_opt(spec, name, eq ? (size_t)(eq - name) : strlen(name));
            if (!o)
                return cli_fail(x, CLI_USAGE, "unknown option '%.*s'",
                                (int)(eq ? eq - s : (long)strlen(s)), s);
            if (a->nopt >= CLI_ARGS_MAX)
                return cli_fail(x, CLI_USAGE, "too many options");
            a->oname[a->nopt] = o->name;
            if (o->has_arg) {
                if (eq) {
                    a->oval[a->nopt] = eq + 1;
                } else if (i + 1 < argc) {
                    a->oval[a->nopt] = argv[++i];
                } else {
                    return cli_fail(x, CLI_USAGE, "option --%s needs a value", o->name);
                }
            } else if (eq) {
                return cli_fail(x, CLI_USAGE, "option --%s takes no value", o->name);
            }
            a->nopt++;
            continue;
        }
        if (a->npos >= CLI_ARGS_MAX || a->npos >= maxpos)
            return cli_fail(x, CLI_USAGE, "unexpected argument '%s'", s);
        a->pos[a->npos++] = s;
    }
    if (a->npos < minpos)
        return cli_fail(x, CLI_USAGE, "missing argument");
    return CLI_OK;
}

const char *cli_get(const cli_args *a, const char *name) {
    const char *v = NULL;
    int i;
    for (i = 0; i < a->nopt; i++)
        if (strcmp(a->oname[i], name) == 0)
            v = a->oval[i];
    return v;
}

int cli_has(const cli_args *a, const char *name) {
    int i;
    for (i = 0; i < a->nopt; i++)
        if (strcmp(a->oname[i], name) == 0)
            return 1;
    return 0;
}

int cli_get_int(cli *x, const cli_args *a, const char *name, long def, long max, long *out) {
    const char *s = cli_get(a, name);
    char *end;
    long v;
    *out = def;
    if (!s)
        return CLI_OK;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return cli_fail(x, CLI_USAGE, "--%s: expected a number from 1 to %ld, got '%s'", name, max,
                        s);
    *out = v;
    return CLI_OK;
}

static redisReply *do_cmd(cli *x, const char *const *argv, int keep) {
    const char *av[64];
    size_t len[64];
    int n = 0;
    char err[HQ_ERRLEN];
    redisReply *rep;
    if (cli_rq(x) != CLI_OK)
        return NULL;
    for (; argv[n] && n < 64; n++) {
        av[n] = argv[n];
        len[n] = strlen(argv[n]);
    }
    rep = rconn_cmdargv(x->r, n, av, len, err, sizeof err);
    if (!rep) {
        cli_fail(x, CLI_FAIL, "%s", err);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR && !keep) {
        cli_fail(x, CLI_FAIL, "Redis: %s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

redisReply *cli_cmd(cli *x, const char *const *argv) {
    return do_cmd(x, argv, 0);
}

redisReply *cli_cmd_keeperr(cli *x, const char *const *argv) {
    return do_cmd(x, argv, 1);
}

int cli_entry_ok(const redisReply *e) {
    size_t i;
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        e->element[1]->elements % 2)
        return 0;
    for (i = 0; i < e->element[1]->elements; i++)
        if (e->element[1]->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

const char *cli_entry_id(const redisReply *e) {
    return e->element[0]->str;
}

const char *cli_entry_field(const redisReply *e, const char *name) {
    const redisReply *f = e->element[1];
    size_t i;
    for (i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1]->str;
    return NULL;
}

json_t *cli_entry_json(const redisReply *e, const char *id_key) {
    const redisReply *f = e->element[1];
    json_t *o = json_object();
    size_t i;
    if (!o)
        return NULL;
    json_object_set_new(o, id_key, json_string(cli_entry_id(e)));
    for (i = 0; i + 1 < f->elements; i += 2) {
        /* Values are text but not necessarily UTF-8 (response excerpts): fall back to a
         * lossy copy rather than dropping the field. */
        json_t *v = json_stringn(f->element[i + 1]->str, f->element[i + 1]->len);
        if (!v) {
            char *c = strndup(f->element[i + 1]->str, f->element[i + 1]->len);
            size_t k;
            for (k = 0; c && c[k]; k++)
                if ((unsigned char)c[k] >= 0x80)
                    c[k] = '?';
            v = json_string(c ? c : "");
            free(c);
        }
        json_object_set_new(o, f->element[i]->str, v);
    }
    return o;
}

int cli_print_json(cli *x, json_t *j) {
    if (!j)
        return cli_fail(x, CLI_FAIL, "out of memory");
    json_dumpf(j, x->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', x->out);
    json_decref(j);
    return CLI_OK;
}

struct cli_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;
    char **cells;
};

static char *clean_cell(const char *s) {
    size_t n = s ? strlen(s) : 0, i;
    size_t keep = n > CLI_CELL_MAX ? CLI_CELL_MAX - 3 : n;
    char *c = malloc(keep + 4);
    if (!c)
        return NULL;
    for (i = 0; i < keep; i++)
        c[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    /* Do not cut a UTF-8 sequence in half. */
    while (keep < n && i > 0 && ((unsigned char)c[i - 1] & 0xC0) == 0x80)
        i--;
    if (keep < n && i > 0 && (unsigned char)c[i - 1] >= 0xC0)
        i--;
    if (keep < n)
        memcpy(c + i, "...", 3), i += 3;
    c[i] = '\0';
    return c;
}

cli_table *cli_table_new(size_t ncols, const char *const *headers) {
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (cli_table_add(t, headers) != HQ_OK) {
        cli_table_free(t);
        return NULL;
    }
    return t;
}

int cli_table_add(cli_table *t, const char *const *cells) {
    size_t i;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return HQ_ERR;
        t->cells = c;
        t->cap = cap;
    }
    for (i = 0; i < t->ncols; i++) {
        char *c = clean_cell(cells[i] ? cells[i] : "");
        if (!c) {
            while (i--)
                free(t->cells[t->nrows * t->ncols + i]);
            return HQ_ERR;
        }
        t->cells[t->nrows * t->ncols + i] = c;
    }
    t->nrows++;
    return HQ_OK;
}

/* Display width: count UTF-8 lead bytes, not bytes. */
static size_t width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(const cli_table *t, FILE *out) {
    size_t w[32] = {0}, r, c;
    for (r = 0; r < t->nrows; r++)
        for (c = 0; c < t->ncols && c < 32; c++) {
            size_t n = width(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (r = 0; r < t->nrows; r++) {
        for (c = 0; c < t->ncols && c < 32; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols) {
                fputs(s, out);
            } else {
                size_t pad = w[c] - width(s) + 2;
                fputs(s, out);
                while (pad--)
                    fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
}

void cli_table_free(cli_table *t) {
    size_t i;
    if (!t)
        return;
    for (i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void cli_sid_iso(const char *sid, char *buf, size_t len) {
    char *end;
    long long ms;
    errno = 0;
    ms = strtoll(sid, &end, 10);
    if (errno || end == sid || *end != '-' || ms < 0) {
        snprintf(buf, len, "%s", "");
        return;
    }
    ts_iso((int64_t)ms, buf, len);
}

int cli_scan_rev(cli *x, const char *key, const char *count, cli_scan_fn fn, void *ud) {
    char end[HQ_ERRLEN] = "+";
    for (;;) {
        redisReply *rep =
            cli_cmd(x, (const char *[]){"XREVRANGE", key, end, "-", "COUNT", count, NULL});
        size_t i;
        int r = 0;
        if (!rep)
            return CLI_FAIL;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            freeReplyObject(rep);
            return CLI_OK;
        }
        for (i = 0; i < rep->elements && r == 0; i++) {
            const redisReply *en = rep->element[i];
            if (!cli_entry_ok(en))
                continue;
            snprintf(end, sizeof end, "(%s", cli_entry_id(en));
            r = fn(x, en, ud);
        }
        freeReplyObject(rep);
        if (r < 0)
            return CLI_FAIL;
        if (r > 0)
            return CLI_OK;
    }
}
