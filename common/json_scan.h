/* json_scan.h -- is this text exactly one JSON value? A syntax-only check (RFC 8259).
 *
 * For text that is checked and then forwarded verbatim (event data): one pass over the
 * bytes, no allocation, no recursion and no tree, so it is cheap enough to run once per
 * event on the worker's hot path. jansson (json_*) is the parser for values we read.
 *
 * Accepted: exactly one value with optional whitespace around it; numbers of any size;
 * \u0000 escapes; duplicate object keys (they are valid JSON, and the text is not ours).
 * Refused: invalid UTF-8 (RFC 3629: overlong forms, surrogates, above U+10FFFF, truncated
 * sequences), a NUL byte anywhere, raw control characters in strings, \u surrogates that
 * are not a high-low pair, anything after the value, and empty text. */
#ifndef HQ_JSON_SCAN_H
#define HQ_JSON_SCAN_H
#include <stddef.h>

/* Deepest nesting that can be checked: the open containers are a fixed bitset. */
#define JSON_SCAN_DEPTH_MAX 1024

typedef enum json_scan_kind {
    JSON_SCAN_OK = 0,
    JSON_SCAN_SYNTAX, /* not JSON: `what` says what was expected or found */
    JSON_SCAN_UTF8,   /* an invalid UTF-8 sequence starts at `at` */
    JSON_SCAN_NUL,    /* a NUL byte at `at` (raw, or escaped as "\<NUL>") */
    JSON_SCAN_DEPTH,  /* the container opened at `at` is one level too deep */
} json_scan_kind;

typedef struct json_scan_result {
    json_scan_kind kind;
    size_t at;        /* byte offset where the problem starts; len if the text ended early */
    const char *what; /* JSON_SCAN_SYNTAX: a static phrase ("expected ':'"), else NULL */
} json_scan_result;

/* Check that s[0..len) is one JSON value nested at most max_depth containers deep
 * (clamped to 0..JSON_SCAN_DEPTH_MAX; 0 allows only a scalar). s need not be
 * NUL-terminated and may be NULL if len is 0. Reads nothing outside s[0..len).
 * HQ_OK, or HQ_ERR with the problem in *res (if res is not NULL) and as a message in err:
 *   "invalid JSON at byte 7: expected ',' or '}'"   (" (end)" after the number if at == len)
 *   "invalid UTF-8 at offset 5"   "contains a NUL byte at offset 2"
 *   "JSON nested deeper than 32 levels" */
int json_scan_check(const char *s, size_t len, int max_depth, json_scan_result *res, char *err,
                    size_t errlen);

#endif
