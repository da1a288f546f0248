/* api_stream_frame.h -- the pure parts of GET /v1/stream (no I/O, no locks): stream ids,
 * Server-Sent Events frames, a client's frame queue and its filter (docs/api.md "The live stream").
 *
 * A frame is formatted once and shared by every client it goes to: it is reference
 * counted (atomically, as clients drain on libmicrohttpd's threads while the hub adds on
 * its own). A queue holds references to frames and the bytes not yet handed out. */
#ifndef HQ_API_STREAM_FRAME_H
#define HQ_API_STREAM_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "envelope.h"
#include "event_pattern.h"

/* ---- stream ids "<ms>-<seq>" -------------------------------------------------------- */
typedef struct sse_sid {
    uint64_t ms, seq;
} sse_sid;
#define SSE_SID_LEN 48 /* "<20 digits>-<20 digits>" + NUL, with room */

/* HQ_OK when s (len bytes) is a complete id: 1..20 digits, '-', 1..20 digits, each within
 * 64 bits; HQ_ERR otherwise ("5", "5-", "a-1", "1-2-3"). */
int sse_sid_parse(const char *s, size_t len, sse_sid *out);
int sse_sid_cmp(sse_sid a, sse_sid b); /* <0, 0, >0 */
void sse_sid_fmt(sse_sid id, char *buf, size_t len);

/* ---- frames --------------------------------------------------------------------------- */
typedef enum sse_kind {
    SSE_EVENT = 0, /* an event of the stream: filtered per client */
    SSE_CONTROL    /* retry/ping/reset/error: for one client or all, never filtered */
} sse_kind;

typedef struct sse_frame {
    _Atomic int refs;
    sse_kind kind;
    sse_sid sid;        /* SSE_EVENT: the entry's stream id */
    const char *type;   /* SSE_EVENT: the event type (inside this allocation) */
    const char *tenant; /* SSE_EVENT: the event's tenant, NULL if none */
    size_t len;         /* bytes of text */
    char *text;         /* the frame, ending in "\n\n" */
} sse_frame;

/* A control frame holding a copy of text (len bytes). One reference; NULL on OOM. */
sse_frame *sse_frame_control(const char *text, size_t len);
/* The frame of an events stream entry ([id, [field, value, ...]] as XREAD/XRANGE return
 * it): "id: <sid>\nevent: <type>\ndata: <json>\n\n" with json
 * {"id","type","timestamp","tenant"?,"data":<data verbatim>}. Raw CR/LF in data (JSON
 * whitespace between tokens: a valid JSON text has no other) become spaces so they
 * cannot end the data line. HQ_ERR + err for an entry the fanout would dead-letter
 * (envelope_from_fields' checks with lim) or on OOM; *out then NULL. One reference. */
int sse_frame_entry(const redisReply *entry, const envelope_limits *lim, sse_frame **out, char *err,
                    size_t errlen);
sse_frame *sse_frame_ref(sse_frame *f);
void sse_frame_unref(sse_frame *f); /* NULL-safe; frees at zero */

/* ---- a client's queue ------------------------------------------------------------------ */
typedef struct sse_queue {
    sse_frame **ring;
    size_t cap, head, n; /* frames in ring[head .. head+n) (mod cap) */
    size_t off;          /* bytes of the head frame already taken */
    size_t bytes;        /* bytes queued and not yet taken */
} sse_queue;

/* Append f (a new reference is taken). HQ_ERR on OOM (nothing changed). */
int sse_queue_push(sse_queue *q, sse_frame *f);
/* Copy up to max queued bytes into buf, dropping the frames fully copied; a frame may
 * be split across calls. Returns the bytes copied (0 when empty). */
size_t sse_queue_take(sse_queue *q, char *buf, size_t max);
void sse_queue_clear(sse_queue *q); /* drops every frame, frees the ring */

/* ---- which events a client gets ------------------------------------------------------- */
typedef struct sse_filter {
    char *tenant;   /* NULL: every tenant's events and those without one */
    pat_list want;  /* ?events= (n == 0: everything) */
    pat_list allow; /* a stream token's patterns (n == 0: everything) */
} sse_filter;

/* Whether an SSE_EVENT frame passes: its tenant equals filter->tenant when that is set
 * (a tenant's client never sees untenanted events either), and its type matches both
 * lists, so ?events= narrows a token's patterns and can never widen them. */
int sse_filter_match(const sse_filter *flt, const sse_frame *f);
void sse_filter_clear(sse_filter *flt);

#endif
