/* lane.h -- the names and the calls of an endpoint's lanes (docs/policies.md): lane ids,
 * order keys, lease members, and the lane_push.lua / lane_settle.lua calls as pipeline
 * commands. Pure apart from appending to a pipeline; the stages (fanout, results, lanes)
 * send them. */
#ifndef HQ_LANE_H
#define HQ_LANE_H
#include <stddef.h>
#include <stdint.h>
#include "endpoint.h"
#include "envelope.h"
#include "pipeline.h"

#define LANE_ID_LEN  42  /* "%020llu-%020llu" + NUL */
#define LANE_KEY_MAX 129 /* an order key (EP_ORDER_KEY_MAX bytes) + NUL */
/* "<lane id>\t<order key>\t<worker>" + NUL */
#define LANE_MEMBER_MAX (LANE_ID_LEN + LANE_KEY_MAX + 160)

/* Events stream id "1764600000000-5" -> lane id "00000001764600000000-00000000000000000005",
 * whose byte order is publish order. HQ_ERR if sid is not a stream id. */
int lane_id_of(const char *sid, char lid[LANE_ID_LEN]);
/* Back: lane id -> stream id. HQ_ERR if lid is not a lane id. */
int lane_sid_of(const char *lid, char *sid, size_t len);

/* The order key of an event for endpoint e (docs/policies.md): "" unless e is ordered
 * with an order_key; then the event's tenant, or the top-level field of its data (a
 * string as is, a number / true / false as its JSON text; anything else or missing:
 * ""), cut at EP_ORDER_KEY_MAX bytes. body: what receivers get (envelope_body: the
 * data is its "data" member). */
void lane_order_key(const ep *e, const char *tenant, const char *body, size_t bodylen,
                    char key[LANE_KEY_MAX]);

/* The lease member of a claimed job. */
void lane_member(const char *lid, const char *key, const char *me, char *buf, size_t len);

/* One call on endpoint ep_id's slot: KEYS and the lane prefix, then lane_push_job /
 * lane_settle_job per job, then pipeline_end. mode: 'f' fanout, 'a' adoption. HQ_ERR if
 * a key does not fit (the call is not begun). */
int lane_push_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id,
                    char mode);
void lane_push_job(pipeline *p, const char *lid, const char *key, int attempt);
int lane_settle_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id,
                      int64_t pause_until_ms);
/* act: 'd' done, 'r' ordered retry at due, 'q' handed to the delay zset, 'b' back. */
void lane_settle_job(pipeline *p, const char *member, char act, int64_t due_ms, int attempts);
/* lane_claim.lua's KEYS and prefix (the caller adds the rest of ARGV). */
int lane_claim_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id);

#endif
