/* cli_send.c -- `hookq send` (publish one event) and `hookq test` (publish a sample event
 * to one endpoint and report how its delivery went). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "units.h"
#include "endpoint.h"
#include "hookq_int.h"
#include "ids.h"
#include "redis_keys.h"
#include "timestamp.h"

/* Read all of f, at most max+1 bytes (so the caller can tell "too big" apart). */
static char *read_all(FILE *f, size_t max, size_t *len) {
    size_t cap = 0, n = 0, got;
    char *buf = NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *b;
            if (ncap > max + 1)
                ncap = max + 1;
            if (ncap <= cap)
                break; /* max+1 bytes read: enough to report "too large" */
            b = realloc(buf, ncap);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap = ncap;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* DATA argument: JSON text, "-" for stdin, "@FILE". *out is malloc'd. */
static int load_data(cli *x, const char *arg, size_t max, char **out, size_t *len) {
    FILE *f = NULL;
    *out = NULL;
    if (!arg)
        arg = "{}";
    if (strcmp(arg, "-") == 0) {
        f = stdin;
    } else if (arg[0] == '@') {
        f = fopen(arg + 1, "rb");
        if (!f)
            return cli_fail(x, CLI_FAIL, "cannot read %s: %s", arg + 1, strerror(errno));
    } else {
        *len = strlen(arg);
        *out = strdup(arg);
        return *out ? CLI_OK : cli_fail(x, CLI_FAIL, "out of memory");
    }
    *out = read_all(f, max, len);
    if (f != stdin)
        fclose(f);
    if (!*out)
        return cli_fail(x, CLI_FAIL, "cannot read %s", arg);
    return CLI_OK;
}

static envelope_limits limits(const cli *x) {
    envelope_limits l = {.max_payload = x->c->events_max_payload,
                         .max_depth = x->c->events_max_depth};
    return l;
}

int cli_cmd_send(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"id", 1}, {"tenant", 1}, {"endpoint", 1}, {NULL, 0}};
    cli_args a;
    char *data = NULL;
    size_t len = 0;
    char err[CLI_ERRLEN];
    hookq_publish_opts po;
    hookq__pub p;
    hookq__pubres res;
    envelope_limits lim;
    hookq_err e;
    int rc;

    x->usage = "hookq send TYPE [DATA|-|@FILE] [--id ID] [--tenant T] [--endpoint ID] [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 2, &a)) != CLI_OK)
        return rc;
    if ((rc = cli_cfg(x)) != CLI_OK)
        return rc;
    lim = limits(x);
    if (load_data(x, a.npos > 1 ? a.pos[1] : NULL, lim.max_payload, &data, &len) != CLI_OK)
        return CLI_FAIL;
    po = (hookq_publish_opts){.id = cli_get(&a, "id"),
                              .tenant = cli_get(&a, "tenant"),
                              .endpoint = cli_get(&a, "endpoint")};
    p = (hookq__pub){.type = a.pos[0], .data = data, .datalen = len, .opts = &po};
    /* Validate before connecting: bad input is a usage problem, not a Redis one. */
    if (hookq__validate(&lim, &p, err, sizeof err) != HOOKQ_OK) {
        rc = cli_fail(x, CLI_FAIL, "%s", err);
        goto cleanup;
    }
    if ((rc = cli_rq(x)) != CLI_OK)
        goto cleanup;
    rc = CLI_FAIL;
    e = hookq__publish(x->r, x->c->redis_prefix, &lim, x->c->events_idempotency_ttl_ms, &p, &res,
                       err, sizeof err);
    if (e != HOOKQ_OK) {
        cli_fail(x, CLI_FAIL, "%s", err);
        goto cleanup;
    }
    if (x->json)
        rc = cli_print_json(x, json_pack("{s:s,s:s,s:b}", "id", res.id, "stream_id", res.stream_id,
                                         "duplicate", !res.added));
    else {
        fprintf(x->out, "%s\n", res.id);
        rc = CLI_OK;
    }
cleanup:
    free(data);
    return rc;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Newest entry id of the log ("0-0" if empty), so polling starts after it. */
static int log_tail(cli *x, const char *logkey, char *out, size_t len) {
    redisReply *rep =
        cli_cmd(x, (const char *[]){"XREVRANGE", logkey, "+", "-", "COUNT", "1", NULL});
    if (!rep)
        return CLI_FAIL;
    snprintf(out, len, "0-0");
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && cli_entry_ok(rep->element[0]))
        snprintf(out, len, "%s", cli_entry_id(rep->element[0]));
    freeReplyObject(rep);
    return CLI_OK;
}

/* Look through log entries after `from` for event_id; advances from. Returns 1 with
 * *found (the entry as JSON, new reference) when seen, 0 if not yet, -1 on error. */
