/* fuzz_api_body.c -- the JSON bodies hookq-api takes: parse as the server does
 * (JSON_REJECT_DUPLICATES), then run the endpoint create/update appliers and the source
 * create/update appliers on it. An accepted endpoint must have a url and a secret; an
 * accepted source must have exactly one way to name its event type; a refusal must come
 * with an answer (problem) or a field. The publish route's member scanner (which forwards
 * `data` byte for byte) runs on the raw bytes: every span it returns lies inside the input
 * and, for a body jansson parsed as an object, it finds exactly as many members. Nothing
 * may crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "api_endpoint_json.h"
#include "api_evkit.h"
#include "api_source_store.h"
#include "endpoint.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static void req_reset(api_req *rq) {
    free(rq->resp);
    for (size_t i = 0; i < rq->n_hdr; i++)
        free(rq->hdr_value[i]);
    memset(rq, 0, sizeof(*rq));
    rq->method = "POST";
    rq->path = "/fuzz";
}

static void endpoints(const json_t *body, int tenant_key) {
    api_req rq;
    epj_changes ch;
    memset(&rq, 0, sizeof(rq));
    for (int mode = 0; mode < 2; mode++) {
        ep *e = ep_new();
        req_reset(&rq);
        if (tenant_key) {
            rq.who.kind = AUTH_TENANT;
            strcpy(rq.who.tenant, "acme");
        } else {
            rq.who.kind = AUTH_ADMIN;
        }
        if (!e)
            break;
        if (mode == EPJ_UPDATE) {
            e->id = strdup("ep_fuzz");
            e->url = strdup("https://example.com/h");
            e->secret = strdup("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        }
        memset(&ch, 0, sizeof(ch));
        if (epj_apply(&rq, e, body, (epj_mode)mode, 1700000000000, &ch) == HQ_OK) {
            if (!e->url || !e->secret)
                abort();
            if (tenant_key && mode == EPJ_CREATE && (!e->tenant || strcmp(e->tenant, "acme") != 0))
                abort();
            json_decref(epj_view(e, 0, 1));
        } else if (!rq.answered || rq.status < 400) {
            abort();
        }
        ep_free(e);
    }
    req_reset(&rq);
}

static void sources(const json_t *body) {
    for (int creating = 1; creating >= 0; creating--) {
        source s;
        char field[128] = "", err[HQ_ERRLEN] = "";
        memset(&s, 0, sizeof(s));
        if (!creating) {
            s.enabled = 1;
            s.event_type = strdup("github.event");
        }
        if (source_apply_json(&s, body, creating, field, sizeof(field), err, sizeof(err)) ==
            HQ_OK) {
            if (!s.event_type == !s.event_type_header)
                abort();
            json_decref(source_to_json(&s, 0));
        } else if (!err[0]) {
            abort();
        }
        source_clear(&s);
    }
}

/* Members the scanner finds, or -1 when it refuses the text. */
static long scan(const char *s, size_t len) {
    evj_iter it;
    evj_member m;
    const char *what = NULL;
    long n = 0;
    int r;
    char key[64];
    if (evj_begin(&it, s, len) != HQ_OK)
        return -1;
    while ((r = evj_next(&it, &m, &what)) == 1) {
        int cut = 0;
        if (m.key < s || m.key + m.keylen > s + len || m.val < s || m.val + m.vallen > s + len ||
            m.vallen == 0)
            abort();
        (void)evj_unescape(m.key, m.keylen, key, sizeof(key), &cut);
        n++;
    }
    if (r < 0 && !what)
        abort();
    return r < 0 ? -1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    json_error_t e;
    json_t *j;
    long members;
    if (len > 65536)
        return 0;
    members = scan((const char *)buf, len);
    j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return 0;
    if (json_is_object(j) && members != (long)json_object_size(j))
        abort();
    if (json_is_object(j)) {
        endpoints(j, 0);
        endpoints(j, 1);
        sources(j);
    }
    json_decref(j);
    return 0;
}
