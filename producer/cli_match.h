/* cli_match.h -- which endpoints receive an event. The one definition of the rule, meant
 * to move into common/ep.c so the worker's fanout and `hookq retry` cannot disagree.
 *
 * An endpoint receives an event when it is enabled, and
 *   - the event targets an endpoint (field `endpoint`): the endpoint's id equals it;
 *   - otherwise: one of the endpoint's patterns matches the event type;
 * and the event has no tenant, or the endpoint has none, or they are equal. */
#ifndef HQ_CLI_MATCH_H
#define HQ_CLI_MATCH_H
#include "ep.h"

/* 1 if e receives an event of this type/tenant/target (tenant, target may be NULL or
 * empty = unset), else 0. */
int ep_matches(const ep *e, const char *type, const char *tenant, const char *target);

#endif
