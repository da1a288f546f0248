/* cli_dead.c -- reading the delivery log (`hookq deliveries`) and the dead-letter stream
 * (`hookq dead list|replay|purge`). */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "ids.h"
#include "redis_keys.h"
#include "timestamp.h"

#define LIMIT_MAX 100000

/* Scan callbacks report errors as -1 with x->err set. */
static int scan_oom(cli *x) {
    cli_fail(x, CLI_FAIL, "out of memory");
    return -1;
}

/* Collects up to limit entries as table rows or JSON objects. */
typedef struct lister {
    long limit;
    long n;
    int failed_only;      /* deliveries: skip outcome=delivered */
    const char *endpoint; /* dead list: only this endpoint */
    json_t *arr;          /* --json */
    cli_table *t;         /* text */
} lister;

static int add_delivery(cli *x, const redisReply *en, void *ud) {
    lister *l = ud;
    const char *outcome = cli_entry_field(en, "outcome");
    char when[TS_ISO_LEN];
    if (l->failed_only && outcome && strcmp(outcome, "delivered") == 0)
        return 0;
    cli_sid_iso(cli_entry_id(en), when, sizeof when);
    if (l->arr) {
        json_t *o = cli_entry_json(en, "log_id");
        if (!o || json_object_set_new(o, "time", json_string(when)) != 0 ||
            json_array_append_new(l->arr, o) != 0)
            return scan_oom(x);
    } else {
        const char *row[] = {when,
                             cli_entry_field(en, "event_id"),
                             cli_entry_field(en, "type"),
                             cli_entry_field(en, "attempt"),
                             outcome,
                             cli_entry_field(en, "status"),
                             cli_entry_field(en, "latency_ms"),
                             cli_entry_field(en, "error"),
                             cli_entry_field(en, "next_try")};
        if (cli_table_add(l->t, row) != HQ_OK)
            return scan_oom(x);
    }
    return ++l->n >= l->limit;
}

/* Scan key newest first through add (which fills l), then print l as JSON or a table
 * with header hdr (ncols columns). */
static int list_stream(cli *x, lister *l, const char *key, size_t ncols, const char *const *hdr,
                       cli_scan_fn add) {
    int rc;
    if (x->json)
        l->arr = json_array();
    else
        l->t = cli_table_new(ncols, hdr);
    if (!l->arr && !l->t)
        return cli_fail(x, CLI_FAIL, "out of memory");
    rc = cli_scan_rev(x, key, "1000", add, l);
    if (rc == CLI_OK) {
        if (l->arr) {
            rc = cli_print_json(x, l->arr);
            l->arr = NULL;
        } else {
            cli_table_print(l->t, x->out);
        }
    }
    json_decref(l->arr);
    cli_table_free(l->t);
    return rc;
}

int cli_cmd_deliveries(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"limit", 1}, {"failed", 0}, {NULL, 0}};
    static const char *const hdr[] = {"TIME",   "EVENT_ID",   "TYPE",  "ATTEMPT", "OUTCOME",
                                      "STATUS", "LATENCY_MS", "ERROR", "NEXT_TRY"};
    cli_args a;
    lister l = {0};
    char logkey[KEY_MAX], epkey[KEY_MAX], err[HQ_ERRLEN];
    redisReply *rep;
    int rc, exists;

    x->usage = "hookq deliveries ENDPOINT [--limit N] [--failed] [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    if ((rc = cli_get_int(x, &a, "limit", 20, LIMIT_MAX, &l.limit)) != CLI_OK)
        return rc;
    l.failed_only = cli_has(&a, "failed");
    if (id_valid(a.pos[0], err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "endpoint id: %s", err);
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    if (key_log(x->c->redis_prefix, a.pos[0], logkey, sizeof logkey) != HQ_OK ||
        key_endpoint(x->c->redis_prefix, a.pos[0], epkey, sizeof epkey) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "key too long");
    /* A typo in the id would otherwise print an empty table. */
    if (!(rep = cli_cmd(x, (const char *[]){"EXISTS", epkey, logkey, NULL})))
        return CLI_FAIL;
    exists = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    if (!exists)
        return cli_fail(x, CLI_FAIL, "endpoint %s not found", a.pos[0]);
    return list_stream(x, &l, logkey, 9, hdr, add_delivery);
}

static const char *dead_error(const redisReply *en) {
    const char *e = cli_entry_field(en, "error");
    return e ? e : cli_entry_field(en, "reason");
}

