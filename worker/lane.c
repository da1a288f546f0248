/* lane.c -- see lane.h. */
#include "lane.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "redis_keys.h"
#include "scripts_gen.h"

static int parse_u64(const char *s, size_t n, unsigned long long *out) {
    if (n == 0 || n > 20)
        return HQ_ERR;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HQ_ERR;
        unsigned long long d = (unsigned long long)(s[i] - '0');
        if (v > (~0ULL - d) / 10)
            return HQ_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return HQ_OK;
}

static int split_id(const char *s, unsigned long long *ms, unsigned long long *seq) {
    const char *dash = strchr(s, '-');
    if (!dash)
        return HQ_ERR;
    return parse_u64(s, (size_t)(dash - s), ms) == HQ_OK &&
                   parse_u64(dash + 1, strlen(dash + 1), seq) == HQ_OK
               ? HQ_OK
               : HQ_ERR;
}

int lane_id_of(const char *sid, char lid[LANE_ID_LEN]) {
    unsigned long long ms, seq;
    if (split_id(sid, &ms, &seq) != HQ_OK)
        return HQ_ERR;
    snprintf(lid, LANE_ID_LEN, "%020llu-%020llu", ms, seq);
    return HQ_OK;
}

int lane_sid_of(const char *lid, char *sid, size_t len) {
    unsigned long long ms, seq;
    if (strlen(lid) != LANE_ID_LEN - 1 || split_id(lid, &ms, &seq) != HQ_OK)
        return HQ_ERR;
    int n = snprintf(sid, len, "%llu-%llu", ms, seq);
    return n > 0 && (size_t)n < len ? HQ_OK : HQ_ERR;
}

static void put_key(char key[LANE_KEY_MAX], const char *s, size_t n) {
    if (n > EP_ORDER_KEY_MAX)
        n = EP_ORDER_KEY_MAX;
    memcpy(key, s, n);
    key[n] = '\0';
}

void lane_order_key(const ep *e, const char *tenant, const char *body, size_t bodylen,
                    char key[LANE_KEY_MAX]) {
    key[0] = '\0';
    if (!e->ordered || !e->order_key)
        return;
    if (strcmp(e->order_key, "tenant") == 0) {
        if (tenant)
            put_key(key, tenant, strlen(tenant));
        return;
    }
    if (strncmp(e->order_key, "data.", 5) != 0 || !body)
        return;
    json_t *d = json_loadb(body, bodylen, JSON_ALLOW_NUL, NULL);
    json_t *data = json_is_object(d) ? json_object_get(d, "data") : NULL;
    json_t *v = json_is_object(data) ? json_object_get(data, e->order_key + 5) : NULL;
    char num[64];
    if (json_is_string(v))
        put_key(key, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        put_key(key, num,
                (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
    else if (json_is_real(v))
        put_key(key, num, (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(v)));
    else if (json_is_true(v))
        put_key(key, "true", 4);
    else if (json_is_false(v))
        put_key(key, "false", 5);
    json_decref(d);
}

void lane_member(const char *lid, const char *key, const char *me, char *buf, size_t len) {
    snprintf(buf, len, "%s\t%s\t%s", lid, key, me);
}

/* KEYS of the lane scripts, in the order each script names them. */
static int lane_keys(pipeline *p, const char *prefix, const char *ep_id, const char *const *parts,
                     int n) {
    char k[KEY_MAX];
    for (int i = 0; i < n; i++) {
        int rc = i == 0 ? key_endpoint(prefix, ep_id, k, sizeof k)
                        : key_ep_part(prefix, ep_id, parts[i], k, sizeof k);
        if (rc != HQ_OK)
            return HQ_ERR;
        pipeline_arg(p, k);
    }
    if (key_ep_part(prefix, ep_id, KEY_EP_LANE, k, sizeof k) != HQ_OK)
        return HQ_ERR;
    pipeline_arg(p, k);
    return HQ_OK;
}

static int fits(const char *prefix, const char *ep_id) {
    char k[KEY_MAX];
    return key_ep_part(prefix, ep_id, KEY_EP_LANEKEYS, k, sizeof k) == HQ_OK;
}

int lane_push_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id,
                    char mode) {
    static const char *const parts[] = {NULL, KEY_EP_LANEKEYS, KEY_EP_READY, KEY_EP_STATE,
                                        KEY_EP_TRIES};
    if (!fits(prefix, ep_id))
        return HQ_ERR;
    pipeline_eval(p, tag, ud, &script_lane_push, 5);
    lane_keys(p, prefix, ep_id, parts, 5);
    char m[2] = {mode, '\0'};
    pipeline_arg(p, m);
    return HQ_OK;
}

void lane_push_job(pipeline *p, const char *lid, const char *key, int attempt) {
    pipeline_arg(p, lid);
    pipeline_arg(p, key);
    pipeline_argi(p, attempt);
}

static const char *const six[] = {NULL,          KEY_EP_LANEKEYS, KEY_EP_READY,
                                  KEY_EP_LEASES, KEY_EP_STATE,    KEY_EP_TRIES};

int lane_settle_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id,
                      int64_t pause_until_ms) {
    if (!fits(prefix, ep_id))
        return HQ_ERR;
    pipeline_eval(p, tag, ud, &script_lane_settle, 6);
    lane_keys(p, prefix, ep_id, six, 6);
    pipeline_argi(p, pause_until_ms);
    return HQ_OK;
}

void lane_settle_job(pipeline *p, const char *member, char act, int64_t due_ms, int attempts) {
    char a[2] = {act, '\0'};
    pipeline_arg(p, member);
    pipeline_arg(p, a);
    pipeline_argi(p, due_ms);
    pipeline_argi(p, attempts);
}

int lane_claim_begin(pipeline *p, int tag, void *ud, const char *prefix, const char *ep_id) {
    if (!fits(prefix, ep_id))
        return HQ_ERR;
    pipeline_eval(p, tag, ud, &script_lane_claim, 6);
    lane_keys(p, prefix, ep_id, six, 6);
    return HQ_OK;
}
