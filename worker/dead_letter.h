/* dead_letter.h -- the one copier of a malformed entry's fields into a dead letter.
 *
 * A dead letter keeps what it can of the original entry, as "f.<name>" value pairs, but
 * bounded, so one hostile entry (50,000 fields, 512 MiB values) costs a bounded dead
 * letter and cannot break the command or script that writes it: at most
 * DEAD_LETTER_MAX_FIELDS fields, each value cut at DEAD_LETTER_MAX_VALUE bytes and all
 * values together at DEAD_LETTER_MAX_BYTES, names cut at 150 bytes. When anything was
 * left out the pairs end with "truncated" "1" and "fields" "<how many it had>". */
#ifndef HQ_DEAD_LETTER_H
#define HQ_DEAD_LETTER_H
#include <stddef.h>
#include <hiredis/hiredis.h>
#include "pipeline.h"

#define DEAD_LETTER_MAX_FIELDS 64
#define DEAD_LETTER_MAX_VALUE  (64 * 1024)
#define DEAD_LETTER_MAX_BYTES  (256 * 1024)

/* Number of field/value pairs dead_letter_fields appends for this field list (an
 * entry's element[1]; NULL or nil gives 0). */
size_t dead_letter_count(const redisReply *fields);
/* Append those pairs to the open command of p. Returns how many pairs it appended. */
size_t dead_letter_fields(pipeline *p, const redisReply *fields);

#endif
