/* api_evkit.h -- what the events routes (api_publish.c, api_events.c) and the
 * dead-letter routes (api_dead.c) share: a scanner of a JSON object's top-level members
 * for bodies whose values must be forwarded byte for byte, JSON string decoding into a
 * fixed buffer, id helpers, stream entry accessors, a raw-text JSON answer. Implemented
 * in api_evkit.c; the scanners are pure (no Redis, no allocation) and unit-tested in
 * tests/unit/test_api_events.c. */
#ifndef HQ_API_EVKIT_H
#define HQ_API_EVKIT_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include "api.h"
#include "pipeline.h"

/* ---- top-level members of a JSON object, as spans of the original text ---- */

/* One member: key (the text between the quotes, escapes not decoded) and value (the
 * value's exact bytes, no surrounding whitespace). Both point into the scanned text. */
typedef struct evj_member {
    const char *key;
    size_t keylen;
    const char *val;
    size_t vallen;
} evj_member;

typedef struct evj_iter {
    const char *s;
    size_t len;
    size_t pos;
    int state; /* 0 before the first member, 1 after one, 2 done */
} evj_iter;

/* Start iterating the object s[0..len). HQ_ERR if s (after whitespace) is not '{'. The
 * scanner is robust on any bytes (it never reads outside s) but checks structure only:
 * run json_scan_check on the whole text first for syntax, UTF-8 and NULs. */
int evj_begin(evj_iter *it, const char *s, size_t len);
/* The next member: 1 with *m set, 0 at the closing '}' (nothing but whitespace may
 * follow), -1 when the text is not an object of members (what names the problem). */
int evj_next(evj_iter *it, evj_member *m, const char **what);

/* Decode the JSON string contents raw[0..n) (between the quotes) into out as UTF-8,
 * NUL-terminated. HQ_OK; or HQ_ERR for a bad escape, a \u0000 (a NUL cannot be in a C
 * string) or an unpaired surrogate. When the text does not fit, out holds a prefix
 * (cut at a character boundary) and *cut is set to 1; HQ_OK still. */
int evj_unescape(const char *raw, size_t n, char *out, size_t outlen, int *cut);

/* ---- ids ---- */

/* The unix ms a generated event id carries: "evt_" + 26 Crockford base32 chars (ULID
 * layout, common/ids.c). HQ_OK with *ms, or HQ_ERR when id is not of that form. */
int evid_ulid_ms(const char *id, int64_t *ms);
/* Whether s is a stream entry id "<ms>-<seq>" (decimal digits, at most 20 each). */
int evid_stream_id_ok(const char *s);
/* An Idempotency-Key header: 1..255 printable ASCII characters (0x20..0x7e). */
int evid_idem_key_ok(const char *k);

/* ---- stream entries (one element of an XRANGE reply: [id, [f, v, ...]]) ---- */

int eve_ok(const redisReply *en); /* the shape above, with string id and fields */
const char *eve_id(const redisReply *en);
/* The value of field name (NULL if absent); *len its length when len is not NULL. */
const char *eve_field(const redisReply *en, const char *name, size_t *len);
/* A JSON string of v (vlen bytes); bytes that are not UTF-8 become '?', so a value
 * written by anyone still shows. New reference, NULL on OOM. */
json_t *eve_string(const char *v, size_t vlen);
/* The ISO time of a stream id's millisecond part into buf (TS_ISO_LEN), "" if bad. */
void eve_sid_iso(const char *sid, char *buf, size_t len);

/* ---- Redis ---- */

/* Run every command queued in p on this request's connection. HQ_OK when every reply
 * came (and, when strict, none is an error reply); else HQ_ERR with the answer set like
 * api_cmd's: 503 (I/O), 507 (maxmemory), 500 (any other error reply). Without strict
 * the caller looks at error replies itself. */
int evapi_pipeline(api_req *rq, pipeline *p, int strict);

/* ---- answering ---- */

/* Answer status with text (len bytes of JSON, malloc'd; ownership taken, NULL = 500).
 * For bodies built as text: a verbatim `data` or the publish hot path. API_DONE. */
int evapi_answer_text(api_req *rq, int status, char *text, size_t len);

#endif
