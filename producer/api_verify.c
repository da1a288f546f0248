/* api_verify.c -- inbound webhook verification: the config as JSON, one check per scheme, and
 * the provider's delivery id.
 *
 * Every check computes the MAC (or, for basic and api_key, an HMAC of each side under a fixed
 * label) into a fixed-size buffer, decodes what the client sent into another of the same size,
 * and compares the two with sign_ct_equal. Decoding the client's text first means a malformed
 * value is refused without touching the secret, and the comparison's time depends only on the
 * digest size, never on the secret or how much of it matched. */
#include "api_verify.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hq.h"
#include "signature.h"

#define MAC_MAX    64 /* SHA-512 */
#define MASK       "****"
#define CRED_MAX   1024 /* decoded Basic credentials: longer ones cannot match a valid config */
#define ECHO_MAX   40   /* at most this much of a user's unknown field or type is echoed */
#define CRED_LABEL "hookq inbound credential"

/* ---- config fields ---------------------------------------------------------------------- */

typedef enum field {
    F_SECRET,
    F_ALGORITHM,
    F_ENCODING,
    F_HEADER,
    F_PREFIX,
    F_TS_HEADER,
    F_TOLERANCE,
    F_USERNAME,
    F_PASSWORD,
    F_KEY,
    F_COUNT
} field;

#define BIT(f) (1u << (f))

#define SECRET    BIT(F_SECRET)
#define TOLERANCE BIT(F_TOLERANCE)

/* Each kind's name and the config fields it allows and requires ("type" aside). */
static const struct kind_def {
    const char *name;
    unsigned allowed, required;
} kinds[] = {
    [VERIFY_NONE] = {"none", 0, 0},
    [VERIFY_GITHUB] = {"github", SECRET, SECRET},
    [VERIFY_STRIPE] = {"stripe", SECRET | TOLERANCE, SECRET},
    [VERIFY_SHOPIFY] = {"shopify", SECRET, SECRET},
    [VERIFY_SLACK] = {"slack", SECRET | TOLERANCE, SECRET},
    [VERIFY_STANDARD] = {"standard", SECRET | TOLERANCE, SECRET},
    [VERIFY_HMAC] = {"hmac",
                     SECRET | TOLERANCE | BIT(F_ALGORITHM) | BIT(F_ENCODING) | BIT(F_HEADER) |
                         BIT(F_PREFIX) | BIT(F_TS_HEADER),
                     SECRET | BIT(F_HEADER)},
    [VERIFY_BASIC] = {"basic", BIT(F_USERNAME) | BIT(F_PASSWORD),
                      BIT(F_USERNAME) | BIT(F_PASSWORD)},
    [VERIFY_API_KEY] = {"api_key", BIT(F_KEY) | BIT(F_HEADER), BIT(F_KEY)},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* What a string field may contain, beyond "no NUL byte". */
typedef enum charset {
    CS_ANY,     /* secret, the HMAC key: any bytes */
    CS_VISIBLE, /* key, prefix: sent in a header, so visible ASCII only */
    CS_TEXT,    /* password: no control characters */
    CS_USER,    /* username: no control characters and no ':' (RFC 7617) */
    CS_TOKEN,   /* header names: RFC 9110 tchar */
} charset;

static int is_tchar(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int chars_ok(const char *s, size_t n, charset cs) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = cs == CS_ANY                ? 1
                 : cs == CS_VISIBLE          ? c > 0x20 && c < 0x7f
                 : cs == CS_TOKEN            ? is_tchar(c)
                 : cs == CS_USER && c == ':' ? 0
                                             : c >= 0x20 && c != 0x7f;
        if (!ok)
            return 0;
    }
    return 1;
}

/* Each field's JSON name and, for the strings kept as copies, where the copy goes, its length
 * limit (the minimum is 1) and its character set. */
typedef struct field_def {
    const char *name;
    size_t slot; /* offsetof the char * in verify_config; 0 (kind's offset) if not a string */
    size_t max;
    charset cs;
} field_def;

