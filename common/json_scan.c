/* json_scan.c -- the JSON syntax scanner (json_scan.h says what it accepts).
 *
 * A state machine over the bytes rather than recursive descent: the open containers are
 * a bitset (1 = object), so nesting costs one bit, not a stack frame, and hostile input
 * cannot exhaust the stack. Strings dominate real payloads, so plain ASCII runs inside
 * them are skipped eight bytes at a time. */
#include "json_scan.h"

#include <stdint.h>
#include <string.h>

#include "hq.h"

typedef struct scanner {
    const unsigned char *s;
    size_t len, i;
    int max_depth;
    json_scan_result res;
} scanner;

static int fail(scanner *sc, json_scan_kind kind, size_t at, const char *what) {
    sc->res.kind = kind;
    sc->res.at = at;
    sc->res.what = what;
    return HQ_ERR;
}

/* A byte that does not surprise us where a token may start: reports a NUL as such, so
 * "contains a NUL byte" wins over a vaguer syntax error wherever the NUL is. */
static int unexpected(scanner *sc, const char *what) {
    if (sc->i < sc->len && sc->s[sc->i] == '\0')
        return fail(sc, JSON_SCAN_NUL, sc->i, NULL);
    return fail(sc, JSON_SCAN_SYNTAX, sc->i, what);
}

static void skip_ws(scanner *sc) {
    while (sc->i < sc->len) {
        unsigned char c = sc->s[sc->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        sc->i++;
    }
}

static int hex4(const unsigned char *p, unsigned *out) {
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

#define ONES8 0x0101010101010101ULL
#define HIGH8 0x8080808080808080ULL

/* Nonzero if any of the 8 bytes in v may end a run of plain string bytes: '"', '\\',
 * a control char or a non-ASCII byte. False positives only cost the byte loop. */
static uint64_t special8(uint64_t v) {
    uint64_t q = v ^ (ONES8 * '"'), b = v ^ (ONES8 * '\\');
    uint64_t any = ((q - ONES8) & ~q) | ((b - ONES8) & ~b) | (v - ONES8 * 0x20) | v;
    return any & HIGH8;
}

/* A string; sc->i is at the opening quote. */
static int scan_string(scanner *sc) {
    const unsigned char *s = sc->s;
    size_t len = sc->len, start = sc->i, i = sc->i + 1;
    for (;;) {
        while (len - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (special8(v))
                break;
            i += 8;
        }
        while (i < len && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
            i++;
        if (i >= len)
            return fail(sc, JSON_SCAN_SYNTAX, start, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') {
            sc->i = i + 1;
            return HQ_OK;
        }
        if (c == '\\') {
            if (i + 1 >= len)
                return fail(sc, JSON_SCAN_SYNTAX, start, "unterminated string");
            c = s[i + 1];
            if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                c == 't') {
                i += 2;
                continue;
            }
            if (c == '\0')
                return fail(sc, JSON_SCAN_NUL, i + 1, NULL);
            if (c != 'u')
                return fail(sc, JSON_SCAN_SYNTAX, i, "invalid escape in string");
            unsigned cp, lo;
            if (len - i < 6 || hex4(s + i + 2, &cp) != HQ_OK)
                return fail(sc, JSON_SCAN_SYNTAX, i, "\\u must be followed by 4 hex digits");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(sc, JSON_SCAN_SYNTAX, i, "\\u low surrogate without a high one");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* a high surrogate only counts as half of a \uD8xx\uDCxx pair */
                if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                    hex4(s + i + 8, &lo) != HQ_OK || lo < 0xdc00 || lo > 0xdfff)
                    return fail(sc, JSON_SCAN_SYNTAX, i, "\\u high surrogate without a low one");
                i += 12;
            } else {
                i += 6;
            }
            continue;
        }
        if (c == '\0')
            return fail(sc, JSON_SCAN_NUL, i, NULL);
        if (c < 0x20)
            return fail(sc, JSON_SCAN_SYNTAX, i, "control character in string (escape it)");
        size_t n = utf8_seq(s + i, len - i);
        if (!n)
            return fail(sc, JSON_SCAN_UTF8, i, NULL);
        i += n;
    }
}

static int digit_at(const scanner *sc, size_t i) {
    return i < sc->len && sc->s[i] >= '0' && sc->s[i] <= '9';
}

/* A number per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, any magnitude
 * (only the syntax matters: the text is forwarded verbatim). */
static int scan_number(scanner *sc) {
    size_t i = sc->i;
    if (sc->s[i] == '-')
        i++;
    if (!digit_at(sc, i))
        return fail(sc, JSON_SCAN_SYNTAX, i, "expected a digit");
    if (sc->s[i] == '0') {
        i++;
        if (digit_at(sc, i))
            return fail(sc, JSON_SCAN_SYNTAX, i, "leading zeros are not allowed");
    } else {
        while (digit_at(sc, i))
            i++;
    }
    if (i < sc->len && sc->s[i] == '.') {
        i++;
        if (!digit_at(sc, i))
            return fail(sc, JSON_SCAN_SYNTAX, i, "expected a digit after '.'");
        while (digit_at(sc, i))
            i++;
    }
    if (i < sc->len && (sc->s[i] == 'e' || sc->s[i] == 'E')) {
        i++;
        if (i < sc->len && (sc->s[i] == '+' || sc->s[i] == '-'))
            i++;
        if (!digit_at(sc, i))
            return fail(sc, JSON_SCAN_SYNTAX, i, "expected a digit in the exponent");
        while (digit_at(sc, i))
            i++;
    }
    sc->i = i;
    return HQ_OK;
}

