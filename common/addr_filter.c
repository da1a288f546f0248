/* addr_filter.c -- outbound address filter (SSRF defence).
 *
 * Addresses are compared as byte strings with a prefix length. IPv6 forms that carry
 * an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that IPv4 address,
 * because that is where the packets end up. */
#include "addr_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"

typedef struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
} cidr;

struct addr_filter {
    int allow_private;
    size_t n;
    cidr *allow;
};

/* A blocked range and the class named in refusals. */
typedef struct range {
    unsigned char addr[16];
    int prefix;
    const char *what;
} range;

static const range v4_blocked[] = {
    {{0, 0, 0, 0}, 8, "this-network"},       {{10, 0, 0, 0}, 8, "private"},
    {{100, 64, 0, 0}, 10, "shared (CGNAT)"}, {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link-local"},    {{172, 16, 0, 0}, 12, "private"},
    {{192, 0, 0, 0}, 24, "IETF protocol"},   {{192, 168, 0, 0}, 16, "private"},
    {{198, 18, 0, 0}, 15, "benchmarking"},   {{224, 0, 0, 0}, 4, "multicast"},
    {{255, 255, 255, 255}, 32, "broadcast"}, {{240, 0, 0, 0}, 4, "reserved"},
};

static const range v6_blocked[] = {
    {{0}, 128, "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
    {{0xfc}, 7, "unique-local"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xff}, 8, "multicast"},
};

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix) {
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((a[full] & mask) != (net[full] & mask))
            return 0;
    }
    return 1;
}

static int parse_cidr(const char *s, cidr *out, char *err, size_t errlen) {
    char buf[INET6_ADDRSTRLEN + 8];
    if (!s || !*s)
        return hq_seterr(err, errlen, "CIDR is empty");
    size_t len = strnlen(s, sizeof(buf));
    if (len >= sizeof(buf))
        return hq_seterr(err, errlen, "CIDR is too long");
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return hq_seterr(err, errlen, "CIDR '%s' has an invalid address", buf);
    }
    if (slash) {
        const char *p = slash + 1;
        int v = 0;
        if (!*p || strlen(p) > 3)
            return hq_seterr(err, errlen, "CIDR '%s' has an invalid prefix length", s);
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return hq_seterr(err, errlen, "CIDR '%s' has an invalid prefix length", s);
            v = v * 10 + (*p - '0');
        }
        if (v > out->prefix)
            return hq_seterr(err, errlen, "CIDR '%s' prefix length is over %d", s, out->prefix);
        out->prefix = v;
    }
    /* clear host bits so matching only looks at the network part */
    int bytes = out->family == AF_INET ? 4 : 16;
    for (int i = 0; i < bytes; i++) {
        int keep = out->prefix - i * 8;
        if (keep <= 0)
            out->addr[i] = 0;
        else if (keep < 8)
            out->addr[i] &= (unsigned char)(0xff << (8 - keep));
    }
    return HQ_OK;
}

int addr_filter_cidr_valid(const char *c, char *err, size_t errlen) {
    cidr tmp;
    return parse_cidr(c, &tmp, err, errlen);
}

addr_filter *addr_filter_new(int allow_private, const char *const *cidrs, size_t n, char *err,
                             size_t errlen) {
    addr_filter *f = calloc(1, sizeof(*f));
    if (!f) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    f->allow_private = allow_private;
    if (n) {
        if (!cidrs) {
            hq_seterr(err, errlen, "CIDR list is missing");
            goto fail;
        }
        f->allow = calloc(n, sizeof(*f->allow));
        if (!f->allow) {
            hq_seterr(err, errlen, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (parse_cidr(cidrs[i], &f->allow[i], err, errlen) != HQ_OK)
                goto fail;
        }
        f->n = n;
    }
    return f;
fail:
    addr_filter_free(f);
    return NULL;
}

void addr_filter_free(addr_filter *f) {
    if (!f)
        return;
    free(f->allow);
    free(f);
}

static const cidr *allowed_by(const addr_filter *f, int family, const unsigned char *a) {
    if (!f)
        return NULL;
    for (size_t i = 0; i < f->n; i++) {
        if (f->allow[i].family == family && prefix_match(a, f->allow[i].addr, f->allow[i].prefix))
            return &f->allow[i];
    }
    return NULL;
}

static const char *blocked_class(const range *r, size_t n, const unsigned char *a) {
    for (size_t i = 0; i < n; i++) {
        if (prefix_match(a, r[i].addr, r[i].prefix))
            return r[i].what;
    }
    return NULL;
}

/* If a carries an IPv4 address, copy it to v4 and return the name of the form. */
static const char *embedded_v4(const unsigned char *a, unsigned char v4[4]) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char compat[12] = {0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, mapped, 12) == 0) {
        memcpy(v4, a + 12, 4);
        return "IPv4-mapped";
    }
    if (memcmp(a, nat64, 12) == 0) {
        memcpy(v4, a + 12, 4);
        return "NAT64";
    }
    if (a[0] == 0x20 && a[1] == 0x02) {
        memcpy(v4, a + 2, 4);
        return "6to4";
    }
    /* :: and ::1 are classified as themselves before this is reached */
    if (memcmp(a, compat, 12) == 0) {
        memcpy(v4, a + 12, 4);
        return "IPv4-compatible";
    }
    return NULL;
}

