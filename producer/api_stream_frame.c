/* api_stream_frame.c -- see api_stream_frame.h. */
#include "api_stream_frame.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "timestamp.h"

#define ENTRY_FIELDS_MAX 64 /* as the worker's entry parser: more is not an event */

/* ---- stream ids ------------------------------------------------------------------------ */

static int digits_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return HQ_ERR;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return HQ_ERR;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return HQ_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return HQ_OK;
}

int sse_sid_parse(const char *s, size_t len, sse_sid *out) {
    const char *dash = s ? memchr(s, '-', len) : NULL;
    sse_sid v;
    if (!dash)
        return HQ_ERR;
    if (digits_u64(s, (size_t)(dash - s), &v.ms) != HQ_OK ||
        digits_u64(dash + 1, len - (size_t)(dash - s) - 1, &v.seq) != HQ_OK)
        return HQ_ERR;
    *out = v;
    return HQ_OK;
}

int sse_sid_cmp(sse_sid a, sse_sid b) {
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

void sse_sid_fmt(sse_sid id, char *buf, size_t len) {
    snprintf(buf, len, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

/* ---- frames ---------------------------------------------------------------------------- */

/* One allocation: the struct, then the text (NUL-terminated for logs and tests), then
 * the type and tenant the filter reads. */
static sse_frame *frame_alloc(sse_kind kind, size_t textlen, size_t extra) {
    sse_frame *f;
    if (textlen > SIZE_MAX / 2 || extra > SIZE_MAX / 4)
        return NULL;
    f = malloc(sizeof(*f) + textlen + 1 + extra);
    if (!f)
        return NULL;
    memset(f, 0, sizeof(*f));
    atomic_init(&f->refs, 1);
    f->kind = kind;
    f->text = (char *)(f + 1);
    f->len = textlen;
    f->text[textlen] = '\0';
    return f;
}

sse_frame *sse_frame_control(const char *text, size_t len) {
    sse_frame *f = frame_alloc(SSE_CONTROL, len, 0);
    if (f)
        memcpy(f->text, text, len);
    return f;
}

sse_frame *sse_frame_ref(sse_frame *f) {
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void sse_frame_unref(sse_frame *f) {
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

int sse_frame_entry(const redisReply *entry, const envelope_limits *lim, sse_frame **out, char *err,
                    size_t errlen) {
    const char *names[ENTRY_FIELDS_MAX], *vals[ENTRY_FIELDS_MAX];
    size_t nl[ENTRY_FIELDS_MAX], vl[ENTRY_FIELDS_MAX];
    const redisReply *id, *fl;
    char iso[TS_ISO_LEN];
    envelope e;
    sse_sid sid;
    size_t n, idl, tyl, tnl, len;
    sse_frame *f;
    char *p;
    int rc = HQ_ERR;
    *out = NULL;
    memset(&e, 0, sizeof(e));
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        return hq_seterr(err, errlen, "entry is not [id, fields]");
    id = entry->element[0];
    fl = entry->element[1];
    if (id->type != REDIS_REPLY_STRING || sse_sid_parse(id->str, id->len, &sid) != HQ_OK)
        return hq_seterr(err, errlen, "entry id is not a stream id");
    if (fl->type != REDIS_REPLY_ARRAY || fl->elements % 2 != 0)
        return hq_seterr(err, errlen, "entry has no field list");
    n = fl->elements / 2;
    if (n > ENTRY_FIELDS_MAX)
        return hq_seterr(err, errlen, "entry has %zu fields (at most %d)", n, ENTRY_FIELDS_MAX);
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = fl->element[2 * i], *v = fl->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return hq_seterr(err, errlen, "field %zu is not a string", i);
        names[i] = k->str;
        nl[i] = k->len;
        vals[i] = v->str;
        vl[i] = v->len;
    }
    if (envelope_from_fields(&e, id->str, n, names, nl, vals, vl, lim, err, errlen) != HQ_OK)
        goto cleanup;
    ts_iso(e.ts, iso, sizeof(iso));
    idl = strlen(e.id);
    tyl = strlen(e.type);
    tnl = e.tenant ? strlen(e.tenant) : 0;
    /* id, type and tenant are validated to characters JSON needs no escape for */
    len = 4 + id->len + 8 + tyl + 7 + 7 + idl + 10 + tyl + 15 + strlen(iso) +
          (e.tenant ? 12 + tnl : 0) + 9 + e.datalen + 3;
    if (!(f = frame_alloc(SSE_EVENT, len, tyl + 1 + (e.tenant ? tnl + 1 : 0)))) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    p = f->text;
    p = PUTS(p, "id: ");
    p = put(p, id->str, id->len);
    p = PUTS(p, "\nevent: ");
    p = put(p, e.type, tyl);
    p = PUTS(p, "\ndata: ");
    p = PUTS(p, "{\"id\":\"");
    p = put(p, e.id, idl);
    p = PUTS(p, "\",\"type\":\"");
    p = put(p, e.type, tyl);
    p = PUTS(p, "\",\"timestamp\":\"");
    p = put(p, iso, strlen(iso));
    if (e.tenant) {
        p = PUTS(p, "\",\"tenant\":\"");
        p = put(p, e.tenant, tnl);
    }
    p = PUTS(p, "\",\"data\":");
    for (size_t i = 0; i < e.datalen; i++) {
        char ch = e.data[i];
        *p++ = ch == '\n' || ch == '\r' ? ' ' : ch;
    }
    p = PUTS(p, "}\n\n");
    f->len = (size_t)(p - f->text); /* the estimate above is exact; this keeps it honest */
    f->text[f->len] = '\0';
    f->sid = sid;
    f->type = f->text + len + 1;
    memcpy((char *)f->type, e.type, tyl + 1);
    if (e.tenant) {
        f->tenant = f->type + tyl + 1;
        memcpy((char *)f->tenant, e.tenant, tnl + 1);
    }
    *out = f;
    rc = HQ_OK;
cleanup:
    envelope_clear(&e);
    return rc;
}

/* ---- queues ----------------------------------------------------------------------------- */

int sse_queue_push(sse_queue *q, sse_frame *f) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        sse_frame **ring = malloc(cap * sizeof(*ring));
        if (!ring)
            return HQ_ERR;
        for (size_t i = 0; i < q->n; i++)
            ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->n) % q->cap] = sse_frame_ref(f);
    q->n++;
    q->bytes += f->len;
    return HQ_OK;
}

size_t sse_queue_take(sse_queue *q, char *buf, size_t max) {
    size_t done = 0;
    while (q->n && done < max) {
        sse_frame *f = q->ring[q->head];
        size_t k = f->len - q->off;
        if (k > max - done)
            k = max - done;
        memcpy(buf + done, f->text + q->off, k);
        done += k;
        q->off += k;
        q->bytes -= k;
        if (q->off == f->len) {
            sse_frame_unref(f);
            q->head = (q->head + 1) % q->cap;
            q->n--;
            q->off = 0;
        }
    }
    return done;
}

void sse_queue_clear(sse_queue *q) {
    while (q->n) {
        sse_frame_unref(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    free(q->ring);
    memset(q, 0, sizeof(*q));
}

/* ---- filters ---------------------------------------------------------------------------- */

int sse_filter_match(const sse_filter *flt, const sse_frame *f) {
    if (flt->tenant && (!f->tenant || strcmp(flt->tenant, f->tenant) != 0))
        return 0;
    if (flt->want.n && !pat_list_match(&flt->want, f->type))
        return 0;
    if (flt->allow.n && !pat_list_match(&flt->allow, f->type))
        return 0;
    return 1;
}

void sse_filter_clear(sse_filter *flt) {
    if (!flt)
        return;
    free(flt->tenant);
    flt->tenant = NULL;
    pat_list_clear(&flt->want);
    pat_list_clear(&flt->allow);
}
