/* test_addr_filter.c -- outbound address filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "hq.h"
#include "addr_filter.h"

/* Build a sockaddr from text (v4 or v6) and ask f. */
static int check(const addr_filter *f, const char *addr, char *reason, size_t len) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(443);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(443);
    } else {
        fail_msg("test address %s does not parse", addr);
    }
    return addr_filter_allowed(f, (struct sockaddr *)&ss, reason, len);
}

static void blocked(const addr_filter *f, const char *addr, const char *class_, const char *shown) {
    char reason[128] = "";
    if (check(f, addr, reason, sizeof(reason)) != 0)
        fail_msg("%s was allowed (%s)", addr, reason);
    if (!strstr(reason, class_) || !strstr(reason, shown))
        fail_msg("%s: reason '%s' lacks '%s' / '%s'", addr, reason, class_, shown);
}

static void allowed(const addr_filter *f, const char *addr) {
    char reason[128] = "";
    if (check(f, addr, reason, sizeof(reason)) != 1)
        fail_msg("%s was refused: %s", addr, reason);
}

static void test_v4_blocked(void **state) {
    addr_filter *f = addr_filter_new(0, NULL, 0, NULL, 0);
    assert_non_null(f);
    blocked(f, "0.0.0.0", "this-network", "0.0.0.0");
    blocked(f, "0.1.2.3", "this-network", "0.1.2.3");
    blocked(f, "10.0.0.1", "private", "10.0.0.1");
    blocked(f, "10.255.255.255", "private", "10.255.255.255");
    blocked(f, "100.64.0.1", "CGNAT", "100.64.0.1");
    blocked(f, "100.127.255.254", "CGNAT", "100.127.255.254");
    blocked(f, "127.0.0.1", "loopback", "127.0.0.1");
    blocked(f, "127.255.0.9", "loopback", "127.255.0.9");
    blocked(f, "169.254.169.254", "link-local", "169.254.169.254");
    blocked(f, "172.16.0.1", "private", "172.16.0.1");
    blocked(f, "172.31.255.255", "private", "172.31.255.255");
    blocked(f, "192.0.0.8", "IETF", "192.0.0.8");
    blocked(f, "192.168.1.1", "private", "192.168.1.1");
    blocked(f, "198.18.0.1", "benchmarking", "198.18.0.1");
    blocked(f, "198.19.255.255", "benchmarking", "198.19.255.255");
    blocked(f, "224.0.0.1", "multicast", "224.0.0.1");
    blocked(f, "239.255.255.250", "multicast", "239.255.255.250");
    blocked(f, "240.0.0.1", "reserved", "240.0.0.1");
    blocked(f, "255.255.255.255", "broadcast", "255.255.255.255");
    char reason[128];
    check(f, "127.0.0.1", reason, sizeof(reason));
    assert_string_equal(reason, "loopback address 127.0.0.1");
    addr_filter_free(f);
}

static void test_v4_edges_allowed(void **state) {
    addr_filter *f = addr_filter_new(0, NULL, 0, NULL, 0);
    assert_non_null(f);
    allowed(f, "8.8.8.8");
    allowed(f, "1.1.1.1");
    allowed(f, "9.255.255.255");
    allowed(f, "11.0.0.0");
    allowed(f, "100.63.255.255");
    allowed(f, "100.128.0.0");
    allowed(f, "126.255.255.255");
    allowed(f, "128.0.0.0");
    allowed(f, "169.253.255.255");
    allowed(f, "169.255.0.0");
    allowed(f, "172.15.255.255");
    allowed(f, "172.32.0.0");
    allowed(f, "192.0.1.0");
    allowed(f, "192.167.255.255");
    allowed(f, "192.169.0.0");
    allowed(f, "198.17.255.255");
    allowed(f, "198.20.0.0");
    allowed(f, "223.255.255.255");
    char reason[128];
    assert_int_equal(check(f, "8.8.8.8", reason, sizeof(reason)), 1);
    assert_string_equal(reason, "public address 8.8.8.8");
    addr_filter_free(f);
}

