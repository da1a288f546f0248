/* validate.h -- validation of what users give hookq to send to: URLs and custom headers. */
#ifndef HQ_VALIDATE_H
#define HQ_VALIDATE_H
#include <stddef.h>

#define VALIDATE_URL_MAX          2048
#define VALIDATE_HEADER_NAME_MAX  128
#define VALIDATE_HEADER_VALUE_MAX 4096
#define VALIDATE_HEADERS_MAX      32

/* An endpoint URL: "http://" or "https://" (case-insensitive), a non-empty host
 * (name, IPv4, or [IPv6]), optional :port 1..65535, optional path/query; no fragment,
 * no spaces, control characters or CR/LF; at most VALIDATE_URL_MAX chars. */
int validate_url(const char *url, char *err, size_t errlen);

/* A custom header: name is an RFC 7230 token of at most VALIDATE_HEADER_NAME_MAX chars and
 * not one hookq sets itself or that would change framing (Host, Content-Length,
 * Content-Type, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive,
 * Proxy-*, User-Agent, Expect, and every webhook-* / X-Hookq-* / X-Hub-Signature-*);
 * value has no CR, LF or NUL and at most VALIDATE_HEADER_VALUE_MAX chars. */
int validate_header(const char *name, const char *value, char *err, size_t errlen);
/* Split "Name: value" (the CLI form) and validate. name/value get malloc'd copies with
 * surrounding spaces trimmed. */
int validate_header_line(const char *line, char **name, char **value, char *err, size_t errlen);

#endif
