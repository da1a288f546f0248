/* envelope.c -- the event envelope: validating stream fields and building the body.
 *
 * Stream fields come from any producer that can XADD, so every field is treated as
 * untrusted bytes: lengths are checked before copying, NULs and invalid UTF-8 are
 * refused, and `data` is checked by json_scan (syntax only, no tree, no allocation)
 * since it runs once per event on the worker's hot path. */
#include "envelope.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "ids.h"
#include "json_scan.h"
#include "event_pattern.h"
#include "timestamp.h"

#define EVP_DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define EVP_DEFAULT_MAX_DEPTH   32
#define EVP_TENANT_MAX          128
#define EVP_TYPE_MAX            128

int envelope_check_data(const char *data, size_t len, const envelope_limits *lim, char *err,
                        size_t errlen) {
    size_t max_payload = lim && lim->max_payload ? lim->max_payload : EVP_DEFAULT_MAX_PAYLOAD;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : EVP_DEFAULT_MAX_DEPTH;
    if (!data || len == 0)
        return hq_seterr(err, errlen, "empty; must be one JSON value");
    if (len > max_payload)
        return hq_seterr(err, errlen, "%zu bytes, over the limit of %zu", len, max_payload);
    /* Past JSON_SCAN_DEPTH_MAX the scanner clamps, and its message names the clamped depth. */
    return json_scan_check(data, len, max_depth, NULL, err, errlen);
}

int envelope_tenant_valid(const char *tenant, char *err, size_t errlen) {
    if (!tenant || !*tenant)
        return hq_seterr(err, errlen, "tenant is empty");
    size_t n = strnlen(tenant, EVP_TENANT_MAX + 1);
    if (n > EVP_TENANT_MAX)
        return hq_seterr(err, errlen, "tenant is longer than %d characters", EVP_TENANT_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = tenant[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return hq_seterr(err, errlen, "tenant may only contain A-Z a-z 0-9 _ . : -");
    }
    return HQ_OK;
}

/* "1700000000000-0" -> ms and the id default "evt_17000000000000". */
static int parse_stream_id(const char *sid, int64_t *ms, char *idbuf, size_t idlen) {
    if (!sid)
        return HQ_ERR;
    const char *dash = strchr(sid, '-');
    if (!dash || dash == sid || dash - sid > 19 || !dash[1] || strlen(dash + 1) > 19)
        return HQ_ERR;
    int64_t v = 0;
    for (const char *p = sid; p < dash; p++) {
        if (*p < '0' || *p > '9')
            return HQ_ERR;
        if (v > (INT64_MAX - (*p - '0')) / 10)
            return HQ_ERR;
        v = v * 10 + (*p - '0');
    }
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return HQ_ERR;
    }
    int n = snprintf(idbuf, idlen, "%s%.*s%s", ID_PREFIX_EVENT, (int)(dash - sid), sid, dash + 1);
    if (n < 0 || (size_t)n >= idlen)
        return HQ_ERR;
    *ms = v;
    return HQ_OK;
}

/* Copy a text field after checking its length and that it holds no NUL. */
static int copy_text(const char *field, const char *v, size_t vlen, size_t max, char **out,
                     char *err, size_t errlen) {
    if (vlen == 0)
        return hq_seterr(err, errlen, "field '%s' is empty", field);
    if (vlen > max)
        return hq_seterr(err, errlen, "field '%s' is longer than %zu bytes", field, max);
    if (memchr(v, '\0', vlen))
        return hq_seterr(err, errlen, "field '%s' contains a NUL byte", field);
    *out = malloc(vlen + 1);
    if (!*out)
        return hq_seterr(err, errlen, "out of memory");
    memcpy(*out, v, vlen);
    (*out)[vlen] = '\0';
    return HQ_OK;
}

static int parse_ts(const char *v, size_t len, int64_t *out) {
    int64_t t = 0;
    if (len == 0 || len > 19)
        return HQ_ERR;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HQ_ERR;
        if (t > (INT64_MAX - (v[i] - '0')) / 10)
            return HQ_ERR;
        t = t * 10 + (v[i] - '0');
    }
    *out = t;
    return HQ_OK;
}

enum { F_ID, F_TYPE, F_TS, F_DATA, F_TENANT, F_ENDPOINT, F_COUNT };
static const char *const field_names[F_COUNT] = {"id", "type", "ts", "data", "tenant", "endpoint"};

