/* backoff.c -- retry timing: backoff schedule with jitter, and Retry-After parsing. */
#include "backoff.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "hq.h"

int64_t backoff_delay_ms(const int64_t *schedule, size_t n, int next_attempt, double jitter,
                         uint64_t rnd) {
    if (!schedule || next_attempt < 2 || (size_t)(next_attempt - 2) >= n)
        return -1;
    int64_t d = schedule[next_attempt - 2];
    if (d <= 0)
        return 0;
    /* NaN fails both comparisons and ends up as no jitter */
    if (!(jitter > 0.0))
        return d;
    if (jitter >= 1.0)
        jitter = 0.999999;
    /* top 53 bits -> u uniform in [0,1), so the factor covers [1-j, 1+j) */
    double u = (double)(rnd >> 11) * (1.0 / 9007199254740992.0);
    double factor = 1.0 - jitter + 2.0 * jitter * u;
    double x = (double)d * factor;
    /* clamp in floating point first: a huge schedule entry must not overflow int64 */
    double lo = ceil((double)d * (1.0 - jitter));
    double hi = floor((double)d * (1.0 + jitter));
    x = round(x);
    if (x < lo)
        x = lo;
    if (x > hi)
        x = hi;
    if (x >= 9.2e18)
        return INT64_MAX;
    return (int64_t)x;
}

/* ---- Retry-After ---- */

static const char *const wkday[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const weekday[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                      "Friday", "Saturday", "Sunday"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Index of the word at *p (exactly its length, case-insensitive) in names, or -1. */
static int match_word(const char **p, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(*p, names[i], len) == 0) {
            char next = (*p)[len];
            if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z'))
                continue;
            *p += len;
            return (int)i;
        }
    }
    return -1;
}

/* Exactly n digits. */
static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return HQ_ERR;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return HQ_OK;
}

static int lit(const char **p, const char *s) {
    size_t len = strlen(s);
    if (strncmp(*p, s, len) != 0)
        return HQ_ERR;
    *p += len;
    return HQ_OK;
}

static int is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm);
 * used instead of timegm so parsing never depends on the process's TZ. */
static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "HH:MM:SS" */
static int hms(const char **p, int *h, int *mi, int *s) {
    if (digits(p, 2, h) || lit(p, ":") || digits(p, 2, mi) || lit(p, ":") || digits(p, 2, s))
        return HQ_ERR;
    return HQ_OK;
}

static int to_ms(int y, int mon, int d, int h, int mi, int s, int64_t *ms) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 0 || mon > 11 || d < 1 || h > 23 || mi > 59 || s > 60)
        return HQ_ERR;
    if (d > mdays[mon] + (mon == 1 && is_leap(y)))
        return HQ_ERR;
    /* a leap second 60 counts as the next second */
    *ms = ((days_from_civil(y, mon + 1, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000;
    return HQ_OK;
}

/* The three HTTP-date forms of RFC 9110 section 5.6.7. Whole string must be consumed. */
static int http_date(const char *p, int64_t now_ms, int64_t *ms) {
    int y, mon, d, h, mi, s;
    const char *q = p;
    if (match_word(&q, wkday, 7) >= 0) {
        if (*q == ',') {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            q++;
            if (lit(&q, " ") || digits(&q, 2, &d) || lit(&q, " "))
                return HQ_ERR;
            mon = match_word(&q, month, 12);
            if (mon < 0 || lit(&q, " ") || digits(&q, 4, &y) || lit(&q, " ") ||
                hms(&q, &h, &mi, &s) || lit(&q, " GMT") || *q)
                return HQ_ERR;
            return to_ms(y, mon, d, h, mi, s, ms);
        }
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (lit(&q, " "))
            return HQ_ERR;
        mon = match_word(&q, month, 12);
        if (mon < 0 || lit(&q, " "))
            return HQ_ERR;
        if (*q == ' ') {
            q++;
            if (digits(&q, 1, &d))
                return HQ_ERR;
        } else if (digits(&q, 2, &d)) {
            return HQ_ERR;
        }
        if (lit(&q, " ") || hms(&q, &h, &mi, &s) || lit(&q, " ") || digits(&q, 4, &y) || *q)
            return HQ_ERR;
        return to_ms(y, mon, d, h, mi, s, ms);
    }
    q = p;
    if (match_word(&q, weekday, 7) < 0)
        return HQ_ERR;
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    if (lit(&q, ", ") || digits(&q, 2, &d) || lit(&q, "-"))
        return HQ_ERR;
    mon = match_word(&q, month, 12);
    if (mon < 0 || lit(&q, "-") || digits(&q, 2, &y) || lit(&q, " ") || hms(&q, &h, &mi, &s) ||
        lit(&q, " GMT") || *q)
        return HQ_ERR;
    /* Two-digit year: RFC 9110 says one more than 50 years ahead is in the past century. */
    int cur = 1970 + (int)(now_ms / 1000 / 86400 / 365.2425);
    y += cur / 100 * 100;
    if (y > cur + 50)
        y -= 100;
    return to_ms(y, mon, d, h, mi, s, ms);
}

int backoff_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms) {
    char buf[64];
    if (!value || !delay_ms)
        return HQ_ERR;
    /* trim optional whitespace around the field value */
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strnlen(value, sizeof(buf));
    if (n >= sizeof(buf))
        return HQ_ERR;
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0)
        return HQ_ERR;
    memcpy(buf, value, n);
    buf[n] = '\0';

    if (buf[0] >= '0' && buf[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return HQ_ERR;
            /* saturate absurd values; callers clamp to their own maximum anyway */
            if (secs < INT64_MAX / 10000)
                secs = secs * 10 + (buf[i] - '0');
        }
        *delay_ms = secs >= INT64_MAX / 10000 ? INT64_MAX / 10 : secs * 1000;
        return HQ_OK;
    }

    int64_t when = 0;
    if (http_date(buf, now_ms, &when) != HQ_OK)
        return HQ_ERR;
    *delay_ms = when > now_ms ? when - now_ms : 0;
    return HQ_OK;
}
