/* fuzz_config.c -- the YAML config loader. Operators hand hookq files that may be truncated,
 * mis-indented or not YAML at all: loading must fail with a message naming the problem,
 * never crash, leak or leave the cfg unusable. The input is written to a memfd and
 * loaded through /proc/self/fd/N, since cfg_load_file takes a path (no disk writes). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "hq.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static int write_all(int fd, const uint8_t *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    char err[HQ_ERRLEN] = "";
    char path[64];
    cfg *c = NULL;
    FILE *sink = NULL;
    int fd = memfd_create("fuzz_cfg", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write_all(fd, buf, len) != 0)
        goto cleanup;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    c = cfg_new();
    if (!c)
        goto cleanup;
    if (cfg_load_file(c, path, err, sizeof(err)) == HQ_OK) {
        /* Whatever loaded must survive the checks and the dump that follow in real use. */
        err[0] = '\0';
        if (cfg_validate(c, err, sizeof(err)) != HQ_OK && !err[0])
            abort();
        sink = fopen("/dev/null", "w");
        if (sink) {
            cfg_dump(c, sink, 0);
            cfg_dump(c, sink, 1);
        }
    } else if (!err[0]) {
        abort(); /* a failure must say why */
    }

cleanup:
    if (sink)
        fclose(sink);
    cfg_free(c);
    close(fd);
    return 0;
}