static int add_dead(cli *x, const redisReply *en, void *ud) {
    lister *l = ud;
    const char *ep = cli_entry_field(en, "endpoint");
    const char *failed_at = cli_entry_field(en, "failed_at");
    char when[TS_ISO_LEN];
    if (l->endpoint && (!ep || strcmp(ep, l->endpoint) != 0))
        return 0;
    cli_sid_iso(cli_entry_id(en), when, sizeof when);
    if (l->arr) {
        json_t *o = cli_entry_json(en, "dead_id");
        if (!o || json_array_append_new(l->arr, o) != 0)
            return scan_oom(x);
    } else {
        const char *row[] = {cli_entry_id(en),
                             cli_entry_field(en, "kind"),
                             cli_entry_field(en, "event_id"),
                             cli_entry_field(en, "type"),
                             ep,
                             cli_entry_field(en, "attempt"),
                             cli_entry_field(en, "status"),
                             dead_error(en),
                             failed_at ? failed_at : when};
        if (cli_table_add(l->t, row) != HQ_OK)
            return scan_oom(x);
    }
    return ++l->n >= l->limit;
}

static int dead_key(cli *x, char *buf, size_t len) {
    int rc = cli_rq(x);
    if (rc != CLI_OK)
        return rc;
    if (key_dead(x->c->redis_prefix, buf, len) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "key too long");
    return CLI_OK;
}

static int dead_list(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"endpoint", 1}, {"limit", 1}, {NULL, 0}};
    static const char *const hdr[] = {"ID",      "KIND",   "EVENT_ID", "TYPE",     "ENDPOINT",
                                      "ATTEMPT", "STATUS", "ERROR",    "FAILED_AT"};
    cli_args a;
    lister l = {0};
    char dead[KEY_MAX];
    int rc;

    x->usage = "hookq dead list [--endpoint ID] [--limit N] [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 0, 0, &a)) != CLI_OK)
        return rc;
    if ((rc = cli_get_int(x, &a, "limit", 50, LIMIT_MAX, &l.limit)) != CLI_OK)
        return rc;
    l.endpoint = cli_get(&a, "endpoint");
    if ((rc = dead_key(x, dead, sizeof dead)) != CLI_OK)
        return rc;
    return list_stream(x, &l, dead, 9, hdr, add_dead);
}

/* A dead letter selected for replay or purge. */
typedef struct pick {
    char *id;
    char *event;    /* events stream id; NULL if not replayable */
    char *event_id; /* the event's id, for messages; NULL if the entry has none */
    char *endpoint; /* NULL if not replayable */
    char *why;      /* why not replayable */
} pick;

typedef struct picks {
    pick *p;
    size_t n, cap;
    const char *endpoint; /* filter, or NULL for all */
} picks;

static void picks_clear(picks *ps) {
    size_t i;
    for (i = 0; i < ps->n; i++) {
        free(ps->p[i].id);
        free(ps->p[i].event);
        free(ps->p[i].event_id);
        free(ps->p[i].endpoint);
        free(ps->p[i].why);
    }
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Only job dead letters carry what a job needs (event stream id + endpoint); a malformed
 * event never became a job and has no endpoint to go to. */
static int add_pick(cli *x, const redisReply *en, void *ud) {
    picks *ps = ud;
    const char *kind = cli_entry_field(en, "kind");
    const char *event = cli_entry_field(en, "event");
    const char *ep = cli_entry_field(en, "endpoint");
    pick *p;
    if (ps->endpoint && (!ep || strcmp(ep, ps->endpoint) != 0))
        return 0;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        pick *np = realloc(ps->p, cap * sizeof *np);
        if (!np)
            return scan_oom(x);
        ps->p = np;
        ps->cap = cap;
    }
    p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    p->id = strdup(cli_entry_id(en));
    if (kind && strcmp(kind, "event") == 0) {
        const char *reason = cli_entry_field(en, "reason");
        size_t len = 64 + (reason ? strlen(reason) : 0);
        p->why = malloc(len);
        if (p->why)
            snprintf(p->why, len, "a malformed event (%s) is not replayable",
                     reason ? reason : "no reason recorded");
    } else if (!event || !*event || !ep || !*ep) {
        p->why = strdup("the entry has no event/endpoint fields to replay");
    } else {
        const char *event_id = cli_entry_field(en, "event_id");
        p->event = dup_or_null(event);
        p->event_id = dup_or_null(event_id);
        p->endpoint = dup_or_null(ep);
        if (!p->event || !p->endpoint || (event_id && !p->event_id))
            return scan_oom(x);
    }
    if (!p->id || (!p->event && !p->why))
        return scan_oom(x);
    return 0;
}

/* Whether the dead letter's event is still in the events stream. The worker needs the
 * entry to deliver: a job for a trimmed event (older than events.retention) would only
 * become a new dead letter. CLI_OK with *why empty if it is there; CLI_OK with *why set
 * (the reason, for the operator) if it is not; CLI_FAIL if Redis could not be asked. */
