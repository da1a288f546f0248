/* api_endpoint_json.c -- see api_endpoint_json.h. The checks are the CLI's (cli_endpoint.c
 * apply / apply_policy / new_secret) on JSON values instead of option strings; where JSON
 * has a better word than the CLI's ("none", "--unordered") null or false is that word. */
#include "api_endpoint_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "event_pattern.h"
#include "hq.h"
#include "signature.h"
#include "timestamp.h"
#include "validate.h"

/* Every field a create body may have; an update takes the same but "secret". */
static const char *const body_fields[] = {
    "url",      "events",           "description",   "tenant", "headers",       "secret",
    "enabled",  "ordered",          "order_key",     "rate",   "max_in_flight", "on_disabled",
    "hold_max", "github_signature", "github_secret", NULL};

/* 422 invalid_field naming field. Returns HQ_ERR. */
__attribute__((format(printf, 3, 4))) static int invalid(api_req *rq, const char *field,
                                                         const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_problem(rq, 422, "invalid_field", field, "%s: %s", field, msg);
    return HQ_ERR;
}

static int oom(api_req *rq) {
    api_problem(rq, 500, "internal", NULL, "out of memory");
    return HQ_ERR;
}

/* A JSON string as C text, at most max bytes. It holds no NUL: api_body_object's parser
 * refuses \u0000. */
