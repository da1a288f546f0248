/* hookq.c -- libhookq: validate an event, then publish it with one XADD (or, with a
 * producer-chosen id, one script call that makes the publish idempotent). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "envelope.h"
#include "hookq.h"
#include "hookq_int.h"
#include "hq.h"
#include "ids.h"
#include "redis_keys.h"
#include "event_pattern.h"
#include "redis_conn.h"
#include "scripts_gen.h"
#include "timestamp.h"

#define HOOKQ_DEFAULT_TIMEOUT_MS  5000
#define HOOKQ_DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define HOOKQ_DEFAULT_MAX_DEPTH   32
#define HOOKQ_DEFAULT_IDEM_TTL_MS (24LL * 3600 * 1000)

struct hookq {
    rconn *r; /* NULL while not connected: publish retries the connection */
    char *url;
    char *prefix;
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    envelope_limits lim;
    int64_t idem_ttl_ms;
    hookq_err err;
    char errstr[HQ_ERRLEN];
};

static hookq_err set_err(hookq *h, hookq_err code, const char *msg) {
    h->err = code;
    snprintf(h->errstr, sizeof h->errstr, "%s", msg ? msg : "");
    return code;
}

const char *hookq_strerror(hookq_err err) {
    switch (err) {
    case HOOKQ_OK:
        return "ok";
    case HOOKQ_EINVAL:
        return "invalid argument";
    case HOOKQ_ECONNECT:
        return "cannot connect to Redis";
    case HOOKQ_EREDIS:
        return "Redis error";
    case HOOKQ_ENOMEM:
        return "out of memory";
    case HOOKQ_ETOOBIG:
        return "payload too large";
    case HOOKQ_EFULL:
        return "Redis is out of memory";
    case HOOKQ_EIO:
        return "connection lost or timed out";
    }
    return "unknown error";
}

hookq_err hookq_error(const hookq *h) {
    return h ? h->err : HOOKQ_ENOMEM;
}

const char *hookq_errstr(const hookq *h) {
    return h ? h->errstr : "out of memory";
}

static int hk_connect(hookq *h) {
    char err[HQ_ERRLEN];
    h->r = rconn_connect(h->url, h->connect_timeout_ms, h->command_timeout_ms, err, sizeof err);
    if (!h->r) {
        set_err(h, HOOKQ_ECONNECT, err);
        return HQ_ERR;
    }
    return HQ_OK;
}

hookq *hookq_connect(const hookq_options *opts) {
    char err[HQ_ERRLEN];
    hookq *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->err = HOOKQ_OK;
    if (!opts || !opts->url || !*opts->url) {
        set_err(h, HOOKQ_EINVAL, "options: url is required");
        return h;
    }
    h->url = strdup(opts->url);
    h->prefix = strdup(opts->prefix ? opts->prefix : "hookq");
    if (!h->url || !h->prefix) {
        set_err(h, HOOKQ_ENOMEM, "out of memory");
        return h;
    }
    h->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : HOOKQ_DEFAULT_TIMEOUT_MS;
    h->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : HOOKQ_DEFAULT_TIMEOUT_MS;
    h->lim.max_payload = opts->max_payload > 0 ? opts->max_payload : HOOKQ_DEFAULT_MAX_PAYLOAD;
    h->lim.max_depth = HOOKQ_DEFAULT_MAX_DEPTH;
    h->idem_ttl_ms =
        opts->idempotency_ttl_ms > 0 ? opts->idempotency_ttl_ms : HOOKQ_DEFAULT_IDEM_TTL_MS;
    {
        rconn_url u = {0};
        int bad = rconn_url_parse(h->url, &u, err, sizeof err) != HQ_OK;
        rconn_url_clear(&u);
        if (bad) {
            set_err(h, HOOKQ_EINVAL, err);
            free(h->url); /* marks the handle unusable: publish reports this error */
            h->url = NULL;
            return h;
        }
    }
    if (key_prefix_valid(h->prefix, err, sizeof err) != HQ_OK) {
        set_err(h, HOOKQ_EINVAL, err);
        free(h->prefix); /* marks the handle unusable: publish reports this error */
        h->prefix = NULL;
        return h;
    }
    hk_connect(h);
    return h;
}

