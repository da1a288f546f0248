/* reply_fixture.h -- hiredis reply trees built by hand, for unit tests of code that reads
 * replies without a Redis server. Free the root with freeReplyObject. */
#ifndef HQ_REPLY_FIXTURE_H
#define HQ_REPLY_FIXTURE_H
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

static inline redisReply *reply_strn(const char *s, size_t n) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = malloc(n + 1);
    memcpy(r->str, s, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

static inline redisReply *reply_str(const char *s) {
    return reply_strn(s, strlen(s));
}

static inline redisReply *reply_arr(size_t n) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    return r;
}

static inline redisReply *reply_nil(void) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_NIL;
    return r;
}

#endif