static int log_find(cli *x, const char *logkey, char *from, size_t fromlen, const char *event_id,
                    json_t **found) {
    char start[HOOKQ_SID_MAX + 2];
    redisReply *rep;
    size_t i;
    *found = NULL;
    for (;;) {
        snprintf(start, sizeof start, "(%s", from);
        rep = cli_cmd(x, (const char *[]){"XRANGE", logkey, start, "+", "COUNT", "100", NULL});
        if (!rep)
            return -1;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
            freeReplyObject(rep);
            return 0;
        }
        for (i = 0; i < rep->elements; i++) {
            const redisReply *en = rep->element[i];
            const char *ev;
            if (!cli_entry_ok(en))
                continue;
            snprintf(from, fromlen, "%s", cli_entry_id(en));
            ev = cli_entry_field(en, "event_id");
            if (ev && strcmp(ev, event_id) == 0) {
                *found = cli_entry_json(en, "log_id");
                freeReplyObject(rep);
                return *found ? 1 : -1;
            }
        }
        freeReplyObject(rep);
    }
}

int cli_cmd_test(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"wait", 1}, {NULL, 0}};
    cli_args a;
    ep *e = NULL;
    char err[CLI_ERRLEN], logkey[KEY_MAX], from[HOOKQ_SID_MAX], now_iso[TS_ISO_LEN];
    char *data = NULL;
    int64_t wait_ms = 10000, deadline;
    hookq_publish_opts po = {0};
    hookq__pub p;
    hookq__pubres res;
    envelope_limits lim;
    json_t *hit = NULL;
    int rc, got = 0;

    x->usage = "hookq test ENDPOINT [--wait 10s] [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    if (cli_get(&a, "wait") &&
        units_parse_duration(cli_get(&a, "wait"), &wait_ms, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_USAGE, "--wait: %s", err);
    if (id_valid(a.pos[0], err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "endpoint id: %s", err);
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    if (ep_load(x->r, x->c->redis_prefix, a.pos[0], &e, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    rc = CLI_FAIL;
    if (!e->enabled) {
        cli_fail(x, CLI_FAIL, "endpoint %s is disabled (hookq endpoint enable %s)", e->id, e->id);
        goto cleanup;
    }
    if (key_log(x->c->redis_prefix, e->id, logkey, sizeof logkey) != HQ_OK) {
        cli_fail(x, CLI_FAIL, "key too long");
        goto cleanup;
    }
    if (log_tail(x, logkey, from, sizeof from) != CLI_OK)
        goto cleanup;
    ts_iso(ts_now_ms(), now_iso, sizeof now_iso);
    {
        json_t *d = json_pack("{s:s,s:s,s:s}", "message", "hookq test event", "endpoint", e->id,
                              "sent_at", now_iso);
        data = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(d);
    }
    if (!data) {
        cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    po.endpoint = e->id;
    p = (hookq__pub){.type = "hookq.test", .data = data, .datalen = strlen(data), .opts = &po};
    lim = (envelope_limits){.max_payload = x->c->events_max_payload,
                            .max_depth = x->c->events_max_depth};
    if (hookq__publish(x->r, x->c->redis_prefix, &lim, x->c->events_idempotency_ttl_ms, &p, &res,
                       err, sizeof err) != HOOKQ_OK) {
        cli_fail(x, CLI_FAIL, "%s", err);
        goto cleanup;
    }
    deadline = ts_mono_ms() + wait_ms;
    for (;;) {
        got = log_find(x, logkey, from, sizeof from, res.id, &hit);
        if (got != 0 || ts_mono_ms() >= deadline)
            break;
        sleep_ms(100);
    }
    if (got < 0) {
        if (!x->err[0])
            cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    if (got == 0) {
        char w[32];
        units_format_duration(wait_ms, w, sizeof w);
        cli_fail(x, CLI_FAIL, "no delivery attempt for %s within %s (is hookq-worker running?)",
                 res.id, w);
        goto cleanup;
    }
    {
        const char *outcome = json_string_value(json_object_get(hit, "outcome"));
        const char *status = json_string_value(json_object_get(hit, "status"));
        const char *lat = json_string_value(json_object_get(hit, "latency_ms"));
        const char *error = json_string_value(json_object_get(hit, "error"));
        int ok = outcome && strcmp(outcome, "delivered") == 0;
        if (x->json) {
            cli_print_json(x, json_incref(hit));
        } else {
            fprintf(x->out, "%s -> %s: %s (HTTP %s, %s ms)%s%s\n", res.id, e->id,
                    outcome ? outcome : "?", status ? status : "0", lat ? lat : "?",
                    error && *error ? ": " : "", error && *error ? error : "");
        }
        if (ok)
            rc = CLI_OK;
        else
            cli_fail(x, CLI_FAIL, "test delivery to %s was not delivered (%s)", e->id,
                     outcome ? outcome : "no outcome");
    }
cleanup:
    json_decref(hit);
    free(data);
    ep_free(e);
    return rc;
}