static int text_of(api_req *rq, const char *field, const json_t *v, size_t max, const char **out) {
    if (!json_is_string(v))
        return invalid(rq, field, "expected a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > max)
        return invalid(rq, field, "longer than %zu bytes", max);
    *out = s;
    return HQ_OK;
}

/* Replace *dst with a copy of s (NULL clears). */
static int set_copy(api_req *rq, char **dst, const char *s) {
    char *c = NULL;
    if (s && !(c = strdup(s)))
        return oom(rq);
    free(*dst);
    *dst = c;
    return HQ_OK;
}

static int want_bool(api_req *rq, const char *field, const json_t *v, int *out) {
    if (!json_is_boolean(v))
        return invalid(rq, field, "expected true or false");
    *out = json_is_true(v);
    return HQ_OK;
}

/* A count policy: an integer 1..max, or null (0: none / the default). */
static int want_count(api_req *rq, const char *field, const json_t *v, int64_t max, int64_t *out) {
    if (json_is_null(v)) {
        *out = 0;
        return HQ_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max)
        return invalid(rq, field, "expected an integer from 1 to %lld, or null", (long long)max);
    *out = json_integer_value(v);
    return HQ_OK;
}

static int apply_url(api_req *rq, ep *e, const json_t *v) {
    char err[HQ_ERRLEN];
    const char *s;
    if (text_of(rq, "url", v, VALIDATE_URL_MAX, &s) != HQ_OK)
        return HQ_ERR;
    if (validate_url(s, err, sizeof err) != HQ_OK)
        return invalid(rq, "url", "%s", err);
    return set_copy(rq, &e->url, s);
}

/* An array of patterns, checked one by one so the error names the item. */
static int apply_events(api_req *rq, ep *e, const json_t *v) {
    char err[HQ_ERRLEN];
    pat_list l = {0};
    size_t n = json_array_size(v), i;
    if (!json_is_array(v) || n == 0)
        return invalid(rq, "events", "expected a non-empty array of patterns (\"*\" for all)");
    if (n > PAT_LIST_MAX)
        return invalid(rq, "events", "more than %d patterns", PAT_LIST_MAX);
    if (!(l.items = calloc(n, sizeof *l.items)))
        return oom(rq);
    for (i = 0; i < n; i++) {
        const json_t *it = json_array_get(v, i);
        const char *s = json_string_value(it);
        if (!json_is_string(it)) {
            pat_list_clear(&l);
            return invalid(rq, "events", "item %zu is not a string", i + 1);
        }
        if (pat_valid(s, err, sizeof err) != HQ_OK) {
            pat_list_clear(&l);
            return invalid(rq, "events", "item %zu: %s", i + 1, err);
        }
        if (!(l.items[i] = strdup(s))) {
            pat_list_clear(&l);
            return oom(rq);
        }
        l.n = i + 1;
    }
    pat_list_clear(&e->events);
    e->events = l;
    return HQ_OK;
}

/* "" means none, as `--description ''` does. */
static int apply_description(api_req *rq, ep *e, const json_t *v) {
    const char *s = NULL;
    if (!json_is_null(v) && text_of(rq, "description", v, EPJ_DESCRIPTION_MAX, &s) != HQ_OK)
        return HQ_ERR;
    return set_copy(rq, &e->description, s && *s ? s : NULL);
}

/* A tenant key binds what it writes to its own tenant: naming another one (or none) is
 * 403, not 422, since the value is fine and the caller is not allowed. */
static int apply_tenant(api_req *rq, ep *e, const json_t *v) {
    char err[HQ_ERRLEN];
    const char *s = NULL, *mine = api_tenant(rq);
    if (!json_is_null(v)) {
        if (text_of(rq, "tenant", v, 1024, &s) != HQ_OK)
            return HQ_ERR;
        if (envelope_tenant_valid(s, err, sizeof err) != HQ_OK)
            return invalid(rq, "tenant", "%s", err);
    }
    if (mine && (!s || strcmp(s, mine) != 0)) {
        api_forbidden(rq, s ? "tenant names another tenant" : "tenant cannot be cleared");
        return HQ_ERR;
    }
    return set_copy(rq, &e->tenant, s);
}

static void free_headers(char **names, char **values, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
}

/* {"Name": "value"}: each pair under validate_header's rules, stored trimmed as the CLI's
 * "Name: value" form is (so the hash reads back the same). Names are case-insensitive
 * in HTTP: two that differ only in case are one header given twice. */
static int apply_headers(api_req *rq, ep *e, const json_t *v) {
    char err[HQ_ERRLEN], line[VALIDATE_HEADER_NAME_MAX + VALIDATE_HEADER_VALUE_MAX + 8];
    char **names = NULL, **values = NULL;
    size_t n = 0, k = 0;
    const char *name;
    json_t *val;
    if (!json_is_null(v)) {
        if (!json_is_object(v))
            return invalid(rq, "headers", "expected an object {\"Name\": \"value\"} or null");
        n = json_object_size(v);
    }
    if (n > VALIDATE_HEADERS_MAX)
        return invalid(rq, "headers", "at most %d headers", VALIDATE_HEADERS_MAX);
    if (n && (!(names = calloc(n, sizeof *names)) || !(values = calloc(n, sizeof *values)))) {
        free(names);
        return oom(rq);
    }
    if (n) {
        json_object_foreach((json_t *)v, name, val) {
            const char *s;
            if (!json_is_string(val))
                goto bad_type;
            s = json_string_value(val);
            if (validate_header(name, s, err, sizeof err) != HQ_OK)
                goto bad;
            snprintf(line, sizeof line, "%s: %s", name, s);
            if (validate_header_line(line, &names[k], &values[k], err, sizeof err) != HQ_OK)
                goto bad;
            for (size_t i = 0; i < k; i++)
                if (strcasecmp(names[i], names[k]) == 0) {
                    snprintf(err, sizeof err, "header '%.100s' is given twice", name);
                    k++;
                    goto bad;
                }
            k++;
        }
    }
    for (size_t i = 0; i < e->n_headers; i++) {
        free(e->header_names[i]);
        free(e->header_values[i]);
    }
    free(e->header_names);
    free(e->header_values);
    e->header_names = names;
    e->header_values = values;
    e->n_headers = k;
    return HQ_OK;
bad_type:
    free_headers(names, values, k);
    return invalid(rq, "headers", "the value of '%.100s' is not a string", name);
bad:
    free_headers(names, values, k);
    return invalid(rq, "headers", "%s", err);
}

/* A given secret must be one hookq can sign with; none given (or null): a new one. */
static int apply_secret(api_req *rq, ep *e, const json_t *v) {
    char buf[SIGN_SECRET_MAX], err[HQ_ERRLEN];
    const char *s = buf;
    if (v && !json_is_null(v)) {
        if (text_of(rq, "secret", v, SIGN_SECRET_MAX, &s) != HQ_OK)
            return HQ_ERR;
        if (sign_secret_valid(s, err, sizeof err) != HQ_OK)
            return invalid(rq, "secret", "%s", err);
    } else if (sign_secret_generate(buf, sizeof buf) != HQ_OK) {
        api_problem(rq, 500, "internal", NULL, "cannot generate a secret");
        return HQ_ERR;
    }
    return set_copy(rq, &e->secret, s);
}

/* The fields `endpoint disable` and `enable` record, so either way reads the same. */
static int apply_enabled(api_req *rq, ep *e, const json_t *v, epj_mode mode, int64_t now,
                         epj_changes *ch) {
    int on = 0;
    if (want_bool(rq, "enabled", v, &on) != HQ_OK)
        return HQ_ERR;
    if (mode == EPJ_UPDATE && on == e->enabled)
        return HQ_OK;
    e->enabled = on;
    if (on) {
        e->disabled_at = 0;
        ch->enabled = mode == EPJ_UPDATE;
        return set_copy(rq, &e->disabled_reason, NULL);
    }
    e->disabled_at = now;
    return set_copy(rq, &e->disabled_reason, EPJ_DISABLED_BY_OPERATOR);
}

/* ordered, then order_key: an order key needs an ordered endpoint (given in the same
 * body, or one that already is), and "ordered": false drops the key, as --unordered. */
static int apply_order(api_req *rq, ep *e, const json_t *ordered, const json_t *key) {
    char err[HQ_ERRLEN];
    if (ordered) {
        if (want_bool(rq, "ordered", ordered, &e->ordered) != HQ_OK)
            return HQ_ERR;
        if (!e->ordered && set_copy(rq, &e->order_key, NULL) != HQ_OK)
            return HQ_ERR;
    }
    if (!key)
        return HQ_OK;
    if (json_is_null(key))
        return set_copy(rq, &e->order_key, NULL);
    const char *s;
    char *k = NULL;
    if (text_of(rq, "order_key", key, 256, &s) != HQ_OK)
        return HQ_ERR;
    if (ep_order_key_parse(s, &k, err, sizeof err) != HQ_OK)
        return invalid(rq, "order_key", "%s", err);
    if (!e->ordered) {
        free(k);
        return invalid(rq, "order_key",
                       "needs \"ordered\": true (an unordered endpoint has no order to keep "
                       "per key)");
    }
    free(e->order_key);
    e->order_key = k;
    return HQ_OK;
}

static int apply_rate(api_req *rq, ep *e, const json_t *v) {
    char err[HQ_ERRLEN];
    const char *s;
    if (json_is_null(v)) {
        e->rate_n = e->rate_window_ms = 0;
        return HQ_OK;
    }
    if (text_of(rq, "rate", v, 64, &s) != HQ_OK)
        return HQ_ERR;
    if (ep_rate_parse(s, &e->rate_n, &e->rate_window_ms, err, sizeof err) != HQ_OK)
        return invalid(rq, "rate", "%s", err);
    return HQ_OK;
}

static int apply_on_disabled(api_req *rq, ep *e, const json_t *v) {
    if (json_is_null(v)) {
        e->on_disabled = EP_DISABLED_DROP;
        return HQ_OK;
    }
    if (!json_is_string(v) || ep_on_disabled_parse(json_string_value(v), &e->on_disabled) != HQ_OK)
        return invalid(rq, "on_disabled", "expected \"drop\" or \"hold\"");
    return HQ_OK;
}

static int apply_github_secret(api_req *rq, ep *e, const json_t *v) {
    if (json_is_null(v)) {
        e->github_secret = EP_GITHUB_SECRET_CURRENT;
        return HQ_OK;
    }
    if (!json_is_string(v) ||
        ep_github_secret_parse(json_string_value(v), &e->github_secret) != HQ_OK)
        return invalid(rq, "github_secret", "expected \"current\" or \"previous\"");
    return HQ_OK;
}

/* Fields that cannot be null: they have no "unset" state to go back to. */
static int not_null(api_req *rq, const json_t *body, const char *const *names) {
    for (; *names; names++) {
        const json_t *v = json_object_get(body, *names);
        if (v && json_is_null(v))
            return invalid(rq, *names, "cannot be null");
    }
    return HQ_OK;
}

int epj_apply(api_req *rq, ep *e, const json_t *body, epj_mode mode, int64_t now_ms,
              epj_changes *ch) {
    static const char *const required_values[] = {"url",     "events",           "enabled",
                                                  "ordered", "github_signature", NULL};
    const json_t *v;
    memset(ch, 0, sizeof *ch);
    /* Not unknown: it is changed another way, which the message names. */
    if (mode == EPJ_UPDATE && json_object_get(body, "secret"))
        return invalid(rq, "secret",
                       "cannot be changed here: POST /v1/endpoints/{id}/rotate-secret rotates it");
    if (api_fields_known(rq, body, body_fields) != HQ_OK ||
        not_null(rq, body, required_values) != HQ_OK)
        return HQ_ERR;
    if (mode == EPJ_CREATE && !json_object_get(body, "url"))
        return invalid(rq, "url", "required");

    if ((v = json_object_get(body, "url")) && apply_url(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "events")) && apply_events(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if (!v && mode == EPJ_CREATE) {
        char err[HQ_ERRLEN];
        if (pat_list_parse("*", &e->events, err, sizeof err) != HQ_OK)
            return oom(rq);
    }
    if ((v = json_object_get(body, "description")) && apply_description(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "tenant")) && apply_tenant(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if (!v && mode == EPJ_CREATE && api_tenant(rq) &&
        set_copy(rq, &e->tenant, api_tenant(rq)) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "headers")) && apply_headers(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if (mode == EPJ_CREATE && apply_secret(rq, e, json_object_get(body, "secret")) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "github_signature")) &&
        want_bool(rq, "github_signature", v, &e->github_signature) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "github_secret")) && apply_github_secret(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "enabled")) &&
        apply_enabled(rq, e, v, mode, now_ms, ch) != HQ_OK)
        return HQ_ERR;
    if (apply_order(rq, e, json_object_get(body, "ordered"), json_object_get(body, "order_key")) !=
        HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "rate")) && apply_rate(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "max_in_flight")) &&
        want_count(rq, "max_in_flight", v, EPJ_MAX_IN_FLIGHT_MAX, &e->max_in_flight) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "on_disabled")) && apply_on_disabled(rq, e, v) != HQ_OK)
        return HQ_ERR;
    if ((v = json_object_get(body, "hold_max")) &&
        want_count(rq, "hold_max", v, EPJ_HOLD_MAX_MAX, &e->hold_max) != HQ_OK)
        return HQ_ERR;
    /* As apply_policy: once an endpoint has a policy its workers claim from its lanes for
     * good, since jobs may wait there after the policy goes. */
    if (ep_uses_lanes(e))
        e->lanes = 1;
    return HQ_OK;
}

