/* log.c -- one line per event on stderr, as text or JSON.
 *
 * The level, format and name are the process's one piece of global state (STYLE.md
 * allows it): they are set once at start by log_init and only read afterwards. Each line
 * is built in memory and written with a single write(2) so lines from several threads or
 * processes sharing stderr do not interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq.h"
#include "timestamp.h"

#define LOG_NAME_MAX 128
/* Longest message kept; a longer one is cut and marked, so a runaway format argument
 * cannot turn into an unbounded allocation. */
#define LOG_MSG_MAX 65536

static log_level log_cur_level = LOG_INFO;
static log_format log_cur_format = LOG_FMT_TEXT;
static char log_cur_name[LOG_NAME_MAX];

static const char *const log_names[] = {"debug", "info", "warn", "error"};
static const char *const log_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void log_init(log_level level, log_format format, const char *name) {
    log_cur_level = level;
    log_cur_format = format;
    if (name)
        snprintf(log_cur_name, sizeof log_cur_name, "%s", name);
    else
        log_cur_name[0] = '\0';
}

int log_enabled(log_level level) {
    return level >= log_cur_level;
}

const char *log_level_name(log_level level) {
    if ((int)level < 0 || (size_t)level >= sizeof log_names / sizeof log_names[0])
        return "unknown";
    return log_names[level];
}

int log_level_parse(const char *s, log_level *out) {
    if (!s)
        return HQ_ERR;
    for (size_t i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (log_level)i;
            return HQ_OK;
        }
    }
    return HQ_ERR;
}

int log_format_parse(const char *s, log_format *out) {
    if (!s)
        return HQ_ERR;
    if (strcmp(s, "text") == 0) {
        *out = LOG_FMT_TEXT;
        return HQ_OK;
    }
    if (strcmp(s, "json") == 0) {
        *out = LOG_FMT_JSON;
        return HQ_OK;
    }
    return HQ_ERR;
}

/* A growable line buffer; on allocation failure it stops growing and the line is cut. */
typedef struct log_buf {
    char *p;
    size_t len, cap;
    int oom;
} log_buf;

static void lb_put(log_buf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void lb_puts(log_buf *b, const char *s) {
    lb_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. Overlongs,
 * surrogates and values past U+10FFFF are invalid, as JSON parsers require. */
static size_t log_utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Escape s so it can sit inside a line: JSON string rules when json, otherwise C-style
 * escapes. Either way control bytes never reach the output, so a message cannot forge
 * a second log line; invalid UTF-8 becomes U+FFFD (JSON) or \xHH (text). */
static void log_escape(log_buf *b, const char *s, int json) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        char tmp[8];
        if (c == '"' && json) {
            lb_put(b, "\\\"", 2);
        } else if (c == '\\' && json) {
            lb_put(b, "\\\\", 2);
        } else if (c == '\n') {
            lb_put(b, "\\n", 2);
        } else if (c == '\r') {
            lb_put(b, "\\r", 2);
        } else if (c == '\t') {
            lb_put(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", c);
            lb_puts(b, tmp);
        } else if (c >= 0x80) {
            size_t len = log_utf8_len(p + i, n - i);
            if (len == 0) {
                if (json) {
                    lb_puts(b, "\\ufffd");
                } else {
                    snprintf(tmp, sizeof tmp, "\\x%02x", c);
                    lb_puts(b, tmp);
                }
                i++;
                continue;
            }
            lb_put(b, (const char *)p + i, len);
            i += len;
            continue;
        } else {
            lb_put(b, (const char *)&p[i], 1);
        }
        i++;
    }
}

static void log_emit(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return; /* nowhere to report a failed log write */
        s += w;
        n -= (size_t)w;
    }
}

void log_write(log_level level, const char *fmt, ...) {
    char stackmsg[1024];
    char *msg = stackmsg;
    char *heapmsg = NULL;
    log_buf b = {0};

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stackmsg, sizeof stackmsg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(stackmsg, sizeof stackmsg, "(log format error)");
    } else if ((size_t)n >= sizeof stackmsg) {
        size_t want = (size_t)n < LOG_MSG_MAX ? (size_t)n + 1 : LOG_MSG_MAX;
        heapmsg = malloc(want);
        if (heapmsg) {
            va_start(ap, fmt);
            vsnprintf(heapmsg, want, fmt, ap);
            va_end(ap);
            msg = heapmsg;
        }
    }
    /* Cutting can split a UTF-8 sequence; the escaper turns the stray bytes harmless. */
    int cut = n >= 0 && (size_t)n + 1 > (heapmsg ? LOG_MSG_MAX : sizeof stackmsg);

    char ts[TS_ISO_LEN];
    ts_iso(ts_now_ms(), ts, sizeof ts);
    int json = log_cur_format == LOG_FMT_JSON;
    if (json) {
        lb_puts(&b, "{\"ts\":\"");
        lb_puts(&b, ts);
        lb_puts(&b, "\",\"level\":\"");
        lb_puts(&b, log_level_name(level));
        lb_puts(&b, "\"");
        if (log_cur_name[0]) {
            lb_puts(&b, ",\"worker\":\"");
            log_escape(&b, log_cur_name, 1);
            lb_puts(&b, "\"");
        }
        lb_puts(&b, ",\"msg\":\"");
        log_escape(&b, msg, 1);
        if (cut)
            lb_puts(&b, "...");
        lb_puts(&b, "\"}\n");
    } else {
        lb_puts(&b, ts);
        lb_puts(&b, " ");
        lb_puts(&b, ((int)level >= 0 && level <= LOG_ERROR) ? log_tags[level] : "?????");
        lb_puts(&b, " ");
        if (log_cur_name[0]) {
            lb_puts(&b, "worker=");
            log_escape(&b, log_cur_name, 0);
            lb_puts(&b, " ");
        }
        log_escape(&b, msg, 0);
        if (cut)
            lb_puts(&b, "...");
        lb_puts(&b, "\n");
    }
    if (b.p && !b.oom)
        log_emit(b.p, b.len);
    free(b.p);
    free(heapmsg);
}
