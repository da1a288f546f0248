/* api_route.c -- see api_route.h. The table is the API's one list of routes. */
#include "api_route.h"

#include <stdio.h>
#include <string.h>

static const api_route routes[] = {
    {"GET", "/v1/health", api_health, ROUTE_OPEN, "getHealth"},

    {"GET", "/v1/endpoints", api_endpoint_list, ROUTE_KEY, "listEndpoints"},
    {"POST", "/v1/endpoints", api_endpoint_create, ROUTE_KEY, "createEndpoint"},
    {"GET", "/v1/endpoints/{id}", api_endpoint_get, ROUTE_KEY, "getEndpoint"},
    {"PATCH", "/v1/endpoints/{id}", api_endpoint_patch, ROUTE_KEY, "updateEndpoint"},
    {"DELETE", "/v1/endpoints/{id}", api_endpoint_delete, ROUTE_KEY, "deleteEndpoint"},
    {"POST", "/v1/endpoints/{id}/enable", api_endpoint_enable, ROUTE_KEY, "enableEndpoint"},
    {"POST", "/v1/endpoints/{id}/disable", api_endpoint_disable, ROUTE_KEY, "disableEndpoint"},
    {"POST", "/v1/endpoints/{id}/rotate-secret", api_endpoint_rotate, ROUTE_KEY,
     "rotateEndpointSecret"},
    {"POST", "/v1/endpoints/{id}/test", api_endpoint_test, ROUTE_KEY, "testEndpoint"},
    {"GET", "/v1/endpoints/{id}/deliveries", api_endpoint_deliveries, ROUTE_KEY,
     "listEndpointDeliveries"},
    {"POST", "/v1/endpoints/{id}/recover", api_endpoint_recover, ROUTE_KEY, "recoverEndpoint"},

    {"POST", "/v1/events", api_event_publish, ROUTE_KEY, "publishEvent"},
    {"GET", "/v1/events/{id}", api_event_get, ROUTE_KEY, "getEvent"},
    {"POST", "/v1/events/{id}/retry", api_event_retry, ROUTE_KEY, "retryEvent"},
    {"GET", "/v1/dead", api_dead_list, ROUTE_KEY, "listDeadLetters"},
    {"POST", "/v1/dead/replay", api_dead_replay, ROUTE_KEY, "replayDeadLetters"},

    {"GET", "/v1/sources", api_source_list, ROUTE_KEY, "listSources"},
    {"POST", "/v1/sources", api_source_create, ROUTE_KEY, "createSource"},
    {"GET", "/v1/sources/{id}", api_source_get, ROUTE_KEY, "getSource"},
    {"PATCH", "/v1/sources/{id}", api_source_patch, ROUTE_KEY, "updateSource"},
    {"DELETE", "/v1/sources/{id}", api_source_delete, ROUTE_KEY, "deleteSource"},
    {"GET", "/v1/sources/{id}/payloads", api_source_payloads, ROUTE_KEY, "listSourcePayloads"},
    {"GET", "/v1/sources/{id}/payloads/{payload_id}", api_source_payload_get, ROUTE_KEY,
     "getSourcePayload"},
    {"POST", "/v1/in/{source_id}", api_inbound, ROUTE_OPEN, "receiveInbound"},

    {"GET", "/v1/stream", api_stream_get, ROUTE_KEY_TOKEN, "streamEvents"},
    {"POST", "/v1/stream/tokens", api_stream_token, ROUTE_KEY, "createStreamToken"},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

size_t route_count(void) {
    return NROUTES;
}

const api_route *route_at(size_t i) {
    return i < NROUTES ? &routes[i] : NULL;
}

/* Split path into segments in buf (NUL-separated). Returns the count, or -1 if the
 * path is not "/seg/seg..." with non-empty segments, or too long. */
static int split(const char *path, char *buf, size_t buflen, const char **seg, int maxseg) {
    size_t n = strlen(path);
    int count = 0;
    if (n == 0 || path[0] != '/' || n >= buflen)
        return -1;
    memcpy(buf, path + 1, n); /* includes the NUL */
    char *p = buf;
    while (*p) {
        if (count == maxseg)
            return -1;
        seg[count++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
        if (!*p) /* trailing slash or "//" */
            return -1;
    }
    for (int i = 0; i < count; i++)
        if (!*seg[i])
            return -1;
    return count;
}

/* Whether pattern matches the segments; fills params. */
static int match(const char *pattern, const char **seg, int nseg, const char **params, size_t *np) {
    const char *p = pattern + 1;
    int i = 0;
    *np = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i >= nseg)
            return 0;
        if (p[0] == '{') {
            if (strlen(seg[i]) > ROUTE_PARAM_MAX || *np >= API_PARAMS_MAX)
                return 0;
            params[(*np)++] = seg[i];
        } else if (strlen(seg[i]) != len || memcmp(seg[i], p, len) != 0) {
            return 0;
        }
        i++;
        p += len;
        if (*p == '/')
            p++;
    }
    return i == nseg;
}

void route_find(const char *method, const char *path, route_match *m) {
    const char *seg[16];
    int nseg;
    size_t used = 0;
    memset(m, 0, sizeof(*m));
    m->status = 404;
    nseg = split(path ? path : "", m->buf, sizeof(m->buf), seg, 16);
    if (nseg < 0)
        return;
    for (size_t i = 0; i < NROUTES; i++) {
        const char *params[API_PARAMS_MAX];
        size_t np;
        if (!match(routes[i].pattern, seg, nseg, params, &np))
            continue;
        if (method && strcmp(method, routes[i].method) == 0) {
            m->route = &routes[i];
            memcpy(m->params, params, sizeof(params));
            m->nparams = np;
            m->status = 0;
            return;
        }
        m->status = 405;
        if (!strstr(m->allow, routes[i].method)) {
            int w = snprintf(m->allow + used, sizeof(m->allow) - used, "%s%s", used ? ", " : "",
                             routes[i].method);
            if (w > 0 && (size_t)w < sizeof(m->allow) - used)
                used += (size_t)w;
        }
    }
}
