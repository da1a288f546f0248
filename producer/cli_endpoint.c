/* cli_endpoint.c -- `hookq endpoint ...`: register and manage endpoints. The hash layout
 * belongs to common/endpoint.c; this file validates operator input and prints. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "cli_lanes.h"
#include "endpoint.h"
#include "envelope.h"
#include "ids.h"
#include "redis_keys.h"
#include "event_pattern.h"
#include "signature.h"
#include "timestamp.h"
#include "validate.h"

#define DESCRIPTION_MAX   1024
#define MAX_IN_FLIGHT_MAX 1000000
#define HOLD_MAX_MAX      100000000

/* Delivery policies (docs/policies.md), shared by add and update. */
#define U_POLICY                                                                                   \
    "POLICY: [--ordered | --unordered] [--order-key tenant|FIELD|data.FIELD|none]\n"               \
    "        [--rate N/s|N/m|N/h|none] [--max-in-flight N|none] [--on-disabled drop|hold]\n"       \
    "        [--hold-max N]   (see docs/policies.md)"

static const char u_add[] =
    "hookq endpoint add --url URL [--events PATTERNS] [--description TEXT] [--tenant T]\n"
    "       [--secret whsec_...] [--header 'Name: value']... [--github-signature]\n"
    "       [--github-secret current|previous] [POLICY...]\n" U_POLICY;
static const char u_update[] =
    "hookq endpoint update ID [--url URL] [--events PATTERNS] [--description TEXT]\n"
    "       [--tenant T] [--header 'Name: value']... [--no-headers]\n"
    "       [--github-signature | --no-github-signature] [--github-secret current|previous]\n"
    "       [POLICY...]\n" U_POLICY;

/* Replace *dst with a copy of s ("" or NULL clears when allow_null). */
static int set_str(cli *x, char **dst, const char *s, int allow_null) {
    char *c = NULL;
    if (s && (*s || !allow_null)) {
        c = strdup(s);
        if (!c)
            return cli_fail(x, CLI_FAIL, "out of memory");
    }
    free(*dst);
    *dst = c;
    return CLI_OK;
}

static void clear_headers(ep *e) {
    size_t i;
    for (i = 0; i < e->n_headers; i++) {
        free(e->header_names[i]);
        free(e->header_values[i]);
    }
    free(e->header_names);
    free(e->header_values);
    e->header_names = e->header_values = NULL;
    e->n_headers = 0;
}

/* Validate every --header and replace e's headers with them. */
static int set_headers(cli *x, ep *e, const cli_args *a) {
    size_t n = 0, k = 0;
    int i;
    char err[HQ_ERRLEN];
    char **names, **values;
    for (i = 0; i < a->nopt; i++)
        n += strcmp(a->oname[i], "header") == 0;
    if (n > VALIDATE_HEADERS_MAX)
        return cli_fail(x, CLI_FAIL, "--header: at most %d headers", VALIDATE_HEADERS_MAX);
    names = calloc(n ? n : 1, sizeof *names);
    values = calloc(n ? n : 1, sizeof *values);
    if (!names || !values) {
        free(names);
        free(values);
        return cli_fail(x, CLI_FAIL, "out of memory");
    }
    for (i = 0; i < a->nopt; i++) {
        if (strcmp(a->oname[i], "header") != 0)
            continue;
        if (validate_header_line(a->oval[i], &names[k], &values[k], err, sizeof err) != HQ_OK) {
            while (k--) {
                free(names[k]);
                free(values[k]);
            }
            free(names);
            free(values);
            return cli_fail(x, CLI_FAIL, "--header: %s", err);
        }
        k++;
    }
    clear_headers(e);
    e->header_names = names;
    e->header_values = values;
    e->n_headers = n;
    return CLI_OK;
}

/* --github-secret takes one of two words: anything else is a usage error, found before
 * Redis is asked anything. */
static int check_github_secret(cli *x, const cli_args *a) {
    ep_github_secret_mode m;
    const char *v = cli_get(a, "github-secret");
    if (v && ep_github_secret_parse(v, &m) != HQ_OK)
        return cli_fail(x, CLI_USAGE, "--github-secret: expected current or previous, got '%s'", v);
    return CLI_OK;
}

