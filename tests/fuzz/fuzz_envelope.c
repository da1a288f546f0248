/* fuzz_envelope.c -- envelope parsing: envelope_check_data on raw bytes, and envelope_from_fields
 * on fields split from the input. Whatever envelope accepts must give a body that is itself valid
 * JSON, since receivers parse it.
 *
 * envelope_check_data is a hand-written syntax scanner, so on raw bytes its verdict is also
 * compared with jansson's (a full parser). Intended differences, where envelope follows RFC
 * 8259 and jansson refuses: numbers too big for a double or int64 (1e400), and \u0000
 * in strings and keys. And envelope refuses every raw NUL byte (its contract) while jansson
 * overlooks one right after a top-level number ("1\0"). Nesting past envelope's limit is
 * not compared (jansson's is 2048). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <jansson.h>

#include "envelope.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

/* Abort if envelope and jansson disagree on whether data is JSON, except as described above. */
static void differential(const char *data, size_t len) {
    char err[HQ_ERRLEN];
    const envelope_limits lim = {.max_payload = 1024 * 1024, .max_depth = 1024};
    int ours = envelope_check_data(data, len, &lim, err, sizeof(err));
    if (ours != HQ_OK && strstr(err, "nested deeper"))
        return;
    json_error_t jerr;
    json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    int theirs = v ? HQ_OK : HQ_ERR;
    json_decref(v);
    if (ours == theirs)
        return;
    if (ours != HQ_OK && strstr(err, "NUL byte"))
        return;
    if (ours == HQ_OK) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_numeric_overflow || code == json_error_null_character ||
            code == json_error_null_byte_in_key)
            return;
    }
    fprintf(stderr, "verdicts differ: envelope %s (%s), jansson %s (%s at %d)\n",
            ours == HQ_OK ? "accepts" : "refuses", ours == HQ_OK ? "" : err,
            theirs == HQ_OK ? "accepts" : "refuses", theirs == HQ_OK ? "" : jerr.text,
            jerr.position);
    abort();
}

#define MAXF 12

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char err[HQ_ERRLEN];
    if (len == 0)
        return 0;
    const envelope_limits lim = {.max_payload = 64 * 1024, .max_depth = 16};
    const char *in = (const char *)buf + 1;
    size_t n = len - 1;
    if (buf[0] & 1) {
        (void)envelope_check_data(in, n, &lim, err, sizeof(err));
        differential(in, n);
        return 0;
    }
    /* 0xff separates name, value, name, value, ...; a well-formed start helps the
     * fuzzer reach the deeper checks */
    const char *names[MAXF], *vals[MAXF];
    size_t nlens[MAXF], vlens[MAXF], nf = 0;
    const char *p = in, *end = in + n;
    /* each iteration takes one name and one value; a missing value ends the list */
    while (nf < MAXF) {
        const char *sep = memchr(p, 0xff, (size_t)(end - p));
        if (!sep)
            break;
        names[nf] = p;
        nlens[nf] = (size_t)(sep - p);
        p = sep + 1;
        sep = memchr(p, 0xff, (size_t)(end - p));
        vals[nf] = p;
        vlens[nf] = (size_t)((sep ? sep : end) - p);
        nf++;
        if (!sep)
            break;
        p = sep + 1;
    }
    envelope e;
    if (envelope_from_fields(&e, "1700000000000-0", nf, names, nlens, vals, vlens, &lim, err,
                             sizeof(err)) != HQ_OK) {
        if (!err[0])
            abort(); /* a refusal always has a reason */
        return 0;
    }
    size_t blen = 0;
    char *body = envelope_body(&e, &blen);
    if (!body)
        abort();
    const envelope_limits body_lim = {.max_payload = 1024 * 1024, .max_depth = 32};
    if (blen != strlen(body) ||
        envelope_check_data(body, blen, &body_lim, err, sizeof(err)) != HQ_OK)
        abort();
    free(body);
    envelope_clear(&e);
    return 0;
}
