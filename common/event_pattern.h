/* event_pattern.h -- event types and the patterns endpoints subscribe with.
 *
 * An event type is 1..128 chars of [A-Za-z0-9_-] in segments separated by '.' or ':'
 * ("task:transition", "message.received", "invoice.paid.v2").
 * A pattern is "*" (everything), an exact type, or a type prefix ending in a separator
 * and "*" ("task:*", "message.*"): it matches types that start with that prefix
 * (including deeper ones: "message.*" matches "message.received.v2"). "*" anywhere else
 * is invalid. */
#ifndef HQ_EVENT_PATTERN_H
#define HQ_EVENT_PATTERN_H
#include <stddef.h>

#define PAT_MAX 128

int pat_type_valid(const char *type, char *err, size_t errlen);
int pat_valid(const char *pattern, char *err, size_t errlen);
/* 1 if type matches pattern, else 0. Both assumed valid. */
int pat_match(const char *pattern, const char *type);

/* A pattern list: comma-separated patterns, spaces around commas ignored, no empty
 * items, at most PAT_LIST_MAX items. Default for endpoints without --events: "*". */
#define PAT_LIST_MAX 256
typedef struct pat_list {
    char **items;
    size_t n;
} pat_list;
int pat_list_parse(const char *csv, pat_list *out, char *err, size_t errlen); /* out owns copies */
void pat_list_clear(pat_list *l);                                             /* NULL-safe */
int pat_list_match(const pat_list *l, const char *type);
/* Canonical "a,b,c" form (malloc'd, caller frees). */
char *pat_list_join(const pat_list *l);

#endif