#define STR_FIELD(n, m, mx, c)                                                                     \
    { n, offsetof(verify_config, m), mx, c }
static const field_def fields[F_COUNT] = {
    [F_SECRET] = STR_FIELD("secret", secret, VERIFY_SECRET_MAX, CS_ANY),
    [F_ALGORITHM] = {"algorithm", 0, 0, CS_ANY},
    [F_ENCODING] = {"encoding", 0, 0, CS_ANY},
    [F_HEADER] = STR_FIELD("header", header, VERIFY_HEADER_NAME_MAX, CS_TOKEN),
    [F_PREFIX] = STR_FIELD("prefix", prefix, VERIFY_PREFIX_MAX, CS_VISIBLE),
    [F_TS_HEADER] =
        STR_FIELD("timestamp_header", timestamp_header, VERIFY_HEADER_NAME_MAX, CS_TOKEN),
    [F_TOLERANCE] = {"tolerance", 0, 0, CS_ANY},
    [F_USERNAME] = STR_FIELD("username", username, VERIFY_USERNAME_MAX, CS_USER),
    [F_PASSWORD] = STR_FIELD("password", password, VERIFY_SECRET_MAX, CS_TEXT),
    [F_KEY] = STR_FIELD("key", key, VERIFY_SECRET_MAX, CS_VISIBLE),
};

