/* cli_retry.c -- `hookq retry EVENT_ID`: deliver a published event again now, as new
 * attempt-1 jobs for the endpoints that receive it (or one given endpoint). */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "endpoint.h"
#include "hookq_int.h"
#include "ids.h"
#include "redis_keys.h"

/* What retry needs of the event. */
typedef struct found {
    const char *want; /* event id looked for */
    char *sid;        /* its events stream entry id */
    char *type;
    char *tenant;
    char *endpoint;
    char *gone; /* the stream id the idempotency mark names when that entry is gone */
} found;

static void found_clear(found *f) {
    free(f->sid);
    free(f->type);
    free(f->tenant);
    free(f->endpoint);
    free(f->gone);
}

/* The event id of an entry: its `id` field, or for raw producers that left it out, the
 * default "evt_" + stream id without the dash (docs/keys.md). */
static int entry_has_id(const redisReply *en, const char *want) {
    const char *id = cli_entry_field(en, "id");
    char def[80];
    const char *sid, *dash;
    if (id)
        return strcmp(id, want) == 0;
    sid = cli_entry_id(en);
    dash = strchr(sid, '-');
    if (!dash)
        return 0;
    snprintf(def, sizeof def, "evt_%.*s%s", (int)(dash - sid), sid, dash + 1);
    return strcmp(def, want) == 0;
}

static int take(cli *x, const redisReply *en, void *ud) {
    found *f = ud;
    const char *type = cli_entry_field(en, "type");
    const char *tenant = cli_entry_field(en, "tenant");
    const char *target = cli_entry_field(en, "endpoint");
    if (!entry_has_id(en, f->want))
        return 0;
    f->sid = strdup(cli_entry_id(en));
    f->type = strdup(type ? type : "");
    f->tenant = tenant ? strdup(tenant) : NULL;
    f->endpoint = target ? strdup(target) : NULL;
    if (!f->sid || !f->type || (tenant && !f->tenant) || (target && !f->endpoint)) {
        cli_fail(x, CLI_FAIL, "out of memory");
        return -1;
    }
    return 1;
}

/* Find the event: the idempotency mark names its entry directly when the producer chose
 * the id; otherwise scan the stream newest first (recent events are the usual target). */
static int find_event(cli *x, const char *events, found *f) {
    char idem[KEY_MAX];
    redisReply *rep;
    int r = 0;
    if (key_idem(x->c->redis_prefix, f->want, idem, sizeof idem) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "key too long");
    if (!(rep = cli_cmd(x, (const char *[]){"GET", idem, NULL})))
        return CLI_FAIL;
    if (rep->type == REDIS_REPLY_STRING) {
        char sid[HOOKQ_SID_MAX];
        snprintf(sid, sizeof sid, "%s", rep->str);
        freeReplyObject(rep);
        redisReply *e =
            cli_cmd_keeperr(x, (const char *[]){"XRANGE", events, sid, sid, "COUNT", "1", NULL});
        if (!e)
            return CLI_FAIL;
        /* An error reply (the mark does not hold a stream id) leaves it to the scan. */
        int empty = e->type == REDIS_REPLY_ARRAY && e->elements == 0;
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 1 && cli_entry_ok(e->element[0]))
            r = take(x, e->element[0], f);
        freeReplyObject(e);
        if (r < 0)
            return CLI_FAIL;
        if (r > 0)
            return CLI_OK;
        /* The mark outlived its entry (trimmed by events.retention while the mark's
         * events.idempotency_ttl ran, or deleted): the event was published and is gone.
         * The scan still runs: a raw entry could carry the same id field. */
        if (empty && !(f->gone = strdup(sid)))
            return cli_fail(x, CLI_FAIL, "out of memory");
    } else {
        freeReplyObject(rep);
    }
    return cli_scan_rev(x, events, "1000", take, f);
}

static int queue_job(cli *x, const char *jobs, const char *sid, const char *ep_id) {
    redisReply *rep = cli_cmd(x, (const char *[]){"XADD", jobs, "*", "event", sid, "endpoint",
                                                  ep_id, "attempt", "1", NULL});
    if (!rep)
        return CLI_FAIL;
    freeReplyObject(rep);
    return CLI_OK;
}

