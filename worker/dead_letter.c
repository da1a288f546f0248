/* dead_letter.c -- see dead_letter.h. One walk serves both counting and appending, so
 * the count a script is told always matches the pairs it gets. */
#include "dead_letter.h"
#include <stdio.h>

static size_t walk(pipeline *p, const redisReply *f) {
    if (!f || f->type != REDIS_REPLY_ARRAY)
        return 0;
    size_t pairs = 0, bytes = 0, total = f->elements / 2;
    int cut = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            cut = 1;
            continue;
        }
        if (pairs == DEAD_LETTER_MAX_FIELDS || bytes >= DEAD_LETTER_MAX_BYTES) {
            cut = 1;
            break;
        }
        size_t vl = v->len;
        if (vl > DEAD_LETTER_MAX_VALUE) {
            vl = DEAD_LETTER_MAX_VALUE;
            cut = 1;
        }
        if (vl > DEAD_LETTER_MAX_BYTES - bytes) {
            vl = DEAD_LETTER_MAX_BYTES - bytes;
            cut = 1;
        }
        if (p) {
            char name[160];
            snprintf(name, sizeof name, "f.%.*s", (int)(k->len > 150 ? 150 : k->len), k->str);
            pipeline_arg(p, name);
            pipeline_argn(p, v->str, vl);
        }
        bytes += vl;
        pairs++;
    }
    if (cut) {
        if (p) {
            pipeline_arg(p, "truncated");
            pipeline_arg(p, "1");
            pipeline_arg(p, "fields");
            pipeline_argi(p, (int64_t)total);
        }
        pairs += 2;
    }
    return pairs;
}

size_t dead_letter_count(const redisReply *fields) {
    return walk(NULL, fields);
}

size_t dead_letter_fields(pipeline *p, const redisReply *fields) {
    return walk(p, fields);
}
