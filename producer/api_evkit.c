/* api_evkit.c -- see api_evkit.h. */
#include "api_evkit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "timestamp.h"

/* ---- members ---------------------------------------------------------------------- */

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t len, size_t pos) {
    while (pos < len && is_ws(s[pos]))
        pos++;
    return pos;
}

/* pos is at an opening quote: the position after the closing one, or len + 1. */
static size_t skip_string(const char *s, size_t len, size_t pos) {
    for (pos++; pos < len; pos++) {
        if (s[pos] == '\\')
            pos++;
        else if (s[pos] == '"')
            return pos + 1;
    }
    return len + 1;
}

/* pos is at a value's first byte: the position after it, or len + 1 when it does not
 * end. Containers are matched by counting brackets outside strings: the syntax was
 * checked before (json_scan), so counting is enough and needs no stack. */
static size_t skip_value(const char *s, size_t len, size_t pos) {
    size_t depth = 0;
    if (pos >= len)
        return len + 1;
    if (s[pos] == '"')
        return skip_string(s, len, pos);
    if (s[pos] != '{' && s[pos] != '[') {
        size_t start = pos;
        while (pos < len && !is_ws(s[pos]) && s[pos] != ',' && s[pos] != '}' && s[pos] != ']')
            pos++;
        return pos > start ? pos : len + 1;
    }
    while (pos < len) {
        char c = s[pos];
        if (c == '"') {
            pos = skip_string(s, len, pos);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return pos + 1;
        }
        pos++;
    }
    return len + 1;
}

int evj_begin(evj_iter *it, const char *s, size_t len) {
    memset(it, 0, sizeof(*it));
    it->s = s;
    it->len = len;
    it->pos = skip_ws(s, len, 0);
    if (!s || it->pos >= len || s[it->pos] != '{') {
        it->state = 2;
        return HQ_ERR;
    }
    it->pos++;
    return HQ_OK;
}

int evj_next(evj_iter *it, evj_member *m, const char **what) {
    const char *s = it->s;
    size_t len = it->len, pos, end;
    *what = NULL;
    if (it->state == 2)
        return 0;
    pos = skip_ws(s, len, it->pos);
    if (pos < len && s[pos] == '}' && it->state == 0)
        goto close;
    if (it->state == 1) {
        if (pos < len && s[pos] == '}')
            goto close;
        if (pos >= len || s[pos] != ',') {
            *what = "expected ',' or '}'";
            return -1;
        }
        pos = skip_ws(s, len, pos + 1);
    }
    if (pos >= len || s[pos] != '"') {
        *what = "expected a member name";
        return -1;
    }
    end = skip_string(s, len, pos);
    if (end > len) {
        *what = "unterminated string";
        return -1;
    }
    m->key = s + pos + 1;
    m->keylen = end - pos - 2;
    pos = skip_ws(s, len, end);
    if (pos >= len || s[pos] != ':') {
        *what = "expected ':'";
        return -1;
    }
    pos = skip_ws(s, len, pos + 1);
    end = skip_value(s, len, pos);
    if (end > len) {
        *what = "a value does not end";
        return -1;
    }
    m->val = s + pos;
    m->vallen = end - pos;
    it->pos = end;
    it->state = 1;
    return 1;
close:
    it->state = 2;
    if (skip_ws(s, len, pos + 1) != len) {
        *what = "text after the object";
        return -1;
    }
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, size_t avail, unsigned *out) {
    unsigned v = 0;
    if (avail < 4)
        return HQ_ERR;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return HQ_ERR;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return HQ_OK;
}

/* UTF-8 of cp into b (4 bytes); the length. */
static size_t utf8_put(unsigned cp, char *b) {
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | cp >> 18);
    b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int evj_unescape(const char *raw, size_t n, char *out, size_t outlen, int *cut) {
    size_t i = 0, o = 0;
    *cut = 0;
    if (outlen == 0)
        return HQ_ERR;
    while (i < n) {
        char b[4];
        size_t bl;
        if (raw[i] != '\\') {
            b[0] = raw[i++];
            bl = 1;
        } else {
            unsigned cp;
            if (i + 1 >= n)
                return HQ_ERR;
            switch (raw[i + 1]) {
            case '"':
            case '\\':
            case '/':
                b[0] = raw[i + 1];
                break;
            case 'b':
                b[0] = '\b';
                break;
            case 'f':
                b[0] = '\f';
                break;
            case 'n':
                b[0] = '\n';
                break;
            case 'r':
                b[0] = '\r';
                break;
            case 't':
                b[0] = '\t';
                break;
            case 'u':
                if (hex4(raw + i + 2, n - i - 2, &cp) != HQ_OK)
                    return HQ_ERR;
                i += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (i + 1 >= n || raw[i] != '\\' || raw[i + 1] != 'u' ||
                        hex4(raw + i + 2, n - i - 2, &lo) != HQ_OK || lo < 0xDC00 || lo > 0xDFFF)
                        return HQ_ERR;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return HQ_ERR;
                }
                if (cp == 0)
                    return HQ_ERR;
                bl = utf8_put(cp, b);
                goto put;
            default:
                return HQ_ERR;
            }
            i += 2;
            bl = 1;
        }
    put:
        if (o + bl >= outlen) {
            /* Cut before a character that does not fit; a raw multi-byte sequence is
             * cut at its lead byte, so the prefix stays valid UTF-8. */
            while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
                o--;
            if (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0xC0)
                o--;
            out[o] = '\0';
            *cut = 1;
            return HQ_OK;
        }
        memcpy(out + o, b, bl);
        o += bl;
    }
    out[o] = '\0';
    return HQ_OK;
}

