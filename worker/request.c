/* request.c -- see request.h. */
#include "request.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "signature.h"

static char *hdr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *hdr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void request_clear(request *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->headers[i]);
    r->n = 0;
}

/* The secret string that signs X-Hub-Signature-256 now: the current one, or during a
 * rotation's grace the previous one when the endpoint chose so (endpoint.h). */
static const char *github_secret(const ep *e, int64_t now_ms) {
    return ep_github_secret(e, now_ms);
}

int request_build(request *out, const epindex_ent *en, const evcache_ev *ev, int attempt,
                  const char *dlv, int64_t now_ms, char *err, size_t errlen) {
    const ep *e = en->e;
    out->n = 0;
    if (en->keylen == 0)
        return hq_seterr(err, errlen, "endpoint secret missing or invalid");
    int64_t ts = now_ms / 1000;
    char s1[SIGN_V1_LEN], s2[SIGN_V1_LEN] = "", gh[SIGN_GH_LEN] = "";
    if (sign_v1(en->key, en->keylen, ev->e.id, ts, ev->body, ev->bodylen, s1, sizeof s1) != HQ_OK)
        return hq_seterr(err, errlen, "signing failed");
    /* during a rotation receivers may still hold the old secret: sign with both */
    if (en->key_oldlen > 0 && (e->secret_old_until == 0 || now_ms < e->secret_old_until))
        sign_v1(en->key_old, en->key_oldlen, ev->e.id, ts, ev->body, ev->bodylen, s2, sizeof s2);
    if (e->github_signature &&
        sign_github(github_secret(e, now_ms), ev->body, ev->bodylen, gh, sizeof gh) != HQ_OK)
        return hq_seterr(err, errlen, "GitHub-style signing failed");
    char **h = out->headers;
    size_t n = 0;
    h[n++] = hdr("Content-Type: application/json");
    h[n++] = hdr("User-Agent: hookq/%s", HOOKQ_VERSION);
    h[n++] = hdr("webhook-id: %s", ev->e.id);
    h[n++] = hdr("webhook-timestamp: %lld", (long long)ts);
    h[n++] = hdr("webhook-signature: %s%s%s", s1, s2[0] ? " " : "", s2);
    h[n++] = hdr("X-Hookq-Event-Type: %s", ev->e.type);
    h[n++] = hdr("X-Hookq-Delivery-Id: %s", dlv);
    h[n++] = hdr("X-Hookq-Attempt: %d", attempt);
    if (gh[0])
        h[n++] = hdr("X-Hub-Signature-256: %s", gh);
    for (size_t i = 0; i < e->n_headers && i < VALIDATE_HEADERS_MAX; i++)
        h[n++] = hdr("%s: %s", e->header_names[i], e->header_values[i]);
    out->n = n;
    for (size_t i = 0; i < n; i++)
        if (!h[i]) {
            request_clear(out);
            return hq_seterr(err, errlen, "out of memory");
        }
    return HQ_OK;
}