/* ---- views ------------------------------------------------------------------------ */

static json_t *iso_or_null(int64_t ms) {
    char b[TS_ISO_LEN];
    if (ms <= 0)
        return json_null();
    ts_iso(ms, b, sizeof b);
    return json_string(b);
}

/* Move key from src into dst (a null when src lacks it). */
static void take(json_t *dst, json_t *src, const char *key) {
    json_t *v = json_object_get(src, key);
    json_object_set(dst, key, v ? v : json_null());
}

json_t *epj_view(const ep *e, long long failures, int show_secret) {
    /* The order the fields are documented in: what it is, where it goes, how. */
    static const char *const top[] = {"id",     "url",     "description", "tenant",
                                      "events", "enabled", "disabled_at", "disabled_reason",
                                      NULL};
    static const char *const policy[] = {"ordered",     "order_key", "rate", "max_in_flight",
                                         "on_disabled", "hold_max",  NULL};
    json_t *base = ep_to_json(e, 0), *o = json_object(), *hs = json_object(), *pol;
    if (!base || !o || !hs)
        goto fail;
    pol = json_object_get(base, "policy");
    for (size_t i = 0; top[i]; i++)
        take(o, base, top[i]);
    /* An object, as bodies give them. Two lines of one name (possible from the CLI's
     * repeated --header) are one header in HTTP: their values are joined as HTTP joins
     * repeated fields (RFC 9110 5.3). */
    for (size_t i = 0; i < e->n_headers; i++) {
        const char *prev = json_string_value(json_object_get(hs, e->header_names[i]));
        json_t *v = prev ? json_sprintf("%s, %s", prev, e->header_values[i])
                         : json_string(e->header_values[i]);
        if (!v || json_object_set_new(hs, e->header_names[i], v) != 0)
            goto fail;
    }
    json_object_set_new(o, "headers", hs);
    hs = NULL;
    take(o, base, "github_signature");
    take(o, base, "github_secret");
    for (size_t i = 0; policy[i]; i++)
        take(o, pol, policy[i]);
    take(o, base, "breaker");
    take(o, base, "breaker_until");
    json_object_set_new(o, "breaker_opened_at",
                        iso_or_null(e->breaker != EP_BREAKER_CLOSED ? e->breaker_opened_at : 0));
    /* paused_until stays in the hash after the pause ends; a past time is no pause. */
    json_object_set_new(o, "paused_until",
                        iso_or_null(e->paused_until > ts_now_ms() ? e->paused_until : 0));
    json_object_set_new(o, "failures", json_integer(failures));
    take(o, base, "secret_old_until");
    take(o, base, "created_at");
    take(o, base, "updated_at");
    if (show_secret)
        json_object_set_new(o, "secret", json_string(e->secret ? e->secret : ""));
    json_decref(base);
    return o;
fail:
    json_decref(base);
    json_decref(o);
    json_decref(hs);
    return NULL;
}