void hookq_free(hookq *h) {
    if (!h)
        return;
    rconn_free(h->r);
    free(h->url);
    free(h->prefix);
    free(h);
}

hookq_err hookq__validate(const envelope_limits *lim, const hookq__pub *p, char *err,
                          size_t errlen) {
    char why[HQ_ERRLEN];
    const hookq_publish_opts *o = p->opts;
    if (!p->type || pat_type_valid(p->type, why, sizeof why) != HQ_OK) {
        hq_seterr(err, errlen, "type: %s", p->type ? why : "required");
        return HOOKQ_EINVAL;
    }
    if (!p->data) {
        hq_seterr(err, errlen, "data: required");
        return HOOKQ_EINVAL;
    }
    /* Size first, so an oversized payload is reported as such and never parsed. */
    if (p->datalen > lim->max_payload) {
        hq_seterr(err, errlen, "data: %zu bytes is more than the limit of %zu", p->datalen,
                  lim->max_payload);
        return HOOKQ_ETOOBIG;
    }
    if (envelope_check_data(p->data, p->datalen, lim, why, sizeof why) != HQ_OK) {
        hq_seterr(err, errlen, "data: %s", why);
        return HOOKQ_EINVAL;
    }
    if (o && o->id && id_valid(o->id, why, sizeof why) != HQ_OK) {
        hq_seterr(err, errlen, "id: %s", why);
        return HOOKQ_EINVAL;
    }
    if (o && o->tenant && envelope_tenant_valid(o->tenant, why, sizeof why) != HQ_OK) {
        hq_seterr(err, errlen, "tenant: %s", why);
        return HOOKQ_EINVAL;
    }
    if (o && o->endpoint && id_valid(o->endpoint, why, sizeof why) != HQ_OK) {
        hq_seterr(err, errlen, "endpoint: %s", why);
        return HOOKQ_EINVAL;
    }
    return HOOKQ_OK;
}

/* maxmemory refusals come back as "-OOM ..." (directly, or wrapped by the script
 * error text); they mean nothing was written and the producer should back off. */
static int is_oom(const redisReply *rep) {
    return rep->type == REDIS_REPLY_ERROR && rep->str &&
           (strncmp(rep->str, "OOM", 3) == 0 || strstr(rep->str, "OOM command not allowed"));
}

static hookq_err reply_err(const redisReply *rep, char *err, size_t errlen) {
    if (is_oom(rep)) {
        hq_seterr(err, errlen,
                  "Redis is out of memory (maxmemory reached); the event was not published: %s",
                  rep->str);
        return HOOKQ_EFULL;
    }
    hq_seterr(err, errlen, "Redis: %s", rep->str ? rep->str : "error");
    return HOOKQ_EREDIS;
}

