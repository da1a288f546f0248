/* id.c -- ULID-layout ids: 48 bits of wall-clock ms, then 80 random bits, Crockford
 * base32. No state is kept between calls (no globals), so two ids made in the same
 * millisecond are ordered randomly; ids from different milliseconds sort by time. */
#include "id.h"

#include <stdint.h>
#include <string.h>

#include <openssl/rand.h>

#include "hq.h"
#include "tm.h"

#define ID_BODY_LEN 26

/* Crockford's alphabet is in ASCII order, so string order equals numeric order. */
static const char id_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int id_new(const char *prefix, char *out, size_t outlen) {
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    if (!out || outlen < plen + ID_BODY_LEN + 1)
        return HQ_ERR;
    unsigned char rnd[10];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return HQ_ERR;

    uint64_t ms = (uint64_t)tm_now_ms() & 0xFFFFFFFFFFFFULL;
    char *p = out;
    memcpy(p, prefix, plen);
    p += plen;
    /* 10 chars carry 50 bits; the top two are zero for 48-bit time. */
    for (int i = 9; i >= 0; i--) {
        p[i] = id_b32[ms & 31];
        ms >>= 5;
    }
    p += 10;
    /* 80 random bits = exactly 16 groups of 5. */
    uint64_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < sizeof rnd; i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            p[k++] = id_b32[(acc >> bits) & 31];
        }
    }
    p[k] = '\0';
    return HQ_OK;
}

static int id_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int id_valid(const char *id, char *err, size_t errlen) {
    if (!id || id[0] == '\0')
        return hq_seterr(err, errlen, "bad id: empty");
    /* Bounded scan: a huge input is rejected without reading all of it. */
    size_t n = strnlen(id, ID_MAX + 1);
    if (n > ID_MAX)
        return hq_seterr(err, errlen, "bad id: longer than %d chars", ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (id_char_ok((char)c))
            continue;
        if (c >= 0x20 && c < 0x7f)
            return hq_seterr(err, errlen,
                             "bad id '%s': character '%c' not allowed (use A-Z a-z 0-9 _ -)", id,
                             c);
        return hq_seterr(err, errlen,
                         "bad id: byte 0x%02x at position %zu not allowed (use A-Z a-z 0-9 _ -)", c,
                         i);
    }
    return HQ_OK;
}
