/* placeholder: implemented against key.h */
#include "key.h"
