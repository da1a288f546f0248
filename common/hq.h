/* hq.h -- the few definitions every hookq module shares: return codes, buffer sizes.
 *
 * Convention (STYLE.md rule 4): functions return HQ_OK (0) or HQ_ERR (-1) and, on
 * error, write a one-line message into a caller-provided buffer `err` of `errlen`
 * bytes (HQ_ERRLEN is enough). Library code never prints. */
#ifndef HQ_H
#define HQ_H
#include <stddef.h>

#define HQ_OK     0
#define HQ_ERR    -1
#define HQ_ERRLEN 256

#ifndef HOOKQ_VERSION
#define HOOKQ_VERSION "0.0.0"
#endif

/* Write a formatted message into err (NULL-safe). Always returns HQ_ERR so callers
 * can `return hq_seterr(err, errlen, "...")`. */
int hq_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