static int scan_literal(scanner *sc, const char *word, size_t n) {
    if (sc->len - sc->i < n || memcmp(sc->s + sc->i, word, n) != 0)
        return unexpected(sc, "expected a value");
    sc->i += n;
    return HQ_OK;
}

/* One scalar value at sc->i (containers are handled by the caller's loop). */
static int scan_scalar(scanner *sc) {
    if (sc->i >= sc->len)
        return fail(sc, JSON_SCAN_SYNTAX, sc->i, "unexpected end, expected a value");
    switch (sc->s[sc->i]) {
    case '"':
        return scan_string(sc);
    case 't':
        return scan_literal(sc, "true", 4);
    case 'f':
        return scan_literal(sc, "false", 5);
    case 'n':
        return scan_literal(sc, "null", 4);
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
        return scan_number(sc);
    default:
        return unexpected(sc, "expected a value");
    }
}

/* Exactly one value with optional whitespace around it. */
static int scan_text(scanner *sc) {
    uint64_t is_obj[JSON_SCAN_DEPTH_MAX / 64] = {0};
    int depth = 0;
    enum { ST_VALUE, ST_KEY, ST_AFTER } st = ST_VALUE;
    skip_ws(sc);
    for (;;) {
        if (st == ST_VALUE) {
            unsigned char c = sc->i < sc->len ? sc->s[sc->i] : 0;
            if (sc->i < sc->len && (c == '[' || c == '{')) {
                if (depth >= sc->max_depth)
                    return fail(sc, JSON_SCAN_DEPTH, sc->i, NULL);
                uint64_t bit = 1ULL << (depth % 64);
                if (c == '{')
                    is_obj[depth / 64] |= bit;
                else
                    is_obj[depth / 64] &= ~bit;
                depth++;
                sc->i++;
                skip_ws(sc);
                if (sc->i < sc->len && sc->s[sc->i] == (c == '{' ? '}' : ']')) {
                    sc->i++;
                    depth--;
                    st = ST_AFTER;
                } else {
                    st = c == '{' ? ST_KEY : ST_VALUE;
                }
                continue;
            }
            if (scan_scalar(sc) != HQ_OK)
                return HQ_ERR;
            st = ST_AFTER;
        } else if (st == ST_KEY) {
            if (sc->i >= sc->len || sc->s[sc->i] != '"')
                return unexpected(sc, "expected a string key");
            if (scan_string(sc) != HQ_OK)
                return HQ_ERR;
            skip_ws(sc);
            if (sc->i >= sc->len || sc->s[sc->i] != ':')
                return unexpected(sc, "expected ':'");
            sc->i++;
            skip_ws(sc);
            st = ST_VALUE;
        } else {
            skip_ws(sc);
            if (depth == 0) {
                if (sc->i < sc->len)
                    return unexpected(sc, "unexpected data after the value");
                return HQ_OK;
            }
            int obj = (int)(is_obj[(depth - 1) / 64] >> ((depth - 1) % 64) & 1);
            unsigned char c = sc->i < sc->len ? sc->s[sc->i] : 0;
            if (sc->i < sc->len && c == ',') {
                sc->i++;
                skip_ws(sc);
                st = obj ? ST_KEY : ST_VALUE;
            } else if (sc->i < sc->len && c == (obj ? '}' : ']')) {
                sc->i++;
                depth--;
            } else {
                return unexpected(sc, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            }
        }
    }
}

int json_scan_check(const char *s, size_t len, int max_depth, json_scan_result *res, char *err,
                    size_t errlen) {
    if (max_depth < 0)
        max_depth = 0;
    if (max_depth > JSON_SCAN_DEPTH_MAX)
        max_depth = JSON_SCAN_DEPTH_MAX;
    scanner sc = {.s = (const unsigned char *)s, .len = len, .max_depth = max_depth};
    int rc = scan_text(&sc);
    if (res)
        *res = sc.res; /* zeroed = JSON_SCAN_OK on success */
    if (rc == HQ_OK)
        return HQ_OK;
    switch (sc.res.kind) {
    case JSON_SCAN_NUL:
        return hq_seterr(err, errlen, "contains a NUL byte at offset %zu", sc.res.at);
    case JSON_SCAN_UTF8:
        return hq_seterr(err, errlen, "invalid UTF-8 at offset %zu", sc.res.at);
    case JSON_SCAN_DEPTH:
        return hq_seterr(err, errlen, "JSON nested deeper than %d levels", max_depth);
    default:
        if (sc.res.at >= len)
            return hq_seterr(err, errlen, "invalid JSON at byte %zu (end): %s", sc.res.at,
                             sc.res.what);
        return hq_seterr(err, errlen, "invalid JSON at byte %zu: %s", sc.res.at, sc.res.what);
    }
}