/* A count option: N in 1..max, or "none" (0) when none_ok. */
static int policy_count(cli *x, const char *name, const char *v, int64_t max, int none_ok,
                        int64_t *out) {
    char *end;
    long long n;
    if (none_ok && strcmp(v, "none") == 0) {
        *out = 0;
        return CLI_OK;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end || !isdigit((unsigned char)*v) || n < 1 || n > max)
        return cli_fail(x, CLI_FAIL, "--%s: expected a number from 1 to %lld%s, got '%s'", name,
                        (long long)max, none_ok ? " or none" : "", v);
    *out = n;
    return CLI_OK;
}

/* Apply the delivery-policy options (docs/policies.md). An --order-key needs an ordered
 * endpoint: --ordered in the same command, or (update) one that already is. An
 * endpoint that gets a policy is marked as using lanes for good (ep.h "lanes"): its
 * workers keep claiming from them even after the policy goes, since jobs may wait there. */
static int apply_policy(cli *x, ep *e, const cli_args *a) {
    char err[HQ_ERRLEN];
    const char *v;
    if (cli_has(a, "ordered"))
        e->ordered = 1;
    if (cli_has(a, "unordered")) {
        e->ordered = 0;
        /* An order key means nothing without order; keep the hash free of it. */
        free(e->order_key);
        e->order_key = NULL;
    }
    if ((v = cli_get(a, "order-key"))) {
        char *k = NULL;
        if (strcmp(v, "none") != 0) {
            if (ep_order_key_parse(v, &k, err, sizeof err) != HQ_OK)
                return cli_fail(x, CLI_FAIL, "--order-key: %s", err);
            /* e->ordered is now what --ordered/--unordered made it, or what it was. */
            if (!e->ordered) {
                free(k);
                return cli_fail(x, CLI_FAIL,
                                "--order-key needs --ordered (an unordered endpoint "
                                "has no order to keep per key)");
            }
        }
        free(e->order_key);
        e->order_key = k;
    }
    if ((v = cli_get(a, "rate"))) {
        if (strcmp(v, "none") == 0) {
            e->rate_n = 0;
            e->rate_window_ms = 0;
        } else if (ep_rate_parse(v, &e->rate_n, &e->rate_window_ms, err, sizeof err) != HQ_OK) {
            return cli_fail(x, CLI_FAIL, "--rate: %s", err);
        }
    }
    if ((v = cli_get(a, "max-in-flight")) &&
        policy_count(x, "max-in-flight", v, MAX_IN_FLIGHT_MAX, 1, &e->max_in_flight) != CLI_OK)
        return CLI_FAIL;
    if ((v = cli_get(a, "on-disabled")) && ep_on_disabled_parse(v, &e->on_disabled) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "--on-disabled: expected drop or hold, got '%s'", v);
    if ((v = cli_get(a, "hold-max")) &&
        policy_count(x, "hold-max", v, HOLD_MAX_MAX, 0, &e->hold_max) != CLI_OK)
        return CLI_FAIL;
    if (ep_uses_lanes(e))
        e->lanes = 1;
    return CLI_OK;
}

/* --ordered and --unordered together are a contradiction in the command line itself. */
static int check_policy(cli *x, const cli_args *a) {
    if (cli_has(a, "ordered") && cli_has(a, "unordered"))
        return cli_fail(x, CLI_USAGE, "--ordered and --unordered conflict");
    return CLI_OK;
}

/* Apply the options add and update share (check_github_secret has run). */
static int apply(cli *x, ep *e, const cli_args *a) {
    char err[HQ_ERRLEN];
    const char *v;
    if ((v = cli_get(a, "url"))) {
        if (validate_url(v, err, sizeof err) != HQ_OK)
            return cli_fail(x, CLI_FAIL, "--url: %s", err);
        if (set_str(x, &e->url, v, 0) != CLI_OK)
            return CLI_FAIL;
    }
    if ((v = cli_get(a, "events"))) {
        pat_list l = {0};
        if (pat_list_parse(v, &l, err, sizeof err) != HQ_OK)
            return cli_fail(x, CLI_FAIL, "--events: %s", err);
        pat_list_clear(&e->events);
        e->events = l;
    }
    if ((v = cli_get(a, "description"))) {
        if (strlen(v) > DESCRIPTION_MAX)
            return cli_fail(x, CLI_FAIL, "--description: longer than %d bytes", DESCRIPTION_MAX);
        if (set_str(x, &e->description, v, 1) != CLI_OK)
            return CLI_FAIL;
    }
    if ((v = cli_get(a, "tenant"))) {
        if (*v && envelope_tenant_valid(v, err, sizeof err) != HQ_OK)
            return cli_fail(x, CLI_FAIL, "--tenant: %s", err);
        if (set_str(x, &e->tenant, v, 1) != CLI_OK)
            return CLI_FAIL;
    }
    if (cli_has(a, "no-headers"))
        clear_headers(e);
    if (cli_has(a, "header") && set_headers(x, e, a) != CLI_OK)
        return CLI_FAIL;
    if (cli_has(a, "github-signature"))
        e->github_signature = 1;
    if (cli_has(a, "no-github-signature"))
        e->github_signature = 0;
    if ((v = cli_get(a, "github-secret")))
        ep_github_secret_parse(v, &e->github_secret);
    return apply_policy(x, e, a);
}

