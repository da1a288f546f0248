/* redis_keys.c -- the one place Redis key names are built (docs/keys.md is the reference). */
#include "redis_keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hq.h"

/* All builders funnel through here so a too-small buffer never leaves a truncated key
 * behind: a cut-off name would silently address a different key. */
static int key_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int key_fmt(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || len == 0)
        return HQ_ERR;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return HQ_ERR;
    }
    return HQ_OK;
}

int key_events(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:events", prefix);
}

int key_jobs(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:jobs", prefix);
}

int key_delay(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:delay", prefix);
}

int key_dead(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:dead", prefix);
}

int key_idem(const char *prefix, const char *event_id, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:idem:%s", prefix, event_id);
}

int key_endpoints(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:endpoints", prefix);
}

int key_ep_version(const char *prefix, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{q}:endpoints:version", prefix);
}

int key_ep_part(const char *prefix, const char *ep_id, const char *part, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{%s}:%s", prefix, ep_id, part);
}

/* Endpoint ids already start with "ep_", so the hash tag is the id itself: {ep_01J...}. */
int key_endpoint(const char *prefix, const char *ep_id, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{%s}:endpoint", prefix, ep_id);
}

int key_failures(const char *prefix, const char *ep_id, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{%s}:failures", prefix, ep_id);
}

int key_log(const char *prefix, const char *ep_id, char *buf, size_t len) {
    return key_fmt(buf, len, "%s:{%s}:log", prefix, ep_id);
}

static int key_prefix_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int key_prefix_valid(const char *prefix, char *err, size_t errlen) {
    if (!prefix || prefix[0] == '\0')
        return hq_seterr(err, errlen, "bad key prefix: empty");
    size_t n = strlen(prefix);
    if (n > KEY_PREFIX_MAX)
        return hq_seterr(err, errlen, "bad key prefix: %zu chars, at most %d allowed", n,
                         KEY_PREFIX_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)prefix[i];
        if (key_prefix_char_ok((char)c))
            continue;
        /* Braces would change the cluster hash tag and ':' the key layout. */
        if (c >= 0x20 && c < 0x7f)
            return hq_seterr(
                err, errlen,
                "bad key prefix '%s': character '%c' not allowed (use A-Z a-z 0-9 _ . -)", prefix,
                c);
        return hq_seterr(
            err, errlen,
            "bad key prefix: byte 0x%02x at position %zu not allowed (use A-Z a-z 0-9 _ . -)", c,
            i);
    }
    return HQ_OK;
}