int cli_cmd_retry(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"endpoint", 1}, {NULL, 0}};
    cli_args a;
    found f = {0};
    char events[KEY_MAX], jobs[KEY_MAX], err[HQ_ERRLEN];
    const char *only;
    ep_table tb = {0};
    ep *one = NULL;
    size_t i;
    json_t *queued = NULL;
    int rc;

    x->usage = "hookq retry EVENT_ID [--endpoint ID] [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    f.want = a.pos[0];
    only = cli_get(&a, "endpoint");
    if (id_valid(f.want, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "event id: %s", err);
    if (only && id_valid(only, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "endpoint id: %s", err);
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    key_events(x->c->redis_prefix, events, sizeof events);
    key_jobs(x->c->redis_prefix, jobs, sizeof jobs);
    rc = CLI_FAIL;
    if (find_event(x, events, &f) != CLI_OK)
        goto cleanup;
    /* No entry, no job: the worker could only turn a job without its event into a new
     * dead letter. */
    if (!f.sid && f.gone) {
        cli_fail(x, CLI_FAIL,
                 "event %s (%s) is no longer in the events stream (past events.retention); not "
                 "retried",
                 f.want, f.gone);
        goto cleanup;
    }
    if (!f.sid) {
        cli_fail(x, CLI_FAIL,
                 "event %s is not in the events stream (never published, or past "
                 "events.retention); not retried",
                 f.want);
        goto cleanup;
    }
    if (!(queued = json_array())) {
        cli_fail(x, CLI_FAIL, "out of memory");
        goto cleanup;
    }
    if (only) {
        /* An explicit endpoint is a manual resend: subscriptions do not matter, but the
         * worker drops jobs of disabled endpoints, so refuse those up front. */
        if (ep_load(x->r, x->c->redis_prefix, only, &one, err, sizeof err) != HQ_OK) {
            cli_fail(x, CLI_FAIL, "%s", err);
            goto cleanup;
        }
        if (!one->enabled) {
            cli_fail(x, CLI_FAIL, "endpoint %s is disabled (hookq endpoint enable %s)", only, only);
            goto cleanup;
        }
        if (queue_job(x, jobs, f.sid, one->id) != CLI_OK)
            goto cleanup;
        json_array_append_new(queued, json_string(one->id));
    } else {
        if (ep_load_table(x->r, x->c->redis_prefix, &tb, err, sizeof err) != HQ_OK) {
            cli_fail(x, CLI_FAIL, "%s", err);
            goto cleanup;
        }
        /* Whether an unreadable endpoint receives the event cannot be told: say so rather
         * than skip it silently. */
        for (i = 0; i < tb.n_bad; i++)
            cli_warn(x, "%s; not considered for this retry", tb.bad[i].error);
        for (i = 0; i < tb.n; i++) {
            if (!ep_matches(tb.eps[i], f.type, f.tenant, f.endpoint))
                continue;
            if (queue_job(x, jobs, f.sid, tb.eps[i]->id) != CLI_OK)
                goto cleanup;
            json_array_append_new(queued, json_string(tb.eps[i]->id));
        }
        if (json_array_size(queued) == 0) {
            cli_fail(x, CLI_FAIL, "no enabled endpoint receives event %s (type %s)", f.want,
                     f.type);
            goto cleanup;
        }
    }
    if (x->json) {
        rc = cli_print_json(
            x, json_pack("{s:s,s:s,s:O}", "event_id", f.want, "event", f.sid, "endpoints", queued));
    } else {
        for (i = 0; i < json_array_size(queued); i++)
            fprintf(x->out, "queued %s for %s\n", f.want,
                    json_string_value(json_array_get(queued, i)));
        rc = CLI_OK;
    }
cleanup:
    json_decref(queued);
    ep_table_clear(&tb);
    ep_free(one);
    found_clear(&f);
    return rc;
}
