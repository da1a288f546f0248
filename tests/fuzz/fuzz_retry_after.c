/* fuzz_retry_after.c -- Retry-After parsing of whatever a receiver sends back. An
 * accepted value never gives a negative delay. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char s[256];
    if (len >= sizeof(s))
        return 0;
    memcpy(s, buf, len);
    s[len] = '\0';
    /* 2015-10-21T07:28:00Z, and a "now" far in the future for the RFC 850 century rule */
    static const int64_t nows[] = {INT64_C(1445412480000), INT64_C(253402300799000), 0};
    for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
        int64_t d = -1;
        if (backoff_retry_after_parse(s, nows[i], &d) == HQ_OK && d < 0)
            abort();
    }
    return 0;
}