/* A copy of s fit to quote in an error: printable ASCII, at most ECHO_MAX chars. */
static const char *echo(const char *s, char *buf, size_t buflen) {
    size_t i = 0;
    for (; s[i] && i < ECHO_MAX && i + 1 < buflen; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static char *dup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int kind_from_name(const char *s, verify_kind *k) {
    for (size_t i = 0; i < NKINDS; i++) {
        if (strcmp(s, kinds[i].name) == 0) {
            *k = (verify_kind)i;
            return HQ_OK;
        }
    }
    return HQ_ERR;
}

static int parse_string_field(const json_t *v, field f, verify_config *out, char *err,
                              size_t errlen) {
    const field_def *d = &fields[f];
    if (!json_is_string(v))
        return hq_seterr(err, errlen, "verification.%s: must be a string", d->name);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return hq_seterr(err, errlen, "verification.%s: contains a NUL byte", d->name);
    if (n < 1 || n > d->max)
        return hq_seterr(err, errlen, "verification.%s: must be 1..%zu bytes", d->name, d->max);
    if (!chars_ok(s, n, d->cs)) {
        if (d->cs == CS_TOKEN)
            return hq_seterr(err, errlen, "verification.%s: not an HTTP header name", d->name);
        return hq_seterr(err, errlen, "verification.%s: contains %s", d->name,
                         d->cs == CS_USER   ? "a control character or ':'"
                         : d->cs == CS_TEXT ? "a control character"
                                            : "a space or a character outside visible ASCII");
    }
    char **slot = (char **)((char *)out + d->slot);
    *slot = dup(s, n);
    if (!*slot)
        return hq_seterr(err, errlen, "out of memory");
    return HQ_OK;
}

static int parse_field(const json_t *v, field f, verify_config *out, char *err, size_t errlen) {
    const char *s = json_string_value(v);
    switch (f) {
    case F_ALGORITHM:
        if (s && strcmp(s, "sha256") == 0)
            out->hmac_bits = 256;
        else if (s && strcmp(s, "sha512") == 0)
            out->hmac_bits = 512;
        else
            return hq_seterr(err, errlen,
                             "verification.algorithm: must be \"sha256\" or \"sha512\"");
        return HQ_OK;
    case F_ENCODING:
        if (s && strcmp(s, "hex") == 0)
            out->hmac_base64 = 0;
        else if (s && strcmp(s, "base64") == 0)
            out->hmac_base64 = 1;
        else
            return hq_seterr(err, errlen, "verification.encoding: must be \"hex\" or \"base64\"");
        return HQ_OK;
    case F_TOLERANCE:
        if (!json_is_integer(v))
            return hq_seterr(err, errlen, "verification.tolerance: must be an integer (seconds)");
        if (json_integer_value(v) < 1 || json_integer_value(v) > VERIFY_TOLERANCE_MAX)
            return hq_seterr(err, errlen, "verification.tolerance: must be 1..%d seconds",
                             VERIFY_TOLERANCE_MAX);
        out->tolerance_s = json_integer_value(v);
        return HQ_OK;
    default:
        return parse_string_field(v, f, out, err, errlen);
    }
}

static int uses_timestamp(const verify_config *c) {
    return c->kind == VERIFY_STRIPE || c->kind == VERIFY_SLACK || c->kind == VERIFY_STANDARD ||
           (c->kind == VERIFY_HMAC && c->timestamp_header);
}

/* Everything past the type: unknown fields first, then each field in table order (so the
 * error for a config with several problems does not depend on key order), then what must be
 * present, then checks across fields and defaults. */
static int parse_fields(const json_t *j, verify_config *out, char *err, size_t errlen) {
    const char *name = kinds[out->kind].name;
    const char *k;
    json_t *v;
    char buf[ECHO_MAX + 1];
    unsigned allowed = kinds[out->kind].allowed;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, "type") == 0)
            continue;
        size_t f = 0;
        while (f < F_COUNT && strcmp(k, fields[f].name) != 0)
            f++;
        if (f == F_COUNT || !(allowed & BIT(f)))
            return hq_seterr(err, errlen, "verification: unknown field '%s' for type %s",
                             echo(k, buf, sizeof(buf)), name);
    }
    for (size_t f = 0; f < F_COUNT; f++) {
        json_t *fv = json_object_get(j, fields[f].name);
        if (!fv) {
            if (kinds[out->kind].required & BIT(f))
                return hq_seterr(err, errlen, "verification.%s: required for type %s",
                                 fields[f].name, name);
            continue;
        }
        if (parse_field(fv, (field)f, out, err, errlen) != HQ_OK)
            return HQ_ERR;
    }
    if (out->kind == VERIFY_STANDARD) {
        char derr[HQ_ERRLEN];
        if (sign_secret_valid(out->secret, derr, sizeof(derr)) != HQ_OK)
            return hq_seterr(err, errlen, "verification.secret: %s", derr);
    }
    if (out->kind == VERIFY_HMAC) {
        if (out->tolerance_s && !out->timestamp_header)
            return hq_seterr(err, errlen,
                             "verification.tolerance: only with timestamp_header for type hmac");
        if (!out->hmac_bits)
            out->hmac_bits = 256;
    }
    if (uses_timestamp(out) && !out->tolerance_s)
        out->tolerance_s = VERIFY_TOLERANCE_DEFAULT;
    if (out->kind == VERIFY_API_KEY && !out->header) {
        out->header = dup(VERIFY_API_KEY_HEADER, strlen(VERIFY_API_KEY_HEADER));
        if (!out->header)
            return hq_seterr(err, errlen, "out of memory");
    }
    return HQ_OK;
}

int verify_config_from_json(const json_t *j, verify_config *out, char *err, size_t errlen) {
    char buf[ECHO_MAX + 1];
    if (!out)
        return hq_seterr(err, errlen, "verification: no config to fill");
    memset(out, 0, sizeof(*out));
    if (!j || json_is_null(j))
        return HQ_OK;
    if (!json_is_object(j))
        return hq_seterr(err, errlen, "verification: must be a JSON object");
    json_t *t = json_object_get(j, "type");
    if (!t)
        return hq_seterr(err, errlen, "verification.type: required");
    if (!json_is_string(t))
        return hq_seterr(err, errlen, "verification.type: must be a string");
    if (kind_from_name(json_string_value(t), &out->kind) != HQ_OK)
        return hq_seterr(err, errlen,
                         "verification.type: unknown verifier '%s' (github, stripe, shopify, "
                         "slack, standard, hmac, basic, api_key, none)",
                         echo(json_string_value(t), buf, sizeof(buf)));
    if (parse_fields(j, out, err, errlen) != HQ_OK) {
        verify_config_clear(out);
        return HQ_ERR;
    }
    return HQ_OK;
}

