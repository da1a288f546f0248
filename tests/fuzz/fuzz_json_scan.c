/* fuzz_json_scan.c -- the JSON syntax scanner on raw bytes. The first byte picks the depth
 * limit, the rest is the text. Checked on every input:
 *   - the verdict agrees with jansson's (a full parser), except where json_scan follows
 *     RFC 8259 and jansson refuses (numbers too big for a double or int64, \u0000 in
 *     strings and keys), where json_scan refuses every raw NUL (jansson overlooks one right
 *     after a top-level number, "1\0"), and past the depth limit (jansson's is 2048);
 *   - the result is consistent: HQ_ERR iff kind != OK, at <= len, a phrase exactly for
 *     syntax errors, a message always;
 *   - a deeper limit never refuses what a shallower one accepted;
 *   - surrounding whitespace keeps the verdict and the kind, and a NUL, UTF-8 or depth
 *     problem moves with the text (a syntax error may not: padding can land inside a
 *     string the text left open). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hq.h"
#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static void check_result(int rc, const json_scan_result *r, size_t len, const char *err) {
    if ((rc == HQ_OK) != (r->kind == JSON_SCAN_OK) || r->at > len)
        abort();
    if ((r->kind == JSON_SCAN_SYNTAX) != (r->what != NULL))
        abort();
    if (rc != HQ_OK && !err[0])
        abort();
}

static void differential(const char *s, size_t len, int rc, const json_scan_result *r) {
    if (r->kind == JSON_SCAN_DEPTH || (rc != HQ_OK && r->kind == JSON_SCAN_NUL))
        return;
    json_error_t jerr;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &jerr);
    int theirs = v ? HQ_OK : HQ_ERR;
    json_decref(v);
    if (rc == theirs)
        return;
    if (rc == HQ_OK) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_numeric_overflow || code == json_error_null_character ||
            code == json_error_null_byte_in_key)
            return;
    }
    fprintf(stderr, "verdicts differ: json_scan %s (kind %d at %zu), jansson %s (%s at %d)\n",
            rc == HQ_OK ? "accepts" : "refuses", (int)r->kind, r->at,
            theirs == HQ_OK ? "accepts" : "refuses", theirs == HQ_OK ? "" : jerr.text,
            jerr.position);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char err[HQ_ERRLEN] = "";
    json_scan_result r;
    if (len == 0)
        return 0;
    /* 0..63 mostly, now and then past the cap to exercise the clamp */
    int depth = buf[0] == 0xff ? JSON_SCAN_DEPTH_MAX + 1 : buf[0] & 63;
    const char *s = (const char *)buf + 1;
    size_t n = len - 1;

    int rc = json_scan_check(s, n, depth, &r, err, sizeof(err));
    check_result(rc, &r, n, err);
    differential(s, n, rc, &r);

    if (rc == HQ_OK && depth < JSON_SCAN_DEPTH_MAX) {
        json_scan_result r2;
        if (json_scan_check(s, n, depth + 1, &r2, NULL, 0) != HQ_OK)
            abort();
    }
    /* " \n" + text + "\t\r" */
    char *padded = malloc(n + 4);
    if (!padded)
        return 0;
    memcpy(padded, " \n", 2);
    memcpy(padded + 2, s, n);
    memcpy(padded + 2 + n, "\t\r", 2);
    json_scan_result rp;
    int rcp = json_scan_check(padded, n + 4, depth, &rp, NULL, 0);
    free(padded);
    if (rcp != rc || rp.kind != r.kind)
        abort();
    if (rc != HQ_OK && r.kind != JSON_SCAN_SYNTAX && rp.at != r.at + 2)
        abort();
    return 0;
}
