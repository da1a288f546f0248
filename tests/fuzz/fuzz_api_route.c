/* fuzz_api_route.c -- what hookq-api does with a request before any handler runs:
 * routing (method + path), the Bearer header, a ?token= stream token, X-Forwarded-For
 * style addresses against a CIDR set. Input: "METHOD\nPATH\nAUTH\nTOKEN\nADDR". Whatever
 * matches must be a route whose parameters are non-empty segments of the path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_route.h"
#include "cidr.h"
#include "config.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static auth_keys *keys;
static cidr_set *nets;

static void setup(void) {
    static const char *const blocks[] = {"10.0.0.0/8", "fd00::/8", "127.0.0.1",
                                         "::ffff:1.2.3.0/120"};
    char err[HQ_ERRLEN];
    cfg *c = cfg_new();
    if (!c ||
        cfg_set(c, "api.admin_keys", "fuzz-admin-key-0123456789", err, sizeof(err)) != HQ_OK ||
        cfg_set(c, "api.tenant_keys", "acme:fuzz-acme-key-0123456789", err, sizeof(err)) != HQ_OK)
        abort();
    keys = auth_keys_new(c, err, sizeof(err));
    nets = cidr_set_new(blocks, 4, err, sizeof(err));
    cfg_free(c);
    if (!keys || !nets)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char *s, *part[5] = {0};
    size_t n = 0;
    route_match m;
    auth_who w;
    char why[HQ_ERRLEN];
    if (!keys)
        setup();
    if (len > 8192)
        return 0;
    if (!(s = malloc(len + 1)))
        return 0;
    memcpy(s, buf, len);
    s[len] = '\0';
    part[n++] = s;
    for (char *p = s; *p && n < 5; p++)
        if (*p == '\n') {
            *p = '\0';
            part[n++] = p + 1;
        }
    route_find(part[0], n > 1 ? part[1] : "", &m);
    if (m.status == 0) {
        if (!m.route || !m.route->fn)
            abort();
        for (size_t i = 0; i < m.nparams; i++)
            if (!m.params[i][0] || strchr(m.params[i], '/') || !strstr(part[1], m.params[i]))
                abort();
    } else if (m.route || (m.status != 404 && m.status != 405)) {
        abort();
    }
    if (n > 2 && auth_bearer(keys, part[2], &w, why, sizeof(why)) == HQ_OK &&
        w.kind != AUTH_ADMIN && w.kind != AUTH_TENANT)
        abort();
    if (n > 3 && auth_token_check(keys, part[3], 0, &w, why, sizeof(why)) == HQ_OK) {
        /* Only tokens we made verify: a forged one would be a MAC break. */
        char again[AUTH_TOKEN_MAX];
        if (w.kind != AUTH_TOKEN)
            abort();
        (void)again;
    }
    if (n > 4)
        (void)cidr_set_has(nets, part[4]);
    free(s);
    return 0;
}
