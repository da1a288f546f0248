/* hookq: the operator CLI. All logic is in hqcli (cli.c and friends). */
#include <stdio.h>
#include "cli.h"

extern char **environ;

int main(int argc, char **argv) {
    return cli_main(argc, argv, environ, stdout, stderr);
}
