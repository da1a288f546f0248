/* test_request.c -- the signed headers of one attempt, checked against the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hq.h"
#include "request.h"
#include "signature.h"

static const char *hval(const request *r, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n; i++)
        if (strncmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return r->headers[i] + n + 2;
    return NULL;
}

typedef struct fx {
    ep e;
    epindex_ent en;
    evcache_ev ev;
    char secret[128], old[128];
} fx;

static void setup_fx(fx *f, int with_old) {
    memset(f, 0, sizeof *f);
    char err[HQ_ERRLEN];
    assert_int_equal(sign_secret_generate(f->secret, sizeof f->secret), HQ_OK);
    assert_int_equal(sign_secret_generate(f->old, sizeof f->old), HQ_OK);
    f->e.id = "ep_1";
    f->e.url = "http://127.0.0.1:9/";
    f->e.secret = f->secret;
    f->e.enabled = 1;
    f->en.e = &f->e;
    assert_int_equal(sign_secret_decode(f->secret, f->en.key, &f->en.keylen, err, sizeof err),
                     HQ_OK);
    if (with_old) {
        f->e.secret_old = f->old;
        f->e.secret_old_until = 2000000000000LL;
        assert_int_equal(
            sign_secret_decode(f->old, f->en.key_old, &f->en.key_oldlen, err, sizeof err), HQ_OK);
    }
    f->ev.e.id = "evt_1";
    f->ev.e.type = "task:done";
    f->ev.body = "{\"id\":\"evt_1\"}";
    f->ev.bodylen = strlen(f->ev.body);
}

static void test_headers_and_signature(void **state) {
    (void)state;
    fx f;
    setup_fx(&f, 0);
    static char *names[] = {"X-Team"}, *vals[] = {"core"};
    f.e.header_names = names;
    f.e.header_values = vals;
    f.e.n_headers = 1;
    request r = {0};
    char err[HQ_ERRLEN];
    int64_t now = 1700000000123LL;
    assert_int_equal(request_build(&r, &f.en, &f.ev, 3, "dlv_9", now, err, sizeof err), HQ_OK);
    assert_string_equal(hval(&r, "webhook-id"), "evt_1");
    assert_string_equal(hval(&r, "webhook-timestamp"), "1700000000");
    assert_string_equal(hval(&r, "X-Hookq-Attempt"), "3");
    assert_string_equal(hval(&r, "X-Hookq-Delivery-Id"), "dlv_9");
    assert_string_equal(hval(&r, "X-Hookq-Event-Type"), "task:done");
    assert_null(hval(&r, "X-Hub-Signature-256"));
    assert_string_equal(r.headers[r.n - 1], "X-Team: core"); /* the endpoint's come last */
    assert_int_equal(sign_verify_v1(f.secret, "evt_1", 1700000000, f.ev.body, f.ev.bodylen,
                                    hval(&r, "webhook-signature")),
                     HQ_OK);
    assert_int_not_equal(sign_verify_v1(f.old, "evt_1", 1700000000, f.ev.body, f.ev.bodylen,
                                        hval(&r, "webhook-signature")),
                         HQ_OK);
    request_clear(&r);
    assert_int_equal(r.n, 0);
}

/* During a rotation both secrets sign webhook-signature; after the grace only the new. */
static void test_rotation(void **state) {
    (void)state;
    fx f;
    setup_fx(&f, 1);
    request r = {0};
    char err[HQ_ERRLEN];
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 1700000000000LL, err, sizeof err),
                     HQ_OK);
    const char *sig = hval(&r, "webhook-signature");
    assert_non_null(strchr(sig, ' '));
    assert_int_equal(sign_verify_v1(f.old, "evt_1", 1700000000, f.ev.body, f.ev.bodylen, sig),
                     HQ_OK);
    assert_int_equal(sign_verify_v1(f.secret, "evt_1", 1700000000, f.ev.body, f.ev.bodylen, sig),
                     HQ_OK);
    request_clear(&r);
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 2100000000000LL, err, sizeof err),
                     HQ_OK);
    assert_null(strchr(hval(&r, "webhook-signature"), ' '));
    request_clear(&r);
}

static void test_github_header(void **state) {
    (void)state;
    fx f;
    setup_fx(&f, 0);
    f.e.github_signature = 1;
    request r = {0};
    char err[HQ_ERRLEN], want[SIGN_GH_LEN];
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 1700000000000LL, err, sizeof err),
                     HQ_OK);
    assert_int_equal(sign_github(f.secret, f.ev.body, f.ev.bodylen, want, sizeof want), HQ_OK);
    assert_string_equal(hval(&r, "X-Hub-Signature-256"), want);
    request_clear(&r);
}

/* github_secret previous: during the grace the single X-Hub-Signature-256 is signed with
 * the old secret, so a receiver that checks one secret keeps verifying; after it, new. */
static void test_github_previous_during_grace(void **state) {
    (void)state;
    fx f;
    setup_fx(&f, 1);
    f.e.github_signature = 1;
    f.e.github_secret = EP_GITHUB_SECRET_PREVIOUS;
    request r = {0};
    char err[HQ_ERRLEN], want_old[SIGN_GH_LEN], want_new[SIGN_GH_LEN];
    assert_int_equal(sign_github(f.old, f.ev.body, f.ev.bodylen, want_old, sizeof want_old), HQ_OK);
    assert_int_equal(sign_github(f.secret, f.ev.body, f.ev.bodylen, want_new, sizeof want_new),
                     HQ_OK);
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 1700000000000LL, err, sizeof err),
                     HQ_OK);
    assert_string_equal(hval(&r, "X-Hub-Signature-256"), want_old);
    request_clear(&r);
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 2100000000000LL, err, sizeof err),
                     HQ_OK);
    assert_string_equal(hval(&r, "X-Hub-Signature-256"), want_new);
    request_clear(&r);
    f.e.github_secret = EP_GITHUB_SECRET_CURRENT; /* the default: the new one at once */
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 1700000000000LL, err, sizeof err),
                     HQ_OK);
    assert_string_equal(hval(&r, "X-Hub-Signature-256"), want_new);
    request_clear(&r);
}

static void test_no_secret_is_an_error(void **state) {
    (void)state;
    fx f;
    setup_fx(&f, 0);
    f.en.keylen = 0;
    request r = {0};
    char err[HQ_ERRLEN];
    assert_int_equal(request_build(&r, &f.en, &f.ev, 1, "dlv_1", 1, err, sizeof err), HQ_ERR);
    assert_non_null(strstr(err, "secret"));
    assert_int_equal(r.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_and_signature),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_github_header),
        cmocka_unit_test(test_github_previous_during_grace),
        cmocka_unit_test(test_no_secret_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
