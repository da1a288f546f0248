/* cli_lanes.h -- what `hookq endpoint show` and `enable --discard-held` read and change in
 * an endpoint's lanes (P:{ID}:lane:*, ready, leases, tries, state, lanekeys, health; the
 * layout is docs/policies.md's). */
#ifndef HQ_CLI_LANES_H
#define HQ_CLI_LANES_H
#include <jansson.h>
#include "cli.h"
#include "endpoint.h"

/* The most order keys `show` lists one by one. */
#define CLI_LANES_SHOW_KEYS 50

/* Add to view (ep_to_json's object for e) what the endpoint's keys say: "breaker_opened_at"
 * and "health" (the breaker's window, null if none), and, when e claims from lanes,
 * "lanes": in_flight, backlog, dropped, dropped_disabled, pause_until, keys_total and, for
 * an ordered endpoint, "keys": up to CLI_LANES_SHOW_KEYS objects (key, backlog, head,
 * attempts, next_attempt, in_flight, position). Lane ids are shown as stream ids. CLI_OK,
 * or CLI_FAIL with x->err set. */
int cli_lanes_view(cli *x, const ep *e, json_t *view);

/* Print the parts cli_lanes_view added, as `show`'s human output. */
void cli_lanes_print(cli *x, const json_t *view);

/* Delete the jobs held in the endpoint's lanes: every lane of lanekeys, lanekeys, ready,
 * the attempt counts and state's n and h:<key> marks, in one MULTI. Jobs in flight (the
 * leases) are kept and finish: so are their attempt counts and the h:<key> mark of an
 * ordered key whose head is out, so that key still has one delivery in flight at most.
 * *discarded: how many jobs were deleted. CLI_OK, or CLI_FAIL with x->err set. */
int cli_lanes_discard(cli *x, const char *id, long long *discarded);

#endif
