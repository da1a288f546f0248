/* api_stream_hub.h -- what GET /v1/stream (api_stream.c) asks of the live-stream hub
 * (api_stream_hub.c). The hub's lifecycle, stream_hub_new/start/stop/free, is in api.h. */
#ifndef HQ_API_STREAM_HUB_H
#define HQ_API_STREAM_HUB_H
#include "api.h"
#include "api_stream_frame.h"

/* The response of a new stream on conn: the text/event-stream headers set, its body fed
 * by the hub, starting with "retry: 3000". flt is moved into the stream (left empty here,
 * either way). after: resume right after this stream id (catching up from Redis), or
 * NULL for events from now on. peer names the client in logs. NULL when out of memory.
 * The response owns the stream: when MHD frees the response the stream is gone; queue it
 * with api_take_response. While the hub stops, the stream ends after its retry line. */
struct MHD_Response *stream_hub_open(stream_hub *h, struct MHD_Connection *conn, sse_filter *flt,
                                     const sse_sid *after, const char *peer);

#endif
