/* placeholder: CLI commands */
#include "hookq.h"