static void test_v6(void **state) {
    addr_filter *f = addr_filter_new(0, NULL, 0, NULL, 0);
    assert_non_null(f);
    blocked(f, "::", "unspecified", "::");
    blocked(f, "::1", "loopback", "::1");
    blocked(f, "fc00::1", "unique-local", "fc00::1");
    blocked(f, "fdff:ffff::1", "unique-local", "fdff:ffff::1");
    blocked(f, "fe80::1", "link-local", "fe80::1");
    blocked(f, "febf::1", "link-local", "febf::1");
    blocked(f, "ff02::1", "multicast", "ff02::1");
    allowed(f, "2606:4700::1");
    allowed(f, "2001:4860:4860::8888");
    allowed(f, "fec0::1");
    allowed(f, "fbff::1");
    addr_filter_free(f);
}

static void test_v6_embedded_v4(void **state) {
    addr_filter *f = addr_filter_new(0, NULL, 0, NULL, 0);
    assert_non_null(f);
    blocked(f, "::ffff:127.0.0.1", "loopback", "127.0.0.1");
    blocked(f, "::ffff:127.0.0.1", "IPv4-mapped", "::ffff:127.0.0.1");
    blocked(f, "::ffff:169.254.169.254", "link-local", "169.254.169.254");
    blocked(f, "::ffff:10.1.2.3", "private", "10.1.2.3");
    blocked(f, "64:ff9b::7f00:1", "loopback", "127.0.0.1");
    blocked(f, "64:ff9b::7f00:1", "NAT64", "64:ff9b::");
    blocked(f, "64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254");
    blocked(f, "2002:7f00:1::", "loopback", "127.0.0.1");
    blocked(f, "2002:7f00:1::", "6to4", "2002:7f00:1::");
    blocked(f, "2002:c0a8:101::1", "private", "192.168.1.1");
    blocked(f, "::127.0.0.1", "loopback", "127.0.0.1");
    blocked(f, "::127.0.0.1", "IPv4-compatible", "127.0.0.1");
    blocked(f, "::10.0.0.1", "private", "10.0.0.1");
    /* the same forms of public IPv4 addresses are fine */
    allowed(f, "::ffff:8.8.8.8");
    allowed(f, "64:ff9b::808:808");
    allowed(f, "2002:808:808::1");
    char reason[128];
    check(f, "::ffff:127.0.0.1", reason, sizeof(reason));
    assert_string_equal(reason, "loopback address 127.0.0.1 (IPv4-mapped ::ffff:127.0.0.1)");
    addr_filter_free(f);
}

static void test_allow_private(void **state) {
    addr_filter *f = addr_filter_new(1, NULL, 0, NULL, 0);
    assert_non_null(f);
    allowed(f, "127.0.0.1");
    allowed(f, "10.0.0.1");
    allowed(f, "169.254.169.254");
    allowed(f, "::1");
    allowed(f, "fe80::1");
    allowed(f, "::ffff:127.0.0.1");
    allowed(f, "64:ff9b::7f00:1");
    allowed(f, "8.8.8.8");
    char reason[128];
    check(f, "127.0.0.1", reason, sizeof(reason));
    assert_non_null(strstr(reason, "allowed by config"));
    addr_filter_free(f);
}

static void test_allow_cidrs(void **state) {
    const char *const cidrs[] = {"10.1.0.0/16", "fd00::/8", "127.0.0.1", "192.168.5.77/24"};
    char err[HQ_ERRLEN] = "";
    addr_filter *f = addr_filter_new(0, cidrs, 4, err, sizeof(err));
    assert_non_null(f);
    allowed(f, "10.1.0.1");
    allowed(f, "10.1.255.255");
    blocked(f, "10.2.0.1", "private", "10.2.0.1");
    blocked(f, "10.0.255.255", "private", "10.0.255.255");
    allowed(f, "fd12:3456::1");
    blocked(f, "fc00::1", "unique-local", "fc00::1");
    allowed(f, "127.0.0.1");
    blocked(f, "127.0.0.2", "loopback", "127.0.0.2");
    /* host bits in a CIDR are ignored: 192.168.5.77/24 is 192.168.5.0/24 */
    allowed(f, "192.168.5.1");
    blocked(f, "192.168.6.1", "private", "192.168.6.1");
    /* exceptions also cover the IPv6 forms of an allowed IPv4 address */
    allowed(f, "::ffff:10.1.2.3");
    allowed(f, "64:ff9b::7f00:1");
    blocked(f, "::ffff:10.2.2.3", "private", "10.2.2.3");
    char reason[128];
    assert_int_equal(check(f, "10.1.2.3", reason, sizeof(reason)), 1);
    assert_string_equal(reason, "address 10.1.2.3 allowed by 10.1.0.0/16");
    /* reason may be NULL */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.2.0.1", &sin.sin_addr);
    assert_int_equal(addr_filter_allowed(f, (struct sockaddr *)&sin, NULL, 0), 0);
    addr_filter_free(f);
}