/* A log value as JSON text: bytes that are not UTF-8 (a response excerpt cut anywhere)
 * become '?' rather than the field vanishing. */
static json_t *text_json(const redisReply *v) {
    json_t *j = json_stringn(v->str, v->len);
    if (j)
        return j;
    char *c = malloc(v->len + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < v->len; i++)
        c[i] = (unsigned char)v->str[i] >= 0x80 || !v->str[i] ? '?' : v->str[i];
    c[v->len] = '\0';
    j = json_string(c);
    free(c);
    return j;
}

static const redisReply *field_of(const redisReply *entry, const char *name) {
    const redisReply *f = entry->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1];
    return NULL;
}

static long long num_of(const redisReply *v) {
    return v ? strtoll(v->str, NULL, 10) : 0;
}

json_t *epj_delivery(const redisReply *entry) {
    /* The log's own fields, in docs/keys.md's order; kinds: s string, n number,
     * o string or null (empty is null), t ISO time or null. */
    static const struct {
        const char *name;
        char kind;
    } fields[] = {{"event_id", 's'}, {"event", 's'},    {"type", 's'},       {"attempt", 'n'},
                  {"outcome", 's'},  {"status", 'n'},   {"latency_ms", 'n'}, {"error", 'o'},
                  {"response", 'o'}, {"delivery", 's'}, {"worker", 's'},     {"next_try", 'o'}};
    const char *sid = entry->element[0]->str;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "log_id", json_string(sid));
    json_object_set_new(o, "time", iso_or_null(strtoll(sid, NULL, 10)));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const redisReply *v = field_of(entry, fields[i].name);
        json_t *j;
        if (fields[i].kind == 'n')
            j = json_integer(num_of(v));
        else if (!v || (fields[i].kind == 'o' && v->len == 0))
            j = fields[i].kind == 's' ? json_string("") : json_null();
        else
            j = text_json(v);
        if (!j || json_object_set_new(o, fields[i].name, j) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}