/* ---- ids ---------------------------------------------------------------------------- */

/* Crockford base32 value of c (upper case, as ids.c writes it), or -1. */
static int b32val(char c) {
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

int evid_ulid_ms(const char *id, int64_t *ms) {
    uint64_t v = 0;
    if (!id || strncmp(id, "evt_", 4) != 0 || strlen(id) != 4 + 26)
        return HQ_ERR;
    for (int i = 0; i < 26; i++)
        if (b32val(id[4 + i]) < 0)
            return HQ_ERR;
    /* 10 chars are 50 bits and the time is 48: a first char above 7 is no ULID. */
    if (b32val(id[4]) > 7)
        return HQ_ERR;
    for (int i = 0; i < 10; i++)
        v = v << 5 | (uint64_t)b32val(id[4 + i]);
    *ms = (int64_t)v;
    return HQ_OK;
}

int evid_stream_id_ok(const char *s) {
    const char *dash = s ? strchr(s, '-') : NULL;
    size_t a, b;
    if (!dash)
        return 0;
    a = (size_t)(dash - s);
    b = strlen(dash + 1);
    if (a == 0 || a > 20 || b == 0 || b > 20)
        return 0;
    return strspn(s, "0123456789") == a && strspn(dash + 1, "0123456789") == b;
}

int evid_idem_key_ok(const char *k) {
    size_t n = k ? strnlen(k, 256) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

/* ---- entries ------------------------------------------------------------------------- */

int eve_ok(const redisReply *en) {
    const redisReply *f;
    if (!en || en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
        en->element[0]->type != REDIS_REPLY_STRING || en->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    f = en->element[1];
    for (size_t i = 0; i < f->elements; i++)
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return f->elements % 2 == 0;
}

const char *eve_id(const redisReply *en) {
    return en->element[0]->str;
}

const char *eve_field(const redisReply *en, const char *name, size_t *len) {
    const redisReply *f = en->element[1];
    size_t nl = strlen(name);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->len == nl && memcmp(f->element[i]->str, name, nl) == 0) {
            if (len)
                *len = f->element[i + 1]->len;
            return f->element[i + 1]->str;
        }
    }
    return NULL;
}

json_t *eve_string(const char *v, size_t vlen) {
    json_t *j = json_stringn(v, vlen);
    char *c;
    if (j)
        return j;
    /* Not UTF-8 (or a NUL): a lossy copy rather than dropping the field. */
    if (!(c = malloc(vlen + 1)))
        return NULL;
    for (size_t k = 0; k < vlen; k++)
        c[k] = (unsigned char)v[k] >= 0x80 || v[k] == '\0' ? '?' : v[k];
    j = json_stringn(c, vlen);
    free(c);
    return j;
}

void eve_sid_iso(const char *sid, char *buf, size_t len) {
    char *end;
    long long ms;
    errno = 0;
    ms = strtoll(sid, &end, 10);
    if (errno || end == sid || *end != '-' || ms < 0) {
        if (len)
            buf[0] = '\0';
        return;
    }
    ts_iso((int64_t)ms, buf, len);
}

/* ---- answers --------------------------------------------------------------------------- */

int evapi_answer_text(api_req *rq, int status, char *text, size_t len) {
    if (!text)
        return api_problem(rq, 500, "internal", NULL, "out of memory");
    free(rq->resp);
    rq->status = status;
    rq->resp = text;
    rq->resp_len = len;
    rq->resp_type = "application/json";
    rq->answered = 1;
    return API_DONE;
}

/* ---- Redis ------------------------------------------------------------------------------ */

int evapi_pipeline(api_req *rq, pipeline *p, int strict) {
    char err[HQ_ERRLEN] = "";
    rconn *r = api_redis(rq);
    if (!r)
        return HQ_ERR;
    if (pipeline_exec(p, r, err, sizeof(err)) != HQ_OK) {
        api_redis_failed(rq, err);
        return HQ_ERR;
    }
    for (size_t i = 0; i < pipeline_len(p); i++) {
        const redisReply *rep = pipeline_reply(p, i);
        if (!rep) {
            api_redis_failed(rq, "a reply is missing");
            return HQ_ERR;
        }
        if (rep->type != REDIS_REPLY_ERROR || !strict)
            continue;
        if (rep->str && (strncmp(rep->str, "OOM", 3) == 0 || strstr(rep->str, "OOM command"))) {
            api_header_add(rq, "Retry-After", "5");
            api_problem(rq, 507, "redis_full", NULL,
                        "Redis is out of memory (maxmemory); some changes may not be written");
        } else {
            api_problem(rq, 500, "redis_error", NULL, "Redis: %.300s",
                        rep->str ? rep->str : "error");
        }
        return HQ_ERR;
    }
    return HQ_OK;
}
