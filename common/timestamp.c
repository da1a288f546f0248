/* timestamp.c -- clocks and ISO 8601 UTC timestamps in milliseconds. */
#include "timestamp.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hq.h"

static int64_t ts_clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ts_now_ms(void) {
    return ts_clock_ms(CLOCK_REALTIME);
}

int64_t ts_mono_ms(void) {
    return ts_clock_ms(CLOCK_MONOTONIC);
}

int64_t ts_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ts_iso(int64_t ms, char *buf, size_t len) {
    if (!buf || len == 0)
        return;
    /* Floor division so times before 1970 still get a 0..999 millisecond part. */
    int64_t sec = ms / 1000;
    int64_t frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tmv;
    if (!gmtime_r(&t, &tmv)) {
        snprintf(buf, len, "invalid-time");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1,
             tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec, (int)frac);
}

/* Exactly n ASCII digits (no sign, no spaces: sscanf would accept both). */
static int ts_digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HQ_ERR;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return HQ_OK;
}

int ts_parse_iso(const char *s, int64_t *ms) {
    if (!s || !ms)
        return HQ_ERR;
    /* YYYY-MM-DDTHH:MM:SS is 19 chars; then an optional fraction, then 'Z'. */
    if (strlen(s) < 20)
        return HQ_ERR;
    int year, mon, day, hour, min, sec;
    if (ts_digits(s, 4, &year) || s[4] != '-' || ts_digits(s + 5, 2, &mon) || s[7] != '-' ||
        ts_digits(s + 8, 2, &day) || s[10] != 'T' || ts_digits(s + 11, 2, &hour) || s[13] != ':' ||
        ts_digits(s + 14, 2, &min) || s[16] != ':' || ts_digits(s + 17, 2, &sec))
        return HQ_ERR;
    const char *p = s + 19;
    int frac = 0;
    if (*p == '.') {
        p++;
        /* Accept up to nanoseconds; only the first three digits count. */
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac = frac * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return HQ_ERR;
        for (int i = nd; i < 3; i++)
            frac *= 10;
    }
    if (p[0] != 'Z' || p[1] != '\0')
        return HQ_ERR;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
        return HQ_ERR;

    struct tm tmv;
    memset(&tmv, 0, sizeof tmv);
    tmv.tm_year = year - 1900;
    tmv.tm_mon = mon - 1;
    tmv.tm_mday = day;
    tmv.tm_hour = hour;
    tmv.tm_min = min;
    tmv.tm_sec = sec;
    time_t t = timegm(&tmv);
    /* timegm normalises Feb 30 into March; a changed day means the date did not exist. */
    if (tmv.tm_mday != day || tmv.tm_mon != mon - 1)
        return HQ_ERR;
    *ms = (int64_t)t * 1000 + frac;
    return HQ_OK;
}
