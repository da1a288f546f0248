/* timestamp.h -- time helpers. All times are int64 milliseconds since the Unix epoch (UTC). */
#ifndef HQ_TIMESTAMP_H
#define HQ_TIMESTAMP_H
#include <stddef.h>
#include <stdint.h>

int64_t ts_now_ms(void);  /* wall clock (CLOCK_REALTIME) */
int64_t ts_mono_ms(void); /* monotonic clock, for timeouts and latency */
int64_t ts_mono_us(void);

/* Format as ISO 8601 UTC with milliseconds: "2026-11-23T10:00:00.123Z" (24 chars + NUL;
 * TS_ISO_LEN bytes is enough). */
#define TS_ISO_LEN 32
void ts_iso(int64_t ms, char *buf, size_t len);
/* Parse the form ts_iso writes (fraction optional, "Z" required). HQ_OK or HQ_ERR. */
int ts_parse_iso(const char *s, int64_t *ms);

#endif
