/* api_stream.c -- placeholder handlers: 501 until the group lands. */
#include "api.h"

int api_stream_get(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_stream_token(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

#include <stdlib.h>
struct stream_hub {
    int unused;
};
stream_hub *stream_hub_new(api_ctx *ctx, char *err, size_t errlen) {
    (void)ctx;
    (void)err;
    (void)errlen;
    return calloc(1, sizeof(stream_hub));
}
int stream_hub_start(stream_hub *h, char *err, size_t errlen) {
    (void)h;
    (void)err;
    (void)errlen;
    return 0;
}
void stream_hub_stop(stream_hub *h) {
    (void)h;
}
void stream_hub_free(stream_hub *h) {
    free(h);
}
