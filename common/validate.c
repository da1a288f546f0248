/* validate.c -- validation of endpoint URLs and custom headers.
 *
 * Everything here runs on input from API users, so error messages name the problem
 * but never echo header values (they are often credentials). */
#include "validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hq.h"

static int is_alpha(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int host_char(unsigned char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/* Host name, or IPv4 in dotted form (both are names as far as syntax goes). */
static int check_hostname(const char *h, size_t n, char *err, size_t errlen) {
    if (n == 0)
        return hq_seterr(err, errlen, "URL has no host");
    if (n > 253)
        return hq_seterr(err, errlen, "URL host is longer than 253 characters");
    for (size_t i = 0; i < n; i++) {
        if (!host_char((unsigned char)h[i]))
            return hq_seterr(err, errlen, "URL host has an invalid character '%c'", h[i]);
        /* empty labels ("a..b", ".a") would be resolved unpredictably */
        if (h[i] == '.' && (i == 0 || h[i - 1] == '.'))
            return hq_seterr(err, errlen, "URL host has an empty label");
    }
    return HQ_OK;
}

static int check_port(const char *p, size_t n, char *err, size_t errlen) {
    long v = 0;
    if (n == 0)
        return hq_seterr(err, errlen, "URL has an empty port");
    if (n > 5)
        return hq_seterr(err, errlen, "URL port is out of range 1..65535");
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            return hq_seterr(err, errlen, "URL port is not a number");
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return hq_seterr(err, errlen, "URL port is out of range 1..65535");
    return HQ_OK;
}

int validate_url(const char *url, char *err, size_t errlen) {
    if (!url || !*url)
        return hq_seterr(err, errlen, "URL is empty");
    size_t len = strnlen(url, VALIDATE_URL_MAX + 1);
    if (len > VALIDATE_URL_MAX)
        return hq_seterr(err, errlen, "URL is longer than %d characters", VALIDATE_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c == '\r' || c == '\n')
            return hq_seterr(err, errlen, "URL contains CR or LF");
        if (c < 0x20 || c == 0x7f)
            return hq_seterr(err, errlen, "URL contains a control character");
        if (c == ' ')
            return hq_seterr(err, errlen, "URL contains a space");
        /* non-ASCII must be percent-encoded (or punycode in the host) */
        if (c >= 0x80)
            return hq_seterr(err, errlen, "URL contains a non-ASCII character");
        if (c == '#')
            return hq_seterr(err, errlen, "URL must not contain a fragment");
        if (c == '\\')
            return hq_seterr(err, errlen, "URL contains a backslash");
    }

    const char *p;
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return hq_seterr(err, errlen, "URL scheme must be http:// or https://");

    size_t alen = strcspn(p, "/?");
    const char *aend = p + alen;
    if (memchr(p, '@', alen))
        /* credentials in the URL would end up in logs and CLI output */
        return hq_seterr(err, errlen,
                         "URL must not contain user credentials (use a custom header)");

    const char *port = NULL;
    if (*p == '[') {
        char addr[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        const char *close = memchr(p, ']', alen);
        if (!close)
            return hq_seterr(err, errlen, "URL has an unterminated [IPv6] host");
        size_t n = (size_t)(close - p - 1);
        if (n == 0)
            return hq_seterr(err, errlen, "URL has no host");
        if (n >= sizeof(addr))
            return hq_seterr(err, errlen, "URL has an invalid IPv6 address");
        memcpy(addr, p + 1, n);
        addr[n] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return hq_seterr(err, errlen, "URL has an invalid IPv6 address");
        if (close + 1 < aend) {
            if (close[1] != ':')
                return hq_seterr(err, errlen, "URL has junk after the [IPv6] host");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        size_t hlen = colon ? (size_t)(colon - p) : alen;
        if (check_hostname(p, hlen, err, errlen) != HQ_OK)
            return HQ_ERR;
        if (colon)
            port = colon + 1;
    }
    if (port && check_port(port, (size_t)(aend - port), err, errlen) != HQ_OK)
        return HQ_ERR;
    return HQ_OK;
}

/* RFC 7230 tchar */
static int tchar(unsigned char c) {
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int has_prefix_ci(const char *s, const char *prefix) {
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Headers hookq sets itself, or that change how the request is framed or routed. */
static int header_forbidden(const char *name) {
    static const char *const exact[] = {
        "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Upgrade",
        "TE",   "Trailer",        "Keep-Alive",   "User-Agent",        "Expect",
    };
    static const char *const prefix[] = {"Proxy-", "webhook-", "X-Hookq-", "X-Hub-Signature"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcasecmp(name, exact[i]) == 0)
            return 1;
    }
    for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
        if (has_prefix_ci(name, prefix[i]))
            return 1;
    }
    return 0;
}

int validate_header(const char *name, const char *value, char *err, size_t errlen) {
    if (!name || !*name)
        return hq_seterr(err, errlen, "header name is empty");
    size_t nlen = strnlen(name, VALIDATE_HEADER_NAME_MAX + 1);
    if (nlen > VALIDATE_HEADER_NAME_MAX)
        return hq_seterr(err, errlen, "header name is longer than %d characters",
                         VALIDATE_HEADER_NAME_MAX);
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '\r' || c == '\n')
            return hq_seterr(err, errlen, "header name contains CR or LF");
        if (!tchar(c))
            return hq_seterr(err, errlen, "header name contains an invalid character");
    }
    if (header_forbidden(name))
        return hq_seterr(err, errlen, "header '%s' is set by hookq or not allowed", name);
    if (!value)
        return hq_seterr(err, errlen, "header '%s' has no value", name);
    size_t vlen = strnlen(value, VALIDATE_HEADER_VALUE_MAX + 1);
    if (vlen > VALIDATE_HEADER_VALUE_MAX)
        return hq_seterr(err, errlen, "header '%s' value is longer than %d characters", name,
                         VALIDATE_HEADER_VALUE_MAX);
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' || c == '\n')
            return hq_seterr(err, errlen, "header '%s' value contains CR or LF", name);
        /* RFC 7230 field-value: visible chars, SP, HTAB, obs-text */
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return hq_seterr(err, errlen, "header '%s' value contains a control character", name);
    }
    return HQ_OK;
}

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

static char *trimmed_copy(const char *s, size_t n) {
    while (n && is_ows(*s)) {
        s++;
        n--;
    }
    while (n && is_ows(s[n - 1]))
        n--;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

int validate_header_line(const char *line, char **name, char **value, char *err, size_t errlen) {
    char *n = NULL, *v = NULL;
    int rc = HQ_ERR;
    if (name)
        *name = NULL;
    if (value)
        *value = NULL;
    if (!line || !name || !value)
        return hq_seterr(err, errlen, "header is missing");
    const char *colon = strchr(line, ':');
    if (!colon)
        return hq_seterr(err, errlen, "header must be written 'Name: value'");
    n = trimmed_copy(line, (size_t)(colon - line));
    v = trimmed_copy(colon + 1, strlen(colon + 1));
    if (!n || !v) {
        hq_seterr(err, errlen, "out of memory");
        goto cleanup;
    }
    if (validate_header(n, v, err, errlen) != HQ_OK)
        goto cleanup;
    *name = n;
    *value = v;
    n = v = NULL;
    rc = HQ_OK;
cleanup:
    free(n);
    free(v);
    return rc;
}