int envelope_from_fields(envelope *e, const char *stream_id, size_t n, const char *const *names,
                         const size_t *nlens, const char *const *vals, const size_t *vlens,
                         const envelope_limits *lim, char *err, size_t errlen) {
    const char *fv[F_COUNT] = {0};
    size_t fl[F_COUNT] = {0};
    char sub[HQ_ERRLEN];
    char defid[64];
    int64_t sid_ms = 0;
    if (!e)
        return hq_seterr(err, errlen, "no envelope");
    memset(e, 0, sizeof(*e));
    if (n && (!names || !nlens || !vals || !vlens))
        return hq_seterr(err, errlen, "no fields");

    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < F_COUNT; f++) {
            if (nlens[i] == strlen(field_names[f]) &&
                memcmp(names[i], field_names[f], nlens[i]) == 0) {
                /* two values for one field: which one the producer meant is a guess */
                if (fv[f])
                    return hq_seterr(err, errlen, "field '%s' appears twice", field_names[f]);
                fv[f] = vals[i] ? vals[i] : "";
                fl[f] = vals[i] ? vlens[i] : 0;
            }
        }
    }
    int have_sid = parse_stream_id(stream_id, &sid_ms, defid, sizeof(defid)) == HQ_OK;

    if (fv[F_ID]) {
        if (copy_text("id", fv[F_ID], fl[F_ID], ID_MAX, &e->id, err, errlen) != HQ_OK)
            goto fail;
        if (id_valid(e->id, sub, sizeof(sub)) != HQ_OK) {
            hq_seterr(err, errlen, "field 'id': %s", sub);
            goto fail;
        }
    } else {
        if (!have_sid) {
            hq_seterr(err, errlen, "field 'id' is missing and the stream id is not usable");
            goto fail;
        }
        e->id = strdup(defid);
        if (!e->id) {
            hq_seterr(err, errlen, "out of memory");
            goto fail;
        }
    }

    if (!fv[F_TYPE]) {
        hq_seterr(err, errlen, "field 'type' is missing");
        goto fail;
    }
    if (copy_text("type", fv[F_TYPE], fl[F_TYPE], EVP_TYPE_MAX, &e->type, err, errlen) != HQ_OK)
        goto fail;
    if (pat_type_valid(e->type, sub, sizeof(sub)) != HQ_OK) {
        hq_seterr(err, errlen, "field 'type': %s", sub);
        goto fail;
    }

    if (fv[F_TS]) {
        if (parse_ts(fv[F_TS], fl[F_TS], &e->ts) != HQ_OK) {
            hq_seterr(err, errlen, "field 'ts': not a non-negative integer of unix milliseconds");
            goto fail;
        }
    } else {
        if (!have_sid) {
            hq_seterr(err, errlen, "field 'ts' is missing and the stream id is not usable");
            goto fail;
        }
        e->ts = sid_ms;
    }

    if (!fv[F_DATA]) {
        hq_seterr(err, errlen, "field 'data' is missing");
        goto fail;
    }
    if (envelope_check_data(fv[F_DATA], fl[F_DATA], lim, sub, sizeof(sub)) != HQ_OK) {
        hq_seterr(err, errlen, "field 'data': %s", sub);
        goto fail;
    }
    e->data = malloc(fl[F_DATA] + 1);
    if (!e->data) {
        hq_seterr(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(e->data, fv[F_DATA], fl[F_DATA]);
    e->data[fl[F_DATA]] = '\0';
    e->datalen = fl[F_DATA];

    if (fv[F_TENANT]) {
        if (copy_text("tenant", fv[F_TENANT], fl[F_TENANT], EVP_TENANT_MAX, &e->tenant, err,
                      errlen) != HQ_OK)
            goto fail;
        if (envelope_tenant_valid(e->tenant, sub, sizeof(sub)) != HQ_OK) {
            hq_seterr(err, errlen, "field 'tenant': %s", sub);
            goto fail;
        }
    }

    if (fv[F_ENDPOINT]) {
        if (copy_text("endpoint", fv[F_ENDPOINT], fl[F_ENDPOINT], ID_MAX, &e->endpoint, err,
                      errlen) != HQ_OK)
            goto fail;
        if (id_valid(e->endpoint, sub, sizeof(sub)) != HQ_OK) {
            hq_seterr(err, errlen, "field 'endpoint': %s", sub);
            goto fail;
        }
    }
    return HQ_OK;
fail:
    envelope_clear(e);
    return HQ_ERR;
}

void envelope_clear(envelope *e) {
    if (!e)
        return;
    free(e->id);
    free(e->type);
    free(e->data);
    free(e->tenant);
    free(e->endpoint);
    memset(e, 0, sizeof(*e));
}

/* Length of s as a JSON string body (without quotes); writes it to out if not NULL.
 * The fields are validated to plain ASCII, but escaping keeps the body valid JSON even
 * for an envelope built by hand. */
static size_t json_escape(const char *s, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            if (out) {
                out[n] = '\\';
                out[n + 1] = (char)*p;
            }
            n += 2;
        } else if (*p < 0x20) {
            if (out) {
                memcpy(out + n, "\\u00", 4);
                out[n + 4] = hex[*p >> 4];
                out[n + 5] = hex[*p & 15];
            }
            n += 6;
        } else {
            if (out)
                out[n] = (char)*p;
            n++;
        }
    }
    return n;
}

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

char *envelope_body(const envelope *e, size_t *len) {
    char ts[TS_ISO_LEN];
    if (!e || !e->id || !e->type || (!e->data && e->datalen))
        return NULL;
    ts_iso(e->ts, ts, sizeof(ts));
    size_t tslen = strlen(ts);
    size_t idn = json_escape(e->id, NULL), typen = json_escape(e->type, NULL);
    size_t tenn = e->tenant ? json_escape(e->tenant, NULL) : 0;
    static const char k_id[] = "{\"id\":\"", k_type[] = "\",\"type\":\"",
                      k_ts[] = "\",\"timestamp\":\"",
                      k_data[] = "\",\"data\":", k_ten[] = ",\"tenant\":\"";
    size_t total = (sizeof(k_id) - 1) + idn + (sizeof(k_type) - 1) + typen + (sizeof(k_ts) - 1) +
                   tslen + (sizeof(k_data) - 1) + e->datalen + 1;
    if (e->tenant)
        total += (sizeof(k_ten) - 1) + tenn + 1;
    char *body = malloc(total + 1);
    if (!body)
        return NULL;
    char *p = body;
    p = put(p, k_id, sizeof(k_id) - 1);
    p += json_escape(e->id, p);
    p = put(p, k_type, sizeof(k_type) - 1);
    p += json_escape(e->type, p);
    p = put(p, k_ts, sizeof(k_ts) - 1);
    p = put(p, ts, tslen);
    p = put(p, k_data, sizeof(k_data) - 1);
    if (e->datalen)
        p = put(p, e->data, e->datalen);
    if (e->tenant) {
        p = put(p, k_ten, sizeof(k_ten) - 1);
        p += json_escape(e->tenant, p);
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    if (len)
        *len = (size_t)(p - body);
    return body;
}
