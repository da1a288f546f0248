/* cidr.c -- see cidr.h. */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"

typedef struct block {
    unsigned char net[16]; /* IPv4 kept as IPv4-mapped IPv6 */
    int bits;              /* of the 128 */
} block;

struct cidr_set {
    block *b;
    size_t n;
};

/* addr text -> 16 bytes (IPv4 mapped). 1 if IPv4, 0 if IPv6, -1 if neither. */
static int parse_addr(const char *s, unsigned char out[16]) {
    char buf[64];
    size_t n = strlen(s);
    struct in_addr a4;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 1;
    }
    if (inet_pton(AF_INET6, buf, out) == 1)
        return 0;
    return -1;
}

static int parse_block(const char *text, block *b, char *err, size_t errlen) {
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    int v4, bits;
    if (alen == 0 || alen >= sizeof(addr))
        return hq_seterr(err, errlen, "'%.64s' is not an address or CIDR", text);
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    if ((v4 = parse_addr(addr, b->net)) < 0)
        return hq_seterr(err, errlen, "'%.64s' is not an address or CIDR", text);
    bits = v4 ? 32 : 128;
    if (slash) {
        char *end;
        long l = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || l < 0 || l > bits)
            return hq_seterr(err, errlen, "'%.64s': prefix length must be 0..%d", text, bits);
        bits = (int)l;
    }
    b->bits = v4 ? 96 + bits : bits;
    /* Clear host bits so matching compares prefixes only. */
    for (int i = b->bits; i < 128; i++)
        b->net[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    return HQ_OK;
}

cidr_set *cidr_set_new(const char *const *texts, size_t n, char *err, size_t errlen) {
    cidr_set *s = calloc(1, sizeof(*s));
    if (!s) {
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (n && !(s->b = calloc(n, sizeof(block)))) {
        free(s);
        hq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (parse_block(texts[i], &s->b[i], err, errlen) != HQ_OK) {
            cidr_set_free(s);
            return NULL;
        }
    }
    s->n = n;
    return s;
}

void cidr_set_free(cidr_set *s) {
    if (!s)
        return;
    free(s->b);
    free(s);
}

size_t cidr_set_size(const cidr_set *s) {
    return s ? s->n : 0;
}

int cidr_set_has(const cidr_set *s, const char *addr) {
    unsigned char a[16];
    if (!s || !addr || parse_addr(addr, a) < 0)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        const block *b = &s->b[i];
        int full = b->bits / 8, rest = b->bits % 8;
        if (memcmp(a, b->net, (size_t)full) != 0)
            continue;
        if (rest && ((a[full] ^ b->net[full]) & (unsigned char)(0xff00u >> rest)))
            continue;
        return 1;
    }
    return 0;
}
