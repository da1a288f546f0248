/* units.c -- durations ("1h30m") and byte sizes ("1MiB") from config and flags. */
#include "units.h"

#include <stdio.h>
#include <string.h>

#include "hq.h"

/* The cap keeps ms * 1e6 (nanoseconds) inside int64, so callers may convert a parsed
 * duration to any finer unit without checking: about 292 years. */
#define DUR_MAX_MS (INT64_MAX / 1000000)

/* Long inputs are cut in messages so the interesting part (the reason) always fits. */
#define DUR_ECHO 40

typedef struct units_unit {
    const char *name;
    int64_t ms;
} units_unit;

static const units_unit units_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

static int units_isdigit(char c) {
    return c >= '0' && c <= '9';
}

static int units_isalpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Echo a character of user input readably (control bytes as hex). */
static void units_charname(unsigned char c, char *out, size_t len) {
    if (c >= 0x21 && c < 0x7f)
        snprintf(out, len, "'%c'", c);
    else if (c == ' ')
        snprintf(out, len, "' ' (space)");
    else
        snprintf(out, len, "byte 0x%02x", c);
}

/* Reads digits at *p into *v; HQ_ERR with *v untouched on overflow past max. */
static int units_number(const char **p, uint64_t max, uint64_t *v) {
    uint64_t n = 0;
    const char *s = *p;
    while (units_isdigit(*s)) {
        uint64_t d = (uint64_t)(*s - '0');
        if (n > (max - d) / 10)
            return HQ_ERR;
        n = n * 10 + d;
        s++;
    }
    *p = s;
    *v = n;
    return HQ_OK;
}

int units_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen) {
    if (!s || s[0] == '\0')
        return hq_seterr(err, errlen, "bad duration: empty (use e.g. 500ms, 30s, 2m, 1h30m, 7d)");
    const char *p = s;
    int64_t total = 0;
    int bare = 1;
    while (*p) {
        if (!units_isdigit(*p)) {
            char cn[32];
            units_charname((unsigned char)*p, cn, sizeof cn);
            if (p == s && (*p == '-' || *p == '+'))
                return hq_seterr(err, errlen, "bad duration '%.*s': no sign allowed", DUR_ECHO, s);
            if (units_isalpha(*p))
                return hq_seterr(err, errlen, "bad duration '%.*s': missing number before unit",
                                 DUR_ECHO, s);
            return hq_seterr(err, errlen, "bad duration '%.*s': unexpected %s", DUR_ECHO, s, cn);
        }
        uint64_t n;
        if (units_number(&p, (uint64_t)DUR_MAX_MS, &n) != HQ_OK)
            return hq_seterr(err, errlen,
                             "bad duration '%.*s': too large (limit is about 292 years)", DUR_ECHO,
                             s);
        const char *u = p;
        while (units_isalpha(*p))
            p++;
        size_t ulen = (size_t)(p - u);
        if (ulen == 0) {
            /* Only a whole string of digits is "seconds"; "1h30" is ambiguous. */
            if (*p == '\0' && bare) {
                if (n > (uint64_t)(DUR_MAX_MS / 1000))
                    return hq_seterr(err, errlen,
                                     "bad duration '%.*s': too large (limit is about 292 years)",
                                     DUR_ECHO, s);
                *ms = (int64_t)n * 1000;
                return HQ_OK;
            }
            if (*p == '\0')
                return hq_seterr(err, errlen, "bad duration '%.*s': missing unit after %llu",
                                 DUR_ECHO, s, (unsigned long long)n);
            if (*p == '.' || *p == ',')
                return hq_seterr(err, errlen, "bad duration '%.*s': no fractions (write 1s500ms)",
                                 DUR_ECHO, s);
            char cn[32];
            units_charname((unsigned char)*p, cn, sizeof cn);
            return hq_seterr(err, errlen, "bad duration '%.*s': unexpected %s", DUR_ECHO, s, cn);
        }
        int64_t mult = 0;
        for (size_t i = 0; i < sizeof units_units / sizeof units_units[0]; i++) {
            if (strlen(units_units[i].name) == ulen && memcmp(units_units[i].name, u, ulen) == 0) {
                mult = units_units[i].ms;
                break;
            }
        }
        if (mult == 0)
            return hq_seterr(err, errlen,
                             "bad duration '%.*s': unknown unit '%.*s' (use ms, s, m, h or d)",
                             DUR_ECHO, s, ulen > 16 ? 16 : (int)ulen, u);
        if (n > (uint64_t)((DUR_MAX_MS - total) / mult))
            return hq_seterr(err, errlen,
                             "bad duration '%.*s': too large (limit is about 292 years)", DUR_ECHO,
                             s);
        total += (int64_t)n * mult;
        bare = 0;
    }
    *ms = total;
    return HQ_OK;
}

