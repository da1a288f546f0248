/* cidr.h -- a set of CIDR blocks and whether an address is in it.
 *
 * Used by hookq-api for trusted proxies and source allowlists. IPv4 and IPv6; an
 * IPv4-mapped IPv6 address (::ffff:10.0.0.1) matches IPv4 blocks, since a dual-stack
 * socket reports IPv4 peers that way. A bare address ("10.0.0.1") is a /32 (/128). */
#ifndef HQ_CIDR_H
#define HQ_CIDR_H
#include <stddef.h>

typedef struct cidr_set cidr_set; /* opaque; immutable once made, safe to share */

/* n texts like "10.0.0.0/8", "fd00::/8", "127.0.0.1". NULL + err naming the bad one.
 * n may be 0 (an empty set matches nothing). */
cidr_set *cidr_set_new(const char *const *texts, size_t n, char *err, size_t errlen);
void cidr_set_free(cidr_set *s); /* NULL-safe */
size_t cidr_set_size(const cidr_set *s);
/* 1 if the address text (IPv4 dotted, IPv6, with or without brackets) is in s, 0 if
 * not or when it does not parse. */
int cidr_set_has(const cidr_set *s, const char *addr);

#endif
