/* units.h -- durations as written in config and on the command line.
 *
 * Grammar: one or more <digits><unit> groups, unit in ms|s|m|h|d, e.g. "500ms", "30s",
 * "2m", "1h30m", "7d". A bare integer means seconds. No sign, no spaces, no fractions.
 * Overflow past ~292 years, empty strings and unknown units are errors. */
#ifndef HQ_UNITS_H
#define HQ_UNITS_H
#include <stddef.h>
#include <stdint.h>

int units_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen);
/* Shortest exact form: 90000 -> "1m30s", 1500 -> "1s500ms", 0 -> "0s". */
void units_format_duration(int64_t ms, char *buf, size_t len);

/* Byte sizes: "1048576", "512KiB", "1MiB", "1GiB" (also kb/mb = 1000-based "KB","MB"). */
int units_parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen);

#endif
