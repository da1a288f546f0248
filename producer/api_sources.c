/* api_sources.c -- placeholder handlers: 501 until the group lands. */
#include "api.h"

int api_source_list(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_create(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_get(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_patch(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_delete(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_payloads(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_source_payload_get(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_inbound(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}
