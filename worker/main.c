/* placeholder */
#include <stdio.h>
int main(void) {
    fputs("hookq: not built yet\n", stderr);
    return 1;
}