static int event_present(cli *x, const char *events, const pick *p, char *why, size_t len) {
    redisReply *rep = cli_cmd_keeperr(
        x, (const char *[]){"XRANGE", events, p->event, p->event, "COUNT", "1", NULL});
    why[0] = '\0';
    if (!rep)
        return CLI_FAIL;
    if (rep->type == REDIS_REPLY_ERROR)
        snprintf(why, len,
                 "dead letter %s: its event field '%.64s' is not a stream id (%s); not replayed",
                 p->id, p->event, rep->str);
    else if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        snprintf(why, len,
                 "dead letter %s: event %s%s%s%s is no longer in the events stream (past "
                 "events.retention); not replayed",
                 p->id, p->event_id ? p->event_id : p->event, p->event_id ? " (" : "",
                 p->event_id ? p->event : "", p->event_id ? ")" : "");
    freeReplyObject(rep);
    return CLI_OK;
}

/* Move one dead letter back to the jobs stream, attempt 1, in one MULTI/EXEC so it is
 * never both queued and still dead (or neither). */
static int replay_one(cli *x, const char *jobs, const char *dead, const pick *p) {
    redisReply *rep;
    int ok;
    const char *const *cmds[] = {
        (const char *[]){"MULTI", NULL},
        (const char *[]){"XADD", jobs, "*", "event", p->event, "endpoint", p->endpoint, "attempt",
                         "1", NULL},
        (const char *[]){"XDEL", dead, p->id, NULL},
    };
    size_t i;
    for (i = 0; i < 3; i++) {
        if (!(rep = cli_cmd(x, cmds[i]))) {
            redisReply *d = cli_cmd_keeperr(x, (const char *[]){"DISCARD", NULL});
            if (d)
                freeReplyObject(d);
            return CLI_FAIL;
        }
        freeReplyObject(rep);
    }
    if (!(rep = cli_cmd(x, (const char *[]){"EXEC", NULL})))
        return CLI_FAIL;
    ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
         rep->element[0]->type == REDIS_REPLY_STRING;
    if (!ok)
        cli_fail(x, CLI_FAIL, "replay of %s failed: %s", p->id,
                 rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                         rep->element[0]->type == REDIS_REPLY_ERROR
                     ? rep->element[0]->str
                     : "transaction aborted");
    freeReplyObject(rep);
    return ok ? CLI_OK : CLI_FAIL;
}

static int scan_fail_missing(cli *x, const char *id) {
    cli_fail(x, CLI_FAIL, "dead letter %s not found", id);
    return -1;
}

/* Select by explicit ids: each must exist. */
static int pick_ids(cli *x, const char *dead, const cli_args *a, picks *ps) {
    int i;
    for (i = 0; i < a->npos; i++) {
        redisReply *rep =
            cli_cmd(x, (const char *[]){"XRANGE", dead, a->pos[i], a->pos[i], "COUNT", "1", NULL});
        int r = 0;
        if (!rep)
            return CLI_FAIL;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && cli_entry_ok(rep->element[0]))
            r = add_pick(x, rep->element[0], ps);
        else
            r = scan_fail_missing(x, a->pos[i]);
        freeReplyObject(rep);
        if (r < 0)
            return CLI_FAIL;
    }
    return CLI_OK;
}

static int select_mode(cli *x, const cli_args *a, const char *verb) {
    int modes = (a->npos > 0) + cli_has(a, "endpoint") + cli_has(a, "all");
    if (modes != 1)
        return cli_fail(x, CLI_USAGE, "%s needs exactly one of: IDs, --endpoint ID, --all", verb);
    return CLI_OK;
}

