/* placeholder */
#include "hookq.h"
