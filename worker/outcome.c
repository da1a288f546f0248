/* placeholder */
#include "outcome.h"
