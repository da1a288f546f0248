/* api_route.h -- hookq-api's route table and the one function that matches a request.
 *
 * Pure: no I/O, no allocation, so it is unit-tested and fuzzed directly. Patterns are
 * "/v1/endpoints/{id}/enable": literal segments and {name} segments that match one
 * non-empty segment (at most ROUTE_PARAM_MAX bytes). docs/openapi.yaml describes exactly
 * this table; `hookq-api --routes` prints it and tests/integration/test_api_openapi.py
 * checks the two against each other. */
#ifndef HQ_API_ROUTE_H
#define HQ_API_ROUTE_H
#include <stddef.h>
#include "api.h"

#define ROUTE_PARAM_MAX 256
#define ROUTE_PATH_MAX  2048

typedef int (*api_handler)(api_req *rq);

typedef enum route_auth {
    ROUTE_KEY = 0,  /* Bearer key (admin or tenant) */
    ROUTE_ADMIN,    /* Bearer admin key only */
    ROUTE_OPEN,     /* none (health, inbound webhooks: they carry their own proof) */
    ROUTE_KEY_TOKEN /* Bearer key, or ?token= stream token (EventSource cannot set headers) */
} route_auth;

struct api_route {
    const char *method;
    const char *pattern;
    api_handler fn;
    route_auth auth;
    const char *name; /* operationId in docs/openapi.yaml */
};

/* The result of a match: the route (NULL when none), path parameters pointing into buf. */
typedef struct route_match {
    const api_route *route;
    const char *params[API_PARAMS_MAX];
    size_t nparams;
    int status;     /* 0 matched, 404 no such path, 405 path exists for other methods */
    char allow[96]; /* 405: the methods the path has, "GET, POST" */
    char buf[ROUTE_PATH_MAX + API_PARAMS_MAX];
} route_match;

/* Match method + path (no query string). Always fills *m. */
void route_find(const char *method, const char *path, route_match *m);

size_t route_count(void);
const api_route *route_at(size_t i); /* NULL past the end */

#endif