hookq_err hookq__publish(rconn *r, const char *prefix, const envelope_limits *lim,
                         int64_t idem_ttl_ms, const hookq__pub *p, hookq__pubres *res, char *err,
                         size_t errlen) {
    const hookq_publish_opts *o = p->opts;
    char events[KEY_MAX], idem[KEY_MAX], ts[24], ttl[24];
    const char *argv[20];
    size_t argvlen[20];
    int argc = 0;
    redisReply *rep = NULL;
    hookq_err rc = hookq__validate(lim, p, err, errlen);

    memset(res, 0, sizeof *res);
    if (rc != HOOKQ_OK)
        return rc;
    if (key_events(prefix, events, sizeof events) != HQ_OK) {
        hq_seterr(err, errlen, "prefix too long");
        return HOOKQ_EINVAL;
    }
    if (o && o->id) {
        snprintf(res->id, sizeof res->id, "%s", o->id);
    } else if (id_new(ID_PREFIX_EVENT, res->id, sizeof res->id) != HQ_OK) {
        hq_seterr(err, errlen, "cannot generate an event id");
        return HOOKQ_ENOMEM;
    }
    snprintf(ts, sizeof ts, "%" PRId64, ts_now_ms());

#define ARG(s, n)                                                                                  \
    do {                                                                                           \
        argv[argc] = (s);                                                                          \
        argvlen[argc] = (n);                                                                       \
        argc++;                                                                                    \
    } while (0)
#define ARGS(s) ARG((s), strlen(s))

    if (o && o->id) {
        /* EVALSHA sha numkeys(2) events idem ttl fields... (rconn_eval adds the first 3). */
        if (key_idem(prefix, o->id, idem, sizeof idem) != HQ_OK) {
            hq_seterr(err, errlen, "prefix too long");
            return HOOKQ_EINVAL;
        }
        snprintf(ttl, sizeof ttl, "%" PRId64, idem_ttl_ms);
        ARGS(events);
        ARGS(idem);
        ARGS(ttl);
    } else {
        ARGS("XADD");
        ARGS(events);
        ARGS("*");
    }
    ARGS("id");
    ARGS(res->id);
    ARGS("type");
    ARGS(p->type);
    ARGS("ts");
    ARGS(ts);
    ARGS("data");
    ARG(p->data, p->datalen);
    if (o && o->tenant) {
        ARGS("tenant");
        ARGS(o->tenant);
    }
    if (o && o->endpoint) {
        ARGS("endpoint");
        ARGS(o->endpoint);
    }
#undef ARG
#undef ARGS

    if (o && o->id)
        rep = rconn_eval(r, &script_publish, 2, argc, argv, argvlen, err, errlen);
    else
        rep = rconn_cmdargv(r, argc, argv, argvlen, err, errlen);
    if (!rep)
        return HOOKQ_EIO;
    if (rep->type == REDIS_REPLY_ERROR) {
        rc = reply_err(rep, err, errlen);
    } else if (o && o->id) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_INTEGER) {
            rc = HOOKQ_EREDIS;
            hq_seterr(err, errlen, "unexpected reply from the publish script");
        } else {
            snprintf(res->stream_id, sizeof res->stream_id, "%s", rep->element[0]->str);
            res->added = rep->element[1]->integer == 1;
        }
    } else if (rep->type == REDIS_REPLY_STRING) {
        snprintf(res->stream_id, sizeof res->stream_id, "%s", rep->str);
        res->added = 1;
    } else {
        rc = HOOKQ_EREDIS;
        hq_seterr(err, errlen, "unexpected reply to XADD");
    }
    freeReplyObject(rep);
    return rc;
}

hookq_err hookq_publish(hookq *h, const char *type, const char *data,
                        const hookq_publish_opts *opts, char *id_out, size_t id_len) {
    char err[HQ_ERRLEN];
    hookq__pub p = {.type = type, .data = data, .datalen = data ? strlen(data) : 0, .opts = opts};
    hookq__pubres res;
    hookq_err rc;

    if (!h)
        return HOOKQ_ENOMEM;
    if (!h->url || !h->prefix) /* hookq_connect failed before it could connect */
        return h->err != HOOKQ_OK ? h->err : set_err(h, HOOKQ_EINVAL, "no url");
    /* Validation needs no connection: bad input is reported as such even when Redis
     * is down. */
    rc = hookq__validate(&h->lim, &p, err, sizeof err);
    if (rc != HOOKQ_OK)
        return set_err(h, rc, err);
    /* Checked before publishing: an event must not be written when its id cannot be
     * returned. Generated ids are "evt_" + 26 chars. */
    if (id_out && id_len < (opts && opts->id ? strlen(opts->id) : 30) + 1)
        return set_err(h, HOOKQ_EINVAL, "id_out too small (use HOOKQ_ID_MAX bytes)");
    if (!h->r && hk_connect(h) != HQ_OK)
        return h->err;
    rc = hookq__publish(h->r, h->prefix, &h->lim, h->idem_ttl_ms, &p, &res, err, sizeof err);
    if (rc != HOOKQ_OK)
        return set_err(h, rc, err);
    if (id_out)
        snprintf(id_out, id_len, "%s", res.id);
    return set_err(h, HOOKQ_OK, "");
}