static void test_allow_all_cidr(void **state) {
    const char *const cidrs[] = {"0.0.0.0/0"};
    addr_filter *f = addr_filter_new(0, cidrs, 1, NULL, 0);
    assert_non_null(f);
    allowed(f, "127.0.0.1");
    allowed(f, "::ffff:127.0.0.1");
    blocked(f, "::1", "loopback", "::1");
    addr_filter_free(f);
}

static void test_bad_cidrs(void **state) {
    static const char *const bad[] = {
        "",
        "10.0.0.0/",
        "10.0.0.0/33",
        "fd00::/129",
        "10.0.0/8",
        "10.0.0.0/8x",
        "10.0.0.0/-1",
        "10.0.0.0/0008",
        "nonsense",
        "fd00::/8/8",
        "10.0.0.256/32",
        " 10.0.0.0/8",
        "fe80::1%eth0/64",
    };
    char err[HQ_ERRLEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (addr_filter_cidr_valid(bad[i], err, sizeof(err)) != HQ_ERR)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(strlen(err) > 0);
        const char *const one[] = {bad[i]};
        assert_null(addr_filter_new(0, one, 1, err, sizeof(err)));
    }
    assert_int_equal(addr_filter_cidr_valid(NULL, err, sizeof(err)), HQ_ERR);
    assert_int_equal(addr_filter_cidr_valid("10.0.0.0/33", err, sizeof(err)), HQ_ERR);
    assert_non_null(strstr(err, "10.0.0.0/33"));
    /* a bad entry after good ones fails the whole set */
    const char *const mixed[] = {"10.0.0.0/8", "bogus"};
    assert_null(addr_filter_new(0, mixed, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "bogus"));
    assert_null(addr_filter_new(0, NULL, 2, err, sizeof(err)));

    static const char *const good[] = {"10.0.0.0/8", "0.0.0.0/0", "::/0",         "fd00::/8",
                                       "1.2.3.4",    "::1",       "2001:db8::/32"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(addr_filter_cidr_valid(good[i], err, sizeof(err)), HQ_OK);
}

static void test_odd_inputs(void **state) {
    char reason[128] = "";
    assert_int_equal(addr_filter_allowed(NULL, NULL, reason, sizeof(reason)), 0);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_int_equal(addr_filter_allowed(NULL, &sa, reason, sizeof(reason)), 0);
    assert_non_null(strstr(reason, "family"));
    /* a NULL filter means the defaults */
    blocked(NULL, "127.0.0.1", "loopback", "127.0.0.1");
    allowed(NULL, "8.8.8.8");
    /* a short reason buffer is truncated, not overrun */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    assert_int_equal(check(NULL, "169.254.169.254", tiny, sizeof(tiny)), 0);
    assert_int_equal(strlen(tiny), 7);
    addr_filter_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_blocked),
        cmocka_unit_test(test_v4_edges_allowed),
        cmocka_unit_test(test_v6),
        cmocka_unit_test(test_v6_embedded_v4),
        cmocka_unit_test(test_allow_private),
        cmocka_unit_test(test_allow_cidrs),
        cmocka_unit_test(test_allow_all_cidr),
        cmocka_unit_test(test_bad_cidrs),
        cmocka_unit_test(test_odd_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
