/* publish_example -- the README's producer example as a program: publish one event with
 * the public C API (hookq.h only).
 *
 *     publish_example REDIS_URL TYPE DATA [EVENT_ID]
 *
 * Prints the event id; exit 1 with "publish: <message> (<code>)" on failure. */
#include <stdio.h>
#include <hookq.h>

int main(int argc, char **argv) {
    hookq_options o = {0};
    hookq_publish_opts po = {0};
    char id[HOOKQ_ID_MAX];
    hookq *h;
    hookq_err rc;

    if (argc < 4 || argc > 5) {
        fputs("usage: publish_example REDIS_URL TYPE DATA [EVENT_ID]\n", stderr);
        return 2;
    }
    o.url = argv[1];
    h = hookq_connect(&o);
    if (!h) {
        fputs("connect: out of memory\n", stderr);
        return 1;
    }
    if (hookq_error(h) != HOOKQ_OK) {
        fprintf(stderr, "connect: %s (%s)\n", hookq_errstr(h), hookq_strerror(hookq_error(h)));
        hookq_free(h);
        return 1;
    }
    po.id = argc == 5 ? argv[4] : NULL;
    rc = hookq_publish(h, argv[2], argv[3], &po, id, sizeof id);
    if (rc != HOOKQ_OK) {
        fprintf(stderr, "publish: %s (%s)\n", hookq_errstr(h), hookq_strerror(rc));
        hookq_free(h);
        return 1;
    }
    printf("%s\n", id);
    hookq_free(h);
    return 0;
}