void units_format_duration(int64_t ms, char *buf, size_t len) {
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    /* Unsigned magnitude so INT64_MIN does not overflow on negation. */
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    size_t off = 0;
    if (ms < 0) {
        int n = snprintf(buf, len, "-");
        off = (size_t)n < len ? (size_t)n : len - 1;
    }
    for (size_t i = 0; i < sizeof units_units / sizeof units_units[0]; i++) {
        uint64_t u = (uint64_t)units_units[i].ms;
        uint64_t q = v / u;
        if (q == 0)
            continue;
        v -= q * u;
        int n =
            snprintf(buf + off, len - off, "%llu%s", (unsigned long long)q, units_units[i].name);
        if (n < 0 || (size_t)n >= len - off)
            return; /* truncated but NUL-terminated */
        off += (size_t)n;
    }
}

typedef struct size_unit {
    const char *name; /* compared case-insensitively */
    uint64_t mult;
} size_unit;

static const size_unit size_units[] = {
    {"b", 1ULL},         {"kib", 1ULL << 10},   {"mib", 1ULL << 20},
    {"gib", 1ULL << 30}, {"tib", 1ULL << 40},   {"kb", 1000ULL},
    {"mb", 1000000ULL},  {"gb", 1000000000ULL}, {"tb", 1000000000000ULL},
};

static int size_unit_eq(const char *name, const char *u, size_t ulen) {
    if (strlen(name) != ulen)
        return 0;
    for (size_t i = 0; i < ulen; i++) {
        char c = u[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != name[i])
            return 0;
    }
    return 1;
}

int units_parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen) {
    if (!s || s[0] == '\0')
        return hq_seterr(err, errlen, "bad size: empty (use e.g. 65536, 512KiB, 1MiB)");
    const char *p = s;
    if (!units_isdigit(*p)) {
        if (*p == '-' || *p == '+')
            return hq_seterr(err, errlen, "bad size '%.*s': no sign allowed", DUR_ECHO, s);
        return hq_seterr(err, errlen, "bad size '%.*s': must start with a number", DUR_ECHO, s);
    }
    uint64_t n;
    if (units_number(&p, UINT64_MAX, &n) != HQ_OK)
        return hq_seterr(err, errlen, "bad size '%.*s': too large", DUR_ECHO, s);
    if (*p == '.' || *p == ',')
        return hq_seterr(err, errlen, "bad size '%.*s': no fractions (write 1536KiB)", DUR_ECHO, s);
    /* "1 MiB" is how people write it in YAML; a space there is harmless. */
    while (*p == ' ')
        p++;
    const char *u = p;
    while (units_isalpha(*p))
        p++;
    size_t ulen = (size_t)(p - u);
    if (*p != '\0') {
        char cn[32];
        units_charname((unsigned char)*p, cn, sizeof cn);
        return hq_seterr(err, errlen, "bad size '%.*s': unexpected %s", DUR_ECHO, s, cn);
    }
    uint64_t mult = 1;
    if (ulen > 0) {
        mult = 0;
        for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
            if (size_unit_eq(size_units[i].name, u, ulen)) {
                mult = size_units[i].mult;
                break;
            }
        }
        if (mult == 0)
            return hq_seterr(
                err, errlen,
                "bad size '%.*s': unknown unit '%.*s' (use B, KiB, MiB, GiB, KB, MB, GB)", DUR_ECHO,
                s, ulen > 16 ? 16 : (int)ulen, u);
    }
    if (n > UINT64_MAX / mult)
        return hq_seterr(err, errlen, "bad size '%.*s': too large", DUR_ECHO, s);
    *bytes = n * mult;
    return HQ_OK;
}
