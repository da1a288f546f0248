/* event_pattern.c -- event types, subscription patterns and comma-separated pattern lists. */
#include "event_pattern.h"

#include <stdlib.h>
#include <string.h>

#include "hq.h"

/* Messages echo at most this much of the input so the reason always fits. */
#define PAT_ECHO 64

static int pat_seg_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int pat_sep(char c) {
    return c == '.' || c == ':';
}

/* Checks n bytes of s as segments joined by single separators. `what` names the thing
 * in messages ("event type" or "pattern"); `full` is what gets echoed. */
static int pat_segments_valid(const char *s, size_t n, const char *what, const char *full,
                              char *err, size_t errlen) {
    if (n == 0)
        return hq_seterr(err, errlen, "bad %s: empty", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (pat_seg_char((char)c))
            continue;
        if (pat_sep((char)c)) {
            if (i == 0)
                return hq_seterr(err, errlen, "bad %s '%.*s': starts with '%c'", what, PAT_ECHO,
                                 full, c);
            if (i + 1 == n)
                return hq_seterr(err, errlen, "bad %s '%.*s': ends with '%c'", what, PAT_ECHO, full,
                                 c);
            if (pat_sep(s[i + 1]))
                return hq_seterr(err, errlen, "bad %s '%.*s': empty segment at position %zu", what,
                                 PAT_ECHO, full, i + 1);
            continue;
        }
        if (c == '*')
            return hq_seterr(err, errlen,
                             "bad %s '%.*s': '*' only allowed alone or as the last segment "
                             "after '.' or ':' (e.g. task:*)",
                             what, PAT_ECHO, full);
        if (c >= 0x20 && c < 0x7f)
            return hq_seterr(err, errlen,
                             "bad %s '%.*s': character '%c' not allowed (use A-Z a-z 0-9 _ - "
                             "joined by . or :)",
                             what, PAT_ECHO, full, c);
        return hq_seterr(err, errlen, "bad %s: byte 0x%02x at position %zu not allowed", what, c,
                         i);
    }
    return HQ_OK;
}

int pat_type_valid(const char *type, char *err, size_t errlen) {
    if (!type)
        return hq_seterr(err, errlen, "bad event type: empty");
    size_t n = strnlen(type, PAT_MAX + 1);
    if (n > PAT_MAX)
        return hq_seterr(err, errlen, "bad event type '%.*s...': longer than %d chars", PAT_ECHO,
                         type, PAT_MAX);
    return pat_segments_valid(type, n, "event type", type, err, errlen);
}

int pat_valid(const char *pattern, char *err, size_t errlen) {
    if (!pattern)
        return hq_seterr(err, errlen, "bad pattern: empty");
    size_t n = strnlen(pattern, PAT_MAX + 1);
    if (n > PAT_MAX)
        return hq_seterr(err, errlen, "bad pattern '%.*s...': longer than %d chars", PAT_ECHO,
                         pattern, PAT_MAX);
    if (n == 1 && pattern[0] == '*')
        return HQ_OK;
    /* A prefix pattern is a valid type, a separator, then '*'. */
    if (n >= 2 && pattern[n - 1] == '*') {
        if (!pat_sep(pattern[n - 2]))
            return hq_seterr(err, errlen,
                             "bad pattern '%.*s': '*' must follow '.' or ':' (e.g. task:*)",
                             PAT_ECHO, pattern);
        if (n == 2)
            return hq_seterr(err, errlen, "bad pattern '%.*s': nothing before '%c*'", PAT_ECHO,
                             pattern, pattern[0]);
        if (pat_sep(pattern[n - 3]))
            return hq_seterr(err, errlen, "bad pattern '%.*s': empty segment before '*'", PAT_ECHO,
                             pattern);
        return pat_segments_valid(pattern, n - 2, "pattern", pattern, err, errlen);
    }
    return pat_segments_valid(pattern, n, "pattern", pattern, err, errlen);
}

int pat_match(const char *pattern, const char *type) {
    if (!pattern || !type)
        return 0;
    size_t n = strlen(pattern);
    if (n == 1 && pattern[0] == '*')
        return 1;
    if (n >= 2 && pattern[n - 1] == '*') {
        /* The prefix keeps its separator, so "task:*" neither matches "task" nor
         * "tasks:x" nor "task.x"; anything after it is a non-empty segment chain. */
        size_t plen = n - 1;
        return strlen(type) > plen && strncmp(pattern, type, plen) == 0;
    }
    return strcmp(pattern, type) == 0;
}

void pat_list_clear(pat_list *l) {
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int pat_space(char c) {
    return c == ' ' || c == '\t';
}

int pat_list_parse(const char *csv, pat_list *out, char *err, size_t errlen) {
    pat_list l = {NULL, 0};
    int rc = HQ_ERR;
    if (!out)
        return hq_seterr(err, errlen, "bad pattern list: no output");
    out->items = NULL;
    out->n = 0;
    if (!csv)
        return hq_seterr(err, errlen, "bad pattern list: empty");

    /* Count items before allocating anything, so a huge list costs nothing. */
    size_t count = 1;
    for (const char *p = csv; *p; p++) {
        if (*p == ',' && ++count > PAT_LIST_MAX)
            return hq_seterr(err, errlen, "bad pattern list: more than %d patterns", PAT_LIST_MAX);
    }
    l.items = calloc(count, sizeof *l.items);
    if (!l.items)
        return hq_seterr(err, errlen, "out of memory");

    const char *p = csv;
    for (size_t idx = 1;; idx++) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && pat_space(*a))
            a++;
        while (b > a && pat_space(b[-1]))
            b--;
        size_t len = (size_t)(b - a);
        if (len == 0) {
            hq_seterr(err, errlen, "bad pattern list '%.*s': item %zu is empty", PAT_ECHO, csv,
                      idx);
            goto cleanup;
        }
        if (len > PAT_MAX) {
            hq_seterr(err, errlen, "bad pattern list: item %zu is longer than %d chars", idx,
                      PAT_MAX);
            goto cleanup;
        }
        char *item = malloc(len + 1);
        if (!item) {
            hq_seterr(err, errlen, "out of memory");
            goto cleanup;
        }
        memcpy(item, a, len);
        item[len] = '\0';
        l.items[l.n++] = item;
        if (pat_valid(item, err, errlen) != HQ_OK)
            goto cleanup;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *out = l;
    l.items = NULL;
    l.n = 0;
    rc = HQ_OK;
cleanup:
    pat_list_clear(&l);
    return rc;
}

int pat_list_match(const pat_list *l, const char *type) {
    if (!l)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        if (pat_match(l->items[i], type))
            return 1;
    }
    return 0;
}

char *pat_list_join(const pat_list *l) {
    size_t total = 1;
    size_t n = l ? l->n : 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(l->items[i]) + 1;
    char *s = malloc(total);
    if (!s)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            s[off++] = ',';
        size_t len = strlen(l->items[i]);
        memcpy(s + off, l->items[i], len);
        off += len;
    }
    s[off] = '\0';
    return s;
}
