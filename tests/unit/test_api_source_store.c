/* test_api_source_store.c -- inbound sources without Redis: ids, payload ids, keys, the
 * create/update body rules (errors name the field), the event type from a header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_source_store.h"
#include "hq.h"

static void test_ids(void **state) {
    char a[SOURCE_ID_LEN], b[SOURCE_ID_LEN], pid[PAYLOAD_ID_LEN], sid[64];
    (void)state;
    assert_int_equal(source_id_new(a, sizeof(a)), HQ_OK);
    assert_int_equal(source_id_new(b, sizeof(b)), HQ_OK);
    assert_int_equal(strlen(a), 4 + SOURCE_ID_HEX);
    assert_true(strncmp(a, "src_", 4) == 0);
    assert_string_not_equal(a, b); /* 128 random bits */
    assert_true(source_id_valid(a));
    assert_false(source_id_valid("src_"));
    assert_false(source_id_valid("src_0123"));
    assert_false(source_id_valid("ep_0123456789abcdef0123456789abcdef"));
    a[10] = 'G';
    assert_false(source_id_valid(a));
    assert_int_equal(source_id_new(b, 8), HQ_ERR);

    payload_id_from_sid("1732000000000-7", pid, sizeof(pid));
    assert_string_equal(pid, "pay_1732000000000-7");
    assert_int_equal(payload_id_to_sid(pid, sid, sizeof(sid)), HQ_OK);
    assert_string_equal(sid, "1732000000000-7");
    assert_int_equal(payload_id_to_sid("pay_x-1", sid, sizeof(sid)), HQ_ERR);
    assert_int_equal(payload_id_to_sid("evt_1-1", sid, sizeof(sid)), HQ_ERR);
    assert_true(payload_sid_valid("1-0"));
    assert_false(payload_sid_valid("1-"));
    assert_false(payload_sid_valid("-1"));
}

static void test_keys(void **state) {
    char k[256];
    (void)state;
    assert_int_equal(source_set_key("hookq", k, sizeof(k)), HQ_OK);
    assert_string_equal(k, "hookq:sources");
    assert_int_equal(source_key("hookq", "src_ab", "payloads", k, sizeof(k)), HQ_OK);
    assert_string_equal(k, "hookq:{src_ab}:payloads");
    assert_int_equal(source_key("hookq", "src_ab", "payloads", k, 8), HQ_ERR);
}

static int apply(const char *json, int creating, char *field, char *err) {
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    source s;
    int rc;
    assert_non_null(j);
    memset(&s, 0, sizeof(s));
    s.enabled = 1;
    if (!creating)
        s.event_type = strdup("github.event");
    field[0] = err[0] = '\0';
    rc = source_apply_json(&s, j, creating, field, 128, err, HQ_ERRLEN);
    if (rc == HQ_OK)
        assert_true(!s.event_type != !s.event_type_header);
    source_clear(&s);
    json_decref(j);
    return rc;
}

static void test_bodies(void **state) {
    char field[128], err[HQ_ERRLEN];
    (void)state;
    assert_int_equal(apply("{\"event_type\":\"github.event\",\"verification\":{\"type\":\"github\","
                           "\"secret\":\"s3cret\"}}",
                           1, field, err),
                     HQ_OK);
    assert_int_equal(apply("{\"event_type_header\":\"X-GitHub-Event\",\"event_type_prefix\":"
                           "\"github.\",\"verification\":{\"type\":\"none\"},\"allow_ips\":[\"10."
                           "0.0.0/8\"]}",
                           1, field, err),
                     HQ_OK);
    /* both ways of naming the type, or neither */
    assert_int_equal(apply("{\"event_type\":\"a.b\",\"event_type_header\":\"X-E\","
                           "\"verification\":{\"type\":\"none\"}}",
                           1, field, err),
                     HQ_ERR);
    assert_true(strlen(field) > 0);
    assert_int_equal(apply("{\"verification\":{\"type\":\"none\"}}", 1, field, err), HQ_ERR);
    /* a bad CIDR names allow_ips */
    assert_int_equal(apply("{\"event_type\":\"a.b\",\"verification\":{\"type\":\"none\"},"
                           "\"allow_ips\":[\"10.0.0.0/40\"]}",
                           1, field, err),
                     HQ_ERR);
    assert_non_null(strstr(field, "allow_ips"));
    /* a verifier problem names the verifier's field */
    assert_int_equal(
        apply("{\"event_type\":\"a.b\",\"verification\":{\"type\":\"stripe\"}}", 1, field, err),
        HQ_ERR);
    assert_non_null(strstr(field, "verification"));
    /* a bad event type names it */
    assert_int_equal(
        apply("{\"event_type\":\"no spaces\",\"verification\":{\"type\":\"none\"}}", 1, field, err),
        HQ_ERR);
    assert_string_equal(field, "event_type");
    /* dedupe needs a sender that gives a delivery id */
    assert_int_equal(apply("{\"event_type\":\"a.b\",\"verification\":{\"type\":\"none\"},"
                           "\"dedupe\":true}",
                           1, field, err),
                     HQ_ERR);
    assert_string_equal(field, "dedupe");
    /* an update changes only what it names */
    assert_int_equal(apply("{\"description\":\"x\"}", 0, field, err), HQ_OK);
    assert_int_equal(apply("{\"enabled\":\"yes\"}", 0, field, err), HQ_ERR);
    assert_string_equal(field, "enabled");
}

static void test_event_type_from_header(void **state) {
    source s;
    char out[200], err[HQ_ERRLEN];
    (void)state;
    memset(&s, 0, sizeof(s));
    s.event_type_header = "X-GitHub-Event";
    s.event_type_prefix = "github.";
    assert_int_equal(source_event_type(&s, "push", out, sizeof(out), err, sizeof(err)), HQ_OK);
    assert_string_equal(out, "github.push");
    assert_int_equal(source_event_type(&s, "pull request/x", out, sizeof(out), err, sizeof(err)),
                     HQ_OK);
    assert_string_equal(out, "github.pull_request_x");
    assert_int_equal(source_event_type(&s, NULL, out, sizeof(out), err, sizeof(err)), HQ_ERR);
    assert_int_equal(source_event_type(&s, "", out, sizeof(out), err, sizeof(err)), HQ_ERR);
    s.event_type_header = NULL;
    s.event_type_prefix = NULL;
    s.event_type = "stripe.event";
    assert_int_equal(source_event_type(&s, "ignored", out, sizeof(out), err, sizeof(err)), HQ_OK);
    assert_string_equal(out, "stripe.event");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_event_type_from_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