static int dead_replay(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"endpoint", 1}, {"all", 0}, {NULL, 0}};
    cli_args a;
    picks ps = {0};
    char dead[KEY_MAX], jobs[KEY_MAX], events[KEY_MAX], why[CLI_ERRLEN];
    size_t i, done = 0, skipped = 0, failed = 0;
    json_t *jr = NULL, *js = NULL, *jf = NULL;
    int rc;

    x->usage = "hookq dead replay ID... | --endpoint ID | --all [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 0, CLI_ARGS_MAX, &a)) != CLI_OK)
        return rc;
    if ((rc = select_mode(x, &a, "replay")) != CLI_OK)
        return rc;
    if ((rc = dead_key(x, dead, sizeof dead)) != CLI_OK)
        return rc;
    key_jobs(x->c->redis_prefix, jobs, sizeof jobs);
    key_events(x->c->redis_prefix, events, sizeof events);
    ps.endpoint = cli_get(&a, "endpoint");
    rc = a.npos ? pick_ids(x, dead, &a, &ps) : cli_scan_rev(x, dead, "1000", add_pick, &ps);
    if (rc != CLI_OK)
        goto cleanup;
    jr = json_array();
    js = json_array();
    jf = json_array();
    if (!jr || !js || !jf) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    /* Oldest first, so replayed jobs keep their original order in the jobs stream. */
    for (i = ps.n; i-- > 0;) {
        const pick *p = &ps.p[i];
        if (!p->event) {
            skipped++;
            json_array_append_new(js, json_pack("{s:s,s:s}", "id", p->id, "reason", p->why));
            if (!x->json)
                fprintf(x->out, "skipped %s: %s\n", p->id, p->why);
            continue;
        }
        /* Checked, then replayed: the event could still be trimmed in between, but trimming
         * takes entries older than events.retention, and a dead letter's event that close
         * to the edge is as good as gone anyway. The dead letter stays for dead list. */
        if ((rc = event_present(x, events, p, why, sizeof why)) != CLI_OK)
            goto cleanup;
        if (why[0]) {
            failed++;
            json_array_append_new(
                jf, json_pack("{s:s,s:s,s:s}", "id", p->id, "event", p->event, "reason", why));
            cli_warn(x, "%s", why);
            continue;
        }
        if ((rc = replay_one(x, jobs, dead, p)) != CLI_OK)
            goto cleanup;
        done++;
        json_array_append_new(jr, json_string(p->id));
    }
    if (x->json)
        cli_print_json(x,
                       json_pack("{s:I,s:O,s:I,s:O,s:I,s:O}", "replayed", (json_int_t)done,
                                 "replayed_ids", jr, "skipped", (json_int_t)skipped, "skipped_ids",
                                 js, "failed", (json_int_t)failed, "failed_ids", jf));
    else
        fprintf(x->out, "replayed %zu dead letter%s%s%s\n", done, done == 1 ? "" : "s",
                skipped ? " (some skipped, see above)" : "",
                failed ? " (some not replayed, see stderr)" : "");
    rc = CLI_OK;
    /* A job dead letter that could not be replayed is a failure whichever way it was
     * selected. A malformed entry (skipped) is no replay candidate at all: it only counts
     * when it was asked for by id. */
    if (failed || (a.npos && skipped))
        rc = cli_fail(x, CLI_FAIL, "%zu of %zu dead letters could not be replayed",
                      failed + (a.npos ? skipped : 0), done + failed + (a.npos ? skipped : 0));
cleanup:
    json_decref(jr);
    json_decref(js);
    json_decref(jf);
    picks_clear(&ps);
    return rc;
}

static int dead_purge(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"endpoint", 1}, {"all", 0}, {NULL, 0}};
    cli_args a;
    picks ps = {0};
    char dead[KEY_MAX];
    long long purged = 0;
    size_t i;
    redisReply *rep;
    int rc;

    x->usage = "hookq dead purge --endpoint ID | --all [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 0, 0, &a)) != CLI_OK)
        return rc;
    if ((rc = select_mode(x, &a, "purge")) != CLI_OK)
        return rc;
    if ((rc = dead_key(x, dead, sizeof dead)) != CLI_OK)
        return rc;
    if (cli_has(&a, "all")) {
        if (!(rep = cli_cmd(x, (const char *[]){"XLEN", dead, NULL})))
            return CLI_FAIL;
        purged = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
        freeReplyObject(rep);
        if (!(rep = cli_cmd(x, (const char *[]){"DEL", dead, NULL})))
            return CLI_FAIL;
        freeReplyObject(rep);
    } else {
        ps.endpoint = cli_get(&a, "endpoint");
        if ((rc = cli_scan_rev(x, dead, "1000", add_pick, &ps)) != CLI_OK)
            goto cleanup;
        for (i = 0; i < ps.n; i++) {
            if (!(rep = cli_cmd(x, (const char *[]){"XDEL", dead, ps.p[i].id, NULL}))) {
                rc = CLI_FAIL;
                goto cleanup;
            }
            purged += rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
            freeReplyObject(rep);
        }
    }
    if (x->json)
        rc = cli_print_json(x, json_pack("{s:I}", "purged", (json_int_t)purged));
    else
        fprintf(x->out, "purged %lld dead letter%s\n", purged, purged == 1 ? "" : "s");
cleanup:
    picks_clear(&ps);
    return rc;
}

int cli_cmd_dead(cli *x, int argc, char **argv) {
    x->usage = "hookq dead list|replay|purge ...";
    if (argc < 2)
        return cli_fail(x, CLI_USAGE, "missing dead command");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return CLI_HELP;
    if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
        return dead_list(x, argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return dead_replay(x, argc - 1, argv + 1);
    if (strcmp(argv[1], "purge") == 0)
        return dead_purge(x, argc - 1, argv + 1);
    return cli_fail(x, CLI_USAGE, "unknown dead command '%s'", argv[1]);
}
