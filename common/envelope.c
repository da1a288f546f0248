/* envelope.c -- the event envelope: validating stream fields and building the body.
 *
 * Stream fields come from any producer that can XADD, so every field is treated as
 * untrusted bytes: lengths are checked before copying, NULs and invalid UTF-8 are
 * refused, and `data` is checked by a one-pass syntax scanner (no tree, no allocation,
 * no recursion) since it runs once per event on the worker's hot path. */
#include "envelope.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "ids.h"
#include "event_pattern.h"
#include "timestamp.h"

#define EVP_DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define EVP_DEFAULT_MAX_DEPTH   32
#define EVP_TENANT_MAX          128
#define EVP_TYPE_MAX            128

/* Hard cap on max_depth: the container stack below is a fixed bitset of this many bits
 * (cfg allows events.max_depth up to 1024). */
#define EVP_DEPTH_CAP 1024

/* What went wrong in json_scan, and where (byte offset into data). */
enum { JS_OK, JS_SYNTAX, JS_UTF8, JS_NUL, JS_DEPTH };
typedef struct json_scan {
    const unsigned char *s;
    size_t len, i;
    int max_depth;
    int kind;         /* JS_* */
    size_t at;        /* offset of the error */
    const char *what; /* JS_SYNTAX: what was expected or found */
} json_scan;

static int js_fail(json_scan *js, int kind, size_t at, const char *what) {
    js->kind = kind;
    js->at = at;
    js->what = what;
    return HQ_ERR;
}

/* A byte that does not surprise us where a token may start: reports a NUL as such, so
 * "contains a NUL byte" wins over a vaguer syntax error wherever the NUL is. */
static int js_unexpected(json_scan *js, const char *what) {
    if (js->i < js->len && js->s[js->i] == '\0')
        return js_fail(js, JS_NUL, js->i, NULL);
    return js_fail(js, JS_SYNTAX, js->i, what);
}

static void js_skip_ws(json_scan *js) {
    while (js->i < js->len) {
        unsigned char c = js->s[js->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        js->i++;
    }
}

static int js_hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p[k];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return HQ_ERR;
        v = v << 4 | d;
    }
    *out = v;
    return HQ_OK;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 if it is invalid or truncated. s[0] >= 0x80. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (avail - 1 < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++) {
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    }
    return need + 1;
}

#define JS_ONES 0x0101010101010101ULL
#define JS_HIGH 0x8080808080808080ULL

/* Nonzero if any of the 8 bytes in v may end a run of plain string bytes: '"', '\\',
 * a control char or a non-ASCII byte. False positives only cost the byte loop. */
static uint64_t js_special8(uint64_t v) {
    uint64_t q = v ^ (JS_ONES * '"'), b = v ^ (JS_ONES * '\\');
    uint64_t any = ((q - JS_ONES) & ~q) | ((b - JS_ONES) & ~b) | (v - JS_ONES * 0x20) | v;
    return any & JS_HIGH;
}

/* A string; js->i is at the opening quote. Plain ASCII runs are skipped 8 bytes at a
 * time since payloads are mostly long strings. */
static int js_string(json_scan *js) {
    const unsigned char *s = js->s;
    size_t len = js->len, start = js->i, i = js->i + 1;
    for (;;) {
        while (len - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (js_special8(v))
                break;
            i += 8;
        }
        while (i < len && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
            i++;
        if (i >= len)
            return js_fail(js, JS_SYNTAX, start, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') {
            js->i = i + 1;
            return HQ_OK;
        }
        if (c == '\\') {
            if (i + 1 >= len)
                return js_fail(js, JS_SYNTAX, start, "unterminated string");
            c = s[i + 1];
            if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                c == 't') {
                i += 2;
                continue;
            }
            if (c == '\0')
                return js_fail(js, JS_NUL, i + 1, NULL);
            if (c != 'u')
                return js_fail(js, JS_SYNTAX, i, "invalid escape in string");
            unsigned cp, lo;
            if (len - i < 6 || js_hex4(s + i + 2, &cp) != HQ_OK)
                return js_fail(js, JS_SYNTAX, i, "\\u must be followed by 4 hex digits");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return js_fail(js, JS_SYNTAX, i, "\\u low surrogate without a high one");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* a high surrogate only counts as half of a \uD8xx\uDCxx pair */
                if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                    js_hex4(s + i + 8, &lo) != HQ_OK || lo < 0xdc00 || lo > 0xdfff)
                    return js_fail(js, JS_SYNTAX, i, "\\u high surrogate without a low one");
                i += 12;
            } else {
                i += 6;
            }
            continue;
        }
        if (c == '\0')
            return js_fail(js, JS_NUL, i, NULL);
        if (c < 0x20)
            return js_fail(js, JS_SYNTAX, i, "control character in string (escape it)");
        size_t n = utf8_seq(s + i, len - i);
        if (!n)
            return js_fail(js, JS_UTF8, i, NULL);
        i += n;
    }
}

static int js_isdigit(const json_scan *js, size_t i) {
    return i < js->len && js->s[i] >= '0' && js->s[i] <= '9';
}

/* A number per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, any magnitude
 * (only the syntax matters: the text is forwarded verbatim). */