static int new_secret(cli *x, const cli_args *a, char **out) {
    char buf[SIGN_SECRET_MAX], err[HQ_ERRLEN];
    const char *v = cli_get(a, "secret");
    if (v) {
        if (sign_secret_valid(v, err, sizeof err) != HQ_OK)
            return cli_fail(x, CLI_FAIL, "--secret: %s", err);
    } else {
        if (sign_secret_generate(buf, sizeof buf) != HQ_OK)
            return cli_fail(x, CLI_FAIL, "cannot generate a secret");
        v = buf;
    }
    free(*out);
    *out = strdup(v);
    return *out ? CLI_OK : cli_fail(x, CLI_FAIL, "out of memory");
}

static int save(cli *x, const ep *e) {
    char err[HQ_ERRLEN];
    if (ep_save(x->r, x->c->redis_prefix, e, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    return CLI_OK;
}

static int load(cli *x, const char *id, ep **out) {
    char err[HQ_ERRLEN];
    int rc;
    *out = NULL;
    if (id_valid(id, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "endpoint id: %s", err);
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    if (ep_load(x->r, x->c->redis_prefix, id, out, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    return CLI_OK;
}

/* Print j (reference stolen): as JSON, or as "key: value" lines, the policy object as an
 * indented section, and what cli_lanes_view added (if anything) after them. */
static int print_view(cli *x, json_t *j) {
    json_t *v;
    const char *k;
    if (!j)
        return cli_fail(x, CLI_FAIL, "out of memory");
    if (x->json)
        return cli_print_json(x, j);
    json_object_foreach(j, k, v) {
        if (strcmp(k, "health") == 0 || strcmp(k, "lanes") == 0 ||
            strcmp(k, "breaker_opened_at") == 0) {
            continue; /* cli_lanes_print's */
        } else if (strcmp(k, "policy") == 0 && json_is_object(v)) {
            const char *pk;
            json_t *pv;
            fprintf(x->out, "policy\n");
            json_object_foreach(v, pk, pv) {
                char *s = json_is_string(pv) ? NULL : json_dumps(pv, JSON_ENCODE_ANY);
                fprintf(x->out, "  %-16s %s\n", pk,
                        json_is_string(pv) ? json_string_value(pv)
                        : json_is_null(pv) ? "-"
                                           : s);
                free(s);
            }
        } else if (json_is_string(v)) {
            fprintf(x->out, "%-18s %s\n", k, json_string_value(v));
        } else if (json_is_null(v)) {
            continue; /* unset fields: nothing to show */
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(x->out, "%-18s %s\n", k, s ? s : "");
            free(s);
        }
    }
    cli_lanes_print(x, j);
    json_decref(j);
    return CLI_OK;
}

/* One endpoint, as JSON or key/value lines. */
static int print_ep(cli *x, const ep *e, int show_secret) {
    return print_view(x, ep_to_json(e, show_secret));
}

#define POLICY_OPTS                                                                                \
    {"ordered", 0}, {"unordered", 0}, {"order-key", 1}, {"rate", 1}, {"max-in-flight", 1},         \
        {"on-disabled", 1}, {                                                                      \
        "hold-max", 1                                                                              \
    }
static const cli_opt edit_opts[] = {
    {"url", 1},    {"events", 1},           {"description", 1},   {"tenant", 1}, {"secret", 1},
    {"header", 1}, {"github-signature", 0}, {"github-secret", 1}, POLICY_OPTS,   {NULL, 0},
};
static const cli_opt update_opts[] = {
    {"url", 1},
    {"events", 1},
    {"description", 1},
    {"tenant", 1},
    {"header", 1},
    {"no-headers", 0},
    {"github-signature", 0},
    {"no-github-signature", 0},
    {"github-secret", 1},
    POLICY_OPTS,
    {NULL, 0},
};

static int ep_add(cli *x, int argc, char **argv) {
    cli_args a;
    ep *e = NULL;
    char id[64];
    int rc;
    int64_t now = ts_now_ms();

    x->usage = u_add;
    if ((rc = cli_parse(x, argc, argv, edit_opts, 0, 0, &a)) != CLI_OK)
        return rc;
    if (!cli_get(&a, "url"))
        return cli_fail(x, CLI_USAGE, "--url is required");
    if ((rc = check_github_secret(x, &a)) != CLI_OK || (rc = check_policy(x, &a)) != CLI_OK)
        return rc;
    if (!(e = ep_new()))
        return cli_fail(x, CLI_FAIL, "out of memory");
    rc = CLI_FAIL;
    if (id_new(ID_PREFIX_ENDPOINT, id, sizeof id) != HQ_OK) {
        cli_fail(x, CLI_FAIL, "cannot generate an endpoint id");
        goto cleanup;
    }
    if (set_str(x, &e->id, id, 0) != CLI_OK || apply(x, e, &a) != CLI_OK ||
        new_secret(x, &a, &e->secret) != CLI_OK)
        goto cleanup;
    if (!cli_get(&a, "events")) {
        char err[HQ_ERRLEN];
        if (pat_list_parse("*", &e->events, err, sizeof err) != HQ_OK) {
            cli_fail(x, CLI_FAIL, "%s", err);
            goto cleanup;
        }
    }
    e->enabled = 1;
    e->created_at = e->updated_at = now;
    if ((rc = cli_rq(x)) != CLI_OK || (rc = save(x, e)) != CLI_OK)
        goto cleanup;
    /* The secret is shown here and by rotate-secret only: always as JSON, so it can be
     * captured by a script. */
    x->json = 1;
    rc = print_ep(x, e, 1);
cleanup:
    ep_free(e);
    return rc;
}

/* The reason an endpoint did not parse, without the "endpoint ID: " ep_from_hash puts
 * first (the table shows the id in its own column). */
static const char *bad_reason(const ep_bad *b) {
    size_t n = strlen(b->id);
    if (strncmp(b->error, "endpoint ", 9) == 0 && strncmp(b->error + 9, b->id, n) == 0 &&
        strncmp(b->error + 9 + n, ": ", 2) == 0)
        return b->error + 9 + n + 2;
    return b->error;
}

/* The policies in one cell: "ordered:tenant,50/s,mif=8,hold", or "-" if none. */
static void policy_cell(const ep *e, char *buf, size_t len) {
    char rate[48];
    size_t n = 0;
    buf[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, "%s", n ? "," : "");                           \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                                  \
    } while (0)
    if (e->ordered && e->order_key)
        ADD("ordered:%s", e->order_key);
    else if (e->ordered)
        ADD("ordered");
    if (e->rate_n > 0) {
        ep_rate_format(e->rate_n, e->rate_window_ms, rate, sizeof rate);
        ADD("%s", rate);
    }
    if (e->max_in_flight > 0)
        ADD("mif=%lld", (long long)e->max_in_flight);
    if (e->on_disabled == EP_DISABLED_HOLD)
        ADD("hold");
#undef ADD
    if (!buf[0])
        snprintf(buf, len, "-");
}

static int list_row(cli_table *t, const ep *e) {
    char *events = pat_list_join(&e->events);
    char policy[CLI_CELL_MAX + 1];
    policy_cell(e, policy, sizeof policy);
    const char *row[] = {e->id,
                         e->enabled ? "true" : "false",
                         ep_breaker_name(e->breaker),
                         policy,
                         e->url,
                         events ? events : "",
                         e->tenant,
                         e->description};
    int rc = events ? cli_table_add(t, row) : HQ_ERR;
    free(events);
    return rc;
}

/* Endpoints that do not parse are listed too, in id order, flagged "unreadable" with the
 * reason, and named on stderr: hiding them would make a damaged endpoint look deleted. */
static int ep_list(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    static const char *const hdr[] = {"ID",  "ENABLED", "BREAKER", "POLICY",
                                      "URL", "EVENTS",  "TENANT",  "DESCRIPTION"};
    cli_args a;
    ep_table tb;
    size_t i = 0, j = 0;
    char err[HQ_ERRLEN];
    json_t *arr = NULL;
    cli_table *t = NULL;
    int rc;

    x->usage = "hookq endpoint list [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 0, 0, &a)) != CLI_OK)
        return rc;
    if ((rc = cli_rq(x)) != CLI_OK)
        return rc;
    if (ep_load_table(x->r, x->c->redis_prefix, &tb, err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    if (x->json)
        arr = json_array();
    else
        t = cli_table_new(8, hdr);
    rc = arr || t ? CLI_OK : CLI_FAIL;
    /* Both lists are sorted by id: merge them. */
    while (rc == CLI_OK && (i < tb.n || j < tb.n_bad)) {
        int take_bad = j < tb.n_bad && (i == tb.n || strcmp(tb.bad[j].id, tb.eps[i]->id) < 0);
        if (!take_bad) {
            const ep *e = tb.eps[i++];
            if (arr ? json_array_append_new(arr, ep_to_json(e, 0)) != 0 : list_row(t, e) != HQ_OK)
                rc = CLI_FAIL;
            continue;
        }
        const ep_bad *b = &tb.bad[j++];
        cli_warn(x, "%s (hookq endpoint show %s)", b->error, b->id);
        if (arr) {
            if (json_array_append_new(arr, json_pack("{s:s,s:b,s:s}", "id", b->id, "unreadable", 1,
                                                     "error", b->error)) != 0)
                rc = CLI_FAIL;
        } else {
            const char *row[] = {b->id, "unreadable", NULL, NULL, NULL, NULL, NULL, bad_reason(b)};
            if (cli_table_add(t, row) != HQ_OK)
                rc = CLI_FAIL;
        }
    }
    if (rc != CLI_OK) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
    } else if (arr) {
        rc = cli_print_json(x, arr);
        arr = NULL;
    } else {
        cli_table_print(t, x->out);
    }
    json_decref(arr);
    cli_table_free(t);
    ep_table_clear(&tb);
    return rc;
}

/* The endpoint, and what its keys say about it: the breaker's window, and its lanes. */
static int ep_show(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    cli_args a;
    ep *e;
    json_t *j;
    int rc;
    x->usage = "hookq endpoint show ID [--json]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    if ((rc = load(x, a.pos[0], &e)) != CLI_OK)
        return rc;
    if (!(j = ep_to_json(e, 0))) {
        rc = cli_fail(x, CLI_FAIL, "out of memory");
    } else if ((rc = cli_lanes_view(x, e, j)) != CLI_OK) {
        json_decref(j);
    } else {
        rc = print_view(x, j);
    }
    ep_free(e);
    return rc;
}

static int ep_update(cli *x, int argc, char **argv) {
    cli_args a;
    ep *e;
    int rc;
    x->usage = u_update;
    if ((rc = cli_parse(x, argc, argv, update_opts, 1, 1, &a)) != CLI_OK)
        return rc;
    if (a.nopt == 0)
        return cli_fail(x, CLI_USAGE, "nothing to update");
    if (cli_has(&a, "github-signature") && cli_has(&a, "no-github-signature"))
        return cli_fail(x, CLI_USAGE, "--github-signature and --no-github-signature conflict");
    if ((rc = check_github_secret(x, &a)) != CLI_OK || (rc = check_policy(x, &a)) != CLI_OK)
        return rc;
    if ((rc = load(x, a.pos[0], &e)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    if (apply(x, e, &a) != CLI_OK)
        goto cleanup;
    e->updated_at = ts_now_ms();
    if (save(x, e) != CLI_OK)
        goto cleanup;
    rc = print_ep(x, e, 0);
cleanup:
    ep_free(e);
    return rc;
}

/* enable / disable: one function so both record the same fields. */
static int set_enabled(cli *x, int argc, char **argv, int on) {
    static const cli_opt dis_opts[] = {{"reason", 1}, {NULL, 0}};
    static const cli_opt en_opts[] = {{"discard-held", 0}, {NULL, 0}};
    cli_args a;
    ep *e;
    char fkey[KEY_MAX];
    redisReply *rep;
    int rc, discard;
    long long discarded = 0;
    int64_t now = ts_now_ms();

    x->usage = on ? "hookq endpoint enable ID [--discard-held] [--json]"
                  : "hookq endpoint disable ID [--reason TEXT] [--json]";
    if ((rc = cli_parse(x, argc, argv, on ? en_opts : dis_opts, 1, 1, &a)) != CLI_OK)
        return rc;
    if ((rc = load(x, a.pos[0], &e)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    /* Held jobs go before the endpoint is enabled: once it is, workers deliver them. */
    discard = on && cli_has(&a, "discard-held");
    if (discard && cli_lanes_discard(x, e->id, &discarded) != CLI_OK)
        goto cleanup;
    e->enabled = on;
    e->updated_at = now;
    if (on) {
        e->disabled_at = 0;
        if (set_str(x, &e->disabled_reason, NULL, 1) != CLI_OK)
            goto cleanup;
    } else {
        const char *reason = cli_get(&a, "reason");
        if (reason && strlen(reason) > DESCRIPTION_MAX) {
            cli_fail(x, CLI_FAIL, "--reason: longer than %d bytes", DESCRIPTION_MAX);
            goto cleanup;
        }
        e->disabled_at = now;
        if (set_str(x, &e->disabled_reason, reason ? reason : "disabled by operator", 0) != CLI_OK)
            goto cleanup;
    }
    if (save(x, e) != CLI_OK)
        goto cleanup;
    if (on) {
        /* A fresh start: the auto-disable threshold counts from zero again. */
        if (key_failures(x->c->redis_prefix, e->id, fkey, sizeof fkey) != HQ_OK) {
            cli_fail(x, CLI_FAIL, "key too long");
            goto cleanup;
        }
        if (!(rep = cli_cmd(x, (const char *[]){"DEL", fkey, NULL})))
            goto cleanup;
        freeReplyObject(rep);
    }
    if (x->json) {
        json_t *j = ep_to_json(e, 0);
        if (j && discard)
            json_object_set_new(j, "discarded", json_integer(discarded));
        rc = print_view(x, j);
    } else {
        if (discard)
            fprintf(x->out, "endpoint %s enabled (%lld held jobs discarded)\n", e->id, discarded);
        else
            fprintf(x->out, "endpoint %s %s\n", e->id, on ? "enabled" : "disabled");
        rc = CLI_OK;
    }
cleanup:
    ep_free(e);
    return rc;
}

static int ep_rotate(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{"secret", 1}, {NULL, 0}};
    cli_args a;
    ep *e;
    int rc;
    int64_t now = ts_now_ms();
    x->usage = "hookq endpoint rotate-secret ID [--secret whsec_...]";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    if ((rc = load(x, a.pos[0], &e)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    /* The old secret keeps signing (second signature) until the grace period ends, so
     * receivers can switch without rejecting deliveries. */
    free(e->secret_old);
    e->secret_old = e->secret;
    e->secret = NULL;
    e->secret_old_until = now + x->c->endpoints_rotation_grace_ms;
    if (new_secret(x, &a, &e->secret) != CLI_OK)
        goto cleanup;
    e->updated_at = now;
    if (save(x, e) != CLI_OK)
        goto cleanup;
    x->json = 1;
    rc = print_ep(x, e, 1);
cleanup:
    ep_free(e);
    return rc;
}

static int ep_rm(cli *x, int argc, char **argv) {
    static const cli_opt spec[] = {{NULL, 0}};
    cli_args a;
    ep *e;
    char err[HQ_ERRLEN];
    int rc;
    x->usage = "hookq endpoint rm ID";
    if ((rc = cli_parse(x, argc, argv, spec, 1, 1, &a)) != CLI_OK)
        return rc;
    if ((rc = load(x, a.pos[0], &e)) != CLI_OK)
        return rc;
    ep_free(e);
    if (ep_delete(x->r, x->c->redis_prefix, a.pos[0], err, sizeof err) != HQ_OK)
        return cli_fail(x, CLI_FAIL, "%s", err);
    if (x->json)
        return cli_print_json(x, json_pack("{s:s,s:b}", "id", a.pos[0], "removed", 1));
    fprintf(x->out, "endpoint %s removed\n", a.pos[0]);
    return CLI_OK;
}

static int ep_enable(cli *x, int argc, char **argv) {
    return set_enabled(x, argc, argv, 1);
}

static int ep_disable(cli *x, int argc, char **argv) {
    return set_enabled(x, argc, argv, 0);
}

int cli_cmd_endpoint(cli *x, int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(cli *, int, char **);
    } subs[] = {{"add", ep_add},
                {"list", ep_list},
                {"ls", ep_list},
                {"show", ep_show},
                {"update", ep_update},
                {"enable", ep_enable},
                {"disable", ep_disable},
                {"rotate-secret", ep_rotate},
                {"rm", ep_rm}};
    size_t i;
    x->usage = "hookq endpoint add|list|show|update|enable|disable|rotate-secret|rm ...";
    if (argc < 2)
        return cli_fail(x, CLI_USAGE, "missing endpoint command");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return CLI_HELP;
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(x, argc - 1, argv + 1);
    return cli_fail(x, CLI_USAGE, "unknown endpoint command '%s'", argv[1]);
}
