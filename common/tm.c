/* placeholder: implemented against tm.h */
#include "tm.h"