/* Set o[k] = v, noting a failure (v NULL from an allocation, or the set itself) in *ok. */
static void put(json_t *o, const char *k, json_t *v, int *ok) {
    if (json_object_set_new(o, k, v) != 0)
        *ok = 0;
}

static void put_str(json_t *o, const char *k, const char *s, int masked, int *ok) {
    if (s)
        put(o, k, json_string(masked ? MASK : s), ok);
}

static int64_t tolerance(const verify_config *c) {
    return c->tolerance_s > 0 ? c->tolerance_s : VERIFY_TOLERANCE_DEFAULT;
}

json_t *verify_config_to_json(const verify_config *c, int show_secrets) {
    static const verify_config none = {.kind = VERIFY_NONE};
    int ok = 1, mask = !show_secrets;
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (!c)
        c = &none;
    put(o, "type", json_string(verify_kind_name(c->kind)), &ok);
    if ((unsigned)c->kind < NKINDS && (kinds[c->kind].allowed & BIT(F_SECRET)))
        put_str(o, "secret", c->secret, mask, &ok);
    if (c->kind == VERIFY_HMAC) {
        put(o, "algorithm", json_string(c->hmac_bits == 512 ? "sha512" : "sha256"), &ok);
        put(o, "encoding", json_string(c->hmac_base64 ? "base64" : "hex"), &ok);
        put_str(o, "header", c->header, 0, &ok);
        put_str(o, "prefix", c->prefix, 0, &ok);
        put_str(o, "timestamp_header", c->timestamp_header, 0, &ok);
    }
    if (uses_timestamp(c))
        put(o, "tolerance", json_integer(tolerance(c)), &ok);
    if (c->kind == VERIFY_BASIC) {
        put_str(o, "username", c->username, 0, &ok);
        put_str(o, "password", c->password, mask, &ok);
    }
    if (c->kind == VERIFY_API_KEY) {
        put_str(o, "header", c->header ? c->header : VERIFY_API_KEY_HEADER, 0, &ok);
        put_str(o, "key", c->key, mask, &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void free_secret(char *s) {
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void verify_config_clear(verify_config *c) {
    if (!c)
        return;
    free_secret(c->secret);
    free_secret(c->password);
    free_secret(c->key);
    free(c->header);
    free(c->prefix);
    free(c->timestamp_header);
    free(c->username);
    memset(c, 0, sizeof(*c));
}

const char *verify_kind_name(verify_kind k) {
    return (unsigned)k < NKINDS ? kinds[k].name : "unknown";
}

/* ---- decoding what the client sent -------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static void trim(span *s) {
    while (s->n && (s->p[0] == ' ' || s->p[0] == '\t')) {
        s->p++;
        s->n--;
    }
    while (s->n && (s->p[s->n - 1] == ' ' || s->p[s->n - 1] == '\t'))
        s->n--;
}

/* The header's value without surrounding spaces; 0 if absent or blank. */
static int find(verify_header_fn hdr, void *ud, const char *name, span *out) {
    const char *v = hdr(ud, name);
    if (!v)
        return 0;
    out->p = v;
    out->n = strlen(v);
    trim(out);
    return out->n > 0;
}

/* a[0..n) equals the lowercase ASCII b[0..n), ignoring a's case */
static int same_ci(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char ch = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] - 'A' + 'a') : a[i];
        if (ch != b[i])
            return 0;
    }
    return 1;
}

static int strip_prefix(span *s, const char *prefix) {
    size_t n = strlen(prefix);
    if (s->n < n || memcmp(s->p, prefix, n) != 0)
        return 0;
    s->p += n;
    s->n -= n;
    return 1;
}

static int hex_val(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 2 * outlen hex digits, either case. */
static int hex_decode(span s, unsigned char *out, size_t outlen) {
    if (s.n != 2 * outlen)
        return HQ_ERR;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hex_val((unsigned char)s.p[2 * i]), lo = hex_val((unsigned char)s.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return HQ_ERR;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return HQ_OK;
}

static int b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard-alphabet base64, padded or not; the unused low bits of the last character must be
 * zero so each value has one spelling. Returns the decoded length, or -1. */
static long b64_decode(span s, unsigned char *out, size_t outmax) {
    size_t n = s.n;
    if (n % 4 == 0 && n && s.p[n - 1] == '=') {
        n--;
        if (s.p[n - 1] == '=')
            n--;
    }
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outmax)
        return -1;
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s.p[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)o;
}

/* Unix seconds: 1..19 digits, no sign, no overflow. */
static int parse_ts(span s, int64_t *out) {
    int64_t v = 0;
    if (s.n == 0 || s.n > 19)
        return HQ_ERR;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return HQ_ERR;
        int d = s.p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return HQ_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return HQ_OK;
}

/* |now - ts| <= tol, without overflow for any now (ts >= 0, tol > 0). */
static int within(int64_t ts, int64_t now, int64_t tol) {
    if (ts > now)
        return ts - tol <= now;
    return now - tol <= ts;
}

static int check_time(const verify_config *c, span ts, int64_t now, char *why, size_t whylen) {
    int64_t t = 0;
    if (parse_ts(ts, &t) != HQ_OK)
        return hq_seterr(why, whylen, "malformed timestamp");
    if (!within(t, now, tolerance(c)))
        return hq_seterr(why, whylen, "timestamp outside the %" PRId64 " s tolerance",
                         tolerance(c));
    return HQ_OK;
}

/* ---- MACs ----------------------------------------------------------------------------------- */

/* HMAC-SHA256 or -SHA512 over the concatenation of parts, so "<ts>.<body>" is never copied. */
static int mac(int bits, const void *key, size_t keylen, const void *const *parts,
               const size_t *lens, size_t nparts, unsigned char *out) {
    int rc = HQ_ERR;
    EVP_MAC *m = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t want = (size_t)bits / 8, got = 0;
    char digest[8];
    memcpy(digest, bits == 512 ? "SHA512" : "SHA256", 7);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!m)
        goto cleanup;
    ctx = EVP_MAC_CTX_new(m);
    if (!ctx)
        goto cleanup;
    if (!EVP_MAC_init(ctx, key, keylen, params))
        goto cleanup;
    for (size_t i = 0; i < nparts; i++) {
        if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto cleanup;
    }
    if (!EVP_MAC_final(ctx, out, &got, want) || got != want)
        goto cleanup;
    rc = HQ_OK;
cleanup:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

/* How one scheme carries its MAC: in which header, after what prefix, in which encoding. */
typedef struct mac_spec {
    const char *secret;
    int bits;
    int base64;
    const char *header;
    const char *prefix; /* NULL for none */
} mac_spec;

static int check_mac(const mac_spec *m, verify_header_fn hdr, void *ud, const void *const *parts,
                     const size_t *lens, size_t nparts, char *why, size_t whylen) {
    unsigned char want[MAC_MAX], got[MAC_MAX];
    size_t n = (size_t)m->bits / 8;
    span v;
    if (!find(hdr, ud, m->header, &v))
        return hq_seterr(why, whylen, "missing %s", m->header);
    if (m->prefix && !strip_prefix(&v, m->prefix))
        return hq_seterr(why, whylen, "malformed %s: expected \"%s\" before the signature",
                         m->header, m->prefix);
    trim(&v);
    int decoded =
        m->base64 ? b64_decode(v, got, sizeof(got)) == (long)n : hex_decode(v, got, n) == HQ_OK;
    if (!decoded)
        return hq_seterr(why, whylen, "malformed %s", m->header);
    if (mac(m->bits, m->secret, strlen(m->secret), parts, lens, nparts, want) != HQ_OK)
        return hq_seterr(why, whylen, "internal error");
    int same = sign_ct_equal(want, got, n);
    OPENSSL_cleanse(want, sizeof(want));
    return same ? HQ_OK : hq_seterr(why, whylen, "signature mismatch");
}

/* ---- schemes -------------------------------------------------------------------------------- */

static int check_stripe(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                        size_t len, int64_t now, char *why, size_t whylen) {
    static const char name[] = "Stripe-Signature";
    unsigned char want[32], got[32];
    span v, t = {NULL, 0};
    int same = 0, nv1 = 0;
    if (!find(hdr, ud, name, &v))
        return hq_seterr(why, whylen, "missing %s", name);
    /* Two passes over "k=v,k=v": the timestamp may come after the signatures. */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = v.p, *end = v.p + v.n;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            span item = {p, (size_t)((comma ? comma : end) - p)};
            p = comma ? comma + 1 : end;
            trim(&item);
            if (item.n == 0)
                continue;
            const char *eq = memchr(item.p, '=', item.n);
            if (!eq)
                return hq_seterr(why, whylen, "malformed %s", name);
            span key = {item.p, (size_t)(eq - item.p)}, val = {eq + 1, item.n - key.n - 1};
            trim(&key);
            trim(&val);
            int is_t = key.n == 1 && key.p[0] == 't';
            int is_v1 = key.n == 2 && memcmp(key.p, "v1", 2) == 0;
            if (pass == 0 && is_t) {
                int64_t ts = 0;
                if (t.p || parse_ts(val, &ts) != HQ_OK)
                    return hq_seterr(why, whylen, "malformed %s: bad or repeated t=", name);
                t = val;
            } else if (pass == 1 && is_v1) {
                /* every v1 is decoded and compared: no early exit on the one that matches */
                nv1++;
                if (hex_decode(val, got, sizeof(got)) == HQ_OK && sign_ct_equal(want, got, 32))
                    same = 1;
            }
        }
        if (pass == 0) {
            if (!t.p)
                return hq_seterr(why, whylen, "malformed %s: no t=", name);
            if (check_time(c, t, now, why, whylen) != HQ_OK)
                return HQ_ERR;
            const void *parts[] = {t.p, ".", body};
            size_t lens[] = {t.n, 1, len};
            if (mac(256, c->secret, strlen(c->secret), parts, lens, 3, want) != HQ_OK)
                return hq_seterr(why, whylen, "internal error");
        }
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (nv1 == 0)
        return hq_seterr(why, whylen, "%s has no v1 signature", name);
    return same ? HQ_OK : hq_seterr(why, whylen, "signature mismatch");
}

static int check_slack(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                       size_t len, int64_t now, char *why, size_t whylen) {
    static const char tsname[] = "X-Slack-Request-Timestamp";
    const mac_spec m = {c->secret, 256, 0, "X-Slack-Signature", "v0="};
    span ts;
    if (!find(hdr, ud, tsname, &ts))
        return hq_seterr(why, whylen, "missing %s", tsname);
    if (check_time(c, ts, now, why, whylen) != HQ_OK)
        return HQ_ERR;
    const void *parts[] = {"v0:", ts.p, ":", body};
    size_t lens[] = {3, ts.n, 1, len};
    return check_mac(&m, hdr, ud, parts, lens, 4, why, whylen);
}

static int check_standard(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                          size_t len, int64_t now, char *why, size_t whylen) {
    /* sign_verify_v1 takes the id and signature list as NUL-terminated strings, so those two
     * are passed as the caller has them: the id is signed as sent, and the list is split on
     * spaces, so surrounding ones do no harm. */
    const char *id = hdr(ud, "webhook-id"), *sig = hdr(ud, "webhook-signature");
    span ts;
    int64_t t = 0;
    if (!id || !*id)
        return hq_seterr(why, whylen, "missing webhook-id");
    if (!find(hdr, ud, "webhook-timestamp", &ts))
        return hq_seterr(why, whylen, "missing webhook-timestamp");
    if (!sig || !*sig)
        return hq_seterr(why, whylen, "missing webhook-signature");
    if (check_time(c, ts, now, why, whylen) != HQ_OK)
        return HQ_ERR;
    (void)parse_ts(ts, &t); /* cannot fail: check_time parsed it */
    if (sign_verify_v1(c->secret, id, t, body, len, sig) != HQ_OK)
        return hq_seterr(why, whylen, "signature mismatch");
    return HQ_OK;
}

static int check_hmac(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                      size_t len, int64_t now, char *why, size_t whylen) {
    const mac_spec m = {c->secret, c->hmac_bits == 512 ? 512 : 256, c->hmac_base64, c->header,
                        c->prefix};
    span ts;
    if (!c->timestamp_header) {
        const void *parts[] = {body};
        size_t lens[] = {len};
        return check_mac(&m, hdr, ud, parts, lens, 1, why, whylen);
    }
    if (!find(hdr, ud, c->timestamp_header, &ts))
        return hq_seterr(why, whylen, "missing %s", c->timestamp_header);
    if (check_time(c, ts, now, why, whylen) != HQ_OK)
        return HQ_ERR;
    const void *parts[] = {ts.p, ".", body};
    size_t lens[] = {ts.n, 1, len};
    return check_mac(&m, hdr, ud, parts, lens, 3, why, whylen);
}

/* HMACs of both sides under a fixed label, compared: the time depends on neither the
 * expected value's length nor how much of it the client got right. */
static int same_credential(const void *const *gparts, const size_t *glens, size_t ng,
                           const void *const *wparts, const size_t *wlens, size_t nw) {
    unsigned char g[32], w[32];
    int same = mac(256, CRED_LABEL, strlen(CRED_LABEL), gparts, glens, ng, g) == HQ_OK &&
               mac(256, CRED_LABEL, strlen(CRED_LABEL), wparts, wlens, nw, w) == HQ_OK &&
               sign_ct_equal(g, w, sizeof(g));
    OPENSSL_cleanse(w, sizeof(w));
    return same;
}

static int check_basic(const verify_config *c, verify_header_fn hdr, void *ud, char *why,
                       size_t whylen) {
    unsigned char cred[CRED_MAX];
    span v;
    if (!find(hdr, ud, "Authorization", &v))
        return hq_seterr(why, whylen, "missing Authorization");
    if (v.n < 6 || !same_ci(v.p, "basic", 5) || (v.p[5] != ' ' && v.p[5] != '\t'))
        return hq_seterr(why, whylen, "Authorization is not Basic");
    v.p += 6;
    v.n -= 6;
    trim(&v);
    long n = b64_decode(v, cred, sizeof(cred));
    if (n < 0)
        return hq_seterr(why, whylen, "malformed Authorization");
    const void *gparts[] = {cred};
    size_t glens[] = {(size_t)n};
    const void *wparts[] = {c->username, ":", c->password};
    size_t wlens[] = {strlen(c->username), 1, strlen(c->password)};
    int same = same_credential(gparts, glens, 1, wparts, wlens, 3);
    OPENSSL_cleanse(cred, sizeof(cred));
    return same ? HQ_OK : hq_seterr(why, whylen, "wrong username or password");
}

static int check_api_key(const verify_config *c, verify_header_fn hdr, void *ud, char *why,
                         size_t whylen) {
    const char *name = c->header ? c->header : VERIFY_API_KEY_HEADER;
    span v;
    if (!find(hdr, ud, name, &v))
        return hq_seterr(why, whylen, "missing %s", name);
    const void *gparts[] = {v.p}, *wparts[] = {c->key};
    size_t glens[] = {v.n}, wlens[] = {strlen(c->key)};
    if (!same_credential(gparts, glens, 1, wparts, wlens, 1))
        return hq_seterr(why, whylen, "wrong API key");
    return HQ_OK;
}

static int set(const char *s) {
    return s && *s;
}

/* Does c have what its kind needs? A hand-built or damaged config is refused, not trusted. */
static int usable(const verify_config *c) {
    switch (c->kind) {
    case VERIFY_GITHUB:
    case VERIFY_STRIPE:
    case VERIFY_SHOPIFY:
    case VERIFY_SLACK:
        return set(c->secret);
    case VERIFY_STANDARD:
        return set(c->secret) && sign_secret_valid(c->secret, NULL, 0) == HQ_OK;
    case VERIFY_HMAC:
        return set(c->secret) && set(c->header) &&
               (c->hmac_bits == 0 || c->hmac_bits == 256 || c->hmac_bits == 512) &&
               (c->hmac_base64 == 0 || c->hmac_base64 == 1) &&
               (!c->timestamp_header || set(c->timestamp_header));
    case VERIFY_BASIC:
        return set(c->username) && set(c->password);
    case VERIFY_API_KEY:
        return set(c->key) && (!c->header || set(c->header));
    default:
        return 0;
    }
}

int verify_check(const verify_config *c, verify_header_fn hdr, void *ud, const char *body,
                 size_t len, int64_t now_s, char *why, size_t whylen) {
    if (why && whylen)
        why[0] = '\0';
    if (c && c->kind == VERIFY_NONE)
        return HQ_OK;
    if (!c || !usable(c))
        return hq_seterr(why, whylen, "verifier misconfigured");
    if (!hdr || (!body && len))
        return hq_seterr(why, whylen, "internal error");
    if (!body)
        body = "";
    switch (c->kind) {
    case VERIFY_GITHUB: {
        const mac_spec m = {c->secret, 256, 0, "X-Hub-Signature-256", "sha256="};
        const void *parts[] = {body};
        return check_mac(&m, hdr, ud, parts, &len, 1, why, whylen);
    }
    case VERIFY_SHOPIFY: {
        const mac_spec m = {c->secret, 256, 1, "X-Shopify-Hmac-Sha256", NULL};
        const void *parts[] = {body};
        return check_mac(&m, hdr, ud, parts, &len, 1, why, whylen);
    }
    case VERIFY_STRIPE:
        return check_stripe(c, hdr, ud, body, len, now_s, why, whylen);
    case VERIFY_SLACK:
        return check_slack(c, hdr, ud, body, len, now_s, why, whylen);
    case VERIFY_STANDARD:
        return check_standard(c, hdr, ud, body, len, now_s, why, whylen);
    case VERIFY_HMAC:
        return check_hmac(c, hdr, ud, body, len, now_s, why, whylen);
    case VERIFY_BASIC:
        return check_basic(c, hdr, ud, why, whylen);
    case VERIFY_API_KEY:
        return check_api_key(c, hdr, ud, why, whylen);
    default:
        return hq_seterr(why, whylen, "verifier misconfigured");
    }
}

/* ---- delivery ids --------------------------------------------------------------------------- */

static int copy_id(const char *s, size_t n, char *out, size_t outlen) {
    if (n == 0 || n > VERIFY_ID_MAX || n >= outlen)
        return HQ_ERR;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return HQ_ERR;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return HQ_OK;
}

static int id_from_header(verify_header_fn hdr, void *ud, const char *name, char *out,
                          size_t outlen) {
    span v;
    if (!hdr || !find(hdr, ud, name, &v))
        return HQ_ERR;
    return copy_id(v.p, v.n, out, outlen);
}

static int id_from_body(const char *body, size_t len, const char *key, char *out, size_t outlen) {
    if (!body || len == 0)
        return HQ_ERR;
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *v = json_object_get(j, key); /* NULL-safe, and NULL for a non-object */
    int rc = json_is_string(v) ? copy_id(json_string_value(v), json_string_length(v), out, outlen)
                               : HQ_ERR;
    json_decref(j);
    return rc;
}

int verify_delivery_id(verify_kind kind, verify_header_fn hdr, void *ud, const char *body,
                       size_t len, char *out, size_t outlen) {
    if (!out || outlen == 0)
        return HQ_ERR;
    out[0] = '\0';
    switch (kind) {
    case VERIFY_GITHUB:
        return id_from_header(hdr, ud, "X-GitHub-Delivery", out, outlen);
    case VERIFY_STRIPE:
        return id_from_body(body, len, "id", out, outlen);
    case VERIFY_SHOPIFY:
        return id_from_header(hdr, ud, "X-Shopify-Webhook-Id", out, outlen);
    case VERIFY_SLACK:
        return id_from_body(body, len, "event_id", out, outlen);
    case VERIFY_STANDARD:
        return id_from_header(hdr, ud, "webhook-id", out, outlen);
    default:
        return HQ_ERR;
    }
}
