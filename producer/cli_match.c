/* cli_match.c -- the endpoint/event matching rule (see cli_match.h). */
#include <string.h>
#include "cli_match.h"
#include "pat.h"

static int unset(const char *s) {
    return !s || !*s;
}

int ep_matches(const ep *e, const char *type, const char *tenant, const char *target) {
    if (!e || !e->enabled || !e->id)
        return 0;
    if (!unset(target)) {
        if (strcmp(e->id, target) != 0)
            return 0;
    } else if (!type || !pat_list_match(&e->events, type)) {
        return 0;
    }
    if (!unset(tenant) && !unset(e->tenant) && strcmp(tenant, e->tenant) != 0)
        return 0;
    return 1;
}
