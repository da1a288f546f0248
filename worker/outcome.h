/* outcome.h -- the one function that decides what an attempt's result means
 * (STYLE.md rule 4). Everything else asks it. */
#ifndef HQ_OUTCOME_H
#define HQ_OUTCOME_H
#include <stdint.h>

typedef enum {
    OUT_DELIVERED = 0, /* 2xx */
    OUT_RETRY,         /* worth another attempt: 3xx, 4xx/5xx other than below, timeouts,
                          connection errors */
    OUT_FINAL,         /* never retry: refused address, bad URL/scheme, 410 handled below */
    OUT_GONE           /* 410 Gone: final for this job and disables the endpoint now */
} outcome;

typedef struct outcome_in {
    int curl_code;    /* CURLcode of the transfer (0 = CURLE_OK) */
    long http_status; /* 0 if no response */
    int blocked;      /* 1 if the address filter refused the connection */
} outcome_in;

outcome outcome_classify(const outcome_in *in);
const char *outcome_name(outcome o); /* "delivered" "retry" "final" "gone" */

#endif
