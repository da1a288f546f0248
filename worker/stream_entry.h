/* stream_entry.h -- reading hookq's stream entries out of Redis replies (pure: no I/O).
 *
 * An entry is [id, [field, value, ...]] as XREADGROUP, XAUTOCLAIM and XRANGE return it.
 * Everything here validates before it trusts: a malformed entry gives HQ_ERR and a
 * reason fit for the dead-letter stream. */
#ifndef HQ_STREAM_ENTRY_H
#define HQ_STREAM_ENTRY_H
#include <stddef.h>
#include <hiredis/hiredis.h>
#include "envelope.h"

#define ENTRY_SID_MAX 48

/* The entries of the first stream of an XREADGROUP reply; NULL if none. */
const redisReply *entry_stream_entries(const redisReply *xread);
/* The value of field `name` in an entry's field list; NULL if absent or not a string. */
const redisReply *entry_field(const redisReply *fields, const char *name);
/* A well-formed entry: [id (string, 1..47 bytes), fields-or-nil]. */
int entry_ok(const redisReply *entry); /* a stream id "<ms>-<seq>" is at most 41 bytes */

/* 1 if s (len bytes) is a complete stream id "<ms>-<seq>": two runs of 1..20 digits, each
 * within 64 bits. "1-2-3", "5-", "-1", "abc" are not. */
int entry_sid_valid(const char *s, size_t len);

/* Parse an events stream entry into e (envelope_from_fields with lim). HQ_ERR + reason
 * (e is then cleared). At most ENTRY_MAX_EVENT_FIELDS fields are accepted. */
#define ENTRY_MAX_EVENT_FIELDS 64
int entry_parse_event(const redisReply *entry, const envelope_limits *lim, envelope *e, char *err,
                      size_t errlen);

/* Parse a jobs stream entry: event (a valid stream id), endpoint (an id), attempt
 * (1..1000). The out pointers borrow from the reply. HQ_ERR + reason. */
int entry_parse_job(const redisReply *entry, const char **evsid, const char **ep_id, int *attempt,
                    char *err, size_t errlen);

#endif
