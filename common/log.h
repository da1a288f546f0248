/* log.h -- one line per event, level checked before arguments are evaluated.
 *
 * Text: `2026-11-23T10:00:00.123Z INFO  worker=host-12 message`
 * JSON: {"ts":"...","level":"info","worker":"host-12","msg":"message"}
 * Lines go to stderr. Never pass a secret to these functions. */
#ifndef HQ_LOG_H
#define HQ_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_FMT_TEXT = 0, LOG_FMT_JSON } log_format;

/* Set level, format and the name printed on every line (copied; may be NULL). */
void log_init(log_level level, log_format format, const char *name);
int log_enabled(log_level level);
void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "debug"|"info"|"warn"|"error" -> level; "text"|"json" -> format. HQ_OK or HQ_ERR. */
int log_level_parse(const char *s, log_level *out);
int log_format_parse(const char *s, log_format *out);
const char *log_level_name(log_level level);

#define LOG(lvl, ...)                                                                              \
    do {                                                                                           \
        if (log_enabled(lvl))                                                                      \
            log_write(lvl, __VA_ARGS__);                                                           \
    } while (0)
#define LOG_D(...) LOG(LOG_DEBUG, __VA_ARGS__)
#define LOG_I(...) LOG(LOG_INFO, __VA_ARGS__)
#define LOG_W(...) LOG(LOG_WARN, __VA_ARGS__)
#define LOG_E(...) LOG(LOG_ERROR, __VA_ARGS__)

#endif
