/* addr_filter.h -- outbound address filter (SSRF defence).
 *
 * Decides, for the address a delivery is about to connect to, whether it is allowed.
 * Blocked unless allow_private is set or the address is inside an allowed CIDR:
 * IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.168/16,
 * 198.18/15, 224/4, 240/4, 255.255.255.255; IPv6 ::, ::1, fc00::/7, fe80::/10, ff00::/8,
 * and IPv4-mapped (::ffff:0:0/96), IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4
 * (2002::/16) forms of blocked IPv4 addresses. */
#ifndef HQ_ADDR_FILTER_H
#define HQ_ADDR_FILTER_H
#include <stddef.h>
#include <sys/socket.h>

typedef struct addr_filter addr_filter; /* opaque; immutable after addr_filter_new, safe to share */

/* cidrs: n strings like "10.1.0.0/16" or "fd00::/8". NULL + err on a bad CIDR. */
addr_filter *addr_filter_new(int allow_private, const char *const *cidrs, size_t n, char *err,
                             size_t errlen);
void addr_filter_free(addr_filter *f);
/* 1 if connecting to sa is allowed, 0 if refused; reason (may be NULL) gets a short
 * text such as "loopback address 127.0.0.1". */
int addr_filter_allowed(const addr_filter *f, const struct sockaddr *sa, char *reason,
                        size_t reasonlen);
int addr_filter_cidr_valid(const char *cidr, char *err, size_t errlen);

#endif
