/* placeholder: implemented against log.h */
#include "log.h"
