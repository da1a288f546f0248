/* api_endpoints.c -- placeholder handlers: 501 until the group lands. */
#include "api.h"

int api_endpoint_list(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_create(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_get(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_patch(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_delete(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_enable(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_disable(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_rotate(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_test(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_deliveries(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}

int api_endpoint_recover(api_req *rq) {
    return api_problem(rq, 501, "not_implemented", NULL, "not implemented yet");
}