static void set_reason(char *reason, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_reason(char *reason, size_t len, const char *fmt, ...) {
    if (!reason || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, len, fmt, ap);
    va_end(ap);
}

static void cidr_str(const cidr *c, char *buf, size_t len) {
    char a[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, a, sizeof(a));
    snprintf(buf, len, "%s/%d", a, c->prefix);
}

int addr_filter_allowed(const addr_filter *f, const struct sockaddr *sa, char *reason,
                        size_t reasonlen) {
    char s6[INET6_ADDRSTRLEN], s4[INET_ADDRSTRLEN], cs[INET6_ADDRSTRLEN + 8];
    const unsigned char *a;
    const cidr *c;
    if (!sa) {
        set_reason(reason, reasonlen, "no address");
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        inet_ntop(AF_INET, a, s4, sizeof(s4));
        c = allowed_by(f, AF_INET, a);
        if (c) {
            cidr_str(c, cs, sizeof(cs));
            set_reason(reason, reasonlen, "address %s allowed by %s", s4, cs);
            return 1;
        }
        const char *what = blocked_class(v4_blocked, sizeof(v4_blocked) / sizeof(v4_blocked[0]), a);
        if (!what) {
            set_reason(reason, reasonlen, "public address %s", s4);
            return 1;
        }
        if (f && f->allow_private) {
            set_reason(reason, reasonlen, "%s address %s allowed by config", what, s4);
            return 1;
        }
        set_reason(reason, reasonlen, "%s address %s", what, s4);
        return 0;
    }
    if (sa->sa_family != AF_INET6) {
        set_reason(reason, reasonlen, "unsupported address family %d", (int)sa->sa_family);
        return 0;
    }
    a = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    inet_ntop(AF_INET6, a, s6, sizeof(s6));
    c = allowed_by(f, AF_INET6, a);
    if (c) {
        cidr_str(c, cs, sizeof(cs));
        set_reason(reason, reasonlen, "address %s allowed by %s", s6, cs);
        return 1;
    }
    const char *what = blocked_class(v6_blocked, sizeof(v6_blocked) / sizeof(v6_blocked[0]), a);
    if (what) {
        if (f && f->allow_private) {
            set_reason(reason, reasonlen, "%s address %s allowed by config", what, s6);
            return 1;
        }
        set_reason(reason, reasonlen, "%s address %s", what, s6);
        return 0;
    }
    unsigned char v4[4];
    const char *form = embedded_v4(a, v4);
    if (form) {
        inet_ntop(AF_INET, v4, s4, sizeof(s4));
        c = allowed_by(f, AF_INET, v4);
        if (c) {
            cidr_str(c, cs, sizeof(cs));
            set_reason(reason, reasonlen, "address %s (%s %s) allowed by %s", s4, form, s6, cs);
            return 1;
        }
        what = blocked_class(v4_blocked, sizeof(v4_blocked) / sizeof(v4_blocked[0]), v4);
        if (what) {
            if (f && f->allow_private) {
                set_reason(reason, reasonlen, "%s address %s (%s %s) allowed by config", what, s4,
                           form, s6);
                return 1;
            }
            set_reason(reason, reasonlen, "%s address %s (%s %s)", what, s4, form, s6);
            return 0;
        }
    }
    set_reason(reason, reasonlen, "public address %s", s6);
    return 1;
}
