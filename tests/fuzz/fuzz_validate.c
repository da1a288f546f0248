/* fuzz_validate.c -- URL and custom header validation. Whatever is accepted must be safe
 * to put into a request line or header: no CR, LF, NUL or other controls. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static int has_ctl(const char *s, int allow_tab) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char err[HQ_ERRLEN];
    if (len > 8192)
        return 0;
    char *s = malloc(len + 1);
    if (!s)
        return 0;
    memcpy(s, buf, len);
    s[len] = '\0';

    if (validate_url(s, err, sizeof(err)) == HQ_OK) {
        if (has_ctl(s, 0) || strchr(s, ' ') || strchr(s, '#') || strlen(s) > VALIDATE_URL_MAX)
            abort();
    } else if (!err[0]) {
        abort();
    }

    char *name = NULL, *value = NULL;
    if (validate_header_line(s, &name, &value, err, sizeof(err)) == HQ_OK) {
        if (!name || !value || !*name || has_ctl(name, 0) || has_ctl(value, 1) ||
            strchr(name, ':') || strchr(name, ' '))
            abort();
        if (validate_header(name, value, err, sizeof(err)) != HQ_OK)
            abort();
    } else if (name || value) {
        abort(); /* nothing handed out on failure */
    }
    free(name);
    free(value);
    free(s);
    return 0;
}
