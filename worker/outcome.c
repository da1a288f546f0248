/* outcome.c -- the one place that decides what a delivery attempt's result means.
 *
 * Order matters and is deliberate:
 *  1. A refused address is final whatever curl said: retrying cannot make a private
 *     address public, and the engine reports it as a connect failure underneath.
 *  2. A URL curl cannot parse, or one that is not http(s) (the engine reports those as
 *     CURLE_URL_MALFORMAT itself), is final: the URL has to change first. Not
 *     CURLE_UNSUPPORTED_PROTOCOL: the engine never hands curl another scheme, so curl
 *     says that only when the receiver answered something that is not HTTP ("Received
 *     HTTP/0.9 when not allowed"), a misbehaving receiver like a reset: retried.
 *  3. Any other transfer error (timeouts, refused or reset connections, DNS failures,
 *     TLS errors, a response over the size cap) is worth retrying, even when a status
 *     line had already arrived: the exchange did not complete, so the receiver's
 *     answer is not trusted as a verdict.
 *  4. Then the status: 2xx delivered, 410 gone, everything else (1xx leftovers, 3xx
 *     because redirects are never followed, 4xx, 5xx, no status at all) retry. */
#include "outcome.h"
#include <curl/curl.h>

outcome outcome_classify(const outcome_in *in) {
    if (in->blocked)
        return OUT_FINAL;
    switch (in->curl_code) {
    case CURLE_OK:
        break;
    case CURLE_URL_MALFORMAT:
        return OUT_FINAL;
    default:
        return OUT_RETRY;
    }
    if (in->http_status >= 200 && in->http_status <= 299)
        return OUT_DELIVERED;
    if (in->http_status == 410)
        return OUT_GONE;
    return OUT_RETRY;
}

const char *outcome_name(outcome o) {
    switch (o) {
    case OUT_DELIVERED:
        return "delivered";
    case OUT_RETRY:
        return "retry";
    case OUT_FINAL:
        return "final";
    case OUT_GONE:
        return "gone";
    }
    return "unknown";
}
