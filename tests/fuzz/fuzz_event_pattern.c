/* fuzz_event_pattern.c -- event types, patterns and pattern lists. Checks the properties the
 * fanout relies on: "*" and a type itself always match a valid type, and a parsed list
 * joins to a canonical form that parses back to the same list. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "event_pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char err[HQ_ERRLEN];
    if (len > 4096)
        return 0;
    /* input is "pattern\ntype" (or just one string used as both) */
    char *s = malloc(len + 1);
    if (!s)
        return 0;
    memcpy(s, buf, len);
    s[len] = '\0';
    char *type = strchr(s, '\n');
    char *pattern = s;
    if (type)
        *type++ = '\0';
    else
        type = s;

    int tv = pat_type_valid(type, err, sizeof(err)) == HQ_OK;
    int pv = pat_valid(pattern, err, sizeof(err)) == HQ_OK;
    if (tv) {
        if (!pat_match("*", type) || !pat_match(type, type))
            abort();
        if (pat_valid(type, err, sizeof(err)) != HQ_OK) /* a type is an exact pattern */
            abort();
    }
    if (tv && pv)
        (void)pat_match(pattern, type);

    pat_list l = {0}, l2 = {0};
    if (pat_list_parse(pattern, &l, err, sizeof(err)) == HQ_OK) {
        char *j = pat_list_join(&l);
        if (!j)
            abort();
        if (pat_list_parse(j, &l2, err, sizeof(err)) != HQ_OK || l2.n != l.n)
            abort();
        for (size_t i = 0; i < l.n; i++) {
            if (strcmp(l.items[i], l2.items[i]) != 0 ||
                pat_valid(l.items[i], err, sizeof(err)) != HQ_OK)
                abort();
        }
        if (tv)
            (void)pat_list_match(&l, type);
        free(j);
        pat_list_clear(&l2);
    }
    pat_list_clear(&l);
    free(s);
    return 0;
}
