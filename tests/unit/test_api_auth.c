/* test_api_auth.c -- Bearer keys (admin, tenant, unknown) and stream tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_auth.h"
#include "config.h"
#include "hq.h"

static cfg *make_cfg(const char *admin, const char *tenants, const char *secret) {
    char err[HQ_ERRLEN];
    cfg *c = cfg_new();
    assert_non_null(c);
    if (admin)
        assert_int_equal(cfg_set(c, "api.admin_keys", admin, err, sizeof(err)), HQ_OK);
    if (tenants)
        assert_int_equal(cfg_set(c, "api.tenant_keys", tenants, err, sizeof(err)), HQ_OK);
    if (secret)
        assert_int_equal(cfg_set(c, "api.stream_secret", secret, err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_OK);
    return c;
}

static void test_bearer(void **state) {
    cfg *c = make_cfg("admin-0123456789abcdef,admin2-0123456789abcdef",
                      "acme:acme-0123456789abcdef", NULL);
    char err[HQ_ERRLEN], why[HQ_ERRLEN];
    auth_keys *k = auth_keys_new(c, err, sizeof(err));
    auth_who w;
    (void)state;
    assert_non_null(k);
    assert_int_equal(auth_keys_count(k), 3);
    assert_int_equal(auth_bearer(k, "Bearer admin-0123456789abcdef", &w, why, sizeof(why)), HQ_OK);
    assert_int_equal(w.kind, AUTH_ADMIN);
    assert_int_equal(auth_bearer(k, "bearer admin2-0123456789abcdef", &w, why, sizeof(why)), HQ_OK);
    assert_int_equal(w.kind, AUTH_ADMIN);
    assert_int_equal(auth_bearer(k, "Bearer acme-0123456789abcdef", &w, why, sizeof(why)), HQ_OK);
    assert_int_equal(w.kind, AUTH_TENANT);
    assert_string_equal(w.tenant, "acme");
    /* a prefix, a longer key, the tenant-qualified form and other schemes are refused */
    assert_int_equal(auth_bearer(k, "Bearer admin-0123456789abcde", &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_bearer(k, "Bearer admin-0123456789abcdefX", &w, why, sizeof(why)),
                     HQ_ERR);
    assert_string_equal(why, "unknown API key");
    assert_int_equal(auth_bearer(k, "Bearer acme:acme-0123456789abcdef", &w, why, sizeof(why)),
                     HQ_ERR);
    assert_int_equal(auth_bearer(k, "Basic admin-0123456789abcdef", &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_bearer(k, NULL, &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_bearer(k, "", &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_bearer(k, "Bearer ", &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(w.kind, AUTH_NONE);
    auth_keys_free(k);
    cfg_free(c);
}

static void test_no_keys(void **state) {
    cfg *c = make_cfg(NULL, NULL, NULL);
    char err[HQ_ERRLEN], why[HQ_ERRLEN];
    auth_keys *k = auth_keys_new(c, err, sizeof(err));
    auth_who w;
    (void)state;
    assert_int_equal(auth_keys_count(k), 0);
    assert_int_equal(auth_bearer(k, "Bearer anything-at-all-0123", &w, why, sizeof(why)), HQ_ERR);
    auth_keys_free(k);
    cfg_free(c);
}

static void test_tokens(void **state) {
    cfg *c = make_cfg("admin-0123456789abcdef", NULL, NULL);
    cfg *c2 = make_cfg("admin-0123456789abcdef", NULL, NULL);
    cfg *c3 = make_cfg("other-0123456789abcdef", NULL, NULL);
    char err[HQ_ERRLEN], why[HQ_ERRLEN], tok[AUTH_TOKEN_MAX];
    auth_keys *k = auth_keys_new(c, err, sizeof(err)), *k2 = auth_keys_new(c2, err, sizeof(err)),
              *k3 = auth_keys_new(c3, err, sizeof(err));
    auth_who w;
    (void)state;
    assert_int_equal(auth_token_make(k, "acme", "task:*,mission.done", 2000000, tok, sizeof(tok)),
                     HQ_OK);
    assert_true(strncmp(tok, "hqs_", 4) == 0);
    assert_int_equal(auth_token_check(k, tok, 1000000, &w, why, sizeof(why)), HQ_OK);
    assert_int_equal(w.kind, AUTH_TOKEN);
    assert_string_equal(w.tenant, "acme");
    assert_string_equal(w.events, "task:*,mission.done");
    /* another replica with the same keys accepts it; other keys do not */
    assert_int_equal(auth_token_check(k2, tok, 1000000, &w, why, sizeof(why)), HQ_OK);
    assert_int_equal(auth_token_check(k3, tok, 1000000, &w, why, sizeof(why)), HQ_ERR);
    assert_string_equal(why, "bad stream token signature");
    /* expiry */
    assert_int_equal(auth_token_check(k, tok, 2000000, &w, why, sizeof(why)), HQ_ERR);
    assert_string_equal(why, "stream token expired");
    /* any changed character breaks it */
    for (size_t i = 4; i < strlen(tok); i++) {
        char t2[AUTH_TOKEN_MAX];
        strcpy(t2, tok);
        t2[i] = t2[i] == 'A' ? 'B' : 'A';
        if (auth_token_check(k, t2, 1000000, &w, why, sizeof(why)) == HQ_OK)
            fail_msg("token with byte %zu changed was accepted", i);
    }
    assert_int_equal(auth_token_check(k, "hqs_", 0, &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_token_check(k, "nope", 0, &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_token_check(k, NULL, 0, &w, why, sizeof(why)), HQ_ERR);
    assert_int_equal(auth_token_check(k, "hqs_.", 0, &w, why, sizeof(why)), HQ_ERR);
    /* an admin token for every tenant */
    assert_int_equal(auth_token_make(k, "", "*", 2000000, tok, sizeof(tok)), HQ_OK);
    assert_int_equal(auth_token_check(k, tok, 1, &w, why, sizeof(why)), HQ_OK);
    assert_string_equal(w.tenant, "");
    /* '|' cannot be smuggled into the fields */
    assert_int_equal(auth_token_make(k, "a|b", "*", 2000000, tok, sizeof(tok)), HQ_ERR);
    assert_int_equal(auth_token_make(k, "a", "*", 2000000, tok, 10), HQ_ERR);
    auth_keys_free(k);
    auth_keys_free(k2);
    auth_keys_free(k3);
    cfg_free(c);
    cfg_free(c2);
    cfg_free(c3);
}

static void test_config_checks(void **state) {
    char err[HQ_ERRLEN];
    cfg *c = cfg_new();
    (void)state;
    assert_int_equal(cfg_set(c, "api.admin_keys", "short", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "api.admin_keys"));
    assert_int_equal(cfg_set(c, "api.admin_keys", "", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_set(c, "api.tenant_keys", "nocolon0123456789abc", err, sizeof(err)),
                     HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "TENANT:KEY"));
    assert_int_equal(
        cfg_set(c, "api.tenant_keys", "bad tenant:0123456789abcdefgh", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    assert_int_equal(cfg_set(c, "api.tenant_keys", "", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_set(c, "api.listen", "8080", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "api.listen"));
    assert_int_equal(cfg_set(c, "api.listen", "[::1]:0", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_set(c, "api.trusted_proxies", "10.0.0.0/33", err, sizeof(err)), HQ_OK);
    assert_int_equal(cfg_validate(c, err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "api.trusted_proxies"));
    cfg_free(c);
}

static void test_dump_masks_keys(void **state) {
    cfg *c = make_cfg("admin-0123456789abcdef", "acme:acme-0123456789abcdef",
                      "stream-secret-0123456789");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    (void)state;
    assert_int_equal(cfg_dump(c, f, 0), HQ_OK);
    fclose(f);
    assert_null(strstr(buf, "0123456789abcdef"));
    assert_null(strstr(buf, "stream-secret"));
    assert_non_null(strstr(buf, "api.tenant_keys: acme:****"));
    assert_non_null(strstr(buf, "api.admin_keys: ****"));
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_int_equal(cfg_dump(c, f, 1), HQ_OK);
    fclose(f);
    assert_null(strstr(buf, "0123456789abcdef"));
    free(buf);
    cfg_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),          cmocka_unit_test(test_no_keys),
        cmocka_unit_test(test_tokens),          cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_dump_masks_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