static int js_number(json_scan *js) {
    size_t i = js->i;
    if (js->s[i] == '-')
        i++;
    if (!js_isdigit(js, i))
        return js_fail(js, JS_SYNTAX, i, "expected a digit");
    if (js->s[i] == '0') {
        i++;
        if (js_isdigit(js, i))
            return js_fail(js, JS_SYNTAX, i, "leading zeros are not allowed");
    } else {
        while (js_isdigit(js, i))
            i++;
    }
    if (i < js->len && js->s[i] == '.') {
        i++;
        if (!js_isdigit(js, i))
            return js_fail(js, JS_SYNTAX, i, "expected a digit after '.'");
        while (js_isdigit(js, i))
            i++;
    }
    if (i < js->len && (js->s[i] == 'e' || js->s[i] == 'E')) {
        i++;
        if (i < js->len && (js->s[i] == '+' || js->s[i] == '-'))
            i++;
        if (!js_isdigit(js, i))
            return js_fail(js, JS_SYNTAX, i, "expected a digit in the exponent");
        while (js_isdigit(js, i))
            i++;
    }
    js->i = i;
    return HQ_OK;
}

static int js_literal(json_scan *js, const char *word, size_t n) {
    if (js->len - js->i < n || memcmp(js->s + js->i, word, n) != 0)
        return js_unexpected(js, "expected a value");
    js->i += n;
    return HQ_OK;
}

/* One scalar value at js->i (containers are handled by the caller's loop). */
static int js_scalar(json_scan *js) {
    if (js->i >= js->len)
        return js_fail(js, JS_SYNTAX, js->i, "unexpected end, expected a value");
    switch (js->s[js->i]) {
    case '"':
        return js_string(js);
    case 't':
        return js_literal(js, "true", 4);
    case 'f':
        return js_literal(js, "false", 5);
    case 'n':
        return js_literal(js, "null", 4);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return js_number(js);
    default:
        return js_unexpected(js, "expected a value");
    }
}

/* Syntax-only RFC 8259 check of exactly one value with optional whitespace around it, in
 * one pass and without allocating. Iterative: the open containers are a bitset (1 =
 * object), so depth costs 1 bit, not a stack frame. */
static int json_scan_run(json_scan *js) {
    uint64_t is_obj[EVP_DEPTH_CAP / 64] = {0};
    int depth = 0;
    enum { ST_VALUE, ST_KEY, ST_AFTER } st = ST_VALUE;
    js_skip_ws(js);
    for (;;) {
        if (st == ST_VALUE) {
            unsigned char c = js->i < js->len ? js->s[js->i] : 0;
            if (js->i < js->len && (c == '[' || c == '{')) {
                if (depth >= js->max_depth)
                    return js_fail(js, JS_DEPTH, js->i, NULL);
                uint64_t bit = 1ULL << (depth % 64);
                if (c == '{')
                    is_obj[depth / 64] |= bit;
                else
                    is_obj[depth / 64] &= ~bit;
                depth++;
                js->i++;
                js_skip_ws(js);
                if (js->i < js->len && js->s[js->i] == (c == '{' ? '}' : ']')) {
                    js->i++;
                    depth--;
                    st = ST_AFTER;
                } else {
                    st = c == '{' ? ST_KEY : ST_VALUE;
                }
                continue;
            }
            if (js_scalar(js) != HQ_OK)
                return HQ_ERR;
            st = ST_AFTER;
        } else if (st == ST_KEY) {
            if (js->i >= js->len || js->s[js->i] != '"')
                return js_unexpected(js, "expected a string key");
            if (js_string(js) != HQ_OK)
                return HQ_ERR;
            js_skip_ws(js);
            if (js->i >= js->len || js->s[js->i] != ':')
                return js_unexpected(js, "expected ':'");
            js->i++;
            js_skip_ws(js);
            st = ST_VALUE;
        } else {
            js_skip_ws(js);
            if (depth == 0) {
                if (js->i < js->len)
                    return js_unexpected(js, "unexpected data after the value");
                return HQ_OK;
            }
            int obj = (int)(is_obj[(depth - 1) / 64] >> ((depth - 1) % 64) & 1);
            unsigned char c = js->i < js->len ? js->s[js->i] : 0;
            if (js->i < js->len && c == ',') {
                js->i++;
                js_skip_ws(js);
                st = obj ? ST_KEY : ST_VALUE;
            } else if (js->i < js->len && c == (obj ? '}' : ']')) {
                js->i++;
                depth--;
            } else {
                return js_unexpected(js, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            }
        }
    }
}

int envelope_check_data(const char *data, size_t len, const envelope_limits *lim, char *err,
                        size_t errlen) {
    size_t max_payload = lim && lim->max_payload ? lim->max_payload : EVP_DEFAULT_MAX_PAYLOAD;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : EVP_DEFAULT_MAX_DEPTH;
    if (max_depth > EVP_DEPTH_CAP)
        max_depth = EVP_DEPTH_CAP;
    if (!data || len == 0)
        return hq_seterr(err, errlen, "empty; must be one JSON value");
    if (len > max_payload)
        return hq_seterr(err, errlen, "%zu bytes, over the limit of %zu", len, max_payload);
    /* Duplicate keys are valid JSON and are left alone (the text is sent verbatim). */
    json_scan js = {.s = (const unsigned char *)data, .len = len, .max_depth = max_depth};
    if (json_scan_run(&js) == HQ_OK)
        return HQ_OK;
    switch (js.kind) {
    case JS_NUL:
        return hq_seterr(err, errlen, "contains a NUL byte at offset %zu", js.at);
    case JS_UTF8:
        return hq_seterr(err, errlen, "invalid UTF-8 at offset %zu", js.at);
    case JS_DEPTH:
        return hq_seterr(err, errlen, "JSON nested deeper than %d levels", max_depth);
    default:
        if (js.at >= len)
            return hq_seterr(err, errlen, "invalid JSON at byte %zu (end): %s", js.at, js.what);
        return hq_seterr(err, errlen, "invalid JSON at byte %zu: %s", js.at, js.what);
    }
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
