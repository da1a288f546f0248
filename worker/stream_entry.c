/* stream_entry.c -- see stream_entry.h. */
#include "stream_entry.h"
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "ids.h"

const redisReply *entry_stream_entries(const redisReply *x) {
    if (!x || x->type != REDIS_REPLY_ARRAY || x->elements < 1)
        return NULL;
    const redisReply *s = x->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return s->element[1];
}

const redisReply *entry_field(const redisReply *f, const char *name) {
    if (!f || f->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0 &&
            f->element[i + 1]->type == REDIS_REPLY_STRING)
            return f->element[i + 1];
    return NULL;
}

int entry_ok(const redisReply *e) {
    return e && e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len > 0 &&
           e->element[0]->len < 48;
}

static int digits_u64(const char *s, size_t n) {
    if (n == 0 || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    /* 20 digits may still overflow 2^64-1 = 18446744073709551615 */
    return n < 20 || memcmp(s, "18446744073709551615", 20) <= 0;
}

int entry_sid_valid(const char *s, size_t len) {
    if (!s || len == 0 || len >= ENTRY_SID_MAX)
        return 0;
    const char *dash = memchr(s, '-', len);
    if (!dash)
        return 0;
    size_t a = (size_t)(dash - s);
    return digits_u64(s, a) && digits_u64(dash + 1, len - a - 1);
}

int entry_parse_event(const redisReply *entry, const envelope_limits *lim, envelope *e, char *err,
                      size_t errlen) {
    memset(e, 0, sizeof *e);
    if (!entry_ok(entry))
        return hq_seterr(err, errlen, "entry is not [id, fields]");
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0)
        return hq_seterr(err, errlen, "entry has no field list");
    size_t n = f->elements / 2;
    if (n > ENTRY_MAX_EVENT_FIELDS)
        return hq_seterr(err, errlen, "entry has %zu fields (at most %d)", n,
                         ENTRY_MAX_EVENT_FIELDS);
    const char *names[ENTRY_MAX_EVENT_FIELDS], *vals[ENTRY_MAX_EVENT_FIELDS];
    size_t nl[ENTRY_MAX_EVENT_FIELDS], vl[ENTRY_MAX_EVENT_FIELDS];
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = f->element[2 * i], *v = f->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return hq_seterr(err, errlen, "field %zu is not a string", i);
        names[i] = k->str;
        nl[i] = k->len;
        vals[i] = v->str;
        vl[i] = v->len;
    }
    if (envelope_from_fields(e, entry->element[0]->str, n, names, nl, vals, vl, lim, err, errlen) !=
        HQ_OK) {
        envelope_clear(e);
        return HQ_ERR;
    }
    return HQ_OK;
}

int entry_parse_job(const redisReply *entry, const char **evsid, const char **ep_id, int *attempt,
                    char *err, size_t errlen) {
    if (!entry_ok(entry))
        return hq_seterr(err, errlen, "entry is not [id, fields]");
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return hq_seterr(err, errlen, "entry has no field list");
    const redisReply *e = entry_field(f, "event"), *p = entry_field(f, "endpoint"),
                     *a = entry_field(f, "attempt");
    if (!e || !p || !a)
        return hq_seterr(err, errlen, "missing field '%s'",
                         !e   ? "event"
                         : !p ? "endpoint"
                              : "attempt");
    if (!entry_sid_valid(e->str, e->len))
        return hq_seterr(err, errlen, "field 'event' is not a stream id (<ms>-<seq>)");
    char idr[HQ_ERRLEN];
    if (strlen(p->str) != p->len || id_valid(p->str, idr, sizeof idr) != HQ_OK)
        return hq_seterr(err, errlen, "field 'endpoint': %s",
                         strlen(p->str) != p->len ? "contains a NUL byte" : idr);
    char *end;
    long n = strtol(a->str, &end, 10);
    if (a->len == 0 || *end || n < 1 || n > 1000)
        return hq_seterr(err, errlen, "field 'attempt' is not a number in 1..1000");
    *evsid = e->str;
    *ep_id = p->str;
    *attempt = (int)n;
    return HQ_OK;
}
