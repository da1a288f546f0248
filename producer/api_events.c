/* api_events.c -- placeholder handlers: 501 until the group lands. */
#include "api.h"

int api_event_publish(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_event_get(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_event_retry(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_dead_list(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_dead_replay(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}
