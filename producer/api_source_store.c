/* api_source_store.c -- see api_source_store.h. */
#include "api_source_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api_verify.h"
#include "cidr.h"
#include "envelope.h"
#include "event_pattern.h"
#include "hq.h"
#include "redis_keys.h"
#include "timestamp.h"

#define MASK "****"

const char *const source_fields[] = {"description",
                                     "enabled",
                                     "event_type",
                                     "event_type_header",
                                     "event_type_prefix",
                                     "tenant",
                                     "allow_ips",
                                     "verification",
                                     "dedupe",
                                     NULL};

/* ---- ids and keys ------------------------------------------------------------------- */

int source_id_new(char *out, size_t outlen) {
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[SOURCE_ID_HEX / 2];
    if (outlen < SOURCE_ID_LEN || RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
        return HQ_ERR;
    memcpy(out, SOURCE_ID_PREFIX, 4);
    for (size_t i = 0; i < sizeof(rnd); i++) {
        out[4 + 2 * i] = hex[rnd[i] >> 4];
        out[5 + 2 * i] = hex[rnd[i] & 15];
    }
    out[4 + SOURCE_ID_HEX] = '\0';
    return HQ_OK;
}

int source_id_valid(const char *id) {
    if (!id || strncmp(id, SOURCE_ID_PREFIX, 4) != 0 || strlen(id) != 4 + SOURCE_ID_HEX)
        return 0;
    for (const char *p = id + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int fits(int n, size_t len) {
    return n > 0 && (size_t)n < len ? HQ_OK : HQ_ERR;
}

int source_set_key(const char *prefix, char *buf, size_t len) {
    return fits(snprintf(buf, len, "%s:sources", prefix), len);
}

int source_key(const char *prefix, const char *id, const char *part, char *buf, size_t len) {
    return fits(snprintf(buf, len, "%s:{%s}:%s", prefix, id, part), len);
}

static int digits(const char *s, size_t n) {
    if (n == 0 || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int payload_sid_valid(const char *s) {
    const char *dash = s ? strchr(s, '-') : NULL;
    return dash && digits(s, (size_t)(dash - s)) && digits(dash + 1, strlen(dash + 1));
}

void payload_id_from_sid(const char *sid, char *out, size_t outlen) {
    snprintf(out, outlen, "%s%s", PAYLOAD_ID_PREFIX, sid);
}

int payload_id_to_sid(const char *id, char *out, size_t outlen) {
    size_t n = strlen(PAYLOAD_ID_PREFIX);
    if (strncmp(id, PAYLOAD_ID_PREFIX, n) != 0 || !payload_sid_valid(id + n))
        return HQ_ERR;
    return fits(snprintf(out, outlen, "%s", id + n), outlen);
}

/* ---- the record ----------------------------------------------------------------------- */

static void free_ips(source *s) {
    for (size_t i = 0; i < s->n_allow; i++)
        free(s->allow_ips[i]);
    free(s->allow_ips);
    s->allow_ips = NULL;
    s->n_allow = 0;
}

void source_clear(source *s) {
    if (!s)
        return;
    free(s->description);
    free(s->event_type);
    free(s->event_type_header);
    free(s->event_type_prefix);
    free(s->tenant);
    free_ips(s);
    json_decref(s->verification);
    memset(s, 0, sizeof(*s));
}

/* Replace *dst by a copy of v (NULL clears). */
static int set_text(char **dst, const char *v) {
    char *c = NULL;
    if (v && !(c = strdup(v)))
        return HQ_ERR;
    free(*dst);
    *dst = c;
    return HQ_OK;
}

static int parse_bool(const char *v, int *out) {
    if (strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0)
        *out = 0;
    else
        return HQ_ERR;
    return HQ_OK;
}

/* Split "a,b,c" into s->allow_ips. */
static int ips_from_text(source *s, const char *text) {
    const char *p = text;
    free_ips(s);
    if (!*text)
        return HQ_OK;
    size_t n = 1;
    for (const char *q = text; *q; q++)
        n += *q == ',';
    if (n > SOURCE_ALLOW_IPS_MAX || !(s->allow_ips = calloc(n, sizeof(char *))))
        return HQ_ERR;
    while (s->n_allow < n) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!(s->allow_ips[s->n_allow] = strndup(p, len)))
            return HQ_ERR;
        s->n_allow++;
        p += len + (comma ? 1 : 0);
    }
    return HQ_OK;
}

int source_from_hash(source *s, const char *id, const redisReply *h, char *err, size_t errlen) {
    int have_enabled = 0;
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2)
        return hq_seterr(err, errlen, "source %s: not a hash", id);
    snprintf(s->id, sizeof(s->id), "%s", id);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *kr = h->element[i], *vr = h->element[i + 1];
        if (kr->type != REDIS_REPLY_STRING || vr->type != REDIS_REPLY_STRING)
            return hq_seterr(err, errlen, "source %s: not a hash", id);
        const char *k = kr->str, *v = vr->str;
        int rc = HQ_OK;
        if (strcmp(k, "description") == 0) {
            rc = set_text(&s->description, v);
        } else if (strcmp(k, "enabled") == 0) {
            have_enabled = 1;
            if (parse_bool(v, &s->enabled) != HQ_OK)
                return hq_seterr(err, errlen, "source %s: field 'enabled': expected true or false",
                                 id);
        } else if (strcmp(k, "dedupe") == 0) {
            if (parse_bool(v, &s->dedupe) != HQ_OK)
                return hq_seterr(err, errlen, "source %s: field 'dedupe': expected true or false",
                                 id);
        } else if (strcmp(k, "event_type") == 0) {
            rc = set_text(&s->event_type, v);
        } else if (strcmp(k, "event_type_header") == 0) {
            rc = set_text(&s->event_type_header, v);
        } else if (strcmp(k, "event_type_prefix") == 0) {
            rc = set_text(&s->event_type_prefix, v);
        } else if (strcmp(k, "tenant") == 0) {
            rc = set_text(&s->tenant, v);
        } else if (strcmp(k, "allow_ips") == 0) {
            if (ips_from_text(s, v) != HQ_OK)
                return hq_seterr(err, errlen, "source %s: field 'allow_ips': unreadable", id);
        } else if (strcmp(k, "verification") == 0) {
            json_decref(s->verification);
            s->verification = json_loadb(vr->str, vr->len, 0, NULL);
            if (!json_is_object(s->verification))
                return hq_seterr(err, errlen, "source %s: field 'verification': not a JSON object",
                                 id);
        } else if (strcmp(k, "created_at") == 0) {
            if (ts_parse_iso(v, &s->created_at) != HQ_OK)
                return hq_seterr(err, errlen, "source %s: field 'created_at': not an ISO time", id);
        } else if (strcmp(k, "updated_at") == 0) {
            if (ts_parse_iso(v, &s->updated_at) != HQ_OK)
                return hq_seterr(err, errlen, "source %s: field 'updated_at': not an ISO time", id);
        }
        if (rc != HQ_OK)
            return hq_seterr(err, errlen, "out of memory");
    }
    if (!have_enabled)
        return hq_seterr(err, errlen, "source %s: field 'enabled' is missing", id);
    if (!s->verification)
        return hq_seterr(err, errlen, "source %s: field 'verification' is missing", id);
    if (!s->event_type == !s->event_type_header)
        return hq_seterr(err, errlen,
                         "source %s: needs exactly one of event_type and "
                         "event_type_header",
                         id);
    return HQ_OK;
}

/* ---- to the hash and to JSON ------------------------------------------------------------ */

int source_to_hash(const source *s, const char ***argv, size_t **lens, size_t *argc, char **store) {
    char created[TS_ISO_LEN], updated[TS_ISO_LEN];
    char *ips = NULL, *verif = NULL;
    size_t iplen = 0, n = 0;
    const char **a = calloc(24, sizeof(*a));
    size_t *l = calloc(24, sizeof(*l));
    *argv = NULL;
    *lens = NULL;
    *store = NULL;
    if (!a || !l)
        goto fail;
    for (size_t i = 0; i < s->n_allow; i++)
        iplen += strlen(s->allow_ips[i]) + 1;
    if (!(ips = calloc(1, iplen + 1)))
        goto fail;
    for (size_t i = 0; i < s->n_allow; i++) {
        if (i)
            strcat(ips, ",");
        strcat(ips, s->allow_ips[i]);
    }
    if (!(verif = json_dumps(s->verification, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        goto fail;
    ts_iso(s->created_at, created, sizeof(created));
    ts_iso(s->updated_at, updated, sizeof(updated));
    /* One allocation holds the texts the argv points into, so the caller frees three
     * things whatever the source holds. */
    size_t cl = strlen(created) + 1, ul = strlen(updated) + 1, il = strlen(ips) + 1,
           vl = strlen(verif) + 1;
    char *buf = malloc(cl + ul + il + vl);
    if (!buf)
        goto fail;
    memcpy(buf, created, cl);
    memcpy(buf + cl, updated, ul);
    memcpy(buf + cl + ul, ips, il);
    memcpy(buf + cl + ul + il, verif, vl);
#define PAIR(k, v)                                                                                 \
    do {                                                                                           \
        a[n] = (k);                                                                                \
        l[n] = strlen(k);                                                                          \
        n++;                                                                                       \
        a[n] = (v);                                                                                \
        l[n] = strlen(v);                                                                          \
        n++;                                                                                       \
    } while (0)
    PAIR("enabled", s->enabled ? "true" : "false");
    PAIR("dedupe", s->dedupe ? "true" : "false");
    PAIR("verification", buf + cl + ul + il);
    PAIR("created_at", buf);
    PAIR("updated_at", buf + cl);
    if (s->description)
        PAIR("description", s->description);
    if (s->event_type)
        PAIR("event_type", s->event_type);
    if (s->event_type_header)
        PAIR("event_type_header", s->event_type_header);
    if (s->event_type_prefix)
        PAIR("event_type_prefix", s->event_type_prefix);
    if (s->tenant)
        PAIR("tenant", s->tenant);
    if (s->n_allow)
        PAIR("allow_ips", buf + cl + ul);
#undef PAIR
    free(ips);
    free(verif);
    *argv = a;
    *lens = l;
    *argc = n;
    *store = buf;
    return HQ_OK;
fail:
    free(a);
    free(l);
    free(ips);
    free(verif);
    return HQ_ERR;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

/* The stored verifier as shown: re-parsed so the masking is api_verify's own. */
static json_t *verification_view(const json_t *stored, int show_secrets) {
    verify_config vc;
    char err[HQ_ERRLEN];
    json_t *out;
    if (verify_config_from_json(stored, &vc, err, sizeof(err)) != HQ_OK)
        return json_pack("{s:s}", "type", "unknown");
    out = verify_config_to_json(&vc, show_secrets);
    verify_config_clear(&vc);
    return out;
}

json_t *source_to_json(const source *s, int show_secrets) {
    char created[TS_ISO_LEN], updated[TS_ISO_LEN], url[64];
    json_t *ips = json_array();
    json_t *j;
    for (size_t i = 0; ips && i < s->n_allow; i++)
        json_array_append_new(ips, json_string(s->allow_ips[i]));
    ts_iso(s->created_at, created, sizeof(created));
    ts_iso(s->updated_at, updated, sizeof(updated));
    snprintf(url, sizeof(url), "%s%s", SOURCE_INGEST_PATH, s->id);
    j = json_pack("{s:s,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o?,s:b,s:s,s:s,s:s}", "id", s->id,
                  "description", str_or_null(s->description), "enabled", s->enabled, "event_type",
                  str_or_null(s->event_type), "event_type_header",
                  str_or_null(s->event_type_header), "event_type_prefix",
                  str_or_null(s->event_type_prefix), "tenant", str_or_null(s->tenant), "allow_ips",
                  ips, "verification", verification_view(s->verification, show_secrets), "dedupe",
                  s->dedupe, "ingest_url", url, "created_at", created, "updated_at", updated);
    return j;
}

/* ---- validation --------------------------------------------------------------------------- */

/* Name the field at fault and say why. Returns HQ_ERR. */
static int bad(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int bad(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
               const char *fmt, ...) {
    va_list ap;
    snprintf(field, fieldlen, "%s", name);
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return HQ_ERR;
}

static int tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int header_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* A string field: absent leaves *dst, null clears it when nullable, else it must be a
 * string. *present says whether the body had it. */
static int take_string(const json_t *body, const char *name, int nullable, char **dst, int *present,
                       char *field, size_t fieldlen, char *err, size_t errlen) {
    json_t *v = json_object_get(body, name);
    *present = v != NULL;
    if (!v)
        return HQ_OK;
    if (json_is_null(v) && nullable) {
        free(*dst);
        *dst = NULL;
        return HQ_OK;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return bad(field, fieldlen, name, err, errlen,
                   nullable ? "%s: must be a string or null" : "%s: must be a string", name);
    if (set_text(dst, json_string_value(v)) != HQ_OK)
        return bad(field, fieldlen, name, err, errlen, "out of memory");
    return HQ_OK;
}

static int take_bool(const json_t *body, const char *name, int *dst, char *field, size_t fieldlen,
                     char *err, size_t errlen) {
    json_t *v = json_object_get(body, name);
    if (!v)
        return HQ_OK;
    if (!json_is_boolean(v))
        return bad(field, fieldlen, name, err, errlen, "%s: must be true or false", name);
    *dst = json_is_true(v);
    return HQ_OK;
}

static int take_ips(source *s, const json_t *v, char *field, size_t fieldlen, char *err,
                    size_t errlen) {
    char why[HQ_ERRLEN];
    size_t i;
    json_t *item;
    free_ips(s);
    if (json_is_null(v))
        return HQ_OK;
    if (!json_is_array(v))
        return bad(field, fieldlen, "allow_ips", err, errlen,
                   "allow_ips: must be an array of CIDRs (\"203.0.113.0/24\") or null");
    if (json_array_size(v) > SOURCE_ALLOW_IPS_MAX)
        return bad(field, fieldlen, "allow_ips", err, errlen, "allow_ips: at most 64 entries");
    if (json_array_size(v) && !(s->allow_ips = calloc(json_array_size(v), sizeof(char *))))
        return bad(field, fieldlen, "allow_ips", err, errlen, "out of memory");
    json_array_foreach(v, i, item) {
        const char *t = json_string_value(item);
        cidr_set *cs;
        if (!t || strlen(t) > 64)
            return bad(field, fieldlen, "allow_ips", err, errlen,
                       "allow_ips: every entry must be a CIDR string of at most 64 chars");
        if (!(cs = cidr_set_new(&t, 1, why, sizeof(why)))) {
            snprintf(field, fieldlen, "allow_ips");
            return hq_seterr(err, errlen, "allow_ips[%zu]: %s", i, why);
        }
        cidr_set_free(cs);
        if (!(s->allow_ips[s->n_allow] = strdup(t)))
            return bad(field, fieldlen, "allow_ips", err, errlen, "out of memory");
        s->n_allow++;
    }
    return HQ_OK;
}

/* GET shows secrets as "****"; a client that sends a verification back as it read it
 * must not set the secret to "****". With the same type the stored value is kept (so a
 * change of tolerance needs no secret); otherwise the mask is refused. */
static int unmask(json_t *v, const json_t *stored, char *field, size_t fieldlen, char *err,
                  size_t errlen) {
    static const char *const secret_fields[] = {"secret", "password", "key", NULL};
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *stype = json_string_value(json_object_get(stored, "type"));
    int same = type && stype && strcmp(type, stype) == 0;
    for (size_t i = 0; secret_fields[i]; i++) {
        const char *f = secret_fields[i];
        const char *val = json_string_value(json_object_get(v, f));
        json_t *old = same ? json_object_get(stored, f) : NULL;
        if (!val || strcmp(val, MASK) != 0)
            continue;
        if (!old) {
            snprintf(field, fieldlen, "verification.%s", f);
            return hq_seterr(err, errlen,
                             "verification.%s: \"****\" is how answers mask it; send the "
                             "real value",
                             f);
        }
        json_object_set(v, f, old);
    }
    return HQ_OK;
}

/* "verification.secret: required ..." -> field "verification.secret". */
static void verify_field(const char *msg, char *field, size_t fieldlen) {
    size_t n = strcspn(msg, ": ");
    if (strncmp(msg, "verification", 12) != 0 || n >= fieldlen)
        n = 0;
    if (n)
        snprintf(field, fieldlen, "%.*s", (int)n, msg);
    else
        snprintf(field, fieldlen, "verification");
}

static int take_verification(source *s, const json_t *v, int creating, char *field, size_t fieldlen,
                             char *err, size_t errlen) {
    verify_config vc;
    json_t *copy, *canon;
    char why[HQ_ERRLEN];
    if (!json_is_object(v))
        return bad(field, fieldlen, "verification", err, errlen,
                   "verification: must be an object such as {\"type\":\"github\","
                   "\"secret\":\"...\"}");
    if (!(copy = json_deep_copy(v)))
        return bad(field, fieldlen, "verification", err, errlen, "out of memory");
    if (!creating && s->verification &&
        unmask(copy, s->verification, field, fieldlen, err, errlen) != HQ_OK) {
        json_decref(copy);
        return HQ_ERR;
    }
    if (verify_config_from_json(copy, &vc, why, sizeof(why)) != HQ_OK) {
        json_decref(copy);
        verify_field(why, field, fieldlen);
        return hq_seterr(err, errlen, "%s", why);
    }
    json_decref(copy);
    canon = verify_config_to_json(&vc, 1);
    verify_config_clear(&vc);
    if (!canon)
        return bad(field, fieldlen, "verification", err, errlen, "out of memory");
    json_decref(s->verification);
    s->verification = canon;
    return HQ_OK;
}

/* Whether a verifier's sender gives a delivery id to dedupe on (api_verify.h). */
static int has_delivery_id(const char *type) {
    static const char *const kinds[] = {"github", "stripe", "shopify", "slack", "standard", NULL};
    for (size_t i = 0; type && kinds[i]; i++)
        if (strcmp(type, kinds[i]) == 0)
            return 1;
    return 0;
}

int source_apply_json(source *s, const json_t *body, int creating, char *field, size_t fieldlen,
                      char *err, size_t errlen) {
    char why[HQ_ERRLEN];
    int had_type, had_header, had_prefix, unused;
    json_t *v;
    field[0] = '\0';
    if (creating)
        s->enabled = 1;
    if (take_string(body, "description", 1, &s->description, &unused, field, fieldlen, err,
                    errlen) != HQ_OK)
        return HQ_ERR;
    if (s->description && strlen(s->description) > SOURCE_DESCRIPTION_MAX)
        return bad(field, fieldlen, "description", err, errlen, "description: at most 1024 bytes");
    if (take_bool(body, "enabled", &s->enabled, field, fieldlen, err, errlen) != HQ_OK ||
        take_bool(body, "dedupe", &s->dedupe, field, fieldlen, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (take_string(body, "event_type", 1, &s->event_type, &had_type, field, fieldlen, err,
                    errlen) != HQ_OK ||
        take_string(body, "event_type_header", 1, &s->event_type_header, &had_header, field,
                    fieldlen, err, errlen) != HQ_OK ||
        take_string(body, "event_type_prefix", 1, &s->event_type_prefix, &had_prefix, field,
                    fieldlen, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (s->event_type && pat_type_valid(s->event_type, why, sizeof(why)) != HQ_OK) {
        snprintf(field, fieldlen, "event_type");
        return hq_seterr(err, errlen, "event_type: %s", why);
    }
    if (s->event_type_header && !header_name_ok(s->event_type_header))
        return bad(field, fieldlen, "event_type_header", err, errlen,
                   "event_type_header: not an HTTP header name (1..128 token characters)");
    if (s->event_type_prefix && *s->event_type_prefix == '\0') {
        free(s->event_type_prefix); /* "" is no prefix: store it as absent */
        s->event_type_prefix = NULL;
    }
    if (s->event_type_prefix) {
        char probe[SOURCE_TYPE_PREFIX_MAX + 2];
        if (strlen(s->event_type_prefix) > SOURCE_TYPE_PREFIX_MAX)
            return bad(field, fieldlen, "event_type_prefix", err, errlen,
                       "event_type_prefix: at most 64 characters");
        snprintf(probe, sizeof(probe), "%sx", s->event_type_prefix);
        if (pat_type_valid(probe, why, sizeof(why)) != HQ_OK)
            return bad(field, fieldlen, "event_type_prefix", err, errlen,
                       "event_type_prefix: must begin an event type, such as \"github.\" "
                       "([A-Za-z0-9_-] segments joined by '.' or ':')");
    }
    if (!s->event_type == !s->event_type_header) {
        /* Name the field the caller touched, so the message points at what to change. */
        const char *f = had_header && !had_type ? "event_type_header" : "event_type";
        return bad(field, fieldlen, f, err, errlen,
                   s->event_type ? "event_type and event_type_header: give exactly one (set the "
                                   "other to null)"
                                 : "event_type or event_type_header: one is required (a fixed "
                                   "type, or the header that names it)");
    }
    if (s->event_type_prefix && !s->event_type_header)
        return bad(field, fieldlen, "event_type_prefix", err, errlen,
                   "event_type_prefix: only with event_type_header");
    if (take_string(body, "tenant", 1, &s->tenant, &unused, field, fieldlen, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (s->tenant && envelope_tenant_valid(s->tenant, why, sizeof(why)) != HQ_OK) {
        snprintf(field, fieldlen, "tenant");
        return hq_seterr(err, errlen, "tenant: %s", why);
    }
    if ((v = json_object_get(body, "allow_ips")) &&
        take_ips(s, v, field, fieldlen, err, errlen) != HQ_OK)
        return HQ_ERR;
    v = json_object_get(body, "verification");
    if (!v && creating)
        return bad(field, fieldlen, "verification", err, errlen,
                   "verification: required (for example {\"type\":\"github\",\"secret\":\"...\"}; "
                   "{\"type\":\"none\"} accepts unsigned requests)");
    if (v && take_verification(s, v, creating, field, fieldlen, err, errlen) != HQ_OK)
        return HQ_ERR;
    if (s->dedupe && !has_delivery_id(json_string_value(json_object_get(s->verification, "type"))))
        return bad(field, fieldlen, "dedupe", err, errlen,
                   "dedupe: needs a verification type whose sender gives a delivery id "
                   "(github, stripe, shopify, slack, standard)");
    return HQ_OK;
}

int source_event_type(const source *s, const char *hval, char *out, size_t outlen, char *err,
                      size_t errlen) {
    char why[HQ_ERRLEN];
    const char *prefix = s->event_type_prefix ? s->event_type_prefix : "";
    size_t pl = strlen(prefix), n;
    if (s->event_type) {
        snprintf(out, outlen, "%s", s->event_type);
        return HQ_OK;
    }
    if (!hval || !*hval)
        return hq_seterr(err, errlen, "header %s is required: it names the event type",
                         s->event_type_header);
    n = strlen(hval);
    if (pl + n >= outlen)
        return hq_seterr(err, errlen, "header %s: the event type it names is too long",
                         s->event_type_header);
    memcpy(out, prefix, pl);
    for (size_t i = 0; i < n; i++) {
        char c = hval[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        out[pl + i] = ok ? c : '_';
    }
    out[pl + n] = '\0';
    if (pat_type_valid(out, why, sizeof(why)) != HQ_OK)
        return hq_seterr(err, errlen, "header %s: not usable as an event type: %s",
                         s->event_type_header, why);
    return HQ_OK;
}

void source_script(rconn_script *s, const char *name, const char *src) {
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    s->name = name;
    s->src = src;
    s->sha[0] = '\0';
    if (EVP_Digest(src, strlen(src), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return; /* EVALSHA of "" fails with NOSCRIPT, and the load then fails loudly */
    for (unsigned i = 0; i < n; i++) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha[40] = '\0';
}
