/* placeholder: implemented against cfg.h */
#include "cfg.h"
